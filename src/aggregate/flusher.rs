//! The flusher: drains the coalescer on size or age, whichever comes first, writes one batch,
//! and puts back whatever the store did not apply.
//!
//! One flush at a time (a lock), so a slow store delays the next flush instead of stacking
//! them. Before writing, capped documents are resolved by [`Admission`] (reading a month
//! document's keys from the store the first time it is written). On shutdown
//! [`Flusher::drain`] keeps flushing until nothing is pending or its deadline passes, and says
//! how much it could not write.
//!
//! With `--durable`, a flush that finds the store away does not keep what it drains in memory:
//! `Flusher::spill` writes it to a spill file and the checkpoint lists it; once the store
//! answers again, `Flusher::load_spilled` brings the files back a few at a time, so an outage
//! is absorbed by the disk, up to `--durable-max-bytes`, not by the memory bound.

use super::admission::{governing, Admission};
use super::checkpoint::{Checkpoint, Recovered};
pub use super::identity::Writer;
use super::parked::{self, PARKED};
use super::spill;
use super::statement::{restorable, update_of};
use super::writers::Registry;
use super::{Coalescer, Drained};
use crate::metrics::{FlushOutcome, Metrics};
use crate::period::Clock;
use crate::reports::DocKey;
use crate::store::{
    classify, Applied, Batch, CollectionBatch, DocUpdate, Fault, Store, StoreError, DUPLICATE_KEY,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch, Mutex};

pub struct Flusher {
    coalescer: Arc<Coalescer>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    clock: Clock,
    /// How long one store call may take before its statements are treated as not known to
    /// be applied (and sent again, marked, by the next flush).
    store_timeout: Duration,
    /// When the flush now running started (for `/readyz`: a flush that never ends is stuck).
    running_since: std::sync::Mutex<Option<Instant>>,
    /// Statements waiting to be sent again (for `/metrics` and `/readyz`; the truth is in
    /// [`State::queue`]).
    queued: AtomicUsize,
    /// `--durable`: spill files listed by the checkpoint (for `/metrics` and shutdown).
    spilled: AtomicUsize,
    /// Held for the whole of a flush: one at a time, and the books with it.
    one_at_a_time: Mutex<State>,
    /// Shutdown: the increments of documents with parked statements are parked at once rather
    /// than kept for [`parked::PARK_EVERY`].
    closing: AtomicBool,
    /// The writers registry: whose marks each statement removes (see [`super::writers`]).
    registry: Option<Arc<Registry>>,
}

/// What the flusher keeps between flushes.
struct State {
    admission: Admission,
    /// Statements sent whose outcome is unknown (the store did not answer, timed out, or failed
    /// them for a reason that may pass): sent again exactly as they were, mark included, before
    /// anything newer touches their documents. Their mark makes that safe: a statement that did
    /// apply is recognised and skipped.
    queue: Vec<(DocKey, DocUpdate)>,
    writer: Writer,
    /// `--durable`: the checkpoint of what is not yet known to be in the store.
    checkpoint: Option<Checkpoint>,
    /// The documents this writer has parked statements for, and when it last parked one: they
    /// get nothing newer until the entries are retried or dropped (see [`parked`]).
    parked: HashMap<DocKey, Instant>,
    /// Documents whose refusal was logged (once per process, until they are writable again).
    logged: HashSet<DocKey>,
    /// When the parked collection was last read; `None`: read it at the next flush.
    census_at: Option<Instant>,
    /// `--durable`: the last flush found the store away (nothing applied, an error), so the
    /// next one spills what it drains before it asks the store anything.
    store_away: bool,
    /// `--durable`, the store away: the answer of a ping running in the background.
    probe: Option<oneshot::Receiver<bool>>,
}

/// What one flush did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FlushReport {
    /// Documents written (one upsert statement each).
    pub statements: usize,
    /// Store commands sent.
    pub commands: usize,
    /// Statements that failed and were put back or queued.
    pub failed: usize,
    /// Statements found already applied by an earlier send.
    pub duplicates: usize,
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

/// The default for [`Flusher::with_store_timeout`].
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(60);

/// `--durable`: bytes of spill files one flush loads back (at least one file): what memory
/// holds beyond the pending hits while an outage's backlog is written.
pub const LOAD_PER_FLUSH: u64 = 8 << 20;

impl Flusher {
    /// `max_keys`: the cap on keys named by one capped document (see [`Admission`]).
    pub fn new(
        coalescer: Arc<Coalescer>,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        max_keys: usize,
        clock: Clock,
    ) -> Flusher {
        let admission = Admission::new(max_keys, Arc::clone(coalescer.named()));
        Flusher {
            coalescer,
            store,
            metrics,
            clock,
            store_timeout: DEFAULT_STORE_TIMEOUT,
            running_since: std::sync::Mutex::new(None),
            queued: AtomicUsize::new(0),
            spilled: AtomicUsize::new(0),
            one_at_a_time: Mutex::new(State {
                admission,
                queue: Vec::new(),
                writer: Writer::random(),
                checkpoint: None,
                parked: HashMap::new(),
                logged: HashSet::new(),
                census_at: None,
                store_away: false,
                probe: None,
            }),
            closing: AtomicBool::new(false),
            registry: None,
        }
    }

    /// Flushes as `writer` (a data directory's stable identity, see [`super::identity`]), and
    /// removes the marks of the writers `registry` says are retired.
    pub fn with_writer(self, writer: Writer, registry: Arc<Registry>) -> Flusher {
        self.one_at_a_time
            .try_lock()
            .expect("a new flusher is not locked")
            .writer = writer;
        Flusher {
            registry: Some(registry),
            ..self
        }
    }

    /// From the next flush on, flushes as `writer` (the registry renewed this process's id).
    /// Owed statements keep the marks they were sent with.
    pub async fn set_writer(&self, writer: Writer) {
        self.one_at_a_time.lock().await.writer = writer;
    }

    /// Adds the retired writers' marks to every marked statement's `$unset`.
    fn prune_marks(&self, batch: &mut Batch) {
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

    /// Store calls taking longer than `timeout` are abandoned; their statements are sent again.
    pub fn with_store_timeout(mut self, timeout: Duration) -> Flusher {
        self.store_timeout = timeout;
        self.store.limit_calls(timeout);
        self
    }

    /// The bound on one batch: the store bounds each of its calls by the store timeout, so a
    /// flush of many commands may take longer than one timeout without anything being wrong
    /// (a whole flush timed out used to be sent again whole, forever). This backstop, one
    /// timeout per call plus one, only ends a store call that hangs outside its commands.
    fn batch_timeout(&self, batch: &Batch) -> Duration {
        let calls = u32::try_from(self.store.calls(batch)).unwrap_or(u32::MAX);
        self.store_timeout.saturating_mul(calls.saturating_add(1))
    }

    /// `--durable`: what [`Checkpoint::open`] recovered becomes this flusher's state (its
    /// writer, the statements to send again, the increments to count again), and every flush
    /// records its batch in the checkpoint before sending it.
    pub fn with_checkpoint(self, checkpoint: Checkpoint, recovered: Recovered) -> Flusher {
        {
            let mut state = self
                .one_at_a_time
                .try_lock()
                .expect("a new flusher is not locked");
            state.writer = recovered.writer;
            state.queue = recovered.statements;
            self.spilled
                .store(checkpoint.spill_files().len(), Ordering::Relaxed);
            state.checkpoint = Some(checkpoint);
            self.queued.store(state.queue.len(), Ordering::Relaxed);
        }
        for (key, fields) in recovered.carried {
            self.coalescer.restore(key, fields);
        }
        self
    }

    /// The owed statements not yet applied, and how many were: their documents' marks are read
    /// first (one `find` per collection), so a statement whose reply was lost is recognised
    /// without being sent again. (On FerretDB, sending it again would stop its command at the
    /// duplicate.) Only this writer writes its marks, one flush at a time, so what is read
    /// stays true until the send. When the marks cannot be read, every statement is sent.
    async fn unapplied(&self, queued: Vec<(DocKey, DocUpdate)>) -> Owed {
        let mut by_collection: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (key, update) in &queued {
            if update.mark.is_some() {
                by_collection
                    .entry(collection_of(key, update))
                    .or_default()
                    .push(update.id.clone());
            }
        }
        let mut marks: HashMap<(String, String), mongodb::bson::Document> = HashMap::new();
        for (collection, ids) in by_collection {
            let read = self
                .store
                .get_many_fields(&collection, &ids, &[crate::store::MARKS]);
            let docs = match tokio::time::timeout(self.store_timeout, read).await {
                Ok(Ok(docs)) => docs,
                _ => return Err(queued),
            };
            for doc in docs {
                if let Ok(id) = doc.get_str("_id") {
                    marks.insert((collection.clone(), id.to_owned()), doc.clone());
                }
            }
        }
        let before = queued.len();
        let left: Vec<(DocKey, DocUpdate)> = queued
            .into_iter()
            .filter(|(key, update)| {
                let stored = marks.get(&(collection_of(key, update), update.id.clone()));
                !matches!((&update.mark, stored), (Some(mark), Some(doc)) if mark.applied_in(doc))
            })
            .collect();
        let applied = before - left.len();
        Ok((left, applied))
    }

    /// Statements waiting to be sent again.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// `--durable`: spill files waiting to be loaded back and written.
    pub fn spilled(&self) -> usize {
        self.spilled.load(Ordering::Relaxed)
    }

    /// Reads the books of the month documents `drained` needs, one `find` per collection.
    /// Returns the documents whose books could not be read, and the error.
    async fn load_books(
        &self,
        admission: &mut Admission,
        drained: &Drained,
    ) -> (BTreeSet<DocKey>, Option<String>) {
        let mut by_collection: BTreeMap<String, Vec<DocKey>> = BTreeMap::new();
        for key in admission.missing(drained) {
            by_collection.entry(key.collection()).or_default().push(key);
        }
        let (mut unread, mut error) = (BTreeSet::new(), None);
        for (collection, keys) in by_collection {
            let ids: Vec<String> = keys.iter().map(DocKey::id).collect();
            let read =
                tokio::time::timeout(self.store_timeout, self.store.get_many(&collection, &ids))
                    .await;
            match read {
                Ok(Ok(docs)) => {
                    for key in keys {
                        let id = key.id();
                        let doc = docs.iter().find(|d| d.get_str("_id").ok() == Some(&id));
                        admission.load(key, doc);
                    }
                }
                Ok(Err(e)) => {
                    unread.extend(keys);
                    error.get_or_insert(e.to_string());
                }
                Err(_) => {
                    unread.extend(keys);
                    error.get_or_insert(self.timed_out());
                }
            }
        }
        (unread, error)
    }

    fn timed_out(&self) -> String {
        format!(
            "the store did not answer within {} s",
            self.store_timeout.as_secs_f64()
        )
    }

    /// How long the flush now running has been running, if one is.
    pub fn running_for(&self) -> Option<Duration> {
        self.running_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|t| t.elapsed())
    }

    /// Writes everything pending now.
    pub async fn flush(&self) -> FlushReport {
        let mut state = self.one_at_a_time.lock().await;
        *self.running_since.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        let report = self.flush_locked(&mut state).await;
        self.queued.store(state.queue.len(), Ordering::Relaxed);
        if let Some(checkpoint) = &state.checkpoint {
            self.spilled
                .store(checkpoint.spill_files().len(), Ordering::Relaxed);
        }
        *self.running_since.lock().unwrap_or_else(|e| e.into_inner()) = None;
        report
    }

    async fn flush_locked(&self, state: &mut State) -> FlushReport {
        let mut report = FlushReport::default();
        // `--durable`, the store away: to disk first, without waiting for the store; once a
        // ping in the background says it is back, this flush goes on as usual.
        if state.store_away {
            self.spill(state);
            if !self.store_back(state) {
                self.metrics.flushed(FlushOutcome::Failed);
                report.first_error = Some("the store does not answer a ping yet".to_owned());
                return report;
            }
            state.store_away = false;
        }
        // First what is owed: statements sent before whose outcome is not known.
        if !state.queue.is_empty() {
            let queued = std::mem::take(&mut state.queue);
            let queued = match self.unapplied(queued).await {
                Ok((queued, applied)) => {
                    report.duplicates += applied;
                    self.metrics.statement_duplicates.inc_by(applied as u64);
                    queued
                }
                Err(queued) => queued,
            };
            let total = queued.len();
            let (keys, docs): (Vec<DocKey>, Vec<DocUpdate>) = queued.into_iter().unzip();
            let (batch, keys) = group(keys, docs);
            let left = if total == 0 {
                0
            } else {
                self.send(state, &batch, &keys, &mut report).await
            };
            if total > 0 && left == total {
                // The store is still away: leave the new increments where they are (with
                // `--durable`, on disk).
                self.spill_when_away(state);
                self.metrics.flushed(FlushOutcome::Failed);
                return report;
            }
        }
        self.load_spilled(state);

        // The store answers (or nothing was owed): what is parked may have changed.
        self.read_parked(state).await;
        let (mut drained, cut) = self.coalescer.drain_cut();
        if drained.is_empty() && state.queue.is_empty() {
            if let Some(checkpoint) = &mut state.checkpoint {
                self.save(checkpoint, cut, &[], &[], &Vec::new());
            }
            return report;
        }
        // A document with a statement still owed gets nothing newer until that one is known.
        let owed: HashSet<(String, String)> = state
            .queue
            .iter()
            .map(|(key, update)| (key.collection(), update.id.clone()))
            .collect();
        let mut carried: Drained = Vec::new();
        if !owed.is_empty() {
            let (wait, go): (Drained, Drained) = drained
                .into_iter()
                .partition(|(key, _)| owed.contains(&(key.collection(), key.id())));
            carried.extend(wait);
            drained = go;
        }
        // Documents with parked statements: their increments wait, then are parked too.
        if !state.parked.is_empty() {
            let closing = self.closing.load(Ordering::Relaxed);
            let (wait, go): (Drained, Drained) = drained.into_iter().partition(|(key, _)| {
                state
                    .parked
                    .get(key)
                    .is_some_and(|last| !closing && last.elapsed() < parked::PARK_EVERY)
            });
            carried.extend(wait);
            drained = go;
        }
        state.admission.evict_idle();
        let (unread, load_error) = self.load_books(&mut state.admission, &drained).await;
        // Capped documents whose keys could not be read wait for the next flush, untouched.
        if !unread.is_empty() {
            let (wait, go): (Drained, Drained) = drained
                .into_iter()
                .partition(|(key, _)| governing(key).is_some_and(|g| unread.contains(&g)));
            carried.extend(wait);
            drained = go;
        }
        if let Some(e) = &load_error {
            tracing::warn!(deferred = carried.len(), error = %e, "flush: could not read capped documents; their increments are kept for the next flush");
            report.first_error.get_or_insert_with(|| e.clone());
        }
        let guards = state.admission.resolve(&mut drained);
        let mark = state.writer.next();
        let at = self.now_text();
        let (keys, docs): (Vec<DocKey>, Vec<DocUpdate>) = drained
            .into_iter()
            .zip(guards)
            .map(|((key, fields), guard)| {
                let update = DocUpdate {
                    guard,
                    mark: Some(mark.clone()),
                    ..update_of(&key, fields)
                };
                match state.parked.get_mut(&key) {
                    Some(last) => {
                        *last = Instant::now();
                        let waiting = "waiting behind the parked statements of its document";
                        let entry = parked::entry(&key, &update, &mark, waiting, None, &at);
                        (key, entry)
                    }
                    None => (key, update),
                }
            })
            .unzip();
        let (mut batch, keys) = group(keys, docs);
        self.prune_marks(&mut batch);
        if let Some(checkpoint) = &mut state.checkpoint {
            self.save(checkpoint, cut, &state.queue, &[(&batch, &keys)], &carried);
        }
        report.failed += carried.len();
        for (key, fields) in carried {
            self.coalescer.restore(key, fields);
        }
        let statements = batch.statements();
        let owed = if statements > 0 {
            self.send(state, &batch, &keys, &mut report).await
        } else {
            0
        };
        let m = &self.metrics;
        m.flushed(match report.failed {
            0 => FlushOutcome::Ok,
            n if n >= report.statements => FlushOutcome::Failed,
            _ => FlushOutcome::Partial,
        });
        if state.checkpoint.is_some() {
            // Every statement owed (none applied, none refused for good): the store is away.
            state.store_away = statements > 0 && owed == statements;
        }
        report
    }

    /// `--durable`: the store is away; the next flushes spill before they try it.
    fn spill_when_away(&self, state: &mut State) {
        if state.checkpoint.is_some() {
            state.store_away = true;
            self.spill(state);
        }
    }

    /// `--durable`, the store away: what the coalescer holds goes to a spill file (synced), the
    /// checkpoint lists it and consumes the log segments the drain covered, and memory is
    /// freed. Owed statements stay owed. If the file cannot be written, the increments go back
    /// to the coalescer (their segments are not consumed) and the memory bound applies.
    fn spill(&self, state: &mut State) {
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
    fn store_back(&self, state: &mut State) -> bool {
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
    fn load_spilled(&self, state: &mut State) {
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
    fn save(
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

    /// Sends one batch; statements not known to be applied go to the queue (or back to the
    /// coalescer when the store said for sure it did not apply them). Returns how many did not
    /// apply.
    async fn send(
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

    /// Parks statements their documents refused for good: one entry each in the `parked`
    /// collection, written at once (what does not get there is owed like any statement). The
    /// documents get nothing newer until their entries are retried or dropped.
    async fn park(
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
    async fn read_parked(&self, state: &mut State) {
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

    /// Now, for the parked entries' `at`.
    fn now_text(&self) -> String {
        (self.clock)().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
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

    /// Flushes until nothing is pending or owed, retrying failures, for at most `deadline`.
    pub async fn drain(&self, deadline: Duration) -> Result<(), Unflushed> {
        self.closing.store(true, Ordering::Relaxed);
        let started = Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            let report = self.flush().await;
            let left = self.coalescer.pending() + self.queued() + self.spilled();
            if left == 0 {
                // A last, empty flush records in the checkpoint that nothing is owed.
                self.flush().await;
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
            if report.first_error.is_none() {
                // Progress (spill files are being written back): the next flush at once.
                continue;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }
}

/// What [`Flusher::unapplied`] found: the statements still to send and how many were already
/// applied, or (the marks unreadable) every statement.
type Owed = Result<(Vec<(DocKey, DocUpdate)>, usize), Vec<(DocKey, DocUpdate)>>;

/// The collection a statement goes to: its report's, or `parked` for a parked entry.
fn collection_of(key: &DocKey, update: &DocUpdate) -> String {
    if parked::is_entry(&update.id) {
        PARKED.to_owned()
    } else {
        key.collection()
    }
}

/// Groups statements by collection (sorted), keeping each one's key so a failure can be kept
/// or put back.
fn group(keys: Vec<DocKey>, docs: Vec<DocUpdate>) -> (Batch, Vec<Vec<DocKey>>) {
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
