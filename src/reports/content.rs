//! Content: top pages per day and per month, with the latest title seen for each.
//!
//! `content.<YYYY>`, `_id: "<site>:<YYYY-MM>"` and `"<site>:<YYYY-MM-DD>"`:
//! `p.<path>.v` (views), `p.<path>.u` (people: views that carried the snippet's page flag for
//! that period, `pp`) and `p.<path>.t` (the latest title), plus `n` (keys admitted) in the
//! month document. `<path>` is the page's path, percent-decoded, without its query string
//! unless the site keeps named parameters, escaped with [`Key::escape`]. Capped: see
//! `aggregate::admission`.

use super::{ranked, HitFacts, Increments, Ranked, Report, ReportKind};
use crate::field::{FieldKey, Key};
use crate::hit::text::{truncate, MAX_TITLE_BYTES};
use crate::hit::Hit;
use mongodb::bson::Document;
use std::borrow::Cow;
use url::Url;

pub struct Content;

/// Longest title kept in a document, in bytes (cut at a character boundary).
pub const MAX_STORED_TITLE: usize = 200;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ContentView {
    /// Pages by views, largest first, each with its latest title.
    pub pages: Ranked,
}

impl Report for Content {
    const KIND: ReportKind = ReportKind::Content;
    type View = ContentView;

    fn count(hit: &HitFacts<'_, '_>, out: &mut Increments) {
        let Some(page) = hit.page_facts() else {
            return;
        };
        let key = &page.page;
        let views = FieldKey::from_parts(&["p", key.as_str(), "v"]);
        let people = FieldKey::from_parts(&["p", key.as_str(), "u"]);
        let title = stored_title(hit);
        let u = &hit.uniques;
        for (period, new) in [
            (hit.local.month_period(), u.page_month),
            (hit.local.day_period(), u.page_day),
        ] {
            out.add(Self::KIND, period, views.clone(), 1);
            if new {
                out.add(Self::KIND, period, people.clone(), 1);
            }
            if let Some(title) = &title {
                let field = FieldKey::from_parts(&["p", key.as_str(), "t"]);
                out.set(Self::KIND, period, field, title.trim());
            }
        }
    }

    fn read(doc: &Document) -> ContentView {
        let mut pages = ranked(doc, "p");
        // Every page has people, 0 without flags; so has `(other)`.
        for entry in &mut pages.entries {
            entry.people.get_or_insert(0);
        }
        pages.other_people.get_or_insert(0);
        ContentView { pages }
    }
}

/// The page's key: its path, percent-decoded (invalid UTF-8 replaced), followed by the kept
/// query parameters in the order sent (`/item?id=7`).
pub fn page_key(url: &Url, keep_params: &[String]) -> Key {
    let path: Cow<'_, str> = percent_encoding::percent_decode_str(url.path()).decode_utf8_lossy();
    if keep_params.is_empty() || url.query().is_none() {
        return Key::escape(&path);
    }
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    let mut kept = false;
    for (name, value) in url.query_pairs() {
        if keep_params.iter().any(|k| *k == name) {
            query.append_pair(&name, &value);
            kept = true;
        }
    }
    if !kept {
        return Key::escape(&path);
    }
    Key::escape(&format!("{path}?{}", query.finish()))
}

/// The hit's title as documents keep it (decoded, cut to [`MAX_STORED_TITLE`] bytes), before
/// trimming.
pub fn stored_title(hit: &Hit<'_>) -> Option<String> {
    hit.page
        .title
        .and_then(|t| t.decode())
        .map(|t| cut(t, MAX_STORED_TITLE.min(MAX_TITLE_BYTES)))
}

fn cut(text: Cow<'_, str>, max: usize) -> String {
    truncate(&text, max).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(url: &str, keep: &[&str]) -> String {
        let keep: Vec<String> = keep.iter().map(|s| s.to_string()).collect();
        page_key(&Url::parse(url).unwrap(), &keep).unescape().text
    }

    #[test]
    fn pages_are_paths_without_queries_unless_kept() {
        assert_eq!(
            key("https://a.example/blog/x?utm_source=y#top", &[]),
            "/blog/x"
        );
        assert_eq!(key("https://a.example", &[]), "/");
        assert_eq!(key("https://a.example/caf%C3%A9", &[]), "/café");
        assert_eq!(key("https://a.example/%FF", &[]), "/\u{fffd}");
        assert_eq!(
            key(
                "https://a.example/item?x=1&id=7&page=2&id=8",
                &["id", "page"]
            ),
            "/item?id=7&page=2&id=8"
        );
        assert_eq!(key("https://a.example/item?x=1", &["id"]), "/item");
        assert_eq!(key("https://a.example/s?q=a+b%26c", &["q"]), "/s?q=a+b%26c");
    }
}
