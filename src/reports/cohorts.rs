//! Retention cohorts (Glow's `retention`): of the visitors first seen in a week (or month),
//! how many came back 1, 2, … 12 weeks (months) later.
//!
//! `cohorts.<YYYY>` (the cohort's own year): `_id: "<site>:<YYYY>-W<ww>"` for a week cohort,
//! `_id: "<site>:<YYYY-MM>"` for a month cohort. Fields: `n` (the cohort's size: visitors whose
//! first week/month it is) and `r.<kk>` (`01`…`12`: visitors of the cohort seen again `kk`
//! weeks/months after it). The snippet sends the visitor's first-visit week (`cw`) with the
//! first view of each week, and first-visit month (`cm`) with the first view of each month;
//! "this week" is the site's week (ISO, Monday first) at the hit, in the site's zone.

use super::{number, HitFacts, Increments, Report, ReportKind};
use crate::field::{two_digits, FieldKey};
use crate::period::Period;
use mongodb::bson::Document;

pub struct Cohorts;

/// Weeks (months) after the cohort that are counted.
pub const HORIZON: i64 = 12;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CohortView {
    pub size: i64,
    /// `returned[k - 1]`: visitors back `k` weeks/months later, k = 1…12.
    pub returned: Vec<i64>,
}

impl Report for Cohorts {
    const KIND: ReportKind = ReportKind::Cohorts;
    type View = CohortView;

    fn count(hit: &HitFacts<'_, '_>, out: &mut Increments) {
        if let Some(cohort @ Period::Week(..)) = hit.cohort.week {
            let (Some(first), Some(now)) =
                (cohort.week_start(), hit.local.week_period().week_start())
            else {
                return;
            };
            add(out, cohort, (now - first).num_days().div_euclid(7));
        }
        if let Some(cohort @ Period::Month(y, m)) = hit.cohort.month {
            let (l, m) = (&hit.local, i64::from(m));
            let since = (i64::from(l.year) - i64::from(y)) * 12 + i64::from(l.month) - m;
            add(out, cohort, since);
        }
    }

    fn read(doc: &Document) -> CohortView {
        let r = doc.get_document("r").ok();
        CohortView {
            size: number(doc.get("n")),
            returned: (1..=HORIZON as u8)
                .map(|k| number(r.and_then(|r| r.get(two_digits(k)))))
                .collect(),
        }
    }
}

/// Counts a visitor of `cohort` seen `since` periods after it: the cohort's size at 0, a
/// return at 1…12; a cohort in the future or beyond the horizon is not counted.
fn add(out: &mut Increments, cohort: Period, since: i64) {
    let kind = ReportKind::Cohorts;
    match since {
        0 => out.add(kind, cohort, FieldKey::from_parts(&["n"]), 1),
        1..=HORIZON => out.add(
            kind,
            cohort,
            FieldKey::from_parts(&["r", two_digits(since as u8)]),
            1,
        ),
        _ => {}
    }
}
