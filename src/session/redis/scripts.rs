//! The Lua scripts of the Redis store, one file each under `scripts/` (read there, with their
//! argument lists, as Lua), compiled into the binary: every store call is one script, which Redis
//! runs atomically (the module doc of `session::redis` says why). Each script is the shared
//! `prelude.lua` (the key layout and the liveness rule) followed by its own body, joined at build
//! time, so the text sent to Redis and its SHA-1 are fixed for a build.

use redis::Script;

/// A script: its text (sent with `EVAL` when the node does not know it yet: a new primary after
/// a failover has an empty script cache) and its SHA-1 (`EVALSHA`).
pub(super) struct Lua {
    pub(super) code: &'static str,
    pub(super) hash: String,
}

impl Lua {
    fn new(code: &'static str) -> Self {
        let hash = Script::new(code).get_hash().to_owned();
        Self { code, hash }
    }
}

/// `prelude.lua` followed by `scripts/<name>.lua`, as one string literal.
macro_rules! script {
    ($name:literal) => {
        Lua::new(concat!(
            include_str!("scripts/prelude.lua"),
            include_str!(concat!("scripts/", $name, ".lua"))
        ))
    };
}

pub(super) struct Scripts {
    pub(super) create: Lua,
    pub(super) load: Lua,
    pub(super) set_value: Lua,
    pub(super) load_and_set: Lua,
    pub(super) remove_value: Lua,
    pub(super) end: Lua,
    pub(super) bind: Lua,
    pub(super) adopt: Lua,
    pub(super) absorb: Lua,
    pub(super) alive: Lua,
    pub(super) put_handoff: Lua,
    pub(super) take_handoff: Lua,
    pub(super) reap: Lua,
    pub(super) identity_get: Lua,
    pub(super) identity_set: Lua,
    pub(super) identity_drop: Lua,
    pub(super) load_uid: Lua,
    pub(super) link_target: Lua,
    pub(super) detach: Lua,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            create: script!("create"),
            load: script!("load"),
            set_value: script!("set_value"),
            load_and_set: script!("load_and_set"),
            remove_value: script!("remove_value"),
            end: script!("end"),
            bind: script!("bind"),
            adopt: script!("adopt"),
            absorb: script!("absorb"),
            alive: script!("alive"),
            put_handoff: script!("put_handoff"),
            take_handoff: script!("take_handoff"),
            reap: script!("reap"),
            identity_get: script!("identity_get"),
            identity_set: script!("identity_set"),
            identity_drop: script!("identity_drop"),
            load_uid: script!("load_uid"),
            link_target: script!("link_target"),
            detach: script!("detach"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each script is the prelude then its own body: a body that lost the prelude would call
    /// helpers Redis does not know.
    #[test]
    fn every_script_starts_with_the_prelude() {
        let prelude = include_str!("scripts/prelude.lua");
        let scripts = Scripts::new();
        for lua in [&scripts.create, &scripts.adopt, &scripts.reap] {
            assert!(lua.code.starts_with(prelude));
            assert!(lua.code.len() > prelude.len());
            assert_eq!(lua.hash.len(), 40, "a SHA-1 in hex");
        }
    }
}
