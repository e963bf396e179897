//! Push relays over real sockets: floecast A pushes a mount to floecast B (source → A,
//! A `[[push]]` → B). B's listeners must get exactly the bytes the source sent, titles set on
//! A must reach B's ICY listeners, a restarted B must get the stream back, a wrong password
//! must show as a clear error with slow retries, and `auto` must fall back from PUT to SOURCE
//! like libshout. The ffmpeg tests decode what B serves (they skip without ffmpeg).

mod common;
mod interop_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use floecast::config::{
    Config, ListenSocket, MountConfig, P2pspConfig, PushConfig, PushProtocol, SplitterSettings,
};
use floecast::relay::push::PushPhase;
use floecast::server::Server;
use floecast::team::TeamState;
use interop_support::{
    MP3_ARGS, OGG_VORBIS_ARGS, Proc, TempDir, assert_decodes, assert_ogg_start, chromium_dump_dom,
    ffmpeg_source, have_all, header, raw_get, raw_get_ogg, wait_live,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const T: Duration = Duration::from_secs(10);

fn push_to(remote: SocketAddr, mount: &str, remote_mount: &str, password: &str) -> PushConfig {
    PushConfig {
        mount: mount.into(),
        server: remote.ip().to_string(),
        port: remote.port(),
        remote_mount: remote_mount.into(),
        username: "source".into(),
        password: password.into(),
        protocol: PushProtocol::Auto,
        bind: None,
        tls: Default::default(),
    }
}

fn config_with(pushes: Vec<PushConfig>) -> Config {
    let mut c = test_config();
    c.pushes = pushes;
    c
}

/// MP3 frame `i` (128 kbit/s, 44.1 kHz): its index is in bytes 4..8, so any stretch of the
/// stream says exactly where in the source it comes from.
fn frame(i: u32) -> Vec<u8> {
    let padding = i % 3 == 2;
    let len = if padding { 418 } else { 417 };
    let mut f = vec![(i % 251) as u8; len];
    f[..4].copy_from_slice(&[0xFF, 0xFB, 0x90 | if padding { 0x02 } else { 0 }, 0x00]);
    f[4..8].copy_from_slice(&i.to_le_bytes());
    f
}

/// The source's bytes from frame `first` on, at least `len` of them.
fn source_from(first: u32, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 418);
    let mut i = first;
    while out.len() < len {
        out.extend_from_slice(&frame(i));
        i += 1;
    }
    out
}

/// Assert `body` is an unbroken stretch of the source, starting on a frame.
#[track_caller]
fn assert_source_stretch(body: &[u8], what: &str) -> u32 {
    assert!(body.len() > 8, "{what}: only {} bytes", body.len());
    assert_eq!(
        &body[..2],
        &[0xFF, 0xFB],
        "{what}: does not start on a frame"
    );
    let first = u32::from_le_bytes(body[4..8].try_into().unwrap());
    assert_bytes(body, &source_from(first, body.len())[..body.len()], what);
    first
}

/// A SOURCE client on `addr` sending frames 0, 1, 2, … at about 400 frames/s until stopped.
struct Feeder {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Feeder {
    async fn start(addr: SocketAddr, mount: &str) -> Feeder {
        Self::start_at(addr, mount, 10).await
    }

    /// Like `start`, with `per_tick` frames every 25 ms.
    async fn start_at(addr: SocketAddr, mount: &str, per_tick: u32) -> Feeder {
        let mut s = source(
            addr,
            mount,
            "audio/mpeg",
            "ice-name: Push Test\r\nice-genre: Jazz\r\n",
        )
        .await;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut i = 0u32;
            while !flag.load(Ordering::Relaxed) {
                let chunk: Vec<u8> = (i..i + per_tick).flat_map(frame).collect();
                i += per_tick;
                if s.write_all(&chunk).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        });
        Feeder { stop, task }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.abort();
    }
}

async fn wait_mount(server: &Server, mount: &str, timeout: Duration) {
    wait_for(&format!("{mount} to be live"), timeout, || {
        server.registry.get(mount).is_some_and(|m| !m.is_ended())
    })
    .await;
}

async fn http_get(addr: SocketAddr, path: &str, auth: &str) -> String {
    let req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\n\r\n");
    String::from_utf8_lossy(&exchange(addr, req.as_bytes(), T).await).into_owned()
}

#[tokio::test]
async fn pushed_mp3_is_byte_identical_and_titles_follow() {
    let b = start(test_config()).await;
    let a = start(config_with(vec![push_to(
        b.addr,
        "/live.mp3",
        "/relayed.mp3",
        "hackme",
    )]))
    .await;
    let feeder = Feeder::start(a.addr, "/live.mp3").await;
    wait_mount(&b.app.server, "/relayed.mp3", T).await;

    // A's listener and B's listener both get unbroken stretches of the source.
    let (head_a, body_a) = raw_get(a.addr, "/live.mp3", "", 60_000, T).await;
    let (head_b, body_b) = raw_get(b.addr, "/relayed.mp3", "", 60_000, T).await;
    assert!(head_a.starts_with("HTTP/1.0 200 OK"), "{head_a}");
    assert!(head_b.starts_with("HTTP/1.0 200 OK"), "{head_b}");
    assert_source_stretch(&body_a, "A's listener");
    assert_source_stretch(&body_b, "B's listener");
    // The source's stream facts travelled as ice-* headers.
    assert_eq!(header(&head_b, "icy-name"), Some("Push Test"), "{head_b}");
    assert_eq!(header(&head_b, "icy-genre"), Some("Jazz"), "{head_b}");
    assert_eq!(header(&head_b, "Content-Type"), Some("audio/mpeg"));
    let b_mount = b.app.server.registry.get("/relayed.mp3").unwrap();
    assert!(
        b_mount.info().stream.user_agent.starts_with("floecast/"),
        "{:?}",
        b_mount.info().stream.user_agent
    );

    // A title set on A (admin metadata) reaches B's mount and its ICY listeners.
    let reply = http_get(
        a.addr,
        "/admin/metadata?mount=/live.mp3&mode=updinfo&song=Hello%20Push%20%C3%A9",
        SOURCE_AUTH,
    )
    .await;
    assert!(reply.contains("Metadata update successful"), "{reply}");
    wait_for("the title on B", T, || {
        b_mount.metadata().display() == "Hello Push é"
    })
    .await;
    let (head, body) = raw_get(b.addr, "/relayed.mp3", "Icy-MetaData: 1\r\n", 40_000, T).await;
    assert_eq!(header(&head, "icy-metaint"), Some("16000"), "{head}");
    assert!(
        interop_support::find(&body, "StreamTitle='Hello Push é';".as_bytes()).is_some(),
        "no title block in B's ICY stream"
    );

    // State: /api/status and /metrics on A.
    let status = http_get(a.addr, "/api/status", SOURCE_AUTH).await;
    let json: serde_json::Value =
        serde_json::from_str(&status[status.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    let p = &json["pushes"][0];
    assert_eq!(p["mount"], "/live.mp3");
    assert_eq!(p["remote"], format!("http://{}/relayed.mp3", b.addr));
    assert_eq!(p["state"], "up");
    assert_eq!(p["method"], "PUT");
    assert_eq!(p["attempts"], 1);
    assert!(p["bytes_sent"].as_u64().unwrap() > 60_000, "{p}");
    assert!(p["connected_since"].is_string(), "{p}");
    let metrics = http_get(a.addr, "/metrics", SOURCE_AUTH).await;
    let labels = format!(
        "{{mount=\"/live.mp3\",remote=\"http://{}/relayed.mp3\"}}",
        b.addr
    );
    assert!(
        metrics.contains(&format!("floecast_push_up{labels} 1")),
        "{metrics}"
    );
    assert!(metrics.contains(&format!("floecast_push_connect_attempts_total{labels} 1")));
    assert!(metrics.contains(&format!("floecast_push_sent_bytes_total{labels} ")));

    // The source leaves A: the push disconnects, B's mount ends, the push waits.
    feeder.stop();
    wait_for("B's mount to end", T, || {
        b.app.server.registry.get("/relayed.mp3").is_none()
    })
    .await;
    let state = a.app.server.tasks.pushes.list()[0].clone();
    wait_for("the push to wait", T, || {
        state.phase() == PushPhase::Waiting
    })
    .await;
    // A new source on A is pushed again.
    let feeder = Feeder::start(a.addr, "/live.mp3").await;
    wait_mount(&b.app.server, "/relayed.mp3", T).await;
    let (_, body) = raw_get(b.addr, "/relayed.mp3", "", 20_000, T).await;
    assert_source_stretch(&body, "B's listener after the source came back");
    feeder.stop();
}

/// Bind a server on exactly `addr`, retrying while the previous one's socket goes away.
async fn start_on(addr: SocketAddr) -> TestServer {
    let mut c = test_config();
    c.listen = vec![ListenSocket {
        port: addr.port(),
        bind_address: Some(addr.ip().to_string()),
        shoutcast_mount: None,
        tls: Default::default(),
    }];
    for _ in 0..100 {
        if let Ok(app) = floecast::app::App::start(c.clone(), None) {
            return TestServer { app, addr };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("could not bind {addr} again");
}

#[tokio::test]
async fn push_reconnects_when_the_remote_restarts() {
    let b = start(test_config()).await;
    let b_addr = b.addr;
    let a = start(config_with(vec![push_to(
        b_addr, "/r.mp3", "/r.mp3", "hackme",
    )]))
    .await;
    let feeder = Feeder::start(a.addr, "/r.mp3").await;
    wait_mount(&b.app.server, "/r.mp3", T).await;
    let (_, body) = raw_get(b_addr, "/r.mp3", "", 20_000, T).await;
    let before = assert_source_stretch(&body, "B before the restart");

    let state = a.app.server.tasks.pushes.list()[0].clone();
    b.app.shutdown(Duration::from_secs(2)).await;
    wait_for("the push to notice", T, || state.phase() != PushPhase::Up).await;

    let b2 = start_on(b_addr).await;
    wait_mount(&b2.app.server, "/r.mp3", Duration::from_secs(20)).await;
    let (_, body) = raw_get(b_addr, "/r.mp3", "", 20_000, T).await;
    let after = assert_source_stretch(&body, "B after the restart");
    assert!(
        after > before,
        "audio did not move on: frame {after} <= {before}"
    );
    assert_eq!(state.phase(), PushPhase::Up);
    assert!(state.attempts() >= 2, "attempts {}", state.attempts());
    feeder.stop();
}

#[tokio::test]
async fn wrong_password_is_a_clear_error_retried_slowly() {
    let b = start(test_config()).await;
    let a = start(config_with(vec![push_to(
        b.addr, "/w.mp3", "/w.mp3", "wrong",
    )]))
    .await;
    let feeder = Feeder::start(a.addr, "/w.mp3").await;
    let state = a.app.server.tasks.pushes.list()[0].clone();
    wait_for("the login to fail", T, || state.phase() == PushPhase::Down).await;
    let status = state.status();
    let err = status.last_error.clone().unwrap_or_default();
    assert!(err.contains("401"), "{err}");
    assert_eq!(status.attempts, 1);
    // Refusals back off at least 2.5 s (5 s with jitter); nothing reached B.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(state.attempts(), 1, "retried too soon");
    assert!(b.app.server.registry.get("/w.mp3").is_none());
    wait_for("a second attempt", T, || state.attempts() >= 2).await;
    // A is unharmed: its own listeners still get the stream.
    let (_, body) = raw_get(a.addr, "/w.mp3", "", 10_000, T).await;
    assert_source_stretch(&body, "A's listener");
    feeder.stop();
}

/// Read one request head from a fake remote's connection.
async fn read_request(s: &mut TcpStream) -> (String, Vec<u8>) {
    read_head(s, T).await
}

#[tokio::test]
async fn auto_falls_back_to_source_like_libshout() {
    // A remote that knows only SOURCE: it closes on PUT without a word, as icecast does on
    // an unknown method, then accepts SOURCE.
    let remote = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let raddr = remote.local_addr().unwrap();
    // `bind` picks the local address the push connects from.
    let mut push = push_to(raddr, "/f.mp3", "/remote.mp3", "pw");
    push.bind = Some("127.0.0.2".into());
    let a = start(config_with(vec![push])).await;
    let feeder = Feeder::start(a.addr, "/f.mp3").await;

    let (mut c1, from) = tokio::time::timeout(T, remote.accept())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(from.ip().to_string(), "127.0.0.2");
    let (put, _) = read_request(&mut c1).await;
    assert!(put.starts_with("PUT /remote.mp3 HTTP/1.1\r\n"), "{put}");
    assert!(put.contains("\r\nExpect: 100-continue\r\n"), "{put}");
    assert!(
        put.contains("\r\nAuthorization: Basic c291cmNlOnB3\r\n"),
        "{put}"
    );
    assert!(put.contains("\r\nContent-Type: audio/mpeg\r\n"), "{put}");
    assert!(put.contains("\r\nice-name: Push Test\r\n"), "{put}");
    assert!(put.contains(&format!("\r\nHost: {raddr}\r\n")), "{put}");
    // No body before the 100.
    let mut probe = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), c1.read(&mut probe))
            .await
            .is_err()
    );
    drop(c1);

    let (mut c2, _) = tokio::time::timeout(T, remote.accept())
        .await
        .unwrap()
        .unwrap();
    let (src, early) = read_request(&mut c2).await;
    assert!(src.starts_with("SOURCE /remote.mp3 HTTP/1.0\r\n"), "{src}");
    assert!(!src.contains("Expect"), "{src}");
    assert!(early.is_empty(), "body before the 200");
    c2.write_all(b"HTTP/1.0 200 OK\r\n\r\n").await.unwrap();
    let body = read_at_least(&mut c2, 20_000, T).await;
    assert_source_stretch(&body, "the SOURCE body");
    let state = a.app.server.tasks.pushes.list()[0].clone();
    assert_eq!(state.status().method, Some("SOURCE"));
    assert_eq!(state.attempts(), 2);

    // Reconnects after the remote drops go straight to SOURCE.
    drop(c2);
    let (mut c3, _) = tokio::time::timeout(T, remote.accept())
        .await
        .unwrap()
        .unwrap();
    let (again, _) = read_request(&mut c3).await;
    assert!(again.starts_with("SOURCE "), "{again}");
    feeder.stop();
}

#[tokio::test]
async fn put_only_does_not_fall_back_and_reload_restarts_pushes() {
    let remote = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let raddr = remote.local_addr().unwrap();
    let mut push = push_to(raddr, "/p.mp3", "/p.mp3", "pw");
    push.protocol = PushProtocol::Put;
    let a = start(config_with(vec![push.clone()])).await;
    let feeder = Feeder::start(a.addr, "/p.mp3").await;
    let (mut c1, _) = tokio::time::timeout(T, remote.accept())
        .await
        .unwrap()
        .unwrap();
    let (put, _) = read_request(&mut c1).await;
    assert!(put.starts_with("PUT "), "{put}");
    c1.write_all(b"HTTP/1.0 405 Method Not Allowed\r\n\r\n")
        .await
        .unwrap();
    drop(c1);
    let state = a.app.server.tasks.pushes.list()[0].clone();
    wait_for("the push to fail", T, || state.phase() == PushPhase::Down).await;
    let err = state.status().last_error.unwrap_or_default();
    assert!(err.contains("405"), "{err}");
    assert_eq!(state.attempts(), 1, "no SOURCE fallback in put mode");

    // Reload: an unchanged push keeps its state; a changed one restarts (here: to SOURCE,
    // which connects at once instead of after the backoff); a removed one stops.
    let server = &a.app.server;
    server.replace_config(config_with(vec![push.clone()]));
    a.app.supervisor.reconcile();
    assert!(Arc::ptr_eq(&server.tasks.pushes.list()[0], &state));
    push.protocol = PushProtocol::Source;
    server.replace_config(config_with(vec![push.clone()]));
    a.app.supervisor.reconcile();
    let (mut c2, _) = tokio::time::timeout(Duration::from_secs(3), remote.accept())
        .await
        .expect("the restarted push connects at once")
        .unwrap();
    let (src, _) = read_request(&mut c2).await;
    assert!(src.starts_with("SOURCE /p.mp3 HTTP/1.0"), "{src}");
    c2.write_all(b"HTTP/1.0 200 OK\r\n\r\n").await.unwrap();
    let fresh = server.tasks.pushes.list()[0].clone();
    wait_for("the new push to be up", T, || {
        fresh.phase() == PushPhase::Up
    })
    .await;
    server.replace_config(config_with(Vec::new()));
    a.app.supervisor.reconcile();
    assert!(server.tasks.pushes.list().is_empty());
    // The stopped push closed its connection.
    let rest = read_until_close(&mut c2, T).await;
    assert!(!rest.is_empty(), "no audio before the stop");
    feeder.stop();
}

/// A real encoder (ffmpeg: MP3, Ogg Vorbis, WebM Opus) into A, pushed to B: ffmpeg decodes
/// B's mounts without errors, and Ogg/WebM listeners on B start with the stream header.
#[tokio::test]
async fn ffmpeg_decodes_what_b_serves() {
    if !have_all("ffmpeg_decodes_what_b_serves", &["ffmpeg"]) {
        return;
    }
    let tmp = TempDir::new("push");
    let b = start(test_config()).await;
    let a = start(config_with(vec![
        push_to(b.addr, "/ff.mp3", "/ff.mp3", "hackme"),
        push_to(b.addr, "/ff.ogg", "/ff.ogg", "hackme"),
        push_to(b.addr, "/ff.webm", "/ff.webm", "hackme"),
    ]))
    .await;
    let mut mp3 = Proc::spawn(
        "ffmpeg mp3 source",
        ffmpeg_source(a.addr, "/ff.mp3", MP3_ARGS),
        tmp.join("mp3.log"),
    );
    let mut ogg = Proc::spawn(
        "ffmpeg ogg source",
        ffmpeg_source(a.addr, "/ff.ogg", OGG_VORBIS_ARGS),
        tmp.join("ogg.log"),
    );
    let webm_args = [
        "-c:a",
        "libopus",
        "-b:a",
        "96k",
        "-content_type",
        "audio/webm",
        "-f",
        "webm",
    ];
    let mut webm = Proc::spawn(
        "ffmpeg webm source",
        ffmpeg_source(a.addr, "/ff.webm", &webm_args),
        tmp.join("webm.log"),
    );
    wait_live(&a.app.server, "/ff.webm", &mut webm, T).await;
    wait_mount(&b.app.server, "/ff.webm", T).await;
    wait_live(&a.app.server, "/ff.mp3", &mut mp3, T).await;
    wait_live(&a.app.server, "/ff.ogg", &mut ogg, T).await;
    wait_mount(&b.app.server, "/ff.mp3", T).await;
    wait_mount(&b.app.server, "/ff.ogg", T).await;

    let (head, body) = raw_get_ogg(b.addr, "/ff.ogg", 4, T).await;
    assert_eq!(
        header(&head, "Content-Type"),
        Some("application/ogg"),
        "{head}"
    );
    assert_ogg_start(&body, b"\x01vorbis", b"\x03vorbis");
    assert_decodes(&format!("http://{}/ff.mp3", b.addr), 3).await;
    assert_decodes(&format!("http://{}/ff.ogg", b.addr), 3).await;
    // WebM: B's listener starts with the EBML head A sent first, then decodes cleanly.
    let (head, body) = raw_get(b.addr, "/ff.webm", "", 2000, T).await;
    assert_eq!(header(&head, "Content-Type"), Some("audio/webm"), "{head}");
    assert_eq!(&body[..4], &[0x1A, 0x45, 0xDF, 0xA3], "no EBML head first");
    assert_decodes(&format!("http://{}/ff.webm", b.addr), 3).await;

    // Real MP3: what B's listener gets is byte for byte what A's listener got. B's listener
    // joins a second later, so its burst starts inside what A's listener reads.
    let a_listener = raw_get(a.addr, "/ff.mp3", "", 110_000, T);
    let b_listener = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        raw_get(b.addr, "/ff.mp3", "", 40_000, T).await
    };
    let ((_, body_a), (_, body_b)) = tokio::join!(a_listener, b_listener);
    let at = interop_support::find(&body_a, &body_b[..512])
        .expect("B's first bytes are not in A's stream");
    let overlap = (body_a.len() - at).min(body_b.len());
    assert!(overlap > 20_000, "only {overlap} bytes overlap");
    assert_bytes(
        &body_b[..overlap],
        &body_a[at..at + overlap],
        "B's listener vs A's",
    );
}

/// The live page lists push relays with their state and last error (headless Chromium).
#[tokio::test]
async fn live_page_shows_push_state() {
    if !have_all("live_page_shows_push_state", &["chromium"]) {
        return;
    }
    let b = start(test_config()).await;
    let a = start(config_with(vec![push_to(
        b.addr,
        "/page.mp3",
        "/page.mp3",
        "wrong",
    )]))
    .await;
    let feeder = Feeder::start(a.addr, "/page.mp3").await;
    let state = a.app.server.tasks.pushes.list()[0].clone();
    wait_for("the login to fail", T, || state.phase() == PushPhase::Down).await;
    let tmp = TempDir::new("push-page");
    let url = format!("http://{}/?updates=2", a.addr);
    let out = chromium_dump_dom(tmp.path(), 10_000, &[], &url).output();
    let out = tokio::time::timeout(Duration::from_secs(40), out)
        .await
        .expect("chromium finished")
        .expect("chromium ran");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("data-updates=\"2\""), "no live updates: {dom}");
    assert!(dom.contains("<h2>Push relays</h2>"), "{dom}");
    assert!(
        !dom.contains("id=\"pushes\" hidden"),
        "section hidden: {dom}"
    );
    assert!(
        dom.contains(&format!("→ http://{}/page.mp3", b.addr)),
        "{dom}"
    );
    assert!(dom.contains("class=\"state-down\">down<"), "{dom}");
    assert!(dom.contains("last error: PUT 401"), "{dom}");
    feeder.stop();
}

/// A remote that accepts the login and then stops reading must not hold the push (or memory)
/// forever: once the push falls a whole queue behind it gives up and reconnects.
#[tokio::test]
async fn a_stuck_remote_is_dropped_and_retried() {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let remote = socket.listen(8).unwrap();
    let raddr = remote.local_addr().unwrap();
    let mut push = push_to(raddr, "/stuck.mp3", "/stuck.mp3", "pw");
    push.protocol = PushProtocol::Source;
    let mut config = config_with(vec![push]);
    config.limits.queue_size = 128 * 1024;
    config.limits.burst_size = 16 * 1024;
    let a = start(config).await;
    // About 1.7 MB/s, so the queue turns over many times a second.
    let feeder = Feeder::start_at(a.addr, "/stuck.mp3", 100).await;
    let (mut c1, _) = tokio::time::timeout(T, remote.accept())
        .await
        .unwrap()
        .unwrap();
    let (head, _) = read_request(&mut c1).await;
    assert!(head.starts_with("SOURCE "), "{head}");
    c1.write_all(b"HTTP/1.0 200 OK\r\n\r\n").await.unwrap();
    // ... and never read again.
    let state = a.app.server.tasks.pushes.list()[0].clone();
    wait_for("the push to be up", T, || state.phase() == PushPhase::Up).await;
    wait_for("the push to give up", Duration::from_secs(30), || {
        state.phase() != PushPhase::Up
    })
    .await;
    let err = state.status().last_error.unwrap_or_default();
    assert!(err.contains("too slow"), "{err}");
    // It comes back (after a short backoff) with a fresh login.
    let (mut c2, _) = tokio::time::timeout(T, remote.accept())
        .await
        .unwrap()
        .unwrap();
    let (again, _) = read_request(&mut c2).await;
    assert!(again.starts_with("SOURCE "), "{again}");
    // A's own listeners were never disturbed.
    let (_, body) = raw_get(a.addr, "/stuck.mp3", "", 20_000, T).await;
    assert_source_stretch(&body, "A's listener");
    drop(c1);
    feeder.stop();
}

/// A P2PSP peer mount is pushed like any other: source → A (splitter) → team → C (peer
/// mount) → push → B, and B's listener gets an unbroken stretch of the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_p2psp_peer_mount_is_pushed() {
    let mut ca = test_config();
    ca.mounts.push(MountConfig {
        name: "/p2p.mp3".into(),
        p2psp: Some(P2pspConfig::Splitter(SplitterSettings {
            port: 0,
            bind_address: Some("127.0.0.1".into()),
            max_peers: 10,
            buffer: 256,
            max_chunk: 16_384,
            compat: false,
            ..Default::default()
        })),
        ..Default::default()
    });
    let a = start(ca).await;
    let mut team = None;
    wait_for("the splitter to bind", T, || {
        team = match a.app.server.tasks.teams.get("/p2p.mp3") {
            Some(TeamState::Splitter {
                local: Some(addr), ..
            }) => Some(addr),
            _ => None,
        };
        team.is_some()
    })
    .await;
    let feeder = Feeder::start(a.addr, "/p2p.mp3").await;

    let b = start(test_config()).await;
    let mut cc = config_with(vec![push_to(
        b.addr,
        "/p2p.mp3",
        "/from-team.mp3",
        "hackme",
    )]);
    cc.mounts.push(MountConfig {
        name: "/p2p.mp3".into(),
        p2psp: Some(P2pspConfig::Peer {
            compat: false,
            splitter: team.map(|t| t.to_string()).unwrap_or_default(),
            serve: None,
            auth: Default::default(),
        }),
        ..Default::default()
    });
    let c = start(cc).await;
    wait_mount(&c.app.server, "/p2p.mp3", T).await;
    wait_mount(&b.app.server, "/from-team.mp3", T).await;
    let (head, body) = raw_get(b.addr, "/from-team.mp3", "", 30_000, T).await;
    assert!(head.starts_with("HTTP/1.0 200 OK"), "{head}");
    assert_source_stretch(&body, "B's listener of the pushed peer mount");
    feeder.stop();
}

/// The binary as an operator runs it: `[[push]]` in the TOML file pushes, SIGHUP with a
/// changed `remote-mount` moves the push, SIGTERM ends it.
#[tokio::test]
async fn toml_push_follows_sighup_and_sigterm() {
    let b = start(test_config()).await;
    let tmp = TempDir::new("push-process");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let path = tmp.join("floecast.toml");
    let config = |remote: &str| {
        format!(
            "[[listen]]\nport = {port}\nbind-address = \"127.0.0.1\"\n\
             [[push]]\nmount = \"/proc.mp3\"\nserver = \"127.0.0.1\"\nport = {}\n\
             remote-mount = \"{remote}\"\npassword = \"hackme\"\n",
            b.addr.port()
        )
    };
    std::fs::write(&path, config("/first.mp3")).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_floecast"));
    cmd.arg("--config").arg(&path);
    let mut proc = Proc::spawn("floecast", cmd, tmp.join("floecast.log"));
    let a: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = tokio::time::Instant::now() + T;
    while TcpStream::connect(a).await.is_err() {
        proc.assert_running();
        assert!(
            tokio::time::Instant::now() < deadline,
            "floecast did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let feeder = Feeder::start(a, "/proc.mp3").await;
    wait_mount(&b.app.server, "/first.mp3", T).await;

    std::fs::write(&path, config("/second.mp3")).unwrap();
    let kill = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(proc.pid().to_string())
            .status()
            .map(|s| s.success());
        assert_eq!(ok.ok(), Some(true), "kill -{sig}");
    };
    kill("HUP");
    wait_mount(&b.app.server, "/second.mp3", T).await;
    wait_for("the old remote mount to end", T, || {
        b.app.server.registry.get("/first.mp3").is_none()
    })
    .await;
    let (_, body) = raw_get(b.addr, "/second.mp3", "", 20_000, T).await;
    assert_source_stretch(&body, "B after the reload");

    kill("TERM");
    assert!(proc.wait_exit(T).await.is_some(), "floecast did not exit");
    wait_for("the pushed mount to end", T, || {
        b.app.server.registry.get("/second.mp3").is_none()
    })
    .await;
    let log = proc.log_text();
    assert!(log.contains("push relay connected"), "{log}");
    feeder.stop();
}

/// Pushes of hidden mounts stay off the public `/api/status`, like the mounts themselves.
#[tokio::test]
async fn pushes_of_hidden_mounts_are_not_public() {
    let closed: SocketAddr = ([127, 0, 0, 1], 9).into();
    let mut config = config_with(vec![
        push_to(closed, "/hid.mp3", "/hid.mp3", "pw"),
        push_to(closed, "/shown.mp3", "/shown.mp3", "pw"),
    ]);
    config.mounts.push(MountConfig {
        name: "/hid.mp3".into(),
        hidden: Some(true),
        ..Default::default()
    });
    let a = start(config).await;
    let status = http_get(a.addr, "/api/status", SOURCE_AUTH).await;
    let json: serde_json::Value =
        serde_json::from_str(&status[status.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    let pushes = json["pushes"].as_array().cloned().unwrap_or_default();
    assert_eq!(pushes.len(), 1, "{json}");
    assert_eq!(pushes[0]["mount"], "/shown.mp3");
    assert_eq!(pushes[0]["state"], "waiting");
    assert_eq!(pushes[0]["attempts"], 0);
    assert!(pushes[0]["connected_since"].is_null());
}
