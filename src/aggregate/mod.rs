//! The coalescer: increments merged in memory per `(collection, document id, field)` until the
//! flusher writes them.
//!
//! A hit adds its increments under one short lock (the shard of its site), so worker threads
//! rarely contend and the hit path never waits for the store. Merging is what makes writes
//! cheap: a thousand views of one page in a second become one `$inc` of 1000. Memory is
//! bounded: once [`Coalescer::max_entries`] distinct entries are pending, whole hits are refused
//! (and counted) rather than half-added; with `--durable`, so is every hit once the durable
//! directory holds its budget ([`Refused::DurableFull`]). Increments the store failed to apply
//! come back through [`Coalescer::restore`] (and spilled ones through
//! [`Coalescer::restore_spilled`]) and are merged with whatever arrived meanwhile.
//!
//! The flusher itself lives in [`flusher`]. This module must not touch the store.

pub mod admission;
pub mod checkpoint;
pub mod close;
pub mod flusher;
pub mod identity;
pub mod journal;
pub mod known;
pub mod named;
pub mod parked;
pub mod skew;
pub mod spill;
pub mod statement;
pub mod writers;

use crate::field::FieldKey;
pub use crate::reports::Value;
use crate::reports::{DocKey, DocRef, Increments};
use crate::site::SiteId;
// foldhash: a fast hasher with a per-process random seed, so field keys chosen by visitors
// cannot be crafted into collisions; std's SipHash made map lookups the hit path's largest cost.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use journal::Journal;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Notify;

/// Independent locks; a site always maps to the same one.
const SHARDS: usize = 16;

type Fields = HashMap<FieldKey, Value>;

#[derive(Default)]
struct Shard {
    sites: HashMap<SiteId, HashMap<DocRef, Fields>>,
    entries: usize,
    /// The registers of open sketches already taken: kept across drains.
    known: known::Known,
}

/// Why [`Coalescer::add`] refused a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The pending bound is reached.
    Full,
    /// Shutdown has begun: nothing new is taken.
    Closed,
    /// The site's parked statements passed their bound (see [`parked`]).
    Parked,
    /// `--durable`: the durable directory holds its budget (`--durable-max-bytes`); the store
    /// has been away long enough to fill it.
    DurableFull,
}

/// Increments drained for one flush: each document with its merged fields.
pub type Drained = Vec<(DocKey, Vec<(FieldKey, Value)>)>;

pub struct Coalescer {
    shards: Box<[Mutex<Shard>]>,
    hasher: foldhash::fast::RandomState,
    entries: AtomicUsize,
    max_entries: usize,
    flush_at: usize,
    closed: AtomicBool,
    /// Woken when `flush_at` entries are pending, so the flusher need not wait for its tick.
    pub wake: Notify,
    /// `--durable`: every accepted hit is appended here too.
    journal: Option<Arc<Journal>>,
    /// With a journal, an add holds this shared and a drain exclusively, so the journal's cut
    /// divides the hits exactly where the drain does.
    cut: RwLock<()>,
    /// What the capped documents name, as the flusher's admission learns it.
    named: Arc<named::Named>,
    /// The sites whose parked statements passed their bound.
    parked: Arc<parked::Sites>,
}

/// How long a handler waits for its hit to reach the durable log before answering 503.
pub const DURABLE_WAIT: Duration = Duration::from_secs(5);

impl Coalescer {
    /// `max_entries`: the bound on pending entries; `flush_at`: the count that triggers an early
    /// flush.
    pub fn new(max_entries: usize, flush_at: usize) -> Coalescer {
        Coalescer {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: Default::default(),
            entries: AtomicUsize::new(0),
            max_entries,
            flush_at: flush_at.min(max_entries).max(1),
            closed: AtomicBool::new(false),
            wake: Notify::new(),
            journal: None,
            cut: RwLock::new(()),
            named: Arc::default(),
            parked: Arc::default(),
        }
    }

    /// What the capped documents name, shared by the flusher (which learns it) and the hit path
    /// (which spends senders' budgets of new keys by it).
    pub fn named(&self) -> &Arc<named::Named> {
        &self.named
    }

    /// The parked statements the flusher last counted, per site; a site past `max_per_site`
    /// gets 503 for its hits.
    pub fn parked(&self) -> &Arc<parked::Sites> {
        &self.parked
    }

    /// Refuses the hits of a site with more than `max_per_site` parked statements (0: never).
    pub fn with_parked_bound(mut self, max_per_site: usize) -> Coalescer {
        self.parked = Arc::new(parked::Sites::new(max_per_site));
        self
    }

    /// Appends every accepted hit to `journal` (`--durable`).
    pub fn with_journal(mut self, journal: Arc<Journal>) -> Coalescer {
        self.journal = Some(journal);
        self
    }

    pub fn journal(&self) -> Option<&Arc<Journal>> {
        self.journal.as_ref()
    }

    /// Waits until every hit accepted so far is in the durable log; `true` at once without
    /// one. `false`: the log could not be written in [`DURABLE_WAIT`], so the hit (which is
    /// counted) must not be acknowledged.
    pub async fn durable(&self) -> bool {
        match &self.journal {
            None => true,
            Some(journal) => journal.written(journal.appended(), DURABLE_WAIT).await,
        }
    }

    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Distinct (document, field) entries waiting.
    pub fn pending(&self) -> usize {
        self.entries.load(Ordering::Relaxed)
    }

    fn shard(&self, site: &SiteId) -> std::sync::MutexGuard<'_, Shard> {
        let i = (self.hasher.hash_one(site) as usize) % SHARDS;
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Merges one hit's increments (draining `incs`, whose buffer can be reused). All or
    /// nothing: a refused hit adds no increment at all.
    pub fn add(&self, site: &SiteId, incs: &mut Increments) -> Result<(), Refused> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Refused::Closed);
        }
        // Checked before the lock: the bound may be passed by at most one hit per worker.
        if self.entries.load(Ordering::Relaxed) >= self.max_entries {
            return Err(Refused::Full);
        }
        if self.journal.as_ref().is_some_and(|j| j.full()) {
            return Err(Refused::DurableFull);
        }
        if self.parked.is_over(site) {
            return Err(Refused::Parked);
        }
        let _shared = self
            .journal
            .as_ref()
            .map(|_| self.cut.read().unwrap_or_else(|e| e.into_inner()));
        if let Some(journal) = &self.journal {
            journal.append(site, incs);
        }
        let mut shard = self.shard(site);
        let added = merge(&mut shard, site, incs.entries.drain(..), Age::Hit);
        self.note_added(added, shard);
        Ok(())
    }

    /// Merges a hit read back from the durable log at start: never refused, not logged again
    /// (it is still in its segment until a checkpoint consumes it).
    pub fn replay(&self, site: &SiteId, incs: &mut Increments) {
        let mut shard = self.shard(site);
        let added = merge(&mut shard, site, incs.entries.drain(..), Age::Newer);
        self.note_added(added, shard);
    }

    /// Puts back increments the store did not apply. Never refused (they were accepted once),
    /// so a long outage can carry the count past `max_entries`; new hits are refused instead.
    pub fn restore(&self, key: DocKey, fields: Vec<(FieldKey, Value)>) {
        let (shard, added) = self.put_back(key, fields);
        self.note_added(added, shard);
    }

    /// Keeps increments a flush drained but chose not to send yet (the `$max`es of people
    /// sketches, written at most every `--people-flush-secs`): like [`Coalescer::restore`], but
    /// without waking the flusher, which just drained them.
    pub fn hold(&self, key: DocKey, fields: Vec<(FieldKey, Value)>) {
        let (shard, added) = self.put_back(key, fields);
        // Counted before the shard is released, as `note_added` does.
        self.entries.fetch_add(added, Ordering::Relaxed);
        drop(shard);
    }

    /// Merges `fields` back as older than anything pending; returns the shard still locked and
    /// how many entries appeared.
    fn put_back(
        &self,
        key: DocKey,
        fields: Vec<(FieldKey, Value)>,
    ) -> (std::sync::MutexGuard<'_, Shard>, usize) {
        let DocKey { site, doc } = key;
        let mut shard = self.shard(&site);
        let added = merge(
            &mut shard,
            &site,
            fields.into_iter().map(|(f, value)| (doc, f, value)),
            Age::Older,
        );
        (shard, added)
    }

    /// Puts back increments read from a spill file (`--durable`): like [`Coalescer::restore`],
    /// never refused, older than anything pending, not logged again.
    pub fn restore_spilled(&self, site: &SiteId, incs: Increments) {
        let mut shard = self.shard(site);
        let added = merge(&mut shard, site, incs.entries.into_iter(), Age::Older);
        self.note_added(added, shard);
    }

    /// Counts `added` new entries, then releases their shard: a drain takes the shard's lock
    /// before it subtracts, so it can never subtract entries not yet counted (the count would
    /// wrap below zero).
    fn note_added(&self, added: usize, shard: std::sync::MutexGuard<'_, Shard>) {
        let now = self.entries.fetch_add(added, Ordering::Relaxed) + added;
        drop(shard);
        if now >= self.flush_at && now - added < self.flush_at {
            self.wake.notify_one();
        }
    }

    /// [`Coalescer::drain`], and with a journal its cut: the first segment after the drained
    /// hits.
    pub fn drain_cut(&self) -> (Drained, Option<u64>) {
        let Some(journal) = &self.journal else {
            return (self.drain(), None);
        };
        let _exclusive = self.cut.write().unwrap_or_else(|e| e.into_inner());
        let drained = self.drain();
        (drained, Some(journal.rotate()))
    }

    /// Takes everything pending, leaving the coalescer empty.
    pub fn drain(&self) -> Drained {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let taken = {
                let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
                let entries = std::mem::take(&mut shard.entries);
                (std::mem::take(&mut shard.sites), entries)
            };
            self.entries.fetch_sub(taken.1, Ordering::Relaxed);
            for (site, docs) in taken.0 {
                for (doc, fields) in docs {
                    let mut fields: Vec<_> = fields.into_iter().collect();
                    fields.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                    out.push((
                        DocKey {
                            site: site.clone(),
                            doc,
                        },
                        fields,
                    ));
                }
            }
        }
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Refuses every hit from now on (shutdown).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}

/// Whether merged values arrived after (a new hit, or one replayed) or before (a restore)
/// what is pending; a new hit's `$max` that raises no known register is dropped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Age {
    Hit,
    Newer,
    Older,
}

/// Adds increments into a shard; returns how many new entries appeared.
fn merge(
    shard: &mut Shard,
    site: &SiteId,
    incs: impl Iterator<Item = (DocRef, FieldKey, Value)>,
    age: Age,
) -> usize {
    let mut added = 0;
    let Shard {
        sites,
        entries,
        known,
    } = shard;
    let docs = sites.entry(site.clone()).or_default();
    for (doc, field, value) in incs {
        if let (Value::Max(v), Age::Hit) = (&value, age) {
            if !known.raises(site, doc, &field, *v) {
                continue;
            }
        }
        let fields = docs.entry(doc).or_default();
        match (fields.get_mut(&field), value) {
            (Some(Value::Inc(n)), Value::Inc(by)) => *n += by,
            (Some(Value::Max(n)), Value::Max(v)) => *n = (*n).max(v),
            // The latest text wins; a restored one is older than anything pending.
            (Some(current), value) => {
                if age != Age::Older {
                    *current = value;
                }
            }
            (None, value) => {
                fields.insert(field, value);
                added += 1;
            }
        }
    }
    *entries += added;
    added
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::Period;
    use crate::reports::ReportKind;

    fn incs(fields: &[&str]) -> Increments {
        let mut out = Increments::default();
        for f in fields {
            out.add(
                ReportKind::Traffic,
                Period::Month(2011, 6),
                FieldKey::parse(f).unwrap(),
                1,
            );
        }
        out
    }

    #[test]
    fn a_max_merges_as_a_max_and_a_known_register_is_not_sent_again() {
        let c = Coalescer::new(1000, 1000);
        let acme = SiteId::parse("acme").unwrap();
        let people = |rank| {
            let mut out = Increments::default();
            out.max(
                ReportKind::People,
                Period::Day(2026, 6, 1),
                FieldKey::parse("0.17").unwrap(),
                rank,
            );
            out
        };
        for rank in [2, 5, 3] {
            c.add(&acme, &mut people(rank)).unwrap();
        }
        let drained = c.drain();
        assert_eq!(
            drained[0].1,
            vec![(FieldKey::parse("0.17").unwrap(), Value::Max(5))]
        );
        c.add(&acme, &mut people(5)).unwrap();
        assert_eq!(c.pending(), 0, "no raise: nothing to send");
        c.add(&acme, &mut people(6)).unwrap();
        assert_eq!(c.pending(), 1);
    }

    #[test]
    fn merges_per_document_and_field() {
        let c = Coalescer::new(1000, 1000);
        let acme = SiteId::parse("acme").unwrap();
        for _ in 0..1000 {
            c.add(&acme, &mut incs(&["v", "d.01.v"])).unwrap();
        }
        assert_eq!(c.pending(), 2);
        let drained = c.drain();
        assert_eq!(drained.len(), 1);
        assert_eq!(drained[0].0.id(), "acme:2011-06");
        assert_eq!(drained[0].0.collection(), "traffic.2011");
        let fields: Vec<_> = drained[0]
            .1
            .iter()
            .map(|(f, n)| (f.as_str(), n.clone()))
            .collect();
        assert_eq!(
            fields,
            vec![("d.01.v", Value::Inc(1000)), ("v", Value::Inc(1000))]
        );
        assert_eq!(c.pending(), 0);
    }

    #[test]
    fn the_latest_text_wins_and_a_restore_does_not_overwrite_it() {
        let c = Coalescer::new(100, 100);
        let s = SiteId::parse("s").unwrap();
        let set = |text: &str| {
            let mut out = Increments::default();
            out.set(
                ReportKind::Traffic,
                Period::Month(2011, 6),
                FieldKey::parse("t").unwrap(),
                text,
            );
            out
        };
        c.add(&s, &mut set("old")).unwrap();
        let (key, fields) = c.drain().remove(0);
        c.add(&s, &mut set("new")).unwrap();
        c.restore(key, fields);
        assert_eq!(
            c.drain()[0].1,
            vec![(FieldKey::parse("t").unwrap(), Value::Set("new".into()))]
        );
    }

    #[test]
    fn refuses_whole_hits_when_full_and_after_close() {
        let c = Coalescer::new(3, 3);
        let s = SiteId::parse("s").unwrap();
        c.add(&s, &mut incs(&["a", "b", "c"])).unwrap();
        assert_eq!(c.add(&s, &mut incs(&["d"])), Err(Refused::Full));
        assert_eq!(c.pending(), 3);
        // a restore is never refused, and merges
        let (key, fields) = c.drain().remove(0);
        c.add(&s, &mut incs(&["a"])).unwrap();
        c.restore(key, fields);
        let drained = c.drain();
        let a = drained[0]
            .1
            .iter()
            .find(|(f, _)| f.as_str() == "a")
            .unwrap();
        assert_eq!(a.1, Value::Inc(2));
        c.close();
        assert_eq!(c.add(&s, &mut incs(&["a"])), Err(Refused::Closed));
    }

    /// Adds racing drains: the pending count never goes below what the shards hold (it used to
    /// be raised only after the shard's lock was released, so a drain in between subtracted
    /// entries not yet added: the count wrapped below zero, which panicked in debug builds and
    /// refused hits as `Full` in release), and every increment is drained exactly once.
    #[test]
    fn the_pending_count_stays_exact_while_drains_race_adds() {
        let c = std::sync::Arc::new(Coalescer::new(usize::MAX / 2, usize::MAX / 2));
        let adders: Vec<_> = (0..2)
            .map(|t| {
                let c = std::sync::Arc::clone(&c);
                std::thread::spawn(move || {
                    let s = SiteId::parse("s").unwrap();
                    for i in 0..20_000 {
                        c.add(&s, &mut incs(&[&format!("f{t}x{i}"), "v"])).unwrap();
                    }
                })
            })
            .collect();
        let mut total = 0;
        while !adders.iter().all(|a| a.is_finished()) {
            assert!(c.pending() <= 40_001, "pending {}", c.pending());
            for (_, fields) in c.drain() {
                for (_, v) in fields {
                    if let Value::Inc(n) = v {
                        total += n;
                    }
                }
            }
        }
        for a in adders {
            a.join().expect("an adder does not panic");
        }
        for (_, fields) in c.drain() {
            for (_, v) in fields {
                if let Value::Inc(n) = v {
                    total += n;
                }
            }
        }
        assert_eq!(total, 2 * 2 * 20_000);
        assert_eq!(c.pending(), 0);
    }
}
