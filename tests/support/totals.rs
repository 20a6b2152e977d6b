//! What the load tests compare with the answers: every view counter of the load mix's sites,
//! per report and collection, read back from the store.

use super::load::Mix;
use super::{get_path, TestStore};
use std::collections::BTreeMap;

/// Every view counter of every site, per report and collection, today (UTC).
pub async fn totals(store: &TestStore, mix: Mix) -> BTreeMap<&'static str, i64> {
    let today = chrono::Utc::now().date_naive();
    let (year, month) = (today.format("%Y"), today.format("%Y-%m"));
    let day = today.format("%Y-%m-%d");
    let mut out: BTreeMap<&'static str, i64> = BTreeMap::new();
    for site in mix.site_ids() {
        let traffic = store
            .doc(&format!("traffic.{year}"), &format!("{site}:{month}"))
            .await
            .unwrap_or_default();
        *out.entry("traffic month: v").or_default() += get_path(&traffic, "v").unwrap_or(0);
        *out.entry("traffic month: sum of d.*.v").or_default() += sum(&traffic, "d", Some("v"));
        let content_day = store
            .doc(&format!("content.{year}"), &format!("{site}:{day}"))
            .await
            .unwrap_or_default();
        *out.entry("content day: sum of p.*.v").or_default() += sum(&content_day, "p", Some("v"));
        let content_month = store
            .doc(&format!("content.{year}"), &format!("{site}:{month}"))
            .await
            .unwrap_or_default();
        *out.entry("content month: sum of p.*.v").or_default() +=
            sum(&content_month, "p", Some("v"));
        let technology = store
            .doc(&format!("technology.{year}"), &format!("{site}:{month}"))
            .await
            .unwrap_or_default();
        *out.entry("technology month: sum of p.*").or_default() += sum(&technology, "p", None);
    }
    out
}

/// The sum over the sub-documents of `space`: of their `leaf` counter, or of the numbers
/// themselves.
pub fn sum(doc: &mongodb::bson::Document, space: &str, leaf: Option<&str>) -> i64 {
    let Ok(sub) = doc.get_document(space) else {
        return 0;
    };
    sub.iter()
        .map(|(_, v)| match leaf {
            Some(leaf) => v
                .as_document()
                .map_or(0, |d| get_path(d, leaf).unwrap_or(0)),
            None => number(v),
        })
        .sum()
}

fn number(v: &mongodb::bson::Bson) -> i64 {
    match v {
        mongodb::bson::Bson::Int32(n) => i64::from(*n),
        mongodb::bson::Bson::Int64(n) => *n,
        mongodb::bson::Bson::Double(n) => *n as i64,
        _ => 0,
    }
}

/// Asserts every total equals `expected`.
pub fn assert_totals(totals: &BTreeMap<&'static str, i64>, expected: u64, what: &str) {
    for (name, n) in totals {
        assert_eq!(
            *n, expected as i64,
            "{what}: {name} is {n}, expected {expected}; all: {totals:?}"
        );
    }
}
