//! The DBS splitter state machine: numbers the chunks the caller cut, sends each one to exactly
//! one peer (round-robin, or ACS-weighted: a native peer's share follows the uplink rate its
//! pacer measured, and one too slow to flood a chunk within a round gets none), keeps the last
//! `buffer_size` for LRS resends and join bursts, admits peers (handshake built here, carried
//! over TCP by the runtime; a native joiner is a member once its first datagram confirms it,
//! see `splitter/admission.rs`), and keeps the team alive: goodbyes take effect at once, silent
//! peers are timed out, lossy peers (blamed through monitor complaints) are expelled. Team-id
//! cookies gate every datagram.
//!
//! Native teams are authenticated ([`super::auth`] has the design): the splitter signs the
//! stream in Digests, gives each peer its key at join (after the team-secret challenge when
//! there is one), checks the tag and sequence of every datagram, expels a member on proof of a
//! forged chunk, and lets only trusted monitors' complaints (or a quorum of monitors) expel.
//!
//! Egress is one copy of the stream (plus LRS resends; header updates are chunks), whatever
//! the team size: keepalives go out only while the stream is idle, because fresh chunk numbers,
//! flooded by the team, already prove to every peer that the splitter is alive (a member that
//! hears neither for a while asks, and is answered). It must never do I/O, read a clock, send a chunk to more
//! than one peer, or believe complaints from non-monitors or datagrams from unknown endpoints.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use thiserror::Error;

use super::auth::{self, ChunkHash, Key, ReplayWindow, SplitterKey};
use super::compat::{self, CompatMessage, Direction};
use super::peer::{UDP_IP_HEADERS, relay};
use super::wire::{
    self, BurstChunk, Evidence, JoinReply, JoinRequest, Message, Packet, PeerReport, RefuseReason,
};
use super::{ChunkNo, Codec, PeerId, Role, StreamInfo, Transmit, push_bounded};

/// ACS periods never grow past this, so a weighted round always ends.
pub const MAX_PERIOD: u32 = 32;
/// A member silent this long is not trusted to be flooding what it was given.
const ORIGIN_SILENCE: Duration = Duration::from_millis(1500);

/// A member whose Reports wait longer than this behind its uplink's queue gets no chunk turns
/// until the queue drains (see [`ReportDelay`]).
const REPORT_QUEUE_MAX: Duration = Duration::from_secs(1);
/// The least delay of a member's Reports is remembered over one to two of these (as the
/// peers' pacers keep their Probes' least delay): clocks drift apart, a little.
const REPORT_BASE_WINDOW: Duration = Duration::from_secs(60);

/// How long a member's latest Report waited behind the queue on its uplink: how much later it
/// came, by its sender's clock against ours, than the earliest of them lately (LEDBAT's base
/// delay, RFC 6817; the clocks need not agree, only tick alike). An uplink slower than its
/// pacer's start fills its router queue in its first seconds (a 64 KiB queue at 64 kbit/s
/// holds 8 s), and a chunk given to it then floods seconds late; the measured uplink that
/// takes its share away crosses the same queue. Once that queue is full, the Reports come
/// regularly again, only late: this is what tells.
#[derive(Debug, Clone, Copy, Default)]
struct ReportDelay {
    /// Least (our ms − its ms), wrapping, in the current window and in the one before.
    base_now: Option<u32>,
    base_before: Option<u32>,
    window_from: Option<Instant>,
    queue_ms: u32,
}

impl ReportDelay {
    fn on_report(&mut self, now: Instant, our_ms: u32, sent_ms: u32) {
        let offset = our_ms.wrapping_sub(sent_ms);
        let earlier = |a: u32, b: u32| (a.wrapping_sub(b) as i32) < 0;
        if self
            .window_from
            .is_none_or(|t| now.saturating_duration_since(t) >= REPORT_BASE_WINDOW)
        {
            self.base_before = self.base_now.take();
            self.window_from = Some(now);
        }
        let base_now = match self.base_now {
            Some(b) if !earlier(offset, b) => b,
            _ => offset,
        };
        self.base_now = Some(base_now);
        let base = match self.base_before {
            Some(b) if earlier(b, base_now) => b,
            _ => base_now,
        };
        self.queue_ms = offset.wrapping_sub(base);
    }

    fn queued(&self) -> Duration {
        Duration::from_millis(u64::from(self.queue_ms))
    }
}

/// The median of `v` (the upper one of an even count), in linear time; `None` when empty.
fn median(mut v: Vec<u32>) -> Option<u32> {
    if v.is_empty() {
        return None;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable(mid);
    Some(*m)
}

/// What relaying a full share of the stream costs a peer's uplink, in streams.
const FULL_SHARE: f64 = 1.15;
/// Below this measured uplink rate, in streams, a peer's flood of one chunk to the team takes
/// over 4/3 of a round (a one-level flood takes `1 / rate` rounds whatever its share), so
/// chunks it originates come late everywhere: it gets no share ([`NO_SHARE`]), only receives.
const MIN_RELAY_RATE: f64 = 0.75;
/// A peer back above this (hysteresis over [`MIN_RELAY_RATE`]) gets shares again.
const RELAY_AGAIN_RATE: f64 = 0.9;
/// Members behind NATs leave relaying to public ones while nearly all of those can carry their
/// part this many times over ([`Splitter::weigh_relay_rule`]), and take it back under
/// [`PUBLIC_RELAYS_OFF`] times.
const PUBLIC_RELAYS_ON: f64 = 2.0;
const PUBLIC_RELAYS_OFF: f64 = 1.5;
/// The same for members behind NATs that hear few of the team ([`RelayRule::Reaching`]):
/// passing them over takes relays away from few, and spares the team the Requests of the many
/// such a relay does not reach, so the others need only carry their part with a little to
/// spare.
const REACHING_RELAYS_ON: f64 = 1.2;
const REACHING_RELAYS_OFF: f64 = 1.0;
/// A member behind a NAT that hears under this share of the team reaches too few to relay
/// (one behind a symmetric NAT hears only the public members); over [`REACH_AGAIN`], enough.
const REACH_POOR: f64 = 0.75;
const REACH_AGAIN: f64 = 0.85;
/// The capacity period of a peer whose uplink cannot flood a chunk in time.
pub const NO_SHARE: u32 = 0;
/// Share changes remembered between two ticks (each member's last one counts).
const MAX_UPLINK_CHANGES: usize = 1 << 16;
const MAX_TRANSMITS: usize = 1 << 16;
const MAX_EVENTS: usize = 4096;
/// Header changes remembered for join replies (a join burst spans a few seconds; chains last
/// minutes).
const HEADER_HISTORY: usize = 4;
const TICK: Duration = Duration::from_secs(1);

/// How many peers get a new Info from us (each floods it to the team): three independent
/// floods, so a peer misses it only if all three lose it.
const INFO_FANOUT: usize = 3;

/// How many more times a Promote is sent after the first, a keepalive interval apart.
const PROMOTE_REPEATS: u8 = 2;

/// Each Digest goes to this many peers, which flood it (a lost one is repaired by requests).
const DIGEST_COPIES: usize = 1;

/// The proof of the team secret that came with a join (see [`super::auth::join_proof`]).
#[derive(Debug, Clone, Copy)]
pub struct JoinProof {
    pub challenge: [u8; 16],
    pub proof: [u8; 32],
}

#[derive(Debug, Clone)]
pub struct SplitterConfig {
    pub max_peers: usize,
    /// Chunks kept for LRS and bursts; also the peers' buffer size. A team holds at most
    /// `buffer_size - 1` peers (|T| ≤ B; B ≥ 2|T| is what keeps loss low, §8).
    pub buffer_size: u32,
    pub max_chunk_payload: usize,
    /// How many monitors are admitted as monitors; further monitor joins become plain peers.
    pub number_of_monitors: usize,
    /// A peer whose (halving) loss counter exceeds this is expelled.
    pub max_chunk_loss: u32,
    /// Native codec only: no datagram for this long → removed (Gen C peers never send one).
    pub peer_timeout: Duration,
    /// While no chunk has been pushed for this long, send a KeepAlive to each peer that got
    /// nothing from us for this long (native only).
    pub keepalive_interval: Duration,
    pub acs: bool,
    pub lrs: bool,
    pub burst_chunks_on_join: usize,
    pub codec: Codec,
    /// Native: signs Digests and join replies. The runtime passes a random or loaded key; the
    /// default is a fixed one, for tests and the simulator only.
    pub key: SplitterKey,
    /// Native: peers' keys derive from this (random per start, from the runtime).
    pub key_seed: Key,
    /// Native: joins must prove this secret ([`super::auth::secret_key`]); `None`: open team.
    pub team_secret: Option<Key>,
    /// Joiners from these addresses are monitors whatever the monitor count, and one complaint
    /// of theirs is enough to blame a peer.
    pub trusted_monitors: Vec<IpAddr>,
    /// How many distinct monitors must report a chunk lost before the peer it went to is
    /// blamed (losses and a smaller share under ACS, then expulsion). `None`: only trusted
    /// monitors blame; untrusted ones still get the chunk resent (LRS), nothing more (a smaller
    /// share for the accused would hand the accusers more chunks to withhold).
    pub blame_quorum: Option<usize>,
    /// Native: most members the splitter relays the whole stream to at once (members that no
    /// other member can reach, as behind a symmetric or filtering NAT; see `splitter/admission.rs`).
    pub max_relayed: usize,
    /// Native: the team size from which members flood in two levels (told to each joiner;
    /// 0: never). See [`super::peer::RELAY_FROM`].
    pub relay_from: u32,
}

impl Default for SplitterConfig {
    fn default() -> Self {
        SplitterConfig {
            max_peers: 100,
            buffer_size: 256,
            max_chunk_payload: 16384,
            number_of_monitors: 1,
            max_chunk_loss: 32,
            peer_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(1),
            acs: true,
            lrs: true,
            burst_chunks_on_join: 64,
            codec: Codec::Native,
            key: SplitterKey::from_seed(&[0x5A; 32]),
            key_seed: [0xA5; 32],
            team_secret: None,
            trusted_monitors: Vec::new(),
            blame_quorum: Some(1),
            max_relayed: 8,
            relay_from: super::peer::RELAY_FROM as u32,
        }
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum JoinError {
    #[error("team is full")]
    Full,
    #[error("unsupported protocol version {0}")]
    BadVersion(u8),
    #[error("the compat codec is IPv4 only")]
    NotIpv4,
    #[error("this team needs its team secret")]
    NotAdmitted,
}

impl JoinError {
    /// The refusal to send back over TCP.
    pub fn refusal(&self) -> Message {
        let reason = match self {
            JoinError::Full => RefuseReason::Full,
            JoinError::BadVersion(_) => RefuseReason::BadVersion,
            JoinError::NotIpv4 => RefuseReason::Other(3),
            JoinError::NotAdmitted => RefuseReason::NotAdmitted,
        };
        Message::JoinRefused {
            reason,
            detail: self.to_string(),
        }
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PushError {
    #[error("chunk of {len} bytes exceeds the maximum {max}")]
    TooBig { len: usize, max: usize },
    #[error("compat chunks must be exactly {expected} bytes, got {len}")]
    WrongSize { len: usize, expected: usize },
    #[error("header of {0} bytes exceeds 1 MiB")]
    HeaderTooBig(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveReason {
    Goodbye,
    Timeout,
    Expelled,
    /// Proven to have sent a forged chunk.
    Polluter,
    /// The same endpoint joined again.
    Replaced,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitterEvent {
    PeerJoined {
        id: PeerId,
        addr: SocketAddr,
        role: Role,
    },
    PeerLeft {
        id: PeerId,
        addr: SocketAddr,
        reason: LeaveReason,
    },
}

#[derive(Debug, Clone)]
pub struct PeerStats {
    pub id: PeerId,
    pub addr: SocketAddr,
    pub role: Role,
    pub chunks_sent: u64,
    pub bytes_sent: u64,
    /// The current (halving) loss counter and the total ever blamed.
    pub losses: u32,
    pub losses_total: u64,
    pub acs_period: u32,
    pub last_seen: Instant,
    /// What the peer last said of itself (native peers report every second).
    pub report: Option<PeerReport>,
    /// Native: whether the endpoint we see it at differs from the one it is bound at (it is
    /// behind a NAT); `None` until it has said.
    pub nat: Option<bool>,
    /// Native: no other member reaches it, so the splitter sends it the whole stream.
    pub relayed: bool,
    /// Native: origins may make it a relay to its group now (it has a share, and the team's
    /// relay rule does not pass it over: [`SplitterStats::relay_rule`]).
    pub relays: bool,
    /// The least ACS period its uplink allows (1 = a full share), from its pacer's rate.
    pub capacity_period: u32,
    /// Native: its uplink as its latest Train read it (bytes/s), `None` before one came.
    pub train_rate: Option<u32>,
    /// Native: how much later than its earliest lately its Reports come (the queue on its
    /// uplink, as the splitter reads it from their own clock).
    pub report_queue: Duration,
    /// Whether it gets chunk turns now: heard lately, its Report neither overdue nor queued
    /// past the bar, heard by the team (see `may_flood`).
    pub takes_turns: bool,
}

#[derive(Debug, Clone, Default)]
pub struct SplitterStats {
    pub peers: Vec<PeerStats>,
    pub chunks_pushed: u64,
    pub bytes_pushed: u64,
    pub datagrams_sent: u64,
    pub bytes_sent: u64,
    pub lrs_resends: u64,
    pub left_goodbye: u64,
    pub expelled_timeout: u64,
    pub expelled_losses: u64,
    pub joins: u64,
    pub joins_refused: u64,
    pub garbage: u64,
    pub unknown_sender: u64,
    pub ignored_complaints: u64,
    pub transmits_dropped: u64,
    /// Datagrams dropped for a wrong tag or sender, and replays.
    pub bad_mac: u64,
    pub replays: u64,
    pub digests_signed: u64,
    pub expelled_polluters: u64,
    /// Pollution reports that proved nothing (and were ignored).
    pub unproven_reports: u64,
    /// Complaints that got a resend but did not reach the blame quorum.
    pub unblamed_complaints: u64,
    /// Resends untrusted complaints asked for beyond their budget (not sent).
    pub resends_throttled: u64,
    /// The splitter's public key (hex), for operators to pin.
    pub public_key: String,
    /// Native joins answered whose joiner never confirmed over UDP in time.
    pub joins_unconfirmed: u64,
    /// Chunks copied to relayed members, and how many members are relayed now.
    pub relayed_chunks: u64,
    pub relayed_peers: usize,
    /// Which members may relay to their groups: `"all"` with a share, `"reaching"` all but
    /// those behind NATs that hear few of the team, `"public"` only those not behind NATs.
    pub relay_rule: &'static str,
}

/// A chain's stream header and the chunks that carry it (`first..end`; `end` grows as its
/// bytes are pushed).
#[derive(Debug)]
struct HeaderChange {
    first: ChunkNo,
    end: ChunkNo,
    header: Bytes,
}

/// Which members origins of two-level floods may make their groups' relays (with a share:
/// [`Member::may_relay`]). A relay behind a NAT reaches only the members whose greetings opened
/// it, and the rest ask for what it withheld: in a simulated team of 1,000 with 40% behind
/// NATs, members played 7.7 s behind the splitter (p50) and sent 87,000 Requests in a minute,
/// 4.5 s and 5,400 once only public members relayed. But the relays left carry `N / R`
/// streams each: on uplinks of 1.56 × the stream at N = 300, public members alone could not,
/// and the team lost 0.76% instead of 0.04%; there, passing over only the members behind
/// symmetric NATs (they hear 60% of the team) is what the uplinks carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RelayRule {
    All,
    /// Not members behind NATs that hear few of the team.
    Reaching,
    /// Only members not behind NATs.
    Public,
}

#[derive(Debug)]
struct Member {
    id: PeerId,
    addr: SocketAddr,
    role: Role,
    last_seen: Instant,
    last_tx: Instant,
    chunks_sent: u64,
    bytes_sent: u64,
    losses: u32,
    losses_total: u64,
    period: u32,
    period_left: u32,
    /// The least period its uplink allows (from its pacer's rate; 1 = a full share).
    capacity_period: u32,
    /// Its latest Train, the rate it read (bytes/s), and when its join was answered.
    train: train::Train,
    train_rate: Option<u32>,
    joined_at: Instant,
    /// Promote messages still to repeat (UDP may lose one), and when the last went out.
    promote_left: u8,
    promoted_at: Instant,
    report: Option<PeerReport>,
    /// When its last Report came (its join, before the first): members report once a
    /// keepalive interval whatever else they send.
    reported_at: Instant,
    report_delay: ReportDelay,
    /// Its key, the sequence of our datagrams to it, and its anti-replay window.
    key: Key,
    tx_seq: u64,
    rx: ReplayWindow,
    trusted: bool,
    /// Resends its complaints may still cause, untrusted monitors only (see `on_lost`).
    resend_budget: f64,
    /// See [`PeerStats::nat`] and [`PeerStats::relayed`]; since when its reports have said
    /// it has no neighbours while the team has other members.
    nat: Option<bool>,
    relayed: bool,
    isolated_since: Option<Instant>,
    /// Behind a NAT and, by its Reports, hearing under [`REACH_POOR`] of the team (until it
    /// hears over [`REACH_AGAIN`]).
    hears_few: bool,
    /// Admission order: its reply listed the members admitted up to `listed_upto`, and it
    /// was admitted as number `admitted_no` (see `admission::introduce`).
    listed_upto: u64,
    admitted_no: u64,
}

impl Member {
    /// Its uplink can flood a chunk in time: it gets splitter chunks (and Digests) to relay.
    fn has_share(&self) -> bool {
        self.capacity_period != NO_SHARE
    }

    /// Origins may make it their relay to its group: its uplink carries a share, and `rule`
    /// does not pass it over. Unknown counts as not behind a NAT until the member says where
    /// it is bound.
    fn may_relay(&self, rule: RelayRule) -> bool {
        let natted = self.nat == Some(true);
        self.has_share()
            && match rule {
                RelayRule::All => true,
                RelayRule::Reaching => !(natted && self.hears_few),
                RelayRule::Public => !natted,
            }
    }

    /// Its uplink as best we know it (bytes/s; 0 unknown): what its pacer measured, else what
    /// its Train read.
    fn uplink(&self) -> u32 {
        match self.report.map_or(0, |r| r.uplink_rate) {
            0 => self.train_rate.unwrap_or(0),
            measured => measured,
        }
    }

    /// Its floods reach the whole team: its endpoint is public. One behind a NAT reaches only
    /// those its greetings opened a way to (members behind a symmetric NAT and a filtering
    /// one never reach each other), and the rest ask for what it was given, a chunk at a
    /// time. Unknown (taken as no) until it has told us its local endpoint.
    fn reaches_all(&self) -> bool {
        self.nat == Some(false)
    }
}

#[derive(Debug)]
struct RingSlot {
    no: ChunkNo,
    payload: Bytes,
    hash: [u8; 32],
    dest: Option<PeerId>,
    /// When it was last resent (LRS), and how often.
    resent_at: Option<Instant>,
    resends: u8,
    blamed: bool,
    /// The monitors that reported it lost (up to the quorum).
    complainers: Vec<PeerId>,
    /// Members that witness this chunk ([`Splitter::on_witness`]) and miss it, and whether
    /// they got it resent.
    witnesses: Vec<PeerId>,
    witness_resent: bool,
}

#[derive(Debug)]
pub struct Splitter {
    cfg: SplitterConfig,
    team: u32,
    members: Vec<Member>,
    /// Native joiners that got their reply but have not confirmed over UDP yet (oldest
    /// first, bounded); `addr` is still the TCP remote address.
    joining: Vec<Member>,
    /// Members admitted so far (numbers admissions in order).
    admissions: u64,
    next_id: u32,
    ring: Vec<Option<RingSlot>>,
    next_no: ChunkNo,
    rr: usize,
    info: StreamInfo,
    info_epoch: u32,
    /// Where the next Info fan-out starts in the member list (so it rotates).
    info_rr: usize,
    /// Members dropped for silence since the last tick: the team is told at the next one.
    gone: Vec<PeerId>,
    /// Members that may no longer relay (false: lost their share, or found behind a NAT) or
    /// may again (true) since the last tick: the team is told at the next one
    /// ([`Message::Uplinks`]).
    uplink_changes: Vec<(PeerId, bool)>,
    /// Which members origins may make relays ([`Splitter::weigh_relay_rule`]).
    relay_rule: RelayRule,
    /// The stream headers of the last chains, oldest first; the last is the current one.
    headers: VecDeque<HeaderChange>,
    header_epoch: u32,
    /// Bytes of the newest header still to come through `push_chunk`.
    header_bytes_left: usize,
    next_tick: Instant,
    /// Our clock's start, for [`ReportDelay`].
    clock0: Instant,
    /// The Report queue past which a member gets no chunk turns (updated each tick).
    report_queue_bar: Duration,
    /// When the last chunk was pushed: keepalives are only needed while the stream is idle.
    last_push: Option<Instant>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SplitterEvent>,
    stats: SplitterStats,
    /// The latest time any entry point was given (for calls that take no `now`).
    now: Instant,
    /// The batch the next Digest signs: its first chunk, hashes, and when it began.
    batch_first: ChunkNo,
    batch: Vec<ChunkHash>,
    batch_since: Option<Instant>,
    digest_rr: usize,
    /// Resends witnesses may still cause ([`Splitter::on_witness`]).
    witness_budget: f64,
    /// Recent Digests, for LRS: a complaint about a chunk whose Digest was lost gets the
    /// Digest resent too.
    digests: VecDeque<KeptDigest>,
    /// Time between pushed chunks (smoothed): sets how long a Digest batch may wait.
    chunk_interval: Option<Duration>,
    /// Mean chunk payload (bytes): with the interval, the stream's rate.
    chunk_bytes: f64,
}

/// Recent Digests kept for resends.
const KEPT_DIGESTS: usize = 64;

/// A Digest the splitter signed, kept for resends.
#[derive(Debug)]
struct KeptDigest {
    first: ChunkNo,
    count: u32,
    msg: Message,
    /// Times resent, and when last. A Digest goes to one member ([`DIGEST_COPIES`]); if that
    /// copy is lost the whole batch is held unplayed everywhere, so it is resent with a chunk
    /// resend as a chunk is: up to [`MAX_RESENDS`] times, [`RESEND_AGAIN_AFTER`] apart (once
    /// ever let a sock-puppet's complaint about a chunk that was not lost use the only resend).
    resends: u8,
    resent_at: Option<Instant>,
}

/// Resends that untrusted monitors' complaints may cause, per chunk pushed (all monitors).
const RESEND_SHARE: f64 = 0.5;
/// ... and each monitor at the start, before any chunk earned them.
const RESEND_BURST: f64 = 8.0;
/// Resends that witnesses may cause, per chunk pushed, and at most this many at once.
const WITNESS_SHARE: f64 = 0.05;
const WITNESS_BURST: f64 = 8.0;
/// Distinct witnesses of a chunk that must miss it for a resend.
const WITNESS_QUORUM: usize = 2;
/// A chunk is resent at most this often, and again only this long after the last time.
const MAX_RESENDS: u8 = 3;
const RESEND_AGAIN_AFTER: Duration = Duration::from_millis(400);
/// Budget an untrusted monitor must have left for a repeated resend (one is still spent).
const REPEAT_RESERVE: f64 = 4.0;

fn digest_msg(first: ChunkNo, hashes: &[ChunkHash], signature: [u8; 64]) -> Message {
    Message::Digest {
        first,
        hashes: hashes.to_vec(),
        signature,
        relay: None,
    }
}

impl Splitter {
    pub fn new(mut config: SplitterConfig, team_id: u32, now: Instant) -> Splitter {
        config.buffer_size = config.buffer_size.clamp(2, 1 << 16);
        config.max_chunk_payload = config.max_chunk_payload.clamp(1, wire::MAX_CHUNK_PAYLOAD);
        let public_key = auth::hex(&config.key.public());
        Splitter {
            ring: (0..config.buffer_size).map(|_| None).collect(),
            cfg: config,
            team: team_id,
            members: Vec::new(),
            joining: Vec::new(),
            admissions: 0,
            next_id: 1,
            next_no: ChunkNo(0),
            rr: 0,
            info: StreamInfo::default(),
            info_epoch: 0,
            info_rr: 0,
            gone: Vec::new(),
            uplink_changes: Vec::new(),
            relay_rule: RelayRule::All,
            headers: VecDeque::from([HeaderChange {
                first: ChunkNo(0),
                end: ChunkNo(0),
                header: Bytes::new(),
            }]),
            header_epoch: 0,
            header_bytes_left: 0,
            next_tick: now + TICK,
            clock0: now,
            report_queue_bar: REPORT_QUEUE_MAX,
            last_push: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: SplitterStats {
                public_key,
                ..SplitterStats::default()
            },
            now,
            batch_first: ChunkNo(0),
            batch: Vec::new(),
            batch_since: None,
            digest_rr: 0,
            witness_budget: WITNESS_BURST,
            digests: VecDeque::new(),
            chunk_interval: None,
            chunk_bytes: 0.0,
        }
    }

    /// The splitter's Ed25519 public key, for operators to pin at their peers.
    pub fn public_key(&self) -> [u8; 32] {
        self.cfg.key.public()
    }

    /// Member `id`'s key (derivable for any id, members past and present).
    fn key_of(&self, id: PeerId) -> Key {
        let mut h = blake3::Hasher::new_keyed(&self.cfg.key_seed);
        h.update(b"floecast peer key v2");
        h.update(&self.team.to_be_bytes());
        h.update(&id.0.to_be_bytes());
        *h.finalize().as_bytes()
    }

    pub fn team_id(&self) -> u32 {
        self.team
    }
    pub fn next_chunk(&self) -> ChunkNo {
        self.next_no
    }
    pub fn peer_count(&self) -> usize {
        self.members.len()
    }

    /// The stream's facts and title. A change reaches native peers at once as a signed Info
    /// sent to [`INFO_FANOUT`] of them, which flood it; newcomers get it in their join reply.
    pub fn set_stream_info(&mut self, info: StreamInfo) {
        if info == self.info {
            return;
        }
        self.info = info;
        self.info_epoch = self.info_epoch.wrapping_add(1);
        if self.cfg.codec != Codec::Native || self.members.is_empty() {
            return;
        }
        // Cannot fail for an info that fits a join reply; if it did, peers learn it at join.
        // It belongs with the chunks pushed from now on; peers play those a while later.
        let first_chunk = self.next_no;
        let Ok(parts) = wire::info_parts(self.team, self.info_epoch, first_chunk, &self.info)
        else {
            return;
        };
        let signature = self.cfg.key.sign(&[&parts]);
        let n = self.members.len();
        // Members behind NATs would miss the floods of those that cannot reach them, and
        // nothing asks for a missed Info again (see `reaches_all`).
        let public_only = self.public_floods(|s, i| !s.is_suspect(i));
        let targets: Vec<usize> = (0..n)
            .map(|k| (self.info_rr + k) % n)
            .filter(|&i| !public_only || self.members[i].reaches_all())
            .take(INFO_FANOUT)
            .collect();
        // The next change starts after the last of them.
        self.info_rr = targets.last().map_or(0, |&i| i + 1) % n;
        for i in targets {
            let msg = Message::Info {
                epoch: self.info_epoch,
                first_chunk,
                info: self.info.clone(),
                signature,
                relay: None,
            };
            self.send(i, msg);
        }
    }

    /// A new stream header (chain change). The caller pushes the header's bytes next, as
    /// chunks ahead of the new chain's data: peers get it in the stream, flooded and signed
    /// like any chunk, so a chain change costs the splitter one copy whatever the team size.
    /// Recorded here for join replies, which carry the header in effect at the joiner's start.
    pub fn set_header(&mut self, header: Bytes) -> Result<(), PushError> {
        if header.len() > wire::MAX_HEADER {
            return Err(PushError::HeaderTooBig(header.len()));
        }
        self.header_epoch = self.header_epoch.wrapping_add(1);
        self.header_bytes_left = header.len();
        push_bounded(
            &mut self.headers,
            HEADER_HISTORY,
            HeaderChange {
                first: self.next_no,
                end: self.next_no,
                header,
            },
        );
        Ok(())
    }

    /// The header a joiner starting at `burst`'s first chunk (or the next one) needs, with the
    /// burst cut so that it never begins inside a header's own chunks.
    fn join_header(&self, burst: &mut Vec<BurstChunk>) -> Bytes {
        let mut start = burst.first().map_or(self.next_no, |c| c.no);
        let mut header = self.headers.front().map(|h| h.header.clone());
        for h in &self.headers {
            // Starting in the middle of its header chunks: start after them instead.
            if start.diff(h.first) >= 0 && h.end.diff(start) > 0 {
                start = h.end;
            }
            // Its chunks are all behind the start: the joiner needs it from us. Later ones
            // it reads in the stream.
            if start.diff(h.end) >= 0 {
                header = Some(h.header.clone());
            }
        }
        burst.retain(|c| c.no.diff(start) >= 0);
        header.unwrap_or_default()
    }

    /// Number the next chunk, keep it, and send it to one peer. Returns its number.
    pub fn push_chunk(&mut self, now: Instant, payload: Bytes) -> Result<ChunkNo, PushError> {
        self.now = now;
        match self.cfg.codec {
            Codec::Native if payload.len() > self.cfg.max_chunk_payload => {
                return Err(PushError::TooBig {
                    len: payload.len(),
                    max: self.cfg.max_chunk_payload,
                });
            }
            Codec::CompatGenC if payload.len() != self.cfg.max_chunk_payload => {
                return Err(PushError::WrongSize {
                    len: payload.len(),
                    expected: self.cfg.max_chunk_payload,
                });
            }
            _ => {}
        }
        let no = self.next_no;
        self.next_no = no.plus(1);
        if self.header_bytes_left > 0 {
            self.header_bytes_left = self.header_bytes_left.saturating_sub(payload.len());
            if let Some(h) = self.headers.back_mut() {
                h.end = self.next_no;
            }
        }
        self.chunk_bytes = super::mean_chunk_bytes(self.chunk_bytes, payload.len());
        if let Some(last) = self.last_push {
            let d = now.saturating_duration_since(last);
            self.chunk_interval = Some(match self.chunk_interval {
                Some(old) => (old * 7 + d) / 8,
                None => d,
            });
        }
        self.last_push = Some(now);
        self.stats.chunks_pushed += 1;
        // Each monitor earns its share of resends (monitors head the list).
        let share = RESEND_SHARE / self.monitor_count().max(1) as f64;
        let cap = f64::from(self.cfg.buffer_size / 2);
        for m in self
            .members
            .iter_mut()
            .take_while(|m| m.role == Role::Monitor)
        {
            m.resend_budget = (m.resend_budget + share).min(cap);
        }
        self.witness_budget = (self.witness_budget + WITNESS_SHARE).min(WITNESS_BURST);
        self.stats.bytes_pushed += payload.len() as u64;
        let dest = self.pick();
        let slot = self.slot_index(no);
        let native = self.cfg.codec == Codec::Native;
        let hash = if native {
            auth::payload_hash(&payload)
        } else {
            [0; 32]
        };
        self.ring[slot] = Some(RingSlot {
            no,
            payload: payload.clone(),
            hash,
            dest: dest.map(|i| self.members[i].id),
            resent_at: None,
            resends: 0,
            blamed: false,
            complainers: Vec::new(),
            witnesses: Vec::new(),
            witness_resent: false,
        });
        if native {
            if self.batch.is_empty() {
                self.batch_first = no;
                self.batch_since = Some(now);
            }
            self.batch.push(auth::short(&hash));
        }
        if let Some(i) = dest {
            // On the wire a splitter chunk's origin is its receiver, implied (4 bytes less).
            let origin = PeerId::NONE;
            self.members[i].chunks_sent += 1;
            self.send_hashed(
                i,
                Message::Chunk {
                    no,
                    origin,
                    relay: None,
                    payload: payload.clone(),
                },
                Some(&hash),
            );
            self.relay_copies(i, no, &payload, &hash);
        }
        // Small buffers play soon after arrival: their batches are shorter, so that a chunk
        // is vouched for well within the playout lag (half the buffer).
        let batch = auth::BATCH_CHUNKS
            .min(self.cfg.buffer_size as usize / 8)
            .max(1);
        if self.batch.len() >= batch {
            self.sign_batch();
        }
        Ok(no)
    }

    /// Sign the hashes of the chunks since the last Digest and send the Digest to a couple of
    /// peers, who flood it.
    fn sign_batch(&mut self) {
        let hashes = std::mem::take(&mut self.batch);
        self.batch_since = None;
        if hashes.is_empty() {
            return;
        }
        let first = self.batch_first;
        self.batch_first = first.plus(hashes.len() as u32);
        let signature = self
            .cfg
            .key
            .sign(&[&auth::digest_parts(self.team, first, &hashes)]);
        self.stats.digests_signed += 1;
        let digest = digest_msg(first, &hashes, signature);
        if self.digests.len() >= KEPT_DIGESTS {
            self.digests.pop_front();
        }
        self.digests.push_back(KeptDigest {
            first,
            count: hashes.len() as u32,
            msg: digest,
            resends: 0,
            resent_at: None,
        });
        let n = self.members.len();
        if n == 0 {
            return;
        }
        let mut sent = 0;
        // A member that misses a Digest asks for every chunk it vouches for: behind NATs,
        // 0.6 of a symmetric member's uplink went on such requests (see `reaches_all`).
        let public_only = self.public_floods(|s, i| s.may_get_digest(i));
        for k in 0..n {
            if sent == DIGEST_COPIES.min(n) {
                break;
            }
            let i = (self.digest_rr + k) % n;
            if (!self.may_get_digest(i) || (public_only && !self.members[i].reaches_all()))
                && n > DIGEST_COPIES
            {
                continue;
            }
            self.send(i, digest_msg(first, &hashes, signature));
            sent += 1;
        }
        if sent == 0 {
            // Everyone looks gone: one of them may not be.
            let i = self.digest_rr % n;
            self.send(i, digest_msg(first, &hashes, signature));
        }
        // Members no one floods to get their own copy.
        for i in 0..n {
            if self.members[i].relayed {
                self.send(i, digest_msg(first, &hashes, signature));
            }
        }
        self.digest_rr = (self.digest_rr + 1) % n;
    }

    /// Whether member `i` may flood a Digest: alive, not relayed, and with a share to relay.
    fn may_get_digest(&self, i: usize) -> bool {
        let m = &self.members[i];
        !self.is_suspect(i) && !m.relayed && m.has_share()
    }

    /// Whether the splitter's own floods (Digests, Infos, resends) should all start at
    /// public members: some member `able` to flood one reaches the whole team.
    fn public_floods(&self, able: impl Fn(&Self, usize) -> bool) -> bool {
        (0..self.members.len()).any(|i| self.members[i].reaches_all() && able(self, i))
    }

    /// How long a Digest may wait for more chunks ([`auth::batch_delay`], as peers compute it).
    fn batch_delay(&self) -> Duration {
        auth::batch_delay(self.chunk_interval, self.cfg.buffer_size)
    }

    /// Capacity-aware shares (ACS): a full share costs a peer about [`FULL_SHARE`] times the
    /// stream on its uplink (copies, their headers, Digests, probes). A peer whose pacer
    /// measured an uplink that takes less gets one chunk every that-many turns instead, so
    /// that it relays what it gets in time and the faster peers take the rest; one under
    /// [`MIN_RELAY_RATE`] gets none (and no Digests to flood). A peer that has not measured
    /// its uplink (no queue ever stood on it) is sized by its Train ([`train`]), and without
    /// one keeps the share it has.
    fn weigh_capacity(&mut self, i: usize) {
        let Some(d) = self.chunk_interval.filter(|d| !d.is_zero()) else {
            return;
        };
        let could_relay = self.may_relay(i);
        let m = &mut self.members[i];
        let uplink = m.uplink();
        if !self.cfg.acs || uplink == 0 || self.chunk_bytes == 0.0 {
            return;
        }
        let stream = self.chunk_bytes / d.as_secs_f64();
        let rate = f64::from(uplink) / stream;
        let floor = if !m.has_share() {
            RELAY_AGAIN_RATE
        } else {
            MIN_RELAY_RATE
        };
        // A little short is what the pacer's probing looks like on an uplink that fits.
        let p = if rate < floor {
            NO_SHARE
        } else if rate >= FULL_SHARE * 0.85 {
            1
        } else {
            ((FULL_SHARE / rate).ceil() as u32).clamp(1, MAX_PERIOD)
        };
        m.capacity_period = p;
        self.note_relay_change(i, could_relay);
        let m = &mut self.members[i];
        if p == NO_SHARE {
            return;
        }
        if m.period < p {
            m.period = p;
            m.period_left = m.period_left.min(p);
        }
    }

    /// Whether member `id` sent us anything within [`ORIGIN_SILENCE`] (members report every
    /// keepalive interval, a second by default).
    fn spoke_lately(&self, id: Option<PeerId>) -> bool {
        id.and_then(|id| self.members.iter().find(|m| m.id == id))
            .is_some_and(|m| self.now.saturating_duration_since(m.last_seen) <= ORIGIN_SILENCE)
    }

    /// Whether the median member's pacer holds copies older than half a round.
    fn team_floods_late(&self) -> bool {
        let Some(d) = self.chunk_interval else {
            return false;
        };
        let round_ms = (d * self.members.len() as u32).as_millis();
        // Asked at every complaint: the median alone, in linear time.
        let backlogs = self
            .members
            .iter()
            .filter_map(|m| m.report.map(|r| r.backlog_ms))
            .collect();
        median(backlogs).is_some_and(|m| u128::from(m) * 2 > round_ms)
    }

    fn slot_index(&self, no: ChunkNo) -> usize {
        (no.0 % self.cfg.buffer_size) as usize
    }

    /// The next destination, passing over peers that look gone: a peer that has missed its
    /// keepalives is still in the team until its timeout, but a chunk sent only to it would
    /// be lost to everyone. Being wrong costs nothing: a live peer passed over still gets the
    /// chunk by flooding.
    fn pick(&mut self) -> Option<usize> {
        for _ in 0..self.members.len() {
            let i = self.pick_turn()?;
            if self.may_flood(i) {
                return Some(i);
            }
        }
        self.pick_turn()
    }

    /// Whether member `i` looks able to flood what it is given: not silent, its Report neither
    /// overdue nor queued past the bar ([`ReportDelay`]), and heard by the team (one that
    /// hears no one cannot pass its chunks on; a relayed one gets every chunk anyway).
    /// Reports cross the member's own uplink: an uplink slower than its pacer's start fills
    /// its router queue in its first seconds, and its Reports come late long before one
    /// carries the measured rate that takes its share away (half the members at 0.5 × the
    /// stream, half at 3 ×: measured 13–26 s after the start, and the chunks it was given
    /// until then were what the team lost).
    fn may_flood(&self, i: usize) -> bool {
        let m = &self.members[i];
        !self.awaits_train(i)
            && !self.is_suspect(i)
            && !self.late_reporting(i)
            && m.report_delay.queued() <= self.report_queue_bar
            && !m.relayed
            && m.isolated_since.is_none()
    }

    /// [`REPORT_QUEUE_MAX`], or twice the median member's Report queue if that is more: while
    /// most of a team queues (a flash crowd's greetings on tight uplinks), passing over all
    /// of them would pile every chunk on the few that do not.
    fn current_report_queue_bar(&self) -> Duration {
        let median = median(
            self.members
                .iter()
                .map(|m| m.report_delay.queue_ms)
                .collect(),
        );
        REPORT_QUEUE_MAX.max(Duration::from_millis(u64::from(median.unwrap_or(0)) * 2))
    }

    /// A native member whose Train has not come yet, within [`train::TRAIN_WAIT`] of its join:
    /// its uplink is about to be known.
    fn awaits_train(&self, i: usize) -> bool {
        let m = &self.members[i];
        self.cfg.codec == Codec::Native
            && m.train_rate.is_none()
            && self.now.saturating_duration_since(m.joined_at) < train::TRAIN_WAIT
    }

    fn is_suspect(&self, i: usize) -> bool {
        self.cfg.codec == Codec::Native
            && self
                .now
                .saturating_duration_since(self.members[i].last_seen)
                > self.cfg.keepalive_interval.mul_f32(1.5)
    }

    /// The next turn: plain round-robin, or ACS weighted round-robin where a peer with
    /// period p is served once every p turns.
    fn pick_turn(&mut self) -> Option<usize> {
        let n = self.members.len();
        if n == 0 {
            return None;
        }
        if !self.cfg.acs {
            let i = self.rr % n;
            self.rr = (i + 1) % n;
            return Some(i);
        }
        // Peers that cannot flood in time are passed over, unless no one can.
        let anyone_relays = self.members.iter().any(Member::has_share);
        // Each visit lowers a counter, so within MAX_PERIOD passes someone is due.
        for _ in 0..n * (MAX_PERIOD as usize + 1) {
            let i = self.rr % n;
            self.rr = (i + 1) % n;
            let m = &mut self.members[i];
            if anyone_relays && !m.has_share() {
                continue;
            }
            if m.period_left <= 1 {
                m.period_left = m.period;
                return Some(i);
            }
            m.period_left -= 1;
        }
        Some(self.rr % n)
    }

    /// Admit a peer whose join request arrived over TCP; `observed` is its UDP endpoint (the TCP
    /// remote endpoint, by convention). Returns the reply to send back over TCP.
    pub fn handle_join(
        &mut self,
        now: Instant,
        observed: SocketAddr,
        request: &JoinRequest,
    ) -> Result<(PeerId, JoinReply), JoinError> {
        self.handle_join_proved(now, observed, request, None)
    }

    /// [`Splitter::handle_join`] with the joiner's proof of the team secret, which a team with
    /// a secret requires (native codec).
    pub fn handle_join_proved(
        &mut self,
        now: Instant,
        observed: SocketAddr,
        request: &JoinRequest,
        proof: Option<&JoinProof>,
    ) -> Result<(PeerId, JoinReply), JoinError> {
        self.now = now;
        let r = self.try_join(now, observed, request, proof);
        match &r {
            Ok(_) => self.stats.joins += 1,
            Err(_) => self.stats.joins_refused += 1,
        }
        r
    }

    fn try_join(
        &mut self,
        now: Instant,
        observed: SocketAddr,
        request: &JoinRequest,
        proof: Option<&JoinProof>,
    ) -> Result<(PeerId, JoinReply), JoinError> {
        if request.version != wire::VERSION {
            return Err(JoinError::BadVersion(request.version));
        }
        let native = self.cfg.codec == Codec::Native;
        if native && let Some(secret) = &self.cfg.team_secret {
            let ok = proof.is_some_and(|p| {
                auth::same(
                    &auth::join_proof(secret, &p.challenge, &request.nonce),
                    &p.proof,
                )
            });
            if !ok {
                return Err(JoinError::NotAdmitted);
            }
        }
        let observed_v4 = compat::to_v4(observed);
        if self.cfg.codec == Codec::CompatGenC && observed_v4.is_err() {
            return Err(JoinError::NotIpv4);
        }
        if native {
            // The same joiner again (a retry): the newer join replaces the unconfirmed one.
            self.joining.retain(|m| m.addr != observed);
        } else if let Some(i) = self.members.iter().position(|m| m.addr == observed) {
            self.remove(i, LeaveReason::Replaced);
        }
        // A native member rejoining from its endpoint is replaced once the rejoin confirms.
        let rejoin = usize::from(native && self.members.iter().any(|m| m.addr == observed));
        let n = self.members.len() - rejoin;
        if n >= self.cfg.max_peers || n + 1 >= self.cfg.buffer_size as usize {
            return Err(JoinError::Full);
        }
        // Unconfirmed monitors count: a burst of joins cannot all be granted the role.
        let monitors = self.monitor_count()
            + self
                .joining
                .iter()
                .filter(|m| m.role == Role::Monitor)
                .count();
        let trusted = self.cfg.trusted_monitors.contains(&observed.ip());
        let role = if trusted
            || (request.role == Role::Monitor && monitors < self.cfg.number_of_monitors)
        {
            Role::Monitor
        } else {
            Role::Peer
        };
        let id = PeerId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let key = self.key_of(id);
        // Members are listed oldest first within each role; a pair key is the older member's
        // key applied to the newcomer's id.
        let mut pair_keys: Vec<Key> = self
            .members
            .iter()
            .map(|m| auth::pair_key(&m.key, id))
            .collect();
        let mut peer_key = key;
        let keys_masked = native && self.cfg.team_secret.is_some();
        if let (true, Some(secret), Some(p)) = (keys_masked, &self.cfg.team_secret, proof) {
            let mut all = Vec::with_capacity(pair_keys.len() + 1);
            all.push(peer_key);
            all.append(&mut pair_keys);
            auth::mask_keys(secret, &p.challenge, &request.nonce, &mut all);
            peer_key = all[0];
            pair_keys = all.split_off(1);
        }
        let mut granted = wire::features::HEADER_UPDATES | wire::features::REQUEST_PRUNE;
        if self.cfg.lrs {
            granted |= wire::features::LRS;
        }
        if self.cfg.acs {
            granted |= wire::features::ACS;
        }
        let mut burst = self.burst();
        let header = self.join_header(&mut burst);
        let reply = JoinReply {
            version: wire::VERSION,
            features: request.features & granted,
            max_chunk_payload: self.cfg.max_chunk_payload as u32,
            buffer_size: self.cfg.buffer_size,
            keepalive_ms: self
                .cfg
                .keepalive_interval
                .as_millis()
                .min(u32::MAX as u128) as u32,
            team_id: self.team,
            peer_id: id,
            role,
            public_endpoint: observed,
            number_of_monitors: self.monitor_count() as u16,
            peers: self.members.iter().map(|m| (m.id, m.addr)).collect(),
            info: self.info.clone(),
            info_epoch: self.info_epoch,
            header_epoch: self.header_epoch,
            header,
            next_chunk: self.next_no,
            chunk_interval_us: self
                .chunk_interval
                .map_or(0, |d| d.as_micros().min(u128::from(u32::MAX)) as u32),
            relay_from: self.cfg.relay_from,
            burst,
            splitter_key: self.cfg.key.public(),
            peer_key,
            keys_masked,
            pair_keys,
            slow: if native {
                self.members
                    .iter()
                    .filter(|m| !m.may_relay(self.relay_rule))
                    .map(|m| m.id)
                    .collect()
            } else {
                Vec::new()
            },
            signature: [0; 64],
        };
        let mut reply = reply;
        if native {
            // Cannot fail: the reply was built within the format's caps.
            let _ = reply.sign(self.team, &self.cfg.key, &request.nonce);
        }
        let member = Member {
            id,
            addr: observed,
            role,
            last_seen: now,
            last_tx: now,
            chunks_sent: 0,
            bytes_sent: 0,
            losses: 0,
            losses_total: 0,
            period: 1,
            period_left: 1,
            capacity_period: 1,
            train: train::Train::default(),
            train_rate: None,
            joined_at: now,
            promote_left: 0,
            promoted_at: now,
            report: None,
            reported_at: now,
            report_delay: ReportDelay::default(),
            key,
            tx_seq: 0,
            rx: ReplayWindow::default(),
            trusted,
            resend_budget: RESEND_BURST,
            nat: None,
            relayed: false,
            isolated_since: None,
            hears_few: false,
            listed_upto: self.admissions,
            admitted_no: 0,
        };
        if native {
            // A member only once its first datagram proves it took the reply.
            self.hold_joiner(member);
        } else {
            self.insert_member(member);
        }
        Ok((id, reply))
    }

    /// Add a member to the team (monitors first, as in every generation), and say so.
    fn insert_member(&mut self, member: Member) -> usize {
        let n = self.members.len();
        let at = if member.role == Role::Monitor {
            self.monitor_count()
        } else {
            n
        };
        if at <= self.rr && n > 0 {
            self.rr += 1;
        }
        let (id, addr, role) = (member.id, member.addr, member.role);
        self.members.insert(at, member);
        push_bounded(
            &mut self.events,
            MAX_EVENTS,
            SplitterEvent::PeerJoined { id, addr, role },
        );
        at
    }

    fn monitor_count(&self) -> usize {
        self.members
            .iter()
            .take_while(|m| m.role == Role::Monitor)
            .count()
    }

    /// The most recent consecutive chunks, oldest first, within the burst caps.
    fn burst(&self) -> Vec<BurstChunk> {
        let want = self
            .cfg
            .burst_chunks_on_join
            .min(wire::MAX_BURST_CHUNKS)
            .min(self.cfg.buffer_size as usize / 2);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for k in 1..=want as u32 {
            let no = self.next_no.minus(k);
            let Some(s) = self.ring[self.slot_index(no)]
                .as_ref()
                .filter(|s| s.no == no)
            else {
                break;
            };
            if bytes + s.payload.len() > wire::MAX_BURST_BYTES {
                break;
            }
            bytes += s.payload.len();
            out.push(BurstChunk {
                no,
                origin: s.dest.unwrap_or(PeerId::NONE),
                payload: s.payload.clone(),
            });
        }
        out.reverse();
        out
    }

    /// One datagram from the team socket.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.now = now;
        let Some(i) = self
            .members
            .iter()
            .position(|m| m.addr == from)
            .or_else(|| self.confirm_join(now, from, data))
        else {
            self.stats.unknown_sender += 1;
            return;
        };
        let msg = match self.cfg.codec {
            Codec::Native => match wire::open(data) {
                Ok(o) => {
                    let m = &mut self.members[i];
                    // The member's own key, its own id: a spoofed address alone is not enough.
                    if o.sender != m.id || !o.verify(data, &m.key, self.team) {
                        self.stats.bad_mac += 1;
                        return;
                    }
                    if !m.rx.accept(o.seq) {
                        self.stats.replays += 1;
                        return;
                    }
                    o.packet.msg
                }
                Err(_) => {
                    self.stats.garbage += 1;
                    return;
                }
            },
            Codec::CompatGenC => {
                match compat::decode_datagram(
                    data,
                    self.cfg.max_chunk_payload,
                    Direction::ToSplitter,
                ) {
                    Ok(CompatMessage::Hello) => Message::Hello { from: PeerId::NONE },
                    Ok(CompatMessage::Goodbye) => Message::Goodbye { from: PeerId::NONE },
                    Ok(CompatMessage::LostChunk { no }) => {
                        let back = compat::narrow(self.next_no).wrapping_sub(no);
                        Message::LostChunk {
                            no: self.next_no.minus(u32::from(back)),
                            digest: false,
                        }
                    }
                    _ => {
                        self.stats.garbage += 1;
                        return;
                    }
                }
            }
        };
        self.members[i].last_seen = now;
        match msg {
            Message::Hello { .. } => {}
            // A member asks whether we are there: it has heard nothing from us, nor had a
            // chunk new to it, for a while (`Peer::ask_splitter`). Answered unless we sent it
            // something lately, so it costs a datagram per such member and interval at most.
            Message::KeepAlive { .. } => {
                if now >= self.members[i].last_tx + self.cfg.keepalive_interval {
                    self.send(i, Message::KeepAlive { from: PeerId::NONE });
                }
            }
            Message::Report(r) => {
                self.members[i].reported_at = now;
                let our_ms = now.saturating_duration_since(self.clock0).as_millis() as u32;
                self.members[i]
                    .report_delay
                    .on_report(now, our_ms, r.sent_ms);
                self.on_report(i, r);
                self.weigh_capacity(i);
            }
            Message::Train { seq, count, .. } if self.cfg.codec == Codec::Native => {
                let bytes = data.len() + UDP_IP_HEADERS;
                let m = &mut self.members[i];
                if let Some(rate) = m.train.on_datagram(now, seq, count, bytes) {
                    m.train_rate = Some(rate);
                    self.weigh_capacity(i);
                    // Once the whole Train came, its pacer starts from the reading: unpaced
                    // by it, a slow joiner's greetings would stand seconds deep in its
                    // router's queue. (Its last datagram lost, its own measurement comes
                    // later.)
                    if seq + 1 == count {
                        let msg = Message::TrainRead {
                            bytes_per_sec: rate,
                        };
                        self.send(i, msg);
                    }
                }
            }
            Message::Endpoint { endpoint } => self.on_endpoint(i, endpoint),
            Message::Goodbye { .. } => {
                // Acknowledge so the leaver can stop repeating, then drop it at once.
                self.send(i, Message::Goodbye { from: PeerId::NONE });
                self.remove(i, LeaveReason::Goodbye);
            }
            Message::LostChunk { no, digest } => {
                if self.members[i].role == Role::Monitor {
                    self.on_lost(i, no, digest);
                } else if self.cfg.codec == Codec::Native {
                    self.on_witness(i, no, digest);
                } else {
                    self.stats.ignored_complaints += 1;
                }
            }
            Message::Polluted(e) => self.on_polluted(i, &e),
            _ => self.stats.garbage += 1,
        }
    }

    /// Send chunk `no` again (LRS). It goes to the next peer in the round, which floods it as
    /// its own: always the complainer, it would carry a whole extra flood per loss, on top of
    /// its share. (Gen C keeps the complainer: its members cannot be told apart from dead
    /// ones.)
    fn resend(
        &mut self,
        no: ChunkNo,
        payload: Bytes,
        hash: [u8; 32],
        complainer: usize,
        digest: bool,
    ) {
        let target = if self.cfg.codec == Codec::Native {
            self.resend_target(complainer)
        } else {
            complainer
        };
        // The chunk's Digest may have been lost too (its one copy, or with a peer that
        // vanished): then the complainer has none, and it is flooded with the chunk. (Not
        // otherwise: a flood of it with every resend was half the team's Digest traffic at
        // N = 1000 and 1% loss.)
        let now = self.now;
        if digest
            && let Some(d) = self.digests.iter_mut().find(|d| {
                no.diff(d.first) >= 0
                    && no.diff(d.first) < i64::from(d.count)
                    && d.resends < MAX_RESENDS
                    && d.resent_at
                        .is_none_or(|t| now.saturating_duration_since(t) >= RESEND_AGAIN_AFTER)
            })
        {
            d.resends += 1;
            d.resent_at = Some(now);
            let msg = d.msg.clone();
            self.send(target, msg);
        }
        self.stats.lrs_resends += 1;
        self.send_hashed(
            target,
            Message::Chunk {
                no,
                origin: PeerId::NONE,
                relay: None,
                payload,
            },
            Some(&hash),
        );
    }

    /// Who floods a resend: the next member in the round, unless it is late with its Report
    /// (members report once a keepalive interval) or behind a NAT while a public member
    /// could flood it; then the first after it that is neither, without taking turns. A
    /// resend is a chunk's last chance, and `pick` once trusted a member until it had been
    /// silent for 1.5 intervals: in tests/team.rs's churn, a third of the
    /// resends made in the second after 30% of the team vanished went to vanished members,
    /// and their chunks were skipped by everyone. Measured in the simulator and not kept:
    /// preferring members heard from within half an interval, passing the others' turns
    /// (mixed uplinks at N = 100 0.27% → 0.66% lost, 1.25 × uplinks 0.001% → 1.2%: resends
    /// took turns from members near their capacity), and resending to the complainer, which
    /// surely lives (a monitor or witness on a slow uplink floods late: 0.46% → 1.29%).
    fn resend_target(&mut self, complainer: usize) -> usize {
        let Some(t) = self.pick() else {
            return complainer;
        };
        let anyone_relays = self.members.iter().any(Member::has_share);
        let able =
            |s: &Self, i: usize| s.may_flood(i) && (s.members[i].has_share() || !anyone_relays);
        // The flood must reach those that missed the chunk (see `reaches_all`).
        let public_only = self.public_floods(able);
        let fits = |s: &Self, i: usize| !public_only || s.members[i].reaches_all();
        if !self.late_reporting(t) && fits(self, t) {
            return t;
        }
        let n = self.members.len();
        (1..n)
            .map(|k| (t + k) % n)
            .find(|&i| able(self, i) && fits(self, i))
            .unwrap_or(t)
    }

    /// Whether member `i`'s Report is overdue by a quarter of an interval (Gen C members send
    /// none).
    fn late_reporting(&self, i: usize) -> bool {
        let ka = self.cfg.keepalive_interval;
        self.cfg.codec == Codec::Native
            && self
                .now
                .saturating_duration_since(self.members[i].reported_at)
                > ka + ka / 4
    }

    /// The ring slot of chunk `no`, which a member says it misses, and whether the team's
    /// floods run late for it; `None` (the complaint is ignored) when `no` is no longer kept.
    fn complained_of(&mut self, no: ChunkNo) -> Option<(usize, bool)> {
        let si = self.slot_index(no);
        let Some(dest) = self.ring[si]
            .as_ref()
            .filter(|s| s.no == no)
            .map(|s| s.dest)
        else {
            self.stats.ignored_complaints += 1;
            return None;
        };
        // While the team's floods run late (paced uplinks near full), a hole is a copy still
        // queued at its origin: a resend would be one more flood on uplinks with no room;
        // unless the peer it went to fell silent (a dead origin floods nothing). (Judged by
        // that peer's own reported backlog instead, it resent more and lost more: in the
        // simulator and in tests/team.rs's churn.)
        Some((si, self.team_floods_late() && self.spoke_lately(dest)))
    }

    /// A member that is no monitor says it misses chunk `no`. Only the few members that
    /// witness `no` ([`relay::witnesses`]) are heard, and only [`WITNESS_QUORUM`] of them
    /// together get it resent, from a budget of their own: monitors are few and may be
    /// sock-puppets that complain about what they like, and a chunk the splitter's datagram to
    /// its origin lost is missed by the whole team, which nothing else repairs. Witnesses
    /// never blame: they cannot get anyone expelled.
    fn on_witness(&mut self, i: usize, no: ChunkNo, digest: bool) {
        let id = self.members[i].id;
        let others = self.members.iter().map(|m| m.id);
        if !relay::witnesses(id, no.0, others) {
            self.stats.ignored_complaints += 1;
            return;
        }
        let Some((si, late)) = self.complained_of(no) else {
            return;
        };
        let now = self.now;
        let Some(slot) = self.ring[si].as_mut() else {
            return;
        };
        if slot.witness_resent {
            return;
        }
        if !slot.witnesses.contains(&id) && slot.witnesses.len() < WITNESS_QUORUM * 4 {
            slot.witnesses.push(id);
        }
        // Once per chunk, and not right after a monitor's resend; it spends none of the
        // monitors' resends (witnesses complaining early would use them up on a flood that
        // was merely late, and leave none for a monitor that still misses the chunk later).
        let due = slot
            .resent_at
            .is_none_or(|t| now.saturating_duration_since(t) >= RESEND_AGAIN_AFTER);
        let resend = self.cfg.lrs
            && due
            && !late
            && slot.witnesses.len() >= WITNESS_QUORUM
            && self.witness_budget >= 1.0;
        if !resend {
            return;
        }
        slot.resent_at = Some(now);
        slot.witness_resent = true;
        let (payload, hash) = (slot.payload.clone(), slot.hash);
        self.witness_budget -= 1.0;
        self.resend(no, payload, hash, i, digest);
    }

    /// LRS + blame: resend the kept chunk to the next peer in the round (which floods it as
    /// its own), charge the loss to the peer the chunk was sent to, expel it over the limit.
    fn on_lost(&mut self, monitor: usize, no: ChunkNo, digest: bool) {
        let Some((si, late)) = self.complained_of(no) else {
            return;
        };
        let Some(slot) = self.ring[si].as_mut() else {
            return;
        };
        let payload = slot.payload.clone();
        let hash = slot.hash;
        let complainer = self.members[monitor].id;
        let trusted = self.members[monitor].trusted;
        // Untrusted monitors' resends draw on their own budgets (one per two chunks pushed,
        // shared among the monitors): real losses stay well inside them, sock-puppets
        // complaining about everything cannot make the splitter send the stream twice, nor
        // spend an honest monitor's share.
        let metered = !trusted && self.cfg.codec == Codec::Native;
        // A repeat of a resend needs a budget to spare: a monitor complaining about
        // everything spends its share on first resends, which real losses need.
        let need = if slot.resends == 0 {
            1.0
        } else {
            REPEAT_RESERVE
        };
        let affordable = !metered || self.members[monitor].resend_budget >= need;
        // Once, and again if a monitor still misses it a while later (the resend or its
        // complaint may have been lost too).
        let due = slot.resends < MAX_RESENDS
            && slot
                .resent_at
                .is_none_or(|t| self.now.saturating_duration_since(t) >= RESEND_AGAIN_AFTER);
        let resend = self.cfg.lrs && due && affordable && !late;
        if self.cfg.lrs && due && !affordable {
            self.stats.resends_throttled += 1;
        }
        if resend {
            slot.resent_at = Some(self.now);
            slot.resends += 1;
            if metered {
                self.members[monitor].resend_budget -= 1.0;
            }
        }
        // A quorum of distinct monitors (or one trusted monitor) blames; sock-puppets that
        // hold fewer monitor slots than the quorum can only get chunks resent.
        let quorum = self.cfg.blame_quorum.unwrap_or(usize::MAX);
        if !slot.complainers.contains(&complainer) && slot.complainers.len() < 64 {
            slot.complainers.push(complainer);
        }
        // Gen C is open and unsigned, as the reference is: its monitors' reports count as
        // they come (compat_blame then expels only a member whose whole recent run is lost).
        let reached =
            trusted || self.cfg.codec == Codec::CompatGenC || slot.complainers.len() >= quorum;
        // One blame per chunk, however many monitors complain; none while floods run late
        // (the chunk's copies are likely still queued at a live origin; a dead one falls
        // silent and times out).
        let blame = if slot.blamed || !reached || late {
            None
        } else {
            slot.dest
        };
        if reached {
            slot.blamed = true;
        }
        if !reached {
            self.stats.unblamed_complaints += 1;
        }
        if resend {
            self.resend(no, payload, hash, monitor, digest);
        }
        let Some(bi) = blame.and_then(|id| self.members.iter().position(|m| m.id == id)) else {
            return;
        };
        if self.cfg.codec == Codec::CompatGenC {
            self.compat_blame(monitor, bi, no);
            return;
        }
        if self.members[bi].role == Role::Monitor {
            return;
        }
        let m = &mut self.members[bi];
        m.losses += 1;
        m.losses_total += 1;
        if self.cfg.acs {
            m.period = (m.period + 1).min(MAX_PERIOD);
        }
        if m.losses > self.cfg.max_chunk_loss {
            self.send(bi, Message::Goodbye { from: PeerId::NONE });
            self.remove(bi, LeaveReason::Expelled);
        }
    }

    /// Member `reporter` says member `e.sender` sent it a forged chunk. The splitter knows
    /// their pair key, so it checks the tag (the sender really sent this), then the hash
    /// against the chunk it numbered: proof expels the sender and tells every peer to drop it.
    fn on_polluted(&mut self, reporter: usize, e: &Evidence) {
        let reporter_id = self.members[reporter].id;
        let Some(ci) = self.members.iter().position(|m| m.id == e.sender) else {
            // Already gone (an earlier report, or it left): nothing to prove.
            self.stats.unproven_reports += 1;
            return;
        };
        if e.sender == reporter_id || e.sender == PeerId::NONE {
            self.stats.unproven_reports += 1;
            return;
        }
        let (older, newer) = if e.sender.0 < reporter_id.0 {
            (e.sender, reporter_id)
        } else {
            (reporter_id, e.sender)
        };
        let pair = auth::pair_key(&self.key_of(older), newer);
        if !auth::same(&wire::chunk_tag(&pair, self.team, e), &e.tag) {
            self.stats.unproven_reports += 1;
            return;
        }
        let forged = match self.ring[self.slot_index(e.no)]
            .as_ref()
            .filter(|s| s.no == e.no)
        {
            Some(slot) => slot.hash != e.hash,
            // Numbered beyond anything we cut: it cannot be the stream.
            None => !e.no.diff(self.next_no).is_negative(),
        };
        if !forged {
            self.stats.unproven_reports += 1;
            return;
        }
        let culprit = self.members[ci].id;
        self.send(ci, Message::Goodbye { from: PeerId::NONE });
        self.remove(ci, LeaveReason::Polluter);
        for j in 0..self.members.len() {
            self.send(j, Message::Expel { id: culprit });
        }
    }

    /// Tell every member which members were dropped for silence since the last tick. A
    /// member times a silent neighbour out only after three of its keepalive gaps (a round or
    /// more each), and floods its chunks to it until then: after 30% of a team of 100 vanished,
    /// 0.145 of every survivor's upload went to the vanished for 17 s. Once a tick, so a
    /// crowd that vanishes together costs a datagram per member.
    fn tell_gone(&mut self) {
        if self.gone.is_empty() {
            return;
        }
        let gone = std::mem::take(&mut self.gone);
        for ids in gone.chunks(wire::MAX_GONE_IDS) {
            self.send_all(&Message::Gone { ids: ids.to_vec() });
        }
    }

    /// Whether origins may make member `i` a relay ([`Member::may_relay`]).
    fn may_relay(&self, i: usize) -> bool {
        self.members[i].may_relay(self.relay_rule)
    }

    /// Note for the team's next news that member `i` may relay, or no longer may, when that
    /// changed from `could`.
    fn note_relay_change(&mut self, i: usize, could: bool) {
        let can = self.may_relay(i);
        if could != can && self.uplink_changes.len() < MAX_UPLINK_CHANGES {
            self.uplink_changes.push((self.members[i].id, can));
        }
    }

    /// Choose which members origins may make relays ([`RelayRule`]): the strictest rule under
    /// which nearly all members left to relay (their 10th percentile, of those whose uplinks
    /// we know) can carry their part of the team's relays, `N / R` streams each for `R` of
    /// them, the rule's margin over (a lower margin to keep a rule than to take it up). Once a
    /// tick, after each NATed member's reach is read from its Reports; the team hears of the
    /// members this moves at the same tick ([`Splitter::tell_uplinks`]).
    fn weigh_relay_rule(&mut self) {
        let Some(d) = self.chunk_interval.filter(|d| !d.is_zero()) else {
            return;
        };
        if self.cfg.codec != Codec::Native || self.chunk_bytes == 0.0 {
            return;
        }
        let could: Vec<bool> = (0..self.members.len()).map(|i| self.may_relay(i)).collect();
        // Most of the team: what the member that hears the most hears (a peer hears at most
        // its neighbour cap, in teams larger than that).
        let heard = |m: &Member| m.report.map_or(0, |r| r.neighbours) as f64;
        let others = self.members.iter().map(heard).fold(0.0, f64::max);
        for m in &mut self.members {
            let heard = heard(m);
            if m.nat != Some(true) || heard > REACH_AGAIN * others {
                m.hears_few = false;
            } else if heard < REACH_POOR * others {
                m.hears_few = true;
            }
        }
        let stream = self.chunk_bytes / d.as_secs_f64();
        let carries = |s: &Self, rule: RelayRule, on: f64, off: f64| {
            let margin = if s.relay_rule == rule { off } else { on };
            let relays = s.members.iter().filter(|m| m.may_relay(rule));
            let mut known: Vec<f64> = relays
                .clone()
                .map(|m| m.uplink())
                .filter(|&u| u != 0)
                .map(|u| f64::from(u) / stream)
                .collect();
            let duty = s.members.len() as f64 / relays.count().max(1) as f64 * FULL_SHARE;
            !known.is_empty() && {
                let k = known.len() / 10;
                let (_, tenth, _) = known.select_nth_unstable_by(k, f64::total_cmp);
                *tenth >= duty * margin
            }
        };
        self.relay_rule = if carries(self, RelayRule::Public, PUBLIC_RELAYS_ON, PUBLIC_RELAYS_OFF) {
            RelayRule::Public
        } else if carries(
            self,
            RelayRule::Reaching,
            REACHING_RELAYS_ON,
            REACHING_RELAYS_OFF,
        ) {
            RelayRule::Reaching
        } else {
            RelayRule::All
        };
        for (i, could) in could.into_iter().enumerate() {
            self.note_relay_change(i, could);
        }
    }

    /// `msg` to every member (news of the team, once a tick).
    fn send_all(&mut self, msg: &Message) {
        for i in 0..self.members.len() {
            self.send(i, msg.clone());
        }
    }

    /// Tell every member which members may no longer relay (uplinks too slow, or behind a
    /// NAT), or may again, since the last tick (native teams): origins of two-level floods pass
    /// the former over as relays. Once a tick, as [`Splitter::tell_gone`]; a joiner gets the whole list in its
    /// reply.
    fn tell_uplinks(&mut self) {
        if self.uplink_changes.is_empty() {
            return;
        }
        let changes = std::mem::take(&mut self.uplink_changes);
        if self.cfg.codec != Codec::Native {
            return;
        }
        // The last word on each member that is still one.
        let members: std::collections::HashSet<PeerId> =
            self.members.iter().map(|m| m.id).collect();
        let mut seen = std::collections::HashSet::new();
        let mut last: Vec<(PeerId, bool)> = Vec::new();
        for (id, able) in changes.into_iter().rev() {
            if members.contains(&id) && seen.insert(id) {
                last.push((id, able));
            }
        }
        let slow: Vec<PeerId> = last.iter().filter(|c| !c.1).map(|c| c.0).collect();
        let able: Vec<PeerId> = last.iter().filter(|c| c.1).map(|c| c.0).collect();
        let parts = slow.len().max(able.len()).div_ceil(wire::MAX_GONE_IDS);
        for k in 0..parts {
            let part = |v: &[PeerId]| -> Vec<PeerId> {
                v.iter()
                    .skip(k * wire::MAX_GONE_IDS)
                    .take(wire::MAX_GONE_IDS)
                    .copied()
                    .collect()
            };
            let msg = Message::Uplinks {
                slow: part(&slow),
                able: part(&able),
            };
            self.send_all(&msg);
        }
    }

    fn remove(&mut self, i: usize, reason: LeaveReason) {
        let m = self.members.remove(i);
        if i < self.rr {
            self.rr -= 1;
        }
        if m.role == Role::Monitor {
            self.promote_replacement();
        }
        match reason {
            LeaveReason::Goodbye => self.stats.left_goodbye += 1,
            LeaveReason::Timeout => self.stats.expelled_timeout += 1,
            LeaveReason::Expelled => self.stats.expelled_losses += 1,
            LeaveReason::Polluter => self.stats.expelled_polluters += 1,
            LeaveReason::Replaced => {}
        }
        push_bounded(
            &mut self.events,
            MAX_EVENTS,
            SplitterEvent::PeerLeft {
                id: m.id,
                addr: m.addr,
                reason,
            },
        );
    }

    /// Fewer live monitors than configured (one left, or fell silent): the oldest live plain
    /// peers become monitors, so that lost-chunk recovery (which runs on monitors' reports)
    /// survives monitors leaving, even all at once. Acting on silence rather than waiting for
    /// the timeout matters: chunks given to the vanished peers meanwhile are lost to the whole
    /// team unless a monitor reports them while the splitter still holds them. Native teams
    /// only: Gen C peers have no such message and are monitors only by joining as one.
    fn promote_replacement(&mut self) {
        if self.cfg.codec != Codec::Native {
            return;
        }
        loop {
            let monitors = self.monitor_count();
            let live = (0..monitors).filter(|&i| !self.is_suspect(i)).count();
            if live >= self.cfg.number_of_monitors {
                return;
            }
            let Some(j) = (monitors..self.members.len())
                .find(|&j| self.members[j].role == Role::Peer && !self.is_suspect(j))
            else {
                return;
            };
            // Monitors stay at the head of the list, as every generation keeps them.
            let mut m = self.members.remove(j);
            m.role = Role::Monitor;
            m.promote_left = PROMOTE_REPEATS;
            m.promoted_at = self.now;
            self.members.insert(monitors, m);
            self.send(monitors, Message::Promote);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.cfg.codec == Codec::Native {
            self.expire_joiners(now);
            self.review_relays(now);
            let mut i = self.members.len();
            while i > 0 {
                i -= 1;
                if now.saturating_duration_since(self.members[i].last_seen) >= self.cfg.peer_timeout
                {
                    let id = self.members[i].id;
                    self.remove(i, LeaveReason::Timeout);
                    // Beyond a few datagrams' worth, members time the rest out themselves.
                    if self.gone.len() < 4 * wire::MAX_GONE_IDS {
                        self.gone.push(id);
                    }
                }
            }
            self.promote_replacement();
        }
        if self
            .batch_since
            .is_some_and(|t| now >= t + self.batch_delay())
        {
            self.sign_batch();
        }
        if now >= self.next_tick {
            // Losses halve and ACS periods shrink once a second (§4.1, §4.4).
            for m in &mut self.members {
                m.losses /= 2;
                m.period = m.period.saturating_sub(1).max(m.capacity_period);
                m.period_left = m.period_left.min(m.period);
            }
            self.next_tick += TICK;
            if self.next_tick <= now {
                self.next_tick = now + TICK;
            }
            self.tell_gone();
            self.weigh_relay_rule();
            self.tell_uplinks();
            self.report_queue_bar = self.current_report_queue_bar();
        }
        if self.cfg.codec == Codec::Native {
            for i in 0..self.members.len() {
                if now >= self.keepalive_due(&self.members[i]) {
                    self.send(i, Message::KeepAlive { from: PeerId::NONE });
                }
                if self.members[i].promote_left > 0
                    && now >= self.members[i].promoted_at + self.cfg.keepalive_interval
                {
                    // Repeated in case the first was lost (UDP).
                    self.members[i].promote_left -= 1;
                    self.members[i].promoted_at = now;
                    self.send(i, Message::Promote);
                }
            }
        }
    }

    /// When member `m` needs a keepalive: once the stream has been idle, and `m` has heard
    /// nothing from us, for a keepalive interval.
    fn keepalive_due(&self, m: &Member) -> Instant {
        let last = self.last_push.map_or(m.last_tx, |p| p.max(m.last_tx));
        last + self.cfg.keepalive_interval
    }

    /// Encode per codec and queue; counts egress. Messages a Gen C peer cannot understand
    /// (keepalives, Info) are not sent in compat mode.
    fn send(&mut self, i: usize, msg: Message) {
        self.send_hashed(i, msg, None);
    }

    /// [`Splitter::send`] of a chunk whose payload hash is known.
    fn send_hashed(&mut self, i: usize, msg: Message, hash: Option<&[u8; 32]>) {
        let data = match self.cfg.codec {
            Codec::Native => {
                let m = &mut self.members[i];
                m.tx_seq += 1;
                let p = Packet {
                    team: self.team,
                    msg,
                };
                wire::seal(&p, PeerId::NONE, m.tx_seq, &m.key, hash).ok()
            }
            Codec::CompatGenC => {
                let cm = match msg {
                    Message::Chunk { no, payload, .. } => Some(CompatMessage::Chunk {
                        no: compat::narrow(no),
                        payload,
                    }),
                    Message::Goodbye { .. } => Some(CompatMessage::Goodbye),
                    _ => None,
                };
                cm.and_then(|m| compat::encode_datagram(&m, self.cfg.max_chunk_payload).ok())
            }
        };
        let Some(data) = data else { return };
        let m = &mut self.members[i];
        m.last_tx = self.now;
        m.bytes_sent += data.len() as u64;
        self.stats.bytes_sent += data.len() as u64;
        self.stats.datagrams_sent += 1;
        let t = Transmit { to: m.addr, data };
        if push_bounded(&mut self.transmits, MAX_TRANSMITS, t) {
            self.stats.transmits_dropped += 1;
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<SplitterEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.next_tick;
        if self.cfg.codec == Codec::Native {
            for m in &self.members {
                t = t.min(m.last_seen + self.cfg.peer_timeout);
                t = t.min(self.keepalive_due(m));
                if m.promote_left > 0 {
                    t = t.min(m.promoted_at + self.cfg.keepalive_interval);
                }
            }
            if let Some(b) = self.batch_since {
                t = t.min(b + self.batch_delay());
            }
            if let Some(j) = self.joining.first() {
                t = t.min(j.last_seen + admission::CONFIRM_WITHIN);
            }
        }
        Some(t)
    }

    pub fn stats(&self) -> SplitterStats {
        let mut s = self.stats.clone();
        s.peers = self
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| PeerStats {
                id: m.id,
                addr: m.addr,
                role: m.role,
                chunks_sent: m.chunks_sent,
                bytes_sent: m.bytes_sent,
                losses: m.losses,
                losses_total: m.losses_total,
                acs_period: m.period,
                last_seen: m.last_seen,
                report: m.report,
                nat: m.nat,
                relayed: m.relayed,
                relays: self.may_relay(i),
                capacity_period: m.capacity_period,
                train_rate: m.train_rate,
                report_queue: m.report_delay.queued(),
                takes_turns: self.may_flood(i),
            })
            .collect();
        s.relayed_peers = self.members.iter().filter(|m| m.relayed).count();
        s.relay_rule = match self.relay_rule {
            RelayRule::All => "all",
            RelayRule::Reaching => "reaching",
            RelayRule::Public => "public",
        };
        s
    }

    /// The Gen C configuration block for a compat peer that just joined (the runtime sends it
    /// after reading the role byte). `source`/`channel`/`header_size` are Gen C's
    /// header-fetching fields, which the splitter does not know itself.
    pub fn compat_config(
        &self,
        reply: &JoinReply,
        source: std::net::SocketAddrV4,
        channel: &str,
        header_size: u16,
    ) -> Result<compat::CompatConfig, compat::CompatError> {
        let peers = reply
            .peers
            .iter()
            .map(|(_, a)| compat::to_v4(*a))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(compat::CompatConfig {
            source,
            channel: channel.to_owned(),
            header_size,
            chunk_size: self.cfg.max_chunk_payload.min(u16::MAX as usize) as u16,
            buffer_size: self.cfg.buffer_size.min(u32::from(u16::MAX)) as u16,
            number_of_monitors: reply.number_of_monitors,
            peers,
        })
    }
}

mod admission;
mod gen_c;
mod train;

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests stand in for the driver: they read the clock
mod tests;
