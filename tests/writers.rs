//! Flush marks stay small: a writer identity stable per data directory, its epoch raised at
//! every start, and the marks of retired writers removed as documents are written
//! (docs/reliability.md, "Writer identities").

mod support;

use chrono::{Datelike, Utc};
use mongodb::bson::{doc, Document};
use std::path::Path;
use std::process::Command;
use std::time::Instant;
use support::*;
use tally::aggregate::writers::{marks, WRITERS};
use tally::field::FieldKey;
use tally::settings::ServeSettings;
use tally::store::{Batch, CollectionBatch, DocUpdate, Guard, Mark};

/// Held while this test binary starts a child process, and by an in-process application from
/// its stop to the next one's start. A slot's lock is an `flock`, which a child shares from its
/// fork until its exec closes the descriptor: a slot given back in that instant would still be
/// held, and the next application would take another slot (a test artifact: a tally process
/// spawns no children, and an exiting process gives its slots back).
static FORKS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The collections that hold tally's bookkeeping, not reports.
const BOOKKEEPING: [&str; 3] = ["sites", WRITERS, "imports"];

fn settings() -> ServeSettings {
    ServeSettings {
        writer_heartbeat_secs: 1,
        writer_stale_secs: 60,
        ..test_settings()
    }
}

/// Every report document of the store: `(collection, document)`.
async fn report_docs(store: &TestStore) -> Vec<(String, Document)> {
    let mut out = Vec::new();
    for collection in store.store.collections().await.unwrap() {
        if BOOKKEEPING.contains(&collection.as_str()) {
            continue;
        }
        for doc in store
            .store
            .scan(&collection, "", "\u{10FFFF}", &[], 100_000)
            .await
            .unwrap()
        {
            out.push((collection.clone(), doc));
        }
    }
    out
}

/// The most marks any report document carries, and which.
async fn most_marks(store: &TestStore) -> (usize, String) {
    report_docs(store)
        .await
        .into_iter()
        .map(|(c, d)| {
            (
                marks(&d).len(),
                format!("{c}/{}", d.get_str("_id").unwrap()),
            )
        })
        .max()
        .unwrap_or_default()
}

fn month() -> (String, String) {
    let now = Utc::now();
    (
        format!("traffic.{}", now.year()),
        format!("acme:{:04}-{:02}", now.year(), now.month()),
    )
}

async fn views(store: &TestStore) -> i64 {
    let (collection, id) = month();
    store
        .doc(&collection, &id)
        .await
        .and_then(|d| get_path(&d, "v"))
        .unwrap_or(0)
}

/// `tally import` of `lines` page views of `/imported` at the current time, with the writer
/// identity kept in `data_dir`.
async fn import(store: &TestStore, data_dir: &Path, lines: usize, n: usize) {
    let log = data_dir.join(format!("import-{n}.log"));
    let time = Utc::now().format("%d/%b/%Y:%H:%M:%S +0000");
    let text: String = (0..lines)
        .map(|i| {
            format!(
                "203.0.113.{} - - [{time}] \"GET /imported?run={n} HTTP/1.1\" 200 512 \"-\" \"{CHROME_WIN}\"\n",
                i + 1
            )
        })
        .collect();
    std::fs::write(&log, text).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tally"));
    for (k, _) in std::env::vars() {
        if k.starts_with("TALLY_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("TALLY_DATA_DIR", data_dir);
    if store.backend == Backend::Mongo {
        cmd.env("TALLY_MONGODB_URI", mongodb_uri())
            .env("TALLY_DATABASE", &store.database);
    }
    let child = {
        let _forking = FORKS.lock().await;
        cmd.args(["import", "--site", "acme"])
            .arg(&log)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("tally import runs")
    };
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// 50 restarts of serve on one data directory, then 5 imports next to a live serve: one
/// writer id for all the restarts, its epoch raised each time, the first flush after every
/// restart applied (not taken for a duplicate), counts exact, and no report document with more
/// marks than the live writers plus one.
async fn restarts_and_imports_keep_marks_bounded(backend: Backend) {
    let mut store = TestStore::new(backend).await;
    store.add_site("acme", "UTC").await;
    let mongo_dir = tempfile::tempdir().unwrap();
    let data_dir = match backend {
        Backend::Embedded => store.dir.as_ref().unwrap().path().to_owned(),
        Backend::Mongo => mongo_dir.path().to_owned(),
    };
    let clock = tally::period::system_clock();
    let mut writer = String::new();
    let started = Instant::now();
    let mut forking = FORKS.lock().await;
    for run in 1..=50_i64 {
        let app = TestApp::spawn_in(store, settings(), clock.clone(), &data_dir).await;
        drop(forking);
        let me = app.handle.writers.writer();
        if run == 1 {
            writer = me.id.clone();
        }
        assert_eq!(
            (me.id.as_str(), i64::from(me.epoch)),
            (writer.as_str(), run)
        );
        app.hit("site=acme&url=https%3A%2F%2Facme.example%2F", CHROME_WIN)
            .await;
        // The first flush after the restart: applied, not refused as a duplicate.
        let report = app.handle.flush().await;
        assert_eq!((report.failed, report.duplicates), (0, 0), "{report:?}");
        assert_eq!(
            views(&app.store).await,
            run,
            "after the first flush of run {run}"
        );
        forking = FORKS.lock().await;
        let (result, back) = app.stop().await;
        result.unwrap();
        store = back;
        let (most, which) = most_marks(&store).await;
        assert_eq!(most, 1, "{which} after run {run}");
    }
    let restarts = started.elapsed();
    eprintln!("{backend:?}: 50 restarts with a hit and a flush each: {restarts:?}");
    let entry = store.doc(WRITERS, &writer).await.unwrap();
    assert_eq!(entry.get_i64("epoch"), Ok(50), "{entry}");
    assert!(entry.get("ended").is_some(), "{entry}");

    // Five imports next to a live serve: each takes the next free slot.
    let app = TestApp::spawn_in(store, settings(), clock.clone(), &data_dir).await;
    drop(forking);
    assert_eq!(app.handle.writers.writer().id, writer);
    let mut importers = Vec::new();
    for n in 1..=5 {
        import(&app.store, &data_dir, 3, n).await;
        let (most, which) = most_marks(&app.store).await;
        assert!(most <= 2, "{most} marks in {which} after import {n}");
        // The import ended cleanly: serve retires it and its next flush removes its marks.
        app.handle.writers.refresh().await.unwrap();
        let retired = app.handle.writers.retired();
        assert_eq!(retired.len(), n, "{retired:?}");
        importers.push(retired[0].clone());
        app.hit(
            "site=acme&url=https%3A%2F%2Facme.example%2Fimported%3Frun%3D1",
            CHROME_WIN,
        )
        .await;
        app.flush().await;
        let (collection, id) = month();
        let doc = app.doc(&collection, &id).await.unwrap();
        assert_eq!(marks(&doc), [writer.clone()], "{doc}");
    }
    // Each import found its predecessor's id retired and took a new one.
    let mut distinct = importers.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 5, "{importers:?}");
    assert!(!importers.contains(&writer));
    let metrics = app.metrics().await;
    assert!(metrics.contains("tally_writer_epoch 51"), "{metrics}");
    assert!(metrics.contains("tally_writers_retired 5"), "{metrics}");
    let (result, store) = app.stop().await;
    result.unwrap();
    // 50 restarts + 5 hits of the import phase, + 5 × 3 imported views.
    assert_eq!(views(&store).await, 50 + 5 + 15);
    let (most, which) = most_marks(&store).await;
    assert!(most <= 2, "{most} marks in {which}");
    for (collection, doc) in report_docs(&store).await {
        for m in marks(&doc) {
            assert!(
                m == writer || importers.contains(&m),
                "{collection}: unknown mark {m} in {doc}"
            );
        }
    }
}

/// The real binary in a crash loop: 50 × (start, one hit, its flush, SIGKILL) on one data
/// directory. Each start takes the same writer id back with its epoch raised, so every document
/// keeps one mark and every hit is counted once.
async fn a_crash_loop_keeps_one_mark(backend: Backend) {
    let store = TestStore::new(backend).await;
    store.add_site("acme", "UTC").await;
    let mongo_dir = tempfile::tempdir().unwrap();
    let data_dir = match backend {
        Backend::Embedded => store.dir.as_ref().unwrap().path().to_owned(),
        Backend::Mongo => mongo_dir.path().to_owned(),
    };
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut writer: Option<String> = None;
    for run in 1..=50_i64 {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tally"));
        for (k, _) in std::env::vars() {
            if k.starts_with("TALLY_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("--data-dir").arg(&data_dir);
        if backend == Backend::Mongo {
            cmd.args([
                "--mongodb-uri",
                &mongodb_uri(),
                "--database",
                &store.database,
            ]);
        }
        let forking = FORKS.lock().await;
        let mut child = cmd
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--flush-interval-ms", "20"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("tally starts");
        drop(forking);
        wait_for_port(port).await;
        let answer = http
            .get(format!("http://127.0.0.1:{port}/t.gif?site=acme&url=%2F"))
            .header("User-Agent", CHROME_WIN)
            .header("X-Forwarded-For", visitor(run as u32))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let mut counted = 0;
        for _ in 0..500 {
            counted = views(&store).await;
            if counted == run {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(counted, run, "run {run}");
        child.kill().unwrap();
        child.wait().unwrap();
        let (most, which) = most_marks(&store).await;
        assert_eq!(most, 1, "{which} after run {run}");
        let (collection, id) = month();
        let mark = marks(&store.doc(&collection, &id).await.unwrap()).remove(0);
        let writer = writer.get_or_insert(mark.clone());
        assert_eq!(&mark, writer);
        let entry = store.doc(WRITERS, writer).await.unwrap();
        assert_eq!(entry.get_i64("epoch"), Ok(run), "{entry}");
        assert!(entry.get("ended").is_none(), "{entry}");
    }
    eprintln!(
        "{backend:?}: 50 × (start the real binary, one hit, its flush, SIGKILL): {:?}",
        started.elapsed()
    );
}

fn statement(writer: &str, seq: i64, by: i64, unset: &[&str]) -> Batch {
    Batch {
        collections: vec![CollectionBatch {
            collection: "traffic.2026".into(),
            docs: vec![DocUpdate {
                id: "acme:2026-12".into(),
                inc: vec![(FieldKey::parse("v").unwrap(), by)],
                mark: Some(Mark {
                    writer: writer.into(),
                    seq,
                }),
                unset: unset.iter().map(|w| w.to_string()).collect(),
                ..DocUpdate::default()
            }],
        }],
    }
}

/// `$unset` of retired marks goes with the statement: applied with it, never without it, and
/// never changing a count.
async fn a_mark_is_removed_only_with_its_statement(backend: Backend) {
    let store = TestStore::new(backend).await;
    let s = &store.store;
    let (a, b, c) = ("00000000000a", "00000000000b", "00000000000c");
    assert!(s.apply(&statement(a, 1, 1, &[])).await.failed.is_empty());
    assert!(s.apply(&statement(c, 1, 10, &[])).await.failed.is_empty());
    let doc = || store.doc("traffic.2026", "acme:2026-12");
    assert_eq!(marks(&doc().await.unwrap()), [a, c]);

    // b's first statement removes a's mark and counts its own increment.
    let applied = s.apply(&statement(b, 1, 2, &[a])).await;
    assert!(applied.failed.is_empty() && applied.duplicates.is_empty());
    let d = doc().await.unwrap();
    assert_eq!(
        (marks(&d), get_path(&d, "v")),
        (vec![c, b].into_iter().map(String::from).collect(), Some(13))
    );

    // Sent again: a duplicate; it removes nothing (c stays) and counts nothing.
    let applied = s.apply(&statement(b, 1, 2, &[c])).await;
    assert_eq!(applied.duplicates, [(0, 0)], "{applied:?}");
    let d = doc().await.unwrap();
    assert_eq!((marks(&d).len(), get_path(&d, "v")), (2, Some(13)));

    // A statement its guard refuses removes nothing either.
    let mut refused = statement(b, 2, 5, &[c]);
    refused.collections[0].docs[0].guard = Some(Guard {
        field: FieldKey::parse("v").unwrap(),
        max: 0,
    });
    assert_eq!(s.apply(&refused).await.failed.len(), 1);
    let d = doc().await.unwrap();
    assert_eq!((marks(&d).len(), get_path(&d, "v")), (2, Some(13)));

    // Removing a mark that is not there is harmless.
    let applied = s.apply(&statement(b, 3, 1, &[a, c])).await;
    assert!(applied.failed.is_empty(), "{applied:?}");
    let d = doc().await.unwrap();
    assert_eq!(
        (marks(&d), get_path(&d, "v")),
        (vec![b.to_owned()], Some(14))
    );
}

/// The registry's compare-and-swap: create only if absent, replace only at the expected rev.
async fn replace_if_is_a_compare_and_swap(backend: Backend) {
    let store = TestStore::new(backend).await;
    let s = &store.store;
    let v1 = doc! {"_id": "0123456789ab", "rev": 1_i64, "role": "serve"};
    assert!(s.replace_if(WRITERS, &v1, None).await.unwrap());
    assert!(!s.replace_if(WRITERS, &v1, None).await.unwrap());
    let v2 = doc! {"_id": "0123456789ab", "rev": 2_i64, "role": "import"};
    assert!(!s.replace_if(WRITERS, &v2, Some(7)).await.unwrap());
    assert!(s.replace_if(WRITERS, &v2, Some(1)).await.unwrap());
    assert!(!s.replace_if(WRITERS, &v2, Some(1)).await.unwrap());
    let stored = store.doc(WRITERS, "0123456789ab").await.unwrap();
    assert_eq!(stored, v2);
    assert!(s.collections().await.unwrap().contains(&WRITERS.to_owned()));
}

/// No heartbeat of its own during a test: the test calls it.
fn quiet_settings() -> ServeSettings {
    ServeSettings {
        writer_heartbeat_secs: 600,
        writer_stale_secs: 1800,
        ..test_settings()
    }
}

/// A writer retired while it could not reach the store takes a new id at its next heartbeat,
/// a registry entry live on another host is not taken over, and an id whose entry is gone is
/// not used again.
async fn a_retired_or_foreign_id_is_renewed(backend: Backend) {
    let store = TestStore::new(backend).await;
    store.add_site("acme", "UTC").await;
    let dir = tempfile::tempdir().unwrap();
    let quiet = quiet_settings();
    let app = TestApp::spawn_in(
        store,
        quiet.clone(),
        tally::period::system_clock(),
        dir.path(),
    )
    .await;
    let first = app.handle.writers.writer().id;
    // Another process retires it (as if its heartbeats had stopped for the stale time).
    let mut entry = app.doc(WRITERS, &first).await.unwrap();
    let rev = entry.get_i64("rev").unwrap();
    entry.insert("rev", rev + 1);
    entry.insert("retired", mongodb::bson::DateTime::now());
    assert!(app
        .store
        .store
        .replace_if(WRITERS, &entry, Some(rev))
        .await
        .unwrap());
    let renewed = app
        .handle
        .writers
        .heartbeat()
        .await
        .unwrap()
        .expect("a new writer");
    assert_ne!(renewed.id, first);
    app.handle.flusher.set_writer(renewed.clone()).await;
    app.hit("site=acme&url=%2F", CHROME_WIN).await;
    app.flush().await;
    let (collection, id) = month();
    assert_eq!(
        marks(&app.doc(&collection, &id).await.unwrap()),
        [renewed.id.as_str()]
    );
    let forking = FORKS.lock().await;
    let (result, store) = app.stop().await;
    result.unwrap();

    // The slot keeps the renewed id; a registry entry of it live on another host (a copied
    // data directory) makes the next start take a new one.
    let mut entry = store.doc(WRITERS, &renewed.id).await.unwrap();
    let rev = entry.get_i64("rev").unwrap();
    entry.insert("rev", rev + 1);
    entry.insert("host", "another-node");
    entry.insert("seen", mongodb::bson::DateTime::now());
    entry.remove("ended");
    assert!(store
        .store
        .replace_if(WRITERS, &entry, Some(rev))
        .await
        .unwrap());
    let app = TestApp::spawn_in(store, quiet, tally::period::system_clock(), dir.path()).await;
    drop(forking);
    let third = app.handle.writers.writer();
    assert!(third.id != renewed.id && third.id != first, "{third:?}");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("tally_writer_renewals_total 1\n"),
        "{metrics}"
    );
    let forking = FORKS.lock().await;
    let (result, store) = app.stop().await;
    result.unwrap();

    // An id registered before (epoch above 1) whose entry is gone (retired, then deleted after
    // a week) is not used again either: another process may still list it as retired.
    let again = tally::aggregate::identity::Identity::claim(dir.path()).unwrap();
    assert_eq!((again.id(), again.epoch()), (third.id.as_str(), 2));
    drop(again);
    delete_raw(&store, WRITERS, &third.id).await;
    let app = TestApp::spawn_in(
        store,
        quiet_settings(),
        tally::period::system_clock(),
        dir.path(),
    )
    .await;
    drop(forking);
    let fourth = app.handle.writers.writer();
    assert!(fourth.id != third.id && fourth.epoch == 1, "{fourth:?}");
    app.stop().await.0.unwrap();
}

/// Who is retired: ended, or silent for the stale time; never a durable writer, a writer named by
/// a parked statement, or a live one. Entries retired more than 7 days ago are deleted. The
/// next flush removes exactly the retired writers' marks and counts exactly.
async fn retirement_follows_the_rules(backend: Backend) {
    let store = TestStore::new(backend).await;
    store.add_site("acme", "UTC").await;
    let now = Utc::now().timestamp_millis();
    let at = |ms_ago: i64| mongodb::bson::DateTime::from_millis(now - ms_ago);
    let hour = 3_600_000;
    let entry = |id: &str| {
        doc! {"_id": id, "rev": 1_i64, "role": "serve", "host": "elsewhere",
        "pid": 1_i64, "durable": false, "epoch": 1_i64, "started": at(3 * hour)}
    };
    let mut entries = Vec::new();
    let mut silent = entry("00000000000a");
    silent.insert("seen", at(2 * hour));
    entries.push(silent);
    let mut durable = entry("00000000000b");
    durable.insert("seen", at(2 * hour));
    durable.insert("durable", true);
    entries.push(durable);
    let mut parked = entry("00000000000c");
    parked.insert("seen", at(hour));
    parked.insert("ended", at(hour));
    entries.push(parked);
    let mut live = entry("00000000000d");
    live.insert("seen", at(1_000));
    entries.push(live);
    let mut ended = entry("00000000000e");
    ended.insert("seen", at(60_000));
    ended.insert("ended", at(60_000));
    entries.push(ended);
    let mut forgotten = entry("00000000000f");
    forgotten.insert("seen", at(9 * 24 * hour));
    forgotten.insert("retired", at(8 * 24 * hour));
    entries.push(forgotten);
    for e in &entries {
        assert!(store.store.replace_if(WRITERS, e, None).await.unwrap());
    }
    put_raw(
        &store,
        "parked",
        doc! {"_id": "p1", "writer": "00000000000c"},
    )
    .await;
    let (collection, id) = month();
    let all = [
        "00000000000a",
        "00000000000b",
        "00000000000c",
        "00000000000d",
        "00000000000e",
    ];
    let mut w = Document::new();
    for m in all {
        w.insert(m, 1_i64);
    }
    put_raw(&store, &collection, doc! {"_id": &id, "v": 5_i64, "_w": w}).await;

    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_in(
        store,
        quiet_settings(),
        tally::period::system_clock(),
        dir.path(),
    )
    .await;
    let me = app.handle.writers.writer().id;
    // Registering read the registry once already.
    let mut retired = app.handle.writers.retired().to_vec();
    retired.sort();
    assert_eq!(retired, ["00000000000a", "00000000000e"]);
    for (id, is_retired) in [
        ("00000000000a", true),
        ("00000000000b", false),
        ("00000000000c", false),
        ("00000000000d", false),
        ("00000000000e", true),
    ] {
        let e = app.doc(WRITERS, id).await.unwrap();
        assert_eq!(e.get("retired").is_some(), is_retired, "{e}");
    }
    assert_eq!(app.doc(WRITERS, "00000000000f").await, None);

    app.hit("site=acme&url=%2F", CHROME_WIN).await;
    app.flush().await;
    let doc = app.doc(&collection, &id).await.unwrap();
    assert_eq!(get_path(&doc, "v"), Some(6), "{doc}");
    let mut left = marks(&doc);
    left.sort();
    let mut expected = vec![
        "00000000000b".to_owned(),
        "00000000000c".into(),
        "00000000000d".into(),
        me,
    ];
    expected.sort();
    assert_eq!(left, expected, "{doc}");
    app.stop().await.0.unwrap();
}

/// A stale time shorter than three heartbeats would retire live writers between two of their
/// heartbeats: refused at start, with both settings named.
#[tokio::test]
async fn a_stale_time_below_three_heartbeats_is_refused() {
    let store = TestStore::new(Backend::Embedded).await;
    let settings = ServeSettings {
        writer_heartbeat_secs: 30,
        writer_stale_secs: 60,
        ..test_settings()
    };
    let dir = tempfile::tempdir().unwrap();
    let Err(e) = tally::startup::Application::build_in(
        settings,
        std::sync::Arc::clone(&store.store),
        tally::period::system_clock(),
        Some(dir.path()),
    )
    .await
    else {
        panic!("built");
    };
    let message = e.to_string();
    assert!(
        message.contains("--writer-stale-secs (60)")
            && message.contains("--writer-heartbeat-secs (30)"),
        "{message}"
    );
}

both_stores!(
    restarts_and_imports_keep_marks_bounded,
    retirement_follows_the_rules,
    a_crash_loop_keeps_one_mark,
    a_mark_is_removed_only_with_its_statement,
    replace_if_is_a_compare_and_swap,
    a_retired_or_foreign_id_is_renewed,
);
