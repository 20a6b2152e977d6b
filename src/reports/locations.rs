//! Locations: countries, per month.
//!
//! `locations.<YYYY>`, `_id: "<site>:<YYYY-MM>"`: `c.<CC>` (views by ISO 3166-1 alpha-2 code,
//! upper-case) and `c.unknown` (private addresses, and addresses the database does not know).
//! Kept only when tally runs with a country database (`--geoip-db`); the address it is looked
//! up from is never written anywhere.

use super::{counts, HitFacts, Increments, Report, ReportKind};
use crate::field::FieldKey;
use crate::hit::Location;
use mongodb::bson::Document;

pub struct Locations;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LocationsView {
    /// `(country code or "unknown", views)`, largest first.
    pub countries: Vec<(String, i64)>,
}

impl Report for Locations {
    const KIND: ReportKind = ReportKind::Locations;
    type View = LocationsView;

    fn count(hit: &HitFacts<'_, '_>, out: &mut Increments) {
        let country = match &hit.location {
            Location::NotLooked => return,
            Location::Unknown => "unknown",
            Location::Country(c) => c.as_str(),
        };
        out.add(
            Self::KIND,
            hit.local.month_period(),
            FieldKey::from_parts(&["c", country]),
            1,
        );
    }

    fn read(doc: &Document) -> LocationsView {
        LocationsView {
            countries: counts(doc.get_document("c").ok()),
        }
    }
}
