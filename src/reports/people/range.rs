//! People over a range of local days: which `people` documents answer it ([`plan`]) and what
//! their sketches say together ([`people`]).
//!
//! A range is read as whole months from month sketches and its edges from day sketches: a
//! year is twelve documents, 28 days at most two months' edges. Sketches merge register by
//! register within one site-local year (one key); the years of a range that crosses a
//! rotation are estimated apart and added, so a visitor seen in both years counts twice
//! there (the price of rotating the key). A period without a document has no sketch: before
//! sketches existed, or no visitor at all; the answer lists them so that the caller can tell
//! the two apart (its views) and answer those from the Gaug.es flags.
//!
//! Pure functions over documents the caller read: this module must not touch the store.

use super::sketch::Sketch;
use super::{read, PRECISION};
use crate::period::Period;
use crate::reports::ReportKind;
use chrono::{Datelike, NaiveDate};
use mongodb::bson::Document;

/// The periods whose sketches cover the local days `from ..= to`, in order: each month the
/// range holds whole as its month document, the other days as day documents. Empty when
/// `from` is after `to`.
pub fn plan(from: NaiveDate, to: NaiveDate) -> Vec<Period> {
    let mut out = Vec::new();
    let mut day = from;
    while day <= to {
        let (y, m) = (day.year(), day.month() as u8);
        let first = NaiveDate::from_ymd_opt(y, m.into(), 1).expect("a month's first day");
        let last = last_day(y, m);
        if day == first && last <= to {
            out.push(Period::Month(y, m));
            day = last.succ_opt().expect("a next day");
        } else {
            out.push(Period::Day(y, m, day.day() as u8));
            day = day.succ_opt().expect("a next day");
        }
    }
    out
}

fn last_day(y: i32, m: u8) -> NaiveDate {
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, u32::from(m) + 1, 1)
    };
    next.and_then(|d| d.pred_opt()).expect("a month's last day")
}

/// The `(collection, id suffix)` of each planned period's `people` document, e.g.
/// `("people.2026", "2026-06")`: the caller prefixes `<site>:` and reads each collection's ids
/// in one round trip.
pub fn documents(plan: &[Period]) -> Vec<(String, Period)> {
    plan.iter()
        .map(|p| (ReportKind::People.collection(p.year()), *p))
        .collect()
}

/// People over a range.
#[derive(Clone, Debug, PartialEq)]
pub struct RangePeople {
    /// The distinct visitors of the periods that have sketches (rounded; the sum of each
    /// site-local year's estimate when the range crosses a new year).
    pub people: i64,
    /// The planned periods without a `people` document, in order.
    pub without_sketch: Vec<Period>,
    /// The site-local years whose estimates were added (more than one: a key rotation inside
    /// the range).
    pub years: Vec<i32>,
}

/// Merges the sketches of the planned periods: `find(period)` gives the period's sketch (of
/// its `people` document, [`read`] or `read_raw`), when there is one.
pub fn people<'s>(
    plan: &[Period],
    mut find: impl FnMut(Period) -> Option<&'s Sketch>,
) -> RangePeople {
    let mut years: Vec<(i32, Sketch)> = Vec::new();
    let mut without_sketch = Vec::new();
    for &period in plan {
        let Some(sketch) = find(period) else {
            without_sketch.push(period);
            continue;
        };
        match years.iter_mut().find(|(y, _)| *y == period.year()) {
            Some((_, merged)) => merged.merge(sketch),
            None => years.push((period.year(), sketch.clone())),
        }
    }
    RangePeople {
        people: years.iter().map(|(_, s)| s.estimate().round() as i64).sum(),
        without_sketch,
        years: years.iter().map(|(y, _)| *y).collect(),
    }
}

/// The estimate one `people` document holds (a day's, a month's, a year's people).
pub fn estimate(doc: &Document) -> i64 {
    read(doc).estimate().round() as i64
}

/// The registers of a full sketch, for sizing and tests: every register of precision 12 at
/// `rank`.
pub fn full(rank: u8) -> Sketch {
    let mut s = Sketch::new(PRECISION);
    for i in 0..s.registers().len() {
        s.raise(i, rank);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::people::{count, visitor_hash, Key, Visitor};
    use crate::reports::{Increments, Value};
    use mongodb::bson::doc;
    use std::collections::HashMap;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn whole_months_from_months_and_edges_from_days() {
        let p = plan(date("2026-01-30"), date("2026-03-02"));
        assert_eq!(
            p,
            vec![
                Period::Day(2026, 1, 30),
                Period::Day(2026, 1, 31),
                Period::Month(2026, 2),
                Period::Day(2026, 3, 1),
                Period::Day(2026, 3, 2),
            ]
        );
        let year = plan(date("2025-01-01"), date("2025-12-31"));
        assert_eq!(year.len(), 12);
        assert!(year.iter().all(|p| matches!(p, Period::Month(2025, _))));
        assert_eq!(plan(date("2026-02-01"), date("2026-02-27")).len(), 27);
        assert_eq!(
            plan(date("2024-02-01"), date("2024-02-29")),
            vec![Period::Month(2024, 2)]
        );
        assert!(plan(date("2026-02-02"), date("2026-02-01")).is_empty());
        assert_eq!(
            documents(&plan(date("2025-12-31"), date("2026-01-01"))),
            vec![
                ("people.2025".to_owned(), Period::Day(2025, 12, 31)),
                ("people.2026".to_owned(), Period::Day(2026, 1, 1)),
            ]
        );
    }

    /// Visitors returning over 10 days, written as the store writes `$max`es: each day's
    /// estimate is within 3 standard errors of its distinct visitors, and the 10 days together
    /// within 3 standard errors of the distinct visitors over the 10 days, not of the sum of
    /// days; a day without a document is named.
    #[test]
    fn a_range_counts_each_visitor_once() {
        let key = Key([3; 16]);
        let tz: chrono_tz::Tz = "America/New_York".parse().unwrap();
        let mut docs: HashMap<Period, Document> = HashMap::new();
        let mut daily = Vec::new();
        // 3,000 visitors; visitor v comes on day d when (v * 7 + d * 13) % 10 < 4.
        for day in 1..=10u32 {
            let mut seen = 0;
            for v in 0..3000u32 {
                if (v * 7 + day * 13) % 10 >= 4 {
                    continue;
                }
                seen += 1;
                let at = format!("2026-06-{day:02}T15:00:00Z").parse().unwrap();
                let local = crate::period::LocalTime::at(at, tz);
                let id = format!("visitor-{v:016}");
                let mut out = Increments::default();
                count(&local, visitor_hash(&key, Visitor::Snippet(&id)), &mut out);
                for (d, field, value) in out.entries {
                    let Value::Max(rank) = value else { panic!() };
                    // `$max`, as both stores apply it.
                    let doc = docs.entry(d.period).or_insert_with(|| doc! {});
                    let (hi, lo) = field.as_str().split_once('.').unwrap();
                    if !doc.contains_key(hi) {
                        doc.insert(hi, doc! {});
                    }
                    let group = doc.get_document_mut(hi).unwrap();
                    let now = crate::model::number(group.get(lo));
                    group.insert(lo, now.max(rank) as i32);
                }
            }
            daily.push(seen);
        }
        let within = |got: i64, want: i64| (got - want).abs() as f64 <= 0.049 * want as f64;
        for (i, want) in daily.iter().enumerate() {
            let got = estimate(&docs[&Period::Day(2026, 6, i as u8 + 1)]);
            assert!(within(got, *want), "day {}: {got} for {want}", i + 1);
        }
        let p = plan(date("2026-06-01"), date("2026-06-11"));
        let sketches: HashMap<Period, Sketch> = docs.iter().map(|(p, d)| (*p, read(d))).collect();
        let r = people(&p, |period| sketches.get(&period));
        let distinct = (0..3000u32)
            .filter(|v| (1..=10u32).any(|d| (v * 7 + d * 13) % 10 < 4))
            .count() as i64;
        assert!(within(r.people, distinct), "{} for {distinct}", r.people);
        let sum: i64 = daily.iter().sum();
        assert!(r.people < sum / 2, "not the sum of days ({sum})");
        assert_eq!(r.without_sketch, vec![Period::Day(2026, 6, 11)]);
        assert_eq!(r.years, vec![2026]);
        // The month document holds the same registers as the days merged.
        assert_eq!(
            estimate(&docs[&Period::Month(2026, 6)]),
            r.people,
            "month = merged days"
        );
    }

    /// The size docs/data-model.md gives: a full sketch document (every register raised, one
    /// writer's mark) in BSON, as both stores keep it.
    #[test]
    fn a_full_sketch_document_in_bson() {
        let mut d = doc! {"_id": "acme:2026-06-01"};
        for (hi, group) in full(9).registers().chunks(super::super::GROUP).enumerate() {
            let mut g = doc! {};
            for (lo, r) in group.iter().enumerate() {
                g.insert(lo.to_string(), i32::from(*r));
            }
            d.insert(hi.to_string(), g);
        }
        d.insert("_w", doc! {"0123456789ab": 1_i64 << 32});
        let bytes = mongodb::bson::to_vec(&d).unwrap().len();
        println!("a full people document: {bytes} bytes of BSON");
        assert_eq!(bytes, 32_755);
        assert!(estimate(&d) > 100_000);
    }

    #[test]
    fn years_add_across_a_rotation() {
        let a = doc! {"0": {"0": 1, "1": 1, "2": 1}};
        let b = doc! {"0": {"0": 1}, "1": {"5": 1}};
        let p = plan(date("2025-12-31"), date("2026-01-01"));
        let (a, b) = (read(&a), read(&b));
        let r = people(&p, |period| match period {
            Period::Day(2025, ..) => Some(&a),
            _ => Some(&b),
        });
        assert_eq!((r.people, r.years), (5, vec![2025, 2026]));
        assert_eq!(full(1).registers().len(), 4096);
    }
}
