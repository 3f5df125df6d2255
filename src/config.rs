//! Configuration: one TOML file (`config/baton.toml` documents every key), every key overridable
//! by an environment variable `BATON_SECTION__KEY`, validated once at start into `Settings`.
//!
//! Validation collects every problem, each naming its key and the fix, so an operator fixes a
//! config in one pass. Nothing insecure has a silent default: no trusted origin is assumed, and a
//! handoff signing key is generated only when the config says this is a development setup.

use std::net::SocketAddr;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::origin::{Origin, TrustedOrigins};
use crate::session::Timeouts;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub server: ServerSection,
    pub trust: TrustSection,
    pub session: SessionSection,
    pub store: StoreSection,
    pub handoff: HandoffSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    pub listen: String,
    pub public_origin: Option<String>,
    pub shutdown_grace_secs: u64,
    pub request_timeout_secs: u64,
    pub rate_limit_per_minute: u32,
    pub client_ip_header: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TrustSection {
    pub origins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSection {
    pub idle_timeout_secs: u64,
    pub absolute_timeout_secs: u64,
    pub max_value_bytes: usize,
    pub max_values: usize,
    /// Where the browser lets the broker keep no cookie at all, hand the partner page a key of
    /// its own to hold (see `session::PageKey`). Off: the session then stays on one page there.
    pub page_keys: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Redis,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    pub backend: Backend,
    pub sqlite_path: String,
    pub redis_url: Option<String>,
    pub redis_prefix: String,
    pub timeout_ms: u64,
    pub sweep_interval_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    pub kid: String,
    pub secret: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HandoffSection {
    pub ttl_secs: u64,
    /// The `iss` of every token: names the deployment, not a node, so that every node behind one
    /// load balancer (whatever its own address) accepts the others' tokens.
    pub issuer: String,
    /// Signing keys, newest first: the first signs, all verify.
    pub keys: Vec<KeyEntry>,
    /// Generate a throwaway key at start when `keys` is empty. Development only: tokens minted by
    /// one node then fail on every other node and after a restart.
    pub generate_dev_key: bool,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_origin: None,
            shutdown_grace_secs: 10,
            request_timeout_secs: 10,
            rate_limit_per_minute: 6000,
            client_ip_header: None,
        }
    }
}

impl Default for SessionSection {
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

impl Default for StoreSection {
    fn default() -> Self {
        Self {
            backend: Backend::Sqlite,
            sqlite_path: "baton.db".into(),
            redis_url: None,
            redis_prefix: "baton:".into(),
            timeout_ms: 1000,
            sweep_interval_secs: 60,
        }
    }
}

impl Default for HandoffSection {
    fn default() -> Self {
        Self {
            ttl_secs: 60,
            issuer: "baton".into(),
            keys: Vec::new(),
            generate_dev_key: false,
        }
    }
}

/// A handoff signing key, decoded.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, <redacted>)", self.kid)
    }
}

#[derive(Clone)]
pub enum StoreSettings {
    Sqlite {
        path: String,
    },
    Redis {
        url: String,
        prefix: String,
        timeout_ms: u64,
    },
}

/// Printed in logs: the Redis URL without its password.
impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite { path } => write!(f, "sqlite {path}"),
            Self::Redis { url, prefix, .. } => {
                let shown = match url::Url::parse(url) {
                    Ok(mut u) => {
                        if u.password().is_some() {
                            let _ = u.set_password(Some("***"));
                        }
                        u.to_string()
                    }
                    Err(_) => "<unparseable url>".into(),
                };
                write!(f, "redis {shown} prefix {prefix:?}")
            }
        }
    }
}

/// The validated configuration the application runs on.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub public_origin: Origin,
    pub trusted: TrustedOrigins,
    pub timeouts: Timeouts,
    pub max_value_bytes: usize,
    pub max_values: usize,
    pub page_keys: bool,
    pub store: StoreSettings,
    pub sweep_interval_secs: u64,
    pub handoff_ttl_secs: u64,
    pub handoff_issuer: String,
    pub handoff_keys: Vec<SigningKey>,
    /// True when `handoff_keys` holds a key generated at start (development only).
    pub handoff_dev_key: bool,
    pub shutdown_grace_secs: u64,
    pub request_timeout_secs: u64,
    /// API requests per client IP per minute; 0 disables the limit.
    pub rate_limit_per_minute: u32,
    pub client_ip_header: Option<axum::http::HeaderName>,
    /// Things that work but that an operator should know (printed by `check-config`, logged at start).
    pub warnings: Vec<String>,
}

pub const MIN_SECRET_BYTES: usize = 32;

/// Every problem found in a config, each naming its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

fn one(msg: impl Into<String>) -> ConfigErrors {
    ConfigErrors(vec![msg.into()])
}

impl RawConfig {
    /// Reads `path` (or the built-in defaults when `None`) and applies `BATON_*` overrides from `env`.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigErrors> {
        let mut table = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| one(format!("cannot read {}: {e}", path.display())))?;
                text.parse::<toml::Table>()
                    .map_err(|e| one(format!("{} is not valid TOML: {e}", path.display())))?
            }
            None => toml::Table::new(),
        };
        apply_env(&mut table, env)?;
        toml::Value::Table(table)
            .try_into::<RawConfig>()
            .map_err(|e| one(format!("config: {}", e.message())))
    }

    /// The built-in development defaults used by `baton serve` without `--config`.
    pub fn dev_defaults() -> Self {
        let mut raw = Self::default();
        raw.handoff.generate_dev_key = true;
        raw
    }

    pub fn validate(&self) -> Result<Settings, ConfigErrors> {
        let mut errors = Vec::new();
        let listen: Option<SocketAddr> = match self.server.listen.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                errors.push(format!(
                    "server.listen: {:?} is not an address:port such as \"127.0.0.1:8080\"",
                    self.server.listen
                ));
                None
            }
        };
        let public_raw = match (&self.server.public_origin, listen) {
            (Some(o), _) => Some(o.clone()),
            (None, Some(addr)) => Some(format!("http://broker.localhost:{}", addr.port())),
            (None, None) => None,
        };
        let public_origin = public_raw.and_then(|raw| match Origin::parse(&raw) {
            Ok(origin) if is_secure_context(&origin) => Some(origin),
            Ok(_) => {
                errors.push(format!(
                    "server.public_origin: {raw:?} must be https (plain http only for *.localhost during development): the broker's cookies are Secure"
                ));
                None
            }
            Err(denied) => {
                errors.push(format!(
                    "server.public_origin: {raw:?} is not an origin ({denied}); write it as scheme://host[:port] in lowercase, without a path"
                ));
                None
            }
        });
        let trusted = match TrustedOrigins::parse_all(&self.trust.origins) {
            Ok(t) => Some(t),
            Err(problems) => {
                errors.extend(problems.into_iter().map(|p| format!("trust.origins: {p}")));
                None
            }
        };
        let s = &self.session;
        let client_ip_header = match &self.server.client_ip_header {
            None => None,
            Some(name) => match axum::http::HeaderName::try_from(name.to_ascii_lowercase()) {
                Ok(h) => Some(h),
                Err(_) => {
                    errors.push(format!("server.client_ip_header: {name:?} is not a header name (e.g. \"x-forwarded-for\")"));
                    None
                }
            },
        };
        if s.idle_timeout_secs == 0 {
            errors.push("session.idle_timeout_secs: must be at least 1".into());
        }
        if s.absolute_timeout_secs < s.idle_timeout_secs {
            errors.push(format!(
                "session.absolute_timeout_secs: {} is shorter than session.idle_timeout_secs ({}); make it at least as long",
                s.absolute_timeout_secs, s.idle_timeout_secs
            ));
        }
        if s.max_value_bytes == 0 || s.max_value_bytes > 1 << 20 {
            errors.push("session.max_value_bytes: must be between 1 and 1048576".into());
        }
        if s.max_values == 0 || s.max_values > 1024 {
            errors.push("session.max_values: must be between 1 and 1024".into());
        }
        let store = match self.store.backend {
            Backend::Sqlite => {
                if self.store.sqlite_path.trim().is_empty() {
                    errors.push(
                        "store.sqlite_path: must name a file (or \":memory:\" for tests)".into(),
                    );
                }
                StoreSettings::Sqlite {
                    path: self.store.sqlite_path.clone(),
                }
            }
            Backend::Redis => match &self.store.redis_url {
                Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
                    StoreSettings::Redis {
                        url: url.clone(),
                        prefix: self.store.redis_prefix.clone(),
                        timeout_ms: self.store.timeout_ms,
                    }
                }
                _ => {
                    errors.push("store.redis_url: backend = \"redis\" needs redis_url = \"redis://host:6379\" (or rediss:// for TLS)".into());
                    StoreSettings::Redis {
                        url: String::new(),
                        prefix: String::new(),
                        timeout_ms: 0,
                    }
                }
            },
        };
        if self.store.timeout_ms == 0 {
            errors.push("store.timeout_ms: must be at least 1".into());
        }
        if self.handoff.ttl_secs == 0 || self.handoff.ttl_secs > 600 {
            errors.push("handoff.ttl_secs: must be between 1 and 600".into());
        }
        if self.handoff.issuer.is_empty() || self.handoff.issuer.len() > 256 {
            errors.push("handoff.issuer: must be 1 to 256 characters".into());
        }
        let mut handoff_keys = Vec::new();
        for (i, key) in self.handoff.keys.iter().enumerate() {
            if key.kid.is_empty()
                || key.kid.len() > 64
                || !key
                    .kid
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                errors.push(format!(
                    "handoff.keys[{i}].kid: {:?} must be 1 to 64 characters from A-Z a-z 0-9 - _ .",
                    key.kid
                ));
            }
            if handoff_keys.iter().any(|k: &SigningKey| k.kid == key.kid) {
                errors.push(format!(
                    "handoff.keys[{i}].kid: {:?} is used twice",
                    key.kid
                ));
            }
            match URL_SAFE_NO_PAD.decode(key.secret.trim_end_matches('=')) {
                Ok(secret) if secret.len() >= MIN_SECRET_BYTES => handoff_keys.push(SigningKey {
                    kid: key.kid.clone(),
                    secret,
                }),
                _ => errors.push(format!(
                    "handoff.keys[{i}].secret: must be base64url of at least {MIN_SECRET_BYTES} random bytes; run `baton keygen` for one"
                )),
            }
        }
        let mut warnings = Vec::new();
        if self.server.rate_limit_per_minute > 0
            && self.server.client_ip_header.is_none()
            && listen.is_some_and(|a| !a.ip().is_loopback())
        {
            warnings.push("server.client_ip_header is unset: the rate limit counts per TCP peer, so behind a load balancer or proxy every client shares one budget; set it to the header your proxy appends (e.g. \"x-forwarded-for\")".into());
        }
        let mut handoff_dev_key = false;
        // A plain-http localhost public origin can only be a development setup (no browser elsewhere
        // can reach it), so a throwaway key there is no risk and saves a step.
        let local_dev = public_origin
            .as_ref()
            .is_some_and(|o| o.as_str().starts_with("http://"));
        if self.handoff.keys.is_empty() {
            if self.handoff.generate_dev_key || local_dev {
                handoff_keys.push(SigningKey {
                    kid: "dev".into(),
                    secret: crate::session::random_bytes::<32>().to_vec(),
                });
                handoff_dev_key = true;
                warnings.push("handoff: no keys configured, so handoff tokens are signed with a development key generated at start; fine for one development node, but tokens die with it and no other node accepts them: run `baton keygen` for production".into());
            } else {
                warnings.push("handoff.keys is empty: cross-site handoff is disabled, so sessions cross sites only where the browser allows third-party cookies; run `baton keygen` and add its output to enable it".into());
            }
        }
        match (errors.is_empty(), listen, public_origin, trusted) {
            (true, Some(listen), Some(public_origin), Some(trusted)) => Ok(Settings {
                listen,
                public_origin,
                trusted,
                timeouts: Timeouts {
                    idle_ms: (s.idle_timeout_secs as i64).saturating_mul(1000),
                    absolute_ms: (s.absolute_timeout_secs as i64).saturating_mul(1000),
                },
                max_value_bytes: s.max_value_bytes,
                max_values: s.max_values,
                page_keys: s.page_keys,
                store,
                sweep_interval_secs: self.store.sweep_interval_secs.max(1),
                handoff_ttl_secs: self.handoff.ttl_secs,
                handoff_issuer: self.handoff.issuer.clone(),
                handoff_keys,
                handoff_dev_key,
                shutdown_grace_secs: self.server.shutdown_grace_secs,
                request_timeout_secs: self.server.request_timeout_secs.max(1),
                rate_limit_per_minute: self.server.rate_limit_per_minute,
                client_ip_header,
                warnings,
            }),
            _ => Err(ConfigErrors(errors)),
        }
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

/// Applies `BATON_SECTION__KEY=value`. The value is read as a TOML value when it parses as one
/// (numbers, booleans, arrays, inline tables), else as a plain string.
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigErrors> {
    let mut errors = Vec::new();
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix("BATON_") else {
            continue;
        };
        // Variables the CLI reads itself (BATON_CONFIG, BATON_LOG) have no `__`.
        let Some((section, key)) = rest.split_once("__") else {
            continue;
        };
        let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
        if section.is_empty() || key.is_empty() {
            errors.push(format!("{name}: expected BATON_SECTION__KEY"));
            continue;
        }
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(raw));
        let entry = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match entry.as_table_mut() {
            Some(t) => {
                t.insert(key, value);
            }
            None => errors.push(format!("{name}: [{section}] is not a table in the config")),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(errors))
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

    #[test]
    fn env_overrides_typed_values_and_strings() {
        let raw = RawConfig::load(
            None,
            env(&[
                ("BATON_SESSION__IDLE_TIMEOUT_SECS", "60"),
                ("BATON_TRUST__ORIGINS", "[\"https://shop.example.com\"]"),
                ("BATON_SERVER__PUBLIC_ORIGIN", "https://broker.example.com"),
                ("BATON_CONFIG", "ignored.toml"),
            ]),
        )
        .expect("loads");
        assert_eq!(raw.session.idle_timeout_secs, 60);
        assert_eq!(raw.trust.origins, vec!["https://shop.example.com"]);
        assert_eq!(
            raw.server.public_origin.as_deref(),
            Some("https://broker.example.com")
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = RawConfig::load(None, env(&[("BATON_SESSION__IDLE_TIMEOUT", "60")]))
            .expect_err("unknown key");
        assert!(err.to_string().contains("idle_timeout"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let mut raw = RawConfig::default();
        raw.trust.origins = vec!["*".into(), "https://*.com".into()];
        raw.server.public_origin = Some("https://broker.example.com/path".into());
        raw.session.absolute_timeout_secs = 10;
        let err = raw.validate().expect_err("invalid");
        let text = err.to_string();
        for needle in [
            "trust.origins",
            "server.public_origin",
            "session.absolute_timeout_secs",
        ] {
            assert!(text.contains(needle), "missing {needle} in {text}");
        }
        assert!(err.0.len() >= 4, "{text}");
    }

    #[test]
    fn plain_http_public_origin_needs_localhost() {
        let mut raw = RawConfig::dev_defaults();
        raw.server.public_origin = Some("http://broker.example.com".into());
        assert!(raw.validate().is_err());
        raw.server.public_origin = Some("http://broker.localhost:8080".into());
        assert!(raw.validate().is_ok());
    }

    #[test]
    fn defaults_are_valid_and_trust_nothing() {
        let settings = RawConfig::dev_defaults().validate().expect("valid");
        assert!(settings.trusted.is_empty());
        assert!(settings.handoff_dev_key);
        assert_eq!(
            settings.public_origin.as_str(),
            "http://broker.localhost:8080"
        );
    }
}

#[cfg(test)]
mod redaction {
    use super::StoreSettings;

    #[test]
    fn redis_passwords_stay_out_of_logs() {
        let s = StoreSettings::Redis {
            url: "redis://user:s3cret@db.internal:6379/2".into(),
            prefix: "baton:".into(),
            timeout_ms: 1000,
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("db.internal"), "{shown}");
    }
}
