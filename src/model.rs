//! The document model every layer shares: how a counter is read whatever numeric type a
//! writer left, what one field is asked to become, and how a report document is named.
//!
//! It sits at the bottom, beside `field`, `period` and `site`: `store/` reads counters of its
//! own bookkeeping with [`number`] without knowing any report, and `reports/` names documents
//! with [`document_id`] without knowing the store. It must not use any other module of tally
//! but those three.

use crate::period::Period;
use crate::site::SiteId;
use compact_str::CompactString;
use mongodb::bson::Bson;

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

/// What a hit asks of one field: add to a counter (`$inc`), set a text (`$set`: the latest
/// title of a page), or raise a value to at least this (`$max`: a register of a people sketch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Inc(i64),
    Set(CompactString),
    Max(i64),
}

/// `"<site>:<period>"`, e.g. `"acme:2011-06"`: the `_id` of a site's document for a period.
pub fn document_id(site: &SiteId, period: Period) -> String {
    format!("{site}:{period}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_reads_whatever_type_a_writer_left() {
        assert_eq!(number(Some(&Bson::Int32(7))), 7);
        assert_eq!(number(Some(&Bson::Int64(1 << 40))), 1 << 40);
        assert_eq!(number(Some(&Bson::Double(3.0))), 3);
        assert_eq!(number(Some(&Bson::String("9".into()))), 0);
        assert_eq!(number(None), 0);
    }
}
