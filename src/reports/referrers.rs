//! Referrers: where visitors came from, per day and per month.
//!
//! `referrers.<YYYY>`, `_id: "<site>:<YYYY-MM>"` and `"<site>:<YYYY-MM-DD>"`: `h.<host>` (views
//! referred by a host) and `l.<host><path>` (by a link: host and path, no query), plus `n` (keys
//! admitted) in the month document. Hosts are lower-case without a leading `www.`; keys are
//! escaped with [`Key::escape`]. Only external referrers count: a referrer whose host is one
//! of the site's `hosts` (or, for a site with none, the page's own host) is internal
//! navigation. Capped: see `aggregate::admission`. Hosts and links are derived in
//! [`super::facts`].

use super::{ranked, HitFacts, Increments, Ranked, Report, ReportKind};
use crate::field::FieldKey;
use mongodb::bson::Document;

pub struct Referrers;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReferrersView {
    /// Referring hosts by views.
    pub hosts: Ranked,
    /// Referring links (`host/path`) by views.
    pub links: Ranked,
}

impl Report for Referrers {
    const KIND: ReportKind = ReportKind::Referrers;
    type View = ReferrersView;

    fn count(hit: &HitFacts<'_, '_>, out: &mut Increments) {
        let Some(referrer) = hit.external_referrer() else {
            return;
        };
        let host = FieldKey::from_parts(&["h", referrer.host_key.as_str()]);
        let link = FieldKey::from_parts(&["l", referrer.link_key.as_str()]);
        for period in [hit.local.month_period(), hit.local.day_period()] {
            out.add(Self::KIND, period, host.clone(), 1);
            out.add(Self::KIND, period, link.clone(), 1);
        }
    }

    fn read(doc: &Document) -> ReferrersView {
        ReferrersView {
            hosts: ranked(doc, "h"),
            links: ranked(doc, "l"),
        }
    }
}
