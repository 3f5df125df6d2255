//! What handlers may need, passed in state so tests can swap any part (store, clock, keys). Each
//! field is its own `FromRef` piece: a handler asks for `State<Arc<Config>>` or
//! `State<Arc<Metrics>>`, not for all of it.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::assets::Assets;
use crate::clock::Clock;
use crate::config::Config;
use crate::handoff::HandoffKeys;
use crate::metrics::Metrics;
use crate::session::SessionStore;

#[derive(Clone, FromRef)]
pub struct AppState {
    /// `Arc<dyn …>` rather than a generic: the backend is chosen from config at run time, and one
    /// virtual call per request is nothing next to a store round trip.
    pub store: Arc<dyn SessionStore>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<Config>,
    pub handoff: Arc<HandoffKeys>,
    pub assets: Arc<Assets>,
    pub metrics: Arc<Metrics>,
}
