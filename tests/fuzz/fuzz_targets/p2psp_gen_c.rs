//! The Gen C codec of the 2018 C++ reference: its TCP configuration (decode_config) and its
//! UDP datagrams, both directions. Whatever decodes must encode back to the same bytes' meaning.
#![no_main]

use floecast_core::p2psp::compat::{
    Direction, decode_config, decode_datagram, encode_config, encode_datagram,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    if let Ok((config, used)) = decode_config(input) {
        assert!(used <= input.len());
        if let Ok(encoded) = encode_config(&config) {
            let (again, n) = decode_config(&encoded).expect("an encoded config decodes");
            assert_eq!(n, encoded.len());
            assert_eq!(format!("{again:?}"), format!("{config:?}"));
        }
    }
    let Some((&size, datagram)) = input.split_first() else {
        return;
    };
    let chunk_size = size as usize * 4;
    for dir in [Direction::ToPeer, Direction::ToSplitter] {
        if let Ok(msg) = decode_datagram(datagram, chunk_size, dir) {
            let encoded = encode_datagram(&msg, chunk_size).expect("a decoded datagram encodes");
            assert_eq!(&encoded[..], datagram);
        }
    }
});
