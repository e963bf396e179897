//! Interop with the 2018 C++ reference (issue 12 §1), over real loopback sockets: every case
//! speaks the reference's exact bytes (spec §2–§4.5), as it was seen on the wire when the
//! reference was run by hand against floecast. The reference itself is GPLv3 and never runs
//! here. Joins that never complete are never admitted; peers and splitters built with the NTS
//! rule set are refused with a message saying so; reference peers read our whole Ogg header
//! (our response head included) and ffmpeg decodes what they would play; a floecast peer
//! leaves politely when its server shuts down.

mod common;
mod interop_support;

use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

use common::*;
use floecast::config::{MountConfig, P2pspConfig, SplitterSettings};
use floecast::p2psp::Codec;
use floecast::p2psp::compat::{self, CompatConfig};
use floecast::team::TeamState;
use floecast::team::peer::PeerLink;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

const T: Duration = Duration::from_secs(5);
const C: usize = 1024;

fn gen_c_splitter() -> SplitterSettings {
    SplitterSettings {
        port: 0,
        bind_address: Some("127.0.0.1".into()),
        max_chunk: C,
        compat: true,
        ..Default::default()
    }
}

/// A server with a Gen C splitter on `mount`, and its team endpoint.
async fn splitter_server(mount: &str) -> (TestServer, SocketAddr) {
    let mut config = test_config();
    config.mounts.push(MountConfig {
        name: mount.into(),
        p2psp: Some(P2pspConfig::Splitter(gen_c_splitter())),
        ..Default::default()
    });
    let srv = start(config).await;
    let team = splitter_addr(&srv, mount).await;
    (srv, team)
}

fn members(srv: &TestServer, mount: &str) -> Option<usize> {
    match srv.app.server.tasks.teams.get(mount) {
        Some(TeamState::Splitter { stats: Some(s), .. }) => Some(s.peers.len()),
        _ => None,
    }
}

/// An MP3 source that keeps writing (about real time) until dropped.
async fn mp3_source(srv: &TestServer, mount: &str) -> tokio::task::JoinHandle<()> {
    let mut src = source(srv.addr, mount, "audio/mpeg", "").await;
    let frames = mp3_frames(4000);
    let task = tokio::spawn(async move {
        for f in frames.chunks(417 * 4) {
            if src.write_all(f).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    wait_queued(srv, mount, 4096, "source live", T).await;
    task
}

/// No datagram arrives at `udp` for `d`.
async fn silent(udp: &UdpSocket, d: Duration) -> bool {
    let mut b = vec![0u8; 4096];
    tokio::time::timeout(d, udp.recv_from(&mut b))
        .await
        .is_err()
}

/// Issue 12 §1.5: a joiner that sends its role byte, takes the configuration and hangs up
/// without `R` is never a member: no chunk is ever sent to it. One that completes the join
/// (`R`, then hang up, as the reference does) is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_that_never_completes_is_never_admitted() {
    let (srv, team) = splitter_server("/j.mp3").await;
    let feeding = mp3_source(&srv, "/j.mp3").await;
    let (udp, tcp, _) = reference_join(team, b'P').await;
    drop(tcp);
    assert!(
        silent(&udp, Duration::from_millis(1500)).await,
        "chunks were sent to a joiner that hung up"
    );
    assert_eq!(members(&srv, "/j.mp3"), Some(0));

    let (udp, mut tcp, _) = reference_join(team, b'P').await;
    tcp.write_all(b"R").await.unwrap();
    drop(tcp);
    let mut b = vec![0u8; 4096];
    let (n, from) = tokio::time::timeout(T, udp.recv_from(&mut b))
        .await
        .expect("a completed join gets chunks")
        .unwrap();
    assert_eq!((n, from), (2 + C, team));
    wait_for("one member", T, || members(&srv, "/j.mp3") == Some(1)).await;
    feeding.abort();
}

/// Issue 12 §1.7, splitter side: a reference peer built with the NTS rule set sends `R` and
/// then stays connected, waiting for a 7-character peer ID. It is refused (the connection
/// closed, never a member) rather than admitted as a DBS peer it is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nts_reference_peer_is_refused() {
    let (srv, team) = splitter_server("/n.mp3").await;
    let feeding = mp3_source(&srv, "/n.mp3").await;
    let (udp, mut tcp, _) = reference_join(team, b'P').await;
    tcp.write_all(b"R").await.unwrap();
    // Waits for its ID as Peer_NTS does: the splitter closes instead.
    let mut id = [0u8; 7];
    let r = tokio::time::timeout(T, tcp.read(&mut id))
        .await
        .expect("the splitter closes");
    assert!(matches!(r, Ok(0) | Err(_)), "no peer ID: {r:?}");
    assert!(silent(&udp, Duration::from_millis(1000)).await);
    assert_eq!(members(&srv, "/n.mp3"), Some(0));
    feeding.abort();
}

/// An HTTP source of MP3 frames, for the Gen C joins below to fetch a header from.
async fn mp3_http_source() -> SocketAddrV4 {
    let stream = mp3_frames(20);
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let SocketAddr::V4(source_at) = http.local_addr().unwrap() else {
        unreachable!()
    };
    tokio::spawn(async move {
        while let Ok((mut s, _)) = http.accept().await {
            let served = stream.clone();
            tokio::spawn(async move {
                let mut req = [0u8; 1024];
                let _ = s.read(&mut req).await;
                let _ = s
                    .write_all(b"HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\n")
                    .await;
                let _ = s.write_all(&served).await;
            });
        }
    });
    source_at
}

/// A splitter built with the NTS rule set, on a port of its own: to each joiner, the common
/// configuration, the monitors as the list, then the newcomer's 7-character ID; it keeps the
/// connection for the NAT traversal that follows. Returns the team's address, how many joins
/// it has seen, and its task.
async fn nts_splitter(
    source: SocketAddrV4,
) -> (
    SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    tokio::task::JoinHandle<()>,
) {
    let splitter = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let team = splitter.local_addr().unwrap();
    let joins = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = joins.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = splitter.accept().await {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut role = [0u8; 1];
                if tcp.read_exact(&mut role).await.is_err() {
                    return;
                }
                let monitor: SocketAddrV4 = "127.0.0.1:40001".parse().unwrap();
                let cfg = CompatConfig {
                    source,
                    channel: "nts.mp3".into(),
                    header_size: 1024,
                    chunk_size: C as u16,
                    buffer_size: 256,
                    number_of_monitors: 1,
                    peers: vec![monitor],
                };
                let _ = tcp.write_all(&compat::encode_config(&cfg).unwrap()).await;
                let _ = tcp.write_all(b"Q7ZX0AB").await;
                let mut rest = Vec::new();
                let _ = tokio::time::timeout(T, tcp.read_to_end(&mut rest)).await;
            });
        }
    });
    (team, joins, task)
}

/// Issue 12 §1.7, peer side: a splitter built with the NTS rule set sends, after the common
/// configuration, a monitors-only list and then the newcomer's 7-character ID. Our peer
/// refuses that team with a message naming NTS, instead of joining it as a DBS team.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_peer_refuses_an_nts_splitter() {
    let source = mp3_http_source().await;
    let (team, _, script) = nts_splitter(source).await;
    let err = match PeerLink::join(&team.to_string(), Codec::CompatGenC).await {
        Ok(_) => panic!("joined an NTS team"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("NTS") && err.contains("Q7ZX0AB") && err.contains("DBS"),
        "{err}"
    );
    script.abort();
}

/// A peer mount refused by an NTS splitter tries again only after the refusal backoff (30 s
/// at first), not the second of a lost splitter: nothing changes by the next second, and a
/// reference NTS splitter keeps each refused try as a member that takes its share of chunks
/// until it times out. (On the lost-splitter backoff it joined three times in 4 s.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_mount_refused_by_an_nts_splitter_keeps_away() {
    let source = mp3_http_source().await;
    let (team, joins, script) = nts_splitter(source).await;
    let mut config = test_config();
    config
        .mounts
        .push(peer_mount_of("/nts.mp3", &team.to_string(), true));
    let srv = start(config).await;
    let count = || joins.load(std::sync::atomic::Ordering::SeqCst);
    wait_for("the first join", Duration::from_secs(10), || count() >= 1).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(count(), 1, "joins of a team that refused us");
    drop(srv);
    script.abort();
}

/// Issue 12 §1.2: a reference peer copies our HTTP response to its player until
/// `header_size` bytes have passed (128-byte reads), so `header_size` must cover our head and
/// the whole Ogg header. What it would play (those bytes, then the chunks' payloads) decodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_peer_reads_our_whole_ogg_header() {
    if !interop_support::have_all("a_reference_peer_reads_our_whole_ogg_header", &["ffmpeg"]) {
        return;
    }
    let (srv, team) = splitter_server("/o.ogg").await;
    let mut feeder = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi"])
        .args(["-i", "sine=frequency=440:duration=60", "-c:a", "libvorbis"])
        .args(["-content_type", "application/ogg", "-f", "ogg"])
        .arg(format!("icecast://source:hackme@{}/o.ogg", srv.addr))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg source");
    wait_queued(
        &srv,
        "/o.ogg",
        8192,
        "source queued",
        Duration::from_secs(10),
    )
    .await;
    let (udp, mut tcp, cfg) = reference_join(team, b'P').await;
    // Peer_core::RelayHeader: GET without Host, 128-byte reads until header_size passed.
    let mut http = connect(SocketAddr::V4(cfg.source)).await;
    http.write_all(format!("GET /{} HTTP/1.1\r\n\r\n", cfg.channel).as_bytes())
        .await
        .unwrap();
    let mut played = Vec::new();
    while played.len() < usize::from(cfg.header_size) {
        let mut b = [0u8; 128];
        let n = tokio::time::timeout(T, http.read(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "source closed");
        played.extend_from_slice(&b[..n]);
    }
    drop(http);
    tcp.write_all(b"R").await.unwrap();
    drop(tcp);
    let head_len = played
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("our head")
        + 4;
    let pages = interop_support::ogg_pages(&played[head_len..]);
    // The identification page, then the comment and setup headers, whole, inside header_size.
    assert!(pages.len() >= 2, "{} pages", pages.len());
    let mut d = vec![0u8; 4096];
    let until = tokio::time::Instant::now() + Duration::from_secs(4);
    while let Ok(Ok((n, _))) = tokio::time::timeout_at(until, udp.recv_from(&mut d)).await {
        assert_eq!(n, 2 + C);
        played.extend_from_slice(&d[2..n]);
    }
    let dir = std::env::temp_dir().join(format!("floecast-ref-ogg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("played.ogg");
    std::fs::write(&file, &played[head_len..]).unwrap();
    let out = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(&file)
        .args(["-f", "s16le", "-ac", "1", "-ar", "8000", "-"])
        .output()
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("Header processing failed"),
        "the setup header was cut: {err}"
    );
    // At least two seconds of sound (8000 samples of 2 bytes a second).
    assert!(
        out.stdout.len() >= 2 * 16_000,
        "{} bytes: {err}",
        out.stdout.len()
    );
    let _ = feeder.kill().await;
}

/// Issue 12 §1.3: a floecast Gen C peer mount whose server shuts down says goodbye to the
/// (reference) splitter, repeats it at each splitter chunk until the splitter answers at the
/// start of its next round, then says goodbye to its neighbours, before the server is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gen_c_peer_says_goodbye_on_shutdown() {
    let stream = mp3_frames(200);
    let head = b"HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\n";
    let team = ScriptedGenCTeam::new(&stream, head, 4 * 417).await;
    let ScriptedGenCTeam {
        ref other,
        ref splitter_udp,
        ..
    } = team;
    let mut config = test_config();
    config.mounts.push(team.peer_mount("/bye.mp3"));
    let srv = start(config).await;
    let (mut tcp, peer_at, _) = team.accept_join().await;
    team.configure(&mut tcp, "bye.mp3", C as u16).await;
    drop(tcp);
    let chunk = |i: u16| {
        let mut dg = i.to_be_bytes().to_vec();
        dg.extend_from_slice(&stream[usize::from(i) * C..usize::from(i + 1) * C]);
        dg
    };
    for i in 0..20 {
        splitter_udp.send_to(&chunk(i), peer_at).await.unwrap();
    }
    let shutdown = tokio::spawn(srv.app.shutdown(Duration::from_secs(5)));
    // Goodbyes arrive; like the reference splitter, answer only after two more chunks.
    let mut d = vec![0u8; 4096];
    let mut goodbyes = 0;
    let mut next = 20u16;
    while goodbyes < 3 {
        let (n, from) = tokio::time::timeout(T, splitter_udp.recv_from(&mut d))
            .await
            .expect("goodbyes to the splitter")
            .unwrap();
        if (n, from, d[0]) == (1, peer_at, b'G') {
            goodbyes += 1;
            if goodbyes < 3 {
                splitter_udp.send_to(&chunk(next), peer_at).await.unwrap();
                next += 1;
            }
        }
    }
    splitter_udp.send_to(b"G", peer_at).await.unwrap();
    // Then a goodbye to the neighbour (after the rest of the last splitter chunk).
    let until = tokio::time::Instant::now() + T;
    let mut farewell = false;
    while let Ok(Ok((n, from))) = tokio::time::timeout_at(until, other.recv_from(&mut d)).await {
        if (n, from, d[0]) == (1, peer_at, b'G') {
            farewell = true;
            break;
        }
    }
    assert!(farewell, "no goodbye to the neighbour");
    tokio::time::timeout(Duration::from_secs(6), shutdown)
        .await
        .expect("shutdown ends")
        .unwrap();
}

/// The tags of the whole MP3 frames in `data` (see `mp3_frames`), resynchronising on garbage.
fn frame_tags(data: &[u8]) -> Vec<u8> {
    let mut tags = Vec::new();
    let mut i = 0;
    while i + 5 <= data.len() {
        if data[i] == 0xFF && data[i + 1] == 0xFB {
            let len = 417 + usize::from(data[i + 2] & 0x02 != 0);
            if i + len > data.len() {
                break;
            }
            tags.push(data[i + 4]);
            i += len;
        } else {
            i += 1;
        }
    }
    tags
}

/// Frames missing from a run of tags that count up by one (mod 256).
fn frames_lost(tags: &[u8]) -> usize {
    tags.windows(2)
        .map(|w| usize::from(w[1].wrapping_sub(w[0]).wrapping_sub(1)))
        .sum()
}

/// Issue 12 §1.4, with real processes: three `floecast peer --codec gen-c` in a floecast Gen C
/// team; one is SIGKILLed (no goodbye). The splitter expels it within a bounded time (its last
/// chunks all reported lost by the other two, which offered to monitor), and the survivors'
/// listeners lose at most those chunks (LRS resends usually make it none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_gen_c_peer_is_expelled_and_the_others_play_on() {
    let (srv, team) = splitter_server("/k.mp3").await;
    let feeding = mp3_source(&srv, "/k.mp3").await;
    let mut peers = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..3 {
        let port = free_port();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_floecast"))
            .args([
                "peer",
                &team.to_string(),
                "--codec",
                "gen-c",
                "--bind",
                "127.0.0.1",
            ])
            .args(["--listen", &port.to_string()])
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("floecast peer");
        peers.push(child);
        ports.push(port);
    }
    wait_for("three members", Duration::from_secs(20), || {
        members(&srv, "/k.mp3") == Some(3)
    })
    .await;
    let mut listeners = Vec::new();
    for port in &ports[..2] {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut got = None;
        for _ in 0..100 {
            let mut l = connect(addr).await;
            l.write_all(b"GET /stream HTTP/1.0\r\n\r\n").await.unwrap();
            let (head, rest) = read_head(&mut l, T).await;
            if head.starts_with("HTTP/1.0 200") {
                got = Some((l, rest));
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (mut l, rest) = got.expect("the peer serves its stream");
        listeners.push(tokio::spawn(async move {
            let mut all = rest;
            let mut b = vec![0u8; 16384];
            let until = tokio::time::Instant::now() + Duration::from_secs(9);
            while let Ok(Ok(n)) = tokio::time::timeout_at(until, l.read(&mut b)).await {
                if n == 0 {
                    break;
                }
                all.extend_from_slice(&b[..n]);
            }
            all
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    peers[2].start_kill().unwrap();
    let killed = tokio::time::Instant::now();
    wait_for("the dead peer expelled", Duration::from_secs(8), || {
        members(&srv, "/k.mp3") == Some(2)
    })
    .await;
    let took = killed.elapsed();
    // 8 chunks in a row at ~5 a second to it (fewer as ACS lowers its share), the 300 ms
    // complaint delay, stats every 0.5 s: about 3.5 s measured.
    assert!(took < Duration::from_secs(8), "expelled after {took:?}");
    for (k, l) in listeners.into_iter().enumerate() {
        let got = l.await.unwrap();
        let tags = frame_tags(&got);
        assert!(tags.len() > 200, "listener {k}: {} frames", tags.len());
        // Past the splice where the join's header fetch meets the team's chunks (Gen C
        // joins splice at an arbitrary point), at most the dead run: 8 chunks of 1024 bytes,
        // about 20 frames. LRS resends usually make it none.
        let lost = frames_lost(&tags[10..]);
        assert!(
            lost <= 20,
            "listener {k} lost {lost} frames (took {took:?})"
        );
        eprintln!(
            "listener {k}: {} frames, {lost} lost; expelled after {took:?}",
            tags.len()
        );
    }
    feeding.abort();
}

/// Issue 12 §1.3, native codec: a floecast peer mount whose server shuts down leaves its team
/// with a goodbye (the splitter counts it as one, well before its silence timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_peer_says_goodbye_on_shutdown() {
    let mut config = test_config();
    config.mounts.push(MountConfig {
        name: "/nat.mp3".into(),
        p2psp: Some(P2pspConfig::Splitter(SplitterSettings {
            port: 0,
            bind_address: Some("127.0.0.1".into()),
            ..Default::default()
        })),
        ..Default::default()
    });
    let a = start(config).await;
    let team = splitter_addr(&a, "/nat.mp3").await;
    let feeding = mp3_source(&a, "/nat.mp3").await;
    let mut config = test_config();
    config
        .mounts
        .push(peer_mount_of("/nat.mp3", &team.to_string(), false));
    let b = start(config).await;
    wait_for("B joined", Duration::from_secs(10), || {
        members(&a, "/nat.mp3") == Some(1)
    })
    .await;
    let left = |a: &TestServer| match a.app.server.tasks.teams.get("/nat.mp3") {
        Some(TeamState::Splitter { stats: Some(s), .. }) => (s.peers.len(), s.left_goodbye),
        _ => (usize::MAX, 0),
    };
    b.app.shutdown(Duration::from_secs(5)).await;
    // Well inside the 3 s silence timeout; stats are published every 0.5 s.
    wait_for("B left with a goodbye", Duration::from_millis(1500), || {
        left(&a) == (0, 1)
    })
    .await;
    feeding.abort();
}
