//! Counting what was read: a request's events checked against their site and enqueued all or
//! none ([`Tracker::track_events_from`]), and a visit-duration beacon
//! ([`Tracker::track_duration_from`]); every outcome counted in `/metrics`.
//!
//! Like the pixel, this only validates and enqueues; it must not talk to the store or answer
//! HTTP.

use super::error::{invalid, EventError};
use super::parse::RawEvent;
use crate::aggregate::Refused;
use crate::hit::client_time;
use crate::hit::text::decode;
use crate::metrics::Rejection;
use crate::period::LocalTime;
use crate::reports::engagement;
use crate::reports::events;
use crate::reports::people;
use crate::reports::Increments;
use crate::site::SiteId;
use crate::track::agent::Agent;
use crate::track::sender::Sender;
use crate::track::Tracker;

impl Tracker {
    /// Checks every event and enqueues them all, or none. All events of one call must be for
    /// one site.
    pub fn track_events(&self, raw: &[RawEvent<'_>]) -> Result<usize, EventError> {
        self.track_events_from(raw, None, Sender::default())
    }

    /// [`Tracker::track_events`] for a request from `client` (for its budget of new keys; never
    /// kept) that came with `sender`'s page host and opt-out.
    pub fn track_events_from(
        &self,
        raw: &[RawEvent<'_>],
        client: Option<std::net::IpAddr>,
        sender: Sender<'_>,
    ) -> Result<usize, EventError> {
        let result = self.try_track_events(raw, client, sender);
        match &result {
            Ok(n) => {
                self.metrics.events_accepted.inc_by(*n as u64);
            }
            Err(e) => {
                self.metrics
                    .events_rejected(e.reason())
                    .inc_by(raw.len().max(1) as u64);
                tracing::debug!(error = %e, "events not counted");
            }
        }
        result
    }

    fn try_track_events(
        &self,
        raw: &[RawEvent<'_>],
        client: Option<std::net::IpAddr>,
        sender: Sender<'_>,
    ) -> Result<usize, EventError> {
        let Some(first) = raw.first() else {
            return Err(invalid(None, "no event"));
        };
        let id = SiteId::parse(&first.site).map_err(|e| invalid(None, e))?;
        if let Some(i) = raw.iter().position(|e| e.site != first.site) {
            return Err(invalid(
                Some(i),
                "all events of one request must be for one site",
            ));
        }
        let site = self
            .sites
            .get(&id)
            .ok_or_else(|| EventError::UnknownSite(first.site.to_string()))?;
        sender.check(&site).map_err(|reason| match reason {
            Rejection::DoNotTrack => EventError::DoNotTrack,
            _ => EventError::DisallowedHost(first.site.to_string()),
        })?;
        let now = (self.clock)();
        let now_local = LocalTime::at(now, site.tz);
        let mut incs = Increments::with_capacity(raw.len() * 8);
        for (i, e) in raw.iter().enumerate() {
            let at = |m: &str| {
                if raw.len() > 1 {
                    invalid(Some(i), m)
                } else {
                    invalid(None, m)
                }
            };
            if e.name.trim().is_empty() {
                return Err(at("\"name\" is empty"));
            }
            let local = match client_time(now, e.ts) {
                Some(at) => LocalTime::at(at, site.tz),
                None => now_local,
            };
            events::count(&e.event(local), &mut incs);
            let snippet = e.visitor.as_deref().and_then(people::snippet_id);
            self.count_person(
                &site.id,
                &local,
                snippet,
                client,
                sender.user_agent,
                &mut incs,
            );
        }
        self.vouch(client, &site.id, &mut incs);
        self.coalescer
            .add(&site.id, &mut incs)
            .map_err(|refused| match refused {
                Refused::Full => EventError::Busy,
                Refused::DurableFull => EventError::DurableFull,
                Refused::Closed => EventError::ShuttingDown,
                Refused::Parked => EventError::SiteParked,
            })?;
        Ok(raw.len())
    }

    /// A visit-duration beacon: `vt` the visit's start (ms), `vd` its duration now and `pvd`
    /// the duration reported before (ms). `false` when it was not counted.
    pub fn track_duration(&self, query: &str, user_agent: &str) -> bool {
        self.track_duration_from(query, user_agent, Sender::default())
            .is_ok()
    }

    /// [`Tracker::track_duration`] for a request that came with `sender`'s page host and
    /// opt-out; every outcome is counted in the metrics.
    pub fn track_duration_from(
        &self,
        query: &str,
        user_agent: &str,
        sender: Sender<'_>,
    ) -> Result<(), Rejection> {
        let result = self.try_track_duration(query, user_agent, sender);
        match result {
            Ok(()) => {
                self.metrics.beacons_accepted.inc();
            }
            Err(reason) => {
                self.metrics.beacons_rejected(reason).inc();
            }
        }
        result
    }

    fn try_track_duration(
        &self,
        query: &str,
        user_agent: &str,
        sender: Sender<'_>,
    ) -> Result<(), Rejection> {
        let (mut site, mut vt, mut vd, mut pvd) = (None, None, None, None);
        for pair in query.split('&').take(64) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let number = || value.parse::<i64>().ok();
            match key {
                "site" => site = site.or(Some(decode(value))),
                "vt" => vt = vt.or(number()),
                "vd" => vd = vd.or(number()),
                "pvd" => pvd = pvd.or(number()),
                _ => {}
            }
        }
        let id = SiteId::parse(&site.ok_or(Rejection::MissingSite)?)
            .map_err(|_| Rejection::InvalidSite)?;
        let site = self.sites.get(&id).ok_or(Rejection::UnknownSite)?;
        sender.check(&site)?;
        if Agent::parse(user_agent).bot {
            return Err(Rejection::Bot);
        }
        let (vd, pvd) = (vd.ok_or(Rejection::Invalid)?, pvd.unwrap_or(0));
        if vd < 0 || pvd < 0 || pvd > vd {
            return Err(Rejection::Invalid);
        }
        let now = (self.clock)();
        let started = client_time(now, vt).unwrap_or(now);
        let mut incs = Increments::with_capacity(2);
        engagement::count_duration(LocalTime::at(started, site.tz), pvd, vd, &mut incs);
        if incs.is_empty() {
            return Ok(());
        }
        self.coalescer
            .add(&site.id, &mut incs)
            .map_err(|refused| match refused {
                Refused::Full => Rejection::PendingFull,
                Refused::DurableFull => Rejection::DurableFull,
                Refused::Closed => Rejection::ShuttingDown,
                Refused::Parked => Rejection::SiteParked,
            })
    }
}
