//! `tally collections list|drop` and `tally capacity`, run as the real binary on a store seeded
//! with documents across years.

mod support;

use chrono::{Datelike, Duration, Utc};
use mongodb::bson::{doc, Document};
use std::process::{Command, Output};
use support::*;

/// The year tally treats as current (the year at UTC-12).
fn current_year() -> i32 {
    (Utc::now() - Duration::hours(12)).year()
}

fn env_of(store: &TestStore) -> Vec<(&'static str, String)> {
    match store.backend {
        Backend::Mongo => vec![
            ("TALLY_MONGODB_URI", mongodb_uri()),
            ("TALLY_DATABASE", store.database.clone()),
        ],
        Backend::Embedded => vec![(
            "TALLY_DATA_DIR",
            store.dir.as_ref().unwrap().path().display().to_string(),
        )],
    }
}

fn tally(store: &TestStore, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tally"));
    for (k, _) in std::env::vars() {
        if k.starts_with("TALLY_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env_of(store))
        .args(args)
        .output()
        .expect("tally runs")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The whitespace-separated fields of the line starting with `first`.
fn row(text: &str, first: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .find(|t| t.first().map(String::as_str) == Some(first))
        .unwrap_or_else(|| panic!("no line {first:?} in\n{text}"))
}

/// Sites `acme` and `beta`; per year of 2023, 2024, 2025 and the current one: `traffic` with a
/// year and a month document per site (4), `content` with 3 documents (4 in 2025); and one
/// document in `imports`. Returns the BSON size of each collection's documents.
async fn seed(store: &TestStore) -> Vec<(String, u64, u64)> {
    store.add_site("acme", "UTC").await;
    store.add_site("beta", "Europe/Berlin").await;
    let mut sizes = Vec::new();
    for year in [2023, 2024, 2025, current_year()] {
        let traffic = vec![
            doc! {"_id": format!("acme:{year}"), "v": 10_i64, "d": {"001": 3_i64}},
            doc! {"_id": format!("acme:{year}-01"), "v": 10_i64},
            doc! {"_id": format!("beta:{year}"), "v": 5_i64},
            doc! {"_id": format!("beta:{year}-01"), "v": 5_i64},
        ];
        let mut content = vec![
            doc! {"_id": format!("acme:{year}-01"), "n": 1_i64, "p": {"~2F": {"v": 3_i64}}},
            doc! {"_id": format!("acme:{year}-01-02"), "p": {"~2F": {"v": 1_i64}}},
            doc! {"_id": format!("beta:{year}-01"), "n": 1_i64, "p": {"~2Fa": {"v": 2_i64}}},
        ];
        if year == 2025 {
            content.push(doc! {"_id": "acme:2025-02", "n": 1_i64, "p": {"~2F": {"v": 1_i64}}});
        }
        for (report, docs) in [("traffic", traffic), ("content", content)] {
            let coll = format!("{report}.{year}");
            let mut bytes = 0;
            for d in &docs {
                bytes += bson_len(d);
                put_raw_listed(store, &coll, d.clone()).await;
            }
            sizes.push((coll, docs.len() as u64, bytes));
        }
    }
    put_raw_listed(store, "imports", doc! {"_id": "acme:1", "file": "x.csv"}).await;
    sizes
}

fn bson_len(d: &Document) -> u64 {
    let mut bytes = Vec::new();
    d.to_writer(&mut bytes).unwrap();
    bytes.len() as u64
}

async fn list_and_drop(backend: Backend) {
    let cur = current_year();
    assert!(cur > 2025, "the seeded years must all be past ones");
    let store = TestStore::new(backend).await;
    let sizes = seed(&store).await;

    // list: every report collection, sorted by year then report, with its documents
    let text = stdout(&tally(&store, &["collections", "list"]));
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.contains('.'))
        .collect();
    let expected: Vec<String> = [2023, 2024, 2025, cur]
        .into_iter()
        .flat_map(|y| [format!("content.{y}"), format!("traffic.{y}")])
        .collect();
    assert_eq!(names, expected, "{text}");
    for (coll, docs, _) in &sizes {
        let r = row(&text, coll);
        assert_eq!(r[2], docs.to_string(), "{text}");
    }
    assert_eq!(row(&text, "total")[2], "29", "{text}");
    let other = text
        .lines()
        .find(|l| l.starts_with("other collections"))
        .unwrap_or_else(|| panic!("no footnote in\n{text}"));
    assert!(
        other.contains("imports") && other.contains("sites"),
        "{text}"
    );

    // list --json: the same, with the bytes
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&tally(&store, &["collections", "list", "--json"]))).unwrap();
    let items = json.as_array().unwrap();
    assert_eq!(items.len(), 8);
    for item in items {
        let (_, docs, bytes) = sizes
            .iter()
            .find(|(c, _, _)| item["collection"] == c.as_str())
            .unwrap();
        assert_eq!(item["documents"], *docs, "{item}");
        let stored = item["bytes"].as_u64().unwrap();
        match backend {
            // The embedded store counts exactly the BSON it holds.
            Backend::Embedded => assert_eq!(stored, *bytes, "{item}"),
            // FerretDB answers a size from its own storage pages.
            Backend::Mongo => assert!(stored > 0, "{item}"),
        }
        assert!(item["report"] == "traffic" || item["report"] == "content");
    }

    // drop --before 2025 without --yes: a dry run
    let before = store.store.collections().await.unwrap();
    let text = stdout(&tally(&store, &["collections", "drop", "--before", "2025"]));
    assert!(
        text.contains("nothing dropped; add --yes to drop"),
        "{text}"
    );
    for coll in [
        "content.2023",
        "traffic.2023",
        "content.2024",
        "traffic.2024",
    ] {
        assert!(text.contains(coll), "{text}");
    }
    assert!(
        !text.contains(".2025") && !text.contains(&format!(".{cur}")),
        "{text}"
    );
    assert_eq!(row(&text, "total")[2], "14", "{text}");
    assert_eq!(store.store.collections().await.unwrap(), before);
    assert!(store.doc("traffic.2023", "acme:2023").await.is_some());

    // a year past the current one is refused
    let next = (cur + 1).to_string();
    let out = tally(&store, &["collections", "drop", "--before", &next, "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&next));
    assert_eq!(store.store.collections().await.unwrap(), before);

    // --yes: exactly 2023 and 2024 go
    let text = stdout(&tally(
        &store,
        &["collections", "drop", "--before", "2025", "--yes"],
    ));
    assert!(
        text.contains("dropped 4 collections: 14 documents"),
        "{text}"
    );
    let after = store.store.collections().await.unwrap();
    let expected: Vec<String> = before
        .iter()
        .filter(|c| !c.ends_with(".2023") && !c.ends_with(".2024"))
        .cloned()
        .collect();
    assert_eq!(after, expected);
    assert!(after.contains(&"sites".to_owned()) && after.contains(&"imports".to_owned()));
    assert!(store.doc("traffic.2023", "acme:2023").await.is_none());
    assert!(store.doc("content.2024", "acme:2024-01").await.is_none());
    assert!(store.doc("traffic.2025", "acme:2025").await.is_some());
    assert!(store.store.site("acme").await.unwrap().is_some());

    // nothing left to drop is not an error
    let text = stdout(&tally(&store, &["collections", "drop", "--before", "2025"]));
    assert!(text.contains("nothing to drop"), "{text}");

    // --before the current year is the most: it drops 2025, never the current year
    let cur_s = cur.to_string();
    stdout(&tally(
        &store,
        &["collections", "drop", "--before", &cur_s, "--yes"],
    ));
    let left: Vec<String> = store
        .store
        .collections()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.starts_with("traffic.") || c.starts_with("content."))
        .collect();
    assert_eq!(left, [format!("content.{cur}"), format!("traffic.{cur}")]);
}

async fn capacity_projects_the_last_full_year(backend: Backend) {
    let store = TestStore::new(backend).await;
    seed(&store).await;
    let text = stdout(&tally(&store, &["capacity", "--sites", "10"]));
    // 2025: traffic 4 documents, content 4, for the 2 sites with a traffic year document.
    // Fields: report, docs/site-year, bytes/doc (number, unit), docs/year, size/year.
    let traffic = row(&text, "traffic");
    assert_eq!(
        (traffic[1].as_str(), traffic[4].as_str()),
        ("2.0", "20"),
        "{text}"
    );
    let content = row(&text, "content");
    assert_eq!(
        (content[1].as_str(), content[4].as_str()),
        ("2.0", "20"),
        "{text}"
    );
    let total = row(&text, "total");
    assert_eq!(
        (total[1].as_str(), total[2].as_str()),
        ("4.0", "40"),
        "{text}"
    );
    assert!(text.contains("2025, the last full year"), "{text}");
    assert!(
        text.contains("2 sites with a traffic year document (of 2 in sites)"),
        "{text}"
    );
    assert!(text.contains("projected linearly for 10 sites"), "{text}");
    assert!(!text.contains("model"), "{text}");
    if backend == Backend::Embedded {
        // bytes/doc: the average BSON size of 2025's traffic documents
        let docs = [
            doc! {"_id": "acme:2025", "v": 10_i64, "d": {"001": 3_i64}},
            doc! {"_id": "acme:2025-01", "v": 10_i64},
            doc! {"_id": "beta:2025", "v": 5_i64},
            doc! {"_id": "beta:2025-01", "v": 5_i64},
        ];
        let avg = docs.iter().map(bson_len).sum::<u64>() as f64 / 4.0;
        assert_eq!(traffic[2], format!("{}", avg.round() as u64), "{text}");
    }
}

async fn capacity_without_documents_prints_the_model(backend: Backend) {
    let store = TestStore::new(backend).await;
    store.add_site("acme", "UTC").await;
    let text = stdout(&tally(&store, &["capacity"]));
    assert!(text.contains("not a measurement"), "{text}");
    assert_eq!(row(&text, "content")[1..], ["377", "37700"], "{text}");
    assert_eq!(row(&text, "live")[1..], ["70", "7000"], "{text}");
    assert_eq!(row(&text, "people")[1..], ["378", "37800"], "{text}");
    assert_eq!(row(&text, "total")[1..], ["1471", "147100"], "{text}");
}

both_stores!(
    list_and_drop,
    capacity_projects_the_last_full_year,
    capacity_without_documents_prints_the_model
);
