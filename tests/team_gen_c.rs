//! Gen C (the 2018 C++ reference's wire format) over real loopback sockets: our Gen C splitter
//! against a peer that speaks the reference's exact bytes, our Gen C peer mount inside a team
//! whose splitter and other member speak the reference's exact bytes, and a floecast → floecast
//! Gen C team whose listeners decode with ffmpeg. The bytes follow spec §2–§3.

mod common;
mod interop_support;
mod media;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::*;
use floecast::config::{MountConfig, P2pspConfig, SplitterSettings};
use floecast::format::ogg::parse_page;
use floecast::team::TeamState;
use interop_support::assert_decodes;
use media::{Kind, Media};
use tokio::io::AsyncWriteExt;

const T: Duration = Duration::from_secs(5);
const C: usize = 1024;

fn gen_c_splitter() -> SplitterSettings {
    SplitterSettings {
        port: 0,
        bind_address: Some("127.0.0.1".into()),
        max_peers: 100,
        buffer: 256,
        max_chunk: C,
        compat: true,
        ..Default::default()
    }
}

/// A reference peer, byte by byte (§2 peer side): role byte, configuration, header fetched from
/// the source endpoint the splitter names, `R`; then 1026-byte chunks arrive over UDP on the
/// TCP connection's local port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_peer_joins_our_gen_c_splitter() {
    let mut config = test_config();
    config.mounts.push(MountConfig {
        name: "/team.mp3".into(),
        p2psp: Some(P2pspConfig::Splitter(gen_c_splitter())),
        ..Default::default()
    });
    let srv = start(config).await;
    let team = splitter_addr(&srv, "/team.mp3").await;
    let mut src = source(srv.addr, "/team.mp3", "audio/mpeg", "").await;
    let stream = mp3_frames(2000);
    src.write_all(&stream[..200 * 417]).await.unwrap();
    let mount = srv.app.server.registry.get("/team.mp3").unwrap();
    wait_for("queued", T, || mount.queued_bytes() > 50_000).await;

    // UDP and TCP on the same local port (the reference's ListenToTheTeam).
    let (udp, mut tcp, cfg) = reference_join(team, b'P').await;
    assert_eq!(cfg.channel, "team.mp3");
    assert_eq!((cfg.chunk_size, cfg.buffer_size), (C as u16, 256));
    assert_eq!(*cfg.source.ip(), Ipv4Addr::LOCALHOST);
    assert_eq!(cfg.source.port(), srv.addr.port());
    assert!(cfg.peers.is_empty(), "first member: an empty list");
    // Step 6: the header from the source, exactly as the reference asks for it.
    let head = exchange_head(
        SocketAddr::V4(cfg.source),
        format!("GET /{} HTTP/1.1\r\n\r\n", cfg.channel).as_bytes(),
    )
    .await;
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    // The reference counts the response head in header_size; MP3 has no stream header.
    assert_eq!(usize::from(cfg.header_size), head.len(), "{head}");
    tcp.write_all(b"R").await.unwrap();
    drop(tcp);
    wait_for("member listed", T, || {
        matches!(srv.app.server.tasks.teams.get("/team.mp3"),
            Some(TeamState::Splitter { stats: Some(s), .. }) if s.peers.len() == 1)
    })
    .await;

    src.write_all(&stream[200 * 417..]).await.unwrap();
    // The only member gets every chunk: 2-byte big-endian numbers, consecutive, 1024 bytes
    // of payload each, and the payloads are the source's bytes in order.
    let mut got = Vec::new();
    let mut last: Option<u16> = None;
    let mut d = vec![0u8; 65536];
    while got.len() < 300 * 417 {
        let (n, from) = tokio::time::timeout(T, udp.recv_from(&mut d))
            .await
            .expect("chunks keep coming")
            .unwrap();
        assert_eq!(from, team, "chunks come from the splitter's port");
        assert_eq!(n, 2 + C, "a Gen C chunk is exactly 2 + 1024 bytes");
        let no = u16::from_be_bytes([d[0], d[1]]);
        if let Some(l) = last {
            assert_eq!(no, l.wrapping_add(1), "consecutive numbers");
        }
        last = Some(no);
        got.extend_from_slice(&d[2..n]);
    }
    let at = find(&stream, &got[..4096]).expect("chunk bytes are the source's bytes");
    assert_bytes(&got, &stream[at..at + got.len()], "the team's stream");
    // Goodbye: the splitter answers G and drops us.
    udp.send_to(b"G", team).await.unwrap();
    loop {
        let (n, _) = tokio::time::timeout(T, udp.recv_from(&mut d))
            .await
            .expect("a goodbye back")
            .unwrap();
        if n == 1 {
            assert_eq!(d[0], b'G');
            break;
        }
    }
}

/// Our Gen C peer mount inside a team whose splitter and other member are scripted here with
/// the reference's bytes: it greets the listed member with `H`, relays every splitter chunk to
/// it (receive-and-feed), and its HTTP listeners get the header and the chunks' bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_gen_c_peer_joins_a_reference_team() {
    let stream = mp3_frames(1500);
    // The "Icecast" the reference splitter names as its source: serves the stream head.
    let head = b"HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\nicy-name: Ref\r\n\r\n";
    let team = ScriptedGenCTeam::new(&stream, head, 8 * 417).await;
    let ScriptedGenCTeam {
        ref other,
        ref splitter_udp,
        ..
    } = team;

    let mut config = test_config();
    config.mounts.push(team.peer_mount("/ref.mp3"));
    let srv = start(config).await;

    let (mut tcp, peer_at, role) = team.accept_join().await;
    // It offers to monitor: it will report lost chunks, which is how dead members go.
    assert_eq!(role, b'M');
    let ready = team.configure(&mut tcp, "ref.mp3", C as u16).await;
    assert_eq!(ready, b'R');
    drop(tcp);
    // Hello to the listed member, from the UDP socket on the join's port.
    let mut d = vec![0u8; 65536];
    let (n, from) = tokio::time::timeout(T, other.recv_from(&mut d))
        .await
        .expect("a hello")
        .unwrap();
    assert_eq!((&d[..n], from), (&b"H"[..], peer_at));

    // The splitter streams fixed 1024-byte chunks to our peer; the other member sends its
    // own share too. Our peer relays each splitter chunk to the other member.
    let body = &stream[8 * 417..];
    let chunks: Vec<&[u8]> = body.chunks_exact(C).collect();
    let mut relayed = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        let mut dg = (i as u16).to_be_bytes().to_vec();
        dg.extend_from_slice(c);
        if i % 2 == 0 {
            splitter_udp.send_to(&dg, peer_at).await.unwrap();
        } else {
            other.send_to(&dg, peer_at).await.unwrap();
        }
        while let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_millis(20), other.recv_from(&mut d)).await
        {
            assert_eq!(n, 2 + C, "relayed as a Gen C chunk");
            relayed.push(u16::from_be_bytes([d[0], d[1]]));
        }
    }
    let from_splitter: Vec<u16> = (0..chunks.len() as u16).step_by(2).collect();
    relayed.sort_unstable();
    relayed.dedup();
    assert!(
        from_splitter.iter().filter(|n| relayed.contains(n)).count() >= from_splitter.len() - 2,
        "relayed {relayed:?}"
    );
    assert!(
        relayed.iter().all(|n| n % 2 == 0),
        "peer chunks are never re-relayed"
    );
    // An ordinary mount, fed with the header then the team's bytes.
    let mount = srv.app.server.registry.get("/ref.mp3").expect("peer mount");
    wait_for("team bytes in the mount", T, || {
        mount.queued_bytes() > 100 * 1024
    })
    .await;
    let mut l = connect(srv.addr).await;
    l.write_all(b"GET /ref.mp3 HTTP/1.0\r\n\r\n").await.unwrap();
    let (head, rest) = read_head(&mut l, T).await;
    assert!(head.contains("Content-Type: audio/mpeg"), "{head}");
    assert!(head.contains("icy-name:Ref"), "{head}");
    let got = [rest, read_at_least(&mut l, 60_000, T).await].concat();
    let audio = confirmed(&got);
    assert!(
        find(&stream, &audio[..2000]).is_some(),
        "listener bytes are the stream"
    );
}

/// floecast → floecast in Gen C: A splits, B joins as a Gen C peer; ffmpeg decodes B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gen_c_team_of_two_floecasts_decodes() {
    if !have("ffmpeg") {
        eprintln!("SKIP: ffmpeg not installed (a_gen_c_team_of_two_floecasts_decodes)");
        return;
    }
    let mut ca = test_config();
    ca.mounts.push(MountConfig {
        name: "/g.mp3".into(),
        p2psp: Some(P2pspConfig::Splitter(gen_c_splitter())),
        ..Default::default()
    });
    let a = start(ca).await;
    let team = splitter_addr(&a, "/g.mp3").await;
    let mut source = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi"])
        .args(["-i", "sine=frequency=440:duration=60", "-c:a", "libmp3lame"])
        .args(["-b:a", "128k", "-content_type", "audio/mpeg", "-f", "mp3"])
        .arg(format!("icecast://source:hackme@{}/g.mp3", a.addr))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg source");
    wait_for("A live", Duration::from_secs(10), || {
        a.app.server.registry.contains("/g.mp3")
    })
    .await;
    let mut cb = test_config();
    cb.mounts
        .push(peer_mount_of("/g.mp3", &team.to_string(), true));
    let b = start(cb).await;
    wait_queued(&b, "/g.mp3", 32 * 1024, "B live", Duration::from_secs(15)).await;
    assert_decodes(&format!("http://{}/g.mp3", b.addr), 3).await;
    let _ = source.kill().await;
}

/// floecast → floecast in Gen C with Ogg Vorbis, B joining while A's source has sent its
/// header pages and no data page yet, as a source that has just connected. A announces what
/// its listeners get ahead of the stream: the response head and the Vorbis header pages. It
/// used to announce the head alone until its team had carried a page: B then took part of the
/// setup header, and its listeners got an undecodable stream for as long as the team lasted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gen_c_ogg_team_joined_before_the_first_data_page_decodes() {
    if !have("ffmpeg") {
        eprintln!(
            "SKIP: ffmpeg not installed (a_gen_c_ogg_team_joined_before_the_first_data_page_decodes)"
        );
        return;
    }
    let media = Media::new();
    let vorbis = std::fs::read(media.get(Kind::PinkVorbis).await).unwrap();
    let header_len = ogg_header_len(&vorbis);
    let mut ca = test_config();
    ca.mounts.push(MountConfig {
        name: "/g.ogg".into(),
        p2psp: Some(P2pspConfig::Splitter(gen_c_splitter())),
        ..Default::default()
    });
    let a = start(ca).await;
    let team = splitter_addr(&a, "/g.ogg").await;
    let mut src = source(a.addr, "/g.ogg", "application/ogg", "").await;
    src.write_all(&vorbis[..header_len]).await.unwrap();
    wait_for("the Vorbis headers framed", T, || {
        a.app
            .server
            .registry
            .get("/g.ogg")
            .is_some_and(|m| m.codec().chains == 1)
    })
    .await;
    let mount = a.app.server.registry.get("/g.ogg").unwrap();

    // What a reference peer is told now (it hangs up without `R`: no member).
    let offered = usize::from(reference_join(team, b'P').await.2.header_size);

    // B asks for the header before any data page: its GET waits on A for the first one.
    let mut cb = test_config();
    cb.mounts
        .push(peer_mount_of("/g.ogg", &team.to_string(), true));
    let b = start(cb).await;
    wait_for("B fetching the header", T, || mount.listener_count() == 1).await;
    let rest = vorbis[header_len..].to_vec();
    let feeder = tokio::spawn(async move {
        // About twice the stream's rate: 4 KiB every 125 ms.
        for piece in rest.chunks(4096) {
            if src.write_all(piece).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(125)).await;
        }
    });
    wait_queued(&b, "/g.ogg", 32 * 1024, "B live", Duration::from_secs(15)).await;
    assert_decodes(&format!("http://{}/g.ogg", b.addr), 3).await;
    let head = exchange_head(a.addr, b"GET /g.ogg HTTP/1.1\r\n\r\n").await;
    assert_eq!(
        offered,
        head.len() + header_len,
        "header_size: the response head ({}) and the header pages ({header_len})",
        head.len()
    );
    feeder.abort();
}

/// Bytes of the Ogg Vorbis header pages at the start of `file` (those with granule 0).
fn ogg_header_len(file: &[u8]) -> usize {
    let mut pos = 0;
    while let Ok(Some((hdr, len))) = parse_page(&file[pos..]) {
        if hdr.granule_position != 0 {
            return pos;
        }
        pos += len;
    }
    panic!("no data page in the Vorbis file");
}

async fn exchange_head(addr: SocketAddr, req: &[u8]) -> String {
    let mut s = connect(addr).await;
    s.write_all(req).await.unwrap();
    read_head(&mut s, T).await.0
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
