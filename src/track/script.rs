//! `GET /t.js`: the tracking snippet, compiled into the binary.
//!
//! The source keeps its comments; what is served is the same code without whole-line comments,
//! indentation and blank lines (a third smaller gzipped), made once at start-up. Served with an
//! `ETag` (a `304` when the browser already has it) and cached for an hour, so a new version
//! reaches every visitor within an hour of an upgrade. Compression is added by the route's
//! middleware when the browser accepts it.

use crate::static_file;
use actix_web::{HttpRequest, HttpResponse};
use std::sync::OnceLock;

/// The snippet's source, with its comments.
pub const SOURCE: &str = include_str!("t.js");

/// What `/t.js` serves: [`SOURCE`] without lines that are only a comment (`// …`, or a
/// `/* … */` block starting a line), without indentation and blank lines. Comments after code
/// on the same line are kept, so no string or regular expression can be cut.
pub fn served() -> &'static str {
    static SERVED: OnceLock<String> = OnceLock::new();
    SERVED.get_or_init(|| {
        let mut out = String::with_capacity(SOURCE.len());
        let mut in_block = false;
        for line in SOURCE.lines() {
            let t = line.trim();
            if in_block {
                in_block = !t.ends_with("*/");
                continue;
            }
            if t.starts_with("/*") {
                in_block = !t.ends_with("*/");
                continue;
            }
            if t.is_empty() || t.starts_with("//") {
                continue;
            }
            out.push_str(t);
            out.push('\n');
        }
        out
    })
}

fn etag() -> &'static str {
    static ETAG: OnceLock<String> = OnceLock::new();
    ETAG.get_or_init(|| static_file::etag(served()))
}

pub async fn script(req: HttpRequest) -> HttpResponse {
    static_file::respond(
        &req,
        served(),
        etag(),
        "text/javascript; charset=utf-8",
        "public, max-age=3600",
    )
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_served_snippet_is_the_source_without_comment_lines() {
        let served = served();
        assert!(
            served.len() < SOURCE.len() * 3 / 4,
            "{} bytes",
            served.len()
        );
        assert!(!served
            .lines()
            .any(|l| l.starts_with("//") || l.starts_with("/*")));
        // Nothing is rewritten: every served line is a line of the source, trimmed.
        let source: Vec<&str> = SOURCE.lines().map(str::trim).collect();
        assert!(served.lines().all(|l| source.contains(&l)));
        // And it is still JavaScript (node is on the machines the suite runs on; the browser
        // test runs it for real).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.js");
        std::fs::write(&path, served).unwrap();
        match std::process::Command::new("node")
            .arg("--check")
            .arg(&path)
            .output()
        {
            Ok(out) => assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("node is not installed ({e}); syntax left to the browser test"),
        }
    }
}
