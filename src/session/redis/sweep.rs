//! The Redis store's sweep: a bounded `SCAN` slice per run (per primary on Cluster) for the
//! session hashes Redis's own expiry cannot judge, each reaped by a script. A safety net (see
//! `RedisStore::sweep_slice`), so it costs Redis little however many sessions there are.

use std::collections::HashMap;

use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{FromRedisValue, Value};

use super::RedisStore;
use super::conn::Conn;
use super::errors::corrupt;
use crate::clock::Timestamp;
use crate::session::StoreError;

/// Session hashes examined per `SCAN` step and steps per `sweep`: the sweep is a safety net (see
/// `sweep`), so each run does a bounded slice of the keyspace and the next run continues.
const SWEEP_SCAN_COUNT: u64 = 500;
const SWEEP_STEPS: usize = 8;

impl RedisStore {
    /// Redis expires every key by itself, so this is a safety net for what its expiry cannot
    /// judge: sessions dead by the app clock while their Redis TTL still runs (a node clock ahead
    /// of the others, a test clock), which reads already treat as missing, and session records
    /// that lost their TTL (a `PERSIST`, a restore without expiries), which would stay forever.
    /// Each call scans a bounded slice of the keyspace (of each primary, on Cluster) and the
    /// next one continues from there, so it costs Redis little however many sessions there are.
    pub(super) async fn sweep_slice(&self, now: Timestamp) -> Result<u64, StoreError> {
        let mut swept = 0u64;
        for node in self.sweep_nodes().await? {
            let cursor = |cursors: &HashMap<String, u64>| cursors.get(&node).copied();
            let mut at =
                cursor(&self.sweep_cursors.lock().unwrap_or_else(|p| p.into_inner())).unwrap_or(0);
            for _ in 0..SWEEP_STEPS {
                let (next, keys) = self.scan(&node, at).await?;
                if self.connector.is_cluster() {
                    for key in keys {
                        let n: i64 = self.run(&self.scripts.reap, now, &[key], &[]).await?;
                        swept += n.max(0) as u64;
                    }
                } else if !keys.is_empty() {
                    let n: i64 = self.run(&self.scripts.reap, now, &keys, &[]).await?;
                    swept += n.max(0) as u64;
                }
                at = next;
                if at == 0 {
                    break;
                }
            }
            self.sweep_cursors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(node, at);
        }
        Ok(swept)
    }

    /// Whether `key` (found by `SCAN`) is a session hash: `P s:<uid>` or `P {tag}s:<uid>`.
    fn is_session_key(&self, key: &str) -> bool {
        let Some(rest) = key.strip_prefix(self.prefix.as_str()) else {
            return false;
        };
        let rest = match rest.strip_prefix('{') {
            Some(tagged) => match tagged.split_once('}') {
                Some((tag, rest)) if tag.len() == crate::session::TAG_LEN => rest,
                _ => return false,
            },
            None => rest,
        };
        rest.strip_prefix("s:")
            .is_some_and(|uid| !uid.contains(':'))
    }

    /// One `SCAN` step on `node` (any node off Cluster): the next cursor and the session hashes.
    async fn scan(&self, node: &str, cursor: u64) -> Result<(u64, Vec<String>), StoreError> {
        let pattern = format!("{}*s:*", glob_escape(&self.prefix));
        let scan = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(SWEEP_SCAN_COUNT)
            .to_owned();
        let scan = &scan;
        let (next, keys): (u64, Vec<String>) = self
            .bounded(|conn| async move {
                match (conn, node.rsplit_once(':')) {
                    (Conn::Cluster(mut c), Some((host, port))) => {
                        let port = port.parse().unwrap_or_default();
                        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                            host: host.to_owned(),
                            port,
                        });
                        let value = c.route_command(scan.clone(), route).await?;
                        Ok(FromRedisValue::from_redis_value(value)?)
                    }
                    (mut conn, _) => scan.query_async(&mut conn).await,
                }
            })
            .await?;
        Ok((
            next,
            keys.into_iter()
                .filter(|k| self.is_session_key(k))
                .collect(),
        ))
    }

    /// The primaries of the cluster, `host:port` each; `[""]` (the one node) off Cluster.
    async fn sweep_nodes(&self) -> Result<Vec<String>, StoreError> {
        if !self.connector.is_cluster() {
            return Ok(vec![String::new()]);
        }
        let slots: Vec<Vec<Value>> = self.cluster("SLOTS").await?;
        let mut nodes: Vec<String> = Vec::new();
        for range in slots {
            // [start, end, [host, port, id, ...], replicas...]
            let primary = range.get(2).cloned().map(Vec::<Value>::from_redis_value);
            let Some(Ok(primary)) = primary else {
                return Err(corrupt("CLUSTER SLOTS reply"));
            };
            let host = primary.first().cloned().map(String::from_redis_value);
            let port = primary.get(1).cloned().map(u16::from_redis_value);
            let (Some(Ok(host)), Some(Ok(port))) = (host, port) else {
                return Err(corrupt("CLUSTER SLOTS reply"));
            };
            let node = format!("{host}:{port}");
            if !nodes.contains(&node) {
                nodes.push(node);
            }
        }
        Ok(nodes)
    }
}

/// `SCAN MATCH` treats `* ? [ ] \` as pattern syntax; a prefix may contain them.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for ch in s.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Timeouts;
    use crate::session::redis::RedisConfig;

    #[tokio::test]
    async fn sweep_reads_only_session_hashes() {
        let config = RedisConfig {
            redis_url: "redis://127.0.0.1:1".into(),
            redis_prefix: "p:".into(),
            ..RedisConfig::default()
        };
        let store = RedisStore::open(
            &config,
            Timeouts {
                idle_ms: 1,
                absolute_ms: 2,
            },
        )
        .await
        .expect("open");
        for key in ["p:s:0123abcd", "p:{a-_9}s:a-_9.0123abcd"] {
            assert!(store.is_session_key(key), "{key}");
        }
        for key in [
            "p:ids:0123abcd",
            "p:{a-_9}ids:a-_9.0123",
            "p:{a-_9}hs:a-_9.0123",
            "p:{a-_9}id:ff00",
            "p:{toolong}s:x",
            "q:s:0123",
            "p:{a-_9}s:a:b",
        ] {
            assert!(!store.is_session_key(key), "{key}");
        }
        assert_eq!(store.session_key("a-_9.0123"), "p:{a-_9}s:a-_9.0123");
        assert_eq!(store.session_key("0123"), "p:s:0123");
    }

    #[test]
    fn glob_characters_in_the_prefix_are_escaped() {
        assert_eq!(glob_escape("baton:"), "baton:");
        assert_eq!(glob_escape(r"a*b?[c]\"), r"a\*b\?\[c\]\\");
    }
}
