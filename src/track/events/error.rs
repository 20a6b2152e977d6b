//! Why events were not counted, each reason mapped to one answer (the JSON error shape, or a
//! `202` for an opt-out) and to one reason in `/metrics`.
//!
//! This module names outcomes; it must not decide them.

use crate::error::json_error;
use crate::metrics::Rejection;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;

/// Why events were not counted; each maps to one answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("{0}")]
    Invalid(String),
    #[error("unknown site {0:?}")]
    UnknownSite(String),
    #[error("tally is busy writing what it has; retry later")]
    Busy,
    #[error("the store is away and the durable log is full; retry later")]
    DurableFull,
    #[error("tally is shutting down")]
    ShuttingDown,
    #[error("this site's documents refuse their updates: its hits are refused until an operator repairs them")]
    SiteParked,
    #[error("site {0:?} does not count events sent from this page's host")]
    DisallowedHost(String),
    #[error("the browser asked not to be tracked (DNT or Sec-GPC) and the site honours it")]
    DoNotTrack,
    #[error("too many requests from this address; retry in {0} s")]
    RateLimited(u64),
}

impl EventError {
    pub(super) fn answer(&self) -> HttpResponse {
        let (status, code) = match self {
            EventError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_event"),
            EventError::UnknownSite(_) => (StatusCode::BAD_REQUEST, "unknown_site"),
            EventError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            EventError::DurableFull => (StatusCode::SERVICE_UNAVAILABLE, "durable_full"),
            EventError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            EventError::SiteParked => (StatusCode::SERVICE_UNAVAILABLE, "site_parked"),
            EventError::DisallowedHost(_) => (StatusCode::FORBIDDEN, "disallowed_host"),
            // The visitor's own choice, honoured: nothing is wrong.
            EventError::DoNotTrack => {
                return HttpResponse::Accepted()
                    .json(serde_json::json!({ "accepted": 0, "ignored": "do_not_track" }))
            }
            EventError::RateLimited(secs) => {
                let mut response = json_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    &self.to_string(),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
                return response;
            }
        };
        json_error(status, code, &self.to_string())
    }

    /// The reason counted in `/metrics`.
    pub fn reason(&self) -> Rejection {
        match self {
            EventError::Invalid(_) => Rejection::Invalid,
            EventError::UnknownSite(_) => Rejection::UnknownSite,
            EventError::Busy => Rejection::PendingFull,
            EventError::DurableFull => Rejection::DurableFull,
            EventError::ShuttingDown => Rejection::ShuttingDown,
            EventError::SiteParked => Rejection::SiteParked,
            EventError::DisallowedHost(_) => Rejection::DisallowedHost,
            EventError::DoNotTrack => Rejection::DoNotTrack,
            EventError::RateLimited(_) => Rejection::RateLimited,
        }
    }
}

pub(super) fn invalid(at: Option<usize>, message: impl std::fmt::Display) -> EventError {
    EventError::Invalid(match at {
        Some(i) => format!("event {i}: {message}"),
        None => message.to_string(),
    })
}
