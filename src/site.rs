//! Sites: their validated ids, their settings document, and the in-memory registry the hit
//! path reads.
//!
//! The hit path must not await the store, so it looks sites up in a [`SiteRegistry`]: a
//! snapshot of the `sites` collection, refreshed in the background and updated at once when a
//! site is added through this process.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use mongodb::bson::{doc, Bson, Document};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

/// A site id: `[a-z0-9][a-z0-9_-]{0,31}`. It never contains `:` or `.`, so `"<site>:<period>"`
/// document ids and field paths built from it are unambiguous.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SiteId(Arc<str>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid site id {0:?}: a site id is 1 to 32 characters of a-z, 0-9, '_' and '-', starting with a letter or digit")]
pub struct InvalidSiteId(pub String);

impl SiteId {
    pub fn parse(raw: &str) -> Result<SiteId, InvalidSiteId> {
        let b = raw.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 32
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && b.iter()
                .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-');
        if ok {
            Ok(SiteId(Arc::from(raw)))
        } else {
            Err(InvalidSiteId(raw.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SiteId {
    type Err = InvalidSiteId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SiteId::parse(s)
    }
}

impl fmt::Display for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// Parses an IANA zone name, suggesting the right spelling when only the case is wrong.
pub fn parse_time_zone(raw: &str) -> Result<Tz, String> {
    if let Ok(tz) = raw.parse::<Tz>() {
        return Ok(tz);
    }
    match Tz::from_str_insensitive(raw) {
        Ok(tz) => Err(format!(
            "unknown time zone {raw:?}: did you mean {:?}?",
            tz.name()
        )),
        Err(_) => Err(format!(
            "unknown time zone {raw:?}: use an IANA zone name such as \"Europe/Berlin\" or \"UTC\""
        )),
    }
}

/// Validates a host name given with `--host`: lower-cased, letters, digits, `-`, `.` and an
/// optional `:port`, or a wildcard `*.example.com` for every subdomain of `example.com`.
pub fn parse_host(raw: &str) -> Result<String, String> {
    let host = raw.trim().to_ascii_lowercase();
    let name = host.strip_prefix("*.").unwrap_or(&host);
    let valid = !name.is_empty()
        && host.len() <= 253
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b':' | b'[' | b']'));
    if valid {
        Ok(host)
    } else {
        Err(format!(
            "invalid host {raw:?}: give a host name such as \"example.com\" or \"*.example.com\", \
             without scheme or path"
        ))
    }
}

/// Splits `host[:port]` (`[v6]:port` for IPv6) into the name and the port, if one is given.
fn split_port(host: &str) -> (&str, Option<u16>) {
    let (name, port) = match host.rfind(':') {
        Some(i) if !host[i..].contains(']') && host[..i].matches(':').count() == 0 => {
            (&host[..i], Some(&host[i + 1..]))
        }
        Some(i) if host.starts_with('[') && host[..i].ends_with(']') => {
            (&host[..i], Some(&host[i + 1..]))
        }
        _ => (host, None),
    };
    match port.map(str::parse::<u16>) {
        Some(Ok(port)) => (name, Some(port)),
        Some(Err(_)) => (host, None),
        None => (name, None),
    }
}

/// Whether a site's host entry names `host` (lower-case, `www.` removed) on `port`.
///
/// `acme.example` matches exactly that host (and `www.acme.example`: `www.` is ignored on both
/// sides), on any port; `acme.example:8080` only on that port; `*.acme.example` matches every
/// subdomain (`blog.acme.example`, `a.b.acme.example`) but not `acme.example` itself.
pub fn host_matches(entry: &str, host: &str, port: Option<u16>) -> bool {
    let (name, want_port) = split_port(entry);
    if want_port.is_some() && want_port != port {
        return false;
    }
    match name.strip_prefix("*.") {
        Some(parent) => host
            .strip_suffix(parent)
            .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        None => strip_www(name) == host,
    }
}

/// `www.example.com` → `example.com`.
pub fn strip_www(host: &str) -> &str {
    host.strip_prefix("www.").unwrap_or(host)
}

/// Validates a query parameter name given with `--keep-param`: 1–64 printable characters.
pub fn parse_param(raw: &str) -> Result<String, String> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw.chars().all(|c| !c.is_control() && c != '&' && c != '=');
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(format!("invalid query parameter name {raw:?}: 1 to 64 characters, no '&', '=' or control characters"))
    }
}

/// A tracked site: the document `_id: <id>` in the `sites` collection.
#[derive(Clone, Debug, PartialEq)]
pub struct Site {
    pub id: SiteId,
    /// The IANA zone that decides every hour, day, month and year bucket of this site.
    pub tz: Tz,
    pub name: String,
    /// The site's own hosts; a referrer from one of them is internal, not a referrer.
    pub hosts: Vec<String>,
    /// Query parameters kept in page paths (e.g. `id` for `/item?id=7`); every other parameter
    /// is dropped, so `/a?utm_source=x` and `/a` are one page.
    pub keep_params: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Read tokens, as SHA-256 hashes (`api::token`); the tokens themselves are kept nowhere.
    pub tokens: Vec<TokenHash>,
    /// Readable through the API and the dashboard without a token.
    pub public: bool,
    /// Hits sent with `DNT: 1` or `Sec-GPC: 1` are not counted (`site update --honor-dnt on`).
    pub honor_dnt: bool,
}

/// A read token's stored form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenHash {
    /// Hex SHA-256 of the token.
    pub hash: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
#[error("malformed site document {id:?}: {reason}")]
pub struct MalformedSite {
    pub id: String,
    pub reason: String,
}

impl Site {
    pub fn to_document(&self) -> Document {
        doc! {
            "_id": self.id.as_str(),
            "tz": self.tz.name(),
            "name": &self.name,
            "hosts": self.hosts.iter().map(|h| Bson::String(h.clone())).collect::<Vec<_>>(),
            "keep_params": self.keep_params.iter().map(|p| Bson::String(p.clone())).collect::<Vec<_>>(),
            "tokens": self.tokens.iter().map(|t| Bson::Document(doc! {
                "hash": &t.hash,
                "created_at": mongodb::bson::DateTime::from_millis(t.created_at.timestamp_millis()),
            })).collect::<Vec<_>>(),
            "public": self.public,
            "honor_dnt": self.honor_dnt,
            "created_at": mongodb::bson::DateTime::from_millis(self.created_at.timestamp_millis()),
        }
    }

    pub fn from_document(doc: &Document) -> Result<Site, MalformedSite> {
        let raw_id = doc.get_str("_id").unwrap_or_default().to_owned();
        let bad = |reason: String| MalformedSite {
            id: raw_id.clone(),
            reason,
        };
        let id = SiteId::parse(&raw_id).map_err(|e| bad(e.to_string()))?;
        let tz = doc
            .get_str("tz")
            .map_err(|e| bad(e.to_string()))
            .and_then(|tz| parse_time_zone(tz).map_err(bad))?;
        let name = doc.get_str("name").unwrap_or(id.as_str()).to_owned();
        let strings = |field: &str| match doc.get_array(field) {
            Ok(list) => list
                .iter()
                .filter_map(|h| h.as_str().map(str::to_owned))
                .collect(),
            Err(_) => Vec::new(),
        };
        let hosts = strings("hosts");
        let keep_params = strings("keep_params");
        let tokens = match doc.get_array("tokens") {
            Ok(list) => list
                .iter()
                .filter_map(Bson::as_document)
                .filter_map(|t| {
                    Some(TokenHash {
                        hash: t.get_str("hash").ok()?.to_owned(),
                        created_at: t
                            .get_datetime("created_at")
                            .ok()
                            .and_then(|d| DateTime::from_timestamp_millis(d.timestamp_millis()))
                            .unwrap_or_default(),
                    })
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        let public = doc.get_bool("public").unwrap_or(false);
        let honor_dnt = doc.get_bool("honor_dnt").unwrap_or(false);
        let created_at = doc
            .get_datetime("created_at")
            .ok()
            .and_then(|d| DateTime::from_timestamp_millis(d.timestamp_millis()))
            .unwrap_or_default();
        Ok(Site {
            id,
            tz,
            name,
            hosts,
            keep_params,
            created_at,
            tokens,
            public,
            honor_dnt,
        })
    }

    /// Whether `host` (any case; `port` as the browser sent it) is one of this site's own
    /// hosts, by [`host_matches`]. A site without hosts has none.
    pub fn is_own_host(&self, host: &str, port: Option<u16>) -> bool {
        let lower;
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = host.to_ascii_lowercase();
            &lower
        } else {
            host
        };
        let host = strip_www(host);
        self.hosts
            .iter()
            .any(|entry| host_matches(entry, host, port))
    }

    /// Whether a hit sent from a page on `host` may be counted: always for a site without
    /// hosts, else only from one of its own hosts.
    pub fn allows_host(&self, host: &str, port: Option<u16>) -> bool {
        self.hosts.is_empty() || self.is_own_host(host, port)
    }

    /// The snippet a site owner pastes into their pages.
    pub fn snippet(&self, tally_origin: &str) -> String {
        format!(
            r#"<script async src="{tally_origin}/t.js" data-site="{}" data-tz="{}"></script>"#,
            self.id,
            self.tz.name()
        )
    }
}

/// The sites the hit path knows, by id. Reads are a read-lock and a hash lookup; the map is
/// replaced whole on refresh.
#[derive(Default)]
pub struct SiteRegistry {
    sites: RwLock<Arc<HashMap<SiteId, Arc<Site>>>>,
}

impl SiteRegistry {
    pub fn get(&self, id: &SiteId) -> Option<Arc<Site>> {
        let sites = self.sites.read().unwrap_or_else(|e| e.into_inner());
        sites.get(id).cloned()
    }

    /// Replaces the known sites with `sites` (a fresh read of the `sites` collection).
    pub fn replace(&self, sites: Vec<Site>) {
        let map = sites
            .into_iter()
            .map(|s| (s.id.clone(), Arc::new(s)))
            .collect();
        *self.sites.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(map);
    }

    /// Adds or replaces one site without waiting for the next refresh.
    pub fn insert(&self, site: Site) {
        let mut guard = self.sites.write().unwrap_or_else(|e| e.into_inner());
        let mut map = HashMap::clone(&guard);
        map.insert(site.id.clone(), Arc::new(site));
        *guard = Arc::new(map);
    }

    /// Every known site, ordered by id.
    pub fn all(&self) -> Vec<Arc<Site>> {
        let sites = self.sites.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<Arc<Site>> = sites.values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    pub fn len(&self) -> usize {
        self.sites.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_ids_follow_the_documented_pattern() {
        for ok in [
            "acme",
            "a",
            "0",
            "my-site_2",
            "abcdefghijklmnopqrstuvwxyz012345",
        ] {
            assert!(SiteId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Acme",
            "-acme",
            "_a",
            "a:b",
            "a.b",
            "a$b",
            "a b",
            "abcdefghijklmnopqrstuvwxyz0123456",
            "é",
        ] {
            assert!(SiteId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_zones_are_checked_with_a_hint() {
        assert!(parse_time_zone("Pacific/Kiritimati").is_ok());
        let err = parse_time_zone("europe/berlin").unwrap_err();
        assert!(err.contains("Europe/Berlin"), "{err}");
        assert!(parse_time_zone("Mars/Olympus").is_err());
    }

    #[test]
    fn site_documents_round_trip() {
        let site = Site {
            id: SiteId::parse("acme").unwrap(),
            tz: parse_time_zone("Asia/Tokyo").unwrap(),
            name: "Acme".into(),
            hosts: vec!["acme.example".into()],
            keep_params: vec!["id".into()],
            tokens: vec![TokenHash {
                hash: "ab".repeat(32),
                created_at: DateTime::from_timestamp_millis(1_700_000_000_000).unwrap(),
            }],
            public: true,
            honor_dnt: true,
            created_at: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
        };
        assert_eq!(Site::from_document(&site.to_document()).unwrap(), site);
        // Documents written before `honor_dnt` existed read as off.
        let mut old = site.to_document();
        old.remove("honor_dnt");
        assert!(!Site::from_document(&old).unwrap().honor_dnt);
    }

    fn with_hosts(hosts: &[&str]) -> Site {
        let mut site = Site::from_document(&doc! {"_id": "acme", "tz": "UTC"}).unwrap();
        site.hosts = hosts.iter().map(|h| parse_host(h).unwrap()).collect();
        site
    }

    #[test]
    fn exact_hosts_match_with_or_without_www_on_any_port() {
        let site = with_hosts(&["acme.example"]);
        assert!(site.is_own_host("acme.example", None));
        assert!(site.is_own_host("www.acme.example", Some(443)));
        assert!(site.is_own_host("ACME.Example", None));
        assert!(!site.is_own_host("blog.acme.example", None));
        assert!(!site.is_own_host("acme.example.evil", None));
        assert!(!site.is_own_host("evilacme.example", None));
        let www = with_hosts(&["www.acme.example"]);
        assert!(www.is_own_host("acme.example", None));
    }

    #[test]
    fn a_port_in_the_entry_matches_only_that_port() {
        let site = with_hosts(&["localhost:3000", "[::1]:8080", "[::1]"]);
        assert!(site.is_own_host("localhost", Some(3000)));
        assert!(!site.is_own_host("localhost", Some(3001)));
        assert!(!site.is_own_host("localhost", None));
        assert!(site.is_own_host("[::1]", Some(8080)));
        assert!(site.is_own_host("[::1]", Some(9)));
        assert_eq!(split_port("[::1]:8080"), ("[::1]", Some(8080)));
        assert_eq!(split_port("[::1]"), ("[::1]", None));
        assert_eq!(split_port("a:b"), ("a:b", None));
    }

    #[test]
    fn a_wildcard_matches_subdomains_only() {
        let site = with_hosts(&["*.acme.example"]);
        assert!(site.is_own_host("blog.acme.example", None));
        assert!(site.is_own_host("a.b.acme.example", Some(8443)));
        assert!(!site.is_own_host("acme.example", None));
        assert!(!site.is_own_host("evilacme.example", None));
        assert!(!site.is_own_host("acme.example.evil", None));
        assert!(!site.is_own_host(".acme.example", None));
        assert!(with_hosts(&[]).allows_host("anything.example", None));
        assert!(!site.allows_host("other.example", None));
    }

    #[test]
    fn host_entries_are_checked() {
        assert_eq!(parse_host(" *.Acme.Example ").unwrap(), "*.acme.example");
        for bad in ["*", "*.", "**.a", "*.*.a", "a/b", "https://a", "", "a b"] {
            assert!(parse_host(bad).is_err(), "{bad:?}");
        }
    }
}
