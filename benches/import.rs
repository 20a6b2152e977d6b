//! The whole `tally import`: a 1,000,000-line combined log (pages, assets, pixel requests, bots,
//! errors, a few malformed lines, over a week) imported by the release binary into a fresh
//! embedded store. Prints lines per second, wall clock, from start to exit.
//!
//! `cargo bench --bench import` (the numbers go in docs/performance.md).

use std::io::Write;
use std::process::Command;
use std::time::Instant;

const LINES: usize = 1_000_000;

const AGENTS: [&str; 6] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
];
const REFERERS: [&str; 5] = [
    "-",
    "https://www.google.com/",
    "https://news.ycombinator.com/item?id=1",
    "https://bench.example/blog/",
    "https://duckduckgo.com/?q=self-hosted+analytics",
];
const ASSETS: [&str; 5] = [
    "/app.css",
    "/app.js",
    "/logo.png",
    "/fonts/a.woff2",
    "/favicon.ico",
];
const STATUSES: [u16; 8] = [200, 200, 200, 200, 200, 304, 301, 404];

fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    let log = dir.path().join("access.log");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&log).expect("the log"));
    let mut x: u64 = 42;
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as usize
    };
    for i in 0..LINES {
        let second = i * 7 * 86_400 / LINES;
        let (day, rest) = (16 + second / 86_400, second % 86_400);
        let time = format!(
            "{day:02}/Nov/2026:{:02}:{:02}:{:02} +0100",
            rest / 3600,
            rest / 60 % 60,
            rest % 60
        );
        let addr = format!("203.0.{}.{}", next() % 256, next() % 256);
        let roll = next() % 100;
        let target = match roll {
            0..=34 => ASSETS[next() % ASSETS.len()].to_owned(),
            35..=44 => format!(
                "/t.gif?site=bench&url=https%3A%2F%2Fbench.example%2Fp{}&uh=1&ud=1&sw=1920",
                next() % 200
            ),
            _ => format!("/blog/post-{}", next() % 200),
        };
        let line = if i % 10_000 == 9 {
            "not a log line".to_owned()
        } else {
            format!(
                r#"{addr} - - [{time}] "GET {target} HTTP/1.1" {} {} "{}" "{}""#,
                STATUSES[next() % STATUSES.len()],
                next() % 20_000,
                REFERERS[next() % REFERERS.len()],
                AGENTS[next() % AGENTS.len()],
            )
        };
        writeln!(out, "{line}").expect("the log is written");
    }
    out.flush().expect("the log is written");
    drop(out);
    let bytes = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);

    let tally = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tally"));
        cmd.env("TALLY_DATA_DIR", &data);
        cmd
    };
    let added = tally()
        .args([
            "site",
            "add",
            "bench",
            "--tz",
            "Europe/Berlin",
            "--host",
            "bench.example",
        ])
        .output()
        .expect("tally runs");
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );

    let started = Instant::now();
    let out = tally()
        .args(["import", "--site", "bench"])
        .arg(&log)
        .output()
        .expect("tally runs");
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    print!("{}", String::from_utf8_lossy(&out.stdout));
    println!(
        "{LINES} lines ({:.0} MB) in {elapsed:.2} s: {:.0} lines/s",
        bytes as f64 / 1e6,
        LINES as f64 / elapsed
    );
}
