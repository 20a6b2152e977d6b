//! People: distinct visitors counted once over any range, with HyperLogLog sketches
//! ([`sketch`]) kept in documents and merged at read time ([`range`]).
//!
//! A visitor is a 64-bit hash, never stored: [`visitor_hash`] keys SipHash-2-4 with a secret
//! of the site for one site-local year, over the snippet's first-party random id when it sent
//! one, else over the address and the User-Agent. The hash raises one register of the
//! precision-12 sketch of the visitor's local day, month and year ([`count`]: three `$max`
//! increments on `people.<YYYY>` documents, register `i` at `"<i / 64>.<i % 64>"`, an int32
//! rank: 64 sub-documents of 64 registers, since FerretDB finds a field by walking its
//! document's keys and a flat document of 4,096 fields took it twice as long to update). Only
//! ranks reach a document: an index and a rank of at most 53 say nothing about who raised
//! them. Keys of different years are unrelated, so sketches of two years do not merge: a range
//! across a rotation adds the two years' estimates ([`range::people`]).
//!
//! This module must not touch the store or the coalescer: it says what to raise and how to
//! read registers back.

mod bytes;
pub mod range;
pub mod sketch;
pub mod traffic;

use crate::field::FieldKey;
use crate::period::LocalTime;
use crate::reports::{Increments, ReportKind};
use mongodb::bson::{Bson, Document};
use sketch::Sketch;
use std::hash::Hasher;
use std::net::IpAddr;
use std::sync::LazyLock;

/// The precision of the site sketches: 4,096 registers, standard error 1.04/√4096 = 1.6%.
pub const PRECISION: u8 = 12;

/// The registers of a site sketch.
pub const REGISTERS: usize = 1 << PRECISION;

/// The shortest and longest snippet id believed (`vi`): random ids of the snippet are 22
/// characters; anything much shorter is too guessable to tell visitors apart.
pub const SNIPPET_ID_BYTES: std::ops::RangeInclusive<usize> = 16..=64;

/// A site's secret for one site-local year: 16 random bytes, the SipHash key.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(pub [u8; 16]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(…)")
    }
}

/// Who a hit comes from, as far as tally can tell.
#[derive(Clone, Copy, Debug)]
pub enum Visitor<'a> {
    /// The snippet's first-party random id (`vi`), checked by [`snippet_id`].
    Snippet(&'a str),
    /// No snippet id: the client's address and User-Agent.
    Client { address: IpAddr, agent: &'a str },
}

/// `raw` if it can be a snippet id: [`SNIPPET_ID_BYTES`] long, of `A-Z a-z 0-9 - _` only.
pub fn snippet_id(raw: &str) -> Option<&str> {
    (SNIPPET_ID_BYTES.contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then_some(raw)
}

/// The visitor's 64-bit hash under the site's `key` for the year: SipHash-2-4 (a keyed
/// pseudo-random function, fixed by its specification, so every node and every release agrees)
/// over a tag byte and the identity, so a snippet id can never equal an address's input.
pub fn visitor_hash(key: &Key, visitor: Visitor<'_>) -> u64 {
    let mut h = siphasher::sip::SipHasher24::new_with_key(&key.0);
    match visitor {
        Visitor::Snippet(id) => {
            h.write_u8(b'v');
            h.write(id.as_bytes());
        }
        Visitor::Client { address, agent } => {
            h.write_u8(b'a');
            match address {
                IpAddr::V4(a) => h.write(&a.to_ipv6_mapped().octets()),
                IpAddr::V6(a) => h.write(&a.octets()),
            }
            h.write(agent.as_bytes());
        }
    }
    h.finish()
}

/// Registers per sub-document: register `i` is field `i % 64` of sub-document `i / 64`.
pub const GROUP: usize = 64;

/// The field of each register, `"0.0"` … `"63.63"`, built once: no allocation per hit.
static FIELDS: LazyLock<Vec<FieldKey>> = LazyLock::new(|| {
    (0..REGISTERS)
        .map(|i| FieldKey::from_parts(&[&(i / GROUP).to_string(), &(i % GROUP).to_string()]))
        .collect()
});

/// The register a field path names (`"<i / 64>.<i % 64>"`), if it is one of a sketch of
/// `registers` registers.
pub fn register_of_field(path: &str, registers: usize) -> Option<usize> {
    let (hi, lo) = path.split_once('.')?;
    let small = |s: &str| -> Option<usize> {
        (!s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (hi, lo) = (small(hi)?, small(lo)?);
    (lo < GROUP)
        .then_some(hi * GROUP + lo)
        .filter(|i| *i < registers)
}

/// The field holding register `index` (below [`REGISTERS`]).
pub fn register_field(index: usize) -> FieldKey {
    FIELDS[index].clone()
}

/// The `$max`es one visitor's hit asks: its register, in the people documents of the hit's
/// local day, month and year.
pub fn count(local: &LocalTime, hash: u64, out: &mut Increments) {
    let (index, rank) = Sketch::register_of(PRECISION, hash);
    for period in [
        local.day_period(),
        local.month_period(),
        local.year_period(),
    ] {
        out.max(
            ReportKind::People,
            period,
            register_field(index),
            i64::from(rank),
        );
    }
}

/// The sketch of precision `p` a document holds: register `i` at `"<i / 64>.<i % 64>"`,
/// absent = 0. Fields that are not registers (`_id`, the writers' marks `_w`) are skipped, as
/// are values no rank can be.
pub fn read_sketch(doc: &Document, p: u8) -> Sketch {
    let mut sketch = Sketch::new(p);
    for (hi, group) in doc {
        let (Ok(hi), Bson::Document(group)) = (hi.parse::<usize>(), group) else {
            continue;
        };
        for (lo, value) in group {
            let Ok(lo) = lo.parse::<usize>() else {
                continue;
            };
            if lo >= GROUP {
                continue;
            }
            let rank = match value {
                Bson::Int32(n) => i64::from(*n),
                Bson::Int64(n) => *n,
                Bson::Double(d) => *d as i64,
                _ => continue,
            };
            if let (Ok(rank), Some(index)) = (u8::try_from(rank), register_index(hi, lo)) {
                sketch.raise(index, rank);
            }
        }
    }
    sketch
}

/// The site sketch of a `people` document.
pub fn read(doc: &Document) -> Sketch {
    read_sketch(doc, PRECISION)
}

/// The register of field `lo` of sub-document `hi` (an index past the sketch is ignored by
/// [`Sketch::raise`]; one past `usize` is none).
fn register_index(hi: usize, lo: usize) -> Option<usize> {
    hi.checked_mul(GROUP)?.checked_add(lo)
}

/// The site sketch of a `people` document as stored (BSON bytes), read without building a
/// `Document` (64 sub-documents of 64 fields): what [`read`] gives for the same document. The
/// bytes are walked directly ([`bytes::registers`]); a document that walk does not know is read
/// through the `RawDocument` iterator, where an element that cannot be read ends the walk with
/// the registers read so far.
pub fn read_raw(doc: &mongodb::bson::RawDocument) -> Sketch {
    let mut sketch = Sketch::new(PRECISION);
    match bytes::registers(doc.as_bytes(), |index, rank| {
        sketch.raise(index, rank);
    }) {
        Some(()) => sketch,
        None => read_raw_iterated(doc),
    }
}

/// [`read_raw`] through the `RawDocument` iterator.
fn read_raw_iterated(doc: &mongodb::bson::RawDocument) -> Sketch {
    use mongodb::bson::RawBsonRef;
    let mut sketch = Sketch::new(PRECISION);
    for (hi, group) in doc.iter().map_while(Result::ok) {
        let (Ok(hi), RawBsonRef::Document(group)) = (hi.parse::<usize>(), group) else {
            continue;
        };
        for (lo, value) in group.iter().map_while(Result::ok) {
            let Ok(lo) = lo.parse::<usize>() else {
                continue;
            };
            if lo >= GROUP {
                continue;
            }
            let rank = match value {
                RawBsonRef::Int32(n) => i64::from(n),
                RawBsonRef::Int64(n) => n,
                RawBsonRef::Double(d) => d as i64,
                _ => continue,
            };
            if let (Ok(rank), Some(index)) = (u8::try_from(rank), register_index(hi, lo)) {
                sketch.raise(index, rank);
            }
        }
    }
    sketch
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::Period;
    use crate::reports::Value;
    use mongodb::bson::doc;

    const KEY: Key = Key([7; 16]);

    #[test]
    fn snippet_ids_are_checked() {
        assert!(snippet_id("AbC-_0123456789xyzAB").is_some());
        assert!(snippet_id("short").is_none());
        assert!(snippet_id("has a space 0123456789").is_none());
        assert!(snippet_id(&"x".repeat(65)).is_none());
    }

    #[test]
    fn hashes_are_keyed_and_fixed() {
        let client = Visitor::Client {
            address: "203.0.113.9".parse().unwrap(),
            agent: "Mozilla/5.0",
        };
        let a = visitor_hash(&KEY, client);
        assert_eq!(a, visitor_hash(&KEY, client), "deterministic");
        assert_ne!(a, visitor_hash(&Key([8; 16]), client), "another year's key");
        let v4: IpAddr = "203.0.113.9".parse().unwrap();
        let mapped: IpAddr = "::ffff:203.0.113.9".parse().unwrap();
        let agent = "Mozilla/5.0";
        assert_eq!(
            visitor_hash(&KEY, Visitor::Client { address: v4, agent }),
            visitor_hash(
                &KEY,
                Visitor::Client {
                    address: mapped,
                    agent
                }
            ),
            "one address, however written"
        );
        // SipHash-2-4 as specified (the paper's vector: key 00..0f, message 00..0e), so the
        // same visitor raises the same register on every node and in every release.
        let key: [u8; 16] = std::array::from_fn(|i| i as u8);
        let mut h = siphasher::sip::SipHasher24::new_with_key(&key);
        h.write(&(0..15u8).collect::<Vec<_>>());
        assert_eq!(h.finish(), 0xa129_ca61_49be_45e5);
        let mut h = siphasher::sip::SipHasher24::new_with_key(&key);
        h.write(b"vsome-snippet-id-0001");
        assert_eq!(
            visitor_hash(&Key(key), Visitor::Snippet("some-snippet-id-0001")),
            h.finish()
        );
        assert_ne!(
            visitor_hash(&KEY, Visitor::Snippet("a")),
            visitor_hash(&KEY, Visitor::Snippet("b"))
        );
    }

    #[test]
    fn a_hit_raises_one_register_of_its_day_month_and_year() {
        let local = LocalTime::at(
            "2026-06-30T23:30:00Z".parse().unwrap(),
            "Asia/Tokyo".parse().unwrap(),
        );
        let mut out = Increments::default();
        count(&local, 1 << 50, &mut out);
        let periods: Vec<Period> = out.entries.iter().map(|(d, _, _)| d.period).collect();
        assert_eq!(
            periods,
            [
                Period::Day(2026, 7, 1),
                Period::Month(2026, 7),
                Period::Year(2026)
            ]
        );
        for (doc, field, value) in &out.entries {
            assert_eq!(doc.kind, ReportKind::People);
            assert_eq!(field.as_str(), "0.0");
            assert_eq!(*value, Value::Max(2));
        }
    }

    #[test]
    fn a_document_reads_back_as_its_registers() {
        let d = doc! {"_id": "acme:2026-06", "0": {"0": 3, "17": 2_i64, "64": 5, "x": 1},
        "63": {"63": 1.0, "18": "x"}, "_w": {"0123456789ab": 5_i64}, "64": {"0": 4}};
        let s = read(&d);
        assert_eq!(s.registers()[0], 3);
        assert_eq!(s.registers()[17], 2);
        assert_eq!(s.registers()[4095], 1);
        assert_eq!(s.registers().iter().filter(|r| **r > 0).count(), 3);
        assert_eq!(register_of_field("63.63", REGISTERS), Some(4095));
        assert_eq!(register_of_field("0.17", REGISTERS), Some(17));
        for no in ["64.0", "0.64", "17", "a.b", "1.2.3", "001.1"] {
            assert_eq!(register_of_field(no, REGISTERS), None, "{no}");
        }
        assert_eq!(register_field(4095).as_str(), "63.63");
        let raw = mongodb::bson::RawDocumentBuf::from_document(&d).unwrap();
        assert_eq!(
            read_raw(&raw),
            s,
            "the same registers from the stored bytes"
        );
    }
}
