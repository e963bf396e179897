//! One run's report: its config, metrics and wall time, as text or JSON.
//!
//! Formatting only; the JSON goes through serde, with floats written as Rust's `Display`
//! writes them (`20`, not `20.0`), the format `floecast simulate --json` has always printed.

use std::io;
use std::time::Duration;

use serde::Serialize;

use super::{Metrics, SimConfig};

/// One run: its config, metrics and how long it took to simulate.
#[derive(Debug, Clone)]
pub struct Report {
    pub config: SimConfig,
    pub metrics: Metrics,
    pub wall: Duration,
}

/// The JSON object of a [`Report`]: the team size, the config in the units the CLI takes,
/// every metric, then the wall time.
#[derive(Serialize)]
struct Json<'a> {
    peers: usize,
    buffer: u32,
    loss: f64,
    latency_ms: f64,
    jitter_ms: f64,
    chunk_size: usize,
    rate_bps: u64,
    duration_s: f64,
    seed: u64,
    #[serde(flatten)]
    metrics: &'a Metrics,
    wall_ms: f64,
}

/// serde_json's compact output with floats in `Display` form (non-finite ones are `null`,
/// as serde_json writes them anyway).
struct DisplayFloats;

impl serde_json::ser::Formatter for DisplayFloats {
    fn write_f64<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        write!(w, "{value}")
    }
}

impl Report {
    /// One JSON object on one line.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let c = &self.config;
        let json = Json {
            peers: self.metrics.peers,
            buffer: c.effective_buffer(),
            loss: c.loss,
            latency_ms: c.latency.as_secs_f64() * 1e3,
            jitter_ms: c.jitter.as_secs_f64() * 1e3,
            chunk_size: c.chunk_size,
            rate_bps: c.rate_bps,
            duration_s: c.duration.as_secs_f64(),
            seed: c.seed,
            metrics: &self.metrics,
            wall_ms: self.wall.as_secs_f64() * 1e3,
        };
        let mut out = Vec::new();
        json.serialize(&mut serde_json::Serializer::with_formatter(
            &mut out,
            DisplayFloats,
        ))?;
        // serde_json writes UTF-8 only.
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// A dozen lines for people.
    pub fn to_text(&self) -> String {
        let c = &self.config;
        let m = &self.metrics;
        let mut s = String::new();
        s += &format!(
            "P2PSP simulation: {} peers ({} monitor), B={}, {} B chunks at {} kbit/s, loss {:.2}%, \
             latency {:.0}+{:.0} ms, {:.0} s, seed {}\n",
            m.peers,
            c.monitors,
            c.effective_buffer(),
            c.chunk_size,
            c.rate_bps / 1000,
            c.loss * 100.0,
            c.latency.as_secs_f64() * 1e3,
            c.jitter.as_secs_f64() * 1e3,
            c.duration.as_secs_f64(),
            c.seed
        );
        s += &format!(
            "  joined {} (refused {}), measured {} over {} chunks ({:.1} s)\n",
            m.joined, m.joins_refused, m.measured, m.window_chunks, m.window_secs
        );
        s += &format!(
            "  chunk loss ratio   {:.4}%  (skipped {:.4}%)\n",
            m.loss_ratio * 100.0,
            m.skip_ratio * 100.0
        );
        s += &format!(
            "  playout lag        p50 {:.1} s, max {:.1} s (still to play at the end {:.4}%)\n",
            m.playout_lag_p50_s,
            m.playout_lag_max_s,
            m.pending_ratio * 100.0
        );
        s += &format!(
            "  playout stalls     longest {:.1} s, {} peers stood still over {} s ({} in the second half)\n",
            m.stall_max_s,
            m.stalled,
            crate::metrics::STALL_SECS,
            m.stalled_late
        );
        s += &format!(
            "  start-up           p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms, never started {}\n",
            m.startup_p50_ms, m.startup_p99_ms, m.startup_max_ms, m.never_started
        );
        s += &format!(
            "  splitter egress    {:.3} × stream (join replies {:.3} × stream)\n",
            m.splitter_egress_ratio, m.join_bytes_ratio
        );
        s += &format!(
            "  peer upload        mean {:.3}, max {:.3} × stream (chunks {:.3})\n",
            m.upload_mean, m.upload_max, m.upload_chunks_mean
        );
        if let Some(cont) = m.continuity {
            s += &format!(
                "  churn              {} left; {} survivors, continuity {:.4}%\n",
                m.churned,
                m.survivors,
                cont * 100.0
            );
        }
        s += &format!(
            "  duplicates         {:.4} per delivered chunk; order errors {}, corrupt {}, \
             splitter wrongly given up {}\n",
            m.duplicate_ratio, m.order_errors, m.corrupt, m.splitter_gone
        );
        s += &format!(
            "  recovery           LRS resends {}, complaints {}, requests {}, prunes {}\n",
            m.lrs_resends, m.complaints, m.requests, m.prunes
        );
        s += &format!(
            "  splitter removals  goodbye {}, timeout {}, losses {}\n",
            m.left_goodbye, m.expelled_timeout, m.expelled_losses
        );
        let a = self.config.attack;
        if a.polluters > 0 || a.puppet_monitors || a.spoofer {
            s += &format!(
                "  attacks            forged chunks {}, false complaints {}, spoofed {}; \
                 rejected {}, unauthenticated {}; polluters expelled {}, honest expelled {}, \
                 corrupt bytes delivered {}\n",
                m.forged_chunks,
                m.false_complaints,
                m.spoofed,
                m.rejected,
                m.unauthenticated,
                m.polluters_expelled,
                m.honest_expelled,
                m.corrupt_bytes
            );
        }
        if m.natted + m.symmetric > 0 {
            s += &format!(
                "  NATs               {} peers behind filtering NATs, {} behind symmetric ones; \
                 {} datagrams dropped by them; {} relayed by the splitter\n",
                m.natted, m.symmetric, m.nat_dropped, m.relayed
            );
        }
        s += &format!(
            "  network            {} datagrams, {} lost, {} queue drops, {} undeliverable\n",
            m.datagrams, m.net_lost, m.queue_drops, m.undeliverable
        );
        s += &format!(
            "  simulator          {} events, {} timeouts, {} timer retries, wall {:.2} s\n",
            m.events,
            m.timeouts,
            m.timer_retries,
            self.wall.as_secs_f64()
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            config: SimConfig {
                peers: 5,
                ..SimConfig::default()
            },
            metrics: Metrics {
                peers: 5,
                joined: 5,
                window_secs: 6.125,
                startup_p50_ms: f64::NAN,
                upload_mean: 1.0937906901041667,
                ..Metrics::default()
            },
            wall: Duration::from_micros(74_024),
        }
    }

    #[test]
    fn json_keeps_its_keys_order_and_number_format() {
        let j = report().to_json().expect("json");
        assert_eq!(
            j,
            "{\"peers\":5,\"buffer\":256,\"loss\":0,\"latency_ms\":20,\"jitter_ms\":5,\
             \"chunk_size\":1024,\"rate_bps\":128000,\"duration_s\":60,\"seed\":1,\
             \"joined\":5,\"joins_refused\":0,\"measured\":0,\"window_chunks\":0,\
             \"window_s\":6.125,\"loss_ratio\":0,\"skip_ratio\":0,\"pending_ratio\":0,\"playout_lag_p50_s\":0,\"playout_lag_max_s\":0,\"stall_max_s\":0,\"stalled\":0,\"stalled_late\":0,\"startup_p50_ms\":null,\
             \"startup_p99_ms\":0,\"startup_max_ms\":0,\"never_started\":0,\
             \"splitter_egress_ratio\":0,\"join_bytes_ratio\":0,\
             \"upload_mean\":1.0937906901041667,\"upload_max\":0,\"upload_chunks_mean\":0,\
             \"churned\":0,\"survivors\":0,\"continuity\":null,\"duplicate_ratio\":0,\
             \"order_errors\":0,\"corrupt\":0,\"splitter_gone\":0,\"lrs_resends\":0,\
             \"complaints\":0,\"requests\":0,\"prunes\":0,\"left_goodbye\":0,\
             \"expelled_timeout\":0,\"expelled_losses\":0,\"datagrams\":0,\"net_lost\":0,\
             \"queue_drops\":0,\"undeliverable\":0,\"events\":0,\"timeouts\":0,\
             \"timer_retries\":0,\"forged_chunks\":0,\"false_complaints\":0,\"spoofed\":0,\
             \"rejected\":0,\"unauthenticated\":0,\"polluters_expelled\":0,\
             \"honest_expelled\":0,\"corrupt_bytes\":0,\"natted\":0,\"symmetric\":0,\
             \"nat_dropped\":0,\"relayed\":0,\"wall_ms\":74.024}"
        );
        let mut r = report();
        r.metrics.continuity = Some(1.0);
        assert!(r.to_json().expect("json").contains("\"continuity\":1,"));
    }

    #[test]
    fn text_names_every_line() {
        let t = report().to_text();
        assert!(
            t.starts_with("P2PSP simulation: 5 peers (1 monitor), B=256"),
            "{t}"
        );
        assert!(
            t.contains("chunk loss ratio") && t.contains("wall 0.07 s"),
            "{t}"
        );
        // The churn line only when there was churn.
        assert!(!t.contains("churn "), "{t}");
    }
}
