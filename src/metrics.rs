//! Counters for what tally accepts, rejects and writes, served at `/metrics` in the Prometheus
//! (OpenMetrics) text format.
//!
//! Handles are resolved once at start-up, so counting on the hit path is one atomic add. This
//! module only counts; it must not decide anything.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;

/// Why an ingest request (pixel, event, visit beacon) was answered but not counted.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Rejection {
    /// No `site` parameter.
    MissingSite,
    /// A `site` that is not a valid site id.
    InvalidSite,
    /// A valid id that no site has.
    UnknownSite,
    /// A crawler, HTTP library or headless browser.
    Bot,
    /// The pending-increment bound was reached (the store is down or too slow): the hit is
    /// dropped, never half-counted. See docs/architecture.md, "Memory bound".
    PendingFull,
    /// `--durable`: the durable directory holds its budget (`--durable-max-bytes`) while the
    /// store is away: the hit is refused with 503. See docs/reliability.md.
    DurableFull,
    /// tally is shutting down.
    ShuttingDown,
    /// Sent from a page on a host that is not one of the site's hosts (`Origin`/`Referer`).
    DisallowedHost,
    /// `DNT: 1` or `Sec-GPC: 1`, for a site that honours them.
    DoNotTrack,
    /// The sender's address went over `--ingest-rate` (answered 429).
    RateLimited,
    /// Malformed input other than the site (events and beacons: bad JSON, names, numbers).
    Invalid,
    /// A body over the size limit.
    TooLarge,
    /// The site's parked statements passed `--parked-max-per-site` (a document of the site
    /// refuses its updates; see `tally parked`): its hits get 503 until an operator acts.
    SiteParked,
}

impl Rejection {
    pub const ALL: [Rejection; 13] = [
        Rejection::MissingSite,
        Rejection::InvalidSite,
        Rejection::UnknownSite,
        Rejection::Bot,
        Rejection::PendingFull,
        Rejection::DurableFull,
        Rejection::ShuttingDown,
        Rejection::DisallowedHost,
        Rejection::DoNotTrack,
        Rejection::RateLimited,
        Rejection::Invalid,
        Rejection::TooLarge,
        Rejection::SiteParked,
    ];

    /// The reasons a pixel hit can have (`/metrics` lists these for `hits_rejected`).
    pub const PIXEL: [Rejection; 11] = [
        Rejection::MissingSite,
        Rejection::InvalidSite,
        Rejection::UnknownSite,
        Rejection::Bot,
        Rejection::PendingFull,
        Rejection::DurableFull,
        Rejection::ShuttingDown,
        Rejection::DisallowedHost,
        Rejection::DoNotTrack,
        Rejection::RateLimited,
        Rejection::SiteParked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::MissingSite => "missing_site",
            Rejection::InvalidSite => "invalid_site",
            Rejection::UnknownSite => "unknown_site",
            Rejection::Bot => "bot",
            Rejection::PendingFull => "pending_full",
            Rejection::DurableFull => "durable_full",
            Rejection::ShuttingDown => "shutting_down",
            Rejection::SiteParked => "site_parked",
            Rejection::DisallowedHost => "disallowed_host",
            Rejection::DoNotTrack => "do_not_track",
            Rejection::RateLimited => "rate_limited",
            Rejection::Invalid => "invalid",
            Rejection::TooLarge => "too_large",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: Rejection,
}

impl EncodeLabelValue for Rejection {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum FlushOutcome {
    /// Every statement applied.
    Ok,
    /// Some statements failed and were kept for the next flush.
    Partial,
    /// No statement applied; all were kept.
    Failed,
}

impl EncodeLabelValue for FlushOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            FlushOutcome::Ok => "ok",
            FlushOutcome::Partial => "partial",
            FlushOutcome::Failed => "failed",
        })
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: FlushOutcome,
}

pub struct Metrics {
    registry: Registry,
    pub hits_accepted: Counter,
    rejected: Vec<Counter>,
    /// Custom events counted.
    pub events_accepted: Counter,
    /// Custom events not counted, by reason (index: `Rejection as usize`).
    events_rejected: Vec<Counter>,
    /// Visit-duration beacons counted.
    pub beacons_accepted: Counter,
    /// Visit-duration beacons not counted, by reason.
    beacons_rejected: Vec<Counter>,
    /// Senders and addresses the rate limits forgot early because their memory bound was
    /// reached.
    pub rate_limit_evictions: Counter,
    /// Senders and addresses the rate limits remember; set when scraped.
    pub rate_limit_addresses: Gauge,
    /// Ingest requests whose client address came from a forwarding header.
    pub forwarded_addresses: Counter,
    /// Keys sent by an address past its budget of new keys.
    pub keys_unvouched: Counter,
    /// Budget entries forgotten early because their memory bound was reached.
    pub key_budget_evictions: Counter,
    flushes: Family<OutcomeLabel, Counter>,
    /// Statements (one per document) sent to the store.
    pub statements: Counter,
    /// Store commands (MongoDB `update` commands, embedded transactions).
    pub commands: Counter,
    /// Statements the store did not apply (kept and retried).
    pub statement_failures: Counter,
    pub write_concern_errors: Counter,
    pub flush_seconds: Histogram,
    /// Statements (documents) per flush.
    pub flush_statements: Histogram,
    /// Distinct (document, field) increments waiting for a flush; set when scraped.
    pub pending: Gauge,
    /// Statements found already applied when sent again (a lost reply, or a replay).
    pub statement_duplicates: Counter,
    /// Statements sent whose outcome is not known yet, to be sent again; set when scraped.
    pub owed: Gauge,
    /// Statements this process parked (a document refused them for good).
    pub statements_parked: Counter,
    /// Entries in the store's `parked` collection (every process's), at the last read.
    pub parked: Gauge,
    /// Sites whose hits are refused because their parked entries passed the bound.
    pub sites_parked: Gauge,
    /// `--durable`: checkpoints that could not be written.
    pub checkpoint_failures: Counter,
    /// `--durable`: hits counted but answered 503 because the log could not be written.
    pub durable_unacknowledged: Counter,
    /// `--durable`: hits read back from the log at start.
    pub replayed_hits: Counter,
    /// The epoch of this process's writer id (raised at every start).
    pub writer_epoch: Gauge,
    /// Retired writers whose marks this process's statements remove.
    pub writers_retired: Gauge,
    /// This node's clock minus the store's, in seconds (`aggregate/skew.rs`); 0 on the
    /// embedded store, which has no clock of its own.
    pub clock_skew_seconds: Gauge<f64, AtomicU64>,
    /// Times this process took a new writer id because its slot's was retired or live elsewhere.
    pub writer_renewals: Counter,
    /// `--durable`: the budget of the durable directory (`--durable-max-bytes`).
    pub durable_max_bytes: Gauge,
    /// `--durable`: the bytes of the durable directory; set when scraped.
    pub durable_bytes: Gauge,
    /// `--durable`: spill files waiting to be loaded back; set when scraped.
    pub durable_spill_files: Gauge,
    /// `--durable`: flushes that wrote what they drained to a spill file (the store was away).
    pub durable_spills: Counter,
    /// Read-API requests whose token no site holds.
    pub api_auth_failures: Counter,
    /// Read-API requests refused with 429: their address failed too many token checks.
    pub api_auth_limited: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tally");
        let hits_accepted = Counter::default();
        registry.register(
            "hits_accepted",
            "Pixel hits accepted and queued for counting",
            hits_accepted.clone(),
        );
        let rejected_family = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "hits_rejected",
            "Pixel hits answered but not counted, by reason",
            rejected_family.clone(),
        );
        // Counters for every reason, in `ALL` order; only `shown` ones appear in /metrics.
        let by_reason = |family: &Family<ReasonLabel, Counter>, shown: &[Rejection]| {
            Rejection::ALL
                .iter()
                .map(|&reason| {
                    if shown.contains(&reason) {
                        family.get_or_create(&ReasonLabel { reason }).clone()
                    } else {
                        Counter::default()
                    }
                })
                .collect::<Vec<_>>()
        };
        let rejected = by_reason(&rejected_family, &Rejection::PIXEL);
        let events_accepted = Counter::default();
        registry.register(
            "events_accepted",
            "Custom events accepted and queued for counting",
            events_accepted.clone(),
        );
        let events_family = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "events_rejected",
            "Custom events not counted, by reason",
            events_family.clone(),
        );
        let events_rejected = by_reason(&events_family, &Rejection::ALL);
        let beacons_accepted = Counter::default();
        registry.register(
            "visit_beacons_accepted",
            "Visit-duration beacons accepted and queued for counting",
            beacons_accepted.clone(),
        );
        let beacons_family = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "visit_beacons_rejected",
            "Visit-duration beacons not counted, by reason",
            beacons_family.clone(),
        );
        let beacons_rejected = by_reason(&beacons_family, &Rejection::ALL);
        let rate_limit_evictions = Counter::default();
        registry.register(
            "rate_limit_evictions",
            "Senders and addresses the ingest rate limits forgot early because their memory bound was reached",
            rate_limit_evictions.clone(),
        );
        let rate_limit_addresses = Gauge::default();
        registry.register(
            "rate_limit_addresses",
            "Senders and addresses (hashed) the ingest rate limits remember",
            rate_limit_addresses.clone(),
        );
        let forwarded_addresses = Counter::default();
        registry.register(
            "client_addresses_forwarded",
            "Ingest requests whose client address came from X-Forwarded-For or Forwarded (--trust-proxy)",
            forwarded_addresses.clone(),
        );
        let keys_unvouched = Counter::default();
        registry.register(
            "keys_unvouched",
            "New keys sent by an address past its budget (--new-keys-per-address): counted under (other) unless named by others",
            keys_unvouched.clone(),
        );
        let key_budget_evictions = Counter::default();
        registry.register(
            "key_budget_evictions",
            "Entries of the budget of new keys forgotten early because its memory bound was reached",
            key_budget_evictions.clone(),
        );
        let flushes = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "flushes",
            "Flushes to the store, by outcome",
            flushes.clone(),
        );
        let statements = Counter::default();
        registry.register(
            "store_statements",
            "Upsert statements (one per document) sent to the store",
            statements.clone(),
        );
        let commands = Counter::default();
        registry.register(
            "store_commands",
            "Write commands sent to the store",
            commands.clone(),
        );
        let statement_failures = Counter::default();
        registry.register(
            "store_statement_failures",
            "Statements the store did not apply; their increments are kept and retried",
            statement_failures.clone(),
        );
        let write_concern_errors = Counter::default();
        registry.register(
            "store_write_concern_errors",
            "Commands applied whose write concern was not confirmed",
            write_concern_errors.clone(),
        );
        let flush_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "flush_duration_seconds",
            "Time to write one flush to the store",
            flush_seconds.clone(),
        );
        let flush_statements = Histogram::new(exponential_buckets(1.0, 4.0, 10));
        registry.register(
            "flush_statements",
            "Upsert statements (documents) written per flush",
            flush_statements.clone(),
        );
        let pending = Gauge::default();
        registry.register(
            "pending_increments",
            "Distinct (document, field) increments waiting for a flush",
            pending.clone(),
        );
        let statement_duplicates = Counter::default();
        registry.register(
            "store_statement_duplicates",
            "Statements sent again (after a lost reply or a replay) and found already applied, so not applied twice",
            statement_duplicates.clone(),
        );
        let owed = Gauge::default();
        registry.register(
            "statements_owed",
            "Statements sent whose outcome is not known yet; they are sent again as they are",
            owed.clone(),
        );
        let statements_parked = Counter::default();
        registry.register(
            "store_statements_parked",
            "Statements a document refused for good, kept in the parked collection (see `tally parked`)",
            statements_parked.clone(),
        );
        let parked = Gauge::default();
        registry.register(
            "parked_statements",
            "Entries in the store's parked collection, from every process, at the last read",
            parked.clone(),
        );
        let sites_parked = Gauge::default();
        registry.register(
            "sites_parked",
            "Sites whose hits are refused (503) because their parked statements passed --parked-max-per-site",
            sites_parked.clone(),
        );
        let checkpoint_failures = Counter::default();
        registry.register(
            "durable_checkpoint_failures",
            "Durable mode: checkpoints that could not be written",
            checkpoint_failures.clone(),
        );
        let durable_unacknowledged = Counter::default();
        registry.register(
            "durable_unacknowledged",
            "Durable mode: requests counted but answered 503 because the log could not be written in time",
            durable_unacknowledged.clone(),
        );
        let replayed_hits = Counter::default();
        registry.register(
            "durable_replayed_hits",
            "Durable mode: hits read back from the log at start",
            replayed_hits.clone(),
        );
        let writer_epoch = Gauge::default();
        registry.register(
            "writer_epoch",
            "The epoch of this process's writer id, raised at every start so flush numbers never repeat",
            writer_epoch.clone(),
        );
        let writers_retired = Gauge::default();
        registry.register(
            "writers_retired",
            "Retired writers (ended or silent, not durable, nothing parked) whose marks each statement removes",
            writers_retired.clone(),
        );
        let clock_skew_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "clock_skew_seconds",
            "This node's clock minus the store's (MongoDB's hello.localTime), in seconds, measured at start and every writers heartbeat; 0 on the embedded store",
            clock_skew_seconds.clone(),
        );
        let writer_renewals = Counter::default();
        registry.register(
            "writer_renewals",
            "New writer ids taken because the data directory's was retired or live on another host",
            writer_renewals.clone(),
        );
        let durable_max_bytes = Gauge::default();
        registry.register(
            "durable_max_bytes",
            "Durable mode: the budget of the durable directory (--durable-max-bytes); past it hits are refused as durable_full",
            durable_max_bytes.clone(),
        );
        let durable_bytes = Gauge::default();
        registry.register(
            "durable_bytes",
            "Durable mode: bytes of the durable directory (log segments, spill files, checkpoint)",
            durable_bytes.clone(),
        );
        let durable_spill_files = Gauge::default();
        registry.register(
            "durable_spill_files",
            "Durable mode: spill files (what flushes drained while the store was away) waiting to be written to the store",
            durable_spill_files.clone(),
        );
        let durable_spills = Counter::default();
        registry.register(
            "durable_spills",
            "Durable mode: flushes that wrote what they drained to a spill file because the store was away",
            durable_spills.clone(),
        );
        let api_auth_failures = Counter::default();
        registry.register(
            "api_auth_failures",
            "Read-API requests with a token no site holds",
            api_auth_failures.clone(),
        );
        let api_auth_limited = Counter::default();
        registry.register(
            "api_auth_limited",
            "Read-API requests refused (429) after too many failed token checks from the address",
            api_auth_limited.clone(),
        );
        Metrics {
            statement_duplicates,
            owed,
            statements_parked,
            parked,
            sites_parked,
            checkpoint_failures,
            durable_unacknowledged,
            replayed_hits,
            writer_epoch,
            writers_retired,
            clock_skew_seconds,
            writer_renewals,
            durable_max_bytes,
            durable_bytes,
            durable_spill_files,
            durable_spills,
            registry,
            api_auth_failures,
            api_auth_limited,
            hits_accepted,
            rejected,
            events_accepted,
            events_rejected,
            beacons_accepted,
            beacons_rejected,
            rate_limit_evictions,
            rate_limit_addresses,
            forwarded_addresses,
            keys_unvouched,
            key_budget_evictions,
            flushes,
            statements,
            commands,
            statement_failures,
            write_concern_errors,
            flush_seconds,
            flush_statements,
            pending,
        }
    }

    /// Pixel hits not counted for `reason`.
    pub fn rejected(&self, reason: Rejection) -> &Counter {
        // `ALL` lists the variants in declaration order.
        &self.rejected[reason as usize]
    }

    /// Custom events not counted for `reason`.
    pub fn events_rejected(&self, reason: Rejection) -> &Counter {
        &self.events_rejected[reason as usize]
    }

    /// Visit beacons not counted for `reason`.
    pub fn beacons_rejected(&self, reason: Rejection) -> &Counter {
        &self.beacons_rejected[reason as usize]
    }

    pub fn flushed(&self, outcome: FlushOutcome) {
        self.flushes.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counters are indexed by `reason as usize` and built in `ALL` order.
    #[test]
    fn every_reason_is_at_its_own_index() {
        for (i, reason) in Rejection::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, i, "{}", reason.as_str());
        }
    }
}
