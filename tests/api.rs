//! The JSON API over real HTTP, on both stores: access control, the summary, every report,
//! CSV, Glow's metrics and the live stream, against hits and events sent in the test.

mod support;

use support::*;

use serde_json::{json, Value};
use tally::api::token;
use tally::site::TokenHash;

/// `acme` (private, with a token), `beta` (private, with its own token), `open` (public).
async fn app_with_sites(backend: Backend) -> (TestApp, String, String, TestClock) {
    let store = TestStore::new(backend).await;
    let mut tokens = Vec::new();
    for (id, public) in [("acme", false), ("beta", false), ("open", true)] {
        let mut site = store.add_site(id, "Europe/Berlin").await;
        let (t, hash) = token::generate().unwrap();
        site.tokens.push(TokenHash {
            hash,
            created_at: chrono::Utc::now(),
        });
        site.public = public;
        store.store.update_site(&site).await.unwrap();
        tokens.push(t);
    }
    let clock = TestClock::at(utc(2026, 11, 23, 13, 0)); // 14:00 in Berlin
    let app = TestApp::spawn(store, test_settings(), clock.clock()).await;
    (app, tokens[0].clone(), tokens[1].clone(), clock)
}

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut r = app.http.get(format!("{}{path}", app.address));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn access_control(backend: Backend) {
    let (app, acme, beta, _clock) = app_with_sites(backend).await;
    let path = "/api/v1/sites/acme/summary";
    assert_eq!(get(&app, path, Some(&acme)).await.0, 200);
    let (status, body) = get(&app, path, None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(
        get(&app, path, Some("tly_00000000000000000000000000000000"))
            .await
            .0,
        401
    );
    assert_eq!(
        get(&app, path, Some(&beta)).await.0,
        404,
        "another site's token"
    );
    // A site that does not exist answers as a private one: no hint it is missing.
    assert_eq!(get(&app, "/api/v1/sites/nosuch/summary", None).await.0, 401);
    assert_eq!(
        get(&app, "/api/v1/sites/nosuch/summary", Some(&acme))
            .await
            .0,
        404
    );
    // A public site needs no token.
    let (status, info) = get(&app, "/api/v1/sites/open", None).await;
    assert_eq!(status, 200);
    assert_eq!(info["zone"], "Europe/Berlin");
    assert_eq!(info["public"], true);
    // The header must say Bearer.
    let r = app
        .http
        .get(format!("{}{path}", app.address))
        .header("Authorization", format!("Basic {acme}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    // Revoked: the site keeps no hash of it any more.
    let mut site = app.handle.store.site("acme").await.unwrap().unwrap();
    site.tokens.clear();
    app.handle.store.update_site(&site).await.unwrap();
    app.handle.sites.insert(site);
    assert_eq!(get(&app, path, Some(&acme)).await.0, 401);
}

async fn send_traffic(app: &TestApp) {
    let page = |path: &str, extra: &str| {
        format!("site=acme&url=https%3A%2F%2Facme.example{path}&title=T{path}&sw=1920&bw=1280&bh=800&ud=1&um=1&uy=1&uh=1&u=1&vp=1&cw=2026-W48&cm=2026-11{extra}")
    };
    app.hit(
        &page(
            "%2F",
            "&ref=https%3A%2F%2Fwww.google.com%2Fsearch%3Fq%3Dtally",
        ),
        CHROME_WIN,
    )
    .await;
    app.hit(&page("%2Fpricing%3Futm_source%3Dnews", ""), FIREFOX_MAC)
        .await;
    app.hit(&page("%2Fpricing", ""), SAFARI_IPHONE).await;
    app.http
        .post(format!("{}/e", app.address))
        .body(
            json!([
                {"site": "acme", "name": "signup", "props": {"plan": "pro"}},
                {"site": "acme", "name": "signup", "props": {"plan": "free"}},
                {"site": "acme", "name": "purchase", "value": 49, "props": {"plan": "pro"}},
            ])
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    app.flush().await;
}

async fn report(app: &TestApp, t: Option<&str>, name: &str, date: &str) -> Value {
    let path = format!("/api/v1/sites/acme/reports/{name}?date={date}");
    let (status, body) = get(app, &path, t).await;
    assert_eq!(status, 200, "{path}: {body}");
    assert_eq!(body["zone"], "Europe/Berlin");
    assert_eq!(body["report"], name);
    body
}

async fn summary_and_every_report(backend: Backend) {
    let (app, acme, _, _clock) = app_with_sites(backend).await;
    send_traffic(&app).await;
    let t = Some(acme.as_str());
    let (status, s) = get(&app, "/api/v1/sites/acme/summary", t).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["zone"], "Europe/Berlin");
    // People from the sketches: the three page viewers and whoever sent the events (a fourth
    // address), 3 when two of the four share a register (probability 6/4096); an hour's
    // people are its flags (the page viewers new that hour).
    let people = s["today"]["people"].as_i64().unwrap();
    assert!(people == 4 || people == 3, "{s}");
    assert_eq!(
        s["today"],
        json!({"date": "2026-11-23", "views": 3, "people": people})
    );
    assert_eq!(s["hours"].as_array().unwrap().len(), 24);
    assert_eq!(
        s["hours"][23],
        json!({"hour": "2026-11-23T14", "views": 3, "people": 3})
    );
    assert_eq!(s["days"].as_array().unwrap().len(), 30);
    assert_eq!(s["days"][29]["views"], 3);
    assert_eq!(
        s["months"][11],
        json!({"month": "2026-11", "views": 3, "people": people})
    );
    assert_eq!(s["all_time"], json!({"views": 3, "people": people}));

    let r = report(&app, t, "traffic", "2026-11").await;
    assert_eq!(r["period"], "2026-11");
    assert_eq!(r["data"]["total"]["views"], 3);
    let r = report(&app, t, "traffic", "2026-11-23").await;
    assert_eq!(
        r["data"]["hours"][0],
        json!({"hour": 14, "views": 3, "people": 3})
    );
    let r = report(&app, t, "content", "2026-11-23").await;
    assert_eq!(r["period"], "2026-11-23");
    assert_eq!(r["data"]["pages"]["entries"][0]["key"], "/pricing");
    assert_eq!(r["data"]["pages"]["entries"][0]["views"], 2);
    let r = report(&app, t, "referrers", "2026-11").await;
    assert_eq!(r["data"]["hosts"]["entries"][0]["key"], "google.com");
    let r = report(&app, t, "terms", "2026-11-23").await;
    assert_eq!(r["period"], "2026-11", "kept per month");
    assert_eq!(r["data"]["terms"]["entries"][0]["key"], "tally");
    let r = report(&app, t, "campaigns", "2026-11").await;
    assert_eq!(r["data"]["sources"]["entries"][0]["key"], "news");
    let r = report(&app, t, "technology", "2026-11").await;
    assert_eq!(r["data"]["browsers"].as_array().unwrap().len(), 3);
    let r = report(&app, t, "resolutions", "2026-11").await;
    assert_eq!(r["data"]["screen_widths"], json!([["1600", 3]]));
    let r = report(&app, t, "locations", "2026-11").await;
    // The built-in database, by default; the test visitors' addresses (198.18.0.0/15, kept
    // for benchmarks) have no country.
    assert_eq!(r["data"]["countries"], json!([["unknown", 3]]));
    let r = report(&app, t, "events", "2026-11-23").await;
    assert_eq!(r["period"], "2026-11-23");
    assert_eq!(
        r["data"]["events"][0],
        json!({"name": "signup", "count": 2, "total": 2})
    );
    let r = report(&app, t, "events", "2026-11").await;
    assert_eq!(
        r["data"]["events"][1],
        json!({"name": "purchase", "count": 1, "total": 49})
    );
    let r = report(&app, t, "engagement", "2026-11-23").await;
    assert_eq!(r["data"]["days"]["23"]["visits"], 3);
    assert_eq!(r["data"]["days"]["23"]["bounces"], 3);
    let r = report(&app, t, "retention", "2026-11").await;
    assert_eq!(r["data"]["month"]["size"], 3);
    assert_eq!(r["data"]["weeks"][3]["cohort"], "2026-W48");
    assert_eq!(r["data"]["weeks"][3]["size"], 3);
    // Bad requests say what is wrong.
    let (status, body) = get(&app, "/api/v1/sites/acme/reports/nope", t).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        get(&app, "/api/v1/sites/acme/reports/content?date=2026-13", t)
            .await
            .0,
        400
    );
    assert_eq!(
        get(&app, "/api/v1/sites/acme/reports/content?limit=0", t)
            .await
            .0,
        400
    );
    // limit
    let r = get(
        &app,
        "/api/v1/sites/acme/reports/content?date=2026-11&limit=1",
        t,
    )
    .await
    .1;
    assert_eq!(r["data"]["pages"]["entries"].as_array().unwrap().len(), 1);
}

async fn csv_exports(backend: Backend) {
    let (app, acme, _, _clock) = app_with_sites(backend).await;
    send_traffic(&app).await;
    for request in [
        app.http.get(format!(
            "{}/api/v1/sites/acme/reports/content?date=2026-11&format=csv",
            app.address
        )),
        app.http
            .get(format!(
                "{}/api/v1/sites/acme/reports/content?date=2026-11",
                app.address
            ))
            .header("Accept", "text/csv"),
    ] {
        let r = request.bearer_auth(&acme).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"));
        let body = r.text().await.unwrap();
        assert_eq!(
            body,
            "list,key,views,title,people\r\npages,/pricing,2,T/pricing,0\r\npages,/,1,T/,0\r\n"
        );
    }
}

async fn glow_metrics(backend: Backend) {
    let (app, acme, _, _clock) = app_with_sites(backend).await;
    send_traffic(&app).await;
    let t = Some(acme.as_str());
    let base = "/api/v1/sites/acme/metrics";
    let (_, c) = get(
        &app,
        &format!("{base}/count?event=signup&from=2026-11-01&to=2026-11-30"),
        t,
    )
    .await;
    assert_eq!(
        (c["count"].clone(), c["total"].clone()),
        (json!(2), json!(2))
    );
    let (_, c) = get(
        &app,
        &format!("{base}/count?event=signup&from=2026-11-24&to=2026-12-31"),
        t,
    )
    .await;
    assert_eq!(c["count"], 0);
    // At most 366 days, both ends counted: a leap year's 366 are answered, 367 refused.
    let (status, _) = get(
        &app,
        &format!("{base}/count?event=signup&from=2028-01-01&to=2028-12-31"),
        t,
    )
    .await;
    assert_eq!(status, 200);
    let (status, e) = get(
        &app,
        &format!("{base}/count?event=signup&from=2027-12-31&to=2028-12-31"),
        t,
    )
    .await;
    assert_eq!(status, 400, "{e}");
    let (_, c) = get(
        &app,
        &format!("{base}/count?event=purchase&from=2026-11-23&to=2026-11-23&where=plan:pro"),
        t,
    )
    .await;
    assert_eq!(
        (c["count"].clone(), c["total"].clone()),
        (json!(1), json!(49))
    );
    let (_, g) = get(
        &app,
        &format!("{base}/group?event=signup&property=plan&from=2026-11-01&to=2026-11-30"),
        t,
    )
    .await;
    assert_eq!(
        g["groups"],
        json!([{"value": "free", "count": 1, "total": 1}, {"value": "pro", "count": 1, "total": 1}])
    );
    let (_, r) = get(
        &app,
        &format!("{base}/retention?start=2026-11-16&unit=week&length=3"),
        t,
    )
    .await;
    assert_eq!(r["cohorts"][1]["cohort"], "2026-W48");
    assert_eq!(r["cohorts"][1]["size"], 3);
    assert_eq!(r["cohorts"][0]["size"], 0);
    let (_, r) = get(
        &app,
        &format!("{base}/retention?start=2026-11&unit=month&length=1"),
        t,
    )
    .await;
    assert_eq!(r["cohorts"][0]["size"], 3);
    assert_eq!(
        get(
            &app,
            &format!("{base}/count?event=x&from=2026-12-01&to=2026-11-01"),
            t
        )
        .await
        .0,
        400
    );
    assert_eq!(
        get(
            &app,
            &format!("{base}/retention?start=2026-11&unit=year"),
            t
        )
        .await
        .0,
        400
    );
}

/// The live stream: a snapshot at once, holding what the flush wrote.
async fn live_stream(backend: Backend) {
    let (app, acme, _, _clock) = app_with_sites(backend).await;
    send_traffic(&app).await;
    let mut r = app
        .http
        .get(format!("{}/api/v1/sites/acme/live", app.address))
        .bearer_auth(&acme)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = r.chunk().await.unwrap().expect("a first event");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let (event, data) = text.split_once('\n').unwrap();
    assert_eq!(event, "event: snapshot");
    let snap: Value = serde_json::from_str(data.trim().strip_prefix("data: ").unwrap()).unwrap();
    let minutes = snap["views_last_minutes"].as_array().unwrap();
    assert_eq!(minutes.len(), 30);
    assert_eq!(
        minutes
            .iter()
            .map(|m| m["views"].as_i64().unwrap())
            .sum::<i64>(),
        3
    );
    assert_eq!(
        snap["pages_now"][0],
        json!({"page": "/pricing", "title": "T/pricing", "views": 2})
    );
    // The next flush that writes for acme is pushed.
    app.hit("site=acme&url=%2Fnew", CHROME_WIN).await;
    app.flush().await;
    let mut text = String::new();
    while !text.contains("event: update") || !text.ends_with("\n\n") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), r.chunk())
            .await
            .expect("an update within 5 s")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("\"page\":\"/new\""), "{text}");
    // Without a token: 401, no stream.
    assert_eq!(get(&app, "/api/v1/sites/acme/live", None).await.0, 401);
}

both_stores!(
    access_control,
    summary_and_every_report,
    csv_exports,
    glow_metrics,
    live_stream,
);
