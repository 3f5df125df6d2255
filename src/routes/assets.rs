//! Serves the assets (`crate::assets`): the iframe page with its Storage Access handling, and the
//! scripts under their fixed URLs.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use std::sync::Arc;

use crate::assets::{self, Asset, Assets};
use crate::state::AppState;

pub fn routes(assets: &Assets) -> Router<AppState> {
    Router::new()
        .route("/iframe.html", get(iframe_page))
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

/// Storage Access headers: when the browser says the broker holds a storage-access grant under this
/// top-level site that is not active yet (`Sec-Fetch-Storage-Access: inactive`), ask it to load the
/// iframe with the grant active, so the unpartitioned cookie works again without a script call.
async fn iframe_page(State(assets): State<Arc<Assets>>, h: HeaderMap) -> Response {
    let mut res = assets.iframe_page.serve(&h, "no-cache");
    let inactive = h
        .get("sec-fetch-storage-access")
        .is_some_and(|v| v.as_bytes() == b"inactive");
    if inactive {
        res.headers_mut()
            .insert("activate-storage-access", HeaderValue::from_static("load"));
    }
    res.headers_mut().append(
        header::VARY,
        HeaderValue::from_static("Sec-Fetch-Storage-Access"),
    );
    res
}
