//! The country database compiled into tally, the default of `--geoip-db`, and [`GeoSource`],
//! what that flag names: the built-in database, a file, or none.
//!
//! The built-in database is ip-location-db's geo-whois-asn-country (NRO data, CC BY 4.0; see
//! `data/geoip/README.md`), kept gzip-compressed in the binary (3.9 MB for 7.8 MB) and
//! unpacked into memory once per process, the first time it is asked for; every tracker of
//! the process shares that copy. `scripts/geoip.sh` pins its SHA-256 and refreshes it.
//!
//! This module must not reach the network or the file system for the built-in database: it
//! comes with the source.

use super::{GeoDb, GeoError};
use flate2::read::GzDecoder;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// `data/geoip/geo-whois-asn-country.mmdb.gz`, as `scripts/geoip.sh refresh-embedded` wrote it.
static PACKED: &[u8] = include_bytes!("../../../data/geoip/geo-whois-asn-country.mmdb.gz");

/// What errors about the built-in database name instead of a path.
const BUILTIN_NAME: &str = "(built-in)";

/// Where the country database comes from: `--geoip-db builtin|none|FILE`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum GeoSource {
    /// The database compiled into tally: the default.
    #[default]
    Builtin,
    /// No database: no country is looked up and no locations report is kept.
    None,
    /// A MaxMind-format file (GeoLite2-Country, DB-IP, ip-location-db), read once at start-up.
    File(PathBuf),
}

impl GeoSource {
    /// `builtin`, `none`, or the path of a file (`./none` for a file called `none`).
    pub fn parse(raw: &str) -> Result<GeoSource, String> {
        match raw {
            "" => Err("an empty value: give a .mmdb file, `builtin` or `none`".to_owned()),
            "builtin" => Ok(GeoSource::Builtin),
            "none" => Ok(GeoSource::None),
            path => Ok(GeoSource::File(PathBuf::from(path))),
        }
    }

    /// The database this names, in memory; `None` for `none`. A file is read now; the built-in
    /// database is unpacked on the first call in the process and shared after.
    pub fn open(&self) -> Result<Option<Arc<GeoDb>>, GeoError> {
        match self {
            GeoSource::Builtin => builtin().map(Some),
            GeoSource::None => Ok(None),
            GeoSource::File(path) => GeoDb::open(path).map(|db| Some(Arc::new(db))),
        }
    }
}

impl fmt::Display for GeoSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GeoSource::Builtin => f.write_str("builtin"),
            GeoSource::None => f.write_str("none"),
            GeoSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The built-in database, unpacked on the first call and shared by every later one.
pub fn builtin() -> Result<Arc<GeoDb>, GeoError> {
    static DB: OnceLock<Arc<GeoDb>> = OnceLock::new();
    if let Some(db) = DB.get() {
        return Ok(Arc::clone(db));
    }
    let db = Arc::new(GeoDb::from_bytes(unpack(PACKED)?, Path::new(BUILTIN_NAME))?);
    Ok(Arc::clone(DB.get_or_init(|| db)))
}

/// Gunzips `packed` into one allocation of the size its trailer states (ISIZE: the unpacked
/// length modulo 2³², ample for a database of megabytes), so no copy is made on the way.
fn unpack(packed: &[u8]) -> Result<Vec<u8>, GeoError> {
    let stated = packed
        .len()
        .checked_sub(4)
        .and_then(|at| packed[at..].try_into().ok())
        .map_or(0, u32::from_le_bytes);
    let mut out = Vec::with_capacity(stated as usize);
    GzDecoder::new(packed)
        .read_to_end(&mut out)
        .map_err(|source| GeoError::Read {
            path: PathBuf::from(BUILTIN_NAME),
            source,
        })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::testdb::{flat, mmdb};
    use super::*;
    use crate::hit::Country;
    use sha2::{Digest, Sha256};
    use std::io::Write;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The `SHA256=` pin of `scripts/geoip.sh`.
    fn pinned_sha256() -> String {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/geoip.sh");
        let text = std::fs::read_to_string(script).unwrap();
        let pin = text.lines().find_map(|l| l.strip_prefix("SHA256="));
        pin.expect("scripts/geoip.sh pins SHA256=").to_owned()
    }

    #[test]
    fn the_embedded_database_is_the_pinned_one() {
        let unpacked = unpack(PACKED).unwrap();
        assert_eq!(hex::encode(Sha256::digest(&unpacked)), pinned_sha256());
        assert_eq!(
            unpacked.len(),
            unpacked.capacity(),
            "unpacked in one allocation"
        );
    }

    #[test]
    fn the_builtin_database_answers_ipv4_and_ipv6_and_is_unpacked_once() {
        let db = builtin().unwrap();
        assert_eq!(db.country(ip("8.8.8.8")), Country::parse("US"));
        assert_eq!(db.country(ip("2001:4860:4860::8888")), Country::parse("US"));
        assert!(db.country(ip("1.1.1.1")).is_some());
        assert_eq!(db.country(ip("127.0.0.1")), None);
        assert_eq!(db.country(ip("10.0.0.1")), None);
        assert!(
            db.describe().ends_with("(IPv4 and IPv6)"),
            "{}",
            db.describe()
        );
        assert!(Arc::ptr_eq(&db, &builtin().unwrap()));
    }

    #[test]
    fn what_the_flag_accepts() {
        assert_eq!(GeoSource::default(), GeoSource::Builtin);
        assert_eq!(GeoSource::parse("builtin"), Ok(GeoSource::Builtin));
        assert_eq!(GeoSource::parse("none"), Ok(GeoSource::None));
        for path in [
            "./none",
            "/var/lib/GeoLite2-Country.mmdb",
            "None",
            "geo.mmdb",
        ] {
            assert_eq!(GeoSource::parse(path), Ok(GeoSource::File(path.into())));
        }
        assert!(GeoSource::parse("").is_err());
        for s in ["builtin", "none", "/x/geo.mmdb"] {
            assert_eq!(GeoSource::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn a_file_overrides_the_builtin_database_and_none_turns_it_off() {
        // A database that places 8.8.8.8 in Switzerland, which the built-in one does not.
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let networks = vec![("8.8.8.0/24", flat("CH")), ("1.1.1.0/24", flat("AU"))];
        file.write_all(&mmdb("country", networks)).unwrap();
        let source = GeoSource::File(file.path().to_owned());
        let db = source.open().unwrap().unwrap();
        assert_eq!(db.country(ip("8.8.8.8")), Country::parse("CH"));
        let builtin = GeoSource::Builtin.open().unwrap().unwrap();
        assert_eq!(builtin.country(ip("8.8.8.8")), Country::parse("US"));
        assert!(GeoSource::None.open().unwrap().is_none());
        let missing = GeoSource::File("/nonexistent/geo.mmdb".into()).open();
        assert!(matches!(missing, Err(GeoError::Read { .. })));
    }
}
