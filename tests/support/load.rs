//! A small load generator for the reliability tests: many keep-alive HTTP/1.1 connections over
//! raw TCP, each sending pixel requests one after another and reading each answer whole, so
//! every answer's status is counted exactly (a 200 is a counted hit, a 503 a refused one) and a
//! request whose answer never came is counted as unknown.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the connections saw.
#[derive(Default, Debug)]
pub struct Counts {
    /// Requests claimed (sent or about to be).
    pub claimed: AtomicU64,
    pub ok: AtomicU64,
    /// 503: refused by tally (pending bound, shutting down).
    pub busy: AtomicU64,
    /// Any other status.
    pub other: AtomicU64,
    /// Sent, but the connection broke before a whole answer came: counted or not, unknown.
    pub unknown: AtomicU64,
    /// Stop sending.
    pub stop: AtomicBool,
}

impl Counts {
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::SeqCst)
    }
    pub fn busy(&self) -> u64 {
        self.busy.load(Ordering::SeqCst)
    }
    pub fn unknown(&self) -> u64 {
        self.unknown.load(Ordering::SeqCst)
    }
    pub fn other(&self) -> u64 {
        self.other.load(Ordering::SeqCst)
    }
}

/// The mix: `sites` sites `s0`… and `pages` pages each, in a fixed rotation.
#[derive(Clone, Copy)]
pub struct Mix {
    pub sites: usize,
    pub pages: usize,
    /// The first site's number: `s<first>`…
    pub first: usize,
}

impl Mix {
    pub fn request(&self, i: u64) -> Vec<u8> {
        let site = self.first + i as usize % self.sites;
        let page = (i as usize / self.sites) % self.pages;
        format!(
            "GET /t.gif?site=s{site}&url=%2Fp{page}&title=Page%20{page} HTTP/1.1\r\n\
             Host: tally.test\r\nUser-Agent: {}\r\n\r\n",
            super::CHROME_WIN
        )
        .into_bytes()
    }

    pub fn site_ids(&self) -> Vec<String> {
        (self.first..self.first + self.sites)
            .map(|s| format!("s{s}"))
            .collect()
    }
}

/// Sends up to `total` requests over `connections` connections (until `counts.stop`), each
/// connection pausing `pace` between requests. Returns when every connection is done.
pub async fn run(
    addr: SocketAddr,
    connections: usize,
    total: u64,
    mix: Mix,
    pace: Option<Duration>,
    counts: Arc<Counts>,
) {
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let counts = Arc::clone(&counts);
            tokio::spawn(async move { connection(addr, total, mix, pace, &counts).await })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

async fn connection(
    addr: SocketAddr,
    total: u64,
    mix: Mix,
    pace: Option<Duration>,
    counts: &Counts,
) {
    let mut stream: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(4096);
    let mut failures = 0;
    loop {
        if counts.stop.load(Ordering::SeqCst) {
            return;
        }
        if stream.is_none() {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    stream = Some(s);
                    failures = 0;
                }
                Err(_) => {
                    failures += 1;
                    if failures > 20 {
                        return; // the server is gone
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let i = counts.claimed.fetch_add(1, Ordering::SeqCst);
        if i >= total {
            counts.claimed.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        let s = stream.as_mut().expect("connected");
        if s.write_all(&mix.request(i)).await.is_err() {
            // Not sent whole: the server cannot have answered it. Nothing to count.
            counts.claimed.fetch_sub(1, Ordering::SeqCst);
            stream = None;
            continue;
        }
        match read_answer(s, &mut buf).await {
            Some((status, close)) => {
                match status {
                    200 => &counts.ok,
                    503 => &counts.busy,
                    _ => &counts.other,
                }
                .fetch_add(1, Ordering::SeqCst);
                if close {
                    stream = None;
                }
            }
            None => {
                counts.unknown.fetch_add(1, Ordering::SeqCst);
                stream = None;
            }
        }
        if let Some(pace) = pace {
            tokio::time::sleep(pace).await;
        }
    }
}

/// Reads one whole answer: its status, and whether the server closes the connection after it.
async fn read_answer(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(u16, bool)> {
    buf.clear();
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 2048];
        let n = tokio::time::timeout(Duration::from_secs(60), s.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end])
        .ok()?
        .to_ascii_lowercase();
    let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let close = head.lines().any(|l| l.starts_with("connection: close"));
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 2048];
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((status, close))
}
