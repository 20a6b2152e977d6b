//! The dashboard: `/` (with `?site=ID`), `/app.css`, `/app.js` — static files compiled into the
//! binary, no CDN and no external fonts, reading everything from the JSON API (`api`).
//!
//! Served with the security headers of `dashboard::secure`, `Cache-Control: no-cache` and an
//! `ETag` per file, so an upgrade shows at once and an unchanged file costs a `304`. This module serves files; it reads no document itself.

use crate::static_file;
use actix_web::{web, HttpRequest, HttpResponse};
use std::sync::OnceLock;

const HTML: &str = include_str!("app.html");
const CSS: &str = include_str!("app.css");
const JS: &str = include_str!("app.js");

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
    serve(&req, HTML, "text/html; charset=utf-8", &TAG)
}

async fn css(req: HttpRequest) -> HttpResponse {
    static TAG: OnceLock<String> = OnceLock::new();
    serve(&req, CSS, "text/css; charset=utf-8", &TAG)
}

async fn js(req: HttpRequest) -> HttpResponse {
    static TAG: OnceLock<String> = OnceLock::new();
    serve(&req, JS, "text/javascript; charset=utf-8", &TAG)
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
        web::resource("/app.js")
            .wrap(Compress::default())
            .route(web::get().to(js)),
    );
}
