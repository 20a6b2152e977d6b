//! The dashboard: `/` (with `?site=ID`), `/app.css`, and its ES modules under
//! `/assets/<name>.<hash>.js` ([`assets`](super::assets)) — files compiled into the binary, no
//! CDN and no external fonts, reading everything from the JSON API (`api`).
//!
//! All are sent with the security headers of `dashboard::secure`. The page and the style sheet
//! are sent with `Cache-Control: no-cache` and an `ETag`, so an upgrade shows at once and an
//! unchanged file costs a `304`; a module, whose address changes with its content, with
//! `public, max-age=31536000, immutable`, and an unknown one is the usual JSON 404. This module
//! serves files; it reads no document itself.

use super::assets::assets;
use crate::{error, static_file};
use actix_web::{web, HttpRequest, HttpResponse};
use std::sync::OnceLock;

const CSS: &str = include_str!("app.css");

/// How long a hashed module may be kept: a year, never revalidated.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn serve(
    req: &HttpRequest,
    body: &'static str,
    kind: &'static str,
    tag: &'static OnceLock<String>,
) -> HttpResponse {
    let tag = tag.get_or_init(|| static_file::etag(body));
    let mut r = static_file::respond(req, body, tag, kind, "no-cache");
    super::secure(&mut r, super::CSP);
    r
}

async fn html(req: HttpRequest) -> HttpResponse {
    static TAG: OnceLock<String> = OnceLock::new();
    serve(&req, &assets().page, "text/html; charset=utf-8", &TAG)
}

async fn css(req: HttpRequest) -> HttpResponse {
    static TAG: OnceLock<String> = OnceLock::new();
    serve(&req, CSS, "text/css; charset=utf-8", &TAG)
}

async fn module(req: HttpRequest, file: web::Path<String>) -> HttpResponse {
    let Some(m) = assets().module(&file) else {
        return error::not_found(req).await;
    };
    let mut r = static_file::respond(
        &req,
        &m.body,
        &m.etag,
        "text/javascript; charset=utf-8",
        IMMUTABLE,
    );
    super::secure(&mut r, super::CSP);
    r
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    use actix_web::middleware::Compress;
    cfg.service(
        web::resource("/")
            .wrap(Compress::default())
            .route(web::get().to(html)),
    )
    .service(
        web::resource("/app.css")
            .wrap(Compress::default())
            .route(web::get().to(css)),
    )
    .service(
        web::resource("/assets/{file}")
            .wrap(Compress::default())
            .route(web::get().to(module)),
    );
}
