//! `--durable`: the flusher's use of the disk while the store is away. A flush that finds the
//! store away spills what it drains to a spill file the checkpoint lists, pings the store in
//! the background before it tries again, and once the store answers loads the spill files
//! back a few at a time ([`LOAD_PER_FLUSH`]); every flush records its state in the checkpoint
//! before it sends.
//!
//! The files and the checkpoint's format belong to `aggregate::spill` and
//! `aggregate::checkpoint`; this module decides when they are written and read. Its only
//! store call is the ping.

use super::{Flusher, State, LOAD_PER_FLUSH};
use crate::aggregate::checkpoint::Checkpoint;
use crate::aggregate::spill;
use crate::aggregate::Drained;
use crate::reports::DocKey;
use crate::store::{Batch, DocUpdate};
use std::sync::Arc;
use tokio::sync::oneshot;

impl Flusher {
    /// `--durable`: the store is away; the next flushes spill before they try it.
    pub(super) fn spill_when_away(&self, state: &mut State) {
        if state.checkpoint.is_some() {
            state.store_away = true;
            self.spill(state);
        }
    }

    /// `--durable`, the store away: what the coalescer holds goes to a spill file (synced), the
    /// checkpoint lists it and consumes the log segments the drain covered, and memory is
    /// freed. Owed statements stay owed. If the file cannot be written, the increments go back
    /// to the coalescer (their segments are not consumed) and the memory bound applies.
    pub(super) fn spill(&self, state: &mut State) {
        let Some(checkpoint) = &mut state.checkpoint else {
            return;
        };
        let (drained, cut) = self.coalescer.drain_cut();
        if drained.is_empty() {
            // Nothing was logged since the last cut either (a hit is logged and merged under
            // the cut's lock): the checkpoint has nothing new to say.
            return;
        }
        if let Err(e) = checkpoint.spill(&drained) {
            tracing::error!(error = %e, "durable log: cannot write a spill file; the increments stay in memory");
            for (key, fields) in drained {
                self.coalescer.restore(key, fields);
            }
            return;
        }
        self.metrics.durable_spills.inc();
        // What a flush loads back at most: a merged file is loaded whole.
        let merge_up_to = (self.coalescer.max_entries() / 4) as u64;
        if let Err(e) = checkpoint.compact(merge_up_to) {
            tracing::warn!(error = %e, "durable log: cannot merge spill files; they stay as they are");
        }
        self.save(checkpoint, cut, &state.queue, &[], &Vec::new());
    }

    /// `--durable`: whether the last ping in the background found the store answering within
    /// the store timeout. Never waits: without an answer yet, `false`; with a `false` answer (or
    /// none running), another ping starts.
    pub(super) fn store_back(&self, state: &mut State) -> bool {
        if let Some(probe) = &mut state.probe {
            match probe.try_recv() {
                Ok(true) => {
                    state.probe = None;
                    return true;
                }
                Err(oneshot::error::TryRecvError::Empty) => return false,
                Ok(false) | Err(oneshot::error::TryRecvError::Closed) => state.probe = None,
            }
        }
        let (answer, probe) = oneshot::channel();
        let store = Arc::clone(&self.store);
        let limit = self.store_timeout;
        tokio::spawn(async move {
            let ping = tokio::time::timeout(limit, store.ping()).await;
            if matches!(ping, Ok(Ok(()))) {
                tracing::info!("flush: the store answers again; the spill files are written back");
            }
            let _ = answer.send(matches!(ping, Ok(Ok(()))));
        });
        state.probe = Some(probe);
        false
    }

    /// `--durable`, the store answering and nothing owed: the oldest spill files go back into
    /// the coalescer, older than anything pending, for this flush to send: at least one, and
    /// more while they hold fewer than a quarter of `--max-pending` entries with what is pending
    /// (and [`LOAD_PER_FLUSH`] bytes), so new hits keep room. The checkpoint this flush saves
    /// no longer lists them (their increments are then its statements, or carried), and that
    /// save deletes them. While files remain, the next flush is asked for at once.
    pub(super) fn load_spilled(&self, state: &mut State) {
        if !state.queue.is_empty() {
            return;
        }
        let Some(checkpoint) = &mut state.checkpoint else {
            return;
        };
        let room = (self.coalescer.max_entries() / 4).saturating_sub(self.coalescer.pending());
        let (mut loaded, mut entries, mut bytes) = (Vec::new(), 0, 0);
        for file in checkpoint.spill_files() {
            let too_much =
                entries + file.entries > room as u64 || bytes + file.bytes > LOAD_PER_FLUSH;
            if !loaded.is_empty() && too_much {
                break;
            }
            match spill::read(checkpoint.dir(), file.n) {
                Ok((records, torn)) => {
                    if torn > 0 {
                        tracing::error!(file = file.n, bytes = torn, "durable log: the end of a spill file is unreadable (a disk error); those increments are lost");
                    }
                    entries += file.entries;
                    bytes += file.bytes;
                    loaded.push(records);
                }
                Err(e) => {
                    tracing::error!(error = %e, "durable log: cannot read a spill file; it stays listed, and the next flush tries again");
                    break;
                }
            }
        }
        checkpoint.forget_spills(loaded.len());
        // Newest first: a restored text never replaces a pending one, so the newest text of
        // the files wins.
        for records in loaded.into_iter().rev() {
            for (site, incs) in records {
                self.coalescer.restore_spilled(&site, incs);
            }
        }
        if !checkpoint.spill_files().is_empty() {
            self.coalescer.wake.notify_one();
        }
    }

    /// Records the flusher's state in the durable checkpoint; a checkpoint that cannot be
    /// written stops nothing but is logged (the log segments it would have retired stay, so a
    /// replay after a crash may then count their increments again; see docs/reliability.md).
    pub(super) fn save(
        &self,
        checkpoint: &mut Checkpoint,
        cut: Option<u64>,
        queue: &[(DocKey, DocUpdate)],
        batches: &[(&Batch, &Vec<Vec<DocKey>>)],
        carried: &Drained,
    ) {
        if let Err(e) = checkpoint.save(cut, queue, batches, carried) {
            tracing::error!(error = %e, "durable log: cannot write the checkpoint");
            self.metrics.checkpoint_failures.inc();
        }
    }
}
