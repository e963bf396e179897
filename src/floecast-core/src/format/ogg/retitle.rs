//! The admin title update of an Ogg stream: a new chain with the source's header packets
//! under a fresh serial and a rebuilt comment header, and the source's later pages renumbered
//! into it. Only single-stream Vorbis is rewritten, as icecast2 does.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::codec::{Codec, read_u32le};
use super::page::{
    FLAG_BOS, FLAG_EOS, PAGE_HEADER_LEN, PageHeader, copy_page, packets_of, write_packets,
    write_page,
};
use super::{Block, OggFramer, Start, StreamHeader};

/// The chain an admin title update started in place of the source's single-stream chain:
/// listeners get its header pages, then each data page of the source renumbered into it.
pub(super) struct Retitled {
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

impl Retitled {
    /// The source's data page `page` as a page of the new chain, or `None` when it holds
    /// nothing the new chain can use. The new chain must begin on a packet: a continued
    /// packet piece leading the first data page is cut off, as its beginning went out in the
    /// old chain (the granule stays right: it marks the end of the last packet on the page).
    /// Granule positions count from the chain's beginning.
    pub(super) fn rewrite(&mut self, page: &[u8], hdr: &PageHeader) -> Option<Bytes> {
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

impl OggFramer {
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
    pub(super) fn start_retitled_chain(
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
        let packets = packets_of(&chain.header_pages);
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
