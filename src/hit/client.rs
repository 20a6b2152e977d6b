//! What tally keeps of the client that sent a hit: the class of its User-Agent and its
//! country. The types only: parsing them (woothee, the country database) is `track/`'s.

use compact_str::CompactString;
use std::fmt;

/// What tally keeps of a User-Agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    /// `chrome`, `firefox`, `safari`, `edge`, `opera`, `ie`, `samsung`, … or `other`.
    pub browser: &'static str,
    /// `major-minor`, e.g. `131-0`, or `unknown`.
    pub version: CompactString,
    /// `windows`, `macos`, `linux`, `android`, `ios`, `chromeos`, … or `other`.
    pub platform: &'static str,
    /// `desktop`, `mobile`, `tablet` or `other`.
    pub device: &'static str,
    /// Crawlers, HTTP libraries, headless browsers: never counted.
    pub bot: bool,
}

/// An ISO 3166-1 alpha-2 country code, upper-case, validated (two ASCII letters A-Z).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Country([u8; 2]);

impl Country {
    /// Two ASCII letters, in either case; stored upper-case. Whether the code is assigned
    /// (`XK` is not, and is in use) is not checked.
    pub fn parse(code: &str) -> Option<Country> {
        match *code.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some(Country([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => None,
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a Country is two ASCII letters")
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
