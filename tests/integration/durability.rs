//! The real binary, killed with SIGKILL in the middle of writes: every write it acknowledged is
//! there after a restart.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SHOP: &str = "http://shop.localhost:9001";

struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

// The child is waited for by `Broker`'s `Drop`.
#[allow(clippy::zombie_processes)]
async fn start(config: &std::path::Path, port: u16) -> Broker {
    let mut child = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["serve", "--config"])
        .arg(config)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .env("BATON_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn baton");
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[baton] {line}");
        }
    });
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(res) = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
        {
            if res.status() == 200 {
                return Broker(child);
            }
        }
        assert!(Instant::now() < deadline, "broker did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("baton.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\npublic_origin = \"http://broker.localhost:9000\"\nrate_limit_per_minute = 0\n[trust]\norigins = [\"{SHOP}\"]\n[store]\nsqlite_path = \"{}\"\n",
            dir.path().join("baton.db").display()
        ),
    )
    .expect("write config");
    let port = free_port();
    let broker = start(&config, port).await;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    // Four writers, each with its own session, writing as fast as they can.
    let mut writers = Vec::new();
    for w in 0..4 {
        let client = client.clone();
        let base = base.clone();
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
            }
            (cookie, acked)
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut broker = broker;
    // SIGKILL: no shutdown hook, no flush.
    broker.0.kill().expect("kill -9");
    let _ = broker.0.wait();
    drop(broker);

    let mut results = Vec::new();
    for w in writers {
        results.push(w.await.expect("join"));
    }
    let _broker = start(&config, port).await;
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
    assert!(total > 20, "too few writes to mean anything: {total}");
}
