//! Writes the seed corpora of the targets that need no media: request heads and replies as
//! real clients and icecast2 sent them (wire captures, spec §2–3), chunked and ICY bodies,
//! and P2PSP datagrams made by floecast's own encoders. `seeds DIR` writes DIR/<target>/*.
//! Media seeds (Ogg, MP3, ADTS, WebM) come from ffmpeg in run.sh; configs are copied there.

use std::net::{SocketAddr, SocketAddrV4};
use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use floecast_core::p2psp::compat::{self, CompatConfig, CompatMessage};
use floecast_core::p2psp::wire::{self, JoinRequest, Message, Packet, PeerReport};
use floecast_core::p2psp::{ChunkNo, PeerId, Role};
use floecast_fuzz::{TEAM_ID, record, team};

const HEADS: &[&[u8]] = &[
    b"PUT /ffogg.ogg HTTP/1.1\r\nUser-Agent: Lavf/59.27.100\r\nAccept: */*\r\nExpect: 100-continue\r\nConnection: close\r\nHost: 127.0.0.1:8201\r\nContent-Type: application/ogg\r\nIcy-MetaData: 1\r\nIce-Name: ffmpeg ogg\r\nIce-Description: ffmpeg desc\r\nIce-URL: http://example.invalid/\r\nIce-Genre: Test\r\nIce-Public: 0\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\n\r\n",
    b"SOURCE /fflegacy.ogg HTTP/1.1\r\nUser-Agent: Lavf/59.27.100\r\nAccept: */*\r\nConnection: close\r\nHost: 127.0.0.1:8203\r\nContent-Type: application/ogg\r\nIcy-MetaData: 1\r\nIce-Public: 0\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\n\r\nOggS\x00\x02",
    b"OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1:8209\r\nUser-Agent: VLC media player 3.0.24\r\nConnection: Upgrade\r\nUpgrade: TLS/1.0, HTTP/1.1\r\n\r\n",
    b"GET /admin/!POKE HTTP/1.1\r\nHost: 127.0.0.1:8209\r\nUser-Agent: VLC media player 3.0.24\r\n\r\n",
    b"SOURCE /vlc.ogg HTTP/1.0\r\nHost: 127.0.0.1:8209\r\nUser-Agent: VLC media player 3.0.24\r\nContent-Type: application/ogg\r\nContent-Length: 0\r\nConnection: Keep-Alive\r\nice-public: 0\r\nice-name: vlc ogg\r\nice-description: vlc desc\r\nice-genre: Test\r\nice-url: http://www.videolan.org/vlc\r\nPrefer: return=minimal\r\n\r\n",
    b"GET /admin/metadata?mode=updinfo&charset=UTF-8&mount=%2fgst%2emp3&song=Unknown%20%2d%20Unknown HTTP/1.1\r\nHost: 127.0.0.1:8220\r\nUser-Agent: GStreamer 1.22.0\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\n\r\n",
    b"SOURCE /liq.ogg HTTP/1.0\r\nice-name: liq test\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\nice-public: 1\r\nUser-Agent: Liquidsoap/2.1.3 (Unix; OCaml 4.13.1)\r\nice-audio-info: channels=2;quality=0.3;samplerate=44100\r\nContent-Type: application/ogg\r\n\r\n",
    b"PUT /curl.ogg HTTP/1.1\r\nHost: 127.0.0.1:8216\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nTransfer-Encoding: chunked\r\nContent-Type: audio/ogg\r\nIce-Name: curl put\r\nExpect: 100-continue\r\n\r\n",
    b"GET /live HTTP/1.1\r\nHost: localhost:8000\r\nUser-Agent: VLC/3.0.18 LibVLC/3.0.18\r\nRange: bytes=0-\r\nConnection: close\r\nIcy-MetaData: 1\r\n\r\n",
    b"SOURCE /darkice.mp3 ICE/1.0\ncontent-type: audio/mpeg\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\nice-name: DarkIce\n\n",
    b"GET /admin/moveclients.json?mount=/a&destination=/b HTTP/1.0\r\nAuthorization: Basic YWRtaW46aGFja21l\r\nAccept: application/json\r\n\r\n",
    b"STATS / HTTP/1.0\r\nAuthorization: Basic YWRtaW46aGFja21l\r\n\r\n",
];

const REPLIES: &[&[u8]] = &[
    b"HTTP/1.0 200 OK\r\nServer: Icecast 2.4.4\r\nConnection: Close\r\nContent-Type: audio/mpeg\r\nicy-br:128\r\nicy-name:x\r\nicy-pub:0\r\nicy-metaint:16000\r\nCache-Control: no-cache, no-store\r\n\r\n\xff\xfb\x90\x64",
    b"ICY 200 OK\r\nicy-name:test\r\ncontent-type:audio/ogg\r\n\r\nOggS",
    b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:8001/other.mp3\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n5\r\n/live\r\n0\r\n\r\n",
    b"HTTP/1.0 401 Authentication Required\r\nServer: Icecast 2.4.4\r\nWWW-Authenticate: Basic realm=\"Icecast2 Server\"\r\nContent-Length: 26\r\n\r\nYou need to authenticate\r\n",
    b"HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\nHTTP/1.0 200 OK\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nicecast-auth-user: 1\r\nicecast-auth-timelimit: 60\r\n\r\n",
];

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: seeds DIR");
        std::process::exit(2);
    };
    let dir = Path::new(&dir);
    let mut n = 0;
    let mut write = |target: &str, name: &str, data: &[u8]| {
        let d = dir.join(target);
        std::fs::create_dir_all(&d).expect("create the corpus directory");
        std::fs::write(d.join(format!("seed-{name}")), data).expect("write a seed");
        n += 1;
    };

    for (i, head) in HEADS.iter().enumerate() {
        write("http_request", &i.to_string(), head);
    }
    for (i, reply) in REPLIES.iter().enumerate() {
        // No cutting pattern (0 bytes), then the reply.
        write(
            "http_response",
            &i.to_string(),
            &[[0].as_slice(), reply].concat(),
        );
    }
    let chunked: &[u8] = b"3a\r\nOggS0123456789012345678901234567890123456789012345678901\r\n10;ext=1\r\n0123456789abcdef\r\n0\r\nTrailer: x\r\n\r\n";
    write("http_chunked", "whole", &[[0].as_slice(), chunked].concat());
    write(
        "http_chunked",
        "cut",
        &[[3, 1, 7, 2].as_slice(), chunked].concat(),
    );

    // ICY: metaint 16, audio, a StreamTitle block, audio, an empty block.
    let mut icy = vec![1u8, 2, 5, 200];
    let meta = b"StreamTitle='Artist - Title';StreamUrl='http://x/';";
    icy.extend_from_slice(&[0xAA; 16]);
    icy.push(meta.len().div_ceil(16) as u8);
    icy.extend_from_slice(meta);
    icy.resize(icy.len() + (16 - meta.len() % 16) % 16, 0);
    icy.extend_from_slice(&[0xBB; 16]);
    icy.push(0);
    write("icy", "title", &icy);

    // Native P2PSP: one datagram of each kind, and a join frame.
    let packets = native_packets();
    for (name, p) in &packets {
        if let Ok(b) = wire::encode(p) {
            write("p2psp_wire", name, &b);
        }
    }
    if let Ok(frame) = wire::encode_frame(&Packet {
        team: TEAM_ID,
        msg: Message::JoinRequest(JoinRequest::new(Role::Peer)),
    }) {
        write("p2psp_wire", "frame", &[[0].as_slice(), &frame].concat());
    }
    let now = Instant::now();
    if let Some((mut splitter, _)) = team(now) {
        let addr: SocketAddr = "203.0.113.9:7000".parse().expect("an address");
        if let Ok((_, reply)) = splitter.handle_join(now, addr, &JoinRequest::new(Role::Peer)) {
            let p = Packet {
                team: TEAM_ID,
                msg: Message::JoinReply(Box::new(reply)),
            };
            if let Ok(b) = wire::encode(&p) {
                write("p2psp_wire", "join-reply", &b);
            }
        }
    }

    // The machines: the same datagrams from the splitter, a neighbour and a stranger.
    let mut session = Vec::new();
    for (i, (_, p)) in packets.iter().enumerate() {
        if let Ok(b) = wire::encode(p) {
            let from = [0u8, 1, 3, 0x80 | 1][i % 4];
            session.extend(record(from, 25, &b));
        }
    }
    write("p2psp_machines", "session", &session);
    let mut chunks = Vec::new();
    for no in 0..40u32 {
        let p = Packet {
            team: TEAM_ID,
            msg: Message::Chunk {
                no: ChunkNo(no),
                origin: PeerId(1 + no % 2),
                relay: None,
                payload: Bytes::from(vec![no as u8; 64]),
            },
        };
        if let Ok(b) = wire::encode(&p) {
            chunks.extend(record((no % 2) as u8 | 0x40, 10, &b));
        }
    }
    write("p2psp_machines", "chunks", &chunks);
    // Gen C datagrams to the Gen C peer (sender bit 0x20): the splitter's chunks, a neighbour's
    // hello and lost-chunk complaints.
    let mut gen_c = Vec::new();
    for no in 0..40u16 {
        let chunk = CompatMessage::Chunk {
            no,
            payload: Bytes::from(vec![no as u8; 64]),
        };
        if let Ok(b) = compat::encode_datagram(&chunk, 64) {
            gen_c.extend(record(0x20 | (no % 2) as u8, 10, &b));
        }
    }
    if let Ok(b) = compat::encode_datagram(&CompatMessage::Hello, 64) {
        gen_c.extend(record(0x23, 1, &b));
    }
    write("p2psp_machines", "gen-c", &gen_c);

    // Gen C: a configuration and its datagrams (chunk size 4 × 16).
    let config = CompatConfig {
        source: SocketAddrV4::new([192, 0, 2, 1].into(), 8000),
        channel: "live.ogg".into(),
        header_size: 10,
        chunk_size: 64,
        buffer_size: 32,
        number_of_monitors: 1,
        peers: vec![
            SocketAddrV4::new([192, 0, 2, 10].into(), 5000),
            SocketAddrV4::new([192, 0, 2, 11].into(), 5001),
        ],
    };
    if let Ok(b) = compat::encode_config(&config) {
        write("p2psp_gen_c", "config", &b);
    }
    for (name, m) in [
        ("hello", CompatMessage::Hello),
        ("goodbye", CompatMessage::Goodbye),
        ("lost", CompatMessage::LostChunk { no: 7 }),
        (
            "chunk",
            CompatMessage::Chunk {
                no: 9,
                payload: Bytes::from(vec![1u8; 64]),
            },
        ),
    ] {
        if let Ok(b) = compat::encode_datagram(&m, 64) {
            write("p2psp_gen_c", name, &[[16].as_slice(), &b].concat());
        }
    }
    println!("wrote {n} seeds under {}", dir.display());
}

fn native_packets() -> Vec<(&'static str, Packet)> {
    let p = |msg| Packet { team: TEAM_ID, msg };
    vec![
        (
            "chunk",
            p(Message::Chunk {
                no: ChunkNo(3),
                origin: PeerId(1),
                relay: None,
                payload: Bytes::from_static(b"OggS chunk payload"),
            }),
        ),
        ("hello", p(Message::Hello { from: PeerId(1) })),
        ("goodbye", p(Message::Goodbye { from: PeerId(2) })),
        ("keepalive", p(Message::KeepAlive { from: PeerId(1) })),
        (
            "lost",
            p(Message::LostChunk {
                no: ChunkNo(2),
                digest: true,
            }),
        ),
        (
            "request",
            p(Message::Request {
                no: ChunkNo(1),
                digest: true,
                stalled: true,
            }),
        ),
        ("prune", p(Message::Prune { origin: PeerId(1) })),
        ("promote", p(Message::Promote)),
        (
            "report",
            p(Message::Report(PeerReport {
                from: PeerId(1),
                delivered: 10,
                lost: 1,
                buffer_fill: 4,
                max_debt: 2,
                neighbours: 1,
                verified: 9,
                rejected: 0,
                pace_rate: 20_000,
                backlog_ms: 300,
                uplink_rate: 18_000,
                sent_ms: 61_000,
            })),
        ),
        ("probe", p(Message::Probe { sent_ms: 12_345 })),
        (
            "queue-delay",
            p(Message::QueueDelay {
                sent_ms: 12_345,
                ms: 40,
            }),
        ),
    ]
}
