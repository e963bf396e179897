//! P2PSP backplane, sans-IO protocol core: codecs and state machines for a splitter and its peers.
//!
//! Everything here is deterministic given its inputs (quinn-proto style): the runtime feeds in
//! datagrams, join requests and the current time (`Instant` arguments), and drains
//! [`Transmit`]s, events and the next timeout. Nothing in this module opens a socket, spawns a
//! task, reads a clock or uses a global RNG; randomness comes from a caller-provided seed
//! through the tiny [`XorShift`] below.
//!
//! Files, one concern each:
//! - [`wire`]: the native, versioned wire format (UDP datagrams and TCP join frames).
//! - [`compat`]: the byte-exact P2PSP "Gen C" (2016–18 C++) codec, for interop only.
//! - [`compat_peer`]: a Gen C peer, so a mount can join a team of the C++ reference.
//! - [`buffer`]: the peer's playout buffer (in-order delivery, skipping lost slots).
//! - [`splitter`]: the DBS splitter (round-robin, LRS, ACS, liveness).
//! - [`peer`]: the DBS peer (flooding with forwarding tables, debts, requests, monitors).
//!
//! Both peers, native and Gen C, implement [`PeerMachine`], so a runtime drives either.
//!
//! It must never panic on network input, and every queue it keeps is bounded.

pub mod auth;
pub mod buffer;
pub mod compat;
pub mod compat_peer;
pub mod peer;
pub mod splitter;
pub mod wire;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use peer::{PeerEvent, PeerStats};

/// A team member's identity, assigned by the splitter at join. `PeerId(0)` is never assigned:
/// it stands for "the splitter" or "unknown" where a wire field needs a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u32);

impl PeerId {
    /// The splitter / unknown sender.
    pub const NONE: PeerId = PeerId(0);
}

/// A 32-bit chunk number. It wraps (after 2^32 chunks), so compare with [`ChunkNo::diff`],
/// never with `<` on the raw value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkNo(pub u32);

impl ChunkNo {
    /// `self + n`, wrapping.
    pub fn plus(self, n: u32) -> ChunkNo {
        ChunkNo(self.0.wrapping_add(n))
    }
    /// `self - n`, wrapping.
    pub fn minus(self, n: u32) -> ChunkNo {
        ChunkNo(self.0.wrapping_sub(n))
    }
    /// Signed distance `self - other` in serial-number arithmetic (RFC 1982 style): positive
    /// when `self` is newer, as long as the two are less than 2^31 apart.
    pub fn diff(self, other: ChunkNo) -> i64 {
        i64::from(self.0.wrapping_sub(other.0) as i32)
    }
    /// True when `self` comes strictly after `other`.
    pub fn is_after(self, other: ChunkNo) -> bool {
        self.diff(other) > 0
    }
}

/// A datagram the runtime must send from the team socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddr,
    pub data: Bytes,
}

/// A peer on its way out of a team: its goodbye to the splitter is sent again every
/// `interval` until the splitter answers or the retries run out. Both peer machines leave
/// this way.
#[derive(Debug)]
pub(crate) struct Leaving {
    retries_left: u32,
    next_at: Instant,
    interval: Duration,
    /// The peer has left ([`PeerEvent::Left`] went out): nothing more is due.
    pub(crate) done: bool,
}

/// What a [`Leaving`] peer does when its timer is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeaveStep {
    /// Nothing due yet, or the peer has left.
    Wait,
    /// Say goodbye to the splitter again.
    Resend,
    /// The retries ran out: leave without the splitter's answer.
    GiveUp,
}

impl Leaving {
    /// Leaving from `now`, the first of `goodbyes` goodbyes just sent.
    pub(crate) fn new(now: Instant, goodbyes: u32, interval: Duration) -> Leaving {
        Leaving {
            retries_left: goodbyes.saturating_sub(1),
            next_at: now + interval,
            interval,
            done: false,
        }
    }

    /// The timer at `now`: what to do, with the next retry scheduled when it is a resend.
    pub(crate) fn on_timeout(&mut self, now: Instant) -> LeaveStep {
        if self.done || now < self.next_at {
            return LeaveStep::Wait;
        }
        if self.retries_left == 0 {
            return LeaveStep::GiveUp;
        }
        self.retries_left -= 1;
        self.next_at = now + self.interval;
        LeaveStep::Resend
    }

    /// When [`Leaving::on_timeout`] is next due; none once the peer has left.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        (!self.done).then_some(self.next_at)
    }
}

/// A team peer state machine, whatever its wire format ([`peer::Peer`] for the native codec,
/// [`compat_peer::CompatPeer`] for Gen C), in quinn-proto's shape: datagrams and timeouts go
/// in with the current time; transmits, events and the next deadline come out.
pub trait PeerMachine {
    /// A datagram `from` someone arrived on the team socket.
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]);
    /// The deadline of [`PeerMachine::poll_timeout`] passed (an early call does nothing due).
    fn handle_timeout(&mut self, now: Instant);
    /// Leave the team politely; [`PeerEvent::Left`] follows once the splitter has answered
    /// or the retries ran out.
    fn leave(&mut self, now: Instant);
    /// The next datagram to send.
    fn poll_transmit(&mut self) -> Option<Transmit>;
    /// The next thing that happened (stream data first of all).
    fn poll_event(&mut self) -> Option<PeerEvent>;
    /// When [`PeerMachine::handle_timeout`] is next due.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Counters and the neighbour list, for status pages.
    fn stats(&self) -> PeerStats;
}

/// Which UDP codec a team speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codec {
    /// [`wire`]: versioned, team cookie, 32-bit numbers, variable-size chunks, IPv4 and IPv6.
    #[default]
    Native,
    /// [`compat`]: Gen C byte layout, fixed-size chunks, 16-bit numbers, IPv4 only.
    CompatGenC,
}

/// A member's role. Monitors are operator-run peers, listed first, the only ones whose lost-chunk
/// complaints the splitter believes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Peer,
    Monitor,
}

/// What the source told the server about the stream, passed on to peers at join so that they
/// can re-serve it to players with the right headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamInfo {
    pub content_type: String,
    pub name: String,
    pub description: String,
    pub genre: String,
    pub url: String,
    /// kbit/s, when the source said.
    pub bitrate: Option<u32>,
    /// Now playing, as the mount's ICY title (empty: none). Ogg streams carry it in-band too.
    pub title: String,
}

/// Push onto a bounded queue: when full, the oldest entry goes (and the caller counts it).
/// Returns true when something was dropped.
pub(crate) fn push_bounded<T>(q: &mut std::collections::VecDeque<T>, cap: usize, item: T) -> bool {
    let dropped = if q.len() >= cap {
        q.pop_front();
        true
    } else {
        false
    };
    q.push_back(item);
    dropped
}

/// The running mean chunk payload (bytes; 0 = none yet) after a chunk of `len` bytes: over
/// about the last 16 chunks, so the splitter and its peers size the stream alike.
pub(crate) fn mean_chunk_bytes(mean: f64, len: usize) -> f64 {
    if mean == 0.0 {
        len as f64
    } else {
        (mean * 15.0 + len as f64) / 16.0
    }
}

/// A tiny deterministic PRNG (xorshift64*). Not cryptographic: it only picks neighbours for
/// requests. The seed comes from the caller so tests are reproducible.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        // Zero is a fixed point of xorshift; replace it with an arbitrary odd constant.
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A value in `0..n` (`n > 0`; returns 0 for `n == 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_numbers_wrap() {
        let a = ChunkNo(u32::MAX);
        let b = a.plus(2);
        assert_eq!(b, ChunkNo(1));
        assert_eq!(b.diff(a), 2);
        assert_eq!(a.diff(b), -2);
        assert!(b.is_after(a));
        assert_eq!(b.minus(2), a);
    }

    #[test]
    fn xorshift_is_deterministic() {
        let mut a = XorShift::new(7);
        let mut b = XorShift::new(7);
        for _ in 0..10 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_eq!(XorShift::new(0).below(0), 0);
    }
}
