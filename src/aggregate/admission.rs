//! Capped documents: which keys a document names, and which go to `(other)`.
//!
//! Pages, referrers, search terms and campaigns are unbounded, so their documents are capped:
//! a month document names at most `max_keys` keys across its capped spaces (`p`, `h`, `l`, …)
//! and counts the rest under `(other)`. Its counter `n` records how many keys it has admitted;
//! an update that admits new keys is guarded by `n` (see [`crate::store::Guard`]), so the cap
//! holds in the store even when several tally processes write to the same document.
//!
//! The month document decides for its days too: a day document names exactly the keys its
//! month named, so for every key the days add up to the month and the days' `(other)` adds up
//! to the month's. When more new keys arrive in one flush than there is room for, the ones
//! with the most views in that flush are admitted first.
//!
//! Admission needs to know which keys a month document already has. That knowledge is a
//! [`Book`] per document, read once from the store (by the flusher) and kept while the document
//! is written to. This module decides; it must not talk to the store itself.

use super::{Drained, Value};
use crate::field::{is_reserved, FieldKey, Key};
use crate::reports::{Capped, DocKey, DocRef, ReportKind};
use crate::store::Guard;
use mongodb::bson::Document;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

/// The field of a capped month document counting the keys it has admitted.
pub const ADMITTED: &str = "n";

/// Books of documents not written to for this long are dropped (and read again if needed).
const IDLE: Duration = Duration::from_secs(15 * 60);

/// What is known of one capped month document.
struct Book {
    /// Hashes of the items (`p./about`, `e.signup`, `p.signup.plan.pro`) the document names.
    known: HashSet<u64>,
    /// Items named per group (`p.signup.plan`), for spaces capped per group.
    groups: HashMap<u64, usize>,
    /// Keys admitted so far (the document's `n`, or more if it names more).
    admitted: i64,
    used: Instant,
}

pub struct Admission {
    max_keys: i64,
    books: HashMap<DocKey, Book>,
    hasher: foldhash::fast::RandomState,
}

/// The month document that decides for `key` (itself, for a month document), if its kind is
/// capped.
pub fn governing(key: &DocKey) -> Option<DocKey> {
    key.doc.kind.capped().then(|| DocKey {
        site: key.site.clone(),
        doc: DocRef {
            kind: key.doc.kind.governing(),
            period: key.doc.period.month(),
        },
    })
}

/// Where the capped item sits in a field path: `p.signup.plan.pro.12.c` has the item
/// `p.signup.plan.pro` (its last level starting at `last`), in the group `p.signup.plan`.
struct Item<'a> {
    spec: Capped,
    /// The item's path: the space and `depth` levels.
    path: &'a str,
    /// Where the item's last level starts in the field.
    last: usize,
}

impl Item<'_> {
    fn name(&self) -> &str {
        &self.path[self.last..]
    }

    fn group(&self) -> &str {
        &self.path[..self.last - 1]
    }
}

fn split_capped(kind: ReportKind, field: &FieldKey) -> Option<Item<'_>> {
    let path = field.as_str();
    let space = path.split('.').next()?;
    let spec = *kind.capped_spaces().iter().find(|c| c.space == space)?;
    // The end of the item: after `depth` more levels.
    let mut end = space.len();
    let mut last = end;
    for _ in 0..spec.depth {
        if end >= path.len() {
            return None;
        }
        last = end + 1;
        end = path[last..].find('.').map_or(path.len(), |i| last + i);
    }
    Some(Item {
        spec,
        path: &path[..end],
        last,
    })
}

impl Admission {
    pub fn new(max_keys: usize) -> Admission {
        Admission {
            max_keys: i64::try_from(max_keys).unwrap_or(i64::MAX),
            books: HashMap::new(),
            hasher: Default::default(),
        }
    }

    fn hash(&self, path: &str) -> u64 {
        self.hasher.hash_one(path)
    }

    /// The month documents `drained` needs whose books are not loaded.
    pub fn missing(&self, drained: &Drained) -> Vec<DocKey> {
        let mut out: Vec<DocKey> = drained
            .iter()
            .filter_map(|(key, _)| governing(key))
            .filter(|g| !self.books.contains_key(g))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Records what the stored month document `key` names (`None`: it does not exist yet).
    pub fn load(&mut self, key: DocKey, doc: Option<&Document>) {
        let mut book = Book {
            known: HashSet::new(),
            groups: HashMap::new(),
            admitted: 0,
            used: Instant::now(),
        };
        if let Some(doc) = doc {
            for spec in key.doc.kind.capped_spaces() {
                let mut items = Vec::new();
                if let Ok(sub) = doc.get_document(spec.space) {
                    collect_items(sub, spec.space.to_owned(), spec.depth, &mut items);
                }
                for (group, item) in items {
                    book.known.insert(self.hash(&item));
                    if spec.per_group.is_some() {
                        *book.groups.entry(self.hash(&group)).or_default() += 1;
                    }
                }
            }
            book.admitted = crate::reports::number(doc.get(ADMITTED));
        }
        book.admitted = book.admitted.max(book.known.len() as i64);
        self.books.insert(key, book);
    }

    /// Forgets a month document's book (after a guarded update of it failed: another process
    /// may have filled it). It is read again before the next flush that needs it.
    pub fn forget(&mut self, key: &DocKey) {
        self.books.remove(key);
    }

    /// Drops the books of documents not written to lately.
    pub fn evict_idle(&mut self) {
        self.books.retain(|_, b| b.used.elapsed() < IDLE);
    }

    fn knows(&self, book: Option<&Book>, item: &Item<'_>) -> bool {
        is_reserved(item.name()) || book.is_some_and(|b| b.known.contains(&self.hash(item.path)))
    }

    /// Rewrites `drained` so that every capped document names only admitted keys, admitting new
    /// ones where there is room. Returns, per statement of `drained`, the guard its update must
    /// carry (month documents that admitted keys). Books must be loaded for every governing
    /// document ([`Admission::missing`]); a group without one names nothing new.
    pub fn resolve(&mut self, drained: &mut Drained) -> Vec<Option<Guard>> {
        let mut guards = vec![None; drained.len()];
        // Group statements by their month document (drained is sorted, but a month and its days
        // need not be adjacent, so group explicitly).
        let mut groups: HashMap<DocKey, Vec<usize>> = HashMap::new();
        for (i, (key, _)) in drained.iter().enumerate() {
            if let Some(g) = governing(key) {
                groups.entry(g).or_default().push(i);
            }
        }
        for (month, members) in groups {
            let month_index = members.iter().copied().find(|&i| drained[i].0 == month);
            // New items with their views in this flush, and their group if capped per group.
            let mut candidates: HashMap<String, (i64, Option<(String, usize)>)> = HashMap::new();
            let book = self.books.get(&month);
            for &i in &members {
                let kind = drained[i].0.doc.kind;
                for (field, value) in &drained[i].1 {
                    let Some(item) = split_capped(kind, field) else {
                        continue;
                    };
                    if self.knows(book, &item) {
                        continue;
                    }
                    let views = match value {
                        Value::Inc(n) => *n,
                        Value::Set(_) => 0,
                    };
                    let entry = candidates.entry(item.path.to_owned()).or_insert_with(|| {
                        let group = item.spec.per_group.map(|n| (item.group().to_owned(), n));
                        (0, group)
                    });
                    entry.0 += views.max(0);
                }
            }
            // Only a flush that writes the month document can admit keys: its `n` records them.
            if let (Some(mi), Some(book)) = (month_index, self.books.get(&month)) {
                let mut room = (self.max_keys - book.admitted).max(0);
                let mut ranked: Vec<_> = candidates.into_iter().collect();
                ranked.sort_unstable_by(|a, b| b.1 .0.cmp(&a.1 .0).then_with(|| a.0.cmp(&b.0)));
                let mut group_use: HashMap<u64, usize> = HashMap::new();
                let mut admitted_items = Vec::new();
                for (path, (_, group)) in ranked {
                    if room == 0 {
                        break;
                    }
                    if let Some((group, limit)) = group {
                        let g = self.hash(&group);
                        let used = group_use
                            .entry(g)
                            .or_insert_with(|| book.groups.get(&g).copied().unwrap_or(0));
                        if *used >= limit {
                            continue;
                        }
                        *used += 1;
                    }
                    room -= 1;
                    admitted_items.push(self.hash(&path));
                }
                let admitted = admitted_items.len() as i64;
                let book = self.books.get_mut(&month).expect("checked above");
                book.known.extend(admitted_items);
                for (g, used) in group_use {
                    book.groups.insert(g, used);
                }
                book.admitted += admitted;
                if admitted > 0 {
                    guards[mi] = Some(Guard {
                        field: FieldKey::from_parts(&[ADMITTED]),
                        max: self.max_keys - admitted,
                    });
                    drained[mi]
                        .1
                        .push((FieldKey::from_parts(&[ADMITTED]), Value::Inc(admitted)));
                }
            }
            if let Some(book) = self.books.get_mut(&month) {
                book.used = Instant::now();
            }
            let book = self.books.get(&month);
            for &i in &members {
                let kind = drained[i].0.doc.kind;
                let fields = std::mem::take(&mut drained[i].1);
                drained[i].1 = self.rename_unknown(kind, book, fields);
            }
        }
        guards
    }

    /// Moves fields of keys the book does not know to `(other)` (dropping their texts) and
    /// merges what lands on the same field.
    fn rename_unknown(
        &self,
        kind: ReportKind,
        book: Option<&Book>,
        fields: Vec<(FieldKey, Value)>,
    ) -> Vec<(FieldKey, Value)> {
        let mut out: Vec<(FieldKey, Value)> = Vec::with_capacity(fields.len());
        let mut renamed = false;
        for (field, value) in fields {
            let other = match split_capped(kind, &field) {
                Some(item) if !self.knows(book, &item) => {
                    let path = field.as_str();
                    FieldKey::parse(&format!(
                        "{}{}{}",
                        &path[..item.last],
                        Key::OTHER,
                        &path[item.path.len()..]
                    ))
                }
                _ => {
                    out.push((field, value));
                    continue;
                }
            };
            if let (Value::Inc(_), Some(other)) = (&value, other) {
                out.push((other, value));
                renamed = true;
            }
        }
        if renamed {
            out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            out.dedup_by(|later, earlier| {
                if later.0 != earlier.0 {
                    return false;
                }
                if let (Value::Inc(a), Value::Inc(b)) = (&mut earlier.1, &later.1) {
                    *a += *b;
                }
                true
            });
        }
        out
    }
}

/// The items `depth` levels below `prefix` in `doc`, as `(group, item)` paths; reserved names
/// (`(other)`) are not items.
fn collect_items(doc: &Document, prefix: String, depth: usize, out: &mut Vec<(String, String)>) {
    for (name, value) in doc {
        if depth == 1 {
            if !is_reserved(name) {
                out.push((prefix.clone(), format!("{prefix}.{name}")));
            }
        } else if let Some(sub) = value.as_document() {
            collect_items(sub, format!("{prefix}.{name}"), depth - 1, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::Period;
    use crate::site::SiteId;
    use mongodb::bson::doc;

    fn key(period: Period) -> DocKey {
        DocKey {
            site: SiteId::parse("acme").unwrap(),
            doc: DocRef {
                kind: ReportKind::Content,
                period,
            },
        }
    }

    const MONTH: Period = Period::Month(2026, 11);
    const DAY: Period = Period::Day(2026, 11, 23);

    fn fields(views: &[(&str, i64)]) -> Vec<(FieldKey, Value)> {
        views
            .iter()
            .map(|(page, n)| {
                (
                    FieldKey::parse(&format!("p.{page}.v")).unwrap(),
                    Value::Inc(*n),
                )
            })
            .collect()
    }

    fn names(fields: &[(FieldKey, Value)]) -> Vec<(String, Value)> {
        fields
            .iter()
            .map(|(f, v)| (f.as_str().to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn the_most_viewed_new_keys_are_admitted_and_days_follow_their_month() {
        let mut a = Admission::new(2);
        let views = [("/a", 1), ("/b", 5), ("/c", 3)];
        let mut drained = vec![(key(MONTH), fields(&views)), (key(DAY), fields(&views))];
        assert_eq!(a.missing(&drained), vec![key(MONTH)]);
        a.load(key(MONTH), None);
        let guards = a.resolve(&mut drained);
        assert_eq!(
            guards,
            vec![
                Some(Guard {
                    field: FieldKey::parse("n").unwrap(),
                    max: 0
                }),
                None
            ]
        );
        let expect = |n: bool| {
            let mut v = vec![
                ("p.(other).v".to_owned(), Value::Inc(1)),
                ("p./b.v".to_owned(), Value::Inc(5)),
                ("p./c.v".to_owned(), Value::Inc(3)),
            ];
            if n {
                v.push(("n".to_owned(), Value::Inc(2)));
            }
            v
        };
        let mut month = names(&drained[0].1);
        month.sort_by(|x, y| x.0.cmp(&y.0));
        let mut want = expect(true);
        want.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(month, want);
        assert_eq!(names(&drained[1].1), expect(false));

        // Later: known keys pass unguarded; a new key finds the document full.
        let mut drained = vec![
            (key(MONTH), fields(&[("/b", 1), ("/d", 2)])),
            (key(DAY), fields(&[("/b", 1), ("/d", 2)])),
        ];
        assert!(a.missing(&drained).is_empty());
        assert_eq!(a.resolve(&mut drained), vec![None, None]);
        assert_eq!(
            names(&drained[1].1),
            vec![
                ("p.(other).v".to_owned(), Value::Inc(2)),
                ("p./b.v".to_owned(), Value::Inc(1))
            ]
        );
    }

    #[test]
    fn a_book_is_read_from_the_stored_document() {
        let mut a = Admission::new(3);
        a.load(
            key(MONTH),
            Some(&doc! {"n": 2_i64, "p": {"/x": {"v": 1_i64}, "(other)": {"v": 4_i64}}}),
        );
        // /x is known; one slot is left (n = 2 counts a key this process never saw).
        let mut drained = vec![(key(MONTH), fields(&[("/x", 1), ("/y", 1), ("/z", 2)]))];
        let guards = a.resolve(&mut drained);
        assert_eq!(guards[0].as_ref().map(|g| g.max), Some(2));
        let got = names(&drained[0].1);
        assert!(
            got.contains(&("p./z.v".to_owned(), Value::Inc(2))),
            "{got:?}"
        );
        assert!(
            got.contains(&("p./x.v".to_owned(), Value::Inc(1))),
            "{got:?}"
        );
        assert!(
            got.contains(&("p.(other).v".to_owned(), Value::Inc(1))),
            "{got:?}"
        );
    }

    #[test]
    fn without_its_month_in_the_flush_a_day_names_nothing_new() {
        let mut a = Admission::new(10);
        a.load(
            key(MONTH),
            Some(&doc! {"n": 1_i64, "p": {"/x": {"v": 1_i64}}}),
        );
        let mut drained = vec![(key(DAY), fields(&[("/x", 1), ("/new", 1)]))];
        assert_eq!(a.resolve(&mut drained), vec![None]);
        assert_eq!(
            names(&drained[0].1),
            vec![
                ("p.(other).v".to_owned(), Value::Inc(1)),
                ("p./x.v".to_owned(), Value::Inc(1))
            ]
        );
    }
}
