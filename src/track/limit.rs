//! The per-address rate limit on the ingest endpoints (`--ingest-rate`, `--ingest-burst`), so
//! that one flooder cannot inflate a site's numbers.
//!
//! Each address may send a burst of `burst` requests at once, then `rate` per second; beyond
//! that its requests are refused (the handlers answer 429) until it slows down. The algorithm
//! is GCRA, the token bucket kept as one number per address: the instant at which the
//! address's bucket would be full again ("theoretical arrival time"). An address whose instant
//! has passed is indistinguishable from one never seen, so it is forgotten.
//!
//! Memory is bounded: the addresses are spread over [`SHARDS`] small maps, each swept of
//! forgotten addresses at most once a second by the request that finds it due (and, when it is
//! full, at most ten times a second), and each holding at most [`MAX_ADDRESSES`] / [`SHARDS`]
//! addresses; when a shard is full even after a sweep, one of its addresses is dropped (it
//! gets its burst back early: the bound wins over exactness, and the drop is counted in
//! `/metrics`).
//!
//! Addresses are never stored or logged: a map holds a keyed 64-bit hash of the address (the
//! key is random per process), and the time as nanoseconds since start-up. IPv4 addresses are
//! limited one by one; IPv6 addresses by their /64 prefix, which is what one household or
//! one server is given (a single machine can use any address in its /64).
//!
//! This module decides; it does not answer HTTP (the handlers do, and count the refusals).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses remembered at most, over all shards (a 16-byte entry and a control byte in
/// tables of 8,192 slots per shard: about 9 MB when full). An address is remembered for
/// `burst / rate` seconds after its last request (3 s with the defaults), so this covers some
/// 87,000 new addresses a second.
pub const MAX_ADDRESSES: usize = 262_144;
/// Independent maps, so that worker threads rarely wait for one another.
pub const SHARDS: usize = 64;
/// How often a shard is swept of forgotten addresses, at most.
const SWEEP_EVERY_NS: u64 = 1_000_000_000;

/// `--ingest-rate` and `--ingest-burst`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Requests per second allowed to one address, sustained (> 0).
    pub per_second: f64,
    /// Requests one address may send at once (≥ 1).
    pub burst: u32,
}

/// Why a request was refused: how long until the address may send again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

impl Limited {
    /// `Retry-After` in whole seconds, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_nanos().div_ceil(1_000_000_000);
        u64::try_from(secs).unwrap_or(u64::MAX).max(1)
    }
}

#[derive(Default)]
struct Shard {
    /// Address hash → the instant (ns since start-up) its bucket is full again.
    full_at: HashMap<u64, u64, foldhash::fast::FixedState>,
    swept_at: u64,
}

pub struct Limiter {
    /// Nanoseconds one request uses up: 1 s / rate.
    interval: u64,
    /// How far ahead of now an address's instant may run: burst × interval.
    tolerance: u64,
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    key: foldhash::quality::RandomState,
    start: Instant,
    /// Addresses dropped before their time (`tally_rate_limit_evictions_total`).
    evicted: prometheus_client::metrics::counter::Counter,
}

impl Limiter {
    pub fn new(limit: RateLimit) -> Limiter {
        Limiter::with_capacity(limit, MAX_ADDRESSES)
    }

    /// Counts early drops in `counter` (a `/metrics` counter) rather than a counter of its own.
    pub fn counting_evictions_in(
        mut self,
        counter: prometheus_client::metrics::counter::Counter,
    ) -> Limiter {
        self.evicted = counter;
        self
    }

    /// A limiter remembering at most `addresses` (rounded up to a multiple of [`SHARDS`]).
    pub fn with_capacity(limit: RateLimit, addresses: usize) -> Limiter {
        let interval = (1e9 / limit.per_second).clamp(1.0, u64::MAX as f64 / 2e6) as u64;
        Limiter {
            interval,
            tolerance: interval.saturating_mul(u64::from(limit.burst.max(1))),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: addresses.div_ceil(SHARDS).max(1),
            key: foldhash::quality::RandomState::default(),
            start: Instant::now(),
            evicted: Default::default(),
        }
    }

    /// Admits one request from `address` now, or says how long it must wait.
    pub fn check(&self, address: IpAddr) -> Result<(), Limited> {
        let now = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.check_at(address, now)
    }

    /// [`Limiter::check`] at `now` nanoseconds after the limiter was made.
    pub fn check_at(&self, address: IpAddr, now: u64) -> Result<(), Limited> {
        let hash = self.key.hash_one(prefix(address));
        let shard = &self.shards[(hash >> 58) as usize % SHARDS];
        let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        if now.saturating_sub(shard.swept_at) >= SWEEP_EVERY_NS {
            shard.full_at.retain(|_, full_at| *full_at > now);
            shard.swept_at = now;
        }
        // An address seen recently: one probe, to read and advance its instant.
        if let Some(full_at) = shard.full_at.get_mut(&hash) {
            let next = (*full_at).max(now).saturating_add(self.interval);
            if next - now > self.tolerance {
                return Err(Limited {
                    retry_after: Duration::from_nanos(next - now - self.tolerance),
                });
            }
            *full_at = next;
            return Ok(());
        }
        // A new (or forgotten) address always has its burst: one interval ≤ the tolerance.
        let next = now.saturating_add(self.interval);
        if shard.full_at.len() >= self.per_shard {
            // Sweep again, but at most ten times a second: under a flood of new addresses a
            // sweep per request would cost thousands of entries each.
            if now.saturating_sub(shard.swept_at) >= SWEEP_EVERY_NS / 10 {
                shard.full_at.retain(|_, full_at| *full_at > now);
                shard.swept_at = now;
            }
            if shard.full_at.len() >= self.per_shard {
                if let Some(&victim) = shard.full_at.keys().next() {
                    shard.full_at.remove(&victim);
                    self.evicted.inc();
                }
            }
        }
        shard.full_at.insert(hash, next);
        Ok(())
    }

    /// Addresses remembered now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).full_at.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Addresses dropped before their time because their shard was full.
    pub fn evicted(&self) -> u64 {
        self.evicted.get()
    }
}

/// What is limited: an IPv4 address, or an IPv6 address's /64 (IPv4-mapped IPv6 as IPv4).
fn prefix(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4)),
            None => (u128::from(v6) >> 64 << 64) | 1 << 32,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn limiter(per_second: f64, burst: u32) -> Limiter {
        Limiter::new(RateLimit { per_second, burst })
    }

    #[test]
    fn a_burst_then_the_rate() {
        let l = limiter(20.0, 60);
        let a = ip("198.51.100.7");
        for i in 0..60 {
            assert!(l.check_at(a, SECOND).is_ok(), "request {i} of the burst");
        }
        let refused = l.check_at(a, SECOND).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_millis(50));
        assert_eq!(refused.retry_after_secs(), 1);
        // 50 ms later one more is allowed, and only one.
        assert!(l.check_at(a, SECOND + 50_000_000).is_ok());
        assert!(l.check_at(a, SECOND + 50_000_000).is_err());
        // A sustained 20/s is never refused.
        let start = 2 * SECOND + 50_000_000;
        for i in 0..1000 {
            assert!(l.check_at(a, start + i * 50_000_000).is_ok(), "{i}");
        }
    }

    #[test]
    fn other_addresses_are_not_affected() {
        let l = limiter(1.0, 2);
        let (a, b) = (ip("198.51.100.7"), ip("198.51.100.8"));
        assert!(l.check_at(a, 0).is_ok());
        assert!(l.check_at(a, 0).is_ok());
        assert!(l.check_at(a, 0).is_err());
        assert!(l.check_at(b, 0).is_ok());
        assert!(l.check_at(b, 0).is_ok());
        assert!(l.check_at(b, 0).is_err());
    }

    #[test]
    fn ipv6_is_limited_by_its_64_prefix() {
        let l = limiter(1.0, 2);
        assert!(l.check_at(ip("2001:db8:1:2::1"), 0).is_ok());
        assert!(l.check_at(ip("2001:db8:1:2:ffff::9"), 0).is_ok());
        assert!(l.check_at(ip("2001:db8:1:2::77"), 0).is_err());
        assert!(l.check_at(ip("2001:db8:1:3::1"), 0).is_ok());
        // The IPv4-mapped form of an address is that address.
        assert!(l.check_at(ip("192.0.2.1"), 0).is_ok());
        assert!(l.check_at(ip("::ffff:192.0.2.1"), 0).is_ok());
        assert!(l.check_at(ip("192.0.2.1"), 0).is_err());
    }

    #[test]
    fn quiet_addresses_are_forgotten_and_memory_stays_bounded() {
        let l = Limiter::with_capacity(
            RateLimit {
                per_second: 20.0,
                burst: 60,
            },
            SHARDS * 4,
        );
        // 10,000 addresses in one instant: each shard keeps at most 4.
        for i in 0..10_000u32 {
            let a = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert!(l.check_at(a, SECOND).is_ok());
        }
        assert!(l.len() <= SHARDS * 4, "{} remembered", l.len());
        assert!(l.evicted() >= 10_000 - (SHARDS * 4) as u64);
        // Three seconds later (burst / rate) every one is forgotten at the next sweep.
        let later = 5 * SECOND;
        for i in 0..SHARDS as u32 * 64 {
            let a = IpAddr::from(std::net::Ipv4Addr::from(0x0b00_0000 + i));
            let _ = l.check_at(a, later);
        }
        let after = 10 * SECOND;
        let _ = l.check_at(ip("203.0.113.1"), after);
        assert!(l.len() <= SHARDS * 4);
    }

    #[test]
    fn a_fractional_rate_and_odd_times_do_not_panic() {
        let l = limiter(0.001, 1);
        let a = ip("203.0.113.9");
        assert!(l.check_at(a, 0).is_ok());
        let refused = l.check_at(a, 0).unwrap_err();
        assert_eq!(refused.retry_after_secs(), 1000);
        assert!(l.check_at(a, u64::MAX / 4).is_ok());
        let fast = limiter(1e9, 1);
        assert!(fast.check_at(a, 5).is_ok());
    }
}
