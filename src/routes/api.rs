//! The session API the iframe (and trusted pages) call: `/v1/session…` and `/v1/handoff…` here,
//! `/v1/identify` and `/v1/forget` in `identity.rs`, all behind this module's `guard`.
//!
//! The cookies are `SameSite=None`, so a request from any site in the world arrives with them.
//! What stops cross-site request forgery is the `Origin` check in `guard`, which runs before any
//! handler: a request whose origin is neither the broker's own nor a trusted one is refused with
//! 403 and changes nothing. Browsers omit `Origin` on same-origin GETs, so for those the
//! unforgeable `Sec-Fetch-Site: same-origin` stands in for the broker's own origin.
//!
//! Each handler starts from a `SessionRequest` (`extract.rs`): finding the session, creating it
//! and answering about it are written once there.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::extract::{Caller, PAGE_KEY, PAGE_ORIGIN, SessionRequest, page_origin, with_cookies};
use crate::config::Config;
use crate::cookie;
use crate::error::ApiError;
use crate::handoff::HandoffKeys;
use crate::link;
use crate::metrics::{Metrics, bump};
use crate::origin::Origin;
use crate::session::Jti;
use crate::state::AppState;
use crate::telemetry::Throttle;
use tower_http::timeout::RequestBodyTimeoutLayer;

pub fn routes(
    state: &AppState,
    limiter: Option<crate::ratelimit::RateLimiter>,
) -> Router<AppState> {
    let server = &state.config.server;
    let guard_state = Arc::new(Guard {
        config: Arc::clone(&state.config),
        metrics: Arc::clone(&state.metrics),
        limiter,
        // JSON escaping can grow a value up to 6 times (`\u00XX`); anything beyond that is not a
        // legitimate request and is cut off before it is buffered.
        body_limit: state.config.session.max_value_bytes * 6 + 4096,
        request_timeout: server.request_timeout(),
        allow_headers: HeaderValue::from_str(&format!("content-type, {PAGE_ORIGIN}, {PAGE_KEY}"))
            .unwrap_or(HeaderValue::from_static("content-type")),
    });
    Router::new()
        .route("/session", get(get_session).delete(end_session))
        .route("/session/{key}", put(put_value).delete(delete_value))
        .route("/handoff", post(mint_handoff))
        .route("/handoff/redeem", post(redeem_handoff))
        .route("/identify", post(super::identity::identify))
        .route("/forget", post(super::identity::forget))
        // Unknown paths under /v1 too: their 404 passes through the guard like every answer.
        .fallback(|| async { ApiError::NotFound })
        .layer(DefaultBodyLimit::max(guard_state.body_limit))
        .layer(RequestBodyTimeoutLayer::new(server.body_timeout()))
        // Outermost, so that every answer under /v1 passes through it: refusals of the rate limit
        // and of the router (405) get the same CORS and cache headers as the handlers' answers.
        .layer(middleware::from_fn_with_state(guard_state, guard))
}

/// What the API's one middleware needs. One middleware rather than a stack of them: each layer
/// costs a clone of the service below it on every request.
pub struct Guard {
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    limiter: Option<crate::ratelimit::RateLimiter>,
    body_limit: usize,
    request_timeout: std::time::Duration,
    /// The request headers a preflight may ask for.
    allow_headers: HeaderValue,
}

/// A body declared larger than the limit is refused at once with 413, before a byte of it is
/// read (measured: a `PUT` declaring 50 MB and sending nothing was held until the request
/// deadline). Bodies without a length are cut off by `DefaultBodyLimit` as they stream.
fn declared_too_large(req: &Request, limit: usize) -> bool {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limit as u64)
}

static DENIALS: Throttle = Throttle::new();
/// A stuck store times out every request at once: one line a second says so.
static TIMEOUTS: Throttle = Throttle::new();

fn caller_origin(config: &Config, headers: &HeaderMap) -> Result<Origin, ApiError> {
    let public_origin = &config.server.public_origin;
    let Some(raw) = headers.get(header::ORIGIN) else {
        let same_origin = headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"same-origin");
        return if same_origin {
            Ok(public_origin.clone())
        } else {
            Err(ApiError::OriginDenied)
        };
    };
    let Ok(raw) = raw.to_str() else {
        if let Some(suppressed) = DENIALS.allow() {
            let origin = crate::telemetry::shown(raw.as_bytes());
            tracing::info!(%origin, reason = "not_ascii", suppressed, "origin denied");
        }
        return Err(ApiError::OriginDenied);
    };
    if raw == public_origin.as_str() {
        return Ok(public_origin.clone());
    }
    config.trust.origins.check(raw).map_err(|denied| {
        if let Some(suppressed) = DENIALS.allow() {
            let origin = crate::telemetry::shown(raw.as_bytes());
            tracing::info!(%origin, reason = denied.code(), suppressed, "origin denied");
        }
        ApiError::OriginDenied
    })
}

/// Every `/v1` request, in order: the rate limit (429, before anything else, so that refusals and
/// preflights spend the budget too), the `Origin` check (403), the preflight answer, a declared
/// body too large (413), then the handler under the request deadline (503: a stuck store); every
/// answer then gets CORS for a trusted caller and `Cache-Control: no-store`.
async fn guard(State(g): State<Arc<Guard>>, mut req: Request, next: Next) -> Response {
    let origin = caller_origin(&g.config, req.headers());
    let limited = g.limiter.as_ref().and_then(|l| l.check(&req).err());
    let mut res = match (limited, origin.as_ref()) {
        (Some(refused), _) => refused.into_response(),
        (None, Err(_)) => {
            bump(&g.metrics.origin_denied);
            ApiError::OriginDenied.into_response()
        }
        (None, Ok(_)) if req.method() == Method::OPTIONS => preflight(&g.allow_headers),
        (None, Ok(_)) if declared_too_large(&req, g.body_limit) => {
            ApiError::BodyTooLarge.into_response()
        }
        (None, Ok(origin)) => {
            req.extensions_mut().insert(Caller(origin.clone()));
            match tokio::time::timeout(g.request_timeout, next.run(req)).await {
                Ok(res) => res,
                Err(_) => {
                    if let Some(suppressed) = TIMEOUTS.allow() {
                        tracing::warn!(limit = ?g.request_timeout, suppressed, "request timed out");
                    }
                    ApiError::StoreUnavailable.into_response()
                }
            }
        }
    };
    let Ok(origin) = origin else {
        // No CORS for an untrusted caller, but never cached.
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return res;
    };
    let h = res.headers_mut();
    if let Ok(value) = HeaderValue::from_str(origin.as_str()) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn preflight(allow_headers: &HeaderValue) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, PUT, POST, DELETE"),
    );
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allow_headers.clone());
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    res
}

/// Whether reading the body failed because the client stopped sending it.
fn caused_by_body_timeout(rejection: &JsonRejection) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(e) = cause {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// `Json` with this API's error shape: 415 without a JSON content type, 413 over the body
/// limit, 408 for a body that stopped arriving, 400 for anything that is not the expected JSON.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::BodyTooLarge)
            }
            Err(rejection) if caused_by_body_timeout(&rejection) => Err(ApiError::BodyTimeout),
            Err(rejection) => Err(ApiError::BadJson(rejection.body_text())),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutValue {
    value: String,
}

/// The `{key}` of a path, checked by the key rule; 400 `bad_key` in the API's error shape for
/// anything else, a key that is not UTF-8 included (axum's own rejection would be plain text).
pub struct Key(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Key {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(key)) if crate::session::is_valid_key(&key) => Ok(Self(key)),
            _ => Err(ApiError::BadKey),
        }
    }
}

/// The session's values; 204 when the request reaches none. Having no session is the normal
/// state of every first visit, not an error, so it must not show as a failed request in the
/// browser's console.
async fn get_session(req: SessionRequest) -> Result<Response, ApiError> {
    Ok(match req.resolve().await? {
        Some(r) => req.respond(json!({ "values": r.session.values }), &r),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

async fn put_value(
    req: SessionRequest,
    Key(key): Key,
    JsonBody(body): JsonBody<PutValue>,
) -> Result<Response, ApiError> {
    use crate::session::SetOutcome;
    let limits = &req.config.session;
    if body.value.len() > limits.max_value_bytes {
        return Err(ApiError::ValueTooLarge(limits.max_value_bytes));
    }
    // The store counts and writes in one atomic step: a check here would race other writers.
    let (outcome, binding) = req.set_value(&key, &body.value, limits.max_values).await?;
    let session = match outcome {
        SetOutcome::Done(session) => session,
        SetOutcome::Full => return Err(ApiError::TooManyValues(limits.max_values)),
        // Gone since it was resolved (expired, ended, replaced by a handoff): the value is
        // refused rather than written into a session nobody reaches.
        SetOutcome::Missing => return Err(ApiError::NoSession),
    };
    let body = json!({ "values": session.values });
    Ok(req.respond(body, &super::extract::Resolved { session, binding }))
}

/// Removes `key`; 204 whether or not there was a session or a value (the value is gone either
/// way).
async fn delete_value(req: SessionRequest, Key(key): Key) -> Result<Response, ApiError> {
    if let Some(r) = req.resolve().await? {
        req.store
            .remove_value(&r.session.uid, &key, req.now)
            .await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Ends every session the request reaches (normally one) and expires both cookies.
async fn end_session(req: SessionRequest) -> Result<Response, ApiError> {
    req.end_all().await?;
    Ok(with_cookies(
        StatusCode::NO_CONTENT.into_response(),
        &cookie::removal_cookies(),
    ))
}

/// Either the audience itself, or the URL of the link the token is for (the broker applies
/// `link::destination`), with the page's origin as the iframe saw it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MintRequest {
    audience: Option<String>,
    url: Option<String>,
    origin: Option<String>,
}

async fn mint_handoff(
    req: SessionRequest,
    State(keys): State<Arc<HandoffKeys>>,
    JsonBody(body): JsonBody<MintRequest>,
) -> Result<Response, ApiError> {
    if !keys.is_enabled() {
        return Err(ApiError::HandoffDisabled);
    }
    let trusted = &req.config.trust.origins;
    let audience = match (&body.audience, &body.url, &body.origin) {
        (Some(audience), None, None) => {
            trusted.check(audience).map_err(|_| ApiError::BadAudience)?
        }
        (None, Some(url), _) => {
            let audience = link::destination(url, trusted).map_err(|why| {
                tracing::info!(reason = why.code(), "no handoff for this link");
                ApiError::BadAudience
            })?;
            // A link to the page's own site needs no token. The iframe names the page; naming
            // one only ever refuses more, so it needs no check. A direct caller, like one that
            // names its `audience`, is left to decide for itself.
            if body.origin.as_deref() == Some(audience.as_str()) {
                return Err(ApiError::BadAudience);
            }
            audience
        }
        _ => {
            return Err(ApiError::BadJson(
                "the body is `{\"audience\": ...}` or `{\"url\": ..., \"origin\": ...}`".to_owned(),
            ));
        }
    };
    // No session, no token: a link followed on a first visit is plain, not a failed request.
    let Some(r) = req.resolve().await? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let minted = keys
        .mint(audience.as_str(), req.now, &r.session.uid)
        .map_err(|e| {
            tracing::error!(error = %e, "cannot sign a handoff token");
            ApiError::Internal
        })?;
    req.store
        .put_handoff(&minted.jti, &r.session.uid, minted.expires_at)
        .await?;
    bump(&req.metrics.handoffs_issued);
    tracing::info!(audience = %audience, "handoff token issued");
    Ok(Json(json!({
        "token": minted.token,
        "expires_in": keys.ttl_secs(),
        "audience": audience.as_str(),
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeemRequest {
    token: String,
    origin: Option<String>,
}

/// Binds the token's session to this site under a fresh id: its cookies, or in page mode a new
/// page key for this page's origin.
///
/// What wins when this site already has a live session of its own: that session, if it holds any
/// value. A link must not silently replace a chat in progress here, and it must not let whoever
/// sent the link swap the customer into the sender's session (session fixation). The token is
/// consumed either way, and the page is told `session_conflict`. An empty session is replaced.
async fn redeem_handoff(
    req: SessionRequest,
    State(keys): State<Arc<HandoffKeys>>,
    Extension(Caller(caller)): Extension<Caller>,
    JsonBody(body): JsonBody<RedeemRequest>,
) -> Result<Response, ApiError> {
    let metrics: &Metrics = &req.metrics;
    // From the iframe, the page's origin is what the iframe saw in `event.origin` (and it must be
    // trusted); from a trusted page calling directly, it is the request's own `Origin`.
    let claimed = match (&body.origin, caller == req.config.server.public_origin) {
        (Some(claimed), _) => claimed.as_str(),
        (None, true) => return Err(ApiError::InvalidToken),
        (None, false) => caller.as_str(),
    };
    let page = page_origin(&req.config, &caller, claimed).map_err(|_| ApiError::InvalidToken)?;
    // A page key is only ever issued for the page the token names.
    if req.creds.page.as_ref().is_some_and(|p| p.origin != page) {
        return Err(ApiError::InvalidToken);
    }
    let claims = keys
        .verify(&body.token, page.as_str(), req.now)
        .map_err(|why| {
            bump(&metrics.handoffs_refused);
            tracing::info!(reason = ?why, page = %page, "handoff token refused");
            ApiError::InvalidToken
        })?;
    // A jti the broker never minted was never issued: refused as one already used.
    let uid = match Jti::parse(&claims.jti) {
        Some(jti) => req.store.take_handoff(&jti, req.now).await?,
        None => None,
    };
    let Some(uid) = uid else {
        bump(&metrics.handoffs_refused);
        tracing::info!(page = %page, "handoff token already used or unknown");
        return Err(ApiError::InvalidToken);
    };
    // Every session the request reaches counts, not only the one that would win: checking,
    // ending the empty ones and binding happen in one atomic store step (`adopt`), so a value
    // written meanwhile is never lost. Redeeming into the session one already has binds a fresh
    // id to it, like any redeem.
    let r = match req.adopt(&uid).await {
        Err(ApiError::SessionConflict) => {
            tracing::info!(page = %page, "handoff refused: a session here holds values");
            return Err(ApiError::SessionConflict);
        }
        r => r?.ok_or(ApiError::InvalidToken)?,
    };
    bump(&metrics.handoffs_redeemed);
    tracing::info!(page = %page, "handoff redeemed");
    Ok(req.respond(json!({ "adopted": true, "values": r.session.values }), &r))
}
