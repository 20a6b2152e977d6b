//! The embedded store's read connections: a small fixed pool, so reads (the read API, the
//! dashboard, the flusher's reads of marks) run beside the writer's transaction instead of
//! waiting behind it. SQLite in WAL mode gives each reader the snapshot of the last commit
//! when its read transaction begins, while one writer appends to the log.
//!
//! Every connection is opened `query_only`, so nothing written here can slip past the writer's
//! single connection (and its transaction rules). This module must not write documents.

use crate::store::StoreError;
use rusqlite::Connection;
use std::path::Path;
use std::sync::{Condvar, Mutex};

/// How many read connections a store opens: one per core the process may use, at least 2 (a
/// long read, a year of content, then does not hold up the summary even on one core) and at
/// most 8. Reads of cached pages are CPU work, so more readers than cores only queue on the
/// CPU instead of here; each connection keeps its own page cache (SQLite's default, 2 MB at
/// most), so the bound also bounds memory.
pub(super) fn pool_size() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2)
        .clamp(2, 8)
}

/// How much of the file each read connection maps (address space, not memory: the pages are
/// the operating system's page cache, shared by all of them). Past it, pages are read(2).
const MMAP_BYTES: i64 = 1 << 30;

/// The idle read connections, and a wait for one to come back.
pub(super) struct Readers {
    idle: Mutex<Vec<Connection>>,
    returned: Condvar,
}

impl Readers {
    /// Opens `n` read connections to the file at `path` (already created and migrated by the
    /// writer's connection, which set WAL mode: a file property every connection then uses).
    pub(super) fn open(path: &Path, n: usize) -> Result<Readers, StoreError> {
        let mut idle = Vec::with_capacity(n);
        for _ in 0..n {
            let conn = Connection::open(path)?;
            // A reader waits for a lock only while another process recovers or resets the
            // log; it never waits behind a write of this process.
            conn.busy_timeout(super::BUSY_TIMEOUT)?;
            conn.pragma_update(None, "query_only", true)?;
            // Pages read in place from the mapped file instead of copied by a read(2) each:
            // a report document spans dozens of overflow pages, and every flush (another
            // connection's write) empties a reader's own page cache.
            conn.pragma_update(None, "mmap_size", MMAP_BYTES)?;
            idle.push(conn);
        }
        Ok(Readers {
            idle: Mutex::new(idle),
            returned: Condvar::new(),
        })
    }

    /// Runs `f` on an idle read connection (waiting for one when all are busy), inside one
    /// read transaction: every statement of `f` reads the same committed snapshot, so a
    /// read of several documents never sees half of a flush. Blocking: call it from the
    /// blocking pool.
    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut lent = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(conn) = idle.pop() {
                    break Lent {
                        pool: self,
                        conn: Some(conn),
                    };
                }
                idle = self.returned.wait(idle).unwrap_or_else(|e| e.into_inner());
            }
        };
        let conn = lent.conn.as_mut().expect("lent until dropped");
        let tx = conn.transaction()?;
        let out = f(&tx)?;
        // Ends the read transaction; nothing was written.
        tx.commit()?;
        Ok(out)
    }
}

/// A read connection out of the pool, given back when dropped (a panicking read included).
struct Lent<'a> {
    pool: &'a Readers,
    conn: Option<Connection>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut idle = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.push(conn);
            self.pool.returned.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::EmbeddedStore;
    use crate::field::FieldKey;
    use crate::store::{Batch, CollectionBatch, DocUpdate, Store};
    use rusqlite::params;
    use std::time::Duration;

    fn one_view(id: &str) -> Batch {
        Batch {
            collections: vec![CollectionBatch {
                collection: "traffic.2026".into(),
                docs: vec![DocUpdate {
                    id: id.into(),
                    inc: vec![(FieldKey::parse("v").unwrap(), 1)],
                    ..DocUpdate::default()
                }],
            }],
        }
    }

    /// A store in a temporary directory (kept while the first is held) with one view written.
    async fn one_view_stored() -> (tempfile::TempDir, std::sync::Arc<EmbeddedStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(EmbeddedStore::open(dir.path()).await.unwrap());
        assert!(store
            .apply(&one_view("acme:2026-11"))
            .await
            .failed
            .is_empty());
        (dir, store)
    }

    /// A write transaction held open on the writer's connection (as a long flush holds it)
    /// does not hold up reads: they answer at once, with what was committed before it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_is_not_blocked_by_a_write_under_way() {
        let (_dir, store) = one_view_stored().await;

        let (opened, wait_open) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let writer = {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .with_conn(move |conn| {
                        let tx = conn
                            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                        tx.execute("DELETE FROM docs WHERE coll = ?1", params!["traffic.2026"])?;
                        opened.send(()).unwrap();
                        // Held open until the reads below are done (or 20 s, then the test
                        // has failed anyway).
                        let _ = released.recv_timeout(Duration::from_secs(20));
                        tx.commit()?;
                        Ok(())
                    })
                    .await
            })
        };
        tokio::task::spawn_blocking(move || wait_open.recv().unwrap())
            .await
            .unwrap();

        let reads = async {
            let doc = store.get("traffic.2026", "acme:2026-11").await.unwrap();
            let many = store
                .get_many_fields("traffic.2026", &["acme:2026-11".into()], &["v"])
                .await
                .unwrap();
            let colls = store.collections().await.unwrap();
            (doc, many, colls)
        };
        let (doc, many, colls) = tokio::time::timeout(Duration::from_secs(2), reads)
            .await
            .expect("reads waited behind the open write transaction");
        // The delete is not committed: the reads see the document as it was.
        assert_eq!(doc.unwrap().get_i64("v"), Ok(1));
        assert_eq!(many.len(), 1);
        assert_eq!(colls, ["traffic.2026"]);

        release.send(()).unwrap();
        writer.await.unwrap().unwrap();
        // Committed: the next read sees it.
        assert_eq!(
            store.get("traffic.2026", "acme:2026-11").await.unwrap(),
            None
        );
    }

    /// A stored document that is not BSON (written by hand, or cut short) is an error naming
    /// it on every read, and a batch reports it failed with MongoDB's InvalidBSON (22).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_document_that_is_not_bson_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).await.unwrap();
        let good = super::super::encode(&mongodb::bson::doc! {"_id": "x", "v": 1_i64}).unwrap();
        let conn = rusqlite::Connection::open(dir.path().join(super::super::FILE_NAME)).unwrap();
        for (id, bytes) in [
            ("acme:2026-11", b"not bson at all".to_vec()),
            ("acme:2026-10", good[..good.len() - 3].to_vec()),
        ] {
            conn.execute(
                "INSERT INTO docs (coll, id, doc) VALUES ('traffic.2026', ?1, ?2)",
                params![id, bytes],
            )
            .unwrap();
            let corrupt = |r: Result<_, crate::store::StoreError>| match r {
                Err(crate::store::StoreError::Corrupt { id: at, .. }) => assert_eq!(at, id),
                other => panic!("{id}: {other:?}"),
            };
            corrupt(store.get("traffic.2026", id).await.map(|_| ()));
            corrupt(
                store
                    .get_many("traffic.2026", &[id.into()])
                    .await
                    .map(|_| ()),
            );
            corrupt(
                store
                    .get_many_fields("traffic.2026", &[id.into()], &["v"])
                    .await
                    .map(|_| ()),
            );
            let applied = store.apply(&one_view(id)).await;
            assert_eq!(applied.failed.len(), 1, "{id}");
            assert_eq!(applied.failed[0].code, Some(22), "{id}");
        }
    }

    /// More reads at once than there are read connections: each waits for one and all answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn more_reads_than_connections_all_answer() {
        let (_dir, store) = one_view_stored().await;
        let mut reads = Vec::new();
        for _ in 0..super::pool_size() * 4 {
            let store = std::sync::Arc::clone(&store);
            reads.push(tokio::spawn(async move {
                store.get("traffic.2026", "acme:2026-11").await
            }));
        }
        for read in reads {
            assert!(read.await.unwrap().unwrap().is_some());
        }
    }
}
