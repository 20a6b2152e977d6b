//! The request log: one event per request, in a span.
//!
//! It must not log a query string, an address or a User-Agent.

/// One log event per request, in a span: method, path (never the query string, which carries
/// visitors' pages and referrers), status and latency. No address or User-Agent is logged.
///
/// The tracking endpoints (most of the traffic) and the probes (`/healthz`, `/readyz`,
/// `/metrics`, polled every few seconds by orchestrators and Prometheus) log at debug level and
/// open their span at debug level too, so at the default level they cost no formatting and no
/// span allocation; everything else logs at info. Server errors are warnings everywhere.
pub(super) async fn log_request(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use tracing::Instrument;
    let started = std::time::Instant::now();
    let quiet = matches!(
        req.path(),
        "/t.gif" | "/t.js" | "/e" | "/v" | "/healthz" | "/readyz" | "/metrics"
    );
    let span = if quiet {
        tracing::debug_span!("request", method = %req.method(), path = req.path())
    } else {
        tracing::info_span!("request", method = %req.method(), path = req.path())
    };
    let response = next.call(req).instrument(span.clone()).await?;
    let status = response.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let _entered = span.enter();
    if status >= 500 {
        tracing::warn!(status, ms, "request");
    } else if quiet {
        tracing::debug!(status, ms, "request");
    } else {
        tracing::info!(status, ms, "request");
    }
    Ok(response)
}
