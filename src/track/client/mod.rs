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
//!
//! Layout: `trust` is the setting and the test of an address against it, `chain` reads the
//! forwarding headers' hops; this file picks the client from them.

mod chain;
#[cfg(test)]
mod tests;
mod trust;

pub use trust::{TrustProxy, MAX_HOPS, PRIVATE_NETWORKS};

use actix_web::http::header::HeaderMap;
use chain::{parse_node, Hops};
use std::net::IpAddr;

/// Entries of a chain examined at most, from the right: a longer chain is a client padding it
/// (no deployment has more proxies than this), and parsing every entry would let it make each
/// request cost more.
const MAX_EXAMINED: usize = 32;

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

/// What is limited and budgeted as one sender: an IPv4 address, or an IPv6 address's /64
/// prefix, which is what one household or one server is given (a single machine can use any
/// address in its /64).
pub fn address_block(address: IpAddr) -> u128 {
    match address.to_canonical() {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => (u128::from(v6) >> 64 << 64) | 1 << 32,
    }
}
