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

use super::{
    Applied, Batch, CollectionBatch, CollectionStats, Failed, Store, StoreError, DUPLICATE_KEY,
    MARKS, SITES,
};
use crate::site::Site;
use async_trait::async_trait;
use mongodb::bson::{doc, Bson, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::ClientOptions;
use mongodb::{Client, Database};
use std::collections::{BTreeMap, BTreeSet};
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
        })
    }

    /// At most `n` statements per `update` command (1 to [`MAX_STATEMENTS`]). MongoDB needs no
    /// limit below its own; FerretDB v1 on SQLite does: it keeps a cursor open for every
    /// statement that matched a document until the command ends, and an update command with
    /// as many such statements as its connection pool holds (100) waits for a connection
    /// forever. Seen with the ingest benchmark's 100 sites; 50 avoids it.
    pub fn with_max_statements(mut self, n: usize) -> MongoStore {
        self.max_statements = n.clamp(1, MAX_STATEMENTS);
        self
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_ms.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// `aggregate([{$collStats: {storageStats: {}}}])`, summed over its results (one per shard).
    async fn coll_stats_stage(&self, collection: &str) -> Result<CollectionStats, StoreError> {
        let mut cursor = self
            .db
            .collection::<Document>(collection)
            .aggregate(vec![doc! {"$collStats": {"storageStats": {}}}])
            .await?;
        let mut stats = CollectionStats::default();
        while cursor.advance().await? {
            let result: Document = cursor.deserialize_current()?;
            let storage = result.get_document("storageStats").ok();
            stats.documents += count(storage.and_then(|s| s.get("count")));
            stats.bytes += count(storage.and_then(|s| s.get("size")));
        }
        Ok(stats)
    }

    /// The `collStats` command (deprecated in MongoDB 6.2, still answered; FerretDB v1 has it).
    async fn coll_stats_command(&self, collection: &str) -> Result<CollectionStats, StoreError> {
        let reply = self.db.run_command(doc! {"collStats": collection}).await?;
        Ok(CollectionStats {
            documents: count(reply.get("count")),
            bytes: count(reply.get("size")),
        })
    }

    /// Sends one collection's statements `range` as one `update` command and reads what
    /// became of each. When the reply does not account for every statement (FerretDB v1, see
    /// [`accounts_for_every_statement`]), the server stopped at the first statement it refused
    /// and applied none after it; the marks tell which were applied ([`MongoStore::locate`]).
    async fn update(
        &self,
        ci: usize,
        coll: &CollectionBatch,
        range: std::ops::Range<usize>,
        applied: &mut Applied,
    ) {
        let mut left: Vec<usize> = range.collect();
        while !left.is_empty() {
            let mut once = Applied::default();
            self.update_once(ci, coll, &left, &mut once).await;
            applied.commands += once.commands;
            applied
                .write_concern_errors
                .extend(once.write_concern_errors);
            if !once.unaccounted || left.len() == 1 {
                applied.failed.extend(once.failed);
                return;
            }
            let reported = once.failed.into_iter().next();
            left = self.locate(ci, coll, left, reported, applied).await;
        }
    }

    /// After a reply that stopped at a refused statement without saying which: reads the marks
    /// of `sent` (one `find`). A statement whose document carries its mark was applied (now, or
    /// by an earlier send of the same flush). If the first statement sent is not applied, it is
    /// the one the server refused (`reported` is its error); otherwise the server stopped at a
    /// statement applied by an earlier send (refused as a duplicate) or at a later one, and the
    /// statements not applied go again as one command, the refused one first. Returns what is
    /// left to send. Statements without a mark cannot be told apart: they go one by one.
    async fn locate(
        &self,
        ci: usize,
        coll: &CollectionBatch,
        sent: Vec<usize>,
        reported: Option<Failed>,
        applied: &mut Applied,
    ) -> Vec<usize> {
        let (error, code) = reported
            .map(|f| (f.error, f.code))
            .unwrap_or_else(|| ("write error".to_owned(), None));
        if sent.iter().any(|&i| coll.docs[i].mark.is_none()) {
            for i in sent {
                Box::pin(self.update(ci, coll, i..i + 1, applied)).await;
            }
            return Vec::new();
        }
        let ids: Vec<String> = sent.iter().map(|&i| coll.docs[i].id.clone()).collect();
        let docs = match self
            .find_ids(&coll.collection, &ids, Some(doc! {MARKS: 1}))
            .await
        {
            Ok(docs) => docs,
            Err(e) => {
                // Unknown which applied: all failed without a code (transient), sent again marked.
                let error = format!("{error}; then the marks could not be read: {e}");
                for i in sent {
                    applied
                        .failed
                        .extend(Batch::fail_collection(ci, i..i + 1, &error));
                }
                return Vec::new();
            }
        };
        let applied_in = |i: usize| {
            let update = &coll.docs[i];
            docs.iter()
                .find(|d| d.get_str("_id") == Ok(update.id.as_str()))
                .is_some_and(|d| update.mark.as_ref().is_some_and(|m| m.applied_in(d)))
        };
        let mut unapplied: Vec<usize> = sent.iter().copied().filter(|&i| !applied_in(i)).collect();
        if unapplied.first() == sent.first() {
            if let Some(first) = unapplied.first().copied() {
                unapplied.remove(0);
                applied.failed.push(Failed {
                    collection: ci,
                    doc: first,
                    error,
                    code,
                });
            }
        }
        unapplied
    }

    async fn update_once(
        &self,
        ci: usize,
        coll: &CollectionBatch,
        idx: &[usize],
        applied: &mut Applied,
    ) {
        let updates: Vec<Document> = idx.iter().map(|&i| statement(&coll.docs[i])).collect();
        let command = doc! {"update": &coll.collection, "updates": updates, "ordered": false};
        applied.commands += 1;
        let limit = self.call_timeout();
        let reply = match tokio::time::timeout(limit, self.db.run_command(command)).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                let error = e.to_string();
                for &i in idx {
                    applied
                        .failed
                        .extend(Batch::fail_collection(ci, i..i + 1, &error));
                }
                return;
            }
            Err(_) => {
                // Outcome unknown (the server may still apply it): owed, sent again marked.
                let error = StoreError::TimedOut(limit).to_string();
                for &i in idx {
                    applied
                        .failed
                        .extend(Batch::fail_collection(ci, i..i + 1, &error));
                }
                return;
            }
        };
        if let Ok(errors) = reply.get_array("writeErrors") {
            applied.unaccounted = !accounts_for_every_statement(&reply, errors.len(), idx.len());
            for e in errors.iter().filter_map(Bson::as_document) {
                let index = crate::model::number(e.get("index")) as usize;
                let error = format!(
                    "code {}: {}",
                    crate::model::number(e.get("code")),
                    e.get_str("errmsg").unwrap_or("write error")
                );
                if let Some(&doc) = idx.get(index) {
                    applied.failed.push(Failed {
                        collection: ci,
                        doc,
                        error,
                        code: Some(crate::model::number(e.get("code"))),
                    });
                }
            }
        }
        if let Ok(wce) = reply.get_document("writeConcernError") {
            applied.write_concern_errors.push(format!(
                "{}: {}",
                coll.collection,
                wce.get_str("errmsg").unwrap_or("write concern error")
            ));
        }
    }
}

/// Whether an `update` reply with `errors` write errors says what became of each of its
/// `statements`. MongoDB runs an unordered command to the end, so every statement either matched
/// or upserted one document (counted in `n`) or has a write error: `n + errors = statements`.
/// FerretDB v1 stops at the first failing statement, applies none after it, and reports that
/// one error at index 0 whatever its position, without `n`: then the sum falls short and no
/// index in the reply can be believed.
fn accounts_for_every_statement(reply: &Document, errors: usize, statements: usize) -> bool {
    let n = crate::model::number(reply.get("n")).max(0) as usize;
    n + errors == statements
}

/// A statistic as a count: servers answer int32, int64 or double; anything else is 0.
fn count(value: Option<&Bson>) -> u64 {
    crate::model::number(value).max(0) as u64
}

/// One upsert statement of an `update` command.
fn statement(d: &super::DocUpdate) -> Document {
    let mut q = doc! {"_id": &d.id};
    if let Some(guard) = &d.guard {
        q.insert(guard.field.as_str(), doc! {"$not": {"$gt": guard.max}});
    }
    if let Some(mark) = &d.mark {
        q.insert(mark.field(), doc! {"$not": {"$gte": mark.seq}});
    }
    let mut u = Document::new();
    if !d.inc.is_empty() {
        let mut inc = Document::new();
        for (field, by) in &d.inc {
            inc.insert(field.as_str(), Bson::Int64(*by));
        }
        u.insert("$inc", inc);
    }
    if !d.set.is_empty() || d.mark.is_some() {
        let mut set = Document::new();
        for (field, text) in &d.set {
            set.insert(field.as_str(), text.as_str());
        }
        if let Some(mark) = &d.mark {
            set.insert(mark.field(), Bson::Int64(mark.seq));
        }
        u.insert("$set", set);
    }
    if !d.unset.is_empty() {
        let mut unset = Document::new();
        for writer in &d.unset {
            unset.insert(format!("{MARKS}.{writer}"), "");
        }
        u.insert("$unset", unset);
    }
    doc! {"q": q, "u": u, "upsert": true}
}

impl MongoStore {
    /// Sorts out the statements refused with a duplicate-key error whose document already
    /// carries their mark: they were applied by an earlier send of the same flush (whose reply
    /// was lost), so they move from `failed` to `duplicates`. The others stay failed: a full
    /// capped document refused them, or another process created the document first (the next
    /// flush sends them again). One `find` per collection, for the few statements concerned.
    async fn sort_duplicates(&self, batch: &Batch, applied: &mut Applied) {
        let mut suspects: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, f) in applied.failed.iter().enumerate() {
            let update = &batch.collections[f.collection].docs[f.doc];
            if f.code == Some(DUPLICATE_KEY) && update.mark.is_some() {
                suspects.entry(f.collection).or_default().push(i);
            }
        }
        let mut done = BTreeSet::new();
        for (ci, failures) in suspects {
            let coll = &batch.collections[ci];
            let ids: Vec<String> = failures
                .iter()
                .map(|&i| coll.docs[applied.failed[i].doc].id.clone())
                .collect();
            let Ok(docs) = self
                .find_ids(&coll.collection, &ids, Some(doc! {MARKS: 1}))
                .await
            else {
                // Unknown whether applied: failed without a code, so they are sent again as
                // they are (marked), never merged into newer increments.
                for &i in &failures {
                    applied.failed[i].code = None;
                }
                continue;
            };
            for i in failures {
                let update = &coll.docs[applied.failed[i].doc];
                let stored = docs
                    .iter()
                    .find(|d| d.get_str("_id") == Ok(update.id.as_str()));
                if let (Some(mark), Some(stored)) = (&update.mark, stored) {
                    if mark.applied_in(stored) {
                        done.insert(i);
                    }
                }
            }
        }
        let mut i = 0;
        applied.failed.retain(|f| {
            let keep = !done.contains(&i);
            if !keep {
                applied.duplicates.push((f.collection, f.doc));
            }
            i += 1;
            keep
        });
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

/// Splits `coll`'s statements into runs that fit one command.
fn chunks(coll: &CollectionBatch, max_statements: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, d) in coll.docs.iter().enumerate() {
        let size = 64
            + d.id.len()
            + d.inc
                .iter()
                .map(|(f, _)| f.as_str().len() + 10)
                .sum::<usize>()
            + d.set
                .iter()
                .map(|(f, t)| f.as_str().len() + t.len() + 8)
                .sum::<usize>();
        if i > start && (i - start >= max_statements || bytes + size > MAX_COMMAND_BYTES) {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < coll.docs.len() {
        out.push(start..coll.docs.len());
    }
    out
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
            .map(|c| chunks(c, self.max_statements).len() + 1)
            .sum()
    }

    async fn apply(&self, batch: &Batch) -> Applied {
        let mut applied = Applied::default();
        // Once a command failed as a whole (no reply, no server, timed out), the store is
        // away: the rest of the batch fails at once, owed like it, instead of each command
        // waiting a server selection or a timeout of its own.
        let mut away: Option<String> = None;
        for (ci, coll) in batch.collections.iter().enumerate() {
            for range in chunks(coll, self.max_statements) {
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
    use crate::field::FieldKey;
    use crate::store::DocUpdate;

    fn batch(docs: usize, fields: usize) -> CollectionBatch {
        CollectionBatch {
            collection: "traffic.2011".into(),
            docs: (0..docs)
                .map(|i| DocUpdate {
                    id: format!("s{i}:2011"),
                    inc: (0..fields)
                        .map(|f| (FieldKey::parse(&format!("f{f}")).unwrap(), 1))
                        .collect(),
                    ..DocUpdate::default()
                })
                .collect(),
        }
    }

    fn assert_covers(coll: &CollectionBatch, ranges: &[std::ops::Range<usize>]) {
        let mut next = 0;
        for r in ranges {
            assert_eq!(r.start, next);
            assert!(r.len() <= MAX_STATEMENTS && !r.is_empty());
            next = r.end;
        }
        assert_eq!(next, coll.docs.len());
    }

    #[test]
    fn chunks_respect_a_smaller_statement_limit() {
        let ranges = chunks(&batch(120, 1), 50);
        assert_eq!(ranges, vec![0..50, 50..100, 100..120]);
    }

    #[test]
    fn chunks_respect_the_statement_limit() {
        let coll = batch(MAX_STATEMENTS * 2 + 5, 1);
        let ranges = chunks(&coll, MAX_STATEMENTS);
        assert_covers(&coll, &ranges);
        assert!(ranges.len() >= 3);
        assert!(chunks(&batch(0, 1), MAX_STATEMENTS).is_empty());
        assert_eq!(chunks(&batch(3, 1), MAX_STATEMENTS), vec![0..3]);
    }

    #[test]
    fn chunks_respect_the_size_limit() {
        // 2,000 documents of 1,000 fields each: ~16 MB of statements.
        let coll = batch(2_000, 1_000);
        let ranges = chunks(&coll, MAX_STATEMENTS);
        assert_covers(&coll, &ranges);
        assert!(ranges.len() >= 2, "{ranges:?}");
    }
}
