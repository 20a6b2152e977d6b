//! `tally import --site ID [--format combined|json] [--force] FILE...`: backfills a site's
//! counters from nginx/Apache access logs.
//!
//! Every counted line goes through [`Tracker::track_at`] at the line's own time, into a
//! coalescer and flusher built as `startup` builds them, so an imported hit is counted exactly
//! as a live one. Lines are parsed and tracked on every core, a chunk at a time; the flusher
//! writes every [`FLUSH_EVERY`] counted lines and at the end. Each imported file's fingerprint
//! (SHA-256 of its first MiB and its length) is kept in the `imports` collection so the same
//! file is not counted twice; stdin has none. Parsing lives in [`crate::import`]. The live
//! panel's minutes (`live.<YYYY>`) are the one report an import does not write. A page view's
//! hit carries the page flag (`pp`) the import works out itself ([`FirstViews`]), so imported
//! views count people per page too.

use super::first_views::{FirstViews, MAX_FIRST_VIEWS};
use super::CliError;
use crate::aggregate::close;
use crate::aggregate::flusher::Flusher;
use crate::aggregate::writers::{Registry, Role, Source, Times};
use crate::aggregate::Coalescer;
use crate::field::FieldKey;
use crate::import::{self, Format, Kind, Skip};
use crate::metrics::{Metrics, Rejection};
use crate::period::system_clock;
use crate::settings::{StoreSettings, DEFAULT_MAX_KEYS, DEFAULT_NEW_KEYS_PER_ADDRESS};
use crate::site::{Site, SiteId, SiteRegistry};
use crate::startup::StartupError;
use crate::store::{Batch, CollectionBatch, DocUpdate, Store};
use crate::track::budget::KeyBudget;
use crate::track::client::TrustProxy;
use crate::track::geo::GeoSource;
use crate::track::limit::IngestLimits;
use crate::track::people::PeopleKeys;
use crate::track::Tracker;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Counted lines between two flushes.
pub const FLUSH_EVERY: u64 = 100_000;
/// Bytes of log read, then parsed in parallel, at a time.
const CHUNK_BYTES: u64 = 4 << 20;
/// Bytes of a file's start that go into its fingerprint.
const FINGERPRINT_BYTES: u64 = 1 << 20;
/// Bound on pending increments: far above what [`FLUSH_EVERY`] lines can make, so no line is
/// refused while a flush is retried.
const MAX_PENDING: usize = 50_000_000;
/// The collection of imported files' fingerprints.
pub const IMPORTS: &str = "imports";

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The site the log belongs to; its pages are counted for it.
    #[arg(long)]
    pub site: SiteId,
    /// The log format.
    #[arg(long, value_enum, default_value = "combined")]
    pub format: Format,
    /// Import files even if they were imported for this site before (their hits are counted
    /// again).
    #[arg(long)]
    pub force: bool,
    /// Feed the people sketches (docs/data-model.md), as `tally serve` does; `false` to leave
    /// them alone.
    #[arg(long, env = "TALLY_PEOPLE_SKETCHES", value_name = "true|false",
          default_value_t = true, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub people_sketches: bool,
    /// Most distinct keys one month document names, as for `serve` (100–10000): an import
    /// must cap documents as the servers writing beside it do.
    #[arg(long, env = "TALLY_MAX_KEYS", default_value_t = DEFAULT_MAX_KEYS,
          value_parser = crate::settings::max_keys)]
    pub max_keys: usize,
    /// The country database of the locations report, as for `serve`: `builtin` (the default,
    /// compiled into tally), a MaxMind-format file (.mmdb), or `none`.
    #[arg(long, env = "TALLY_GEOIP_DB", value_name = "builtin|none|FILE",
          default_value = "builtin", value_parser = GeoSource::parse)]
    pub geoip_db: GeoSource,
    /// Log files; `-` reads stdin (never fingerprinted).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Lines by outcome.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    read: u64,
    counted: u64,
    malformed: u64,
    not_a_page: u64,
    status: u64,
    bot: u64,
    other_site: u64,
    rejected: u64,
    /// The earliest and latest counted line, for closing their periods once written.
    span: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.read += o.read;
        self.counted += o.counted;
        self.malformed += o.malformed;
        self.not_a_page += o.not_a_page;
        self.status += o.status;
        self.bot += o.bot;
        self.other_site += o.other_site;
        self.rejected += o.rejected;
        if let Some((first, last)) = o.span {
            self.saw(first);
            self.saw(last);
        }
    }

    fn saw(&mut self, at: DateTime<Utc>) {
        self.span = Some(match self.span {
            None => (at, at),
            Some((first, last)) => (first.min(at), last.max(at)),
        });
    }

    fn skipped(&self) -> u64 {
        self.read - self.counted
    }
}

pub async fn run(settings: &StoreSettings, args: ImportArgs) -> Result<(), CliError> {
    let store = settings.open().await?;
    if store.site(args.site.as_str()).await?.is_none() {
        return Err(CliError::Failed(format!(
            "no site {:?}: add it first with `tally site add`",
            args.site.as_str()
        )));
    }
    // Every file is checked before any is read, so a refusal leaves the counters untouched.
    let mut prints = Vec::new();
    for path in &args.files {
        let print =
            match is_stdin(path) {
                true => None,
                false => Some(fingerprint(path).map_err(|e| {
                    CliError::Failed(format!("cannot read {}: {e}", path.display()))
                })?),
            };
        if let Some(fp) = &print {
            let id = format!("{}:{fp}", args.site.as_str());
            if !args.force && store.get(IMPORTS, &id).await?.is_some() {
                return Err(CliError::Failed(format!(
                    "{} was already imported for site {:?}; use --force to count it again",
                    path.display(),
                    args.site.as_str()
                )));
            }
        }
        prints.push(print);
    }

    let sites = Arc::new(SiteRegistry::default());
    sites.replace(store.sites().await?);
    let site = sites
        .get(&args.site)
        .ok_or_else(|| CliError::Failed(format!("no site {:?}", args.site.as_str())))?;
    let first_views = FirstViews::new(MAX_FIRST_VIEWS);
    let metrics = Arc::new(Metrics::new());
    let coalescer = Arc::new(Coalescer::new(MAX_PENDING, MAX_PENDING));
    // The import's own writer id: a slot of the data directory that a `tally serve` running
    // next to it does not hold.
    let source = Source::slot_or_random(&settings.data_dir).map_err(StartupError::from)?;
    let (writers, writer) = Registry::register(
        Arc::clone(&store),
        source,
        Role::Import,
        Times::default(),
        system_clock(),
        Arc::clone(&metrics),
    )
    .await
    .map_err(StartupError::from)?;
    let flusher = Arc::new(
        Flusher::new(
            Arc::clone(&coalescer),
            Arc::clone(&store),
            Arc::clone(&metrics),
            args.max_keys,
            system_clock(),
        )
        .with_writer(writer, Arc::clone(&writers)),
    );
    let (stop_writers, stop_rx) = tokio::sync::watch::channel(false);
    let writers_task = tokio::spawn(Arc::clone(&writers).run(stop_rx, {
        let flusher = Arc::clone(&flusher);
        move |writer| {
            let flusher = Arc::clone(&flusher);
            tokio::spawn(async move { flusher.set_writer(writer).await });
        }
    }));
    let geo = args.geoip_db.open().map_err(StartupError::from)?;
    let tracker = Tracker {
        sites,
        metrics,
        clock: system_clock(),
        geo,
        trust: TrustProxy::None,
        // Log lines are not requests: no rate limit, host or opt-out applies to them. The
        // budget of new keys does: a log holds forged pages as much as live traffic does.
        limits: IngestLimits::new(None, None),
        budget: Some(KeyBudget::new(
            DEFAULT_NEW_KEYS_PER_ADDRESS,
            Arc::clone(coalescer.named()),
        )),
        coalescer,
        live_minutes: false,
        people: Arc::new(if args.people_sketches {
            PeopleKeys::fetching(Arc::clone(&store))
        } else {
            PeopleKeys::default()
        }),
    };

    let progress = progress_bar();
    let mut total = Tally::default();
    let mut imported = Vec::new();
    for (path, print) in args.files.iter().zip(&prints) {
        let input: Box<dyn Read + Send> =
            if is_stdin(path) {
                Box::new(std::io::stdin())
            } else {
                Box::new(std::fs::File::open(path).map_err(|e| {
                    CliError::Failed(format!("cannot read {}: {e}", path.display()))
                })?)
            };
        let job = Job {
            tracker: &tracker,
            site: args.site.as_str(),
            site_info: &site,
            first_views: &first_views,
            format: args.format,
        };
        let file = import_one(input, &job, &flusher, &progress, &mut total)
            .await
            .map_err(|e| CliError::Failed(format!("cannot read {}: {e}", path.display())))?;
        if let Some(fp) = print {
            imported.push((path, fp, file));
        }
    }
    progress.finish_and_clear();
    print_summary(&total, first_views.unflagged());
    let drained = flusher.drain(Duration::from_secs(60)).await;
    let _ = stop_writers.send(true);
    let _ = writers_task.await;
    drained.map_err(|e| CliError::Failed(format!("the import is incomplete: {e}")))?;
    // The people of the days, months and years the log covers that have ended are written as
    // numbers, as a server closes its own (days more than a week old it does not look at).
    if let (true, Some((first, last))) = (args.people_sketches, total.span) {
        match close::close_span(store.as_ref(), &site, first, last, Utc::now()).await {
            Ok(n) => tracing::info!(periods = n, "import: people of the ended periods written"),
            Err(e) => {
                tracing::warn!(error = %e, "import: cannot write the people of ended periods; ranges read their sketches")
            }
        }
    }
    // Everything sent is known to be in the store: this writer's marks may go.
    if let Err(e) = writers.end().await {
        tracing::warn!(error = %e, "writers registry: cannot record the end of the import");
    }
    // Only once every counter is written: a failed import may be run again without --force.
    for (path, fp, file) in imported {
        record(store.as_ref(), args.site.as_str(), fp, path, &file).await?;
    }
    Ok(())
}

fn is_stdin(path: &std::path::Path) -> bool {
    path.as_os_str() == "-"
}

/// SHA-256 of the file's first MiB followed by its length (decimal), in hex.
fn fingerprint(path: &std::path::Path) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut head = Vec::new();
    file.take(FINGERPRINT_BYTES).read_to_end(&mut head)?;
    let mut hash = Sha256::new();
    hash.update(&head);
    hash.update(len.to_string().as_bytes());
    Ok(hex::encode(hash.finalize()))
}

/// Remembers an imported file: `imports` document `<site>:<fingerprint>`.
async fn record(
    store: &dyn Store,
    site: &str,
    fp: &str,
    path: &std::path::Path,
    file: &Tally,
) -> Result<(), CliError> {
    let update = DocUpdate {
        id: format!("{site}:{fp}"),
        inc: vec![
            (FieldKey::from_parts(&["counted"]), file.counted as i64),
            (FieldKey::from_parts(&["lines"]), file.read as i64),
            (FieldKey::from_parts(&["times"]), 1),
        ],
        set: vec![
            (FieldKey::from_parts(&["file"]), path.display().to_string()),
            (
                FieldKey::from_parts(&["last"]),
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
        ],
        max: Vec::new(),
        guard: None,
        mark: None,
        unset: Vec::new(),
    };
    let batch = Batch {
        collections: vec![CollectionBatch {
            collection: IMPORTS.to_owned(),
            docs: vec![update],
        }],
    };
    match store.apply(&batch).await.failed.first() {
        None => Ok(()),
        Some(f) => Err(CliError::Failed(format!(
            "cannot record the import of {}: {}",
            path.display(),
            f.error
        ))),
    }
}

/// What every worker needs.
struct Job<'a> {
    tracker: &'a Tracker,
    site: &'a str,
    /// The site itself: its zone and kept parameters decide a page view's flag.
    site_info: &'a Site,
    first_views: &'a FirstViews,
    format: Format,
}

/// Reads one input a chunk at a time, tracking each chunk's lines on two threads, flushing
/// every [`FLUSH_EVERY`] counted lines. Returns this input's tally (also added to `total`).
async fn import_one(
    input: Box<dyn Read + Send>,
    job: &Job<'_>,
    flusher: &Flusher,
    progress: &indicatif::ProgressBar,
    total: &mut Tally,
) -> std::io::Result<Tally> {
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let mut file = Tally::default();
    let mut since_flush = 0;
    let mut chunk = Vec::with_capacity(CHUNK_BYTES as usize + (64 << 10));
    loop {
        chunk.clear();
        (&mut reader).take(CHUNK_BYTES).read_to_end(&mut chunk)?;
        if chunk.is_empty() {
            break;
        }
        if chunk.last() != Some(&b'\n') {
            reader.read_until(b'\n', &mut chunk)?;
        }
        let t = track_chunk(&chunk, job);
        file.add(&t);
        total.add(&t);
        progress.inc(t.read);
        since_flush += t.counted;
        if since_flush >= FLUSH_EVERY {
            since_flush = 0;
            let report = flusher.flush().await;
            if let Some(e) = report.first_error {
                tracing::warn!(failed = report.failed, error = %e, "import: a flush failed; its increments are kept for the next");
            }
        }
    }
    Ok(file)
}

/// Splits a chunk of whole lines in two at a line break and tracks both halves at once.
fn track_chunk(chunk: &[u8], job: &Job<'_>) -> Tally {
    let middle = chunk.len() / 2;
    let cut = chunk[middle..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(chunk.len(), |i| middle + i + 1);
    let (a, b) = chunk.split_at(cut);
    std::thread::scope(|s| {
        let other = s.spawn(|| track_lines(b, job));
        let mut t = track_lines(a, job);
        match other.join() {
            Ok(o) => t.add(&o),
            Err(panic) => std::panic::resume_unwind(panic),
        }
        t
    })
}

fn track_lines(bytes: &[u8], job: &Job<'_>) -> Tally {
    let mut t = Tally::default();
    let mut query = String::with_capacity(256);
    for raw in bytes.split(|b| *b == b'\n') {
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        t.read += 1;
        let text = String::from_utf8_lossy(raw);
        let Some(line) = import::parse(job.format, &text) else {
            t.malformed += 1;
            continue;
        };
        let hit = match import::classify(&line) {
            Kind::Skip(Skip::NotAPage) => {
                t.not_a_page += 1;
                continue;
            }
            Kind::Skip(Skip::Status) => {
                t.status += 1;
                continue;
            }
            Kind::Page(path) => {
                import::page_query(&mut query, job.site, path, line.referer.as_deref());
                let url = crate::track::query::PixelParams::parse(&query).page.url;
                let flag = url.and_then(|url| {
                    let (addr, agent) = (line.addr, &line.user_agent);
                    job.first_views
                        .flag(job.site_info, url, addr, agent, line.at)
                });
                if let Some(pp) = flag {
                    query.push_str(if pp == 2 { "&pp=2" } else { "&pp=1" });
                }
                query.as_str()
            }
            Kind::Pixel(q) => {
                let params = crate::track::query::PixelParams::parse(q);
                if params.site.as_deref() != Some(job.site) {
                    t.other_site += 1;
                    continue;
                }
                q
            }
        };
        match job
            .tracker
            .track_at(hit, &line.user_agent, line.addr, line.at)
        {
            Ok(()) => {
                t.counted += 1;
                t.saw(line.at);
            }
            Err(Rejection::Bot) => t.bot += 1,
            Err(_) => t.rejected += 1,
        }
    }
    t
}

/// A line counter with its rate, drawn on stderr only when stderr is a terminal.
fn progress_bar() -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {human_pos} lines  {per_sec}  {elapsed}")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn print_summary(t: &Tally, unflagged: u64) {
    println!("lines read  {:>10}", t.read);
    println!("counted     {:>10}", t.counted);
    println!("skipped     {:>10}", t.skipped());
    for (name, n) in [
        ("malformed", t.malformed),
        ("not_a_page", t.not_a_page),
        ("status", t.status),
        ("bot", t.bot),
        ("other_site", t.other_site),
        ("rejected", t.rejected),
    ] {
        println!("  {name:<10}{n:>10}");
    }
    if t.not_a_page > 0 {
        println!(
            "not_a_page: not a GET, or not a page by its media type (images, styles, scripts, \
             fonts, media, archives, feeds, documents), or tally's own endpoints and probes \
             (docs/operations.md, \"Importing server logs\")"
        );
    }
    if unflagged > 0 {
        println!(
            "page people: {unflagged} first views of a page counted without their visitor \
             (more than {MAX_FIRST_VIEWS} first views in one run; docs/operations.md)"
        );
    }
}
