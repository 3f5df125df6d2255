//! baton's integration tests, in one binary (one link of the crate, not one per file): each
//! module boots the real application in-process on port 0 (`helpers::spawn_app`) or starts the
//! real binary, and speaks HTTP to it.

mod api;
mod assets;
mod cli;
mod durability;
mod handoff;
mod hardening;
mod helpers;
mod identity;
mod logs;
mod metrics;
mod multinode;
mod origin;
mod page_keys;
mod process;
mod redis_ha;
mod redis_reconnect;
mod restore;
mod secrets;
mod soak;
mod store_contract;
