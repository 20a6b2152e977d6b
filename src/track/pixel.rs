//! `GET /t.gif`: the tracking pixel.
//!
//! Always answers with a 1×1 transparent GIF and `Cache-Control: no-store`, whatever the
//! input: a page must never show a broken image because of tally. The status says whether the
//! hit was taken: **200** when it was counted, or deliberately not counted for a reason the
//! visitor or the site owner chose or that marks it as not a person (bad or unknown site, bot,
//! disallowed host, DNT/GPC); **429** with `Retry-After` when its sender went over the
//! per-address rate limit; **503** with `Retry-After` when tally itself could not take a hit it
//! wanted (the pending bound is reached, it is shutting down, or with `--durable` its log
//! cannot be written). So the 200s of a load test of valid hits equal the counters. Which reason
//! applied is in the metrics only: it is not something to tell a stranger about.

use super::sender::Sender;
use super::Tracker;
use crate::metrics::Rejection;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

/// The smallest transparent GIF (43 bytes).
pub const GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

pub async fn pixel(req: HttpRequest, tracker: web::Data<Tracker>) -> HttpResponse {
    let client = match tracker.admit(&req) {
        Ok(client) => client,
        Err(limited) => {
            tracker.metrics.rejected(Rejection::RateLimited).inc();
            return gif_limited(limited.retry_after_secs());
        }
    };
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()))
        .unwrap_or_default();
    // The outcome is counted and logged inside. The answer is the same for every reason the
    // hit itself gives; only tally's own state (full, stopping, its log unwritable) is told,
    // so that "answered 200" means "counted" for every hit tally wanted.
    let sender = Sender::from_headers(req.headers());
    match tracker.track_from(req.query_string(), &user_agent, client.ip, sender) {
        Ok(()) if !tracker.durable().await => busy(),
        Err(
            Rejection::PendingFull
            | Rejection::DurableFull
            | Rejection::ShuttingDown
            | Rejection::SiteParked,
        ) => busy(),
        _ => gif(),
    }
}

/// The pixel's answer when tally could not take the hit (pending bound reached, shutting
/// down, durable log unwritable): 503 with `Retry-After`, and still the GIF, so nothing on the
/// page shows broken.
pub fn busy() -> HttpResponse {
    let mut answer = gif();
    *answer.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    answer
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    answer
}

/// The JSON answer for a request counted but not written to the durable log in time.
pub fn not_durable() -> HttpResponse {
    crate::error::json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_durable",
        "counted, but the durable log could not be written in time",
    )
}

/// The pixel's answer.
pub fn gif() -> HttpResponse {
    gif_with(StatusCode::OK)
}

/// The pixel's answer to a sender over the rate limit: 429, the GIF, and when to come back.
pub fn gif_limited(retry_after_secs: u64) -> HttpResponse {
    let mut response = gif_with(StatusCode::TOO_MANY_REQUESTS);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
}

fn gif_with(status: StatusCode) -> HttpResponse {
    HttpResponse::build(status)
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
