//! Campaigns: UTM parameters of the page URL, per month.
//!
//! `campaigns.<YYYY>`, `_id: "<site>:<YYYY-MM>"`: `s.<source>`, `m.<medium>`, `c.<campaign>`
//! (views), plus `n` (keys admitted). The source is `utm_source`, or `ref` or `source` when
//! `utm_source` is absent; the medium is `utm_medium`; the campaign `utm_campaign`. Values are
//! kept as sent (trimmed, case kept) and escaped with [`Key::escape`]. Capped: see
//! `aggregate::admission`.

use super::{ranked, HitFacts, Increments, Ranked, Report, ReportKind};
use crate::field::FieldKey;
use mongodb::bson::Document;
use std::borrow::Cow;
use url::Url;

pub struct Campaigns;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CampaignsView {
    pub sources: Ranked,
    pub mediums: Ranked,
    pub campaigns: Ranked,
}

/// The campaign parameters of one page URL.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Utm<'a> {
    pub source: Option<Cow<'a, str>>,
    pub medium: Option<Cow<'a, str>>,
    pub campaign: Option<Cow<'a, str>>,
}

impl Report for Campaigns {
    const KIND: ReportKind = ReportKind::Campaigns;
    type View = CampaignsView;

    fn count(hit: &HitFacts<'_, '_>, out: &mut Increments) {
        let Some(page) = hit.page_facts() else {
            return;
        };
        let month = hit.local.month_period();
        for (space, key) in [
            ("s", &page.source),
            ("m", &page.medium),
            ("c", &page.campaign),
        ] {
            if let Some(key) = key {
                out.add(
                    Self::KIND,
                    month,
                    FieldKey::from_parts(&[space, key.as_str()]),
                    1,
                );
            }
        }
    }

    fn read(doc: &Document) -> CampaignsView {
        CampaignsView {
            sources: ranked(doc, "s"),
            mediums: ranked(doc, "m"),
            campaigns: ranked(doc, "c"),
        }
    }
}

/// Reads the campaign parameters (the first occurrence of each; blank values are absent).
pub fn utm(url: &Url) -> Utm<'_> {
    let mut utm = Utm::default();
    let mut alias = None;
    if url.query().is_none() {
        return utm;
    }
    for (name, value) in url.query_pairs() {
        let slot = match &*name {
            "utm_source" => &mut utm.source,
            "utm_medium" => &mut utm.medium,
            "utm_campaign" => &mut utm.campaign,
            "ref" | "source" => &mut alias,
            _ => continue,
        };
        if slot.is_none() {
            *slot = trimmed(value);
        }
    }
    if utm.source.is_none() {
        utm.source = alias;
    }
    utm
}

fn trimmed(value: Cow<'_, str>) -> Option<Cow<'_, str>> {
    let t = value.trim();
    if t.is_empty() {
        return None;
    }
    if t.len() == value.len() {
        return Some(value);
    }
    Some(Cow::Owned(t.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(url: &str) -> (Option<String>, Option<String>, Option<String>) {
        let url = Url::parse(url).unwrap();
        let u = utm(&url);
        let s = |v: Option<Cow<'_, str>>| v.map(|v| v.into_owned());
        (s(u.source), s(u.medium), s(u.campaign))
    }

    #[test]
    fn reads_utm_parameters_and_aliases() {
        assert_eq!(
            get("https://a.example/?utm_source=Newsletter&utm_medium=email&utm_campaign=Black+Friday%202026"),
            (Some("Newsletter".into()), Some("email".into()), Some("Black Friday 2026".into()))
        );
        assert_eq!(
            get("https://a.example/?ref=producthunt").0.as_deref(),
            Some("producthunt")
        );
        assert_eq!(
            get("https://a.example/?ref=a&utm_source=b&source=c")
                .0
                .as_deref(),
            Some("b")
        );
        assert_eq!(
            get("https://a.example/?utm_source=+&utm_source=x")
                .0
                .as_deref(),
            Some("x")
        );
        assert_eq!(get("https://a.example/"), (None, None, None));
    }
}
