//! `baton-demo`: the broker plus two demo partner sites (a shop and its support site) on one port,
//! so a newcomer sees a chat follow them from one site to the other with a single command. A crate
//! of its own, outside the product: it uses only baton's public API (`Application::build` and
//! `map_router`), so the `baton` binary and its image carry none of this.
//!
//! The three sites are told apart by the `Host` header: `broker.localhost:PORT` is the broker
//! unchanged, `shop.localhost:PORT` and `support.localhost:PORT` are the partner pages (browsers
//! resolve every `*.localhost` name to loopback and treat each as its own site, so this is a real
//! cross-site setup without a hosts file), and any other host gets an index page pointing at the
//! shop. The partner pages use the library exactly as a Genesys page would (`demo.js` fakes the
//! Genesys widgets bus and chat; see its header).
//!
//! The demo's page templates are in `demo/templates/demo/`, its script and style in `demo/assets/`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use tower::ServiceExt;

use baton::Application;
use baton::config::{Config, ConfigErrors};
use baton::startup::StartError;

const DEMO_JS: &str = include_str!("../assets/demo.js");
const DEMO_CSS: &str = include_str!("../assets/demo.css");

/// One of the demo's named sites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    Broker,
    Shop,
    Support,
}

impl Site {
    fn name(self) -> &'static str {
        match self {
            Site::Broker => "broker",
            Site::Shop => "shop",
            Site::Support => "support",
        }
    }
}

/// The demo's host names and origins, which all carry the one port the demo listens on.
#[derive(Debug, Clone)]
pub struct Sites {
    port: u16,
}

impl Sites {
    pub fn new(port: u16) -> Self {
        Self { port }
    }

    /// `http://localhost:PORT`: a host that is none of the sites, so it gets the walkthrough.
    pub fn index_origin(&self) -> String {
        match self.port {
            80 => "http://localhost".into(),
            port => format!("http://localhost:{port}"),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `Host` header a browser sends for `site`, e.g. `shop.localhost:8080` (no port for 80,
    /// which browsers leave out).
    pub fn host(&self, site: Site) -> String {
        match self.port {
            80 => format!("{}.localhost", site.name()),
            port => format!("{}.localhost:{port}", site.name()),
        }
    }

    /// e.g. `http://shop.localhost:8080`, in the canonical form origins are compared in.
    pub fn origin(&self, site: Site) -> String {
        format!("http://{}", self.host(site))
    }

    /// Which site a request is for; `None` for any other host (the index page).
    pub fn site_for(&self, host: &str) -> Option<Site> {
        let host = host.to_ascii_lowercase();
        [Site::Broker, Site::Shop, Site::Support]
            .into_iter()
            .find(|&site| self.host(site) == host)
    }
}

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot find a free port on {addr}: {source}")]
    Port {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("--db: {0} is not valid UTF-8; choose another path")]
    DbPath(PathBuf),
    #[error("invalid demo configuration:\n{0}")]
    Config(ConfigErrors),
    #[error("cannot render the demo pages: {0}")]
    Render(#[from] askama::Error),
    #[error(transparent)]
    Start(#[from] StartError),
}

impl DemoError {
    /// Whether the demo could not listen because something else already does.
    pub fn port_in_use(&self) -> bool {
        let source = match self {
            Self::Port { source, .. } | Self::Start(StartError::Bind { source, .. }) => source,
            _ => return false,
        };
        source.kind() == std::io::ErrorKind::AddrInUse
    }
}

/// The demo, bound and ready to serve (`app.run_until_stopped()`).
pub struct Demo {
    pub app: Application,
    pub sites: Sites,
    /// From config validation, minus what is the demo's own choice (its generated handoff key):
    /// a newcomer running the demo is not deploying anything.
    pub warnings: Vec<String>,
}

/// The broker's config for the demo: the shop and support sites trusted, a throwaway handoff key
/// (never for production: it dies with the process), sessions in SQLite at `db`.
pub fn config(listen: SocketAddr, db: &Path) -> Result<Config, DemoError> {
    let sites = Sites::new(listen.port());
    let db = db
        .to_str()
        .ok_or_else(|| DemoError::DbPath(db.to_owned()))?;
    let text = format!(
        "[server]\nlisten = {listen:?}\npublic_origin = {broker:?}\n\
         [trust]\norigins = [{shop:?}, {support:?}]\n\
         [store]\nbackend = \"sqlite\"\nsqlite_path = {db:?}\n\
         [handoff]\ngenerate_dev_key = true\n",
        listen = listen.to_string(),
        broker = sites.origin(Site::Broker),
        shop = sites.origin(Site::Shop),
        support = sites.origin(Site::Support),
    );
    let table = text
        .parse::<toml::Table>()
        .map_err(|e| DemoError::Config(ConfigErrors(vec![e.to_string()])))?;
    Config::from_table(table).map_err(DemoError::Config)
}

/// Binds `listen` (port 0 picks a free port) and builds the broker with the demo sites around it.
pub async fn build(listen: SocketAddr, db: &Path) -> Result<Demo, DemoError> {
    let listen = resolve_port(listen)?;
    let sites = Sites::new(listen.port());
    let config = config(listen, db)?;
    let warnings = config
        .warnings()
        .into_iter()
        .filter(|w| !w.starts_with("handoff: no keys configured"))
        .collect();
    let pages = Pages::render(&sites)?;
    let app = Application::build(config)
        .await?
        .map_router(|broker| router(broker, &sites, &pages));
    Ok(Demo {
        app,
        sites,
        warnings,
    })
}

/// The sites' origins name the port, and they go into the settings `Application::build` takes
/// before it binds, so port 0 is resolved here first by asking the OS for a free port. Another
/// process could take it in between; `build` then fails with a plain bind error.
fn resolve_port(listen: SocketAddr) -> Result<SocketAddr, DemoError> {
    if listen.port() != 0 {
        return Ok(listen);
    }
    std::net::TcpListener::bind(listen)
        .and_then(|probe| probe.local_addr())
        .map_err(|source| DemoError::Port {
            addr: listen,
            source,
        })
}

/// Where the demo keeps its sessions unless told: `baton-demo/demo.db` in this user's runtime
/// directory (`$XDG_RUNTIME_DIR`), else in a directory `baton-demo-<uid>` of the system's
/// temporary directory that only this user may enter. Not a path shared by every user.
pub fn default_db() -> std::io::Result<PathBuf> {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(runtime) => PathBuf::from(runtime).join("baton-demo"),
        None => std::env::temp_dir().join(format!("baton-demo-{}", user_id())),
    };
    std::fs::create_dir_all(&dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::metadata(&dir)?;
        // Someone else's directory of that name (made first, in a shared /tmp): not ours to use.
        if meta.uid() != user_id() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("{} belongs to another user", dir.display()),
            ));
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(dir.join("demo.db"))
}

/// This process's user id (from `/proc/self`, which the process owns).
fn user_id() -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(meta) = std::fs::metadata("/proc/self") {
            return meta.uid();
        }
    }
    0
}

/// Runs the demo until Ctrl-C. Exit codes as for `baton serve`.
pub fn run(listen: SocketAddr, db: &Path) -> i32 {
    let _logs = baton::telemetry::init(Default::default());
    baton::cli::block_on(async move {
        let demo = match build(listen, db).await {
            Ok(demo) => demo,
            Err(e @ (DemoError::Config(_) | DemoError::DbPath(_))) => {
                eprintln!("baton-demo: {e}");
                return 2;
            }
            Err(e) if e.port_in_use() => {
                eprintln!(
                    "baton-demo: {listen} is already in use (another demo, or another server). Run it on another port: baton-demo --listen 127.0.0.1:8090"
                );
                return 1;
            }
            Err(e) => {
                eprintln!("baton-demo: {e}");
                return 1;
            }
        };
        for warning in &demo.warnings {
            tracing::warn!("{warning}");
        }
        let sites = &demo.sites;
        tracing::info!(
            listen = %demo.app.local_addr(),
            broker = %sites.origin(Site::Broker),
            shop = %sites.origin(Site::Shop),
            support = %sites.origin(Site::Support),
            db = %db.display(),
            "baton demo is listening"
        );
        println!(
            "\nbaton demo: open {}/ for the walkthrough,",
            sites.index_origin()
        );
        println!("or the shop directly: open {}/", sites.origin(Site::Shop));
        println!(
            "Start a chat on the shop, send a message, then follow \"Need help? Visit our support site\": the chat is there. Ctrl-C stops the demo.\n"
        );
        baton::cli::serve_until_stopped(demo.app).await
    })
}

/// The URLs a page template needs.
struct Links {
    shop: String,
    support: String,
    broker: String,
    iframe_url: String,
    provider_url: String,
}

#[derive(Template)]
#[template(path = "demo/shop.html")]
struct ShopHome<'a> {
    l: &'a Links,
}

#[derive(Template)]
#[template(path = "demo/shop_cart.html")]
struct ShopCart<'a> {
    l: &'a Links,
}

#[derive(Template)]
#[template(path = "demo/support.html")]
struct SupportHome<'a> {
    l: &'a Links,
}

#[derive(Template)]
#[template(path = "demo/support_faq.html")]
struct SupportFaq<'a> {
    l: &'a Links,
}

#[derive(Template)]
#[template(path = "demo/index.html")]
struct Index<'a> {
    l: &'a Links,
}

/// Every demo page, rendered once at start (nothing in them varies per request).
pub struct Pages {
    shop: Bytes,
    shop_cart: Bytes,
    support: Bytes,
    support_faq: Bytes,
    index: Bytes,
    partner_csp: HeaderValue,
}

impl Pages {
    pub fn render(sites: &Sites) -> Result<Self, DemoError> {
        let broker = sites.origin(Site::Broker);
        let l = Links {
            shop: sites.origin(Site::Shop),
            support: sites.origin(Site::Support),
            iframe_url: format!("{broker}/iframe.html"),
            provider_url: format!("{broker}/cookie-provider.js"),
            broker,
        };
        // Scripts only from files (the page's own demo.js and the broker's library), frames only
        // from the broker: the pages show that the library needs no inline script or `unsafe-*`.
        let partner_csp = format!(
            "default-src 'none'; script-src 'self' {b}; frame-src {b}; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            b = l.broker
        );
        Ok(Self {
            shop: ShopHome { l: &l }.render()?.into(),
            shop_cart: ShopCart { l: &l }.render()?.into(),
            support: SupportHome { l: &l }.render()?.into(),
            support_faq: SupportFaq { l: &l }.render()?.into(),
            index: Index { l: &l }.render()?.into(),
            // Only origins built from a u16 port: always a valid header value.
            partner_csp: HeaderValue::from_str(&partner_csp)
                .unwrap_or(HeaderValue::from_static("default-src 'none'")),
        })
    }
}

/// Dispatches on the `Host` header: the broker's own host gets `broker` untouched (with its own
/// security headers and CSPs), the partner hosts get their pages, any other host the index.
pub fn router(broker: Router, sites: &Sites, pages: &Pages) -> Router {
    let html = "text/html; charset=utf-8";
    let css = || file(DEMO_CSS, "text/css; charset=utf-8");
    // Browsers ask every site for one (the CSPs allow `img-src 'self'` for it, or Firefox reports
    // the request as a violation); an empty answer keeps 404s out of the console.
    let favicon = || get(|| async { StatusCode::NO_CONTENT });
    let assets = || {
        Router::new()
            .route("/demo.js", file(DEMO_JS, "text/javascript; charset=utf-8"))
            .route("/demo.css", css())
            .route("/favicon.ico", favicon())
    };
    // A site: its pages, a plain 404 for anything else, and the headers on every answer.
    let site = |router: Router, csp: &HeaderValue| {
        let csp = csp.clone();
        router
            .fallback(|| async { (StatusCode::NOT_FOUND, "not found") })
            .layer(middleware::map_response(move |res: Response| {
                let csp = csp.clone();
                async move { with_headers(res, csp) }
            }))
    };
    let shop = site(
        assets()
            .route("/", file(pages.shop.clone(), html))
            .route("/cart", file(pages.shop_cart.clone(), html)),
        &pages.partner_csp,
    );
    let support = site(
        assets()
            .route("/", file(pages.support.clone(), html))
            .route("/faq", file(pages.support_faq.clone(), html)),
        &pages.partner_csp,
    );
    let index = site(
        Router::new()
            .route("/", file(pages.index.clone(), html))
            .route("/demo.css", css())
            .route("/favicon.ico", favicon()),
        &HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    let sites = sites.clone();
    Router::new().fallback(move |req: Request| {
        let host = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                req.headers()
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        let target = match sites.site_for(&host) {
            Some(Site::Broker) => broker.clone(),
            Some(Site::Shop) => shop.clone(),
            Some(Site::Support) => support.clone(),
            None => index.clone(),
        };
        async move {
            match target.oneshot(req).await {
                Ok(res) => res,
                Err(never) => match never {},
            }
        }
    })
}

fn file(body: impl Into<Bytes>, content_type: &'static str) -> MethodRouter {
    let body = body.into();
    get(move || {
        let body = body.clone();
        async move { ([(header::CONTENT_TYPE, content_type)], body).into_response() }
    })
}

/// The headers the broker's middleware gives its own responses, for the demo's pages.
fn with_headers(mut res: Response, csp: HeaderValue) -> Response {
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, csp);
    baton::routes::base_headers(h);
    // The pages are small and the port may change between runs: always revalidate.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_exactly_with_their_port() {
        let sites = Sites::new(8080);
        assert_eq!(sites.site_for("shop.localhost:8080"), Some(Site::Shop));
        assert_eq!(
            sites.site_for("SUPPORT.localhost:8080"),
            Some(Site::Support)
        );
        assert_eq!(sites.site_for("broker.localhost:8080"), Some(Site::Broker));
        for other in [
            "shop.localhost",
            "shop.localhost:8081",
            "127.0.0.1:8080",
            "localhost:8080",
            "evil.shop.localhost:8080",
            "",
        ] {
            assert_eq!(sites.site_for(other), None, "{other}");
        }
        assert_eq!(Sites::new(80).host(Site::Shop), "shop.localhost");
    }

    #[test]
    fn config_trusts_both_sites_and_warns_about_the_dev_key() {
        let config =
            config("127.0.0.1:8080".parse().expect("addr"), Path::new("x.db")).expect("valid");
        assert_eq!(
            config.server.public_origin.as_str(),
            "http://broker.localhost:8080"
        );
        assert_eq!(
            config.trust.origins.to_strings(),
            [
                "http://shop.localhost:8080",
                "http://support.localhost:8080"
            ]
        );
        assert!(config.handoff.uses_dev_key(&config.server.public_origin));
        let warnings = config.warnings();
        assert!(
            warnings.iter().any(|w| w.contains("development key")),
            "{warnings:?}"
        );
    }
}
