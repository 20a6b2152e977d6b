//! Free text a hit carries (page URL, referrer, title), kept percent-encoded as sent and
//! decoded on demand, bounded in length and stripped of control characters.
//!
//! Shared by the parsers in `track/` and the reports that read a hit: it must not use either.

use std::borrow::Cow;

/// Longest decoded `url` and `ref` kept, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Longest decoded `title` kept, in bytes.
pub const MAX_TITLE_BYTES: usize = 512;

/// Free text from the query string, still percent-encoded; [`Text::decode`] gives it as a
/// string of at most `max` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text<'a> {
    raw: &'a str,
    max: usize,
}

impl<'a> Text<'a> {
    /// `None` for an empty value. The raw form is cut to what can decode to `max` bytes (an
    /// escape is 3 bytes), so decoding work is bounded too.
    pub fn new(raw: &'a str, max: usize) -> Option<Text<'a>> {
        (!raw.is_empty()).then(|| Text {
            raw: truncate(raw, max.saturating_mul(3)),
            max,
        })
    }

    /// The value as sent (cut to what can decode to the limit), e.g. as a cache key.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// Decodes `+` and `%XX` (invalid escapes stay as they are, invalid UTF-8 becomes U+FFFD),
    /// drops NUL and other control characters (C0, DEL and C1), and cuts to `max` bytes at a character
    /// boundary. `None` when nothing but blanks is left.
    pub fn decode(&self) -> Option<Cow<'a, str>> {
        let value = decode(self.raw);
        let value = if has_control(&value) {
            Cow::Owned(value.chars().filter(|c| !c.is_control()).collect())
        } else {
            value
        };
        let cut = truncate(&value, self.max).len();
        let value = match value {
            Cow::Borrowed(s) => Cow::Borrowed(&s[..cut]),
            Cow::Owned(mut s) => {
                s.truncate(cut);
                Cow::Owned(s)
            }
        };
        (!value.trim().is_empty()).then_some(value)
    }
}

/// `application/x-www-form-urlencoded` decoding of one value, borrowing when nothing changes:
/// one pass, one allocation (invalid escapes stay as they are, invalid UTF-8 becomes U+FFFD).
pub fn decode(raw: &str) -> Cow<'_, str> {
    if !raw.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(hex),
                bytes.get(i + 2).and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// Whether `s` holds a control character: C0 or DEL (one byte), or C1 (U+0080–U+009F, which
/// UTF-8 writes as `C2 80`–`C2 9F`). Bytes, not chars: this runs on every hit's text.
fn has_control(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().any(|(i, &c)| {
        c < 0x20 || c == 0x7f || (c == 0xC2 && b.get(i + 1).is_some_and(|n| *n <= 0x9F))
    })
}

fn hex(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).map(|d| d as u8)
}

/// Cuts `s` to at most `max` bytes without splitting a character.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_found_in_one_and_two_bytes() {
        assert!(!has_control("é ü \u{a0} 🎉"));
        assert!(has_control("\u{9f}") && has_control("\u{7f}") && has_control("\t"));
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
