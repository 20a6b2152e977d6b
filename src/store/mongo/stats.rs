//! A collection's size from the server's statistics, never from reading it: the `$collStats`
//! stage (`storageStats.count`, `storageStats.size`; one result per shard, summed), or, where
//! that stage is missing or refused, the older `collStats` command (`count`, `size`).
//!
//! This module only reads statistics; it must not read or write documents.

use super::MongoStore;
use crate::store::{CollectionStats, StoreError};
use mongodb::bson::{doc, Bson, Document};

impl MongoStore {
    /// `aggregate([{$collStats: {storageStats: {}}}])`, summed over its results (one per shard).
    pub(super) async fn coll_stats_stage(
        &self,
        collection: &str,
    ) -> Result<CollectionStats, StoreError> {
        let mut cursor = self
            .db
            .collection::<Document>(collection)
            .aggregate(vec![doc! {"$collStats": {"storageStats": {}}}])
            .await?;
        let mut stats = CollectionStats::default();
        while cursor.advance().await? {
            let result: Document = cursor.deserialize_current()?;
            let storage = result.get_document("storageStats").ok();
            stats.documents += count(storage.and_then(|s| s.get("count")));
            stats.bytes += count(storage.and_then(|s| s.get("size")));
        }
        Ok(stats)
    }

    /// The `collStats` command (deprecated in MongoDB 6.2, still answered; FerretDB v1 has it).
    pub(super) async fn coll_stats_command(
        &self,
        collection: &str,
    ) -> Result<CollectionStats, StoreError> {
        let reply = self.db.run_command(doc! {"collStats": collection}).await?;
        Ok(CollectionStats {
            documents: count(reply.get("count")),
            bytes: count(reply.get("size")),
        })
    }
}

/// A statistic as a count: servers answer int32, int64 or double; anything else is 0.
fn count(value: Option<&Bson>) -> u64 {
    crate::model::number(value).max(0) as u64
}
