//! Configuration: one TOML file (`config/baton.toml` documents every key), every key overridable
//! by an environment variable `BATON_SECTION__KEY`, parsed once at start into [`Config`], the one
//! shape the rest of the code reads (`state.config.session.max_values`): no flat copy of it.
//!
//! Each section is a struct whose fields already have their checked types (`Origin`,
//! `TrustedOrigins`, `SocketAddr`, decoded keys), so a value that parsed is a value that is valid
//! in itself; `problems()` on each section adds the rules that span fields (ranges, "absolute
//! at least idle"). `[store]` is a tagged enum (`backend = "sqlite" | "redis"`) that opens its own
//! store, so "which backend" is decided in one place.
//!
//! Every problem is reported in one pass, each naming its key (`session.max_values`,
//! `trust.origins[1]`, `handoff.keys[0].secret`): serde stops at a section's first error, so a
//! section that fails is parsed again one key (and one array element) at a time to find the
//! others. Nothing insecure has a silent default: no trusted origin is assumed, and a handoff
//! signing key is generated only for a development setup.
//!
//! No problem shows a secret. A file that is not valid TOML is reported by its line, column and
//! nearest key with the parser's description, never with the source line (the line of a
//! `secret` or a `redis_url` is a secret: the `toml` crate's own `Display` prints it). A bad
//! value from a `BATON_*` variable, the channel SECURITY.md recommends for secrets, is reported
//! by its variable and what is wrong, never with the value. That reporting (where a problem
//! came from, and what its message may show) is the submodule `source`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};

mod source;

use self::source::{apply_env, locate, syntax_error};
use crate::handoff::SigningKey;
use crate::origin::{Origin, TrustedOrigins};
use crate::session::Timeouts;

/// The validated configuration the application runs on.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub server: ServerConfig,
    pub trust: TrustConfig,
    pub session: SessionConfig,
    pub store: crate::session::store_config::StoreConfig,
    pub handoff: HandoffConfig,
    pub log: LogConfig,
    pub identity: IdentityConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` for people, `json` for log collectors.
    pub format: crate::telemetry::LogFormat,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    #[serde(deserialize_with = "socket_addr")]
    pub listen: SocketAddr,
    /// The origin browsers reach the broker at (default `http://broker.localhost:<port>`).
    pub public_origin: Origin,
    /// Where `/metrics` is served (never on `listen`, which the world reaches); unset: nowhere.
    #[serde(deserialize_with = "socket_addr_opt")]
    pub admin_listen: Option<SocketAddr>,
    pub shutdown_grace_secs: u64,
    /// A request not answered by then (a stuck store) gets 503.
    pub request_timeout_secs: u64,
    /// A connection that has not sent a whole request head by then is closed: slow clients, and
    /// kept-alive connections left idle (keep it above a load balancer's idle timeout).
    pub header_timeout_secs: u64,
    /// A request body that sends nothing for this long gets 408.
    pub body_timeout_secs: u64,
    /// A response not handed to the network within this time (a client that does not read it)
    /// closes its connection.
    pub write_timeout_secs: u64,
    /// Open connections at most (also bounded by the open-file limit); at the bound the longest
    /// idle one is closed for a new one.
    pub max_connections: usize,
    /// Requests per client per minute on the public listener (the health checks aside); 0
    /// disables the limit.
    pub rate_limit_per_minute: u32,
    /// The header the proxies in front append the client address to (`x-forwarded-for`).
    #[serde(deserialize_with = "header_name")]
    pub client_ip_header: Option<axum::http::HeaderName>,
    /// The proxies whose `client_ip_header` entries are believed: addresses or CIDR networks.
    #[serde(deserialize_with = "networks")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustConfig {
    /// The partner origins: exact, or `scheme://*.suffix[:port]`.
    pub origins: TrustedOrigins,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    pub idle_timeout_secs: u64,
    pub absolute_timeout_secs: u64,
    pub max_value_bytes: usize,
    pub max_values: usize,
    /// Where the browser lets the broker keep no cookie at all, hand the partner page a key of
    /// its own to hold (see `session::PageKey`). Off: the session then stays on one page there.
    pub page_keys: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HandoffConfig {
    pub ttl_secs: u64,
    /// The `iss` of every token: names the deployment, not a node, so that every node behind one
    /// load balancer (whatever its own address) accepts the others' tokens.
    pub issuer: String,
    /// Signing keys, newest first: the first signs, all verify.
    pub keys: Vec<SigningKey>,
    /// Generate a throwaway key at start when `keys` is empty. Development only: tokens minted by
    /// one node then fail on every other node and after a restart.
    pub generate_dev_key: bool,
    /// `false` turns handoff off (sessions then cross sites only where the browser shares the
    /// broker's cookie); it is also how an https deployment says it means to run without keys.
    pub enabled: bool,
}

/// `[identity]`: the keys partners sign identity assertions with (`crate::identity`). No keys:
/// identity binding is off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// Verifying keys, any order: each `kid` names one key of one algorithm.
    pub keys: Vec<IdentityKeyConfig>,
    /// What customer ids are hashed with before the store sees them; required with keys.
    #[serde(deserialize_with = "subject_secret")]
    pub subject_secret: Option<crate::identity::SubjectSecret>,
    /// Longest `exp - iat` accepted, in seconds (at most 600).
    pub max_lifetime_secs: u64,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            subject_secret: None,
            max_lifetime_secs: crate::identity::MAX_LIFETIME_SECS,
        }
    }
}

/// An `[[identity.keys]]` entry: `kid` with `secret` (HS256, the default) or with
/// `alg = "ES256"` and `public_key`. Which of the two it must have is a rule of
/// `IdentityConfig::problems`, so each mistake is named by its key. `Debug` never shows a secret.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityKeyConfig {
    #[serde(deserialize_with = "kid")]
    pub kid: String,
    #[serde(default)]
    pub alg: crate::identity::IdentityAlg,
    #[serde(default, deserialize_with = "secret_opt")]
    pub secret: Option<Vec<u8>>,
    #[serde(default, deserialize_with = "es256_public_key")]
    pub public_key: Option<crate::identity::Es256PublicKey>,
}

impl std::fmt::Debug for IdentityKeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "IdentityKeyConfig({}, {:?}, <redacted>)",
            self.kid, self.alg
        )
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        let listen = SocketAddr::from(([127, 0, 0, 1], 8080));
        Self {
            listen,
            public_origin: dev_public_origin(listen),
            admin_listen: None,
            shutdown_grace_secs: 10,
            request_timeout_secs: 10,
            header_timeout_secs: 75,
            body_timeout_secs: 10,
            write_timeout_secs: 30,
            max_connections: 10_000,
            rate_limit_per_minute: 6000,
            client_ip_header: None,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 1800,
            absolute_timeout_secs: 43200,
            max_value_bytes: 16384,
            max_values: 64,
            page_keys: true,
        }
    }
}

impl Default for HandoffConfig {
    fn default() -> Self {
        Self {
            ttl_secs: 60,
            issuer: "baton".into(),
            keys: Vec::new(),
            generate_dev_key: false,
            enabled: true,
        }
    }
}

/// Defaults that depend on other keys: the public origin on the listen port, and the embedded
/// store.
fn derived_defaults(server: Option<&mut toml::Table>, store: Option<&mut toml::Table>) {
    if let Some(s) = server.filter(|s| !s.contains_key("public_origin")) {
        let listen = s
            .get("listen")
            .and_then(|v| v.as_str())
            .and_then(|l| l.parse().ok())
            .unwrap_or(ServerConfig::default().listen);
        s.insert(
            "public_origin".into(),
            dev_public_origin(listen).as_str().into(),
        );
    }
    if let Some(s) = store {
        s.entry("backend").or_insert_with(|| "sqlite".into());
    }
}

/// `http://broker.localhost:<port>`: where a development broker is reached.
fn dev_public_origin(listen: SocketAddr) -> Origin {
    let origin = format!("http://broker.localhost:{}", listen.port());
    // Built from a u16: always a canonical origin.
    Origin::parse(&origin).unwrap_or_else(|_| unreachable!("{origin} is an origin"))
}

pub const MIN_SECRET_BYTES: usize = 32;

fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let raw = String::deserialize(d)?;
    raw.parse().map_err(|_| {
        D::Error::custom(format!(
            "{raw:?} is not an address:port such as \"127.0.0.1:8080\""
        ))
    })
}

fn socket_addr_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    socket_addr(d).map(Some)
}

fn header_name<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<axum::http::HeaderName>, D::Error> {
    let raw = String::deserialize(d)?;
    axum::http::HeaderName::try_from(raw.to_ascii_lowercase())
        .map(Some)
        .map_err(|_| {
            D::Error::custom(format!(
                "{raw:?} is not a header name (e.g. \"x-forwarded-for\")"
            ))
        })
}

/// Addresses (`10.0.0.1`, `::1`) and networks (`10.0.0.0/8`).
fn networks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|raw| {
            raw.parse::<ipnet::IpNet>()
                .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    D::Error::custom(format!(
                        "{raw:?} is not an IP address or network such as \"10.0.0.0/8\""
                    ))
                })
        })
        .collect()
}

pub(crate) fn kid<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let kid = String::deserialize(d)?;
    let ok = (1..=64).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(kid)
    } else {
        Err(D::Error::custom(format!(
            "{kid:?} must be 1 to 64 characters from A-Z a-z 0-9 - _ ."
        )))
    }
}

fn secret_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    secret(d).map(Some)
}

fn subject_secret<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<crate::identity::SubjectSecret>, D::Error> {
    secret(d).map(|s| Some(crate::identity::SubjectSecret::new(s)))
}

fn es256_public_key<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<crate::identity::Es256PublicKey>, D::Error> {
    let raw = String::deserialize(d)?;
    crate::identity::Es256PublicKey::from_pem(&raw)
        .map(Some)
        .map_err(D::Error::custom)
}

pub(crate) fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let raw = String::deserialize(d)?;
    match URL_SAFE_NO_PAD.decode(raw.trim_end_matches('=')) {
        Ok(secret) if secret.len() >= MIN_SECRET_BYTES => Ok(secret),
        _ => Err(D::Error::custom(format!(
            "must be base64url of at least {MIN_SECRET_BYTES} random bytes; run `baton keygen` for one"
        ))),
    }
}

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Origin::parse(&raw).map_err(|denied| {
            D::Error::custom(format!(
                "{raw:?} is not an origin ({denied}); write it as scheme://host[:port] in lowercase, without a path"
            ))
        })
    }
}

impl<'de> Deserialize<'de> for TrustedOrigins {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let entries = Vec::<String>::deserialize(d)?;
        TrustedOrigins::parse_all(&entries).map_err(|errors| {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            D::Error::custom(text.join("; "))
        })
    }
}

/// Every problem found in a config, each naming its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

impl std::error::Error for ConfigErrors {}

fn one(msg: impl Into<String>) -> ConfigErrors {
    ConfigErrors(vec![msg.into()])
}

impl ServerConfig {
    fn problems(&self, out: &mut Vec<String>) {
        if self.client_ip_header.is_some() && self.trusted_proxies.is_empty() {
            out.push("server.trusted_proxies: server.client_ip_header is set, so list the proxies whose entries in it are believed (e.g. [\"10.0.0.0/8\"]); without them any client could claim any address".into());
        }
        for (key, value) in [
            ("header_timeout_secs", self.header_timeout_secs),
            ("body_timeout_secs", self.body_timeout_secs),
            ("write_timeout_secs", self.write_timeout_secs),
        ] {
            if value == 0 {
                out.push(format!("server.{key}: must be at least 1"));
            }
        }
        if self.max_connections == 0 {
            out.push("server.max_connections: must be at least 1".into());
        }
        if !is_secure_context(&self.public_origin) {
            out.push(format!(
                "server.public_origin: {:?} must be https (plain http only for *.localhost during development): the broker's cookies are Secure",
                self.public_origin.as_str()
            ));
        }
    }

    /// The longest a request may take before it is answered 503 (at least 1 s).
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs.max(1))
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs.max(1))
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs.max(1))
    }

    pub fn write_timeout(&self) -> Duration {
        Duration::from_secs(self.write_timeout_secs.max(1))
    }
}

impl SessionConfig {
    fn problems(&self, out: &mut Vec<String>) {
        if self.idle_timeout_secs == 0 {
            out.push("session.idle_timeout_secs: must be at least 1".into());
        }
        if self.absolute_timeout_secs < self.idle_timeout_secs {
            out.push(format!(
                "session.absolute_timeout_secs: {} is shorter than session.idle_timeout_secs ({}); make it at least as long",
                self.absolute_timeout_secs, self.idle_timeout_secs
            ));
        }
        if self.max_value_bytes == 0 || self.max_value_bytes > 1 << 20 {
            out.push("session.max_value_bytes: must be between 1 and 1048576".into());
        }
        if self.max_values == 0 || self.max_values > 1024 {
            out.push("session.max_values: must be between 1 and 1024".into());
        }
    }

    /// When sessions die, in the store's units.
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            idle_ms: (self.idle_timeout_secs as i64).saturating_mul(1000),
            absolute_ms: (self.absolute_timeout_secs as i64).saturating_mul(1000),
        }
    }
}

impl HandoffConfig {
    fn problems(&self, out: &mut Vec<String>) {
        if self.ttl_secs == 0 || self.ttl_secs > 600 {
            out.push("handoff.ttl_secs: must be between 1 and 600".into());
        }
        if self.issuer.is_empty() || self.issuer.len() > 256 {
            out.push("handoff.issuer: must be 1 to 256 characters".into());
        }
        for (i, key) in self.keys.iter().enumerate() {
            if self.keys[..i].iter().any(|k| k.kid == key.kid) {
                out.push(format!(
                    "handoff.keys[{i}].kid: {:?} is used twice",
                    key.kid
                ));
            }
        }
    }

    /// Whether a throwaway key is generated at start: no keys configured, and either asked for,
    /// or a plain-http public origin, which can only be a development setup: validation accepts
    /// `http://` only on localhost names (`plain_http_public_origin_needs_localhost`), no browser
    /// elsewhere can reach it, so a throwaway key there is no risk and saves a step.
    pub fn uses_dev_key(&self, public_origin: &Origin) -> bool {
        self.keys.is_empty()
            && (self.generate_dev_key || public_origin.as_str().starts_with("http://"))
    }
}

impl IdentityConfig {
    fn problems(&self, out: &mut Vec<String>) {
        use crate::identity::{IdentityAlg, MAX_LIFETIME_SECS};
        if self.max_lifetime_secs == 0 || self.max_lifetime_secs > MAX_LIFETIME_SECS {
            out.push(format!(
                "identity.max_lifetime_secs: must be between 1 and {MAX_LIFETIME_SECS}: an assertion is a bearer credential for its lifetime"
            ));
        }
        for (i, key) in self.keys.iter().enumerate() {
            let at = format!("identity.keys[{i}]");
            if self.keys[..i].iter().any(|k| k.kid == key.kid) {
                out.push(format!("{at}.kid: {:?} is used twice", key.kid));
            }
            match key.alg {
                IdentityAlg::HS256 => {
                    if key.secret.is_none() {
                        out.push(format!("{at}.secret: missing: an HS256 key needs the secret shared with the partner; run `baton identity keygen` for one, or write alg = \"ES256\" and public_key for a partner's public key"));
                    }
                    if key.public_key.is_some() {
                        out.push(format!("{at}.public_key: only an ES256 key has a public key; write alg = \"ES256\" (and no secret), or remove public_key"));
                    }
                }
                IdentityAlg::ES256 => {
                    if key.public_key.is_none() {
                        out.push(format!("{at}.public_key: missing: an ES256 key needs the partner's P-256 public key in PEM (-----BEGIN PUBLIC KEY-----)"));
                    }
                    if key.secret.is_some() {
                        out.push(format!("{at}.secret: an ES256 key has no shared secret (the partner keeps its private key); remove secret"));
                    }
                }
            }
        }
        match &self.subject_secret {
            None if !self.keys.is_empty() => out.push("identity.subject_secret: missing: identity keys are configured, so set the secret customer ids are hashed with (base64url of at least 32 random bytes; `baton identity keygen` prints one), and keep it for as long as identities are kept".into()),
            Some(subject) => {
                for (i, key) in self.keys.iter().enumerate() {
                    let same = key
                        .secret
                        .as_ref()
                        .is_some_and(|s| crate::identity::SubjectSecret::new(s.clone()) == *subject);
                    if same {
                        out.push(format!("identity.subject_secret: the same as identity.keys[{i}].secret; use a separate secret (keys rotate, the subject hash must not)"));
                    }
                }
            }
            None => {}
        }
    }
}

impl Config {
    /// The rules between sections.
    fn cross_problems(&self, out: &mut Vec<String>) {
        let h = &self.handoff;
        if h.enabled && h.keys.is_empty() && !h.uses_dev_key(&self.server.public_origin) {
            out.push("handoff.keys: none, on an https deployment: without a key no session crosses sites where the browser blocks third-party cookies; run `baton keygen` and add its output, or write [handoff] enabled = false to run without handoff".into());
        }
    }

    /// Reads `path` (or the built-in defaults when `None`), applies `BATON_*` overrides from
    /// `env` and validates everything, reporting every problem.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigErrors> {
        Self::load_with(path, env, |_| {})
    }

    /// `load`, with `adjust` applied to the TOML table last (the CLI's `--listen`).
    ///
    /// Every problem names where its value came from: the environment variable that set it, or
    /// the file and line.
    pub fn load_with(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        adjust: impl FnOnce(&mut toml::Table),
    ) -> Result<Self, ConfigErrors> {
        let text = match path {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| one(format!("cannot read {}: {e}", path.display())))?,
            None => String::new(),
        };
        let mut table = text.parse::<toml::Table>().map_err(|_| {
            let name = path.map(|p| p.display().to_string()).unwrap_or_default();
            one(syntax_error(&name, &text))
        })?;
        let from_env = apply_env(&mut table, env)?;
        // A file is a deployment: one that does not say which sites it serves is a mistake, not
        // a broker that serves none (`origins = []` says that on purpose).
        let missing_trust =
            path.is_some() && table.get("trust").and_then(|t| t.get("origins")).is_none();
        adjust(&mut table);
        let mut errors = match Self::from_table(table) {
            Ok(config) if !missing_trust => return Ok(config),
            Ok(_) => Vec::new(),
            Err(e) => e.0,
        };
        if missing_trust {
            errors.push("trust.origins: missing: list the partner sites allowed to embed the broker, e.g. origins = [\"https://shop.example.com\"] (origins = [] runs a broker no site can use)".into());
        }
        let file = path.map(|p| (p, text.as_str()));
        Err(ConfigErrors(
            errors
                .into_iter()
                .map(|e| locate(e, file, &from_env))
                .collect(),
        ))
    }

    /// The log format the config asks for, read before anything else so that the logger is set
    /// up before the config is validated (its problems are then logged in that format). Any
    /// problem here is left for `load` to report.
    pub fn peek_log_format(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> crate::telemetry::LogFormat {
        use toml::de::{DeTable, DeValue};
        let text = path
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        // Recovering: a file that is not valid TOML is exactly what must be reported in the
        // format the collector reads.
        let (doc, _) = DeTable::parse_recoverable(&text);
        let in_file = doc
            .get_ref()
            .get("log")
            .and_then(|log| match log.get_ref() {
                DeValue::Table(t) => t.get("format"),
                _ => None,
            })
            .and_then(|f| match f.get_ref() {
                DeValue::String(s) => Some(toml::Value::String(s.to_string())),
                _ => None,
            });
        let mut table = toml::Table::new();
        if let Some(format) = in_file {
            let mut log = toml::Table::new();
            log.insert("format".into(), format);
            table.insert("log".into(), toml::Value::Table(log));
        }
        let _ = apply_env(&mut table, env);
        table
            .get("log")
            .and_then(|l| l.get("format"))
            .and_then(|f| f.clone().try_into().ok())
            .unwrap_or_default()
    }

    /// Only `[trust]` of the config at `path` (with overrides), for `check-origin`: a config whose
    /// other sections are incomplete still answers which origins it trusts.
    pub fn load_trust(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<TrustConfig, ConfigErrors> {
        let mut trust = None;
        let mut errors = Vec::new();
        // Everything is read and overridden as for `load`; only the trust section is parsed.
        Self::load_with(Some(path), env, |table| {
            let section = match table.remove("trust") {
                Some(toml::Value::Table(t)) => t,
                _ => toml::Table::new(),
            };
            trust = parse_section::<TrustConfig>("trust", section, &[], &mut errors);
            table.clear();
        })
        .map_err(|e| {
            if errors.is_empty() {
                e
            } else {
                ConfigErrors(errors.clone())
            }
        })?;
        trust.ok_or(ConfigErrors(errors))
    }

    /// Parses and validates a TOML table (file and overrides already merged).
    pub fn from_table(mut table: toml::Table) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        let mut section = |name: &str| match table.remove(name) {
            None => Some(toml::Table::new()),
            Some(toml::Value::Table(t)) => Some(t),
            Some(_) => {
                errors.push(format!("{name}: must be a table ([{name}])"));
                None
            }
        };
        let mut server = section("server");
        let trust = section("trust");
        let session = section("session");
        let mut store = section("store");
        let handoff = section("handoff");
        let log = section("log");
        let identity = section("identity");
        for unknown in table.keys() {
            errors.push(format!(
                "{unknown}: unknown section (known: server, trust, session, store, handoff, log, identity)"
            ));
        }
        derived_defaults(server.as_mut(), store.as_mut());
        let server =
            server.and_then(|t| parse_section::<ServerConfig>("server", t, &[], &mut errors));
        let trust = trust.and_then(|t| parse_section::<TrustConfig>("trust", t, &[], &mut errors));
        let session =
            session.and_then(|t| parse_section::<SessionConfig>("session", t, &[], &mut errors));
        let store = store.and_then(|t| {
            parse_section::<crate::session::store_config::StoreConfig>(
                "store",
                t,
                &["backend"],
                &mut errors,
            )
        });
        let handoff =
            handoff.and_then(|t| parse_section::<HandoffConfig>("handoff", t, &[], &mut errors));
        let log = log.and_then(|t| parse_section::<LogConfig>("log", t, &[], &mut errors));
        let identity =
            identity.and_then(|t| parse_section::<IdentityConfig>("identity", t, &[], &mut errors));
        match (server, trust, session, store, handoff, log, identity) {
            (
                Some(server),
                Some(trust),
                Some(session),
                Some(store),
                Some(handoff),
                Some(log),
                Some(identity),
            ) if errors.is_empty() => {
                let config = Self {
                    server,
                    trust,
                    session,
                    store,
                    handoff,
                    log,
                    identity,
                };
                let problems = config.problems();
                if problems.is_empty() {
                    Ok(config)
                } else {
                    Err(ConfigErrors(problems))
                }
            }
            _ => Err(ConfigErrors(errors)),
        }
    }

    /// The built-in development defaults used by `baton serve` without `--config`: a throwaway
    /// handoff key.
    pub fn dev_defaults() -> Self {
        let mut config = Self::default();
        config.handoff.generate_dev_key = true;
        config
    }

    /// The rules that span keys, each section's own.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.server.problems(&mut out);
        self.session.problems(&mut out);
        self.store.problems(&mut out);
        self.handoff.problems(&mut out);
        self.identity.problems(&mut out);
        self.cross_problems(&mut out);
        out
    }

    /// Things that work but that an operator should know (printed by `check-config`, logged at
    /// start).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let server = &self.server;
        if server.rate_limit_per_minute > 0
            && server.client_ip_header.is_none()
            && !server.listen.ip().is_loopback()
        {
            warnings.push("server.client_ip_header is unset: the rate limit counts per TCP peer, so behind a load balancer or proxy every client shares one budget; set it to the header your proxy appends (e.g. \"x-forwarded-for\") and server.trusted_proxies to the proxies' addresses".into());
        }
        if !self.handoff.enabled {
            warnings.push("handoff.enabled = false: sessions cross sites only where the browser shares the broker's cookie".into());
        } else if self.handoff.uses_dev_key(&server.public_origin) {
            warnings.push("handoff: no keys configured, so handoff tokens are signed with a development key generated at start; fine for one development node, but tokens die with it and no other node accepts them: run `baton keygen` for production".into());
        }
        if self.trust.origins.is_empty() {
            warnings.push("trust.origins is empty: no site can embed this broker".into());
        }
        warnings
    }
}

/// Deserializes one section; on failure, finds every bad key by parsing each key alone (with the
/// `always` keys, such as an enum's tag, beside it) and each element of a bad array alone, so that
/// every problem is reported with its path.
fn parse_section<T: DeserializeOwned>(
    name: &str,
    table: toml::Table,
    always: &[&str],
    errors: &mut Vec<String>,
) -> Option<T> {
    let first = match deserialize::<T>(&table) {
        Ok(value) => return Some(value),
        Err((path, msg)) => format!("{name}{}: {msg}", dotted(&path)),
    };
    let before = errors.len();
    let alone = |key: &str, value: toml::Value| {
        let mut t: toml::Table = always
            .iter()
            .filter_map(|k| Some(((*k).to_owned(), table.get(*k)?.clone())))
            .collect();
        t.insert(key.to_owned(), value);
        deserialize::<T>(&t).err()
    };
    for (key, value) in &table {
        if always.contains(&key.as_str()) {
            continue;
        }
        let Some((path, msg)) = alone(key, value.clone()) else {
            continue;
        };
        match value.as_array().filter(|a| a.len() > 1) {
            // The first bad element's path is exact; the others are found one by one.
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some((path, msg)) = alone(key, toml::Value::Array(vec![item.clone()])) {
                        let rest = path.strip_prefix(&format!("{key}[0]")).unwrap_or("");
                        errors.push(format!("{name}.{key}[{i}]{rest}: {msg}"));
                    }
                }
            }
            // Alone, the key is the cause even where serde names no path (an unknown key).
            None if path.starts_with(key.as_str()) => errors.push(format!("{name}.{path}: {msg}")),
            None => errors.push(format!("{name}.{key}: {msg}")),
        }
    }
    if errors.len() == before {
        errors.push(first);
    }
    None
}

/// `(path within the section, message)` of the first error.
fn deserialize<T: DeserializeOwned>(table: &toml::Table) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(toml::Value::Table(table.clone())).map_err(
        |e: serde_path_to_error::Error<toml::de::Error>| {
            (e.path().to_string(), e.inner().message().to_owned())
        },
    )
}

/// `.key` for a path below a section, nothing for the section itself (`.` from the library).
fn dotted(path: &str) -> String {
    match path {
        "" | "." => String::new(),
        p if p.starts_with('[') => p.to_owned(),
        p => format!(".{p}"),
    }
}

/// Browsers keep `Secure` cookies only for https and for loopback names, which count as secure.
fn is_secure_context(origin: &Origin) -> bool {
    let Ok(url) = url::Url::parse(origin.as_str()) else {
        return false;
    };
    match (url.scheme(), url.host_str()) {
        ("https", _) => true,
        ("http", Some(host)) => {
            host == "localhost"
                || host.ends_with(".localhost")
                || host == "127.0.0.1"
                || host == "[::1]"
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse(text: &str) -> Result<Config, ConfigErrors> {
        Config::from_table(text.parse().expect("toml"))
    }

    #[test]
    fn env_overrides_typed_values_and_strings() {
        let config = Config::load(
            None,
            env(&[
                ("BATON_SESSION__IDLE_TIMEOUT_SECS", "60"),
                ("BATON_TRUST__ORIGINS", "[\"https://shop.example.com\"]"),
                ("BATON_SERVER__PUBLIC_ORIGIN", "https://broker.example.com"),
                ("BATON_HANDOFF__ENABLED", "false"),
                ("BATON_CONFIG", "ignored.toml"),
            ]),
        )
        .expect("loads");
        assert_eq!(config.session.idle_timeout_secs, 60);
        assert_eq!(
            config.trust.origins.to_strings(),
            vec!["https://shop.example.com"]
        );
        assert_eq!(
            config.server.public_origin.as_str(),
            "https://broker.example.com"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = Config::load(None, env(&[("BATON_SESSION__IDLE_TIMEOUT", "60")]))
            .expect_err("unknown key");
        assert!(err.to_string().contains("idle_timeout"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let err = parse(
            r#"
            [server]
            public_origin = "https://broker.example.com/path"
            [trust]
            origins = ["*", "https://shop.example.com", "https://*.com"]
            [session]
            max_values = "64"
            idle_timeout_secs = -1
            [handoff]
            keys = [{ kid = "a", secret = "short" }]
            "#,
        )
        .expect_err("invalid");
        let text = err.to_string();
        for needle in [
            "trust.origins[0]",
            "trust.origins[2]",
            "server.public_origin",
            "session.max_values",
            "session.idle_timeout_secs",
            "handoff.keys[0].secret",
        ] {
            assert!(text.contains(needle), "missing {needle} in {text}");
        }
        assert!(!text.contains("origins[1]"), "{text}");
        assert_eq!(err.0.len(), 6, "{text}");
    }

    #[test]
    fn rules_across_keys_are_checked_once_the_types_are_right() {
        let err = parse("[session]\nabsolute_timeout_secs = 10\nidle_timeout_secs = 60\n")
            .expect_err("invalid");
        assert!(
            err.to_string().contains("session.absolute_timeout_secs"),
            "{err}"
        );
    }

    #[test]
    fn plain_http_public_origin_needs_localhost() {
        assert!(parse("[server]\npublic_origin = \"http://broker.example.com\"\n").is_err());
        assert!(parse("[server]\npublic_origin = \"http://broker.localhost:8080\"\n").is_ok());
    }

    #[test]
    fn defaults_are_valid_and_trust_nothing() {
        let config = parse("").expect("valid");
        assert!(config.trust.origins.is_empty());
        assert_eq!(
            config.server.public_origin.as_str(),
            "http://broker.localhost:8080"
        );
        assert!(config.handoff.uses_dev_key(&config.server.public_origin));
        let moved = parse("[server]\nlisten = \"127.0.0.1:9999\"\n").expect("valid");
        assert_eq!(
            moved.server.public_origin.as_str(),
            "http://broker.localhost:9999"
        );
    }

    #[test]
    fn an_https_deployment_needs_keys_unless_handoff_is_off() {
        let https = "[server]\npublic_origin = \"https://broker.example.com\"\n";
        let err = parse(https).expect_err("no keys");
        assert!(err.to_string().contains("handoff.keys"), "{err}");
        assert!(parse(&format!("{https}[handoff]\nenabled = false\n")).is_ok());
        assert!(parse(&format!("{https}[handoff]\ngenerate_dev_key = true\n")).is_ok());
    }

    #[test]
    fn a_file_names_its_trusted_origins_and_problems_name_their_source() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("b.toml");
        std::fs::write(
            &path,
            "[server]\nlisten = \"127.0.0.1:1\"\n\n[session]\nmax_values = \"9\"\n",
        )
        .expect("write");
        let err = Config::load(
            Some(&path),
            env(&[("BATON_SESSION__IDLE_TIMEOUT_SECS", "soon")]),
        )
        .expect_err("invalid");
        let text = err.to_string();
        assert!(text.contains("trust.origins: missing"), "{text}");
        assert!(
            text.contains("b.toml line 5): "),
            "a file value names its line: {text}"
        );
        assert!(
            text.contains("BATON_SESSION__IDLE_TIMEOUT_SECS (session.idle_timeout_secs): "),
            "an env value names its variable: {text}"
        );
        std::fs::write(&path, "[trust]\norigins = []\n").expect("write");
        let config =
            Config::load(Some(&path), env(&[])).expect("an explicit empty list is a choice");
        assert!(config.warnings().iter().any(|w| w.contains("no site")));
    }

    const SECRET_A: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE";
    const SECRET_B: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI";
    /// A P-256 public key (of the private scalar 7 × 32, by `openssl ec -pubout`).
    const ES_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEHhhTL9R1TALzBB2cdc6zO4P/2BrH\nzk/ogsyxyYvFiW6kbDEcTi/0DdlqNlPm5FRF0y3+SG7O11x6kMahiIHAow==\n-----END PUBLIC KEY-----\n";

    fn identity(section: &str) -> Result<Config, ConfigErrors> {
        parse(&format!("[identity]\n{section}"))
    }

    #[test]
    fn identity_is_off_without_keys_and_needs_nothing() {
        let config = parse("").expect("valid");
        assert!(config.identity.keys.is_empty());
        assert_eq!(config.identity.max_lifetime_secs, 600);
        assert!(crate::identity::IdentityKeys::from_config(&config).is_none());
    }

    #[test]
    fn identity_keys_of_both_algorithms_load() {
        let config = identity(&format!(
            "subject_secret = \"{SECRET_B}\"\nmax_lifetime_secs = 120\n[[identity.keys]]\nkid = \"a\"\nsecret = \"{SECRET_A}\"\n[[identity.keys]]\nkid = \"e\"\nalg = \"ES256\"\npublic_key = \"\"\"\n{ES_PEM}\"\"\"\n"
        ))
        .expect("valid");
        let keys = &config.identity.keys;
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].alg, crate::identity::IdentityAlg::HS256);
        assert_eq!(keys[0].secret.as_deref(), Some(&[1u8; 32][..]));
        assert_eq!(keys[1].alg, crate::identity::IdentityAlg::ES256);
        assert!(keys[1].public_key.is_some());
        assert_eq!(config.identity.max_lifetime_secs, 120);
        let shown = format!("{:?}", config.identity);
        assert!(
            !shown.contains(SECRET_A) && !shown.contains(SECRET_B),
            "{shown}"
        );
        assert!(crate::identity::IdentityKeys::from_config(&config).is_some());
    }

    #[test]
    fn identity_keys_and_subject_secret_come_from_the_environment_too() {
        let config = Config::load(
            None,
            env(&[
                (
                    "BATON_IDENTITY__KEYS",
                    &format!("[{{kid = \"a\", secret = \"{SECRET_A}\"}}]"),
                ),
                ("BATON_IDENTITY__SUBJECT_SECRET", SECRET_B),
            ]),
        )
        .expect("loads");
        assert_eq!(config.identity.keys[0].kid, "a");
        assert_eq!(
            config.identity.subject_secret,
            Some(crate::identity::SubjectSecret::new(vec![2; 32]))
        );
    }

    /// The one problem `section` has, which must name `key` and say `fix`, and never show a
    /// secret.
    fn identity_problem(section: &str, key: &str, fix: &str) {
        let err = identity(section).expect_err(section);
        let text = err.to_string();
        assert_eq!(err.0.len(), 1, "{text}");
        assert!(text.starts_with(&format!("{key}: ")), "{key} in {text}");
        assert!(text.contains(fix), "{fix:?} in {text}");
        for secret in [SECRET_A, SECRET_B, "c2hvcnQ"] {
            assert!(!text.contains(secret), "{text}");
        }
    }

    const SECRET: &str = "SeCrEt-4f2b9a71c0d3e8a6b5f4c3d2e1a0b9c8d7e6";

    /// The `toml` crate's `Display` of a syntax error prints the source line: here, the secret.
    #[test]
    fn a_syntax_error_names_its_line_column_and_key_and_never_the_source_line() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("b.toml");
        for (text, line, key) in [
            (
                format!(
                    "[trust]\norigins = []\n[[handoff.keys]]\nkid = \"k\"\nsecret = \"{SECRET}\n"
                ),
                5,
                "near handoff.keys[0].secret",
            ),
            (
                format!(
                    "[trust]\norigins = []\n[store]\nbackend = \"redis\"\nredis_url = \"redis://:{SECRET}@redis:6379\" x\n"
                ),
                5,
                "near store.redis_url",
            ),
        ] {
            std::fs::write(&path, &text).expect("write");
            let err = Config::load(Some(&path), env(&[])).expect_err("not TOML");
            let shown = err.to_string();
            assert!(!shown.contains("SeCrEt"), "the secret is shown: {shown}");
            assert!(shown.contains(&format!("line {line}, column ")), "{shown}");
            assert!(shown.contains(key), "{shown}");
            assert!(shown.contains("b.toml is not valid TOML"), "{shown}");
        }
    }

    #[test]
    fn each_identity_mistake_is_named_by_its_key_with_its_fix() {
        let b = format!("subject_secret = \"{SECRET_B}\"\n");
        let a = format!("kid = \"a\"\nsecret = \"{SECRET_A}\"\n");
        identity_problem(
            &format!("[[identity.keys]]\n{a}"),
            "identity.subject_secret",
            "missing",
        );
        identity_problem(
            &format!("subject_secret = \"c2hvcnQ\"\n[[identity.keys]]\n{a}"),
            "identity.subject_secret",
            "baton keygen",
        );
        identity_problem(
            &format!("subject_secret = \"{SECRET_A}\"\n[[identity.keys]]\n{a}"),
            "identity.subject_secret",
            "use a separate secret",
        );
        identity_problem(
            &format!("{b}[[identity.keys]]\nkid = \"a\"\nsecret = \"c2hvcnQ\"\n"),
            "identity.keys[0].secret",
            "at least 32",
        );
        identity_problem(
            &format!("{b}[[identity.keys]]\nkid = \"a\"\n"),
            "identity.keys[0].secret",
            "missing",
        );
        identity_problem(
            &format!("{b}[[identity.keys]]\n{a}[[identity.keys]]\n{a}"),
            "identity.keys[1].kid",
            "used twice",
        );
        identity_problem(
            &format!("{b}[[identity.keys]]\nkid = \"a b\"\nsecret = \"{SECRET_A}\"\n"),
            "identity.keys[0].kid",
            "1 to 64 characters",
        );
        identity_problem(
            &format!("{b}[[identity.keys]]\n{a}alg = \"RS256\"\n"),
            "identity.keys[0].alg",
            "HS256",
        );
        identity_problem(
            &format!("{b}[[identity.keys]]\nkid = \"e\"\nalg = \"ES256\"\n"),
            "identity.keys[0].public_key",
            "missing",
        );
        identity_problem(
            &format!("{b}[[identity.keys]]\nkid = \"e\"\nalg = \"ES256\"\npublic_key = \"nope\"\n"),
            "identity.keys[0].public_key",
            "P-256 public key in PEM",
        );
        identity_problem(
            &format!(
                "{b}[[identity.keys]]\n{a}alg = \"ES256\"\npublic_key = \"\"\"\n{ES_PEM}\"\"\"\n"
            ),
            "identity.keys[0].secret",
            "remove secret",
        );
        identity_problem(
            &format!("{b}[[identity.keys]]\n{a}public_key = \"\"\"\n{ES_PEM}\"\"\"\n"),
            "identity.keys[0].public_key",
            "only an ES256 key",
        );
        for lifetime in [0, 601] {
            identity_problem(
                &format!("max_lifetime_secs = {lifetime}\n"),
                "identity.max_lifetime_secs",
                "between 1 and 600",
            );
        }
        identity_problem("expiry = 5\n", "identity.expiry", "unknown field");
    }

    #[test]
    fn a_bad_value_from_the_environment_is_named_by_its_variable_and_never_shown() {
        for (name, value, says) in [
            // Not TOML (the closing bracket is missing), so read as a string.
            (
                "BATON_HANDOFF__KEYS",
                format!("[{{ kid = \"k\", secret = \"{SECRET}\" }}"),
                "unclosed array",
            ),
            (
                "BATON_HANDOFF__KEYS",
                format!("[{{ kid = \"k\", secret = \"{SECRET}\", x = 1 }}]"),
                "handoff.keys[0]",
            ),
            (
                "BATON_SESSION__IDLE_TIMEOUT_SECS",
                SECRET.to_owned(),
                "expected u64",
            ),
            (
                "BATON_STORE__BACKEND",
                SECRET.to_owned(),
                "expected `sqlite` or `redis`",
            ),
            (
                "BATON_SERVER__LISTEN",
                SECRET.to_owned(),
                "is not an address:port",
            ),
        ] {
            let err = Config::load(None, env(&[(name, &value)])).expect_err("invalid");
            let shown = err.to_string();
            assert!(
                !shown.contains("SeCrEt"),
                "{name}: the value is shown: {shown}"
            );
            assert!(shown.contains(name), "{name} is not named: {shown}");
            assert!(shown.contains(says), "{name}: not {says:?}: {shown}");
        }
    }

    #[test]
    fn store_is_chosen_by_its_backend_tag() {
        let err = parse("[store]\nbackend = \"redis\"\n").expect_err("no url");
        assert!(err.to_string().contains("store"), "{err}");
        let err = parse("[store]\nbackend = \"sqlite\"\nredis_url = \"redis://x\"\n")
            .expect_err("a redis key on sqlite");
        assert!(err.to_string().contains("store.redis_url"), "{err}");
        let err = parse("[store]\nbackend = \"mongo\"\n").expect_err("unknown backend");
        assert!(err.to_string().contains("mongo"), "{err}");
    }
}
