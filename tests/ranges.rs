//! Ranges over real HTTP, on both stores: `from`/`to`, `date=YYYY` and `compare` on the summary
//! and the reports, against hits sent through the pixel at chosen instants — across a month
//! and a year boundary in a zone far from UTC, across a DST change, a year back onto 29
//! February, a capped key admitted in one month and counted under `(other)` in another, CSV,
//! the 400s, and how many store calls a range costs.

mod support;

use chrono::{DateTime, Utc};
use mongodb::bson::Document;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use support::*;
use tally::settings::ServeSettings;
use tally::site::Site;
use tally::store::{Applied, Batch, CollectionStats, Store, StoreError};

/// The app with the public site `acme` in `tz`, its clock at `start`.
async fn app_in(
    backend: Backend,
    tz: &str,
    settings: ServeSettings,
    start: DateTime<Utc>,
) -> (TestApp, TestClock) {
    let store = TestStore::new(backend).await;
    let mut site = store.add_site("acme", tz).await;
    site.public = true;
    store.store.update_site(&site).await.unwrap();
    let clock = TestClock::at(start);
    let app = TestApp::spawn(store, settings, clock.clock()).await;
    (app, clock)
}

/// A page view of `path` at `at`, by a visitor new that day (and, with `month`, that month).
async fn view_at(app: &TestApp, clock: &TestClock, at: DateTime<Utc>, path: &str, month: bool) {
    clock.set(at);
    let um = if month { "&um=1" } else { "" };
    app.hit(
        &format!(
            "site=acme&url=https%3A%2F%2Facme.example{path}&ref=https%3A%2F%2Fnews.example%2Fa&ud=1&vp=1{um}"
        ),
        CHROME_WIN,
    )
    .await;
}

async fn event_at(app: &TestApp, clock: &TestClock, at: DateTime<Utc>, name: &str) {
    clock.set(at);
    let r = app
        .http
        .post(format!("{}/e", app.address))
        .body(json!([{"site": "acme", "name": name, "value": 2}]).to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    let r = app
        .http
        .get(format!("{}/api/v1/sites/acme/{path}", app.address))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn ok(app: &TestApp, path: &str) -> Value {
    let (status, body) = get(app, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// A sketch's estimate of `want` visitors, exact unless two share a register (then one less
/// per collision: among 34 visitors in 4,096 registers a collision has probability 13%, three
/// 0.04%).
fn about(got: &Value, want: i64) {
    let got = got.as_i64().unwrap();
    assert!((want - 2..=want).contains(&got), "{got} for {want}");
}

/// Pacific/Kiritimati is UTC+14: local noon is 22:00 UTC the day before.
fn kiritimati_noon(y: i32, mo: u32, d: u32) -> DateTime<Utc> {
    utc(y, mo, d, 12, 0) - chrono::TimeDelta::hours(14)
}

async fn across_a_month_and_a_year_far_from_utc(backend: Backend) {
    // Started in the last two days of 2025, as a server running across the new year has been:
    // the key of 2026 is made then, so its first hit feeds the sketches (the test's clock jumps
    // faster than the site refresh runs).
    let start = kiritimati_noon(2025, 12, 30);
    let (app, clock) = app_in(backend, "Pacific/Kiritimati", test_settings(), start).await;
    // Outside the range, on both sides.
    view_at(&app, &clock, kiritimati_noon(2025, 12, 30), "/old", true).await;
    view_at(&app, &clock, kiritimati_noon(2026, 2, 3), "/late", true).await;
    // In it: the last day of 2025, every day of January at least once, two days of February.
    view_at(&app, &clock, kiritimati_noon(2025, 12, 31), "/", true).await;
    view_at(&app, &clock, kiritimati_noon(2025, 12, 31), "/", false).await;
    // 10:30 UTC on 31 December is 00:30 on 1 January in Kiritimati: next year's documents.
    view_at(&app, &clock, utc(2025, 12, 31, 10, 30), "/new-year", true).await;
    for d in 2..=31 {
        view_at(&app, &clock, kiritimati_noon(2026, 1, d), "/", d == 2).await;
    }
    view_at(&app, &clock, kiritimati_noon(2026, 2, 1), "/feb", true).await;
    view_at(&app, &clock, kiritimati_noon(2026, 2, 2), "/", false).await;
    event_at(&app, &clock, kiritimati_noon(2025, 12, 30), "signup").await;
    event_at(&app, &clock, kiritimati_noon(2025, 12, 31), "signup").await;
    event_at(&app, &clock, kiritimati_noon(2026, 1, 20), "signup").await;
    event_at(&app, &clock, kiritimati_noon(2026, 2, 3), "signup").await;
    app.flush().await;

    let range = "from=2025-12-31&to=2026-02-02";
    let r = ok(&app, &format!("reports/traffic?{range}")).await;
    assert_eq!(r["zone"], "Pacific/Kiritimati");
    assert_eq!(
        r["period"],
        json!({"from": "2025-12-31", "to": "2026-02-02"})
    );
    let data = &r["data"];
    // 2 on 31 Dec, 1 at 00:30 on 1 Jan, 30 more in January, 2 in February.
    assert_eq!(data["total"]["views"], 35);
    // People from the sketches, each visitor once (every view is a new visitor; the events
    // come from one more, the test's own address): 2025's part, 31 Dec, has 2 viewers and the
    // event sender; 2026's has 33 viewers and the sender again, who counts twice across the
    // new year (each year has its own key). Not the flags' 2 + 2 + 2.
    assert_eq!(data["people_from"], "sketches");
    about(&data["total"]["people"], 3 + 34);
    let days = data["days"].as_array().unwrap();
    assert_eq!(days.len(), 34);
    assert_eq!(days[0]["day"], "2025-12-31");
    assert_eq!(days[0]["views"], 2);
    about(&days[0]["people"], 3);
    assert_eq!(
        days[1],
        json!({"day": "2026-01-01", "views": 1, "people": 1})
    );
    assert_eq!(
        days[33],
        json!({"day": "2026-02-02", "views": 1, "people": 1})
    );
    let sum: i64 = days.iter().map(|d| d["views"].as_i64().unwrap()).sum();
    assert_eq!(sum, 35);
    let months = data["months"].as_array().unwrap();
    let views: Vec<i64> = months
        .iter()
        .map(|m| m["views"].as_i64().unwrap())
        .collect();
    assert_eq!(views, [2, 31, 2]);
    about(&months[0]["people"], 3);
    about(&months[1]["people"], 32);
    assert_eq!(months[2]["people"], 2);

    // The summary answers the same range the same way.
    let s = ok(&app, &format!("summary?{range}")).await;
    assert_eq!(s["period"], r["period"]);
    assert_eq!(s["total"], data["total"]);
    assert_eq!(s["days"], data["days"]);

    // Content and referrers: the day documents of the edges, January's month document.
    let c = ok(&app, &format!("reports/content?{range}")).await;
    assert_eq!(
        entries(&c["data"]["pages"], "views"),
        vec![
            ("/".into(), 33),
            ("/feb".into(), 1),
            ("/new-year".into(), 1)
        ]
    );
    assert_eq!(c["data"]["pages"]["partial"], false);
    assert_eq!(c["data"]["total"], json!({"views": 35}));
    let h = ok(&app, &format!("reports/referrers?{range}")).await;
    assert_eq!(
        entries(&h["data"]["hosts"], "views"),
        vec![("news.example".into(), 35)]
    );
    // Events: only the range's days of the events_day month documents.
    let e = ok(&app, &format!("reports/events?{range}")).await;
    assert_eq!(
        e["data"]["events"],
        json!([{"name": "signup", "count": 2, "total": 4}])
    );
    assert_eq!(e["data"]["total"], json!({"count": 2, "total": 4}));
    // Engagement: every view started a visit.
    let g = ok(&app, &format!("reports/engagement?{range}")).await;
    assert_eq!(g["data"]["total"]["visits"], 35);
    assert_eq!(g["data"]["days"]["2025-12-31"]["visits"], 2);
    // Reports kept per month answer for the whole months, and say so.
    let t = ok(&app, &format!("reports/technology?{range}")).await;
    assert_eq!(
        t["period"],
        json!({"from": "2025-12-01", "to": "2026-02-28", "months": true})
    );
    // December (3 views), January (31), February (3).
    assert_eq!(t["data"]["total"], json!({"views": 37}));

    // Retention answers for the whole months too: their weeks' cohorts and each month's.
    let k = ok(&app, &format!("reports/retention?{range}")).await;
    assert_eq!(k["period"], t["period"]);
    let cohorts: Vec<&str> = k["data"]["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cohort"].as_str().unwrap())
        .collect();
    assert_eq!(cohorts, ["2025-12", "2026-01", "2026-02"]);
    assert_eq!(k["data"]["weeks"].as_array().unwrap().len(), 5 + 4 + 4);
    assert!(r["data"].get("hours").is_none(), "hours only for one day");
    // A year: 2026 in Kiritimati, from its first local minute.
    let y = ok(&app, "reports/traffic?date=2026").await;
    assert_eq!(
        y["period"],
        json!({"from": "2026-01-01", "to": "2026-12-31"})
    );
    assert_eq!(y["data"]["total"]["views"], 31 + 3);
    assert_eq!(y["data"]["days"].as_array().unwrap().len(), 365);
    assert_eq!(y["data"]["months"].as_array().unwrap().len(), 12);
    let y = ok(&app, "reports/content?date=2025").await;
    assert_eq!(
        entries(&y["data"]["pages"], "views"),
        vec![("/".into(), 2), ("/old".into(), 1)]
    );
    // A day or a month without compare answers as it always did.
    let m = ok(&app, "reports/traffic?date=2026-01").await;
    assert_eq!(m["period"], "2026-01");
    assert_eq!(m["data"]["total"]["views"], 31);
}

async fn across_a_dst_change(backend: Backend) {
    // Berlin falls back on 25 October 2026 at 01:00 UTC: that day has 25 hours.
    let (app, clock) = app_in(
        backend,
        "Europe/Berlin",
        test_settings(),
        utc(2026, 10, 1, 10, 0),
    )
    .await;
    for at in [
        utc(2026, 10, 24, 21, 59), // 23:59 on the 24th (CEST)
        utc(2026, 10, 24, 22, 30), // 00:30 on the 25th (CEST)
        utc(2026, 10, 25, 0, 30),  // 02:30 CEST
        utc(2026, 10, 25, 1, 30),  // 02:30 CET, the repeated hour
        utc(2026, 10, 25, 22, 59), // 23:59 on the 25th (CET)
        utc(2026, 10, 25, 23, 0),  // 00:00 on the 26th
    ] {
        view_at(&app, &clock, at, "/", false).await;
    }
    // The previous 7 days of the week asked below, 18–24 October: the 24th's view above and two more.
    view_at(&app, &clock, utc(2026, 10, 18, 10, 0), "/", false).await;
    view_at(&app, &clock, utc(2026, 10, 17, 10, 0), "/", false).await; // before it
    app.flush().await;

    let r = ok(&app, "reports/traffic?from=2026-10-25&to=2026-10-25").await;
    assert_eq!(r["data"]["total"]["views"], 4);
    // One day has its hours: 02 twice on the wall clock, one label.
    assert_eq!(
        r["data"]["hours"],
        json!([
            {"hour": 0, "views": 1, "people": 0},
            {"hour": 2, "views": 2, "people": 0},
            {"hour": 23, "views": 1, "people": 0},
        ])
    );
    let r = ok(
        &app,
        "reports/traffic?from=2026-10-25&to=2026-10-31&compare=previous",
    )
    .await;
    assert_eq!(r["data"]["total"]["views"], 5);
    assert_eq!(
        r["previous_period"],
        json!({"from": "2026-10-18", "to": "2026-10-24"})
    );
    assert_eq!(r["data"]["previous"], json!({"views": 2, "people": 2}));
    let c = ok(
        &app,
        "reports/content?from=2026-10-25&to=2026-10-31&compare=previous",
    )
    .await;
    assert_eq!(c["data"]["total"], json!({"views": 5}));
    assert_eq!(c["data"]["previous"], json!({"views": 2}));
}

async fn compared_with_a_year_before_and_29_february(backend: Backend) {
    let (app, clock) = app_in(
        backend,
        "Europe/Berlin",
        test_settings(),
        utc(2023, 1, 1, 10, 0),
    )
    .await;
    let noon = |y, m, d| utc(y, m, d, 11, 0);
    view_at(&app, &clock, noon(2023, 2, 27), "/", true).await;
    for _ in 0..3 {
        view_at(&app, &clock, noon(2023, 2, 28), "/", true).await;
    }
    view_at(&app, &clock, noon(2023, 3, 1), "/", true).await;
    for _ in 0..2 {
        view_at(&app, &clock, noon(2024, 2, 28), "/", true).await;
    }
    for _ in 0..5 {
        view_at(&app, &clock, noon(2024, 2, 29), "/", true).await;
    }
    app.flush().await;

    let r = ok(
        &app,
        "reports/traffic?from=2024-02-29&to=2024-02-29&compare=year",
    )
    .await;
    assert_eq!(r["data"]["total"], json!({"views": 5, "people": 5}));
    assert_eq!(
        r["previous_period"],
        json!({"from": "2023-02-28", "to": "2023-02-28"})
    );
    assert_eq!(r["data"]["previous"], json!({"views": 3, "people": 3}));
    let r = ok(&app, "reports/traffic?date=2024-02-29&compare=previous").await;
    assert_eq!(
        r["period"],
        json!({"from": "2024-02-29", "to": "2024-02-29"})
    );
    assert_eq!(r["data"]["previous"], json!({"views": 2, "people": 2}));
    // A month a year back: February 2024 (29 days) against 1–28 February 2023.
    let r = ok(&app, "reports/traffic?date=2024-02&compare=year").await;
    assert_eq!(
        r["previous_period"],
        json!({"from": "2023-02-01", "to": "2023-02-28"})
    );
    assert_eq!(r["data"]["total"]["views"], 7);
    assert_eq!(r["data"]["previous"]["views"], 4);
    // A report kept per month compares whole months.
    let t = ok(&app, "reports/technology?date=2024-02&compare=year").await;
    assert_eq!(
        t["previous_period"],
        json!({"from": "2023-02-01", "to": "2023-02-28", "months": true})
    );
    assert_eq!(t["data"]["total"], json!({"views": 7}));
    assert_eq!(t["data"]["previous"], json!({"views": 4}));
    let t = ok(&app, "reports/technology?date=2023-03&compare=previous").await;
    assert_eq!(t["data"]["previous"], json!({"views": 4}));
    // The summary compares too.
    let s = ok(&app, "summary?from=2024-02-28&to=2024-02-29&compare=year").await;
    assert_eq!(s["total"], json!({"views": 7, "people": 7}));
    // 28 and 29 February 2024 both map to 28 February 2023.
    assert_eq!(
        s["previous_period"],
        json!({"from": "2023-02-28", "to": "2023-02-28"})
    );
    assert_eq!(s["previous"], json!({"views": 3, "people": 3}));
}

async fn a_key_admitted_in_one_month_and_in_other_in_another(backend: Backend) {
    let settings = ServeSettings {
        max_keys: 2,
        ..test_settings()
    };
    let (app, clock) = app_in(backend, "Europe/Berlin", settings, utc(2026, 10, 1, 10, 0)).await;
    let oct = utc(2026, 10, 20, 10, 0);
    let nov = utc(2026, 11, 10, 10, 0);
    // October admits /a and /b, then counts /c under (other).
    for path in ["/a", "/a", "/b"] {
        view_at(&app, &clock, oct, path, false).await;
    }
    app.flush().await;
    view_at(&app, &clock, oct, "/c", false).await;
    app.flush().await;
    // November admits /c and /a, then counts /b under (other).
    for path in ["/c", "/c", "/a"] {
        view_at(&app, &clock, nov, path, false).await;
    }
    app.flush().await;
    for _ in 0..2 {
        view_at(&app, &clock, nov, "/b", false).await;
    }
    app.flush().await;

    for range in [
        "from=2026-10-01&to=2026-11-30",
        "from=2026-10-15&to=2026-11-30",
    ] {
        let c = ok(&app, &format!("reports/content?{range}")).await;
        let pages = &c["data"]["pages"];
        assert_eq!(
            entries(pages, "views"),
            vec![("/a".into(), 3), ("/c".into(), 2), ("/b".into(), 1)],
            "{range}"
        );
        // (other): October's /c and November's two /b, the sum of the documents' (other).
        assert_eq!(pages["other"], 3, "{range}");
        assert_eq!(pages["partial"], true, "{range}");
        let partial: Vec<(&str, bool)> = pages["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["key"].as_str().unwrap(),
                    e.get("partial") == Some(&json!(true)),
                )
            })
            .collect();
        assert_eq!(
            partial,
            vec![("/a", false), ("/c", true), ("/b", true)],
            "{range}"
        );
        assert_eq!(c["data"]["total"], json!({"views": 9}));
    }
    // Within one month the documents agree: nothing partial.
    let c = ok(&app, "reports/content?from=2026-11-01&to=2026-11-30").await;
    assert_eq!(c["data"]["pages"]["partial"], false);
}

async fn csv_follows_the_range(backend: Backend) {
    let (app, clock) = app_in(
        backend,
        "Europe/Berlin",
        test_settings(),
        utc(2026, 10, 1, 10, 0),
    )
    .await;
    view_at(&app, &clock, utc(2026, 10, 31, 10, 0), "/a", true).await;
    view_at(&app, &clock, utc(2026, 11, 1, 10, 0), "/b", true).await;
    view_at(&app, &clock, utc(2026, 11, 1, 11, 0), "/b", false).await;
    app.flush().await;
    let csv = |report: &str| {
        let url = format!(
            "{}/api/v1/sites/acme/reports/{report}?from=2026-10-31&to=2026-11-01&format=csv",
            app.address
        );
        let http = app.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert!(r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv"));
            let disposition = r.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .to_owned();
            (disposition, r.text().await.unwrap())
        }
    };
    let (disposition, body) = csv("traffic").await;
    assert!(
        disposition.contains("acme-traffic-2026-10-31_2026-11-01"),
        "{disposition}"
    );
    assert_eq!(
        body,
        "day,hour,views,people\r\n2026-10-31,,1,1\r\n2026-11-01,,2,2\r\n"
    );
    let (_, body) = csv("content").await;
    assert_eq!(
        body,
        "list,key,views,title,people\r\npages,/b,2,,0\r\npages,/a,1,,0\r\n"
    );
}

async fn bad_ranges_are_refused_by_name(backend: Backend) {
    let (app, clock) = app_in(
        backend,
        "Europe/Berlin",
        test_settings(),
        utc(2026, 11, 1, 10, 0),
    )
    .await;
    view_at(&app, &clock, utc(2026, 11, 1, 10, 0), "/", true).await;
    app.flush().await;
    let before = app.doc("traffic.2026", "acme:2026-11").await;
    for (query, names) in [
        ("from=2026-11-02&to=2026-11-01", "after"),
        ("from=2026-11-01", "from and to"),
        ("to=2026-11-01", "from and to"),
        ("from=2026-11-31&to=2026-12-01", "from"),
        ("from=2026-11-01&to=2026-1-02", "to"),
        ("from=2020-01-01&to=2026-11-01", "three years"),
        ("date=2026-11&from=2026-11-01&to=2026-11-02", "date"),
        ("from=2026-11-01&to=2026-11-02&compare=lastweek", "compare"),
        ("date=26", "date"),
    ] {
        for path in [
            "summary",
            "reports/traffic",
            "reports/content",
            "reports/terms",
        ] {
            let (status, body) = get(&app, &format!("{path}?{query}")).await;
            assert_eq!(status, 400, "{path}?{query}: {body}");
            assert_eq!(body["error"]["code"], "bad_request");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(names), "{path}?{query}: {message}");
        }
    }
    let (status, _) = get(&app, "reports/nosuch?from=2026-11-01&to=2026-11-02").await;
    assert_eq!(status, 400);
    // Three years is the most: 1,098 days answer.
    let r = ok(&app, "reports/traffic?from=2023-11-01&to=2026-11-02").await;
    assert_eq!(r["data"]["total"]["views"], 1);
    assert_eq!(app.doc("traffic.2026", "acme:2026-11").await, before);
}

/// A store that notes every read of a report collection, around the real one.
struct Counting {
    inner: Arc<dyn Store>,
    reads: Mutex<Vec<String>>,
}

impl Counting {
    fn note(&self, call: &str, collection: &str) {
        if collection.contains('.') {
            self.reads
                .lock()
                .unwrap()
                .push(format!("{call} {collection}"));
        }
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.reads.lock().unwrap())
    }
}

#[async_trait::async_trait]
impl Store for Counting {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    async fn apply(&self, batch: &Batch) -> Applied {
        self.inner.apply(batch).await
    }
    fn limit_calls(&self, timeout: std::time::Duration) {
        self.inner.limit_calls(timeout)
    }
    fn calls(&self, batch: &Batch) -> usize {
        self.inner.calls(batch)
    }
    async fn server_time(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.inner.server_time().await
    }
    async fn get(&self, collection: &str, id: &str) -> Result<Option<Document>, StoreError> {
        self.note("get", collection);
        self.inner.get(collection, id).await
    }
    async fn get_many(&self, c: &str, ids: &[String]) -> Result<Vec<Document>, StoreError> {
        self.note("get_many", c);
        self.inner.get_many(c, ids).await
    }
    async fn get_many_fields(
        &self,
        c: &str,
        ids: &[String],
        fields: &[&str],
    ) -> Result<Vec<Document>, StoreError> {
        self.note("get_many_fields", c);
        self.inner.get_many_fields(c, ids, fields).await
    }
    async fn scan(
        &self,
        c: &str,
        from_id: &str,
        to_id: &str,
        fields: &[&str],
        limit: usize,
    ) -> Result<Vec<Document>, StoreError> {
        self.inner.scan(c, from_id, to_id, fields, limit).await
    }
    async fn replace_if(
        &self,
        c: &str,
        doc: &Document,
        expected: Option<i64>,
    ) -> Result<bool, StoreError> {
        self.inner.replace_if(c, doc, expected).await
    }
    async fn update_site(&self, site: &Site) -> Result<(), StoreError> {
        self.inner.update_site(site).await
    }
    async fn insert_site(&self, site: &Site) -> Result<(), StoreError> {
        self.inner.insert_site(site).await
    }
    async fn sites(&self) -> Result<Vec<Site>, StoreError> {
        self.inner.sites().await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn delete_range(&self, c: &str, from_id: &str, to_id: &str) -> Result<u64, StoreError> {
        self.inner.delete_range(c, from_id, to_id).await
    }
    async fn collections(&self) -> Result<Vec<String>, StoreError> {
        self.inner.collections().await
    }
    async fn drop_collection(&self, c: &str) -> Result<(), StoreError> {
        self.inner.drop_collection(c).await
    }
    async fn collection_stats(&self, c: &str) -> Result<CollectionStats, StoreError> {
        self.inner.collection_stats(c).await
    }
}

/// A range is read with one call per yearly collection, its comparison's documents with it.
async fn a_range_costs_one_read_per_yearly_collection(backend: Backend) {
    let mut store = TestStore::new(backend).await;
    let mut site = store.add_site("acme", "Europe/Berlin").await;
    site.public = true;
    store.store.update_site(&site).await.unwrap();
    let counting = Arc::new(Counting {
        inner: Arc::clone(&store.store),
        reads: Mutex::new(Vec::new()),
    });
    store.store = counting.clone();
    let clock = TestClock::at(utc(2025, 12, 20, 10, 0));
    let app = TestApp::spawn(store, test_settings(), clock.clock()).await;
    view_at(&app, &clock, utc(2025, 12, 20, 10, 0), "/", true).await;
    view_at(&app, &clock, utc(2026, 1, 20, 10, 0), "/", true).await;
    view_at(&app, &clock, utc(2026, 2, 5, 10, 0), "/", true).await;
    app.flush().await;
    counting.take();

    let r = ok(&app, "reports/traffic?date=2026&compare=previous").await;
    assert_eq!(r["data"]["total"]["views"], 2);
    assert_eq!(r["data"]["previous"]["views"], 1);
    let mut reads = counting.take();
    reads.sort();
    // The traffic month documents and the people sketches (here the months' whole).
    assert_eq!(
        reads,
        vec![
            "get_many people.2025",
            "get_many people.2026",
            "get_many_fields traffic.2025",
            "get_many_fields traffic.2026"
        ]
    );
    // 12 day documents of December, January's month document, 10 day documents of February.
    let c = ok(&app, "reports/content?from=2025-12-20&to=2026-02-10").await;
    assert_eq!(c["data"]["total"]["views"], 3);
    let mut reads = counting.take();
    reads.sort();
    assert_eq!(
        reads,
        vec!["get_many content.2025", "get_many content.2026"]
    );
    // Three years of traffic: four yearly collections, four reads, and four of sketches.
    let s = ok(&app, "summary?from=2023-12-01&to=2026-11-30").await;
    assert_eq!(s["total"]["views"], 3);
    assert_eq!(counting.take().len(), 4 + 4);
}

both_stores!(
    a_range_costs_one_read_per_yearly_collection,
    across_a_month_and_a_year_far_from_utc,
    across_a_dst_change,
    compared_with_a_year_before_and_29_february,
    a_key_admitted_in_one_month_and_in_other_in_another,
    csv_follows_the_range,
    bad_ranges_are_refused_by_name,
);
