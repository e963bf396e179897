//! MP3 and ADTS streams: the frame-header parser and the framer that finds frame boundaries
//! for listener starts (a fresh source and a relay's continuing one).
#![no_main]

use floecast_core::format::Framer;
use floecast_core::format::mpeg::{MpegFramer, PassthroughFramer, parse_frame_header};
use floecast_fuzz::{pieces, split_pattern};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let (pattern, data) = split_pattern(input);
    for i in 0..data.len().min(64) {
        if let Some(h) = parse_frame_header(&data[i..]) {
            let _ = h;
        }
    }
    for mut framer in [
        Box::new(MpegFramer::new()) as Box<dyn Framer>,
        Box::new(MpegFramer::continuing()),
        Box::new(PassthroughFramer::new()),
    ] {
        let mut out = Vec::new();
        for piece in pieces(pattern, data) {
            if framer.push(piece, &mut out).is_err() {
                break;
            }
        }
        framer.flush(&mut out);
        let _ = framer.info();
        let total: usize = out.iter().map(|b| b.data.len()).sum();
        assert!(total <= data.len(), "a framer never makes audio up");
    }
});
