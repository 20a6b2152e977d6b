//! The embedded store: the same documents as MongoDB, in one SQLite file, no server needed.
//!
//! One table `docs(coll, id, doc)` keyed by `(coll, id)` holds every document as BSON bytes, so
//! a collection is a key range and a yearly collection can be dropped by range. A batch is one
//! SQLite transaction: each document is read, incremented with [`super::inc`] (MongoDB's
//! `$inc` semantics) and written back; a document whose increments cannot apply is skipped and
//! reported, as MongoDB reports a write error, while the others commit.
//!
//! The file is opened in WAL mode with `synchronous=FULL`, so a committed flush survives a
//! crash or power loss, and other processes (`tally doc`, `tally site add`) can read and write
//! while `tally serve` runs: readers never block, and a writer waits at most
//! [`BUSY_TIMEOUT`] for the lock, then fails with a message instead of hanging.

use super::inc::apply_all;
use super::{Applied, Batch, Failed, Store, StoreError, SITES};
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
const SCHEMA_VERSION: i64 = 1;

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
            let conn = Connection::open(&p)?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if version > SCHEMA_VERSION {
                return Err(StoreError::Embedded {
                    path: p.display().to_string(),
                    message: format!(
                        "written by a newer tally (schema {version}, this one knows {SCHEMA_VERSION})"
                    ),
                });
            }
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS docs (
                     coll TEXT NOT NULL,
                     id   TEXT NOT NULL,
                     doc  BLOB NOT NULL,
                     PRIMARY KEY (coll, id)
                 ) WITHOUT ROWID;",
            )?;
            if version < SCHEMA_VERSION {
                conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
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

/// Applies a whole batch in one transaction; see the module docs.
fn apply_batch(conn: &mut Connection, batch: &Batch) -> Result<Vec<Failed>, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut failed = Vec::new();
    {
        let mut select = tx.prepare_cached("SELECT doc FROM docs WHERE coll = ?1 AND id = ?2")?;
        let mut upsert = tx.prepare_cached(
            "INSERT INTO docs (coll, id, doc) VALUES (?1, ?2, ?3)
             ON CONFLICT (coll, id) DO UPDATE SET doc = excluded.doc",
        )?;
        for (ci, coll) in batch.collections.iter().enumerate() {
            for (di, inc) in coll.docs.iter().enumerate() {
                let existing: Option<Vec<u8>> = select
                    .query_row(params![coll.collection, inc.id], |r| r.get(0))
                    .optional()?;
                let fields = inc.inc.iter().map(|(f, by)| (f.as_str(), *by));
                let updated = match existing {
                    Some(bytes) => decode(&coll.collection, &inc.id, &bytes),
                    None => Ok(doc! {"_id": inc.id.as_str()}),
                }
                .and_then(|mut doc| {
                    apply_all(&mut doc, fields).map_err(|e| StoreError::Corrupt {
                        collection: coll.collection.clone(),
                        id: inc.id.clone(),
                        message: e.to_string(),
                    })?;
                    encode(&doc)
                });
                match updated {
                    Ok(bytes) => {
                        upsert.execute(params![coll.collection, inc.id, bytes])?;
                    }
                    Err(e) => failed.push(Failed {
                        collection: ci,
                        doc: di,
                        error: e.to_string(),
                    }),
                }
            }
        }
    }
    tx.commit()?;
    Ok(failed)
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
            Ok(failed) => Applied {
                commands: 1,
                failed,
                write_concern_errors: Vec::new(),
            },
            // The transaction rolled back: nothing of the batch was applied.
            Err(e) => Applied {
                commands: 1,
                failed: batch.fail_all(&e.to_string()),
                write_concern_errors: Vec::new(),
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

    async fn insert_site(&self, site: &Site) -> Result<(), StoreError> {
        let (id, bytes) = (site.id.to_string(), encode(&site.to_document())?);
        self.with_conn(move |conn| {
            let inserted = conn.execute(
                "INSERT INTO docs (coll, id, doc) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                params![SITES, id, bytes],
            )?;
            if inserted == 0 {
                return Err(StoreError::SiteExists(id));
            }
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
}
