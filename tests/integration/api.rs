//! Black-box tests of the HTTP surface: the real application on port 0, spoken to over HTTP.

use crate::helpers::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use reqwest::header::{self, HeaderMap};
use sha2::{Digest, Sha256};

const ID_RE_LEN: usize = 43;

fn assert_session_cookie(c: &str, name: &str, partitioned: bool, max_age: u64) {
    let (pair, attrs) = c.split_once(';').expect("attributes");
    let (n, v) = pair.split_once('=').expect("pair");
    assert_eq!(n, name, "{c}");
    assert_eq!(v.len(), ID_RE_LEN, "{c}");
    let mut attrs: Vec<&str> = attrs.split(';').map(str::trim).collect();
    attrs.sort();
    let mut want = vec![
        "HttpOnly".to_string(),
        "Path=/".into(),
        "SameSite=None".into(),
        "Secure".into(),
        format!("Max-Age={max_age}"),
    ];
    if partitioned {
        want.push("Partitioned".into());
    }
    want.sort();
    assert_eq!(attrs, want, "{c}");
}

#[tokio::test]
async fn put_creates_a_session_with_both_cookies() {
    let app = spawn_app().await;
    let res = app.put("chat", "hello", SHOP, None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], SHOP);
    assert_eq!(res.headers()["access-control-allow-credentials"], "true");
    let cookies = set_cookies(res.headers());
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert_session_cookie(&cookies[0], UNPARTITIONED, false, 300);
    assert_session_cookie(&cookies[1], PARTITIONED, true, 300);
    assert_eq!(
        cookies[0].split(';').next().map(|p| &p[13..]),
        cookies[1].split(';').next().map(|p| &p[15..]),
        "both carry the same id"
    );
    let cookie = cookie_header(res.headers());
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["values"]["chat"], "hello");

    let res = app.get(SUPPORT, Some(&cookie)).await;
    assert_eq!(res.status(), 200);
    assert!(set_cookies(res.headers()).is_empty(), "nothing to re-issue");
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body, serde_json::json!({ "values": { "chat": "hello" } }));
    app.stop().await;
}

#[tokio::test]
async fn origin_is_required_and_checked_before_anything_changes() {
    let app = spawn_app().await;
    for origin in [
        None,
        Some(EVIL),
        Some("null"),
        Some("http://SHOP.localhost:9001"),
        Some("http://shop.localhost:9001/"),
        Some("http://shop.localhost:9002"),
        Some("https://example.org"),
        Some("https://a.example.org.evil.net"),
    ] {
        let res = app
            .req(Method::PUT, "/v1/session/chat", origin, None)
            .json(&serde_json::json!({ "value": "x" }))
            .send()
            .await
            .expect("send");
        assert!(
            set_cookies(res.headers()).is_empty(),
            "{origin:?} got cookies"
        );
        assert!(res.headers().get("access-control-allow-origin").is_none());
        assert_eq!(
            error_code(res).await,
            (403, "origin_denied".into()),
            "{origin:?}"
        );
    }
    // A wildcard-trusted origin and the broker's own origin are allowed.
    assert_eq!(
        app.put("k", "v", "https://help.example.org", None)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.put("k", "v", &app.public_origin.clone(), None)
            .await
            .status(),
        200
    );
    // A same-origin GET (no Origin, as browsers send it) is the broker's own iframe.
    let res = app
        .req(Method::GET, "/v1/session", None, None)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .expect("send");
    assert_no_session(res).await;
    let res = app
        .req(Method::GET, "/v1/session", None, None)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 403);
    app.stop().await;
}

#[tokio::test]
async fn an_untrusted_origin_cannot_read_or_end_a_session() {
    let app = spawn_app().await;
    let res = app.put("chat", "secret", SHOP, None).await;
    let cookie = cookie_header(res.headers());
    // Every /v1 route, with the customer's cookies and a well-formed body: refused before any
    // handler runs, so nothing is read, written, minted or redeemed, and no cookie is set.
    let token: serde_json::Value = app
        .handoff(SHOP, Some(&cookie), SUPPORT)
        .await
        .json()
        .await
        .expect("json");
    let redeem = serde_json::json!({ "token": token["token"], "origin": EVIL });
    for (method, path, body) in [
        (Method::GET, "/v1/session", None),
        (
            Method::PUT,
            "/v1/session/chat",
            Some(serde_json::json!({ "value": "evil" })),
        ),
        (Method::DELETE, "/v1/session/chat", None),
        (Method::DELETE, "/v1/session", None),
        (
            Method::POST,
            "/v1/handoff",
            Some(serde_json::json!({ "audience": SHOP })),
        ),
        (Method::POST, "/v1/handoff/redeem", Some(redeem.clone())),
    ] {
        let mut req = app.req(method.clone(), path, Some(EVIL), Some(&cookie));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("send");
        assert!(set_cookies(res.headers()).is_empty(), "{method} {path}");
        assert_eq!(
            error_code(res).await,
            (403, "origin_denied".into()),
            "{method} {path}"
        );
    }
    let res = app.get(SHOP, Some(&cookie)).await;
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["values"]["chat"], "secret", "still there, unchanged");
    // The token was not spent by the refused redeem.
    let res = app
        .redeem(
            SUPPORT,
            None,
            token["token"].as_str().expect("token"),
            Some(SUPPORT),
        )
        .await;
    assert_eq!(res.status(), 200, "the token is still good");
    app.stop().await;
}

#[tokio::test]
async fn preflight_is_answered_for_trusted_origins_only() {
    let app = spawn_app().await;
    let res = app
        .req(Method::OPTIONS, "/v1/session/chat", Some(SHOP), None)
        .header("access-control-request-method", "PUT")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 204);
    let h = res.headers();
    assert_eq!(h["access-control-allow-origin"], SHOP);
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .expect("s")
            .contains("PUT")
    );
    assert!(
        h["access-control-allow-headers"]
            .to_str()
            .expect("s")
            .contains("content-type")
    );
    assert!(h.get_all("vary").iter().any(|v| v == "Origin"));
    let res = app
        .req(Method::OPTIONS, "/v1/session/chat", Some(EVIL), None)
        .header("access-control-request-method", "PUT")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 403);
    assert!(res.headers().get("access-control-allow-origin").is_none());
    app.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_error() {
    let app = spawn_app().await;
    let put = |key: &str| app.req(Method::PUT, &format!("/v1/session/{key}"), Some(SHOP), None);
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            put("chat")
                .header("content-type", "application/json")
                .body("{\"value\":"),
            400,
            "bad_json",
        ),
        (
            put("chat")
                .header("content-type", "application/json")
                .body("{\"value\": 5}"),
            400,
            "bad_json",
        ),
        (
            put("chat")
                .header("content-type", "application/json")
                .body("{\"valu\": \"x\"}"),
            400,
            "bad_json",
        ),
        (
            put("chat")
                .header("content-type", "text/plain")
                .body("{\"value\":\"x\"}"),
            415,
            "unsupported_media_type",
        ),
        (
            put("chat").body("{\"value\":\"x\"}"),
            415,
            "unsupported_media_type",
        ),
        (
            put("chat").json(&serde_json::json!({ "value": "x".repeat(1025) })),
            413,
            "too_large",
        ),
        (
            put("chat")
                .header("content-type", "application/json")
                .body(format!("{{\"value\":\"{}\"}}", "x".repeat(20_000))),
            413,
            "too_large",
        ),
        (
            put(&"k".repeat(129)).json(&serde_json::json!({ "value": "x" })),
            400,
            "bad_key",
        ),
        (
            put("a%20b").json(&serde_json::json!({ "value": "x" })),
            400,
            "bad_key",
        ),
        (
            put("a%2Fb").json(&serde_json::json!({ "value": "x" })),
            400,
            "bad_key",
        ),
        (
            // Not UTF-8: refused in the API's own shape, not as axum's plain-text rejection.
            put("k%FF").json(&serde_json::json!({ "value": "x" })),
            400,
            "bad_key",
        ),
        (app.req(Method::GET, "/nope", None, None), 404, "not_found"),
        (
            app.req(Method::POST, "/v1/session", Some(SHOP), None),
            405,
            "method_not_allowed",
        ),
        (
            app.req(Method::POST, "/iframe.html", None, None),
            405,
            "method_not_allowed",
        ),
    ];
    for (i, (req, status, code)) in cases.into_iter().enumerate() {
        let res = req.send().await.expect("send");
        assert_eq!(
            res.headers()["content-type"],
            "application/json",
            "case {i}"
        );
        assert_eq!(
            error_code(res).await,
            (status, code.to_string()),
            "case {i}"
        );
    }
    // The exact limit is fine.
    assert_eq!(
        app.put("chat", &"x".repeat(1024), SHOP, None)
            .await
            .status(),
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn a_session_holds_a_bounded_number_of_values() {
    let app = spawn_app().await;
    let res = app.put("k0", "v", SHOP, None).await;
    let cookie = cookie_header(res.headers());
    for i in 1..4 {
        assert_eq!(
            app.put(&format!("k{i}"), "v", SHOP, Some(&cookie))
                .await
                .status(),
            200
        );
    }
    let res = app.put("k4", "v", SHOP, Some(&cookie)).await;
    assert_eq!(error_code(res).await, (413, "too_many_values".into()));
    assert_eq!(
        app.put("k3", "replaced", SHOP, Some(&cookie))
            .await
            .status(),
        200
    );
    app.stop().await;
}

/// The limit holds under concurrency: many new keys written at once into one session (the store,
/// not the handler, decides), exactly as many as fit succeed and the others get 413.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_new_keys_never_exceed_the_limit() {
    // On a file, as deployed: each write is a synced commit, so the requests truly overlap.
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("baton.db");
    let app = spawn_with(test_config(), path.to_str().expect("utf8")).await;
    let res = app.put("k0", "v", SHOP, None).await;
    let cookie = cookie_header(res.headers());
    // Sent all at once, each on its own task.
    let puts: Vec<_> = (1..=20)
        .map(|i| {
            let req = app
                .req(
                    Method::PUT,
                    &format!("/v1/session/k{i}"),
                    Some(SHOP),
                    Some(&cookie),
                )
                .json(&serde_json::json!({ "value": "v" }));
            tokio::spawn(async move {
                let res = req.send().await.expect("send");
                match res.status().as_u16() {
                    200 => None,
                    _ => Some(error_code(res).await),
                }
            })
        })
        .collect();
    let mut results = Vec::new();
    for p in puts {
        results.push(p.await.expect("join"));
    }
    let refused: Vec<_> = results.into_iter().flatten().collect();
    assert_eq!(refused.len(), 17, "3 fit beside k0: {refused:?}");
    assert!(
        refused
            .iter()
            .all(|e| *e == (413, "too_many_values".into())),
        "{refused:?}"
    );
    let body: serde_json::Value = app
        .get(SHOP, Some(&cookie))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        body["values"].as_object().expect("values").len(),
        4,
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn delete_value_and_end_session() {
    let app = spawn_app().await;
    let res = app.put("a", "1", SHOP, None).await;
    let cookie = cookie_header(res.headers());
    app.put("b", "2", SHOP, Some(&cookie)).await;
    let res = app.delete_value("a", SHOP, Some(&cookie)).await;
    assert_eq!(res.status(), 204);
    let body: serde_json::Value = app
        .get(SHOP, Some(&cookie))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body, serde_json::json!({ "values": { "b": "2" } }));

    let res = app.end(SUPPORT, Some(&cookie)).await;
    assert_eq!(res.status(), 204);
    let removals = set_cookies(res.headers());
    assert_eq!(removals.len(), 2);
    for (c, name, partitioned) in [
        (&removals[0], format!("{UNPARTITIONED}="), false),
        (&removals[1], format!("{PARTITIONED}="), true),
    ] {
        assert!(c.starts_with(&format!("{name};")), "{c}");
        assert!(
            c.contains("Max-Age=0") && c.contains("Secure") && c.contains("Path=/"),
            "{c}"
        );
        assert!(c.contains("SameSite=None") && c.contains("HttpOnly"), "{c}");
        assert_eq!(c.contains("Partitioned"), partitioned, "{c}");
    }
    let res = app.get(SHOP, Some(&cookie)).await;
    assert_eq!(res.status(), 204, "ended server-side");
    app.stop().await;
}

#[tokio::test]
async fn partitioned_cookie_alone_reaches_the_session_and_twin_is_reissued() {
    let app = spawn_app().await;
    let res = app.put("chat", "x", SHOP, None).await;
    let only_p = only_cookie(res.headers(), PARTITIONED);
    let res = app.get(SHOP, Some(&only_p)).await;
    assert_eq!(res.status(), 200);
    let reissued = set_cookies(res.headers());
    assert_eq!(reissued.len(), 2, "both cookies re-issued to match");
    assert_eq!(reissued[1].split(';').next(), Some(only_p.as_str()));
    app.stop().await;
}

#[tokio::test]
async fn unpartitioned_cookie_wins_when_both_reach_live_sessions() {
    let app = spawn_app().await;
    let a = app.put("chat", "global", SHOP, None).await;
    let b = app.put("chat", "local", SHOP, None).await;
    let unpart = only_cookie(a.headers(), UNPARTITIONED);
    let part = only_cookie(b.headers(), PARTITIONED);
    let res = app.get(SHOP, Some(&format!("{unpart}; {part}"))).await;
    let cookies = set_cookies(res.headers());
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["values"]["chat"], "global");
    assert!(
        cookies[1].starts_with(&unpart.replacen(
            &format!("{UNPARTITIONED}="),
            &format!("{PARTITIONED}="),
            1
        )),
        "{cookies:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn idle_and_absolute_timeouts_follow_the_clock() {
    let app = spawn_app().await;
    let res = app.put("chat", "x", SHOP, None).await;
    let cookie = cookie_header(res.headers());
    for _ in 0..5 {
        app.clock.advance_secs(50);
        assert_eq!(
            app.get(SHOP, Some(&cookie)).await.status(),
            200,
            "kept alive by use"
        );
    }
    app.clock.advance_secs(50);
    // 300 s after creation: the absolute timeout ends it however busy it was.
    let res = app.get(SHOP, Some(&cookie)).await;
    assert_no_session(res).await;

    let res = app.put("chat", "y", SHOP, None).await;
    let cookie = cookie_header(res.headers());
    app.clock.advance_secs(59);
    assert_eq!(app.get(SHOP, Some(&cookie)).await.status(), 200);
    app.clock.advance_secs(60);
    assert_eq!(
        app.get(SHOP, Some(&cookie)).await.status(),
        204,
        "idle for 60 s"
    );
    // A write with a dead session's cookie starts a new session rather than reviving it.
    let res = app.put("chat", "z", SHOP, Some(&cookie)).await;
    assert_eq!(res.status(), 200);
    assert_ne!(cookie_header(res.headers()), cookie);
    app.stop().await;
}

#[tokio::test]
async fn iframe_page_headers() {
    let app = spawn_app().await;
    let res = app.fetch("/iframe.html").await;
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    let csp = h["content-security-policy"].to_str().expect("ascii");
    let hash = csp
        .strip_prefix("default-src 'none'; script-src 'sha256-")
        .and_then(|rest| rest.split_once("'; "))
        .map(|(hash, rest)| {
            assert_eq!(
                rest,
                format!(
                    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors {SHOP} {SUPPORT} {WILD}"
                )
            );
            hash.to_owned()
        })
        .expect("script-src is one hash, and nothing else");
    assert!(
        h.get("x-frame-options").is_none(),
        "CSP frame-ancestors, not XFO"
    );
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let body = res.text().await.expect("text");
    // Its script inline, by exactly the bytes the CSP's hash admits: those of the script.
    let js = app.fetch("/iframe.js").await.text().await.expect("text");
    let inline = body
        .split_once("<script>")
        .and_then(|(_, rest)| rest.split_once("</script>"))
        .map(|(inline, _)| inline)
        .expect("an inline script element");
    assert_eq!(inline, js, "the page's inline script is iframe.js");
    assert_eq!(
        hash,
        STANDARD.encode(Sha256::digest(inline.as_bytes())),
        "the CSP hash is the SHA-256 of the inline bytes"
    );
    assert!(!body.contains("<script src"), "no script by URL: {body}");
    // The versioned URL of the script is still served (one release, for pages that load it).
    let version: String = Sha256::digest(js.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let versioned = app.fetch(&format!("/iframe.{version}.js")).await;
    assert_eq!(
        versioned.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(versioned.text().await.expect("body"), js);
    assert!(
        body.contains(&format!(r#""trusted":["{SHOP}","{SUPPORT}","{WILD}"]"#)),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_inactive_storage_access_grant_is_activated_on_load() {
    let app = spawn_app().await;
    let res = app.fetch("/iframe.html").await;
    assert!(res.headers().get("activate-storage-access").is_none());
    let res = app
        .at("/iframe.html")
        .header("sec-fetch-storage-access", "inactive")
        .send()
        .await
        .expect("send");
    assert_eq!(res.headers()["activate-storage-access"], "load");
    app.stop().await;
}

#[tokio::test]
async fn nothing_trusted_means_nobody_may_frame() {
    let mut config = test_config();
    config.trust.origins = baton::origin::TrustedOrigins::default();
    let app = spawn_with(config, ":memory:").await;
    let res = app.fetch("/iframe.html").await;
    assert!(
        res.headers()["content-security-policy"]
            .to_str()
            .expect("s")
            .ends_with("frame-ancestors 'none'")
    );
    app.stop().await;
}

#[tokio::test]
async fn scripts_are_served_with_etag_304_and_compression() {
    let app = spawn_app().await;
    for (path, kind) in [
        ("/cookie-provider.js", "text/javascript; charset=utf-8"),
        ("/cookie-provider.min.js", "text/javascript; charset=utf-8"),
        ("/iframe.js", "text/javascript; charset=utf-8"),
        ("/iframe.html", "text/html; charset=utf-8"),
    ] {
        let res = app.fetch(path).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["content-type"], kind, "{path}");
        let etag = res.headers()["etag"].clone();
        let body = res.bytes().await.expect("body");
        assert!(!body.is_empty());
        let res = app
            .at(path)
            .header("if-none-match", etag.clone())
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), 304, "{path}");
        assert_eq!(res.headers()["etag"], etag);
        for enc in ["gzip", "br"] {
            let res = app
                .at(path)
                .header("accept-encoding", enc)
                .send()
                .await
                .expect("send");
            if body.len() > 32 {
                assert_eq!(res.headers()["content-encoding"], enc, "{path}");
            }
        }
    }
    let a: HeaderMap = app.fetch("/cookie-provider.js").await.headers().clone();
    let b: HeaderMap = app.fetch("/cookie-provider.min.js").await.headers().clone();
    assert_eq!(
        a[header::ETAG],
        b[header::ETAG],
        "same script under both names"
    );
    // The partner script is public: any page may load it, with SRI + CORS too; the iframe's own
    // script is for the iframe only.
    assert_eq!(a["access-control-allow-origin"], "*");
    assert_eq!(a["cross-origin-resource-policy"], "cross-origin");
    let own = app.fetch("/iframe.js").await;
    assert!(own.headers().get("access-control-allow-origin").is_none());
    assert_eq!(own.headers()["cross-origin-resource-policy"], "same-origin");
    app.stop().await;
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let res = app.fetch("/healthz").await;
    assert_eq!(res.status(), 200);
    let res = app.fetch("/readyz").await;
    assert_eq!(res.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn sessions_survive_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("baton.db");
    let path = path.to_str().expect("utf8");
    let app = spawn_with(test_config(), path).await;
    let res = app.put("chat", "kept", SHOP, None).await;
    let cookie = cookie_header(res.headers());
    app.stop().await;
    let app = spawn_with(test_config(), path).await;
    let body: serde_json::Value = app
        .get(SHOP, Some(&cookie))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["values"]["chat"], "kept");
    app.stop().await;
}

#[tokio::test]
async fn clients_over_their_budget_get_429() {
    let mut config = test_config();
    config.server.rate_limit_per_minute = 5;
    config.server.client_ip_header =
        Some(reqwest::header::HeaderName::from_static("x-forwarded-for"));
    // The test client is the proxy here: its connection comes from loopback.
    config.server.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")];
    let app = spawn_with(config, ":memory:").await;
    let get = |ip: &'static str| {
        app.req(Method::GET, "/v1/session", Some(SHOP), None)
            .header("x-forwarded-for", format!("203.0.113.9, {ip}"))
            .send()
    };
    for _ in 0..5 {
        assert_eq!(get("198.51.100.1").await.expect("send").status(), 204);
    }
    let res = get("198.51.100.1").await.expect("send");
    assert_eq!(res.headers()["retry-after"], "1");
    assert_eq!(error_code(res).await, (429, "rate_limited".into()));
    assert_eq!(
        get("198.51.100.2").await.expect("send").status(),
        204,
        "per client"
    );
    // Assets and health checks are not limited.
    let res = app.fetch("/healthz").await;
    assert_eq!(res.status(), 200);
    app.stop().await;
}

/// The size budget, measured on what the server actually sends with `Accept-Encoding: gzip`:
/// 2048 for the iframe page, which carries its script inline, 2304 for the partner script
/// (`scripts/check-js.mjs` checks the same budgets on the built files).
#[tokio::test]
async fn served_scripts_fit_the_gzip_budget() {
    let app = spawn_app().await;
    let gz = |path: &'static str| {
        let req = app.at(path).header("accept-encoding", "gzip");
        async move {
            let res = req.send().await.expect("send");
            assert_eq!(res.headers()["content-encoding"], "gzip", "{path}");
            res.bytes().await.expect("body").len()
        }
    };
    let provider = gz("/cookie-provider.js").await;
    let iframe = gz("/iframe.html").await;
    println!(
        "served gzipped: cookie-provider.js {provider} B, iframe page with its script {iframe} B"
    );
    assert!(
        provider <= 2304,
        "cookie-provider.js is {provider} B gzipped"
    );
    assert!(
        iframe <= 2048,
        "iframe page with its script is {iframe} B gzipped"
    );
    app.stop().await;
}

#[tokio::test]
async fn metrics_count_responses_and_events() {
    let app = spawn_app().await;
    app.put("chat", "x", SHOP, None).await;
    app.get(EVIL, None).await;
    let text = app.metrics().await;
    assert!(
        text.contains("baton_http_responses_total{status=\"200\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("baton_http_responses_total{status=\"403\"} 1"),
        "{text}"
    );
    assert!(text.contains("baton_sessions_created_total 1"), "{text}");
    assert!(text.contains("baton_handoffs_issued_total 0"), "{text}");
    app.stop().await;
}
