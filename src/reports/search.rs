//! Referrer URL → the search engine it came from, and the search term when it still carries one.
//!
//! Owns the list of recognised engines (a fixed vocabulary of keys: `google`, `bing`, …), the
//! hosts that belong to each, the query parameter that holds each one's term, and how a term is
//! normalised. Hosts are matched exactly, never as substrings: `google.evil.com` and
//! `notbing.com` are not search engines.
//!
//! This module only recognises. It does not count, and it does not escape: a term may contain
//! any character (`.`, `$`, …), and whoever puts it in a field name or a document escapes it.
//! Referrers are sent by the browser, so anyone can claim to come from Google; recognition is
//! for accuracy, never for trust.
//!
//! Most engines no longer put the term in the referrer (Google sends `https://www.google.com/`),
//! so `term` is usually `None`. Browsers never send a referrer's `#fragment`, so only the query
//! string is read.

use url::Url;

/// Terms are cut to this many characters.
const MAX_TERM_CHARS: usize = 100;

/// A search engine recognised from a referrer, with the search term when the referrer still
/// carries one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// A fixed, lower-case key: `google`, `bing`, `duckduckgo`, `yahoo`, `yahoo_japan`, `baidu`,
    /// `yandex`, `ecosia`, `qwant`, `startpage`, `brave`, `naver`, `seznam`, `sogou`, `so360`,
    /// `daum`, `ask`, `aol`, `kagi` or `mojeek`.
    pub engine: &'static str,
    /// The term, decoded, trimmed, with inner whitespace collapsed to one space, lower-cased,
    /// without control characters, and cut to 100 characters. `None` when the referrer has
    /// none, or when the value is a URL rather than a term.
    pub term: Option<String>,
}

/// `None` when the referrer is not a known search engine.
pub fn detect(referrer: &Url) -> Option<Search> {
    let host = referrer.host_str()?;
    let host = host.strip_suffix('.').unwrap_or(host);
    let engine = match referrer.scheme() {
        "http" | "https" => engine(host)?,
        // The Google app on Android sends `android-app://com.google.android.googlequicksearchbox/`.
        "android-app" if host == "com.google.android.googlequicksearchbox" => GOOGLE,
        _ => return None,
    };
    // Google's `/url?q=…` redirect page carries the link's target, not a term.
    let redirect = engine.name == "google" && referrer.path() == "/url";
    let term = if redirect {
        None
    } else {
        engine
            .params
            .iter()
            .find_map(|&name| normalise(&first_value(referrer, name)?))
    };
    Some(Search {
        engine: engine.name,
        term,
    })
}

/// An engine's key and the query parameters that may hold its term, in order of preference:
/// the first that gives a term wins.
#[derive(Clone, Copy)]
struct Engine {
    name: &'static str,
    params: &'static [&'static str],
}

const fn e(name: &'static str, params: &'static [&'static str]) -> Engine {
    Engine { name, params }
}

const Q: &[&str] = &["q"];
const GOOGLE: Engine = e("google", Q);

/// The engine a (lower-case, dot-less) host belongs to.
fn engine(host: &str) -> Option<Engine> {
    let engine = match host {
        "bing.com" | "www.bing.com" | "cn.bing.com" => e("bing", Q),
        "duckduckgo.com" | "www.duckduckgo.com" | "html.duckduckgo.com" | "lite.duckduckgo.com" => {
            e("duckduckgo", Q)
        }
        "baidu.com" | "www.baidu.com" | "m.baidu.com" => e("baidu", &["wd", "word"]),
        "yandex.ru" | "www.yandex.ru" | "yandex.com" | "www.yandex.com" | "yandex.com.tr"
        | "www.yandex.com.tr" | "yandex.by" | "yandex.kz" | "ya.ru" | "www.ya.ru" => {
            e("yandex", &["text"])
        }
        "ecosia.org" | "www.ecosia.org" => e("ecosia", Q),
        "qwant.com" | "www.qwant.com" | "lite.qwant.com" => e("qwant", Q),
        "startpage.com" | "www.startpage.com" | "eu.startpage.com" => {
            e("startpage", &["query", "q"])
        }
        "search.brave.com" => e("brave", Q),
        "search.naver.com" | "m.search.naver.com" => e("naver", &["query"]),
        "search.seznam.cz" => e("seznam", Q),
        // The mobile site calls its parameter `keyword`.
        "sogou.com" | "www.sogou.com" | "m.sogou.com" => e("sogou", &["query", "keyword"]),
        "www.so.com" | "m.so.com" => e("so360", Q),
        "search.daum.net" | "m.search.daum.net" => e("daum", Q),
        "ask.com" | "www.ask.com" => e("ask", Q),
        "search.aol.com" => e("aol", &["q", "query"]),
        "kagi.com" => e("kagi", Q),
        "mojeek.com" | "www.mojeek.com" => e("mojeek", Q),
        _ if at_or_under(host, "search.yahoo.com") => e("yahoo", &["p", "q"]),
        _ if at_or_under(host, "search.yahoo.co.jp") => e("yahoo_japan", &["p"]),
        _ if is_google(host) => GOOGLE,
        _ => return None,
    };
    Some(engine)
}

/// `domain` itself, or any subdomain of it (`uk.search.yahoo.com`).
fn at_or_under(host: &str, domain: &str) -> bool {
    match host.strip_suffix(domain) {
        Some("") => true,
        Some(sub) => sub.len() > 1 && sub.ends_with('.'),
        None => false,
    }
}

/// `google.<tld>`, `google.co.<cc>` or `google.com.<cc>`, bare or under `www.`, `news.` or
/// `images.`; other Google hosts (`mail.`, `docs.`, `drive.`, `accounts.`, …) are not search.
fn is_google(host: &str) -> bool {
    let name = ["www.", "news.", "images."]
        .iter()
        .find_map(|prefix| host.strip_prefix(prefix))
        .unwrap_or(host);
    let Some(suffix) = name.strip_prefix("google.") else {
        return false;
    };
    let country = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_lowercase());
    match suffix.split_once('.') {
        None => suffix == "com" || suffix == "cat" || country(suffix),
        Some((second, cc)) => (second == "co" || second == "com") && country(cc),
    }
}

/// The decoded value of the first `name=` pair in the query.
fn first_value(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// Trims, collapses whitespace, drops control characters, lower-cases and cuts; `None` when
/// nothing is left or the value is a URL.
fn normalise(raw: &str) -> Option<String> {
    let mut term = String::with_capacity(raw.len().min(4 * MAX_TERM_CHARS));
    let mut chars = 0;
    let mut space = false;
    'raw: for c in raw.chars() {
        if c.is_whitespace() {
            space = chars > 0;
            continue;
        }
        if c.is_control() {
            continue;
        }
        if space {
            if chars + 2 > MAX_TERM_CHARS {
                break;
            }
            term.push(' ');
            chars += 1;
            space = false;
        }
        for lower in c.to_lowercase() {
            if chars == MAX_TERM_CHARS {
                break 'raw;
            }
            term.push(lower);
            chars += 1;
        }
    }
    let url_like = term.starts_with("http://") || term.starts_with("https://");
    (chars > 0 && !url_like).then_some(term)
}

#[cfg(test)]
mod tests {
    use super::*;
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    use proptest::prelude::*;

    fn search(referrer: &str) -> Option<(&'static str, Option<String>)> {
        let url = Url::parse(referrer).expect("test referrers parse");
        detect(&url).map(|s| (s.engine, s.term))
    }

    fn found(engine: &'static str, term: Option<&str>) -> Option<(&'static str, Option<String>)> {
        Some((engine, term.map(str::to_owned)))
    }

    #[test]
    fn google_with_and_without_a_term() {
        assert_eq!(
            search("https://www.google.com/search?q=rust+analytics&oq=rust&sourceid=chrome"),
            found("google", Some("rust analytics"))
        );
        for referrer in [
            "https://www.google.co.uk/",
            "https://google.co.uk/",
            "https://www.google.com.br/",
            "https://www.google.de/",
            "https://google.cat/",
            "https://news.google.com/",
            "https://images.google.com/",
            "https://WWW.GOOGLE.FR./",
            "https://www.google.com:443/",
            "android-app://com.google.android.googlequicksearchbox/",
        ] {
            assert_eq!(search(referrer), found("google", None), "{referrer}");
        }
    }

    #[test]
    fn a_url_is_not_a_term() {
        assert_eq!(
            search("https://www.google.com/url?q=/about&sa=t"),
            found("google", None)
        );
        assert_eq!(
            search("https://www.google.com/search?q=https%3A%2F%2Ftally.example%2F"),
            found("google", None)
        );
        assert_eq!(
            search("https://www.bing.com/search?q=HTTP://x.example"),
            found("bing", None)
        );
    }

    #[test]
    fn each_engine_and_its_parameter() {
        let cases = [
            (
                "https://www.bing.com/search?q=Self-Hosted%20Analytics&form=QBLH",
                "bing",
                "self-hosted analytics",
            ),
            ("https://cn.bing.com/search?q=a", "bing", "a"),
            (
                "https://duckduckgo.com/?q=tally+%C3%A9t%C3%A9&t=h_",
                "duckduckgo",
                "tally été",
            ),
            ("https://html.duckduckgo.com/html/?q=b", "duckduckgo", "b"),
            ("https://lite.duckduckgo.com/lite/?q=c", "duckduckgo", "c"),
            ("https://uk.search.yahoo.com/search?p=foo", "yahoo", "foo"),
            ("https://search.yahoo.com/search?q=bar", "yahoo", "bar"),
            (
                "https://search.yahoo.co.jp/search?p=%E6%A4%9C%E7%B4%A2",
                "yahoo_japan",
                "検索",
            ),
            (
                "https://www.baidu.com/s?wd=%E7%BB%9F%E8%AE%A1",
                "baidu",
                "统计",
            ),
            ("https://m.baidu.com/s?word=x", "baidu", "x"),
            ("https://yandex.ru/search/?text=x", "yandex", "x"),
            ("https://yandex.com.tr/search/?text=t", "yandex", "t"),
            ("https://ya.ru/search/?text=y", "yandex", "y"),
            ("https://www.ecosia.org/search?q=y", "ecosia", "y"),
            ("https://www.qwant.com/?q=q&t=web", "qwant", "q"),
            (
                "https://www.startpage.com/do/search?query=s",
                "startpage",
                "s",
            ),
            (
                "https://www.startpage.com/sp/search?q=s2",
                "startpage",
                "s2",
            ),
            ("https://search.brave.com/search?q=b", "brave", "b"),
            (
                "https://search.naver.com/search.naver?query=%EB%B6%84%EC%84%9D",
                "naver",
                "분석",
            ),
            ("https://search.seznam.cz/?q=z", "seznam", "z"),
            ("https://www.sogou.com/web?query=s", "sogou", "s"),
            (
                "https://m.sogou.com/web/searchList.jsp?keyword=k",
                "sogou",
                "k",
            ),
            ("https://www.so.com/s?q=360", "so360", "360"),
            ("https://search.daum.net/search?w=tot&q=d", "daum", "d"),
            ("https://www.ask.com/web?q=a", "ask", "a"),
            ("https://search.aol.com/aol/search?q=o", "aol", "o"),
            ("https://kagi.com/search?q=k", "kagi", "k"),
            ("https://www.mojeek.com/search?q=m", "mojeek", "m"),
        ];
        for (referrer, engine, term) in cases {
            assert_eq!(search(referrer), found(engine, Some(term)), "{referrer}");
        }
    }

    #[test]
    fn the_first_parameter_and_the_first_occurrence_win() {
        assert_eq!(
            search("https://www.baidu.com/s?word=second&wd=first&wd=later"),
            found("baidu", Some("first"))
        );
        assert_eq!(
            search("https://search.yahoo.com/search?q=q&p=p"),
            found("yahoo", Some("p"))
        );
        // Within one parameter only the first occurrence counts, even when it is empty...
        assert_eq!(
            search("https://www.google.com/search?q=&q=x"),
            found("google", None)
        );
        // ...but an empty parameter gives way to the engine's next one.
        assert_eq!(
            search("https://www.baidu.com/s?wd=+&word=x"),
            found("baidu", Some("x"))
        );
    }

    #[test]
    fn terms_are_normalised() {
        let term = |value: &str| {
            let url = format!("https://www.google.com/search?q={value}");
            search(&url).and_then(|(_, term)| term)
        };
        assert_eq!(
            term("++Rust%09%0A++Web%C2%A0Analytics++").as_deref(),
            Some("rust web analytics")
        );
        assert_eq!(term("%C3%89T%C3%89+%CE%A3").as_deref(), Some("été σ"));
        assert_eq!(term("a%00b%07+c").as_deref(), Some("ab c"));
        assert_eq!(term("%FF").as_deref(), Some("\u{fffd}"));
        assert_eq!(term("+%20%09+"), None);
        assert_eq!(term("%00"), None);
        let long = term(&"%C3%A9".repeat(150)).unwrap();
        assert_eq!(long, "é".repeat(MAX_TERM_CHARS));
        // The cut never leaves a trailing space.
        let words = term(&format!("{}+b", "a".repeat(MAX_TERM_CHARS - 1))).unwrap();
        assert_eq!(words, "a".repeat(MAX_TERM_CHARS - 1));
    }

    #[test]
    fn look_alikes_and_other_sites_are_not_engines() {
        for referrer in [
            "https://google.evil.com/?q=x",
            "https://www.google.evil.com/search?q=x",
            "https://notgoogle.com/?q=x",
            "https://google.com.evil/?q=x",
            "https://google.co.evil.com/?q=x",
            "https://www.google.com.evil.com/?q=x",
            "https://www.google.com@evil.com/?q=x",
            "https://mail.google.com/",
            "https://docs.google.com/document/d/1",
            "https://drive.google.com/",
            "https://accounts.google.com/",
            "https://www.www.google.com/",
            "https://example.com/?q=x",
            "https://notbing.com/search?q=x",
            "https://bing.com.evil.com/search?q=x",
            "https://xsearch.yahoo.com/search?p=x",
            "https://yahoo.com/?p=x",
            "https://search.yahoo.com.evil.com/?p=x",
            "https://mail.yandex.ru/",
            "ftp://www.google.com/",
            "android-app://com.google.android.gm/",
            "https://[::1]/?q=x",
            "https://127.0.0.1/?q=x",
        ] {
            assert_eq!(search(referrer), None, "{referrer}");
        }
    }

    fn host() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "www.google.com",
                "google.co.uk",
                "www.bing.com",
                "duckduckgo.com",
                "uk.search.yahoo.com",
                "www.baidu.com",
                "yandex.ru",
                "www.startpage.com",
                "m.sogou.com",
            ])
            .prop_map(str::to_owned),
            "[A-Za-z0-9.-]{1,40}",
            "(www\\.|news\\.|[a-z]{1,5}\\.)?google\\.([a-z]{2,3}|co\\.[a-z]{2}|com\\.[a-z]{2,3})",
            "[a-z.]{0,8}search\\.yahoo\\.co[a-z.]{0,5}",
        ]
    }

    fn query() -> impl Strategy<Value = String> {
        let name = prop::sample::select(vec![
            "q", "p", "wd", "word", "text", "query", "keyword", "x",
        ]);
        prop_oneof![
            ".{0,300}",
            (name.clone(), ".{0,300}").prop_map(|(k, v)| format!("{k}={v}")),
            (name, prop::collection::vec(any::<u8>(), 0..300)).prop_map(|(k, bytes)| {
                let value: String = bytes.iter().map(|b| format!("%{b:02X}")).collect();
                format!("a=1&{k}={value}")
            }),
            ".{0,120}".prop_map(|v| format!("q={}", utf8_percent_encode(&v, NON_ALPHANUMERIC))),
        ]
    }

    proptest! {
        #[test]
        fn never_panics_and_terms_are_clean(
            scheme in prop::sample::select(vec!["https", "http", "android-app", "ftp"]),
            host in host(),
            path in prop::sample::select(vec!["/", "/search", "/url", "/s"]),
            query in query(),
        ) {
            let Ok(url) = Url::parse(&format!("{scheme}://{host}{path}?{query}")) else {
                return Ok(());
            };
            let Some(found) = detect(&url) else {
                return Ok(());
            };
            prop_assert!(found
                .engine
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            if let Some(term) = found.term {
                prop_assert!(!term.is_empty());
                prop_assert_eq!(term.trim(), term.as_str());
                prop_assert!(term.chars().count() <= MAX_TERM_CHARS);
                prop_assert!(!term.chars().any(char::is_control));
                prop_assert!(!term.contains("  "));
                prop_assert!(term.chars().all(|c| c == ' ' || !c.is_whitespace()));
                prop_assert!(!term.starts_with("http://") && !term.starts_with("https://"));
            }
        }
    }
}
