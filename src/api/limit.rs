//! A bound on guessing tokens: failed token checks are counted per client address in fixed
//! one-minute windows, and an address past its limit is refused (429) on every token-checked
//! route until its window ends.
//!
//! Only a presented token that no site holds counts as a failure: a request without a token (a
//! dashboard trying a site as public) and a success never do. IPv6 addresses count per /64, the
//! block one machine usually has. Memory is bounded: at most [`MAX_ADDRESSES`] addresses are
//! remembered, expired windows are swept once a window, and when the table is full the address
//! whose window is oldest is forgotten. This module counts and answers; it must not read
//! tokens or sites.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses remembered at once (about 40 bytes each).
pub const MAX_ADDRESSES: usize = 65_536;

/// The length of a window.
pub const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct AuthLimiter {
    /// Failures allowed per window; 0 turns the limit off.
    per_window: u32,
    state: Mutex<Table>,
}

#[derive(Debug)]
struct Table {
    /// Address (IPv6: its /64) → start of its window, failures in it.
    by_address: HashMap<IpAddr, (Instant, u32)>,
    last_sweep: Instant,
}

impl AuthLimiter {
    pub fn new(per_window: u32) -> AuthLimiter {
        AuthLimiter {
            per_window,
            state: Mutex::new(Table {
                by_address: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    /// When `addr` is over its limit at `now`: how long until it may try again.
    pub fn blocked(&self, addr: IpAddr, now: Instant) -> Option<Duration> {
        if self.per_window == 0 {
            return None;
        }
        let table = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let &(start, failures) = table.by_address.get(&bucket(addr))?;
        let left = WINDOW.checked_sub(now.saturating_duration_since(start))?;
        (failures >= self.per_window && !left.is_zero()).then_some(left)
    }

    /// Counts one failed token check from `addr` at `now`.
    pub fn failed(&self, addr: IpAddr, now: Instant) {
        if self.per_window == 0 {
            return;
        }
        let mut table = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if now.saturating_duration_since(table.last_sweep) >= WINDOW {
            table
                .by_address
                .retain(|_, (start, _)| now.saturating_duration_since(*start) < WINDOW);
            table.last_sweep = now;
        }
        let key = bucket(addr);
        if !table.by_address.contains_key(&key) && table.by_address.len() >= MAX_ADDRESSES {
            let oldest = table
                .by_address
                .iter()
                .min_by_key(|(_, (start, _))| *start)
                .map(|(a, _)| *a);
            if let Some(oldest) = oldest {
                table.by_address.remove(&oldest);
            }
        }
        let entry = table.by_address.entry(key).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Addresses remembered now.
    pub fn len(&self) -> usize {
        let table = self.state.lock().unwrap_or_else(|e| e.into_inner());
        table.by_address.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The unit failures are counted in: an IPv4 address, or an IPv6 address's /64.
fn bucket(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_is_refused_past_its_limit_until_its_window_ends() {
        let limiter = AuthLimiter::new(3);
        let t0 = Instant::now();
        let a = ip("203.0.113.7");
        for i in 0..3 {
            assert_eq!(limiter.blocked(a, t0), None, "after {i} failures");
            limiter.failed(a, t0 + Duration::from_secs(i));
        }
        let left = limiter.blocked(a, t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(left, Duration::from_secs(50));
        assert_eq!(
            limiter.blocked(ip("203.0.113.8"), t0),
            None,
            "others are not"
        );
        assert_eq!(limiter.blocked(a, t0 + WINDOW), None, "the window ended");
        limiter.failed(a, t0 + WINDOW);
        assert_eq!(limiter.blocked(a, t0 + WINDOW), None, "a new window");
    }

    #[test]
    fn ipv6_counts_per_64_and_zero_turns_it_off() {
        let limiter = AuthLimiter::new(2);
        let now = Instant::now();
        limiter.failed(ip("2001:db8:1:2::1"), now);
        limiter.failed(ip("2001:db8:1:2:ffff::9"), now);
        assert!(limiter.blocked(ip("2001:db8:1:2::77"), now).is_some());
        assert!(limiter.blocked(ip("2001:db8:1:3::1"), now).is_none());
        let off = AuthLimiter::new(0);
        for _ in 0..100 {
            off.failed(ip("203.0.113.7"), now);
        }
        assert!(off.blocked(ip("203.0.113.7"), now).is_none());
        assert!(off.is_empty());
    }

    #[test]
    fn memory_is_bounded() {
        let limiter = AuthLimiter::new(1);
        let now = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 + 100) {
            limiter.failed(
                IpAddr::V4(i.into()),
                now + Duration::from_nanos(u64::from(i)),
            );
        }
        assert_eq!(limiter.len(), MAX_ADDRESSES);
        // The newest are kept, the oldest forgotten.
        let newest = IpAddr::V4((MAX_ADDRESSES as u32 + 99).into());
        assert!(limiter
            .blocked(newest, now + Duration::from_secs(1))
            .is_some());
        // Expired windows are swept.
        limiter.failed(ip("203.0.113.7"), now + WINDOW * 2);
        assert_eq!(limiter.len(), 1);
    }
}
