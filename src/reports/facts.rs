//! What several reports derive from a hit's page URL and referrer, worked out once per distinct
//! value.
//!
//! Parsing a URL (WHATWG rules), decoding its path, reading campaign parameters, recognising a
//! search engine and escaping the results into field names was most of a hit's cost. Pages and
//! referrers repeat heavily (a site's traffic is a few popular pages), so each worker thread
//! keeps what it derived per distinct `(site, raw value)` in a two-generation cache
//! ([`Generations`]): at most 2 × [`CACHE_ENTRIES`] of each, and a value in use survives
//! when the cache turns over. [`HitFacts`] holds a hit's results for every report to share.
//! Nothing here is report-specific counting: the reports build their fields from these facts.

use super::search;
use super::{campaigns, content};
use crate::field::Key;
use crate::hit::{Hit, Text};
use crate::site::{strip_www, Site, SiteId};
use compact_str::CompactString;
use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::ops::Deref;
use std::rc::Rc;
use std::sync::LazyLock;
use url::Url;

/// Distinct values in each generation, per worker thread, for pages and for referrers each.
pub const CACHE_ENTRIES: usize = 8192;

/// What a path-only `url` (an `<img>` pixel written by hand, `url=/about`) is read against; its
/// host is never reported.
static RELATIVE_BASE: LazyLock<Url> =
    LazyLock::new(|| Url::parse("http://relative.invalid/").expect("a valid URL"));

/// From the page URL.
#[derive(Debug, PartialEq, Eq)]
pub struct PageFacts {
    /// The page: its path (and kept query parameters), escaped.
    pub page: Key,
    pub source: Option<Key>,
    pub medium: Option<Key>,
    pub campaign: Option<Key>,
    /// The host the browser saw, without `www.` (absent for a path-only URL).
    pub host: Option<CompactString>,
}

/// From the referrer.
#[derive(Debug, PartialEq, Eq)]
pub struct RefFacts {
    /// Lower-case host without `www.`, with an explicit port: `example.com:8080`.
    pub host: CompactString,
    /// The same without the port, for comparing with the site's hosts.
    pub bare: CompactString,
    pub port: Option<u16>,
    /// `host` escaped, and host + decoded path (no query) escaped.
    pub host_key: Key,
    pub link_key: Key,
    /// The search engine and the escaped term, when it is one.
    pub search: Option<(&'static str, Option<Key>)>,
}

/// A hit as the reports count it: the hit, and what they derive from its page URL and
/// referrer, each worked out at most once per hit (and usually found in this thread's cache).
/// It reads as the hit itself (`Deref`).
#[derive(Debug)]
pub struct HitFacts<'h, 'a> {
    hit: &'h Hit<'a>,
    page: OnceCell<Rc<Option<PageFacts>>>,
    referrer: OnceCell<Rc<Option<RefFacts>>>,
}

impl<'h, 'a> HitFacts<'h, 'a> {
    pub fn new(hit: &'h Hit<'a>) -> HitFacts<'h, 'a> {
        HitFacts {
            hit,
            page: OnceCell::new(),
            referrer: OnceCell::new(),
        }
    }

    /// The page: its key, campaign parameters and host; `None` without a usable `url`.
    pub fn page_facts(&self) -> Option<&PageFacts> {
        self.page
            .get_or_init(|| match self.hit.page.url {
                Some(url) => page(&self.hit.site, url),
                None => Rc::new(None),
            })
            .as_ref()
            .as_ref()
    }

    /// The referrer, when it is an absolute URL with a host (internal or not).
    pub fn referrer_facts(&self) -> Option<&RefFacts> {
        self.referrer
            .get_or_init(|| match self.hit.page.referrer {
                Some(url) => referrer(url),
                None => Rc::new(None),
            })
            .as_ref()
            .as_ref()
    }

    /// The referrer, unless there is none or it is the site itself.
    pub fn external_referrer(&self) -> Option<&RefFacts> {
        let page_host = self.page_facts().and_then(|p| p.host.as_deref());
        self.referrer_facts()
            .filter(|r| !r.is_internal(&self.hit.site, page_host))
    }
}

impl<'a> Deref for HitFacts<'_, 'a> {
    type Target = Hit<'a>;

    fn deref(&self) -> &Hit<'a> {
        self.hit
    }
}

/// Facts by raw value.
type ByValue<T> = HashMap<Box<str>, Rc<Option<T>>>;
/// One site's pages, with the query parameters the site kept when they were derived.
type SitePages = (Vec<String>, ByValue<PageFacts>);
type Pages = HashMap<SiteId, SitePages>;

/// A bounded cache in two generations. New values go into the young one; a value found in the
/// old one is copied into the young one; when the young one holds [`CACHE_ENTRIES`] it becomes
/// the old one and the previous old one is dropped. So what was used in the last generation
/// survives a turnover, while the memory stays bounded. (With a single map cleared when full,
/// a site mix with more distinct pages than the bound lost its popular pages at every clear:
/// 100 sites of 2,000 pages each missed often enough to double a hit's cost.)
#[derive(Default)]
struct Generations<M> {
    young: M,
    old: M,
    len: usize,
}

impl<M: Default> Generations<M> {
    /// Makes room for one more value in the young generation.
    fn room(&mut self) {
        if self.len >= CACHE_ENTRIES {
            self.old = std::mem::take(&mut self.young);
            self.len = 0;
        }
        self.len += 1;
    }
}

thread_local! {
    /// Per site, with the query parameters the site kept when they were derived (a site can
    /// change them while tally runs).
    static PAGES: RefCell<Generations<Pages>> = RefCell::default();
    static REFERRERS: RefCell<Generations<ByValue<RefFacts>>> = RefCell::default();
}

fn cached_page(pages: &Pages, site: &Site, url: &str) -> Option<Rc<Option<PageFacts>>> {
    let (kept, pages) = pages.get(&site.id)?;
    (*kept == site.keep_params)
        .then(|| pages.get(url).cloned())
        .flatten()
}

/// The facts of a page URL (`None` when it is not a usable URL), cached per site because a site
/// chooses which query parameters to keep.
pub fn page(site: &Site, url: Text<'_>) -> Rc<Option<PageFacts>> {
    PAGES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(found) = cached_page(&cache.young, site, url.raw()) {
            return found;
        }
        let facts = cached_page(&cache.old, site, url.raw())
            .unwrap_or_else(|| Rc::new(derive_page(site, url)));
        cache.room();
        let (kept, pages) = cache.young.entry(site.id.clone()).or_default();
        if *kept != site.keep_params {
            *kept = site.keep_params.clone();
            pages.clear();
        }
        pages.insert(url.raw().into(), Rc::clone(&facts));
        facts
    })
}

/// The facts of a referrer (`None` when it is not an absolute URL with a host).
pub fn referrer(url: Text<'_>) -> Rc<Option<RefFacts>> {
    REFERRERS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(found) = cache.young.get(url.raw()) {
            return Rc::clone(found);
        }
        let facts = match cache.old.get(url.raw()) {
            Some(found) => Rc::clone(found),
            None => Rc::new(derive_referrer(url)),
        };
        cache.room();
        cache.young.insert(url.raw().into(), Rc::clone(&facts));
        facts
    })
}

fn derive_page(site: &Site, url: Text<'_>) -> Option<PageFacts> {
    let raw = url.decode()?;
    let raw = raw.trim();
    let (url, relative) = if raw.starts_with('/') && !raw.starts_with("//") {
        (RELATIVE_BASE.join(raw).ok()?, true)
    } else {
        (Url::parse(raw).ok()?, false)
    };
    let utm = campaigns::utm(&url);
    let key = |v: Option<Cow<'_, str>>| v.map(|v| Key::escape(&v));
    Some(PageFacts {
        page: content::page_key(&url, &site.keep_params),
        source: key(utm.source),
        medium: key(utm.medium),
        campaign: key(utm.campaign),
        host: (!relative)
            .then(|| url.host_str().map(|h| strip_www(h).into()))
            .flatten(),
    })
}

fn derive_referrer(url: Text<'_>) -> Option<RefFacts> {
    let raw = url.decode()?;
    let url = Url::parse(raw.trim()).ok()?;
    let bare: CompactString = strip_www(url.host_str()?).into();
    let port = url.port();
    let host: CompactString = match port {
        Some(port) => compact_str::format_compact!("{bare}:{port}"),
        None => bare.clone(),
    };
    let path: Cow<'_, str> = percent_encoding::percent_decode_str(url.path()).decode_utf8_lossy();
    let link_key = Key::escape(&format!("{host}{path}"));
    let search = search::detect(&url).map(|s| (s.engine, s.term.map(|t| Key::escape(&t))));
    Some(RefFacts {
        host_key: Key::escape(&host),
        link_key,
        host,
        bare,
        port,
        search,
    })
}

impl RefFacts {
    /// Whether this referrer is the site itself: one of its `hosts` ([`Site::is_own_host`]:
    /// `www.` ignored, a host with a port matches only that port, `*.` matches subdomains), or,
    /// for a site without hosts, the page's own host.
    pub fn is_internal(&self, site: &Site, page_host: Option<&str>) -> bool {
        if site.hosts.is_empty() {
            return page_host == Some(self.bare.as_str());
        }
        site.is_own_host(&self.bare, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hit::text::MAX_URL_BYTES;
    use crate::site::parse_time_zone;

    /// The `url` or `ref` value of a query such as `url=%2Fabout`, as the pixel reads it.
    fn text(query: &str) -> Text<'_> {
        let (_, raw) = query.split_once('=').unwrap();
        Text::new(raw, MAX_URL_BYTES).unwrap()
    }

    fn site(keep: &[&str]) -> Site {
        Site {
            id: SiteId::parse("acme").unwrap(),
            tz: parse_time_zone("UTC").unwrap(),
            name: "acme".into(),
            hosts: vec!["acme.example".into(), "localhost:3000".into()],
            keep_params: keep.iter().map(|s| s.to_string()).collect(),
            tokens: Vec::new(),
            public: false,
            honor_dnt: false,
            created_at: Default::default(),
        }
    }

    fn page_of(site: &Site, query: &str) -> Rc<Option<PageFacts>> {
        page(site, text(query))
    }

    #[test]
    fn a_page_is_derived_once_and_follows_the_sites_kept_parameters() {
        let q = "url=https%3A%2F%2Fwww.acme.example%2Fitem%3Fid%3D7%26utm_source%3Dhn";
        let first = page_of(&site(&[]), q);
        let again = page_of(&site(&[]), q);
        assert!(Rc::ptr_eq(&first, &again), "the second lookup is cached");
        let facts = first.as_ref().as_ref().unwrap();
        assert_eq!(facts.page.unescape().text, "/item");
        assert_eq!(facts.source.as_ref().unwrap().as_str(), "hn");
        assert_eq!(facts.host.as_deref(), Some("acme.example"));
        // The site starts keeping `id`: the cached page is not reused.
        let kept = page_of(&site(&["id"]), q);
        assert_eq!(
            kept.as_ref().as_ref().unwrap().page.unescape().text,
            "/item?id=7"
        );
        // A path-only URL has no host.
        let relative = page_of(&site(&[]), "url=%2Fabout");
        assert_eq!(relative.as_ref().as_ref().unwrap().host, None);
        assert!(page_of(&site(&[]), "url=not%20a%20url").is_none());
    }

    #[test]
    fn referrers_know_their_host_link_search_and_whether_they_are_internal() {
        let r = |q: &str| referrer(text(q));
        let google = r("ref=https%3A%2F%2Fwww.google.com%2Fsearch%3Fq%3Drust");
        let g = google.as_ref().as_ref().unwrap();
        assert_eq!(g.host, "google.com");
        assert_eq!(g.link_key.unescape().text, "google.com/search");
        assert_eq!(g.search.as_ref().unwrap().0, "google");
        let s = site(&[]);
        assert!(!g.is_internal(&s, None));
        let own = r("ref=https%3A%2F%2Fwww.acme.example%2Fblog");
        assert!(own.as_ref().as_ref().unwrap().is_internal(&s, None));
        let dev = r("ref=http%3A%2F%2Flocalhost%3A3000%2F");
        assert!(dev.as_ref().as_ref().unwrap().is_internal(&s, None));
        let other_port = r("ref=http%3A%2F%2Flocalhost%3A4000%2F");
        assert!(!other_port.as_ref().as_ref().unwrap().is_internal(&s, None));
        // A site without hosts: the page's own host is internal.
        let no_hosts = Site { hosts: vec![], ..s };
        let own = own.as_ref().as_ref().unwrap();
        assert!(own.is_internal(&no_hosts, Some("acme.example")));
        assert!(!own.is_internal(&no_hosts, Some("other.example")));
        assert!(r("ref=mailto%3Ax%40y.z").is_none());
    }

    #[test]
    fn the_caches_stay_bounded_and_keep_what_is_used() {
        let s = site(&[]);
        let count = |c: &Pages| c.values().map(|(_, p)| p.len()).sum::<usize>();
        let home = page_of(&s, "url=%2F");
        for n in 0..(3 * CACHE_ENTRIES) {
            page_of(&s, &format!("url=%2Fp{n}"));
            if n % 1000 == 0 {
                page_of(&s, "url=%2F"); // the popular page
            }
        }
        PAGES.with(|c| {
            let c = c.borrow();
            assert!(count(&c.young) <= CACHE_ENTRIES && count(&c.old) <= CACHE_ENTRIES);
        });
        // Still the same derived value: it survived every turnover.
        assert!(Rc::ptr_eq(&home, &page_of(&s, "url=%2F")));
    }
}
