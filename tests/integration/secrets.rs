//! What the broker keeps and shows of its secrets: the store holds hashes of session ids and page
//! keys, never the values browsers and pages hold; a failure's detail reaches the log, never a
//! response.

use std::sync::Arc;

use baton::session::sqlite::SqliteStore;
use baton::session::{PageKey, SessionId, StoreError};
use serde_json::{Value, json};

use crate::helpers::*;

/// Every byte the SQLite store has written: the database and its write-ahead log.
fn database_bytes(path: &std::path::Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).expect("database");
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if let Ok(more) = std::fs::read(&wal) {
        bytes.extend(more);
    }
    bytes
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn the_store_holds_hashes_never_the_ids_or_keys_browsers_hold() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("baton.db");
    let app = spawn_with(test_config(), path.to_str().expect("utf-8")).await;
    let res = app.put("chat", "hello", SHOP, None).await;
    assert_eq!(res.status(), 200);
    let ids: Vec<String> = cookie_header(res.headers())
        .split("; ")
        .map(|pair| pair.split_once('=').expect("pair").1.to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "both cookies");
    // A page key too, for a page whose browser keeps no cookie.
    let res = app
        .req(
            reqwest::Method::PUT,
            "/v1/session/chat",
            Some(&app.public_origin),
            None,
        )
        .header("baton-page-origin", SUPPORT)
        .json(&json!({ "value": "there" }))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    let page_key = body["page_key"].as_str().expect("a page key").to_owned();

    let bytes = database_bytes(&path);
    for id in &ids {
        assert!(!holds(&bytes, id), "a session id is in the database");
        let hash = SessionId::parse(id).expect("an id").hash();
        assert!(holds(&bytes, hash.as_str()), "its SHA-256 is what is kept");
    }
    assert!(!holds(&bytes, &page_key), "a page key is in the database");
    let origin = baton::origin::Origin::parse(SUPPORT).expect("origin");
    let hash = PageKey::parse(&page_key).expect("a key").hash(&origin);
    assert!(
        holds(&bytes, hash.as_str()),
        "its hash with its origin is kept"
    );
    app.stop().await;
}

const DETAIL: &str = "disk I/O error at /var/lib/baton/secret-path (password=hunter2)";

#[tokio::test]
async fn a_failure_answers_its_code_and_never_its_detail() {
    type Case = (fn() -> StoreError, u16, &'static str, &'static str);
    let cases: [Case; 2] = [
        (
            || StoreError::Internal(DETAIL.into()),
            500,
            "internal",
            "an internal error occurred",
        ),
        (
            || StoreError::Unavailable(DETAIL.into()),
            503,
            "store_unavailable",
            "the session store is unavailable; retry later",
        ),
    ];
    for (make, status, code, message) in cases {
        let config = test_config();
        let store = SqliteStore::open(":memory:", config.session.timeouts()).expect("store");
        let app = spawn_with_store(config, Arc::new(Faulty(store, Fault::Fail(make)))).await;
        for res in [
            app.put("chat", "hello", SHOP, None).await,
            app.get(SHOP, Some(&format!("{UNPARTITIONED}={}", "a".repeat(43))))
                .await,
            app.fetch("/readyz").await,
        ] {
            let url = res.url().path().to_owned();
            assert_eq!(res.status(), status, "{url}");
            let body: Value = res.json().await.expect("json");
            if url == "/readyz" {
                assert!(!body.to_string().contains("hunter2"), "{url}: {body}");
                continue;
            }
            assert_eq!(body, json!({ "error": code, "message": message }), "{url}");
        }
        app.stop().await;
    }
}
