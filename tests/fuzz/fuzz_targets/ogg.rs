//! Ogg from a source: page parsing and packet pieces, and the framer that finds start points,
//! caches each chain's headers and rewrites a single-stream Vorbis chain for an admin title
//! update (called part-way through, as an admin request would).
#![no_main]

use floecast_core::format::Framer;
use floecast_core::format::ogg::OggFramer;
use floecast_core::format::ogg::{find_capture, packet_pieces, page_crc, parse_page};
use floecast_fuzz::{pieces, split_pattern};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&when, input)) = input.split_first() else {
        return;
    };
    let (pattern, data) = split_pattern(input);

    // The page layer alone, walking the input as the framer would.
    let mut at = 0;
    while let Some(start) = data.get(at..).and_then(find_capture) {
        let page = &data[at + start..];
        match parse_page(page) {
            Ok(Some((hdr, len))) => {
                let _ = page_crc(&page[..len.min(page.len())]);
                for piece in packet_pieces(&page[..len.min(page.len())], &hdr) {
                    let _ = piece;
                }
                at += start + len.max(1);
            }
            Ok(None) => break,
            Err(_) => at += start + 1,
        }
    }

    let mut framer = OggFramer::new();
    let mut out = Vec::new();
    for (i, piece) in pieces(pattern, data).enumerate() {
        if i == when as usize % 16 {
            let _ = framer.retitle(Some("Fuzz title"), Some("Fuzz artist"), &mut out);
        }
        if framer.push(piece, &mut out).is_err() {
            return;
        }
    }
    framer.flush(&mut out);
    let _ = framer.info();
    let _ = framer.header();
    let _ = framer.retitle(None, Some("after the end"), &mut out);
});
