//! Integrity and authentication of a native team: who may join, which chunks are the stream, and
//! which datagrams really come from the member they name. Gen C teams have none of this (the
//! reference is open and unsigned); everything here is for the native codec only.
//!
//! The design, in one place:
//!
//! - **Splitter key.** The splitter holds an Ed25519 key pair, generated at start or loaded from
//!   `splitter-key-file`. Its public key goes out in every join reply, and operators can pin it
//!   at a peer (`splitter-key`), so that a host answering at a hijacked splitter address cannot
//!   feed the peer. The join reply is signed over its bytes plus a nonce the peer chose, so a
//!   recorded reply cannot be replayed to a later joiner.
//! - **Signed chunks, in batches.** Chunks leave the splitter at once; every [`BATCH_CHUNKS`]
//!   chunks (or after [`batch_delay`]: 250 ms to 4 s) the splitter signs a Digest: the first chunk
//!   number and one 12-byte BLAKE3 hash per chunk, one Ed25519 signature for the batch (PPSPP's idea for
//!   live streams, RFC 7574 §6.1, with a flat hash list in place of a Merkle tree: the list is
//!   small and every peer needs every hash). The Digest is flooded like a splitter chunk, so
//!   the splitter uploads one copy. A peer holds a chunk that came from another peer, unplayed
//!   and unforwarded, until a Digest vouches for it ([`Verifier`], bounded); a chunk whose hash
//!   differs is dropped and its sender reported. The cost per chunk is one BLAKE3 hash, plus
//!   one signature check per batch.
//! - **Per-peer keys and MACs.** At join the splitter gives each peer a random 32-byte key
//!   (masked with the team secret when there is one). Every UDP datagram ends with a trailer:
//!   `u32 sender id, u64 sequence, 12-byte tag`, the tag a keyed BLAKE3 over the team id and
//!   the datagram with a chunk's payload replaced by its hash (so each chunk is hashed once however many
//!   neighbours get it). Splitter ↔ peer datagrams use the peer's key (the sender id, 0 for the
//!   splitter, tells the directions apart). Peer ↔ peer datagrams use a pair key derived from
//!   the older member's key and the newer member's id ([`pair_key`]): the older member derives
//!   it itself, the newcomer gets it in its join reply for every listed member. A spoofed
//!   source address, a forged goodbye or a replayed datagram (the sequence number is checked
//!   against a sliding [`ReplayWindow`]) is dropped. Chunks are MAC'd too, so a report of a
//!   bad chunk is evidence: the splitter knows every pair key, recomputes the sender's tag and
//!   compares the hash with the chunk it sent, so no one can frame an honest peer.
//! - **Admission.** With a team secret, the splitter answers a join request with a random
//!   challenge; the peer proves the secret with a keyed hash over both nonces. The secret never
//!   crosses the network.
//!
//! Limits of the design: the join TCP connection is not encrypted, so an on-path observer of a
//! join without a team secret learns that peer's key (it could then speak as that peer); an
//! on-path attacker is out of scope, as for plain HTTP streaming. Everything here is sans-IO.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier as _, VerifyingKey};

use super::{ChunkNo, PeerId};

/// A symmetric key: a peer's own key, or a pair key.
pub type Key = [u8; 32];
/// Bytes of the tag that ends every native datagram: 96 bits, as AES-GCM's default tag (SRTP
/// authenticates media with 80); a forger gets one try per datagram, with no offline attack.
pub const TAG_LEN: usize = 12;
/// Bytes of a chunk hash in a Digest: a forged chunk needs a second preimage of 96 bits of
/// BLAKE3, within the chunk's few seconds of life.
pub const DIGEST_HASH_LEN: usize = 12;
/// The trailer of every native datagram: sender id, sequence number, tag.
pub const TRAILER_LEN: usize = 4 + 8 + TAG_LEN;
/// Ed25519 signature and public key sizes.
pub const SIGNATURE_LEN: usize = 64;
pub const PUBLIC_KEY_LEN: usize = 32;
/// Chunks per signed Digest (fewer when [`batch_delay`] passes first).
pub const BATCH_CHUNKS: usize = 32;
/// Bounds of [`batch_delay`].
pub const MIN_BATCH_DELAY: Duration = Duration::from_millis(250);
pub const MAX_BATCH_DELAY: Duration = Duration::from_secs(4);

/// Chunks a Digest is meant to cover when time, not [`BATCH_CHUNKS`], closes it.
const BATCH_TARGET_CHUNKS: u32 = 16;

/// How long a Digest may wait after the first chunk it covers, for a stream of one chunk per
/// `chunk_interval` played `buffer / 2` chunks behind: the time 16 chunks take (enough to
/// spread the signature thin), within 250 ms – 4 s and at most a quarter of the playout lag.
/// Peers hold other members' chunks until their Digest comes, so monitors and requesters wait
/// this much longer before taking a hole for a lost chunk, and playout before skipping one;
/// the splitter and the peers compute it alike from the chunk rate. At 128 kbit/s in 1 KiB
/// chunks that is 1 s; at 24 kbit/s, 4 s (a signature per chunk there would cost 10% of the
/// stream). Unknown rate: the most.
pub fn batch_delay(chunk_interval: Option<Duration>, buffer: u32) -> Duration {
    chunk_interval.map_or(MAX_BATCH_DELAY, |d| {
        let lag = d * (buffer / 2);
        (d * BATCH_TARGET_CHUNKS)
            .min(lag / 4)
            .clamp(MIN_BATCH_DELAY, MAX_BATCH_DELAY)
    })
}

/// A chunk's 12-byte hash as a Digest lists it.
pub type ChunkHash = [u8; DIGEST_HASH_LEN];

/// The full BLAKE3 hash of a chunk payload (its first 16 bytes are the Digest entry).
pub fn payload_hash(payload: &[u8]) -> [u8; 32] {
    *blake3::hash(payload).as_bytes()
}

/// The Digest entry of a chunk whose full hash is `h`.
pub fn short(h: &[u8; 32]) -> ChunkHash {
    let mut s = [0u8; DIGEST_HASH_LEN];
    s.copy_from_slice(&h[..DIGEST_HASH_LEN]);
    s
}

/// The key of the pair (older member, newer member), from the older one's key and the newer
/// one's id: the older member derives it alone, the splitter tells the newer one.
pub fn pair_key(older: &Key, newer: PeerId) -> Key {
    let mut h = blake3::Hasher::new_keyed(older);
    h.update(b"floecast pair key v2");
    h.update(&newer.0.to_be_bytes());
    *h.finalize().as_bytes()
}

/// The key derived from a team secret (the configured string never leaves the process).
pub fn secret_key(secret: &str) -> Key {
    blake3::derive_key("floecast team secret v2", secret.as_bytes())
}

/// The proof of the team secret for one join: both nonces, under the secret's key.
pub fn join_proof(secret: &Key, challenge: &[u8; 16], nonce: &[u8; 16]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(secret);
    h.update(b"floecast join proof v2");
    h.update(challenge);
    h.update(nonce);
    *h.finalize().as_bytes()
}

/// The mask over the keys of one join reply when the team has a secret: XOR with a keyed
/// BLAKE3 stream over both nonces, so the keys are not readable by someone without the secret.
pub fn mask_keys(secret: &Key, challenge: &[u8; 16], nonce: &[u8; 16], keys: &mut [Key]) {
    let mut h = blake3::Hasher::new_keyed(secret);
    h.update(b"floecast key mask v2");
    h.update(challenge);
    h.update(nonce);
    let mut xof = h.finalize_xof();
    for k in keys {
        let mut m = [0u8; 32];
        xof.fill(&mut m);
        for (b, x) in k.iter_mut().zip(m) {
            *b ^= x;
        }
    }
}

/// Mask (or unmask: XOR) the pair key that an Introduce carries to the member holding
/// `recipient` about member `introduced`: only that member and the splitter know the mask, so
/// the key is not readable on the wire.
pub fn intro_mask(recipient: &Key, team: u32, introduced: PeerId, key: &mut Key) {
    let mut h = blake3::Hasher::new_keyed(recipient);
    h.update(b"floecast introduction mask v2");
    h.update(&team.to_be_bytes());
    h.update(&introduced.0.to_be_bytes());
    for (b, x) in key.iter_mut().zip(h.finalize().as_bytes()) {
        *b ^= x;
    }
}

/// Equality in constant time (tags and proofs).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A keyed tag over `parts`, truncated to [`TAG_LEN`].
pub fn tag(key: &Key, parts: &[&[u8]]) -> [u8; TAG_LEN] {
    let mut h = blake3::Hasher::new_keyed(key);
    for p in parts {
        h.update(p);
    }
    let mut t = [0u8; TAG_LEN];
    t.copy_from_slice(&h.finalize().as_bytes()[..TAG_LEN]);
    t
}

/// The splitter's signing key.
#[derive(Clone)]
pub struct SplitterKey(SigningKey);

impl std::fmt::Debug for SplitterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SplitterKey({})", hex(&self.public()))
    }
}

impl SplitterKey {
    /// The key whose secret half is `seed` (32 random bytes from the caller, or a key file).
    pub fn from_seed(seed: &[u8; 32]) -> SplitterKey {
        SplitterKey(SigningKey::from_bytes(seed))
    }
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
    pub fn public(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.0.verifying_key().to_bytes()
    }
    pub fn sign(&self, parts: &[&[u8]]) -> [u8; SIGNATURE_LEN] {
        self.0.sign(&transcript(parts)).to_bytes()
    }
}

/// Check a signature made by [`SplitterKey::sign`] over the same `parts`.
pub fn verify_signature(public: &[u8; 32], parts: &[&[u8]], sig: &[u8; SIGNATURE_LEN]) -> bool {
    let Ok(k) = VerifyingKey::from_bytes(public) else {
        return false;
    };
    k.verify(&transcript(parts), &Signature::from_bytes(sig))
        .is_ok()
}

/// What is signed: the parts' BLAKE3 hash (so a 1 MiB join reply is hashed once, fast).
fn transcript(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"floecast signature v2");
    for p in parts {
        h.update(&(p.len() as u64).to_be_bytes());
        h.update(p);
    }
    *h.finalize().as_bytes()
}

/// The signed bytes of a Digest.
pub fn digest_parts(team: u32, first: ChunkNo, hashes: &[ChunkHash]) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + hashes.len() * DIGEST_HASH_LEN);
    v.extend_from_slice(b"digest");
    v.extend_from_slice(&team.to_be_bytes());
    v.extend_from_slice(&first.0.to_be_bytes());
    for h in hashes {
        v.extend_from_slice(h);
    }
    v
}

/// Lower-case hex, for logs and status pages.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A public key as an operator writes it: 64 hex digits or standard base64 (with or without
/// padding).
pub fn parse_public_key(s: &str) -> Option<[u8; PUBLIC_KEY_LEN]> {
    let s = s.trim();
    let bytes = if s.len() == 64 && s.bytes().all(|c| c.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?
    } else {
        use base64::Engine as _;
        let e = base64::engine::general_purpose::STANDARD_NO_PAD;
        e.decode(s.trim_end_matches('=')).ok()?
    };
    let k: [u8; 32] = bytes.try_into().ok()?;
    VerifyingKey::from_bytes(&k).ok().map(|_| k)
}

/// Anti-replay: accepts each sequence number once, newer than the highest seen or at most
/// 128 behind it (datagrams may arrive slightly out of order).
#[derive(Debug, Clone, Default)]
pub struct ReplayWindow {
    highest: Option<u64>,
    /// Bit i: `highest - i` was seen.
    seen: u128,
}

impl ReplayWindow {
    /// True (and remembered) when `seq` is new.
    pub fn accept(&mut self, seq: u64) -> bool {
        let Some(h) = self.highest else {
            self.highest = Some(seq);
            self.seen = 1;
            return true;
        };
        if seq > h {
            let shift = seq - h;
            self.seen = if shift >= 128 { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.highest = Some(seq);
            return true;
        }
        let back = h - seq;
        if back >= 128 || self.seen & (1 << back) != 0 {
            return false;
        }
        self.seen |= 1 << back;
        true
    }
}

/// What the verifier makes of a chunk from another peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// A Digest vouches for it.
    Good,
    /// A Digest lists another hash: forged.
    Bad,
    /// No Digest yet: hold it.
    Unknown,
}

/// A chunk held until a Digest vouches for it, with what proves who sent it.
#[derive(Debug, Clone)]
pub struct Held<T> {
    pub no: ChunkNo,
    pub hash: [u8; 32],
    pub item: T,
}

/// A peer's record of the hashes Digests vouched for, and of the chunks from other peers that
/// wait for one. Bounded: `window` chunk numbers of hashes, at most [`MAX_CANDIDATES`] copies
/// per chunk number and `window` held chunks in all (the oldest go first).
#[derive(Debug)]
pub struct Verifier<T> {
    window: u32,
    known: HashMap<u32, ChunkHash>,
    known_order: VecDeque<u32>,
    held: VecDeque<Held<T>>,
}

/// Copies of one chunk number held at once (an honest one among a few forged ones).
pub const MAX_CANDIDATES: usize = 4;

impl<T> Verifier<T> {
    pub fn new(window: u32) -> Verifier<T> {
        Verifier {
            window: window.max(16),
            known: HashMap::new(),
            known_order: VecDeque::new(),
            held: VecDeque::new(),
        }
    }

    /// Note the hashes of a verified Digest; returns false when it was already known.
    pub fn add_digest(&mut self, first: ChunkNo, hashes: &[ChunkHash]) -> bool {
        let mut added = false;
        for (i, h) in hashes.iter().enumerate() {
            let no = first.plus(i as u32).0;
            if self.known.insert(no, *h).is_none() {
                added = true;
                self.known_order.push_back(no);
            }
        }
        while self.known_order.len() > 2 * self.window as usize {
            if let Some(old) = self.known_order.pop_front() {
                self.known.remove(&old);
            }
        }
        added
    }

    pub fn check(&self, no: ChunkNo, hash: &[u8; 32]) -> Check {
        match self.known.get(&no.0) {
            Some(h) if same(h, &hash[..DIGEST_HASH_LEN]) => Check::Good,
            Some(_) => Check::Bad,
            None => Check::Unknown,
        }
    }

    /// The copy of chunk `no` with payload hash `hash` already held, if any.
    pub fn held_copy(&self, no: ChunkNo, hash: &[u8; 32]) -> Option<&T> {
        self.held
            .iter()
            .find(|h| h.no == no && h.hash == *hash)
            .map(|h| &h.item)
    }

    /// Hold a chunk until a Digest covers it. Returns false when it was not held (too many
    /// copies of that number already).
    pub fn hold(&mut self, no: ChunkNo, hash: [u8; 32], item: T) -> bool {
        let copies = self.held.iter().filter(|h| h.no == no).count();
        if copies >= MAX_CANDIDATES || self.held.iter().any(|h| h.no == no && h.hash == hash) {
            return false;
        }
        if self.held.len() >= self.window as usize {
            self.held.pop_front();
        }
        self.held.push_back(Held { no, hash, item });
        true
    }

    /// Held chunks that a Digest now covers, each with its verdict.
    pub fn release(&mut self, out: &mut Vec<(Check, Held<T>)>) {
        let mut i = 0;
        while i < self.held.len() {
            let c = self.check(self.held[i].no, &self.held[i].hash);
            if c == Check::Unknown {
                i += 1;
                continue;
            }
            if let Some(h) = self.held.remove(i) {
                out.push((c, h));
            }
        }
    }

    /// Forget held chunks numbered before `before` (played or skipped already).
    pub fn drop_before(&mut self, before: ChunkNo) -> usize {
        let n = self.held.len();
        self.held.retain(|h| h.no.diff(before) >= 0);
        n - self.held.len()
    }

    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Whether a copy of chunk `no` waits here for its Digest.
    pub fn holds(&self, no: ChunkNo) -> bool {
        self.held.iter().any(|h| h.no == no)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_window_accepts_each_number_once() {
        let mut w = ReplayWindow::default();
        assert!(w.accept(10));
        assert!(!w.accept(10));
        assert!(w.accept(12));
        assert!(w.accept(11));
        assert!(!w.accept(11));
        assert!(w.accept(500));
        assert!(!w.accept(12), "too far behind");
        assert!(w.accept(499));
    }

    #[test]
    fn signatures_verify_and_fail_on_change() {
        let k = SplitterKey::from_seed(&[7; 32]);
        let s = k.sign(&[b"abc", b"def"]);
        assert!(verify_signature(&k.public(), &[b"abc", b"def"], &s));
        assert!(!verify_signature(&k.public(), &[b"abcd", b"ef"], &s));
        let other = SplitterKey::from_seed(&[8; 32]);
        assert!(!verify_signature(&other.public(), &[b"abc", b"def"], &s));
    }

    #[test]
    fn public_keys_parse_as_hex_or_base64() {
        let k = SplitterKey::from_seed(&[3; 32]).public();
        assert_eq!(parse_public_key(&hex(&k)), Some(k));
        use base64::Engine as _;
        let b = base64::engine::general_purpose::STANDARD.encode(k);
        assert_eq!(parse_public_key(&b), Some(k));
        assert_eq!(parse_public_key("nope"), None);
    }

    #[test]
    fn masked_keys_unmask_with_the_same_secret() {
        let s = secret_key("team");
        let orig = [[1u8; 32], [2u8; 32]];
        let mut keys = orig;
        mask_keys(&s, &[1; 16], &[2; 16], &mut keys);
        assert_ne!(keys, orig);
        mask_keys(&s, &[1; 16], &[2; 16], &mut keys);
        assert_eq!(keys, orig);
    }

    #[test]
    fn verifier_sorts_held_copies_when_the_digest_comes() {
        let mut v: Verifier<u8> = Verifier::new(64);
        let good = payload_hash(b"good");
        let bad = payload_hash(b"evil");
        assert!(v.hold(ChunkNo(5), bad, 1));
        assert!(v.hold(ChunkNo(5), good, 2));
        assert!(!v.hold(ChunkNo(5), good, 3), "same copy twice");
        assert_eq!(v.check(ChunkNo(5), &good), Check::Unknown);
        v.add_digest(ChunkNo(4), &[[0; 12], short(&good)]);
        let mut out = Vec::new();
        v.release(&mut out);
        let verdicts: Vec<(Check, u8)> = out.iter().map(|(c, h)| (*c, h.item)).collect();
        assert_eq!(verdicts, vec![(Check::Bad, 1), (Check::Good, 2)]);
        assert_eq!(v.held(), 0);
    }
}
