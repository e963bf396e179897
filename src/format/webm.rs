//! WebM/Matroska framing: everything before the first Cluster (EBML header, Segment head,
//! SeekHead, Info, Tracks, ...) is the stream header every listener needs; after it, each
//! Cluster start is a start point. Elements are walked by ID and size only, never decoded,
//! except Tracks, which is read for the stats.

use std::sync::Arc;

use bytes::BytesMut;

use super::{Block, CodecInfo, FormatError, Framer, StreamHeader};

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
    Cluster,
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
    /// The next emitted block begins at a Cluster start.
    next_is_start: bool,
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
            next_is_start: false,
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
                ID_TRACKS => read_tracks(content, &mut self.info),
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
        out.push(Block {
            data: self.buf.split_to(len).freeze(),
            start: self.next_is_start,
            header: self.header.clone(),
        });
        self.next_is_start = false;
    }

    /// Walk data after the header, cutting a block at each Cluster start and emitting
    /// everything walked so far at the end.
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
                State::At(level) => {
                    let el = match parse_element_header(&self.buf[pos..]) {
                        Ok(Some(el)) => el,
                        Ok(None) => break,
                        Err(()) => return Err(Self::invalid("bad element header")),
                    };
                    if level == Level::Cluster && SEGMENT_LEVEL.contains(&el.id) {
                        // An unknown-size Cluster ends where a segment-level element begins.
                        self.state = State::At(Level::Segment);
                        continue;
                    }
                    match (el.id, el.size) {
                        (ID_CLUSTER, size) => {
                            self.emit(pos, out);
                            self.next_is_start = true;
                            pos = el.header_len;
                            self.state = match size {
                                Some(left) => State::Skip {
                                    left,
                                    then: Level::Segment,
                                },
                                None => State::At(Level::Cluster),
                            };
                        }
                        (ID_EBML, _) => {
                            // A new segment (encoder restart): collect its header afresh.
                            self.emit(pos, out);
                            pos = 0;
                            self.info = CodecInfo::default();
                            self.state = State::Header {
                                walked: 0,
                                in_segment: false,
                            };
                        }
                        // A Segment after a known-size one: step into it.
                        (ID_SEGMENT, _) => pos += el.header_len,
                        (_, Some(left)) => {
                            pos += el.header_len;
                            self.state = State::Skip { left, then: level };
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

fn read_tracks(content: &[u8], info: &mut CodecInfo) {
    let mut names = Vec::new();
    for (_, entry) in children(content).filter(|(id, _)| *id == ID_TRACK_ENTRY) {
        for (id, v) in children(entry) {
            match id {
                ID_CODEC_ID => {
                    let codec = String::from_utf8_lossy(v);
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
    }
    if !names.is_empty() {
        info.subtype = Some(names.join("/"));
    }
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

    fn cluster_body(tc: u8, blocks: usize, block_len: usize) -> Vec<u8> {
        let mut c = el(0xE7, &[tc]);
        for i in 0..blocks {
            c.extend(el(0xA3, &vec![i as u8; block_len]));
        }
        c.extend(el(0xA0, &el(0xA1, &[1, 2, 3])));
        c
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

    fn start_offsets(blocks: &[Block]) -> Vec<usize> {
        let mut pos = 0;
        let mut v = Vec::new();
        for b in blocks {
            if b.start {
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
        assert!(out.iter().all(|b| b.start));
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
        assert!(out.iter().all(|b| b.start));
    }

    #[test]
    fn large_cluster_is_emitted_as_it_arrives() {
        let head = head(true);
        let c1 = el_unknown(ID_CLUSTER, &cluster_body(0, 40, 4000));
        let input = [head.clone(), c1, el_unknown(ID_CLUSTER, &[])].concat();
        let (_, out) = run(&input, 16 * 1024);
        assert!(out.len() > 5);
        assert!(out[0].start);
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
                .filter(|b| b.start)
                .map(|b| b.header.as_ref().unwrap().id)
                .collect();
            assert_eq!(ids, [1, 2]);
        }
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
