//! Assembling the application from [`ServeSettings`] on an open store: the durable log and its
//! replay, the writer's identity, the flusher, the tracker, the read side, the HTTP server and
//! its routes, and the background tasks (flusher, writers' heartbeat, site refresher, retention
//! sweeper).
//!
//! This module wires parts together; it must not hold their logic.

use super::probes::{healthz, metrics_text, readyz};
use super::request_log::log_request;
use super::{AppHandle, Application, StartupError};
use crate::aggregate::checkpoint::Checkpoint;
use crate::aggregate::close::Closer;
use crate::aggregate::flusher::{Flusher, Writer};
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
use crate::store::Store;
use crate::track::budget::KeyBudget;
use crate::track::limit::IngestLimits;
use crate::track::people::{self, PeopleKeys};
use crate::track::{events, pixel, script, Tracker};
use actix_web::middleware::Compress;
use actix_web::{web, App, HttpServer};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long after start-up the first retention sweep runs.
const FIRST_SWEEP_AFTER: Duration = Duration::from_secs(30);

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
        let people = Arc::new(PeopleKeys::default());
        if serve.people_sketches {
            people::refresh(store.as_ref(), &people, &sites.all(), clock()).await?;
        }

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
        .with_sketch_every(Duration::from_secs(serve.people_flush_secs))
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
        let geo = serve.geoip_db.open()?;
        match &geo {
            Some(db) => {
                tracing::info!(source = %serve.geoip_db, database = %db.describe(), "country database loaded")
            }
            None => tracing::info!("no country database (--geoip-db none): no locations report"),
        }
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
            people: Arc::clone(&people),
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
            (
                Arc::clone(&sites),
                serve
                    .people_sketches
                    .then(|| (people, Arc::new(Closer::default()))),
                Arc::clone(&sweep_clock),
            ),
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
}

/// With the people sketches on (`--people-sketches`, the default): the keys of the visitor
/// hashes, and the closer of periods.
type PeopleTasks = Option<(Arc<PeopleKeys>, Arc<Closer>)>;

/// Re-reads the sites every `every` so sites added by other processes start counting and, with
/// the people sketches on, makes sure each has its people key for the year (`track::people`) and
/// writes the people numbers of the days, months and years that have closed
/// (`aggregate::close`).
async fn refresh_sites(
    store: Arc<dyn Store>,
    (sites, people, clock): (Arc<SiteRegistry>, PeopleTasks, Clock),
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
        let Some((people, closer)) = &people else {
            continue;
        };
        if let Err(e) = people::refresh(store.as_ref(), people, &sites.all(), clock()).await {
            tracing::warn!(error = %e, "cannot refresh the people keys; keeping the last ones");
        }
        if let Err(e) = closer.run_once(store.as_ref(), &sites.all(), clock()).await {
            tracing::warn!(error = %e, "cannot write the people of closed periods; trying again");
        }
    }
}
