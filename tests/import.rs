//! `tally import`, the real binary on a real store: an imported log makes exactly the counters
//! its hits make when sent live, bad lines are skipped and counted, a file is not imported twice
//! unless forced, and JSON logs (from stdin) work too.

mod support;

use chrono::{DateTime, TimeZone, Utc};
use mongodb::bson::{Bson, Document};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use support::*;

/// `tally` with only the settings of `store`.
fn tally(store: &TestStore) -> Command {
    tally_cli(store)
}

fn import(store: &TestStore, args: &[&str]) -> Output {
    tally(store)
        .arg("import")
        .args(args)
        .output()
        .expect("tally runs")
}

/// `tally import --site acme --format json -` with `log` on its standard input.
fn import_json_stdin(store: &TestStore, log: &str) -> Output {
    let mut child = tally(store)
        .args(["import", "--site", "acme", "--format", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(log.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The summary's `name  number` lines.
fn summary(out: &Output) -> HashMap<String, u64> {
    text(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let n = words.next_back()?.parse().ok()?;
            Some((words.collect::<Vec<_>>().join(" "), n))
        })
        .collect()
}

/// A small deterministic random source, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next() as usize % items.len()]
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// One generated log line, what the import should make of it, and the live hit it stands for.
struct Generated {
    line: String,
    outcome: &'static str,
    /// Query, User-Agent and instant of the pixel request that counts the same hit live.
    live: Option<(String, &'static str, DateTime<Utc>)>,
}

/// A day of a site in Europe/Berlin (UTC+1 in November), as nginx logs it.
fn generate(lines: usize) -> Vec<Generated> {
    let pages = [
        "/",
        "/about",
        "/blog/",
        "/blog/first-post.html",
        "/pricing?plan=pro",
        "/index.php?p=2",
        "/caf%C3%A9",
        "/docs/getting-started",
        "/search?q=a+b&utm_source=newsletter&utm_campaign=nov",
        // An XHTML page: a page by its media type (it was once skipped as an asset).
        "/projects/xdotool/xdotool.xhtml",
        "/releases/v1.2",
    ];
    let assets = [
        "/app.css",
        "/app.js",
        "/logo.png",
        "/fonts/a.woff2",
        "/t.js",
        // Feeds, by media type and by name, and a document.
        "/feed.xml",
        "/blog/index.rss",
        "/blog/feed/",
        "/paper.pdf",
        "/readyz",
    ];
    let referers = [
        "-",
        "-",
        "https://www.google.com/",
        "https://www.google.de/search?q=tally+analytics",
        "https://news.ycombinator.com/item?id=1",
        "https://acme.example/about",
        "https://duckduckgo.com/?q=privacy \"analytics\"",
    ];
    let agents = [
        CHROME_WIN,
        FIREFOX_MAC,
        SAFARI_IPHONE,
        SAFARI_IPAD,
        CHROME_ANDROID,
        EDGE_WIN,
        GOOGLEBOT,
    ];
    let addrs = [
        "203.0.113.7",
        "198.51.100.23",
        "2001:db8::1",
        "2a00:1450::200e",
    ];
    let statuses = [200, 200, 200, 200, 304, 301, 404, 500];
    let mut rng = Rng(42);
    let mut out = Vec::with_capacity(lines);
    // (page, address, User-Agent) seen: the import flags each one's first view (`pp=2`: every
    // line is of one day), as the snippet would.
    let mut first_views = std::collections::HashSet::new();
    for i in 0..lines {
        let second = rng.next() % 86_400;
        let local = Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap()
            + chrono::TimeDelta::seconds(second as i64);
        let at = local - chrono::TimeDelta::hours(1);
        let time = local.format("%d/%b/%Y:%H:%M:%S +0100");
        let addr = *rng.pick(&addrs);
        let ua = *rng.pick(&agents);
        let referer = *rng.pick(&referers);
        let status = *rng.pick(&statuses);
        let quoted_ref = referer.replace('"', "\\\"");
        if i % 500 == 7 {
            let line = match i % 3 {
                0 => "this is not a log line".to_owned(),
                1 => format!(r#"{addr} - - [{time}] "GET / HTTP/1.1" 200 512 "-"#),
                _ => format!(
                    r#"{addr} - - [23/Nov/2026:25:00:00 +0100] "GET / HTTP/1.1" 200 1 "-" "{ua}""#
                ),
            };
            out.push(Generated {
                line,
                outcome: "malformed",
                live: None,
            });
            continue;
        }
        let roll = rng.next() % 100;
        let (method, target, kind) = match roll {
            0..=34 => ("GET", rng.pick(&assets).to_string(), "asset"),
            35..=37 => ("POST", "/contact".to_owned(), "asset"),
            38..=39 => ("HEAD", "/".to_owned(), "asset"),
            40..=47 => {
                let site = if roll == 47 { "beta" } else { "acme" };
                let page = rng.pick(&pages);
                let q = format!(
                    "site={site}&url={}&ref={}&uh=1&ud=1&um={}&uy=1&u={}&sw=1920",
                    enc(&format!("https://acme.example{page}")),
                    if referer == "-" {
                        String::new()
                    } else {
                        enc(referer)
                    },
                    rng.next() % 2,
                    rng.next() % 2,
                );
                ("GET", format!("/t.gif?{q}"), "pixel")
            }
            _ => ("GET", rng.pick(&pages).to_string(), "page"),
        };
        let line = format!(
            r#"{addr} - - [{time}] "{method} {target} HTTP/1.1" {status} {} "{quoted_ref}" "{ua}""#,
            rng.next() % 20_000
        );
        let live_query = match kind {
            "page" => {
                let mut q = format!("site=acme&url={}", enc(&target));
                if referer != "-" {
                    q += &format!("&ref={}", enc(referer));
                }
                Some(q)
            }
            "pixel" => Some(target["/t.gif?".len()..].to_owned()),
            _ => None,
        };
        let outcome = match (&live_query, status) {
            (None, _) => "not_a_page",
            (_, s) if !(200..400).contains(&s) => "status",
            (_, _) if kind == "pixel" && target.contains("site=beta") => "other_site",
            (_, _) if ua == GOOGLEBOT => "bot",
            _ => "counted",
        };
        let live = match outcome {
            "counted" | "bot" => live_query.map(|mut q| {
                // The server's page: the path without its query (acme keeps no parameter).
                let page = target.split('?').next().unwrap_or_default().to_owned();
                if kind == "page" && first_views.insert((page, addr, ua)) {
                    q += "&pp=2";
                }
                (q, ua, at)
            }),
            _ => None,
        };
        out.push(Generated {
            line,
            outcome,
            live,
        });
    }
    out
}

fn write_log(dir: &Path, name: &str, lines: &[Generated]) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for g in lines {
        writeln!(file, "{}", g.line).unwrap();
    }
    file.flush().unwrap();
    path
}

/// Every leaf of a document by its dotted path, so documents compare field by field whatever
/// their key order.
fn flatten(doc: &Document) -> BTreeMap<String, Bson> {
    fn walk(doc: &Document, prefix: &str, out: &mut BTreeMap<String, Bson>) {
        // `_w` holds each writer's flush marks: which process wrote, not what was counted.
        for (k, v) in doc
            .iter()
            .filter(|(k, _)| !(prefix.is_empty() && *k == "_w"))
        {
            let path = format!("{prefix}{k}");
            match v {
                Bson::Document(d) => walk(d, &format!("{path}."), out),
                Bson::Int32(n) => {
                    out.insert(path, Bson::Int64(i64::from(*n)));
                }
                other => {
                    out.insert(path, other.clone());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(doc, "", &mut out);
    out
}

/// The documents an import of one November day writes.
const DOCS: [(&str, &str); 10] = [
    ("traffic.2026", "acme:2026-11"),
    ("traffic.2026", "acme:2026"),
    ("technology.2026", "acme:2026-11"),
    ("content.2026", "acme:2026-11"),
    ("content.2026", "acme:2026-11-23"),
    ("referrers.2026", "acme:2026-11"),
    ("referrers.2026", "acme:2026-11-23"),
    ("terms.2026", "acme:2026-11"),
    ("campaigns.2026", "acme:2026-11"),
    ("resolutions.2026", "acme:2026-11"),
];

async fn import_matches_live(backend: Backend) {
    let generated = generate(10_000);
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path(), "access.log", &generated);
    let log = log.to_str().unwrap();

    let imported = TestStore::new(backend).await;
    imported.add_site("acme", "Europe/Berlin").await;
    imported.add_site("beta", "Europe/Berlin").await;
    let out = import(&imported, &["--site", "acme", log]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = summary(&out);
    let count = |o: &str| generated.iter().filter(|g| g.outcome == o).count() as u64;
    assert_eq!(got["lines read"], 10_000, "{}", text(&out.stdout));
    assert_eq!(got["counted"], count("counted"));
    assert_eq!(got["skipped"], 10_000 - count("counted"));
    for reason in ["malformed", "not_a_page", "status", "bot", "other_site"] {
        assert_eq!(
            got[reason],
            count(reason),
            "{reason}: {}",
            text(&out.stdout)
        );
        assert!(count(reason) > 0, "the log has {reason} lines");
    }
    assert_eq!(got["rejected"], 0);
    assert!(count("counted") > 3_000);

    // The same hits, live, each at its line's time, into a store of their own.
    let live_store = TestStore::new(backend).await;
    live_store.add_site("acme", "Europe/Berlin").await;
    let clock = TestClock::at(utc(2026, 11, 23, 0, 0));
    let app = TestApp::spawn(live_store, test_settings(), clock.clock()).await;
    for g in &generated {
        if let Some((query, ua, at)) = &g.live {
            clock.set(*at);
            app.hit(query, ua).await;
        }
    }
    app.flush().await;
    // Each live hit comes from a new address (a replay from the log's few addresses would meet
    // the per-address rate limit), so live people differ from the log's: the people numbers the
    // import writes for its ended periods (`p`, `d.<DD>.p`) are left out here and checked
    // against the import's own sketches below.
    let no_people = |mut flat: BTreeMap<String, Bson>| {
        flat.retain(|k, _| k != "p" && !k.ends_with(".p"));
        flat
    };
    for (collection, id) in DOCS {
        let live = app.doc(collection, id).await;
        let live = live.unwrap_or_else(|| panic!("live {collection} {id}"));
        let got = imported.doc(collection, id).await;
        let got = got.unwrap_or_else(|| panic!("imported {collection} {id}"));
        assert_well_formed(&got);
        assert_eq!(
            no_people(flatten(&got)),
            no_people(flatten(&live)),
            "{collection} {id}"
        );
    }
    let people = imported
        .doc("people.2026", "acme:2026-11-23")
        .await
        .unwrap();
    let traffic = imported.doc("traffic.2026", "acme:2026-11").await.unwrap();
    let estimate = tally::reports::people::range::estimate(&people);
    assert!(estimate > 0);
    assert_eq!(get_path(&traffic, "d.23.p"), Some(estimate), "an ended day");
    let traffic = imported.doc("traffic.2026", "acme:2026-11").await.unwrap();
    let views = get_path(&traffic, "v").unwrap();
    assert_eq!(views as u64, count("counted"));
    assert!(
        get_path(&traffic, "u").unwrap_or(0) > 0,
        "pixel lines keep their flags"
    );
    // Page lines get page flags: each (page, address, User-Agent) once a day and month.
    let content = imported.doc("content.2026", "acme:2026-11").await.unwrap();
    let about = get_path(&content, "p./about.u").unwrap_or(0);
    assert!(
        (1..=24).contains(&about),
        "4 addresses × 6 browsers: {about}"
    );
    // Nothing of the other site's pixel lines reached acme, nor beta.
    assert!(imported.doc("traffic.2026", "beta:2026-11").await.is_none());
    // The live panel's minutes are not imported (the live app wrote them).
    let collections = imported.store.collections().await.unwrap();
    assert!(
        collections.iter().all(|c| !c.starts_with("live.")),
        "{collections:?}"
    );
    assert!(app
        .store
        .store
        .collections()
        .await
        .unwrap()
        .contains(&"live.2026".to_owned()));

    // The same file again is refused, and nothing changes.
    let out = import(&imported, &["--site", "acme", log]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("already imported") && err.contains("--force"),
        "{err}"
    );
    let traffic = imported.doc("traffic.2026", "acme:2026-11").await.unwrap();
    assert_eq!(get_path(&traffic, "v"), Some(views));

    // Forced, it counts again.
    let out = import(&imported, &["--site", "acme", "--force", log]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let twice = |doc: &Document| {
        flatten(doc)
            .into_iter()
            .map(|(k, v)| match v {
                Bson::Int64(n) => (k, Bson::Int64(2 * n)),
                other => (k, other),
            })
            .collect::<BTreeMap<_, _>>()
    };
    for (collection, id) in [
        ("traffic.2026", "acme:2026-11"),
        ("content.2026", "acme:2026-11-23"),
        ("technology.2026", "acme:2026-11"),
    ] {
        let live = app.doc(collection, id).await.unwrap();
        let got = imported.doc(collection, id).await.unwrap();
        // The same visitors again: the people numbers stay (a sketch only grows).
        assert_eq!(
            no_people(flatten(&got)),
            no_people(twice(&live)),
            "{collection} {id} after --force"
        );
    }
    let traffic = imported.doc("traffic.2026", "acme:2026-11").await.unwrap();
    assert_eq!(get_path(&traffic, "d.23.p"), Some(estimate));
    let (result, _) = app.stop().await;
    result.unwrap();
}

async fn json_from_stdin(backend: Backend) {
    let store = TestStore::new(backend).await;
    store.add_site("acme", "UTC").await;
    let log = [
        r#"{"time":"2026-11-23T14:05:07+00:00","remote_addr":"203.0.113.7","request":"GET /about HTTP/1.1","status":"200","http_referer":"https://www.google.com/","http_user_agent":"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"}"#,
        r#"{"time_local":"23/Nov/2026:15:00:00 +0000","remote_addr":"2001:db8::1","method":"GET","request_uri":"/about","status":304,"http_referer":"","http_user_agent":"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"}"#,
        r#"{"time":"2026-11-23T16:00:00Z","remote_addr":"203.0.113.7","request":"GET /app.css HTTP/1.1","status":200,"http_referer":"","http_user_agent":"x"}"#,
        r#"{"time":"not a time","request":"GET / HTTP/1.1","status":200}"#,
    ]
    .join("\n");
    let out = import_json_stdin(&store, &log);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = summary(&out);
    assert_eq!(
        (
            got["lines read"],
            got["counted"],
            got["malformed"],
            got["not_a_page"]
        ),
        (4, 2, 1, 1),
        "{}",
        text(&out.stdout)
    );
    let traffic = store.doc("traffic.2026", "acme:2026-11").await.unwrap();
    assert_count(&traffic, "v", 2);
    let content = store.doc("content.2026", "acme:2026-11-23").await.unwrap();
    assert_count(&content, "p./about.v", 2);

    // stdin has no fingerprint: the same lines again are counted again.
    let again = import_json_stdin(&store, &log);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let traffic = store.doc("traffic.2026", "acme:2026-11").await.unwrap();
    assert_count(&traffic, "v", 4);
}

async fn unknown_site_is_refused(backend: Backend) {
    let store = TestStore::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path(), "a.log", &generate(10));
    let out = import(&store, &["--site", "nope", log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no site"),
        "{}",
        text(&out.stderr)
    );
}

both_stores!(
    import_matches_live,
    json_from_stdin,
    unknown_site_is_refused
);
