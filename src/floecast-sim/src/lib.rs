//! Deterministic discrete-event network simulator for the P2PSP backplane: one splitter and N
//! peers, the very state machines of `p2psp`, over a modelled network in virtual time.
//!
//! The core ([`config`], `engine`, `network`, [`metrics`]) is pure: no sockets, no wall
//! clock, no printing; a run depends only on its config and seed (the caller supplies the
//! `Instant` that virtual time 0 stands for). Around it, [`report`] formats one run (text,
//! JSON), [`suite`] the benchmark table (markdown), and [`cli`] is `floecast simulate`, the
//! only part that reads the clock (wall time) and prints. It depends on nothing of floecast
//! but floecast-core's `p2psp`.
//!
//! Metrics are measured over a window that starts after the last arrival plus a warm-up and
//! ends `tail` before the end of the run (so every chunk in it had time to be played or
//! skipped), over the peers present for the whole window. See [`Metrics`].

pub mod cli;
pub mod config;
mod engine;
pub mod metrics;
mod nat;
mod network;
pub mod report;
pub mod suite;

use std::time::{Duration, Instant};

pub use cli::{SimArgs, run_cli};
pub use config::{Arrivals, Churn, MAX_SIM_PEERS, SimConfig};
pub use metrics::Metrics;
pub use report::Report;

/// Why a run could not be done.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// The config asks for something the simulator cannot run.
    #[error("{0}")]
    Invalid(String),
    #[error(
        "no measurement window: the last arrival is at {last_arrival:.1} s, + warm-up \
         {warmup:.1} s, but the run ends at {duration:.1} s − tail {tail:.1} s; raise --duration"
    )]
    NoWindow {
        last_arrival: f64,
        warmup: f64,
        duration: f64,
        tail: f64,
    },
    #[error("too many chunks for one run")]
    TooManyChunks,
    #[error("event queue limit reached")]
    EventQueueFull,
    #[error("the splitter refused a chunk")]
    ChunkRefused,
}

/// Run one scenario; `epoch` is the instant virtual time 0 stands for (any will do).
pub fn simulate(cfg: &SimConfig, epoch: Instant) -> Result<Metrics, SimError> {
    engine::Sim::new(cfg.clone(), epoch)?.run()
}

/// Virtual time: a duration in nanoseconds, saturating.
fn dur_ns(d: Duration) -> u64 {
    d.as_nanos().min(u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use floecast_core::p2psp::wire::MAX_CHUNK_PAYLOAD;
    use metrics::STALL_SECS;

    fn small(peers: usize, secs: u64) -> SimConfig {
        SimConfig {
            peers,
            duration: Duration::from_secs(secs),
            ..SimConfig::default()
        }
    }

    fn run(cfg: SimConfig) -> Metrics {
        simulate(&cfg, Instant::now()).expect("run")
    }

    #[test]
    fn same_seed_same_metrics() {
        let cfg = SimConfig {
            loss: 0.01,
            churn: vec![Churn {
                at: Duration::from_secs(10),
                fraction: 0.3,
                polite: false,
            }],
            ..small(10, 20)
        };
        let a = run(cfg.clone());
        let b = run(cfg.clone());
        assert_eq!(a, b);
        assert!(a.net_lost > 0 && a.churned == 3);
        let c = run(SimConfig { seed: 2, ..cfg });
        assert_ne!(a, c, "the seed must matter");
    }

    #[test]
    fn ten_peers_no_loss_play_everything_in_order() {
        let m = run(small(10, 30));
        assert_eq!((m.joined, m.measured), (10, 10));
        assert!(m.window_chunks > 300);
        // Every measured peer delivered every window chunk, in order, each payload equal to
        // what the splitter was given (checked byte by byte at every Deliver).
        assert_eq!(m.loss_ratio, 0.0);
        assert_eq!(m.skip_ratio, 0.0);
        assert_eq!((m.order_errors, m.corrupt), (0, 0));
        // One copy of the stream plus authentication: a 28-byte trailer per datagram and a
        // signed Digest every 250 ms (about 8% at 128 kbit/s in 1 KiB chunks; BENCHMARKS.md).
        assert!(
            m.splitter_egress_ratio <= 1.10,
            "{}",
            m.splitter_egress_ratio
        );
        assert!(m.splitter_egress_ratio >= 1.0);
        // Each peer relays about (N-1)/N of the stream.
        assert!(m.upload_mean > 0.85 && m.upload_max < 1.1, "{m:?}");
        assert!(m.startup_p99_ms <= 1000.0, "{}", m.startup_p99_ms);
        assert_eq!(m.never_started, 0);
    }

    #[test]
    fn one_percent_loss_with_lrs_and_small_buffer() {
        // B=64: the monitor's complaint horizon (B/4 = 16 chunks ≈ 1 s at 15.6 chunks/s) and
        // the peers' request horizon (3B/8 = 24 chunks ≈ 1.5 s) come before skip_after (2 s).
        let m = run(SimConfig {
            loss: 0.01,
            buffer: 64,
            ..small(10, 60)
        });
        assert!(m.net_lost > 50);
        assert!(m.lrs_resends > 0 && m.requests > 0);
        // 0.2%: with paced floods (issue 12) holes wait out the floods' lateness too, but a
        // 2 s window still skips at its end, so a little recovery time is lost (measured
        // 0.03-0.15% over seeds 1-4; 0.000% before pacing). B=64 is a deliberately small
        // buffer; the default one loses nothing (the next test).
        assert!(m.loss_ratio <= 0.002, "loss ratio {}", m.loss_ratio);
        assert_eq!((m.order_errors, m.corrupt), (0, 0));
    }

    #[test]
    // Once an issue: the complaint and request horizons, counted in chunks only, lay beyond
    // skip_after at this chunk rate. Holes are now also reported by time (HoleScanner).
    fn one_percent_loss_with_lrs_default_buffer() {
        let m = run(SimConfig {
            loss: 0.01,
            ..small(10, 60)
        });
        assert!(m.loss_ratio <= 0.001, "loss ratio {}", m.loss_ratio);
    }

    #[test]
    // Once an issue: a peer dropped chunks from senders it had no room to track, so teams
    // larger than `max_neighbours` lost about half the stream. They are now buffered and
    // their requests served; routes come from Request as usual.
    fn team_larger_than_the_neighbour_cap() {
        let m = run(SimConfig {
            max_neighbours: 6,
            ..small(12, 20)
        });
        assert!(m.loss_ratio <= 0.001, "loss ratio {}", m.loss_ratio);
    }

    #[test]
    fn rounds_longer_than_the_splitter_timeout() {
        // 100 peers at 7.8 chunks/s: each gets a splitter chunk only every 12.8 s, longer
        // than the peers' 10 s splitter timeout, and the splitter sends no keepalives while it
        // streams. Flooded chunk numbers keep every peer sure the splitter is alive.
        let m = run(SimConfig {
            rate_bps: 64_000,
            ..small(100, 40)
        });
        assert_eq!(m.splitter_gone, 0);
        assert!(m.loss_ratio == 0.0, "loss ratio {}", m.loss_ratio);
        // One copy plus authentication (the Digest weighs most at 64 kbit/s).
        assert!(
            m.splitter_egress_ratio <= 1.13,
            "egress {}",
            m.splitter_egress_ratio
        );
        // Keepalives between peers fill only the gaps between rounds' chunks.
        // (Plus the authentication, as for the splitter: each peer floods the Digests it gets.)
        assert!(m.upload_mean <= 1.13, "upload {}", m.upload_mean);
    }

    #[test]
    fn abrupt_churn_survivors_keep_playing() {
        let m = run(SimConfig {
            churn: vec![Churn {
                at: Duration::from_secs(20),
                fraction: 0.3,
                polite: false,
            }],
            ..small(10, 60)
        });
        // The monitor is never churned: 30% of the 9 others, rounded.
        assert_eq!((m.churned, m.survivors), (3, 7));
        assert_eq!(m.expelled_timeout, 3);
        let c = m.continuity.expect("continuity");
        assert!(c >= 0.99, "continuity {c}");
        assert_eq!(m.order_errors, 0);
        // The dead members' chunks hold the survivors' playouts up for a while (until the
        // splitter learns they are gone), never for a stall a listener hears.
        assert!(
            m.stall_max_s > 0.5 && m.stall_max_s < STALL_SECS && m.stalled == 0,
            "{m:?}"
        );
    }

    /// Under 1% datagram loss, a playout keeps a steady delay after the splitter: what
    /// queued behind a repaired hole plays at the stream's pace. Played at once instead, each
    /// playout was back at the newest chunk after every hole, and the next late chunk stopped
    /// it again: 5–9 of these 40 peers stood still over 5 s in the second half (seeds 1–4).
    #[test]
    fn lossy_links_do_not_stop_and_go() {
        let m = run(SimConfig {
            loss: 0.01,
            ..small(40, 60)
        });
        assert!(m.loss_ratio <= 0.001, "{m:?}");
        assert!(m.stall_max_s < STALL_SECS && m.stalled == 0, "{m:?}");
    }

    #[test]
    fn polite_churn_uses_goodbyes() {
        let m = run(SimConfig {
            churn: vec![Churn {
                at: Duration::from_secs(10),
                fraction: 0.5,
                polite: true,
            }],
            ..small(9, 30)
        });
        assert_eq!(m.churned, 4);
        assert_eq!((m.left_goodbye, m.expelled_timeout), (4, 0));
        assert_eq!(m.continuity, Some(1.0));
    }

    /// Two-level floods (`relay_from`, 256 members by default) at a size a test can run:
    /// the team plays everything, and neither the splitter nor the peers pay more for it.
    #[test]
    fn a_team_flooding_in_two_levels_plays_everything_at_one_copy() {
        let m = run(SimConfig {
            relay_from: 16,
            ..small(64, 20)
        });
        assert_eq!(m.measured, 64);
        assert_eq!(m.loss_ratio, 0.0, "{m:?}");
        assert_eq!((m.order_errors, m.corrupt), (0, 0));
        assert!(m.splitter_egress_ratio <= 1.10, "{m:?}");
        assert!(m.upload_mean <= 1.2, "{m:?}");
        // A flood waits behind about 3√N copies, not N: played within a second, and no
        // playout stands still longer than a hole may block it (`skip_after`, 2 s).
        assert!(m.playout_lag_max_s < 1.5, "{m:?}");
        assert!(m.stall_max_s < 2.0 && m.stalled == 0, "{m:?}");
    }

    #[test]
    fn uplink_queue_cap_drops_and_refusals_do_not_panic() {
        // 10 peers on 100 kbit/s uplinks cannot relay a 128 kbit/s stream: the 8 KiB queue
        // overflows, and chunks are lost or (paced floods) played ever later.
        let m = run(SimConfig {
            peer_uplink_bps: 100_000,
            uplink_queue_bytes: 8192,
            ..small(10, 20)
        });
        assert!(
            m.queue_drops > 0 && m.loss_ratio + m.pending_ratio > 0.01,
            "{m:?}"
        );
        // A buffer too small for the team: the splitter refuses the surplus.
        let m = run(SimConfig {
            buffer: 8,
            ..small(10, 15)
        });
        assert_eq!((m.joined, m.joins_refused), (7, 3));
        // Poisson arrivals.
        let m = run(SimConfig {
            arrivals: Arrivals::Poisson { per_sec: 5.0 },
            ..small(10, 20)
        });
        assert_eq!(m.joined, 10);
        assert_eq!(m.loss_ratio, 0.0);
    }

    #[test]
    fn bad_configs_are_errors() {
        assert!(simulate(&small(0, 10), Instant::now()).is_err());
        assert!(simulate(&small(10, 5), Instant::now()).is_err()); // no window left
        assert!(
            simulate(
                &SimConfig {
                    chunk_size: MAX_CHUNK_PAYLOAD + 1,
                    ..small(10, 30)
                },
                Instant::now()
            )
            .is_err()
        );
        assert!(
            simulate(
                &SimConfig {
                    loss: 2.0,
                    ..small(10, 30)
                },
                Instant::now()
            )
            .is_err()
        );
    }

    #[test]
    fn peers_behind_nats_punch_holes_and_symmetric_ones_are_relayed() {
        // Filtering NATs only: the splitter's introductions open every pair; nobody relayed.
        let m = run(SimConfig {
            nat: 0.5,
            ..small(10, 30)
        });
        assert!(m.natted > 0 && m.symmetric == 0, "{m:?}");
        assert!(m.loss_ratio <= 0.001, "loss ratio {}", m.loss_ratio);
        assert_eq!(m.relayed, 0);
        // Half behind symmetric NATs, half behind filtering ones: no one reaches the
        // symmetric peers, which are relayed; the team still plays. (What is lost is lost in
        // the 3 s before relaying starts, inside the window: it shrinks with the duration.)
        let m = run(SimConfig {
            nat: 0.5,
            symmetric_nat: 0.5,
            ..small(10, 60)
        });
        assert!(m.symmetric > 0 && m.nat_dropped > 0, "{m:?}");
        assert_eq!(m.relayed, m.symmetric, "{m:?}");
        assert!(m.loss_ratio <= 0.01, "loss ratio {}", m.loss_ratio);
    }

    #[test]
    // Once an issue: peers behind symmetric NATs reach the public peers only, and ask them
    // for every chunk the other symmetric peers were given. Those answers counted as debts,
    // so the public peers kept dropping them as dead neighbours: 4.6% loss at 60 s, 10% at
    // 120 s. Debts now count the flood only.
    fn peers_that_reach_part_of_the_team_get_the_rest_by_request() {
        let m = run(SimConfig {
            symmetric_nat: 0.5,
            ..small(10, 60)
        });
        assert!(m.symmetric > 0 && m.relayed == 0, "{m:?}");
        assert!(m.requests > 0, "{m:?}");
        assert!(m.loss_ratio <= 0.001, "loss ratio {}", m.loss_ratio);
    }
}
