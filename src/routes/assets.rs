//! Serves the assets (`crate::assets`): the iframe page, with the session it may carry and its
//! Storage Access handling, and the scripts under their fixed URLs.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use std::sync::Arc;

use super::extract::{Resolved, SessionRequest};
use crate::assets::{self, Asset, Assets};
use crate::error::ApiError;
use crate::state::AppState;

pub fn routes(assets: &Assets) -> Router<AppState> {
    Router::new()
        .route("/iframe.html", get(iframe_page))
        // The page carries its script inline; these two stay one release for pages that load
        // it by URL.
        .route("/iframe.js", asset(|a| &a.iframe_js, false))
        .route(
            &assets.versioned_iframe_js_path(),
            asset(|a| &a.iframe_js, true),
        )
        .route("/cookie-provider.js", asset(|a| &a.cookie_provider, false))
        .route(
            "/cookie-provider.min.js",
            asset(|a| &a.cookie_provider, false),
        )
        .route(
            &assets.versioned_provider_path(),
            asset(|a| &a.cookie_provider, true),
        )
        .route("/baton.mjs", asset(|a| &a.module, false))
        .route(&assets.versioned_module_path(), asset(|a| &a.module, true))
        .route("/baton.d.mts", asset(|a| &a.module_types, false))
        .route("/cookie-provider.d.ts", asset(|a| &a.types, false))
}

/// `GET` of the asset `which` picks, under a stable or a versioned (immutable) URL.
fn asset(which: fn(&Assets) -> &Asset, versioned: bool) -> MethodRouter<AppState> {
    let cache = assets::cache_control(versioned);
    get(move |State(a): State<Arc<Assets>>, h: HeaderMap| async move { which(&a).serve(&h, cache) })
}

/// The iframe page.
///
/// In cookie modes it carries the session the request's cookie reaches (`snapshot`), so that the
/// iframe answers the page's first read without a round trip of its own (issue 23); that page
/// is `no-store`. Otherwise the prepared page, `no-cache` (revalidated, 304).
///
/// Storage Access headers: when the browser says the broker holds a storage-access grant under
/// this top-level site that is not active yet (`Sec-Fetch-Storage-Access: inactive`), ask it to
/// load the iframe with the grant active, so the unpartitioned cookie works again without a
/// script call.
async fn iframe_page(
    State(assets): State<Arc<Assets>>,
    h: HeaderMap,
    req: Result<SessionRequest, ApiError>,
) -> Response {
    let inactive = super::extract::storage_access(&h) == b"inactive";
    let snapshot = match req {
        Ok(req) if !inactive && framed(&h) && req.creds.has_cookie() => {
            snapshot(&req).await.map(|r| {
                assets
                    .iframe
                    .serve_with_session(&r.session.values, &req.cookies_for(&r))
            })
        }
        _ => None,
    };
    let mut res = snapshot.unwrap_or_else(|| assets.iframe_page.serve(&h, "no-cache"));
    if inactive {
        res.headers_mut()
            .insert("activate-storage-access", HeaderValue::from_static("load"));
    }
    // Which page a request gets depends on these too (a cache that keeps the prepared page
    // must not hand it out for a request that would have had the session, nor the reverse).
    for v in ["Sec-Fetch-Storage-Access", "Sec-Fetch-Dest", "Cookie"] {
        res.headers_mut()
            .append(header::VARY, HeaderValue::from_static(v));
    }
    res
}

/// Whether the request loads the page into a frame (`Sec-Fetch-Dest`, which no page can set):
/// only then may it carry the session. A top-level open, an `<img>`, a `fetch` or a prefetch of
/// the page by any site gets the page without it, and touches no session. A browser that sends
/// no fetch metadata gets the page without it too, and the iframe reads the session by `fetch`.
fn framed(h: &HeaderMap) -> bool {
    h.get("sec-fetch-dest")
        .is_some_and(|v| v.as_bytes() == b"iframe" || v.as_bytes() == b"frame")
}

/// A stuck store would log this for every page load: one line a second.
static SLOW: crate::telemetry::Throttle = crate::telemetry::Throttle::new();

/// How long the page waits for the store before it goes without the session. Short: a frame
/// holds its parent page's `load` event until it has loaded, so a stuck store must not hold the
/// partner's page; the iframe's own read then has the whole request deadline.
const SNAPSHOT_DEADLINE: std::time::Duration = std::time::Duration::from_millis(500);

/// The session the request's cookie reaches, found (and touched: sliding expiry) exactly as
/// `GET /v1/session` finds it, with the cookies that answer would (re-)issue. `None` when there
/// is none, or the store fails or takes longer than `SNAPSHOT_DEADLINE` (or the request
/// deadline, if shorter): the page is then served without it and the iframe asks the API, which
/// answers the failure as usual.
async fn snapshot(req: &SessionRequest) -> Option<Resolved> {
    let deadline = req.config.server.request_timeout().min(SNAPSHOT_DEADLINE);
    match tokio::time::timeout(deadline, req.resolve()).await {
        Ok(Ok(found)) => found,
        // Already logged (throttled) where the store error became an `ApiError`.
        Ok(Err(_)) => None,
        Err(_) => {
            if let Some(suppressed) = SLOW.allow() {
                tracing::warn!(limit = ?deadline, suppressed, "iframe page served without the session: the store took too long");
            }
            None
        }
    }
}
