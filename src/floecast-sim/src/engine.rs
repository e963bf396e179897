//! The discrete-event engine: one [`Splitter`] and N [`Peer`]s driven exactly as the runtime
//! drives them, over the modelled [`Network`], in virtual time.
//!
//! Events sit in a binary heap ordered by (virtual time, sequence number); virtual time is a
//! `u64` of nanoseconds, handed to the state machines as `base + Duration` so that a run
//! depends only on its config and seed. Joins are a delayed direct call: `handle_join` when
//! the request reaches the splitter, `Peer::new` when the reply gets back. Churn removes a
//! fraction of the (non-monitor) peers at a given time, politely (`leave`) or abruptly (the
//! node stops and all its traffic, in flight or not, is dropped). It never reads a clock,
//! prints, or touches a socket.

mod attack;

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::network::{Fate, Network, SPLITTER_ADDR, node_addr, peer_addr, unit_f64};
use super::{Arrivals, Metrics, SimConfig, SimError, dur_ns};
use floecast_core::p2psp::peer::{Peer, PeerConfig, PeerEvent};
use floecast_core::p2psp::splitter::{Splitter, SplitterConfig, SplitterEvent};
use floecast_core::p2psp::wire::{self, JoinReply, JoinRequest};
use floecast_core::p2psp::{ChunkNo, PeerMachine, Role, Transmit, XorShift};

/// The event queue is bounded: a run that would exceed it stops with an error.
const MAX_QUEUED_EVENTS: usize = 1 << 27;
/// Datagrams that reach a peer between its join and its reply (a kernel socket buffer).
const MAX_EARLY_DATAGRAMS: usize = 256;
/// A timer that does not move after firing is retried this much later (and counted).
const TIMER_RETRY_NS: u64 = 1_000_000;

enum Ev {
    Push,
    Datagram { from: u32, to: u32, data: Bytes },
    Timeout { node: u32 },
    JoinAtSplitter { peer: u32 },
    JoinReply { peer: u32, reply: Box<JoinReply> },
    Churn { idx: usize },
}

struct Entry {
    t: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.t, self.seq) == (o.t, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    // Reversed: BinaryHeap is a max-heap and we want the earliest (time, seq) first.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.t, o.seq).cmp(&(self.t, self.seq))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Joining,
    Active,
    Leaving,
    Gone,
    Refused,
}

struct Node {
    role: Role,
    state: State,
    peer: Option<Box<Peer>>,
    /// Abruptly gone: its traffic is dropped, even what is already in flight.
    vanished: bool,
    churned: bool,
    join_at: u64,
    joined_at: Option<u64>,
    departed_at: Option<u64>,
    first_deliver: Option<u64>,
    last_played: Option<ChunkNo>,
    /// When the playout last moved (a chunk played or skipped), ns.
    last_progress: Option<u64>,
    /// The longest stand-still of the playout inside the window so far, ns.
    stall_max: u64,
    /// ... of those that began in the window's second half.
    stall_max_late: u64,
    delivered_win: u64,
    skipped_win: u64,
    delivered_after_churn: u64,
    order_errors: u64,
    corrupt: u64,
    splitter_gone: u64,
    up_bytes_win: u64,
    up_chunk_bytes_win: u64,
    early: Vec<(u32, Bytes)>,
}

/// A playout that last moved at `last` (never: the window's start) and moves again at `to`:
/// how long it stood still inside the window `start..end` (ns), and whether that began in the
/// window's second half.
fn stand_still(last: Option<u64>, to: u64, start: u64, end: u64) -> (u64, bool) {
    let from = last.unwrap_or(start).max(start);
    (to.saturating_sub(from), from >= start + (end - start) / 2)
}

/// The payload of chunk `no`: a pattern a receiver can check byte by byte without a copy.
fn pattern_byte(no: u32, i: usize) -> u8 {
    let s = u64::from(no).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (i as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    (s >> 56) as u8 ^ (i as u8)
}

fn make_payload(no: u32, len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| pattern_byte(no, i)).collect::<Vec<u8>>())
}

fn payload_ok(no: u32, len: usize, p: &[u8]) -> bool {
    p.len() == len && p.iter().enumerate().all(|(i, b)| *b == pattern_byte(no, i))
}

/// One run in progress: the splitter, the peers, the network and the event queue.
pub(super) struct Sim {
    cfg: SimConfig,
    /// The `Instant` that virtual time 0 stands for.
    base: Instant,
    now: u64,
    end: u64,
    seq: u64,
    heap: BinaryHeap<Entry>,
    splitter: Splitter,
    /// Index 0 is the splitter's slot (no peer), 1..=N the peers.
    nodes: Vec<Node>,
    net: Network,
    sched: Vec<Option<u64>>,
    ctl_rng: XorShift,
    interval: u64,
    next_push: u32,
    win_start: u64,
    win_end: u64,
    c_lo: u32,
    c_hi: u32,
    churn_lo: Option<u32>,
    splitter_bytes_win: u64,
    join_bytes: u64,
    tx_scratch: Vec<Transmit>,
    ev_scratch: Vec<PeerEvent>,
    m: Metrics,
    error: Option<SimError>,
}

impl Sim {
    /// A run of `cfg` whose virtual time 0 is `base` (any instant: only differences count).
    pub(super) fn new(cfg: SimConfig, base: Instant) -> Result<Sim, SimError> {
        cfg.validate()?;
        let n = cfg.peers;
        let b = cfg.effective_buffer();
        let scfg = SplitterConfig {
            max_peers: n + 1,
            buffer_size: b,
            max_chunk_payload: cfg.chunk_size,
            number_of_monitors: cfg.monitors,
            acs: cfg.acs,
            lrs: cfg.lrs,
            // As the runtime: only trusted monitors (none here) blame peers for losses.
            blame_quorum: None,
            relay_from: if cfg.relay_from > 0 {
                u32::try_from(cfg.relay_from).unwrap_or(u32::MAX)
            } else {
                SplitterConfig::default().relay_from
            },
            ..SplitterConfig::default()
        };
        let mut ctl_rng = XorShift::new(cfg.seed ^ 0xC0DE_C0DE_C0DE_C0DE);
        let splitter = Splitter::new(scfg, ctl_rng.next_u64() as u32, base);
        let end = dur_ns(cfg.duration);
        let interval = cfg.chunk_interval_ns();
        // Arrival times.
        let pre = dur_ns(cfg.preroll);
        let mut arrivals = Vec::with_capacity(n);
        match cfg.arrivals {
            Arrivals::FlashCrowd { spread } => {
                let s = dur_ns(spread);
                for k in 0..n as u64 {
                    arrivals.push(pre + s * k / n as u64);
                }
            }
            Arrivals::Poisson { per_sec } => {
                let mut t = pre as f64;
                for _ in 0..n {
                    let u = unit_f64(&mut ctl_rng);
                    t += -(1.0 - u).ln() / per_sec * 1e9;
                    arrivals.push(t.min(u64::MAX as f64 / 2.0) as u64);
                }
            }
        }
        let last = arrivals.last().copied().unwrap_or(pre);
        let win_start = last.saturating_add(dur_ns(cfg.warmup));
        let win_end = end.saturating_sub(dur_ns(cfg.tail));
        if win_end <= win_start {
            return Err(SimError::NoWindow {
                last_arrival: last as f64 / 1e9,
                warmup: cfg.warmup.as_secs_f64(),
                duration: cfg.duration.as_secs_f64(),
                tail: cfg.tail.as_secs_f64(),
            });
        }
        let c_lo = win_start.div_ceil(interval);
        let c_hi = win_end.div_ceil(interval);
        if c_hi > u64::from(u32::MAX / 2) {
            return Err(SimError::TooManyChunks);
        }
        let churn_lo = cfg
            .churn
            .iter()
            .map(|c| dur_ns(c.at))
            .min()
            .map(|t| t.div_ceil(interval).clamp(c_lo, c_hi) as u32);
        let mut nodes = Vec::with_capacity(n + 1);
        for k in 0..=n {
            nodes.push(Node {
                role: if k >= 1 && k <= cfg.monitors {
                    Role::Monitor
                } else {
                    Role::Peer
                },
                state: State::Waiting,
                peer: None,
                vanished: false,
                churned: false,
                join_at: if k == 0 { 0 } else { arrivals[k - 1] },
                joined_at: None,
                departed_at: None,
                first_deliver: None,
                last_played: None,
                last_progress: None,
                stall_max: 0,
                stall_max_late: 0,
                delivered_win: 0,
                skipped_win: 0,
                delivered_after_churn: 0,
                order_errors: 0,
                splitter_gone: 0,
                corrupt: 0,
                up_bytes_win: 0,
                up_chunk_bytes_win: 0,
                early: Vec::new(),
            });
        }
        let mut sim = Sim {
            net: Network::new(&cfg),
            ctl_rng,
            base,
            now: 0,
            end,
            seq: 0,
            heap: BinaryHeap::new(),
            splitter,
            nodes,
            sched: vec![None; n + 1],
            interval,
            next_push: 0,
            win_start,
            win_end,
            c_lo: c_lo as u32,
            c_hi: c_hi as u32,
            churn_lo,
            splitter_bytes_win: 0,
            join_bytes: 0,
            tx_scratch: Vec::new(),
            ev_scratch: Vec::new(),
            m: Metrics {
                peers: n,
                ..Metrics::default()
            },
            error: None,
            cfg,
        };
        sim.push(0, Ev::Push);
        for k in 1..=n as u32 {
            // The join request reaches the splitter one (TCP, lossless) one-way delay later.
            let t = sim.nodes[k as usize].join_at;
            let lat = sim.net.latency();
            sim.push(t + lat, Ev::JoinAtSplitter { peer: k });
        }
        for (idx, c) in sim.cfg.churn.clone().iter().enumerate() {
            sim.push(dur_ns(c.at), Ev::Churn { idx });
        }
        sim.reschedule(0);
        Ok(sim)
    }

    fn at(&self, t: u64) -> Instant {
        self.base + Duration::from_nanos(t)
    }

    fn ns(&self, i: Instant) -> u64 {
        dur_ns(i.saturating_duration_since(self.base))
    }

    fn push(&mut self, t: u64, ev: Ev) {
        if self.heap.len() >= MAX_QUEUED_EVENTS {
            self.error.get_or_insert(SimError::EventQueueFull);
            return;
        }
        self.seq += 1;
        self.heap.push(Entry {
            t,
            seq: self.seq,
            ev,
        });
    }

    fn in_window(&self) -> bool {
        self.now >= self.win_start && self.now < self.win_end
    }

    /// Put one datagram on `from`'s uplink and into the network.
    fn send(&mut self, from: u32, t: Transmit) {
        let len = t.data.len() as u64;
        self.m.datagrams += 1;
        if self.in_window() {
            if from == 0 {
                self.splitter_bytes_win += len;
            } else {
                let n = &mut self.nodes[from as usize];
                n.up_bytes_win += len;
                // A member's chunk, plain or to a relay (the splitter's are counted apart).
                if matches!(
                    wire::peek_type(&t.data),
                    Some(wire::ty::CHUNK | wire::ty::RELAY_CHUNK)
                ) {
                    n.up_chunk_bytes_win += len;
                }
            }
        }
        let Some(to) = self.net.node_of(t.to) else {
            self.m.undeliverable += 1;
            return;
        };
        if !self.net.nats.pass(self.now, from, to, t.to) {
            self.m.nat_dropped += 1;
            return;
        }
        let arrive = match self.net.send(self.now, from, len) {
            Fate::Arrives(t) => t,
            Fate::QueueFull => {
                self.m.queue_drops += 1;
                return;
            }
            Fate::Lost => {
                self.m.net_lost += 1;
                return;
            }
        };
        self.push(
            arrive,
            Ev::Datagram {
                from,
                to,
                data: t.data,
            },
        );
    }

    /// Schedule node `k`'s timer if it moved earlier than the one already queued. A queued
    /// timer that turns out early just makes `handle_timeout` find nothing due.
    fn reschedule(&mut self, k: u32) {
        let next = if k == 0 {
            self.splitter.poll_timeout()
        } else {
            self.nodes[k as usize]
                .peer
                .as_ref()
                .and_then(|p| p.poll_timeout())
        };
        let Some(next) = next else { return };
        let g = dur_ns(self.cfg.timer_granularity).max(1);
        let t = self.ns(next).max(self.now).div_ceil(g).saturating_mul(g);
        if self.sched[k as usize].is_none_or(|s| t < s) {
            self.sched[k as usize] = Some(t);
            self.push(t, Ev::Timeout { node: k });
        }
    }

    /// Drain the splitter's output and re-arm its timer. `passive`: the input was a Hello or
    /// KeepAlive, which only pushes deadlines later unless it produced output, so the O(N)
    /// `poll_timeout` can be skipped (it dominates big teams: N² keepalives a second).
    fn after_splitter_input(&mut self, passive: bool) {
        let mut tx = std::mem::take(&mut self.tx_scratch);
        while let Some(t) = self.splitter.poll_transmit() {
            tx.push(t);
        }
        let mut quiet = tx.is_empty();
        for t in tx.drain(..) {
            self.send(0, t);
        }
        self.tx_scratch = tx;
        while let Some(e) = self.splitter.poll_event() {
            if let SplitterEvent::PeerLeft { addr, reason, .. } = e {
                self.on_left(addr, reason);
            }
            quiet = false;
        }
        if !(passive && quiet) {
            self.reschedule(0);
        }
    }

    fn after_splitter(&mut self) {
        self.after_splitter_input(false);
    }

    fn after_peer(&mut self, k: u32) {
        self.after_peer_input(k, false);
    }

    /// As [`Self::after_splitter_input`], for peer `k`: a Hello/KeepAlive from a known
    /// neighbour only refreshes `last_seen`; from a new one it emits NeighbourAdded.
    fn after_peer_input(&mut self, k: u32, passive: bool) {
        let mut tx = std::mem::take(&mut self.tx_scratch);
        let mut evs = std::mem::take(&mut self.ev_scratch);
        if let Some(p) = self.nodes[k as usize].peer.as_mut() {
            while let Some(t) = p.poll_transmit() {
                tx.push(t);
            }
            while let Some(e) = p.poll_event() {
                evs.push(e);
            }
        }
        let quiet = tx.is_empty() && evs.is_empty();
        for t in tx.drain(..) {
            self.send(k, t);
        }
        for e in evs.drain(..) {
            self.peer_event(k, e);
        }
        self.tx_scratch = tx;
        self.ev_scratch = evs;
        if !(passive && quiet) {
            self.reschedule(k);
        }
    }

    fn peer_event(&mut self, k: u32, e: PeerEvent) {
        let (now, lo, hi, clo, size) = (
            self.now,
            self.c_lo,
            self.c_hi,
            self.churn_lo,
            self.cfg.chunk_size,
        );
        let (win_start, win_end) = (self.win_start, self.win_end);
        let n = &mut self.nodes[k as usize];
        let played = match &e {
            PeerEvent::Deliver { no, .. } | PeerEvent::Skipped { no } => Some(*no),
            _ => None,
        };
        if let Some(no) = played {
            if n.last_played.is_some_and(|l| no != l.plus(1)) {
                n.order_errors += 1;
            }
            n.last_played = Some(no);
            if (win_start..win_end).contains(&now) {
                let (len, late) = stand_still(n.last_progress, now, win_start, win_end);
                n.stall_max = n.stall_max.max(len);
                if late {
                    n.stall_max_late = n.stall_max_late.max(len);
                }
            }
            n.last_progress = Some(now);
        }
        match e {
            PeerEvent::Deliver { no, payload } => {
                n.first_deliver.get_or_insert(now);
                if !payload_ok(no.0, size, &payload) {
                    n.corrupt += 1;
                }
                if (lo..hi).contains(&no.0) {
                    n.delivered_win += 1;
                    if clo.is_some_and(|c| no.0 >= c) {
                        n.delivered_after_churn += 1;
                    }
                }
            }
            PeerEvent::Skipped { no } if (lo..hi).contains(&no.0) => {
                n.skipped_win += 1;
            }
            PeerEvent::Left => {
                n.state = State::Gone;
                n.peer = None;
            }
            PeerEvent::SplitterGone => n.splitter_gone += 1,
            _ => {}
        }
    }

    /// Run to the end and measure.
    pub(super) fn run(mut self) -> Result<Metrics, SimError> {
        while let Some(e) = self.heap.pop() {
            if e.t > self.end {
                break;
            }
            if let Some(err) = self.error.take() {
                return Err(err);
            }
            self.now = e.t;
            self.m.events += 1;
            match e.ev {
                Ev::Push => self.on_push(),
                Ev::Datagram { from, to, data } => self.on_datagram(from, to, data),
                Ev::Timeout { node } => self.on_timeout(node, e.t),
                Ev::JoinAtSplitter { peer } => self.on_join(peer),
                Ev::JoinReply { peer, reply } => self.on_reply(peer, reply),
                Ev::Churn { idx } => self.on_churn(idx),
            }
        }
        if let Some(err) = self.error.take() {
            return Err(err);
        }
        Ok(self.finish())
    }

    fn on_push(&mut self) {
        let no = self.next_push;
        self.next_push += 1;
        let now = self.at(self.now);
        let payload = make_payload(no, self.cfg.chunk_size);
        if self.splitter.push_chunk(now, payload).is_err() {
            self.error.get_or_insert(SimError::ChunkRefused);
        }
        self.after_splitter();
        self.attack();
        let next = u64::from(self.next_push) * self.interval;
        if next <= self.end {
            self.push(next, Ev::Push);
        }
    }

    fn on_datagram(&mut self, from: u32, to: u32, data: Bytes) {
        if self.nodes[from as usize].vanished {
            self.m.undeliverable += 1;
            return;
        }
        let from_addr = if from == 0 {
            node_addr(0)
        } else {
            self.net.nats.source(from, to)
        };
        let passive = matches!(
            wire::peek_type(&data),
            Some(wire::ty::HELLO | wire::ty::KEEPALIVE | wire::ty::REPORT)
        );
        if to == 0 {
            let now = self.at(self.now);
            self.splitter.handle_datagram(now, from_addr, &data);
            self.after_splitter_input(passive);
            return;
        }
        let now = self.at(self.now);
        let n = &mut self.nodes[to as usize];
        match (n.state, n.peer.as_mut()) {
            (State::Active | State::Leaving, Some(p)) => {
                p.handle_datagram(now, from_addr, &data);
                self.after_peer_input(to, passive);
            }
            (State::Joining, _) if n.early.len() < MAX_EARLY_DATAGRAMS => {
                n.early.push((from, data));
            }
            _ => self.m.undeliverable += 1,
        }
    }

    fn on_timeout(&mut self, k: u32, t: u64) {
        if self.sched[k as usize] != Some(t) {
            return; // superseded by an earlier one
        }
        self.sched[k as usize] = None;
        self.m.timeouts += 1;
        let now = self.at(self.now);
        if k == 0 {
            self.splitter.handle_timeout(now);
            self.after_splitter();
        } else if let Some(p) = self.nodes[k as usize].peer.as_mut() {
            p.handle_timeout(now);
            self.after_peer(k);
        } else {
            return;
        }
        // A timer that is still due right after firing would spin at one instant.
        if self.sched[k as usize].is_some_and(|s| s <= self.now) {
            self.m.timer_retries += 1;
            let t = self.now + TIMER_RETRY_NS;
            self.sched[k as usize] = Some(t);
            self.push(t, Ev::Timeout { node: k });
        }
    }

    fn on_join(&mut self, k: u32) {
        let now = self.at(self.now);
        let role = self.nodes[k as usize].role;
        match self
            .splitter
            .handle_join(now, peer_addr(k), &JoinRequest::new(role))
        {
            Ok((_, reply)) => {
                // Rough TCP size of the reply: the burst plus 11 bytes per listed peer.
                let bytes: usize = reply
                    .burst
                    .iter()
                    .map(|c| c.payload.len() + 12)
                    .sum::<usize>()
                    + reply.peers.len() * 11
                    + 100;
                self.join_bytes += bytes as u64;
                self.nodes[k as usize].state = State::Joining;
                let lat = self.net.latency();
                self.push(
                    self.now + lat,
                    Ev::JoinReply {
                        peer: k,
                        reply: Box::new(reply),
                    },
                );
            }
            Err(_) => self.nodes[k as usize].state = State::Refused,
        }
        self.after_splitter();
    }

    fn on_reply(&mut self, k: u32, reply: Box<JoinReply>) {
        if self.nodes[k as usize].state != State::Joining {
            return;
        }
        let now = self.at(self.now);
        let mut pc = PeerConfig::new(SPLITTER_ADDR);
        pc.role = self.nodes[k as usize].role;
        pc.skip_after = self.cfg.skip_after;
        if self.cfg.pace_start > 0.0 {
            pc.pace_start = self.cfg.pace_start;
        }
        // As the runtime: the peer says where it is bound (a NAT's private side, or not).
        pc.local = Some(self.net.nats.local(k));
        if self.cfg.max_neighbours > 0 {
            pc.max_neighbours = self.cfg.max_neighbours;
        }
        let seed = self.cfg.seed ^ u64::from(k).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut p = Box::new(Peer::new(pc, *reply, seed, now));
        // Datagrams that beat the reply were held by the (modelled) socket buffer.
        let early = std::mem::take(&mut self.nodes[k as usize].early);
        for (from, data) in early {
            let src = if from == 0 {
                node_addr(0)
            } else {
                self.net.nats.source(from, k)
            };
            p.handle_datagram(now, src, &data);
        }
        let n = &mut self.nodes[k as usize];
        n.state = State::Active;
        n.joined_at = Some(self.now);
        n.peer = Some(p);
        self.after_peer(k);
    }

    fn on_churn(&mut self, idx: usize) {
        let Some(c) = self.cfg.churn.get(idx).copied() else {
            return;
        };
        let mut eligible: Vec<u32> = (1..=self.cfg.peers as u32)
            .filter(|k| {
                let n = &self.nodes[*k as usize];
                n.state == State::Active && n.role == Role::Peer
            })
            .collect();
        let count = ((eligible.len() as f64) * c.fraction).round() as usize;
        // Partial Fisher–Yates: the first `count` entries are a uniform sample.
        for i in 0..count.min(eligible.len()) {
            let j = i + self.ctl_rng.below(eligible.len() - i);
            eligible.swap(i, j);
        }
        let now = self.at(self.now);
        for &k in eligible.iter().take(count) {
            self.m.churned += 1;
            let n = &mut self.nodes[k as usize];
            n.churned = true;
            n.departed_at = Some(self.now);
            if c.polite {
                n.state = State::Leaving;
                if let Some(p) = n.peer.as_mut() {
                    p.leave(now);
                }
                self.after_peer(k);
            } else {
                n.state = State::Gone;
                n.vanished = true;
                n.peer = None;
                n.early.clear();
            }
        }
    }

    fn finish(mut self) -> Metrics {
        let mut m = std::mem::take(&mut self.m);
        (m.natted, m.symmetric) = self.net.nats.counts();
        m.relayed = self.splitter.stats().relayed_peers;
        let window = u64::from(self.c_hi - self.c_lo);
        m.window_chunks = window;
        m.window_secs = (self.win_end - self.win_start) as f64 / 1e9;
        let stream_win = (window * self.cfg.chunk_size as u64).max(1) as f64;
        let mut startups = Vec::new();
        let (mut expected, mut delivered, mut skipped) = (0u64, 0u64, 0u64);
        let (mut pending, mut lags) = (0u64, Vec::new());
        let (mut cont_exp, mut cont_got) = (0u64, 0u64);
        let (mut up_sum, mut up_max, mut upc_sum) = (0f64, 0f64, 0f64);
        let mut dups = 0u64;
        let mut stall_max = 0f64;
        for (k, n) in self.nodes.iter().enumerate().skip(1) {
            match n.state {
                State::Refused => m.joins_refused += 1,
                State::Waiting => {}
                _ => m.joined += 1,
            }
            if n.joined_at.is_some() {
                match n.first_deliver {
                    Some(f) => startups.push((f - n.join_at) as f64 / 1e6),
                    None if n.departed_at.is_none() => m.never_started += 1,
                    None => {}
                }
            }
            m.order_errors += n.order_errors;
            m.corrupt += n.corrupt;
            m.corrupt_bytes += n.corrupt * self.cfg.chunk_size as u64;
            // Adversaries count for what they did (attack metrics), not as the audience.
            if self.is_adversary(k as u32) {
                continue;
            }
            m.splitter_gone += n.splitter_gone;
            if let Some(p) = &n.peer {
                let s = p.stats();
                m.requests += s.requests_sent;
                m.complaints += s.complaints_sent;
                m.prunes += s.prunes_sent;
                m.rejected += s.rejected;
                m.unauthenticated += s.bad_mac + s.replays;
                dups += s.duplicates;
            }
            // Present for the whole window, and not one of the churned.
            let measured = !n.churned
                && n.joined_at.is_some_and(|j| j <= self.win_start)
                && n.departed_at.is_none_or(|d| d >= self.win_end);
            if !measured {
                continue;
            }
            m.measured += 1;
            expected += window;
            // Window chunks the peer's playout has not reached yet are not lost: a paced team
            // plays a flood's time behind the splitter. (The buffer skips any slot `lag`
            // behind the newest chunk, so this cannot hide a stalled peer for long; the lag
            // itself is reported.)
            let played_to = n
                .last_played
                .map_or(u64::from(self.c_lo), |l| u64::from(l.0) + 1);
            pending += u64::from(self.c_hi).saturating_sub(played_to.max(u64::from(self.c_lo)));
            lags.push(
                u64::from(self.splitter.next_chunk().0).saturating_sub(played_to) as f64
                    * self.cfg.chunk_interval_ns() as f64
                    / 1e9,
            );
            // The stand-still still going on at the window's end counts too.
            let (open, late) =
                stand_still(n.last_progress, self.win_end, self.win_start, self.win_end);
            let stall = n.stall_max.max(open) as f64 / 1e9;
            stall_max = stall_max.max(stall);
            if stall > crate::metrics::STALL_SECS {
                m.stalled += 1;
            }
            let late = n.stall_max_late.max(if late { open } else { 0 });
            if late as f64 / 1e9 > crate::metrics::STALL_SECS {
                m.stalled_late += 1;
            }
            delivered += n.delivered_win;
            skipped += n.skipped_win;
            let up = n.up_bytes_win as f64 / stream_win;
            up_sum += up;
            up_max = up_max.max(up);
            upc_sum += n.up_chunk_bytes_win as f64 / stream_win;
            if let Some(c) = self.churn_lo {
                m.survivors += 1;
                cont_exp += u64::from(self.c_hi - c);
                cont_got += n.delivered_after_churn;
            }
        }
        if expected > 0 {
            m.loss_ratio = 1.0 - (delivered + pending) as f64 / expected as f64;
            m.pending_ratio = pending as f64 / expected as f64;
            lags.sort_by(f64::total_cmp);
            m.playout_lag_p50_s = lags[lags.len() / 2];
            m.playout_lag_max_s = lags[lags.len() - 1];
            m.stall_max_s = stall_max;
            m.skip_ratio = skipped as f64 / expected as f64;
        }
        if m.measured > 0 {
            m.upload_mean = up_sum / m.measured as f64;
            m.upload_chunks_mean = upc_sum / m.measured as f64;
            m.upload_max = up_max;
            m.duplicate_ratio = dups as f64 / delivered.max(1) as f64;
        }
        if self.churn_lo.is_some() && cont_exp > 0 {
            m.continuity = Some(cont_got as f64 / cont_exp as f64);
        }
        startups.sort_by(f64::total_cmp);
        let pct = |p: f64| -> f64 {
            if startups.is_empty() {
                return f64::NAN;
            }
            let i = ((p * startups.len() as f64).ceil() as usize).clamp(1, startups.len()) - 1;
            startups[i]
        };
        m.startup_p50_ms = pct(0.5);
        m.startup_p99_ms = pct(0.99);
        m.startup_max_ms = pct(1.0);
        m.splitter_egress_ratio = self.splitter_bytes_win as f64 / stream_win;
        let stream_all = (u64::from(self.next_push) * self.cfg.chunk_size as u64).max(1);
        m.join_bytes_ratio = self.join_bytes as f64 / stream_all as f64;
        let st = self.splitter.stats();
        m.lrs_resends = st.lrs_resends;
        m.left_goodbye = st.left_goodbye;
        m.expelled_timeout = st.expelled_timeout;
        m.expelled_losses = st.expelled_losses;
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_check_catches_corruption() {
        let p = make_payload(7, 100);
        assert!(payload_ok(7, 100, &p));
        assert!(!payload_ok(8, 100, &p));
        let mut v = p.to_vec();
        v[50] ^= 1;
        assert!(!payload_ok(7, 100, &v));
        assert!(!payload_ok(7, 99, &p));
    }
}
