//! `Application::build`: the one way the broker starts, used by `main` and by every test.
//!
//! It binds the listener first (so `--listen 127.0.0.1:0` works and tests learn the port), opens
//! the store named by the config, renders the assets, and starts the background sweeper.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::{Settings, StoreSettings};
use crate::handoff::HandoffKeys;
use crate::routes;
use crate::routes::assets::Assets;
use crate::session::SessionStore;
use crate::session::redis::RedisStore;
use crate::session::sqlite::SqliteStore;
use crate::state::{AppState, Policy};

pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    router: axum::Router,
    sweeper: tokio::task::JoinHandle<()>,
    shutdown_grace: Duration,
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
    Store(String),
    #[error("{0}")]
    Assets(String),
}

/// Opens the backend the settings name.
pub async fn open_store(settings: &Settings) -> Result<Arc<dyn SessionStore>, StartError> {
    match &settings.store {
        StoreSettings::Sqlite { path } => SqliteStore::open(path, settings.timeouts)
            .map(|s| Arc::new(s) as Arc<dyn SessionStore>)
            .map_err(|e| StartError::Store(e.to_string())),
        StoreSettings::Redis {
            url,
            prefix,
            timeout_ms,
        } => RedisStore::open(url, prefix, *timeout_ms, settings.timeouts)
            .await
            .map(|s| Arc::new(s) as Arc<dyn SessionStore>)
            .map_err(|e| StartError::Store(e.to_string())),
    }
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let store = open_store(&settings).await?;
        Self::build_with(settings, store, Arc::new(SystemClock)).await
    }

    /// Like `build`, with the store and clock given (tests use this to control time).
    pub async fn build_with(
        settings: Settings,
        store: Arc<dyn SessionStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: settings.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: settings.listen,
            source,
        })?;
        let assets =
            Assets::new(&settings.trusted, settings.page_keys).map_err(StartError::Assets)?;
        let state = AppState {
            store: Arc::clone(&store),
            clock: Arc::clone(&clock),
            policy: Arc::new(Policy {
                public_origin: settings.public_origin.clone(),
                trusted: settings.trusted.clone(),
                timeouts: settings.timeouts,
                max_value_bytes: settings.max_value_bytes,
                max_values: settings.max_values,
                page_keys: settings.page_keys,
            }),
            handoff: Arc::new(HandoffKeys::new(
                settings.handoff_keys.clone(),
                settings.handoff_issuer.clone(),
                settings.handoff_ttl_secs,
            )),
            assets: Arc::new(assets),
            metrics: Arc::default(),
        };
        let limiter = (settings.rate_limit_per_minute > 0).then(|| {
            crate::ratelimit::RateLimiter::new(
                settings.rate_limit_per_minute,
                settings.client_ip_header.clone(),
            )
        });
        let router = routes::router(
            state,
            Duration::from_secs(settings.request_timeout_secs),
            limiter,
        );
        let sweeper = tokio::spawn(sweep(
            store,
            clock,
            Duration::from_secs(settings.sweep_interval_secs),
        ));
        Ok(Self {
            listener,
            addr,
            router,
            sweeper,
            shutdown_grace: Duration::from_secs(settings.shutdown_grace_secs),
        })
    }

    /// Wraps the broker's router, e.g. to serve demo partner sites beside it (`baton demo`).
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

    /// Serves until SIGINT/SIGTERM, then stops accepting, drains in-flight requests for up to the
    /// grace period, and returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes (tests pass their own trigger).
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let grace = self.shutdown_grace;
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let server = axum::serve(self.listener, service).with_graceful_shutdown(async move {
            stop.await;
            tracing::info!(?grace, "shutting down: draining in-flight requests");
            let _ = tx.send(());
        });
        let result = tokio::select! {
            r = server => r,
            _ = async {
                let _ = rx.await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!("grace period over; dropping the requests still running");
                Ok(())
            }
        };
        self.sweeper.abort();
        result
    }
}

async fn sweep(store: Arc<dyn SessionStore>, clock: Arc<dyn Clock>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.sweep(clock.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(sessions = n, "swept expired sessions"),
            Err(e) => tracing::warn!(error = %e, "sweep failed"),
        }
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
