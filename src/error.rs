//! The one JSON error shape of every HTTP answer that is not a success:
//! `{"error": {"code": "...", "message": "..."}}`.
//!
//! The code is stable and machine-readable; the message is for people and never carries
//! internal detail (that goes to the log).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
}

/// An error answer with the documented shape.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(Body {
        error: Detail { code, message },
    })
}

/// The answer for any path tally does not serve.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    json_error(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("no such resource: {} {}", req.method(), req.path()),
    )
}
