//! Closing periods: once a site-local day, month or year has ended, its people estimate (from
//! its `people` sketch) is written as a number into the traffic documents, so per-day rows and
//! totals read a number and only a range's total merges sketches.
//!
//! | period | written to |
//! |---|---|
//! | a day | `d.<DD>.p` of the traffic month document `"<site>:<YYYY-MM>"` |
//! | a month | `p` of the same month document |
//! | a year | `p` of the traffic year document `"<site>:<YYYY>"` |
//!
//! A period closes [`GRACE`] after it ends in the site's zone (a flush of its last hits has
//! landed by then); the last [`DAYS_BACK`] days, the month before and the year before are
//! looked at, so a node that was down over a few midnights catches up. The write is `$max` of
//! the estimate without a flush mark: every node computes the same number from the same
//! registers, and a sketch only grows, so writing again, from any node and in any order, leaves
//! the largest estimate. Each node remembers what it closed and reads nothing more for it; a
//! period without a sketch (before sketches existed, or without a visitor) gets no number.
//!
//! This module reads and writes through [`Store`]; it must not know which store it is.

use crate::field::{two_digits, FieldKey};
use crate::period::{LocalTime, Period};
use crate::reports::people::range::estimate;
use crate::reports::{document_id, ReportKind};
use crate::site::{Site, SiteId};
use crate::store::{Batch, CollectionBatch, DocUpdate, Store, StoreError};
use chrono::{DateTime, Datelike, TimeDelta, Utc};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// How long after a period ends in the site's zone it is closed.
pub const GRACE: TimeDelta = TimeDelta::minutes(5);

/// How many past days each run looks at.
pub const DAYS_BACK: u64 = 7;

/// Periods this node closed (or found closed, or without a sketch), not to be read again.
#[derive(Default)]
pub struct Closer {
    done: Mutex<HashSet<(SiteId, Period)>>,
}

/// Where a closed period's number goes: the traffic collection, document id and field.
pub fn target(site: &SiteId, period: Period) -> Option<(String, String, FieldKey)> {
    let traffic = |p: Period| {
        (
            ReportKind::Traffic.collection(p.year()),
            document_id(site, p),
        )
    };
    match period {
        Period::Day(_, _, d) => {
            let (c, id) = traffic(period.month());
            Some((c, id, FieldKey::from_parts(&["d", two_digits(d), "p"])))
        }
        Period::Month(..) | Period::Year(_) => {
            let (c, id) = traffic(period);
            Some((c, id, FieldKey::from_parts(&["p"])))
        }
        _ => None,
    }
}

/// The periods of a site to close at `now`: the last [`DAYS_BACK`] days, the month before
/// and the year before, each ended at least [`GRACE`] ago in `tz`.
pub fn closable(tz: chrono_tz::Tz, now: DateTime<Utc>) -> Vec<Period> {
    let today = LocalTime::at(now - GRACE, tz).date();
    let mut out: Vec<Period> = (1..=DAYS_BACK)
        .filter_map(|back| today.checked_sub_days(chrono::Days::new(back)))
        .map(|d| Period::Day(d.year(), d.month() as u8, d.day() as u8))
        .collect();
    let (y, m) = (today.year(), today.month() as u8);
    out.push(if m == 1 {
        Period::Month(y - 1, 12)
    } else {
        Period::Month(y, m - 1)
    });
    out.push(Period::Year(y - 1));
    out
}

impl Closer {
    /// Closes what has ended for every site; returns how many numbers it wrote.
    pub async fn run_once(
        &self,
        store: &dyn Store,
        sites: &[Arc<Site>],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut written = 0;
        for site in sites {
            for period in closable(site.tz, now) {
                let key = (site.id.clone(), period);
                if self
                    .done
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains(&key)
                {
                    continue;
                }
                written += usize::from(close(store, &site.id, period).await?);
                let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
                // Bounded: a few periods per site; a node running for years forgets and
                // reads each period once more, which writes nothing new.
                if done.len() > 64 * sites.len().max(1) {
                    done.clear();
                }
                done.insert(key);
            }
        }
        Ok(written)
    }
}

/// Closes every local day, month and year of `site` from the one holding `first` to the one
/// holding `last` that has ended at `now` (with [`GRACE`]): what `tally import` wrote, since a
/// server only looks at the last [`DAYS_BACK`] days. Returns how many numbers it wrote.
pub async fn close_span(
    store: &dyn Store,
    site: &Site,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let ended = LocalTime::at(now - GRACE, site.tz).date();
    let (from, to) = (
        LocalTime::at(first, site.tz).date(),
        LocalTime::at(last, site.tz).date(),
    );
    let mut periods = Vec::new();
    let mut day = from;
    while day <= to && day < ended {
        let (y, m) = (day.year(), day.month() as u8);
        periods.push(Period::Day(y, m, day.day() as u8));
        let next = day.succ_opt().expect("a next day");
        if next.month() != day.month() || next > to {
            periods.push(Period::Month(y, m));
        }
        if next.year() != day.year() || next > to {
            periods.push(Period::Year(y));
        }
        day = next;
    }
    let mut written = 0;
    for period in periods {
        let ends = match period {
            Period::Day(y, m, d) => chrono::NaiveDate::from_ymd_opt(y, m.into(), d.into()),
            Period::Month(y, m) => chrono::NaiveDate::from_ymd_opt(y, m.into(), 1)
                .and_then(|d| d.checked_add_months(chrono::Months::new(1)))
                .and_then(|d| d.pred_opt()),
            Period::Year(y) => chrono::NaiveDate::from_ymd_opt(y, 12, 31),
            _ => None,
        };
        if ends.is_some_and(|end| end < ended) {
            written += usize::from(close(store, &site.id, period).await?);
        }
    }
    Ok(written)
}

/// Writes one period's number unless it is there or the period has no sketch; says whether it
/// wrote.
async fn close(store: &dyn Store, site: &SiteId, period: Period) -> Result<bool, StoreError> {
    let Some((collection, id, field)) = target(site, period) else {
        return Ok(false);
    };
    if let Some(doc) = store.get(&collection, &id).await? {
        if crate::model::number(lookup(&doc, field.as_str())) > 0 {
            return Ok(false);
        }
    }
    let people = store
        .get(
            &ReportKind::People.collection(period.year()),
            &document_id(site, period),
        )
        .await?;
    let Some(people) = people else {
        return Ok(false);
    };
    let n = estimate(&people);
    if n <= 0 {
        return Ok(false);
    }
    let batch = Batch {
        collections: vec![CollectionBatch {
            collection,
            docs: vec![DocUpdate {
                id,
                max: vec![(field, n)],
                ..DocUpdate::default()
            }],
        }],
    };
    match store.apply(&batch).await.failed.into_iter().next() {
        None => Ok(true),
        Some(failed) => Err(StoreError::Task(failed.error)),
    }
}

fn lookup<'d>(doc: &'d mongodb::bson::Document, path: &str) -> Option<&'d mongodb::bson::Bson> {
    let mut parts = path.split('.');
    let mut value = doc.get(parts.next()?)?;
    for part in parts {
        value = value.as_document()?.get(part)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_months_and_years_close_after_their_grace_in_the_sites_zone() {
        let tokyo: chrono_tz::Tz = "Asia/Tokyo".parse().unwrap();
        // 15:03 UTC on 31 Dec is 00:03 on 1 Jan in Tokyo: within the grace, so 30 Dec is the
        // last day, November the month before, and the year before is 2025.
        let p = closable(tokyo, "2026-12-31T15:03:00Z".parse().unwrap());
        assert_eq!(p[0], Period::Day(2026, 12, 30));
        assert_eq!(p[6], Period::Day(2026, 12, 24));
        assert_eq!(p[7], Period::Month(2026, 11));
        assert_eq!(p[8], Period::Year(2025));
        // Ten minutes later 31 Dec, December and 2026 have closed.
        let p = closable(tokyo, "2026-12-31T15:10:00Z".parse().unwrap());
        assert_eq!(p[0], Period::Day(2026, 12, 31));
        assert_eq!(p[7], Period::Month(2026, 12));
        assert_eq!(p[8], Period::Year(2026));
        let acme = SiteId::parse("acme").unwrap();
        assert_eq!(
            target(&acme, Period::Day(2026, 6, 3)).map(|(c, id, f)| (c, id, f.as_str().to_owned())),
            Some((
                "traffic.2026".into(),
                "acme:2026-06".into(),
                "d.03.p".into()
            ))
        );
        assert_eq!(
            target(&acme, Period::Year(2026)).map(|(c, id, f)| (c, id, f.as_str().to_owned())),
            Some(("traffic.2026".into(), "acme:2026".into(), "p".into()))
        );
    }
}
