//! What handlers may need, passed in state so tests can swap any part (store, clock, keys). Each
//! part is its own `FromRef` piece: a handler asks for `State<Arc<Config>>` or
//! `State<Arc<Metrics>>`, not for all of it.
//!
//! axum clones the state for every request it hands to a handler, so the parts sit behind one
//! `Arc`: a clone is one reference count, not one per part.

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::FromRef;

use crate::assets::Assets;
use crate::clock::Clock;
use crate::config::Config;
use crate::handoff::HandoffKeys;
use crate::identity::IdentityKeys;
use crate::metrics::Metrics;
use crate::session::SessionStore;

#[derive(Clone)]
pub struct AppState(Arc<Parts>);

pub struct Parts {
    /// `Arc<dyn …>` rather than a generic: the backend is chosen from config at run time, and one
    /// virtual call per request is nothing next to a store round trip.
    pub store: Arc<dyn SessionStore>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<Config>,
    pub handoff: Arc<HandoffKeys>,
    /// `None` when `[identity]` has no keys: identity binding is off (`identity_disabled`).
    pub identity: Option<Arc<IdentityKeys>>,
    pub assets: Arc<Assets>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn new(parts: Parts) -> Self {
        Self(Arc::new(parts))
    }
}

impl Deref for AppState {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

macro_rules! part {
    ($field:ident: $ty:ty) => {
        impl FromRef<AppState> for $ty {
            fn from_ref(state: &AppState) -> Self {
                Arc::clone(&state.0.$field)
            }
        }
    };
}

part!(store: Arc<dyn SessionStore>);
part!(clock: Arc<dyn Clock>);
part!(config: Arc<Config>);
part!(handoff: Arc<HandoffKeys>);
part!(assets: Arc<Assets>);
part!(metrics: Arc<Metrics>);

impl FromRef<AppState> for Option<Arc<IdentityKeys>> {
    fn from_ref(state: &AppState) -> Self {
        state.0.identity.clone()
    }
}
