//! Resolutions: screen width, browser width and browser height in Gaug.es's fixed ranges, per
//! month.
//!
//! `resolutions.<YYYY>`, `_id: "<site>:<YYYY-MM>"`: `s.<range>` (screen width), `w.<range>`
//! (browser width), `h.<range>` (browser height), counted per view. A range is named by its
//! lower bound: a 1366-pixel screen counts under `1280` (1280–1439); the last range is open
//! (`2000+`). Sizes below the first range, implausible ones and missing ones count as
//! `unknown`, so each of the three adds up to the month's views.

use super::{HitFacts, Increments, Report, ReportKind};
use crate::field::FieldKey;
use mongodb::bson::Document;

pub struct Resolutions;

/// Screen and browser widths: lower bounds of the ranges.
pub const WIDTHS: [(u32, &str); 8] = [
    (320, "320"),
    (480, "480"),
    (800, "800"),
    (1024, "1024"),
    (1280, "1280"),
    (1440, "1440"),
    (1600, "1600"),
    (2000, "2000+"),
];

/// Browser heights: lower bounds of the ranges.
pub const HEIGHTS: [(u32, &str); 5] = [
    (480, "480"),
    (600, "600"),
    (768, "768"),
    (900, "900"),
    (1024, "1024+"),
];

pub const UNKNOWN: &str = "unknown";

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResolutionsView {
    /// `(range, views)` in range order, `unknown` last; ranges without views are left out.
    pub screen_widths: Vec<(String, i64)>,
    pub browser_widths: Vec<(String, i64)>,
    pub browser_heights: Vec<(String, i64)>,
}

/// The range `pixels` falls in.
pub fn range(pixels: Option<u32>, ranges: &[(u32, &'static str)]) -> &'static str {
    let Some(px) = pixels else {
        return UNKNOWN;
    };
    ranges
        .iter()
        .rev()
        .find(|(low, _)| px >= *low)
        .map_or(UNKNOWN, |(_, name)| name)
}

impl Report for Resolutions {
    const KIND: ReportKind = ReportKind::Resolutions;
    type View = ResolutionsView;

    fn count(hit: &HitFacts<'_, '_>, out: &mut Increments) {
        let month = hit.local.month_period();
        let s = &hit.screen;
        for (space, pixels, ranges) in [
            ("s", s.screen_width, &WIDTHS[..]),
            ("w", s.browser_width, &WIDTHS[..]),
            ("h", s.browser_height, &HEIGHTS[..]),
        ] {
            let name = range(pixels, ranges);
            out.add(Self::KIND, month, FieldKey::from_parts(&[space, name]), 1);
        }
    }

    fn read(doc: &Document) -> ResolutionsView {
        let read = |space: &str, ranges: &[(u32, &str)]| -> Vec<(String, i64)> {
            let sub = doc.get_document(space).ok();
            ranges
                .iter()
                .map(|(_, name)| *name)
                .chain([UNKNOWN])
                .map(|name| {
                    let n = super::number(sub.and_then(|d| d.get(name)));
                    (name.to_owned(), n)
                })
                .filter(|(_, n)| *n != 0)
                .collect()
        };
        ResolutionsView {
            screen_widths: read("s", &WIDTHS),
            browser_widths: read("w", &WIDTHS),
            browser_heights: read("h", &HEIGHTS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_named_by_their_lower_bound() {
        let w = |px| range(Some(px), &WIDTHS);
        assert_eq!(w(319), UNKNOWN);
        assert_eq!(w(320), "320");
        assert_eq!(w(479), "320");
        assert_eq!(w(480), "480");
        assert_eq!(w(1366), "1280");
        assert_eq!(w(1920), "1600");
        assert_eq!(w(1999), "1600");
        assert_eq!(w(2000), "2000+");
        assert_eq!(w(7680), "2000+");
        let h = |px| range(Some(px), &HEIGHTS);
        assert_eq!(h(479), UNKNOWN);
        assert_eq!(h(480), "480");
        assert_eq!(h(1023), "900");
        assert_eq!(h(1024), "1024+");
        assert_eq!(range(None, &WIDTHS), UNKNOWN);
    }
}
