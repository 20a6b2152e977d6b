//! Ingest: the tracking endpoints and the path from a request to merged increments.
//!
//! - `GET /t.gif` ([`pixel`]): a 1×1 GIF; the hit is parsed, checked and enqueued by
//!   [`Tracker::track_from`], which never awaits anything. 200 when the hit was counted or
//!   deliberately not counted (bot, unknown site, disallowed host, opt-out); 429 when its
//!   sender went over the rate limit ([`limit`]).
//! - `GET /t.js` ([`script`]): the snippet that sends the pixel.
//! - `/e` and `/v` ([`events`]): custom events and visit beacons, with the same checks.
//!
//! Before a request is parsed, [`Tracker::admit`] works out who sent it ([`client`]) and
//! applies the rate limits ([`limit`]); after its site is known, [`sender::Sender::check`]
//! applies the site's host allow-list and its opt-out policy; before its increments are
//! enqueued, [`budget`] marks the new keys its address may not name.
//!
//! This module validates and enqueues; it must not talk to the store.

pub mod agent;
pub mod budget;
pub mod client;
pub mod events;
pub mod geo;
pub mod limit;
pub mod people;
pub mod pixel;
pub mod query;
pub mod script;
pub mod sender;

use crate::aggregate::{Coalescer, Refused};
use crate::hit::Location;
use crate::metrics::{Metrics, Rejection};
use crate::period::Clock;
use crate::reports::{self, Increments};
use crate::site::{SiteId, SiteRegistry};
use actix_web::http::header::{self, HeaderMap};
use actix_web::HttpRequest;
use agent::Agent;
use budget::KeyBudget;
use chrono::{DateTime, Utc};
use client::{ClientAddress, TrustProxy};
use limit::{IngestLimits, Limited};
use query::PixelParams;
use sender::Sender;
use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Turns pixel requests into increments in the coalescer.
pub struct Tracker {
    pub sites: Arc<SiteRegistry>,
    pub coalescer: Arc<Coalescer>,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
    /// The country database, when configured (`--geoip-db`).
    pub geo: Option<Arc<geo::GeoDb>>,
    /// Which peers are proxies whose forwarding headers are believed (`--trust-proxy`).
    pub trust: TrustProxy,
    /// The rate limits per sender and per address (`--ingest-rate`, `--ingest-address-rate`).
    pub limits: IngestLimits,
    /// The budget of new keys per address (`--new-keys-per-address`; `None`: off).
    pub budget: Option<KeyBudget>,
    /// Counts the live panel's minutes (`reports::live`). Off for `tally import`: a log's
    /// minutes are long past, the panel never shows them, and a year of log would write a
    /// document per minute for the sweep to delete.
    pub live_minutes: bool,
    /// The per-site keys of the people sketches' visitor hashes (see [`people`]).
    pub people: Arc<people::PeopleKeys>,
}

/// When tally last warned that requests carry forwarding headers it does not read (seconds
/// since the epoch): at most once a minute.
static PROXY_WARNED_AT: AtomicI64 = AtomicI64::new(0);

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

    /// Every ingest handler's first step: who sent the request (the one
    /// [`client::client_address`], counted in /metrics when a forwarding header named it), and
    /// whether the rate limits let it in. The address is hashed in memory and never kept.
    pub fn admit(&self, req: &HttpRequest) -> Result<ClientAddress, Limited> {
        self.admit_from(req.peer_addr().map(|a| a.ip()), req.headers())
    }

    /// [`Tracker::admit`] for a request from `peer` (the connection's address) with `headers`.
    pub fn admit_from(
        &self,
        peer: Option<IpAddr>,
        headers: &HeaderMap,
    ) -> Result<ClientAddress, Limited> {
        let client = client::client_address(peer, headers, &self.trust);
        if client.forwarded {
            self.metrics.forwarded_addresses.inc();
        }
        if self.limits.is_off() {
            return Ok(client);
        }
        // A forwarded entry that names no address: limited as its proxy.
        let Some(address) = client.ip.or(ClientAddress::peer(peer).ip) else {
            return Ok(client);
        };
        let agent = headers
            .get(header::USER_AGENT)
            .map_or(&b""[..], |v| v.as_bytes());
        let refused = self.limits.check(address, agent);
        if refused.is_err() && !client.forwarded {
            self.warn_about_proxy(headers);
        }
        refused.map(|()| client)
    }

    /// A request over the limit whose forwarding headers were not believed (`--trust-proxy
    /// none`, or a proxy on an address tally does not trust, such as a cloud load balancer on
    /// public addresses) may be a proxy's, and then every visitor behind it shares its address
    /// and its limits: say so in the log (at most once a minute), since it loses real hits.
    fn warn_about_proxy(&self, headers: &HeaderMap) {
        let forwarded = headers.contains_key(header::FORWARDED)
            || headers.contains_key(header::HeaderName::from_static("x-forwarded-for"));
        if !forwarded {
            return;
        }
        let now = (self.clock)().timestamp();
        let last = PROXY_WARNED_AT.load(Ordering::Relaxed);
        if now - last >= 60
            && PROXY_WARNED_AT
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                "ingest requests over the rate limit carry X-Forwarded-For/Forwarded from a peer \
                 that --trust-proxy does not name as a proxy: if a proxy is in front of tally, \
                 every visitor behind it shares its address and its limits. Add its network to \
                 --trust-proxy (see docs/operations.md)"
            );
        }
    }

    /// Parses, checks and enqueues one pixel request; `client` is the visitor's address (for the
    /// country lookup and the budget of new keys; never kept). Every outcome is counted
    /// in the metrics; a rejection is also logged at debug level.
    pub fn track(
        &self,
        query: &str,
        user_agent: &str,
        client: Option<IpAddr>,
    ) -> Result<(), Rejection> {
        self.track_at(query, user_agent, client, (self.clock)())
    }

    /// [`Tracker::track`] for a request that came with `sender`'s page host and opt-out.
    pub fn track_from(
        &self,
        query: &str,
        user_agent: &str,
        client: Option<IpAddr>,
        sender: Sender<'_>,
    ) -> Result<(), Rejection> {
        self.record(self.try_track(query, user_agent, client, sender, (self.clock)()))
    }

    /// [`Tracker::track`] for a hit that happened at `at` (a line of an imported log).
    pub fn track_at(
        &self,
        query: &str,
        user_agent: &str,
        client: Option<IpAddr>,
        at: DateTime<Utc>,
    ) -> Result<(), Rejection> {
        self.record(self.try_track(query, user_agent, client, Sender::default(), at))
    }

    /// Counts a pixel hit's outcome in the metrics.
    fn record(&self, result: Result<(), Rejection>) -> Result<(), Rejection> {
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
        sender: Sender<'_>,
        at: DateTime<Utc>,
    ) -> Result<(), Rejection> {
        let params = PixelParams::parse(query);
        let raw_site = params.site.as_deref().ok_or(Rejection::MissingSite)?;
        let id = SiteId::parse(raw_site).map_err(|_| Rejection::InvalidSite)?;
        let site = self.sites.get(&id).ok_or(Rejection::UnknownSite)?;
        sender.check(&site)?;
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
        let visitor = params.visitor;
        let hit = params.into_hit(site, agent, location, at);
        // One buffer per worker thread, reused hit after hit.
        thread_local! {
            static BUFFER: RefCell<Increments> = RefCell::new(Increments::with_capacity(32));
        }
        BUFFER.with(|buffer| {
            let mut incs = buffer.borrow_mut();
            incs.clear();
            reports::count(&hit, &mut incs);
            self.count_person(
                &hit.site.id,
                &hit.local,
                visitor,
                client,
                user_agent,
                &mut incs,
            );
            if !self.live_minutes {
                incs.entries
                    .retain(|(doc, _, _)| doc.kind != reports::ReportKind::Live);
            }
            self.vouch(client, &hit.site.id, &mut incs);
            self.coalescer
                .add(&hit.site.id, &mut incs)
                .map_err(|refused| match refused {
                    Refused::Full => Rejection::PendingFull,
                    Refused::DurableFull => Rejection::DurableFull,
                    Refused::Closed => Rejection::ShuttingDown,
                    Refused::Parked => Rejection::SiteParked,
                })
        })
    }

    /// Raises the visitor's register in the people sketches of the hit's day, month and year:
    /// identified by the snippet's id, else by address and User-Agent, hashed with the site's
    /// key for the local year. Without a key loaded for that year, or without any identity,
    /// nothing is raised.
    pub(crate) fn count_person(
        &self,
        site: &SiteId,
        local: &crate::period::LocalTime,
        snippet: Option<&str>,
        client: Option<IpAddr>,
        user_agent: &str,
        incs: &mut Increments,
    ) {
        use crate::reports::people::{count, visitor_hash, Visitor};
        let visitor = match (snippet, client) {
            (Some(id), _) => Visitor::Snippet(id),
            (None, Some(address)) => Visitor::Client {
                address,
                agent: user_agent,
            },
            (None, None) => return,
        };
        if let Some(key) = self.people.get(site, local.year) {
            count(local, visitor_hash(&key, visitor), incs);
        }
    }

    /// Applies the budget of new keys of `client`'s address to one request's increments.
    fn vouch(&self, client: Option<IpAddr>, site: &SiteId, incs: &mut Increments) {
        if let (Some(budget), Some(address)) = (&self.budget, client) {
            budget.vouch(address, site, incs);
        }
    }
}
