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

use super::walk;
use super::Ranked;
use crate::field::{is_reserved, unescape, Key};
use mongodb::bson::{Bson, Document, RawDocument};
use std::collections::{BTreeSet, HashSet};

/// Bookkeeping fields of a document, which a merge leaves out: its id and its writers' marks.
const BOOKKEEPING: [&str; 2] = ["_id", "_w"];

/// A field's value as a merge sees it.
pub enum Field<'a, D> {
    Sub(D),
    /// A counter, whatever numeric type a writer left (`$inc` keeps int32, int64 or double).
    Number(i64),
    Text(&'a str),
    Other,
}

/// A document a merge reads: a decoded [`Document`], or one still in its stored bytes
/// ([`RawDocument`]: a year of content is some 20,000 pages, and decoding each period's
/// documents before adding them up cost more than the adding).
pub trait Fields<'a>: Copy + 'a {
    /// The fields in order; a raw document's walk ends at an element that does not read.
    fn fields(self) -> impl Iterator<Item = (&'a str, Field<'a, Self>)>;
    /// The sub-document `name`.
    fn sub(self, name: &str) -> Option<Self>;
}

impl<'a> Fields<'a> for &'a Document {
    fn fields(self) -> impl Iterator<Item = (&'a str, Field<'a, Self>)> {
        self.iter().map(|(name, value)| {
            let field = match value {
                Bson::Document(d) => Field::Sub(d),
                Bson::Int32(n) => Field::Number(i64::from(*n)),
                Bson::Int64(n) => Field::Number(*n),
                Bson::Double(d) => Field::Number(*d as i64),
                Bson::String(s) => Field::Text(s),
                _ => Field::Other,
            };
            (name.as_str(), field)
        })
    }

    fn sub(self, name: &str) -> Option<Self> {
        self.get_document(name).ok()
    }
}

impl<'a> Fields<'a> for &'a RawDocument {
    fn fields(self) -> impl Iterator<Item = (&'a str, Field<'a, Self>)> {
        walk::elements(&self.as_bytes()[4..self.as_bytes().len() - 1]).map_while(|element| {
            let (kind, key, value) = element?;
            let field = match kind {
                walk::DOCUMENT => Field::Sub(RawDocument::from_bytes(value).ok()?),
                walk::INT32 => Field::Number(i64::from(i32::from_le_bytes(value.try_into().ok()?))),
                walk::INT64 => Field::Number(i64::from_le_bytes(value.try_into().ok()?)),
                walk::DOUBLE => Field::Number(f64::from_le_bytes(value.try_into().ok()?) as i64),
                walk::STRING => Field::Text(walk::text(value)?),
                _ => Field::Other,
            };
            Some((std::str::from_utf8(key).ok()?, field))
        })
    }

    fn sub(self, name: &str) -> Option<Self> {
        self.fields().find_map(|(key, value)| match value {
            Field::Sub(d) if key == name => Some(d),
            _ => None,
        })
    }
}

/// Adds the counters of `doc` into `into`, sub-documents into sub-documents; a text of `doc`
/// replaces the one in `into` (merge in period order, so the latest wins). Counters are summed
/// as 64-bit integers (saturating), whatever numeric type a writer left.
pub fn merge_into<'a>(into: &mut Document, doc: impl Fields<'a>) {
    for (name, value) in doc.fields() {
        if BOOKKEEPING.contains(&name) {
            continue;
        }
        match value {
            Field::Sub(sub) => {
                if !matches!(into.get(name), Some(Bson::Document(_))) {
                    into.insert(name, Document::new());
                }
                if let Some(Bson::Document(target)) = into.get_mut(name) {
                    merge_into(target, sub);
                }
            }
            Field::Number(n) => match into.get_mut(name) {
                Some(Bson::Int64(sum)) => *sum = sum.saturating_add(n),
                // A text or a sub-document of another period under the same name counts 0.
                Some(other) => *other = Bson::Int64(n),
                None => {
                    into.insert(name, Bson::Int64(n));
                }
            },
            Field::Text(text) => {
                into.insert(name, text);
            }
            Field::Other => {}
        }
    }
}

/// The merge of `docs`, in the order given.
pub fn merged<'a, D: Fields<'a>>(docs: impl IntoIterator<Item = D>) -> Document {
    let mut out = Document::new();
    for doc in docs {
        merge_into(&mut out, doc);
    }
    out
}

/// Whether a value counts anything: a non-zero counter, or a sub-document holding one.
fn counts_something<'a, D: Fields<'a>>(value: Field<'a, D>) -> bool {
    match value {
        Field::Sub(d) => d.fields().any(|(_, v)| counts_something(v)),
        Field::Number(n) => n != 0,
        Field::Text(_) | Field::Other => false,
    }
}

/// The keys (original text, unescaped) of the capped sub-document `space` that some of `docs`
/// name while another of them counted something under `(other)` without naming them: their
/// sums may miss views that the other document could not attribute. Empty when every
/// document admitted the same keys, or none overflowed.
pub fn unequal_keys<'a, D: Fields<'a>>(docs: &[D], space: &str) -> BTreeSet<String> {
    let named: Vec<(Vec<&str>, bool)> = docs
        .iter()
        .map(|doc| {
            let Some(sub) = doc.sub(space) else {
                return (Vec::new(), false);
            };
            let mut keys = Vec::new();
            let mut overflowed = false;
            for (key, value) in sub.fields() {
                if key == Key::OTHER {
                    overflowed |= counts_something(value);
                }
                if !is_reserved(key) {
                    keys.push(key);
                }
            }
            (keys, overflowed)
        })
        .collect();
    // Only a document that overflowed can have missed a key (the usual case: none did).
    let overflowed: Vec<HashSet<&str>> = named
        .iter()
        .filter(|(_, overflowed)| *overflowed)
        .map(|(keys, _)| keys.iter().copied().collect())
        .collect();
    let mut out = BTreeSet::new();
    if overflowed.is_empty() {
        return out;
    }
    for (keys, _) in &named {
        for key in keys {
            if overflowed.iter().any(|others| !others.contains(key)) {
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
    use mongodb::bson::{doc, RawDocumentBuf};
    use proptest::prelude::*;

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
    fn document(depth: u32) -> BoxedStrategy<Document> {
        let key = prop::sample::select(vec!["_id", "_w", "v", "u", "t", "/a", "/b", "(other)"]);
        let scalar = prop_oneof![
            (-5..50i32).prop_map(Bson::Int32),
            (-5..50i64).prop_map(Bson::Int64),
            (-5.0..50.0f64).prop_map(Bson::Double),
            "[a-z]{0,4}".prop_map(Bson::String),
            any::<bool>().prop_map(Bson::Boolean),
        ];
        let value = if depth == 0 {
            scalar.boxed()
        } else {
            prop_oneof![scalar, document(depth - 1).prop_map(Bson::Document)].boxed()
        };
        prop::collection::vec((key, value), 0..8)
            .prop_map(|fields| {
                fields
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect::<Document>()
            })
            .boxed()
    }

    proptest::proptest! {
        /// Documents merged from their stored bytes give what the decoded ones give, and name
        /// the same partial keys.
        #[test]
        fn stored_bytes_merge_as_decoded_documents(
            docs in prop::collection::vec(document(2), 0..5),
        ) {
            let raw: Vec<RawDocumentBuf> = docs
                .iter()
                .map(|d| RawDocumentBuf::from_document(d).unwrap())
                .collect();
            let raw: Vec<&RawDocument> = raw.iter().map(|d| &**d).collect();
            let decoded: Vec<&Document> = docs.iter().collect();
            prop_assert_eq!(merged(raw.iter().copied()), merged(decoded.iter().copied()));
            for space in ["v", "/a", "(other)"] {
                prop_assert_eq!(unequal_keys(&raw, space), unequal_keys(&decoded, space));
            }
        }
    }
}
