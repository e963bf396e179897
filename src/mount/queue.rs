//! The per-mount block queue: refcounted blocks with sequence numbers, trimmed by bytes.
//!
//! Listeners hold only a sequence number into it; reading clones `Bytes` handles (a refcount
//! increment), never audio data. Sans-IO and lock-free of its own: `Mount` wraps it in a mutex.

use std::collections::VecDeque;

use crate::format::Block;

/// Sequence number of a block in a mount's queue; increases by one per block, never reused.
pub type Seq = u64;

#[derive(Debug)]
pub struct Queue {
    blocks: VecDeque<Block>,
    /// Sequence number of `blocks[0]`.
    first: Seq,
    /// Bytes of all queued blocks.
    bytes: usize,
    /// Trim the oldest blocks while more than this many bytes are queued.
    limit: usize,
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
    pub fn new(limit: usize) -> Self {
        Queue {
            blocks: VecDeque::new(),
            first: 0,
            bytes: 0,
            limit,
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

    pub fn push(&mut self, block: Block) {
        self.bytes += block.data.len();
        self.blocks.push_back(block);
        self.trim();
    }

    fn trim(&mut self) {
        // Keep at least one block so a new listener always has somewhere to start.
        while self.bytes > self.limit && self.blocks.len() > 1 {
            if let Some(old) = self.blocks.pop_front() {
                self.bytes -= old.data.len();
                self.first += 1;
            }
        }
    }

    /// Where a new listener starts: the first start point at or after the position
    /// `burst` bytes before the tail; failing that the latest start point before it; failing
    /// that the tail (the listener then waits for the next start point).
    pub fn burst_start(&self, burst: usize) -> Seq {
        let mut acc = 0usize;
        let mut pos = self.blocks.len();
        while pos > 0 && acc + self.blocks[pos - 1].data.len() <= burst {
            pos -= 1;
            acc += self.blocks[pos].data.len();
        }
        if let Some(i) = (pos..self.blocks.len()).find(|&i| self.blocks[i].start) {
            return self.first + i as Seq;
        }
        if let Some(i) = (0..pos).rev().find(|&i| self.blocks[i].start) {
            return self.first + i as Seq;
        }
        self.tail()
    }

    /// Is this position still in the queue (or at its tail)?
    pub fn holds(&self, seq: Seq) -> bool {
        seq >= self.first && seq <= self.tail()
    }

    /// Append clones of the blocks from `from` on, up to about `max_bytes` (always at least
    /// one block), to `out`. With `need_start`, blocks before the next start point are skipped.
    pub fn read(
        &self,
        from: Seq,
        max_bytes: usize,
        need_start: bool,
        out: &mut Vec<Block>,
    ) -> ReadOutcome {
        if from < self.first {
            return ReadOutcome::Lagged;
        }
        let mut i = (from - self.first) as usize;
        if need_start {
            while i < self.blocks.len() && !self.blocks[i].start {
                i += 1;
            }
            if i == self.blocks.len() {
                return if from == self.tail() {
                    ReadOutcome::Idle
                } else {
                    ReadOutcome::Advanced(self.tail())
                };
            }
        }
        if i >= self.blocks.len() {
            return ReadOutcome::Idle;
        }
        let mut taken = 0usize;
        while i < self.blocks.len()
            && (taken == 0 || taken + self.blocks[i].data.len() <= max_bytes)
        {
            taken += self.blocks[i].data.len();
            out.push(self.blocks[i].clone());
            i += 1;
        }
        ReadOutcome::Advanced(self.first + i as Seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn block(len: usize, start: bool) -> Block {
        Block {
            data: Bytes::from(vec![0u8; len]),
            start,
            header: None,
        }
    }

    #[test]
    fn trims_by_bytes_and_reports_lag() {
        let mut q = Queue::new(1000);
        for _ in 0..10 {
            q.push(block(300, true));
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
        let mut q = Queue::new(100_000);
        // 10 blocks of 1000 bytes; start points every third block (0, 3, 6, 9).
        for i in 0..10 {
            q.push(block(1000, i % 3 == 0));
        }
        // 3500 bytes of burst reaches back to block 7; the next start point is 9.
        assert_eq!(q.burst_start(3500), 9);
        // 4000 bytes reaches block 6, a start point.
        assert_eq!(q.burst_start(4000), 6);
        // No burst: the tail block is a start point? block 9 is; burst 1000 reaches it.
        assert_eq!(q.burst_start(1000), 9);
        // Zero burst and no start at the tail: latest start point before.
        assert_eq!(q.burst_start(0), 9);
    }

    #[test]
    fn burst_without_start_points_waits_at_tail() {
        let mut q = Queue::new(100_000);
        for _ in 0..5 {
            q.push(block(100, false));
        }
        assert_eq!(q.burst_start(65_535), 5);
    }

    #[test]
    fn need_start_skips_to_next_start_point() {
        let mut q = Queue::new(100_000);
        q.push(block(10, false));
        q.push(block(10, false));
        let mut out = Vec::new();
        assert_eq!(q.read(0, 1000, true, &mut out), ReadOutcome::Advanced(2));
        assert!(out.is_empty());
        q.push(block(10, true));
        q.push(block(10, false));
        assert_eq!(q.read(2, 1000, true, &mut out), ReadOutcome::Advanced(4));
        assert_eq!(out.len(), 2);
        assert!(out[0].start);
    }

    #[test]
    fn read_respects_max_bytes_but_takes_one() {
        let mut q = Queue::new(100_000);
        q.push(block(5000, true));
        q.push(block(5000, true));
        let mut out = Vec::new();
        assert_eq!(q.read(0, 100, false, &mut out), ReadOutcome::Advanced(1));
        assert_eq!(out.len(), 1);
    }
}
