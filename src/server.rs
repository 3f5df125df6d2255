//! The connection loop: accepts TCP connections and serves HTTP/1.1 on each with hyper, with the
//! limits a public service needs and `axum::serve` does not set (measured: 2,000 silent
//! connections were all still open after 45 s, and 1,100 of them under a 1,024 open-file limit
//! made every new request time out):
//!
//! - **Header timeout**: hyper closes a connection that has not sent a whole request head within
//!   `server.header_timeout_secs`. hyper starts that timer whenever a connection waits for a
//!   request head, so it is also the idle timeout of a kept-alive connection, and it stops
//!   slow-header ("slowloris") clients.
//! - **A bound on open connections**, below the open-file limit (raised to its hard limit at
//!   start). At the bound, the connection idle the longest is closed to make room for the new one,
//!   as nginx reuses keep-alive connections when it runs out; only when none is idle is the new
//!   connection refused. So idle connections can never starve fresh requests of file descriptors.
//! - **Graceful shutdown**: on stop, no new connection is accepted, idle ones close at once, and
//!   requests in flight finish within the grace period.
//!
//! HTTP/1.1 only: browsers speak HTTP/2 only over TLS, which ends at the load balancer in front.
//! Bodies and whole requests have their own deadlines in `routes` (408, 503).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

/// File descriptors kept for everything that is not a client connection: the listener, the
/// SQLite files, Redis connections, logs.
const FD_RESERVE: u64 = 64;

/// How the loop treats connections.
#[derive(Clone, Debug)]
pub struct Limits {
    pub header_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

/// Raises the soft open-file limit to the hard one and returns how many connections fit under it
/// with `FD_RESERVE` kept aside, at most `wanted`.
pub fn connection_budget(wanted: usize) -> usize {
    let soft = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => soft,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the open-file limit");
            return wanted;
        }
    };
    let fits = usize::try_from(soft.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
    if fits < wanted {
        tracing::warn!(
            open_file_limit = soft,
            max_connections = fits,
            configured = wanted,
            "server.max_connections lowered to fit the open-file limit; raise the limit (ulimit -n) for more"
        );
    }
    wanted.min(fits).max(1)
}

/// One open connection, as the loop sees it.
struct Entry {
    /// Requests in progress on it.
    busy: Arc<AtomicUsize>,
    /// Milliseconds since the loop started when it last became idle.
    idle_since: Arc<AtomicU64>,
    /// Asks its task to close it (gracefully: at once when idle).
    close: Arc<Notify>,
}

#[derive(Default)]
struct Registry {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Entry>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        // Only plain inserts and removes happen under it: a panic cannot leave it inconsistent.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes room for one more connection: true when there is room, or when the connection idle
    /// the longest (the oldest, among equals) was told to close and taken off the count; false
    /// when every open connection is busy.
    fn make_room(&self, max: usize) -> bool {
        let mut open = self.lock();
        if open.len() < max {
            return true;
        }
        let idle = open
            .iter()
            .filter(|(_, e)| e.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|(id, e)| (e.idle_since.load(Ordering::Relaxed), **id))
            .map(|(id, _)| *id);
        match idle.and_then(|id| open.remove(&id)) {
            Some(e) => {
                e.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Serves `router` on `listener` until `stop` completes; then drains for up to the grace period.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: Limits,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let registry = Arc::new(Registry::default());
    let started = Instant::now();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors despite the bound (another part of the process holds
                    // them): free one idle connection and go on.
                    tracing::warn!(error = %e, "accept failed");
                    registry.make_room(0);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        if !registry.make_room(limits.max_connections) {
            tracing::warn!(
                max_connections = limits.max_connections,
                "every connection is busy: a new one was refused"
            );
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let id = registry.next.fetch_add(1, Ordering::Relaxed);
        let entry = Entry {
            busy: Arc::default(),
            idle_since: Arc::new(AtomicU64::new(millis_since(started))),
            close: Arc::default(),
        };
        let conn = Connection {
            busy: Arc::clone(&entry.busy),
            idle_since: Arc::clone(&entry.idle_since),
            close: Arc::clone(&entry.close),
            started,
        };
        registry.lock().insert(id, entry);
        let (router, registry) = (router.clone(), Arc::clone(&registry));
        let (shutdown, header_timeout) = (shutdown_rx.clone(), limits.header_timeout);
        tasks.spawn(async move {
            conn.run(stream, peer, router, header_timeout, shutdown)
                .await;
            registry.lock().remove(&id);
        });
        // Reap finished tasks as we go, so the set holds only live connections.
        while tasks.try_join_next().is_some() {}
    }
    drop(listener);
    tracing::info!(grace = ?limits.shutdown_grace, "shutting down: draining in-flight requests");
    let _ = shutdown_tx.send(true);
    if tokio::time::timeout(limits.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!("grace period over; dropping the requests still running");
    }
    Ok(())
}

fn millis_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A connection's task: serves it until the client closes it, a timeout does, or the loop asks.
struct Connection {
    busy: Arc<AtomicUsize>,
    idle_since: Arc<AtomicU64>,
    close: Arc<Notify>,
    started: Instant,
}

impl Connection {
    async fn run(
        self,
        stream: tokio::net::TcpStream,
        peer: SocketAddr,
        router: axum::Router,
        header_timeout: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let (busy, idle_since, started) = (self.busy, self.idle_since, self.started);
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut req = req.map(axum::body::Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            let guard = Busy::enter(Arc::clone(&busy), Arc::clone(&idle_since), started);
            let router = router.clone();
            async move {
                let res = router.oneshot(req).await;
                drop(guard);
                res
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .keep_alive(true);
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(conn);
        let closing = async {
            tokio::select! {
                () = self.close.notified() => {},
                _ = shutdown.wait_for(|stop| *stop) => {},
            }
        };
        tokio::select! {
            result = conn.as_mut() => log_end(result),
            () = closing => {
                conn.as_mut().graceful_shutdown();
                log_end(conn.await);
            }
        }
    }
}

fn log_end(result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        // Timeouts and clients going away are the normal end of many connections.
        tracing::debug!(error = %e, "connection ended");
    }
}

/// Marks a connection busy for the life of one request.
struct Busy {
    busy: Arc<AtomicUsize>,
    idle_since: Arc<AtomicU64>,
    started: Instant,
}

impl Busy {
    fn enter(busy: Arc<AtomicUsize>, idle_since: Arc<AtomicU64>, started: Instant) -> Self {
        busy.fetch_add(1, Ordering::AcqRel);
        Self {
            busy,
            idle_since,
            started,
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.idle_since
            .store(millis_since(self.started), Ordering::Relaxed);
        self.busy.fetch_sub(1, Ordering::AcqRel);
    }
}
