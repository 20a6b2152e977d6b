//! User-Agent → browser, version, platform and device class, with `woothee`.
//!
//! Keys are chosen from a fixed vocabulary (`chrome`, `windows`, `tablet`, …), so a User-Agent
//! can never invent a field name; the version is digits only (`131-0`). Crawlers, HTTP
//! libraries and headless browsers are marked as bots and are not counted. Three filters, in
//! order: a short list of automation markers, woothee's `crawler` category, and the `isbot`
//! crate's list (several hundred patterns from the maintained omrilotan/isbot and
//! monperrus/crawler-user-agents lists), which catches the monitors, SEO tools, feed readers
//! and AI crawlers woothee does not know.
//!
//! Parsing costs microseconds (woothee and isbot run regular expressions), and a site's
//! visitors send few distinct User-Agents, so results are cached per worker thread in a
//! bounded map: the filters run once per distinct User-Agent per thread.

use crate::hit::text::truncate;
pub use crate::hit::Agent;
use compact_str::{format_compact, CompactString};
use std::cell::RefCell;
use std::sync::LazyLock;
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use woothee::parser::Parser;

/// User-Agents longer than this are cut (at a character boundary) before parsing.
pub const MAX_UA_BYTES: usize = 512;

/// Distinct User-Agents remembered per worker thread; the cache is emptied when full.
const CACHE_ENTRIES: usize = 4096;

/// The `isbot` list, compiled once (a few milliseconds) into one regular expression.
static BOTS: LazyLock<isbot::Bots> = LazyLock::new(isbot::Bots::default);

impl Agent {
    /// Parses a User-Agent header (cut to [`MAX_UA_BYTES`]), using this thread's cache.
    pub fn parse(ua: &str) -> Agent {
        let ua = truncate(ua, MAX_UA_BYTES);
        thread_local! {
            static CACHE: RefCell<HashMap<Box<str>, Agent>> = RefCell::new(HashMap::default());
        }
        CACHE.with(|cache| {
            if let Some(agent) = cache.borrow().get(ua) {
                return agent.clone();
            }
            let agent = Agent::parse_uncached(ua);
            let mut cache = cache.borrow_mut();
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(ua.into(), agent.clone());
            agent
        })
    }

    /// Parses without the cache (benchmarks compare the two).
    pub fn parse_uncached(ua: &str) -> Agent {
        let ua = truncate(ua, MAX_UA_BYTES);
        if ua.trim().is_empty() || looks_automated(ua) {
            return Agent::bot();
        }
        let parsed = Parser::new().parse(ua);
        if parsed.as_ref().is_some_and(|r| r.category == "crawler") || BOTS.is_bot(ua) {
            return Agent::bot();
        }
        let Some(r) = parsed else {
            return Agent {
                browser: "other",
                version: CompactString::const_new("unknown"),
                platform: "other",
                device: "other",
                bot: false,
            };
        };
        let platform = platform_key(r.os);
        Agent {
            browser: browser_key(r.name),
            version: major_minor(r.version),
            platform,
            device: device_key(r.category, r.os, ua),
            bot: false,
        }
    }

    /// Whether the `isbot` list alone names this User-Agent (benchmarks measure it apart).
    pub fn on_bot_list(ua: &str) -> bool {
        BOTS.is_bot(ua)
    }

    fn bot() -> Agent {
        Agent {
            browser: "other",
            version: CompactString::const_new("unknown"),
            platform: "other",
            device: "other",
            bot: true,
        }
    }
}

/// Automation that woothee does not call a crawler.
fn looks_automated(ua: &str) -> bool {
    const MARKERS: [&str; 16] = [
        "headlesschrome",
        "lighthouse",
        "phantomjs",
        "slimerjs",
        "puppeteer",
        "playwright",
        "selenium",
        "python-requests",
        "python-urllib",
        "go-http-client",
        "okhttp",
        "curl/",
        "wget/",
        "uptimerobot",
        "pingdom",
        "preview",
    ];
    let lower = ua.to_ascii_lowercase();
    MARKERS.iter().any(|m| lower.contains(m))
}

fn browser_key(name: &str) -> &'static str {
    match name {
        "Chrome" => "chrome",
        "Firefox" => "firefox",
        "Safari" => "safari",
        "Edge" => "edge",
        "Opera" => "opera",
        "Internet Explorer" => "ie",
        "SamsungBrowser" => "samsung",
        "Vivaldi" => "vivaldi",
        "Yandex Browser" => "yandex",
        "Google Search App" => "gsa",
        "Webview" => "webview",
        "Sleipnir" => "sleipnir",
        _ => "other",
    }
}

fn platform_key(os: &str) -> &'static str {
    match os {
        "Windows Phone OS" => "windows_phone",
        "Mac OSX" | "Mac OS Classic" => "macos",
        "Linux" => "linux",
        "Android" => "android",
        "iPhone" | "iPad" | "iPod" | "iOS" => "ios",
        "ChromeOS" => "chromeos",
        "BSD" => "bsd",
        "Firefox OS" => "firefox_os",
        "BlackBerry" | "BlackBerry 10" => "blackberry",
        os if os.starts_with("Windows") => "windows",
        os if os.starts_with("PlayStation") => "playstation",
        os if os.starts_with("Xbox") => "xbox",
        os if os.starts_with("Nintendo") => "nintendo",
        _ => "other",
    }
}

/// woothee files iPads and Android tablets under "smartphone"; tally calls them tablets.
fn device_key(category: &str, os: &str, ua: &str) -> &'static str {
    match category {
        "pc" => "desktop",
        "smartphone" if os == "iPad" => "tablet",
        "smartphone" if os == "Android" && !ua.contains("Mobile") => "tablet",
        "smartphone" | "mobilephone" => "mobile",
        _ => "other",
    }
}

/// `"131.0.6778.86"` → `"131-0"`; `"17"` → `"17-0"`; no digits → `"unknown"`.
fn major_minor(version: &str) -> CompactString {
    let mut parts = version.split('.').map(|p| {
        let digits = p.bytes().take_while(u8::is_ascii_digit).count();
        &p[..digits.min(6)]
    });
    match (parts.next(), parts.next()) {
        (Some(major), minor) if !major.is_empty() => {
            let minor = minor.filter(|m| !m.is_empty()).unwrap_or("0");
            format_compact!("{major}-{minor}")
        }
        _ => CompactString::const_new("unknown"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const CHROME_WIN: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

    fn parse(ua: &str) -> (&'static str, String, &'static str, &'static str, bool) {
        let a = Agent::parse(ua);
        (
            a.browser,
            a.version.to_string(),
            a.platform,
            a.device,
            a.bot,
        )
    }

    #[test]
    fn common_browsers() {
        assert_eq!(
            parse(CHROME_WIN),
            ("chrome", "131-0".into(), "windows", "desktop", false)
        );
        assert_eq!(
            parse("Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0"),
            ("firefox", "133-0".into(), "macos", "desktop", false)
        );
        assert_eq!(
            parse("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15"),
            ("safari", "17-1".into(), "macos", "desktop", false)
        );
        assert_eq!(
            parse("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86"),
            ("edge", "131-0".into(), "windows", "desktop", false)
        );
        assert_eq!(
            parse("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"),
            ("chrome", "130-0".into(), "linux", "desktop", false)
        );
    }

    #[test]
    fn phones_and_tablets() {
        assert_eq!(
            parse("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"),
            ("safari", "17-1".into(), "ios", "mobile", false)
        );
        assert_eq!(
            parse("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1"),
            ("safari", "16-6".into(), "ios", "tablet", false)
        );
        assert_eq!(
            parse("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"),
            ("chrome", "131-0".into(), "android", "mobile", false)
        );
        assert_eq!(
            parse("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
            ("chrome", "131-0".into(), "android", "tablet", false)
        );
        assert_eq!(
            parse("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36"),
            ("samsung", "23-0".into(), "android", "mobile", false)
        );
    }

    #[test]
    fn bots_are_marked() {
        for ua in [
            "",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "curl/8.5.0",
            "python-requests/2.31.0",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
        ] {
            assert!(Agent::parse(ua).bot, "{ua:?} should be a bot");
        }
    }

    /// Crawlers woothee files as browsers (or does not know), caught by the `isbot` list.
    pub const ISBOT_ONLY: [&str; 5] = [
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 (compatible; Google-InspectionTool/1.0)",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36; compatible; OAI-SearchBot/1.0; +https://openai.com/searchbot",
        "Mozilla/5.0 (compatible; Bytespider; spider-feedback@bytedance.com) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.0.0 Safari/537.36",
        "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 5 subscribers)",
        "axios/1.6.0",
    ];

    #[test]
    fn the_isbot_list_catches_what_woothee_misses() {
        for ua in ISBOT_ONLY {
            let woothee = Parser::new().parse(ua);
            assert!(
                woothee.is_none_or(|r| r.category != "crawler"),
                "woothee already knows {ua:?}: pick one it does not"
            );
            assert!(!looks_automated(ua), "{ua:?}");
            assert!(Agent::parse_uncached(ua).bot, "{ua:?} should be a bot");
        }
    }

    #[test]
    fn real_browsers_are_not_bots() {
        // Every browser the load benchmark sends (scripts/bench/mix.lua) and the tests use.
        let mix = include_str!("../../scripts/bench/mix.lua");
        let agents: Vec<&str> = mix
            .lines()
            .filter_map(|l| l.trim().strip_prefix("\"Mozilla/5.0"))
            .map(|rest| rest.trim_end_matches(',').trim_end_matches('"'))
            .collect();
        assert!(
            agents.len() >= 40,
            "found {} agents in mix.lua",
            agents.len()
        );
        for rest in agents {
            let ua = format!("Mozilla/5.0{rest}");
            assert!(!Agent::parse_uncached(&ua).bot, "{ua:?} is a browser");
        }
        assert!(!Agent::parse_uncached(CHROME_WIN).bot);
    }

    #[test]
    fn odd_input_stays_in_the_vocabulary() {
        let long = format!("{CHROME_WIN}{}", "x".repeat(10_000));
        let a = Agent::parse(&long);
        assert_eq!(a.browser, "chrome");
        let weird = Agent::parse("Mozilla/5.0 (\0$.\u{fffd}) Chrome/9999999999.abc");
        assert!(crate::field::is_safe_segment(weird.browser));
        assert!(crate::field::is_safe_segment(&weird.version));
        assert_eq!(major_minor("1a.2b"), "1-2");
        assert_eq!(major_minor("UNKNOWN"), "unknown");
        assert_eq!(truncate("héllo", 2), "h");
    }
}
