//! Several nodes behave as one: three real `tally serve` processes on one store behind the
//! suite's nginx running `deploy/nginx/tally.conf`, with the defaults a user gets (flags only
//! where a test is about them).
//!
//! - The embedded store takes same-site writes from several processes (SQLite transactions),
//!   so nginx balances round-robin; FerretDB v1's `update` is not atomic between writers, so
//!   there nginx hashes sites to nodes (`hash $arg_site consistent;`, docs/operations.md).
//! - Every request answered 2xx is counted exactly, in every report, under load and when a node
//!   is stopped with SIGTERM in the middle of it (on FerretDB, except for the sites that move
//!   off the stopped node: their loss is printed, docs/reliability.md#several-nodes). A
//!   `--durable` node killed mid-load can have hits nginx sent again counted twice: at most
//!   those.
//! - New sites and settings reach every node within `--site-refresh-secs`; a capped document's
//!   cap holds when two nodes fill it at once; the ingest rate limit is per node.
//! - A node compares its clock with the store's and exports the skew.
//!
//! Sizes are for a 2-core machine shared with other work (the file takes about 20 s).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};
use support::load::{self, Counts, Mix, Target};
use support::nginx::Balance;
use support::node::{Nodes, Tally};
use support::stream::{self, Stream};
use support::totals::{assert_totals, sum, totals};
use support::*;

const NODES: usize = 3;
/// Pixel hits of the load tests, half through nginx's HTTP port and half through HTTPS.
const HITS: u64 = 30_000;
/// Connections per port.
const CONNECTIONS: usize = 16;
/// Twelve sites, so that hashing on the site spreads them over the nodes (all twelve on one of
/// three nodes: 3 × (1/3)^12, about 1 in 177,000); 4,096 visitor addresses.
const MIX: Mix = Mix {
    sites: 12,
    pages: 25,
    ..Mix::VIEWS
};

async fn store_with_sites(backend: Backend) -> TestStore {
    let store = TestStore::new(backend).await;
    for site in MIX.site_ids() {
        store.add_site(&site, "UTC").await;
    }
    store
}

/// How nginx spreads the pixel: round-robin where the store takes same-document writes from
/// several processes, by site where it does not.
fn balance(backend: Backend) -> Balance {
    match backend {
        Backend::Embedded => Balance::RoundRobin,
        Backend::Mongo => Balance::Site,
    }
}

/// A counter of a node's `/metrics`, 0 when absent.
async fn metric(node: &support::node::Tally, line: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", node.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

async fn accepted_per_node(nodes: &Nodes) -> Vec<u64> {
    let mut out = Vec::new();
    for node in nodes.nodes.iter().flatten() {
        out.push(metric(node, "tally_hits_accepted_total ").await);
    }
    out
}

/// 30,000 pixel hits through nginx to three nodes: every one answered 200 and counted exactly,
/// in every report.
async fn three_nodes_count_a_load_exactly(backend: Backend) {
    let store = store_with_sites(backend).await;
    let mut nodes = Nodes::start(&store, NODES, balance(backend), &[]).await;
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    // The two clients share `counts`: together they send `HITS`.
    let run = |target: Target| load::run(target, CONNECTIONS, HITS, MIX, None, counts.clone());
    tokio::join!(
        run(nodes.nginx.http_target()),
        run(nodes.nginx.https_target())
    );
    let secs = started.elapsed().as_secs_f64();
    let per_node = accepted_per_node(&nodes).await;
    nodes.stop_all().await;
    let totals = totals(&store, MIX).await;
    eprintln!(
        "{backend:?}, {NODES} nodes, {:?}: {HITS} hits through nginx in {secs:.1} s ({:.0}/s), accepted per node {per_node:?}: {counts:?}; totals {totals:?}",
        balance(backend),
        HITS as f64 / secs
    );
    assert_eq!(
        counts.ok(),
        HITS,
        "every hit answered 200: {counts:?}\n{}",
        nodes.nginx.logs()
    );
    assert_eq!(per_node.iter().sum::<u64>(), HITS);
    let serving = per_node.iter().filter(|n| **n > 0).count();
    match balance(backend) {
        Balance::RoundRobin => assert_eq!(serving, NODES, "round-robin: {per_node:?}"),
        Balance::Site => assert!(serving >= 2, "twelve sites over the nodes: {per_node:?}"),
    }
    assert_totals(&totals, HITS, "three nodes");
}

/// Which node nginx sends each site of [`MIX`] to: one hit per site through nginx, seen in the
/// nodes' `tally_hits_accepted_total` (before any load; each is counted).
async fn owners(nodes: &Nodes) -> Vec<usize> {
    let mut owners = Vec::new();
    for site in MIX.site_ids() {
        let before = accepted_per_node(nodes).await;
        hit(&nodes.nginx.http_url(), &site, owners.len() as u32, false).await;
        let after = accepted_per_node(nodes).await;
        let owner = (0..before.len()).find(|i| after[*i] > before[*i]).unwrap();
        owners.push(owner);
    }
    owners
}

/// SIGTERM to one of three nodes in the middle of a load through nginx: the node answers what
/// it took and writes it; nginx sends the rest to the other nodes. Every request answered 2xx
/// is counted, exactly once, site by site: on the embedded store for every site; on FerretDB
/// (sites hashed to nodes) for every site that stays on its node. The stopped node's sites move
/// to the others while it writes its last hits, and FerretDB v1's `update` is not atomic
/// between writers: there the test checks that nothing is counted twice, and prints what the
/// hand-over lost (docs/operations.md#several-nodes-behind-nginx).
async fn sigterm_to_one_node_loses_nothing(backend: Backend) {
    let store = store_with_sites(backend).await;
    let mut nodes = Nodes::start(&store, NODES, balance(backend), &[]).await;
    let owners = owners(&nodes).await;
    // The node most sites hash to (any one under round-robin).
    let victim = (0..NODES)
        .max_by_key(|n| owners.iter().filter(|o| *o == n).count())
        .unwrap();
    // One load per site, so each site's answers are known: 2 connections per site and port.
    let per_site: Vec<Arc<Counts>> = (0..MIX.sites).map(|_| Arc::default()).collect();
    let mut loads = Vec::new();
    for (site, counts) in per_site.iter().enumerate() {
        let mix = Mix {
            sites: 1,
            first: site,
            ..MIX
        };
        for target in [nodes.nginx.http_target(), nodes.nginx.https_target()] {
            let counts = Arc::clone(counts);
            loads.push(tokio::spawn(load::run(
                target,
                2,
                u64::MAX,
                mix,
                None,
                counts,
            )));
        }
    }
    let ok = || per_site.iter().map(|c| c.ok()).sum::<u64>();
    while ok() < 5_000 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let at_signal = ok();
    let started = Instant::now();
    let (clean, log) = nodes.stop(victim).await;
    let stopped_in = started.elapsed();
    assert!(clean, "a clean exit after SIGTERM: {log}");
    let after_stop = ok();
    while ok() < after_stop + 5_000 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for counts in &per_site {
        counts.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    for load in loads {
        load.await.unwrap();
    }
    // nginx logs each request it could not pass to the stopped node (and then sent to the next).
    let error_log = nodes.nginx.error_log();
    let failed: Vec<&str> = error_log
        .lines()
        .filter(|l| l.contains("upstream"))
        .collect();
    nodes.stop_all().await;

    let mut lost_in_hand_over = 0;
    let mut moved = Vec::new();
    for (site, counts) in per_site.iter().enumerate() {
        assert_eq!(counts.unknown() + counts.other(), 0, "s{site}: {counts:?}");
        let mix = Mix {
            sites: 1,
            first: site,
            ..MIX
        };
        // The load's 200s and the ownership probe's.
        let answered = counts.ok() + 1;
        let totals = totals(&store, mix).await;
        if backend == Backend::Mongo && owners[site] == victim {
            moved.push(format!("s{site}"));
            for (name, n) in &totals {
                let n = *n as u64;
                assert!(
                    n <= answered,
                    "s{site}: {name} counted twice: {n} > {answered}"
                );
                lost_in_hand_over = lost_in_hand_over.max(answered - n);
            }
        } else {
            assert_totals(
                &totals,
                answered,
                &format!("s{site} after SIGTERM to node{victim}"),
            );
        }
    }
    eprintln!(
        "{backend:?}, {NODES} nodes, {:?}, sites to nodes {owners:?}: SIGTERM to node{victim} after {at_signal} answers of 200; \
         it exited in {:.2} s, with {after_stop} answered; in all {} answered 200, 0 other, 0 unknown; counted exactly per site{}; \
         nginx logged {} failed tries, the first: {:?}",
        balance(backend),
        stopped_in.as_secs_f64(),
        ok() + MIX.sites as u64,
        if moved.is_empty() {
            String::new()
        } else {
            format!(" but the moved sites {moved:?}, which lost at most {lost_in_hand_over} hits in one counter in the hand-over")
        },
        failed.len(),
        failed.first()
    );
}

/// `--durable`, SIGKILL to one of three nodes mid-load (the embedded store, round-robin): nothing
/// answered 200 is lost. A hit the killed node had logged but not answered is replayed from its
/// log when it starts again, and nginx has meanwhile sent that GET to another node: it is
/// counted twice. At most the requests nginx sent again (its error log names each) are; the
/// figure is printed for docs/operations.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_to_a_durable_node_may_count_what_nginx_sent_again() {
    let store = store_with_sites(Backend::Embedded).await;
    let wal: Vec<tempfile::TempDir> = (0..NODES).map(|_| tempfile::tempdir().unwrap()).collect();
    let flags = |i: usize| -> Vec<String> {
        let dir = wal[i].path().display().to_string();
        vec!["--durable".into(), "--durable-dir".into(), dir]
    };
    let mut nodes = Nodes::start_each(&store, NODES, Balance::RoundRobin, flags).await;
    let counts = Arc::new(Counts::default());
    let load = {
        let (http, https) = (nodes.nginx.http_target(), nodes.nginx.https_target());
        let counts = Arc::clone(&counts);
        tokio::spawn(async move {
            let run = |t: Target| load::run(t, CONNECTIONS, u64::MAX, MIX, None, counts.clone());
            tokio::join!(run(http), run(https));
        })
    };
    load::until_ok(&counts, 5_000).await;
    nodes.kill(1).await;
    let at_kill = counts.ok();
    load::until_ok(&counts, at_kill + 5_000).await;
    load::stop(&counts, load).await;
    let error_log = nodes.nginx.error_log();
    let sent_again = error_log
        .lines()
        .filter(|l| l.contains("while reading response header from upstream"))
        .count() as u64;
    nodes.stop_all().await;
    // The killed node again, on its log: it replays what it had not written, and stops.
    let node1 = flags(1);
    let node1: Vec<&str> = node1.iter().map(String::as_str).collect();
    let again = Tally::start(&store, nodes.logs.path(), "node1-again", &node1).await;
    let (clean, log) = again.stop().await;
    assert!(clean, "{log}");
    let totals = totals(&store, MIX).await;
    let ok = counts.ok();
    let counted = totals["traffic month: v"] as u64;
    eprintln!(
        "--durable, {NODES} nodes, round-robin: SIGKILL to node1 after {at_kill} answers of 200; in all {counts:?}; \
         nginx sent {sent_again} requests again after no answer came; counted {counted}: {} more than the 200s; totals {totals:?}",
        counted.saturating_sub(ok)
    );
    assert_eq!(counts.other() + counts.unknown(), 0, "{counts:?}");
    for (name, n) in &totals {
        let n = *n as u64;
        assert!(
            n >= ok && n <= ok + sent_again,
            "{name}: {n} counted, {ok} answered 200, {sent_again} sent again: {totals:?}"
        );
    }
}

/// Each node's live stream shows every node's views: hits sent through nginx (spread over the
/// three nodes round-robin on the embedded store, all to the site's node on FerretDB) appear in
/// the stream of every node within two seconds of the last answer, since the panel reads the
/// minute documents and not the node's own flushes (the flush interval, 1 s, plus the stream's
/// poll, 1 s).
async fn every_node_streams_every_nodes_views(backend: Backend) {
    const VIEWS: u32 = 300;
    let store = TestStore::new(backend).await;
    let site = "live".to_owned();
    let mut public = store.add_site(&site, "UTC").await;
    public.public = true; // the stream without a token
    store.store.update_site(&public).await.unwrap();
    let mut nodes = Nodes::start(&store, NODES, balance(backend), &[]).await;
    let http = reqwest::Client::new();
    let mut streams = Vec::new();
    for i in 0..NODES {
        let url = format!("{}/api/v1/sites/{site}/live", nodes.node(i).url());
        let mut stream = Stream::open(&http, &url).await;
        let (event, snapshot) = stream.next(Duration::from_secs(5)).await;
        assert_eq!((event.as_str(), stream::views(&snapshot)), ("snapshot", 0));
        streams.push(stream);
    }
    let url = nodes.nginx.http_url();
    for n in 0..VIEWS {
        hit(&url, &site, n, false).await;
    }
    let answered = Instant::now();
    let per_node = accepted_per_node(&nodes).await;
    let mut seen = Vec::new();
    for stream in &mut streams {
        loop {
            let (_, snapshot) = stream.next(Duration::from_secs(5)).await;
            if stream::views(&snapshot) == i64::from(VIEWS) {
                seen.push(answered.elapsed());
                break;
            }
        }
    }
    // Closed first: a node's graceful stop waits for open streams.
    drop(streams);
    nodes.stop_all().await;
    eprintln!(
        "{backend:?}: {VIEWS} views accepted per node {per_node:?}; every node's stream showed all of them {seen:?} after the last answer"
    );
    if backend == Backend::Embedded {
        assert!(per_node.iter().all(|n| *n > 0), "round-robin: {per_node:?}");
    }
    for (i, after) in seen.iter().enumerate() {
        assert!(
            *after <= Duration::from_secs(2),
            "node {i}'s stream showed every node's views {after:?} after the last answer"
        );
    }
}

both_stores!(
    three_nodes_count_a_load_exactly,
    sigterm_to_one_node_loses_nothing,
    every_node_streams_every_nodes_views,
);

/// One pixel hit for `site` straight to a node, from a visitor of its own, with `DNT: 1` or not.
async fn hit(url: &str, site: &str, n: u32, dnt: bool) {
    let mut request = reqwest::Client::new()
        .get(format!("{url}/t.gif?site={site}&url=%2F"))
        .header("User-Agent", CHROME_WIN)
        .header("X-Forwarded-For", visitor(n));
    if dnt {
        request = request.header("DNT", "1");
    }
    let status = request.send().await.unwrap().status();
    assert_eq!(status, 200);
}

/// Sends hits for `site` to every node (numbered from `*sent`) until each node's `/metrics`
/// has `line` above 0; how long that took.
async fn until_every_node(
    nodes: &Nodes,
    site: &str,
    dnt: bool,
    line: &str,
    sent: &mut u32,
) -> Duration {
    let started = Instant::now();
    loop {
        let mut seen = Vec::new();
        for node in nodes.nodes.iter().flatten() {
            hit(&node.url(), site, *sent, dnt).await;
            *sent += 1;
            seen.push(metric(node, line).await);
        }
        if seen.iter().all(|n| *n > 0) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not every node has {line}: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A site added with the CLI on the shared store reaches every node within
/// `--site-refresh-secs`, and so does a change of its settings (`--honor-dnt on`): each node
/// counts the site's hits, then stops counting those that ask not to be tracked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_sites_and_settings_reach_every_node_within_the_refresh_interval() {
    const REFRESH: u64 = 2;
    let store = TestStore::new(Backend::Embedded).await;
    let refresh = REFRESH.to_string();
    let mut nodes = Nodes::start(
        &store,
        2,
        Balance::RoundRobin,
        &["--site-refresh-secs", &refresh],
    )
    .await;
    let mut sent = 0;
    let unknown = "tally_hits_rejected_total{reason=\"unknown_site\"} ";
    until_every_node(&nodes, "late", false, unknown, &mut sent).await;

    let cli = |args: &[&str]| {
        let out = tally_cli(&store).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    cli(&["site", "add", "late", "--tz", "UTC"]);
    let accepted = "tally_hits_accepted_total ";
    let added = until_every_node(&nodes, "late", true, accepted, &mut sent).await;
    cli(&["site", "update", "late", "--honor-dnt", "on"]);
    let dnt = "tally_hits_rejected_total{reason=\"do_not_track\"} ";
    let changed = until_every_node(&nodes, "late", true, dnt, &mut sent).await;

    let mut counted = 0;
    for node in nodes.nodes.iter().flatten() {
        counted += metric(node, accepted).await;
    }
    nodes.stop_all().await;
    eprintln!(
        "--site-refresh-secs {REFRESH}, two nodes: a site added by the CLI counted by both after {:.2} s, a settings change applied by both after {:.2} s; {counted} of {sent} hits counted",
        added.as_secs_f64(),
        changed.as_secs_f64()
    );
    for took in [added, changed] {
        assert!(took <= Duration::from_secs(REFRESH + 1), "{took:?}");
    }
    let month = chrono::Utc::now().format("%Y-%m");
    let year = chrono::Utc::now().format("%Y");
    let traffic = store
        .doc(&format!("traffic.{year}"), &format!("late:{month}"))
        .await
        .expect("counted");
    assert_count(&traffic, "v", counted as i64);
}

/// Two nodes filling one capped month document at once (the embedded store; `--max-keys 100`,
/// 400 distinct pages from both): the document names at most 100 keys, its `n` says so, and
/// every view is counted, under a named page or `(other)`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_document_holds_its_cap_across_nodes() {
    const MAX_KEYS: usize = 100;
    const PER_NODE: u64 = 4_000;
    let mix = Mix {
        sites: 1,
        pages: 400,
        ..Mix::VIEWS
    };
    let store = TestStore::new(Backend::Embedded).await;
    store.add_site("s0", "UTC").await;
    let cap = MAX_KEYS.to_string();
    let mut nodes = Nodes::start(&store, 2, Balance::RoundRobin, &["--max-keys", &cap]).await;
    let counts = Arc::new(Counts::default());
    // Both nodes bring the same new pages at the same time, each in its own flushes (the two
    // clients share `counts`: together they send 2 × PER_NODE).
    let (a, b) = (nodes.node(0).addr(), nodes.node(1).addr());
    tokio::join!(
        load::run(a, 8, 2 * PER_NODE, mix, None, counts.clone()),
        load::run(b, 8, 2 * PER_NODE, mix, None, counts.clone()),
    );
    nodes.stop_all().await;
    let month = chrono::Utc::now().format("%Y-%m");
    let year = chrono::Utc::now().format("%Y");
    let content = store
        .doc(&format!("content.{year}"), &format!("s0:{month}"))
        .await
        .expect("a content month document");
    let pages = content.get_document("p").unwrap();
    let named = pages.keys().filter(|k| k.as_str() != "(other)").count();
    let n = get_path(&content, "n").unwrap_or(0);
    eprintln!(
        "two nodes, --max-keys {MAX_KEYS}, 400 pages: {} answered 200; {named} pages named, n = {n}, (other) = {:?}",
        counts.ok(),
        get_path(&content, "p.(other).v")
    );
    assert_eq!(counts.ok(), 2 * PER_NODE);
    assert_eq!(named, MAX_KEYS, "the cap is reached and held");
    assert_eq!(n, MAX_KEYS as i64);
    assert_eq!(sum(&content, "p", Some("v")), counts.ok() as i64);
    assert_totals(&totals(&store, mix).await, counts.ok(), "capped");
}

/// The value of `name` in a /metrics text.
fn gauge(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
}

/// FerretDB answers `hello` with its clock, and a node compares its own with it: one whose
/// clock is an hour ahead exports a skew of an hour in `tally_clock_skew_seconds` (and logs a
/// warning), one on time a skew under a second. The embedded store has no clock of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_clock_is_off_says_so() {
    let embedded = TestStore::new(Backend::Embedded).await;
    assert_eq!(embedded.store.server_time().await.unwrap(), None);

    let store = TestStore::new(Backend::Mongo).await;
    let before = chrono::Utc::now();
    let server = store.store.server_time().await.unwrap().expect("localTime");
    let after = chrono::Utc::now();
    let skew = tally::aggregate::skew::Skew::measure(before, server, after);
    assert!(skew.seconds.abs() < 1.0, "one machine, one clock: {skew:?}");

    let other = store.another_handle().await;
    let ahead = TestClock::at(chrono::Utc::now() + chrono::Duration::hours(1));
    let on_time = TestApp::spawn(store, test_settings(), tally::period::system_clock()).await;
    let off = TestApp::spawn(other, test_settings(), ahead.clock()).await;
    let (on_time_skew, off_skew) = (
        gauge(&on_time.metrics().await, "tally_clock_skew_seconds"),
        gauge(&off.metrics().await, "tally_clock_skew_seconds"),
    );
    eprintln!(
        "FerretDB's localTime vs this machine: {skew:?}; skew exported by a node on time {on_time_skew}, by a node an hour ahead {off_skew}"
    );
    assert!(on_time_skew.abs() < 1.0, "{on_time_skew}");
    assert!((off_skew - 3600.0).abs() < 1.0, "{off_skew}");
    on_time.stop().await.0.unwrap();
    off.stop().await.0.unwrap();
}

/// The ingest rate limit is per node: one browser flooding 1,000 requests a second for 5 s
/// through nginx round-robin to three nodes gets its burst and rate from each node, about
/// three times what one node lets through (3 × (30 + 10 a second)); every 200 is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_is_per_node() {
    const BURST: f64 = 30.0;
    const RATE: f64 = 10.0;
    let mix = Mix {
        addresses: 1,
        agents: 1,
        ..Mix::VIEWS
    };
    let store = TestStore::new(Backend::Embedded).await;
    store.add_site("s0", "UTC").await;
    let mut nodes = Nodes::start(&store, NODES, Balance::RoundRobin, &[]).await;
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let target = nodes.nginx.http_target();
    load::run_at_rate(target, 16, 5_000, mix, 1_000.0, Arc::clone(&counts)).await;
    let secs = started.elapsed().as_secs_f64();
    nodes.stop_all().await;
    let ok = counts.ok() as f64;
    let one_node = BURST + RATE * secs;
    eprintln!(
        "one browser at 1,000/s for {secs:.1} s through nginx to {NODES} nodes round-robin: {} answered 200, {} 429 (one node's bound: about {one_node:.0})",
        counts.ok(),
        counts.limited()
    );
    assert_eq!(counts.ok() + counts.limited(), 5_000, "{counts:?}");
    let n = NODES as f64;
    assert!(
        ok >= n * (BURST + RATE * 5.0) - 15.0 && ok <= n * one_node + 15.0,
        "{ok} answered 200 in {secs:.1} s: {counts:?}"
    );
    let month = chrono::Utc::now().format("%Y-%m");
    let year = chrono::Utc::now().format("%Y");
    let traffic = store
        .doc(&format!("traffic.{year}"), &format!("s0:{month}"))
        .await
        .expect("counted");
    assert_count(&traffic, "v", counts.ok() as i64);
}
