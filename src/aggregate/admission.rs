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
//! is written to; what the books know is shared with the hit path through [`Named`].
//!
//! A field marked by the hit path (its sender had spent its budget of new keys, see
//! `track::budget`) never proposes its key: it is counted under its key when the key is named
//! (before, or by another sender in the same flush), else under `(other)`. The mark never
//! reaches the store. This module decides; it must not talk to the store itself.

use super::named::{item_of, unmarked, Item, Named};
use super::{Drained, Value};
use crate::field::{is_reserved, FieldKey, Key};
use crate::reports::{DocKey, DocRef, ReportKind};
use crate::store::Guard;
use mongodb::bson::Document;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The field of a capped month document counting the keys it has admitted.
pub const ADMITTED: &str = "n";

/// Books of documents not written to for this long are dropped (and read again if needed).
const IDLE: Duration = Duration::from_secs(15 * 60);

/// What is known of one capped month document.
struct Book {
    /// [`Named`] hashes of the items (`p./about`, `e.signup`, `p.signup.plan.pro`) the document
    /// names.
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
    /// For the hashes of groups.
    hasher: foldhash::fast::RandomState,
    /// What the books know, for the hit path.
    named: Arc<Named>,
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

impl Admission {
    /// `named`: where what the books know is published (the coalescer's).
    pub fn new(max_keys: usize, named: Arc<Named>) -> Admission {
        Admission {
            max_keys: i64::try_from(max_keys).unwrap_or(i64::MAX),
            books: HashMap::new(),
            hasher: Default::default(),
            named,
        }
    }

    fn hash(&self, path: &str) -> u64 {
        self.hasher.hash_one(path)
    }

    /// The [`Named`] hash of the item `path` of the month document `month`.
    fn item_hash(&self, month: &DocKey, path: &str) -> u64 {
        self.named.item(&month.site, month.doc, path)
    }

    /// Tells the hit path whether `month` has room left.
    fn publish_room(&self, month: &DocKey, book: &Book) {
        let doc = self.named.doc(&month.site, month.doc);
        self.named.set_full(doc, book.admitted >= self.max_keys);
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
                    book.known.insert(self.item_hash(&key, &item));
                    if spec.per_group.is_some() {
                        *book.groups.entry(self.hash(&group)).or_default() += 1;
                    }
                }
            }
            book.admitted = crate::reports::number(doc.get(ADMITTED));
        }
        book.admitted = book.admitted.max(book.known.len() as i64);
        self.named.insert(book.known.iter().copied());
        self.publish_room(&key, &book);
        if let Some(old) = self.books.insert(key.clone(), book) {
            self.unpublish(&key, old);
        }
    }

    /// Withdraws what an old book told the hit path (keys still known stay).
    fn unpublish(&self, key: &DocKey, old: Book) {
        let current = self.books.get(key);
        let gone = old
            .known
            .into_iter()
            .filter(|h| current.is_none_or(|b| !b.known.contains(h)));
        self.named.remove(gone);
        if current.is_none() {
            self.named
                .set_full(self.named.doc(&key.site, key.doc), false);
        }
    }

    /// Forgets a month document's book (after a guarded update of it failed: another process
    /// may have filled it). It is read again before the next flush that needs it.
    pub fn forget(&mut self, key: &DocKey) {
        if let Some(book) = self.books.remove(key) {
            self.unpublish(key, book);
        }
    }

    /// Drops the books of documents not written to lately.
    pub fn evict_idle(&mut self) {
        let idle: Vec<DocKey> = self
            .books
            .iter()
            .filter(|(_, b)| b.used.elapsed() >= IDLE)
            .map(|(k, _)| k.clone())
            .collect();
        for key in idle {
            self.forget(&key);
        }
    }

    fn knows(&self, month: &DocKey, book: Option<&Book>, item: &Item<'_>) -> bool {
        is_reserved(item.name())
            || book.is_some_and(|b| b.known.contains(&self.item_hash(month, item.path)))
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
                // Marked fields have no capped item here: they never propose their key.
                for (field, value) in &drained[i].1 {
                    let Some(item) = item_of(kind, field.as_str()) else {
                        continue;
                    };
                    if self.knows(&month, book, &item) {
                        continue;
                    }
                    let views = match value {
                        Value::Inc(n) => *n,
                        Value::Set(_) | Value::Max(_) => 0,
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
                    admitted_items.push(self.item_hash(&month, &path));
                }
                let admitted = admitted_items.len() as i64;
                self.named.insert(admitted_items.iter().copied());
                let book = self.books.get_mut(&month).expect("checked above");
                book.known.extend(admitted_items);
                for (g, used) in group_use {
                    book.groups.insert(g, used);
                }
                book.admitted += admitted;
                let book = self.books.get(&month).expect("checked above");
                self.publish_room(&month, book);
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
                drained[i].1 = self.rename_unknown(kind, &month, book, fields);
            }
        }
        guards
    }

    /// Moves fields of keys the book does not know to `(other)` (dropping their texts),
    /// removes the mark from marked fields, and merges what lands on the same field.
    fn rename_unknown(
        &self,
        kind: ReportKind,
        month: &DocKey,
        book: Option<&Book>,
        fields: Vec<(FieldKey, Value)>,
    ) -> Vec<(FieldKey, Value)> {
        let mut out: Vec<(FieldKey, Value)> = Vec::with_capacity(fields.len());
        let mut renamed = false;
        for (field, value) in fields {
            let marked = unmarked(&field);
            let path = marked.unwrap_or(field.as_str());
            let to = match item_of(kind, path) {
                Some(item) if !self.knows(month, book, &item) => FieldKey::parse(&format!(
                    "{}{}{}",
                    &path[..item.last],
                    Key::OTHER,
                    &path[item.path.len()..]
                ))
                .filter(|_| matches!(value, Value::Inc(_))),
                // Known, or not capped: the field itself, without its mark.
                _ if marked.is_some() => FieldKey::parse(path),
                _ => {
                    out.push((field, value));
                    continue;
                }
            };
            if let Some(to) = to {
                out.push((to, value));
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
        let mut a = Admission::new(2, Arc::default());
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
        let mut a = Admission::new(3, Arc::default());
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
        let mut a = Admission::new(10, Arc::default());
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

    #[test]
    fn marked_fields_never_propose_their_key_and_lose_their_mark() {
        let named = Arc::new(Named::default());
        let mut a = Admission::new(10, Arc::clone(&named));
        a.load(
            key(MONTH),
            Some(&doc! {"n": 1_i64, "p": {"/x": {"v": 1_i64}}}),
        );
        let marked = |page: &str, n: i64| {
            let field = FieldKey::parse(&format!("p.{page}.v")).unwrap();
            (super::super::named::mark(&field), Value::Inc(n))
        };
        // /x is named; /y is brought by a sender with budget, and by one without in the same
        // flush; /forged only by senders without budget.
        let month_fields = vec![
            marked("/x", 2),
            marked("/y", 4),
            marked("/forged", 3),
            (FieldKey::parse("p./y.v").unwrap(), Value::Inc(1)),
        ];
        let mut drained = vec![(key(MONTH), month_fields.clone()), (key(DAY), month_fields)];
        let guards = a.resolve(&mut drained);
        assert_eq!(guards[0].as_ref().map(|g| g.max), Some(9));
        let mut month = names(&drained[0].1);
        month.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(
            month,
            vec![
                ("n".to_owned(), Value::Inc(1)),
                ("p.(other).v".to_owned(), Value::Inc(3)),
                ("p./x.v".to_owned(), Value::Inc(2)),
                ("p./y.v".to_owned(), Value::Inc(5)),
            ]
        );
        assert_eq!(
            names(&drained[1].1),
            vec![
                ("p.(other).v".to_owned(), Value::Inc(3)),
                ("p./x.v".to_owned(), Value::Inc(2)),
                ("p./y.v".to_owned(), Value::Inc(5)),
            ]
        );
        // What the book knows is published for the hit path, and withdrawn with the book.
        let site = SiteId::parse("acme").unwrap();
        let month_doc = key(MONTH).doc;
        assert!(named.contains(named.item(&site, month_doc, "p./y")));
        assert!(!named.contains(named.item(&site, month_doc, "p./forged")));
        a.forget(&key(MONTH));
        assert!(named.is_empty());
    }

    #[test]
    fn a_full_document_is_published_as_full() {
        let named = Arc::new(Named::default());
        let mut a = Admission::new(2, Arc::clone(&named));
        a.load(key(MONTH), None);
        let site = SiteId::parse("acme").unwrap();
        let doc = named.doc(&site, key(MONTH).doc);
        assert!(!named.is_full(doc));
        let mut drained = vec![(key(MONTH), fields(&[("/a", 1), ("/b", 1)]))];
        a.resolve(&mut drained);
        assert!(named.is_full(doc));
    }
}
