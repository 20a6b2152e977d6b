//! The flusher: drains the coalescer on size or age, whichever comes first, writes one batch,
//! and puts back whatever the store did not apply.
//!
//! One flush at a time (a lock), so a slow store delays the next flush instead of stacking
//! them. Before writing, capped documents are resolved by [`Admission`] (reading a month
//! document's keys from the store the first time it is written). On shutdown
//! [`Flusher::drain`] keeps flushing until nothing is pending or its deadline passes, and says
//! how much it could not write.

use super::admission::{governing, Admission, ADMITTED};
use super::{Coalescer, Drained, Value};
use crate::api::live::{Live, Written};
use crate::metrics::{FlushOutcome, Metrics};
use crate::period::{Clock, Period};
use crate::reports::DocKey;
use crate::reports::ReportKind;
use crate::site::SiteId;
use crate::store::{Batch, CollectionBatch, DocUpdate, Guard, Store, StoreError};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Mutex};

pub struct Flusher {
    coalescer: Arc<Coalescer>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    /// Told what each flush wrote.
    live: Arc<Live>,
    clock: Clock,
    /// When the flush now running started (for `/readyz`: a flush that never ends is stuck).
    running_since: std::sync::Mutex<Option<Instant>>,
    /// Held for the whole of a flush: one at a time, and the admission books with it.
    one_at_a_time: Mutex<Admission>,
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
    /// `max_keys`: the cap on keys named by one capped document (see [`Admission`]).
    pub fn new(
        coalescer: Arc<Coalescer>,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        max_keys: usize,
        live: Arc<Live>,
        clock: Clock,
    ) -> Flusher {
        Flusher {
            coalescer,
            store,
            metrics,
            live,
            clock,
            running_since: std::sync::Mutex::new(None),
            one_at_a_time: Mutex::new(Admission::new(max_keys)),
        }
    }

    /// Reads the books of the month documents `drained` needs, one `find` per collection.
    /// Returns the documents whose books could not be read, and the error.
    async fn load_books(
        &self,
        admission: &mut Admission,
        drained: &Drained,
    ) -> (BTreeSet<DocKey>, Option<StoreError>) {
        let mut by_collection: BTreeMap<String, Vec<DocKey>> = BTreeMap::new();
        for key in admission.missing(drained) {
            by_collection.entry(key.collection()).or_default().push(key);
        }
        let (mut unread, mut error) = (BTreeSet::new(), None);
        for (collection, keys) in by_collection {
            let ids: Vec<String> = keys.iter().map(DocKey::id).collect();
            match self.store.get_many(&collection, &ids).await {
                Ok(docs) => {
                    for key in keys {
                        let id = key.id();
                        let doc = docs.iter().find(|d| d.get_str("_id").ok() == Some(&id));
                        admission.load(key, doc);
                    }
                }
                Err(e) => {
                    unread.extend(keys);
                    error.get_or_insert(e);
                }
            }
        }
        (unread, error)
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
        let mut admission = self.one_at_a_time.lock().await;
        *self.running_since.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        let report = self.flush_locked(&mut admission).await;
        *self.running_since.lock().unwrap_or_else(|e| e.into_inner()) = None;
        report
    }

    async fn flush_locked(&self, admission: &mut Admission) -> FlushReport {
        let mut drained = self.coalescer.drain();
        if drained.is_empty() {
            return FlushReport::default();
        }
        admission.evict_idle();
        let (unread, load_error) = self.load_books(admission, &drained).await;
        // Capped documents whose keys could not be read wait for the next flush, untouched.
        let mut deferred = 0;
        if !unread.is_empty() {
            let (wait, go): (Drained, Drained) = drained
                .into_iter()
                .partition(|(key, _)| governing(key).is_some_and(|g| unread.contains(&g)));
            deferred = wait.len();
            for (key, fields) in wait {
                self.coalescer.restore(key, fields);
            }
            drained = go;
        }
        let guards = admission.resolve(&mut drained);
        let (batch, keys) = build_batch(drained, guards);
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
        if let Some(e) = &load_error {
            tracing::warn!(deferred, error = %e, "flush: could not read capped documents; their increments are kept for the next flush");
        }
        for f in &applied.failed {
            let update = &batch.collections[f.collection].docs[f.doc];
            let key = &keys[f.collection][f.doc];
            if update.guard.is_some() {
                // Full, or another process raced us: read its keys again before admitting more.
                if let Some(month) = governing(key) {
                    admission.forget(&month);
                }
            }
            self.coalescer.restore(key.clone(), restorable(update));
        }
        self.live
            .record((self.clock)(), written(&batch, &keys, &applied.failed));
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
        m.flush_statements.observe(statements as f64);
        let failed = failed + deferred;
        m.flushed(match failed {
            0 => FlushOutcome::Ok,
            n if n == statements + deferred => FlushOutcome::Failed,
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
            first_error: applied
                .failed
                .first()
                .map(|f| f.error.clone())
                .or_else(|| load_error.map(|e| e.to_string())),
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

/// Per site, the views and page views a flush wrote (its statements that did not fail), for the
/// live panel: `v` of traffic month documents, `p.<page>.v` of content day documents.
fn written(
    batch: &Batch,
    keys: &[Vec<DocKey>],
    failed: &[crate::store::Failed],
) -> HashMap<SiteId, Written> {
    let failed: HashSet<(usize, usize)> = failed.iter().map(|f| (f.collection, f.doc)).collect();
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

/// Groups drained documents by collection (sorted), keeping each statement's key so a failure
/// can be put back. `guards[i]` belongs to `drained[i]`.
pub fn build_batch(drained: Drained, guards: Vec<Option<Guard>>) -> (Batch, Vec<Vec<DocKey>>) {
    let mut by_collection: BTreeMap<String, (Vec<DocUpdate>, Vec<DocKey>)> = BTreeMap::new();
    for ((key, fields), guard) in drained.into_iter().zip(guards) {
        let (docs, keys) = by_collection.entry(key.collection()).or_default();
        let mut update = DocUpdate {
            id: key.id(),
            guard,
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
