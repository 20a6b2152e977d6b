//! Telling from the documents' marks (see [`crate::store::Mark`]) which statements were
//! applied when a reply cannot say: FerretDB v1 stops at the first write error without saying
//! where ([`MongoStore::locate`]), and a statement sent again after it was applied is refused
//! with a duplicate-key error like a full capped document ([`MongoStore::sort_duplicates`]).
//!
//! This module only reads marks (one `find` per question); it must not write documents.

use super::MongoStore;
use crate::store::{Applied, Batch, CollectionBatch, Failed, DUPLICATE_KEY, MARKS};
use mongodb::bson::doc;
use std::collections::{BTreeMap, BTreeSet};

impl MongoStore {
    /// After a reply that stopped at a refused statement without saying which: reads the marks
    /// of `sent` (one `find`). A statement whose document carries its mark was applied (now, or
    /// by an earlier send of the same flush). If the first statement sent is not applied, it is
    /// the one the server refused (`reported` is its error); otherwise the server stopped at a
    /// statement applied by an earlier send (refused as a duplicate) or at a later one, and the
    /// statements not applied go again as one command, the refused one first. Returns what is
    /// left to send. Statements without a mark cannot be told apart: they go one by one.
    pub(super) async fn locate(
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

    /// Sorts out the statements refused with a duplicate-key error whose document already
    /// carries their mark: they were applied by an earlier send of the same flush (whose reply
    /// was lost), so they move from `failed` to `duplicates`. The others stay failed: a full
    /// capped document refused them, or another process created the document first (the next
    /// flush sends them again). One `find` per collection, for the few statements concerned.
    pub(super) async fn sort_duplicates(&self, batch: &Batch, applied: &mut Applied) {
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
}
