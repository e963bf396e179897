//! ICY in-band metadata as relays and SHOUTcast-style sources send it: the demuxer that strips
//! it from the audio (any `icy-metaint`, any read sizes), the StreamTitle parser, and the
//! metadata block the server builds from a title it was given.
#![no_main]

use bytes::BytesMut;
use floecast_core::format::icy::{IcyDemuxer, metadata_block, parse_stream_title};
use floecast_fuzz::{pieces, split_pattern};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&interval, input)) = input.split_first() else {
        return;
    };
    let (pattern, data) = split_pattern(input);
    let metaint = interval as usize * 16;
    let mut whole = IcyDemuxer::new(metaint);
    let (mut audio, mut titles) = (BytesMut::new(), Vec::new());
    whole.push(data, &mut audio, &mut titles);
    let mut cut = IcyDemuxer::new(metaint);
    let (mut cut_audio, mut cut_titles) = (BytesMut::new(), Vec::new());
    for piece in pieces(pattern, data) {
        cut.push(piece, &mut cut_audio, &mut cut_titles);
    }
    assert_eq!(audio, cut_audio, "audio must not depend on the read sizes");
    assert_eq!(titles, cut_titles);
    for t in &titles {
        let _ = parse_stream_title(&t.raw);
        if let Some(title) = &t.title {
            let block = metadata_block(title, t.url.as_deref());
            // A length byte, then that many 16-byte units.
            assert_eq!(block.len(), 1 + block[0] as usize * 16);
        }
    }
    let text = String::from_utf8_lossy(data);
    let _ = parse_stream_title(&text);
    let block = metadata_block(&text, None);
    assert_eq!(block.len(), 1 + block[0] as usize * 16);
});
