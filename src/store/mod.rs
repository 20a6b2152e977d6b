//! Where documents live: MongoDB ([`mongo`]) or the embedded SQLite store ([`embedded`]),
//! behind one small trait.
//!
//! Both hold the very same documents with the same `$inc`-upsert semantics, so everything
//! above this module (the flusher, the CLI, the read side, the tests) is written once. A store
//! applies a [`Batch`] of merged increments and says exactly which documents failed, so the
//! caller can keep and retry them. This module must not know about hits or reports.

pub mod embedded;
pub mod inc;
pub mod mongo;

use crate::field::FieldKey;
use crate::site::{MalformedSite, Site};
use async_trait::async_trait;
use mongodb::bson::Document;
use std::sync::Arc;

/// The collection holding one document per site.
pub const SITES: &str = "sites";

/// One document's update: `{_id: id}`, `$inc: {field: by, ...}`, `$set: {field: text, ...}`,
/// `$max: {field: value, ...}`, upsert; optionally guarded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DocUpdate {
    pub id: String,
    /// Sorted by field, each field once.
    pub inc: Vec<(FieldKey, i64)>,
    /// Text values to set (a page's latest title), sorted by field, none also in `inc`.
    pub set: Vec<(FieldKey, String)>,
    /// Values to raise to at least this (`$max`: registers of people sketches), sorted by
    /// field, none also in `inc` or `set`.
    pub max: Vec<(FieldKey, i64)>,
    pub guard: Option<Guard>,
    /// The flush that wrote this statement, recorded in the document (see [`Mark`]).
    pub mark: Option<Mark>,
    /// Marks of retired writers to remove (`$unset: {"_w.<writer>": ""}`), each a writer id
    /// (never the statement's own). Applied only with the rest of the statement: a statement
    /// its mark or guard refuses removes nothing, and removing a mark never changes a count.
    pub unset: Vec<String>,
}

/// The top-level field of a report document recording, per tally writer, the last flush it
/// applied there: `_w: {<writer>: <seq>}`.
pub const MARKS: &str = "_w";

/// Makes a statement idempotent. The update sets `_w.<writer>` to `seq` and applies only if the
/// document's `_w.<writer>` is below `seq` (or missing). Sending the same statement again (a
/// retry after a lost reply, or a replay of the durable log after a crash) changes nothing, and
/// the store reports it in [`Applied::duplicates`]. A writer's flushes are numbered in order and
/// a document never gets a newer flush of a writer before an older one of the same writer that
/// may still be pending (the flusher holds it back), so "below" is exact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// 12 lowercase hex digits: the writer's identity (a tally process or a durable log).
    pub writer: String,
    /// The flush's number, increasing per writer.
    pub seq: i64,
}

impl Mark {
    /// The dotted path of this writer's mark: `_w.<writer>`.
    pub fn field(&self) -> String {
        format!("{MARKS}.{}", self.writer)
    }

    /// Whether `doc` already carries this statement (its mark is at or past `seq`).
    pub fn applied_in(&self, doc: &Document) -> bool {
        doc.get_document(MARKS)
            .ok()
            .and_then(|marks| marks.get(&self.writer))
            .is_some_and(|seq| crate::model::number(Some(seq)) >= self.seq)
    }
}

/// Apply the update only if the existing document's `field` is at most `max` (a missing document
/// or field counts as 0). This is how a capped document refuses new keys once it is full, even
/// against other tally processes writing to it: MongoDB answers a refused upsert with a
/// duplicate-key error, the embedded store with [`GUARD_REFUSED`]; either way the statement is
/// reported failed and nothing of it is applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Guard {
    pub field: FieldKey,
    pub max: i64,
}

/// The embedded store's error for an update its [`Guard`] refused.
pub const GUARD_REFUSED: &str = "guard refused the update: the document is full";

/// One collection's share of a flush: becomes one `update` command.
#[derive(Clone, Debug, PartialEq)]
pub struct CollectionBatch {
    pub collection: String,
    pub docs: Vec<DocUpdate>,
}

/// Everything one flush writes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    pub collections: Vec<CollectionBatch>,
}

impl Batch {
    pub fn statements(&self) -> usize {
        self.collections.iter().map(|c| c.docs.len()).sum()
    }

    /// Every statement of the batch, marked failed with `error`.
    pub fn fail_all(&self, error: &str) -> Vec<Failed> {
        (0..self.collections.len())
            .flat_map(|ci| Self::fail_collection(ci, 0..self.collections[ci].docs.len(), error))
            .collect()
    }

    /// The statements `docs` of collection `ci`, marked failed with `error`.
    pub fn fail_collection(ci: usize, docs: std::ops::Range<usize>, error: &str) -> Vec<Failed> {
        docs.map(|di| Failed {
            collection: ci,
            doc: di,
            error: error.to_owned(),
            code: None,
        })
        .collect()
    }
}

/// A document whose increments were not applied and must be kept for the next flush.
#[derive(Clone, Debug, PartialEq)]
pub struct Failed {
    /// Index into [`Batch::collections`].
    pub collection: usize,
    /// Index into that collection's `docs`.
    pub doc: usize,
    pub error: String,
    /// The server's error code, when it answered one for this statement (11000: duplicate key).
    pub code: Option<i64>,
}

/// MongoDB's duplicate-key error code.
pub const DUPLICATE_KEY: i64 = 11000;

/// What a failed statement's outcome means for its increments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The store may take it later (unreachable, timed out, not primary, interrupted, a write
    /// conflict): sent again, marked, with backoff.
    Transient,
    /// The document refused it and sending it again cannot change that (a counter that is not a
    /// number, a validator, a document too large): its increments are parked.
    Permanent,
}

/// Server codes a statement's write error may carry that a later attempt can get past: the
/// server was stepping down, shutting down, interrupted, or two writers met. MongoDB's
/// `error_codes.yml`.
pub const TRANSIENT_CODES: &[i64] = &[
    6,     // HostUnreachable
    7,     // HostNotFound
    24,    // LockTimeout
    46,    // LockBusy
    50,    // MaxTimeMSExpired
    89,    // NetworkTimeout
    91,    // ShutdownInProgress
    112,   // WriteConflict
    117,   // ConflictingOperationInProgress
    133,   // FailedToSatisfyReadPreference
    134,   // ReadConcernMajorityNotAvailableYet
    189,   // PrimarySteppedDown
    262,   // ExceededTimeLimit
    9001,  // SocketException
    10107, // NotWritablePrimary
    11600, // InterruptedAtShutdown
    11601, // Interrupted
    11602, // InterruptedDueToReplStateChange
    13435, // NotPrimaryNoSecondaryOk
    13436, // NotPrimaryOrSecondary
    13388, // StaleConfig
    63,    // StaleShardVersion
    150,   // StaleEpoch
];

/// Codes of refusals that concern the one document and that no retry changes. Listed for the
/// docs and tests: any write error carrying a code that is not transient is permanent.
pub const PERMANENT_CODES: &[i64] = &[
    2,     // BadValue
    14,    // TypeMismatch: $inc on a value that is not a number
    28,    // PathNotViable: a field under a value that is not a document
    52,    // DollarPrefixedFieldName
    56,    // EmptyFieldName
    66,    // ImmutableField
    121,   // DocumentValidationFailure: a collection validator
    10334, // BSONObjectTooLarge: the document would pass 16 MiB
    17419, // the updated document would pass 16 MiB (older servers)
];

/// Transient or permanent, from what the store answered for one statement: a failure without a
/// code (the command as a whole failed, the connection dropped, the call timed out) is
/// transient; a write error with a code is permanent unless the code is one of
/// [`TRANSIENT_CODES`]. [`DUPLICATE_KEY`] is neither: the caller decides (a full capped
/// document, or a race to create a document).
pub fn classify(code: Option<i64>) -> Fault {
    match code {
        None => Fault::Transient,
        Some(code) if TRANSIENT_CODES.contains(&code) => Fault::Transient,
        Some(_) => Fault::Permanent,
    }
}

/// What happened to a batch. Every statement not listed in `failed` was applied.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Applied {
    /// Write commands sent (MongoDB: one `update` per collection, split only past the server's
    /// batch limits; embedded: one transaction).
    pub commands: usize,
    pub failed: Vec<Failed>,
    /// Statements found already applied by an earlier send of the same flush (their [`Mark`]
    /// was in the document): not applied again, and not failed. `(collection, doc)` indices.
    pub duplicates: Vec<(usize, usize)>,
    /// Writes that were applied but whose write concern was not confirmed; they are not
    /// retried (retrying would count them twice), only reported.
    pub write_concern_errors: Vec<String>,
    /// MongoDB: the reply did not say what became of every statement (FerretDB v1 stops at
    /// the first write error); the store sends them again one by one.
    pub unaccounted: bool,
}

/// How big a collection is: its documents, and their size in bytes as the store counts it
/// (MongoDB: `storageStats.size`, the uncompressed BSON; embedded: the BSON bytes stored).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CollectionStats {
    pub documents: u64,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("MongoDB: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error("embedded store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("embedded store at {path}: {message}")]
    Embedded { path: String, message: String },
    #[error("corrupt document {collection}/{id}: {message}")]
    Corrupt {
        collection: String,
        id: String,
        message: String,
    },
    #[error("site {0:?} already exists")]
    SiteExists(String),
    #[error("no site {0:?}")]
    NoSuchSite(String),
    #[error(transparent)]
    MalformedSite(#[from] MalformedSite),
    #[error("store task failed: {0}")]
    Task(String),
    #[error("the store did not answer within {0:?}")]
    TimedOut(std::time::Duration),
}

#[async_trait]
pub trait Store: Send + Sync {
    /// `"mongodb"` or `"embedded"`.
    fn kind(&self) -> &'static str;

    /// Applies every increment of `batch` as `$inc` upserts. Never loses track of a statement:
    /// each one is either applied or reported in [`Applied::failed`].
    async fn apply(&self, batch: &Batch) -> Applied;

    /// Bounds each call to the server (`--store-timeout-secs`): a command that takes longer
    /// fails its own statements (owed: outcome unknown), not the whole batch. The embedded
    /// store has no server to wait for.
    fn limit_calls(&self, _timeout: std::time::Duration) {}

    /// How many calls [`Store::apply`] makes for `batch` at most, before any refusal is
    /// located: a caller's bound on the whole batch is this many times the call bound.
    fn calls(&self, _batch: &Batch) -> usize {
        1
    }

    /// One document, or `None` when it does not exist.
    async fn get(&self, collection: &str, id: &str) -> Result<Option<Document>, StoreError>;

    /// The documents of `ids` that exist, in one round trip, in no particular order.
    async fn get_many(&self, collection: &str, ids: &[String])
        -> Result<Vec<Document>, StoreError>;

    /// Like [`Store::get_many`], but each document as its BSON bytes, not decoded: for a reader
    /// that walks a large document once (a people sketch's 4,096 registers) and keeps none of
    /// it as a `Document`. The default encodes what [`Store::get_many`] decoded.
    async fn get_many_raw(
        &self,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<mongodb::bson::RawDocumentBuf>, StoreError> {
        self.get_many(collection, ids)
            .await?
            .iter()
            .map(|d| {
                mongodb::bson::RawDocumentBuf::from_document(d)
                    .map_err(|e| StoreError::Task(e.to_string()))
            })
            .collect()
    }

    /// Like [`Store::get_many`], but each document holds only its `_id` and the top-level
    /// `fields` (a projection): a dashboard that needs a month's totals does not read its days.
    async fn get_many_fields(
        &self,
        collection: &str,
        ids: &[String],
        fields: &[&str],
    ) -> Result<Vec<Document>, StoreError>;

    /// Every document of `collection` with `from_id <= _id < to_id` (string order), in `_id`
    /// order, at most `limit`: whole, or only `_id` and the top-level `fields`. For the small
    /// bookkeeping collections (`parked`, `writers`), never for reports.
    async fn scan(
        &self,
        collection: &str,
        from_id: &str,
        to_id: &str,
        fields: &[&str],
        limit: usize,
    ) -> Result<Vec<Document>, StoreError>;

    /// Writes `doc` whole in place of the document with its `_id`, only if that document's
    /// revision (its top-level `rev`, an integer) is `expected`, or, with `None`, only if no
    /// such document exists; `doc` carries its own new `rev`. `Ok(false)`: another writer
    /// changed or created it first, nothing written. For the small bookkeeping collections
    /// (`writers`), never for reports: one process's compare-and-swap on one document.
    async fn replace_if(
        &self,
        collection: &str,
        doc: &Document,
        expected: Option<i64>,
    ) -> Result<bool, StoreError>;

    /// Replaces a site's document (it must exist).
    async fn update_site(&self, site: &Site) -> Result<(), StoreError>;

    /// Inserts a new site; [`StoreError::SiteExists`] if the id is taken.
    async fn insert_site(&self, site: &Site) -> Result<(), StoreError>;

    /// Every site, ordered by id.
    async fn sites(&self) -> Result<Vec<Site>, StoreError>;

    /// Checks the store answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The store server's clock, for a node to compare its own with
    /// (`aggregate/skew.rs`): MongoDB's `localTime` in its `hello` answer. `None` for a store
    /// without a clock of its own: the embedded store runs on this machine's.
    async fn server_time(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
        Ok(None)
    }

    /// Deletes the documents of `collection` with `from_id <= _id < to_id` (string order) and
    /// says how many there were. One `_id` range: MongoDB walks its `_id` index, the embedded
    /// store its primary key; neither scans the collection. A collection that does not exist
    /// has nothing to delete.
    async fn delete_range(
        &self,
        collection: &str,
        from_id: &str,
        to_id: &str,
    ) -> Result<u64, StoreError>;

    /// The name of every collection, sorted. A collection stays listed once its documents are
    /// deleted, until it is dropped.
    async fn collections(&self) -> Result<Vec<String>, StoreError>;

    /// Drops a collection and every document in it. Dropping one that does not exist is not an
    /// error.
    async fn drop_collection(&self, collection: &str) -> Result<(), StoreError>;

    /// The number of documents in `collection` and their size, without reading them: MongoDB
    /// answers from its collection statistics, the embedded store walks the collection's key
    /// range. A collection that does not exist is empty.
    async fn collection_stats(&self, collection: &str) -> Result<CollectionStats, StoreError>;

    /// One site by id.
    async fn site(&self, id: &str) -> Result<Option<Site>, StoreError> {
        match self.get(SITES, id).await? {
            Some(doc) => Ok(Some(Site::from_document(&doc)?)),
            None => Ok(None),
        }
    }
}

/// Which store to open: what the settings (`--mongodb-uri`, `--data-dir`) chose, handed down
/// so that this module needs nothing above it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Config {
    /// MongoDB at `uri`, documents in `database`, at most `max_statements` per `update`.
    Mongo {
        uri: String,
        database: String,
        max_statements: usize,
    },
    /// The embedded store in `data_dir`.
    Embedded { data_dir: std::path::PathBuf },
}

/// Opens the store `config` names.
pub async fn open(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    match config {
        Config::Mongo {
            uri,
            database,
            max_statements,
        } => Ok(Arc::new(
            mongo::MongoStore::connect(uri, database)
                .await?
                .with_max_statements(*max_statements),
        )),
        Config::Embedded { data_dir } => {
            Ok(Arc::new(embedded::EmbeddedStore::open(data_dir).await?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_and_permanent_codes() {
        assert_eq!(classify(None), Fault::Transient);
        for code in [112, 10107, 11600, 11602, 189, 91, 6, 89, 9001, 50, 262] {
            assert_eq!(classify(Some(code)), Fault::Transient, "{code}");
        }
        for code in PERMANENT_CODES {
            assert_eq!(classify(Some(*code)), Fault::Permanent, "{code}");
        }
        // an unknown refusal of one statement is not retried forever
        assert_eq!(classify(Some(99_999)), Fault::Permanent);
        for code in TRANSIENT_CODES {
            assert!(!PERMANENT_CODES.contains(code), "{code}");
        }
    }
}
