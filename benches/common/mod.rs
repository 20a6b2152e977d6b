//! What the whole-server benches share: a real `tally serve` (the release binary) on a free
//! loopback port over a data directory, ready when `/healthz` answers, stopped with SIGTERM
//! so it writes everything before the bench reads the store.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_tally");

/// A number from the environment, or `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `tally --data-dir <data> <args>` to completion and returns its standard output.
pub fn tally(data: &str, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    /// Starts `tally serve` on `data` with `extra` options and waits until it answers.
    pub async fn start(data: &str, extra: &[&str]) -> Server {
        Self::start_bin(BIN, data, extra).await
    }

    /// The same, with the tally binary at `bin` (another build, for a side-by-side run).
    pub async fn start_bin(bin: &str, data: &str, extra: &[&str]) -> Server {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = Command::new(bin)
            .args([
                "--data-dir",
                data,
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .args(extra)
            .env("TALLY_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http.get(format!("{base}/healthz")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Server { child, base }
    }

    /// SIGTERM, and the exit: tally writes what it holds first.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "tally exited with {status}");
    }
}
