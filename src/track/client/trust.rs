//! `--trust-proxy`: which peers are reverse proxies whose forwarding headers are believed,
//! parsed from the setting and printed back, and the test of one address against it.
//!
//! This module knows networks, not requests; it must not read headers.

use ipnet::IpNet;
use std::fmt;
use std::net::IpAddr;

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

    pub(super) fn trusts(nets: &[IpNet], ip: IpAddr) -> bool {
        nets.iter().any(|n| n.contains(&ip))
    }

    /// Whether `ip` (canonical) is a proxy under this trust (never for a hop count or `none`,
    /// which do not go by address).
    pub(super) fn trusted(&self, ip: IpAddr) -> bool {
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

/// Whether a canonical address is in [`PRIVATE_NETWORKS`].
pub(super) fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unique_local() || v6.is_unicast_link_local(),
    }
}
