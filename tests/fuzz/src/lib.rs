//! What the fuzz targets share: cutting one input into the pieces a socket would deliver, and
//! the small P2PSP team the machine target drives (the seed writer uses the same one, so its
//! datagrams carry the right team cookie). Nothing here may panic on any input.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floecast_core::p2psp::Role;
use floecast_core::p2psp::compat::CompatConfig;
use floecast_core::p2psp::compat_peer::{CompatPeer, CompatPeerConfig};
use floecast_core::p2psp::peer::{Peer, PeerConfig};
use floecast_core::p2psp::splitter::{Splitter, SplitterConfig};
use floecast_core::p2psp::wire::{self, JoinRequest, Message, Packet};

/// Cut `data` into consecutive pieces whose lengths follow `pattern` (each byte a length,
/// 0 meaning "the rest"), as reads from a socket would: a parser fed in pieces must do what
/// it does with the whole.
pub fn pieces<'a>(pattern: &'a [u8], data: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = data;
    let mut i = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let want = match pattern.get(i % pattern.len().max(1)) {
            Some(&n) if n > 0 => n as usize,
            _ => rest.len(),
        };
        i += 1;
        let (piece, tail) = rest.split_at(want.min(rest.len()));
        rest = tail;
        Some(piece)
    })
}

/// Split an input into (pattern, data): the first byte says how many pattern bytes follow.
pub fn split_pattern(input: &[u8]) -> (&[u8], &[u8]) {
    match input.split_first() {
        Some((&n, rest)) => rest.split_at((n as usize % 8).min(rest.len())),
        None => (&[], &[]),
    }
}

/// The team cookie of [`team`].
pub const TEAM_ID: u32 = 0x5EED_CAFE;

/// Who a datagram of the machine target comes from.
pub fn sender(i: u8) -> SocketAddr {
    match i % 4 {
        0 => splitter_addr(),
        1 => "192.0.2.10:5000".parse().unwrap_or(splitter_addr()),
        2 => "[2001:db8::2]:5001".parse().unwrap_or(splitter_addr()),
        _ => "198.51.100.7:40000".parse().unwrap_or(splitter_addr()),
    }
}

pub fn splitter_addr() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], 8001))
}

/// A splitter and a peer that joined it (a second peer joined first, so the peer has a
/// neighbour): the machines the datagrams of `p2psp_machines` go to.
pub fn team(now: Instant) -> Option<(Splitter, Peer)> {
    let mut splitter = Splitter::new(SplitterConfig::default(), TEAM_ID, now);
    // Each joiner becomes a member with its first datagram, a Hello, as over the network.
    let confirm = |s: &mut Splitter, at: SocketAddr, id, key| {
        let hello = Packet {
            team: TEAM_ID,
            msg: Message::Hello { from: id },
        };
        if let Ok(d) = wire::seal(&hello, id, 1, &key, None) {
            s.handle_datagram(now, at, &d);
        }
    };
    let (id, first) = splitter
        .handle_join(now, sender(1), &JoinRequest::new(Role::Monitor))
        .ok()?;
    confirm(&mut splitter, sender(1), id, first.peer_key);
    let (id, reply) = splitter
        .handle_join(now, sender(2), &JoinRequest::new(Role::Peer))
        .ok()?;
    confirm(&mut splitter, sender(2), id, reply.peer_key);
    let mut cfg = PeerConfig::new(splitter_addr());
    cfg.start_delay = Duration::from_millis(10);
    let peer = Peer::new(cfg, reply, 7, now);
    Some((splitter, peer))
}

/// A Gen C peer of a reference team (chunks of 64 bytes), with the neighbours of [`sender`]
/// that speak IPv4.
pub fn gen_c_peer(now: Instant) -> CompatPeer {
    let v4 = |i| match sender(i) {
        SocketAddr::V4(a) => Some(a),
        SocketAddr::V6(_) => None,
    };
    let config = CompatConfig {
        source: std::net::SocketAddrV4::new([192, 0, 2, 1].into(), 8000),
        channel: "live.ogg".into(),
        header_size: 4,
        chunk_size: 64,
        buffer_size: 32,
        number_of_monitors: 1,
        peers: [1, 3].into_iter().filter_map(v4).collect(),
    };
    CompatPeer::new(CompatPeerConfig::new(splitter_addr()), &config, now)
}

/// One record of the machine target's input: `u8 sender, u8 milliseconds to advance,
/// u16 length (big-endian), datagram`. Returns the record and the rest.
pub fn next_record(input: &[u8]) -> Option<((u8, u8, &[u8]), &[u8])> {
    let (&[from, dt, hi, lo], rest) = input.split_first_chunk::<4>()?;
    let len = (u16::from_be_bytes([hi, lo]) as usize).min(rest.len());
    let (datagram, rest) = rest.split_at(len);
    Some(((from, dt, datagram), rest))
}

/// The encoding [`next_record`] reads.
pub fn record(from: u8, dt: u8, datagram: &[u8]) -> Vec<u8> {
    let mut out = vec![from, dt];
    out.extend_from_slice(&(datagram.len().min(u16::MAX as usize) as u16).to_be_bytes());
    out.extend_from_slice(datagram);
    out
}
