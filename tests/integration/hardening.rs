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
    // The 403, 404 and 405 below spend it; the fourth request is over it.
    config.server.rate_limit_per_minute = 3;
    let app = spawn_with(config, ":memory:").await;
    // 403: no CORS (the caller is not trusted), but never cached.
    let res = app.get(EVIL, None).await;
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

/// A session filled to the default limits with values JSON must escape six-fold: its answer is
/// about 6 MB, more than the kernel's socket buffers hold. Gives the cookie header to read it.
pub async fn fill_a_large_session(client: &reqwest::Client, base: &str) -> String {
    let value = "\u{1}".repeat(16384);
    let mut cookie: Option<String> = None;
    for i in 0..64 {
        let mut req = client
            .put(format!("{base}/v1/session/k{i}"))
            .header("origin", SHOP)
            .json(&serde_json::json!({ "value": value }));
        if let Some(c) = &cookie {
            req = req.header("cookie", c);
        }
        let res = req.send().await.expect("send");
        assert_eq!(res.status(), 200, "value {i}");
        if cookie.is_none() {
            cookie = Some(cookie_header(res.headers()));
        }
    }
    cookie.expect("a session")
}

/// A client that asks for the large session and never reads the answer, with a small receive
/// buffer so that the answer waits in the server, not in this socket.
pub async fn slow_reader(addr: std::net::SocketAddr, cookie: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let mut stream = socket.connect(addr).await.expect("connect");
    let head = format!(
        "GET /v1/session HTTP/1.1\r\nHost: x\r\nOrigin: {SHOP}\r\nCookie: {cookie}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream
}

/// The first bytes of the answer (its status line), or nothing when the server closed the
/// connection first: either way the server has dealt with the request.
async fn status_line(stream: &mut TcpStream) -> String {
    let mut buf = [0u8; 12];
    let mut got = 0;
    while got < buf.len() {
        match tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf[got..]))
            .await
            .expect("answered or closed within 30 s")
        {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    String::from_utf8_lossy(&buf[..got]).into_owned()
}

/// `name value` of one sample line of a scrape.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn slow_readers_beyond_max_connections_are_closed_and_fresh_requests_answered() {
    const MAX: usize = 20;
    let config = format!(
        "[server]\npublic_origin = \"http://broker.localhost:9000\"\nrate_limit_per_minute = 0\n\
         max_connections = {MAX}\nheader_timeout_secs = 120\nwrite_timeout_secs = 120\n\
         [trust]\norigins = [\"{SHOP}\"]\n[store]\nsqlite_path = \":memory:\"\n\
         [[handoff.keys]]\nkid = \"k\"\nsecret = \"{}\"\n",
        "A".repeat(43)
    );
    let baton = crate::process::Baton::start(&config, &[]).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let admin = format!("http://{}/metrics", baton.admin.expect("admin listener"));
    let scrape = || async {
        client
            .get(&admin)
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("text")
    };
    let cookie = fill_a_large_session(&client, &baton.url("")).await;
    let before = sample(&scrape().await, "process_open_fds").expect("open fds");

    // Twice the bound of clients that never read a 6 MB answer (timeouts far away: only the
    // bound can close them).
    let mut readers = Vec::new();
    let mut answered = 0;
    for _ in 0..2 * MAX {
        let mut s = slow_reader(baton.addr, &cookie).await;
        if status_line(&mut s).await.starts_with("HTTP/1.1 200") {
            answered += 1;
        }
        readers.push(s);
    }
    assert!(answered > MAX, "the slow readers got answers: {answered}");
    // Fresh requests are answered, and the broker holds at most the bound (and the one it has
    // just accepted) beside what it held before.
    for _ in 0..5 {
        let res = client
            .get(baton.url("/healthz"))
            .send()
            .await
            .expect("fresh");
        assert_eq!(res.status(), 200);
    }
    let after = sample(&scrape().await, "process_open_fds").expect("open fds");
    assert!(
        after <= before + MAX as f64 + 1.0,
        "open files: {before} before, {after} with {} slow readers (bound {MAX})",
        readers.len()
    );
    drop(readers);
}

#[tokio::test]
async fn a_slow_reader_is_closed_after_the_write_timeout() {
    let mut config = test_config();
    config.server.write_timeout_secs = 1;
    config.server.header_timeout_secs = 120;
    config.session.max_value_bytes = 16384;
    config.session.max_values = 64;
    let app = spawn_with(config, ":memory:").await;
    let cookie = fill_a_large_session(&app.client, &app.base).await;
    let mut reader = slow_reader(addr(&app).parse().expect("addr"), &cookie).await;
    assert_eq!(status_line(&mut reader).await, "HTTP/1.1 200");
    // The reader reads nothing more until the server counts the timeout.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = app.metrics().await;
        if sample(
            &metrics,
            r#"baton_connection_events_total{event="write_timeout"}"#,
        ) == Some(1.0)
        {
            break;
        }
        assert!(Instant::now() < deadline, "no write timeout:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Closed: what the kernel buffered arrives, then the end, well short of the 6 MB answer.
    let mut got = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), reader.read(&mut buf))
            .await
            .expect("closed, not kept open")
        {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    assert!(got < 6_000_000, "the whole answer arrived ({got} bytes)");
    app.stop().await;
}

#[tokio::test]
async fn the_rate_limit_covers_refused_origins_preflights_and_pages() {
    let mut config = test_config();
    config.server.rate_limit_per_minute = 3;
    let app = spawn_with(config, ":memory:").await;
    for _ in 0..3 {
        assert_eq!(app.fetch("/iframe.html").await.status(), 200);
    }
    // The health checks are not limited: the load balancer must see a busy node as alive.
    assert_eq!(app.fetch("/healthz").await.status(), 200);
    let refused_origin = app.get(EVIL, None).await;
    assert_eq!(refused_origin.status(), 429, "refused origin");
    assert!(
        refused_origin
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let preflight = app
        .req(Method::OPTIONS, "/v1/session", Some(SHOP), None)
        .header("access-control-request-method", "PUT")
        .send()
        .await
        .expect("send");
    assert_eq!(preflight.status(), 429, "preflight");
    assert_eq!(preflight.headers()["access-control-allow-origin"], SHOP);
    assert_eq!(app.fetch("/iframe.html").await.status(), 429, "page");
    assert_eq!(
        app.fetch("/no-such-page").await.status(),
        429,
        "unknown path"
    );
    let metrics = app.metrics().await;
    assert!(metrics.contains("baton_rate_limited_total 4"), "{metrics}");
    app.stop().await;
}
