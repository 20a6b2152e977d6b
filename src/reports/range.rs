//! Reading a range: documents of several periods merged into one reading, exactly.
//!
//! Counters add up: the merge of a range's documents is a document whose every counter is the
//! sum of the documents' counters, so any report's `read` reads it as it reads one period.
//! Texts (a page's latest title) are taken from the latest document that has one. What the
//! sum cannot say is said beside it: a capped key named in one document may have been counted
//! under `(other)` in another, whose cap was reached before it arrived ([`unequal_keys`]).
//!
//! Pure: which documents a range needs is the caller's business; this module must not touch
//! the store or HTTP.

use super::{number, Ranked};
use crate::field::{is_reserved, unescape, Key};
use mongodb::bson::{Bson, Document};
use std::collections::BTreeSet;

/// Bookkeeping fields of a document, which a merge leaves out: its id and its writers' marks.
const BOOKKEEPING: [&str; 2] = ["_id", "_w"];

/// Adds the counters of `doc` into `into`, sub-documents into sub-documents; a text of `doc`
/// replaces the one in `into` (merge in period order, so the latest wins). Counters are summed
/// as 64-bit integers, whatever numeric type a writer left.
pub fn merge_into(into: &mut Document, doc: &Document) {
    for (name, value) in doc {
        if BOOKKEEPING.contains(&name.as_str()) {
            continue;
        }
        match value {
            Bson::Document(sub) => {
                if !matches!(into.get(name), Some(Bson::Document(_))) {
                    into.insert(name.clone(), Document::new());
                }
                if let Some(Bson::Document(target)) = into.get_mut(name) {
                    merge_into(target, sub);
                }
            }
            Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) => {
                let sum = number(into.get(name)) + number(Some(value));
                into.insert(name.clone(), Bson::Int64(sum));
            }
            Bson::String(_) => {
                into.insert(name.clone(), value.clone());
            }
            _ => {}
        }
    }
}

/// The merge of `docs`, in the order given.
pub fn merged<'a>(docs: impl IntoIterator<Item = &'a Document>) -> Document {
    let mut out = Document::new();
    for doc in docs {
        merge_into(&mut out, doc);
    }
    out
}

/// Whether a value counts anything: a non-zero counter, or a sub-document holding one.
fn counts_something(value: &Bson) -> bool {
    match value {
        Bson::Document(d) => d.values().any(counts_something),
        other => number(Some(other)) != 0,
    }
}

/// The keys (original text, unescaped) of the capped sub-document `space` that some of `docs`
/// name while another of them counted something under `(other)` without naming them: their
/// sums may miss views that the other document could not attribute. Empty when every
/// document admitted the same keys, or none overflowed.
pub fn unequal_keys(docs: &[&Document], space: &str) -> BTreeSet<String> {
    let named: Vec<(BTreeSet<&str>, bool)> = docs
        .iter()
        .map(|doc| {
            let Ok(sub) = doc.get_document(space) else {
                return (BTreeSet::new(), false);
            };
            let keys = sub
                .keys()
                .filter(|k| !is_reserved(k))
                .map(String::as_str)
                .collect();
            let overflowed = sub.get(Key::OTHER).is_some_and(counts_something);
            (keys, overflowed)
        })
        .collect();
    let mut out = BTreeSet::new();
    for (keys, _) in &named {
        for key in keys {
            let missed = named
                .iter()
                .any(|(others, overflowed)| *overflowed && !others.contains(key));
            if missed {
                out.insert(unescape(key).text);
            }
        }
    }
    out
}

/// Marks the entries of `ranked` whose key is in `keys` as partial; whether any is.
pub fn mark_partial(ranked: &mut Ranked, keys: &BTreeSet<String>) -> bool {
    let mut any = false;
    for entry in &mut ranked.entries {
        if keys.contains(&entry.key) {
            entry.partial = true;
            any = true;
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::ranked;
    use mongodb::bson::doc;

    #[test]
    fn counters_add_up_whatever_their_type_and_the_latest_title_wins() {
        let a = doc! {"_id": "acme:2026-10", "_w": {"x": 3}, "v": 2_i32, "n": 1,
        "p": {"/": {"v": 2_i64, "t": "Home"}, "(other)": {"v": 1.0}}};
        let b = doc! {"_id": "acme:2026-11-01", "v": 5_i64,
        "p": {"/": {"v": 1, "t": "Home page"}, "/new": {"v": 4}}};
        let m = merged([&a, &b]);
        assert_eq!(
            m,
            doc! {"v": 7_i64, "n": 1_i64, "p": {"/": {"v": 3_i64, "t": "Home page"},
            "(other)": {"v": 1_i64}, "/new": {"v": 4_i64}}}
        );
        let r = ranked(&m, "p");
        assert_eq!(r.total(), 8);
        assert_eq!(r.other, 1);
    }

    #[test]
    fn a_key_named_in_one_document_and_unnamed_beside_another_overflow_is_partial() {
        let october = doc! {"p": {"/a": {"v": 3}, "/b": {"v": 1}}};
        let november = doc! {"p": {"/a": {"v": 2}, "(other)": {"v": 4}}};
        let keys = unequal_keys(&[&october, &november], "p");
        assert_eq!(keys, BTreeSet::from(["/b".to_owned()]));
        let mut r = ranked(&merged([&october, &november]), "p");
        assert!(mark_partial(&mut r, &keys));
        assert!(r.entries.iter().any(|e| e.key == "/b" && e.partial));
        assert!(r.entries.iter().any(|e| e.key == "/a" && !e.partial));
        assert_eq!(r.other, 4);
        // No overflow anywhere: different keys are simply different pages.
        let december = doc! {"p": {"/c": {"v": 1}}};
        assert!(unequal_keys(&[&october, &december], "p").is_empty());
        // An (other) that counts nothing is no overflow.
        let empty = doc! {"p": {"(other)": {"v": 0}}};
        assert!(unequal_keys(&[&october, &empty], "p").is_empty());
    }
}
