//! tally: self-hosted web analytics on pre-aggregated counters.
//!
//! Every tracking hit becomes `$inc` increments on small per-site, per-period documents that
//! *are* the reports. Raw hits are never stored.
//!
//! # Layout
//! The modules follow the path of a hit, and each uses only the layers below it (bottom first;
//! `tests/layers.rs` checks it on the source):
//! - [`error`], [`field`], [`period`], [`site`], [`metrics`], [`static_file`], [`import`]: the
//!   bottom. Validated newtypes ([`site::SiteId`], [`field::FieldKey`], [`period::Period`]),
//!   the metrics registry, compiled-in text, and the access-log parser.
//! - [`model`]: what a document is made of (counters read whatever their numeric type, field
//!   values, document ids); [`hit`]: the parsed hit, its instant in the site's zone.
//! - [`store`]: MongoDB and the embedded SQLite store, behind one small trait; it knows no hit
//!   and no report. [`reports`]: one module per report kind: how a hit becomes counters and
//!   how a document is read back; it never touches the store.
//! - [`aggregate`]: the in-memory coalescer that merges increments per
//!   `(collection, document id, field)`, and the flusher that writes them as batched upserts.
//!   [`retention`]: how long each resolution is kept, and the sweep that deletes the rest.
//! - [`track`]: HTTP ingest (the pixel `/t.gif`, the snippet `/t.js`, events `/e`, visit
//!   beacons `/v`): parses a request into a [`hit::Hit`], validates and enqueues; it never
//!   awaits the store.
//! - [`api`], [`dashboard`]: the read side served over HTTP.
//! - [`settings`], [`startup`], [`cli`]: typed configuration, the application wiring that tests
//!   start exactly as production does, and the binary's commands.
//! - `fuzz`, only with the `fuzz` feature (off by default): fuzz targets over every parser of
//!   outside input (run by `tests/fuzz.rs` and `scripts/fuzz.sh`, which turn the feature on).

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
pub mod model;
pub mod period;
pub mod reports;
pub mod retention;
pub mod settings;
pub mod site;
pub mod startup;
pub mod static_file;
pub mod store;
pub mod track;
