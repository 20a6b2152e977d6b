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
//!
//! Layout: this file holds the flusher, its state and one flush from start to end
//! ([`Flusher::flush`]); the steps live beside it: `reads.rs` (the marks and books read before
//! writing), `send.rs` (one batch sent and its failures sorted out), `parking.rs` (statements
//! refused for good) and `durable.rs` (spill files and the checkpoint). The flusher must not
//! know which store it talks to, nor how the coalescer merges.

mod durable;
mod parking;
mod reads;
mod send;

use super::admission::{governing, Admission};
use super::checkpoint::{Checkpoint, Recovered};
pub use super::identity::Writer;
use super::parked;
use super::statement::update_of;
use super::writers::Registry;
use super::{Coalescer, Drained};
use crate::metrics::{FlushOutcome, Metrics};
use crate::period::Clock;
use crate::reports::{DocKey, ReportKind};
use crate::store::{DocUpdate, Store};
use send::group;
use std::collections::{HashMap, HashSet};
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
    /// How often the people sketches' `$max`es are sent (see [`Flusher::with_sketch_every`]).
    sketch_every: Duration,
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
    /// When the people sketches' raises were last sent.
    sketches_sent: Option<Instant>,
    /// How long the last flush took: a slow store gets the sketches' raises less often.
    last_took: Duration,
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

/// A slow store gets the sketches' raises at most once per this many flushes' time: a flush
/// that takes 5 s (FerretDB writing back an outage) sends them every 20 s, not every flush,
/// since a sketch document of 4,096 fields costs it more than a counter document.
pub const SKETCH_SHARE: u32 = 4;

/// The default for [`Flusher::with_sketch_every`] (`--people-flush-secs`).
pub const DEFAULT_SKETCH_EVERY: Duration = Duration::from_secs(10);

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
                sketches_sent: None,
                last_took: Duration::ZERO,
            }),
            closing: AtomicBool::new(false),
            registry: None,
            sketch_every: DEFAULT_SKETCH_EVERY,
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

    /// Sends the raises of the people sketches (`people.<YYYY>` documents) at most every
    /// `every`, and keeps them pending in between: a sketch document has up to 4,096 fields, which
    /// some stores (FerretDB v1) rewrite whole for every statement, and a busy site raises a few
    /// registers of its day, month and year in nearly every flush. A `$max` merges with the next
    /// one in the coalescer, so holding them loses nothing and sends each document once per
    /// `every`. When the store is slow they wait longer: at least [`SKETCH_SHARE`] times the last
    /// flush's time. They go at once on shutdown, and whenever the coalescer is three quarters
    /// full.
    pub fn with_sketch_every(mut self, every: Duration) -> Flusher {
        self.sketch_every = every;
        self
    }

    /// Store calls taking longer than `timeout` are abandoned; their statements are sent again.
    pub fn with_store_timeout(mut self, timeout: Duration) -> Flusher {
        self.store_timeout = timeout;
        self.store.limit_calls(timeout);
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

    /// Writes what is pending now, the people sketches' raises when they are due.
    pub async fn flush(&self) -> FlushReport {
        self.flush_with(false).await
    }

    /// Writes everything pending now, the people sketches' raises included.
    pub async fn flush_all(&self) -> FlushReport {
        self.flush_with(true).await
    }

    async fn flush_with(&self, sketches: bool) -> FlushReport {
        let mut state = self.one_at_a_time.lock().await;
        if sketches {
            state.sketches_sent = None;
        }
        let started = Instant::now();
        *self.running_since.lock().unwrap_or_else(|e| e.into_inner()) = Some(started);
        let report = self.flush_locked(&mut state).await;
        state.last_took = started.elapsed();
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
        let pressed = self.coalescer.pending() >= self.coalescer.max_entries() / 4 * 3;
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
        let held = self.hold_sketches(state, &mut drained, pressed);
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
            let kept: Drained = carried.iter().chain(&held).cloned().collect();
            self.save(checkpoint, cut, &state.queue, &[(&batch, &keys)], &kept);
        }
        report.failed += carried.len();
        for (key, fields) in carried {
            self.coalescer.restore(key, fields);
        }
        for (key, fields) in held {
            self.coalescer.hold(key, fields);
        }
        let statements = batch.statements();
        let owed = if statements > 0 {
            self.send(state, &batch, &keys, &mut report).await
        } else {
            0
        };
        if statements == 0 && report.failed == 0 {
            // Only sketch raises, held for later: no flush to count.
            return report;
        }
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

    /// Takes the people sketches' documents out of `drained` unless they are due (see
    /// [`Flusher::with_sketch_every`]): the first flush, `every` after the last send (or
    /// [`SKETCH_SHARE`] times the last flush's time, when the store is that slow), shutdown, or a
    /// coalescer `pressed` three quarters full; not while spill files are written back.
    fn hold_sketches(&self, state: &mut State, drained: &mut Drained, pressed: bool) -> Drained {
        let sketch = |key: &DocKey| key.doc.kind == ReportKind::People;
        if !drained.iter().any(|(key, _)| sketch(key)) {
            return Vec::new();
        }
        // `--durable`, an outage's spill files still being written back: the counters first.
        let backlog = state
            .checkpoint
            .as_ref()
            .is_some_and(|c| !c.spill_files().is_empty());
        let due = pressed
            || self.closing.load(Ordering::Relaxed)
            || (!backlog
                && state.sketches_sent.is_none_or(|at| {
                    at.elapsed() >= self.sketch_every.max(state.last_took * SKETCH_SHARE)
                }));
        if due {
            state.sketches_sent = Some(Instant::now());
            return Vec::new();
        }
        let (held, go): (Drained, Drained) = std::mem::take(drained)
            .into_iter()
            .partition(|(key, _)| sketch(key));
        *drained = go;
        held
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
