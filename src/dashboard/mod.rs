//! The read side served over HTTP: the dashboard at `/` ([`app`], static files over the JSON
//! API, its ES modules under content-hashed addresses from [`assets`]), and the `--demo` page,
//! which carries the snippet and shows its own counters live.
//!
//! Every page and file here is sent with [`secure`]'s headers: a Content-Security-Policy that
//! allows only this origin's own scripts, styles and requests (no inline script or style, no
//! framing), `nosniff`, and no referrer. Reads go through the store or the API; this module
//! must not write anything but the demo site.

pub mod app;
mod assets;
pub mod demo;

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::HttpResponse;

/// The policy of the dashboard and of the demo page: this origin's own files and API only
/// (the demo's snippet, `/t.js`, and its requests to `/t.gif`, `/e` and `/v` are same-origin
/// too). `img-src data:` is the dashboard's empty favicon.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// Adds the security headers of a dashboard page or file, with the policy `csp`.
pub fn secure(response: &mut HttpResponse, csp: &'static str) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
}
