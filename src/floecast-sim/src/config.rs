//! What a simulation run is: team size, network conditions, stream, arrivals and churn.
//!
//! Plain data with defaults and a validity check; it never runs anything itself.

use std::time::Duration;

use super::SimError;
use floecast_core::p2psp::wire::{MAX_CHUNK_PAYLOAD, MAX_PEERS_IN_LIST};

/// Largest team the simulator accepts (the join reply lists at most this many peers).
pub const MAX_SIM_PEERS: usize = MAX_PEERS_IN_LIST;

/// How the peers arrive.
#[derive(Debug, Clone, PartialEq)]
pub enum Arrivals {
    /// All peers, evenly spread over `spread` after the pre-roll.
    FlashCrowd { spread: Duration },
    /// Exponential gaps at `per_sec` arrivals per second after the pre-roll.
    Poisson { per_sec: f64 },
}

/// At `at`, `fraction` of the present non-monitor peers leave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Churn {
    pub at: Duration,
    pub fraction: f64,
    /// `leave()` (goodbyes) rather than vanishing.
    pub polite: bool,
}

/// Adversaries in the team (issue 12 §3), as the simulator models them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attack {
    /// The last this-many peers are polluters: they relay like members and, every chunk
    /// interval, send every neighbour forged chunks numbered just ahead, under their genuine
    /// keys.
    pub polluters: usize,
    /// The monitors are sock-puppets: they relay, and complain about every recent chunk.
    pub puppet_monitors: bool,
    /// An outsider spoofs addresses: every chunk interval, a Goodbye "from the splitter" to a
    /// peer and one "from a peer" to the splitter (it cannot know their keys).
    pub spoofer: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub peers: usize,
    /// The first `monitors` arrivals join as monitors.
    pub monitors: usize,
    /// Loss probability of every datagram on every link (the join TCP exchange is lossless).
    pub loss: f64,
    pub latency: Duration,
    pub jitter: Duration,
    /// Peers' uplink in bit/s; 0 = unlimited.
    pub peer_uplink_bps: u64,
    /// The splitter's uplink in bit/s; 0 = unlimited.
    pub splitter_uplink_bps: u64,
    /// Drop a datagram when its sender's uplink backlog would exceed this; 0 = no cap.
    pub uplink_queue_bytes: u64,
    pub duration: Duration,
    pub chunk_size: usize,
    /// Stream rate in bit/s: one chunk every `chunk_size * 8 / rate` seconds.
    pub rate_bps: u64,
    /// Splitter (and peer) buffer in chunks; 0 = max(256, next power of two ≥ 2N).
    pub buffer: u32,
    pub lrs: bool,
    pub acs: bool,
    /// The peers' `skip_after` (how long a missing head slot may block).
    pub skip_after: Duration,
    /// Peers' first pacing rate in streams (0: their default).
    pub pace_start: f64,
    /// The source streams alone this long before the first arrival (fills the join burst).
    pub preroll: Duration,
    pub arrivals: Arrivals,
    /// The measurement window starts this long after the last arrival.
    pub warmup: Duration,
    /// ... and ends this long before the end of the run.
    pub tail: Duration,
    pub churn: Vec<Churn>,
    pub seed: u64,
    /// Timers fire at multiples of this (like a runtime's timer wheel; tokio's is 1 ms).
    /// Coarser ticks batch the per-neighbour keepalive deadlines, which otherwise wake a peer
    /// up to N times a second, each wake-up costing O(N) in `handle_timeout`/`poll_timeout`.
    pub timer_granularity: Duration,
    /// The peers' `max_neighbours`; 0 keeps `PeerConfig`'s default (1024).
    pub max_neighbours: usize,
    /// The splitter's `relay_from` (its team floods in two levels from this size on); 0 keeps
    /// the default (`peer::RELAY_FROM`).
    pub relay_from: usize,
    pub attack: Attack,
    /// Fractions of the peers behind a filtering NAT (a home router) and behind a symmetric
    /// NAT (a new port for every destination): see the simulator's NAT model.
    pub nat: f64,
    pub symmetric_nat: f64,
    /// This fraction of the peers (every so many, by node number) has an uplink of
    /// `slow_uplink_bps` instead of `peer_uplink_bps`: mixed capacities.
    pub slow_peers: f64,
    pub slow_uplink_bps: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            peers: 10,
            monitors: 1,
            loss: 0.0,
            latency: Duration::from_millis(20),
            jitter: Duration::from_millis(5),
            peer_uplink_bps: 0,
            splitter_uplink_bps: 0,
            uplink_queue_bytes: 0,
            duration: Duration::from_secs(60),
            chunk_size: 1024,
            rate_bps: 128_000,
            buffer: 0,
            lrs: true,
            acs: true,
            skip_after: Duration::from_secs(2),
            pace_start: 0.0,
            preroll: Duration::from_secs(2),
            arrivals: Arrivals::FlashCrowd {
                spread: Duration::from_secs(1),
            },
            warmup: Duration::from_secs(3),
            tail: Duration::from_secs(3),
            churn: Vec::new(),
            seed: 1,
            timer_granularity: Duration::from_millis(1),
            max_neighbours: 0,
            relay_from: 0,
            attack: Attack::default(),
            nat: 0.0,
            symmetric_nat: 0.0,
            slow_peers: 0.0,
            slow_uplink_bps: 0,
        }
    }
}

impl SimConfig {
    /// The buffer the run uses (resolving `0 = auto`).
    pub fn effective_buffer(&self) -> u32 {
        if self.buffer != 0 {
            return self.buffer;
        }
        // Two rounds of lag: paced floods on uplinks near the stream rate take most of one.
        let want = (4 * self.peers.max(1)).next_power_of_two();
        want.clamp(256, 1 << 16) as u32
    }

    /// A config the simulator can run, or what is wrong with it.
    pub(super) fn validate(&self) -> Result<(), SimError> {
        let invalid = |why: String| Err(SimError::Invalid(why));
        if self.peers == 0 || self.peers > MAX_SIM_PEERS {
            return invalid(format!("peers must be 1..={MAX_SIM_PEERS}"));
        }
        if !(0.0..=1.0).contains(&self.loss) || self.loss.is_nan() {
            return invalid("loss must be a probability in 0..=1".into());
        }
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_PAYLOAD {
            return invalid(format!("chunk size must be 1..={MAX_CHUNK_PAYLOAD} bytes"));
        }
        if self.rate_bps < 1000 {
            return invalid("stream rate must be at least 1 kbit/s".into());
        }
        if self.duration > Duration::from_secs(24 * 3600) {
            return invalid("duration is capped at 24 h".into());
        }
        if let Arrivals::Poisson { per_sec } = self.arrivals
            && !(per_sec > 0.0 && per_sec.is_finite())
        {
            return invalid("Poisson arrival rate must be > 0".into());
        }
        if self.attack.polluters + self.monitors > self.peers {
            return invalid("polluters and monitors must be fewer than the peers".into());
        }
        let fraction = |f: f64| (0.0..=1.0).contains(&f);
        if !fraction(self.slow_peers) || (self.slow_peers > 0.0 && self.slow_uplink_bps == 0) {
            return invalid("--slow-peers needs a fraction and --slow-bandwidth-kbps".into());
        }
        if !fraction(self.nat)
            || !fraction(self.symmetric_nat)
            || !fraction(self.nat + self.symmetric_nat)
        {
            return invalid("NAT fractions must be in 0..=1, and together at most 1".into());
        }
        for c in &self.churn {
            if !(0.0..=1.0).contains(&c.fraction) || c.fraction.is_nan() {
                return invalid("churn fraction must be in 0..=1".into());
            }
        }
        Ok(())
    }

    /// Virtual nanoseconds between two chunks of the stream.
    pub(super) fn chunk_interval_ns(&self) -> u64 {
        let ns = (self.chunk_size as u128 * 8 * 1_000_000_000) / u128::from(self.rate_bps.max(1));
        (ns as u64).max(1)
    }
}
