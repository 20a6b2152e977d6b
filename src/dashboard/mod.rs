//! The read side served over HTTP. For now: the `--demo` page, which carries the snippet and
//! shows its own counters live, read back from the same documents any MongoDB client sees.
//!
//! Reads go through the store; this module must not write anything but the demo site.

pub mod demo;
