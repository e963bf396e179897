//! Bounded log output for warnings that can repeat without end (accept failing at fd
//! exhaustion, refusals in a flood): the first is logged, then at most one per interval,
//! carrying how many were suppressed in between. It only decides; the caller logs.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync::lock;

/// One repeated warning's budget: shareable (`&self`), so it can be a `static`.
#[derive(Debug)]
pub struct LogThrottle {
    interval: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last: Option<Instant>,
    suppressed: u64,
}

/// What the caller should append to a line it logs: `""`, or
/// `" (N similar messages suppressed)"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suppressed(pub u64);

impl std::fmt::Display for Suppressed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            0 => Ok(()),
            1 => f.write_str(" (1 similar message suppressed)"),
            n => write!(f, " ({n} similar messages suppressed)"),
        }
    }
}

impl LogThrottle {
    pub const fn new(interval: Duration) -> Self {
        LogThrottle {
            interval,
            state: Mutex::new(State {
                last: None,
                suppressed: 0,
            }),
        }
    }

    /// `Some` when this occurrence should be logged (with the count of those suppressed
    /// since the last one logged), `None` when it is to be counted and dropped.
    pub fn allow(&self) -> Option<Suppressed> {
        self.allow_at(Instant::now())
    }

    /// When the repetition is over (the operation worked again): the count suppressed
    /// since the last line logged, if any, for one closing line.
    pub fn take_suppressed(&self) -> Option<Suppressed> {
        let mut s = lock(&self.state);
        (s.suppressed > 0).then(|| Suppressed(std::mem::take(&mut s.suppressed)))
    }

    fn allow_at(&self, now: Instant) -> Option<Suppressed> {
        let mut s = lock(&self.state);
        match s.last {
            Some(last) if now.saturating_duration_since(last) < self.interval => {
                s.suppressed += 1;
                None
            }
            _ => {
                s.last = Some(now);
                Some(Suppressed(std::mem::take(&mut s.suppressed)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_then_one_per_interval_with_the_count() {
        let t = LogThrottle::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(t.allow_at(start), Some(Suppressed(0)));
        for ms in (50..10_000).step_by(50) {
            assert_eq!(t.allow_at(start + Duration::from_millis(ms)), None);
        }
        let next = t.allow_at(start + Duration::from_secs(10));
        assert_eq!(next, Some(Suppressed(199)));
        assert_eq!(
            next.unwrap().to_string(),
            " (199 similar messages suppressed)"
        );
        assert_eq!(Suppressed(0).to_string(), "");
        assert_eq!(t.take_suppressed(), None);
        assert_eq!(t.allow_at(start + Duration::from_secs(11)), None);
        assert_eq!(t.take_suppressed(), Some(Suppressed(1)));
        assert_eq!(t.take_suppressed(), None);
    }
}
