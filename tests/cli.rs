//! The `tally` binary as an operator uses it: site commands, `doc`, `serve` with signals, the
//! embedded store shared between a running server and the CLI, and `--demo`.

mod support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// `tally` with a clean environment: only the settings a test gives.
fn tally(store: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tally"));
    for (k, _) in std::env::vars() {
        if k.starts_with("TALLY_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(store.iter().map(|(k, v)| (*k, v.as_str())));
    cmd
}

fn run(store: &[(&str, String)], args: &[&str]) -> Output {
    tally(store).args(args).output().expect("tally runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn embedded_env(dir: &Path) -> Vec<(&'static str, String)> {
    vec![("TALLY_DATA_DIR", dir.display().to_string())]
}

fn mongo_env() -> Vec<(&'static str, String)> {
    vec![
        ("TALLY_MONGODB_URI", mongodb_uri()),
        ("TALLY_DATABASE", unique_database("cli")),
    ]
}

fn env_for(backend: Backend, dir: &Path) -> Vec<(&'static str, String)> {
    match backend {
        Backend::Mongo => mongo_env(),
        Backend::Embedded => embedded_env(dir),
    }
}

async fn site_commands(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(backend, dir.path());

    let out = run(
        &env,
        &[
            "site",
            "add",
            "acme",
            "--tz",
            "Pacific/Kiritimati",
            "--name",
            "Acme",
            "--host",
            "acme.example",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains(r#"data-site="acme""#), "{stdout}");
    assert!(
        stdout.contains(r#"data-tz="Pacific/Kiritimati""#),
        "{stdout}"
    );

    let out = run(&env, &["site", "add", "acme", "--tz", "UTC"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("already exists"));

    let out = run(&env, &["site", "add", "Not_Valid", "--tz", "UTC"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("Not_Valid"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&env, &["site", "add", "beta", "--tz", "Mars/Olympus_Mons"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("Mars/Olympus_Mons"));

    let out = run(&env, &["site", "list"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("acme")
            && stdout.contains("Pacific/Kiritimati")
            && !stdout.contains("beta")
    );

    let out = run(&env, &["site", "show", "acme"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("acme.example"));

    let out = run(&env, &["doc", "sites", "acme"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["_id"], "acme");
    assert_eq!(json["tz"], "Pacific/Kiritimati");

    let out = run(&env, &["doc", "traffic.2011", "acme:2011-06"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no document"));

    // update: given options replace, others stay
    let out = run(
        &env,
        &[
            "site",
            "update",
            "acme",
            "--keep-param",
            "id",
            "--keep-param",
            "page",
            "--host",
            "acme.example",
            "--host",
            "www.acme.example",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&env, &["doc", "sites", "acme"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["keep_params"], serde_json::json!(["id", "page"]));
    assert_eq!(
        json["hosts"],
        serde_json::json!(["acme.example", "www.acme.example"])
    );
    assert_eq!(json["tz"], "Pacific/Kiritimati");
    assert_eq!(json["name"], "Acme");
    let out = run(&env, &["site", "update", "acme", "--clear-keep-params"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("keep params: \n"),
        "{}",
        text(&out.stdout)
    );
    let out = run(&env, &["site", "update", "nosuch", "--name", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no site"));
    let out = run(&env, &["site", "update", "acme", "--keep-param", "a&b"]);
    assert_eq!(out.status.code(), Some(2));

    // Read tokens: printed once, only a hash kept; public on and off; revoked.
    let out = run(&env, &["site", "token", "acme"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_owned();
    assert!(token.starts_with("tly_") && token.len() == 36, "{token}");
    assert!(text(&out.stderr).contains(&format!("#token={token}")));
    let doc = text(&run(&env, &["doc", "sites", "acme"]).stdout);
    assert!(
        !doc.contains(&token[4..]),
        "the token itself is not stored: {doc}"
    );
    let json: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(json["tokens"][0]["hash"], tally::api::token::hash(&token));
    assert_eq!(json["public"], false);
    assert!(run(&env, &["site", "public", "acme", "on"])
        .status
        .success());
    let json: serde_json::Value =
        serde_json::from_slice(&run(&env, &["doc", "sites", "acme"]).stdout).unwrap();
    assert_eq!(json["public"], true);
    assert_eq!(
        run(&env, &["site", "public", "acme", "maybe"])
            .status
            .code(),
        Some(2)
    );
    let out = run(&env, &["site", "revoke-token", "acme", "tly_notatoken"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(run(&env, &["site", "revoke-token", "acme", &token])
        .status
        .success());
    let json: serde_json::Value =
        serde_json::from_slice(&run(&env, &["doc", "sites", "acme"]).stdout).unwrap();
    assert_eq!(json["tokens"], serde_json::json!([]));
}

/// A real `tally serve` process: hits, then SIGTERM; every accepted hit is in the store after
/// it exits, and `tally doc` prints the counters as plain JSON numbers.
async fn serve_writes_everything_on_sigterm(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(backend, dir.path());
    assert!(run(&env, &["site", "add", "acme", "--tz", "Europe/Berlin"])
        .status
        .success());
    let server = Server::start(&env, &["--flush-interval-ms", "60000"]).await;
    let http = reqwest::Client::new();
    for _ in 0..7 {
        let r = http
            .get(format!("{}/t.gif?site=acme&um=1", server.address))
            .header("User-Agent", CHROME_WIN)
            .send()
            .await
            .unwrap();
        assert_pixel(r).await;
    }
    let status = server.terminate();
    assert!(status.success(), "serve exits cleanly on SIGTERM");

    let local = tally::period::LocalTime::at(chrono::Utc::now(), chrono_tz::Europe::Berlin);
    let out = run(
        &env,
        &[
            "doc",
            &format!("technology.{}", local.year),
            &format!("acme:{}", local.month_period()),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["b"]["chrome"]["131-0"], 7, "{json}");
    assert_eq!(json["p"]["windows"], 7);
}

both_stores!(site_commands, serve_writes_everything_on_sigterm);

/// While `serve` holds the embedded store, the CLI still works: it reads, and a site it adds
/// starts counting after the next site refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_works_while_serve_holds_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let env = embedded_env(dir.path());
    assert!(run(&env, &["site", "add", "acme", "--tz", "UTC"])
        .status
        .success());
    let server = Server::start(
        &env,
        &["--flush-interval-ms", "100", "--site-refresh-secs", "1"],
    )
    .await;

    let started = Instant::now();
    let out = run(&env, &["site", "add", "beta", "--tz", "Asia/Tokyo"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "no waiting on the server"
    );
    let out = run(&env, &["site", "list"]);
    assert!(text(&out.stdout).contains("beta"));

    tokio::time::sleep(Duration::from_millis(1500)).await; // one site refresh
    let http = reqwest::Client::new();
    http.get(format!("{}/t.gif?site=beta", server.address))
        .header("User-Agent", FIREFOX_MAC)
        .send()
        .await
        .unwrap();
    let local = tally::period::LocalTime::at(chrono::Utc::now(), chrono_tz::Asia::Tokyo);
    let (coll, id) = (
        format!("traffic.{}", local.year),
        format!("beta:{}", local.month_period()),
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let out = run(&env, &["doc", &coll, &id]);
        if out.status.success() {
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(json["v"], 1);
            break;
        }
        assert!(Instant::now() < deadline, "{}", text(&out.stderr));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(server.terminate().success());
}

/// `serve --demo` creates the site `demo`, serves a page carrying the snippet, and shows the
/// page's own views.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_mode_counts_its_own_page() {
    let dir = tempfile::tempdir().unwrap();
    let env = embedded_env(dir.path());
    let server = Server::start(&env, &["--demo", "--flush-interval-ms", "100"]).await;
    let http = reqwest::Client::new();
    let page = http
        .get(format!("{}/demo", server.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"src="/t.js" data-site="demo""#), "{html}");
    for _ in 0..3 {
        http.get(format!("{}/t.gif?site=demo&ud=1", server.address))
            .header("User-Agent", SAFARI_IPHONE)
            .send()
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let stats: serde_json::Value = http
            .get(format!("{}/demo/stats", server.address))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if stats["today"]["views"] == 3 {
            assert_eq!(stats["today"]["people"], 3);
            assert_eq!(stats["technology"]["platforms"][0][0], "ios");
            break;
        }
        assert!(Instant::now() < deadline, "{stats}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(server.terminate().success());
    let out = run(&env, &["site", "show", "demo"]);
    assert!(out.status.success());
}

/// The README's run command (`serve --demo`, no other setting) looks countries up in the
/// built-in database; `--geoip-db none` turns that off; a file that is not there stops
/// `serve` with its path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_command_has_countries_and_none_turns_them_off() {
    let dir = tempfile::tempdir().unwrap();
    let env = embedded_env(dir.path());
    assert!(run(&env, &["site", "add", "acme", "--tz", "Europe/Berlin"])
        .status
        .success());
    let http = reqwest::Client::new();
    // From loopback, a trusted proxy by default: the visitor is the forwarded address.
    let hit = |address: &str, forwarded: Option<&'static str>| {
        let mut request = http
            .get(format!("{address}/t.gif?site=acme"))
            .header("User-Agent", CHROME_WIN);
        if let Some(ip) = forwarded {
            request = request.header("X-Forwarded-For", ip);
        }
        request.send()
    };
    let locations = || {
        let local = tally::period::LocalTime::at(chrono::Utc::now(), chrono_tz::Europe::Berlin);
        let collection = format!("locations.{}", local.year);
        let out = run(
            &env,
            &[
                "doc",
                &collection,
                &format!("acme:{}", local.month_period()),
            ],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["c"].clone()
    };

    let server = Server::start(&env, &["--demo"]).await;
    assert_pixel(hit(&server.address, Some("8.8.8.8")).await.unwrap()).await;
    assert_pixel(hit(&server.address, None).await.unwrap()).await;
    assert!(server.terminate().success());
    assert_eq!(locations(), serde_json::json!({"US": 1, "unknown": 1}));

    let server = Server::start(&env, &["--geoip-db", "none"]).await;
    assert_pixel(hit(&server.address, Some("8.8.8.8")).await.unwrap()).await;
    assert!(server.terminate().success());
    assert_eq!(locations(), serde_json::json!({"US": 1, "unknown": 1}));

    let missing = run(
        &env,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--geoip-db",
            "/nonexistent/geo.mmdb",
        ],
    );
    assert!(!missing.status.success());
    assert!(
        text(&missing.stderr).contains("/nonexistent/geo.mmdb"),
        "{}",
        text(&missing.stderr)
    );
    let empty = run(&env, &["serve", "--geoip-db", ""]);
    assert_eq!(empty.status.code(), Some(2), "{}", text(&empty.stderr));
}

/// `--log-format json`: one JSON object per line, with the request log carrying method, path,
/// status and latency, and never the query string or the visitor's User-Agent.
#[test]
fn json_logs_without_personal_data() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let env = embedded_env(dir.path());
    assert!(run(&env, &["site", "add", "acme", "--tz", "UTC"])
        .status
        .success());
    let mut child = tally(&env)
        .args([
            "--log-format",
            "json",
            "--log",
            "info",
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok);
    // Every line is a JSON object; the one that matters says where tally listens.
    let addr = loop {
        let line = lines.next().expect("tally logs that it listens");
        let log: serde_json::Value = serde_json::from_str(&line).unwrap();
        if log["fields"]["message"] == "tally is listening" {
            break log["fields"]["addr"].as_str().unwrap().to_owned();
        }
    };
    let agent = "Mozilla/5.0 (X11; Linux x86_64) SecretBrowser/1.0";
    let ok = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-A", agent])
        .arg(format!("http://{addr}/api/v1/sites/acme/summary?secret=1"))
        .status();
    if ok.is_err() {
        let _ = child.kill();
        let _ = child.wait();
        eprintln!("curl is not installed; the request log line is not checked");
        return;
    }
    let line = lines
        .find(|l| l.contains("\"request\""))
        .expect("the request is logged");
    let _ = child.kill();
    let _ = child.wait();
    let log: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(log["fields"]["status"], 401, "{log}");
    assert!(log["fields"]["ms"].is_number(), "{log}");
    assert_eq!(
        log["spans"][0]["path"], "/api/v1/sites/acme/summary",
        "{log}"
    );
    for private in ["secret", "SecretBrowser", "127.0.0.1"] {
        assert!(!line.contains(private), "{private} in {line}");
    }
}

/// Listening beyond loopback with the default proxy trust, `serve` logs once which networks it
/// trusts as proxies; on loopback, or with `--trust-proxy` set, it says nothing of it.
#[test]
fn the_default_proxy_trust_is_logged_when_listening_beyond_loopback() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let env = embedded_env(dir.path());
    // The log lines of `serve` with `args` in its first second after it listens.
    let startup = |args: &[&str]| -> Vec<serde_json::Value> {
        let mut child = tally(&env)
            .args(["--log-format", "json", "--log", "info", "serve"])
            .args(args)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Ok(log) = serde_json::from_str::<serde_json::Value>(&line) {
                    let _ = tx.send(log);
                }
            }
        });
        let mut logs = Vec::new();
        let mut deadline = std::time::Instant::now() + Duration::from_secs(10);
        while let Ok(log) =
            rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            if log["fields"]["message"] == "tally is listening" {
                deadline = std::time::Instant::now() + Duration::from_secs(1);
            }
            logs.push(log);
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            logs.iter()
                .any(|l| l["fields"]["message"] == "tally is listening"),
            "{logs:?}"
        );
        logs
    };
    let trusted = |logs: &[serde_json::Value]| -> Vec<String> {
        logs.iter()
            .filter_map(|l| l["fields"]["trusted"].as_str().map(str::to_owned))
            .collect()
    };
    let wide = startup(&["--listen", "0.0.0.0:0"]);
    assert_eq!(
        trusted(&wide),
        ["127.0.0.0/8, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 169.254.0.0/16, ::1/128, fc00::/7, fe80::/10"],
        "{wide:?}"
    );
    assert!(trusted(&startup(&["--listen", "127.0.0.1:0"])).is_empty());
    let explicit = startup(&["--listen", "0.0.0.0:0", "--trust-proxy", "10.1.0.0/16"]);
    assert!(trusted(&explicit).is_empty(), "{explicit:?}");
}

#[test]
fn unknown_settings_are_refused() {
    let out = tally(&[("TALLY_FLUSH_INTERVAL", "5".into())])
        .args(["site", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("TALLY_FLUSH_INTERVAL") && stderr.contains("TALLY_FLUSH_INTERVAL_MS"),
        "{stderr}"
    );

    let out = tally(&[("TALLY_FLUSH_INTERVAL_MS", "soon".into())])
        .args(["serve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("soon"));
}

/// A `tally serve` child process on port 0; its address is read from its start-up log line.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    async fn start(env: &[(&str, String)], args: &[&str]) -> Server {
        let mut child = tally(env)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tally serve starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut sent = false;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if !sent {
                    if let Some(addr) = line.split("addr=").nth(1) {
                        let addr = addr.split_whitespace().next().unwrap_or("").to_owned();
                        let _ = tx.send(addr);
                        sent = true;
                    }
                }
            }
        });
        let addr = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(10)))
            .await
            .unwrap()
            .expect("tally serve logs its address");
        Server {
            child,
            address: format!("http://{addr}"),
        }
    }

    /// Sends SIGTERM and waits for the exit.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
