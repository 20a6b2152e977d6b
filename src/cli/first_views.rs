//! `tally import`'s page flags: a log holds every view, so the import can tell a visitor's
//! first view of a page in a day and in a month itself, as the snippet does with local
//! storage, and send the pixel's `pp` with that line's hit (docs/tracking.md, people per
//! page).
//!
//! The page is the one the content report counts (the site's kept parameters applied, as
//! [`crate::reports::facts::page`] derives it); the visitor is who the people sketches take
//! for a hit without the snippet: the address and the User-Agent. Each (period, page, visitor)
//! is remembered as a 64-bit hash under a key made for this run, in memory, for the whole
//! run (every file of one `tally import`), never stored. At most [`MAX_FIRST_VIEWS`] of them:
//! past that a view that would be a first one is sent without a flag and counted in
//! [`FirstViews::unflagged`], which the summary prints, so page people can be under-counted
//! but never silently, and never counted twice.

use crate::hit::Text;
use crate::period::LocalTime;
use crate::reports::facts;
use crate::site::Site;
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// First views remembered in one run (a day's and a month's per page and visitor). Just
/// under what a table of 2²² slots holds (7/8 of them): 2²² × 9 bytes, 36 MiB at most, and
/// 54 MiB for the moment it grows from 2²¹.
pub const MAX_FIRST_VIEWS: usize = 3_500_000;

/// The (period, page, visitor) triples seen in this run.
pub struct FirstViews {
    seen: Mutex<HashSet<u64>>,
    max: usize,
    hasher: RandomState,
    unflagged: AtomicU64,
}

impl FirstViews {
    pub fn new(max: usize) -> FirstViews {
        FirstViews {
            seen: Mutex::new(HashSet::new()),
            max,
            hasher: RandomState::new(),
            unflagged: AtomicU64::new(0),
        }
    }

    /// The `pp` of a view of `url` (the pixel's `url` parameter) on `site` at `at` by `addr`
    /// with `agent`: 2 for the visitor's first view of the page in its local month (so also
    /// its day), 1 for its first in the day, else none.
    pub fn flag(
        &self,
        site: &Site,
        url: Text<'_>,
        addr: Option<IpAddr>,
        agent: &str,
        at: DateTime<Utc>,
    ) -> Option<u8> {
        let facts = facts::page(site, url);
        let page = &facts.as_ref().as_ref()?.page;
        let local = LocalTime::at(at, site.tz);
        let key = |period| self.hasher.hash_one((period, page.as_str(), addr, agent));
        let (day, month) = (key(local.day_period()), key(local.month_period()));
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.contains(&day) {
            return None;
        }
        // Room for both, or neither: a day remembered without its month would flag the
        // month's first view on a later day.
        if seen.len() + 2 > self.max {
            self.unflagged.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        seen.insert(day);
        Some(if seen.insert(month) { 2 } else { 1 })
    }

    /// Views sent without a flag because the memory was full.
    pub fn unflagged(&self) -> u64 {
        self.unflagged.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn site(keep: &[&str]) -> Site {
        Site {
            id: crate::site::SiteId::parse("acme").unwrap(),
            tz: chrono_tz::Europe::Berlin,
            name: "acme".into(),
            hosts: Vec::new(),
            keep_params: keep.iter().map(|s| s.to_string()).collect(),
            tokens: Vec::new(),
            public: false,
            honor_dnt: false,
            created_at: Default::default(),
        }
    }

    fn at(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap()
    }

    fn text(raw: &str) -> Text<'_> {
        Text::new(raw, crate::hit::text::MAX_URL_BYTES).unwrap()
    }

    const A: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)));
    const B: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)));

    #[test]
    fn first_of_the_month_then_of_each_day_per_page_and_visitor() {
        let f = FirstViews::new(100);
        let s = site(&[]);
        let flag = |url: &str, who, agent, when| f.flag(&s, text(url), who, agent, when);
        assert_eq!(flag("%2Fa", A, "ua", at(10, 9)), Some(2));
        assert_eq!(flag("%2Fa", A, "ua", at(10, 10)), None);
        // The server's page: no query unless kept; the same page.
        assert_eq!(flag("%2Fa%3Fx%3D1", A, "ua", at(10, 11)), None);
        assert_eq!(flag("%2Fb", A, "ua", at(10, 9)), Some(2));
        assert_eq!(flag("%2Fa", B, "ua", at(10, 9)), Some(2));
        assert_eq!(flag("%2Fa", A, "other ua", at(10, 9)), Some(2));
        // Berlin's 11 November starts at 23:00 UTC on the 10th.
        assert_eq!(flag("%2Fa", A, "ua", at(10, 23)), Some(1));
        assert_eq!(flag("%2Fa", A, "ua", at(11, 9)), None);
        // Out of order (a later file of an earlier day): still once per day and month.
        assert_eq!(flag("%2Fa", A, "ua", at(2, 9)), Some(1));
        assert_eq!(flag("%2Fa", A, "ua", at(2, 10)), None);
        assert_eq!(f.unflagged(), 0);
    }

    #[test]
    fn kept_parameters_make_pages() {
        let f = FirstViews::new(100);
        let s = site(&["id"]);
        assert_eq!(
            f.flag(&s, text("%2Fi%3Fid%3D1"), A, "ua", at(10, 9)),
            Some(2)
        );
        assert_eq!(
            f.flag(&s, text("%2Fi%3Fid%3D2"), A, "ua", at(10, 9)),
            Some(2)
        );
        assert_eq!(
            f.flag(&s, text("%2Fi%3Fid%3D1%26y%3D3"), A, "ua", at(10, 9)),
            None
        );
    }

    #[test]
    fn past_the_bound_first_views_go_unflagged_and_counted_never_twice() {
        let f = FirstViews::new(5);
        let s = site(&[]);
        assert_eq!(f.flag(&s, text("%2Fa"), A, "ua", at(10, 9)), Some(2));
        assert_eq!(f.flag(&s, text("%2Fb"), A, "ua", at(10, 9)), Some(2));
        // Four remembered, one free slot: no room for a day and its month.
        assert_eq!(f.flag(&s, text("%2Fc"), A, "ua", at(10, 9)), None);
        assert_eq!(f.flag(&s, text("%2Fc"), A, "ua", at(10, 10)), None);
        assert_eq!(f.unflagged(), 2);
        // What is remembered still answers.
        assert_eq!(f.flag(&s, text("%2Fa"), A, "ua", at(10, 10)), None);
        assert_eq!(f.unflagged(), 2);
    }
}
