//! Retention of event counters, on both stores: the store's `_id`-range deletes, its list of
//! collections and dropping them; the sweep over two sites in opposite time zones (UTC+14 and
//! UTC-11), one id a prefix of the other, next to collections it must not touch; and the
//! background loop.

mod support;

use chrono::{DateTime, Duration, Utc};
use mongodb::bson::doc;
use std::sync::Arc;
use support::*;
use tally::field::FieldKey;
use tally::retention::{self, Retention, SweepReport};
use tally::site::{Site, SiteRegistry};
use tally::store::{Batch, CollectionBatch, DocUpdate};

both_stores!(
    delete_range_deletes_exactly_the_half_open_range,
    collections_are_listed_sorted_until_dropped,
    sweep_deletes_exactly_the_expired_documents,
    sweep_drops_a_year_only_when_every_zone_has_left_it,
    run_sweeps_at_start_with_the_defaults_and_stops_when_told,
    sweep_removes_live_minutes_older_than_an_hour,
);

const KIRITIMATI: &str = "Pacific/Kiritimati"; // UTC+14
const PAGO_PAGO: &str = "Pacific/Pago_Pago"; // UTC-11

/// Writes each `(collection, id)` as a small counter document.
async fn seed(store: &TestStore, docs: &[(&str, &str)]) {
    for (coll, id) in docs {
        put_raw_listed(store, coll, doc! {"_id": *id, "b": {"00": 1_i64}}).await;
    }
}

/// Asserts that of `seeded`, exactly the documents in `gone` no longer exist.
async fn assert_gone_exactly(store: &TestStore, seeded: &[(&str, &str)], gone: &[(&str, &str)]) {
    let mut wrong = Vec::new();
    for doc in seeded {
        let exists = store.doc(doc.0, doc.1).await.is_some();
        if exists == gone.contains(doc) {
            wrong.push(format!(
                "{}/{} {}",
                doc.0,
                doc.1,
                if exists { "kept" } else { "deleted" }
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// `(collection, id)` pairs from `(collection, [ids])` groups.
fn docs<'a>(groups: &[(&'a str, &[&'a str])]) -> Vec<(&'a str, &'a str)> {
    groups
        .iter()
        .flat_map(|(coll, ids)| ids.iter().map(move |id| (*coll, *id)))
        .collect()
}

fn increment(collection: &str, id: &str) -> CollectionBatch {
    CollectionBatch {
        collection: collection.into(),
        docs: vec![DocUpdate {
            id: id.into(),
            inc: vec![(FieldKey::parse("v").unwrap(), 1)],
            ..DocUpdate::default()
        }],
    }
}

async fn sweep(
    store: &TestStore,
    sites: &[Site],
    retention: &Retention,
    now: DateTime<Utc>,
) -> SweepReport {
    retention::sweep(store.store.as_ref(), sites, retention, now)
        .await
        .expect("the sweep succeeds")
}

async fn delete_range_deletes_exactly_the_half_open_range(backend: Backend) {
    let store = TestStore::new(backend).await;
    let seeded = docs(&[
        (
            "events_5m.2026",
            &[
                "acme:2026-03-09T01",
                "acme:2026-03-09T02",
                "acme:2026-03-09T03",
                "acme-2:2026-03-09T02",
            ],
        ),
        ("events_5m.2027", &["acme:2026-03-09T02"]),
    ]);
    seed(&store, &seeded).await;
    let s = &store.store;

    // From included, to excluded.
    let n = s
        .delete_range("events_5m.2026", "acme:2026-03-09T02", "acme:2026-03-09T03")
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_gone_exactly(&store, &seeded, &[("events_5m.2026", "acme:2026-03-09T02")]).await;

    // A site's whole range: not the site whose id starts with it.
    let n = s
        .delete_range("events_5m.2026", "acme:", "acme;")
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_gone_exactly(
        &store,
        &seeded,
        &docs(&[(
            "events_5m.2026",
            &[
                "acme:2026-03-09T01",
                "acme:2026-03-09T02",
                "acme:2026-03-09T03",
            ],
        )]),
    )
    .await;
    assert_eq!(
        s.delete_range("events_5m.2026", "acme:", "acme;")
            .await
            .unwrap(),
        0
    );
    assert_eq!(s.delete_range("no.such", "a", "z").await.unwrap(), 0);
}

async fn collections_are_listed_sorted_until_dropped(backend: Backend) {
    let store = TestStore::new(backend).await;
    let s = &store.store;
    assert_eq!(s.collections().await.unwrap(), Vec::<String>::new());
    store.add_site("acme", KIRITIMATI).await;
    assert_eq!(s.collections().await.unwrap(), ["sites"]);

    let batch = Batch {
        collections: vec![
            increment("traffic.2026", "acme:2026-03"),
            increment("events_5m.2026", "acme:2026-03-10T12"),
        ],
    };
    assert_eq!(s.apply(&batch).await.failed, vec![]);
    assert_eq!(
        s.collections().await.unwrap(),
        ["events_5m.2026", "sites", "traffic.2026"]
    );

    // Emptied is not dropped.
    assert_eq!(
        s.delete_range("events_5m.2026", "acme:", "acme;")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.collections().await.unwrap(),
        ["events_5m.2026", "sites", "traffic.2026"]
    );

    s.apply(&Batch {
        collections: vec![increment("events_5m.2026", "acme:2026-03-10T13")],
    })
    .await;
    s.drop_collection("events_5m.2026").await.unwrap();
    assert_eq!(s.collections().await.unwrap(), ["sites", "traffic.2026"]);
    assert_eq!(
        store.doc("events_5m.2026", "acme:2026-03-10T13").await,
        None
    );
    assert!(store.doc("traffic.2026", "acme:2026-03").await.is_some());
    // Dropping what does not exist is fine.
    s.drop_collection("events_5m.2026").await.unwrap();
    s.drop_collection("never.existed").await.unwrap();

    // Written again, listed again.
    assert_eq!(
        s.apply(&Batch {
            collections: vec![increment("events_5m.2026", "acme:2026-03-10T14")],
        })
        .await
        .failed,
        vec![]
    );
    assert_eq!(
        s.collections().await.unwrap(),
        ["events_5m.2026", "sites", "traffic.2026"]
    );
}

async fn sweep_deletes_exactly_the_expired_documents(backend: Backend) {
    let store = TestStore::new(backend).await;
    let acme = store.add_site("acme", KIRITIMATI).await;
    let acme2 = store.add_site("acme-2", PAGO_PAGO).await;
    let sites = [acme, acme2];
    // now - 48 h   = 2026-03-08 12:00 UTC: acme 2026-03-09T02, acme-2 2026-03-08T01
    // now - 60 d   = 2026-01-09 12:00 UTC: acme 2026-01-10,    acme-2 2026-01-09
    // now - 375 d  = 2025-02-28 12:00 UTC: acme 2025-03,       acme-2 2025-02
    let now = utc(2026, 3, 10, 12, 0);
    let retention = Retention {
        five_minute: Some(Duration::hours(48)),
        hourly: Some(Duration::days(60)),
        daily: Some(Duration::days(375)),
        minutes: None,
    };
    let seeded = docs(&[
        (
            "events_5m.2025",
            &["acme:2025-12-31T23", "acme-2:2025-12-31T23"],
        ),
        (
            "events_5m.2026",
            &[
                "acme:2026-01-01T00",
                "acme:2026-03-09T01",
                "acme:2026-03-09T02",
                "acme:2026-03-10T12",
                "acme-2:2026-03-08T00",
                "acme-2:2026-03-08T01",
                // Before acme's cutoff, not before acme-2's own.
                "acme-2:2026-03-09T01",
                // A site the sweep is not given.
                "zeta:2026-01-01T00",
            ],
        ),
        ("events_5m.2027", &["acme:2027-01-01T00"]),
        ("events_5m.archive", &["acme:2020-01-01T00"]),
        (
            "events_hour.2025",
            &["acme:2025-12-31", "acme-2:2025-06-01"],
        ),
        (
            "events_hour.2026",
            &[
                "acme:2026-01-09",
                "acme:2026-01-10",
                "acme-2:2026-01-08",
                "acme-2:2026-01-09",
                "acme-2:2026-03-10",
            ],
        ),
        ("events_day.2024", &["acme:2024-12"]),
        (
            "events_day.2025",
            &[
                "acme:2025-02",
                "acme:2025-03",
                "acme-2:2025-01",
                "acme-2:2025-02",
            ],
        ),
        ("events_day.2026", &["acme:2026-03", "acme-2:2026-01"]),
        ("traffic.2025", &["acme:2025", "acme:2025-12"]),
        ("traffic.2026", &["acme:2026-03"]),
        ("content.2026", &["acme:2026-03-01"]),
        ("sites", &["acme", "acme-2"]),
    ]);
    seed(
        &store,
        &seeded
            .iter()
            .copied()
            .filter(|(coll, _)| *coll != "sites")
            .collect::<Vec<_>>(),
    )
    .await;
    let before = store.store.collections().await.unwrap();

    // No sites: nothing to decide, nothing done.
    assert_eq!(
        sweep(&store, &[], &retention, now).await,
        SweepReport::default()
    );
    assert_gone_exactly(&store, &seeded, &[]).await;

    let report = sweep(&store, &sites, &retention, now).await;
    let dropped = ["events_5m.2025", "events_day.2024", "events_hour.2025"];
    assert_eq!(
        report,
        SweepReport {
            deleted: 7,
            dropped: dropped.map(String::from).to_vec(),
        }
    );
    let mut gone = docs(&[
        (
            "events_5m.2026",
            &[
                "acme:2026-01-01T00",
                "acme:2026-03-09T01",
                "acme-2:2026-03-08T00",
            ],
        ),
        (
            "events_hour.2026",
            &["acme:2026-01-09", "acme-2:2026-01-08"],
        ),
        ("events_day.2025", &["acme:2025-02", "acme-2:2025-01"]),
    ]);
    gone.extend(seeded.iter().filter(|(coll, _)| dropped.contains(coll)));
    assert_gone_exactly(&store, &seeded, &gone).await;
    let expected: Vec<String> = before
        .into_iter()
        .filter(|c| !dropped.contains(&c.as_str()))
        .collect();
    assert_eq!(store.store.collections().await.unwrap(), expected);

    // Idempotent.
    assert_eq!(
        sweep(&store, &sites, &retention, now).await,
        SweepReport::default()
    );
    assert_gone_exactly(&store, &seeded, &gone).await;
    assert_eq!(store.store.collections().await.unwrap(), expected);
}

async fn sweep_drops_a_year_only_when_every_zone_has_left_it(backend: Backend) {
    let store = TestStore::new(backend).await;
    let acme = store.add_site("acme", KIRITIMATI).await;
    let acme2 = store.add_site("acme-2", PAGO_PAGO).await;
    let sites = [acme, acme2];
    let retention = Retention {
        five_minute: Some(Duration::hours(48)),
        hourly: Some(Duration::hours(48)),
        daily: Some(Duration::hours(48)),
        minutes: None,
    };
    let seeded = docs(&[
        ("events_5m.2025", &["acme-2:2025-12-31T23"]),
        (
            "events_5m.2026",
            &[
                "acme:2026-06-01T00",
                "acme:2026-12-31T23",
                "acme-2:2026-12-31T00",
                "acme-2:2026-12-31T01",
                "acme-2:2026-12-31T23",
            ],
        ),
        (
            "events_5m.2027",
            &[
                "acme:2027-01-01T01",
                "acme:2027-01-01T02",
                "acme-2:2027-01-01T00",
                "acme-2:2027-01-01T01",
            ],
        ),
        (
            "events_hour.2026",
            &["acme:2026-12-31", "acme-2:2026-12-30", "acme-2:2026-12-31"],
        ),
        (
            "events_hour.2027",
            &["acme:2027-01-01", "acme-2:2027-01-01"],
        ),
        (
            "events_day.2026",
            &["acme:2026-12", "acme-2:2026-11", "acme-2:2026-12"],
        ),
        ("events_day.2027", &["acme:2027-01"]),
    ]);
    seed(&store, &seeded).await;

    // now - 48 h = 2026-12-31 12:30 UTC: already 2027-01-01 02:30 for acme, still
    // 2026-12-31 01:30 for acme-2. The 2026 collections stay (acme-2 still has live documents
    // there); every acme document in them has expired.
    let now = utc(2027, 1, 2, 12, 30);
    let report = sweep(&store, &sites, &retention, now).await;
    assert_eq!(
        report,
        SweepReport {
            deleted: 8,
            dropped: vec!["events_5m.2025".into()],
        }
    );
    let mut gone = docs(&[
        ("events_5m.2025", &["acme-2:2025-12-31T23"]),
        (
            "events_5m.2026",
            &[
                "acme:2026-06-01T00",
                "acme:2026-12-31T23",
                "acme-2:2026-12-31T00",
            ],
        ),
        ("events_5m.2027", &["acme:2027-01-01T01"]),
        (
            "events_hour.2026",
            &["acme:2026-12-31", "acme-2:2026-12-30"],
        ),
        ("events_day.2026", &["acme:2026-12", "acme-2:2026-11"]),
    ]);
    assert_gone_exactly(&store, &seeded, &gone).await;
    assert_eq!(
        sweep(&store, &sites, &retention, now).await,
        SweepReport::default()
    );

    // A day later both zones are past New Year: the 2026 collections go whole.
    // now - 48 h = 2027-01-01 12:30 UTC: acme 2027-01-02 02:30, acme-2 2027-01-01 01:30.
    let now = utc(2027, 1, 3, 12, 30);
    let report = sweep(&store, &sites, &retention, now).await;
    let dropped = ["events_5m.2026", "events_day.2026", "events_hour.2026"];
    assert_eq!(
        report,
        SweepReport {
            deleted: 3,
            dropped: dropped.map(String::from).to_vec(),
        }
    );
    gone.extend(seeded.iter().filter(|(coll, _)| dropped.contains(coll)));
    gone.extend(docs(&[
        (
            "events_5m.2027",
            &["acme:2027-01-01T02", "acme-2:2027-01-01T00"],
        ),
        ("events_hour.2027", &["acme:2027-01-01"]),
    ]));
    assert_gone_exactly(&store, &seeded, &gone).await;
    assert_eq!(
        store.store.collections().await.unwrap(),
        [
            "events_5m.2027",
            "events_day.2027",
            "events_hour.2027",
            "sites"
        ]
    );
    assert_eq!(
        sweep(&store, &sites, &retention, now).await,
        SweepReport::default()
    );
}

async fn run_sweeps_at_start_with_the_defaults_and_stops_when_told(backend: Backend) {
    let store = TestStore::new(backend).await;
    let registry = Arc::new(SiteRegistry::default());
    registry.insert(store.add_site("acme", KIRITIMATI).await);
    let seeded = docs(&[
        (
            "events_5m.2026",
            &["acme:2026-03-01T00", "acme:2026-03-10T12"],
        ),
        ("events_hour.2025", &["acme:2025-12-31"]),
        ("events_day.2020", &["acme:2020-01"]),
    ]);
    seed(&store, &seeded).await;
    let clock = TestClock::at(utc(2026, 3, 10, 12, 0));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(retention::run(
        Arc::clone(&store.store),
        Arc::clone(&registry),
        Retention::default(),
        std::time::Duration::from_secs(3600),
        clock.clock(),
        stop_rx,
    ));

    let swept = async {
        while store
            .store
            .collections()
            .await
            .unwrap()
            .contains(&"events_hour.2025".to_owned())
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), swept)
        .await
        .expect("the first sweep runs at start");
    // Daily counters are kept forever by default.
    let gone = docs(&[
        ("events_5m.2026", &["acme:2026-03-01T00"]),
        ("events_hour.2025", &["acme:2025-12-31"]),
    ]);
    assert_gone_exactly(&store, &seeded, &gone).await;

    stop.send(true).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .expect("the loop returns when told to stop")
        .unwrap();
}

/// The live tier, at the defaults: each site's minute documents from before the local minute an
/// hour back are deleted, that minute and later ones kept; last year's collection, which every
/// site has left, is dropped; event documents within their retention stay.
async fn sweep_removes_live_minutes_older_than_an_hour(backend: Backend) {
    let store = TestStore::new(backend).await;
    let acme = store.add_site("acme", KIRITIMATI).await;
    let acme2 = store.add_site("acme-2", PAGO_PAGO).await;
    let sites = [acme, acme2];
    // now - 1 h = 2026-03-10 11:00 UTC: acme 2026-03-11T01:00, acme-2 2026-03-10T00:00.
    let now = utc(2026, 3, 10, 12, 0);
    let seeded = docs(&[
        ("live.2025", &["acme-2:2025-12-31T23:59"]),
        (
            "live.2026",
            &[
                "acme:2026-03-11T00:59",
                "acme:2026-03-11T01:00",
                "acme:2026-03-11T01:59",
                "acme-2:2026-03-09T23:59",
                "acme-2:2026-03-10T00:00",
                "acme-2:2026-03-10T00:30",
            ],
        ),
        ("events_5m.2026", &["acme:2026-03-11T01"]),
    ]);
    seed(&store, &seeded).await;
    let report = sweep(&store, &sites, &Retention::default(), now).await;
    assert_eq!(
        report,
        SweepReport {
            deleted: 2,
            dropped: vec!["live.2025".into()],
        }
    );
    let gone = docs(&[
        ("live.2025", &["acme-2:2025-12-31T23:59"]),
        (
            "live.2026",
            &["acme:2026-03-11T00:59", "acme-2:2026-03-09T23:59"],
        ),
    ]);
    assert_gone_exactly(&store, &seeded, &gone).await;
    // A minute later, the next minute of each site goes.
    let report = sweep(
        &store,
        &sites,
        &Retention::default(),
        now + Duration::minutes(1),
    )
    .await;
    assert_eq!(report.deleted, 2);
}
