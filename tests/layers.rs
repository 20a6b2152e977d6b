//! The module rules of docs/architecture.md, checked on the source: every top-level module of
//! `src/` (a file or folder directly under it) sits in a layer, and uses only modules of the
//! layers below its own. So no two modules import each other, and a hit's flow (track → hit →
//! reports → aggregate → store) is the only way the dependencies point.
//!
//! A use is any `crate::<module>` path in code (a `use` line, or a path written inline), also
//! the names in `crate::{a, b}`; comments are left out. A new top-level module must be given a
//! layer here and in docs/architecture.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest first. A module may use the modules of lower layers, never its own layer's or a
/// higher one's.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "the bottom: validated newtypes, counters and errors, pure parsers",
        &[
            "error",
            "field",
            "import",
            "metrics",
            "period",
            "site",
            "static_file",
        ],
    ),
    (
        "the shared document model, and the parsed hit",
        &["model", "hit"],
    ),
    (
        "the store (no hits, no reports), and the reports (no store, no HTTP)",
        &["store", "reports"],
    ),
    (
        "the coalescer and flusher, and retention",
        &["aggregate", "retention"],
    ),
    ("HTTP ingest", &["track"]),
    ("the read side", &["api", "dashboard"]),
    ("typed configuration", &["settings"]),
    ("the application wiring", &["startup"]),
    ("the binary's commands", &["cli"]),
    ("fuzz targets (the `fuzz` feature)", &["fuzz"]),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`None` for `lib.rs` and `main.rs`).
fn module_of(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src()).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    match first.strip_suffix(".rs") {
        Some("lib" | "main") => None,
        Some(name) => Some(name.to_owned()),
        None => Some(first),
    }
}

/// The top-level modules a line of code names after `crate::`.
fn used(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or("");
            for item in inner.split(',') {
                let name = item.trim().split("::").next().unwrap_or("").trim();
                if !name.is_empty() {
                    out.push(name.to_owned());
                }
            }
        } else {
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
        rest = after;
    }
    out
}

/// module → module it uses → the files that use it.
fn graph() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let tops: BTreeSet<String> = files.iter().filter_map(|f| module_of(f)).collect();
    let mut graph: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in &files {
        let Some(from) = module_of(file) else {
            continue;
        };
        let rel = file.strip_prefix(src()).unwrap().display().to_string();
        let text = std::fs::read_to_string(file).unwrap();
        for line in text.lines() {
            for to in used(line) {
                if to != from && tops.contains(&to) {
                    graph
                        .entry(from.clone())
                        .or_default()
                        .entry(to)
                        .or_default()
                        .insert(rel.clone());
                }
            }
        }
    }
    graph
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

#[test]
fn every_module_uses_only_the_layers_below_its_own() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let tops: BTreeSet<String> = files.iter().filter_map(|f| module_of(f)).collect();
    let unplaced: Vec<_> = tops.iter().filter(|m| layer_of(m).is_none()).collect();
    assert!(
        unplaced.is_empty(),
        "give these modules a layer in tests/layers.rs and docs/architecture.md: {unplaced:?}"
    );
    let mut wrong = Vec::new();
    for (from, uses) in graph() {
        let own = layer_of(&from).unwrap();
        for (to, files) in uses {
            let theirs = layer_of(&to).unwrap();
            if theirs >= own {
                wrong.push(format!(
                    "{from} ({}) uses {to} ({}) in {files:?}",
                    LAYERS[own].0, LAYERS[theirs].0
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies must point down:\n{}",
        wrong.join("\n")
    );
}

/// The rules docs/architecture.md states in words, named so that a failure says which.
#[test]
fn the_stated_rules_hold() {
    let graph = graph();
    let uses = |from: &str, to: &str| {
        graph
            .get(from)
            .and_then(|u| u.get(to))
            .cloned()
            .unwrap_or_default()
    };
    for (from, not, why) in [
        ("store", "hit", "the store knows nothing of hits"),
        ("store", "reports", "the store knows nothing of reports"),
        (
            "reports",
            "store",
            "reports say what to increment, never write it",
        ),
        ("reports", "aggregate", "reports do not know the coalescer"),
        ("reports", "track", "reports know nothing of HTTP ingest"),
        (
            "reports",
            "api",
            "reports know nothing of the read side's HTTP",
        ),
        ("aggregate", "track", "the write path does not know ingest"),
        (
            "aggregate",
            "api",
            "the write path does not know the read side",
        ),
        ("hit", "track", "a hit does not know how it was parsed"),
        ("hit", "reports", "a hit does not know how it is counted"),
        (
            "settings",
            "cli",
            "settings sit below the commands that parse them",
        ),
    ] {
        let files = uses(from, not);
        assert!(files.is_empty(), "{from} uses {not} in {files:?}: {why}");
    }
}

#[test]
fn the_reader_of_uses_finds_every_form() {
    assert_eq!(used("use crate::store::{Store, StoreError};"), ["store"]);
    assert_eq!(
        used("use crate::{period::Period, site};"),
        ["period", "site"]
    );
    assert_eq!(
        used("    let n = crate::model::number(x); // crate::api"),
        ["model"]
    );
    assert!(used("/// see [`crate::reports`]").is_empty());
}

/// Every file of `src/` (Rust, JavaScript, CSS, HTML) is at most this long: a file past it is
/// doing more than one thing (STYLE.md: split before about 500).
const MAX_LINES: usize = 600;

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn every_file_is_small_and_every_module_says_what_it_owns() {
    let mut files = Vec::new();
    all_files(&src(), &mut files);
    let mut long = Vec::new();
    let mut silent = Vec::new();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue; // a binary file (none today)
        };
        let rel = file.strip_prefix(src()).unwrap().display().to_string();
        let lines = text.lines().count();
        if lines > MAX_LINES {
            long.push(format!("{rel}: {lines} lines"));
        }
        if file.extension().is_some_and(|e| e == "rs") && !text.starts_with("//!") {
            silent.push(rel);
        }
    }
    assert!(
        long.is_empty(),
        "split these by responsibility (at most {MAX_LINES} lines): {long:?}"
    );
    assert!(
        silent.is_empty(),
        "give these a `//!` header saying what they own and must not do: {silent:?}"
    );
}
