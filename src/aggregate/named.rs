//! Which keys the capped month documents name, shared by the flusher, which learns it (from the
//! documents it reads and the keys it admits), and the hit path, which asks it before spending a
//! sender's budget of new keys (`track::budget`).
//!
//! Also the one place that knows how a capped field names its item (`p./blog.v` names the item
//! `p./blog`), and the mark a field carries through the coalescer when its sender had no budget
//! left: such a field is counted under its key only if the key is named anyway, else under
//! `(other)`, and it never proposes its key for admission. The mark is a first path segment
//! (`(?)`), which escaping never produces; [`super::admission`] removes it from every field
//! before anything reaches the store.
//!
//! This is knowledge of one process, kept while the flusher keeps a document's book: it is a
//! hint, never the truth (a key named by another process is unknown here until the month
//! document is read again), so the hit path only uses it to spend less budget.

use crate::field::FieldKey;
use crate::reports::{Capped, DocRef, ReportKind};
use crate::site::SiteId;
use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::RwLock;

/// Independent locks over the item hashes.
const SHARDS: usize = 64;

/// The first segment of a field whose sender may not name new keys.
pub const UNVOUCHED: &str = "(?)";

type Set = HashSet<u64, foldhash::fast::FixedState>;

/// Hashes of named items, and of month documents that are full, in one sharded set: the hit
/// path asks it a few times per hit, so no lock is shared by all of them.
pub struct Named {
    hasher: foldhash::fast::RandomState,
    items: Box<[RwLock<Set>]>,
}

impl Default for Named {
    fn default() -> Named {
        Named {
            hasher: Default::default(),
            items: (0..SHARDS).map(|_| RwLock::default()).collect(),
        }
    }
}

impl Named {
    /// The hash of the item `path` (e.g. `p./blog`) of `site`'s month document `month`.
    pub fn item(&self, site: &SiteId, month: DocRef, path: &str) -> u64 {
        self.hasher.hash_one((site.as_str(), month, path))
    }

    /// The hash of `site`'s month document `month` (never an item's: items hash a path too).
    pub fn doc(&self, site: &SiteId, month: DocRef) -> u64 {
        self.hasher.hash_one((site.as_str(), month))
    }

    fn shard(&self, item: u64) -> &RwLock<Set> {
        &self.items[(item >> 58) as usize % SHARDS]
    }

    /// Whether the item is known to be named.
    pub fn contains(&self, item: u64) -> bool {
        self.shard(item)
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&item)
    }

    pub fn insert(&self, items: impl IntoIterator<Item = u64>) {
        for item in items {
            self.shard(item)
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(item);
        }
    }

    pub fn remove(&self, items: impl IntoIterator<Item = u64>) {
        for item in items {
            self.shard(item)
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&item);
        }
    }

    /// Whether the month document is known to have no room for another key.
    pub fn is_full(&self, doc: u64) -> bool {
        self.contains(doc)
    }

    pub fn set_full(&self, doc: u64, full: bool) {
        if full {
            self.insert([doc]);
        } else {
            self.remove([doc]);
        }
    }

    /// Hashes known (items, and full documents), over all documents.
    pub fn len(&self) -> usize {
        self.items
            .iter()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where the capped item sits in a field path: `p.signup.plan.pro.12.c` has the item
/// `p.signup.plan.pro` (its last level starting at `last`), in the group `p.signup.plan`.
pub struct Item<'a> {
    pub spec: Capped,
    /// The item's path: the space and `depth` levels.
    pub path: &'a str,
    /// Where the item's last level starts in the field.
    pub last: usize,
}

impl Item<'_> {
    pub fn name(&self) -> &str {
        &self.path[self.last..]
    }

    pub fn group(&self) -> &str {
        &self.path[..self.last - 1]
    }
}

/// The capped item `path` names in a document of `kind`, if any (an unmarked path). On the hit
/// path, for every field of a capped document: dots are found byte by byte (paths are short,
/// and escaped keys hold no `.`), not with a string searcher.
pub fn item_of(kind: ReportKind, path: &str) -> Option<Item<'_>> {
    let bytes = path.as_bytes();
    let dot_from = |from: usize| {
        bytes[from..]
            .iter()
            .position(|&b| b == b'.')
            .map_or(bytes.len(), |i| from + i)
    };
    let space = &path[..dot_from(0)];
    let spec = *kind.capped_spaces().iter().find(|c| c.space == space)?;
    // The end of the item: after `depth` more levels.
    let mut end = space.len();
    let mut last = end;
    for _ in 0..spec.depth {
        if end >= path.len() {
            return None;
        }
        last = end + 1;
        end = dot_from(last);
    }
    Some(Item {
        spec,
        path: &path[..end],
        last,
    })
}

/// The field with the mark of a sender without budget.
pub fn mark(field: &FieldKey) -> FieldKey {
    FieldKey::parse(&format!("{UNVOUCHED}.{field}")).expect("a safe path with a safe segment")
}

/// The field a marked field stands for, or `None` for a field without the mark.
pub fn unmarked(field: &FieldKey) -> Option<&str> {
    field
        .as_str()
        .strip_prefix(UNVOUCHED)
        .and_then(|rest| rest.strip_prefix('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::Period;

    #[test]
    fn items_of_capped_fields() {
        let item = item_of(ReportKind::Content, "p./blog．html.v").unwrap();
        assert_eq!((item.path, item.name()), ("p./blog．html", "/blog．html"));
        let prop = item_of(ReportKind::EventsDay, "p.signup.plan.pro.12.c").unwrap();
        assert_eq!(prop.path, "p.signup.plan.pro");
        assert_eq!((prop.group(), prop.name()), ("p.signup.plan", "pro"));
        assert!(item_of(ReportKind::Content, "n").is_none());
        assert!(item_of(ReportKind::Traffic, "d.23.v").is_none());
        assert!(item_of(ReportKind::EventsDay, "p.signup").is_none());
    }

    #[test]
    fn marks_round_trip_and_fixed_fields_have_none() {
        let field = FieldKey::parse("p./a.v").unwrap();
        let marked = mark(&field);
        assert_eq!(marked.as_str(), "(?).p./a.v");
        assert_eq!(unmarked(&marked), Some("p./a.v"));
        assert_eq!(unmarked(&field), None);
        assert!(item_of(ReportKind::Content, marked.as_str()).is_none());
    }

    #[test]
    fn known_items_and_full_documents() {
        let named = Named::default();
        let site = SiteId::parse("acme").unwrap();
        let month = DocRef {
            kind: ReportKind::Content,
            period: Period::Month(2026, 11),
        };
        let other = DocRef {
            period: Period::Month(2026, 12),
            ..month
        };
        let a = named.item(&site, month, "p./a");
        assert_ne!(a, named.item(&site, other, "p./a"));
        assert!(!named.contains(a));
        named.insert([a]);
        assert!(named.contains(a));
        assert_eq!(named.len(), 1);
        named.remove([a]);
        assert!(named.is_empty());
        let doc = named.doc(&site, month);
        named.set_full(doc, true);
        assert!(named.is_full(doc) && !named.is_full(named.doc(&site, other)));
        assert!(!named.contains(named.item(&site, month, "p./a")));
        named.set_full(doc, false);
        assert!(!named.is_full(doc));
        assert!(named.is_empty());
    }
}
