//! Which access-log lines are page views: `classify` says what a parsed line is (a page view,
//! one of tally's pixel requests, or a reason to skip it), and the page-or-asset rule decides by
//! the media type of the path's extension (`mime_guess`), so `.xhtml` is a page and `.woff2`,
//! `.rss` or `.pdf` are not. docs/operations.md, "Importing server logs", states the rule.
//!
//! Pure, like the rest of `import`: no file, tracker or store.

use super::Line;

/// Why a line is not counted (before the tracker has seen it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Not a GET, or not a page whatever the status: an asset or a download (by its media
    /// type), a feed, an endpoint of tally's, a probe or another path that is not a page.
    NotAPage,
    /// Answered outside 200–399.
    Status,
}

/// What a line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind<'a> {
    /// A page view of this path (with its query).
    Page(&'a str),
    /// One of tally's pixel requests: this is its query string.
    Pixel(&'a str),
    Skip(Skip),
}

/// Extensions of server-side scripts, pages whatever media type `mime_guess` gives them
/// (`.php` is `application/x-httpd-php` there, `.aspx` `application/xml`, `.pl` Perl source).
/// `.py` is not among them: a `.py` address is more often a source file than a CGI script.
const SCRIPT_EXTENSIONS: [&str; 10] = [
    "php", "phtml", "asp", "aspx", "jsp", "jspx", "cfm", "cgi", "pl", "shtml",
];

/// Media types of pages: HTML and XHTML.
const PAGE_TYPES: [&str; 2] = ["text/html", "application/xhtml+xml"];

/// Last path segments of feeds that have no extension (WordPress's `/feed/`, `/blog/rss`).
const FEED_NAMES: [&str; 3] = ["feed", "rss", "atom"];

/// Paths of tally's own endpoints and of machines (probes), never pages.
const NOT_PAGES: [&str; 6] = ["/t.js", "/e", "/v", "/metrics", "/healthz", "/readyz"];

/// What `line` is: a page view, a pixel request, or a reason to skip it.
pub fn classify<'l>(line: &'l Line<'_>) -> Kind<'l> {
    if line.method != "GET" {
        return Kind::Skip(Skip::NotAPage);
    }
    let target = origin_form(&line.target);
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let pixel = path == "/t.gif";
    if !pixel && !is_page_path(path) {
        return Kind::Skip(Skip::NotAPage);
    }
    if !(200..=399).contains(&line.status) {
        return Kind::Skip(Skip::Status);
    }
    if pixel {
        Kind::Pixel(target.split_once('?').map_or("", |(_, q)| q))
    } else {
        Kind::Page(target)
    }
}

/// `http://host/path?q` → `/path?q`; an origin-form target as it is.
fn origin_form(target: &str) -> &str {
    if target.starts_with('/') {
        return target;
    }
    match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    }
}

/// Whether a `GET` of `path` (without its query) is a page view. Not when it is one of
/// tally's endpoints, a probe or the API; when a segment starts with a dot (dotfiles such as
/// `/.env`, and the well-known URIs of RFC 8615: ACME challenges, `security.txt`); or when
/// it is a feed named `feed`, `rss` or `atom`. Otherwise a page when it ends in `/` or its last segment has no extension,
/// when the extension is a server-side script's, or when `mime_guess` gives the extension the
/// media type of HTML or XHTML; an extension `mime_guess` does not know is part of a name
/// (`/releases/v1.2`), a page. Every other media type (images, styles, scripts, fonts, audio,
/// video, archives, feeds, PDFs and other documents, text, JSON) is an asset or a download.
fn is_page_path(path: &str) -> bool {
    if !path.starts_with('/')
        || NOT_PAGES.contains(&path)
        || path.starts_with("/api/")
        || path.contains("/.")
    {
        return false;
    }
    let dir_end = path.rfind('/').unwrap_or(0);
    let last = &path[dir_end + 1..];
    let Some((_, ext)) = last.rsplit_once('.') else {
        // `/blog/feed/` names its feed in the segment before the slash.
        let name = match last {
            "" => path[..dir_end].rsplit('/').next().unwrap_or(""),
            name => name,
        };
        return !FEED_NAMES.iter().any(|f| name.eq_ignore_ascii_case(f));
    };
    if SCRIPT_EXTENSIONS
        .iter()
        .any(|e| ext.eq_ignore_ascii_case(e))
    {
        return true;
    }
    match mime_guess::from_ext(ext).first_raw() {
        None => true,
        Some(media) => PAGE_TYPES.contains(&media),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn what_counts() {
        let kind = |method: &str, target: &str, status: u16| {
            let line = Line {
                addr: None,
                at: Utc::now(),
                method: method.into(),
                target: target.into(),
                status,
                referer: None,
                user_agent: "".into(),
            };
            match classify(&line) {
                Kind::Page(p) => format!("page {p}"),
                Kind::Pixel(q) => format!("pixel {q}"),
                Kind::Skip(s) => format!("{s:?}"),
            }
        };
        assert_eq!(kind("GET", "/about", 200), "page /about");
        assert_eq!(kind("GET", "/docs/", 301), "page /docs/");
        assert_eq!(kind("GET", "/index.PHP?x=1", 200), "page /index.PHP?x=1");
        assert_eq!(kind("GET", "/a/b.html", 200), "page /a/b.html");
        assert_eq!(kind("GET", "https://acme.example/x", 200), "page /x");
        assert_eq!(
            kind("GET", "/t.gif?site=a&url=%2F", 200),
            "pixel site=a&url=%2F"
        );
        assert_eq!(kind("HEAD", "/about", 200), "NotAPage");
        assert_eq!(kind("POST", "/about", 200), "NotAPage");
        // An asset is not a page whatever its status: `not_a_page`, not `status`.
        assert_eq!(kind("GET", "/app.css", 404), "NotAPage");
        assert_eq!(kind("GET", "/about", 404), "Status");
        assert_eq!(kind("GET", "/about", 500), "Status");
        assert_eq!(kind("GET", "/about", 199), "Status");
    }

    /// The page-or-asset rule, path by path (the query is never looked at).
    #[test]
    fn pages_and_assets_by_media_type() {
        let pages = [
            // No extension, or a directory.
            "/",
            "/about",
            "/docs/",
            "/blog/2026/11/hello-world",
            "/feeds-we-like",
            // HTML and XHTML.
            "/a/b.html",
            "/INDEX.HTM",
            "/projects/xdotool/xdotool.xhtml",
            "/x.xht",
            "/ssi.shtml",
            // Server-side scripts.
            "/index.php",
            "/index.PHP?x=1",
            "/view.phtml",
            "/default.asp",
            "/Default.aspx",
            "/app/login.jsp",
            "/app/page.jspx",
            "/event.cfm",
            "/cgi-bin/search.cgi",
            "/cgi-bin/guestbook.pl",
            // Extensions no media type has: part of a name.
            "/releases/v1.2",
            "/people/jane.doe",
            "/struts/login.do",
            "/trailing.",
            "/feed.xml/", // a directory named like a file
        ];
        let assets = [
            // Images, styles, scripts, fonts, media.
            "/i.PNG",
            "/photo.jpeg",
            "/logo.svg",
            "/favicon.ico",
            "/app.css",
            "/app.js",
            "/app.mjs",
            "/a.map",
            "/f.woff2",
            "/f.ttf",
            "/v.mp4",
            "/talk.webm",
            "/song.mp3",
            // Archives, packages, binaries.
            "/dl/xdotool-3.0.tar.gz",
            "/dl/x.zip",
            "/dl/x.deb",
            "/dl/setup.exe",
            "/app.wasm",
            // Feeds, by media type and by name.
            "/feed.xml",
            "/index.rss",
            "/atom.atom",
            "/feed",
            "/feed/",
            "/blog/feed/",
            "/comments/RSS",
            "/atom/",
            // Documents and data.
            "/paper.pdf",
            "/robots.txt",
            "/notes.md",
            "/data.json",
            "/data.csv",
            "/book.epub",
            "/script.py",
            "/site.webmanifest",
            // Dotfiles and well-known URIs.
            "/.env",
            "/.git/HEAD",
            "/.well-known/security.txt",
            "/.well-known/acme-challenge/abc",
            // tally's own endpoints, probes and the API.
            "/t.js",
            "/e",
            "/v",
            "/api/v1/sites",
            "/metrics",
            "/healthz",
            "/readyz",
            // Not a path.
            "*",
            "",
        ];
        for path in pages {
            assert!(is_page_path(path), "{path} is a page");
        }
        for path in assets {
            assert!(!is_page_path(path), "{path} is not a page");
        }
    }
}
