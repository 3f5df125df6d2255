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

/// A log line written at most once a second, however often its event happens: a flood of
/// refusals (measured: one 8 s burst from one address wrote 277,737 lines) must not fill the
/// disk. The counts live in `/metrics`; the line says how many it left out.
pub struct Throttle {
    /// Milliseconds since the Unix epoch of the last line written.
    last: std::sync::atomic::AtomicU64,
    suppressed: std::sync::atomic::AtomicU64,
}

impl Throttle {
    const EVERY_MS: u64 = 1000;

    pub const fn new() -> Self {
        Self {
            last: std::sync::atomic::AtomicU64::new(0),
            suppressed: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// `Some(lines left out since the last one)` when a line may be written now, else `None`.
    pub fn allow(&self) -> Option<u64> {
        use std::sync::atomic::Ordering;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let last = self.last.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= Self::EVERY_MS
            && self
                .last
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::AcqRel));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_lets_one_line_through_and_counts_the_rest() {
        let t = Throttle::new();
        assert_eq!(t.allow(), Some(0));
        for _ in 0..99 {
            assert_eq!(t.allow(), None);
        }
        t.last.store(0, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(t.allow(), Some(99));
    }
}
