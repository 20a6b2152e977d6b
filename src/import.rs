//! Server logs → pixel hits: parsing nginx/Apache access-log lines and deciding which of them
//! are page views, for `tally import` (`cli::import`).
//!
//! Two formats: `combined` (nginx's and Apache's default, parsed by hand without allocating
//! unless a field holds escapes) and `json` (one object per line, nginx `escape=json` style,
//! parsed with serde). [`classify`] (`page.rs`) then says what a line is: a page view (a `GET`
//! answered 200–399 of a path that is a page by its media type), one of tally's own pixel
//! requests (`/t.gif?...`, whose query string is the hit), or a reason to skip it.
//! [`page_query`] builds the pixel query of a page view.
//!
//! This module is pure: it must not read files, touch the tracker or the store.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;
use std::borrow::Cow;
use std::net::IpAddr;

mod page;
pub use page::{classify, Kind, Skip};

/// A log format `tally import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
    /// "$http_referer" "$http_user_agent"`.
    Combined,
    /// One JSON object per line: `time` (RFC 3339) or `time_local`, `remote_addr`, `request`
    /// (or `method` + `uri`/`request_uri`), `status`, `http_referer`, `http_user_agent`.
    Json,
}

/// One parsed log line. Text fields borrow from the line unless they held escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    /// The client's address; `None` when the field is not an IP address (a host name).
    pub addr: Option<IpAddr>,
    pub at: DateTime<Utc>,
    pub method: Cow<'a, str>,
    /// The request target as sent: a path with its query, or an absolute URL.
    pub target: Cow<'a, str>,
    pub status: u16,
    /// `None` for `-` or an empty field.
    pub referer: Option<Cow<'a, str>>,
    /// Empty for `-`.
    pub user_agent: Cow<'a, str>,
}

/// Parses one line in `format`; `None` when it is malformed.
pub fn parse(format: Format, line: &str) -> Option<Line<'_>> {
    match format {
        Format::Combined => parse_combined(line),
        Format::Json => parse_json(line),
    }
}

/// Parses a line of the combined format; `None` when it is malformed.
pub fn parse_combined(line: &str) -> Option<Line<'_>> {
    let mut rest = line.trim_end_matches(['\r', '\n']);
    let addr = word(&mut rest)?;
    let _ident = word(&mut rest)?;
    let _user = word(&mut rest)?;
    rest = rest.strip_prefix('[')?;
    let (time, after) = rest.split_once(']')?;
    rest = after.trim_start_matches(' ');
    let at = parse_time_local(time)?;
    let request = quoted(&mut rest)?;
    let status = word(&mut rest)?.parse().ok()?;
    let _bytes = word(&mut rest)?;
    let referer = quoted(&mut rest)?;
    let user_agent = quoted(&mut rest)?;
    let (method, target) = split_request(request)?;
    Some(Line {
        addr: parse_addr(addr),
        at,
        method,
        target,
        status,
        referer: dash_none(referer),
        user_agent: dash_empty(user_agent),
    })
}

/// The next space-separated word, consuming it and the spaces after it.
fn word<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let end = rest.find(' ').unwrap_or(rest.len());
    let w = &rest[..end];
    *rest = rest[end..].trim_start_matches(' ');
    (!w.is_empty()).then_some(w)
}

/// The next `"..."` field, consuming it; `\"` and `\\` inside are escapes (Apache), nginx writes
/// `\x22`. Both are decoded, allocating only when the field holds a backslash.
fn quoted<'a>(rest: &mut &'a str) -> Option<Cow<'a, str>> {
    let body = rest.strip_prefix('"')?;
    let bytes = body.as_bytes();
    let mut i = 0;
    let mut escaped = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                escaped = true;
                i += 2;
            }
            b'"' => break,
            _ => i += 1,
        }
    }
    if i >= bytes.len() {
        return None;
    }
    let raw = &body[..i];
    *rest = body[i + 1..].trim_start_matches(' ');
    Some(if escaped {
        Cow::Owned(unescape(raw))
    } else {
        Cow::Borrowed(raw)
    })
}

/// Decodes `\"`, `\\` and `\xHH` (bytes that do not make UTF-8 become U+FFFD).
fn unescape(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            let next = bytes[i + 1];
            // Read as bytes: `\x` may be followed by anything, a multi-byte character too.
            let digits = bytes.get(i + 2..i + 4).and_then(|h| {
                let hex = |b: u8| (b as char).to_digit(16);
                Some(hex(h[0])? * 16 + hex(h[1])?)
            });
            if let (b'x', Some(b)) = (next, digits) {
                out.push(b as u8);
                i += 4;
                continue;
            }
            out.push(next);
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `GET /path HTTP/1.1` → method and target; `None` when there is no target.
fn split_request(request: Cow<'_, str>) -> Option<(Cow<'_, str>, Cow<'_, str>)> {
    fn split(r: &str) -> Option<(&str, &str)> {
        let mut parts = r.split(' ').filter(|p| !p.is_empty());
        Some((parts.next()?, parts.next()?))
    }
    match request {
        Cow::Borrowed(r) => split(r).map(|(m, t)| (Cow::Borrowed(m), Cow::Borrowed(t))),
        Cow::Owned(r) => {
            split(&r).map(|(m, t)| (Cow::Owned(m.to_owned()), Cow::Owned(t.to_owned())))
        }
    }
}

fn parse_addr(raw: &str) -> Option<IpAddr> {
    let raw = raw
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(raw);
    raw.parse().ok()
}

fn dash_none(field: Cow<'_, str>) -> Option<Cow<'_, str>> {
    (!field.is_empty() && field != "-").then_some(field)
}

fn dash_empty(field: Cow<'_, str>) -> Cow<'_, str> {
    if field == "-" {
        Cow::Borrowed("")
    } else {
        field
    }
}

/// `23/Nov/2026:14:05:07 +0100` → the instant; `None` for anything else.
pub fn parse_time_local(raw: &str) -> Option<DateTime<Utc>> {
    let b = raw.as_bytes();
    if b.len() != 26
        || b[2] != b'/'
        || b[6] != b'/'
        || b[11] != b':'
        || b[14] != b':'
        || b[17] != b':'
        || b[20] != b' '
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        let s = &b[from..to];
        s.iter()
            .all(u8::is_ascii_digit)
            .then(|| s.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let month = match &b[3..6] {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(num(7, 11)? as i32, month, num(0, 2)?)?;
    let local = date.and_hms_opt(num(12, 14)?, num(15, 17)?, num(18, 20)?)?;
    let sign = match b[21] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (oh, om) = (num(22, 24)?, num(24, 26)?);
    if om >= 60 {
        return None;
    }
    let offset = FixedOffset::east_opt(sign * (oh * 3600 + om * 60) as i32)?;
    Some(local.and_local_timezone(offset).single()?.to_utc())
}

/// The fields of a JSON log line tally reads; others are ignored.
#[derive(Deserialize)]
struct JsonLine<'a> {
    #[serde(borrow, default)]
    time: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    time_local: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    remote_addr: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    request: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    uri: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    request_uri: Option<Cow<'a, str>>,
    #[serde(default)]
    status: Option<serde_json::Value>,
    #[serde(borrow, default)]
    http_referer: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    http_user_agent: Option<Cow<'a, str>>,
}

/// Parses a JSON line; `None` when it is malformed or lacks a time, a request or a status.
pub fn parse_json(line: &str) -> Option<Line<'_>> {
    let j: JsonLine<'_> = serde_json::from_str(line.trim_end_matches(['\r', '\n'])).ok()?;
    let at = match (&j.time, &j.time_local) {
        (Some(t), _) => DateTime::parse_from_rfc3339(t).ok()?.to_utc(),
        (None, Some(t)) => parse_time_local(t)?,
        (None, None) => return None,
    };
    let status = match j.status? {
        serde_json::Value::Number(n) => n.as_u64()?,
        serde_json::Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    let (method, target) = match (j.request, j.method, j.uri.or(j.request_uri)) {
        (_, Some(m), Some(u)) => (m, u),
        (Some(r), _, _) => split_request(r)?,
        _ => return None,
    };
    Some(Line {
        addr: j.remote_addr.as_deref().and_then(parse_addr),
        at,
        method,
        target,
        status: u16::try_from(status).ok()?,
        referer: j.http_referer.and_then(dash_none),
        user_agent: dash_empty(j.http_user_agent.unwrap_or_default()),
    })
}

/// What is escaped in a query value: everything but unreserved characters.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// Writes the pixel query of a page view into `out` (cleared first): `site`, `url` and `ref`,
/// and no uniqueness flag (a log cannot tell who is new).
pub fn page_query(out: &mut String, site: &str, path: &str, referer: Option<&str>) {
    use std::fmt::Write;
    out.clear();
    let _ = write!(out, "site={site}&url={}", utf8_percent_encode(path, VALUE));
    if let Some(r) = referer {
        let _ = write!(out, "&ref={}", utf8_percent_encode(r, VALUE));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0";

    /// Found by the fuzz target `log_line`: `\x` followed by a multi-byte character was sliced
    /// inside the character, which panicked.
    #[test]
    fn a_hex_escape_before_a_multibyte_character_is_kept_as_text() {
        assert_eq!(unescape("\\x00\\xf\u{FFFD}"), "\0xf\u{FFFD}");
        assert_eq!(unescape("\\x\u{e9}\u{e9}"), "x\u{e9}\u{e9}");
        assert_eq!(unescape("\\x4"), "x4");
        assert_eq!(unescape("\\x41\\x"), "Ax");
        let line = "203.0.113.7 - - [23/Nov/2026:14:05:07 +0100] \"GET / HTTP/1.1\" 200 1 \"-\" \"\\xf\u{FFFD}\"";
        assert_eq!(parse_combined(line).unwrap().user_agent, "xf\u{FFFD}");
    }

    #[test]
    fn a_combined_line() {
        let text = format!(
            r#"203.0.113.7 - - [23/Nov/2026:14:05:07 +0100] "GET /blog/post?id=1 HTTP/1.1" 200 5120 "https://www.google.com/" "{UA}""#
        );
        let l = parse_combined(&text).unwrap();
        assert_eq!(l.addr, Some("203.0.113.7".parse().unwrap()));
        assert_eq!(l.at, Utc.with_ymd_and_hms(2026, 11, 23, 13, 5, 7).unwrap());
        assert_eq!(l.method, "GET");
        assert_eq!(l.target, "/blog/post?id=1");
        assert_eq!(l.status, 200);
        assert_eq!(l.referer.as_deref(), Some("https://www.google.com/"));
        assert_eq!(l.user_agent, UA);
        assert!(matches!(l.target, Cow::Borrowed(_)), "no allocation");
        assert_eq!(classify(&l), Kind::Page("/blog/post?id=1"));
    }

    #[test]
    fn dash_fields_and_a_user() {
        let l = parse_combined(
            r#"198.51.100.2 - alice [01/Jan/2026:00:00:00 -0500] "GET / HTTP/2.0" 304 - "-" "-""#,
        )
        .unwrap();
        assert_eq!(l.referer, None);
        assert_eq!(l.user_agent, "");
        assert_eq!(l.at, Utc.with_ymd_and_hms(2026, 1, 1, 5, 0, 0).unwrap());
        assert_eq!(classify(&l), Kind::Page("/"));
    }

    #[test]
    fn quotes_inside_fields() {
        // Apache escapes a quote as \" and nginx as \x22.
        let l = parse_combined(
            r#"192.0.2.1 - - [23/Nov/2026:14:05:07 +0000] "GET /q HTTP/1.1" 200 1 "https://a.example/?q=\"x\"" "Agent \x22quoted\x22 \\ end""#,
        )
        .unwrap();
        assert_eq!(l.referer.as_deref(), Some(r#"https://a.example/?q="x""#));
        assert_eq!(l.user_agent, r#"Agent "quoted" \ end"#);
    }

    #[test]
    fn ipv6_and_host_names() {
        let line = |addr: &str| {
            format!(r#"{addr} - - [23/Nov/2026:14:05:07 +0000] "GET / HTTP/1.1" 200 1 "-" "-""#)
        };
        let text = line("2001:db8::7");
        let l = parse_combined(&text).unwrap();
        assert_eq!(l.addr, Some("2001:db8::7".parse().unwrap()));
        let text = line("[::1]");
        let l = parse_combined(&text).unwrap();
        assert_eq!(l.addr, Some("::1".parse().unwrap()));
        let text = line("proxy.example");
        let l = parse_combined(&text).unwrap();
        assert_eq!(
            l.addr, None,
            "a host name is no address, but the line counts"
        );
    }

    #[test]
    fn bad_dates() {
        for t in [
            "23/Nov/2026:14:05:07",       // no zone
            "32/Nov/2026:14:05:07 +0000", // no such day
            "29/Feb/2026:14:05:07 +0000", // not a leap year
            "23/Nox/2026:14:05:07 +0000", // no such month
            "23/Nov/2026:24:05:07 +0000", // no such hour
            "23/Nov/2026:14:05:07 +0160", // no such offset
            "23/Nov/2026 14:05:07 +0000", // wrong separator
            "2026-11-23T14:05:07Z",       // another format
            "23/Nov/2026:14:05:0x +0000", // not a number
        ] {
            assert_eq!(parse_time_local(t), None, "{t}");
            let line = format!(r#"192.0.2.1 - - [{t}] "GET / HTTP/1.1" 200 1 "-" "-""#);
            assert_eq!(parse_combined(&line), None, "{line}");
        }
        assert!(parse_time_local("29/Feb/2028:23:59:59 -0930").is_some());
    }

    #[test]
    fn malformed_lines() {
        for line in [
            "",
            "garbage",
            r#"192.0.2.1 - - [23/Nov/2026:14:05:07 +0000] "GET / HTTP/1.1" 200 1 "-""#,
            r#"192.0.2.1 - - [23/Nov/2026:14:05:07 +0000] "GET / HTTP/1.1 200 1 "-" "-""#,
            r#"192.0.2.1 - - [23/Nov/2026:14:05:07 +0000] "GET / HTTP/1.1" OK 1 "-" "-""#,
            r#"192.0.2.1 - - [23/Nov/2026:14:05:07 +0000] "-" 400 0 "-" "-""#,
            r#"192.0.2.1 - - [23/Nov/2026:14:05:07 +0000] "GET / HTTP/1.1" 200 1 "-" "unterminated"#,
        ] {
            assert_eq!(parse_combined(line), None, "{line}");
        }
    }

    #[test]
    fn json_lines() {
        let l = parse_json(
            r#"{"time":"2026-11-23T14:05:07+01:00","remote_addr":"2001:db8::1","request":"GET /about HTTP/1.1","status":"200","http_referer":"","http_user_agent":"Agent \"x\""}"#,
        )
        .unwrap();
        assert_eq!(l.at, Utc.with_ymd_and_hms(2026, 11, 23, 13, 5, 7).unwrap());
        assert_eq!(l.addr, Some("2001:db8::1".parse().unwrap()));
        assert_eq!((&*l.method, &*l.target, l.status), ("GET", "/about", 200));
        assert_eq!(l.referer, None);
        assert_eq!(l.user_agent, r#"Agent "x""#);

        let l = parse_json(
            r#"{"time_local":"23/Nov/2026:14:05:07 +0000","method":"GET","request_uri":"/x?y=1","status":301,"http_referer":"https://b.example/","extra":[1]}"#,
        )
        .unwrap();
        assert_eq!((&*l.target, l.status), ("/x?y=1", 301));
        assert_eq!(l.referer.as_deref(), Some("https://b.example/"));

        for bad in [
            "{",
            r#"{"request":"GET / HTTP/1.1","status":200}"#,
            r#"{"time":"yesterday","request":"GET / HTTP/1.1","status":200}"#,
            r#"{"time":"2026-11-23T14:05:07Z","status":200}"#,
            r#"{"time":"2026-11-23T14:05:07Z","request":"GET / HTTP/1.1","status":true}"#,
        ] {
            assert_eq!(parse_json(bad), None, "{bad}");
        }
    }

    #[test]
    fn page_queries() {
        let mut q = String::new();
        page_query(
            &mut q,
            "acme",
            "/caf%C3%A9?a=1&b=2",
            Some("https://x.example/?q=a b"),
        );
        assert_eq!(
            q,
            "site=acme&url=/caf%25C3%25A9%3Fa%3D1%26b%3D2&ref=https%3A//x.example/%3Fq%3Da%20b"
        );
        page_query(&mut q, "acme", "/", None);
        assert_eq!(q, "site=acme&url=/");
    }
}
