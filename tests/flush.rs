//! Flushing: failed statements keep their increments, an outage loses nothing, and shutdown
//! writes every accepted hit.

mod support;

use mongodb::bson::doc;
use std::time::Duration;
use support::*;

const AT: (i32, u32, u32, u32, u32) = (2024, 6, 15, 12, 0);

async fn app_at_fixed_time(store: TestStore) -> TestApp {
    let (y, mo, d, h, mi) = AT;
    let clock = TestClock::at(utc(y, mo, d, h, mi));
    TestApp::spawn(store, test_settings(), clock.clock()).await
}

/// The store refuses one document for good (its `p` is a string, so `p.windows` cannot be
/// created): the other documents are written, the refused increments are parked (not sent
/// again, not lost), later ones wait behind them, and after the repair `tally parked retry`
/// applies them and the document is written again from the next flush.
async fn a_refused_statement_is_parked_and_nothing_else_waits(backend: Backend) {
    let store = TestStore::new(backend).await;
    store.add_site("acme", "UTC").await;
    put_raw(
        &store,
        "technology.2024",
        doc! {"_id": "acme:2024-06", "p": "in the way"},
    )
    .await;
    let app = app_at_fixed_time(store).await;

    for _ in 0..3 {
        app.hit("site=acme", CHROME_WIN).await;
    }
    let report = app.handle.flush().await;
    // traffic month and year, technology, resolutions, locations, the live minute, and the
    // people sketches of the day, month and year
    assert_eq!(report.statements, 9, "{report:?}");
    assert_eq!(report.failed, 1, "{report:?}");
    assert_count(
        &app.doc("traffic.2024", "acme:2024-06").await.unwrap(),
        "v",
        3,
    );
    let blocked = app.doc("technology.2024", "acme:2024-06").await.unwrap();
    assert_eq!(
        blocked.get_str("p").unwrap(),
        "in the way",
        "left unchanged"
    );
    assert_eq!(app.handle.flusher.queued(), 0, "not owed: parked");
    let metrics = app.metrics().await;
    assert!(metrics.contains("tally_store_statement_failures_total 1\n"));
    assert!(metrics.contains("tally_store_statements_parked_total 1\n"));
    let entries = tally::aggregate::parked::list(&*app.store.store)
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    let entry = entries[0].as_ref().unwrap();
    assert_eq!(entry.key.id(), "acme:2024-06");
    assert_eq!(
        entry.increments(),
        3 + 3 + 3,
        "b.chrome.131-0, p.windows, n"
    );

    // a later hit: traffic is written, technology waits behind its parked statement
    app.hit("site=acme", CHROME_WIN).await;
    let report = app.handle.flush().await;
    assert_eq!(report.failed, 1, "technology kept back: {report:?}");
    assert_count(
        &app.doc("traffic.2024", "acme:2024-06").await.unwrap(),
        "v",
        4,
    );
    assert!(app.handle.coalescer.pending() > 0, "kept in memory");

    delete_raw(&app.store, "technology.2024", "acme:2024-06").await;
    let retried = tally::aggregate::parked::retry(&*app.store.store, None)
        .await
        .unwrap();
    assert_eq!(retried.applied, 1, "{retried:?}");
    app.flush().await;
    let tech = app.doc("technology.2024", "acme:2024-06").await.unwrap();
    assert_count(&tech, "b.chrome.131-0", 4);
    assert_count(&tech, "p.windows", 4);
    assert_eq!(app.handle.coalescer.pending(), 0);
    assert_eq!(app.handle.flusher.queued(), 0);
}

/// Stopping the app writes what is pending before `run_until_stopped` returns.
async fn graceful_stop_flushes_pending_hits(backend: Backend) {
    let store = TestStore::new(backend).await;
    store.add_site("acme", "UTC").await;
    let app = app_at_fixed_time(store).await;
    for _ in 0..20 {
        app.hit("site=acme&ud=1", FIREFOX_MAC).await;
    }
    assert!(
        app.doc("traffic.2024", "acme:2024-06").await.is_none(),
        "nothing flushed yet"
    );
    let (result, store) = app.stop().await;
    result.expect("a clean shutdown");
    let traffic = store.doc("traffic.2024", "acme:2024-06").await.unwrap();
    assert_count(&traffic, "v", 20);
    assert_count(&traffic, "d.15.u", 20);
    assert_count(
        &store.doc("technology.2024", "acme:2024-06").await.unwrap(),
        "p.macos",
        20,
    );
}

both_stores!(
    a_refused_statement_is_parked_and_nothing_else_waits,
    graceful_stop_flushes_pending_hits,
);

/// MongoDB goes away mid-stream: the pixel keeps answering, flushes fail and keep everything
/// (the failed statements as they were, the new hits in the coalescer, untouched while the
/// store is away), and once the server is back the totals are exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_loses_nothing() {
    let mut ferret = Ferret::start().await;
    let store = TestStore::mongo_at(&ferret.uri()).await;
    store.add_site("acme", "UTC").await;
    let app = app_at_fixed_time(store).await;

    for _ in 0..10 {
        app.hit("site=acme", CHROME_WIN).await;
    }
    app.flush().await;

    ferret.kill();
    for _ in 0..10 {
        app.hit("site=acme", CHROME_WIN).await;
    }
    let report = app.handle.flush().await;
    assert_eq!(report.failed, report.statements, "{report:?}");
    assert!(report.failed > 0);
    let owed = app.handle.flusher.queued();
    assert_eq!(owed, report.failed, "every failed statement is owed");
    assert_eq!(app.handle.coalescer.pending(), 0);
    for _ in 0..5 {
        app.hit("site=acme", CHROME_WIN).await;
    }
    let pending = app.handle.coalescer.pending();
    assert!(pending > 0);
    let again = app.handle.flush().await;
    assert_eq!(
        again.statements, owed,
        "only the owed statements are tried: {again:?}"
    );
    assert_eq!(app.handle.flusher.queued(), owed);
    assert_eq!(
        app.handle.coalescer.pending(),
        pending,
        "left alone, not grown"
    );

    ferret.restart().await;
    // The driver may need a moment to find the server again.
    let mut written = false;
    for _ in 0..50 {
        if app.handle.flush().await.failed == 0 {
            written = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(written, "the flush succeeds once the server is back");
    let traffic = app.doc("traffic.2024", "acme:2024-06").await.unwrap();
    assert_count(&traffic, "v", 25);
    assert_count(&traffic, "h.15.12.v", 25);
    let tech = app.doc("technology.2024", "acme:2024-06").await.unwrap();
    assert_count(&tech, "b.chrome.131-0", 25);
    assert!(app
        .metrics()
        .await
        .contains("tally_flushes_total{outcome=\"failed\"} 2\n"));
}

/// If the store stays down past the shutdown deadline, shutdown says how much it could not write
/// instead of claiming success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_the_store_down_reports_what_it_could_not_write() {
    let mut ferret = Ferret::start().await;
    let store = TestStore::mongo_at(&ferret.uri()).await;
    store.add_site("acme", "UTC").await;
    let settings = tally::settings::ServeSettings {
        shutdown_timeout_secs: 2,
        ..test_settings()
    };
    let app = TestApp::spawn(store, settings, tally::period::system_clock()).await;
    app.hit("site=acme", CHROME_WIN).await;
    ferret.kill();
    let (result, _) = app.stop().await;
    let err = result.expect_err("shutdown cannot claim success");
    assert!(
        err.to_string()
            .contains("pending increments could not be written"),
        "{err}"
    );
}

/// `/readyz` answers 503 while the MongoDB-protocol server is down and 200 once it is back;
/// `/healthz` stays 200 throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_store() {
    let mut ferret = Ferret::start().await;
    let store = TestStore::mongo_at(&ferret.uri()).await;
    store.add_site("acme", "UTC").await;
    let app = app_at_fixed_time(store).await;
    let status = |path: &'static str| {
        let (http, address) = (app.http.clone(), app.address.clone());
        async move {
            let r = http.get(format!("{address}{path}")).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }
    };
    assert_eq!(status("/readyz").await.0, 200);
    ferret.kill();
    let (code, body) = status("/readyz").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("store_unavailable"), "{body}");
    assert_eq!(status("/healthz").await.0, 200);
    ferret.restart().await;
    let mut ready = false;
    for _ in 0..50 {
        if status("/readyz").await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(ready, "ready again after the restart");
}
