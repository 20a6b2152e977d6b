//! Builds the application from typed settings, exactly as production runs it; tests bind port 0
//! and get the same thing.
//!
//! [`Application::build`] opens the store, loads the sites, binds the listener and starts the
//! flusher and the site refresher. [`Application::run_until_stopped`] serves until
//! [`AppHandle::stop`] (or a signal, wired by `cli`), then shuts down in order: stop accepting
//! connections, finish the requests in flight, refuse new hits, flush what is pending.
//!
//! Layout: `build` assembles the application and starts its tasks, `probes` answers
//! `/metrics`, `/healthz` and `/readyz`, `request_log` logs each request; this file holds the
//! running application and its shutdown.

mod build;
mod probes;
mod request_log;

use crate::aggregate::flusher::{FlushReport, Flusher, Unflushed};
use crate::aggregate::writers::Registry;
use crate::aggregate::Coalescer;
use crate::metrics::Metrics;
use crate::site::SiteRegistry;
use crate::store::{Store, StoreError};
use actix_web::dev::{Server, ServerHandle};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

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

    /// Writes everything pending now, the people sketches' raises included (which the flusher
    /// otherwise sends every `--people-flush-secs`).
    pub async fn flush(&self) -> FlushReport {
        self.flusher.flush_all().await
    }
}
impl Application {
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
