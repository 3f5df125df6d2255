//! The command line: `serve`, `check-config`, `check-origin`, `keygen`. `main` only parses
//! arguments and calls `run`, so every command is testable as a library call. (The demo is its
//! own binary, `baton-demo`, outside the product.)
//!
//! Output goes through `emit` and `complain`, never `println!`/`eprintln!`, which panic when the
//! reader has gone (`baton keygen | head -0`: Rust ignores SIGPIPE, so the write fails with
//! `BrokenPipe`). A reader that has gone is no failure of the command: it exits quietly with the
//! status its answer had (0, or 2 for a bad config), as `head` users expect.

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
    /// Identity assertions (docs/identity.md): new keys, a test assertion, a check of one.
    Identity {
        #[command(subcommand)]
        command: IdentityCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum IdentityCommand {
    /// Print a new `[[identity.keys]]` HS256 key (to share with one partner) and a subject secret.
    Keygen,
    /// Print a test assertion signed now with a configured HS256 key, as a partner's backend
    /// would render it.
    Token {
        /// The TOML config file whose [identity] keys sign and whose public origin is `aud`.
        #[arg(long, env = "BATON_CONFIG")]
        config: PathBuf,
        /// The partner page's origin (`iss`), e.g. https://shop.example.com.
        #[arg(long)]
        iss: String,
        /// The partner's customer id (`sub`).
        #[arg(long)]
        sub: String,
        /// Which key signs; without it, the first HS256 key.
        #[arg(long)]
        kid: Option<String>,
        /// Lifetime in seconds (`exp - iat`).
        #[arg(long, default_value_t = 300)]
        ttl: i64,
    },
    /// Check an assertion as the broker would for a page at --page: print a JSON verdict (the
    /// refusal's code, or the key and the subject's hash); exit 0 when valid, 1 when refused.
    Verify {
        /// The TOML config file whose [identity] keys and [trust] origins decide.
        #[arg(long, env = "BATON_CONFIG")]
        config: PathBuf,
        /// The origin of the page presenting the assertion.
        #[arg(long)]
        page: String,
        /// The assertion; `-` or nothing reads it from stdin.
        token: Option<String>,
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
        Command::Keygen => emit(&format!("{}\n", keygen()), 0),
        Command::Healthcheck { url } => match block_on(async { i32::from(!ready(&url).await) }) {
            0 => 0,
            _ => {
                complain(&format!("baton: {url} is not ready"));
                1
            }
        },
        Command::Identity { command } => identity(command),
        Command::Assets { config } => match load_config(config.as_deref(), None) {
            Ok(config) => emit(
                &format!("{}\n", assets_report(&config.server.public_origin)),
                0,
            ),
            Err(errors) => {
                complain(&format!("baton: invalid configuration:\n{errors}"));
                2
            }
        },
    }
}

/// Writes `text` to stdout and gives `code`, the command's status: also when the reader has gone
/// (`BrokenPipe`), since the answer stands whether or not all of it was read. Any other write
/// failure (a full disk) is one: said on stderr, status 1.
fn emit(text: &str, code: i32) -> i32 {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => code,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => code,
        Err(e) => {
            complain(&format!("baton: cannot write the output: {e}"));
            1
        }
    }
}

/// Writes `text` and a newline to stderr; if that fails too, there is no one left to tell.
fn complain(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
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
            complain(&format!("baton: cannot start the runtime: {e}"));
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
            let mut text = String::new();
            for warning in config.warnings() {
                text.push_str(&format!("warning: {warning}\n"));
            }
            text.push_str(&format!(
                "{}: valid ({} trusted origin pattern(s), public origin {})\n",
                path.display(),
                config.trust.origins.patterns().len(),
                config.server.public_origin,
            ));
            // Where the sessions go, as the start-up line says it (credentials masked).
            text.push_str(&format!("store: {:?}\n", config.store));
            text.push_str(&format!(
                "{}\n",
                assets_report(&config.server.public_origin)
            ));
            emit(&text, 0)
        }
        Err(errors) => {
            let mut text = format!("{}: {} problem(s):", path.display(), errors.0.len());
            for e in &errors.0 {
                text.push_str(&format!("\n  - {e}"));
            }
            complain(&text);
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
                complain(&format!("baton: {e}"));
            }
            return 2;
        }
    };
    if origins.len() == 1 && origins[0] == "-" {
        let mut input = String::new();
        if std::io::stdin().read_to_string(&mut input).is_err() {
            complain("baton: cannot read stdin");
            return 2;
        }
        let list: Vec<String> = match serde_json::from_str(&input) {
            Ok(list) => list,
            Err(e) => {
                complain(&format!(
                    "baton: stdin must be a JSON array of strings: {e}"
                ));
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
        return emit(&format!("{}\n", serde_json::Value::Array(results)), 0);
    }
    let mut text = String::new();
    for origin in origins {
        // Origins may hold spaces or control characters; quote those so each stays one line.
        let shown = if origin.bytes().all(|b| (0x21..=0x7e).contains(&b)) && !origin.is_empty() {
            origin.clone()
        } else {
            serde_json::to_string(origin).unwrap_or_default()
        };
        text.push_str(&match trusted.check(origin) {
            Ok(_) => format!("allow {shown}\n"),
            Err(d) => format!("deny {shown} {}: {d}\n", d.code()),
        });
    }
    emit(&text, 0)
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
    let secret = URL_SAFE_NO_PAD.encode(crate::random::bytes::<32>());
    let kid = format!("k{}", &crate::random::hex_128()[..8]);
    format!(
        "# Add to baton.toml (newest key first; keep old ones until their tokens expired):\n[[handoff.keys]]\nkid = \"{kid}\"\nsecret = \"{secret}\""
    )
}

/// `baton identity …`: the exit code.
fn identity(command: IdentityCommand) -> i32 {
    use crate::clock::Clock;
    use crate::identity::IdentityKeys;
    let (config_path, page) = match &command {
        IdentityCommand::Keygen => {
            println!("{}", identity_keygen());
            return 0;
        }
        IdentityCommand::Token { config, iss, .. } => (config, iss),
        IdentityCommand::Verify { config, page, .. } => (config, page),
    };
    let config = match load_config(Some(config_path), None) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("baton: invalid configuration:\n{errors}");
            return 2;
        }
    };
    let Some(keys) = IdentityKeys::from_config(&config) else {
        eprintln!(
            "baton: {} has no [[identity.keys]]; run `baton identity keygen` for one",
            config_path.display()
        );
        return 2;
    };
    let page = match crate::origin::Origin::parse(page) {
        Ok(origin) => origin,
        Err(denied) => {
            eprintln!("baton: {page:?} is not an origin: {denied}");
            return 2;
        }
    };
    let now = crate::clock::SystemClock.now();
    match command {
        IdentityCommand::Keygen => 0,
        IdentityCommand::Token { sub, kid, ttl, .. } => {
            match keys.mint_test_assertion(kid.as_deref(), &page, &sub, now, ttl) {
                Ok(token) => {
                    println!("{token}");
                    0
                }
                Err(e) => {
                    eprintln!("baton: {e}");
                    2
                }
            }
        }
        IdentityCommand::Verify { token, .. } => identity_verify(&keys, token, &page, &config, now),
    }
}

/// `baton identity verify`: prints the verdict on `token` (or stdin) as JSON; the exit code.
fn identity_verify(
    keys: &crate::identity::IdentityKeys,
    token: Option<String>,
    page: &crate::origin::Origin,
    config: &Config,
    now: crate::clock::Timestamp,
) -> i32 {
    let token = match token.filter(|t| t != "-") {
        Some(token) => token,
        None => {
            let mut input = String::new();
            if std::io::stdin().read_to_string(&mut input).is_err() {
                eprintln!("baton: cannot read stdin");
                return 2;
            }
            input.trim().to_owned()
        }
    };
    match keys.verify(&token, page, &config.trust.origins, now) {
        Ok(identity) => {
            println!(
                "{}",
                json!({
                    "valid": true,
                    "kid": identity.kid,
                    "issuer": identity.issuer.as_str(),
                    "subject": identity.subject.to_hex(),
                    "expires_at": identity.expires_at / 1000,
                })
            );
            0
        }
        Err(rejection) => {
            println!(
                "{}",
                json!({
                    "valid": false,
                    "error": rejection.code(),
                    "message": rejection.to_string(),
                })
            );
            1
        }
    }
}

/// An `[[identity.keys]]` HS256 entry and a subject secret, each 256 fresh random bits.
pub fn identity_keygen() -> String {
    let secret = URL_SAFE_NO_PAD.encode(crate::random::bytes::<32>());
    let subject = URL_SAFE_NO_PAD.encode(crate::random::bytes::<32>());
    let kid = format!("i{}", &crate::random::hex_128()[..8]);
    format!(
        "# Add to baton.toml: the key, once per partner (give the partner its kid and secret);\n\
         # subject_secret once per deployment, kept for as long as identities are kept.\n\
         [identity]\nsubject_secret = \"{subject}\"\n\n[[identity.keys]]\nkid = \"{kid}\"\nsecret = \"{secret}\""
    )
}
