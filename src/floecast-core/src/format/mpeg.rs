//! MPEG audio (MP1/2/3, AAC ADTS) and opaque pass-through framing.
//!
//! Icecast passes these streams through byte for byte; [`MpegFramer`] only decides where
//! blocks begin so that start points fall on frame boundaries. Bytes that are not frames
//! (ID3v2 tags, junk) are kept and emitted as non-start blocks: nothing is altered or lost.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::{Block, CodecInfo, FormatError, Framer, Start, StreamHeader};

/// Bytes a header needs before it can be parsed (ADTS needs 7, MPEG audio 4).
const MAX_HEADER_LEN: usize = 7;
/// Never hold more than this without finding a frame (frames are < 8 KiB, so this only
/// guards the invariant).
const MAX_UNSYNCED: usize = 64 * 1024;

/// Which frame family a header belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    MpegLayer1,
    MpegLayer2,
    /// MPEG-1/2/2.5 Layer III.
    Mp3,
    /// AAC in ADTS framing.
    Adts,
}

impl FrameKind {
    pub fn codec_name(self) -> &'static str {
        match self {
            FrameKind::MpegLayer1 => "MPEG Layer 1",
            FrameKind::MpegLayer2 => "MPEG Layer 2",
            FrameKind::Mp3 => "MP3",
            FrameKind::Adts => "AAC",
        }
    }
}

/// A parsed MPEG audio or ADTS frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub kind: FrameKind,
    /// Whole frame length in bytes, header included.
    pub frame_len: usize,
    pub samplerate: u32,
    /// 0 when an ADTS header leaves the channel layout to the payload (config 0).
    pub channels: u32,
    /// MPEG audio only; ADTS headers carry no bitrate.
    pub bitrate_kbps: Option<u32>,
}

const BITRATES_V1: [[u16; 15]; 3] = [
    [
        0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
    ],
    [
        0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
    ],
    [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ],
];
const BITRATES_V2_L1: [u16; 15] = [
    0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
];
const BITRATES_V2_L23: [u16; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
const ADTS_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Parse the frame header at the start of `b`. `None` if it is not a valid header or `b` is
/// too short to tell. Free-format MPEG (bitrate index 0) is not accepted.
pub fn parse_frame_header(b: &[u8]) -> Option<FrameHeader> {
    if b.len() < 4 || b[0] != 0xFF || b[1] & 0xE0 != 0xE0 {
        return None;
    }
    let layer_bits = (b[1] >> 1) & 3;
    if layer_bits == 0 {
        return parse_adts(b);
    }
    let version = (b[1] >> 3) & 3; // 0: 2.5, 1: reserved, 2: MPEG-2, 3: MPEG-1
    if version == 1 {
        return None;
    }
    let br_index = (b[2] >> 4) as usize;
    let sr_index = ((b[2] >> 2) & 3) as usize;
    if br_index == 0 || br_index == 15 || sr_index == 3 || b[3] & 3 == 2 {
        return None;
    }
    let padding = ((b[2] >> 1) & 1) as usize;
    let samplerate = [44100, 48000, 32000][sr_index] >> [2, 0, 1, 0][version as usize];
    let kind = match layer_bits {
        3 => FrameKind::MpegLayer1,
        2 => FrameKind::MpegLayer2,
        _ => FrameKind::Mp3,
    };
    let kbps = match (version, kind) {
        (3, FrameKind::MpegLayer1) => BITRATES_V1[0][br_index],
        (3, FrameKind::MpegLayer2) => BITRATES_V1[1][br_index],
        (3, _) => BITRATES_V1[2][br_index],
        (_, FrameKind::MpegLayer1) => BITRATES_V2_L1[br_index],
        _ => BITRATES_V2_L23[br_index],
    } as usize;
    let bps = kbps * 1000;
    let sr = samplerate as usize;
    let frame_len = match kind {
        FrameKind::MpegLayer1 => (12 * bps / sr + padding) * 4,
        // MPEG-2/2.5 Layer III frames hold half the samples.
        FrameKind::Mp3 if version != 3 => 72 * bps / sr + padding,
        _ => 144 * bps / sr + padding,
    };
    Some(FrameHeader {
        kind,
        frame_len,
        samplerate,
        channels: if b[3] >> 6 == 3 { 1 } else { 2 },
        bitrate_kbps: Some(kbps as u32),
    })
}

fn parse_adts(b: &[u8]) -> Option<FrameHeader> {
    if b.len() < 7 || b[1] & 0xF6 != 0xF0 {
        return None;
    }
    let samplerate = *ADTS_RATES.get(((b[2] >> 2) & 0xF) as usize)?;
    let channels = (((b[2] & 1) << 2) | (b[3] >> 6)) as u32;
    let frame_len = (((b[3] & 3) as usize) << 11) | ((b[4] as usize) << 3) | (b[5] as usize >> 5);
    let header_len = if b[1] & 1 == 0 { 9 } else { 7 };
    if frame_len < header_len {
        return None;
    }
    Some(FrameHeader {
        kind: FrameKind::Adts,
        frame_len,
        samplerate,
        channels: if channels == 7 { 8 } else { channels },
        bitrate_kbps: None,
    })
}

/// Content-Types handled by [`MpegFramer`] (parameters ignored, case-insensitive).
pub fn is_mpeg_audio_type(content_type: &str) -> bool {
    let base = content_type.split(';').next().unwrap_or("").trim();
    [
        "audio/mpeg",
        "audio/mp3",
        "audio/mpeg3",
        "audio/x-mpeg",
        "audio/aac",
        "audio/aacp",
        "audio/x-aac",
    ]
    .iter()
    .any(|t| base.eq_ignore_ascii_case(t))
}

/// What the bytes at a scan position are.
enum Unit {
    /// A confirmed frame of this length.
    Frame(usize),
    /// This many bytes are not frames.
    Junk(usize),
    /// An ID3v2 tag of this total length.
    Id3(usize),
    NeedMore,
}

fn classify(rest: &[u8]) -> Unit {
    if let Some(h) = parse_frame_header(rest) {
        let Some(next) = rest.get(h.frame_len..) else {
            return Unit::NeedMore;
        };
        if next.len() < MAX_HEADER_LEN {
            // A shorter header may already be decidable (MPEG needs only 4 bytes).
            if let Some(n) = parse_frame_header(next)
                && same_stream(&h, &n)
            {
                return Unit::Frame(h.frame_len);
            }
            return Unit::NeedMore;
        }
        return match parse_frame_header(next) {
            Some(n) if same_stream(&h, &n) => Unit::Frame(h.frame_len),
            _ => Unit::Junk(1),
        };
    }
    if rest.starts_with(b"ID3") {
        if rest.len() < 10 {
            return Unit::NeedMore;
        }
        return match id3v2_len(rest) {
            Some(n) => Unit::Id3(n),
            None => Unit::Junk(1),
        };
    }
    let prefix = rest.len() < MAX_HEADER_LEN
        && (rest[0] == 0xFF || b"ID3".starts_with(&rest[..rest.len().min(3)]));
    if prefix {
        // Possibly a header or tag cut short by the end of the buffer.
        return Unit::NeedMore;
    }
    // Skip ahead to the next byte that could begin a frame or a tag.
    let n = rest[1..]
        .iter()
        .position(|&b| b == 0xFF || b == b'I')
        .map_or(rest.len(), |p| p + 1);
    Unit::Junk(n)
}

fn same_stream(a: &FrameHeader, b: &FrameHeader) -> bool {
    a.kind == b.kind && a.samplerate == b.samplerate
}

/// Total length of the ID3v2 tag at the start of `b` (at least 10 bytes), if well formed.
fn id3v2_len(b: &[u8]) -> Option<usize> {
    if b[3] == 0xFF || b[4] == 0xFF || b[6..10].iter().any(|&x| x & 0x80 != 0) {
        return None;
    }
    let size = b[6..10]
        .iter()
        .fold(0usize, |acc, &x| (acc << 7) | x as usize);
    let footer = if b[5] & 0x10 != 0 { 10 } else { 0 };
    Some(10 + size + footer)
}

/// Largest run of whole frames (or passthrough bytes) put in one block.
pub const BLOCK_TARGET: usize = 4096;

/// Framer for MP3/MP2/AAC-ADTS streams: blocks of whole frames are start points.
pub struct MpegFramer {
    buf: BytesMut,
    /// Remaining bytes of an ID3v2 tag being passed through.
    skip: usize,
    info: CodecInfo,
    /// (kind, samplerate, channels) the info was last taken from.
    info_key: Option<(FrameKind, u32, u32)>,
    /// Drop everything before the first frame (see [`MpegFramer::continuing`]).
    drop_leading: bool,
}

impl MpegFramer {
    pub fn new() -> Self {
        MpegFramer {
            buf: BytesMut::new(),
            skip: 0,
            info: CodecInfo::default(),
            info_key: None,
            drop_leading: false,
        }
    }

    /// A framer for bytes that continue a stream listeners are already playing (a relay
    /// reconnected upstream): whatever precedes the first frame, such as the new upstream's
    /// ID3 tag or a cut frame, is dropped, since decoders fail on it mid-stream.
    pub fn continuing() -> Self {
        MpegFramer {
            drop_leading: true,
            ..Self::new()
        }
    }

    fn note_frame(&mut self, h: &FrameHeader) {
        let key = (h.kind, h.samplerate, h.channels);
        if self.info_key == Some(key) {
            // VBR changes the bitrate per frame; keep the first one seen.
            return;
        }
        self.info_key = Some(key);
        self.info.codec = Some(h.kind.codec_name().to_string());
        self.info.samplerate = Some(h.samplerate);
        self.info.channels = (h.channels > 0).then_some(h.channels);
        self.info.bitrate = h.bitrate_kbps;
    }

    /// Walk the buffer, cutting it into runs of frames (start points) and runs of other
    /// bytes, and emit every run that is decided.
    fn drain(&mut self, out: &mut Vec<Block>) {
        let mut pos = 0;
        // (end offset, is frame run) of runs not yet split off.
        let mut runs: Vec<(usize, bool)> = Vec::new();
        fn mark(runs: &mut Vec<(usize, bool)>, end: usize, frame: bool) {
            match runs.last_mut() {
                Some(last) if last.1 == frame => last.0 = end,
                _ => runs.push((end, frame)),
            }
        }
        loop {
            if self.skip > 0 {
                let n = self.skip.min(self.buf.len() - pos);
                if n == 0 {
                    break;
                }
                pos += n;
                self.skip -= n;
                mark(&mut runs, pos, false);
                continue;
            }
            let rest = &self.buf[pos..];
            if rest.is_empty() {
                break;
            }
            match classify(rest) {
                Unit::Frame(n) => {
                    if let Some(h) = parse_frame_header(rest) {
                        self.note_frame(&h);
                    }
                    // Cap frame runs at BLOCK_TARGET so burst-on-connect can start close
                    // to the requested burst size (icecast's blocks are 1400 bytes).
                    let run_start = runs.len().checked_sub(2).map_or(0, |i| runs[i].0);
                    let in_frame_run = runs.last().is_some_and(|r| r.1);
                    pos += n;
                    if in_frame_run && pos - run_start > BLOCK_TARGET {
                        runs.push((pos, true));
                    } else {
                        mark(&mut runs, pos, true);
                    }
                }
                Unit::Junk(n) => {
                    pos += n;
                    mark(&mut runs, pos, false);
                }
                Unit::Id3(n) => self.skip = n,
                Unit::NeedMore if rest.len() > MAX_UNSYNCED => {
                    pos += 1;
                    mark(&mut runs, pos, false);
                }
                Unit::NeedMore => break,
            }
        }
        let mut done = 0;
        for (end, frame) in runs {
            if self.drop_leading {
                if !frame {
                    let _ = self.buf.split_to(end - done);
                    done = end;
                    continue;
                }
                self.drop_leading = false;
            }
            out.push(Block::new(
                self.buf.split_to(end - done).freeze(),
                Start::clean_if(frame),
                None,
            ));
            done = end;
        }
    }
}

impl Default for MpegFramer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framer for MpegFramer {
    fn push(&mut self, input: &[u8], out: &mut Vec<Block>) -> Result<(), FormatError> {
        self.buf.extend_from_slice(input);
        self.drain(out);
        Ok(())
    }

    fn flush(&mut self, out: &mut Vec<Block>) {
        if self.buf.is_empty() {
            return;
        }
        // The last frame has no successor to confirm it; accept it if it is whole.
        let start = self.skip == 0
            && parse_frame_header(&self.buf).is_some_and(|h| h.frame_len <= self.buf.len());
        out.push(Block::new(
            self.buf.split().freeze(),
            Start::clean_if(start),
            None,
        ));
        self.skip = 0;
    }

    fn info(&self) -> &CodecInfo {
        &self.info
    }

    fn header(&self) -> Option<Arc<StreamHeader>> {
        None
    }
}

/// Icecast's generic handler: bytes pass through untouched, every block is a start point.
pub struct PassthroughFramer {
    info: CodecInfo,
}

impl PassthroughFramer {
    pub fn new() -> Self {
        PassthroughFramer {
            info: CodecInfo::default(),
        }
    }
}

impl Default for PassthroughFramer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framer for PassthroughFramer {
    fn push(&mut self, input: &[u8], out: &mut Vec<Block>) -> Result<(), FormatError> {
        let data = Bytes::copy_from_slice(input);
        for i in (0..data.len()).step_by(BLOCK_TARGET) {
            out.push(Block::new(
                data.slice(i..(i + BLOCK_TARGET).min(data.len())),
                Start::Clean,
                None,
            ));
        }
        Ok(())
    }

    fn flush(&mut self, _out: &mut Vec<Block>) {}

    fn info(&self) -> &CodecInfo {
        &self.info
    }

    fn header(&self) -> Option<Arc<StreamHeader>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, joint stereo, zero payload.
    fn mp3_frame(padding: bool) -> Vec<u8> {
        let mut f = vec![0xFF, 0xFB, 0x90 | if padding { 2 } else { 0 }, 0x40];
        f.resize(if padding { 418 } else { 417 }, 0);
        f
    }

    /// AAC LC ADTS, 44.1 kHz stereo, no CRC.
    fn adts_frame(len: usize) -> Vec<u8> {
        let mut f = vec![
            0xFF,
            0xF1,
            0x50,
            0x80 | ((len >> 11) & 3) as u8,
            (len >> 3) as u8,
            (((len & 7) << 5) | 0x1F) as u8,
            0xFC,
        ];
        f.resize(len, 0);
        f
    }

    fn id3_tag(payload: usize) -> Vec<u8> {
        let mut t = b"ID3\x04\x00\x00".to_vec();
        t.extend([(payload >> 21) as u8 & 0x7F, (payload >> 14) as u8 & 0x7F]);
        t.extend([(payload >> 7) as u8 & 0x7F, payload as u8 & 0x7F]);
        // A fake frame header inside the tag must not be taken as a frame.
        let mut body = mp3_frame(false);
        body.resize(payload, 0x20);
        t.extend(body);
        t
    }

    fn feed(f: &mut dyn Framer, input: &[u8], chunk: usize) -> Vec<Block> {
        let mut out = Vec::new();
        for c in input.chunks(chunk.max(1)) {
            f.push(c, &mut out).unwrap();
        }
        f.flush(&mut out);
        out
    }

    #[test]
    fn a_continuing_framer_drops_what_precedes_the_first_frame() {
        let frames: Vec<u8> = (0..6).flat_map(|i| mp3_frame(i % 3 == 2)).collect();
        let mut input = mp3_frame(false)[200..].to_vec(); // the tail of a cut frame
        input.extend(id3_tag(600));
        input.extend(&frames);
        for chunk in [1, 7, 500, 10_000] {
            let out = feed(&mut MpegFramer::continuing(), &input, chunk);
            assert!(out[0].start.is_clean(), "chunk {chunk}");
            assert_eq!(concat(&out), frames, "chunk {chunk}");
            // An ordinary framer passes the same bytes through.
            assert_eq!(concat(&feed(&mut MpegFramer::new(), &input, chunk)), input);
        }
    }

    fn concat(blocks: &[Block]) -> Vec<u8> {
        blocks.iter().flat_map(|b| b.data.iter().copied()).collect()
    }

    #[test]
    fn mp3_header_lengths() {
        let h = parse_frame_header(&mp3_frame(false)).unwrap();
        assert_eq!(h.kind, FrameKind::Mp3);
        assert_eq!((h.frame_len, h.samplerate, h.channels), (417, 44100, 2));
        assert_eq!(h.bitrate_kbps, Some(128));
        assert_eq!(parse_frame_header(&mp3_frame(true)).unwrap().frame_len, 418);
        // MPEG-2 Layer III 64 kbit/s 22.05 kHz mono: 72 * 64000 / 22050 = 208.
        let h = parse_frame_header(&[0xFF, 0xF3, 0x80, 0xC0]).unwrap();
        assert_eq!((h.frame_len, h.samplerate, h.channels), (208, 22050, 1));
        // MPEG-1 Layer II 192 kbit/s 48 kHz: 144 * 192000 / 48000 = 576.
        let h = parse_frame_header(&[0xFF, 0xFD, 0xA4, 0x00]).unwrap();
        assert_eq!((h.kind, h.frame_len), (FrameKind::MpegLayer2, 576));
        // MPEG-1 Layer I 32 kbit/s 32 kHz: (12 * 32000 / 32000) * 4 = 48.
        let h = parse_frame_header(&[0xFF, 0xFF, 0x18, 0x00]).unwrap();
        assert_eq!((h.kind, h.frame_len), (FrameKind::MpegLayer1, 48));
        // Free format, bad bitrate, reserved rate / version / emphasis.
        for bad in [
            [0xFF, 0xFB, 0x00, 0x00],
            [0xFF, 0xFB, 0xF0, 0x00],
            [0xFF, 0xFB, 0x9C, 0x00],
            [0xFF, 0xEB, 0x90, 0x00],
            [0xFF, 0xFB, 0x90, 0x02],
        ] {
            assert_eq!(parse_frame_header(&bad), None);
        }
    }

    #[test]
    fn adts_header() {
        let h = parse_frame_header(&adts_frame(371)).unwrap();
        assert_eq!(h.kind, FrameKind::Adts);
        assert_eq!((h.frame_len, h.samplerate, h.channels), (371, 44100, 2));
        assert_eq!(h.bitrate_kbps, None);
        assert_eq!(parse_frame_header(&adts_frame(371)[..6]), None);
    }

    #[test]
    fn frames_are_start_blocks() {
        let input = [mp3_frame(false), mp3_frame(true), mp3_frame(false)].concat();
        let mut f = MpegFramer::new();
        let mut out = Vec::new();
        f.push(&input, &mut out).unwrap();
        // The last frame waits for a successor header to confirm it.
        assert_eq!(out.len(), 1);
        assert!(out[0].start.is_clean() && out[0].header.is_none());
        assert_eq!(out[0].data.len(), 835);
        f.flush(&mut out);
        assert_eq!(out.len(), 2);
        assert!(out[1].start.is_clean());
        assert_eq!(concat(&out), input);
        let info = f.info();
        assert_eq!(info.codec.as_deref(), Some("MP3"));
        assert_eq!(
            (info.samplerate, info.channels, info.bitrate),
            (Some(44100), Some(2), Some(128))
        );
    }

    #[test]
    fn id3_prefix_is_passed_through_as_non_start() {
        let tag = id3_tag(900);
        let input = [
            tag.clone(),
            mp3_frame(false),
            mp3_frame(false),
            mp3_frame(true),
        ]
        .concat();
        let out = feed(&mut MpegFramer::new(), &input, input.len());
        assert_eq!(concat(&out), input);
        assert!(!out[0].start.is_clean());
        assert_eq!(out[0].data, tag);
        assert!(out[1].start.is_clean());
        assert_eq!(out[1].data.len(), 417 * 2);
    }

    #[test]
    fn junk_between_frames() {
        let junk = b"\xFF\xFB junk \xFF".to_vec();
        let input = [
            mp3_frame(false),
            mp3_frame(false),
            junk.clone(),
            mp3_frame(false),
        ]
        .concat();
        let mut f = MpegFramer::new();
        let out = feed(&mut f, &[input.clone(), mp3_frame(false)].concat(), 10_000);
        let shape: Vec<(usize, bool)> = out
            .iter()
            .map(|b| (b.data.len(), b.start.is_clean()))
            .collect();
        // The second frame is not followed by a header, so it is not confirmed; the last
        // frame comes out of flush.
        assert_eq!(
            shape,
            [
                (417, true),
                (417 + junk.len(), false),
                (417, true),
                (417, true)
            ]
        );
    }

    #[test]
    fn one_byte_at_a_time_is_byte_exact() {
        let input = [
            b"junk".to_vec(),
            id3_tag(50),
            mp3_frame(false),
            mp3_frame(true),
            b"\xFF".to_vec(),
            mp3_frame(false),
            mp3_frame(false),
        ]
        .concat();
        let out = feed(&mut MpegFramer::new(), &input, 1);
        assert_eq!(concat(&out), input);
        for b in out.iter().filter(|b| b.start.is_clean()) {
            assert!(parse_frame_header(&b.data).is_some());
        }
        let big = feed(&mut MpegFramer::new(), &input, input.len());
        let starts = |v: &[Block]| {
            let mut pos = 0;
            let mut s = Vec::new();
            for b in v {
                if b.start.is_clean() {
                    s.push(pos);
                }
                pos += b.data.len();
            }
            s
        };
        // Same frame boundaries however the input is split (runs coalesce differently).
        let frames = |v: &[Block]| {
            let mut pos = 0;
            let mut s = Vec::new();
            for b in v {
                let mut p = 0;
                while b.start.is_clean() && p < b.data.len() {
                    s.push(pos + p);
                    p += parse_frame_header(&b.data[p..]).map_or(b.data.len(), |h| h.frame_len);
                }
                pos += b.data.len();
            }
            s
        };
        assert_eq!(frames(&out), frames(&big));
        assert!(!starts(&big).is_empty());
    }

    #[test]
    fn adts_stream() {
        let input = [adts_frame(300), adts_frame(301), adts_frame(302)].concat();
        let mut f = MpegFramer::new();
        let out = feed(&mut f, &input, 7);
        assert_eq!(concat(&out), input);
        assert!(out.iter().all(|b| b.start.is_clean()));
        let info = f.info();
        assert_eq!(info.codec.as_deref(), Some("AAC"));
        assert_eq!(
            (info.samplerate, info.channels, info.bitrate),
            (Some(44100), Some(2), None)
        );
    }

    #[test]
    fn passthrough() {
        let mut f = PassthroughFramer::new();
        let mut out = Vec::new();
        f.push(b"abc", &mut out).unwrap();
        f.push(b"", &mut out).unwrap();
        f.flush(&mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0].start.is_clean() && out[0].header.is_none());
        assert_eq!(&out[0].data[..], b"abc");
    }

    #[test]
    fn mpeg_content_types() {
        for t in [
            "audio/mpeg",
            "Audio/MPEG; charset=x",
            "audio/aacp",
            "audio/x-aac",
        ] {
            assert!(is_mpeg_audio_type(t), "{t}");
        }
        for t in ["audio/ogg", "audio/mpegurl", "", "application/octet-stream"] {
            assert!(!is_mpeg_audio_type(t), "{t}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_input_is_byte_exact(
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            chunk in 1usize..500,
        ) {
            let out = feed(&mut MpegFramer::new(), &data, chunk);
            prop_assert_eq!(concat(&out), data);
        }

        #[test]
        fn frames_with_noise_are_byte_exact(
            parts in proptest::collection::vec((0u8..4, proptest::collection::vec(any::<u8>(), 0..20)), 0..12),
            chunk in 1usize..700,
        ) {
            let mut data = Vec::new();
            for (k, noise) in parts {
                match k {
                    0 => data.extend(mp3_frame(false)),
                    1 => data.extend(adts_frame(200)),
                    2 => data.extend(id3_tag(30)),
                    _ => data.extend(noise),
                }
            }
            let out = feed(&mut MpegFramer::new(), &data, chunk);
            prop_assert_eq!(concat(&out), data);
            for b in out.iter().filter(|b| b.start.is_clean()) {
                prop_assert!(parse_frame_header(&b.data).is_some());
            }
        }
    }
}
