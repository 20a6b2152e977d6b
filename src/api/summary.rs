//! `GET /api/v1/sites/{id}/summary`: Gaug.es's first screen — today, yesterday, the last 24
//! hours by hour, the last 30 days by day, the last 12 months, all time — views and people.
//!
//! Read from a handful of documents: the traffic month documents of the last 12 months (one
//! `find` per yearly collection and projection: hours only of the months of the last 24 hours,
//! days only of those of the last 30 days, the totals `v`, `u`, `p` of the older ones), the
//! totals of the year document of each `traffic.<YYYY>` collection for all time, and the people
//! sketches of what may not have closed (one `find` per yearly `people` collection). The calls
//! go in three rounds, each made together (the months and the list of collections, the years,
//! the sketches): a read waits for three answers, not for each call in turn. Every bucket is
//! the site's local hour, day or month.
//!
//! With `date=`, `from`/`to` or `compare=` it answers that range instead, from the traffic
//! report's range reading ([`super::range`]): `total`, `people_from`, `days`, `months` and,
//! compared, `previous`. Those answers are not cached.
//!
//! The answer is kept (serialised) per site for at most [`TTL`], and never past the local hour
//! it was read in: a dashboard polling it costs a lookup, and a summary shows what any node
//! wrote at most [`TTL`] after it reached the store (this node's flushes included: nothing
//! tells the cache about writes, on this node or another).

use super::range::{self, Asked, PeriodQuery};
use super::{authorize, ApiError, ApiState};
use crate::period::{DateRange, LocalTime, Period};
use crate::reports::number;
use crate::reports::people::traffic::Read;
use crate::site::{Site, SiteId};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Datelike, NaiveDate, TimeDelta};
use mongodb::bson::Document;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Serialize, Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    pub views: i64,
    pub people: i64,
}

#[derive(Serialize)]
struct Dated {
    #[serde(flatten)]
    counts: Counts,
    #[serde(skip_serializing_if = "Option::is_none")]
    date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hour: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    month: Option<String>,
}

#[derive(Serialize)]
pub struct Summary {
    site: String,
    zone: String,
    today: Dated,
    yesterday: Dated,
    hours: Vec<Dated>,
    days: Vec<Dated>,
    months: Vec<Dated>,
    all_time: Counts,
}

fn dated(counts: Counts) -> Dated {
    Dated {
        counts,
        date: None,
        hour: None,
        month: None,
    }
}

/// Month `(year, month)` of `date`, `n` months back.
fn months_back(year: i32, month: u8, n: i32) -> (i32, u8) {
    let index = year * 12 + i32::from(month) - 1 - n;
    (index.div_euclid(12), (index.rem_euclid(12) + 1) as u8)
}

/// The top-level fields the summary reads of a month document: the two months of the last
/// 24 hours need their hours, the two of the last 30 days their days, the others only totals
/// (`p`: the people of a closed month, see `aggregate::close`).
const WITH_HOURS: &[&str] = &["v", "u", "p", "d", "h"];
const WITH_DAYS: &[&str] = &["v", "u", "p", "d"];
const TOTALS: &[&str] = &["v", "u", "p"];

/// Reads `fields` of the documents `ids` of each yearly collection `<prefix>.<YYYY>`: one
/// call per collection and projection, made together.
async fn fetch(
    state: &ApiState,
    prefix: &str,
    ids: BTreeMap<(i32, &'static [&'static str]), Vec<String>>,
) -> Result<HashMap<String, Document>, ApiError> {
    let reads = ids.into_iter().map(|((year, fields), ids)| async move {
        let collection = format!("{prefix}.{year:04}");
        state.store.get_many_fields(&collection, &ids, fields).await
    });
    let mut out = HashMap::new();
    for docs in futures_util::future::join_all(reads).await {
        for doc in docs? {
            if let Ok(id) = doc.get_str("_id") {
                out.insert(id.to_owned(), doc);
            }
        }
    }
    Ok(out)
}

/// Reads the summary of `site` at the current time.
pub async fn read(state: &ApiState, site: &Site) -> Result<Summary, ApiError> {
    let now = (state.clock)();
    let local = LocalTime::at(now, site.tz);
    let today = local.date();
    let yesterday = today - TimeDelta::days(1);
    let id = |p: Period| format!("{}:{p}", site.id);
    let month_of = |d: NaiveDate| (d.year(), d.month() as u8);
    // The month documents of the last 12 months, with only the fields each answers.
    let months: Vec<(i32, u8)> = (0..12)
        .rev()
        .map(|n| months_back(local.year, local.month, n))
        .collect();
    let day_span = today - TimeDelta::days(29);
    let hour_span = LocalTime::at(now - TimeDelta::hours(23), site.tz).date();
    let mut traffic_ids: BTreeMap<(i32, &'static [&'static str]), Vec<String>> = BTreeMap::new();
    for &(y, m) in &months {
        let fields = if (y, m) >= month_of(hour_span) {
            WITH_HOURS
        } else if (y, m) >= month_of(day_span) {
            WITH_DAYS
        } else {
            TOTALS
        };
        traffic_ids
            .entry((y, fields))
            .or_default()
            .push(id(Period::Month(y, m)));
    }
    // The store calls in two rounds, each made together: the month documents and the list of
    // collections, then the year documents of every `traffic.<YYYY>` (all time); the
    // sketches follow, as the documents say which periods have not closed.
    let (docs, collections) = futures_util::future::join(
        fetch(state, "traffic", traffic_ids),
        state.store.collections(),
    )
    .await;
    let (docs, collections) = (docs?, collections?);
    let mut year_ids: BTreeMap<(i32, &'static [&'static str]), Vec<String>> = BTreeMap::new();
    for collection in collections {
        let Some(year) = collection.strip_prefix("traffic.") else {
            continue;
        };
        if let Some(year) = year
            .parse::<i32>()
            .ok()
            .filter(|_| year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()))
        {
            year_ids
                .entry((year, TOTALS))
                .or_default()
                .push(id(Period::Year(year)));
        }
    }
    let years = fetch(state, "traffic", year_ids).await?;

    // The people sketches of the days, months and years with views but no closed number yet
    // (today, this month and this year, and whatever a closer has not reached; see
    // `reports::people::traffic`): a closed one reads its number.
    let month_doc = |y: i32, m: u8| docs.get(&id(Period::Month(y, m)));
    let mut wanted: BTreeSet<Period> = BTreeSet::new();
    let mut want = |p: Period| {
        wanted.insert(p);
    };
    let thirty = DateRange::parse(
        &day_span.format("%Y-%m-%d").to_string(),
        &today.format("%Y-%m-%d").to_string(),
    )
    .expect("30 days are a range");
    for p in super::range::unclosed_days(thirty, month_doc) {
        want(p);
    }
    let unclosed = |doc: Option<&Document>| {
        doc.is_some_and(|d| number(d.get("v")) > 0 && number(d.get("p")) <= 0)
    };
    for &(y, m) in &months {
        if unclosed(month_doc(y, m)) {
            want(Period::Month(y, m));
        }
    }
    for (doc_id, doc) in &years {
        let year: Option<i32> = doc_id.rsplit(':').next().and_then(|y| y.parse().ok());
        if let Some(y) = year.filter(|_| unclosed(Some(doc))) {
            want(Period::Year(y));
        }
    }
    let sketches = super::range::sketches(state, site, &wanted).await?;
    let people = Read {
        month: month_doc,
        year: |y| years.get(&id(Period::Year(y))),
        sketch: |p| sketches.get(&p),
    };
    let views = |doc: Option<&Document>| doc.map_or(0, |d| number(d.get("v")));
    let day = |date: NaiveDate| -> Counts {
        Counts {
            views: views(
                month_doc(date.year(), date.month() as u8)
                    .and_then(|d| d.get_document("d").ok())
                    .and_then(|d| d.get_document(format!("{:02}", date.day())).ok()),
            ),
            people: people.day(date),
        }
    };

    // The last 24 hours, as the site's clock labels them (a DST change makes 23 or 25 labels
    // collapse or repeat; a repeated label is shown once). People new that hour: the flags.
    let mut hours: Vec<Dated> = Vec::with_capacity(24);
    for back in (0..24).rev() {
        let l = LocalTime::at(now - TimeDelta::hours(back), site.tz);
        let label = l.hour_period().to_string();
        if hours.last().and_then(|h| h.hour.as_deref()) == Some(label.as_str()) {
            continue;
        }
        let hour = month_doc(l.year, l.month)
            .and_then(|d| d.get_document("h").ok())
            .and_then(|h| h.get_document(format!("{:02}", l.day)).ok())
            .and_then(|d| d.get_document(format!("{:02}", l.hour)).ok());
        hours.push(Dated {
            hour: Some(label),
            ..dated(Counts {
                views: views(hour),
                people: hour.map_or(0, |d| number(d.get("u"))),
            })
        });
    }
    let days = (0..30)
        .rev()
        .map(|back| {
            let date = today - TimeDelta::days(back);
            Dated {
                date: Some(date.format("%Y-%m-%d").to_string()),
                ..dated(day(date))
            }
        })
        .collect();
    let month_list = months
        .iter()
        .map(|&(y, m)| Dated {
            month: Some(Period::Month(y, m).to_string()),
            ..dated(Counts {
                views: views(month_doc(y, m)),
                people: people.of(Period::Month(y, m)),
            })
        })
        .collect();
    // Years do not merge (each has its own key): all time adds them.
    let mut all_time = Counts::default();
    for (doc_id, doc) in &years {
        let year = doc_id.rsplit(':').next().and_then(|y| y.parse().ok());
        all_time.views += number(doc.get("v"));
        all_time.people += year.map_or(0, |y| people.of(Period::Year(y)));
    }

    Ok(Summary {
        site: site.id.to_string(),
        zone: site.tz.name().to_owned(),
        today: Dated {
            date: Some(today.format("%Y-%m-%d").to_string()),
            ..dated(day(today))
        },
        yesterday: Dated {
            date: Some(yesterday.format("%Y-%m-%d").to_string()),
            ..dated(day(yesterday))
        },
        hours,
        days,
        months: month_list,
        all_time,
    })
}

/// The first local day with views of `site`: the oldest `traffic.<YYYY>` whose year document
/// has views, then the first day with views among its month documents (their `d` only). Three
/// store calls for a site with data, plus one per older empty year. `None` without views.
pub async fn first_day(state: &ApiState, site: &Site) -> Result<Option<NaiveDate>, ApiError> {
    let mut years: Vec<i32> = state
        .store
        .collections()
        .await?
        .iter()
        .filter_map(|c| c.strip_prefix("traffic."))
        .filter(|y| y.len() == 4)
        .filter_map(|y| y.parse().ok())
        .collect();
    years.sort_unstable();
    for year in years {
        let collection = format!("traffic.{year:04}");
        let doc = state
            .store
            .get(&collection, &format!("{}:{year}", site.id))
            .await?;
        if doc.is_none_or(|d| number(d.get("v")) <= 0) {
            continue;
        }
        let ids: Vec<String> = (1..=12)
            .map(|m| format!("{}:{}", site.id, Period::Month(year, m)))
            .collect();
        let months = state
            .store
            .get_many_fields(&collection, &ids, &["d"])
            .await?;
        let first = months
            .iter()
            .filter_map(|doc| {
                let month = doc
                    .get_str("_id")
                    .ok()
                    .and_then(|id| id.rsplit(':').next())
                    .and_then(Period::parse)?;
                let Period::Month(y, m) = month else {
                    return None;
                };
                let day = doc
                    .get_document("d")
                    .ok()?
                    .iter()
                    .filter(|(_, day)| {
                        day.as_document()
                            .is_some_and(|day| number(day.get("v")) > 0)
                    })
                    .filter_map(|(dd, _)| dd.parse::<u32>().ok())
                    .min()?;
                NaiveDate::from_ymd_opt(y, m.into(), day)
            })
            .min();
        if first.is_some() {
            return Ok(first);
        }
    }
    Ok(None)
}

pub async fn summary(
    req: HttpRequest,
    id: web::Path<String>,
    query: web::Query<PeriodQuery>,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let site = match authorize(&req, &state, &id) {
        Ok(site) => site,
        Err(e) => return e.answer(),
    };
    if query.asks_range() || query.date.is_some() {
        return over_range(&state, &site, &query).await;
    }
    let hour = LocalTime::at((state.clock)(), site.tz)
        .hour_period()
        .to_string();
    let now = Instant::now();
    if let Some(body) = state.summaries.get(&site.id, now, &hour) {
        return json_body(body);
    }
    match read(&state, &site).await {
        Ok(summary) => {
            let body: Arc<[u8]> = serde_json::to_vec(&summary).unwrap_or_default().into();
            state.summaries.put(&site.id, now, hour, Arc::clone(&body));
            json_body(body)
        }
        Err(e) => e.answer(),
    }
}

/// The summary of a range: the traffic report's range answer, under the summary's `site`,
/// `zone` and `period`.
async fn over_range(state: &ApiState, site: &Site, query: &PeriodQuery) -> HttpResponse {
    let (range, compare) = match range::asked(state, site, query) {
        Ok(Asked::Range(range, compare)) => (range, compare),
        Ok(Asked::One(period)) => (
            DateRange::of(period).expect("a day or a month is a range"),
            None,
        ),
        Err(e) => return e.answer(),
    };
    match range::read(state, site, "traffic", range, compare, 1).await {
        Ok(answer) => {
            let mut body = serde_json::json!({
                "site": site.id.as_str(),
                "zone": site.tz.name(),
                "period": answer.period,
            });
            if let (Some(body), serde_json::Value::Object(data)) =
                (body.as_object_mut(), answer.data)
            {
                body.extend(data);
            }
            if let Some(previous) = answer.previous_period {
                body["previous_period"] = previous;
            }
            HttpResponse::Ok().json(body)
        }
        Err(e) => e.answer(),
    }
}

fn json_body(body: Arc<[u8]>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body.to_vec())
}

/// How long a summary read from the store is served again: the most its numbers can lag
/// behind the documents, whichever node wrote them.
pub const TTL: Duration = Duration::from_secs(2);

/// A serialised summary with when it was read (the reading started) and the local hour it is
/// valid for.
type Entry = (Instant, String, Arc<[u8]>);

/// Serialised summaries per site, each valid for [`TTL`] within one local hour.
#[derive(Default)]
pub struct Cache {
    entries: Mutex<HashMap<SiteId, Entry>>,
}

impl Cache {
    fn get(&self, site: &SiteId, now: Instant, hour: &str) -> Option<Arc<[u8]>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(site)
            .filter(|(read, h, _)| now.saturating_duration_since(*read) < TTL && h == hour)
            .map(|(_, _, body)| Arc::clone(body))
    }

    fn put(&self, site: &SiteId, read: Instant, hour: String, body: Arc<[u8]>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Sites not asked for in a while are dropped with the next put: the cache holds at
        // most the sites asked for within the last TTL, plus this one.
        entries.retain(|_, (at, _, _)| read.saturating_duration_since(*at) < TTL);
        entries.insert(site.clone(), (read, hour, body));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_back_cross_years() {
        assert_eq!(months_back(2026, 11, 0), (2026, 11));
        assert_eq!(months_back(2026, 11, 11), (2025, 12));
        assert_eq!(months_back(2026, 1, 1), (2025, 12));
        assert_eq!(months_back(2026, 1, 13), (2024, 12));
    }

    #[test]
    fn a_cached_summary_lives_ttl_within_its_hour() {
        let cache = Cache::default();
        let acme = SiteId::parse("acme").unwrap();
        let t0 = Instant::now();
        let body: Arc<[u8]> = Arc::from(&b"{}"[..]);
        cache.put(&acme, t0, "2026-12-01T16".into(), body);
        assert!(cache.get(&acme, t0, "2026-12-01T16").is_some());
        assert!(cache
            .get(&acme, t0 + TTL - Duration::from_millis(1), "2026-12-01T16")
            .is_some());
        assert!(cache.get(&acme, t0 + TTL, "2026-12-01T16").is_none());
        assert!(cache.get(&acme, t0, "2026-12-01T17").is_none());
    }
}
