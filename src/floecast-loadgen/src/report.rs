//! Snapshots of the run and the final report (text or one flat JSON object).
//!
//! Three snapshots bound the two phases: `before` (sources up, no listeners), `hold_start`
//! (every listener streaming or failed) and `hold_end` (after `--duration`). Delivered
//! bitrates and the server's CPU use are taken over the hold only, so the initial burst of
//! queued audio a listener gets on connect does not inflate them.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::listener::{self, FAIL_NAMES, Shared};
use crate::procfs::{self, Sample};
use crate::source::{Pace, SourceStats};

/// The state of everything at one instant.
pub struct Snapshot {
    at: Instant,
    server: Option<Sample>,
    generator: Option<Sample>,
    states: Vec<u8>,
    bytes: Vec<u64>,
    source_bytes: u64,
}

impl Snapshot {
    pub fn take(pid: Option<u32>, shared: &Shared, sources: &[Arc<SourceStats>]) -> Self {
        Snapshot {
            at: Instant::now(),
            server: pid.and_then(|p| procfs::sample(Some(p))),
            generator: procfs::sample(None),
            states: shared
                .state
                .iter()
                .map(|s| s.load(Ordering::Relaxed))
                .collect(),
            bytes: shared
                .bytes
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            source_bytes: sources
                .iter()
                .map(|s| s.bytes.load(Ordering::Relaxed))
                .sum(),
        }
    }

    fn count(&self, state: u8) -> usize {
        self.states.iter().filter(|&&s| s == state).count()
    }
}

/// The parameters of the run, echoed in the report.
pub struct RunInfo {
    pub label: String,
    pub server: String,
    pub mounts: usize,
    pub listeners: usize,
    pub connect_rate: f64,
    pub pace: Pace,
    pub bitrate_kbps: u32,
    pub sources: usize,
    pub sources_failed: usize,
}

/// A report value: a number or absent (JSON `null`).
enum Val {
    Str(String),
    Int(u64),
    Num(Option<f64>),
}

/// The final report: ordered `(key, value)` pairs.
pub struct Report {
    fields: Vec<(&'static str, Val)>,
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

impl Report {
    pub fn build(
        info: RunInfo,
        idle: Option<Sample>,
        shared: &Shared,
        before: &Snapshot,
        start: &Snapshot,
        end: &Snapshot,
    ) -> Report {
        let hold = end.at.duration_since(start.at).as_secs_f64();
        let connect_phase = start.at.duration_since(before.at).as_secs_f64();
        let held_start = start.count(listener::STREAMING);
        let held_end = end.count(listener::STREAMING);
        let failed = end.count(listener::FAILED);
        let dropped_total = end.count(listener::DROPPED);
        let dropped_before = start.count(listener::DROPPED);
        let connected = held_end + dropped_total;
        let unresolved = end.count(listener::STARTING) + end.count(listener::PENDING);

        let ttfb = sorted(
            shared
                .ttfb_us
                .iter()
                .map(|t| t.load(Ordering::Relaxed))
                .filter(|&t| t > 0)
                .map(|t| t as f64 / 1000.0)
                .collect(),
        );
        // Delivered bitrate over the hold, for listeners streaming when the hold began.
        let kbps = sorted(
            (0..start.states.len())
                .filter(|&i| start.states[i] == listener::STREAMING)
                .map(|i| (end.bytes[i] - start.bytes[i]) as f64 * 8.0 / hold / 1000.0)
                .collect(),
        );
        let delivered: u64 = (0..end.bytes.len())
            .map(|i| end.bytes[i] - start.bytes[i])
            .sum();
        let per_sec = |b: u64| (hold > 0.0).then(|| b as f64 / hold);

        let cpu_connect = procfs::cpu_pct(before.server, start.server);
        let cpu_hold = procfs::cpu_pct(start.server, end.server);
        let per_1000 =
            |cpu: Option<f64>, n: usize| cpu.filter(|_| n > 0).map(|c| c / n as f64 * 1000.0);
        let rss = |s: Option<Sample>| s.map(|s| s.rss_kib as f64);
        let rss_delta = match (before.server, end.server) {
            (Some(b), Some(e)) if held_end > 0 => {
                Some((e.rss_kib as f64 - b.rss_kib as f64) / held_end as f64)
            }
            _ => None,
        };
        let rss_abs = end
            .server
            .filter(|_| held_end > 0)
            .map(|e| e.rss_kib as f64 / held_end as f64);

        let mut f: Vec<(&'static str, Val)> = vec![
            ("label", Val::Str(info.label)),
            ("server", Val::Str(info.server)),
            ("pace", Val::Str(format!("{:?}", info.pace).to_lowercase())),
            ("bitrate_kbps", Val::Int(info.bitrate_kbps.into())),
            ("mounts", Val::Int(info.mounts as u64)),
            ("sources", Val::Int(info.sources as u64)),
            ("sources_failed", Val::Int(info.sources_failed as u64)),
            ("listeners", Val::Int(info.listeners as u64)),
            ("connect_rate", Val::Num(Some(info.connect_rate))),
            ("connect_phase_s", Val::Num(Some(connect_phase))),
            ("hold_s", Val::Num(Some(hold))),
            ("connected", Val::Int(connected as u64)),
            ("failed", Val::Int(failed as u64)),
            ("unresolved", Val::Int(unresolved as u64)),
        ];
        for (k, key) in FAIL_NAMES.iter().enumerate() {
            f.push((key, Val::Int(shared.fails[k].load(Ordering::Relaxed))));
        }
        f.extend([
            ("dropped", Val::Int(dropped_total as u64)),
            ("dropped_before_hold", Val::Int(dropped_before as u64)),
            (
                "dropped_during_hold",
                Val::Int((dropped_total - dropped_before) as u64),
            ),
            ("held_start", Val::Int(held_start as u64)),
            ("held_end", Val::Int(held_end as u64)),
            ("ttfb_ms_p50", Val::Num(pct(&ttfb, 50.0))),
            ("ttfb_ms_p90", Val::Num(pct(&ttfb, 90.0))),
            ("ttfb_ms_p99", Val::Num(pct(&ttfb, 99.0))),
            ("ttfb_ms_max", Val::Num(ttfb.last().copied())),
            ("kbps_min", Val::Num(kbps.first().copied())),
            ("kbps_p1", Val::Num(pct(&kbps, 1.0))),
            ("kbps_p50", Val::Num(pct(&kbps, 50.0))),
            (
                "aggregate_mbps",
                Val::Num(per_sec(delivered).map(|b| b * 8.0 / 1e6)),
            ),
            (
                "source_kbps",
                Val::Num(per_sec(end.source_bytes - start.source_bytes).map(|b| b * 8.0 / 1e3)),
            ),
            ("server_cpu_pct_connect", Val::Num(cpu_connect)),
            ("server_cpu_pct_hold", Val::Num(cpu_hold)),
            (
                "server_cpu_pct_per_1000",
                Val::Num(per_1000(cpu_hold, held_start)),
            ),
            ("server_rss_kib_idle", Val::Num(rss(idle))),
            ("server_rss_kib_before", Val::Num(rss(before.server))),
            ("server_rss_kib_hold_start", Val::Num(rss(start.server))),
            ("server_rss_kib_end", Val::Num(rss(end.server))),
            ("rss_kib_per_listener_delta", Val::Num(rss_delta)),
            ("rss_kib_per_listener_abs", Val::Num(rss_abs)),
            (
                "gen_cpu_pct_connect",
                Val::Num(procfs::cpu_pct(before.generator, start.generator)),
            ),
            (
                "gen_cpu_pct_hold",
                Val::Num(procfs::cpu_pct(start.generator, end.generator)),
            ),
            ("gen_rss_kib", Val::Num(rss(end.generator))),
        ]);
        Report { fields: f }
    }

    /// The report of a `--connections` run.
    #[allow(clippy::too_many_arguments)]
    pub fn connections(
        label: String,
        tls: bool,
        workers: usize,
        secs: f64,
        completed: u64,
        failed: u64,
        server_cpu_pct: Option<f64>,
        gen_cpu_pct: Option<f64>,
    ) -> Report {
        let per_s = (secs > 0.0).then(|| completed as f64 / secs);
        // CPU milliseconds the server spent per completed connection.
        let cpu_ms = server_cpu_pct
            .zip(per_s)
            .and_then(|(cpu, rate)| (rate > 0.0).then(|| cpu / 100.0 / rate * 1000.0));
        Report {
            fields: vec![
                ("label", Val::Str(label)),
                ("mode", Val::Str("connections".into())),
                ("tls", Val::Int(tls.into())),
                ("concurrency", Val::Int(workers as u64)),
                ("hold_s", Val::Num(Some(secs))),
                ("completed", Val::Int(completed)),
                ("failed", Val::Int(failed)),
                ("connections_per_s", Val::Num(per_s)),
                ("server_cpu_pct_hold", Val::Num(server_cpu_pct)),
                ("server_cpu_ms_per_connection", Val::Num(cpu_ms)),
                ("gen_cpu_pct_hold", Val::Num(gen_cpu_pct)),
            ],
        }
    }

    /// One flat JSON object (keys are fixed identifiers; strings are escaped).
    pub fn to_json(&self) -> String {
        let mut out = String::from("{");
        for (k, (key, v)) in self.fields.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            let _ = write!(out, "\"{key}\":");
            match v {
                Val::Str(s) => {
                    out.push('"');
                    for c in s.chars() {
                        match c {
                            '"' => out.push_str("\\\""),
                            '\\' => out.push_str("\\\\"),
                            c if (c as u32) < 0x20 => {
                                let _ = write!(out, "\\u{:04x}", c as u32);
                            }
                            c => out.push(c),
                        }
                    }
                    out.push('"');
                }
                Val::Int(n) => {
                    let _ = write!(out, "{n}");
                }
                Val::Num(Some(x)) if x.is_finite() => {
                    let _ = write!(out, "{}", (x * 1000.0).round() / 1000.0);
                }
                Val::Num(_) => out.push_str("null"),
            }
        }
        out.push('}');
        out
    }

    /// Aligned `key  value` lines.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (key, v) in &self.fields {
            let value = match v {
                Val::Str(s) => s.clone(),
                Val::Int(n) => n.to_string(),
                Val::Num(Some(x)) => format!("{x:.2}"),
                Val::Num(None) => "-".into(),
            };
            let _ = writeln!(out, "{key:<28} {value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v = sorted((1..=100).map(f64::from).rev().collect());
        assert_eq!(pct(&v, 50.0), Some(50.0));
        assert_eq!(pct(&v, 99.0), Some(99.0));
        assert_eq!(pct(&v, 1.0), Some(1.0));
        assert_eq!(pct(&[], 50.0), None);
        assert_eq!(pct(&[7.0], 99.0), Some(7.0));
    }
}
