//! The pixel's query string → typed, bounded parameters.
//!
//! Input is hostile by default: percent-decoding is lenient (bad escapes pass through as
//! text), invalid UTF-8 becomes U+FFFD, NUL bytes are dropped, every string is cut to a fixed
//! length, numbers outside a plausible range are ignored, and only the first
//! [`MAX_PAIRS`] pairs are read. Nothing here allocates unless decoding had to change the text.

use crate::hit::{Page, Screen, Uniques};
use crate::track::agent::truncate;
use std::borrow::Cow;

/// Longest `url` and `ref` kept, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Longest `title` kept, in bytes.
pub const MAX_TITLE_BYTES: usize = 512;
/// Pairs after this many are ignored.
pub const MAX_PAIRS: usize = 64;
/// Screen and window sizes above this are not plausible and are ignored.
pub const MAX_PIXELS: u32 = 100_000;

/// The parameters the pixel reads.
const KEYS: [&str; 12] = [
    "site", "url", "ref", "title", "sw", "bw", "bh", "uh", "ud", "um", "uy", "u",
];

/// The pixel's parameters, as sent.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PixelParams<'a> {
    pub site: Option<Cow<'a, str>>,
    pub page: Page<'a>,
    pub screen: Screen,
    pub uniques: Uniques,
}

impl<'a> PixelParams<'a> {
    pub fn parse(query: &'a str) -> PixelParams<'a> {
        let mut p = PixelParams::default();
        // The first occurrence of a parameter wins; repeats are ignored.
        let mut seen = 0u16;
        for (key, value) in form_urlencoded::parse(query.as_bytes()).take(MAX_PAIRS) {
            let Some(bit) = KEYS.iter().position(|k| *k == key) else {
                continue;
            };
            if seen & (1 << bit) != 0 {
                continue;
            }
            seen |= 1 << bit;
            match key.as_ref() {
                "site" => p.site = Some(value),
                "url" => p.page.url = text(value, MAX_URL_BYTES),
                "ref" => p.page.referrer = text(value, MAX_URL_BYTES),
                "title" => p.page.title = text(value, MAX_TITLE_BYTES),
                "sw" => p.screen.screen_width = pixels(&value),
                "bw" => p.screen.browser_width = pixels(&value),
                "bh" => p.screen.browser_height = pixels(&value),
                "uh" => p.uniques.hour = flag(&value),
                "ud" => p.uniques.day = flag(&value),
                "um" => p.uniques.month = flag(&value),
                "uy" => p.uniques.year = flag(&value),
                "u" => p.uniques.ever = flag(&value),
                _ => {}
            }
        }
        p
    }
}

/// Drops NUL and other C0 control characters, cuts to `max` bytes; empty → `None`.
fn text(value: Cow<'_, str>, max: usize) -> Option<Cow<'_, str>> {
    let clean = if value.bytes().any(|b| b < 0x20) {
        Cow::Owned(value.chars().filter(|c| *c >= ' ').collect())
    } else {
        value
    };
    let cut = truncate(&clean, max).len();
    let clean = match clean {
        Cow::Borrowed(s) => Cow::Borrowed(&s[..cut]),
        Cow::Owned(mut s) => {
            s.truncate(cut);
            Cow::Owned(s)
        }
    };
    (!clean.trim().is_empty()).then_some(clean)
}

fn pixels(value: &str) -> Option<u32> {
    value
        .parse::<u32>()
        .ok()
        .filter(|&n| n > 0 && n <= MAX_PIXELS)
}

fn flag(value: &str) -> bool {
    value == "1"
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_every_parameter() {
        let p = PixelParams::parse(
            "site=acme&url=https%3A%2F%2Facme.example%2Fa%3Fb%3D1&ref=https%3A%2F%2Fx.example%2F\
             &title=Hello+world&sw=1920&bw=1280&bh=800&uh=1&ud=1&um=0&uy=1&u=1&extra=ignored",
        );
        assert_eq!(p.site.as_deref(), Some("acme"));
        assert_eq!(p.page.url.as_deref(), Some("https://acme.example/a?b=1"));
        assert_eq!(p.page.referrer.as_deref(), Some("https://x.example/"));
        assert_eq!(p.page.title.as_deref(), Some("Hello world"));
        assert_eq!(
            p.screen,
            Screen {
                screen_width: Some(1920),
                browser_width: Some(1280),
                browser_height: Some(800)
            }
        );
        assert_eq!(
            p.uniques,
            Uniques {
                hour: true,
                day: true,
                month: false,
                year: true,
                ever: true
            }
        );
    }

    #[test]
    fn hostile_values_are_tamed() {
        let p =
            PixelParams::parse("site=acme&title=a%00b%ZZ&url=%FF%FE&sw=-1&bw=99999999999&bh=abc");
        assert_eq!(p.page.title.as_deref(), Some("ab%ZZ"));
        assert_eq!(p.page.url.as_deref(), Some("\u{fffd}\u{fffd}"));
        assert_eq!(p.screen, Screen::default());
        let long = format!("site=acme&title={}", "é".repeat(2000));
        let p = PixelParams::parse(&long);
        assert!(p.page.title.unwrap().len() <= MAX_TITLE_BYTES);
    }

    #[test]
    fn the_first_occurrence_wins() {
        let p = PixelParams::parse("site=acme&site=other&uh=1&uh=0");
        assert_eq!(p.site.as_deref(), Some("acme"));
        assert!(p.uniques.hour);
    }

    #[test]
    fn missing_site_is_none() {
        assert_eq!(PixelParams::parse("url=/x").site, None);
        assert_eq!(PixelParams::parse("").site, None);
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_bounded(q in ".{0,3000}") {
            let p = PixelParams::parse(&q);
            prop_assert!(p.page.url.map_or(0, |u| u.len()) <= MAX_URL_BYTES);
            prop_assert!(p.page.title.map_or(0, |t| t.len()) <= MAX_TITLE_BYTES);
        }
    }
}
