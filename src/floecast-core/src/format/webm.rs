//! WebM/Matroska framing: everything before the first Cluster (EBML header, Segment head,
//! SeekHead, Info, Tracks, ...) is the stream header every listener needs. After it, a new
//! listener starts on a video keyframe: a block is cut where each keyframe's SimpleBlock (or
//! BlockGroup) begins, carrying a start copy that opens with a Cluster head of the same
//! timecode, so the listener's first Cluster begins with the keyframe. Without video, each
//! Cluster start is a start point. Elements are walked by ID and size only; only Tracks, a
//! Cluster's Timecode and the first bytes of each block are read.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::{Block, CodecInfo, FormatError, Framer, Start, StreamHeader};

/// Icecast's limit on the bytes before the first Cluster.
pub const MAX_HEADER_LEN: usize = 128 * 1024;
/// Longest block cut from inside a Cluster, so one huge read still yields queue-sized blocks.
const MAX_BLOCK_LEN: usize = 64 * 1024;

pub const ID_EBML: u32 = 0x1A45_DFA3;
pub const ID_SEGMENT: u32 = 0x1853_8067;
pub const ID_CLUSTER: u32 = 0x1F43_B675;
const ID_SEEKHEAD: u32 = 0x114D_9B74;
const ID_INFO: u32 = 0x1549_A966;
const ID_TRACKS: u32 = 0x1654_AE6B;
const ID_CUES: u32 = 0x1C53_BB6B;
const ID_TAGS: u32 = 0x1254_C367;
const ID_CHAPTERS: u32 = 0x1043_A770;
const ID_ATTACHMENTS: u32 = 0x1941_A469;
const ID_DOCTYPE: u32 = 0x4282;
const ID_TRACK_ENTRY: u32 = 0xAE;
const ID_CODEC_ID: u32 = 0x86;
const ID_VIDEO: u32 = 0xE0;
const ID_AUDIO: u32 = 0xE1;
const ID_PIXEL_WIDTH: u32 = 0xB0;
const ID_PIXEL_HEIGHT: u32 = 0xBA;
const ID_SAMPLING_FREQUENCY: u32 = 0xB5;
const ID_CHANNELS: u32 = 0x9F;
const ID_TRACK_NUMBER: u32 = 0xD7;
const ID_TRACK_TYPE: u32 = 0x83;
const ID_TIMECODE: u32 = 0xE7;
const ID_SIMPLE_BLOCK: u32 = 0xA3;
const ID_BLOCK_GROUP: u32 = 0xA0;
const ID_BLOCK: u32 = 0xA1;
const ID_REFERENCE_BLOCK: u32 = 0xFB;
/// TrackType of a video track.
const TRACK_TYPE_VIDEO: u64 = 1;
/// SimpleBlock flag of a keyframe.
const FLAG_KEYFRAME: u8 = 0x80;
/// Unknown size, as an 8-byte EBML size: a synthesized Cluster head runs until the next
/// Cluster, wherever the original one ended.
const UNKNOWN_SIZE: [u8; 8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];

/// IDs that end an unknown-size Cluster: the elements that live at segment level or above.
const SEGMENT_LEVEL: [u32; 10] = [
    ID_CLUSTER,
    ID_CUES,
    ID_TAGS,
    ID_SEEKHEAD,
    ID_INFO,
    ID_TRACKS,
    ID_CHAPTERS,
    ID_ATTACHMENTS,
    ID_EBML,
    ID_SEGMENT,
];

/// An element's ID (marker bits kept, as IDs are written), size (`None` = unknown) and the
/// length of the ID + size fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElementHeader {
    pub id: u32,
    pub size: Option<u64>,
    pub header_len: usize,
}

/// Parse the element header at the start of `b`. `Ok(None)`: need more bytes. `Err(())`:
/// not a valid ID or size.
#[allow(clippy::result_unit_err)]
pub fn parse_element_header(b: &[u8]) -> Result<Option<ElementHeader>, ()> {
    let Some(&first) = b.first() else {
        return Ok(None);
    };
    let id_len = first.leading_zeros() as usize + 1;
    if id_len > 4 {
        return Err(());
    }
    let Some(id_bytes) = b.get(..id_len) else {
        return Ok(None);
    };
    let id = id_bytes.iter().fold(0u32, |a, &x| (a << 8) | x as u32);
    let Some(&size_first) = b.get(id_len) else {
        return Ok(None);
    };
    let size_len = size_first.leading_zeros() as usize + 1;
    if size_len > 8 {
        return Err(());
    }
    let Some(size_bytes) = b.get(id_len..id_len + size_len) else {
        return Ok(None);
    };
    let mut value = (size_first & 0xFFu8.checked_shr(size_len as u32).unwrap_or(0)) as u64;
    for &x in &size_bytes[1..] {
        value = (value << 8) | x as u64;
    }
    // All value bits set means "unknown size".
    let unknown = value == (1u64 << (7 * size_len)) - 1;
    Ok(Some(ElementHeader {
        id,
        size: (!unknown).then_some(value),
        header_len: id_len + size_len,
    }))
}

/// Where the body walker returns after skipping an element's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Segment,
    /// Among a Cluster's children; `left`: content bytes still to come in a known-size one.
    Cluster {
        left: Option<u64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting the header: `walked` bytes of the buffer are whole elements (or the
    /// Segment head); `in_segment` once the Segment head has been passed.
    Header { walked: usize, in_segment: bool },
    /// At an element boundary at this level.
    At(Level),
    /// Passing through the rest of a known-size element's content.
    Skip { left: u64, then: Level },
}

/// Framer for WebM/Matroska live streams.
pub struct WebmFramer {
    buf: BytesMut,
    state: State,
    header: Option<Arc<StreamHeader>>,
    next_id: u64,
    info: CodecInfo,
    /// Track numbers of the video tracks (from Tracks).
    video_tracks: Vec<u64>,
    /// Timecode of the Cluster being walked, once its Timecode element has been read.
    cluster_timecode: Option<u64>,
    /// What the next emitted block is for a new listener.
    next_start: Start,
    /// The Cluster head that a start copy of the next emitted block begins with.
    next_start_head: Option<Bytes>,
    /// The stream was refused with this message; every later push repeats it.
    failed: Option<String>,
}

impl WebmFramer {
    pub fn new() -> Self {
        WebmFramer {
            buf: BytesMut::new(),
            state: State::Header {
                walked: 0,
                in_segment: false,
            },
            header: None,
            next_id: 1,
            info: CodecInfo::default(),
            video_tracks: Vec::new(),
            cluster_timecode: None,
            next_start: Start::No,
            next_start_head: None,
            failed: None,
        }
    }

    fn invalid(msg: &str) -> FormatError {
        FormatError::Invalid(format!("WebM: {msg}"))
    }

    /// Walk the header; returns whether it is complete (buffer now starts at a Cluster).
    fn walk_header(&mut self) -> Result<bool, FormatError> {
        let State::Header {
            mut walked,
            mut in_segment,
        } = self.state
        else {
            return Ok(true);
        };
        let done = loop {
            let el = match parse_element_header(&self.buf[walked..]) {
                Ok(Some(el)) => el,
                Ok(None) => break false,
                Err(()) => return Err(Self::invalid("bad element header")),
            };
            if walked == 0 && el.id != ID_EBML {
                return Err(Self::invalid("stream does not start with an EBML header"));
            }
            if in_segment && el.id == ID_CLUSTER {
                break true;
            }
            if el.id == ID_SEGMENT && !in_segment {
                // Step into the Segment: its children are walked one by one.
                in_segment = true;
                walked += el.header_len;
                continue;
            }
            let Some(size) = el.size else {
                return Err(Self::invalid("unknown-size element in header"));
            };
            let end = (walked + el.header_len) as u64 + size;
            if end > MAX_HEADER_LEN as u64 {
                return Err(Self::invalid("header larger than 128 KiB"));
            }
            let end = end as usize;
            if end > self.buf.len() {
                break false;
            }
            let content = &self.buf[walked + el.header_len..end];
            match el.id {
                ID_EBML => read_ebml_header(content, &mut self.info),
                ID_TRACKS => self.video_tracks = read_tracks(content, &mut self.info),
                _ => {}
            }
            walked = end;
        };
        // No cap check needed here: an incomplete element is bounded by the check above and
        // an incomplete element header by its 12 bytes.
        self.state = State::Header { walked, in_segment };
        if done {
            let header = Arc::new(StreamHeader {
                id: self.next_id,
                data: self.buf.split_to(walked).freeze(),
            });
            self.next_id += 1;
            self.header = Some(header);
            self.state = State::At(Level::Segment);
        }
        Ok(done)
    }

    fn emit(&mut self, len: usize, out: &mut Vec<Block>) {
        if len == 0 {
            return;
        }
        let data = self.buf.split_to(len).freeze();
        let start_data = self.next_start_head.take().map(|head| {
            let mut copy = BytesMut::with_capacity(head.len() + data.len());
            copy.extend_from_slice(&head);
            copy.extend_from_slice(&data);
            Arc::new(copy.freeze())
        });
        out.push(Block {
            data,
            start: self.next_start,
            header: self.header.clone(),
            start_data,
        });
        self.next_start = Start::No;
    }

    /// A video keyframe's block begins at `pos`: cut there (returns whether it did), and
    /// give the block that follows a start copy opening with a Cluster head of the current
    /// timecode.
    fn cut_at_keyframe(&mut self, pos: usize, out: &mut Vec<Block>) -> bool {
        let Some(timecode) = self.cluster_timecode else {
            // No Timecode before the block: nothing to build a Cluster head from.
            return false;
        };
        self.emit(pos, out);
        let tc = timecode.to_be_bytes();
        let skip = tc.iter().position(|&b| b != 0).unwrap_or(7);
        let mut head = Vec::with_capacity(4 + UNKNOWN_SIZE.len() + 2 + 8);
        head.extend_from_slice(&ID_CLUSTER.to_be_bytes());
        head.extend_from_slice(&UNKNOWN_SIZE);
        head.push(ID_TIMECODE as u8);
        head.push(0x80 | (8 - skip) as u8);
        head.extend_from_slice(&tc[skip..]);
        self.next_start = Start::Clean;
        self.next_start_head = Some(Bytes::from(head));
        true
    }

    /// Is the block element `el` at the start of `b` a video keyframe? `None`: more bytes are
    /// needed to tell.
    fn is_video_keyframe(&self, el: &ElementHeader, b: &[u8]) -> Option<bool> {
        let size = el.size.unwrap_or(0);
        match el.id {
            ID_SIMPLE_BLOCK => {
                let content = b.get(el.header_len..)?;
                let track = match block_track(content, size) {
                    BlockTrack::NeedMore => return None,
                    BlockTrack::Invalid => return Some(false),
                    BlockTrack::Track { number, len } => (number, len),
                };
                let flags = *content.get(track.1 + 2)?;
                Some(self.video_tracks.contains(&track.0) && flags & FLAG_KEYFRAME != 0)
            }
            ID_BLOCK_GROUP => {
                // The keyframe mark of a BlockGroup is the absence of a ReferenceBlock, which
                // may follow the frame data: only a group that fits in one block is read.
                if size > MAX_BLOCK_LEN as u64 {
                    return Some(false);
                }
                let end = el.header_len + size as usize;
                let content = b.get(el.header_len..end)?;
                let mut video = false;
                for (id, v) in children(content) {
                    match id {
                        ID_BLOCK => {
                            video = matches!(
                                block_track(v, v.len() as u64),
                                BlockTrack::Track { number, .. } if self.video_tracks.contains(&number)
                            );
                        }
                        ID_REFERENCE_BLOCK => return Some(false),
                        _ => {}
                    }
                }
                Some(video)
            }
            _ => Some(false),
        }
    }

    /// Walk data after the header, cutting a block at each Cluster start and each video
    /// keyframe, and emitting everything walked so far at the end.
    fn walk_body(&mut self, out: &mut Vec<Block>) -> Result<(), FormatError> {
        let mut pos = 0;
        loop {
            if pos >= MAX_BLOCK_LEN && !matches!(self.state, State::Header { .. }) {
                self.emit(pos, out);
                pos = 0;
            }
            match self.state {
                State::Header { .. } => {
                    self.emit(pos, out);
                    if !self.walk_header()? {
                        return Ok(());
                    }
                    pos = 0;
                }
                State::Skip { left, then } => {
                    let avail = (self.buf.len() - pos).min(MAX_BLOCK_LEN - pos) as u64;
                    if avail == 0 {
                        break;
                    }
                    let n = left.min(avail);
                    pos += n as usize;
                    self.state = if n == left {
                        State::At(then)
                    } else {
                        State::Skip {
                            left: left - n,
                            then,
                        }
                    };
                }
                State::At(Level::Cluster { left: Some(0) }) => {
                    self.state = State::At(Level::Segment);
                }
                State::At(Level::Cluster { left }) => {
                    let el = match parse_element_header(&self.buf[pos..]) {
                        Ok(Some(el)) => el,
                        Ok(None) => break,
                        Err(()) => return Err(Self::invalid("bad element header")),
                    };
                    if SEGMENT_LEVEL.contains(&el.id) {
                        // An unknown-size Cluster ends where a segment-level element begins.
                        self.state = State::At(Level::Segment);
                        continue;
                    }
                    let Some(size) = el.size else {
                        return Err(Self::invalid("unknown-size element"));
                    };
                    let total = el.header_len as u64 + size;
                    let rest = match left {
                        Some(l) if total > l => {
                            // A child overruns its Cluster: pass the rest through unread.
                            self.state = State::Skip {
                                left: l,
                                then: Level::Segment,
                            };
                            continue;
                        }
                        Some(l) => Some(l - total),
                        None => None,
                    };
                    match el.id {
                        ID_TIMECODE => {
                            let Some(v) = self.buf.get(pos + el.header_len..pos + total as usize)
                            else {
                                break;
                            };
                            self.cluster_timecode = read_uint(v);
                        }
                        ID_SIMPLE_BLOCK | ID_BLOCK_GROUP if !self.video_tracks.is_empty() => {
                            match self.is_video_keyframe(&el, &self.buf[pos..]) {
                                None => break,
                                Some(true) => {
                                    if self.cut_at_keyframe(pos, out) {
                                        pos = 0;
                                    }
                                }
                                Some(false) => {}
                            }
                        }
                        _ => {}
                    }
                    pos += el.header_len;
                    self.state = State::Skip {
                        left: size,
                        then: Level::Cluster { left: rest },
                    };
                }
                State::At(Level::Segment) => {
                    let el = match parse_element_header(&self.buf[pos..]) {
                        Ok(Some(el)) => el,
                        Ok(None) => break,
                        Err(()) => return Err(Self::invalid("bad element header")),
                    };
                    match (el.id, el.size) {
                        (ID_CLUSTER, size) => {
                            self.emit(pos, out);
                            // With video, a Cluster start is clean only if its first block
                            // happens to be a keyframe; that block gets a start of its own.
                            self.next_start = if self.video_tracks.is_empty() {
                                Start::Clean
                            } else {
                                Start::Boundary
                            };
                            self.cluster_timecode = None;
                            pos = el.header_len;
                            self.state = State::At(Level::Cluster { left: size });
                        }
                        (ID_EBML, _) => {
                            // A new segment (encoder restart): collect its header afresh.
                            self.emit(pos, out);
                            pos = 0;
                            self.info = CodecInfo::default();
                            self.video_tracks.clear();
                            self.state = State::Header {
                                walked: 0,
                                in_segment: false,
                            };
                        }
                        // A Segment after a known-size one: step into it.
                        (ID_SEGMENT, _) => pos += el.header_len,
                        (_, Some(left)) => {
                            pos += el.header_len;
                            self.state = State::Skip {
                                left,
                                then: Level::Segment,
                            };
                        }
                        (_, None) => return Err(Self::invalid("unknown-size element")),
                    }
                }
            }
        }
        self.emit(pos, out);
        Ok(())
    }
}

impl Default for WebmFramer {
    fn default() -> Self {
        Self::new()
    }
}

/// Iterate the known-size child elements of `data`, stopping at anything malformed.
fn children(mut data: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    std::iter::from_fn(move || {
        let el = parse_element_header(data).ok()??;
        let end = el.header_len.checked_add(usize::try_from(el.size?).ok()?)?;
        let content = data.get(el.header_len..end)?;
        data = &data[end..];
        Some((el.id, content))
    })
}

/// The track number at the start of a Block or SimpleBlock's content (`size` bytes long).
enum BlockTrack {
    Track { number: u64, len: usize },
    NeedMore,
    Invalid,
}

fn block_track(content: &[u8], size: u64) -> BlockTrack {
    let Some(&first) = content.first() else {
        return if size == 0 {
            BlockTrack::Invalid
        } else {
            BlockTrack::NeedMore
        };
    };
    let len = first.leading_zeros() as usize + 1;
    // Track number, then a 2-byte relative timecode and the flags byte.
    if len > 8 || (len + 3) as u64 > size {
        return BlockTrack::Invalid;
    }
    let Some(bytes) = content.get(..len + 3) else {
        return BlockTrack::NeedMore;
    };
    let mut number = (first & (0xFFu8 >> len)) as u64;
    for &b in &bytes[1..len] {
        number = (number << 8) | b as u64;
    }
    BlockTrack::Track { number, len }
}

fn read_uint(b: &[u8]) -> Option<u64> {
    (b.len() <= 8).then(|| b.iter().fold(0u64, |a, &x| (a << 8) | x as u64))
}

fn read_float(b: &[u8]) -> Option<f64> {
    match b.len() {
        4 => Some(f32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64),
        8 => Some(f64::from_be_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ])),
        _ => None,
    }
}

fn read_ebml_header(content: &[u8], info: &mut CodecInfo) {
    let doctype = children(content)
        .find(|(id, _)| *id == ID_DOCTYPE)
        .map(|(_, v)| v);
    info.codec = Some(
        match doctype {
            Some(b"matroska") => "Matroska",
            _ => "WebM",
        }
        .to_string(),
    );
}

/// Read the stats from Tracks; returns the track numbers of its video tracks.
fn read_tracks(content: &[u8], info: &mut CodecInfo) -> Vec<u64> {
    let mut names = Vec::new();
    let mut video_tracks = Vec::new();
    for (_, entry) in children(content).filter(|(id, _)| *id == ID_TRACK_ENTRY) {
        let mut number = None;
        let mut is_video = false;
        for (id, v) in children(entry) {
            match id {
                ID_TRACK_NUMBER => number = read_uint(v),
                ID_TRACK_TYPE => is_video |= read_uint(v) == Some(TRACK_TYPE_VIDEO),
                ID_CODEC_ID => {
                    let codec = String::from_utf8_lossy(v);
                    is_video |= codec.starts_with("V_");
                    names.push(codec_name(codec.trim_end_matches('\0')));
                }
                ID_VIDEO if info.video_width.is_none() => {
                    for (id, v) in children(v) {
                        match id {
                            ID_PIXEL_WIDTH => info.video_width = read_uint(v).map(|x| x as u32),
                            ID_PIXEL_HEIGHT => info.video_height = read_uint(v).map(|x| x as u32),
                            _ => {}
                        }
                    }
                }
                ID_AUDIO if info.samplerate.is_none() => {
                    for (id, v) in children(v) {
                        match id {
                            ID_SAMPLING_FREQUENCY => {
                                info.samplerate = read_float(v).map(|f| f as u32)
                            }
                            ID_CHANNELS => info.channels = read_uint(v).map(|x| x as u32),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if let (true, Some(n)) = (is_video, number) {
            video_tracks.push(n);
        }
    }
    if !names.is_empty() {
        info.subtype = Some(names.join("/"));
    }
    video_tracks
}

/// A display name for a Matroska codec ID ("V_VP8" → "VP8", "A_VORBIS" → "Vorbis").
fn codec_name(id: &str) -> String {
    let bare = id
        .strip_prefix("V_")
        .or_else(|| id.strip_prefix("A_"))
        .or_else(|| id.strip_prefix("S_"))
        .unwrap_or(id);
    match bare {
        "VORBIS" => "Vorbis",
        "OPUS" => "Opus",
        "MPEG4/ISO/AVC" => "H.264",
        "MPEGH/ISO/HEVC" => "H.265",
        "MPEG/L3" => "MP3",
        other if other.starts_with("AAC") => "AAC",
        other => other,
    }
    .to_string()
}

impl Framer for WebmFramer {
    fn push(&mut self, input: &[u8], out: &mut Vec<Block>) -> Result<(), FormatError> {
        if let Some(msg) = &self.failed {
            return Err(FormatError::Invalid(msg.clone()));
        }
        self.buf.extend_from_slice(input);
        let result = self.walk_body(out);
        if let Err(e) = &result {
            self.failed = Some(e.to_string());
            self.buf.clear();
        }
        result
    }

    fn flush(&mut self, out: &mut Vec<Block>) {
        // Past the header, trailing bytes (a cut-off element) still belong to the stream.
        if !matches!(self.state, State::Header { .. }) && self.failed.is_none() {
            let len = self.buf.len();
            self.emit(len, out);
        }
        self.buf.clear();
    }

    fn info(&self) -> &CodecInfo {
        &self.info
    }

    fn header(&self) -> Option<Arc<StreamHeader>> {
        self.header.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const UNKNOWN: &[u8] = &[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];

    fn id_bytes(id: u32) -> Vec<u8> {
        let b = id.to_be_bytes();
        let skip = b.iter().position(|&x| x != 0).unwrap_or(3);
        b[skip..].to_vec()
    }

    fn size_bytes(n: usize) -> Vec<u8> {
        if n < 0x7F {
            vec![0x80 | n as u8]
        } else if n < 0x3FFF {
            vec![0x40 | (n >> 8) as u8, n as u8]
        } else {
            let mut v = vec![0x01];
            v.extend_from_slice(&(n as u64).to_be_bytes()[1..]);
            v
        }
    }

    fn el(id: u32, content: &[u8]) -> Vec<u8> {
        [id_bytes(id), size_bytes(content.len()), content.to_vec()].concat()
    }

    fn el_unknown(id: u32, content: &[u8]) -> Vec<u8> {
        [id_bytes(id), UNKNOWN.to_vec(), content.to_vec()].concat()
    }

    fn ebml_header() -> Vec<u8> {
        el(
            ID_EBML,
            &[el(0x4286, &[1]), el(ID_DOCTYPE, b"webm")].concat(),
        )
    }

    fn tracks() -> Vec<u8> {
        let video = el(
            ID_TRACK_ENTRY,
            &[
                el(0xD7, &[1]),
                el(ID_CODEC_ID, b"V_VP8"),
                el(
                    ID_VIDEO,
                    &[
                        el(ID_PIXEL_WIDTH, &[0x02, 0x80]),
                        el(ID_PIXEL_HEIGHT, &[0x01, 0xE0]),
                    ]
                    .concat(),
                ),
            ]
            .concat(),
        );
        let audio = el(
            ID_TRACK_ENTRY,
            &[
                el(0xD7, &[2]),
                el(ID_CODEC_ID, b"A_VORBIS"),
                el(
                    ID_AUDIO,
                    &[
                        el(ID_SAMPLING_FREQUENCY, &48000f32.to_be_bytes()),
                        el(ID_CHANNELS, &[2]),
                    ]
                    .concat(),
                ),
            ]
            .concat(),
        );
        el(ID_TRACKS, &[video, audio].concat())
    }

    /// EBML header + Segment head + Info + Tracks: everything before the first Cluster.
    fn head(unknown_segment: bool) -> Vec<u8> {
        let children = [el(ID_INFO, &el(0x2AD7B1, &[0x0F, 0x42, 0x40])), tracks()].concat();
        let seg = if unknown_segment {
            [id_bytes(ID_SEGMENT), UNKNOWN.to_vec()].concat()
        } else {
            [id_bytes(ID_SEGMENT), size_bytes(100_000)].concat()
        };
        [ebml_header(), seg, children].concat()
    }

    /// A SimpleBlock of `track` (1 is video, 2 audio in [`tracks`]) with `len` payload bytes.
    fn simple_block(track: u8, key: bool, fill: u8, len: usize) -> Vec<u8> {
        let mut content = vec![0x80 | track, 0, 0, if key { FLAG_KEYFRAME } else { 0 }];
        content.resize(4 + len, fill);
        el(ID_SIMPLE_BLOCK, &content)
    }

    /// Timecode `tc`, `blocks` audio SimpleBlocks of `block_len` bytes, an audio BlockGroup.
    fn cluster_body(tc: u8, blocks: usize, block_len: usize) -> Vec<u8> {
        let mut c = el(ID_TIMECODE, &[tc]);
        for i in 0..blocks {
            c.extend(simple_block(2, true, i as u8, block_len));
        }
        c.extend(el(ID_BLOCK_GROUP, &el(ID_BLOCK, &[0x82, 0, 0, 0, 1, 2, 3])));
        c
    }

    /// The Cluster head a start copy opens with.
    fn synthesized_head(tc: u8) -> Vec<u8> {
        [
            id_bytes(ID_CLUSTER),
            UNKNOWN.to_vec(),
            el(ID_TIMECODE, &[tc]),
        ]
        .concat()
    }

    /// What a listener starting on block `from` receives: the header, the start copy (or the
    /// block), then every later block.
    fn listener_view(blocks: &[Block], from: usize) -> Vec<u8> {
        let first = &blocks[from];
        let mut v = first.header.as_ref().unwrap().data.to_vec();
        v.extend_from_slice(first.start_data.as_deref().unwrap_or(&first.data));
        for b in &blocks[from + 1..] {
            v.extend_from_slice(&b.data);
        }
        v
    }

    fn run(input: &[u8], chunk: usize) -> (WebmFramer, Vec<Block>) {
        let mut f = WebmFramer::new();
        let mut out = Vec::new();
        for c in input.chunks(chunk.max(1)) {
            f.push(c, &mut out).unwrap();
        }
        f.flush(&mut out);
        (f, out)
    }

    /// What a listener joining at the start receives: each header when it changes, then
    /// the blocks.
    fn reassemble(blocks: &[Block]) -> Vec<u8> {
        let mut v = Vec::new();
        let mut last = None;
        for b in blocks {
            let h = b.header.as_ref().unwrap();
            if last != Some(h.id) {
                v.extend_from_slice(&h.data);
                last = Some(h.id);
            }
            v.extend_from_slice(&b.data);
        }
        v
    }

    /// Where blocks that are start points or boundaries begin in the stream after the header.
    fn start_offsets(blocks: &[Block]) -> Vec<usize> {
        let mut pos = 0;
        let mut v = Vec::new();
        for b in blocks {
            if b.start != Start::No {
                v.push(pos);
            }
            pos += b.data.len();
        }
        v
    }

    #[test]
    fn element_headers() {
        let h = parse_element_header(&[0x1A, 0x45, 0xDF, 0xA3, 0x9F])
            .unwrap()
            .unwrap();
        assert_eq!((h.id, h.size, h.header_len), (ID_EBML, Some(31), 5));
        let h = parse_element_header(&[0x1F, 0x43, 0xB6, 0x75, 0xFF])
            .unwrap()
            .unwrap();
        assert_eq!(h.size, None);
        let h = parse_element_header(&[&id_bytes(ID_SEGMENT)[..], UNKNOWN].concat());
        assert_eq!(h.unwrap().unwrap().size, None);
        assert_eq!(parse_element_header(&[0x1A, 0x45]), Ok(None));
        assert_eq!(parse_element_header(&[0x00]), Err(()));
        assert_eq!(
            parse_element_header(&[0x08, 0x00, 0x00, 0x00, 0x00]),
            Err(())
        );
        assert_eq!(parse_element_header(&[0xA3, 0x00]), Err(()));
    }

    #[test]
    fn header_then_known_size_clusters() {
        let head = head(false);
        let c1 = el(ID_CLUSTER, &cluster_body(0, 3, 50));
        let c2 = el(ID_CLUSTER, &cluster_body(1, 2, 200));
        let input = [head.clone(), c1.clone(), c2.clone()].concat();
        let (f, out) = run(&input, input.len());
        let h = f.header().unwrap();
        assert_eq!((h.id, &h.data[..]), (1, &head[..]));
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].data, c1);
        assert_eq!(out[1].data, c2);
        // With video, a Cluster start is only a boundary.
        assert!(out.iter().all(|b| b.start == Start::Boundary));
        assert_eq!(reassemble(&out), input);
        let info = f.info();
        assert_eq!(info.codec.as_deref(), Some("WebM"));
        assert_eq!(info.subtype.as_deref(), Some("VP8/Vorbis"));
        assert_eq!(
            (info.video_width, info.video_height),
            (Some(640), Some(480))
        );
        assert_eq!((info.samplerate, info.channels), (Some(48000), Some(2)));
    }

    #[test]
    fn unknown_size_segment_and_clusters() {
        let head = head(true);
        let c1 = el_unknown(ID_CLUSTER, &cluster_body(0, 3, 50));
        let cues = el(ID_CUES, &[0xBB, 0x80]);
        let c2 = el_unknown(ID_CLUSTER, &cluster_body(1, 2, 300));
        let input = [head.clone(), c1.clone(), cues.clone(), c2.clone()].concat();
        let (f, out) = run(&input, input.len());
        assert_eq!(&f.header().unwrap().data[..], &head[..]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].data, [c1, cues].concat());
        assert_eq!(out[1].data, c2);
        // With video, a Cluster start is only a boundary.
        assert!(out.iter().all(|b| b.start == Start::Boundary));
    }

    #[test]
    fn large_cluster_is_emitted_as_it_arrives() {
        let head = head(true);
        let c1 = el_unknown(ID_CLUSTER, &cluster_body(0, 40, 4000));
        let input = [head.clone(), c1, el_unknown(ID_CLUSTER, &[])].concat();
        let (_, out) = run(&input, 16 * 1024);
        assert!(out.len() > 5);
        assert_eq!(out[0].start, Start::Boundary);
        assert!(out.iter().all(|b| b.data.len() <= 16 * 1024 + 12));
        assert_eq!(reassemble(&out), input);
        // One huge push is still cut into bounded blocks.
        let (_, out) = run(&input, input.len());
        assert!(out.iter().all(|b| b.data.len() <= MAX_BLOCK_LEN + 12));
        assert_eq!(
            start_offsets(&out),
            [0, input.len() - head.len() - 4 - UNKNOWN.len()]
        );
        assert_eq!(reassemble(&out), input);
    }

    #[test]
    fn byte_at_a_time_equals_one_push() {
        let input = [
            head(true),
            el_unknown(ID_CLUSTER, &cluster_body(0, 3, 50)),
            el(ID_CLUSTER, &cluster_body(1, 2, 20)),
            el(ID_TAGS, &[0x73, 0x73, 0x80]),
            el_unknown(ID_CLUSTER, &cluster_body(2, 1, 10)),
        ]
        .concat();
        let (fa, a) = run(&input, input.len());
        let (fb, b) = run(&input, 1);
        assert_eq!(reassemble(&a), input);
        assert_eq!(reassemble(&b), input);
        assert_eq!(start_offsets(&a), start_offsets(&b));
        assert_eq!(start_offsets(&a).len(), 3);
        assert_eq!(fa.info(), fb.info());
    }

    #[test]
    fn new_ebml_header_starts_new_segment() {
        let first = [head(true), el_unknown(ID_CLUSTER, &cluster_body(0, 2, 10))].concat();
        let second = [head(true), el(ID_CLUSTER, &cluster_body(0, 2, 10))].concat();
        let input = [first.clone(), second.clone()].concat();
        for chunk in [1, 7, input.len()] {
            let (f, out) = run(&input, chunk);
            assert_eq!(f.header().unwrap().id, 2);
            assert_eq!(reassemble(&out), input);
            let ids: Vec<u64> = out
                .iter()
                .filter(|b| b.start != Start::No)
                .map(|b| b.header.as_ref().unwrap().id)
                .collect();
            assert_eq!(ids, [1, 2]);
        }
    }

    /// Head of an audio-only stream (one Vorbis track).
    fn audio_head() -> Vec<u8> {
        let audio = el(
            ID_TRACK_ENTRY,
            &[el(0xD7, &[1]), el(ID_CODEC_ID, b"A_VORBIS")].concat(),
        );
        [
            ebml_header(),
            id_bytes(ID_SEGMENT),
            UNKNOWN.to_vec(),
            el(ID_TRACKS, &audio),
        ]
        .concat()
    }

    #[test]
    fn audio_only_clusters_are_clean_starts() {
        let head = audio_head();
        let c1 = el(ID_CLUSTER, &cluster_body(0, 3, 50));
        let c2 = el_unknown(ID_CLUSTER, &cluster_body(1, 2, 20));
        let input = [head, c1.clone(), c2.clone()].concat();
        let (f, out) = run(&input, 7);
        assert_eq!(f.info().subtype.as_deref(), Some("Vorbis"));
        assert_eq!(reassemble(&out), input);
        let starts: Vec<usize> = out
            .iter()
            .scan(0, |pos, b| {
                let at = *pos;
                *pos += b.data.len();
                Some((at, b.start))
            })
            .filter(|(_, s)| *s == Start::Clean)
            .map(|(at, _)| at)
            .collect();
        assert_eq!(starts, [0, c1.len()]);
        assert!(out.iter().all(|b| b.start_data.is_none()));
    }

    #[test]
    fn video_keyframe_at_cluster_start_is_a_start() {
        let key = simple_block(1, true, 0xAA, 300);
        let body = [
            el(ID_TIMECODE, &[0x12, 0x34]),
            key.clone(),
            simple_block(2, true, 1, 30),
            simple_block(1, false, 2, 40),
        ]
        .concat();
        let cluster = el(ID_CLUSTER, &body);
        let input = [head(true), cluster.clone()].concat();
        for chunk in [1, 5, input.len()] {
            let (_, out) = run(&input, chunk);
            assert_eq!(reassemble(&out), input);
            let clean: Vec<usize> = (0..out.len())
                .filter(|&i| out[i].start.is_clean())
                .collect();
            assert_eq!(clean.len(), 1, "chunk {chunk}");
            let view = listener_view(&out, clean[0]);
            // The header, a Cluster head with the same timecode, then the keyframe on.
            let mut want = head(true);
            want.extend([id_bytes(ID_CLUSTER), UNKNOWN.to_vec()].concat());
            want.extend(el(ID_TIMECODE, &[0x12, 0x34]));
            want.extend(&body[4..]);
            assert_eq!(view, want, "chunk {chunk}");
            // Blocks before the keyframe: the Cluster start is a boundary.
            assert_eq!(out[0].start, Start::Boundary);
        }
    }

    #[test]
    fn video_keyframe_inside_a_cluster_is_a_start() {
        // As ffmpeg's live WebM: Clusters cut by time, keyframes anywhere inside.
        let before = [
            el(ID_TIMECODE, &[7]),
            simple_block(2, true, 1, 30),
            simple_block(1, false, 2, 40),
            simple_block(2, true, 3, 30),
        ]
        .concat();
        let from_key = [
            simple_block(1, true, 0xAA, 5000),
            simple_block(2, true, 4, 30),
            simple_block(1, false, 5, 40),
        ]
        .concat();
        let c1 = el_unknown(ID_CLUSTER, &[before, from_key.clone()].concat());
        let c2 = el_unknown(ID_CLUSTER, &cluster_body(9, 2, 10));
        let input = [head(true), c1, c2.clone()].concat();
        for chunk in [1, 3, 100, input.len()] {
            let (_, out) = run(&input, chunk);
            assert_eq!(reassemble(&out), input);
            let clean: Vec<usize> = (0..out.len())
                .filter(|&i| out[i].start.is_clean())
                .collect();
            assert_eq!(clean.len(), 1, "chunk {chunk}");
            let want = [
                head(true),
                synthesized_head(7),
                from_key.clone(),
                c2.clone(),
            ]
            .concat();
            assert_eq!(listener_view(&out, clean[0]), want, "chunk {chunk}");
        }
    }

    #[test]
    fn block_groups_are_keyframes_without_a_reference_block() {
        let group = |track: u8, reference: bool| {
            let mut c = el(ID_BLOCK, &[0x80 | track, 0, 0, 0, 9, 9, 9]);
            if reference {
                c.extend(el(ID_REFERENCE_BLOCK, &[0xFF]));
            }
            el(ID_BLOCK_GROUP, &c)
        };
        let body = [
            el(ID_TIMECODE, &[1]),
            group(2, false), // audio: never a video start
            group(1, true),  // video inter frame
            group(1, false), // video keyframe
        ]
        .concat();
        let input = [head(true), el(ID_CLUSTER, &body)].concat();
        for chunk in [1, input.len()] {
            let (_, out) = run(&input, chunk);
            let clean: Vec<usize> = (0..out.len())
                .filter(|&i| out[i].start.is_clean())
                .collect();
            assert_eq!(clean.len(), 1);
            let want = [head(true), synthesized_head(1), group(1, false)].concat();
            assert_eq!(listener_view(&out, clean[0]), want);
        }
    }

    #[test]
    fn video_without_keyframes_has_only_boundaries() {
        let body = [el(ID_TIMECODE, &[1]), simple_block(1, false, 0, 100)].concat();
        let input = [head(false), el(ID_CLUSTER, &body), el(ID_CLUSTER, &body)].concat();
        let (_, out) = run(&input, 10);
        assert!(out.iter().all(|b| !b.start.is_start()));
        assert_eq!(start_offsets(&out).len(), 2);
    }

    #[test]
    fn refused_streams() {
        let mut f = WebmFramer::new();
        let mut out = Vec::new();
        assert!(matches!(
            f.push(b"not webm at all", &mut out),
            Err(FormatError::Invalid(_))
        ));
        assert!(f.push(&head(true), &mut out).is_err());

        // A header element larger than 128 KiB.
        let big = [
            ebml_header(),
            id_bytes(ID_SEGMENT),
            UNKNOWN.to_vec(),
            el(0xEC, &vec![0; MAX_HEADER_LEN]),
        ]
        .concat();
        let mut f = WebmFramer::new();
        let r = f.push(&big[..MAX_HEADER_LEN / 2], &mut out);
        assert!(matches!(r, Err(FormatError::Invalid(_))));
        assert!(out.is_empty());
    }

    proptest! {
        #[test]
        fn garbage_never_panics(
            data in proptest::collection::vec(any::<u8>(), 0..2000),
            prefix in any::<bool>(),
            chunk in 1usize..300,
        ) {
            let mut input = if prefix { head(true) } else { Vec::new() };
            input.extend(data);
            let mut f = WebmFramer::new();
            let mut out = Vec::new();
            for c in input.chunks(chunk) {
                let _ = f.push(c, &mut out);
            }
            f.flush(&mut out);
        }

        #[test]
        fn valid_stream_any_split(
            clusters in proptest::collection::vec((any::<bool>(), 0usize..5, 0usize..300), 1..6),
            chunk in 1usize..500,
        ) {
            let mut input = head(true);
            for (i, (known, blocks, len)) in clusters.iter().enumerate() {
                let body = cluster_body(i as u8, *blocks, *len);
                input.extend(if *known { el(ID_CLUSTER, &body) } else { el_unknown(ID_CLUSTER, &body) });
            }
            let (_, out) = run(&input, chunk);
            prop_assert_eq!(reassemble(&out), input);
            prop_assert_eq!(start_offsets(&out).len(), clusters.len());
        }
    }
}
