//! The one retry backoff of every reconnecting task (pull relays, push relays, P2PSP peers):
//! a delay that starts at `initial`, doubles per failure up to `cap`, and is spread by a
//! seeded jitter. Sans-IO: no clock, no RNG and no sleeping here; the caller passes the seed
//! and sleeps the delay.

use std::time::Duration;

/// How a delay is spread, so that many tasks failing together do not retry in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Up to a quarter more: `[d, 1.25·d]`.
    UpToQuarterMore,
    /// Between half and all of the delay: `[d/2, d)`.
    HalfToFull,
    /// Up to this much more: `[d, d + extra)`.
    UpTo(Duration),
}

/// Where a delay sequence starts and where it stops growing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    initial: Duration,
    cap: Duration,
}

/// Exponential backoff with jitter. Failures are counted; a reset starts over.
#[derive(Debug, Clone)]
pub struct Backoff {
    normal: Range,
    /// For refusals (a wrong password): retrying every second only fills the remote's log.
    refused: Range,
    jitter: Jitter,
    failures: u32,
    /// splitmix64 state.
    rng: u64,
}

/// The largest doubling step (2^16 times the initial delay; the cap is reached long before).
const MAX_EXPONENT: u32 = 16;

impl Backoff {
    /// Delays from `initial` doubling up to `cap`, spread by `jitter` drawn from `seed`.
    pub fn new(initial: Duration, cap: Duration, jitter: Jitter, seed: u64) -> Self {
        let normal = Range { initial, cap };
        Backoff {
            normal,
            refused: normal,
            jitter,
            failures: 0,
            rng: seed,
        }
    }

    /// Use longer delays after a refusal ([`Backoff::next_refused_delay`]).
    pub fn with_refused(mut self, initial: Duration, cap: Duration) -> Self {
        self.refused = Range { initial, cap };
        self
    }

    /// Count a failure and return how long to wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        self.next(self.normal)
    }

    /// Count a refusal (401/403) and return the longer wait for it. Refusals and other
    /// failures share one count.
    pub fn next_refused_delay(&mut self) -> Duration {
        self.next(self.refused)
    }

    /// Start over at the initial delay (the last attempt went well).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures counted since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// initial·2^(n-1) for the n-th failure, capped, then jittered.
    fn next(&mut self, range: Range) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let exp = (self.failures - 1).min(MAX_EXPONENT);
        let nominal = range.initial.saturating_mul(1u32 << exp).min(range.cap);
        let r = self.random();
        match self.jitter {
            Jitter::UpToQuarterMore => {
                let quarter = nominal.as_millis() as u64 / 4;
                nominal.saturating_add(Duration::from_millis(r % (quarter + 1)))
            }
            Jitter::HalfToFull => {
                let frac = (r >> 11) as f64 / (1u64 << 53) as f64;
                Duration::try_from_secs_f64(nominal.as_secs_f64() * (0.5 + 0.5 * frac))
                    .map_or(nominal, |d| d.min(nominal))
            }
            Jitter::UpTo(extra) => match extra.as_millis() as u64 {
                0 => nominal,
                ms => nominal.saturating_add(Duration::from_millis(r % ms)),
            },
        }
    }

    /// splitmix64: plenty for jitter, and no rand crate.
    fn random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn doubles_to_the_cap_with_up_to_a_quarter_more() {
        let mut b = Backoff::new(S(1), S(8), Jitter::UpToQuarterMore, 42);
        let d: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
        for (got, base) in d.iter().zip([1u64, 2, 4, 8, 8, 8]) {
            let base = S(base);
            assert!(
                *got >= base && *got <= base + base / 4,
                "{got:?} vs {base:?}"
            );
        }
        b.reset();
        assert!(b.next_delay() < Duration::from_millis(1251));
        // Different seeds spread out.
        let spread: std::collections::HashSet<_> = (0..20)
            .map(|s| Backoff::new(S(4), S(4), Jitter::UpToQuarterMore, s).next_delay())
            .collect();
        assert!(spread.len() > 5);
    }

    #[test]
    fn half_to_full_grows_caps_and_refusals_wait_longer() {
        let (base, max) = (S(1), S(60));
        let (refused_base, refused_max) = (S(5), S(300));
        let mut b =
            Backoff::new(base, max, Jitter::HalfToFull, 42).with_refused(refused_base, refused_max);
        let d: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        for (i, d) in d.iter().enumerate() {
            let nominal = base.saturating_mul(1 << i.min(16)).min(max);
            assert!(
                *d >= nominal / 2 && *d < nominal,
                "{i}: {d:?} vs {nominal:?}"
            );
        }
        assert_eq!(b.failures(), 10);
        b.reset();
        let first = b.next_refused_delay();
        assert!(
            first >= refused_base / 2 && first < refused_base,
            "{first:?}"
        );
        for _ in 0..20 {
            assert!(b.next_refused_delay() < refused_max);
        }
        // Different seeds give different jitter.
        let a = Backoff::new(base, max, Jitter::HalfToFull, 1).next_delay();
        let c = Backoff::new(base, max, Jitter::HalfToFull, 99).next_delay();
        assert_ne!(a, c);
    }

    #[test]
    fn fixed_extra_jitter_stays_under_its_bound() {
        let extra = Duration::from_millis(500);
        let mut b = Backoff::new(S(1), S(30), Jitter::UpTo(extra), 7);
        for base in [1u64, 2, 4, 8, 16, 30, 30] {
            let d = b.next_delay();
            assert!(d >= S(base) && d < S(base) + extra, "{d:?} vs {base}");
        }
        b.reset();
        assert!(b.next_delay() < S(1) + extra);
        let mut none = Backoff::new(S(1), S(2), Jitter::UpTo(Duration::ZERO), 7);
        assert_eq!(none.next_delay(), S(1));
    }

    #[test]
    fn many_failures_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_millis(500), S(4), Jitter::UpToQuarterMore, 3);
        for _ in 0..100 {
            assert!(b.next_delay() <= S(5));
        }
        let mut huge = Backoff::new(Duration::MAX / 2, Duration::MAX, Jitter::HalfToFull, 3);
        for _ in 0..40 {
            huge.next_delay();
        }
    }
}
