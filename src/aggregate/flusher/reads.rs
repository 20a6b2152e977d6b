//! What a flush reads from the store before it writes: the marks of the documents its owed
//! statements go to (so a statement that did apply is not sent again), and the books of the
//! capped month documents its increments need (for [`Admission`]).
//!
//! Every read is bounded by the store timeout, and a read that fails only makes the flush
//! more careful (every owed statement sent, the capped documents carried to the next flush).
//! This module must not write to the store.

use super::send::collection_of;
use super::Flusher;
use crate::aggregate::admission::Admission;
use crate::aggregate::Drained;
use crate::reports::DocKey;
use crate::store::DocUpdate;
use std::collections::{BTreeMap, BTreeSet, HashMap};

impl Flusher {
    /// The owed statements not yet applied, and how many were: their documents' marks are read
    /// first (one `find` per collection), so a statement whose reply was lost is recognised
    /// without being sent again. (On FerretDB, sending it again would stop its command at the
    /// duplicate.) Only this writer writes its marks, one flush at a time, so what is read
    /// stays true until the send. When the marks cannot be read, every statement is sent.
    pub(super) async fn unapplied(&self, queued: Vec<(DocKey, DocUpdate)>) -> Owed {
        let mut by_collection: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (key, update) in &queued {
            if update.mark.is_some() {
                by_collection
                    .entry(collection_of(key, update))
                    .or_default()
                    .push(update.id.clone());
            }
        }
        let mut marks: HashMap<(String, String), mongodb::bson::Document> = HashMap::new();
        for (collection, ids) in by_collection {
            let read = self
                .store
                .get_many_fields(&collection, &ids, &[crate::store::MARKS]);
            let docs = match tokio::time::timeout(self.store_timeout, read).await {
                Ok(Ok(docs)) => docs,
                _ => return Err(queued),
            };
            for doc in docs {
                if let Ok(id) = doc.get_str("_id") {
                    marks.insert((collection.clone(), id.to_owned()), doc.clone());
                }
            }
        }
        let before = queued.len();
        let left: Vec<(DocKey, DocUpdate)> = queued
            .into_iter()
            .filter(|(key, update)| {
                let stored = marks.get(&(collection_of(key, update), update.id.clone()));
                !matches!((&update.mark, stored), (Some(mark), Some(doc)) if mark.applied_in(doc))
            })
            .collect();
        let applied = before - left.len();
        Ok((left, applied))
    }

    /// Reads the books of the month documents `drained` needs, one `find` per collection.
    /// Returns the documents whose books could not be read, and the error.
    pub(super) async fn load_books(
        &self,
        admission: &mut Admission,
        drained: &Drained,
    ) -> (BTreeSet<DocKey>, Option<String>) {
        let mut by_collection: BTreeMap<String, Vec<DocKey>> = BTreeMap::new();
        for key in admission.missing(drained) {
            by_collection.entry(key.collection()).or_default().push(key);
        }
        let (mut unread, mut error) = (BTreeSet::new(), None);
        for (collection, keys) in by_collection {
            let ids: Vec<String> = keys.iter().map(DocKey::id).collect();
            let read =
                tokio::time::timeout(self.store_timeout, self.store.get_many(&collection, &ids))
                    .await;
            match read {
                Ok(Ok(docs)) => {
                    for key in keys {
                        let id = key.id();
                        let doc = docs.iter().find(|d| d.get_str("_id").ok() == Some(&id));
                        admission.load(key, doc);
                    }
                }
                Ok(Err(e)) => {
                    unread.extend(keys);
                    error.get_or_insert(e.to_string());
                }
                Err(_) => {
                    unread.extend(keys);
                    error.get_or_insert(self.timed_out());
                }
            }
        }
        (unread, error)
    }
}

/// What [`Flusher::unapplied`] found: the statements still to send and how many were already
/// applied, or (the marks unreadable) every statement.
pub(super) type Owed = Result<(Vec<(DocKey, DocUpdate)>, usize), Vec<(DocKey, DocUpdate)>>;
