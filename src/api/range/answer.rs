//! What each report answers over a range, from the documents [`super::fetch`] read: its
//! `data` (with `total`), and its CSV rows. No store call here: the same documents answer the
//! range and its comparison.

use crate::api::reports::{pairs, ranked, PAGES_HEADER, PAGE_PEOPLE_FROM};
use crate::api::table::Table;
use crate::field::two_digits;
use crate::period::{DateRange, Period, Piece};
use crate::reports::campaigns::Campaigns;
use crate::reports::cohorts::Cohorts;
use crate::reports::content::Content;
use crate::reports::engagement::Engagement;
use crate::reports::locations::Locations;
use crate::reports::people::traffic::Source;
use crate::reports::range::{mark_partial, merged, unequal_keys};
use crate::reports::referrers::Referrers;
use crate::reports::resolutions::Resolutions;
use crate::reports::technology::Technology;
use crate::reports::terms::Terms;
use crate::reports::traffic::Traffic;
use crate::reports::{events, number, Ranked, Report};
use chrono::{Datelike, NaiveDate};
use mongodb::bson::{Bson, Document, RawDocument, RawDocumentBuf};
use serde_json::{json, Value};
use std::collections::HashMap;

type Docs = HashMap<Period, Document>;
type RawDocs = HashMap<Period, RawDocumentBuf>;

/// The documents a range's answer reads: the report's (decoded, or as stored for the reports
/// [`super::merged_whole`] names), and for traffic the `people` sketches.
pub struct Read<'a> {
    pub docs: &'a Docs,
    pub raw: &'a RawDocs,
    pub sketches: &'a HashMap<Period, crate::reports::people::sketch::Sketch>,
}

static EMPTY: std::sync::LazyLock<Document> = std::sync::LazyLock::new(Document::new);

fn get(docs: &Docs, period: Period) -> &Document {
    docs.get(&period).unwrap_or(&EMPTY)
}

fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// The documents of a range in order: each whole month's month document, each edge day's
/// day document (reports kept per day and per month both).
fn in_order<D>(range: DateRange, docs: &HashMap<Period, D>) -> Vec<&D> {
    let mut out = Vec::new();
    for piece in range.pieces() {
        match piece {
            Piece::Month(..) => out.extend(docs.get(&piece.month())),
            Piece::Days(y, m, first, last) => {
                out.extend((first..=last).filter_map(|d| docs.get(&Period::Day(y, m, d))))
            }
        }
    }
    out
}

/// The month documents of a range's pieces, in order.
fn months(range: DateRange, docs: &Docs) -> Vec<(Piece, &Document)> {
    range
        .pieces()
        .into_iter()
        .map(|p| (p, get(docs, p.month())))
        .collect()
}

/// The stored documents of a range in order (see [`in_order`]).
fn raw_in_order(range: DateRange, raw: &RawDocs) -> Vec<&RawDocument> {
    in_order(range, raw).into_iter().map(|d| &**d).collect()
}

/// A capped list merged over `parts`: ranked, with the keys some document may have counted
/// under `(other)` marked partial.
fn merged_ranked(
    parts: &[&RawDocument],
    space: &str,
    read: impl Fn(&Document) -> Ranked,
) -> Ranked {
    let mut r = read(&merged(parts.iter().copied()));
    mark_partial(&mut r, &unequal_keys(parts, space));
    r
}

/// A ranked list as JSON (with `partial`), its rows added to `table`.
fn ranked_json(r: &Ranked, limit: usize, table: &mut Table, list: &str) -> Value {
    let mut v = ranked(r, limit, table, list);
    v["partial"] = json!(r.entries.iter().any(|e| e.partial));
    v
}

fn views(n: i64) -> Value {
    json!({ "views": n })
}

/// `(data, total)` of `report` over `range`; `table` gets the CSV rows when given.
pub fn answer(
    report: &str,
    range: DateRange,
    read: &Read<'_>,
    limit: usize,
    table: Option<&mut Table>,
) -> (Value, Value) {
    let docs = read.docs;
    let mut scratch = Table::default();
    let table = table.unwrap_or(&mut scratch);
    let ranked_header = ["list", "key", "views", "title"];
    let (mut data, total) = match report {
        "traffic" => traffic(range, read, table),
        "events" => events(range, docs, limit, table),
        "engagement" => engagement(range, docs, table),
        "retention" => retention(range, docs, table),
        "content" => {
            // People per page are the flags' sum: a whole month's `u` counts a visitor of
            // the page once, each edge day's once per day.
            *table = Table::new(&PAGES_HEADER);
            let parts = raw_in_order(range, read.raw);
            let pages = merged_ranked(&parts, "p", |d| Content::read(d).pages);
            let total = views(pages.total());
            let pages = ranked_json(&pages, limit, table, "pages");
            (
                json!({"pages": pages, "page_people": PAGE_PEOPLE_FROM}),
                total,
            )
        }
        "referrers" => {
            *table = Table::new(&ranked_header);
            let parts = raw_in_order(range, read.raw);
            let hosts = merged_ranked(&parts, "h", |d| Referrers::read(d).hosts);
            let links = merged_ranked(&parts, "l", |d| Referrers::read(d).links);
            let total = views(hosts.total());
            let data = json!({
                "hosts": ranked_json(&hosts, limit, table, "hosts"),
                "links": ranked_json(&links, limit, table, "links"),
            });
            (data, total)
        }
        "terms" => {
            *table = Table::new(&ranked_header);
            let parts = raw_in_order(range, read.raw);
            let view = Terms::read(&merged(parts.iter().copied()));
            let terms = merged_ranked(&parts, "t", |d| Terms::read(d).terms);
            let total = views(view.engines.iter().map(|(_, n)| n).sum());
            let engines = pairs("engines", &view.engines, table);
            let terms = ranked_json(&terms, limit, table, "terms");
            (json!({"engines": engines, "terms": terms}), total)
        }
        "campaigns" => {
            *table = Table::new(&ranked_header);
            let parts = raw_in_order(range, read.raw);
            let sources = merged_ranked(&parts, "s", |d| Campaigns::read(d).sources);
            let mediums = merged_ranked(&parts, "m", |d| Campaigns::read(d).mediums);
            let campaigns = merged_ranked(&parts, "c", |d| Campaigns::read(d).campaigns);
            let total = views(sources.total());
            let data = json!({
                "sources": ranked_json(&sources, limit, table, "sources"),
                "mediums": ranked_json(&mediums, limit, table, "mediums"),
                "campaigns": ranked_json(&campaigns, limit, table, "campaigns"),
            });
            (data, total)
        }
        "technology" => {
            *table = Table::new(&ranked_header);
            let view = Technology::read(&merged(raw_in_order(range, read.raw)));
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
            pairs("platforms", &view.platforms, table);
            pairs("devices", &view.devices, table);
            let total = views(view.browsers.iter().map(|b| b.views).sum());
            (json!(view), total)
        }
        "resolutions" => {
            *table = Table::new(&ranked_header);
            let view = Resolutions::read(&merged(raw_in_order(range, read.raw)));
            pairs("screen_widths", &view.screen_widths, table);
            pairs("browser_widths", &view.browser_widths, table);
            pairs("browser_heights", &view.browser_heights, table);
            let total = views(view.screen_widths.iter().map(|(_, n)| n).sum());
            (json!(view), total)
        }
        "locations" => {
            *table = Table::new(&ranked_header);
            let view = Locations::read(&merged(raw_in_order(range, read.raw)));
            pairs("countries", &view.countries, table);
            let total = views(view.countries.iter().map(|(_, n)| n).sum());
            (json!(view), total)
        }
        _ => (json!({}), json!({})),
    };
    data["total"] = total.clone();
    (data, total)
}

/// Views per day and month, exact; people from the sketches where they exist, else from the
/// flags, and `people_from` says which (see `reports::people::traffic`).
fn traffic(range: DateRange, read: &Read<'_>, table: &mut Table) -> (Value, Value) {
    *table = Table::new(&["day", "hour", "views", "people"]);
    let docs = read.docs;
    let pieces = months(range, docs);
    let people = crate::reports::people::traffic::Read {
        month: |y, m| docs.get(&Period::Month(y, m)),
        year: |_| None,
        sketch: |p| read.sketches.get(&p),
    };
    let day_views = |doc: &Document, d: u8| {
        number(
            doc.get_document("d")
                .ok()
                .and_then(|days| days.get_document(two_digits(d)).ok())
                .and_then(|x| x.get("v")),
        )
    };
    let mut days = Vec::with_capacity(range.len() as usize);
    for day in range.days() {
        let doc = get(docs, Period::Month(day.year(), day.month() as u8));
        let (v, p) = (day_views(doc, day.day() as u8), people.day(day));
        table.row(vec![date(day), String::new(), v.to_string(), p.to_string()]);
        days.push(json!({"day": date(day), "views": v, "people": p}));
    }
    let mut month_list = Vec::with_capacity(pieces.len());
    let mut total_views = 0;
    for (piece, doc) in &pieces {
        let (v, p) = match *piece {
            Piece::Month(y, m) => (number(doc.get("v")), people.of(Period::Month(y, m))),
            Piece::Days(y, m, first, last) => {
                let day = |d: u8| NaiveDate::from_ymd_opt(y, m.into(), d.into());
                let p = match (day(first), day(last)) {
                    (Some(first), Some(last)) => people.range(first, last).people,
                    _ => 0,
                };
                (piece.days().map(|d| day_views(doc, d)).sum(), p)
            }
        };
        total_views += v;
        month_list.push(json!({
            "month": piece.month().to_string(),
            "views": v,
            "people": p,
        }));
    }
    let counted = people.range(range.from(), range.to());
    let total = json!({"views": total_views, "people": counted.people});
    let mut data = json!({
        "total": total,
        "people_from": counted.from.as_str(),
        "days": days,
        "months": month_list,
    });
    if counted.from == Source::Mixed {
        data["people_from_flags"] = json!(counted
            .from_flags
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>());
    }
    if let [(Piece::Days(_, _, d, _), doc)] = pieces[..] {
        // A single day: its hours, as the site's clock labels them (people new that hour: the
        // flags).
        let hours: Vec<Value> = Traffic::read(doc)
            .hours
            .iter()
            .filter(|((day, _), _)| *day == d)
            .map(|((_, h), c)| json!({"hour": h, "views": c.views, "people": c.people}))
            .collect();
        data["hours"] = json!(hours);
    }
    (data, total)
}

/// Events by name over the range's days, from the `events_day` month documents.
fn events(range: DateRange, docs: &Docs, limit: usize, table: &mut Table) -> (Value, Value) {
    *table = Table::new(&["event", "count", "total"]);
    // Each month's `e` with only the range's days.
    let parts: Vec<Document> = months(range, docs)
        .into_iter()
        .map(|(piece, doc)| {
            let mut names = Document::new();
            for (name, buckets) in doc.get_document("e").into_iter().flatten() {
                let Some(buckets) = buckets.as_document() else {
                    continue;
                };
                let kept: Document = buckets
                    .iter()
                    .filter(|(d, _)| d.parse::<u8>().is_ok_and(|d| piece.days().contains(&d)))
                    .map(|(d, t)| (d.clone(), t.clone()))
                    .collect();
                if !kept.is_empty() {
                    names.insert(name.clone(), Bson::Document(kept));
                }
            }
            mongodb::bson::doc! {"e": names}
        })
        .collect();
    let refs: Vec<&Document> = parts.iter().collect();
    let partial = unequal_keys(&refs, "e");
    let list = events::totals(&merged(refs.iter().copied()));
    let mut sum = events::Tally::default();
    let mut items = Vec::new();
    for (name, t) in &list {
        sum += *t;
        table.row(vec![name.clone(), t.count.to_string(), t.total.to_string()]);
        if items.len() < limit {
            let mut item = json!({"name": name, "count": t.count, "total": t.total});
            if partial.contains(name) {
                item["partial"] = json!(true);
            }
            items.push(item);
        }
    }
    let total = json!({"count": sum.count, "total": sum.total});
    let data = json!({"events": items, "partial": !partial.is_empty()});
    (data, total)
}

/// Engagement per day of the range, with its sums.
fn engagement(range: DateRange, docs: &Docs, table: &mut Table) -> (Value, Value) {
    *table = Table::new(&["day", "visits", "bounces", "new", "returning"]);
    let mut days = serde_json::Map::new();
    let (mut visits, mut bounces, mut new, mut returning) = (0, 0, 0, 0);
    for (piece, doc) in months(range, docs) {
        let Period::Month(y, m) = piece.month() else {
            continue;
        };
        for (d, day) in Engagement::read(doc).days {
            let Some(when) = NaiveDate::from_ymd_opt(y, m.into(), d.into()) else {
                continue;
            };
            if !piece.days().contains(&d) {
                continue;
            }
            visits += day.visits;
            bounces += day.bounces;
            new += day.new;
            returning += day.returning;
            table.row(vec![
                date(when),
                day.visits.to_string(),
                day.bounces.to_string(),
                day.new.to_string(),
                day.returning.to_string(),
            ]);
            days.insert(date(when), json!(day));
        }
    }
    let total = json!({"visits": visits, "bounces": bounces, "new": new, "returning": returning});
    (json!({"days": days}), total)
}

/// The weekly cohorts whose Monday falls in the range's months.
pub fn cohort_weeks(range: DateRange) -> Vec<Period> {
    range
        .whole_months()
        .days()
        .filter(|d| d.weekday() == chrono::Weekday::Mon)
        .map(|d| {
            let w = d.iso_week();
            Period::Week(w.year(), w.week() as u8)
        })
        .collect()
}

/// Retention: the weekly cohorts whose Monday is in the range's months, and each month's.
fn retention(range: DateRange, docs: &Docs, table: &mut Table) -> (Value, Value) {
    *table = Table::new(&[
        "cohort", "size", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12",
    ]);
    let mut row = |cohort: Period| {
        let view = Cohorts::read(get(docs, cohort));
        let mut cells = vec![cohort.to_string(), view.size.to_string()];
        cells.extend(view.returned.iter().map(|n| n.to_string()));
        table.row(cells);
        (
            view.size,
            json!({"cohort": cohort.to_string(), "size": view.size, "returned": view.returned}),
        )
    };
    let weeks: Vec<Value> = cohort_weeks(range).into_iter().map(|w| row(w).1).collect();
    let mut size = 0;
    let mut month_list = Vec::new();
    for piece in range.whole_months().pieces() {
        let (n, v) = row(piece.month());
        size += n;
        month_list.push(v);
    }
    let total = json!({ "size": size });
    (json!({"weeks": weeks, "months": month_list}), total)
}
