//! What the codec packets of an Ogg stream say: which codec a BOS packet starts, when its
//! header packets end, the stats and Vorbis comments they carry, and where a Theora keyframe
//! begins. Reads packets only; never writes pages.

use super::page::{PAGE_HEADER_LEN, PageHeader, packet_pieces};
use super::{CodecInfo, MAX_HEADER_PACKET_PREFIX};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Codec {
    Vorbis,
    Theora,
    Opus,
    Flac,
    Speex,
    Skeleton,
    Kate,
}

impl Codec {
    pub(super) fn identify(packet: &[u8]) -> Option<Codec> {
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

    pub(super) fn name(self) -> &'static str {
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

    pub(super) fn is_audio(self) -> bool {
        matches!(
            self,
            Codec::Vorbis | Codec::Opus | Codec::Flac | Codec::Speex
        )
    }
}

/// How a stream's header section ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeaderEnd {
    /// After this many header packets.
    Count(u32),
    /// FLAC with an unknown count: at the first audio packet (first byte 0xFF).
    FirstAudio,
    /// Skeleton: at the stream's EOS page.
    Eos,
}

pub(super) struct LogicalStream {
    pub(super) serial: u32,
    pub(super) codec: Codec,
    pub(super) end: HeaderEnd,
    pub(super) headers_seen: u32,
    pub(super) done: bool,
    pub(super) eos: bool,
    /// Prefix of a header packet spanning pages.
    pub(super) partial: Option<Vec<u8>>,
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

/// Index of the lacing value where the first Theora keyframe packet of `page` begins, if one
/// does. A Theora data packet has bit 0x80 of its first byte clear, a keyframe bit 0x40 too;
/// an empty packet is a dropped frame.
pub(super) fn theora_keyframe_segment(page: &[u8], hdr: &PageHeader) -> Option<usize> {
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

/// Feed one page of a stream still collecting headers. Returns whether the page carries any
/// header packet (then the whole page is a header page: a page that ends the headers and
/// also starts data is rare and is sent as header).
pub(super) fn collect_headers(
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

/// Parse a Vorbis comment block (vendor string, then `KEY=value` entries), tolerating
/// truncation. The first TITLE and the first ARTIST count, as icecast2 queries them; a
/// block without them leaves what another stream of the chain said.
pub(super) fn read_comments(p: &[u8], info: &mut CodecInfo) {
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
pub(super) fn comment_entries(p: &[u8]) -> Vec<(&[u8], &[u8])> {
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

pub(super) fn read_u32le(p: &[u8], at: usize) -> Option<u32> {
    let b = p.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_u32be(p: &[u8], at: usize) -> Option<u32> {
    let b = p.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

pub(super) fn read_u16be(p: &[u8], at: usize) -> Option<u16> {
    let b = p.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}
