//! The connection of the Redis store to one of three topologies, behind one type (`Conn`), so the
//! store's scripts do not care which:
//!
//! - one Redis (`redis_url`): the crate's `ConnectionManager`, which reconnects by itself;
//! - Redis Sentinel (`redis_sentinels` + `redis_master_name`): the sentinels name the primary
//!   (`redis::sentinel::SentinelClient`, which also checks that the node it names says it is a
//!   primary), and one multiplexed connection to it is shared until a call on it fails in a way
//!   that means "this may not be the primary any more" (dropped, refused, timed out, `READONLY`
//!   from a demoted primary, `MASTERDOWN`...): the next call asks the sentinels again. So during
//!   a failover calls fail fast (the store answers 503) and the first call after the sentinels
//!   promote a replica lands on it, with no restart;
//! - Redis Cluster (`redis_cluster_nodes`): the crate's async cluster connection, which follows
//!   `MOVED` and refreshes its slot map by itself when a primary fails over.
//!
//! Every connection is made lazily: the node starts while Redis is down.
//!
//! With replica acknowledgements, a `Pool` of several such connections: `WAIT` blocks the
//! connection it is sent on until the replicas answer, so on one shared connection every call of
//! the node would wait for the replication of the one before it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Cmd, IntoConnectionInfo, Pipeline, RedisFuture, RedisResult, Value,
};

/// Reconnection inside one connection attempt: a few quick retries ride out a blip (a restart, a
/// failover) without making callers wait past `timeout_ms` for a Redis that stays down.
const RECONNECT_RETRIES: usize = 2;
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);

/// Where the store's Redis is.
#[derive(Clone, Copy)]
pub(super) enum Topology<'a> {
    Single(&'a str),
    Sentinel {
        sentinels: &'a [String],
        master_name: &'a str,
    },
    Cluster(&'a [String]),
}

/// A connection of any topology; cheap to clone (all share the same sockets).
#[derive(Clone)]
pub enum Conn {
    Manager(ConnectionManager),
    Multiplexed(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Manager(c) => c.req_packed_command(cmd),
            Self::Multiplexed(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Manager(c) => c.req_packed_commands(cmd, offset, count),
            Self::Multiplexed(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Manager(c) => c.get_db(),
            Self::Multiplexed(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// Connections with replica acknowledgements: enough for that many calls to wait for their
/// replicas at once, few enough to cost Redis little (each is a client of every node). Measured
/// with `bench/acks.py`.
pub(super) const ACKED_CONNECTIONS: usize = 16;

/// One `Connector`, or several taken in turn (each call keeps the one it starts on, so a failure
/// is reported to the connector whose connection failed). Each reconnects, and with Sentinel asks
/// the sentinels, on its own.
pub struct Pool {
    connectors: Vec<Connector>,
    next: AtomicUsize,
}

impl Pool {
    /// `size` connectors (at least one) to `topology`.
    pub fn open(topology: Topology<'_>, timeout: Duration, size: usize) -> RedisResult<Self> {
        let connectors = (0..size.max(1))
            .map(|_| Connector::open(topology, timeout))
            .collect::<RedisResult<_>>()?;
        Ok(Self {
            connectors,
            next: AtomicUsize::new(0),
        })
    }

    /// The connector for the next call.
    pub fn pick(&self) -> &Connector {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.connectors.len();
        &self.connectors[i]
    }

    pub fn is_cluster(&self) -> bool {
        self.connectors[0].is_cluster()
    }

    pub fn is_sentinel(&self) -> bool {
        self.connectors[0].is_sentinel()
    }
}

/// Hands out the connection to use now, and hears which failed.
pub enum Connector {
    Single(ConnectionManager),
    Sentinel(SentinelConnector),
    Cluster(ClusterConnector),
}

/// A connection handed out, with the generation it belongs to (see `Connector::failed`).
pub struct Lease {
    pub conn: Conn,
    generation: u64,
}

impl Lease {
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

impl Connector {
    /// Prepares the connection; only an unusable address is an error (never Redis being down).
    pub fn open(topology: Topology<'_>, timeout: Duration) -> RedisResult<Self> {
        Ok(match topology {
            Topology::Single(url) => {
                let client = redis::Client::open(url)?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(RECONNECT_RETRIES)
                    .set_min_delay(RECONNECT_MIN_DELAY)
                    .set_max_delay(timeout / 2);
                Self::Single(ConnectionManager::new_lazy_with_config(client, config)?)
            }
            Topology::Sentinel {
                sentinels,
                master_name,
            } => Self::Sentinel(SentinelConnector::new(sentinels, master_name, timeout)?),
            Topology::Cluster(nodes) => Self::Cluster(ClusterConnector::new(nodes, timeout)?),
        })
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    pub fn is_sentinel(&self) -> bool {
        matches!(self, Self::Sentinel(_))
    }

    /// The connection to send the next call on.
    pub async fn lease(&self) -> RedisResult<Lease> {
        match self {
            Self::Single(m) => Ok(Lease {
                conn: Conn::Manager(m.clone()),
                generation: 0,
            }),
            Self::Sentinel(s) => s.lease().await,
            Self::Cluster(c) => c.lease().await,
        }
    }

    /// A call on the lease of `generation` failed in a way that may mean the node is gone or no
    /// longer the primary; `stale` when it answered as a replica or did not answer in time. With
    /// Sentinel, the next lease asks the sentinels again. On Cluster, the crate's connection
    /// follows `MOVED` and notices a refused connection by itself, but a node that answers as a
    /// replica to reads (no `MOVED`) or hangs (stopped, cut off) would keep its slots in the map:
    /// then a new connection is made, with a fresh slot map (at most one per generation).
    /// The connection manager of one Redis notices by itself.
    pub fn failed(&self, generation: u64, stale: bool) {
        match self {
            Self::Sentinel(s) => s.forget(generation),
            Self::Cluster(c) if stale => c.forget(generation),
            _ => {}
        }
    }
}

/// The connection settings of the first of `urls` (user, password, db, TLS), which the
/// sentinels' answers (a bare host and port) lack.
fn node_info(url: &str) -> RedisResult<SentinelNodeConnectionInfo> {
    let info = url.into_connection_info()?;
    let mut node = SentinelNodeConnectionInfo::default()
        .set_redis_connection_info(info.redis_settings().clone());
    if url.starts_with("rediss://") {
        node = node.set_tls_mode(redis::TlsMode::Secure);
    }
    Ok(node)
}

pub struct SentinelConnector {
    /// Asked for the primary's address; one caller at a time (it keeps its sentinel connections).
    client: tokio::sync::Mutex<SentinelClient>,
    /// The connection to the primary in use, and its generation; `None` until the next lease
    /// asks the sentinels.
    current: Mutex<(u64, Option<MultiplexedConnection>)>,
    config: AsyncConnectionConfig,
}

impl SentinelConnector {
    fn new(sentinels: &[String], master_name: &str, timeout: Duration) -> RedisResult<Self> {
        let first = sentinels.first().map(String::as_str).unwrap_or_default();
        let client = SentinelClient::build(
            sentinels.to_vec(),
            master_name,
            Some(node_info(first)?),
            SentinelServerType::Master,
        )?;
        Ok(Self {
            client: tokio::sync::Mutex::new(client),
            current: Mutex::new((0, None)),
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout)),
        })
    }

    fn cached(&self) -> Option<Lease> {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        current.1.clone().map(|c| Lease {
            conn: Conn::Multiplexed(c),
            generation: current.0,
        })
    }

    async fn lease(&self) -> RedisResult<Lease> {
        if let Some(lease) = self.cached() {
            return Ok(lease);
        }
        let mut client = self.client.lock().await;
        // Another caller may have connected while this one waited for the lock.
        if let Some(lease) = self.cached() {
            return Ok(lease);
        }
        let primary = client.async_get_client().await?;
        let conn = primary
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        current.0 += 1;
        current.1 = Some(conn.clone());
        tracing::info!("connected to the redis primary the sentinels name");
        Ok(Lease {
            conn: Conn::Multiplexed(conn),
            generation: current.0,
        })
    }

    /// Drops the connection of `generation` (not a newer one another caller already made).
    fn forget(&self, generation: u64) {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.0 == generation && current.1.is_some() {
            current.1 = None;
            tracing::info!("redis primary unreachable or demoted; asking the sentinels again");
        }
    }
}

pub struct ClusterConnector {
    client: redis::cluster::ClusterClient,
    /// The connection in use and its generation; `None` until the next lease makes one.
    current: tokio::sync::Mutex<(u64, Option<ClusterConnection>)>,
}

impl ClusterConnector {
    fn new(nodes: &[String], timeout: Duration) -> RedisResult<Self> {
        let client = redis::cluster::ClusterClientBuilder::new(nodes.to_vec())
            .connection_timeout(timeout)
            .response_timeout(timeout)
            // The store bounds each call by `timeout` anyway; retries inside it (following
            // `MOVED`, waiting out a failover) are quick so a call can still succeed within it.
            .retries(3)
            .min_retry_wait(50)
            .max_retry_wait(timeout.as_millis().try_into().unwrap_or(u64::MAX) / 2)
            .build()?;
        Ok(Self {
            client,
            current: tokio::sync::Mutex::new((0, None)),
        })
    }

    async fn lease(&self) -> RedisResult<Lease> {
        let mut current = self.current.lock().await;
        let conn = match &current.1 {
            Some(conn) => conn.clone(),
            None => {
                let conn = self.client.get_async_connection().await?;
                tracing::info!("connected to the redis cluster");
                current.0 += 1;
                current.1 = Some(conn.clone());
                conn
            }
        };
        Ok(Lease {
            conn: Conn::Cluster(conn),
            generation: current.0,
        })
    }

    /// Drops the connection of `generation`: the next lease makes a new one, which reads the
    /// slot map afresh.
    fn forget(&self, generation: u64) {
        // Locked: another caller is making the next connection already.
        let Ok(mut current) = self.current.try_lock() else {
            return;
        };
        if current.0 == generation && current.1.is_some() {
            current.1 = None;
            tracing::info!(
                "a redis cluster node answered as a replica; reading the slot map again"
            );
        }
    }
}
