//! How the Redis store tells failures apart: which mean "not now" (503 `store_unavailable`,
//! retry) and which "broken" (500), which mean the node may be gone or demoted (so the
//! connection is dropped and the call sent once more), and the store's own internal errors.
//! One place, so every call of every topology answers the same way for the same failure.

use redis::{ErrorKind, RedisError, ServerErrorKind};

use crate::session::StoreError;

/// Whether a node answered as a replica.
pub(super) fn is_demoted(e: &RedisError) -> bool {
    e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
}

/// Whether a failed call means the node may be gone or no longer the primary. Any failure of
/// the connection itself counts: in redis 1.x a timeout, a dropped connection and a refused one
/// are each an `ErrorKind::Io` error (`is_timeout`, `is_connection_dropped` and
/// `is_connection_refusal` only sort io errors further), so `is_io_error` covers them all.
pub(super) fn node_lost(e: &RedisError) -> bool {
    e.is_io_error()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::ReadOnly
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::BusyLoading
            )
        )
}

/// A pipeline of a script and `WAIT` where only `WAIT` failed: the node is a replica (Redis
/// refuses `WAIT` there: a demoted primary, or a Cluster client routing to a replica while it
/// has no primary for the slot), so the script's answer is not one a primary confirmed. Told
/// apart as `READONLY`: a 503, and with Sentinel the next call asks the sentinels again.
pub(super) fn wait_refused(e: RedisError) -> RedisError {
    let only_wait = e
        .clone()
        .into_server_errors()
        .is_some_and(|failed| !failed.is_empty() && failed.iter().all(|(i, _)| *i == 1));
    if only_wait {
        tracing::info!(error = %e, "redis refused WAIT: the node is not a primary");
        RedisError::from((
            ErrorKind::Server(ServerErrorKind::ReadOnly),
            "WAIT refused: the node is not a primary",
        ))
    } else {
        e
    }
}

/// Which Redis failures mean "not now" (503, retry) rather than "broken" (500).
pub(super) fn store_error(e: RedisError) -> StoreError {
    // Any failure of the connection (a timeout, a drop, a refusal: each an Io error, see
    // `node_lost`), or Redis saying it cannot serve now.
    let unavailable = e.is_io_error()
        || matches!(
            e.kind(),
            ErrorKind::AuthenticationFailed
                // The sentinels know no reachable primary (mid-failover, or a wrong
                // `redis_master_name`: the log line says which).
                | ErrorKind::MasterNameNotFoundBySentinel
                // The cluster client has no connection to route the call to: every node it knows
                // is gone (the whole cluster down, or cut off from this node), so it cannot even
                // refresh its slot map. As with one Redis down, "not now" (issue 20, finding 6).
                | ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::ReadOnly
                        | ServerErrorKind::Moved
                        | ServerErrorKind::Ask
                )
        )
        // Redis refusing writes it cannot persist or hold, or busy running a script.
        || matches!(
            e.code(),
            Some("MISCONF" | "OOM" | "NOREPLICAS" | "BUSY" | "NOAUTH" | "WRONGPASS")
        );
    if unavailable {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Internal(e.to_string())
    }
}

/// An id or jti not minted for the session's slot (`SessionId::generate_for`, `Jti::new_for`):
/// Redis Cluster cannot write it in the same step as the session. The broker never asks this.
pub(super) fn other_slot() -> StoreError {
    StoreError::Internal("an id or jti of another slot than its session's (Redis Cluster)".into())
}

pub(super) fn corrupt(what: &str) -> StoreError {
    StoreError::Internal(format!("corrupt session record in redis: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error Redis would send as `line` (`-CODE detail`).
    fn server(line: &str) -> RedisError {
        let value = redis::parse_redis_value(format!("-{line}\r\n").as_bytes()).expect("resp");
        value.extract_error().expect_err("an error reply")
    }

    fn io(kind: std::io::ErrorKind) -> RedisError {
        std::io::Error::new(kind, "test").into()
    }

    #[test]
    fn each_kind_of_redis_failure_is_a_503_or_a_500() {
        use std::io::ErrorKind as Io;
        let unavailable = [
            // Any failure of the connection itself, whatever its io kind.
            io(Io::Other),
            io(Io::TimedOut),
            io(Io::ConnectionRefused),
            io(Io::BrokenPipe),
            io(Io::UnexpectedEof),
            server("LOADING Redis is loading the dataset in memory"),
            server("TRYAGAIN Multiple keys request during rehashing of slot"),
            server("MASTERDOWN Link with MASTER is down"),
            server("CLUSTERDOWN The cluster is down"),
            server("READONLY You can't write against a read only replica."),
            server("MOVED 3999 127.0.0.1:6381"),
            server("ASK 3999 127.0.0.1:6381"),
            server("MISCONF Errors writing to the AOF file"),
            server("OOM command not allowed when used memory > 'maxmemory'."),
            server("NOREPLICAS Not enough good replicas to write."),
            server("BUSY Redis is busy running a script."),
            server("NOAUTH Authentication required."),
            server("WRONGPASS invalid username-password pair"),
            RedisError::from((
                ErrorKind::MasterNameNotFoundBySentinel,
                "no primary by that name",
            )),
            // What the cluster client says with no node to reach (redis 1.x, cluster_async):
            // no connection for the slot, none for a multi-node call, none at all; the initial
            // nodes all refusing; its task gone.
            RedisError::from((ErrorKind::ClusterConnectionNotFound, "No connections found")),
            RedisError::from((
                ErrorKind::ClusterConnectionNotFound,
                "Couldn't find any connection",
            )),
            RedisError::from((
                ErrorKind::ClusterConnectionNotFound,
                "No nodes found for multi-node operation",
            )),
            RedisError::from((
                ErrorKind::Io,
                "Failed to create initial connections",
                "Io: Connection refused (os error 111)".to_owned(),
            )),
            RedisError::from((ErrorKind::Io, "Cluster connection task were dropped")),
            io(Io::BrokenPipe),
        ];
        for e in unavailable {
            let shown = e.to_string();
            assert!(
                matches!(store_error(e), StoreError::Unavailable(_)),
                "{shown} should be 503"
            );
        }
        for e in [
            server("ERR user_script:1: corrupt session record"),
            server("WRONGTYPE Operation against a key holding the wrong kind of value"),
            server("NOSCRIPT No matching script."),
        ] {
            let shown = e.to_string();
            assert!(
                matches!(store_error(e), StoreError::Internal(_)),
                "{shown} should be 500"
            );
        }
    }

    /// Which failures make a node drop its connection and look for the primary again
    /// (`node_lost`), and which mean the node it reached is a replica (`is_demoted`): a script
    /// error or a wrong type is neither, so it never costs a reconnect.
    #[test]
    fn lost_and_demoted_nodes_are_told_from_other_failures() {
        use std::io::ErrorKind as Io;
        for e in [
            io(Io::Other),
            io(Io::TimedOut),
            io(Io::ConnectionRefused),
            io(Io::BrokenPipe),
            server("READONLY You can't write against a read only replica."),
            server("MASTERDOWN Link with MASTER is down"),
            server("LOADING Redis is loading the dataset in memory"),
        ] {
            assert!(node_lost(&e), "{e} means the node may be gone");
        }
        for e in [
            server("ERR user_script:1: corrupt session record"),
            server("WRONGTYPE Operation against a key holding the wrong kind of value"),
            server("NOSCRIPT No matching script."),
            server("OOM command not allowed when used memory > 'maxmemory'."),
        ] {
            assert!(!node_lost(&e), "{e} comes from a working primary");
        }
        assert!(is_demoted(&server(
            "READONLY You can't write against a read only replica."
        )));
        for e in [
            io(Io::BrokenPipe),
            server("MASTERDOWN Link with MASTER is down"),
            server("ERR user_script:1: corrupt session record"),
        ] {
            assert!(!is_demoted(&e), "{e} is not a replica's answer");
        }
    }
}
