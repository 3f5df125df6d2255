//! Counters for operators, served as Prometheus text at `GET /metrics`.
//!
//! Plain atomics rather than a metrics framework: a handful of counters, no labels beyond the
//! status code, and nothing to configure. Each node counts its own; sum them across nodes.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

const STATUS_MIN: usize = 100;
const STATUS_MAX: usize = 599;

pub struct Metrics {
    responses: Vec<AtomicU64>,
    pub sessions_created: AtomicU64,
    pub handoffs_issued: AtomicU64,
    pub handoffs_redeemed: AtomicU64,
    pub handoffs_refused: AtomicU64,
    pub rate_limited: AtomicU64,
    pub origin_denied: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            responses: (STATUS_MIN..=STATUS_MAX)
                .map(|_| AtomicU64::new(0))
                .collect(),
            sessions_created: AtomicU64::new(0),
            handoffs_issued: AtomicU64::new(0),
            handoffs_redeemed: AtomicU64::new(0),
            handoffs_refused: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            origin_denied: AtomicU64::new(0),
        }
    }
}

pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// Counts one response with `status`.
    pub fn record(&self, status: u16) {
        if let Some(c) = (status as usize)
            .checked_sub(STATUS_MIN)
            .and_then(|i| self.responses.get(i))
        {
            bump(c);
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP baton_http_responses_total HTTP responses by status code.\n# TYPE baton_http_responses_total counter"
        );
        for (i, c) in self.responses.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "baton_http_responses_total{{status=\"{}\"}} {n}",
                    i + STATUS_MIN
                );
            }
        }
        for (name, help, c) in [
            (
                "baton_sessions_created_total",
                "Sessions created.",
                &self.sessions_created,
            ),
            (
                "baton_handoffs_issued_total",
                "Handoff tokens issued.",
                &self.handoffs_issued,
            ),
            (
                "baton_handoffs_redeemed_total",
                "Handoff tokens redeemed into a session.",
                &self.handoffs_redeemed,
            ),
            (
                "baton_handoffs_refused_total",
                "Handoff tokens refused (invalid, expired, replayed, wrong audience).",
                &self.handoffs_refused,
            ),
            (
                "baton_rate_limited_total",
                "API requests refused with 429 rate_limited.",
                &self.rate_limited,
            ),
            (
                "baton_origin_denied_total",
                "API requests refused with 403 origin_denied (Origin or page origin not trusted).",
                &self.origin_denied,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP baton_build_info Version of this node.\n# TYPE baton_build_info gauge\nbaton_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        out
    }
}

pub async fn serve(State(metrics): State<Arc<Metrics>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}
