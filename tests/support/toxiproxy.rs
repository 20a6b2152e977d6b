//! Shopify's toxiproxy between tally and a FerretDB of the test's own, to break the network
//! on purpose: a server of its own on a free port (`TEST_TOXIPROXY_BIN`, installed by
//! `scripts/toxiproxy.sh`), proxies created and toxics added and removed through its HTTP API,
//! the server stopped on drop.
//!
//! Directions are toxiproxy's: [`Stream::Upstream`] is what tally sends (commands),
//! [`Stream::Downstream`] what FerretDB answers.

use super::{free_port, wait_for_port};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};

/// A toxiproxy server of a test's own.
pub struct Toxiproxy {
    api: String,
    http: reqwest::Client,
    child: Child,
}

impl Toxiproxy {
    pub async fn start() -> Toxiproxy {
        let bin = std::env::var("TEST_TOXIPROXY_BIN").unwrap_or_else(|_| {
            panic!(
                "TEST_TOXIPROXY_BIN is not set: run the tests with scripts/test.sh, which \
                 installs toxiproxy (scripts/toxiproxy.sh install) and sets it"
            )
        });
        let port = free_port();
        let child = Command::new(bin)
            .args(["-host", "127.0.0.1", "-port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("toxiproxy starts");
        let server = Toxiproxy {
            api: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            child,
        };
        wait_for_port(port).await;
        server
    }

    /// A proxy listening on a free loopback port, forwarding to `127.0.0.1:<upstream>`.
    pub async fn proxy(&self, name: &str, upstream: u16) -> Proxy {
        let port = free_port();
        let created = self
            .call(
                reqwest::Method::POST,
                "/proxies",
                json!({
                    "name": name,
                    "listen": format!("127.0.0.1:{port}"),
                    "upstream": format!("127.0.0.1:{upstream}"),
                    "enabled": true,
                }),
            )
            .await;
        assert_eq!(created["listen"], format!("127.0.0.1:{port}"), "{created}");
        wait_for_port(port).await;
        Proxy {
            name: name.to_owned(),
            port,
            api: self.api.clone(),
            http: self.http.clone(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        call(
            &self.http,
            method,
            &format!("{}{path}", self.api),
            Some(body),
        )
        .await
    }
}

impl Drop for Toxiproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One proxy of a [`Toxiproxy`] server.
pub struct Proxy {
    pub name: String,
    /// Where it listens on 127.0.0.1.
    pub port: u16,
    api: String,
    http: reqwest::Client,
}

impl Proxy {
    /// A MongoDB connection string through the proxy, with the driver's and tally's defaults.
    pub fn mongodb_uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/", self.port)
    }

    /// Adds `toxic` (its name must be new on this proxy); it acts on connections open now and
    /// on new ones.
    pub async fn add(&self, toxic: &Toxic) {
        let url = format!("{}/proxies/{}/toxics", self.api, self.name);
        let added = call(&self.http, reqwest::Method::POST, &url, Some(toxic.json())).await;
        assert_eq!(added["name"], toxic.name, "{added}");
    }

    /// Removes the toxic named `name`.
    pub async fn remove(&self, name: &str) {
        let url = format!("{}/proxies/{}/toxics/{name}", self.api, self.name);
        call(&self.http, reqwest::Method::DELETE, &url, None).await;
    }

    /// The names of the toxics on the proxy now.
    pub async fn toxics(&self) -> Vec<String> {
        let url = format!("{}/proxies/{}/toxics", self.api, self.name);
        let list = call(&self.http, reqwest::Method::GET, &url, None).await;
        list.as_array()
            .expect("a list of toxics")
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect()
    }
}

/// Sends one API call; panics with toxiproxy's answer unless it is a success.
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Value {
    let mut request = http.request(method.clone(), url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("toxiproxy's API answers");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "{method} {url}: {status} {text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}"))
    }
}

/// Which way a toxic acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Client to server: tally's commands.
    Upstream,
    /// Server to client: FerretDB's replies.
    Downstream,
}

/// A fault, as toxiproxy's API takes it.
#[derive(Clone, Debug)]
pub struct Toxic {
    pub name: String,
    pub kind: &'static str,
    pub stream: Stream,
    pub attributes: Value,
}

impl Toxic {
    fn new(kind: &'static str, stream: Stream, attributes: Value) -> Toxic {
        let direction = match stream {
            Stream::Upstream => "up",
            Stream::Downstream => "down",
        };
        Toxic {
            name: format!("{kind}_{direction}"),
            kind,
            stream,
            attributes,
        }
    }

    /// Every chunk is held `ms` milliseconds before it is passed on.
    pub fn latency(stream: Stream, ms: u64) -> Toxic {
        Toxic::new("latency", stream, json!({"latency": ms, "jitter": 0}))
    }

    /// At the first chunk, drops it, waits `ms` milliseconds, and resets the connection (a TCP
    /// RST: `SO_LINGER` 0).
    pub fn reset_peer(stream: Stream, ms: u64) -> Toxic {
        Toxic::new("reset_peer", stream, json!({"timeout": ms}))
    }

    /// Drops every chunk; closes the connection after `ms` milliseconds, or (0) never: the
    /// link stays open and silent until the toxic is removed.
    pub fn timeout(stream: Stream, ms: u64) -> Toxic {
        Toxic::new("timeout", stream, json!({"timeout": ms}))
    }

    /// At most `kb_per_s` kilobytes (1,000 bytes) a second.
    pub fn bandwidth(stream: Stream, kb_per_s: u64) -> Toxic {
        Toxic::new("bandwidth", stream, json!({"rate": kb_per_s}))
    }

    /// Chunks cut into pieces of about `average` bytes (± `variation`), `delay_us`
    /// microseconds apart.
    pub fn slicer(stream: Stream, average: u64, variation: u64, delay_us: u64) -> Toxic {
        Toxic::new(
            "slicer",
            stream,
            json!({"average_size": average, "size_variation": variation, "delay": delay_us}),
        )
    }

    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "stream": match self.stream {
                Stream::Upstream => "upstream",
                Stream::Downstream => "downstream",
            },
            "toxicity": 1.0,
            "attributes": self.attributes,
        })
    }
}
