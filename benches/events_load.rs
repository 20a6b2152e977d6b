//! `POST /e` through the whole server: a real `tally serve` process (embedded store, release
//! build) and a client posting batches of 100 events over keep-alive connections for a fixed
//! time, on the same machine. Prints events/s, request latency percentiles, and checks that the
//! counters add up to the events answered 202.
//!
//! `cargo bench --bench events_load` (`EVENTS_LOAD_SECS`, default 10; `EVENTS_LOAD_CONNECTIONS`,
//! default 32). Results in docs/performance.md.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One request body: 100 events of 10 names, each with two properties.
fn body(n: u64) -> String {
    let events: Vec<String> = (0..100)
        .map(|i| {
            format!(
                r#"{{"site":"bench","name":"event-{}","value":{},"props":{{"plan":"plan-{}","source":"s{}"}}}}"#,
                (n + i) % 10,
                i % 7,
                i % 4,
                i % 9
            )
        })
        .collect();
    format!("[{}]", events.join(","))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs = common::env_or("EVENTS_LOAD_SECS", 10);
    let connections = common::env_or("EVENTS_LOAD_CONNECTIONS", 32);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    common::tally(&data, &["site", "add", "bench", "--tz", "UTC"]);
    // Every request comes from one loopback address: the per-address limit, meant for the
    // internet, would refuse all but 20 a second.
    let server = common::Server::start(&data, &["--ingest-rate", "0"]).await;
    let base = server.base.clone();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(connections as usize)
        .build()
        .unwrap();

    let bodies: Arc<Vec<String>> = Arc::new((0..10).map(body).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (http, url, bodies, stop, accepted, refused) = (
            http.clone(),
            format!("{base}/e"),
            Arc::clone(&bodies),
            Arc::clone(&stop),
            Arc::clone(&accepted),
            Arc::clone(&refused),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = c;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = http
                    .post(&url)
                    .body(bodies[(n % 10) as usize].clone())
                    .send()
                    .await;
                n += 1;
                match r {
                    Ok(r) if r.status() == 202 => {
                        let _ = r.bytes().await;
                        accepted.fetch_add(100, Ordering::Relaxed);
                        latencies.push(t.elapsed());
                    }
                    _ => {
                        refused.fetch_add(100, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies: Vec<Duration> = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    let accepted = accepted.load(Ordering::Relaxed);
    println!(
        "POST /e, 100 events per request, {connections} connections, {elapsed:.1} s: \
         {:.0} events/s ({:.0} requests/s); latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms; \
         {} events refused",
        accepted as f64 / elapsed,
        accepted as f64 / 100.0 / elapsed,
        pct(0.50),
        pct(0.99),
        pct(0.999),
        refused.load(Ordering::Relaxed)
    );

    // Stop the server (SIGTERM: it flushes everything) and check the counters.
    server.stop();
    let today = chrono::Utc::now().format("%Y-%m").to_string();
    let year = &today[..4];
    let out = common::tally(
        &data,
        &[
            "doc",
            &format!("events_day.{year}"),
            &format!("bench:{today}"),
        ],
    );
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut counted = 0;
    for (_, days) in doc["e"].as_object().unwrap() {
        for (_, t) in days.as_object().unwrap() {
            counted += t["c"].as_i64().unwrap();
        }
    }
    println!("counters: {counted} events counted, {accepted} answered 202");
    assert_eq!(
        counted as u64, accepted,
        "every accepted event is counted once"
    );
}
