//! The ingest rate limits (`--ingest-rate`/`--ingest-burst` per sender,
//! `--ingest-address-rate`/`--ingest-address-burst` per address), so that one flooder cannot
//! inflate a site's numbers while a crowd behind one address is still counted.
//!
//! Two limits apply to every ingest request, each a token bucket: one per **sender** (a client
//! address and its User-Agent: one browser) and one per **address** (everyone behind it: an
//! office, a school, a carrier's NAT). A request must pass both; one refused by the address
//! limit gives its sender's token back. The defaults (10/s after a burst of 30 per sender;
//! 200/s after a burst of 2,000 per address) are far above what a person's browser sends and
//! far above what a busy office sends, and a script hammering from one browser identity is cut
//! to 10 a second.
//!
//! The algorithm is GCRA, the token bucket kept as one number per key: the instant at which the
//! key's bucket would be full again ("theoretical arrival time"). A key whose instant has passed
//! is indistinguishable from one never seen, so it is forgotten.
//!
//! Memory is bounded: the keys are spread over [`SHARDS`] small maps, each swept of forgotten
//! keys at most once a second by the request that finds it due (and, when it is full, at most
//! ten times a second), and each holding at most [`MAX_ADDRESSES`] / [`SHARDS`] keys; when a
//! shard is full even after a sweep, one of its keys is dropped (it gets its burst back early:
//! the bound wins over exactness, and the drop is counted in `/metrics`).
//!
//! Addresses are never stored or logged: a map holds a keyed 64-bit hash of the address block
//! ([`client::address_block`]: an IPv4 address, an IPv6 /64) and, for senders, of the
//! User-Agent (the key is random per process), and the time as nanoseconds since start-up.
//!
//! This module decides; it does not answer HTTP (the handlers do, and count the refusals).

use super::client;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys remembered at most per limit, over all shards (a 16-byte entry and a control byte in
/// tables of 8,192 slots per shard: about 9 MB when full). A key is remembered for
/// `burst / rate` seconds after its last request (3 s per sender and 10 s per address with the
/// defaults), so this covers some 87,000 new senders a second.
pub const MAX_ADDRESSES: usize = 262_144;
/// Independent maps, so that worker threads rarely wait for one another.
pub const SHARDS: usize = 64;
/// How often a shard is swept of forgotten keys, at most.
const SWEEP_EVERY_NS: u64 = 1_000_000_000;

/// One token bucket's settings: `--ingest-rate` and `--ingest-burst`, or the address pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Requests per second allowed to one key, sustained (> 0).
    pub per_second: f64,
    /// Requests one key may send at once (≥ 1).
    pub burst: u32,
}

/// Why a request was refused: how long until its sender may send again.
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
    /// Key hash → the instant (ns since start-up) its bucket is full again.
    full_at: HashMap<u64, u64, foldhash::fast::FixedState>,
    swept_at: u64,
}

/// One token bucket per key (a sender or an address), with bounded memory.
pub struct Limiter {
    /// Nanoseconds one request uses up: 1 s / rate.
    interval: u64,
    /// How far ahead of now a key's instant may run: burst × interval.
    tolerance: u64,
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    /// Keys dropped before their time (`tally_rate_limit_evictions_total`).
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

    /// A limiter remembering at most `keys` (rounded up to a multiple of [`SHARDS`]).
    pub fn with_capacity(limit: RateLimit, keys: usize) -> Limiter {
        let interval = (1e9 / limit.per_second).clamp(1.0, u64::MAX as f64 / 2e6) as u64;
        Limiter {
            interval,
            tolerance: interval.saturating_mul(u64::from(limit.burst.max(1))),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: keys.div_ceil(SHARDS).max(1),
            evicted: Default::default(),
        }
    }

    fn shard(&self, key: u64) -> std::sync::MutexGuard<'_, Shard> {
        let shard = &self.shards[(key >> 58) as usize % SHARDS];
        shard.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits one request of `key` at `now` (nanoseconds after the limits were made), or says
    /// how long it must wait.
    pub fn check_at(&self, key: u64, now: u64) -> Result<(), Limited> {
        let mut shard = self.shard(key);
        if now.saturating_sub(shard.swept_at) >= SWEEP_EVERY_NS {
            shard.full_at.retain(|_, full_at| *full_at > now);
            shard.swept_at = now;
        }
        // A key seen recently: one probe, to read and advance its instant.
        if let Some(full_at) = shard.full_at.get_mut(&key) {
            let next = (*full_at).max(now).saturating_add(self.interval);
            if next - now > self.tolerance {
                return Err(Limited {
                    retry_after: Duration::from_nanos(next - now - self.tolerance),
                });
            }
            *full_at = next;
            return Ok(());
        }
        // A new (or forgotten) key always has its burst: one interval ≤ the tolerance.
        let next = now.saturating_add(self.interval);
        if shard.full_at.len() >= self.per_shard {
            // Sweep again, but at most ten times a second: under a flood of new keys a sweep
            // per request would cost thousands of entries each.
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
        shard.full_at.insert(key, next);
        Ok(())
    }

    /// Gives back the token an admitted request of `key` took at `now` (the request was
    /// refused by the other limit, so it must not count against this one).
    fn refund_at(&self, key: u64, now: u64) {
        let mut shard = self.shard(key);
        if let Some(full_at) = shard.full_at.get_mut(&key) {
            *full_at = full_at.saturating_sub(self.interval).max(now);
        }
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).full_at.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keys dropped before their time because their shard was full.
    pub fn evicted(&self) -> u64 {
        self.evicted.get()
    }
}

/// Both ingest limits: per sender (address + User-Agent) and per address; either may be off.
pub struct IngestLimits {
    pub sender: Option<Limiter>,
    pub address: Option<Limiter>,
    /// The per-process key of the hashes.
    key: foldhash::quality::RandomState,
    start: Instant,
}

impl IngestLimits {
    /// `None` for a limit that is off.
    pub fn new(sender: Option<RateLimit>, address: Option<RateLimit>) -> IngestLimits {
        IngestLimits {
            sender: sender.map(Limiter::new),
            address: address.map(Limiter::new),
            key: foldhash::quality::RandomState::default(),
            start: Instant::now(),
        }
    }

    /// Counts both limits' early drops in `counter`.
    pub fn counting_evictions_in(
        mut self,
        counter: prometheus_client::metrics::counter::Counter,
    ) -> IngestLimits {
        self.sender = self
            .sender
            .map(|l| l.counting_evictions_in(counter.clone()));
        self.address = self.address.map(|l| l.counting_evictions_in(counter));
        self
    }

    /// Whether both limits are off.
    pub fn is_off(&self) -> bool {
        self.sender.is_none() && self.address.is_none()
    }

    /// Admits one request from `address` with `user_agent` now, or says how long to wait.
    pub fn check(&self, address: IpAddr, user_agent: &[u8]) -> Result<(), Limited> {
        let now = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.check_at(address, user_agent, now)
    }

    /// [`IngestLimits::check`] at `now` nanoseconds after the limits were made.
    pub fn check_at(&self, address: IpAddr, user_agent: &[u8], now: u64) -> Result<(), Limited> {
        let block = client::address_block(address);
        let sender = self.sender.as_ref().map(|limiter| {
            let key = self.key.hash_one((block, user_agent));
            (limiter, key)
        });
        if let Some((limiter, key)) = sender {
            limiter.check_at(key, now)?;
        }
        if let Some(limiter) = &self.address {
            if let Err(refused) = limiter.check_at(self.key.hash_one(block), now) {
                if let Some((limiter, key)) = sender {
                    limiter.refund_at(key, now);
                }
                return Err(refused);
            }
        }
        Ok(())
    }

    /// Keys both limits remember now.
    pub fn len(&self) -> usize {
        self.sender.as_ref().map_or(0, Limiter::len) + self.address.as_ref().map_or(0, Limiter::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn limit(per_second: f64, burst: u32) -> RateLimit {
        RateLimit { per_second, burst }
    }

    /// The defaults of `tally serve`.
    fn defaults() -> IngestLimits {
        IngestLimits::new(Some(limit(10.0, 30)), Some(limit(200.0, 2_000)))
    }

    fn senders_only(per_second: f64, burst: u32) -> IngestLimits {
        IngestLimits::new(Some(limit(per_second, burst)), None)
    }

    #[test]
    fn a_burst_then_the_rate() {
        let l = senders_only(20.0, 60);
        let a = ip("198.51.100.7");
        for i in 0..60 {
            assert!(
                l.check_at(a, b"ua", SECOND).is_ok(),
                "request {i} of the burst"
            );
        }
        let refused = l.check_at(a, b"ua", SECOND).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_millis(50));
        assert_eq!(refused.retry_after_secs(), 1);
        // 50 ms later one more is allowed, and only one.
        assert!(l.check_at(a, b"ua", SECOND + 50 * MS).is_ok());
        assert!(l.check_at(a, b"ua", SECOND + 50 * MS).is_err());
        // A sustained 20/s is never refused.
        let start = 2 * SECOND + 50 * MS;
        for i in 0..1000 {
            assert!(l.check_at(a, b"ua", start + i * 50 * MS).is_ok(), "{i}");
        }
    }

    #[test]
    fn other_senders_and_addresses_are_not_affected() {
        let l = senders_only(1.0, 2);
        let (a, b) = (ip("198.51.100.7"), ip("198.51.100.8"));
        for (address, agent) in [(a, &b"one"[..]), (a, b"two"), (b, b"one")] {
            assert!(l.check_at(address, agent, 0).is_ok());
            assert!(l.check_at(address, agent, 0).is_ok());
            assert!(l.check_at(address, agent, 0).is_err());
        }
    }

    #[test]
    fn ipv6_is_limited_by_its_64_prefix() {
        let l = IngestLimits::new(None, Some(limit(1.0, 2)));
        assert!(l.check_at(ip("2001:db8:1:2::1"), b"a", 0).is_ok());
        assert!(l.check_at(ip("2001:db8:1:2:ffff::9"), b"b", 0).is_ok());
        assert!(l.check_at(ip("2001:db8:1:2::77"), b"c", 0).is_err());
        assert!(l.check_at(ip("2001:db8:1:3::1"), b"a", 0).is_ok());
        // The IPv4-mapped form of an address is that address.
        assert!(l.check_at(ip("192.0.2.1"), b"a", 0).is_ok());
        assert!(l.check_at(ip("::ffff:192.0.2.1"), b"a", 0).is_ok());
        assert!(l.check_at(ip("192.0.2.1"), b"a", 0).is_err());
    }

    #[test]
    fn an_office_behind_one_address_is_counted_in_full() {
        // 100 views a second for 10 s from one address, across 50 browsers.
        let l = defaults();
        let office = ip("81.2.69.142");
        let agents: Vec<String> = (0..50)
            .map(|i| format!("Mozilla/5.0 browser {i}"))
            .collect();
        for i in 0..1_000u64 {
            let agent = agents[(i % 50) as usize].as_bytes();
            assert!(l.check_at(office, agent, i * 10 * MS).is_ok(), "view {i}");
        }
    }

    #[test]
    fn one_browser_identity_flooding_is_cut_to_the_bound() {
        // 1,000 requests a second for 5 s from one address and User-Agent.
        let l = defaults();
        let flooder = ip("81.2.69.142");
        let admitted = (0..5_000u64)
            .filter(|i| l.check_at(flooder, b"curl/8", i * MS).is_ok())
            .count();
        // The burst, then 10 a second: 30 + 10 × 5.
        assert!((79..=81).contains(&admitted), "{admitted} admitted");
        // Its neighbours behind the same address are untouched.
        assert!(l.check_at(flooder, b"Mozilla/5.0", 5 * SECOND).is_ok());
    }

    #[test]
    fn a_request_refused_per_address_gives_its_sender_token_back() {
        let l = IngestLimits::new(Some(limit(1.0, 3)), Some(limit(1_000.0, 2)));
        let a = ip("198.51.100.7");
        assert!(l.check_at(a, b"ua", 0).is_ok());
        assert!(l.check_at(a, b"ua", 0).is_ok());
        // The address is out of tokens: refused, and the sender keeps its third.
        assert!(l.check_at(a, b"ua", 0).is_err());
        assert!(l.check_at(a, b"ua", 10 * MS).is_ok());
        assert!(l.check_at(a, b"ua", 20 * MS).is_err());
    }

    #[test]
    fn quiet_keys_are_forgotten_and_memory_stays_bounded() {
        let l = Limiter::with_capacity(limit(20.0, 60), SHARDS * 4);
        // 10,000 keys in one instant: each shard keeps at most 4.
        let key = |i: u64| foldhash::quality::FixedState::default().hash_one(i);
        for i in 0..10_000 {
            assert!(l.check_at(key(i), SECOND).is_ok());
        }
        assert!(l.len() <= SHARDS * 4, "{} remembered", l.len());
        assert!(l.evicted() >= 10_000 - (SHARDS * 4) as u64);
        // Three seconds later (burst / rate) every one is forgotten at the next sweep.
        for i in 0..SHARDS as u64 * 64 {
            let _ = l.check_at(key(100_000 + i), 5 * SECOND);
        }
        let _ = l.check_at(key(7), 10 * SECOND);
        assert!(l.len() <= SHARDS * 4);
    }

    #[test]
    fn a_fractional_rate_and_odd_times_do_not_panic() {
        let l = senders_only(0.001, 1);
        let a = ip("203.0.113.9");
        assert!(l.check_at(a, b"", 0).is_ok());
        let refused = l.check_at(a, b"", 0).unwrap_err();
        assert_eq!(refused.retry_after_secs(), 1000);
        assert!(l.check_at(a, b"", u64::MAX / 4).is_ok());
        let fast = senders_only(1e9, 1);
        assert!(fast.check_at(a, b"", 5).is_ok());
        assert!(IngestLimits::new(None, None).check_at(a, b"", 0).is_ok());
    }
}
