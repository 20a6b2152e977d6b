//! What the ingest endpoints read from a request's headers to decide whether a site wants it
//! counted: the host of the page that sent it, and the visitor's opt-out.
//!
//! - The page's host comes from `Origin` (sent with `fetch` and `sendBeacon`), else from
//!   `Referer` (sent with an `<img>` pixel; under the default referrer policy it holds at least
//!   the page's origin). `Origin: null` (sandboxed frames, `file:` pages, some redirects), an
//!   empty or unreadable header and a URL without a host name no host; a request naming no
//!   host is counted, since privacy extensions and `Referrer-Policy: no-referrer` strip
//!   `Referer` from real visits.
//! - The opt-out is `DNT: 1` or `Sec-GPC: 1`; it only matters for sites that honour it.
//!
//! Parsing only; the decision is [`Sender::check`] against the site.

use crate::metrics::Rejection;
use crate::site::Site;
use actix_web::http::header::{self, HeaderMap, HeaderName};

static SEC_GPC: HeaderName = HeaderName::from_static("sec-gpc");
static DNT: HeaderName = HeaderName::from_static("dnt");

/// A request's page host and opt-out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sender<'a> {
    /// The page's host (as sent: any case, `[v6]` in brackets) and explicit port.
    pub page_host: Option<(&'a str, Option<u16>)>,
    /// `DNT: 1` or `Sec-GPC: 1`.
    pub opted_out: bool,
    /// The `User-Agent` (for the people sketches of `/e`, when the event carries no `vi`).
    pub user_agent: &'a str,
}

impl<'a> Sender<'a> {
    pub fn from_headers(headers: &'a HeaderMap) -> Sender<'a> {
        let text = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        let page_host = match text(&header::ORIGIN).map(str::trim) {
            Some(origin) if !origin.is_empty() && origin != "null" => url_host(origin),
            _ => text(&header::REFERER).and_then(url_host),
        };
        let one = |name: &HeaderName| text(name).is_some_and(|v| v.trim() == "1");
        Sender {
            page_host,
            opted_out: one(&DNT) || one(&SEC_GPC),
            user_agent: text(&header::USER_AGENT).unwrap_or_default(),
        }
    }

    /// Whether `site` wants this request counted: from one of its hosts (or a site without
    /// hosts, or no host named), and not opted out where the site honours opt-outs.
    pub fn check(&self, site: &Site) -> Result<(), Rejection> {
        if let Some((host, port)) = self.page_host {
            if !site.allows_host(host, port) {
                return Err(Rejection::DisallowedHost);
            }
        }
        if site.honor_dnt && self.opted_out {
            return Err(Rejection::DoNotTrack);
        }
        Ok(())
    }
}

/// The host and explicit port of an absolute URL (`scheme://[user@]host[:port][/…]`); `None`
/// when there is no `://` or no host.
pub fn url_host(url: &str) -> Option<(&str, Option<u16>)> {
    let rest = &url[url.find("://")? + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let authority = &authority[authority.rfind('@').map_or(0, |i| i + 1)..];
    let (host, port) = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => {
            let port = &authority[i + 1..];
            let port = if port.is_empty() {
                None
            } else {
                Some(port.parse::<u16>().ok()?)
            };
            (&authority[..i], port)
        }
        _ => (authority, None),
    };
    if host.is_empty() || (host.contains(':') && !host.starts_with('[')) {
        return None;
    }
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn sender(headers: &[(&str, &str)]) -> (Option<(String, Option<u16>)>, bool) {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let s = Sender::from_headers(&map);
        (s.page_host.map(|(h, p)| (h.to_owned(), p)), s.opted_out)
    }

    fn host(h: &str, p: Option<u16>) -> Option<(String, Option<u16>)> {
        Some((h.to_owned(), p))
    }

    #[test]
    fn urls_give_their_host_and_port() {
        assert_eq!(
            url_host("https://acme.example"),
            Some(("acme.example", None))
        );
        assert_eq!(
            url_host("http://Acme.Example:8080/a/b?c#d"),
            Some(("Acme.Example", Some(8080)))
        );
        assert_eq!(
            url_host("https://u:p@acme.example/"),
            Some(("acme.example", None))
        );
        assert_eq!(url_host("http://[::1]:3000/x"), Some(("[::1]", Some(3000))));
        assert_eq!(url_host("http://[::1]/x"), Some(("[::1]", None)));
        assert_eq!(
            url_host("https://acme.example:/"),
            Some(("acme.example", None))
        );
        assert_eq!(
            url_host("chrome-extension://abcdef/page.html"),
            Some(("abcdef", None))
        );
        for none in [
            "",
            "null",
            "acme.example",
            "file:///home/a.html",
            "http://:80/",
            "http://a:99999/",
            "http://::1/",
        ] {
            assert_eq!(url_host(none), None, "{none:?}");
        }
    }

    #[test]
    fn origin_wins_over_referer() {
        assert_eq!(
            sender(&[
                ("origin", "https://a.example"),
                ("referer", "https://b.example/x")
            ]),
            (host("a.example", None), false)
        );
        assert_eq!(
            sender(&[("referer", "https://b.example:8443/x?y")]),
            (host("b.example", Some(8443)), false)
        );
        // `Origin: null` says nothing about the page: the Referer, if any, is read.
        assert_eq!(
            sender(&[("origin", "null"), ("referer", "https://b.example/")]),
            (host("b.example", None), false)
        );
        assert_eq!(sender(&[("origin", "null")]), (None, false));
        assert_eq!(sender(&[]), (None, false));
        assert_eq!(sender(&[("referer", "garbage")]), (None, false));
    }

    #[test]
    fn opt_outs_are_dnt_or_gpc_set_to_one() {
        assert!(sender(&[("dnt", "1")]).1);
        assert!(sender(&[("sec-gpc", " 1 ")]).1);
        assert!(!sender(&[("dnt", "0")]).1);
        assert!(!sender(&[("sec-gpc", "yes")]).1);
    }
}
