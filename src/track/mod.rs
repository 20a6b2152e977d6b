//! Ingest: the tracking endpoints and the path from a request to merged increments.
//!
//! - `GET /t.gif` ([`pixel`]): always a 200 with a 1×1 GIF; the hit is parsed, checked and
//!   enqueued by [`Tracker::track`], which never awaits anything.
//! - `GET /t.js` ([`script`]): the snippet that sends the pixel.
//!
//! This module validates and enqueues; it must not talk to the store.

pub mod agent;
pub mod client;
pub mod events;
pub mod geo;
pub mod pixel;
pub mod query;
pub mod script;
pub mod search;

use crate::aggregate::{Coalescer, Refused};
use crate::hit::{Hit, Location, Parsed};
use crate::metrics::{Metrics, Rejection};
use crate::period::{Clock, LocalTime};
use crate::reports::{self, Increments};
use crate::site::{SiteId, SiteRegistry};
use agent::Agent;
use chrono::{DateTime, Utc};
use query::PixelParams;
use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::Arc;

/// How far a browser's clock may be from the server's for its time to be believed: a beacon
/// queued while offline may be up to a day old; a clock a little fast is tolerated.
pub const CLIENT_CLOCK_PAST: chrono::TimeDelta = chrono::TimeDelta::hours(24);
pub const CLIENT_CLOCK_FUTURE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// A client's timestamp (ms since the epoch) if it lies within [now − 24 h, now + 5 min],
/// else `None`: the caller then uses the server's time (Cobub Razor's lesson: client clocks
/// are wrong often enough to ruin buckets).
pub fn client_time(now: DateTime<Utc>, ms: Option<i64>) -> Option<DateTime<Utc>> {
    let at = DateTime::from_timestamp_millis(ms?)?;
    (at >= now - CLIENT_CLOCK_PAST && at <= now + CLIENT_CLOCK_FUTURE).then_some(at)
}

/// Turns pixel requests into increments in the coalescer.
pub struct Tracker {
    pub sites: Arc<SiteRegistry>,
    pub coalescer: Arc<Coalescer>,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
    /// The country database, when configured (`--geoip-db`).
    pub geo: Option<Arc<geo::GeoDb>>,
    /// Proxies in front of tally whose forwarding headers are believed (`--trust-proxy`).
    pub trusted_proxies: u8,
}

impl Tracker {
    /// With `--durable`, waits until the hits accepted so far are in the log (see
    /// [`Coalescer::durable`]); `false` (counted in /metrics) means they must not be
    /// acknowledged. Without it, `true` at once.
    pub async fn durable(&self) -> bool {
        let ok = self.coalescer.durable().await;
        if !ok {
            self.metrics.durable_unacknowledged.inc();
        }
        ok
    }

    /// Parses, checks and enqueues one pixel request; `client` is the visitor's address (only
    /// read when a country database is configured, and never kept). Every outcome is counted
    /// in the metrics; a rejection is also logged at debug level.
    pub fn track(
        &self,
        query: &str,
        user_agent: &str,
        client: Option<IpAddr>,
    ) -> Result<(), Rejection> {
        self.track_at(query, user_agent, client, (self.clock)())
    }

    /// [`Tracker::track`] for a hit that happened at `at` (a line of an imported log).
    pub fn track_at(
        &self,
        query: &str,
        user_agent: &str,
        client: Option<IpAddr>,
        at: DateTime<Utc>,
    ) -> Result<(), Rejection> {
        let result = self.try_track(query, user_agent, client, at);
        match result {
            Ok(()) => {
                self.metrics.hits_accepted.inc();
            }
            Err(reason) => {
                self.metrics.rejected(reason).inc();
                tracing::debug!(reason = reason.as_str(), "pixel hit not counted");
            }
        };
        result
    }

    fn try_track(
        &self,
        query: &str,
        user_agent: &str,
        client: Option<IpAddr>,
        at: DateTime<Utc>,
    ) -> Result<(), Rejection> {
        let params = PixelParams::parse(query);
        let raw_site = params.site.as_deref().ok_or(Rejection::MissingSite)?;
        let id = SiteId::parse(raw_site).map_err(|_| Rejection::InvalidSite)?;
        let site = self.sites.get(&id).ok_or(Rejection::UnknownSite)?;
        let agent = Agent::parse(user_agent);
        if agent.bot {
            return Err(Rejection::Bot);
        }
        let location = match &self.geo {
            None => Location::NotLooked,
            Some(db) => match client.and_then(|ip| db.country(ip)) {
                Some(country) => Location::Country(country),
                None => Location::Unknown,
            },
        };
        let hit = Hit {
            local: LocalTime::at(at, site.tz),
            at,
            site,
            page: params.page,
            screen: params.screen,
            uniques: params.uniques,
            visit: params.visit,
            cohort: params.cohort,
            agent,
            location,
            parsed: Parsed::default(),
        };
        // One buffer per worker thread, reused hit after hit.
        thread_local! {
            static BUFFER: RefCell<Increments> = RefCell::new(Increments::with_capacity(32));
        }
        BUFFER.with(|buffer| {
            let mut incs = buffer.borrow_mut();
            incs.clear();
            reports::count(&hit, &mut incs);
            self.coalescer
                .add(&hit.site.id, &mut incs)
                .map_err(|refused| match refused {
                    Refused::Full => Rejection::PendingFull,
                    Refused::Closed => Rejection::ShuttingDown,
                })
        })
    }
}
