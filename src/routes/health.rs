//! Liveness and readiness for load balancers and orchestrators.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use std::sync::Arc;

use crate::error::ApiError;
use crate::session::SessionStore;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(ready))
}

/// Ready means the store answers: a node that cannot reach its store should get no traffic.
async fn ready(
    State(store): State<Arc<dyn SessionStore>>,
    State(config): State<Arc<crate::config::Config>>,
) -> Response {
    let limit = config.server.request_timeout();
    let answer = tokio::time::timeout(limit, store.ping())
        .await
        .unwrap_or_else(|_| {
            Err(crate::session::StoreError::Unavailable(
                "ping timed out".into(),
            ))
        });
    match answer {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
