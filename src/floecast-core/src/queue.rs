//! The per-mount block queue: refcounted blocks with sequence numbers, trimmed by bytes.
//!
//! Listeners hold only a sequence number into it; reading clones `Bytes` handles (a refcount
//! increment), never audio data. Sans-IO (the caller passes the time in) and lock-free of its
//! own: `Mount` wraps it in a mutex. Each block keeps its arrival time, so a reader moved
//! from one mount to another can continue at the same moment of the other stream.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::format::{Block, Start, StreamHeader};

/// Sequence number of a block in a mount's queue; increases by one per block, never reused.
pub type Seq = u64;

/// How long a stream may go without a start point before the queue lets readers start on a
/// container boundary anyway ([`Start::Forced`]), so that no listener is held silently for
/// ever by a stream that has no keyframes, or too few. Long enough that streams with keyframes
/// get clean starts: ffmpeg's libvpx default puts one every 128 frames (5.1 s at 25 fps, 5.3 s
/// at 24 fps), libtheora's every 64 frames or less, and streaming services ask for one every
/// 2 s. Short enough that the first byte after the response head (this gap, plus at most one
/// Ogg page or WebM Cluster, about a second with ffmpeg's live WebM) comes before the 10 s
/// `source-timeout` with which icecast2 and floecast relays give up on a silent upstream.
pub const MAX_START_GAP: Duration = Duration::from_secs(7);

#[derive(Debug)]
pub struct Queue {
    blocks: VecDeque<Block>,
    /// When each queued block arrived, in step with `blocks`: where a reader moved here from
    /// another mount splices in ([`Cursor::splice`]).
    arrived: VecDeque<Instant>,
    /// Sequence number of `blocks[0]`.
    first: Seq,
    /// Bytes of all queued blocks.
    bytes: usize,
    /// Trim the oldest blocks while more than this many bytes are queued.
    limit: usize,
    /// How far back from the tail a new listener starts (burst-size).
    burst: usize,
    /// Bytes ever pushed: the stream offset of the tail.
    pushed: u64,
    /// Sequence number and stream offset of the queued blocks that still hold a start copy.
    copies: VecDeque<(Seq, u64)>,
    /// When the newest start point (clean or forced) was pushed, or the first block if none
    /// was: measures [`MAX_START_GAP`].
    last_start: Option<Instant>,
    /// Forced start points pushed since the last clean one.
    forced_run: u32,
}

/// Where a reader stands after a read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Blocks were appended; continue from this sequence number.
    Advanced(Seq),
    /// Nothing new yet.
    Idle,
    /// The reader's position was trimmed away: it fell more than queue-size behind.
    Lagged,
}

impl Queue {
    pub fn new(limit: usize, burst: usize) -> Self {
        Queue {
            blocks: VecDeque::new(),
            arrived: VecDeque::new(),
            first: 0,
            bytes: 0,
            limit,
            burst,
            pushed: 0,
            copies: VecDeque::new(),
            last_start: None,
            forced_run: 0,
        }
    }

    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
        self.trim();
    }

    /// Sequence number the next pushed block will get.
    pub fn tail(&self) -> Seq {
        self.first + self.blocks.len() as Seq
    }

    pub fn first(&self) -> Seq {
        self.first
    }

    pub fn queued_bytes(&self) -> usize {
        self.bytes
    }

    /// Append a block that arrived at `now`. A [`Start::Boundary`] more than
    /// [`MAX_START_GAP`] after the last start point becomes a [`Start::Forced`] one; then the
    /// number of forced starts in a row is returned (for the log).
    pub fn push(&mut self, mut block: Block, now: Instant) -> Option<u32> {
        let last = *self.last_start.get_or_insert(now);
        let mut forced = None;
        match block.start {
            Start::Clean => {
                self.last_start = Some(now);
                self.forced_run = 0;
            }
            Start::Boundary if now.saturating_duration_since(last) >= MAX_START_GAP => {
                block.start = Start::Forced;
                self.last_start = Some(now);
                self.forced_run += 1;
                forced = Some(self.forced_run);
            }
            Start::Forced => self.last_start = Some(now),
            Start::Boundary | Start::No => {}
        }
        if block.start_data.is_some() {
            self.copies.push_back((self.tail(), self.pushed));
        }
        self.pushed += block.data.len() as u64;
        self.bytes += block.data.len();
        self.blocks.push_back(block);
        self.arrived.push_back(now);
        self.trim();
        self.release_copies();
        forced
    }

    /// Drop the start copies no reader can begin on any more, so a mount holds about a burst
    /// of them rather than a queue: a new listener starts at the first clean start in the
    /// burst or the latest one before it, so a copy followed by another copy that lies before
    /// the burst is out of reach for good.
    fn release_copies(&mut self) {
        let burst_from = self.pushed.saturating_sub(self.burst as u64);
        while let Some(&(seq, _)) = self.copies.front() {
            let trimmed = seq < self.first;
            let passed = self.copies.get(1).is_some_and(|&(_, at)| at < burst_from);
            if !trimmed && !passed {
                break;
            }
            self.copies.pop_front();
            if !trimmed {
                if let Some(block) = self.blocks.get_mut((seq - self.first) as usize) {
                    block.start_data = None;
                }
            }
        }
    }

    fn trim(&mut self) {
        // Keep at least one block so a new listener always has somewhere to start.
        while self.bytes > self.limit && self.blocks.len() > 1 {
            if let Some(old) = self.blocks.pop_front() {
                self.arrived.pop_front();
                self.bytes -= old.data.len();
                self.first += 1;
            }
        }
    }

    /// Where a new listener starts: the first start point at or after the position
    /// `burst` bytes before the tail; failing that the latest start point before it; failing
    /// that the tail (the listener then waits for the next start point). Clean start points
    /// anywhere in the queue win over forced ones: a longer burst beats decoding errors.
    pub fn burst_start(&self) -> Seq {
        let mut acc = 0usize;
        let mut pos = self.blocks.len();
        while pos > 0 && acc + self.blocks[pos - 1].data.len() <= self.burst {
            pos -= 1;
            acc += self.blocks[pos].data.len();
        }
        let kinds: [fn(Start) -> bool; 2] = [Start::is_clean, Start::is_start];
        for wanted in kinds {
            if let Some(i) = (pos..self.blocks.len()).find(|&i| wanted(self.blocks[i].start)) {
                return self.first + i as Seq;
            }
            if let Some(i) = (0..pos).rev().find(|&i| wanted(self.blocks[i].start)) {
                return self.first + i as Seq;
            }
        }
        self.tail()
    }

    /// The stream header a listener arriving now gets first: that of the block its burst
    /// starts on (`Some(None)` for a format without one). `None` while no start point is
    /// queued: the listener waits, and gets the header of whatever comes.
    pub fn burst_header(&self) -> Option<Option<&Arc<StreamHeader>>> {
        let i = self.burst_start().checked_sub(self.first)? as usize;
        self.blocks.get(i).map(|b| b.header.as_ref())
    }

    /// Is this position still in the queue (or at its tail)?
    pub fn holds(&self, seq: Seq) -> bool {
        seq >= self.first && seq <= self.tail()
    }

    /// Append clones of the blocks from `from` on, up to about `max_bytes` (always at least
    /// one block), to `out`. With `need_start`, blocks before the next start point are
    /// skipped, and the start block is given with its start copy (`start_data`) as its data
    /// when it has one.
    pub fn read(
        &self,
        from: Seq,
        max_bytes: usize,
        need_start: bool,
        out: &mut Vec<Block>,
    ) -> ReadOutcome {
        self.read_before(from, Seq::MAX, max_bytes, need_start, out)
    }

    /// [`Queue::read`] of the blocks before `until` only.
    fn read_before(
        &self,
        from: Seq,
        until: Seq,
        max_bytes: usize,
        need_start: bool,
        out: &mut Vec<Block>,
    ) -> ReadOutcome {
        if from < self.first {
            return ReadOutcome::Lagged;
        }
        let end = self
            .blocks
            .len()
            .min(until.saturating_sub(self.first) as usize);
        let mut i = (from - self.first) as usize;
        if need_start {
            while i < end && !self.blocks[i].start.is_start() {
                i += 1;
            }
            if i >= end {
                let stop = self.first + end as Seq;
                return if from >= stop {
                    ReadOutcome::Idle
                } else {
                    ReadOutcome::Advanced(stop)
                };
            }
        }
        if i >= end {
            return ReadOutcome::Idle;
        }
        let mut taken = 0usize;
        while i < end && (taken == 0 || taken + self.blocks[i].data.len() <= max_bytes) {
            let block = &self.blocks[i];
            // Only a starting reader's first block uses the start copy; no reader keeps it.
            let data = match &block.start_data {
                Some(copy) if need_start && taken == 0 => Bytes::clone(copy),
                _ => block.data.clone(),
            };
            out.push(Block::new(data, block.start, block.header.clone()));
            taken += block.data.len();
            i += 1;
        }
        ReadOutcome::Advanced(self.first + i as Seq)
    }
}

/// Where a reader left a queue: what [`Cursor::splice`] needs to continue in another one.
#[derive(Debug, Clone, Default)]
pub struct Departure {
    /// When the last block the reader took arrived; `None` when it took none.
    pub last_arrival: Option<Instant>,
    /// The stream header that block belonged to.
    pub header: Option<Arc<StreamHeader>>,
}

/// A reader's place in a mount's queue, and the one way to read it: a listener's, a push
/// relay's, a team splitter's. It begins on a start point, so the reader's first bytes are the stream header and then data
/// a decoder can start on (a keyframe's page or Cluster, or its start copy), and from then
/// on takes every block in order. It remembers the stream header the reader last had, so
/// that [`Cursor::new_header`] yields each header once, before the data that needs it.
#[derive(Debug, Clone, Copy)]
pub struct Cursor {
    seq: Seq,
    /// Id of the stream header last yielded (0 = none).
    last_header: u64,
    /// Nothing read yet: skip to the next start point.
    need_start: bool,
}

impl Cursor {
    /// A new reader, given a burst of what is queued (icecast's burst-on-connect).
    pub fn burst(queue: &Queue) -> Cursor {
        Cursor {
            seq: queue.burst_start(),
            last_header: 0,
            need_start: true,
        }
    }

    /// A reader that joins at the next start point to arrive.
    pub fn join(queue: &Queue) -> Cursor {
        Cursor {
            seq: queue.tail(),
            last_header: 0,
            need_start: true,
        }
    }

    /// Go on at the next start point of `queue` to arrive: starting over after falling a
    /// queue behind (a push relay, a team splitter). Listeners moved between mounts use
    /// [`Cursor::depart`] and [`Cursor::splice`] instead, which lose nothing.
    /// The header already yielded is remembered: it is not yielded again unless it changed.
    pub fn rejoin(&mut self, queue: &Queue) {
        self.seq = queue.tail();
        self.need_start = true;
    }

    /// Leave `queue` for another mount: take the blocks queued before `until` (the queue's
    /// tail when the move was asked) into `out`, so nothing sent before the move is lost,
    /// and say where the reader left, for [`Cursor::splice`].
    pub fn depart(&mut self, queue: &Queue, until: Seq, out: &mut Vec<Block>) -> Departure {
        let before = out.len();
        match queue.read_before(self.seq, until, usize::MAX, self.need_start, out) {
            ReadOutcome::Lagged => return Departure::default(),
            ReadOutcome::Advanced(next) => {
                self.seq = next;
                if out.len() > before {
                    self.need_start = false;
                }
            }
            ReadOutcome::Idle => {}
        }
        if self.need_start || self.seq <= queue.first {
            // Nothing taken from this queue, or it is gone: no moment to continue from.
            return Departure::default();
        }
        let last = (self.seq - 1 - queue.first) as usize;
        Departure {
            last_arrival: queue.arrived.get(last).copied(),
            header: queue.blocks.get(last).and_then(|b| b.header.clone()),
        }
    }

    /// Continue in `queue`, another mount's, where the reader left the old one (`left`): at
    /// the first start point that arrived after the last block it took, so that no audio
    /// is skipped or repeated, beginning on a frame or page; with the new stream header
    /// unless it is the one the reader has. Failing a matching point (it took nothing, or
    /// this queue no longer reaches back to that moment) it gets a burst, as a new reader.
    pub fn splice(&mut self, queue: &Queue, left: &Departure) {
        self.need_start = true;
        let at = left
            .last_arrival
            .map(|at| queue.arrived.partition_point(|&t| t <= at));
        let i = match at {
            // Every queued block is newer, and older ones were trimmed: the moment is gone.
            Some(0) if queue.first > 0 => None,
            other => other,
        };
        let Some(i) = i else {
            self.seq = queue.burst_start();
            self.last_header = 0;
            return;
        };
        self.seq = queue.first + i as Seq;
        let next = queue.blocks.range(i..).find(|b| b.start.is_start());
        let header = next.or(queue.blocks.back()).and_then(|b| b.header.as_ref());
        self.last_header = match (header, &left.header) {
            (Some(new), Some(old)) if new.data == old.data => new.id,
            _ => 0,
        };
    }

    /// The stream header of `block` when this reader has not had it yet: send it before the
    /// block's data.
    pub fn new_header<'b>(&mut self, block: &'b Block) -> Option<&'b Bytes> {
        let h = block.header.as_ref()?;
        if h.id == self.last_header {
            return None;
        }
        self.last_header = h.id;
        Some(&h.data)
    }

    /// The next block to read.
    pub fn seq(&self) -> Seq {
        self.seq
    }

    /// Append the next blocks (about `max_bytes`, at least one) to `out` and move past them.
    /// The second value tells that this read started the reader on a [`Start::Forced`]
    /// point (no keyframe came for [`MAX_START_GAP`]), for the caller to log.
    pub fn read(
        &mut self,
        queue: &Queue,
        max_bytes: usize,
        out: &mut Vec<Block>,
    ) -> (ReadOutcome, bool) {
        let before = out.len();
        let outcome = queue.read(self.seq, max_bytes, self.need_start, out);
        let mut forced = false;
        if let ReadOutcome::Advanced(next) = outcome {
            self.seq = next;
            if let Some(first) = out.get(before) {
                forced = self.need_start && first.start == Start::Forced;
                self.need_start = false;
            }
        }
        (outcome, forced)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests stand in for the driver: they read the clock
mod tests {
    use super::*;

    fn block(len: usize, start: bool) -> Block {
        with_start(len, Start::clean_if(start))
    }

    fn with_start(len: usize, start: Start) -> Block {
        Block::new(Bytes::from(vec![0u8; len]), start, None)
    }

    fn burst_at(q: &mut Queue, burst: usize) -> Seq {
        q.burst = burst;
        q.burst_start()
    }

    /// A queue that pushes every block at one instant.
    fn push_all(q: &mut Queue, blocks: impl IntoIterator<Item = Block>) {
        let now = Instant::now();
        for b in blocks {
            q.push(b, now);
        }
    }

    #[test]
    fn trims_by_bytes_and_reports_lag() {
        let mut q = Queue::new(1000, 0);
        for _ in 0..10 {
            push_all(&mut q, [block(300, true)]);
        }
        assert_eq!(q.queued_bytes(), 900);
        assert_eq!(q.first(), 7);
        assert_eq!(q.tail(), 10);
        let mut out = Vec::new();
        assert_eq!(q.read(3, 10_000, false, &mut out), ReadOutcome::Lagged);
        assert_eq!(
            q.read(8, 10_000, false, &mut out),
            ReadOutcome::Advanced(10)
        );
        assert_eq!(out.len(), 2);
        assert_eq!(q.read(10, 10_000, false, &mut out), ReadOutcome::Idle);
    }

    #[test]
    fn burst_starts_on_a_start_point_within_burst() {
        let mut q = Queue::new(100_000, 0);
        // 10 blocks of 1000 bytes; start points every third block (0, 3, 6, 9).
        for i in 0..10 {
            push_all(&mut q, [block(1000, i % 3 == 0)]);
        }
        // 3500 bytes of burst reaches back to block 7; the next start point is 9.
        assert_eq!(burst_at(&mut q, 3500), 9);
        // 4000 bytes reaches block 6, a start point.
        assert_eq!(burst_at(&mut q, 4000), 6);
        // No burst: the tail block is a start point? block 9 is; burst 1000 reaches it.
        assert_eq!(burst_at(&mut q, 1000), 9);
        // Zero burst and no start at the tail: latest start point before.
        assert_eq!(burst_at(&mut q, 0), 9);
    }

    #[test]
    fn burst_without_start_points_waits_at_tail() {
        let mut q = Queue::new(100_000, 0);
        for _ in 0..5 {
            push_all(&mut q, [block(100, false)]);
        }
        assert_eq!(burst_at(&mut q, 65_535), 5);
    }

    #[test]
    fn need_start_skips_to_next_start_point() {
        let mut q = Queue::new(100_000, 0);
        push_all(&mut q, [block(10, false)]);
        push_all(&mut q, [block(10, false)]);
        let mut out = Vec::new();
        assert_eq!(q.read(0, 1000, true, &mut out), ReadOutcome::Advanced(2));
        assert!(out.is_empty());
        push_all(&mut q, [block(10, true)]);
        push_all(&mut q, [block(10, false)]);
        assert_eq!(q.read(2, 1000, true, &mut out), ReadOutcome::Advanced(4));
        assert_eq!(out.len(), 2);
        assert!(out[0].start.is_clean());
    }

    #[test]
    fn read_respects_max_bytes_but_takes_one() {
        let mut q = Queue::new(100_000, 0);
        push_all(&mut q, [block(5000, true)]);
        push_all(&mut q, [block(5000, true)]);
        let mut out = Vec::new();
        assert_eq!(q.read(0, 100, false, &mut out), ReadOutcome::Advanced(1));
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn a_boundary_becomes_a_start_after_the_gap() {
        let mut q = Queue::new(100_000, 0);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let gap = MAX_START_GAP.as_millis() as u64;
        // A clean start, then boundaries and mid-unit blocks with no keyframe.
        assert_eq!(q.push(with_start(10, Start::Clean), at(0)), None);
        assert_eq!(q.push(with_start(10, Start::No), at(gap)), None);
        assert_eq!(q.push(with_start(10, Start::Boundary), at(gap - 1)), None);
        assert_eq!(q.push(with_start(10, Start::Boundary), at(gap)), Some(1));
        // The next forced start is a whole gap later again.
        assert_eq!(
            q.push(with_start(10, Start::Boundary), at(2 * gap - 1)),
            None
        );
        assert_eq!(
            q.push(with_start(10, Start::Boundary), at(2 * gap)),
            Some(2)
        );
        // A keyframe resets the run.
        assert_eq!(q.push(with_start(10, Start::Clean), at(2 * gap + 1)), None);
        assert_eq!(
            q.push(with_start(10, Start::Boundary), at(3 * gap + 1)),
            Some(1)
        );
        let kinds: Vec<Start> = q.blocks.iter().map(|b| b.start).collect();
        use Start::*;
        assert_eq!(
            kinds,
            [Clean, No, Boundary, Forced, Boundary, Forced, Clean, Forced]
        );
        // A waiting reader takes a forced start like a clean one.
        let mut out = Vec::new();
        assert_eq!(q.read(1, 10, true, &mut out), ReadOutcome::Advanced(4));
        assert_eq!(out[0].start, Forced);
    }

    #[test]
    fn a_stream_without_any_start_gets_one_after_the_gap() {
        let mut q = Queue::new(100_000, 0);
        let t0 = Instant::now();
        for i in 0..20u64 {
            q.push(
                with_start(10, Start::Boundary),
                t0 + MAX_START_GAP * i as u32 / 4,
            );
        }
        // Forced at 4/4 (block 4), 8/4, 12/4, 16/4 of the gap after the first block.
        let forced: Vec<usize> = (0..20)
            .filter(|&i| q.blocks[i].start == Start::Forced)
            .collect();
        assert_eq!(forced, [4, 8, 12, 16]);
        assert_eq!(burst_at(&mut q, 25), 16);
    }

    #[test]
    fn burst_prefers_a_clean_start_over_a_forced_one() {
        let mut q = Queue::new(100_000, 0);
        push_all(
            &mut q,
            [
                with_start(1000, Start::Clean),
                with_start(1000, Start::No),
                with_start(1000, Start::Forced),
                with_start(1000, Start::Boundary),
            ],
        );
        // The burst reaches only the forced start, but the clean one is still queued.
        assert_eq!(burst_at(&mut q, 2000), 0);
        q.push(with_start(1000, Start::Clean), Instant::now());
        assert_eq!(burst_at(&mut q, 2000), 4);
        // Forced starts are taken when no clean one is queued.
        let mut q = Queue::new(100_000, 0);
        push_all(
            &mut q,
            [
                with_start(1000, Start::Boundary),
                with_start(1000, Start::Forced),
            ],
        );
        assert_eq!(burst_at(&mut q, 500), 1);
    }

    #[test]
    fn a_starting_reader_gets_the_start_copy() {
        let mut q = Queue::new(100_000, 0);
        let mut key = Block::new(Bytes::from_static(b"delta,KEY"), Start::Clean, None);
        key.start_data = Some(std::sync::Arc::new(Bytes::from_static(b"KEY")));
        push_all(&mut q, [block(5, false), key, block(5, false)]);
        let mut out = Vec::new();
        assert_eq!(q.read(0, 1000, true, &mut out), ReadOutcome::Advanced(3));
        assert_eq!(&out[0].data[..], b"KEY");
        assert!(out[0].start_data.is_none());
        assert_eq!(out.len(), 2);
        // A reader already streaming gets the whole block.
        out.clear();
        assert_eq!(q.read(1, 1000, false, &mut out), ReadOutcome::Advanced(3));
        assert_eq!(&out[0].data[..], b"delta,KEY");
    }

    #[test]
    fn start_copies_out_of_reach_are_released() {
        let keyframe = |n: u8| {
            let mut b = Block::new(Bytes::from(vec![n; 1000]), Start::Clean, None);
            b.start_data = Some(std::sync::Arc::new(Bytes::from(vec![n; 10])));
            b
        };
        // A keyframe block with a copy every third block of 1000 bytes.
        let now = Instant::now();
        let fill = |q: &mut Queue| {
            for i in 0..12u8 {
                let b = if i % 3 == 0 {
                    keyframe(i)
                } else {
                    block(1000, false)
                };
                q.push(b, now);
            }
        };
        // Burst 2500.
        let mut q = Queue::new(100_000, 2500);
        fill(&mut q);
        // Keyframes at 0, 3, 6, 9; the burst reaches back into block 9... (blocks 10 and 11
        // whole), so block 9 is the latest start before it and the copies before it go.
        let kept: Vec<usize> = (0..12)
            .filter(|&i| q.blocks[i].start_data.is_some())
            .collect();
        assert_eq!(kept, [9]);
        assert_eq!(q.burst_start(), 9);
        let mut out = Vec::new();
        q.read(q.burst_start(), 100_000, true, &mut out);
        assert_eq!(
            out[0].data.len(),
            10,
            "the starting reader still gets the copy"
        );
        // With a burst reaching further back, more copies stay.
        let mut q = Queue::new(100_000, 6500);
        fill(&mut q);
        let kept: Vec<usize> = (0..12)
            .filter(|&i| q.blocks[i].start_data.is_some())
            .collect();
        assert_eq!(kept, [3, 6, 9]);
        // Trimmed blocks take their copies with them.
        q.set_limit(2000);
        q.push(block(1000, false), now);
        assert!(q.copies.iter().all(|&(seq, _)| seq >= q.first()));
    }

    fn header(id: u64, data: &'static [u8]) -> Option<Arc<StreamHeader>> {
        Some(Arc::new(StreamHeader {
            id,
            data: Bytes::from_static(data),
        }))
    }

    #[test]
    fn the_burst_header_is_the_one_a_listener_arriving_now_is_sent() {
        let ten = |start, header| Block::new(Bytes::from(vec![0u8; 10]), start, header);
        let mut q = Queue::new(100_000, 25);
        assert!(q.burst_header().is_none(), "nothing queued: not known yet");
        let (old, new) = (header(1, b"old chain"), header(2, b"new chain"));
        push_all(&mut q, [ten(Start::Clean, None)]);
        assert_eq!(q.burst_header(), Some(None), "a format without headers");
        push_all(
            &mut q,
            [
                ten(Start::Clean, old.clone()),
                ten(Start::Clean, old.clone()),
            ],
        );
        assert_eq!(q.burst_header().flatten(), old.as_ref());
        // Another chain began inside the burst: the burst still starts in the old one.
        push_all(&mut q, [ten(Start::Clean, new.clone())]);
        assert_eq!(q.burst_header().flatten(), old.as_ref());
        push_all(&mut q, [ten(Start::Clean, new.clone())]);
        assert_eq!(q.burst_header().flatten(), new.as_ref());
        // No start point since: the listener waits for the next block, whose header is not
        // known yet.
        let mut q = Queue::new(100_000, 25);
        push_all(&mut q, [ten(Start::Boundary, old)]);
        assert!(q.burst_header().is_none());
    }

    #[test]
    fn a_departing_reader_takes_what_was_queued_before_the_move() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut q = Queue::new(100_000, 1000);
        for i in 0..6u64 {
            q.push(block(10, true), ms(i * 10));
        }
        let mut c = Cursor::burst(&q);
        let mut out = Vec::new();
        c.read(&q, 25, &mut out);
        assert_eq!(c.seq(), 2);
        // The move was asked when the tail was 4: blocks 2 and 3 still go out, 4 and 5 not.
        out.clear();
        let left = c.depart(&q, 4, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(c.seq(), 4);
        assert_eq!(left.last_arrival, Some(ms(30)));
        // A reader that took nothing has no moment to continue from.
        let mut fresh = Cursor::join(&q);
        assert!(fresh.depart(&q, 6, &mut out).last_arrival.is_none());
        // Nor has one that fell out of the queue.
        let mut lagged = Cursor::burst(&q);
        q.set_limit(20);
        assert!(lagged.depart(&q, 6, &mut out).last_arrival.is_none());
    }

    #[test]
    fn a_moved_reader_continues_at_the_same_moment_on_a_start_point() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut to = Queue::new(100_000, 15);
        // Blocks every 10 ms from 5 ms on; a start point every other block.
        for i in 0..10u64 {
            let mut b = block(10, i % 2 == 0);
            b.data = Bytes::from(vec![i as u8; 10]);
            to.push(b, ms(5 + i * 10));
        }
        let left = Departure {
            last_arrival: Some(ms(30)),
            header: None,
        };
        let mut c = Cursor::join(&to);
        c.splice(&to, &left);
        // Block 3 (35 ms) is the first newer one; block 4 the first start point from there.
        let mut out = Vec::new();
        c.read(&to, 1, &mut out);
        assert_eq!(out[0].data[0], 4);
        // Nothing newer queued yet: wait at the tail for the next start point.
        let late = Departure {
            last_arrival: Some(ms(500)),
            header: None,
        };
        c.splice(&to, &late);
        assert_eq!(c.seq(), to.tail());
        // A reader that took nothing gets a burst.
        c.splice(&to, &Departure::default());
        assert_eq!(c.seq(), to.burst_start());
        // A moment older than the queue: the whole of a queue never trimmed...
        let early = Departure {
            last_arrival: Some(t0),
            header: None,
        };
        c.splice(&to, &early);
        assert_eq!(c.seq(), 0);
        // ...but a burst from one that was: the matching point is gone.
        to.set_limit(50);
        c.splice(&to, &early);
        assert_eq!(c.seq(), to.burst_start());
        assert!(to.first() > 0);
    }

    #[test]
    fn a_moved_reader_gets_the_new_header_only_when_it_differs() {
        let now = Instant::now();
        let mut to = Queue::new(100_000, 0);
        let h = header(1, b"OggS B");
        to.push(
            Block::new(Bytes::from_static(b"p1"), Start::Clean, h.clone()),
            now,
        );
        let mut out = Vec::new();
        let mut c = Cursor::join(&to);
        let other = Departure {
            last_arrival: Some(now - Duration::from_millis(1)),
            header: header(7, b"OggS A"),
        };
        c.splice(&to, &other);
        c.read(&to, 100, &mut out);
        assert_eq!(c.new_header(&out[0]).map(|b| &b[..]), Some(&b"OggS B"[..]));
        // The same header bytes under another id (two relays of one stream): not again.
        let same = Departure {
            last_arrival: Some(now - Duration::from_millis(1)),
            header: header(9, b"OggS B"),
        };
        c.splice(&to, &same);
        out.clear();
        c.read(&to, 100, &mut out);
        assert_eq!(c.new_header(&out[0]), None);
    }
}
