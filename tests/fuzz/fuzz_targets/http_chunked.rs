//! Chunked request bodies (a chunked PUT source), fed in the pieces reads would deliver: the
//! payload must not depend on where the reads cut the input.
#![no_main]

use floecast_core::http::chunked::Dechunker;
use floecast_fuzz::{pieces, split_pattern};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let (pattern, data) = split_pattern(input);
    let mut whole = Dechunker::new();
    let mut whole_out = Vec::new();
    let whole_ok = whole.push(data, &mut whole_out).is_ok();

    let mut cut = Dechunker::new();
    let mut cut_out = Vec::new();
    let mut cut_ok = true;
    for piece in pieces(pattern, data) {
        if cut.push(piece, &mut cut_out).is_err() {
            cut_ok = false;
            break;
        }
    }
    assert_eq!(
        whole_ok, cut_ok,
        "an error must not depend on the read sizes"
    );
    if whole_ok {
        assert_eq!(whole_out, cut_out);
        assert_eq!(whole.is_done(), cut.is_done());
    }
});
