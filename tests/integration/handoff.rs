//! Handoff tokens through the HTTP API: the attack matrix. Every refused token is a 401
//! `invalid_token` and changes nothing.

use crate::helpers::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;

async fn mint(app: &TestApp, cookie: &str, audience: &str) -> String {
    let res = app
        .req(Method::POST, "/v1/handoff", Some(SHOP), Some(cookie))
        .json(&serde_json::json!({ "audience": audience }))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["expires_in"], 60);
    body["token"].as_str().expect("token").to_owned()
}

/// Redeems as the broker's own iframe would: request Origin = broker, page origin in the body.
async fn redeem(app: &TestApp, token: &str, page: &str, cookie: Option<&str>) -> reqwest::Response {
    app.req(
        Method::POST,
        "/v1/handoff/redeem",
        Some(&app.public_origin.clone()),
        cookie,
    )
    .json(&serde_json::json!({ "token": token, "origin": page }))
    .send()
    .await
    .expect("send")
}

async fn shop_session(app: &TestApp) -> String {
    let res = app.put("chat", "from-shop", SHOP, None).await;
    cookie_header(res.headers())
}

fn forge(claims: serde_json::Value, header: serde_json::Value, secret: &[u8]) -> String {
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let c = URL_SAFE_NO_PAD.encode(claims.to_string());
    let alg = header["alg"].as_str().unwrap_or_default();
    if alg == "none" {
        return format!("{h}.{c}.");
    }
    let key = jsonwebtoken::EncodingKey::from_secret(secret);
    let mut hdr = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hdr.kid = header["kid"].as_str().map(str::to_owned);
    jsonwebtoken::encode(&hdr, &claims, &key).expect("encode")
}

#[tokio::test]
async fn a_token_moves_the_session_to_the_destination_once() {
    let app = spawn_app().await;
    let shop = shop_session(&app).await;
    let token = mint(&app, &shop, SUPPORT).await;
    assert!(token.len() < 1024);

    let res = redeem(&app, &token, SUPPORT, None).await;
    assert_eq!(res.status(), 200);
    let support = cookie_header(res.headers());
    assert_ne!(support, shop, "a fresh id for the destination's cookies");
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["adopted"], true);
    assert_eq!(body["values"]["chat"], "from-shop");

    // Same server-side session: a change on one site shows on the other.
    app.put("chat", "changed-on-support", SUPPORT, Some(&support))
        .await;
    let body: serde_json::Value = app.get(SHOP, Some(&shop)).await.json().await.expect("json");
    assert_eq!(body["values"]["chat"], "changed-on-support");

    // Replay: refused, and no cookie handed out.
    let res = redeem(&app, &token, SUPPORT, None).await;
    assert!(set_cookies(res.headers()).is_empty());
    assert_eq!(error_code(res).await, (401, "invalid_token".into()));

    // Ending it on one site ends it on the other.
    app.req(Method::DELETE, "/v1/session", Some(SUPPORT), Some(&support))
        .send()
        .await
        .expect("send");
    assert_eq!(app.get(SHOP, Some(&shop)).await.status(), 204);
    app.stop().await;
}

#[tokio::test]
async fn a_trusted_page_may_redeem_directly_but_only_for_itself() {
    let app = spawn_app().await;
    let shop = shop_session(&app).await;
    let token = mint(&app, &shop, SUPPORT).await;
    let res = app
        .req(Method::POST, "/v1/handoff/redeem", Some(SUPPORT), None)
        .json(&serde_json::json!({ "token": token, "origin": SHOP }))
        .send()
        .await
        .expect("send");
    assert_eq!(
        error_code(res).await,
        (401, "invalid_token".into()),
        "claimed origin must be the caller"
    );
    let res = app
        .req(Method::POST, "/v1/handoff/redeem", Some(SUPPORT), None)
        .json(&serde_json::json!({ "token": token }))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn tokens_for_another_audience_expired_or_forged_are_refused() {
    let app = spawn_app().await;
    let shop = shop_session(&app).await;
    let now = T0 / 1000;
    let iss = "baton";
    let good_claims = |aud: &str| serde_json::json!({ "iss": iss, "aud": aud, "exp": now + 60, "nbf": now, "iat": now, "jti": "forged-jti" });
    let key = [0u8; 32]; // the test config's key: base64url "AAAA…" decodes to zeros
    let wrong_key = [1u8; 32];
    let hs = serde_json::json!({ "alg": "HS256", "kid": "test", "typ": "JWT" });

    // For support, presented on a third site (wildcard-trusted help.example.org).
    let for_support = mint(&app, &shop, SUPPORT).await;
    let res = redeem(&app, &for_support, "https://help.example.org", None).await;
    assert_eq!(
        error_code(res).await,
        (401, "invalid_token".into()),
        "wrong audience"
    );
    // ...and the refusal did not burn it for its real audience.
    assert_eq!(
        redeem(&app, &for_support, SUPPORT, None).await.status(),
        200
    );

    let mut cases: Vec<(&str, String)> = vec![
        (
            "signed with another key",
            forge(good_claims(SUPPORT), hs.clone(), &wrong_key),
        ),
        (
            "alg none",
            forge(
                good_claims(SUPPORT),
                serde_json::json!({ "alg": "none", "kid": "test" }),
                &key,
            ),
        ),
        (
            "unknown kid",
            forge(
                good_claims(SUPPORT),
                serde_json::json!({ "alg": "HS256", "kid": "other" }),
                &key,
            ),
        ),
        (
            "no kid",
            forge(
                good_claims(SUPPORT),
                serde_json::json!({ "alg": "HS256" }),
                &key,
            ),
        ),
        (
            "oversized",
            format!("{}.{}", "A".repeat(2000), "B".repeat(100)),
        ),
        ("garbage", "not.a.token".into()),
        ("empty", String::new()),
    ];
    // Right key, but a record was never issued for this jti: the single-use record is what counts.
    cases.push((
        "never issued",
        forge(good_claims(SUPPORT), hs.clone(), &key),
    ));
    let mut bad_iss = good_claims(SUPPORT);
    bad_iss["iss"] = "https://other-broker.example.com".into();
    cases.push(("wrong issuer", forge(bad_iss, hs.clone(), &key)));
    let mut no_jti = good_claims(SUPPORT);
    no_jti.as_object_mut().expect("obj").remove("jti");
    cases.push(("no jti", forge(no_jti, hs.clone(), &key)));

    for (what, token) in cases {
        let res = redeem(&app, &token, SUPPORT, None).await;
        assert!(set_cookies(res.headers()).is_empty(), "{what}");
        assert_eq!(
            error_code(res).await,
            (401, "invalid_token".into()),
            "{what}"
        );
    }

    // Expired: minted now, presented 66 s later (60 s + 5 s leeway).
    let late = mint(&app, &shop, SUPPORT).await;
    app.clock.advance_secs(66);
    let res = redeem(&app, &late, SUPPORT, None).await;
    assert_eq!(
        error_code(res).await,
        (401, "invalid_token".into()),
        "expired"
    );
    app.stop().await;
}

#[tokio::test]
async fn minting_needs_a_session_and_a_trusted_audience() {
    let app = spawn_app().await;
    let res = app
        .req(Method::POST, "/v1/handoff", Some(SHOP), None)
        .json(&serde_json::json!({ "audience": SUPPORT }))
        .send()
        .await
        .expect("send");
    assert_no_session(res).await;
    let shop = shop_session(&app).await;
    for audience in [
        EVIL,
        "null",
        "*",
        "http://support.localhost:9001/",
        "HTTP://SUPPORT.localhost:9001",
    ] {
        let res = app
            .req(Method::POST, "/v1/handoff", Some(SHOP), Some(&shop))
            .json(&serde_json::json!({ "audience": audience }))
            .send()
            .await
            .expect("send");
        assert_eq!(
            error_code(res).await,
            (400, "bad_audience".into()),
            "{audience}"
        );
    }
    // An untrusted site cannot mint even with the customer's cookies.
    let res = app
        .req(Method::POST, "/v1/handoff", Some(EVIL), Some(&shop))
        .json(&serde_json::json!({ "audience": SUPPORT }))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 403);
    app.stop().await;
}

#[tokio::test]
async fn an_existing_session_at_the_destination_is_kept() {
    let app = spawn_app().await;
    let shop = shop_session(&app).await;
    let res = app.put("chat", "support-own", SUPPORT, None).await;
    let support = cookie_header(res.headers());
    let token = mint(&app, &shop, SUPPORT).await;
    let res = redeem(&app, &token, SUPPORT, Some(&support)).await;
    assert!(set_cookies(res.headers()).is_empty());
    assert_eq!(error_code(res).await, (409, "session_conflict".into()));
    let body: serde_json::Value = app
        .get(SUPPORT, Some(&support))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["values"]["chat"], "support-own");

    // Redeeming into the session one already has is a no-op success.
    let token = mint(&app, &shop, SUPPORT).await;
    let res = redeem(&app, &token, SUPPORT, Some(&shop)).await;
    assert_eq!(res.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn ending_the_session_kills_its_pending_tokens() {
    let app = spawn_app().await;
    let shop = shop_session(&app).await;
    let token = mint(&app, &shop, SUPPORT).await;
    app.req(Method::DELETE, "/v1/session", Some(SHOP), Some(&shop))
        .send()
        .await
        .expect("send");
    let res = redeem(&app, &token, SUPPORT, None).await;
    assert_eq!(error_code(res).await, (401, "invalid_token".into()));
    app.stop().await;
}

/// The rule weighs every session the request reaches, not only the one that wins: here the
/// unpartitioned cookie reaches an empty session and the partitioned one another session holding
/// a chat. Replacing both would lose the chat, so the redeem is refused and nothing changes.
#[tokio::test]
async fn a_chat_behind_the_losing_cookie_is_kept_too() {
    let app = spawn_app().await;
    let res = app.put("draft", "x", SUPPORT, None).await;
    let empty = only_cookie(res.headers(), UNPARTITIONED);
    let res = app
        .req(
            Method::DELETE,
            "/v1/session/draft",
            Some(SUPPORT),
            Some(&empty),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 204, "an empty but live session");
    let res = app.put("chat", "support-own", SUPPORT, None).await;
    let chat = only_cookie(res.headers(), PARTITIONED);

    let shop = shop_session(&app).await;
    let token = mint(&app, &shop, SUPPORT).await;
    let both = format!("{empty}; {chat}");
    let res = redeem(&app, &token, SUPPORT, Some(&both)).await;
    assert!(set_cookies(res.headers()).is_empty());
    assert_eq!(error_code(res).await, (409, "session_conflict".into()));

    // Nothing changed: the chat is there, the empty session too, and the token is spent.
    let body: serde_json::Value = app
        .get(SUPPORT, Some(&chat))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["values"]["chat"], "support-own");
    let body: serde_json::Value = app
        .get(SUPPORT, Some(&empty))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body, serde_json::json!({ "values": {} }));
    let res = redeem(&app, &token, SUPPORT, None).await;
    assert_eq!(error_code(res).await, (401, "invalid_token".into()));
    app.stop().await;
}

/// Empty sessions the request reaches are replaced, every one of them: neither cookie's old id
/// reaches anything afterwards, and both cookies carry the adopted session.
#[tokio::test]
async fn every_empty_session_reached_is_replaced() {
    let app = spawn_app().await;
    let mut reached = Vec::new();
    for name in [UNPARTITIONED, PARTITIONED] {
        let res = app.put("draft", "x", SUPPORT, None).await;
        let cookie = only_cookie(res.headers(), name);
        app.req(
            Method::DELETE,
            "/v1/session/draft",
            Some(SUPPORT),
            Some(&cookie),
        )
        .send()
        .await
        .expect("send");
        reached.push(cookie);
    }
    let shop = shop_session(&app).await;
    let token = mint(&app, &shop, SUPPORT).await;
    let res = redeem(&app, &token, SUPPORT, Some(&reached.join("; "))).await;
    assert_eq!(res.status(), 200);
    let support = cookie_header(res.headers());
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["values"]["chat"], "from-shop");
    for old in &reached {
        let res = app.get(SUPPORT, Some(old)).await;
        assert_no_session(res).await;
    }
    let body: serde_json::Value = app
        .get(SUPPORT, Some(&support))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["values"]["chat"], "from-shop");
    app.stop().await;
}
