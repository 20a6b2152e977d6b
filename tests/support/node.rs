//! The real `tally serve` binary as a child process ([`Tally`]), so a test can signal it, and
//! [`Nodes`]: several of them on one store behind the suite's nginx, the scale-out users deploy
//! (docs/operations.md#scale-out).
//!
//! A node runs with the defaults a user gets; a test adds flags only where it is about them.
//! Each node's log (`RUST_LOG=info`, stderr) is a file in a temporary directory the test keeps.

use super::nginx::{Balance, Nginx};
use super::{free_port, Backend, TestStore};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;

/// A `tally serve` process of the test's own (the real binary), so it can be signalled.
pub struct Tally {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Tally {
    /// Starts `tally serve` on `store`'s data with extra `serve` flags; waits until it answers.
    pub async fn start(store: &TestStore, log_dir: &Path, name: &str, flags: &[&str]) -> Tally {
        Tally::start_with(store, log_dir, name, &[], flags).await
    }

    /// As [`Tally::start`], with `global` flags (store options such as `--mongodb-batch`)
    /// before `serve`.
    pub async fn start_with(
        store: &TestStore,
        log_dir: &Path,
        name: &str,
        global: &[&str],
        flags: &[&str],
    ) -> Tally {
        let port = free_port();
        let log = log_dir.join(format!("{name}.log"));
        let mut cmd = Command::new(bin());
        for (k, _) in std::env::vars() {
            if k.starts_with("TALLY_") {
                cmd.env_remove(k);
            }
        }
        match store.backend {
            Backend::Mongo => {
                cmd.args(["--mongodb-uri", &store.uri, "--database", &store.database]);
            }
            Backend::Embedded => {
                cmd.arg("--data-dir")
                    .arg(store.dir.as_ref().unwrap().path());
            }
        }
        // The defaults: the load's visitors come through X-Forwarded-For from loopback.
        cmd.args(global)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(flags)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let child = cmd.spawn().expect("tally starts");
        let mut tally = Tally { child, port, log };
        let http = reqwest::Client::new();
        for _ in 0..600 {
            let ready = http
                .get(format!("http://127.0.0.1:{port}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return tally;
            }
            if let Ok(Some(status)) = tally.child.try_wait() {
                panic!("tally exited ({status}) at start: {}", tally.log_text());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("tally did not start: {}", tally.log_text());
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What the process logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; returns whether it exited successfully, and its log.
    pub async fn exit(mut self) -> (bool, String) {
        for _ in 0..1200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.success(), self.log_text());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        panic!("tally did not exit within 60 s");
    }

    /// SIGTERM, then waits: whether it exited cleanly, and its log.
    pub async fn stop(self) -> (bool, String) {
        self.signal("TERM");
        self.exit().await
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `tally` binary: `TEST_TALLY_BIN` (a binary of this checkout's own, when the target
/// directory is shared with other checkouts whose builds replace `target/debug/tally`), else
/// the one cargo built for this test.
pub fn bin() -> PathBuf {
    std::env::var_os("TEST_TALLY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_tally")))
}

/// Several `tally serve` processes on one store behind nginx running `deploy/nginx/tally.conf`.
pub struct Nodes {
    /// The nodes, in the order of nginx's `server` lines; `None` once stopped.
    pub nodes: Vec<Option<Tally>>,
    pub nginx: Nginx,
    /// The nodes' logs.
    pub logs: TempDir,
}

impl Nodes {
    /// `n` nodes `node0`… on `store` with `flags`, behind nginx balancing by `balance`.
    pub async fn start(store: &TestStore, n: usize, balance: Balance, flags: &[&str]) -> Nodes {
        Nodes::start_each(store, n, balance, |_| {
            flags.iter().map(|f| f.to_string()).collect()
        })
        .await
    }

    /// As [`Nodes::start`], with node `i`'s flags from `flags(i)` (e.g. a durable directory
    /// each).
    pub async fn start_each(
        store: &TestStore,
        n: usize,
        balance: Balance,
        flags: impl Fn(usize) -> Vec<String>,
    ) -> Nodes {
        let logs = tempfile::tempdir().unwrap();
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let name = format!("node{i}");
            let flags = flags(i);
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            // On MongoDB the data directory holds only the writer identity: one per node, as
            // on separate machines (the embedded store's nodes share the store's).
            let data = logs
                .path()
                .join(format!("{name}-data"))
                .display()
                .to_string();
            let global: &[&str] = match store.backend {
                Backend::Mongo => &["--data-dir", &data],
                Backend::Embedded => &[],
            };
            let tally = Tally::start_with(store, logs.path(), &name, global, &flags).await;
            nodes.push(Some(tally));
        }
        let ports: Vec<u16> = nodes.iter().flatten().map(|t| t.port).collect();
        let nginx = Nginx::start_with(&ports, balance).await;
        Nodes { nodes, nginx, logs }
    }

    /// Node `i` (panics when stopped).
    pub fn node(&self, i: usize) -> &Tally {
        self.nodes[i].as_ref().expect("a running node")
    }

    /// The running nodes' ports, as nginx's `server` lines have them.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().flatten().map(|t| t.port).collect()
    }

    /// Stops node `i` with SIGTERM and waits for it: whether it exited cleanly, and its log.
    pub async fn stop(&mut self, i: usize) -> (bool, String) {
        let tally = self.nodes[i].take().expect("a running node");
        tally.stop().await
    }

    /// Kills node `i` with SIGKILL and waits for it to be gone.
    pub async fn kill(&mut self, i: usize) {
        let tally = self.nodes[i].take().expect("a running node");
        tally.signal("KILL");
        let _ = tally.exit().await;
    }

    /// Stops every running node (SIGTERM) and asserts each exits cleanly.
    pub async fn stop_all(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].is_some() {
                let (clean, log) = self.stop(i).await;
                assert!(clean, "node{i} exits cleanly after SIGTERM: {log}");
            }
        }
    }
}
