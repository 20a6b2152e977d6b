//! The operational endpoints: `/metrics` (OpenMetrics text), `/healthz` (the process is up)
//! and `/readyz` (the store answers and nothing is stuck or full).
//!
//! These read state and answer; they must not change it.

use crate::aggregate::flusher::Flusher;
use crate::aggregate::Coalescer;
use crate::error;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::track::Tracker;
use actix_web::http::header::ContentType;
use actix_web::{web, HttpResponse};
use std::sync::Arc;
use std::time::Duration;

pub(super) async fn metrics_text(
    metrics: web::Data<Arc<Metrics>>,
    coalescer: web::Data<Arc<Coalescer>>,
    flusher: web::Data<Arc<Flusher>>,
    tracker: web::Data<Tracker>,
) -> HttpResponse {
    metrics.pending.set(coalescer.pending() as i64);
    metrics.owed.set(flusher.queued() as i64);
    if let Some(journal) = coalescer.journal() {
        metrics.durable_bytes.set(journal.bytes() as i64);
        metrics.durable_spill_files.set(flusher.spilled() as i64);
    }
    metrics
        .rate_limit_addresses
        .set(tracker.limits.len() as i64);
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(metrics.encode())
}

/// A flush running longer than this means the flusher is stuck.
const STUCK_FLUSH: Duration = Duration::from_secs(60);

/// `/readyz`: 200 when the store answers a ping within 2 s, no flush has been running for
/// over a minute and the pending bound is not reached; else 503 with the reason, as the JSON
/// error shape. Ready but with parked statements in the store: 200 with a JSON body,
/// `"status": "degraded"` and the reason.
pub(super) async fn readyz(
    store: web::Data<Arc<dyn Store>>,
    ready: web::Data<Arc<Flusher>>,
    coalescer: web::Data<Arc<Coalescer>>,
) -> HttpResponse {
    if coalescer.pending() >= coalescer.max_entries() {
        return error::json_error(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "pending_full",
            &format!(
                "{} increments are waiting for the store (the bound, --max-pending): new hits are refused with 503; {} statements are owed",
                coalescer.pending(),
                ready.queued()
            ),
        );
    }
    if let Some(journal) = coalescer.journal().filter(|j| j.full()) {
        return error::json_error(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "durable_full",
            &format!(
                "the durable directory holds {} bytes, its budget (--durable-max-bytes) is {}: new hits are refused with 503 until the store takes the {} spill files back",
                journal.bytes(),
                journal.max_bytes(),
                ready.spilled()
            ),
        );
    }
    if let Some(running) = ready.running_for().filter(|d| *d > STUCK_FLUSH) {
        return error::json_error(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "flusher_stuck",
            &format!("a flush has been running for {} s", running.as_secs()),
        );
    }
    match tokio::time::timeout(Duration::from_secs(2), store.ping()).await {
        Ok(Ok(())) => match coalescer.parked().total() {
            0 => HttpResponse::Ok()
                .content_type(ContentType::plaintext())
                .body("ready\n"),
            // Still ready: every other document is written. A monitor reads the reason.
            parked => {
                let refused = coalescer.parked().over();
                HttpResponse::Ok().json(serde_json::json!({
                    "status": "degraded",
                    "reason": "parked_statements",
                    "message": format!(
                        "{parked} statements are parked: documents refused their updates; repair them and run `tally parked retry` (or `tally parked drop`); see `tally parked list`"
                    ),
                    "parked": parked,
                    "sites_refused": refused.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                }))
            }
        },
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readyz: the store does not answer");
            error::json_error(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the store does not answer",
            )
        }
        Err(_) => error::json_error(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the store did not answer within 2 s",
        ),
    }
}

pub(super) async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body("ok\n")
}
