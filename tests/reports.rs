//! The Gaug.es reports through real HTTP: content, referrers, search terms, campaigns,
//! resolutions and locations, read back from the documents on both stores.

mod support;

use support::*;

use mongodb::bson::{doc, Document};
use std::sync::Arc;
use tally::reports::campaigns::Campaigns;
use tally::reports::content::Content;
use tally::reports::referrers::Referrers;
use tally::reports::terms::Terms;
use tally::reports::{Ranked, Report};
use tally::settings::ServeSettings;
use tally::track::geo::GeoSource;

/// 2026-11-23 14:00 in Europe/Berlin (13:00 UTC).
fn berlin_afternoon() -> TestClock {
    TestClock::at(utc(2026, 11, 23, 13, 0))
}

async fn app_in_berlin(backend: Backend, settings: ServeSettings) -> (TestApp, TestClock) {
    let store = TestStore::new(backend).await;
    store.add_site("acme", "Europe/Berlin").await;
    let clock = berlin_afternoon();
    let app = TestApp::spawn(store, settings, clock.clock()).await;
    (app, clock)
}

fn q(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::from("site=acme&"));
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// `(text, views)` of a ranked list.
fn pairs(r: &Ranked) -> Vec<(String, i64)> {
    r.entries.iter().map(|e| (e.key.clone(), e.views)).collect()
}

fn views(r: &Ranked, key: &str) -> i64 {
    r.entries
        .iter()
        .find(|e| e.key == key)
        .map_or(0, |e| e.views)
}

async fn content(app: &TestApp, period: &str) -> Document {
    app.doc("content.2026", &format!("acme:{period}"))
        .await
        .unwrap_or_else(|| panic!("no content document for {period}"))
}

async fn pages_per_day_and_month_with_their_latest_title(backend: Backend) {
    let (app, clock) = app_in_berlin(backend, test_settings()).await;
    let page = |path: &str, title: &str| {
        q(&[
            ("url", &format!("https://acme.example{path}")),
            ("title", title),
        ])
    };
    for _ in 0..3 {
        app.hit(&page("/", "Home"), CHROME_WIN).await;
    }
    app.hit(&page("/blog/hello?utm_source=x#top", "Hello"), CHROME_WIN)
        .await;
    app.hit(&page("/blog/hello", "Hello, world"), FIREFOX_MAC)
        .await;
    // Without a title, the title seen before stays.
    app.hit(&q(&[("url", "https://acme.example/")]), CHROME_WIN)
        .await;
    // A path-only URL (an <img> pixel written by hand) is a page too.
    app.hit("site=acme&url=%2Fabout", CHROME_WIN).await;
    app.flush().await;
    // The next day, in Berlin: a new day document, the same month document.
    clock.set(utc(2026, 11, 23, 23, 30)); // 00:30 on the 24th in Berlin
    app.hit(&page("/blog/hello", "Hello again"), CHROME_WIN)
        .await;
    app.flush().await;

    let month = Content::read(&content(&app, "2026-11").await).pages;
    assert_eq!(
        pairs(&month),
        vec![
            ("/".to_owned(), 4),
            ("/blog/hello".to_owned(), 3),
            ("/about".to_owned(), 1)
        ]
    );
    let title = |r: &Ranked, key: &str| {
        r.entries
            .iter()
            .find(|e| e.key == key)
            .and_then(|e| e.title.clone())
    };
    assert_eq!(title(&month, "/").as_deref(), Some("Home"));
    assert_eq!(title(&month, "/blog/hello").as_deref(), Some("Hello again"));
    assert_eq!(title(&month, "/about"), None);

    let day23 = Content::read(&content(&app, "2026-11-23").await).pages;
    assert_eq!(views(&day23, "/blog/hello"), 2);
    assert_eq!(
        title(&day23, "/blog/hello").as_deref(),
        Some("Hello, world")
    );
    let day24 = Content::read(&content(&app, "2026-11-24").await).pages;
    assert_eq!(pairs(&day24), vec![("/blog/hello".to_owned(), 1)]);
    // Days add up to the month, key by key.
    for e in &month.entries {
        assert_eq!(views(&day23, &e.key) + views(&day24, &e.key), e.views);
    }
    for doc in [
        content(&app, "2026-11").await,
        content(&app, "2026-11-23").await,
    ] {
        assert_well_formed(&doc);
    }
}

async fn a_site_can_keep_named_query_parameters(backend: Backend) {
    let store = TestStore::new(backend).await;
    let mut site = store.add_site("acme", "Europe/Berlin").await;
    site.keep_params = vec!["id".into()];
    store.store.update_site(&site).await.unwrap();
    let clock = berlin_afternoon();
    let app = TestApp::spawn(store, test_settings(), clock.clock()).await;
    for url in [
        "https://acme.example/item?id=1&utm_source=x",
        "https://acme.example/item?id=1",
        "https://acme.example/item?id=2",
        "https://acme.example/item?session=abc",
    ] {
        app.hit(&q(&[("url", url)]), CHROME_WIN).await;
    }
    app.flush().await;
    let month = Content::read(&content(&app, "2026-11").await).pages;
    assert_eq!(
        pairs(&month),
        vec![
            ("/item?id=1".to_owned(), 2),
            ("/item".to_owned(), 1),
            ("/item?id=2".to_owned(), 1)
        ]
    );
}

async fn referrers_count_external_hosts_and_links_only(backend: Backend) {
    let (app, _clock) = app_in_berlin(backend, test_settings()).await;
    let from = |referrer: &str| {
        q(&[
            ("url", "https://acme.example/blog/hello"),
            ("ref", referrer),
        ])
    };
    for r in [
        "https://news.ycombinator.com/item?id=4242",
        "https://news.ycombinator.com/item?id=1",
        "https://news.ycombinator.com/",
        "https://www.example.org/links.html",
        "https://example.org/links.html",
        "http://localhost:3000/dev",
        // internal: the site's own host, with or without www.
        "https://acme.example/",
        "https://www.acme.example/blog",
        // not a URL: ignored
        "not a url",
    ] {
        app.hit(&from(r), CHROME_WIN).await;
    }
    app.hit(&q(&[("url", "https://acme.example/")]), CHROME_WIN)
        .await; // direct
    app.flush().await;
    for period in ["2026-11", "2026-11-23"] {
        let doc = app
            .doc("referrers.2026", &format!("acme:{period}"))
            .await
            .unwrap();
        assert_well_formed(&doc);
        let view = Referrers::read(&doc);
        assert_eq!(
            pairs(&view.hosts),
            vec![
                ("news.ycombinator.com".to_owned(), 3),
                ("example.org".to_owned(), 2),
                ("localhost:3000".to_owned(), 1)
            ],
            "{period}"
        );
        assert_eq!(
            pairs(&view.links),
            vec![
                ("example.org/links.html".to_owned(), 2),
                ("news.ycombinator.com/item".to_owned(), 2),
                ("localhost:3000/dev".to_owned(), 1),
                ("news.ycombinator.com/".to_owned(), 1),
            ],
            "{period}"
        );
    }
    // What a MongoDB client sees: dots in hosts read as fullwidth dots.
    let raw = app.doc("referrers.2026", "acme:2026-11").await.unwrap();
    assert_count(&raw, "h.news．ycombinator．com", 3);
}

async fn search_engines_and_terms_from_real_referrers(backend: Backend) {
    let (app, _clock) = app_in_berlin(backend, test_settings()).await;
    for r in [
        "https://www.google.com/search?q=Rust+Analytics&oq=rust&sourceid=chrome&ie=UTF-8",
        "https://www.google.co.uk/search?q=rust%20analytics",
        "https://www.google.de/", // Google keeps the term to itself nowadays
        "https://www.bing.com/search?q=self-hosted+analytics&form=QBLH",
        "https://duckduckgo.com/?q=tally+%C3%A9t%C3%A9&t=h_",
        "https://www.ecosia.org/search?method=index&q=a.b%24c",
        "https://news.ycombinator.com/item?id=1", // a referrer, not a search engine
    ] {
        app.hit(
            &q(&[("url", "https://acme.example/"), ("ref", r)]),
            CHROME_WIN,
        )
        .await;
    }
    app.flush().await;
    let doc = app.doc("terms.2026", "acme:2026-11").await.unwrap();
    assert_well_formed(&doc);
    let view = Terms::read(&doc);
    assert_eq!(
        view.engines,
        vec![
            ("google".to_owned(), 3),
            ("bing".to_owned(), 1),
            ("duckduckgo".to_owned(), 1),
            ("ecosia".to_owned(), 1)
        ]
    );
    assert_eq!(
        pairs(&view.terms),
        vec![
            ("rust analytics".to_owned(), 2),
            ("a.b$c".to_owned(), 1),
            ("self-hosted analytics".to_owned(), 1),
            ("tally été".to_owned(), 1),
        ]
    );
    // Search engines are referrers too.
    let refs = Referrers::read(&app.doc("referrers.2026", "acme:2026-11").await.unwrap());
    assert_eq!(views(&refs.hosts, "google.com"), 1);
    assert_eq!(views(&refs.hosts, "google.co.uk"), 1);
}

async fn campaigns_from_utm_parameters(backend: Backend) {
    let (app, _clock) = app_in_berlin(backend, test_settings()).await;
    for url in [
        "https://acme.example/?utm_source=newsletter&utm_medium=email&utm_campaign=black-friday",
        "https://acme.example/pricing?utm_source=newsletter&utm_medium=email&utm_campaign=black-friday",
        "https://acme.example/?utm_source=twitter&utm_medium=social",
        "https://acme.example/?ref=producthunt",
        "https://acme.example/?source=hn&utm_campaign=launch",
        "https://acme.example/?utm_campaign=%24where.x",
        "https://acme.example/", // none
    ] {
        app.hit(&q(&[("url", url)]), CHROME_WIN).await;
    }
    app.flush().await;
    let doc = app.doc("campaigns.2026", "acme:2026-11").await.unwrap();
    assert_well_formed(&doc);
    let view = Campaigns::read(&doc);
    assert_eq!(
        pairs(&view.sources),
        vec![
            ("newsletter".to_owned(), 2),
            ("hn".to_owned(), 1),
            ("producthunt".to_owned(), 1),
            ("twitter".to_owned(), 1)
        ]
    );
    assert_eq!(
        pairs(&view.mediums),
        vec![("email".to_owned(), 2), ("social".to_owned(), 1)]
    );
    assert_eq!(
        pairs(&view.campaigns),
        vec![
            ("black-friday".to_owned(), 2),
            ("$where.x".to_owned(), 1),
            ("launch".to_owned(), 1)
        ]
    );
}

async fn resolutions_fall_in_fixed_ranges_at_their_edges(backend: Backend) {
    let (app, _clock) = app_in_berlin(backend, test_settings()).await;
    for (sw, bw, bh) in [
        ("319", "320", "479"),
        ("320", "479", "480"),
        ("1366", "1280", "768"),
        ("1999", "1999", "1023"),
        ("2000", "2000", "1024"),
        ("7680", "abc", "-1"),
        ("100001", "", "900"),
    ] {
        app.hit(&q(&[("sw", sw), ("bw", bw), ("bh", bh)]), CHROME_WIN)
            .await;
    }
    app.hit("site=acme", CHROME_WIN).await; // no sizes at all
    app.flush().await;
    let doc = app.doc("resolutions.2026", "acme:2026-11").await.unwrap();
    assert_well_formed(&doc);
    for (path, n) in [
        ("s.unknown", 3),
        ("s.320", 1),
        ("s.1280", 1),
        ("s.1600", 1),
        ("s.2000+", 2),
        ("w.320", 2),
        ("w.1280", 1),
        ("w.1600", 1),
        ("w.2000+", 1),
        ("w.unknown", 3),
        ("h.unknown", 3),
        ("h.480", 1),
        ("h.768", 1),
        ("h.900", 2),
        ("h.1024+", 1),
    ] {
        assert_count(&doc, path, n);
    }
}

/// Where `scripts/test.sh` unpacked the country database (the built-in one, as a file).
fn geoip_db() -> std::path::PathBuf {
    std::env::var_os("TEST_GEOIP_DB")
        .expect("TEST_GEOIP_DB is not set: run the tests with scripts/test.sh")
        .into()
}

/// With no setting: the built-in country database.
async fn countries_without_setup(backend: Backend) {
    // The default trust: the test client is on loopback, a proxy, and names the visitors.
    let (app, _clock) = app_in_berlin(backend, test_settings()).await;
    let xff = |ip: &'static str| [("X-Forwarded-For", ip)];
    app.hit_with("site=acme", CHROME_WIN, &xff("8.8.8.8")).await;
    app.hit_with("site=acme", CHROME_WIN, &xff("2001:4860:4860::8888"))
        .await;
    app.hit_with("site=acme", CHROME_WIN, &xff("1.1.1.1")).await;
    app.hit("site=acme", CHROME_WIN).await; // a visitor in 198.18.0.0/15: no country
    app.flush().await;
    let doc = app.doc("locations.2026", "acme:2026-11").await.unwrap();
    assert_well_formed(&doc);
    assert_count(&doc, "c.US", 2);
    assert_count(&doc, "c.unknown", 1);
    let countries = doc.get_document("c").unwrap().keys();
    let counted: i64 = countries
        .map(|k| get_path(&doc, &format!("c.{k}")).unwrap())
        .sum();
    assert_eq!(counted, 4, "1.1.1.1 has a country too: {doc}");
}

/// `--geoip-db FILE`: the file `scripts/geoip.sh install` unpacks.
async fn countries_from_a_database_file(backend: Backend) {
    // The default trust: the test client is on loopback, a proxy, and names the visitors.
    let settings = ServeSettings {
        geoip_db: GeoSource::File(geoip_db()),
        ..test_settings()
    };
    let (app, _clock) = app_in_berlin(backend, settings).await;
    let xff = |ip: &'static str| [("X-Forwarded-For", ip)];
    app.hit_with("site=acme", CHROME_WIN, &xff("8.8.8.8")).await;
    app.hit_with("site=acme", CHROME_WIN, &xff("203.0.113.9, 8.8.4.4"))
        .await;
    app.hit_with("site=acme", CHROME_WIN, &xff("10.1.2.3"))
        .await;
    app.hit_with(
        "site=acme",
        CHROME_WIN,
        &[("Forwarded", "for=\"[2001:4860:4860::8888]:443\"")],
    )
    .await;
    app.hit("site=acme", CHROME_WIN).await; // a visitor in 198.18.0.0/15: no country
    app.flush().await;
    let doc = app.doc("locations.2026", "acme:2026-11").await.unwrap();
    assert_well_formed(&doc);
    assert_count(&doc, "c.US", 3);
    assert_count(&doc, "c.unknown", 2);
}

async fn without_trust_the_forwarding_headers_are_ignored(backend: Backend) {
    let settings = ServeSettings {
        trust_proxy: tally::track::client::TrustProxy::None,
        ..test_settings()
    };
    let (app, _clock) = app_in_berlin(backend, settings).await;
    app.hit_with("site=acme", CHROME_WIN, &[("X-Forwarded-For", "8.8.8.8")])
        .await;
    app.flush().await;
    let doc = app.doc("locations.2026", "acme:2026-11").await.unwrap();
    assert_count(&doc, "c.unknown", 1);
    assert!(get_path(&doc, "c.US").is_none());
}

async fn with_geoip_db_none_there_is_no_locations_report(backend: Backend) {
    let settings = ServeSettings {
        geoip_db: GeoSource::None,
        ..test_settings()
    };
    let (app, _clock) = app_in_berlin(backend, settings).await;
    app.hit_with("site=acme", CHROME_WIN, &[("X-Forwarded-For", "8.8.8.8")])
        .await;
    app.flush().await;
    assert!(app.doc("locations.2026", "acme:2026-11").await.is_none());
    assert!(app.doc("traffic.2026", "acme:2026-11").await.is_some());
}

/// Sends `queries` with a few connections at once, each from a visitor of its own.
async fn send_all(app: &TestApp, queries: Vec<String>) {
    let queries: Arc<Vec<(String, String)>> = Arc::new(
        queries
            .into_iter()
            .map(|q| (q, app.next_visitor()))
            .collect(),
    );
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (http, address, queries) =
            (app.http.clone(), app.address.clone(), Arc::clone(&queries));
        tasks.push(tokio::spawn(async move {
            for (q, visitor) in queries.iter().skip(worker).step_by(8) {
                let r = http
                    .get(format!("{address}/t.gif?{q}"))
                    .header("User-Agent", CHROME_WIN)
                    .header("X-Forwarded-For", visitor)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// 5,000 distinct paths in one day: the documents stay within their cap, the pages that matter
/// are named, the rest is in `(other)`, and days and month agree key by key.
async fn five_thousand_paths_stay_within_the_document_bounds(backend: Backend) {
    let (app, clock) = app_in_berlin(backend, test_settings()).await;
    let url = |path: String| q(&[("url", &format!("https://acme.example{path}"))]);
    // 50 popular pages (10 views each, interleaved) among 5,000 pages seen once.
    let mut queries: Vec<String> = (0..5000).map(|i| url(format!("/long-tail/{i}"))).collect();
    for round in 0..10 {
        for p in 0..50 {
            queries.insert(
                (round * 500 + p * 9) % queries.len(),
                url(format!("/popular/{p}")),
            );
        }
    }
    send_all(&app, queries).await;
    app.flush().await;
    // A second day: known pages are still named, new ones go to (other) (the month is full).
    clock.set(utc(2026, 11, 24, 12, 0));
    send_all(
        &app,
        vec![url("/popular/0".into()), url("/brand-new".into())],
    )
    .await;
    app.flush().await;

    let month_doc = content(&app, "2026-11").await;
    assert_well_formed(&month_doc);
    let month = Content::read(&month_doc).pages;
    assert_eq!(get_path(&month_doc, "n"), Some(1000));
    assert_eq!(month.entries.len(), 1000);
    assert_eq!(month.total(), 5000 + 500 + 2);
    // The top 50 are exactly the popular pages.
    let top: Vec<&str> = month.top(50).iter().map(|e| e.key.as_str()).collect();
    for p in 0..50 {
        assert!(top.contains(&format!("/popular/{p}").as_str()), "{top:?}");
    }
    assert_eq!(views(&month, "/popular/0"), 11);
    assert_eq!(views(&month, "/brand-new"), 0);
    assert_eq!(month.other, 5000 + 2 - 950 - 1);
    let bytes = mongodb::bson::to_vec(&month_doc).unwrap().len();
    eprintln!("content month document with 1000 named pages: {bytes} bytes of BSON");
    assert!(bytes < 100_000, "the month document is {bytes} bytes");

    let day23 = Content::read(&content(&app, "2026-11-23").await).pages;
    let day24 = Content::read(&content(&app, "2026-11-24").await).pages;
    assert_eq!(pairs(&day24), vec![("/popular/0".to_owned(), 1)]);
    assert_eq!(day24.other, 1);
    for e in &month.entries {
        assert_eq!(
            views(&day23, &e.key) + views(&day24, &e.key),
            e.views,
            "{}",
            e.key
        );
    }
    assert_eq!(day23.other + day24.other, month.other);
    assert_eq!(day23.entries.len(), 1000);
}

/// Keys from strangers (dots, dollars, NUL, 4 KB, right-to-left text, emoji) are escaped on
/// the way in and read back as they were sent.
async fn hostile_keys_round_trip(backend: Backend) {
    let (app, _clock) = app_in_berlin(backend, test_settings()).await;
    let long = format!("/{}", "x".repeat(4096));
    // (the path as sent in the page URL, the page it is)
    let paths = [
        ("/a.b", "/a.b"),
        ("/$where", "/$where"),
        ("/nul%00byte", "/nul\u{0}byte"),
        ("/مرحبا/שלום", "/مرحبا/שלום"),
        ("/🎉/emoji", "/🎉/emoji"),
        ("/100%25", "/100%"),
        ("/(other)", "/(other)"),
        ("/x\u{FF0E}y", "/x\u{FF0E}y"),
        (long.as_str(), ""),
    ];
    for (sent, _) in paths {
        app.hit(
            &q(&[
                ("url", &format!("https://acme.example{sent}")),
                ("title", "$set.\u{202E}evil"),
                ("ref", "https://$x.example/a.b"),
            ]),
            CHROME_WIN,
        )
        .await;
    }
    app.flush().await;
    let doc = content(&app, "2026-11").await;
    assert_well_formed(&doc);
    let pages = Content::read(&doc).pages;
    assert_eq!(pages.other, 0);
    for (_, page) in &paths[..8] {
        assert_eq!(views(&pages, page), 1, "{page:?} in {:?}", pairs(&pages));
    }
    let cut = pages
        .entries
        .iter()
        .find(|e| e.truncated)
        .expect("the long path is cut");
    assert!(long.starts_with(&cut.key) && cut.key.len() > 150);
    assert!(pages
        .entries
        .iter()
        .all(|e| e.title.as_deref() == Some("$set.\u{202E}evil")));
}

/// The cap holds in the store against another tally process: the guard on `n` refuses an
/// update admitting keys to a full document, and the refused keys end up in `(other)`.
async fn two_processes_cannot_overfill_a_document(backend: Backend) {
    let store = TestStore::new(backend).await;
    store.add_site("acme", "Europe/Berlin").await;
    let settings = ServeSettings {
        max_keys: 100,
        ..test_settings()
    };
    let clock = berlin_afternoon();
    let other = store.another_handle().await;
    let a = TestApp::spawn(store, settings.clone(), clock.clock()).await;
    let b = TestApp::spawn(other, settings, clock.clock()).await;
    let url = |p: String| q(&[("url", &format!("https://acme.example{p}"))]);
    send_all(&a, (0..80).map(|i| url(format!("/a/{i}"))).collect()).await;
    a.flush().await; // a knows the document: 80 keys
    send_all(&b, (0..80).map(|i| url(format!("/b/{i}"))).collect()).await;
    b.flush().await; // b reads it (80), admits 20: full
    send_all(&a, (0..30).map(|i| url(format!("/c/{i}"))).collect()).await;
    // a still believes there is room for 20: the store refuses, a reads the document again...
    let first = a.handle.flush().await;
    assert_eq!(first.failed, 1, "{first:?}");
    // ...and the next flush puts the 30 in (other).
    a.flush().await;

    let doc = a.doc("content.2026", "acme:2026-11").await.unwrap();
    let pages = Content::read(&doc).pages;
    assert_eq!(get_path(&doc, "n"), Some(100));
    assert_eq!(pages.entries.len(), 100);
    assert_eq!(pages.total(), 190);
    assert_eq!(pages.other, 190 - 100);
    assert!(pages.entries.iter().all(|e| !e.key.starts_with("/c/")));
}

/// Store-level check of the guard both stores implement, on a document written by hand.
async fn the_guard_refuses_a_full_document_and_changes_nothing(backend: Backend) {
    use tally::field::FieldKey;
    use tally::store::{Batch, CollectionBatch, DocUpdate, Guard};
    let store = TestStore::new(backend).await;
    let update = |max: i64| Batch {
        collections: vec![CollectionBatch {
            collection: "content.2026".into(),
            docs: vec![DocUpdate {
                id: "acme:2026-11".into(),
                inc: vec![
                    (FieldKey::parse("n").unwrap(), 1),
                    (FieldKey::parse("p./new.v").unwrap(), 1),
                ],
                set: vec![(FieldKey::parse("p./new.t").unwrap(), "New".into())],
                max: Vec::new(),
                guard: Some(Guard {
                    field: FieldKey::parse("n").unwrap(),
                    max,
                }),
                mark: None,
                unset: Vec::new(),
            }],
        }],
    };
    // A missing document is created.
    assert!(store.store.apply(&update(9)).await.failed.is_empty());
    // n = 1 ≤ 9: applied.
    assert!(store.store.apply(&update(9)).await.failed.is_empty());
    let before = store.doc("content.2026", "acme:2026-11").await.unwrap();
    assert_eq!(
        before,
        doc! {"_id": "acme:2026-11", "n": 2_i64, "p": {"/new": {"v": 2_i64, "t": "New"}}}
    );
    // n = 2 > 1: refused, nothing changes.
    let applied = store.store.apply(&update(1)).await;
    assert_eq!(applied.failed.len(), 1, "{applied:?}");
    assert_eq!(
        store.doc("content.2026", "acme:2026-11").await.unwrap(),
        before
    );
}

both_stores!(
    pages_per_day_and_month_with_their_latest_title,
    a_site_can_keep_named_query_parameters,
    referrers_count_external_hosts_and_links_only,
    search_engines_and_terms_from_real_referrers,
    campaigns_from_utm_parameters,
    resolutions_fall_in_fixed_ranges_at_their_edges,
    countries_without_setup,
    countries_from_a_database_file,
    without_trust_the_forwarding_headers_are_ignored,
    with_geoip_db_none_there_is_no_locations_report,
    five_thousand_paths_stay_within_the_document_bounds,
    hostile_keys_round_trip,
    two_processes_cannot_overfill_a_document,
    the_guard_refuses_a_full_document_and_changes_nothing,
);
