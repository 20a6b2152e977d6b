//! `GET /t.gif`: the tracking pixel.
//!
//! Answers 200 with a 1×1 transparent GIF and `Cache-Control: no-store` whatever the input: a
//! page must never show a broken image because of tally, and a rejection is not something to
//! tell a stranger about. What happened is in the metrics. Only when tally itself cannot take
//! a hit it wanted (the pending bound is reached, it is shutting down, or with `--durable` its
//! log cannot be written) is the answer 503, still with the GIF: a 200 from the pixel then
//! means a counted hit, which is what load tests compare against the counters.

use super::Tracker;
use crate::metrics::Rejection;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};

/// The smallest transparent GIF (43 bytes).
pub const GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

pub async fn pixel(req: HttpRequest, tracker: web::Data<Tracker>) -> HttpResponse {
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()))
        .unwrap_or_default();
    // The address is worked out only for the country lookup, and never kept.
    let client = tracker.geo.as_ref().and_then(|_| {
        super::client::client_ip(
            req.peer_addr().map(|a| a.ip()),
            req.headers(),
            tracker.trusted_proxies,
        )
    });
    // The outcome is counted and logged inside. The answer is the same for every reason the
    // hit itself gives; only tally's own state (full, stopping, its log unwritable) is told,
    // so that "answered 200" means "counted" for every hit tally wanted.
    match tracker.track(req.query_string(), &user_agent, client) {
        Ok(()) if !tracker.durable().await => busy(),
        Err(Rejection::PendingFull | Rejection::ShuttingDown) => busy(),
        _ => gif(),
    }
}

/// The pixel's answer when tally could not take the hit (pending bound reached, shutting
/// down, durable log unwritable): 503 with `Retry-After`, and still the GIF, so nothing on the
/// page shows broken.
pub fn busy() -> HttpResponse {
    let mut answer = gif();
    *answer.status_mut() = actix_web::http::StatusCode::SERVICE_UNAVAILABLE;
    answer
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    answer
}

/// The JSON answer for a request counted but not written to the durable log in time.
pub fn not_durable() -> HttpResponse {
    crate::error::json_error(
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
        "not_durable",
        "counted, but the durable log could not be written in time",
    )
}

/// The pixel's answer.
pub fn gif() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("image/gif")))
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store, max-age=0"),
        ))
        // Pages served with `Cross-Origin-Embedder-Policy: require-corp` may still load it.
        .insert_header((
            header::HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("cross-origin"),
        ))
        .body(GIF)
}
