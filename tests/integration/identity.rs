//! Identity binding through the HTTP API (issue 19): `POST /v1/identify` with partners' signed
//! assertions, and `POST /v1/forget`. Two cookie jars are two browsers (two devices); a page key
//! is a third kind of browser. The store is a SQLite file, counted behind the broker's back to
//! show that a refusal creates nothing.

use crate::helpers::*;
use baton::clock::Clock;
use baton::config::Config;
use baton::identity::IdentityKeys;
use baton::origin::Origin;
use reqwest::Method;
use serde_json::{Value, json};

const KID: &str = "partner";
/// base64url of 32 bytes each: the partner's HS256 secret, and the subject hash's secret.
const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I";
const SUBJECT_SECRET: &str = "c3ViamVjdC1zdWJqZWN0LXN1YmplY3Qtc3ViamVjdC0";

/// The API tests' config with one HS256 identity key.
fn identity_config() -> Config {
    let mut table: toml::Table = toml::from_str(&format!(
        r#"
        [identity]
        subject_secret = "{SUBJECT_SECRET}"
        [[identity.keys]]
        kid = "{KID}"
        secret = "{SECRET}"
        "#
    ))
    .expect("toml");
    let mut base = test_config_table();
    base.insert(
        "identity".into(),
        table.remove("identity").expect("identity"),
    );
    Config::from_table(base).expect("valid config")
}

struct Broker {
    app: TestApp,
    keys: IdentityKeys,
    _dir: tempfile::TempDir,
    db: String,
}

async fn broker() -> Broker {
    let config = identity_config();
    let keys = IdentityKeys::from_config(&config).expect("identity keys");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir
        .path()
        .join("baton.db")
        .to_str()
        .expect("utf-8")
        .to_owned();
    let app = spawn_with(config, &db).await;
    Broker {
        app,
        keys,
        _dir: dir,
        db,
    }
}

impl Broker {
    /// An assertion for `sub` rendered on `page`, signed now (the app clock): what
    /// `baton identity token` prints.
    fn assertion(&self, page: &str, sub: &str) -> String {
        let iss = Origin::parse(page).expect("origin");
        self.keys
            .mint_test_assertion(Some(KID), &iss, sub, self.app.clock.now(), 300)
            .expect("mint")
    }

    /// `POST /v1/identify` from the page `page` itself, with `cookie`.
    async fn identify(
        &self,
        page: &str,
        assertion: &str,
        cookie: Option<&str>,
    ) -> reqwest::Response {
        self.app
            .req(Method::POST, "/v1/identify", Some(page), cookie)
            .json(&json!({ "assertion": assertion, "origin": page }))
            .send()
            .await
            .expect("send")
    }

    /// Rows in a table of the store, read behind the broker's back.
    fn rows(&self, table: &str) -> i64 {
        rusqlite::Connection::open(&self.db)
            .expect("open")
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .expect("count")
    }
}

async fn values(res: reqwest::Response) -> Value {
    assert_eq!(res.status(), 200, "an answer with the session");
    res.json::<Value>().await.expect("json")["values"].clone()
}

/// A browser on `page` with `chat = value`: its cookies.
async fn chatting(app: &TestApp, page: &str, value: &str) -> String {
    let res = app.put("chat", value, page, None).await;
    assert_eq!(res.status(), 200);
    cookie_header(res.headers())
}

#[tokio::test]
async fn a_typed_url_on_another_device_and_site_finds_the_identified_session() {
    let b = broker().await;
    let device_a = chatting(&b.app, SHOP, "hello").await;
    let res = b
        .identify(SHOP, &b.assertion(SHOP, "alice"), Some(&device_a))
        .await;
    assert_eq!(
        values(res).await,
        json!({ "chat": "hello" }),
        "S only: linked"
    );

    // Device B, no cookie, typing the support site's address: its page's assertion.
    let res = b
        .identify(SUPPORT, &b.assertion(SUPPORT, "alice"), None)
        .await;
    let device_b = cookie_header(res.headers());
    assert!(device_b.contains(UNPARTITIONED) && device_b.contains(PARTITIONED));
    assert_eq!(
        values(res).await,
        json!({ "chat": "hello" }),
        "I only: joined"
    );
    let res = b.app.put("chat", "from b", SUPPORT, Some(&device_b)).await;
    assert_eq!(res.status(), 200);
    let res = b.app.get(SHOP, Some(&device_a)).await;
    assert_eq!(
        values(res).await,
        json!({ "chat": "from b" }),
        "one session"
    );

    // Another customer finds nothing of it: a new empty session of their own.
    let res = b.identify(SHOP, &b.assertion(SHOP, "bob"), None).await;
    assert_eq!(values(res).await, json!({}));
    assert_eq!(b.rows("sessions"), 2);
    assert_eq!(b.rows("identities"), 2);
}

#[tokio::test]
async fn identifying_again_in_the_linked_session_changes_nothing() {
    let b = broker().await;
    let device = chatting(&b.app, SHOP, "hello").await;
    let first = b
        .identify(SHOP, &b.assertion(SHOP, "alice"), Some(&device))
        .await;
    assert_eq!(first.status(), 200);
    let again = b
        .identify(SHOP, &b.assertion(SHOP, "alice"), Some(&device))
        .await;
    assert!(
        set_cookies(again.headers()).is_empty(),
        "S is I: nothing new to set"
    );
    assert_eq!(values(again).await, json!({ "chat": "hello" }));
    assert_eq!((b.rows("sessions"), b.rows("identities")), (1, 1));
}

#[tokio::test]
async fn an_empty_session_gives_way_to_the_customers() {
    let b = broker().await;
    let device_a = chatting(&b.app, SHOP, "hello").await;
    b.identify(SHOP, &b.assertion(SHOP, "alice"), Some(&device_a))
        .await;
    // Device B has an empty session of its own (a value written, then removed).
    let device_b = chatting(&b.app, SUPPORT, "x").await;
    let res = b
        .app
        .req(
            Method::DELETE,
            "/v1/session/chat",
            Some(SUPPORT),
            Some(&device_b),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 204);
    assert_eq!(b.rows("sessions"), 2);

    let res = b
        .identify(SUPPORT, &b.assertion(SUPPORT, "alice"), Some(&device_b))
        .await;
    let joined = cookie_header(res.headers());
    assert_eq!(values(res).await, json!({ "chat": "hello" }), "joined I");
    assert_eq!(b.rows("sessions"), 1, "the empty S was ended");
    assert_no_session(b.app.get(SUPPORT, Some(&device_b)).await).await;
    let res = b.app.get(SUPPORT, Some(&joined)).await;
    assert_eq!(values(res).await, json!({ "chat": "hello" }));
}

#[tokio::test]
async fn an_empty_customer_session_gives_way_to_the_browsers() {
    let b = broker().await;
    // The customer's session is empty (identified on a first visit, nothing written yet).
    let res = b.identify(SHOP, &b.assertion(SHOP, "alice"), None).await;
    assert_eq!(values(res).await, json!({}), "neither: created and linked");
    assert_eq!((b.rows("sessions"), b.rows("identities")), (1, 1));
    let device_b = chatting(&b.app, SUPPORT, "from b").await;

    let res = b
        .identify(SUPPORT, &b.assertion(SUPPORT, "alice"), Some(&device_b))
        .await;
    assert_eq!(
        values(res).await,
        json!({ "chat": "from b" }),
        "S kept and linked"
    );
    // A third device now finds S.
    let res = b.identify(SHOP, &b.assertion(SHOP, "alice"), None).await;
    assert_eq!(values(res).await, json!({ "chat": "from b" }));
}

#[tokio::test]
async fn two_sessions_holding_values_are_a_conflict_and_both_are_kept() {
    let b = broker().await;
    let device_a = chatting(&b.app, SHOP, "on a").await;
    b.identify(SHOP, &b.assertion(SHOP, "alice"), Some(&device_a))
        .await;
    let device_b = chatting(&b.app, SUPPORT, "on b").await;

    let res = b
        .identify(SUPPORT, &b.assertion(SUPPORT, "alice"), Some(&device_b))
        .await;
    assert!(set_cookies(res.headers()).is_empty());
    assert_eq!(error_code(res).await, (409, "session_conflict".into()));
    let res = b.app.get(SUPPORT, Some(&device_b)).await;
    assert_eq!(values(res).await, json!({ "chat": "on b" }), "S kept");
    let res = b.identify(SHOP, &b.assertion(SHOP, "alice"), None).await;
    assert_eq!(
        values(res).await,
        json!({ "chat": "on a" }),
        "I kept, still linked"
    );
}

/// Each refused assertion answers its code, sets no cookie and changes nothing in the store.
#[tokio::test]
async fn each_refused_assertion_answers_its_code_and_creates_nothing() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let b = broker().await;
    let now = b.app.clock.now() / 1000;
    let secret = URL_SAFE_NO_PAD.decode(SECRET).expect("secret");
    let claims = |iss: &str, aud: &str, iat: i64, exp: i64| json!({ "iss": iss, "aud": aud, "sub": "alice", "iat": iat, "exp": exp });
    let good = claims(SHOP, &b.app.public_origin, now, now + 300);
    let signed = |alg: jsonwebtoken::Algorithm, kid: &str, key: &[u8], claims: &Value| {
        let mut header = jsonwebtoken::Header::new(alg);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(
            &header,
            claims,
            &jsonwebtoken::EncodingKey::from_secret(key),
        )
        .expect("sign")
    };
    let hs = |claims: &Value| signed(jsonwebtoken::Algorithm::HS256, KID, &secret, claims);
    let unsigned = {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            part(&json!({ "alg": "none", "kid": KID })),
            part(&good)
        )
    };
    let cases = [
        (
            signed(
                jsonwebtoken::Algorithm::HS256,
                KID,
                b"another secret",
                &good,
            ),
            401,
            "identity_signature",
        ),
        (
            signed(jsonwebtoken::Algorithm::HS256, "nobody", &secret, &good),
            401,
            "identity_kid",
        ),
        (unsigned, 401, "identity_alg"),
        (
            signed(jsonwebtoken::Algorithm::HS512, KID, &secret, &good),
            401,
            "identity_alg",
        ),
        (
            hs(&claims(SHOP, &b.app.public_origin, now - 400, now - 100)),
            401,
            "identity_expired",
        ),
        (
            hs(&claims(SHOP, &b.app.public_origin, now, now + 601)),
            401,
            "identity_lifetime",
        ),
        (
            hs(&claims(SHOP, "http://other.localhost:9000", now, now + 300)),
            401,
            "identity_audience",
        ),
        (
            hs(&claims(EVIL, &b.app.public_origin, now, now + 300)),
            403,
            "identity_issuer",
        ),
        (
            hs(&claims(SUPPORT, &b.app.public_origin, now, now + 300)),
            403,
            "identity_issuer",
        ),
        ("not a jwt".to_owned(), 400, "identity_malformed"),
    ];
    let device = chatting(&b.app, SHOP, "mine").await;
    for (token, status, code) in &cases {
        for cookie in [None, Some(device.as_str())] {
            let res = b.identify(SHOP, token, cookie).await;
            assert!(set_cookies(res.headers()).is_empty(), "{code}: no cookie");
            assert_eq!(error_code(res).await, (*status, (*code).to_owned()));
        }
    }
    assert_eq!(
        (
            b.rows("sessions"),
            b.rows("session_ids"),
            b.rows("identities")
        ),
        (1, 1, 0),
        "nothing created, bound or linked (the browser's one session, its one id)"
    );
    // The good claims, signed right, are accepted: the cases fail for their one defect.
    let res = b.identify(SHOP, &hs(&good), Some(&device)).await;
    assert_eq!(values(res).await, json!({ "chat": "mine" }));
}

#[tokio::test]
async fn the_page_is_checked_like_page_modes() {
    let b = broker().await;
    let assertion = b.assertion(SHOP, "alice");
    // A trusted page calling directly names only itself.
    let res = b
        .app
        .req(Method::POST, "/v1/identify", Some(SUPPORT), None)
        .json(&json!({ "assertion": assertion, "origin": SHOP }))
        .send()
        .await
        .expect("send");
    assert_eq!(error_code(res).await, (403, "origin_denied".into()));
    // The broker's iframe names a trusted page, and in page mode the very page of the header.
    let iframe = |page: &str, header: Option<&str>| {
        let mut r = b
            .app
            .req(
                Method::POST,
                "/v1/identify",
                Some(&b.app.public_origin),
                None,
            )
            .json(&json!({ "assertion": assertion, "origin": page }));
        if let Some(h) = header {
            r = r.header("baton-page-origin", h);
        }
        r.send()
    };
    let res = iframe(EVIL, None).await.expect("send");
    assert_eq!(error_code(res).await, (403, "origin_denied".into()));
    let res = iframe(SHOP, Some(SUPPORT)).await.expect("send");
    assert_eq!(error_code(res).await, (403, "origin_denied".into()));
    assert_eq!(b.rows("sessions"), 0);
    let res = iframe(SHOP, Some(SHOP)).await.expect("send");
    assert_eq!(res.status(), 200);
    assert!(
        set_cookies(res.headers()).is_empty(),
        "page mode: no cookie"
    );
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["page_key"].as_str().map(str::len), Some(43));
}

#[tokio::test]
async fn without_identity_keys_identify_is_disabled() {
    let app = spawn_app().await;
    let res = app
        .req(Method::POST, "/v1/identify", Some(SHOP), None)
        .json(&json!({ "assertion": "x.y.z", "origin": SHOP }))
        .send()
        .await
        .expect("send");
    assert_eq!(error_code(res).await, (503, "identity_disabled".into()));
}

/// After `forget`, nothing this browser holds reaches the session, on any site and in any mode
/// (its cookies, a second site's partitioned cookie, a page key); an identify with a fresh
/// assertion, on this device or another, joins it again.
#[tokio::test]
async fn forget_leaves_nothing_reachable_until_a_new_identify() {
    let b = broker().await;
    let shop = chatting(&b.app, SHOP, "hello").await;
    b.identify(SHOP, &b.assertion(SHOP, "alice"), Some(&shop))
        .await;
    // The same session on the support site, carried by a handoff: its partitioned cookie only.
    let res = b
        .app
        .req(Method::POST, "/v1/handoff", Some(SHOP), Some(&shop))
        .json(&json!({ "audience": SUPPORT }))
        .send()
        .await
        .expect("send");
    let token = res.json::<Value>().await.expect("json")["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let res = b
        .app
        .req(Method::POST, "/v1/handoff/redeem", Some(SUPPORT), None)
        .json(&json!({ "token": token }))
        .send()
        .await
        .expect("send");
    let support = only_cookie(res.headers(), PARTITIONED);
    assert_eq!(values(res).await, json!({ "chat": "hello" }));
    // And a page key for the shop page, in page mode.
    let res = b
        .app
        .req(
            Method::POST,
            "/v1/identify",
            Some(&b.app.public_origin),
            None,
        )
        .header("baton-page-origin", SHOP)
        .json(&json!({ "assertion": b.assertion(SHOP, "alice"), "origin": SHOP }))
        .send()
        .await
        .expect("send");
    let key = res.json::<Value>().await.expect("json")["page_key"]
        .as_str()
        .expect("page key")
        .to_owned();
    let by_key = || {
        b.app
            .req(Method::GET, "/v1/session", Some(&b.app.public_origin), None)
            .header("baton-page-origin", SHOP)
            .header("baton-page-key", &key)
            .send()
    };
    assert_eq!(
        values(by_key().await.expect("send")).await,
        json!({ "chat": "hello" })
    );

    let res = b
        .app
        .req(Method::POST, "/v1/forget", Some(SHOP), Some(&shop))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 204);
    let removals = set_cookies(res.headers());
    assert_eq!(removals.len(), 2, "both cookies removed: {removals:?}");
    assert!(removals.iter().all(|c| c.contains("Max-Age=0")));
    assert!(
        removals
            .iter()
            .any(|c| c.starts_with(PARTITIONED) && c.contains("Partitioned")),
        "the partitioned removal says Partitioned: {removals:?}"
    );

    assert_no_session(b.app.get(SHOP, Some(&shop)).await).await;
    assert_no_session(b.app.get(SUPPORT, Some(&support)).await).await;
    assert_no_session(by_key().await.expect("send")).await;
    assert_eq!(b.rows("session_ids"), 0, "no id of any browser is left");
    assert_eq!((b.rows("sessions"), b.rows("identities")), (1, 1), "kept");

    // A fresh assertion, on another device, joins it again; so does this one's next identify.
    let res = b
        .identify(SUPPORT, &b.assertion(SUPPORT, "alice"), None)
        .await;
    assert_eq!(values(res).await, json!({ "chat": "hello" }));
    let res = b
        .identify(SHOP, &b.assertion(SHOP, "alice"), Some(&shop))
        .await;
    let back = cookie_header(res.headers());
    assert_eq!(values(res).await, json!({ "chat": "hello" }));
    assert_eq!(
        values(b.app.get(SHOP, Some(&back)).await).await,
        json!({ "chat": "hello" })
    );
}

/// In page mode the 204 of `forget` is how the iframe learns to drop the page key it sent.
#[tokio::test]
async fn forget_in_page_mode_answers_204_and_the_key_reaches_nothing() {
    let b = broker().await;
    let iframe = |method: Method, path: &str, key: Option<&str>| {
        let mut r = b
            .app
            .req(method, path, Some(&b.app.public_origin), None)
            .header("baton-page-origin", SHOP);
        if let Some(k) = key {
            r = r.header("baton-page-key", k);
        }
        r
    };
    let res = iframe(Method::PUT, "/v1/session/chat", None)
        .json(&json!({ "value": "hello" }))
        .send()
        .await
        .expect("send");
    let key = res.json::<Value>().await.expect("json")["page_key"]
        .as_str()
        .expect("key")
        .to_owned();
    let res = iframe(Method::POST, "/v1/forget", Some(&key))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 204);
    assert!(res.bytes().await.expect("body").is_empty());
    let res = iframe(Method::GET, "/v1/session", Some(&key))
        .send()
        .await
        .expect("send");
    assert_no_session(res).await;
}

/// "End chat" ends everything, the identity link included: the customer's next identify finds
/// no session and starts an empty one.
#[tokio::test]
async fn end_removes_the_identity_link() {
    let b = broker().await;
    let device = chatting(&b.app, SHOP, "hello").await;
    b.identify(SHOP, &b.assertion(SHOP, "alice"), Some(&device))
        .await;
    let res = b
        .app
        .req(Method::DELETE, "/v1/session", Some(SHOP), Some(&device))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 204);
    assert_eq!((b.rows("sessions"), b.rows("identities")), (0, 0));
    let res = b
        .identify(SUPPORT, &b.assertion(SUPPORT, "alice"), None)
        .await;
    assert_eq!(values(res).await, json!({}), "a new empty session");
}
