//! The file's table layout and its version: what a new file gets, how an older file is brought
//! up to date, and the refusal of a file written by a newer tally.
//!
//! This module runs when the store opens; it must not read or write documents (except the
//! one-time listing of a version-1 file's collections).

use super::SCHEMA_VERSION;
use crate::store::StoreError;
use rusqlite::Connection;
use std::path::Path;

/// The file's schema version; an error when a newer tally wrote it.
pub(super) fn schema_version(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
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
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
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

#[cfg(test)]
mod tests {
    use super::super::{encode, EmbeddedStore, FILE_NAME};
    use super::*;
    use crate::field::FieldKey;
    use crate::store::{Batch, CollectionBatch, DocUpdate, Store};
    use mongodb::bson::doc;
    use rusqlite::params;

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
