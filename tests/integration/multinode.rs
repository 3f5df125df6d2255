//! Several broker nodes on one Redis, as behind a load balancer without session affinity: the
//! real `baton` binary three times and a private `redis-server`, spoken to over HTTP only.
//!
//! One scenario, in order: a session made on A is read on B and changed on C; a handoff minted on A
//! is redeemed on B and refused on C; A is killed (-9) while B and C keep taking writes; Redis is
//! stopped (B and C answer 503 `store_unavailable` fast, `/readyz` 503); A is started while Redis
//! is down (it serves, not ready); Redis is started again and all three recover by themselves;
//! every acknowledged write is read back through every node. Last, a node stopped with SIGTERM
//! finishes the request it is in the middle of.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::{Value, json};

use crate::helpers::{
    PrivateRedis, free_port, log_file, process_client as client, signal, wait_exit,
};
use baton::cookie::{PARTITIONED, UNPARTITIONED};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SHOP: &str = "http://shop.localhost:9001";
const SUPPORT: &str = "http://support.localhost:9001";
/// What the load balancer would serve: one public origin for every node (it is also the handoff
/// tokens' issuer, so nodes with different ones would refuse each other's tokens).
const PUBLIC_ORIGIN: &str = "http://broker.localhost:9000";
/// How long a request may take to be answered 503 while Redis is down.
const FAIL_FAST: Duration = Duration::from_secs(2);
/// How long nodes get to notice that Redis is back.
const RECOVERY: Duration = Duration::from_secs(20);

/// Every process the test started; all are killed when it ends, passed or failed.
struct Cluster {
    dir: tempfile::TempDir,
    redis: PrivateRedis,
    nodes: Vec<Node>,
}

struct Node {
    name: &'static str,
    port: u16,
    config: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.nodes.iter_mut().filter_map(|n| n.child.as_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.redis.kill();
        if std::thread::panicking() {
            for log in ["redis.log", "a.log", "b.log", "c.log"] {
                let text = std::fs::read_to_string(self.dir.path().join(log)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                eprintln!("--- {log} (last lines) ---");
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// `baton keygen`'s own output, so the shared key has exactly the format operators paste.
fn keygen() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .arg("keygen")
        .output()
        .expect("run baton keygen");
    assert!(out.status.success(), "baton keygen failed");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(text.contains("[[handoff.keys]]"), "{text}");
    text
}

impl Cluster {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let redis = PrivateRedis::new(dir.path());
        let redis_port = redis.port;
        let keys = keygen();
        let nodes = ["a", "b", "c"]
            .into_iter()
            .map(|name| {
                let port = free_port();
                let config = dir.path().join(format!("{name}.toml"));
                std::fs::write(
                    &config,
                    format!(
                        r#"[server]
listen = "127.0.0.1:{port}"
public_origin = "{PUBLIC_ORIGIN}"
shutdown_grace_secs = 10

[trust]
origins = ["{SHOP}", "{SUPPORT}"]

[store]
backend = "redis"
redis_url = "redis://127.0.0.1:{redis_port}"
redis_prefix = "baton-multinode:"
timeout_ms = 1000

{keys}
"#
                    ),
                )
                .expect("write config");
                Node {
                    name,
                    port,
                    config,
                    child: None,
                }
            })
            .collect();
        Self { dir, redis, nodes }
    }

    async fn start_redis(&mut self) {
        self.redis.start().await;
    }

    async fn stop_redis(&mut self) {
        self.redis.stop().await;
    }

    fn start_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        assert!(node.child.is_none(), "node {} already running", node.name);
        let log = format!("{}.log", node.name);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
        cmd.arg("serve")
            .arg("--config")
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(log_file(self.dir.path(), &log))
            .stderr(log_file(self.dir.path(), &log));
        // Only the config file speaks: no BATON_* override from the environment running the test.
        for (name, _) in std::env::vars() {
            if name.starts_with("BATON_") {
                cmd.env_remove(name);
            }
        }
        node.child = Some(cmd.spawn().expect("start baton"));
    }

    /// Waits (bounded, polling) until the log file `name` has a line containing `text`.
    async fn wait_for_log(&self, name: &str, text: &str, within: Duration) {
        let path = self.dir.path().join(name);
        let start = Instant::now();
        while start.elapsed() < within {
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            if log.lines().any(|line| line.contains(text)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no line with {text:?} in {name} within {within:?}");
    }

    fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }
}

/// `name=value` of each `Set-Cookie`, ready for a `Cookie` header.
fn cookie_header(headers: &HeaderMap) -> String {
    let pairs: Vec<String> = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| {
            let v = v.to_str().expect("ascii cookie");
            v.split(';').next().expect("pair").to_owned()
        })
        .collect();
    assert!(
        pairs
            .iter()
            .any(|p| p.starts_with(&format!("{UNPARTITIONED}=")))
            && pairs
                .iter()
                .any(|p| p.starts_with(&format!("{PARTITIONED}="))),
        "both session cookies are set: {pairs:?}"
    );
    pairs.join("; ")
}

async fn status_of(c: &reqwest::Client, url: &str) -> Option<StatusCode> {
    c.get(url).send().await.ok().map(|r| r.status())
}

/// Reads one response head (an interim `100 Continue`, say) up to its blank line, byte by byte so
/// that nothing after it is consumed.
async fn read_head(conn: &mut tokio::net::TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = conn.read_u8().await.expect("read a response head");
        head.push(byte);
    }
    String::from_utf8(head).expect("utf-8 head")
}

/// Polls `/healthz` until 200 (bounded): the process serves, whatever its store says.
async fn wait_alive(c: &reqwest::Client, node: &Node, within: Duration) {
    let start = Instant::now();
    while start.elapsed() < within {
        if status_of(c, &node.url("/healthz")).await == Some(StatusCode::OK) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("node {} not serving within {within:?}", node.name);
}

/// Polls `/readyz` until 200 (bounded); returns how long it took.
async fn wait_ready(c: &reqwest::Client, node: &Node, within: Duration) -> Duration {
    let start = Instant::now();
    while start.elapsed() < within {
        if status_of(c, &node.url("/readyz")).await == Some(StatusCode::OK) {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("node {} not ready within {within:?}", node.name);
}

async fn put(
    c: &reqwest::Client,
    node: &Node,
    origin: &str,
    cookie: Option<&str>,
    key: &str,
    value: &str,
) -> reqwest::Response {
    let mut req = c
        .put(node.url(&format!("/v1/session/{key}")))
        .header("origin", origin)
        .json(&json!({ "value": value }));
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    req.send().await.expect("send")
}

async fn get_values(c: &reqwest::Client, node: &Node, origin: &str, cookie: &str) -> Value {
    let res = c
        .get(node.url("/v1/session"))
        .header("origin", origin)
        .header("cookie", cookie)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::OK, "GET on {}", node.name);
    res.json::<Value>().await.expect("json")["values"].clone()
}

/// While Redis is down: a 503 `store_unavailable`, answered within `FAIL_FAST`.
async fn assert_unavailable(
    what: &str,
    send: impl std::future::Future<Output = reqwest::Response>,
) -> Duration {
    let start = Instant::now();
    let res = send.await;
    let took = start.elapsed();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
    let body: Value = res.json().await.expect("json error body");
    assert_eq!(body["error"], "store_unavailable", "{what}: {body}");
    assert!(took < FAIL_FAST, "{what} took {took:?}");
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_sessions_and_survive_node_and_redis_faults() {
    let mut cluster = Cluster::new();
    cluster.start_redis().await;
    for i in 0..3 {
        cluster.start_node(i);
    }
    let c = client();
    for i in 0..3 {
        wait_ready(&c, cluster.node(i), Duration::from_secs(30)).await;
    }
    let (a, b, cc) = (0, 1, 2);

    // A session made on A, read on B, changed on C.
    let res = put(&c, cluster.node(a), SHOP, None, "chat", "hello from A").await;
    assert_eq!(res.status(), StatusCode::OK);
    let shop = cookie_header(res.headers());
    let values = get_values(&c, cluster.node(b), SHOP, &shop).await;
    assert_eq!(values["chat"], "hello from A");
    let res = put(
        &c,
        cluster.node(cc),
        SHOP,
        Some(&shop),
        "chat",
        "changed on C",
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        get_values(&c, cluster.node(a), SHOP, &shop).await["chat"],
        "changed on C"
    );

    // A handoff minted on A is redeemed on B, once.
    let res = c
        .post(cluster.node(a).url("/v1/handoff"))
        .header("origin", SHOP)
        .header("cookie", &shop)
        .json(&json!({ "audience": SUPPORT }))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::OK);
    let token = res.json::<Value>().await.expect("json")["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let redeem = |node: usize| {
        c.post(cluster.node(node).url("/v1/handoff/redeem"))
            .header("origin", SUPPORT)
            .json(&json!({ "token": token }))
            .send()
    };
    let res = redeem(b).await.expect("send");
    assert_eq!(res.status(), StatusCode::OK);
    let support = cookie_header(res.headers());
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["values"]["chat"], "changed on C", "{body}");
    let res = redeem(cc).await.expect("send");
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "a token is single use"
    );

    // A dies without warning; B and C keep taking writes, from both sites.
    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    acked.insert("chat".into(), "changed on C".into());
    let mut a_child = cluster.nodes[a].child.take().expect("A running");
    a_child.kill().expect("kill -9 A");
    let _ = a_child.wait();
    for i in 0..8 {
        let (node, origin, cookie) = match i % 2 {
            0 => (b, SHOP, &shop),
            _ => (cc, SUPPORT, &support),
        };
        let (key, value) = (
            format!("w{i}"),
            format!("written {i} via {}", cluster.node(node).name),
        );
        let res = put(&c, cluster.node(node), origin, Some(cookie), &key, &value).await;
        assert_eq!(res.status(), StatusCode::OK, "write {i}");
        acked.insert(key, value);
    }

    // Redis stops: B and C fail fast with 503 and say they are not ready.
    cluster.stop_redis().await;
    let mut slowest = Duration::ZERO;
    for round in 0..3 {
        for node in [b, cc] {
            let n = cluster.node(node);
            let took = assert_unavailable(
                &format!("PUT on {} during the outage (round {round})", n.name),
                put(&c, n, SHOP, Some(&shop), "lost", "never acknowledged"),
            )
            .await;
            slowest = slowest.max(took);
            let took = assert_unavailable(&format!("GET on {} during the outage", n.name), async {
                c.get(n.url("/v1/session"))
                    .header("origin", SHOP)
                    .header("cookie", &shop)
                    .send()
                    .await
                    .expect("send")
            })
            .await;
            slowest = slowest.max(took);
            let took = assert_unavailable(&format!("/readyz on {}", n.name), async {
                c.get(n.url("/readyz")).send().await.expect("send")
            })
            .await;
            slowest = slowest.max(took);
        }
    }
    eprintln!("slowest 503 during the Redis outage: {slowest:?}");

    // A comes back while Redis is still down: it starts anyway, alive but not ready.
    cluster.start_node(a);
    wait_alive(&c, cluster.node(a), Duration::from_secs(30)).await;
    assert_unavailable("/readyz on A started without Redis", async {
        c.get(cluster.node(a).url("/readyz"))
            .send()
            .await
            .expect("send")
    })
    .await;

    // Redis comes back on the same port and dir; every node recovers without help.
    cluster.start_redis().await;
    for node in [a, b, cc] {
        let took = wait_ready(&c, cluster.node(node), RECOVERY).await;
        eprintln!(
            "node {} ready {took:?} after Redis answered PING again",
            cluster.node(node).name
        );
    }
    for i in 8..12 {
        let (node, origin, cookie) = match i % 2 {
            0 => (b, SUPPORT, &support),
            _ => (cc, SHOP, &shop),
        };
        let (key, value) = (
            format!("w{i}"),
            format!("written {i} via {}", cluster.node(node).name),
        );
        let res = put(&c, cluster.node(node), origin, Some(cookie), &key, &value).await;
        assert_eq!(res.status(), StatusCode::OK, "write {i} after recovery");
        acked.insert(key, value);
    }

    // Every acknowledged write reads back through every node, from both sites.
    let want = serde_json::to_value(&acked).expect("json");
    for node in [a, b, cc] {
        for (origin, cookie) in [(SHOP, &shop), (SUPPORT, &support)] {
            let values = get_values(&c, cluster.node(node), origin, cookie).await;
            assert_eq!(values, want, "{} via {}", origin, cluster.node(node).name);
        }
    }

    // SIGTERM while a request is in flight: the node finishes it, then exits cleanly. Each step
    // waits for proof of the last, not for time: the request asks `Expect: 100-continue`, which
    // the node answers only once the handler reads the body (the request is in flight); SIGTERM
    // follows, and the body only once C has logged that it is draining and refuses new
    // connections.
    let body = json!({ "value": "sent across a shutdown" }).to_string();
    let port = cluster.node(cc).port;
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to C");
    // No `connection: close` from the client: the node closes the connection itself, as its
    // shutdown asks, once it has answered (the read of the answer below ends only then).
    let request = format!(
        "PUT /v1/session/drain HTTP/1.1\r\nhost: 127.0.0.1:{}\r\norigin: {SHOP}\r\ncookie: {shop}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\r\n",
        port,
        body.len()
    );
    conn.write_all(request.as_bytes())
        .await
        .expect("write head");
    let interim = tokio::time::timeout(Duration::from_secs(10), read_head(&mut conn))
        .await
        .expect("100 Continue within 10 s");
    assert!(
        interim.starts_with("HTTP/1.1 100 Continue\r\n"),
        "the handler waits for the body: {interim}"
    );
    let mut c_child = cluster.nodes[cc].child.take().expect("C running");
    signal(&c_child, "-TERM");
    cluster
        .wait_for_log(
            "c.log",
            "shutting down: draining in-flight requests",
            Duration::from_secs(10),
        )
        .await;
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "C, draining, accepts no new connection"
    );
    assert!(
        c_child.try_wait().expect("try_wait").is_none(),
        "C must wait for its in-flight request"
    );
    conn.write_all(body.as_bytes()).await.expect("write body");
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_string(&mut response))
        .await
        .expect("response, and the connection closed by C, within 10 s")
        .expect("read response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        wait_exit(&mut c_child, Duration::from_secs(15)).await,
        "C exits cleanly after draining"
    );
    let values = get_values(&c, cluster.node(b), SHOP, &shop).await;
    assert_eq!(values["drain"], "sent across a shutdown");
}
