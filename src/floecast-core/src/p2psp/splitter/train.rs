//! Uplink trains: how fast a joiner's uplink is, measured before it is given anything to flood.
//!
//! A peer's pacer measures its uplink only once a queue stands on it, seconds after it joins,
//! and the Report that says so crosses that same queue: a slow member was given a full share
//! for its first 10–25 s, and the team lost or re-flooded what it could not pass on in time.
//! So a joiner sends a Train, a few datagrams back to back ([`Message::Train`]); the uplink
//! serialises them one after the other, and their spacing on arrival is its rate
//! (packet-train dispersion). The narrowest gap is read: cross traffic, or our own event loop
//! reading late, only widens a gap, so a train reads slow only if every gap was widened (and
//! the path's jitter, a few ms, narrows one by little).
//!
//! A member's measurement is its own word either way (as its Reports are): spacing its
//! datagrams wider only takes turns away from itself.
//!
//! [`Message::Train`]: crate::p2psp::wire::Message::Train

use std::time::{Duration, Instant};

/// A new member gets no chunk turns until its Train has come, or this long after its join
/// (a lost Train must not keep it out for good).
pub(super) const TRAIN_WAIT: Duration = Duration::from_secs(2);

/// The arrivals of one member's latest Train.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Train {
    /// The last datagram of it we got (its `seq`, when), and the fastest rate a gap between
    /// two of them read.
    last: Option<(u8, Instant)>,
    best: u32,
}

impl Train {
    /// Datagram `seq` of `count` arrived at `now`, `bytes` long on the wire. Returns the rate
    /// the train reads (bytes/s) once two of it have come: its narrowest gap's (the uplink
    /// spaces every gap alike).
    pub(super) fn on_datagram(
        &mut self,
        now: Instant,
        seq: u8,
        count: u8,
        bytes: usize,
    ) -> Option<u32> {
        if seq >= count {
            return None;
        }
        // A seq not past the last one starts a new train (a later Train, or reordering, which
        // spoils this one anyway).
        let Some((last_seq, last_at)) = self.last.filter(|(l, _)| seq > *l) else {
            self.last = Some((seq, now));
            self.best = 0;
            return None;
        };
        self.last = Some((seq, now));
        let gaps = u64::from(seq - last_seq);
        let span = now.saturating_duration_since(last_at);
        let rate = if span.is_zero() {
            u32::MAX
        } else {
            let r = (gaps * bytes as u64) as f64 / span.as_secs_f64();
            r.min(f64::from(u32::MAX)) as u32
        };
        self.best = self.best.max(rate);
        Some(self.best)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests stand in for the driver: they read the clock
mod tests {
    use super::*;

    #[test]
    fn spacing_is_the_rate() {
        let t0 = Instant::now();
        let mut t = Train::default();
        // 1228 bytes every 153.5 ms: 8 kB/s, a 64 kbit/s uplink.
        let gap = Duration::from_micros(153_500);
        assert_eq!(t.on_datagram(t0, 0, 5, 1228), None);
        let mut got = None;
        for seq in 1..5u8 {
            got = t.on_datagram(t0 + gap * u32::from(seq), seq, 5, 1228);
        }
        let rate = got.unwrap();
        assert!((7_990..=8_010).contains(&rate), "{rate}");
    }

    #[test]
    fn lost_datagrams_shorten_the_train_but_keep_its_rate() {
        let t0 = Instant::now();
        let gap = Duration::from_millis(10);
        let mut t = Train::default();
        // Datagram 0 and 3 lost: 1 → 4 is three gaps.
        assert_eq!(t.on_datagram(t0 + gap, 1, 5, 1000), None);
        assert_eq!(t.on_datagram(t0 + gap * 2, 2, 5, 1000), Some(100_000));
        assert_eq!(t.on_datagram(t0 + gap * 4, 4, 5, 1000), Some(100_000));
    }

    #[test]
    fn one_widened_gap_does_not_slow_the_reading() {
        let t0 = Instant::now();
        let mut t = Train::default();
        // 10 ms gaps (100 kB/s), but our loop read datagram 2 80 ms late.
        let at = [0, 10, 100, 110, 120];
        let mut got = None;
        for (seq, ms) in at.iter().enumerate() {
            got = t.on_datagram(t0 + Duration::from_millis(*ms), seq as u8, 5, 1000);
        }
        assert_eq!(got, Some(100_000));
    }

    #[test]
    fn a_new_train_starts_over_and_nonsense_is_ignored() {
        let t0 = Instant::now();
        let mut t = Train::default();
        assert_eq!(t.on_datagram(t0, 9, 5, 1000), None, "seq past count");
        t.on_datagram(t0, 0, 5, 1000);
        t.on_datagram(t0 + Duration::from_millis(10), 1, 5, 1000);
        // A second Train 30 s later, at a tenth the rate.
        let t1 = t0 + Duration::from_secs(30);
        assert_eq!(t.on_datagram(t1, 0, 5, 1000), None);
        let r = t.on_datagram(t1 + Duration::from_millis(100), 1, 5, 1000);
        assert_eq!(r, Some(10_000));
        // All at one instant (a driver that read them in one batch): as fast as can be.
        let mut t = Train::default();
        t.on_datagram(t0, 0, 2, 1000);
        assert_eq!(t.on_datagram(t0, 1, 2, 1000), Some(u32::MAX));
    }
}
