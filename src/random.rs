//! Randomness from the OS, the one source of every secret and name the broker mints: session ids
//! and page keys (`session`), uids and jtis, development and generated keys (`handoff`, `cli`).
//! A module of its own because those owners all draw from it and none of them owns the others.

use std::fmt::Write;

/// `N` bytes from the OS generator.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS generator failing means the machine cannot make secrets at all: refuse to go on
    // rather than hand out guessable ids.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut buf).expect("the OS random number generator failed");
    buf
}

/// 128 random bits as 32 lowercase hex characters: a name nobody can guess or collide with.
pub fn hex_128() -> String {
    hex(&bytes::<16>())
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
