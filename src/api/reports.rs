//! `GET /api/v1/sites/{id}/reports/{report}?date=YYYY-MM-DD|YYYY-MM&limit=N[&format=csv]`:
//! one report for one period, as JSON (with the period and the site's zone) or CSV.
//!
//! Each answer reads one document (`retention`: the cohorts of a month, one `find`), through the
//! same `Report::read` any caller uses. Reports kept per month answer for the month of a day.
//! A range (`from`/`to`, `date=YYYY`, `compare`) is read by [`super::range`].

use super::range::{self, Asked, PeriodQuery};
use super::table::{csv_response, wants_csv, Table};
use super::{authorize, ApiError, ApiState};
use crate::period::{DateRange, Period};
use crate::reports::campaigns::Campaigns;
use crate::reports::cohorts::Cohorts;
use crate::reports::content::Content;
use crate::reports::engagement::Engagement;
use crate::reports::locations::Locations;
use crate::reports::referrers::Referrers;
use crate::reports::resolutions::Resolutions;
use crate::reports::technology::Technology;
use crate::reports::terms::Terms;
use crate::reports::traffic::Traffic;
use crate::reports::{events, Ranked, Report, ReportKind};
use crate::site::Site;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Datelike;
use mongodb::bson::Document;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Entries per list when `limit` is not given, and the most it may be.
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 1000;

pub const REPORTS: [&str; 11] = [
    "traffic",
    "content",
    "referrers",
    "terms",
    "campaigns",
    "technology",
    "resolutions",
    "locations",
    "events",
    "engagement",
    "retention",
];

#[derive(serde::Deserialize)]
pub struct Query {
    limit: Option<usize>,
    date: Option<String>,
    from: Option<String>,
    to: Option<String>,
    compare: Option<String>,
}

/// One document of `site`'s `kind` for `period`, empty when it does not exist.
pub(super) async fn doc(
    state: &ApiState,
    site: &Site,
    kind: ReportKind,
    period: Period,
) -> Result<Document, ApiError> {
    let id = format!("{}:{period}", site.id);
    Ok(state
        .store
        .get(&kind.collection(period.year()), &id)
        .await?
        .unwrap_or_default())
}

/// The CSV columns of the pages list, which counts people too (after the title, so the
/// columns of every other ranked list keep their places).
pub(super) const PAGES_HEADER: [&str; 5] = ["list", "key", "views", "title", "people"];

/// Where a page's people come from, as the content answer says it (`page_people`): the
/// snippet's flags (a visitor's first view of the page in a day, in a month), summed over a
/// range's whole months and edge days (docs/data-model.md).
pub(super) const PAGE_PEOPLE_FROM: &str = "flags, summed per day and month";

/// A ranked list as JSON, its rows added to `table`; a list that counts people (pages: its
/// `other_people` is set) gets a people cell on each row and `other_people`.
pub(super) fn ranked(r: &Ranked, limit: usize, table: &mut Table, list: &str) -> Value {
    let people = |n: Option<i64>| r.other_people.map(|_| n.unwrap_or(0).to_string());
    for e in &r.entries {
        let mut row = vec![
            list.to_owned(),
            e.key.clone(),
            e.views.to_string(),
            e.title.clone().unwrap_or_default(),
        ];
        row.extend(people(e.people));
        table.row(row);
    }
    if r.other != 0 {
        let mut row = vec![
            list.to_owned(),
            "(other)".into(),
            r.other.to_string(),
            String::new(),
        ];
        row.extend(people(r.other_people));
        table.row(row);
    }
    let mut out = json!({"entries": r.top(limit), "other": r.other});
    if let Some(n) = r.other_people {
        out["other_people"] = json!(n);
    }
    out
}

pub(super) fn pairs(list: &str, items: &[(String, i64)], table: &mut Table) -> Value {
    for (k, n) in items {
        table.row(vec![
            list.to_owned(),
            k.clone(),
            n.to_string(),
            String::new(),
        ]);
    }
    json!(items)
}

/// Reads `name` for `asked`: the period answered for, the JSON data and the table.
pub async fn read(
    state: &ApiState,
    site: &Site,
    name: &str,
    asked: Period,
    limit: usize,
) -> Result<(Period, Value, Table), ApiError> {
    let month = asked.month();
    let mut table = Table::new(&["list", "key", "views", "title"]);
    let (period, data) = match name {
        "traffic" => {
            let traffic = doc(state, site, ReportKind::Traffic, month).await?;
            let mut view = Traffic::read(&traffic);
            // People: the one figure of `reports::people::traffic` (a closed number, a
            // sketch, or the flags); hours keep their flags.
            let range = DateRange::of(asked).expect("a day or a month is a range");
            let mut wanted: BTreeSet<Period> =
                super::range::unclosed_days(range, |_, _| Some(&traffic))
                    .into_iter()
                    .collect();
            wanted.insert(asked);
            let sketches = super::range::sketches(state, site, &wanted).await?;
            let people = crate::reports::people::traffic::Read {
                month: |_, _| Some(&traffic),
                year: |_| None,
                sketch: |p| sketches.get(&p),
            };
            view.total.people = people.of(month);
            for (d, c) in view.days.iter_mut() {
                if let Some(date) = range.days().find(|date| date.day() == u32::from(*d)) {
                    c.people = people.day(date);
                }
            }
            let mut t = Table::new(&["day", "hour", "views", "people"]);
            let data = if let Period::Day(_, _, d) = asked {
                let hours: Vec<Value> = view
                    .hours
                    .iter()
                    .filter(|((day, _), _)| *day == d)
                    .map(|((_, h), c)| {
                        t.row(vec![
                            d.to_string(),
                            h.to_string(),
                            c.views.to_string(),
                            c.people.to_string(),
                        ]);
                        json!({"hour": h, "views": c.views, "people": c.people})
                    })
                    .collect();
                let total = view.days.get(&d).copied().unwrap_or_default();
                json!({"total": total, "hours": hours})
            } else {
                for (day, c) in &view.days {
                    t.row(vec![
                        day.to_string(),
                        String::new(),
                        c.views.to_string(),
                        c.people.to_string(),
                    ]);
                }
                let days: Vec<Value> = view
                    .days
                    .iter()
                    .map(|(d, c)| json!({"day": d, "views": c.views, "people": c.people}))
                    .collect();
                let hours: Vec<Value> = view
                    .hours
                    .iter()
                    .map(|((d, h), c)| json!({"day": d, "hour": h, "views": c.views, "people": c.people}))
                    .collect();
                json!({"total": view.total, "days": days, "hours": hours})
            };
            table = t;
            (asked, data)
        }
        "content" => {
            let view = Content::read(&doc(state, site, ReportKind::Content, asked).await?);
            table = Table::new(&PAGES_HEADER);
            let pages = ranked(&view.pages, limit, &mut table, "pages");
            (
                asked,
                json!({"pages": pages, "page_people": PAGE_PEOPLE_FROM}),
            )
        }
        "referrers" => {
            let view = Referrers::read(&doc(state, site, ReportKind::Referrers, asked).await?);
            let hosts = ranked(&view.hosts, limit, &mut table, "hosts");
            let links = ranked(&view.links, limit, &mut table, "links");
            (asked, json!({"hosts": hosts, "links": links}))
        }
        "terms" => {
            let view = Terms::read(&doc(state, site, ReportKind::Terms, month).await?);
            let engines = pairs("engines", &view.engines, &mut table);
            let terms = ranked(&view.terms, limit, &mut table, "terms");
            (month, json!({"engines": engines, "terms": terms}))
        }
        "campaigns" => {
            let view = Campaigns::read(&doc(state, site, ReportKind::Campaigns, month).await?);
            let sources = ranked(&view.sources, limit, &mut table, "sources");
            let mediums = ranked(&view.mediums, limit, &mut table, "mediums");
            let campaigns = ranked(&view.campaigns, limit, &mut table, "campaigns");
            (
                month,
                json!({"sources": sources, "mediums": mediums, "campaigns": campaigns}),
            )
        }
        "technology" => {
            let view = Technology::read(&doc(state, site, ReportKind::Technology, month).await?);
            for b in &view.browsers {
                for (version, n) in &b.versions {
                    table.row(vec![
                        "browsers".into(),
                        format!("{} {version}", b.name),
                        n.to_string(),
                        String::new(),
                    ]);
                }
            }
            pairs("platforms", &view.platforms, &mut table);
            pairs("devices", &view.devices, &mut table);
            (month, json!(view))
        }
        "resolutions" => {
            let view = Resolutions::read(&doc(state, site, ReportKind::Resolutions, month).await?);
            pairs("screen_widths", &view.screen_widths, &mut table);
            pairs("browser_widths", &view.browser_widths, &mut table);
            pairs("browser_heights", &view.browser_heights, &mut table);
            (month, json!(view))
        }
        "locations" => {
            let view = Locations::read(&doc(state, site, ReportKind::Locations, month).await?);
            pairs("countries", &view.countries, &mut table);
            (month, json!(view))
        }
        "events" => {
            let (kind, period) = match asked {
                Period::Day(..) => (ReportKind::EventsHour, asked),
                _ => (ReportKind::EventsDay, month),
            };
            let mut t = Table::new(&["event", "count", "total"]);
            let list = events::totals(&doc(state, site, kind, period).await?);
            let items: Vec<Value> = list
                .iter()
                .map(|(name, t_)| {
                    t.row(vec![
                        name.clone(),
                        t_.count.to_string(),
                        t_.total.to_string(),
                    ]);
                    json!({"name": name, "count": t_.count, "total": t_.total})
                })
                .take(limit)
                .collect();
            table = t;
            (period, json!({"events": items}))
        }
        "engagement" => {
            let mut view =
                Engagement::read(&doc(state, site, ReportKind::Engagement, month).await?);
            if let Period::Day(_, _, d) = asked {
                view.days.retain(|day, _| *day == d);
            }
            let mut t = Table::new(&["day", "visits", "bounces", "new", "returning"]);
            for (d, day) in &view.days {
                t.row(vec![
                    d.to_string(),
                    day.visits.to_string(),
                    day.bounces.to_string(),
                    day.new.to_string(),
                    day.returning.to_string(),
                ]);
            }
            table = t;
            (asked, json!(view))
        }
        "retention" => {
            let Period::Month(y, m) = month else {
                unreachable!("month() of a day or month is a month")
            };
            // Weekly cohorts whose Monday is in the month, and the month's own cohort.
            let mut weeks = Vec::new();
            let first = chrono::NaiveDate::from_ymd_opt(y, m.into(), 1).expect("a real month");
            let mut day = first;
            while day.month0() + 1 == u32::from(m) {
                if day.weekday() == chrono::Weekday::Mon {
                    let w = day.iso_week();
                    weeks.push(Period::Week(w.year(), w.week() as u8));
                }
                day += chrono::TimeDelta::days(1);
            }
            let mut t = Table::new(&[
                "cohort", "size", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10",
                "r11", "r12",
            ]);
            // The weeks' cohorts, then the month's: one document each, one row each.
            let mut cohorts = Vec::new();
            for cohort in weeks.iter().copied().chain([month]) {
                let view = Cohorts::read(&doc(state, site, ReportKind::Cohorts, cohort).await?);
                let mut row = vec![cohort.to_string(), view.size.to_string()];
                row.extend(view.returned.iter().map(|n| n.to_string()));
                t.row(row);
                cohorts.push(json!({"cohort": cohort.to_string(), "size": view.size, "returned": view.returned}));
            }
            table = t;
            let month_cohort = cohorts.pop().expect("the month's cohort");
            (month, json!({"weeks": cohorts, "month": month_cohort}))
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "no report {other:?}; reports: {}",
                REPORTS.join(", ")
            )))
        }
    };
    Ok((period, data, table))
}

pub async fn report(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<Query>,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let (id, name) = path.into_inner();
    let site = match authorize(&req, &state, &id) {
        Ok(site) => site,
        Err(e) => return e.answer(),
    };
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return ApiError::BadRequest(format!("limit must be 1 to {MAX_LIMIT}")).answer();
    }
    let query = query.into_inner();
    let period = PeriodQuery {
        date: query.date,
        from: query.from,
        to: query.to,
        compare: query.compare,
    };
    let asked = match range::asked(&state, &site, &period) {
        Ok(asked) => asked,
        Err(e) => return e.answer(),
    };
    let (range, compare) = match asked {
        Asked::Range(range, compare) => (range, compare),
        Asked::One(period) => return one(&req, &state, &site, &name, period, limit).await,
    };
    match range::read(&state, &site, &name, range, compare, limit).await {
        Ok(answer) if wants_csv(&req) => csv_response(
            &answer.table,
            &format!("{}-{name}-{}", site.id, answer.label),
        ),
        Ok(answer) => {
            let mut body = json!({
                "site": site.id.as_str(),
                "zone": site.tz.name(),
                "report": name,
                "period": answer.period,
                "data": answer.data,
            });
            if let Some(previous) = answer.previous_period {
                body["previous_period"] = previous;
            }
            HttpResponse::Ok().json(body)
        }
        Err(e) => e.answer(),
    }
}

/// The answer for one day or month, as before ranges existed.
async fn one(
    req: &HttpRequest,
    state: &ApiState,
    site: &Site,
    name: &str,
    asked: Period,
    limit: usize,
) -> HttpResponse {
    match read(state, site, name, asked, limit).await {
        Ok((period, data, table)) => {
            if wants_csv(req) {
                csv_response(&table, &format!("{}-{name}-{period}", site.id))
            } else {
                HttpResponse::Ok().json(json!({
                    "site": site.id.as_str(),
                    "zone": site.tz.name(),
                    "report": name,
                    "period": period.to_string(),
                    "data": data,
                }))
            }
        }
        Err(e) => e.answer(),
    }
}
