//! Parked statements: increments a document refused for good, kept in the store until an
//! operator repairs the document and retries them (`tally parked`).
//!
//! A statement the store refuses permanently (see [`crate::store::classify`]: a counter edited
//! into a string, a validator, a document too large) is not sent again: sending it again would
//! fail again and hold back nothing else, but it would never count. Instead it becomes one
//! document of the `parked` collection, written by the flusher like any statement (marked, so a
//! resend is recognised):
//!
//! ```text
//! {_id: "acme:2026-11|content.2026|0123456789ab|0000000300000007",
//!  site, kind, period, collection, doc, writer, error, code, at,
//!  i: {<the statement's $inc, nested as in the document>},
//!  s: {<its $set>},
//!  m: {<its $max>},
//!  _w: {<writer>: <seq>}}
//! ```
//!
//! Entries are never changed once written. While a writer has entries for a document it sends
//! that document nothing: its new increments are parked too, at most one entry per document
//! per [`PARK_EVERY`] (they wait in memory in between), so the writer's marks in the document
//! never pass the parked ones. `tally parked retry` applies a document's entries in order, each
//! with its own mark (writer, seq) and without a guard, then deletes them: a retry that is
//! interrupted and run again finds the mark in the document and only deletes. So a parked
//! increment is applied exactly once, by the retry, or dropped by `tally parked drop`.
//!
//! Every process reads the collection (every [`REFRESH`], and after parking): `/readyz` says
//! `degraded` while any entry exists, `/metrics` counts them, and a site with more than
//! `--parked-max-per-site` entries gets 503 for its hits (and only that site), so a broken site
//! does not fill the collection.

use crate::field::FieldKey;
use crate::period::Period;
use crate::reports::{DocKey, DocRef, ReportKind};
use crate::site::SiteId;
use crate::store::{DocUpdate, Mark, Store, StoreError, MARKS};
use mongodb::bson::{Bson, Document};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::RwLock;
use std::time::Duration;

/// The collection of parked statements.
pub const PARKED: &str = "parked";

/// How often a process reads the parked collection when it parked nothing itself.
pub const REFRESH: Duration = Duration::from_secs(10);

/// New increments of a document with parked entries are parked at most this often (they wait,
/// merged, in memory in between).
pub const PARK_EVERY: Duration = Duration::from_secs(60);

/// The default of `--parked-max-per-site`.
pub const DEFAULT_MAX_PER_SITE: usize = 1_000;

/// The `_id` of the entry parking `key`'s statement marked `mark`: the document's id first, so
/// a document's entries sort together and in the order they were written.
pub fn entry_id(key: &DocKey, mark: &Mark) -> String {
    format!(
        "{}|{}|{}|{:016x}",
        key.id(),
        key.collection(),
        mark.writer,
        mark.seq
    )
}

/// Whether `id` is a parked entry's (report documents' ids never hold a `|`).
pub fn is_entry(id: &str) -> bool {
    id.contains('|')
}

/// The statement that parks `update` (meant for `key`, refused with `error`): an upsert of the
/// entry, with `update`'s mark, so sending it twice parks it once. `at`: when, RFC 3339.
pub fn entry(
    key: &DocKey,
    update: &DocUpdate,
    mark: &Mark,
    error: &str,
    code: Option<i64>,
    at: &str,
) -> DocUpdate {
    let prefixed = |prefix: &str, f: &FieldKey| {
        FieldKey::parse(&format!("{prefix}.{}", f.as_str())).expect("a prefixed field key")
    };
    let mut set: Vec<(FieldKey, String)> = update
        .set
        .iter()
        .map(|(f, t)| (prefixed("s", f), t.clone()))
        .collect();
    let meta = [
        ("site", key.site.to_string()),
        ("kind", key.doc.kind.name().to_owned()),
        ("period", key.doc.period.to_string()),
        ("collection", key.collection()),
        ("doc", key.id()),
        ("writer", mark.writer.clone()),
        ("error", error.chars().take(500).collect()),
        ("code", code.map(|c| c.to_string()).unwrap_or_default()),
        ("at", at.to_owned()),
    ];
    for (field, value) in meta {
        set.push((FieldKey::parse(field).expect("a plain field"), value));
    }
    set.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    DocUpdate {
        id: entry_id(key, mark),
        inc: update
            .inc
            .iter()
            .map(|(f, by)| (prefixed("i", f), *by))
            .collect(),
        set,
        max: update
            .max
            .iter()
            .map(|(f, v)| (prefixed("m", f), *v))
            .collect(),
        guard: None,
        mark: Some(mark.clone()),
        unset: Vec::new(),
    }
}

/// One parked entry, as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub id: String,
    pub key: DocKey,
    pub mark: Mark,
    pub error: String,
    pub code: Option<i64>,
    pub at: String,
    /// The statement's increments, texts and maxima, as dotted paths of the document.
    pub inc: Vec<(FieldKey, i64)>,
    pub set: Vec<(FieldKey, String)>,
    pub max: Vec<(FieldKey, i64)>,
}

impl Entry {
    pub fn from_document(doc: &Document) -> Result<Entry, String> {
        let text = |f: &str| doc.get_str(f).map_err(|_| format!("no {f}"));
        let id = text("_id")?.to_owned();
        let site = SiteId::parse(text("site")?).map_err(|e| e.to_string())?;
        let kind_name = text("kind")?;
        let kind = *ReportKind::ALL
            .iter()
            .find(|k| k.name() == kind_name)
            .ok_or_else(|| format!("unknown report {kind_name:?}"))?;
        let period = Period::parse(text("period")?).ok_or("bad period")?;
        let writer = text("writer")?.to_owned();
        let seq = doc
            .get_document(MARKS)
            .ok()
            .and_then(|m| m.get(&writer))
            .map(|s| crate::model::number(Some(s)))
            .ok_or("no mark")?;
        let mut inc = Vec::new();
        if let Ok(i) = doc.get_document("i") {
            flatten(i, "", &mut |path, value| {
                if let Some(n) = as_count(value) {
                    inc.push((path, n));
                }
            })?;
        }
        let mut set = Vec::new();
        if let Ok(s) = doc.get_document("s") {
            flatten(s, "", &mut |path, value| {
                if let Bson::String(t) = value {
                    set.push((path, t.clone()));
                }
            })?;
        }
        let mut max = Vec::new();
        if let Ok(m) = doc.get_document("m") {
            flatten(m, "", &mut |path, value| {
                if let Some(n) = as_count(value) {
                    max.push((path, n));
                }
            })?;
        }
        inc.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        set.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        max.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(Entry {
            id,
            key: DocKey {
                site,
                doc: DocRef { kind, period },
            },
            mark: Mark { writer, seq },
            error: doc.get_str("error").unwrap_or_default().to_owned(),
            code: doc.get_str("code").ok().and_then(|c| c.parse().ok()),
            at: doc.get_str("at").unwrap_or_default().to_owned(),
            inc,
            set,
            max,
        })
    }

    /// The statement the entry holds, for its document: its own mark, no guard.
    pub fn statement(&self) -> DocUpdate {
        DocUpdate {
            id: self.key.id(),
            inc: self.inc.clone(),
            set: self.set.clone(),
            max: self.max.clone(),
            guard: None,
            mark: Some(self.mark.clone()),
            unset: Vec::new(),
        }
    }

    /// The sum of its counters, for `tally parked list`.
    pub fn increments(&self) -> i64 {
        self.inc.iter().map(|(_, n)| n).sum()
    }
}

fn as_count(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int64(n) => Some(*n),
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Double(d) if d.fract() == 0.0 => Some(*d as i64),
        _ => None,
    }
}

/// Calls `leaf` with the dotted path of every value of `doc` that is not a document.
fn flatten(
    doc: &Document,
    prefix: &str,
    leaf: &mut dyn FnMut(FieldKey, &Bson),
) -> Result<(), String> {
    for (k, v) in doc {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Bson::Document(d) => flatten(d, &path, leaf)?,
            v => leaf(
                FieldKey::parse(&path).ok_or_else(|| format!("bad field {path:?}"))?,
                v,
            ),
        }
    }
    Ok(())
}

/// Every parked entry, in `_id` order (a document's entries together, oldest first).
pub async fn list(store: &dyn Store) -> Result<Vec<Result<Entry, (String, String)>>, StoreError> {
    let docs = store
        .scan(PARKED, "", "\u{10ffff}", &[], usize::MAX)
        .await?;
    Ok(docs
        .iter()
        .map(|d| {
            Entry::from_document(d).map_err(|e| (d.get_str("_id").unwrap_or("?").to_owned(), e))
        })
        .collect())
}

/// What a process needs to know of the parked collection, from one read of its small fields.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Census {
    pub total: usize,
    pub per_site: HashMap<SiteId, usize>,
    /// The documents with entries of each writer.
    pub by_writer: HashMap<String, HashSet<DocKey>>,
}

/// Reads the parked collection's small fields (not the increments).
pub async fn census(store: &dyn Store) -> Result<Census, StoreError> {
    let docs = store
        .scan(
            PARKED,
            "",
            "\u{10ffff}",
            &["site", "kind", "period", "writer"],
            usize::MAX,
        )
        .await?;
    let mut out = Census {
        total: docs.len(),
        ..Census::default()
    };
    for d in &docs {
        let Ok(site) = SiteId::parse(d.get_str("site").unwrap_or_default()) else {
            continue;
        };
        *out.per_site.entry(site.clone()).or_default() += 1;
        let kind = ReportKind::ALL
            .iter()
            .find(|k| Ok(k.name()) == d.get_str("kind"));
        let period = d.get_str("period").ok().and_then(Period::parse);
        if let (Some(kind), Some(period), Ok(writer)) = (kind, period, d.get_str("writer")) {
            out.by_writer
                .entry(writer.to_owned())
                .or_default()
                .insert(DocKey {
                    site,
                    doc: DocRef {
                        kind: *kind,
                        period,
                    },
                });
        }
    }
    Ok(out)
}

/// What the hit path needs: the sites past the bound of parked entries, and how many entries
/// exist (for `/readyz` and `/metrics`). Written by the flusher's reads of the collection.
pub struct Sites {
    max_per_site: usize,
    any_over: AtomicBool,
    over: RwLock<HashSet<SiteId>>,
    total: AtomicUsize,
}

impl Sites {
    /// `max_per_site`: a site with more entries gets 503 (0: no bound).
    pub fn new(max_per_site: usize) -> Sites {
        Sites {
            max_per_site,
            any_over: AtomicBool::new(false),
            over: RwLock::new(HashSet::new()),
            total: AtomicUsize::new(0),
        }
    }

    pub fn max_per_site(&self) -> usize {
        self.max_per_site
    }

    /// Whether `site`'s hits are refused: its parked entries passed the bound.
    pub fn is_over(&self, site: &SiteId) -> bool {
        self.any_over.load(Ordering::Relaxed)
            && self
                .over
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains(site)
    }

    /// Entries in the collection at the last read.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// The sites past the bound, sorted.
    pub fn over(&self) -> Vec<SiteId> {
        let mut out: Vec<SiteId> = self
            .over
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
        out.sort();
        out
    }

    pub fn update(&self, census: &Census) {
        let over: HashSet<SiteId> = census
            .per_site
            .iter()
            .filter(|(_, n)| self.max_per_site > 0 && **n > self.max_per_site)
            .map(|(s, _)| s.clone())
            .collect();
        self.any_over.store(!over.is_empty(), Ordering::Relaxed);
        *self.over.write().unwrap_or_else(|e| e.into_inner()) = over;
        self.total.store(census.total, Ordering::Relaxed);
    }
}

impl Default for Sites {
    fn default() -> Sites {
        Sites::new(DEFAULT_MAX_PER_SITE)
    }
}

/// What a retry did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Retried {
    /// Entries applied now.
    pub applied: usize,
    /// Entries found already applied (a retry interrupted before it deleted them).
    pub already: usize,
    /// Entries still refused or not reached, with the reason.
    pub failed: Vec<(String, String)>,
}

/// Applies the entries `ids` select (every entry when `None`) to their documents and deletes
/// them. Each document's entries of one writer go in order, and an entry is taken only with
/// the older entries of its document and writer (a newer one applied first would make the
/// older one look applied). Stops a document at its first failure.
pub async fn retry(store: &dyn Store, id: Option<&str>) -> Result<Retried, StoreError> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut out = Retried::default();
    for e in list(store).await? {
        match e {
            Ok(e) => entries.push(e),
            Err((id, error)) => out.failed.push((id, format!("unreadable entry: {error}"))),
        }
    }
    if let Some(id) = id {
        let Some(chosen) = entries.iter().find(|e| e.id == id).cloned() else {
            return Err(StoreError::Corrupt {
                collection: PARKED.into(),
                id: id.into(),
                message: "no such parked entry".into(),
            });
        };
        entries.retain(|e| {
            e.key == chosen.key
                && e.mark.writer == chosen.mark.writer
                && e.mark.seq <= chosen.mark.seq
        });
        out.failed.clear();
    }
    entries.sort_by(|a, b| {
        (a.key.collection(), a.key.id(), &a.mark.writer, a.mark.seq).cmp(&(
            b.key.collection(),
            b.key.id(),
            &b.mark.writer,
            b.mark.seq,
        ))
    });
    let mut stopped: HashSet<(DocKey, String)> = HashSet::new();
    for e in entries {
        let group = (e.key.clone(), e.mark.writer.clone());
        if stopped.contains(&group) {
            out.failed
                .push((e.id.clone(), "an older entry of its document failed".into()));
            continue;
        }
        let batch = crate::store::Batch {
            collections: vec![crate::store::CollectionBatch {
                collection: e.key.collection(),
                docs: vec![e.statement()],
            }],
        };
        let applied = store.apply(&batch).await;
        if let Some(f) = applied.failed.first() {
            out.failed.push((e.id.clone(), f.error.clone()));
            stopped.insert(group);
            continue;
        }
        if applied.duplicates.is_empty() {
            out.applied += 1;
        } else {
            out.already += 1;
        }
        delete(store, &e.id).await?;
    }
    Ok(out)
}

/// Deletes one entry.
pub async fn delete(store: &dyn Store, id: &str) -> Result<u64, StoreError> {
    store.delete_range(PARKED, id, &format!("{id}\0")).await
}

/// Deletes the entry `id`, or every entry; returns how many there were.
pub async fn drop(store: &dyn Store, id: Option<&str>) -> Result<u64, StoreError> {
    match id {
        Some(id) => delete(store, id).await,
        None => store.delete_range(PARKED, "", "\u{10ffff}").await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_as_the_statement_it_parked() {
        let key = DocKey {
            site: SiteId::parse("acme").unwrap(),
            doc: DocRef {
                kind: ReportKind::Content,
                period: Period::Month(2026, 11),
            },
        };
        let mark = Mark {
            writer: "0123456789ab".into(),
            seq: (3 << 32) | 7,
        };
        let update = DocUpdate {
            id: key.id(),
            inc: vec![
                (FieldKey::parse("d.01.v").unwrap(), 2),
                (FieldKey::parse("p./a.v").unwrap(), 5),
            ],
            set: vec![(FieldKey::parse("p./a.t").unwrap(), "A".into())],
            max: vec![(FieldKey::parse("17").unwrap(), 3)],
            guard: None,
            mark: Some(mark.clone()),
            unset: Vec::new(),
        };
        let parked = entry(
            &key,
            &update,
            &mark,
            "code 14: no",
            Some(14),
            "2026-12-01T00:00:00Z",
        );
        assert_eq!(
            parked.id,
            "acme:2026-11|content.2026|0123456789ab|0000000300000007"
        );
        assert!(is_entry(&parked.id) && !is_entry(&key.id()));
        // the document the store would hold
        let mut doc = mongodb::bson::doc! {"_id": &parked.id};
        crate::store::inc::apply_all(
            &mut doc,
            parked.inc.iter().map(|(f, n)| (f.as_str(), *n)),
            parked.set.iter().map(|(f, t)| (f.as_str(), t.as_str())),
            parked.max.iter().map(|(f, v)| (f.as_str(), *v)),
        )
        .unwrap();
        doc.insert(MARKS, mongodb::bson::doc! {"0123456789ab": mark.seq});
        let read = Entry::from_document(&doc).unwrap();
        assert_eq!(read.key, key);
        assert_eq!(read.mark, mark);
        assert_eq!(read.code, Some(14));
        assert_eq!(read.statement(), update);
        assert_eq!(read.increments(), 7);
    }

    #[test]
    fn only_sites_past_the_bound_are_refused() {
        let sites = Sites::new(2);
        let (a, b) = (SiteId::parse("a").unwrap(), SiteId::parse("b").unwrap());
        let mut census = Census {
            total: 5,
            ..Census::default()
        };
        census.per_site.insert(a.clone(), 3);
        census.per_site.insert(b.clone(), 2);
        sites.update(&census);
        assert!(sites.is_over(&a));
        assert!(!sites.is_over(&b));
        assert_eq!(sites.total(), 5);
        sites.update(&Census::default());
        assert!(!sites.is_over(&a));
    }
}
