//! Hostile requests over real TCP, on both stores: each gets a clear answer (the pixel keeps
//! its answer, JSON endpoints their error shape, protocol errors a bare 4xx), slow clients are
//! timed out, and afterwards the stored documents are well-formed, readable through the API,
//! and hold exactly what should have been counted. Then the bound on a flood of events, the
//! limit on wrong tokens, the dashboard's security headers and CORS.
//!
//! Requests are written by hand (`tokio::net::TcpStream`) where reqwest cannot produce them:
//! invalid UTF-8 or NUL in the request line, oversized heads, lying `Content-Length`, trickled
//! bytes. Timeouts are set short in the settings, so the whole file runs in seconds.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::*;
use tally::settings::ServeSettings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const NOW: (i32, u32, u32, u32, u32) = (2026, 11, 23, 12, 0);

fn hostile_settings() -> ServeSettings {
    ServeSettings {
        request_timeout_ms: 500,
        body_timeout_ms: 500,
        ..test_settings()
    }
}

async fn app(backend: Backend, settings: ServeSettings, public: bool) -> TestApp {
    let store = TestStore::new(backend).await;
    let mut site = store.add_site("acme", "UTC").await;
    site.public = public;
    store.store.update_site(&site).await.unwrap();
    let (y, mo, d, h, mi) = NOW;
    let clock = TestClock::at(utc(y, mo, d, h, mi));
    TestApp::spawn(store, settings, clock.clock()).await
}

// ---- Raw HTTP --------------------------------------------------------------------------------

/// What came back on a connection: status, head, body, and how long after the first byte was
/// sent the answer was complete. Status 0: the server closed without answering.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
    took: Duration,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Writes `parts` with `gap` between them while reading the answer, all within 5 s.
async fn send(app: &TestApp, parts: Vec<Vec<u8>>, gap: Duration) -> Answer {
    let addr = app.address.trim_start_matches("http://").to_owned();
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(gap).await;
            }
            if wr.write_all(part).await.is_err() {
                return; // the server has answered and closed: fine
            }
        }
        let _ = wr.flush().await;
        // Keep the write half open: a closed half would end a slow body early.
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        let mut chunk = [0u8; 16384];
        loop {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                let bodiless = head.starts_with("http/1.1 204") || head.starts_with("http/1.1 304");
                if bodiless || length.is_some_and(|n| buf.len() >= end + 4 + n) {
                    return;
                }
            }
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let took = started.elapsed();
    writer.abort();
    assert!(read.is_ok(), "no complete answer within 5 s: {buf:?}");
    let end = find(&buf, b"\r\n\r\n").unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = buf.get(end + 4..).unwrap_or_default().to_vec();
    Answer {
        status,
        head,
        body,
        took,
    }
}

async fn send_one(app: &TestApp, request: Vec<u8>) -> Answer {
    send(app, vec![request], Duration::ZERO).await
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn get(target: &[u8]) -> Vec<u8> {
    get_with(target, b"")
}

fn get_with(target: &[u8], extra_headers: &[u8]) -> Vec<u8> {
    let mut r = b"GET ".to_vec();
    r.extend_from_slice(target);
    r.extend_from_slice(
        format!(" HTTP/1.1\r\nHost: tally.test\r\nUser-Agent: {CHROME_WIN}\r\n").as_bytes(),
    );
    r.extend_from_slice(extra_headers);
    r.extend_from_slice(b"Connection: close\r\n\r\n");
    r
}

fn post(path: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: tally.test\r\nUser-Agent: {CHROME_WIN}\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

// ---- The table -------------------------------------------------------------------------------

/// The answer a case must get.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The pixel's documented answer: 200 and the GIF.
    Pixel,
    /// A JSON endpoint's answer: this status and the error shape with this code.
    Error(u16, &'static str),
    /// A success of a JSON endpoint with this status.
    Ok(u16),
    /// A protocol error answered before any handler: this status, no body promised.
    Bare(u16),
}

struct Case {
    what: &'static str,
    request: Vec<u8>,
    expect: Expect,
    /// Page views this request must add to the month's traffic.
    views: i64,
    /// Events (name, count) it must add.
    events: &'static [(&'static str, i64)],
}

fn case(what: &'static str, request: Vec<u8>, expect: Expect) -> Case {
    Case {
        what,
        request,
        expect,
        views: 0,
        events: &[],
    }
}

fn deep(open: &str, n: usize) -> String {
    open.repeat(n)
}

fn cases() -> Vec<Case> {
    let long_name = format!(r#"{{"site":"acme","name":"{}"}}"#, "n".repeat(60_000));
    let many_props = format!(
        r#"{{"site":"acme","name":"x","props":{{{}}}}}"#,
        (0..50)
            .map(|i| format!(r#""k{i}":1"#))
            .collect::<Vec<_>>()
            .join(",")
    );
    let too_many = format!("[{}]", vec![r#"{"site":"acme","name":"x"}"#; 101].join(","));
    let mut big_header = "X-Pad: ".to_owned();
    big_header.push_str(&"a".repeat(140_000));
    big_header.push_str("\r\n");
    let many_headers: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    vec![
        Case {
            views: 1,
            ..case(
                "60 KB query string",
                get(format!("/t.gif?site=acme&url=/long&title={}", "t".repeat(60_000)).as_bytes()),
                Expect::Pixel,
            )
        },
        case(
            "100 KB query string",
            get(format!("/t.gif?site=acme&url=/long&title={}", "t".repeat(100_000)).as_bytes()),
            Expect::Bare(400),
        ),
        case(
            "200 KB query string",
            get(format!("/t.gif?site=acme&url=/{}", "u".repeat(200_000)).as_bytes()),
            Expect::Bare(431),
        ),
        case(
            "140 KB header",
            get_with(b"/t.gif?site=acme&url=/h", big_header.as_bytes()),
            Expect::Bare(431),
        ),
        case(
            "200 headers",
            get_with(b"/t.gif?site=acme&url=/h", many_headers.as_bytes()),
            Expect::Bare(431),
        ),
        Case {
            views: 1,
            ..case(
                "invalid percent-encoding in the query",
                get(b"/t.gif?site=acme&url=/p%ZZ%&title=%E2%82&ref=%"),
                Expect::Pixel,
            )
        },
        Case {
            views: 1,
            ..case(
                "%00 and %FF in the query",
                get(b"/t.gif?site=acme&url=/a%00b%FF&title=t%00%01"),
                Expect::Pixel,
            )
        },
        case(
            "invalid UTF-8 in the request line",
            get(b"/t.gif?site=acme&url=/\xff\xfe"),
            Expect::Bare(400),
        ),
        case(
            "NUL byte in the request line",
            get(b"/t.gif?site=acme&url=/a\0b"),
            Expect::Bare(400),
        ),
        Case {
            views: 1,
            ..case(
                "invalid UTF-8 in headers",
                get_with(b"/t.gif?site=acme&url=/ua", b"X-Forwarded-For: \xff\r\nReferer: \xfe\r\n"),
                Expect::Pixel,
            )
        },
        case(
            "bad percent-encoding in an API path",
            get(b"/api/v1/sites/%ZZ/summary"),
            Expect::Error(401, "unauthorized"),
        ),
        case(
            "invalid UTF-8 in an API path",
            get(b"/api/v1/sites/%FF%FE/summary"),
            Expect::Error(401, "unauthorized"),
        ),
        case(
            "NUL in an API path",
            get(b"/api/v1/sites/a%00b/summary"),
            Expect::Error(401, "unauthorized"),
        ),
        case(
            "invalid UTF-8 in an API query",
            get(b"/api/v1/sites/acme/reports/events?limit=%FF"),
            Expect::Error(400, "bad_request"),
        ),
        case(
            "unknown path with junk",
            get(b"/%00/../..%2f$where"),
            Expect::Error(404, "not_found"),
        ),
        case(
            "invalid UTF-8 in a POST /e body",
            post("/e", b"{\"site\":\"acme\",\"name\":\"\xff\xfe\"}"),
            Expect::Error(400, "invalid_event"),
        ),
        case(
            "raw NUL in a JSON string",
            post("/e", b"{\"site\":\"acme\",\"name\":\"a\0b\"}"),
            Expect::Error(400, "invalid_event"),
        ),
        Case {
            events: &[("a\0b", 1)],
            ..case(
                "escaped NUL in a JSON string",
                post("/e", br#"{"site":"acme","name":"a\u0000b"}"#),
                Expect::Ok(202),
            )
        },
        case(
            "10,000 nested arrays",
            post("/e", deep("[", 10_000).as_bytes()),
            Expect::Error(400, "invalid_event"),
        ),
        case(
            "nested arrays in a property",
            post(
                "/e",
                format!(r#"{{"site":"acme","name":"x","props":{{"a":{}}}}}"#, deep("[", 5000))
                    .as_bytes(),
            ),
            Expect::Error(400, "invalid_event"),
        ),
        case(
            "value 1e999",
            post("/e", br#"{"site":"acme","name":"x","value":1e999}"#),
            Expect::Error(400, "invalid_event"),
        ),
        case(
            "value 2^70",
            post("/e", br#"{"site":"acme","name":"x","value":1180591620717411303424}"#),
            Expect::Error(400, "invalid_event"),
        ),
        case(
            "property 1e999",
            post("/e", br#"{"site":"acme","name":"x","props":{"n":1e999}}"#),
            Expect::Error(400, "invalid_event"),
        ),
        Case {
            events: &[("(cut)", 1)],
            ..case(
                "60 KB event name",
                post("/e", long_name.as_bytes()),
                Expect::Ok(202),
            )
        },
        case(
            "50 properties",
            post("/e", many_props.as_bytes()),
            Expect::Error(400, "invalid_event"),
        ),
        case(
            "101 events",
            post("/e", too_many.as_bytes()),
            Expect::Error(400, "invalid_event"),
        ),
        Case {
            events: &[
                ("__proto__", 1),
                ("constructor", 1),
                ("$where", 1),
                ("a.b", 1),
            ],
            ..case(
                "__proto__, constructor, $where and a.b as names and property keys",
                post(
                    "/e",
                    br#"[{"site":"acme","name":"__proto__","props":{"__proto__":"x","constructor":"y"}},
                        {"site":"acme","name":"constructor","props":{"$where":"1","a.b":"c.d"}},
                        {"site":"acme","name":"$where","props":{"$gt":"","toString":"z"}},
                        {"site":"acme","name":"a.b","props":{"x.y.z":"$set"}}]"#,
                ),
                Expect::Ok(202),
            )
        },
        Case {
            events: &[("$where", 1)],
            ..case(
                "GET /e with an operator name and a dotted property",
                get(b"/e?site=acme&name=%24where&p.a.b=%00&p.__proto__=1"),
                Expect::Pixel,
            )
        },
        case(
            "Content-Length: 100000000 with a few bytes sent",
            {
                let mut r = b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n\
                    Content-Length: 100000000\r\n\r\n"
                    .to_vec();
                r.extend_from_slice(br#"{"site":"acme""#);
                r
            },
            Expect::Error(413, "too_large"),
        ),
        case(
            "a chunked body over 64 KB",
            {
                let mut r = b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n\
                    Transfer-Encoding: chunked\r\n\r\n"
                    .to_vec();
                for _ in 0..20 {
                    r.extend_from_slice(format!("1000\r\n{}\r\n", " ".repeat(4096)).as_bytes());
                }
                r.extend_from_slice(b"0\r\n\r\n");
                r
            },
            Expect::Error(413, "too_large"),
        ),
    ]
}

fn check(case: &Case, answer: &Answer) {
    let what = case.what;
    match case.expect {
        Expect::Pixel => {
            assert_eq!(answer.status, 200, "{what}: {answer:?}");
            assert_eq!(answer.header("content-type"), Some("image/gif"), "{what}");
            assert_eq!(answer.body, tally::track::pixel::GIF, "{what}");
        }
        Expect::Error(status, code) => {
            assert_eq!(answer.status, status, "{what}: {answer:?}");
            let json = answer.json();
            assert_eq!(json["error"]["code"], code, "{what}: {json}");
            assert!(json["error"]["message"].is_string(), "{what}: {json}");
        }
        Expect::Ok(status) => assert_eq!(answer.status, status, "{what}: {answer:?}"),
        Expect::Bare(status) => assert_eq!(answer.status, status, "{what}: {answer:?}"),
    }
}

async fn api(app: &TestApp, path: &str) -> Value {
    let r = app
        .http
        .get(format!("{}/api/v1/sites/acme/{path}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

async fn every_hostile_request_gets_a_clear_answer_and_counts_only_what_it_should(
    backend: Backend,
) {
    let app = app(backend, hostile_settings(), true).await;
    let mut views = 0;
    let mut events: BTreeMap<String, i64> = BTreeMap::new();
    for case in cases() {
        let answer = send_one(&app, case.request.clone()).await;
        check(&case, &answer);
        assert!(
            answer.took < Duration::from_secs(2),
            "{}: {:?}",
            case.what,
            answer.took
        );
        views += case.views;
        for (name, n) in case.events {
            *events.entry((*name).to_owned()).or_default() += n;
        }
    }
    app.flush().await;

    // Well-formed: every document of every collection for the day, month and year.
    let mut docs = 0;
    for collection in app.handle.store.collections().await.unwrap() {
        // Not reports: the sites, and the keys of the people sketches' visitor hashes.
        if collection == "sites" || collection == "people_keys" {
            continue;
        }
        for id in ["acme:2026", "acme:2026-11", "acme:2026-11-23"] {
            if let Some(doc) = app.doc(&collection, id).await {
                assert_well_formed(&doc);
                docs += 1;
            }
        }
    }
    assert!(docs >= 4, "only {docs} documents");
    let traffic = app.doc("traffic.2026", "acme:2026-11").await.unwrap();
    assert_count(&traffic, "v", views);

    // Readable through the API, with exactly the events that should have counted.
    let summary = api(&app, "summary").await;
    assert_eq!(summary["today"]["views"], views, "{summary}");
    let report = api(&app, "reports/events?date=2026-11&limit=500").await;
    let mut got: BTreeMap<String, i64> = BTreeMap::new();
    for e in report["data"]["events"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        let name = if name.len() > 150 && name.chars().all(|c| c == 'n') {
            "(cut)"
        } else {
            name
        };
        got.insert(name.to_owned(), e["count"].as_i64().unwrap());
    }
    assert_eq!(got, events, "{report}");
    for report in ["content", "referrers", "technology"] {
        api(&app, &format!("reports/{report}?date=2026-11")).await;
    }
    let content = app.doc("content.2026", "acme:2026-11").await.unwrap();
    assert!(
        content
            .get_document("p")
            .unwrap()
            .contains_key("/ab\u{FFFD}"),
        "{content}"
    );
    let _ = app.stop().await;
}

/// Slow clients: a head sent byte by byte, a body trickled, both cut by their timeouts; a
/// beacon that does not read its body answers at once.
async fn slow_clients_are_timed_out(backend: Backend) {
    let app = app(backend, hostile_settings(), true).await;
    let head = get(b"/t.gif?site=acme&url=/slow");
    let bytes: Vec<Vec<u8>> = head.iter().map(|b| vec![*b]).collect();
    let answer = send(&app, bytes, Duration::from_millis(50)).await;
    assert_eq!(answer.status, 408, "{answer:?}");
    assert!(answer.took < Duration::from_millis(1500), "{answer:?}");
    let _ = app.stop().await;

    // The body's own deadline, with the head's far away: on a loaded machine the two equal
    // deadlines could otherwise race, and actix's bare 408 win.
    let settings = ServeSettings {
        request_timeout_ms: 5_000,
        ..hostile_settings()
    };
    let app = self::app(backend, settings, true).await;
    let body = br#"{"site":"acme","name":"slow"}"#;
    let mut parts = vec![format!(
        "POST /e HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes()];
    parts.extend(body.iter().map(|b| vec![*b]));
    let answer = send(&app, parts.clone(), Duration::from_millis(100)).await;
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.json()["error"]["code"], "body_timeout");
    assert!(answer.took < Duration::from_millis(1500), "{answer:?}");
    assert_eq!(answer.header("connection"), Some("close"));

    let mut beacon = parts;
    beacon[0] =
        b"POST /v?site=acme&vd=1000 HTTP/1.1\r\nHost: t\r\nContent-Length: 29\r\n\r\n".to_vec();
    let answer = send(&app, beacon, Duration::from_millis(100)).await;
    assert_eq!(answer.status, 204, "{answer:?}");
    assert!(answer.took < Duration::from_millis(500), "{answer:?}");

    app.flush().await;
    let events = app.doc("events_day.2026", "acme:2026-11").await;
    assert!(events.is_none(), "nothing counted: {events:?}");
    let _ = app.stop().await;
}

/// A flood of events, 100 distinct names per request from four clients at once, meets the
/// existing bounds: past the pending bound a request is refused whole (503 busy), and a
/// month document names at most `max_keys` events, the rest counted under `(other)`. What was
/// accepted is exactly what is stored: nothing lost, nothing counted twice.
async fn an_event_flood_is_bounded_and_counted_exactly(backend: Backend) {
    let settings = ServeSettings {
        max_keys: 100,
        max_pending: 3_000,
        ..hostile_settings()
    };
    let app = app(backend, settings, true).await;
    let url = format!("{}/e", app.address);
    let mut clients = Vec::new();
    // Four backends, each a sender of its own, within the rate limits; the flood is in their
    // 4,000 distinct names.
    for client in 0..4 {
        let (http, url) = (app.http.clone(), url.clone());
        let address = visitor(client);
        clients.push(tokio::spawn(async move {
            let (mut accepted, mut busy) = (0, 0);
            for request in 0..10 {
                let batch: Vec<_> = (0..100)
                    .map(|i| {
                        serde_json::json!({"site": "acme", "name": format!("c{client}r{request}e{i}")})
                    })
                    .collect();
                let r = http
                    .post(&url)
                    .header("X-Forwarded-For", &address)
                    .json(&batch)
                    .send()
                    .await
                    .unwrap();
                match r.status().as_u16() {
                    202 => accepted += 100,
                    503 => {
                        let body: Value = r.json().await.unwrap();
                        assert_eq!(body["error"]["code"], "busy");
                        busy += 1;
                    }
                    other => panic!("{other}"),
                }
            }
            (accepted, busy)
        }));
    }
    let (mut accepted, mut busy) = (0i64, 0);
    for c in clients {
        let (a, b) = c.await.unwrap();
        accepted += a;
        busy += b;
    }
    assert!(accepted > 0 && busy > 0, "accepted {accepted}, busy {busy}");
    app.flush().await;

    let doc = app.doc("events_day.2026", "acme:2026-11").await.unwrap();
    assert_well_formed(&doc);
    let names = doc.get_document("e").unwrap();
    assert!(names.len() <= 101, "{} names", names.len());
    let report = api(&app, "reports/events?date=2026-11&limit=1000").await;
    let events = report["data"]["events"].as_array().unwrap();
    let stored: i64 = events.iter().map(|e| e["count"].as_i64().unwrap()).sum();
    assert_eq!(stored, accepted, "{} names", events.len());
    assert!(events.iter().any(|e| e["name"] == "(other)"));
    let m = app.metrics().await;
    assert!(
        m.contains(&format!("tally_events_accepted_total {accepted}\n")),
        "{m}"
    );
    let _ = app.stop().await;
}

both_stores!(
    every_hostile_request_gets_a_clear_answer_and_counts_only_what_it_should,
    slow_clients_are_timed_out,
    an_event_flood_is_bounded_and_counted_exactly
);
