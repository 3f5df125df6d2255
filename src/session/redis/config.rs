//! `[store]` for the Redis backend (`RedisConfig`): which topology, its addresses, the key
//! prefix, timeouts and replica acknowledgements; the problems a config can have, each named
//! with its key; and how the addresses are shown in logs and `check-config` (never with a
//! credential). Kept apart from the store so the rules of the settings read on one page.

use super::conn::Topology;

/// `[store]` with `backend = "redis"`: exactly one of `redis_url` (one Redis), `redis_sentinels`
/// with `redis_master_name` (Sentinel) or `redis_cluster_nodes` (Cluster).
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:6379[/db]`, or `rediss://` for TLS.
    pub redis_url: String,
    /// Sentinels, each `redis://[user:password@]host:26379` (or `rediss://`). The user, password,
    /// db and TLS of the first one also apply to the Redis nodes the sentinels name.
    #[serde(deserialize_with = "url_list")]
    pub redis_sentinels: Vec<String>,
    /// The name the sentinels monitor the primary by (`sentinel monitor <name> ...`).
    pub redis_master_name: String,
    /// Some nodes of a Redis Cluster (the rest are discovered), each `redis://[user:password@]
    /// host:port` (or `rediss://`).
    #[serde(deserialize_with = "url_list")]
    pub redis_cluster_nodes: Vec<String>,
    /// Prefix of every key baton writes, so several deployments can share one Redis.
    pub redis_prefix: String,
    /// A call that takes longer fails with 503 `store_unavailable`.
    pub timeout_ms: u64,
    pub sweep_interval_secs: u64,
    /// 0: a write is acknowledged once the primary has it. N > 0: only once N replicas have it
    /// too (`WAIT N replica_ack_timeout_ms`), else 503 `store_unavailable`; what each promises:
    /// docs/deployment.md.
    pub replica_acks: u32,
    /// How long a write waits for `replica_acks` replicas; below `timeout_ms`.
    pub replica_ack_timeout_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            redis_url: String::new(),
            redis_sentinels: Vec::new(),
            redis_master_name: String::new(),
            redis_cluster_nodes: Vec::new(),
            redis_prefix: "baton:".into(),
            timeout_ms: 1000,
            sweep_interval_secs: 60,
            replica_acks: 0,
            replica_ack_timeout_ms: 500,
        }
    }
}

fn is_redis_url(url: &str) -> bool {
    url.starts_with("redis://") || url.starts_with("rediss://")
}

/// A list of Redis URLs. serde's own "invalid type" message quotes the value it got, and a URL
/// given as a plain string instead of a list may hold a password, which `check-config` would
/// then print: this says what is wrong without the value.
fn url_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    use serde::Deserialize as _;
    use serde::de::Error as _;
    let toml::Value::Array(items) = toml::Value::deserialize(d)? else {
        return Err(D::Error::custom(
            "must be a list of URLs, such as [\"redis://host:6379\"]",
        ));
    };
    items
        .into_iter()
        .map(|item| match item {
            toml::Value::String(url) => Ok(url),
            _ => Err(D::Error::custom("each must be a URL string")),
        })
        .collect()
}

/// What a credential, or anything that may be one, is shown as.
const MASK: &str = "***";

/// `url` as logs, `check-config` and errors may show it: scheme, host, port and db, with every
/// credential masked. The user and password of the userinfo are masked (a user name is half a
/// credential and tells an attacker which ACL user to aim at). So is every value of the query:
/// the redis crate reads credentials from it in some forms (`user`, `pass`), an operator may put
/// `?password=` there, and a list of which names are secret would fall behind the crate; the
/// names stay (they say which options are set), except a part without `=`, which is masked
/// whole since it has no name. A fragment, never used by Redis, is masked too.
fn redact(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return "<unparseable url>".into();
    };
    if !u.username().is_empty() {
        let _ = u.set_username(MASK);
    }
    if u.password().is_some() {
        let _ = u.set_password(Some(MASK));
    }
    if let Some(query) = u.query() {
        let masked = query
            .split('&')
            .map(|part| match part.split_once('=') {
                Some((name, _)) => format!("{name}={MASK}"),
                None => MASK.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
        u.set_query(Some(&masked));
    }
    if u.fragment().is_some() {
        u.set_fragment(Some(MASK));
    }
    u.to_string()
}

impl RedisConfig {
    pub(crate) fn problems(&self, out: &mut Vec<String>) {
        let single = !self.redis_url.is_empty();
        let sentinel = !self.redis_sentinels.is_empty();
        let cluster = !self.redis_cluster_nodes.is_empty();
        match (single, sentinel, cluster) {
            (false, false, false) => out.push("store.redis_url: backend = \"redis\" needs redis_url = \"redis://host:6379\" (or rediss:// for TLS), or redis_sentinels and redis_master_name (Sentinel), or redis_cluster_nodes (Cluster)".into()),
            (true, false, false) | (false, true, false) | (false, false, true) => {}
            _ => out.push("store.redis_url: set exactly one of redis_url, redis_sentinels, redis_cluster_nodes".into()),
        }
        if single && !is_redis_url(&self.redis_url) {
            out.push("store.redis_url: must start with redis:// or rediss:// (TLS)".into());
        }
        for (key, list) in [
            ("redis_sentinels", &self.redis_sentinels),
            ("redis_cluster_nodes", &self.redis_cluster_nodes),
        ] {
            if list.iter().any(|u| !is_redis_url(u)) {
                out.push(format!(
                    "store.{key}: each must start with redis:// or rediss:// (TLS)"
                ));
            }
        }
        if sentinel && self.redis_master_name.is_empty() {
            out.push("store.redis_master_name: redis_sentinels needs the name the sentinels monitor the primary by".into());
        }
        if !sentinel && !self.redis_master_name.is_empty() {
            out.push("store.redis_master_name: only with redis_sentinels".into());
        }
        if cluster && self.redis_prefix.contains(['{', '}']) {
            out.push("store.redis_prefix: must not contain { or } on Redis Cluster (they would choose the hash slot of every key)".into());
        }
        if self.timeout_ms == 0 {
            out.push("store.timeout_ms: must be at least 1".into());
        }
        if self.replica_acks > 0 && !(1..self.timeout_ms).contains(&self.replica_ack_timeout_ms) {
            out.push("store.replica_ack_timeout_ms: must be at least 1 and below timeout_ms (the whole call, the write and its wait, is bounded by timeout_ms)".into());
        }
    }

    /// `redis_url` without any credential, for logs (`redact`).
    pub fn redacted_url(&self) -> String {
        redact(&self.redis_url)
    }

    /// Where Redis is, without any credential (`redact` on every address), for logs,
    /// `check-config` and the start-up line.
    pub fn describe(&self) -> String {
        let list = |l: &[String]| l.iter().map(|u| redact(u)).collect::<Vec<_>>().join(", ");
        if !self.redis_sentinels.is_empty() {
            format!(
                "sentinel {:?} via [{}]",
                self.redis_master_name,
                list(&self.redis_sentinels)
            )
        } else if !self.redis_cluster_nodes.is_empty() {
            format!("cluster [{}]", list(&self.redis_cluster_nodes))
        } else {
            self.redacted_url()
        }
    }

    pub(super) fn topology(&self) -> Topology<'_> {
        if !self.redis_sentinels.is_empty() {
            Topology::Sentinel {
                sentinels: &self.redis_sentinels,
                master_name: &self.redis_master_name,
            }
        } else if !self.redis_cluster_nodes.is_empty() {
            Topology::Cluster(&self.redis_cluster_nodes)
        } else {
            Topology::Single(&self.redis_url)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each valid shape of `[store]` for Redis passes.
    #[test]
    fn valid_redis_settings_pass() {
        let problems = |c: RedisConfig| {
            let mut out = Vec::new();
            c.problems(&mut out);
            out
        };
        let url = |u: &str| RedisConfig {
            redis_url: u.into(),
            ..RedisConfig::default()
        };
        for ok in [
            url("redis://redis.internal:6379"),
            url("rediss://redis.internal:6380"),
            RedisConfig {
                redis_sentinels: vec!["redis://s1:26379".into()],
                redis_master_name: "baton".into(),
                ..RedisConfig::default()
            },
            RedisConfig {
                redis_cluster_nodes: vec!["redis://r1:6379".into()],
                ..RedisConfig::default()
            },
            // Without replica acks their timeout is not used, so it is not judged.
            RedisConfig {
                replica_ack_timeout_ms: 5000,
                ..url("redis://r:6379")
            },
            RedisConfig {
                replica_acks: 1,
                replica_ack_timeout_ms: 999,
                ..url("redis://r:6379")
            },
        ] {
            assert_eq!(problems(ok), Vec::<String>::new());
        }
    }

    /// Each mistake in `[store]` for Redis is named with its key.
    #[test]
    fn redis_settings_name_each_mistake() {
        let problems = |c: RedisConfig| {
            let mut out = Vec::new();
            c.problems(&mut out);
            out
        };
        let url = |u: &str| RedisConfig {
            redis_url: u.into(),
            ..RedisConfig::default()
        };
        let one = |c: RedisConfig, says: &str| {
            let out = problems(c);
            assert!(
                out.len() == 1 && out[0].contains(says),
                "expected one problem saying {says:?}, got {out:?}"
            );
        };
        one(RedisConfig::default(), "needs redis_url");
        one(
            url("http://redis.internal:6379"),
            "must start with redis://",
        );
        one(url("redis.internal:6379"), "must start with redis://");
        one(
            RedisConfig {
                redis_cluster_nodes: vec!["redis://r1:6379".into()],
                ..url("redis://r:6379")
            },
            "exactly one of",
        );
        one(
            RedisConfig {
                redis_sentinels: vec!["redis://s1:26379".into(), "tcp://s2:26379".into()],
                redis_master_name: "baton".into(),
                ..RedisConfig::default()
            },
            "store.redis_sentinels: each must start",
        );
        one(
            RedisConfig {
                redis_sentinels: vec!["redis://s1:26379".into()],
                ..RedisConfig::default()
            },
            "store.redis_master_name: redis_sentinels needs",
        );
        one(
            RedisConfig {
                redis_master_name: "baton".into(),
                ..url("redis://r:6379")
            },
            "only with redis_sentinels",
        );
        one(
            RedisConfig {
                redis_cluster_nodes: vec!["redis://r1:6379".into()],
                redis_prefix: "{baton}:".into(),
                ..RedisConfig::default()
            },
            "store.redis_prefix",
        );
        one(
            RedisConfig {
                timeout_ms: 0,
                ..url("redis://r:6379")
            },
            "store.timeout_ms",
        );
        for ack in [0, 1000, 2000] {
            one(
                RedisConfig {
                    replica_acks: 1,
                    replica_ack_timeout_ms: ack,
                    ..url("redis://r:6379")
                },
                "store.replica_ack_timeout_ms",
            );
        }
    }

    #[test]
    fn logs_never_show_a_password() {
        let url = |u: &str| RedisConfig {
            redis_url: u.into(),
            ..RedisConfig::default()
        };
        for (given, shown) in [
            (
                "redis://user:s3cret@redis.internal:6379/2",
                "redis://***:***@redis.internal:6379/2",
            ),
            ("redis://:s3cret@r:6379", "redis://:***@r:6379"),
            ("redis://s3cret@r:6379", "redis://***@r:6379"),
            (
                "redis://r:6379/0?password=s3cret",
                "redis://r:6379/0?password=***",
            ),
            (
                "rediss://r:6380?user=s3cret&password=s3cret&protocol=resp3",
                "rediss://r:6380?user=***&password=***&protocol=***",
            ),
            ("redis://r:6379?s3cret", "redis://r:6379?***"),
            (
                "redis://r:6379?pass=s3cret#s3cret",
                "redis://r:6379?pass=***#***",
            ),
            ("redis://r:6379", "redis://r:6379"),
            ("redis://s3cret:s3cret@[::1", "<unparseable url>"),
        ] {
            let config = url(given);
            assert_eq!(config.redacted_url(), shown, "{given}");
            assert_eq!(config.describe(), shown, "{given}");
        }
        let sentinel = RedisConfig {
            redis_sentinels: vec![
                "redis://:s3cret@10.0.0.1:26379".into(),
                "rediss://10.0.0.2:26379?password=s3cret".into(),
            ],
            redis_master_name: "baton".into(),
            ..RedisConfig::default()
        };
        assert_eq!(
            sentinel.describe(),
            "sentinel \"baton\" via [redis://:***@10.0.0.1:26379, rediss://10.0.0.2:26379?password=***]"
        );
        let cluster = RedisConfig {
            redis_cluster_nodes: vec![
                "redis://u:s3cret@10.0.0.3:7000".into(),
                "redis://10.0.0.4:7000?user=u&password=s3cret".into(),
            ],
            ..RedisConfig::default()
        };
        assert_eq!(
            cluster.describe(),
            "cluster [redis://***:***@10.0.0.3:7000, redis://10.0.0.4:7000?user=***&password=***]"
        );
    }

    fn problems(config: &RedisConfig) -> Vec<String> {
        let mut out = Vec::new();
        config.problems(&mut out);
        out
    }

    #[test]
    fn exactly_one_topology_with_what_it_needs() {
        let single = RedisConfig {
            redis_url: "redis://h:6379".into(),
            ..RedisConfig::default()
        };
        assert!(problems(&single).is_empty());
        assert!(!problems(&RedisConfig::default()).is_empty(), "none");
        let both = RedisConfig {
            redis_cluster_nodes: vec!["redis://h:7000".into()],
            ..single.clone()
        };
        assert!(problems(&both)[0].contains("exactly one"));
        let nameless = RedisConfig {
            redis_sentinels: vec!["redis://h:26379".into()],
            ..RedisConfig::default()
        };
        assert!(problems(&nameless)[0].contains("redis_master_name"));
        let braces = RedisConfig {
            redis_cluster_nodes: vec!["redis://h:7000".into()],
            redis_prefix: "{baton}:".into(),
            ..RedisConfig::default()
        };
        assert!(problems(&braces)[0].contains("redis_prefix"));
        let slow_acks = RedisConfig {
            replica_acks: 1,
            replica_ack_timeout_ms: 1000,
            ..single.clone()
        };
        assert!(problems(&slow_acks)[0].contains("replica_ack_timeout_ms"));
        let acks = RedisConfig {
            replica_acks: 1,
            replica_ack_timeout_ms: 999,
            ..single
        };
        assert!(problems(&acks).is_empty());
    }
}
