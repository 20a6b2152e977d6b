//! Time: where an instant falls in a site's own calendar, and the periods documents cover.
//!
//! The site's IANA zone decides every bucket. An instant is converted once, with `chrono-tz`
//! (which knows every DST rule and offset change), into a [`LocalTime`]; every report then reads
//! the local year, month, day and hour from it. This module must not know about reports or
//! documents beyond the period names used in document ids.

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use std::fmt;
use std::sync::Arc;

mod range;
pub use range::{DateRange, Piece, MAX_RANGE_DAYS};

/// Where a hit's instant falls on the wall clock of the site's time zone.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LocalTime {
    pub year: i32,
    /// 1–12
    pub month: u8,
    /// 1–31
    pub day: u8,
    /// 0–23
    pub hour: u8,
    /// 0–59
    pub minute: u8,
}

impl LocalTime {
    /// The wall-clock time of `instant` in `tz`.
    pub fn at(instant: DateTime<Utc>, tz: Tz) -> LocalTime {
        let local = instant.with_timezone(&tz);
        LocalTime {
            year: local.year(),
            month: local.month() as u8,
            day: local.day() as u8,
            hour: local.hour() as u8,
            minute: local.minute() as u8,
        }
    }

    pub fn hour_period(&self) -> Period {
        Period::Hour(self.year, self.month, self.day, self.hour)
    }

    /// The ISO week this day is in (weeks start on Monday; the year is the ISO week-year).
    pub fn week_period(&self) -> Period {
        let week = self.date().iso_week();
        Period::Week(week.year(), week.week() as u8)
    }

    /// The local calendar date.
    pub fn date(&self) -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(self.year, self.month.into(), self.day.into())
            .expect("a LocalTime holds a real date")
    }

    pub fn year_period(&self) -> Period {
        Period::Year(self.year)
    }

    pub fn month_period(&self) -> Period {
        Period::Month(self.year, self.month)
    }

    pub fn day_period(&self) -> Period {
        Period::Day(self.year, self.month, self.day)
    }

    pub fn minute_period(&self) -> Period {
        Period::Minute(self.year, self.month, self.day, self.hour, self.minute)
    }
}

/// The span of local time one document covers. Its [`Display`](fmt::Display) form is the part
/// of the document id after `<site>:`, e.g. `2011`, `2011-06` or `2011-06-30`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Period {
    Year(i32),
    Month(i32, u8),
    Day(i32, u8, u8),
    /// A local hour of a day: `2011-06-30T14`.
    Hour(i32, u8, u8, u8),
    /// An ISO week (year, week 1–53): `2011-W26`.
    Week(i32, u8),
    /// A local minute of an hour: `2011-06-30T14:05` (the live tier).
    Minute(i32, u8, u8, u8, u8),
}

impl Period {
    /// The year of the yearly collection holding this period's documents.
    pub fn year(&self) -> i32 {
        match *self {
            Period::Year(y)
            | Period::Month(y, _)
            | Period::Day(y, _, _)
            | Period::Hour(y, _, _, _)
            | Period::Week(y, _)
            | Period::Minute(y, _, _, _, _) => y,
        }
    }

    /// The month a day, an hour or a minute belongs to; months, years and weeks are their own.
    pub fn month(&self) -> Period {
        match *self {
            Period::Day(y, m, _) | Period::Hour(y, m, _, _) | Period::Minute(y, m, _, _, _) => {
                Period::Month(y, m)
            }
            other => other,
        }
    }

    /// The Monday an ISO week starts on.
    pub fn week_start(&self) -> Option<chrono::NaiveDate> {
        match *self {
            Period::Week(y, w) => {
                chrono::NaiveDate::from_isoywd_opt(y, w.into(), chrono::Weekday::Mon)
            }
            _ => None,
        }
    }

    /// Parses the id suffix form: `2011`, `2011-06`, `2011-06-30` (a real calendar date),
    /// `2011-06-30T14`, `2011-06-30T14:05` or `2011-W26` (a real ISO week).
    pub fn parse(raw: &str) -> Option<Period> {
        if let Some((day, time)) = raw.split_once('T') {
            let Some(Period::Day(y, m, d)) = Period::parse(day) else {
                return None;
            };
            let (hour, minute) = match time.split_once(':') {
                Some((h, mi)) => (h, Some(mi)),
                None => (time, None),
            };
            let h: u8 = hour.parse().ok().filter(|h| *h < 24 && hour.len() == 2)?;
            return match minute {
                None => Some(Period::Hour(y, m, d, h)),
                Some(mi) => {
                    let mi: u8 = mi.parse().ok().filter(|x| *x < 60 && mi.len() == 2)?;
                    Some(Period::Minute(y, m, d, h, mi))
                }
            };
        }
        if let Some((year, week)) = raw.split_once("-W") {
            let y: i32 = year.parse().ok().filter(|_| year.len() == 4)?;
            let w: u8 = week.parse().ok().filter(|_| week.len() == 2)?;
            chrono::NaiveDate::from_isoywd_opt(y, w.into(), chrono::Weekday::Mon)?;
            return Some(Period::Week(y, w));
        }
        let mut parts = raw.split('-');
        let year: i32 = parts.next().filter(|y| y.len() == 4)?.parse().ok()?;
        let two = |p: Option<&str>| {
            p.filter(|p| p.len() == 2)
                .and_then(|p| p.parse::<u8>().ok())
        };
        let period = match (parts.next(), parts.next(), parts.next()) {
            (None, _, _) => Period::Year(year),
            (Some(m), None, _) => {
                Period::Month(year, two(Some(m)).filter(|m| (1..=12).contains(m))?)
            }
            (Some(m), Some(d), None) => {
                let (m, d) = (two(Some(m))?, two(Some(d))?);
                chrono::NaiveDate::from_ymd_opt(year, m.into(), d.into())?;
                Period::Day(year, m, d)
            }
            _ => return None,
        };
        Some(period)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Period::Year(y) => write!(f, "{y:04}"),
            Period::Month(y, m) => write!(f, "{y:04}-{m:02}"),
            Period::Day(y, m, d) => write!(f, "{y:04}-{m:02}-{d:02}"),
            Period::Hour(y, m, d, h) => write!(f, "{y:04}-{m:02}-{d:02}T{h:02}"),
            Period::Week(y, w) => write!(f, "{y:04}-W{w:02}"),
            Period::Minute(y, m, d, h, mi) => write!(f, "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}"),
        }
    }
}

/// The source of "now" for the hit path. Production uses [`system_clock`]; tests inject a fixed
/// instant to land hits on a DST change or on New Year without waiting for it.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    /// The local time, to the hour.
    fn at(instant: DateTime<Utc>, tz: Tz) -> LocalTime {
        LocalTime {
            minute: 0,
            ..LocalTime::at(instant, tz)
        }
    }

    fn local(y: i32, mo: u8, d: u8, h: u8) -> LocalTime {
        LocalTime {
            year: y,
            month: mo,
            day: d,
            hour: h,
            minute: 0,
        }
    }

    #[test]
    fn new_york_spring_forward_skips_two_am() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // 2024-03-10: 01:59 EST (UTC-5) is followed by 03:00 EDT (UTC-4).
        assert_eq!(at(utc(2024, 3, 10, 6, 59), ny), local(2024, 3, 10, 1));
        assert_eq!(at(utc(2024, 3, 10, 7, 0), ny), local(2024, 3, 10, 3));
        // The local day has 23 hours: 05:00 UTC to 04:00 UTC next day.
        assert_eq!(at(utc(2024, 3, 11, 3, 59), ny), local(2024, 3, 10, 23));
        assert_eq!(at(utc(2024, 3, 11, 4, 0), ny), local(2024, 3, 11, 0));
    }

    #[test]
    fn new_york_fall_back_repeats_one_am() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // 2024-11-03: 01:00–01:59 happens twice, at 05:xx UTC (EDT) and 06:xx UTC (EST).
        assert_eq!(at(utc(2024, 11, 3, 5, 30), ny), local(2024, 11, 3, 1));
        assert_eq!(at(utc(2024, 11, 3, 6, 30), ny), local(2024, 11, 3, 1));
        assert_eq!(at(utc(2024, 11, 3, 7, 0), ny), local(2024, 11, 3, 2));
        // A 25-hour day: it ends at 05:00 UTC on the 4th.
        assert_eq!(at(utc(2024, 11, 4, 4, 59), ny), local(2024, 11, 3, 23));
    }

    #[test]
    fn berlin_changes_at_one_utc() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 2024-03-31 02:00 CET jumps to 03:00 CEST, at 01:00 UTC.
        assert_eq!(at(utc(2024, 3, 31, 0, 59), berlin), local(2024, 3, 31, 1));
        assert_eq!(at(utc(2024, 3, 31, 1, 0), berlin), local(2024, 3, 31, 3));
        // 2024-10-27 03:00 CEST falls back to 02:00 CET, at 01:00 UTC.
        assert_eq!(at(utc(2024, 10, 27, 0, 30), berlin), local(2024, 10, 27, 2));
        assert_eq!(at(utc(2024, 10, 27, 1, 30), berlin), local(2024, 10, 27, 2));
        assert_eq!(at(utc(2024, 10, 27, 2, 0), berlin), local(2024, 10, 27, 3));
    }

    #[test]
    fn kiritimati_and_pago_pago_are_a_day_apart_on_one_instant() {
        // UTC+14 and UTC-11: the same instant is two different calendar days.
        let kiri: Tz = "Pacific/Kiritimati".parse().unwrap();
        let pago: Tz = "Pacific/Pago_Pago".parse().unwrap();
        let instant = utc(2024, 6, 15, 12, 0);
        assert_eq!(at(instant, kiri), local(2024, 6, 16, 2));
        assert_eq!(at(instant, pago), local(2024, 6, 15, 1));
    }

    #[test]
    fn new_year_rolls_into_the_next_yearly_collection() {
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        let t = at(utc(2010, 12, 31, 23, 30), tokyo);
        assert_eq!(t, local(2011, 1, 1, 8));
        assert_eq!(t.month_period().to_string(), "2011-01");
        assert_eq!(t.year_period().year(), 2011);
        // and the reverse, west of UTC: still last year locally.
        let pago: Tz = "Pacific/Pago_Pago".parse().unwrap();
        let t = at(utc(2011, 1, 1, 5, 0), pago);
        assert_eq!(t, local(2010, 12, 31, 18));
        assert_eq!(t.month_period(), Period::Month(2010, 12));
    }

    #[test]
    fn periods_render_as_document_id_suffixes() {
        assert_eq!(Period::Year(2011).to_string(), "2011");
        assert_eq!(Period::Month(2011, 6).to_string(), "2011-06");
        assert_eq!(Period::Day(2011, 6, 3).to_string(), "2011-06-03");
        assert_eq!(Period::Day(2011, 6, 3).month(), Period::Month(2011, 6));
        for p in [
            Period::Year(2011),
            Period::Month(2011, 6),
            Period::Day(2024, 2, 29),
            Period::Hour(2011, 6, 3, 14),
            Period::Minute(2011, 6, 3, 14, 5),
        ] {
            assert_eq!(Period::parse(&p.to_string()), Some(p));
        }
        assert_eq!(
            Period::Minute(2011, 6, 3, 9, 5).to_string(),
            "2011-06-03T09:05"
        );
        assert_eq!(
            Period::Minute(2011, 6, 3, 9, 5).month(),
            Period::Month(2011, 6)
        );
        for bad in [
            "",
            "11",
            "2011-13",
            "2011-6",
            "2023-02-29",
            "2011-06-01-01",
            "2011-06-01T14:60",
            "2011-06-01T14:5",
            "2011-06-01T14:",
            "x",
        ] {
            assert_eq!(Period::parse(bad), None, "{bad}");
        }
    }
}
