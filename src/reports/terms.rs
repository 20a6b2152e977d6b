//! Search engines and terms, per month.
//!
//! `terms.<YYYY>`, `_id: "<site>:<YYYY-MM>"`: `e.<engine>` (views referred by a search engine,
//! from the fixed vocabulary of `reports::search`) and `t.<term>` (views per search term, when
//! the referrer still carries one; escaped with [`Key::escape`]), plus `n` (keys admitted).
//! Terms are capped; engines are not. A search engine is an external referrer too, so these
//! views also appear in the referrers report.

use super::{counts, ranked, HitFacts, Increments, Ranked, Report, ReportKind};
use crate::field::{FieldKey, Segment};
use mongodb::bson::Document;

pub struct Terms;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TermsView {
    /// Engines by views, largest first.
    pub engines: Vec<(String, i64)>,
    /// Search terms by views.
    pub terms: Ranked,
}

impl Report for Terms {
    const KIND: ReportKind = ReportKind::Terms;
    type View = TermsView;

    fn count(hit: &HitFacts<'_, '_>, out: &mut Increments) {
        // A site searching itself (its own search page on a known engine host) is not a referral.
        let Some((engine, term)) = hit.external_referrer().and_then(|r| r.search.as_ref()) else {
            return;
        };
        let month = hit.local.month_period();
        let engine = Segment::sanitize(engine);
        out.add(
            Self::KIND,
            month,
            FieldKey::from_parts(&["e", engine.as_str()]),
            1,
        );
        if let Some(term) = term {
            out.add(
                Self::KIND,
                month,
                FieldKey::from_parts(&["t", term.as_str()]),
                1,
            );
        }
    }

    fn read(doc: &Document) -> TermsView {
        TermsView {
            engines: counts(doc.get_document("e").ok()),
            terms: ranked(doc, "t"),
        }
    }
}
