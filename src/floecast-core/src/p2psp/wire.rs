//! The native P2PSP wire format (floecast's default): versioned, typed, authenticated.
//!
//! Every message, UDP datagram or TCP frame body, starts with the same 4 bytes:
//!
//! | off | size | field |
//! |---|---|---|
//! | 0 | 2 | magic `F1 0E` |
//! | 2 | 1 | version (3) |
//! | 3 | 1 | type |
//!
//! The team id (a random cookie the splitter hands out at join) is not on the wire since
//! version 3: every datagram's tag covers it, so another team's datagram fails authentication
//! (version 2 carried it after the type, as version 1's only check).
//!
//! Every UDP datagram ends with a 24-byte trailer, `u32 sender id, u64 sequence, 12-byte tag`
//! ([`seal`] / [`open`]; the keys and what the tag covers are in [`super::auth`]). TCP frames
//! have none: the join reply is signed instead ([`JoinReply::sign`]).
//!
//! All integers are big-endian, chunk numbers are 32-bit and wrap. Endpoints are
//! `u8 family (4|6)`, 4 or 16 address bytes, `u16 port`. Strings are `u16 len` + UTF-8.
//!
//! UDP bodies: Chunk `u32 no, u32 origin, payload (rest, ≤ 60000)`; RelayChunk (a Chunk its
//! origin asks the receiver to copy on to its group: [`Message::Chunk`]'s `relay`) `u32 no,
//! u32 origin, u16 groups, u16 share, payload`; SplitterChunk (a Chunk from the splitter,
//! whose origin is its receiver) `u32 no, payload`; Hello / Goodbye /
//! KeepAlive `u32 sender id`; LostChunk `u32 no, u8 digest (0|1)`; Request `u32 no, u8 flags`
//! (1: digest, 2: stalled); DigestRequest
//! `u32 no`; Prune `u32 origin`;
//! Info `u32 epoch, u32 first_chunk` + stream info (as in [`JoinReply`]) + 64-byte Ed25519
//! signature; Digest
//! `u32 first, u16 n (≤ 64), n × 12-byte chunk hash, 64-byte Ed25519 signature`; RelayDigest
//! and RelayInfo (a flooder's copy to another group's relay: [`Message::Digest`]'s and
//! [`Message::Info`]'s `relay`) `u16 groups`, then a Digest's or an Info's body; Polluted
//! ([`Evidence`]); Expel `u32 id`; Gone `u16 n (≤ 256), n × u32 id`; Introduce `u32 id,
//! endpoint, 32-byte masked pair key`; Endpoint `endpoint`; Report
//! `u32 sender id, u32 delivered, u32 lost, u32 buffer_fill, i32 max_debt, u32 neighbours,
//! u32 verified, u32 rejected, u32 pace_rate, u32 backlog_ms, u32 uplink_rate, u32 sent_ms`;
//! Probe `u32 sent_ms`;
//! QueueDelay `u32 sent_ms, u32 ms`; Train `u8 seq, u8 count`, then padding (≤ [`MAX_TRAIN_PAD`]
//! bytes); TrainRead `u32 bytes_per_sec`; Uplinks `u16 n (≤ 256), n × u32 id, u16 m (≤ 256),
//! m × u32 id`
//! (a peer's keepalive to the splitter, with its counters, so the splitter's status shows
//! every peer's health).
//!
//! Stream info updates: when the source's facts or the now-playing title change, the splitter
//! signs an Info and sends it to a few peers, each of which floods it to its neighbours (it
//! is idempotent by epoch), so peer mounts re-serve the new content type and titles and the
//! splitter pays a few copies per title change, not one per peer.
//!
//! TCP (join) bodies travel in frames of `u32 len` + message (see [`FrameDecoder`]):
//! JoinRequest, Challenge (`16-byte nonce`, only when the team has a secret), JoinProof
//! (`32-byte proof`), JoinReply, JoinRefused; layouts at [`JoinRequest`] and [`JoinReply`].
//! A joiner of another version gets a JoinRefused in its own version's frame layout.
//!
//! Header updates travel in the stream: at a chain change the splitter numbers the new
//! header's bytes as ordinary chunks ahead of the chain's data, so they are flooded, signed
//! and repaired like any chunk and the splitter uploads one copy, whatever the team size. The
//! join reply carries the header in effect at the joiner's first chunk. (Types 0x08 and 0x09,
//! version 3's HeaderPiece and HeaderAck, are retired.)
//!
//! Decoding never panics, checks every length against what is left before allocating, and
//! rejects trailing bytes, oversize fields and unknown types. It must never trust a length
//! field for an allocation size.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use super::auth::{self, ChunkHash, Key, SIGNATURE_LEN, SplitterKey, TAG_LEN};
use super::{ChunkNo, PeerId, Role, StreamInfo};

pub const MAGIC: [u8; 2] = [0xF1, 0x0E];
/// Version 2 added the datagram trailer (sender, sequence, MAC), signed Digests, the join
/// challenge and the signed join reply ([`super::auth`]); version 3 took the team id off the
/// wire (into the tag), shortened tags and Digest hashes to 12 bytes and splitter chunks'
/// headers by their origin: 16 bytes less per chunk. Version 4 carries chain headers in the
/// stream (HeaderPiece and HeaderAck retired) and signs Info; version 5 adds the pacer's Probe
/// and QueueDelay and two Report fields; version 6 the measured uplink rate in Reports;
/// version 7 floods large teams in two levels, through relays every member must play, from
/// the team size the join reply's `relay_from` says; version 8 names the relays (RelayChunk),
/// so a copy that is not a relay's is never relayed again; version 9 says in a Request or a
/// LostChunk whether the asker needs the Digest too (answers to Requests carried one each, and
/// each resend a flood of one); version 10 keeps a two-level team's groups while its group
/// count stays and has the relays take turns (members of different versions would group the
/// team apart); version 11 stamps Reports with the peer's clock (the splitter reads the queue
/// on a member's uplink from how late they come); version 12 adds the joiner's Train (the
/// splitter measures its uplink before giving it chunks, and tells the joiner what it read)
/// and tells members whose uplinks are too slow to relay (Uplinks, and a list in the join
/// reply); version 13 groups the team by jump consistent hashing (members of different
/// versions would group it apart); version 14 has a relay copy to a share of its group, the
/// origin to the rest (RelayChunk's share); version 15 names the relays of the splitter's
/// Digests and Infos (RelayDigest, RelayInfo), as version 8 did for chunks, and asks for a
/// Digest alone (DigestRequest) for chunks the asker holds (since then, with no change of
/// format, Uplinks also names members behind NATs while the public ones can carry the relays);
/// version 16 says in a Request whether the asker's playout waits on the chunk (`stalled`:
/// served even by members whose floods are late). An older peer gets a refusal it can read
/// ([`encode_refusal`]).
pub const VERSION: u8 = 16;
pub const HEADER_LEN: usize = 4;
/// Largest UDP payload over IPv4.
pub const MAX_DATAGRAM: usize = 65507;
pub const MAX_CHUNK_PAYLOAD: usize = 60000;
pub const MAX_PEERS_IN_LIST: usize = 10000;
pub const MAX_STRING: usize = 1024;
pub const MAX_HEADER: usize = 1 << 20;
pub const MAX_BURST_CHUNKS: usize = 1024;
pub const MAX_BURST_BYTES: usize = 4 << 20;
/// Largest TCP frame body: a full header, a full burst and a full peer list fit.
pub const MAX_FRAME: usize = MAX_HEADER + MAX_BURST_BYTES + (1 << 20);

/// Feature bits offered in a JoinRequest and granted in a JoinReply.
pub mod features {
    /// Lost-chunk recovery (monitors and the chunk's witnesses complain, the splitter resends).
    pub const LRS: u32 = 1;
    /// Adaptive chunk rate at the splitter.
    pub const ACS: u32 = 2;
    /// Header updates reach the peer (in the stream, since HeaderPiece was retired).
    pub const HEADER_UPDATES: u32 = 4;
    /// Request / Prune topology repair between peers.
    pub const REQUEST_PRUNE: u32 = 8;
    pub const ALL: u32 = LRS | ACS | HEADER_UPDATES | REQUEST_PRUNE;
}

/// Message type codes: byte 3 of every message (see [`peek_type`]).
pub mod ty {
    pub const CHUNK: u8 = 0x01;
    pub const HELLO: u8 = 0x02;
    pub const GOODBYE: u8 = 0x03;
    pub const KEEPALIVE: u8 = 0x04;
    pub const LOST_CHUNK: u8 = 0x05;
    pub const REQUEST: u8 = 0x06;
    pub const PRUNE: u8 = 0x07;
    // 0x08 and 0x09 were HeaderPiece and HeaderAck (headers now travel in the stream).
    pub const PROMOTE: u8 = 0x0A;
    pub const INFO: u8 = 0x0B;
    pub const REPORT: u8 = 0x0C;
    pub const DIGEST: u8 = 0x0D;
    pub const POLLUTED: u8 = 0x0E;
    pub const EXPEL: u8 = 0x0F;
    pub const INTRODUCE: u8 = 0x10;
    pub const ENDPOINT: u8 = 0x11;
    pub const SPLITTER_CHUNK: u8 = 0x15;
    pub const PROBE: u8 = 0x16;
    pub const QUEUE_DELAY: u8 = 0x17;
    pub const RELAY_CHUNK: u8 = 0x18;
    pub const GONE: u8 = 0x19;
    pub const TRAIN: u8 = 0x1A;
    pub const UPLINKS: u8 = 0x1B;
    pub const TRAIN_READ: u8 = 0x1C;
    pub const RELAY_DIGEST: u8 = 0x1D;
    pub const RELAY_INFO: u8 = 0x1E;
    pub const DIGEST_REQUEST: u8 = 0x1F;
    pub const JOIN_REQUEST: u8 = 0x20;
    pub const JOIN_REPLY: u8 = 0x21;
    pub const JOIN_REFUSED: u8 = 0x22;
    pub const CHALLENGE: u8 = 0x23;
    pub const JOIN_PROOF: u8 = 0x24;
}

/// Most chunk hashes in one Digest.
pub const MAX_DIGEST_HASHES: usize = 64;
/// Most member ids in one Gone.
pub const MAX_GONE_IDS: usize = 256;
/// Most padding bytes in a Train datagram (it must fit one unfragmented datagram).
pub const MAX_TRAIN_PAD: usize = 1400;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WireError {
    #[error("message truncated")]
    Truncated,
    #[error("bad magic")]
    BadMagic,
    #[error("unsupported version {0}")]
    BadVersion(u8),
    #[error("unknown message type {0:#04x}")]
    UnknownType(u8),
    #[error("{what} too long: {len} > {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("trailing bytes after message")]
    TrailingBytes,
    #[error("bad address family {0}")]
    BadFamily(u8),
    #[error("bad role {0}")]
    BadRole(u8),
    #[error("string is not UTF-8")]
    BadUtf8,
    #[error("invalid field: {0}")]
    Invalid(&'static str),
    #[error("frame buffer full")]
    BufferFull,
}

/// One message and the team it belongs to. The team id is not encoded since version 3: `seal`
/// covers it with the tag (and the join reply's signature names it), and `decode` leaves it 0,
/// since the receiver knows its own team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub team: u32,
    pub msg: Message,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A piece of the stream. `origin` is the peer the splitter gave it to (the flood root).
    /// `relay`: in a two-level flood, the origin's copy to one member of another group carries
    /// the number of groups (≥ 2) it flooded in and the share of its group it copies to, and
    /// that member copies it on ([`super::peer`]'s relay module); every other copy carries
    /// `None`.
    Chunk {
        no: ChunkNo,
        origin: PeerId,
        relay: Option<Relay>,
        payload: Bytes,
    },
    Hello {
        from: PeerId,
    },
    Goodbye {
        from: PeerId,
    },
    KeepAlive {
        from: PeerId,
    },
    /// Monitor → splitter: slot `no` is still empty close to its play time.
    LostChunk {
        no: ChunkNo,
        /// The complainer has no Digest for it either (a resend then brings one).
        digest: bool,
    },
    /// Peer → peer: please send me chunk `no` (and keep sending that origin's chunks), with
    /// the Digest that vouches for it if `digest` (the asker has none for it). `stalled`: the
    /// asker's playout waits on it (it is served even by a member whose floods are late).
    Request {
        no: ChunkNo,
        digest: bool,
        stalled: bool,
    },
    /// Peer → peer: the Digest that vouches for chunk `no`; the asker holds a member's copy
    /// of the chunk, which waits for it (a Request would bring the chunk again).
    DigestRequest {
        no: ChunkNo,
    },
    /// Peer → peer: stop relaying chunks of `origin` to me (I get them elsewhere).
    Prune {
        origin: PeerId,
    },
    /// Splitter → peer: you are a monitor now (a monitor left). Monitors report lost chunks.
    Promote,
    /// The stream's facts or title changed (newer `epoch` wins). Signed by the splitter
    /// ([`info_parts`]): it sends one to a few peers, which flood it to the team.
    /// It applies from chunk `first_chunk` on (the splitter is ahead of its peers' playout by
    /// the team's latency, so a title must wait for the chunks it belongs to).
    Info {
        epoch: u32,
        first_chunk: ChunkNo,
        info: StreamInfo,
        signature: [u8; SIGNATURE_LEN],
        /// On a flooder's copy to another group's relay (a RelayInfo): its group count.
        relay: Option<u16>,
    },
    /// Peer → splitter, in place of a keepalive: how the peer is doing.
    Report(PeerReport),
    /// Splitter-signed hashes of the chunks `first ..` (flooded like a splitter chunk).
    Digest {
        first: ChunkNo,
        hashes: Vec<ChunkHash>,
        signature: [u8; SIGNATURE_LEN],
        /// On a flooder's copy to another group's relay (a RelayDigest): its group count, so
        /// that only those copies are copied on, in the flooder's groups (outside the
        /// signature, under the datagram's tag).
        relay: Option<u16>,
    },
    /// Peer → splitter: this member sent me a chunk that no Digest vouches for, with its tag.
    Polluted(Evidence),
    /// Splitter → peer: member `id` is in the team at `endpoint` (its UDP source as the
    /// splitter saw it): greet it now, as it greets us, so that both NATs open (hole
    /// punching). `key` is our pair key with it, masked with our own key
    /// ([`super::auth::intro_mask`]): a member older than us cannot be derived.
    Introduce {
        id: PeerId,
        endpoint: SocketAddr,
        key: Key,
    },
    /// Splitter → peer: the UDP endpoint it sees us at (our NAT's mapping). Peer → splitter:
    /// the endpoint we are bound at, so the splitter can tell whether we are behind a NAT.
    Endpoint {
        endpoint: SocketAddr,
    },
    /// Peer → peer, sent right behind a relayed chunk: our clock (ms) as it left, so the
    /// receiver can tell how long our uplink queued it ([`super::peer`]'s pacer).
    Probe {
        sent_ms: u32,
    },
    /// Peer → splitter: datagram `seq` of `count` sent back to back, `pad` bytes of padding
    /// each, when the peer joins (and again while it gets no chunks): their spacing on arrival
    /// is how fast its uplink serialises them, what the splitter sizes its first share by
    /// (packet-train dispersion).
    Train {
        seq: u8,
        count: u8,
        pad: u16,
    },
    /// Splitter → peer: what our Train read (bytes/s on the wire, headers included). Our
    /// pacer takes it as a measured uplink at once: before its own measurement, a slow joiner
    /// sends its greetings at the pacer's starting rate, and its router queue stands seconds
    /// deep behind them.
    TrainRead {
        bytes_per_sec: u32,
    },
    /// Splitter → peer: these members do not relay (`slow`: their uplinks are too slow to
    /// flood a chunk in time, so they get no share, or they are behind NATs while the public
    /// members can carry the team's relays), these may again (`able`). An origin of a two-level flood passes the slow over as its groups' relays: a
    /// relay copies to its whole group, about one stream, and one behind a NAT reaches only
    /// the members whose greetings opened it.
    Uplinks {
        slow: Vec<PeerId>,
        able: Vec<PeerId>,
    },
    /// Peer → peer, the answer to the Probe sent at `sent_ms`: how much longer than the
    /// sender's fastest one it took to come (ms).
    QueueDelay {
        sent_ms: u32,
        ms: u32,
    },
    /// Splitter → peer: member `id` is expelled (polluter): drop its datagrams.
    Expel {
        id: PeerId,
    },
    /// Splitter → peer: these members fell silent and were dropped from the team: send them
    /// nothing more (a member that speaks again is taken back).
    Gone {
        ids: Vec<PeerId>,
    },
    JoinRequest(JoinRequest),
    /// Splitter → joiner (team secret): prove it over this nonce.
    Challenge {
        nonce: [u8; 16],
    },
    /// Joiner → splitter: [`super::auth::join_proof`].
    JoinProof {
        proof: [u8; 32],
    },
    JoinReply(Box<JoinReply>),
    JoinRefused {
        reason: RefuseReason,
        detail: String,
    },
}

impl Message {
    /// True for messages that travel over the join TCP connection rather than UDP.
    pub fn is_tcp(&self) -> bool {
        matches!(
            self,
            Message::JoinRequest(_)
                | Message::JoinReply(_)
                | Message::JoinRefused { .. }
                | Message::Challenge { .. }
                | Message::JoinProof { .. }
        )
    }

    /// A Digest or an Info with its relay mark set to `relay` (other messages unchanged):
    /// the mark is the flooder's, never part of what the splitter signed.
    pub fn with_signed_relay(mut self, relay: Option<u16>) -> Message {
        if let Message::Digest { relay: r, .. } | Message::Info { relay: r, .. } = &mut self {
            *r = relay;
        }
        self
    }

    /// A Digest's or an Info's relay mark.
    pub fn signed_relay(&self) -> Option<u16> {
        match self {
            Message::Digest { relay, .. } | Message::Info { relay, .. } => *relay,
            _ => None,
        }
    }
}

/// A peer's health as it reports it to the splitter. Counters wrap at 2^32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerReport {
    pub from: PeerId,
    /// Chunks played, and chunks given up, since the peer joined.
    pub delivered: u32,
    pub lost: u32,
    /// Chunks held ahead of the play position.
    pub buffer_fill: u32,
    /// The largest debt any neighbour owes it (chunks sent to it minus received from it).
    pub max_debt: i32,
    pub neighbours: u32,
    /// Chunks from other members a Digest vouched for, and forged ones it dropped.
    pub verified: u32,
    pub rejected: u32,
    /// The rate its pacer sends relayed chunks at (bytes/s), and how long the oldest one it
    /// has queued has waited (ms): the splitter gives a peer that falls behind fewer chunks.
    pub pace_rate: u32,
    pub backlog_ms: u32,
    /// What its uplink carries (bytes/s) as its pacer measured it, 0 until measured: the
    /// splitter sizes its share by this (see the splitter's ACS).
    pub uplink_rate: u32,
    /// The peer's clock when it sent this (ms, from any start): the splitter takes how much
    /// later than the earliest one lately a Report comes as the queue on the peer's uplink.
    pub sent_ms: u32,
}

/// What an origin asks of the member it makes a relay (a RelayChunk): the number of groups
/// it flooded in (≥ 2), and the share of the relay's group the relay copies to, in 65536ths
/// ([`Relay::WHOLE`]: all of it). The origin copies to the rest of that group itself: a group
/// with few members able to relay gets its fair share of the team's relay duty from them, no
/// more ([`super::peer`]'s relay module says who is in which part).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relay {
    pub groups: u16,
    pub share: u16,
}

impl Relay {
    /// The whole group.
    pub const WHOLE: u16 = u16::MAX;

    /// A relay of the whole group, in `groups` groups.
    pub fn whole(groups: u16) -> Relay {
        Relay {
            groups,
            share: Relay::WHOLE,
        }
    }
}

/// What proves that a member sent a chunk: the fields its tag covers (see [`chunk_tag`]).
/// Body: `u32 sender, u32 no, u32 origin, u16 relay groups (0: none), u16 relay share, u64
/// seq, 32 B hash, 12 B tag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evidence {
    pub sender: PeerId,
    pub no: ChunkNo,
    pub origin: PeerId,
    /// The chunk's `relay` (its tag covers it).
    pub relay: Option<Relay>,
    pub seq: u64,
    pub hash: [u8; 32],
    pub tag: [u8; TAG_LEN],
}

/// Body: `u8 version, u8 role (0 peer, 1 monitor), u32 features, 16 B nonce` (the nonce the
/// splitter's signature over the reply covers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinRequest {
    pub version: u8,
    pub role: Role,
    pub features: u32,
    pub nonce: [u8; 16],
}

impl JoinRequest {
    pub fn new(role: Role) -> JoinRequest {
        JoinRequest {
            version: VERSION,
            role,
            features: features::ALL,
            nonce: [0; 16],
        }
    }
}

/// One chunk of the join burst.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BurstChunk {
    pub no: ChunkNo,
    pub origin: PeerId,
    pub payload: Bytes,
}

/// The splitter's handshake. Body, in order:
/// `u8 version, u32 features, u32 max_chunk_payload, u32 buffer_size (chunks),
/// u32 keepalive_ms, u32 team_id, u32 peer_id, u8 role (0 peer, 1 monitor: what the splitter
/// granted), endpoint public_endpoint, u16 number_of_monitors,
/// u32 n, n × (u32 id, endpoint)` (monitors first), `str content_type, str name,
/// str description, str genre, str url, str title, u8 has_bitrate, u32 bitrate,
/// u32 info_epoch, u32 header_epoch,
/// u32 header_len, header bytes, u32 next_chunk, u32 chunk_interval_us, u32 relay_from,
/// u16 burst_n,
/// burst_n × (u32 no, u32 origin, u32 len, payload), 32 B splitter public key, 32 B peer key,
/// u8 keys_masked, n × 32 B pair keys (one per listed peer), 64 B signature` (over everything
/// before it and the request's nonce, [`JoinReply::sign`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinReply {
    pub version: u8,
    pub features: u32,
    pub max_chunk_payload: u32,
    pub buffer_size: u32,
    pub keepalive_ms: u32,
    /// The team cookie every later datagram must carry (also in this frame's header).
    pub team_id: u32,
    pub peer_id: PeerId,
    /// The role the splitter granted: monitors report lost chunks, which drives LRS.
    pub role: Role,
    /// The new peer's UDP endpoint as the splitter sees it.
    pub public_endpoint: SocketAddr,
    /// How many entries at the head of `peers` are monitors.
    pub number_of_monitors: u16,
    pub peers: Vec<(PeerId, SocketAddr)>,
    pub info: StreamInfo,
    /// The epoch of `info`: later Info messages with a newer one replace it.
    pub info_epoch: u32,
    pub header_epoch: u32,
    pub header: Bytes,
    /// The number the splitter will give the next chunk it pushes.
    pub next_chunk: ChunkNo,
    /// The splitter's smoothed time between chunks, in µs (0: not known yet): the stream's
    /// rate from the first moment, which the joiner's pacer needs before it could measure it.
    pub chunk_interval_us: u32,
    /// The team size from which members flood in two levels (`peer::relay`; 0: never). A
    /// team-wide setting: members that grouped the team differently would miss copies.
    pub relay_from: u32,
    /// The most recent chunks, oldest first, ending at `next_chunk - 1`.
    pub burst: Vec<BurstChunk>,
    /// The splitter's Ed25519 public key: Digests and this reply are signed with it.
    pub splitter_key: [u8; 32],
    /// This peer's own key ([`super::auth`]); masked with the team secret when `keys_masked`.
    pub peer_key: Key,
    pub keys_masked: bool,
    /// The pair key with each listed peer, in the order of `peers`.
    pub pair_keys: Vec<Key>,
    /// Listed members that do not relay: too slow, or behind NATs (see [`Message::Uplinks`]).
    pub slow: Vec<PeerId>,
    pub signature: [u8; SIGNATURE_LEN],
}

impl JoinReply {
    /// Sign the reply of team `team` (its `team_id`) for the joiner that sent `nonce` (the
    /// signature field is ignored). The team id is signed explicitly: frames do not carry it.
    pub fn sign(
        &mut self,
        team: u32,
        key: &SplitterKey,
        nonce: &[u8; 16],
    ) -> Result<(), WireError> {
        let body = self.signed_bytes(team)?;
        self.signature = key.sign(&[&team.to_be_bytes(), &body, nonce]);
        Ok(())
    }

    /// True when `signature` is `splitter_key`'s over this reply of team `team` and `nonce`.
    pub fn verify(&self, team: u32, nonce: &[u8; 16]) -> bool {
        self.signed_bytes(team).is_ok_and(|body| {
            auth::verify_signature(
                &self.splitter_key,
                &[&team.to_be_bytes(), &body, nonce],
                &self.signature,
            )
        })
    }

    fn signed_bytes(&self, team: u32) -> Result<Bytes, WireError> {
        let mut b = encode(&Packet {
            team, // not encoded (see the module doc): signed explicitly by the callers
            msg: Message::JoinReply(Box::new(self.clone())),
        })?;
        b.truncate(b.len() - SIGNATURE_LEN);
        Ok(b)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseReason {
    Full,
    BadVersion,
    /// The team secret was missing or wrong.
    NotAdmitted,
    Other(u8),
}

impl RefuseReason {
    fn code(self) -> u8 {
        match self {
            RefuseReason::Full => 1,
            RefuseReason::BadVersion => 2,
            RefuseReason::NotAdmitted => 4,
            RefuseReason::Other(c) => c,
        }
    }
    fn from_code(c: u8) -> RefuseReason {
        match c {
            1 => RefuseReason::Full,
            2 => RefuseReason::BadVersion,
            4 => RefuseReason::NotAdmitted,
            c => RefuseReason::Other(c),
        }
    }
}

// ---------------------------------------------------------------- encoding

/// A relay's group count (RelayChunk, RelayDigest, RelayInfo): two at least (one group is a
/// one-level flood, which no member relays).
fn relay_groups(k: u16) -> Result<u16, WireError> {
    if k >= 2 {
        Ok(k)
    } else {
        Err(WireError::Invalid("relay copy with fewer than two groups"))
    }
}

/// A RelayChunk's `u16 groups, u16 share`; `None` as groups 0 (only where a field may be
/// empty: [`get_relay`]).
fn put_relay(b: &mut BytesMut, relay: Option<Relay>) -> Result<(), WireError> {
    let (groups, share) = match relay {
        Some(r) => (relay_groups(r.groups)?, r.share),
        None => (0, 0),
    };
    b.put_u16(groups);
    b.put_u16(share);
    Ok(())
}

/// A RelayChunk's `u16 groups, u16 share` (`groups` 0: none, only where a field may be empty).
fn get_relay(r: &mut Reader<'_>, optional: bool) -> Result<Option<Relay>, WireError> {
    let (groups, share) = (r.u16()?, r.u16()?);
    if optional && groups == 0 {
        return Ok(None);
    }
    Ok(Some(Relay {
        groups: relay_groups(groups)?,
        share,
    }))
}

/// A RelayDigest's or RelayInfo's `u16 groups` (written only on those types).
fn put_signed_relay(b: &mut BytesMut, relay: Option<u16>) -> Result<(), WireError> {
    if let Some(k) = relay {
        b.put_u16(relay_groups(k)?);
    }
    Ok(())
}

/// A RelayDigest's or RelayInfo's `u16 groups`, if the type has one.
fn get_signed_relay(r: &mut Reader<'_>, present: bool) -> Result<Option<u16>, WireError> {
    if !present {
        return Ok(None);
    }
    relay_groups(r.u16()?).map(Some)
}

fn check_len(what: &'static str, len: usize, max: usize) -> Result<(), WireError> {
    if len > max {
        Err(WireError::TooLong { what, len, max })
    } else {
        Ok(())
    }
}

fn put_endpoint(b: &mut BytesMut, a: &SocketAddr) {
    match a.ip() {
        IpAddr::V4(ip) => {
            b.put_u8(4);
            b.put_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            b.put_u8(6);
            b.put_slice(&ip.octets());
        }
    }
    b.put_u16(a.port());
}

fn put_str(b: &mut BytesMut, what: &'static str, s: &str) -> Result<(), WireError> {
    check_len(what, s.len(), MAX_STRING)?;
    b.put_u16(s.len() as u16);
    b.put_slice(s.as_bytes());
    Ok(())
}

/// Encode one message. Fails only when a field exceeds the format's caps (the state machines
/// validate before they encode, so for them this is a "cannot happen" that they count).
pub fn encode(p: &Packet) -> Result<Bytes, WireError> {
    let mut b = BytesMut::with_capacity(64);
    b.put_slice(&MAGIC);
    b.put_u8(VERSION);
    let t = type_of(&p.msg);
    b.put_u8(t);
    match &p.msg {
        Message::Chunk {
            no,
            origin,
            relay,
            payload,
        } => {
            check_len("chunk payload", payload.len(), MAX_CHUNK_PAYLOAD)?;
            b.reserve(10 + payload.len());
            b.put_u32(no.0);
            if t != ty::SPLITTER_CHUNK {
                b.put_u32(origin.0);
            }
            if t == ty::RELAY_CHUNK {
                put_relay(&mut b, *relay)?;
            }
            b.put_slice(payload);
        }
        Message::Hello { from } | Message::Goodbye { from } | Message::KeepAlive { from } => {
            b.put_u32(from.0)
        }
        Message::LostChunk { no, digest } => {
            b.put_u32(no.0);
            b.put_u8(u8::from(*digest));
        }
        Message::Request {
            no,
            digest,
            stalled,
        } => {
            b.put_u32(no.0);
            b.put_u8(u8::from(*digest) | u8::from(*stalled) << 1);
        }
        Message::DigestRequest { no } => b.put_u32(no.0),
        Message::Prune { origin } => b.put_u32(origin.0),
        Message::Promote => {}
        Message::Info {
            epoch,
            first_chunk,
            info,
            signature,
            relay,
        } => {
            put_signed_relay(&mut b, *relay)?;
            b.put_u32(*epoch);
            b.put_u32(first_chunk.0);
            put_info(&mut b, info)?;
            b.put_slice(signature);
        }
        Message::Report(r) => {
            b.put_u32(r.from.0);
            b.put_u32(r.delivered);
            b.put_u32(r.lost);
            b.put_u32(r.buffer_fill);
            b.put_i32(r.max_debt);
            b.put_u32(r.neighbours);
            b.put_u32(r.verified);
            b.put_u32(r.rejected);
            b.put_u32(r.pace_rate);
            b.put_u32(r.backlog_ms);
            b.put_u32(r.uplink_rate);
            b.put_u32(r.sent_ms);
        }
        Message::Digest {
            first,
            hashes,
            signature,
            relay,
        } => {
            check_len("digest", hashes.len(), MAX_DIGEST_HASHES)?;
            put_signed_relay(&mut b, *relay)?;
            b.put_u32(first.0);
            b.put_u16(hashes.len() as u16);
            for h in hashes {
                b.put_slice(h);
            }
            b.put_slice(signature);
        }
        Message::Polluted(e) => {
            b.put_u32(e.sender.0);
            b.put_u32(e.no.0);
            b.put_u32(e.origin.0);
            // Groups 0: no relay (a relay's group count is ≥ 2).
            put_relay(&mut b, e.relay)?;
            b.put_u64(e.seq);
            b.put_slice(&e.hash);
            b.put_slice(&e.tag);
        }
        Message::Expel { id } => b.put_u32(id.0),
        Message::Gone { ids } => {
            check_len("gone ids", ids.len(), MAX_GONE_IDS)?;
            b.put_u16(ids.len() as u16);
            for id in ids {
                b.put_u32(id.0);
            }
        }
        Message::Introduce { id, endpoint, key } => {
            b.put_u32(id.0);
            put_endpoint(&mut b, endpoint);
            b.put_slice(key);
        }
        Message::Endpoint { endpoint } => put_endpoint(&mut b, endpoint),
        Message::Probe { sent_ms } => b.put_u32(*sent_ms),
        Message::Uplinks { slow, able } => {
            for ids in [slow, able] {
                check_len("uplink ids", ids.len(), MAX_GONE_IDS)?;
                b.put_u16(ids.len() as u16);
                for id in ids {
                    b.put_u32(id.0);
                }
            }
        }
        Message::TrainRead { bytes_per_sec } => b.put_u32(*bytes_per_sec),
        Message::Train { seq, count, pad } => {
            let pad = usize::from(*pad);
            check_len("train padding", pad, MAX_TRAIN_PAD)?;
            b.put_u8(*seq);
            b.put_u8(*count);
            b.put_bytes(0, pad);
        }
        Message::QueueDelay { sent_ms, ms } => {
            b.put_u32(*sent_ms);
            b.put_u32(*ms);
        }
        Message::JoinRequest(r) => {
            b.put_u8(r.version);
            b.put_u8(role_code(r.role));
            b.put_u32(r.features);
            b.put_slice(&r.nonce);
        }
        Message::Challenge { nonce } => b.put_slice(nonce),
        Message::JoinProof { proof } => b.put_slice(proof),
        Message::JoinReply(r) => encode_reply(&mut b, r)?,
        Message::JoinRefused { reason, detail } => {
            b.put_u8(reason.code());
            put_str(&mut b, "refusal detail", detail)?;
        }
    }
    let max = if p.msg.is_tcp() {
        MAX_FRAME
    } else {
        MAX_DATAGRAM
    };
    check_len("message", b.len(), max)?;
    Ok(b.freeze())
}

fn encode_reply(b: &mut BytesMut, r: &JoinReply) -> Result<(), WireError> {
    check_len("peer list", r.peers.len(), MAX_PEERS_IN_LIST)?;
    check_len("header", r.header.len(), MAX_HEADER)?;
    check_len("burst", r.burst.len(), MAX_BURST_CHUNKS)?;
    if usize::from(r.number_of_monitors) > r.peers.len() {
        return Err(WireError::Invalid("more monitors than peers"));
    }
    if r.pair_keys.len() != r.peers.len() {
        return Err(WireError::Invalid("one pair key per listed peer"));
    }
    check_len("slow list", r.slow.len(), MAX_PEERS_IN_LIST)?;
    let burst_bytes: usize = r.burst.iter().map(|c| c.payload.len()).sum();
    check_len("burst bytes", burst_bytes, MAX_BURST_BYTES)?;
    b.reserve(128 + r.peers.len() * 23 + r.header.len() + burst_bytes + r.burst.len() * 12);
    b.put_u8(r.version);
    b.put_u32(r.features);
    b.put_u32(r.max_chunk_payload);
    b.put_u32(r.buffer_size);
    b.put_u32(r.keepalive_ms);
    b.put_u32(r.team_id);
    b.put_u32(r.peer_id.0);
    b.put_u8(match r.role {
        Role::Peer => 0,
        Role::Monitor => 1,
    });
    put_endpoint(b, &r.public_endpoint);
    b.put_u16(r.number_of_monitors);
    b.put_u32(r.peers.len() as u32);
    for (id, ep) in &r.peers {
        b.put_u32(id.0);
        put_endpoint(b, ep);
    }
    put_info(b, &r.info)?;
    b.put_u32(r.info_epoch);
    b.put_u32(r.header_epoch);
    b.put_u32(r.header.len() as u32);
    b.put_slice(&r.header);
    b.put_u32(r.next_chunk.0);
    b.put_u32(r.chunk_interval_us);
    b.put_u32(r.relay_from);
    b.put_u16(r.burst.len() as u16);
    for c in &r.burst {
        check_len("burst chunk", c.payload.len(), MAX_CHUNK_PAYLOAD)?;
        b.put_u32(c.no.0);
        b.put_u32(c.origin.0);
        b.put_u32(c.payload.len() as u32);
        b.put_slice(&c.payload);
    }
    b.put_slice(&r.splitter_key);
    b.put_slice(&r.peer_key);
    b.put_u8(u8::from(r.keys_masked));
    for k in &r.pair_keys {
        b.put_slice(k);
    }
    b.put_u32(r.slow.len() as u32);
    for id in &r.slow {
        b.put_u32(id.0);
    }
    b.put_slice(&r.signature);
    Ok(())
}

fn put_info(b: &mut BytesMut, i: &StreamInfo) -> Result<(), WireError> {
    put_str(b, "content type", &i.content_type)?;
    put_str(b, "icy-name", &i.name)?;
    put_str(b, "icy-description", &i.description)?;
    put_str(b, "icy-genre", &i.genre)?;
    put_str(b, "icy-url", &i.url)?;
    put_str(b, "title", &i.title)?;
    b.put_u8(u8::from(i.bitrate.is_some()));
    b.put_u32(i.bitrate.unwrap_or(0));
    Ok(())
}

/// What an Info's signature covers: the team, the epoch, its first chunk and the info as
/// encoded.
pub fn info_parts(
    team: u32,
    epoch: u32,
    first_chunk: ChunkNo,
    info: &StreamInfo,
) -> Result<Vec<u8>, WireError> {
    let mut b = BytesMut::new();
    b.put_slice(b"info");
    b.put_u32(team);
    b.put_u32(epoch);
    b.put_u32(first_chunk.0);
    put_info(&mut b, info)?;
    Ok(b.to_vec())
}

fn read_info(r: &mut Reader<'_>) -> Result<StreamInfo, WireError> {
    Ok(StreamInfo {
        content_type: r.string()?,
        name: r.string()?,
        description: r.string()?,
        genre: r.string()?,
        url: r.string()?,
        title: r.string()?,
        bitrate: {
            let has = r.u8()?;
            let v = r.u32()?;
            match has {
                0 => None,
                1 => Some(v),
                _ => return Err(WireError::Invalid("bitrate flag")),
            }
        },
    })
}

fn type_of(m: &Message) -> u8 {
    match m {
        // A chunk with no origin can only be the splitter's (members always name one).
        Message::Chunk { origin, .. } if *origin == PeerId::NONE => ty::SPLITTER_CHUNK,
        Message::Chunk { relay: Some(_), .. } => ty::RELAY_CHUNK,
        Message::Chunk { .. } => ty::CHUNK,
        Message::Hello { .. } => ty::HELLO,
        Message::Goodbye { .. } => ty::GOODBYE,
        Message::KeepAlive { .. } => ty::KEEPALIVE,
        Message::LostChunk { .. } => ty::LOST_CHUNK,
        Message::Request { .. } => ty::REQUEST,
        Message::DigestRequest { .. } => ty::DIGEST_REQUEST,
        Message::Prune { .. } => ty::PRUNE,
        Message::Info { relay: Some(_), .. } => ty::RELAY_INFO,
        Message::Info { .. } => ty::INFO,
        Message::Report(_) => ty::REPORT,
        Message::Digest { relay: Some(_), .. } => ty::RELAY_DIGEST,
        Message::Digest { .. } => ty::DIGEST,
        Message::Polluted(_) => ty::POLLUTED,
        Message::Expel { .. } => ty::EXPEL,
        Message::Gone { .. } => ty::GONE,
        Message::Introduce { .. } => ty::INTRODUCE,
        Message::Endpoint { .. } => ty::ENDPOINT,
        Message::Probe { .. } => ty::PROBE,
        Message::QueueDelay { .. } => ty::QUEUE_DELAY,
        Message::Train { .. } => ty::TRAIN,
        Message::Uplinks { .. } => ty::UPLINKS,
        Message::TrainRead { .. } => ty::TRAIN_READ,
        Message::Promote => ty::PROMOTE,
        Message::Challenge { .. } => ty::CHALLENGE,
        Message::JoinProof { .. } => ty::JOIN_PROOF,
        Message::JoinRequest(_) => ty::JOIN_REQUEST,
        Message::JoinReply(_) => ty::JOIN_REPLY,
        Message::JoinRefused { .. } => ty::JOIN_REFUSED,
    }
}

fn role_code(r: Role) -> u8 {
    match r {
        Role::Peer => 0,
        Role::Monitor => 1,
    }
}

// ---------------------------------------------------------------- decoding

/// A bounds-checked cursor: every read fails with `Truncated` instead of panicking.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.buf.len() {
            return Err(WireError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, WireError> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
    fn remaining(&self) -> usize {
        self.buf.len()
    }
    fn endpoint(&mut self) -> Result<SocketAddr, WireError> {
        let ip = match self.u8()? {
            4 => {
                let s = self.take(4)?;
                IpAddr::V4(Ipv4Addr::new(s[0], s[1], s[2], s[3]))
            }
            6 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(self.take(16)?);
                IpAddr::V6(Ipv6Addr::from(o))
            }
            f => return Err(WireError::BadFamily(f)),
        };
        Ok(SocketAddr::new(ip, self.u16()?))
    }
    fn string(&mut self) -> Result<String, WireError> {
        let n = usize::from(self.u16()?);
        check_len("string", n, MAX_STRING)?;
        let s = self.take(n)?;
        std::str::from_utf8(s)
            .map(str::to_owned)
            .map_err(|_| WireError::BadUtf8)
    }
    /// A length-prefixed (u32) byte field, capped before anything is copied.
    fn blob(&mut self, what: &'static str, max: usize) -> Result<Bytes, WireError> {
        let n = self.u32()? as usize;
        check_len(what, n, max)?;
        Ok(Bytes::copy_from_slice(self.take(n)?))
    }
    fn end(&self) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError::TrailingBytes)
        }
    }
}

/// The type code ([`ty`]) of a native message, read without decoding it; `None` when `data`
/// is too short or not native. Lets a driver classify traffic cheaply.
pub fn peek_type(data: &[u8]) -> Option<u8> {
    (data.len() >= HEADER_LEN && data[0..2] == MAGIC).then(|| data[3])
}

/// Decode one message (a whole UDP datagram, or one TCP frame body).
pub fn decode(data: &[u8]) -> Result<Packet, WireError> {
    let mut r = Reader { buf: data };
    let head = r.take(HEADER_LEN)?;
    if head[0..2] != MAGIC {
        return Err(WireError::BadMagic);
    }
    if head[2] != VERSION {
        return Err(WireError::BadVersion(head[2]));
    }
    let t = head[3];
    let tcp = matches!(
        t,
        ty::JOIN_REQUEST | ty::JOIN_REPLY | ty::JOIN_REFUSED | ty::CHALLENGE | ty::JOIN_PROOF
    );
    check_len(
        "message",
        data.len(),
        if tcp { MAX_FRAME } else { MAX_DATAGRAM },
    )?;
    let msg = match t {
        ty::CHUNK | ty::RELAY_CHUNK => {
            let no = ChunkNo(r.u32()?);
            let origin = PeerId(r.u32()?);
            if origin == PeerId::NONE {
                return Err(WireError::Invalid("member chunk without an origin"));
            }
            let relay = if t == ty::RELAY_CHUNK {
                get_relay(&mut r, false)?
            } else {
                None
            };
            let payload = r.rest();
            check_len("chunk payload", payload.len(), MAX_CHUNK_PAYLOAD)?;
            Message::Chunk {
                no,
                origin,
                relay,
                payload: Bytes::copy_from_slice(payload),
            }
        }
        ty::SPLITTER_CHUNK => {
            let no = ChunkNo(r.u32()?);
            let payload = r.rest();
            check_len("chunk payload", payload.len(), MAX_CHUNK_PAYLOAD)?;
            Message::Chunk {
                no,
                origin: PeerId::NONE,
                relay: None,
                payload: Bytes::copy_from_slice(payload),
            }
        }
        ty::HELLO => Message::Hello {
            from: PeerId(r.u32()?),
        },
        ty::GOODBYE => Message::Goodbye {
            from: PeerId(r.u32()?),
        },
        ty::KEEPALIVE => Message::KeepAlive {
            from: PeerId(r.u32()?),
        },
        ty::LOST_CHUNK => Message::LostChunk {
            no: ChunkNo(r.u32()?),
            digest: r.u8()? != 0,
        },
        ty::REQUEST => {
            let no = ChunkNo(r.u32()?);
            let flags = r.u8()?;
            Message::Request {
                no,
                digest: flags & 1 != 0,
                stalled: flags & 2 != 0,
            }
        }
        ty::DIGEST_REQUEST => Message::DigestRequest {
            no: ChunkNo(r.u32()?),
        },
        ty::PRUNE => Message::Prune {
            origin: PeerId(r.u32()?),
        },
        ty::PROMOTE => Message::Promote,
        ty::REPORT => Message::Report(PeerReport {
            from: PeerId(r.u32()?),
            delivered: r.u32()?,
            lost: r.u32()?,
            buffer_fill: r.u32()?,
            max_debt: r.u32()? as i32,
            neighbours: r.u32()?,
            verified: r.u32()?,
            rejected: r.u32()?,
            pace_rate: r.u32()?,
            backlog_ms: r.u32()?,
            uplink_rate: r.u32()?,
            sent_ms: r.u32()?,
        }),
        ty::INFO | ty::RELAY_INFO => {
            let relay = get_signed_relay(&mut r, t == ty::RELAY_INFO)?;
            let epoch = r.u32()?;
            Message::Info {
                epoch,
                first_chunk: ChunkNo(r.u32()?),
                info: read_info(&mut r)?,
                signature: r.array()?,
                relay,
            }
        }
        ty::DIGEST | ty::RELAY_DIGEST => {
            let relay = get_signed_relay(&mut r, t == ty::RELAY_DIGEST)?;
            let first = ChunkNo(r.u32()?);
            let n = usize::from(r.u16()?);
            check_len("digest", n, MAX_DIGEST_HASHES)?;
            let mut hashes = Vec::with_capacity(n);
            for _ in 0..n {
                hashes.push(r.array()?);
            }
            Message::Digest {
                first,
                hashes,
                signature: r.array()?,
                relay,
            }
        }
        ty::POLLUTED => Message::Polluted(Evidence {
            sender: PeerId(r.u32()?),
            no: ChunkNo(r.u32()?),
            origin: PeerId(r.u32()?),
            relay: get_relay(&mut r, true)?,
            seq: r.u64()?,
            hash: r.array()?,
            tag: r.array()?,
        }),
        ty::EXPEL => Message::Expel {
            id: PeerId(r.u32()?),
        },
        ty::GONE => {
            let n = usize::from(r.u16()?);
            check_len("gone ids", n, MAX_GONE_IDS)?;
            let mut ids = Vec::with_capacity(n);
            for _ in 0..n {
                ids.push(PeerId(r.u32()?));
            }
            Message::Gone { ids }
        }
        ty::INTRODUCE => Message::Introduce {
            id: PeerId(r.u32()?),
            endpoint: r.endpoint()?,
            key: r.array()?,
        },
        ty::ENDPOINT => Message::Endpoint {
            endpoint: r.endpoint()?,
        },
        ty::PROBE => Message::Probe { sent_ms: r.u32()? },
        ty::UPLINKS => {
            let mut lists = [Vec::new(), Vec::new()];
            for ids in &mut lists {
                let n = usize::from(r.u16()?);
                check_len("uplink ids", n, MAX_GONE_IDS)?;
                ids.reserve(n.min(r.remaining() / 4));
                for _ in 0..n {
                    ids.push(PeerId(r.u32()?));
                }
            }
            let [slow, able] = lists;
            Message::Uplinks { slow, able }
        }
        ty::TRAIN_READ => Message::TrainRead {
            bytes_per_sec: r.u32()?,
        },
        ty::TRAIN => {
            let seq = r.u8()?;
            let count = r.u8()?;
            let pad = r.rest().len();
            check_len("train padding", pad, MAX_TRAIN_PAD)?;
            Message::Train {
                seq,
                count,
                pad: pad as u16,
            }
        }
        ty::QUEUE_DELAY => Message::QueueDelay {
            sent_ms: r.u32()?,
            ms: r.u32()?,
        },
        ty::CHALLENGE => Message::Challenge { nonce: r.array()? },
        ty::JOIN_PROOF => Message::JoinProof { proof: r.array()? },
        ty::JOIN_REQUEST => {
            let version = r.u8()?;
            let role = match r.u8()? {
                0 => Role::Peer,
                1 => Role::Monitor,
                x => return Err(WireError::BadRole(x)),
            };
            let features = r.u32()?;
            Message::JoinRequest(JoinRequest {
                version,
                role,
                features,
                nonce: r.array()?,
            })
        }
        ty::JOIN_REPLY => Message::JoinReply(Box::new(decode_reply(&mut r)?)),
        ty::JOIN_REFUSED => {
            let reason = RefuseReason::from_code(r.u8()?);
            let detail = r.string()?;
            Message::JoinRefused { reason, detail }
        }
        other => return Err(WireError::UnknownType(other)),
    };
    r.end()?;
    // Not on the wire (see the module doc): the receiver knows its team.
    Ok(Packet { team: 0, msg })
}

fn decode_reply(r: &mut Reader<'_>) -> Result<JoinReply, WireError> {
    let version = r.u8()?;
    let features = r.u32()?;
    let max_chunk_payload = r.u32()?;
    let buffer_size = r.u32()?;
    let keepalive_ms = r.u32()?;
    let team_id = r.u32()?;
    let peer_id = PeerId(r.u32()?);
    let role = match r.u8()? {
        0 => Role::Peer,
        1 => Role::Monitor,
        x => return Err(WireError::BadRole(x)),
    };
    let public_endpoint = r.endpoint()?;
    let number_of_monitors = r.u16()?;
    let n = r.u32()? as usize;
    check_len("peer list", n, MAX_PEERS_IN_LIST)?;
    // 11 bytes is the smallest entry (id + IPv4 endpoint): never reserve more than the input
    // could possibly hold.
    let mut peers = Vec::with_capacity(n.min(r.remaining() / 11));
    for _ in 0..n {
        let id = PeerId(r.u32()?);
        peers.push((id, r.endpoint()?));
    }
    if usize::from(number_of_monitors) > peers.len() {
        return Err(WireError::Invalid("more monitors than peers"));
    }
    let info = read_info(r)?;
    let info_epoch = r.u32()?;
    let header_epoch = r.u32()?;
    let header = r.blob("header", MAX_HEADER)?;
    let next_chunk = ChunkNo(r.u32()?);
    let chunk_interval_us = r.u32()?;
    let relay_from = r.u32()?;
    let bn = usize::from(r.u16()?);
    check_len("burst", bn, MAX_BURST_CHUNKS)?;
    let mut burst = Vec::with_capacity(bn.min(r.remaining() / 12));
    let mut burst_bytes = 0usize;
    for _ in 0..bn {
        let no = ChunkNo(r.u32()?);
        let origin = PeerId(r.u32()?);
        let payload = r.blob("burst chunk", MAX_CHUNK_PAYLOAD)?;
        burst_bytes += payload.len();
        check_len("burst bytes", burst_bytes, MAX_BURST_BYTES)?;
        burst.push(BurstChunk {
            no,
            origin,
            payload,
        });
    }
    let splitter_key = r.array()?;
    let peer_key = r.array()?;
    let keys_masked = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(WireError::Invalid("keys_masked flag")),
    };
    let mut pair_keys = Vec::with_capacity(peers.len().min(r.remaining() / 32));
    for _ in 0..peers.len() {
        pair_keys.push(r.array()?);
    }
    let n = r.u32()? as usize;
    check_len("slow list", n, MAX_PEERS_IN_LIST)?;
    let mut slow = Vec::with_capacity(n.min(r.remaining() / 4));
    for _ in 0..n {
        slow.push(PeerId(r.u32()?));
    }
    let signature = r.array()?;
    Ok(JoinReply {
        version,
        features,
        max_chunk_payload,
        buffer_size,
        keepalive_ms,
        team_id,
        peer_id,
        role,
        public_endpoint,
        number_of_monitors,
        peers,
        info,
        info_epoch,
        header_epoch,
        header,
        next_chunk,
        chunk_interval_us,
        relay_from,
        burst,
        splitter_key,
        peer_key,
        keys_masked,
        pair_keys,
        slow,
        signature,
    })
}

// ---------------------------------------------------------------- datagrams (sealed)

mod sealed;
pub use sealed::{Opened, chunk_tag, encode_refusal, open, peek_version, seal};

// ---------------------------------------------------------------- TCP framing

/// Encode a message as one TCP frame: `u32 len` + body.
pub fn encode_frame(p: &Packet) -> Result<Bytes, WireError> {
    let body = encode(p)?;
    let mut b = BytesMut::with_capacity(4 + body.len());
    b.put_u32(body.len() as u32);
    b.put_slice(&body);
    Ok(b.freeze())
}

/// Sans-IO splitter of a TCP byte stream into frames. Push what the socket gave, pop frames.
/// A frame longer than `max_frame` is an error (close the connection): the decoder never
/// buffers more than one maximal frame plus one push.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max_frame: usize,
}

impl FrameDecoder {
    pub fn new(max_frame: usize) -> FrameDecoder {
        FrameDecoder {
            buf: BytesMut::new(),
            max_frame: max_frame.min(MAX_FRAME),
        }
    }

    /// Append received bytes. Fails when the caller keeps pushing without popping.
    pub fn push(&mut self, data: &[u8]) -> Result<(), WireError> {
        if self.buf.len() + data.len() > 2 * (self.max_frame + 4) {
            return Err(WireError::BufferFull);
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// The next complete frame body, `Ok(None)` if more bytes are needed.
    pub fn pop_frame(&mut self) -> Result<Option<Bytes>, WireError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let n = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        check_len("frame", n, self.max_frame)?;
        if self.buf.len() < 4 + n {
            return Ok(None);
        }
        let _ = self.buf.split_to(4);
        Ok(Some(self.buf.split_to(n).freeze()))
    }

    /// Bytes held that do not yet form a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests;
