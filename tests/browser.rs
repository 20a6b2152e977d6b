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
    let today = dom
        .split(r#"id="today-views""#)
        .nth(1)
        .and_then(|rest| rest.split("data-value=\"").nth(1))
        .and_then(|v| v.split('"').next())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        today, "2",
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
