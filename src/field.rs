//! Field paths inside report documents, and the one escaping scheme for free text in them.
//!
//! A [`FieldKey`] is a dotted path such as `b.chrome.131-0`, `h.07.23.v` or
//! `p./blog/hello．html.v`. Once built it is known to be safe to use as an `$inc` or `$set`
//! path: every segment is a [`Segment`] from a fixed vocabulary (`[a-z0-9_-]`) or a [`Key`]
//! escaped from free text, so nothing from the outside can add a level (`.`), start an operator
//! (`$`) or end a C string early (NUL). This module must not know about any report; reports
//! build their paths from segments and keys.

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

/// Whether `s` may stand as one level of a field path: a vocabulary [`Segment`] or an escaped
/// [`Key`] (non-empty, bounded, no `.`, no leading `$`, no control character).
pub fn is_field_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_KEY_BYTES
        && !s.starts_with('$')
        && !s.bytes().any(|b| b == b'.' || b < 0x20 || b == 0x7f)
}

/// Longest escaped [`Key`], in bytes (the truncation mark included).
pub const MAX_KEY_BYTES: usize = 200;

/// What `.` becomes in a key: U+FF0E FULLWIDTH FULL STOP, which reads like a dot in any client.
const DOT: char = '\u{FF0E}';
/// Appended to a key whose text was cut: `%` followed by `…` is never produced by escaping.
const CUT_MARK: &str = "%\u{2026}";
/// Stands for the empty string (a field name cannot be empty).
const EMPTY: &str = "(empty)";

/// Free text (a path, a host, a search term, a campaign name) made into one field name.
///
/// The scheme, documented in docs/data-model.md and reversed by [`Key::unescape`]:
/// - `.` becomes `．` (U+FF0E), so `example.com` still reads as a host in Compass;
/// - `%`, `$`, every control character (C0, DEL) and a literal `．` are percent-escaped as their
///   UTF-8 bytes (`%25`, `%24`, `%00`, `%EF%BC%8E`), and so is a leading `(`, which keeps names
///   beginning with `(` free for tally's own buckets ([`Key::OTHER`], `(empty)`);
/// - text whose escaped form passes [`MAX_KEY_BYTES`] is cut at a character boundary and marked
///   with `%…`;
/// - the empty string becomes `(empty)`.
///
/// Everything else, including any Unicode, is kept as it is. Invalid UTF-8 never gets this far:
/// it was replaced by U+FFFD when the request was decoded.
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Key(CompactString);

/// A key turned back into the text it was made from.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct Unescaped {
    pub text: String,
    /// The original was longer; `text` is its beginning.
    pub truncated: bool,
}

impl Key {
    /// The bucket for values that did not fit in a document (see docs/data-model.md).
    pub const OTHER: &'static str = "(other)";

    pub fn escape(raw: &str) -> Key {
        if raw.is_empty() {
            return Key(CompactString::const_new(EMPTY));
        }
        // Most paths and hosts need nothing but their dots replaced, or nothing at all: the
        // runs between special bytes are copied whole, not char by char.
        let mut out = CompactString::with_capacity(raw.len() + 8);
        let bytes = raw.as_bytes();
        let (mut start, mut i) = (0, 0);
        while i < bytes.len() {
            let b = bytes[i];
            // Only ASCII bytes and U+FF0E (which starts with 0xEF) are special, so `i` is
            // always a character boundary here.
            if !(matches!(b, b'.' | b'%' | b'$' | 0x7f | 0xEF) || b < 0x20 || (b == b'(' && i == 0))
            {
                i += 1;
                continue;
            }
            out.push_str(&raw[start..i]);
            let c = raw[i..].chars().next().unwrap_or_default();
            match c {
                '.' => out.push(DOT),
                DOT | '%' | '$' | '(' => push_escaped(&mut out, c.encode_utf8(&mut [0u8; 4])),
                c if c.is_ascii_control() => push_escaped(&mut out, c.encode_utf8(&mut [0u8; 4])),
                c => out.push(c), // another character whose UTF-8 starts with 0xEF
            }
            i += c.len_utf8();
            start = i;
        }
        out.push_str(&raw[start..]);
        if out.len() > MAX_KEY_BYTES {
            let cut = cut_point(&out, MAX_KEY_BYTES - CUT_MARK.len());
            out.truncate(cut);
            out.push_str(CUT_MARK);
        }
        Key(out)
    }

    /// The bucket for everything that did not fit.
    pub fn other() -> Key {
        Key(CompactString::const_new(Key::OTHER))
    }

    /// A key read back from a stored document, if it is a valid field name.
    pub fn from_stored(name: &str) -> Option<Key> {
        is_field_name(name).then(|| Key(CompactString::from(name)))
    }

    /// Whether this is one of tally's own buckets (`(other)`), not escaped text.
    pub fn is_reserved(&self) -> bool {
        is_reserved(&self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text this key was escaped from (its beginning, if it was cut). Malformed escapes in a
    /// document written by someone else are kept as they are; bytes that do not form UTF-8 are
    /// replaced.
    pub fn unescape(&self) -> Unescaped {
        unescape(&self.0)
    }
}

/// Whether a field name is one of tally's own buckets (`(other)`) rather than escaped text.
pub fn is_reserved(name: &str) -> bool {
    name.starts_with('(') && name != EMPTY
}

/// [`Key::unescape`] for a name read from a document.
pub fn unescape(name: &str) -> Unescaped {
    if name == EMPTY {
        return Unescaped {
            text: String::new(),
            truncated: false,
        };
    }
    let (body, truncated) = match name.strip_suffix(CUT_MARK) {
        Some(body) => (body, true),
        None => (name, false),
    };
    let mut bytes = Vec::with_capacity(body.len());
    let mut rest = body;
    while let Some(c) = rest.chars().next() {
        let escaped = rest
            .as_bytes()
            .get(1..3)
            .and_then(|h| Some((hex(h[0])?, hex(h[1])?)));
        match (c, escaped) {
            ('%', Some((h, l))) => {
                bytes.push(h << 4 | l);
                rest = &rest[3..];
                continue;
            }
            (DOT, _) => bytes.push(b'.'),
            (c, _) => bytes.extend_from_slice(c.encode_utf8(&mut [0u8; 4]).as_bytes()),
        }
        rest = &rest[c.len_utf8()..];
    }
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    Unescaped { text, truncated }
}

/// The longest prefix of the escaped text `escaped` of at most `limit` bytes that ends between
/// two whole characters of the original: not inside a UTF-8 sequence, not inside a `%XX`
/// escape, and not between the three escapes of a literal `．` (`%EF%BC%8E`).
fn cut_point(escaped: &str, limit: usize) -> usize {
    let mut cut = limit.min(escaped.len());
    while !escaped.is_char_boundary(cut) {
        cut -= 1;
    }
    let b = escaped.as_bytes();
    if cut >= 1 && b[cut - 1] == b'%' {
        cut -= 1;
    } else if cut >= 2 && b[cut - 2] == b'%' {
        cut -= 2;
    }
    if escaped[..cut].ends_with("%EF%BC") {
        cut -= 6;
    } else if escaped[..cut].ends_with("%EF") {
        cut -= 3;
    }
    cut
}

fn push_escaped(out: &mut CompactString, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        out.push('%');
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A dotted path into a report document, every segment safe (see the module docs).
///
/// Short paths (up to 24 bytes, which is most fixed report fields) live inline, so building
/// one on the hit path does not allocate; paths holding a long [`Key`] do.
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct FieldKey(CompactString);

impl FieldKey {
    /// A path from segments that are safe by construction (literals, [`Segment`]s, [`Key`]s,
    /// the two-digit strings of [`two_digits`]).
    ///
    /// Panics in debug builds if a segment is not safe; in release builds an unsafe segment is
    /// sanitized, so a document's shape can never be changed from outside.
    pub fn from_parts(parts: &[&str]) -> FieldKey {
        let len = parts.iter().map(|p| p.len() + 1).sum::<usize>();
        let mut out = CompactString::with_capacity(len);
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            if is_field_name(part) {
                out.push_str(part);
            } else {
                debug_assert!(false, "unsafe field segment {part:?}");
                out.push_str(Key::escape(part).as_str());
            }
        }
        FieldKey(out)
    }

    /// Parses a dotted path whose every segment is safe, or `None`.
    pub fn parse(path: &str) -> Option<FieldKey> {
        path.split('.')
            .all(is_field_name)
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
        assert!(FieldKey::parse("p./a\u{FF0E}html.v").is_some());
        assert!(FieldKey::parse("p.a\0b").is_none());
    }

    fn esc(s: &str) -> String {
        Key::escape(s).as_str().to_owned()
    }

    #[test]
    fn escaping_keeps_readable_text_and_escapes_the_rest() {
        assert_eq!(esc("/blog/hello-world"), "/blog/hello-world");
        assert_eq!(esc("news.ycombinator.com"), "news．ycombinator．com");
        assert_eq!(esc("$where"), "%24where");
        assert_eq!(esc("a.b$c%d"), "a．b%24c%25d");
        assert_eq!(esc("a\0b\tc\u{7f}"), "a%00b%09c%7F");
        assert_eq!(esc("(other)"), "%28other)");
        assert_eq!(esc("a(b)"), "a(b)");
        assert_eq!(esc("x．y"), "x%EF%BC%8Ey");
        assert_eq!(esc(""), "(empty)");
        assert_eq!(esc("été 🎉 مرحبا"), "été 🎉 مرحبا");
        assert!(!Key::escape("(other)").is_reserved());
        assert!(Key::other().is_reserved());
        assert!(!Key::escape("").is_reserved());
    }

    #[test]
    fn long_text_is_cut_at_a_character_and_marked() {
        let k = Key::escape(&"é".repeat(300));
        assert!(k.as_str().len() <= MAX_KEY_BYTES);
        let back = k.unescape();
        assert!(back.truncated);
        assert!(back.text.chars().all(|c| c == 'é') && back.text.len() >= 190);
        // escapes are never split by the cut
        let k = Key::escape(&".%".repeat(200));
        let back = k.unescape();
        assert!(back.truncated && ".%".repeat(200).starts_with(&back.text));
        // exactly at the limit: kept whole
        let exact = "a".repeat(MAX_KEY_BYTES);
        assert_eq!(Key::escape(&exact).unescape().text, exact);
        assert!(!Key::escape(&exact).unescape().truncated);
    }

    fn strings() -> impl Strategy<Value = String> {
        // Text weighted toward the characters the scheme treats specially.
        prop_oneof![
            any::<String>(),
            proptest::collection::vec(
                prop_oneof![
                    Just('.'),
                    Just('%'),
                    Just('$'),
                    Just('('),
                    Just('\0'),
                    Just('\u{FF0E}'),
                    Just('…'),
                    Just('2'),
                    Just('E'),
                    Just('a'),
                    Just('é'),
                    Just('🎉'),
                    Just('\u{202E}'),
                    any::<char>()
                ],
                0..300
            )
            .prop_map(|v| v.into_iter().collect()),
        ]
    }

    proptest! {
        #[test]
        fn keys_are_safe_field_names(raw in strings()) {
            let k = Key::escape(&raw);
            prop_assert!(is_field_name(k.as_str()), "{:?}", k);
            let path = format!("p.{k}.v");
            prop_assert!(FieldKey::parse(&path).is_some());
            prop_assert!(!k.is_reserved());
        }

        #[test]
        fn escaping_is_reversible(raw in strings()) {
            let back = Key::escape(&raw).unescape();
            if back.truncated {
                prop_assert!(raw.starts_with(&back.text));
                prop_assert!(back.text.len() < raw.len());
            } else {
                prop_assert_eq!(back.text, raw);
            }
        }

        #[test]
        fn distinct_texts_give_distinct_keys(a in strings(), b in strings()) {
            let (ka, kb) = (Key::escape(&a), Key::escape(&b));
            if !ka.unescape().truncated && !kb.unescape().truncated && a != b {
                prop_assert_ne!(ka, kb);
            }
        }
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
