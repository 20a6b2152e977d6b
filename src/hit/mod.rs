//! The parsed hit: one page view, validated, with its instant placed in the site's zone.
//!
//! A `Hit` exists only between parsing and counting; it is never stored. It borrows its
//! text from the request, undecoded, so building one copies nothing; what the reports need from
//! the page and referrer URLs is derived by `reports` the first time a report asks, once per
//! hit. `track/` builds hits and `reports/` counts them: this module uses neither, only `period`
//! and `site`.

pub mod client;
pub mod text;

pub use client::{Agent, Country};
pub use text::Text;

use crate::period::{LocalTime, Period};
use crate::site::Site;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// How far a browser's clock may be from the server's for its time to be believed: a beacon
/// queued while offline may be up to a day old; a clock a little fast is tolerated.
pub const CLIENT_CLOCK_PAST: chrono::TimeDelta = chrono::TimeDelta::hours(24);
pub const CLIENT_CLOCK_FUTURE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// A client's timestamp (ms since the epoch) if it lies within [now − 24 h, now + 5 min],
/// else `None`: the caller then uses the server's time (Cobub Razor's lesson: client clocks
/// are wrong often enough to ruin buckets).
pub fn client_time(now: DateTime<Utc>, ms: Option<i64>) -> Option<DateTime<Utc>> {
    let at = DateTime::from_timestamp_millis(ms?)?;
    (at >= now - CLIENT_CLOCK_PAST && at <= now + CLIENT_CLOCK_FUTURE).then_some(at)
}

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
    /// Where this view falls in the visitor's visit, when the snippet could tell.
    pub visit: Visit,
    pub cohort: Cohort,
    pub agent: Agent,
    pub location: Location,
}

/// Where the visitor is, as far as tally looked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// No country database is configured: the locations report is not kept.
    NotLooked,
    /// Looked up and not found (a private address, or one the database does not know).
    Unknown,
    Country(Country),
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
/// `page_day` and `page_month`: is this the visitor's first view of *this page* today, this
/// month (the snippet's `pp`, from its local storage; a first view this month is also one
/// today)?
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Uniques {
    pub hour: bool,
    pub day: bool,
    pub month: bool,
    pub year: bool,
    pub ever: bool,
    pub page_day: bool,
    pub page_month: bool,
}

/// The visit a page view belongs to (a visit: views with no gap over 30 minutes), from the
/// snippet's cookie; empty without cookies or from a hand-written pixel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Visit {
    /// The view's number within the visit: 1 starts a visit.
    pub page: Option<u32>,
    /// When the visit started, by the browser's clock (ms since the epoch); used only within
    /// the accepted client-clock window.
    pub start: Option<i64>,
}

/// The visitor's first-visit week and month, sent with the first view of each week and month.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cohort {
    /// `Period::Week`.
    pub week: Option<Period>,
    /// `Period::Month`.
    pub month: Option<Period>,
}
