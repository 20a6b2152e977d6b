//! The visitor's address: the one function every use of it goes through (the rate limits, the
//! key budget, the country lookup, the read API's limit on wrong tokens).
//!
//! Which peers are proxies is [`TrustProxy`] (`--trust-proxy`):
//! - **the default**, Rails-style: a peer on loopback, a private network (RFC 1918), an IPv6
//!   unique-local (`fc00::/7`) or a link-local network is a proxy, and so is every such address
//!   in its forwarding header. The client is the rightmost entry of the chain that is not a
//!   proxy's; nothing left of it is read, since only the proxies' own entries can be believed.
//!   A request from a public peer is its own client, whatever its headers say.
//! - **networks**: the same, with the operator's list of networks instead of the private ones.
//! - **hops**: the entry that many hops from the right, whatever its address.
//! - **none**: the connection's own address, always.
//!
//! The chain is `X-Forwarded-For` (every instance in order, one hop per comma-separated item),
//! or, for a request without one, `Forwarded` (RFC 7239, one hop per element, its `for=`).
//! `X-Forwarded-For` comes first because it is what nginx, Caddy, HAProxy and the cloud load
//! balancers write, and most of them pass a client's own `Forwarded` through untouched.
//!
//! This module reads headers and returns an address; it must not log or keep it.

use actix_web::http::header::{HeaderMap, HeaderValue, FORWARDED, X_FORWARDED_FOR};
use ipnet::IpNet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Which peers are reverse proxies whose forwarding headers are believed (`--trust-proxy`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustProxy {
    /// The connection's own address is the client, whatever the headers say.
    None,
    /// The entry this many hops from the right of the chain (the peer is hop 0).
    Hops(u8),
    /// Peers and forwarded entries in these networks are proxies; `default` when they are
    /// [`PRIVATE_NETWORKS`].
    Networks { nets: Vec<IpNet>, default: bool },
}

/// The default proxies: loopback, RFC 1918, IPv4 and IPv6 link-local, IPv6 unique-local.
pub const PRIVATE_NETWORKS: [&str; 8] = [
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
];

/// Most hops `--trust-proxy=N` may name.
pub const MAX_HOPS: u8 = 8;

/// Entries of a chain examined at most, from the right: a longer chain is a client padding it
/// (no deployment has more proxies than this), and parsing every entry would let it make each
/// request cost more.
const MAX_EXAMINED: usize = 32;

impl Default for TrustProxy {
    fn default() -> TrustProxy {
        TrustProxy::Networks {
            nets: PRIVATE_NETWORKS
                .iter()
                .map(|n| n.parse().expect("the private networks parse"))
                .collect(),
            default: true,
        }
    }
}

impl TrustProxy {
    /// `none` (or `0`), a hop count `1`–`8`, `private` (the default), or a comma-separated list
    /// of networks and addresses (`10.1.0.0/16,192.0.2.7,2001:db8::/48`) replacing the default.
    pub fn parse(raw: &str) -> Result<TrustProxy, String> {
        let raw = raw.trim();
        match raw.to_ascii_lowercase().as_str() {
            "none" | "0" => return Ok(TrustProxy::None),
            "private" | "default" => return Ok(TrustProxy::default()),
            _ => {}
        }
        if let Ok(hops) = raw.parse::<u8>() {
            if (1..=MAX_HOPS).contains(&hops) {
                return Ok(TrustProxy::Hops(hops));
            }
        }
        if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "{raw:?} is not a hop count from 1 to {MAX_HOPS} (or none, private, or networks)"
            ));
        }
        let mut nets = Vec::new();
        for item in raw.split([',', ' ']).filter(|s| !s.is_empty()) {
            let net = item
                .parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!("{item:?} is not a network (10.0.0.0/8, fd00::/8) or an address")
                })?;
            nets.push(canonical_net(net.trunc()));
        }
        if nets.is_empty() {
            return Err(
                "expected none, a hop count from 1 to 8, private, or a list of networks".into(),
            );
        }
        Ok(TrustProxy::Networks {
            nets,
            default: false,
        })
    }

    /// Whether this is the default set of private networks.
    pub fn is_default(&self) -> bool {
        matches!(self, TrustProxy::Networks { default: true, .. })
    }

    fn trusts(nets: &[IpNet], ip: IpAddr) -> bool {
        nets.iter().any(|n| n.contains(&ip))
    }

    /// Whether `ip` (canonical) is a proxy under this trust (never for a hop count or `none`,
    /// which do not go by address).
    fn trusted(&self, ip: IpAddr) -> bool {
        match self {
            // The default set by the standard library's own tests, which cost a few
            // instructions where matching eight networks costs a few hundred.
            TrustProxy::Networks { default: true, .. } => is_private(ip),
            TrustProxy::Networks { nets, .. } => TrustProxy::trusts(nets, ip),
            TrustProxy::None | TrustProxy::Hops(_) => false,
        }
    }
}

/// An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) as the IPv4 network it is, since
/// addresses are compared in their canonical form.
fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
            Some(v4) if v6.prefix_len() >= 96 => {
                IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96).unwrap_or(net)
            }
            _ => net,
        },
        v4 => v4,
    }
}

impl fmt::Display for TrustProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustProxy::None => f.write_str("none"),
            TrustProxy::Hops(n) => write!(f, "{n}"),
            TrustProxy::Networks { default: true, .. } => f.write_str("private"),
            TrustProxy::Networks { nets, .. } => {
                let list: Vec<String> = nets.iter().map(IpNet::to_string).collect();
                f.write_str(&list.join(","))
            }
        }
    }
}

/// Who sent a request, as far as tally can tell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientAddress {
    /// The client's address; `None` when there is no peer (a test request) or when the entry
    /// that names the client is not an address (`unknown`, an obfuscated `_name`, garbage).
    pub ip: Option<IpAddr>,
    /// The address came from a forwarding header rather than the connection.
    pub forwarded: bool,
}

impl ClientAddress {
    /// The connection's own address.
    pub fn peer(peer: Option<IpAddr>) -> ClientAddress {
        ClientAddress {
            ip: peer.map(|ip| ip.to_canonical()),
            forwarded: false,
        }
    }
}

/// The client of a request from `peer` (the connection's address) with `headers`, under
/// `trust`. Addresses come back canonical (an IPv4-mapped IPv6 address as IPv4).
pub fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trust: &TrustProxy,
) -> ClientAddress {
    let peer = peer.map(|ip| ip.to_canonical());
    match trust {
        TrustProxy::None => ClientAddress::peer(peer),
        TrustProxy::Hops(n) => by_hops(peer, headers, *n),
        TrustProxy::Networks { .. } => match peer {
            Some(ip) if trust.trusted(ip) => by_networks(ip, headers, trust),
            _ => ClientAddress::peer(peer),
        },
    }
}

/// The entry `hops` from the right of the chain (the forwarded entries followed by the peer);
/// a chain shorter than that gives its leftmost entry.
fn by_hops(peer: Option<IpAddr>, headers: &HeaderMap, hops: u8) -> ClientAddress {
    // Two passes over the headers, counting then picking, rather than a Vec per request.
    let mut chain = Hops::new(headers);
    let forwarded = chain.clone().count();
    // chain = entries + [peer]; the wanted index is (forwarded + 1) - 1 - hops.
    let index = forwarded.saturating_sub(usize::from(hops));
    if index == forwarded {
        return ClientAddress::peer(peer);
    }
    ClientAddress {
        ip: chain.nth(index).and_then(parse_node),
        forwarded: true,
    }
}

/// The rightmost forwarded entry that is not in `nets` (a trusted `peer` sent the request);
/// when every entry is, the leftmost; without entries, the peer.
fn by_networks(peer: IpAddr, headers: &HeaderMap, trust: &TrustProxy) -> ClientAddress {
    let chain = Hops::new(headers);
    let forwarded = chain.clone().count();
    if forwarded == 0 {
        return ClientAddress::peer(Some(peer));
    }
    let mut leftmost = None;
    let mut client = None;
    for raw in chain.skip(forwarded.saturating_sub(MAX_EXAMINED)) {
        let ip = parse_node(raw);
        if leftmost.is_none() {
            leftmost = Some(ip);
        }
        match ip {
            Some(ip) if trust.trusted(ip) => {}
            // Not a proxy, or not an address at all: the client as far as can be known.
            other => client = Some(other),
        }
    }
    ClientAddress {
        ip: client.or(leftmost).flatten(),
        forwarded: true,
    }
}

/// Whether a canonical address is in [`PRIVATE_NETWORKS`].
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unique_local() || v6.is_unicast_link_local(),
    }
}

/// What is limited and budgeted as one sender: an IPv4 address, or an IPv6 address's /64
/// prefix, which is what one household or one server is given (a single machine can use any
/// address in its /64).
pub fn address_block(address: IpAddr) -> u128 {
    match address.to_canonical() {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => (u128::from(v6) >> 64 << 64) | 1 << 32,
    }
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

    fn trust(hops: u8) -> TrustProxy {
        match hops {
            0 => TrustProxy::None,
            n => TrustProxy::Hops(n),
        }
    }

    /// The client by hop count, from PEER.
    fn client(pairs: &[(&HeaderName, &str)], hops: u8) -> Option<IpAddr> {
        client_address(Some(ip(PEER)), &headers(pairs), &trust(hops)).ip
    }

    fn xff(value: &str, hops: u8) -> Option<IpAddr> {
        client(&[(&X_FORWARDED_FOR, value)], hops)
    }

    fn fwd(value: &str, hops: u8) -> Option<IpAddr> {
        client(&[(&FORWARDED, value)], hops)
    }

    /// The client under the default trust, from `peer` with `X-Forwarded-For: value`.
    fn rails(peer: &str, value: &str) -> ClientAddress {
        client_address(
            Some(ip(peer)),
            &headers(&[(&X_FORWARDED_FOR, value)]),
            &TrustProxy::default(),
        )
    }

    fn forwarded(s: &str) -> ClientAddress {
        ClientAddress {
            ip: Some(ip(s)),
            forwarded: true,
        }
    }

    #[test]
    fn the_default_trusts_private_peers_and_reads_the_rightmost_public_entry() {
        // nginx on the same machine appended what it saw to the client's own header.
        assert_eq!(rails("127.0.0.1", "81.2.69.142"), forwarded("81.2.69.142"));
        let spoofed = "1.1.1.1, 2.2.2.2, 81.2.69.142, 10.0.0.5";
        assert_eq!(rails("127.0.0.1", spoofed), forwarded("81.2.69.142"));
        assert_eq!(rails("172.17.0.1", spoofed), forwarded("81.2.69.142"));
        assert_eq!(rails("192.168.1.10", spoofed), forwarded("81.2.69.142"));
        assert_eq!(
            rails("fd12::1", "2001:db8::9, fd00::7"),
            forwarded("2001:db8::9")
        );
        assert_eq!(rails("fe80::1", "81.2.69.142"), forwarded("81.2.69.142"));
        assert_eq!(rails("::1", "81.2.69.142"), forwarded("81.2.69.142"));
        // The IPv4-mapped form of a loopback peer (a listener on [::]) is loopback.
        assert_eq!(
            rails("::ffff:127.0.0.1", "81.2.69.142"),
            forwarded("81.2.69.142")
        );
        assert_eq!(
            rails("127.0.0.1", "::ffff:81.2.69.142"),
            forwarded("81.2.69.142")
        );
    }

    #[test]
    fn the_default_test_is_the_default_networks() {
        let nets: Vec<IpNet> = PRIVATE_NETWORKS
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        for a in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "172.32.0.1",
            "192.168.7.7",
            "192.169.0.1",
            "169.254.3.4",
            "100.64.0.1",
            "81.2.69.142",
            "::1",
            "::2",
            "fc00::1",
            "fdff::9",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "2001:db8::1",
            "0.0.0.0",
            "255.255.255.255",
        ] {
            let ip = ip(a);
            assert_eq!(is_private(ip), TrustProxy::trusts(&nets, ip), "{a}");
        }
    }

    #[test]
    fn a_public_peer_is_its_own_client_whatever_it_sends() {
        assert_eq!(
            rails("81.2.69.142", "127.0.0.1"),
            ClientAddress::peer(Some(ip("81.2.69.142")))
        );
        assert_eq!(
            rails("100.64.0.1", "81.2.69.142").ip,
            Some(ip("100.64.0.1")),
            "carrier-grade NAT space is not private"
        );
        let none = client_address(None, &headers(&[]), &TrustProxy::default());
        assert_eq!(none, ClientAddress::default());
    }

    #[test]
    fn a_chain_of_private_addresses_gives_its_leftmost() {
        // An office client behind its own proxy, then ours: nobody outside is named.
        assert_eq!(
            rails("127.0.0.1", "10.1.2.3, 192.168.0.9"),
            forwarded("10.1.2.3")
        );
        // A private peer without forwarding headers is the client.
        let direct = client_address(Some(ip("10.0.0.5")), &headers(&[]), &TrustProxy::default());
        assert_eq!(direct, ClientAddress::peer(Some(ip("10.0.0.5"))));
    }

    #[test]
    fn an_unreadable_entry_right_of_the_client_names_nobody() {
        // A proxy wrote `unknown`: what is left of it was written by someone unknown too.
        assert_eq!(
            rails("127.0.0.1", "81.2.69.142, unknown"),
            ClientAddress {
                ip: None,
                forwarded: true
            }
        );
        assert_eq!(
            rails("127.0.0.1", "garbage, 81.2.69.142"),
            forwarded("81.2.69.142")
        );
    }

    #[test]
    fn a_padded_chain_costs_no_more_than_its_last_entries() {
        let mut value = vec!["9.9.9.9"; 5000].join(", ");
        value.push_str(", 81.2.69.142");
        assert_eq!(rails("127.0.0.1", &value), forwarded("81.2.69.142"));
        let mut value = vec!["10.0.0.1"; 100].join(", ");
        value.insert_str(0, "81.2.69.142, ");
        // Beyond the examined entries the leftmost examined one stands: still a proxy, never
        // an address the client chose.
        assert_eq!(rails("127.0.0.1", &value), forwarded("10.0.0.1"));
    }

    #[test]
    fn networks_replace_the_default_set() {
        let trust = TrustProxy::parse("10.1.0.0/16, 2001:db8::/32").unwrap();
        let h = headers(&[(&X_FORWARDED_FOR, "81.2.69.142")]);
        let at = |peer: &str| client_address(Some(ip(peer)), &h, &trust);
        assert_eq!(at("10.1.200.3"), forwarded("81.2.69.142"));
        assert_eq!(at("2001:db8:5::1"), forwarded("81.2.69.142"));
        // Loopback is no longer trusted: the operator's list is the whole list.
        assert_eq!(at("127.0.0.1"), ClientAddress::peer(Some(ip("127.0.0.1"))));
        assert_eq!(at("10.2.0.1"), ClientAddress::peer(Some(ip("10.2.0.1"))));
        // A proxy in the list forwarding for a private client names that client.
        let h = headers(&[(&X_FORWARDED_FOR, "81.2.69.142, 192.168.1.4")]);
        let private = client_address(Some(ip("10.1.0.1")), &h, &trust);
        assert_eq!(private, forwarded("192.168.1.4"));
    }

    #[test]
    fn settings_parse_and_print_back() {
        assert_eq!(TrustProxy::parse("none"), Ok(TrustProxy::None));
        assert_eq!(TrustProxy::parse("0"), Ok(TrustProxy::None));
        assert_eq!(TrustProxy::parse("2"), Ok(TrustProxy::Hops(2)));
        assert_eq!(TrustProxy::parse(" Private "), Ok(TrustProxy::default()));
        assert!(TrustProxy::default().is_default());
        assert_eq!(TrustProxy::default().to_string(), "private");
        let list = TrustProxy::parse("192.0.2.7,10.0.0.0/8,::ffff:172.16.0.0/108").unwrap();
        assert_eq!(list.to_string(), "192.0.2.7/32,10.0.0.0/8,172.16.0.0/12");
        assert_eq!(TrustProxy::parse(&list.to_string()), Ok(list));
        assert_eq!(
            TrustProxy::parse("10.0.0.9/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
        for bad in [
            "9",
            "300",
            "",
            ",",
            "10.0.0.0/33",
            "proxy",
            "10.0.0.0/8,nope",
            "-1",
        ] {
            assert!(TrustProxy::parse(bad).is_err(), "{bad:?}");
        }
        let e = TrustProxy::parse("10.0.0.0/8,nope").unwrap_err();
        assert!(e.contains("\"nope\""), "{e}");
    }

    #[test]
    fn x_forwarded_for_is_read_before_forwarded() {
        // nginx appends to X-Forwarded-For and passes a client's own Forwarded through.
        let both = [
            (&FORWARDED, "for=1.1.1.1"),
            (&X_FORWARDED_FOR, "81.2.69.142"),
        ];
        let h = headers(&both);
        let got = client_address(Some(ip("127.0.0.1")), &h, &TrustProxy::default());
        assert_eq!(got, forwarded("81.2.69.142"));
        assert_eq!(client(&both, 1), Some(ip("81.2.69.142")));
        // Without X-Forwarded-For, Forwarded is the chain.
        let h = headers(&[(&FORWARDED, "for=\"[2001:db8::5]:443\", for=10.0.0.3")]);
        let got = client_address(Some(ip("127.0.0.1")), &h, &TrustProxy::default());
        assert_eq!(got, forwarded("2001:db8::5"));
    }

    #[test]
    fn without_trust_the_peer_is_the_client_whatever_the_headers_say() {
        assert_eq!(client(&[], 0), Some(ip(PEER)));
        assert_eq!(xff("203.0.113.9", 0), Some(ip(PEER)));
        assert_eq!(fwd("for=203.0.113.9", 0), Some(ip(PEER)));
        let h = headers(&[(&X_FORWARDED_FOR, "203.0.113.9")]);
        assert!(!client_address(Some(ip(PEER)), &h, &TrustProxy::None).forwarded);
        assert_eq!(
            client_address(None, &headers(&[]), &TrustProxy::None).ip,
            None
        );
    }

    #[test]
    fn without_headers_the_peer_is_the_leftmost_and_only_entry() {
        assert_eq!(client(&[], 1), Some(ip(PEER)));
        assert_eq!(client(&[], 3), Some(ip(PEER)));
        assert_eq!(
            client_address(None, &headers(&[]), &TrustProxy::Hops(1)).ip,
            None
        );
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
    fn more_hops_than_the_chain_has_give_the_leftmost_entry() {
        assert_eq!(xff("1.1.1.1, 198.51.100.1", 2), Some(ip("1.1.1.1")));
        assert_eq!(xff("1.1.1.1, 198.51.100.1", 3), Some(ip("1.1.1.1")));
        assert_eq!(xff("1.1.1.1, 198.51.100.1", 8), Some(ip("1.1.1.1")));
        assert_eq!(xff("unknown, 198.51.100.1", 8), None);
    }

    #[test]
    fn ipv6_is_one_sender_per_64() {
        let block = |s: &str| address_block(ip(s));
        assert_eq!(block("2001:db8:1:2::1"), block("2001:db8:1:2:ffff::9"));
        assert_ne!(block("2001:db8:1:2::1"), block("2001:db8:1:3::1"));
        assert_eq!(block("192.0.2.1"), block("::ffff:192.0.2.1"));
        assert_ne!(block("192.0.2.1"), block("192.0.2.2"));
        // No IPv4 address shares a block with an IPv6 one.
        assert_ne!(block("0.0.0.1"), block("::1"));
    }
}
