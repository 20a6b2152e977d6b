//! People from sketches (on by default), on both stores: a generated log of visitors returning over 10 days,
//! imported with the real `tally import`, then the `people.<YYYY>` documents read back. Each
//! day's estimate is within the stated error of that day's distinct visitors, and the 10 days
//! merged within the error of the distinct visitors over the 10 days, not of the sum of days.
//! Live pixels and custom events feed the same sketches: the snippet's `vi` names one person
//! across browsers, and without it the address and User-Agent do. No identity reaches any document.

mod support;

use chrono::{NaiveDate, TimeZone, Utc};
use mongodb::bson::Document;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;
use support::*;
use tally::aggregate::close::Closer;
use tally::period::Period;
use tally::reports::people::range::{estimate, people, plan};
use tally::reports::people::read;

/// Four standard errors of a precision-12 sketch (1.04/√4096 = 1.6%): the site's key is
/// random, so each run draws new registers, and 22 estimates at three errors would fail a run
/// in thirty; at four, one in a thousand.
const ERROR: f64 = 0.065;

fn within(got: i64, want: usize) -> bool {
    (got - want as i64).abs() as f64 <= ERROR * want as f64
}

/// 3,000 visitors (an address and a browser each) over 10 days of June 2026 in a site at
/// UTC−4 (New York, summer time): visitor v comes on day d when a deterministic draw says so,
/// with one to three page views, at a time of day spread over the whole local day.
fn generate(dir: &std::path::Path) -> (std::path::PathBuf, Vec<HashSet<u32>>) {
    let agents = [CHROME_WIN, FIREFOX_MAC, SAFARI_IPHONE, CHROME_ANDROID];
    let path = dir.join("access.log");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut days = vec![HashSet::new(); 10];
    let mut state = 0x1234_5678_u64;
    let mut draw = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 33
    };
    for (d, seen) in days.iter_mut().enumerate() {
        for v in 0..3000u32 {
            // Each visitor has a habit: 10% to 70% of days.
            if draw() % 100 >= 10 + u64::from(v % 7) * 10 {
                continue;
            }
            seen.insert(v);
            let addr = format!("198.{}.{}.{}", 18 + v / 65536, (v / 256) % 256, v % 256);
            let ua = agents[(v % 4) as usize];
            for view in 0..1 + draw() % 3 {
                let second = (draw() % 86_000) as i64 + view as i64;
                let local = Utc
                    .with_ymd_and_hms(2026, 6, d as u32 + 1, 0, 0, 0)
                    .unwrap()
                    + chrono::TimeDelta::seconds(second);
                let time = local.format("%d/%b/%Y:%H:%M:%S -0400");
                writeln!(
                    file,
                    r#"{addr} - - [{time}] "GET /page/{view} HTTP/1.1" 200 512 "-" "{ua}""#
                )
                .unwrap();
            }
        }
    }
    file.flush().unwrap();
    (path, days)
}

async fn people_doc(store: &TestStore, period: Period) -> Option<Document> {
    store
        .doc(
            &format!("people.{}", period.year()),
            &format!("acme:{period}"),
        )
        .await
}

async fn returning_visitors_are_counted_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (log, days) = generate(dir.path());
    let store = TestStore::new(backend).await;
    store.add_site("acme", "America/New_York").await;
    let lines = std::fs::read_to_string(&log).unwrap().lines().count();
    let out = tally_cli(&store)
        .args(["import", "--site", "acme"])
        .arg(log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut docs: HashMap<Period, Document> = HashMap::new();
    for day in 1..=11u8 {
        if let Some(doc) = people_doc(&store, Period::Day(2026, 6, day)).await {
            docs.insert(Period::Day(2026, 6, day), doc);
        }
    }
    for (i, seen) in days.iter().enumerate() {
        let got = estimate(&docs[&Period::Day(2026, 6, i as u8 + 1)]);
        assert!(
            within(got, seen.len()),
            "day {}: {got} for {}",
            i + 1,
            seen.len()
        );
    }
    let range = plan(
        NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
        NaiveDate::from_ymd_opt(2026, 6, 10).unwrap(),
    );
    let sketches: HashMap<Period, _> = docs.iter().map(|(p, d)| (*p, read(d))).collect();
    let merged = people(&range, |p| sketches.get(&p));
    let distinct: HashSet<u32> = days.iter().flatten().copied().collect();
    let sum: usize = days.iter().map(HashSet::len).sum();
    assert!(
        within(merged.people, distinct.len()),
        "10 days: {} for {} distinct ({sum} summed over days)",
        merged.people,
        distinct.len()
    );
    assert!(merged.people < (sum as i64) / 2, "not the sum of days");
    assert!(merged.without_sketch.is_empty());
    // The month's own sketch holds the same visitors: its estimate is the merged days'.
    let month = people_doc(&store, Period::Month(2026, 6)).await.unwrap();
    assert_eq!(estimate(&month), merged.people);
    let year = people_doc(&store, Period::Year(2026)).await.unwrap();
    assert_eq!(estimate(&year), merged.people);
    // No identity in a document: only register indexes, ranks and the writers' marks.
    for doc in docs.values().chain([&month, &year]) {
        for (name, value) in doc {
            if name == "_id" || name == "_w" {
                continue;
            }
            let hi: usize = name.parse().unwrap_or_else(|_| panic!("field {name:?}"));
            assert!(hi < 64, "{name}");
            for (lo, rank) in value.as_document().unwrap() {
                let lo: usize = lo.parse().unwrap_or_else(|_| panic!("field {name}.{lo}"));
                assert!(lo < 64, "{name}.{lo}");
                let rank = rank
                    .as_i32()
                    .unwrap_or_else(|| panic!("{name}.{lo}: {rank:?}"));
                assert!((1..=53).contains(&rank), "{name}.{lo}: {rank}");
            }
        }
    }
    // Closing: `tally import` wrote the number of every day and month of the log that has
    // ended (here all: the log is of June 2026), as a server does for its last 7 days; a
    // server's closer finds them written and writes nothing.
    let traffic = store.doc("traffic.2026", "acme:2026-06").await.unwrap();
    for day in 1..=10u8 {
        let got = get_path(&traffic, &format!("d.{day:02}.p"));
        let want = estimate(&docs[&Period::Day(2026, 6, day)]);
        assert_eq!(got, Some(want), "day {day}");
    }
    assert_eq!(get_path(&traffic, "p"), Some(merged.people));
    let sites = sites_of(&store).await;
    let at = |s: &str| s.parse::<chrono::DateTime<Utc>>().unwrap();
    let written = Closer::default()
        .run_once(store.store.as_ref(), &sites, at("2026-06-11T05:00:00Z"))
        .await
        .unwrap();
    assert_eq!(written, 0, "closed once, by any node");
    // The site's key for 2026 was created in the store, and the Gaug.es flags are untouched
    // (a log line carries none).
    assert!(store.doc("people_keys", "acme:2026").await.is_some());
    let traffic = store.doc("traffic.2026", "acme:2026-06").await.unwrap();
    assert_eq!(get_path(&traffic, "u"), None);

    // The API's one "people" figure: the range merged from the sketches, each day and the
    // month their closed number.
    let mut site = store.store.sites().await.unwrap().remove(0);
    site.public = true;
    store.store.update_site(&site).await.unwrap();
    let clock = TestClock::at(utc(2026, 6, 20, 12, 0));
    let app = TestApp::spawn(store, test_settings(), clock.clock()).await;
    let api = |path: &str| {
        let url = format!("{}/api/v1/sites/acme{path}", app.address);
        let http = app.http.clone();
        async move {
            let r = http.get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200, "{url}");
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let r = api("/reports/traffic?from=2026-06-01&to=2026-06-10&compare=previous").await;
    let data = &r["data"];
    assert_eq!(data["total"]["views"], lines, "every line a view");
    assert_eq!(data["people_from"], "sketches");
    assert_eq!(data["total"]["people"], merged.people, "{data}");
    assert!(data["total"]["people"].as_i64().unwrap() < (sum as i64) / 2);
    for (i, row) in data["days"].as_array().unwrap().iter().enumerate() {
        let want = estimate(&docs[&Period::Day(2026, 6, i as u8 + 1)]);
        assert_eq!(row["people"], want, "day {}", i + 1);
        assert!(within(want, days[i].len()));
    }
    assert_eq!(
        data["previous"],
        serde_json::json!({"views": 0, "people": 0})
    );
    let r = api("/reports/traffic?date=2026").await;
    assert_eq!(r["data"]["total"]["people"], merged.people);
    assert_eq!(r["data"]["people_from"], "sketches");
    let r = api("/reports/traffic?date=2026-06").await;
    assert_eq!(r["data"]["total"]["people"], merged.people);
    let r = api("/reports/traffic?date=2026-06-02").await;
    assert_eq!(
        r["data"]["total"]["people"],
        estimate(&docs[&Period::Day(2026, 6, 2)])
    );
    let s = api("/summary").await;
    assert_eq!(s["months"][11]["month"], "2026-06");
    assert_eq!(s["months"][11]["people"], merged.people);
    assert_eq!(s["all_time"]["people"], merged.people);
    assert_eq!(api("").await["first_day"], "2026-06-01");
    let (result, _) = app.stop().await;
    result.unwrap();
}

async fn the_snippet_id_names_one_person_across_browsers(backend: Backend) {
    let store = TestStore::new(backend).await;
    store.add_site("acme", "UTC").await;
    let clock = TestClock::at(utc(2026, 6, 1, 12, 0));
    let app = TestApp::spawn(store, test_settings(), clock.clock()).await;
    let page = "site=acme&url=https%3A%2F%2Facme.example%2F";
    let vi = "k3j5h2g7f8d9s0a1q2w3e4r5t6y7";
    // One person with the snippet on two browsers (each hit from another address), and three
    // without it (their addresses differ).
    app.hit(&format!("{page}&vi={vi}"), CHROME_WIN).await;
    app.hit(&format!("{page}&vi={vi}"), FIREFOX_MAC).await;
    for _ in 0..3 {
        app.hit(page, CHROME_WIN).await;
    }
    // A malformed id is no id: that hit is one more person by its address.
    app.hit(&format!("{page}&vi=short"), CHROME_WIN).await;
    // A custom event with the same id is the same person; one without an id, from a new
    // address, is one more.
    app.hit_path(&format!("/e?site=acme&name=signup&vi={vi}"), SAFARI_IPHONE)
        .await;
    app.hit_path("/e?site=acme&name=signup", SAFARI_IPHONE)
        .await;
    app.flush().await;
    let day = app.doc("people.2026", "acme:2026-06-01").await.unwrap();
    // Exact while no two of the 6 share a register, which fails with probability 15/4096;
    // then the estimate is the registers raised.
    let raised: usize = day
        .iter()
        .filter(|(k, _)| k.parse::<usize>().is_ok())
        .map(|(_, g)| g.as_document().unwrap().len())
        .sum();
    assert_eq!(estimate(&day), raised as i64);
    assert!(raised == 6 || raised == 5, "{raised}");
    let traffic = app.doc("traffic.2026", "acme:2026-06").await.unwrap();
    assert_eq!(get_path(&traffic, "v"), Some(6));
    let (result, _) = app.stop().await;
    result.unwrap();
}

/// The sites of `store`, as the closer takes them.
async fn sites_of(store: &TestStore) -> Vec<Arc<tally::site::Site>> {
    let sites = store.store.sites().await.unwrap();
    sites.into_iter().map(Arc::new).collect()
}

/// The registers a `people` document holds.
fn raised(doc: &Document) -> usize {
    doc.iter()
        .filter(|(k, _)| k.parse::<usize>().is_ok())
        .map(|(_, g)| g.as_document().unwrap().len())
        .sum()
}

/// The sketches' raises are written at most every `--people-flush-secs` (10 s by default):
/// the first flush sends them, the next ones within 10 s keep them pending (while the other
/// counters are written), and shutdown writes what was kept.
async fn sketch_raises_wait_for_their_interval_and_go_at_shutdown(backend: Backend) {
    let store = TestStore::new(backend).await;
    store.add_site("acme", "UTC").await;
    let clock = TestClock::at(utc(2026, 6, 1, 12, 0));
    let app = TestApp::spawn(store, test_settings(), clock.clock()).await;
    let page = "site=acme&url=https%3A%2F%2Facme.example%2F";
    app.hit(&format!("{page}&vi=first-visitor-0000000001"), CHROME_WIN)
        .await;
    app.flush().await;
    let day = app.doc("people.2026", "acme:2026-06-01").await.unwrap();
    assert_eq!(raised(&day), 1, "the first flush writes the sketch");
    // Three more people within the interval: counted, their registers kept for later.
    for i in 2..=4 {
        app.hit(&format!("{page}&vi=next-visitor-000000000{i}"), CHROME_WIN)
            .await;
    }
    // A flush as the flusher's own timer runs it (`app.flush()` writes everything).
    let report = app.handle.flusher.flush().await;
    assert_eq!(report.failed, 0, "{report:?}");
    let traffic = app.doc("traffic.2026", "acme:2026-06").await.unwrap();
    assert_eq!(get_path(&traffic, "v"), Some(4));
    let day = app.doc("people.2026", "acme:2026-06-01").await.unwrap();
    assert_eq!(raised(&day), 1, "held until the interval has passed");
    let (result, store) = app.stop().await;
    result.unwrap();
    let day = store.doc("people.2026", "acme:2026-06-01").await.unwrap();
    // Four people in 4,096 registers: two share one with probability 6/4096.
    assert!(raised(&day) >= 3, "written at shutdown: {day:?}");
    let year = store.doc("people.2026", "acme:2026").await.unwrap();
    assert_eq!(raised(&year), raised(&day));
    // A server's closer writes the day's number once the day has ended in the site's zone
    // (and its grace passed), not before; June and 2026 have not ended.
    let sites = sites_of(&store).await;
    let closer = Closer::default();
    let run = |at: &str| {
        let at = at.parse::<chrono::DateTime<Utc>>().unwrap();
        closer.run_once(store.store.as_ref(), &sites, at)
    };
    assert_eq!(
        run("2026-06-02T00:03:00Z").await.unwrap(),
        0,
        "in its grace"
    );
    assert_eq!(run("2026-06-02T00:10:00Z").await.unwrap(), 1);
    let traffic = store.doc("traffic.2026", "acme:2026-06").await.unwrap();
    assert_eq!(get_path(&traffic, "d.01.p"), Some(estimate(&day)));
    assert_eq!(get_path(&traffic, "p"), None);
}

/// Not a check: what a wide `people` document costs the store, printed (docs/performance.md).
#[tokio::test]
#[ignore]
async fn wide_document_cost_on_mongo() {
    use tally::field::FieldKey;
    use tally::store::{Batch, CollectionBatch, DocUpdate};
    let store = TestStore::new(Backend::Mongo).await;
    let batch = |max: Vec<(FieldKey, i64)>| Batch {
        collections: vec![CollectionBatch {
            collection: "people.2026".into(),
            docs: vec![DocUpdate {
                id: "acme:2026-06-01".into(),
                max,
                ..DocUpdate::default()
            }],
        }],
    };
    let field = |i: usize| tally::reports::people::register_field(i);
    let t = std::time::Instant::now();
    let all = (0..4096).map(|i| (field(i), 3)).collect();
    assert!(store.store.apply(&batch(all)).await.failed.is_empty());
    println!(
        "$max of 4,096 fields creating the document: {:?}",
        t.elapsed()
    );
    for round in 0..5 {
        let t = std::time::Instant::now();
        let three = (0..3).map(|i| (field(i * 1000 + round), 9)).collect();
        assert!(store.store.apply(&batch(three)).await.failed.is_empty());
        println!("three raises on the full document: {:?}", t.elapsed());
    }
}

both_stores!(
    returning_visitors_are_counted_once,
    the_snippet_id_names_one_person_across_browsers,
    sketch_raises_wait_for_their_interval_and_go_at_shutdown
);
