//! The restore path in one round trip (issue 23): the iframe page carries, in cookie modes, the
//! session the request's cookie reaches, so the iframe answers the page's first read without a
//! fetch. Checked here: when it is rendered (a frame's request with a live session's cookie) and
//! when not (no cookie, a dead session, not a frame, a storage-access grant about to be used, a
//! stuck store), its escaping, its caching, and that it reads the session exactly as
//! `GET /v1/session` does (same values, same touch, same cookies re-issued).

use std::sync::Arc;

use baton::session::sqlite::SqliteStore;
use reqwest::header::HeaderMap;

use crate::helpers::*;

const BLOCK: &str = r#"<script id="baton-session" type="application/json">"#;

/// The iframe page as a browser's frame asks for it (`Sec-Fetch-Dest: iframe`), with `cookie`.
async fn framed(app: &TestApp, cookie: Option<&str>) -> (HeaderMap, String) {
    page(app, cookie, &[("sec-fetch-dest", "iframe")]).await
}

async fn page(
    app: &TestApp,
    cookie: Option<&str>,
    headers: &[(&str, &str)],
) -> (HeaderMap, String) {
    let mut req = app.at("/iframe.html");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.expect("send");
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    (h, res.text().await.expect("text"))
}

/// The text of the snapshot block, if the page has one.
fn block(body: &str) -> Option<&str> {
    body.split_once(BLOCK)
        .and_then(|(_, rest)| rest.split_once("</script>"))
        .map(|(json, _)| json)
}

/// The snapshot's values, parsed as the iframe parses them.
fn snapshot(body: &str) -> Option<serde_json::Value> {
    block(body).map(|json| serde_json::from_str(json).expect("the block is JSON"))
}

/// A new session holding `values`, and its cookies as a browser sends them back.
async fn session(app: &TestApp, values: &[(&str, &str)]) -> String {
    let mut cookie: Option<String> = None;
    for (k, v) in values {
        let res = app.put(k, v, SHOP, cookie.as_deref()).await;
        assert_eq!(res.status(), 200);
        cookie.get_or_insert_with(|| cookie_header(res.headers()));
    }
    cookie.expect("at least one value")
}

fn assert_prepared(h: &HeaderMap, body: &str, why: &str) {
    assert!(
        block(body).is_none(),
        "{why}: no session in the page: {body}"
    );
    assert_eq!(h["cache-control"], "no-cache", "{why}");
    assert!(h.get("etag").is_some(), "{why}");
    assert!(h.get("set-cookie").is_none(), "{why}");
}

#[tokio::test]
async fn a_frame_with_a_live_sessions_cookie_gets_its_values_in_a_no_store_page() {
    let app = spawn_app().await;
    let cookie = session(&app, &[("chat", "c-1"), ("cart", "[1,2]")]).await;
    let (h, body) = framed(&app, Some(&cookie)).await;
    assert_eq!(
        snapshot(&body),
        Some(serde_json::json!({"chat": "c-1", "cart": "[1,2]"}))
    );
    assert_eq!(h["cache-control"], "no-store");
    assert!(
        h.get("etag").is_none(),
        "a page of one browser's session has no tag"
    );
    assert!(h.get("content-encoding").is_none());
    // The same values GET /v1/session answers for that cookie.
    let api: serde_json::Value = app
        .get(SHOP, Some(&cookie))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(snapshot(&body).expect("values"), api["values"]);
    // The block is not a script that runs, and it comes before the one that does, which reads it.
    let (before, after) = body.split_once(BLOCK).expect("block");
    assert!(before.contains(r#"id="baton-config""#));
    assert!(after.contains("<script>"));
    // The same policy as the page without it: only that inline script runs.
    let (prepared, _) = page(&app, None, &[]).await;
    assert_eq!(
        h["content-security-policy"],
        prepared["content-security-policy"]
    );
    assert_eq!(h["cross-origin-resource-policy"], "cross-origin");
    let vary: Vec<_> = h
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().expect("ascii"))
        .collect();
    assert!(
        vary.contains(&"Cookie") && vary.contains(&"Sec-Fetch-Dest"),
        "{vary:?}"
    );

    // Either cookie alone reaches it (a browser blocking third-party cookies keeps only the
    // partitioned one); a session without values is rendered as one.
    let res = app.put("chat", "p", SUPPORT, None).await;
    let partitioned = only_cookie(res.headers(), PARTITIONED);
    let (_, body) = framed(&app, Some(&partitioned)).await;
    assert_eq!(snapshot(&body), Some(serde_json::json!({"chat": "p"})));
    let res = app.delete_value("chat", SUPPORT, Some(&partitioned)).await;
    assert_eq!(res.status(), 204);
    let (_, body) = framed(&app, Some(&partitioned)).await;
    assert_eq!(snapshot(&body), Some(serde_json::json!({})));
    app.stop().await;
}

#[tokio::test]
async fn without_a_cookie_or_a_frame_the_page_is_the_prepared_one() {
    let app = spawn_app().await;
    let cookie = session(&app, &[("chat", "secret-value")]).await;
    let (h, body) = framed(&app, None).await;
    assert_prepared(&h, &body, "no cookie");
    // Revalidated as before: 304 for the tag it holds.
    let res = app
        .at("/iframe.html")
        .header("sec-fetch-dest", "iframe")
        .header("if-none-match", h["etag"].clone())
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 304);
    // Not a frame (a top-level open, an <img>, a fetch), or no fetch metadata at all: nothing.
    for dest in [
        None,
        Some("document"),
        Some("image"),
        Some("empty"),
        Some("script"),
    ] {
        let headers: Vec<(&str, &str)> = dest.map(|d| ("sec-fetch-dest", d)).into_iter().collect();
        let (h, body) = page(&app, Some(&cookie), &headers).await;
        assert_prepared(&h, &body, &format!("Sec-Fetch-Dest {dest:?}"));
        assert!(!body.contains("secret-value"));
    }
    // A storage-access grant about to be activated: the iframe's calls will carry another cookie
    // than this request did.
    let (h, body) = page(
        &app,
        Some(&cookie),
        &[
            ("sec-fetch-dest", "iframe"),
            ("sec-fetch-storage-access", "inactive"),
        ],
    )
    .await;
    assert_prepared(&h, &body, "grant inactive");
    assert_eq!(h["activate-storage-access"], "load");
    // A cookie that is no id at all.
    let (h, body) = framed(&app, Some(&format!("{UNPARTITIONED}=nonsense"))).await;
    assert_prepared(&h, &body, "malformed cookie");
    app.stop().await;
}

#[tokio::test]
async fn no_value_can_end_the_block_or_the_script() {
    let app = spawn_app().await;
    let hostile = "</script><script>alert(1)</script>";
    let others = "a\u{2028}b\u{2029}c & <!-- --> </SCRIPT > \" \\ ' \u{0}";
    let cookie = session(&app, &[("chat", hostile), ("other", others)]).await;
    let (_, body) = framed(&app, Some(&cookie)).await;
    let json = block(&body).expect("block");
    for raw in ['<', '>', '&', '\u{2028}', '\u{2029}'] {
        assert!(!json.contains(raw), "{raw:?} raw in the block: {json}");
    }
    assert!(
        json.contains(r"\u003c/script\u003e\u003cscript\u003ealert(1)"),
        "{json}"
    );
    assert!(json.contains(r"a\u2028b\u2029c \u0026 \u003c!--"), "{json}");
    // Parsed back, the very values.
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(json).expect("json"),
        serde_json::json!({"chat": hostile, "other": others})
    );
    // Three script elements and no more: the config, the snapshot, the inline script.
    let lower = body.to_ascii_lowercase();
    assert_eq!(lower.matches("<script").count(), 3, "{body}");
    assert_eq!(lower.matches("</script").count(), 3, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn an_ended_or_expired_session_renders_nothing() {
    let app = spawn_app().await;
    let cookie = session(&app, &[("chat", "gone")]).await;
    assert_eq!(app.end(SHOP, Some(&cookie)).await.status(), 204);
    let (h, body) = framed(&app, Some(&cookie)).await;
    assert_prepared(&h, &body, "ended");

    let cookie = session(&app, &[("chat", "idle")]).await;
    app.clock.advance_secs(61);
    let (h, body) = framed(&app, Some(&cookie)).await;
    assert_prepared(&h, &body, "idle past its timeout");
    app.stop().await;
}

/// Rendering the page reads the session as `GET /v1/session` does: the read touches it (sliding
/// idle expiry), and a page for a request that is not a frame's touches nothing.
#[tokio::test]
async fn the_page_touches_the_session_as_a_read_does() {
    let app = spawn_app().await;
    let read = session(&app, &[("chat", "kept")]).await;
    let unread = session(&app, &[("chat", "left")]).await;
    app.clock.advance_secs(50);
    let (_, body) = framed(&app, Some(&read)).await;
    assert!(block(&body).is_some());
    let (_, body) = page(&app, Some(&unread), &[("sec-fetch-dest", "document")]).await;
    assert!(block(&body).is_none());
    // 100 s after the writes, 50 s after the framed page: idle timeout 60 s.
    app.clock.advance_secs(50);
    assert_eq!(
        app.get(SHOP, Some(&read)).await.status(),
        200,
        "touched by the page"
    );
    assert_no_session(app.get(SHOP, Some(&unread)).await).await;
    app.stop().await;
}

/// When only one cookie reaches the session, `GET /v1/session` sets both again; so does the page.
#[tokio::test]
async fn the_page_reissues_the_cookies_a_read_would() {
    let app = spawn_app().await;
    let res = app.put("chat", "x", SHOP, None).await;
    let partitioned = only_cookie(res.headers(), PARTITIONED);
    let names = |h: &HeaderMap| {
        let mut v: Vec<String> = set_cookies(h)
            .iter()
            .map(|c| c.split(';').next().expect("pair").to_owned())
            .collect();
        v.sort();
        v
    };
    let api = app.get(SHOP, Some(&partitioned)).await;
    let from_api = set_cookies(api.headers());
    assert_eq!(from_api.len(), 2, "the API re-issues both");
    let (h, _) = framed(&app, Some(&partitioned)).await;
    assert_eq!(names(&h), names(api.headers()));
    let mut from_page = set_cookies(&h);
    let mut from_api = from_api;
    from_page.sort();
    from_api.sort();
    assert_eq!(from_page, from_api, "the same cookies, attributes and all");
    // Both cookies present and agreeing: nothing re-issued, as the API.
    let both = cookie_header(api.headers());
    let (h, _) = framed(&app, Some(&both)).await;
    assert!(h.get("set-cookie").is_none());
    app.stop().await;
}

/// Where the browser says the frame has no access to unpartitioned cookies
/// (`Sec-Fetch-Storage-Access: none`: Chromium with third-party cookies blocked), the partitioned
/// cookie alone is all it can keep: neither the page nor the API sets it again to what it is, nor
/// sets the twin the browser would refuse. Any other value (or none) re-issues both, as before.
#[tokio::test]
async fn where_the_twin_would_be_refused_the_partitioned_cookie_alone_is_not_reissued() {
    let app = spawn_app().await;
    let res = app.put("chat", "x", SHOP, None).await;
    let partitioned = only_cookie(res.headers(), PARTITIONED);
    let (h, body) = page(
        &app,
        Some(&partitioned),
        &[
            ("sec-fetch-dest", "iframe"),
            ("sec-fetch-storage-access", "none"),
        ],
    )
    .await;
    assert_eq!(snapshot(&body), Some(serde_json::json!({ "chat": "x" })));
    assert_eq!(
        set_cookies(&h),
        Vec::<String>::new(),
        "the page sets no cookie"
    );
    for (access, reissued) in [("none", 0), ("inactive", 2), ("active", 2)] {
        let api = app
            .req(
                reqwest::Method::GET,
                "/v1/session",
                Some(SHOP),
                Some(&partitioned),
            )
            .header("sec-fetch-storage-access", access)
            .send()
            .await
            .expect("send");
        assert_eq!(api.status(), 200);
        assert_eq!(
            set_cookies(api.headers()).len(),
            reissued,
            "Sec-Fetch-Storage-Access: {access}"
        );
    }
    // The unpartitioned cookie of a session that is no more, with the header saying `none`
    // (which a browser would not send with it): the partitioned one's session wins and both are
    // set to it, so that the stale one goes.
    let stale = app.put("chat", "old", SHOP, None).await;
    let unpartitioned = only_cookie(stale.headers(), UNPARTITIONED);
    let end = app
        .req(
            reqwest::Method::DELETE,
            "/v1/session",
            Some(SHOP),
            Some(&unpartitioned),
        )
        .send()
        .await
        .expect("send");
    assert!(end.status().is_success());
    let (h, body) = page(
        &app,
        Some(&format!("{unpartitioned}; {partitioned}")),
        &[
            ("sec-fetch-dest", "iframe"),
            ("sec-fetch-storage-access", "none"),
        ],
    )
    .await;
    assert_eq!(snapshot(&body), Some(serde_json::json!({ "chat": "x" })));
    assert_eq!(set_cookies(&h).len(), 2, "the stale twin is replaced");
    app.stop().await;
}

/// A stuck store must not hold the page (a frame holds its parent's `load` event): the page
/// comes without the session, soon, and the iframe's own read meets the store as before.
#[tokio::test]
async fn a_stuck_store_gives_the_page_without_the_session_at_once() {
    let config = test_config();
    let store = SqliteStore::open(":memory:", config.session.timeouts()).expect("store");
    let app = spawn_with_store(config, Arc::new(Faulty(store, Fault::HangLoads))).await;
    let started = std::time::Instant::now();
    let (h, body) = framed(&app, Some(&format!("{UNPARTITIONED}={}", "a".repeat(43)))).await;
    let took = started.elapsed();
    assert_prepared(&h, &body, "stuck store");
    assert!(took < std::time::Duration::from_secs(2), "took {took:?}");
    app.stop().await;
}
