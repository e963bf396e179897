//! The native P2PSP codec: UDP datagrams and TCP join frames from anyone on the internet.
//! Whatever decodes must encode again and decode to the same packet.
#![no_main]

use floecast_core::p2psp::wire::{self, FrameDecoder};
use floecast_fuzz::{pieces, split_pattern};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let _ = wire::peek_type(input);
    if let Ok(packet) = wire::decode(input) {
        let encoded = wire::encode(&packet).expect("a decoded packet encodes");
        let again = wire::decode(&encoded).expect("an encoded packet decodes");
        assert_eq!(again, packet);
    }
    // The join connection's framing, in read-sized pieces, with a small frame cap.
    let (pattern, data) = split_pattern(input);
    let mut frames = FrameDecoder::new(4096);
    for piece in pieces(pattern, data) {
        if frames.push(piece).is_err() {
            return;
        }
        loop {
            match frames.pop_frame() {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= 4096);
                    let _ = wire::decode(&frame);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(frames.buffered() <= 4096 + 8 + piece.len());
    }
});
