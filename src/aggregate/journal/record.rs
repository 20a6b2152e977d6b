//! The journal's record format, shared with the spill files (see
//! [`crate::aggregate::spill`]): `len: u32 LE`, `crc32: u32 LE` of the payload, then the
//! payload: the site, the hit's documents (report and period), then each
//! `(document, field, value)`, a value being a kind byte (0: `$inc` by an i64 LE, 1: `$set` of
//! a u16-long text, 2: `$max` of an i64 LE, since the people sketches) and its body. A record that is short, fails its CRC or does not decode ends
//! a read; the bytes after the last whole record are reported.
//!
//! Pure encoding and decoding of bytes: this module must not touch files.

use crate::aggregate::Value;
use crate::field::FieldKey;
use crate::period::Period;
use crate::reports::{DocRef, Increments, ReportKind};
use crate::site::SiteId;
use std::io::Write;

/// A record larger than this is corrupt (a hit's increments are a few hundred bytes).
const MAX_RECORD: usize = 1 << 20;

/// Appends one record: the site, the documents, then each `(document, field, value)`. On the
/// hit path of `--durable`: no allocation once the thread's buffers have grown.
pub fn encode(site: &SiteId, incs: &Increments, out: &mut Vec<u8>) {
    thread_local! {
        static DOCS: std::cell::RefCell<Vec<DocRef>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    DOCS.with(|docs| {
        let mut docs = docs.borrow_mut();
        docs.clear();
        for (doc, _, _) in &incs.entries {
            if !docs.contains(doc) {
                docs.push(*doc);
            }
        }
        let start = out.len();
        out.extend_from_slice(&[0; 8]);
        let body = out.len();
        put_str8(out, site.as_str());
        out.push(docs.len() as u8);
        for doc in docs.iter() {
            let kind = ReportKind::ALL
                .iter()
                .position(|k| *k == doc.kind)
                .unwrap_or(0);
            out.push(kind as u8);
            // The period's text form, written in place behind its length.
            let at = out.len();
            out.push(0);
            let _ = write!(out, "{}", doc.period);
            out[at] = (out.len() - at - 1) as u8;
        }
        out.extend_from_slice(&(incs.entries.len() as u32).to_le_bytes());
        for (doc, field, value) in &incs.entries {
            let i = docs.iter().position(|d| d == doc).unwrap_or(0);
            out.push(i as u8);
            put_str16(out, field.as_str());
            match value {
                Value::Inc(by) => {
                    out.push(0);
                    out.extend_from_slice(&by.to_le_bytes());
                }
                Value::Set(text) => {
                    out.push(1);
                    put_str16(out, text);
                }
                Value::Max(value) => {
                    out.push(2);
                    out.extend_from_slice(&value.to_le_bytes());
                }
            }
        }
        let len = (out.len() - body) as u32;
        let crc = crc32fast::hash(&out[body..]);
        out[start..start + 4].copy_from_slice(&len.to_le_bytes());
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    })
}

fn put_str8(out: &mut Vec<u8>, s: &str) {
    let s = &s.as_bytes()[..s.len().min(255)];
    out.push(s.len() as u8);
    out.extend_from_slice(s);
}

fn put_str16(out: &mut Vec<u8>, s: &str) {
    let s = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(s);
}

/// Reads every whole record of `bytes` into `out`; returns how many bytes at the end did not
/// form one.
pub fn read_records(bytes: &[u8], out: &mut Vec<(SiteId, Increments)>) -> u64 {
    let mut at = 0;
    while at < bytes.len() {
        let Some(header) = bytes.get(at..at + 8) else {
            break;
        };
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        if len > MAX_RECORD {
            break;
        }
        let Some(body) = bytes.get(at + 8..at + 8 + len) else {
            break;
        };
        if crc32fast::hash(body) != crc {
            break;
        }
        match decode(body) {
            Some(record) => out.push(record),
            None => break,
        }
        at += 8 + len;
    }
    (bytes.len() - at) as u64
}

/// One record's payload, or `None` if it is malformed.
pub fn decode(body: &[u8]) -> Option<(SiteId, Increments)> {
    let mut r = Reader { bytes: body, at: 0 };
    let site = SiteId::parse(r.str8()?).ok()?;
    let ndocs = r.u8()? as usize;
    let mut docs = Vec::with_capacity(ndocs);
    for _ in 0..ndocs {
        let kind = *ReportKind::ALL.get(r.u8()? as usize)?;
        let period = Period::parse(r.str8()?)?;
        docs.push(DocRef { kind, period });
    }
    let n = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
    let mut incs = Increments::with_capacity(n.min(1024));
    for _ in 0..n {
        let doc = *docs.get(r.u8()? as usize)?;
        let field = FieldKey::parse(r.str16()?)?;
        let value = match r.u8()? {
            0 => Value::Inc(i64::from_le_bytes(r.take(8)?.try_into().ok()?)),
            1 => Value::Set(r.str16()?.into()),
            // Added with the people sketches; logs written before hold only 0 and 1.
            2 => Value::Max(i64::from_le_bytes(r.take(8)?.try_into().ok()?)),
            _ => return None,
        };
        incs.entries.push((doc, field, value));
    }
    (r.at == body.len()).then_some((site, incs))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.bytes.get(self.at..self.at + n)?;
        self.at += n;
        Some(out)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn str8(&mut self) -> Option<&'a str> {
        let n = self.u8()? as usize;
        std::str::from_utf8(self.take(n)?).ok()
    }

    fn str16(&mut self) -> Option<&'a str> {
        let n = u16::from_le_bytes(self.take(2)?.try_into().ok()?) as usize;
        std::str::from_utf8(self.take(n)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn increments() -> Increments {
        let traffic = DocRef {
            kind: ReportKind::Traffic,
            period: Period::Month(2026, 6),
        };
        let mut incs = Increments::default();
        incs.entries
            .push((traffic, FieldKey::parse("v").unwrap(), Value::Inc(1)));
        incs.entries.push((
            traffic,
            FieldKey::parse("t").unwrap(),
            Value::Set("A".into()),
        ));
        incs
    }

    /// A record as logs wrote it before `$max` existed, byte by byte: it still reads.
    #[test]
    fn a_record_written_before_max_existed_still_reads() {
        let mut body = vec![4];
        body.extend_from_slice(b"acme");
        body.extend_from_slice(&[1, 0, 7]); // one document: traffic, "2026-06"
        body.extend_from_slice(b"2026-06");
        body.extend_from_slice(&2u32.to_le_bytes());
        body.extend_from_slice(&[0, 1, 0, b'v', 0]);
        body.extend_from_slice(&1i64.to_le_bytes());
        body.extend_from_slice(&[0, 1, 0, b't', 1, 1, 0, b'A']);
        let mut old = (body.len() as u32).to_le_bytes().to_vec();
        old.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        old.extend_from_slice(&body);
        // Today's encoder writes the same bytes for the same increments.
        let mut now = Vec::new();
        encode(&SiteId::parse("acme").unwrap(), &increments(), &mut now);
        assert_eq!(now, old);
        let mut read = Vec::new();
        assert_eq!(read_records(&old, &mut read), 0);
        assert_eq!(read[0].1.entries, increments().entries);
    }

    #[test]
    fn a_max_round_trips() {
        let mut incs = increments();
        let people = DocRef {
            kind: ReportKind::People,
            period: Period::Day(2026, 6, 1),
        };
        incs.entries
            .push((people, FieldKey::parse("4095").unwrap(), Value::Max(53)));
        let mut bytes = Vec::new();
        encode(&SiteId::parse("acme").unwrap(), &incs, &mut bytes);
        let mut read = Vec::new();
        assert_eq!(read_records(&bytes, &mut read), 0);
        assert_eq!(read[0].1.entries, incs.entries);
    }
}
