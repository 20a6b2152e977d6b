//! Custom events, engagement and retention cohorts through real HTTP, on both stores.

mod support;

use support::*;

use chrono::{DateTime, Utc};
use mongodb::bson::Document;
use serde_json::json;
use tally::reports::cohorts::Cohorts;
use tally::reports::engagement::Engagement;
use tally::reports::events::{self, Tally};
use tally::reports::Report;
use tally::settings::ServeSettings;

async fn app_at(
    backend: Backend,
    tz: &str,
    now: DateTime<Utc>,
    settings: ServeSettings,
) -> (TestApp, TestClock) {
    let store = TestStore::new(backend).await;
    store.add_site("acme", tz).await;
    let clock = TestClock::at(now);
    let app = TestApp::spawn(store, settings, clock.clock()).await;
    (app, clock)
}

async fn post(app: &TestApp, body: impl Into<reqwest::Body>) -> (u16, serde_json::Value) {
    let r = app
        .http
        .post(format!("{}/e", app.address))
        .header("Content-Type", "text/plain")
        .header("X-Forwarded-For", app.next_visitor())
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

fn tally(doc: &Document, path: &str) -> Tally {
    Tally {
        count: get_path(doc, &format!("{path}.c")).unwrap_or(0),
        total: get_path(doc, &format!("{path}.t")).unwrap_or(0),
    }
}

/// 23:58 in Berlin on 23 November 2026: events 2 minutes back, now, and 3 minutes ahead (next
/// day, accepted: within 5 minutes), and one whose clock is a day and an hour off (server time).
async fn counts_and_totals_at_every_resolution_across_hour_and_day(backend: Backend) {
    let now = utc(2026, 11, 23, 22, 58);
    let (app, _clock) = app_at(backend, "Europe/Berlin", now, test_settings()).await;
    let ms = |minutes: i64| (now + chrono::TimeDelta::minutes(minutes)).timestamp_millis();
    let (status, body) = post(
        &app,
        json!([
            {"site": "acme", "name": "signup", "value": 5, "ts": ms(-2)},
            {"site": "acme", "name": "signup", "value": 7},
            {"site": "acme", "name": "signup", "value": 11, "ts": ms(3)},
            {"site": "acme", "name": "signup", "value": 13, "ts": ms(-25 * 60)},
            {"site": "acme", "name": "signup", "value": 17, "ts": ms(6)},
            {"site": "acme", "name": "download"},
        ])
        .to_string(),
    )
    .await;
    assert_eq!((status, body), (202, json!({"accepted": 6})));
    app.flush().await;

    // 5-minute buckets: 23:55 holds 23:56 (ts), 23:58 (now) and the two timestamps outside the
    // window (a day and an hour back, 6 minutes ahead), counted at the server's time.
    let h23 = app
        .doc("events_5m.2026", "acme:2026-11-23T23")
        .await
        .unwrap();
    assert_eq!(
        tally(&h23, "e.signup.55"),
        Tally {
            count: 4,
            total: 42
        }
    );
    assert_eq!(tally(&h23, "e.download.55"), Tally { count: 1, total: 1 });
    let h00 = app
        .doc("events_5m.2026", "acme:2026-11-24T00")
        .await
        .unwrap();
    assert_eq!(
        tally(&h00, "e.signup.00"),
        Tally {
            count: 1,
            total: 11
        }
    );
    // Hours.
    let d23 = app
        .doc("events_hour.2026", "acme:2026-11-23")
        .await
        .unwrap();
    assert_eq!(
        tally(&d23, "e.signup.23"),
        Tally {
            count: 4,
            total: 42
        }
    );
    let d24 = app
        .doc("events_hour.2026", "acme:2026-11-24")
        .await
        .unwrap();
    assert_eq!(
        tally(&d24, "e.signup.00"),
        Tally {
            count: 1,
            total: 11
        }
    );
    // Days.
    let month = app.doc("events_day.2026", "acme:2026-11").await.unwrap();
    assert_eq!(
        tally(&month, "e.signup.23"),
        Tally {
            count: 4,
            total: 42
        }
    );
    assert_eq!(
        tally(&month, "e.signup.24"),
        Tally {
            count: 1,
            total: 11
        }
    );
    let read = events::read(&month);
    assert_eq!(read["signup"].values().map(|t| t.count).sum::<i64>(), 5);
    for doc in [&h23, &h00, &d23, &d24, &month] {
        assert_well_formed(doc);
    }
    // Nothing went to the hour of the day-old timestamp.
    assert!(app
        .doc("events_5m.2026", "acme:2026-11-22T22")
        .await
        .is_none());
}

async fn properties_group_by_value(backend: Backend) {
    let now = utc(2026, 11, 23, 12, 0);
    let (app, clock) = app_at(backend, "UTC", now, test_settings()).await;
    let ev = |plan: &str, value: i64| json!({"site": "acme", "name": "purchase", "value": value, "props": {"plan": plan, "currency": "EUR"}});
    post(
        &app,
        json!([ev("pro", 49), ev("pro", 49), ev("free", 0), ev("team", 199)]).to_string(),
    )
    .await;
    clock.set(utc(2026, 11, 24, 12, 0));
    post(&app, json!([ev("pro", 49)]).to_string()).await;
    // A GET /e from an <img>, with a property.
    app.hit_path(
        "/e?site=acme&name=purchase&value=49&p.plan=pro&p.currency=EUR",
        CHROME_WIN,
    )
    .await;
    app.flush().await;
    let month = app.doc("events_day.2026", "acme:2026-11").await.unwrap();
    let all = events::group(&month, "purchase", "plan", 1..=31);
    assert_eq!(
        all,
        vec![
            (
                "pro".to_owned(),
                Tally {
                    count: 4,
                    total: 196
                }
            ),
            ("free".to_owned(), Tally { count: 1, total: 0 }),
            (
                "team".to_owned(),
                Tally {
                    count: 1,
                    total: 199
                }
            ),
        ]
    );
    let day23 = events::group(&month, "purchase", "plan", 23..=23);
    assert_eq!(
        day23[0],
        (
            "pro".to_owned(),
            Tally {
                count: 2,
                total: 98
            }
        )
    );
    assert_eq!(
        events::group(&month, "purchase", "currency", 1..=31),
        vec![(
            "EUR".to_owned(),
            Tally {
                count: 6,
                total: 395
            }
        )]
    );
    assert_well_formed(&month);
}

/// Names and property values are capped per month document; the finer resolutions follow.
async fn names_and_property_values_are_capped(backend: Backend) {
    let settings = ServeSettings {
        max_keys: 150,
        ..test_settings()
    };
    let (app, _clock) = app_at(backend, "UTC", utc(2026, 11, 23, 12, 0), settings).await;
    // 120 values of one property: 100 are named, 20 go to (other). (Each request comes from a
    // visitor of its own, bringing fewer new keys than an address's budget.)
    for part in [0..50, 50..100] {
        let batch: Vec<_> = part
            .map(|i| json!({"site": "acme", "name": "view", "props": {"user": format!("u{i}")}}))
            .collect();
        assert_eq!(post(&app, json!(batch).to_string()).await.0, 202);
    }
    app.flush().await;
    let batch: Vec<_> = (100..120)
        .map(|i| json!({"site": "acme", "name": "view", "props": {"user": format!("u{i}")}}))
        .collect();
    assert_eq!(post(&app, json!(batch).to_string()).await.0, 202);
    // 60 distinct names: with 1 name and 100 values admitted, 49 more names fit in 150.
    let batch: Vec<_> = (0..60)
        .map(|i| json!({"site": "acme", "name": format!("event-{i:02}")}))
        .collect();
    assert_eq!(post(&app, json!(batch).to_string()).await.0, 202);
    app.flush().await;

    let month = app.doc("events_day.2026", "acme:2026-11").await.unwrap();
    assert_eq!(get_path(&month, "n"), Some(150));
    let users = events::group(&month, "view", "user", 1..=31);
    assert_eq!(users.len(), 101);
    assert_eq!(
        users
            .iter()
            .find(|(v, _)| v == "(other)")
            .map(|(_, t)| t.count),
        Some(20)
    );
    let names = events::read(&month);
    assert_eq!(names.len(), 1 + 49 + 1, "{:?}", names.keys());
    assert_eq!(names["(other)"].values().map(|t| t.count).sum::<i64>(), 11);
    // The 5-minute and hourly documents name the same events.
    let hour = app
        .doc("events_hour.2026", "acme:2026-11-23")
        .await
        .unwrap();
    assert_eq!(events::read(&hour).len(), 51);
    let five = app
        .doc("events_5m.2026", "acme:2026-11-23T12")
        .await
        .unwrap();
    assert_eq!(events::read(&five)["(other)"][&0].count, 11);
}

/// Bad requests get a clear answer and count nothing.
async fn bad_events_write_nothing(backend: Backend) {
    let (app, _clock) = app_at(backend, "UTC", utc(2026, 11, 23, 12, 0), test_settings()).await;
    let one = |extra: serde_json::Value| {
        let mut e = json!({"site": "acme", "name": "x"});
        e.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        e
    };
    let many: Vec<_> = (0..101).map(|_| one(json!({}))).collect();
    let cases: Vec<(String, u16, &str)> = vec![
        (one(json!({"value": 1.5})).to_string(), 400, "invalid_event"),
        (one(json!({"value": "3"})).to_string(), 400, "invalid_event"),
        (json!(many).to_string(), 400, "invalid_event"),
        (
            "{\"site\": \"acme\", \"name\": ".to_owned(),
            400,
            "invalid_event",
        ),
        ("not json at all".to_owned(), 400, "invalid_event"),
        (
            json!({"site": "nosuch", "name": "x"}).to_string(),
            400,
            "unknown_site",
        ),
        (
            json!({"site": "ACME", "name": "x"}).to_string(),
            400,
            "invalid_event",
        ),
        (
            json!([one(json!({})), {"site": "acme"}]).to_string(),
            400,
            "invalid_event",
        ),
        (
            one(json!({"props": {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6}})).to_string(),
            400,
            "invalid_event",
        ),
        (one(json!({"name": "  "})).to_string(), 400, "invalid_event"),
        (
            format!(
                "[{}]",
                vec![one(json!({"props": {"k": "v".repeat(700)}})).to_string(); 100].join(",")
            ),
            413,
            "too_large",
        ),
    ];
    for (body, status, code) in cases {
        let (got, answer) = post(&app, body.clone()).await;
        assert_eq!(got, status, "{}: {answer}", &body[..body.len().min(80)]);
        assert_eq!(answer["error"]["code"], code, "{answer}");
        assert!(answer["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    // GET /e with a bad value: still the pixel, nothing counted.
    app.hit_path("/e?site=acme&name=x&value=abc", CHROME_WIN)
        .await;
    app.flush().await;
    for (coll, id) in [
        ("events_day.2026", "acme:2026-11"),
        ("events_hour.2026", "acme:2026-11-23"),
        ("events_5m.2026", "acme:2026-11-23T12"),
    ] {
        assert!(app.doc(coll, id).await.is_none(), "{coll} {id}");
    }
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("tally_events_accepted_total 0\n"),
        "{metrics}"
    );
}

async fn beacon(app: &TestApp, query: &str) {
    let r = app
        .http
        .post(format!("{}/v?{query}", app.address))
        .header("User-Agent", CHROME_WIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

/// Visits, bounces, pages per visit and durations, at their segment edges.
async fn engagement_segments_at_their_edges(backend: Backend) {
    let now = utc(2026, 11, 23, 12, 0);
    let (app, _clock) = app_at(backend, "UTC", now, test_settings()).await;
    let vt = (now - chrono::TimeDelta::minutes(1)).timestamp_millis();
    // A bounce: one page, new visitor; it stays 2.999 s, then 3 s.
    app.hit(&format!("site=acme&vp=1&vt={vt}&ud=1&u=1"), CHROME_WIN)
        .await;
    beacon(&app, &format!("site=acme&vt={vt}&vd=2999&pvd=0")).await;
    beacon(&app, &format!("site=acme&vt={vt}&vd=3000&pvd=2999")).await;
    // A visit of 5 pages by a returning visitor, 30 minutes long in the end.
    app.hit(&format!("site=acme&vp=1&vt={vt}&ud=1&u=0"), FIREFOX_MAC)
        .await;
    for page in 2..=5 {
        app.hit(&format!("site=acme&vp={page}&vt={vt}"), FIREFOX_MAC)
            .await;
    }
    beacon(&app, &format!("site=acme&vt={vt}&vd=59999&pvd=0")).await;
    beacon(&app, &format!("site=acme&vt={vt}&vd=1800000&pvd=59999")).await;
    // Nonsense is ignored: a duration shrinking, a negative one, an unknown site.
    beacon(&app, &format!("site=acme&vt={vt}&vd=10&pvd=20")).await;
    beacon(&app, &format!("site=acme&vt={vt}&vd=-5")).await;
    beacon(&app, "site=nosuch&vd=5000").await;
    app.flush().await;

    let doc = app.doc("engagement.2026", "acme:2026-11").await.unwrap();
    let day = &Engagement::read(&doc).days[&23];
    assert_eq!(day.visits, 2);
    assert_eq!(day.bounces, 1);
    assert_eq!(day.pages, vec![("1".to_owned(), 1), ("5-9".to_owned(), 1)]);
    assert_eq!(
        day.durations,
        vec![("3-10s".to_owned(), 1), ("30m+".to_owned(), 1)]
    );
    assert_eq!((day.new, day.returning), (1, 1));
    for (path, n) in [
        ("d.23.t.0-3s", 0),
        ("d.23.t.30-60s", 0),
        ("d.23.p.4", 0),
        ("d.23.p.2", 0),
    ] {
        assert_eq!(get_path(&doc, path).unwrap_or(0), n, "{path}");
    }
}

/// A visitor first seen in week 48 of 2026 comes back in week 50 (+2), and next month (+1).
async fn a_cohort_counts_a_visitor_back_two_weeks_later(backend: Backend) {
    let (app, clock) = app_at(backend, "UTC", utc(2026, 11, 23, 12, 0), test_settings()).await;
    // Monday 23 November 2026 is in ISO week 48.
    app.hit("site=acme&cw=2026-W48&cm=2026-11", CHROME_WIN)
        .await;
    app.hit("site=acme&cw=2026-W48&cm=2026-11", FIREFOX_MAC)
        .await;
    clock.set(utc(2026, 12, 9, 12, 0)); // week 50, December
    app.hit("site=acme&cw=2026-W48&cm=2026-11", CHROME_WIN)
        .await;
    // Cohorts in the future, or malformed, count nothing.
    app.hit("site=acme&cw=2027-W02&cm=2027-01", CHROME_WIN)
        .await;
    app.hit("site=acme&cw=2026-W99&cm=2026-13", CHROME_WIN)
        .await;
    app.flush().await;
    let week = Cohorts::read(&app.doc("cohorts.2026", "acme:2026-W48").await.unwrap());
    assert_eq!(week.size, 2);
    assert_eq!(week.returned[..3], [0, 1, 0]);
    let month = Cohorts::read(&app.doc("cohorts.2026", "acme:2026-11").await.unwrap());
    assert_eq!(month.size, 2);
    assert_eq!(month.returned[0], 1);
    assert!(app.doc("cohorts.2027", "acme:2027-W02").await.is_none());
}

both_stores!(
    counts_and_totals_at_every_resolution_across_hour_and_day,
    properties_group_by_value,
    names_and_property_values_are_capped,
    bad_events_write_nothing,
    engagement_segments_at_their_edges,
    a_cohort_counts_a_visitor_back_two_weeks_later,
);
