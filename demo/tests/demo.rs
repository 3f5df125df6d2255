//! `baton demo` as a black box: the real demo on port 0, spoken to over HTTP with the `Host`
//! header a browser would send (the system resolver does not know `*.localhost`; browsers do).

use baton_demo::{Site, Sites};
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST, X_CONTENT_TYPE_OPTIONS};

struct RunningDemo {
    base: String,
    sites: Sites,
    client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

async fn spawn_demo() -> RunningDemo {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = baton_demo::build(
        "127.0.0.1:0".parse().expect("addr"),
        &dir.path().join("demo.db"),
    )
    .await
    .expect("demo starts");
    // The demo's own development key is its choice, not a production problem to warn about.
    assert!(demo.warnings.is_empty(), "{:?}", demo.warnings);
    let base = format!("http://{}", demo.app.local_addr());
    let sites = demo.sites.clone();
    assert_eq!(sites.port(), demo.app.port());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(demo.app.run_until(async {
        let _ = rx.await;
    }));
    RunningDemo {
        base,
        sites,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        stop: Some(tx),
        _dir: dir,
    }
}

impl RunningDemo {
    /// GET `path` as a browser asking for `host` would.
    async fn get(&self, host: &str, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .header(HOST, host)
            .send()
            .await
            .expect("send")
    }

    async fn get_site(&self, site: Site, path: &str) -> reqwest::Response {
        self.get(&self.sites.host(site), path).await
    }
}

impl Drop for RunningDemo {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

fn header(res: &reqwest::Response, name: reqwest::header::HeaderName) -> String {
    res.headers()
        .get(&name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .to_str()
        .expect("ascii")
        .to_owned()
}

#[tokio::test]
async fn broker_host_serves_the_broker_trusting_both_partner_sites() {
    let demo = spawn_demo().await;
    let res = demo.get_site(Site::Broker, "/iframe.html").await;
    assert_eq!(res.status(), 200);
    let csp = header(&res, CONTENT_SECURITY_POLICY);
    let ancestors = csp
        .split(';')
        .map(str::trim)
        .find_map(|d| d.strip_prefix("frame-ancestors "))
        .unwrap_or_else(|| panic!("no frame-ancestors in {csp}"));
    let mut ancestors: Vec<&str> = ancestors.split_whitespace().collect();
    ancestors.sort();
    assert_eq!(
        ancestors,
        [
            demo.sites.origin(Site::Shop).as_str(),
            demo.sites.origin(Site::Support).as_str()
        ]
    );
    let body = res.text().await.expect("body");
    assert!(body.contains(&demo.sites.origin(Site::Shop)), "{body}");

    let res = demo.get_site(Site::Broker, "/cookie-provider.js").await;
    assert_eq!(res.status(), 200);
    let js = res.text().await.expect("body");
    assert!(js.contains("initCookieProviderExtension"));

    let res = demo.get_site(Site::Broker, "/healthz").await;
    assert_eq!(res.status(), 200);
    // The broker's own routes only: no demo page leaks onto its host.
    assert_eq!(demo.get_site(Site::Broker, "/").await.status(), 404);
    assert_eq!(demo.get_site(Site::Broker, "/demo.js").await.status(), 404);
}

#[tokio::test]
async fn partner_hosts_serve_their_pages_with_the_brokers_library() {
    let demo = spawn_demo().await;
    let broker = demo.sites.origin(Site::Broker);
    for (site, paths, marker) in [
        (Site::Shop, ["/", "/cart"], "Kettle &amp; Co."),
        (Site::Support, ["/", "/faq"], "Help Center"),
    ] {
        for path in paths {
            let res = demo.get_site(site, path).await;
            assert_eq!(res.status(), 200, "{site:?} {path}");
            assert!(header(&res, CONTENT_TYPE).starts_with("text/html"));
            assert_eq!(header(&res, X_CONTENT_TYPE_OPTIONS), "nosniff");
            let csp = header(&res, CONTENT_SECURITY_POLICY);
            for directive in [
                "default-src 'none'".to_owned(),
                format!("script-src 'self' {broker}"),
                format!("frame-src {broker}"),
                "frame-ancestors 'none'".to_owned(),
            ] {
                assert!(csp.contains(&directive), "{site:?} {path}: {csp}");
            }
            assert!(!csp.contains("unsafe"), "{csp}");
            let html = res.text().await.expect("body");
            assert!(html.contains(marker), "{site:?} {path}");
            assert!(
                html.contains(&format!(
                    "<script src=\"{broker}/cookie-provider.js\"></script>"
                )),
                "{html}"
            );
            assert!(html.contains("<script src=\"/demo.js\"></script>"));
            assert!(html.contains(&format!("data-iframe-url=\"{broker}/iframe.html\"")));
            // CSP-clean: no inline script, only data and external files.
            assert_eq!(html.matches("<script").count(), 2, "{html}");
        }
        let res = demo.get_site(site, "/demo.js").await;
        assert_eq!(res.status(), 200);
        assert!(header(&res, CONTENT_TYPE).starts_with("text/javascript"));
        assert_eq!(header(&res, X_CONTENT_TYPE_OPTIONS), "nosniff");
        let js = res.text().await.expect("body");
        assert!(js.contains("initCookieProviderExtension(NAME, IFRAME_URL"));
        let res = demo.get_site(site, "/demo.css").await;
        assert_eq!(res.status(), 200);
        assert!(header(&res, CONTENT_TYPE).starts_with("text/css"));
        // The partner sites do not serve the broker's API.
        let res = demo.get_site(site, "/v1/session").await;
        assert_eq!(res.status(), 404);
        assert!(res.headers().contains_key(CONTENT_SECURITY_POLICY));
    }

    let shop = demo
        .get_site(Site::Shop, "/")
        .await
        .text()
        .await
        .expect("body");
    assert!(shop.contains(&format!(
        "href=\"{}/\">Visit our support site</a>",
        demo.sites.origin(Site::Support)
    )));
    let support = demo
        .get_site(Site::Support, "/")
        .await
        .text()
        .await
        .expect("body");
    assert!(support.contains(&format!(
        "href=\"{}/\">Back to the shop</a>",
        demo.sites.origin(Site::Shop)
    )));
}

#[tokio::test]
async fn any_other_host_gets_the_index_pointing_at_the_shop() {
    let demo = spawn_demo().await;
    let port = demo.sites.port();
    let shop = format!("{}/", demo.sites.origin(Site::Shop));
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        // Exact names only: the port is part of the match.
        "shop.localhost".to_owned(),
        format!("shop.localhost:{}", port.wrapping_add(1)),
        format!("evil.shop.localhost:{port}"),
    ] {
        let res = demo.get(&host, "/").await;
        assert_eq!(res.status(), 200, "{host}");
        assert_eq!(header(&res, X_CONTENT_TYPE_OPTIONS), "nosniff");
        let csp = header(&res, CONTENT_SECURITY_POLICY);
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        let html = res.text().await.expect("body");
        assert!(html.contains(&format!("href=\"{shop}\"")), "{host}: {html}");
        assert!(!html.contains("<script"), "{host}");
    }
    // Hosts compare case-insensitively, as DNS names do.
    let res = demo.get(&format!("SHOP.localhost:{port}"), "/cart").await;
    assert_eq!(res.status(), 200);
    // The broker's paths exist only on the broker's host.
    let res = demo.get(&format!("127.0.0.1:{port}"), "/iframe.html").await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn a_port_in_use_says_so() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dir = tempfile::tempdir().expect("tempdir");
    let err = baton_demo::build(
        taken.local_addr().expect("addr"),
        &dir.path().join("demo.db"),
    )
    .await
    .err()
    .expect("the port is taken");
    assert!(err.port_in_use(), "{err}");
}

#[test]
fn the_default_database_is_this_users_own() {
    let db = baton_demo::default_db().expect("a directory");
    let dir = db.parent().expect("in a directory");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
    }
    assert_ne!(
        db,
        std::env::temp_dir().join("baton-demo.db"),
        "not one path for every user"
    );
}
