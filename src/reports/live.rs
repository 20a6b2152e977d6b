//! Live: views and pages per minute, the documents the live panel (Gaug.es's AirTraffic)
//! reads, so every node shows the same numbers and a restart loses nothing.
//!
//! `live.<YYYY>`, `_id: "<site>:<YYYY-MM-DDTHH:MM>"` (the site's local minute): `v` (views)
//! and `p.<path>.v` / `p.<path>.t` (views and latest title per page, the page escaped as in
//! `content`). Capped like a content day: a minute document names exactly the pages its
//! content month document names, the rest under `p.(other)` (see `aggregate::admission`).
//! Removed by the retention sweep an hour after their minute (`retention`).

use super::content::stored_title;
use super::{number, ranked, HitFacts, Increments, Ranked, Report, ReportKind};
use crate::field::FieldKey;
use mongodb::bson::Document;

pub struct Live;

/// One minute of a site.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LiveView {
    pub views: i64,
    /// Pages by views, largest first, each with its latest title.
    pub pages: Ranked,
}

impl Report for Live {
    const KIND: ReportKind = ReportKind::Live;
    type View = LiveView;

    fn count(hit: &HitFacts<'_, '_>, out: &mut Increments) {
        let minute = hit.local.minute_period();
        out.add(Self::KIND, minute, FieldKey::from_parts(&["v"]), 1);
        let Some(page) = hit.page_facts() else {
            return;
        };
        let key = page.page.as_str();
        out.add(
            Self::KIND,
            minute,
            FieldKey::from_parts(&["p", key, "v"]),
            1,
        );
        if let Some(title) = stored_title(hit) {
            let field = FieldKey::from_parts(&["p", key, "t"]);
            out.set(Self::KIND, minute, field, title.trim());
        }
    }

    fn read(doc: &Document) -> LiveView {
        LiveView {
            views: number(doc.get("v")),
            pages: ranked(doc, "p"),
        }
    }
}
