//! `Application::build`: the one way the broker starts, used by `main` and by every test.
//!
//! It binds the listener first (so `listen = "127.0.0.1:0"` works and tests learn the port), opens
//! the store the config names, renders the assets, and starts the background sweeper, which the
//! application owns: it stops when the application is dropped, run or not. A run ends by stopping
//! the sweeper and closing the store, and returns only then: what the store leaves on disk after
//! `run_until` returns is quiescent (a SQLite file without its `-wal` and `-shm`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::assets::Assets;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::handoff::HandoffKeys;
use crate::routes;
use crate::session::SessionStore;
use crate::state::{AppState, Parts};

pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    router: axum::Router,
    /// `/metrics`, on `server.admin_listen` when set.
    admin: Option<(TcpListener, axum::Router)>,
    sweeper: Sweeper,
    /// The store the routes use, kept to close it once the run has ended.
    store: Arc<dyn SessionStore>,
    limits: crate::server::Limits,
}

/// Why the broker could not start; `main` prints it and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the session store: {0}")]
    Store(#[from] crate::session::StoreError),
    #[error("{0}")]
    Assets(String),
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let store = config.store.open(config.session.timeouts()).await?;
        Self::build_with(config, store, Arc::new(SystemClock)).await
    }

    /// Like `build`, with the store and clock given (tests use this to control time).
    pub async fn build_with(
        config: Config,
        store: Arc<dyn SessionStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let listen = config.server.listen;
        let bind = |source| StartError::Bind {
            addr: listen,
            source,
        };
        let listener = TcpListener::bind(listen).await.map_err(bind)?;
        let addr = listener.local_addr().map_err(bind)?;
        let admin_listener = match config.server.admin_listen {
            Some(admin) => {
                Some(
                    TcpListener::bind(admin)
                        .await
                        .map_err(|source| StartError::Bind {
                            addr: admin,
                            source,
                        })?,
                )
            }
            None => None,
        };
        let assets = Assets::new(&config.trust.origins, config.session.page_keys)
            .map_err(StartError::Assets)?;
        let metrics = Arc::<crate::metrics::Metrics>::default();
        let store: Arc<dyn SessionStore> = Arc::new(crate::session::metered::Metered::new(
            store,
            Arc::clone(&metrics),
        ));
        let limiter =
            crate::ratelimit::RateLimiter::from_config(&config.server, Arc::clone(&metrics));
        let closing = Arc::clone(&store);
        let sweeper = Sweeper::start(
            Arc::clone(&store),
            Arc::clone(&clock),
            config.store.sweep_interval(),
        );
        let server = &config.server;
        let limits = crate::server::Limits {
            header_timeout: server.header_timeout(),
            write_timeout: server.write_timeout(),
            max_connections: crate::server::connection_budget(server.max_connections),
            shutdown_grace: server.shutdown_grace(),
            metrics: Some(Arc::clone(&metrics)),
        };
        let admin = admin_listener.map(|l| (l, routes::admin_router(Arc::clone(&metrics))));
        let state = AppState::new(Parts {
            store,
            clock,
            handoff: Arc::new(HandoffKeys::from_config(&config)),
            identity: crate::identity::IdentityKeys::from_config(&config).map(Arc::new),
            config: Arc::new(config),
            assets: Arc::new(assets),
            metrics,
        });
        Ok(Self {
            listener,
            addr,
            router: routes::router(state, limiter),
            admin,
            sweeper,
            store: closing,
            limits,
        })
    }

    /// Wraps the broker's router, e.g. to serve demo partner sites beside it (`baton-demo`).
    pub fn map_router(mut self, f: impl FnOnce(axum::Router) -> axum::Router) -> Self {
        self.router = f(self.router);
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Where `/metrics` is served, when `server.admin_listen` is set.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// Serves until SIGINT/SIGTERM, then stops accepting, drains in-flight requests for up to the
    /// grace period, and returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes (tests pass their own trigger), then drains for up to the
    /// grace period, stops the sweeper and closes the store; returns once the store is closed.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let stopper = async move {
            stop.await;
            let _ = tx.send(true);
        };
        // A scraper or two: a small bound, the same timeouts.
        let admin_limits = crate::server::Limits {
            max_connections: 64,
            metrics: None,
            ..self.limits.clone()
        };
        let admin_stop = stopped(rx.clone());
        let admin = async move {
            match self.admin {
                Some((listener, router)) => {
                    crate::server::serve(listener, router, admin_limits, admin_stop).await
                }
                None => Ok(()),
            }
        };
        let public =
            crate::server::serve(self.listener, self.router, self.limits, stopped(rx.clone()));
        let ((), public, admin) = tokio::join!(stopper, public, admin);
        // A request abandoned after the grace period may still hold the store; it then fails as
        // on a store that is down, which it is.
        self.sweeper.stop().await;
        self.store.close().await;
        public.and(admin)
    }
}

/// The background task that deletes expired sessions; aborted when dropped (the mini-redis
/// `DbDropGuard` way), so an `Application` built and dropped unrun leaves nothing running.
struct Sweeper(JoinHandle<()>);

impl Sweeper {
    fn start(store: Arc<dyn SessionStore>, clock: Arc<dyn Clock>, every: Duration) -> Self {
        Self(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match store.sweep(clock.now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(sessions = n, "swept expired sessions"),
                    // Both backends sweep (Redis's own expiry is only a garbage collector).
                    Err(e) => tracing::warn!(error = %e, "session store sweep failed"),
                }
            }
        }))
    }
}

impl Sweeper {
    /// Stops the sweeper and waits until it has: a sweep in progress is cancelled here rather
    /// than failing later on a closed store (a write it already queued is still finished).
    async fn stop(mut self) {
        self.0.abort();
        let _ = (&mut self.0).await;
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
