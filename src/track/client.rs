//! The visitor's address, behind as many reverse proxies as the operator says to trust.
//!
//! The chain is the forwarding headers' addresses, oldest first, followed by the socket peer.
//! Everything left of the trusted proxies' own entries was written by the client or by
//! proxies nobody vouches for, so it is never read: the client is the entry
//! `trusted_proxies` hops from the right.
//!
//! This module reads headers and returns an address; it must not log or keep it.

use actix_web::http::header::{HeaderMap, HeaderValue, FORWARDED, X_FORWARDED_FOR};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The visitor's address: the socket peer, or, when `trusted_proxies` > 0, the address
/// `trusted_proxies` hops from the right of the chain formed by the forwarding headers followed
/// by the peer.
///
/// The forwarding headers are every `Forwarded` (RFC 7239) instance in order, one hop per
/// element, read from its `for=` parameter; or, when there is no `Forwarded` header, every
/// `X-Forwarded-For` instance in order, one hop per comma-separated item. A chain shorter than
/// `trusted_proxies + 1` gives its leftmost entry. An entry that is not an address (`unknown`,
/// an obfuscated `_name`, an element without `for=`, garbage) gives `None`.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted_proxies: u8) -> Option<IpAddr> {
    if trusted_proxies == 0 {
        return peer;
    }
    // Two passes over the headers, counting then picking, rather than a Vec per hit.
    let mut hops = Hops::new(headers);
    let forwarded = hops.clone().count();
    // chain = hops + [peer]; the wanted index is (forwarded + 1) - 1 - trusted_proxies.
    let index = forwarded.saturating_sub(usize::from(trusted_proxies));
    if index == forwarded {
        return peer;
    }
    hops.nth(index).and_then(parse_node)
}

/// The raw address of each forwarded hop, oldest first.
#[derive(Clone)]
struct Hops<'h> {
    /// `Forwarded` elements (their `for=` value) rather than `X-Forwarded-For` items.
    rfc7239: bool,
    values: std::slice::Iter<'h, HeaderValue>,
    /// What is left of the header value being read; `None` between values.
    rest: Option<&'h [u8]>,
}

impl<'h> Hops<'h> {
    fn new(headers: &'h HeaderMap) -> Hops<'h> {
        let rfc7239 = headers.contains_key(FORWARDED);
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
fn parse_node(raw: &[u8]) -> Option<IpAddr> {
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
        return v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
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

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderName;

    const PEER: &str = "10.0.0.2";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append((*name).clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn client(pairs: &[(&HeaderName, &str)], trusted: u8) -> Option<IpAddr> {
        client_ip(Some(ip(PEER)), &headers(pairs), trusted)
    }

    fn xff(value: &str, trusted: u8) -> Option<IpAddr> {
        client(&[(&X_FORWARDED_FOR, value)], trusted)
    }

    fn fwd(value: &str, trusted: u8) -> Option<IpAddr> {
        client(&[(&FORWARDED, value)], trusted)
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_headers_say() {
        assert_eq!(client(&[], 0), Some(ip(PEER)));
        assert_eq!(xff("203.0.113.9", 0), Some(ip(PEER)));
        assert_eq!(fwd("for=203.0.113.9", 0), Some(ip(PEER)));
        assert_eq!(client_ip(None, &headers(&[]), 0), None);
    }

    #[test]
    fn without_headers_the_peer_is_the_leftmost_and_only_entry() {
        assert_eq!(client(&[], 1), Some(ip(PEER)));
        assert_eq!(client(&[], 3), Some(ip(PEER)));
        assert_eq!(client_ip(None, &headers(&[]), 1), None);
    }

    #[test]
    fn x_forwarded_for_single_address() {
        assert_eq!(xff("203.0.113.9", 1), Some(ip("203.0.113.9")));
        assert_eq!(xff(" 203.0.113.9 ", 1), Some(ip("203.0.113.9")));
        assert_eq!(xff("203.0.113.9:5678", 1), Some(ip("203.0.113.9")));
        assert_eq!(xff("2001:db8::7", 1), Some(ip("2001:db8::7")));
        assert_eq!(xff("[2001:db8::7]:443", 1), Some(ip("2001:db8::7")));
    }

    #[test]
    fn spoofed_leftmost_entries_are_never_read() {
        // The client sent "1.1.1.1, 2.2.2.2"; the edge proxy appended 198.51.100.1 (what it
        // saw); the inner proxy appended 192.0.2.50 and connected to us from PEER.
        let chain = "1.1.1.1, 2.2.2.2, 198.51.100.1";
        assert_eq!(xff(chain, 1), Some(ip("198.51.100.1")));
        let chain = "1.1.1.1, 2.2.2.2, 198.51.100.1, 192.0.2.50";
        assert_eq!(xff(chain, 2), Some(ip("198.51.100.1")));
        assert_eq!(xff(chain, 1), Some(ip("192.0.2.50")));
    }

    #[test]
    fn forwarded_with_quoted_ipv6_ports_and_other_parameters() {
        let value = r#"for="[2001:db8:cafe::17]:4711";proto=https;by=203.0.113.43"#;
        assert_eq!(fwd(value, 1), Some(ip("2001:db8:cafe::17")));
        assert_eq!(fwd(r#"For="[2001:db8::1]""#, 1), Some(ip("2001:db8::1")));
        assert_eq!(fwd(r#"for="192.0.2.60:80""#, 1), Some(ip("192.0.2.60")));
        assert_eq!(fwd("proto=http; for=192.0.2.60", 1), Some(ip("192.0.2.60")));
        let chain = r#"for=1.1.1.1, for="198.51.100.17:8080";by="a,b;c", for=192.0.2.43"#;
        assert_eq!(fwd(chain, 1), Some(ip("192.0.2.43")));
        assert_eq!(fwd(chain, 2), Some(ip("198.51.100.17")));
        assert_eq!(fwd(chain, 3), Some(ip("1.1.1.1")));
    }

    #[test]
    fn forwarded_is_preferred_over_x_forwarded_for() {
        let both = [
            (&X_FORWARDED_FOR, "198.51.100.99"),
            (&FORWARDED, "for=192.0.2.60"),
        ];
        assert_eq!(client(&both, 1), Some(ip("192.0.2.60")));
        // Even when it says nothing usable: it is the header the proxy wrote.
        let both = [
            (&FORWARDED, "for=unknown"),
            (&X_FORWARDED_FOR, "198.51.100.99"),
        ];
        assert_eq!(client(&both, 1), None);
    }

    #[test]
    fn unparseable_entries_give_none() {
        for value in [
            "unknown",
            "_hidden",
            "\"_hidden:_port\"",
            "",
            "garbage",
            "1.2.3",
            "999.1.1.1",
        ] {
            assert_eq!(
                fwd(&format!("for={value}"), 1),
                None,
                "Forwarded for={value}"
            );
            assert_eq!(xff(value, 1), None, "X-Forwarded-For {value}");
        }
        for value in [
            "1.2.3.4:",
            "1.2.3.4:99999x",
            "[2001:db8::1",
            "[1.2.3.4]",
            "[::1]x",
            "\"1.2.3.4",
        ] {
            assert_eq!(xff(value, 1), None, "{value}");
        }
        assert_eq!(fwd("proto=https", 1), None, "an element without for=");
        assert_eq!(fwd("for", 1), None);
        // Garbage further left does not matter.
        assert_eq!(xff("<script>, 198.51.100.1", 1), Some(ip("198.51.100.1")));
        assert_eq!(
            fwd("for=_x;;;, for=\"[::1]\", for=198.51.100.1", 1),
            Some(ip("198.51.100.1"))
        );
        // The empty item counts as a hop: a proxy appends exactly one.
        assert_eq!(xff("198.51.100.1, ", 1), None);
    }

    #[test]
    fn multiple_header_instances_form_one_chain_in_order() {
        let xffs = [
            (&X_FORWARDED_FOR, "1.1.1.1, 198.51.100.1"),
            (&X_FORWARDED_FOR, "192.0.2.50"),
        ];
        assert_eq!(client(&xffs, 1), Some(ip("192.0.2.50")));
        assert_eq!(client(&xffs, 2), Some(ip("198.51.100.1")));
        assert_eq!(client(&xffs, 3), Some(ip("1.1.1.1")));
        let fwds = [
            (&FORWARDED, "for=1.1.1.1"),
            (&FORWARDED, "for=198.51.100.1, for=\"[2001:db8::5]\""),
        ];
        assert_eq!(client(&fwds, 1), Some(ip("2001:db8::5")));
        assert_eq!(client(&fwds, 2), Some(ip("198.51.100.1")));
    }

    #[test]
    fn more_trusted_proxies_than_the_chain_has_give_the_leftmost_entry() {
        assert_eq!(xff("1.1.1.1, 198.51.100.1", 2), Some(ip("1.1.1.1")));
        assert_eq!(xff("1.1.1.1, 198.51.100.1", 3), Some(ip("1.1.1.1")));
        assert_eq!(xff("1.1.1.1, 198.51.100.1", 255), Some(ip("1.1.1.1")));
        assert_eq!(xff("unknown, 198.51.100.1", 200), None);
    }
}
