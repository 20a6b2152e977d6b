//! Ingest access and abuse controls over real HTTP against the real stores: the per-site host
//! allow-list, the rate limits per sender and per address (429), the budget of new keys per
//! address (forged pages cannot evict real ones), the `isbot` list, and DNT/GPC for sites that
//! honour them. Every check reads the documents back: what is answered 200 is counted or was
//! deliberately not counted, and the metrics say which.

mod support;

use support::*;

use mongodb::bson::Document;
use serde_json::json;
use std::net::IpAddr;
use tally::settings::ServeSettings;
use tally::site::{parse_host, Site};
use tally::track::client::TrustProxy;

/// Every test runs at this instant; `acme` is in UTC.
fn now() -> chrono::DateTime<chrono::Utc> {
    utc(2026, 11, 23, 12, 0)
}

/// `acme` with `hosts` and `honor_dnt`, and a second site `open` without hosts.
async fn app_with(
    backend: Backend,
    hosts: &[&str],
    honor_dnt: bool,
    settings: ServeSettings,
) -> TestApp {
    let store = TestStore::new(backend).await;
    let mut site: Site = store.add_site("acme", "UTC").await;
    site.hosts = hosts.iter().map(|h| parse_host(h).unwrap()).collect();
    site.honor_dnt = honor_dnt;
    store.store.update_site(&site).await.unwrap();
    let mut open = store.add_site("open", "UTC").await;
    open.hosts.clear();
    store.store.update_site(&open).await.unwrap();
    TestApp::spawn(store, settings, TestClock::at(now()).clock()).await
}

/// A GET with headers (a User-Agent of Chrome unless they name one), from `client`; the
/// response is the caller's to check.
async fn get(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = client.get(format!("{}{path}", app.address));
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("user-agent"))
    {
        request = request.header("User-Agent", CHROME_WIN);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("tally answers")
}

/// The month's views of `site` (0 when there is no document).
async fn views(app: &TestApp, site: &str) -> i64 {
    let doc: Option<Document> = app.doc("traffic.2026", &format!("{site}:2026-11")).await;
    doc.and_then(|d| get_path(&d, "v")).unwrap_or(0)
}

/// The value of one metric line, e.g. `tally_hits_rejected_total{reason="bot"}`.
async fn metric(app: &TestApp, line: &str) -> i64 {
    let text = app.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{line} not in\n{text}"))
}

/// A client whose connections come from `local` (any 127.0.0.0/8 address is this machine).
fn client_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn foreign_origins_and_referers_are_not_counted(backend: Backend) {
    let app = app_with(
        backend,
        &["acme.example", "*.acme.dev", "localhost:3000"],
        false,
        test_settings(),
    )
    .await;
    let http = app.http.clone();
    let pixel = "/t.gif?site=acme&url=%2F";
    let counted: &[&[(&str, &str)]] = &[
        &[("Origin", "https://acme.example")],
        &[("Origin", "https://www.acme.example")],
        &[("Referer", "https://acme.example/blog/post?x=1")],
        &[("Referer", "https://docs.acme.dev/a")],
        &[("Referer", "http://localhost:3000/")],
        // Neither header (privacy extensions strip Referer): counted.
        &[],
        // `Origin: null` names no page; the Referer decides.
        &[("Origin", "null"), ("Referer", "https://acme.example/")],
        &[("Referer", "not a url")],
    ];
    for headers in counted {
        assert_pixel(get(&app, &http, pixel, headers).await).await;
    }
    let refused: &[&[(&str, &str)]] = &[
        &[("Origin", "https://evil.example")],
        &[("Origin", "https://acme.example.evil.example")],
        // The Origin wins over a Referer that would be allowed.
        &[
            ("Origin", "https://evil.example"),
            ("Referer", "https://acme.example/"),
        ],
        &[("Referer", "https://evilacme.example/")],
        // A wildcard covers subdomains, not the domain itself.
        &[("Referer", "https://acme.dev/")],
        // A host listed with a port counts only on that port.
        &[("Referer", "http://localhost:8080/")],
        &[("Origin", "null"), ("Referer", "https://evil.example/")],
    ];
    for headers in refused {
        // Still the pixel and a 200: deliberately not counted, nothing for a page to show.
        assert_pixel(get(&app, &http, pixel, headers).await).await;
    }
    // A site without hosts takes hits from any page.
    let open = "/t.gif?site=open&url=%2F";
    assert_pixel(get(&app, &http, open, &[("Origin", "https://evil.example")]).await).await;

    // Events: a foreign page's fetch is told so (403) and nothing is counted.
    let post = |origin: &'static str| {
        http.post(format!("{}/e", app.address))
            .header("Origin", origin)
            .body(json!({"site": "acme", "name": "signup"}).to_string())
            .send()
    };
    let foreign = post("https://evil.example").await.unwrap();
    assert_eq!(foreign.status(), 403);
    let body: serde_json::Value = foreign.json().await.unwrap();
    assert_eq!(body["error"]["code"], "disallowed_host");
    let own = post("https://acme.example").await.unwrap();
    assert_eq!(own.status(), 202);
    // Visit beacons from a foreign page are not counted either (always 204).
    for origin in ["https://acme.example", "https://evil.example"] {
        let r = http
            .post(format!("{}/v?site=acme&vd=5000&pvd=0", app.address))
            .header("Origin", origin)
            .header("User-Agent", CHROME_WIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }

    app.flush().await;
    assert_eq!(views(&app, "acme").await, counted.len() as i64);
    assert_eq!(views(&app, "open").await, 1);
    let events = app
        .doc("events_5m.2026", "acme:2026-11-23T12")
        .await
        .unwrap();
    assert_count(&events, "e.signup.00.c", 1);
    let reason = |r: &str| format!("{{reason=\"{r}\"}}");
    let host = reason("disallowed_host");
    assert_eq!(
        metric(&app, &format!("tally_hits_rejected_total{host}")).await,
        refused.len() as i64
    );
    assert_eq!(
        metric(&app, &format!("tally_events_rejected_total{host}")).await,
        1
    );
    assert_eq!(
        metric(&app, &format!("tally_visit_beacons_rejected_total{host}")).await,
        1
    );
    assert_eq!(metric(&app, "tally_visit_beacons_accepted_total").await, 1);
}

/// Settings with a sender limit that never refills during a test: 5 at once, then one per
/// 1000 s; everything else (the per-address limit, the proxy trust) as a user gets it.
fn limited() -> ServeSettings {
    ServeSettings {
        ingest_rate: 0.001,
        ingest_burst: 5,
        ..test_settings()
    }
}

async fn one_sender_over_the_limit_gets_429_and_others_are_unaffected(backend: Backend) {
    // Without a proxy in front: the connection's address is the client.
    let settings = ServeSettings {
        trust_proxy: TrustProxy::None,
        ..limited()
    };
    let app = app_with(backend, &["acme.example"], false, settings).await;
    let flooder = client_from("127.0.0.1");
    let neighbour = client_from("127.0.0.2");
    let pixel = "/t.gif?site=acme&url=%2F";
    let mut statuses = Vec::new();
    for _ in 0..12 {
        // A forged X-Forwarded-For changes nothing with --trust-proxy none.
        let r = get(
            &app,
            &flooder,
            pixel,
            &[("X-Forwarded-For", "203.0.113.99")],
        )
        .await;
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            let retry: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((900..=1000).contains(&retry), "Retry-After {retry}");
            assert_eq!(r.headers()["content-type"], "image/gif");
            assert_eq!(r.headers()["cache-control"], "no-store, max-age=0");
            assert_eq!(&r.bytes().await.unwrap()[..], tally::track::pixel::GIF);
        }
    }
    assert_eq!(statuses, [[200; 5].as_slice(), &[429; 7]].concat());
    // The events endpoint shares the sender's budget: 429 with the JSON error shape.
    let r = flooder
        .post(format!("{}/e", app.address))
        .header("User-Agent", CHROME_WIN)
        .body(json!({"site": "acme", "name": "signup"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    let r = get(&app, &flooder, "/v?site=acme&vd=5000", &[]).await;
    assert_eq!(r.status(), 429);
    // Another browser behind the same address, and another address, have their own, whole.
    let firefox = [("User-Agent", FIREFOX_MAC)];
    for _ in 0..5 {
        assert_pixel(get(&app, &flooder, pixel, &firefox).await).await;
        assert_pixel(get(&app, &neighbour, pixel, &[]).await).await;
    }
    assert_eq!(get(&app, &flooder, pixel, &firefox).await.status(), 429);
    assert_eq!(get(&app, &neighbour, pixel, &[]).await.status(), 429);

    app.flush().await;
    assert_eq!(views(&app, "acme").await, 15);
    let limited = "{reason=\"rate_limited\"}";
    assert_eq!(
        metric(&app, &format!("tally_hits_rejected_total{limited}")).await,
        9
    );
    assert_eq!(
        metric(&app, &format!("tally_events_rejected_total{limited}")).await,
        1
    );
    assert_eq!(
        metric(
            &app,
            &format!("tally_visit_beacons_rejected_total{limited}")
        )
        .await,
        1
    );
    assert_eq!(metric(&app, "tally_hits_accepted_total").await, 15);
    // Three senders, remembered for 1000 s; the two addresses for a few ms, until a sweep.
    let remembered = metric(&app, "tally_rate_limit_addresses").await;
    assert!((3..=5).contains(&remembered), "{remembered}");
    assert_eq!(
        metric(&app, "tally_client_addresses_forwarded_total").await,
        0
    );
}

async fn an_address_over_its_limit_refuses_all_its_senders(backend: Backend) {
    // The per-address limit alone, tight: 5 at once, then one per 1000 s.
    let settings = ServeSettings {
        ingest_address_rate: 0.001,
        ingest_address_burst: 5,
        ..test_settings()
    };
    let app = app_with(backend, &["acme.example"], false, settings).await;
    let http = app.http.clone();
    let pixel = "/t.gif?site=acme&url=%2F";
    let office = ("X-Forwarded-For", "81.2.69.142");
    let agents = [
        CHROME_WIN,
        FIREFOX_MAC,
        SAFARI_IPHONE,
        SAFARI_IPAD,
        CHROME_ANDROID,
    ];
    for ua in agents {
        assert_pixel(get(&app, &http, pixel, &[office, ("User-Agent", ua)]).await).await;
    }
    let sixth = get(&app, &http, pixel, &[office, ("User-Agent", EDGE_WIN)]).await;
    assert_eq!(sixth.status(), 429);
    // The address next door is not affected.
    let next_door = ("X-Forwarded-For", "81.2.69.143");
    assert_pixel(get(&app, &http, pixel, &[next_door]).await).await;
    app.flush().await;
    assert_eq!(views(&app, "acme").await, 6);
}

async fn behind_a_proxy_the_forwarded_address_is_limited(backend: Backend) {
    // The default trust: the test client on loopback is a proxy naming its visitors.
    let app = app_with(backend, &["acme.example"], false, limited()).await;
    let proxy = app.http.clone();
    let pixel = "/t.gif?site=acme";
    let from = |ip: &'static str| [("X-Forwarded-For", ip)];
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(
            get(&app, &proxy, pixel, &from("198.51.100.1"))
                .await
                .status(),
        );
    }
    assert_eq!(statuses.iter().filter(|s| s.as_u16() == 200).count(), 5);
    assert_eq!(statuses.iter().filter(|s| s.as_u16() == 429).count(), 2);
    // Every other visitor behind the same proxy still counts.
    for i in 2..=6 {
        let ip = format!("198.51.100.{i}");
        assert_pixel(get(&app, &proxy, pixel, &[("X-Forwarded-For", &ip)]).await).await;
    }
    // An IPv6 visitor is limited by its /64: a second address in it shares the budget.
    for host in 1..=5 {
        let ip = format!("2001:db8:5:6::{host}");
        assert_pixel(get(&app, &proxy, pixel, &[("X-Forwarded-For", &ip)]).await).await;
    }
    let same_64 = [("X-Forwarded-For", "2001:db8:5:6:ffff::1")];
    assert_eq!(get(&app, &proxy, pixel, &same_64).await.status(), 429);
    app.flush().await;
    assert_eq!(views(&app, "acme").await, 5 + 5 + 5);
    let forwarded = metric(&app, "tally_client_addresses_forwarded_total").await;
    assert_eq!(forwarded, 7 + 5 + 5 + 1);
}

/// Sends `hits` pixel requests, `concurrency` at a time; each is `(query, address, agent)`.
/// Asserts every one is answered 200 (counted, or deliberately not counted).
async fn send_all(app: &TestApp, hits: Vec<(String, String, String)>, concurrency: usize) {
    use futures_util::StreamExt;
    let http = &app.http;
    futures_util::stream::iter(hits)
        .map(|(query, address, agent)| async move {
            let r = http
                .get(format!("{}/t.gif?{query}", app.address))
                .header("User-Agent", agent)
                .header("X-Forwarded-For", address)
                .send()
                .await
                .expect("tally answers");
            assert_eq!(r.status(), 200, "{query}");
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
}

/// `forgers` addresses send `forged` pixel hits with random pages (rotating 50 User-Agents, as
/// a script would to pass the rate limits); then 200 visitors view 20 real pages, 10 each.
/// Returns the month's content document.
async fn forged_then_real(app: &TestApp, forgers: u32, forged: usize) -> Document {
    let agents = support::load::AGENTS;
    let hits = (0..forged)
        .map(|i| {
            let address = format!("81.2.{}.{}", 100 + i as u32 % forgers, 7);
            let page = format!(
                "/wp-{:016x}",
                (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            );
            let query = format!("site=acme&url={page}");
            (query, address, agents[i / forgers as usize % 50].to_owned())
        })
        .collect();
    send_all(app, hits, 16).await;
    app.flush().await;
    let real = (0..200u32)
        .map(|v| {
            let query = format!("site=acme&url=/docs/page-{}", v % 20);
            (query, visitor(v), agents[v as usize % 50].to_owned())
        })
        .collect();
    send_all(app, real, 16).await;
    app.flush().await;
    app.doc("content.2026", "acme:2026-12").await.unwrap()
}

/// The start of a month, when every key of the month documents is new.
fn month_start() -> chrono::DateTime<chrono::Utc> {
    utc(2026, 12, 1, 0, 5)
}

async fn forged_pages_cannot_evict_real_ones(backend: Backend) {
    let store = TestStore::new(backend).await;
    store.add_site("acme", "UTC").await;
    let app = TestApp::spawn(store, test_settings(), TestClock::at(month_start()).clock()).await;
    let doc = forged_then_real(&app, 5, 5_000).await;
    assert_well_formed(&doc);
    // Each forging address named its budget of new keys (100), no more; the rest of their
    // views are counted under (other), and every real page is named with its exact views.
    for page in 0..20 {
        assert_count(&doc, &format!("p./docs/page-{page}.v"), 10);
    }
    assert_count(&doc, "p.(other).v", 4_500);
    assert_count(&doc, "n", 500 + 20);
    let day = app.doc("content.2026", "acme:2026-12-01").await.unwrap();
    assert_count(&day, "p./docs/page-7.v", 10);
    assert_count(&day, "p.(other).v", 4_500);
    let traffic = app.doc("traffic.2026", "acme:2026-12").await.unwrap();
    assert_count(&traffic, "v", 5_200);
    assert_eq!(metric(&app, "tally_keys_unvouched_total").await, 4_500);
}

async fn without_the_budget_forged_pages_evict_real_ones(backend: Backend) {
    // The same traffic with the budget off: the forgers fill the month, the real pages land in
    // (other). (What the test above would see if the budget did nothing.)
    let store = TestStore::new(backend).await;
    store.add_site("acme", "UTC").await;
    let settings = ServeSettings {
        new_keys_per_address: 0,
        ..test_settings()
    };
    let app = TestApp::spawn(store, settings, TestClock::at(month_start()).clock()).await;
    let doc = forged_then_real(&app, 5, 1_000).await;
    assert!(get_path(&doc, "p./docs/page-0.v").is_none(), "{doc}");
    assert_count(&doc, "p.(other).v", 200);
    assert_count(&doc, "n", 1_000);
}

/// Crawlers woothee does not know, which the `isbot` list names.
const LISTED_BOTS: [&str; 4] = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 (compatible; Google-InspectionTool/1.0)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36; compatible; OAI-SearchBot/1.0; +https://openai.com/searchbot",
    "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 5 subscribers)",
    "axios/1.6.0",
];

async fn bots_on_the_isbot_list_are_not_counted(backend: Backend) {
    let app = app_with(backend, &["acme.example"], false, test_settings()).await;
    for ua in LISTED_BOTS {
        app.hit("site=acme&url=%2F", ua).await;
        app.hit_path("/e?site=acme&name=signup", ua).await;
    }
    app.hit("site=acme&url=%2F", CHROME_WIN).await;
    app.hit("site=acme&url=%2F", FIREFOX_MAC).await;
    app.flush().await;
    assert_eq!(views(&app, "acme").await, 2);
    let tech = app.doc("technology.2026", "acme:2026-11").await.unwrap();
    assert_count(&tech, "b.chrome.131-0", 1);
    assert!(get_path(&tech, "b.other.unknown").is_none(), "{tech}");
    assert!(app
        .doc("events_5m.2026", "acme:2026-11-23T12")
        .await
        .is_none());
    let bot = "{reason=\"bot\"}";
    assert_eq!(
        metric(&app, &format!("tally_hits_rejected_total{bot}")).await,
        4
    );
    assert_eq!(
        metric(&app, &format!("tally_events_rejected_total{bot}")).await,
        4
    );
}

async fn dnt_and_gpc_are_honoured_only_when_the_site_opts_in(backend: Backend) {
    let app = app_with(backend, &["acme.example"], true, test_settings()).await;
    let http = app.http.clone();
    let signals: [&[(&str, &str)]; 5] = [
        &[("DNT", "1")],
        &[("Sec-GPC", "1")],
        &[("DNT", "0")],
        &[("Sec-GPC", "0")],
        &[],
    ];
    for headers in signals {
        // `acme` honours the signals; `open` does not.
        assert_pixel(get(&app, &http, "/t.gif?site=acme", headers).await).await;
        assert_pixel(get(&app, &http, "/t.gif?site=open", headers).await).await;
    }
    let r = http
        .post(format!("{}/e", app.address))
        .header("Sec-GPC", "1")
        .body(json!({"site": "acme", "name": "signup"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body, json!({"accepted": 0, "ignored": "do_not_track"}));
    app.flush().await;
    assert_eq!(views(&app, "acme").await, 3);
    assert_eq!(views(&app, "open").await, 5);
    assert!(app
        .doc("events_5m.2026", "acme:2026-11-23T12")
        .await
        .is_none());
    let dnt = "{reason=\"do_not_track\"}";
    assert_eq!(
        metric(&app, &format!("tally_hits_rejected_total{dnt}")).await,
        2
    );
    assert_eq!(
        metric(&app, &format!("tally_events_rejected_total{dnt}")).await,
        1
    );
}

both_stores!(
    foreign_origins_and_referers_are_not_counted,
    one_sender_over_the_limit_gets_429_and_others_are_unaffected,
    an_address_over_its_limit_refuses_all_its_senders,
    behind_a_proxy_the_forwarded_address_is_limited,
    forged_pages_cannot_evict_real_ones,
    without_the_budget_forged_pages_evict_real_ones,
    bots_on_the_isbot_list_are_not_counted,
    dnt_and_gpc_are_honoured_only_when_the_site_opts_in,
);
