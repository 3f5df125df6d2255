//! Redis high availability, with real processes on loopback started here: a primary, two
//! replicas and three sentinels; a Redis Cluster of three primaries and three replicas made by
//! `redis-cli --cluster create`. Two `baton serve` nodes take a mixed load of writes and reads,
//! the primary is killed with SIGKILL, and the test checks that calls fail fast (503, never past
//! the store timeout), that the nodes resume by themselves, how long that took (printed:
//! docs/deployment.md reports it), that `/readyz` follows, and, with `replica_acks = 1`, that no
//! acknowledged write is lost. The Cluster also runs the store contract suite, and a whole Cluster
//! down must answer 503 `store_unavailable` like one Redis down.
//!
//! A missing `redis-server`, `redis-sentinel` or `redis-cli` fails these tests: they never skip.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::SET_COOKIE;
use serde_json::{Value, json};

use crate::helpers::{free_port, log_file, process_client as client, redis_ping};
use crate::process::Baton;

const REDIS_SERVER: &str = "/usr/bin/redis-server";
const REDIS_SENTINEL: &str = "/usr/bin/redis-sentinel";
const REDIS_CLI: &str = "/usr/bin/redis-cli";
const ORIGIN: &str = "http://shop.localhost:9001";
const MASTER: &str = "baton";
/// The brokers' `timeout_ms`, and `replica_ack_timeout_ms`.
const STORE_TIMEOUT_MS: u64 = 1000;
const ACK_TIMEOUT_MS: u64 = 500;
/// The longest a request may take while Redis fails over: a request makes at most two store
/// calls (find the session, write it), each bounded by the store timeout; plus scheduling slack
/// on a loaded 2-core machine.
const FAIL_FAST: Duration = Duration::from_millis(2 * STORE_TIMEOUT_MS + 700);
/// Service must resume within this after the fault: the bound the README gives (measured
/// figures: docs/deployment.md).
const RESUME_BOUND: Duration = Duration::from_secs(10);

fn need(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install the Debian package {package} (scripts/setup.sh) to run this test"
    );
}

/// One Redis process (server or sentinel); killed when dropped.
struct Proc {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Proc {
    fn spawn(program: &str, dir: &Path, args: &[String]) -> Self {
        let port = free_port();
        Self::spawn_on(program, dir, port, args)
    }

    fn spawn_on(program: &str, dir: &Path, port: u16, args: &[String]) -> Self {
        std::fs::create_dir_all(dir).expect("dir");
        let mut cmd = Command::new(program);
        if program == REDIS_SENTINEL {
            // A sentinel reads (and rewrites) a config file of its own.
            let conf = dir.join("sentinel.conf");
            std::fs::write(&conf, args.join("\n")).expect("sentinel.conf");
            cmd.arg(&conf);
            cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"]);
        } else {
            cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"]);
            cmd.args(["--save", "", "--appendonly", "no"]);
            // A replica that (re)joins gets its full copy at once, not after the default 5 s
            // wait for more replicas (docs/deployment.md).
            cmd.args(["--repl-diskless-sync-delay", "0"]);
            cmd.arg("--dir").arg(dir);
            cmd.args(args);
        }
        let child = cmd
            .stdout(log_file(dir, "log"))
            .stderr(log_file(dir, "log"))
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        Self {
            port,
            dir: dir.to_owned(),
            child: Some(child),
        }
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `sig` (`-STOP`, `-CONT`) to the running process.
    fn signal(&self, sig: &str) {
        crate::helpers::signal(self.child.as_ref().expect("running"), sig);
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            let text = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            eprintln!("--- {} (last lines) ---", self.dir.display());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// One command to the Redis process on `port`, on a connection of its own (the test's view,
/// independent of the code under test).
async fn query(port: u16, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(500)))
        .set_response_timeout(Some(Duration::from_millis(1000)));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(&mut conn).await
}

async fn text(port: u16, args: &[&str]) -> String {
    match query(port, args).await {
        Ok(v) => redis::from_redis_value::<String>(v).unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Polls `check` (bounded) until it holds.
async fn until<F, Fut>(what: &str, within: Duration, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < within {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within {within:?}");
}

async fn wait_ping(port: u16) {
    until("redis answers PING", Duration::from_secs(10), || {
        redis_ping(port)
    })
    .await;
}

/// A primary, two replicas and three sentinels that all know each other.
struct SentinelSet {
    _dir: tempfile::TempDir,
    primary: Proc,
    _replicas: Vec<Proc>,
    sentinels: Vec<Proc>,
}

impl SentinelSet {
    async fn start() -> Self {
        need(REDIS_SERVER, "redis-server");
        need(REDIS_SENTINEL, "redis-sentinel");
        let dir = tempfile::tempdir().expect("tempdir");
        let primary = Proc::spawn(REDIS_SERVER, &dir.path().join("primary"), &[]);
        wait_ping(primary.port).await;
        let replicas: Vec<Proc> = (0..2)
            .map(|i| {
                Proc::spawn(
                    REDIS_SERVER,
                    &dir.path().join(format!("replica{i}")),
                    &[
                        "--replicaof".into(),
                        "127.0.0.1".into(),
                        primary.port.to_string(),
                    ],
                )
            })
            .collect();
        for r in &replicas {
            wait_ping(r.port).await;
            let port = r.port;
            until("replica in sync", Duration::from_secs(10), || async move {
                text(port, &["INFO", "replication"])
                    .await
                    .contains("master_link_status:up")
            })
            .await;
        }
        let conf = [
            format!("sentinel monitor {MASTER} 127.0.0.1 {} 2", primary.port),
            format!("sentinel down-after-milliseconds {MASTER} 1000"),
            format!("sentinel failover-timeout {MASTER} 10000"),
            format!("sentinel parallel-syncs {MASTER} 2"),
        ];
        let sentinels: Vec<Proc> = (0..3)
            .map(|i| {
                let mut c = conf.to_vec();
                c.push(format!(
                    "dir {}",
                    dir.path().join(format!("s{i}")).display()
                ));
                Proc::spawn(REDIS_SENTINEL, &dir.path().join(format!("s{i}")), &c)
            })
            .collect();
        for s in &sentinels {
            wait_ping(s.port).await;
            let port = s.port;
            until(
                "each sentinel knows 2 replicas and 2 other sentinels",
                Duration::from_secs(20),
                || async move {
                    let Ok(v) = query(port, &["SENTINEL", "MASTER", MASTER]).await else {
                        return false;
                    };
                    let fields: Vec<String> = redis::from_redis_value(v).unwrap_or_default();
                    let get = |k: &str| {
                        fields
                            .iter()
                            .position(|f| f == k)
                            .and_then(|i| fields.get(i + 1))
                            .cloned()
                            .unwrap_or_default()
                    };
                    get("num-slaves") == "2" && get("num-other-sentinels") == "2"
                },
            )
            .await;
        }
        Self {
            _dir: dir,
            primary,
            _replicas: replicas,
            sentinels,
        }
    }

    fn store_config(&self, replica_acks: u32) -> String {
        let list: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("\"redis://{}\"", s.addr()))
            .collect();
        format!(
            "backend = \"redis\"\nredis_sentinels = [{}]\nredis_master_name = \"{MASTER}\"\n{}",
            list.join(", "),
            common_store(replica_acks)
        )
    }
}

fn common_store(replica_acks: u32) -> String {
    format!(
        "redis_prefix = \"ha:\"\ntimeout_ms = {STORE_TIMEOUT_MS}\nreplica_acks = {replica_acks}\nreplica_ack_timeout_ms = {ACK_TIMEOUT_MS}\n"
    )
}

/// Three primaries and three replicas, by `redis-cli --cluster create`.
struct RedisCluster {
    dir: tempfile::TempDir,
    nodes: Vec<Proc>,
}

fn cluster_args() -> Vec<String> {
    [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "1000",
    ]
    .map(String::from)
    .to_vec()
}

impl RedisCluster {
    async fn start() -> Self {
        need(REDIS_SERVER, "redis-server");
        need(REDIS_CLI, "redis-tools");
        let dir = tempfile::tempdir().expect("tempdir");
        let nodes: Vec<Proc> = (0..6)
            .map(|i| {
                Proc::spawn(
                    REDIS_SERVER,
                    &dir.path().join(format!("n{i}")),
                    &cluster_args(),
                )
            })
            .collect();
        for n in &nodes {
            wait_ping(n.port).await;
        }
        let addrs: Vec<String> = nodes.iter().map(Proc::addr).collect();
        let out = Command::new(REDIS_CLI)
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = Self { dir, nodes };
        cluster.wait_ok().await;
        cluster
    }

    /// Every live node says the cluster is ok and knows 3 primaries, each with a replica in sync.
    async fn wait_ok(&self) {
        for n in self.nodes.iter().filter(|n| n.child.is_some()) {
            let port = n.port;
            until("cluster_state:ok", Duration::from_secs(20), || async move {
                text(port, &["CLUSTER", "INFO"])
                    .await
                    .contains("cluster_state:ok")
            })
            .await;
        }
        for n in self.nodes.iter().filter(|n| n.child.is_some()) {
            let port = n.port;
            let info = text(port, &["INFO", "replication"]).await;
            if info.contains("role:slave") {
                until(
                    "cluster replica in sync",
                    Duration::from_secs(20),
                    || async move {
                        text(port, &["INFO", "replication"])
                            .await
                            .contains("master_link_status:up")
                    },
                )
                .await;
            }
        }
    }

    fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://{}", n.addr()))
            .collect()
    }

    fn store_config(&self, replica_acks: u32) -> String {
        let list: Vec<String> = self.urls().iter().map(|u| format!("\"{u}\"")).collect();
        format!(
            "backend = \"redis\"\nredis_cluster_nodes = [{}]\n{}",
            list.join(", "),
            common_store(replica_acks)
        )
    }

    /// Index of the primary that holds the most keys now.
    async fn busiest_primary(&self) -> usize {
        let mut best = (0, 0);
        for (i, n) in self.nodes.iter().enumerate() {
            if text(n.port, &["INFO", "replication"])
                .await
                .contains("role:master")
            {
                let keys = query(n.port, &["DBSIZE"])
                    .await
                    .ok()
                    .and_then(|v| redis::from_redis_value::<i64>(v).ok())
                    .unwrap_or(0);
                if keys > best.1 {
                    best = (i, keys);
                }
            }
        }
        assert!(best.1 > 0, "no primary holds a key");
        best.0
    }

    /// The replica of node `i` (by its run id in `CLUSTER NODES`).
    async fn replica_of(&self, i: usize) -> usize {
        let id = text(self.nodes[i].port, &["CLUSTER", "MYID"]).await;
        for (j, n) in self.nodes.iter().enumerate() {
            if j != i
                && text(n.port, &["INFO", "replication"])
                    .await
                    .contains(&format!("master_port:{}", self.nodes[i].port))
            {
                return j;
            }
        }
        panic!("no replica of {id}");
    }

    /// Starts node `i` again on its port and dir: it rejoins as a replica (its `nodes.conf`).
    async fn restart(&mut self, i: usize) {
        let port = self.nodes[i].port;
        let dir = self.dir.path().join(format!("n{i}"));
        self.nodes[i] = Proc::spawn_on(REDIS_SERVER, &dir, port, &cluster_args());
        wait_ping(port).await;
    }
}

fn cookies(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The broker nodes; their last log lines are shown when the test fails.
struct Brokers(Vec<Baton>);

impl std::ops::Deref for Brokers {
    type Target = [Baton];
    fn deref(&self) -> &[Baton] {
        &self.0
    }
}

impl Drop for Brokers {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (i, node) in self.0.iter().enumerate() {
                eprintln!("--- broker {i} (last warnings and errors) ---");
                let lines: Vec<String> = node
                    .lines()
                    .into_iter()
                    .filter(|l| !l.contains("\"level\":\"INFO\""))
                    .collect();
                for line in lines.iter().rev().take(20).rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

async fn brokers(store: &str) -> Brokers {
    let config = format!(
        "[server]\npublic_origin = \"http://broker.localhost:9000\"\n\n[trust]\norigins = [\"{ORIGIN}\"]\n\n[store]\n{store}"
    );
    let mut nodes = Vec::new();
    for _ in 0..2 {
        nodes.push(Baton::start(&config, &[]).await);
    }
    Brokers(nodes)
}

/// What one client knows of its session: per key, the last value acknowledged (a number that
/// only grows) and the last value sent.
#[derive(Default)]
struct Ledger {
    cookie: String,
    acked: HashMap<String, u64>,
    sent: HashMap<String, u64>,
}

impl Ledger {
    /// Checks `values` (a GET's) against what was acknowledged: every key holds its last
    /// acknowledged value or one sent after it (a write answered 503 may still be applied).
    fn check(&self, values: &Value, when: &str) {
        for (key, acked) in &self.acked {
            let got = values[key]
                .as_str()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{when}: acknowledged key {key} lost: {values}"));
            let sent = self.sent[key];
            assert!(
                got >= *acked && got <= sent,
                "{when}: key {key} holds {got}, acknowledged {acked}, last sent {sent}"
            );
        }
    }
}

/// What the load saw.
struct Outcome {
    /// From the SIGKILL to the first acknowledged write, and to the moment every client had one
    /// acknowledged again.
    first_write: Duration,
    all_writing: Duration,
    /// The slowest answer.
    slowest: Duration,
    unavailable: usize,
    acknowledged: usize,
    /// Whether a node's `/readyz` said 503 after the fault.
    unready_seen: bool,
}

const CLIENTS: usize = 8;

/// When the primary was killed (set by the kill itself, right after its SIGKILL).
type KilledAt = Arc<std::sync::Mutex<Option<Instant>>>;

fn mark(killed_at: &KilledAt) {
    *killed_at.lock().expect("lock") = Some(Instant::now());
}

/// Runs the mixed load on `nodes` (each client its own session, alternating nodes; writes to
/// three keys and reads, checked against its ledger), calls `kill` once the load runs (it marks
/// the moment of its SIGKILL), and goes on until every client has written again after it. Panics on any answer but 200/204 or 503
/// `store_unavailable`, on an answer slower than `FAIL_FAST`, on a lost acknowledged write.
async fn load_and_kill<K, KF>(nodes: &[Baton], kill: K) -> Outcome
where
    K: FnOnce(KilledAt) -> KF,
    KF: std::future::Future<Output = ()>,
{
    let urls: Arc<Vec<String>> = Arc::new(nodes.iter().map(|n| n.url("")).collect());
    let killed_at: KilledAt = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (urls, killed_at, stop) = (urls.clone(), killed_at.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let http = client();
            let mut ledger = Ledger::default();
            let (mut slowest, mut unavailable, mut acknowledged) = (Duration::ZERO, 0, 0);
            let mut first_after: Option<Instant> = None;
            let mut seq = 0u64;
            let mut i = c;
            loop {
                let killed = *killed_at.lock().expect("lock");
                if stop.load(Ordering::Relaxed) && (first_after.is_some() || killed.is_none()) {
                    break;
                }
                i += 1;
                let base = &urls[i % urls.len()];
                let key = format!("k{}", i % 3);
                let read = i % 4 == 0 && !ledger.cookie.is_empty();
                let started = Instant::now();
                let res = if read {
                    http.get(format!("{base}/v1/session"))
                        .header("origin", ORIGIN)
                        .header("cookie", &ledger.cookie)
                        .send()
                        .await
                } else {
                    seq += 1;
                    ledger.sent.insert(key.clone(), seq);
                    let mut req = http
                        .put(format!("{base}/v1/session/{key}"))
                        .header("origin", ORIGIN)
                        .json(&json!({ "value": seq.to_string() }));
                    if !ledger.cookie.is_empty() {
                        req = req.header("cookie", &ledger.cookie);
                    }
                    req.send().await
                };
                let res = res.expect("the broker answers");
                let took = started.elapsed();
                slowest = slowest.max(took);
                assert!(took < FAIL_FAST, "an answer took {took:?}");
                match res.status() {
                    StatusCode::OK if read => {
                        let body: Value = res.json().await.expect("json");
                        ledger.check(&body["values"], "a read under load");
                    }
                    StatusCode::OK => {
                        let set = cookies(res.headers());
                        if ledger.cookie.is_empty() {
                            assert!(!set.is_empty(), "a new session sets cookies");
                            ledger.cookie = set;
                        } else {
                            // A session the store lost would be replaced by a new one here.
                            assert!(
                                set.is_empty() || set == ledger.cookie,
                                "client {c}: the session was replaced by a new one (write {seq}, killed: {})",
                                killed.is_some()
                            );
                        }
                        ledger.acked.insert(key, seq);
                        acknowledged += 1;
                        if let Some(at) = killed
                            && first_after.is_none()
                        {
                            first_after = Some(Instant::now());
                            let _ = at;
                        }
                    }
                    StatusCode::SERVICE_UNAVAILABLE => {
                        let body: Value = res.json().await.expect("json error body");
                        assert_eq!(body["error"], "store_unavailable", "{body}");
                        unavailable += 1;
                    }
                    other => panic!("unexpected {other}: {:?}", res.text().await),
                }
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            (ledger, slowest, unavailable, acknowledged, first_after)
        }));
    }
    // `/readyz` of the first node, polled from the fault on.
    let readyz = {
        let (url, killed_at, stop) = (nodes[0].url("/readyz"), killed_at.clone(), stop.clone());
        tokio::spawn(async move {
            let http = client();
            let mut unready_seen = false;
            while !stop.load(Ordering::Relaxed) || !unready_seen {
                if killed_at.lock().expect("lock").is_some() {
                    let status = http.get(&url).send().await.map(|r| r.status());
                    unready_seen |= status.is_ok_and(|s| s == StatusCode::SERVICE_UNAVAILABLE);
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            unready_seen
        })
    };
    // Load first, then the kill.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    kill(killed_at.clone()).await;
    let at = killed_at
        .lock()
        .expect("lock")
        .expect("the kill marked its moment");
    // Let the load run into the failover; every client then stops at its first write after it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut out = Outcome {
        first_write: Duration::MAX,
        all_writing: Duration::ZERO,
        slowest: Duration::ZERO,
        unavailable: 0,
        acknowledged: 0,
        unready_seen: false,
    };
    let mut ledgers = Vec::new();
    let joined = tokio::time::timeout(RESUME_BOUND + Duration::from_secs(5), async {
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.expect("client task"));
        }
        results
    })
    .await
    .expect("service did not resume within the bound");
    for (ledger, slowest, unavailable, acknowledged, first_after) in joined {
        let first_after = first_after.expect("every client wrote again");
        out.first_write = out.first_write.min(first_after - at);
        out.all_writing = out.all_writing.max(first_after - at);
        out.slowest = out.slowest.max(slowest);
        out.unavailable += unavailable;
        out.acknowledged += acknowledged;
        ledgers.push(ledger);
    }
    out.unready_seen = readyz.await.expect("readyz poller");
    assert!(
        out.all_writing < RESUME_BOUND,
        "resumed after {:?}",
        out.all_writing
    );
    // Every acknowledged write is there, read through either node.
    let http = client();
    for (n, ledger) in ledgers.iter().enumerate() {
        let mut tries = 0;
        let res = loop {
            let res = http
                .get(format!("{}/v1/session", urls[n % urls.len()]))
                .header("origin", ORIGIN)
                .header("cookie", &ledger.cookie)
                .send()
                .await
                .expect("send");
            tries += 1;
            if res.status() != StatusCode::SERVICE_UNAVAILABLE || tries == 50 {
                break res;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(res.status(), StatusCode::OK, "client {n}");
        let body: Value = res.json().await.expect("json");
        ledger.check(&body["values"], "after the failover");
    }
    out
}

async fn assert_ready(nodes: &[Baton]) {
    let http = client();
    for n in nodes {
        let url = n.url("/readyz");
        let http = &http;
        until("/readyz is 200 again", Duration::from_secs(5), || async {
            http.get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK)
        })
        .await;
    }
}

fn report(topology: &str, out: &Outcome) {
    // Read by whoever measures failover times (docs/deployment.md); shown with --nocapture.
    eprintln!(
        "FAILOVER {topology}: first write {} ms, every client writing {} ms, slowest answer {} ms, {} acknowledged writes, {} answered 503, /readyz 503 seen: {}",
        out.first_write.as_millis(),
        out.all_writing.as_millis(),
        out.slowest.as_millis(),
        out.acknowledged,
        out.unavailable,
        out.unready_seen
    );
}

/// How the primary fails.
#[derive(Clone, Copy)]
enum Fault {
    /// SIGKILL: its connections are refused at once.
    Killed,
    /// SIGSTOP: it accepts connections and never answers (a hung machine, a cut network).
    Hung,
}

async fn sentinel_failover(fault: Fault) {
    let mut set = SentinelSet::start().await;
    let nodes = brokers(&set.store_config(1)).await;
    assert_ready(&nodes).await;
    let primary = &mut set.primary;
    let out = load_and_kill(&nodes, |killed_at| async move {
        match fault {
            Fault::Killed => primary.kill9(),
            Fault::Hung => primary.signal("-STOP"),
        }
        mark(&killed_at);
    })
    .await;
    report(
        match fault {
            Fault::Killed => "sentinel",
            Fault::Hung => "sentinel (primary hung)",
        },
        &out,
    );
    assert!(out.acknowledged > 0);
    assert!(
        out.unready_seen,
        "/readyz said 503 while the primary was gone"
    );
    assert_ready(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sentinel_failover_loses_no_acknowledged_write() {
    sentinel_failover(Fault::Killed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sentinel_failover_from_a_hung_primary_loses_no_acknowledged_write() {
    sentinel_failover(Fault::Hung).await;
}

async fn cluster_failover(fault: Fault) {
    let mut cluster = RedisCluster::start().await;
    let nodes = brokers(&cluster.store_config(1)).await;
    assert_ready(&nodes).await;
    let cluster_ref = &mut cluster;
    let out = load_and_kill(&nodes, |killed_at| async move {
        // The primary holding the most keys: the sessions of several clients are in its slots.
        let victim = cluster_ref.busiest_primary().await;
        let replica = cluster_ref.replica_of(victim).await;
        let replica_port = cluster_ref.nodes[replica].port;
        match fault {
            Fault::Killed => cluster_ref.nodes[victim].kill9(),
            Fault::Hung => cluster_ref.nodes[victim].signal("-STOP"),
        }
        mark(&killed_at);
        // With `replica_acks = 1` the promoted replica needs a replica of its own to take
        // writes: the failed node comes back once its replica has taken over (its supervisor
        // starts it again, or it wakes up), and rejoins as that replica's replica. Before that,
        // a node restarted empty would come back as the primary of its old slots.
        until(
            "the replica takes over",
            Duration::from_secs(15),
            || async {
                text(replica_port, &["INFO", "replication"])
                    .await
                    .contains("role:master")
            },
        )
        .await;
        match fault {
            Fault::Killed => cluster_ref.restart(victim).await,
            Fault::Hung => cluster_ref.nodes[victim].signal("-CONT"),
        }
    })
    .await;
    report(
        match fault {
            Fault::Killed => "cluster",
            Fault::Hung => "cluster (primary hung)",
        },
        &out,
    );
    assert!(out.acknowledged > 0);
    assert_ready(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_failover_loses_no_acknowledged_write() {
    cluster_failover(Fault::Killed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_failover_from_a_hung_primary_loses_no_acknowledged_write() {
    cluster_failover(Fault::Hung).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_replica_acks_that_do_not_come_answer_503() {
    let set = SentinelSet::start().await;
    // Three replicas wanted, two exist: every call waits its ack timeout and is refused. One
    // store call (a read reaching for a session: reads wait for acks too), so that its 503 can
    // only come from the missing acks: it answers after the ack timeout and before the store
    // timeout, which a call that merely hung would reach. `WAIT` blocks the connection it is
    // sent on, so the node's start-up probe (a PING and its WAIT) is let through first.
    let nodes = brokers(&set.store_config(3)).await;
    let http = client();
    let read = || {
        http.get(nodes[0].url("/v1/session"))
            .header("origin", ORIGIN)
            .header(
                "cookie",
                format!("{}={}", baton::cookie::UNPARTITIONED, "a".repeat(43)),
            )
            .send()
    };
    let _ = read().await.expect("send");
    let started = Instant::now();
    let res = read().await.expect("send");
    let took = started.elapsed();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "store_unavailable", "{body}");
    assert!(
        took >= Duration::from_millis(ACK_TIMEOUT_MS)
            && took < Duration::from_millis(STORE_TIMEOUT_MS),
        "took {took:?}"
    );
    // Nor is the node ready: a primary without that many replicas in sync takes no call.
    let ready = http
        .get(nodes[0].url("/readyz"))
        .send()
        .await
        .expect("send");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    drop(nodes);
    // With the two that exist, the same write is acknowledged.
    let nodes = brokers(&set.store_config(2)).await;
    let res = http
        .put(nodes[1].url("/v1/session/k"))
        .header("origin", ORIGIN)
        .json(&json!({ "value": "v" }))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::OK);
}

/// A store on `urls` (a cluster's nodes) under a fresh key prefix.
async fn cluster_store(urls: &[String]) -> Arc<dyn baton::session::SessionStore> {
    let config = baton::session::redis::RedisConfig {
        redis_cluster_nodes: urls.to_vec(),
        redis_prefix: format!("contract:{}:", baton::random::hex_128()),
        ..Default::default()
    };
    Arc::new(
        baton::session::redis::RedisStore::open(&config, crate::store_contract::TIMEOUTS)
            .await
            .expect("open"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_passes_the_store_contract() {
    let cluster = RedisCluster::start().await;
    let urls = cluster.urls();
    crate::store_contract!(@names [@inline] cluster_store(&urls));
}

/// On Cluster, one `sweep` reaches every primary: each is scanned on its own (`SCAN` is per
/// node), not whichever node a keyless command happens to be routed to. Thirty sessions in
/// random slots (their tags are random) land on all three primaries but with odds of about
/// 1 in 65,000; on a fresh cluster each primary's keys fit in one `SCAN` batch, so one sweep
/// must reap them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sweep_reaches_every_cluster_primary() {
    use crate::store_contract::{T0, TIMEOUTS, id};
    let cluster = RedisCluster::start().await;
    let store = cluster_store(&cluster.urls()).await;
    for _ in 0..30 {
        store.create(&id(), T0).await.expect("create");
    }
    let after = T0 + TIMEOUTS.idle_ms;
    assert_eq!(
        store.sweep(after).await.expect("sweep"),
        30,
        "one sweep, every primary"
    );
}

/// On Cluster an id can only join its session's slot: one minted for another slot is refused by
/// the store as the caller's mistake it is, before any script (which Redis would refuse with
/// `CROSSSLOT`), and binds or adopts nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_refuses_an_id_of_another_slot() {
    use crate::store_contract::{T0, id, id_for};
    let cluster = RedisCluster::start().await;
    let store = cluster_store(&cluster.urls()).await;
    let s = store.create(&id(), T0).await.expect("create");
    let stranger = loop {
        let other = id();
        if other.tag() != id_for(&s.uid).tag() {
            break other;
        }
    };
    let refused = |r: Result<String, baton::session::StoreError>| {
        let e = r.expect_err("another slot");
        assert!(e.to_string().contains("another slot"), "{e}");
    };
    refused(
        store
            .bind(&s.uid, &stranger, T0)
            .await
            .map(|b| format!("{b}")),
    );
    refused(
        store
            .adopt(&s.uid, &stranger, &[], T0)
            .await
            .map(|_| "adopted".to_owned()),
    );
    assert!(store.load(&stranger, T0).await.expect("load").is_none());
}

/// Issue 20, finding 6: a whole Cluster down answers like one Redis or Sentinel down, 503
/// `store_unavailable` on every call and `/readyz` 503, never a 500. With every node gone the
/// cluster client has no connection to route to (`ClusterConnectionNotFound`, or an io error
/// while it reconnects): each is "not now", not "broken".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_cluster_down_answers_503_store_unavailable() {
    let mut cluster = RedisCluster::start().await;
    let nodes = brokers(&cluster.store_config(0)).await;
    let http = client();
    let put = |cookie: Option<&str>| {
        let mut req = http
            .put(nodes[0].url("/v1/session/k"))
            .header("origin", ORIGIN)
            .json(&json!({ "value": "v" }));
        if let Some(cookie) = cookie {
            req = req.header("cookie", cookie);
        }
        req.send()
    };
    let res = put(None).await.expect("send");
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = cookies(res.headers());
    for node in &mut cluster.nodes {
        node.kill9();
    }
    // A session's write, a new session, a read and a second round: every one a 503.
    for round in 0..2 {
        for res in [
            put(Some(&cookie)).await.expect("send"),
            put(None).await.expect("send"),
            http.get(nodes[0].url("/v1/session"))
                .header("origin", ORIGIN)
                .header("cookie", &cookie)
                .send()
                .await
                .expect("send"),
        ] {
            let status = res.status();
            let body: Value = res.json().await.expect("json");
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::SERVICE_UNAVAILABLE, Some("store_unavailable")),
                "round {round}: {body}"
            );
        }
        let ready = http
            .get(nodes[0].url("/readyz"))
            .send()
            .await
            .expect("send");
        assert_eq!(
            ready.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "round {round}"
        );
    }
}
