//! The client address under every kind of trust, from real header values: spoofed, padded,
//! quoted, unreadable.

use super::trust::is_private;
use super::*;
use actix_web::http::header::{HeaderName, HeaderValue, FORWARDED, X_FORWARDED_FOR};
use ipnet::IpNet;

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
