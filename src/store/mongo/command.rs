//! The shape of an `update` command: one upsert statement per document update (its guard and
//! mark in the filter, `$inc`, `$max`, `$set` and `$unset` in the update), and the runs of
//! statements that fit one command ([`super::MAX_STATEMENTS`] statements, [`MAX_COMMAND_BYTES`]).
//!
//! Pure functions: this module must not talk to the server.

use super::MAX_COMMAND_BYTES;
use crate::store::{CollectionBatch, DocUpdate, MARKS};
use mongodb::bson::{doc, Bson, Document};

/// One upsert statement of an `update` command.
pub(super) fn statement(d: &DocUpdate) -> Document {
    let mut q = doc! {"_id": &d.id};
    if let Some(guard) = &d.guard {
        q.insert(guard.field.as_str(), doc! {"$not": {"$gt": guard.max}});
    }
    if let Some(mark) = &d.mark {
        q.insert(mark.field(), doc! {"$not": {"$gte": mark.seq}});
    }
    let mut u = Document::new();
    if !d.inc.is_empty() {
        let mut inc = Document::new();
        for (field, by) in &d.inc {
            inc.insert(field.as_str(), Bson::Int64(*by));
        }
        u.insert("$inc", inc);
    }
    if !d.max.is_empty() {
        let mut max = Document::new();
        for (field, value) in &d.max {
            max.insert(field.as_str(), crate::store::inc::max_value(*value));
        }
        u.insert("$max", max);
    }
    if !d.set.is_empty() || d.mark.is_some() {
        let mut set = Document::new();
        for (field, text) in &d.set {
            set.insert(field.as_str(), text.as_str());
        }
        if let Some(mark) = &d.mark {
            set.insert(mark.field(), Bson::Int64(mark.seq));
        }
        u.insert("$set", set);
    }
    if !d.unset.is_empty() {
        let mut unset = Document::new();
        for writer in &d.unset {
            unset.insert(format!("{MARKS}.{writer}"), "");
        }
        u.insert("$unset", unset);
    }
    doc! {"q": q, "u": u, "upsert": true}
}

/// Splits `coll`'s statements into runs that fit one command.
pub(super) fn chunks(coll: &CollectionBatch, max_statements: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, d) in coll.docs.iter().enumerate() {
        let size = 64
            + d.id.len()
            + d.inc
                .iter()
                .map(|(f, _)| f.as_str().len() + 10)
                .sum::<usize>()
            + d.set
                .iter()
                .map(|(f, t)| f.as_str().len() + t.len() + 8)
                .sum::<usize>()
            + d.max
                .iter()
                .map(|(f, _)| f.as_str().len() + 10)
                .sum::<usize>();
        if i > start && (i - start >= max_statements || bytes + size > MAX_COMMAND_BYTES) {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < coll.docs.len() {
        out.push(start..coll.docs.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::FieldKey;
    use crate::store::mongo::MAX_STATEMENTS;

    fn batch(docs: usize, fields: usize) -> CollectionBatch {
        CollectionBatch {
            collection: "traffic.2011".into(),
            docs: (0..docs)
                .map(|i| DocUpdate {
                    id: format!("s{i}:2011"),
                    inc: (0..fields)
                        .map(|f| (FieldKey::parse(&format!("f{f}")).unwrap(), 1))
                        .collect(),
                    ..DocUpdate::default()
                })
                .collect(),
        }
    }

    fn assert_covers(coll: &CollectionBatch, ranges: &[std::ops::Range<usize>]) {
        let mut next = 0;
        for r in ranges {
            assert_eq!(r.start, next);
            assert!(r.len() <= MAX_STATEMENTS && !r.is_empty());
            next = r.end;
        }
        assert_eq!(next, coll.docs.len());
    }

    #[test]
    fn chunks_respect_a_smaller_statement_limit() {
        let ranges = chunks(&batch(120, 1), 50);
        assert_eq!(ranges, vec![0..50, 50..100, 100..120]);
    }

    #[test]
    fn chunks_respect_the_statement_limit() {
        let coll = batch(MAX_STATEMENTS * 2 + 5, 1);
        let ranges = chunks(&coll, MAX_STATEMENTS);
        assert_covers(&coll, &ranges);
        assert!(ranges.len() >= 3);
        assert!(chunks(&batch(0, 1), MAX_STATEMENTS).is_empty());
        assert_eq!(chunks(&batch(3, 1), MAX_STATEMENTS), vec![0..3]);
    }

    #[test]
    fn chunks_respect_the_size_limit() {
        // 2,000 documents of 1,000 fields each: ~16 MB of statements.
        let coll = batch(2_000, 1_000);
        let ranges = chunks(&coll, MAX_STATEMENTS);
        assert_covers(&coll, &ranges);
        assert!(ranges.len() >= 2, "{ranges:?}");
    }
}
