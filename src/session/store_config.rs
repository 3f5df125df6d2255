//! `[store]`: the choice of backend, and the one place that opens it.
//!
//! It sits beside the backends rather than in `session/mod.rs` because it names each of them
//! (`sqlite::SqliteConfig`, `redis::RedisConfig`) while they build on `session`'s model and
//! contract: kept in the parent, it would make `session` import its own children back. Here the
//! arrows all point one way: `store_config` → the backends → `session`.

use std::fmt;
use std::sync::Arc;

use super::{SessionStore, StoreError, Timeouts, redis, sqlite};

/// `[store]`: which backend holds the sessions, with its own keys. Opening the store is the
/// config's job, so a new backend is one variant here, one arm in each `match`, and its module.
#[derive(Clone, serde::Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum StoreConfig {
    /// Embedded, nothing to install, one node.
    Sqlite(sqlite::SqliteConfig),
    /// Several nodes behind a load balancer.
    Redis(redis::RedisConfig),
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self::Sqlite(sqlite::SqliteConfig::default())
    }
}

/// Printed in logs: the Redis URL without its password.
impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(c) => write!(f, "sqlite {}", c.sqlite_path),
            Self::Redis(c) => write!(f, "redis {} prefix {:?}", c.describe(), c.redis_prefix),
        }
    }
}

impl StoreConfig {
    /// Opens the backend this config names.
    pub async fn open(&self, timeouts: Timeouts) -> Result<Arc<dyn SessionStore>, StoreError> {
        Ok(match self {
            Self::Sqlite(c) => Arc::new(sqlite::SqliteStore::open(&c.sqlite_path, timeouts)?),
            Self::Redis(c) => {
                let store = Arc::new(redis::RedisStore::open(c, timeouts).await?);
                store.probe();
                store
            }
        })
    }

    pub(crate) fn problems(&self, out: &mut Vec<String>) {
        match self {
            Self::Sqlite(c) => c.problems(out),
            Self::Redis(c) => c.problems(out),
        }
    }

    /// How often expired sessions are deleted (at least every second).
    pub fn sweep_interval(&self) -> std::time::Duration {
        let secs = match self {
            Self::Sqlite(c) => c.sweep_interval_secs,
            Self::Redis(c) => c.sweep_interval_secs,
        };
        std::time::Duration::from_secs(secs.max(1))
    }
}
