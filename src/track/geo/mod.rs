//! Country lookup: a MaxMind-format (`.mmdb`) database read into memory once, and the
//! [`Country`] newtype the locations report counts. Which database (`--geoip-db`: the one
//! compiled into tally, a file, or none) is [`builtin::GeoSource`]'s to say.
//!
//! Two record layouts are read, in one decode of only the fields needed:
//! - GeoIP2 / GeoLite2 Country and City: `country.iso_code`, else `registered_country.iso_code`;
//! - ip-location-db (the built-in database, `builtin.rs`): a flat `country_code`.
//!
//! Addresses that cannot be a visitor's on the public internet (private, loopback, link-local,
//! unspecified, documentation) are answered `None` before the database is consulted: free
//! databases do hold records for some of them.
//!
//! This module must not log or keep the addresses it is given.

pub mod builtin;
#[cfg(test)]
mod testdb;

pub use crate::hit::Country;
pub use builtin::GeoSource;
use maxminddb::{MaxMindDbError, Reader};
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error("cannot read the country database {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a MaxMind DB (.mmdb) file: {source}", path.display())]
    Invalid {
        path: PathBuf,
        #[source]
        source: MaxMindDbError,
    },
    #[error(
        "{} ({database_type:?}) is not a country database: none of {} has a two-letter code \
         in `country.iso_code`, `registered_country.iso_code` or `country_code`",
        path.display(), PROBES_TEXT
    )]
    NoCountry {
        path: PathBuf,
        database_type: String,
    },
}

/// Well-known public addresses every country database knows. [`GeoDb::open`] accepts a
/// database when at least one of them has a country: this rejects an ASN or ISP database, or
/// a layout this module does not read, at start-up rather than with an empty report.
/// (`database_type` in the metadata is no test: ip-location-db's says `"country ipvAll"`.)
const PROBES: [IpAddr; 4] = [
    IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
    IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)),
    IpAddr::V4(Ipv4Addr::new(9, 9, 9, 9)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888)),
];
const PROBES_TEXT: &str = "8.8.8.8, 1.1.1.1, 9.9.9.9 and 2001:4860:4860::8888";

/// A country database held in memory (read once at start-up).
pub struct GeoDb {
    reader: Reader<Vec<u8>>,
}

impl GeoDb {
    /// Reads the whole file. Fails, naming the path, when it cannot be read, is not a MaxMind
    /// DB, or has no country for any of the well-known public addresses 8.8.8.8, 1.1.1.1,
    /// 9.9.9.9 and 2001:4860:4860::8888 (it is then not a country database).
    pub fn open(path: &Path) -> Result<GeoDb, GeoError> {
        let bytes = std::fs::read(path).map_err(|source| GeoError::Read {
            path: path.to_owned(),
            source,
        })?;
        GeoDb::from_bytes(bytes, path)
    }

    /// A database already in memory; `name` stands for its path in errors. Checked as
    /// [`GeoDb::open`] checks a file.
    pub fn from_bytes(bytes: Vec<u8>, name: &Path) -> Result<GeoDb, GeoError> {
        let path = name;
        let reader = Reader::from_source(bytes).map_err(|source| GeoError::Invalid {
            path: path.to_owned(),
            source,
        })?;
        let db = GeoDb { reader };
        if !PROBES.iter().any(|&ip| db.country(ip).is_some()) {
            return Err(GeoError::NoCountry {
                path: path.to_owned(),
                database_type: db.reader.metadata().database_type.clone(),
            });
        }
        Ok(db)
    }

    /// A short description for the start-up log: database type and build date from its metadata.
    pub fn describe(&self) -> String {
        let meta = self.reader.metadata();
        let built = i64::try_from(meta.build_epoch)
            .ok()
            .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
            .map_or_else(
                || "an unknown date".to_owned(),
                |at| at.format("%Y-%m-%d").to_string(),
            );
        let ips = if meta.ip_version == 6 {
            "IPv4 and IPv6"
        } else {
            "IPv4 only"
        };
        format!("{} built {built} ({ips})", meta.database_type)
    }

    /// `None` for private, loopback, link-local, unspecified and documentation addresses
    /// (checked first, after unmapping `::ffff:a.b.c.d`) and for addresses the database does
    /// not know. Decodes two-byte strings in place: no allocation.
    pub fn country(&self, ip: IpAddr) -> Option<Country> {
        let ip = ip.to_canonical();
        if !is_public(ip) || (ip.is_ipv6() && self.reader.metadata().ip_version == 4) {
            return None;
        }
        match self
            .reader
            .lookup(ip)
            .and_then(|found| found.decode::<Record>())
        {
            Ok(record) => record.and_then(|r| r.country()),
            Err(error) => {
                // The address stays out of the log; the error names an offset in the file.
                tracing::debug!(%error, "country database record not readable");
                None
            }
        }
    }
}

/// The fields of either layout that hold a country; everything else in a record is skipped
/// without being decoded.
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    country_code: Option<&'a str>,
    #[serde(borrow)]
    country: Option<IsoCode<'a>>,
    #[serde(borrow)]
    registered_country: Option<IsoCode<'a>>,
}

#[derive(Deserialize)]
struct IsoCode<'a> {
    #[serde(borrow)]
    iso_code: Option<&'a str>,
}

impl Record<'_> {
    fn country(&self) -> Option<Country> {
        fn iso<'a>(field: &Option<IsoCode<'a>>) -> Option<&'a str> {
            field.as_ref().and_then(|c| c.iso_code)
        }
        self.country_code
            .or_else(|| iso(&self.country))
            .or_else(|| iso(&self.registered_country))
            .and_then(Country::parse)
    }
}

/// False for the addresses no visitor on the public internet has: unspecified, loopback,
/// private (RFC 1918, and IPv6 unique local `fc00::/7`), link-local and documentation ranges.
/// Expects IPv4-mapped IPv6 addresses already unmapped.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_documentation())
        }
        IpAddr::V6(v6) => {
            let [a, b, ..] = v6.segments();
            // 2001:db8::/32 (RFC 3849) and 3fff::/20 (RFC 9637).
            let documentation = (a == 0x2001 && b == 0x0db8) || (a == 0x3fff && b < 0x1000);
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || documentation)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testdb::{flat, mmdb, V};
    use super::*;
    use std::io::Write;
    use std::sync::OnceLock;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn country_codes_are_two_letters_stored_upper_case() {
        assert_eq!(Country::parse("US").unwrap().as_str(), "US");
        assert_eq!(Country::parse("de").unwrap().as_str(), "DE");
        assert_eq!(Country::parse("Xk"), Country::parse("XK"));
        for bad in [
            "", "U", "USA", "U1", "1U", "U ", " U", "é", "ÜS", "--", "u\0",
        ] {
            assert_eq!(Country::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Country::parse("ch").unwrap().to_string(), "CH");
    }

    #[test]
    fn addresses_no_visitor_has_are_not_public() {
        let private = "0.0.0.0 127.0.0.1 127.255.0.9 10.0.0.1 172.16.0.1 172.31.255.255 \
                       192.168.1.1 169.254.10.10 192.0.2.1 198.51.100.7 203.0.113.200 \
                       :: ::1 fc00::1 fd12:3456::1 fe80::1 2001:db8::1 3fff::1 3fff:fff::1";
        for s in private.split_whitespace() {
            assert!(!is_public(ip(s)), "{s}");
        }
        let public = "8.8.8.8 1.1.1.1 172.32.0.1 2001:4860:4860::8888 2001:db9::1 2a00::1 \
                      3ff0::1 3fff:1000::1";
        for s in public.split_whitespace() {
            assert!(is_public(ip(s)), "{s}");
        }
    }

    fn open(bytes: &[u8]) -> Result<GeoDb, GeoError> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(bytes).unwrap();
        GeoDb::open(file.path())
    }

    fn iso(code: &'static str) -> V {
        V::Map(vec![("geoname_id", V::U32(1)), ("iso_code", V::S(code))])
    }

    #[test]
    fn reads_the_flat_layout_of_ip_location_db() {
        let db = open(&mmdb(
            "country ipvAll",
            vec![
                ("8.8.8.0/24", flat("US")),
                ("1.1.1.0/24", flat("AU")),
                // Real data has records for private ranges; they must not count.
                ("10.0.0.0/8", flat("ZZ")),
                ("172.16.0.0/12", flat("AU")),
                ("5.5.0.0/16", flat("not a code")),
            ],
        ))
        .unwrap();
        let us = Country::parse("US");
        assert_eq!(db.country(ip("8.8.8.8")), us);
        assert_eq!(db.country(ip("::ffff:8.8.8.8")), us);
        assert_eq!(db.country(ip("1.1.1.1")), Country::parse("AU"));
        assert_eq!(db.country(ip("10.0.0.1")), None);
        assert_eq!(db.country(ip("172.16.5.4")), None);
        assert_eq!(db.country(ip("5.5.5.5")), None);
        assert_eq!(db.country(ip("9.9.9.9")), None);
        // An IPv4-only database has no answer for IPv6, and no error either.
        assert_eq!(db.country(ip("2001:4860:4860::8888")), None);
        assert_eq!(db.describe(), "country ipvAll built 2026-06-17 (IPv4 only)");
    }

    #[test]
    fn reads_the_geoip2_layout_falling_back_to_the_registered_country() {
        let names = || V::Map(vec![("en", V::S("Somewhere")), ("de", V::S("Irgendwo"))]);
        let full = V::Map(vec![
            (
                "continent",
                V::Map(vec![("code", V::S("NA")), ("names", names())]),
            ),
            (
                "country",
                V::Map(vec![("iso_code", V::S("US")), ("names", names())]),
            ),
            ("registered_country", iso("US")),
        ]);
        let registered = V::Map(vec![("registered_country", iso("AU"))]);
        let both = V::Map(vec![
            ("country", iso("CH")),
            ("registered_country", iso("US")),
        ]);
        let neither = V::Map(vec![("continent", iso("EU"))]);
        let networks = vec![
            ("8.8.8.0/24", full),
            ("1.1.1.0/24", registered),
            ("9.9.9.0/24", both),
            ("4.4.0.0/16", neither),
        ];
        let db = open(&mmdb("GeoLite2-Country", networks)).unwrap();
        assert_eq!(db.country(ip("8.8.8.8")), Country::parse("US"));
        assert_eq!(db.country(ip("1.1.1.1")), Country::parse("AU"));
        assert_eq!(db.country(ip("9.9.9.9")), Country::parse("CH"));
        assert_eq!(db.country(ip("4.4.4.4")), None);
        assert!(db
            .describe()
            .starts_with("GeoLite2-Country built 2026-06-17"));
    }

    #[test]
    fn open_rejects_what_is_not_a_country_database() {
        let missing = GeoDb::open(Path::new("/nonexistent/geo.mmdb"))
            .err()
            .unwrap();
        assert!(matches!(missing, GeoError::Read { .. }));
        assert!(
            missing.to_string().contains("/nonexistent/geo.mmdb"),
            "{missing}"
        );

        let garbage = open(b"GIF89a, not a database").err().unwrap();
        assert!(matches!(garbage, GeoError::Invalid { .. }), "{garbage}");
        assert!(
            garbage.to_string().contains("not a MaxMind DB"),
            "{garbage}"
        );

        let asn = V::Map(vec![("autonomous_system_number", V::U32(15169))]);
        let asn = open(&mmdb("GeoLite2-ASN", vec![("8.8.8.0/24", asn)]))
            .err()
            .unwrap();
        assert!(matches!(asn, GeoError::NoCountry { .. }), "{asn}");
        assert!(asn.to_string().contains("\"GeoLite2-ASN\""), "{asn}");

        // A country database that does not know the probe addresses cannot be told apart.
        let elsewhere = open(&mmdb("country", vec![("5.5.0.0/16", flat("DE"))]));
        assert!(matches!(elsewhere, Err(GeoError::NoCountry { .. })));
    }

    // The real database: the file `scripts/test.sh` installs (`TEST_GEOIP_DB`), else the
    // built-in one (the same data).

    fn real_db() -> &'static GeoDb {
        static DB: OnceLock<std::sync::Arc<GeoDb>> = OnceLock::new();
        DB.get_or_init(|| match std::env::var_os("TEST_GEOIP_DB") {
            Some(path) if path.is_empty() => {
                panic!("TEST_GEOIP_DB is empty: did `scripts/geoip.sh install` fail?")
            }
            Some(path) => {
                std::sync::Arc::new(GeoDb::open(Path::new(&path)).unwrap_or_else(|e| panic!("{e}")))
            }
            None => builtin::builtin().unwrap(),
        })
    }

    #[test]
    fn real_database_knows_public_resolvers() {
        let db = real_db();
        eprintln!("{}", db.describe());
        assert_eq!(db.country(ip("8.8.8.8")), Country::parse("US"));
        assert!(db.country(ip("1.1.1.1")).is_some());
    }

    #[test]
    fn real_database_answers_ipv6_and_mapped_ipv4() {
        let db = real_db();
        assert_eq!(db.country(ip("::ffff:8.8.8.8")), Country::parse("US"));
        assert_eq!(db.country(ip("2001:4860:4860::8888")), Country::parse("US"));
    }

    #[test]
    fn real_database_is_not_asked_about_private_addresses() {
        let db = real_db();
        assert_eq!(db.country(ip("10.0.0.1")), None);
        // This data has records for these (AU and JP); they must not count.
        assert_eq!(db.country(ip("172.16.0.1")), None);
        assert_eq!(db.country(ip("2001:db8::1")), None);
    }
}
