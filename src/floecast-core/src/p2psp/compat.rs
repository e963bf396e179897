//! Byte-exact codec for the P2PSP "Gen C" wire format (the 2016–18 C++ `core`/`p2psp-console`),
//! spec §2–§3. Used only to interoperate with reference peers; the native format is [`super::wire`].
//!
//! Join over TCP: the peer sends one role byte (`'P'` or `'M'`); the splitter sends the
//! configuration block ([`CompatConfig`]); the peer sends `'R'`. UDP: a chunk is `u16 number` +
//! exactly `chunk_size` payload bytes; hello is `'H'`; goodbye is `'G'`; a monitor's lost-chunk
//! complaint is a bare `u16 number`. Messages are told apart by length only. Big-endian, IPv4 only.
//!
//! How a compat team maps onto the state machines:
//! - chunks are fixed-size and byte-transparent: the caller must cut the stream into exactly
//!   `chunk_size` bytes (no container alignment), the splitter refuses anything else;
//! - 16-bit numbers are widened to [`ChunkNo`] by [`Widener`] (nearest to the last seen number),
//!   and narrowed by truncation on the way out;
//! - there is no team cookie and no sender id: members are known by endpoint only;
//! - Gen C peers never send keepalives, so a compat splitter cannot time peers out by silence:
//!   it relies on monitor complaints (LRS) to expel dead peers;
//! - endpoints are IPv4; an IPv6 member cannot be listed (encoding fails).
//!
//! This decoder is stricter than the reference (which treats any unknown datagram as a goodbye):
//! it reports malformed input as an error and the state machines count and ignore it.
//! It must never accept a wrong-size chunk, nor panic on any input.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use super::{ChunkNo, Role};

pub const ROLE_PEER: u8 = b'P';
pub const ROLE_MONITOR: u8 = b'M';
pub const READY: u8 = b'R';
pub const HELLO: u8 = b'H';
pub const GOODBYE: u8 = b'G';
/// Gen C defaults (§7).
pub const DEFAULT_CHUNK_SIZE: u16 = 1024;
pub const DEFAULT_BUFFER_SIZE: u16 = 256;
pub const DEFAULT_HEADER_SIZE: u16 = 8192;
/// The list count is a u16, but we refuse to build or parse absurd teams.
pub const MAX_PEERS: usize = 10000;
pub const MAX_CHANNEL: usize = 1024;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CompatError {
    #[error("need more bytes")]
    Truncated,
    #[error("bad role byte {0:#04x}")]
    BadRole(u8),
    #[error("{what} too long: {len} > {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("chunk payload must be exactly {expected} bytes, got {got}")]
    WrongChunkSize { expected: usize, got: usize },
    #[error("IPv6 endpoint in an IPv4-only format")]
    NotIpv4,
    #[error("channel is not UTF-8")]
    BadUtf8,
    #[error("malformed datagram of {0} bytes")]
    Malformed(usize),
}

pub fn encode_role(r: Role) -> u8 {
    match r {
        Role::Peer => ROLE_PEER,
        Role::Monitor => ROLE_MONITOR,
    }
}

pub fn decode_role(b: u8) -> Result<Role, CompatError> {
    match b {
        ROLE_PEER => Ok(Role::Peer),
        ROLE_MONITOR => Ok(Role::Monitor),
        x => Err(CompatError::BadRole(x)),
    }
}

/// The configuration block a Gen C DBS splitter sends after the role byte (§2 step 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompatConfig {
    pub source: SocketAddrV4,
    /// The mount without its leading '/'.
    pub channel: String,
    pub header_size: u16,
    pub chunk_size: u16,
    pub buffer_size: u16,
    /// The splitter's monitor count, which may exceed the list's length: a reference splitter
    /// tells its first joiner `1` with an empty list (it counts the monitor it expects).
    pub number_of_monitors: u16,
    /// Monitors first, in join order.
    pub peers: Vec<SocketAddrV4>,
}

impl CompatConfig {
    /// How many of the listed members are monitors.
    pub fn listed_monitors(&self) -> usize {
        usize::from(self.number_of_monitors).min(self.peers.len())
    }
}

fn put_v4(b: &mut BytesMut, a: &SocketAddrV4) {
    b.put_slice(&a.ip().octets());
    b.put_u16(a.port());
}

/// An IPv4 endpoint for the list, or `NotIpv4`.
pub fn to_v4(a: SocketAddr) -> Result<SocketAddrV4, CompatError> {
    match a {
        SocketAddr::V4(v) => Ok(v),
        SocketAddr::V6(v) => match v.ip().to_ipv4_mapped() {
            Some(ip) => Ok(SocketAddrV4::new(ip, v.port())),
            None => Err(CompatError::NotIpv4),
        },
    }
}

pub fn encode_config(c: &CompatConfig) -> Result<Bytes, CompatError> {
    check_len("channel", c.channel.len(), MAX_CHANNEL)?;
    check_len("peer list", c.peers.len(), MAX_PEERS)?;
    let mut b = BytesMut::with_capacity(18 + c.channel.len() + 6 * c.peers.len());
    put_v4(&mut b, &c.source);
    b.put_u16(c.channel.len() as u16);
    b.put_slice(c.channel.as_bytes());
    b.put_u16(c.header_size);
    b.put_u16(c.chunk_size);
    b.put_u16(c.buffer_size);
    b.put_u16(c.number_of_monitors);
    b.put_u16(c.peers.len() as u16);
    for p in &c.peers {
        put_v4(&mut b, p);
    }
    Ok(b.freeze())
}

/// `TooLong` when a length field exceeds what the format allows.
fn check_len(what: &'static str, len: usize, max: usize) -> Result<(), CompatError> {
    if len > max {
        Err(CompatError::TooLong { what, len, max })
    } else {
        Ok(())
    }
}

/// Parse a configuration block from the start of `data` (a TCP stream prefix). Returns the
/// config and the bytes it used; `Truncated` means "read more and try again".
pub fn decode_config(data: &[u8]) -> Result<(CompatConfig, usize), CompatError> {
    let mut pos = 0usize;
    let mut take = |n: usize| -> Result<&[u8], CompatError> {
        let s = data.get(pos..pos + n).ok_or(CompatError::Truncated)?;
        pos += n;
        Ok(s)
    };
    let v4 = |s: &[u8]| SocketAddrV4::new(Ipv4Addr::new(s[0], s[1], s[2], s[3]), be16(&s[4..6]));
    let source = v4(take(6)?);
    let l = usize::from(be16(take(2)?));
    check_len("channel", l, MAX_CHANNEL)?;
    let channel = std::str::from_utf8(take(l)?)
        .map_err(|_| CompatError::BadUtf8)?
        .to_owned();
    let header_size = be16(take(2)?);
    let chunk_size = be16(take(2)?);
    let buffer_size = be16(take(2)?);
    let number_of_monitors = be16(take(2)?);
    let n = usize::from(be16(take(2)?));
    check_len("peer list", n, MAX_PEERS)?;
    // The whole list must be present before anything is allocated for it.
    let list = take(6 * n)?;
    let peers = list.chunks_exact(6).map(v4).collect();
    Ok((
        CompatConfig {
            source,
            channel,
            header_size,
            chunk_size,
            buffer_size,
            number_of_monitors,
            peers,
        },
        pos,
    ))
}

fn be16(s: &[u8]) -> u16 {
    u16::from_be_bytes([s[0], s[1]])
}

/// A Gen C UDP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompatMessage {
    Chunk { no: u16, payload: Bytes },
    Hello,
    Goodbye,
    LostChunk { no: u16 },
}

/// Which socket a datagram arrived at: the meaning of a length depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ToSplitter,
    ToPeer,
}

pub fn encode_datagram(m: &CompatMessage, chunk_size: usize) -> Result<Bytes, CompatError> {
    Ok(match m {
        CompatMessage::Chunk { no, payload } => {
            if payload.len() != chunk_size {
                return Err(CompatError::WrongChunkSize {
                    expected: chunk_size,
                    got: payload.len(),
                });
            }
            let mut b = BytesMut::with_capacity(2 + chunk_size);
            b.put_u16(*no);
            b.put_slice(payload);
            b.freeze()
        }
        CompatMessage::Hello => Bytes::from_static(&[HELLO]),
        CompatMessage::Goodbye => Bytes::from_static(&[GOODBYE]),
        CompatMessage::LostChunk { no } => Bytes::copy_from_slice(&no.to_be_bytes()),
    })
}

/// Decode by length, as Gen C does, but strictly: unknown lengths/bytes are errors.
pub fn decode_datagram(
    data: &[u8],
    chunk_size: usize,
    dir: Direction,
) -> Result<CompatMessage, CompatError> {
    match (data, dir) {
        ([HELLO], _) => Ok(CompatMessage::Hello),
        ([GOODBYE], _) => Ok(CompatMessage::Goodbye),
        ([a, b], Direction::ToSplitter) => Ok(CompatMessage::LostChunk {
            no: u16::from_be_bytes([*a, *b]),
        }),
        (d, Direction::ToPeer) if d.len() == 2 + chunk_size => Ok(CompatMessage::Chunk {
            no: be16(&d[..2]),
            payload: Bytes::copy_from_slice(&d[2..]),
        }),
        (d, _) => Err(CompatError::Malformed(d.len())),
    }
}

/// Widens wrapping 16-bit chunk numbers into 32-bit [`ChunkNo`]s: each number is placed at the
/// 32-bit value nearest to the last one seen (so it tracks wraps in both directions).
#[derive(Debug, Clone, Default)]
pub struct Widener {
    last: Option<ChunkNo>,
}

impl Widener {
    pub fn new() -> Widener {
        Widener::default()
    }
    /// Start tracking near `at` (e.g. the splitter's next chunk number).
    pub fn anchored(at: ChunkNo) -> Widener {
        Widener { last: Some(at) }
    }
    pub fn widen(&mut self, n: u16) -> ChunkNo {
        let w = match self.last {
            None => ChunkNo(u32::from(n)),
            Some(last) => {
                let delta = n.wrapping_sub(last.0 as u16) as i16;
                ChunkNo(last.0.wrapping_add(delta as i32 as u32))
            }
        };
        // Only move forward, so an old straggler does not drag the anchor back.
        if self.last.is_none_or(|l| w.is_after(l)) {
            self.last = Some(w);
        }
        w
    }
}

/// Narrow a chunk number to Gen C's 16 bits.
pub fn narrow(no: ChunkNo) -> u16 {
    no.0 as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn join_bytes_match_the_spec_layout() {
        let c = CompatConfig {
            source: "127.0.0.1:8000".parse().unwrap(),
            channel: "test.ogg".into(),
            header_size: 8192,
            chunk_size: 1024,
            buffer_size: 256,
            number_of_monitors: 1,
            peers: vec![
                "10.0.0.1:4000".parse().unwrap(),
                "192.168.1.2:40000".parse().unwrap(),
            ],
        };
        let e = encode_config(&c).unwrap();
        let mut want = vec![127, 0, 0, 1, 0x1F, 0x40, 0, 8];
        want.extend_from_slice(b"test.ogg");
        want.extend_from_slice(&[0x20, 0x00, 0x04, 0x00, 0x01, 0x00, 0, 1, 0, 2]);
        want.extend_from_slice(&[10, 0, 0, 1, 0x0F, 0xA0, 192, 168, 1, 2, 0x9C, 0x40]);
        assert_eq!(&e[..], &want[..]);
        assert_eq!(decode_config(&e).unwrap(), (c, want.len()));
        // Every strict prefix says "need more".
        for n in 0..want.len() {
            assert_eq!(decode_config(&want[..n]), Err(CompatError::Truncated));
        }
        assert_eq!(encode_role(Role::Monitor), b'M');
        assert_eq!(decode_role(b'P'), Ok(Role::Peer));
        assert_eq!(decode_role(b'R'), Err(CompatError::BadRole(b'R')));
    }

    /// What a reference DBS splitter (as shipped, defaults) sends its first joiner, byte for
    /// byte: `number_of_monitors = 1` and an empty list. It must be accepted (issue 12 §1.1).
    #[test]
    fn the_reference_first_join_shape_is_accepted() {
        let mut v = vec![127, 0, 0, 1, 0x1F, 0x40, 0, 8];
        v.extend_from_slice(b"test.ogg");
        v.extend_from_slice(&[0x20, 0x00, 0x04, 0x00, 0x01, 0x00]); // header, chunk, buffer
        v.extend_from_slice(&[0, 1, 0, 0]); // 1 monitor, 0 peers
        let (c, used) = decode_config(&v).unwrap();
        assert_eq!(used, v.len());
        assert_eq!((c.number_of_monitors, c.peers.len()), (1, 0));
        assert_eq!(c.listed_monitors(), 0);
        assert_eq!(&encode_config(&c).unwrap()[..], &v[..]);
        // And a team smaller than its monitor count.
        let mut v = vec![127, 0, 0, 1, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0];
        v.extend_from_slice(&[0, 3, 0, 2]); // 3 monitors, 2 peers
        v.extend_from_slice(&[0; 12]);
        let (c, _) = decode_config(&v).unwrap();
        assert_eq!((c.listed_monitors(), c.peers.len()), (2, 2));
    }

    #[test]
    fn config_rejects_bad_counts() {
        let v = [127, 0, 0, 1, 0, 80, 0xFF, 0xFF];
        assert!(matches!(
            decode_config(&v),
            Err(CompatError::TooLong { .. })
        ));
    }

    #[test]
    fn datagrams() {
        let c = CompatMessage::Chunk {
            no: 0xABCD,
            payload: Bytes::from(vec![7u8; 16]),
        };
        let e = encode_datagram(&c, 16).unwrap();
        assert_eq!(e.len(), 18);
        assert_eq!(&e[..2], &[0xAB, 0xCD]);
        assert_eq!(decode_datagram(&e, 16, Direction::ToPeer).unwrap(), c);
        assert!(encode_datagram(&c, 15).is_err());
        assert!(decode_datagram(&e[..17], 16, Direction::ToPeer).is_err());
        assert!(decode_datagram(&e, 16, Direction::ToSplitter).is_err());
        let l = CompatMessage::LostChunk { no: 258 };
        let e = encode_datagram(&l, 16).unwrap();
        assert_eq!(&e[..], &[1, 2]);
        assert_eq!(decode_datagram(&e, 16, Direction::ToSplitter).unwrap(), l);
        assert!(decode_datagram(&e, 16, Direction::ToPeer).is_err());
        assert_eq!(
            decode_datagram(b"H", 16, Direction::ToPeer),
            Ok(CompatMessage::Hello)
        );
        assert_eq!(
            decode_datagram(b"G", 16, Direction::ToSplitter),
            Ok(CompatMessage::Goodbye)
        );
        assert!(decode_datagram(b"X", 16, Direction::ToPeer).is_err());
        assert!(decode_datagram(b"", 16, Direction::ToPeer).is_err());
    }

    #[test]
    fn widener_tracks_wraps() {
        let mut w = Widener::anchored(ChunkNo(65534));
        assert_eq!(w.widen(65535), ChunkNo(65535));
        assert_eq!(w.widen(0), ChunkNo(65536));
        assert_eq!(w.widen(65535), ChunkNo(65535)); // a straggler stays behind
        assert_eq!(w.widen(1), ChunkNo(65537));
        assert_eq!(narrow(ChunkNo(65537)), 1);
        let mut w = Widener::anchored(ChunkNo(2));
        assert_eq!(w.widen(65535), ChunkNo(u32::MAX)); // before zero: wraps the u32 too
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            cs in 0usize..2000,
        ) {
            let _ = decode_config(&data);
            let _ = decode_datagram(&data, cs, Direction::ToPeer);
            let _ = decode_datagram(&data, cs, Direction::ToSplitter);
        }

        #[test]
        fn config_round_trip(
            src in any::<([u8; 4], u16)>(),
            channel in "[a-z.]{0,40}",
            nums in any::<(u16, u16, u16)>(),
            peers in proptest::collection::vec(any::<([u8; 4], u16)>(), 0..50),
        ) {
            let v4 = |(a, p): ([u8; 4], u16)| SocketAddrV4::new(Ipv4Addr::from(a), p);
            let c = CompatConfig {
                source: v4(src),
                channel,
                header_size: nums.0,
                chunk_size: nums.1,
                buffer_size: nums.2,
                number_of_monitors: (peers.len() / 3) as u16,
                peers: peers.into_iter().map(v4).collect(),
            };
            let e = encode_config(&c).unwrap();
            prop_assert_eq!(decode_config(&e).unwrap(), (c, e.len()));
        }

        #[test]
        fn chunk_round_trip(no in any::<u16>(), payload in proptest::collection::vec(any::<u8>(), 0..1500)) {
            let n = payload.len();
            let m = CompatMessage::Chunk { no, payload: Bytes::from(payload) };
            let e = encode_datagram(&m, n).unwrap();
            prop_assert_eq!(decode_datagram(&e, n, Direction::ToPeer).unwrap(), m);
        }
    }
}
