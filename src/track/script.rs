//! `GET /t.js`: the tracking snippet, compiled into the binary.
//!
//! Served with an `ETag` (a `304` when the browser already has it) and cached for an hour, so a
//! new version reaches every visitor within an hour of an upgrade. Compression is added by the
//! route's middleware when the browser accepts it.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::OnceLock;

/// The snippet's source, as served.
pub const SOURCE: &str = include_str!("t.js");

fn etag() -> &'static str {
    static ETAG: OnceLock<String> = OnceLock::new();
    ETAG.get_or_init(|| {
        let mut h = DefaultHasher::new();
        SOURCE.hash(&mut h);
        format!("\"{:016x}\"", h.finish())
    })
}

pub async fn script(req: HttpRequest) -> HttpResponse {
    let tag = etag();
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response.insert_header((header::ETAG, tag)).insert_header((
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    ));
    if fresh {
        return response.finish();
    }
    response
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        ))
        .body(SOURCE)
}
