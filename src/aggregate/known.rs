//! The registers the coalescer already knows for open sketches, so that a busy day sends only
//! real raises.
//!
//! A people sketch is a document of up to [`REGISTERS`] fields, each raised with `$max`. Most
//! hits of a busy site raise nothing (a returning visitor's register already holds its rank,
//! and most ranks are 1 or 2), so the coalescer remembers, per document, the highest value it
//! has taken for each register (field `"0.0"` … `"63.63"`): a `$max` at or below it is dropped on
//! the hit path and never reaches the store. A value taken is pending, owed or applied, and a
//! failed one comes back through `restore` unfiltered, so dropping what is at or below it never
//! loses a raise; forgetting is always safe (the next raise is sent again, and `$max` makes
//! it idempotent).
//!
//! Memory is bounded: at most [`DOCS_PER_SHARD`] documents per coalescer shard, one byte per
//! register each: 16 shards × 64 × 4 KiB = 4 MiB, the sketches of 1,024 open documents (a
//! site-day, its month and its year are three). Past the bound the document touched longest
//! ago is forgotten. This module must not know reports or the store.

use crate::field::FieldKey;
use crate::reports::DocRef;
use crate::site::SiteId;

type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Registers remembered per document: those of a precision-12 sketch.
pub const REGISTERS: usize = 4096;

/// Documents remembered per shard.
pub const DOCS_PER_SHARD: usize = 64;

/// A document's registers, with when it was last touched.
struct Registers {
    doc: DocRef,
    touched: u64,
    registers: Box<[u8]>,
}

/// Per site, its open sketches (a day, its month and year: a few), searched in order.
#[derive(Default)]
pub struct Known {
    sites: HashMap<SiteId, Vec<Registers>>,
    docs: usize,
    tick: u64,
}

impl Known {
    /// Whether a `$max` of `value` on `field` of `doc` must be kept: it raises what is known
    /// (and is now known), or the field is not a register.
    pub fn raises(&mut self, site: &SiteId, doc: DocRef, field: &FieldKey, value: i64) -> bool {
        let Some(index) = register(field) else {
            return true;
        };
        let Ok(value) = u8::try_from(value) else {
            return true;
        };
        self.tick += 1;
        let tick = self.tick;
        // The common case, a known document: a lookup by reference, no allocation.
        if let Some(r) = self
            .sites
            .get_mut(site)
            .and_then(|docs| docs.iter_mut().find(|r| r.doc == doc))
        {
            r.touched = tick;
            if r.registers[index] >= value {
                return false;
            }
            r.registers[index] = value;
            return true;
        }
        if self.docs >= DOCS_PER_SHARD {
            self.forget_oldest();
        }
        let mut registers = vec![0; REGISTERS].into_boxed_slice();
        registers[index] = value;
        self.sites.entry(site.clone()).or_default().push(Registers {
            doc,
            touched: tick,
            registers,
        });
        self.docs += 1;
        true
    }

    fn forget_oldest(&mut self) {
        let oldest = self
            .sites
            .iter()
            .flat_map(|(site, docs)| docs.iter().map(move |r| (r.touched, site, r.doc)))
            .min_by_key(|(touched, _, _)| *touched)
            .map(|(_, site, doc)| (site.clone(), doc));
        if let Some((site, doc)) = oldest {
            if let Some(docs) = self.sites.get_mut(&site) {
                docs.retain(|r| r.doc != doc);
                if docs.is_empty() {
                    self.sites.remove(&site);
                }
            }
            self.docs -= 1;
        }
    }

    /// Documents remembered.
    pub fn len(&self) -> usize {
        self.docs
    }

    pub fn is_empty(&self) -> bool {
        self.docs == 0
    }
}

/// The register a field names (`"<i / 64>.<i % 64>"`, as `reports::people` lays them out),
/// if it is one.
fn register(field: &FieldKey) -> Option<usize> {
    crate::reports::people::register_of_field(field.as_str(), REGISTERS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::Period;
    use crate::reports::ReportKind;

    fn doc(day: u8) -> DocRef {
        DocRef {
            kind: ReportKind::People,
            period: Period::Day(2026, 6, day),
        }
    }

    #[test]
    fn keeps_only_raises_and_stays_bounded() {
        let mut k = Known::default();
        let acme = SiteId::parse("acme").unwrap();
        let f = |s: &str| FieldKey::parse(s).unwrap();
        assert!(k.raises(&acme, doc(1), &f("0.17"), 2));
        assert!(!k.raises(&acme, doc(1), &f("0.17"), 2));
        assert!(!k.raises(&acme, doc(1), &f("0.17"), 1));
        assert!(k.raises(&acme, doc(1), &f("0.17"), 3));
        assert!(k.raises(&acme, doc(2), &f("0.17"), 1), "another document");
        // Not registers: always kept.
        assert!(k.raises(&acme, doc(1), &f("64.0"), 1));
        assert!(k.raises(&acme, doc(1), &f("64.0"), 1));
        assert!(k.raises(&acme, doc(1), &f("p"), 1));
        for day in 3..=30 {
            for site in 0..3 {
                let s = SiteId::parse(&format!("s{site}")).unwrap();
                k.raises(&s, doc(day), &f("0.1"), 1);
            }
        }
        assert_eq!(k.len(), DOCS_PER_SHARD);
        // The oldest were forgotten: their raises are sent again.
        assert!(k.raises(&acme, doc(1), &f("0.17"), 3));
    }
}
