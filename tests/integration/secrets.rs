//! What the broker keeps and shows of its secrets: the store holds hashes of session ids and page
//! keys, never the values browsers and pages hold; a failure's detail reaches the log, never a
//! response; a config problem names its key and where it is, never the secret on its line or in
//! its variable (`check-config`, and `serve`'s log in both formats).

use std::sync::Arc;

use baton::session::sqlite::SqliteStore;
use baton::session::{PageKey, SessionId, StoreError};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::process::run;

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

/// In each config below, where an operator's secret would be.
const SECRET: &str = "Hush-7c41e9d2a05b8f36e1d4c7a9b2e5f8a1c4d7e0b3";

const BASE: &str = "[server]\nlisten = \"127.0.0.1:0\"\npublic_origin = \"https://broker.example.com\"\n[trust]\norigins = [\"https://shop.example.com\"]\n";

/// Runs `baton <command> --config <config>` with `env` and gives its exit code and everything it
/// wrote (stdout and stderr).
fn baton_with(command: &str, config: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("baton.toml");
    std::fs::write(&path, config).expect("write");
    run(&[command, "--config", path.to_str().expect("utf-8")], env).finish()
}

/// Each way a secret could reach a problem: a TOML syntax error on the line of a handoff secret,
/// one on the line of a Redis URL with a password, and a malformed `BATON_HANDOFF__KEYS`. Each is
/// checked by `check-config` and by `serve` in text and in JSON logs: the problem is reported
/// (exit 2, with what names it), and the secret appears nowhere in what the process wrote.
#[test]
fn a_config_problem_never_shows_the_secret_on_its_line_or_in_its_variable() {
    let handoff_line = format!("{BASE}[[handoff.keys]]\nkid = \"k\"\nsecret = \"{SECRET}\n");
    let redis_line = format!(
        "{BASE}[store]\nbackend = \"redis\"\nredis_url = \"redis://:{SECRET}@redis:6379\" !\n"
    );
    let keys_var = format!("[{{ kid = \"k\", secret = \"{SECRET}\" }}");
    /// What the case is, the config file, the environment, and what names the problem.
    type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, &'a str);
    let cases: [Case; 3] = [
        (
            "a syntax error on a handoff secret's line",
            handoff_line,
            vec![],
            "line 8, column",
        ),
        (
            "a syntax error on a Redis URL's line",
            redis_line,
            vec![],
            "near store.redis_url",
        ),
        (
            "a malformed BATON_HANDOFF__KEYS",
            BASE.to_owned(),
            vec![("BATON_HANDOFF__KEYS", keys_var.as_str())],
            "BATON_HANDOFF__KEYS (handoff.keys)",
        ),
    ];
    for (case, config, env, names) in &cases {
        for (command, format) in [
            ("check-config", None),
            ("serve", Some("text")),
            ("serve", Some("json")),
        ] {
            let mut env = env.clone();
            if let Some(format) = format {
                // From the environment: a file that is not TOML cannot say it.
                env.push(("BATON_LOG__FORMAT", format));
            }
            let (code, text) = baton_with(command, config, &env);
            let what = format!("{case}, {command} {}", format.unwrap_or(""));
            assert_eq!(code, Some(2), "{what}: {text}");
            assert!(
                text.contains(names),
                "{what}: the problem is not named: {text}"
            );
            assert!(
                !text.contains(SECRET),
                "{what}: the secret is shown: {text}"
            );
            assert!(
                !text.contains("Hush-7c41"),
                "{what}: part of the secret is shown: {text}"
            );
            if format == Some("json") {
                assert!(
                    text.lines()
                        .all(|l| serde_json::from_str::<Value>(l).is_ok()),
                    "{what}: a JSON log is JSON on every line: {text}"
                );
            }
        }
    }
}
