//! Per-client request budget for the API: a token bucket per client IP, answered with 429
//! `rate_limited` when empty.
//!
//! The client is the TCP peer, or, behind a proxy that the config names
//! (`server.client_ip_header`, e.g. `x-forwarded-for`), the last address that proxy appended: the
//! only one it vouches for. Buckets live in one `Mutex<HashMap>`: the critical section is a few
//! arithmetic operations, far cheaper than a store round trip, and idle buckets are pruned when
//! the map grows, so memory stays bounded by the number of recently active clients.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

const PRUNE_ABOVE: usize = 10_000;

#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    per_minute: f64,
    burst: f64,
    header: Option<HeaderName>,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// The limit `[server]` sets, or none when `rate_limit_per_minute` is 0.
    pub fn from_config(server: &crate::config::ServerConfig) -> Option<Self> {
        (server.rate_limit_per_minute > 0).then(|| {
            Self::new(
                server.rate_limit_per_minute,
                server.client_ip_header.clone(),
            )
        })
    }

    /// `per_minute` requests per client per minute on average, bursts up to a minute's worth.
    pub fn new(per_minute: u32, header: Option<HeaderName>) -> Self {
        Self {
            inner: Arc::new(Inner {
                per_minute: per_minute as f64,
                burst: per_minute as f64,
                header,
                buckets: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let inner = &self.inner;
        let rate = inner.per_minute / 60.0;
        let mut buckets = inner.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            // A bucket that has refilled completely carries no information.
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * rate < inner.burst
            });
        }
        let b = buckets.entry(ip).or_insert(Bucket {
            tokens: inner.burst,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(inner.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn client_ip(&self, req: &Request) -> Option<IpAddr> {
        if let Some(name) = &self.inner.header {
            // Only the last entry: earlier ones were written by the client and prove nothing.
            let forwarded = req
                .headers()
                .get_all(name)
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|s| s.trim().parse::<IpAddr>().ok());
            if forwarded.is_some() {
                return forwarded;
            }
        }
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
    }
}

pub async fn limit(State(limiter): State<RateLimiter>, req: Request, next: Next) -> Response {
    match limiter.client_ip(&req) {
        Some(ip) if !limiter.allow(ip, Instant::now()) => {
            tracing::info!(%ip, "rate limited");
            ApiError::RateLimited.into_response()
        }
        _ => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_refills_per_client() {
        let limiter = RateLimiter::new(60, None);
        let (a, b): (IpAddr, IpAddr) = (
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
        );
        let t0 = Instant::now();
        for _ in 0..60 {
            assert!(limiter.allow(a, t0));
        }
        assert!(!limiter.allow(a, t0), "burst spent");
        assert!(limiter.allow(b, t0), "other clients unaffected");
        assert!(
            limiter.allow(a, t0 + Duration::from_millis(1001)),
            "one token per second"
        );
        assert!(!limiter.allow(a, t0 + Duration::from_millis(1002)));
    }
}
