//! Sending a batch: statements grouped by collection ([`group`]), the retired writers' marks
//! added to each ([`Flusher::prune_marks`]), one bounded store call, and what did not apply
//! sorted out: owed (sent again by the next flush, mark included), put back into the
//! coalescer (refused, known not applied), or parked (refused for good; see [`super::parking`]).
//!
//! This module decides where a failed statement goes; it must not drain the coalescer or
//! touch the durable checkpoint.

use super::{FlushReport, Flusher, State};
use crate::aggregate::admission::governing;
use crate::aggregate::parked::{self, PARKED};
use crate::aggregate::statement::restorable;
use crate::reports::DocKey;
use crate::store::{
    classify, Applied, Batch, CollectionBatch, DocUpdate, Fault, StoreError, DUPLICATE_KEY,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

impl Flusher {
    /// Adds the retired writers' marks to every marked statement's `$unset`.
    pub(super) fn prune_marks(&self, batch: &mut Batch) {
        let Some(registry) = &self.registry else {
            return;
        };
        let retired = registry.retired();
        if retired.is_empty() {
            return;
        }
        for update in batch.collections.iter_mut().flat_map(|c| c.docs.iter_mut()) {
            if let Some(mark) = &update.mark {
                update.unset = retired
                    .iter()
                    .filter(|w| **w != mark.writer)
                    .cloned()
                    .collect();
            }
        }
    }

    /// The bound on one batch: the store bounds each of its calls by the store timeout, so a
    /// flush of many commands may take longer than one timeout without anything being wrong
    /// (a whole flush timed out used to be sent again whole, forever). This backstop, one
    /// timeout per call plus one, only ends a store call that hangs outside its commands.
    pub(super) fn batch_timeout(&self, batch: &Batch) -> Duration {
        let calls = u32::try_from(self.store.calls(batch)).unwrap_or(u32::MAX);
        self.store_timeout.saturating_mul(calls.saturating_add(1))
    }

    /// Sends one batch; statements not known to be applied go to the queue (or back to the
    /// coalescer when the store said for sure it did not apply them). Returns how many did not
    /// apply.
    pub(super) async fn send(
        &self,
        state: &mut State,
        batch: &Batch,
        keys: &[Vec<DocKey>],
        report: &mut FlushReport,
    ) -> usize {
        let statements = batch.statements();
        let started = Instant::now();
        let limit = self.batch_timeout(batch);
        let applied = match tokio::time::timeout(limit, self.store.apply(batch)).await {
            Ok(applied) => applied,
            Err(_) => Applied {
                commands: 1,
                failed: batch.fail_all(&StoreError::TimedOut(limit).to_string()),
                ..Applied::default()
            },
        };
        let elapsed = started.elapsed();
        let failed = applied.failed.len();
        if let Some(first) = applied.failed.first() {
            tracing::warn!(
                failed,
                statements,
                error = %first.error,
                "flush: statements not applied; they are kept and sent again"
            );
            report
                .first_error
                .get_or_insert_with(|| first.error.clone());
        }
        let mut to_park = Vec::new();
        let mut transient = 0;
        for f in &applied.failed {
            let update = &batch.collections[f.collection].docs[f.doc];
            let key = &keys[f.collection][f.doc];
            let refused = classify(f.code) == Fault::Permanent && f.code != Some(DUPLICATE_KEY);
            if refused && !parked::is_entry(&update.id) {
                to_park.push((key.clone(), update.clone(), f.error.clone(), f.code));
            } else if f.code == Some(DUPLICATE_KEY) {
                // Refused, and known not applied: a full capped document, or another process
                // created the document first. Its increments go back to be decided again.
                if update.guard.is_some() {
                    if let Some(month) = governing(key) {
                        state.admission.forget(&month);
                    }
                }
                self.coalescer.restore(key.clone(), restorable(update));
            } else {
                transient += 1;
                state.queue.push((key.clone(), update.clone()));
            }
        }
        for e in &applied.write_concern_errors {
            tracing::warn!(error = %e, "flush: applied, but the write concern was not confirmed");
        }
        let m = &self.metrics;
        m.statements.inc_by(statements as u64);
        m.commands.inc_by(applied.commands as u64);
        m.statement_failures.inc_by(failed as u64);
        m.statement_duplicates
            .inc_by(applied.duplicates.len() as u64);
        m.write_concern_errors
            .inc_by(applied.write_concern_errors.len() as u64);
        m.flush_seconds.observe(elapsed.as_secs_f64());
        m.flush_statements.observe(statements as f64);
        tracing::debug!(
            statements,
            commands = applied.commands,
            failed,
            duplicates = applied.duplicates.len(),
            ms = elapsed.as_secs_f64() * 1e3,
            "flushed"
        );
        report.statements += statements;
        report.commands += applied.commands;
        report.failed += failed;
        report.duplicates += applied.duplicates.len();
        if !to_park.is_empty() {
            self.park(state, to_park).await;
        }
        transient
    }
}

/// The collection a statement goes to: its report's, or `parked` for a parked entry.
pub(super) fn collection_of(key: &DocKey, update: &DocUpdate) -> String {
    if parked::is_entry(&update.id) {
        PARKED.to_owned()
    } else {
        key.collection()
    }
}

/// Groups statements by collection (sorted), keeping each one's key so a failure can be kept
/// or put back.
pub(super) fn group(keys: Vec<DocKey>, docs: Vec<DocUpdate>) -> (Batch, Vec<Vec<DocKey>>) {
    let mut by_collection: BTreeMap<String, (Vec<DocUpdate>, Vec<DocKey>)> = BTreeMap::new();
    for (key, update) in keys.into_iter().zip(docs) {
        let (docs, keys) = by_collection
            .entry(collection_of(&key, &update))
            .or_default();
        docs.push(update);
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
