//! Fuzz targets: plain functions that take arbitrary bytes, run one parser of outside input and
//! panic when one of its promises breaks.
//!
//! Each target checks, besides "no panic": every field path that comes out parses as a
//! [`FieldKey`] (no `.`, `$`, NUL or control character, no over-long key leaking through), free
//! text that is kept is bounded and free of control characters, escaping round-trips where
//! [`Key`] promises it, and what comes out is bounded by a small multiple of what went in.
//!
//! Compiled only with the `fuzz` feature (off by default: production builds leave it out). Two
//! drivers run the targets, both with the feature on: `tests/fuzz.rs` (stable Rust, part of
//! `scripts/test.sh`) replays the kept corpus under `fuzz/corpus/<target>/` and then mutated
//! inputs for a bounded time; the `fuzz/` crate runs them under libFuzzer on nightly
//! (`scripts/fuzz.sh`). This module reads nothing and writes nothing; it must not know about
//! HTTP or the store.

use crate::field::{self, FieldKey, Key, MAX_KEY_BYTES};
use crate::hit::Location;
use crate::import;
use crate::period::LocalTime;
use crate::reports::{self, Increments, Value};
use crate::site::{Site, SiteId};
use crate::track::agent::{Agent, MAX_UA_BYTES};
use crate::track::events;
use crate::track::query::{PixelParams, MAX_TITLE_BYTES, MAX_URL_BYTES};
use chrono::{DateTime, Utc};
use std::sync::{Arc, OnceLock};

/// A fuzz target: panics when a promise breaks.
pub type Target = fn(&[u8]);

/// The targets, by the name of their corpus directory.
pub const TARGETS: [(&str, Target); 6] = [
    ("pixel_query", pixel_query),
    ("user_agent", user_agent),
    ("field_key", field_key),
    ("log_line", log_line),
    ("event_body", event_body),
    ("forwarded", forwarded),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// The query string of a pixel request (`PixelParams::parse`), then the whole hit path: every
/// report's increments for the hit it describes.
pub fn pixel_query(data: &[u8]) {
    let query = String::from_utf8_lossy(data);
    let params = PixelParams::parse(&query);
    if let Some(site) = &params.site {
        assert!(site.len() <= query.len() * 3, "site grew: {site:?}");
    }
    for (text, max) in [
        (params.page.url, MAX_URL_BYTES),
        (params.page.referrer, MAX_URL_BYTES),
        (params.page.title, MAX_TITLE_BYTES),
    ] {
        if let Some(decoded) = text.and_then(|t| t.decode()) {
            assert!(
                decoded.len() <= max,
                "{} bytes kept, max {max}",
                decoded.len()
            );
            assert!(!decoded.chars().any(char::is_control), "{decoded:?}");
        }
    }
    let agent = Agent::parse_uncached(
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    );
    let site = fuzz_site();
    let at = fixed_instant();
    let hit = params.into_hit(site, agent, Location::NotLooked, at);
    let mut incs = Increments::with_capacity(32);
    reports::count(&hit, &mut incs);
    check_increments(&incs, 200);
}

/// A User-Agent header: whatever it says, the keys are vocabulary and the version is digits.
pub fn user_agent(data: &[u8]) {
    let ua = String::from_utf8_lossy(data);
    let agent = Agent::parse_uncached(&ua);
    for segment in [agent.browser, agent.platform, agent.device, &agent.version] {
        assert!(
            field::is_safe_segment(segment),
            "unsafe segment {segment:?}"
        );
    }
    let path = FieldKey::from_parts(&["b", agent.browser, &agent.version]);
    assert!(FieldKey::parse(path.as_str()).is_some(), "{path}");
    // Cut before parsing: the cached and uncached answers agree.
    let cut = crate::hit::text::truncate(&ua, MAX_UA_BYTES);
    assert_eq!(Agent::parse_uncached(cut), agent);
}

/// Escaping free text into one field name, unescaping it, and reading stored names back.
pub fn field_key(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let key = Key::escape(&text);
    assert!(field::is_field_name(key.as_str()), "{key:?}");
    assert!(key.as_str().len() <= MAX_KEY_BYTES, "{key:?}");
    assert!(!key.is_reserved(), "{key:?} from {text:?}");
    let path = FieldKey::from_parts(&["p", key.as_str(), "v"]);
    assert_eq!(FieldKey::parse(path.as_str()).as_ref(), Some(&path));
    let back = key.unescape();
    if back.truncated {
        assert!(text.starts_with(&back.text), "{back:?} is not a prefix");
        assert!(back.text.len() < text.len());
    } else {
        assert_eq!(back.text, text, "escape/unescape round trip");
    }
    // The same bytes read as a name someone else stored: no panic, bounded, and safe if taken.
    let stored = field::unescape(&text);
    assert!(stored.text.len() <= text.len() * 3 + 3, "{stored:?}");
    if let Some(k) = Key::from_stored(&text) {
        assert!(field::is_field_name(k.as_str()));
    }
    if let Some(path) = FieldKey::parse(&text) {
        assert!(path.as_str().split('.').all(field::is_field_name));
    }
}

/// A line of a server log, in both formats, and the pixel query `tally import` makes of it.
pub fn log_line(data: &[u8]) {
    let line = String::from_utf8_lossy(data);
    let mut query = String::new();
    for format in [import::Format::Combined, import::Format::Json] {
        let Some(parsed) = import::parse(format, &line) else {
            continue;
        };
        for text in [&parsed.method, &parsed.target, &parsed.user_agent] {
            assert!(text.len() <= line.len() * 3, "{text:?} grew");
        }
        match import::classify(&parsed) {
            import::Kind::Page(path) => {
                let referer = parsed.referer.as_deref();
                import::page_query(&mut query, "acme", path, referer);
                // Percent-encoding makes a byte at most three.
                assert!(query.len() <= 64 + 3 * (path.len() + referer.map_or(0, str::len)));
                pixel_query(query.as_bytes());
            }
            import::Kind::Pixel(q) => pixel_query(q.as_bytes()),
            import::Kind::Skip(_) => {}
        }
    }
}

/// A `POST /e` body and a `GET /e` query: the events they hold, as counted.
pub fn event_body(data: &[u8]) {
    let mut raw = events::parse_json(data).unwrap_or_default();
    let query = String::from_utf8_lossy(data);
    if let Ok(e) = events::parse_query(&query) {
        raw.push(e);
    }
    let at = fixed_instant();
    let local = LocalTime::at(at, chrono_tz::Tz::UTC);
    let mut incs = Increments::with_capacity(64);
    for e in &raw {
        assert!(e.props.len() <= reports::events::MAX_PROPERTIES);
        reports::events::count(&e.event(local), &mut incs);
    }
    check_increments(&incs, 64 * (events::MAX_BATCH + 1));
}

/// The forwarding headers of a request (the first line `X-Forwarded-For`, the rest `Forwarded`)
/// under every kind of `--trust-proxy`: a public peer and `none` always give the peer; a
/// trusted peer gives an address only from the headers, never a proxy's when the chain names
/// someone else.
pub fn forwarded(data: &[u8]) {
    use crate::track::client::{client_address, TrustProxy};
    use actix_web::http::header::{HeaderMap, HeaderValue, FORWARDED, X_FORWARDED_FOR};
    use std::net::IpAddr;
    let (xff, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let mut headers = HeaderMap::new();
    for (name, value) in [(X_FORWARDED_FOR, xff), (FORWARDED, rest)] {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            if !value.is_empty() {
                headers.append(name, value);
            }
        }
    }
    let public: IpAddr = [81, 2, 69, 142].into();
    let loopback: IpAddr = [127, 0, 0, 1].into();
    let default = TrustProxy::default();
    for trust in [&default, &TrustProxy::None, &TrustProxy::Hops(2)] {
        let got = client_address(Some(public), &headers, trust);
        if !matches!(trust, TrustProxy::Hops(_)) {
            assert_eq!((got.ip, got.forwarded), (Some(public), false), "{trust}");
        }
        let _ = client_address(None, &headers, trust);
    }
    let got = client_address(Some(loopback), &headers, &TrustProxy::None);
    assert_eq!(got.ip, Some(loopback));
    let got = client_address(Some(loopback), &headers, &default);
    if !got.forwarded {
        assert_eq!(
            got.ip,
            Some(loopback),
            "the peer, when no header named anyone"
        );
    }
}

/// Every path of `incs` is a safe field path of bounded length, every text set is bounded and
/// free of control characters, and there are at most `most` of them.
fn check_increments(incs: &Increments, most: usize) {
    assert!(incs.len() <= most, "{} increments", incs.len());
    for (doc, path, value) in &incs.entries {
        assert!(
            FieldKey::parse(path.as_str()).is_some(),
            "unsafe path {path:?} in {doc:?}"
        );
        assert!(path.as_str().len() <= 8 * MAX_KEY_BYTES, "{path:?}");
        if let Value::Set(text) = value {
            assert!(text.len() <= MAX_URL_BYTES, "{} bytes set", text.len());
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
    }
}

fn fixed_instant() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_435_200, 0).unwrap_or_default() // 2026-11-23 12:00 UTC
}

/// A site that keeps one query parameter and has a host, so every report's code runs.
fn fuzz_site() -> Arc<Site> {
    static SITE: OnceLock<Arc<Site>> = OnceLock::new();
    Arc::clone(SITE.get_or_init(|| {
        Arc::new(Site {
            id: SiteId::parse("acme").expect("a valid id"),
            tz: chrono_tz::Europe::Berlin,
            name: "acme".to_owned(),
            hosts: vec!["acme.example".to_owned()],
            keep_params: vec!["id".to_owned()],
            created_at: fixed_instant(),
            tokens: Vec::new(),
            public: false,
            honor_dnt: false,
        })
    }))
}
