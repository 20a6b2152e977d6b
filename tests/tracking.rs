//! Pixel hits over real HTTP → `$inc` upserts → documents read back from the store.

mod support;

use support::*;

use chrono::Utc;
use std::time::{Duration, Instant};
use tally::period::LocalTime;

/// This month's and year's ids for `acme` in `tz`, and the collection year.
fn now_ids(tz: &str) -> (String, String, i32) {
    let local = LocalTime::at(Utc::now(), tz.parse().unwrap());
    (
        format!("acme:{}", local.month_period()),
        format!("acme:{}", local.year_period()),
        local.year,
    )
}

async fn chrome_on_windows_five_hits(backend: Backend) {
    let tz = "Pacific/Kiritimati";
    let app = TestApp::with_site(backend, tz).await;
    for _ in 0..5 {
        app.hit("site=acme&url=https%3A%2F%2Facme.example%2F", CHROME_WIN)
            .await;
    }
    app.flush().await;
    let (month, _, year) = now_ids(tz);
    let tech = app
        .doc(&format!("technology.{year}"), &month)
        .await
        .expect("the technology document exists");
    assert_count(&tech, "b.chrome.131-0", 5);
    assert_count(&tech, "p.windows", 5);
    assert_count(&tech, "d.desktop", 5);
    assert_well_formed(&tech);
    let traffic = app.doc(&format!("traffic.{year}"), &month).await.unwrap();
    assert_count(&traffic, "v", 5);
    assert_well_formed(&traffic);
}

async fn mixed_browsers_platforms_and_devices(backend: Backend) {
    let tz = "Europe/Berlin";
    let app = TestApp::with_site(backend, tz).await;
    let mix = [
        (CHROME_WIN, 3),
        (FIREFOX_MAC, 2),
        (SAFARI_IPHONE, 4),
        (SAFARI_IPAD, 1),
        (CHROME_ANDROID, 2),
        (EDGE_WIN, 1),
    ];
    for (ua, n) in mix {
        for _ in 0..n {
            app.hit("site=acme", ua).await;
        }
    }
    app.flush().await;
    let (month, _, year) = now_ids(tz);
    let tech = app
        .doc(&format!("technology.{year}"), &month)
        .await
        .unwrap();
    for (path, n) in [
        ("b.chrome.131-0", 5),
        ("b.firefox.133-0", 2),
        ("b.safari.17-1", 4),
        ("b.safari.16-6", 1),
        ("b.edge.131-0", 1),
        ("p.windows", 4),
        ("p.macos", 2),
        ("p.ios", 5),
        ("p.android", 2),
        ("d.desktop", 6),
        ("d.mobile", 6),
        ("d.tablet", 1),
    ] {
        assert_count(&tech, path, n);
    }
    assert_well_formed(&tech);
}

async fn flags_count_people(backend: Backend) {
    let tz = "UTC";
    let app = TestApp::with_site(backend, tz).await;
    // A new visitor (every flag), one back the same hour (none), one back next day in the same
    // month seen from this hour (uh, ud), and one who turned cookies off (no flags).
    app.hit("site=acme&uh=1&ud=1&um=1&uy=1&u=1", CHROME_WIN)
        .await;
    app.hit("site=acme&uh=0&ud=0&um=0&uy=0&u=0", CHROME_WIN)
        .await;
    app.hit("site=acme&uh=1&ud=1", FIREFOX_MAC).await;
    app.hit("site=acme", SAFARI_IPHONE).await;
    app.flush().await;
    let local = LocalTime::at(Utc::now(), chrono_tz::UTC);
    let (month, year_id, year) = now_ids(tz);
    let (dd, hh) = (format!("{:02}", local.day), format!("{:02}", local.hour));
    let traffic = app.doc(&format!("traffic.{year}"), &month).await.unwrap();
    assert_count(&traffic, "v", 4);
    assert_count(&traffic, "u", 1);
    assert_count(&traffic, &format!("d.{dd}.v"), 4);
    assert_count(&traffic, &format!("d.{dd}.u"), 2);
    assert_count(&traffic, &format!("h.{dd}.{hh}.v"), 4);
    assert_count(&traffic, &format!("h.{dd}.{hh}.u"), 2);
    assert_well_formed(&traffic);
    let yearly = app.doc(&format!("traffic.{year}"), &year_id).await.unwrap();
    assert_count(&yearly, "v", 4);
    assert_count(&yearly, "u", 1);
    assert_well_formed(&yearly);
}

/// One instant, two sites on opposite sides of the date line: different days, hours, months.
async fn buckets_follow_each_sites_zone(backend: Backend) {
    let store = TestStore::new(backend).await;
    store.add_site("kiri", "Pacific/Kiritimati").await; // UTC+14
    store.add_site("pago", "Pacific/Pago_Pago").await; // UTC-11
    let clock = TestClock::at(utc(2024, 6, 30, 12, 0));
    let app = TestApp::spawn(store, test_settings(), clock.clock()).await;
    app.hit("site=kiri&uh=1", CHROME_WIN).await;
    app.hit("site=pago&uh=1", CHROME_WIN).await;
    app.flush().await;
    // Kiritimati: 2024-07-01 02:00. Pago Pago: 2024-06-30 01:00.
    let kiri = app.doc("traffic.2024", "kiri:2024-07").await.unwrap();
    assert_count(&kiri, "d.01.v", 1);
    assert_count(&kiri, "h.01.02.v", 1);
    assert_count(&kiri, "h.01.02.u", 1);
    assert!(app.doc("traffic.2024", "kiri:2024-06").await.is_none());
    let pago = app.doc("traffic.2024", "pago:2024-06").await.unwrap();
    assert_count(&pago, "d.30.v", 1);
    assert_count(&pago, "h.30.01.v", 1);
    assert!(app.doc("technology.2024", "pago:2024-06").await.is_some());
    assert!(app.doc("technology.2024", "kiri:2024-07").await.is_some());
}

/// 23:30 UTC on 31 December is already next year in Tokyo: next year's collections.
async fn new_year_rolls_into_the_next_yearly_collection(backend: Backend) {
    let store = TestStore::new(backend).await;
    store.add_site("acme", "Asia/Tokyo").await;
    let clock = TestClock::at(utc(2010, 12, 31, 23, 30));
    let app = TestApp::spawn(store, test_settings(), clock.clock()).await;
    app.hit("site=acme&uy=1&um=1", CHROME_WIN).await;
    clock.set(utc(2010, 12, 31, 14, 59)); // 23:59 in Tokyo: still 2010
    app.hit("site=acme&uy=1&um=1", CHROME_WIN).await;
    app.flush().await;

    let new_month = app.doc("traffic.2011", "acme:2011-01").await.unwrap();
    assert_count(&new_month, "v", 1);
    assert_count(&new_month, "d.01.v", 1);
    assert_count(&new_month, "h.01.08.v", 1);
    let new_year = app.doc("traffic.2011", "acme:2011").await.unwrap();
    assert_count(&new_year, "v", 1);
    assert_count(&new_year, "u", 1);
    assert!(app.doc("technology.2011", "acme:2011-01").await.is_some());

    let old_month = app.doc("traffic.2010", "acme:2010-12").await.unwrap();
    assert_count(&old_month, "h.31.23.v", 1);
    assert_count(&app.doc("traffic.2010", "acme:2010").await.unwrap(), "v", 1);
}

/// On the day New York falls back, 01:00–01:59 happens twice: both land in hour 01.
async fn dst_fall_back_hour_counts_both_real_hours(backend: Backend) {
    let store = TestStore::new(backend).await;
    store.add_site("acme", "America/New_York").await;
    let clock = TestClock::at(utc(2024, 11, 3, 5, 30)); // 01:30 EDT
    let app = TestApp::spawn(store, test_settings(), clock.clock()).await;
    app.hit("site=acme", CHROME_WIN).await;
    clock.set(utc(2024, 11, 3, 6, 30)); // 01:30 EST
    app.hit("site=acme", CHROME_WIN).await;
    clock.set(utc(2024, 11, 4, 4, 30)); // 23:30 EST, still the 3rd
    app.hit("site=acme", CHROME_WIN).await;
    app.flush().await;
    let month = app.doc("traffic.2024", "acme:2024-11").await.unwrap();
    assert_count(&month, "h.03.01.v", 2);
    assert_count(&month, "h.03.23.v", 1);
    assert_count(&month, "d.03.v", 3);
    assert!(get_path(&month, "d.04.v").is_none());
}

/// With the default one-second flush interval, hits are in the documents within two seconds,
/// with no explicit flush: the flusher's own schedule.
///
/// The first write of a year creates its collections, which on a loaded FerretDB can take
/// longer than a flush interval; that happens once a year per report, so the test waits for a
/// first hit (with a generous bound) before it measures. The two seconds are held on the
/// embedded store. On FerretDB the flush itself, a read-modify-write in SQLite while the rest of
/// the suite writes to the same server, has taken over a second in CI (the test saw one hit
/// after the five more had been answered for 2 s); there the test allows 10 s, which still
/// fails if the flusher does not write on its own.
async fn hits_are_live_within_two_seconds(backend: Backend) {
    let bound = match backend {
        Backend::Embedded => Duration::from_secs(2),
        Backend::Mongo => Duration::from_secs(10),
    };
    let store = TestStore::new(backend).await;
    store.add_site("acme", "Pacific/Kiritimati").await;
    let settings = tally::settings::ServeSettings {
        flush_interval_ms: 1000,
        ..test_settings()
    };
    let app = TestApp::spawn(store, settings, tally::period::system_clock()).await;
    let (month, _, year) = now_ids("Pacific/Kiritimati");
    let collection = format!("technology.{year}");
    let chrome =
        |doc: Option<mongodb::bson::Document>| doc.and_then(|d| get_path(&d, "b.chrome.131-0"));
    let wait_for = |want: i64, within: Duration| {
        let (app, collection, month) = (&app, &collection, &month);
        async move {
            let started = Instant::now();
            loop {
                let seen = chrome(app.doc(collection, month).await);
                if seen == Some(want) {
                    return started.elapsed();
                }
                assert!(
                    started.elapsed() < within,
                    "{want} hits not in the store after {within:?} (saw {seen:?})"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    app.hit("site=acme", CHROME_WIN).await;
    wait_for(1, Duration::from_secs(20)).await;
    for _ in 0..5 {
        app.hit("site=acme", CHROME_WIN).await;
    }
    // From the last pixel answer.
    wait_for(6, bound).await;
}

/// Hostile and broken requests: the pixel always answers, nothing malformed is written, and
/// only the valid hits count.
async fn bad_input_gets_a_pixel_and_writes_nothing_malformed(backend: Backend) {
    let tz = "UTC";
    let app = TestApp::with_site(backend, tz).await;
    let long_ua = format!("{CHROME_WIN} {}", "x".repeat(10_000));
    let huge = "a".repeat(20_000);
    // Not counted.
    app.hit("", CHROME_WIN).await;
    app.hit("url=%2Fno-site", CHROME_WIN).await;
    app.hit("site=nosuchsite", CHROME_WIN).await;
    app.hit("site=ACME", CHROME_WIN).await;
    app.hit("site=acme%00", CHROME_WIN).await;
    app.hit("site=ac.me", CHROME_WIN).await;
    app.hit("site=%24where", CHROME_WIN).await;
    app.hit("site=acme", GOOGLEBOT).await;
    app.hit("site=acme", "").await;
    app.hit("site=acme", "curl/8.5.0").await;
    // Counted: hostile but harmless values.
    app.hit("site=acme", &long_ua).await;
    app.hit(
        "site=acme&url=%2Fa.b%24c%00d&title=%24set.%00%FF%FE",
        CHROME_WIN,
    )
    .await;
    app.hit("site=acme&url=%E0%A4%A&title=%ZZ%&ref=%", CHROME_WIN)
        .await;
    app.hit(
        &format!("site=acme&title={huge}&url={huge}&x={huge}"),
        CHROME_WIN,
    )
    .await;
    app.hit("site=acme&sw=-5&bw=1e9&bh=NaN&uh=yes&u=2", CHROME_WIN)
        .await;
    app.hit("site=acme&site=other&b.chrome=1&%24inc=1", CHROME_WIN)
        .await;
    // A UA with bytes that are not UTF-8.
    let response = app
        .http
        .get(format!("{}/t.gif?site=acme", app.address))
        .header(
            "User-Agent",
            reqwest::header::HeaderValue::from_bytes(b"Mozilla/5.0 \xff\xfe Chrome/131.0.0.0")
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_pixel(response).await;
    app.flush().await;

    let (month, year_id, year) = now_ids(tz);
    let traffic = app.doc(&format!("traffic.{year}"), &month).await.unwrap();
    assert_count(&traffic, "v", 7);
    assert!(get_path(&traffic, "u").is_none(), "no valid flag was sent");
    assert_well_formed(&traffic);
    assert_well_formed(&app.doc(&format!("traffic.{year}"), &year_id).await.unwrap());
    let tech = app
        .doc(&format!("technology.{year}"), &month)
        .await
        .unwrap();
    assert_count(&tech, "b.chrome.131-0", 6);
    assert_well_formed(&tech);
    // The unknown site wrote nothing anywhere.
    for coll in ["traffic", "technology"] {
        let id = month.replace("acme", "nosuchsite");
        assert!(app.doc(&format!("{coll}.{year}"), &id).await.is_none());
    }

    let metrics = app.metrics().await;
    for (line, n) in [
        ("tally_hits_accepted_total", 7),
        ("tally_hits_rejected_total{reason=\"missing_site\"}", 2),
        ("tally_hits_rejected_total{reason=\"unknown_site\"}", 1),
        ("tally_hits_rejected_total{reason=\"invalid_site\"}", 4),
        ("tally_hits_rejected_total{reason=\"bot\"}", 3),
    ] {
        assert!(
            metrics.contains(&format!("{line} {n}\n")),
            "{line} {n} not in\n{metrics}"
        );
    }
}

/// Past 64 KiB a URI cannot be parsed by the HTTP layer: it answers 400 before tally sees the
/// request (documented in docs/tracking.md), and nothing is written.
async fn a_uri_past_64_kib_is_refused_and_writes_nothing(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::with_site(backend, "UTC").await;
    // HTTP clients refuse to build such a URI, so the request is written by hand.
    let host = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!(
        "GET /t.gif?site=acme&url={} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {CHROME_WIN}\r\n\
         Connection: close\r\n\r\n",
        "a".repeat(70_000)
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let status_line = String::from_utf8_lossy(&answer[..answer.len().min(40)]).into_owned();
    assert!(status_line.starts_with("HTTP/1.1 400"), "{status_line}");
    app.flush().await;
    let (month, _, year) = now_ids("UTC");
    assert!(app.doc(&format!("traffic.{year}"), &month).await.is_none());
}

/// `/metrics` is valid Prometheus/OpenMetrics text, and its counters move with hits and flushes.
async fn metrics_parse_and_move(backend: Backend) {
    let app = TestApp::with_site(backend, "UTC").await;
    let sample = |text: &str, name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    let before = app.metrics().await;
    for line in before.lines() {
        if line.starts_with('#') {
            assert!(
                line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line == "# EOF",
                "{line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert!(value.parse::<f64>().is_ok(), "{line}");
        let name = series.split('{').next().unwrap();
        assert!(
            name.starts_with("tally_")
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "{line}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "{line}"
            );
        }
    }
    assert!(before.trim_end().ends_with("# EOF"));
    assert_eq!(sample(&before, "tally_hits_accepted_total"), 0.0);
    app.hit("site=acme", CHROME_WIN).await;
    app.hit("site=acme", GOOGLEBOT).await;
    let mid = app.metrics().await;
    assert_eq!(sample(&mid, "tally_hits_accepted_total"), 1.0);
    assert_eq!(
        sample(&mid, "tally_hits_rejected_total{reason=\"bot\"}"),
        1.0
    );
    assert!(sample(&mid, "tally_pending_increments") > 0.0);
    app.flush().await;
    let after = app.metrics().await;
    assert_eq!(sample(&after, "tally_flushes_total{outcome=\"ok\"}"), 1.0);
    assert!(sample(&after, "tally_store_statements_total") >= 3.0);
    assert_eq!(sample(&after, "tally_flush_statements_count"), 1.0);
    assert_eq!(sample(&after, "tally_pending_increments"), 0.0);
}

both_stores!(
    metrics_parse_and_move,
    chrome_on_windows_five_hits,
    mixed_browsers_platforms_and_devices,
    flags_count_people,
    buckets_follow_each_sites_zone,
    new_year_rolls_into_the_next_yearly_collection,
    dst_fall_back_hour_counts_both_real_hours,
    hits_are_live_within_two_seconds,
    bad_input_gets_a_pixel_and_writes_nothing_malformed,
    a_uri_past_64_kib_is_refused_and_writes_nothing,
);

#[tokio::test]
async fn the_snippet_is_served_small_and_cacheable() {
    let app = TestApp::with_site(Backend::Embedded, "UTC").await;
    let url = format!("{}/t.js", app.address);
    let r = app.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(r.headers()["cache-control"], "public, max-age=3600");
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let body = r.text().await.unwrap();
    assert!(body.contains("data-site") && body.contains("t.gif"));
    let again = app
        .http
        .get(&url)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let gz = app
        .http
        .get(&url)
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    let size: usize = gz.bytes().await.unwrap().len();
    // 3.5 KiB: the page flags (people per page, `pp`) took it from about 2,900 bytes to 3,458
    // (docs/tracking.md).
    assert!(size < 3584, "gzipped snippet is {size} bytes");
}

#[tokio::test]
async fn unknown_paths_get_the_json_error_shape() {
    let app = TestApp::with_site(Backend::Embedded, "UTC").await;
    let r = app
        .http
        .get(format!("{}/no/such/thing", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("/no/such/thing"));
}
