//! The one "people" figure of a day, a month, a year or any range, as the traffic answers and
//! the summary give it: from the sketches wherever they exist, from the Gaug.es flags where
//! they do not (periods from before sketches, or from a tally run with them off), and saying
//! which.
//!
//! | asked | read |
//! |---|---|
//! | a range | its sketches merged ([`super::range::plan`]: whole months from month sketches, the edges from day sketches); each planned period without a sketch but with views adds its flags |
//! | a closed day, month or year | the number written when it closed (`d.<DD>.p`, `p`; see `aggregate::close`) |
//! | an open one (or one never closed) | its own sketch's estimate, when it was read |
//! | one without a sketch | its flags (`d.<DD>.u`, `u`) |
//!
//! Pure functions over the traffic documents and the `people` documents the caller read; this
//! module must not touch the store.

use super::range::{people, plan};
use super::sketch::Sketch;
use crate::field::two_digits;
use crate::model::number;
use crate::period::{DateRange, Period};
use chrono::{Datelike, NaiveDate};
use mongodb::bson::Document;

/// Where a range's people come from, as the API says it (`people_from`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Every period of the range with views has a sketch: each visitor counted once (within
    /// the sketch's error; years added across a key rotation).
    Sketches,
    /// No period with views has a sketch: whole months' `u` plus edge days' `d.<DD>.u`, so a
    /// visitor seen in two of them counts twice.
    Flags,
    /// Some periods from sketches, the others (listed) from their flags, added.
    Mixed,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Sketches => "sketches",
            Source::Flags => "flags",
            Source::Mixed => "sketches and flags",
        }
    }
}

/// People over a range.
#[derive(Clone, Debug, PartialEq)]
pub struct RangePeople {
    pub people: i64,
    pub from: Source,
    /// The planned periods answered from their flags (they have views and no sketch).
    pub from_flags: Vec<Period>,
}

/// The traffic documents and people sketches a caller read, by period: `month(y, m)` is the
/// traffic month document `"<site>:<YYYY-MM>"`, `year(y)` the traffic year document,
/// `sketch(p)` the sketch of the `people` document of a day, month or year.
pub struct Read<'d, M, Y, S>
where
    M: Fn(i32, u8) -> Option<&'d Document>,
    Y: Fn(i32) -> Option<&'d Document>,
    S: Fn(Period) -> Option<&'d Sketch>,
{
    pub month: M,
    pub year: Y,
    pub sketch: S,
}

impl<'d, M, Y, S> Read<'d, M, Y, S>
where
    M: Fn(i32, u8) -> Option<&'d Document>,
    Y: Fn(i32) -> Option<&'d Document>,
    S: Fn(Period) -> Option<&'d Sketch>,
{
    /// A period's field in its traffic document (`"v"`, `"u"` or `"p"`): a month's or year's
    /// top level, a day's `d.<DD>`.
    fn traffic(&self, period: Period, field: &str) -> i64 {
        match period {
            Period::Day(y, m, d) => number(
                (self.month)(y, m)
                    .and_then(|doc| doc.get_document("d").ok())
                    .and_then(|days| days.get_document(two_digits(d)).ok())
                    .and_then(|day| day.get(field)),
            ),
            Period::Month(y, m) => number((self.month)(y, m).and_then(|doc| doc.get(field))),
            Period::Year(y) => number((self.year)(y).and_then(|doc| doc.get(field))),
            _ => 0,
        }
    }

    /// The people of one day, month or year: its closed number, else its sketch's estimate,
    /// else its flags.
    pub fn of(&self, period: Period) -> i64 {
        let closed = self.traffic(period, "p");
        if closed > 0 {
            return closed;
        }
        match (self.sketch)(period) {
            Some(sketch) => sketch.estimate().round() as i64,
            None => self.traffic(period, "u"),
        }
    }

    /// The people of one local day.
    pub fn day(&self, day: NaiveDate) -> i64 {
        self.of(Period::Day(day.year(), day.month() as u8, day.day() as u8))
    }

    /// The people over the local days `from ..= to`: their sketches merged, plus the flags of
    /// the planned periods that have views and no sketch.
    pub fn range(&self, from: NaiveDate, to: NaiveDate) -> RangePeople {
        let plan = plan(from, to);
        let merged = people(&plan, |p| (self.sketch)(p));
        let from_flags: Vec<Period> = merged
            .without_sketch
            .into_iter()
            .filter(|p| self.traffic(*p, "v") > 0)
            .collect();
        let flags: i64 = from_flags.iter().map(|p| self.traffic(*p, "u")).sum();
        let from = match (merged.years.is_empty(), from_flags.is_empty()) {
            (_, true) => Source::Sketches,
            (true, false) => Source::Flags,
            (false, false) => Source::Mixed,
        };
        RangePeople {
            people: merged.people + flags,
            from,
            from_flags,
        }
    }
}

/// The `people` documents a range's total needs: its plan's.
pub fn sketches_for(range: DateRange) -> Vec<Period> {
    plan(range.from(), range.to())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::people::read;
    use mongodb::bson::doc;
    use std::collections::HashMap;

    fn sketch(registers: &[usize]) -> Document {
        let mut d = doc! {};
        for &i in registers {
            let (hi, lo) = ((i / 64).to_string(), (i % 64).to_string());
            if !d.contains_key(&hi) {
                d.insert(hi.clone(), doc! {});
            }
            d.get_document_mut(&hi).unwrap().insert(lo, 1);
        }
        d
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn sketches_first_then_closed_numbers_then_flags() {
        // June: sketches from the 10th on (its month sketch too); May: none (flags only).
        let june = doc! {"v": 40, "u": 30, "d": {
        "09": {"v": 5, "u": 4},
        "10": {"v": 5, "u": 4, "p": 3},
        "11": {"v": 5, "u": 4}}};
        let may = doc! {"v": 20, "u": 12, "d": {"31": {"v": 2, "u": 2}}};
        let mut sketches: HashMap<Period, Sketch> = HashMap::new();
        sketches.insert(Period::Day(2026, 6, 10), read(&sketch(&[1, 2, 3])));
        sketches.insert(Period::Day(2026, 6, 11), read(&sketch(&[3, 4])));
        sketches.insert(Period::Month(2026, 6), read(&sketch(&[1, 2, 3, 4])));
        let read = Read {
            month: |y, m| match (y, m) {
                (2026, 6) => Some(&june),
                (2026, 5) => Some(&may),
                _ => None,
            },
            year: |_| None,
            sketch: |p| sketches.get(&p),
        };
        // A closed day reads its number; an open one its sketch; one before sketches its flags.
        assert_eq!(read.day("2026-06-10".parse().unwrap()), 3);
        assert_eq!(read.day("2026-06-11".parse().unwrap()), 2);
        assert_eq!(read.day("2026-06-09".parse().unwrap()), 4);
        assert_eq!(read.of(Period::Month(2026, 6)), 4);
        assert_eq!(read.of(Period::Month(2026, 5)), 12);
        // The 10th and 11th merge: four registers, not 3 + 2.
        let r = read.range(date("2026-06-10"), date("2026-06-11"));
        assert_eq!((r.people, r.from), (4, Source::Sketches));
        // The 9th has views and no sketch: its flags are added, and named.
        let r = read.range(date("2026-06-09"), date("2026-06-11"));
        assert_eq!((r.people, r.from), (8, Source::Mixed));
        assert_eq!(r.from_flags, vec![Period::Day(2026, 6, 9)]);
        // A day without views and without a sketch adds nothing and is not named.
        let r = read.range(date("2026-06-10"), date("2026-06-12"));
        assert_eq!((r.people, r.from), (4, Source::Sketches));
        // Only flags: the last day of May.
        let r = read.range(date("2026-05-31"), date("2026-05-31"));
        assert_eq!((r.people, r.from), (2, Source::Flags));
        assert_eq!(Source::Mixed.as_str(), "sketches and flags");
        assert_eq!(
            sketches_for(DateRange::parse("2026-05-31", "2026-06-30").unwrap()),
            vec![Period::Day(2026, 5, 31), Period::Month(2026, 6)]
        );
    }
}
