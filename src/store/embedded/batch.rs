//! Applying a [`Batch`] in one SQLite transaction: each document is read, updated with
//! [`crate::store::inc`] (MongoDB's `$inc`, `$set` and `$max` semantics), marked and written
//! back; a document whose increments cannot apply is skipped and reported with the code MongoDB
//! gives the same refusal, while the others commit.
//!
//! This module must not decide what is retried or kept (the flusher does, from the codes).

use super::{decode, encode};
use crate::store::inc::{apply_all, set, unset, IncError};
use crate::store::{Batch, Failed, StoreError, DUPLICATE_KEY, GUARD_REFUSED, MARKS};
use mongodb::bson::{doc, Bson};
use rusqlite::{params, Connection, OptionalExtension};

/// The largest document MongoDB stores; the embedded store refuses what it would refuse.
const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

/// What one transaction did: the statements that failed, and those already applied before.
type BatchOutcome = (Vec<Failed>, Vec<(usize, usize)>);

/// Applies a whole batch in one transaction; see the module docs.
pub(super) fn apply_batch(
    conn: &mut Connection,
    batch: &Batch,
) -> Result<BatchOutcome, StoreError> {
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
                let maxes = inc.max.iter().map(|(f, v)| (f.as_str(), *v));
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
                    apply_all(&mut doc, fields, sets, maxes).map_err(corrupt)?;
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
