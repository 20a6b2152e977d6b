//! The parsed hit: one page view, validated, with its instant placed in the site's zone.
//!
//! A `Hit` exists only between parsing and counting; it is never stored. It borrows its
//! text from the request, undecoded, so building one copies nothing.

use crate::period::LocalTime;
use crate::site::Site;
use crate::track::agent::Agent;
use crate::track::query::Text;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// A page view ready to be counted.
#[derive(Debug, Clone)]
pub struct Hit<'a> {
    pub site: Arc<Site>,
    /// When tally received it.
    pub at: DateTime<Utc>,
    /// `at` on the site's wall clock: the source of every bucket.
    pub local: LocalTime,
    pub page: Page<'a>,
    pub screen: Screen,
    pub uniques: Uniques,
    pub agent: Agent,
}

/// What the browser said about the page, still percent-encoded: a report that needs a value
/// decodes it (bounded in length) with [`Text::decode`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Page<'a> {
    pub url: Option<Text<'a>>,
    pub referrer: Option<Text<'a>>,
    pub title: Option<Text<'a>>,
}

/// Screen and browser-window sizes in CSS pixels, when sent and plausible.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Screen {
    pub screen_width: Option<u32>,
    pub browser_width: Option<u32>,
    pub browser_height: Option<u32>,
}

/// Gaug.es's uniqueness flags: is this visitor new in the hour, day, month, year, ever?
/// The snippet sets them from its first-party cookie; all false when cookies are off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Uniques {
    pub hour: bool,
    pub day: bool,
    pub month: bool,
    pub year: bool,
    pub ever: bool,
}
