//! A small load generator for the reliability and proxy tests: many keep-alive HTTP/1.1
//! connections over raw TCP (or TLS), each sending requests one after another and reading each
//! answer whole, so every answer's status is counted exactly (a 2xx is a counted request, a 429
//! a rate-limited one, a 503 a refused one) and a request whose answer never came is counted as
//! unknown.
//!
//! Requests look like browsers': each carries a User-Agent from a pool of real browsers and a
//! public client address in `X-Forwarded-For`, from a deterministic pool spread over address
//! blocks of every region, so the rate limit sees many visitors and a country database knows
//! where they are. [`Mix`] says which request number `i` is, so a test can compute what it
//! expects from the same functions.

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// What the connections saw.
#[derive(Default, Debug)]
pub struct Counts {
    /// Requests claimed (sent or about to be).
    pub claimed: AtomicU64,
    /// 2xx: 200 (the pixel), 202 (events), 204 (visit beacons).
    pub ok: AtomicU64,
    /// 429: over the rate limit.
    pub limited: AtomicU64,
    /// 503: refused by tally (pending bound, shutting down).
    pub busy: AtomicU64,
    /// Any other status.
    pub other: AtomicU64,
    /// The first other status seen (0: none), for failure messages.
    pub first_other: AtomicU64,
    /// Sent, but the connection broke before a whole answer came: counted or not, unknown.
    pub unknown: AtomicU64,
    /// Stop sending.
    pub stop: AtomicBool,
}

impl Counts {
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::SeqCst)
    }
    pub fn limited(&self) -> u64 {
        self.limited.load(Ordering::SeqCst)
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

    fn answered(&self, status: u16) {
        match status {
            200..=299 => &self.ok,
            429 => &self.limited,
            503 => &self.busy,
            _ => {
                let _ = self.first_other.compare_exchange(
                    0,
                    u64::from(status),
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                );
                &self.other
            }
        }
        .fetch_add(1, Ordering::SeqCst);
    }
}

/// What one request of a [`Mix`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `GET /t.gif?site=&url=&title=`: a page view; answered 200.
    View,
    /// A page view with `vp=1`: the first page of a visit (engagement `v`, `p.1`, `t.0-3s`);
    /// answered 200.
    Landing,
    /// `POST /e` with one JSON event, `signup` with value [`EVENT_VALUE`] and `plan: pro`;
    /// answered 202.
    Event,
    /// `GET /v?site=&vd=5000&pvd=0`: a visit-duration beacon moving a visit from `t.0-3s` to
    /// `t.3-10s`; answered 204.
    Beacon,
}

impl Kind {
    /// A page view, counted in traffic, content, technology (and locations).
    pub fn is_view(self) -> bool {
        matches!(self, Kind::View | Kind::Landing)
    }
}

/// The value of every [`Kind::Event`].
pub const EVENT_VALUE: i64 = 2;

/// The mix: `sites` sites `s<first>`…, `pages` pages each, requests of `kinds` in rotation,
/// from `addresses` client addresses of [`address`] with `agents` User-Agents of [`AGENTS`].
///
/// Request `i` goes to site `first + i % sites`; its round `r = i / sites` picks its kind
/// (`kinds[r % kinds.len()]`) and its page (`r / kinds.len() % pages`), so every site gets the
/// same sequence. It comes from address `i % addresses` with agent `i / addresses % agents`:
/// an address sends with each of its agents in turn, as the people behind one address do.
#[derive(Clone, Copy, Debug)]
pub struct Mix {
    pub sites: usize,
    pub pages: usize,
    /// The first site's number: `s<first>`…
    pub first: usize,
    pub kinds: &'static [Kind],
    /// Client addresses (1..); the first `addresses` of [`address`].
    pub addresses: usize,
    /// User-Agents (1..=50); the first `agents` of [`AGENTS`].
    pub agents: usize,
}

impl Mix {
    /// Page views only, of one site and page, from 4,096 addresses with six browsers each: under
    /// the default per-address and per-browser rate limits for a million requests at full speed.
    pub const VIEWS: Mix = Mix {
        sites: 1,
        pages: 1,
        first: 0,
        kinds: &[Kind::View],
        addresses: 4096,
        agents: 6,
    };

    pub fn site(&self, i: u64) -> usize {
        self.first + i as usize % self.sites
    }

    fn round(&self, i: u64) -> usize {
        i as usize / self.sites
    }

    pub fn kind(&self, i: u64) -> Kind {
        self.kinds[self.round(i) % self.kinds.len()]
    }

    pub fn page(&self, i: u64) -> usize {
        self.round(i) / self.kinds.len() % self.pages
    }

    pub fn address(&self, i: u64) -> IpAddr {
        address(i as usize % self.addresses)
    }

    pub fn agent(&self, i: u64) -> &'static str {
        AGENTS[i as usize / self.addresses % self.agents.min(AGENTS.len())]
    }

    /// Request `i`, written into `out` (cleared first); allocates only if `out` must grow.
    pub fn write_request(&self, i: u64, out: &mut Vec<u8>) {
        out.clear();
        let (site, page) = (self.site(i), self.page(i));
        let kind = self.kind(i);
        let mut w = Bytes(out);
        let _ = match kind {
            Kind::View | Kind::Landing => write!(
                w,
                "GET /t.gif?site=s{site}&url=%2Fp{page}&title=Page%20{page}{} HTTP/1.1\r\n",
                if kind == Kind::Landing { "&vp=1" } else { "" }
            ),
            Kind::Beacon => write!(w, "GET /v?site=s{site}&vd=5000&pvd=0 HTTP/1.1\r\n"),
            Kind::Event => write!(w, "POST /e HTTP/1.1\r\n"),
        };
        let _ = write!(
            w,
            "Host: tally.test\r\nUser-Agent: {}\r\nX-Forwarded-For: {}\r\n",
            self.agent(i),
            self.address(i)
        );
        if kind == Kind::Event {
            let mut length = Length(0);
            let _ = event_body(&mut length, site);
            let _ = write!(
                w,
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                length.0
            );
            let _ = event_body(&mut w, site);
        } else {
            let _ = w.write_str("\r\n");
        }
    }

    /// Request `i` as a new buffer.
    pub fn request(&self, i: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        self.write_request(i, &mut out);
        out
    }

    pub fn site_ids(&self) -> Vec<String> {
        (self.first..self.first + self.sites)
            .map(|s| format!("s{s}"))
            .collect()
    }
}

/// The JSON body of a [`Kind::Event`] for site `s<site>`.
fn event_body(w: &mut impl Write, site: usize) -> std::fmt::Result {
    write!(
        w,
        r#"{{"site":"s{site}","name":"signup","value":{EVENT_VALUE},"props":{{"plan":"pro"}}}}"#
    )
}

/// Text written into bytes.
struct Bytes<'a>(&'a mut Vec<u8>);

impl Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Counts the bytes written through it.
struct Length(usize);

impl Write for Length {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// Real browsers' User-Agents, none of them a crawler's: the six of `tests/support` first.
pub const AGENTS: [&str; 50] = [
    super::CHROME_WIN,
    super::FIREFOX_MAC,
    super::SAFARI_IPHONE,
    super::CHROME_ANDROID,
    super::EDGE_WIN,
    super::SAFARI_IPAD,
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0",
    "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15",
    "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S908B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
    "Mozilla/5.0 (Linux; Android 12; M2101K6G) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 11; Redmi Note 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 OPR/86.0.0.0",
    "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.0.0",
    "Mozilla/5.0 (Linux; U; Android 12; zh-CN; V2134A Build/SP1A.210812.003) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/100.0.4896.58 UCBrowser/17.0.6.1322 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 9; SM-J730F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Vivaldi/7.0.3495.18",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) YaBrowser/24.10.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0",
    "Mozilla/5.0 (X11; Linux aarch64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
];

/// First octets of IPv4 blocks in public use, allocated by every regional registry (ARIN,
/// RIPE, APNIC, LACNIC, AFRINIC); none is private, shared, documentation or reserved space.
/// (The test run's country database knows over 99% of the pool's addresses.)
const V4_BLOCKS: [u8; 50] = [
    8, 24, 50, 66, 73, 98, 104, 142, 174, // ARIN
    31, 46, 62, 77, 81, 88, 91, 94, 109, 134, 141, 176, 178, 185, 188, 193, 195, 212,
    217, // RIPE
    1, 14, 27, 36, 42, 49, 58, 101, 110, 116, 119, 121, 124, // APNIC
    177, 179, 186, 190, 200, 201, // LACNIC
    41, 105, 197, // AFRINIC
];

/// IPv6 /32s in use, of every registry (their first two groups).
const V6_BLOCKS: [[u16; 2]; 16] = [
    [0x2a01, 0x0e00], // RIPE
    [0x2a02, 0x8108],
    [0x2a00, 0x1450],
    [0x2a02, 0x06b8],
    [0x2a02, 0x0810],
    [0x2601, 0x0000], // ARIN
    [0x2607, 0xf8b0],
    [0x2600, 0x3c00],
    [0x240e, 0x0000], // APNIC
    [0x2401, 0x4900],
    [0x2400, 0x4000],
    [0x2403, 0x5800],
    [0x2804, 0x014c], // LACNIC
    [0x2806, 0x0000],
    [0x2800, 0x0040],
    [0x2001, 0x4200], // AFRINIC
];

/// The `k`-th client address of the pool: distinct for every `k`, public, spread over the
/// blocks above (one in eight an IPv6 address, each in a /64 of its own).
pub fn address(k: usize) -> IpAddr {
    // A bijection on 0..M: distinct k give distinct addresses.
    const M: u64 = 256 * 256 * 254;
    let s = (k as u64 % M * 2_654_435_761 + 7_654_321) % M;
    if k % 8 == 7 {
        let [a, b] = V6_BLOCKS[k / 8 % V6_BLOCKS.len()];
        let n = (k / 8 / V6_BLOCKS.len()) as u64;
        return IpAddr::V6(Ipv6Addr::new(
            a,
            b,
            (s >> 8) as u16,
            n as u16,
            0,
            0,
            0,
            1 + (s % 0xfffe) as u16,
        ));
    }
    let block = V4_BLOCKS[k % V4_BLOCKS.len()];
    IpAddr::V4(Ipv4Addr::new(
        block,
        (s / (256 * 254)) as u8,
        (s / 254 % 256) as u8,
        (s % 254 + 1) as u8,
    ))
}

/// Where the load goes: plain HTTP, or HTTPS trusting one certificate.
#[derive(Clone)]
pub enum Target {
    Http(SocketAddr),
    Https {
        addr: SocketAddr,
        tls: tokio_rustls::TlsConnector,
        /// The name the certificate must carry.
        name: rustls::pki_types::ServerName<'static>,
    },
}

impl From<SocketAddr> for Target {
    fn from(addr: SocketAddr) -> Target {
        Target::Http(addr)
    }
}

impl Target {
    /// HTTPS to `addr`, trusting only the PEM certificate `cert` (a test's self-signed one),
    /// which must name `name`; HTTP/1.1 only.
    pub fn https(addr: SocketAddr, cert: &[u8], name: &str) -> Target {
        Target::Https {
            addr,
            tls: tls_connector(cert, &[b"http/1.1"]),
            name: rustls::pki_types::ServerName::try_from(name.to_owned())
                .expect("a valid server name"),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        match self {
            Target::Http(addr) | Target::Https { addr, .. } => *addr,
        }
    }

    /// A new connection, with its TLS handshake done.
    pub async fn connect(&self) -> std::io::Result<Pin<Box<dyn Io>>> {
        let tcp = TcpStream::connect(self.addr()).await?;
        let _ = tcp.set_nodelay(true);
        match self {
            Target::Http(_) => Ok(Box::pin(tcp)),
            Target::Https { tls, name, .. } => Ok(Box::pin(tls.connect(name.clone(), tcp).await?)),
        }
    }
}

/// A connection, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Send {}
impl<T: AsyncRead + AsyncWrite + Send> Io for T {}

/// A TLS client (rustls with ring) trusting exactly the PEM certificate `cert`, offering the
/// ALPN protocols `alpn`.
pub fn tls_connector(cert: &[u8], alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(cert) {
        roots
            .add(cert.expect("a PEM certificate"))
            .expect("a certificate rustls accepts as a trust anchor");
    }
    assert!(!roots.is_empty(), "no certificate in the PEM text");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// How fast the connections send.
#[derive(Clone, Copy, Debug)]
enum Pace {
    /// Each connection sends its next request as soon as the answer came, after waiting this
    /// long (if any).
    Closed(Option<Duration>),
    /// Request `i` is sent `i / rate` seconds after the start, whichever connection sends it.
    Rate(f64),
}

/// Sends up to `total` requests over `connections` connections (until `counts.stop`), each
/// connection pausing `pace` between requests. Returns when every connection is done.
pub async fn run(
    target: impl Into<Target>,
    connections: usize,
    total: u64,
    mix: Mix,
    pace: Option<Duration>,
    counts: Arc<Counts>,
) {
    run_with(
        target.into(),
        connections,
        total,
        mix,
        Pace::Closed(pace),
        counts,
    )
    .await
}

/// Sends up to `total` requests at `per_second` over `connections` connections (until
/// `counts.stop`): request `i` leaves `i / per_second` seconds after the start, or as soon as
/// a connection is free after that. Returns when every connection is done.
pub async fn run_at_rate(
    target: impl Into<Target>,
    connections: usize,
    total: u64,
    mix: Mix,
    per_second: f64,
    counts: Arc<Counts>,
) {
    assert!(per_second > 0.0);
    let pace = Pace::Rate(per_second);
    run_with(target.into(), connections, total, mix, pace, counts).await
}

async fn run_with(
    target: Target,
    connections: usize,
    total: u64,
    mix: Mix,
    pace: Pace,
    counts: Arc<Counts>,
) {
    let start = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let counts = Arc::clone(&counts);
            let target = target.clone();
            tokio::spawn(async move {
                connection(&target, total, mix, pace, start, &counts).await;
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

async fn connection(
    target: &Target,
    total: u64,
    mix: Mix,
    pace: Pace,
    start: Instant,
    counts: &Counts,
) {
    let mut stream: Option<Pin<Box<dyn Io>>> = None;
    let mut request = Vec::with_capacity(512);
    let mut buf = Vec::with_capacity(4096);
    let mut failures = 0;
    loop {
        if counts.stop.load(Ordering::SeqCst) {
            return;
        }
        if stream.is_none() {
            match target.connect().await {
                Ok(s) => {
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
        if let Pace::Rate(per_second) = pace {
            let due = start + Duration::from_secs_f64(i as f64 / per_second);
            tokio::time::sleep_until(due.into()).await;
        }
        mix.write_request(i, &mut request);
        let s = stream.as_mut().expect("connected");
        if s.write_all(&request).await.is_err() || s.flush().await.is_err() {
            // Not sent whole: the server cannot have answered it. Nothing to count.
            counts.claimed.fetch_sub(1, Ordering::SeqCst);
            stream = None;
            continue;
        }
        match read_answer(s, &mut buf).await {
            Some((status, close)) => {
                counts.answered(status);
                if close {
                    stream = None;
                }
            }
            None => {
                counts.unknown.fetch_add(1, Ordering::SeqCst);
                stream = None;
            }
        }
        if let Pace::Closed(Some(pause)) = pace {
            tokio::time::sleep(pause).await;
        }
    }
}

/// Reads one whole answer (a `Content-Length` or chunked body, or none): its status, and
/// whether the server closes the connection after it.
async fn read_answer(s: &mut Pin<Box<dyn Io>>, buf: &mut Vec<u8>) -> Option<(u16, bool)> {
    buf.clear();
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if !fill(s, buf).await? {
            return None;
        }
    };
    let head = std::str::from_utf8(&buf[..head_end])
        .ok()?
        .to_ascii_lowercase();
    let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let close = header("connection") == Some("close");
    if header("transfer-encoding") == Some("chunked") {
        let mut at = head_end;
        loop {
            let line_end = loop {
                if let Some(n) = buf[at..].windows(2).position(|w| w == b"\r\n") {
                    break at + n;
                }
                if !fill(s, buf).await? {
                    return None;
                }
            };
            let size = std::str::from_utf8(&buf[at..line_end]).ok()?;
            let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
            at = line_end + 2;
            if size == 0 {
                // No trailers from the servers tested: the empty line ends the answer.
                while buf.len() < at + 2 {
                    if !fill(s, buf).await? {
                        return None;
                    }
                }
                return Some((status, close));
            }
            while buf.len() < at + size + 2 {
                if !fill(s, buf).await? {
                    return None;
                }
            }
            at += size + 2;
        }
    }
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        if !fill(s, buf).await? {
            return None;
        }
    }
    Some((status, close))
}

/// Reads more into `buf`: `Some(false)` at the end of the stream, `None` on an error or after
/// 60 s without a byte.
async fn fill(s: &mut Pin<Box<dyn Io>>, buf: &mut Vec<u8>) -> Option<bool> {
    let mut chunk = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(60), s.read(&mut chunk))
        .await
        .ok()?
        .ok()?;
    buf.extend_from_slice(&chunk[..n]);
    Some(n > 0)
}

/// Sends one request on a connection of its own and reads the whole answer: its status and
/// the answer as it came (head and body; a chunked body still chunked).
pub async fn exchange(target: &Target, request: &[u8]) -> (u16, Vec<u8>) {
    let mut s = target
        .connect()
        .await
        .expect("the server takes a connection");
    s.write_all(request).await.expect("the request is sent");
    s.flush().await.unwrap();
    let mut buf = Vec::new();
    let (status, _) = read_answer(&mut s, &mut buf).await.expect("a whole answer");
    (status, buf)
}

/// Stops the clients and waits for them.
pub async fn stop(counts: &Counts, load: tokio::task::JoinHandle<()>) {
    counts.stop.store(true, Ordering::SeqCst);
    let _ = load.await;
}

/// Steady load on `addr`, as the outage and fault tests send it: 16 connections, 20 ms between a
/// connection's requests (at most 800 hits/s), until [`stop`]; returns once 500 were answered
/// 200.
pub async fn paced(addr: SocketAddr, mix: Mix) -> (Arc<Counts>, tokio::task::JoinHandle<()>) {
    let counts = Arc::new(Counts::default());
    let load = tokio::spawn(run(
        addr,
        16,
        u64::MAX,
        mix,
        Some(Duration::from_millis(20)),
        Arc::clone(&counts),
    ));
    until_ok(&counts, 500).await;
    (counts, load)
}

/// Waits until the clients have had at least `n` answers of 200.
pub async fn until_ok(counts: &Counts, n: u64) {
    for _ in 0..1200 {
        if counts.ok() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} hits answered in 60 s: {counts:?}");
}
