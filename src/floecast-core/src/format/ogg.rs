//! Ogg framing: splits a source's Ogg bitstream into pages, takes the codec header pages of
//! each chain out of the data flow into a [`StreamHeader`], and marks the pages a new listener
//! may start on: every page, or, when the chain carries Theora video, the pages where a
//! keyframe begins (with a copy of the page cut down to start at the keyframe when it is not
//! the page's first packet).
//!
//! An admin title update on a single-stream Vorbis or Opus chain starts a new chain in the
//! framer, as icecast2 does for Vorbis: the same codec headers under a new serial with a
//! rebuilt comment header, then the source's pages re-serialised ([`OggFramer::retitle`]).
//!
//! The page parser ([`parse_page`], [`PageHeader`], [`packet_pieces`]) is public so other
//! sans-IO consumers (the P2PSP chunker) can reuse it.

use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::{Block, CodecInfo, FormatError, Framer, Start, StreamHeader};

/// Fixed part of a page header, before the lacing table.
pub const PAGE_HEADER_LEN: usize = 27;
/// 27 + 255 lacing values + 255 × 255 body bytes.
pub const MAX_PAGE_SIZE: usize = PAGE_HEADER_LEN + 255 + 255 * 255;
/// Capture pattern every page begins with.
pub const CAPTURE: &[u8; 4] = b"OggS";

/// icecast's limit on logical streams per chain.
const MAX_STREAMS: usize = 10;
/// Header pages of one chain. Vorbis comments may carry cover art, so this is generous.
const MAX_HEADER_BYTES: usize = 4 * 1024 * 1024;
/// Only a prefix of each header packet is kept for parsing; the page bytes are kept whole.
const MAX_HEADER_PACKET_PREFIX: usize = 64 * 1024;
/// Data pages held back while another stream's headers are incomplete.
const MAX_PENDING_BYTES: usize = 256 * 1024;
/// Upper bound on header packets a stream may announce (Speex extra headers, Kate count).
const MAX_HEADER_PACKETS: u32 = 64;

const FLAG_CONTINUED: u8 = 0x01;
const FLAG_BOS: u8 = 0x02;
const FLAG_EOS: u8 = 0x04;

/// The parsed fixed header of one Ogg page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageHeader {
    pub header_type: u8,
    /// -1 when no packet ends on this page.
    pub granule_position: i64,
    pub serial: u32,
    pub sequence: u32,
    pub checksum: u32,
    pub segments: u8,
    /// 27 + number of lacing values.
    pub header_len: usize,
    /// Sum of the lacing values.
    pub body_len: usize,
}

impl PageHeader {
    /// The first packet piece continues a packet from the previous page.
    pub fn is_continued(&self) -> bool {
        self.header_type & FLAG_CONTINUED != 0
    }
    pub fn is_bos(&self) -> bool {
        self.header_type & FLAG_BOS != 0
    }
    pub fn is_eos(&self) -> bool {
        self.header_type & FLAG_EOS != 0
    }
    pub fn total_len(&self) -> usize {
        self.header_len + self.body_len
    }
}

/// Why bytes at the front of a buffer are not a valid page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("no OggS capture pattern")]
    NoCapture,
    #[error("unsupported Ogg version {0}")]
    BadVersion(u8),
    #[error("Ogg page CRC mismatch")]
    BadCrc,
}

/// Parse the page at the start of `buf`. `Ok(None)`: the bytes so far are a plausible page
/// prefix, more are needed. On success returns the header and the page's total length
/// (the CRC has been verified).
pub fn parse_page(buf: &[u8]) -> Result<Option<(PageHeader, usize)>, PageError> {
    let cap = buf.len().min(4);
    if buf[..cap] != CAPTURE[..cap] {
        return Err(PageError::NoCapture);
    }
    if buf.len() < PAGE_HEADER_LEN {
        if buf.len() > 4 && buf[4] != 0 {
            return Err(PageError::BadVersion(buf[4]));
        }
        return Ok(None);
    }
    if buf[4] != 0 {
        return Err(PageError::BadVersion(buf[4]));
    }
    let segments = buf[26];
    let header_len = PAGE_HEADER_LEN + segments as usize;
    if buf.len() < header_len {
        return Ok(None);
    }
    let body_len: usize = buf[PAGE_HEADER_LEN..header_len]
        .iter()
        .map(|&v| v as usize)
        .sum();
    let total = header_len + body_len;
    if buf.len() < total {
        return Ok(None);
    }
    let hdr = PageHeader {
        header_type: buf[5],
        granule_position: i64::from_le_bytes(le_array(&buf[6..14])),
        serial: u32::from_le_bytes(le_array(&buf[14..18])),
        sequence: u32::from_le_bytes(le_array(&buf[18..22])),
        checksum: u32::from_le_bytes(le_array(&buf[22..26])),
        segments,
        header_len,
        body_len,
    };
    if page_crc(&buf[..total]) != hdr.checksum {
        return Err(PageError::BadCrc);
    }
    Ok(Some((hdr, total)))
}

fn le_array<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[..N]);
    a
}

/// Ogg's CRC32: polynomial 0x04C11DB7, not reflected, initial value 0, no final xor.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut r = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            r = if r & 0x8000_0000 != 0 {
                (r << 1) ^ 0x04C1_1DB7
            } else {
                r << 1
            };
            bit += 1;
        }
        table[i] = r;
        i += 1;
    }
    table
};

/// Continue an Ogg CRC over `data`.
pub fn crc32_update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = (crc << 8) ^ CRC_TABLE[(((crc >> 24) as u8) ^ b) as usize];
    }
    crc
}

/// CRC of a whole page as stored in its header, i.e. computed with the CRC field zeroed.
/// `page` must be at least 27 bytes; shorter input yields the CRC of what there is.
pub fn page_crc(page: &[u8]) -> u32 {
    if page.len() < PAGE_HEADER_LEN {
        return crc32_update(0, page);
    }
    let crc = crc32_update(0, &page[..22]);
    let crc = crc32_update(crc, &[0; 4]);
    crc32_update(crc, &page[26..])
}

/// Position of the next capture pattern in `buf`, if any.
pub fn find_capture(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == CAPTURE)
}

/// One packet's share of a page body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketPiece {
    /// Byte range within the page (not the body).
    pub range: Range<usize>,
    /// This piece continues a packet begun on an earlier page.
    pub continued: bool,
    /// The packet ends on this page.
    pub complete: bool,
}

/// Iterator over the packet pieces of a parsed page.
pub struct PacketPieces<'a> {
    lacing: &'a [u8],
    idx: usize,
    offset: usize,
    first: bool,
    continued: bool,
}

/// The packet pieces of `page` (which must be the page `hdr` was parsed from).
pub fn packet_pieces<'a>(page: &'a [u8], hdr: &PageHeader) -> PacketPieces<'a> {
    let lacing = page
        .get(PAGE_HEADER_LEN..hdr.header_len)
        .unwrap_or_default();
    PacketPieces {
        lacing,
        idx: 0,
        offset: hdr.header_len,
        first: true,
        continued: hdr.is_continued(),
    }
}

impl Iterator for PacketPieces<'_> {
    type Item = PacketPiece;

    fn next(&mut self) -> Option<PacketPiece> {
        if self.idx >= self.lacing.len() {
            return None;
        }
        let start = self.offset;
        let mut complete = false;
        while self.idx < self.lacing.len() {
            let v = self.lacing[self.idx];
            self.idx += 1;
            self.offset += v as usize;
            if v < 255 {
                complete = true;
                break;
            }
        }
        let continued = self.first && self.continued;
        self.first = false;
        Some(PacketPiece {
            range: start..self.offset,
            continued,
            complete,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Vorbis,
    Theora,
    Opus,
    Flac,
    Speex,
    Skeleton,
    Kate,
}

impl Codec {
    fn identify(packet: &[u8]) -> Option<Codec> {
        let table: [(&[u8], Codec); 7] = [
            (b"\x01vorbis", Codec::Vorbis),
            (b"\x80theora", Codec::Theora),
            (b"OpusHead", Codec::Opus),
            (b"\x7fFLAC", Codec::Flac),
            (b"Speex   ", Codec::Speex),
            (b"fishead\0", Codec::Skeleton),
            (b"\x80kate\0\0\0", Codec::Kate),
        ];
        table
            .iter()
            .find(|(magic, _)| packet.starts_with(magic))
            .map(|&(_, c)| c)
    }

    fn name(self) -> &'static str {
        match self {
            Codec::Vorbis => "Vorbis",
            Codec::Theora => "Theora",
            Codec::Opus => "Opus",
            Codec::Flac => "FLAC",
            Codec::Speex => "Speex",
            Codec::Skeleton => "Skeleton",
            Codec::Kate => "Kate",
        }
    }

    fn is_audio(self) -> bool {
        matches!(
            self,
            Codec::Vorbis | Codec::Opus | Codec::Flac | Codec::Speex
        )
    }
}

/// How a stream's header section ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeaderEnd {
    /// After this many header packets.
    Count(u32),
    /// FLAC with an unknown count: at the first audio packet (first byte 0xFF).
    FirstAudio,
    /// Skeleton: at the stream's EOS page.
    Eos,
}

struct LogicalStream {
    serial: u32,
    codec: Codec,
    end: HeaderEnd,
    headers_seen: u32,
    done: bool,
    eos: bool,
    /// Prefix of a header packet spanning pages.
    partial: Option<Vec<u8>>,
}

impl LogicalStream {
    fn check_done(&mut self) {
        if let HeaderEnd::Count(n) = self.end
            && self.headers_seen >= n
        {
            self.done = true;
        }
    }
}

/// One chain: the logical streams that started together and their header pages.
#[derive(Default)]
struct Chain {
    streams: Vec<LogicalStream>,
    header_pages: Vec<Bytes>,
    header_bytes: usize,
    published: bool,
    data_seen: bool,
    has_theora: bool,
    /// Data pages that arrived before the header was complete (their `header` is set when
    /// it is published).
    pending: Vec<Block>,
    pending_bytes: usize,
    /// Set after an admin title update: the chain listeners get instead of the source's.
    /// The source's next chain ends it (a new `Chain` has none).
    retitled: Option<Retitled>,
    /// Granule position of the source's latest data page that had one.
    last_granule: Option<i64>,
    /// Serial and sequence number of the latest data page listeners were sent.
    last_sent: Option<(u32, u32)>,
}

/// The chain an admin title update started in place of the source's single-stream chain:
/// listeners get its header pages, then each data page of the source renumbered into it.
struct Retitled {
    /// The serial listeners see.
    serial: u32,
    /// Sequence number of the first data page (after the new header pages).
    first_sequence: u32,
    /// Added to the source's page sequence numbers, once the first data page has gone out
    /// (so a gap in the source's numbering stays a gap).
    sequence_delta: Option<u32>,
    /// Taken from the source's granule positions: the source's position where the new chain
    /// begins, so the new chain's time starts near 0 as a new chain's does.
    granule_base: i64,
}

impl Chain {
    fn all_eos(&self) -> bool {
        !self.streams.is_empty() && self.streams.iter().all(|s| s.eos)
    }
    fn headers_complete(&self) -> bool {
        !self.streams.is_empty() && self.streams.iter().all(|s| s.done)
    }
}

/// Framer for Ogg streams (Vorbis, Opus, FLAC, Speex, Theora, with Skeleton/Kate).
pub struct OggFramer {
    buf: BytesMut,
    info: CodecInfo,
    header: Option<Arc<StreamHeader>>,
    /// Id of the next published header; starts at 1.
    next_id: u64,
    chain: Chain,
    /// Bytes discarded while resyncing or as pages of unknown streams.
    dropped: u64,
    /// Admin title updates written into the stream so far; each picks a fresh serial.
    retitles: u32,
}

impl OggFramer {
    pub fn new() -> Self {
        OggFramer {
            buf: BytesMut::new(),
            info: CodecInfo::default(),
            header: None,
            next_id: 1,
            chain: Chain::default(),
            dropped: 0,
            retitles: 0,
        }
    }

    /// Bytes dropped so far: garbage between pages, bad-CRC pages, orphan pages.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped
    }

    fn process_page(
        &mut self,
        hdr: PageHeader,
        page: Bytes,
        out: &mut Vec<Block>,
    ) -> Result<(), FormatError> {
        if hdr.is_bos() {
            return self.process_bos(hdr, page, out);
        }
        let Some(idx) = self
            .chain
            .streams
            .iter()
            .position(|s| s.serial == hdr.serial)
        else {
            // No BOS seen for this serial: a decoder could not use it either.
            self.dropped += page.len() as u64;
            return Ok(());
        };
        let is_header = {
            let s = &mut self.chain.streams[idx];
            let was_done = s.done;
            let is_header = if was_done {
                false
            } else {
                collect_headers(s, &hdr, &page, &mut self.info)
            };
            if hdr.is_eos() {
                s.eos = true;
                s.done = true;
            }
            is_header
        };
        if is_header {
            self.add_header_page(page)?;
        } else {
            if hdr.granule_position >= 0 {
                self.chain.last_granule = Some(hdr.granule_position);
            }
            let page = match self.chain.retitled.as_mut() {
                Some(r) => match r.rewrite(&page, &hdr) {
                    Some(copy) => copy,
                    None => {
                        // Only the tail of a packet begun before the new chain: no decoder
                        // of the new chain could use it.
                        self.dropped += page.len() as u64;
                        return Ok(());
                    }
                },
                None => page,
            };
            self.chain.last_sent = Some((
                u32::from_le_bytes(le_array(&page[14..18])),
                u32::from_le_bytes(le_array(&page[18..22])),
            ));
            let mut block = self.data_block(idx, &hdr, page);
            self.chain.data_seen = true;
            if self.chain.published {
                block.header = self.header.clone();
                out.push(block);
            } else {
                self.chain.pending_bytes += block.data.len();
                self.chain.pending.push(block);
                if self.chain.pending_bytes > MAX_PENDING_BYTES {
                    // Some stream never completes its headers; stop waiting for it.
                    self.publish(out);
                }
            }
        }
        if !self.chain.published && self.chain.headers_complete() {
            self.publish(out);
        }
        Ok(())
    }

    fn process_bos(
        &mut self,
        hdr: PageHeader,
        page: Bytes,
        out: &mut Vec<Block>,
    ) -> Result<(), FormatError> {
        // A BOS after data, after the chain ended, or repeating a serial of the chain being
        // collected (an encoder restarting mid-header) begins a new chain.
        let repeated = self.chain.streams.iter().any(|s| s.serial == hdr.serial);
        if self.chain.published || self.chain.data_seen || self.chain.all_eos() || repeated {
            if !self.chain.published && !self.chain.pending.is_empty() {
                // The old chain never completed its headers; release its held data pages.
                self.publish(out);
            }
            self.new_chain();
        }
        if self.chain.streams.len() >= MAX_STREAMS {
            return Err(FormatError::TooManyStreams);
        }
        let first = packet_pieces(&page, &hdr)
            .next()
            .map(|p| &page[p.range])
            .unwrap_or_default();
        let codec = Codec::identify(first).ok_or(FormatError::UnknownOggCodec)?;
        let end = match codec {
            Codec::Vorbis | Codec::Theora => HeaderEnd::Count(3),
            Codec::Opus => HeaderEnd::Count(2),
            Codec::Speex => {
                let extra = read_u32le(first, 68).unwrap_or(0).min(MAX_HEADER_PACKETS);
                HeaderEnd::Count(2 + extra)
            }
            Codec::Flac => match read_u16be(first, 7) {
                Some(n) if n > 0 => HeaderEnd::Count((1 + n as u32).min(MAX_HEADER_PACKETS)),
                _ => HeaderEnd::FirstAudio,
            },
            Codec::Kate => {
                HeaderEnd::Count((first.get(11).copied().unwrap_or(1) as u32).clamp(1, 255))
            }
            Codec::Skeleton => HeaderEnd::Eos,
        };
        if codec == Codec::Theora {
            self.chain.has_theora = true;
        }
        let mut stream = LogicalStream {
            serial: hdr.serial,
            codec,
            end,
            headers_seen: 0,
            done: false,
            eos: false,
            partial: None,
        };
        collect_headers(&mut stream, &hdr, &page, &mut self.info);
        if hdr.is_eos() {
            stream.eos = true;
            stream.done = true;
        }
        self.chain.streams.push(stream);
        self.update_codec_names();
        self.add_header_page(page)
    }

    fn add_header_page(&mut self, page: Bytes) -> Result<(), FormatError> {
        self.chain.header_bytes += page.len();
        if self.chain.header_bytes > MAX_HEADER_BYTES {
            return Err(FormatError::Invalid("Ogg header pages too large".into()));
        }
        self.chain.header_pages.push(page);
        Ok(())
    }

    fn new_chain(&mut self) {
        self.chain = Chain::default();
        // Stats describe the current chain; the title and format may change with it.
        self.info = CodecInfo {
            chains: self.info.chains,
            ..CodecInfo::default()
        };
    }

    fn publish(&mut self, out: &mut Vec<Block>) {
        let mut data = BytesMut::with_capacity(self.chain.header_bytes);
        for p in &self.chain.header_pages {
            data.extend_from_slice(p);
        }
        let header = Arc::new(StreamHeader {
            id: self.next_id,
            data: data.freeze(),
        });
        self.next_id += 1;
        self.header = Some(header.clone());
        self.chain.published = true;
        // The chain's comment headers are all in: its tags are final.
        self.info.chains += 1;
        self.chain.pending_bytes = 0;
        // After a forced publish, treat every stream's later pages as data.
        for s in &mut self.chain.streams {
            s.done = true;
            s.partial = None;
        }
        for mut block in self.chain.pending.drain(..) {
            block.header = Some(header.clone());
            out.push(block);
        }
    }

    /// The block for data page `page` of stream `idx` (header not set). Without video every
    /// page is a clean start. With Theora, a page is a clean start when a keyframe packet
    /// begins on it; when that packet is not the page's first, the block carries a start
    /// copy holding only the packets from the keyframe on. Any other page is a boundary.
    fn data_block(&self, idx: usize, hdr: &PageHeader, page: Bytes) -> Block {
        if !self.chain.has_theora {
            return Block::new(page, Start::Clean, None);
        }
        if self.chain.streams[idx].codec != Codec::Theora {
            return Block::new(page, Start::Boundary, None);
        }
        match theora_keyframe_segment(&page, hdr) {
            Some(0) if !hdr.is_continued() => Block::new(page, Start::Clean, None),
            Some(segment) => {
                let copy = copy_page(
                    &page,
                    hdr,
                    segment,
                    (hdr.serial, hdr.sequence),
                    hdr.granule_position,
                );
                let mut block = Block::new(page, Start::Clean, None);
                block.start_data = Some(Arc::new(copy));
                block
            }
            None => Block::new(page, Start::Boundary, None),
        }
    }

    /// The admin title update of [`Framer::retitle`]. Only a chain of one Vorbis stream whose
    /// headers all came is re-sent, as icecast2 rewrites single-stream Vorbis only and leaves
    /// multi-stream Ogg (Theora+Vorbis) alone. The new chain has the chain's own header
    /// packets under a fresh serial, the comment header rebuilt with its vendor string and
    /// other tags kept and TITLE / ARTIST replaced; it is published as a new header, so every
    /// listener gets it before the next data page, which `Retitled::rewrite` renumbers into
    /// the new chain, one copy per page shared by all listeners. Its granule
    /// positions count from where it begins, as in a chain a source starts: players take a
    /// new chain's time as starting near 0 (ffmpeg, and mpv with it, carry on from there;
    /// VLC adds it to the time played so far), so the source's running positions would
    /// make their clocks jump ahead.
    fn start_retitled_chain(
        &mut self,
        title: Option<&str>,
        artist: Option<&str>,
        out: &mut Vec<Block>,
    ) -> bool {
        let chain = &self.chain;
        let [stream] = chain.streams.as_slice() else {
            return false;
        };
        // Not Opus, though its OpusTags would be rebuilt the same way and ffmpeg, mpv and
        // GStreamer follow the new chain: mplayer's Ogg demuxer stops at an Opus chain
        // change ("we met an unknown stream"), and icecast2 leaves Opus streams alone.
        // A forced publish leaves `headers_seen` short: the header packets are not all there.
        if stream.codec != Codec::Vorbis
            || !chain.published
            || stream.eos
            || stream.headers_seen < 3
        {
            return false;
        }
        let packets = header_packets(&chain.header_pages);
        let Some(headers) = packets.get(..3) else {
            return false;
        };
        let Some(comment) = retitled_comment(&headers[1], title, artist) else {
            return false;
        };
        let source = stream.serial;
        let previous = chain.retitled.as_ref().map_or(source, |r| r.serial);
        self.retitles = self.retitles.wrapping_add(1);
        // Any serial other than the two listeners may have seen will do; spread them out.
        let mut serial = source ^ self.retitles.wrapping_mul(0x9E37_79B9);
        while serial == source || serial == previous {
            serial = serial.wrapping_add(1);
        }
        let mut data = BytesMut::new();
        // The identification header alone on the BOS page, the others after it, as libogg
        // and every Ogg mapping lay them out.
        let next = write_packets(&mut data, &[&headers[0]], serial, 0, FLAG_BOS);
        let mut rest: Vec<&[u8]> = vec![&comment];
        rest.extend(headers[2..].iter().map(Vec::as_slice));
        let first_sequence = write_packets(&mut data, &rest, serial, next, 0);
        // The stream listeners have now ends, as a chain must before the next begins: an
        // empty page with the end-of-stream flag. Players treat the change like any chain a
        // source starts (VLC 3.0 stops at those too). Without one nothing went out since
        // the last chain began, so there is nothing to end.
        if let Some((old_serial, sequence)) = self.chain.last_sent.take() {
            let mut eos = BytesMut::with_capacity(PAGE_HEADER_LEN);
            write_page(
                &mut eos,
                FLAG_EOS,
                -1,
                old_serial,
                sequence.wrapping_add(1),
                &[],
                &[],
            );
            out.push(Block::new(eos.freeze(), Start::No, self.header.clone()));
        }
        self.header = Some(Arc::new(StreamHeader {
            id: self.next_id,
            data: data.freeze(),
        }));
        self.next_id += 1;
        self.chain.retitled = Some(Retitled {
            serial,
            first_sequence,
            sequence_delta: None,
            granule_base: self.chain.last_granule.unwrap_or(0),
        });
        // The stream now says what the admin said (an empty value is left out of it).
        let tag = |v: Option<&str>| v.filter(|v| !v.is_empty()).map(str::to_string);
        self.info.title = tag(title);
        self.info.artist = tag(artist);
        true
    }

    fn update_codec_names(&mut self) {
        let codecs: Vec<Codec> = self.chain.streams.iter().map(|s| s.codec).collect();
        // icecast2 prepends each new logical stream to its codec list, so its `subtype`
        // names them in reverse BOS order ("Vorbis/Theora" for Theora first).
        let names: Vec<&str> = codecs
            .iter()
            .rev()
            .filter(|c| **c != Codec::Skeleton)
            .map(|c| c.name())
            .collect();
        self.info.subtype = (!names.is_empty()).then(|| names.join("/"));
        let codec = codecs
            .iter()
            .find(|c| c.is_audio())
            .or_else(|| codecs.iter().find(|c| **c == Codec::Theora))
            .or_else(|| codecs.iter().find(|c| **c != Codec::Skeleton));
        self.info.codec = codec.map(|c| c.name().to_string());
    }
}

/// Index of the lacing value where the first Theora keyframe packet of `page` begins, if one
/// does. A Theora data packet has bit 0x80 of its first byte clear, a keyframe bit 0x40 too;
/// an empty packet is a dropped frame.
fn theora_keyframe_segment(page: &[u8], hdr: &PageHeader) -> Option<usize> {
    let lacing = page.get(PAGE_HEADER_LEN..hdr.header_len)?;
    let mut offset = hdr.header_len;
    // A packet begins at each lacing value that follows one below 255, and at the first
    // unless the page continues a packet.
    let mut begins = !hdr.is_continued();
    for (i, &len) in lacing.iter().enumerate() {
        if begins && len > 0 && page.get(offset).is_some_and(|&b| b & 0xC0 == 0) {
            return Some(i);
        }
        begins = len < 255;
        offset += len as usize;
    }
    None
}

/// A copy of `page` renumbered as `(serial, sequence)` that keeps only its packets from
/// lacing value `segment` on. When `segment` > 0 it must begin a packet, and the copy loses
/// the "continued" flag: a decoder starting on it sees the packet at `segment` first (the
/// Theora start copy). Other flags stay; the granule position is `granule` if a packet still
/// ends on the copy, else -1; the CRC is recomputed.
fn copy_page(
    page: &[u8],
    hdr: &PageHeader,
    segment: usize,
    (serial, sequence): (u32, u32),
    granule: i64,
) -> Bytes {
    let lacing = page
        .get(PAGE_HEADER_LEN + segment..hdr.header_len)
        .unwrap_or_default();
    let skipped: usize = page
        .get(PAGE_HEADER_LEN..PAGE_HEADER_LEN + segment)
        .unwrap_or_default()
        .iter()
        .map(|&v| v as usize)
        .sum();
    let body = page
        .get(hdr.header_len + skipped..hdr.total_len())
        .unwrap_or_default();
    let granule = if lacing.iter().any(|&v| v < 255) {
        granule
    } else {
        -1
    };
    let flags = if segment > 0 {
        hdr.header_type & !FLAG_CONTINUED
    } else {
        hdr.header_type
    };
    let mut copy = BytesMut::with_capacity(PAGE_HEADER_LEN + lacing.len() + body.len());
    write_page(&mut copy, flags, granule, serial, sequence, lacing, body);
    copy.freeze()
}

/// Append one page to `out`: the fixed header with its CRC, the lacing values, the body.
/// `lacing` has at most 255 values and sums to `body.len()`.
fn write_page(
    out: &mut BytesMut,
    flags: u8,
    granule: i64,
    serial: u32,
    sequence: u32,
    lacing: &[u8],
    body: &[u8],
) {
    let start = out.len();
    out.extend_from_slice(CAPTURE);
    out.extend_from_slice(&[0, flags]);
    out.extend_from_slice(&granule.to_le_bytes());
    out.extend_from_slice(&serial.to_le_bytes());
    out.extend_from_slice(&sequence.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&[lacing.len() as u8]);
    out.extend_from_slice(lacing);
    out.extend_from_slice(body);
    let crc = page_crc(&out[start..]);
    out[start + 22..start + 26].copy_from_slice(&crc.to_le_bytes());
}

/// Append `packets` to `out` as pages of stream `serial`, numbered from `sequence`, the
/// first with `flags`, as libogg flushes header packets: each page holds up to 255 lacing
/// values, a packet continues on the next page where it does not fit, and the last packet
/// ends the last page. Pages where a packet ends get granule position 0 (header packets),
/// others -1. Returns the next sequence number.
fn write_packets(
    out: &mut BytesMut,
    packets: &[&[u8]],
    serial: u32,
    sequence: u32,
    flags: u8,
) -> u32 {
    let mut lacing = Vec::new();
    for p in packets {
        lacing.extend(std::iter::repeat_n(255u8, p.len() / 255));
        lacing.push((p.len() % 255) as u8);
    }
    let body: Vec<u8> = packets.concat();
    let (mut sequence, mut flags, mut at) = (sequence, flags, 0usize);
    for values in lacing.chunks(255) {
        let len: usize = values.iter().map(|&v| v as usize).sum();
        let ends = values.iter().any(|&v| v < 255);
        let granule = if ends { 0 } else { -1 };
        write_page(
            out,
            flags,
            granule,
            serial,
            sequence,
            values,
            &body[at..at + len],
        );
        at += len;
        sequence = sequence.wrapping_add(1);
        // The next page continues a packet when this one's last lacing value is 255.
        flags = if values.last() == Some(&255) {
            FLAG_CONTINUED
        } else {
            0
        };
    }
    sequence
}

impl Retitled {
    /// The source's data page `page` as a page of the new chain, or `None` when it holds
    /// nothing the new chain can use. The new chain must begin on a packet: a continued
    /// packet piece leading the first data page is cut off, as its beginning went out in the
    /// old chain (the granule stays right: it marks the end of the last packet on the page).
    /// Granule positions count from the chain's beginning.
    fn rewrite(&mut self, page: &[u8], hdr: &PageHeader) -> Option<Bytes> {
        let segment = match self.sequence_delta {
            Some(_) => 0,
            None if hdr.is_continued() => {
                let lacing = page.get(PAGE_HEADER_LEN..hdr.header_len)?;
                // The continued piece ends at the first lacing value below 255.
                let end = lacing.iter().position(|&v| v < 255)? + 1;
                if end >= lacing.len() {
                    return None;
                }
                end
            }
            None => 0,
        };
        let delta = *self
            .sequence_delta
            .get_or_insert(self.first_sequence.wrapping_sub(hdr.sequence));
        let granule = match hdr.granule_position {
            -1 => -1,
            g => g.saturating_sub(self.granule_base).max(0),
        };
        Some(copy_page(
            page,
            hdr,
            segment,
            (self.serial, hdr.sequence.wrapping_add(delta)),
            granule,
        ))
    }
}

impl Default for OggFramer {
    fn default() -> Self {
        Self::new()
    }
}

/// Feed one page of a stream still collecting headers. Returns whether the page carries any
/// header packet (then the whole page is a header page: a page that ends the headers and
/// also starts data is rare and is sent as header).
fn collect_headers(
    s: &mut LogicalStream,
    hdr: &PageHeader,
    page: &[u8],
    info: &mut CodecInfo,
) -> bool {
    let mut is_header = false;
    for piece in packet_pieces(page, hdr) {
        let bytes = &page[piece.range.clone()];
        if piece.continued {
            if let Some(partial) = s.partial.as_mut() {
                is_header = true;
                let room = MAX_HEADER_PACKET_PREFIX.saturating_sub(partial.len());
                partial.extend_from_slice(&bytes[..bytes.len().min(room)]);
                if piece.complete {
                    let packet = s.partial.take().unwrap_or_default();
                    finish_header_packet(s, &packet, info);
                }
            }
            continue;
        }
        if let Some(lost) = s.partial.take() {
            // The packet's continuation never came (lost page); count what we have.
            finish_header_packet(s, &lost, info);
        }
        if s.done {
            continue;
        }
        let is_header_packet = match s.end {
            HeaderEnd::FirstAudio => {
                if bytes.first() == Some(&0xFF) {
                    s.done = true;
                    false
                } else {
                    true
                }
            }
            HeaderEnd::Eos | HeaderEnd::Count(_) => true,
        };
        if !is_header_packet {
            continue;
        }
        is_header = true;
        if piece.complete {
            finish_header_packet(s, bytes, info);
        } else {
            s.partial = Some(bytes[..bytes.len().min(MAX_HEADER_PACKET_PREFIX)].to_vec());
        }
    }
    is_header
}

fn finish_header_packet(s: &mut LogicalStream, packet: &[u8], info: &mut CodecInfo) {
    let n = s.headers_seen;
    s.headers_seen += 1;
    parse_header_packet(s.codec, n, packet, info);
    s.check_done();
}

/// Pull stats out of header packet number `n` (0-based) of a stream.
fn parse_header_packet(codec: Codec, n: u32, p: &[u8], info: &mut CodecInfo) {
    let audio_first = info.samplerate.is_none();
    match (codec, n) {
        (Codec::Vorbis, 0) if audio_first => {
            info.channels = p.get(11).map(|&c| c as u32);
            info.samplerate = read_u32le(p, 12);
            // Signed in the spec; 0 or -1 means "not set" and is not reported.
            info.nominal_bitrate = read_u32le(p, 20).filter(|&b| (b as i32) > 0);
            info.bitrate = info.nominal_bitrate.map(|b| b / 1000);
        }
        (Codec::Vorbis, 1) if p.starts_with(b"\x03vorbis") => read_comments(&p[7..], info),
        (Codec::Opus, 0) if audio_first => {
            info.channels = p.get(9).map(|&c| c as u32);
            // Opus always decodes at 48 kHz; bytes 12..16 only record the input rate.
            info.samplerate = Some(48000);
        }
        (Codec::Opus, 1) if p.starts_with(b"OpusTags") => read_comments(&p[8..], info),
        (Codec::Flac, 0) => {
            // 0x7F "FLAC" major minor count(2) "fLaC" block-header(4) STREAMINFO(34)
            if let (Some(&major), Some(&minor)) = (p.get(5), p.get(6)) {
                info.flac_version = Some((major, minor));
            }
            if let Some(si) = p.get(17..17 + 18).filter(|_| audio_first) {
                let rate = (si[10] as u32) << 12 | (si[11] as u32) << 4 | (si[12] as u32) >> 4;
                info.samplerate = Some(rate);
                info.channels = Some(((si[12] as u32 >> 1) & 7) + 1);
            }
        }
        // Later FLAC header packets are metadata blocks; type 4 is VORBIS_COMMENT.
        (Codec::Flac, _) if n > 0 && p.first().is_some_and(|b| b & 0x7F == 4) => {
            read_comments(p.get(4..).unwrap_or_default(), info);
        }
        (Codec::Speex, 0) if audio_first => {
            info.samplerate = read_u32le(p, 36);
            info.channels = read_u32le(p, 48);
            info.bitrate = read_u32le(p, 52)
                .map(|b| b as i32)
                .filter(|&b| b > 0)
                .map(|b| b as u32 / 1000);
        }
        (Codec::Speex, 1) => read_comments(p, info),
        (Codec::Theora, 0) => {
            let w = p
                .get(14..17)
                .map(|b| u32::from_be_bytes([0, b[0], b[1], b[2]]));
            let h = p
                .get(17..20)
                .map(|b| u32::from_be_bytes([0, b[0], b[1], b[2]]));
            info.video_width = w;
            info.video_height = h;
            if let (Some(num), Some(den)) = (read_u32be(p, 22), read_u32be(p, 26))
                && den > 0
            {
                info.frame_rate = Some(num as f64 / den as f64);
            }
            // NOMBR (24 bits) follows the pixel aspect ratio and colour space; QUAL is the top
            // 6 bits of the next byte.
            info.video_bitrate = p
                .get(37..40)
                .map(|b| u32::from_be_bytes([0, b[0], b[1], b[2]]));
            info.video_quality = p.get(40).map(|b| u32::from(b >> 2));
        }
        _ => {}
    }
}

/// The complete packets of the header pages of a single-stream chain, in order.
fn header_packets(pages: &[Bytes]) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let mut partial: Option<Vec<u8>> = None;
    for page in pages {
        let Ok(Some((hdr, _))) = parse_page(page) else {
            continue;
        };
        for piece in packet_pieces(page, &hdr) {
            let bytes = &page[piece.range.clone()];
            let mut packet = match (piece.continued, partial.take()) {
                (true, Some(mut begun)) => {
                    begun.extend_from_slice(bytes);
                    begun
                }
                (true, None) => continue,
                (false, _) => bytes.to_vec(),
            };
            if piece.complete {
                packets.push(std::mem::take(&mut packet));
            } else {
                partial = Some(packet);
            }
        }
    }
    packets
}

/// Vorbis comment header `packet` with every TITLE and ARTIST entry replaced by `title` and
/// `artist`; the vendor string, the other entries and what follows them (the framing bit)
/// stay. `None` when the packet is not a well-formed comment header.
fn retitled_comment(packet: &[u8], title: Option<&str>, artist: Option<&str>) -> Option<Vec<u8>> {
    const MAGIC: &[u8] = b"\x03vorbis";
    let block = packet.strip_prefix(MAGIC)?;
    let vendor_end = 4usize.checked_add(read_u32le(block, 0)? as usize)?;
    let vendor = block.get(..vendor_end)?;
    let count = read_u32le(block, vendor_end)?;
    let mut pos = vendor_end + 4;
    let mut entries: Vec<&[u8]> = Vec::new();
    for _ in 0..count {
        let len = read_u32le(block, pos)? as usize;
        let entry = block.get(pos + 4..(pos + 4).checked_add(len)?)?;
        pos += 4 + len;
        let key = entry.split(|&b| b == b'=').next().unwrap_or_default();
        if !key.eq_ignore_ascii_case(b"TITLE") && !key.eq_ignore_ascii_case(b"ARTIST") {
            entries.push(entry);
        }
    }
    let tail = &block[pos..];
    let added: Vec<String> = [("ARTIST", artist), ("TITLE", title)]
        .into_iter()
        .filter_map(|(key, value)| Some(format!("{key}={}", value.filter(|v| !v.is_empty())?)))
        .collect();
    entries.extend(added.iter().map(String::as_bytes));
    let mut out =
        Vec::with_capacity(packet.len() + added.iter().map(|a| a.len() + 4).sum::<usize>());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(vendor);
    out.extend_from_slice(&u32::try_from(entries.len()).ok()?.to_le_bytes());
    for e in entries {
        out.extend_from_slice(&u32::try_from(e.len()).ok()?.to_le_bytes());
        out.extend_from_slice(e);
    }
    out.extend_from_slice(tail);
    Some(out)
}

/// Parse a Vorbis comment block (vendor string, then `KEY=value` entries), tolerating
/// truncation. The first TITLE and the first ARTIST count, as icecast2 queries them; a
/// block without them leaves what another stream of the chain said.
fn read_comments(p: &[u8], info: &mut CodecInfo) {
    let entries = comment_entries(p);
    let first = |name: &[u8]| {
        entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    if let Some(t) = first(b"TITLE") {
        info.title = Some(t);
    }
    if let Some(a) = first(b"ARTIST") {
        info.artist = Some(a);
    }
}

/// The `(key, value)` entries of a Vorbis comment block, up to where it is truncated.
fn comment_entries(p: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out = Vec::new();
    let Some(vendor_len) = read_u32le(p, 0) else {
        return out;
    };
    let mut pos = 4usize.saturating_add(vendor_len as usize);
    let Some(count) = read_u32le(p, pos) else {
        return out;
    };
    pos += 4;
    for _ in 0..count {
        let Some(len) = read_u32le(p, pos) else {
            break;
        };
        pos += 4;
        let Some(entry) = pos
            .checked_add(len as usize)
            .and_then(|end| p.get(pos..end))
        else {
            break;
        };
        pos += len as usize;
        if let Some(eq) = entry.iter().position(|&b| b == b'=') {
            out.push((&entry[..eq], &entry[eq + 1..]));
        }
    }
    out
}

fn read_u32le(p: &[u8], at: usize) -> Option<u32> {
    let b = p.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_u32be(p: &[u8], at: usize) -> Option<u32> {
    let b = p.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_u16be(p: &[u8], at: usize) -> Option<u16> {
    let b = p.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

impl Framer for OggFramer {
    fn push(&mut self, input: &[u8], out: &mut Vec<Block>) -> Result<(), FormatError> {
        self.buf.extend_from_slice(input);
        loop {
            if self.buf.is_empty() {
                return Ok(());
            }
            match parse_page(&self.buf) {
                Ok(Some((hdr, len))) => {
                    let page = self.buf.split_to(len).freeze();
                    self.process_page(hdr, page, out)?;
                }
                Ok(None) => return Ok(()),
                Err(_) => {
                    // Resync: skip to the next capture pattern, keeping a tail that may be
                    // the start of one. A false "OggS" inside a bad page costs one retry.
                    let skip = match find_capture(&self.buf[1..]) {
                        Some(p) => p + 1,
                        None => self.buf.len().saturating_sub(3).max(1),
                    };
                    let _ = self.buf.split_to(skip);
                    self.dropped += skip as u64;
                }
            }
        }
    }

    fn flush(&mut self, _out: &mut Vec<Block>) {
        // A partial page or an unpublished chain is useless to listeners: drop it.
        self.dropped += self.buf.len() as u64;
        self.buf.clear();
        self.chain = Chain::default();
        self.header = None;
    }

    fn info(&self) -> &CodecInfo {
        &self.info
    }

    fn header(&self) -> Option<Arc<StreamHeader>> {
        self.header.clone()
    }

    fn retitle(&mut self, title: Option<&str>, artist: Option<&str>, out: &mut Vec<Block>) -> bool {
        self.start_retitled_chain(title, artist, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Test-only page builder: `pieces` are (bytes, complete) packet pieces in order.
    fn page(flags: u8, serial: u32, seq: u32, granule: i64, pieces: &[(&[u8], bool)]) -> Vec<u8> {
        let mut lacing = Vec::new();
        let mut body = Vec::new();
        for (bytes, complete) in pieces {
            let mut n = bytes.len();
            while n >= 255 {
                lacing.push(255);
                n -= 255;
            }
            if *complete {
                lacing.push(n as u8);
            } else {
                assert_eq!(n, 0, "an incomplete piece must be a multiple of 255");
            }
            body.extend_from_slice(bytes);
        }
        let mut p = Vec::new();
        p.extend_from_slice(b"OggS");
        p.push(0);
        p.push(flags);
        p.extend_from_slice(&granule.to_le_bytes());
        p.extend_from_slice(&serial.to_le_bytes());
        p.extend_from_slice(&seq.to_le_bytes());
        p.extend_from_slice(&[0; 4]);
        p.push(lacing.len() as u8);
        p.extend_from_slice(&lacing);
        p.extend_from_slice(&body);
        let crc = page_crc(&p);
        p[22..26].copy_from_slice(&crc.to_le_bytes());
        p
    }

    fn full(packets: &[&[u8]]) -> Vec<(Vec<u8>, bool)> {
        packets.iter().map(|p| (p.to_vec(), true)).collect()
    }

    fn pg(flags: u8, serial: u32, seq: u32, pieces: &[(Vec<u8>, bool)]) -> Vec<u8> {
        let refs: Vec<(&[u8], bool)> = pieces.iter().map(|(b, c)| (b.as_slice(), *c)).collect();
        page(flags, serial, seq, 0, &refs)
    }

    fn comments(vendor: &str, entries: &[&str]) -> Vec<u8> {
        let mut c = Vec::new();
        c.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        c.extend_from_slice(vendor.as_bytes());
        c.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for e in entries {
            c.extend_from_slice(&(e.len() as u32).to_le_bytes());
            c.extend_from_slice(e.as_bytes());
        }
        c
    }

    fn vorbis_ident(channels: u8, rate: u32, nominal: i32) -> Vec<u8> {
        let mut p = b"\x01vorbis".to_vec();
        p.extend_from_slice(&0u32.to_le_bytes());
        p.push(channels);
        p.extend_from_slice(&rate.to_le_bytes());
        p.extend_from_slice(&0i32.to_le_bytes());
        p.extend_from_slice(&nominal.to_le_bytes());
        p.extend_from_slice(&0i32.to_le_bytes());
        p.push(0xb8);
        p.push(1);
        p
    }

    fn vorbis_comment(entries: &[&str]) -> Vec<u8> {
        let mut p = b"\x03vorbis".to_vec();
        p.extend(comments("test", entries));
        p.push(1);
        p
    }

    fn vorbis_setup(len: usize) -> Vec<u8> {
        let mut p = b"\x05vorbis".to_vec();
        p.resize(len, 0x42);
        p
    }

    /// A Vorbis stream laid out as libvorbis/ices2 do: ident alone on the BOS page, then
    /// comment + setup on the second page, then `data_pages` single-packet data pages.
    fn vorbis_stream(serial: u32, title: &str, data_pages: u32) -> Vec<Vec<u8>> {
        let t = format!("TITLE={title}");
        let mut pages = vec![
            pg(
                FLAG_BOS,
                serial,
                0,
                &full(&[&vorbis_ident(2, 44100, 128000)]),
            ),
            pg(
                0,
                serial,
                1,
                &full(&[&vorbis_comment(&[&t, "artist=Band"]), &vorbis_setup(100)]),
            ),
        ];
        for i in 0..data_pages {
            let last = i + 1 == data_pages;
            pages.push(pg(
                if last { FLAG_EOS } else { 0 },
                serial,
                2 + i,
                &full(&[&[0x00, i as u8, 1, 2, 3]]),
            ));
        }
        pages
    }

    fn run(framer: &mut OggFramer, input: &[u8]) -> Result<Vec<Block>, FormatError> {
        let mut out = Vec::new();
        framer.push(input, &mut out)?;
        Ok(out)
    }

    #[test]
    fn crc_check_value() {
        // CRC-32/CKSUM's check value without the final inversion.
        assert_eq!(crc32_update(0, b"123456789"), 0x765E_7680 ^ 0xFFFF_FFFF);
    }

    #[test]
    fn single_page_parse() {
        let p = page(FLAG_BOS, 0x1234, 7, 99, &[(b"hello", true), (b"ab", true)]);
        let (hdr, len) = parse_page(&p).unwrap().unwrap();
        assert_eq!(len, p.len());
        assert!(hdr.is_bos() && !hdr.is_eos() && !hdr.is_continued());
        assert_eq!(
            (hdr.serial, hdr.sequence, hdr.granule_position),
            (0x1234, 7, 99)
        );
        assert_eq!((hdr.segments, hdr.body_len, hdr.header_len), (2, 7, 29));
        let pieces: Vec<_> = packet_pieces(&p, &hdr).collect();
        assert_eq!(&p[pieces[0].range.clone()], b"hello");
        assert_eq!(&p[pieces[1].range.clone()], b"ab");
        // Any prefix is "need more", never an error.
        for n in 0..p.len() {
            assert_eq!(parse_page(&p[..n]), Ok(None), "prefix {n}");
        }
        let mut bad = p.clone();
        bad[30] ^= 1;
        assert_eq!(parse_page(&bad), Err(PageError::BadCrc));
        assert_eq!(parse_page(b"OggX"), Err(PageError::NoCapture));
        assert_eq!(parse_page(b"OggS\x01"), Err(PageError::BadVersion(1)));
    }

    #[test]
    fn vorbis_headers_and_data() {
        let pages = vorbis_stream(5, "Song", 3);
        let mut f = OggFramer::new();
        let out = run(&mut f, &pages.concat()).unwrap();
        assert_eq!(out.len(), 3);
        let h = f.header().unwrap();
        assert_eq!(h.id, 1);
        assert_eq!(h.data, [pages[0].clone(), pages[1].clone()].concat());
        for (b, p) in out.iter().zip(&pages[2..]) {
            assert_eq!(&b.data[..], &p[..]);
            assert!(b.start.is_clean());
            assert!(Arc::ptr_eq(b.header.as_ref().unwrap(), &h));
        }
        let info = f.info();
        assert_eq!(info.codec.as_deref(), Some("Vorbis"));
        assert_eq!(info.subtype.as_deref(), Some("Vorbis"));
        assert_eq!(
            (info.samplerate, info.channels, info.bitrate),
            (Some(44100), Some(2), Some(128))
        );
        assert_eq!(info.nominal_bitrate, Some(128_000));
        assert_eq!(info.title.as_deref(), Some("Song"));
        assert_eq!(info.artist.as_deref(), Some("Band"));
        assert_eq!(f.dropped_bytes(), 0);
    }

    #[test]
    fn corrupted_crc_resyncs() {
        let pages = vorbis_stream(5, "x", 3);
        let mut bad = pages[2].clone();
        let n = bad.len();
        bad[n - 1] ^= 0xFF;
        let mut input = b"junkOgjunk".to_vec();
        input.extend_from_slice(&pages[0]);
        input.extend_from_slice(&pages[1]);
        input.extend_from_slice(&bad);
        input.extend_from_slice(b"more garbage OggS not a page");
        input.extend_from_slice(&pages[3]);
        let mut f = OggFramer::new();
        let out = run(&mut f, &input).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(&out[0].data[..], &pages[3][..]);
        assert_eq!(f.dropped_bytes(), (10 + bad.len() + 28) as u64);
    }

    #[test]
    fn opus_stream() {
        let mut head = b"OpusHead\x01\x02".to_vec();
        head.extend_from_slice(&312u16.to_le_bytes());
        head.extend_from_slice(&44100u32.to_le_bytes());
        head.extend_from_slice(&[0, 0, 0]);
        let mut tags = b"OpusTags".to_vec();
        tags.extend(comments("libopus", &["Title=Opus Song"]));
        let pages = [
            pg(FLAG_BOS, 1, 0, &full(&[&head])),
            pg(0, 1, 1, &full(&[&tags])),
            pg(0, 1, 2, &full(&[&[0xfc, 1, 2], &[0xfc, 3]])),
        ];
        let mut f = OggFramer::new();
        let out = run(&mut f, &pages.concat()).unwrap();
        assert_eq!(out.len(), 1);
        assert!(out[0].start.is_clean());
        assert_eq!(f.header().unwrap().data, pages[..2].concat());
        let info = f.info();
        assert_eq!(info.codec.as_deref(), Some("Opus"));
        assert_eq!((info.samplerate, info.channels), (Some(48000), Some(2)));
        assert_eq!(info.title.as_deref(), Some("Opus Song"));
    }

    #[test]
    fn flac_stream_with_unknown_header_count() {
        let mut bos = b"\x7fFLAC\x01\x00\x00\x00fLaC".to_vec();
        bos.extend_from_slice(&[0x00, 0, 0, 34]);
        let mut si = vec![0u8; 34];
        // 44100 Hz = 0x0AC44, 2 channels, 16 bits.
        si[10] = 0x0A;
        si[11] = 0xC4;
        si[12] = 0x42;
        si[13] = 0xF0;
        bos.extend_from_slice(&si);
        let mut vc = vec![0x84, 0, 0, 0];
        vc.extend(comments("flac", &["ARTIST=A"]));
        let pages = [
            pg(FLAG_BOS, 9, 0, &full(&[&bos])),
            pg(0, 9, 1, &full(&[&vc])),
            pg(0, 9, 2, &full(&[&[0xFF, 0xF8, 1, 2]])),
        ];
        let mut f = OggFramer::new();
        let out = run(&mut f, &pages.concat()).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(f.header().unwrap().data, pages[..2].concat());
        let info = f.info();
        assert_eq!(info.codec.as_deref(), Some("FLAC"));
        assert_eq!((info.samplerate, info.channels), (Some(44100), Some(2)));
        assert_eq!(info.artist.as_deref(), Some("A"));
        assert_eq!(info.flac_version, Some((1, 0)));
    }

    #[test]
    fn chain_change_gets_new_header() {
        let a = vorbis_stream(1, "First", 2);
        let b = vorbis_stream(2, "Second", 2);
        let mut f = OggFramer::new();
        let out = run(&mut f, &[a.concat(), b.concat()].concat()).unwrap();
        assert_eq!(out.len(), 4);
        let ids: Vec<u64> = out.iter().map(|b| b.header.as_ref().unwrap().id).collect();
        assert_eq!(ids, [1, 1, 2, 2]);
        assert_eq!(out[2].header.as_ref().unwrap().data, b[..2].concat());
        assert_eq!(f.header().unwrap().id, 2);
        assert_eq!(f.info().title.as_deref(), Some("Second"));
    }

    #[test]
    fn every_chain_is_counted_even_with_the_same_tags() {
        let mut f = OggFramer::new();
        run(&mut f, &vorbis_stream(1, "Same", 1).concat()).unwrap();
        assert_eq!(
            (f.info().chains, f.info().title.as_deref()),
            (1, Some("Same"))
        );
        run(&mut f, &vorbis_stream(2, "Same", 1).concat()).unwrap();
        assert_eq!(
            (f.info().chains, f.info().title.as_deref()),
            (2, Some("Same"))
        );
        assert_eq!(f.info().artist.as_deref(), Some("Band"));
    }

    #[test]
    fn first_title_counts_and_untagged_chain_has_none() {
        let mut p = b"\x03vorbis".to_vec();
        p.extend(comments("x", &["title=One", "TITLE=Two", "Artist=A"]));
        let mut info = CodecInfo::default();
        read_comments(&p[7..], &mut info);
        assert_eq!(
            (info.title.as_deref(), info.artist.as_deref()),
            (Some("One"), Some("A"))
        );
        // A truncated block still yields the entries before the cut.
        let mut info = CodecInfo::default();
        read_comments(&p[7..p.len() - 3], &mut info);
        assert_eq!((info.title.as_deref(), info.artist), (Some("One"), None));
        // A new chain starts without the old chain's tags.
        let mut f = OggFramer::new();
        run(&mut f, &vorbis_stream(1, "Tagged", 1).concat()).unwrap();
        f.new_chain();
        assert_eq!((f.info().title.as_deref(), f.info().chains), (None, 1));
    }

    #[test]
    fn restart_mid_header_with_same_serial() {
        let a = vorbis_stream(7, "old", 2);
        let b = vorbis_stream(7, "new", 2);
        let mut f = OggFramer::new();
        let out = run(&mut f, &[a[0].clone(), b.concat()].concat()).unwrap();
        assert_eq!(out.len(), 2);
        let h = f.header().unwrap();
        assert_eq!((h.id, &h.data[..]), (1, &b[..2].concat()[..]));
        assert_eq!(f.info().title.as_deref(), Some("new"));
    }

    #[test]
    fn theora_vorbis_start_points() {
        let mut th = b"\x80theora\x03\x02\x01".to_vec();
        th.extend_from_slice(&[0, 40, 0, 30]); // macroblocks
        th.extend_from_slice(&[0, 2, 0x80, 0, 1, 0xE0, 0, 0]); // 640x480 at 0,0
        th.extend_from_slice(&25u32.to_be_bytes());
        th.extend_from_slice(&1u32.to_be_bytes());
        th.extend_from_slice(&[0, 0, 1, 0, 0, 1, 0]); // aspect 1:1, colour space
        th.extend_from_slice(&[0x01, 0xE2, 0x40]); // target bitrate 123456
        th.push(37 << 2); // quality 37
        th.resize(42, 0);
        let th_c = b"\x81theora-comments".to_vec();
        let th_s = b"\x82theora-setup".to_vec();
        let v = vorbis_stream(2, "t", 0);
        let pages = vec![
            pg(FLAG_BOS, 1, 0, &full(&[&th])),
            v[0].clone(),
            pg(0, 1, 1, &full(&[&th_c, &th_s])),
            v[1].clone(),
            pg(0, 1, 2, &full(&[&[0x00, 1, 2]])), // keyframe
            pg(0, 2, 2, &full(&[&[0x00, 9]])),    // audio
            pg(0, 1, 3, &full(&[&[0x40, 1]])),    // inter frame
            pg(0, 1, 4, &full(&[&[]])),           // dropped frame
            pg(FLAG_CONTINUED, 1, 5, &full(&[&[0x00, 1]])), // continuation
            pg(0, 1, 6, &full(&[&[0x00, 7]])),    // keyframe
        ];
        let mut f = OggFramer::new();
        let out = run(&mut f, &pages.concat()).unwrap();
        let starts: Vec<bool> = out.iter().map(|b| b.start.is_clean()).collect();
        assert_eq!(starts, [true, false, false, false, false, true]);
        assert_eq!(f.header().unwrap().data, pages[..4].concat());
        let info = f.info();
        assert_eq!(info.subtype.as_deref(), Some("Vorbis/Theora"));
        assert_eq!(info.codec.as_deref(), Some("Vorbis"));
        assert_eq!(
            (info.video_width, info.video_height),
            (Some(640), Some(480))
        );
        assert_eq!(info.frame_rate, Some(25.0));
        assert_eq!(
            (info.video_bitrate, info.video_quality),
            (Some(123456), Some(37))
        );
    }

    /// Theora ident, comment and setup header pages of stream `serial` (640x480, 25 fps).
    fn theora_header_pages(serial: u32) -> Vec<Vec<u8>> {
        let mut th = b"\x80theora\x03\x02\x01".to_vec();
        th.extend_from_slice(&[0, 40, 0, 30, 0, 2, 0x80, 0, 1, 0xE0, 0, 0]);
        th.extend_from_slice(&25u32.to_be_bytes());
        th.extend_from_slice(&1u32.to_be_bytes());
        th.resize(42, 0);
        vec![
            pg(FLAG_BOS, serial, 0, &full(&[&th])),
            pg(
                0,
                serial,
                1,
                &full(&[b"\x81theora-comments", b"\x82theora-setup"]),
            ),
        ]
    }

    fn key(n: u8, len: usize) -> Vec<u8> {
        let mut p = vec![0x00, n];
        p.resize(len, n);
        p
    }

    fn delta(n: u8, len: usize) -> Vec<u8> {
        let mut p = vec![0x40, n];
        p.resize(len, n);
        p
    }

    /// The complete packets of one logical stream as a decoder joining at `pages[0]` sees
    /// them (a packet continued from before the first page is dropped, as libogg does).
    fn packets(pages: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut partial: Option<Vec<u8>> = None;
        for p in pages {
            let (hdr, len) = parse_page(p).unwrap().unwrap();
            assert_eq!(len, p.len());
            for piece in packet_pieces(p, &hdr) {
                let bytes = &p[piece.range.clone()];
                let mut packet = match (piece.continued, partial.take()) {
                    (true, Some(mut prev)) => {
                        prev.extend_from_slice(bytes);
                        prev
                    }
                    (true, None) => continue,
                    (false, _) => bytes.to_vec(),
                };
                if piece.complete {
                    out.push(std::mem::take(&mut packet));
                } else {
                    partial = Some(packet);
                }
            }
        }
        out
    }

    /// Frame the Theora header pages plus `data` pages; returns the data blocks.
    fn theora_blocks(data: &[Vec<u8>]) -> Vec<Block> {
        let input = [theora_header_pages(4).concat(), data.concat()].concat();
        let mut f = OggFramer::new();
        let out = run(&mut f, &input).unwrap();
        assert_eq!(out.len(), data.len());
        out
    }

    #[test]
    fn vlc_keyframe_at_the_end_of_a_page() {
        // VLC's Ogg muxer: delta frames, then the keyframe last on the page.
        let (k, d1, d2) = (key(9, 700), delta(1, 40), delta(2, 50));
        let page = page(0, 4, 2, 640, &[(&d1, true), (&d2, true), (&k, true)]);
        let next = pg(0, 4, 3, &full(&[&delta(3, 30)]));
        let out = theora_blocks(&[page.clone(), next.clone()]);
        assert_eq!(out[0].start, Start::Clean);
        assert_eq!(
            &out[0].data[..],
            &page[..],
            "the queue keeps the page as sent"
        );
        assert_eq!(out[1].start, Start::Boundary);
        let copy = out[0].start_data.as_deref().expect("a start copy");
        let (hdr, len) = parse_page(copy).unwrap().expect("a whole page, CRC valid");
        assert_eq!(len, copy.len());
        assert_eq!(
            (hdr.serial, hdr.sequence, hdr.granule_position),
            (4, 2, 640)
        );
        assert!(!hdr.is_continued() && !hdr.is_bos());
        assert_eq!(packets(&[copy, &next]), [k, delta(3, 30)]);
    }

    #[test]
    fn keyframe_in_the_middle_of_a_page() {
        let (k, d1, d2) = (key(5, 300), delta(1, 40), delta(2, 600));
        let page = page(0, 4, 7, 99, &[(&d1, true), (&k, true), (&d2, true)]);
        let out = theora_blocks(&[page]);
        let copy = out[0].start_data.as_deref().expect("a start copy");
        let (hdr, _) = parse_page(copy).unwrap().unwrap();
        assert_eq!((hdr.sequence, hdr.granule_position), (7, 99));
        assert_eq!(packets(&[copy]), [k, d2]);
    }

    #[test]
    fn keyframe_spanning_pages() {
        // The keyframe begins after a delta frame and ends on the next page.
        let k = key(3, 255 * 3 + 20);
        let d = delta(1, 40);
        let first = page(0, 4, 5, 320, &[(&d, true), (&k[..510], false)]);
        let second = page(FLAG_CONTINUED, 4, 6, 384, &[(&k[510..], true)]);
        let out = theora_blocks(&[first.clone(), second.clone()]);
        assert_eq!(out[0].start, Start::Clean);
        assert_eq!(
            out[1].start,
            Start::Boundary,
            "a continued page starts nothing"
        );
        let copy = out[0].start_data.as_deref().expect("a start copy");
        let (hdr, _) = parse_page(copy).unwrap().unwrap();
        // No packet ends on the copy any more.
        assert_eq!(hdr.granule_position, -1);
        assert_eq!(packets(&[copy, &second]), std::slice::from_ref(&k));
        // Joining on the original page instead would give the delta frame first.
        assert_eq!(packets(&[&first, &second]), [d, k]);
    }

    #[test]
    fn keyframe_after_a_continued_packet() {
        let tail = delta(1, 30);
        let k = key(2, 100);
        let page = page(FLAG_CONTINUED, 4, 9, 200, &[(&tail, true), (&k, true)]);
        let out = theora_blocks(&[page]);
        assert_eq!(out[0].start, Start::Clean);
        let copy = out[0].start_data.as_deref().expect("a start copy");
        assert!(!parse_page(copy).unwrap().unwrap().0.is_continued());
        assert_eq!(packets(&[copy]), [k]);
    }

    #[test]
    fn keyframe_first_on_its_page_needs_no_copy() {
        // ffmpeg's Ogg muxer puts each keyframe first on a fresh page.
        let out = theora_blocks(&[
            pg(0, 4, 2, &full(&[&key(1, 50), &delta(2, 20)])),
            pg(0, 4, 3, &full(&[&delta(3, 20), &[]])),
        ]);
        assert_eq!(out[0].start, Start::Clean);
        assert!(out[0].start_data.is_none());
        assert_eq!(out[1].start, Start::Boundary);
        assert!(out[1].start_data.is_none());
    }

    /// The pages of `data` (whole pages back to back), each checked: CRC valid, nothing left.
    fn split_pages(data: &[u8]) -> Vec<(PageHeader, Vec<u8>)> {
        let mut out = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let (hdr, len) = parse_page(rest)
                .expect("a valid page, CRC included")
                .expect("a whole page");
            out.push((hdr, rest[..len].to_vec()));
            rest = &rest[len..];
        }
        out
    }

    /// The comment entries of a Vorbis comment header packet.
    fn entries_of(packet: &[u8]) -> Vec<String> {
        comment_entries(&packet[7..])
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    String::from_utf8_lossy(k),
                    String::from_utf8_lossy(v)
                )
            })
            .collect()
    }

    /// A Vorbis chain with a GENRE tag besides TITLE and ARTIST, headers as libvorbis lays
    /// them out, and data pages with granule positions.
    fn tagged_vorbis(serial: u32, data_pages: u32) -> (Vec<Vec<u8>>, [Vec<u8>; 3]) {
        let ident = vorbis_ident(2, 44100, 128000);
        let comment = vorbis_comment(&["TITLE=Old", "GENRE=Noise", "artist=Band"]);
        let setup = vorbis_setup(300);
        let mut pages = vec![
            pg(FLAG_BOS, serial, 0, &full(&[&ident])),
            pg(0, serial, 1, &full(&[&comment, &setup])),
        ];
        for i in 0..data_pages {
            let packet = [0x00, i as u8, 7, 7, 7];
            pages.push(page(
                0,
                serial,
                2 + i,
                1024 * (i as i64 + 1),
                &[(&packet, true)],
            ));
        }
        (pages, [ident, comment, setup])
    }

    #[test]
    fn retitle_starts_a_new_vorbis_chain_with_the_new_tags() {
        let (pages, [ident, comment, setup]) = tagged_vorbis(5, 4);
        let mut f = OggFramer::new();
        let before = run(&mut f, &pages[..3].concat()).unwrap();
        assert_eq!(before[0].header.as_ref().unwrap().id, 1);
        let mut eos = Vec::new();
        assert!(f.retitle(Some("New Song"), Some("New Artist"), &mut eos));
        // The stream listeners have ends first: an empty page, still under the old header.
        assert_eq!(eos.len(), 1);
        let (end, len) = parse_page(&eos[0].data).unwrap().unwrap();
        assert_eq!(len, eos[0].data.len());
        assert_eq!(
            (end.serial, end.sequence, end.granule_position, end.segments),
            (5, 3, -1, 0)
        );
        assert!(end.is_eos() && !end.is_bos());
        assert_eq!(eos[0].header.as_ref().unwrap().id, 1);
        assert!(
            !eos[0].start.is_start(),
            "nobody starts listening on an end"
        );
        let h = f.header().unwrap();
        assert_eq!(h.id, 2, "listeners are sent the new header");
        assert_eq!(f.info().chains, 1, "an admin title is not a source chain");
        assert_eq!(
            (f.info().title.as_deref(), f.info().artist.as_deref()),
            (Some("New Song"), Some("New Artist"))
        );

        let header = split_pages(&h.data);
        let serial = header[0].0.serial;
        assert_ne!(serial, 5);
        assert!(header[0].0.is_bos() && header[0].0.granule_position == 0);
        assert!(header[1..].iter().all(|(hdr, _)| !hdr.is_bos()));
        for (i, (hdr, _)) in header.iter().enumerate() {
            assert_eq!((hdr.serial, hdr.sequence), (serial, i as u32));
        }
        let first: Vec<&[u8]> = header[..1].iter().map(|(_, p)| &p[..]).collect();
        assert_eq!(
            packets(&first),
            [ident],
            "the ident packet alone on the BOS page"
        );
        let rest: Vec<&[u8]> = header[1..].iter().map(|(_, p)| &p[..]).collect();
        let rest = packets(&rest);
        assert_eq!(rest.len(), 2);
        assert_eq!(rest[1], setup);
        let new_comment = &rest[0];
        assert!(
            new_comment.starts_with(b"\x03vorbis\x04\0\0\0test"),
            "vendor kept"
        );
        assert_eq!(new_comment.last(), Some(&1), "framing bit kept");
        assert_eq!(
            entries_of(new_comment),
            ["GENRE=Noise", "ARTIST=New Artist", "TITLE=New Song"]
        );
        assert_eq!(entries_of(&comment)[0], "TITLE=Old");
        let mut info = CodecInfo::default();
        read_comments(&new_comment[7..], &mut info);
        assert_eq!(info.title.as_deref(), Some("New Song"));

        // Every later page of the source becomes a page of the new chain: same packets, the
        // new serial, sequence numbers following the header pages, granule positions
        // counted from the new chain's start (the last one before it was 1024).
        let after = run(&mut f, &pages[3..].concat()).unwrap();
        assert_eq!(after.len(), 3);
        let next_seq = header.len() as u32;
        for (i, (block, src)) in after.iter().zip(&pages[3..]).enumerate() {
            assert!(Arc::ptr_eq(block.header.as_ref().unwrap(), &h));
            assert!(block.start.is_clean());
            let (hdr, len) = parse_page(&block.data).unwrap().unwrap();
            let (orig, _) = parse_page(src).unwrap().unwrap();
            assert_eq!(len, block.data.len());
            assert_eq!(
                (
                    hdr.serial,
                    hdr.sequence,
                    hdr.granule_position,
                    hdr.header_type
                ),
                (
                    serial,
                    next_seq + i as u32,
                    orig.granule_position - 1024,
                    orig.header_type
                )
            );
            assert_eq!(packets(&[&block.data]), packets(&[src]));
        }
    }

    #[test]
    fn retitle_with_song_only_drops_the_artist() {
        let (pages, _) = tagged_vorbis(5, 1);
        let mut f = OggFramer::new();
        run(&mut f, &pages.concat()).unwrap();
        assert!(f.retitle(Some("A - B"), None, &mut Vec::new()));
        let header = split_pages(&f.header().unwrap().data);
        let rest: Vec<&[u8]> = header[1..].iter().map(|(_, p)| &p[..]).collect();
        assert_eq!(
            entries_of(&packets(&rest)[0]),
            ["GENRE=Noise", "TITLE=A - B"]
        );
    }

    #[test]
    fn retitled_chain_begins_on_a_packet() {
        let (mut pages, _) = tagged_vorbis(5, 0);
        // A 600-byte packet over three pages, the last also carrying the next packet.
        let long = vec![0x00; 600];
        let next = [0x00, 1, 2];
        pages.push(page(0, 5, 2, -1, &[(&long[..255], false)]));
        pages.push(page(FLAG_CONTINUED, 5, 3, -1, &[(&long[255..510], false)]));
        pages.push(page(
            FLAG_CONTINUED,
            5,
            4,
            4096,
            &[(&long[510..], true), (&next, true)],
        ));
        pages.push(page(0, 5, 5, 5120, &[(&[0x00, 9], true)]));
        let mut f = OggFramer::new();
        run(&mut f, &pages[..3].concat()).unwrap();
        assert!(f.retitle(Some("T"), None, &mut Vec::new()));
        let header_pages = split_pages(&f.header().unwrap().data).len() as u32;
        let out = run(&mut f, &pages[3..].concat()).unwrap();
        // The page holding only the middle of the packet is dropped; the next one is cut to
        // begin with the packet after it.
        assert_eq!(out.len(), 2);
        let (hdr, _) = parse_page(&out[0].data).unwrap().unwrap();
        assert!(!hdr.is_continued(), "the new chain begins on a packet");
        assert_eq!((hdr.sequence, hdr.granule_position), (header_pages, 4096));
        assert_eq!(packets(&[&out[0].data]), [next.to_vec()]);
        let (hdr2, _) = parse_page(&out[1].data).unwrap().unwrap();
        assert_eq!(hdr2.sequence, header_pages + 1);
        assert_eq!(packets(&[&out[1].data]), [vec![0x00, 9]]);
        assert_eq!(f.dropped_bytes(), pages[3].len() as u64);

        // Once the new chain runs, continued pages pass with their flag.
        let mut f = OggFramer::new();
        run(&mut f, &pages[..2].concat()).unwrap();
        assert!(f.retitle(Some("T"), None, &mut Vec::new()));
        let out = run(&mut f, &pages[2..].concat()).unwrap();
        assert_eq!(out.len(), 4);
        let flags: Vec<bool> = out
            .iter()
            .map(|b| parse_page(&b.data).unwrap().unwrap().0.is_continued())
            .collect();
        assert_eq!(flags, [false, true, true, false]);
        let data: Vec<&[u8]> = out.iter().map(|b| &b.data[..]).collect();
        assert_eq!(packets(&data), [long, next.to_vec(), vec![0x00, 9]]);
    }

    #[test]
    fn a_source_chain_ends_the_rewriting() {
        let (mut pages, _) = tagged_vorbis(5, 2);
        pages.push(page(FLAG_EOS, 5, 4, 4096, &[(&[0x00, 3], true)]));
        let mut f = OggFramer::new();
        run(&mut f, &pages[..3].concat()).unwrap();
        let mut eos = Vec::new();
        assert!(f.retitle(Some("Admin"), None, &mut eos));
        assert_eq!(eos.len(), 1);
        let first = f.header().unwrap().data.clone();
        // A second update picks yet another serial and starts over. Nothing of the first
        // new chain went out, so there is nothing more to end.
        assert!(f.retitle(Some("Admin 2"), None, &mut eos));
        assert_eq!(eos.len(), 1);
        let second = split_pages(&f.header().unwrap().data);
        let serials = [5, split_pages(&first)[0].0.serial, second[0].0.serial];
        assert!(serials[0] != serials[1] && serials[1] != serials[2] && serials[0] != serials[2]);
        let out = run(&mut f, &pages[3..].concat()).unwrap();
        let (hdr, _) = parse_page(&out[0].data).unwrap().unwrap();
        assert_eq!(
            (hdr.serial, hdr.sequence),
            (serials[2], second.len() as u32)
        );
        // The source's own end of stream ends the new chain too.
        let (last, _) = parse_page(&out[1].data).unwrap().unwrap();
        assert!(last.is_eos() && last.serial == serials[2]);

        let next = vorbis_stream(6, "Source Title", 2);
        let out = run(&mut f, &next.concat()).unwrap();
        assert_eq!(f.header().unwrap().id, 4);
        assert_eq!(
            f.header().unwrap().data,
            next[..2].concat(),
            "the source's own header"
        );
        for (block, src) in out.iter().zip(&next[2..]) {
            assert_eq!(&block.data[..], &src[..], "passed through untouched");
        }
        assert_eq!(
            (f.info().chains, f.info().title.as_deref()),
            (2, Some("Source Title"))
        );
    }

    #[test]
    fn retitle_is_refused_where_icecast2_leaves_the_stream_alone() {
        // Theora+Vorbis: two streams.
        let v = vorbis_stream(2, "t", 0);
        let th = theora_header_pages(1);
        let input = [th[0].clone(), v[0].clone(), th[1].clone(), v[1].clone()].concat();
        let mut f = OggFramer::new();
        run(&mut f, &input).unwrap();
        assert!(f.header().is_some());
        let mut out = Vec::new();
        assert!(!f.retitle(Some("x"), None, &mut out));
        assert_eq!(f.header().unwrap().id, 1);
        assert!(out.is_empty());
        // Opus: mplayer cannot follow an Opus chain change.
        let mut head = b"OpusHead\x01\x02".to_vec();
        head.extend_from_slice(&[0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 0]);
        let mut tags = b"OpusTags".to_vec();
        tags.extend(comments("libopus", &["TITLE=Old"]));
        let opus = [
            pg(FLAG_BOS, 1, 0, &full(&[&head])),
            pg(0, 1, 1, &full(&[&tags])),
            page(0, 1, 2, 960, &[(&[0xfc, 1], true)]),
        ];
        let mut f = OggFramer::new();
        assert_eq!(run(&mut f, &opus.concat()).unwrap().len(), 1);
        assert!(!f.retitle(Some("x"), None, &mut out));
        // Headers not complete yet.
        let mut f = OggFramer::new();
        run(&mut f, &vorbis_stream(3, "a", 0)[0]).unwrap();
        assert!(!f.retitle(Some("x"), None, &mut Vec::new()));
        // FLAC passes through.
        let mut bos = b"\x7fFLAC\x01\x00\x00\x01fLaC".to_vec();
        bos.extend_from_slice(&[0x00, 0, 0, 34]);
        bos.resize(bos.len() + 34, 0);
        let mut vc = vec![0x84, 0, 0, 0];
        vc.extend(comments("flac", &["TITLE=A"]));
        let mut f = OggFramer::new();
        run(
            &mut f,
            &[
                pg(FLAG_BOS, 9, 0, &full(&[&bos])),
                pg(0, 9, 1, &full(&[&vc])),
            ]
            .concat(),
        )
        .unwrap();
        assert!(f.header().is_some());
        assert!(!f.retitle(Some("x"), None, &mut Vec::new()));
    }

    #[test]
    fn retitle_with_a_comment_larger_than_a_page() {
        // Cover art makes the comment header span pages; the rebuilt one must too.
        let art = format!("METADATA_BLOCK_PICTURE={}", "A".repeat(70_000));
        let ident = vorbis_ident(2, 44100, 0);
        let comment = vorbis_comment(&[&art, "TITLE=Old"]);
        let setup = vorbis_setup(4000);
        let mut input = pg(FLAG_BOS, 8, 0, &full(&[&ident]));
        let mut seq = 1;
        // Each packet in pieces of 200 lacing values, a page each.
        for p in [&comment, &setup] {
            for (i, piece) in p.chunks(255 * 200).enumerate() {
                let done = (i + 1) * 255 * 200 >= p.len();
                let flags = if i > 0 { FLAG_CONTINUED } else { 0 };
                let granule = if done { 0 } else { -1 };
                input.extend(page(flags, 8, seq, granule, &[(piece, done)]));
                seq += 1;
            }
        }
        input.extend(page(0, 8, seq, 2048, &[(&[0x00, 1], true)]));
        let mut f = OggFramer::new();
        assert_eq!(run(&mut f, &input).unwrap().len(), 1);
        assert!(f.retitle(Some("Art Song"), None, &mut Vec::new()));
        let header = split_pages(&f.header().unwrap().data);
        assert!(header.len() >= 3);
        assert!(header.iter().all(|(h, _)| h.segments as usize <= 255));
        let all: Vec<&[u8]> = header.iter().map(|(_, p)| &p[..]).collect();
        let got = packets(&all);
        assert_eq!(got.len(), 3);
        assert_eq!((&got[0], &got[2]), (&ident, &setup));
        assert_eq!(entries_of(&got[1]), [art, "TITLE=Art Song".to_string()]);
        // Pages where no packet ends carry granule -1, the others 0.
        for (h, p) in &header {
            let ends = packet_pieces(p, h).any(|piece| piece.complete);
            assert_eq!(h.granule_position, if ends { 0 } else { -1 });
        }
    }

    #[test]
    fn packets_spanning_pages() {
        // Setup header of 600 bytes split over pages 1..3; a data packet split over 2 pages.
        let setup = vorbis_setup(600);
        let pages = [
            pg(FLAG_BOS, 3, 0, &full(&[&vorbis_ident(1, 22050, 0)])),
            pg(
                0,
                3,
                1,
                &[(vorbis_comment(&[]), true), (setup[..255].to_vec(), false)],
            ),
            pg(FLAG_CONTINUED, 3, 2, &[(setup[255..510].to_vec(), false)]),
            pg(FLAG_CONTINUED, 3, 3, &[(setup[510..].to_vec(), true)]),
            pg(0, 3, 4, &[(vec![0; 255], false)]),
            pg(
                FLAG_CONTINUED,
                3,
                5,
                &[(vec![0; 10], true), (vec![0; 3], true)],
            ),
        ];
        let mut f = OggFramer::new();
        let out = run(&mut f, &pages.concat()).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(f.header().unwrap().data, pages[..4].concat());
        assert_eq!(f.info().channels, Some(1));
        assert_eq!(f.info().bitrate, None);
    }

    #[test]
    fn byte_at_a_time_equals_one_push() {
        let mut input = b"xx".to_vec();
        input.extend(vorbis_stream(1, "a", 3).concat());
        input.extend(b"garbage");
        input.extend(vorbis_stream(2, "b", 2).concat());
        let mut big = OggFramer::new();
        let a = run(&mut big, &input).unwrap();
        let mut small = OggFramer::new();
        let mut b = Vec::new();
        for byte in &input {
            small.push(std::slice::from_ref(byte), &mut b).unwrap();
        }
        let key = |v: &[Block]| -> Vec<(Bytes, Start, Option<u64>)> {
            v.iter()
                .map(|b| (b.data.clone(), b.start, b.header.as_ref().map(|h| h.id)))
                .collect()
        };
        assert_eq!(key(&a), key(&b));
        assert_eq!(big.header(), small.header());
        assert_eq!(big.info(), small.info());
        assert_eq!(big.dropped_bytes(), small.dropped_bytes());
    }

    #[test]
    fn unknown_bos_is_refused() {
        let p = pg(FLAG_BOS, 1, 0, &full(&[b"NotACodec"]));
        assert_eq!(
            run(&mut OggFramer::new(), &p).unwrap_err(),
            FormatError::UnknownOggCodec
        );
    }

    #[test]
    fn too_many_streams() {
        let mut f = OggFramer::new();
        let mut input = Vec::new();
        for serial in 0..11 {
            input.extend(pg(FLAG_BOS, serial, 0, &full(&[&vorbis_ident(2, 8000, 0)])));
        }
        assert_eq!(
            run(&mut f, &input).unwrap_err(),
            FormatError::TooManyStreams
        );
    }

    #[test]
    fn truncated_and_garbage_input() {
        let pages = vorbis_stream(1, "a", 2).concat();
        for cut in 0..pages.len() {
            let mut f = OggFramer::new();
            let mut out = Vec::new();
            let _ = f.push(&pages[..cut], &mut out);
            f.flush(&mut out);
            let _ = f.push(&pages[cut..], &mut out);
        }
        let mut f = OggFramer::new();
        let mut out = Vec::new();
        f.push(b"OggS\0\x02\xff\xff\xff\xff", &mut out).unwrap();
        f.push(&[0xff; 100], &mut out).unwrap();
        assert!(out.is_empty());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            data in proptest::collection::vec(any::<u8>(), 0..4096),
            chunk in 1usize..300,
        ) {
            let mut f = OggFramer::new();
            let mut out = Vec::new();
            for c in data.chunks(chunk) {
                if f.push(c, &mut out).is_err() {
                    break;
                }
            }
            f.flush(&mut out);
        }

        #[test]
        fn valid_stream_with_noise_never_panics(
            noise in proptest::collection::vec(any::<u8>(), 0..64),
            at in 0usize..2000,
            chunk in 1usize..200,
        ) {
            let mut input = vorbis_stream(1, "a", 4).concat();
            let at = at.min(input.len());
            input.splice(at..at, noise);
            let mut f = OggFramer::new();
            let mut out = Vec::new();
            for c in input.chunks(chunk) {
                if f.push(c, &mut out).is_err() {
                    break;
                }
            }
        }
    }
}
