//! The read side served over HTTP: the dashboard at `/` ([`app`], static files over the JSON
//! API), and the `--demo` page, which carries the snippet and shows its own counters live.
//!
//! Reads go through the store or the API; this module must not write anything but the demo
//! site.

pub mod app;
pub mod demo;
