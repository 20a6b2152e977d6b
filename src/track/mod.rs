//! Ingest: the tracking endpoints and the path from a request to merged increments.
//!
//! - `GET /t.gif` ([`pixel`]): always a 200 with a 1×1 GIF; the hit is parsed, checked and
//!   enqueued by [`Tracker::track`], which never awaits anything.
//! - `GET /t.js` ([`script`]): the snippet that sends the pixel.
//!
//! This module validates and enqueues; it must not talk to the store.

pub mod agent;
pub mod pixel;
pub mod query;
pub mod script;

use crate::aggregate::{Coalescer, Refused};
use crate::hit::Hit;
use crate::metrics::{Metrics, Rejection};
use crate::period::{Clock, LocalTime};
use crate::reports::{self, Increments};
use crate::site::{SiteId, SiteRegistry};
use agent::Agent;
use query::PixelParams;
use std::cell::RefCell;
use std::sync::Arc;

/// Turns pixel requests into increments in the coalescer.
pub struct Tracker {
    pub sites: Arc<SiteRegistry>,
    pub coalescer: Arc<Coalescer>,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
}

impl Tracker {
    /// Parses, checks and enqueues one pixel request. Every outcome is counted in the metrics;
    /// a rejection is also logged at debug level.
    pub fn track(&self, query: &str, user_agent: &str) -> Result<(), Rejection> {
        let result = self.try_track(query, user_agent);
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

    fn try_track(&self, query: &str, user_agent: &str) -> Result<(), Rejection> {
        let params = PixelParams::parse(query);
        let raw_site = params.site.as_deref().ok_or(Rejection::MissingSite)?;
        let id = SiteId::parse(raw_site).map_err(|_| Rejection::InvalidSite)?;
        let site = self.sites.get(&id).ok_or(Rejection::UnknownSite)?;
        let agent = Agent::parse(user_agent);
        if agent.bot {
            return Err(Rejection::Bot);
        }
        let at = (self.clock)();
        let hit = Hit {
            local: LocalTime::at(at, site.tz),
            at,
            site,
            page: params.page,
            screen: params.screen,
            uniques: params.uniques,
            agent,
        };
        // One buffer per worker thread, reused hit after hit.
        thread_local! {
            static BUFFER: RefCell<Increments> = RefCell::new(Increments::with_capacity(16));
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
