//! The command line: `tally serve`, `tally site ...`, `tally doc ...`, `tally collections ...`,
//! `tally capacity`, `tally import ...`, `tally parked ...`.
//!
//! clap parses (every option also has a `TALLY_*` environment variable), this module opens the
//! store and calls into the library. Exit codes: 0 success, 1 failure, 2 bad usage (an invalid
//! site id, time zone or setting, named in the message).

mod capacity;
mod collections;
mod doc;
mod first_views;
#[cfg(test)]
mod flags;
mod import;
mod parked;
mod serve;
mod site;

use crate::settings::{ServeSettings, StoreSettings};
use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "tally",
    version,
    about = "Self-hosted web analytics on pre-aggregated counters"
)]
pub struct Cli {
    #[command(flatten)]
    pub store: StoreSettings,

    /// Log filter in tracing's EnvFilter syntax, e.g. `info` or `tally=debug,info`.
    /// Default: `info` for serve, `warn` for other commands.
    #[arg(long, env = "TALLY_LOG", global = true)]
    pub log: Option<String>,

    /// Log lines as text for people (default) or as one JSON object per line for collectors.
    #[arg(long, env = "TALLY_LOG_FORMAT", global = true, default_value = "text",
          value_parser = ["text", "json"])]
    pub log_format: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server: /t.gif, /t.js, /metrics, /healthz (and /demo with --demo).
    Serve(ServeSettings),
    /// Add, list and show tracked sites.
    #[command(subcommand)]
    Site(site::SiteCommand),
    /// Print one document as JSON (relaxed extended JSON), exactly as stored.
    Doc(doc::DocArgs),
    /// List the yearly report collections with their sizes, or drop whole past years.
    #[command(subcommand)]
    Collections(collections::CollectionsCommand),
    /// Measure documents and bytes per site-year on this store and project them for N sites.
    Capacity(capacity::CapacityArgs),
    /// Backfill a site's counters from nginx/Apache access logs (`-` reads stdin).
    Import(import::ImportArgs),
    /// Statements documents refused for good: list, retry after repairing them, or drop.
    #[command(subcommand)]
    Parked(parked::ParkedCommand),
}

/// Failures that end a command with exit code 1.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Startup(#[from] crate::startup::StartupError),
    #[error(transparent)]
    Run(#[from] crate::startup::RunError),
    #[error("{0}")]
    Failed(String),
    /// A request refused as bad usage: exit code 2.
    #[error("{0}")]
    Usage(String),
}

/// Parses the command line and runs the command.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Some(unknown) = unknown_settings() {
        eprintln!("error: {unknown}");
        return ExitCode::from(2);
    }
    let default_log = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    init_logging(
        cli.log.as_deref().unwrap_or(default_log),
        cli.log_format == "json",
    );

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(serve) => serve::run(cli.store, serve).await,
            Command::Site(cmd) => site::run(&cli.store, cmd).await,
            Command::Doc(args) => doc::run(&cli.store, args).await,
            Command::Collections(cmd) => collections::run(&cli.store, cmd).await,
            Command::Capacity(args) => capacity::run(&cli.store, args).await,
            Command::Import(args) => import::run(&cli.store, args).await,
            Command::Parked(cmd) => parked::run(&cli.store, cmd).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A `TALLY_*` environment variable that no option reads is almost always a typo.
fn unknown_settings() -> Option<String> {
    let mut known = Vec::new();
    collect_env_names(&Cli::command(), &mut known);
    let unknown: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("TALLY_") && !known.iter().any(|n| n == k))
        .collect();
    if unknown.is_empty() {
        return None;
    }
    known.sort();
    known.dedup();
    Some(format!(
        "unknown setting{} {}; tally reads {}",
        if unknown.len() > 1 { "s" } else { "" },
        unknown.join(", "),
        known.join(", ")
    ))
}

fn collect_env_names(cmd: &clap::Command, out: &mut Vec<String>) {
    for arg in cmd.get_arguments() {
        if let Some(name) = arg.get_env().and_then(|n| n.to_str()) {
            out.push(name.to_owned());
        }
    }
    for sub in cmd.get_subcommands() {
        collect_env_names(sub, out);
    }
}

fn init_logging(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|e| {
        eprintln!("warning: ignoring the log filter {filter:?}: {e}");
        tracing_subscriber::EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().with_current_span(false).try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}
