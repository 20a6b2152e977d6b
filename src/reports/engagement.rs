//! Engagement: visits, bounces, visit durations and pages per visit, new and returning
//! visitors — per day.
//!
//! `engagement.<YYYY>`, `_id: "<site>:<YYYY-MM>"`, per day `DD`:
//! - `d.<DD>.v`: visits (a view with `vp=1` starts one);
//! - `d.<DD>.p.<segment>`: visits by pages viewed (`1`, `2`, `3`, `4`, `5-9`, `10-19`,
//!   `20-49`, `50+`); `d.<DD>.p.1` is the bounces;
//! - `d.<DD>.t.<segment>`: visits by duration (`0-3s`, `3-10s`, `10-30s`, `30-60s`, `1-3m`,
//!   `3-10m`, `10-30m`, `30m+`);
//! - `d.<DD>.new`, `d.<DD>.ret`: people of the day (`ud`) new ever (`u`) or returning.
//!
//! No visit is stored: each visit sits in exactly one segment of each kind, and moves. A visit
//! starts in `p.1` and `t.0-3s`; its n-th view moves it from the segment of n−1 pages to that
//! of n; a duration beacon moves it from the segment of the duration reported before (`pvd`)
//! to that of the new one (`vd`) — a `+1` and a `-1`, nothing when both fall in one segment.
//! A visit counts on the day it started (its `vt`, when that is within the client-clock
//! window; else the day of the hit).

use super::{number, HitFacts, Increments, Report, ReportKind};
use crate::field::{two_digits, FieldKey};
use crate::hit::Hit;
use crate::period::LocalTime;
use mongodb::bson::Document;
use std::collections::BTreeMap;

pub struct Engagement;

/// Pages-per-visit segments: (lowest page count, name).
pub const PAGES: [(u32, &str); 8] = [
    (1, "1"),
    (2, "2"),
    (3, "3"),
    (4, "4"),
    (5, "5-9"),
    (10, "10-19"),
    (20, "20-49"),
    (50, "50+"),
];

/// Visit-duration segments: (lowest duration in ms, name).
pub const DURATIONS: [(i64, &str); 8] = [
    (0, "0-3s"),
    (3_000, "3-10s"),
    (10_000, "10-30s"),
    (30_000, "30-60s"),
    (60_000, "1-3m"),
    (180_000, "3-10m"),
    (600_000, "10-30m"),
    (1_800_000, "30m+"),
];

pub fn pages_segment(pages: u32) -> &'static str {
    PAGES
        .iter()
        .rev()
        .find(|(low, _)| pages >= *low)
        .map_or(PAGES[0].1, |(_, name)| name)
}

pub fn duration_segment(ms: i64) -> &'static str {
    DURATIONS
        .iter()
        .rev()
        .find(|(low, _)| ms >= *low)
        .map_or(DURATIONS[0].1, |(_, name)| name)
}

/// One day of engagement read back.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Day {
    pub visits: i64,
    /// Visits with one page view.
    pub bounces: i64,
    /// `(segment, visits)` in segment order.
    pub pages: Vec<(String, i64)>,
    pub durations: Vec<(String, i64)>,
    pub new: i64,
    pub returning: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EngagementView {
    /// Day of month → figures.
    pub days: BTreeMap<u8, Day>,
}

impl Report for Engagement {
    const KIND: ReportKind = ReportKind::Engagement;
    type View = EngagementView;

    fn count(hit: &HitFacts<'_, '_>, out: &mut Increments) {
        let kind = Self::KIND;
        let today = hit.local;
        if hit.uniques.day {
            let field = if hit.uniques.ever { "new" } else { "ret" };
            let dd = two_digits(today.day);
            out.add(
                kind,
                today.month_period(),
                FieldKey::from_parts(&["d", dd, field]),
                1,
            );
        }
        let Some(page) = hit.visit.page else {
            return;
        };
        let started = visit_day(hit);
        let (month, dd) = (started.month_period(), two_digits(started.day));
        if page == 1 {
            out.add(kind, month, FieldKey::from_parts(&["d", dd, "v"]), 1);
            out.add(kind, month, FieldKey::from_parts(&["d", dd, "p", "1"]), 1);
            out.add(
                kind,
                month,
                FieldKey::from_parts(&["d", dd, "t", DURATIONS[0].1]),
                1,
            );
            return;
        }
        let (from, to) = (pages_segment(page - 1), pages_segment(page));
        if from != to {
            out.add(kind, month, FieldKey::from_parts(&["d", dd, "p", to]), 1);
            out.add(kind, month, FieldKey::from_parts(&["d", dd, "p", from]), -1);
        }
    }

    fn read(doc: &Document) -> EngagementView {
        let mut view = EngagementView::default();
        let Ok(days) = doc.get_document("d") else {
            return view;
        };
        for (dd, day) in days {
            let (Ok(d), Some(day)) = (dd.parse::<u8>(), day.as_document()) else {
                continue;
            };
            let segments = |space: &str, names: &mut dyn Iterator<Item = &'static str>| {
                let sub = day.get_document(space).ok();
                names
                    .map(|n| (n.to_owned(), number(sub.and_then(|s| s.get(n))).max(0)))
                    .filter(|(_, v)| *v != 0)
                    .collect::<Vec<_>>()
            };
            let pages = segments("p", &mut PAGES.iter().map(|(_, n)| *n));
            let bounces = pages.iter().find(|(n, _)| n == "1").map_or(0, |(_, v)| *v);
            view.days.insert(
                d,
                Day {
                    visits: number(day.get("v")),
                    bounces,
                    pages,
                    durations: segments("t", &mut DURATIONS.iter().map(|(_, n)| *n)),
                    new: number(day.get("new")),
                    returning: number(day.get("ret")),
                },
            );
        }
        view
    }
}

/// The local day the hit's visit started: its `vt` when believable, else the hit's own.
fn visit_day(hit: &Hit<'_>) -> LocalTime {
    match crate::hit::client_time(hit.at, hit.visit.start) {
        Some(at) => LocalTime::at(at, hit.site.tz),
        None => hit.local,
    }
}

/// The increments of a duration beacon: the visit that started at `started` (local) moves from
/// the segment of `before` ms to that of `now` ms.
pub fn count_duration(started: LocalTime, before: i64, now: i64, out: &mut Increments) {
    let (from, to) = (duration_segment(before), duration_segment(now));
    if from == to {
        return;
    }
    let (month, dd) = (started.month_period(), two_digits(started.day));
    let kind = ReportKind::Engagement;
    out.add(kind, month, FieldKey::from_parts(&["d", dd, "t", to]), 1);
    out.add(kind, month, FieldKey::from_parts(&["d", dd, "t", from]), -1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_at_their_edges() {
        for (ms, seg) in [
            (0, "0-3s"),
            (2_999, "0-3s"),
            (3_000, "3-10s"),
            (9_999, "3-10s"),
            (10_000, "10-30s"),
            (30_000, "30-60s"),
            (59_999, "30-60s"),
            (60_000, "1-3m"),
            (179_999, "1-3m"),
            (180_000, "3-10m"),
            (600_000, "10-30m"),
            (1_799_999, "10-30m"),
            (1_800_000, "30m+"),
            (86_400_000, "30m+"),
        ] {
            assert_eq!(duration_segment(ms), seg, "{ms}");
        }
        for (n, seg) in [
            (1, "1"),
            (4, "4"),
            (5, "5-9"),
            (9, "5-9"),
            (10, "10-19"),
            (19, "10-19"),
            (20, "20-49"),
            (50, "50+"),
        ] {
            assert_eq!(pages_segment(n), seg, "{n}");
        }
    }
}
