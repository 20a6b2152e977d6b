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
/// optional `:port`.
pub fn parse_host(raw: &str) -> Result<String, String> {
    let host = raw.trim().to_ascii_lowercase();
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b':' | b'[' | b']'));
    if valid {
        Ok(host)
    } else {
        Err(format!(
            "invalid host {raw:?}: give a host name such as \"example.com\", without scheme or path"
        ))
    }
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
        })
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
            created_at: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
        };
        assert_eq!(Site::from_document(&site.to_document()).unwrap(), site);
    }
}
