//! Tests of the WebM/Matroska framer: EBML element headers, the stream head, clusters and
//! their keyframe start points, refused streams, on element streams built byte by byte here.

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

/// A P2PSP peer's stream: the header handed over whole (no Cluster after it to end it), then a
/// gap, bytes from inside a Cluster, and after another gap more of them. Each time the framer
/// drops what it cannot walk and goes on at the next Cluster, which it frames as usual.
#[test]
fn a_gap_resynchronises_on_the_next_cluster() {
    let head = head(false);
    let c1 = el(ID_CLUSTER, &cluster_body(0, 3, 50));
    let c2 = el(ID_CLUSTER, &cluster_body(1, 2, 200));
    let c3 = el(ID_CLUSTER, &cluster_body(2, 4, 100));
    let mut f = WebmFramer::new();
    let mut out = Vec::new();
    f.push(&head, &mut out).unwrap();
    assert!(f.header().is_none(), "no Cluster yet: the header may go on");
    f.discontinuity();
    assert_eq!(
        &f.header().expect("the header, at the gap").data[..],
        &head[..]
    );
    // Joined inside c1: its tail is not walkable (sizes from the middle of a block).
    let mid = [&c1[c1.len() / 2..], &c2[..]].concat();
    for piece in mid.chunks(7) {
        f.push(piece, &mut out).unwrap();
    }
    // A chunk lost inside c2... then c3 whole, cut into datagram-sized pieces.
    f.discontinuity();
    let rest = [&c2[c2.len() / 3..], &c3[..]].concat();
    for piece in rest.chunks(30) {
        f.push(piece, &mut out).unwrap();
    }
    f.flush(&mut out);
    let got: Vec<u8> = out.iter().flat_map(|b| b.data.to_vec()).collect();
    assert_eq!(
        got,
        [c2.clone(), c3.clone()].concat(),
        "c2 and c3 whole, nothing else"
    );
    assert_eq!(start_offsets(&out), [0, c2.len()]);
    assert!(
        out.iter()
            .all(|b| b.header.as_deref() == f.header().as_deref())
    );
}

/// A gap before the header's Segment began loses it: the framer waits for a new EBML header
/// and takes nothing before it (not even a Cluster, which no listener could decode).
#[test]
fn a_gap_inside_the_head_waits_for_the_next_ebml_header() {
    let head = head(true);
    let c1 = el_unknown(ID_CLUSTER, &cluster_body(0, 3, 50));
    let mut f = WebmFramer::new();
    let mut out = Vec::new();
    f.push(&head[..10], &mut out).unwrap();
    f.discontinuity();
    f.push(&c1, &mut out).unwrap();
    assert!(out.is_empty() && f.header().is_none());
    let input = [head.clone(), c1.clone()].concat();
    f.push(&input, &mut out).unwrap();
    f.flush(&mut out);
    assert_eq!(&f.header().unwrap().data[..], &head[..]);
    assert_eq!(reassemble(&out), input);
}
