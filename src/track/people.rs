//! The per-site secrets the people sketches' visitor hashes are keyed with: one random key per
//! site and site-local year, kept in the store's `people_keys` collection (`_id:
//! "<site>:<YYYY>"`, `key`: 32 hex digits), held in memory for the hit path, never sent to a
//! client, never logged.
//!
//! [`refresh`] (at start and with every site refresh) creates the current local year's key of
//! every site when it is missing (and the next year's in the site's last two days of a year, so
//! the first hit of a new year finds it), loads the keys of the current and previous years, and
//! deletes older ones: a year's key lives until the year after it ends, then the hashes of that
//! year can no longer be recomputed by anyone. Creation is an insert-if-absent
//! ([`Store::replace_if`] with no expected revision), so nodes starting together agree on one
//! key: the loser reads the winner's. A hit whose year has no key loaded (possible only for a
//! hit with a client time in a year not loaded) does not feed the sketches.
//!
//! The hit path only reads ([`PeopleKeys::get`]); it must not await the store.

use crate::period::LocalTime;
use crate::reports::people::Key;
use crate::site::{Site, SiteId};
use crate::store::{Store, StoreError};
use mongodb::bson::doc;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The collection of the keys.
pub const PEOPLE_KEYS: &str = "people_keys";

/// The keys loaded, per site and site-local year.
#[derive(Default)]
pub struct PeopleKeys {
    keys: RwLock<Arc<Keys>>,
    /// `tally import` only: fetches a missing key (creating it), waiting for the store. A log
    /// holds hits of any past year; a server's hit path never waits and has none.
    fetch: Option<Fetch>,
}

/// A blocking fetch of the key of a site and year.
pub type Fetch = Box<dyn Fn(&SiteId, i32) -> Option<Key> + Send + Sync>;

/// Per site, its keys by year (two or three). foldhash: this map is read on every hit.
type Keys = HashMap<SiteId, Vec<(i32, Key)>, foldhash::fast::RandomState>;

impl PeopleKeys {
    /// The key of `site` for local `year`, when loaded (or, for an import, fetched).
    pub fn get(&self, site: &SiteId, year: i32) -> Option<Key> {
        let loaded = {
            let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
            keys.get(site)
                .and_then(|years| years.iter().find(|(y, _)| *y == year))
                .map(|(_, k)| k.clone())
        };
        if loaded.is_some() {
            return loaded;
        }
        let key = (self.fetch.as_ref()?)(site, year)?;
        self.insert(site, year, key.clone());
        Some(key)
    }

    /// Keys fetched from `store` when first needed, for `tally import` (see [`Fetch`]): the
    /// import's threads wait for the store once per site and year of the log.
    pub fn fetching(store: Arc<dyn Store>) -> PeopleKeys {
        let handle = tokio::runtime::Handle::current();
        let fetch = move |site: &SiteId, year: i32| {
            let run = || {
                handle.block_on(async {
                    let keys = PeopleKeys::default();
                    match keys.ensure(store.as_ref(), site, year).await {
                        Ok(()) => keys.get(site, year),
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot read or create a people key");
                            None
                        }
                    }
                })
            };
            // On a runtime thread (the import's own), step out of the runtime to wait.
            if tokio::runtime::Handle::try_current().is_ok() {
                tokio::task::block_in_place(run)
            } else {
                run()
            }
        };
        PeopleKeys {
            keys: RwLock::default(),
            fetch: Some(Box::new(fetch)),
        }
    }

    /// Holds `key` as `site`'s for `year` (tests and benchmarks load keys this way).
    pub fn insert(&self, site: &SiteId, year: i32, key: Key) {
        let mut guard = self.keys.write().unwrap_or_else(|e| e.into_inner());
        let mut map = Keys::clone(&guard);
        let years = map.entry(site.clone()).or_default();
        years.retain(|(y, _)| *y != year);
        years.push((year, key));
        *guard = Arc::new(map);
    }

    fn retain(&self, keep: impl Fn(&SiteId, i32) -> bool) {
        let mut guard = self.keys.write().unwrap_or_else(|e| e.into_inner());
        let mut map = Keys::clone(&guard);
        map.retain(|site, years| {
            years.retain(|(year, _)| keep(site, *year));
            !years.is_empty()
        });
        *guard = Arc::new(map);
    }

    /// Makes sure `site` has a key for local `year` (creating one if no process has) and
    /// holds it in memory.
    pub async fn ensure(
        &self,
        store: &dyn Store,
        site: &SiteId,
        year: i32,
    ) -> Result<(), StoreError> {
        if self.get(site, year).is_some() {
            return Ok(());
        }
        let id = format!("{site}:{year:04}");
        if let Some(key) = read_key(store, &id).await? {
            self.insert(site, year, key);
            return Ok(());
        }
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| StoreError::Task(e.to_string()))?;
        let created = doc! {"_id": &id, "key": hex::encode(bytes), "rev": 1_i64};
        if !store.replace_if(PEOPLE_KEYS, &created, None).await? {
            // Another process created it first: its key is the key.
            if let Some(key) = read_key(store, &id).await? {
                self.insert(site, year, key);
            }
            return Ok(());
        }
        self.insert(site, year, Key(bytes));
        Ok(())
    }
}

async fn read_key(store: &dyn Store, id: &str) -> Result<Option<Key>, StoreError> {
    let Some(doc) = store.get(PEOPLE_KEYS, id).await? else {
        return Ok(None);
    };
    let bytes = doc
        .get_str("key")
        .ok()
        .and_then(|k| hex::decode(k).ok())
        .and_then(|k| <[u8; 16]>::try_from(k).ok());
    match bytes {
        Some(bytes) => Ok(Some(Key(bytes))),
        None => Err(StoreError::Corrupt {
            collection: PEOPLE_KEYS.into(),
            id: id.into(),
            message: "no key of 32 hex digits".into(),
        }),
    }
}

/// Creates, loads and retires the keys of `sites` as of `now` (see the module docs).
pub async fn refresh(
    store: &dyn Store,
    keys: &PeopleKeys,
    sites: &[Arc<Site>],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    let mut current = HashMap::new();
    for site in sites {
        let local = LocalTime::at(now, site.tz);
        current.insert(site.id.clone(), local.year);
        if keys.get(&site.id, local.year).is_none() {
            // Once per site and year in each process: create or load this year's key, load
            // last year's, retire the ones before.
            keys.ensure(store, &site.id, local.year).await?;
            let last = format!("{}:{:04}", site.id, local.year - 1);
            if let Some(key) = read_key(store, &last).await? {
                keys.insert(&site.id, local.year - 1, key);
            }
            store
                .delete_range(PEOPLE_KEYS, &format!("{}:", site.id), &last)
                .await?;
        }
        let soon = LocalTime::at(now + chrono::TimeDelta::days(2), site.tz);
        if soon.year != local.year {
            keys.ensure(store, &site.id, soon.year).await?;
        }
    }
    keys.retain(|site, year| current.get(site).is_some_and(|y| year >= y - 1));
    Ok(())
}
