//! Nothing lost, nothing counted twice: load, a store outage, SIGTERM and SIGKILL under load,
//! replays of flushes that did reach the store, and two tally processes on one store.
//!
//! Each test compares what the clients were told (a 200 from the pixel is a counted hit) with
//! the counters in the store, per report and per collection. Sizes are for the test command on
//! a 2-core machine; `scripts/reliability.sh` runs the same tests at full size (a million hits
//! over 256 connections) on a release build. The signal tests run the real `tally` binary.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::load::{self, Counts, Mix};
use support::node::Tally;
use support::totals::{assert_totals, totals};
use support::*;

/// Hits of the load test (`TEST_LOAD_HITS`; 1,000,000 in `scripts/reliability.sh`).
fn load_hits() -> u64 {
    std::env::var("TEST_LOAD_HITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

const CONNECTIONS: usize = 256;
const MIX: Mix = Mix {
    sites: 4,
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

/// A million pixel hits (a tenth in the test command) over 256 connections to one tally: the
/// counters equal the 200 answers exactly, in every report and collection.
async fn load_is_counted_exactly(backend: Backend) {
    let store = store_with_sites(backend).await;
    let settings = tally::settings::ServeSettings {
        flush_interval_ms: 500,
        ..test_settings()
    };
    let app = TestApp::spawn(store, settings, tally::period::system_clock()).await;
    let addr: SocketAddr = app.address.trim_start_matches("http://").parse().unwrap();
    let counts = Arc::new(Counts::default());
    let hits = load_hits();
    let started = Instant::now();
    load::run(addr, CONNECTIONS, hits, MIX, None, Arc::clone(&counts)).await;
    let secs = started.elapsed().as_secs_f64();
    let (result, store) = app.stop().await;
    result.expect("a clean shutdown");
    let totals = totals(&store, MIX).await;
    eprintln!(
        "{backend:?}: {hits} hits over {CONNECTIONS} connections in {secs:.1} s ({:.0}/s): {} answered 200, {} 503, {} other, {} unknown; totals {totals:?}",
        hits as f64 / secs,
        counts.ok(),
        counts.busy(),
        counts.other(),
        counts.unknown()
    );
    assert_eq!(counts.unknown(), 0, "every request got a whole answer");
    assert_eq!(counts.other(), 0);
    assert_eq!(counts.ok() + counts.busy(), hits);
    assert_totals(&totals, counts.ok(), "after the load");
}

/// The real binary (support::node), on MongoDB with at most 50 statements per `update`
/// command, so that a flush of the load is several commands.
async fn start_tally(
    store: &TestStore,
    log_dir: &std::path::Path,
    name: &str,
    flags: &[&str],
) -> Tally {
    let global: &[&str] = match store.backend {
        Backend::Mongo => &["--mongodb-batch", "50"],
        Backend::Embedded => &[],
    };
    Tally::start_with(store, log_dir, name, global, flags).await
}

/// Runs load against `tally` in the background; returns the counts and the task.
fn background_load(
    addr: SocketAddr,
    connections: usize,
) -> (Arc<Counts>, tokio::task::JoinHandle<()>) {
    let counts = Arc::new(Counts::default());
    let task = tokio::spawn(load::run(
        addr,
        connections,
        u64::MAX,
        MIX,
        None,
        Arc::clone(&counts),
    ));
    (counts, task)
}

/// 64 connections sending as fast as they can to `tally`, once 3,000 hits were answered 200.
async fn under_load(tally: &Tally) -> (Arc<Counts>, tokio::task::JoinHandle<()>) {
    let (counts, load) = background_load(tally.addr(), 64);
    load::until_ok(&counts, 3_000).await;
    (counts, load)
}

/// SIGTERM in the middle of a load: tally stops taking connections, answers what is in flight
/// and writes every accepted hit before it exits.
async fn sigterm_under_load_loses_nothing(backend: Backend) {
    let store = store_with_sites(backend).await;
    let logs = tempfile::tempdir().unwrap();
    let tally = start_tally(
        &store,
        logs.path(),
        "tally",
        &["--flush-interval-ms", "300"],
    )
    .await;
    let (counts, load) = under_load(&tally).await;
    tally.signal("TERM");
    let (clean, log) = tally.exit().await;
    assert!(clean, "a clean exit after SIGTERM: {log}");
    load::stop(&counts, load).await;
    let totals = totals(&store, MIX).await;
    eprintln!(
        "{backend:?}: SIGTERM after {} answers of 200 ({} 503, {} unknown): {totals:?}",
        counts.ok(),
        counts.busy(),
        counts.unknown()
    );
    // Requests written into keep-alive connections that shutdown closed got no answer; they
    // were never read, so they must not be counted either: the totals equal the 200s exactly.
    assert_totals(&totals, counts.ok(), "after SIGTERM");
}

/// `--durable`: SIGKILL in the middle of a load, then a restart on the same log. Nothing
/// acknowledged is lost, and nothing is counted twice: the counters lie between the 200
/// answers and those plus the requests whose answer the kill cut off.
async fn sigkill_with_durable_loses_nothing_acknowledged(backend: Backend) {
    let store = store_with_sites(backend).await;
    let logs = tempfile::tempdir().unwrap();
    let wal = tempfile::tempdir().unwrap();
    let wal_dir = wal.path().display().to_string();
    let flags = [
        "--flush-interval-ms",
        "300",
        "--durable",
        "--durable-dir",
        &wal_dir,
    ];
    let tally = start_tally(&store, logs.path(), "first", &flags).await;
    let (counts, load) = under_load(&tally).await;
    tally.signal("KILL");
    let (_, _) = tally.exit().await;
    load::stop(&counts, load).await;
    let (ok, cut_off) = (counts.ok(), counts.unknown());

    let again = start_tally(&store, logs.path(), "second", &flags).await;
    again.signal("TERM");
    let (clean, log) = again.exit().await;
    assert!(clean, "the restarted tally exits cleanly: {log}");
    assert!(log.contains("durable log open"), "{log}");
    let totals = totals(&store, MIX).await;
    eprintln!("{backend:?}: SIGKILL after {ok} answers of 200, {cut_off} cut off: {totals:?}");
    for (name, n) in &totals {
        let n = *n as u64;
        assert!(
            n >= ok && n <= ok + cut_off,
            "{name}: {n} counted, {ok} acknowledged, {cut_off} cut off: {totals:?}"
        );
    }
}

/// Without `--durable`, SIGKILL loses what was pending: at most the hits of the last flush
/// interval (and of a flush in progress), never more, and nothing is counted twice. The figure
/// is printed for docs/reliability.md.
async fn sigkill_without_durable_loses_at_most_the_pending_hits(backend: Backend) {
    let store = store_with_sites(backend).await;
    let logs = tempfile::tempdir().unwrap();
    let tally = start_tally(
        &store,
        logs.path(),
        "tally",
        &["--flush-interval-ms", "300"],
    )
    .await;
    let (counts, load) = under_load(&tally).await;
    let rate_from = (Instant::now(), counts.ok());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rate = (counts.ok() - rate_from.1) as f64 / rate_from.0.elapsed().as_secs_f64();
    tally.signal("KILL");
    let _ = tally.exit().await;
    load::stop(&counts, load).await;
    let (ok, cut_off) = (counts.ok(), counts.unknown());
    let totals = totals(&store, MIX).await;
    let counted = totals["traffic month: v"] as u64;
    eprintln!(
        "{backend:?}: SIGKILL without --durable after {ok} answers of 200 at about {rate:.0}/s: {counted} counted, {} lost ({:.2} s of hits); {totals:?}",
        ok.saturating_sub(counted),
        ok.saturating_sub(counted) as f64 / rate
    );
    for (name, n) in &totals {
        assert!(
            (*n as u64) <= ok + cut_off,
            "{name}: counted twice? {totals:?}"
        );
    }
}

/// `--durable`: a kill right after a flush reached the store leaves that flush in the
/// checkpoint, so the restart sends it again; its marks make the store skip it.
async fn a_replayed_flush_is_not_counted_twice(backend: Backend) {
    let store = store_with_sites(backend).await;
    let logs = tempfile::tempdir().unwrap();
    let wal = tempfile::tempdir().unwrap();
    let wal_dir = wal.path().display().to_string();
    // Every hit wakes the flusher; no timed flush for a minute, so the last flush's batch is
    // still the checkpoint's when the kill comes.
    let flags = [
        "--flush-interval-ms",
        "60000",
        "--flush-at",
        "1",
        "--durable",
        "--durable-dir",
        &wal_dir,
    ];
    let tally = start_tally(&store, logs.path(), "first", &flags).await;
    let counts = Arc::new(Counts::default());
    load::run(tally.addr(), 8, 2_000, MIX, None, Arc::clone(&counts)).await;
    assert_eq!(counts.ok(), 2_000);
    let mut flushed = false;
    for _ in 0..400 {
        if totals(&store, MIX).await.values().all(|n| *n == 2_000) {
            flushed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(flushed, "every hit is in the store before the kill");
    tally.signal("KILL");
    let _ = tally.exit().await;

    let again = start_tally(&store, logs.path(), "second", &flags).await;
    again.signal("TERM");
    let (clean, log) = again.exit().await;
    assert!(clean, "{log}");
    let owed = log
        .lines()
        .find(|l| l.contains("durable log open"))
        .and_then(|l| l.split("owed_statements=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no owed_statements in {log}"));
    assert!(owed > 0, "the last flush was sent again: {log}");
    assert_totals(&totals(&store, MIX).await, 2_000, "after the replay");
}

/// The store half of idempotent flushes: a marked statement sent again (a lost reply, a
/// replay) is recognised and skipped, so is an older one after a newer one, and a guard's
/// refusal is still told apart from "already applied".
async fn a_marked_statement_applies_once(backend: Backend) {
    use tally::field::FieldKey;
    use tally::store::{Batch, CollectionBatch, DocUpdate, Guard, Mark, DUPLICATE_KEY};
    let store = TestStore::new(backend).await;
    let batch = |seq: i64, guard: Option<i64>| Batch {
        collections: vec![CollectionBatch {
            collection: "content.2026".into(),
            docs: vec![DocUpdate {
                id: "acme:2026-11".into(),
                inc: vec![
                    (FieldKey::parse("n").unwrap(), 1),
                    (FieldKey::parse("p./a.v").unwrap(), 10),
                ],
                set: vec![(FieldKey::parse("p./a.t").unwrap(), "A".into())],
                max: Vec::new(),
                guard: guard.map(|max| Guard {
                    field: FieldKey::parse("n").unwrap(),
                    max,
                }),
                mark: Some(Mark {
                    writer: "0000000000ab".into(),
                    seq,
                }),
                unset: Vec::new(),
            }],
        }],
    };
    let views = || async {
        let doc = store.doc("content.2026", "acme:2026-11").await.unwrap();
        (
            get_path(&doc, "p./a.v").unwrap(),
            get_path(&doc, "_w.0000000000ab").unwrap(),
        )
    };
    let first = store.store.apply(&batch(5, None)).await;
    assert!(
        first.failed.is_empty() && first.duplicates.is_empty(),
        "{first:?}"
    );
    assert_eq!(views().await, (10, 5));
    let again = store.store.apply(&batch(5, None)).await;
    assert!(again.failed.is_empty(), "{again:?}");
    assert_eq!(again.duplicates, vec![(0, 0)]);
    assert_eq!(views().await, (10, 5), "not applied twice");
    store.store.apply(&batch(6, None)).await;
    assert_eq!(views().await, (20, 6));
    let older = store.store.apply(&batch(5, None)).await;
    assert_eq!(
        older.duplicates,
        vec![(0, 0)],
        "an older flush is behind the mark"
    );
    // n is 2 now: a guard allowing at most 1 refuses; that is a refusal, not a duplicate
    let refused = store.store.apply(&batch(7, Some(1))).await;
    assert!(refused.duplicates.is_empty(), "{refused:?}");
    assert_eq!(refused.failed.len(), 1);
    assert_eq!(refused.failed[0].code, Some(DUPLICATE_KEY));
    assert_eq!(views().await, (20, 6));
    // another writer's marks are its own
    let mut other = batch(1, None);
    other.collections[0].docs[0].mark.as_mut().unwrap().writer = "0000000000cd".into();
    assert!(store.store.apply(&other).await.duplicates.is_empty());
    assert_eq!(views().await.0, 30);
}

/// MongoDB (FerretDB) is killed for 20 s while hits flow: the pixel keeps answering, `/readyz`
/// says why it is not ready, pending increments stay under `--max-pending` (past it, hits are
/// answered 503 and counted as `pending_full`), and after the restart the totals are exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twenty_second_outage_loses_nothing() {
    const MAX_PENDING: usize = 5_000;
    let mix = Mix {
        sites: 4,
        pages: 1_000,
        ..Mix::VIEWS
    };
    let mut ferret = Ferret::start().await;
    let store = TestStore::mongo_at(&ferret.uri()).await;
    for site in mix.site_ids() {
        store.add_site(&site, "UTC").await;
    }
    let settings = tally::settings::ServeSettings {
        flush_interval_ms: 200,
        max_pending: MAX_PENDING,
        store_timeout_secs: 60,
        ..test_settings()
    };
    let app = TestApp::spawn(store, settings, tally::period::system_clock()).await;
    let addr: SocketAddr = app.address.trim_start_matches("http://").parse().unwrap();
    let (counts, load) = load::paced(addr, mix).await;
    let readyz = |app: &TestApp| {
        let url = format!("{}/readyz", app.address);
        let http = app.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(readyz(&app).await.0, 200);

    ferret.kill();
    let down = Instant::now();
    let ok_before = counts.ok();
    let (mut max_pending, mut reasons) = (0, std::collections::BTreeSet::new());
    while down.elapsed() < Duration::from_secs(20) {
        max_pending = max_pending.max(app.handle.coalescer.pending());
        let (status, body) = readyz(&app).await;
        if status == 503 {
            let reason = body
                .split("\"code\":\"")
                .nth(1)
                .and_then(|r| r.split('"').next());
            reasons.insert(reason.unwrap_or("?").to_owned());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (ok_during, busy_during) = (counts.ok() - ok_before, counts.busy());
    ferret.restart().await;
    let mut recovered = false;
    for _ in 0..300 {
        if app.handle.flusher.queued() == 0 && readyz(&app).await.0 == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "ready again after the restart");
    let ok_at_recovery = counts.ok();
    load::until_ok(&counts, ok_at_recovery + 500).await;
    load::stop(&counts, load).await;
    let metrics = app.metrics().await;
    let (result, store) = app.stop().await;
    result.expect("a clean shutdown");
    let totals = totals(&store, mix).await;
    eprintln!(
        "outage: 20 s; during it {ok_during} answered 200 and {busy_during} 503 (pending peaked at {max_pending} of {MAX_PENDING}); /readyz said {reasons:?}; in all {} answered 200; totals {totals:?}",
        counts.ok()
    );
    assert!(
        ok_during > 0,
        "the pixel kept counting while the store was away"
    );
    assert!(busy_during > 0, "the bound was reached and said so");
    assert!(reasons.contains("store_unavailable"), "{reasons:?}");
    assert!(reasons.contains("pending_full"), "{reasons:?}");
    // the bound is checked before a hit is merged: it can be passed by one hit per worker
    assert!(max_pending <= MAX_PENDING + 2 * 64, "{max_pending}");
    assert!(
        metrics.contains(&format!(
            "tally_hits_rejected_total{{reason=\"pending_full\"}} {}\n",
            counts.busy()
        )),
        "every 503 is counted as pending_full: {metrics}"
    );
    assert_eq!(counts.unknown(), 0);
    assert_totals(&totals, counts.ok(), "after the outage");
}

/// Two tally processes (two applications, each with its own coalescer, flusher and writer
/// identity) on one store. The embedded store's transactions are atomic across processes, so
/// both may count the same site; on FerretDB v1, whose updates are not atomic between
/// concurrent writers, each process takes its own sites, as a proxy routing by site does
/// (docs/reliability.md).
async fn two_processes_on_one_store_lose_nothing(backend: Backend) {
    let store = store_with_sites(backend).await;
    let other = store.another_handle().await;
    let settings = tally::settings::ServeSettings {
        flush_interval_ms: 200,
        ..test_settings()
    };
    let clock = tally::period::system_clock;
    let a = TestApp::spawn(store, settings.clone(), clock()).await;
    let b = TestApp::spawn(other, settings, clock()).await;
    let (mix_a, mix_b) = match backend {
        // same sites from both
        Backend::Embedded => (MIX, MIX),
        // s0, s1 from one, s2, s3 from the other
        Backend::Mongo => (
            Mix { sites: 2, ..MIX },
            Mix {
                sites: 2,
                first: 2,
                ..MIX
            },
        ),
    };
    let (ca, cb) = (Arc::new(Counts::default()), Arc::new(Counts::default()));
    let addr = |app: &TestApp| -> SocketAddr {
        app.address.trim_start_matches("http://").parse().unwrap()
    };
    let second = addr(&b);
    let lb = tokio::spawn(load::run(second, 32, 10_000, mix_b, None, Arc::clone(&cb)));
    load::run(addr(&a), 32, 10_000, mix_a, None, Arc::clone(&ca)).await;
    lb.await.unwrap();
    let (ra, store) = a.stop().await;
    let (rb, _) = b.stop().await;
    ra.unwrap();
    rb.unwrap();
    let totals = totals(&store, MIX).await;
    eprintln!(
        "{backend:?}: two processes: {} + {} answered 200: {totals:?}",
        ca.ok(),
        cb.ok()
    );
    assert_totals(&totals, ca.ok() + cb.ok(), "two processes");
}

/// A batch whose middle statement a full capped document refuses: the others are applied and
/// reported applied, the refused one failed and known not applied. (FerretDB v1 stops an update
/// command at its first write error and names no statement; the store then reads the marks and
/// sends the statements not applied again.)
async fn a_refused_statement_does_not_take_its_neighbours_with_it(backend: Backend) {
    use tally::field::FieldKey;
    use tally::store::{Batch, CollectionBatch, DocUpdate, Guard, Mark, DUPLICATE_KEY};
    let store = TestStore::new(backend).await;
    let statement = |id: &str, guard: Option<i64>| DocUpdate {
        id: id.into(),
        inc: vec![
            (FieldKey::parse("n").unwrap(), 1),
            (FieldKey::parse("p./a.v").unwrap(), 1),
        ],
        set: Vec::new(),
        max: Vec::new(),
        guard: guard.map(|max| Guard {
            field: FieldKey::parse("n").unwrap(),
            max,
        }),
        mark: Some(Mark {
            writer: "00000000000e".into(),
            seq: 1,
        }),
        unset: Vec::new(),
    };
    let full = Batch {
        collections: vec![CollectionBatch {
            collection: "content.2026".into(),
            docs: vec![statement("b:2026-11", None)],
        }],
    };
    assert!(store.store.apply(&full).await.failed.is_empty());
    let mut batch = Batch {
        collections: vec![CollectionBatch {
            collection: "content.2026".into(),
            docs: vec![
                statement("a:2026-11", None),
                // b's n is 1: at most 0 refuses
                statement("b:2026-11", Some(0)),
                statement("c:2026-11", None),
                statement("d:2026-11", None),
            ],
        }],
    };
    for d in &mut batch.collections[0].docs {
        d.mark.as_mut().unwrap().seq = 2;
    }
    let applied = store.store.apply(&batch).await;
    assert_eq!(applied.failed.len(), 1, "{applied:?}");
    assert_eq!(applied.failed[0].doc, 1, "{applied:?}");
    assert_eq!(applied.failed[0].code, Some(DUPLICATE_KEY));
    for (id, views) in [("a", 1), ("b", 1), ("c", 1), ("d", 1)] {
        let doc = store
            .doc("content.2026", &format!("{id}:2026-11"))
            .await
            .unwrap();
        assert_eq!(get_path(&doc, "p./a.v"), Some(views), "{id}");
    }
}

both_stores!(
    sigkill_without_durable_loses_at_most_the_pending_hits,
    a_refused_statement_does_not_take_its_neighbours_with_it,
    two_processes_on_one_store_lose_nothing,
    a_marked_statement_applies_once,
    load_is_counted_exactly,
    sigterm_under_load_loses_nothing,
    sigkill_with_durable_loses_nothing_acknowledged,
    a_replayed_flush_is_not_counted_twice,
);

/// The durable tests' mix: 4 sites × 1,000 pages, as in the outage test.
const OUTAGE_MIX: Mix = Mix {
    sites: 4,
    pages: 1_000,
    ..Mix::VIEWS
};

/// The spill files of a durable directory: how many, and their bytes.
fn spill_files(durable: &std::path::Path) -> (usize, u64) {
    let Ok(entries) = std::fs::read_dir(durable.join("spill")) else {
        return (0, 0);
    };
    entries
        .filter_map(|e| e.ok()?.metadata().ok())
        .fold((0, 0), |(n, bytes), m| (n + 1, bytes + m.len()))
}

/// Bytes of the files under `dir`, at any depth.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// `/readyz`'s status, and the code of its error when it is not ready.
async fn readiness(app: &TestApp) -> (u16, String) {
    let r = app
        .http
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    let code = body
        .split("\"code\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or("")
        .to_owned();
    (status, code)
}

/// A durable app on a FerretDB of the test's own, flushing every 200 ms, under paced load (16
/// connections, 20 ms apart: about 800 hits/s) of `mix`.
async fn durable_app_under_load(
    ferret: &Ferret,
    durable: &std::path::Path,
    mix: Mix,
    max_pending: usize,
    max_bytes: u64,
) -> (TestApp, Arc<Counts>, tokio::task::JoinHandle<()>) {
    let store = TestStore::mongo_at(&ferret.uri()).await;
    for site in mix.site_ids() {
        store.add_site(&site, "UTC").await;
    }
    let settings = tally::settings::ServeSettings {
        flush_interval_ms: 200,
        max_pending,
        store_timeout_secs: 60,
        durable: true,
        durable_dir: Some(durable.to_owned()),
        durable_max_bytes: max_bytes,
        ..test_settings()
    };
    let app = TestApp::spawn(store, settings, tally::period::system_clock()).await;
    let addr: SocketAddr = app.address.trim_start_matches("http://").parse().unwrap();
    let (counts, load) = load::paced(addr, mix).await;
    (app, counts, load)
}

/// Waits until nothing is spilled or owed and `/readyz` answers 200; returns how long it took.
/// At most 300 s: alone on the 2-core test machine it takes about 50 s, but with the people
/// sketches (FerretDB rewrites each sketch document whole) and the file's other tests running
/// beside it, it took over 120 s in a full suite run on 2026-12-01.
async fn until_written_back(app: &TestApp) -> Duration {
    let back = Instant::now();
    for _ in 0..3000 {
        let flusher = &app.handle.flusher;
        if flusher.spilled() == 0 && flusher.queued() == 0 && readiness(app).await.0 == 200 {
            return back.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the spill files were not written back in 300 s");
}

/// `--durable`: FerretDB is killed for 20 s while hits flow, as in
/// `a_twenty_second_outage_loses_nothing`. The log absorbs the outage instead of memory: every
/// flush drains the coalescer into a spill file, so once spilling has begun pending stays
/// under a few thousand entries (a flush interval of hits), and no hit is refused; after the
/// restart the spill files are written back, the directory returns to its normal size, and
/// every 200 is counted. The memory bound is 50,000 entries: the flush that meets the outage
/// waits for the store (a second per collection command here) while its hits wait in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_outage_is_absorbed_on_disk() {
    let mut ferret = Ferret::start().await;
    let wal = tempfile::tempdir().unwrap();
    // `TEST_OUTAGE_PAGES` (default 1,000 a site) sets how much there is to merge.
    let mix = Mix {
        pages: std::env::var("TEST_OUTAGE_PAGES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(OUTAGE_MIX.pages),
        ..OUTAGE_MIX
    };
    let (app, counts, load) =
        durable_app_under_load(&ferret, wal.path(), mix, 50_000, 1 << 30).await;
    let journal = Arc::clone(app.handle.coalescer.journal().expect("a durable app"));
    assert_eq!(readiness(&app).await.0, 200);
    let mut normal = 0;
    for _ in 0..20 {
        normal = normal.max(dir_bytes(wal.path()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    ferret.kill();
    let down = Instant::now();
    let (ok_before, appended_before) = (counts.ok(), journal.appended());
    let (mut max_pending, mut max_bytes, mut reasons) = (0, 0, std::collections::BTreeSet::new());
    let mut spilling_pending = 0;
    while down.elapsed() < Duration::from_secs(20) {
        let pending = app.handle.coalescer.pending();
        max_pending = max_pending.max(pending);
        if down.elapsed() > Duration::from_secs(10) {
            spilling_pending = spilling_pending.max(pending);
        }
        max_bytes = max_bytes.max(journal.bytes());
        let (status, code) = readiness(&app).await;
        if status == 503 {
            reasons.insert(code);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let ok_during = counts.ok() - ok_before;
    let logged_per_hit = (journal.appended() - appended_before) as f64 / ok_during as f64;
    let (spills, spilled_bytes) = spill_files(wal.path());
    let on_disk = dir_bytes(wal.path());
    let busy_during = counts.busy();

    ferret.restart().await;
    let drained_in = until_written_back(&app).await;
    let ok_at_recovery = counts.ok();
    load::until_ok(&counts, ok_at_recovery + 500).await;
    // The directory under load: each flush cuts the log and deletes what it consumed, so it
    // grows and shrinks; samples every 100 ms give its largest and its smallest size: at least
    // 30 (3 s), and up to 150 (15 s) until one is normal, since on a loaded machine one flush
    // can take longer than 3 s and the log of several intervals gathers before its cut.
    let (mut after, mut after_min, mut samples) = (0, u64::MAX, 0);
    while samples < 30 || (after_min >= 1 << 20 && samples < 150) {
        let bytes = dir_bytes(wal.path());
        after = after.max(bytes);
        after_min = after_min.min(bytes);
        samples += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    load::stop(&counts, load).await;
    let metrics = app.metrics().await;
    let (result, store) = app.stop().await;
    result.expect("a clean shutdown");
    let totals = totals(&store, mix).await;
    let spilling_flushes: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tally_durable_spills_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    eprintln!(
        "durable outage ({} pages a site): 20 s; {spilling_flushes} flushes spilled; during it {ok_during} answered 200 and {busy_during} 503; pending peaked at {max_pending}, at {spilling_pending} in its last 10 s; \
         the log took {logged_per_hit:.0} bytes per hit, the {spills} spill files {spilled_bytes} bytes ({:.0} per hit); \
         the directory: {normal} bytes before, {on_disk} at the end of the outage (budget counter peaked at {max_bytes}), {after_min} to {after} over {samples} samples after; \
         written back {:.2} s after the restart; /readyz said {reasons:?}; in all {} answered 200; totals {totals:?}",
        mix.pages,
        spilled_bytes as f64 / ok_during as f64,
        drained_in.as_secs_f64(),
        counts.ok()
    );
    assert!(ok_during > 1_000, "the pixel kept counting: {ok_during}");
    assert_eq!(counts.busy(), 0, "no hit was refused");
    assert_eq!(counts.unknown(), 0);
    assert!(
        spilling_flushes > 20 && spills > 0,
        "the outage went to spill files: {spilling_flushes} flushes, {spills} files (merged)"
    );
    // A flush interval of hits, not the outage.
    assert!(
        spilling_pending < 5_000,
        "pending stayed small: {spilling_pending}"
    );
    assert!(reasons.contains("store_unavailable"), "{reasons:?}");
    assert!(!reasons.contains("pending_full"), "{reasons:?}");
    for reason in ["pending_full", "durable_full"] {
        assert!(
            metrics.contains(&format!(
                "tally_hits_rejected_total{{reason=\"{reason}\"}} 0\n"
            )),
            "{metrics}"
        );
    }
    assert_eq!(
        spill_files(wal.path()),
        (0, 0),
        "every spill file was written back"
    );
    // Normal: a flush interval of log and one flush's checkpoint. Under a loaded machine a slow
    // flush lets the log of several intervals gather before its cut (the largest sample), but
    // once a flush consumed it the directory is small again.
    assert!(
        after_min < 1 << 20,
        "the directory is back to its normal size: {after_min} to {after} bytes"
    );
    assert_totals(&totals, counts.ok(), "after the durable outage");
}

/// `--durable` with the smallest budget (1 MiB) and a 30 s outage: once the directory holds it,
/// hits are answered 503 and counted as `durable_full` (and `/readyz` says so); after the
/// restart the spill files are written back, hits are taken again, and the counts equal the
/// 200s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_durable_budget_hits_are_refused() {
    const BUDGET: u64 = 1 << 20;
    let mut ferret = Ferret::start().await;
    let wal = tempfile::tempdir().unwrap();
    let (app, counts, load) =
        durable_app_under_load(&ferret, wal.path(), OUTAGE_MIX, 50_000, BUDGET).await;
    let journal = Arc::clone(app.handle.coalescer.journal().expect("a durable app"));
    assert_eq!(readiness(&app).await.0, 200);

    ferret.kill();
    let down = Instant::now();
    let ok_before = counts.ok();
    let (mut max_bytes, mut max_on_disk, mut reasons) = (0, 0, std::collections::BTreeSet::new());
    while down.elapsed() < Duration::from_secs(30) {
        max_bytes = max_bytes.max(journal.bytes());
        max_on_disk = max_on_disk.max(dir_bytes(wal.path()));
        let (status, code) = readiness(&app).await;
        if status == 503 {
            reasons.insert(code);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (ok_during, busy_during) = (counts.ok() - ok_before, counts.busy());
    let full_at = app.metrics().await;

    ferret.restart().await;
    let drained_in = until_written_back(&app).await;
    let ok_at_recovery = counts.ok();
    load::until_ok(&counts, ok_at_recovery + 500).await;
    load::stop(&counts, load).await;
    let metrics = app.metrics().await;
    let (result, store) = app.stop().await;
    result.expect("a clean shutdown");
    let totals = totals(&store, OUTAGE_MIX).await;
    eprintln!(
        "durable budget {BUDGET}: during a 30 s outage {ok_during} answered 200 and {busy_during} 503; the budget counter peaked at {max_bytes}, \
         the directory at {max_on_disk} bytes; written back {:.2} s after the restart; /readyz said {reasons:?}; in all {} answered 200, {} 503; totals {totals:?}",
        drained_in.as_secs_f64(),
        counts.ok(),
        counts.busy()
    );
    assert!(ok_during > 0);
    assert!(busy_during > 0, "the budget was reached and said so");
    assert!(reasons.contains("durable_full"), "{reasons:?}");
    assert!(!reasons.contains("pending_full"), "{reasons:?}");
    assert!(
        full_at.contains(&format!("tally_durable_max_bytes {BUDGET}\n")),
        "{full_at}"
    );
    assert!(
        metrics.contains(&format!(
            "tally_hits_rejected_total{{reason=\"durable_full\"}} {}\n",
            counts.busy()
        )),
        "every 503 is counted as durable_full: {metrics}"
    );
    // Checked before a hit is logged: passed by at most a hit per worker and one flush's spill.
    assert!(max_on_disk < BUDGET + (1 << 20), "{max_on_disk}");
    assert!(counts.ok() > ok_at_recovery, "hits are taken again");
    assert_eq!(counts.unknown(), 0);
    assert_totals(&totals, counts.ok(), "past the durable budget");
}

/// `--durable`: the real binary is killed (SIGKILL) in the middle of an outage, with spill files
/// in its directory; FerretDB comes back, tally is started again on the same directory, and
/// every acknowledged hit is counted exactly once (requests whose answer the kill cut off may
/// or may not be).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_a_durable_outage_loses_nothing_acknowledged() {
    let mut ferret = Ferret::start().await;
    let store = TestStore::mongo_at(&ferret.uri()).await;
    for site in OUTAGE_MIX.site_ids() {
        store.add_site(&site, "UTC").await;
    }
    let logs = tempfile::tempdir().unwrap();
    let wal = tempfile::tempdir().unwrap();
    let wal_dir = wal.path().display().to_string();
    let flags = [
        "--flush-interval-ms",
        "200",
        "--durable",
        "--durable-dir",
        &wal_dir,
    ];
    let tally = start_tally(&store, logs.path(), "first", &flags).await;
    let counts = Arc::new(Counts::default());
    let load = tokio::spawn(load::run(
        tally.addr(),
        16,
        u64::MAX,
        OUTAGE_MIX,
        Some(Duration::from_millis(20)),
        Arc::clone(&counts),
    ));
    load::until_ok(&counts, 500).await;
    ferret.kill();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let (spills, _) = spill_files(wal.path());
    assert!(spills > 0, "spill files before the kill");
    tally.signal("KILL");
    let _ = tally.exit().await;
    load::stop(&counts, load).await;
    let (ok, cut_off) = (counts.ok(), counts.unknown());
    assert_eq!(counts.busy(), 0);

    ferret.restart().await;
    let again = start_tally(&store, logs.path(), "second", &flags).await;
    again.signal("TERM");
    let (clean, log) = again.exit().await;
    assert!(
        clean,
        "the restarted tally writes everything and exits cleanly: {log}"
    );
    let listed = log
        .lines()
        .find(|l| l.contains("durable log open"))
        .and_then(|l| l.split("spill_files=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no spill_files in {log}"));
    let totals = totals(&store, OUTAGE_MIX).await;
    eprintln!(
        "SIGKILL during a durable outage: {spills} spill files on disk, {listed} listed at the restart; {ok} answered 200, {cut_off} cut off: {totals:?}"
    );
    assert!(listed > 0, "the restart found spill files: {log}");
    assert_eq!(spill_files(wal.path()), (0, 0), "all written back");
    for (name, n) in &totals {
        let n = *n as u64;
        assert!(
            n >= ok && n <= ok + cut_off,
            "{name}: {n} counted, {ok} acknowledged, {cut_off} cut off: {totals:?}"
        );
    }
}

/// `--durable` with a directory already over its budget (a budget of one byte, so the
/// checkpoint alone passes it; the store is up): every ingest endpoint refuses with 503 and
/// counts `durable_full`, `/readyz` says so, and nothing is counted. Without a store outage, so
/// on the embedded store.
#[tokio::test]
async fn a_full_durable_directory_refuses_hits_on_every_endpoint() {
    let store = TestStore::new(Backend::Embedded).await;
    store.add_site("acme", "UTC").await;
    let wal = tempfile::tempdir().unwrap();
    let settings = tally::settings::ServeSettings {
        durable: true,
        durable_dir: Some(wal.path().to_owned()),
        durable_max_bytes: 1,
        ..test_settings()
    };
    let app = TestApp::spawn(store, settings, tally::period::system_clock()).await;
    let send = |path: String, body: Option<&'static str>| {
        let http = app.http.clone();
        let (url, from) = (format!("{}{path}", app.address), app.next_visitor());
        async move {
            let request = match body {
                Some(body) => http.post(url).body(body),
                None => http.get(url),
            };
            let r = request
                .header("X-Forwarded-For", from)
                .header("User-Agent", CHROME_WIN)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }
    };
    let (pixel, _) = send("/t.gif?site=acme&url=/a".into(), None).await;
    let (get_event, _) = send("/e?site=acme&name=signup".into(), None).await;
    let (post_event, body) = send("/e".into(), Some(r#"{"site": "acme", "name": "signup"}"#)).await;
    assert_eq!((pixel, get_event, post_event), (503, 503, 503));
    assert!(body.contains("\"durable_full\""), "{body}");
    assert_eq!(readiness(&app).await, (503, "durable_full".to_owned()));
    let metrics = app.metrics().await;
    for line in [
        "tally_hits_rejected_total{reason=\"durable_full\"} 1\n",
        "tally_events_rejected_total{reason=\"durable_full\"} 2\n",
        "tally_durable_max_bytes 1\n",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    app.flush().await;
    let (result, store) = app.stop().await;
    result.expect("a clean shutdown");
    let month = chrono::Utc::now().format("%Y-%m");
    let year = chrono::Utc::now().format("%Y");
    assert_eq!(
        store
            .doc(&format!("traffic.{year}"), &format!("acme:{month}"))
            .await,
        None,
        "nothing counted"
    );
}
