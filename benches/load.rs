//! Load benchmark: prints figures, asserts nothing about speed (targets are read, not enforced).
//!
//! `cargo bench --bench load` starts the real application in-process on port 0 with a SQLite file
//! (or Redis with `BATON_BENCH_REDIS=redis://127.0.0.1:6379`), then runs a bounded number of
//! requests from concurrent clients over loopback: session creation (PUT without a cookie) and
//! reads (GET with one), and prints requests per second, latency percentiles and the process's
//! resident memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton::clock::SystemClock;
use baton::config::Config;

const ORIGIN: &str = "http://shop.localhost:9001";
const CLIENTS: usize = 32;
const SESSIONS_PER_CLIENT: usize = 100;
const READS_PER_SESSION: usize = 10;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, mut lat: Vec<Duration>, wall: Duration) {
    lat.sort();
    println!(
        "{name:>8}: {:>6} requests in {:>6.2} s = {:>8.0} req/s; p50 {:>6.2} ms, p99 {:>6.2} ms, max {:>6.2} ms",
        lat.len(),
        wall.as_secs_f64(),
        lat.len() as f64 / wall.as_secs_f64(),
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = match std::env::var("BATON_BENCH_REDIS") {
        Ok(url) => format!(
            "backend = \"redis\"\nredis_url = {url:?}\nredis_prefix = \"baton-bench-{}:\"",
            std::process::id()
        ),
        Err(_) => format!(
            "backend = \"sqlite\"\nsqlite_path = {:?}",
            dir.path().join("bench.db").display().to_string()
        ),
    };
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nrate_limit_per_minute = 0\n[trust]\norigins = [{ORIGIN:?}]\n[store]\n{store}\n"
    );
    let config = Config::from_table(text.parse().expect("toml")).expect("config");
    let backend = format!("{:?}", config.store);
    let store = config
        .store
        .open(config.session.timeouts())
        .await
        .expect("store");
    let app = baton::Application::build_with(config, store, Arc::new(SystemClock))
        .await
        .expect("build");
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    let rss_start = rss_kib();
    println!("baton load benchmark: {CLIENTS} clients over loopback, store {backend}");

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .expect("client");
    let start = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (client, base) = (client.clone(), base.clone());
            tokio::spawn(async move {
                let (mut writes, mut cookies) = (Vec::new(), Vec::new());
                for s in 0..SESSIONS_PER_CLIENT {
                    let t = Instant::now();
                    let res = client
                        .put(format!("{base}/v1/session/chat"))
                        .header("origin", ORIGIN)
                        .json(&serde_json::json!({ "value": format!("client {c} session {s} {}", "x".repeat(200)) }))
                        .send()
                        .await
                        .expect("put");
                    assert_eq!(res.status(), 200);
                    let cookie = res
                        .headers()
                        .get_all("set-cookie")
                        .iter()
                        .map(|v| v.to_str().expect("ascii").split(';').next().expect("pair").to_owned())
                        .collect::<Vec<_>>()
                        .join("; ");
                    res.bytes().await.expect("body");
                    writes.push(t.elapsed());
                    cookies.push(cookie);
                }
                (writes, cookies)
            })
        })
        .collect();
    let mut writes = Vec::new();
    let mut all_cookies = Vec::new();
    for t in tasks {
        let (w, c) = t.await.expect("join");
        writes.extend(w);
        all_cookies.push(c);
    }
    report("create", writes, start.elapsed());

    let start = Instant::now();
    let tasks: Vec<_> = all_cookies
        .into_iter()
        .map(|cookies| {
            let (client, base) = (client.clone(), base.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                for _ in 0..READS_PER_SESSION {
                    for cookie in &cookies {
                        let t = Instant::now();
                        let res = client
                            .get(format!("{base}/v1/session"))
                            .header("origin", ORIGIN)
                            .header("cookie", cookie)
                            .send()
                            .await
                            .expect("get");
                        assert_eq!(res.status(), 200);
                        res.bytes().await.expect("body");
                        lat.push(t.elapsed());
                    }
                }
                lat
            })
        })
        .collect();
    let mut reads = Vec::new();
    for t in tasks {
        reads.extend(t.await.expect("join"));
    }
    report("read", reads, start.elapsed());
    println!(
        "  memory: resident {} MiB at start, {} MiB after {} sessions (client and server in one process)",
        rss_start / 1024,
        rss_kib() / 1024,
        CLIENTS * SESSIONS_PER_CLIENT
    );
}
