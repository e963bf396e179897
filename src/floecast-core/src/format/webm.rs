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
    /// After a gap in the stream: looking for the next Cluster (or a new EBML header), where
    /// element sizes can be trusted again.
    Seek,
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
            self.finish_header(walked);
        }
        Ok(done)
    }

    /// The first `walked` buffered bytes are the whole header: publish it.
    fn finish_header(&mut self, walked: usize) {
        let header = Arc::new(StreamHeader {
            id: self.next_id,
            data: self.buf.split_to(walked).freeze(),
        });
        self.next_id += 1;
        self.header = Some(header);
        self.state = State::At(Level::Segment);
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
                State::Seek => {
                    let found = self.buf[pos..].windows(4).position(|w| {
                        let id = u32::from_be_bytes([w[0], w[1], w[2], w[3]]);
                        id == ID_EBML || (id == ID_CLUSTER && self.header.is_some())
                    });
                    // Bytes before the boundary cannot be walked: they are dropped. Keep a
                    // tail that may be the start of an ID.
                    let skip = found.unwrap_or(self.buf.len().saturating_sub(pos + 3));
                    self.emit(pos, out);
                    let _ = self.buf.split_to(skip);
                    pos = 0;
                    match found {
                        None => break,
                        Some(_) if self.buf.starts_with(&ID_EBML.to_be_bytes()) => {
                            self.state = State::Header {
                                walked: 0,
                                in_segment: false,
                            };
                        }
                        Some(_) => self.state = State::At(Level::Segment),
                    }
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

    fn discontinuity(&mut self) {
        // Whole header elements inside the Segment are the header (a P2PSP peer is handed
        // exactly that, with no Cluster after it to end it); a header cut short before its
        // Segment is lost, and the next EBML header begins a new one. Anything else buffered
        // is the start of an element the gap cut short.
        if let State::Header {
            walked,
            in_segment: true,
        } = self.state
            && walked > 0
            && self.failed.is_none()
        {
            self.finish_header(walked);
        }
        self.buf.clear();
        self.next_start_head = None;
        self.state = State::Seek;
    }
}

#[cfg(test)]
mod tests;
