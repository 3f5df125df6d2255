//! The soak: two broker nodes on one Redis (AOF, fsync always) for 60 s of mixed traffic while
//! 2,000 idle connections press on node A, which runs under a 1,024 open-file limit, clients that
//! ask node A for a 6 MB session and never read it arrive four a second, requests with made-up
//! 4 KB methods arrive twenty a second, and the store and the nodes fail in turn: Redis paused
//! (SIGSTOP) for 3 s, Redis stopped and started again, node B killed with SIGKILL and started
//! again.
//!
//! It holds when: no acknowledged write is lost (every session reads back at least its last
//! acknowledged value, through both nodes); every answer is a success or, during a fault, a clean
//! `503 store_unavailable` (or, for the killed node only, a refused connection); a fresh request to
//! node A is answered quickly throughout, idle connections, slow readers or not; node A's memory
//! is flat and stays within a generous bound of where it started (every unread answer held for
//! ever would pass it within seconds), and its metrics scrape stays small.
//! `BATON_SOAK_SECS` shortens or lengthens it (default 60). The figures are printed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::helpers::PrivateRedis;
use crate::process::Baton;

const SHOP: &str = "http://shop.localhost:9001";
const IDLE: usize = 2000;
const NOFILE: u64 = 1024;
const WRITERS: usize = 16;

fn config(redis: &str) -> String {
    format!(
        "[server]\npublic_origin = \"http://broker.localhost:9000\"\nrate_limit_per_minute = 0\nheader_timeout_secs = 30\nwrite_timeout_secs = 5\n\
         [trust]\norigins = [\"{SHOP}\"]\n\
         [store]\nbackend = \"redis\"\nredis_url = \"{redis}\"\nredis_prefix = \"soak:\"\ntimeout_ms = 500\n\
         [[handoff.keys]]\nkid = \"k\"\nsecret = \"{}\"\n",
        "A".repeat(43)
    )
}

/// What the traffic saw, by kind.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    unavailable: AtomicU64,
    refused_by_dead_node: AtomicU64,
    unexpected: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    fn unexpected(&self, what: String) {
        self.unexpected.lock().expect("tally").push(what);
    }
}

/// The nodes' current addresses (node B's changes when it is started again).
struct Nodes {
    a: String,
    b: Mutex<String>,
    b_down: AtomicBool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_seconds_of_traffic_idle_connections_and_faults_lose_nothing() {
    let secs: u64 = std::env::var("BATON_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    // The test holds 2,000 connections itself.
    rlimit::increase_nofile_limit(8192).expect("raise the test's own open-file limit");
    let dir = tempfile::tempdir().expect("dir");
    let mut redis = PrivateRedis::new(dir.path());
    redis.start().await;
    let config = config(&redis.url());
    let node_a = Baton::start_limited(&config, &[], Some(NOFILE)).await;
    let mut node_b = Baton::start(&config, &[]).await;
    let nodes = Arc::new(Nodes {
        a: node_a.url(""),
        b: Mutex::new(node_b.url("")),
        b_down: AtomicBool::new(false),
    });
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");

    // The session the slow readers ask for: about 6 MB of answer.
    let large = crate::hardening::fill_a_large_session(&client, &nodes.a).await;

    // Writers: each its own session, alternating nodes, writing an increasing counter.
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (client, nodes, tally, stop) =
            (client.clone(), nodes.clone(), tally.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut cookie: Option<String> = None;
            let mut acked = 0u64;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let on_b = n % 2 == 0;
                let base = if on_b {
                    nodes.b.lock().await.clone()
                } else {
                    nodes.a.clone()
                };
                let mut req = client
                    .put(format!("{base}/v1/session/n"))
                    .header("origin", SHOP)
                    .json(&serde_json::json!({ "value": n.to_string() }));
                if let Some(c) = &cookie {
                    req = req.header("cookie", c);
                }
                match req.send().await {
                    Ok(res) if res.status() == 200 => {
                        tally.ok.fetch_add(1, Ordering::Relaxed);
                        if cookie.is_none() {
                            let pairs: Vec<String> = res
                                .headers()
                                .get_all("set-cookie")
                                .iter()
                                .filter_map(|v| {
                                    v.to_str().ok()?.split(';').next().map(str::to_owned)
                                })
                                .collect();
                            cookie = Some(pairs.join("; "));
                        }
                        acked = n;
                    }
                    Ok(res) if res.status() == 503 => {
                        tally.unavailable.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Ok(res) => tally.unexpected(format!("writer {w}: {}", res.status())),
                    // Refused by the killed node: sent while it was down, or sent to it before
                    // it died (its address is no longer node B's), whenever the refusal arrives.
                    Err(e) if on_b => {
                        let killed =
                            nodes.b_down.load(Ordering::Relaxed) || *nodes.b.lock().await != base;
                        if killed {
                            tally.refused_by_dead_node.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        } else {
                            tally.unexpected(format!("writer {w}: {e}"));
                        }
                    }
                    Err(e) => tally.unexpected(format!("writer {w}: {e}")),
                }
            }
            (cookie, acked)
        }));
    }

    // Idle connections to node A: opened, held, opened again when the node closes them.
    let addr_a = node_a.addr;
    let idle = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut held: Vec<TcpStream> = Vec::with_capacity(IDLE);
            let mut opened = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Closed by the node (a read gives end of file or an error): let it go, open
                // another in its place.
                held.retain(|s| {
                    let mut buf = [0u8; 1];
                    match s.try_read(&mut buf) {
                        Ok(0) => false,
                        Ok(_) => true,
                        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
                    }
                });
                while held.len() < IDLE {
                    match TcpStream::connect(addr_a).await {
                        Ok(s) => {
                            held.push(s);
                            opened += 1;
                        }
                        Err(_) => break,
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            opened
        })
    };

    // Slow readers: four a second ask node A for the large session and never read; the test keeps
    // every one open on its side.
    let slow = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                held.push(crate::hardening::slow_reader(addr_a, &large).await);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            held.len()
        })
    };

    // Made-up methods: a new 4 KB one twenty times a second; each must get an answer.
    let odd = {
        let (client, nodes, stop, tally) =
            (client.clone(), nodes.clone(), stop.clone(), tally.clone());
        tokio::spawn(async move {
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let method = format!("M{sent}{}", "X".repeat(4000));
                let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a token");
                match client
                    .request(method, format!("{}/v1/session", nodes.a))
                    .header("origin", SHOP)
                    .send()
                    .await
                {
                    Ok(res) if res.status() == 405 => {}
                    Ok(res) => tally.unexpected(format!("made-up method: {}", res.status())),
                    Err(e) => tally.unexpected(format!("made-up method: {e}")),
                }
                sent += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            sent
        })
    };

    // Probes: a fresh connection and request to node A every 100 ms.
    let probes = {
        let (nodes, stop, tally) = (nodes.clone(), stop.clone(), tally.clone());
        tokio::spawn(async move {
            let mut took = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let fresh = reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .expect("client");
                let started = Instant::now();
                match fresh.get(format!("{}/healthz", nodes.a)).send().await {
                    Ok(res) if res.status() == 200 => took.push(started.elapsed()),
                    Ok(res) => tally.unexpected(format!("probe: {}", res.status())),
                    Err(e) => tally.unexpected(format!("probe: {e}")),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            took
        })
    };

    // Faults, and node A's memory every second.
    let started = Instant::now();
    let at = |fraction: f64| Duration::from_secs_f64(secs as f64 * fraction);
    let mut rss = Vec::new();
    let mut step = 0;
    while started.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss.push(node_a.rss_kib());
        let t = started.elapsed();
        match step {
            0 if t >= at(0.2) => {
                redis.signal("-STOP");
                tokio::time::sleep(Duration::from_secs(3)).await;
                redis.signal("-CONT");
                step += 1;
            }
            1 if t >= at(0.4) => {
                redis.stop().await;
                tokio::time::sleep(Duration::from_secs(3)).await;
                redis.start().await;
                step += 1;
            }
            2 if t >= at(0.6) => {
                nodes.b_down.store(true, Ordering::Relaxed);
                node_b.kill9();
                tokio::time::sleep(Duration::from_secs(2)).await;
                node_b = Baton::start(&config, &[]).await;
                *nodes.b.lock().await = node_b.url("");
                nodes.b_down.store(false, Ordering::Relaxed);
                step += 1;
            }
            _ => {}
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut sessions = Vec::new();
    for w in writers {
        sessions.push(w.await.expect("writer"));
    }
    let opened = idle.await.expect("idle");
    let slow_readers = slow.await.expect("slow readers");
    let odd_methods = odd.await.expect("made-up methods");
    let scrape = client
        .get(format!(
            "http://{}/metrics",
            node_a.admin.expect("an admin listener")
        ))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    let mut took = probes.await.expect("probes");
    assert_eq!(step, 3, "every fault ran");

    // No acknowledged write lost: read back through both nodes.
    let mut checked = 0;
    for (cookie, acked) in &sessions {
        let cookie = cookie.as_deref().expect("every writer got a write in");
        for base in [nodes.a.clone(), nodes.b.lock().await.clone()] {
            let body: serde_json::Value = client
                .get(format!("{base}/v1/session"))
                .header("origin", SHOP)
                .header("cookie", cookie)
                .send()
                .await
                .expect("read back")
                .json()
                .await
                .expect("json");
            let stored: u64 = body["values"]["n"]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no value: {body}"));
            assert!(stored >= *acked, "acknowledged {acked}, stored {stored}");
            checked += 1;
        }
    }

    took.sort();
    let pct = |p: f64| took[((took.len() - 1) as f64 * p) as usize];
    let third = rss.len() / 3;
    let (middle, last) = (&rss[third..2 * third], &rss[2 * third..]);
    let peak = |xs: &[u64]| xs.iter().copied().max().unwrap_or(0);
    println!(
        "soak {secs} s: {} writes acknowledged, {} clean 503s during faults, {} refused by the killed node; \
         {checked} sessions read back on both nodes; {opened} idle connections opened against node A (limit {NOFILE} files); \
         {slow_readers} slow readers and {odd_methods} made-up methods against node A, its scrape {} bytes; \
         {} probes of node A: p50 {:?}, p99 {:?}, max {:?}; node A RSS {} -> {} KiB (max {})",
        tally.ok.load(Ordering::Relaxed),
        tally.unavailable.load(Ordering::Relaxed),
        tally.refused_by_dead_node.load(Ordering::Relaxed),
        scrape.len(),
        took.len(),
        pct(0.5),
        pct(0.99),
        took.last().copied().unwrap_or_default(),
        rss.first().copied().unwrap_or(0),
        rss.last().copied().unwrap_or(0),
        peak(&rss),
    );
    let unexpected = tally.unexpected.lock().expect("tally").clone();
    assert!(unexpected.is_empty(), "unexpected answers: {unexpected:?}");
    assert!(
        tally.ok.load(Ordering::Relaxed) > 100 * secs,
        "too little traffic to mean anything"
    );
    assert!(opened >= IDLE as u64, "the idle connections were held");
    // A starved connection waits for the 30 s header timeout; a fifth of it tells the two apart on
    // any machine.
    assert!(
        pct(0.99) < Duration::from_secs(6),
        "fresh requests answered, not starved: p99 {:?}",
        pct(0.99)
    );
    assert!(slow_readers as u64 >= 2 * secs, "the slow readers came");
    assert!(odd_methods >= 5 * secs, "the made-up methods came");
    // Unread answers held for ever would pass this within seconds (6 MB each, four a second).
    let start = rss.first().copied().unwrap_or(0);
    assert!(
        peak(&rss) <= start + 256 * 1024,
        "memory bounded: {start} KiB at the start, peak {} KiB",
        peak(&rss)
    );
    assert!(
        scrape.len() < 100_000 && !scrape.contains("XXXX"),
        "the label set stayed fixed: a {} byte scrape",
        scrape.len()
    );
    assert!(
        peak(last) as f64 <= peak(middle) as f64 * 1.10,
        "memory flat: middle third peaked at {} KiB, last third at {} KiB",
        peak(middle),
        peak(last)
    );
}
