//! Traffic: views and people per month, day and hour, and per year.
//!
//! `traffic.<YYYY>`, `_id: "<site>:<YYYY-MM>"`: `v`, `u`, `d.<DD>.v`, `d.<DD>.u`,
//! `h.<DD>.<HH>.v`, `h.<DD>.<HH>.u`; and `_id: "<site>:<YYYY>"`: `v`, `u`. "People" are the
//! hits whose uniqueness flag for that period is set (`um`, `ud`, `uh`, `uy`); the people of
//! a closed day, month or year from its sketch are `d.<DD>.p` and `p` (`aggregate::close`),
//! and what the API shows as people is decided in `reports::people::traffic`.

use super::{number, HitFacts, Increments, Report, ReportKind};
use crate::field::{two_digits, FieldKey};
use mongodb::bson::Document;
use std::collections::BTreeMap;

pub struct Traffic;

/// Views and people of one period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub views: i64,
    pub people: i64,
}

/// A month document (`"<site>:<YYYY-MM>"`) or a year document (`"<site>:<YYYY>"`, whose
/// `days` and `hours` are empty).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TrafficView {
    pub total: Counts,
    /// Day of month (1–31) → counts.
    pub days: BTreeMap<u8, Counts>,
    /// (day, hour) → counts.
    pub hours: BTreeMap<(u8, u8), Counts>,
}

impl Report for Traffic {
    const KIND: ReportKind = ReportKind::Traffic;
    type View = TrafficView;

    fn count(hit: &HitFacts<'_, '_>, out: &mut Increments) {
        let month = hit.local.month_period();
        let year = hit.local.year_period();
        let day = two_digits(hit.local.day);
        let hour = two_digits(hit.local.hour);
        let u = &hit.uniques;
        let kind = Self::KIND;

        out.add(kind, month, FieldKey::from_parts(&["v"]), 1);
        out.add(kind, month, FieldKey::from_parts(&["d", day, "v"]), 1);
        out.add(kind, month, FieldKey::from_parts(&["h", day, hour, "v"]), 1);
        out.add(kind, year, FieldKey::from_parts(&["v"]), 1);
        if u.month {
            out.add(kind, month, FieldKey::from_parts(&["u"]), 1);
        }
        if u.day {
            out.add(kind, month, FieldKey::from_parts(&["d", day, "u"]), 1);
        }
        if u.hour {
            out.add(kind, month, FieldKey::from_parts(&["h", day, hour, "u"]), 1);
        }
        if u.year {
            out.add(kind, year, FieldKey::from_parts(&["u"]), 1);
        }
    }

    fn read(doc: &Document) -> TrafficView {
        let counts = |d: &Document| Counts {
            views: number(d.get("v")),
            people: number(d.get("u")),
        };
        let mut view = TrafficView {
            total: counts(doc),
            ..TrafficView::default()
        };
        if let Ok(days) = doc.get_document("d") {
            for (dd, sub) in days {
                if let (Ok(day), Some(sub)) = (dd.parse::<u8>(), sub.as_document()) {
                    view.days.insert(day, counts(sub));
                }
            }
        }
        if let Ok(days) = doc.get_document("h") {
            for (dd, hours) in days {
                let (Ok(day), Some(hours)) = (dd.parse::<u8>(), hours.as_document()) else {
                    continue;
                };
                for (hh, sub) in hours {
                    if let (Ok(hour), Some(sub)) = (hh.parse::<u8>(), sub.as_document()) {
                        view.hours.insert((day, hour), counts(sub));
                    }
                }
            }
        }
        view
    }
}
