//! Custom events: `count` and `total` per event name at three resolutions, and per property
//! value by day.
//!
//! - `events_5m.<YYYY>`, `_id: "<site>:<YYYY-MM-DDTHH>"`: `e.<name>.<MM>.c|t`, `MM` the
//!   5-minute bucket (`00`, `05`, … `55`);
//! - `events_hour.<YYYY>`, `_id: "<site>:<YYYY-MM-DD>"`: `e.<name>.<HH>.c|t`;
//! - `events_day.<YYYY>`, `_id: "<site>:<YYYY-MM>"`: `e.<name>.<DD>.c|t` and
//!   `p.<name>.<key>.<value>.<DD>.c|t`, plus `n` (keys admitted).
//!
//! `c` counts events, `t` sums their values. Names, property keys and values are escaped with
//! [`crate::field::Key::escape`]. The month document of `events_day` decides which names and
//! property values are named (at most `--max-keys` in all, [`MAX_PROPERTY_VALUES`] per
//! property); the finer documents follow it (`aggregate::admission`). Expired 5-minute and
//! hourly documents are removed by `retention`.

use super::{number, Increments, ReportKind};
use crate::field::{two_digits, FieldKey, Key};
use crate::period::LocalTime;
pub use crate::reports::MAX_PROPERTY_VALUES;
use mongodb::bson::Document;
use std::collections::BTreeMap;

/// Properties kept per event; more is refused at ingest.
pub const MAX_PROPERTIES: usize = 5;

/// One event, validated and escaped, placed in the site's zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: Key,
    pub value: i64,
    /// `(key, value)`, at most [`MAX_PROPERTIES`], keys distinct.
    pub props: Vec<(Key, Key)>,
    pub local: LocalTime,
}

/// The increments of one event, at every resolution.
pub fn count(event: &Event, out: &mut Increments) {
    let l = &event.local;
    let name = event.name.as_str();
    let five = two_digits(l.minute / 5 * 5);
    let (hh, dd) = (two_digits(l.hour), two_digits(l.day));
    for (kind, period, bucket) in [
        (ReportKind::Events5m, l.hour_period(), five),
        (ReportKind::EventsHour, l.day_period(), hh),
        (ReportKind::EventsDay, l.month_period(), dd),
    ] {
        out.add(
            kind,
            period,
            FieldKey::from_parts(&["e", name, bucket, "c"]),
            1,
        );
        out.add(
            kind,
            period,
            FieldKey::from_parts(&["e", name, bucket, "t"]),
            event.value,
        );
    }
    for (key, value) in &event.props {
        let (k, v) = (key.as_str(), value.as_str());
        let month = l.month_period();
        let kind = ReportKind::EventsDay;
        out.add(
            kind,
            month,
            FieldKey::from_parts(&["p", name, k, v, dd, "c"]),
            1,
        );
        out.add(
            kind,
            month,
            FieldKey::from_parts(&["p", name, k, v, dd, "t"]),
            event.value,
        );
    }
}

/// Count and total of some events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    pub count: i64,
    pub total: i64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Tally) {
        self.count += other.count;
        self.total += other.total;
    }
}

fn tally(doc: Option<&Document>) -> Tally {
    Tally {
        count: doc.map_or(0, |d| number(d.get("c"))),
        total: doc.map_or(0, |d| number(d.get("t"))),
    }
}

/// One events document read back: per event name (unescaped; `(other)` as is), its buckets
/// (minute, hour or day number) with their tallies.
pub fn read(doc: &Document) -> BTreeMap<String, BTreeMap<u8, Tally>> {
    let mut out = BTreeMap::new();
    let Ok(events) = doc.get_document("e") else {
        return out;
    };
    for (name, buckets) in events {
        let Some(buckets) = buckets.as_document() else {
            continue;
        };
        let name = if crate::field::is_reserved(name) {
            name.clone()
        } else {
            crate::field::unescape(name).text
        };
        let entry: &mut BTreeMap<u8, Tally> = out.entry(name).or_default();
        for (bucket, t) in buckets {
            if let Ok(b) = bucket.parse::<u8>() {
                *entry.entry(b).or_default() += tally(t.as_document());
            }
        }
    }
    out
}

/// One events document's tally per event name over all its buckets, largest count first (then
/// by name): what the events card and its CSV list.
pub fn totals(doc: &Document) -> Vec<(String, Tally)> {
    let mut list: Vec<(String, Tally)> = read(doc)
        .into_iter()
        .map(|(name, buckets)| {
            let mut sum = Tally::default();
            for b in buckets.values() {
                sum += *b;
            }
            (name, sum)
        })
        .collect();
    list.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0)));
    list
}

/// Glow's `group`: an `events_day` month document's tallies of `event` per value of
/// `property`, over the days `days` (inclusive), largest count first. The unescaped value, or
/// `(other)` for values past the cap.
pub fn group(
    doc: &Document,
    event: &str,
    property: &str,
    days: std::ops::RangeInclusive<u8>,
) -> Vec<(String, Tally)> {
    let (event, property) = (Key::escape(event), Key::escape(property));
    let Some(values) = doc
        .get_document("p")
        .ok()
        .and_then(|p| p.get_document(event.as_str()).ok())
        .and_then(|e| e.get_document(property.as_str()).ok())
    else {
        return Vec::new();
    };
    let mut out: Vec<(String, Tally)> = values
        .iter()
        .filter_map(|(value, by_day)| {
            let mut sum = Tally::default();
            for (day, t) in by_day.as_document()? {
                if day.parse::<u8>().is_ok_and(|d| days.contains(&d)) {
                    sum += tally(t.as_document());
                }
            }
            let value = if crate::field::is_reserved(value) {
                value.clone()
            } else {
                crate::field::unescape(value).text
            };
            (sum.count != 0).then_some((value, sum))
        })
        .collect();
    out.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0)));
    out
}
