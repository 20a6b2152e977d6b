//! Retention of event counters and of the live tier: how long each resolution is kept, and
//! the sweep that deletes what has expired.
//!
//! The live tier (`live.<YYYY>`, one document per site per local minute,
//! `<site>:<YYYY-MM-DDTHH:MM>`) is kept [`LIVE_KEPT`], always, and swept the same way.
//!
//! Event counters live in three families of yearly collections, one document per site per
//! local period: `events_5m.<YYYY>` (an hour of 5-minute buckets, `<site>:<YYYY-MM-DDTHH>`),
//! `events_hour.<YYYY>` (a day of hours, `<site>:<YYYY-MM-DD>`) and `events_day.<YYYY>` (a month
//! of days, `<site>:<YYYY-MM>`). Ids are zero-padded and site ids never contain `:`, so a
//! site's documents older than a given period are one `_id` range,
//! `["<site>:", "<site>:<period>")`. A sweep is therefore, per family with a retention, one range
//! delete per site in the yearly collection of its cutoff, and dropping whole the collections of
//! years every site has left behind. It reads no document and scans no collection; running it
//! again deletes nothing more, so it can run as often as wanted and stop anywhere.
//!
//! This module decides what has expired. It must not know how a store deletes (that is
//! [`Store::delete_range`] and [`Store::drop_collection`]), nor touch any collection outside the
//! three event families and `live`.

use crate::period::{Clock, LocalTime};
use crate::site::{Site, SiteRegistry};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use std::sync::Arc;
use tokio::sync::watch;

/// How long each resolution of event counters is kept. `None` = forever.
#[derive(Clone, Debug, PartialEq)]
pub struct Retention {
    /// `events_5m`: 5-minute buckets, one document per site per local hour.
    pub five_minute: Option<Duration>,
    /// `events_hour`: hourly buckets, one document per site per local day.
    pub hourly: Option<Duration>,
    /// `events_day`: daily buckets, one document per site per local month.
    pub daily: Option<Duration>,
    /// `live`: minutes, one document per site per local minute ([`LIVE_KEPT`] unless a test
    /// says otherwise).
    pub minutes: Option<Duration>,
}

/// How long the live tier's minute documents are kept: the live panel reads the last 30.
pub const LIVE_KEPT: Duration = Duration::hours(1);

impl Default for Retention {
    /// 48 hours of 5-minute buckets, 60 days of hourly ones, daily ones forever.
    fn default() -> Self {
        Retention {
            five_minute: Some(Duration::hours(48)),
            hourly: Some(Duration::days(60)),
            daily: None,
            minutes: Some(LIVE_KEPT),
        }
    }
}

/// What one sweep did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SweepReport {
    /// Documents removed by `_id`-range deletes (those of dropped collections are not counted).
    pub deleted: u64,
    /// Collections dropped whole, sorted.
    pub dropped: Vec<String>,
}

/// The least time between two sweeps of [`run`].
pub const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// A family of yearly collections of event counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    FiveMinute,
    Hourly,
    Daily,
    Minute,
}

impl Family {
    const ALL: [Family; 4] = [
        Family::FiveMinute,
        Family::Hourly,
        Family::Daily,
        Family::Minute,
    ];

    /// The collection name before `.<YYYY>`.
    fn name(self) -> &'static str {
        match self {
            Family::FiveMinute => "events_5m",
            Family::Hourly => "events_hour",
            Family::Daily => "events_day",
            Family::Minute => "live",
        }
    }

    fn retention(self, retention: &Retention) -> Option<Duration> {
        match self {
            Family::FiveMinute => retention.five_minute,
            Family::Hourly => retention.hourly,
            Family::Daily => retention.daily,
            Family::Minute => retention.minutes,
        }
    }

    /// The id suffix of the document covering local time `t`: its hour, day or month.
    fn period_id(self, t: &LocalTime) -> String {
        let (y, m, d, h) = (t.year, t.month, t.day, t.hour);
        match self {
            Family::FiveMinute => format!("{y:04}-{m:02}-{d:02}T{h:02}"),
            Family::Hourly => format!("{y:04}-{m:02}-{d:02}"),
            Family::Daily => format!("{y:04}-{m:02}"),
            Family::Minute => format!("{y:04}-{m:02}-{d:02}T{h:02}:{:02}", t.minute),
        }
    }

    /// The year of `collection` when it is one of this family's yearly collections,
    /// `<family>.<YYYY>` with four digits; `None` for any other name.
    fn year_of(self, collection: &str) -> Option<i32> {
        let year = collection.strip_prefix(self.name())?.strip_prefix('.')?;
        if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        year.parse().ok()
    }
}

/// Where a site's expired documents of a family end: the site-local period containing the
/// expiry instant (its documents strictly before it have expired), and that period's year.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Cutoff {
    year: i32,
    period: String,
}

impl Cutoff {
    fn at(family: Family, instant: DateTime<Utc>, tz: Tz) -> Cutoff {
        let local = LocalTime::at(instant, tz);
        Cutoff {
            year: local.year,
            period: family.period_id(&local),
        }
    }
}

impl Cutoff {
    /// For the live tier: never past the documents the live panel reads at `now` (the last
    /// half hour). When a clock falls back, the repeated hour's local minutes sort before the
    /// expiry's; without this they would be deleted while they are being shown.
    fn sparing(self, now: DateTime<Utc>, tz: Tz) -> Cutoff {
        (0..=30)
            .map(|back| Cutoff::at(Family::Minute, now - Duration::minutes(back), tz))
            .chain([self])
            .min_by(|a, b| (a.year, &a.period).cmp(&(b.year, &b.period)))
            .expect("not empty")
    }
}

/// The instant before which data kept for `keep` has expired at `now`; `None` when that reaches
/// back beyond the calendar (nothing has expired). A negative retention counts as zero.
fn expiry(now: DateTime<Utc>, keep: Duration) -> Option<DateTime<Utc>> {
    now.checked_sub_signed(keep.max(Duration::zero()))
}

/// Deletes every expired document of every site at `now`: per resolution with a retention, per
/// site, the cutoff is the site-local period containing `now - retention`; documents of that
/// site whose period is strictly before the cutoff period are removed: in the cutoff's own year
/// collection with one `delete_range` per site (`["<site>:", "<site>:<cutoff period id>")`), and
/// collections of earlier years of that family are dropped whole (every document in them is
/// older) once the cutoff of *every* site is in a later year. Until then (around New Year, when
/// sites in different zones are in different years) a site already past it gets the same range
/// delete in the earlier year's collection, which removes all of its documents there.
///
/// Only collections that exist are touched (one [`Store::collections`] call), and only those
/// named `<family>.<YYYY>`; documents of sites not in `sites` are removed only with a dropped
/// collection; with no sites nothing is done. Idempotent: a second sweep at the same `now`
/// deletes nothing.
pub async fn sweep(
    store: &dyn Store,
    sites: &[Site],
    retention: &Retention,
    now: DateTime<Utc>,
) -> Result<SweepReport, StoreError> {
    let mut report = SweepReport::default();
    let families: Vec<(Family, DateTime<Utc>)> = Family::ALL
        .into_iter()
        .filter_map(|f| Some((f, expiry(now, f.retention(retention)?)?)))
        .collect();
    if sites.is_empty() || families.is_empty() {
        return Ok(report);
    }
    let collections = store.collections().await?;
    for (family, instant) in families {
        let cutoffs: Vec<(&Site, Cutoff)> = sites
            .iter()
            .map(|site| (site, Cutoff::at(family, instant, site.tz)))
            .map(|(site, cutoff)| match family {
                Family::Minute => (site, cutoff.sparing(now, site.tz)),
                _ => (site, cutoff),
            })
            .collect();
        // Every site has left the years before the earliest cutoff year behind.
        let Some(every_site_past) = cutoffs.iter().map(|(_, c)| c.year).min() else {
            continue;
        };
        let yearly: Vec<(i32, &str)> = collections
            .iter()
            .filter_map(|name| Some((family.year_of(name)?, name.as_str())))
            .collect();
        for &(year, name) in &yearly {
            if year < every_site_past {
                store.drop_collection(name).await?;
                report.dropped.push(name.to_owned());
            }
        }
        for (site, cutoff) in &cutoffs {
            let from = format!("{}:", site.id);
            let to = format!("{}:{}", site.id, cutoff.period);
            // In a collection of a year before the cutoff's, every id of the site sorts before
            // `to`: the range is all of them.
            for &(year, name) in &yearly {
                if (every_site_past..=cutoff.year).contains(&year) {
                    report.deleted += store.delete_range(name, &from, &to).await?;
                }
            }
        }
    }
    report.dropped.sort();
    Ok(report)
}

/// Sweeps at start and then every `every` (at least [`MIN_INTERVAL`]), with the sites `sites`
/// knows at that moment and the time `clock` gives, until `stop` turns true (also in the middle
/// of a sweep, which the next one completes). Logs what a sweep deleted at info (only when it
/// deleted something) and a failed sweep at warn; a failure is retried at the next sweep.
pub async fn run(
    store: Arc<dyn Store>,
    sites: Arc<SiteRegistry>,
    retention: Retention,
    every: std::time::Duration,
    clock: Clock,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every.max(MIN_INTERVAL));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => return,
            _ = tick.tick() => {}
        }
        let list: Vec<Site> = sites.all().iter().map(|site| Site::clone(site)).collect();
        tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => return,
            result = sweep(store.as_ref(), &list, &retention, clock()) => match result {
                Ok(report) if report.deleted > 0 || !report.dropped.is_empty() => {
                    tracing::info!(
                        deleted = report.deleted,
                        dropped = ?report.dropped,
                        "retention: expired event counters and live minutes deleted"
                    )
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "retention: sweep failed; retrying at the next one")
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn tz(name: &str) -> Tz {
        name.parse().unwrap()
    }

    fn cutoff(family: Family, instant: DateTime<Utc>, zone: &str) -> (i32, String) {
        let c = Cutoff::at(family, instant, tz(zone));
        (c.year, c.period)
    }

    #[test]
    fn the_defaults_keep_two_days_sixty_days_and_forever() {
        let r = Retention::default();
        assert_eq!(r.five_minute, Some(Duration::hours(48)));
        assert_eq!(r.hourly, Some(Duration::days(60)));
        assert_eq!(r.daily, None);
        assert_eq!(r.minutes, Some(Duration::hours(1)));
    }

    #[test]
    fn a_live_cutoff_is_an_hour_back_but_spares_the_last_half_hour() {
        let ny = tz("America/New_York");
        // An ordinary hour: the minute an hour back.
        let c = Cutoff::at(Family::Minute, utc(2026, 6, 1, 12, 0), ny)
            .sparing(utc(2026, 6, 1, 13, 0), ny);
        assert_eq!((c.year, c.period), (2026, "2026-06-01T08:00".into()));
        // New York falls back on 2024-11-03 at 06:00 UTC: at 06:10 UTC (01:10 EST, the second
        // 01:10) an hour back is 01:10 EDT, which would delete 01:00-01:09 being shown now.
        let now = utc(2024, 11, 3, 6, 10);
        let c = Cutoff::at(Family::Minute, now - Duration::hours(1), ny).sparing(now, ny);
        assert_eq!((c.year, c.period), (2024, "2024-11-03T01:00".into()));
    }

    #[test]
    fn a_cutoff_is_the_document_period_in_the_sites_zone() {
        // 2026-12-31 12:30 UTC is 2027-01-01 02:30 in Kiritimati (UTC+14) and 2026-12-31 01:30
        // in Pago Pago (UTC-11).
        let at = utc(2026, 12, 31, 12, 30);
        let kiri = "Pacific/Kiritimati";
        let pago = "Pacific/Pago_Pago";
        assert_eq!(
            cutoff(Family::FiveMinute, at, kiri),
            (2027, "2027-01-01T02".into())
        );
        assert_eq!(
            cutoff(Family::FiveMinute, at, pago),
            (2026, "2026-12-31T01".into())
        );
        assert_eq!(
            cutoff(Family::Hourly, at, kiri),
            (2027, "2027-01-01".into())
        );
        assert_eq!(
            cutoff(Family::Hourly, at, pago),
            (2026, "2026-12-31".into())
        );
        assert_eq!(cutoff(Family::Daily, at, kiri), (2027, "2027-01".into()));
        assert_eq!(cutoff(Family::Daily, at, pago), (2026, "2026-12".into()));
        // New York falls back on 2024-11-03: both real hours 01:xx are the document `T01`.
        let ny = "America/New_York";
        for at in [utc(2024, 11, 3, 5, 30), utc(2024, 11, 3, 6, 30)] {
            assert_eq!(
                cutoff(Family::FiveMinute, at, ny),
                (2024, "2024-11-03T01".into())
            );
        }
    }

    #[test]
    fn only_four_digit_yearly_collections_of_the_family_count() {
        assert_eq!(Family::FiveMinute.year_of("events_5m.2026"), Some(2026));
        assert_eq!(Family::Hourly.year_of("events_hour.0999"), Some(999));
        assert_eq!(Family::Daily.year_of("events_day.2011"), Some(2011));
        for other in [
            "events_5m",
            "events_5m.",
            "events_5m.26",
            "events_5m.20260",
            "events_5m.+202",
            "events_5m.2026.bak",
            "events_5m_old.2026",
            "events_5mx.2026",
            "events_hour.2026",
            "traffic.2026",
            "sites",
        ] {
            assert_eq!(Family::FiveMinute.year_of(other), None, "{other}");
        }
    }

    #[test]
    fn expiry_never_reaches_into_the_future_or_past_the_calendar() {
        let now = utc(2026, 3, 10, 12, 0);
        assert_eq!(
            expiry(now, Duration::hours(48)),
            Some(utc(2026, 3, 8, 12, 0))
        );
        assert_eq!(expiry(now, Duration::hours(-5)), Some(now));
        assert_eq!(expiry(now, Duration::MAX), None);
    }
}
