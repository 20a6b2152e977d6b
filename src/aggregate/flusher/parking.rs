//! The flusher's side of parked statements (see [`crate::aggregate::parked`]): writing an
//! entry for each statement a document refused for good, and reading the `parked` collection
//! back to learn which of this writer's documents may be written again and which sites are
//! over their bound.
//!
//! This module keeps the flusher's books of parked documents; what an entry holds, and the
//! census itself, belong to `aggregate::parked`. It must not decide what counts as refused
//! for good (that is [`super::send`]).

use super::send::group;
use super::{Flusher, State};
use crate::aggregate::parked;
use crate::reports::DocKey;
use crate::store::{Applied, DocUpdate};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

impl Flusher {
    /// Parks statements their documents refused for good: one entry each in the `parked`
    /// collection, written at once (what does not get there is owed like any statement). The
    /// documents get nothing newer until their entries are retried or dropped.
    pub(super) async fn park(
        &self,
        state: &mut State,
        refused: Vec<(DocKey, DocUpdate, String, Option<i64>)>,
    ) {
        let at = self.now_text();
        let (mut keys, mut docs) = (Vec::new(), Vec::new());
        for (key, update, error, code) in refused {
            let mark = update.mark.clone().unwrap_or_else(|| state.writer.next());
            if state.logged.insert(key.clone()) {
                tracing::error!(
                    collection = %key.collection(),
                    document = %key.id(),
                    code,
                    error = %error,
                    "a document refused its update for good: its increments are parked, and every other document goes on; repair the document, then run `tally parked retry` (or `tally parked drop`)"
                );
            }
            state.parked.insert(key.clone(), Instant::now());
            docs.push(parked::entry(&key, &update, &mark, &error, code, &at));
            keys.push(key);
        }
        self.metrics.statements_parked.inc_by(docs.len() as u64);
        state.census_at = None;
        let (batch, keys) = group(keys, docs);
        let limit = self.batch_timeout(&batch);
        let applied = match tokio::time::timeout(limit, self.store.apply(&batch)).await {
            Ok(applied) => applied,
            Err(_) => Applied {
                failed: batch.fail_all(&self.timed_out()),
                ..Applied::default()
            },
        };
        for f in applied.failed {
            tracing::warn!(error = %f.error, "flush: a parked statement could not be written yet; it is kept and sent again");
            let update = &batch.collections[f.collection].docs[f.doc];
            state
                .queue
                .push((keys[f.collection][f.doc].clone(), update.clone()));
        }
    }

    /// Reads the parked collection when due: at every flush while this writer has parked
    /// documents (so a retry lets their increments through at the next flush), else every
    /// [`parked::REFRESH`]. Updates the per-site bound the hit path checks, the
    /// metrics, and this writer's parked documents (a document whose entries were all retried or
    /// dropped, and that owes no entry, gets its new increments written again).
    pub(super) async fn read_parked(&self, state: &mut State) {
        if state.parked.is_empty()
            && state
                .census_at
                .is_some_and(|at| at.elapsed() < parked::REFRESH)
        {
            return;
        }
        // Not worth holding a flush for: what was read last stays in force meanwhile.
        let limit = self.store_timeout.min(Duration::from_secs(5));
        let read = tokio::time::timeout(limit, parked::census(&*self.store)).await;
        state.census_at = Some(Instant::now());
        let census = match read {
            Ok(Ok(census)) => census,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "cannot read the parked statements");
                return;
            }
            Err(_) => return,
        };
        let sites = self.coalescer.parked();
        sites.update(&census);
        self.metrics.parked.set(census.total as i64);
        self.metrics.sites_parked.set(sites.over().len() as i64);
        let own = census.by_writer.get(&state.writer.id);
        let owed: HashSet<&DocKey> = state
            .queue
            .iter()
            .filter(|(_, update)| parked::is_entry(&update.id))
            .map(|(key, _)| key)
            .collect();
        let kept: HashMap<DocKey, Instant> = state
            .parked
            .drain()
            .filter(|(key, _)| own.is_some_and(|own| own.contains(key)) || owed.contains(key))
            .collect();
        state.parked = kept;
        for key in own.into_iter().flatten() {
            // Found in the store (written before a restart): wait a while before parking more.
            state.parked.entry(key.clone()).or_insert_with(Instant::now);
        }
        let parked = &state.parked;
        state.logged.retain(|key| parked.contains_key(key));
    }
}
