//! baton: a self-hosted broker that carries a web session (a chat, a cart) across the sites a
//! company owns, through a hidden iframe, partitioned cookies and single-use handoff tokens.
//!
//! Where to look: `origin` (who is trusted), `cookie` (the one cookie builder), `session` (the
//! store contract and backends), `handoff` (cross-site tokens), `link`
//! (which origin a link's token may go to), `identity` (partners' signed
//! assertions of who the customer is), `routes` (HTTP), `config`
//! (TOML + env, validated once), `startup` (`Application::build`).

pub mod assets;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cookie;
pub mod error;
pub mod handoff;
pub mod identity;
pub mod link;
pub mod metrics;
pub mod origin;
pub mod random;
pub mod ratelimit;
pub mod routes;
pub mod server;
pub mod session;
pub mod startup;
pub mod state;
pub mod telemetry;

pub use startup::Application;
