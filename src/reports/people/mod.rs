//! People: distinct visitors counted with HyperLogLog sketches kept in documents.
//!
//! This module must not touch the store or the coalescer.

pub mod sketch;
