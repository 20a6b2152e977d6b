//! The JSON API, `/api/v1`: one site's summary and reports, Glow's metrics over events, CSV
//! exports and the live stream — read from the same documents any MongoDB client sees.
//!
//! Every route is under `/api/v1/sites/{id}` and goes through [`authorize`]: a token
//! (`Authorization: Bearer tly_…`) is hashed and compared in constant time with the hashes the
//! sites hold. No token, or a token no site holds: 401. A token of another site: 404. A public
//! site needs no token. A site that does not exist answers exactly as a private one without
//! the right token, so the API never tells which sites exist. An address that presents too
//! many wrong tokens is refused for a while: 429 ([`limit`]). This module reads; it must not
//! write counters.
//!
//! No route here sends CORS headers: the API is read by the dashboard, served from the same
//! origin, and by servers; a page elsewhere cannot read it from a visitor's browser.

pub mod limit;
pub mod live;
pub mod metrics;
pub mod range;
pub mod reports;
pub mod summary;
pub mod table;
pub mod token;

use crate::error::json_error;
use crate::metrics::Metrics;
use crate::period::Clock;
use crate::site::{Site, SiteId, SiteRegistry};
use crate::store::{Store, StoreError};
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use std::sync::Arc;

/// What the read side needs.
#[derive(Clone)]
pub struct ApiState {
    pub sites: Arc<SiteRegistry>,
    pub store: Arc<dyn Store>,
    pub live: Arc<live::Live>,
    pub clock: Clock,
    pub summaries: Arc<summary::Cache>,
    /// Failed token checks per client address.
    pub limiter: Arc<limit::AuthLimiter>,
    pub metrics: Arc<Metrics>,
    /// Which peers are proxies whose forwarding headers name the client (`--trust-proxy`).
    pub trust: crate::track::client::TrustProxy,
}

/// Why a read was refused; each maps to one answer with the JSON error shape.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid token is required: Authorization: Bearer <token>")]
    Unauthorized,
    #[error("no such site for this token")]
    NotFound,
    #[error("too many wrong tokens from this address; retry in {0} s")]
    TooManyFailures(u64),
    #[error("{0}")]
    BadRequest(String),
    #[error("the store could not be read")]
    Store(#[from] StoreError),
}

impl ApiError {
    pub fn answer(&self) -> HttpResponse {
        match self {
            ApiError::Unauthorized => {
                let mut r = json_error(StatusCode::UNAUTHORIZED, "unauthorized", &self.to_string());
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
                r
            }
            ApiError::NotFound => json_error(StatusCode::NOT_FOUND, "not_found", &self.to_string()),
            ApiError::TooManyFailures(secs) => {
                let mut r = json_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_failures",
                    &self.to_string(),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from(*secs));
                r
            }
            ApiError::BadRequest(m) => json_error(StatusCode::BAD_REQUEST, "bad_request", m),
            ApiError::Store(e) => {
                tracing::warn!(error = %e, "api: store read failed");
                json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    &self.to_string(),
                )
            }
        }
    }
}

/// The site `id` if the request may read it (see the module docs); a wrong token counts
/// against the client's address, and an address over its limit is refused before any check.
pub fn authorize(req: &HttpRequest, state: &ApiState, id: &str) -> Result<Arc<Site>, ApiError> {
    let now = std::time::Instant::now();
    let client = crate::track::client::client_address(
        req.peer_addr().map(|a| a.ip()),
        req.headers(),
        &state.trust,
    )
    .ip;
    if let Some(left) = client.and_then(|ip| state.limiter.blocked(ip, now)) {
        state.metrics.api_auth_limited.inc();
        return Err(ApiError::TooManyFailures(left.as_secs_f64().ceil() as u64));
    }
    let result = check_token(req, &state.sites, id);
    if matches!(result, Err(ApiError::Unauthorized)) && has_token(req) {
        state.metrics.api_auth_failures.inc();
        if let Some(ip) = client {
            state.limiter.failed(ip, now);
        }
    }
    result
}

fn has_token(req: &HttpRequest) -> bool {
    req.headers().contains_key(header::AUTHORIZATION)
}

fn check_token(req: &HttpRequest, sites: &SiteRegistry, id: &str) -> Result<Arc<Site>, ApiError> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    match token {
        Some(token) => {
            let hash = token::hash(token);
            // Every stored hash is compared, so the time taken does not depend on which matched.
            let mut holder = None;
            for site in sites.all() {
                for t in &site.tokens {
                    if token::matches(&hash, &t.hash) {
                        holder = Some(Arc::clone(&site));
                    }
                }
            }
            match holder {
                None => Err(ApiError::Unauthorized),
                Some(site) if site.id.as_str() == id => Ok(site),
                Some(_) => Err(ApiError::NotFound),
            }
        }
        None => SiteId::parse(id)
            .ok()
            .and_then(|id| sites.get(&id))
            .filter(|s| s.public)
            .ok_or(ApiError::Unauthorized),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1/sites/{id}")
            .route("", web::get().to(site_info))
            .route("/summary", web::get().to(summary::summary))
            .route("/reports/{report}", web::get().to(reports::report))
            .route("/metrics/count", web::get().to(metrics::count))
            .route("/metrics/group", web::get().to(metrics::group))
            .route("/metrics/retention", web::get().to(metrics::retention))
            .route("/live", web::get().to(live_stream)),
    );
}

async fn site_info(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let site = match authorize(&req, &state, &id) {
        Ok(site) => site,
        Err(e) => return e.answer(),
    };
    let today = crate::period::LocalTime::at((state.clock)(), site.tz).day_period();
    let first = match summary::first_day(&state, &site).await {
        Ok(first) => first.map(|d| d.format("%Y-%m-%d").to_string()),
        Err(e) => return e.answer(),
    };
    HttpResponse::Ok().json(serde_json::json!({
        "id": site.id.as_str(),
        "name": site.name,
        "zone": site.tz.name(),
        "public": site.public,
        "today": today.to_string(),
        "first_day": first,
    }))
}

/// `GET /api/v1/sites/{id}/live`: Server-Sent Events. A `snapshot` at once, an `update` whenever
/// the site's minute documents read differently (polled every [`live::POLL_EVERY`] while
/// someone follows the site), and a keep-alive comment every 15 s.
async fn live_stream(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let site = match authorize(&req, &state, &id) {
        Ok(site) => site,
        Err(e) => return e.answer(),
    };
    let subscription = state.live.subscribe(Arc::clone(&site));
    let first = match state.live.snapshot(&site).await {
        Ok(first) => Arc::new(first),
        Err(e) => return ApiError::from(e).answer(),
    };
    let event = |name: &str, snapshot: &live::Snapshot| {
        let data = serde_json::to_string(snapshot).unwrap_or_default();
        web::Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
    };
    let opening = event("snapshot", &first);
    let stream = futures_util::stream::unfold(
        (Some(opening), subscription, first),
        move |(opening, mut subscription, last)| async move {
            if let Some(opening) = opening {
                return Some((
                    Ok::<_, actix_web::Error>(opening),
                    (None, subscription, last),
                ));
            }
            loop {
                let wait = tokio::time::timeout(
                    std::time::Duration::from_secs(15),
                    subscription.changed(),
                );
                match wait.await {
                    Err(_) => {
                        let ping = web::Bytes::from_static(b": keep-alive\n\n");
                        return Some((Ok(ping), (None, subscription, last)));
                    }
                    Ok(None) => return None,
                    Ok(Some(snap)) if snap.same(&last) => continue,
                    Ok(Some(snap)) => {
                        let bytes = event("update", &snap);
                        return Some((Ok(bytes), (None, subscription, snap)));
                    }
                }
            }
        },
    );
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream)
}
