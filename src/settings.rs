//! Typed settings. Each field has a default, is overridden by its `TALLY_*` environment variable,
//! which is overridden by its command-line flag; each field's doc comment is its `--help` text.
//!
//! Malformed values fail at start-up with a message naming the setting (clap's validation), and
//! an unknown `TALLY_*` variable is refused too (see `cli`), so a typo never passes silently.

use std::net::SocketAddr;
use std::path::PathBuf;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_FLUSH_INTERVAL_MS: u64 = 1000;
pub const DEFAULT_FLUSH_AT: usize = 50_000;
pub const DEFAULT_MAX_PENDING: usize = 1_000_000;
pub const DEFAULT_SITE_REFRESH_SECS: u64 = 5;
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 30;

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
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            mongodb_uri: None,
            data_dir: PathBuf::from("./tally-data"),
            database: "tally".to_owned(),
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
            site_refresh_secs: DEFAULT_SITE_REFRESH_SECS,
            shutdown_timeout_secs: DEFAULT_SHUTDOWN_TIMEOUT_SECS,
            demo: false,
        }
    }
}

/// Everything `tally serve` needs.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub store: StoreSettings,
    pub serve: ServeSettings,
}
