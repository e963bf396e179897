//! The adversaries of issue 12 §3 in the simulator, acting once per chunk pushed on top of the
//! honest protocol: polluters (members that relay and also forge chunks numbered just ahead,
//! under their genuine keys), sock-puppet monitors (members that relay and complain about
//! every recent chunk) and an outside spoofer (goodbyes with forged source addresses).
//! It never touches the state machines' insides: adversaries use the peers' public API.

use bytes::Bytes;

use super::{Ev, Sim};
use crate::network::{SPLITTER_ADDR, node_addr};
use floecast_core::p2psp::splitter::LeaveReason;
use floecast_core::p2psp::wire::{self, Message, Packet};
use floecast_core::p2psp::{PeerId, PeerMachine, Role, Transmit};

/// Forged chunks per neighbour, and complaints per puppet, each chunk interval.
const FORGED_AHEAD: u32 = 2;
const COMPLAINTS: u32 = 8;

impl Sim {
    pub(super) fn is_polluter(&self, k: u32) -> bool {
        let p = self.cfg.attack.polluters as u32;
        p > 0 && k > self.cfg.peers as u32 - p
    }

    fn is_puppet(&self, k: u32) -> bool {
        self.cfg.attack.puppet_monitors && self.nodes[k as usize].role == Role::Monitor
    }

    pub(super) fn is_adversary(&self, k: u32) -> bool {
        self.is_polluter(k) || self.is_puppet(k)
    }

    /// What every adversary does this chunk interval.
    pub(super) fn attack(&mut self) {
        let peers = self.cfg.peers as u32;
        for k in 1..=peers {
            if self.nodes[k as usize].peer.is_none() {
                continue;
            }
            if self.is_polluter(k) {
                self.pollute(k);
            } else if self.is_puppet(k) {
                self.complain(k);
            }
        }
        if self.cfg.attack.spoofer {
            self.spoof();
        }
    }

    fn pollute(&mut self, k: u32) {
        let size = self.cfg.chunk_size;
        let Some(p) = self.nodes[k as usize].peer.as_mut() else {
            return;
        };
        let Some(newest) = p.newest_chunk() else {
            return;
        };
        let (id, targets): (PeerId, Vec<_>) = (
            p.id(),
            p.stats().neighbours.iter().map(|n| n.addr).collect(),
        );
        let mut tx = Vec::new();
        for to in targets {
            for ahead in 1..=FORGED_AHEAD {
                let msg = Message::Chunk {
                    no: newest.plus(ahead),
                    origin: id,
                    relay: None,
                    payload: Bytes::from(vec![0u8; size]),
                };
                if let Some(data) = p.seal_for(to, msg) {
                    tx.push(Transmit { to, data });
                }
            }
        }
        self.m.forged_chunks += tx.len() as u64;
        for t in tx {
            self.send(k, t);
        }
    }

    fn complain(&mut self, k: u32) {
        let Some(p) = self.nodes[k as usize].peer.as_mut() else {
            return;
        };
        let Some(newest) = p.newest_chunk() else {
            return;
        };
        let mut tx = Vec::new();
        for back in 0..COMPLAINTS {
            // Claiming no Digest, so that each resend they cause floods one too.
            let msg = Message::LostChunk {
                no: newest.minus(back),
                digest: true,
            };
            if let Some(data) = p.seal_for(SPLITTER_ADDR, msg) {
                tx.push(Transmit {
                    to: SPLITTER_ADDR,
                    data,
                });
            }
        }
        self.m.false_complaints += tx.len() as u64;
        for t in tx {
            self.send(k, t);
        }
    }

    /// A goodbye from the splitter's address to a random peer, and one from that peer's
    /// address to the splitter, under a key the spoofer made up.
    fn spoof(&mut self) {
        let peers = self.cfg.peers;
        let k = 1 + self.ctl_rng.below(peers) as u32;
        if self.nodes[k as usize].peer.is_none() {
            return;
        }
        let team = self.splitter.team_id();
        let key = {
            let mut key = [0u8; 32];
            for c in key.chunks_mut(8) {
                c.copy_from_slice(&self.ctl_rng.next_u64().to_be_bytes());
            }
            key
        };
        let seq = self.m.spoofed + (1 << 40);
        let forge = |sender: PeerId| {
            let p = Packet {
                team,
                msg: Message::Goodbye { from: sender },
            };
            wire::seal(&p, sender, seq, &key, None).ok()
        };
        let lat = self.net.latency();
        if let Some(d) = forge(PeerId::NONE) {
            self.push(
                self.now + lat,
                Ev::Datagram {
                    from: 0,
                    to: k,
                    data: d,
                },
            );
        }
        if let Some(d) = forge(PeerId(k)) {
            self.push(
                self.now + lat,
                Ev::Datagram {
                    from: k,
                    to: 0,
                    data: d,
                },
            );
        }
        self.m.spoofed += 2;
    }

    /// The splitter let a member go: count honest ones expelled and polluters caught.
    pub(super) fn on_left(&mut self, addr: std::net::SocketAddr, reason: LeaveReason) {
        let Some(k) = self.net.node_of(addr) else {
            return;
        };
        if self.is_polluter(k) && reason == LeaveReason::Polluter {
            self.m.polluters_expelled += 1;
        } else if !self.is_adversary(k)
            && matches!(reason, LeaveReason::Expelled | LeaveReason::Polluter)
        {
            self.m.honest_expelled += 1;
        }
        let _ = node_addr(k);
    }
}
