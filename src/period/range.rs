//! Ranges of days in a site's calendar: what a range asks, its split into whole months and
//! edge days (which documents answer it), and the ranges it is compared with.
//!
//! Days only: which documents hold them is the reader's business; this module must not know
//! reports or the store.

use super::Period;
use chrono::{Datelike, Months, NaiveDate, TimeDelta};

/// The most days a range may span: three years.
pub const MAX_RANGE_DAYS: i64 = 3 * 366;

/// Days `from`…`to` of a site's calendar, both included, at most [`MAX_RANGE_DAYS`] long.
/// Built only by [`DateRange::parse`], [`DateRange::of`] and the comparisons derived from one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DateRange {
    from: NaiveDate,
    to: NaiveDate,
}

/// A part of a range that one kind of document answers: a whole month, or some days of one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Piece {
    /// Every day of the month is in the range.
    Month(i32, u8),
    /// Days `first`…`last` of the month (not all of it).
    Days(i32, u8, u8, u8),
}

impl Piece {
    /// The month this piece lies in.
    pub fn month(&self) -> Period {
        match *self {
            Piece::Month(y, m) | Piece::Days(y, m, _, _) => Period::Month(y, m),
        }
    }

    /// The days of the month this piece covers (`1..=31` for a whole month).
    pub fn days(&self) -> std::ops::RangeInclusive<u8> {
        match *self {
            Piece::Month(..) => 1..=31,
            Piece::Days(_, _, first, last) => first..=last,
        }
    }
}

fn first_of_month(date: NaiveDate) -> NaiveDate {
    NaiveDate::from_ymd_opt(date.year(), date.month(), 1).expect("the first of a month")
}

fn last_of_month(date: NaiveDate) -> NaiveDate {
    first_of_month(date)
        .checked_add_months(Months::new(1))
        .and_then(|d| d.pred_opt())
        .expect("the last of a month")
}

impl DateRange {
    /// `from` and `to` as `YYYY-MM-DD`; `from` not after `to`, at most [`MAX_RANGE_DAYS`] days.
    /// The error names what is wrong, for a 400.
    pub fn parse(from: &str, to: &str) -> Result<DateRange, String> {
        let day = |raw: &str, name: &str| {
            match Period::parse(raw) {
                Some(Period::Day(y, m, d)) => NaiveDate::from_ymd_opt(y, m.into(), d.into()),
                _ => None,
            }
            .ok_or_else(|| format!("{name} {raw:?} is not a day (YYYY-MM-DD)"))
        };
        let (from_day, to_day) = (day(from, "from")?, day(to, "to")?);
        if to_day < from_day {
            return Err(format!("from {from} is after to {to}"));
        }
        let range = DateRange {
            from: from_day,
            to: to_day,
        };
        if range.len() > MAX_RANGE_DAYS {
            return Err(format!(
                "the range {from}..{to} is {} days; at most {MAX_RANGE_DAYS} (three years)",
                range.len()
            ));
        }
        Ok(range)
    }

    /// The days of a day, a month or a year; `None` for other periods.
    pub fn of(period: Period) -> Option<DateRange> {
        let (from, to) = match period {
            Period::Day(y, m, d) => {
                let day = NaiveDate::from_ymd_opt(y, m.into(), d.into())?;
                (day, day)
            }
            Period::Month(y, m) => {
                let first = NaiveDate::from_ymd_opt(y, m.into(), 1)?;
                (first, last_of_month(first))
            }
            Period::Year(y) => (
                NaiveDate::from_ymd_opt(y, 1, 1)?,
                NaiveDate::from_ymd_opt(y, 12, 31)?,
            ),
            _ => return None,
        };
        Some(DateRange { from, to })
    }

    pub fn from(&self) -> NaiveDate {
        self.from
    }

    pub fn to(&self) -> NaiveDate {
        self.to
    }

    /// How many days, both ends included.
    pub fn len(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }

    /// Never true: a range has at least one day.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Every day, in order.
    pub fn days(&self) -> impl Iterator<Item = NaiveDate> {
        let to = self.to;
        self.from.iter_days().take_while(move |d| *d <= to)
    }

    /// The range widened to whole months: what reports kept per month answer for.
    pub fn whole_months(&self) -> DateRange {
        DateRange {
            from: first_of_month(self.from),
            to: last_of_month(self.to),
        }
    }

    /// The range as whole months and, at its edges, the days of partial months, in order.
    pub fn pieces(&self) -> Vec<Piece> {
        let mut out = Vec::new();
        let mut month = first_of_month(self.from);
        while month <= self.to {
            let (y, m) = (month.year(), month.month() as u8);
            let last = last_of_month(month);
            let first_day = self.from.max(month);
            let last_day = self.to.min(last);
            if first_day == month && last_day == last {
                out.push(Piece::Month(y, m));
            } else {
                out.push(Piece::Days(
                    y,
                    m,
                    first_day.day() as u8,
                    last_day.day() as u8,
                ));
            }
            month = last.succ_opt().expect("a following month");
        }
        out
    }

    /// The same number of days just before.
    pub fn previous(&self) -> DateRange {
        let to = self.from.pred_opt().expect("a day before");
        DateRange {
            from: to - TimeDelta::days(self.len() - 1),
            to,
        }
    }

    /// The same number of whole months just before this range's whole months (what reports
    /// kept per month compare with).
    pub fn previous_months(&self) -> DateRange {
        let whole = self.whole_months();
        let index = |d: NaiveDate| d.year() * 12 + d.month0() as i32;
        let n = (index(whole.to) - index(whole.from) + 1) as u32;
        let from = whole.from - Months::new(n);
        DateRange {
            from,
            to: last_of_month(first_of_month(whole.to) - Months::new(n)),
        }
    }

    /// The same dates a year earlier; 29 February maps to 28 February.
    pub fn year_earlier(&self) -> DateRange {
        let back = |d: NaiveDate| {
            d.with_year(d.year() - 1)
                .or_else(|| NaiveDate::from_ymd_opt(d.year() - 1, 2, 28))
                .expect("a day a year earlier")
        };
        DateRange {
            from: back(self.from),
            to: back(self.to),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(from: &str, to: &str) -> DateRange {
        DateRange::parse(from, to).unwrap()
    }

    #[test]
    fn ranges_split_into_whole_months_and_edge_days() {
        let r = range("2025-12-30", "2026-03-02");
        assert_eq!(r.len(), 63);
        assert_eq!(
            r.pieces(),
            vec![
                Piece::Days(2025, 12, 30, 31),
                Piece::Month(2026, 1),
                Piece::Month(2026, 2),
                Piece::Days(2026, 3, 1, 2),
            ]
        );
        assert_eq!(
            range("2026-02-01", "2026-02-28").pieces(),
            vec![Piece::Month(2026, 2)]
        );
        assert_eq!(
            range("2026-02-03", "2026-02-03").pieces(),
            vec![Piece::Days(2026, 2, 3, 3)]
        );
        assert_eq!(
            range("2026-11-05", "2026-12-02").whole_months(),
            range("2026-11-01", "2026-12-31")
        );
        assert_eq!(
            DateRange::of(Period::Year(2024)),
            Some(range("2024-01-01", "2024-12-31"))
        );
        assert_eq!(
            DateRange::of(Period::Month(2024, 2)),
            Some(range("2024-02-01", "2024-02-29"))
        );
    }

    #[test]
    fn comparisons_before_and_a_year_back() {
        let r = range("2026-03-01", "2026-03-07");
        assert_eq!(r.previous(), range("2026-02-22", "2026-02-28"));
        assert_eq!(r.year_earlier(), range("2025-03-01", "2025-03-07"));
        assert_eq!(
            range("2026-11-05", "2026-12-02").previous_months(),
            range("2026-09-01", "2026-10-31")
        );
        assert_eq!(
            range("2026-03-01", "2026-03-31").previous_months(),
            range("2026-02-01", "2026-02-28")
        );
        // 29 February maps to 28 February.
        assert_eq!(
            range("2024-02-29", "2024-02-29").year_earlier(),
            range("2023-02-28", "2023-02-28")
        );
        assert_eq!(
            range("2024-02-01", "2024-02-29").year_earlier(),
            range("2023-02-01", "2023-02-28")
        );
    }

    #[test]
    fn bad_ranges_are_named() {
        for (from, to, says) in [
            ("2026-13-01", "2026-12-01", "from"),
            ("2026-12-01", "2026-02-30", "to"),
            ("2026-12-02", "2026-12-01", "after"),
            ("2020-01-01", "2026-01-01", "three years"),
        ] {
            let e = DateRange::parse(from, to).unwrap_err();
            assert!(e.contains(says), "{from}..{to}: {e}");
        }
        assert_eq!(range("2023-01-01", "2025-12-31").len(), 1096);
    }
}
