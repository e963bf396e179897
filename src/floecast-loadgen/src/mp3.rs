//! Synthetic MPEG-1 Layer III frames for the bench source.
//!
//! The payload is all zeros: only the frame headers and lengths are real, which is all a server
//! needs to frame, queue and burst the stream. At 44.1 kHz a frame carries 1152 samples, so
//! there are 44100 / 1152 ≈ 38.28 frames per second, and a frame is
//! `144 * bitrate / 44100` bytes, padded by one byte whenever the running total needs it
//! (417 or 418 bytes at 128 kbit/s). The padding pattern repeats every 49 frames for any
//! integer bitrate, so one 49-frame cycle is generated up front and then replayed.

/// MPEG-1 sample rate used for every frame.
pub const SAMPLE_RATE: u64 = 44_100;
/// Samples per MPEG-1 Layer III frame.
pub const SAMPLES_PER_FRAME: u64 = 1_152;
/// Frames in one repeating padding cycle (44100 / gcd(144000, 44100)).
const CYCLE_FRAMES: usize = 49;

/// MPEG-1 Layer III bitrate table (kbit/s) indexed by the 4-bit header field.
const BITRATES: [u32; 15] = [
    0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
];

/// One padding cycle of frames plus the byte offset where each frame starts.
pub struct FrameCycle {
    buf: Vec<u8>,
    /// `offsets[k]` is where frame `k` starts; `offsets[CYCLE_FRAMES]` is `buf.len()`.
    offsets: Vec<usize>,
}

impl FrameCycle {
    /// Builds the cycle for a bitrate in kbit/s; only MPEG-1 Layer III bitrates are valid.
    pub fn new(bitrate_kbps: u32) -> Result<Self, String> {
        let index = BITRATES
            .iter()
            .position(|&b| b == bitrate_kbps && b != 0)
            .ok_or_else(|| {
                format!("--bitrate {bitrate_kbps}: not an MPEG-1 Layer III bitrate {BITRATES:?}")
            })?;
        let total = |n: u64| -> usize {
            // Bytes in the first n frames: floor(n * 144 * bitrate / sample_rate).
            (n * 144 * u64::from(bitrate_kbps) * 1000 / SAMPLE_RATE) as usize
        };
        let mut buf = Vec::with_capacity(total(CYCLE_FRAMES as u64));
        let mut offsets = Vec::with_capacity(CYCLE_FRAMES + 1);
        let unpadded = total(1);
        for n in 0..CYCLE_FRAMES as u64 {
            let len = total(n + 1) - total(n);
            let padded = len > unpadded;
            offsets.push(buf.len());
            // Sync + MPEG-1 + Layer III + no CRC, bitrate index, 44.1 kHz, padding bit.
            let b2 = ((index as u8) << 4) | if padded { 0x02 } else { 0x00 };
            buf.extend_from_slice(&[0xFF, 0xFB, b2, 0x00]);
            buf.resize(buf.len() + len - 4, 0);
        }
        offsets.push(buf.len());
        Ok(FrameCycle { buf, offsets })
    }

    /// Frames per second of real-time audio.
    pub fn frames_per_second() -> f64 {
        SAMPLE_RATE as f64 / SAMPLES_PER_FRAME as f64
    }

    /// Appends frames `first .. first + count` of the endless stream to `out`.
    pub fn append_frames(&self, first: u64, count: u64, out: &mut Vec<u8>) {
        let mut frame = (first % CYCLE_FRAMES as u64) as usize;
        let mut left = count;
        while left > 0 {
            let run = ((CYCLE_FRAMES - frame) as u64).min(left) as usize;
            out.extend_from_slice(&self.buf[self.offsets[frame]..self.offsets[frame + run]]);
            left -= run as u64;
            frame = 0;
        }
    }

    /// A frame-aligned block of at least `min_len` bytes (whole cycles), for unpaced sending.
    pub fn block(&self, min_len: usize) -> Vec<u8> {
        let cycles = min_len.div_ceil(self.buf.len()).max(1);
        self.buf.repeat(cycles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycle_is_exactly_real_time_at_128k() {
        let c = FrameCycle::new(128).expect("valid bitrate");
        // 49 frames = 49 * 1152 / 44100 s = 1.28 s = 20480 bytes at 16000 B/s.
        assert_eq!(c.buf.len(), 20_480);
        let lens: Vec<usize> = c.offsets.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(lens.iter().all(|&l| l == 417 || l == 418));
        assert_eq!(&c.buf[..4], &[0xFF, 0xFB, 0x90, 0x00]);
        let padded = c.offsets[..49]
            .iter()
            .filter(|&&o| c.buf[o + 2] == 0x92)
            .count();
        assert_eq!(padded, lens.iter().filter(|&&l| l == 418).count());
    }

    #[test]
    fn append_wraps_cycles() {
        let c = FrameCycle::new(128).expect("valid bitrate");
        let mut out = Vec::new();
        c.append_frames(40, 20, &mut out);
        let mut whole = Vec::new();
        c.append_frames(0, 98, &mut whole);
        assert_eq!(out, whole[c.offsets[40]..c.offsets[40] + out.len()]);
        assert!(FrameCycle::new(100).is_err());
    }
}
