//! Tests of the P2PSP wire codecs: every message encodes and decodes back, and malformed or
//! truncated datagrams are refused without panicking.

use super::*;
use crate::p2psp::auth::TRAILER_LEN;
use proptest::prelude::*;

fn sample_reply() -> JoinReply {
    JoinReply {
        version: VERSION,
        features: features::ALL,
        max_chunk_payload: 1400,
        buffer_size: 256,
        keepalive_ms: 1000,
        team_id: 0xC0FFEE,
        peer_id: PeerId(7),
        role: Role::Peer,
        public_endpoint: "[2001:db8::1]:4000".parse().unwrap(),
        number_of_monitors: 1,
        peers: vec![
            (PeerId(1), "10.0.0.1:4000".parse().unwrap()),
            (PeerId(2), "[::1]:5000".parse().unwrap()),
        ],
        info: StreamInfo {
            content_type: "audio/ogg".into(),
            name: "Radio ñ".into(),
            description: "d".into(),
            genre: "g".into(),
            url: "http://x".into(),
            title: "Artist - Song".into(),
            bitrate: Some(128),
        },
        info_epoch: 2,
        header_epoch: 3,
        header: Bytes::from_static(b"OggS header"),
        next_chunk: ChunkNo(10),
        chunk_interval_us: 62_500,
        relay_from: 256,
        burst: vec![
            BurstChunk {
                no: ChunkNo(8),
                origin: PeerId(1),
                payload: Bytes::from_static(b"eight"),
            },
            BurstChunk {
                no: ChunkNo(9),
                origin: PeerId(2),
                payload: Bytes::new(),
            },
        ],
        splitter_key: [9; 32],
        peer_key: [8; 32],
        keys_masked: true,
        pair_keys: vec![[1; 32], [2; 32]],
        slow: vec![PeerId(2)],
        signature: [7; 64],
    }
}

/// Encode and decode; the team id is not on the wire, so it comes back 0.
fn rt(p: Packet) {
    let e = encode(&p).unwrap();
    assert_eq!(decode(&e).unwrap(), Packet { team: 0, ..p });
}

#[test]
fn round_trips() {
    let team = 0xDEAD_BEEF;
    for msg in [
        Message::Chunk {
            no: ChunkNo(u32::MAX),
            origin: PeerId(3),
            relay: None,
            payload: Bytes::from(vec![0u8; MAX_CHUNK_PAYLOAD]),
        },
        Message::Hello { from: PeerId(1) },
        Message::Goodbye { from: PeerId(2) },
        Message::KeepAlive { from: PeerId(3) },
        Message::LostChunk {
            no: ChunkNo(5),
            digest: false,
        },
        Message::Request {
            no: ChunkNo(6),
            digest: true,
            stalled: false,
        },
        Message::Request {
            no: ChunkNo(7),
            digest: false,
            stalled: true,
        },
        Message::Prune { origin: PeerId(9) },
        Message::JoinRequest(JoinRequest::new(Role::Monitor)),
        Message::JoinReply(Box::new(sample_reply())),
        Message::JoinRefused {
            reason: RefuseReason::Full,
            detail: "team full".into(),
        },
    ] {
        rt(Packet { team, msg });
    }
}

#[test]
fn peek_type_reads_the_type_byte_of_native_messages_only() {
    let ka = encode(&Packet {
        team: 1,
        msg: Message::KeepAlive { from: PeerId(3) },
    })
    .expect("encode");
    assert_eq!(peek_type(&ka), Some(ty::KEEPALIVE));
    assert_eq!(peek_type(&ka[..HEADER_LEN - 1]), None);
    let mut foreign = ka.to_vec();
    foreign[0] ^= 1;
    assert_eq!(peek_type(&foreign), None);
}

#[test]
fn chunk_layout_is_fixed() {
    let e = encode(&Packet {
        team: 0x01020304,
        msg: Message::Chunk {
            no: ChunkNo(0x0A0B0C0D),
            origin: PeerId(0x11121314),
            relay: None,
            payload: Bytes::from_static(b"xy"),
        },
    })
    .unwrap();
    assert_eq!(
        &e[..],
        &[
            0xF1, 0x0E, VERSION, 1, 0x0A, 0x0B, 0x0C, 0x0D, 0x11, 0x12, 0x13, 0x14, b'x', b'y'
        ]
    );
    // The splitter's chunk: its receiver is the origin, so none is sent.
    let e = encode(&Packet {
        team: 0x01020304,
        msg: Message::Chunk {
            no: ChunkNo(0x0A0B0C0D),
            origin: PeerId::NONE,
            relay: None,
            payload: Bytes::from_static(b"xy"),
        },
    })
    .unwrap();
    assert_eq!(
        &e[..],
        &[
            0xF1,
            0x0E,
            VERSION,
            ty::SPLITTER_CHUNK,
            0x0A,
            0x0B,
            0x0C,
            0x0D,
            b'x',
            b'y'
        ]
    );
}

#[test]
fn relay_chunk_layout_is_fixed() {
    let e = encode(&Packet {
        team: 1,
        msg: Message::Chunk {
            no: ChunkNo(0x0A0B0C0D),
            origin: PeerId(0x11121314),
            relay: Some(Relay {
                groups: 0x0120,
                share: 0x8001,
            }),
            payload: Bytes::from_static(b"xy"),
        },
    })
    .unwrap();
    assert_eq!(
        &e[..],
        &[
            0xF1,
            0x0E,
            VERSION,
            ty::RELAY_CHUNK,
            0x0A,
            0x0B,
            0x0C,
            0x0D,
            0x11,
            0x12,
            0x13,
            0x14,
            0x01,
            0x20,
            0x80,
            0x01,
            b'x',
            b'y'
        ]
    );
    // Fewer than two groups is no two-level flood, and a member chunk names its origin.
    let mut one = e.to_vec();
    one[12..14].copy_from_slice(&[0, 1]);
    assert_eq!(
        decode(&one),
        Err(WireError::Invalid("relay copy with fewer than two groups"))
    );
    let mut orphan = e.to_vec();
    orphan[8..12].copy_from_slice(&[0; 4]);
    assert!(decode(&orphan).is_err());
    let mut plain = orphan;
    plain[3] = ty::CHUNK;
    assert!(decode(&plain).is_err(), "a member chunk without an origin");
    assert!(
        encode(&Packet {
            team: 1,
            msg: Message::Chunk {
                no: ChunkNo(1),
                origin: PeerId(2),
                relay: Some(Relay::whole(1)),
                payload: Bytes::new(),
            },
        })
        .is_err()
    );
}

#[test]
fn rejects_malformed() {
    let good = encode(&Packet {
        team: 1,
        msg: Message::Hello { from: PeerId(1) },
    })
    .unwrap();
    for n in 0..good.len() {
        assert_eq!(decode(&good[..n]), Err(WireError::Truncated), "len {n}");
    }
    let mut long = good.to_vec();
    long.push(0);
    assert_eq!(decode(&long), Err(WireError::TrailingBytes));
    let mut bad = good.to_vec();
    bad[0] = 0;
    assert_eq!(decode(&bad), Err(WireError::BadMagic));
    let mut bad = good.to_vec();
    bad[2] = 1;
    assert_eq!(decode(&bad), Err(WireError::BadVersion(1)));
    let mut bad = good.to_vec();
    bad[3] = 0x7F;
    assert_eq!(decode(&bad), Err(WireError::UnknownType(0x7F)));
    // Oversize chunk payload, both directions.
    let big = Message::Chunk {
        no: ChunkNo(0),
        origin: PeerId(0),
        relay: None,
        payload: Bytes::from(vec![0u8; MAX_CHUNK_PAYLOAD + 1]),
    };
    assert!(matches!(
        encode(&Packet { team: 0, msg: big }),
        Err(WireError::TooLong { .. })
    ));
    let mut raw = good[..8].to_vec();
    raw[3] = 1;
    raw.extend_from_slice(&[0u8; 8 + MAX_CHUNK_PAYLOAD + 1]);
    raw[11] = 1; // an origin
    assert!(matches!(decode(&raw), Err(WireError::TooLong { .. })));
    // A Train padded past one unfragmented datagram, both directions.
    let long_train = Message::Train {
        seq: 0,
        count: 4,
        pad: MAX_TRAIN_PAD as u16 + 1,
    };
    assert!(matches!(
        encode(&Packet {
            team: 0,
            msg: long_train
        }),
        Err(WireError::TooLong { .. })
    ));
    let mut raw = good[..4].to_vec();
    raw[3] = ty::TRAIN;
    raw.extend_from_slice(&[0u8; 2 + MAX_TRAIN_PAD + 1]);
    assert!(matches!(decode(&raw), Err(WireError::TooLong { .. })));
    // The retired HeaderPiece / HeaderAck types are unknown now.
    for t in [0x08u8, 0x09] {
        let mut raw = good[..4].to_vec();
        raw[3] = t;
        raw.extend_from_slice(&[0u8; 16]);
        assert!(decode(&raw).is_err(), "type {t:#x}");
    }
}

#[test]
fn reply_length_fields_do_not_allocate() {
    // A reply claiming 10000 peers but carrying none must fail fast, not reserve memory.
    let e = encode(&Packet {
        team: 1,
        msg: Message::JoinReply(Box::new(JoinReply {
            peers: vec![],
            pair_keys: vec![],
            number_of_monitors: 0,
            burst: vec![],
            ..sample_reply()
        })),
    })
    .unwrap();
    let mut v = e.to_vec();
    // peer count sits after 8 + 1+4+4+4+4+4+4 + (1+16+2) + 2 bytes.
    let at = 8 + 25 + 19 + 2;
    v[at..at + 4].copy_from_slice(&10000u32.to_be_bytes());
    // It runs out of well-formed entries (here: reads string bytes as a family) and fails.
    assert!(decode(&v).is_err());
    v[at..at + 4].copy_from_slice(&10001u32.to_be_bytes());
    assert!(matches!(decode(&v), Err(WireError::TooLong { .. })));
    // Header length over 1 MiB.
    let mut r = sample_reply();
    r.header = Bytes::from(vec![0u8; MAX_HEADER + 1]);
    assert!(
        encode(&Packet {
            team: 1,
            msg: Message::JoinReply(Box::new(r))
        })
        .is_err()
    );
}

#[test]
fn frames() {
    let p = Packet {
        team: 0,
        msg: Message::JoinRequest(JoinRequest::new(Role::Peer)),
    };
    let f = encode_frame(&p).unwrap();
    let mut d = FrameDecoder::new(MAX_FRAME);
    let mut all = f.to_vec();
    all.extend_from_slice(&f);
    // Byte-at-a-time delivery.
    let mut got = vec![];
    for b in &all {
        d.push(&[*b]).unwrap();
        while let Some(fr) = d.pop_frame().unwrap() {
            got.push(decode(&fr).unwrap());
        }
    }
    assert_eq!(got, vec![p.clone(), p]);
    assert_eq!(d.buffered(), 0);
    let mut d = FrameDecoder::new(100);
    d.push(&101u32.to_be_bytes()).unwrap();
    assert!(d.pop_frame().is_err());
    let mut d = FrameDecoder::new(10);
    assert_eq!(d.push(&[0u8; 100]), Err(WireError::BufferFull));
}

fn arb_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(a, p)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), p)),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(a, p)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(a)), p)),
    ]
}

fn arb_bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn arb_msg() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u32>(), any::<u32>(), arb_bytes(2000)).prop_map(|(n, o, p)| Message::Chunk {
            no: ChunkNo(n),
            origin: PeerId(o),
            relay: None,
            payload: p
        }),
        (
            any::<u32>(),
            1..u32::MAX,
            2..=u16::MAX,
            any::<u16>(),
            arb_bytes(2000)
        )
            .prop_map(|(n, o, groups, share, p)| Message::Chunk {
                no: ChunkNo(n),
                origin: PeerId(o),
                relay: Some(Relay { groups, share }),
                payload: p,
            }),
        any::<u32>().prop_map(|x| Message::Hello { from: PeerId(x) }),
        any::<u32>().prop_map(|x| Message::Goodbye { from: PeerId(x) }),
        any::<u32>().prop_map(|x| Message::KeepAlive { from: PeerId(x) }),
        (any::<u32>(), any::<bool>()).prop_map(|(x, digest)| Message::LostChunk {
            no: ChunkNo(x),
            digest
        }),
        (any::<u32>(), any::<bool>(), any::<bool>()).prop_map(|(x, digest, stalled)| {
            Message::Request {
                no: ChunkNo(x),
                digest,
                stalled,
            }
        }),
        any::<u32>().prop_map(|x| Message::DigestRequest { no: ChunkNo(x) }),
        any::<u32>().prop_map(|x| Message::Prune { origin: PeerId(x) }),
        Just(Message::Promote),
        (any::<u32>(), any::<u32>(), any::<i32>()).prop_map(|(a, b, d)| {
            Message::Report(PeerReport {
                from: PeerId(a),
                delivered: b,
                lost: a ^ b,
                buffer_fill: b / 3,
                max_debt: d,
                neighbours: a / 7,
                verified: b / 5,
                rejected: a % 3,
                pace_rate: b ^ 5,
                backlog_ms: a / 11,
                uplink_rate: b / 3,
                sent_ms: a ^ 0x55,
            })
        }),
        any::<u32>().prop_map(|x| Message::Probe { sent_ms: x }),
        (any::<u8>(), any::<u8>(), 0..=MAX_TRAIN_PAD as u16)
            .prop_map(|(seq, count, pad)| Message::Train { seq, count, pad }),
        any::<u32>().prop_map(|r| Message::TrainRead { bytes_per_sec: r }),
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| Message::QueueDelay { sent_ms: a, ms: b }),
        (
            any::<u32>(),
            "[a-zé/ ]{0,30}",
            proptest::option::of(any::<u32>())
        )
            .prop_map(|(epoch, s, br)| Message::Info {
                epoch,
                first_chunk: ChunkNo(epoch ^ 0x55),
                info: StreamInfo {
                    content_type: s.clone(),
                    title: s,
                    bitrate: br,
                    ..StreamInfo::default()
                },
                signature: [epoch as u8; 64],
                relay: (epoch % 2 == 0).then_some(2 + (epoch % 100) as u16),
            }),
        (any::<u8>(), any::<bool>(), any::<u32>()).prop_map(|(v, m, f)| {
            Message::JoinRequest(JoinRequest {
                version: v,
                role: if m { Role::Monitor } else { Role::Peer },
                features: f,
                nonce: [v; 16],
            })
        }),
        (
            proptest::collection::vec((any::<u32>(), arb_addr()), 0..20),
            arb_addr(),
            "[a-zé/ ]{0,30}",
            proptest::option::of(any::<u32>()),
            arb_bytes(500),
            proptest::collection::vec((any::<u32>(), arb_bytes(100)), 0..10),
            any::<u32>(),
        )
            .prop_map(|(peers, ep, s, br, header, burst, next)| {
                let nm = (peers.len() / 2) as u16;
                let pair_keys = peers.iter().map(|(i, _)| [*i as u8; 32]).collect();
                let slow = peers.iter().step_by(3).map(|(i, _)| PeerId(*i)).collect();
                Message::JoinReply(Box::new(JoinReply {
                    version: 1,
                    features: 5,
                    max_chunk_payload: 1200,
                    buffer_size: 64,
                    keepalive_ms: 500,
                    team_id: next,
                    peer_id: PeerId(next),
                    role: Role::Peer,
                    public_endpoint: ep,
                    number_of_monitors: nm,
                    peers: peers.into_iter().map(|(i, a)| (PeerId(i), a)).collect(),
                    info: StreamInfo {
                        content_type: s.clone(),
                        name: s.clone(),
                        description: String::new(),
                        genre: s,
                        url: String::new(),
                        title: String::new(),
                        bitrate: br,
                    },
                    info_epoch: next ^ 2,
                    header_epoch: next ^ 1,
                    header,
                    next_chunk: ChunkNo(next),
                    chunk_interval_us: 62_500,
                    relay_from: 0,
                    burst: burst
                        .into_iter()
                        .map(|(n, p)| BurstChunk {
                            no: ChunkNo(n),
                            origin: PeerId(n / 3),
                            payload: p,
                        })
                        .collect(),
                    splitter_key: [3; 32],
                    peer_key: [4; 32],
                    keys_masked: next % 2 == 0,
                    pair_keys,
                    slow,
                    signature: [5; 64],
                }))
            }),
        (
            any::<u32>(),
            proptest::collection::vec(any::<[u8; 12]>(), 0..64),
            any::<u8>()
        )
            .prop_map(|(f, hashes, s)| Message::Digest {
                first: ChunkNo(f),
                hashes,
                signature: [s; 64],
                relay: (f % 3 != 0).then_some(2 + (f % 1000) as u16),
            }),
        (any::<u32>(), any::<u64>()).prop_map(|(n, q)| Message::Polluted(Evidence {
            sender: PeerId(n),
            no: ChunkNo(n ^ 5),
            origin: PeerId(n / 2),
            relay: (n % 3 != 0).then_some(Relay {
                groups: 2 + (n % 1000) as u16,
                share: (q >> 7) as u16,
            }),
            seq: q,
            hash: [n as u8; 32],
            tag: [q as u8; 12],
        })),
        any::<u32>().prop_map(|i| Message::Expel { id: PeerId(i) }),
        proptest::collection::vec(any::<u32>(), 0..=MAX_GONE_IDS).prop_map(|ids| Message::Gone {
            ids: ids.into_iter().map(PeerId).collect(),
        }),
        (
            proptest::collection::vec(any::<u32>(), 0..=MAX_GONE_IDS),
            proptest::collection::vec(any::<u32>(), 0..=MAX_GONE_IDS),
        )
            .prop_map(|(s, a)| Message::Uplinks {
                slow: s.into_iter().map(PeerId).collect(),
                able: a.into_iter().map(PeerId).collect(),
            }),
        (any::<u32>(), any::<[u8; 32]>()).prop_map(|(i, key)| Message::Introduce {
            id: PeerId(i),
            endpoint: SocketAddr::from(([192, 0, 2, 7], i as u16)),
            key,
        }),
        any::<u16>().prop_map(|p| Message::Endpoint {
            endpoint: SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], p)),
        }),
        any::<[u8; 16]>().prop_map(|nonce| Message::Challenge { nonce }),
        any::<[u8; 32]>().prop_map(|proof| Message::JoinProof { proof }),
        (any::<u8>(), "[a-z]{0,40}").prop_map(|(c, d)| Message::JoinRefused {
            reason: RefuseReason::from_code(c),
            detail: d
        }),
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let _ = decode(&data);
        let mut d = FrameDecoder::new(4096);
        if d.push(&data).is_ok() {
            while let Ok(Some(f)) = d.pop_frame() {
                let _ = decode(&f);
            }
        }
    }

    #[test]
    fn valid_header_then_garbage_never_panics(
        t in any::<u8>(),
        data in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut v = vec![0xF1, 0x0E, VERSION, t];
        v.extend_from_slice(&data);
        let _ = decode(&v);
    }

    #[test]
    fn encode_decode_round_trip(team in any::<u32>(), msg in arb_msg()) {
        let p = Packet { team, msg };
        let e = encode(&p).unwrap();
        prop_assert_eq!(decode(&e).unwrap(), Packet { team: 0, ..p.clone() });
        // Any strict prefix is rejected, never mis-decoded (Chunk and Train bodies end in a
        // "rest" field, so a prefix may still decode as a shorter payload or padding).
        if !matches!(p.msg, Message::Chunk { .. } | Message::Train { .. }) {
            for cut in [0, e.len() / 2, e.len() - 1] {
                prop_assert!(decode(&e[..cut]).is_err());
            }
        }
    }
}

#[test]
fn sealed_datagrams_open_and_verify_only_under_their_key() {
    let key = [42u8; 32];
    let p = Packet {
        team: 77,
        msg: Message::Chunk {
            no: ChunkNo(5),
            origin: PeerId(3),
            relay: None,
            payload: Bytes::from_static(b"the stream"),
        },
    };
    let d = seal(&p, PeerId(3), 9, &key, None).unwrap();
    let o = open(&d).unwrap();
    // The team id is not on the wire: the tag covers it.
    assert_eq!(o.packet.msg, p.msg);
    assert_eq!((o.sender, o.seq), (PeerId(3), 9));
    assert!(o.verify(&d, &key, 77));
    assert!(!o.verify(&d, &[43; 32], 77));
    assert!(!o.verify(&d, &key, 78), "another team's datagram");
    // The evidence re-creates the tag (how the splitter checks a pollution report).
    let e = o.evidence().unwrap();
    assert_eq!(chunk_tag(&key, 77, &e), e.tag);
    // Any flipped bit breaks the tag: payload, header, trailer.
    for at in [1usize, 9, 20, d.len() - 20, d.len() - 1] {
        let mut bad = d.to_vec();
        bad[at] ^= 1;
        if let Ok(o) = open(&bad) {
            assert!(!o.verify(&bad, &key, 77), "flip at {at}");
        }
    }
    // A relay's copy: its group count and share are covered, in the datagram and in the
    // evidence.
    let relay = Relay {
        groups: 32,
        share: 0x4000,
    };
    let r = Packet {
        team: 77,
        msg: Message::Chunk {
            no: ChunkNo(5),
            origin: PeerId(3),
            relay: Some(relay),
            payload: Bytes::from_static(b"the stream"),
        },
    };
    let d = seal(&r, PeerId(3), 10, &key, None).unwrap();
    let o = open(&d).unwrap();
    assert!(o.verify(&d, &key, 77));
    let e = o.evidence().unwrap();
    assert_eq!((e.relay, chunk_tag(&key, 77, &e)), (Some(relay), e.tag));
    let mut other = d.to_vec();
    other[13] ^= 1; // 32 groups become 33
    assert!(!open(&other).unwrap().verify(&other, &key, 77));
    let mut wider = d.to_vec();
    wider[14] ^= 0x80; // a quarter of the group becomes three quarters
    assert!(!open(&wider).unwrap().verify(&wider, &key, 77));
    let mut unnamed = d.to_vec();
    unnamed[3] = ty::CHUNK;
    unnamed.drain(12..16);
    let o = open(&unnamed).unwrap();
    assert_eq!(o.evidence().map(|e| e.relay), Some(None));
    assert!(
        !o.verify(&unnamed, &key, 77),
        "a relay's copy passed off as a plain one"
    );
    let g = Packet {
        team: 77,
        msg: Message::Goodbye { from: PeerId(0) },
    };
    let d = seal(&g, PeerId::NONE, 1, &key, None).unwrap();
    assert_eq!(d.len(), HEADER_LEN + 4 + TRAILER_LEN);
    assert!(open(&d).unwrap().verify(&d, &key, 77));
    assert!(!open(&d).unwrap().verify(&d, &key, 76));
    // A 12-byte goodbye as the old format had it is not even a datagram now.
    assert!(open(&d[..12]).is_err());
}

#[test]
fn a_version_1_joiner_can_read_the_refusal() {
    let f = encode_refusal(1, "speak version 2").unwrap();
    let body = &f[4..];
    assert_eq!(peek_version(body), Some(1));
    assert_eq!(body[3], ty::JOIN_REFUSED);
    assert!(String::from_utf8_lossy(body).contains("speak version 2"));
}

#[test]
fn a_signed_reply_verifies_for_its_nonce_only() {
    let k = SplitterKey::from_seed(&[1; 32]);
    let mut r = sample_reply();
    r.splitter_key = k.public();
    r.sign(5, &k, &[3; 16]).unwrap();
    assert!(r.verify(5, &[3; 16]));
    assert!(!r.verify(5, &[4; 16]), "another joiner's nonce");
    let mut t = r.clone();
    t.peers.pop();
    t.pair_keys.pop();
    assert!(!t.verify(5, &[3; 16]), "a changed list");
}
