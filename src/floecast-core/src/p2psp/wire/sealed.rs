//! Datagrams with their trailer: [`seal`] adds the sender id, sequence number and tag that
//! authenticate a native datagram, [`open`] splits them off again (checking the tag is the
//! caller's, with the key the sender id calls for: see [`super::super::auth`]). Also the
//! refusal a joiner of another wire version can read.

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    Evidence, HEADER_LEN, MAGIC, MAX_DATAGRAM, Message, Packet, Reader, RefuseReason, VERSION,
    WireError, check_len, decode, encode, put_str, ty,
};
use crate::p2psp::PeerId;
use crate::p2psp::auth::{self, Key, TAG_LEN, TRAILER_LEN};

/// A datagram as received: the message, and the trailer that authenticates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub packet: Packet,
    /// The member that sealed it (`PeerId::NONE`: the splitter).
    pub sender: PeerId,
    pub seq: u64,
    pub tag: [u8; TAG_LEN],
    /// A chunk's payload hash (computed once, here): its tag covers this, not the payload.
    pub chunk_hash: Option<[u8; 32]>,
}

impl Opened {
    /// True when the tag is right under `key` for team `team` (`data` is the datagram this
    /// came from). The team id is not on the wire; the tag covers it.
    pub fn verify(&self, data: &[u8], key: &Key, team: u32) -> bool {
        let Some(body) = data.len().checked_sub(TAG_LEN) else {
            return false;
        };
        let expected = match self.evidence() {
            Some(e) => chunk_tag(key, team, &e),
            None => auth::tag(key, &[&team.to_be_bytes(), &data[..body]]),
        };
        auth::same(&expected, &self.tag)
    }

    /// What proves this chunk came from `sender` (chunks only).
    pub fn evidence(&self) -> Option<Evidence> {
        match (&self.packet.msg, self.chunk_hash) {
            (
                Message::Chunk {
                    no, origin, relay, ..
                },
                Some(hash),
            ) => Some(Evidence {
                sender: self.sender,
                no: *no,
                origin: *origin,
                relay: *relay,
                seq: self.seq,
                hash,
                tag: self.tag,
            }),
            _ => None,
        }
    }
}

/// The tag of a Chunk datagram, from the fields it covers: how [`seal`] makes it, and how the
/// splitter checks [`Evidence`].
pub fn chunk_tag(key: &Key, team: u32, e: &Evidence) -> [u8; TAG_LEN] {
    let mut head = [0u8; 20];
    head[0..2].copy_from_slice(&MAGIC);
    head[2] = VERSION;
    // The splitter's chunks (no origin), members' and relays' are distinct messages.
    head[3] = match (e.origin, e.relay) {
        (PeerId::NONE, _) => ty::SPLITTER_CHUNK,
        (_, Some(_)) => ty::RELAY_CHUNK,
        _ => ty::CHUNK,
    };
    head[4..8].copy_from_slice(&team.to_be_bytes());
    head[8..12].copy_from_slice(&e.no.0.to_be_bytes());
    head[12..16].copy_from_slice(&e.origin.0.to_be_bytes());
    // Who relays is covered too: a forged count or share would make a member copy a chunk to
    // the wrong members, or to none.
    let relay = e.relay.map_or((0, 0), |r| (r.groups, r.share));
    head[16..18].copy_from_slice(&relay.0.to_be_bytes());
    head[18..20].copy_from_slice(&relay.1.to_be_bytes());
    let mut trailer = [0u8; 12];
    trailer[..4].copy_from_slice(&e.sender.0.to_be_bytes());
    trailer[4..].copy_from_slice(&e.seq.to_be_bytes());
    auth::tag(key, &[&head, &e.hash, &trailer])
}

/// Encode a UDP message with its trailer: `sender`, `seq` and the tag under `key`. A chunk's
/// payload hash may be passed in (`hash`) so that sending one chunk to many costs one hash.
pub fn seal(
    p: &Packet,
    sender: PeerId,
    seq: u64,
    key: &Key,
    hash: Option<&[u8; 32]>,
) -> Result<Bytes, WireError> {
    let body = encode(p)?;
    let mut b = BytesMut::with_capacity(body.len() + TRAILER_LEN);
    b.put_slice(&body);
    b.put_u32(sender.0);
    b.put_u64(seq);
    let t = match &p.msg {
        Message::Chunk {
            no,
            origin,
            relay,
            payload,
        } => {
            let h = hash.copied().unwrap_or_else(|| auth::payload_hash(payload));
            let e = Evidence {
                sender,
                no: *no,
                origin: *origin,
                relay: *relay,
                seq,
                hash: h,
                tag: [0; TAG_LEN],
            };
            chunk_tag(key, p.team, &e)
        }
        _ => auth::tag(key, &[&p.team.to_be_bytes(), &b]),
    };
    b.put_slice(&t);
    check_len("datagram", b.len(), MAX_DATAGRAM)?;
    Ok(b.freeze())
}

/// Decode a UDP datagram and its trailer; the caller checks the tag ([`Opened::verify`]) with
/// the key the sender id calls for.
pub fn open(data: &[u8]) -> Result<Opened, WireError> {
    let body = data
        .len()
        .checked_sub(TRAILER_LEN)
        .filter(|b| *b >= HEADER_LEN)
        .ok_or(WireError::Truncated)?;
    let packet = decode(&data[..body])?;
    if packet.msg.is_tcp() {
        return Err(WireError::Invalid("join message in a datagram"));
    }
    let mut r = Reader { buf: &data[body..] };
    let sender = PeerId(r.u32()?);
    let seq = r.u64()?;
    let tag = r.array()?;
    let chunk_hash = match &packet.msg {
        Message::Chunk { payload, .. } => Some(auth::payload_hash(payload)),
        _ => None,
    };
    Ok(Opened {
        packet,
        sender,
        seq,
        tag,
        chunk_hash,
    })
}

/// A refusal in the frame format of `version` (a version-1 peer reads it as one), for a joiner
/// that speaks another version than ours.
pub fn encode_refusal(version: u8, detail: &str) -> Result<Bytes, WireError> {
    let mut b = BytesMut::new();
    b.put_slice(&MAGIC);
    b.put_u8(version);
    b.put_u8(ty::JOIN_REFUSED);
    b.put_u32(0);
    b.put_u8(RefuseReason::BadVersion.code());
    put_str(&mut b, "refusal detail", detail)?;
    let mut f = BytesMut::with_capacity(4 + b.len());
    f.put_u32(b.len() as u32);
    f.put_slice(&b);
    Ok(f.freeze())
}

/// The version byte of a frame body, whatever its version (`None`: not native).
pub fn peek_version(data: &[u8]) -> Option<u8> {
    (data.len() >= HEADER_LEN && data[0..2] == MAGIC).then(|| data[2])
}
