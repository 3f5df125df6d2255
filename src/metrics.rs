//! What operators measure, in Prometheus (OpenMetrics) text, served at `GET /metrics` on the
//! admin listener only (`server.admin_listen`): the public listener is reachable by everyone, and
//! a scrape shows traffic patterns no customer should see.
//!
//! Built on `prometheus-client`: responses by status, request latency by route, store call
//! latency and errors by operation, the counts of sessions, handoffs and refusals, and the
//! process's own figures (resident memory, open files and their limit, start time). Each node
//! counts its own; sum them across nodes.
//!
//! No label value comes from a client as it sent it: a label is kept for ever, so one made-up value
//! per request would grow the scrape and the memory without bound (measured before this rule:
//! 2,000 requests with made-up 4 KB methods turned a 42 KB scrape into 139 MB). Route labels are
//! route templates (`/v1/session/{key}`) or `unmatched`, never raw paths; methods outside the
//! standard set are one label, `other`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: &'static str,
    /// A template of the router's (a fixed set), or `unmatched`.
    pub route: String,
}

/// The label of a request's method: its name for the standard ones, else `other` (hyper accepts
/// any token as a method, up to the size of a request head).
pub fn method_label(method: &axum::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "other",
    }
}

/// What happened to a connection, by kind: events that can repeat many times a second, so their
/// log lines are throttled and the counts kept here.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    pub op: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latency buckets, in seconds: from half a millisecond to the longest a request may take.
fn latency() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

pub struct Metrics {
    registry: Registry,
    responses: Family<StatusLabels, Counter>,
    request_duration: Histograms<RouteLabels>,
    store_duration: Histograms<OpLabels>,
    store_errors: Family<OpLabels, Counter>,
    pub sessions_created: Counter,
    pub handoffs_issued: Counter,
    pub handoffs_redeemed: Counter,
    pub handoffs_refused: Counter,
    pub rate_limited: Counter,
    pub origin_denied: Counter,
    /// Connections open on the public listener, from accept until their task has ended.
    pub open_connections: Gauge,
    connection_events: Family<EventLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        // baton's own under `baton_`; the process figures under the names every Prometheus client
        // library uses (`process_*`), so standard dashboards and alerts apply.
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Process::new()));
        let own = registry.sub_registry_with_prefix("baton");
        let responses = Family::<StatusLabels, Counter>::default();
        own.register(
            "http_responses",
            "HTTP responses by status code",
            responses.clone(),
        );
        let request_duration = Histograms::<RouteLabels>::new_with_constructor(latency);
        own.register(
            "http_request_duration_seconds",
            "Time from request head to response head, by route template and method",
            request_duration.clone(),
        );
        let store_duration = Histograms::<OpLabels>::new_with_constructor(latency);
        own.register(
            "store_call_duration_seconds",
            "Session store calls, by operation",
            store_duration.clone(),
        );
        let store_errors = Family::<OpLabels, Counter>::default();
        own.register(
            "store_errors",
            "Session store calls that failed (unavailable or internal), by operation",
            store_errors.clone(),
        );
        let mut counter = |name: &str, help: &str| {
            let c = Counter::default();
            own.register(name, help, c.clone());
            c
        };
        let sessions_created = counter("sessions_created", "Sessions created");
        let handoffs_issued = counter("handoffs_issued", "Handoff tokens issued");
        let handoffs_redeemed = counter(
            "handoffs_redeemed",
            "Handoff tokens redeemed into a session",
        );
        let handoffs_refused = counter(
            "handoffs_refused",
            "Handoff tokens refused (invalid, expired, replayed, wrong audience)",
        );
        let rate_limited = counter("rate_limited", "Requests refused with 429 rate_limited");
        let origin_denied = counter(
            "origin_denied",
            "API requests refused with 403 origin_denied (Origin or page origin not trusted)",
        );
        let open_connections = Gauge::default();
        own.register(
            "open_connections",
            "Connections open on the public listener, counted until their task has ended",
            open_connections.clone(),
        );
        let connection_events = Family::<EventLabels, Counter>::default();
        own.register(
            "connection_events",
            "Connection events by kind: accept_failed, refused_at_bound, evicted, write_timeout, error",
            connection_events.clone(),
        );
        Self {
            registry,
            responses,
            request_duration,
            store_duration,
            store_errors,
            sessions_created,
            handoffs_issued,
            handoffs_redeemed,
            handoffs_refused,
            rate_limited,
            origin_denied,
            open_connections,
            connection_events,
        }
    }
}

pub fn bump(counter: &Counter) {
    counter.inc();
}

impl Metrics {
    /// Counts one response with `status`, which took `took` on `route` (a template or
    /// `unmatched`) by `method`.
    pub fn record(&self, method: &axum::http::Method, route: &str, status: u16, took: Duration) {
        self.responses.get_or_create(&StatusLabels { status }).inc();
        self.request_duration
            .get_or_create(&RouteLabels {
                method: method_label(method),
                route: route.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts one connection event of kind `event`.
    pub fn connection_event(&self, event: &'static str) {
        self.connection_events
            .get_or_create(&EventLabels { event })
            .inc();
    }

    /// Counts one store call of `op` that took `took`, and whether it failed.
    pub fn store_call(&self, op: &'static str, took: Duration, failed: bool) {
        let labels = OpLabels { op };
        self.store_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if failed {
            self.store_errors.get_or_create(&labels).inc();
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

pub async fn serve(State(metrics): State<Arc<Metrics>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

/// The process's own figures, read from `/proc` at each scrape (the names Prometheus client
/// libraries use, so standard dashboards and alerts apply).
#[derive(Debug)]
struct Process {
    start_time_secs: f64,
}

impl Process {
    fn new() -> Self {
        let start_time_secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Self { start_time_secs }
    }
}

/// Resident memory in bytes, from `/proc/self/statm` (pages).
fn resident_bytes() -> Option<i64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: i64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages.saturating_mul(4096))
}

fn open_fds() -> Option<i64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as i64)
}

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut gauge = |name: &str, help: &str, value: i64| -> Result<(), std::fmt::Error> {
            let g = ConstGauge::new(value);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
        };
        if let Some(rss) = resident_bytes() {
            gauge(
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                rss,
            )?;
        }
        if let Some(fds) = open_fds() {
            gauge("process_open_fds", "Number of open file descriptors", fds)?;
        }
        if let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
            let max = i64::try_from(soft).unwrap_or(i64::MAX);
            gauge(
                "process_max_fds",
                "Maximum number of open file descriptors",
                max,
            )?;
        }
        let start = ConstGauge::new(self.start_time_secs);
        start.encode(encoder.encode_descriptor(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds",
            None,
            start.metric_type(),
        )?)?;
        Ok(())
    }
}
