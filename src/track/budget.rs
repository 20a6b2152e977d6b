//! The budget of new keys per address (`--new-keys-per-address`), so that a handful of
//! addresses cannot fill a month's named keys with forged pages, referrers, terms, campaigns or
//! event names, and push every real one into `(other)`.
//!
//! A capped month document names at most `--max-keys` keys (see `aggregate::admission`). Each
//! client address (an IPv4 address, an IPv6 /64) may bring at most `per_address` keys into one
//! month document that it does not already name: a page the document names costs nothing, the
//! same new key sent twice costs once. Past its budget, an address's hits are still counted in
//! full: their fields are marked ([`named::mark`]), and at the flush a marked field is counted
//! under its key if the key is named by then (by anyone else, before or in the same flush) and
//! under `(other)` if not. So 5 forging addresses name at most 5 × 100 keys of a month at the
//! defaults, and every real page seen from one other address is named as usual.
//!
//! Whether a key is named is asked of [`Named`], which knows what this process's flusher read
//! or admitted; a key it does not know costs budget even when another process named it, and a
//! key past a full document costs nothing (nothing more can be named there). The cost for real
//! visitors: an address that is the first to show a month document more than `per_address` new
//! keys (a big office on a site nobody else reads, on the first day of a month) sees the
//! further new ones counted under `(other)` until another address names them.
//!
//! Memory is bounded: addresses' spending and the keys they paid for are kept in [`SHARDS`]
//! maps of at most [`MAX_BUDGETS`] and [`MAX_PAID`] entries, hashed (never the address
//! itself), for the month they concern; a full shard first forgets entries of past months, then
//! an arbitrary one (counted in `/metrics`: an address forgotten early gets its budget back).
//!
//! This module decides and marks; it does not answer HTTP and does not touch the store.

use super::client::address_block;
use crate::aggregate::named::{self, item_of, Named};
use crate::field::{is_reserved, FieldKey};
use crate::period::Period;
use crate::reports::{DocRef, Increments};
use crate::site::SiteId;
use prometheus_client::metrics::counter::Counter;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// Independent maps, chosen by address, so one hit takes at most one lock here.
pub const SHARDS: usize = 64;
/// (address, month document) budgets remembered at most: 3,584 a shard, which fill tables of
/// 4,096 slots of 17 bytes (about 4.5 MB in all).
pub const MAX_BUDGETS: usize = 3_584 * SHARDS;
/// (address, key) payments remembered at most: 7,168 a shard, tables of 8,192 slots of 17 bytes
/// (about 8.9 MB in all).
pub const MAX_PAID: usize = 7_168 * SHARDS;

/// Items of one hit whose decision is remembered, so a month and its day decide once.
const PER_HIT: usize = 32;

type Map<V> = HashMap<u64, V, foldhash::fast::FixedState>;

struct Shard {
    /// (address, site, month document) → (its month, new keys it brought).
    spent: Map<(i32, u32)>,
    /// (address, key) → its month: keys an address already paid for.
    paid: Map<i32>,
    /// No entry is for a month before this one.
    oldest: i32,
}

pub struct KeyBudget {
    per_address: u32,
    named: Arc<Named>,
    key: foldhash::quality::RandomState,
    shards: Box<[Mutex<Shard>]>,
    /// Keys sent past their address's budget (`tally_keys_unvouched_total`).
    pub unvouched: Counter,
    /// Entries forgotten early because a shard was full.
    pub evicted: Counter,
}

impl KeyBudget {
    /// `per_address` new keys per address and month document (> 0); `named`: the coalescer's.
    pub fn new(per_address: u32, named: Arc<Named>) -> KeyBudget {
        KeyBudget {
            per_address,
            named,
            key: Default::default(),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        spent: Map::default(),
                        paid: Map::default(),
                        oldest: i32::MAX,
                    })
                })
                .collect(),
            unvouched: Counter::default(),
            evicted: Counter::default(),
        }
    }

    /// Counts in `/metrics` counters rather than counters of its own.
    pub fn counting_in(mut self, unvouched: Counter, evicted: Counter) -> KeyBudget {
        self.unvouched = unvouched;
        self.evicted = evicted;
        self
    }

    /// Marks the capped fields of one hit from `address` to `site` whose new keys its address
    /// has no budget left for (see the module docs).
    pub fn vouch(&self, address: IpAddr, site: &SiteId, incs: &mut Increments) {
        let block = address_block(address);
        let mut shard = None;
        // First one decision per item (a month and its day name the same one), compared as
        // text so that a repeated item is not hashed again; then, only when some item was
        // refused, the marks.
        let mut decided: [Option<(DocRef, &str)>; PER_HIT] = [None; PER_HIT];
        let mut refused = [0u64; PER_HIT];
        let (mut n, mut r) = (0, 0);
        for (doc, field, _) in &incs.entries {
            let Some((month, path)) = capped_item(*doc, field) else {
                continue;
            };
            if decided[..n].contains(&Some((month, path))) {
                continue;
            }
            let (vouched, hash) = self.decide(block, site, month, path, &mut shard);
            if !vouched {
                self.unvouched.inc();
                if r < PER_HIT {
                    refused[r] = hash;
                }
                r += 1;
            }
            if n < PER_HIT {
                decided[n] = Some((month, path));
                n += 1;
            }
        }
        if r == 0 {
            return;
        }
        for (doc, field, _) in incs.entries.iter_mut() {
            let Some((month, path)) = capped_item(*doc, field) else {
                continue;
            };
            let hash = self.named.item(site, month, path);
            // Past PER_HIT refusals (a batch of events with many new names), ask again: a
            // key paid for is vouched, a refused one is refused again, and nothing is spent.
            let vouched = if r <= PER_HIT {
                !refused[..r].contains(&hash)
            } else {
                self.decide(block, site, month, path, &mut shard).0
            };
            if !vouched {
                *field = named::mark(field);
            }
        }
    }

    /// Whether the address `block` may bring the item `path` of `site`'s `month` document, and
    /// the item's hash.
    fn decide<'s>(
        &'s self,
        block: u128,
        site: &SiteId,
        month: DocRef,
        path: &str,
        shard: &mut Option<MutexGuard<'s, Shard>>,
    ) -> (bool, u64) {
        let item = self.named.item(site, month, path);
        if self.named.contains(item) || self.named.is_full(self.named.doc(site, month)) {
            return (true, item);
        }
        let shard = shard.get_or_insert_with(|| {
            let i = (self.key.hash_one(block) >> 58) as usize % SHARDS;
            self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
        });
        let tag = month_tag(month.period);
        let paid = self.key.hash_one((block, item));
        if shard.paid.contains_key(&paid) {
            return (true, item);
        }
        let budget = self.key.hash_one((block, site.as_str(), month));
        let used = shard.spent.get(&budget).map_or(0, |&(_, used)| used);
        if used >= self.per_address {
            return (false, item);
        }
        self.make_room(shard, tag);
        shard.spent.insert(budget, (tag, used + 1));
        shard.paid.insert(paid, tag);
        (true, item)
    }

    /// Keeps a shard within its bounds before an insertion for the month `tag`: entries of
    /// months before the previous one go first, then arbitrary ones.
    fn make_room(&self, shard: &mut Shard, tag: i32) {
        let (max_spent, max_paid) = (MAX_BUDGETS / SHARDS, MAX_PAID / SHARDS);
        let full = shard.spent.len() >= max_spent || shard.paid.len() >= max_paid;
        if full && shard.oldest < tag - 1 {
            shard.spent.retain(|_, (month, _)| *month >= tag - 1);
            shard.paid.retain(|_, month| *month >= tag - 1);
            shard.oldest = tag - 1;
        }
        evict_one(&mut shard.spent, max_spent, &self.evicted);
        evict_one(&mut shard.paid, max_paid, &self.evicted);
        shard.oldest = shard.oldest.min(tag);
    }

    /// Budgets and payments remembered now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(|e| e.into_inner());
                s.spent.len() + s.paid.len()
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The month document and the item a capped field names (`None` for a field of a report
/// without free-text keys, and for tally's own buckets such as `(other)`).
fn capped_item(doc: DocRef, field: &FieldKey) -> Option<(DocRef, &str)> {
    if !doc.kind.capped() {
        return None;
    }
    let item = item_of(doc.kind, field.as_str())?;
    if is_reserved(item.name()) {
        return None;
    }
    let month = DocRef {
        kind: doc.kind.governing(),
        period: doc.period.month(),
    };
    Some((month, item.path))
}

/// Drops one entry of `map` if it holds `max`.
fn evict_one<V>(map: &mut Map<V>, max: usize, evicted: &Counter) {
    if map.len() >= max {
        if let Some(&victim) = map.keys().next() {
            map.remove(&victim);
            evicted.inc();
        }
    }
}

/// Months counted from year 0, so that consecutive months are consecutive numbers.
fn month_tag(period: Period) -> i32 {
    match period.month() {
        Period::Month(y, m) => y * 12 + i32::from(m),
        other => other.year() * 12,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::ReportKind;

    const NOV: Period = Period::Month(2026, 11);
    const DAY: Period = Period::Day(2026, 11, 23);

    fn site() -> SiteId {
        SiteId::parse("acme").unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A page view's content fields: the month's and the day's.
    fn view(page: &str) -> Increments {
        let mut incs = Increments::default();
        for period in [NOV, DAY] {
            let field = FieldKey::parse(&format!("p.{page}.v")).unwrap();
            incs.add(ReportKind::Content, period, field, 1);
        }
        incs.add(ReportKind::Traffic, NOV, FieldKey::parse("v").unwrap(), 1);
        incs
    }

    fn marked(incs: &Increments) -> usize {
        incs.entries
            .iter()
            .filter(|(_, f, _)| named::unmarked(f).is_some())
            .count()
    }

    fn send(budget: &KeyBudget, from: &str, page: &str) -> usize {
        let mut incs = view(page);
        budget.vouch(ip(from), &site(), &mut incs);
        marked(&incs)
    }

    #[test]
    fn an_address_names_at_most_its_budget_of_new_keys() {
        let budget = KeyBudget::new(3, Arc::default());
        for page in ["/a", "/b", "/c"] {
            assert_eq!(send(&budget, "81.2.69.142", page), 0);
        }
        // The fourth new key: both its fields (month and day) are marked, the traffic not.
        assert_eq!(send(&budget, "81.2.69.142", "/d"), 2);
        assert_eq!(budget.unvouched.get(), 1);
        // A key it already paid for costs nothing.
        assert_eq!(send(&budget, "81.2.69.142", "/a"), 0);
        // Its /64 is one address; other addresses have their own budget.
        assert_eq!(send(&budget, "81.2.69.143", "/d"), 0);
        assert_eq!(send(&budget, "2001:db8::1", "/x"), 0);
        assert_eq!(send(&budget, "2001:db8::2", "/y"), 0);
        assert_eq!(send(&budget, "2001:db8::3", "/z"), 0);
        assert_eq!(send(&budget, "2001:db8::4", "/w"), 2);
    }

    #[test]
    fn named_keys_and_full_documents_cost_nothing() {
        let named = Arc::new(Named::default());
        let budget = KeyBudget::new(1, Arc::clone(&named));
        let month = DocRef {
            kind: ReportKind::Content,
            period: NOV,
        };
        named.insert(["/a", "/b"].map(|p| named.item(&site(), month, &format!("p.{p}"))));
        assert_eq!(send(&budget, "81.2.69.142", "/a"), 0);
        assert_eq!(send(&budget, "81.2.69.142", "/b"), 0);
        assert_eq!(send(&budget, "81.2.69.142", "/new"), 0);
        assert_eq!(send(&budget, "81.2.69.142", "/newer"), 2);
        named.set_full(named.doc(&site(), month), true);
        assert_eq!(send(&budget, "81.2.69.142", "/newest"), 0);
        // Reserved names are tally's own.
        assert_eq!(send(&budget, "81.2.69.142", "(other)"), 0);
    }

    #[test]
    fn each_month_document_has_its_own_budget() {
        let budget = KeyBudget::new(1, Arc::default());
        assert_eq!(send(&budget, "81.2.69.142", "/a"), 0);
        let mut december = Increments::default();
        let field = FieldKey::parse("p./b.v").unwrap();
        december.add(ReportKind::Content, Period::Month(2026, 12), field, 1);
        budget.vouch(ip("81.2.69.142"), &site(), &mut december);
        assert_eq!(marked(&december), 0);
        let mut referrer = Increments::default();
        let field = FieldKey::parse("h.news．example").unwrap();
        referrer.add(ReportKind::Referrers, NOV, field, 1);
        budget.vouch(ip("81.2.69.142"), &site(), &mut referrer);
        assert_eq!(marked(&referrer), 0);
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_addresses() {
        let budget = KeyBudget::new(100, Arc::default());
        for i in 0..(MAX_BUDGETS as u32 + 20_000) {
            let mut incs = view(&format!("/p{}", i % 7));
            budget.vouch(
                IpAddr::from(std::net::Ipv4Addr::from(i)),
                &site(),
                &mut incs,
            );
        }
        assert!(budget.len() <= MAX_BUDGETS + MAX_PAID);
        assert!(budget.evicted.get() > 0);
    }
}
