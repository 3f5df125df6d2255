//! The server holds under hostile clients: connections that send nothing or half a request are
//! closed, idle connections cannot starve fresh requests of file descriptors, a body declared too
//! large is refused at once, a body that stops arriving gets 408, a stuck store gets a counted
//! 503, the client address behind a proxy follows one rule, and every `/v1` answer carries the
//! same headers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton::session::sqlite::SqliteStore;
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// The broker's address as host:port.
fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (true) or `within` passes (false).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let end = Instant::now() + within;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn silent_and_half_sent_connections_are_closed() {
    let mut config = test_config();
    config.server.header_timeout_secs = 1;
    let app = spawn_with(config, ":memory:").await;
    let mut silent = TcpStream::connect(addr(&app)).await.expect("connect");
    let mut half = TcpStream::connect(addr(&app)).await.expect("connect");
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    assert!(
        closed_within(&mut silent, Duration::from_secs(3)).await,
        "silent"
    );
    assert!(
        closed_within(&mut half, Duration::from_secs(3)).await,
        "half-sent head"
    );

    // A kept-alive connection left idle after a request is closed too.
    let mut kept = TcpStream::connect(addr(&app)).await.expect("connect");
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 512];
    let n = kept.read(&mut buf).await.expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(
        closed_within(&mut kept, Duration::from_secs(3)).await,
        "idle keep-alive"
    );
    app.stop().await;
}

#[tokio::test]
async fn idle_connections_make_room_for_fresh_requests() {
    let mut config = test_config();
    config.server.max_connections = 20;
    config.server.header_timeout_secs = 60;
    // Without room made for it, a fresh request waits until an idle connection times out: the
    // bound below tells the two apart however slow this machine is.
    let well_before_a_timeout = Duration::from_secs(20);
    let app = spawn_with(config, ":memory:").await;
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(addr(&app)).await.expect("connect"));
    }
    // Every slot is held by a connection that sends nothing; a fresh request is still answered,
    // and the longest idle connection is the one closed for it.
    for _ in 0..5 {
        let started = Instant::now();
        let res = app.fetch("/healthz").await;
        assert_eq!(res.status(), 200);
        assert!(
            started.elapsed() < well_before_a_timeout,
            "{:?}",
            started.elapsed()
        );
    }
    assert!(
        closed_within(&mut idle[0], well_before_a_timeout).await,
        "the oldest idle connection made room"
    );
    assert!(
        !closed_within(&mut idle[19], Duration::from_millis(200)).await,
        "the newest idle connection is kept"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_body_declared_too_large_is_refused_at_once() {
    let app = spawn_app().await;
    let mut stream = TcpStream::connect(addr(&app)).await.expect("connect");
    let head = format!(
        "PUT /v1/session/chat HTTP/1.1\r\nHost: x\r\nOrigin: {SHOP}\r\nContent-Type: application/json\r\nContent-Length: 52428800\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    // The body never comes: a server that waited for it would answer 408 at the body timeout, not
    // 413, so the status alone says the refusal came at once.
    let mut buf = vec![0u8; 2048];
    let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
        .await
        .expect("answered without waiting for the body")
        .expect("read");
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("\"too_large\""), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("access-control-allow-origin"),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_408() {
    let mut config = test_config();
    config.server.body_timeout_secs = 1;
    let app = spawn_with(config, ":memory:").await;
    let mut stream = TcpStream::connect(addr(&app)).await.expect("connect");
    let head = format!(
        "PUT /v1/session/chat HTTP/1.1\r\nHost: x\r\nOrigin: {SHOP}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"value\": \""
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 2048];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("answered")
        .expect("read");
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"body_timeout\""), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn a_stuck_store_gets_a_503_that_is_counted_and_carries_the_headers() {
    let mut config = test_config();
    config.server.request_timeout_secs = 1;
    let store = SqliteStore::open(":memory:", config.session.timeouts()).expect("store");
    let app = spawn_with_store(config, Arc::new(Faulty(store, Fault::HangLoads))).await;
    let res = app
        .get(SHOP, Some(&format!("{UNPARTITIONED}={}", "a".repeat(43))))
        .await;
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(error_code(res).await, (503, "store_unavailable".into()));
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("baton_http_responses_total{status=\"503\"} 1"),
        "{metrics}"
    );
    // The call the deadline gave up on was dropped, not failed: no store error is counted for it.
    assert!(
        !metrics.contains("baton_store_errors_total{op=\"load\"}"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_client_not_behind_a_trusted_proxy_cannot_pick_its_address() {
    let mut config = test_config();
    config.server.rate_limit_per_minute = 5;
    config.server.client_ip_header =
        Some(reqwest::header::HeaderName::from_static("x-forwarded-for"));
    // The proxies are elsewhere: this test client (loopback) is not one of them.
    config.server.trusted_proxies = vec!["10.0.0.0/8".parse().expect("net")];
    let app = spawn_with(config, ":memory:").await;
    let mut refused = 0;
    for i in 0..20 {
        let res = app
            .req(Method::GET, "/v1/session", Some(SHOP), None)
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .send()
            .await
            .expect("send");
        if res.status() == 429 {
            refused += 1;
        }
    }
    assert_eq!(
        refused, 15,
        "one budget for the real peer, whatever the header says"
    );
    let metrics = app.metrics().await;
    assert!(metrics.contains("baton_rate_limited_total 15"), "{metrics}");
    app.stop().await;
}

#[tokio::test]
async fn every_v1_answer_has_the_same_cache_and_cors_headers() {
    let mut config = test_config();
    config.server.rate_limit_per_minute = 2;
    let app = spawn_with(config, ":memory:").await;
    // 403: no CORS (the caller is not trusted), but never cached.
    let res = app
        .req(Method::GET, "/v1/session", Some(EVIL), None)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 403);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(res.headers().get("access-control-allow-origin").is_none());
    // 404 (unknown path under /v1), 405 (known path, unknown method), then 429: CORS for the
    // trusted caller, never cached.
    for (method, path, status) in [
        (Method::GET, "/v1/nothing-here", 404),
        (Method::PATCH, "/v1/session", 405),
        (Method::GET, "/v1/session", 429),
    ] {
        let res = app
            .req(method, path, Some(SHOP), None)
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), status);
        let h = res.headers();
        assert_eq!(h["cache-control"], "no-store", "{status}");
        assert_eq!(h["access-control-allow-origin"], SHOP, "{status}");
        assert_eq!(h["access-control-allow-credentials"], "true", "{status}");
        assert_eq!(h["content-type"], "application/json", "{status}");
    }
    app.stop().await;
}
