//! The HTTP surface: assets and the iframe page, the session API, health checks, and the
//! response headers every route shares.

pub mod api;
pub mod assets;
pub mod extract;
pub mod health;
pub mod identity;

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::telemetry::shown;

pub fn router(state: AppState, limiter: Option<crate::ratelimit::RateLimiter>) -> Router {
    // Every request on the public listener spends its client's budget: pages, scripts, unknown
    // paths here, and `/v1` in its guard (so that a 429 there carries CORS like every `/v1`
    // answer). Not the health checks: they come from the load balancer's few addresses at its own
    // steady pace, and behind a proxy that is not in `trusted_proxies` they would share one budget
    // with every client, so a busy node would be taken out of service for being busy.
    let pages = Router::new()
        .merge(assets::routes(&state.assets))
        .fallback(|| async { ApiError::NotFound });
    let pages = match limiter.clone() {
        Some(limiter) => pages.layer(middleware::from_fn_with_state(limiter, limit)),
        None => pages,
    };
    // Added after the limit's layer, so outside it (`/v1` has its own).
    pages
        .merge(health::routes())
        .nest("/v1", api::routes(&state, limiter))
        // Outermost, so that every answer, the deadline's 503 included, gets the headers and is
        // counted.
        .layer(middleware::from_fn_with_state(state.metrics.clone(), edge))
        .with_state(state)
}

/// The admin listener's routes: `/metrics`, nothing else.
pub fn admin_router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(crate::metrics::serve))
        .fallback(|| async { ApiError::NotFound })
        .with_state(metrics)
}

/// 429 for a client whose budget is spent.
async fn limit(
    State(limiter): State<crate::ratelimit::RateLimiter>,
    req: Request,
    next: Next,
) -> Response {
    match limiter.check(&req) {
        Ok(()) => next.run(req).await,
        Err(refused) => refused.into_response(),
    }
}

/// What every response of baton carries, the demo's pages included: no MIME sniffing, and no
/// `Referer` to anyone (the broker's URLs say which partner a customer came from).
pub fn base_headers(h: &mut axum::http::HeaderMap) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// What every response gets on its way out: the security headers (routes that need another CSP,
/// such as the iframe page, set their own; everything else may not be framed and may load
/// nothing), the API's error shape for a bare 405, and its count in `/metrics`.
///
/// It also writes the access line, at `info` on target `baton::access`: method and the caller's
/// origin (both as the client sent them, so escaped and capped by `shown`), route template,
/// status, latency — never a path, a cookie, a key or a token.
async fn edge(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .map(|o| shown(o.as_bytes()));
    let mut res = next.run(req).await;
    // axum answers a known path with an unknown method by a bare 405; give it the API's error
    // shape (`method_not_allowed_fallback` would also swallow the CORS preflight, which the `/v1`
    // guard answers).
    if res.status() == axum::http::StatusCode::METHOD_NOT_ALLOWED
        && !res.headers().contains_key(header::CONTENT_TYPE)
    {
        // Only the body is replaced: the headers already set (Allow, and CORS under /v1) stay.
        let (parts, _) = res.into_parts();
        let (_, body) = ApiError::MethodNotAllowed.into_response().into_parts();
        res = Response::from_parts(parts, body);
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    let h = res.headers_mut();
    base_headers(h);
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    let took = started.elapsed();
    let route = route.as_deref().unwrap_or("unmatched");
    let status = res.status().as_u16();
    metrics.record(&method, route, status, took);
    tracing::info!(
        target: "baton::access",
        method = %shown(method.as_str().as_bytes()),
        route,
        status,
        latency_ms = took.as_secs_f64() * 1e3,
        origin = origin.as_deref().unwrap_or("-"),
        "request"
    );
    res
}
