//! The peer's side of [`crate::p2psp::auth`]: which datagrams are authentic, which chunks the
//! splitter's Digests vouch for, which stream Info it signed, and who is known bad.
//!
//! Every datagram is opened and its tag checked with the key its sender id calls for (the
//! splitter's datagrams under our own key, a member's under our pair key) before anything else
//! looks at it. Chunks from other members wait, unplayed and unforwarded, until a Digest vouches
//! for them; a forged one is reported to the splitter with its tag as evidence and its sender
//! is dropped. It must never play, store or forward a chunk no Digest or splitter tag vouches
//! for, and every set it keeps is bounded.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::{Insert, Peer, PeerEvent};
use crate::p2psp::auth::{self, Check, ChunkHash, Key, ReplayWindow, Verifier};
use crate::p2psp::wire::{self, Evidence, Message};
use crate::p2psp::{ChunkNo, PeerId};

/// Members remembered as bad (ids and addresses); past this the sets start afresh.
const MAX_BAD: usize = 4096;
/// Recent Digests kept to answer requests with.
const RECENT_DIGESTS: usize = 32;

/// A chunk from a member, held until a Digest covers it.
#[derive(Debug, Clone)]
pub(super) struct HeldChunk {
    from: SocketAddr,
    origin: PeerId,
    payload: Bytes,
    evidence: Evidence,
}

/// Who a signed message (a Digest, an Info) came from: the splitter's copy is flooded, a
/// neighbour's may be relayed to our group ([`super::relay`]), a stranger's is not passed on.
pub(super) enum SignedFrom {
    Splitter,
    Neighbour(usize),
    Stranger,
}

/// Keys, windows and verdicts of one peer.
#[derive(Debug)]
pub(super) struct Trust {
    /// Our own key: the splitter's datagrams and ours to it; pair keys with newer members.
    key: Key,
    splitter_key: [u8; 32],
    splitter_rx: ReplayWindow,
    pub(super) splitter_tx: u64,
    /// Pair keys with the members that joined before us (from the join reply).
    older: HashMap<PeerId, Key>,
    verifier: Verifier<HeldChunk>,
    bad_ids: HashSet<PeerId>,
    bad_addrs: HashSet<SocketAddr>,
    digests: VecDeque<(ChunkNo, u32, Message)>,
    /// Payload hashes of held chunks, by slot (chunk n at n mod capacity).
    hashes: Vec<Option<(ChunkNo, [u8; 32])>>,
    pub(super) stranger_tx: u64,
}

/// What an authentic datagram says, and who sealed it.
pub(super) struct Authentic {
    pub(super) sender: PeerId,
    pub(super) seq: u64,
    pub(super) key: Key,
    pub(super) msg: Message,
    pub(super) evidence: Option<Evidence>,
    pub(super) hash: Option<[u8; 32]>,
}

impl Trust {
    pub(super) fn new(
        key: Key,
        splitter_key: [u8; 32],
        older: HashMap<PeerId, Key>,
        capacity: u32,
    ) -> Trust {
        Trust {
            key,
            splitter_key,
            splitter_rx: ReplayWindow::default(),
            splitter_tx: 0,
            older,
            verifier: Verifier::new(capacity),
            bad_ids: HashSet::new(),
            bad_addrs: HashSet::new(),
            digests: VecDeque::new(),
            hashes: vec![None; capacity.max(1) as usize],
            stranger_tx: 0,
        }
    }

    pub(super) fn key(&self) -> &Key {
        &self.key
    }

    /// The pair key with member `id` (we are `me`); `None` for a member older than us that the
    /// splitter did not list (we cannot know its key, so nothing it sends is authentic).
    pub(super) fn pair_key(&self, me: PeerId, id: PeerId) -> Option<Key> {
        if id == PeerId::NONE || id == me {
            None
        } else if id.0 > me.0 {
            Some(auth::pair_key(&self.key, id))
        } else {
            self.older.get(&id).copied()
        }
    }

    /// The pair key with an older member the splitter introduced after our join.
    pub(super) fn learn_older(&mut self, id: PeerId, key: Key) {
        if self.older.len() < wire::MAX_PEERS_IN_LIST || self.older.contains_key(&id) {
            self.older.insert(id, key);
        }
    }

    fn hash_slot(&self, no: ChunkNo) -> usize {
        (no.0 as usize) % self.hashes.len()
    }

    pub(super) fn note_hash(&mut self, no: ChunkNo, hash: [u8; 32]) {
        let i = self.hash_slot(no);
        self.hashes[i] = Some((no, hash));
    }

    pub(super) fn hash_of(&self, no: ChunkNo) -> Option<&[u8; 32]> {
        self.hashes[self.hash_slot(no)]
            .as_ref()
            .filter(|(n, _)| *n == no)
            .map(|(_, h)| h)
    }

    fn mark_bad(&mut self, id: PeerId, addr: Option<SocketAddr>) {
        if self.bad_ids.len() >= MAX_BAD || self.bad_addrs.len() >= MAX_BAD {
            self.bad_ids.clear();
            self.bad_addrs.clear();
        }
        self.bad_ids.insert(id);
        if let Some(a) = addr {
            self.bad_addrs.insert(a);
        }
    }

    /// Whether a member's copy of chunk `no` waits for its Digest.
    pub(super) fn holds(&self, no: ChunkNo) -> bool {
        self.verifier.holds(no)
    }

    /// The Digest that covers chunk `no`, if we still hold it.
    pub(super) fn digest_for(&self, no: ChunkNo) -> Option<&Message> {
        self.digests
            .iter()
            .find(|(first, n, _)| {
                let d = no.diff(*first);
                d >= 0 && d < i64::from(*n)
            })
            .map(|(_, _, m)| m)
    }
}

impl Peer {
    /// Open `data` from `from` and check its tag; `None` (counted) when it is not authentic.
    pub(super) fn authenticate(&mut self, from: SocketAddr, data: &[u8]) -> Option<Authentic> {
        let o = match wire::open(data) {
            Ok(o) => o,
            Err(_) => {
                self.stats.garbage += 1;
                return None;
            }
        };
        let key = if from == self.cfg.splitter {
            if o.sender != PeerId::NONE {
                self.stats.bad_mac += 1;
                return None;
            }
            self.trust.key
        } else {
            if self.trust.bad_ids.contains(&o.sender) || self.trust.bad_addrs.contains(&from) {
                self.stats.from_bad_members += 1;
                return None;
            }
            match self.neighbour_index(from) {
                // A known neighbour speaks under its own id only.
                Some(i) if self.neighbours[i].id == o.sender => self.neighbours[i].key,
                Some(_) => {
                    self.stats.bad_mac += 1;
                    return None;
                }
                None => match self.trust.pair_key(self.id, o.sender) {
                    Some(k) => k,
                    None => {
                        self.stats.bad_mac += 1;
                        return None;
                    }
                },
            }
        };
        if !o.verify(data, &key, self.team) {
            self.stats.bad_mac += 1;
            return None;
        }
        // A chunk without an origin is the splitter's own kind: no member may send one.
        if from != self.cfg.splitter
            && matches!(&o.packet.msg, Message::Chunk { origin, .. } if *origin == PeerId::NONE)
        {
            self.stats.garbage += 1;
            return None;
        }
        let fresh = if from == self.cfg.splitter {
            self.trust.splitter_rx.accept(o.seq)
        } else if let Some(i) = self.neighbour_index(from) {
            self.neighbours[i].rx.accept(o.seq)
        } else {
            // A newcomer: its window starts with this datagram (see `add_neighbour`).
            true
        };
        if !fresh {
            self.stats.replays += 1;
            return None;
        }
        let evidence = o.evidence();
        Some(Authentic {
            sender: o.sender,
            seq: o.seq,
            key,
            evidence,
            hash: o.chunk_hash,
            msg: o.packet.msg,
        })
    }

    /// A chunk from member `from`: into the buffer when a Digest vouches for it, held when none
    /// has yet, reported and dropped when forged. Returns what the buffer made of it (`None`:
    /// not taken, held or refused).
    pub(super) fn admit_member_chunk(
        &mut self,
        now: Instant,
        from: SocketAddr,
        no: ChunkNo,
        origin: PeerId,
        payload: Bytes,
        evidence: Evidence,
    ) -> Option<Insert> {
        if self.buffer.get(no).is_some() {
            self.stats.duplicates += 1;
            return Some(Insert::Duplicate);
        }
        match self.trust.verifier.check(no, &evidence.hash) {
            Check::Good => {
                self.stats.verified += 1;
                self.trust.note_hash(no, evidence.hash);
                Some(self.insert_peer_chunk(now, from, no, origin, evidence.relay, payload))
            }
            Check::Bad => {
                self.reject(from, evidence);
                None
            }
            Check::Unknown => {
                // Only what could still be played is worth holding.
                let ahead = no.diff(self.buffer.next_to_play());
                if ahead < 0 {
                    self.stats.late += 1;
                } else if ahead >= 2 * i64::from(self.buffer.capacity()) {
                    self.stats.out_of_window += 1;
                } else {
                    // A second copy of one that waits for its Digest is a duplicate too:
                    // floods and routes that overlap are told so as for a chunk held (both
                    // copies of a routed chunk usually come inside one Digest's delay, and
                    // the route stayed).
                    if let Some(first) = self.trust.verifier.held_copy(no, &evidence.hash) {
                        let first = first.from;
                        self.stats.duplicates += 1;
                        if let Some(i) = self.neighbour_index(first)
                            && !self.is_flood_copy(i, origin)
                        {
                            self.note_repair(first, no);
                        }
                        return Some(Insert::Duplicate);
                    }
                    let held = HeldChunk {
                        from,
                        origin,
                        payload,
                        evidence,
                    };
                    if !self.trust.verifier.hold(no, evidence.hash, held) {
                        self.stats.duplicates += 1;
                    }
                }
                None
            }
        }
    }

    /// A forged chunk: never played, its sender reported (with the evidence) and dropped.
    fn reject(&mut self, from: SocketAddr, evidence: Evidence) {
        self.stats.rejected += 1;
        if self.trust.bad_ids.contains(&evidence.sender) {
            return;
        }
        self.trust.mark_bad(evidence.sender, Some(from));
        self.stats.polluters_reported += 1;
        self.send_splitter(Message::Polluted(evidence));
        if let Some(i) = self.neighbour_index(from) {
            self.remove_neighbour(i);
        }
    }

    /// A Digest (from the splitter or flooded by a member): checked once, its hashes noted,
    /// the chunks it vouches for released. One from the splitter goes on to every neighbour.
    pub(super) fn on_digest(&mut self, now: Instant, msg: Message, from: SignedFrom) {
        // What we keep, pass on and answer with is the splitter's message, without the mark.
        let relay = msg.signed_relay();
        let msg = msg.with_signed_relay(None);
        let Message::Digest {
            first,
            hashes,
            signature,
            ..
        } = &msg
        else {
            return;
        };
        if self.trust.digest_for(*first).is_some() {
            return;
        }
        let parts = auth::digest_parts(self.team, *first, hashes);
        if !auth::verify_signature(&self.trust.splitter_key, &[&parts], signature) {
            self.stats.bad_signatures += 1;
            return;
        }
        self.stats.digests += 1;
        let hashes: Vec<ChunkHash> = hashes.clone();
        self.trust.verifier.add_digest(*first, &hashes);
        if self.trust.digests.len() >= RECENT_DIGESTS {
            self.trust.digests.pop_front();
        }
        self.trust
            .digests
            .push_back((*first, hashes.len() as u32, msg.clone()));
        // The splitter's copy is flooded like our own chunks; a flooder's copy that makes us
        // our group's relay goes on to our group.
        match from {
            SignedFrom::Splitter => self.flood_signed(&msg, first.0),
            SignedFrom::Neighbour(i) => {
                if let Some(groups) = relay {
                    self.relay_signed(i, &msg, groups);
                }
            }
            SignedFrom::Stranger => {}
        }
        let mut out = Vec::new();
        self.trust.verifier.release(&mut out);
        for (verdict, h) in out {
            match verdict {
                Check::Good => {
                    self.stats.verified += 1;
                    self.trust.note_hash(h.no, h.hash);
                    let c = h.item;
                    let relay = c.evidence.relay;
                    self.insert_peer_chunk(now, c.from, h.no, c.origin, relay, c.payload);
                }
                _ => self.reject(h.item.from, h.item.evidence),
            }
        }
        self.playout(now);
    }

    /// A signed Info: news (a newer epoch) is applied when playout reaches its first chunk (a
    /// change of content type at once) and, when the splitter sent it to us, flooded to our
    /// neighbours. Repeats, older epochs and bad signatures are dropped.
    pub(super) fn on_info(&mut self, msg: Message, from: SignedFrom) {
        let relay = msg.signed_relay();
        let msg = msg.with_signed_relay(None);
        let Message::Info {
            epoch,
            first_chunk,
            info,
            signature,
            ..
        } = &msg
        else {
            return;
        };
        if epoch.wrapping_sub(self.info_epoch) as i32 <= 0 {
            return;
        }
        let Ok(parts) = wire::info_parts(self.team, *epoch, *first_chunk, info) else {
            return;
        };
        if !auth::verify_signature(&self.trust.splitter_key, &[&parts], signature) {
            self.stats.bad_signatures += 1;
            return;
        }
        self.info_epoch = *epoch;
        // A new content type starts a new stream (the peer mount goes live on it): at once.
        // A title waits for the chunks it belongs to.
        let same_stream = info.content_type == self.content_type;
        self.content_type = info.content_type.clone();
        if same_stream && first_chunk.is_after(self.buffer.next_to_play()) {
            self.next_info = Some((*first_chunk, info.clone()));
        } else {
            self.next_info = None;
            self.event(PeerEvent::InfoChanged(info.clone()));
        }
        match from {
            SignedFrom::Splitter => self.flood_signed(&msg, *epoch),
            SignedFrom::Neighbour(i) => {
                if let Some(groups) = relay {
                    self.relay_signed(i, &msg, groups);
                }
            }
            SignedFrom::Stranger => {}
        }
    }

    /// The splitter expelled member `id` (proven polluter): drop it and whatever it sends.
    pub(super) fn on_expel(&mut self, id: PeerId) {
        let addr = self
            .neighbours
            .iter()
            .position(|n| n.id == id)
            .map(|i| (i, self.neighbours[i].addr));
        self.trust.mark_bad(id, addr.map(|(_, a)| a));
        if let Some((i, _)) = addr {
            self.remove_neighbour(i);
        }
    }

    /// `msg` sealed for `to` (the splitter or a neighbour) under this member's genuine keys,
    /// as its next datagram to it; `None` for anyone else. For adversary models (the
    /// simulator, tests): a member that turns bad sends forged content this way.
    pub fn seal_for(&mut self, to: SocketAddr, msg: Message) -> Option<Bytes> {
        let (key, seq) = if to == self.cfg.splitter {
            self.trust.splitter_tx += 1;
            (*self.trust.key(), self.trust.splitter_tx)
        } else {
            let i = self.neighbour_index(to)?;
            self.neighbours[i].tx_seq += 1;
            (self.neighbours[i].key, self.neighbours[i].tx_seq)
        };
        self.seal(msg, &key, seq, None)
    }

    /// The newest chunk number held (played or not).
    pub fn newest_chunk(&self) -> Option<ChunkNo> {
        self.buffer.newest()
    }

    /// Held chunks that fell behind playout will never be played: forget them.
    pub(super) fn forget_unverified(&mut self) {
        let next = self.buffer.next_to_play();
        self.stats.unverified_dropped += self.trust.verifier.drop_before(next) as u64;
    }
}
