//! What the broker writes to its log, read as an operator's log collector reads it: JSON lines.
//! One access line per request (method, route template, status, latency, origin), the refused
//! origin named in the refusal (escaped), start-up failures logged too, and never a session id,
//! page key, handoff token or cookie anywhere.

use reqwest::Method;
use serde_json::{Value, json};

use crate::process::{Baton, run};

const SHOP: &str = "http://shop.localhost:9001";
const SUPPORT: &str = "http://support.localhost:9001";

fn config() -> String {
    format!(
        "[server]\npublic_origin = \"http://broker.localhost:9000\"\n[trust]\norigins = [\"{SHOP}\", \"{SUPPORT}\"]\n[store]\nsqlite_path = \":memory:\"\n[[handoff.keys]]\nkid = \"k\"\nsecret = \"{}\"\n",
        "A".repeat(43)
    )
}

async fn send(b: reqwest::RequestBuilder) -> reqwest::Response {
    b.send().await.expect("send")
}

#[tokio::test]
async fn json_lines_with_one_access_line_per_request_and_no_secret() {
    let baton = Baton::start(&config(), &[("RUST_LOG", "info")]).await;
    let client = reqwest::Client::new();
    // A session, a page key, a handoff token: every kind of secret the broker hands out.
    let res = send(
        client
            .put(baton.url("/v1/session/chat"))
            .header("origin", SHOP)
            .json(&json!({ "value": "hello" })),
    )
    .await;
    assert_eq!(res.status(), 200);
    let cookie: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| {
            c.to_str()
                .expect("ascii")
                .split(';')
                .next()
                .expect("pair")
                .to_owned()
        })
        .collect();
    let ids: Vec<String> = cookie
        .iter()
        .map(|c| c.split('=').nth(1).expect("id").to_owned())
        .collect();
    let token: Value = send(
        client
            .post(baton.url("/v1/handoff"))
            .header("origin", SHOP)
            .header("cookie", cookie.join("; "))
            .json(&json!({ "audience": SUPPORT })),
    )
    .await
    .json()
    .await
    .expect("json");
    let token = token["token"].as_str().expect("token").to_owned();
    let page: Value = send(
        client
            .put(baton.url("/v1/session/chat"))
            .header("origin", "http://broker.localhost:9000")
            .header("baton-page-origin", SUPPORT)
            .json(&json!({ "value": "x" })),
    )
    .await
    .json()
    .await
    .expect("json");
    let page_key = page["page_key"].as_str().expect("page key").to_owned();
    send(
        client
            .post(baton.url("/v1/handoff/redeem"))
            .header("origin", SUPPORT)
            .json(&json!({ "token": token })),
    )
    .await;
    let res = send(
        client
            .request(Method::GET, baton.url("/v1/session/chat"))
            .header("origin", SHOP),
    )
    .await;
    assert_eq!(res.status(), 405);
    // Scrapes go to the admin listener and are not access-logged on the public one.
    let admin = baton.admin.expect("an admin listener");
    let scrape = send(client.get(format!("http://{admin}/metrics"))).await;
    assert_eq!(scrape.status(), 200);
    // A graceful stop writes out every queued line.
    let (code, text) = baton.stop();
    assert_eq!(code, Some(0), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let access: Vec<&Value> = parsed
        .iter()
        .filter(|v| v["target"] == "baton::access")
        .collect();
    assert_eq!(
        access.len(),
        5,
        "one line per request:\n{}",
        lines.join("\n")
    );
    let first = &access[0]["fields"];
    assert_eq!(first["method"], "PUT");
    assert_eq!(
        first["route"], "/v1/session/{key}",
        "the route template, not the path"
    );
    assert_eq!(first["status"], 200);
    assert_eq!(first["origin"], SHOP);
    assert!(first["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
    assert_eq!(access[4]["fields"]["status"], 405);
    for v in &parsed {
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{v}");
    }
    let all = lines.join("\n");
    for secret in ids.iter().chain([&token, &page_key]) {
        assert!(!all.contains(secret.as_str()), "a secret reached the log");
    }
    assert!(!all.contains("__Host-"), "no cookie in the log");
}

#[tokio::test]
async fn a_refused_origin_is_named_in_its_line_escaped_and_capped() {
    let baton = Baton::start(&config(), &[("RUST_LOG", "info")]).await;
    let hostile = format!("https://evil.example\"}}, {}", "x".repeat(500));
    let res = send(
        reqwest::Client::new()
            .get(baton.url("/v1/session"))
            .header("origin", &hostile),
    )
    .await;
    assert_eq!(res.status(), 403);
    let line = baton.line("origin denied").await;
    let shown = line["fields"]["origin"]
        .as_str()
        .expect("the refused origin is named");
    assert!(shown.starts_with("https://evil.example\\x22}"), "{shown}");
    assert!(shown.len() < 260, "capped: {} bytes", shown.len());
}

#[tokio::test]
async fn a_bad_config_is_logged_like_everything_else() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[log]\nformat = \"json\"\n[session]\nmax_values = \"64\"\n",
    )
    .expect("write");
    let (code, text) = run(&["serve", "--config", path.to_str().expect("utf-8")], &[]).finish();
    assert_eq!(code, Some(2), "{text}");
    let error = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["level"] == "ERROR")
        .unwrap_or_else(|| panic!("no JSON error line:\n{text}"));
    assert!(
        error["fields"]["problem"]
            .as_str()
            .is_some_and(|p| p.contains("session.max_values")),
        "{error}"
    );
}

/// At start a Redis node connects at once and says whether Redis answered (`RedisStore::probe`),
/// so an operator sees a wrong address before the first customer does, and the line never shows
/// the password.
#[tokio::test]
async fn a_redis_node_says_at_start_whether_redis_answers() {
    let with_redis = |url: &str| {
        config().replace(
            "sqlite_path = \":memory:\"",
            &format!(
                "backend = \"redis\"\nredis_url = \"{url}\"\nredis_prefix = \"baton-test-logs-{}:\"",
                std::process::id()
            ),
        )
    };
    let up = Baton::start(
        &with_redis("redis://127.0.0.1:6379"),
        &[("RUST_LOG", "info")],
    )
    .await;
    up.line("connected to redis").await;
    up.stop();

    // A port nothing listens on, and credentials in every form, none of which may be shown: the
    // userinfo's user and password and the query (issue 20, finding 4), for each topology.
    let closed = crate::helpers::free_port();
    let single = format!("redis://alice-x:hunter2@127.0.0.1:{closed}/0?password=hunter3");
    let down = Baton::start(&with_redis(&single), &[("RUST_LOG", "info")]).await;
    let line = down
        .line("redis is not reachable yet; /readyz says not ready until it is")
        .await;
    assert_eq!(line["level"], "WARN", "{line}");
    let listening = down.line("baton is listening").await;
    assert_eq!(
        listening["fields"]["store"]
            .as_str()
            .map(|s| s.split(" prefix").next()),
        Some(Some(
            format!("redis redis://***:***@127.0.0.1:{closed}/0?password=***").as_str()
        )),
        "{listening}"
    );
    let (_, out) = down.stop();
    for secret in ["hunter2", "hunter3", "alice-x"] {
        assert!(!out.contains(secret), "{secret}: {out}");
    }
    for keys in [
        format!(
            "redis_sentinels = [\"redis://:hunter4@127.0.0.1:{closed}?password=hunter5\"]\nredis_master_name = \"m\""
        ),
        format!(
            "redis_cluster_nodes = [\"redis://bob-x:hunter6@127.0.0.1:{closed}?user=hunter7\"]"
        ),
    ] {
        let config = config().replace(
            "sqlite_path = \":memory:\"",
            &format!("backend = \"redis\"\n{keys}"),
        );
        let down = Baton::start(&config, &[("RUST_LOG", "info")]).await;
        let listening = down.line("baton is listening").await;
        assert!(
            listening["fields"]["store"]
                .as_str()
                .is_some_and(|s| s.contains(":***@127.0.0.1")),
            "{listening}"
        );
        let (_, out) = down.stop();
        for secret in ["hunter4", "hunter5", "hunter6", "hunter7", "bob-x"] {
            assert!(!out.contains(secret), "{secret}: {out}");
        }
    }
}

#[tokio::test]
async fn a_made_up_method_is_escaped_and_capped_in_the_access_line() {
    let baton = Baton::start(&config(), &[("RUST_LOG", "info")]).await;
    let method = format!("{}~'|", "M".repeat(100_000));
    let res = send(
        reqwest::Client::new()
            .request(
                Method::from_bytes(method.as_bytes()).expect("a token"),
                baton.url("/healthz"),
            )
            .header(
                "origin",
                reqwest::header::HeaderValue::from_bytes(b"https://evil.example\xff")
                    .expect("obs-text is a valid value"),
            ),
    )
    .await;
    assert_eq!(res.status(), 405);
    let (_, text) = baton.stop();
    let access = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["target"] == "baton::access")
        .unwrap_or_else(|| panic!("no access line:\n{}", &text[..text.len().min(2000)]));
    let shown = access["fields"]["method"].as_str().expect("method");
    assert!(
        shown.starts_with("MMMM"),
        "{}",
        &shown[..shown.len().min(300)]
    );
    assert!(shown.len() < 260, "capped: {} bytes", shown.len());
    assert_eq!(access["fields"]["origin"], "https://evil.example\\xff");
    assert!(text.len() < 10_000, "no line carries the method whole");
}

/// Counts the lines whose message is `message` in `lines`.
fn count(lines: &[String], message: &str) -> usize {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["message"] == message)
        .count()
}

#[tokio::test]
async fn accept_failures_while_files_run_out_write_a_line_a_second_at_most() {
    let baton = Baton::start(&config(), &[("RUST_LOG", "info")]).await;
    // Lower the broker's open-file limit under its feet to a few above what it holds, as when
    // another part of the process takes the descriptors its connection bound counted on.
    let held = std::fs::read_dir(format!("/proc/{}/fd", baton.pid()))
        .expect("fds")
        .count();
    let limit = held + 4;
    let lowered = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &baton.pid().to_string(),
            &format!("--nofile={limit}:{limit}"),
        ])
        .status()
        .expect("prlimit");
    assert!(lowered.success());
    // Clients keep connecting for 3 s: the broker runs out of descriptors over and over.
    let window = std::time::Duration::from_secs(3);
    let started = std::time::Instant::now();
    let mut held = Vec::new();
    while started.elapsed() < window {
        held.retain(|s: &tokio::net::TcpStream| {
            let mut buf = [0u8; 1];
            matches!(s.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        });
        while held.len() < 50 {
            match tokio::net::TcpStream::connect(baton.addr).await {
                Ok(s) => held.push(s),
                Err(_) => break,
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let lines = baton.lines();
    let failed = count(&lines, "accept failed");
    assert!(
        failed >= 1,
        "the descriptors ran out:\n{}",
        lines.join("\n")
    );
    // One line a second at most: 3 s give 3 or 4 (the first is written at once).
    assert!(failed <= 5, "{failed} lines in {window:?}");
    drop(held);
}
