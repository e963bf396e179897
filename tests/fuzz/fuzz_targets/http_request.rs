//! The front door's request head: finding its end, parsing it, and what handlers then read
//! from it (query parameters, Basic credentials, percent-decoding).
#![no_main]

use floecast_core::http::request::{
    basic_auth, find_head_end, find_head_end_or_blank, parse_head, percent_decode, percent_encode,
    query_pairs,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = find_head_end_or_blank(data);
    let head = match find_head_end(data) {
        Some(end) => &data[..end],
        None => data,
    };
    let Ok(req) = parse_head(head) else {
        return;
    };
    let _ = req.log_line();
    let _ = req.user_agent();
    let _ = req.wants_icy_metadata();
    let _ = req.query_param("mount");
    if let Some(auth) = req.header("authorization") {
        let _ = basic_auth(auth);
    }
    let text = String::from_utf8_lossy(head);
    for (k, v) in query_pairs(&text) {
        // Encoding then decoding gives the text back.
        assert_eq!(percent_decode(&percent_encode(&k)), k.as_bytes());
        let _ = v;
    }
});
