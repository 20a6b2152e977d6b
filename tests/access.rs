//! Read-side access over real HTTP: the limit on wrong tokens per client address, the security
//! headers of the dashboard and demo pages, and CORS exactly as wide as each endpoint needs.

mod support;

use support::*;

use tally::api::token;
use tally::settings::ServeSettings;
use tally::site::TokenHash;

/// `acme`, private, with one token; the test client is on loopback, a proxy by default, so
/// tests choose their address with `X-Forwarded-For`.
async fn app_with_token(settings: ServeSettings) -> (TestApp, String) {
    let store = TestStore::new(Backend::Embedded).await;
    let mut site = store.add_site("acme", "UTC").await;
    let (t, hash) = token::generate().unwrap();
    site.tokens.push(TokenHash {
        hash,
        created_at: chrono::Utc::now(),
    });
    store.store.update_site(&site).await.unwrap();
    let app = TestApp::spawn(store, settings, tally::period::system_clock()).await;
    (app, t)
}

async fn summary(app: &TestApp, from: &str, token: Option<&str>) -> reqwest::Response {
    let mut r = app
        .http
        .get(format!("{}/api/v1/sites/acme/summary", app.address))
        .header("X-Forwarded-For", from);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.unwrap()
}

fn metric(text: &str, name: &str) -> i64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tokens_are_limited_per_address() {
    let settings = ServeSettings {
        auth_failures_per_minute: 10,
        ..test_settings()
    };
    let (app, good) = app_with_token(settings).await;
    let wrong = "tly_00000000000000000000000000000000";
    let attacker = "198.51.100.7";
    for i in 0..10 {
        let r = summary(&app, attacker, Some(wrong)).await;
        assert_eq!(r.status(), 401, "failure {i}");
    }
    // The 11th failure, and then anything token-checked from that address: 429, with the
    // JSON error shape and Retry-After, on every API route.
    let r = summary(&app, attacker, Some(wrong)).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_failures");
    assert_eq!(summary(&app, attacker, Some(&good)).await.status(), 429);
    let r = app
        .http
        .get(format!("{}/api/v1/sites/acme/reports/content", app.address))
        .header("X-Forwarded-For", attacker)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);

    // Another address is not affected; successes and requests without a token never count.
    let visitor = "203.0.113.9";
    for _ in 0..30 {
        assert_eq!(summary(&app, visitor, Some(&good)).await.status(), 200);
        assert_eq!(summary(&app, visitor, None).await.status(), 401);
    }
    // Behind one trusted proxy, only the proxy's own entry is believed: a client cannot
    // escape its address by prepending another.
    let r = summary(&app, &format!("192.0.2.1, {attacker}"), Some(&good)).await;
    assert_eq!(r.status(), 429);

    let m = app.metrics().await;
    assert_eq!(metric(&m, "tally_api_auth_failures_total"), 10);
    assert_eq!(metric(&m, "tally_api_auth_limited_total"), 4);
    let _ = app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_turns_the_limit_off() {
    let settings = ServeSettings {
        auth_failures_per_minute: 0,
        ..test_settings()
    };
    let (app, _good) = app_with_token(settings).await;
    for _ in 0..20 {
        let r = summary(&app, "198.51.100.7", Some("tly_0")).await;
        assert_eq!(r.status(), 401);
    }
    let _ = app.stop().await;
}

/// The headers every dashboard page and file carries.
fn assert_secure(r: &reqwest::Response, what: &str) {
    let h = r.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{what}: {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
    assert_eq!(h["x-frame-options"], "DENY", "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_pages_send_security_headers_and_need_no_inline_code() {
    let settings = ServeSettings {
        demo: true,
        ..test_settings()
    };
    let (app, _) = app_with_token(settings).await;
    for path in ["/", "/app.js", "/app.css", "/demo", "/demo.js", "/demo.css"] {
        let r = app
            .http
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_secure(&r, path);
        let body = r.text().await.unwrap();
        if !path.ends_with(".js") && !path.ends_with(".css") {
            // No inline script, handler or style for the policy to have to allow.
            let inline_script = body
                .match_indices("<script")
                .any(|(i, _)| !body[i..].split('>').next().unwrap().contains(" src="));
            assert!(!inline_script, "{path} has an inline script");
            assert!(!body.contains("<style"), "{path} has an inline style sheet");
            assert!(!body.contains(" style="), "{path} has a style attribute");
            assert!(
                !body.contains(" onclick=") && !body.contains(" onload="),
                "{path} has an inline handler"
            );
        }
    }
    let _ = app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_as_wide_as_each_endpoint_needs() {
    let (app, good) = app_with_token(test_settings()).await;
    let r = app
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/e", app.address))
        .header("Origin", "https://shop.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert_eq!(h["access-control-allow-methods"], "POST");
    assert_eq!(h["access-control-allow-headers"], "Content-Type");
    assert_eq!(h["access-control-max-age"], "86400");
    assert!(h.get("access-control-allow-credentials").is_none());
    let r = app
        .http
        .post(format!("{}/e", app.address))
        .header("Origin", "https://acme.example")
        .body(r#"{"site":"acme","name":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(r
        .headers()
        .get("access-control-allow-credentials")
        .is_none());

    // The read API sends no CORS header at all, to a success, a refusal or a preflight.
    let api = format!("{}/api/v1/sites/acme/summary", app.address);
    for (method, token) in [
        (reqwest::Method::GET, Some(good.as_str())),
        (reqwest::Method::GET, None),
        (reqwest::Method::OPTIONS, None),
    ] {
        let mut req = app
            .http
            .request(method.clone(), &api)
            .header("Origin", "https://evil.example")
            .header("Access-Control-Request-Method", "GET");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let cors: Vec<_> = r
            .headers()
            .keys()
            .filter(|k| k.as_str().starts_with("access-control-"))
            .collect();
        assert!(cors.is_empty(), "{method} {token:?}: {cors:?}");
    }
    let _ = app.stop().await;
}
