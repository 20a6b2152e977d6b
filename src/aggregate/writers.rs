//! The `writers` registry: which writer ids are live, and which are **retired**, so that the
//! marks of writers that can never send a statement again are removed from documents as they
//! are next written.
//!
//! Every `tally serve` and `tally import` registers its writer id in the store's `writers`
//! collection (one document per id: role, host, pid, whether durable, epoch, started, last
//! seen, ended on a clean stop) and refreshes `seen` every heartbeat. Each heartbeat also
//! re-reads the registry and the `parked` collection and works out the retired writers: not
//! this process, not durable (a durable log can replay at any start), named by no parked
//! statement, and either ended cleanly (nothing owed) or not seen for the stale time. A writer
//! is retired once, by a compare-and-swap on its document ([`Store::replace_if`] on `rev`), so
//! a writer that comes back races nobody: it finds its entry retired and takes a new id, never
//! reusing one whose marks others are removing. The flusher adds the retired ids (at most
//! [`MAX_UNSET`]) to each statement as `$unset` of their marks ([`DocUpdate::unset`]).
//! Entries retired longer than [`FORGET_AFTER`] are deleted.
//!
//! Each heartbeat (and registering) also compares this node's clock with the store's
//! ([`super::skew`]): the registry is the one task every node runs against the store at a
//! steady pace.
//!
//! This module owns the registry's documents and the retired list; it must not build
//! statements or know reports.
//!
//! [`DocUpdate::unset`]: crate::store::DocUpdate::unset

use super::identity::{Identity, IdentityError, Writer};
use super::skew::SkewCheck;
use crate::metrics::Metrics;
use crate::period::Clock;
use crate::store::{Store, StoreError};
use mongodb::bson::{doc, Bson, DateTime, Document};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// The registry's collection.
pub const WRITERS: &str = "writers";
/// Retired writers whose marks one statement removes, the most recently retired first.
pub const MAX_UNSET: usize = 32;
/// Registry entries retired this long ago are deleted.
pub const FORGET_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);
/// Documents read from `writers` and from `parked` per refresh; a `parked` collection this
/// full retires nobody new (a writer named past the limit might be missed).
pub const SCAN_LIMIT: usize = 10_000;
/// The default heartbeat: `seen` is refreshed and the registry re-read this often.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);
/// The default stale time: a writer not seen for this long, and not ended, is retired.
pub const DEFAULT_STALE: Duration = Duration::from_secs(3600);
/// Attempts at a compare-and-swap of one's own entry before giving up.
const ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("writers registry: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("writers registry: the entry of writer {0} kept changing under this process")]
    Contended(String),
}

/// Who registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Serve,
    Import,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Serve => "serve",
            Role::Import => "import",
        }
    }
}

/// How a registry judges time.
#[derive(Clone, Copy, Debug)]
pub struct Times {
    pub heartbeat: Duration,
    pub stale: Duration,
}

impl Default for Times {
    fn default() -> Self {
        Times {
            heartbeat: DEFAULT_HEARTBEAT,
            stale: DEFAULT_STALE,
        }
    }
}

/// Where this process's writer id comes from.
pub enum Source {
    /// A slot under the data directory; renewed when the registry says the id is retired or
    /// live on another node.
    Slot(Identity),
    /// `--durable`: the checkpoint's id (never retired: the log can replay at any start).
    Durable(Writer),
    /// Neither (an application built without a data directory): a random id, new each start.
    Random(Writer),
}

impl Source {
    /// The first free slot under `data_dir`; when the directory cannot be written (a
    /// read-only file system next to MongoDB), a random id with a warning, as before stable
    /// identities. A corrupt slot file, or no free slot, is an error.
    pub fn slot_or_random(data_dir: &std::path::Path) -> Result<Source, IdentityError> {
        match Identity::claim(data_dir) {
            Ok(identity) => Ok(Source::Slot(identity)),
            Err(IdentityError::Io { path, source }) => {
                tracing::warn!(
                    path,
                    error = %source,
                    "cannot keep a writer identity in the data directory; using a random one (each start then adds a mark to the documents it writes, until it is retired)"
                );
                Ok(Source::Random(Writer::random()))
            }
            Err(e) => Err(e),
        }
    }
}

/// This process's entry and the retired list its flusher prunes.
pub struct Registry {
    store: Arc<dyn Store>,
    clock: Clock,
    times: Times,
    metrics: Arc<Metrics>,
    role: Role,
    durable: bool,
    skew: SkewCheck,
    me: Mutex<Me>,
    retired: RwLock<Arc<Vec<String>>>,
    /// One refresh at a time, so a refresh that lost a retirement's compare-and-swap to
    /// another never publishes its shorter list after the winner's.
    refreshing: tokio::sync::Mutex<()>,
}

struct Me {
    identity: Option<Identity>,
    writer: Writer,
    rev: i64,
    started: DateTime,
}

impl Registry {
    /// Registers this process and returns the registry with the writer its flusher must use
    /// (a slot's id may have been renewed here).
    pub async fn register(
        store: Arc<dyn Store>,
        source: Source,
        role: Role,
        times: Times,
        clock: Clock,
        metrics: Arc<Metrics>,
    ) -> Result<(Arc<Registry>, Writer), RegistryError> {
        let (identity, writer, durable) = match source {
            Source::Slot(identity) => {
                let writer = identity.writer();
                (Some(identity), writer, false)
            }
            Source::Durable(writer) => (None, writer, true),
            Source::Random(writer) => (None, writer, false),
        };
        let now = DateTime::from_millis((clock)().timestamp_millis());
        let registry = Registry {
            store,
            clock: clock.clone(),
            times,
            metrics,
            role,
            durable,
            skew: SkewCheck::new(clock.clone(), super::skew::WARN_AFTER),
            me: Mutex::new(Me {
                identity,
                writer,
                rev: 0,
                started: now,
            }),
            retired: RwLock::new(Arc::new(Vec::new())),
            refreshing: tokio::sync::Mutex::new(()),
        };
        registry.claim_entry().await?;
        registry.check_clock().await;
        if let Err(e) = registry.refresh().await {
            tracing::warn!(error = %e, "writers registry: cannot read it; no marks are removed until it can be");
        }
        let writer = registry.writer();
        registry.metrics.writer_epoch.set(i64::from(writer.epoch));
        tracing::info!(
            writer = %writer.id,
            epoch = writer.epoch,
            role = role.as_str(),
            durable,
            "writer registered"
        );
        Ok((Arc::new(registry), writer))
    }

    /// The writer this process flushes as.
    pub fn writer(&self) -> Writer {
        self.lock().writer.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Me> {
        self.me.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The writers whose marks statements remove now.
    pub fn retired(&self) -> Arc<Vec<String>> {
        Arc::clone(&self.retired.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn now(&self) -> DateTime {
        DateTime::from_millis((self.clock)().timestamp_millis())
    }

    /// Writes this process's entry, taking the id over from a dead incarnation of itself, or
    /// renewing a slot's id when its entry is retired or live elsewhere.
    async fn claim_entry(&self) -> Result<(), RegistryError> {
        let host = host();
        for _ in 0..ATTEMPTS {
            let id = self.writer().id;
            let existing = self.store.get(WRITERS, &id).await?;
            let why = match &existing {
                Some(entry) if entry.get("retired").is_some() => {
                    Some("retired by another process (its marks are being removed)")
                }
                Some(entry)
                    if entry.get("ended").is_none()
                        && !self.is_stale(entry)
                        && entry.get_str("host").ok() != Some(host.as_str()) =>
                {
                    Some("live on another host: was this data directory copied to a second node?")
                }
                // Registered before (its epoch says so) and gone: perhaps retired and deleted
                // since, while another process may still hold it in its retired list.
                None if self.lock().identity.as_ref().is_some_and(|i| i.epoch() > 1) => {
                    Some("no longer in the registry (retired and forgotten?)")
                }
                _ => None,
            };
            if let Some(why) = why {
                let other = existing.as_ref().and_then(|e| e.get_str("host").ok());
                if self.renew(&id, why, other.unwrap_or("-"))? {
                    continue;
                }
            }
            let expected = existing.as_ref().map(rev);
            let mut me = self.entry(&host);
            let next = expected.unwrap_or(0) + 1;
            me.insert("rev", next);
            if self.store.replace_if(WRITERS, &me, expected).await? {
                self.lock().rev = next;
                return Ok(());
            }
        }
        Err(RegistryError::Contended(self.writer().id))
    }

    /// A new id for a slot whose id cannot be used (true: try again with it); a durable or
    /// random writer keeps its id (false) and is only warned about.
    fn renew(&self, id: &str, why: &str, other_host: &str) -> Result<bool, RegistryError> {
        let mut me = self.lock();
        let Some(identity) = me.identity.as_mut() else {
            tracing::warn!(writer = id, other_host, "writer id {why}; it is taken over");
            return Ok(false);
        };
        identity.renew()?;
        me.writer = identity.writer();
        self.metrics.writer_renewals.inc();
        tracing::warn!(
            writer = id,
            new_writer = %me.writer.id,
            other_host,
            "writer id {why}; this process takes a new one"
        );
        Ok(true)
    }

    /// This process's entry, without `rev`.
    fn entry(&self, host: &str) -> Document {
        let me = self.lock();
        let mut d = doc! {
            "_id": &me.writer.id,
            "role": self.role.as_str(),
            "host": host,
            "pid": i64::from(std::process::id()),
            "durable": self.durable,
            "epoch": i64::from(me.writer.epoch),
            "started": me.started,
            "seen": self.now(),
        };
        if let Some(identity) = &me.identity {
            d.insert("slot", identity.slot() as i64);
        }
        d
    }

    fn is_stale(&self, entry: &Document) -> bool {
        let seen = entry
            .get_datetime("seen")
            .map_or(0, |t| t.timestamp_millis());
        let stale = self.times.stale.as_millis() as i64;
        self.now().timestamp_millis() - seen > stale
    }

    /// Refreshes `seen`. When another process changed this entry (it retired this writer
    /// while this process could not reach the store), the entry is claimed again, with a new
    /// id for a slot: the new writer is returned for the flusher.
    pub async fn heartbeat(&self) -> Result<Option<Writer>, RegistryError> {
        let (id, rev) = {
            let me = self.lock();
            (me.writer.id.clone(), me.rev)
        };
        let mut me = self.entry(&host());
        me.insert("rev", rev + 1);
        if self.store.replace_if(WRITERS, &me, Some(rev)).await? {
            self.lock().rev = rev + 1;
            return Ok(None);
        }
        tracing::error!(
            writer = %id,
            "writer entry changed by another process (retired after this one was cut off from the store for longer than the stale time?); statements owed from before may be counted twice"
        );
        self.claim_entry().await?;
        let writer = self.writer();
        Ok((writer.id != id).then_some(writer))
    }

    /// Records a clean stop (everything this writer sent is known to be in the store): its
    /// marks can be removed at once.
    pub async fn end(&self) -> Result<(), RegistryError> {
        let rev = self.lock().rev;
        let mut me = self.entry(&host());
        me.insert("ended", self.now());
        me.insert("rev", rev + 1);
        if self.store.replace_if(WRITERS, &me, Some(rev)).await? {
            self.lock().rev = rev + 1;
        }
        Ok(())
    }

    /// Gives the data directory's slot back (unlocks it) now rather than when the last handle
    /// on this registry goes: for an application stopped inside a process that goes on (tests),
    /// so that the next one takes the same slot.
    pub fn release(&self) {
        self.lock().identity = None;
    }

    /// Re-reads the registry and `parked`, retires the writers that can no longer send, deletes
    /// entries retired long ago, and publishes the retired list.
    pub async fn refresh(&self) -> Result<(), RegistryError> {
        let _one = self.refreshing.lock().await;
        let me = self.writer().id;
        let entries = self
            .store
            .scan(WRITERS, "", "\u{10FFFF}", &[], SCAN_LIMIT)
            .await?;
        let parked = self
            .store
            .scan(
                super::parked::PARKED,
                "",
                "\u{10FFFF}",
                &["writer"],
                SCAN_LIMIT,
            )
            .await?;
        let may_retire = parked.len() < SCAN_LIMIT;
        let named: std::collections::HashSet<&str> = parked
            .iter()
            .filter_map(|d| d.get_str("writer").ok())
            .collect();
        let now = self.now().timestamp_millis();
        let forget = FORGET_AFTER.as_millis() as i64;
        let mut retired: Vec<(i64, String)> = Vec::new();
        for entry in entries {
            let Ok(id) = entry.get_str("_id").map(str::to_owned) else {
                continue;
            };
            if id == me || !super::identity::is_writer_id(&id) {
                continue;
            }
            if let Ok(at) = entry.get_datetime("retired") {
                let at = at.timestamp_millis();
                if now - at > forget {
                    self.store
                        .delete_range(WRITERS, &id, &format!("{id}\0"))
                        .await?;
                } else if !named.contains(id.as_str()) {
                    retired.push((at, id));
                }
                continue;
            }
            let durable = entry.get_bool("durable").unwrap_or(true);
            let gone = entry.get("ended").is_some() || self.is_stale(&entry);
            if durable || !gone || !may_retire || named.contains(id.as_str()) {
                continue;
            }
            let mut next = entry.clone();
            next.insert("retired", DateTime::from_millis(now));
            next.insert("rev", rev(&entry) + 1);
            if self
                .store
                .replace_if(WRITERS, &next, Some(rev(&entry)))
                .await?
            {
                tracing::info!(writer = %id, role = entry.get_str("role").unwrap_or("?"), "writer retired: its marks are removed as documents are written");
                retired.push((now, id));
            }
        }
        retired.sort_by(|a, b| b.cmp(a));
        retired.truncate(MAX_UNSET);
        let list: Vec<String> = retired.into_iter().map(|(_, id)| id).collect();
        self.metrics.writers_retired.set(list.len() as i64);
        *self.retired.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(list);
        Ok(())
    }

    /// Heartbeats and refreshes every heartbeat until `stop` turns true; a writer renewed by a
    /// heartbeat is handed to `renewed`.
    pub async fn run(
        self: Arc<Self>,
        mut stop: tokio::sync::watch::Receiver<bool>,
        renewed: impl Fn(Writer) + Send + 'static,
    ) {
        let mut tick = tokio::time::interval(self.times.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Registering was the first heartbeat.
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            match self.heartbeat().await {
                Ok(Some(writer)) => renewed(writer),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "writers registry: heartbeat failed"),
            }
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e, "writers registry: cannot read it; keeping the last retired list");
            }
            self.check_clock().await;
        }
    }

    /// Compares this node's clock with the store's (a failure to ask is left to the heartbeat
    /// and the flusher to report).
    async fn check_clock(&self) {
        if let Err(e) = self.skew.check(self.store.as_ref(), &self.metrics).await {
            tracing::debug!(error = %e, "clock skew: cannot read the store's clock");
        }
    }
}

fn rev(entry: &Document) -> i64 {
    crate::model::number(entry.get("rev"))
}

/// This machine's name, for the registry (`/proc/sys/kernel/hostname`, else `$HOSTNAME`).
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The marks in `doc` (its `_w` sub-document's writer ids).
pub fn marks(doc: &Document) -> Vec<String> {
    match doc.get(crate::store::MARKS) {
        Some(Bson::Document(w)) => w.keys().cloned().collect(),
        _ => Vec::new(),
    }
}
