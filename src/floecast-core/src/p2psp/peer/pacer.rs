//! The peer's send pacer. A splitter chunk is copied to every neighbour (a *flood*): sent at
//! once, a team of 100 puts 100 KiB on the uplink in one burst, more than a home router
//! queues, and the copies that do not fit are lost. So relayed copies wait here, in the order
//! they were queued, and leave at a rate: a token bucket that every datagram we send is
//! charged to. Control messages to neighbours (Digests and Infos we flood, hellos, keepalives,
//! Probe answers) queue here too, ahead of every copy: a Digest flooded to 100 neighbours at
//! once is 30 KB, more than a second of a home uplink, and the router queue it fills delays
//! every Probe behind it. Answers (to others' Probes, to first greetings) go ahead of all
//! other control: the prober's rate waits on them, and a greeter greets again until
//! answered.
//!
//! The rate follows a delay-based controller in the spirit of LEDBAT (RFC 6817): every few
//! copies a Probe follows the copy to one of a few fixed "probe buddies", which answers how
//! much longer than its fastest Probe from us this one took: our uplink's queueing delay.
//! (Probes follow control datagrams too while a second's worth of control waits: a newcomer's
//! greetings to a large team would otherwise hold the starting rate for seconds.) Under
//! [`TARGET`] the rate grows by up to half a second (while the rate is what holds datagrams
//! back), past it the rate is cut in proportion, so a team uses the uplink it shares
//! without filling the router's queue, and floods go as fast as the uplink allows.
//!
//! It starts at twice the stream ([`START_OVER_STREAM`]): most uplinks are many times a
//! stream, and a pacer at the stream's own rate makes every flood last a round, late enough
//! for holes to be reported. Until the first answer that finds a queue, growth is fast (a
//! slow start).
//!
//! Delay alone is slow to undo a start above a slow uplink: a home router's 64 KiB at
//! 64 kbit/s is 8 s of queue, and answers come that late. So the pacer also *measures* the
//! uplink: two answers from one buddy that both found a queue, with nothing lost and no idle
//! spell between their Probes, say the uplink sent every byte charged between the Probes in
//! the time between their arrivals ([`Pacer::capacity`]). The rate is then held under that
//! (at once while the queue is past the target), growth stops a little past it, and our
//! Reports carry it to the splitter, which sizes our share by it: an uplink that cannot flood
//! a chunk to the team in time gets no share and only receives.
//!
//! Copies that waited longer than the caller's deadline are dropped unsent: they could no
//! longer be played, and their receivers ask someone else. The backlog (how long the oldest
//! copy has waited) goes to the splitter in our Reports too.
//!
//! Spare copies (a newcomer's catch-up on chunks it missed before we knew it) wait in a lane
//! of their own. They go in turn with the others while our floods are on time (the oldest
//! copy waited under [`SERVE_BACKLOG`]), and only when no other copy waits once they are not:
//! a flash crowd's greetings come together, and queued among the floods, 999 newcomers'
//! catch-ups held the first joiners' floods back 14-37 s (a 1.25 x team of 1,000 stood still
//! once a round on their chunks). They never count in the backlog.
//!
//! An origin's first-level copies (to the relays of the other groups of a two-level flood)
//! go ahead of every other copy: they are the root of the chunk's tree, and the whole team
//! waits on them, where a relay's copies hold back only its own group. Behind the relay
//! duty queued on a 1.25 x uplink (median 2.5-4.5 s, up to 16 s in a team of 1,000) each
//! origin's flood started that late, and the team stood still on it.
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
/// A Probe follows every this many paced copies, and one at least this often while datagrams
/// go (control too, while a second's worth of it waits: see the peer's `send_paced`).
pub const PROBE_EVERY: u32 = 8;
pub(super) const PROBE_GAP: Duration = Duration::from_millis(500);
/// Growth per second while the rate limits us at zero queueing delay, proportionally less
/// nearer the target; an answer after a long silence counts for at most this long.
const GROWTH_PER_SEC: f64 = 0.5;
const GROWTH_STEP_MAX: f64 = 1.0;
/// Until the first queue (an answer [`QUEUED`] deep) the rate grows this much faster, each
/// answer by at most [`SLOW_START_STEP_MAX`] seconds' worth: a start under the uplink finds
/// it in a few round trips, and a start over it fills a router queue whose answers come
/// seconds late (64 KiB at 64 kbit/s is 8 s).
const SLOW_START_PER_SEC: f64 = 4.0;
const SLOW_START_STEP_MAX: f64 = 0.25;
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
/// Two answers both this deep in the queue say what the uplink delivered between their Probes
/// (the queue never ran dry in between)...
const QUEUED: Duration = Duration::from_millis(20);
/// ... over at least this long (shorter spans are mostly the path's jitter).
const MEASURE_SPAN: f64 = 0.2;
/// A queue this deep (in time) with a measurement this close to our sending rate was full
/// (not closer: the path's jitter between two answers alone, 25 ms over a 0.3 s span, reads
/// a full queue at 0.9 of our rate).
const FULL_QUEUE: Duration = Duration::from_secs(1);
const FULL_RATE: f64 = 0.8;
/// With the uplink's rate measured, a cut leaves the rate between these fractions of it:
/// under it so the queue drains, and never so far under that one deep queue (a queue of
/// seconds answers late, and many answers in a row say "too deep") starves the floods.
const DRAIN_RATE: f64 = 0.9;
const MIN_DRAIN_RATE: f64 = 0.5;
/// Growth stops this far past a measured uplink rate (a queue a few per cent over keeps the
/// uplink busy, and grows slowly enough for the delay to tell).
const UPLINK_HEADROOM: f64 = 1.05;
/// Probes remembered for the measurement (answers come within a round trip).
const SENT_PROBES: usize = 64;
/// A buddy answers late when two of our Probes to it waited this much longer than the queue
/// its last answer told of, and not so long that they were lost.
const ANSWER_SLACK: Duration = Duration::from_secs(1);
const ANSWER_LOST: Duration = Duration::from_secs(10);
/// The longest a joiner's pacer holds its sends when the splitter's reading of its Train says
/// its greetings stand in the router's queue ([`Pacer::on_train_read`]): 64 KiB at 64 kbit/s.
const JOIN_HOLD: Duration = Duration::from_secs(8);
/// Our floods are late once the oldest copy we hold has waited this long: Requests are then
/// declined, newcomers get no catch-up copies, and those queued wait until no other copy
/// does.
pub(super) const SERVE_BACKLOG: Duration = Duration::from_millis(500);
/// A measured uplink rate stands for this long (an uplink that got faster shows no queue to
/// measure it by).
const UPLINK_FRESH: Duration = Duration::from_secs(60);

/// What we knew when a Probe left.
#[derive(Debug, Clone, Copy)]
struct SentProbe {
    to: SocketAddr,
    sent_ms: u32,
    charged: u64,
    idle_spells: u64,
    /// Our rate then (bytes/s).
    rate: f64,
    answered: bool,
}

/// A chunk copy waiting to go to a neighbour.
#[derive(Debug, Clone, Copy)]
pub(super) struct Copy {
    pub to: SocketAddr,
    pub no: ChunkNo,
    pub at: Instant,
    /// A two-level flood's copy to another group's relay: the groups it floods in, and the
    /// relay's share of its group.
    pub relay: Option<crate::p2psp::wire::Relay>,
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
    /// Spare copies: in turn with `queue` while its oldest is on time, else after it.
    spare: VecDeque<Copy>,
    /// An origin's first-level copies: ahead of `queue` and `spare`.
    first: VecDeque<Copy>,
    /// Sealed control datagrams, sent before any copy; the first `urgent` of them were
    /// queued ahead of the rest ([`Pacer::push_control_first`]), in the order they came.
    control: VecDeque<(SocketAddr, bytes::Bytes)>,
    urgent: usize,
    /// The bytes in `control`.
    control_bytes: usize,
    /// When (our Probe clock, ms) the rate was last cut. Never cut (no queue seen yet):
    /// stream-rate estimates raise the rate to the starting multiple.
    last_cut: Option<u32>,
    /// When the bucket last held a copy back: growth is for a rate that limits us, not one
    /// that idles between floods.
    limited_at: Option<Instant>,
    /// When growth was last applied.
    grown_at: Option<Instant>,
    /// No answer has found a queue yet: growth is fast.
    slow_start: bool,
    last_probe: Option<Instant>,
    /// Copies sent since the last Probe.
    since_probe: u32,
    /// The last queueing delay a receiver reported, for status.
    pub queue_delay: Duration,
    /// The queueing delay the last answer (any buddy's) told of: what a Probe's answer may
    /// take on our side, for [`Pacer::answers_late`].
    last_answer_q: Duration,
    /// Bytes charged since we started; how many times we ran out of things to send; both
    /// at each recent Probe (our clock, ms).
    charged: u64,
    idle_spells: u64,
    sent_probes: VecDeque<SentProbe>,
    /// Per probe buddy, its last answer deep in the queue and that delay (a buddy's delays
    /// count from its own idea of our fastest Probe, so only its own differ meaningfully).
    queued_answers: Vec<(SentProbe, Duration)>,
    /// Buddies that have answered: a buddy's first answer is its base, "no queue" whatever
    /// the queue, and says nothing.
    answered_by: VecDeque<SocketAddr>,
    /// What the uplink delivers (bytes/s), measured while a queue stood on it, and when.
    uplink: Option<(f64, Instant)>,
    /// What the splitter read from our Train (bytes/s), and when: stands in for `uplink`
    /// until we measure it ourselves.
    train_read: Option<(f64, Instant)>,
    /// When we joined, and what had been charged by then.
    started: Option<(Instant, u64)>,
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
            spare: VecDeque::new(),
            first: VecDeque::new(),
            control: VecDeque::new(),
            urgent: 0,
            control_bytes: 0,
            last_cut: None,
            limited_at: None,
            grown_at: None,
            slow_start: true,
            since_probe: 0,
            last_probe: None,
            queue_delay: Duration::ZERO,
            last_answer_q: Duration::ZERO,
            charged: 0,
            idle_spells: 0,
            sent_probes: VecDeque::new(),
            queued_answers: Vec::new(),
            answered_by: VecDeque::new(),
            uplink: None,
            train_read: None,
            started: None,
            dropped: 0,
        }
    }

    /// The bucket fills from `now` on (a peer's join): what is charged before the first paced
    /// send (a joiner's Train) is paid off from then on.
    pub(super) fn start(&mut self, now: Instant) {
        self.last_refill = Some(now);
        self.started = Some((now, self.charged));
    }

    /// The splitter read our uplink from our Train (bytes/s): it stands for a measurement of
    /// our own (which comes only once a queue stood on the uplink, seconds after the join) as
    /// a ceiling on the rate, never as a floor (it may read a fast uplink too fast).
    /// A later Train's reading replaces it, and so does our own measurement (which, while
    /// fresh, outweighs a Train). A reading under the rate cuts it at once: the greetings to
    /// a large team, at the starting rate, would fill a slow uplink's queue.
    pub(super) fn on_train_read(&mut self, now: Instant, bytes_per_sec: f64) {
        let fresh = |m: Option<(f64, Instant)>| {
            m.is_some_and(|(_, at)| now.saturating_duration_since(at) <= UPLINK_FRESH)
        };
        if !(bytes_per_sec.is_finite() && bytes_per_sec > 0.0) || fresh(self.uplink) {
            return;
        }
        let first = self.train_read.is_none();
        self.train_read = Some((bytes_per_sec, now));
        self.rate = self.rate.min(bytes_per_sec * DRAIN_RATE);
        self.bound();
        // The join's reading: what we sent since the join past what such an uplink carried in
        // that time still waits in the router's queue, so send nothing more until it has left
        // (at most JOIN_HOLD's worth; a router queues no more). At the drain rate alone, the
        // 20 KB a 64 kbit/s joiner's greetings left there took 20 s to go, and everything we
        // sent waited behind them. (A later Train follows 30 s with no chunks to flood: no
        // queue stands then, and a whole membership's sends would read as one.)
        if first && let Some((t0, c0)) = self.started {
            let carried = now.saturating_duration_since(t0).as_secs_f64() * bytes_per_sec;
            let queued =
                ((self.charged - c0) as f64 - carried).min(bytes_per_sec * JOIN_HOLD.as_secs_f64());
            if queued > 0.0 {
                self.tokens = self.tokens.min(0.0) - queued;
            }
        }
    }

    /// The rate (bytes/s) copies go at now.
    pub(super) fn rate(&self) -> f64 {
        self.rate
    }

    /// Whether we have ever measured our uplink's rate ourselves (a Train's reading does not
    /// count: the pacer's own measurement still needs its Probes answered).
    pub(super) fn measured(&self) -> bool {
        self.uplink.is_some()
    }

    /// Our own measurement of the uplink, else the splitter's reading of our Train, however
    /// old.
    fn known_uplink(&self) -> Option<f64> {
        self.uplink.or(self.train_read).map(|(u, _)| u)
    }

    /// Whether buddy `to` leaves our Probes unanswered longer than our own queue explains
    /// (two of them; `now_ms` is our Probe clock): its answers wait in its own uplink's queue.
    pub(super) fn answers_late(&self, now_ms: u32, to: SocketAddr) -> bool {
        let late = (self.last_answer_q + ANSWER_SLACK).as_millis();
        let lost = late + ANSWER_LOST.as_millis();
        self.sent_probes
            .iter()
            .filter(|p| {
                let age = u128::from(now_ms.wrapping_sub(p.sent_ms));
                p.to == to && !p.answered && age > late && age < lost
            })
            .nth(1)
            .is_some()
    }

    /// What our uplink carries (bytes/s), measured within [`UPLINK_FRESH`]; `None` when no
    /// queue has stood on it long enough to tell. The splitter sizes our share by it, not by
    /// the pacing rate, which dips under the uplink while a queue drains and grows past it
    /// on sparse sends (a few answers to requests) that never build a queue.
    pub(super) fn capacity(&self, now: Instant) -> Option<f64> {
        let fresh = |(_, at): &(f64, Instant)| now.saturating_duration_since(*at) <= UPLINK_FRESH;
        self.uplink
            .filter(fresh)
            .or(self.train_read.filter(fresh))
            .map(|(u, _)| u)
    }

    /// The stream's rate was measured: the rate's bounds follow, and so does the rate itself
    /// until our uplink first showed a queue (before that, nothing says it is slower than
    /// the starting rate, and a stream faster than the default would outrun us).
    pub(super) fn set_stream_rate(&mut self, bytes_per_sec: f64) {
        if !(bytes_per_sec.is_finite() && bytes_per_sec > 0.0) {
            return;
        }
        self.stream_rate = bytes_per_sec;
        // Never raised past a measured uplink: it would only fill the router's queue.
        let drain = self
            .known_uplink()
            .map_or(f64::INFINITY, |u| u * DRAIN_RATE);
        if !self.stream_known {
            self.stream_known = true;
            self.rate = (bytes_per_sec * self.start).min(drain);
        } else if self.last_cut.is_none() {
            self.rate = self
                .rate
                .max((bytes_per_sec * self.start).min(drain.max(self.rate)));
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

    /// Queue a spare copy: it takes its turn only while our floods are on time
    /// ([`SERVE_BACKLOG`]), and waits until no other copy does once they are not.
    pub(super) fn push_spare(&mut self, c: Copy) {
        if push_bounded(&mut self.spare, MAX_QUEUED, c) {
            self.dropped += 1;
        }
    }

    /// Queue one of our own flood's first-level copies: it goes ahead of every other copy.
    pub(super) fn push_first(&mut self, c: Copy) {
        if push_bounded(&mut self.first, MAX_QUEUED, c) {
            self.dropped += 1;
        }
    }

    /// No copy waits, of any lane.
    fn no_copies(&self) -> bool {
        self.first.is_empty() && self.queue.is_empty() && self.spare.is_empty()
    }

    /// Nothing to send: no copy and no control.
    fn empty(&self) -> bool {
        self.no_copies() && self.control.is_empty()
    }

    /// Drop the queued copies of chunk `no` behind the first `keep` copies of the queue;
    /// returns how many were dropped.
    pub(super) fn cancel(&mut self, no: ChunkNo, keep: usize) -> usize {
        let before = self.first.len() + self.queue.len();
        let mut position = 0;
        // In the order they would leave: first-level copies, then the rest.
        for lane in [&mut self.first, &mut self.queue] {
            lane.retain(|c| {
                position += 1;
                position <= keep || c.no != no
            });
        }
        before - self.first.len() - self.queue.len()
    }

    /// Queue a sealed control datagram; it leaves before every copy.
    pub(super) fn push_control(&mut self, to: SocketAddr, data: bytes::Bytes) {
        if self.control.len() >= MAX_QUEUED
            && let Some((_, d)) = self.control.pop_front()
        {
            self.control_bytes -= d.len();
            self.urgent = self.urgent.saturating_sub(1);
        }
        self.control_bytes += data.len();
        self.control.push_back((to, data));
    }

    /// Queue a sealed control datagram ahead of all other control (behind what was queued
    /// so before it): an answer, which someone waits on. The prober's rate waits on a
    /// Probe's answer, a greeter greets again until its greeting is answered; behind a
    /// newcomer's greetings to a large team either would come seconds late.
    pub(super) fn push_control_first(&mut self, to: SocketAddr, data: bytes::Bytes) {
        self.push_control(to, data);
        if let Some(last) = self.control.pop_back() {
            let at = self.urgent.min(self.control.len());
            self.control.insert(at, last);
            self.urgent = at + 1;
        }
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

    /// The next control datagram due now, if the bucket allows one (charged here). Those
    /// the caller no longer wants (`wanted` says no) are dropped on the way, uncharged.
    pub(super) fn next_control(
        &mut self,
        now: Instant,
        mut wanted: impl FnMut(SocketAddr, &bytes::Bytes) -> bool,
    ) -> Option<(SocketAddr, bytes::Bytes)> {
        if !self.allows(now, !self.control.is_empty()) {
            return None;
        }
        loop {
            let c = self.control.pop_front()?;
            self.control_bytes -= c.1.len();
            self.urgent = self.urgent.saturating_sub(1);
            if wanted(c.0, &c.1) {
                self.charge(c.1.len() + UDP_IP_HEADERS);
                return Some(c);
            }
        }
    }

    /// Every control datagram still queued, at once (we leave: goodbyes cannot wait).
    pub(super) fn drain_control(
        &mut self,
    ) -> impl Iterator<Item = (SocketAddr, bytes::Bytes)> + '_ {
        self.control_bytes = 0;
        self.urgent = 0;
        self.control.drain(..)
    }

    /// How long the control datagrams still queued take to leave at the current rate.
    pub(super) fn control_backlog(&self) -> Duration {
        self.time_for((self.control_bytes + self.control.len() * UDP_IP_HEADERS) as f64)
    }

    /// How long the oldest queued copy (spare ones aside) has waited.
    pub(super) fn backlog(&self, now: Instant) -> Duration {
        self.queue
            .front()
            .into_iter()
            .chain(self.first.front())
            .map(|c| now.saturating_duration_since(c.at))
            .max()
            .unwrap_or(Duration::ZERO)
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
        self.charged += bytes as u64;
    }

    /// The next copy due now, if the bucket allows one; copies queued before `stale` are
    /// dropped on the way (spare ones too: a catch-up is worth its place until its receiver
    /// plays past it; dropped after 2 s, the newcomers of 24 kbit/s speech, whose holes are
    /// asked for 4.6 s after they show, stood still 84 times instead of 14).
    pub(super) fn next_due(&mut self, now: Instant, stale: Instant) -> Option<Copy> {
        for lane in [&mut self.first, &mut self.queue, &mut self.spare] {
            while lane.front().is_some_and(|c| c.at < stale) {
                lane.pop_front();
                self.dropped += 1;
            }
        }
        if self.empty() {
            self.idle_spells += 1;
        }
        if !self.allows(now, !self.no_copies()) {
            return None;
        }
        if let Some(c) = self.first.pop_front() {
            return Some(c);
        }
        let spare_first = match (self.queue.front(), self.spare.front()) {
            (Some(c), Some(s)) => {
                s.at < c.at && now.saturating_duration_since(c.at) <= SERVE_BACKLOG
            }
            (None, _) => true,
            (Some(_), None) => false,
        };
        if spare_first {
            self.spare.pop_front()
        } else {
            self.queue.pop_front()
        }
    }

    /// A paced datagram went out (a chunk copy when `copy`, else control): true when a Probe
    /// stamped `now_ms` should follow it to `buddy` (every few copies, at least every
    /// [`PROBE_GAP`] while datagrams go: a low rate sends few copies; and whenever the
    /// caller says so).
    pub(super) fn sent(
        &mut self,
        now: Instant,
        now_ms: u32,
        buddy: SocketAddr,
        copy: bool,
        force: bool,
    ) -> bool {
        self.since_probe += u32::from(copy);
        let due = self
            .last_probe
            .is_none_or(|t| now.saturating_duration_since(t) >= PROBE_GAP);
        if self.since_probe >= PROBE_EVERY || due || force {
            self.since_probe = 0;
            self.last_probe = Some(now);
            let p = SentProbe {
                to: buddy,
                sent_ms: now_ms,
                charged: self.charged,
                idle_spells: self.idle_spells,
                rate: self.rate,
                answered: false,
            };
            push_bounded(&mut self.sent_probes, SENT_PROBES, p);
            return true;
        }
        false
    }

    /// Measure the uplink from an answer: between two Probes that both found a queue, with
    /// something to send all the while (so the queue never ran dry) and every Probe between
    /// them answered (so the queue never overflowed: what it drops was charged but never
    /// sent), the uplink sent every byte charged in between, in the time between their
    /// arrivals (the time between their sending plus the growth of the queue).
    fn measure(&mut self, now: Instant, from: SocketAddr, sent_ms: u32, q: Duration) {
        let Some(k) = self
            .sent_probes
            .iter()
            .position(|p| p.sent_ms == sent_ms && p.to == from)
        else {
            return;
        };
        self.sent_probes[k].answered = true;
        let p2 = self.sent_probes[k];
        let lost_between = |p1: &SentProbe| {
            self.sent_probes
                .range(..k)
                .rev()
                .take_while(|p| p.sent_ms != p1.sent_ms)
                .any(|p| !p.answered)
        };
        let last = self.queued_answers.iter().position(|(p, _)| p.to == from);
        let Some((p1, q1)) = last.map(|j| self.queued_answers[j]).filter(|(p1, q1)| {
            q >= QUEUED
                // A queue that shrank a lot may have run dry and refilled in between.
                && q * 2 >= *q1
                && p1.idle_spells == p2.idle_spells
                && p2.charged >= p1.charged
                && !lost_between(p1)
        }) else {
            if let Some(j) = last {
                self.queued_answers.swap_remove(j);
            }
            if q >= QUEUED && self.queued_answers.len() < SENT_PROBES {
                self.queued_answers.push((p2, q));
            }
            return;
        };
        let sent_gap = f64::from(sent_ms.wrapping_sub(p1.sent_ms) as i32) / 1000.0;
        if sent_gap <= 0.0 {
            return;
        }
        let span = sent_gap + q.as_secs_f64() - q1.as_secs_f64();
        if span < MEASURE_SPAN {
            return;
        }
        let u = (p2.charged - p1.charged) as f64 / span;
        // A queue seconds deep means we sent faster than the uplink. A measurement near our
        // own rate then says the queue was full, and what it dropped (charged, never sent)
        // reads as a fast uplink: a full queue drops copies while the small Probes between
        // them still fit, so no Probe need be lost. Nor can such a queue say the uplink is
        // faster than we measured it: it would not stand that deep. (A slow uplink read at
        // 3.6 times its rate this way got a full share of the splitter's chunks, and its
        // floods came seconds late to the whole team.)
        if q > FULL_QUEUE
            && (u > FULL_RATE * p1.rate.min(p2.rate) || self.capacity(now).is_some_and(|c| u > c))
        {
            return;
        }
        self.uplink = Some((u, now));
        if let Some(j) = last {
            self.queued_answers[j] = (p2, q);
        }
        if q > TARGET {
            // Known now, not a round trip (of a deep queue) later.
            self.rate = self.rate.min(u * DRAIN_RATE);
            self.bound();
        }
    }

    /// When the next copy may go, if any is queued.
    pub(super) fn next_at(&self, now: Instant) -> Option<Instant> {
        if self.empty() {
            return None;
        }
        if self.tokens >= 0.0 {
            return Some(now);
        }
        Some(now + self.time_for(-self.tokens))
    }

    /// A receiver says our Probe sent at `sent_ms` (our clock, ms; `now_ms` is now) queued
    /// `q` longer than our fastest to it.
    pub(super) fn on_queue_delay(
        &mut self,
        now: Instant,
        now_ms: u32,
        from: SocketAddr,
        sent_ms: u32,
        q: Duration,
    ) {
        // Wrapping: a Probe from the future is garbage.
        if (now_ms.wrapping_sub(sent_ms) as i32) < 0 {
            return;
        }
        // Every answer counts as one (for answers_late), the first from a buddy too, though
        // it only sets that buddy's base.
        if let Some(p) = self
            .sent_probes
            .iter_mut()
            .find(|p| p.sent_ms == sent_ms && p.to == from)
        {
            p.answered = true;
        }
        self.last_answer_q = q;
        if !self.answered_by.contains(&from) {
            push_bounded(&mut self.answered_by, SENT_PROBES, from);
            return;
        }
        // Every answer measures (a queue seconds deep answers seconds late, long after the
        // cut it caused)...
        self.measure(now, from, sent_ms, q);
        if q >= QUEUED {
            self.slow_start = false;
        }
        // ... but one to a Probe older than the last cut tells of the queue that cut drains.
        if self
            .last_cut
            .is_some_and(|c| (sent_ms.wrapping_sub(c) as i32) < 0)
        {
            return;
        }
        self.queue_delay = q;
        let limited = self
            .limited_at
            .is_some_and(|t| now.saturating_duration_since(t) <= LIMITED_LATELY);
        let off = (TARGET.as_secs_f64() - q.as_secs_f64()) / TARGET.as_secs_f64();
        if off >= 0.0 {
            // Grow only while the rate is what limits us (it held a datagram back lately).
            if limited && !self.empty() {
                // Growth per second, not per answer: at a high rate answers come many to a
                // round trip, and growth per answer would compound before the first of them
                // could tell of a queue.
                let (per_sec, step_max) = if self.slow_start {
                    (SLOW_START_PER_SEC, SLOW_START_STEP_MAX)
                } else {
                    (GROWTH_PER_SEC, GROWTH_STEP_MAX)
                };
                let dt = self
                    .grown_at
                    .map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64())
                    .min(step_max);
                let before = self.rate;
                self.rate *= 1.0 + per_sec * dt * off;
                // Past a measured uplink, growth only fills its queue; once the measurement
                // is stale the rate may find out whether the uplink got faster.
                if let Some(u) = self.capacity(now) {
                    self.rate = self.rate.min((u * UPLINK_HEADROOM).max(before));
                }
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
            // A Train's reading bounds the rate from above only. It is the Train's fastest
            // pair, which jitter may squeeze closer than the uplink spaced it (at 2.5 Mbit/s
            // a datagram is 4 ms on the wire): it can read a fast uplink several times too
            // fast, and as a floor it held the rate past the uplink. Our own measurement,
            // through a standing queue, is the floor's.
            if let Some(u) = self.known_uplink() {
                self.rate = self.rate.min(u * DRAIN_RATE);
            }
            if let Some((u, _)) = self.uplink {
                self.rate = self.rate.max(u * MIN_DRAIN_RATE);
            }
        }
        self.bound();
    }

    /// How many copies wait for each receiver (for status; a walk over the queue).
    pub(super) fn queued_per_receiver(&self) -> HashMap<SocketAddr, usize> {
        let mut m = HashMap::new();
        for c in self.first.iter().chain(&self.queue).chain(&self.spare) {
            *m.entry(c.to).or_insert(0) += 1;
        }
        m
    }

    /// Drop every copy queued (we leave).
    pub(super) fn clear(&mut self) {
        self.first.clear();
        self.queue.clear();
        self.spare.clear();
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests stand in for the driver: they read the clock
mod tests {
    use super::*;

    fn buddy(k: u8) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, k], 4000))
    }

    fn copy(at: Instant, no: u32) -> Copy {
        Copy {
            to: "192.0.2.1:4000".parse().unwrap(),
            no: ChunkNo(no),
            at,
            relay: None,
        }
    }

    /// The chunk numbers of the copies `p` lets go at `now`, in order (older than `stale`
    /// dropped).
    fn sent_order(p: &mut Pacer, now: Instant, stale: Instant) -> Vec<u32> {
        std::iter::from_fn(|| p.next_due(now, stale).map(|c| c.no.0)).collect()
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
        let b = buddy(1);
        let mut p = Pacer::new(START_OVER_STREAM);
        p.set_stream_rate(10_000.0);
        p.push(copy(t0, 1));
        // The bucket holds the copy back: the rate is what limits us.
        p.charge(100_000);
        assert!(p.next_due(t0, t0).is_none());
        let r0 = p.rate();
        assert!((r0 - 10_000.0 * START_OVER_STREAM).abs() < 1e-6);
        // A buddy's first answer is its base ("no queue" whatever the queue): nothing.
        p.on_queue_delay(t0, 60, b, 50, Duration::ZERO);
        assert_eq!(p.rate(), r0);
        // A quiet uplink: growth by the time since the last answer (the first only starts
        // the clock), fast until the first queue (slow start).
        p.on_queue_delay(t0, 100, b, 90, Duration::ZERO);
        assert_eq!(p.rate(), r0);
        let t = t0 + Duration::from_millis(200);
        p.on_queue_delay(t, 300, b, 290, Duration::ZERO);
        assert!((p.rate() - r0 * (1.0 + SLOW_START_PER_SEC * 0.2)).abs() < 1e-6);
        // Past the target: slow start is over, and a cut in proportion.
        let r1 = p.rate();
        p.on_queue_delay(t, 310, b, 300, TARGET * 2);
        assert!((p.rate() - r1 * (1.0 - CUT)).abs() < 1e-6);
        let r2 = p.rate();
        // Answers to Probes sent before that change nothing.
        p.on_queue_delay(t, 330, b, 305, TARGET * 4);
        assert_eq!(p.rate(), r2);
        // Far past the target (a queue many targets deep): halved, once per round of Probes.
        p.on_queue_delay(t, 400, b, 320, TARGET * 10);
        assert!((p.rate() - r2 * 0.5).abs() < 1e-6);
        let r3 = p.rate();
        p.on_queue_delay(t, 500, b, 350, TARGET * 10);
        p.on_queue_delay(t, 500, b, 399, Duration::ZERO);
        assert_eq!(p.rate(), r3);
        // Growth after slow start is the slow kind.
        let t2 = t + Duration::from_millis(100);
        p.on_queue_delay(t2, 600, b, 590, Duration::ZERO);
        assert!((p.rate() - r3 * (1.0 + GROWTH_PER_SEC * 0.1)).abs() < 1e-6);
        let r4 = p.rate();
        // Not held back lately: no growth on good news.
        let late = t0 + LIMITED_LATELY * 2;
        p.on_queue_delay(late, 2500, b, 2450, Duration::ZERO);
        assert_eq!(p.rate(), r4);
        // Never below the floor, never above the ceiling.
        for k in 0..100u32 {
            p.on_queue_delay(late, 3000 + k * 10, b, 3000 + k * 10, TARGET * 10);
        }
        assert!((p.rate() - 10_000.0 * MIN_OVER_STREAM).abs() < 1e-6);
        let mut now = late;
        for k in 0..1000u32 {
            now += Duration::from_millis(100);
            p.charge(100_000);
            assert!(p.next_due(now, t0).is_none());
            p.on_queue_delay(now, 5000 + k * 10, b, 5000 + k * 10, Duration::ZERO);
        }
        assert!((p.rate() - 10_000.0 * MAX_OVER_STREAM).abs() < 1e-6);
    }

    /// Sends `bytes` in copies of 1000 from `at` on (the bucket ignored), a Probe to `to`
    /// after the last: returns its stamp.
    fn send(p: &mut Pacer, at: Instant, ms: u32, bytes: usize, to: SocketAddr) -> u32 {
        for k in 0..bytes / 1000 {
            p.push(copy(at, k as u32));
            p.tokens = f64::MAX / 4.0;
            assert!(p.next_due(at, at).is_some());
            p.charge(1000);
        }
        assert!(p.sent(at, ms, to, true, true));
        ms
    }

    #[test]
    fn the_uplink_is_measured_through_a_standing_queue_and_only_then() {
        let t0 = Instant::now();
        let (a, b) = (buddy(1), buddy(2));
        let mut p = Pacer::new(START_OVER_STREAM);
        p.set_stream_rate(10_000.0);
        assert!(!p.measured());
        // Each buddy's first answer is its base.
        p.on_queue_delay(t0, 10, a, 0, Duration::ZERO);
        p.on_queue_delay(t0, 10, b, 0, Duration::ZERO);
        // 20 kB go between two Probes to `a` 1 s apart, and the queue grows by 1 s: the
        // uplink took 2 s for them, 10 kB/s. A Probe to `b` in between was answered.
        p.push(copy(t0, 0)); // always something to send: never idle
        let s1 = send(&mut p, t0, 1000, 1000, a);
        let mid = send(&mut p, t0, 1500, 10_000, b);
        let s2 = send(&mut p, t0, 2000, 10_000, a);
        p.on_queue_delay(t0, 1600, a, s1, Duration::from_millis(500));
        p.on_queue_delay(t0, 2500, b, mid, Duration::from_millis(900));
        assert!(!p.measured(), "one answer from `a` is not a measurement");
        p.on_queue_delay(t0, 3600, a, s2, Duration::from_millis(1500));
        let u = p.capacity(t0).expect("measured");
        assert!((u - 10_000.0).abs() < 1.0, "{u}");
        // Known at once: a queue past the target has the rate cut under the uplink.
        assert!(p.rate() <= u * DRAIN_RATE + 1e-6);
        // It stands for a while, then no longer says anything.
        assert!(
            p.capacity(t0 + UPLINK_FRESH + Duration::from_secs(1))
                .is_none()
        );

        // No measurement across a lost Probe (the queue overflowed: bytes charged were
        // dropped), nor across an idle spell (the queue may have run dry), nor from a queue
        // that shrank by half or more, nor from one seconds deep that says the uplink took
        // about our own rate (it was full: it dropped what did not fit).
        for case in 0..4 {
            let mut p = Pacer::new(START_OVER_STREAM);
            p.set_stream_rate(10_000.0);
            p.rate = 10_000.0;
            p.on_queue_delay(t0, 10, a, 0, Duration::ZERO);
            p.push(copy(t0, 0));
            let s1 = send(&mut p, t0, 1000, 1000, a);
            let lost = send(&mut p, t0, 1500, 10_000, b);
            if case == 1 {
                p.queue.clear();
                assert!(p.next_due(t0, t0).is_none()); // idle
                p.push(copy(t0, 0));
            }
            let s2 = send(&mut p, t0, 2000, 10_000, a);
            if case != 0 {
                p.on_queue_delay(t0, 2500, b, lost, Duration::ZERO);
            }
            let (q1, q2) = match case {
                2 => (3000, 1400),
                3 => (5000, 5020),
                _ => (500, 1500),
            };
            p.on_queue_delay(t0, 1600, a, s1, Duration::from_millis(q1));
            p.on_queue_delay(t0, 3600, a, s2, Duration::from_millis(q2));
            assert!(!p.measured(), "case {case}");
        }
    }

    #[test]
    fn a_deep_queue_never_raises_the_measured_uplink() {
        // A 5 kB/s uplink under a pacer at 20 kB/s: its 64 KiB router queue fills, drops the
        // copies that do not fit and lets the small Probes through, so the bytes charged
        // between two Probes read as a faster uplink than the one measured while it filled.
        let t0 = Instant::now();
        let a = buddy(1);
        let mut p = Pacer::new(START_OVER_STREAM);
        p.set_stream_rate(10_000.0); // 20 kB/s
        p.on_queue_delay(t0, 10, a, 0, Duration::ZERO);
        p.push(copy(t0, 0));
        let s1 = send(&mut p, t0, 1000, 1000, a);
        let s2 = send(&mut p, t0, 2000, 20_000, a);
        p.on_queue_delay(t0, 1600, a, s1, Duration::from_millis(500));
        // 20 kB in 1 s + 3 s of queue growth: 5 kB/s.
        p.on_queue_delay(t0, 5600, a, s2, Duration::from_millis(3500));
        let u = p.capacity(t0).expect("measured");
        assert!((u - 5000.0).abs() < 1.0, "{u}");
        // The Probes that follow left before the cut, at 20 kB/s.
        p.rate = 20_000.0;
        // 10 kB in 0.5 s, the queue 0.5 s deeper: 10 kB/s, half our rate (not "about our
        // rate", so not caught as a full queue by that alone), and twice the measurement.
        let s3 = send(&mut p, t0, 2500, 10_000, a);
        p.on_queue_delay(t0, 6600, a, s3, Duration::from_millis(4000));
        let u = p.capacity(t0).expect("measured");
        assert!(
            (u - 5000.0).abs() < 1.0,
            "a full queue raised the uplink to {u}"
        );
        // A deep queue may still say the uplink is slower than we thought: 12 kB since the
        // second Probe, in 1 s + 2 s of growth.
        let s4 = send(&mut p, t0, 3000, 2_000, a);
        p.on_queue_delay(t0, 8600, a, s4, Duration::from_millis(5500));
        let u = p.capacity(t0).expect("measured");
        assert!((u - 4000.0).abs() < 1.0, "{u}");
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
        while p.next_control(t0, |_, _| true).is_some() {
            n += 1;
        }
        assert!((1..10).contains(&n), "{n}");
        assert!(p.next_due(t0, t0).is_none());
        assert!(p.next_at(t0).is_some_and(|t| t > t0));
        // About half a second later (10 kB at 20 kB/s) all control is out, then the copy.
        let mut t1 = t0;
        while t1 < t0 + Duration::from_secs(2) && p.next_due(t1, t0).is_none() {
            t1 += Duration::from_millis(10);
            while p.next_control(t1, |_, _| true).is_some() {
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

    /// Answers go ahead of other control in the order they came, and control the caller no
    /// longer wants is dropped on the way without using the uplink.
    #[test]
    fn answers_leave_first_in_order_and_unwanted_control_is_not_charged() {
        let t0 = Instant::now();
        let mut p = Pacer::new(START_OVER_STREAM);
        p.set_stream_rate(10_000.0);
        let to = |k: u8| -> SocketAddr { format!("192.0.2.{k}:4000").parse().unwrap() };
        for k in 1..=4 {
            p.push_control(to(k), bytes::Bytes::from(vec![k; 100]));
        }
        p.push_control_first(to(10), bytes::Bytes::from(vec![10; 100]));
        p.push_control_first(to(11), bytes::Bytes::from(vec![11; 100]));
        p.push_control(to(5), bytes::Bytes::from(vec![5; 100]));
        let order: Vec<SocketAddr> = std::iter::from_fn(|| p.next_control(t0, |_, _| true))
            .map(|(a, _)| a)
            .collect();
        assert_eq!(order, [10, 11, 1, 2, 3, 4, 5].map(to));
        // Once drained, answers queue ahead again; the bucket is charged only for what left.
        let t1 = t0 + Duration::from_secs(1);
        let before = {
            p.refill(t1);
            p.tokens
        };
        p.push_control(to(1), bytes::Bytes::from(vec![1; 400]));
        p.push_control_first(to(12), bytes::Bytes::from(vec![12; 100]));
        let left: Vec<SocketAddr> = std::iter::from_fn(|| p.next_control(t1, |a, _| a != to(1)))
            .map(|(a, _)| a)
            .collect();
        assert_eq!(left, [to(12)]);
        assert_eq!(p.control_backlog(), Duration::ZERO);
        let charged = before - p.tokens;
        assert!(
            (charged - (100 + UDP_IP_HEADERS) as f64).abs() < 1.0,
            "{charged}"
        );
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

    #[test]
    fn spare_copies_take_their_turn_only_while_our_floods_are_on_time() {
        let t0 = Instant::now();
        let mut p = Pacer::new(START_OVER_STREAM);
        p.push_spare(copy(t0, 1));
        p.push(copy(t0 + Duration::from_millis(1), 2));
        p.push_spare(copy(t0 + Duration::from_millis(2), 3));
        p.push(copy(t0 + Duration::from_millis(3), 4));
        // On time: in the order queued (the bucket lets all four go at once).
        let t1 = t0 + Duration::from_millis(10);
        let order = sent_order(&mut p, t1, t0);
        assert_eq!(order, vec![1, 2, 3, 4]);
        // Late (the oldest flood copy waited past SERVE_BACKLOG): floods first, however
        // long the spare copies waited.
        p.push_spare(copy(t1, 5));
        p.push(copy(t1 + Duration::from_millis(1), 6));
        p.push_spare(copy(t1 + Duration::from_millis(2), 7));
        p.push(copy(t1 + Duration::from_millis(3), 8));
        let late = t1 + SERVE_BACKLOG + Duration::from_millis(10);
        assert!(p.backlog(late) > SERVE_BACKLOG);
        let order = sent_order(&mut p, late, t0);
        assert_eq!(order, vec![6, 8, 5, 7]);
        // Spare copies never count as the flood backlog, and go stale as any copy does.
        p.push_spare(copy(late, 9));
        let later = late + Duration::from_secs(5);
        assert_eq!(p.backlog(later), Duration::ZERO);
        assert!(p.next_due(later, later - Duration::from_secs(1)).is_none());
        assert_eq!(p.dropped, 1);
        assert!(p.next_at(later).is_none());
    }

    #[test]
    fn first_level_copies_go_first_count_in_the_backlog_and_can_be_cancelled() {
        let t0 = Instant::now();
        let mut p = Pacer::new(START_OVER_STREAM);
        p.push(copy(t0, 1));
        p.push_first(copy(t0 + Duration::from_millis(1), 2));
        p.push(copy(t0 + Duration::from_millis(2), 2));
        p.push_first(copy(t0 + Duration::from_millis(3), 3));
        // Chunk 2's copies behind the first one to leave are dropped, in either lane.
        assert_eq!(p.cancel(ChunkNo(2), 1), 1);
        p.push_first(copy(t0 + Duration::from_millis(4), 2));
        assert_eq!(p.cancel(ChunkNo(2), 1), 1);
        let now = t0 + Duration::from_millis(10);
        assert_eq!(p.backlog(now), Duration::from_millis(10));
        let order = sent_order(&mut p, now, t0);
        assert_eq!(order, vec![2, 3, 1]);
        assert_eq!(p.backlog(now), Duration::ZERO);
    }

    #[test]
    fn a_chunks_copies_behind_the_first_few_are_cancelled() {
        let t0 = Instant::now();
        let mut p = Pacer::new(START_OVER_STREAM);
        for no in [1, 2, 1, 2, 1, 2] {
            p.push(copy(t0, no));
        }
        // The first three queued stay, whatever their chunk; chunk 1's after them go.
        assert_eq!(p.cancel(ChunkNo(1), 3), 1);
        assert_eq!(p.cancel(ChunkNo(3), 0), 0);
        let left: Vec<u32> = std::iter::from_fn(|| p.queue.pop_front().map(|c| c.no.0)).collect();
        assert_eq!(left, vec![1, 2, 1, 2, 2]);
    }

    #[test]
    fn a_buddy_whose_answers_wait_past_our_own_queue_answers_late() {
        let t0 = Instant::now();
        let mut p = Pacer::new(START_OVER_STREAM);
        let (slow, quick) = (buddy(1), buddy(2));
        // Both answer a first Probe (their base), the quick one again 300 ms deep.
        for (ms, to) in [
            (0, slow),
            (10, quick),
            (500, slow),
            (510, slow),
            (520, quick),
        ] {
            assert!(p.sent(t0 + Duration::from_millis(ms), ms as u32, to, true, true));
        }
        p.on_queue_delay(t0, 100, slow, 0, Duration::ZERO);
        p.on_queue_delay(t0, 110, quick, 10, Duration::ZERO);
        p.on_queue_delay(t0, 900, quick, 520, Duration::from_millis(300));
        // 1.2 s after they left, two Probes to `slow` wait past 300 ms + 1 s: not yet.
        assert!(!p.answers_late(1_700, slow));
        assert!(p.answers_late(1_900, slow));
        assert!(!p.answers_late(1_900, quick));
        // Ten seconds on they count as lost, not late.
        assert!(!p.answers_late(12_000, slow));
    }

    /// The splitter's reading of our Train is taken as a measured uplink: the rate drops
    /// under it at once, nothing more leaves until what we sent past it since the join has
    /// left the router's queue, a new stream rate does not raise the rate past it, a later
    /// Train's reading replaces it (and holds nothing back), and so does our own measurement
    /// (which, while fresh, outweighs a Train).
    #[test]
    fn the_splitters_train_reading_paces_a_slow_joiner_at_once() {
        let t0 = Instant::now();
        let mut p = Pacer::new(START_OVER_STREAM);
        p.set_stream_rate(16_000.0); // 32 kB/s to start
        p.start(t0);
        // The Train (6 kB, unpaced) and 10 kB of greetings go in the first 0.5 s.
        p.charge(6_000);
        for k in 0..10 {
            p.push_control(buddy(1), bytes::Bytes::from(vec![k; 972]));
        }
        let mut now = t0;
        let mut sent = 0;
        while now < t0 + Duration::from_millis(500) {
            while p.next_control(now, |_, _| true).is_some() {
                sent += 1;
            }
            now += Duration::from_millis(5);
        }
        assert_eq!(sent, 10);
        // The Train read 8 kB/s: 4 kB of it left by now, 12 kB still queued at the router.
        p.on_train_read(now, 8_000.0);
        assert_eq!(p.capacity(now), Some(8_000.0));
        assert!(
            !p.measured(),
            "not by us: Probes still go to one buddy until we measure"
        );
        assert!(
            (p.rate() - 8_000.0 * DRAIN_RATE).abs() < 1.0,
            "{}",
            p.rate()
        );
        p.push_control(buddy(1), bytes::Bytes::from(vec![0; 972]));
        let next = p.next_at(now).expect("queued");
        let wait = next.saturating_duration_since(now).as_secs_f64();
        assert!(
            (12_000.0 / 8_000.0..14_000.0 / 7_200.0).contains(&wait),
            "the next greeting waits {wait} s"
        );
        // A faster stream does not raise the rate past the uplink.
        p.set_stream_rate(20_000.0);
        assert!(p.rate() <= 8_000.0 * DRAIN_RATE + 1.0, "{}", p.rate());
        // Nonsense is ignored.
        p.on_train_read(now, f64::NAN);
        p.on_train_read(now, 0.0);
        p.on_train_read(now, -1.0);
        assert_eq!(p.capacity(now), Some(8_000.0));
        // A new Train's reading replaces it, and holds nothing back, however much was sent
        // since the join (as if 20 kB/s over those 30 s).
        let later = now + Duration::from_secs(30);
        while p.next_control(later, |_, _| true).is_some() {}
        p.charged += 600_000;
        p.on_train_read(later, 9_000.0);
        assert_eq!(p.capacity(later), Some(9_000.0));
        p.push_control(buddy(1), bytes::Bytes::from(vec![0; 972]));
        assert_eq!(p.next_at(later), Some(later));
        // Our own measurement replaces it, and outweighs a Train while it is fresh.
        p.uplink = Some((12_000.0, later));
        assert_eq!(p.capacity(later), Some(12_000.0));
        p.on_train_read(later, 7_000.0);
        assert_eq!(p.capacity(later), Some(12_000.0));
    }

    /// A Train's reading may overstate a fast uplink (jitter squeezes a pair of its datagrams
    /// closer: at 2.5 Mbit/s one datagram is 4 ms on the wire), so it caps the rate but never
    /// holds it up: a queue still cuts the rate under it. Our own measurement, taken through a
    /// standing queue, is the floor's reference.
    #[test]
    fn a_train_reading_caps_the_rate_but_never_holds_it_up() {
        let t0 = Instant::now();
        let b = buddy(1);
        let mut p = Pacer::new(START_OVER_STREAM);
        p.set_stream_rate(10_000.0);
        p.start(t0);
        // Read at 40 kB/s: the rate may not pass 36 kB/s from now on...
        p.on_train_read(t0, 40_000.0);
        assert!(p.rate() <= 40_000.0 * DRAIN_RATE);
        p.on_queue_delay(t0, 10, b, 0, Duration::ZERO);
        // ... and a queue many targets deep cuts it far under the reading's half.
        for k in 0..20u32 {
            p.on_queue_delay(t0, 100 + k * 10, b, 100 + k * 10, TARGET * 10);
            assert!(p.rate() <= 40_000.0 * DRAIN_RATE);
        }
        assert!(
            (p.rate() - 10_000.0 * MIN_OVER_STREAM).abs() < 1e-6,
            "{}",
            p.rate()
        );
        // Measured by us at 12 kB/s: cuts stop at half of that.
        p.uplink = Some((12_000.0, t0));
        for k in 0..20u32 {
            p.on_queue_delay(t0, 1000 + k * 10, b, 1000 + k * 10, TARGET * 10);
        }
        assert!(
            (p.rate() - 12_000.0 * MIN_DRAIN_RATE).abs() < 1e-6,
            "{}",
            p.rate()
        );
    }
}
