//! Per-client request budget for the public listener (429 `rate_limited`; every route but the
//! health checks, see `routes::router`), and who "the client" is.
//!
//! **The client's address** has one rule. It is the TCP peer, unless the peer is one of
//! `server.trusted_proxies`: then it is read from `server.client_ip_header` (every line of it, in
//! order, as one comma-separated list), walking from the right past every address that is itself a
//! trusted proxy, as nginx's `real_ip_recursive` does; the first one that is not is the client. A
//! client can write anything to the left of what its proxies append, so nothing further left is
//! believed, and a peer that is not a trusted proxy is never believed at all (measured before this
//! rule: a forged right-most entry per request passed 100 of 100 requests at a 60/min limit).
//! Entries may carry a port (`1.2.3.4:5678`, `[2001:db8::1]:443`); an entry that is not an address
//! stops the walk at the last trusted hop. IPv6 clients are counted per /64, the block one
//! subscriber gets, so rotating addresses inside it does not buy a fresh budget.
//!
//! **The budget** is governor's GCRA per client: `rate_limit_per_minute` on average, up to a
//! minute's worth in a burst. Its state is a sharded map; clients whose budget is full again carry
//! no information and are pruned every `PRUNE_EVERY` checks, so memory follows the number of
//! recently active clients, not of addresses ever seen.
//!
//! Refusals are counted in `/metrics` (`baton_rate_limited_total`); the log gets at most one line
//! a second about them, with how many it left out.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderName};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter as Gcra};
use ipnet::IpNet;

use crate::error::ApiError;
use crate::metrics::{Metrics, bump};
use crate::telemetry::Throttle;

const PRUNE_EVERY: u64 = 4096;

/// Which proxies to believe, and in which header.
#[derive(Clone, Debug, Default)]
pub struct ClientAddress {
    header: Option<HeaderName>,
    trusted: Vec<IpNet>,
}

impl ClientAddress {
    pub fn new(header: Option<HeaderName>, trusted: Vec<IpNet>) -> Self {
        Self { header, trusted }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`, by the rule in the module doc.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let Some(name) = &self.header else {
            return peer;
        };
        let mut client = peer;
        if !self.is_trusted(client) {
            return client;
        }
        let lines: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        for entry in lines.iter().rev().flat_map(|line| line.rsplit(',')) {
            match parse_entry(entry) {
                Some(ip) => client = ip,
                None => break,
            }
            if !self.is_trusted(client) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, maybe with a port.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sock) = entry.parse::<SocketAddr>() {
        return Some(sock.ip());
    }
    // `[2001:db8::1]` without a port.
    entry
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .and_then(|e| e.parse::<Ipv6Addr>().ok())
        .map(IpAddr::V6)
}

/// The key a client is counted under: its address, or its /64 for IPv6.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

type Keyed<C> = Gcra<IpAddr, DashMapStateStore<IpAddr>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The API's rate limit. Clones share the budget.
#[derive(Clone)]
pub struct RateLimiter<C: Clock = DefaultClock> {
    inner: Arc<Inner<C>>,
}

struct Inner<C: Clock> {
    gcra: Keyed<C>,
    clients: ClientAddress,
    metrics: Arc<Metrics>,
    checks: AtomicU64,
}

impl RateLimiter {
    /// The limit `[server]` sets, or none when `rate_limit_per_minute` is 0.
    pub fn from_config(
        server: &crate::config::ServerConfig,
        metrics: Arc<Metrics>,
    ) -> Option<Self> {
        let per_minute = NonZeroU32::new(server.rate_limit_per_minute)?;
        let clients = ClientAddress::new(
            server.client_ip_header.clone(),
            server.trusted_proxies.clone(),
        );
        Some(Self::with_clock(
            per_minute,
            clients,
            metrics,
            DefaultClock::default(),
        ))
    }
}

impl<C: Clock> RateLimiter<C> {
    /// `per_minute` requests per client per minute on average, bursts up to a minute's worth.
    pub fn with_clock(
        per_minute: NonZeroU32,
        clients: ClientAddress,
        metrics: Arc<Metrics>,
        clock: C,
    ) -> Self {
        let quota = Quota::per_minute(per_minute).allow_burst(per_minute);
        Self {
            inner: Arc::new(Inner {
                gcra: Gcra::dashmap_with_clock(quota, clock),
                clients,
                metrics,
                checks: AtomicU64::new(0),
            }),
        }
    }

    /// Spends one request of `ip`'s budget; false when it is empty.
    pub fn allow(&self, ip: IpAddr) -> bool {
        let inner = &self.inner;
        if inner.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            inner.gcra.retain_recent();
        }
        inner.gcra.check_key(&bucket(ip)).is_ok()
    }

    /// Clients currently tracked (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.inner.gcra.len()
    }
}

static REFUSALS: Throttle = Throttle::new();

impl RateLimiter {
    /// Spends one request of the budget of the client `req` comes from; 429 when it is empty.
    pub fn check(&self, req: &Request) -> Result<(), ApiError> {
        let Some(peer) = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
        else {
            return Ok(());
        };
        let ip = self.inner.clients.resolve(peer, req.headers());
        if self.allow(ip) {
            return Ok(());
        }
        bump(&self.inner.metrics.rate_limited);
        if let Some(suppressed) = REFUSALS.allow() {
            tracing::info!(%ip, suppressed, "rate limited");
        }
        Err(ApiError::RateLimited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn bursts_then_refills_per_client() {
        let clock = FakeRelativeClock::default();
        let per_minute = NonZeroU32::new(60).expect("nonzero");
        let limiter = RateLimiter::with_clock(
            per_minute,
            ClientAddress::default(),
            Arc::default(),
            clock.clone(),
        );
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        for _ in 0..60 {
            assert!(limiter.allow(a));
        }
        assert!(!limiter.allow(a), "burst spent");
        assert!(limiter.allow(b), "other clients unaffected");
        clock.advance(Duration::from_millis(1001));
        assert!(limiter.allow(a), "one token per second");
        assert!(!limiter.allow(a));
    }

    #[test]
    fn an_ipv6_client_is_counted_per_64() {
        let clock = FakeRelativeClock::default();
        let one = NonZeroU32::new(1).expect("nonzero");
        let limiter = RateLimiter::with_clock(one, ClientAddress::default(), Arc::default(), clock);
        assert!(limiter.allow(ip("2001:db8:1:2::1")));
        assert!(!limiter.allow(ip("2001:db8:1:2:ffff::9")), "same /64");
        assert!(limiter.allow(ip("2001:db8:1:3::1")), "another /64");
        assert!(limiter.allow(ip("::ffff:10.0.0.1")));
        assert!(
            !limiter.allow(ip("10.0.0.1")),
            "v4-mapped is the v4 address"
        );
    }

    #[test]
    fn pruning_keeps_only_clients_with_spent_budget() {
        let clock = FakeRelativeClock::default();
        let per_minute = NonZeroU32::new(60).expect("nonzero");
        let limiter = RateLimiter::with_clock(
            per_minute,
            ClientAddress::default(),
            Arc::default(),
            clock.clone(),
        );
        for i in 0..PRUNE_EVERY - 1 {
            limiter.allow(IpAddr::from([10, 1, (i >> 8) as u8, i as u8]));
        }
        assert_eq!(limiter.tracked() as u64, PRUNE_EVERY - 1);
        clock.advance(Duration::from_secs(61));
        limiter.allow(ip("10.9.9.9"));
        assert!(limiter.tracked() <= 1, "{}", limiter.tracked());
    }

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append("x-forwarded-for", l.parse().expect("value"));
        }
        h
    }

    #[test]
    fn the_client_is_the_first_untrusted_address_from_the_right() {
        let rule = ClientAddress::new(
            Some(HeaderName::from_static("x-forwarded-for")),
            vec![
                "10.0.0.0/8".parse().expect("net"),
                "192.0.2.7/32".parse().expect("net"),
            ],
        );
        let lb = ip("10.0.0.5");
        // Behind one trusted proxy: the entry it appended.
        assert_eq!(
            rule.resolve(lb, &headers(&["203.0.113.9"])),
            ip("203.0.113.9")
        );
        // A client-forged entry on the left is not believed.
        assert_eq!(
            rule.resolve(lb, &headers(&["6.6.6.6, 203.0.113.9"])),
            ip("203.0.113.9")
        );
        // Two trusted hops: walk past both.
        assert_eq!(
            rule.resolve(lb, &headers(&["6.6.6.6, 203.0.113.9, 192.0.2.7"])),
            ip("203.0.113.9")
        );
        // Several header lines are one list, in order.
        assert_eq!(
            rule.resolve(lb, &headers(&["6.6.6.6", "203.0.113.9:5678"])),
            ip("203.0.113.9")
        );
        assert_eq!(
            rule.resolve(lb, &headers(&["[2001:db8::1]:443"])),
            ip("2001:db8::1")
        );
        // A peer that is not a trusted proxy is the client, whatever it writes.
        assert_eq!(
            rule.resolve(ip("203.0.113.50"), &headers(&["1.1.1.1"])),
            ip("203.0.113.50")
        );
        // Junk stops the walk at the last trusted hop.
        assert_eq!(rule.resolve(lb, &headers(&["unknown"])), lb);
        assert_eq!(
            rule.resolve(lb, &headers(&["1.1.1.1, junk, 10.0.0.9"])),
            ip("10.0.0.9")
        );
        assert_eq!(rule.resolve(lb, &headers(&[])), lb);
    }
}
