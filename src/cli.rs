//! The command line: `serve`, `check-config`, `check-origin`, `keygen`. `main` only parses
//! arguments and calls `run`, so every command is testable as a library call. (The demo is its
//! own binary, `baton-demo`, outside the product.)

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Parser, Subcommand};
use serde_json::json;

use crate::config::{Config, ConfigErrors};

#[derive(Parser, Debug)]
#[command(
    name = "baton",
    version,
    about = "Cross-domain session persistence broker"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the broker.
    Serve {
        /// TOML config file; without it, safe development defaults (trusting no origin).
        #[arg(long, env = "BATON_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on, overriding server.listen.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Validate a config file and explain every problem, each with its key and where its value
    /// came from (file line or environment variable); exit 2 on error.
    CheckConfig {
        /// The TOML config file to check, with the BATON_* overrides of this environment.
        #[arg(long, env = "BATON_CONFIG")]
        config: PathBuf,
    },
    /// Print whether each origin is allowed by the config's trusted origins.
    /// With `-`, read a JSON array of strings on stdin and print a JSON array.
    CheckOrigin {
        /// The TOML config file whose [trust] origins decide.
        #[arg(long, env = "BATON_CONFIG")]
        config: PathBuf,
        /// Origins to check, as a browser would send them (e.g. https://shop.example.com), or `-`.
        #[arg(required = true, allow_hyphen_values = true)]
        origins: Vec<String>,
    },
    /// Exit 0 when the broker at URL is ready (GET answers 200 within 2 s), else 1: for container
    /// health checks, where there is no curl.
    Healthcheck {
        /// The readiness URL to ask (plain http).
        #[arg(long, default_value = "http://127.0.0.1:8080/readyz")]
        url: String,
    },
    /// Print a new handoff signing key to add to [handoff] keys.
    Keygen,
    /// Print the partner script's URLs, its versioned URL's Subresource Integrity value and a
    /// ready `<script>` element for partner pages.
    Assets {
        /// The TOML config file (for the public origin); without it, the development default.
        #[arg(long, env = "BATON_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn env_vars() -> Vec<(String, String)> {
    std::env::vars().collect()
}

/// Exit codes: 0 fine, 1 runtime failure, 2 bad config or usage.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Serve { config, listen } => serve(config, listen),
        Command::CheckConfig { config } => check_config(&config),
        Command::CheckOrigin { config, origins } => check_origin(&config, &origins),
        Command::Keygen => {
            println!("{}", keygen());
            0
        }
        Command::Healthcheck { url } => match block_on(async { i32::from(!ready(&url).await) }) {
            0 => 0,
            _ => {
                eprintln!("baton: {url} is not ready");
                1
            }
        },
        Command::Assets { config } => match load_config(config.as_deref(), None) {
            Ok(config) => {
                println!("{}", assets_report(&config.server.public_origin));
                0
            }
            Err(errors) => {
                eprintln!("baton: invalid configuration:\n{errors}");
                2
            }
        },
    }
}

/// The config `serve` runs on: the file (or, without one, the development defaults: a
/// throwaway handoff key unless keys are given), the `BATON_*` overrides, then `--listen`.
pub fn load_config(
    path: Option<&std::path::Path>,
    listen: Option<SocketAddr>,
) -> Result<Config, ConfigErrors> {
    Config::load_with(path, env_vars(), |table| {
        if path.is_none() {
            let handoff = table
                .entry("handoff")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let Some(h) = handoff.as_table_mut() {
                h.entry("generate_dev_key").or_insert(true.into());
            }
        }
        if let Some(listen) = listen {
            let server = table
                .entry("server")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let Some(s) = server.as_table_mut() {
                s.insert("listen".into(), listen.to_string().into());
            }
        }
    })
}

fn serve(path: Option<PathBuf>, listen: Option<SocketAddr>) -> i32 {
    let _logs = crate::telemetry::init(Config::peek_log_format(path.as_deref(), env_vars()));
    let config = match load_config(path.as_deref(), listen) {
        Ok(c) => c,
        Err(errors) => {
            for problem in &errors.0 {
                tracing::error!(%problem, "invalid configuration");
            }
            return 2;
        }
    };
    block_on(async move {
        for warning in config.warnings() {
            tracing::warn!("{warning}");
        }
        let trusted = config.trust.origins.to_strings();
        let store = format!("{:?}", config.store);
        let public_origin = config.server.public_origin.clone();
        let app = match crate::Application::build(config).await {
            Ok(app) => app,
            Err(e) => {
                tracing::error!(error = %e, "cannot start");
                return 1;
            }
        };
        tracing::info!(
            listen = %app.local_addr(),
            admin = %app.admin_addr().map(|a| a.to_string()).unwrap_or_default(),
            public_origin = %public_origin,
            trusted = ?trusted,
            store = %store,
            "baton is listening"
        );
        serve_until_stopped(app).await
    })
}

/// Runs a command's async body on a fresh runtime; its result is the exit code.
pub fn block_on(body: impl std::future::Future<Output = i32>) -> i32 {
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(body),
        Err(e) => {
            eprintln!("baton: cannot start the runtime: {e}");
            1
        }
    }
}

/// Serves `app` until SIGINT/SIGTERM; the exit code.
pub async fn serve_until_stopped(app: crate::Application) -> i32 {
    match app.run_until_stopped().await {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            1
        }
    }
}

fn check_config(path: &std::path::Path) -> i32 {
    match load_config(Some(path), None) {
        Ok(config) => {
            for warning in config.warnings() {
                println!("warning: {warning}");
            }
            println!(
                "{}: valid ({} trusted origin pattern(s), public origin {})",
                path.display(),
                config.trust.origins.patterns().len(),
                config.server.public_origin
            );
            // Where the sessions go, as the start-up line says it (credentials masked).
            println!("store: {:?}", config.store);
            println!("{}", assets_report(&config.server.public_origin));
            0
        }
        Err(errors) => {
            eprintln!("{}: {} problem(s):", path.display(), errors.0.len());
            for e in &errors.0 {
                eprintln!("  - {e}");
            }
            2
        }
    }
}

/// Only `[trust]` matters here, so a config whose other sections are incomplete still answers.
fn check_origin(path: &std::path::Path, origins: &[String]) -> i32 {
    let trusted = match Config::load_trust(path, env_vars()) {
        Ok(trust) => trust.origins,
        Err(errors) => {
            for e in errors.0 {
                eprintln!("baton: {e}");
            }
            return 2;
        }
    };
    let mut out = std::io::stdout().lock();
    if origins.len() == 1 && origins[0] == "-" {
        let mut input = String::new();
        if std::io::stdin().read_to_string(&mut input).is_err() {
            eprintln!("baton: cannot read stdin");
            return 2;
        }
        let list: Vec<String> = match serde_json::from_str(&input) {
            Ok(list) => list,
            Err(e) => {
                eprintln!("baton: stdin must be a JSON array of strings: {e}");
                return 2;
            }
        };
        let results: Vec<_> = list
            .iter()
            .map(|o| match trusted.check(o) {
                Ok(_) => json!({ "origin": o, "allowed": true, "reason": null }),
                Err(d) => json!({ "origin": o, "allowed": false, "reason": d.code() }),
            })
            .collect();
        let _ = writeln!(out, "{}", serde_json::Value::Array(results));
        return 0;
    }
    for origin in origins {
        // Origins may hold spaces or control characters; quote those so each stays one line.
        let shown = if origin.bytes().all(|b| (0x21..=0x7e).contains(&b)) && !origin.is_empty() {
            origin.clone()
        } else {
            serde_json::to_string(origin).unwrap_or_default()
        };
        let _ = match trusted.check(origin) {
            Ok(_) => writeln!(out, "allow {shown}"),
            Err(d) => writeln!(out, "deny {shown} {}: {d}", d.code()),
        };
    }
    0
}

/// Where partner pages get the library: the stable URL, and the versioned one with its integrity.
pub fn assets_report(public_origin: &crate::origin::Origin) -> String {
    let provider = crate::assets::Asset::partner_script();
    let module = crate::assets::Asset::partner_module();
    let versioned = format!("{public_origin}/cookie-provider.{}.js", provider.version);
    let module_url = format!("{public_origin}/baton.{}.mjs", module.version);
    format!(
        "stable URL (revalidated every 5 minutes; what Genesys pages load): {public_origin}/cookie-provider.js\n\
         versioned URL (cached for a year; changes with each release): {versioned}\n\
         integrity: {integrity}\n\
         <script src=\"{versioned}\" integrity=\"{integrity}\" crossorigin=\"anonymous\"></script>\n\
         ES module: {public_origin}/baton.mjs, versioned {module_url}, integrity {module_integrity}",
        integrity = provider.integrity,
        module_integrity = module.integrity
    )
}

/// Whether `GET url` answers 200 within 2 s. A hand-written HTTP/1.1 request: the product carries
/// no HTTP client, and a health check needs no more than a status line.
pub async fn ready(url: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(url) = url::Url::parse(url) else {
        return false;
    };
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return false;
    };
    if url.scheme() != "http" {
        return false;
    }
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect((host, port)).await.ok()?;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
            url.path()
        );
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        Some(head.starts_with(b"HTTP/1.1 200"))
    };
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(2), ask).await,
        Ok(Some(true))
    )
}

/// A `[[handoff.keys]]` entry with 256 fresh random bits.
pub fn keygen() -> String {
    let secret = URL_SAFE_NO_PAD.encode(crate::session::random_bytes::<32>());
    let kid = format!("k{}", &crate::session::new_uid()[..8]);
    format!(
        "# Add to baton.toml (newest key first; keep old ones until their tokens expired):\n[[handoff.keys]]\nkid = \"{kid}\"\nsecret = \"{secret}\""
    )
}
