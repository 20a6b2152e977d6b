//! The real snippet in a real browser: headless Chromium loads the demo page twice with one
//! profile. The first view is a new visitor, the second (same cookie jar) is not; the page, its
//! title, its campaign parameters and the window's size reach their reports.

mod support;

use chrono::Utc;
use std::process::{Command, Stdio};
use support::*;
use tally::period::LocalTime;
use tally::settings::ServeSettings;

/// Loads `url` in headless Chromium (`TEST_CHROMIUM`, else `chromium`) with the profile in
/// `profile`, waits for the page to settle, and returns the DOM it ended with. Fails if the
/// page's Content-Security-Policy blocked anything: the pages' scripts mark `<html>` with
/// `data-csp-violation` when it does.
fn load_in_chromium(url: &str, profile: &std::path::Path) -> String {
    let dom = chromium(url, profile, &["--dump-dom"]);
    assert!(
        !dom.contains("data-csp-violation"),
        "{url} violated its Content-Security-Policy: {}",
        dom.lines()
            .find(|l| l.contains("data-csp-violation"))
            .unwrap_or_default()
    );
    dom
}

fn chromium(url: &str, profile: &std::path::Path, extra: &[&str]) -> String {
    let bin = std::env::var("TEST_CHROMIUM").unwrap_or_else(|_| "chromium".to_owned());
    let out = Command::new(&bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1280,800",
            // Headless Chromium announces itself as HeadlessChrome, which tally rightly
            // does not count; a visitor's browser says Chrome.
            &format!("--user-agent={CHROME_WIN}"),
            &format!("--user-data-dir={}", profile.display()),
            "--virtual-time-budget=3000",
        ])
        .args(extra)
        .arg(url)
        .stderr(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin} ({e}): scripts/test.sh installs it"));
    assert!(out.status.success(), "chromium failed: {:?}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snippet_counts_a_view_and_a_returning_visitor() {
    let store = TestStore::new(Backend::Embedded).await;
    let settings = ServeSettings {
        demo: true,
        ..test_settings()
    };
    let app = TestApp::spawn(store, settings, tally::period::system_clock()).await;
    let tz = app.handle.store.site("demo").await.unwrap().unwrap().tz;
    let profile = tempfile::tempdir().unwrap();
    let url = format!(
        "{}/demo?utm_source=browser-test&utm_campaign=e2e",
        app.address
    );

    let before = LocalTime::at(Utc::now(), tz);
    let dom = tokio::task::spawn_blocking({
        let (url, profile) = (url.clone(), profile.path().to_owned());
        move || load_in_chromium(&url, &profile)
    })
    .await
    .unwrap();
    assert!(dom.contains("tally demo"), "the page rendered");
    app.flush().await;
    let (coll, id) = (
        format!("traffic.{}", before.year),
        format!("demo:{}", before.month_period()),
    );
    let traffic = app.doc(&coll, &id).await.expect("the view was counted");
    assert_count(&traffic, "v", 1);
    assert_count(&traffic, "u", 1);
    assert_count(&traffic, &format!("d.{:02}.u", before.day), 1);
    let tech = app
        .doc(&format!("technology.{}", before.year), &id)
        .await
        .unwrap();
    assert_count(&tech, "b.chrome.131-0", 1);
    let year = before.year;
    for period in [before.month_period(), before.day_period()] {
        let content = app
            .doc(&format!("content.{year}"), &format!("demo:{period}"))
            .await
            .expect("the page was counted");
        assert_count(&content, "p./demo.v", 1);
        // The snippet's page flag: this browser's first view of /demo this month and day.
        assert_count(&content, "p./demo.u", 1);
        assert_eq!(
            content
                .get_document("p")
                .and_then(|p| p.get_document("/demo"))
                .and_then(|d| d.get_str("t"))
                .ok(),
            Some("tally demo"),
            "the title is kept"
        );
    }
    let campaigns = app
        .doc(&format!("campaigns.{year}"), &id)
        .await
        .expect("the campaign was counted");
    assert_count(&campaigns, "s.browser-test", 1);
    assert_count(&campaigns, "c.e2e", 1);
    let sizes = app
        .doc(&format!("resolutions.{year}"), &id)
        .await
        .expect("the sizes were counted");
    // Headless Chromium reports an 800×600 screen; the window is 1280 wide and, less its
    // chrome, between 600 and 767 high.
    for path in ["s.800", "w.1280", "h.600"] {
        assert_count(&sizes, path, 1);
    }

    tokio::task::spawn_blocking(move || load_in_chromium(&url, profile.path()))
        .await
        .unwrap();
    let after = LocalTime::at(Utc::now(), tz);
    app.flush().await;
    let traffic = app.doc(&coll, &id).await.unwrap();
    assert_count(&traffic, "v", 2);
    if (after.month, after.day) == (before.month, before.day) {
        // The page again, the same day: its people stay one (the flag is in local storage).
        for period in [before.month_period(), before.day_period()] {
            let content = app
                .doc(&format!("content.{year}"), &format!("demo:{period}"))
                .await
                .unwrap();
            assert_count(&content, "p./demo.v", 2);
            assert_count(&content, "p./demo.u", 1);
        }
        assert_count(&traffic, "u", 1);
        assert_count(&traffic, &format!("d.{:02}.u", before.day), 1);
        assert_count(&traffic, &format!("d.{:02}.v", before.day), 2);
    }
    // One visit of two pages by a new visitor, and the first member of this week's and this
    // month's cohorts.
    if (after.month, after.day) == (before.month, before.day) {
        let engagement = app
            .doc(&format!("engagement.{year}"), &id)
            .await
            .expect("the visit was counted");
        let dd = format!("{:02}", before.day);
        assert_count(&engagement, &format!("d.{dd}.v"), 1);
        assert_count(&engagement, &format!("d.{dd}.p.2"), 1);
        assert_count(&engagement, &format!("d.{dd}.p.1"), 0);
        assert_count(&engagement, &format!("d.{dd}.new"), 1);
    }
    let week = before.week_period();
    let cohort = app
        .doc(&format!("cohorts.{}", week.year()), &format!("demo:{week}"))
        .await
        .expect("the weekly cohort was counted");
    assert_count(&cohort, "n", 1);
    if after.hour == before.hour {
        assert_count(
            &traffic,
            &format!("h.{:02}.{:02}.u", before.day, before.hour),
            1,
        );
    }
}

/// The real snippet counts a view; the dashboard, signed in with a token from the link, shows
/// it in today's numbers and in the live panel, and a referred view's referrer as a link. A
/// screenshot is saved for people to look at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_view_just_made() {
    let store = TestStore::new(Backend::Embedded).await;
    let settings = ServeSettings {
        demo: true,
        flush_interval_ms: 200,
        ..test_settings()
    };
    let app = TestApp::spawn(store, settings, tally::period::system_clock()).await;
    // Make the demo site private, with a token: the dashboard must sign in.
    let (token, hash) = tally::api::token::generate().unwrap();
    let mut site = app.handle.store.site("demo").await.unwrap().unwrap();
    site.public = false;
    site.tokens.push(tally::site::TokenHash {
        hash,
        created_at: Utc::now(),
    });
    app.handle.store.update_site(&site).await.unwrap();
    let tz = site.tz;
    app.handle.sites.insert(site);

    let profile = tempfile::tempdir().unwrap();
    let page = format!("{}/demo", app.address);
    let started = std::time::Instant::now();
    tokio::task::spawn_blocking({
        let (page, profile) = (page.clone(), profile.path().to_owned());
        move || load_in_chromium(&page, &profile)
    })
    .await
    .unwrap();
    // And one view referred by a link elsewhere, for the referrers' links.
    app.hit(
        "site=demo&url=%2Freferred&ref=https%3A%2F%2Fnews.example%2Fitem%3Fid%3D1",
        CHROME_WIN,
    )
    .await;
    // The flusher runs every 200 ms here: no manual flush, the views must get there by
    // themselves.
    let dashboard = format!("{}/?site=demo#token={token}", app.address);
    let dom = tokio::task::spawn_blocking({
        let (dashboard, profile) = (dashboard.clone(), profile.path().to_owned());
        move || load_in_chromium(&dashboard, &profile)
    })
    .await
    .unwrap();
    eprintln!("view to dashboard: {:?}", started.elapsed());
    assert!(
        dom.contains(r#"data-state="ready""#),
        "the dashboard is ready: {dom}"
    );
    assert!(
        dom.contains(r#"id="signed-in-site">demo<"#),
        "signed in as demo"
    );
    // With no range in the address the dashboard shows today.
    assert_eq!(
        tile(&dom, "range-views"),
        2,
        "today's views: the snippet's and the referred one"
    );
    assert!(
        dom.contains(r#"data-page="/demo""#),
        "the live panel lists the page: {}",
        dom.split(r#"id="live-pages""#)
            .nth(1)
            .unwrap_or("")
            .chars()
            .take(400)
            .collect::<String>()
    );
    // The pages card: each page's people as the API counts them (the snippet's view of /demo
    // carried the page flag; the hand-made pixel of /referred none).
    let today = LocalTime::at(Utc::now(), tz).day_period();
    let content: serde_json::Value = app
        .http
        .get(format!(
            "{}/api/v1/sites/demo/reports/content?date={today}",
            app.address
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut wanted: Vec<(String, i64)> = entries(&content["data"]["pages"], "people");
    let mut shown = people_rows(section(&dom, "report-content"));
    wanted.sort();
    shown.sort();
    assert_eq!(
        wanted,
        vec![("/demo".to_owned(), 1), ("/referred".to_owned(), 0)]
    );
    assert_eq!(shown, wanted, "the pages card's people");
    // A referrer, kept without its scheme, links to it over https; the host too.
    let referrers = dom
        .split(r#"id="report-referrers""#)
        .nth(1)
        .and_then(|rest| rest.split("</section>").next())
        .unwrap_or_default();
    for (key, href) in [
        ("news.example/item", "https://news.example/item"),
        ("news.example", "https://news.example/"),
    ] {
        let link =
            format!(r#"<a href="{href}" rel="noopener noreferrer" target="_blank">{key}</a>"#);
        assert!(
            referrers.contains(&link),
            "the referrer {key} links to {href}: {referrers}"
        );
    }
    // A picture of it, in the test output.
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let arg = format!("--screenshot={}", shot.display());
    tokio::task::spawn_blocking({
        let (dashboard, profile) = (dashboard.clone(), profile.path().to_owned());
        move || {
            chromium(
                &dashboard,
                &profile,
                &[&arg, "--window-size=1280,2200", "--hide-scrollbars"],
            )
        }
    })
    .await
    .unwrap();
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 10_000,
        "a screenshot was written to {}",
        shot.display()
    );
    eprintln!("dashboard screenshot: {}", shot.display());
}

/// The tag that carries `id="{id}"` in a dumped DOM (from its `<` to its `>`).
fn tag_with_id<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!(r#"id="{id}""#))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let start = dom[..at].rfind('<').unwrap_or(at);
    let end = at + dom[at..].find('>').unwrap_or(0);
    &dom[start..=end]
}

/// The value of attribute `name` in `tag`.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let needle = format!(r#" {name}=""#);
    let rest = &tag[tag.find(&needle)? + needle.len()..];
    rest.split('"').next()
}

/// The `<section id="{id}">…</section>` of a dumped DOM (report cards hold no sections).
fn section<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!(r#"id="{id}""#))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let rest = &dom[at..];
    &rest[..rest.find("</section>").unwrap_or(rest.len())]
}

/// The `(data-key, data-views)` of the table rows in `html`, in page order.
fn rows(html: &str) -> Vec<(String, i64)> {
    html.split("<tr")
        .skip(1)
        .filter_map(|piece| {
            let tag = &piece[..piece.find('>')?];
            let key = attr(tag, "data-key")?.replace("&amp;", "&");
            Some((key, attr(tag, "data-views")?.parse().ok()?))
        })
        .collect()
}

/// The `(data-key, data-people)` of the table rows in `html` that have people, in page order.
fn people_rows(html: &str) -> Vec<(String, i64)> {
    html.split("<tr")
        .skip(1)
        .filter_map(|piece| {
            let tag = &piece[..piece.find('>')?];
            let key = attr(tag, "data-key")?.replace("&amp;", "&");
            Some((key, attr(tag, "data-people")?.parse().ok()?))
        })
        .collect()
}

/// The number a tile shows, in full (its `data-value`).
fn tile(dom: &str, id: &str) -> i64 {
    attr(tag_with_id(dom, id), "data-value")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("#{id} shows no number: {}", tag_with_id(dom, id)))
}

/// Views on every day from 1 December 2024 to 15 June 2026 (one to three a day, from four
/// browsers on four platforms, over five pages); the dashboard is opened on a day, on 28 days
/// compared with the 28 before, and on the year 2025 through a link from before the range
/// picker (`date=2025`). Each time the tiles, the traffic chart, the pages card and every card's
/// period are what the API answers for the same range; a screenshot of each is saved in
/// target/tmp/. Then the picker is driven in one page (choices, ‹, a key, a custom from–to),
/// and after each step the address, the tiles and the cards follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_range_picker_shows_the_apis_numbers() {
    use chrono::NaiveDate;
    use serde_json::Value;
    let store = TestStore::new(Backend::Embedded).await;
    let mut site = store.add_site("acme", "UTC").await;
    site.public = true;
    store.store.update_site(&site).await.unwrap();
    let now = utc(2026, 6, 15, 12, 0);
    let clock = TestClock::at(now);
    let app = TestApp::spawn(store, test_settings(), clock.clock()).await;
    let agents = [CHROME_WIN, SAFARI_IPHONE, FIREFOX_MAC, CHROME_ANDROID];
    let first = NaiveDate::from_ymd_opt(2024, 12, 1).unwrap();
    let last = now.date_naive();
    for (i, day) in first.iter_days().take_while(|d| *d <= last).enumerate() {
        for k in 0..i % 3 + 1 {
            clock.set(day.and_hms_opt(8 + k as u32, 0, 0).unwrap().and_utc());
            let page = ["a", "b", "c", "d", "e"][(i + k) % 5];
            app.hit(
                &format!("site=acme&url=https%3A%2F%2Facme.example%2F{page}&ref=https%3A%2F%2Fnews.example%2F&ud=1&um=1&vp=1"),
                agents[(i + k) % agents.len()],
            )
            .await;
        }
    }
    clock.set(now);
    app.flush().await;

    let api = |path: String| {
        let (http, url) = (
            app.http.clone(),
            format!("{}/api/v1/sites/acme/{path}", app.address),
        );
        async move {
            let r = http.get(&url).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200, "{url}");
            r.json::<Value>().await.unwrap()
        }
    };
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(shots).unwrap();
    // (screenshot, address, the picker's choice, from, to, compare, the chart's unit)
    let cases = [
        (
            "day",
            "range=yesterday",
            "yesterday",
            "2026-06-14",
            "2026-06-14",
            "",
            "hour",
        ),
        (
            "28-days-compared",
            "range=28d&compare=previous",
            "28d",
            "2026-05-19",
            "2026-06-15",
            "previous",
            "day",
        ),
        (
            "year",
            "date=2025",
            "custom",
            "2025-01-01",
            "2025-12-31",
            "",
            "month",
        ),
    ];
    for (name, query, preset, from, to, compare, unit) in cases {
        let profile = tempfile::tempdir().unwrap();
        let url = format!("{}/?site=acme&{query}", app.address);
        let dom = tokio::task::spawn_blocking({
            let (url, profile) = (url.clone(), profile.path().to_owned());
            move || load_in_chromium(&url, &profile)
        })
        .await
        .unwrap();
        assert!(
            dom.contains(r#"data-state="ready""#),
            "{name}: ready: {dom}"
        );
        let label = tag_with_id(&dom, "period-label");
        for (k, v) in [
            ("data-range", preset),
            ("data-from", from),
            ("data-to", to),
            ("data-compare", compare),
        ] {
            assert_eq!(attr(label, k), Some(v), "{name}: the picker's {k}: {label}");
        }

        // The tiles, and their change, are the summary's for the range.
        let mut range = format!("from={from}&to={to}");
        if !compare.is_empty() {
            range += &format!("&compare={compare}");
        }
        let summary = api(format!("summary?{range}")).await;
        let (views, people) = (
            summary["total"]["views"].as_i64().unwrap(),
            summary["total"]["people"].as_i64().unwrap(),
        );
        assert!(views > 0, "{name}: {summary}");
        assert_eq!(tile(&dom, "range-views"), views, "{name}: views");
        assert_eq!(tile(&dom, "range-people"), people, "{name}: people");
        let change = attr(tag_with_id(&dom, "views-change"), "data-change").unwrap_or("");
        if compare.is_empty() {
            assert!(
                tag_with_id(&dom, "views-change").contains("hidden"),
                "{name}"
            );
        } else {
            let before = summary["previous"]["views"].as_i64().unwrap();
            let expected = ((views - before) as f64 / before as f64 * 100.0).round() as i64;
            assert_eq!(
                change,
                expected.to_string(),
                "{name}: views against {before}"
            );
            assert!(
                section(&dom, "traffic").contains(r#"class="previous""#),
                "{name}: the period compared with is a line on the chart"
            );
        }
        // The chart: hours of a day, days of 28, a year's 12 months as bars.
        let chart = tag_with_id(&dom, "traffic-chart");
        assert_eq!(attr(chart, "data-unit"), Some(unit), "{name}: {chart}");
        let bars = section(&dom, "traffic")
            .matches(r#"<g class="bar">"#)
            .count();
        let slots = match unit {
            "hour" => 24,
            "day" => 28,
            _ => 12,
        };
        assert_eq!(bars, slots, "{name}: bars");

        // The pages card lists what the content report answers for the range.
        let content = api(format!("reports/content?from={from}&to={to}&limit=20")).await;
        let expected: Vec<(String, i64)> = entries(&content["data"]["pages"], "views");
        assert!(!expected.is_empty(), "{name}: {content}");
        let mut shown = rows(section(&dom, "report-content"));
        let mut wanted = expected.clone();
        shown.sort();
        wanted.sort();
        assert_eq!(shown, wanted, "{name}: the pages card");
        // The traffic card's rows add up to the summary's views.
        let traffic: i64 = rows(section(&dom, "report-traffic"))
            .iter()
            .map(|r| r.1)
            .sum();
        assert_eq!(traffic, views, "{name}: the traffic card's rows");

        // Every card answered for the range: per-day reports for its days, per-month ones for
        // the whole months it touches; browsers and platforms by name.
        for report in [
            "traffic",
            "content",
            "referrers",
            "events",
            "engagement",
            "terms",
            "campaigns",
            "technology",
            "resolutions",
            "locations",
            "retention",
        ] {
            let card = tag_with_id(&dom, &format!("report-{report}"));
            let state = attr(card, "data-state").unwrap_or("");
            assert!(
                state == "loaded" || state == "empty",
                "{name}: {report} is {state}"
            );
            let answer = api(format!("reports/{report}?from={from}&to={to}")).await;
            let period = &answer["period"];
            assert_eq!(
                attr(card, "data-from"),
                period["from"].as_str(),
                "{name}: {report}"
            );
            assert_eq!(
                attr(card, "data-to"),
                period["to"].as_str(),
                "{name}: {report}"
            );
        }
        let tech = section(&dom, "report-technology");
        for proper in [">iOS<", ">macOS<", ">Windows<", ">Android<"] {
            assert!(tech.contains(proper), "{name}: {proper} in {tech}");
        }

        let shot = shots.join(format!("dashboard-{name}.png"));
        let arg = format!("--screenshot={}", shot.display());
        tokio::task::spawn_blocking(move || {
            chromium(
                &url,
                profile.path(),
                &[&arg, "--window-size=1280,2400", "--hide-scrollbars"],
            )
        })
        .await
        .unwrap();
        let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 10_000,
            "a screenshot was written to {}",
            shot.display()
        );
        eprintln!("{name}: {}", shot.display());
    }

    // The picker itself, chosen, clicked and keyed as a reader does; each time the page must
    // show the range asked for, keep it in the address, and show the API's numbers for it.
    let base = app.address.clone();
    let mut cdp = tokio::task::spawn_blocking(move || {
        let mut cdp = Cdp::start();
        cdp.call(
            "Page.navigate",
            serde_json::json!({"url": format!("{base}/?site=acme")}),
        );
        cdp.wait_for("document.body.dataset.state === 'ready'");
        cdp
    })
    .await
    .unwrap();
    let choose = |id: &str, value: &str| {
        format!(
            "(() => {{ const s = document.getElementById('{id}'); s.value = '{value}'; \
             s.dispatchEvent(new Event('change')); }})()"
        )
    };
    let key = |k: &str| {
        format!(
            "document.body.dispatchEvent(new KeyboardEvent('keydown', {{key: '{k}', \
             bubbles: true}}))"
        )
    };
    let steps = [
        // (what the reader does, as script; the range then shown; the address's range)
        (
            choose("range-preset", "yesterday"),
            ("2026-06-14", "2026-06-14", ""),
            "range=yesterday",
        ),
        (
            choose("range-preset", "28d"),
            ("2026-05-19", "2026-06-15", ""),
            "range=28d",
        ),
        (
            choose("range-compare", "previous"),
            ("2026-05-19", "2026-06-15", "previous"),
            "range=28d&compare=previous",
        ),
        (
            "document.getElementById('period-prev').click()".to_owned(),
            ("2026-04-21", "2026-05-18", "previous"),
            "range=custom&from=2026-04-21&to=2026-05-18&compare=previous",
        ),
        (
            key("y"),
            ("2025-06-16", "2026-06-15", "previous"),
            "range=12m&compare=previous",
        ),
        (
            choose("range-preset", "custom")
                + ";"
                + &choose("range-from", "2025-01-01")
                + ";"
                + &choose("range-to", "2025-12-31"),
            ("2025-01-01", "2025-12-31", "previous"),
            "range=custom&from=2025-01-01&to=2025-12-31&compare=previous",
        ),
    ];
    for (action, (from, to, compare), address) in steps {
        let shown;
        (cdp, shown) = tokio::task::spawn_blocking(move || {
            cdp.eval(&action);
            cdp.wait_for(&format!(
                "document.getElementById('tiles').dataset.from === '{from}' && \
                 document.getElementById('tiles').dataset.to === '{to}' && \
                 document.getElementById('report-content').dataset.from === '{from}' && \
                 [...document.querySelectorAll('#report-grid .report')].every((c) => \
                 c.dataset.state === 'loaded' || c.dataset.state === 'empty')"
            ));
            let shown = cdp.eval(
                "(() => { const $ = (id) => document.getElementById(id); \
                 const rows = (id) => [...$(id).querySelectorAll('tr[data-key]')] \
                   .map((r) => [r.dataset.key, +r.dataset.views]); \
                 return { search: location.search, label: { ...$('period-label').dataset }, \
                   views: +$('range-views').dataset.value, \
                   people: +$('range-people').dataset.value, \
                   change: $('views-change').hidden ? null : $('views-change').dataset.change, \
                   pages: rows('report-content'), traffic: rows('report-traffic') }; })()",
            );
            (cdp, shown)
        })
        .await
        .unwrap();
        assert_eq!(
            shown["search"],
            format!("?site=acme&{address}"),
            "the address keeps the range"
        );
        assert_eq!(shown["label"]["from"], from, "{address}: {shown}");
        assert_eq!(shown["label"]["compare"], compare, "{address}: {shown}");
        let mut range = format!("from={from}&to={to}");
        if !compare.is_empty() {
            range += &format!("&compare={compare}");
        }
        let summary = api(format!("summary?{range}")).await;
        assert_eq!(
            shown["views"], summary["total"]["views"],
            "{address}: views"
        );
        assert_eq!(
            shown["people"], summary["total"]["people"],
            "{address}: people"
        );
        let traffic: i64 = shown["traffic"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[1].as_i64().unwrap())
            .sum();
        assert_eq!(
            Some(traffic),
            summary["total"]["views"].as_i64(),
            "{address}"
        );
        if compare.is_empty() {
            assert!(shown["change"].is_null(), "{address}: no change shown");
        } else {
            let (now, before) = (
                summary["total"]["views"].as_f64().unwrap(),
                summary["previous"]["views"].as_f64().unwrap(),
            );
            let expected = ((now - before) / before * 100.0).round() as i64;
            assert_eq!(shown["change"], expected.to_string(), "{address}: change");
        }
        let content = api(format!("reports/content?from={from}&to={to}&limit=20")).await;
        let mut wanted: Vec<(String, i64)> = entries(&content["data"]["pages"], "views");
        let mut pages: Vec<(String, i64)> = shown["pages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r[0].as_str().unwrap().to_owned(), r[1].as_i64().unwrap()))
            .collect();
        wanted.sort();
        pages.sort();
        assert!(!wanted.is_empty(), "{address}");
        assert_eq!(pages, wanted, "{address}: the pages card");
    }
    drop(cdp);
}

/// Headless Chromium driven over the DevTools protocol, for clicking and choosing on a page
/// (`--dump-dom` can only load one): a minimal WebSocket client on a blocking socket, enough
/// for `Page.navigate` and `Runtime.evaluate`. Chromium is killed when this is dropped.
struct Cdp {
    child: std::process::Child,
    socket: std::net::TcpStream,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Cdp {
    fn start() -> Cdp {
        use std::io::{BufRead, Read, Write};
        let bin = std::env::var("TEST_CHROMIUM").unwrap_or_else(|_| "chromium".to_owned());
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(&bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--window-size=1280,900",
                "--remote-debugging-port=0",
                &format!("--user-agent={CHROME_WIN}"),
                &format!("--user-data-dir={}", profile.path().display()),
                "about:blank",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {bin} ({e}): scripts/test.sh installs it"));
        // Chromium writes the port it took in the profile.
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let port: u16 = loop {
            if let Some(p) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
            {
                break p;
            }
            assert!(std::time::Instant::now() < deadline, "no DevTools port");
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        // The page's WebSocket address, from /json/list.
        let mut http = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        http.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        write!(
            http,
            "GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        // Chromium may keep the connection open: read the head, then Content-Length bytes.
        let mut reader = std::io::BufReader::new(http);
        let (mut line, mut length) = (String::new(), 0);
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if let Some(n) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = n.trim().parse().unwrap();
            }
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).unwrap();
        let targets: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let ws = targets
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page to drive")
            .to_owned();
        let path = &ws[ws.find("/devtools").unwrap()..];
        let socket = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        write!(
            &socket,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        // The handshake's answer ends with an empty line; the frames follow.
        let mut reader = std::io::BufReader::new(&socket);
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        assert!(reader.buffer().is_empty(), "no frame before the first call");
        Cdp {
            child,
            socket,
            next_id: 0,
            _profile: profile,
        }
    }

    fn send(&mut self, text: &str) {
        use std::io::Write;
        let data = text.as_bytes();
        let mut frame = vec![0x81u8];
        match data.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n < 65536 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        frame.extend_from_slice(&mask);
        frame.extend(data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.socket.write_all(&frame).unwrap();
    }

    /// One whole message (continuation frames joined).
    fn receive(&mut self) -> serde_json::Value {
        use std::io::Read;
        let mut message = Vec::new();
        loop {
            let mut head = [0u8; 2];
            self.socket.read_exact(&mut head).unwrap();
            let len = match head[1] & 0x7f {
                126 => {
                    let mut b = [0u8; 2];
                    self.socket.read_exact(&mut b).unwrap();
                    u16::from_be_bytes(b) as usize
                }
                127 => {
                    let mut b = [0u8; 8];
                    self.socket.read_exact(&mut b).unwrap();
                    u64::from_be_bytes(b) as usize
                }
                n => n as usize,
            };
            let mut payload = vec![0u8; len];
            self.socket.read_exact(&mut payload).unwrap();
            message.extend_from_slice(&payload);
            if head[0] & 0x80 != 0 {
                break;
            }
        }
        serde_json::from_slice(&message).unwrap_or(serde_json::Value::Null)
    }

    /// Calls `method` and waits for its answer (events in between are dropped).
    fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&serde_json::json!({"id": id, "method": method, "params": params}).to_string());
        loop {
            let m = self.receive();
            if m["id"] == id {
                assert!(m.get("error").is_none(), "{method}: {m}");
                return m["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression on the page (promises awaited); fails on an
    /// exception.
    fn eval(&mut self, expression: &str) -> serde_json::Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({"expression": expression, "awaitPromise": true,
                "returnByValue": true}),
        );
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expression}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Waits (up to 15 s) until `condition` is true on the page.
    fn wait_for(&mut self, condition: &str) {
        let ok = self.eval(&format!(
            "new Promise((done) => {{ const t0 = Date.now(); const t = setInterval(() => {{ \
             let ok = false; try {{ ok = !!({condition}); }} catch (e) {{}} \
             if (ok || Date.now() - t0 > 15000) {{ clearInterval(t); done(ok); }} }}, 50); }})"
        ));
        assert_eq!(ok, serde_json::Value::Bool(true), "waited for {condition}");
    }
}

impl Drop for Cdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
