//! A document that refuses its update for good (edited by hand through another client) is
//! parked: every other document and site keeps counting, `/readyz` says degraded, `/metrics`
//! counts it, and `tally parked retry` applies what waited exactly once after the repair;
//! `tally parked drop` discards it; a site past the bound gets 503 and only that site.

mod support;

use mongodb::bson::Document;
use std::process::Output;
use std::time::{Duration, Instant};
use support::*;

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0";

/// `tally parked ...` (the real binary) on `store`.
fn parked_cli(store: &TestStore, args: &[&str]) -> Output {
    tally_cli(store)
        .arg("parked")
        .args(args)
        .output()
        .expect("tally runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `(collection, id)` of the site's traffic month document, this month (UTC).
fn traffic_month(site: &str) -> (String, String) {
    let now = chrono::Utc::now();
    (
        format!("traffic.{}", now.format("%Y")),
        format!("{site}:{}", now.format("%Y-%m")),
    )
}

async fn views(store: &TestStore, site: &str) -> Option<i64> {
    let (coll, id) = traffic_month(site);
    store.doc(&coll, &id).await.and_then(|d| get_path(&d, "v"))
}

async fn hits(app: &TestApp, site: &str, n: usize) {
    for i in 0..n {
        app.hit(
            &format!("site={site}&url=https%3A%2F%2F{site}.example%2Fpage-{i}"),
            UA,
        )
        .await;
    }
}

async fn readyz(app: &TestApp) -> (u16, String) {
    let r = app
        .http
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Polls until `check` holds, for at most `limit`.
async fn within<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn poison(doc: &mut Document) {
    doc.insert("v", "edited by hand");
}

async fn a_poisoned_document_is_parked_and_retried_exactly_once(backend: Backend) {
    const FLUSH: Duration = Duration::from_millis(300);
    let store = TestStore::new(backend).await;
    store.add_site("broken", "UTC").await;
    store.add_site("fine", "UTC").await;
    let settings = tally::settings::ServeSettings {
        flush_interval_ms: FLUSH.as_millis() as u64,
        ..test_settings()
    };
    let app = TestApp::spawn(store, settings, tally::period::system_clock()).await;
    hits(&app, "broken", 3).await;
    hits(&app, "fine", 3).await;
    app.flush().await;
    assert_eq!(views(&app.store, "broken").await, Some(3));

    let (coll, id) = traffic_month("broken");
    edit_raw(&app.store, &coll, &id, poison).await;
    hits(&app, "broken", 5).await;
    hits(&app, "fine", 5).await;
    // Every other document is written by the next flush: within one interval (and a margin).
    let fine = within(FLUSH * 4, || async {
        views(&app.store, "fine").await == Some(8)
    })
    .await;
    assert!(fine, "another site is written within a flush interval");
    let (content_coll, content_id) = (
        coll.replace("traffic", "content"),
        id.clone(), // the month document of the same site
    );
    let content = app.store.doc(&content_coll, &content_id).await.unwrap();
    assert_eq!(
        sum_leaves(&content, "p", "v"),
        8,
        "the broken site's other documents are written"
    );
    // parked, seen by /readyz and /metrics
    let degraded = within(Duration::from_secs(15), || async {
        let (status, body) = readyz(&app).await;
        status == 200 && body.contains("\"degraded\"")
    })
    .await;
    assert!(degraded, "/readyz says degraded: {:?}", readyz(&app).await);
    let metrics = app.metrics().await;
    assert!(metrics.contains("tally_parked_statements 1\n"), "{metrics}");
    assert!(
        metrics.contains("tally_store_statements_parked_total 1\n"),
        "{metrics}"
    );
    // more hits for the broken document wait behind the parked one (parked at shutdown)
    hits(&app, "broken", 4).await;
    hits(&app, "fine", 2).await;
    let (result, store) = app.stop().await;
    result.expect("a clean stop: nothing is left owed");
    assert_eq!(views(&store, "fine").await, Some(10));

    let list = parked_cli(&store, &["list", "--json"]);
    assert!(list.status.success(), "{}", text(&list));
    let entries: Vec<serde_json::Value> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 2, "{}", text(&list));
    assert!(entries.iter().all(|e| e["document"] == id.as_str()));
    assert_eq!(
        entries[0]["code"], 14,
        "TypeMismatch, as MongoDB answers: {entries:?}"
    );

    // a retry before the repair changes nothing and says why
    let early = parked_cli(&store, &["retry"]);
    assert!(!early.status.success(), "{}", text(&early));
    assert!(text(&early).contains("2 still parked"), "{}", text(&early));

    // the repair: the counter back to what it was; then the retry applies both entries once
    edit_raw(&store, &coll, &id, |d| {
        d.insert("v", 3i64);
    })
    .await;
    let saved = parked_raw(&store).await;
    let retry = parked_cli(&store, &["retry"]);
    assert!(retry.status.success(), "{}", text(&retry));
    assert!(text(&retry).contains("applied 2"), "{}", text(&retry));
    assert_eq!(views(&store, "broken").await, Some(3 + 5 + 4));
    // an interrupted retry (entries applied, not yet deleted) run again applies nothing twice
    for doc in saved {
        put_raw(&store, "parked", doc).await;
    }
    let again = parked_cli(&store, &["retry"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("2 found already applied"),
        "{}",
        text(&again)
    );
    assert_eq!(views(&store, "broken").await, Some(12));
    let empty = parked_cli(&store, &["list"]);
    assert!(
        text(&empty).starts_with("0 parked statements"),
        "{}",
        text(&empty)
    );

    // drop: parked again, then discarded
    let app = TestApp::spawn(store, test_settings(), tally::period::system_clock()).await;
    edit_raw(&app.store, &coll, &id, poison).await;
    hits(&app, "broken", 2).await;
    app.handle.flush().await;
    let (result, store) = app.stop().await;
    result.unwrap();
    let refused = parked_cli(&store, &["drop"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    let dropped = parked_cli(&store, &["drop", "--all"]);
    assert!(text(&dropped).contains("dropped 1"), "{}", text(&dropped));
    edit_raw(&store, &coll, &id, |d| {
        d.insert("v", 12i64);
    })
    .await;
    let retry = parked_cli(&store, &["retry"]);
    assert!(text(&retry).contains("applied 0"), "{}", text(&retry));
    assert_eq!(views(&store, "broken").await, Some(12));
}

/// Every parked entry as stored.
async fn parked_raw(store: &TestStore) -> Vec<Document> {
    store
        .store
        .scan("parked", "", "\u{10ffff}", &[], 1000)
        .await
        .unwrap()
}

fn sum_leaves(doc: &Document, space: &str, leaf: &str) -> i64 {
    doc.get_document(space)
        .map(|d| {
            d.values()
                .filter_map(|v| v.as_document())
                .filter_map(|p| get_path(p, leaf))
                .sum()
        })
        .unwrap_or(0)
}

/// A site whose parked statements pass `--parked-max-per-site` gets 503 for its hits; the
/// other sites keep their 200s and their counts.
async fn a_site_past_the_parked_bound_gets_503_and_only_it(backend: Backend) {
    let store = TestStore::new(backend).await;
    store.add_site("broken", "UTC").await;
    store.add_site("fine", "UTC").await;
    let settings = tally::settings::ServeSettings {
        parked_max_per_site: 1,
        ..test_settings()
    };
    let app = TestApp::spawn(store, settings, tally::period::system_clock()).await;
    hits(&app, "broken", 1).await;
    app.flush().await;
    let (coll, id) = traffic_month("broken");
    edit_raw(&app.store, &coll, &id, poison).await;
    // two documents of the site refuse: the traffic month, and its technology month
    let (tcoll, tid) = (coll.replace("traffic", "technology"), id.clone());
    edit_raw(&app.store, &tcoll, &tid, |d| {
        d.insert("b", "edited by hand");
    })
    .await;
    hits(&app, "broken", 1).await;
    app.handle.flush().await;
    app.handle.flush().await; // reads the parked collection
    let status = |site: &'static str| {
        let app = &app;
        async move {
            app.http
                .get(format!("{}/t.gif?site={site}", app.address))
                .header("User-Agent", UA)
                .header("X-Forwarded-For", app.next_visitor())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status("broken").await, 503);
    assert_eq!(status("fine").await, 200);
    let events = app
        .http
        .post(format!("{}/e", app.address))
        .header("User-Agent", UA)
        .header("X-Forwarded-For", app.next_visitor())
        .header("Content-Type", "text/plain")
        .body(serde_json::json!([{"site": "broken", "name": "signup"}]).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(events.status().as_u16(), 503);
    assert!(events.text().await.unwrap().contains("site_parked"));
    let metrics = app.metrics().await;
    assert!(metrics.contains("tally_sites_parked 1\n"), "{metrics}");
    assert!(
        metrics.contains("tally_hits_rejected_total{reason=\"site_parked\"} 1\n"),
        "{metrics}"
    );
    let (result, store) = app.stop().await;
    result.unwrap();
    assert_eq!(views(&store, "fine").await, Some(1));
}

/// One command holding a statement applied by an earlier send (its reply was lost), fresh
/// statements, and one the document refuses: each fresh statement is applied once, the old one
/// not again, and the refused one alone is reported, with its code. (FerretDB v1 stops at the
/// first write error, here the old statement's duplicate, and names none; the marks tell.)
async fn a_refusal_is_found_among_resent_statements(backend: Backend) {
    use tally::field::FieldKey;
    use tally::store::{classify, Batch, CollectionBatch, DocUpdate, Fault, Mark};
    let store = TestStore::new(backend).await;
    let statement = |id: &str, seq: i64| DocUpdate {
        id: id.into(),
        inc: vec![(FieldKey::parse("v").unwrap(), 1)],
        mark: Some(Mark {
            writer: "00000000000f".into(),
            seq,
        }),
        ..DocUpdate::default()
    };
    let batch = |docs: Vec<DocUpdate>| Batch {
        collections: vec![CollectionBatch {
            collection: "traffic.2026".into(),
            docs,
        }],
    };
    // "a" gets flush 1 now; its reply is "lost", so flush 1 is sent again below with b..e
    assert!(store
        .store
        .apply(&batch(vec![statement("a:2026-11", 1)]))
        .await
        .failed
        .is_empty());
    put_raw(
        &store,
        "traffic.2026",
        mongodb::bson::doc! {"_id": "c:2026-11", "v": "text"},
    )
    .await;
    let resent = batch(
        ["a", "b", "c", "d", "e"]
            .iter()
            .map(|s| statement(&format!("{s}:2026-11"), 1))
            .collect(),
    );
    let applied = store.store.apply(&resent).await;
    assert_eq!(applied.failed.len(), 1, "{applied:?}");
    assert_eq!(applied.failed[0].doc, 2, "{applied:?}");
    // not one command per statement: 4 on FerretDB (each stop costs a resend), 1 elsewhere
    eprintln!("{backend:?}: {} commands", applied.commands);
    assert!(applied.commands <= 4, "{applied:?}");
    assert_eq!(
        classify(applied.failed[0].code),
        Fault::Permanent,
        "{applied:?}"
    );
    for (site, views) in [("a", 1), ("b", 1), ("d", 1), ("e", 1)] {
        let doc = store
            .doc("traffic.2026", &format!("{site}:2026-11"))
            .await
            .unwrap();
        assert_eq!(get_path(&doc, "v"), Some(views), "{site}");
    }
}

both_stores!(
    a_poisoned_document_is_parked_and_retried_exactly_once,
    a_site_past_the_parked_bound_gets_503_and_only_it,
    a_refusal_is_found_among_resent_statements,
);
