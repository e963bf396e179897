//! What a simulation run measured, over its measurement window.
//!
//! Plain numbers; the simulator fills them in, the report formats them.

use serde::Serialize;

/// What one run measured. Every field is a pure function of the config (wall time is kept
/// apart in [`super::Report`]), so two runs with the same seed compare equal. Serialized in
/// field order into the JSON report.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Metrics {
    /// Written first in the JSON report, ahead of the config.
    #[serde(skip)]
    pub peers: usize,
    pub joined: usize,
    pub joins_refused: u64,
    /// Peers present for the whole window (the population of the ratios below).
    pub measured: usize,
    pub window_chunks: u64,
    #[serde(rename = "window_s")]
    pub window_secs: f64,
    /// 1 − (delivered + pending) ÷ expected over the measured peers and the window's chunks:
    /// skipped chunks and chunks behind the playout point that never came are lost.
    pub loss_ratio: f64,
    /// The skipped part of it.
    pub skip_ratio: f64,
    /// Window chunks still ahead of a peer's playout at the end (not counted as lost).
    pub pending_ratio: f64,
    /// How far behind the splitter's newest chunk the measured peers play at the end (s).
    pub playout_lag_p50_s: f64,
    pub playout_lag_max_s: f64,
    /// The longest time a measured peer's playout stood still in the window (no chunk played
    /// or skipped), s. Pending chunks are not lost, so a peer stuck at a hole with the rest of
    /// the stream in its buffer hides from `loss_ratio` (for up to the buffer's lag): this
    /// shows it, as its listeners would hear it (silence).
    pub stall_max_s: f64,
    /// Measured peers whose playout stood still for more than [`STALL_SECS`] at once.
    pub stalled: usize,
    /// ... such stand-stills that began in the window's second half: while a team forms its
    /// floods grow late, and each peer's playout stands still once or twice as it falls back
    /// behind them (a player's start-up buffering, spread out); later ones are a playout that
    /// keeps stopping.
    pub stalled_late: usize,
    /// Join request sent → first Deliver, over all peers that started.
    pub startup_p50_ms: f64,
    pub startup_p99_ms: f64,
    pub startup_max_ms: f64,
    pub never_started: usize,
    /// Splitter UDP payload bytes sent in the window ÷ stream bytes pushed in the window.
    pub splitter_egress_ratio: f64,
    /// Join replies (TCP) over the whole run, ÷ stream bytes of the whole run.
    pub join_bytes_ratio: f64,
    /// Per measured peer: UDP payload bytes sent in the window ÷ stream bytes in the window.
    pub upload_mean: f64,
    pub upload_max: f64,
    /// The chunk-datagram part of `upload_mean` (the rest is control: keepalives, hellos…).
    pub upload_chunks_mean: f64,
    pub churned: usize,
    /// Measured peers that were not churned.
    pub survivors: usize,
    /// Survivors: delivered ÷ expected for chunks pushed from the first churn event to the
    /// window's end.
    pub continuity: Option<f64>,
    /// Duplicate chunk receptions at measured peers ÷ chunks they delivered.
    pub duplicate_ratio: f64,
    pub order_errors: u64,
    pub corrupt: u64,
    /// Peers that wrongly concluded the splitter was gone while it streamed.
    pub splitter_gone: u64,
    pub lrs_resends: u64,
    pub complaints: u64,
    pub requests: u64,
    pub prunes: u64,
    pub left_goodbye: u64,
    pub expelled_timeout: u64,
    pub expelled_losses: u64,
    pub datagrams: u64,
    pub net_lost: u64,
    pub queue_drops: u64,
    /// Datagrams to a node that was gone (or not there yet, beyond the early buffer).
    pub undeliverable: u64,
    pub events: u64,
    /// `handle_timeout` calls (splitter and peers).
    pub timeouts: u64,
    pub timer_retries: u64,
    /// Attack models (zero without them): what the adversaries sent, and what came of it.
    pub forged_chunks: u64,
    pub false_complaints: u64,
    pub spoofed: u64,
    /// Forged chunks the peers proved and dropped; datagrams dropped unauthenticated.
    pub rejected: u64,
    pub unauthenticated: u64,
    pub polluters_expelled: u64,
    /// Non-adversary peers expelled (for losses or as polluters): the attacks' aim.
    pub honest_expelled: u64,
    /// Bytes of chunks delivered to players that are not the stream's.
    pub corrupt_bytes: u64,
    /// NAT model (zero without it): peers behind filtering and symmetric NATs, datagrams
    /// their NATs dropped, and members the splitter relays at the end of the run.
    pub natted: usize,
    pub symmetric: usize,
    pub nat_dropped: u64,
    pub relayed: usize,
}

/// A playout that stands still this long is a stall its listeners hear ([`Metrics::stalled`]):
/// longer than a player's usual buffer of a few seconds.
pub const STALL_SECS: f64 = 5.0;
