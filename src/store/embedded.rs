//! The embedded store: the same documents as MongoDB, in one SQLite file, no server needed.
//!
//! One table `docs(coll, id, doc)` keyed by `(coll, id)` holds every document as BSON bytes, so
//! a collection is a key range and a yearly collection can be dropped by range. A second, small
//! table `colls(coll)` names every collection, so listing them never reads `docs`: every write
//! that can create a collection (a batch, a new site) adds its name in the same transaction,
//! and dropping a collection removes it. A batch is one
//! SQLite transaction: each document is read, incremented with [`super::inc`] (MongoDB's
//! `$inc` semantics) and written back; a document whose increments cannot apply is skipped and
//! reported, as MongoDB reports a write error, while the others commit.
//!
//! The file is opened in WAL mode with `synchronous=FULL`, so a committed flush survives a
//! crash or power loss, and other processes (`tally doc`, `tally site add`) can read and write
//! while `tally serve` runs: readers never block, and a writer waits at most
//! [`BUSY_TIMEOUT`] for the lock, then fails with a message instead of hanging.

use super::inc::{apply_all, set, unset, IncError};
use super::{
    Applied, Batch, CollectionStats, Failed, Store, StoreError, DUPLICATE_KEY, GUARD_REFUSED,
    MARKS, SITES,
};
use crate::site::Site;
use async_trait::async_trait;
use mongodb::bson::{doc, Bson, Document};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The file inside `--data-dir`.
pub const FILE_NAME: &str = "tally.sqlite3";
/// How long a write waits for another process's write to finish.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Bumped when the table layout changes; stored as SQLite's `user_version`.
/// 1: `docs`. 2: and `colls`, filled from `docs` when a version-1 file is first opened.
pub const SCHEMA_VERSION: i64 = 2;

pub struct EmbeddedStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `dir`.
    pub async fn open(dir: &Path) -> Result<EmbeddedStore, StoreError> {
        let dir = dir.to_path_buf();
        let path = dir.join(FILE_NAME);
        let p = path.clone();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, StoreError> {
            std::fs::create_dir_all(&dir).map_err(|e| StoreError::Embedded {
                path: dir.display().to_string(),
                message: format!("cannot create the data directory: {e}"),
            })?;
            let mut conn = Connection::open(&p)?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            // Only an older file takes the write lock; opening a current one reads the version.
            if schema_version(&conn, &p)? < SCHEMA_VERSION {
                migrate(&mut conn, &p)?;
            }
            Ok(conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
        Ok(EmbeddedStore {
            conn: Arc::new(Mutex::new(conn)),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the connection in the blocking pool.
    async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

impl EmbeddedStore {
    /// The documents of `ids` that exist: whole, or only `_id` and the top-level `fields`, read
    /// from the stored bytes without decoding the rest.
    async fn read_many(
        &self,
        collection: &str,
        ids: &[String],
        fields: Option<Vec<String>>,
    ) -> Result<Vec<Document>, StoreError> {
        let (coll, ids) = (collection.to_owned(), ids.to_vec());
        self.with_conn(move |conn| {
            let mut select =
                conn.prepare_cached("SELECT doc FROM docs WHERE coll = ?1 AND id = ?2")?;
            let mut out = Vec::with_capacity(ids.len());
            for id in &ids {
                let bytes: Option<Vec<u8>> = select
                    .query_row(params![coll, id], |r| r.get(0))
                    .optional()?;
                let Some(bytes) = bytes else { continue };
                let Some(fields) = &fields else {
                    out.push(decode(&coll, id, &bytes)?);
                    continue;
                };
                let corrupt = |e: mongodb::bson::raw::Error| StoreError::Corrupt {
                    collection: coll.clone(),
                    id: id.clone(),
                    message: e.to_string(),
                };
                let raw = mongodb::bson::RawDocument::from_bytes(&bytes).map_err(corrupt)?;
                let mut doc = doc! {"_id": id.as_str()};
                for f in fields {
                    if let Some(value) = raw.get(f).map_err(corrupt)? {
                        let value: mongodb::bson::Bson =
                            value.to_raw_bson().try_into().map_err(corrupt)?;
                        doc.insert(f.as_str(), value);
                    }
                }
                out.push(doc);
            }
            Ok(out)
        })
        .await
    }
}

/// The file's schema version; an error when a newer tally wrote it.
fn schema_version(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Embedded {
            path: path.display().to_string(),
            message: format!(
                "written by a newer tally (schema {version}, this one knows {SCHEMA_VERSION})"
            ),
        });
    }
    Ok(version)
}

/// Brings a new or older file to [`SCHEMA_VERSION`] in one transaction, so two processes
/// opening the same old file cannot both migrate it: the second sees the new version.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version = schema_version(&tx, path)?;
    if version < SCHEMA_VERSION {
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS docs (
                 coll TEXT NOT NULL,
                 id   TEXT NOT NULL,
                 doc  BLOB NOT NULL,
                 PRIMARY KEY (coll, id)
             ) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS colls (coll TEXT PRIMARY KEY) WITHOUT ROWID;",
        )?;
        if version < 2 {
            // The one time `docs` is read whole: a version-1 file's collections.
            tx.execute(
                "INSERT OR IGNORE INTO colls (coll) SELECT DISTINCT coll FROM docs",
                [],
            )?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}

fn decode(coll: &str, id: &str, bytes: &[u8]) -> Result<Document, StoreError> {
    Document::from_reader(bytes).map_err(|e| StoreError::Corrupt {
        collection: coll.to_owned(),
        id: id.to_owned(),
        message: e.to_string(),
    })
}

fn encode(doc: &Document) -> Result<Vec<u8>, StoreError> {
    let mut bytes = Vec::with_capacity(256);
    doc.to_writer(&mut bytes)
        .map_err(|e| StoreError::Embedded {
            path: String::new(),
            message: format!("cannot encode a document: {e}"),
        })?;
    Ok(bytes)
}

/// The largest document MongoDB stores; the embedded store refuses what it would refuse.
const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

/// What one transaction did: the statements that failed, and those already applied before.
type BatchOutcome = (Vec<Failed>, Vec<(usize, usize)>);

/// Applies a whole batch in one transaction; see the module docs.
fn apply_batch(conn: &mut Connection, batch: &Batch) -> Result<BatchOutcome, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let (mut failed, mut duplicates) = (Vec::new(), Vec::new());
    {
        let mut select = tx.prepare_cached("SELECT doc FROM docs WHERE coll = ?1 AND id = ?2")?;
        let mut upsert = tx.prepare_cached(
            "INSERT INTO docs (coll, id, doc) VALUES (?1, ?2, ?3)
             ON CONFLICT (coll, id) DO UPDATE SET doc = excluded.doc",
        )?;
        let mut list = tx.prepare_cached("INSERT OR IGNORE INTO colls (coll) VALUES (?1)")?;
        for (ci, coll) in batch.collections.iter().enumerate() {
            let mut listed = false;
            for (di, inc) in coll.docs.iter().enumerate() {
                let existing: Option<Vec<u8>> = select
                    .query_row(params![coll.collection, inc.id], |r| r.get(0))
                    .optional()?;
                let fields = inc.inc.iter().map(|(f, by)| (f.as_str(), *by));
                let sets = inc.set.iter().map(|(f, t)| (f.as_str(), t.as_str()));
                let updated = match existing {
                    // MongoDB's InvalidBSON: a document no update can read (written by hand).
                    Some(bytes) => decode(&coll.collection, &inc.id, &bytes).map_err(|e| (e, 22)),
                    None => Ok(doc! {"_id": inc.id.as_str()}),
                }
                .and_then(|mut doc| {
                    if let Some(mark) = &inc.mark {
                        if mark.applied_in(&doc) {
                            return Ok(Outcome::Duplicate);
                        }
                    }
                    if let Some(guard) = &inc.guard {
                        if crate::model::number(doc.get(guard.field.as_str())) > guard.max {
                            return Ok(Outcome::Refused);
                        }
                    }
                    // The refusal, with the code MongoDB gives it.
                    let corrupt = |e: IncError| {
                        let code = e.code();
                        let error = StoreError::Corrupt {
                            collection: coll.collection.clone(),
                            id: inc.id.clone(),
                            message: e.to_string(),
                        };
                        (error, code)
                    };
                    apply_all(&mut doc, fields, sets).map_err(corrupt)?;
                    if let Some(mark) = &inc.mark {
                        set(&mut doc, &mark.field(), Bson::Int64(mark.seq)).map_err(corrupt)?;
                    }
                    for writer in &inc.unset {
                        unset(&mut doc, &format!("{MARKS}.{writer}"));
                    }
                    let bytes = encode(&doc).map_err(|e| (e, 2))?;
                    if bytes.len() > MAX_DOCUMENT_BYTES {
                        // As MongoDB refuses it: BSONObjectTooLarge.
                        let message = format!(
                            "the updated document would be {} bytes, over MongoDB's 16 MiB",
                            bytes.len()
                        );
                        let error = StoreError::Corrupt {
                            collection: coll.collection.clone(),
                            id: inc.id.clone(),
                            message,
                        };
                        return Err((error, 10334));
                    }
                    Ok(Outcome::Write(bytes))
                });
                let (error, code) = match updated {
                    Ok(Outcome::Write(bytes)) => {
                        upsert.execute(params![coll.collection, inc.id, bytes])?;
                        if !listed {
                            list.execute(params![coll.collection])?;
                            listed = true;
                        }
                        continue;
                    }
                    Ok(Outcome::Duplicate) => {
                        duplicates.push((ci, di));
                        continue;
                    }
                    Ok(Outcome::Refused) => {
                        // As MongoDB answers a refused guarded upsert: known not applied.
                        (GUARD_REFUSED.to_owned(), Some(DUPLICATE_KEY))
                    }
                    Err((e, refusal)) => (e.to_string(), Some(refusal)),
                };
                failed.push(Failed {
                    collection: ci,
                    doc: di,
                    error,
                    code,
                });
            }
        }
    }
    tx.commit()?;
    Ok((failed, duplicates))
}

/// What becomes of one statement in [`apply_batch`].
enum Outcome {
    /// The updated document, to store.
    Write(Vec<u8>),
    /// Its guard refused it.
    Refused,
    /// Its mark is already in the document.
    Duplicate,
}

#[async_trait]
impl Store for EmbeddedStore {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn apply(&self, batch: &Batch) -> Applied {
        let owned = batch.clone();
        let result = self.with_conn(move |conn| apply_batch(conn, &owned)).await;
        match result {
            Ok((failed, duplicates)) => Applied {
                commands: 1,
                failed,
                duplicates,
                write_concern_errors: Vec::new(),
                unaccounted: false,
            },
            // The transaction rolled back: nothing of the batch was applied.
            Err(e) => Applied {
                commands: 1,
                failed: batch.fail_all(&e.to_string()),
                duplicates: Vec::new(),
                write_concern_errors: Vec::new(),
                unaccounted: false,
            },
        }
    }

    async fn get(&self, collection: &str, id: &str) -> Result<Option<Document>, StoreError> {
        let (coll, id) = (collection.to_owned(), id.to_owned());
        self.with_conn(move |conn| {
            let bytes: Option<Vec<u8>> = conn
                .prepare_cached("SELECT doc FROM docs WHERE coll = ?1 AND id = ?2")?
                .query_row(params![coll, id], |r| r.get(0))
                .optional()?;
            bytes.map(|b| decode(&coll, &id, &b)).transpose()
        })
        .await
    }

    async fn get_many(
        &self,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<Document>, StoreError> {
        self.read_many(collection, ids, None).await
    }

    async fn get_many_fields(
        &self,
        collection: &str,
        ids: &[String],
        fields: &[&str],
    ) -> Result<Vec<Document>, StoreError> {
        let fields = fields.iter().map(|f| (*f).to_owned()).collect();
        self.read_many(collection, ids, Some(fields)).await
    }

    async fn scan(
        &self,
        collection: &str,
        from_id: &str,
        to_id: &str,
        fields: &[&str],
        limit: usize,
    ) -> Result<Vec<Document>, StoreError> {
        let (coll, from, to) = (collection.to_owned(), from_id.to_owned(), to_id.to_owned());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let ids: Vec<String> = self
            .with_conn(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT id FROM docs WHERE coll = ?1 AND id >= ?2 AND id < ?3 ORDER BY id LIMIT ?4",
                )?;
                let ids = stmt
                    .query_map(params![coll, from, to, limit], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(ids)
            })
            .await?;
        let fields = (!fields.is_empty()).then(|| fields.iter().map(|f| f.to_string()).collect());
        // read_many keeps the order of `ids`
        self.read_many(collection, &ids, fields).await
    }

    async fn replace_if(
        &self,
        collection: &str,
        doc: &Document,
        expected: Option<i64>,
    ) -> Result<bool, StoreError> {
        let coll = collection.to_owned();
        let id = doc
            .get_str("_id")
            .map_err(|e| StoreError::Embedded {
                path: self.path.display().to_string(),
                message: format!("a document to replace needs a string _id: {e}"),
            })?
            .to_owned();
        let bytes = encode(doc)?;
        self.with_conn(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let existing: Option<Vec<u8>> = tx
                .query_row(
                    "SELECT doc FROM docs WHERE coll = ?1 AND id = ?2",
                    params![coll, id],
                    |r| r.get(0),
                )
                .optional()?;
            let current = match &existing {
                Some(bytes) => Some(crate::model::number(decode(&coll, &id, bytes)?.get("rev"))),
                None => None,
            };
            if current != expected {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO docs (coll, id, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT (coll, id) DO UPDATE SET doc = excluded.doc",
                params![coll, id, bytes],
            )?;
            tx.execute(
                "INSERT OR IGNORE INTO colls (coll) VALUES (?1)",
                params![coll],
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn update_site(&self, site: &Site) -> Result<(), StoreError> {
        let (id, bytes) = (site.id.to_string(), encode(&site.to_document())?);
        self.with_conn(move |conn| {
            let updated = conn.execute(
                "UPDATE docs SET doc = ?3 WHERE coll = ?1 AND id = ?2",
                params![SITES, id, bytes],
            )?;
            if updated == 0 {
                return Err(StoreError::NoSuchSite(id));
            }
            Ok(())
        })
        .await
    }

    async fn insert_site(&self, site: &Site) -> Result<(), StoreError> {
        let (id, bytes) = (site.id.to_string(), encode(&site.to_document())?);
        self.with_conn(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let inserted = tx.execute(
                "INSERT INTO docs (coll, id, doc) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                params![SITES, id, bytes],
            )?;
            if inserted == 0 {
                return Err(StoreError::SiteExists(id));
            }
            tx.execute(
                "INSERT OR IGNORE INTO colls (coll) VALUES (?1)",
                params![SITES],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn sites(&self) -> Result<Vec<Site>, StoreError> {
        self.with_conn(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT id, doc FROM docs WHERE coll = ?1 ORDER BY id")?;
            let rows = stmt.query_map(params![SITES], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
            })?;
            let mut sites = Vec::new();
            for row in rows {
                let (id, bytes) = row?;
                sites.push(Site::from_document(&decode(SITES, &id, &bytes)?)?);
            }
            Ok(sites)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.with_conn(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    async fn delete_range(
        &self,
        collection: &str,
        from_id: &str,
        to_id: &str,
    ) -> Result<u64, StoreError> {
        let (coll, from, to) = (collection.to_owned(), from_id.to_owned(), to_id.to_owned());
        self.with_conn(move |conn| {
            let deleted = conn
                .prepare_cached("DELETE FROM docs WHERE coll = ?1 AND id >= ?2 AND id < ?3")?
                .execute(params![coll, from, to])?;
            Ok(deleted as u64)
        })
        .await
    }

    async fn collections(&self) -> Result<Vec<String>, StoreError> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached("SELECT coll FROM colls ORDER BY coll")?;
            let names = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(names)
        })
        .await
    }

    async fn drop_collection(&self, collection: &str) -> Result<(), StoreError> {
        let coll = collection.to_owned();
        self.with_conn(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute("DELETE FROM docs WHERE coll = ?1", params![coll])?;
            tx.execute("DELETE FROM colls WHERE coll = ?1", params![coll])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn collection_stats(&self, collection: &str) -> Result<CollectionStats, StoreError> {
        let coll = collection.to_owned();
        self.with_conn(move |conn| {
            // One range of the primary key `(coll, id)`; LENGTH of a blob is its stored size.
            let (documents, bytes): (i64, i64) = conn
                .prepare_cached(
                    "SELECT COUNT(*), COALESCE(SUM(LENGTH(doc)), 0) FROM docs WHERE coll = ?1",
                )?
                .query_row(params![coll], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(CollectionStats {
                documents: documents.max(0) as u64,
                bytes: bytes.max(0) as u64,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::FieldKey;
    use crate::store::{CollectionBatch, DocUpdate};

    fn user_version(dir: &Path) -> i64 {
        Connection::open(dir.join(FILE_NAME))
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    }

    /// A file as a tally of schema 1 left it: `docs` only.
    fn write_version_1(dir: &Path, docs: &[(&str, &str)]) {
        let conn = Connection::open(dir.join(FILE_NAME)).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE docs (
                 coll TEXT NOT NULL,
                 id   TEXT NOT NULL,
                 doc  BLOB NOT NULL,
                 PRIMARY KEY (coll, id)
             ) WITHOUT ROWID;
             PRAGMA user_version = 1;",
        )
        .unwrap();
        for (coll, id) in docs {
            let bytes = encode(&doc! {"_id": *id, "v": 1_i64}).unwrap();
            conn.execute(
                "INSERT INTO docs (coll, id, doc) VALUES (?1, ?2, ?3)",
                params![coll, id, bytes],
            )
            .unwrap();
        }
    }

    #[tokio::test]
    async fn a_version_1_file_opens_and_lists_the_collections_it_had() {
        let dir = tempfile::tempdir().unwrap();
        write_version_1(
            dir.path(),
            &[
                ("traffic.2026", "acme:2026-11"),
                ("traffic.2026", "acme:2026"),
                ("sites", "acme"),
                ("events_5m.2025", "acme:2025-12-31T23"),
            ],
        );
        let store = EmbeddedStore::open(dir.path()).await.unwrap();
        assert_eq!(user_version(dir.path()), SCHEMA_VERSION);
        assert_eq!(
            store.collections().await.unwrap(),
            ["events_5m.2025", "sites", "traffic.2026"]
        );
        let doc = store.get("traffic.2026", "acme:2026-11").await.unwrap();
        assert_eq!(doc.unwrap().get_i64("v"), Ok(1));
        drop(store);

        // Opened again: already current; new collections are listed as they are written.
        let store = EmbeddedStore::open(dir.path()).await.unwrap();
        let batch = Batch {
            collections: vec![CollectionBatch {
                collection: "content.2026".into(),
                docs: vec![DocUpdate {
                    id: "acme:2026-11".into(),
                    inc: vec![(FieldKey::parse("v").unwrap(), 1)],
                    ..DocUpdate::default()
                }],
            }],
        };
        assert!(store.apply(&batch).await.failed.is_empty());
        assert_eq!(
            store.collections().await.unwrap(),
            ["content.2026", "events_5m.2025", "sites", "traffic.2026"]
        );
        store.drop_collection("traffic.2026").await.unwrap();
        assert_eq!(
            store.collections().await.unwrap(),
            ["content.2026", "events_5m.2025", "sites"]
        );
        assert_eq!(store.get("traffic.2026", "acme:2026").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_file_from_a_newer_tally_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Connection::open(dir.path().join(FILE_NAME))
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let Err(e) = EmbeddedStore::open(dir.path()).await else {
            panic!("a newer schema opened");
        };
        assert!(e.to_string().contains("newer tally"), "{e}");
        assert_eq!(user_version(dir.path()), SCHEMA_VERSION + 1);
    }
}
