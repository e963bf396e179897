//! The source side against recorded transcripts of real clients (spec `wire-captures.md` §2):
//! each test replays the exact bytes a client sent to icecast2 and checks that floecast
//! answers with the bytes icecast2 answered, then that the audio reaches a listener intact.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(3);

/// Connect a listener and return the body bytes after the head (at least `n`).
async fn listen_body(addr: std::net::SocketAddr, mount: &str, n: usize) -> Vec<u8> {
    let mut s = connect(addr).await;
    s.write_all(format!("GET {mount} HTTP/1.0\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let (head, mut body) = read_head(&mut s, T).await;
    assert!(
        head.starts_with("HTTP/1.0 200 OK\r\n"),
        "listener head: {head}"
    );
    if body.len() < n {
        body.extend(read_at_least(&mut s, n - body.len(), T).await);
    }
    body
}

#[tokio::test]
async fn libshout_24_probe_dance_vlc_transcript() {
    let srv = start(test_config()).await;
    // c1: the TLS probe is closed without a byte, as icecast2 2.4.4 does.
    let r = exchange(
        srv.addr,
        b"OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1:8209\r\nUser-Agent: VLC media player 3.0.24\r\nConnection: Upgrade\r\nUpgrade: TLS/1.0, HTTP/1.1\r\n\r\n",
        T,
    )
    .await;
    assert!(
        r.is_empty(),
        "OPTIONS * must be closed silently, got {:?}",
        String::from_utf8_lossy(&r)
    );
    // c2: the POKE gets icecast's 400, never a 404.
    let r = exchange(srv.addr, b"GET /admin/!POKE HTTP/1.1\r\nHost: 127.0.0.1:8209\r\nUser-Agent: VLC media player 3.0.24\r\n\r\n", T).await;
    let r = String::from_utf8_lossy(&r);
    assert!(r.starts_with("HTTP/1.0 400 Bad Request\r\n"), "{r}");
    assert!(
        r.contains("Content-Type: text/html; charset=utf-8\r\n"),
        "{r}"
    );
    assert!(r.ends_with("\r\n\r\n<html><head><title>Error 400</title></head><body><b>400 - Unrecognised command</b></body></html>\r\n"), "{r}");
    // c3: the unauthenticated challenge, with Content-Length: 0 and keep-alive.
    let r = exchange(srv.addr, b"SOURCE /vlc.ogg HTTP/1.0\r\nHost: 127.0.0.1:8209\r\nUser-Agent: VLC media player 3.0.24\r\nContent-Type: application/ogg\r\nContent-Length: 0\r\nConnection: Keep-Alive\r\nice-public: 0\r\nice-name: vlc ogg\r\nice-description: vlc desc\r\nice-genre: Test\r\nice-url: http://www.videolan.org/vlc\r\nPrefer: return=minimal\r\n\r\n", T).await;
    let r = String::from_utf8_lossy(&r);
    assert!(
        r.starts_with("HTTP/1.0 401 Authentication Required\r\n"),
        "{r}"
    );
    assert!(
        r.contains("\r\nWWW-Authenticate: Basic realm=\"Icecast2 Server\"\r\n"),
        "{r}"
    );
    assert!(r.ends_with("\r\n\r\nYou need to authenticate\r\n"), "{r}");
    assert!(
        !srv.app.server.registry.contains("/vlc.ogg"),
        "a refused challenge must not reserve the mount"
    );
    // c4: the real login.
    let mut s = connect(srv.addr).await;
    s.write_all(b"SOURCE /vlc.ogg HTTP/1.0\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\nHost: 127.0.0.1:8209\r\nUser-Agent: VLC media player 3.0.24\r\nContent-Type: application/ogg\r\nice-public: 0\r\nice-name: vlc ogg\r\nice-description: vlc desc\r\nice-genre: Test\r\nice-url: http://www.videolan.org/vlc\r\nPrefer: return=minimal\r\n\r\n").await.unwrap();
    let mut reply = [0u8; 19];
    s.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"HTTP/1.0 200 OK\r\n\r\n");
    // Nothing else follows the 200.
    let mut extra = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(200), s.read(&mut extra))
            .await
            .is_err()
    );
    assert!(srv.app.server.registry.contains("/vlc.ogg"));
    let m = srv.app.server.registry.get("/vlc.ogg").unwrap();
    assert_eq!(m.info().stream.name.as_deref(), Some("vlc ogg"));
    assert_eq!(m.family, floecast::format::Family::Ogg);
}

#[tokio::test]
async fn libshout_22_source_with_mp3() {
    let srv = start(test_config()).await;
    let mut s = connect(srv.addr).await;
    let mut req = b"SOURCE /old.mp3 HTTP/1.0\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\nUser-Agent: libshout/2.2.2\r\nContent-Type: audio/mpeg\r\nice-name: no name\r\nice-public: 0\r\nice-audio-info: bitrate=128;samplerate=44100;channels=2\r\n\r\n".to_vec();
    // libshout 2.2 writes the first audio right behind the head.
    let audio = mp3_frames(100);
    req.extend_from_slice(&audio[..4000]);
    s.write_all(&req).await.unwrap();
    let mut reply = [0u8; 19];
    s.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"HTTP/1.0 200 OK\r\n\r\n");
    s.write_all(&audio[4000..]).await.unwrap();
    let body = listen_body(srv.addr, "/old.mp3", confirmed(&audio).len()).await;
    // The burst starts on a frame boundary and the bytes that came with the head are kept.
    assert_bytes(
        &body,
        confirmed(&audio),
        "listener must get the stream from its first frame (all of it fits the burst)",
    );
    let m = srv.app.server.registry.get("/old.mp3").unwrap();
    assert_eq!(m.info().stream.audio_info.len(), 3);
}

#[tokio::test]
async fn ffmpeg_put_expect_100_continue() {
    let srv = start(test_config()).await;
    let mut s = connect(srv.addr).await;
    s.write_all(b"PUT /ffmp3.mp3 HTTP/1.1\r\nUser-Agent: Lavf/59.27.100\r\nAccept: */*\r\nExpect: 100-continue\r\nConnection: close\r\nHost: 127.0.0.1:8202\r\nContent-Type: audio/mpeg\r\nIcy-MetaData: 1\r\nIce-Public: 0\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\n\r\n").await.unwrap();
    let want = b"HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\nHTTP/1.0 200 OK\r\n\r\n";
    let mut reply = vec![0u8; want.len()];
    s.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply[..], &want[..]);
    let audio = mp3_frames(100);
    s.write_all(&audio).await.unwrap();
    let body = listen_body(srv.addr, "/ffmp3.mp3", confirmed(&audio).len()).await;
    assert_bytes(&body, confirmed(&audio), "listener body");
}

#[tokio::test]
async fn ffmpeg_legacy_source_http11_with_body_in_first_segment() {
    let srv = start(test_config()).await;
    let mut s = connect(srv.addr).await;
    let audio = mp3_frames(50);
    let mut req = b"SOURCE /fflegacy.mp3 HTTP/1.1\r\nUser-Agent: Lavf/59.27.100\r\nAccept: */*\r\nConnection: close\r\nHost: 127.0.0.1:8203\r\nContent-Type: audio/mpeg\r\nIcy-MetaData: 1\r\nIce-Public: 0\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\n\r\n".to_vec();
    req.extend_from_slice(&audio);
    s.write_all(&req).await.unwrap();
    let mut reply = [0u8; 19];
    s.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"HTTP/1.0 200 OK\r\n\r\n");
    let body = listen_body(srv.addr, "/fflegacy.mp3", confirmed(&audio).len()).await;
    assert_bytes(
        &body,
        confirmed(&audio),
        "audio sent together with the head must not be lost",
    );
}

#[tokio::test]
async fn darkice_lf_only_head() {
    let srv = start(test_config()).await;
    let mut s = connect(srv.addr).await;
    s.write_all(b"SOURCE /dark.mp3 HTTP/1.0\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\nContent-Type: audio/mpeg\nice-name: DarkIce\nice-public: 1\nice-bitrate: 128\r\n\r\n").await.unwrap();
    let mut reply = [0u8; 19];
    s.read_exact(&mut reply).await.unwrap();
    assert!(reply.starts_with(b"HTTP/1.0 200"));
    let m = srv.app.server.registry.get("/dark.mp3").unwrap();
    assert_eq!(m.info().stream.name.as_deref(), Some("DarkIce"));
    assert!(m.info().stream.public);
}

#[tokio::test]
async fn butt_put_then_liquidsoap_put_without_expect() {
    let srv = start(test_config()).await;
    // butt: PUT + Expect, ice-audio-info with ice-* keys.
    let mut s = connect(srv.addr).await;
    s.write_all(b"PUT /butt.mp3 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\nUser-Agent: butt 0.1.37\r\nContent-Type: audio/mpeg\r\nice-name: butt\r\nice-public: 0\r\nice-audio-info: ice-bitrate=128;ice-channels=2;ice-samplerate=44100\r\nExpect: 100-continue\r\n\r\n").await.unwrap();
    let mut reply = [0u8; 44 + 19];
    s.read_exact(&mut reply).await.unwrap();
    assert_eq!(
        &reply[..],
        &b"HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\nHTTP/1.0 200 OK\r\n\r\n"[..]
    );
    // liquidsoap verb=put without Expect: an immediate 200.
    let mut l = connect(srv.addr).await;
    l.write_all(b"PUT /liq.mp3 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\nUser-Agent: Liquidsoap/2.1.3\r\nice-audio-info: channels=2;samplerate=44100;bitrate=128\r\nContent-Type: audio/mpeg\r\n\r\n").await.unwrap();
    let mut reply = [0u8; 19];
    l.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"HTTP/1.0 200 OK\r\n\r\n");
    let info = srv.app.server.registry.get("/liq.mp3").unwrap().info();
    assert_eq!(info.stream.bitrate.as_deref(), Some("128"));
}

#[tokio::test]
async fn liquidsoap_source_ogg_transcript() {
    let srv = start(test_config()).await;
    let mut s = connect(srv.addr).await;
    s.write_all(b"SOURCE /liq.ogg HTTP/1.0\r\nice-name: liq test\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\nice-public: 1\r\nUser-Agent: Liquidsoap/2.1.3 (Unix; OCaml 4.13.1)\r\nice-audio-info: channels=2;quality=0.3;samplerate=44100\r\nContent-Type: application/ogg\r\n\r\n").await.unwrap();
    let mut reply = [0u8; 19];
    s.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"HTTP/1.0 200 OK\r\n\r\n");
    let m = srv.app.server.registry.get("/liq.ogg").unwrap();
    assert_eq!(m.family, floecast::format::Family::Ogg);
    let info = m.info();
    assert!(info.stream.public);
    assert!(
        info.listener_headers
            .contains("ice-audio-info: channels=2;quality=0.3;samplerate=44100\r\n")
    );
}

#[tokio::test]
async fn curl_chunked_put_is_dechunked() {
    let srv = start(test_config()).await;
    let mut s = connect(srv.addr).await;
    s.write_all(b"PUT /curl.mp3 HTTP/1.1\r\nHost: 127.0.0.1:8216\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nTransfer-Encoding: chunked\r\nContent-Type: audio/mpeg\r\nExpect: 100-continue\r\n\r\n").await.unwrap();
    let mut reply = [0u8; 44 + 19];
    s.read_exact(&mut reply).await.unwrap();
    assert!(reply.ends_with(b"HTTP/1.0 200 OK\r\n\r\n"));
    let audio = mp3_frames(60);
    // Chunks that split frames at odd places.
    for part in audio.chunks(1000) {
        s.write_all(format!("{:x}\r\n", part.len()).as_bytes())
            .await
            .unwrap();
        s.write_all(part).await.unwrap();
        s.write_all(b"\r\n").await.unwrap();
    }
    let body = listen_body(srv.addr, "/curl.mp3", confirmed(&audio).len()).await;
    assert_bytes(
        &body,
        confirmed(&audio),
        "chunk framing must not reach listeners",
    );
}

#[tokio::test]
async fn refusals_match_icecast() {
    let mut config = test_config();
    config.limits.sources = 2;
    let srv = start(config).await;
    // Wrong password.
    let r = exchange(srv.addr, b"PUT /badpw.ogg HTTP/1.1\r\nExpect: 100-continue\r\nContent-Type: application/ogg\r\nAuthorization: Basic c291cmNlOldST05H\r\n\r\n", T).await;
    assert!(String::from_utf8_lossy(&r).starts_with("HTTP/1.0 401 Authentication Required\r\n"));
    assert!(
        !String::from_utf8_lossy(&r).contains("100 Continue"),
        "no 100 before auth"
    );
    // User other than source.
    let r = exchange(
        srv.addr,
        b"SOURCE /x HTTP/1.0\r\nAuthorization: Basic YWRtaW46aGFja21l\r\n\r\n",
        T,
    )
    .await;
    assert!(String::from_utf8_lossy(&r).starts_with("HTTP/1.0 401 "));
    // PUT without Content-Type.
    let r = exchange(
        srv.addr,
        b"PUT /notype HTTP/1.1\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\n\r\n",
        T,
    )
    .await;
    let r = String::from_utf8_lossy(&r);
    assert!(
        r.starts_with("HTTP/1.0 403 Forbidden\r\n") && r.ends_with("\r\n\r\nNo Content-type given"),
        "{r}"
    );
    // SOURCE without Content-Type is MP3.
    let _a = source(srv.addr, "/a", "audio/mpeg", "").await;
    // Busy mount.
    let r = exchange(srv.addr, b"SOURCE /a HTTP/1.0\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\nContent-Type: audio/mpeg\r\n\r\n", T).await;
    let r = String::from_utf8_lossy(&r);
    assert!(
        r.starts_with("HTTP/1.0 403 Forbidden\r\n") && r.ends_with("\r\n\r\nMountpoint in use"),
        "{r}"
    );
    let mut b = connect(srv.addr).await;
    b.write_all(b"SOURCE /b HTTP/1.0\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\n\r\n")
        .await
        .unwrap();
    let mut reply = [0u8; 19];
    b.read_exact(&mut reply).await.unwrap();
    assert_eq!(
        srv.app
            .server
            .registry
            .get("/b")
            .unwrap()
            .info()
            .stream
            .content_type,
        "audio/mpeg"
    );
    // Over <sources>.
    let r = exchange(srv.addr, b"SOURCE /c HTTP/1.0\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\nContent-Type: audio/mpeg\r\n\r\n", T).await;
    let r = String::from_utf8_lossy(&r);
    assert!(r.ends_with("\r\n\r\ntoo many sources connected"), "{r}");
    // Garbage and unknown methods are closed without a reply.
    assert!(exchange(srv.addr, b"HELLO\r\n\r\n", T).await.is_empty());
    assert!(
        exchange(srv.addr, b"BREW /pot HTTP/1.0\r\n\r\n", T)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn silent_source_times_out_and_mount_is_reusable() {
    let mut config = test_config();
    config.limits.source_timeout = Duration::from_millis(300);
    let srv = start(config).await;
    let mut s = source(srv.addr, "/quiet.mp3", "audio/mpeg", "").await;
    assert!(srv.app.server.registry.contains("/quiet.mp3"));
    // The server drops the source: our read sees EOF.
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
        .await
        .expect("dropped in time")
        .unwrap_or(0);
    assert_eq!(n, 0);
    wait_for("mount freed", T, || {
        !srv.app.server.registry.contains("/quiet.mp3")
    })
    .await;
    let _again = source(srv.addr, "/quiet.mp3", "audio/mpeg", "").await;
}

#[tokio::test]
async fn shoutcast_v1_port() {
    let mut config = test_config();
    config.listen[0].shoutcast_mount = Some("/icy".into());
    let srv = start_with_icy_port(config).await;
    let icy = srv.app.icy_addrs[0];
    assert_eq!(icy.port(), srv.addr.port() + 1);
    // Wrong password and libshout's poke: closed without a reply.
    assert!(exchange(icy, b"wrong\r\n", T).await.is_empty());
    assert!(
        exchange(icy, b"!POKE\nicy-name:libshout server poke request\n\n", T)
            .await
            .is_empty()
    );
    // The real thing: password, OK2, icy headers, blank line, audio.
    let mut s = connect(icy).await;
    s.write_all(b"hackme\r\n").await.unwrap();
    let mut ok = [0u8; 20];
    s.read_exact(&mut ok).await.unwrap();
    assert_eq!(&ok, b"OK2\r\nicy-caps:11\r\n\r\n");
    let audio = mp3_frames(40);
    let mut msg =
        b"icy-name:Shout DSP\r\nicy-genre:Rock\r\nicy-br:128\r\nicy-pub:1\r\n\r\n".to_vec();
    msg.extend_from_slice(&audio);
    s.write_all(&msg).await.unwrap();
    let body = listen_body(srv.addr, "/icy", confirmed(&audio).len()).await;
    assert_bytes(&body, confirmed(&audio), "listener body");
    let info = srv.app.server.registry.get("/icy").unwrap().info();
    assert_eq!(info.stream.name.as_deref(), Some("Shout DSP"));
    assert_eq!(info.stream.bitrate.as_deref(), Some("128"));
    // admin.cgi updates the ICY mount's title with the source password.
    let r = exchange(
        srv.addr,
        b"GET /admin.cgi?pass=hackme&mode=updinfo&song=Live%20Now HTTP/1.0\r\n\r\n",
        T,
    )
    .await;
    assert!(String::from_utf8_lossy(&r).starts_with("HTTP/1.0 200 OK\r\n"));
    assert_eq!(
        srv.app
            .server
            .registry
            .get("/icy")
            .unwrap()
            .metadata()
            .display(),
        "Live Now"
    );
    let r = exchange(
        srv.addr,
        b"GET /admin.cgi?pass=nope&mode=updinfo&song=X HTTP/1.0\r\n\r\n",
        T,
    )
    .await;
    assert!(String::from_utf8_lossy(&r).starts_with("HTTP/1.0 401 "));
}

#[tokio::test]
async fn icy_port_is_closed_without_shoutcast_mount() {
    let srv = start(test_config()).await;
    assert!(srv.app.icy_addrs.is_empty());
    let next = std::net::SocketAddr::new(srv.addr.ip(), srv.addr.port() + 1);
    // VLC tries port+1 first; it must be refused at once so VLC falls back to HTTP.
    let r =
        tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(next)).await;
    assert!(matches!(r, Ok(Err(_))), "port+1 must refuse connections");
}

#[tokio::test]
async fn on_connect_on_disconnect_and_dump_file() {
    let dir = std::env::temp_dir().join(format!("floecast-hooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("hook.sh");
    let marks = dir.join("marks.txt");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$0 $1\" >> {}\n", marks.display()),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).unwrap();
    let dump = dir.join("dump.mp3");
    let mut config = test_config();
    config.mounts.push(floecast::config::MountConfig {
        name: "/hooked.mp3".into(),
        on_connect: Some(script.clone()),
        on_disconnect: Some(script.clone()),
        dump_file: Some(dump.clone()),
        ..Default::default()
    });
    let srv = start(config).await;
    let mut s = source(srv.addr, "/hooked.mp3", "audio/mpeg", "").await;
    let audio = mp3_frames(30);
    s.write_all(&audio).await.unwrap();
    wait_for("dump written", T, || {
        std::fs::metadata(&dump)
            .map(|m| m.len() as usize >= audio.len())
            .unwrap_or(false)
    })
    .await;
    drop(s);
    wait_for("both hooks ran", T, || {
        std::fs::read_to_string(&marks)
            .map(|t| t.lines().filter(|l| l.ends_with(" /hooked.mp3")).count() == 2)
            .unwrap_or(false)
    })
    .await;
    // The dump holds the source's bytes exactly.
    assert_bytes(&std::fs::read(&dump).unwrap(), &audio, "dump file");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn inband_icy_metadata_is_stripped_and_reinserted() {
    let srv = start(test_config()).await;
    // A source (or relay) that sends its own ICY blocks every 1000 bytes.
    let mut s = connect(srv.addr).await;
    s.write_all(b"SOURCE /inband.mp3 HTTP/1.0\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\nContent-Type: audio/mpeg\r\nicy-metaint: 1000\r\n\r\n").await.unwrap();
    let mut reply = [0u8; 19];
    s.read_exact(&mut reply).await.unwrap();
    let audio = mp3_frames(10);
    let meta = {
        let text = b"StreamTitle='Upstream Song';";
        let blocks = text.len().div_ceil(16);
        let mut m = vec![blocks as u8];
        m.extend_from_slice(text);
        m.resize(1 + blocks * 16, 0);
        m
    };
    let mut wire = Vec::new();
    for (i, part) in audio.chunks(1000).enumerate() {
        wire.extend_from_slice(part);
        if part.len() == 1000 {
            if i == 0 {
                wire.extend_from_slice(&meta)
            } else {
                wire.push(0)
            }
        }
    }
    s.write_all(&wire).await.unwrap();
    // Listeners without ICY get the audio alone.
    let body = listen_body(srv.addr, "/inband.mp3", confirmed(&audio).len()).await;
    assert_bytes(
        &body,
        confirmed(&audio),
        "in-band metadata must be stripped",
    );
    let m = srv.app.server.registry.get("/inband.mp3").unwrap();
    assert_eq!(m.metadata().display(), "Upstream Song");
    // The source's icy-metaint is not passed on to listeners.
    assert!(!m.info().listener_headers.contains("metaint"));
}

#[tokio::test]
async fn ogg_mounts_offer_no_icy_metadata_and_codec_stats_reach_the_mount() {
    let srv = start(test_config()).await;
    let _ogg = source(srv.addr, "/x.ogg", "application/ogg", "").await;
    let mut l = connect(srv.addr).await;
    l.write_all(b"GET /x.ogg HTTP/1.0\r\nIcy-MetaData: 1\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = read_head(&mut l, T).await;
    // As icecast2: no ICY metadata on Ogg unless the mount opts in (icy-metadata-in-ogg).
    assert!(
        head.contains("Content-Type: application/ogg\r\n") && !head.contains("\r\nicy-metaint:"),
        "{head}"
    );
    // MP3 codec facts from the frames themselves.
    let mut mp3 = source(srv.addr, "/c.mp3", "audio/mpeg", "").await;
    mp3.write_all(&mp3_frames(5)).await.unwrap();
    let m = srv.app.server.registry.get("/c.mp3").unwrap();
    wait_for("codec stats", T, || m.codec().samplerate.is_some()).await;
    let c = m.codec();
    assert_eq!(c.codec.as_deref(), Some("MP3"));
    assert_eq!(
        (c.samplerate, c.channels, c.bitrate),
        (Some(44_100), Some(2), Some(128))
    );
}
