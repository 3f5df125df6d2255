//! What every handler may need, passed in state so tests can swap any part (store, clock, keys).

use std::sync::Arc;

use axum::extract::FromRef;

use crate::clock::Clock;
use crate::handoff::HandoffKeys;
use crate::metrics::Metrics;
use crate::origin::{Origin, TrustedOrigins};
use crate::routes::assets::Assets;
use crate::session::{SessionStore, Timeouts};

/// The rules the API enforces, fixed at start from the validated config.
#[derive(Debug)]
pub struct Policy {
    pub public_origin: Origin,
    pub trusted: TrustedOrigins,
    pub timeouts: Timeouts,
    pub max_value_bytes: usize,
    pub max_values: usize,
    /// Whether partner pages may hold a `PageKey` where the browser keeps no broker cookie.
    pub page_keys: bool,
}

#[derive(Clone, FromRef)]
pub struct AppState {
    /// `Arc<dyn …>` rather than a generic: the backend is chosen from config at run time, and one
    /// virtual call per request is nothing next to a store round trip.
    pub store: Arc<dyn SessionStore>,
    pub clock: Arc<dyn Clock>,
    pub policy: Arc<Policy>,
    pub handoff: Arc<HandoffKeys>,
    pub assets: Arc<Assets>,
    pub metrics: Arc<Metrics>,
}
