//! Seeds that differ between runs and processes: team cookies, peer ids, backoff jitter.
//! Not cryptographic; they only have to make stray and spoofed datagrams unlikely to match
//! and keep many clients from retrying in lockstep.

use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh 64-bit value: std's per-process random hash keys over the time and the pid.
pub fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}
