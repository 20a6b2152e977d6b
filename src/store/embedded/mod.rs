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
//! while `tally serve` runs: a reader is not held up by a write under way, and a writer waits
//! at most [`BUSY_TIMEOUT`] for the lock, then fails with a message instead of hanging.
//!
//! Within one process, writes go through one connection behind a mutex (`with_conn`: the
//! flusher's batches, sites, the bookkeeping documents), one at a time, as before. Reads (the
//! read API, the dashboard, the summary, the flusher's reads of marks) take one of a few
//! read-only connections of their own (`readers`, [`readers::pool_size`] of them) and never wait
//! behind a write: each read runs in one read transaction and sees every write committed
//! before it began, whole, and nothing of a batch still under way. A read of several documents
//! sees them all from that one snapshot.
//!
//! A projected read (`get_many_fields`, `scan` with fields) copies only the wanted top-level
//! fields out of the stored bytes (`bson::RawDocument`), without decoding the rest.
//!
//! Layout: `schema` creates and migrates the tables, `batch` applies a batch in one
//! transaction, `readers` holds the read connections; this file holds the writer's
//! connection, the document bytes and the [`Store`] calls.

mod batch;
mod readers;
mod schema;

use batch::apply_batch;
use readers::Readers;
use schema::{migrate, schema_version};

use super::{Applied, Batch, CollectionStats, Store, StoreError, SITES};
use crate::site::Site;
use async_trait::async_trait;
use mongodb::bson::{doc, Document};
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
    /// The writer's connection.
    conn: Arc<Mutex<Connection>>,
    /// The read connections.
    readers: Arc<Readers>,
    path: PathBuf,
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `dir`.
    pub async fn open(dir: &Path) -> Result<EmbeddedStore, StoreError> {
        let dir = dir.to_path_buf();
        let path = dir.join(FILE_NAME);
        let p = path.clone();
        let (conn, readers) = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
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
            // Opened after the tables exist and WAL mode is set.
            let readers = Readers::open(&p, readers::pool_size())?;
            Ok((conn, readers))
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
        Ok(EmbeddedStore {
            conn: Arc::new(Mutex::new(conn)),
            readers: Arc::new(readers),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the writer's connection in the blocking pool.
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

    /// Runs `f` on a read connection, in one read transaction, in the blocking pool.
    async fn with_reader<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || readers.with(f))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

impl EmbeddedStore {
    /// The documents of `ids` that exist: whole, or only `_id` and the top-level `fields`.
    /// Their bytes are read in one read transaction; the connection is given back before they
    /// are decoded, and a large read (a year of content) is decoded on several threads.
    async fn read_many(
        &self,
        collection: &str,
        ids: &[String],
        fields: Option<Vec<String>>,
    ) -> Result<Vec<Document>, StoreError> {
        let (coll, ids) = (collection.to_owned(), ids.to_vec());
        let coll2 = coll.clone();
        let rows = self
            .with_reader(move |conn| read_rows(conn, &coll2, &ids))
            .await?;
        let bytes: usize = rows.iter().map(|(_, b)| b.len()).sum();
        let parts = (bytes / PARALLEL_DECODE_BYTES).clamp(1, readers::pool_size());
        if parts == 1 || rows.len() < 2 {
            return decode_rows(&coll, rows, fields.as_deref());
        }
        // Chunks of about equal bytes, decoded at once, then put back in order.
        let (fields, coll) = (fields.map(Arc::new), Arc::new(coll));
        let mut chunks: Vec<Vec<(String, Vec<u8>)>> = vec![Vec::new()];
        let mut filled = 0;
        for row in rows {
            if filled >= bytes.div_ceil(parts) {
                chunks.push(Vec::new());
                filled = 0;
            }
            filled += row.1.len();
            chunks.last_mut().expect("one chunk at least").push(row);
        }
        let tasks = chunks.into_iter().map(|chunk| {
            let (coll, fields) = (Arc::clone(&coll), fields.clone());
            tokio::task::spawn_blocking(move || {
                decode_rows(&coll, chunk, fields.as_deref().map(Vec::as_slice))
            })
        });
        let mut out = Vec::new();
        for decoded in futures_util::future::join_all(tasks).await {
            out.extend(decoded.map_err(|e| StoreError::Task(e.to_string()))??);
        }
        Ok(out)
    }
}

/// Past this many bytes, a read's documents are decoded in parallel (one part per this many
/// bytes, at most one per read connection): a year of content is about 2 MB.
const PARALLEL_DECODE_BYTES: usize = 256 * 1024;

/// The stored bytes of the documents of `ids` that exist, in the order of `ids`.
fn read_rows(
    conn: &Connection,
    coll: &str,
    ids: &[String],
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let mut select = conn.prepare_cached("SELECT doc FROM docs WHERE coll = ?1 AND id = ?2")?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let bytes: Option<Vec<u8>> = select
            .query_row(params![coll, id], |r| r.get(0))
            .optional()?;
        if let Some(bytes) = bytes {
            out.push((id.clone(), bytes));
        }
    }
    Ok(out)
}

/// `rows` decoded in order: whole, or only `_id` and the top-level `fields`, copied out of the
/// stored bytes without decoding the rest.
fn decode_rows(
    coll: &str,
    rows: Vec<(String, Vec<u8>)>,
    fields: Option<&[String]>,
) -> Result<Vec<Document>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for (id, bytes) in rows {
        let Some(fields) = fields else {
            out.push(decode(coll, &id, &bytes)?);
            continue;
        };
        let corrupt = |e: mongodb::bson::raw::Error| StoreError::Corrupt {
            collection: coll.to_owned(),
            id: id.clone(),
            message: e.to_string(),
        };
        let raw = mongodb::bson::RawDocument::from_bytes(&bytes).map_err(corrupt)?;
        let mut doc = doc! {"_id": id.as_str()};
        for f in fields {
            if let Some(value) = raw.get(f).map_err(corrupt)? {
                let value: mongodb::bson::Bson = value.to_raw_bson().try_into().map_err(corrupt)?;
                doc.insert(f.as_str(), value);
            }
        }
        out.push(doc);
    }
    Ok(out)
}

fn decode(coll: &str, id: &str, bytes: &[u8]) -> Result<Document, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        collection: coll.to_owned(),
        id: id.to_owned(),
        message,
    };
    // From the raw elements, not through serde's `Deserializer`.
    let raw = mongodb::bson::RawDocument::from_bytes(bytes).map_err(|e| corrupt(e.to_string()))?;
    Document::try_from(raw).map_err(|e| corrupt(e.to_string()))
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
        self.with_reader(move |conn| {
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

    async fn get_many_raw(
        &self,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<mongodb::bson::RawDocumentBuf>, StoreError> {
        let (coll, ids) = (collection.to_owned(), ids.to_vec());
        let coll2 = coll.clone();
        let rows = self
            .with_reader(move |conn| read_rows(conn, &coll2, &ids))
            .await?;
        rows.into_iter()
            .map(|(id, bytes)| {
                mongodb::bson::RawDocumentBuf::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
                    collection: coll.clone(),
                    id,
                    message: e.to_string(),
                })
            })
            .collect()
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
        let fields: Option<Vec<String>> =
            (!fields.is_empty()).then(|| fields.iter().map(|f| f.to_string()).collect());
        // The ids and their documents from one snapshot.
        self.with_reader(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id FROM docs WHERE coll = ?1 AND id >= ?2 AND id < ?3 ORDER BY id LIMIT ?4",
            )?;
            let ids = stmt
                .query_map(params![coll, from, to, limit], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            // in the order of `ids`
            decode_rows(&coll, read_rows(conn, &coll, &ids)?, fields.as_deref())
        })
        .await
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
        self.with_reader(|conn| {
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
        self.with_reader(|conn| {
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
        self.with_reader(|conn| {
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
        self.with_reader(move |conn| {
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
