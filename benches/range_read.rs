//! Reads over a year, uncached, idle and while hits arrive: a real `tally serve` (release build,
//! embedded store, people sketches on) over a store seeded with about 400 days of dense data
//! for one site, `bench`: traffic month documents with every day and every hour, content
//! month documents of 1,000 pages and day documents of 300, referrers month documents of 200
//! hosts and 1,000 links and day documents of 60 and 300, people sketches of every day, month
//! and year with all 4,096 registers; and 16 more sites, `sum00`…`sum15`, with the same traffic
//! and sketches (no content or referrers), whose summaries are read in turn.
//!
//! One client reads one request at a time, as a dashboard does, in rounds: the summary of each
//! `sum` site (the first screen, no parameters), then the summary, traffic, content and referrers
//! over 365 days (`from=…&to=…`, a different 365 days each time). Range answers are not cached;
//! the first screen is kept `summary::TTL` (2 s) per site, so a round lasts at least TTL + 100
//! ms and reads each `sum` site once: every timed summary is read from the store. Each
//! endpoint's p50, p99 and max are printed, idle and then while wrk sends the ingest
//! benchmark's mix (scripts/bench/mix.lua, 100 sites) at about 10,000 hits/s; wrk's achieved
//! rate is printed with them.
//!
//! `cargo bench --bench range_read`. `RANGE_READ_ROUNDS` (default 40) rounds per phase;
//! `RANGE_READ_LOAD_CONNECTIONS` (default 120) and `RANGE_READ_LOAD_DELAY_MS` (default 10) pace
//! wrk (each connection waits that long between a response and its next request);
//! `RANGE_READ_BINS="label=/path/to/tally,..."` runs the same phases against other builds too,
//! each on a copy of the same seeded store (e.g. a build of an older commit, side by side).
//! `RANGE_READ_KEEP=/some/dir` only seeds, copies the seeded store into that directory (its
//! sites and tokens as `tally site` shows them) and stops: a store to profile reads against.
//! Needs wrk (`scripts/apt-ensure wrk wrk`). Results in docs/performance.md.

mod common;

use chrono::{Datelike, Duration as Days, NaiveDate, Utc};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tally::field::{two_digits, FieldKey, Key};
use tally::store::embedded::EmbeddedStore;
use tally::store::{Batch, CollectionBatch, DocUpdate, Store};

/// Days of data before today (and today).
const SEEDED_DAYS: i64 = 400;
const SUMMARY_SITES: usize = 16;

fn key(parts: &[&str]) -> FieldKey {
    FieldKey::from_parts(parts)
}

fn sorted(mut inc: Vec<(FieldKey, i64)>) -> Vec<(FieldKey, i64)> {
    inc.sort_by(|a, b| a.0.cmp(&b.0));
    inc.dedup_by(|a, b| a.0 == b.0);
    inc
}

/// A traffic month document with views and people in every hour of every day, and the
/// people numbers a server's closer writes for closed days and months (`p`, `d.<DD>.p`).
fn traffic_month(id: String) -> DocUpdate {
    let mut inc = vec![
        (key(&["v"]), 31 * 24 * 10),
        (key(&["u"]), 31 * 24 * 3),
        (key(&["p"]), 20_000),
    ];
    for d in 1..=31u8 {
        inc.push((key(&["d", two_digits(d), "v"]), 240));
        inc.push((key(&["d", two_digits(d), "u"]), 72));
        inc.push((key(&["d", two_digits(d), "p"]), 3_000));
        for h in 0..24u8 {
            inc.push((key(&["h", two_digits(d), two_digits(h), "v"]), 10));
            inc.push((key(&["h", two_digits(d), two_digits(h), "u"]), 3));
        }
    }
    DocUpdate {
        id,
        inc: sorted(inc),
        ..DocUpdate::default()
    }
}

fn totals(id: String) -> DocUpdate {
    DocUpdate {
        id,
        inc: sorted(vec![
            (key(&["v"]), 7440),
            (key(&["u"]), 2000),
            (key(&["p"]), 100_000),
        ]),
        ..DocUpdate::default()
    }
}

/// `pages` pages (views and titles) under `p`, starting at page `first` of the site's 2,000.
fn content(id: String, first: usize, pages: usize) -> DocUpdate {
    let (mut inc, mut set) = (Vec::new(), Vec::new());
    for n in first..first + pages {
        let n = n % 2000;
        let path = Key::escape(&format!(
            "/articles/{:02}/a-long-enough-slug-{n:04}",
            n % 40
        ));
        inc.push((key(&["p", path.as_str(), "v"]), 1 + (2000 - n as i64)));
        set.push((
            key(&["p", path.as_str(), "t"]),
            format!("Article number {n}: a title of a usual length"),
        ));
    }
    inc.push((key(&["n"]), pages as i64));
    set.sort_by(|a, b| a.0.cmp(&b.0));
    DocUpdate {
        id,
        inc: sorted(inc),
        set,
        ..DocUpdate::default()
    }
}

/// `hosts` referring hosts and `links` links.
fn referrers(id: String, hosts: usize, links: usize) -> DocUpdate {
    let mut inc = Vec::new();
    for n in 0..hosts {
        let host = Key::escape(&format!("host-{n:03}.example.org"));
        inc.push((key(&["h", host.as_str()]), 1 + n as i64));
    }
    for n in 0..links {
        let link = format!("host-{:03}.example.org/some/page-{n:04}", n % hosts.max(1));
        inc.push((key(&["l", Key::escape(&link).as_str()]), 1 + n as i64));
    }
    inc.push((key(&["n"]), (hosts + links) as i64));
    DocUpdate {
        id,
        inc: sorted(inc),
        ..DocUpdate::default()
    }
}

/// A full people sketch: all 4,096 registers raised.
fn sketch(id: String, seed: usize) -> DocUpdate {
    let max = (0..tally::reports::people::REGISTERS)
        .map(|i| {
            let rank = 1 + ((i * 7 + seed) % 9) as i64;
            (key(&[&(i / 64).to_string(), &(i % 64).to_string()]), rank)
        })
        .collect();
    DocUpdate {
        id,
        max: sorted(max),
        ..DocUpdate::default()
    }
}

fn push(batch: &mut Batch, collection: String, doc: DocUpdate) {
    match batch
        .collections
        .iter_mut()
        .find(|c| c.collection == collection)
    {
        Some(c) => c.docs.push(doc),
        None => batch.collections.push(CollectionBatch {
            collection,
            docs: vec![doc],
        }),
    }
}

async fn apply(store: &EmbeddedStore, batch: Batch) {
    let applied = store.apply(&batch).await;
    assert!(applied.failed.is_empty(), "{:?}", applied.failed);
}

/// Seeds `bench` (everything) and the `sum` sites (traffic and sketches) for the days
/// `first..=today`.
async fn seed(store: &EmbeddedStore, first: NaiveDate, today: NaiveDate) {
    let mut months = Vec::new();
    let mut day = first;
    while day <= today {
        let month = (day.year(), day.month());
        if months.last() != Some(&month) {
            months.push(month);
        }
        let (y, m, d) = (day.year(), day.month(), day.day());
        let period = format!("{y:04}-{m:02}-{d:02}");
        let mut batch = Batch::default();
        let n = day.ordinal() as usize;
        push(
            &mut batch,
            format!("content.{y:04}"),
            content(format!("bench:{period}"), n * 7, 300),
        );
        push(
            &mut batch,
            format!("referrers.{y:04}"),
            referrers(format!("bench:{period}"), 60, 300),
        );
        push(
            &mut batch,
            format!("people.{y:04}"),
            sketch(format!("bench:{period}"), n),
        );
        // The sum sites' sketches of the last 31 days only: what a summary could read.
        if today - day <= Days::days(31) {
            for s in 0..SUMMARY_SITES {
                push(
                    &mut batch,
                    format!("people.{y:04}"),
                    sketch(format!("sum{s:02}:{period}"), n + s),
                );
            }
        }
        apply(store, batch).await;
        day += Days::days(1);
    }
    let mut years = Vec::new();
    for (i, (y, m)) in months.iter().enumerate() {
        let period = format!("{y:04}-{m:02}");
        let mut batch = Batch::default();
        let sites = std::iter::once("bench".to_owned())
            .chain((0..SUMMARY_SITES).map(|s| format!("sum{s:02}")));
        for (s, site) in sites.enumerate() {
            push(
                &mut batch,
                format!("traffic.{y:04}"),
                traffic_month(format!("{site}:{period}")),
            );
            push(
                &mut batch,
                format!("people.{y:04}"),
                sketch(format!("{site}:{period}"), i + s),
            );
            if !years.contains(y) {
                push(
                    &mut batch,
                    format!("traffic.{y:04}"),
                    totals(format!("{site}:{y:04}")),
                );
                push(
                    &mut batch,
                    format!("people.{y:04}"),
                    sketch(format!("{site}:{y:04}"), s),
                );
            }
        }
        push(
            &mut batch,
            format!("content.{y:04}"),
            content(format!("bench:{period}"), i * 50, 1000),
        );
        push(
            &mut batch,
            format!("referrers.{y:04}"),
            referrers(format!("bench:{period}"), 200, 1000),
        );
        if !years.contains(y) {
            years.push(*y);
        }
        apply(store, batch).await;
    }
}

/// Latencies of one endpoint.
#[derive(Default)]
struct Timings(Vec<Duration>);

impl Timings {
    fn line(&mut self, name: &str) -> String {
        self.0.sort();
        let n = self.0.len();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let at = |p: f64| ms(self.0[((n as f64 * p) as usize).min(n - 1)]);
        format!(
            "{name:<28} n {n:>4}  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
            at(0.5),
            at(0.99),
            ms(self.0[n - 1])
        )
    }
}

/// What one phase measured, by endpoint.
struct Phase {
    endpoints: Vec<(&'static str, Timings)>,
}

async fn timed(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    check: impl Fn(&serde_json::Value),
) -> Duration {
    let t = Instant::now();
    let r = http.get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    let body = r.bytes().await.unwrap();
    let took = t.elapsed();
    check(&serde_json::from_slice(&body).unwrap());
    took
}

/// `rounds` rounds of reads against the server at `base`.
async fn measure(base: &str, tokens: &[(String, String)], rounds: u64) -> Phase {
    let http = reqwest::Client::new();
    let bench = &tokens[0].1;
    let today = Utc::now().date_naive();
    let mut endpoints: Vec<(&'static str, Timings)> = [
        "summary (first screen)",
        "summary, 365 days",
        "traffic, 365 days",
        "content, 365 days",
        "referrers, 365 days",
    ]
    .into_iter()
    .map(|n| (n, Timings::default()))
    .collect();
    for round in 0..rounds {
        let started = Instant::now();
        for (site, token) in &tokens[1..] {
            let url = format!("{base}/api/v1/sites/{site}/summary");
            let took = timed(&http, &url, token, |v| {
                assert_eq!(v["days"].as_array().map(Vec::len), Some(30), "{v}");
                assert!(v["all_time"]["views"].as_i64().unwrap() > 0, "{v}");
            })
            .await;
            endpoints[0].1 .0.push(took);
        }
        // A different 365 days each time, all within the seeded days.
        for (i, report) in [
            "summary",
            "reports/traffic",
            "reports/content",
            "reports/referrers",
        ]
        .into_iter()
        .enumerate()
        {
            for k in 0..3 {
                let back = ((round * 3 + k) % 30) as i64;
                let to = today - Days::days(back);
                let from = to - Days::days(364);
                let url = format!(
                    "{base}/api/v1/sites/bench/{report}?from={from}&to={to}",
                    from = from.format("%Y-%m-%d"),
                    to = to.format("%Y-%m-%d")
                );
                let took = timed(&http, &url, bench, |v| {
                    let total = if report == "summary" {
                        &v["total"]["views"]
                    } else {
                        &v["data"]["total"]["views"]
                    };
                    assert!(total.as_i64().unwrap() > 0, "{url}: {v}");
                })
                .await;
                endpoints[i + 1].1 .0.push(took);
            }
        }
        // Each sum site's cached summary has expired before the next round reads it.
        let round_time = tally::api::summary::TTL + Duration::from_millis(100);
        if let Some(rest) = round_time.checked_sub(started.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    Phase { endpoints }
}

/// wrk with the ingest mix against `base`, until it is interrupted (then it prints its
/// figures).
fn load(base: &str) -> std::process::Child {
    let connections = common::env_or("RANGE_READ_LOAD_CONNECTIONS", 120);
    let delay = common::env_or("RANGE_READ_LOAD_DELAY_MS", 10);
    Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            "-d3600s",
            "-s",
            concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench/mix.lua"),
            base,
            "--",
            "tally",
            "1",
        ])
        .env("MIX_DELAY_MS", delay.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("wrk (scripts/apt-ensure wrk wrk)")
}

/// wrk's `Requests/sec:` and the responses that were not 2xx or 3xx.
fn wrk_rate(out: &str) -> (f64, u64) {
    let rate = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or(0.0);
    let bad = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or(0);
    (rate, bad)
}

fn print(label: &str, what: &str, phase: &mut Phase) {
    println!("{label}, {what}:");
    for (name, timings) in &mut phase.endpoints {
        println!("  {}", timings.line(name));
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds = common::env_or("RANGE_READ_ROUNDS", 40);
    let seeded = tempfile::tempdir().unwrap();
    let data = seeded.path().to_str().unwrap().to_owned();
    let run = |args: &[&str]| common::tally(&data, args);
    let mut tokens = Vec::new();
    for site in
        std::iter::once("bench".to_owned()).chain((0..SUMMARY_SITES).map(|s| format!("sum{s:02}")))
    {
        run(&["site", "add", &site, "--tz", "UTC"]);
        let token = run(&["site", "token", &site]).trim().to_owned();
        tokens.push((site, token));
    }
    // The sites of the load's mix.
    for i in 0..100 {
        let (site, host) = (format!("site{i:02}"), format!("site{i:02}.example"));
        run(&["site", "add", &site, "--tz", "UTC", "--host", &host]);
    }
    let today = Utc::now().date_naive();
    let t = Instant::now();
    {
        let store = EmbeddedStore::open(seeded.path()).await.unwrap();
        seed(&store, today - Days::days(SEEDED_DAYS), today).await;
    }
    let bytes = std::fs::metadata(seeded.path().join(tally::store::embedded::FILE_NAME))
        .unwrap()
        .len();
    println!(
        "seeded {SEEDED_DAYS} days in {:.1} s: {:.0} MB",
        t.elapsed().as_secs_f64(),
        bytes as f64 / 1e6
    );

    if let Ok(keep) = std::env::var("RANGE_READ_KEEP") {
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(
            seeded.path().join(tally::store::embedded::FILE_NAME),
            std::path::Path::new(&keep).join(tally::store::embedded::FILE_NAME),
        )
        .unwrap();
        println!("kept the seeded store in {keep}");
        return;
    }

    let mut bins = vec![("this build".to_owned(), common::BIN.to_owned())];
    if let Ok(more) = std::env::var("RANGE_READ_BINS") {
        for entry in more.split(',').filter(|e| !e.is_empty()) {
            let (label, path) = entry.split_once('=').expect("label=path");
            bins.push((label.to_owned(), path.to_owned()));
        }
    }
    // Every build reads its own copy of the same seeded store.
    for (label, bin) in &bins {
        let copy = tempfile::tempdir().unwrap();
        std::fs::copy(
            seeded.path().join(tally::store::embedded::FILE_NAME),
            copy.path().join(tally::store::embedded::FILE_NAME),
        )
        .unwrap();
        let copy_dir = copy.path().to_str().unwrap().to_owned();
        // People sketches are on by default (a build from before that needs
        // TALLY_PEOPLE_SKETCHES=1 in the environment, which the server inherits).
        let server = common::Server::start_bin(bin, &copy_dir, &[]).await;
        let mut idle = measure(&server.base, &tokens, rounds).await;
        print(label, "idle", &mut idle);

        // The load starts 3 s before the reads and stops when they are done (SIGINT: wrk
        // prints its figures for the time it ran).
        let wrk = load(&server.base);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut loaded = measure(&server.base, &tokens, rounds).await;
        let _ = Command::new("kill")
            .args(["-INT", &wrk.id().to_string()])
            .status();
        let out = tokio::task::spawn_blocking(move || wrk.wait_with_output().unwrap())
            .await
            .unwrap();
        let (rate, bad) = wrk_rate(&String::from_utf8_lossy(&out.stdout));
        print(
            label,
            &format!("while wrk sent {rate:.0} hits/s ({bad} answers not 2xx)"),
            &mut loaded,
        );
        server.stop();
    }
}
