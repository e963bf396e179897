//! WebM/Matroska from a source: EBML element headers and the framer that keeps the stream
//! head, starts listeners on Clusters and cuts keyframe start copies; and, as a P2PSP peer
//! mount's stream has them, gaps it must resynchronise after.
#![no_main]

use floecast_core::format::Framer;
use floecast_core::format::webm::{WebmFramer, parse_element_header};
use floecast_fuzz::{pieces, split_pattern};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let (pattern, data) = split_pattern(input);
    let _ = parse_element_header(data);
    let mut framer = WebmFramer::new();
    let mut out = Vec::new();
    for piece in pieces(pattern, data) {
        // Some piece sizes stand for a lost chunk before the piece.
        if piece.len() % 7 == 3 {
            framer.discontinuity();
        }
        if framer.push(piece, &mut out).is_err() {
            return;
        }
    }
    framer.flush(&mut out);
    let _ = framer.info();
    let _ = framer.header();
});
