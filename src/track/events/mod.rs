//! `/e`: custom events, and `/v`: visit-duration beacons.
//!
//! - `POST /e` takes a JSON event `{"site", "name", "value"?, "props"?, "ts"?}` or an array of
//!   up to [`MAX_BATCH`] of them (one site per request), from servers and from the snippet's
//!   `navigator.sendBeacon` (any content type). The whole request is checked first and counted
//!   all or nothing: `202 {"accepted": n}`, or a 4xx with the JSON error shape and nothing
//!   counted. Bodies over [`MAX_BODY`] get 413 before they are read. A page on a host the site
//!   does not list gets 403 `disallowed_host`; an opted-out browser (DNT/GPC, for a site that
//!   honours it) gets `202 {"accepted": 0, "ignored": "do_not_track"}`; a sender over the rate
//!   limit gets 429 `rate_limited` with `Retry-After`.
//! - `GET /e?site=&name=&value=&p.KEY=VAL&ts=` is the same for one event from an `<img>`: it
//!   answers the pixel, like `/t.gif` (429 over the rate limit, else 200).
//! - `GET|POST /v?site=&vt=&vd=&pvd=&ts=` moves a visit between duration segments
//!   (`reports::engagement`); it answers 204 (429 over the rate limit).
//!
//! Like the pixel, these only validate and enqueue; every outcome is counted in `/metrics`.
//!
//! Layout: `parse` reads events as sent, `count` checks and enqueues them, `error` names
//! the refusals; this file holds the handlers.

mod count;
mod error;
mod parse;

pub use error::EventError;
pub use parse::{parse_json, parse_query, RawEvent};

use super::sender::Sender;
use super::{pixel, Tracker};
use crate::error::json_error;
use crate::metrics::Rejection;
use crate::track::agent::Agent;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

/// Largest `POST /e` body read.
pub const MAX_BODY: usize = 64 * 1024;
/// Most events in one `POST /e`.
pub const MAX_BATCH: usize = 100;

/// How long a `POST /e` body may take to arrive (`--body-timeout-ms`).
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub std::time::Duration);

fn closing(mut response: HttpResponse) -> HttpResponse {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn cors(mut response: HttpResponse) -> HttpResponse {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// [`Tracker::admit`] for `/e`, counting a refusal as the events' own.
fn admit_events(
    tracker: &Tracker,
    req: &HttpRequest,
) -> Result<super::client::ClientAddress, super::limit::Limited> {
    tracker.admit(req).inspect_err(|_| {
        tracker
            .metrics
            .events_rejected(Rejection::RateLimited)
            .inc();
    })
}

/// `POST /e`.
pub async fn post(
    req: HttpRequest,
    body: web::Payload,
    tracker: web::Data<Tracker>,
    timeout: web::Data<BodyTimeout>,
) -> HttpResponse {
    let client = match admit_events(&tracker, &req) {
        Ok(client) => client,
        Err(limited) => {
            return cors(EventError::RateLimited(limited.retry_after_secs()).answer());
        }
    };
    // Refusals before the whole body was read close the connection, so the rest of the body
    // is never waited for.
    let too_large = || {
        closing(cors(json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            &format!("the body is over {MAX_BODY} bytes"),
        )))
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        tracker.metrics.events_rejected(Rejection::TooLarge).inc();
        return too_large();
    }
    // A body trickled in slowly (slow-loris) ties up a connection: it gets a deadline. The
    // limit is the outer error of `to_bytes_limited`, a broken body (a bad chunk) the inner.
    let bytes = match tokio::time::timeout(timeout.0, body.to_bytes_limited(MAX_BODY)).await {
        Ok(Ok(Ok(bytes))) => bytes,
        Ok(Err(_limit)) => {
            tracker.metrics.events_rejected(Rejection::TooLarge).inc();
            return too_large();
        }
        Ok(Ok(Err(e))) => {
            tracker.metrics.events_rejected(Rejection::Invalid).inc();
            tracing::debug!(error = %e, "POST /e: the body could not be read");
            return closing(cors(json_error(
                StatusCode::BAD_REQUEST,
                "bad_body",
                "the body could not be read",
            )));
        }
        Err(_elapsed) => {
            tracker.metrics.events_rejected(Rejection::Invalid).inc();
            return closing(cors(json_error(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                &format!(
                    "the body did not arrive within {} ms",
                    timeout.0.as_millis()
                ),
            )));
        }
    };
    let result = match parse_json(&bytes) {
        Ok(events) => {
            tracker.track_events_from(&events, client.ip, Sender::from_headers(req.headers()))
        }
        Err(e) => {
            tracker.metrics.events_rejected(Rejection::Invalid).inc();
            Err(e)
        }
    };
    cors(match result {
        Ok(n) if tracker.durable().await => {
            HttpResponse::Accepted().json(serde_json::json!({ "accepted": n }))
        }
        Ok(_) => pixel::not_durable(),
        Err(e) => e.answer(),
    })
}

/// `GET /e`: one event from an `<img>`; the pixel (429 over the rate limit, else 200).
pub async fn get(req: HttpRequest, tracker: web::Data<Tracker>) -> HttpResponse {
    let client = match admit_events(&tracker, &req) {
        Ok(client) => client,
        Err(limited) => return pixel::gif_limited(limited.retry_after_secs()),
    };
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()))
        .unwrap_or_default();
    if Agent::parse(&user_agent).bot {
        tracker.metrics.events_rejected(Rejection::Bot).inc();
        return pixel::gif();
    }
    match parse_query(req.query_string()) {
        Ok(event) => {
            let sender = Sender::from_headers(req.headers());
            match tracker.track_events_from(&[event], client.ip, sender) {
                Ok(_) if !tracker.durable().await => return pixel::busy(),
                Err(
                    EventError::Busy
                    | EventError::DurableFull
                    | EventError::ShuttingDown
                    | EventError::SiteParked,
                ) => return pixel::busy(),
                _ => {}
            }
        }
        Err(e) => {
            tracker.metrics.events_rejected(Rejection::Invalid).inc();
            tracing::debug!(error = %e, "event not counted");
        }
    }
    pixel::gif()
}

/// `OPTIONS /e`: lets pages on any origin `fetch` JSON to `/e`, and no more: `POST` only
/// (`GET /e` is an image, which needs no preflight), the `Content-Type` header only, no
/// credentials (no `Access-Control-Allow-Credentials`, so a browser sends no cookies), and a
/// day's cache of the answer (browsers cap it lower).
pub async fn preflight() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "Content-Type"))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
        .finish()
}

/// `GET|POST /v`: a visit-duration beacon; 204 (429 over the rate limit).
pub async fn visit(req: HttpRequest, tracker: web::Data<Tracker>) -> HttpResponse {
    if let Err(limited) = tracker.admit(&req) {
        tracker
            .metrics
            .beacons_rejected(Rejection::RateLimited)
            .inc();
        return cors(
            HttpResponse::TooManyRequests()
                .insert_header((header::RETRY_AFTER, limited.retry_after_secs()))
                .finish(),
        );
    }
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()))
        .unwrap_or_default();
    let counted = tracker.track_duration_from(
        req.query_string(),
        &user_agent,
        Sender::from_headers(req.headers()),
    );
    if counted.is_ok() && !tracker.durable().await {
        return cors(pixel::not_durable());
    }
    cors(HttpResponse::NoContent().finish())
}
