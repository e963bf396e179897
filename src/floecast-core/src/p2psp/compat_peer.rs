//! The Gen C peer state machine: how a floecast mount joins a team of the 2018 C++ reference
//! (spec §2–§5) and plays its stream. Same shape as [`super::peer::Peer`] (datagrams and
//! ticks in; transmits, [`PeerEvent`]s and a deadline out), so the runtime drives either.
//!
//! Relaying is Gen C's "receive-and-feed" (§4.1): a chunk from the splitter becomes `prev`
//! after the rest of the previous one is flushed to the neighbours not reached yet; after every
//! received chunk, `prev` goes to one more neighbour. Peer chunks are stored, never relayed.
//! Debts (+1 sent, −1 received) drop dead neighbours, as the reference does; there are no
//! keepalives in Gen C. Unlike the reference, a lost slot is skipped, never replayed stale.
//!
//! It must never do I/O or read a clock, never accept a wrong-size chunk, and never let a
//! queue grow without bound.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::buffer::{HoleScanner, Insert, PlayoutBuffer, PlayoutConfig};
use super::compat::{self, CompatConfig, CompatMessage, Direction, Widener};
use super::peer::{NeighbourStats, PeerEvent, PeerStats};
use super::{ChunkNo, LeaveStep, Leaving, PeerId, PeerMachine, Role, Transmit, push_bounded};

const MAX_TRANSMITS: usize = 1 << 16;
const MAX_EVENTS: usize = 1 << 16;
/// Most neighbours tracked (the reference's lists are u16-counted).
const MAX_NEIGHBOURS: usize = compat::MAX_PEERS;
/// A monitor reports a hole this long after first seeing it (before playout gives it up).
const COMPLAIN_AFTER: Duration = Duration::from_millis(300);
/// A leaving peer repeats its goodbye this often while the splitter has not answered: eight
/// of them fit in the two seconds a shutting-down server gives its teams.
pub const GOODBYE_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Clone)]
pub struct CompatPeerConfig {
    pub splitter: SocketAddr,
    pub role: Role,
    /// Drop a neighbour that owes us more than this many chunks (Gen C: 128).
    pub max_chunk_debt: i32,
    /// No chunk from anyone for this long: the team is gone (a Gen C splitter sends nothing
    /// else, so this is the only sign).
    pub team_timeout: Duration,
    pub start_chunks: u32,
    pub start_delay: Duration,
    pub skip_after: Duration,
    /// Goodbyes sent to the splitter on leave ([`GOODBYE_EVERY`] apart, and one more at every
    /// splitter chunk) until it answers with its own; then the peer leaves anyway.
    pub goodbye_retries: u32,
}

impl CompatPeerConfig {
    pub fn new(splitter: SocketAddr) -> CompatPeerConfig {
        CompatPeerConfig {
            splitter,
            role: Role::Peer,
            max_chunk_debt: 128,
            team_timeout: Duration::from_secs(30),
            start_chunks: 4,
            start_delay: Duration::from_millis(500),
            skip_after: Duration::from_secs(2),
            goodbye_retries: 8,
        }
    }
}

#[derive(Debug)]
struct Neighbour {
    addr: SocketAddr,
    debt: i32,
    last_seen: Instant,
}

#[derive(Debug)]
pub struct CompatPeer {
    cfg: CompatPeerConfig,
    chunk_size: usize,
    buffer_size: u32,
    neighbours: Vec<Neighbour>,
    index: HashMap<SocketAddr, usize>,
    /// The last splitter chunk, and the next neighbour that should get it.
    prev: Option<ChunkNo>,
    k: usize,
    widener: Widener,
    /// Created at the first chunk: Gen C has no join burst that would say where to start.
    buffer: Option<PlayoutBuffer>,
    complain: Option<HoleScanner>,
    holes: Vec<ChunkNo>,
    last_chunk: Instant,
    gone: bool,
    leaving: Option<Leaving>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<PeerEvent>,
    stats: PeerStats,
    now: Instant,
}

impl CompatPeer {
    /// Start from the splitter's configuration block: greet every listed member (§2 step 5).
    pub fn new(cfg: CompatPeerConfig, config: &CompatConfig, now: Instant) -> CompatPeer {
        let buffer_size = u32::from(config.buffer_size).clamp(4, 1 << 16);
        let mut p = CompatPeer {
            chunk_size: usize::from(config.chunk_size),
            buffer_size,
            neighbours: Vec::new(),
            index: HashMap::new(),
            prev: None,
            k: 0,
            widener: Widener::new(),
            buffer: None,
            complain: (cfg.role == Role::Monitor)
                .then(|| HoleScanner::with_delay(buffer_size / 4, COMPLAIN_AFTER)),
            holes: Vec::new(),
            last_chunk: now,
            gone: false,
            leaving: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: PeerStats::default(),
            now,
            cfg,
        };
        for peer in &config.peers {
            let addr = SocketAddr::V4(*peer);
            if addr != p.cfg.splitter && p.add_neighbour(addr).is_some() {
                p.send(addr, &CompatMessage::Hello);
            }
        }
        p
    }

    fn add_neighbour(&mut self, addr: SocketAddr) -> Option<usize> {
        if let Some(i) = self.index.get(&addr) {
            return Some(*i);
        }
        if self.neighbours.len() >= MAX_NEIGHBOURS {
            return None;
        }
        let i = self.neighbours.len();
        self.index.insert(addr, i);
        self.neighbours.push(Neighbour {
            addr,
            debt: 0,
            last_seen: self.now,
        });
        self.event(PeerEvent::NeighbourAdded {
            id: PeerId::NONE,
            addr,
        });
        Some(i)
    }

    fn remove_neighbour(&mut self, i: usize) {
        let n = self.neighbours.remove(i);
        self.index.remove(&n.addr);
        for (j, m) in self.neighbours.iter().enumerate().skip(i) {
            self.index.insert(m.addr, j);
        }
        // Keep `k` pointing at the same next neighbour.
        if i < self.k {
            self.k -= 1;
        }
        self.event(PeerEvent::NeighbourRemoved {
            id: PeerId::NONE,
            addr: n.addr,
        });
    }

    fn event(&mut self, e: PeerEvent) {
        push_bounded(&mut self.events, MAX_EVENTS, e);
    }

    fn send(&mut self, to: SocketAddr, m: &CompatMessage) {
        if let Ok(data) = compat::encode_datagram(m, self.chunk_size)
            && push_bounded(&mut self.transmits, MAX_TRANSMITS, Transmit { to, data })
        {
            self.stats.transmits_dropped += 1;
        }
    }

    /// Send `prev` to neighbour `k` and move on; a neighbour over its debt is dropped instead.
    fn feed_next(&mut self) {
        let Some(no) = self.prev else { return };
        while self.k < self.neighbours.len() {
            let i = self.k;
            if self.neighbours[i].debt > self.cfg.max_chunk_debt {
                self.stats.neighbours_dropped_debt += 1;
                self.remove_neighbour(i);
                continue;
            }
            let Some(payload) = self.held(no) else { return };
            let to = self.neighbours[i].addr;
            self.send(
                to,
                &CompatMessage::Chunk {
                    no: compat::narrow(no),
                    payload,
                },
            );
            self.neighbours[i].debt = self.neighbours[i].debt.saturating_add(1);
            self.stats.sent += 1;
            self.k += 1;
            return;
        }
    }

    /// "Burst mode": the rest of `prev` to every neighbour not reached yet.
    fn flush_prev(&mut self) {
        while self.prev.is_some() && self.k < self.neighbours.len() {
            let before = (self.k, self.neighbours.len());
            self.feed_next();
            if (self.k, self.neighbours.len()) == before {
                break;
            }
        }
    }

    fn held(&self, no: ChunkNo) -> Option<Bytes> {
        self.buffer
            .as_ref()
            .and_then(|b| b.get(no))
            .map(|s| s.payload.clone())
    }

    fn store(&mut self, now: Instant, no: ChunkNo, payload: Bytes) -> Insert {
        let buffer = self.buffer.get_or_insert_with(|| {
            PlayoutBuffer::new(
                PlayoutConfig {
                    capacity: self.buffer_size,
                    lag: self.buffer_size / 2,
                    start_chunks: self.cfg.start_chunks,
                    start_delay: self.cfg.start_delay,
                    skip_after: self.cfg.skip_after,
                },
                no,
            )
        });
        let r = buffer.insert(now, no, PeerId::NONE, payload);
        match r {
            Insert::New => self.last_chunk = now,
            other => self.stats.count_insert(other),
        }
        r
    }

    fn on_splitter(&mut self, now: Instant, msg: CompatMessage) {
        match msg {
            CompatMessage::Chunk { no, payload } if !self.has_left() => {
                self.stats.from_splitter += 1;
                let no = self.widener.widen(no);
                self.flush_prev();
                if self.store(now, no, payload) == Insert::New {
                    self.prev = Some(no);
                    self.k = 0;
                }
                self.feed_next();
                self.playout(now);
                // Leaving: keep relaying and repeat the goodbye at every splitter chunk, as
                // the reference does (its splitter answers at the start of its next round).
                if self.leaving.is_some() {
                    let s = self.cfg.splitter;
                    self.send(s, &CompatMessage::Goodbye);
                }
            }
            CompatMessage::Goodbye => {
                if self.leaving.is_some() {
                    self.farewell();
                } else if !self.gone {
                    // Expelled, or the splitter is shutting down.
                    self.gone = true;
                    self.event(PeerEvent::SplitterGone);
                }
            }
            _ => self.stats.garbage += 1,
        }
    }

    fn on_neighbour(&mut self, now: Instant, from: SocketAddr, msg: CompatMessage) {
        match msg {
            CompatMessage::Hello => {
                self.add_neighbour(from);
            }
            CompatMessage::Goodbye => {
                if let Some(&i) = self.index.get(&from) {
                    self.remove_neighbour(i);
                }
            }
            CompatMessage::Chunk { no, payload } => {
                self.stats.from_peers += 1;
                // A chunk from an unknown sender makes it a neighbour, as in Gen C.
                if let Some(i) = self.add_neighbour(from) {
                    let n = &mut self.neighbours[i];
                    n.debt = n.debt.saturating_sub(1);
                    n.last_seen = now;
                }
                let no = self.widener.widen(no);
                self.store(now, no, payload);
                if !self.has_left() {
                    self.feed_next();
                }
                self.playout(now);
            }
            CompatMessage::LostChunk { .. } => self.stats.garbage += 1,
        }
    }

    fn playout(&mut self, now: Instant) {
        let Some(buffer) = self.buffer.as_mut() else {
            return;
        };
        let mut holes = std::mem::take(&mut self.holes);
        holes.clear();
        if let Some(sc) = &mut self.complain {
            sc.scan(now, buffer, &mut holes);
        }
        buffer.advance(now);
        let mut out = Vec::new();
        while let Some(p) = buffer.pop() {
            out.push(p);
        }
        for no in holes.iter().copied() {
            self.stats.complaints_sent += 1;
            let splitter = self.cfg.splitter;
            self.send(
                splitter,
                &CompatMessage::LostChunk {
                    no: compat::narrow(no),
                },
            );
        }
        self.holes = holes;
        for p in out {
            let e = self.stats.count_playout(p);
            self.event(e);
        }
    }

    /// The farewell went out: nothing more is relayed.
    fn has_left(&self) -> bool {
        self.leaving.as_ref().is_some_and(|l| l.done)
    }

    fn farewell(&mut self) {
        if self.leaving.as_ref().is_some_and(|l| l.done) {
            return;
        }
        self.flush_prev();
        let addrs: Vec<SocketAddr> = self.neighbours.iter().map(|n| n.addr).collect();
        for a in addrs {
            self.send(a, &CompatMessage::Goodbye);
        }
        // No more retries, no second farewell.
        if let Some(l) = &mut self.leaving {
            l.done = true;
        }
        self.event(PeerEvent::Left);
    }
}

impl PeerMachine for CompatPeer {
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.now = now;
        let Ok(msg) = compat::decode_datagram(data, self.chunk_size, Direction::ToPeer) else {
            self.stats.garbage += 1;
            return;
        };
        if from == self.cfg.splitter {
            self.on_splitter(now, msg);
        } else {
            self.on_neighbour(now, from, msg);
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if let Some(l) = &mut self.leaving {
            match l.on_timeout(now) {
                LeaveStep::GiveUp => self.farewell(),
                LeaveStep::Resend => {
                    let s = self.cfg.splitter;
                    self.send(s, &CompatMessage::Goodbye);
                }
                LeaveStep::Wait => {}
            }
            return;
        }
        if !self.gone && now >= self.last_chunk + self.cfg.team_timeout {
            self.gone = true;
            self.event(PeerEvent::SplitterGone);
        }
        self.playout(now);
    }

    /// Leave as the reference does: goodbye to the splitter until it answers, then the rest
    /// of the last splitter chunk to the neighbours not reached and a goodbye to each.
    fn leave(&mut self, now: Instant) {
        self.now = now;
        if self.leaving.is_some() {
            return;
        }
        let s = self.cfg.splitter;
        self.send(s, &CompatMessage::Goodbye);
        self.leaving = Some(Leaving::new(now, self.cfg.goodbye_retries, GOODBYE_EVERY));
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    fn poll_event(&mut self) -> Option<PeerEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if let Some(l) = &self.leaving {
            return l.deadline();
        }
        let mut t = self.last_chunk + self.cfg.team_timeout;
        if let Some(b) = &self.buffer {
            if let Some(d) = b.next_deadline() {
                t = t.min(d);
            }
            if let Some(d) = self.complain.as_ref().and_then(HoleScanner::next_deadline) {
                t = t.min(d);
            }
        }
        Some(t)
    }

    fn stats(&self) -> PeerStats {
        let mut s = self.stats.clone();
        s.buffer_fill = self.buffer.as_ref().map_or(0, PlayoutBuffer::fill);
        s.neighbours = self
            .neighbours
            .iter()
            .map(|n| NeighbourStats {
                id: PeerId::NONE,
                addr: n.addr,
                heard: true,
                debt: n.debt,
                pending: 0,
                last_seen: n.last_seen,
            })
            .collect();
        s
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests stand in for the driver: they read the clock
mod tests {
    use super::*;
    use crate::p2psp::Codec;
    use crate::p2psp::splitter::{Splitter, SplitterConfig};
    use crate::p2psp::wire::JoinRequest;
    use std::net::{Ipv4Addr, SocketAddrV4};

    const C: usize = 64;

    fn addr(n: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 5000 + n))
    }

    fn chunk(n: u32) -> Bytes {
        Bytes::from(
            (0..C)
                .map(|i| (n as usize * 7 + i) as u8)
                .collect::<Vec<_>>(),
        )
    }

    /// Our Gen C splitter, and Gen C peers joined through its real configuration bytes.
    struct Team {
        now: Instant,
        splitter: Splitter,
        saddr: SocketAddr,
        peers: Vec<(SocketAddr, CompatPeer)>,
        delivered: Vec<Vec<ChunkNo>>,
        dead: Vec<bool>,
    }

    impl Team {
        fn new() -> Team {
            Team::with_monitors(1)
        }

        fn with_monitors(number_of_monitors: usize) -> Team {
            let now = Instant::now();
            let cfg = SplitterConfig {
                codec: Codec::CompatGenC,
                max_chunk_payload: C,
                buffer_size: 64,
                number_of_monitors,
                ..SplitterConfig::default()
            };
            Team {
                now,
                splitter: Splitter::new(cfg, 0, now),
                saddr: addr(0),
                peers: vec![],
                delivered: vec![],
                dead: vec![],
            }
        }

        fn join(&mut self) {
            let role = if self.peers.is_empty() {
                Role::Monitor
            } else {
                Role::Peer
            };
            self.join_as(role);
        }

        /// Join asking for `role`; the splitter grants the monitor role to the first few only
        /// (a Gen C peer is never told, and complains either way).
        fn join_as(&mut self, role: Role) {
            let me = addr(self.peers.len() as u16 + 1);
            let (_, reply) = self
                .splitter
                .handle_join(self.now, me, &JoinRequest::new(role))
                .unwrap();
            let cfg = self
                .splitter
                .compat_config(
                    &reply,
                    SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8000),
                    "x.ogg",
                    1024,
                )
                .unwrap();
            let bytes = compat::encode_config(&cfg).unwrap();
            let (decoded, used) = compat::decode_config(&bytes).unwrap();
            assert_eq!(used, bytes.len());
            let mut pc = CompatPeerConfig::new(self.saddr);
            pc.role = role;
            self.peers
                .push((me, CompatPeer::new(pc, &decoded, self.now)));
            self.delivered.push(vec![]);
            self.dead.push(false);
        }

        /// Deliver every queued datagram (zero latency) until the network is quiet.
        fn settle(&mut self) {
            loop {
                let mut moved = false;
                let mut q: Vec<(SocketAddr, Transmit)> = vec![];
                while let Some(t) = self.splitter.poll_transmit() {
                    q.push((self.saddr, t));
                }
                for (a, p) in &mut self.peers {
                    while let Some(t) = p.poll_transmit() {
                        q.push((*a, t));
                    }
                }
                for (from, t) in q {
                    moved = true;
                    if t.to == self.saddr {
                        self.splitter.handle_datagram(self.now, from, &t.data);
                    } else if let Some(k) = self.peers.iter().position(|(a, _)| *a == t.to)
                        && !self.dead[k]
                    {
                        self.peers[k].1.handle_datagram(self.now, from, &t.data);
                    }
                }
                for (k, (_, p)) in self.peers.iter_mut().enumerate() {
                    while let Some(e) = p.poll_event() {
                        if let PeerEvent::Deliver { no, payload } = e {
                            assert_eq!(payload, chunk(no.0), "chunk {no:?} intact");
                            self.delivered[k].push(no);
                        }
                    }
                }
                if !moved {
                    break;
                }
            }
        }

        fn run(&mut self, from: u32, to: u32) {
            for n in from..to {
                self.now += Duration::from_millis(20);
                self.splitter.push_chunk(self.now, chunk(n)).unwrap();
                for (k, (_, p)) in self.peers.iter_mut().enumerate() {
                    if !self.dead[k] {
                        p.handle_timeout(self.now);
                    }
                }
                self.splitter.handle_timeout(self.now);
                self.settle();
            }
        }
    }

    #[test]
    fn a_gen_c_team_plays_every_chunk_in_order() {
        let mut t = Team::new();
        for _ in 0..6 {
            t.join();
        }
        t.settle();
        t.run(0, 400);
        for (k, d) in t.delivered.iter().enumerate() {
            // Everything but the last half-buffer still waiting to be played.
            assert!(d.len() >= 350, "peer {k} played {}", d.len());
            assert!(
                d.windows(2).all(|w| w[1] == w[0].plus(1)),
                "peer {k} in order"
            );
        }
        // Receive-and-feed: each peer uploads about one copy (N−1 of N chunks).
        for (_, p) in &t.peers {
            let s = p.stats();
            assert!(s.sent >= 300 && s.sent <= 400, "sent {}", s.sent);
            assert_eq!(s.neighbours.len(), 5);
        }
    }

    #[test]
    fn sixteen_bit_numbers_wrap() {
        let mut t = Team::new();
        for _ in 0..3 {
            t.join();
        }
        t.settle();
        // Past 65536: the widener keeps numbers increasing.
        for n in 0..66_000u32 {
            t.now += Duration::from_millis(1);
            t.splitter.push_chunk(t.now, chunk(n)).unwrap();
            if n % 64 == 0 {
                for (_, p) in &mut t.peers {
                    p.handle_timeout(t.now);
                }
            }
            t.settle();
        }
        for d in &t.delivered {
            assert!(d.len() > 65_000);
            assert!(d.windows(2).all(|w| w[1] == w[0].plus(1)));
        }
    }

    #[test]
    fn a_dead_neighbour_is_dropped_by_debt_and_leaving_says_goodbye() {
        let mut t = Team::new();
        for _ in 0..4 {
            t.join();
        }
        t.settle();
        t.run(0, 50);
        t.dead[3] = true;
        t.run(50, 50 + 4 * 140);
        // Peers 1 and 2 (not the monitor) have given up on the silent one.
        for k in 1..3 {
            let n = t.peers[k].1.stats().neighbours;
            assert!(
                n.iter().all(|n| n.addr != addr(4)),
                "peer {k} still lists it"
            );
        }
        let mut leaver = t.peers.remove(2).1;
        leaver.leave(t.now);
        let out: Vec<_> = std::iter::from_fn(|| leaver.poll_transmit()).collect();
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].to, &out[0].data[..]), (t.saddr, &b"G"[..]));
        // The splitter answers G: the leaver flushes and says goodbye to its neighbours.
        leaver.handle_datagram(t.now, t.saddr, b"G");
        let out: Vec<_> = std::iter::from_fn(|| leaver.poll_transmit()).collect();
        let goodbyes = out.iter().filter(|t| &t.data[..] == b"G").count();
        assert_eq!(goodbyes, leaver.stats().neighbours.len());
        assert!(std::iter::from_fn(|| leaver.poll_event()).any(|e| e == PeerEvent::Left));
    }

    /// Issue 12 §1.4: Gen C members send the splitter nothing while alive, so a dead one is
    /// known only by the monitors' complaints. It is expelled after a few lost chunks in a row,
    /// a monitor as well as a plain peer, and LRS resends keep every survivor's stream whole.
    #[test]
    fn a_dead_member_is_expelled_and_the_survivors_lose_nothing() {
        for victim in [4usize, 0] {
            let mut t = Team::with_monitors(3);
            for _ in 0..5 {
                t.join_as(Role::Monitor);
            }
            t.settle();
            t.run(0, 100);
            let roles: Vec<Role> = t.splitter.stats().peers.iter().map(|p| p.role).collect();
            assert_eq!(roles.iter().filter(|r| **r == Role::Monitor).count(), 3);
            t.dead[victim] = true;
            let sent_before = t.splitter.stats().peers[victim].chunks_sent;
            let mut expelled_at = None;
            for n in 100..400 {
                t.run(n, n + 1);
                if expelled_at.is_none() && t.splitter.peer_count() == 4 {
                    expelled_at = Some(n);
                }
            }
            let at = expelled_at.expect("the dead member is expelled");
            // Bounded: the dead run, plus the complaint horizon (16 chunks of 5 members).
            assert!(
                at < 100 + 5 * (DEAD + 16 + 4),
                "victim {victim} expelled at chunk {at}"
            );
            let s = t.splitter.stats();
            assert_eq!(s.expelled_losses, 1);
            assert!(s.peers.iter().all(|p| p.addr != addr(victim as u16 + 1)));
            assert!(sent_before > 0);
            for (k, d) in t.delivered.iter().enumerate() {
                if k == victim {
                    continue;
                }
                assert!(d.len() >= 350, "peer {k} played {}", d.len());
                assert!(
                    d.windows(2).all(|w| w[1] == w[0].plus(1)),
                    "peer {k} lost nothing: LRS resent what the dead member had"
                );
            }
        }
    }

    const DEAD: u32 = 8;

    #[test]
    fn garbage_is_counted_not_fatal() {
        let cfg = CompatConfig {
            source: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8000),
            channel: "x".into(),
            header_size: 0,
            chunk_size: C as u16,
            buffer_size: 64,
            number_of_monitors: 0,
            peers: vec![],
        };
        let now = Instant::now();
        let mut p = CompatPeer::new(CompatPeerConfig::new(addr(0)), &cfg, now);
        for d in [&b""[..], b"HH", b"\x00\x01", &[0u8; C + 1], &[0u8; C + 3]] {
            p.handle_datagram(now, addr(9), d);
        }
        assert_eq!(p.stats().garbage, 5);
        assert!(p.poll_event().is_none());
    }
}
