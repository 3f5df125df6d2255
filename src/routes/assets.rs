//! Serves the assets (`crate::assets`): the iframe page with its Storage Access handling, and the
//! scripts under their fixed URLs.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use std::sync::Arc;

use crate::assets::{self, Assets};
use crate::state::AppState;

pub fn routes(assets: &Assets) -> Router<AppState> {
    let stable = assets::cache_control(false);
    let versioned = assets::cache_control(true);
    Router::new()
        .route("/iframe.html", get(iframe_page))
        .route(
            "/iframe.js",
            get(
                move |State(a): State<Arc<Assets>>, h: HeaderMap| async move {
                    a.iframe_js.serve(&h, stable)
                },
            ),
        )
        .route(
            &assets.versioned_iframe_js_path(),
            get(
                move |State(a): State<Arc<Assets>>, h: HeaderMap| async move {
                    a.iframe_js.serve(&h, versioned)
                },
            ),
        )
        .route("/cookie-provider.js", get(cookie_provider))
        .route("/cookie-provider.min.js", get(cookie_provider))
        .route(
            &assets.versioned_provider_path(),
            get(
                move |State(a): State<Arc<Assets>>, h: HeaderMap| async move {
                    a.cookie_provider.serve(&h, versioned)
                },
            ),
        )
        .route(
            "/baton.mjs",
            get(
                move |State(a): State<Arc<Assets>>, h: HeaderMap| async move {
                    a.module.serve(&h, stable)
                },
            ),
        )
        .route(
            &assets.versioned_module_path(),
            get(
                move |State(a): State<Arc<Assets>>, h: HeaderMap| async move {
                    a.module.serve(&h, versioned)
                },
            ),
        )
        .route(
            "/baton.d.mts",
            get(
                move |State(a): State<Arc<Assets>>, h: HeaderMap| async move {
                    a.module_types.serve(&h, stable)
                },
            ),
        )
        .route(
            "/cookie-provider.d.ts",
            get(
                move |State(a): State<Arc<Assets>>, h: HeaderMap| async move {
                    a.types.serve(&h, stable)
                },
            ),
        )
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

async fn cookie_provider(State(assets): State<Arc<Assets>>, h: HeaderMap) -> Response {
    assets
        .cookie_provider
        .serve(&h, assets::cache_control(false))
}
