//! Handoff tokens through the HTTP API: the attack matrix. Every refused token is a 401
//! `invalid_token` and changes nothing.

use crate::helpers::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};

/// The test config's signing key: its base64url secret "AAAA…" decodes to zeros.
const KEY: [u8; 32] = [0; 32];
const KID: &str = "test";
/// The test config's `handoff.issuer` (the default).
const ISS: &str = "baton";
/// The app clock's second when a test starts.
const NOW: i64 = T0 / 1000;

// Test-only keys, made with `openssl genpkey` for these tests and used for nothing else: a broker
// that pins HS256 must refuse tokens signed with public-key algorithms too. DER in base64 (the
// forms jsonwebtoken takes without its `use_pem` feature): RSA as PKCS #1, P-256 as PKCS #8.
const RSA_PRIVATE_DER: &[&str] = &[
    "MIIEowIBAAKCAQEAtMVEEdQuHix+4qU4BhWjs5SgIB0LMrosFT8uNMrvP0amr6uxorFFVZQMWXGZS42lBGBmlZMvDxtlPwi/",
    "wfpAEFiTXJlkqKvsfcY/+NuT4z84ShycPj3LERDVK4FWE2hj8pjKgYnEP/L2jQIGE+5zD1qzbzFP16OX3+kMuVREFDsQ5lG6",
    "3J8c0jrq/k29Bb9TMmVFsQpiTXl+SwZPItha+VBeJv3iD6uGVEVM6UMlujorJ2eFaZuS2eEmo9LDDfNifk2VFPpc/3yna0xM",
    "pxzeeJR1Fv7f6ofhHPw7X8nizGfMf0ariVQdCTA1BgFYqiCpx2J8bXkNw6BbD/PcS/Y47QIDAQABAoIBAASD7OhZGXHNgLne",
    "kKCuR7GDo+BJeW8h8Vnygw/0hbdZ52355uz+apHxqcFOMhsOBbIvSkCwNXu2HnhNmqSYwKLn435ronUIHlch7ZUkvvPtL1XC",
    "kzCG0Jyzg++bQnAnql9z65MCwvEp+3iYNVioGx2mEVdUrv7e6jtAkf3LGgw7RpeSodhY6FDFh7VQJuZpWuN+AWwG3a2XS2xi",
    "oCLqEJQ12KiZGlkmsyRx5vvtZ1/+/TGW+Ti8GF5EwPkTg9npkLtl2gCgVYuYSIsPpbDY+D6GvkA66fMmpEyIdPSh8uLjxIfh",
    "ZxoR2eWkRA0hk6qWkmcgrkJrRG5IyiKsS3EAJY0CgYEA+yEc61f2nBHU3TEPMV7H/GI71sQ4Na3Zi3/+T/9RGdz9V7GK20GU",
    "pYefDiVLfM+MgdPS7LCiYPmfQRtD+bRnjHtmnDEBLnDtyigNfjYzoEPVVQhc0ZQAln8D3d85FpL0CQhViCIv+1+RUYwrC/k3",
    "rctXB9HT/diJ5y5Mqh6U3E8CgYEAuEbQMMrBu8IknEqvk9o4WQbBm6VPA7xnVdWAVJig0vk6Vk0jv5xaE8ICIbRsvm9kIabA",
    "GcjgAD7ZtRTB73DIQXPgV22Jz1SRCDbcetrV/lLuO0WngFTfQ92AB6Iz+youQ3ECf+h6TdeSbQgMSJlqUKKUixyUMjyHc88h",
    "8HMxHAMCgYEAmDiZG/qEzFNusOjk6asnE8/Dr8nevIL1w75Au+LqGQBAPGCs53xYCwIrIlru5+eypptsVfY3ZwrIQqGxUXHN",
    "9nRyXSjDK5BeQtSGYUOfhXy4mkNoZ80Lki3JfTqqkwlejP8VQWBfr0Jdho2tJiPZYSpJRb8lfdA8vvnslI3W87cCgYA97r7F",
    "xz85ZVR8mrVL0cmiUhz7vKFDtixcsrbAt9NFVLIAk0hye4/imA+zWDo7/p/+l1Z01AhEzNrKe0F6wcLsDI/Xkl8AqYFc62NK",
    "fwXwxdp/XTegb+Xhny4KYr9pqJGH5RFb/7wrMUprDotiUv1iQGIAJwi/oYw8pd7YOz7EFQKBgDHvdyewtU5cWuhErkDy8i6R",
    "fDJWFkmKGmgGYSD7iv9coN40aW+r60pX5lCcgz6xeCtKdTaXNAXHY4nwIBctNv7d09/eKxGIfk7dN2zcDLPauoyrU+Puo3Lc",
    "DAAEv8MFXBC8G1sJNUTUL1bGLeG7sIhuNk3nBi8u++ffOVR+UHAL",
];
const EC_P256_PRIVATE_DER: &[&str] = &[
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgoYNQMnlVI3xfIpevsermHD3xJrUhX3/lbnBQI4MwrSqhRANC",
    "AAToFegrvfAiLXIYCvFZnEhiejyo+u6+KwvG8EdGpr3pbbJjAstTo307jd8u0i8TXGYed8Xp4mOK8ozFq1iBkNmR",
];

fn der(base64_lines: &[&str]) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(base64_lines.concat())
        .expect("base64")
}

async fn mint(app: &TestApp, cookie: &str, audience: &str) -> String {
    let res = app.handoff(SHOP, Some(cookie), audience).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["expires_in"], 60);
    body["token"].as_str().expect("token").to_owned()
}

/// Redeems as the broker's own iframe would: request Origin = broker, page origin in the body.
async fn redeem(app: &TestApp, token: &str, page: &str, cookie: Option<&str>) -> reqwest::Response {
    app.redeem(&app.public_origin, cookie, token, Some(page))
        .await
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
    app.end(SUPPORT, Some(&support)).await;
    assert_eq!(app.get(SHOP, Some(&shop)).await.status(), 204);
    app.stop().await;
}

#[tokio::test]
async fn a_trusted_page_may_redeem_directly_but_only_for_itself() {
    let app = spawn_app().await;
    let shop = shop_session(&app).await;
    let token = mint(&app, &shop, SUPPORT).await;
    let res = app.redeem(SUPPORT, None, &token, Some(SHOP)).await;
    assert_eq!(
        error_code(res).await,
        (401, "invalid_token".into()),
        "claimed origin must be the caller"
    );
    let res = app.redeem(SUPPORT, None, &token, None).await;
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
    let res = app.handoff(SHOP, None, SUPPORT).await;
    assert_no_session(res).await;
    let shop = shop_session(&app).await;
    for audience in [
        EVIL,
        "null",
        "*",
        "http://support.localhost:9001/",
        "HTTP://SUPPORT.localhost:9001",
    ] {
        let res = app.handoff(SHOP, Some(&shop), audience).await;
        assert_eq!(
            error_code(res).await,
            (400, "bad_audience".into()),
            "{audience}"
        );
    }
    // An untrusted site cannot mint even with the customer's cookies.
    let res = app.handoff(EVIL, Some(&shop), SUPPORT).await;
    assert_eq!(res.status(), 403);
    app.stop().await;
}

/// Mints with the link's URL, as the iframe does (request Origin = broker, page in the body).
async fn mint_for_link(app: &TestApp, cookie: &str, url: &str) -> reqwest::Response {
    app.req(
        Method::POST,
        "/v1/handoff",
        Some(&app.public_origin.clone()),
        Some(cookie),
    )
    .json(&json!({ "url": url, "origin": SHOP }))
    .send()
    .await
    .expect("send")
}

#[tokio::test]
async fn a_link_gets_a_token_for_where_it_leads_only_when_every_origin_it_names_is_trusted() {
    let app = spawn_app().await;
    let shop = shop_session(&app).await;
    let named = format!(
        "{SHOP}/go?to={}",
        SUPPORT.replace(':', "%3A").replace('/', "%2F") + "%2Flanding"
    );
    for url in [format!("{SUPPORT}/landing"), named] {
        let res = mint_for_link(&app, &shop, &url).await;
        assert_eq!(res.status(), 200, "{url}");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["audience"], SUPPORT, "{url}");
        let token = body["token"].as_str().expect("token");
        assert_eq!(claims_of(token)["aud"], SUPPORT, "{url}");
    }
    for url in [
        format!("{SHOP}/go?to={EVIL}/"),
        format!("{SHOP}/go?to=%2F%2F{}", EVIL.trim_start_matches("http://")),
        format!("{SUPPORT}/go?to={SHOP}/"),
        format!("{SHOP}/other"),
        format!("{SHOP}/go?to=%zz"),
        "not a url".to_owned(),
    ] {
        let res = mint_for_link(&app, &shop, &url).await;
        assert_eq!(error_code(res).await, (400, "bad_audience".into()), "{url}");
    }
    for body in [json!({}), json!({ "audience": SUPPORT, "url": SUPPORT })] {
        let res = app
            .req(Method::POST, "/v1/handoff", Some(SHOP), Some(&shop))
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_eq!(error_code(res).await, (400, "bad_json".into()), "{body}");
    }
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
    app.end(SHOP, Some(&shop)).await;
    let res = redeem(&app, &token, SUPPORT, None).await;
    assert_eq!(error_code(res).await, (401, "invalid_token".into()));
    app.stop().await;
}

/// The claims of a token the broker minted, e.g. to reuse its `jti` in a forged token: refusing
/// a forgery that names a real record must leave that record alone.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("json")
}

/// Exactly this header and these claims, signed HS256 with `secret`, whatever the header says.
fn sign_raw(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(secret),
        Algorithm::HS256,
    )
    .expect("sign");
    format!("{message}.{signature}")
}

fn hs256() -> Value {
    json!({ "alg": "HS256", "kid": KID, "typ": "JWT" })
}

/// A fresh real token for SUPPORT and its claims, to forge from.
async fn real_token(app: &TestApp, shop: &str) -> (String, Value) {
    let token = mint(app, shop, SUPPORT).await;
    let claims = claims_of(&token);
    assert_eq!(claims["iss"], ISS);
    (token, claims)
}

/// `forged` is refused (401 `invalid_token`, no cookie), and the real token whose `jti` it
/// copied still redeems afterwards: the refusal consumed nothing.
async fn refused_and_not_consumed(app: &TestApp, forged: &str, real: &str, what: &str) {
    let res = redeem(app, forged, SUPPORT, None).await;
    assert!(set_cookies(res.headers()).is_empty(), "{what}");
    assert_eq!(
        error_code(res).await,
        (401, "invalid_token".into()),
        "{what}"
    );
    assert_eq!(
        redeem(app, real, SUPPORT, None).await.status(),
        200,
        "{what}: the real token was consumed"
    );
}

#[tokio::test]
async fn times_out_of_range_are_refused_and_consume_nothing() {
    let app = spawn_app().await;
    let shop = shop_session(&app).await;
    // Each case: the claims it changes in a real token.
    let cases = [
        // exp - iat overflowed and wrapped to a short lifetime, so this verified.
        (
            "far exp, iat = -2^63",
            json!({ "exp": 1_000_000_000_000_000_000_i64, "iat": i64::MIN }),
        ),
        // exp + leeway overflowed.
        ("exp = i64::MAX", json!({ "exp": i64::MAX })),
        ("negative iat", json!({ "iat": -1 })),
        ("negative nbf", json!({ "nbf": -1 })),
        ("negative exp", json!({ "exp": -1 })),
    ];
    for (what, changes) in cases {
        let (real, mut claims) = real_token(&app, &shop).await;
        for (name, value) in changes.as_object().expect("an object") {
            claims[name] = value.clone();
        }
        let forged = sign_raw(&hs256(), &claims, &KEY);
        refused_and_not_consumed(&app, &forged, &real, what).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn a_crit_header_is_refused_and_consumes_nothing() {
    let app = spawn_app().await;
    let shop = shop_session(&app).await;
    // `null` and `[]` too: the header names an extension, and this broker implements none.
    for crit in [json!(["exp"]), json!([]), Value::Null] {
        let (real, claims) = real_token(&app, &shop).await;
        let mut header = hs256();
        header["crit"] = crit.clone();
        let forged = sign_raw(&header, &claims, &KEY);
        refused_and_not_consumed(&app, &forged, &real, &format!("crit {crit}")).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn only_hs256_is_accepted() {
    let app = spawn_app().await;
    let shop = shop_session(&app).await;
    let rsa = EncodingKey::from_rsa_der(&der(RSA_PRIVATE_DER));
    let ec = EncodingKey::from_ec_der(&der(EC_P256_PRIVATE_DER));
    let hmac = EncodingKey::from_secret(&KEY);
    for (alg, key) in [
        (Algorithm::HS384, &hmac),
        (Algorithm::HS512, &hmac),
        (Algorithm::RS256, &rsa),
        (Algorithm::ES256, &ec),
    ] {
        let (real, claims) = real_token(&app, &shop).await;
        let mut header = Header::new(alg);
        header.kid = Some(KID.into());
        let forged = jsonwebtoken::encode(&header, &claims, key).expect("encode");
        refused_and_not_consumed(&app, &forged, &real, &format!("{alg:?}")).await;
    }
    let (real, claims) = real_token(&app, &shop).await;
    let header = URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "kid": KID }).to_string());
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    refused_and_not_consumed(&app, &format!("{header}.{body}."), &real, "alg none").await;
    app.stop().await;
}

#[tokio::test]
async fn not_before_and_issued_at_may_lead_the_clock_by_the_leeway_only() {
    let app = spawn_app().await;
    let shop = shop_session(&app).await;
    for (what, nbf, iat) in [
        ("nbf 6 s ahead", NOW + 6, NOW),
        ("iat 6 s ahead", NOW, NOW + 6),
    ] {
        let (real, mut claims) = real_token(&app, &shop).await;
        claims["nbf"] = json!(nbf);
        claims["iat"] = json!(iat);
        claims["exp"] = json!(iat + 60);
        let forged = sign_raw(&hs256(), &claims, &KEY);
        refused_and_not_consumed(&app, &forged, &real, what).await;
    }
    // 5 s ahead is within the leeway: the forgery is redeemed, which consumes the record, so
    // the real token that named it is refused afterwards.
    let (real, mut claims) = real_token(&app, &shop).await;
    claims["nbf"] = json!(NOW + 5);
    claims["iat"] = json!(NOW + 5);
    claims["exp"] = json!(NOW + 65);
    let edge = sign_raw(&hs256(), &claims, &KEY);
    assert_eq!(redeem(&app, &edge, SUPPORT, None).await.status(), 200);
    let res = redeem(&app, &real, SUPPORT, None).await;
    assert_eq!(error_code(res).await, (401, "invalid_token".into()));
    app.stop().await;
}

#[tokio::test]
async fn a_token_redeems_for_its_ttl_and_no_longer() {
    let mut config = test_config();
    // Sessions outlive the minute this test waits, so only the token can expire.
    config.session.idle_timeout_secs = 300;
    let app = spawn_with(config, ":memory:").await;
    let shop = shop_session(&app).await;
    // The verifier would take the token up to 5 s past `exp` (clock skew), but the single-use
    // record the broker stored expires at `exp` itself: through the API a token lives exactly
    // its ttl on the redeeming node's clock.
    let token = mint(&app, &shop, SUPPORT).await;
    app.clock.advance_secs(59);
    assert_eq!(redeem(&app, &token, SUPPORT, None).await.status(), 200);
    let token = mint(&app, &shop, SUPPORT).await;
    app.clock.advance_secs(60);
    let res = redeem(&app, &token, SUPPORT, None).await;
    assert_eq!(error_code(res).await, (401, "invalid_token".into()));
    app.stop().await;
}

#[tokio::test]
async fn without_signing_keys_handoff_is_disabled() {
    let mut config = test_config();
    config.handoff.keys.clear();
    config.handoff.generate_dev_key = false;
    // A plain-http public origin would get a development key (`HandoffConfig::uses_dev_key`).
    config.server.public_origin =
        baton::origin::Origin::parse("https://broker.example.com").expect("origin");
    assert!(!config.handoff.uses_dev_key(&config.server.public_origin));
    let app = spawn_with(config, ":memory:").await;
    let shop = shop_session(&app).await;
    let res = app.handoff(SHOP, Some(&shop), SUPPORT).await;
    assert_eq!(error_code(res).await, (503, "handoff_disabled".into()));
    // And nothing verifies: a token signed with the key the config used to hold is refused.
    let claims =
        json!({ "iss": ISS, "aud": SUPPORT, "exp": NOW + 60, "nbf": NOW, "iat": NOW, "jti": "j" });
    let res = app
        .redeem(SUPPORT, None, &sign_raw(&hs256(), &claims, &KEY), None)
        .await;
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
    let res = app.delete_value("draft", SUPPORT, Some(&empty)).await;
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
        app.delete_value("draft", SUPPORT, Some(&cookie)).await;
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
