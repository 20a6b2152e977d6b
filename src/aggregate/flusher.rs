//! The flusher: drains the coalescer on size or age, whichever comes first, writes one batch,
//! and puts back whatever the store did not apply.
//!
//! One flush at a time (a lock), so a slow store delays the next flush instead of stacking
//! them. On shutdown [`Flusher::drain`] keeps flushing until nothing is pending or its deadline
//! passes, and says how much it could not write.

use super::{Coalescer, Drained};
use crate::metrics::{FlushOutcome, Metrics};
use crate::reports::DocKey;
use crate::store::{Batch, CollectionBatch, DocIncrement, Store};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Mutex};

pub struct Flusher {
    coalescer: Arc<Coalescer>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    one_at_a_time: Mutex<()>,
}

/// What one flush did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FlushReport {
    /// Documents written (one upsert statement each).
    pub statements: usize,
    /// Store commands sent.
    pub commands: usize,
    /// Statements that failed and were put back.
    pub failed: usize,
    /// The first failure's error, when there was one.
    pub first_error: Option<String>,
}

/// Shutdown could not write everything before its deadline.
#[derive(Debug, thiserror::Error)]
#[error("{entries} pending increments could not be written to the store before the shutdown deadline: {last_error}")]
pub struct Unflushed {
    pub entries: usize,
    pub last_error: String,
}

impl Flusher {
    pub fn new(coalescer: Arc<Coalescer>, store: Arc<dyn Store>, metrics: Arc<Metrics>) -> Flusher {
        Flusher {
            coalescer,
            store,
            metrics,
            one_at_a_time: Mutex::new(()),
        }
    }

    /// Writes everything pending now.
    pub async fn flush(&self) -> FlushReport {
        let _one = self.one_at_a_time.lock().await;
        let drained = self.coalescer.drain();
        if drained.is_empty() {
            return FlushReport::default();
        }
        let (batch, keys) = build_batch(drained);
        let started = Instant::now();
        let applied = self.store.apply(&batch).await;
        let elapsed = started.elapsed();

        let statements = batch.statements();
        let failed = applied.failed.len();
        if let Some(first) = applied.failed.first() {
            tracing::warn!(
                failed,
                statements,
                error = %first.error,
                "flush: statements not applied; their increments are kept for the next flush"
            );
        }
        for f in &applied.failed {
            let inc = batch.collections[f.collection].docs[f.doc].inc.clone();
            self.coalescer
                .restore(keys[f.collection][f.doc].clone(), inc);
        }
        for e in &applied.write_concern_errors {
            tracing::warn!(error = %e, "flush: applied, but the write concern was not confirmed");
        }

        let m = &self.metrics;
        m.statements.inc_by(statements as u64);
        m.commands.inc_by(applied.commands as u64);
        m.statement_failures.inc_by(failed as u64);
        m.write_concern_errors
            .inc_by(applied.write_concern_errors.len() as u64);
        m.flush_seconds.observe(elapsed.as_secs_f64());
        m.flushed(match failed {
            0 => FlushOutcome::Ok,
            n if n == statements => FlushOutcome::Failed,
            _ => FlushOutcome::Partial,
        });
        tracing::debug!(
            statements,
            commands = applied.commands,
            failed,
            ms = elapsed.as_secs_f64() * 1e3,
            "flushed"
        );
        FlushReport {
            statements,
            commands: applied.commands,
            failed,
            first_error: applied.failed.first().map(|f| f.error.clone()),
        }
    }

    /// Flushes every `interval`, or as soon as the coalescer asks, until `stop` turns true.
    pub async fn run(self: Arc<Self>, interval: Duration, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.coalescer.wake.notified() => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            self.flush().await;
        }
    }

    /// Flushes until nothing is pending, retrying failures, for at most `deadline`.
    pub async fn drain(&self, deadline: Duration) -> Result<(), Unflushed> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            let report = self.flush().await;
            let left = self.coalescer.pending();
            if left == 0 {
                return Ok(());
            }
            if started.elapsed() + pause > deadline {
                return Err(Unflushed {
                    entries: left,
                    last_error: report
                        .first_error
                        .unwrap_or_else(|| "the store did not answer in time".to_owned()),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }
}

/// Groups drained documents by collection (sorted), keeping each statement's key so a failure
/// can be put back.
pub fn build_batch(drained: Drained) -> (Batch, Vec<Vec<DocKey>>) {
    let mut by_collection: BTreeMap<String, (Vec<DocIncrement>, Vec<DocKey>)> = BTreeMap::new();
    for (key, inc) in drained {
        let (docs, keys) = by_collection.entry(key.collection()).or_default();
        docs.push(DocIncrement { id: key.id(), inc });
        keys.push(key);
    }
    let mut batch = Batch::default();
    let mut keys = Vec::with_capacity(by_collection.len());
    for (collection, (docs, k)) in by_collection {
        batch.collections.push(CollectionBatch { collection, docs });
        keys.push(k);
    }
    (batch, keys)
}
