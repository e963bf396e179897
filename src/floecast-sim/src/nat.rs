//! The NAT model: which peers sit behind NATs, and which datagrams those NATs let in.
//!
//! A *filtering* NAT (a home router: endpoint-independent mapping, port-restricted filtering,
//! as Linux MASQUERADE with conntrack) keeps the peer's endpoint but lets a datagram in only
//! from an endpoint the peer sent to within [`MAPPING_TTL`]. A *symmetric* NAT also maps every
//! destination to its own port: a peer behind one is seen at another endpoint by each node
//! it sends to, and lets a datagram in only at the endpoint it opened toward its sender. The
//! splitter is public. Pure: the kinds come from the seed.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::SimConfig;
use super::network::{peer_addr, unit_f64};
use floecast_core::p2psp::XorShift;

/// How long a NAT keeps a mapping open without traffic (Linux conntrack: 30 s unreplied,
/// 120 s once both ways; home routers 30–60 s).
const MAPPING_TTL: u64 = 30_000_000_000;
/// A symmetric NAT maps peer `k`'s datagrams toward node `j` to port `SYMMETRIC_BASE + j`.
const SYMMETRIC_BASE: u16 = 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NatKind {
    Public,
    Filtering,
    Symmetric,
}

pub(super) struct Nats {
    /// By node; index 0 (the splitter) is public.
    kind: Vec<NatKind>,
    /// (inside node, outside endpoint) → when the inside node last sent to that endpoint.
    opened: HashMap<(u32, SocketAddr), u64>,
}

impl Nats {
    pub(super) fn new(cfg: &SimConfig) -> Nats {
        let mut rng = XorShift::new(cfg.seed ^ 0x4E41_5400_4E41_5400);
        let mut kind = vec![NatKind::Public; cfg.peers + 1];
        for k in kind.iter_mut().skip(1) {
            let u = unit_f64(&mut rng);
            *k = if u < cfg.symmetric_nat {
                NatKind::Symmetric
            } else if u < cfg.symmetric_nat + cfg.nat {
                NatKind::Filtering
            } else {
                NatKind::Public
            };
        }
        Nats {
            kind,
            opened: HashMap::new(),
        }
    }

    fn kind(&self, k: u32) -> NatKind {
        self.kind
            .get(k as usize)
            .copied()
            .unwrap_or(NatKind::Public)
    }

    /// Peers behind a NAT of each kind: (filtering, symmetric).
    pub(super) fn counts(&self) -> (usize, usize) {
        let n = |w| self.kind.iter().filter(|k| **k == w).count();
        (n(NatKind::Filtering), n(NatKind::Symmetric))
    }

    /// Node `from` sends to node `to` at `now` (to its endpoint `to_addr`): it opens `from`'s
    /// NAT toward `to`; true when `to`'s NAT lets it in.
    pub(super) fn pass(&mut self, now: u64, from: u32, to: u32, to_addr: SocketAddr) -> bool {
        if self.kind(from) != NatKind::Public {
            self.opened.insert((from, to_addr), now);
        }
        // Port-restricted: the inside node must have sent to the very endpoint this comes from.
        let seen_from = if from == 0 {
            super::network::SPLITTER_ADDR
        } else {
            self.source(from, to)
        };
        let opened = || {
            self.opened
                .get(&(to, seen_from))
                .is_some_and(|t| now.saturating_sub(*t) < MAPPING_TTL)
        };
        match self.kind(to) {
            NatKind::Public => true,
            NatKind::Filtering => opened(),
            NatKind::Symmetric => opened() && to_addr == self.source(to, from),
        }
    }

    /// The endpoint node `to` sees node `from` (a peer) at.
    pub(super) fn source(&self, from: u32, to: u32) -> SocketAddr {
        let a = peer_addr(from);
        match self.kind(from) {
            NatKind::Symmetric => SocketAddr::new(a.ip(), symmetric_port(to)),
            _ => a,
        }
    }

    /// Where peer `k`'s socket is bound: a private address behind a NAT.
    pub(super) fn local(&self, k: u32) -> SocketAddr {
        let a = peer_addr(k);
        match (self.kind(k), a.ip()) {
            (NatKind::Public, _) | (_, std::net::IpAddr::V6(_)) => a,
            (_, std::net::IpAddr::V4(ip)) => {
                let o = ip.octets();
                SocketAddr::new(
                    std::net::Ipv4Addr::new(192, 168, o[2], o[3]).into(),
                    a.port(),
                )
            }
        }
    }

    /// Whether `port` is one of peer `k`'s symmetric mappings.
    pub(super) fn maps(&self, k: u32, port: u16) -> bool {
        self.kind(k) == NatKind::Symmetric && port >= SYMMETRIC_BASE
    }
}

fn symmetric_port(to: u32) -> u16 {
    SYMMETRIC_BASE.saturating_add((to % 40_000) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filtering_needs_an_outgoing_datagram_and_symmetric_its_own_port() {
        let mut n = Nats::new(&SimConfig {
            peers: 3,
            ..SimConfig::default()
        });
        n.kind = vec![
            NatKind::Public,
            NatKind::Filtering,
            NatKind::Symmetric,
            NatKind::Public,
        ];
        // Node 3 (public) greets the filtering node 1 first: dropped; 1 then 3: both pass.
        assert!(!n.pass(0, 3, 1, peer_addr(1)));
        assert!(n.pass(1, 1, 3, peer_addr(3)));
        assert!(n.pass(2, 3, 1, peer_addr(1)));
        // ... until the mapping times out.
        assert!(!n.pass(2 + MAPPING_TTL, 3, 1, peer_addr(1)));
        // The symmetric node 2 greets node 3 from its own port for 3; 3 answers there.
        assert_eq!(n.source(2, 3).port(), SYMMETRIC_BASE + 3);
        assert!(n.pass(10, 2, 3, peer_addr(3)));
        assert!(
            !n.pass(11, 3, 2, peer_addr(2)),
            "at its splitter-facing endpoint"
        );
        assert!(n.pass(12, 3, 2, n.source(2, 3)));
        // Filtering and symmetric cannot meet: 2's greeting finds 1's NAT closed, and 1's
        // greeting goes where the splitter sees 2, a port 2 opened toward the splitter only.
        assert!(!n.pass(13, 2, 1, peer_addr(1)));
        assert!(!n.pass(14, 1, 2, n.source(2, 0)));
        assert!(n.maps(2, SYMMETRIC_BASE + 1) && !n.maps(1, SYMMETRIC_BASE + 1));
    }
}
