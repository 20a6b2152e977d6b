//! Reports: how a hit becomes counters, and how a document is read back.
//!
//! Each report kind has its own module with the same parts: the collection prefix
//! ([`Report::KIND`]), [`Report::count`] (hit → increments, pure and allocation-light) and
//! [`Report::read`] (document → typed view). Documents live in yearly collections
//! `<report>.<YYYY>` under ids `"<site>:<period>"`; `docs/data-model.md` is the contract.
//!
//! This module must not touch the store or the coalescer: it only says *what* to increment.

pub mod technology;
pub mod traffic;

use crate::field::FieldKey;
use crate::hit::Hit;
use crate::period::Period;
use crate::site::SiteId;
use mongodb::bson::{Bson, Document};
use std::fmt;

/// The report kinds, each a family of yearly collections.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum ReportKind {
    Traffic,
    Technology,
}

impl ReportKind {
    pub const ALL: [ReportKind; 2] = [ReportKind::Traffic, ReportKind::Technology];

    /// The collection prefix: `traffic`, `technology`.
    pub fn name(self) -> &'static str {
        match self {
            ReportKind::Traffic => "traffic",
            ReportKind::Technology => "technology",
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

/// `"<site>:<period>"`, e.g. `"acme:2011-06"`.
pub fn document_id(site: &SiteId, period: Period) -> String {
    format!("{site}:{period}")
}

/// The increments one hit asks for, across all its documents.
#[derive(Debug, Default)]
pub struct Increments {
    pub entries: Vec<(DocRef, FieldKey, i64)>,
}

impl Increments {
    pub fn with_capacity(n: usize) -> Increments {
        Increments {
            entries: Vec::with_capacity(n),
        }
    }

    pub fn add(&mut self, kind: ReportKind, period: Period, field: FieldKey, by: i64) {
        self.entries.push((DocRef { kind, period }, field, by));
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
    fn count(hit: &Hit<'_>, out: &mut Increments);
    /// Reads one of this report's documents (a missing document reads as empty).
    fn read(doc: &Document) -> Self::View;
}

/// Every report's increments for one hit.
pub fn count(hit: &Hit<'_>, out: &mut Increments) {
    traffic::Traffic::count(hit, out);
    technology::Technology::count(hit, out);
}

/// A counter's value whatever numeric type a writer left (`$inc` keeps int32, int64 or
/// double); anything else reads as 0.
pub fn number(value: Option<&Bson>) -> i64 {
    match value {
        Some(Bson::Int64(n)) => *n,
        Some(Bson::Int32(n)) => i64::from(*n),
        Some(Bson::Double(d)) => *d as i64,
        _ => 0,
    }
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
