//! Builds the application from typed settings, exactly as production runs it; tests bind port 0
//! and get the same thing.
//!
//! [`Application::build`] opens the store, loads the sites, binds the listener and starts the
//! flusher and the site refresher. [`Application::run_until_stopped`] serves until
//! [`AppHandle::stop`] (or a signal, wired by `cli`), then shuts down in order: stop accepting
//! connections, finish the requests in flight, refuse new hits, flush what is pending.

use crate::aggregate::checkpoint::Checkpoint;
use crate::aggregate::flusher::{FlushReport, Flusher, Unflushed, Writer};
use crate::aggregate::journal::Journal;
use crate::aggregate::writers::{Registry, Role, Source};
use crate::aggregate::Coalescer;
use crate::api::live::Live;
use crate::dashboard::demo;
use crate::error;
use crate::metrics::Metrics;
use crate::period::{system_clock, Clock};
use crate::retention;
use crate::settings::{ServeSettings, Settings};
use crate::site::SiteRegistry;
use crate::store::{Store, StoreError};
use crate::track::budget::KeyBudget;
use crate::track::geo::GeoDb;
use crate::track::limit::IngestLimits;
use crate::track::{events, pixel, script, Tracker};
use actix_web::dev::{Server, ServerHandle};
use actix_web::http::header::ContentType;
use actix_web::middleware::Compress;
use actix_web::{web, App, HttpResponse, HttpServer};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long after start-up the first retention sweep runs.
const FIRST_SWEEP_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Geo(#[from] crate::track::geo::GeoError),
    #[error("cannot open the durable log: {0}")]
    Durable(#[from] crate::aggregate::checkpoint::CheckpointError),
    #[error("--durable needs --durable-dir")]
    NoDurableDir,
    #[error(transparent)]
    Identity(#[from] crate::aggregate::identity::IdentityError),
    #[error(transparent)]
    Writers(#[from] crate::aggregate::writers::RegistryError),
    #[error(
        "--writer-stale-secs ({stale}) must be at least 3 × --writer-heartbeat-secs ({heartbeat})"
    )]
    WriterTimes { stale: u64, heartbeat: u64 },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("HTTP server: {0}")]
    Server(#[from] std::io::Error),
    #[error(transparent)]
    Unflushed(#[from] Unflushed),
}

pub struct Application {
    port: u16,
    server: Server,
    handle: AppHandle,
    stop_tasks: watch::Sender<bool>,
    flusher_task: JoinHandle<()>,
    refresher_task: JoinHandle<()>,
    sweeper_task: JoinHandle<()>,
    writers_task: JoinHandle<()>,
    shutdown_timeout: Duration,
}

/// Controls a running application from outside (tests, the signal handler).
#[derive(Clone)]
pub struct AppHandle {
    server: ServerHandle,
    pub flusher: Arc<Flusher>,
    pub coalescer: Arc<Coalescer>,
    pub sites: Arc<SiteRegistry>,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    /// This process's entry in the `writers` registry, and the retired writers.
    pub writers: Arc<Registry>,
}

impl AppHandle {
    /// Begins a graceful shutdown; `run_until_stopped` returns once it is complete.
    pub async fn stop(&self) {
        self.server.stop(true).await;
    }

    /// Writes everything pending now.
    pub async fn flush(&self) -> FlushReport {
        self.flusher.flush().await
    }
}

impl Application {
    /// Opens the store named by `settings` and builds the application on it.
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let store = settings.store.open().await?;
        let mut serve = settings.serve;
        if serve.durable && serve.durable_dir.is_none() {
            serve.durable_dir = Some(settings.store.data_dir.join("durable"));
        }
        let data_dir = settings.store.data_dir;
        Application::build_in(serve, store, system_clock(), Some(&data_dir)).await
    }

    /// Builds the application on an open store with the given clock, with a random writer id
    /// (no data directory holds its identity).
    pub async fn build_with(
        serve: ServeSettings,
        store: Arc<dyn Store>,
        clock: Clock,
    ) -> Result<Application, StartupError> {
        Application::build_in(serve, store, clock, None).await
    }

    /// Builds the application on an open store with the given clock. Without `--durable`, its
    /// writer id is the first free slot's under `data_dir` (see [`crate::aggregate::identity`]).
    pub async fn build_in(
        serve: ServeSettings,
        store: Arc<dyn Store>,
        clock: Clock,
        data_dir: Option<&Path>,
    ) -> Result<Application, StartupError> {
        if serve.writer_stale_secs < 3 * serve.writer_heartbeat_secs {
            return Err(StartupError::WriterTimes {
                stale: serve.writer_stale_secs,
                heartbeat: serve.writer_heartbeat_secs,
            });
        }
        if serve.demo {
            demo::ensure_site(store.as_ref()).await?;
        }
        let sites = Arc::new(SiteRegistry::default());
        sites.replace(store.sites().await?);

        let metrics = Arc::new(Metrics::new());
        let mut coalescer = Coalescer::new(serve.max_pending, serve.flush_at)
            .with_parked_bound(serve.parked_max_per_site);
        let durable = match (serve.durable, &serve.durable_dir) {
            (false, _) => None,
            (true, None) => return Err(StartupError::NoDurableDir),
            (true, Some(dir)) => {
                let (recovered, pending) = Checkpoint::open(dir)?;
                let sync = Duration::from_millis(serve.durable_sync_ms);
                let (journal, replayed) = Journal::open(dir, recovered.consumed, sync)
                    .map_err(crate::aggregate::checkpoint::CheckpointError::from)?;
                journal.set_max_bytes(serve.durable_max_bytes);
                let checkpoint = pending.start(Arc::clone(&journal), &recovered)?;
                coalescer = coalescer.with_journal(journal);
                Some((checkpoint, recovered, replayed, dir.clone()))
            }
        };
        let coalescer = Arc::new(coalescer);
        let source = match (&durable, data_dir) {
            (Some((_, recovered, _, _)), _) => Source::Durable(recovered.writer.clone()),
            (None, Some(dir)) => Source::slot_or_random(dir)?,
            (None, None) => Source::Random(Writer::random()),
        };
        let (writers, writer) = Registry::register(
            Arc::clone(&store),
            source,
            Role::Serve,
            serve.writer_times(),
            Arc::clone(&clock),
            Arc::clone(&metrics),
        )
        .await?;
        let mut flusher = Flusher::new(
            Arc::clone(&coalescer),
            Arc::clone(&store),
            Arc::clone(&metrics),
            serve.max_keys,
            Arc::clone(&clock),
        )
        .with_store_timeout(Duration::from_secs(serve.store_timeout_secs))
        .with_writer(writer, Arc::clone(&writers));
        if let Some((checkpoint, recovered, mut replayed, dir)) = durable {
            let (owed, carried) = (recovered.statements.len(), recovered.carried.len());
            let (spills, unlisted) = (recovered.spills.len(), recovered.unlisted_spills);
            metrics
                .durable_max_bytes
                .set(serve.durable_max_bytes as i64);
            flusher = flusher.with_checkpoint(checkpoint, recovered);
            for (site, incs) in &mut replayed.hits {
                coalescer.replay(site, incs);
            }
            metrics.replayed_hits.inc_by(replayed.hits.len() as u64);
            if replayed.torn_bytes > 0 {
                tracing::warn!(
                    bytes = replayed.torn_bytes,
                    "durable log: the end of a segment was cut short by a crash (never acknowledged); ignored"
                );
            }
            tracing::info!(
                dir = %dir.display(),
                replayed_hits = replayed.hits.len(),
                segments = replayed.segments,
                owed_statements = owed,
                carried_documents = carried,
                spill_files = spills,
                unlisted_spill_files_deleted = unlisted,
                "durable log open"
            );
        }
        let flusher = Arc::new(flusher);
        let geo = match &serve.geoip_db {
            Some(path) => {
                let db = GeoDb::open(path)?;
                tracing::info!(path = %path.display(), database = %db.describe(), "country database loaded");
                Some(Arc::new(db))
            }
            None => None,
        };
        let sweep_clock = Arc::clone(&clock);
        let tracker = web::Data::new(Tracker {
            sites: Arc::clone(&sites),
            coalescer: Arc::clone(&coalescer),
            metrics: Arc::clone(&metrics),
            clock,
            geo,
            trust: serve.trust_proxy.clone(),
            limits: {
                let (sender, address) = serve.ingest_limits();
                IngestLimits::new(sender, address)
                    .counting_evictions_in(metrics.rate_limit_evictions.clone())
            },
            budget: (serve.new_keys_per_address > 0).then(|| {
                KeyBudget::new(serve.new_keys_per_address, Arc::clone(coalescer.named()))
                    .counting_in(
                        metrics.keys_unvouched.clone(),
                        metrics.key_budget_evictions.clone(),
                    )
            }),
            live_minutes: true,
        });

        let listener = TcpListener::bind(serve.listen).map_err(|source| StartupError::Listen {
            addr: serve.listen,
            source,
        })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartupError::Listen {
                addr: serve.listen,
                source,
            })?;
        let shared = (
            web::Data::new(Arc::clone(&sites)),
            web::Data::new(Arc::clone(&store)),
            web::Data::new(Arc::clone(&metrics)),
            web::Data::new(Arc::clone(&coalescer)),
        );
        let api_state = web::Data::new(crate::api::ApiState {
            sites: Arc::clone(&sites),
            store: Arc::clone(&store),
            live: Arc::new(Live::new(
                Arc::clone(&store),
                Arc::clone(&sweep_clock),
                crate::api::live::POLL_EVERY,
            )),
            clock: Arc::clone(&sweep_clock),
            summaries: Arc::default(),
            limiter: Arc::new(crate::api::limit::AuthLimiter::new(
                serve.auth_failures_per_minute,
            )),
            metrics: Arc::clone(&metrics),
            trust: serve.trust_proxy.clone(),
        });
        let demo_on = serve.demo;
        let body_timeout = web::Data::new(events::BodyTimeout(Duration::from_millis(
            serve.body_timeout_ms,
        )));
        let flusher_data = web::Data::new(Arc::clone(&flusher));
        let server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(log_request))
                .app_data(flusher_data.clone())
                .app_data(tracker.clone())
                .app_data(body_timeout.clone())
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    // A query string that does not parse (a bad number, bytes that are not
                    // UTF-8) gets the JSON error shape, like every other refusal.
                    let answer = error::json_error(
                        actix_web::http::StatusCode::BAD_REQUEST,
                        "bad_request",
                        &format!("the query string is invalid: {e}"),
                    );
                    actix_web::error::InternalError::from_response(e, answer).into()
                }))
                .app_data(api_state.clone())
                .configure(crate::api::configure)
                .app_data(shared.0.clone())
                .app_data(shared.1.clone())
                .app_data(shared.2.clone())
                .app_data(shared.3.clone())
                .route("/t.gif", web::get().to(pixel::pixel))
                .service(
                    web::resource("/e")
                        .route(web::get().to(events::get))
                        .route(web::post().to(events::post))
                        .route(web::method(actix_web::http::Method::OPTIONS).to(events::preflight)),
                )
                .service(
                    web::resource("/v")
                        .route(web::get().to(events::visit))
                        .route(web::post().to(events::visit)),
                )
                .service(
                    web::resource("/t.js")
                        .wrap(Compress::default())
                        .route(web::get().to(script::script)),
                )
                .route("/metrics", web::get().to(metrics_text))
                .route("/healthz", web::get().to(healthz))
                .route("/readyz", web::get().to(readyz))
                .configure(crate::dashboard::app::configure)
                .configure(|cfg| {
                    if demo_on {
                        demo::configure(cfg);
                    }
                })
                .default_service(web::to(error::not_found))
        })
        .listen(listener)
        .map_err(|source| StartupError::Listen {
            addr: serve.listen,
            source,
        })?
        // Slow-loris: a request head must arrive within the request timeout (else 408 and the
        // connection is closed); a client that does not read our answer is cut after 1 s.
        .client_request_timeout(Duration::from_millis(serve.request_timeout_ms))
        .client_disconnect_timeout(Duration::from_secs(1))
        .disable_signals()
        .shutdown_timeout(10)
        .run();

        let (stop_tasks, stop_rx) = watch::channel(false);
        let writers_task = tokio::spawn(Arc::clone(&writers).run(stop_rx.clone(), {
            let flusher = Arc::clone(&flusher);
            move |writer| {
                let flusher = Arc::clone(&flusher);
                tokio::spawn(async move { flusher.set_writer(writer).await });
            }
        }));
        let flusher_task = tokio::spawn(Arc::clone(&flusher).run(
            Duration::from_millis(serve.flush_interval_ms),
            stop_rx.clone(),
        ));
        let refresher_task = tokio::spawn(refresh_sites(
            Arc::clone(&store),
            Arc::clone(&sites),
            Duration::from_secs(serve.site_refresh_secs),
            stop_rx.clone(),
        ));
        // The first sweep waits a little: starting up is for serving, and a sweep is never urgent.
        let sweeper_task = tokio::spawn({
            let (store, sites, retention) =
                (Arc::clone(&store), Arc::clone(&sites), serve.retention());
            let every = Duration::from_secs(serve.sweep_interval_secs);
            let mut stop = stop_rx;
            async move {
                tokio::select! {
                    _ = tokio::time::sleep(FIRST_SWEEP_AFTER.min(every)) => {}
                    _ = stop.wait_for(|stop| *stop) => return,
                }
                retention::run(store, sites, retention, every, sweep_clock, stop).await
            }
        });
        tracing::info!(
            %addr,
            store = store.kind(),
            sites = sites.len(),
            flush_interval_ms = serve.flush_interval_ms,
            "tally is listening"
        );
        if serve.trust_proxy.is_default() && !addr.ip().is_loopback() {
            tracing::info!(
                trusted = %crate::track::client::PRIVATE_NETWORKS.join(", "),
                "listening beyond loopback: peers on these networks are trusted as proxies, and \
                 their X-Forwarded-For names the visitor (rate limits, countries); set \
                 --trust-proxy to your proxies' networks, or none if no proxy is in front"
            );
        }
        Ok(Application {
            port: addr.port(),
            handle: AppHandle {
                server: server.handle(),
                flusher,
                coalescer,
                sites,
                store,
                metrics,
                writers,
            },
            server,
            stop_tasks,
            flusher_task,
            refresher_task,
            sweeper_task,
            writers_task,
            shutdown_timeout: Duration::from_secs(serve.shutdown_timeout_secs),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn handle(&self) -> AppHandle {
        self.handle.clone()
    }

    /// Serves until stopped, then writes every accepted hit before returning.
    pub async fn run_until_stopped(self) -> Result<(), RunError> {
        let served = self.server.await;
        // No request is in flight any more; refuse anything that still slips through.
        self.handle.coalescer.close();
        let _ = self.stop_tasks.send(true);
        let _ = self.flusher_task.await;
        let _ = self.refresher_task.await;
        let _ = self.sweeper_task.await;
        let _ = self.writers_task.await;
        let pending = self.handle.coalescer.pending();
        tracing::info!(pending, "shutting down: writing pending increments");
        let drained = self.handle.flusher.drain(self.shutdown_timeout).await;
        if let Some(journal) = self.handle.coalescer.journal() {
            journal.close();
            if drained.is_err() {
                tracing::warn!("what could not be written stays in the durable log and is replayed at the next start");
            }
        }
        if drained.is_ok() {
            // Everything sent is known to be in the store: this writer's marks may go.
            if let Err(e) = self.handle.writers.end().await {
                tracing::warn!(error = %e, "writers registry: cannot record the clean stop");
            }
        }
        self.handle.writers.release();
        drained?;
        tracing::info!("shutdown complete: every accepted hit is in the store");
        served.map_err(RunError::from)
    }
}

/// Re-reads the sites every `every` so sites added by other processes start counting.
async fn refresh_sites(
    store: Arc<dyn Store>,
    sites: Arc<SiteRegistry>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        match store.sites().await {
            Ok(list) => sites.replace(list),
            Err(e) => {
                tracing::warn!(error = %e, "cannot refresh the site list; keeping the last one")
            }
        }
    }
}

async fn metrics_text(
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

/// One log event per request, in a span: method, path (never the query string, which carries
/// visitors' pages and referrers), status and latency. No address or User-Agent is logged.
///
/// The tracking endpoints (most of the traffic) and the probes (`/healthz`, `/readyz`,
/// `/metrics`, polled every few seconds by orchestrators and Prometheus) log at debug level and
/// open their span at debug level too, so at the default level they cost no formatting and no
/// span allocation; everything else logs at info. Server errors are warnings everywhere.
async fn log_request(
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

/// A flush running longer than this means the flusher is stuck.
const STUCK_FLUSH: Duration = Duration::from_secs(60);

/// `/readyz`: 200 when the store answers a ping within 2 s, no flush has been running for
/// over a minute and the pending bound is not reached; else 503 with the reason, as the JSON
/// error shape. Ready but with parked statements in the store: 200 with a JSON body,
/// `"status": "degraded"` and the reason.
async fn readyz(
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

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body("ok\n")
}
