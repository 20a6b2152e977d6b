//! Sending a collection's statements as `update` commands and reading what became of each
//! from the reply: its `writeErrors` (each naming the statement that failed, with its code) and
//! its `writeConcernError`. A command that fails as a whole (network, server down, timed out)
//! reports all its statements failed, without a code. A reply that does not account for every
//! statement (FerretDB v1) hands over to [`super::locate`].
//!
//! This module sends what it is given; it must not decide what is retried or kept (the
//! flusher does, from the codes).

use super::command::statement;
use super::MongoStore;
use crate::store::{Applied, Batch, CollectionBatch, Failed, StoreError};
use mongodb::bson::{doc, Bson, Document};

impl MongoStore {
    /// Sends one collection's statements `range` as one `update` command and reads what
    /// became of each. When the reply does not account for every statement (FerretDB v1, see
    /// [`accounts_for_every_statement`]), the server stopped at the first statement it refused
    /// and applied none after it; the marks tell which were applied ([`MongoStore::locate`]).
    pub(super) async fn update(
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
                // Outcome unknown (the server may still apply it): owed, sent again marked,
                // in smaller commands.
                self.timed_out(idx.len());
                let error = StoreError::TimedOut(limit).to_string();
                for &i in idx {
                    applied
                        .failed
                        .extend(Batch::fail_collection(ci, i..i + 1, &error));
                }
                return;
            }
        };
        self.answered();
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
