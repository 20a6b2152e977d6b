//! The dashboard's ES modules (`js/*.js`, compiled in) under content-hashed addresses,
//! `assets/<name>.<hash>.js`, worked out once from the embedded text.
//!
//! Each module's imports (`from './format.js'`) are rewritten to the hashed names of the
//! modules they name, and its hash is taken over that rewritten text, so a module's address
//! changes when it or anything it imports changes. A browser after an upgrade therefore never
//! mixes old and new modules, and every module can be cached for a year as `immutable`; only
//! the page (`app.html`, which names the entry by its hashed address) is revalidated. The
//! imports must form no cycle (a module's hash needs its imports' first); the unit tests below
//! build the real set, so a cycle or an import of a file not listed in [`SOURCES`] fails
//! `cargo test`, never a server. This module rewrites import specifiers only: it knows nothing
//! of what the modules do, and parses nothing else of them.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::LazyLock;

/// Every module of `js/`, by file name. The entry, `main.js`, is the one the page loads.
const SOURCES: &[(&str, &str)] = &[
    ("api.js", include_str!("js/api.js")),
    ("chart-svg.js", include_str!("js/chart-svg.js")),
    ("chart.js", include_str!("js/chart.js")),
    ("dates.js", include_str!("js/dates.js")),
    ("dom.js", include_str!("js/dom.js")),
    ("format.js", include_str!("js/format.js")),
    ("links.js", include_str!("js/links.js")),
    ("live.js", include_str!("js/live.js")),
    ("main.js", include_str!("js/main.js")),
    ("names.js", include_str!("js/names.js")),
    ("period.js", include_str!("js/period.js")),
    ("ranges.js", include_str!("js/ranges.js")),
    ("rank.js", include_str!("js/rank.js")),
    ("render-audience.js", include_str!("js/render-audience.js")),
    ("render-traffic.js", include_str!("js/render-traffic.js")),
    ("reports.js", include_str!("js/reports.js")),
    ("series.js", include_str!("js/series.js")),
    ("session.js", include_str!("js/session.js")),
    ("state.js", include_str!("js/state.js")),
    ("stream.js", include_str!("js/stream.js")),
    ("summary.js", include_str!("js/summary.js")),
    ("tables.js", include_str!("js/tables.js")),
];

const ENTRY: &str = "main.js";

/// Where the page loads its entry; [`Assets::page`] puts the hashed addresses there.
const ENTRY_TAG: &str = r#"<script type="module" src="main.js"></script>"#;

/// One module as served.
pub struct Module {
    /// Its hashed file name, `format.0123456789ab.js`.
    pub file: String,
    /// Its text, imports rewritten to hashed names.
    pub body: String,
    /// Its validator: the hash, quoted.
    pub etag: String,
}

/// The modules by hashed file name, and the page that loads them.
pub struct Assets {
    by_file: HashMap<String, Module>,
    /// `app.html` with the entry's script tag pointing at its hashed address, after a
    /// `modulepreload` link per module (so the browser fetches them all at once rather than one
    /// level of imports at a time).
    pub page: String,
}

impl Assets {
    /// The module served as `file` (`format.0123456789ab.js`), if it is one.
    pub fn module(&self, file: &str) -> Option<&Module> {
        self.by_file.get(file)
    }

    /// Builds the set from `sources` and the page from `html`: an `Err` says what is wrong
    /// (an import cycle, an import of a module not in `sources`, no entry tag in the page).
    fn build(sources: &[(&'static str, &'static str)], html: &str) -> Result<Assets, String> {
        let mut done = HashMap::new();
        for (name, _) in sources {
            visit(name, sources, &mut done, &mut Vec::new())?;
        }
        let entry = done.get(ENTRY).ok_or("no main.js")?;
        let mut tags = String::new();
        let mut preload: Vec<&Module> = done.values().collect();
        preload.sort_by(|a, b| a.file.cmp(&b.file));
        for m in preload.into_iter().filter(|m| m.file != entry.file) {
            tags.push_str(&format!(
                "<link rel=\"modulepreload\" href=\"assets/{}\">\n",
                m.file
            ));
        }
        tags.push_str(&format!(
            "<script type=\"module\" src=\"assets/{}\"></script>",
            entry.file
        ));
        if html.matches(ENTRY_TAG).count() != 1 {
            return Err(format!("the page must hold {ENTRY_TAG} once"));
        }
        let page = html.replace(ENTRY_TAG, &tags);
        let by_file = done.into_values().map(|m| (m.file.clone(), m)).collect();
        Ok(Assets { by_file, page })
    }
}

/// The dashboard's modules and page, built on first use from what is compiled in.
pub fn assets() -> &'static Assets {
    static ASSETS: LazyLock<Assets> = LazyLock::new(|| {
        Assets::build(SOURCES, include_str!("app.html"))
            .unwrap_or_else(|e| panic!("the dashboard's modules: {e}"))
    });
    &ASSETS
}

/// Hashes `name` into `done`, its imports first; `path` is the chain of imports that led here.
fn visit(
    name: &'static str,
    sources: &[(&'static str, &'static str)],
    done: &mut HashMap<&'static str, Module>,
    path: &mut Vec<&'static str>,
) -> Result<(), String> {
    if done.contains_key(name) {
        return Ok(());
    }
    if path.contains(&name) {
        return Err(format!("import cycle: {} → {name}", path.join(" → ")));
    }
    let text = sources
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
        .ok_or_else(|| {
            format!(
                "{} imports ./{name}, which is not in SOURCES",
                path.last().unwrap_or(&"?")
            )
        })?;
    let imports = imports(text);
    path.push(name);
    for (_, imported) in &imports {
        // A name from `sources` lives as long as they do.
        let imported = sources
            .iter()
            .map(|(n, _)| *n)
            .find(|n| n == imported)
            .ok_or_else(|| format!("{name} imports ./{imported}, which is not in SOURCES"))?;
        visit(imported, sources, done, path)?;
    }
    path.pop();
    let mut body = String::with_capacity(text.len() + 16 * imports.len());
    let mut at = 0;
    for (range, imported) in &imports {
        body.push_str(&text[at..range.start]);
        body.push_str("./");
        body.push_str(&done[imported.as_str()].file);
        at = range.end;
    }
    body.push_str(&text[at..]);
    let digest = Sha256::digest(body.as_bytes());
    let stem = name.strip_suffix(".js").unwrap_or(name);
    let hash = hex::encode(&digest[..6]);
    let file = format!("{stem}.{hash}.js");
    let etag = format!("\"{hash}\"");
    done.insert(name, Module { file, body, etag });
    Ok(())
}

/// The relative imports of a module: each `from '…'` or `import '…'` (either quote) whose
/// specifier is `./<name>.js`, as the specifier's byte range and `<name>.js`. Other text is
/// left alone; dynamic `import()` is not supported.
fn imports(text: &str) -> Vec<(std::ops::Range<usize>, String)> {
    let mut out = Vec::new();
    for keyword in ["from", "import"] {
        for (at, _) in text.match_indices(keyword) {
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| !(c.is_whitespace() || c == '}')) {
                continue; // part of a longer word
            }
            let rest = &text[at + keyword.len()..];
            let spaces = rest.len() - rest.trim_start_matches([' ', '\t']).len();
            let rest = &rest[spaces..];
            let Some(quote) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') else {
                continue;
            };
            let Some(len) = rest[1..].find(quote) else {
                continue;
            };
            let spec = &rest[1..1 + len];
            let Some(name) = spec.strip_prefix("./").filter(|n| n.ends_with(".js")) else {
                continue;
            };
            let start = at + keyword.len() + spaces + 1;
            out.push((start..start + spec.len(), name.to_owned()));
        }
    }
    out.sort_by_key(|(range, _)| range.start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "<head>\n<script type=\"module\" src=\"main.js\"></script>\n</head>";

    fn file_of<'a>(assets: &'a Assets, stem: &str) -> &'a Module {
        assets
            .by_file
            .values()
            .find(|m| m.file.starts_with(&format!("{stem}.")))
            .unwrap()
    }

    #[test]
    fn the_real_modules_build_and_every_file_of_js_is_listed() {
        let assets = assets();
        assert_eq!(assets.by_file.len(), SOURCES.len());
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/dashboard/js");
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".js") {
                assert!(
                    SOURCES.iter().any(|(n, _)| *n == name),
                    "js/{name} is not in SOURCES"
                );
            }
        }
        for m in assets.by_file.values() {
            for (_, imported) in imports(&m.body) {
                assert!(assets.module(&imported).is_some(), "{imported}");
            }
        }
        let main = file_of(assets, "main");
        assert!(assets.page.contains(&format!(
            r#"<script type="module" src="assets/{}">"#,
            main.file
        )));
    }

    #[test]
    fn imports_are_rewritten_and_a_change_moves_every_module_that_imports_it() {
        let sources = [
            (
                "main.js",
                "import { a } from './a.js';\nimport './b.js';\nmain();",
            ),
            (
                "a.js",
                "import {\n  b,\n} from \"./b.js\";\nexport const a = 'from here';",
            ),
            ("b.js", "export const b = 1; // comes from nowhere"),
        ];
        let one = Assets::build(&sources, PAGE).unwrap();
        let (a, b) = (file_of(&one, "a"), file_of(&one, "b"));
        assert!(b.file.len() == "b.0123456789ab.js".len(), "{}", b.file);
        assert_eq!(
            file_of(&one, "main").body,
            format!(
                "import {{ a }} from './{}';\nimport './{}';\nmain();",
                a.file, b.file
            )
        );
        assert!(a.body.contains(&format!("from \"./{}\"", b.file)));
        assert!(one.page.contains(&format!(
            "<link rel=\"modulepreload\" href=\"assets/{}\">",
            a.file
        )));

        let mut changed = sources;
        changed[2].1 = "export const b = 2;";
        let two = Assets::build(&changed, PAGE).unwrap();
        for stem in ["main", "a", "b"] {
            assert_ne!(file_of(&one, stem).file, file_of(&two, stem).file, "{stem}");
        }
        assert!(two.module(&b.file).is_none(), "the old address is gone");
    }

    #[test]
    fn cycles_unknown_imports_and_a_page_without_the_entry_are_refused() {
        let cycle = [
            ("main.js", "import './a.js';"),
            ("a.js", "import './main.js';"),
        ];
        let e = Assets::build(&cycle, PAGE).err().unwrap();
        assert!(e.contains("import cycle"), "{e}");
        let unknown = [("main.js", "import { x } from './x.js';")];
        let e = Assets::build(&unknown, PAGE).err().unwrap();
        assert!(e.contains("./x.js"), "{e}");
        let fine = [("main.js", "main();")];
        assert!(Assets::build(&fine, "<head></head>").is_err());
    }
}
