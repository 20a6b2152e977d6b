//! tally: self-hosted web analytics on pre-aggregated counters.
//!
//! Every tracking hit becomes `$inc` increments on small per-site, per-period documents that
//! *are* the reports. Raw hits are never stored.
//!
//! # Layout
//! The modules follow the path of a hit:
//! - [`track`]: HTTP ingest (the pixel `/t.gif`, the snippet `/t.js`, events `/e`, visit beacons
//!   `/v`) and parsing a request into
//!   a [`hit::Hit`]. Handlers validate and enqueue; they never await the store.
//! - [`hit`]: the parsed hit, with its instant already placed in the site's time zone.
//! - [`reports`]: one module per report kind: how a hit becomes counters, and how a document is
//!   read back.
//! - [`aggregate`]: the in-memory coalescer that merges increments per
//!   `(collection, document id, field)`, and the flusher that writes them as batched upserts.
//! - [`store`]: MongoDB and the embedded SQLite store, behind one small trait.
//! - [`retention`]: how long each resolution of event counters is kept, and the sweep that
//!   deletes expired documents by `_id` range and drops whole older yearly collections.
//! - [`import`]: server access-log lines (nginx/Apache combined, or JSON) → pixel hits, for
//!   `tally import`.
//! - [`dashboard`]: the read side served over HTTP (for now the `--demo` page).
//! - [`static_file`]: text compiled into the binary, served with an ETag.
//! - `fuzz`, only with the `fuzz` feature (off by default): fuzz targets over every parser of
//!   outside input (run by `tests/fuzz.rs` and `scripts/fuzz.sh`, which turn the feature on).
//! - [`cli`], [`settings`], [`startup`]: the binary's commands, typed configuration, and the
//!   application wiring that tests start exactly as production does.
//!
//! Validated input lives in newtypes: [`site::SiteId`], [`field::FieldKey`], [`period::Period`].

pub mod aggregate;
pub mod api;
pub mod cli;
pub mod dashboard;
pub mod error;
pub mod field;
#[cfg(feature = "fuzz")]
pub mod fuzz;
pub mod hit;
pub mod import;
pub mod metrics;
pub mod period;
pub mod reports;
pub mod retention;
pub mod settings;
pub mod site;
pub mod startup;
pub mod static_file;
pub mod store;
pub mod track;
