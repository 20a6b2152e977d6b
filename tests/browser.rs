//! The real snippet in a real browser: headless Chromium loads the demo page twice with one
//! profile. The first view is a new visitor, the second (same cookie jar) is not.

mod support;

use chrono::Utc;
use std::process::{Command, Stdio};
use support::*;
use tally::period::LocalTime;
use tally::settings::ServeSettings;

/// Loads `url` in headless Chromium (`TEST_CHROMIUM`, else `chromium`) with the profile in
/// `profile`, waits for the page to settle, and returns the DOM it ended with.
fn load_in_chromium(url: &str, profile: &std::path::Path) -> String {
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
            // Headless Chromium announces itself as HeadlessChrome, which tally rightly
            // does not count; a visitor's browser says Chrome.
            &format!("--user-agent={CHROME_WIN}"),
            &format!("--user-data-dir={}", profile.display()),
            "--virtual-time-budget=3000",
            "--dump-dom",
            url,
        ])
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
    let url = format!("{}/demo", app.address);

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
    if after.hour == before.hour {
        assert_count(
            &traffic,
            &format!("h.{:02}.{:02}.u", before.day, before.hour),
            1,
        );
    }
}
