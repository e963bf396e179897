//! Tests of the Ogg framer, its page parser and builder, the codec header reading and the
//! admin title rewrite, on pages built byte by byte here.

use super::codec::{comment_entries, read_comments};
use super::page::{FLAG_BOS, FLAG_CONTINUED, FLAG_EOS, packets_of};
use super::*;
use proptest::prelude::*;

mod retitle;

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
/// them, each page checked to parse whole.
fn packets(pages: &[&[u8]]) -> Vec<Vec<u8>> {
    for p in pages {
        let (_, len) = parse_page(p).unwrap().unwrap();
        assert_eq!(len, p.len());
    }
    packets_of(pages)
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
