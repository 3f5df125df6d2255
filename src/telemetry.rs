//! Logging: one `tracing` subscriber for the whole process, set up before the config is read so
//! that start-up failures are logged like everything else.
//!
//! - Level: `RUST_LOG` (as every Rust service reads it), else `BATON_LOG` (older name), else
//!   `info`; e.g. `RUST_LOG=info,baton::access=off` drops the access lines.
//! - Format: `[log] format = "text" | "json"` (env `BATON_LOG__FORMAT`): JSON is one object per
//!   line with `timestamp`, `level`, `target`, `fields`; text is for people. Colour only when the
//!   output is a terminal, so files and log collectors get no escape codes.
//! - Never logged: session ids (their `Debug` is redacted), page keys, handoff tokens, cookies.
//!   Handlers log origins (sanitised by `shown`) and reasons only.

use std::io::IsTerminal;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the subscriber; a second call does nothing (tests start several applications). Lines
/// are written by a thread of their own, so a request never waits for stdout (one access line per
/// request would otherwise put a write to a pipe on every request's path); keep the returned guard
/// until the process ends, which writes out what is still queued. If the writer falls behind by
/// more than 128,000 lines, lines are dropped rather than requests slowed: the counts in
/// `/metrics` stay exact.
#[must_use = "the guard writes out queued log lines when dropped"]
pub fn init(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_env("BATON_LOG"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking(std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stdout().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(false)
            .with_current_span(false)
            .try_init(),
    };
    guard
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

/// A value from a request, fit for a log line: printable ASCII kept, anything else escaped, cut
/// at 200 bytes (a refused origin is exactly what an attacker writes).
pub fn shown(raw: &[u8]) -> String {
    const MAX: usize = 200;
    let mut out = String::with_capacity(raw.len().min(MAX) + 8);
    for &b in raw.iter().take(MAX) {
        if (0x20..0x7f).contains(&b) && b != b'\\' && b != b'"' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if raw.len() > MAX {
        out.push_str("...");
    }
    out
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

    #[test]
    fn shown_escapes_and_caps() {
        assert_eq!(shown(b"https://a.example"), "https://a.example");
        assert_eq!(shown(b"a\"b\\c\n\xff"), "a\\x22b\\x5cc\\x0a\\xff");
        let long = shown(&[b'x'; 500]);
        assert_eq!(long.len(), 203);
        assert!(long.ends_with("..."));
    }
}
