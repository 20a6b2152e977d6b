//! `GET /api/v1/sites/{id}/summary` under load, for a site with a full year of traffic: a real
//! `tally serve` (release build, embedded store) whose store is seeded with 13 month documents
//! holding every day and every hour, and the year documents; clients on the same machine ask
//! for the summary over keep-alive connections for a fixed time. Prints requests/s and latency
//! percentiles.
//!
//! `cargo bench --bench summary_load` (`SUMMARY_LOAD_SECS`, default 10;
//! `SUMMARY_LOAD_CONNECTIONS`, default 8). Results in docs/performance.md.

mod common;

use chrono::{Datelike, Utc};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tally::field::{two_digits, FieldKey};
use tally::store::embedded::EmbeddedStore;
use tally::store::{Batch, CollectionBatch, DocUpdate, Store};

/// A month document with views and people in every hour of every day.
fn full_month(id: String) -> DocUpdate {
    let mut inc = vec![
        (FieldKey::parse("v").unwrap(), 31 * 24 * 10),
        (FieldKey::parse("u").unwrap(), 31 * 24 * 3),
    ];
    for d in 1..=31u8 {
        inc.push((FieldKey::from_parts(&["d", two_digits(d), "v"]), 240));
        inc.push((FieldKey::from_parts(&["d", two_digits(d), "u"]), 72));
        for h in 0..24u8 {
            inc.push((
                FieldKey::from_parts(&["h", two_digits(d), two_digits(h), "v"]),
                10,
            ));
            inc.push((
                FieldKey::from_parts(&["h", two_digits(d), two_digits(h), "u"]),
                3,
            ));
        }
    }
    inc.sort_by(|a, b| a.0.cmp(&b.0));
    DocUpdate {
        id,
        inc,
        ..DocUpdate::default()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs = common::env_or("SUMMARY_LOAD_SECS", 10);
    let connections = common::env_or("SUMMARY_LOAD_CONNECTIONS", 8);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let run = |args: &[&str]| common::tally(&data, args);
    run(&["site", "add", "bench", "--tz", "UTC"]);
    let token = run(&["site", "token", "bench"]).trim().to_owned();

    // Seed 13 months (this one and the 12 before) and their years.
    {
        let store = EmbeddedStore::open(dir.path()).await.unwrap();
        let now = Utc::now();
        let mut batch = Batch::default();
        for back in 0..13 {
            let index = now.year() * 12 + now.month0() as i32 - back;
            let (y, m) = (index.div_euclid(12), index.rem_euclid(12) + 1);
            let coll = format!("traffic.{y:04}");
            let docs = vec![
                full_month(format!("bench:{y:04}-{m:02}")),
                DocUpdate {
                    id: format!("bench:{y:04}"),
                    inc: vec![
                        (FieldKey::parse("v").unwrap(), 7440),
                        (FieldKey::parse("u").unwrap(), 2000),
                    ],
                    ..DocUpdate::default()
                },
            ];
            batch.collections.push(CollectionBatch {
                collection: coll,
                docs,
            });
        }
        let applied = store.apply(&batch).await;
        assert!(applied.failed.is_empty(), "{:?}", applied.failed);
    }

    // Flushes every 100 ms, so the uncached measure below does not wait long for one.
    let server = common::Server::start(&data, &["--flush-interval-ms", "100"]).await;
    let base = server.base.clone();
    let url = format!("{base}/api/v1/sites/bench/summary");
    let http = reqwest::Client::new();
    let check: serde_json::Value = http
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(check["days"].as_array().map(Vec::len), Some(30), "{check}");
    assert!(check["all_time"]["views"].as_i64().unwrap() > 0, "{check}");

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (http, url, token, stop) =
            (http.clone(), url.clone(), token.clone(), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
                assert_eq!(r.status(), 200);
                let _ = r.bytes().await.unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64()
            * 1e3
    };
    println!(
        "GET summary, a full year of documents, {connections} connections, {elapsed:.1} s: {:.0} requests/s; latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms",
        latencies.len() as f64 / elapsed,
        pct(0.5),
        pct(0.99),
        pct(0.999)
    );
    // The cost of a summary that is not cached: once the cached answer is older than
    // `summary::TTL`, the next request reads the documents again. One view, a flush and the
    // cache's expiry, then one timed request.
    let mut misses = Vec::new();
    let today = |v: &serde_json::Value| v["today"]["views"].as_i64().unwrap();
    let before = today(&check);
    for n in 1..=50 {
        http.get(format!("{base}/t.gif?site=bench"))
            .header(
                "User-Agent",
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/131.0.0.0 Safari/537.36",
            )
            .send()
            .await
            .unwrap();
        tokio::time::sleep(tally::api::summary::TTL + Duration::from_millis(250)).await;
        let t = Instant::now();
        let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
        let body: serde_json::Value = r.json().await.unwrap();
        misses.push(t.elapsed());
        // The new view is in the answer: it was read from the documents, not the cache.
        assert_eq!(today(&body), before + n, "{body}");
    }
    misses.sort();
    println!(
        "GET summary after a flush and the cache's expiry (not cached), 50 sequential requests: p50 {:.2} ms, \
         max {:.2} ms",
        misses[25].as_secs_f64() * 1e3,
        misses[49].as_secs_f64() * 1e3
    );
    server.stop();
}
