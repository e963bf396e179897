//! The peer's send pacer. A splitter chunk is copied to every neighbour (a *flood*): sent at
//! once, a team of 100 puts 100 KiB on the uplink in one burst, more than a home router
//! queues, and the copies that do not fit are lost. So relayed copies wait here, in the order
//! they were queued, and leave at a rate: a token bucket that every datagram we send is
//! charged to. Control messages to neighbours (Digests and Infos we flood, hellos, keepalives,
//! Probe answers) queue here too, ahead of every copy: a Digest flooded to 100 neighbours at
//! once is 30 KB, more than a second of a home uplink, and the router queue it fills delays
//! every Probe behind it.
//!
//! The rate follows a delay-based controller in the spirit of LEDBAT (RFC 6817): every few
//! copies a Probe follows the copy to one of a few fixed "probe buddies", which answers how
//! much longer than its fastest Probe from us this one took: our uplink's queueing delay.
//! Under [`TARGET`] the rate grows by up to half a second (while the rate is what holds
//! copies back), past it the rate is cut in proportion, so a team uses the uplink it shares
//! without filling the router's queue, and floods go as fast as the uplink allows.
//!
//! It starts at twice the stream ([`START_OVER_STREAM`]): most uplinks are many times a
//! stream, and a pacer at the stream's own rate makes every flood last a round, late enough
//! for holes to be reported. Uplinks barely above the stream pay for that start with some
//! loss while the team joins (BENCHMARKS.md has both).
//!
//! Copies that waited longer than the caller's deadline are dropped unsent: they could no
//! longer be played, and their receivers ask someone else. The backlog (how long the oldest
//! copy has waited) goes to the splitter in our Reports, which gives a peer that cannot keep
//! up fewer chunks to relay.
//!
//! Sans-IO like the rest: time comes in as an argument.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::p2psp::{ChunkNo, push_bounded};

/// The queueing delay aimed at (RFC 6817 says at most 100 ms). Below the depth of any real
/// router queue at the rates of a stream, well above a path's jitter.
pub const TARGET: Duration = Duration::from_millis(60);
/// A Probe follows every this many paced copies, and one at least this often while copies go.
pub const PROBE_EVERY: u32 = 8;
const PROBE_GAP: Duration = Duration::from_millis(500);
/// Growth per second while the rate limits us at zero queueing delay, proportionally less
/// nearer the target; an answer after a long silence counts for at most this long.
const GROWTH_PER_SEC: f64 = 0.5;
const GROWTH_STEP_MAX: f64 = 1.0;
/// A cut per answer past the target, in proportion to how far past (`CUT` at twice the
/// target), and at most `MAX_CUT`: teams run uplinks a few per cent above their need, so
/// deep cuts would leave a backlog that never drains. Answers to Probes sent before the last
/// cut describe the queue the cut is draining: they change nothing.
const CUT: f64 = 0.1;
const MAX_CUT: f64 = 0.25;
/// The rate starts at this multiple of the stream rate (by default), and stays between these
/// multiples.
pub const START_OVER_STREAM: f64 = 2.0;
const MIN_OVER_STREAM: f64 = 0.1;
/// A peer relays about one stream (more with a bigger share, see the splitter's ACS): 8×
/// drains a flood in an eighth of its round, and a rate never needs more.
const MAX_OVER_STREAM: f64 = 8.0;
/// The bucket held a copy back within this long: the rate limits us.
const LIMITED_LATELY: Duration = Duration::from_secs(1);
/// Before the stream rate is known (bytes/s): the rate's bounds follow this...
const DEFAULT_STREAM_RATE: f64 = 16_000.0;
/// ... and copies go at this rate (2 Mbit/s video; faster streams are measured in seconds).
const UNKNOWN_STREAM_RATE: f64 = 256_000.0;
/// Tokens that may pile up while idle: a couple of datagrams, or 5 ms at the rate (a burst
/// the size of the rate's own jitter: a router queue never sees more than that at once).
const BURST_BYTES: f64 = 3_000.0;
const BURST_TIME: f64 = 0.005;
/// What a datagram costs the uplink beyond its payload: IP and UDP headers.
pub const UDP_IP_HEADERS: usize = 28;
/// Most copies queued; the oldest go first when it overflows.
pub const MAX_QUEUED: usize = 1 << 16;

/// A chunk copy waiting to go to a neighbour.
#[derive(Debug, Clone, Copy)]
pub(super) struct Copy {
    pub to: SocketAddr,
    pub no: ChunkNo,
    pub at: Instant,
}

#[derive(Debug)]
pub(super) struct Pacer {
    /// Bytes per second.
    rate: f64,
    /// The first rate, in streams.
    start: f64,
    /// The stream's rate (bytes/s), for the rate's bounds.
    stream_rate: f64,
    /// The stream's rate has been measured. Until then copies go at [`UNKNOWN_STREAM_RATE`]:
    /// a team that has just started cannot tell, and a pacer slower than the stream would
    /// starve it.
    stream_known: bool,
    tokens: f64,
    last_refill: Option<Instant>,
    queue: VecDeque<Copy>,
    /// Sealed control datagrams, sent before any copy.
    control: VecDeque<(SocketAddr, bytes::Bytes)>,
    /// When (our Probe clock, ms) the rate was last cut. Never cut (no queue seen yet):
    /// stream-rate estimates raise the rate to the starting multiple.
    last_cut: Option<u32>,
    /// When the bucket last held a copy back: growth is for a rate that limits us, not one
    /// that idles between floods.
    limited_at: Option<Instant>,
    /// When growth was last applied.
    grown_at: Option<Instant>,
    last_probe: Option<Instant>,
    /// Copies sent since the last Probe.
    since_probe: u32,
    /// The last queueing delay a receiver reported, for status.
    pub queue_delay: Duration,
    /// Copies dropped unsent: too old, or the queue overflowed.
    pub dropped: u64,
}

impl Pacer {
    pub(super) fn new(start: f64) -> Pacer {
        let start = if start.is_finite() {
            start.clamp(MIN_OVER_STREAM, MAX_OVER_STREAM)
        } else {
            START_OVER_STREAM
        };
        Pacer {
            rate: UNKNOWN_STREAM_RATE,
            start,
            stream_rate: DEFAULT_STREAM_RATE,
            stream_known: false,
            tokens: BURST_BYTES,
            last_refill: None,
            queue: VecDeque::new(),
            control: VecDeque::new(),
            last_cut: None,
            limited_at: None,
            grown_at: None,
            since_probe: 0,
            last_probe: None,
            queue_delay: Duration::ZERO,
            dropped: 0,
        }
    }

    /// The rate (bytes/s) copies go at now.
    pub(super) fn rate(&self) -> f64 {
        self.rate
    }

    /// The stream's rate was measured: the rate's bounds follow, and so does the rate itself
    /// until our uplink first showed a queue (before that, nothing says it is slower than
    /// the starting rate, and a stream faster than the default would outrun us).
    pub(super) fn set_stream_rate(&mut self, bytes_per_sec: f64) {
        if !(bytes_per_sec.is_finite() && bytes_per_sec > 0.0) {
            return;
        }
        self.stream_rate = bytes_per_sec;
        if !self.stream_known {
            self.stream_known = true;
            self.rate = bytes_per_sec * self.start;
        } else if self.last_cut.is_none() {
            self.rate = self.rate.max(bytes_per_sec * self.start);
        }
        self.bound();
    }

    /// Keep the rate within its multiples of the stream (of the default stream, and at most
    /// the unknown-stream rate, before it is measured).
    fn bound(&mut self) {
        self.rate = if self.stream_known {
            self.rate.clamp(
                self.stream_rate * MIN_OVER_STREAM,
                self.stream_rate * MAX_OVER_STREAM,
            )
        } else {
            self.rate
                .clamp(DEFAULT_STREAM_RATE * MIN_OVER_STREAM, UNKNOWN_STREAM_RATE)
        };
    }

    pub(super) fn push(&mut self, c: Copy) {
        if push_bounded(&mut self.queue, MAX_QUEUED, c) {
            self.dropped += 1;
        }
    }

    /// Queue a sealed control datagram; it leaves before every copy.
    pub(super) fn push_control(&mut self, to: SocketAddr, data: bytes::Bytes) {
        push_bounded(&mut self.control, MAX_QUEUED, (to, data));
    }

    /// Whether the bucket lets a datagram go now; when it does not and `waiting` holds
    /// one back, the rate is what limits us.
    fn allows(&mut self, now: Instant, waiting: bool) -> bool {
        self.refill(now);
        if self.tokens < 0.0 {
            if waiting {
                self.limited_at = Some(now);
            }
            return false;
        }
        true
    }

    /// The next control datagram due now, if the bucket allows one (charged here).
    pub(super) fn next_control(&mut self, now: Instant) -> Option<(SocketAddr, bytes::Bytes)> {
        if !self.allows(now, !self.control.is_empty()) {
            return None;
        }
        let c = self.control.pop_front()?;
        self.charge(c.1.len() + UDP_IP_HEADERS);
        Some(c)
    }

    /// Every control datagram still queued, at once (we leave: goodbyes cannot wait).
    pub(super) fn drain_control(
        &mut self,
    ) -> impl Iterator<Item = (SocketAddr, bytes::Bytes)> + '_ {
        self.control.drain(..)
    }

    /// How long the oldest queued copy has waited.
    pub(super) fn backlog(&self, now: Instant) -> Duration {
        self.queue
            .front()
            .map_or(Duration::ZERO, |c| now.saturating_duration_since(c.at))
    }

    /// How long sending `bytes` takes at the current rate.
    pub(super) fn time_for(&self, bytes: f64) -> Duration {
        Duration::from_secs_f64((bytes / self.rate).min(3600.0))
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last_refill {
            let dt = now.saturating_duration_since(last).as_secs_f64();
            self.tokens =
                (self.tokens + dt * self.rate).min(BURST_BYTES.max(self.rate * BURST_TIME));
        }
        self.last_refill = Some(now);
    }

    /// A datagram of `bytes` went out (paced or not: it used the uplink all the same).
    pub(super) fn charge(&mut self, bytes: usize) {
        self.tokens -= bytes as f64;
    }

    /// The next copy due now, if the bucket allows one; copies queued before `stale` are
    /// dropped on the way.
    pub(super) fn next_due(&mut self, now: Instant, stale: Instant) -> Option<Copy> {
        while let Some(c) = self.queue.front() {
            if c.at >= stale {
                break;
            }
            self.queue.pop_front();
            self.dropped += 1;
        }
        if !self.allows(now, !self.queue.is_empty()) {
            return None;
        }
        self.queue.pop_front()
    }

    /// A copy went out: true when a Probe should follow it (every few copies, and at least
    /// every [`PROBE_GAP`] while copies go: a low rate sends few).
    pub(super) fn sent_copy(&mut self, now: Instant) -> bool {
        self.since_probe += 1;
        let due = self
            .last_probe
            .is_none_or(|t| now.saturating_duration_since(t) >= PROBE_GAP);
        if self.since_probe >= PROBE_EVERY || due {
            self.since_probe = 0;
            self.last_probe = Some(now);
            return true;
        }
        false
    }

    /// When the next copy may go, if any is queued.
    pub(super) fn next_at(&self, now: Instant) -> Option<Instant> {
        if self.queue.is_empty() && self.control.is_empty() {
            return None;
        }
        if self.tokens >= 0.0 {
            return Some(now);
        }
        Some(now + self.time_for(-self.tokens))
    }

    /// A receiver says our Probe sent at `sent_ms` (our clock, ms; `now_ms` is now) queued
    /// `q` longer than our fastest to it.
    pub(super) fn on_queue_delay(&mut self, now: Instant, now_ms: u32, sent_ms: u32, q: Duration) {
        // Wrapping: a Probe older than the cut (or from the future: garbage) is ignored.
        if self
            .last_cut
            .is_some_and(|c| (sent_ms.wrapping_sub(c) as i32) < 0)
            || (now_ms.wrapping_sub(sent_ms) as i32) < 0
        {
            return;
        }
        self.queue_delay = q;
        let limited = self
            .limited_at
            .is_some_and(|t| now.saturating_duration_since(t) <= LIMITED_LATELY);
        let off = (TARGET.as_secs_f64() - q.as_secs_f64()) / TARGET.as_secs_f64();
        if off >= 0.0 {
            // Grow only while the rate is what limits us (it held a copy back lately).
            if limited && !self.queue.is_empty() {
                // Growth per second, not per answer: at a high rate answers come many to a
                // round trip, and growth per answer would compound before the first of them
                // could tell of a queue.
                let dt = self
                    .grown_at
                    .map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64())
                    .min(GROWTH_STEP_MAX);
                self.rate *= 1.0 + GROWTH_PER_SEC * dt * off;
            }
            self.grown_at = Some(now);
        } else {
            self.last_cut = Some(now_ms);
            // A queue many targets deep means a rate far past the uplink's: halve it.
            let cut = if q > TARGET * 8 {
                0.5
            } else {
                (-off * CUT).min(MAX_CUT)
            };
            self.rate *= 1.0 - cut;
        }
        self.bound();
    }

    /// How many copies wait for each receiver (for status; a walk over the queue).
    pub(super) fn queued_per_receiver(&self) -> HashMap<SocketAddr, usize> {
        let mut m = HashMap::new();
        for c in &self.queue {
            *m.entry(c.to).or_insert(0) += 1;
        }
        m
    }

    /// Drop every copy queued (we leave).
    pub(super) fn clear(&mut self) {
        self.queue.clear();
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests stand in for the driver: they read the clock
mod tests {
    use super::*;

    fn copy(at: Instant, no: u32) -> Copy {
        Copy {
            to: "192.0.2.1:4000".parse().unwrap(),
            no: ChunkNo(no),
            at,
        }
    }

    #[test]
    fn copies_leave_at_the_rate() {
        let t0 = Instant::now();
        let mut p = Pacer::new(START_OVER_STREAM);
        p.set_stream_rate(10_000.0); // starts at 20 kB/s
        for n in 0..100 {
            p.push(copy(t0, n));
        }
        // Over one second, 1000-byte copies leave at about 20 per second (plus the burst).
        let mut sent = 0;
        let mut now = t0;
        let end = t0 + Duration::from_secs(1);
        while now < end {
            while let Some(_c) = p.next_due(now, t0) {
                p.charge(1000);
                sent += 1;
            }
            now = p
                .next_at(now)
                .unwrap_or(end)
                .max(now + Duration::from_millis(1));
        }
        assert!((20..=24).contains(&sent), "{sent}");
    }

    #[test]
    fn delay_under_the_target_grows_and_over_it_cuts_once_per_probe_round() {
        let t0 = Instant::now();
        let mut p = Pacer::new(START_OVER_STREAM);
        p.set_stream_rate(10_000.0);
        p.push(copy(t0, 1));
        // The bucket holds the copy back: the rate is what limits us.
        p.charge(100_000);
        assert!(p.next_due(t0, t0).is_none());
        let r0 = p.rate();
        assert!((r0 - 10_000.0 * START_OVER_STREAM).abs() < 1e-6);
        // A quiet uplink: growth by the time since the last answer (the first only starts
        // the clock).
        p.on_queue_delay(t0, 100, 90, Duration::ZERO);
        assert_eq!(p.rate(), r0);
        let t = t0 + Duration::from_millis(200);
        p.on_queue_delay(t, 300, 290, Duration::ZERO);
        assert!((p.rate() - r0 * (1.0 + GROWTH_PER_SEC * 0.2)).abs() < 1e-6);
        // Past the target: a cut in proportion.
        let r1 = p.rate();
        p.on_queue_delay(t, 310, 300, TARGET * 2);
        assert!((p.rate() - r1 * (1.0 - CUT)).abs() < 1e-6);
        let r2 = p.rate();
        // Answers to Probes sent before that change nothing.
        p.on_queue_delay(t, 330, 305, TARGET * 4);
        assert_eq!(p.rate(), r2);
        // Far past the target (a queue many targets deep): halved, once per round of Probes.
        p.on_queue_delay(t, 400, 320, TARGET * 10);
        assert!((p.rate() - r2 * 0.5).abs() < 1e-6);
        let r3 = p.rate();
        p.on_queue_delay(t, 500, 350, TARGET * 10);
        p.on_queue_delay(t, 500, 399, Duration::ZERO);
        assert_eq!(p.rate(), r3);
        // Not held back lately: no growth on good news.
        let late = t0 + LIMITED_LATELY * 2;
        p.on_queue_delay(late, 2500, 2450, Duration::ZERO);
        assert_eq!(p.rate(), r3);
        // Never below the floor, never above the ceiling.
        for k in 0..100u32 {
            p.on_queue_delay(late, 3000 + k * 10, 3000 + k * 10, TARGET * 10);
        }
        assert!((p.rate() - 10_000.0 * MIN_OVER_STREAM).abs() < 1e-6);
        let mut now = late;
        for k in 0..1000u32 {
            now += Duration::from_millis(100);
            p.charge(100_000);
            assert!(p.next_due(now, t0).is_none());
            p.on_queue_delay(now, 5000 + k * 10, 5000 + k * 10, Duration::ZERO);
        }
        assert!((p.rate() - 10_000.0 * MAX_OVER_STREAM).abs() < 1e-6);
    }

    #[test]
    fn control_datagrams_leave_first_and_share_the_bucket() {
        let t0 = Instant::now();
        let mut p = Pacer::new(START_OVER_STREAM);
        p.set_stream_rate(10_000.0);
        p.push(copy(t0, 1));
        let to: SocketAddr = "192.0.2.2:4000".parse().unwrap();
        for _ in 0..10 {
            p.push_control(to, bytes::Bytes::from(vec![0u8; 972]));
        }
        // The burst allowance lets a few go; the copy waits behind all of them.
        let mut n = 0;
        while p.next_control(t0).is_some() {
            n += 1;
        }
        assert!((1..10).contains(&n), "{n}");
        assert!(p.next_due(t0, t0).is_none());
        assert!(p.next_at(t0).is_some_and(|t| t > t0));
        // About half a second later (10 kB at 20 kB/s) all control is out, then the copy.
        let mut t1 = t0;
        while t1 < t0 + Duration::from_secs(2) && p.next_due(t1, t0).is_none() {
            t1 += Duration::from_millis(10);
            while p.next_control(t1).is_some() {
                n += 1;
            }
        }
        assert_eq!(n, 10);
        let took = t1 - t0;
        assert!(
            took >= Duration::from_millis(300) && took <= Duration::from_millis(700),
            "{took:?}"
        );
        // Leaving: whatever control is queued goes at once.
        p.push_control(to, bytes::Bytes::from_static(b"bye"));
        assert_eq!(p.drain_control().count(), 1);
    }

    #[test]
    fn stale_copies_are_dropped_and_the_backlog_is_the_oldest_wait() {
        let t0 = Instant::now();
        let mut p = Pacer::new(START_OVER_STREAM);
        p.push(copy(t0, 1));
        p.push(copy(t0 + Duration::from_secs(2), 2));
        let now = t0 + Duration::from_secs(3);
        assert_eq!(p.backlog(now), Duration::from_secs(3));
        let c = p.next_due(now, t0 + Duration::from_secs(1)).unwrap();
        assert_eq!((c.no, p.dropped), (ChunkNo(2), 1));
        assert_eq!(p.backlog(now), Duration::ZERO);
    }
}
