//! The registers of a `people` document read straight from its BSON bytes ([`walk`]): one
//! pass over the buffer. A year's range merges some 40 documents of 4,096 registers; through
//! the `RawDocument` iterator their decoding was about 60% of the CPU of such a read (`perf`,
//! 2026-12-01).
//!
//! It knows the layout tally writes (`"<i / 64>": {"<i % 64>": <int32>}`) and the element
//! types a document edited by another client may carry; at anything else (an unusual type, a
//! key `str::parse` would read differently, a length that does not add up) it gives up and the
//! caller reads the document the general way ([`super::read_raw`]), so both always agree.

use super::GROUP;
use crate::reports::walk::{self, body, elements, DOCUMENT, DOUBLE, INT32, INT64};

/// The types of the elements this walk reads or skips; at any other it gives up.
fn known(kind: u8) -> bool {
    matches!(
        kind,
        DOUBLE
            | walk::STRING
            | DOCUMENT
            | walk::ARRAY
            | walk::BOOLEAN
            | walk::NULL
            | INT32
            | INT64
            | 0x07 // object id
            | 0x09 // datetime
            | 0x11 // timestamp
            | 0x7F // max key
            | 0xFF // min key
    )
}

/// Calls `raise(index, rank)` for each register of the document `bytes`, as
/// [`super::read_sketch`] reads them; `None` (perhaps after some calls) when the document
/// holds something this walk does not know.
pub fn registers(bytes: &[u8], mut raise: impl FnMut(usize, u8)) -> Option<()> {
    for element in elements(body(bytes)?) {
        let (kind, key, value) = element.filter(|(kind, ..)| known(*kind))?;
        let (Some(hi), DOCUMENT) = (number(key)?, kind) else {
            continue;
        };
        for element in elements(body(value)?) {
            let (kind, key, value) = element.filter(|(kind, ..)| known(*kind))?;
            let Some(lo) = number(key)? else {
                continue;
            };
            if lo >= GROUP {
                continue;
            }
            let rank = match kind {
                INT32 => i64::from(i32::from_le_bytes(value.try_into().ok()?)),
                INT64 => i64::from_le_bytes(value.try_into().ok()?),
                DOUBLE => f64::from_le_bytes(value.try_into().ok()?) as i64,
                _ => continue,
            };
            let (Ok(rank), Some(index)) = (
                u8::try_from(rank),
                hi.checked_mul(GROUP).and_then(|i| i.checked_add(lo)),
            ) else {
                continue;
            };
            raise(index, rank);
        }
    }
    Some(())
}

/// A key as `str::parse::<usize>` reads it: `Some(Some(n))` for up to 4 digits, `Some(None)`
/// for a key that is not a number, `None` for one this walk leaves to `parse` (a sign, many
/// digits, bytes that are not UTF-8).
fn number(key: &[u8]) -> Option<Option<usize>> {
    if !key.is_empty() && key.len() <= 4 && key.iter().all(u8::is_ascii_digit) {
        return Some(Some(
            key.iter().fold(0, |n, b| n * 10 + usize::from(b - b'0')),
        ));
    }
    let text = std::str::from_utf8(key).ok()?;
    match text.parse::<usize>() {
        Ok(_) => None,
        Err(_) => Some(None),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{read, read_raw, read_raw_iterated, Sketch, REGISTERS};
    use super::*;
    use mongodb::bson::{doc, Bson, Document, RawDocument, RawDocumentBuf};
    use proptest::prelude::*;

    /// A `people` document as tally writes it, every register set.
    fn full() -> Document {
        let mut d = doc! {"_id": "acme:2026-06"};
        for hi in 0..REGISTERS / GROUP {
            let mut group = Document::new();
            for lo in 0..GROUP {
                group.insert(lo.to_string(), ((hi * GROUP + lo) % 20 + 1) as i32);
            }
            d.insert(hi.to_string(), group);
        }
        d
    }

    #[test]
    fn tallys_own_layout_is_walked_without_the_iterator() {
        let d = full();
        let raw = RawDocumentBuf::from_document(&d).unwrap();
        let mut seen = vec![0u8; REGISTERS];
        assert_eq!(registers(raw.as_bytes(), |i, r| seen[i] = r), Some(()));
        assert_eq!(seen, read(&d).registers());
        assert_eq!(read_raw(&raw), read(&d));
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            (0..70usize).prop_map(|n| n.to_string()),
            prop::sample::select(vec![
                "_id",
                "_w",
                "x",
                "+1",
                "007",
                "00",
                "",
                "1.5",
                "-1",
                "é",
                "99999999999999999999999",
                "18446744073709551615",
                "288230376151711744",
            ])
            .prop_map(str::to_owned),
        ]
    }

    fn scalar() -> impl Strategy<Value = Bson> {
        prop_oneof![
            (-3..60i32).prop_map(Bson::Int32),
            prop_oneof![Just(i64::MAX), -3..300i64].prop_map(Bson::Int64),
            prop_oneof![Just(f64::NAN), Just(1e300), -3.0..60.0f64].prop_map(Bson::Double),
            "[a-z]{0,3}".prop_map(Bson::String),
            any::<bool>().prop_map(Bson::Boolean),
            Just(Bson::Null),
            Just(Bson::Array(vec![Bson::Int32(1)])),
        ]
    }

    fn document() -> impl Strategy<Value = Document> {
        let group = prop::collection::vec((key(), scalar()), 0..12)
            .prop_map(|fields| fields.into_iter().collect::<Document>());
        let value = prop_oneof![3 => group.prop_map(Bson::Document), 1 => scalar()];
        prop::collection::vec((key(), value), 0..12)
            .prop_map(|fields| fields.into_iter().collect::<Document>())
    }

    /// The registers where `a` and `b` differ: (index, a's, b's), a short failure message.
    fn differences(a: &Sketch, b: &Sketch) -> Vec<(usize, u8, u8)> {
        let (a, b) = (a.registers(), b.registers());
        (0..a.len().max(b.len()))
            .filter(|i| a.get(*i) != b.get(*i))
            .map(|i| {
                (
                    i,
                    a.get(i).copied().unwrap_or(0),
                    b.get(i).copied().unwrap_or(0),
                )
            })
            .collect()
    }

    proptest! {
        /// Any document, whatever another client left in it: the walk, or the iterator where
        /// the walk gives up, reads what the `Document` reader reads.
        #[test]
        fn the_walk_reads_what_the_document_reader_reads(d in document()) {
            let raw = RawDocumentBuf::from_document(&d).unwrap();
            prop_assert_eq!(differences(&read_raw(&raw), &read(&d)), vec![]);
        }

        /// Damaged bytes: the walk never reads past them, and what it gives equals the
        /// iterator's (which stops at the first element that does not read).
        #[test]
        fn damaged_bytes_read_as_the_iterator_reads_them(
            d in document(),
            damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut bytes = RawDocumentBuf::from_document(&d).unwrap().into_bytes();
            for (at, byte) in damage {
                let n = bytes.len();
                bytes[at.index(n)] = byte;
            }
            if let Ok(raw) = RawDocument::from_bytes(&bytes) {
                let walked = registers(raw.as_bytes(), |_, _| ()).is_some();
                prop_assert_eq!(
                    differences(&read_raw(raw), &read_raw_iterated(raw)),
                    vec![],
                    "walked {} {:?}",
                    walked,
                    raw
                );
            }
        }
    }
}
