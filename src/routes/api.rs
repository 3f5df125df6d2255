//! The session API the iframe (and trusted pages) call: `/v1/session…` and `/v1/handoff…`.
//!
//! The cookies are `SameSite=None`, so a request from any site in the world arrives with them.
//! What stops cross-site request forgery is the `Origin` check in `guard`, which runs before any
//! handler: a request whose origin is neither the broker's own nor a trusted one is refused with
//! 403 and changes nothing. Browsers omit `Origin` on same-origin GETs, so for those the
//! unforgeable `Sec-Fetch-Site: same-origin` stands in for the broker's own origin.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::cookie::{self, RequestCookies};
use crate::error::ApiError;
use crate::metrics::bump;
use crate::origin::Origin;
use crate::session::{IdHash, PageKey, Session, SessionId, Timestamp};
use crate::state::AppState;

pub fn routes(state: AppState, limiter: Option<crate::ratelimit::RateLimiter>) -> Router<AppState> {
    // JSON escaping can grow a value up to 6 times (`\u00XX`); anything beyond that is not a
    // legitimate request and is cut off before it is buffered.
    let body_limit = state.policy.max_value_bytes * 6 + 4096;
    let api = Router::new()
        .route("/session", get(get_session).delete(end_session))
        .route("/session/{key}", put(put_value).delete(delete_value))
        .route("/handoff", post(mint_handoff))
        .route("/handoff/redeem", post(redeem_handoff))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(state, guard));
    match limiter {
        Some(limiter) => api.layer(middleware::from_fn_with_state(
            limiter,
            crate::ratelimit::limit,
        )),
        None => api,
    }
}

/// The origin the request acts for, once `guard` has allowed it.
#[derive(Clone, Debug)]
pub struct Caller(pub Origin);

fn caller_origin(state: &AppState, headers: &HeaderMap) -> Result<Origin, ApiError> {
    let policy = &state.policy;
    let Some(raw) = headers.get(header::ORIGIN) else {
        let same_origin = headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"same-origin");
        return if same_origin {
            Ok(policy.public_origin.clone())
        } else {
            Err(ApiError::OriginDenied)
        };
    };
    let raw = raw.to_str().map_err(|_| ApiError::OriginDenied)?;
    if raw == policy.public_origin.as_str() {
        return Ok(policy.public_origin.clone());
    }
    policy.trusted.check(raw).map_err(|denied| {
        tracing::info!(reason = denied.code(), "origin denied");
        ApiError::OriginDenied
    })
}

async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let origin = match caller_origin(&state, req.headers()) {
        Ok(origin) => origin,
        Err(e) => return e.into_response(),
    };
    let mut res = if req.method() == Method::OPTIONS {
        let mut res = StatusCode::NO_CONTENT.into_response();
        let h = res.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, PUT, POST, DELETE"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type, baton-page-origin, baton-page-key"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        res
    } else {
        req.extensions_mut().insert(Caller(origin.clone()));
        next.run(req).await
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

/// `Json` with this API's error shape: 415 without a JSON content type, 413 over the body
/// limit, 400 for anything that is not the expected JSON.
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
            Err(rejection) => Err(ApiError::BadJson(rejection.body_text())),
        }
    }
}

fn valid_key(key: &str) -> Result<(), ApiError> {
    let ok = (1..=128).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok { Ok(()) } else { Err(ApiError::BadKey) }
}

/// The partner page a page-mode request acts for, and the page key that page holds.
struct Page {
    origin: Origin,
    key: Option<PageKey>,
}

/// What a request presents to reach a session: the broker's cookies and, in page mode (header
/// `Baton-Page-Origin`, only while `session.page_keys` is on), the page it acts for and its
/// page key (`Baton-Page-Key`).
///
/// Page mode is the iframe's choice: it asks for it only where the browser keeps none of the
/// broker's cookies (its own test cookies do not stick), so elsewhere nothing changes. The page
/// origin is checked like a redeem's: the broker's own iframe names the page whose message it
/// answers, which must be trusted; a trusted page calling directly can only name itself.
pub struct Credentials {
    cookies: RequestCookies,
    page: Option<Page>,
}

impl FromRequestParts<AppState> for Credentials {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let cookies = RequestCookies::from_headers(&parts.headers);
        let policy = &state.policy;
        let claimed = parts.headers.get(PAGE_ORIGIN);
        let page = match (claimed, parts.extensions.get::<Caller>()) {
            (Some(claimed), Some(Caller(caller))) if policy.page_keys => {
                let claimed = claimed.to_str().map_err(|_| ApiError::OriginDenied)?;
                let origin = if *caller == policy.public_origin {
                    policy.trusted.check(claimed).map_err(|denied| {
                        tracing::info!(reason = denied.code(), "page origin denied");
                        ApiError::OriginDenied
                    })?
                } else if claimed == caller.as_str() {
                    caller.clone()
                } else {
                    tracing::info!("page origin differs from the caller's");
                    return Err(ApiError::OriginDenied);
                };
                let key = parts
                    .headers
                    .get(PAGE_KEY)
                    .and_then(|v| v.to_str().ok())
                    .and_then(PageKey::parse);
                Some(Page { origin, key })
            }
            _ => None,
        };
        Ok(Self { cookies, page })
    }
}

/// Request header: the partner page a page-mode request acts for.
pub const PAGE_ORIGIN: &str = "baton-page-origin";
/// Request header: the page key that page holds.
pub const PAGE_KEY: &str = "baton-page-key";

/// What a response gives the browser to reach its session next time.
enum Binding {
    /// Nothing new: what it presented still works.
    Keep,
    /// Both cookies, set (again) to this id.
    Cookies(SessionId),
    /// A new page key for the page to keep (`page_key` in the JSON body).
    PageKey(PageKey),
}

impl Credentials {
    /// The store keys this request reaches sessions by, in the order they win: the unpartitioned
    /// cookie (shared by every site), the partitioned one, then the page key. Cookie entries carry
    /// their id, so that the winner can be re-issued.
    fn candidates(&self) -> Vec<(IdHash, Option<&SessionId>)> {
        let cookies = [&self.cookies.unpartitioned, &self.cookies.partitioned];
        let mut out: Vec<_> = cookies
            .into_iter()
            .flatten()
            .map(|id| (id.hash(), Some(id)))
            .collect();
        if let Some(Page {
            origin,
            key: Some(key),
        }) = &self.page
        {
            out.push((key.hash(origin), None));
        }
        out
    }

    /// A fresh way in for a session this request is about to create or adopt: a page key in page
    /// mode, else a cookie id.
    fn fresh(&self) -> (IdHash, Binding) {
        match &self.page {
            Some(page) => {
                let key = PageKey::generate();
                (key.hash(&page.origin), Binding::PageKey(key))
            }
            None => {
                let id = SessionId::generate();
                (id.hash(), Binding::Cookies(id))
            }
        }
    }
}

/// The session a request reaches, and what its answer must (re-)issue.
struct Resolved {
    session: Session,
    binding: Binding,
}

/// Finds the live session the request reaches (see `Credentials::candidates` for which wins).
/// When a cookie wins, both cookies are re-issued unless they already both carry its id.
async fn resolve(
    state: &AppState,
    creds: &Credentials,
    now: Timestamp,
) -> Result<Option<Resolved>, ApiError> {
    for (hash, cookie_id) in creds.candidates() {
        if let Some(session) = state.store.load(&hash, now).await? {
            let c = &creds.cookies;
            let binding = match cookie_id {
                Some(id)
                    if c.unpartitioned.as_ref() != Some(id)
                        || c.partitioned.as_ref() != Some(id) =>
                {
                    Binding::Cookies(id.clone())
                }
                _ => Binding::Keep,
            };
            return Ok(Some(Resolved { session, binding }));
        }
    }
    Ok(None)
}

fn max_age_secs(state: &AppState, session: &Session, now: Timestamp) -> i64 {
    let end = session
        .created_at
        .saturating_add(state.policy.timeouts.absolute_ms);
    ((end - now) / 1000).max(1)
}

fn with_cookies(mut res: Response, cookies: &[String]) -> Response {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

/// The JSON answer `body` about `session`, with what `binding` gives the browser.
fn session_response(
    state: &AppState,
    mut body: serde_json::Value,
    session: &Session,
    binding: &Binding,
    now: Timestamp,
) -> Response {
    match binding {
        Binding::Keep => Json(body).into_response(),
        Binding::Cookies(id) => with_cookies(
            Json(body).into_response(),
            &cookie::session_cookies(id, max_age_secs(state, session, now)),
        ),
        Binding::PageKey(key) => {
            body["page_key"] = key.as_str().into();
            Json(body).into_response()
        }
    }
}

fn values_response(state: &AppState, r: &Resolved, now: Timestamp) -> Response {
    let body = json!({ "values": r.session.values });
    session_response(state, body, &r.session, &r.binding, now)
}

async fn get_session(
    State(state): State<AppState>,
    creds: Credentials,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let r = resolve(&state, &creds, now)
        .await?
        .ok_or(ApiError::NoSession)?;
    Ok(values_response(&state, &r, now))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutValue {
    value: String,
}

async fn put_value(
    State(state): State<AppState>,
    Path(key): Path<String>,
    creds: Credentials,
    JsonBody(body): JsonBody<PutValue>,
) -> Result<Response, ApiError> {
    valid_key(&key)?;
    let policy = &state.policy;
    if body.value.len() > policy.max_value_bytes {
        return Err(ApiError::ValueTooLarge(policy.max_value_bytes));
    }
    let now = state.clock.now();
    let r = match resolve(&state, &creds, now).await? {
        Some(r) => r,
        None => {
            let (hash, binding) = creds.fresh();
            let session = state.store.create(&hash, now).await?;
            bump(&state.metrics.sessions_created);
            Resolved { session, binding }
        }
    };
    if !r.session.values.contains_key(&key) && r.session.values.len() >= policy.max_values {
        return Err(ApiError::TooManyValues(policy.max_values));
    }
    let session = state
        .store
        .set_value(&r.session.uid, &key, &body.value, now)
        .await?
        .ok_or(ApiError::NoSession)?;
    let r = Resolved { session, ..r };
    Ok(values_response(&state, &r, now))
}

async fn delete_value(
    State(state): State<AppState>,
    Path(key): Path<String>,
    creds: Credentials,
) -> Result<Response, ApiError> {
    valid_key(&key)?;
    let now = state.clock.now();
    let r = resolve(&state, &creds, now)
        .await?
        .ok_or(ApiError::NoSession)?;
    state
        .store
        .remove_value(&r.session.uid, &key, now)
        .await?
        .ok_or(ApiError::NoSession)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Ends every session the request reaches (normally one) and expires both cookies; a page key
/// dies with its session.
async fn end_session(
    State(state): State<AppState>,
    creds: Credentials,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    for (hash, _) in creds.candidates() {
        if let Some(session) = state.store.load(&hash, now).await? {
            state.store.end(&session.uid).await?;
        }
    }
    Ok(with_cookies(
        StatusCode::NO_CONTENT.into_response(),
        &cookie::removal_cookies(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MintRequest {
    audience: String,
}

async fn mint_handoff(
    State(state): State<AppState>,
    creds: Credentials,
    JsonBody(body): JsonBody<MintRequest>,
) -> Result<Response, ApiError> {
    if !state.handoff.is_enabled() {
        return Err(ApiError::HandoffDisabled);
    }
    let audience = state
        .policy
        .trusted
        .check(&body.audience)
        .map_err(|_| ApiError::BadAudience)?;
    let now = state.clock.now();
    let r = resolve(&state, &creds, now)
        .await?
        .ok_or(ApiError::NoSession)?;
    let minted = state.handoff.mint(audience.as_str(), now).map_err(|e| {
        tracing::error!(error = %e, "cannot sign a handoff token");
        ApiError::Internal
    })?;
    state
        .store
        .put_handoff(&minted.jti, &r.session.uid, minted.expires_at)
        .await?;
    bump(&state.metrics.handoffs_issued);
    tracing::info!(audience = %audience, "handoff token issued");
    Ok(
        Json(json!({ "token": minted.token, "expires_in": state.handoff.ttl_secs() }))
            .into_response(),
    )
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
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    creds: Credentials,
    JsonBody(body): JsonBody<RedeemRequest>,
) -> Result<Response, ApiError> {
    // From the iframe, the page's origin is what the iframe saw in `event.origin`; from a trusted
    // page calling directly, it is the request's own `Origin` and nothing else.
    let page = if caller == state.policy.public_origin {
        let claimed = body.origin.as_deref().ok_or(ApiError::InvalidToken)?;
        state
            .policy
            .trusted
            .check(claimed)
            .map_err(|_| ApiError::InvalidToken)?
    } else {
        if body.origin.as_deref().is_some_and(|o| o != caller.as_str()) {
            return Err(ApiError::InvalidToken);
        }
        caller
    };
    // A page key is only ever issued for the page the token names.
    if creds.page.as_ref().is_some_and(|p| p.origin != page) {
        return Err(ApiError::InvalidToken);
    }
    let now = state.clock.now();
    let claims = state
        .handoff
        .verify(&body.token, page.as_str(), now)
        .map_err(|why| {
            bump(&state.metrics.handoffs_refused);
            tracing::info!(reason = ?why, page = %page, "handoff token refused");
            ApiError::InvalidToken
        })?;
    let Some(uid) = state.store.take_handoff(&claims.jti, now).await? else {
        bump(&state.metrics.handoffs_refused);
        tracing::info!(page = %page, "handoff token already used or unknown");
        return Err(ApiError::InvalidToken);
    };
    if let Some(existing) = resolve(&state, &creds, now).await? {
        if existing.session.uid == uid {
            return Ok(adopted(&state, &existing, now));
        }
        if !existing.session.values.is_empty() {
            return Err(ApiError::SessionConflict);
        }
        state.store.end(&existing.session.uid).await?;
    }
    let (hash, binding) = creds.fresh();
    if !state.store.bind(&uid, &hash, now).await? {
        return Err(ApiError::InvalidToken);
    }
    let session = state
        .store
        .load(&hash, now)
        .await?
        .ok_or(ApiError::InvalidToken)?;
    bump(&state.metrics.handoffs_redeemed);
    tracing::info!(page = %page, "handoff redeemed");
    Ok(adopted(&state, &Resolved { session, binding }, now))
}

fn adopted(state: &AppState, r: &Resolved, now: Timestamp) -> Response {
    let body = json!({ "adopted": true, "values": r.session.values });
    session_response(state, body, &r.session, &r.binding, now)
}
