//! The parsed hit: one page view, validated, with its instant placed in the site's zone.
//!
//! A `Hit` exists only between parsing and counting; it is never stored. It borrows its
//! text from the request, undecoded, so building one copies nothing; what the reports need from
//! the page and referrer URLs is derived the first time a report asks, once per hit.

use crate::period::{LocalTime, Period};
use crate::reports::facts::{self, PageFacts, RefFacts};
use crate::site::Site;
use crate::track::agent::Agent;
use crate::track::geo::Country;
use crate::track::query::Text;
use chrono::{DateTime, Utc};
use std::cell::OnceCell;
use std::rc::Rc;
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
    /// Where this view falls in the visitor's visit, when the snippet could tell.
    pub visit: Visit,
    pub cohort: Cohort,
    pub agent: Agent,
    pub location: Location,
    /// What the reports derive from `page`, on first use.
    pub parsed: Parsed,
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

/// What the reports derive from the page URL and the referrer, each worked out at most once
/// per hit (and usually found in the worker thread's cache: [`crate::reports::facts`]).
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    page: OnceCell<Rc<Option<PageFacts>>>,
    referrer: OnceCell<Rc<Option<RefFacts>>>,
}

impl<'a> Hit<'a> {
    /// The hit a pixel request's parameters describe, for `site` at `at`.
    pub fn new(
        params: crate::track::query::PixelParams<'a>,
        site: Arc<Site>,
        agent: Agent,
        location: Location,
        at: DateTime<Utc>,
    ) -> Hit<'a> {
        Hit {
            local: LocalTime::at(at, site.tz),
            at,
            site,
            page: params.page,
            screen: params.screen,
            uniques: params.uniques,
            visit: params.visit,
            cohort: params.cohort,
            agent,
            location,
            parsed: Parsed::default(),
        }
    }

    /// The page: its key, campaign parameters and host; `None` without a usable `url`.
    pub fn page_facts(&self) -> Option<&PageFacts> {
        self.parsed
            .page
            .get_or_init(|| match self.page.url {
                Some(url) => facts::page(&self.site, url),
                None => Rc::new(None),
            })
            .as_ref()
            .as_ref()
    }

    /// The referrer, when it is an absolute URL with a host (internal or not).
    pub fn referrer_facts(&self) -> Option<&RefFacts> {
        self.parsed
            .referrer
            .get_or_init(|| match self.page.referrer {
                Some(url) => facts::referrer(url),
                None => Rc::new(None),
            })
            .as_ref()
            .as_ref()
    }

    /// The referrer, unless there is none or it is the site itself.
    pub fn external_referrer(&self) -> Option<&RefFacts> {
        let page_host = self.page_facts().and_then(|p| p.host.as_deref());
        self.referrer_facts()
            .filter(|r| !r.is_internal(&self.site, page_host))
    }
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
