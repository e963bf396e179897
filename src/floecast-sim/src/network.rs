//! The simulated network: where each node lives, and what happens to a datagram on the way.
//!
//! Every datagram is serialised on its sender's uplink (`(len + 28) * 8 / bw`, queueing delay
//! accumulates, an optional byte cap drops), then lost with probability `loss`, then delayed
//! by `latency + U(0, jitter)`. Time is virtual (nanoseconds); randomness comes from the seed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::nat::Nats;
use super::{SimConfig, dur_ns};
use floecast_core::p2psp::XorShift;

/// IPv4 + UDP headers, charged on the uplink (not in the byte metrics, which count payloads).
const IP_UDP_OVERHEAD: u64 = 28;

/// The splitter's address (node 0).
pub(super) const SPLITTER_ADDR: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 8001);
const PEER_PORT: u16 = 4000;

/// Peer `k` (1-based) lives at 10.(1 + k>>16).(k>>8).(k):4000; never a real network.
pub(super) fn peer_addr(k: u32) -> SocketAddr {
    let a = 1 + (k >> 16) as u8;
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(10, a, (k >> 8) as u8, k as u8)),
        PEER_PORT,
    )
}

/// The address of node `k`: 0 is the splitter, 1..=N the peers.
pub(super) fn node_addr(k: u32) -> SocketAddr {
    if k == 0 { SPLITTER_ADDR } else { peer_addr(k) }
}

/// A uniform value in `[0, 1)`.
pub(super) fn unit_f64(r: &mut XorShift) -> f64 {
    (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// What becomes of a datagram put on the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    /// It arrives at this virtual time.
    Arrives(u64),
    /// The sender's uplink queue was full.
    QueueFull,
    /// Lost on the way.
    Lost,
}

/// The links between the splitter and `peers` peers.
pub(super) struct Network {
    rng: XorShift,
    latency: u64,
    jitter: u64,
    loss: f64,
    splitter_bps: u64,
    peer_bps: u64,
    slow_peers: f64,
    slow_bps: u64,
    queue_cap: u64,
    peers: usize,
    /// When each node's uplink is next free; index 0 is the splitter's.
    uplink_free: Vec<u64>,
    pub(super) nats: Nats,
}

impl Network {
    pub(super) fn new(cfg: &SimConfig) -> Network {
        Network {
            rng: XorShift::new(cfg.seed),
            latency: dur_ns(cfg.latency),
            jitter: dur_ns(cfg.jitter),
            loss: cfg.loss,
            splitter_bps: cfg.splitter_uplink_bps,
            peer_bps: cfg.peer_uplink_bps,
            slow_peers: cfg.slow_peers,
            slow_bps: cfg.slow_uplink_bps,
            queue_cap: cfg.uplink_queue_bytes,
            peers: cfg.peers,
            uplink_free: vec![0; cfg.peers + 1],
            nats: Nats::new(cfg),
        }
    }

    /// One one-way delay: `latency + U(0, jitter)`. Also the delay of the lossless join
    /// exchange (TCP).
    pub(super) fn latency(&mut self) -> u64 {
        let extra = if self.jitter == 0 {
            0
        } else {
            self.rng.next_u64() % (self.jitter + 1)
        };
        self.latency + extra
    }

    /// The node at address `a`, if it is one of this network's.
    pub(super) fn node_of(&self, a: SocketAddr) -> Option<u32> {
        if a == SPLITTER_ADDR {
            return Some(0);
        }
        let IpAddr::V4(ip) = a.ip() else { return None };
        let o = ip.octets();
        if o[0] != 10 || o[1] == 0 {
            return None;
        }
        let k = (u32::from(o[1] - 1) << 16) | (u32::from(o[2]) << 8) | u32::from(o[3]);
        let port_ok = a.port() == PEER_PORT || self.nats.maps(k, a.port());
        (k >= 1 && k as usize <= self.peers && port_ok).then_some(k)
    }

    /// Peer `k` is one of the `slow_peers` fraction: spread evenly over the node numbers
    /// (so over arrival order and roles alike).
    pub(super) fn is_slow(&self, k: u32) -> bool {
        let f = self.slow_peers;
        f > 0.0 && (f64::from(k) * f).floor() != (f64::from(k - 1) * f).floor()
    }

    /// Send `len` payload bytes from node `from` at virtual time `now`.
    pub(super) fn send(&mut self, now: u64, from: u32, len: u64) -> Fate {
        let bw = if from == 0 {
            self.splitter_bps
        } else if self.is_slow(from) {
            self.slow_bps
        } else {
            self.peer_bps
        };
        let depart = if bw == 0 {
            now
        } else {
            let free = &mut self.uplink_free[from as usize];
            let start = (*free).max(now);
            let backlog = u128::from(start - now) * u128::from(bw) / 8_000_000_000;
            let cap = u128::from(self.queue_cap);
            if cap > 0 && backlog + u128::from(len) > cap {
                return Fate::QueueFull;
            }
            let tx = ((len + IP_UDP_OVERHEAD) as u128 * 8 * 1_000_000_000 / u128::from(bw)) as u64;
            *free = start + tx;
            start + tx
        };
        if self.loss > 0.0 && unit_f64(&mut self.rng) < self.loss {
            return Fate::Lost;
        }
        Fate::Arrives(depart + self.latency())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip() {
        assert_eq!(peer_addr(1).to_string(), "10.1.0.1:4000");
        assert_eq!(peer_addr(70000).to_string(), "10.2.17.112:4000");
        let net = Network::new(&SimConfig {
            peers: 70000,
            ..SimConfig::default()
        });
        for k in [0, 1, 255, 256, 70000] {
            assert_eq!(net.node_of(node_addr(k)), Some(k));
        }
        assert_eq!(net.node_of(peer_addr(70001)), None);
    }

    #[test]
    fn uplink_serialises_and_caps() {
        // 8 kbit/s: a 972-byte payload (1000 bytes on the wire) takes one second.
        let mut net = Network::new(&SimConfig {
            latency: std::time::Duration::ZERO,
            jitter: std::time::Duration::ZERO,
            peer_uplink_bps: 8000,
            uplink_queue_bytes: 2000,
            ..SimConfig::default()
        });
        assert_eq!(net.send(0, 1, 972), Fate::Arrives(1_000_000_000));
        assert_eq!(net.send(0, 1, 972), Fate::Arrives(2_000_000_000));
        // 1.5 s of backlog (1500 bytes) plus 972 exceeds the 2000-byte cap.
        assert_eq!(net.send(500_000_000, 1, 972), Fate::QueueFull);
        // The splitter's uplink is unlimited here.
        assert_eq!(net.send(0, 0, 972), Fate::Arrives(0));
    }

    #[test]
    fn slow_peers_are_spread_and_use_their_own_uplink() {
        let net = Network::new(&SimConfig {
            peers: 10,
            slow_peers: 0.5,
            slow_uplink_bps: 8000,
            peer_uplink_bps: 80_000,
            latency: std::time::Duration::ZERO,
            jitter: std::time::Duration::ZERO,
            ..SimConfig::default()
        });
        let slow: Vec<u32> = (1..=10).filter(|k| net.is_slow(*k)).collect();
        assert_eq!(slow, vec![2, 4, 6, 8, 10]);
        let mut net = net;
        // 1000 bytes on the wire: 1 s at 8 kbit/s, 0.1 s at 80 kbit/s.
        assert_eq!(net.send(0, 2, 972), Fate::Arrives(1_000_000_000));
        assert_eq!(net.send(0, 1, 972), Fate::Arrives(100_000_000));
    }
}
