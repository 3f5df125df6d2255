//! Logging setup. Level from `BATON_LOG` (e.g. `info`, `baton=debug`), default `info`.
//! Nothing in baton logs a session id or a token: ids are redacted in `Debug`, and handlers log
//! origins and reasons only.

pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BATON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}
