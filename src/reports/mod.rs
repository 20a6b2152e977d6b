//! Reports: how a hit becomes counters, and how a document is read back.
//!
//! Each report kind has its own module with the same parts: the collection prefix
//! ([`Report::KIND`]), [`Report::count`] (hit → increments, pure and allocation-light) and
//! [`Report::read`] (document → typed view). Documents live in yearly collections
//! `<report>.<YYYY>` under ids `"<site>:<period>"`; `docs/data-model.md` is the contract.
//!
//! This module must not touch the store or the coalescer: it only says *what* to increment.

pub mod campaigns;
pub mod cohorts;
pub mod content;
pub mod engagement;
pub mod events;
pub mod facts;
pub mod live;
pub mod locations;
pub mod people;
pub mod range;
pub mod referrers;
pub mod resolutions;
pub mod search;
pub mod technology;
pub mod terms;
pub mod traffic;
pub mod walk;

use crate::field::FieldKey;
use crate::hit::Hit;
use crate::period::Period;
use crate::site::SiteId;
use compact_str::CompactString;
pub use facts::HitFacts;
use mongodb::bson::{Bson, Document};
use std::fmt;

// The shared document model, named from here too since every report reads counters with them.
pub use crate::model::{document_id, number, Value};

/// The report kinds, each a family of yearly collections.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum ReportKind {
    Traffic,
    Technology,
    Content,
    Referrers,
    Terms,
    Campaigns,
    Resolutions,
    Locations,
    /// Custom events in 5-minute buckets: one document per site per hour.
    Events5m,
    /// Custom events per hour: one document per site per day.
    EventsHour,
    /// Custom events per day, and per property value: one document per site per month.
    EventsDay,
    Engagement,
    Cohorts,
    /// Views and pages per local minute, for the live panel: one document per site per minute,
    /// kept an hour.
    Live,
    /// People: HyperLogLog registers per site per day, month and year (see [`people`]).
    People,
}

/// A sub-document whose keys come from strangers and are capped (see
/// `aggregate::admission`): `space.<k1>…<k_depth>.…`, where the item admitted is the `depth`
/// levels below `space`. With `per_group`, items sharing all but their last level (the values
/// of one event property) are also capped at that many each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capped {
    pub space: &'static str,
    pub depth: usize,
    pub per_group: Option<usize>,
}

const fn capped(space: &'static str) -> Capped {
    Capped {
        space,
        depth: 1,
        per_group: None,
    }
}

/// Values kept per event property and month; the rest is `(other)`.
pub const MAX_PROPERTY_VALUES: usize = 100;

impl ReportKind {
    /// Every kind; the order is the one durable logs record (new kinds go last).
    pub const ALL: [ReportKind; 15] = [
        ReportKind::Traffic,
        ReportKind::Technology,
        ReportKind::Content,
        ReportKind::Referrers,
        ReportKind::Terms,
        ReportKind::Campaigns,
        ReportKind::Resolutions,
        ReportKind::Locations,
        ReportKind::Events5m,
        ReportKind::EventsHour,
        ReportKind::EventsDay,
        ReportKind::Engagement,
        ReportKind::Cohorts,
        ReportKind::Live,
        ReportKind::People,
    ];

    /// The collection prefix: `traffic`, `technology`, `content`, ….
    pub fn name(self) -> &'static str {
        match self {
            ReportKind::Traffic => "traffic",
            ReportKind::Technology => "technology",
            ReportKind::Content => "content",
            ReportKind::Referrers => "referrers",
            ReportKind::Terms => "terms",
            ReportKind::Campaigns => "campaigns",
            ReportKind::Resolutions => "resolutions",
            ReportKind::Locations => "locations",
            ReportKind::Events5m => "events_5m",
            ReportKind::EventsHour => "events_hour",
            ReportKind::EventsDay => "events_day",
            ReportKind::Engagement => "engagement",
            ReportKind::Cohorts => "cohorts",
            ReportKind::Live => "live",
            ReportKind::People => "people",
        }
    }

    /// The sub-documents keyed by free text, whose keys are capped per month document (see
    /// `aggregate::admission`). Empty for reports with a fixed vocabulary.
    pub fn capped_spaces(self) -> &'static [Capped] {
        const EVENTS: &[Capped] = &[
            capped("e"),
            Capped {
                space: "p",
                depth: 3,
                per_group: Some(MAX_PROPERTY_VALUES),
            },
        ];
        const CONTENT: &[Capped] = &[capped("p")];
        const REFERRERS: &[Capped] = &[capped("h"), capped("l")];
        const TERMS: &[Capped] = &[capped("t")];
        const CAMPAIGNS: &[Capped] = &[capped("s"), capped("m"), capped("c")];
        match self {
            ReportKind::Content | ReportKind::Live => CONTENT,
            ReportKind::Referrers => REFERRERS,
            ReportKind::Terms => TERMS,
            ReportKind::Campaigns => CAMPAIGNS,
            ReportKind::Events5m | ReportKind::EventsHour | ReportKind::EventsDay => EVENTS,
            ReportKind::Traffic
            | ReportKind::Technology
            | ReportKind::Resolutions
            | ReportKind::Locations
            | ReportKind::Engagement
            | ReportKind::Cohorts
            | ReportKind::People => &[],
        }
    }

    pub fn capped(self) -> bool {
        !self.capped_spaces().is_empty()
    }

    /// The report whose month document decides which keys this one names: itself, except
    /// for the finer event resolutions, which follow the daily one, and the live minutes, which
    /// name the pages their content month names.
    pub fn governing(self) -> ReportKind {
        match self {
            ReportKind::Events5m | ReportKind::EventsHour => ReportKind::EventsDay,
            ReportKind::Live => ReportKind::Content,
            other => other,
        }
    }

    /// The yearly collection, e.g. `technology.2011`.
    pub fn collection(self, year: i32) -> String {
        format!("{}.{year:04}", self.name())
    }
}

impl fmt::Display for ReportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A document of one site's report, without the site: `(kind, period)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct DocRef {
    pub kind: ReportKind,
    pub period: Period,
}

/// A document: collection and id follow from the site, the kind and the period.
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct DocKey {
    pub site: SiteId,
    pub doc: DocRef,
}

impl DocKey {
    pub fn collection(&self) -> String {
        self.doc.kind.collection(self.doc.period.year())
    }

    pub fn id(&self) -> String {
        document_id(&self.site, self.doc.period)
    }
}

/// The increments one hit asks for, across all its documents.
#[derive(Debug, Default)]
pub struct Increments {
    pub entries: Vec<(DocRef, FieldKey, Value)>,
}

impl Increments {
    pub fn with_capacity(n: usize) -> Increments {
        Increments {
            entries: Vec::with_capacity(n),
        }
    }

    pub fn add(&mut self, kind: ReportKind, period: Period, field: FieldKey, by: i64) {
        self.entries
            .push((DocRef { kind, period }, field, Value::Inc(by)));
    }

    pub fn set(&mut self, kind: ReportKind, period: Period, field: FieldKey, text: &str) {
        self.entries.push((
            DocRef { kind, period },
            field,
            Value::Set(CompactString::from(text)),
        ));
    }

    /// Asks `field` to be at least `value` (`$max`).
    pub fn max(&mut self, kind: ReportKind, period: Period, field: FieldKey, value: i64) {
        self.entries
            .push((DocRef { kind, period }, field, Value::Max(value)));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// The parts every report module has.
pub trait Report {
    const KIND: ReportKind;
    /// The typed reading of one document.
    type View;
    /// Appends the increments `hit` asks of this report.
    fn count(hit: &HitFacts<'_, '_>, out: &mut Increments);
    /// Reads one of this report's documents (a missing document reads as empty).
    fn read(doc: &Document) -> Self::View;
}

/// Every report's increments for one hit.
pub fn count(hit: &Hit<'_>, out: &mut Increments) {
    let hit = &HitFacts::new(hit);
    traffic::Traffic::count(hit, out);
    technology::Technology::count(hit, out);
    content::Content::count(hit, out);
    referrers::Referrers::count(hit, out);
    terms::Terms::count(hit, out);
    campaigns::Campaigns::count(hit, out);
    resolutions::Resolutions::count(hit, out);
    locations::Locations::count(hit, out);
    engagement::Engagement::count(hit, out);
    cohorts::Cohorts::count(hit, out);
    live::Live::count(hit, out);
}

/// One entry of a report keyed by free text: the text, its views, and (pages only) its title.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// The original text (unescaped).
    pub key: String,
    /// The text was longer than a field name may be; `key` is its beginning.
    pub truncated: bool,
    pub views: i64,
    /// Pages only: the people (`u`) counted for it, from the snippet's page flags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub people: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Read over a range: some document of the range may have counted this key under
    /// `(other)` (see [`range::unequal_keys`]). Not written when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

/// A capped sub-document read back: its entries, largest first, and what overflowed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Ranked {
    pub entries: Vec<Entry>,
    /// Views of keys that arrived after the document was full (`(other)`).
    pub other: i64,
    /// Lists that count people (pages): the people of `(other)`, the sum of its pages'.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_people: Option<i64>,
}

impl Ranked {
    /// Views in all, `(other)` included.
    pub fn total(&self) -> i64 {
        self.entries.iter().map(|e| e.views).sum::<i64>() + self.other
    }

    /// The first `n` entries (the top list a dashboard shows).
    pub fn top(&self, n: usize) -> &[Entry] {
        &self.entries[..n.min(self.entries.len())]
    }
}

/// Reads the sub-document `space` of a document keyed by escaped text. Values are counters, or
/// sub-documents with a counter `v`, a text `t` and people `u` (pages). Entries with no views
/// are left out.
pub fn ranked(doc: &Document, space: &str) -> Ranked {
    let mut out = Ranked::default();
    let Ok(sub) = doc.get_document(space) else {
        return out;
    };
    for (name, value) in sub {
        let (views, title, people) = match value {
            Bson::Document(d) => (
                number(d.get("v")),
                d.get_str("t").ok().map(str::to_owned),
                d.get("u").map(|u| number(Some(u))),
            ),
            other => (number(Some(other)), None, None),
        };
        if crate::field::is_reserved(name) {
            if name == crate::field::Key::OTHER {
                out.other += views;
                if let Some(people) = people {
                    *out.other_people.get_or_insert(0) += people;
                }
            }
            continue;
        }
        if views == 0 {
            continue;
        }
        let text = crate::field::unescape(name);
        out.entries.push(Entry {
            key: text.text,
            truncated: text.truncated,
            views,
            people,
            title,
            partial: false,
        });
    }
    out.entries
        .sort_by(|a, b| b.views.cmp(&a.views).then_with(|| a.key.cmp(&b.key)));
    out
}

/// The numeric fields of a sub-document, e.g. `p` → `{windows: 5, macos: 2}`, largest first.
pub fn counts(doc: Option<&Document>) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = doc
        .map(|d| {
            d.iter()
                .map(|(k, v)| (k.clone(), number(Some(v))))
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}
