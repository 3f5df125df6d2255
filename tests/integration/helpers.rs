//! Test helpers: boot the real application on port 0 with a controlled clock and talk HTTP to it.
#![allow(dead_code)]

use std::sync::Arc;

use baton::clock::ManualClock;
use baton::config::Config;
pub use baton::cookie::{PARTITIONED, UNPARTITIONED};
use baton::session::SessionStore;
use baton::session::sqlite::SqliteStore;
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
    Config::from_table(text.parse().expect("toml")).expect("valid test config")
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
