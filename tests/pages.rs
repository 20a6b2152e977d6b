//! People per page, on both stores: the snippet's page flag (`pp`: 2 = first view of the page
//! this month, 1 = first today) becomes `p.<page>.u` in the content day and month documents;
//! the single-period and range answers give each page its `people` next to its views (a range
//! sums whole months' and edge days' flags), CSV has the column, a bad flag changes nothing,
//! and a page the capped month does not name takes its people to `(other)`.

mod support;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use support::*;
use tally::settings::ServeSettings;

/// The app with the public site `acme` in Berlin, its clock at `start`.
async fn app_in(
    backend: Backend,
    settings: ServeSettings,
    start: DateTime<Utc>,
) -> (TestApp, TestClock) {
    let store = TestStore::new(backend).await;
    let mut site = store.add_site("acme", "Europe/Berlin").await;
    site.public = true;
    store.store.update_site(&site).await.unwrap();
    let clock = TestClock::at(start);
    let app = TestApp::spawn(store, settings, clock.clock()).await;
    (app, clock)
}

/// A view of `path` at `at` with the page flag `pp` as sent (`None`: no flag).
async fn view(app: &TestApp, clock: &TestClock, at: DateTime<Utc>, path: &str, pp: Option<&str>) {
    clock.set(at);
    let pp = pp.map(|f| format!("&pp={f}")).unwrap_or_default();
    app.hit(
        &format!("site=acme&url=https%3A%2F%2Facme.example{path}{pp}"),
        CHROME_WIN,
    )
    .await;
}

async fn ok(app: &TestApp, query: &str) -> Value {
    let r = app
        .http
        .get(format!(
            "{}/api/v1/sites/acme/reports/content?{query}",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{query}");
    r.json().await.unwrap()
}

/// `(page, views, people)` of an answer's pages.
fn pages(answer: &Value) -> Vec<(String, i64, i64)> {
    answer["data"]["pages"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["key"].as_str().unwrap().to_owned(),
                e["views"].as_i64().unwrap(),
                e["people"].as_i64().expect("every page has people"),
            )
        })
        .collect()
}

fn row(page: &str, views: i64, people: i64) -> (String, i64, i64) {
    (page.to_owned(), views, people)
}

async fn people_per_page_per_day_and_month(backend: Backend) {
    let (app, clock) = app_in(backend, test_settings(), utc(2026, 11, 10, 9, 0)).await;
    let (d10, d11) = (utc(2026, 11, 10, 9, 0), utc(2026, 11, 11, 9, 0));
    // 10 November: a visitor's first views of /a and /b this month, /a again (no flag);
    // another visitor's first view of /a; a bare <img> pixel of /a (no flag at all).
    view(&app, &clock, d10, "/a", Some("2")).await;
    view(&app, &clock, d10, "/b", Some("2")).await;
    view(&app, &clock, d10, "/a", None).await;
    view(&app, &clock, d10, "/a", Some("2")).await;
    view(&app, &clock, d10, "/a", None).await;
    // 11 November: the first visitor back on /a (first view today, not this month).
    view(&app, &clock, d11, "/a", Some("1")).await;
    app.flush().await;

    let month = app.doc("content.2026", "acme:2026-11").await.unwrap();
    assert_count(&month, "p./a.v", 5);
    assert_count(&month, "p./a.u", 2);
    assert_count(&month, "p./b.u", 1);
    assert_well_formed(&month);
    let day10 = app.doc("content.2026", "acme:2026-11-10").await.unwrap();
    assert_count(&day10, "p./a.u", 2);
    assert_count(&day10, "p./b.u", 1);
    let day11 = app.doc("content.2026", "acme:2026-11-11").await.unwrap();
    assert_count(&day11, "p./a.v", 1);
    assert_count(&day11, "p./a.u", 1);

    let m = ok(&app, "date=2026-11").await;
    assert_eq!(pages(&m), vec![row("/a", 5, 2), row("/b", 1, 1)]);
    assert_eq!(m["data"]["pages"]["other_people"], 0);
    assert_eq!(
        m["data"]["page_people"],
        json!("flags, summed per day and month")
    );
    assert_eq!(
        pages(&ok(&app, "date=2026-11-10").await),
        vec![row("/a", 4, 2), row("/b", 1, 1)]
    );
    assert_eq!(
        pages(&ok(&app, "date=2026-11-11").await),
        vec![row("/a", 1, 1)]
    );
    // Two edge days: each day's people, summed (the first visitor counts on both days).
    let r = ok(&app, "from=2026-11-10&to=2026-11-11").await;
    assert_eq!(pages(&r), vec![row("/a", 5, 3), row("/b", 1, 1)]);
    assert_eq!(r["data"]["page_people"], m["data"]["page_people"]);
    // The whole month reads the month document: each visitor once.
    assert_eq!(
        pages(&ok(&app, "from=2026-11-01&to=2026-11-30").await),
        vec![row("/a", 5, 2), row("/b", 1, 1)]
    );

    // CSV: a people column after the title.
    let csv = app
        .http
        .get(format!(
            "{}/api/v1/sites/acme/reports/content?date=2026-11&format=csv",
            app.address
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        csv,
        "list,key,views,title,people\r\npages,/a,5,,2\r\npages,/b,1,,1\r\n"
    );
}

async fn a_range_over_two_months_sums_months_and_edge_days(backend: Backend) {
    let (app, clock) = app_in(backend, test_settings(), utc(2026, 10, 5, 9, 0)).await;
    // One visitor of /a on 5 and 20 October and on 3 and 9 November: new each month, new on
    // each day.
    view(&app, &clock, utc(2026, 10, 5, 9, 0), "/a", Some("2")).await;
    view(&app, &clock, utc(2026, 10, 20, 9, 0), "/a", Some("1")).await;
    view(&app, &clock, utc(2026, 11, 3, 9, 0), "/a", Some("2")).await;
    view(&app, &clock, utc(2026, 11, 9, 9, 0), "/a", Some("1")).await;
    app.flush().await;
    for (range, views, people) in [
        // Two whole months: once per month.
        ("from=2026-10-01&to=2026-11-30", 4, 2),
        // October whole, 1–9 November from its days: 1 + 2.
        ("from=2026-10-01&to=2026-11-09", 4, 3),
        // 10–31 October from its days, November whole: 1 + 1.
        ("from=2026-10-10&to=2026-11-30", 3, 2),
        // Only edge days: 20 October, 3 and 9 November.
        ("from=2026-10-06&to=2026-11-29", 3, 3),
    ] {
        assert_eq!(
            pages(&ok(&app, range).await),
            vec![row("/a", views, people)],
            "{range}"
        );
    }
}

async fn a_bad_page_flag_changes_nothing_and_gets_the_gif(backend: Backend) {
    let (app, clock) = app_in(backend, test_settings(), utc(2026, 11, 10, 9, 0)).await;
    let at = utc(2026, 11, 10, 9, 0);
    // `view` checks each answer: 200 and the GIF.
    for bad in ["0", "3", "", "02", "1.0", "-1", "true", "2%00", "%32", "x"] {
        view(&app, &clock, at, "/a", Some(bad)).await;
    }
    clock.set(at);
    app.hit("site=acme&url=%2Fa&pp", CHROME_WIN).await;
    app.flush().await;
    for id in ["acme:2026-11", "acme:2026-11-10"] {
        let doc = app.doc("content.2026", id).await.unwrap();
        assert_count(&doc, "p./a.v", 11);
        assert_eq!(get_path(&doc, "p./a.u"), None, "{id}: {doc}");
        assert_well_formed(&doc);
    }
    assert_eq!(
        pages(&ok(&app, "date=2026-11").await),
        vec![row("/a", 11, 0)]
    );
}

async fn a_page_the_month_does_not_name_takes_its_people_to_other(backend: Backend) {
    let settings = ServeSettings {
        max_keys: 1,
        ..test_settings()
    };
    let (app, clock) = app_in(backend, settings, utc(2026, 11, 10, 9, 0)).await;
    let at = utc(2026, 11, 10, 9, 0);
    view(&app, &clock, at, "/a", Some("2")).await;
    app.flush().await;
    view(&app, &clock, at, "/b", Some("2")).await;
    view(&app, &clock, at, "/c", Some("2")).await;
    view(&app, &clock, at, "/c", None).await;
    app.flush().await;
    for id in ["acme:2026-11", "acme:2026-11-10"] {
        let doc = app.doc("content.2026", id).await.unwrap();
        assert_count(&doc, "p./a.u", 1);
        assert_count(&doc, "p.(other).v", 3);
        assert_count(&doc, "p.(other).u", 2);
        assert_eq!(get_path(&doc, "p./b.u"), None);
    }
    for query in [
        "date=2026-11",
        "date=2026-11-10",
        "from=2026-11-09&to=2026-11-10",
    ] {
        let r = ok(&app, query).await;
        assert_eq!(pages(&r), vec![row("/a", 1, 1)], "{query}");
        assert_eq!(r["data"]["pages"]["other"], 3, "{query}");
        assert_eq!(r["data"]["pages"]["other_people"], 2, "{query}");
    }
}

both_stores!(
    people_per_page_per_day_and_month,
    a_range_over_two_months_sums_months_and_edge_days,
    a_bad_page_flag_changes_nothing_and_gets_the_gif,
    a_page_the_month_does_not_name_takes_its_people_to_other,
);
