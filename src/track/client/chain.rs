//! The forwarding chain as written: the hops of `X-Forwarded-For` (every instance in order, one
//! per comma-separated item) or of `Forwarded` (RFC 7239, one per element, its `for=`), and an
//! address as a hop writes it (a port, brackets, quotes).
//!
//! This module reads header bytes without allocating; it must not decide which hop is the
//! client (that is [`super::client_address`]), log or keep an address.

use actix_web::http::header::{HeaderMap, HeaderValue, FORWARDED, X_FORWARDED_FOR};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The raw address of each forwarded hop, oldest first.
#[derive(Clone)]
pub(super) struct Hops<'h> {
    /// `Forwarded` elements (their `for=` value) rather than `X-Forwarded-For` items.
    rfc7239: bool,
    values: std::slice::Iter<'h, HeaderValue>,
    /// What is left of the header value being read; `None` between values.
    rest: Option<&'h [u8]>,
}

impl<'h> Hops<'h> {
    pub(super) fn new(headers: &'h HeaderMap) -> Hops<'h> {
        let rfc7239 = !headers.contains_key(X_FORWARDED_FOR) && headers.contains_key(FORWARDED);
        let name = if rfc7239 { FORWARDED } else { X_FORWARDED_FOR };
        Hops {
            rfc7239,
            values: headers.get_all(name),
            rest: None,
        }
    }
}

impl<'h> Iterator for Hops<'h> {
    type Item = &'h [u8];

    fn next(&mut self) -> Option<&'h [u8]> {
        let rest = match self.rest {
            Some(rest) => rest,
            None => self.values.next()?.as_bytes(),
        };
        let (item, after) = split_unquoted(rest, b',');
        self.rest = after;
        Some(if self.rfc7239 { for_param(item) } else { item })
    }
}

/// Splits at the first `sep` outside a quoted string: what is before it, and what is after it
/// (`None` when there is no separator).
fn split_unquoted(s: &[u8], sep: u8) -> (&[u8], Option<&[u8]>) {
    let mut quoted = false;
    let mut escaped = false;
    for (i, &c) in s.iter().enumerate() {
        match c {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            _ if c == sep && !quoted => return (&s[..i], Some(&s[i + 1..])),
            _ => {}
        }
    }
    (s, None)
}

/// The value of the `for` parameter of one `Forwarded` element, or empty when it has none.
fn for_param(element: &[u8]) -> &[u8] {
    let mut rest = Some(element);
    while let Some(pairs) = rest {
        let (pair, after) = split_unquoted(pairs, b';');
        rest = after;
        if let Some(eq) = pair.iter().position(|&c| c == b'=') {
            if pair[..eq].trim_ascii().eq_ignore_ascii_case(b"for") {
                return &pair[eq + 1..];
            }
        }
    }
    b""
}

/// An address as a forwarding header writes it: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`,
/// `[2001:db8::1]`, `[2001:db8::1]:4711`, any of them in double quotes.
pub(super) fn parse_node(raw: &[u8]) -> Option<IpAddr> {
    let raw = raw.trim_ascii();
    let raw = match raw {
        [b'"', inner @ .., b'"'] => inner,
        _ => raw,
    };
    let s = std::str::from_utf8(raw).ok()?;
    if let Some(bracketed) = s.strip_prefix('[') {
        let (v6, after) = bracketed.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return v6
            .parse::<Ipv6Addr>()
            .ok()
            .map(|v6| IpAddr::V6(v6).to_canonical());
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let (v4, port) = s.split_once(':')?;
    if !is_port(port) {
        return None;
    }
    v4.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// A port number, or an RFC 7239 obfuscated port (`_` and letters, digits, `.`, `_`, `-`).
fn is_port(s: &str) -> bool {
    let digits = !s.is_empty() && s.len() <= 5 && s.bytes().all(|c| c.is_ascii_digit());
    let obfuscated = s.len() > 1
        && s.starts_with('_')
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    digits || obfuscated
}
