//! Page keys through the HTTP API: the credential a partner page holds where the browser keeps no
//! broker cookie at all. Issued only to a trusted page origin, bound to it, never a cookie id,
//! stored hashed, ended with the session, under the same timeouts, handed off like cookies.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{Value, json};

/// A page-mode request as the broker's own iframe sends it: `Origin` is the broker, the page it
/// answers is named in `Baton-Page-Origin`, and the page's key (if any) in `Baton-Page-Key`.
fn iframe(
    app: &TestApp,
    method: Method,
    path: &str,
    page: &str,
    key: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut b = app
        .req(method, path, Some(&app.public_origin.clone()), None)
        .header("baton-page-origin", page);
    if let Some(k) = key {
        b = b.header("baton-page-key", k);
    }
    b
}

async fn send(b: reqwest::RequestBuilder) -> reqwest::Response {
    b.send().await.expect("send")
}

async fn json_of(res: reqwest::Response) -> Value {
    res.json().await.expect("json")
}

/// Starts a page-mode session on `page` holding `chat = value`; returns the page key.
async fn page_session(app: &TestApp, page: &str, value: &str) -> String {
    let res = send(
        iframe(app, Method::PUT, "/v1/session/chat", page, None).json(&json!({ "value": value })),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(
        set_cookies(res.headers()).is_empty(),
        "page mode sets no cookie"
    );
    let body = json_of(res).await;
    assert_eq!(body["values"]["chat"], value);
    body["page_key"].as_str().expect("a page key").to_owned()
}

async fn get_with(app: &TestApp, page: &str, key: &str) -> reqwest::Response {
    send(iframe(app, Method::GET, "/v1/session", page, Some(key))).await
}

#[tokio::test]
async fn a_page_key_reaches_its_session_for_its_origin_only() {
    let app = spawn_app().await;
    let key = page_session(&app, SHOP, "hello").await;
    assert_eq!(key.len(), 43);

    let res = get_with(&app, SHOP, &key).await;
    assert_eq!(res.status(), 200);
    let body = json_of(res).await;
    assert_eq!(body["values"]["chat"], "hello");
    assert!(
        body.get("page_key").is_none(),
        "a working key is not replaced"
    );

    // The same key for another trusted page: nothing.
    let res = get_with(&app, SUPPORT, &key).await;
    assert_no_session(res).await;
    // ... nor used as a cookie id.
    let res = app
        .get(
            SHOP,
            Some(&format!("{UNPARTITIONED}={key}; {PARTITIONED}={key}")),
        )
        .await;
    assert_no_session(res).await;
    // Without the key, or with junk in its place, no session either.
    let res = send(iframe(&app, Method::GET, "/v1/session", SHOP, None)).await;
    assert_no_session(res).await;
    let res = get_with(&app, SHOP, "not-a-key").await;
    assert_no_session(res).await;
    app.stop().await;
}

#[tokio::test]
async fn a_trusted_page_calling_directly_can_only_name_itself() {
    let app = spawn_app().await;
    let key = page_session(&app, SHOP, "direct").await;
    let direct = |origin: &str, page: &str| {
        app.req(Method::GET, "/v1/session", Some(origin), None)
            .header("baton-page-origin", page)
            .header("baton-page-key", key.as_str())
    };
    let res = send(direct(SHOP, SHOP)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(json_of(res).await["values"]["chat"], "direct");
    // The request's own Origin is support: it cannot act for shop's page.
    let res = send(direct(SUPPORT, SHOP)).await;
    assert_eq!(error_code(res).await, (403, "origin_denied".into()));
    let res = send(direct(SUPPORT, SUPPORT)).await;
    assert_no_session(res).await;
    app.stop().await;
}

#[tokio::test]
async fn page_keys_are_issued_only_to_trusted_pages() {
    let app = spawn_app().await;
    for page in [
        EVIL,
        "null",
        "http://SHOP.localhost:9001",
        "https://*.example.org",
        &app.public_origin.clone(),
    ] {
        let res = send(
            iframe(&app, Method::PUT, "/v1/session/chat", page, None)
                .json(&json!({ "value": "x" })),
        )
        .await;
        assert!(set_cookies(res.headers()).is_empty(), "{page}");
        assert_eq!(
            error_code(res).await,
            (403, "origin_denied".into()),
            "{page}"
        );
    }
    // Nothing was created along the way.
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("baton_sessions_created_total 0"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_store_holds_only_a_hash_bound_to_the_origin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("baton.db");
    let app = spawn_with(test_config(), db.to_str().expect("utf-8")).await;
    let key = page_session(&app, SHOP, "hashed").await;
    // `stop` returns once the store is closed: no file here changes or vanishes from now on.
    app.stop().await;
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        bytes.extend(std::fs::read(entry.expect("entry").path()).expect("read"));
    }
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("hashed"), "the value is in the store files");
    assert!(!text.contains(&key), "the key itself is never stored");
    let plain: String = <sha2::Sha256 as sha2::Digest>::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        !text.contains(&plain),
        "nor its bare hash (it is bound to the origin)"
    );
}

#[tokio::test]
async fn end_revokes_the_key_and_timeouts_apply() {
    let app = spawn_app().await;
    let key = page_session(&app, SHOP, "bye").await;
    let res = send(iframe(
        &app,
        Method::DELETE,
        "/v1/session",
        SHOP,
        Some(&key),
    ))
    .await;
    assert_eq!(res.status(), 204);
    let res = get_with(&app, SHOP, &key).await;
    assert_no_session(res).await;

    // Idle timeout (60 s in the test config), slid by use like a cookie's session.
    let key = page_session(&app, SHOP, "idle").await;
    app.clock.advance_secs(50);
    assert_eq!(get_with(&app, SHOP, &key).await.status(), 200);
    app.clock.advance_secs(50);
    assert_eq!(get_with(&app, SHOP, &key).await.status(), 200, "slid");
    app.clock.advance_secs(61);
    let res = get_with(&app, SHOP, &key).await;
    assert_no_session(res).await;
    // A write with the dead key starts a new session under a new key.
    let res = send(
        iframe(&app, Method::PUT, "/v1/session/chat", SHOP, Some(&key))
            .json(&json!({ "value": "new" })),
    )
    .await;
    let body = json_of(res).await;
    assert_eq!(body["values"], json!({ "chat": "new" }));
    assert_ne!(body["page_key"].as_str().expect("new key"), key);
    app.stop().await;
}

async fn mint_with(app: &TestApp, page: &str, key: &str, audience: &str) -> String {
    let res = send(
        iframe(app, Method::POST, "/v1/handoff", page, Some(key))
            .json(&json!({ "audience": audience })),
    )
    .await;
    assert_eq!(res.status(), 200);
    json_of(res).await["token"]
        .as_str()
        .expect("token")
        .to_owned()
}

async fn redeem_with(
    app: &TestApp,
    token: &str,
    page: &str,
    key: Option<&str>,
) -> reqwest::Response {
    send(
        iframe(app, Method::POST, "/v1/handoff/redeem", page, key)
            .json(&json!({ "token": token, "origin": page })),
    )
    .await
}

#[tokio::test]
async fn a_handoff_gives_the_destination_its_own_key() {
    let app = spawn_app().await;
    let shop_key = page_session(&app, SHOP, "carried").await;
    let token = mint_with(&app, SHOP, &shop_key, SUPPORT).await;
    let res = redeem_with(&app, &token, SUPPORT, None).await;
    assert_eq!(res.status(), 200);
    assert!(set_cookies(res.headers()).is_empty());
    let body = json_of(res).await;
    assert_eq!(body["adopted"], true);
    assert_eq!(body["values"]["chat"], "carried");
    let support_key = body["page_key"].as_str().expect("key").to_owned();
    assert_ne!(support_key, shop_key);

    // One session, two keys, each for its own origin.
    send(
        iframe(
            &app,
            Method::PUT,
            "/v1/session/chat",
            SUPPORT,
            Some(&support_key),
        )
        .json(&json!({ "value": "from-support" })),
    )
    .await;
    let body = json_of(get_with(&app, SHOP, &shop_key).await).await;
    assert_eq!(body["values"]["chat"], "from-support");
    assert_eq!(get_with(&app, SHOP, &support_key).await.status(), 204);
    assert_eq!(get_with(&app, SUPPORT, &shop_key).await.status(), 204);

    // Replay refused; ending on support revokes shop's key too.
    let res = redeem_with(&app, &token, SUPPORT, None).await;
    assert_eq!(error_code(res).await, (401, "invalid_token".into()));
    let res = send(iframe(
        &app,
        Method::DELETE,
        "/v1/session",
        SUPPORT,
        Some(&support_key),
    ))
    .await;
    assert_eq!(res.status(), 204);
    assert_eq!(get_with(&app, SHOP, &shop_key).await.status(), 204);
    app.stop().await;
}

#[tokio::test]
async fn a_page_key_is_never_issued_for_another_page_than_the_tokens() {
    let app = spawn_app().await;
    let shop_key = page_session(&app, SHOP, "x").await;
    let token = mint_with(&app, SHOP, &shop_key, SUPPORT).await;
    // The iframe names support in the body and shop in the page header: refused, not consumed.
    let res = send(
        iframe(&app, Method::POST, "/v1/handoff/redeem", SHOP, None)
            .json(&json!({ "token": token, "origin": SUPPORT })),
    )
    .await;
    assert_eq!(error_code(res).await, (401, "invalid_token".into()));
    assert_eq!(redeem_with(&app, &token, SUPPORT, None).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn a_key_holding_page_with_values_keeps_its_session() {
    let app = spawn_app().await;
    let shop_key = page_session(&app, SHOP, "shop-chat").await;
    let support_key = page_session(&app, SUPPORT, "support-chat").await;
    let token = mint_with(&app, SHOP, &shop_key, SUPPORT).await;
    let res = redeem_with(&app, &token, SUPPORT, Some(&support_key)).await;
    assert_eq!(error_code(res).await, (409, "session_conflict".into()));
    let body = json_of(get_with(&app, SUPPORT, &support_key).await).await;
    assert_eq!(body["values"]["chat"], "support-chat");
    app.stop().await;
}

#[tokio::test]
async fn with_page_keys_off_the_header_is_ignored() {
    let mut config = test_config();
    config.session.page_keys = false;
    let app = spawn_with(config, ":memory:").await;
    let res = send(
        iframe(&app, Method::PUT, "/v1/session/chat", SHOP, None).json(&json!({ "value": "c" })),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(set_cookies(res.headers()).len(), 2, "cookies as always");
    assert!(json_of(res).await.get("page_key").is_none());
    app.stop().await;
}

#[tokio::test]
async fn preflight_allows_the_page_headers() {
    let app = spawn_app().await;
    let res = app
        .req(Method::OPTIONS, "/v1/session", Some(SHOP), None)
        .header("access-control-request-method", "GET")
        .header(
            "access-control-request-headers",
            "baton-page-origin,baton-page-key",
        )
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 204);
    let allowed = res.headers()["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .to_owned();
    for h in ["baton-page-origin", "baton-page-key"] {
        assert!(allowed.contains(h), "{allowed}");
    }
    app.stop().await;
}

/// A redeem weighs the page key's session too, even when a cookie reaches another (empty) one
/// and would win: the chat behind the page key is kept and the token refused.
#[tokio::test]
async fn a_chat_behind_the_page_key_is_kept_when_a_cookie_wins() {
    let app = spawn_app().await;
    let support_key = page_session(&app, SUPPORT, "support-chat").await;
    let res = app.put("draft", "x", SUPPORT, None).await;
    let empty = cookie_header(res.headers());
    let res = app.delete_value("draft", SUPPORT, Some(&empty)).await;
    assert_eq!(res.status(), 204);
    let shop_key = page_session(&app, SHOP, "shop-chat").await;
    let token = mint_with(&app, SHOP, &shop_key, SUPPORT).await;
    let res = send(
        iframe(
            &app,
            Method::POST,
            "/v1/handoff/redeem",
            SUPPORT,
            Some(&support_key),
        )
        .header("cookie", &empty)
        .json(&json!({ "token": token, "origin": SUPPORT })),
    )
    .await;
    assert_eq!(error_code(res).await, (409, "session_conflict".into()));
    let body = json_of(get_with(&app, SUPPORT, &support_key).await).await;
    assert_eq!(body["values"]["chat"], "support-chat");
    app.stop().await;
}
