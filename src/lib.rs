//! tally: self-hosted web analytics on pre-aggregated counters.
//!
//! Every tracking hit becomes `$inc` increments on small per-site, per-period documents that
//! *are* the reports. Raw hits are never stored.
//!
//! # Layout
//! The modules follow the path of a hit:
//! - [`track`]: HTTP ingest (the pixel `/t.gif`, the snippet `/t.js`) and parsing a request into
//!   a [`hit::Hit`]. Handlers validate and enqueue; they never await the store.
//! - [`hit`]: the parsed hit, with its instant already placed in the site's time zone.
//! - [`reports`]: one module per report kind: how a hit becomes counters, and how a document is
//!   read back.
//! - [`aggregate`]: the in-memory coalescer that merges increments per
//!   `(collection, document id, field)`, and the flusher that writes them as batched upserts.
//! - [`store`]: MongoDB and the embedded SQLite store, behind one small trait.
//! - [`dashboard`]: the read side served over HTTP (for now the `--demo` page).
//! - [`cli`], [`settings`], [`startup`]: the binary's commands, typed configuration, and the
//!   application wiring that tests start exactly as production does.
//!
//! Validated input lives in newtypes: [`site::SiteId`], [`field::FieldKey`], [`period::Period`].

pub mod aggregate;
pub mod cli;
pub mod dashboard;
pub mod error;
pub mod field;
pub mod hit;
pub mod metrics;
pub mod period;
pub mod reports;
pub mod settings;
pub mod site;
pub mod startup;
pub mod store;
pub mod track;
