//! Projected reads on both stores: `get_many_fields` and `scan` with fields answer each
//! document with its `_id` and exactly the top-level fields asked for that it has (whole, sub-
//! documents included), nothing else; a document that does not exist is left out.

mod support;

use mongodb::bson::{doc, Bson, Document};
use std::collections::BTreeMap;
use support::*;
use tally::field::FieldKey;
use tally::store::{Batch, CollectionBatch, DocUpdate, Mark};

fn field(path: &str) -> FieldKey {
    FieldKey::parse(path).unwrap()
}

/// A document's fields by name, whatever order the store kept them in.
fn fields(doc: &Document) -> BTreeMap<String, Bson> {
    doc.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn expected(doc: Document) -> BTreeMap<String, Bson> {
    fields(&doc)
}

async fn projections_return_exactly_the_fields_asked_for(backend: Backend) {
    let store = TestStore::new(backend).await;
    let month = |id: &str, views: i64| DocUpdate {
        id: id.into(),
        inc: vec![
            (field("d.01.v"), views),
            (field("h.01.02.v"), views),
            (field("u"), 1),
            (field("v"), views),
        ],
        set: vec![(field("t"), "a title".into())],
        mark: Some(Mark {
            writer: "0123456789ab".into(),
            seq: 7,
        }),
        ..DocUpdate::default()
    };
    let batch = Batch {
        collections: vec![CollectionBatch {
            collection: "traffic.2026".into(),
            docs: vec![month("acme:2026-10", 3), month("acme:2026-11", 5)],
        }],
    };
    let applied = store.store.apply(&batch).await;
    assert!(applied.failed.is_empty(), "{:?}", applied.failed);

    let ids = ["acme:2026-11", "acme:2026-09", "acme:2026-10"].map(String::from);
    let mut docs = store
        .store
        .get_many_fields("traffic.2026", &ids, &["v", "d", "absent"])
        .await
        .unwrap();
    docs.sort_by_key(|d| d.get_str("_id").unwrap().to_owned());
    let got: Vec<_> = docs.iter().map(fields).collect();
    assert_eq!(
        got,
        vec![
            expected(doc! {"_id": "acme:2026-10", "v": 3_i64, "d": {"01": {"v": 3_i64}}}),
            expected(doc! {"_id": "acme:2026-11", "v": 5_i64, "d": {"01": {"v": 5_i64}}}),
        ]
    );

    // Only the marks, as the flusher reads them; a text field alone.
    let docs = store
        .store
        .get_many_fields("traffic.2026", &ids[..1], &["_w", "t"])
        .await
        .unwrap();
    assert_eq!(
        docs.iter().map(fields).collect::<Vec<_>>(),
        vec![expected(
            doc! {"_id": "acme:2026-11", "_w": {"0123456789ab": 7_i64}, "t": "a title"}
        )]
    );

    // scan with fields: the same projection, in `_id` order.
    let docs = store
        .store
        .scan("traffic.2026", "acme:", "acme;", &["u"], 10)
        .await
        .unwrap();
    assert_eq!(
        docs.iter().map(fields).collect::<Vec<_>>(),
        vec![
            expected(doc! {"_id": "acme:2026-10", "u": 1_i64}),
            expected(doc! {"_id": "acme:2026-11", "u": 1_i64}),
        ]
    );

    // No projection: whole.
    let whole = store
        .store
        .get_many("traffic.2026", &ids[..1])
        .await
        .unwrap();
    let keys: Vec<_> = fields(&whole[0]).into_keys().collect();
    assert_eq!(keys, ["_id", "_w", "d", "h", "t", "u", "v"]);
}

both_stores!(projections_return_exactly_the_fields_asked_for);
