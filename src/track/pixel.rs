//! `GET /t.gif`: the tracking pixel.
//!
//! Always answers with a 1×1 transparent GIF and `Cache-Control: no-store`, whatever the
//! input: a page must never show a broken image because of tally. The status says whether the
//! hit was taken: **200** when it was counted, or deliberately not counted for a reason the
//! visitor or the site owner chose or that marks it as not a person (bad or unknown site, bot,
//! disallowed host, DNT/GPC); **429** with `Retry-After` when its sender went over the
//! per-address rate limit. So the 200s of a load test add up to the counters plus the
//! deliberate rejections in `/metrics`. Which reason applied is in the metrics only: it is
//! not something to tell a stranger about.

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
    if let Err(limited) = tracker.admit(req.peer_addr().map(|a| a.ip()), req.headers()) {
        tracker.metrics.rejected(Rejection::RateLimited).inc();
        return gif_limited(limited.retry_after_secs());
    }
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
    // The outcome is counted and logged inside; the answer is the same either way.
    let sender = Sender::from_headers(req.headers());
    let _ = tracker.track_from(req.query_string(), &user_agent, client, sender);
    gif()
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
