//! Read-side access over real HTTP: the limit on wrong tokens per client address, the security
//! headers of the dashboard and demo pages, the dashboard's modules under content-hashed
//! addresses, and CORS exactly as wide as each endpoint needs.

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
    for path in ["/", "/app.css", "/demo", "/demo.js", "/demo.css"] {
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

/// The policy of the dashboard, word for word: modules need nothing more than `'self'`.
const DASHBOARD_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// The specifiers of a module's static imports (`from './x.js'`, `import './x.js'`).
fn imports(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    for start in ["from '", "from \"", "import '", "import \""] {
        let quote = start.chars().last().unwrap();
        for (at, _) in body.match_indices(start) {
            let rest = &body[at + start.len()..];
            let spec = &rest[..rest.find(quote).unwrap()];
            if !spec.contains(char::is_whitespace) {
                out.push(spec.to_owned());
            }
        }
    }
    out
}

/// The page names its modules by content-hashed addresses and so does every import: each is
/// JavaScript, cached for a year as immutable, under the page's policy. An address that is not
/// one of them (an old hash, no hash, the old `/app.js`) is the usual 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_modules_have_hashed_immutable_addresses() {
    let (app, _) = app_with_token(test_settings()).await;
    let get = |path: &str| app.http.get(format!("{}/{path}", app.address)).send();
    let page = get("").await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-security-policy"], DASHBOARD_CSP);
    assert_eq!(page.headers()["cache-control"], "no-cache");
    assert!(page.headers().contains_key("etag"));
    let html = page.text().await.unwrap();

    // Every address the page names: the entry's script and the modulepreload links.
    let named: std::collections::BTreeSet<String> = html
        .split("\"assets/")
        .skip(1)
        .map(|rest| format!("assets/{}", rest.split('"').next().unwrap()))
        .collect();
    assert!(
        html.contains(r#"<script type="module" src="assets/main."#),
        "{html}"
    );
    let mut queue: Vec<String> = named.iter().cloned().collect();
    let mut seen = std::collections::BTreeSet::new();
    while let Some(path) = queue.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let hash = path.rsplit('.').nth(1).unwrap();
        assert!(
            hash.len() == 12 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
            "{path} has a hash"
        );
        let r = get(&path).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert!(
            h["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/javascript"),
            "{path}"
        );
        assert_eq!(
            h["cache-control"], "public, max-age=31536000, immutable",
            "{path}"
        );
        assert_eq!(h["content-security-policy"], DASHBOARD_CSP, "{path}");
        assert_secure(&r, &path);
        let etag = h["etag"].clone();
        let body = r.text().await.unwrap();
        for spec in imports(&body) {
            let file = spec
                .strip_prefix("./")
                .unwrap_or_else(|| panic!("{path} imports {spec}: not a module of tally's"));
            queue.push(format!("assets/{file}"));
        }
        // The same address is always the same text: a browser that has it asks no more.
        let again = app
            .http
            .get(format!("{}/{path}", app.address))
            .header("If-None-Match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
    }
    assert!(seen.len() > 10, "{seen:?}");
    assert_eq!(
        seen, named,
        "the page preloads exactly the modules the imports reach"
    );

    let main = named
        .iter()
        .find(|p| p.starts_with("assets/main."))
        .unwrap();
    for gone in [
        main.replace(&main[12..24], "000000000000"),
        "assets/main.js".to_owned(),
        "app.js".to_owned(),
    ] {
        let r = get(&gone).await.unwrap();
        assert_eq!(r.status(), 404, "{gone}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{gone}");
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
