//! The peer's playout buffer: a ring of `capacity` slots (chunk n at slot n mod capacity) that
//! turns chunks arriving in any order into the stream, in chunk-number order.
//!
//! Start-up: once `start_chunks` consecutive chunks from the play position are present (the
//! join burst usually provides them at once), or `start_delay` after the first chunk, or when
//! the window is already `lag` deep. After that a present head slot is delivered at once, and a
//! missing head slot is skipped (never replayed from stale data, §5/§10) when the newest chunk
//! is `lag` ahead of it, or when it has blocked later data for `skip_after`. It has blocked
//! since it became the head, or since [`MISSING_GRACE`] after the newest chunk passed it if that
//! is sooner: a hole behind a head that blocked or came late has been missing as long, and does
//! not wait the whole time again (a lost Digest leaves sixteen chunks unplayable, and waiting
//! for each in turn put peers minutes behind; holes filled late one by one, each then waiting
//! afresh, put slow members of a flash crowd a minute behind). After a head that came late, the
//! holes behind it wait at least [`LATE_HEAD_GRACE`] more.
//!
//! Steady playout: given a schedule (when the splitter sent a chunk, and the chunk interval),
//! a present head is delivered no sooner than a delay after the splitter sent it. The delay
//! is measured, not configured: it grows at once to the lateness of a chunk that became
//! playable late (up to `skip_after`), and melts by [`DELAY_MELT`] of the time played. So what
//! queued behind a repaired hole goes out at the stream's pace instead of in one burst that
//! leaves the playout at the newest chunk, where the next late chunk stops it again.
//!
//! It must never hold more than `capacity` chunks, emit more than `capacity` events per call,
//! or deliver out of order.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{ChunkNo, PeerId};

/// A hole behind a head that came late is waited for at least this long after it: about a
/// Request's answer behind a queued uplink. (1 s gave up holes whose answers were on their
/// way: on 1.25 × uplinks a flash crowd of 1000 lost 0.25% in its first minute, 0.068% with
/// 4 s; half-slow teams of 300 0.063% over 8 seeds, 0.013%.)
const LATE_HEAD_GRACE: Duration = Duration::from_secs(4);

/// A hole's wait counts from at most this long after the newest chunk passed it: time for its
/// Requests and their retries to be answered across queued uplinks, beyond the lateness of
/// floods that `skip_after` holds. (Counted from when it became the head, each hole behind
/// another that blocked waited the whole time again: slow members of a half-slow flash crowd
/// of 1000 played up to 55 s behind after a minute, 20 s with this. 8 s played 25 s behind
/// but gave up Requests' answers still on their way: 1,000 members on 1.25 × uplinks lost
/// 0.24% instead of 0.07%; with 16 s, 0.055%.)
const MISSING_GRACE: Duration = Duration::from_secs(16);

#[derive(Debug, Clone)]
pub struct PlayoutConfig {
    /// Slots in the ring (≥ 2).
    pub capacity: u32,
    /// Play (or skip) a slot once the newest chunk is this far ahead (typically capacity/2).
    pub lag: u32,
    pub start_chunks: u32,
    pub start_delay: Duration,
    pub skip_after: Duration,
}

#[derive(Debug, Clone)]
pub struct Slot {
    pub no: ChunkNo,
    pub origin: PeerId,
    pub payload: Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    New,
    /// Already held (or already played and still in the ring).
    Duplicate,
    /// Behind the play position and no longer held.
    TooOld,
    /// More than two windows ahead: not believable, dropped.
    TooFar,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    Deliver { no: ChunkNo, payload: Bytes },
    Skipped { no: ChunkNo },
}

/// A steady playout's delay shrinks by this share of the time played (2%: 1.2 s a minute),
/// so a delay one late chunk grew melts away without a burst. (5% played 0.7–1.2 s nearer
/// the splitter in simulated lossy teams of 100, and more peers stood still over 5 s: 31
/// against 25 at 1% loss, 44 against 31 behind NATs, summed over seeds.)
pub const DELAY_MELT: f64 = 0.02;

/// The longest chunk interval a schedule keeps.
const MAX_SCHEDULE_INTERVAL: Duration = Duration::from_secs(60);

/// When the splitter sent chunk `no` (as a member reads it off its own splitter chunks), and
/// the stream's chunk interval: the clock a steady playout keeps.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    no: ChunkNo,
    sent: Instant,
    interval: Duration,
}

#[derive(Debug)]
pub struct PlayoutBuffer {
    cfg: PlayoutConfig,
    slots: Vec<Option<Slot>>,
    next: ChunkNo,
    newest: Option<ChunkNo>,
    started: bool,
    first_at: Option<Instant>,
    /// Since when the head blocks ([`Self::missing_since`]).
    head_wait: Option<Instant>,
    /// When the newest chunk became each of its values, from the play position on, oldest
    /// first: slot n has been missing since the first entry at or after n. (At most one entry
    /// a slot between the play position and the newest chunk.)
    passed: VecDeque<(ChunkNo, Instant)>,
    /// When the last head that had blocked came late ([`LATE_HEAD_GRACE`]).
    late_head_at: Option<Instant>,
    /// With a schedule, a chunk plays no sooner than `delay` after the splitter sent it.
    schedule: Option<Schedule>,
    delay: Duration,
    /// When `delay` last melted.
    delay_at: Option<Instant>,
    /// Playout starts only once there is a schedule ([`Self::await_schedule`]).
    awaits_schedule: bool,
    out: VecDeque<Playout>,
}

impl PlayoutBuffer {
    /// `start` is the first chunk number to play.
    pub fn new(mut cfg: PlayoutConfig, start: ChunkNo) -> PlayoutBuffer {
        cfg.capacity = cfg.capacity.clamp(2, 1 << 16);
        cfg.lag = cfg.lag.clamp(1, cfg.capacity - 1);
        cfg.start_chunks = cfg.start_chunks.clamp(1, cfg.lag);
        PlayoutBuffer {
            slots: vec![None; cfg.capacity as usize],
            cfg,
            next: start,
            newest: None,
            started: false,
            first_at: None,
            head_wait: None,
            passed: VecDeque::new(),
            late_head_at: None,
            schedule: None,
            delay: Duration::ZERO,
            delay_at: None,
            awaits_schedule: false,
            out: VecDeque::new(),
        }
    }

    fn idx(&self, no: ChunkNo) -> usize {
        (no.0 % self.cfg.capacity) as usize
    }

    pub fn capacity(&self) -> u32 {
        self.cfg.capacity
    }
    /// Give up a blocking head slot only after `d` from now on.
    pub fn set_skip_after(&mut self, d: Duration) {
        self.cfg.skip_after = d;
    }

    /// Keep a steady playout: chunk `no` left the splitter at `sent`, one every `interval`
    /// since, and each plays a steady delay after it left, no sooner. Played as
    /// soon as it is there, a playout is back at the newest chunk after every hole, and the
    /// next late chunk stops it again: with 1% datagram loss peers of a team of 100 stood still
    /// for 5–10 s a few times a minute.
    pub fn set_schedule(&mut self, no: ChunkNo, sent: Instant, interval: Duration) {
        // A chunk a minute is no stream's rate: a misread one, not a clock to keep.
        if !interval.is_zero() && interval <= MAX_SCHEDULE_INTERVAL {
            self.schedule = Some(Schedule { no, sent, interval });
        }
    }

    /// Play each chunk as soon as it is there (and a hole's wait allows).
    pub fn clear_schedule(&mut self) {
        self.schedule = None;
        self.awaits_schedule = false;
    }

    /// Start playing only once a schedule is set, the buffer is full to its lag, or a hole's
    /// wait has passed since the first chunk (a member the splitter sends no chunk of its own
    /// has no clock to keep, and plays as soon as it can).
    pub fn await_schedule(&mut self) {
        self.awaits_schedule = true;
    }

    /// Waiting for a schedule that has not come (yet).
    fn clockless(&self) -> bool {
        self.awaits_schedule && self.schedule.is_none()
    }

    fn awaiting_schedule(&self, now: Instant) -> bool {
        self.clockless() && self.first_at.is_none_or(|t| now < t + self.cfg.skip_after)
    }

    /// A chunk that became playable `late` after the splitter sent it: the steady delay grows
    /// to it at once (the playout was held by that chunk anyway, and what queued behind it
    /// now plays at the stream's pace rather than in a burst), up to the hole wait.
    fn note_lateness(&mut self, now: Instant, no: ChunkNo) {
        let Some(sent) = self.sent_at(no) else { return };
        self.melt_delay(now);
        let late = now.saturating_duration_since(sent).min(self.cfg.skip_after);
        self.delay = self.delay.max(late);
    }

    /// The delay shrinks by [`DELAY_MELT`] of the time played.
    fn melt_delay(&mut self, now: Instant) {
        if let Some(at) = self.delay_at {
            let melt = now.saturating_duration_since(at).mul_f64(DELAY_MELT);
            self.delay = self.delay.saturating_sub(melt);
        }
        self.delay_at = Some(now);
    }

    /// When the splitter sent chunk `no`, by the schedule (none past what an `Instant` holds).
    fn sent_at(&self, no: ChunkNo) -> Option<Instant> {
        let s = self.schedule?;
        let n = no.diff(s.no).clamp(-(1 << 20), 1 << 20);
        let steps = s.interval.saturating_mul(n.unsigned_abs() as u32);
        if n >= 0 {
            s.sent.checked_add(steps)
        } else {
            Some(s.sent.checked_sub(steps).unwrap_or(s.sent))
        }
    }

    /// The steady delay after the splitter, while there is a schedule.
    pub fn playout_delay(&self) -> Option<Duration> {
        self.schedule.map(|_| self.delay)
    }

    /// When the head is due by the schedule, if there is one.
    fn due(&self) -> Option<Instant> {
        self.sent_at(self.next)?.checked_add(self.delay)
    }

    /// How long a blocking head slot is waited for.
    pub fn skip_after(&self) -> Duration {
        self.cfg.skip_after
    }

    pub fn next_to_play(&self) -> ChunkNo {
        self.next
    }
    pub fn newest(&self) -> Option<ChunkNo> {
        self.newest
    }
    pub fn started(&self) -> bool {
        self.started
    }
    /// Whether playout waits on chunk `no`: it is the head, missing, and blocks the rest.
    pub fn blocked_on(&self, no: ChunkNo) -> bool {
        self.head_wait.is_some() && no == self.next
    }

    /// The held chunk `no`, if it is still in the ring (played or not).
    pub fn get(&self, no: ChunkNo) -> Option<&Slot> {
        self.slots[self.idx(no)].as_ref().filter(|s| s.no == no)
    }

    /// Chunks held at or after the play position.
    pub fn fill(&self) -> u32 {
        let Some(newest) = self.newest else { return 0 };
        let span = newest.diff(self.next) + 1;
        if span <= 0 {
            return 0;
        }
        (0..span as u32)
            .filter(|i| self.get(self.next.plus(*i)).is_some())
            .count() as u32
    }

    pub fn insert(&mut self, now: Instant, no: ChunkNo, origin: PeerId, payload: Bytes) -> Insert {
        let d = no.diff(self.next);
        if d < 0 {
            return if self.get(no).is_some() {
                Insert::Duplicate
            } else {
                Insert::TooOld
            };
        }
        let cap = i64::from(self.cfg.capacity);
        if d >= 2 * cap {
            return Insert::TooFar;
        }
        // Make room: slots a whole ring behind `no` must be played or skipped now (≤ cap).
        while no.diff(self.next) >= cap {
            self.force_head();
        }
        if self.get(no).is_some() {
            return Insert::Duplicate;
        }
        let i = self.idx(no);
        self.slots[i] = Some(Slot {
            no,
            origin,
            payload,
        });
        if self.newest.is_none_or(|n| no.is_after(n)) {
            self.newest = Some(no);
            self.passed.push_back((no, now));
        }
        self.first_at.get_or_insert(now);
        self.note_lateness(now, no);
        Insert::New
    }

    /// Emit the head slot (deliver if present, else skip) and advance.
    fn force_head(&mut self) {
        let no = self.next;
        let ev = match self.get(no) {
            Some(s) => Playout::Deliver {
                no,
                payload: s.payload.clone(),
            },
            None => Playout::Skipped { no },
        };
        self.out.push_back(ev);
        self.next = self.next.plus(1);
        self.head_wait = None;
        while self
            .passed
            .front()
            .is_some_and(|(n, _)| n.diff(self.next) < 0)
        {
            self.passed.pop_front();
        }
        // Forcing means we are past start-up whatever the rules said.
        self.started = true;
    }

    fn consecutive_from_head(&self, limit: u32) -> u32 {
        (0..limit)
            .take_while(|i| self.get(self.next.plus(*i)).is_some())
            .count() as u32
    }

    /// Advance playout as far as the rules allow; then drain with [`Self::pop`].
    pub fn advance(&mut self, now: Instant) {
        self.melt_delay(now);
        let Some(newest) = self.newest else { return };
        if !self.started {
            let deep = newest.diff(self.next) >= i64::from(self.cfg.lag);
            if self.awaiting_schedule(now) && !deep {
                return;
            }
            let enough = self.consecutive_from_head(self.cfg.start_chunks) >= self.cfg.start_chunks;
            let waited = self
                .first_at
                .is_some_and(|t| now >= t + self.cfg.start_delay);
            if !(deep || enough || waited) {
                return;
            }
            self.started = true;
        }
        // Each iteration advances `next`; holes are only skipped while `newest` is ahead, and
        // deliveries are bounded by the slots held, so this ends within `capacity` steps.
        loop {
            let ahead = newest.diff(self.next);
            let present = self.get(self.next).is_some();
            // Present: deliver. Missing and `lag` behind the newest, or waited for long
            // enough: skip.
            let waited = !present && ahead > 0 && {
                let since = match self.head_wait {
                    Some(t) => t,
                    None => *self.head_wait.insert(self.missing_since(now)),
                };
                now >= since + self.cfg.skip_after
            };
            // A schedule far behind the newest chunk (a misread clock) is no reason to wait.
            let on_time = present
                && (self.due().is_none_or(|d| now >= d)
                    || self.schedule.is_some_and(|s| {
                        s.interval
                            .saturating_mul(u32::try_from(ahead.max(0)).unwrap_or(u32::MAX))
                            > self
                                .delay
                                .saturating_mul(2)
                                .saturating_add(self.cfg.skip_after)
                    }));
            if !(on_time || ahead >= i64::from(self.cfg.lag) || waited) {
                break;
            }
            if present && self.head_wait.is_some() {
                self.late_head_at = Some(now);
            }
            self.force_head();
        }
    }

    /// Since when the head, missing, blocks: since now, or since [`MISSING_GRACE`] after the
    /// newest chunk passed it if that is sooner; but after a head that came late, what was
    /// asked for with it may be on its way too: no sooner than its wait ends a
    /// [`LATE_HEAD_GRACE`] after that head (never longer than a wait of its own).
    fn missing_since(&self, now: Instant) -> Instant {
        // `force_head` drops the entries behind the play position: the first is the head's.
        let passed = self.passed.front().map_or(now, |(_, t)| *t + MISSING_GRACE);
        let grace = LATE_HEAD_GRACE.min(self.cfg.skip_after);
        let floor = self
            .late_head_at
            .and_then(|t| (t + grace).checked_sub(self.cfg.skip_after));
        floor.map_or(passed, |f| passed.max(f)).min(now)
    }

    pub fn pop(&mut self) -> Option<Playout> {
        self.out.pop_front()
    }

    /// When [`Self::advance`] would next do something on its own (a time rule), if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        if !self.started {
            let wait = if self.clockless() {
                self.cfg.skip_after.max(self.cfg.start_delay)
            } else {
                self.cfg.start_delay
            };
            return self.first_at.map(|t| t + wait);
        }
        let waiting = self.head_wait.map(|since| since + self.cfg.skip_after);
        match (self.get(self.next).is_some(), self.due()) {
            (true, Some(due)) => Some(waiting.map_or(due, |w| w.min(due))),
            _ => waiting,
        }
    }
}

/// Finds the holes (empty slots behind newer chunks) and reports each once: when it falls
/// `horizon` chunks behind the newest chunk, or `delay` after it was first seen, whichever
/// comes first. Monitors use it for LostChunk, peers for Request.
///
/// The time rule matters because playout skips a hole after a fixed time: a horizon in
/// chunks alone is reached far too late for low chunk rates (a 128 kbit/s stream in 4 KiB
/// chunks makes 4 chunks a second), and recovery would never happen.
#[derive(Debug, Clone)]
pub struct HoleScanner {
    /// The next slot not yet examined.
    cursor: Option<ChunkNo>,
    horizon: u32,
    delay: Duration,
    /// Holes seen and not reported for the last time, oldest first, with when they were
    /// first seen and how often they have been reported.
    seen: std::collections::VecDeque<(ChunkNo, Instant, u8)>,
    /// A hole still open is reported again this many times, this far apart (a report or
    /// its answer may be lost too).
    retries: u8,
    retry_every: Duration,
}

impl HoleScanner {
    /// Report by distance only.
    pub fn new(horizon: u32) -> HoleScanner {
        HoleScanner::with_delay(horizon, Duration::MAX)
    }

    /// Report by distance or after `delay`, whichever comes first.
    pub fn with_delay(horizon: u32, delay: Duration) -> HoleScanner {
        HoleScanner {
            cursor: None,
            horizon,
            delay,
            seen: std::collections::VecDeque::new(),
            retries: 0,
            retry_every: Duration::MAX,
        }
    }

    /// Report a hole that stays open `retries` more times, `every` apart.
    pub fn with_retries(mut self, retries: u8, every: Duration) -> HoleScanner {
        self.retries = retries;
        self.retry_every = every;
        self
    }

    /// When a hole first seen at `first` and reported `n` times is due (by time).
    fn due_at(&self, first: Instant, n: u8) -> Option<Instant> {
        let wait = self
            .delay
            .checked_add(self.retry_every.checked_mul(u32::from(n))?)?;
        first.checked_add(wait)
    }

    /// How long a hole waits before it is first reported (by time).
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Report by time after `delay` from now on.
    pub fn set_delay(&mut self, delay: Duration) {
        self.delay = delay;
    }

    pub fn scan(&mut self, now: Instant, buf: &PlayoutBuffer, out: &mut Vec<ChunkNo>) {
        let Some(newest) = buf.newest() else { return };
        let start = buf.next_to_play();
        // Forget holes that were filled or played past.
        self.seen
            .retain(|(c, _, _)| !start.is_after(*c) && buf.get(*c).is_none());
        let mut c = match self.cursor {
            Some(c) if !start.is_after(c) => c,
            _ => start,
        };
        let mut steps = 0;
        while newest.is_after(c) && steps < buf.capacity() {
            if buf.get(c).is_none() {
                if self.seen.len() >= buf.capacity() as usize {
                    self.seen.pop_front();
                }
                self.seen.push_back((c, now, 0));
            }
            c = c.plus(1);
            steps += 1;
        }
        self.cursor = Some(c);
        let limit = newest.minus(self.horizon);
        let mut seen = std::mem::take(&mut self.seen);
        seen.retain_mut(|(c, first, n)| {
            let due = if *n == 0 {
                !c.is_after(limit) || self.due_at(*first, 0).is_none_or(|t| now >= t)
            } else {
                self.due_at(*first, *n).is_some_and(|t| now >= t)
            };
            if due {
                out.push(*c);
                *n += 1;
            }
            *n <= self.retries
        });
        self.seen = seen;
    }

    /// When the oldest unreported hole becomes due by time, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        // First reports come in order; retries may not (holes are few: a scan is fine).
        let first = self
            .seen
            .iter()
            .find(|(_, _, n)| *n == 0)
            .and_then(|(_, t, _)| self.due_at(*t, 0));
        let retry = self
            .seen
            .iter()
            .filter(|(_, _, n)| *n > 0)
            .filter_map(|(_, t, n)| self.due_at(*t, *n))
            .min();
        first.into_iter().chain(retry).min()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests stand in for the driver: they read the clock
mod tests {
    use super::*;

    fn cfg() -> PlayoutConfig {
        PlayoutConfig {
            capacity: 8,
            lag: 4,
            start_chunks: 2,
            start_delay: Duration::from_millis(500),
            skip_after: Duration::from_secs(2),
        }
    }

    fn drain(b: &mut PlayoutBuffer) -> Vec<Playout> {
        std::iter::from_fn(|| b.pop()).collect()
    }

    fn p(n: u8) -> Bytes {
        Bytes::from(vec![n])
    }

    fn played(out: &[Playout]) -> Vec<u32> {
        out.iter()
            .map(|e| match e {
                Playout::Deliver { no, .. } | Playout::Skipped { no } => no.0,
            })
            .collect()
    }

    fn steady_cfg(skip_after: Duration) -> PlayoutConfig {
        PlayoutConfig {
            capacity: 256,
            lag: 128,
            start_chunks: 1,
            start_delay: Duration::from_millis(500),
            skip_after,
        }
    }

    /// A chunk that comes late sets the delay every chunk after it plays at, after the
    /// splitter sent it: what queued behind the late chunk goes out at the stream's pace, not
    /// at once (then the next late chunk would stop the playout again).
    #[test]
    fn a_late_chunk_sets_a_steady_delay_for_those_behind_it() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let mut b = PlayoutBuffer::new(steady_cfg(Duration::from_secs(4)), ChunkNo(0));
        b.await_schedule();
        b.insert(t, ChunkNo(0), PeerId(1), p(0));
        b.advance(t);
        assert!(drain(&mut b).is_empty(), "no clock yet");
        b.set_schedule(ChunkNo(0), t, ms(100));
        b.advance(t);
        assert_eq!(played(&drain(&mut b)), vec![0]);
        // 2..=10 come as they are sent; 1 is missing and holds the head.
        for n in 2..11u8 {
            let at = t + ms(100) * u32::from(n);
            b.insert(at, ChunkNo(u32::from(n)), PeerId(1), p(n));
            b.advance(at);
        }
        assert!(drain(&mut b).is_empty());
        // 1 comes 950 ms late: it plays now, and each after it 950 ms after it was sent.
        let repaired = t + ms(1050);
        b.insert(repaired, ChunkNo(1), PeerId(1), p(1));
        b.advance(repaired);
        assert_eq!(played(&drain(&mut b)), vec![1]);
        assert_eq!(b.next_deadline(), Some(t + ms(1150)));
        b.advance(t + ms(1350));
        assert_eq!(played(&drain(&mut b)), vec![2, 3, 4]);
        b.advance(t + ms(1950));
        assert_eq!(played(&drain(&mut b)), vec![5, 6, 7, 8, 9, 10]);
        // On time, 11 still waits out the delay, less what melted meanwhile.
        let sent = t + ms(1100);
        b.insert(sent, ChunkNo(11), PeerId(1), p(11));
        b.advance(sent + ms(900));
        assert!(drain(&mut b).is_empty(), "{:?}", b.delay);
        b.advance(sent + ms(950));
        assert_eq!(played(&drain(&mut b)), vec![11]);
        // Without a schedule, as soon as there.
        b.clear_schedule();
        b.insert(sent, ChunkNo(12), PeerId(1), p(12));
        b.advance(sent);
        assert_eq!(played(&drain(&mut b)), vec![12]);
    }

    /// The delay melts by [`DELAY_MELT`] of the time played and never grows past a hole's
    /// wait; a schedule far behind the newest chunk (a misread clock) does not hold the
    /// playout; without a clock, playout starts a hole's wait after the first chunk.
    #[test]
    fn a_steady_delay_melts_and_is_bounded() {
        let t = Instant::now();
        let mut b = PlayoutBuffer::new(steady_cfg(Duration::from_secs(1)), ChunkNo(0));
        b.set_schedule(ChunkNo(0), t, Duration::from_millis(100));
        // Chunk 0 comes 3 s late: the delay is the hole's wait, 1 s.
        b.insert(t + Duration::from_secs(3), ChunkNo(0), PeerId(1), p(0));
        assert_eq!(b.delay, Duration::from_secs(1));
        b.advance(t + Duration::from_secs(28));
        assert_eq!(b.delay.as_millis(), 500);
        b.advance(t + Duration::from_secs(60));
        assert_eq!(b.delay, Duration::ZERO);
        // Ten times too slow a clock: chunks 1..40 all there, only those within twice the
        // delay plus a hole's wait (3 s of this clock) wait.
        let mut b = PlayoutBuffer::new(steady_cfg(Duration::from_secs(1)), ChunkNo(0));
        b.set_schedule(ChunkNo(0), t, Duration::from_secs(1));
        b.insert(t + Duration::from_secs(1), ChunkNo(0), PeerId(1), p(0));
        b.advance(t + Duration::from_secs(1));
        assert_eq!(played(&drain(&mut b)), vec![0]);
        let t1 = t + Duration::from_secs(1);
        for n in 2..40u8 {
            b.insert(t1, ChunkNo(u32::from(n)), PeerId(1), p(n));
        }
        b.advance(t1);
        b.insert(t1, ChunkNo(1), PeerId(1), p(1));
        b.advance(t1);
        assert_eq!(played(&drain(&mut b)), (1..36).collect::<Vec<u32>>());
        // A misread rate is no clock; the slowest kept, far from its reference, no panic.
        let mut b = PlayoutBuffer::new(steady_cfg(Duration::from_secs(1)), ChunkNo(0));
        b.set_schedule(ChunkNo(0), t, Duration::from_secs(u64::MAX / 4));
        assert_eq!(b.playout_delay(), None);
        b.set_schedule(ChunkNo(u32::MAX / 2), t, Duration::from_secs(60));
        b.insert(t, ChunkNo(0), PeerId(1), p(0));
        b.advance(t);
        assert_eq!(played(&drain(&mut b)), vec![0]);
        // No clock comes: a hole's wait after the first chunk, playout starts.
        let mut b = PlayoutBuffer::new(steady_cfg(Duration::from_secs(1)), ChunkNo(0));
        b.await_schedule();
        b.insert(t, ChunkNo(0), PeerId(1), p(0));
        b.advance(t + Duration::from_millis(900));
        assert!(drain(&mut b).is_empty());
        assert_eq!(b.next_deadline(), Some(t + Duration::from_secs(1)));
        b.advance(t + Duration::from_secs(1));
        assert_eq!(played(&drain(&mut b)), vec![0]);
    }

    #[test]
    fn in_order_with_reordering_and_skips() {
        let t = Instant::now();
        let mut b = PlayoutBuffer::new(cfg(), ChunkNo(10));
        assert_eq!(b.insert(t, ChunkNo(11), PeerId(1), p(11)), Insert::New);
        b.advance(t);
        assert!(drain(&mut b).is_empty()); // 10 missing, not started
        b.insert(t, ChunkNo(10), PeerId(1), p(10));
        assert_eq!(
            b.insert(t, ChunkNo(10), PeerId(1), p(10)),
            Insert::Duplicate
        );
        b.advance(t);
        assert_eq!(
            drain(&mut b),
            vec![
                Playout::Deliver {
                    no: ChunkNo(10),
                    payload: p(10)
                },
                Playout::Deliver {
                    no: ChunkNo(11),
                    payload: p(11)
                }
            ]
        );
        // 12 lost; 13..16 arrive: 16 - 12 = 4 = lag → 12 skipped, 13.. delivered.
        let mut holes = vec![];
        let mut sc = HoleScanner::new(2);
        for n in 13..=16 {
            b.insert(t, ChunkNo(n), PeerId(1), p(n as u8));
            sc.scan(t, &b, &mut holes);
        }
        assert_eq!(holes, vec![ChunkNo(12)]);
        b.advance(t);
        let ev = drain(&mut b);
        assert_eq!(ev[0], Playout::Skipped { no: ChunkNo(12) });
        assert_eq!(ev.len(), 5);
        assert_eq!(b.insert(t, ChunkNo(12), PeerId(1), p(12)), Insert::TooOld);
        assert_eq!(b.insert(t, ChunkNo(1000), PeerId(1), p(0)), Insert::TooFar);
    }

    #[test]
    fn time_rules() {
        let t = Instant::now();
        let mut b = PlayoutBuffer::new(cfg(), ChunkNo(0));
        b.insert(t, ChunkNo(1), PeerId(1), p(1));
        b.advance(t);
        assert_eq!(b.next_deadline(), Some(t + Duration::from_millis(500)));
        b.advance(t + Duration::from_millis(500));
        assert!(b.started());
        assert!(drain(&mut b).is_empty()); // waiting on 0
        let d = b.next_deadline().unwrap();
        b.advance(d);
        assert_eq!(drain(&mut b).len(), 2); // skip 0, deliver 1
    }

    /// A ring of 64 (lag 32) that holds 0, 1 and `later` at `t`: 0 and 1 played, 2 blocks.
    fn blocked_at_2(t: Instant, later: &[u32]) -> PlayoutBuffer {
        blocked_at_2_skipping_after(t, later, cfg().skip_after)
    }

    /// As [`blocked_at_2`], with holes given up `skip_after` after the head began to block.
    fn blocked_at_2_skipping_after(
        t: Instant,
        later: &[u32],
        skip_after: Duration,
    ) -> PlayoutBuffer {
        let cfg = PlayoutConfig {
            capacity: 64,
            lag: 32,
            skip_after,
            ..cfg()
        };
        let mut b = PlayoutBuffer::new(cfg, ChunkNo(0));
        for &n in [0, 1].iter().chain(later) {
            b.insert(t, ChunkNo(n), PeerId(1), p(n as u8));
        }
        b.advance(t);
        assert_eq!(drain(&mut b).len(), 2, "0 and 1; 2 blocks");
        b
    }

    fn skipped(ev: &[Playout]) -> Vec<u32> {
        ev.iter()
            .filter_map(|e| match e {
                Playout::Skipped { no } => Some(no.0),
                Playout::Deliver { .. } => None,
            })
            .collect()
    }

    /// A run of holes all missing since the same moment waits at most [`MISSING_GRACE`] and
    /// one wait from then, not a wait each in turn (twenty holes, 40 s).
    #[test]
    fn a_run_of_holes_waits_from_going_missing() {
        let t = Instant::now();
        let skip = cfg().skip_after;
        let end = t + MISSING_GRACE + skip;
        let mut b = blocked_at_2(t, &[22, 23, 24]);
        // 2 blocks from now; 3 from when 2 is given up, and so on, until the holes' waits
        // count from a grace after they went missing: then the rest go at once.
        let mut at = t;
        let mut gone = vec![];
        while at < end {
            at += Duration::from_millis(100);
            b.advance(at);
            gone.extend(skipped(&drain(&mut b)));
            if at < end {
                assert!(gone.len() < 20, "{} given up by {at:?}", gone.len());
            }
        }
        assert_eq!(gone, (2..22).collect::<Vec<_>>());
        assert_eq!(b.next_to_play(), ChunkNo(25), "22..=24 delivered");
    }

    /// A hole that went missing while the head before it blocked has been missing since then:
    /// its wait does not start over when it becomes the head. (It did, and a slow member of a
    /// half-slow flash crowd of 1000, whose holes were filled late one by one, played 55 s
    /// behind the splitter after a minute.)
    #[test]
    fn a_hole_waits_from_going_missing_not_from_becoming_the_head() {
        let t = Instant::now();
        let s = Duration::from_secs;
        let mut b = blocked_at_2_skipping_after(t, &[3], s(20));
        // 4 goes missing a second later (5 is newer).
        b.insert(t + s(1), ChunkNo(5), PeerId(1), p(5));
        b.advance(t + s(1));
        b.advance(t + s(20));
        assert_eq!(drain(&mut b).len(), 2, "2 given up, 3 played");
        // Its wait counts from a grace after it went missing (17 s after the start), not from
        // when it became the head (20 s).
        assert_eq!(b.next_deadline(), Some(t + s(1) + MISSING_GRACE + s(20)));
    }

    /// After a head that came late, the hole behind it waits a grace more even where its own
    /// wait, counted from going missing, would end sooner: what was asked for with the head
    /// may be on its way too. (1 s instead of 4 s gave up holes whose answers were.)
    #[test]
    fn holes_behind_a_head_that_came_late_get_a_grace() {
        let t = Instant::now();
        let s = Duration::from_secs;
        let skip = s(20);
        let c = PlayoutConfig {
            capacity: 64,
            lag: 32,
            skip_after: skip,
            ..cfg()
        };
        let mut b = PlayoutBuffer::new(c, ChunkNo(0));
        for n in [0, 3, 5] {
            b.insert(t, ChunkNo(n), PeerId(1), p(n as u8));
        }
        // Playout starts (0 played); 1 blocks and is given up after a wait; 2, missing since
        // the start, blocks until a grace and a wait after that.
        let start = t + cfg().start_delay;
        b.advance(start);
        b.advance(start + skip);
        assert_eq!(skipped(&drain(&mut b)), vec![1]);
        assert_eq!(b.next_deadline(), Some(t + MISSING_GRACE + skip));
        // 2 comes late: 4, missing as long, would be given up a second later, but gets a
        // grace.
        let late = t + MISSING_GRACE + skip - s(1);
        b.insert(late, ChunkNo(2), PeerId(1), p(2));
        b.advance(late);
        assert_eq!(drain(&mut b).len(), 2, "2 and 3 played");
        assert_eq!(b.next_deadline(), Some(late + LATE_HEAD_GRACE));
        b.advance(late + LATE_HEAD_GRACE - Duration::from_millis(1));
        assert!(drain(&mut b).is_empty());
        b.advance(late + LATE_HEAD_GRACE);
        assert_eq!(skipped(&drain(&mut b)), vec![4]);
    }

    /// Where holes are given up sooner than the grace (a small team: a 2 s wait), a hole
    /// behind a late head waits as long as a wait of its own, never longer.
    #[test]
    fn a_grace_is_never_longer_than_a_wait() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let mut b = blocked_at_2(t, &[3, 5, 6]);
        b.insert(t + ms(1500), ChunkNo(2), PeerId(1), p(2));
        b.advance(t + ms(1500));
        assert_eq!(drain(&mut b).len(), 2);
        assert_eq!(b.next_deadline(), Some(t + ms(1500) + cfg().skip_after));
    }

    #[test]
    fn far_chunk_forces_the_window() {
        let t = Instant::now();
        let mut b = PlayoutBuffer::new(cfg(), ChunkNo(u32::MAX - 2));
        b.insert(t, ChunkNo(u32::MAX - 2), PeerId(1), p(0));
        assert_eq!(b.insert(t, ChunkNo(9), PeerId(1), p(9)), Insert::New);
        // Wrapped past zero: 12 numbers ahead, 5 had to be forced out to make room.
        let ev = drain(&mut b);
        assert_eq!(ev.len(), 5);
        assert!(matches!(ev[0], Playout::Deliver { .. }));
        assert!(b.fill() == 1);
    }

    #[test]
    fn an_open_hole_is_reported_again_then_given_up() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let mut b = PlayoutBuffer::new(cfg(), ChunkNo(0));
        let mut sc = HoleScanner::with_delay(100, ms(300)).with_retries(2, ms(500));
        let mut holes = vec![];
        b.insert(t, ChunkNo(0), PeerId(1), p(0));
        b.insert(t, ChunkNo(2), PeerId(1), p(2));
        sc.scan(t, &b, &mut holes);
        for (at, want) in [(300, 1), (700, 1), (800, 2), (1300, 3), (5000, 3)] {
            if at == 800 {
                assert_eq!(sc.next_deadline(), Some(t + ms(800)));
            }
            sc.scan(t + ms(at), &b, &mut holes);
            assert_eq!(holes.len(), want, "at {at} ms");
        }
        assert_eq!(sc.next_deadline(), None, "given up after two retries");
        // Filled before a retry: not reported again.
        let mut sc = HoleScanner::with_delay(100, ms(300)).with_retries(2, ms(500));
        let mut holes = vec![];
        b.insert(t, ChunkNo(4), PeerId(1), p(4));
        sc.scan(t, &b, &mut holes);
        sc.scan(t + ms(300), &b, &mut holes);
        b.insert(t, ChunkNo(3), PeerId(1), p(3));
        b.insert(t, ChunkNo(1), PeerId(1), p(1));
        sc.scan(t + ms(2000), &b, &mut holes);
        assert_eq!(holes, vec![ChunkNo(1), ChunkNo(3)], "each once");
    }

    #[test]
    fn holes_are_reported_after_a_delay_even_within_the_horizon() {
        let t = Instant::now();
        let mut b = PlayoutBuffer::new(cfg(), ChunkNo(0));
        let mut sc = HoleScanner::with_delay(100, Duration::from_millis(300));
        let mut holes = vec![];
        b.insert(t, ChunkNo(0), PeerId(1), p(0));
        b.insert(t, ChunkNo(2), PeerId(1), p(2));
        sc.scan(t, &b, &mut holes);
        assert!(holes.is_empty(), "not due yet");
        assert_eq!(sc.next_deadline(), Some(t + Duration::from_millis(300)));
        sc.scan(t + Duration::from_millis(300), &b, &mut holes);
        assert_eq!(holes, vec![ChunkNo(1)]);
        // Reported once only.
        sc.scan(t + Duration::from_millis(900), &b, &mut holes);
        assert_eq!(holes, vec![ChunkNo(1)]);
        // A filled hole is forgotten before it is due.
        let mut sc = HoleScanner::with_delay(100, Duration::from_millis(300));
        let mut holes = vec![];
        b.insert(t, ChunkNo(4), PeerId(1), p(4));
        sc.scan(t, &b, &mut holes);
        b.insert(t, ChunkNo(3), PeerId(1), p(3));
        sc.scan(t + Duration::from_secs(1), &b, &mut holes);
        assert!(!holes.contains(&ChunkNo(3)), "{holes:?}");
    }
}
