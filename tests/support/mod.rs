//! Test harness: the real application on port 0, against a real store.
//!
//! - MongoDB: the FerretDB server `scripts/test.sh` starts (`TEST_MONGODB_URI`), a fresh
//!   database per test; documents are read back with the `mongodb` driver, as any client would.
//! - Embedded: a temporary data directory; documents are read back through a second,
//!   independent connection to the same file.
//!
//! [`load`] sends counted load with browsers' User-Agents and public client addresses;
//! [`nginx`] runs the real nginx, configured by `deploy/nginx/tally.conf`, in front of apps;
//! [`toxiproxy`] breaks the network between an app and a FerretDB of the test's own;
//! [`totals`] reads back the counters a load of [`load`] made; [`node`] runs the real `tally`
//! binary, and several of them on one store behind nginx ([`node::Nodes`]).
#![allow(dead_code)]

pub mod load;
pub mod nginx;
pub mod node;
pub mod stream;
pub mod totals;
pub mod toxiproxy;

use chrono::{DateTime, TimeZone, Utc};
use mongodb::bson::{Bson, Document};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use tally::period::Clock;
use tally::settings::ServeSettings;
use tally::site::{parse_time_zone, Site, SiteId};
use tally::startup::{AppHandle, Application, RunError};
use tally::store::embedded::EmbeddedStore;
use tally::store::mongo::MongoStore;
use tally::store::Store;
use tempfile::TempDir;
use tokio::task::JoinHandle;

pub const CHROME_WIN: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
pub const FIREFOX_MAC: &str =
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0";
pub const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
pub const SAFARI_IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1";
pub const CHROME_ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";
pub const EDGE_WIN: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86";
pub const GOOGLEBOT: &str =
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Mongo,
    Embedded,
}

/// Runs an async test body once per store: `both_stores!(my_test);` expects
/// `async fn my_test(backend: Backend)` and makes `mongo::my_test` and `embedded::my_test`.
#[macro_export]
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        mod mongo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Mongo).await
                }
            )*
        }
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Embedded).await
                }
            )*
        }
    };
}

/// The MongoDB-protocol server of this test run.
pub fn mongodb_uri() -> String {
    std::env::var("TEST_MONGODB_URI").unwrap_or_else(|_| {
        panic!(
            "TEST_MONGODB_URI is not set: run the tests with scripts/test.sh, which starts \
             FerretDB and sets it"
        )
    })
}

/// A database name no other test uses.
pub fn unique_database(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "t_{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A clock the test moves by hand.
#[derive(Clone)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    pub fn at(instant: DateTime<Utc>) -> TestClock {
        TestClock(Arc::new(AtomicI64::new(instant.timestamp_millis())))
    }

    pub fn set(&self, instant: DateTime<Utc>) {
        self.0.store(instant.timestamp_millis(), Ordering::SeqCst);
    }

    pub fn clock(&self) -> Clock {
        let millis = Arc::clone(&self.0);
        Arc::new(move || {
            DateTime::from_timestamp_millis(millis.load(Ordering::SeqCst)).unwrap_or_default()
        })
    }
}

pub fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

/// Where a test's documents live, and a way to read them back independently of the app.
pub struct TestStore {
    pub backend: Backend,
    pub store: Arc<dyn Store>,
    /// MongoDB: the database name.
    pub database: String,
    /// MongoDB: the server's connection string.
    pub uri: String,
    /// Embedded: the data directory.
    pub dir: Option<TempDir>,
    mongo: Option<mongodb::Database>,
}

impl TestStore {
    pub async fn new(backend: Backend) -> TestStore {
        match backend {
            Backend::Mongo => Self::mongo_at(&mongodb_uri()).await,
            Backend::Embedded => {
                let dir = tempfile::tempdir().unwrap();
                let store = EmbeddedStore::open(dir.path()).await.unwrap();
                TestStore {
                    backend,
                    store: Arc::new(store),
                    database: String::new(),
                    uri: String::new(),
                    dir: Some(dir),
                    mongo: None,
                }
            }
        }
    }

    /// A fresh database on the MongoDB-protocol server at `uri`.
    pub async fn mongo_at(uri: &str) -> TestStore {
        Self::mongo_via(uri, uri).await
    }

    /// A fresh database that the app's store reaches at `uri` (e.g. through a proxy that
    /// breaks the network) and the test reads back at `reader`, the same server directly.
    pub async fn mongo_via(uri: &str, reader: &str) -> TestStore {
        let database = unique_database("db");
        let store = MongoStore::connect(uri, &database).await.unwrap();
        let client = mongodb::Client::with_uri_str(reader).await.unwrap();
        TestStore {
            backend: Backend::Mongo,
            store: Arc::new(store),
            mongo: Some(client.database(&database)),
            database,
            uri: uri.to_owned(),
            dir: None,
        }
    }

    /// A second, independent handle on the same data, as another tally process would open it.
    /// (Embedded: it does not own the directory; read documents through the first handle.)
    pub async fn another_handle(&self) -> TestStore {
        match self.backend {
            Backend::Mongo => {
                let store = MongoStore::connect(&self.uri, &self.database)
                    .await
                    .unwrap();
                TestStore {
                    backend: self.backend,
                    store: Arc::new(store),
                    database: self.database.clone(),
                    uri: self.uri.clone(),
                    dir: None,
                    mongo: self.mongo.clone(),
                }
            }
            Backend::Embedded => {
                let dir = self.dir.as_ref().unwrap().path();
                TestStore {
                    backend: self.backend,
                    store: Arc::new(EmbeddedStore::open(dir).await.unwrap()),
                    database: String::new(),
                    uri: String::new(),
                    dir: None,
                    mongo: None,
                }
            }
        }
    }

    /// The driver's handle on this test's database (MongoDB only).
    pub fn mongo(&self) -> &mongodb::Database {
        self.mongo.as_ref().expect("a MongoDB test store")
    }

    /// Reads a document back: with the driver (MongoDB) or a second connection (embedded).
    pub async fn doc(&self, collection: &str, id: &str) -> Option<Document> {
        match self.backend {
            Backend::Mongo => self
                .mongo()
                .collection::<Document>(collection)
                .find_one(mongodb::bson::doc! {"_id": id})
                .await
                .unwrap(),
            Backend::Embedded => {
                let dir = self.dir.as_ref().unwrap().path();
                let reader = EmbeddedStore::open(dir).await.unwrap();
                reader.get(collection, id).await.unwrap()
            }
        }
    }

    pub async fn add_site(&self, id: &str, tz: &str) -> Site {
        let site = Site {
            id: SiteId::parse(id).unwrap(),
            tz: parse_time_zone(tz).unwrap(),
            name: id.to_owned(),
            hosts: vec![format!("{id}.example")],
            keep_params: Vec::new(),
            tokens: Vec::new(),
            public: false,
            honor_dnt: false,
            created_at: Utc::now(),
        };
        self.store.insert_site(&site).await.unwrap();
        site
    }
}

pub struct TestApp {
    pub address: String,
    pub handle: AppHandle,
    pub store: TestStore,
    pub http: reqwest::Client,
    task: JoinHandle<Result<(), RunError>>,
    /// Visitors so far: each request of [`TestApp::hit`] comes from the next one.
    visitors: AtomicU32,
}

/// Settings for tests: port 0, and a flush interval long enough that only the test flushes.
/// Everything else is what a user gets: the rate limits, the key budget and the proxy trust
/// keep their defaults, so tests send as real visitors do, each from an address of its own
/// through `X-Forwarded-For` (the test client is on loopback, a trusted proxy by default).
pub fn test_settings() -> ServeSettings {
    ServeSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        flush_interval_ms: 60_000,
        shutdown_timeout_secs: 10,
        ..ServeSettings::default()
    }
}

/// A public address for the `n`th visitor of a test: 198.18.0.0/15, the range set aside for
/// benchmarks (RFC 2544), which no country database places and no default trusts.
pub fn visitor(n: u32) -> String {
    std::net::Ipv4Addr::from(0xC612_0000 + n % 0x2_0000).to_string()
}

impl TestApp {
    /// The app on a fresh store with the site `acme` in `tz`, on the system clock.
    pub async fn with_site(backend: Backend, tz: &str) -> TestApp {
        let store = TestStore::new(backend).await;
        store.add_site("acme", tz).await;
        TestApp::spawn(store, test_settings(), tally::period::system_clock()).await
    }

    pub async fn spawn(store: TestStore, settings: ServeSettings, clock: Clock) -> TestApp {
        let app = Application::build_with(settings, Arc::clone(&store.store), clock)
            .await
            .expect("the application builds");
        TestApp::started(app, store)
    }

    /// Like [`TestApp::spawn`], with its writer identity kept in `data_dir` as `tally serve`
    /// keeps it in `--data-dir`.
    pub async fn spawn_in(
        store: TestStore,
        settings: ServeSettings,
        clock: Clock,
        data_dir: &std::path::Path,
    ) -> TestApp {
        let app = Application::build_in(settings, Arc::clone(&store.store), clock, Some(data_dir))
            .await
            .expect("the application builds");
        TestApp::started(app, store)
    }

    fn started(app: Application, store: TestStore) -> TestApp {
        let address = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        let task = tokio::spawn(app.run_until_stopped());
        TestApp {
            address,
            handle,
            store,
            http: reqwest::Client::new(),
            task,
            visitors: AtomicU32::new(0),
        }
    }

    /// The address of a new visitor, for `X-Forwarded-For`.
    pub fn next_visitor(&self) -> String {
        visitor(self.visitors.fetch_add(1, Ordering::Relaxed))
    }

    /// Sends one pixel request from a new visitor and checks the pixel answer, which is the
    /// same for every input.
    pub async fn hit(&self, query: &str, user_agent: &str) {
        let response = self
            .http
            .get(format!("{}/t.gif?{query}", self.address))
            .header("User-Agent", user_agent)
            .header("X-Forwarded-For", self.next_visitor())
            .send()
            .await
            .expect("the pixel answers");
        assert_pixel(response).await;
    }

    /// A GET of any tracking path answered with the pixel (e.g. `/e?...`), from a new visitor.
    pub async fn hit_path(&self, path_and_query: &str, user_agent: &str) {
        let response = self
            .http
            .get(format!("{}{path_and_query}", self.address))
            .header("User-Agent", user_agent)
            .header("X-Forwarded-For", self.next_visitor())
            .send()
            .await
            .expect("the pixel answers");
        assert_pixel(response).await;
    }

    /// A pixel request with extra headers (e.g. `X-Forwarded-For`).
    /// Without a forwarding header among them, from a new visitor.
    pub async fn hit_with(&self, query: &str, user_agent: &str, headers: &[(&str, &str)]) {
        let mut request = self
            .http
            .get(format!("{}/t.gif?{query}", self.address))
            .header("User-Agent", user_agent);
        let forwarding = |name: &str| {
            name.eq_ignore_ascii_case("x-forwarded-for") || name.eq_ignore_ascii_case("forwarded")
        };
        if !headers.iter().any(|(name, _)| forwarding(name)) {
            request = request.header("X-Forwarded-For", self.next_visitor());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        assert_pixel(request.send().await.expect("the pixel answers")).await;
    }

    pub async fn flush(&self) {
        let report = self.handle.flush().await;
        assert_eq!(report.failed, 0, "flush failed: {report:?}");
    }

    pub async fn doc(&self, collection: &str, id: &str) -> Option<Document> {
        self.store.doc(collection, id).await
    }

    /// Stops the app gracefully and returns how `run_until_stopped` ended.
    pub async fn stop(self) -> (Result<(), RunError>, TestStore) {
        self.handle.stop().await;
        let result = self.task.await.expect("the app task does not panic");
        (result, self.store)
    }

    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// The pixel's answer: 200, a 43-byte GIF, not cacheable.
pub async fn assert_pixel(response: reqwest::Response) {
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/gif");
    assert_eq!(response.headers()["cache-control"], "no-store, max-age=0");
    let body = response.bytes().await.unwrap();
    assert_eq!(&body[..], tally::track::pixel::GIF);
}

/// `(key, <number>)` of each entry of a ranked list in an API answer (`number`: `"views"`,
/// `"people"`).
pub fn entries(list: &serde_json::Value, number: &str) -> Vec<(String, i64)> {
    list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["key"].as_str().unwrap().to_owned(),
                e[number].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The number at a dotted path, e.g. `b.chrome.131-0`; `None` when absent or not a number.
pub fn get_path(doc: &Document, path: &str) -> Option<i64> {
    let mut current = doc;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let value = current.get(part)?;
        if parts.peek().is_none() {
            return match value {
                Bson::Int64(n) => Some(*n),
                Bson::Int32(n) => Some(i64::from(*n)),
                _ => None,
            };
        }
        current = value.as_document()?;
    }
    None
}

/// Asserts the counter at `path` is `expected`.
#[track_caller]
pub fn assert_count(doc: &Document, path: &str, expected: i64) {
    assert_eq!(get_path(doc, path), Some(expected), "{path} in {doc}");
}

/// Every key below `_id` is a safe field name (a vocabulary segment or an escaped key) and
/// every leaf is a non-negative 64-bit counter, a page's title text (`t`), or a positive int32
/// (a people register, or a closed period's people `p`).
pub fn assert_well_formed(doc: &Document) {
    fn walk(doc: &Document, at: &str) {
        for (key, value) in doc {
            assert!(
                tally::field::is_field_name(key),
                "unsafe key {key:?} at {at:?}"
            );
            match value {
                Bson::Document(d) => walk(d, &format!("{at}.{key}")),
                // Zero: a visit moved out of an engagement segment.
                Bson::Int64(n) => assert!(*n >= 0, "{at}.{key} = {n}"),
                Bson::Int32(n) => assert!(*n > 0, "{at}.{key} = {n}"),
                Bson::String(t) if key == "t" => {
                    assert!(!t.chars().any(char::is_control), "{at}.t = {t:?}")
                }
                other => panic!("{at}.{key} is not a counter: {other:?}"),
            }
        }
    }
    let mut rest = doc.clone();
    assert!(rest.remove("_id").is_some(), "no _id in {doc}");
    walk(&rest, "");
}

/// A FerretDB server of a test's own, to stop and start at will (`TEST_FERRETDB_BIN`).
pub struct Ferret {
    pub port: u16,
    pub dir: TempDir,
    child: Option<std::process::Child>,
}

impl Ferret {
    pub async fn start() -> Ferret {
        let port = free_port();
        let mut ferret = Ferret {
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        ferret.restart().await;
        ferret
    }

    /// A connection string that gives up on an unreachable server after one second.
    pub fn uri(&self) -> String {
        format!(
            "mongodb://127.0.0.1:{}/?serverSelectionTimeoutMS=1000&connectTimeoutMS=1000",
            self.port
        )
    }

    pub async fn restart(&mut self) {
        let bin = std::env::var("TEST_FERRETDB_BIN").unwrap_or_else(|_| {
            panic!("TEST_FERRETDB_BIN is not set: run the tests with scripts/test.sh")
        });
        let child = std::process::Command::new(bin)
            .arg("--handler=sqlite")
            .arg(format!("--sqlite-url=file:{}/", self.dir.path().display()))
            .arg(format!("--listen-addr=127.0.0.1:{}", self.port))
            .arg("--debug-addr=-")
            .arg("--telemetry=disable")
            .arg(format!("--state-dir={}", self.dir.path().display()))
            .arg("--log-level=error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("FerretDB starts");
        self.child = Some(child);
        wait_for_port(self.port).await;
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Ferret {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn wait_for_port(port: u16) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("nothing listens on port {port} after 10 s");
}

/// A connection of its own to an embedded test store's file.
fn raw_sqlite(store: &TestStore) -> rusqlite::Connection {
    let dir = store.dir.as_ref().expect("an embedded test store");
    rusqlite::Connection::open(dir.path().join(tally::store::embedded::FILE_NAME)).unwrap()
}

/// Writes a document as is, bypassing tally (to set up a conflict the store must report).
pub async fn put_raw(store: &TestStore, collection: &str, doc: Document) {
    match store.backend {
        Backend::Mongo => {
            store
                .mongo()
                .collection::<Document>(collection)
                .insert_one(doc)
                .await
                .unwrap();
        }
        Backend::Embedded => {
            let id = doc.get_str("_id").unwrap().to_owned();
            let mut bytes = Vec::new();
            doc.to_writer(&mut bytes).unwrap();
            raw_sqlite(store)
                .execute(
                    "INSERT INTO docs (coll, id, doc) VALUES (?1, ?2, ?3)",
                    rusqlite::params![collection, id, bytes],
                )
                .unwrap();
        }
    }
}

/// Deletes a document, bypassing tally.
pub async fn delete_raw(store: &TestStore, collection: &str, id: &str) {
    match store.backend {
        Backend::Mongo => {
            store
                .mongo()
                .collection::<Document>(collection)
                .delete_one(mongodb::bson::doc! {"_id": id})
                .await
                .unwrap();
        }
        Backend::Embedded => {
            raw_sqlite(store)
                .execute(
                    "DELETE FROM docs WHERE coll = ?1 AND id = ?2",
                    rusqlite::params![collection, id],
                )
                .unwrap();
        }
    }
}

/// Writes a document as is, like [`put_raw`], and lists its collection as the store's own writes
/// do (embedded: in `colls`; MongoDB creates it anyway), so that `Store::collections` sees it.
pub async fn put_raw_listed(store: &TestStore, collection: &str, doc: Document) {
    put_raw(store, collection, doc).await;
    if store.backend == Backend::Embedded {
        raw_sqlite(store)
            .execute(
                "INSERT OR IGNORE INTO colls (coll) VALUES (?1)",
                rusqlite::params![collection],
            )
            .unwrap();
    }
}

/// Changes a stored document with `edit`, bypassing tally, as another MongoDB client (or an
/// operator with the SQLite shell) would.
pub async fn edit_raw(
    store: &TestStore,
    collection: &str,
    id: &str,
    edit: impl FnOnce(&mut Document),
) {
    match store.backend {
        Backend::Mongo => {
            let coll = store.mongo().collection::<Document>(collection);
            let mut doc = coll
                .find_one(mongodb::bson::doc! {"_id": id})
                .await
                .unwrap()
                .expect("the document exists");
            edit(&mut doc);
            coll.replace_one(mongodb::bson::doc! {"_id": id}, doc)
                .await
                .unwrap();
        }
        Backend::Embedded => {
            let conn = raw_sqlite(store);
            conn.busy_timeout(std::time::Duration::from_secs(10))
                .unwrap();
            let bytes: Vec<u8> = conn
                .query_row(
                    "SELECT doc FROM docs WHERE coll = ?1 AND id = ?2",
                    rusqlite::params![collection, id],
                    |r| r.get(0),
                )
                .unwrap();
            let mut doc = Document::from_reader(bytes.as_slice()).unwrap();
            edit(&mut doc);
            let mut bytes = Vec::new();
            doc.to_writer(&mut bytes).unwrap();
            conn.execute(
                "UPDATE docs SET doc = ?3 WHERE coll = ?1 AND id = ?2",
                rusqlite::params![collection, id, bytes],
            )
            .unwrap();
        }
    }
}

/// The `tally` binary with a clean environment and `store`'s settings, as an operator runs it
/// next to a server on the same store.
pub fn tally_cli(store: &TestStore) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tally"));
    for (k, _) in std::env::vars() {
        if k.starts_with("TALLY_") {
            cmd.env_remove(k);
        }
    }
    match store.backend {
        Backend::Mongo => cmd
            .env("TALLY_MONGODB_URI", mongodb_uri())
            .env("TALLY_DATABASE", &store.database),
        Backend::Embedded => cmd.env("TALLY_DATA_DIR", store.dir.as_ref().unwrap().path()),
    };
    cmd
}
