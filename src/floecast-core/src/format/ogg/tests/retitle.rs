//! Tests of the admin title rewrite: the new chain's header pages, the source's pages
//! renumbered into it, and the streams it leaves alone.

use super::*;

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
