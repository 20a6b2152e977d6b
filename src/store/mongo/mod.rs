//! MongoDB: each flush is one `update` command per collection, many upserts per command.
//!
//! A collection's share of a batch goes out as
//! `{update: <coll>, updates: [{q: {_id}, u: {$inc: {...}, $set: {...}}, upsert: true}, ...],
//! ordered: false}` (split only past the server's limits: [`MAX_STATEMENTS`] statements or
//! [`MAX_COMMAND_BYTES`]). A guarded statement (a capped document admitting new keys) adds
//! `n: {$not: {$gt: max}}` to its filter: when the document is full the filter does not match,
//! the upsert tries to insert a second document with the same `_id`, and the server refuses it
//! with a duplicate-key error, which changes nothing.
//! The driver answers `Ok` even when the reply carries `writeErrors` or a `writeConcernError`,
//! so the reply is read here: each write error names the statement that failed (for example a
//! duplicate-key error from two trackers racing to upsert the same new document), which is
//! reported back with its code, so the flusher can keep it or park it
//! ([`super::classify`]). A command that fails as a whole (network, server down) reports all
//! its statements failed, without a code. FerretDB v1 stops at the first write error and does
//! not say where; [`MongoStore::locate`] finds it from the marks.
//!
//! Ageing data out is `deleteMany` on an `_id` range (the `_id` index, never a collection
//! scan) and `drop` of whole collections.
//!
//! Every statement of a flush also carries the flush's mark (see [`super::Mark`]):
//! `"_w.<writer>": {$not: {$gte: seq}}` in its filter and `$set` of it. A statement sent again
//! after it was applied matches nothing and is refused with a duplicate-key error like a full
//! capped document; [`MongoStore::apply`] then reads the marks of the refused documents to tell
//! "already applied" from "refused".
//!
//! A collection's size comes from the server's statistics, never from reading it: the
//! `$collStats` stage (`storageStats.count`, `storageStats.size`; one result per shard, summed),
//! or, where that stage is missing or refused, the older `collStats` command (`count`, `size`).
//!
//! Layout: `command` shapes the statements and splits them into commands, `write` sends
//! them and reads the replies, `locate` tells from the marks what a reply could not say, and
//! `stats` reads a collection's size. This file holds the client and the [`Store`] calls.

mod command;
mod locate;
mod stats;
mod write;

use command::chunks;

use super::{Applied, Batch, CollectionStats, Store, StoreError, SITES};
use crate::site::Site;
use async_trait::async_trait;
use mongodb::bson::{doc, Bson, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::ClientOptions;
use mongodb::{Client, Database};
use std::time::Duration;

/// MongoDB's `maxWriteBatchSize`.
pub const MAX_STATEMENTS: usize = 100_000;
/// Commands are split well below MongoDB's 16 MiB document limit.
pub const MAX_COMMAND_BYTES: usize = 8 * 1024 * 1024;
/// Used when the connection string does not set `serverSelectionTimeoutMS`: short, so a flush
/// against a server that is down fails (and is retried) within seconds instead of 30.
const SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct MongoStore {
    db: Database,
    /// Statements per `update` command, at most [`MAX_STATEMENTS`] (`--mongodb-batch`).
    max_statements: usize,
    /// The bound on one call, in ms ([`Store::limit_calls`]).
    call_ms: std::sync::atomic::AtomicU64,
    /// Statements per command for now: at most `max_statements`, halved after a command timed
    /// out and grown by one after each command answered ([`MongoStore::fit`]).
    fit: std::sync::atomic::AtomicUsize,
}

/// The bound on one call until [`Store::limit_calls`] sets it: the flusher's default.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

impl MongoStore {
    /// Parses the connection string and prepares a client; the first command connects.
    pub async fn connect(uri: &str, database: &str) -> Result<MongoStore, StoreError> {
        let mut options = ClientOptions::parse(uri).await?;
        options
            .server_selection_timeout
            .get_or_insert(SERVER_SELECTION_TIMEOUT);
        options.connect_timeout.get_or_insert(CONNECT_TIMEOUT);
        options.app_name.get_or_insert_with(|| "tally".to_owned());
        let client = Client::with_options(options)?;
        Ok(MongoStore {
            db: client.database(database),
            max_statements: MAX_STATEMENTS,
            call_ms: (CALL_TIMEOUT.as_millis() as u64).into(),
            fit: MAX_STATEMENTS.into(),
        })
    }

    /// At most `n` statements per `update` command (1 to [`MAX_STATEMENTS`]). MongoDB needs no
    /// limit below its own; FerretDB v1 on SQLite does: it keeps a cursor open for every
    /// statement that matched a document until the command ends, and an update command with
    /// as many such statements as its connection pool holds (100) waits for a connection
    /// forever. Seen with the ingest benchmark's 100 sites; 50 avoids it.
    pub fn with_max_statements(mut self, n: usize) -> MongoStore {
        self.max_statements = n.clamp(1, MAX_STATEMENTS);
        *self.fit.get_mut() = self.max_statements;
        self
    }

    /// Statements per command for now. A command's time grows with what it asks (FerretDB v1
    /// rewrites each document it updates whole, so a command of ten people sketches of 4,096
    /// fields takes about a second on a busy 2-core machine), and a command that always takes
    /// longer than the call bound would be sent again, and time out again, forever: after a
    /// timeout the next commands carry half as many statements (down to one), and each command
    /// answered lets one more in, up to `--mongodb-batch`.
    pub(super) fn fit(&self) -> usize {
        self.fit.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A command of `statements` timed out: the next ones carry half as many.
    pub(super) fn timed_out(&self, statements: usize) {
        let half = (statements / 2).max(1);
        self.fit
            .fetch_min(half, std::sync::atomic::Ordering::Relaxed);
    }

    /// A command answered: one more statement fits, up to the limit.
    pub(super) fn answered(&self) {
        let _ = self.fit.fetch_update(
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
            |n| (n < self.max_statements).then_some(n + 1),
        );
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_ms.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The documents of `ids` that exist, whole or with a projection, in one `find`.
    async fn find_ids(
        &self,
        collection: &str,
        ids: &[String],
        projection: Option<Document>,
    ) -> Result<Vec<Document>, StoreError> {
        let limit = self.call_timeout();
        let find = async {
            let mut cursor = self
                .db
                .collection::<Document>(collection)
                .find(doc! {"_id": {"$in": ids}})
                .with_options(
                    mongodb::options::FindOptions::builder()
                        .projection(projection)
                        .build(),
                )
                .await?;
            let mut out = Vec::with_capacity(ids.len());
            while cursor.advance().await? {
                out.push(cursor.deserialize_current()?);
            }
            Ok(out)
        };
        tokio::time::timeout(limit, find)
            .await
            .unwrap_or(Err(StoreError::TimedOut(limit)))
    }
}

#[async_trait]
impl Store for MongoStore {
    fn kind(&self) -> &'static str {
        "mongodb"
    }

    fn limit_calls(&self, timeout: Duration) {
        self.call_ms.store(
            timeout.as_millis().max(1) as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// An `update` per chunk, and a `find` per collection to sort out duplicates.
    fn calls(&self, batch: &Batch) -> usize {
        batch
            .collections
            .iter()
            .map(|c| chunks(c, self.fit()).len() + 1)
            .sum()
    }

    async fn apply(&self, batch: &Batch) -> Applied {
        let mut applied = Applied::default();
        // Once a command failed as a whole (no reply, no server, timed out), the store is
        // away: the rest of the batch fails at once, owed like it, instead of each command
        // waiting a server selection or a timeout of its own.
        let mut away: Option<String> = None;
        for (ci, coll) in batch.collections.iter().enumerate() {
            for range in chunks(coll, self.fit()) {
                if let Some(error) = &away {
                    applied
                        .failed
                        .extend(Batch::fail_collection(ci, range, error));
                    continue;
                }
                let failed_before = applied.failed.len();
                self.update(ci, coll, range.clone(), &mut applied).await;
                let whole = applied.failed.len() - failed_before == range.len()
                    && applied.failed[failed_before..]
                        .iter()
                        .all(|f| f.code.is_none());
                if whole {
                    away = Some(applied.failed[failed_before].error.clone());
                }
            }
        }
        self.sort_duplicates(batch, &mut applied).await;
        applied
    }

    async fn get(&self, collection: &str, id: &str) -> Result<Option<Document>, StoreError> {
        Ok(self
            .db
            .collection::<Document>(collection)
            .find_one(doc! {"_id": id})
            .await?)
    }

    async fn get_many_raw(
        &self,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<mongodb::bson::RawDocumentBuf>, StoreError> {
        let limit = self.call_timeout();
        let find = async {
            let mut cursor = self
                .db
                .collection::<mongodb::bson::RawDocumentBuf>(collection)
                .find(doc! {"_id": {"$in": ids}})
                .await?;
            let mut out = Vec::with_capacity(ids.len());
            while cursor.advance().await? {
                out.push(cursor.current().to_raw_document_buf());
            }
            Ok(out)
        };
        tokio::time::timeout(limit, find)
            .await
            .unwrap_or(Err(StoreError::TimedOut(limit)))
    }

    async fn get_many(
        &self,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<Document>, StoreError> {
        self.find_ids(collection, ids, None).await
    }

    async fn get_many_fields(
        &self,
        collection: &str,
        ids: &[String],
        fields: &[&str],
    ) -> Result<Vec<Document>, StoreError> {
        let mut projection = Document::new();
        for f in fields {
            projection.insert(*f, 1);
        }
        self.find_ids(collection, ids, Some(projection)).await
    }

    async fn scan(
        &self,
        collection: &str,
        from_id: &str,
        to_id: &str,
        fields: &[&str],
        limit: usize,
    ) -> Result<Vec<Document>, StoreError> {
        let projection = (!fields.is_empty()).then(|| {
            let mut p = Document::new();
            for f in fields {
                p.insert(*f, 1);
            }
            p
        });
        let mut cursor = self
            .db
            .collection::<Document>(collection)
            .find(doc! {"_id": {"$gte": from_id, "$lt": to_id}})
            .with_options(
                mongodb::options::FindOptions::builder()
                    .projection(projection)
                    .sort(doc! {"_id": 1})
                    .limit(i64::try_from(limit).unwrap_or(i64::MAX))
                    .build(),
            )
            .await?;
        let mut out = Vec::new();
        while cursor.advance().await? {
            out.push(cursor.deserialize_current()?);
        }
        Ok(out)
    }

    async fn replace_if(
        &self,
        collection: &str,
        doc: &Document,
        expected: Option<i64>,
    ) -> Result<bool, StoreError> {
        let coll = self.db.collection::<Document>(collection);
        let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
        match expected {
            None => match coll.insert_one(doc).await {
                Ok(_) => Ok(true),
                Err(e) => match *e.kind {
                    ErrorKind::Write(WriteFailure::WriteError(ref w)) if w.code == 11000 => {
                        Ok(false)
                    }
                    _ => Err(e.into()),
                },
            },
            Some(rev) => {
                let result = coll.replace_one(doc! {"_id": id, "rev": rev}, doc).await?;
                Ok(result.matched_count == 1)
            }
        }
    }

    async fn update_site(&self, site: &Site) -> Result<(), StoreError> {
        let result = self
            .db
            .collection::<Document>(SITES)
            .replace_one(doc! {"_id": site.id.as_str()}, site.to_document())
            .await?;
        if result.matched_count == 0 {
            return Err(StoreError::NoSuchSite(site.id.to_string()));
        }
        Ok(())
    }

    async fn insert_site(&self, site: &Site) -> Result<(), StoreError> {
        match self
            .db
            .collection::<Document>(SITES)
            .insert_one(site.to_document())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match *e.kind {
                ErrorKind::Write(WriteFailure::WriteError(ref w)) if w.code == 11000 => {
                    Err(StoreError::SiteExists(site.id.to_string()))
                }
                _ => Err(e.into()),
            },
        }
    }

    async fn sites(&self) -> Result<Vec<Site>, StoreError> {
        let mut cursor = self
            .db
            .collection::<Document>(SITES)
            .find(doc! {})
            .sort(doc! {"_id": 1})
            .await?;
        let mut sites = Vec::new();
        while cursor.advance().await? {
            let doc: Document = cursor.deserialize_current()?;
            sites.push(Site::from_document(&doc)?);
        }
        Ok(sites)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db.run_command(doc! {"ping": 1}).await?;
        Ok(())
    }

    async fn server_time(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
        let hello = self.db.run_command(doc! {"hello": 1}).await?;
        // MongoDB and FerretDB v1 both send `localTime`; a server that does not is not
        // compared with.
        Ok(hello
            .get_datetime("localTime")
            .ok()
            .and_then(|t| chrono::DateTime::from_timestamp_millis(t.timestamp_millis())))
    }

    async fn delete_range(
        &self,
        collection: &str,
        from_id: &str,
        to_id: &str,
    ) -> Result<u64, StoreError> {
        let result = self
            .db
            .collection::<Document>(collection)
            .delete_many(doc! {"_id": {"$gte": from_id, "$lt": to_id}})
            .await?;
        Ok(result.deleted_count)
    }

    async fn collections(&self) -> Result<Vec<String>, StoreError> {
        let mut names = self.db.list_collection_names().await?;
        names.sort();
        Ok(names)
    }

    async fn drop_collection(&self, collection: &str) -> Result<(), StoreError> {
        // The driver treats "ns not found" (an older server dropping a missing collection) as
        // success.
        self.db.collection::<Document>(collection).drop().await?;
        Ok(())
    }

    async fn collection_stats(&self, collection: &str) -> Result<CollectionStats, StoreError> {
        match self.coll_stats_stage(collection).await {
            Ok(stats) => Ok(stats),
            Err(stage) => {
                tracing::debug!(collection, error = %stage, "$collStats failed; trying collStats");
                self.coll_stats_command(collection).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_timed_out_command_halves_the_next_ones_and_answers_let_them_grow_back() {
        // No command is sent: the client connects on its first command.
        let store = MongoStore::connect("mongodb://127.0.0.1:9/", "t")
            .await
            .unwrap()
            .with_max_statements(10);
        assert_eq!(store.fit(), 10);
        store.timed_out(10);
        assert_eq!(store.fit(), 5);
        store.timed_out(5);
        store.timed_out(2);
        store.timed_out(1);
        assert_eq!(store.fit(), 1, "never below one");
        for _ in 0..20 {
            store.answered();
        }
        assert_eq!(store.fit(), 10, "never above --mongodb-batch");
        // A command smaller than the fit that timed out halves its own size.
        store.timed_out(4);
        assert_eq!(store.fit(), 2);
    }
}
