//! Technology: browsers with versions, platforms and device classes, per month.
//!
//! `technology.<YYYY>`, `_id: "<site>:<YYYY-MM>"`: `b.<browser>.<major-minor>`,
//! `p.<platform>`, `d.<device>`. Every key comes from the fixed vocabulary of
//! `track::agent`, so the document stays small (a few dozen keys) whatever the traffic.

use super::{counts, HitFacts, Increments, Report, ReportKind};
use crate::field::FieldKey;
use mongodb::bson::Document;

pub struct Technology;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TechnologyView {
    /// Browsers by views, largest first.
    pub browsers: Vec<BrowserCount>,
    pub platforms: Vec<(String, i64)>,
    pub devices: Vec<(String, i64)>,
}

/// One browser: its views and its versions (`131-0` → views), largest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BrowserCount {
    pub name: String,
    pub views: i64,
    pub versions: Vec<(String, i64)>,
}

impl Report for Technology {
    const KIND: ReportKind = ReportKind::Technology;
    type View = TechnologyView;

    fn count(hit: &HitFacts<'_, '_>, out: &mut Increments) {
        let month = hit.local.month_period();
        let a = &hit.agent;
        let kind = Self::KIND;
        out.add(
            kind,
            month,
            FieldKey::from_parts(&["b", a.browser, &a.version]),
            1,
        );
        out.add(kind, month, FieldKey::from_parts(&["p", a.platform]), 1);
        out.add(kind, month, FieldKey::from_parts(&["d", a.device]), 1);
    }

    fn read(doc: &Document) -> TechnologyView {
        let mut browsers: Vec<_> = doc
            .get_document("b")
            .map(|b| {
                b.iter()
                    .map(|(name, versions)| {
                        let versions = counts(versions.as_document());
                        BrowserCount {
                            name: name.clone(),
                            views: versions.iter().map(|(_, n)| n).sum(),
                            versions,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        browsers.sort_by(|a, b| b.views.cmp(&a.views).then_with(|| a.name.cmp(&b.name)));
        TechnologyView {
            browsers,
            platforms: counts(doc.get_document("p").ok()),
            devices: counts(doc.get_document("d").ok()),
        }
    }
}
