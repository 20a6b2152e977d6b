//! Walking BSON bytes as stored: a document's elements as (type, key, value bytes), without
//! the `RawDocument` iterator (which returns every element through a `Result`, its key checked
//! by a second pass and its value wrapped in an enum). Range reads walk a year of stored
//! documents, some 20,000 pages of content or 40 people sketches of 4,096 registers; through
//! the iterator that walk was most of their time (`perf`, 2026-12-01).
//!
//! Every BSON type is known, so a well-formed document walks whole. The checks the iterator
//! makes are made too (lengths that add up, a string's UTF-8 and its closing 0, a boolean of 0
//! or 1); an element that fails one ends the walk. Keys are bytes here; a caller that needs
//! text checks them (`std::str::from_utf8`).

pub const DOUBLE: u8 = 0x01;
pub const STRING: u8 = 0x02;
pub const DOCUMENT: u8 = 0x03;
pub const ARRAY: u8 = 0x04;
pub const BOOLEAN: u8 = 0x08;
pub const NULL: u8 = 0x0A;
pub const INT32: u8 = 0x10;
pub const INT64: u8 = 0x12;

/// A document's elements: its bytes without the length in front and the 0 at the end, if they
/// add up.
pub fn body(bytes: &[u8]) -> Option<&[u8]> {
    let len = i32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
    (usize::try_from(len).ok()? == bytes.len() && bytes.len() >= 5 && bytes[bytes.len() - 1] == 0)
        .then(|| &bytes[4..bytes.len() - 1])
}

/// The elements of a document body: (type, key, value bytes), `None` at one that does not
/// read (which ends the walk).
pub fn elements(mut body: &[u8]) -> impl Iterator<Item = Option<(u8, &[u8], &[u8])>> {
    std::iter::from_fn(move || {
        let (&kind, rest) = body.split_first()?;
        let element = (|| {
            let end = rest.iter().position(|b| *b == 0)?;
            let (key, rest) = (&rest[..end], &rest[end + 1..]);
            let size = value_size(kind, rest)?;
            let value = rest.get(..size)?;
            Some((kind, key, value, &rest[size..]))
        })();
        match element {
            Some((kind, key, value, rest)) => {
                body = rest;
                Some(Some((kind, key, value)))
            }
            None => {
                body = &[];
                Some(None)
            }
        }
    })
}

/// The text of a string value (its length, its UTF-8, its 0).
pub fn text(value: &[u8]) -> Option<&str> {
    std::str::from_utf8(value.get(4..value.len().checked_sub(1)?)?).ok()
}

/// The size of a value of BSON type `kind` at the start of `rest`, checked as the iterator
/// checks it; `None` for one that does not read or a type BSON does not have.
fn value_size(kind: u8, rest: &[u8]) -> Option<usize> {
    let length_at = |at: usize| -> Option<usize> {
        usize::try_from(i32::from_le_bytes(rest.get(at..at + 4)?.try_into().ok()?)).ok()
    };
    // A string at `at`: its length (with its 0), UTF-8, 0.
    let string_at = |at: usize| -> Option<usize> {
        let n = length_at(at).filter(|n| *n >= 1)?;
        let bytes = rest.get(at + 4..at + 4 + n)?;
        std::str::from_utf8(&bytes[..n - 1]).ok()?;
        (bytes[n - 1] == 0).then_some(4 + n)
    };
    let cstring_at = |at: usize| -> Option<usize> {
        let end = rest.get(at..)?.iter().position(|b| *b == 0)?;
        std::str::from_utf8(&rest[at..at + end]).ok()?;
        Some(end + 1)
    };
    Some(match kind {
        0x06 | NULL | 0x7F | 0xFF => 0, // undefined, null, max key, min key
        BOOLEAN => (*rest.first()? <= 1).then_some(1)?,
        INT32 => 4,
        DOUBLE | 0x09 | 0x11 | INT64 => 8, // datetime, timestamp
        0x07 => 12,                        // object id
        0x13 => 16,                        // decimal128
        STRING | 0x0D | 0x0E => string_at(0)?, // string, JavaScript, symbol
        DOCUMENT | ARRAY => {
            // length (all of it), elements, 0
            let n = length_at(0).filter(|n| *n >= 5)?;
            (*rest.get(n - 1)? == 0).then_some(n)?
        }
        0x05 => 5 + length_at(0)?, // binary: length, subtype, bytes
        0x0B => {
            // regular expression: pattern, options
            let pattern = cstring_at(0)?;
            pattern + cstring_at(pattern)?
        }
        0x0C => string_at(0)? + 12, // DBPointer: namespace, object id
        0x0F => length_at(0).filter(|n| *n >= 14)?, // JavaScript with scope: all of it
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, spec::BinarySubtype, Binary, Bson, RawDocumentBuf, Regex, Timestamp};

    #[test]
    fn every_type_walks_as_the_iterator_walks_it() {
        let d = doc! {
            "d": 1.5, "s": "text", "o": {"a": 1}, "a": [1, "x"],
            "b": Binary { subtype: BinarySubtype::Generic, bytes: vec![1, 2, 3] },
            "u": Bson::Undefined, "id": mongodb::bson::oid::ObjectId::new(), "t": true,
            "dt": mongodb::bson::DateTime::now(), "n": Bson::Null,
            "re": Regex { pattern: "a+".into(), options: "i".into() },
            "js": Bson::JavaScriptCode("f()".into()),
            "sym": Bson::Symbol("s".into()),
            "jsw": Bson::JavaScriptCodeWithScope(mongodb::bson::JavaScriptCodeWithScope {
                code: "g()".into(), scope: doc! {"x": 1},
            }),
            "i": 7_i32, "ts": Timestamp { time: 1, increment: 2 }, "l": 8_i64,
            "dec": Bson::Decimal128(mongodb::bson::Decimal128::from_bytes([0; 16])),
            "max": Bson::MaxKey, "min": Bson::MinKey, "last": 1,
        };
        let raw = RawDocumentBuf::from_document(&d).unwrap();
        let walked: Vec<(u8, String, Vec<u8>)> = elements(body(raw.as_bytes()).unwrap())
            .map(|e| {
                let (kind, key, value) = e.expect("every element reads");
                (
                    kind,
                    String::from_utf8(key.to_vec()).unwrap(),
                    value.to_vec(),
                )
            })
            .collect();
        let keys: Vec<&str> = walked.iter().map(|(_, k, _)| k.as_str()).collect();
        assert_eq!(keys, d.keys().map(String::as_str).collect::<Vec<_>>());
        let strings: Vec<&str> = walked
            .iter()
            .filter(|(kind, ..)| *kind == STRING)
            .filter_map(|(_, _, v)| text(v))
            .collect();
        assert_eq!(strings, ["text"]);
    }
}
