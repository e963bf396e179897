//! Sampling a process's CPU time and resident memory from `/proc`.
//!
//! CPU time is `utime + stime` from `/proc/PID/stat` (all threads), in clock ticks of
//! `USER_HZ`, which is 100 on every Linux architecture floecast targets. RSS is `VmRSS` from
//! `/proc/PID/status`, in KiB.

use std::time::Instant;

/// Clock ticks per second of the `/proc/PID/stat` time fields (Linux `USER_HZ`).
const USER_HZ: f64 = 100.0;

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at: Instant,
    /// User + system CPU seconds so far.
    pub cpu_secs: f64,
    /// Resident set size in KiB.
    pub rss_kib: u64,
}

/// Reads `/proc/<pid>/…`, or `/proc/self/…` when `pid` is `None`.
pub fn sample(pid: Option<u32>) -> Option<Sample> {
    let dir = match pid {
        Some(p) => format!("/proc/{p}"),
        None => "/proc/self".to_string(),
    };
    let at = Instant::now();
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")" the fields are numbered from 3 (state); utime is field 14, stime field 15.
    let utime: f64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: f64 = fields.get(15 - 3)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some(Sample {
        at,
        cpu_secs: (utime + stime) / USER_HZ,
        rss_kib,
    })
}

/// CPU use between two samples as a percentage of one core.
pub fn cpu_pct(a: Option<Sample>, b: Option<Sample>) -> Option<f64> {
    let (a, b) = (a?, b?);
    let wall = b.at.duration_since(a.at).as_secs_f64();
    (wall > 0.0).then(|| (b.cpu_secs - a.cpu_secs) / wall * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_self() {
        let s = sample(None).expect("/proc/self readable");
        assert!(s.rss_kib > 0);
        assert!(s.cpu_secs >= 0.0);
    }
}
