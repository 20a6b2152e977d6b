//! Text compiled into the binary (the snippet, the dashboard), answered with an `ETag` and a
//! `304 Not Modified` when the browser already has it. This module must not know what it serves.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use std::hash::{DefaultHasher, Hash, Hasher};

/// A strong validator for `body`: a hash of it, quoted.
pub fn etag(body: &str) -> String {
    let mut h = DefaultHasher::new();
    body.hash(&mut h);
    format!("\"{:016x}\"", h.finish())
}

/// `body` with its `tag`, type and `Cache-Control`; a bodiless 304 when the request's
/// `If-None-Match` names the tag.
pub fn respond(
    req: &HttpRequest,
    body: &'static str,
    tag: &str,
    content_type: &'static str,
    cache_control: &'static str,
) -> HttpResponse {
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
    response
        .insert_header((header::ETAG, tag))
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        ))
        .insert_header(("X-Content-Type-Options", "nosniff"));
    if fresh {
        return response.finish();
    }
    response
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)))
        .body(body)
}
