//! Live: views of the last minutes and the pages being viewed right now (Gaug.es's
//! AirTraffic), read from the live tier of documents (`reports::live`).
//!
//! A [`Snapshot`] is read from the minute documents of the last [`MINUTES`] minutes (one
//! `get_many` per yearly collection, so one or two): views per minute, and the pages of the
//! last [`PAGE_MINUTES`] minutes with their latest titles. Every node on the same store reads
//! the same documents, so every node shows the same numbers, and a restart loses nothing.
//!
//! The stream is fed by polling: while at least one client follows a site, one task per site
//! (shared by all its followers on this node) reads the snapshot every [`POLL_EVERY`] and
//! publishes it when it differs from the last one. Nothing here is told about flushes: the
//! documents are the only source. This module reads; it must not write.

use crate::period::{Clock, LocalTime};
use crate::reports::live::Live as LiveReport;
use crate::reports::{document_id, Report, ReportKind};
use crate::site::{Site, SiteId};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use mongodb::bson::Document;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// Minutes of views shown per site.
pub const MINUTES: usize = 30;
/// Minutes a page counts as "being viewed now".
pub const PAGE_MINUTES: usize = 5;
/// Pages listed as being viewed now, most viewed first.
pub const TOP_PAGES: usize = 50;
/// How often a followed site's minute documents are read.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// One site's live panel.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Snapshot {
    pub at: String,
    /// The last [`MINUTES`] minutes (UTC), oldest first, including empty ones.
    pub views_last_minutes: Vec<MinuteViews>,
    /// Pages with views in the last [`PAGE_MINUTES`] minutes, most viewed first.
    pub pages_now: Vec<PageNow>,
    pub window_minutes: usize,
}

impl Snapshot {
    /// The same panel, whenever it was read.
    pub fn same(&self, other: &Snapshot) -> bool {
        self.views_last_minutes == other.views_last_minutes
            && self.pages_now == other.pages_now
            && self.window_minutes == other.window_minutes
    }
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct MinuteViews {
    pub minute: String,
    pub views: i64,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PageNow {
    pub page: String,
    pub title: Option<String>,
    pub views: i64,
}

/// The minute documents covering the [`MINUTES`] minutes up to `now`, oldest first: the UTC
/// minute each stands for, its collection and its id (the site's local minute). When a clock
/// falls back, one local minute's document holds two real minutes (both passes); no zone falls
/// back by less than 30 minutes, so no id appears twice in a window (one that did would be
/// counted once).
fn minutes(site: &Site, now: DateTime<Utc>) -> Vec<(DateTime<Utc>, String, String)> {
    let start = now.timestamp().div_euclid(60) * 60;
    (0..MINUTES as i64)
        .rev()
        .map(|back| {
            let at = DateTime::from_timestamp(start - back * 60, 0).unwrap_or(now);
            let local = LocalTime::at(at, site.tz);
            (
                at,
                ReportKind::Live.collection(local.year),
                document_id(&site.id, local.minute_period()),
            )
        })
        .collect()
}

/// Reads the live panel of `site` at `now` from its minute documents.
pub async fn snapshot(
    store: &dyn Store,
    site: &Site,
    now: DateTime<Utc>,
) -> Result<Snapshot, StoreError> {
    let slots = minutes(site, now);
    let mut by_collection: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (_, collection, id) in &slots {
        let ids = by_collection.entry(collection).or_default();
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    let mut docs: HashMap<String, Document> = HashMap::new();
    for (collection, ids) in by_collection {
        for doc in store.get_many(collection, &ids).await? {
            if let Ok(id) = doc.get_str("_id") {
                docs.insert(id.to_owned(), doc);
            }
        }
    }
    let mut seen: HashSet<&str> = HashSet::new();
    let mut views_last_minutes = Vec::with_capacity(MINUTES);
    // page → (views, latest title), the newest minute's title winning.
    let mut pages: HashMap<String, (i64, Option<String>)> = HashMap::new();
    for (i, (at, _, id)) in slots.iter().enumerate() {
        // A document standing for two real minutes is counted once, at the first.
        let view = match docs.get(id) {
            Some(doc) if seen.insert(id) => LiveReport::read(doc),
            _ => Default::default(),
        };
        views_last_minutes.push(MinuteViews {
            minute: at.format("%Y-%m-%dT%H:%MZ").to_string(),
            views: view.views,
        });
        if i + PAGE_MINUTES < slots.len() {
            continue;
        }
        for entry in view.pages.entries {
            let e = pages.entry(entry.key).or_default();
            e.0 += entry.views;
            if entry.title.is_some() {
                e.1 = entry.title;
            }
        }
    }
    let mut pages_now: Vec<PageNow> = pages
        .into_iter()
        .map(|(page, (views, title))| PageNow { page, title, views })
        .collect();
    pages_now.sort_by(|a, b| b.views.cmp(&a.views).then_with(|| a.page.cmp(&b.page)));
    pages_now.truncate(TOP_PAGES);
    Ok(Snapshot {
        at: now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        views_last_minutes,
        pages_now,
        window_minutes: PAGE_MINUTES,
    })
}

/// The polls of the sites followed on this node.
pub struct Live {
    store: Arc<dyn Store>,
    clock: Clock,
    every: Duration,
    polls: Mutex<HashMap<SiteId, Weak<Poll>>>,
}

/// One site's poll: runs while a [`Subscription`] holds it.
struct Poll {
    latest: watch::Receiver<Option<Arc<Snapshot>>>,
    task: tokio::task::AbortHandle,
}

impl Drop for Poll {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A follower of one site's live panel: [`Subscription::changed`] waits for the next
/// snapshot that differs from the last one published.
pub struct Subscription {
    _poll: Arc<Poll>,
    latest: watch::Receiver<Option<Arc<Snapshot>>>,
}

impl Subscription {
    /// The next published snapshot (at once if one was published since the last call);
    /// `None` if the poll has stopped.
    pub async fn changed(&mut self) -> Option<Arc<Snapshot>> {
        loop {
            self.latest.changed().await.ok()?;
            if let Some(s) = self.latest.borrow_and_update().clone() {
                return Some(s);
            }
        }
    }
}

impl Live {
    /// Polls every `every` (at least 100 ms) with the time `clock` gives.
    pub fn new(store: Arc<dyn Store>, clock: Clock, every: Duration) -> Live {
        Live {
            store,
            clock,
            every: every.max(Duration::from_millis(100)),
            polls: Mutex::default(),
        }
    }

    /// The live panel of `site` now, read from the store.
    pub async fn snapshot(&self, site: &Site) -> Result<Snapshot, StoreError> {
        snapshot(self.store.as_ref(), site, (self.clock)()).await
    }

    /// Follows `site`: joins its poll, or starts one. Must be called within a tokio runtime.
    pub fn subscribe(&self, site: Arc<Site>) -> Subscription {
        let mut polls = self.polls.lock().unwrap_or_else(|e| e.into_inner());
        polls.retain(|_, poll| poll.strong_count() > 0);
        let poll = match polls.get(&site.id).and_then(Weak::upgrade) {
            Some(poll) => poll,
            None => {
                let poll = Arc::new(self.start(Arc::clone(&site)));
                polls.insert(site.id.clone(), Arc::downgrade(&poll));
                poll
            }
        };
        let mut latest = poll.latest.clone();
        latest.mark_unchanged();
        Subscription {
            _poll: poll,
            latest,
        }
    }

    /// Sites polled now (for tests and metrics).
    pub fn polled(&self) -> usize {
        let polls = self.polls.lock().unwrap_or_else(|e| e.into_inner());
        polls.values().filter(|p| p.strong_count() > 0).count()
    }

    fn start(&self, site: Arc<Site>) -> Poll {
        let (tx, latest) = watch::channel(None::<Arc<Snapshot>>);
        let (store, clock, every) = (Arc::clone(&self.store), Arc::clone(&self.clock), self.every);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match snapshot(store.as_ref(), &site, clock()).await {
                    Ok(s) => {
                        tx.send_if_modified(|current| {
                            if current.as_ref().is_some_and(|c| c.same(&s)) {
                                return false;
                            }
                            *current = Some(Arc::new(s));
                            true
                        });
                    }
                    Err(e) => {
                        tracing::debug!(site = %site.id, error = %e, "live: poll failed; next one soon")
                    }
                }
            }
        });
        Poll {
            latest,
            task: task.abort_handle(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn site(tz: &str) -> Site {
        Site {
            id: SiteId::parse("acme").unwrap(),
            tz: tz.parse().unwrap(),
            name: "acme".into(),
            hosts: Vec::new(),
            keep_params: Vec::new(),
            created_at: Utc::now(),
            tokens: Vec::new(),
            public: true,
            honor_dnt: false,
        }
    }

    #[test]
    fn thirty_minutes_of_local_minute_documents_in_their_years_collections() {
        // 2027-01-01 00:10 in Berlin: the window reaches back into last year's collection.
        let now = Utc.with_ymd_and_hms(2026, 12, 31, 23, 10, 42).unwrap();
        let m = minutes(&site("Europe/Berlin"), now);
        assert_eq!(m.len(), MINUTES);
        assert_eq!(
            m[0].0,
            Utc.with_ymd_and_hms(2026, 12, 31, 22, 41, 0).unwrap()
        );
        assert_eq!(m[0].1, "live.2026");
        assert_eq!(m[0].2, "acme:2026-12-31T23:41");
        assert_eq!(m[29].1, "live.2027");
        assert_eq!(m[29].2, "acme:2027-01-01T00:10");
    }

    #[test]
    fn a_clock_falling_back_never_names_a_document_twice_in_a_window() {
        // New York falls back at 06:00 UTC on 2024-11-03: 01:00-01:59 happens twice. Half an
        // hour never holds both passes of a minute.
        let ny = site("America/New_York");
        let now = Utc.with_ymd_and_hms(2024, 11, 3, 6, 10, 0).unwrap();
        let ids: Vec<String> = minutes(&ny, now).into_iter().map(|(_, _, id)| id).collect();
        assert_eq!(ids[0], "acme:2024-11-03T01:41");
        assert_eq!(ids[29], "acme:2024-11-03T01:10");
        let distinct: HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), MINUTES);
    }

    #[tokio::test]
    async fn one_poll_per_site_pushes_changes_to_every_follower_and_stops_with_the_last() {
        use crate::field::FieldKey;
        use crate::store::{embedded::EmbeddedStore, Batch, CollectionBatch, DocUpdate};
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).await.unwrap());
        // 14:05 in Berlin.
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 13, 5, 10).unwrap();
        let live = Live::new(Arc::clone(&store), Arc::new(move || now), Duration::ZERO);
        let acme = Arc::new(site("Europe/Berlin"));
        let mut one = live.subscribe(Arc::clone(&acme));
        let mut two = live.subscribe(Arc::clone(&acme));
        assert_eq!(live.polled(), 1);
        let wait = |s: &'static str| move |_| panic!("{s}");
        let first = tokio::time::timeout(Duration::from_secs(2), one.changed())
            .await
            .unwrap_or_else(wait("a first snapshot"))
            .unwrap();
        assert!(first.views_last_minutes.iter().all(|m| m.views == 0));
        let write = |views: i64| {
            let store = Arc::clone(&store);
            async move {
                let batch = Batch {
                    collections: vec![CollectionBatch {
                        collection: "live.2026".into(),
                        docs: vec![DocUpdate {
                            id: "acme:2026-11-23T14:05".into(),
                            inc: vec![(FieldKey::parse("v").unwrap(), views)],
                            ..DocUpdate::default()
                        }],
                    }],
                };
                assert!(store.apply(&batch).await.failed.is_empty());
            }
        };
        write(3).await;
        for follower in [&mut one, &mut two] {
            let s = tokio::time::timeout(Duration::from_secs(2), follower.changed())
                .await
                .unwrap_or_else(wait("the change pushed"))
                .unwrap();
            assert_eq!(s.views_last_minutes.last().unwrap().views, 3);
        }
        // Nothing changed: nothing pushed.
        assert!(
            tokio::time::timeout(Duration::from_millis(400), one.changed())
                .await
                .is_err()
        );
        drop(one);
        assert_eq!(live.polled(), 1);
        drop(two);
        assert_eq!(live.polled(), 0);
    }
}
