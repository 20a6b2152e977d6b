//! Field paths inside report documents.
//!
//! A [`FieldKey`] is a dotted path such as `b.chrome.131-0` or `h.07.23.v`. Once built it is
//! known to be safe to use as an `$inc` path: every segment is non-empty and made only of
//! `[a-z0-9_-]`, so nothing from the outside can add a level, start an operator (`$`) or end a
//! C string early (NUL). This module must not know about any report; reports build their keys
//! from [`Segment`]s.

use compact_str::CompactString;
use std::fmt;

/// One safe segment of a field path: `[a-z0-9_-]{1,64}`.
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Segment(CompactString);

/// Longest segment kept; longer input is cut.
pub const MAX_SEGMENT_LEN: usize = 64;

impl Segment {
    /// Turns any string into a segment: ASCII letters are lower-cased, every other byte outside
    /// `[a-z0-9_-]` becomes `_`, the result is cut to [`MAX_SEGMENT_LEN`], and an empty result
    /// becomes `unknown`. Lossy on purpose: it is for keys chosen from a small vocabulary (browser
    /// names, platforms), not for free text.
    pub fn sanitize(raw: &str) -> Segment {
        let mut out = CompactString::with_capacity(raw.len().min(MAX_SEGMENT_LEN));
        for b in raw.bytes().take(MAX_SEGMENT_LEN) {
            let c = b.to_ascii_lowercase();
            out.push(if is_segment_byte(c) { c as char } else { '_' });
        }
        if out.is_empty() {
            out.push_str("unknown");
        }
        Segment(out)
    }

    /// A segment from a string that is already safe, or `None`.
    pub fn new(raw: &str) -> Option<Segment> {
        is_safe_segment(raw).then(|| Segment(CompactString::from(raw)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_segment_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
}

/// Whether `s` may stand as one segment of a field path.
pub fn is_safe_segment(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_SEGMENT_LEN && s.bytes().all(is_segment_byte)
}

/// A dotted path into a report document, every segment safe (see the module docs).
///
/// Short paths (up to 24 bytes, which is all of today's report fields) live inline, so building
/// one on the hit path does not allocate.
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct FieldKey(CompactString);

impl FieldKey {
    /// A path from segments that are safe by construction (literals, [`Segment`]s, the
    /// two-digit strings of [`two_digits`]).
    ///
    /// Panics in debug builds if a segment is not safe; in release builds an unsafe segment is
    /// sanitized, so a document's shape can never be changed from outside.
    pub fn from_parts(parts: &[&str]) -> FieldKey {
        let mut out = CompactString::default();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            if is_safe_segment(part) {
                out.push_str(part);
            } else {
                debug_assert!(false, "unsafe field segment {part:?}");
                out.push_str(Segment::sanitize(part).as_str());
            }
        }
        FieldKey(out)
    }

    /// Parses a dotted path whose every segment is safe, or `None`.
    pub fn parse(path: &str) -> Option<FieldKey> {
        path.split('.')
            .all(is_safe_segment)
            .then(|| FieldKey(CompactString::from(path)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `"00"` … `"99"`, so day and hour segments need no formatting on the hit path.
pub fn two_digits(n: u8) -> &'static str {
    const TABLE: [&str; 100] = {
        let mut t = [""; 100];
        let digits = [
            "00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13",
            "14", "15", "16", "17", "18", "19", "20", "21", "22", "23", "24", "25", "26", "27",
            "28", "29", "30", "31", "32", "33", "34", "35", "36", "37", "38", "39", "40", "41",
            "42", "43", "44", "45", "46", "47", "48", "49", "50", "51", "52", "53", "54", "55",
            "56", "57", "58", "59", "60", "61", "62", "63", "64", "65", "66", "67", "68", "69",
            "70", "71", "72", "73", "74", "75", "76", "77", "78", "79", "80", "81", "82", "83",
            "84", "85", "86", "87", "88", "89", "90", "91", "92", "93", "94", "95", "96", "97",
            "98", "99",
        ];
        let mut i = 0;
        while i < 100 {
            t[i] = digits[i];
            i += 1;
        }
        t
    };
    TABLE[(n % 100) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn two_digits_pads() {
        assert_eq!(two_digits(0), "00");
        assert_eq!(two_digits(7), "07");
        assert_eq!(two_digits(31), "31");
    }

    #[test]
    fn paths_join_segments() {
        assert_eq!(
            FieldKey::from_parts(&["h", "07", "23", "v"]).as_str(),
            "h.07.23.v"
        );
        assert!(FieldKey::parse("b.chrome.131-0").is_some());
        assert!(FieldKey::parse("b..x").is_none());
        assert!(FieldKey::parse("$set").is_none());
    }

    #[test]
    fn sanitize_maps_to_the_safe_alphabet() {
        assert_eq!(
            Segment::sanitize("Yandex Browser").as_str(),
            "yandex_browser"
        );
        assert_eq!(Segment::sanitize("").as_str(), "unknown");
        assert_eq!(Segment::sanitize("a.b$c\0").as_str(), "a_b_c_");
    }

    proptest! {
        #[test]
        fn sanitized_segments_are_always_safe(raw in any::<String>()) {
            let s = Segment::sanitize(&raw);
            prop_assert!(is_safe_segment(s.as_str()));
            let path = format!("b.{}.x", s);
            prop_assert!(FieldKey::parse(&path).is_some());
        }
    }
}
