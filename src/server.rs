//! The connection loop: accepts TCP connections and serves HTTP/1.1 on each with hyper, with the
//! limits a public service needs and `axum::serve` does not set (measured: 2,000 silent
//! connections were all still open after 45 s, and 1,100 of them under a 1,024 open-file limit
//! made every new request time out):
//!
//! - **Header timeout**: hyper closes a connection that has not sent a whole request head within
//!   `server.header_timeout_secs`. hyper starts that timer whenever a connection waits for a
//!   request head, so it is also the idle timeout of a kept-alive connection, and it stops
//!   slow-header ("slowloris") clients.
//! - **Write timeout**: an answer not handed to the network within `server.write_timeout_secs`
//!   of its first byte closes the connection. hyper has none: a client that asks for a large
//!   answer (a full session: up to 6 MB) and never reads it kept the connection and the whole
//!   answer in memory for ever (measured: 80 such sockets, 499 MB resident). `Deadline` wraps the
//!   socket for it.
//! - **A bound on open connections**, below the open-file limit (raised to its hard limit at
//!   start). A connection holds its slot from accept until its task has ended, so the bound is on
//!   sockets really open. At the bound, the connection idle the longest (preferring one that owes
//!   no answer, else the one whose answer has waited longest for its reader) is closed to make
//!   room for the new one, as nginx reuses keep-alive connections when it runs out: gracefully,
//!   and dropped outright after `EVICT_GRACE`. Only when every connection is running a request is
//!   the new one refused. So neither idle connections nor clients that do not read can starve
//!   fresh requests of file descriptors.
//! - **Throttled logs**: accept failures, refusals at the bound and connection errors repeat as
//!   fast as clients can cause them; each writes at most a line a second (`telemetry::Throttle`)
//!   and is counted in `/metrics` (`baton_connection_events_total`).
//! - **Graceful shutdown**: on stop, no new connection is accepted, idle ones close at once, and
//!   requests in flight finish within the grace period.
//!
//! HTTP/1.1 only: browsers speak HTTP/2 only over TLS, which ends at the load balancer in front.
//! Bodies and whole requests have their own deadlines in `routes` (408, 503).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

use crate::metrics::Metrics;
use crate::telemetry::Throttle;

/// How long a connection asked to close for a new one may take to finish what it is writing
/// before it is dropped. The accept loop waits for its slot, so this is also the longest a fresh
/// connection waits at the bound.
const EVICT_GRACE: Duration = Duration::from_millis(200);

static ACCEPT_FAILED: Throttle = Throttle::new();
static REFUSED_AT_BOUND: Throttle = Throttle::new();
static CONNECTION_ERRORS: Throttle = Throttle::new();

/// File descriptors kept for everything that is not a client connection: the listener, the
/// SQLite files, Redis connections, logs.
const FD_RESERVE: u64 = 64;

/// How the loop treats connections.
#[derive(Clone)]
pub struct Limits {
    pub header_timeout: Duration,
    pub write_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
    /// Where open connections and connection events are counted; `None` for a listener whose
    /// connections are not the public's (the admin one).
    pub metrics: Option<Arc<Metrics>>,
}

impl Limits {
    fn event(&self, event: &'static str) {
        if let Some(m) = &self.metrics {
            m.connection_event(event);
        }
    }
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
    /// An answer is being written and its client has not taken all of it yet.
    writing: Arc<AtomicBool>,
    /// Asks its task to close it (gracefully: at once when idle).
    close: Arc<Notify>,
    /// Already asked to close: its slot is on its way back.
    closing: bool,
}

struct Registry {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Entry>>,
    /// One permit per connection that may be open; each task holds one until it has ended.
    slots: Arc<Semaphore>,
}

impl Registry {
    fn new(max: usize) -> Self {
        Self {
            next: AtomicU64::new(0),
            open: Mutex::default(),
            slots: Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        // Only plain inserts, removes and flag changes happen under it: a panic cannot leave it
        // inconsistent.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks one connection to close so that its slot comes back: true when one is already on its
    /// way out or was just told to go (the one owing no answer idle the longest, else the one
    /// whose answer has waited longest for its reader); false when every open connection is
    /// running a request.
    fn evict_one(&self) -> bool {
        let mut open = self.lock();
        if open.values().any(|e| e.closing) {
            return true;
        }
        let victim = open
            .iter()
            .filter(|(_, e)| e.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|(id, e)| {
                (
                    e.writing.load(Ordering::Relaxed),
                    e.idle_since.load(Ordering::Relaxed),
                    **id,
                )
            })
            .map(|(id, _)| *id);
        match victim.and_then(|id| open.get_mut(&id)) {
            Some(e) => {
                e.closing = true;
                e.close.notify_one();
                true
            }
            None => false,
        }
    }

    /// A slot for a new connection: at once when one is free, else after a connection was asked
    /// to close and has ended; `None` when every connection is busy or none ended in time.
    async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Some(permit);
        }
        if !self.evict_one() {
            return None;
        }
        // An evicted connection is dropped after EVICT_GRACE at the latest; the margin covers
        // its task being scheduled on a loaded machine.
        let within = EVICT_GRACE + Duration::from_secs(1);
        tokio::time::timeout(within, Arc::clone(&self.slots).acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
    }
}

/// A connection's hold on the bound, released (and uncounted) when its task ends, however it
/// ends.
struct Slot {
    _permit: OwnedSemaphorePermit,
    metrics: Option<Arc<Metrics>>,
}

impl Slot {
    fn new(permit: OwnedSemaphorePermit, metrics: Option<Arc<Metrics>>) -> Self {
        if let Some(m) = &metrics {
            m.open_connections.inc();
        }
        Self {
            _permit: permit,
            metrics,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(m) = &self.metrics {
            m.open_connections.dec();
        }
    }
}

impl Registry {
    /// Enters a new connection: its id, and the handle its task serves it with (sharing the
    /// state the registry reads to find the idle ones).
    fn register(&self, started: Instant) -> (u64, Connection) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let entry = Entry {
            busy: Arc::default(),
            idle_since: Arc::new(AtomicU64::new(millis_since(started))),
            writing: Arc::default(),
            close: Arc::default(),
            closing: false,
        };
        let conn = Connection {
            busy: Arc::clone(&entry.busy),
            idle_since: Arc::clone(&entry.idle_since),
            writing: Arc::clone(&entry.writing),
            close: Arc::clone(&entry.close),
            started,
        };
        self.lock().insert(id, entry);
        (id, conn)
    }
}

/// Serves `router` on `listener` until `stop` completes; then drains for up to the grace period.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: Limits,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let registry = Arc::new(Registry::new(limits.max_connections));
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
                    // them, or the limit was lowered): free one connection and go on. This can
                    // repeat as fast as clients connect, so the line is throttled.
                    limits.event("accept_failed");
                    if let Some(suppressed) = ACCEPT_FAILED.allow() {
                        tracing::warn!(error = %e, suppressed, "accept failed");
                    }
                    registry.evict_one();
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let slot = tokio::select! {
            () = &mut stop => break,
            slot = registry.slot() => slot,
        };
        let Some(permit) = slot else {
            limits.event("refused_at_bound");
            if let Some(suppressed) = REFUSED_AT_BOUND.allow() {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    suppressed,
                    "every connection is busy: a new one was refused"
                );
            }
            drop(stream);
            continue;
        };
        let slot = Slot::new(permit, limits.metrics.clone());
        let _ = stream.set_nodelay(true);
        let (id, conn) = registry.register(started);
        let (router, registry, limits) = (router.clone(), Arc::clone(&registry), limits.clone());
        let shutdown = shutdown_rx.clone();
        tasks.spawn(async move {
            conn.run(stream, peer, router, &limits, shutdown).await;
            registry.lock().remove(&id);
            // The slot comes back only now, with the socket closed.
            drop(slot);
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
    writing: Arc<AtomicBool>,
    close: Arc<Notify>,
    started: Instant,
}

/// Why a connection's task was asked to stop.
enum Closing {
    /// To make room for a new one: it gets `EVICT_GRACE`.
    Evicted,
    /// The server is stopping: `serve` bounds the whole drain by the shutdown grace.
    Shutdown,
}

impl Connection {
    async fn run(
        self,
        stream: tokio::net::TcpStream,
        peer: SocketAddr,
        router: axum::Router,
        limits: &Limits,
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
            .header_read_timeout(limits.header_timeout)
            .keep_alive(true);
        let io = Deadline::new(stream, limits.write_timeout, self.writing);
        let conn = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let closing = async {
            tokio::select! {
                () = self.close.notified() => Closing::Evicted,
                _ = shutdown.wait_for(|stop| *stop) => Closing::Shutdown,
            }
        };
        let result = tokio::select! {
            result = conn.as_mut() => result,
            why = closing => {
                conn.as_mut().graceful_shutdown();
                match why {
                    Closing::Shutdown => conn.await,
                    Closing::Evicted => {
                        limits.event("evicted");
                        match tokio::time::timeout(EVICT_GRACE, conn.as_mut()).await {
                            Ok(result) => result,
                            // Still writing to a client that does not read: dropping the
                            // connection closes the socket and frees the answer.
                            Err(_) => Ok(()),
                        }
                    }
                }
            }
        };
        log_end(result, limits);
    }
}

fn log_end(result: Result<(), hyper::Error>, limits: &Limits) {
    let Err(e) = result else { return };
    let timed_out = std::error::Error::source(&e)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
    limits.event(if timed_out { "write_timeout" } else { "error" });
    // Timeouts and clients going away are the normal end of many connections, and as many as
    // clients like: debug, and throttled.
    if let Some(suppressed) = CONNECTION_ERRORS.allow() {
        tracing::debug!(error = %e, suppressed, "connection ended");
    }
}

/// The socket of a connection, whose writes must finish in time: once an answer's first write is
/// attempted, everything hyper has to write must be handed to the kernel within `limit`, or every
/// later write fails with `TimedOut` and hyper closes the connection. hyper calls `poll_flush`
/// only once its own buffer is empty, which ends the deadline until the next answer. (hyper and
/// hyper-util have header and keep-alive timeouts but no write timeout; tower-http's timeouts end
/// with the response head, before its body is written.)
struct Deadline<S> {
    io: S,
    limit: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Shared with the registry: an answer is waiting for its reader.
    writing: Arc<AtomicBool>,
}

impl<S> Deadline<S> {
    fn new(io: S, limit: Duration, writing: Arc<AtomicBool>) -> Self {
        Self {
            io,
            limit,
            timer: None,
            writing,
        }
    }

    /// Starts the deadline at an answer's first write.
    fn arm(&mut self) {
        if self.timer.is_none() {
            self.timer = Some(Box::pin(tokio::time::sleep(self.limit)));
            self.writing.store(true, Ordering::Relaxed);
        }
    }

    fn disarm(&mut self) {
        self.timer = None;
        self.writing.store(false, Ordering::Relaxed);
    }

    /// For a write the socket cannot take now: `Pending` (woken by the socket or the deadline),
    /// or the timeout once the deadline has passed.
    fn expired<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        match self.timer.as_mut().map(|t| t.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "write timeout: the client did not read the answer",
            ))),
            _ => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deadline<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deadline<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        this.arm();
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Pending => this.expired(cx),
            ready => ready,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        this.arm();
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.expired(cx),
            ready => ready,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                this.disarm();
                Poll::Ready(Ok(()))
            }
            Poll::Pending => this.expired(cx),
            err => err,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
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
