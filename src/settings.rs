//! Typed settings. Each field has a default, is overridden by its `TALLY_*` environment variable,
//! which is overridden by its command-line flag; each field's doc comment is its `--help` text.
//!
//! Malformed values fail at start-up with a message naming the setting (clap's validation), and
//! an unknown `TALLY_*` variable is refused too (see `cli`), so a typo never passes silently.

use crate::track::client::TrustProxy;
use crate::track::geo::GeoSource;
use crate::track::limit::RateLimit;
use std::net::SocketAddr;
use std::path::PathBuf;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_FLUSH_INTERVAL_MS: u64 = 1000;
pub const DEFAULT_FLUSH_AT: usize = 250_000;
/// `--people-flush-secs`: see `aggregate::flusher::DEFAULT_SKETCH_EVERY`.
pub const DEFAULT_PEOPLE_FLUSH_SECS: u64 = 10;
pub const DEFAULT_MAX_PENDING: usize = 1_000_000;
pub const DEFAULT_SITE_REFRESH_SECS: u64 = 5;
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_MAX_KEYS: usize = 1_000;
pub const DEFAULT_DURABLE_SYNC_MS: u64 = 50;
/// 1 GiB: see docs/operations.md, "Sizing the durable budget".
pub const DEFAULT_DURABLE_MAX_BYTES: u64 = 1 << 30;
pub const DEFAULT_STORE_TIMEOUT_SECS: u64 = 60;
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 5_000;
pub const DEFAULT_BODY_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_AUTH_FAILURES_PER_MINUTE: u32 = 10;
pub const DEFAULT_INGEST_RATE: f64 = 10.0;
pub const DEFAULT_INGEST_BURST: u32 = 30;
pub const DEFAULT_INGEST_ADDRESS_RATE: f64 = 200.0;
pub const DEFAULT_INGEST_ADDRESS_BURST: u32 = 2_000;
pub const DEFAULT_NEW_KEYS_PER_ADDRESS: u32 = 100;
pub const DEFAULT_WRITER_HEARTBEAT_SECS: u64 = 10;
pub const DEFAULT_WRITER_STALE_SECS: u64 = 3600;

/// Which store holds the documents. Global: every command takes these.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreSettings {
    /// MongoDB connection string. When set, documents live in MongoDB; otherwise in the
    /// embedded store under --data-dir.
    #[arg(long, env = "TALLY_MONGODB_URI", global = true, hide_env_values = true)]
    pub mongodb_uri: Option<String>,

    /// Directory of the embedded store (used when no MongoDB URI is given).
    #[arg(
        long,
        env = "TALLY_DATA_DIR",
        global = true,
        default_value = "./tally-data"
    )]
    pub data_dir: PathBuf,

    /// MongoDB database name.
    #[arg(long, env = "TALLY_DATABASE", global = true, default_value = "tally")]
    pub database: String,

    /// At most this many statements (documents) per MongoDB `update` command; a flush's
    /// collection is split into several commands past it. MongoDB needs nothing below its own
    /// limit (the default); FerretDB v1 on SQLite needs 50 or less (see docs/operations.md).
    #[arg(long, env = "TALLY_MONGODB_BATCH", global = true,
          default_value_t = DEFAULT_MONGODB_BATCH,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=DEFAULT_MONGODB_BATCH as u64))]
    pub mongodb_batch: usize,
}

/// At most this many statements per MongoDB `update` command unless `--mongodb-batch` says
/// fewer: MongoDB's own limit (`maxWriteBatchSize`).
pub const DEFAULT_MONGODB_BATCH: usize = 100_000;

impl StoreSettings {
    /// The store these settings select: MongoDB when a URI is given, else the embedded store.
    pub fn config(&self) -> crate::store::Config {
        match &self.mongodb_uri {
            Some(uri) => crate::store::Config::Mongo {
                uri: uri.clone(),
                database: self.database.clone(),
                max_statements: self.mongodb_batch,
            },
            None => crate::store::Config::Embedded {
                data_dir: self.data_dir.clone(),
            },
        }
    }

    /// Opens the store these settings select.
    pub async fn open(
        &self,
    ) -> Result<std::sync::Arc<dyn crate::store::Store>, crate::store::StoreError> {
        crate::store::open(&self.config()).await
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            mongodb_uri: None,
            data_dir: PathBuf::from("./tally-data"),
            database: "tally".to_owned(),
            mongodb_batch: DEFAULT_MONGODB_BATCH,
        }
    }
}

/// `tally serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeSettings {
    /// Address (IP:PORT) the HTTP server listens on.
    #[arg(long, env = "TALLY_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// How often pending increments are written to the store, in milliseconds (10–60000).
    #[arg(long, env = "TALLY_FLUSH_INTERVAL_MS", default_value_t = DEFAULT_FLUSH_INTERVAL_MS,
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub flush_interval_ms: u64,

    /// Pending (document, field) increments that trigger a flush before the interval is up.
    #[arg(long, env = "TALLY_FLUSH_AT", default_value_t = DEFAULT_FLUSH_AT,
          value_parser = positive)]
    pub flush_at: usize,

    /// Bound on pending (document, field) increments held in memory (about 150 bytes each).
    /// When reached, because the store is down or too slow, new hits are refused and counted
    /// in /metrics as `pending_full` until a flush succeeds.
    #[arg(long, env = "TALLY_MAX_PENDING", default_value_t = DEFAULT_MAX_PENDING,
          value_parser = positive)]
    pub max_pending: usize,

    /// Parked statements (increments a document of the site refused for good; see `tally
    /// parked`) a site may have before its hits are refused with 503, so that one broken site
    /// cannot fill the store while every other site goes on. 0: no bound.
    #[arg(long, env = "TALLY_PARKED_MAX_PER_SITE",
          default_value_t = crate::aggregate::parked::DEFAULT_MAX_PER_SITE)]
    pub parked_max_per_site: usize,

    /// How often the list of sites is re-read from the store, in seconds (sites added by
    /// another process start counting within this time).
    #[arg(long, env = "TALLY_SITE_REFRESH_SECS", default_value_t = DEFAULT_SITE_REFRESH_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub site_refresh_secs: u64,

    /// On shutdown, how long to keep retrying the final flush, in seconds.
    #[arg(long, env = "TALLY_SHUTDOWN_TIMEOUT_SECS",
          default_value_t = DEFAULT_SHUTDOWN_TIMEOUT_SECS)]
    pub shutdown_timeout_secs: u64,

    /// Create the site `demo` if missing and serve /demo, a page carrying the snippet.
    #[arg(long, env = "TALLY_DEMO")]
    pub demo: bool,

    /// The country database of the locations report. `builtin`, the default: the free one
    /// compiled into tally (ip-location-db geo-whois-asn-country; data © NRO, CC BY 4.0); a
    /// path: a MaxMind-format file instead (.mmdb: GeoLite2-Country, DB-IP, ip-location-db;
    /// `./none` for a file called `none`); `none`: no countries and no locations report.
    /// Addresses are looked up in memory and never written anywhere.
    #[arg(long, env = "TALLY_GEOIP_DB", value_name = "builtin|none|FILE",
          default_value = "builtin", value_parser = GeoSource::parse)]
    pub geoip_db: GeoSource,

    /// Which peers are reverse proxies whose `X-Forwarded-For` (or, without it, `Forwarded`)
    /// names the visitor. `private`, the default: peers on loopback, private (RFC 1918),
    /// unique-local and link-local networks, and the visitor is the rightmost forwarded address
    /// that is not in those; a comma-separated list of networks to trust instead
    /// (`10.1.0.0/16,2001:db8::/48`); a hop count 1–8 (the address that many proxies from the
    /// right, whatever it is; `--trust-proxy` alone means 1); or `none` (the connection's own
    /// address, always). See docs/operations.md for the spoofing trade-off.
    #[arg(long, env = "TALLY_TRUST_PROXY", default_value = "private", num_args = 0..=1,
          default_missing_value = "1", value_parser = TrustProxy::parse)]
    pub trust_proxy: TrustProxy,

    /// Requests per second one sender (a client address with its User-Agent: one browser) may
    /// send to the ingest endpoints (/t.gif, /e, /v) together, sustained, after a burst of
    /// --ingest-burst; more are answered 429 and not counted (`rate_limited` in /metrics).
    /// 0 turns this limit off. Fractions are allowed (0.5: one every 2 s).
    #[arg(long, env = "TALLY_INGEST_RATE", default_value_t = DEFAULT_INGEST_RATE,
          value_parser = ingest_rate)]
    pub ingest_rate: f64,

    /// Requests one sender may send at once before --ingest-rate applies (1–1000000).
    #[arg(long, env = "TALLY_INGEST_BURST", default_value_t = DEFAULT_INGEST_BURST,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub ingest_burst: u32,

    /// Requests per second one client address may send to the ingest endpoints, all its
    /// browsers together (an office, a school or a carrier's NAT: many people behind one
    /// address), sustained, after a burst of --ingest-address-burst; more are answered 429.
    /// 0 turns this limit off.
    #[arg(long, env = "TALLY_INGEST_ADDRESS_RATE", default_value_t = DEFAULT_INGEST_ADDRESS_RATE,
          value_parser = ingest_rate)]
    pub ingest_address_rate: f64,

    /// Requests one client address may send at once before --ingest-address-rate applies
    /// (1–1000000).
    #[arg(long, env = "TALLY_INGEST_ADDRESS_BURST",
          default_value_t = DEFAULT_INGEST_ADDRESS_BURST,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub ingest_address_burst: u32,

    /// New keys (pages, referrers, search terms, campaign values, event names and property
    /// values) one client address may bring into one month document (0–100000; 0: no
    /// budget). Past it, its hits are still counted, under keys someone else named or under
    /// `(other)`, so that a few addresses sending forged pages cannot fill a month's
    /// --max-keys. See docs/data-model.md.
    #[arg(long, env = "TALLY_NEW_KEYS_PER_ADDRESS",
          default_value_t = DEFAULT_NEW_KEYS_PER_ADDRESS,
          value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub new_keys_per_address: u32,

    /// Most distinct keys (pages, referrers, terms, campaign values) one month document names
    /// (100–10000); later ones are counted under `(other)`. Bounds every document's size.
    #[arg(long, env = "TALLY_MAX_KEYS", default_value_t = DEFAULT_MAX_KEYS,
          value_parser = max_keys)]
    pub max_keys: usize,

    /// How long custom events' 5-minute counters are kept, in hours (0: forever).
    #[arg(
        long = "retain-5m-hours",
        env = "TALLY_RETAIN_5M_HOURS",
        default_value_t = 48
    )]
    pub retain_5m_hours: u32,

    /// How long custom events' hourly counters are kept, in days (0: forever).
    #[arg(long, env = "TALLY_RETAIN_HOURLY_DAYS", default_value_t = 60)]
    pub retain_hourly_days: u32,

    /// How long custom events' daily counters are kept, in days (0, the default: forever).
    #[arg(long, env = "TALLY_RETAIN_DAILY_DAYS", default_value_t = 0)]
    pub retain_daily_days: u32,

    /// How long a client has to send a request's head (request line and headers), in
    /// milliseconds (100–600000). A slower client (slow-loris) is answered 408 and disconnected.
    #[arg(long, env = "TALLY_REQUEST_TIMEOUT_MS", default_value_t = DEFAULT_REQUEST_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub request_timeout_ms: u64,

    /// How long the body of a `POST /e` may take to arrive, in milliseconds (100–600000). A
    /// body trickled slower is answered 408, nothing counted, and the connection closed.
    #[arg(long, env = "TALLY_BODY_TIMEOUT_MS", default_value_t = DEFAULT_BODY_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub body_timeout_ms: u64,

    /// Failed token checks the read API allows one client address per minute (a wrong token
    /// presented); past it the address gets 429 on every token-checked route until the minute
    /// is over. The address is the one --trust-proxy names. 0: no limit.
    #[arg(long, env = "TALLY_AUTH_FAILURES_PER_MINUTE",
          default_value_t = DEFAULT_AUTH_FAILURES_PER_MINUTE)]
    pub auth_failures_per_minute: u32,

    /// Count people with HyperLogLog sketches (`people.<YYYY>`, docs/data-model.md): every hit
    /// raises a register of its day, month and year, and "people" over any range counts each
    /// visitor once. `false`: people over a range are the sum of the Gaug.es flags.
    #[arg(long, env = "TALLY_PEOPLE_SKETCHES", value_name = "true|false",
          default_value_t = true, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub people_sketches: bool,

    /// How often the people sketches' raises are written, in seconds (1–3600); they wait in
    /// memory in between, merged, and go at once on shutdown. Other counters are written every
    /// --flush-interval-ms.
    #[arg(long, env = "TALLY_PEOPLE_FLUSH_SECS", default_value_t = DEFAULT_PEOPLE_FLUSH_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub people_flush_secs: u64,

    /// How often expired event counters are removed, in seconds (60–86400).
    #[arg(long, env = "TALLY_SWEEP_INTERVAL_SECS", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(60..=86_400))]
    pub sweep_interval_secs: u64,

    /// Write every accepted hit to a local write-ahead log before answering, and replay it on
    /// start, so a killed process loses nothing it acknowledged (see docs/reliability.md).
    /// Without it, a crash loses at most the last flush interval's hits.
    #[arg(long, env = "TALLY_DURABLE")]
    pub durable: bool,

    /// Directory of the durable log (default: `durable` under --data-dir). One process per
    /// directory.
    #[arg(long, env = "TALLY_DURABLE_DIR")]
    pub durable_dir: Option<PathBuf>,

    /// How often the durable log is fsync'd, in milliseconds (0: after every write). A hit is
    /// acknowledged once written to the file; this bounds what a power loss can take.
    #[arg(long, env = "TALLY_DURABLE_SYNC_MS", default_value_t = DEFAULT_DURABLE_SYNC_MS,
          value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub durable_sync_ms: u64,

    /// The disk budget of the durable directory: log segments, spill files and checkpoint
    /// (bytes; K, M, G suffixes are powers of 1024; at least 1M). While the store is away,
    /// what flushes drain goes to spill files instead of memory; once the directory holds the
    /// budget, new hits are refused with 503 and counted as `durable_full` until the store is
    /// back (see docs/operations.md, "Sizing the durable budget").
    #[arg(long, env = "TALLY_DURABLE_MAX_BYTES", default_value = "1G", value_parser = byte_size)]
    pub durable_max_bytes: u64,

    /// How long one store command (an `update` or a `find`) may take, in seconds (1–3600); past
    /// it the command is abandoned and its statements, with the rest of that flush, are sent
    /// again (marked, so never counted twice).
    #[arg(long, env = "TALLY_STORE_TIMEOUT_SECS", default_value_t = DEFAULT_STORE_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub store_timeout_secs: u64,

    /// How often this process refreshes its entry in the store's `writers` registry and
    /// re-reads it to learn which writers are retired, in seconds (1–600).
    #[arg(long, env = "TALLY_WRITER_HEARTBEAT_SECS",
          default_value_t = DEFAULT_WRITER_HEARTBEAT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub writer_heartbeat_secs: u64,

    /// A writer (a tally process without --durable) not seen in the registry for this long,
    /// in seconds (60–2592000, at least 3 heartbeats), is retired: its marks are removed from
    /// documents as they are written. A process cut off from the store for longer may count
    /// the statements it still owes twice (see docs/reliability.md).
    #[arg(long, env = "TALLY_WRITER_STALE_SECS", default_value_t = DEFAULT_WRITER_STALE_SECS,
          value_parser = clap::value_parser!(u64).range(60..=2_592_000))]
    pub writer_stale_secs: u64,
}

impl ServeSettings {
    /// The ingest rate limits these settings ask for, per sender and per address (`None`:
    /// off).
    pub fn ingest_limits(&self) -> (Option<RateLimit>, Option<RateLimit>) {
        let limit = |per_second: f64, burst: u32| {
            (per_second > 0.0).then_some(RateLimit { per_second, burst })
        };
        (
            limit(self.ingest_rate, self.ingest_burst),
            limit(self.ingest_address_rate, self.ingest_address_burst),
        )
    }

    /// How the writers registry judges time.
    pub fn writer_times(&self) -> crate::aggregate::writers::Times {
        crate::aggregate::writers::Times {
            heartbeat: std::time::Duration::from_secs(self.writer_heartbeat_secs),
            stale: std::time::Duration::from_secs(self.writer_stale_secs),
        }
    }

    /// The retention of event counters these settings ask for.
    pub fn retention(&self) -> crate::retention::Retention {
        let keep = |d: chrono::TimeDelta, n: u32| (n > 0).then(|| d * n as i32);
        crate::retention::Retention {
            five_minute: keep(chrono::TimeDelta::hours(1), self.retain_5m_hours),
            hourly: keep(chrono::TimeDelta::days(1), self.retain_hourly_days),
            daily: keep(chrono::TimeDelta::days(1), self.retain_daily_days),
            minutes: Some(crate::retention::LIVE_KEPT),
        }
    }
}

pub fn max_keys(raw: &str) -> Result<usize, String> {
    match raw.parse::<usize>() {
        Ok(n) if (100..=10_000).contains(&n) => Ok(n),
        _ => Err(format!("{raw:?} is not a whole number from 100 to 10000")),
    }
}

fn ingest_rate(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(n) if n == 0.0 || (0.001..=1_000_000.0).contains(&n) => Ok(n),
        _ => Err(format!(
            "{raw:?} is not 0 (off) or a number of requests per second from 0.001 to 1000000"
        )),
    }
}

/// A size in bytes: a whole number with an optional K, M or G (powers of 1024), at least 1 MiB.
fn byte_size(raw: &str) -> Result<u64, String> {
    let bad =
        || format!("{raw:?} is not a size of at least 1M (bytes, or a number with K, M or G)");
    let trimmed = raw.trim();
    let (digits, unit) = match trimmed.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&trimmed[..i], c.to_ascii_uppercase()),
        _ => (trimmed, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        _ => return Err(bad()),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let bytes = n.checked_mul(1 << shift).ok_or_else(bad)?;
    if bytes < 1 << 20 {
        return Err(bad());
    }
    Ok(bytes)
}

fn positive(raw: &str) -> Result<usize, String> {
    match raw.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{raw:?} is not a positive whole number")),
    }
}

impl Default for ServeSettings {
    fn default() -> Self {
        ServeSettings {
            listen: DEFAULT_LISTEN.parse().expect("the default address parses"),
            flush_interval_ms: DEFAULT_FLUSH_INTERVAL_MS,
            flush_at: DEFAULT_FLUSH_AT,
            max_pending: DEFAULT_MAX_PENDING,
            parked_max_per_site: crate::aggregate::parked::DEFAULT_MAX_PER_SITE,
            site_refresh_secs: DEFAULT_SITE_REFRESH_SECS,
            shutdown_timeout_secs: DEFAULT_SHUTDOWN_TIMEOUT_SECS,
            demo: false,
            geoip_db: GeoSource::Builtin,
            trust_proxy: TrustProxy::default(),
            max_keys: DEFAULT_MAX_KEYS,
            ingest_rate: DEFAULT_INGEST_RATE,
            ingest_burst: DEFAULT_INGEST_BURST,
            ingest_address_rate: DEFAULT_INGEST_ADDRESS_RATE,
            ingest_address_burst: DEFAULT_INGEST_ADDRESS_BURST,
            new_keys_per_address: DEFAULT_NEW_KEYS_PER_ADDRESS,
            retain_5m_hours: 48,
            retain_hourly_days: 60,
            retain_daily_days: 0,
            sweep_interval_secs: 600,
            people_sketches: true,
            people_flush_secs: DEFAULT_PEOPLE_FLUSH_SECS,
            durable: false,
            durable_dir: None,
            durable_sync_ms: DEFAULT_DURABLE_SYNC_MS,
            durable_max_bytes: DEFAULT_DURABLE_MAX_BYTES,
            store_timeout_secs: DEFAULT_STORE_TIMEOUT_SECS,
            writer_heartbeat_secs: DEFAULT_WRITER_HEARTBEAT_SECS,
            writer_stale_secs: DEFAULT_WRITER_STALE_SECS,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            body_timeout_ms: DEFAULT_BODY_TIMEOUT_MS,
            auth_failures_per_minute: DEFAULT_AUTH_FAILURES_PER_MINUTE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durable_budgets_are_sizes_of_at_least_a_mebibyte() {
        assert_eq!(byte_size("1G"), Ok(DEFAULT_DURABLE_MAX_BYTES));
        assert_eq!(byte_size("1073741824"), Ok(1 << 30));
        assert_eq!(byte_size("512m"), Ok(512 << 20));
        assert_eq!(byte_size("2048K"), Ok(2 << 20));
        assert_eq!(byte_size(" 3M "), Ok(3 << 20));
        for bad in [
            "",
            "G",
            "1T",
            "-1G",
            "1.5G",
            "1023K",
            "1000",
            "99999999999G",
        ] {
            assert!(byte_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ingest_rates_are_checked() {
        assert_eq!(ingest_rate("0"), Ok(0.0));
        assert_eq!(ingest_rate("20"), Ok(20.0));
        assert_eq!(ingest_rate("0.5"), Ok(0.5));
        for bad in ["-1", "NaN", "inf", "0.0001", "2000000", "fast", ""] {
            assert!(ingest_rate(bad).is_err(), "{bad:?}");
        }
    }
}

/// Everything `tally serve` needs.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub store: StoreSettings,
    pub serve: ServeSettings,
}
