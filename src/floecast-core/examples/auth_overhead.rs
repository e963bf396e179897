//! What the authentication of native P2PSP teams costs per chunk: bytes on the wire (measured
//! on the splitter state machine, in virtual time) and CPU (the primitives, timed), at
//! 128 kbit/s and 2 Mbit/s. `cargo run --release -p floecast-core --example auth_overhead`.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)] // a benchmark: it reads the clock and prints

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use floecast_core::p2psp::auth::{self, SplitterKey};
use floecast_core::p2psp::peer::{Peer, PeerConfig};
use floecast_core::p2psp::splitter::{Splitter, SplitterConfig};
use floecast_core::p2psp::wire::{self, JoinRequest, Message, Packet};
use floecast_core::p2psp::{ChunkNo, PeerId, PeerMachine, Role};

/// Where the peers think the splitter is (only datagrams to it are delivered).
const SPLITTER: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 254)),
    8001,
);

/// Splitter egress per chunk in a team of 10 over 60 s of virtual time: (all bytes, bytes a
/// v1 splitter would have sent: 16-byte header + payload).
fn wire_bytes(rate_bps: u64, chunk: usize) -> (f64, f64) {
    let t0 = Instant::now();
    let mut s = Splitter::new(
        SplitterConfig {
            max_chunk_payload: chunk,
            // No peers answer here: keep them all in the team and all looking alive.
            peer_timeout: Duration::from_secs(3600),
            keepalive_interval: Duration::from_secs(3600),
            ..SplitterConfig::default()
        },
        1,
        t0,
    );
    for n in 0..10u16 {
        let a = SocketAddr::from(([10, 0, 0, 1], 5000 + n));
        let (_, reply) = s.handle_join(t0, a, &JoinRequest::new(Role::Peer)).unwrap();
        // Its first datagram (a Hello to the splitter) makes it a member.
        let mut p = Peer::new(PeerConfig::new(SPLITTER), reply, u64::from(n), t0);
        while let Some(t) = p.poll_transmit() {
            if t.to == SPLITTER {
                s.handle_datagram(t0, a, &t.data);
            }
        }
    }
    while s.poll_transmit().is_some() {}
    let interval = Duration::from_nanos(chunk as u64 * 8 * 1_000_000_000 / rate_bps);
    let (mut bytes, mut chunks) = (0u64, 0u64);
    let mut now = t0;
    let end = t0 + Duration::from_secs(60);
    while now < end {
        s.push_chunk(now, Bytes::from(vec![7u8; chunk])).unwrap();
        chunks += 1;
        let next = now + interval;
        // Timers due before the next chunk (Digest deadlines), as a runtime would run them.
        while let Some(t) = s.poll_timeout().filter(|t| *t < next) {
            s.handle_timeout(t.max(now));
            if t <= now {
                break;
            }
        }
        while let Some(tx) = s.poll_transmit() {
            bytes += tx.data.len() as u64;
        }
        now = next;
    }
    (bytes as f64 / chunks as f64, (16 + chunk) as f64)
}

fn time<F: FnMut()>(n: u32, mut f: F) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

fn main() {
    let key = SplitterKey::from_seed(&[1; 32]);
    let pk = key.public();
    for (name, rate, chunk) in [
        ("128 kbit/s, 1024 B chunks", 128_000u64, 1024usize),
        ("128 kbit/s, 1400 B chunks", 128_000, 1400),
        ("2 Mbit/s, 1400 B chunks", 2_000_000, 1400),
        ("24 kbit/s, 1200 B chunks", 24_000, 1200),
    ] {
        let (b, v1) = wire_bytes(rate, chunk);
        let per_s = rate as f64 / 8.0 / chunk as f64;
        let payload = Bytes::from(vec![3u8; chunk]);
        let hash_us = time(20_000, || {
            std::hint::black_box(auth::payload_hash(&payload));
        });
        let p = Packet {
            team: 1,
            msg: Message::Chunk {
                no: ChunkNo(9),
                origin: PeerId(2),
                relay: None,
                payload: payload.clone(),
            },
        };
        let h = auth::payload_hash(&payload);
        let k = [5u8; 32];
        let seal_us = time(20_000, || {
            std::hint::black_box(wire::seal(&p, PeerId(2), 7, &k, Some(&h)).unwrap());
        });
        let d = wire::seal(&p, PeerId(2), 7, &k, Some(&h)).unwrap();
        let open_us = time(20_000, || {
            let o = wire::open(&d).unwrap();
            assert!(o.verify(&d, &k, 1));
        });
        let hashes = vec![[1u8; auth::DIGEST_HASH_LEN]; 32];
        let parts = auth::digest_parts(1, ChunkNo(0), &hashes);
        let sign_us = time(2_000, || {
            std::hint::black_box(key.sign(&[&parts]));
        });
        let sig = key.sign(&[&parts]);
        let verify_us = time(2_000, || {
            assert!(auth::verify_signature(&pk, &[&parts], &sig));
        });
        // Chunks per Digest at this rate: 32, or what the batch delay holds (B = 256).
        let delay = auth::batch_delay(Some(Duration::from_secs_f64(1.0 / per_s)), 256);
        let batch = (per_s * delay.as_secs_f64()).ceil().clamp(1.0, 32.0);
        // The splitter: hash, seal once; a signature per batch. A peer of a team of 10: open
        // and check each chunk once (the hash is part of opening), seal it for 9 neighbours
        // (over the hash: no re-hash) a tenth of the time, check a signature per batch.
        let splitter_us = hash_us + seal_us + sign_us / batch;
        let peer_us = open_us + 0.9 * (seal_us - 0.0) + verify_us / batch;
        println!(
            "{name}: {per_s:.1} chunks/s, {batch:.0} per Digest\n  \
             bytes/chunk at the splitter: {b:.1} (v1: {v1:.0}; +{:.1} B, +{:.2}%)\n  \
             CPU/chunk: hash {hash_us:.2} µs, seal {seal_us:.2} µs, open+check {open_us:.2} µs, \
             sign {sign_us:.1} µs, verify {verify_us:.1} µs per batch\n  \
             splitter {splitter_us:.2} µs/chunk ({:.3}% of a core), peer {peer_us:.2} µs/chunk \
             ({:.3}% of a core)",
            b - v1,
            (b - v1) / v1 * 100.0,
            splitter_us * per_s / 1e4,
            peer_us * per_s / 1e4,
        );
    }
}
