//! A real nginx in front of test apps, running the recipe users install,
//! `deploy/nginx/tally.conf`, with only its upstream servers, listen ports and certificate paths
//! changed (and nothing else: a line of the recipe this harness needs that has gone missing
//! fails the test that starts nginx, naming the line).
//!
//! nginx (`TEST_NGINX_BIN`, else `nginx` on the PATH, else `/usr/sbin/nginx`; scripts/test.sh
//! installs Debian's) runs as a child process in the foreground with a prefix of its own in a
//! temporary directory: its configuration, pid file, logs and temporary files are there, and
//! it listens on free loopback ports, HTTP and HTTPS, with a self-signed certificate for
//! `localhost` and `127.0.0.1` made with the `openssl` command for each start. Dropping the
//! [`Nginx`] stops it.

use super::load::Target;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;

/// The recipe, relative to the repository.
pub const RECIPE: &str = "deploy/nginx/tally.conf";

/// The recipe's text, as users copy it.
pub fn recipe() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(RECIPE);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// How nginx spreads requests over several upstreams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Balance {
    /// nginx's default: each request to the next server.
    RoundRobin,
    /// `hash $arg_site consistent;`: each site's hits to one server (docs/operations.md).
    Site,
}

/// The recipe's lines this harness replaces, each of which must be in it exactly once.
const UPSTREAM: &str = "    server 127.0.0.1:8080;\n";
const LISTEN_HTTP: &str = "    listen 80;\n";
const LISTEN_HTTP_V6: &str = "    listen [::]:80;\n";
const LISTEN_HTTPS: &str = "    listen 443 ssl http2;\n";
const LISTEN_HTTPS_V6: &str = "    listen [::]:443 ssl http2;\n";
const CERT: &str = "/etc/ssl/tally/cert.pem;";
const KEY: &str = "/etc/ssl/tally/key.pem;";

/// Where the configured recipe points.
pub struct Ports<'a> {
    pub upstreams: &'a [u16],
    pub balance: Balance,
    pub http: u16,
    pub https: u16,
    pub cert: &'a Path,
    pub key: &'a Path,
}

/// The recipe `text` pointed at `ports`: upstreams on 127.0.0.1, listening on 127.0.0.1 and
/// [::1]. Panics, naming it, when a line it replaces is not in `text` exactly once.
pub fn configure(text: &str, ports: &Ports) -> String {
    assert!(!ports.upstreams.is_empty(), "at least one upstream");
    let mut servers = String::new();
    if ports.balance == Balance::Site {
        servers.push_str("    hash $arg_site consistent;\n");
    }
    for port in ports.upstreams {
        servers.push_str(&format!("    server 127.0.0.1:{port};\n"));
    }
    let (http, https) = (ports.http, ports.https);
    let replacements = [
        (UPSTREAM, servers),
        (LISTEN_HTTP, format!("    listen 127.0.0.1:{http};\n")),
        (LISTEN_HTTP_V6, format!("    listen [::1]:{http};\n")),
        (
            LISTEN_HTTPS,
            format!("    listen 127.0.0.1:{https} ssl http2;\n"),
        ),
        (
            LISTEN_HTTPS_V6,
            format!("    listen [::1]:{https} ssl http2;\n"),
        ),
        (CERT, format!("{};", ports.cert.display())),
        (KEY, format!("{};", ports.key.display())),
    ];
    let mut text = text.to_owned();
    for (line, by) in replacements {
        let found = text.matches(line).count();
        assert_eq!(
            found,
            1,
            "{RECIPE} must have the line {:?} exactly once (found {found}): the test harness \
             and the docs rely on it",
            line.trim()
        );
        text = text.replacen(line, &by, 1);
    }
    text
}

/// A running nginx; stopped when dropped.
pub struct Nginx {
    dir: TempDir,
    child: Option<Child>,
    http: u16,
    https: u16,
}

impl Nginx {
    /// nginx in front of tally processes on `upstreams` (loopback ports), round-robin; returns
    /// once it accepts connections on both ports.
    pub async fn start(upstreams: &[u16]) -> Nginx {
        Nginx::start_with(upstreams, Balance::RoundRobin).await
    }

    pub async fn start_with(upstreams: &[u16], balance: Balance) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path();
        make_certificate(prefix);
        let (http, https) = (super::free_port(), super::free_port());
        let site = configure(
            &recipe(),
            &Ports {
                upstreams,
                balance,
                http,
                https,
                cert: &prefix.join("cert.pem"),
                key: &prefix.join("key.pem"),
            },
        );
        std::fs::write(prefix.join("tally.conf"), site).unwrap();
        std::fs::write(prefix.join("nginx.conf"), main_conf(prefix)).unwrap();
        let child = Command::new(bin())
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(prefix.join("nginx.conf"))
            .arg("-e")
            .arg(prefix.join("error.log"))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(prefix.join("stderr.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", bin().display()));
        let mut nginx = Nginx {
            dir,
            child: Some(child),
            http,
            https,
        };
        nginx.wait_until_listening().await;
        nginx
    }

    async fn wait_until_listening(&mut self) {
        for _ in 0..200 {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("nginx exited ({status}) at start: {}", self.logs());
            }
            let http = tokio::net::TcpStream::connect(self.http_addr()).await;
            let https = tokio::net::TcpStream::connect(self.https_addr()).await;
            if http.is_ok() && https.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("nginx does not listen after 10 s: {}", self.logs());
    }

    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.http))
    }

    pub fn https_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.https))
    }

    /// `http://127.0.0.1:PORT`
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    /// `https://localhost:PORT` (the certificate also names 127.0.0.1)
    pub fn https_url(&self) -> String {
        format!("https://localhost:{}", self.https)
    }

    /// The self-signed certificate (PEM) nginx serves.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    pub fn cert_pem(&self) -> Vec<u8> {
        std::fs::read(self.cert_path()).unwrap()
    }

    /// The load client's HTTP target.
    pub fn http_target(&self) -> Target {
        Target::Http(self.http_addr())
    }

    /// The load client's HTTPS target, trusting exactly this nginx's certificate.
    pub fn https_target(&self) -> Target {
        Target::https(self.https_addr(), &self.cert_pem(), "localhost")
    }

    /// The recipe as this nginx runs it.
    pub fn config(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tally.conf")).unwrap()
    }

    /// nginx's error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// The error log and what nginx wrote to stderr, for failure messages.
    pub fn logs(&self) -> String {
        let stderr = std::fs::read_to_string(self.dir.path().join("stderr.log"));
        format!(
            "nginx error log:\n{}\nnginx stderr:\n{}",
            self.error_log(),
            stderr.unwrap_or_default()
        )
    }

    /// Stops nginx (SIGTERM: the master stops its workers) and waits for it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The nginx binary: `TEST_NGINX_BIN`, else `nginx` on the PATH, else Debian's
/// `/usr/sbin/nginx` (not on a non-root PATH).
pub fn bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("TEST_NGINX_BIN") {
        return bin.into();
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("nginx"))
            .find(|candidate| candidate.is_file())
    });
    on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"))
}

/// The main configuration around the recipe: Debian's `/etc/nginx/nginx.conf` (its http
/// settings, the recipe included in its `http` block as `conf.d/*.conf` is), with everything
/// nginx writes under `prefix`.
fn main_conf(prefix: &Path) -> String {
    let p = prefix.display();
    // As root, nginx's workers would run as `nobody` and could not enter the temporary
    // directory (mode 0700) for request bodies; run them as the user the directory belongs to.
    let user = if is_root(prefix) { "user root;\n" } else { "" };
    format!(
        "{user}worker_processes auto;
pid {p}/nginx.pid;
error_log {p}/error.log;

events {{
    worker_connections 1024;
}}

http {{
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    default_type application/octet-stream;
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    access_log {p}/access.log;
    gzip on;

    client_body_temp_path {p}/client_body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;

    include {p}/tally.conf;
}}
"
    )
}

/// Whether this process runs as root: the owner of a directory it just made.
fn is_root(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).unwrap().uid() == 0
}

/// `cert.pem` and `key.pem` in `dir`: a self-signed P-256 certificate for `localhost` and
/// `127.0.0.1`, valid for two days, that is not a CA (what a TLS client accepts as a server's).
fn make_certificate(dir: &Path) {
    let config = dir.join("openssl.cnf");
    std::fs::write(
        &config,
        "[req]
distinguished_name = dn
x509_extensions = ext
prompt = no
[dn]
CN = localhost
[ext]
subjectAltName = DNS:localhost, IP:127.0.0.1
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
",
    )
    .unwrap();
    let output = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .arg("ec_paramgen_curve:prime256v1")
        .args(["-nodes", "-days", "2", "-config"])
        .arg(&config)
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("the openssl command runs (scripts/test.sh installs it)");
    assert!(
        output.status.success(),
        "openssl could not make a certificate: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
