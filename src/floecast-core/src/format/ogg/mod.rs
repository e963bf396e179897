//! Ogg framing: splits a source's Ogg bitstream into pages, takes the codec header pages of
//! each chain out of the data flow into a [`StreamHeader`], and marks the pages a new listener
//! may start on: every page, or, when the chain carries Theora video, the pages where a
//! keyframe begins (with a copy of the page cut down to start at the keyframe when it is not
//! the page's first packet).
//!
//! An admin title update on a single-stream Vorbis chain starts a new chain in the
//! framer, as icecast2 does for Vorbis: the same codec headers under a new serial with a
//! rebuilt comment header, then the source's pages re-serialised ([`OggFramer::retitle`]).
//!
//! The page parser ([`parse_page`], [`PageHeader`], [`packet_pieces`]) is public so other
//! sans-IO consumers (the P2PSP chunker) can reuse it.
//!
//! This file is the framer (chains, held pages, start points); `page` parses and builds
//! pages, `codec` reads what the codec header packets say, `retitle` rebuilds a chain for an
//! admin title update. Nothing here does I/O.

mod codec;
mod page;
mod retitle;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::{Block, CodecInfo, FormatError, Framer, Start, StreamHeader};
use codec::{
    Codec, HeaderEnd, LogicalStream, collect_headers, read_u16be, read_u32le,
    theora_keyframe_segment,
};
pub use page::{
    CAPTURE, MAX_PAGE_SIZE, PAGE_HEADER_LEN, PacketPiece, PacketPieces, PageError, PageHeader,
    crc32_update, find_capture, packet_pieces, page_crc, parse_page,
};
use page::{copy_page, le_array};
use retitle::Retitled;

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

impl Default for OggFramer {
    fn default() -> Self {
        Self::new()
    }
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
