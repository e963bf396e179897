//! Ogg pages: parsing and CRC-checking a page, walking its packet pieces, and writing pages
//! (a renumbered or cut-down copy, packets laid out as libogg does). Pure byte work: no
//! stream state and no I/O.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

/// Fixed part of a page header, before the lacing table.
pub const PAGE_HEADER_LEN: usize = 27;
/// 27 + 255 lacing values + 255 × 255 body bytes.
pub const MAX_PAGE_SIZE: usize = PAGE_HEADER_LEN + 255 + 255 * 255;
/// Capture pattern every page begins with.
pub const CAPTURE: &[u8; 4] = b"OggS";

pub(super) const FLAG_CONTINUED: u8 = 0x01;
pub(super) const FLAG_BOS: u8 = 0x02;
pub(super) const FLAG_EOS: u8 = 0x04;

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

pub(super) fn le_array<const N: usize>(b: &[u8]) -> [u8; N] {
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

/// A copy of `page` renumbered as `(serial, sequence)` that keeps only its packets from
/// lacing value `segment` on. When `segment` > 0 it must begin a packet, and the copy loses
/// the "continued" flag: a decoder starting on it sees the packet at `segment` first (the
/// Theora start copy). Other flags stay; the granule position is `granule` if a packet still
/// ends on the copy, else -1; the CRC is recomputed.
pub(super) fn copy_page(
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
pub(super) fn write_page(
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
pub(super) fn write_packets(
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

/// The complete packets of `pages` (one logical stream's), in order, as a decoder joining at
/// `pages[0]` sees them: a packet continued from before the first page is dropped, as libogg
/// does, and so is one still unfinished at the end. A page that does not parse is skipped.
pub(super) fn packets_of<P: AsRef<[u8]>>(pages: &[P]) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let mut partial: Option<Vec<u8>> = None;
    for page in pages {
        let page = page.as_ref();
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
