//! The pixel's query string → typed, bounded parameters.
//!
//! Input is hostile by default, and most of it is not needed on every hit, so parsing is lazy:
//! the query is split once, the handful of parameters tally reads are matched by name, numbers
//! and flags are read in place, and free text (`url`, `ref`, `title`) is kept in its
//! percent-encoded wire form as a [`Text`] that decodes on demand. Only the first
//! [`MAX_PAIRS`] pairs are read and the first occurrence of a parameter wins. Nothing here
//! allocates unless a value has to be decoded.

use crate::hit::text::{decode, Text};
pub use crate::hit::text::{MAX_TITLE_BYTES, MAX_URL_BYTES};
use crate::hit::{Agent, Cohort, Hit, Location, Page, Screen, Uniques, Visit};
use crate::period::{LocalTime, Period};
use crate::site::Site;
use chrono::{DateTime, Utc};
use std::borrow::Cow;
use std::sync::Arc;

/// Pairs after this many are ignored.
pub const MAX_PAIRS: usize = 64;
/// Screen and window sizes above this are not plausible and are ignored.
pub const MAX_PIXELS: u32 = 100_000;

/// The parameters the pixel reads (names are matched as sent, not decoded).
const KEYS: [&str; 18] = [
    "site", "url", "ref", "title", "sw", "bw", "bh", "uh", "ud", "um", "uy", "u", "vp", "vt", "cw",
    "cm", "vi", "pp",
];

/// Page numbers within a visit above this are not plausible and are ignored.
pub const MAX_VISIT_PAGES: u32 = 100_000;

/// The pixel's parameters, as sent.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PixelParams<'a> {
    pub site: Option<Cow<'a, str>>,
    pub page: Page<'a>,
    pub screen: Screen,
    pub uniques: Uniques,
    pub visit: Visit,
    pub cohort: Cohort,
    /// The snippet's first-party random visitor id (`vi`), when it is one (see
    /// [`crate::reports::people::snippet_id`]); only hashed, never kept.
    pub visitor: Option<&'a str>,
}

impl<'a> PixelParams<'a> {
    pub fn parse(query: &'a str) -> PixelParams<'a> {
        let mut p = PixelParams::default();
        let mut seen = 0u32;
        for pair in query.split('&').take(MAX_PAIRS) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let Some(bit) = KEYS.iter().position(|k| *k == key) else {
                continue;
            };
            if seen & (1 << bit) != 0 {
                continue;
            }
            seen |= 1 << bit;
            match key {
                "site" => p.site = Some(decode(value)),
                "url" => p.page.url = Text::new(value, MAX_URL_BYTES),
                "ref" => p.page.referrer = Text::new(value, MAX_URL_BYTES),
                "title" => p.page.title = Text::new(value, MAX_TITLE_BYTES),
                "sw" => p.screen.screen_width = pixels(value),
                "bw" => p.screen.browser_width = pixels(value),
                "bh" => p.screen.browser_height = pixels(value),
                "uh" => p.uniques.hour = value == "1",
                "ud" => p.uniques.day = value == "1",
                "um" => p.uniques.month = value == "1",
                "uy" => p.uniques.year = value == "1",
                "u" => p.uniques.ever = value == "1",
                "vp" => {
                    p.visit.page = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_VISIT_PAGES).contains(n))
                }
                "vt" => p.visit.start = value.parse().ok().filter(|t: &i64| *t > 0),
                "cw" => {
                    p.cohort.week = Period::parse(value).filter(|p| matches!(p, Period::Week(..)))
                }
                "cm" => {
                    p.cohort.month = Period::parse(value).filter(|p| matches!(p, Period::Month(..)))
                }
                "vi" => p.visitor = crate::reports::people::snippet_id(value),
                // First view of this page: 2 this month (so also today), 1 today only; any
                // other value is no flag.
                "pp" => {
                    p.uniques.page_month = value == "2";
                    p.uniques.page_day = value == "2" || value == "1";
                }
                _ => {}
            }
        }
        p
    }
}

impl<'a> PixelParams<'a> {
    /// The hit these parameters describe, for `site` at `at`.
    pub fn into_hit(
        self,
        site: Arc<Site>,
        agent: Agent,
        location: Location,
        at: DateTime<Utc>,
    ) -> Hit<'a> {
        Hit {
            local: LocalTime::at(at, site.tz),
            at,
            site,
            page: self.page,
            screen: self.screen,
            uniques: self.uniques,
            visit: self.visit,
            cohort: self.cohort,
            agent,
            location,
        }
    }
}

fn pixels(value: &str) -> Option<u32> {
    value
        .parse::<u32>()
        .ok()
        .filter(|&n| n > 0 && n <= MAX_PIXELS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(t: Option<Text<'_>>) -> Option<String> {
        t.and_then(|t| t.decode()).map(|s| s.into_owned())
    }

    #[test]
    fn reads_every_parameter() {
        let p = PixelParams::parse(
            "site=acme&url=https%3A%2F%2Facme.example%2Fa%3Fb%3D1&ref=https%3A%2F%2Fx.example%2F\
             &title=Hello+world&sw=1920&bw=1280&bh=800&uh=1&ud=1&um=0&uy=1&u=1&extra=ignored",
        );
        assert_eq!(p.site.as_deref(), Some("acme"));
        assert_eq!(
            text(p.page.url).as_deref(),
            Some("https://acme.example/a?b=1")
        );
        assert_eq!(text(p.page.referrer).as_deref(), Some("https://x.example/"));
        assert_eq!(text(p.page.title).as_deref(), Some("Hello world"));
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
                ever: true,
                page_day: false,
                page_month: false,
            }
        );
    }

    #[test]
    fn the_page_flag_is_2_1_or_nothing() {
        let flags = |q: &str| {
            let u = PixelParams::parse(q).uniques;
            (u.page_day, u.page_month)
        };
        assert_eq!(flags("pp=2"), (true, true));
        assert_eq!(flags("pp=1"), (true, false));
        for bad in [
            "pp=0", "pp=3", "pp=", "pp", "pp=02", "pp=1%00", "pp=-1", "pp=true",
        ] {
            assert_eq!(flags(bad), (false, false), "{bad}");
        }
        assert_eq!(flags("pp=2&pp=0"), (true, true));
    }

    #[test]
    fn hostile_values_are_tamed() {
        let p =
            PixelParams::parse("site=acme&title=a%00b%ZZ&url=%FF%FE&sw=-1&bw=99999999999&bh=abc");
        assert_eq!(text(p.page.title).as_deref(), Some("ab%ZZ"));
        assert_eq!(text(p.page.url).as_deref(), Some("\u{fffd}\u{fffd}"));
        assert_eq!(p.screen, Screen::default());
        let long = format!("site=acme&title={}", "%C3%A9".repeat(2000));
        let title = text(PixelParams::parse(&long).page.title).unwrap();
        assert!(title.len() <= MAX_TITLE_BYTES && title.starts_with('é'));
        assert_eq!(text(PixelParams::parse("title=+%20+").page.title), None);
    }

    /// Found by the fuzz target `pixel_query`: C1 controls (`%C2%80`–`%C2%9F`, e.g. NEL) were
    /// kept, since only single-byte controls were looked for, and reached stored titles.
    #[test]
    fn c1_controls_are_dropped_too() {
        let p = PixelParams::parse("title=a%C2%80b%C2%85c%C2%9F%C2%A0d&url=/x%C2%82");
        assert_eq!(text(p.page.title).as_deref(), Some("abc\u{a0}d"));
        assert_eq!(text(p.page.url).as_deref(), Some("/x"));
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
        assert_eq!(PixelParams::parse("site").site.as_deref(), Some(""));
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_bounded(q in ".{0,3000}") {
            let p = PixelParams::parse(&q);
            let url = text(p.page.url).unwrap_or_default();
            let title = text(p.page.title).unwrap_or_default();
            prop_assert!(url.len() <= MAX_URL_BYTES);
            prop_assert!(title.len() <= MAX_TITLE_BYTES);
            prop_assert!(!title.chars().any(char::is_control));
        }
    }
}
