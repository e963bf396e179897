//! The DBS peer state machine (native codec): relays the chunks the splitter gives it to the
//! team, stores everyone's chunks in a [`PlayoutBuffer`], and emits the stream in chunk-number
//! order.
//!
//! Relaying follows Gen D: a splitter chunk is copied to every neighbour (`forward[me]` = all
//! neighbours, in an order that rotates); a peer chunk to `forward[origin]` (empty until a
//! neighbour asks with Request). From [`RELAY_FROM`] members on, floods go in two levels
//! instead, through √N relays ([`relay`]), and so do the splitter's Digests and Infos. The
//! copies leave through the [`pacer`], at the rate our uplink takes without queueing
//! (receivers tell us its queueing delay), so a flood never overflows a router queue. Holes are waited for as long as a flood takes at that rate. Silence drops
//! dead neighbours. Debts (+1 sent, −1 received) are only shown: the splitter gives an uplink
//! that cannot relay a full share fewer chunks or none, so a live neighbour may well return
//! less than it gets, by design (DBS drops it; that would cut the slow half of a team off the
//! mesh). Monitors complain (LostChunk)
//! about slots still empty half-way to their play time, and so do the few members that
//! witness each chunk (so that a chunk the whole team misses is resent even when the
//! monitors are sock-puppets); every peer asks a random neighbour
//! (Request) a bit later; a repeated duplicate of a relayed chunk answers with Prune.
//!
//! Every datagram is authenticated and every chunk from another member verified against the
//! splitter's signed Digests before it is played or forwarded ([`trust`]).
//!
//! It must never do I/O or read a clock, never accept datagrams without the team cookie and a
//! valid tag, never play or forward an unverified chunk, never replay stale data for a lost
//! slot, and never let a queue grow without bound.

mod pacer;
pub(crate) mod relay;
mod trust;

use pacer::SERVE_BACKLOG;
pub(crate) use pacer::UDP_IP_HEADERS;
use trust::SignedFrom;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::auth::{self, Key, ReplayWindow};
use super::buffer::{HoleScanner, Insert, Playout, PlayoutBuffer, PlayoutConfig};
use super::wire::{self, JoinReply, Message, Packet, Relay};
use super::{
    ChunkNo, LeaveStep, Leaving, PeerId, PeerMachine, Role, Transmit, XorShift, push_bounded,
};

const MAX_TRANSMITS: usize = 1 << 16;
const MAX_EVENTS: usize = 1 << 16;

/// A monitor reports a hole this long after first seeing it (well before playout skips it,
/// so the splitter's resend can still arrive); a plain peer asks a neighbour a bit later.
/// Both wait out the Digest delay too ([`auth::batch_delay`], from the chunk rate): a chunk
/// from another member is held (a hole to the buffer) until the Digest that vouches for it
/// arrives ([`Peer::retime_scanners`]).
const COMPLAIN_AFTER: Duration = Duration::from_millis(300);
const REQUEST_AFTER: Duration = Duration::from_millis(600);
/// A hole still open is reported again, this often: a complaint or its resend may be lost as
/// well.
const HOLE_RETRIES: u8 = 2;
/// A hole still open is asked for again, of another neighbour (at random), this often: a
/// request or its answer may be lost, and the one asked may lack the chunk too (it says
/// nothing then). In a forming team a chunk whose origin knew few members yet is held by
/// few, and asked three times, the holes of a flash crowd's first seconds waited for the
/// splitter's resends (half-slow team of 1,000: 0.016% lost and 600 peers stood still over
/// 5 s; asked nine times, 0.003% and 477).
const REQUEST_RETRIES: u8 = 8;
const COMPLAIN_RETRY: Duration = Duration::from_millis(500);
const REQUEST_RETRY: Duration = Duration::from_millis(700);

/// A monitor's hole scanner (its delay follows the chunk rate: see `retime_scanners`).
fn monitor_scanner(horizon: u32) -> HoleScanner {
    HoleScanner::with_delay(horizon, COMPLAIN_AFTER + auth::MAX_BATCH_DELAY)
        .with_retries(HOLE_RETRIES, COMPLAIN_RETRY)
}

/// Keepalives from a peer behind a NAT are sent at most this far apart, however long the
/// round: UDP NAT bindings commonly last 30 s or more.
const MAX_MESH_KEEPALIVE: Duration = Duration::from_secs(15);
/// ... and from a peer with a public endpoint, at most this far apart: they only tell that it
/// lives. In a team of 1000 a round is a minute at 128 kbit/s, and keepalives every 15 s to
/// every member cost 17% of the stream, more than a 1.25 × uplink has to spare.
const MAX_PUBLIC_KEEPALIVE: Duration = Duration::from_secs(60);
/// A neighbour's fastest Probe is remembered over one to two of these (LEDBAT keeps minutes
/// of minima too): long enough to see an empty queue, short enough for clocks to drift.
const BASE_WINDOW: Duration = Duration::from_secs(60);
/// The lateness holes are waited for decays by this factor a second (a minute halves it
/// about twice), so one slow flood does not slow recovery for good.
const LATENESS_DECAY: f64 = 0.98;
/// When the chunk rate has not retimed holes for this long, they follow the lateness
/// whenever it moves by an eighth, and this much.
const RETIME_STALE: Duration = Duration::from_secs(20);
const RETIME_SLACK: Duration = Duration::from_millis(100);
/// Probes go to this many neighbours ([`Peer::probe_buddies`]).
const PROBE_BUDDIES: usize = 3;
/// A probe buddy that left this many Probes in a row unanswered is replaced (8 s of Probes
/// at the slowest; a buddy whose own queue holds its answers that long is no measure).
const SILENT_BUDDY: u16 = 16;
/// While this much control waits in the pacer, Probes follow control datagrams too.
const CONTROL_PROBES: Duration = Duration::from_secs(1);
/// The chunk rate is sampled each time the newest chunk number advances this far.
const RATE_SAMPLE_CHUNKS: u32 = 16;
/// ... or when this long has passed since the last sample (small shares).
const RATE_SAMPLE_SPAN: Duration = Duration::from_secs(2);
/// The shortest chunk interval a rate sample may show (10,000 chunks a second); a shorter
/// one is chunks that arrived together.
const MIN_CHUNK_INTERVAL: Duration = Duration::from_micros(100);
/// Splitter chunks remembered for late greeters (a round rarely holds more than one).
const OWN_RECENT: usize = 8;
/// A chunk copy's bytes on the uplink beyond its payload (about: our header and trailer, UDP
/// and IP).
const COPY_OVERHEAD: f64 = 80.0;
/// Queueing delay on our uplink (as receivers report it) from which our copies overtaken by a
/// resend's flood are all dropped ([`Peer::on_duplicate`]).
const CONGESTED: Duration = Duration::from_millis(500);
/// Chunks remembered as having reached us first as a repair ([`Peer::repaired_from`]).
const REPAIRED_FROM: usize = 256;
/// A Train ([`Message::Train`]): this many datagrams of [`TRAIN_BYTES`], back to back, so the
/// splitter measures our uplink from their spacing before it gives us chunks to flood. Four
/// gaps, of which it reads the narrowest: other traffic that widens one does not slow the
/// reading.
pub const TRAIN_LEN: u8 = 5;
/// One Train datagram's UDP payload: as large as a chunk copy, and under any path's MTU.
pub const TRAIN_BYTES: usize = 1200;
/// A peer that got no chunk from the splitter since its last Train sends another after this
/// long, or three rounds if longer (its uplink is otherwise idle, and the first one may have
/// read it slow by chance; in a round of a large team at speech rates, a member whose turn is
/// simply not due would send a Train, and the splitter its reading, several times).
const TRAIN_AGAIN: Duration = Duration::from_secs(30);
/// A neighbour not heard from yet is greeted this many times in all, this far apart: behind
/// NATs the first Hellos of a pair are dropped until both sides have sent one.
const HELLO_TRIES: u8 = 8;
const HELLO_RETRY: Duration = Duration::from_millis(400);
/// From a public endpoint there is no hole to punch, and an unanswered greeting is one whose
/// answer waits behind a slow uplink (a flash crowd's member answers 1000 greetings, seconds
/// of 64 kbit/s): the gap doubles, up to this ([`Peer::hello_gap`]).
const PUBLIC_HELLO_RETRY_MAX: Duration = Duration::from_millis(3200);
/// The team size from which floods go in two levels by default (the splitter tells its
/// joiners its own setting): a round at 128 kbit/s in 1 KiB chunks is then 16 s, and a
/// one-level flood on a 1.25 × uplink would come 13 s late.
pub const RELAY_FROM: usize = 256;
/// A neighbour greeted [`HELLO_TRIES`] times and not heard this long after it was added is
/// dropped (a little longer than the greetings take), behind a NAT ([`Peer::unheard_give_up`]).
const UNHEARD_GIVE_UP: Duration = Duration::from_millis(400 * (HELLO_TRIES as u64 + 2));
/// Requests from members whose playout waits on the chunk are served this often (a second),
/// and in bursts of up to [`STALLED_SERVE_BURST`], even while our floods are late
/// ([`Peer::serve_stalled`]).
const STALLED_SERVES_PER_SEC: f64 = 1.0;
const STALLED_SERVE_BURST: f64 = 3.0;

#[derive(Debug, Clone)]
pub struct PeerConfig {
    pub splitter: SocketAddr,
    pub role: Role,
    pub neighbour_timeout: Duration,
    pub splitter_timeout: Duration,
    pub keepalive_interval: Duration,
    /// Start playing once this many consecutive chunks are held (capped by the join burst).
    pub start_chunks: u32,
    /// ... or this long after the first chunk.
    pub start_delay: Duration,
    /// Give up a missing head slot that blocks later data for this long.
    pub skip_after: Duration,
    pub max_neighbours: usize,
    /// Goodbyes sent to the splitter on leave, until it acknowledges.
    pub goodbye_retries: u32,
    /// The endpoint our team socket is bound at, when known: told to the splitter, which
    /// compares it with the one it sees (a NAT maps one to the other).
    pub local: Option<SocketAddr>,
    /// The pacer's first rate, in streams: it grows while the uplink's queue stays short and
    /// is cut when it does not. Too low, and every flood on a fast uplink lasts a round while
    /// the rate grows; above the uplink, the first floods overfill its queue while the team
    /// joins (BENCHMARKS.md, "Real uplinks", has both).
    pub pace_start: f64,
}

impl PeerConfig {
    pub fn new(splitter: SocketAddr) -> PeerConfig {
        PeerConfig {
            splitter,
            role: Role::Peer,
            neighbour_timeout: Duration::from_secs(10),
            splitter_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(1),
            start_chunks: 4,
            start_delay: Duration::from_millis(500),
            skip_after: Duration::from_secs(2),
            max_neighbours: wire::MAX_PEERS_IN_LIST,
            goodbye_retries: 3,
            local: None,
            pace_start: pacer::START_OVER_STREAM,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// The next piece of the stream, in chunk-number order.
    Deliver {
        no: ChunkNo,
        payload: Bytes,
    },
    /// Chunk `no` never arrived in time and was given up.
    Skipped {
        no: ChunkNo,
    },
    /// The stream's facts or title changed at the splitter.
    InfoChanged(super::StreamInfo),
    NeighbourAdded {
        id: PeerId,
        addr: SocketAddr,
    },
    NeighbourRemoved {
        id: PeerId,
        addr: SocketAddr,
    },
    /// The splitter said goodbye (or expelled us) or fell silent.
    SplitterGone,
    /// `leave` finished: the splitter acknowledged or the retries ran out.
    Left,
}

#[derive(Debug, Clone)]
pub struct NeighbourStats {
    pub id: PeerId,
    pub addr: SocketAddr,
    /// Whether it has been heard from (a greeted neighbour behind a closed NAT never is).
    pub heard: bool,
    pub debt: i32,
    pub pending: usize,
    pub last_seen: Instant,
}

#[derive(Debug, Clone, Default)]
pub struct PeerStats {
    pub from_splitter: u64,
    /// Trains sent to the splitter (see [`TRAIN_LEN`]).
    pub trains: u64,
    pub from_peers: u64,
    pub sent: u64,
    pub delivered: u64,
    pub skipped: u64,
    pub duplicates: u64,
    pub late: u64,
    pub out_of_window: u64,
    pub garbage: u64,
    pub complaints_sent: u64,
    pub requests_sent: u64,
    pub requests_served: u64,
    /// Requests left unanswered because our pacer had a backlog.
    pub requests_declined: u64,
    /// Of the requests served, those served although our pacer had a backlog, because the
    /// requester's playout waited on the chunk ([`Peer::serve_stalled`]).
    pub stalled_served: u64,
    pub prunes_sent: u64,
    pub neighbours_dropped_silence: u64,
    /// Members the splitter said do not relay, too slow or behind NATs ([`Message::Uplinks`]),
    /// as we know them.
    pub slow_members: usize,
    /// Gen C (DBS rule): neighbours dropped for owing too many chunks.
    pub neighbours_dropped_debt: u64,
    pub transmits_dropped: u64,
    /// Chunks from members that a Digest vouched for, and forged ones dropped.
    pub verified: u64,
    pub rejected: u64,
    /// Held chunks no Digest covered before their play time.
    pub unverified_dropped: u64,
    /// Datagrams dropped for a wrong tag or sender, replays, and from members known bad.
    pub bad_mac: u64,
    pub replays: u64,
    pub from_bad_members: u64,
    pub polluters_reported: u64,
    /// Digests checked, and Digests with a wrong signature.
    pub digests: u64,
    pub bad_signatures: u64,
    pub buffer_fill: u32,
    pub neighbours: Vec<NeighbourStats>,
    /// Our UDP endpoint as the splitter sees it (our NAT's mapping), once it has said.
    pub public_endpoint: Option<SocketAddr>,
    /// Neighbours the splitter introduced (hole punching).
    pub introductions: u64,
    /// The pacer: its rate (bytes/s), the queueing delay receivers last reported, and relayed
    /// copies dropped unsent (too late to matter).
    pub pace_rate: u64,
    pub queue_delay: Duration,
    /// What our uplink carries (bytes/s), as the pacer measured it lately.
    pub uplink_rate: Option<u64>,
    pub copies_dropped: u64,
    /// Queued copies of a splitter chunk of ours dropped because another member flooded it
    /// (the splitter resent it): ours would only have been duplicates.
    pub copies_overtaken: u64,
    /// Chunks we copied to our group as its relay (two-level floods, [`relay`]).
    pub group_relays: u64,
    /// How late members' flood copies come (recent worst): holes are waited for this long.
    pub lateness: Duration,
    /// How long after the splitter sent a chunk our playout plays it (a steady delay), once
    /// the splitter's clock is known.
    pub playout_delay: Option<Duration>,
}

impl PeerStats {
    /// Count what the playout buffer gave, as the event a peer emits for it.
    pub(crate) fn count_playout(&mut self, p: Playout) -> PeerEvent {
        match p {
            Playout::Deliver { no, payload } => {
                self.delivered += 1;
                PeerEvent::Deliver { no, payload }
            }
            Playout::Skipped { no } => {
                self.skipped += 1;
                PeerEvent::Skipped { no }
            }
        }
    }

    /// Count a chunk the playout buffer did not take as new.
    pub(crate) fn count_insert(&mut self, r: Insert) {
        match r {
            Insert::New => {}
            Insert::Duplicate => self.duplicates += 1,
            Insert::TooOld => self.late += 1,
            Insert::TooFar => self.out_of_window += 1,
        }
    }
}

/// Where a sealed datagram to a neighbour goes: out at once (the pacer let it go), to the
/// back of the control queue, or to its front.
#[derive(Clone, Copy)]
enum Lane {
    Now,
    Control,
    First,
}

#[derive(Debug)]
struct Neighbour {
    id: PeerId,
    addr: SocketAddr,
    debt: i32,
    last_seen: Instant,
    last_tx: Instant,
    /// Its Probes' one-way delay (its clock to ours, ms, wrapping) at their fastest: over
    /// the last minute or two (`base`), and in this minute (`base_next`), so that clock drift
    /// never reads as queueing.
    base_owd: Option<u32>,
    base_next: Option<u32>,
    base_since: Instant,
    /// We sent it a Probe (as a probe buddy), and how many since its last answer.
    probed: bool,
    unanswered: u16,
    /// Our pair key, the sequence of our datagrams to it, and its anti-replay window.
    key: Key,
    tx_seq: u64,
    rx: ReplayWindow,
    /// Heard from at least once; until then greeted again, `hellos_left` more times.
    heard: bool,
    hellos_left: u8,
    /// It answers no greeting of ours ([`Peer::greets_without_answer`]): not greeted again,
    /// and not given up for not answering. Its keepalives or copies are how we hear it.
    no_answer_due: bool,
    /// We took its first greeting without answering it: a second one means it waits for an
    /// answer (it is behind a NAT, or its view of the team is one level), and gets one.
    answer_held: bool,
}

impl Neighbour {
    /// Greeted as often as we greet, never heard, and expected to answer: given up after
    /// [`Peer::unheard_give_up`] (behind a closed NAT, or gone).
    fn greeted_in_vain(&self) -> bool {
        !self.heard && self.hellos_left == 0 && !self.no_answer_due
    }
}

#[derive(Debug)]
pub struct Peer {
    cfg: PeerConfig,
    id: PeerId,
    team: u32,
    neighbours: Vec<Neighbour>,
    /// Neighbour position by endpoint: every datagram is looked up here, so it must not be a
    /// scan (teams run to thousands of peers).
    index: HashMap<SocketAddr, usize>,
    /// Relayed copies wait here and leave at the rate our uplink takes.
    pacer: pacer::Pacer,
    /// Mean payload of the chunks we get (bytes), for the stream rate and a flood's size.
    chunk_bytes: f64,
    /// Our clock for Probes: milliseconds since this instant.
    clock0: Instant,
    /// Our latest splitter chunk and when it came: the stream's clock, which tells when any
    /// other chunk number left the splitter.
    own_ref: Option<(ChunkNo, Instant)>,
    probe_turn: usize,
    /// Our probe buddies: neighbours drawn at random (so that the team's answers to Probes
    /// spread over it), each kept until it leaves. A buddy's measure of our uplink is its
    /// fastest Probe from us, so a new buddy takes a new base, most likely behind a queue by
    /// then; buddies that were list positions changed with every newcomer of a joining
    /// crowd, and a slow uplink read a queue seconds deep as none.
    probe_buddies: Vec<SocketAddr>,
    /// How late chunks from other members come (after the splitter sent them, Digest wait
    /// included): the recent worst, decaying by [`LATENESS_DECAY`] a second. Holes are
    /// waited for this long before they are asked for, reported or skipped.
    lateness: Duration,
    lateness_at: Instant,
    /// The wait holes were last given ([`Peer::set_hole_waits`]).
    hole_wait: Duration,
    /// When the chunk rate's samples last retimed them.
    rate_retimed_at: Instant,
    /// The last few chunks the splitter gave us, for neighbours that greet us late.
    own_recent: VecDeque<ChunkNo>,
    /// No neighbour deadline (keepalive, silence, pending delay, debt) falls before this. It
    /// is recomputed by `handle_timeout` and only ever lowered in between, so that
    /// `poll_timeout` is O(1) rather than a walk over thousands of neighbours per datagram.
    nb_deadline: Instant,
    /// Gen D forwarding table for chunks of other origins: who asked for them.
    forward: BTreeMap<PeerId, Vec<SocketAddr>>,
    /// Recent chunks whose first copy reached us as a repair (an answer to our Request, or
    /// routed to us since), and who sent it: when the origin's own copy follows, its flood
    /// reaches us and that route is pruned ([`Peer::on_duplicate`]).
    repaired_from: VecDeque<(ChunkNo, SocketAddr)>,
    /// The team size from which the team floods in two levels ([`relay`]), as the splitter
    /// said (`usize::MAX`: never).
    relay_from: usize,
    buffer: PlayoutBuffer,
    /// Holes we tell the splitter of: all of them as a monitor, else those we witness
    /// ([`relay::witnesses`]).
    complain: HoleScanner,
    monitor: bool,
    request: HoleScanner,
    holes: Vec<ChunkNo>,
    info_epoch: u32,
    /// A verified Info waiting for playout to reach its first chunk.
    next_info: Option<(ChunkNo, super::StreamInfo)>,
    /// The content type of the newest Info (or the join reply's).
    content_type: String,
    /// The last sign of a live splitter: a datagram from it, or a chunk new to us (only the
    /// splitter numbers chunks, so fresh ones prove it is alive however big the round).
    last_splitter: Instant,
    splitter_last_tx: Instant,
    /// When we last asked the splitter whether it is there ([`Peer::ask_splitter`]).
    splitter_asked: Instant,
    /// When our last Report went out: one is due every keepalive interval, whatever else we
    /// send the splitter (a monitor's complaints must not starve it: the splitter decides
    /// relaying and liveness on it).
    last_report: Instant,
    /// Members the splitter says do not relay (their uplinks are too slow, or they are behind
    /// NATs): our two-level floods pass them over as relays, and our requests go elsewhere
    /// (at most [`wire::MAX_PEERS_IN_LIST`]).
    slow: HashSet<PeerId>,
    /// When our last Train went out, and how many splitter chunks we had then.
    train_at: Instant,
    train_mark: u64,
    /// Estimated time between consecutive chunk numbers, and the mark it is sampled from.
    chunk_interval: Option<Duration>,
    rate_mark: Option<(ChunkNo, Instant)>,
    splitter_gone: bool,
    leaving: Option<Leaving>,
    /// Tokens for serving stalled requesters while our floods are late, and when they were
    /// last topped up ([`Peer::serve_stalled`]).
    stalled_serves: f64,
    stalled_at: Instant,
    rng: XorShift,
    transmits: VecDeque<Transmit>,
    events: VecDeque<PeerEvent>,
    stats: PeerStats,
    now: Instant,
    trust: trust::Trust,
}

impl Peer {
    /// Build the peer from the splitter's handshake; schedules a Hello to the splitter (to
    /// open NAT bindings) and to every listed peer, and plays the join burst at once. The
    /// caller has checked the reply's signature (and pinned key) and unmasked its keys.
    pub fn new(config: PeerConfig, reply: JoinReply, local_seed: u64, now: Instant) -> Peer {
        let older = reply
            .peers
            .iter()
            .zip(&reply.pair_keys)
            .map(|((id, _), k)| (*id, *k))
            .collect();
        let b = reply.buffer_size.clamp(4, 1 << 16);
        let lag = b / 2;
        let start = reply.burst.first().map_or(reply.next_chunk, |c| c.no);
        let start_chunks = if reply.burst.is_empty() {
            config.start_chunks
        } else {
            config.start_chunks.min(reply.burst.len() as u32)
        };
        let buffer = PlayoutBuffer::new(
            PlayoutConfig {
                capacity: b,
                lag,
                start_chunks,
                start_delay: config.start_delay,
                skip_after: config.skip_after + auth::MAX_BATCH_DELAY,
            },
            start,
        );
        let mut p = Peer {
            id: reply.peer_id,
            team: reply.team_id,
            neighbours: Vec::new(),
            index: HashMap::new(),
            pacer: pacer::Pacer::new(config.pace_start),
            chunk_bytes: 0.0,
            clock0: now,
            // The join reply is the stream's clock until our own splitter chunks are (a
            // member with no share gets none, and its holes would wait on the first guess
            // of a flood's lateness for good: in a crowd of 300 on half-slow uplinks, slow
            // joiners played 30-37 s behind with every chunk in their buffers).
            own_ref: (reply.next_chunk.0 > 0).then(|| (reply.next_chunk.minus(1), now)),
            probe_turn: 0,
            probe_buddies: Vec::new(),
            lateness: Duration::ZERO,
            hole_wait: Duration::ZERO,
            rate_retimed_at: now,
            lateness_at: now,
            own_recent: VecDeque::new(),
            nb_deadline: now + config.keepalive_interval,
            forward: BTreeMap::new(),
            repaired_from: VecDeque::new(),
            relay_from: match reply.relay_from {
                0 => usize::MAX,
                n => n as usize,
            },
            buffer,
            complain: monitor_scanner(lag / 2),
            monitor: config.role == Role::Monitor,
            request: HoleScanner::with_delay(lag * 3 / 4, REQUEST_AFTER + auth::MAX_BATCH_DELAY)
                .with_retries(REQUEST_RETRIES, REQUEST_RETRY),
            holes: Vec::new(),
            info_epoch: reply.info_epoch,
            next_info: None,
            content_type: reply.info.content_type.clone(),
            last_splitter: now,
            splitter_last_tx: now,
            splitter_asked: now,
            last_report: now,
            slow: reply
                .slow
                .iter()
                .copied()
                .take(wire::MAX_PEERS_IN_LIST)
                .collect(),
            train_at: now,
            train_mark: 0,
            chunk_interval: None,
            rate_mark: None,
            splitter_gone: false,
            leaving: None,
            stalled_serves: STALLED_SERVE_BURST,
            stalled_at: now,
            rng: XorShift::new(local_seed),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: PeerStats::default(),
            now,
            trust: trust::Trust::new(reply.peer_key, reply.splitter_key, older, b),
            cfg: config,
        };
        let hello = Message::Hello { from: p.id };
        p.send_splitter(hello.clone());
        // Our own group first: its members relay chunks to us, and only to members they know
        // (the greetings to a large team take seconds at the pacer's starting rate). Past
        // our neighbour cap, it is the rest of the team we do not know.
        let mut listed: Vec<_> = reply.peers.iter().zip(&reply.pair_keys).collect();
        let known = listed.len().min(p.cfg.max_neighbours);
        if let Some(k) = relay::groups(known + 1, p.relay_from) {
            let ours = relay::group(p.id, k);
            listed.sort_by_key(|((id, _), _)| relay::group(*id, k) != ours);
        }
        listed.truncate(p.cfg.max_neighbours);
        for ((id, addr), key) in listed {
            if *addr != p.cfg.splitter && p.neighbour_index(*addr).is_none() {
                p.add_neighbour(*id, *addr, *key, None);
                let i = p.neighbours.len() - 1;
                p.send_to(i, hello.clone());
            }
        }
        for c in reply.burst {
            // Burst chunks are old news for the team: store, never relay. The splitter's
            // signature over the reply vouches for them.
            p.trust
                .note_hash(c.no, super::auth::payload_hash(&c.payload));
            let len = c.payload.len();
            if p.buffer.insert(now, c.no, c.origin, c.payload) == Insert::New {
                p.note_chunk_bytes(len);
                p.stats.from_splitter += 1;
            }
        }
        // The splitter's own measure of the stream: our pacer, Digest waits and hole timers
        // start right, long before our own samples (from its chunks to us) could say.
        if reply.chunk_interval_us > 0 {
            let iv = Duration::from_micros(u64::from(reply.chunk_interval_us));
            p.chunk_interval = Some(iv);
            // Until floods have been measured, expect them as late as a paced flood at the
            // stream's rate can be: a round (each member floods once per round). Waiting less
            // would ask for copies still queued at their origins, on uplinks with no room.
            // In two levels, a flood waits behind about three groups' worth of copies.
            let members = reply.peers.len() + 1;
            let copies = relay::groups(members, p.relay_from)
                .map_or(members as u32, |k| 3 * k)
                .min(1 << 16);
            let round = iv * copies;
            p.lateness = round.min(p.copy_deadline());
            p.lateness_at = now;
        }
        // A steady playout starts from its schedule (see `keep_schedule`).
        p.buffer.await_schedule();
        p.retime_scanners();
        // While our uplink is idle, ahead of the greetings the pacer holds: the splitter
        // sizes our share by it. The pacer's bucket starts now, in debt for it.
        p.pacer.start(now);
        p.send_train();
        p.playout(now);
        p
    }

    /// A Train to the splitter: [`TRAIN_LEN`] datagrams at once, ahead of anything queued.
    /// The pacer is charged for it like any datagram (left out of its account, the Train's
    /// 6 KB stood in the router queue of a 1.25 × uplink ahead of our first copies:
    /// simulated flash crowds of 100 on such uplinks lost 0.022% instead of 0.006%).
    fn send_train(&mut self) {
        let pad = (TRAIN_BYTES - wire::HEADER_LEN - 2 - super::auth::TRAILER_LEN) as u16;
        for seq in 0..TRAIN_LEN {
            self.send_splitter(Message::Train {
                seq,
                count: TRAIN_LEN,
                pad,
            });
        }
        self.stats.trains += 1;
        self.train_at = self.now;
        self.train_mark = self.stats.from_splitter;
    }

    pub fn id(&self) -> PeerId {
        self.id
    }

    fn neighbour_index(&self, addr: SocketAddr) -> Option<usize> {
        self.index.get(&addr).copied()
    }

    /// How long one splitter round lasts, as far as we can tell: every neighbour (and we)
    /// get one splitter chunk per round, so each of them sends us a chunk about that often.
    fn round_estimate(&self) -> Duration {
        self.chunk_interval
            .map_or(Duration::ZERO, |d| d * (self.neighbours.len() as u32 + 1))
    }

    /// How long without a splitter chunk before we send another Train ([`TRAIN_AGAIN`]).
    fn train_again(&self) -> Duration {
        TRAIN_AGAIN.max(self.round_estimate() * 3)
    }

    /// Keepalives to a neighbour only fill the gaps between the chunks we relay to it, once a
    /// round; in big teams a fixed 1 s would be an N² mesh of datagrams bigger than the stream.
    fn mesh_keepalive(&self) -> Duration {
        let most = if self.behind_nat() {
            MAX_MESH_KEEPALIVE
        } else {
            MAX_PUBLIC_KEEPALIVE
        };
        self.round_estimate().clamp(
            self.cfg.keepalive_interval,
            most.max(self.cfg.keepalive_interval),
        )
    }

    /// How long after greeting an unheard neighbour with `left` greetings left we greet it
    /// again: [`HELLO_RETRY`] behind a NAT (punching a hole takes both sides' greetings, soon
    /// after each other), doubling from a public endpoint. (Every 0.4 s from there too, a
    /// simulated flash crowd of 1000 on half-slow uplinks greeted members eight times each
    /// and gave up those whose answers were still queued, 76 per member, which then got no
    /// floods until they spoke: 0.12% was lost in the first minute even with answers ahead
    /// of greetings, 0.02% with doubling gaps. Behind NATs, doubling gaps lost more: floods
    /// went longer into NATs that never opened.)
    fn hello_gap(&self, left: u8) -> Duration {
        if self.behind_nat() {
            return HELLO_RETRY;
        }
        let sent = (HELLO_TRIES - 1).saturating_sub(left).min(3);
        (HELLO_RETRY * (1 << sent)).min(PUBLIC_HELLO_RETRY_MAX)
    }

    /// How long after it was added an unheard neighbour, greeted [`HELLO_TRIES`] times, is
    /// given up: a little longer than the greetings take.
    fn unheard_give_up(&self) -> Duration {
        if self.behind_nat() {
            return UNHEARD_GIVE_UP;
        }
        (1..HELLO_TRIES)
            .map(|left| self.hello_gap(left))
            .sum::<Duration>()
            + PUBLIC_HELLO_RETRY_MAX
    }

    /// Whether a NAT may stand between us and the team: the splitter sees us elsewhere than
    /// where we are bound, or has not said yet (bound to a wildcard address counts as NATed).
    fn behind_nat(&self) -> bool {
        !matches!(
            (self.stats.public_endpoint, self.cfg.local),
            (Some(public), Some(local)) if public == local
        )
    }

    /// Silence after which a neighbour is dropped: three of its longest keepalive gaps (which
    /// it derives from the same round as we do: a public neighbour's), never less than the
    /// configured timeout.
    fn neighbour_timeout(&self) -> Duration {
        let gap = self.round_estimate().clamp(
            self.cfg.keepalive_interval,
            MAX_PUBLIC_KEEPALIVE.max(self.cfg.keepalive_interval),
        );
        self.cfg.neighbour_timeout.max(gap * 3)
    }

    /// A chunk new to us arrived: the splitter is alive.
    fn note_fresh_chunk(&mut self, now: Instant, len: usize) {
        self.last_splitter = now;
        self.note_chunk_bytes(len);
    }

    fn note_chunk_bytes(&mut self, len: usize) {
        self.chunk_bytes = super::mean_chunk_bytes(self.chunk_bytes, len);
    }

    /// A splitter chunk new to us: the splitter sends each chunk as the source makes it, so
    /// its chunks to us are the stream's clock, and the chunk rate is sampled from them.
    /// (Chunks from members are not: the join burst and floods that ran late come in far
    /// faster than the stream, and made a pacer start many times too fast.)
    fn sample_chunk_rate(&mut self, now: Instant, no: ChunkNo) {
        match self.rate_mark {
            Some((mark, at)) if no.is_after(mark) => {
                let d = no.diff(mark) as u32;
                let span = now.saturating_duration_since(at);
                if d >= RATE_SAMPLE_CHUNKS || span >= RATE_SAMPLE_SPAN {
                    let sample = span / d;
                    // Chunks that came together (read in one batch, at one instant) say
                    // nothing of the rate: measure again from here. (An interval of 0 made
                    // every queued copy stale at once: a whole flood was dropped unsent.)
                    if sample < MIN_CHUNK_INTERVAL {
                        self.rate_mark = Some((no, now));
                        return;
                    }
                    self.chunk_interval = Some(match self.chunk_interval {
                        // Smooth over a few samples: the splitter's sends jitter.
                        Some(old) => (old * 3 + sample) / 4,
                        None => sample,
                    });
                    self.rate_mark = Some((no, now));
                    self.retime_scanners();
                }
            }
            Some(_) => {}
            None => self.rate_mark = Some((no, now)),
        }
    }

    /// A member's chunk `no` came: how long after the splitter sent it (by the stream's
    /// clock, our own splitter chunks) feeds the lateness holes are waited for.
    fn note_lateness(&mut self, now: Instant, no: ChunkNo) {
        let (Some((r, t)), Some(iv)) = (self.own_ref, self.chunk_interval) else {
            return;
        };
        let ahead = no.diff(r);
        let sent = if ahead >= 0 {
            t + iv * ahead.min(1 << 16) as u32
        } else {
            t.checked_sub(iv * (-ahead).min(1 << 16) as u32)
                .unwrap_or(t)
        };
        let late = now.saturating_duration_since(sent);
        let decay = now
            .saturating_duration_since(self.lateness_at)
            .as_secs_f64();
        let decayed = self.lateness.mul_f64(LATENESS_DECAY.powf(decay.min(600.0)));
        self.lateness_at = now;
        // Capped by the lag: a hole is skipped then anyway.
        self.lateness = decayed.max(late).min(self.copy_deadline());
        // Holes are retimed with the chunk rate's samples, taken from our own splitter
        // chunks: once a round, seconds apart in a small team. Where those are stale (a round
        // of 1000 members is a minute, a member with no share gets none), holes follow the
        // lateness whenever it moves: while a large team formed on tight uplinks and its
        // floods grew late, holes kept the first minute's wait, every member asked for nearly
        // every chunk (2.5 million Requests in 120 s at N = 1000, 7% of every uplink) and
        // skipped chunks still on their way. (Following it at once in small teams too lost
        // more under attack: LRS resends and repairs then raise the waits step by step.)
        let stale = now.saturating_duration_since(self.rate_retimed_at) >= RETIME_STALE;
        if stale && self.lateness.abs_diff(self.hole_wait) > self.hole_wait / 8 + RETIME_SLACK {
            self.set_hole_waits();
        }
    }

    /// Holes wait out the Digest delay, which follows the chunk rate, and the lateness of
    /// members' chunks (a flood takes as long as its sender's uplink needs); so does playout,
    /// before it gives up a slot.
    fn retime_scanners(&mut self) {
        if let Some((r, t)) = self.own_ref {
            self.keep_schedule(r, t);
        }
        if let Some(d) = self.chunk_interval.filter(|d| !d.is_zero()) {
            self.pacer
                .set_stream_rate(self.chunk_bytes / d.as_secs_f64());
        }
        self.rate_retimed_at = self.now;
        self.set_hole_waits();
    }

    /// Playout keeps a steady delay after the splitter: the buffer's schedule, from our own
    /// splitter chunk `no`, which came at `at`, and the chunk rate.
    fn keep_schedule(&mut self, no: ChunkNo, at: Instant) {
        match self.chunk_interval {
            Some(iv) => self.buffer.set_schedule(no, at, iv),
            None => self.buffer.clear_schedule(),
        }
    }

    /// How long a hole waits (for a request, a complaint, a skip): the Digest delay or the
    /// floods' lateness, whichever is longer.
    fn set_hole_waits(&mut self) {
        self.hole_wait = self.lateness;
        let batch = auth::batch_delay(self.chunk_interval, self.buffer.capacity());
        let wait = batch.max(self.lateness);
        self.buffer.set_skip_after(self.cfg.skip_after + wait);
        self.complain.set_delay(COMPLAIN_AFTER + wait);
        self.request.set_delay(REQUEST_AFTER + wait);
    }

    /// A new neighbour with our pair `key`; `seq` is the sequence of the datagram that
    /// introduced it, if any (its anti-replay window starts there).
    fn add_neighbour(
        &mut self,
        id: PeerId,
        addr: SocketAddr,
        key: Key,
        seq: Option<u64>,
    ) -> Option<usize> {
        if self.neighbours.len() >= self.cfg.max_neighbours {
            return None;
        }
        self.index.insert(addr, self.neighbours.len());
        let due = self.now + self.mesh_keepalive();
        self.nb_deadline = self.nb_deadline.min(due);
        self.neighbours.push(Neighbour {
            heard: false,
            hellos_left: if seq.is_some() { 0 } else { HELLO_TRIES - 1 },
            no_answer_due: false,
            answer_held: false,
            id,
            addr,
            debt: 0,
            last_seen: self.now,
            last_tx: self.now,
            base_owd: None,
            base_next: None,
            base_since: self.now,
            probed: false,
            unanswered: 0,
            key,
            // Our clock in µs, not 0: a member we dropped (silent, or gone) and took back
            // may never have dropped us, and its replay window would refuse a count started
            // over (a simulated team of 300 refused 5,000 datagrams so). A member gets far
            // fewer than a million datagrams a second from us.
            tx_seq: self.now.saturating_duration_since(self.clock0).as_micros() as u64,
            rx: {
                let mut w = ReplayWindow::default();
                if let Some(s) = seq {
                    w.accept(s);
                }
                w
            },
        });
        self.event(PeerEvent::NeighbourAdded { id, addr });
        Some(self.neighbours.len() - 1)
    }

    /// A random neighbour to ask for a missing chunk, passing over (if a few draws find
    /// another) one greeted again and again and never heard (it is behind a closed NAT), and
    /// in a two-level team one of our group (when its relay failed us, it failed them too).
    fn request_target(&mut self) -> usize {
        let n = self.neighbours.len();
        let groups = self.relay_groups();
        let mut i = self.rng.below(n);
        for _ in 0..8 {
            let nb = &self.neighbours[i];
            let reachable = nb.heard || nb.hellos_left > 0 || nb.no_answer_due;
            let elsewhere = groups.is_none_or(|k| relay::relays(self.id, nb.id, k));
            // A member too slow to relay answers behind seconds of queue, if at all; one
            // behind a NAT may not reach us.
            if reachable && elsewhere && !self.slow.contains(&nb.id) {
                break;
            }
            i = self.rng.below(n);
        }
        i
    }

    /// The splitter introduces member `id` at `endpoint` (hole punching): greet it now, as it
    /// greets us, and again until it is heard from.
    fn on_introduce(&mut self, id: PeerId, endpoint: SocketAddr, masked: Key) {
        if id == self.id || id == PeerId::NONE || endpoint == self.cfg.splitter {
            return;
        }
        let mut key = masked;
        super::auth::intro_mask(self.trust.key(), self.team, id, &mut key);
        if id.0 < self.id.0 {
            // An older member our reply did not list: its key comes only this way.
            self.trust.learn_older(id, key);
        }
        if self.neighbours.iter().any(|n| n.id == id) || self.neighbour_index(endpoint).is_some() {
            return;
        }
        self.stats.introductions += 1;
        if let Some(i) = self.add_neighbour(id, endpoint, key, None) {
            // A newer member greets us itself (we are in its reply's list), and a public
            // endpoint needs no greeting to let its chunks in: in a team large enough to
            // flood in two levels (where greeting each other doubles a flash crowd's
            // control, seconds of every uplink) we greet it only if its greeting has not
            // come by our next check of the neighbours (the retries of an unheard one), and
            // one of another group not at all ([`Peer::greets_without_answer`]). Behind a
            // NAT, our greeting opens our side at once.
            if id.0 < self.id.0 || self.behind_nat() || self.relay_groups().is_none() {
                let me = self.id;
                self.send_to(i, Message::Hello { from: me });
            }
        }
    }

    fn remove_neighbour(&mut self, i: usize) {
        let n = self.neighbours.remove(i);
        self.index.remove(&n.addr);
        // Removals are rare (goodbyes, timeouts); re-number what moved down.
        for (k, m) in self.neighbours.iter().enumerate().skip(i) {
            self.index.insert(m.addr, k);
        }
        for list in self.forward.values_mut() {
            list.retain(|a| *a != n.addr);
        }
        self.forward.retain(|_, l| !l.is_empty());
        self.event(PeerEvent::NeighbourRemoved {
            id: n.id,
            addr: n.addr,
        });
    }

    fn event(&mut self, e: PeerEvent) {
        push_bounded(&mut self.events, MAX_EVENTS, e);
    }

    /// Seal `msg` for a receiver under `key`, as datagram `seq` of ours to it.
    fn seal(&self, msg: Message, key: &Key, seq: u64, hash: Option<&[u8; 32]>) -> Option<Bytes> {
        let p = Packet {
            team: self.team,
            msg,
        };
        wire::seal(&p, self.id, seq, key, hash).ok()
    }

    /// Answer a member we do not track (sealed under our pair `key`, numbered in its own
    /// sequence); false if it could not be sealed.
    fn tell_stranger(
        &mut self,
        to: SocketAddr,
        key: &Key,
        msg: Message,
        hash: Option<&[u8; 32]>,
    ) -> bool {
        self.trust.stranger_tx += 1;
        let seq = self.trust.stranger_tx;
        let Some(d) = self.seal(msg, key, seq, hash) else {
            return false;
        };
        self.queue(to, d);
        true
    }

    /// Send a sealed datagram: to the splitter at once (rare, small, and its Reports and
    /// goodbyes must not wait behind a flood), to anyone else through the pacer.
    fn queue(&mut self, to: SocketAddr, data: Bytes) {
        if to != self.cfg.splitter {
            self.pacer.push_control(to, data);
            return;
        }
        self.transmit(to, data);
    }

    fn transmit(&mut self, to: SocketAddr, data: Bytes) {
        // Every datagram uses the uplink, with its IP and UDP headers.
        self.pacer.charge(data.len() + pacer::UDP_IP_HEADERS);
        self.push_transmit(to, data);
    }

    fn push_transmit(&mut self, to: SocketAddr, data: Bytes) {
        if push_bounded(&mut self.transmits, MAX_TRANSMITS, Transmit { to, data }) {
            self.stats.transmits_dropped += 1;
        }
    }

    fn send_splitter(&mut self, msg: Message) {
        self.trust.splitter_tx += 1;
        let (key, seq) = (*self.trust.key(), self.trust.splitter_tx);
        if let Some(d) = self.seal(msg, &key, seq, None) {
            self.splitter_last_tx = self.now;
            let to = self.cfg.splitter;
            self.queue(to, d);
        }
    }

    fn send_to(&mut self, i: usize, msg: Message) {
        self.send_hashed(i, msg, None);
    }

    /// Seal `msg` for neighbour `i` and queue it behind the control already queued.
    fn send_hashed(&mut self, i: usize, msg: Message, hash: Option<&[u8; 32]>) {
        self.send_sealed(i, msg, hash, Lane::Control);
    }

    /// Seal `msg` for neighbour `i` and send it by `lane`.
    fn send_sealed(&mut self, i: usize, msg: Message, hash: Option<&[u8; 32]>, lane: Lane) {
        self.neighbours[i].tx_seq += 1;
        let (key, seq) = (self.neighbours[i].key, self.neighbours[i].tx_seq);
        if let Some(d) = self.seal(msg, &key, seq, hash) {
            self.neighbours[i].last_tx = self.now;
            let to = self.neighbours[i].addr;
            match lane {
                Lane::Now => self.transmit(to, d),
                Lane::Control => self.queue(to, d),
                Lane::First => self.pacer.push_control_first(to, d),
            }
        }
    }

    /// Send held chunk `no` to neighbour `i` (if still held), asking it to `relay` it to its
    /// group; counts the debt. A paced copy goes `now`; anything else queues ahead of the
    /// copies.
    fn send_chunk(&mut self, i: usize, no: ChunkNo, relay: Option<Relay>, now: bool) {
        let Some(s) = self.buffer.get(no) else { return };
        let msg = Message::Chunk {
            no,
            origin: s.origin,
            relay,
            payload: s.payload.clone(),
        };
        let own = s.origin == self.id;
        let hash = self.trust.hash_of(no).copied();
        let lane = if now { Lane::Now } else { Lane::Control };
        self.send_sealed(i, msg, hash.as_ref(), lane);
        // Debt counts the flood (shown in status and Reports); chunks it asked for or routed
        // to it are a service, not a debt.
        if own {
            self.neighbours[i].debt = self.neighbours[i].debt.saturating_add(1);
        }
        self.stats.sent += 1;
    }

    /// Queue a copy of held chunk `no` for neighbour `i`; the pacer sends it.
    fn enqueue(&mut self, i: usize, no: ChunkNo) {
        let c = self.copy_for(i, no, None);
        self.pacer.push(c);
    }

    /// Queue a first-level copy of our own chunk `no` for neighbour `i`, the relay of its
    /// group among `relay`'s: it goes ahead of every other copy (the whole team waits on it).
    fn enqueue_first(&mut self, i: usize, no: ChunkNo, relay: Relay) {
        let c = self.copy_for(i, no, Some(relay));
        self.pacer.push_first(c);
    }

    /// Queue a spare copy of held chunk `no` for neighbour `i` (a newcomer's catch-up): it
    /// never makes our floods late ([`SERVE_BACKLOG`]).
    fn enqueue_spare(&mut self, i: usize, no: ChunkNo) {
        let c = self.copy_for(i, no, None);
        self.pacer.push_spare(c);
    }

    fn copy_for(&self, i: usize, no: ChunkNo, relay: Option<Relay>) -> pacer::Copy {
        pacer::Copy {
            to: self.neighbours[i].addr,
            no,
            at: self.now,
            relay,
        }
    }

    /// Greet unheard neighbours again only when the last greetings are about to leave: a
    /// newcomer greets the whole team at once, and a retry every [`HELLO_RETRY`] on top of
    /// Hellos still queued multiplied them (their answers came too late all the same).
    fn may_greet_again(&self) -> bool {
        self.pacer.control_backlog() < HELLO_RETRY
    }

    /// Whether greetings between us and member `other` go unanswered: in our two-level view
    /// of the team, from our public endpoint, to or from a member of another group. Every
    /// joiner greets the whole team, and answers went ahead of every copy: in a flash crowd
    /// of 1000 on 1.25 × uplinks this handshake (64 B each way a pair, 3.2 s of such an
    /// uplink) held every copy in the team back from 2.5 s to 5.5 s. A member of another
    /// group needs no answer to be flooded to (its endpoint is public, or it greets again:
    /// see `answer_held`); its keepalives, a round apart at most, tell us it is there.
    /// Simulated, that flash crowd: 866 → 452 members stood still, p50 lag 16.3 → 9.7 s,
    /// Requests 176k → 40k (BENCHMARKS.md). Behind a NAT greetings still go both ways: they
    /// punch the holes.
    fn greets_without_answer(&self, other: PeerId) -> bool {
        !self.behind_nat()
            && self
                .relay_groups()
                .is_some_and(|k| relay::group(other, k) != relay::group(self.id, k))
    }

    /// Unheard members we greet in vain ([`Peer::greets_without_answer`]) are greeted no
    /// more, nor given up. Checked again as our view grows and once the splitter says where
    /// it sees us: the first members of a crowd greet it while the team is one level, and
    /// (without this check) gave up as unreachable the members that no longer answered;
    /// their views shrank (simulated: to 733 of 999), and the relays left copied 22 times a
    /// second, more than their uplinks carried.
    fn expect_fewer_answers(&mut self) {
        for i in 0..self.neighbours.len() {
            let n = &self.neighbours[i];
            if !n.heard && !n.no_answer_due && self.greets_without_answer(n.id) {
                let n = &mut self.neighbours[i];
                n.no_answer_due = true;
                n.hellos_left = 0;
            }
        }
    }

    /// The groups our team floods in, if it is large enough for two levels ([`relay`]).
    fn relay_groups(&self) -> Option<u32> {
        relay::groups(self.neighbours.len() + 1, self.relay_from)
    }

    fn neighbour_ids(&self) -> Vec<PeerId> {
        self.neighbours.iter().map(|n| n.id).collect()
    }

    /// In a large team, who gets our flood of the chunk (or signed message) numbered `key`,
    /// in how many groups: one relay of each other group (not one the splitter says is too
    /// slow, while its group has another), then our group ([`relay`]).
    fn two_level_targets(&self, key: u32) -> Option<(u32, relay::Targets)> {
        let k = self.relay_groups()?;
        let ids = self.neighbour_ids();
        let able = |i: usize| !self.slow.contains(&ids[i]);
        let me_able = !self.slow.contains(&self.id);
        Some((
            k,
            relay::origin_targets(self.id, key, k, &ids, able, me_able),
        ))
    }

    /// Our flood of splitter chunk `no`: a copy to every neighbour, or in two levels (the
    /// relays' copies say so, with our group count and their share of their groups; the rest
    /// of those groups we copy to ourselves, after our own group).
    fn flood_own(&mut self, no: ChunkNo) {
        if let Some((k, t)) = self.two_level_targets(no.0) {
            let groups = u16::try_from(k).unwrap_or(u16::MAX);
            for (i, share) in t.relays {
                self.enqueue_first(i, no, Relay { groups, share });
            }
            for i in t.own.into_iter().chain(t.direct) {
                self.enqueue(i, no);
            }
            return;
        }
        // A new order each flood: each neighbour is sometimes among the first (its Probes
        // then show our uplink's bare delay).
        let n = self.neighbours.len();
        let first = self.rng.below(n);
        for k in 0..n {
            self.enqueue((first + k) % n, no);
        }
    }

    /// Chunk `no`, new to us, came straight from its origin, neighbour `i`, which made us the
    /// relay of our group among `r.groups`: copy it to the rest of the group, within the share
    /// the origin gave us (it copies to the others), in the origin's groups
    /// ([`Peer::groups_of_relay`]).
    fn relay_to_group(&mut self, i: usize, no: ChunkNo, r: Relay) {
        let Some(k) = self.groups_of_relay(r.groups) else {
            return;
        };
        let ids = self.neighbour_ids();
        let targets = relay::relay_share(self.id, no.0, k, r.share, &ids, Some(i));
        self.stats.group_relays += 1;
        for j in targets {
            self.enqueue(j, no);
        }
    }

    /// The group count an origin or flooder asked its relay to copy in: the asker's, which
    /// groups alike whatever our view of the team; one that would make our group much larger
    /// than in our view (an origin that asks for few groups, a flood to all) counts for ours.
    fn groups_of_relay(&mut self, groups: u16) -> Option<u32> {
        let members = self.neighbours.len() + 1;
        relay::plausible_groups(groups, members).or_else(|| {
            self.stats.garbage += 1;
            self.relay_groups()
        })
    }

    /// A signed message from the splitter (a Digest, keyed by its first chunk; an Info, by
    /// its epoch) to the team, as our own chunks go ([`Peer::flood_own`]): the copies to other
    /// groups' relays carry our group count (a RelayDigest or RelayInfo), and only those are
    /// copied on.
    fn flood_signed(&mut self, msg: &Message, key: u32) {
        let Some((k, t)) = self.two_level_targets(key) else {
            for i in 0..self.neighbours.len() {
                self.send_to(i, msg.clone());
            }
            return;
        };
        let marked = msg
            .clone()
            .with_signed_relay(Some(u16::try_from(k).unwrap_or(u16::MAX)));
        for (i, _) in t.relays {
            self.send_to(i, marked.clone());
        }
        for i in t.own {
            self.send_to(i, msg.clone());
        }
    }

    /// A signed message new to us from neighbour `i` that made us its group's relay (in
    /// `groups` groups): on to the rest of our group, unmarked. Marked only on a flooder's
    /// copies to relays: relaying whatever came from another group in our own view (repairs
    /// too, and views differ) sent each Digest to a team of 1,000 behind NATs three times
    /// over (simulated: 103 relays a Digest instead of 31, 0.067 × the stream of every
    /// member's upload).
    fn relay_signed(&mut self, i: usize, msg: &Message, groups: u16) {
        let Some(k) = self.groups_of_relay(groups) else {
            return;
        };
        let ids = self.neighbour_ids();
        for j in relay::own_group(self.id, k, &ids, Some(i)) {
            self.send_to(j, msg.clone());
        }
    }

    /// Whether neighbour `i`'s copy of a chunk of `origin` is part of a flood (straight from
    /// its origin, or from a member of our group: its relay), not a repair: its lateness is a
    /// flood's.
    fn is_flood_copy(&self, i: usize, origin: PeerId) -> bool {
        let sender = self.neighbours[i].id;
        sender == origin
            || self
                .relay_groups()
                .is_some_and(|k| !relay::relays(self.id, sender, k))
    }

    /// How long a queued copy stays worth sending: its receivers play it about a lag after
    /// the splitter sent it, and ask others for it before that.
    fn copy_deadline(&self) -> Duration {
        let lag = self.buffer.capacity() / 2;
        self.chunk_interval
            .map_or(Duration::from_secs(10), |d| d * lag * 3 / 4)
    }

    /// Send the copies the pacer lets go now; a Probe follows every few.
    fn send_paced(&mut self) {
        let now = self.now;
        loop {
            // A greeting still queued to a member heard from since (it greeted us first, and
            // our answer went ahead) would only ask it for an answer nobody needs.
            let (index, neighbours) = (&self.index, &self.neighbours);
            let next = self.pacer.next_control(now, |to, d| {
                wire::peek_type(d) != Some(wire::ty::HELLO)
                    || index.get(&to).is_none_or(|i| !neighbours[*i].heard)
            });
            let Some((to, d)) = next else { break };
            self.push_transmit(to, d);
            // A newcomer's greetings to a large team (and its answers to theirs) are seconds
            // of control at the starting rate, and the rate grows only on Probes' answers: a
            // Probe follows control too while that much waits. (Not when less does: a Probe
            // behind control on a slow uplink may be a buddy's first, and a first Probe that
            // queued makes every later queue look shorter; half-slow teams of ten lost 0.37%
            // instead of 0.04%.)
            if self.pacer.control_backlog() >= CONTROL_PROBES {
                self.probe(now, false);
            }
        }
        let stale = now.checked_sub(self.copy_deadline()).unwrap_or(self.clock0);
        while let Some(c) = self.pacer.next_due(now, stale) {
            let Some(i) = self.neighbour_index(c.to) else {
                continue;
            };
            if self.buffer.get(c.no).is_none() {
                continue;
            }
            self.send_chunk(i, c.no, c.relay, true);
            self.probe(now, true);
        }
    }

    /// A paced datagram went out (`copy`: a chunk copy, else a control datagram): a Probe
    /// follows every few copies, and one at least every [`pacer::PROBE_GAP`] while they go.
    fn probe(&mut self, now: Instant, copy: bool) {
        // Probes queue behind the copy whoever they go to: the same few neighbours
        // get them all, so each sees enough of them to know our uplink's bare delay.
        // A buddy never probed gets one after the next copy, while our uplink is likely
        // still quiet: its fastest Probe from us is its measure of our uplink's bare delay,
        // and a first one that came behind a queue makes every later queue look shorter.
        let sent_ms = self.clock_ms(now);
        self.keep_probe_buddies();
        let buddies = self.probe_buddies.len();
        if buddies == 0 {
            return;
        }
        let buddy = |j: usize| self.index.get(&self.probe_buddies[j]).copied().unwrap_or(0);
        // Until the uplink is measured, Probes go to one buddy: a measurement takes two
        // answers from the same one, and a slow uplink sends a Probe a second. One whose
        // answers come late is passed over: its own uplink's queue holds them (a slow
        // buddy's came 7.6 s after our Probe), and our first measurement with them.
        let first = (0..buddies)
            .map(buddy)
            .find(|&j| !self.neighbours[j].probed);
        let b = match first {
            Some(j) => j,
            None if !self.pacer.measured() => (0..buddies)
                .map(buddy)
                .find(|&j| !self.pacer.answers_late(sent_ms, self.neighbours[j].addr))
                .unwrap_or(buddy(0)),
            None => buddy(self.probe_turn.wrapping_add(1) % buddies),
        };
        if self
            .pacer
            .sent(now, sent_ms, self.neighbours[b].addr, copy, first.is_some())
        {
            self.neighbours[b].probed = true;
            self.neighbours[b].unanswered = self.neighbours[b].unanswered.saturating_add(1);
            if first.is_none() {
                self.probe_turn = self.probe_turn.wrapping_add(1);
            }
            self.send_sealed(b, Message::Probe { sent_ms }, None, Lane::Now);
        }
    }

    /// Forget probe buddies that left or never answer (without answers the pacer cannot
    /// tell a queue, and keeps its starting rate however slow the uplink), and draw new ones
    /// (up to [`PROBE_BUDDIES`]).
    fn keep_probe_buddies(&mut self) {
        let (index, neighbours) = (&self.index, &self.neighbours);
        let answers = |i: usize| neighbours[i].unanswered < SILENT_BUDDY;
        self.probe_buddies
            .retain(|a| index.get(a).is_some_and(|&i| answers(i)));
        let n = self.neighbours.len();
        while self.probe_buddies.len() < PROBE_BUDDIES.min(n) {
            let start = self.rng.below(n);
            let Some(a) = (0..n)
                .map(|k| (start + k) % n)
                .filter(|&i| answers(i))
                .map(|i| self.neighbours[i].addr)
                .find(|a| !self.probe_buddies.contains(a))
            else {
                break;
            };
            self.probe_buddies.push(a);
        }
        if self.probe_buddies.is_empty() && n > 0 {
            // Every neighbour went quiet: start over rather than probe no one.
            for nb in &mut self.neighbours {
                nb.unanswered = 0;
            }
            self.keep_probe_buddies();
        }
    }

    /// While the stream flows the splitter sends a member nothing but its share, and chunks
    /// new to us prove it alive; a member that gets neither for 70% of the splitter timeout
    /// (one with no share whose neighbours' copies stopped reaching it: in a team of 300 on
    /// 1.56 × uplinks with 40% behind NATs, simulated, a member behind a symmetric NAT stood
    /// still 10 s and gave the live splitter up, which ends a peer mount) asks the splitter
    /// whether it is there, once a keepalive interval, and the splitter answers.
    fn ask_splitter(&mut self, now: Instant) {
        self.splitter_asked = now;
        let id = self.id;
        self.send_splitter(Message::KeepAlive { from: id });
    }

    /// When to ask the splitter whether it is there next ([`Peer::ask_splitter`]).
    fn splitter_ask_due(&self) -> Instant {
        // Not sooner: a member whose floods come late (a speech stream's team of 100, 2.5
        // chunks a second, simulated) went 5 s without a fresh chunk often enough to put the
        // splitter's egress over 1.05 × the stream with the answers.
        (self.last_splitter + self.cfg.splitter_timeout.mul_f64(0.7))
            .max(self.splitter_asked + self.cfg.keepalive_interval)
    }

    /// Our floods are late ([`SERVE_BACKLOG`]): extra copies would only delay them more.
    fn uplink_behind(&self, now: Instant) -> bool {
        self.pacer.backlog(now) > SERVE_BACKLOG
    }

    /// Whether to serve a stalled member's Request (its playout waits on the chunk)
    /// although our floods are late: yes, a few a second. In a flash crowd on 1.25 × uplinks
    /// most members were behind most of the time, and a member whose copy of one chunk never
    /// came asked nine of them in turn, each declining, and stood still for up to 19 s: one
    /// copy weighs less than the stand-still it ends.
    fn serve_stalled(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.stalled_at).as_secs_f64();
        self.stalled_at = now;
        self.stalled_serves =
            (self.stalled_serves + dt * STALLED_SERVES_PER_SEC).min(STALLED_SERVE_BURST);
        if self.stalled_serves < 1.0 {
            return false;
        }
        self.stalled_serves -= 1.0;
        self.stats.stalled_served += 1;
        true
    }

    /// Our Probe clock: milliseconds since we started (wraps after 49 days; only differences
    /// are used).
    fn clock_ms(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.clock0).as_millis() as u32
    }

    /// A Probe from neighbour `i`: how much longer than its fastest this one took to come is
    /// its uplink's queueing delay; tell it.
    fn on_probe(&mut self, now: Instant, i: usize, sent_ms: u32) {
        let owd = self.clock_ms(now).wrapping_sub(sent_ms);
        let n = &mut self.neighbours[i];
        // Wrapping comparisons: only differences of nearby values mean anything.
        let lower = |a: u32, b: Option<u32>| b.is_none_or(|b| (a.wrapping_sub(b) as i32) < 0);
        if now.saturating_duration_since(n.base_since) >= BASE_WINDOW {
            n.base_owd = n.base_next.or(n.base_owd);
            n.base_next = None;
            n.base_since = now;
        }
        if lower(owd, n.base_next) {
            n.base_next = Some(owd);
        }
        if lower(owd, n.base_owd) {
            n.base_owd = Some(owd);
        }
        let q = n.base_owd.map_or(0, |b| owd.wrapping_sub(b));
        // The prober's rate waits on this: it goes ahead of any control queued.
        self.send_sealed(i, Message::QueueDelay { sent_ms, ms: q }, None, Lane::First);
    }

    fn on_splitter_msg(&mut self, now: Instant, msg: Message, hash: Option<[u8; 32]>) {
        match msg {
            Message::Digest { .. } => self.on_digest(now, msg, SignedFrom::Splitter),
            Message::Expel { id } => self.on_expel(id),
            Message::Uplinks { slow, able } => {
                for id in able {
                    self.slow.remove(&id);
                }
                for id in slow {
                    if self.slow.len() < wire::MAX_PEERS_IN_LIST {
                        self.slow.insert(id);
                    }
                }
            }
            Message::TrainRead { bytes_per_sec } => {
                self.pacer.on_train_read(now, f64::from(bytes_per_sec));
            }
            Message::Gone { ids } => {
                for id in ids {
                    self.slow.remove(&id);
                    if let Some(i) = self.neighbours.iter().position(|n| n.id == id) {
                        self.stats.neighbours_dropped_silence += 1;
                        self.remove_neighbour(i);
                    }
                }
            }
            Message::Introduce { id, endpoint, key } => self.on_introduce(id, endpoint, key),
            Message::Endpoint { endpoint } => {
                self.stats.public_endpoint = Some(endpoint);
                if let Some(local) = self.cfg.local {
                    self.send_splitter(Message::Endpoint { endpoint: local });
                }
            }
            Message::Chunk { no, payload, .. } => {
                self.stats.from_splitter += 1;
                let me = self.id;
                // The splitter's tag vouches for it: relay at once (no Digest wait).
                if let Some(h) = hash {
                    self.trust.note_hash(no, h);
                }
                let len = payload.len();
                // The splitter's newest chunk is newer than all we hold; an older one is a
                // resend (LRS) of a chunk it pushed a while ago, no clock for the stream (one
                // resend seconds late read as a chunk interval of seconds).
                let fresh = self.buffer.newest().is_none_or(|n| no.is_after(n));
                match self.buffer.insert(now, no, me, payload) {
                    Insert::New => {
                        self.note_fresh_chunk(now, len);
                        if fresh {
                            self.sample_chunk_rate(now, no);
                            self.keep_schedule(no, now);
                        }
                        self.own_ref = Some((no, now));
                        push_bounded(&mut self.own_recent, OWN_RECENT, no);
                        self.flood_own(no);
                    }
                    other => self.stats.count_insert(other),
                }
                self.playout(now);
            }
            Message::Goodbye { .. } => {
                if !self.splitter_gone {
                    self.splitter_gone = true;
                    self.event(PeerEvent::SplitterGone);
                }
            }
            Message::KeepAlive { .. } | Message::Hello { .. } => {}
            Message::Info { .. } => self.on_info(msg, SignedFrom::Splitter),
            // A monitor left and the splitter chose us: start reporting lost chunks.
            Message::Promote => self.monitor = true,
            _ => self.stats.garbage += 1,
        }
    }

    fn on_neighbour_msg(&mut self, now: Instant, from: SocketAddr, a: trust::Authentic) {
        let trust::Authentic {
            sender,
            seq,
            key,
            msg,
            evidence,
            ..
        } = a;
        let i = match self.neighbour_index(from) {
            Some(i) => i,
            None => {
                // Greeted at the endpoint the splitter saw, it answers from another (its NAT
                // maps each destination apart): it is known by where it speaks from.
                if let Some(j) = self
                    .neighbours
                    .iter()
                    .position(|n| n.id == sender && !n.heard)
                {
                    self.remove_neighbour(j);
                }
                // A new member greets us, or relays before its hello arrived (as in Gen C).
                let Some(i) = self.add_neighbour(sender, from, key, Some(seq)) else {
                    self.on_stranger_msg(now, from, key, msg, evidence);
                    return;
                };
                // A newcomer missed our splitter chunks of the last round (its join burst
                // ended before them, and we did not know it yet): queue those for it as spare
                // copies, and none while our uplink is behind already (a flash crowd on a
                // tight uplink: a copy per newcomer is a whole extra flood; it asks others for
                // what it misses).
                let behind = self.uplink_behind(now);
                if let Some(newest) = self.buffer.newest().filter(|_| !behind) {
                    let round = (self.neighbours.len() as u32 + 1).min(self.buffer.capacity() / 2);
                    let oldest = newest.minus(round);
                    let recent: Vec<ChunkNo> = self
                        .own_recent
                        .iter()
                        .copied()
                        .filter(|no| no.is_after(oldest) && self.buffer.get(*no).is_some())
                        .collect();
                    for no in recent {
                        self.enqueue_spare(i, no);
                    }
                }
                i
            }
        };
        self.neighbours[i].last_seen = now;
        let first_contact = !std::mem::replace(&mut self.neighbours[i].heard, true);
        match msg {
            // The sender's id is the authenticated one of the trailer, set at first contact.
            // A first greeting is answered, so the greeter knows it is heard (and stops); across
            // groups from a public endpoint only a second one ([`Peer::greets_without_answer`]).
            // Ahead of our own queued greetings (a newcomer's to a large team are seconds of
            // a slow uplink): the greeter greets again until answered ([`Peer::hello_gap`]).
            Message::Hello { .. } if first_contact && self.greets_without_answer(sender) => {
                self.neighbours[i].answer_held = true;
            }
            Message::Hello { .. } if first_contact || self.neighbours[i].answer_held => {
                self.neighbours[i].answer_held = false;
                let me = self.id;
                self.send_sealed(i, Message::KeepAlive { from: me }, None, Lane::First);
            }
            Message::Hello { .. } | Message::KeepAlive { .. } => {}
            Message::Goodbye { .. } => self.remove_neighbour(i),
            Message::Chunk {
                no,
                origin,
                payload,
                ..
            } => {
                let n = &mut self.neighbours[i];
                n.debt = n.debt.saturating_sub(1);
                // The evidence carries the relay count too (the tag covers it).
                let Some(evidence) = evidence else { return };
                let inserted = self.admit_member_chunk(now, from, no, origin, payload, evidence);
                // The sender may be gone (a proven polluter).
                let Some(i) = self.neighbour_index(from) else {
                    return;
                };
                // A relayed copy of something we already get: cut that route (a group
                // relay keeps no route; a Prune to one costs a datagram and changes nothing).
                if inserted == Some(Insert::Duplicate) {
                    if sender != origin && origin != self.id {
                        self.stats.prunes_sent += 1;
                        self.send_to(i, Message::Prune { origin });
                    }
                    self.on_duplicate(from, no, origin);
                }
                self.playout(now);
            }
            Message::Digest { .. } => self.on_digest(now, msg, SignedFrom::Neighbour(i)),
            Message::Info { .. } => self.on_info(msg, SignedFrom::Neighbour(i)),
            Message::Probe { sent_ms } => self.on_probe(now, i, sent_ms),
            Message::QueueDelay { sent_ms, ms } => {
                let q = Duration::from_millis(u64::from(ms.min(60_000)));
                let clock = self.clock_ms(now);
                self.pacer.on_queue_delay(now, clock, from, sent_ms, q);
                self.neighbours[i].unanswered = 0;
            }
            Message::Request {
                no,
                digest,
                stalled,
            } => {
                let Some(origin) = self.buffer.get(no).map(|s| s.origin) else {
                    return;
                };
                // Recovery must not take the uplink from the floods, or losses breed requests
                // that breed losses: with a backlog, the requester asks someone else (unless
                // it stands still, and every member it asks may be as late).
                if self.uplink_behind(now) && !(stalled && self.serve_stalled(now)) {
                    self.stats.requests_declined += 1;
                    return;
                }
                self.stats.requests_served += 1;
                // The requester may lack the Digest as well (a lost one leaves a hole).
                if digest && let Some(d) = self.trust.digest_for(no).cloned() {
                    self.send_to(i, d);
                }
                self.send_chunk(i, no, None, false);
                if origin != self.id && origin != self.neighbours[i].id {
                    self.add_route(origin, from);
                }
            }
            Message::DigestRequest { no } => {
                let Some(d) = self.trust.digest_for(no).cloned() else {
                    return;
                };
                if self.uplink_behind(now) {
                    self.stats.requests_declined += 1;
                    return;
                }
                self.stats.requests_served += 1;
                self.send_to(i, d);
            }
            Message::Prune { origin } => {
                if let Some(l) = self.forward.get_mut(&origin) {
                    l.retain(|a| *a != from);
                    if l.is_empty() {
                        self.forward.remove(&origin);
                    }
                }
            }
            _ => self.stats.garbage += 1,
        }
    }

    /// A chunk another team member (`from`) sent: counted, into the buffer, and routed on
    /// when new. Returns what the buffer made of it.
    fn insert_peer_chunk(
        &mut self,
        now: Instant,
        from: SocketAddr,
        no: ChunkNo,
        origin: PeerId,
        relay: Option<Relay>,
        payload: Bytes,
    ) -> Insert {
        self.stats.from_peers += 1;
        let len = payload.len();
        let inserted = self.buffer.insert(now, no, origin, payload);
        match inserted {
            Insert::New => {
                self.note_fresh_chunk(now, len);
                // A team that has just started (the splitter could not tell us the rate):
                // members' chunks give a first, rougher rate until the splitter's do.
                if self.chunk_interval.is_none() {
                    self.sample_chunk_rate(now, no);
                }
                // Flood copies (from their origin or our group's relay) tell how long floods
                // take; a chunk that came on request or by a route is late because something
                // went wrong.
                if let Some(i) = self.neighbour_index(from) {
                    if self.is_flood_copy(i, origin) {
                        self.note_lateness(now, no);
                    } else {
                        self.note_repair(from, no);
                    }
                    // Only the origin names relays (a repair or a routed copy never does).
                    if let Some(k) = relay.filter(|_| self.neighbours[i].id == origin) {
                        self.relay_to_group(i, no, k);
                    }
                }
                self.route(no, origin, from);
            }
            other => self.stats.count_insert(other),
        }
        inserted
    }

    /// Our first copy of chunk `no` came from `from` as a repair (not its origin's flood):
    /// remembered for [`Peer::on_duplicate`].
    fn note_repair(&mut self, from: SocketAddr, no: ChunkNo) {
        if !self.repaired_from.iter().any(|(n, _)| *n == no) {
            push_bounded(&mut self.repaired_from, REPAIRED_FROM, (no, from));
        }
    }

    /// Neighbour `from` sent chunk `no` of `origin` again (we hold it, or a copy waits for
    /// its Digest).
    /// - From its origin, after a repair brought it: the origin's flood reaches us, so the
    ///   route the repairer keeps for us is pruned. (A route copy that comes second is pruned
    ///   by its own duplicate; one that came first, while the origin's flood ran late, left
    ///   the route to carry the origin's next chunks too.)
    /// - Of a splitter chunk of ours, flooded by another member: the splitter resent it, and
    ///   the resend's flood reaches everyone our queued copies would. Those that would leave
    ///   later than floods take to arrive (the lateness holes wait for) are dropped; sooner
    ///   ones are kept, as the resend's flood, queued behind its sender's own, comes no
    ///   sooner (drop them all, and with uplinks at 1.25 × the stream, every member's queue
    ///   seconds deep, the resend came after copies that would have gone: 0.006% → 0.029%
    ///   lost over 20 seeds). All are dropped while our router queue is deep
    ///   ([`CONGESTED`]): a slow uplink flooding what it was given before the splitter learnt
    ///   its rate, whose copies queue ahead of everything it sends, Reports and Probe answers
    ///   too. Both floods used to go out in full.
    fn on_duplicate(&mut self, from: SocketAddr, no: ChunkNo, origin: PeerId) {
        let from_origin = self
            .neighbour_index(from)
            .is_some_and(|i| self.neighbours[i].id == origin);
        if from_origin && let Some(k) = self.repaired_from.iter().position(|(n, _)| *n == no) {
            let repairer = self.repaired_from.remove(k).map(|(_, a)| a);
            if let Some(j) = repairer
                .filter(|a| *a != from)
                .and_then(|a| self.neighbour_index(a))
            {
                self.stats.prunes_sent += 1;
                self.send_to(j, Message::Prune { origin });
            }
        }
        let ours = self.buffer.get(no).is_some_and(|s| s.origin == self.id);
        if ours && origin != self.id {
            let per_copy = self.chunk_bytes + COPY_OVERHEAD;
            let keep = if self.pacer.queue_delay >= CONGESTED {
                0.0
            } else {
                self.lateness.as_secs_f64() * self.pacer.rate() / per_copy
            };
            self.stats.copies_overtaken += self.pacer.cancel(no, keep as usize) as u64;
        }
    }

    /// Queue a new peer chunk for the neighbours that asked for its origin's chunks (Gen D's
    /// `forward[origin]`), except the one it came from.
    fn route(&mut self, no: ChunkNo, origin: PeerId, from: SocketAddr) {
        let Some(targets) = self.forward.get(&origin) else {
            return;
        };
        let targets: Vec<usize> = targets
            .iter()
            .filter(|a| **a != from)
            .filter_map(|a| self.neighbour_index(*a))
            .collect();
        for j in targets {
            self.enqueue(j, no);
        }
    }

    /// A team member we have no room to track (`max_neighbours`): its chunks are still the
    /// stream and its requests are still served, only without debts, routes or keepalives.
    fn on_stranger_msg(
        &mut self,
        now: Instant,
        from: SocketAddr,
        key: Key,
        msg: Message,
        evidence: Option<wire::Evidence>,
    ) {
        match msg {
            Message::Chunk {
                no,
                origin,
                payload,
                ..
            } => {
                if let Some(e) = evidence {
                    self.admit_member_chunk(now, from, no, origin, payload, e);
                }
                self.playout(now);
            }
            Message::Digest { .. } => self.on_digest(now, msg, SignedFrom::Stranger),
            Message::Request { no, digest, .. } => {
                let Some(s) = self.buffer.get(no) else { return };
                let msg = Message::Chunk {
                    no,
                    origin: s.origin,
                    relay: None,
                    payload: s.payload.clone(),
                };
                // With the Digest that vouches for it, if it lacks that too.
                if digest && let Some(d) = self.trust.digest_for(no).cloned() {
                    self.tell_stranger(from, &key, d, None);
                }
                let hash = self.trust.hash_of(no).copied();
                if self.tell_stranger(from, &key, msg, hash.as_ref()) {
                    self.stats.requests_served += 1;
                    self.stats.sent += 1;
                }
            }
            Message::DigestRequest { no } => {
                if let Some(d) = self.trust.digest_for(no).cloned()
                    && self.tell_stranger(from, &key, d, None)
                {
                    self.stats.requests_served += 1;
                }
            }
            Message::Info { .. } => self.on_info(msg, SignedFrom::Stranger),
            // Reachable, if untracked: say so, or the greeter would take us for unreachable.
            Message::Hello { .. } => {
                let me = self.id;
                self.tell_stranger(from, &key, Message::KeepAlive { from: me }, None);
            }
            _ => {}
        }
    }

    fn add_route(&mut self, origin: PeerId, to: SocketAddr) {
        let max = self.cfg.max_neighbours;
        if !self.forward.contains_key(&origin) && self.forward.len() >= max {
            return;
        }
        let l = self.forward.entry(origin).or_default();
        if !l.contains(&to) && l.len() < max {
            l.push(to);
        }
    }

    /// Deliver what the buffer allows, and raise complaints / requests for holes.
    fn playout(&mut self, now: Instant) {
        let mut holes = std::mem::take(&mut self.holes);
        holes.clear();
        self.complain.scan(now, &self.buffer, &mut holes);
        for no in holes.iter().copied() {
            let others = self.neighbours.iter().map(|n| n.id);
            if self.monitor || relay::witnesses(self.id, no.0, others) {
                self.stats.complaints_sent += 1;
                let digest = self.trust.digest_for(no).is_none();
                self.send_splitter(Message::LostChunk { no, digest });
            }
        }
        holes.clear();
        self.request.scan(now, &self.buffer, &mut holes);
        for no in holes.iter().copied() {
            if self.neighbours.is_empty() {
                break;
            }
            let i = self.request_target();
            self.stats.requests_sent += 1;
            // A Digest we hold vouches for it already: no need of another copy. One we lack
            // for a chunk we hold (a member's copy, waiting for it) is asked for alone: asked
            // for with each chunk, a lost Digest brought its whole batch again (in a team of
            // 1,000 behind NATs, whose relays do not reach every member of their groups,
            // chunks' duplicates rose from 0.04 to 0.08 a chunk, simulated). The first answer
            // releases the batch, so few of its holes come due before it.
            let digest = self.trust.digest_for(no).is_none();
            let msg = if digest && self.trust.holds(no) {
                Message::DigestRequest { no }
            } else {
                let stalled = self.buffer.blocked_on(no);
                Message::Request {
                    no,
                    digest,
                    stalled,
                }
            };
            self.send_to(i, msg);
        }
        self.holes = holes;
        self.buffer.advance(now);
        self.forget_unverified();
        while let Some(ev) = self.buffer.pop() {
            let no = match &ev {
                Playout::Deliver { no, .. } | Playout::Skipped { no } => *no,
            };
            if self
                .next_info
                .as_ref()
                .is_some_and(|(f, _)| no.diff(*f) >= 0)
                && let Some((_, info)) = self.next_info.take()
            {
                self.event(PeerEvent::InfoChanged(info));
            }
            let e = self.stats.count_playout(ev);
            self.event(e);
        }
    }

    /// The earliest neighbour deadline, at most a keepalive interval away so that changes to
    /// the round estimate are picked up.
    fn neighbour_deadline(&self, now: Instant) -> Instant {
        let ka = self.mesh_keepalive();
        let timeout = self.neighbour_timeout();
        let mut t = now + self.cfg.keepalive_interval;
        // While control datagrams wait, the pacer wakes us as they go; greeting again waits
        // for them, so its deadline must not (or we would spin).
        let greet_again = self.may_greet_again();
        let give_up = self.unheard_give_up();
        for n in &self.neighbours {
            if !n.heard && n.hellos_left > 0 {
                if greet_again {
                    t = t.min(n.last_tx + self.hello_gap(n.hellos_left));
                }
            } else {
                t = t.min(n.last_tx + ka);
            }
            // Given up once its greetings ran out (see `handle_timeout`).
            if n.greeted_in_vain() {
                t = t.min(n.last_seen + give_up);
            }
            t = t.min(n.last_seen + timeout);
        }
        t
    }

    fn report(&self) -> wire::PeerReport {
        wire::PeerReport {
            from: self.id,
            delivered: self.stats.delivered as u32,
            lost: self.stats.skipped as u32,
            buffer_fill: self.buffer.fill(),
            max_debt: self.neighbours.iter().map(|n| n.debt).max().unwrap_or(0),
            // Those heard from: the splitter relays to a member no one reaches.
            neighbours: self.neighbours.iter().filter(|n| n.heard).count() as u32,
            verified: self.stats.verified as u32,
            rejected: self.stats.rejected as u32,
            pace_rate: self.pacer.rate().min(f64::from(u32::MAX)) as u32,
            backlog_ms: self
                .pacer
                .backlog(self.now)
                .as_millis()
                .min(u128::from(u32::MAX)) as u32,
            uplink_rate: self
                .pacer
                .capacity(self.now)
                .map_or(0, |u| u.clamp(1.0, f64::from(u32::MAX)) as u32),
            sent_ms: self.clock_ms(self.now),
        }
    }
}

impl PeerMachine for Peer {
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.now = now;
        // Nothing unauthenticated goes further: not a goodbye, not a chunk.
        let Some(a) = self.authenticate(from, data) else {
            return;
        };
        if let Some(l) = &mut self.leaving {
            // Only the splitter's acknowledgement matters now.
            if from == self.cfg.splitter && matches!(a.msg, Message::Goodbye { .. }) && !l.done {
                l.done = true;
                self.event(PeerEvent::Left);
            }
            return;
        }
        if from == self.cfg.splitter {
            self.last_splitter = now;
            self.on_splitter_msg(now, a.msg, a.hash);
        } else {
            self.on_neighbour_msg(now, from, a);
        }
        self.send_paced();
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if let Some(l) = &mut self.leaving {
            match l.on_timeout(now) {
                LeaveStep::GiveUp => {
                    l.done = true;
                    self.event(PeerEvent::Left);
                }
                LeaveStep::Resend => {
                    let id = self.id;
                    self.send_splitter(Message::Goodbye { from: id });
                }
                LeaveStep::Wait => {}
            }
            return;
        }
        if !self.splitter_gone && now >= self.last_splitter + self.cfg.splitter_timeout {
            self.splitter_gone = true;
            self.event(PeerEvent::SplitterGone);
        }
        if !self.splitter_gone && now >= self.splitter_ask_due() {
            self.ask_splitter(now);
        }
        let timeout = self.neighbour_timeout();
        let give_up = self.unheard_give_up();
        let ka = self.mesh_keepalive();
        self.expect_fewer_answers();
        let mut i = self.neighbours.len();
        while i > 0 {
            i -= 1;
            let n = &self.neighbours[i];
            if now >= n.last_seen + timeout || (n.greeted_in_vain() && now >= n.last_seen + give_up)
            {
                // Silent, or greeted in vain (behind a closed NAT): no more chunks for it. It
                // is taken back if it ever speaks.
                self.stats.neighbours_dropped_silence += 1;
                self.remove_neighbour(i);
            }
        }
        let id = self.id;
        if now >= self.splitter_last_tx.min(self.last_report) + self.cfg.keepalive_interval {
            self.last_report = now;
            // Our keepalive to the splitter says how we are doing.
            let report = self.report();
            self.send_splitter(Message::Report(report));
            // No chunk to flood for a while: the splitter judged us too slow (or has too few
            // chunks to go round); let it measure again.
            if now >= self.train_at + self.train_again() {
                if self.stats.from_splitter == self.train_mark {
                    self.send_train();
                } else {
                    self.train_at = now;
                    self.train_mark = self.stats.from_splitter;
                }
            }
        }
        let greet_again = self.may_greet_again();
        for i in 0..self.neighbours.len() {
            let n = &self.neighbours[i];
            // An unheard neighbour's greeting is its keepalive (a KeepAlive draws no answer).
            if !n.heard && n.hellos_left > 0 {
                if greet_again && now >= n.last_tx + self.hello_gap(n.hellos_left) {
                    self.neighbours[i].hellos_left -= 1;
                    self.send_to(i, Message::Hello { from: id });
                }
            } else if now >= self.neighbours[i].last_tx + ka {
                self.send_to(i, Message::KeepAlive { from: id });
            }
        }
        self.playout(now);
        self.send_paced();
        self.nb_deadline = self.neighbour_deadline(now);
    }

    /// Leave politely: flush what we owe, say goodbye to every neighbour and (repeatedly,
    /// until acknowledged) to the splitter.
    fn leave(&mut self, now: Instant) {
        self.now = now;
        if self.leaving.is_some() {
            return;
        }
        let id = self.id;
        // What is still queued stays unsent: a burst now would only overflow the uplink.
        self.pacer.clear();
        for i in 0..self.neighbours.len() {
            self.send_to(i, Message::Goodbye { from: id });
        }
        let goodbyes: Vec<_> = self.pacer.drain_control().collect();
        for (to, d) in goodbyes {
            self.push_transmit(to, d);
        }
        self.send_splitter(Message::Goodbye { from: id });
        self.leaving = Some(Leaving::new(
            now,
            self.cfg.goodbye_retries,
            self.cfg.keepalive_interval,
        ));
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
        let mut t = self.splitter_last_tx.min(self.last_report) + self.cfg.keepalive_interval;
        if !self.splitter_gone {
            t = t
                .min(self.last_splitter + self.cfg.splitter_timeout)
                .min(self.splitter_ask_due());
        }
        t = t.min(self.nb_deadline);
        if let Some(p) = self.pacer.next_at(self.now) {
            t = t.min(p);
        }
        for d in [self.complain.next_deadline(), self.request.next_deadline()]
            .into_iter()
            .flatten()
        {
            t = t.min(d);
        }
        if let Some(b) = self.buffer.next_deadline() {
            t = t.min(b);
        }
        Some(t)
    }

    fn stats(&self) -> PeerStats {
        let mut s = self.stats.clone();
        let queued = self.pacer.queued_per_receiver();
        s.pace_rate = self.pacer.rate() as u64;
        s.uplink_rate = self.pacer.capacity(self.now).map(|u| u as u64);
        s.queue_delay = self.pacer.queue_delay;
        s.copies_dropped = self.pacer.dropped;
        s.lateness = self.lateness;
        s.playout_delay = self.buffer.playout_delay();
        s.buffer_fill = self.buffer.fill();
        s.slow_members = self.slow.len();
        s.neighbours = self
            .neighbours
            .iter()
            .map(|n| NeighbourStats {
                id: n.id,
                addr: n.addr,
                heard: n.heard,
                debt: n.debt,
                pending: queued.get(&n.addr).copied().unwrap_or(0),
                last_seen: n.last_seen,
            })
            .collect();
        s
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests stand in for the driver: they read the clock
mod tests;
