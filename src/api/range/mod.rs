//! Ranges: `from=YYYY-MM-DD&to=YYYY-MM-DD`, `date=YYYY` and `compare=previous|year` on the
//! summary and every report.
//!
//! A range is read from the documents that answer it exactly: reports kept per day merge their
//! whole months' month documents with the days at the range's edges ([`Piece`]); reports kept
//! per month answer for the whole months the range touches, and say so (`"months": true` in
//! `period`). The documents of a range and of its comparison are fetched together, one
//! `get_many` (or `get_many_fields`) per yearly collection, never one call per day
//! ([`fetch`]); traffic also reads its people sketches so, one call per yearly `people`
//! collection ([`sketches`]). What each report makes of its documents is in [`answer`].
//!
//! A `date=` of a day or a month without `compare` keeps its single-period answer
//! (`super::reports`); everything else asked here is answered as a range.

mod answer;

use super::table::Table;
use super::{ApiError, ApiState};
use crate::period::{DateRange, LocalTime, Period, Piece};
use crate::reports::people::read_raw;
use crate::reports::people::sketch::Sketch;
use crate::reports::people::traffic::sketches_for;
use crate::reports::{document_id, ReportKind};
use crate::site::Site;
use crate::store::StoreError;
use chrono::Datelike;
use mongodb::bson::{Document, RawDocumentBuf};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What a range is compared with (`compare=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// The same number of days just before (for reports kept per month: of months).
    Previous,
    /// The same dates a year earlier; 29 February maps to 28 February.
    Year,
}

impl Compare {
    fn parse(raw: &str) -> Result<Compare, ApiError> {
        match raw {
            "previous" => Ok(Compare::Previous),
            "year" => Ok(Compare::Year),
            _ => Err(ApiError::BadRequest(format!(
                "compare {raw:?} is not previous or year"
            ))),
        }
    }

    /// The range compared with `answered` (the range a report answers for).
    fn of(self, answered: DateRange, monthly: bool) -> DateRange {
        match (self, monthly) {
            (Compare::Previous, false) => answered.previous(),
            (Compare::Previous, true) => answered.previous_months(),
            (Compare::Year, false) => answered.year_earlier(),
            (Compare::Year, true) => answered.year_earlier().whole_months(),
        }
    }
}

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asked {
    /// One day or month, answered as before ranges existed.
    One(Period),
    /// A range of days, maybe compared.
    Range(DateRange, Option<Compare>),
}

/// The query parameters that choose a period.
#[derive(serde::Deserialize, Default)]
pub struct PeriodQuery {
    pub date: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub compare: Option<String>,
}

impl PeriodQuery {
    /// Whether anything but a day or month `date=` (or nothing) is asked.
    pub fn asks_range(&self) -> bool {
        self.from.is_some()
            || self.to.is_some()
            || self.compare.is_some()
            || self.date.as_deref().is_some_and(|d| d.len() == 4)
    }
}

/// Reads the period asked for from `q` (default: today in the site's zone). Every error names
/// the parameter at fault.
pub fn asked(state: &ApiState, site: &Site, q: &PeriodQuery) -> Result<Asked, ApiError> {
    let compare = q.compare.as_deref().map(Compare::parse).transpose()?;
    let today = || LocalTime::at((state.clock)(), site.tz).day_period();
    let period = match (&q.date, &q.from, &q.to) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(ApiError::BadRequest(
                "ask for date, or for from and to, not both".into(),
            ))
        }
        (None, Some(from), Some(to)) => {
            let range = DateRange::parse(from, to).map_err(ApiError::BadRequest)?;
            return Ok(Asked::Range(range, compare));
        }
        (None, Some(_), None) | (None, None, Some(_)) => {
            return Err(ApiError::BadRequest("from and to go together".into()))
        }
        (None, None, None) => today(),
        (Some(raw), None, None) => match Period::parse(raw) {
            Some(p @ (Period::Day(..) | Period::Month(..) | Period::Year(_))) => p,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "date {raw:?} is not a day (YYYY-MM-DD), a month (YYYY-MM) or a year (YYYY)"
                )))
            }
        },
    };
    match (period, compare) {
        (Period::Day(..) | Period::Month(..), None) => Ok(Asked::One(period)),
        _ => {
            let range = DateRange::of(period).expect("a day, a month or a year");
            Ok(Asked::Range(range, compare))
        }
    }
}

/// Reports kept per month: a range answers for the whole months it touches.
pub fn monthly(report: &str) -> bool {
    matches!(
        report,
        "terms" | "campaigns" | "technology" | "resolutions" | "locations" | "retention"
    )
}

/// A range as the answer names it.
fn period_json(range: DateRange, monthly: bool) -> Value {
    let mut v = json!({
        "from": range.from().format("%Y-%m-%d").to_string(),
        "to": range.to().format("%Y-%m-%d").to_string(),
    });
    if monthly {
        v["months"] = json!(true);
    }
    v
}

/// A range answered: its `period`, the comparison's, `data` and the CSV table.
pub struct Answer {
    pub period: Value,
    pub previous_period: Option<Value>,
    pub data: Value,
    pub table: Table,
    /// For the CSV file name: `2026-10-01_2026-11-30`.
    pub label: String,
}

/// The document ids of `periods`, by the year of their collection.
fn ids_by_year(site: &Site, periods: &BTreeSet<Period>) -> BTreeMap<i32, Vec<String>> {
    let mut by_year: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for p in periods {
        by_year
            .entry(p.year())
            .or_default()
            .push(document_id(&site.id, *p));
    }
    by_year
}

/// The period a document of `site` is for, from its `_id` (`"<site>:<period>"`).
fn period_of(site: &Site, id: Option<&str>) -> Option<Period> {
    id.and_then(|id| id.strip_prefix(site.id.as_str()))
        .and_then(|rest| rest.strip_prefix(':'))
        .and_then(Period::parse)
}

/// The documents of `kind` for `periods`, by period: one call per yearly collection (made
/// together), whole or only the top-level `fields`.
async fn fetch(
    state: &ApiState,
    site: &Site,
    kind: ReportKind,
    periods: &BTreeSet<Period>,
    fields: Option<&[&str]>,
) -> Result<HashMap<Period, Document>, ApiError> {
    let by_year = ids_by_year(site, periods);
    // The yearly collections at once: a range across a new year waits for the slower.
    let reads = by_year.into_iter().map(|(year, ids)| async move {
        let collection = kind.collection(year);
        match fields {
            Some(fields) => state.store.get_many_fields(&collection, &ids, fields).await,
            None => state.store.get_many(&collection, &ids).await,
        }
    });
    by_period(site, reads, |d: &Document| d.get_str("_id").ok()).await
}

/// The reports whose range answer is their documents merged whole ([`crate::reports::range`]):
/// they read them as stored, merged straight from the bytes (no `Document` per period).
pub fn merged_whole(report: &str) -> bool {
    matches!(
        report,
        "content"
            | "referrers"
            | "terms"
            | "campaigns"
            | "technology"
            | "resolutions"
            | "locations"
    )
}

/// The stored documents of `kind` for `periods`, by period, as [`fetch`] reads them but not
/// decoded.
async fn fetch_raw(
    state: &ApiState,
    site: &Site,
    kind: ReportKind,
    periods: &BTreeSet<Period>,
) -> Result<HashMap<Period, RawDocumentBuf>, ApiError> {
    let reads =
        ids_by_year(site, periods)
            .into_iter()
            .map(|(year, ids)| async move {
                state.store.get_many_raw(&kind.collection(year), &ids).await
            });
    by_period(site, reads, |d: &RawDocumentBuf| d.get_str("_id").ok()).await
}

/// The documents of the yearly `reads` (made together), by the period of their `_id`.
async fn by_period<D>(
    site: &Site,
    reads: impl IntoIterator<Item = impl std::future::Future<Output = Result<Vec<D>, StoreError>>>,
    id: impl Fn(&D) -> Option<&str>,
) -> Result<HashMap<Period, D>, ApiError> {
    let mut out = HashMap::new();
    for docs in futures_util::future::join_all(reads).await {
        for doc in docs? {
            if let Some(period) = period_of(site, id(&doc)) {
                out.insert(period, doc);
            }
        }
    }
    Ok(out)
}

/// The documents a report reads: their kind, periods and (when fewer suffice) the top-level
/// fields it needs.
type Needs = (ReportKind, Vec<Period>, Option<&'static [&'static str]>);

/// What `report` reads for `range`.
fn needs(report: &str, range: DateRange) -> Option<Needs> {
    let months = |r: DateRange| r.pieces().iter().map(Piece::month).collect::<Vec<_>>();
    // Whole months from month documents, edge days from day documents.
    let months_and_days = |r: DateRange| {
        r.pieces()
            .iter()
            .flat_map(|piece| match *piece {
                Piece::Month(y, m) => vec![Period::Month(y, m)],
                Piece::Days(y, m, first, last) => {
                    (first..=last).map(|d| Period::Day(y, m, d)).collect()
                }
            })
            .collect::<Vec<_>>()
    };
    Some(match report {
        // One day: its hours too, as the day's single-period answer has them.
        "traffic" if range.len() == 1 => (
            ReportKind::Traffic,
            months(range),
            Some(&["v", "u", "p", "d", "h"]),
        ),
        "traffic" => (
            ReportKind::Traffic,
            months(range),
            Some(&["v", "u", "p", "d"]),
        ),
        "content" => (ReportKind::Content, months_and_days(range), None),
        "referrers" => (ReportKind::Referrers, months_and_days(range), None),
        "events" => (ReportKind::EventsDay, months(range), Some(&["e"])),
        "engagement" => (ReportKind::Engagement, months(range), Some(&["d"])),
        "terms" => (ReportKind::Terms, months(range), None),
        "campaigns" => (ReportKind::Campaigns, months(range), None),
        "technology" => (ReportKind::Technology, months(range), None),
        "resolutions" => (ReportKind::Resolutions, months(range), None),
        "locations" => (ReportKind::Locations, months(range), None),
        "retention" => {
            let mut periods = answer::cohort_weeks(range);
            periods.extend(months(range));
            (ReportKind::Cohorts, periods, None)
        }
        _ => return None,
    })
}

/// Reads `report` over `range` (and its comparison): the answer, from as few store calls as
/// the yearly collections involved.
pub async fn read(
    state: &ApiState,
    site: &Site,
    report: &str,
    range: DateRange,
    compare: Option<Compare>,
    limit: usize,
) -> Result<Answer, ApiError> {
    let monthly = monthly(report);
    let answered = if monthly { range.whole_months() } else { range };
    let previous = compare.map(|c| c.of(answered, monthly));
    let Some((kind, mut periods, fields)) = needs(report, answered) else {
        return Err(ApiError::BadRequest(format!(
            "no report {report:?}; reports: {}",
            super::reports::REPORTS.join(", ")
        )));
    };
    if let Some(previous) = previous {
        periods.extend(needs(report, previous).map(|n| n.1).unwrap_or_default());
    }
    let periods = periods.into_iter().collect();
    let (docs, raw) = if merged_whole(report) {
        (
            HashMap::new(),
            fetch_raw(state, site, kind, &periods).await?,
        )
    } else {
        (
            fetch(state, site, kind, &periods, fields).await?,
            HashMap::new(),
        )
    };
    let sketches = match kind {
        ReportKind::Traffic => {
            let mut wanted = sketches_wanted(answered, previous);
            wanted.extend(unclosed_days(answered, |y, m| {
                docs.get(&Period::Month(y, m))
            }));
            sketches(state, site, &wanted).await?
        }
        _ => HashMap::new(),
    };
    let read = answer::Read {
        docs: &docs,
        raw: &raw,
        sketches: &sketches,
    };
    let mut table = Table::default();
    let (mut data, _) = answer::answer(report, answered, &read, limit, Some(&mut table));
    if let Some(previous) = previous {
        let (_, total) = answer::answer(report, previous, &read, limit, None);
        data["previous"] = total;
    }
    Ok(Answer {
        period: period_json(answered, monthly),
        previous_period: previous.map(|p| period_json(p, monthly)),
        data,
        table,
        label: format!(
            "{}_{}",
            answered.from().format("%Y-%m-%d"),
            answered.to().format("%Y-%m-%d")
        ),
    })
}

/// The `people` documents a traffic answer reads for its totals: the sketches of the range's
/// and its comparison's whole months and edge days (the rows of days with views and no closed
/// number add theirs, [`unclosed_days`]).
fn sketches_wanted(answered: DateRange, previous: Option<DateRange>) -> BTreeSet<Period> {
    let mut wanted: BTreeSet<Period> = sketches_for(answered).into_iter().collect();
    if let Some(previous) = previous {
        wanted.extend(sketches_for(previous));
    }
    wanted
}

/// The most days without a closed number whose own sketches one answer reads (today, the days
/// a closer has not reached yet: a node down past [`crate::aggregate::close::DAYS_BACK`]);
/// past it, such days' rows show their flags.
pub const MAX_UNCLOSED_DAYS: usize = 92;

/// The days of `range` that have views and no closed number (`d.<DD>.p`) in their traffic
/// month document (`month(y, m)`), at most [`MAX_UNCLOSED_DAYS`]: their rows read their own
/// sketch.
pub fn unclosed_days<'d>(
    range: DateRange,
    month: impl Fn(i32, u8) -> Option<&'d Document>,
) -> Vec<Period> {
    range
        .days()
        .filter(|d| {
            let day = month(d.year(), d.month() as u8)
                .and_then(|doc| doc.get_document("d").ok())
                .and_then(|days| days.get_document(format!("{:02}", d.day())).ok());
            day.is_some_and(|day| {
                crate::model::number(day.get("v")) > 0 && crate::model::number(day.get("p")) <= 0
            })
        })
        .take(MAX_UNCLOSED_DAYS)
        .map(|d| Period::Day(d.year(), d.month() as u8, d.day() as u8))
        .collect()
}

/// The sketches of the `people` documents of `periods`, by period: one call per yearly
/// collection, each document's registers read from its stored bytes (`read_raw`; a year's
/// range merges some 40 documents of 4,096 registers).
pub async fn sketches(
    state: &ApiState,
    site: &Site,
    periods: &BTreeSet<Period>,
) -> Result<HashMap<Period, Sketch>, ApiError> {
    let raw = fetch_raw(state, site, ReportKind::People, periods).await?;
    Ok(raw
        .into_iter()
        .map(|(period, doc)| (period, read_raw(&doc)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compared_ranges() {
        let r = DateRange::parse("2024-02-29", "2024-03-06").unwrap();
        assert_eq!(
            Compare::Previous.of(r, false),
            DateRange::parse("2024-02-22", "2024-02-28").unwrap()
        );
        assert_eq!(
            Compare::Year.of(r, false),
            DateRange::parse("2023-02-28", "2023-03-06").unwrap()
        );
        let months = r.whole_months();
        assert_eq!(
            Compare::Previous.of(months, true),
            DateRange::parse("2023-12-01", "2024-01-31").unwrap()
        );
        assert_eq!(
            Compare::Year.of(months, true),
            DateRange::parse("2023-02-01", "2023-03-31").unwrap()
        );
    }
}
