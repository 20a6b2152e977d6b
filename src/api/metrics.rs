//! Glow's Metrics API over the event counters:
//! - `GET …/metrics/count?event=E&from=YYYY-MM-DD&to=YYYY-MM-DD[&where=PROPERTY:VALUE]`
//! - `GET …/metrics/group?event=E&property=P&from=…&to=…`
//! - `GET …/metrics/retention?start=YYYY-MM-DD|YYYY-Www|YYYY-MM&unit=week|month&length=N`
//!
//! `count` and `group` read the `events_day` month documents covering `[from, to]` (days in
//! the site's zone, inclusive; at most 366 days); `retention` reads the cohort documents.

use super::reports::doc;
use super::{authorize, ApiError, ApiState};
use crate::field::Key;
use crate::period::Period;
use crate::reports::cohorts::Cohorts;
use crate::reports::events::{self, Tally};
use crate::reports::{number, Report, ReportKind};
use crate::site::Site;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Datelike, NaiveDate};
use mongodb::bson::Document;
use serde_json::json;
use std::collections::BTreeMap;

#[derive(serde::Deserialize)]
pub struct Range {
    event: String,
    from: String,
    to: String,
    property: Option<String>,
    #[serde(rename = "where")]
    filter: Option<String>,
}

fn day(raw: &str, field: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| ApiError::BadRequest(format!("{field} must be a day, YYYY-MM-DD")))
}

/// The `events_day` documents covering `[from, to]`, with the days of each month in range.
async fn months(
    state: &ApiState,
    site: &Site,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(Document, std::ops::RangeInclusive<u8>)>, ApiError> {
    // `from` and `to` both count: 366 days are 365 days apart.
    if to < from || (to - from).num_days() > 365 {
        return Err(ApiError::BadRequest(
            "from must not be after to, and the range at most 366 days".into(),
        ));
    }
    let mut out = Vec::new();
    let mut cursor = NaiveDate::from_ymd_opt(from.year(), from.month(), 1).expect("a month");
    while cursor <= to {
        let period = Period::Month(cursor.year(), cursor.month() as u8);
        let first = if cursor < from { from.day() } else { 1 } as u8;
        let next = cursor
            .checked_add_months(chrono::Months::new(1))
            .expect("a following month");
        let last = if next > to { to.day() } else { 31 } as u8;
        let doc = doc(state, site, ReportKind::EventsDay, period).await?;
        out.push((doc, first..=last));
        cursor = next;
    }
    Ok(out)
}

fn reply(result: Result<serde_json::Value, ApiError>) -> HttpResponse {
    match result {
        Ok(v) => HttpResponse::Ok().json(v),
        Err(e) => e.answer(),
    }
}

pub async fn count(
    req: HttpRequest,
    id: web::Path<String>,
    q: web::Query<Range>,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let result = async {
        let site = authorize(&req, &state, &id)?;
        let (from, to) = (day(&q.from, "from")?, day(&q.to, "to")?);
        let filter = match &q.filter {
            None => None,
            Some(w) => Some(
                w.split_once(':')
                    .ok_or_else(|| ApiError::BadRequest("where must be PROPERTY:VALUE".into()))?,
            ),
        };
        let mut sum = Tally::default();
        for (doc, days) in months(&state, &site, from, to).await? {
            match filter {
                Some((property, value)) => {
                    for (v, t) in events::group(&doc, &q.event, property, days) {
                        if v == value {
                            sum += t;
                        }
                    }
                }
                None => {
                    let name = Key::escape(&q.event);
                    if let Ok(buckets) = doc
                        .get_document("e")
                        .and_then(|e| e.get_document(name.as_str()))
                    {
                        for (d, t) in buckets {
                            if d.parse::<u8>().is_ok_and(|d| days.contains(&d)) {
                                let t = t.as_document();
                                sum += Tally {
                                    count: t.map_or(0, |t| number(t.get("c"))),
                                    total: t.map_or(0, |t| number(t.get("t"))),
                                };
                            }
                        }
                    }
                }
            }
        }
        Ok::<_, ApiError>(json!({
            "site": site.id.as_str(), "zone": site.tz.name(), "event": q.event,
            "from": q.from, "to": q.to, "where": q.filter,
            "count": sum.count, "total": sum.total,
        }))
    }
    .await;
    reply(result)
}

pub async fn group(
    req: HttpRequest,
    id: web::Path<String>,
    q: web::Query<Range>,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let result = async {
        let site = authorize(&req, &state, &id)?;
        let property = q
            .property
            .as_deref()
            .ok_or_else(|| ApiError::BadRequest("property is required".into()))?;
        let (from, to) = (day(&q.from, "from")?, day(&q.to, "to")?);
        let mut by_value: BTreeMap<String, Tally> = BTreeMap::new();
        for (doc, days) in months(&state, &site, from, to).await? {
            for (v, t) in events::group(&doc, &q.event, property, days) {
                *by_value.entry(v).or_default() += t;
            }
        }
        let mut groups: Vec<_> = by_value.into_iter().collect();
        groups.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0)));
        let groups: Vec<_> = groups
            .into_iter()
            .map(|(value, t)| json!({"value": value, "count": t.count, "total": t.total}))
            .collect();
        Ok::<_, ApiError>(json!({
            "site": site.id.as_str(), "zone": site.tz.name(), "event": q.event,
            "property": property, "from": q.from, "to": q.to, "groups": groups,
        }))
    }
    .await;
    reply(result)
}

#[derive(serde::Deserialize)]
pub struct RetentionQuery {
    start: String,
    unit: Option<String>,
    length: Option<u32>,
}

pub async fn retention(
    req: HttpRequest,
    id: web::Path<String>,
    q: web::Query<RetentionQuery>,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let result = async {
        let site = authorize(&req, &state, &id)?;
        let unit = q.unit.as_deref().unwrap_or("week");
        let length = q.length.unwrap_or(8);
        if !(1..=52).contains(&length) {
            return Err(ApiError::BadRequest("length must be 1 to 52".into()));
        }
        let bad = || ApiError::BadRequest("start must be YYYY-MM-DD, YYYY-Www or YYYY-MM".into());
        let start = match Period::parse(&q.start).ok_or_else(bad)? {
            Period::Day(y, m, d) => {
                NaiveDate::from_ymd_opt(y, m.into(), d.into()).ok_or_else(bad)?
            }
            w @ Period::Week(..) => w.week_start().ok_or_else(bad)?,
            Period::Month(y, m) => NaiveDate::from_ymd_opt(y, m.into(), 1).ok_or_else(bad)?,
            _ => return Err(bad()),
        };
        let cohorts: Vec<Period> = match unit {
            "week" => (0..length)
                .map(|i| {
                    let w = (start + chrono::TimeDelta::weeks(i.into())).iso_week();
                    Period::Week(w.year(), w.week() as u8)
                })
                .collect(),
            "month" => (0..length)
                .map(|i| {
                    let d = start
                        .with_day(1)
                        .and_then(|d| d.checked_add_months(chrono::Months::new(i)))
                        .expect("a month within range");
                    Period::Month(d.year(), d.month() as u8)
                })
                .collect(),
            _ => return Err(ApiError::BadRequest("unit must be week or month".into())),
        };
        let mut rows = Vec::new();
        for cohort in cohorts {
            let view = Cohorts::read(&doc(&state, &site, ReportKind::Cohorts, cohort).await?);
            rows.push(
                json!({"cohort": cohort.to_string(), "size": view.size, "returned": view.returned}),
            );
        }
        Ok(json!({
            "site": site.id.as_str(), "zone": site.tz.name(), "unit": unit,
            "start": q.start, "length": length, "cohorts": rows,
        }))
    }
    .await;
    reply(result)
}
