//! tally behind the real nginx, configured by the recipe users install
//! (`deploy/nginx/tally.conf`), over plain HTTP and HTTPS, with default settings: every request
//! answered and counted, visitors' addresses (set by the test client in `X-Forwarded-For`, as a
//! browser's connection would give them to nginx) in the locations report, an office behind one
//! address counted whole, a flood from one browser cut to its bound, event batches up to tally's
//! body limit passed on, and the live stream passed on unbuffered.

mod support;

use mongodb::bson::Document;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::load::{self, Counts, Kind, Mix, Target};
use support::nginx::{self, Balance, Nginx};
use support::*;
use tally::settings::ServeSettings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every test runs at this instant (the sites are in UTC).
fn now() -> chrono::DateTime<chrono::Utc> {
    utc(2026, 11, 23, 12, 0)
}

/// The built-in country database as a file (`scripts/geoip.sh install`), to work out each
/// visitor's expected country.
fn geoip_db() -> std::path::PathBuf {
    std::env::var_os("TEST_GEOIP_DB")
        .expect("TEST_GEOIP_DB is not set: run the tests with scripts/test.sh")
        .into()
}

/// The test settings: the defaults, so the built-in country database. Nothing about the proxy:
/// tally finds the visitor's address behind it by default.
fn settings() -> ServeSettings {
    test_settings()
}

/// tally with the sites of `mix` on `backend`, at [`now`], and nginx in front of it.
async fn behind_nginx(backend: Backend, mix: Mix) -> (TestApp, Nginx) {
    let store = TestStore::new(backend).await;
    for site in mix.site_ids() {
        store.add_site(&site, "UTC").await;
    }
    let app = TestApp::spawn(store, settings(), TestClock::at(now()).clock()).await;
    let nginx = Nginx::start(&[port(&app)]).await;
    (app, nginx)
}

fn port(app: &TestApp) -> u16 {
    app.address.rsplit(':').next().unwrap().parse().unwrap()
}

/// The docs show the recipes whole: the nginx one the suite runs, and the Caddy one.
#[test]
fn the_docs_carry_the_recipes_verbatim() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("docs/operations.md")).unwrap();
    for (file, language) in [
        (nginx::RECIPE, "nginx"),
        ("deploy/caddy/Caddyfile", "caddy"),
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let block = format!("```{language}\n{text}```\n");
        assert!(
            docs.contains(&block),
            "docs/operations.md must show {file} verbatim in a ```{language} block"
        );
    }
}

/// The harness changes only addresses, ports and certificate paths, and refuses a recipe that
/// lost a line it changes.
#[test]
fn the_harness_changes_only_addresses_ports_and_certificates() {
    let recipe = nginx::recipe();
    let (cert, key) = (
        std::path::Path::new("/t/cert.pem"),
        std::path::Path::new("/t/key.pem"),
    );
    let ports = nginx::Ports {
        upstreams: &[9001, 9002],
        balance: Balance::Site,
        http: 9080,
        https: 9443,
        cert,
        key,
    };
    let configured = nginx::configure(&recipe, &ports);
    let changed: Vec<_> = configured
        .lines()
        .filter(|l| !recipe.lines().any(|r| r == *l))
        .collect();
    assert_eq!(
        changed,
        [
            "    hash $arg_site consistent;",
            "    server 127.0.0.1:9001;",
            "    server 127.0.0.1:9002;",
            "    listen 127.0.0.1:9080;",
            "    listen [::1]:9080;",
            "    listen 127.0.0.1:9443 ssl http2;",
            "    listen [::1]:9443 ssl http2;",
            "    ssl_certificate /t/cert.pem;",
            "    ssl_certificate_key /t/key.pem;",
        ]
    );
    for line in [
        "    server 127.0.0.1:8080;\n",
        "    listen 443 ssl http2;\n",
        "    ssl_certificate_key /etc/ssl/tally/key.pem;\n",
    ] {
        let without = recipe.replacen(line, "", 1);
        let refused = std::panic::catch_unwind(|| nginx::configure(&without, &ports));
        assert!(refused.is_err(), "a recipe without {line:?} is refused");
    }
}

/// A stand-in for tally that keeps the head of every request nginx sends it, with the number
/// of the connection it came on; it answers 204, except the live stream's path, where it
/// starts a Server-Sent Events response without `X-Accel-Buffering` (unlike tally), sends one
/// event and keeps the response open.
async fn recording_upstream() -> (u16, Arc<std::sync::Mutex<Vec<(usize, String)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = Arc::clone(&heads);
    tokio::spawn(async move {
        for connection in 0.. {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let heads = Arc::clone(&kept);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let Some(head) = read_head(&mut socket, &mut buf).await else {
                        return;
                    };
                    let live = head.contains("/live ");
                    heads.lock().unwrap().push((connection, head));
                    if live {
                        let event = "event: snapshot\ndata: {}\n\n";
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                             Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{event}\r\n",
                            event.len()
                        );
                        let _ = socket.write_all(answer.as_bytes()).await;
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    }
                    let answer = b"HTTP/1.1 204 No Content\r\n\r\n";
                    if socket.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, heads)
}

/// Reads up to the end of a head (no body is expected), and returns it; `None` at the end.
async fn read_head(socket: &mut (impl AsyncReadExt + Unpin), buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..at + 4]).into_owned();
            buf.drain(..at + 4);
            return Some(head);
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// What the recipe makes nginx send tally: HTTP/1.1 on kept-alive connections (two requests
/// from one browser connection reach tally on one connection), no `Connection: close`, the
/// browser's `Host`, the address nginx saw appended to `X-Forwarded-For`, and the scheme.
/// And the live stream's first event passes at once, even from an upstream that does not send
/// `X-Accel-Buffering: no`. (nginx 1.22 passes it at once without `proxy_buffering off` too:
/// this part checks the path end to end, not that line.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recipe_forwards_what_tally_needs() {
    let (upstream, heads) = recording_upstream().await;
    let nginx = Nginx::start(&[upstream]).await;
    let mut browser = nginx.https_target().connect().await.unwrap();
    let mut buf = Vec::new();
    for _ in 0..2 {
        browser
            .write_all(
                b"GET /t.gif?site=s0 HTTP/1.1\r\nHost: tally.test\r\n\
                  X-Forwarded-For: 81.2.69.160\r\n\r\n",
            )
            .await
            .unwrap();
        let answer = read_head(&mut browser, &mut buf).await.expect("an answer");
        assert!(
            answer.starts_with("HTTP/1.1 204"),
            "{answer}\n{}",
            nginx.logs()
        );
    }
    let heads = heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 2, "{heads:?}");
    assert_eq!(
        heads[0].0, heads[1].0,
        "one upstream connection, kept alive: {heads:?}"
    );
    for (_, head) in &heads {
        let head = head.to_ascii_lowercase();
        assert!(
            head.starts_with("get /t.gif?site=s0 http/1.1\r\n"),
            "{head}"
        );
        for line in [
            "\r\nhost: tally.test\r\n",
            "\r\nx-forwarded-for: 81.2.69.160, 127.0.0.1\r\n",
            "\r\nx-forwarded-proto: https\r\n",
        ] {
            assert!(head.contains(line), "{line:?} in {head}");
        }
        assert!(!head.contains("\r\nconnection:"), "{head}");
    }

    let mut stream = nginx.http_target().connect().await.unwrap();
    stream
        .write_all(b"GET /api/v1/sites/s0/live HTTP/1.1\r\nHost: tally.test\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, "event: snapshot", 3).await;
}

/// Reads `stream` into `seen` until it holds `what`; fails after `secs` seconds or at its end.
async fn read_until(
    stream: &mut (impl AsyncReadExt + Unpin),
    seen: &mut Vec<u8>,
    what: &str,
    secs: u64,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !String::from_utf8_lossy(seen).contains(what) {
        let mut chunk = [0u8; 4096];
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no {what:?} through nginx in {secs} s: {}",
                    String::from_utf8_lossy(seen)
                )
            })
            .unwrap();
        assert!(n > 0, "the stream ended: {}", String::from_utf8_lossy(seen));
        seen.extend_from_slice(&chunk[..n]);
    }
}

/// The mix of the load test: per site and round of seven, two visits' first pages, three more
/// page views, an event and a visit beacon.
const LOAD_MIX: Mix = Mix {
    sites: 4,
    pages: 20,
    first: 0,
    kinds: &[
        Kind::Landing,
        Kind::View,
        Kind::Event,
        Kind::Landing,
        Kind::View,
        Kind::View,
        Kind::Beacon,
    ],
    addresses: 500,
    agents: 6,
};
/// 10,000 page views, 2,000 events and 2,000 beacons.
const LOAD_REQUESTS: u64 = 14_000;

/// What the load should leave, per site, computed from the mix and the country database.
#[derive(Default, Debug)]
struct Expected {
    views: i64,
    landings: i64,
    events: i64,
    beacons: i64,
    /// Views per country code (`unknown` where the database has none).
    countries: BTreeMap<String, i64>,
}

fn expected(mix: Mix, requests: u64) -> BTreeMap<String, Expected> {
    let countries = Countries::open();
    let mut out: BTreeMap<String, Expected> = BTreeMap::new();
    for i in 0..requests {
        let site = out.entry(format!("s{}", mix.site(i))).or_default();
        match mix.kind(i) {
            Kind::Event => site.events += 1,
            Kind::Beacon => site.beacons += 1,
            kind => {
                site.views += 1;
                site.landings += i64::from(kind == Kind::Landing);
                *site
                    .countries
                    .entry(countries.of(mix.address(i)))
                    .or_default() += 1;
            }
        }
    }
    out
}

/// The country database of the test run, read with the `maxminddb` crate (not tally's code).
struct Countries(maxminddb::Reader<Vec<u8>>);

#[derive(serde::Deserialize)]
struct Record {
    country_code: Option<String>,
    country: Option<Iso>,
    registered_country: Option<Iso>,
}

#[derive(serde::Deserialize)]
struct Iso {
    iso_code: Option<String>,
}

impl Countries {
    fn open() -> Countries {
        Countries(maxminddb::Reader::open_readfile(geoip_db()).unwrap())
    }

    /// The code tally should count for `ip` (a public address), or `unknown`.
    fn of(&self, ip: IpAddr) -> String {
        let record: Option<Record> = self.0.lookup(ip).unwrap().decode().unwrap();
        record
            .and_then(|r| {
                let iso = |c: Option<Iso>| c.and_then(|c| c.iso_code);
                iso(r.country)
                    .or(iso(r.registered_country))
                    .or(r.country_code)
            })
            .filter(|c| c.len() == 2)
            .map_or_else(|| "unknown".to_owned(), |c| c.to_ascii_uppercase())
    }
}

/// The sum over the sub-documents of `space` of their `leaf` counter (or of the numbers).
fn sum(doc: &Document, space: &str, leaf: Option<&str>) -> i64 {
    let Ok(sub) = doc.get_document(space) else {
        return 0;
    };
    sub.iter()
        .map(|(key, v)| match (leaf, v) {
            (Some(leaf), _) => v
                .as_document()
                .map_or(0, |d| get_path(d, leaf).unwrap_or(0)),
            (None, mongodb::bson::Bson::Int64(n)) => *n,
            (None, mongodb::bson::Bson::Int32(n)) => i64::from(*n),
            (None, other) => panic!("{space}.{key} is not a number: {other:?}"),
        })
        .sum()
}

async fn doc(store: &TestStore, collection: &str, id: &str) -> Document {
    store
        .doc(collection, id)
        .await
        .unwrap_or_else(|| panic!("no {collection} {id}"))
}

/// 10,000 page views, 2,000 events and 2,000 visit beacons from 500 public addresses, at full
/// speed over 32 keep-alive connections, half through nginx's HTTP port and half through its
/// HTTPS port: every one answered 2xx and counted in every report, and each view's country is
/// the one of the address the client gave nginx.
async fn load_through_nginx_is_counted_exactly(backend: Backend) {
    let (app, nginx) = behind_nginx(backend, LOAD_MIX).await;
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let run = |target: Target| {
        load::run(
            target,
            16,
            LOAD_REQUESTS,
            LOAD_MIX,
            None,
            Arc::clone(&counts),
        )
    };
    tokio::join!(run(nginx.http_target()), run(nginx.https_target()));
    let secs = started.elapsed().as_secs_f64();
    let (result, store) = app.stop().await;
    result.expect("a clean shutdown");
    eprintln!(
        "{backend:?}: {LOAD_REQUESTS} requests through nginx (HTTP and HTTPS) in {secs:.1} s ({:.0}/s): {counts:?}",
        LOAD_REQUESTS as f64 / secs
    );
    assert_eq!(
        counts.ok(),
        LOAD_REQUESTS,
        "every request answered 2xx: {counts:?}\n{}",
        nginx.logs()
    );

    let expected = expected(LOAD_MIX, LOAD_REQUESTS);
    let mut countries_seen = std::collections::BTreeSet::new();
    for (site, want) in &expected {
        let month = format!("{site}:2026-11");
        let traffic = doc(&store, "traffic.2026", &month).await;
        assert_count(&traffic, "v", want.views);
        assert_count(&traffic, "d.23.v", want.views);
        let content = doc(&store, "content.2026", &month).await;
        assert_eq!(sum(&content, "p", Some("v")), want.views, "{content}");
        let content_day = doc(&store, "content.2026", &format!("{site}:2026-11-23")).await;
        assert_eq!(sum(&content_day, "p", Some("v")), want.views);
        let technology = doc(&store, "technology.2026", &month).await;
        assert_eq!(sum(&technology, "p", None), want.views, "{technology}");

        let locations = doc(&store, "locations.2026", &month).await;
        let counted: BTreeMap<String, i64> = locations
            .get_document("c")
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_i64().unwrap()))
            .collect();
        assert_eq!(counted, want.countries, "{site}: countries");
        countries_seen.extend(counted.into_keys());

        let events = doc(&store, "events_day.2026", &month).await;
        assert_count(&events, "e.signup.23.c", want.events);
        assert_count(&events, "e.signup.23.t", want.events * load::EVENT_VALUE);
        assert_count(&events, "p.signup.plan.pro.23.c", want.events);
        let hour = doc(&store, "events_hour.2026", &format!("{site}:2026-11-23")).await;
        assert_count(&hour, "e.signup.12.c", want.events);
        let five = doc(&store, "events_5m.2026", &format!("{site}:2026-11-23T12")).await;
        assert_count(&five, "e.signup.00.c", want.events);

        let engagement = doc(&store, "engagement.2026", &month).await;
        assert_count(&engagement, "d.23.v", want.landings);
        assert_count(&engagement, "d.23.p.1", want.landings);
        assert_count(&engagement, "d.23.t.3-10s", want.beacons);
        assert_count(&engagement, "d.23.t.0-3s", want.landings - want.beacons);
        for d in [traffic, content, technology, locations, events, engagement] {
            assert_well_formed(&d);
        }
    }
    // The pool is spread over the world, and the database knows nearly all of it.
    let unknown: i64 = expected
        .values()
        .map(|e| e.countries.get("unknown").copied().unwrap_or(0))
        .sum();
    let views: i64 = expected.values().map(|e| e.views).sum();
    assert!(countries_seen.len() >= 20, "{countries_seen:?}");
    assert!(
        unknown * 20 < views,
        "{unknown} of {views} views have no country"
    );
}

/// An office or a mobile carrier's NAT: 50 people (browsers) behind one public address, 100
/// page views a second for 10 s. All 1,000 are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_office_behind_one_address_is_counted_whole() {
    let mix = Mix {
        addresses: 1,
        agents: 50,
        ..Mix::VIEWS
    };
    let (app, nginx) = behind_nginx(Backend::Embedded, mix).await;
    let counts = Arc::new(Counts::default());
    load::run_at_rate(
        nginx.https_target(),
        8,
        1_000,
        mix,
        100.0,
        Arc::clone(&counts),
    )
    .await;
    let (result, store) = app.stop().await;
    result.unwrap();
    assert_eq!(counts.ok(), 1_000, "{counts:?}");
    let traffic = doc(&store, "traffic.2026", "s0:2026-11").await;
    assert_count(&traffic, "v", 1_000);
}

/// One browser at one address sending 1,000 requests a second for 5 s: it gets its burst and
/// then its rate (30 + 10 a second: about 80 answered 200, all of them counted); the rest are
/// answered 429 and not counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_browser_is_cut_to_its_bound() {
    const BURST: f64 = 30.0;
    const RATE: f64 = 10.0;
    let mix = Mix {
        addresses: 1,
        agents: 1,
        ..Mix::VIEWS
    };
    let (app, nginx) = behind_nginx(Backend::Embedded, mix).await;
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    load::run_at_rate(
        nginx.http_target(),
        16,
        5_000,
        mix,
        1_000.0,
        Arc::clone(&counts),
    )
    .await;
    let secs = started.elapsed().as_secs_f64();
    let metrics = app.metrics().await;
    let (result, store) = app.stop().await;
    result.unwrap();
    eprintln!("flood: 5,000 requests in {secs:.1} s: {counts:?}");
    assert_eq!(counts.ok() + counts.limited(), 5_000, "{counts:?}");
    let ok = counts.ok() as f64;
    assert!(
        ok >= BURST + RATE * 5.0 - 5.0 && ok <= BURST + RATE * secs + 5.0,
        "{ok} answered 200 in {secs:.1} s: {counts:?}"
    );
    // A 429 is not counted; a 200 is.
    let views = store
        .doc("traffic.2026", "s0:2026-11")
        .await
        .and_then(|d| get_path(&d, "v"))
        .unwrap_or(0);
    assert_eq!(views, counts.ok() as i64);
    assert!(
        metrics.contains(&format!(
            "tally_hits_rejected_total{{reason=\"rate_limited\"}} {}\n",
            counts.limited()
        )),
        "{metrics}"
    );
}

/// `POST /e` bodies up to tally's limit pass through nginx (a batch of 100 events padded to
/// exactly `MAX_BODY` bytes, over HTTPS); a byte more is refused by nginx itself, as the
/// recipe's `client_max_body_size` says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_batches_up_to_the_body_limit_pass_through_nginx() {
    use tally::track::events::{MAX_BATCH, MAX_BODY};
    let (app, nginx) = behind_nginx(Backend::Embedded, Mix::VIEWS).await;
    let event = r#"{"site":"s0","name":"export","value":1,"props":{"format":"csv"}}"#;
    let mut batch = format!("[{}]", vec![event; MAX_BATCH].join(","));
    assert!(batch.len() < MAX_BODY);
    let post = |body: &str| {
        format!(
            "POST /e HTTP/1.1\r\nHost: tally.test\r\nUser-Agent: {CHROME_WIN}\r\n\
             X-Forwarded-For: 81.2.69.160\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    batch.push_str(&" ".repeat(MAX_BODY - batch.len()));
    let (status, answer) = load::exchange(&nginx.https_target(), &post(&batch)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status, 202, "{answer}\n{}", nginx.logs());
    assert!(answer.contains(r#"{"accepted":100}"#), "{answer}");

    batch.push(' ');
    let (status, answer) = load::exchange(&nginx.https_target(), &post(&batch)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status, 413, "{answer}");
    // nginx's own page, not tally's JSON error passed on.
    assert!(
        answer.contains("<title>413 Request Entity Too Large</title>")
            && !answer.contains("\"error\""),
        "refused by nginx, before tally: {answer}"
    );
    let (result, store) = app.stop().await;
    result.unwrap();
    let events = doc(&store, "events_day.2026", "s0:2026-11").await;
    assert_count(&events, "e.export.23.c", MAX_BATCH as i64);
}

/// The live stream through nginx: the snapshot at once, and an update as soon as a flush wrote
/// a hit, while the response is still open (not held back in nginx's buffers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_stream_passes_through_nginx_as_it_comes() {
    let store = TestStore::new(Backend::Embedded).await;
    let mut site = store.add_site("s0", "UTC").await;
    site.public = true;
    store.store.update_site(&site).await.unwrap();
    let app = TestApp::spawn(store, settings(), TestClock::at(now()).clock()).await;
    let nginx = Nginx::start(&[port(&app)]).await;
    let mut stream = nginx.https_target().connect().await.unwrap();
    stream
        .write_all(b"GET /api/v1/sites/s0/live HTTP/1.1\r\nHost: tally.test\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, "event: snapshot", 5).await;
    let http = reqwest::Client::new();
    let pixel = http
        .get(format!("{}/t.gif?site=s0&url=%2Flive", nginx.http_url()))
        .header("User-Agent", FIREFOX_MAC)
        .header("X-Forwarded-For", "81.2.69.160")
        .send()
        .await
        .unwrap();
    assert_pixel(pixel).await;
    app.flush().await;
    read_until(&mut stream, &mut seen, "event: update", 5).await;
    // No graceful stop: it would wait its 10 s for the open stream to end. The runtime's end
    // takes the app down.
    drop((stream, nginx, app));
}

/// HTTPS offers HTTP/2 (the recipe's `http2` on the listen lines) and serves the certificate
/// the client was told to trust.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_offers_http2() {
    let nginx = Nginx::start(&[free_port()]).await;
    let tls = load::tls_connector(&nginx.cert_pem(), &[b"h2", b"http/1.1"]);
    let tcp = tokio::net::TcpStream::connect(nginx.https_addr())
        .await
        .unwrap();
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let stream = tls.connect(name, tcp).await.expect("the TLS handshake");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
}

/// The variant a multi-node test uses: `hash $arg_site consistent;` sends every hit of a site
/// to one tally. Two tallies on stores of their own: each site's views are all in one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashing_on_the_site_sends_each_site_to_one_tally() {
    // 32 sites, so that both tallies get some whatever ports (and so hash points) they have:
    // even a 70/30 split leaves one without any with a chance of 0.7^32, about 1 in 90,000.
    let mix = Mix {
        sites: 32,
        ..Mix::VIEWS
    };
    let mut apps = Vec::new();
    for _ in 0..2 {
        let store = TestStore::new(Backend::Embedded).await;
        for site in mix.site_ids() {
            store.add_site(&site, "UTC").await;
        }
        apps.push(TestApp::spawn(store, settings(), TestClock::at(now()).clock()).await);
    }
    let nginx = Nginx::start_with(&[port(&apps[0]), port(&apps[1])], Balance::Site).await;
    let counts = Arc::new(Counts::default());
    load::run(
        nginx.http_target(),
        8,
        3_200,
        mix,
        None,
        Arc::clone(&counts),
    )
    .await;
    assert_eq!(counts.ok(), 3_200, "{counts:?}");
    let mut stores = Vec::new();
    for app in apps {
        let (result, store) = app.stop().await;
        result.unwrap();
        stores.push(store);
    }
    let mut used = [false; 2];
    for site in mix.site_ids() {
        let mut views = [0; 2];
        for (n, store) in stores.iter().enumerate() {
            let traffic = store.doc("traffic.2026", &format!("{site}:2026-11")).await;
            views[n] = traffic.and_then(|d| get_path(&d, "v")).unwrap_or(0);
            used[n] |= views[n] > 0;
        }
        assert!(views == [100, 0] || views == [0, 100], "{site}: {views:?}");
    }
    assert_eq!(used, [true, true], "both tallies got sites");
}

both_stores!(load_through_nginx_is_counted_exactly);
