//! Test helpers: boot the real application on port 0 with a controlled clock and talk HTTP to it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use baton::clock::{ManualClock, Timestamp};
use baton::config::Config;
pub use baton::cookie::{PARTITIONED, UNPARTITIONED};
use baton::session::sqlite::SqliteStore;
use baton::session::{
    AdoptOutcome, IdHash, Jti, Session, SessionStore, SetOutcome, StoreError, SubjectHash, Uid,
};
use reqwest::header::{HeaderMap, SET_COOKIE};

pub const SHOP: &str = "http://shop.localhost:9001";
pub const SUPPORT: &str = "http://support.localhost:9001";
pub const EVIL: &str = "http://evil.localhost:9001";
pub const WILD: &str = "https://*.example.org";
pub const T0: i64 = 1_800_000_000_000;

pub struct TestApp {
    pub base: String,
    /// The admin listener (`/metrics`), when the config has one.
    pub admin: Option<String>,
    pub public_origin: String,
    pub clock: ManualClock,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The config every API test starts from: three trusted origins (two exact, one wildcard),
/// short timeouts and small limits, a fixed handoff key. Tests change fields before `spawn_with`.
pub fn test_config() -> Config {
    Config::from_table(test_config_table()).expect("valid test config")
}

/// `test_config` as a TOML table, for tests that add a section before parsing.
pub fn test_config_table() -> toml::Table {
    let text = format!(
        r#"
        [server]
        listen = "127.0.0.1:0"
        admin_listen = "127.0.0.1:0"
        public_origin = "http://broker.localhost:9000"
        [trust]
        origins = ["{SHOP}", "{SUPPORT}", "{WILD}"]
        [session]
        idle_timeout_secs = 60
        absolute_timeout_secs = 300
        max_value_bytes = 1024
        max_values = 4
        [[handoff.keys]]
        kid = "test"
        secret = "{secret}"
        "#,
        secret = "A".repeat(43)
    );
    text.parse().expect("toml")
}

pub async fn spawn_app() -> TestApp {
    spawn_with(test_config(), ":memory:").await
}

pub async fn spawn_with(config: Config, sqlite_path: &str) -> TestApp {
    let store: Arc<dyn SessionStore> =
        Arc::new(SqliteStore::open(sqlite_path, config.session.timeouts()).expect("store"));
    spawn_with_store(config, store).await
}

/// The app on a store the test made (a wrapper that fails or hangs, say).
pub async fn spawn_with_store(config: Config, store: Arc<dyn SessionStore>) -> TestApp {
    let clock = ManualClock::new(T0);
    let public_origin = config.server.public_origin.to_string();
    let app = baton::Application::build_with(config, store, Arc::new(clock.clone()))
        .await
        .expect("build");
    let base = format!("http://{}", app.local_addr());
    let admin = app.admin_addr().map(|a| format!("http://{a}"));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        app.run_until(async {
            let _ = rx.await;
        })
        .await
        .expect("serve");
    });
    TestApp {
        base,
        admin,
        public_origin,
        clock,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        stop: Some(tx),
        task: Some(task),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A GET of `path` on the broker, to add headers to.
    pub fn at(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }

    /// The admin listener's `/metrics` text.
    pub async fn metrics(&self) -> String {
        let admin = self
            .admin
            .as_deref()
            .expect("the test config has an admin listener");
        self.client
            .get(format!("{admin}/metrics"))
            .send()
            .await
            .expect("send")
            .text()
            .await
            .expect("text")
    }

    /// GETs `path` on the broker with no extra header.
    pub async fn fetch(&self, path: &str) -> reqwest::Response {
        self.at(path).send().await.expect("send")
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        origin: Option<&str>,
        cookie: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut b = self.client.request(method, self.url(path));
        if let Some(o) = origin {
            b = b.header("origin", o);
        }
        if let Some(c) = cookie {
            b = b.header("cookie", c);
        }
        b
    }

    pub async fn put(
        &self,
        key: &str,
        value: &str,
        origin: &str,
        cookie: Option<&str>,
    ) -> reqwest::Response {
        self.req(
            reqwest::Method::PUT,
            &format!("/v1/session/{key}"),
            Some(origin),
            cookie,
        )
        .json(&serde_json::json!({ "value": value }))
        .send()
        .await
        .expect("send")
    }

    pub async fn get(&self, origin: &str, cookie: Option<&str>) -> reqwest::Response {
        self.req(reqwest::Method::GET, "/v1/session", Some(origin), cookie)
            .send()
            .await
            .expect("send")
    }

    /// `DELETE /v1/session/{key}`: removes one value.
    pub async fn delete_value(
        &self,
        key: &str,
        origin: &str,
        cookie: Option<&str>,
    ) -> reqwest::Response {
        self.req(
            reqwest::Method::DELETE,
            &format!("/v1/session/{key}"),
            Some(origin),
            cookie,
        )
        .send()
        .await
        .expect("send")
    }

    /// `DELETE /v1/session`: ends the session everywhere.
    pub async fn end(&self, origin: &str, cookie: Option<&str>) -> reqwest::Response {
        self.req(reqwest::Method::DELETE, "/v1/session", Some(origin), cookie)
            .send()
            .await
            .expect("send")
    }

    /// `POST /v1/handoff`: asks for a token for `audience`.
    pub async fn handoff(
        &self,
        origin: &str,
        cookie: Option<&str>,
        audience: &str,
    ) -> reqwest::Response {
        self.req(reqwest::Method::POST, "/v1/handoff", Some(origin), cookie)
            .json(&serde_json::json!({ "audience": audience }))
            .send()
            .await
            .expect("send")
    }

    /// `POST /v1/handoff/redeem` of `token`, naming the page `page` in the body when given (as
    /// the broker's iframe does) or leaving it out (a trusted page redeeming for itself).
    pub async fn redeem(
        &self,
        origin: &str,
        cookie: Option<&str>,
        token: &str,
        page: Option<&str>,
    ) -> reqwest::Response {
        let body = match page {
            Some(page) => serde_json::json!({ "token": token, "origin": page }),
            None => serde_json::json!({ "token": token }),
        };
        self.req(
            reqwest::Method::POST,
            "/v1/handoff/redeem",
            Some(origin),
            cookie,
        )
        .json(&body)
        .send()
        .await
        .expect("send")
    }
}

pub fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect()
}

/// `name=value` pairs of the Set-Cookie headers, ready for a `Cookie` header.
pub fn cookie_header(headers: &HeaderMap) -> String {
    set_cookies(headers)
        .iter()
        .map(|c| c.split(';').next().expect("pair").to_owned())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Just one of the two cookies, as a browser that keeps only that one would send it.
pub fn only_cookie(headers: &HeaderMap, name: &str) -> String {
    set_cookies(headers)
        .iter()
        .map(|c| c.split(';').next().expect("pair").to_owned())
        .find(|pair| pair.split('=').next() == Some(name))
        .expect("cookie present")
}

pub async fn error_code(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.expect("json error body");
    assert!(body["message"].is_string(), "message missing: {body}");
    (
        status,
        body["error"].as_str().expect("error code").to_owned(),
    )
}

// Processes: a private `redis-server`, signals, bounded waits.

const REDIS_SERVER: &str = "/usr/bin/redis-server";

/// A client for brokers run as processes: no redirects followed, and a bound on every request so
/// that a broker that stopped answering fails the test instead of hanging it.
pub fn process_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub fn signal(child: &std::process::Child, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {sig} {}", child.id());
}

/// Waits (bounded) for `child` to exit and returns whether it exited cleanly.
pub async fn wait_exit(child: &mut std::process::Child, within: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status.success();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("process {} did not exit within {within:?}", child.id());
}

pub fn log_file(dir: &Path, name: &str) -> std::fs::File {
    std::fs::File::options()
        .create(true)
        .append(true)
        .open(dir.join(name))
        .expect("log file")
}

/// A raw `PING`, so readiness of Redis does not depend on the code under test.
pub async fn redis_ping(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(Ok(mut s)) = tokio::time::timeout(
        Duration::from_millis(500),
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    else {
        return false;
    };
    if s.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await {
        Ok(Ok(n)) => buf[..n].starts_with(b"+PONG"),
        _ => false,
    }
}

/// A `redis-server` of the test's own on a free port, with its files (AOF, fsync always, and its
/// log `redis.log`) in `dir`: stopped and started again, it comes back on the same port with
/// every write it acknowledged. Killed when dropped.
pub struct PrivateRedis {
    dir: PathBuf,
    pub port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    pub fn new(dir: &Path) -> Self {
        assert!(
            Path::new(REDIS_SERVER).exists(),
            "{REDIS_SERVER} is missing: install redis-server to run this test"
        );
        Self {
            dir: dir.to_owned(),
            port: free_port(),
            child: None,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts Redis on its port and dir (the same each time, so a restart reloads the AOF) and
    /// waits until it answers PING (not LOADING).
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "redis already running");
        let child = std::process::Command::new(REDIS_SERVER)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--save", ""])
            .stdout(log_file(&self.dir, "redis.log"))
            .stderr(log_file(&self.dir, "redis.log"))
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if redis_ping(self.port).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("redis-server did not answer PING within 10 s");
    }

    /// SIGTERM: Redis flushes its AOF and exits.
    pub async fn stop(&mut self) {
        let mut child = self.child.take().expect("redis running");
        signal(&child, "-TERM");
        assert!(
            wait_exit(&mut child, Duration::from_secs(10)).await,
            "redis exited uncleanly"
        );
    }

    /// Sends `sig` (e.g. `-STOP`, `-CONT`) to the running server.
    pub fn signal(&self, sig: &str) {
        signal(self.child.as_ref().expect("redis running"), sig);
    }

    /// Stops it at once (SIGKILL), if running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A request that reached no session: 204, nothing in the body (having none is a normal state,
/// not an error).
pub async fn assert_no_session(res: reqwest::Response) {
    assert_eq!(res.status(), 204, "no session");
    assert!(res.bytes().await.expect("body").is_empty());
}

/// What a `Faulty` store does instead of its work.
pub enum Fault {
    /// Reads never return: a hung backend.
    HangLoads,
    /// Every call fails with this error (made afresh for each call).
    Fail(fn() -> StoreError),
}

/// A SQLite store with a fault, for what the API does when its store misbehaves.
pub struct Faulty(pub SqliteStore, pub Fault);

impl Faulty {
    fn check(&self) -> Result<(), StoreError> {
        match self.1 {
            Fault::Fail(make) => Err(make()),
            Fault::HangLoads => Ok(()),
        }
    }
}

#[async_trait]
impl SessionStore for Faulty {
    async fn create(&self, id: &IdHash, now: Timestamp) -> Result<Session, StoreError> {
        self.check()?;
        self.0.create(id, now).await
    }
    async fn load(&self, id: &IdHash, now: Timestamp) -> Result<Option<Session>, StoreError> {
        self.check()?;
        if matches!(self.1, Fault::HangLoads) {
            std::future::pending::<()>().await;
        }
        self.0.load(id, now).await
    }
    async fn set_value(
        &self,
        uid: &Uid,
        key: &str,
        value: &str,
        now: Timestamp,
        max_values: usize,
    ) -> Result<SetOutcome, StoreError> {
        self.check()?;
        self.0.set_value(uid, key, value, now, max_values).await
    }
    async fn remove_value(
        &self,
        uid: &Uid,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        self.check()?;
        self.0.remove_value(uid, key, now).await
    }
    async fn end(&self, uid: &Uid) -> Result<(), StoreError> {
        self.check()?;
        self.0.end(uid).await
    }
    async fn bind(&self, uid: &Uid, id: &IdHash, now: Timestamp) -> Result<bool, StoreError> {
        self.check()?;
        self.0.bind(uid, id, now).await
    }
    async fn adopt(
        &self,
        uid: &Uid,
        id: &IdHash,
        reached: &[IdHash],
        now: Timestamp,
    ) -> Result<AdoptOutcome, StoreError> {
        self.check()?;
        self.0.adopt(uid, id, reached, now).await
    }
    async fn put_handoff(&self, jti: &Jti, uid: &Uid, at: Timestamp) -> Result<(), StoreError> {
        self.check()?;
        self.0.put_handoff(jti, uid, at).await
    }
    async fn take_handoff(&self, jti: &Jti, now: Timestamp) -> Result<Option<Uid>, StoreError> {
        self.check()?;
        self.0.take_handoff(jti, now).await
    }
    async fn load_identity(
        &self,
        subject: &SubjectHash,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        self.check()?;
        self.0.load_identity(subject, now).await
    }
    async fn link_identity(
        &self,
        subject: &SubjectHash,
        uid: &Uid,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.check()?;
        self.0.link_identity(subject, uid, now).await
    }
    async fn detach(&self, uid: &Uid) -> Result<(), StoreError> {
        self.check()?;
        self.0.detach(uid).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.check()?;
        self.0.ping().await
    }
    async fn sweep(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.check()?;
        self.0.sweep(now).await
    }
    async fn close(&self) {
        self.0.close().await;
    }
}
