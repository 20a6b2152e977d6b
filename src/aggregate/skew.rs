//! Clock skew: how far this node's clock is from the store's.
//!
//! Every bucket (minute, hour, day, month, year) comes from the clock of the node that took the
//! hit, so nodes whose clocks disagree put hits near a boundary in different buckets. The store
//! is the one clock every node shares: at registration and every writers-registry heartbeat,
//! [`SkewCheck::check`] reads the store's time ([`Store::server_time`], MongoDB's
//! `hello.localTime`) between two readings of the node's clock. The skew is the node's clock at
//! the middle of that round trip minus the store's; half the round trip is its uncertainty
//! (MongoDB's `localTime` has millisecond resolution). It is exported as
//! `tally_clock_skew_seconds`, and a skew whose magnitude is beyond [`WARN_AFTER`] even after
//! taking the uncertainty off is logged as a warning when it starts, and once more (info) when
//! it ends. The embedded store has no clock of its own: nothing to compare, the gauge stays 0.
//!
//! This module measures and reports; it must not change any clock or bucket.

use crate::metrics::Metrics;
use crate::period::Clock;
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A skew beyond this is logged: about what a node without NTP drifts in a day or two, and
/// two flush intervals of the default.
pub const WARN_AFTER: Duration = Duration::from_secs(2);

/// One measurement.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Skew {
    /// The node's clock minus the store's, in seconds: positive when the node is ahead.
    pub seconds: f64,
    /// Half the round trip, in seconds: the true skew is within `seconds ± uncertainty`.
    pub uncertainty: f64,
}

impl Skew {
    /// The skew from the node's clock read `before` and `after` asking the store, whose answer
    /// was `server`.
    pub fn measure(before: DateTime<Utc>, server: DateTime<Utc>, after: DateTime<Utc>) -> Skew {
        let (before, after) = (millis(before), millis(after).max(millis(before)));
        let half = (after - before) as f64 / 2.0;
        let middle = before as f64 + half;
        Skew {
            seconds: (middle - millis(server) as f64) / 1000.0,
            uncertainty: half / 1000.0,
        }
    }

    /// Whether the skew is beyond `threshold` for certain (whatever the round trip hid).
    pub fn is_beyond(&self, threshold: Duration) -> bool {
        self.seconds.abs() - self.uncertainty > threshold.as_secs_f64()
    }
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// What a measurement changed in the node's state of warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The skew went beyond the threshold: warn.
    Started,
    /// It came back within it: say so.
    Ended,
    /// As it was.
    Same,
}

/// The node's comparisons with the store, warning once per episode of skew.
pub struct SkewCheck {
    clock: Clock,
    threshold: Duration,
    skewed: AtomicBool,
}

impl SkewCheck {
    pub fn new(clock: Clock, threshold: Duration) -> SkewCheck {
        SkewCheck {
            clock,
            threshold,
            skewed: AtomicBool::new(false),
        }
    }

    /// Records `skew`: whether a warning starts or ends.
    pub fn observe(&self, skew: &Skew) -> Change {
        let beyond = skew.is_beyond(self.threshold);
        match (self.skewed.swap(beyond, Ordering::SeqCst), beyond) {
            (false, true) => Change::Started,
            (true, false) => Change::Ended,
            _ => Change::Same,
        }
    }

    /// Compares the node's clock with `store`'s, sets `tally_clock_skew_seconds` and logs a
    /// change; `None` when the store has no clock of its own.
    pub async fn check(
        &self,
        store: &dyn Store,
        metrics: &Metrics,
    ) -> Result<Option<Skew>, StoreError> {
        let before = (self.clock)();
        let Some(server) = store.server_time().await? else {
            return Ok(None);
        };
        let skew = Skew::measure(before, server, (self.clock)());
        metrics.clock_skew_seconds.set(skew.seconds);
        let (seconds, uncertainty) = (skew.seconds, skew.uncertainty);
        match self.observe(&skew) {
            Change::Started => tracing::warn!(
                skew_seconds = seconds,
                uncertainty_seconds = uncertainty,
                threshold_seconds = self.threshold.as_secs_f64(),
                "this node's clock is off from the store's: hits near an hour, day or month boundary go to other buckets than other nodes would put them in; synchronise the clock (NTP)"
            ),
            Change::Ended => tracing::info!(
                skew_seconds = seconds,
                "this node's clock agrees with the store's again"
            ),
            Change::Same => {}
        }
        Ok(Some(skew))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::sync::Arc;

    fn at(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_780_000_000_000 + ms).unwrap()
    }

    #[test]
    fn the_skew_is_the_middle_of_the_round_trip_minus_the_store() {
        // Asked at 0, answered at 100: the store's 40 was read at about 50.
        let skew = Skew::measure(at(0), at(40), at(100));
        assert_eq!(skew.seconds, 0.010);
        assert_eq!(skew.uncertainty, 0.050);
        // A node 3 s behind the store.
        let behind = Skew::measure(at(0), at(3_005), at(10));
        assert_eq!(behind.seconds, -3.0);
        assert_eq!(behind.uncertainty, 0.005);
    }

    #[test]
    fn a_clock_stepped_back_during_the_round_trip_is_not_a_negative_round_trip() {
        let skew = Skew::measure(at(100), at(100), at(0));
        assert_eq!(skew.uncertainty, 0.0);
        assert_eq!(skew.seconds, 0.0);
    }

    #[test]
    fn only_a_skew_beyond_the_threshold_whatever_the_round_trip_counts() {
        let two = Duration::from_secs(2);
        let skew = |seconds, uncertainty| Skew {
            seconds,
            uncertainty,
        };
        assert!(!skew(1.9, 0.0).is_beyond(two));
        assert!(!skew(2.0, 0.0).is_beyond(two));
        assert!(skew(2.1, 0.0).is_beyond(two));
        assert!(skew(-2.1, 0.0).is_beyond(two));
        // A slow round trip could hide the difference.
        assert!(!skew(2.4, 0.5).is_beyond(two));
        assert!(skew(-2.6, 0.5).is_beyond(two));
    }

    #[test]
    fn a_warning_starts_and_ends_once_per_episode() {
        let check = SkewCheck::new(crate::period::system_clock(), WARN_AFTER);
        let skew = |seconds| Skew {
            seconds,
            uncertainty: 0.01,
        };
        assert_eq!(check.observe(&skew(0.5)), Change::Same);
        assert_eq!(check.observe(&skew(-5.0)), Change::Started);
        assert_eq!(check.observe(&skew(-6.0)), Change::Same);
        assert_eq!(check.observe(&skew(0.1)), Change::Ended);
        assert_eq!(check.observe(&skew(0.2)), Change::Same);
    }

    #[tokio::test]
    async fn the_embedded_store_has_no_clock_to_compare() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::embedded::EmbeddedStore::open(dir.path())
            .await
            .unwrap();
        let metrics = Arc::new(Metrics::new());
        let check = SkewCheck::new(crate::period::system_clock(), WARN_AFTER);
        assert_eq!(check.check(&store, &metrics).await.unwrap(), None);
        assert!(metrics.encode().contains("tally_clock_skew_seconds 0.0\n"));
    }
}
