//! The HTTP client's response head (relays, push relays, URL auth, master polls) and body
//! framing (length, chunked, until close), on whatever a remote server sends.
#![no_main]

use floecast_core::http::client::{Body, RedirectPolicy, parse_response, parse_response_at_close};
use floecast_fuzz::{pieces, split_pattern};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let (pattern, data) = split_pattern(input);
    let _ = parse_response_at_close(data);
    let Ok(Some((head, used))) = parse_response(data) else {
        return;
    };
    assert!(used <= data.len());
    let _ = head.status_line();
    let _ = head.content_type();
    let _ = head.framing();
    let _ = RedirectPolicy::Follow(10).next(&head, 0);
    let mut body = Body::new(&head, 4096);
    for piece in pieces(pattern, &data[used..]) {
        match body.push(piece) {
            Ok(true) | Err(_) => break,
            Ok(false) => {}
        }
    }
    assert!(body.into_bytes().len() <= 4096);
});
