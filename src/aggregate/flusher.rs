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

use super::admission::{governing, Admission, ADMITTED};
use super::checkpoint::{Checkpoint, Recovered};
use super::spill;
use super::{Coalescer, Drained, Value};
use crate::api::live::{Live, Written};
use crate::metrics::{FlushOutcome, Metrics};
use crate::period::{Clock, Period};
use crate::reports::DocKey;
use crate::reports::ReportKind;
use crate::site::SiteId;
use crate::store::{Applied, Batch, CollectionBatch, DocUpdate, Guard, Mark, Store, DUPLICATE_KEY};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch, Mutex};

pub struct Flusher {
    coalescer: Arc<Coalescer>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    /// Told what each flush wrote.
    live: Arc<Live>,
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
    /// `--durable`: the last flush found the store away (nothing applied, an error), so the
    /// next one spills what it drains before it asks the store anything.
    store_away: bool,
    /// `--durable`, the store away: the answer of a ping running in the background.
    probe: Option<oneshot::Receiver<bool>>,
}

/// Which flushes a document has seen: the writer's identity and its next flush number.
#[derive(Debug, Clone)]
pub struct Writer {
    /// 12 lowercase hex digits.
    pub id: String,
    /// Flush numbers are `epoch << 32 | n`: a durable writer's epoch grows at every start, so
    /// its numbers never go back; a writer without a log is new at every start (epoch 0).
    pub epoch: u32,
    n: u32,
}

impl Writer {
    pub fn new(id: String, epoch: u32) -> Writer {
        Writer { id, epoch, n: 0 }
    }

    /// A writer with a random identity, for a process without a durable log.
    pub fn random() -> Writer {
        let mut bytes = [0u8; 6];
        // A constant identity would only weaken retries across restarts; never fail for it.
        let _ = getrandom::fill(&mut bytes);
        Writer::new(hex::encode(bytes), 0)
    }

    /// The mark of the next flush.
    fn next(&mut self) -> Mark {
        self.n += 1;
        Mark {
            writer: self.id.clone(),
            seq: (i64::from(self.epoch) << 32) | i64::from(self.n),
        }
    }
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

/// `--durable`: how long a ping may take before the store is taken to be away (the ping before
/// each flush, and the one in the background that tells when it is back).
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

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
        live: Arc<Live>,
        clock: Clock,
    ) -> Flusher {
        let admission = Admission::new(max_keys, Arc::clone(coalescer.named()));
        Flusher {
            coalescer,
            store,
            metrics,
            live,
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
                store_away: false,
                probe: None,
            }),
        }
    }

    /// Store calls taking longer than `timeout` are abandoned; their statements are sent again.
    pub fn with_store_timeout(mut self, timeout: Duration) -> Flusher {
        self.store_timeout = timeout;
        self
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
        // `--durable`: a store that does not answer a short ping has gone away since the last
        // flush; spill rather than wait for it (each of a batch's commands would wait).
        if state.checkpoint.is_some() && !state.store_away && !self.answers().await {
            tracing::warn!("flush: the store does not answer; what is pending goes to the durable log's spill files until it does");
            state.store_away = true;
        }
        // `--durable`, the store away: to disk first, without waiting for the store; once a
        // ping in the background says it is back, this flush goes on as usual.
        if state.store_away {
            self.spill(state);
            if !self.store_back(state) {
                self.metrics.flushed(FlushOutcome::Failed);
                report.first_error = Some(format!(
                    "the store does not answer a ping within {} ms",
                    PROBE_TIMEOUT.as_millis()
                ));
                return report;
            }
            state.store_away = false;
        }
        // First what is owed: statements sent before whose outcome is not known.
        if !state.queue.is_empty() {
            let queued = std::mem::take(&mut state.queue);
            let total = queued.len();
            let (keys, docs): (Vec<DocKey>, Vec<DocUpdate>) = queued.into_iter().unzip();
            let (batch, keys) = group(keys, docs);
            let left = self.send(state, &batch, &keys, &mut report).await;
            if left == total {
                // The store is still away: leave the new increments where they are (with
                // `--durable`, on disk).
                self.spill_when_away(state);
                self.metrics.flushed(FlushOutcome::Failed);
                return report;
            }
        }
        self.load_spilled(state);

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
        let (batch, keys) = build_batch(drained, guards, &mark);
        if let Some(checkpoint) = &mut state.checkpoint {
            self.save(checkpoint, cut, &state.queue, &[(&batch, &keys)], &carried);
        }
        report.failed += carried.len();
        for (key, fields) in carried {
            self.coalescer.restore(key, fields);
        }
        if batch.statements() > 0 {
            self.send(state, &batch, &keys, &mut report).await;
        }
        let m = &self.metrics;
        m.flushed(match report.failed {
            0 => FlushOutcome::Ok,
            n if n >= report.statements => FlushOutcome::Failed,
            _ => FlushOutcome::Partial,
        });
        if state.checkpoint.is_some() {
            state.store_away = report.first_error.is_some() && report.failed >= report.statements;
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

    /// Whether the store answers a ping within [`PROBE_TIMEOUT`].
    async fn answers(&self) -> bool {
        matches!(
            tokio::time::timeout(PROBE_TIMEOUT, self.store.ping()).await,
            Ok(Ok(()))
        )
    }

    /// `--durable`: whether the last ping in the background found the store answering within
    /// [`PROBE_TIMEOUT`]. Never waits: without an answer yet, `false`; with a `false` answer (or
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
        tokio::spawn(async move {
            let ping = tokio::time::timeout(PROBE_TIMEOUT, store.ping()).await;
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
        let applied = match tokio::time::timeout(self.store_timeout, self.store.apply(batch)).await
        {
            Ok(applied) => applied,
            Err(_) => Applied {
                commands: 1,
                failed: batch.fail_all(&self.timed_out()),
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
        for f in &applied.failed {
            let update = &batch.collections[f.collection].docs[f.doc];
            let key = &keys[f.collection][f.doc];
            if f.code == Some(DUPLICATE_KEY) {
                // Refused, and known not applied: a full capped document, or another process
                // created the document first. Its increments go back to be decided again.
                if update.guard.is_some() {
                    if let Some(month) = governing(key) {
                        state.admission.forget(&month);
                    }
                }
                self.coalescer.restore(key.clone(), restorable(update));
            } else {
                state.queue.push((key.clone(), update.clone()));
            }
        }
        let mut skip: HashSet<(usize, usize)> = applied
            .failed
            .iter()
            .map(|f| (f.collection, f.doc))
            .collect();
        skip.extend(applied.duplicates.iter().copied());
        self.live
            .record((self.clock)(), written(batch, keys, &skip));
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
        failed
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

/// Groups statements by collection (sorted), keeping each one's key so a failure can be kept
/// or put back.
fn group(keys: Vec<DocKey>, docs: Vec<DocUpdate>) -> (Batch, Vec<Vec<DocKey>>) {
    let mut by_collection: BTreeMap<String, (Vec<DocUpdate>, Vec<DocKey>)> = BTreeMap::new();
    for (key, update) in keys.into_iter().zip(docs) {
        let (docs, keys) = by_collection.entry(key.collection()).or_default();
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

/// Per site, the views and page views a flush wrote (its statements that did not fail), for the
/// live panel: `v` of traffic month documents, `p.<page>.v` of content day documents.
fn written(
    batch: &Batch,
    keys: &[Vec<DocKey>],
    failed: &HashSet<(usize, usize)>,
) -> HashMap<SiteId, Written> {
    let mut out: HashMap<SiteId, Written> = HashMap::new();
    for (ci, coll) in batch.collections.iter().enumerate() {
        for (di, update) in coll.docs.iter().enumerate() {
            let key = &keys[ci][di];
            let (kind, period) = (key.doc.kind, key.doc.period);
            let traffic = kind == ReportKind::Traffic && matches!(period, Period::Month(..));
            let content = kind == ReportKind::Content && matches!(period, Period::Day(..));
            if !(traffic || content) || failed.contains(&(ci, di)) {
                continue;
            }
            let w = out.entry(key.site.clone()).or_default();
            if traffic {
                w.views += update
                    .inc
                    .iter()
                    .find(|(f, _)| f.as_str() == "v")
                    .map_or(0, |(_, n)| *n);
                continue;
            }
            for (field, n) in &update.inc {
                if let Some(page) = field
                    .as_str()
                    .strip_prefix("p.")
                    .and_then(|p| p.strip_suffix(".v"))
                {
                    let title = update
                        .set
                        .iter()
                        .find(|(f, _)| {
                            f.as_str()
                                .strip_prefix("p.")
                                .and_then(|p| p.strip_suffix(".t"))
                                == Some(page)
                        })
                        .map(|(_, t)| t.clone());
                    let text = if crate::field::is_reserved(page) {
                        page.to_owned()
                    } else {
                        crate::field::unescape(page).text
                    };
                    w.pages.push((text, *n, title));
                }
            }
        }
    }
    out
}

/// What of a failed update goes back to the coalescer: its increments and texts, but not the
/// admission count of a guarded update, which the next flush works out again.
fn restorable(update: &DocUpdate) -> Vec<(crate::field::FieldKey, Value)> {
    let guarded = update.guard.is_some();
    update
        .inc
        .iter()
        .filter(|(f, _)| !(guarded && f.as_str() == ADMITTED))
        .map(|(f, by)| (f.clone(), Value::Inc(*by)))
        .chain(
            update
                .set
                .iter()
                .map(|(f, t)| (f.clone(), Value::Set(t.as_str().into()))),
        )
        .collect()
}

/// One flush's batch: every drained document's statement, with its guard (`guards[i]` belongs to
/// `drained[i]`) and the flush's mark, grouped by collection.
pub fn build_batch(
    drained: Drained,
    guards: Vec<Option<Guard>>,
    mark: &Mark,
) -> (Batch, Vec<Vec<DocKey>>) {
    let (keys, docs): (Vec<DocKey>, Vec<DocUpdate>) = drained
        .into_iter()
        .zip(guards)
        .map(|((key, fields), guard)| {
            let update = DocUpdate {
                guard,
                mark: Some(mark.clone()),
                ..update_of(&key, fields)
            };
            (key, update)
        })
        .unzip();
    group(keys, docs)
}

/// The statement that applies `fields` to `key`'s document: counters to `$inc`, texts to
/// `$set`, each sorted by field.
pub fn update_of(key: &DocKey, fields: Vec<(crate::field::FieldKey, Value)>) -> DocUpdate {
    let mut update = DocUpdate {
        id: key.id(),
        ..DocUpdate::default()
    };
    for (field, value) in fields {
        match value {
            Value::Inc(by) => update.inc.push((field, by)),
            Value::Set(text) => update.set.push((field, text.into())),
        }
    }
    update.inc.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    update.set.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    update
}
