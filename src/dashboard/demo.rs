//! `--demo`: the site `demo` and the page `/demo` that counts its own views.
//!
//! A newcomer runs `tally serve --demo`, opens `/demo`, and sees each reload counted within a
//! second: the page loads `/t.js` like any tracked site, and polls `/demo/stats`, which reads
//! the `traffic` and `technology` documents of the current period through the store.

use crate::period::{LocalTime, Period};
use crate::reports::technology::{Technology, TechnologyView};
use crate::reports::traffic::{Counts, Traffic, TrafficView};
use crate::reports::{document_id, Report, ReportKind};
use crate::site::{Site, SiteId, SiteRegistry};
use crate::static_file;
use crate::store::{Store, StoreError};
use actix_web::http::header::ContentType;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use chrono_tz::Tz;
use serde::Serialize;
use std::sync::Arc;
use std::sync::OnceLock;

pub const SITE: &str = "demo";

const PAGE: &str = include_str!("demo.html");
const CSS: &str = include_str!("demo.css");
const JS: &str = include_str!("demo.js");

/// Creates the site `demo` (in this machine's time zone, else UTC) unless it exists.
pub async fn ensure_site(store: &dyn Store) -> Result<Site, StoreError> {
    if let Some(site) = store.site(SITE).await? {
        return Ok(site);
    }
    let tz = iana_time_zone::get_timezone()
        .ok()
        .and_then(|name| name.parse::<Tz>().ok())
        .unwrap_or(Tz::UTC);
    let site = Site {
        id: SiteId::parse(SITE).expect("\"demo\" is a valid site id"),
        tz,
        name: "tally demo".to_owned(),
        // No hosts: the demo page is served by tally itself, under whatever name the operator
        // opens it by (localhost, a LAN address, a container's name), and a site with hosts
        // refuses hits from pages on other hosts. Internal referrers are then told by the
        // page's own host.
        hosts: Vec::new(),
        keep_params: Vec::new(),
        tokens: Vec::new(),
        // Readable on the dashboard without a token: it is a demo on the operator's machine.
        public: true,
        honor_dnt: false,
        created_at: Utc::now(),
    };
    match store.insert_site(&site).await {
        Ok(()) | Err(StoreError::SiteExists(_)) => Ok(site),
        Err(e) => Err(e),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/demo", web::get().to(page))
        .route("/demo.css", web::get().to(css))
        .route("/demo.js", web::get().to(js))
        .route("/demo/stats", web::get().to(stats));
}

async fn css(req: HttpRequest) -> HttpResponse {
    static TAG: OnceLock<String> = OnceLock::new();
    let tag = TAG.get_or_init(|| static_file::etag(CSS));
    let mut r = static_file::respond(&req, CSS, tag, "text/css; charset=utf-8", "no-cache");
    super::secure(&mut r, super::CSP);
    r
}

async fn js(req: HttpRequest) -> HttpResponse {
    static TAG: OnceLock<String> = OnceLock::new();
    let tag = TAG.get_or_init(|| static_file::etag(JS));
    let mut r = static_file::respond(&req, JS, tag, "text/javascript; charset=utf-8", "no-cache");
    super::secure(&mut r, super::CSP);
    r
}

async fn page(sites: web::Data<Arc<SiteRegistry>>) -> HttpResponse {
    let tz = SiteId::parse(SITE)
        .ok()
        .and_then(|id| sites.get(&id))
        .map(|s| s.tz.name())
        .unwrap_or("UTC");
    let mut r = HttpResponse::Ok()
        .content_type(ContentType::html())
        .insert_header(("Cache-Control", "no-store"))
        .body(PAGE.replace("{{TZ}}", tz));
    super::secure(&mut r, super::CSP);
    r
}

#[derive(Serialize)]
struct Stats {
    site: &'static str,
    tz: String,
    month: String,
    traffic_collection: String,
    traffic_id: String,
    technology_collection: String,
    this_month: Counts,
    today: Counts,
    this_hour: Counts,
    this_year: Counts,
    technology: TechnologyView,
}

async fn stats(
    sites: web::Data<Arc<SiteRegistry>>,
    store: web::Data<Arc<dyn Store>>,
) -> HttpResponse {
    match read_stats(&sites, store.get_ref().as_ref()).await {
        Ok(stats) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(stats),
        Err(e) => {
            tracing::warn!(error = %e, "demo: cannot read the demo documents");
            crate::error::json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the store could not be read; see the server log",
            )
        }
    }
}

async fn read_stats(sites: &SiteRegistry, store: &dyn Store) -> Result<Stats, StoreError> {
    let id = SiteId::parse(SITE).expect("\"demo\" is a valid site id");
    let tz = sites.get(&id).map(|s| s.tz).unwrap_or(Tz::UTC);
    let now = LocalTime::at(Utc::now(), tz);
    let (month, year) = (now.month_period(), now.year_period());
    let read = |kind: ReportKind, period: Period| {
        let (coll, doc_id) = (kind.collection(period.year()), document_id(&id, period));
        async move { store.get(&coll, &doc_id).await }
    };
    let traffic_month = read(ReportKind::Traffic, month).await?;
    let traffic_year = read(ReportKind::Traffic, year).await?;
    let technology = read(ReportKind::Technology, month).await?;
    let view = |doc: Option<_>| doc.map(|d| Traffic::read(&d)).unwrap_or_default();
    let m: TrafficView = view(traffic_month);
    Ok(Stats {
        site: SITE,
        tz: tz.name().to_owned(),
        month: month.to_string(),
        traffic_collection: ReportKind::Traffic.collection(month.year()),
        traffic_id: document_id(&id, month),
        technology_collection: ReportKind::Technology.collection(month.year()),
        this_month: m.total,
        today: m.days.get(&now.day).copied().unwrap_or_default(),
        this_hour: m
            .hours
            .get(&(now.day, now.hour))
            .copied()
            .unwrap_or_default(),
        this_year: view(traffic_year).total,
        technology: technology.map(|d| Technology::read(&d)).unwrap_or_default(),
    })
}
