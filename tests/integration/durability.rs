//! The real binary, killed with SIGKILL in the middle of writes: every write it acknowledged is
//! there after a restart. And a stop, in-process or by SIGTERM, returns only once the store is
//! closed: the SQLite files are then quiescent, one database file without `-wal` or `-shm`.

use std::time::Duration;

use crate::helpers::{spawn_with, test_config};
use crate::process::Baton;

const SHOP: &str = "http://shop.localhost:9001";
/// Concurrent writers, each with its own session.
const WRITERS: usize = 32;
/// Acknowledged writes, over all writers, before the kill.
const ENOUGH: usize = 40 * WRITERS;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("dir");
    let config = format!(
        "[server]\npublic_origin = \"http://broker.localhost:9000\"\nrate_limit_per_minute = 0\n[trust]\norigins = [\"{SHOP}\"]\n[store]\nsqlite_path = \"{}\"\n",
        dir.path().join("baton.db").display()
    );
    let mut broker = Baton::start(&config, &[]).await;
    let base = broker.url("");
    let client = reqwest::Client::new();

    // Writers, each with its own session, writing as fast as they can: many at once, so that the
    // writer commits them in groups, and kill -9 lands in the middle of a group.
    let acks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let client = client.clone();
        let base = base.clone();
        let acks = std::sync::Arc::clone(&acks);
        writers.push(tokio::spawn(async move {
            let mut cookie: Option<String> = None;
            let mut acked: Vec<(String, String)> = Vec::new();
            for i in 0..100_000 {
                let mut req = client
                    .put(format!("{base}/v1/session/k{}", i % 8))
                    .header("origin", SHOP)
                    .json(&serde_json::json!({ "value": format!("w{w}-{i}") }));
                if let Some(c) = &cookie {
                    req = req.header("cookie", c);
                }
                let Ok(res) = req.send().await else { break };
                if res.status() != 200 {
                    break;
                }
                if cookie.is_none() {
                    cookie = Some(
                        res.headers()
                            .get_all("set-cookie")
                            .iter()
                            .map(|v| {
                                v.to_str()
                                    .expect("ascii")
                                    .split(';')
                                    .next()
                                    .expect("pair")
                                    .to_owned()
                            })
                            .collect::<Vec<_>>()
                            .join("; "),
                    );
                }
                acked.push((format!("k{}", i % 8), format!("w{w}-{i}")));
                acks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            (cookie, acked)
        }));
    }
    // Kill once enough writes are in, however fast this machine is (not after a fixed time).
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while acks.load(std::sync::atomic::Ordering::Relaxed) < ENOUGH {
        assert!(
            std::time::Instant::now() < deadline,
            "the writers got too little in"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // SIGKILL: no shutdown hook, no flush.
    broker.kill9();
    drop(broker);

    let mut results = Vec::new();
    for w in writers {
        results.push(w.await.expect("join"));
    }
    let broker = Baton::start(&config, &[]).await;
    let base = broker.url("");
    let mut total = 0;
    for (cookie, acked) in results {
        let cookie = cookie.expect("each writer got at least one write in");
        assert!(!acked.is_empty());
        total += acked.len();
        // The last acknowledged value of each key must be what is stored (later, unacknowledged
        // writes may also have landed, but only for the very last write of a writer).
        let mut last = std::collections::BTreeMap::new();
        for (k, v) in &acked {
            last.insert(k.clone(), v.clone());
        }
        let res = client
            .get(format!("{base}/v1/session"))
            .header("origin", SHOP)
            .header("cookie", &cookie)
            .send()
            .await
            .expect("get");
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.expect("json");
        let last_acked_index = acked.len() - 1;
        for (k, v) in last {
            let stored = body["values"][&k].as_str().expect("value present");
            let idx = |s: &str| {
                s.rsplit('-')
                    .next()
                    .and_then(|n| n.parse::<usize>().ok())
                    .expect("index")
            };
            assert!(
                stored == v || idx(stored) > last_acked_index,
                "{k}: stored {stored}, last acknowledged {v}"
            );
        }
    }
    eprintln!("{total} acknowledged writes checked after kill -9");
    assert!(total >= ENOUGH, "too few writes to mean anything: {total}");
}

/// The names in `dir`, sorted.
fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The SQLite writer's connection is the last to close, and its close checkpoints the WAL and
/// removes `-wal` and `-shm`: so their absence right after `stop` returns says the store was
/// closed before it returned, not some moment later on another thread (which is how a test
/// reading the files after `stop` once found one vanishing under it).
#[tokio::test]
async fn an_application_stop_returns_once_the_store_is_closed() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("baton.db");
    let app = spawn_with(test_config(), db.to_str().expect("utf-8")).await;
    let res = app.put("chat", "kept", SHOP, None).await;
    assert_eq!(res.status(), 200);
    assert!(files_in(dir.path()).len() > 1, "an open WAL database");
    app.stop().await;
    assert_eq!(files_in(dir.path()), ["baton.db"], "no -wal, no -shm");
}

/// The process's shutdown closes the store too, before it exits.
#[tokio::test]
async fn sigterm_closes_the_store_before_the_process_exits() {
    let dir = tempfile::tempdir().expect("dir");
    let config = format!(
        "[server]\npublic_origin = \"http://broker.localhost:9000\"\n[trust]\norigins = [\"{SHOP}\"]\n[store]\nsqlite_path = \"{}\"\n",
        dir.path().join("baton.db").display()
    );
    let broker = Baton::start(&config, &[]).await;
    let res = reqwest::Client::new()
        .put(broker.url("/v1/session/chat"))
        .header("origin", SHOP)
        .json(&serde_json::json!({ "value": "kept" }))
        .send()
        .await
        .expect("put");
    assert_eq!(res.status(), 200);
    let (code, text) = broker.stop();
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(files_in(dir.path()), ["baton.db"], "no -wal, no -shm");
}
