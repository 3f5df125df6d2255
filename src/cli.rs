//! The command line: `serve`, `demo`, `check-config`, `check-origin`, `keygen`. `main` only parses
//! arguments and calls `run`, so every command is testable as a library call.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Parser, Subcommand};
use serde_json::json;

use crate::config::{ConfigErrors, RawConfig, Settings};
use crate::origin::TrustedOrigins;

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
    /// Run the broker with two demo partner sites (shop and support) on one port, and print the
    /// URL to open. Development only: it trusts *.localhost sites and generates its handoff key.
    Demo {
        /// Address to listen on; the sites are http://{broker,shop,support}.localhost:PORT.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// SQLite file for the demo's sessions.
        #[arg(long, default_value_os_t = std::env::temp_dir().join("baton-demo.db"))]
        db: PathBuf,
    },
    /// Validate a config file and explain every problem (exit 2 on error).
    CheckConfig {
        #[arg(long)]
        config: PathBuf,
    },
    /// Print whether each origin is allowed by the config's trusted origins.
    /// With `-`, read a JSON array of strings on stdin and print a JSON array.
    CheckOrigin {
        #[arg(long)]
        config: PathBuf,
        #[arg(required = true, allow_hyphen_values = true)]
        origins: Vec<String>,
    },
    /// Print a new handoff signing key to add to [handoff] keys.
    Keygen,
}

fn env_vars() -> Vec<(String, String)> {
    std::env::vars().collect()
}

/// Exit codes: 0 fine, 1 runtime failure, 2 bad config or usage.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Serve { config, listen } => serve(config, listen),
        Command::Demo { listen, db } => crate::demo::run(listen, &db),
        Command::CheckConfig { config } => check_config(&config),
        Command::CheckOrigin { config, origins } => check_origin(&config, &origins),
        Command::Keygen => {
            println!("{}", keygen());
            0
        }
    }
}

pub fn load_settings(
    config: Option<&std::path::Path>,
    listen: Option<SocketAddr>,
) -> Result<Settings, ConfigErrors> {
    let mut raw = match config {
        Some(path) => RawConfig::load(Some(path), env_vars())?,
        None => {
            let mut raw = RawConfig::load(None, env_vars())?;
            let dev = RawConfig::dev_defaults();
            if raw.handoff.keys.is_empty() {
                raw.handoff.generate_dev_key = dev.handoff.generate_dev_key;
            }
            raw
        }
    };
    if let Some(listen) = listen {
        raw.server.listen = listen.to_string();
    }
    raw.validate()
}

fn serve(config: Option<PathBuf>, listen: Option<SocketAddr>) -> i32 {
    crate::telemetry::init();
    let settings = match load_settings(config.as_deref(), listen) {
        Ok(s) => s,
        Err(errors) => {
            eprintln!("baton: invalid configuration:\n{errors}");
            return 2;
        }
    };
    block_on(async move {
        for warning in &settings.warnings {
            tracing::warn!("{warning}");
        }
        let trusted = settings.trusted.to_strings();
        let store = format!("{:?}", settings.store);
        let public_origin = settings.public_origin.clone();
        let app = match crate::Application::build(settings).await {
            Ok(app) => app,
            Err(e) => {
                eprintln!("baton: {e}");
                return 1;
            }
        };
        tracing::info!(
            listen = %app.local_addr(),
            public_origin = %public_origin,
            trusted = ?trusted,
            store = %store,
            "baton is listening"
        );
        if trusted.is_empty() {
            tracing::warn!(
                "no trusted origins: no site can embed this broker; set [trust] origins"
            );
        }
        serve_until_stopped(app).await
    })
}

/// Runs a command's async body on a fresh runtime; its result is the exit code.
pub(crate) fn block_on(body: impl std::future::Future<Output = i32>) -> i32 {
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(body),
        Err(e) => {
            eprintln!("baton: cannot start the runtime: {e}");
            1
        }
    }
}

/// Serves `app` until SIGINT/SIGTERM; the exit code.
pub(crate) async fn serve_until_stopped(app: crate::Application) -> i32 {
    match app.run_until_stopped().await {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            1
        }
    }
}

fn check_config(path: &std::path::Path) -> i32 {
    match load_settings(Some(path), None) {
        Ok(settings) => {
            for warning in &settings.warnings {
                println!("warning: {warning}");
            }
            println!(
                "{}: valid ({} trusted origin pattern(s), public origin {})",
                path.display(),
                settings.trusted.patterns().len(),
                settings.public_origin
            );
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
    let trusted = match RawConfig::load(Some(path), env_vars())
        .map_err(|e| e.0)
        .and_then(|raw| {
            TrustedOrigins::parse_all(&raw.trust.origins)
                .map_err(|errs| errs.iter().map(|e| format!("trust.origins: {e}")).collect())
        }) {
        Ok(t) => t,
        Err(errors) => {
            for e in errors {
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

/// A `[[handoff.keys]]` entry with 256 fresh random bits.
pub fn keygen() -> String {
    let secret = URL_SAFE_NO_PAD.encode(crate::session::random_bytes::<32>());
    let kid = format!("k{}", &crate::session::new_uid()[..8]);
    format!(
        "# Add to baton.toml (newest key first; keep old ones until their tokens expired):\n[[handoff.keys]]\nkid = \"{kid}\"\nsecret = \"{secret}\""
    )
}
