//! The listener side over real TCP: response heads as icecast2 sends them, burst-on-connect,
//! ICY metadata blocks at exact offsets, limits, slow listeners, fallbacks and overrides,
//! intros, playlists and the access log.

mod common;

use std::time::Duration;

use common::*;
use floecast::config::MountConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(3);

async fn get(
    addr: std::net::SocketAddr,
    path: &str,
    extra: &str,
) -> (String, Vec<u8>, tokio::net::TcpStream) {
    let mut s = connect(addr).await;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: test/1.0\r\n{extra}\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let (head, body) = read_head(&mut s, T).await;
    (head, body, s)
}

#[tokio::test]
async fn response_head_is_icecasts() {
    let srv = start(test_config()).await;
    let mut src = connect(srv.addr).await;
    src.write_all(b"PUT /live.mp3 HTTP/1.1\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\nContent-Type: audio/mpeg\r\nIcy-MetaData: 1\r\nIce-Name: Live MP3\r\nIce-Genre: Test\r\nIce-Public: 0\r\nice-audio-info: bitrate=128;channels=2;samplerate=44100\r\n\r\n").await.unwrap();
    let mut ok = [0u8; 19];
    src.read_exact(&mut ok).await.unwrap();
    src.write_all(&mp3_frames(10)).await.unwrap();

    let (head, _, _s) = get(srv.addr, "/live.mp3", "Range: bytes=0-\r\n").await;
    assert!(head.starts_with("HTTP/1.0 200 OK\r\nServer: "), "{head}");
    for line in [
        "\r\nConnection: Close\r\n",
        "\r\nContent-Type: audio/mpeg\r\n",
        "\r\nCache-Control: no-cache, no-store\r\n",
        "\r\nExpires: Mon, 26 Jul 1997 05:00:00 GMT\r\n",
        "\r\nPragma: no-cache\r\n",
        "\r\nAccess-Control-Allow-Origin: *\r\n",
        "\r\nicy-br:128\r\n",
        "\r\nice-audio-info: bitrate=128;channels=2;samplerate=44100\r\n",
        "\r\nicy-genre:Test\r\n",
        "\r\nicy-name:Live MP3\r\n",
        "\r\nicy-pub:0\r\n",
    ] {
        assert!(head.contains(line), "missing {line:?} in {head}");
    }
    assert!(head.contains("\r\nDate: "));
    // Range is ignored on a live mount; no length, no chunking, no metaint unless asked.
    for absent in [
        "\r\nContent-Length",
        "\r\nTransfer-Encoding",
        "\r\nicy-metaint:",
        "\r\nContent-Range",
    ] {
        assert!(!head.contains(absent), "{absent} must not be sent: {head}");
    }
    let (head, _, _s) = get(srv.addr, "/live.mp3", "Icy-MetaData: 1\r\n").await;
    assert!(head.contains("\r\nicy-metaint:16000\r\n"), "{head}");
    // HEAD: the same head, no body.
    let r = exchange(srv.addr, b"HEAD /live.mp3 HTTP/1.1\r\n\r\n", T).await;
    let r = String::from_utf8_lossy(&r);
    assert!(
        r.starts_with("HTTP/1.0 200 OK\r\n") && r.ends_with("\r\n\r\n"),
        "{r}"
    );
    // OPTIONS: a CORS preflight.
    let r = exchange(srv.addr, b"OPTIONS /live.mp3 HTTP/1.1\r\nOrigin: http://a.example\r\nAccess-Control-Request-Headers: icy-metadata\r\n\r\n", T).await;
    let r = String::from_utf8_lossy(&r);
    assert!(r.starts_with("HTTP/1.0 204 No Content\r\n"), "{r}");
    assert!(
        r.contains("Access-Control-Allow-Headers: Icy-MetaData, Range\r\n"),
        "{r}"
    );
    assert!(
        r.contains("Access-Control-Expose-Headers: icy-metaint"),
        "{r}"
    );
}

#[tokio::test]
async fn burst_on_connect_starts_on_a_frame() {
    let srv = start(test_config()).await;
    let mut src = source(srv.addr, "/b.mp3", "audio/mpeg", "").await;
    let audio = mp3_frames(400); // ~167 KB, more than burst-size.
    src.write_all(&audio).await.unwrap();
    // The framer holds the newest frame until the next header confirms it.
    let last = if 399 % 3 == 2 { 418 } else { 417 };
    wait_for("queued", T, || {
        srv.app
            .server
            .registry
            .get("/b.mp3")
            .is_some_and(|m| m.queued_bytes() >= audio.len() - last)
    })
    .await;
    let (_, mut body, mut s) = get(srv.addr, "/b.mp3", "").await;
    body.extend(read_at_least(&mut s, 70_000, Duration::from_millis(500)).await);
    // Everything queued within burst-size arrives at once, starting on a frame header.
    // Within one block (BLOCK_TARGET of whole frames) of burst-size, never more.
    let block = floecast::format::mpeg::BLOCK_TARGET + 418;
    assert!(
        body.len() <= 65_535 && body.len() > 65_535 - block,
        "burst was {} bytes",
        body.len()
    );
    assert_eq!(&body[..2], &[0xFF, 0xFB]);
    let queued = &audio[..audio.len() - last];
    assert!(
        queued.ends_with(&body),
        "burst must be the newest queued bytes of the stream"
    );
}

#[tokio::test]
async fn icy_metadata_blocks_at_exact_offsets() {
    let mut config = test_config();
    config.mounts.push(MountConfig {
        name: "/m.mp3".into(),
        mp3_metadata_interval: Some(1000),
        ..Default::default()
    });
    let srv = start(config).await;
    let mut src = source(srv.addr, "/m.mp3", "audio/mpeg", "").await;
    src.write_all(&mp3_frames(5)).await.unwrap();
    let (head, body, mut s) = get(srv.addr, "/m.mp3", "Icy-MetaData: 1\r\n").await;
    assert!(head.contains("icy-metaint:1000\r\n"), "{head}");
    let mut body = body;
    body.extend(read_at_least(&mut s, 1001 - body.len().min(1001), T).await);
    // The first block to a new listener is the current (empty) title: L=1, `StreamTitle='';`.
    assert_eq!(body[1000], 1, "length byte");
    assert_eq!(&body[1001..1017], b"StreamTitle='';\0");
    // A title update reaches the next block; later blocks are a single zero.
    let r = exchange(srv.addr, b"GET /admin/metadata?mount=/m.mp3&mode=updinfo&song=Artist%20-%20Title HTTP/1.0\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\n\r\n", T).await;
    assert!(
        String::from_utf8_lossy(&r)
            .contains("<message>Metadata update successful</message><return>1</return>")
    );
    src.write_all(&mp3_frames(12)).await.unwrap();
    body.extend(read_at_least(&mut s, 1017 + 1000 + 33 + 1000 + 1 - body.len(), T).await);
    let second = &body[1017 + 1000..];
    assert_eq!(second[0], 2, "title block is 2×16 bytes");
    assert_eq!(&second[1..33], b"StreamTitle='Artist - Title';\0\0\0");
    assert_eq!(second[33 + 1000], 0, "unchanged title is a zero byte");
    // Audio between the blocks is untouched.
    assert_eq!(&body[..2], &[0xFF, 0xFB]);
}

#[tokio::test]
async fn metadata_auth_rules() {
    let srv = start(test_config()).await;
    let _src = source(srv.addr, "/a.mp3", "audio/mpeg", "").await;
    let req = |auth: &str| {
        format!(
            "GET /admin/metadata?mount=/a.mp3&mode=updinfo&artist=X&title=Y HTTP/1.0\r\n{auth}\r\n"
        )
    };
    let r = exchange(srv.addr, req("").as_bytes(), T).await;
    let r = String::from_utf8_lossy(&r);
    assert!(
        r.starts_with("HTTP/1.0 401 Authentication Required\r\n"),
        "{r}"
    );
    assert!(
        r.contains("Www-Authenticate: Basic realm=\"Icecast2 Server\"\r\n")
            || r.contains("WWW-Authenticate: Basic realm=\"Icecast2 Server\"\r\n"),
        "{r}"
    );
    // admin:hackme works too.
    let r = exchange(
        srv.addr,
        req("Authorization: Basic YWRtaW46aGFja21l\r\n").as_bytes(),
        T,
    )
    .await;
    assert!(String::from_utf8_lossy(&r).starts_with("HTTP/1.0 200 OK\r\n"));
    assert_eq!(
        srv.app
            .server
            .registry
            .get("/a.mp3")
            .unwrap()
            .metadata()
            .display(),
        "X - Y"
    );
    // Unknown mount.
    let r = exchange(srv.addr, b"GET /admin/metadata?mount=/nope&mode=updinfo&song=x HTTP/1.0\r\nAuthorization: Basic YWRtaW46aGFja21l\r\n\r\n", T).await;
    assert!(String::from_utf8_lossy(&r).starts_with("HTTP/1.0 400 "));
}

#[tokio::test]
async fn not_found_and_playlists() {
    let srv = start(test_config()).await;
    let r = exchange(srv.addr, b"GET /nope.mp3 HTTP/1.1\r\n\r\n", T).await;
    let r = String::from_utf8_lossy(&r);
    assert!(r.starts_with("HTTP/1.0 404 File Not Found\r\n"), "{r}");
    assert!(
        r.ends_with("<b>404 - The file you requested could not be found</b></body></html>\r\n"),
        "{r}"
    );
    // Playlists are generated even for mounts that are not live.
    let r = exchange(
        srv.addr,
        b"GET /live.mp3.m3u HTTP/1.1\r\nHost: radio.example:8000\r\n\r\n",
        T,
    )
    .await;
    let r = String::from_utf8_lossy(&r);
    assert!(r.contains("Content-Type: audio/x-mpegurl\r\n"), "{r}");
    assert!(
        r.ends_with("\r\n\r\nhttp://radio.example:8000/live.mp3\r\n"),
        "{r}"
    );
    // Without a port in Host, hostname and the first port are used.
    let r = exchange(srv.addr, b"GET /live.m3u HTTP/1.0\r\n\r\n", T).await;
    assert!(
        String::from_utf8_lossy(&r)
            .ends_with(&format!("http://localhost:{}/live\r\n", srv.addr.port()))
    );
    // The XSPF of a mount that is not live is icecast2's empty playlist.
    let r = exchange(srv.addr, b"GET /live.xspf HTTP/1.0\r\n\r\n", T).await;
    let r = String::from_utf8_lossy(&r);
    assert!(
        r.contains("application/xspf+xml") && r.contains("<trackList/>"),
        "{r}"
    );
    // The status page.
    let r = exchange(srv.addr, b"GET / HTTP/1.1\r\n\r\n", T).await;
    assert!(String::from_utf8_lossy(&r).starts_with("HTTP/1.0 200 OK\r\n"));
}

#[tokio::test]
async fn max_listeners_and_fallback_when_full() {
    let mut config = test_config();
    config.mounts.push(MountConfig {
        name: "/small".into(),
        max_listeners: Some(1),
        ..Default::default()
    });
    config.mounts.push(MountConfig {
        name: "/full".into(),
        max_listeners: Some(1),
        fallback_mount: Some("/overflow".into()),
        fallback_when_full: Some(true),
        ..Default::default()
    });
    let srv = start(config).await;
    let mut a = source(srv.addr, "/small", "audio/mpeg", "").await;
    let mut b = source(srv.addr, "/full", "audio/mpeg", "").await;
    let mut c = source(srv.addr, "/overflow", "audio/mpeg", "").await;
    for s in [&mut a, &mut b, &mut c] {
        s.write_all(&mp3_frames(3)).await.unwrap();
    }
    let (h1, _, _k1) = get(srv.addr, "/small", "").await;
    assert!(h1.starts_with("HTTP/1.0 200"));
    let r = exchange(srv.addr, b"GET /small HTTP/1.0\r\n\r\n", T).await;
    let r = String::from_utf8_lossy(&r);
    assert!(
        r.starts_with("HTTP/1.0 403 Forbidden\r\n") && r.ends_with("max listeners reached"),
        "{r}"
    );
    let (_, _, _k2) = get(srv.addr, "/full", "").await;
    let (h3, _, _k3) = get(srv.addr, "/full", "").await;
    assert!(h3.starts_with("HTTP/1.0 200"), "{h3}");
    wait_for("overflow listener", T, || {
        srv.app
            .server
            .registry
            .get("/overflow")
            .unwrap()
            .listener_count()
            == 1
    })
    .await;
}

#[tokio::test]
async fn client_limit() {
    let mut config = test_config();
    config.limits.clients = 2;
    let srv = start(config).await;
    let _a = source(srv.addr, "/x", "audio/mpeg", "").await;
    let (_h, _, _l) = get(srv.addr, "/x", "").await;
    let r = exchange(srv.addr, b"GET /x HTTP/1.0\r\n\r\n", T).await;
    let r = String::from_utf8_lossy(&r);
    assert!(
        r.starts_with("HTTP/1.0 403 Forbidden\r\n")
            && r.ends_with("Icecast connection limit reached"),
        "{r}"
    );
}

#[tokio::test]
async fn slow_listener_is_dropped_and_counted() {
    let mut config = test_config();
    config.mounts.push(MountConfig {
        name: "/fast".into(),
        queue_size: Some(200_000),
        burst_size: Some(10_000),
        ..Default::default()
    });
    let srv = start(config).await;
    let mut src = source(srv.addr, "/fast", "audio/mpeg", "").await;
    // A listener with a tiny receive window that never reads.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut stalled = sock.connect(srv.addr).await.unwrap();
    stalled
        .write_all(b"GET /fast HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mount = srv.app.server.registry.get("/fast").unwrap();
    wait_for("listener admitted", T, || mount.listener_count() == 1).await;
    let chunk = mp3_frames(240); // ~100 KB
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while mount.listener_count() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stalled listener was never dropped"
        );
        src.write_all(&chunk).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        mount
            .stats
            .slow_listeners
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn fallback_and_override_keep_listeners_connected() {
    let mut config = test_config();
    config.mounts.push(MountConfig {
        name: "/main".into(),
        fallback_mount: Some("/backup".into()),
        fallback_override: Some(true),
        ..Default::default()
    });
    let srv = start(config).await;
    let mut backup = source(srv.addr, "/backup", "audio/mpeg", "").await;
    let mut main = source(srv.addr, "/main", "audio/mpeg", "").await;
    main.write_all(&mp3_frame(false, 0xAA).repeat(4))
        .await
        .unwrap();
    backup
        .write_all(&mp3_frame(false, 0xBB).repeat(4))
        .await
        .unwrap();
    let (_, mut body, mut l) = get(srv.addr, "/main", "").await;
    body.extend(read_at_least(&mut l, 4 * 417 - body.len(), T).await);
    assert_eq!(body[100], 0xAA);
    let main_mount = srv.app.server.registry.get("/main").unwrap();
    // The main source leaves: the listener moves to /backup without a disconnect.
    drop(main);
    let backup_mount = srv.app.server.registry.get("/backup").unwrap();
    wait_for("listener on backup", T, || {
        backup_mount.listener_count() == 1
    })
    .await;
    assert!(main_mount.is_ended());
    backup
        .write_all(&mp3_frame(false, 0xBC).repeat(3))
        .await
        .unwrap();
    // What /main queued before it left (its last frame, confirmed by the hang-up) comes
    // first, then the fallback.
    let more = read_at_least(&mut l, 2 * 417, T).await;
    assert!(
        more.len() >= 2 * 417 && more[..417].contains(&0xAA) && more[417..].contains(&0xBC),
        "listener must hear the rest of main, then the fallback"
    );
    // The main source returns: fallback-override takes the listener back.
    let mut main2 = source(srv.addr, "/main", "audio/mpeg", "").await;
    let main2_mount = srv.app.server.registry.get("/main").unwrap();
    wait_for("listener back on main", T, || {
        main2_mount.listener_count() == 1
    })
    .await;
    main2
        .write_all(&mp3_frame(false, 0xCC).repeat(3))
        .await
        .unwrap();
    let back = read_at_least(&mut l, 417, T).await;
    assert!(
        back.contains(&0xCC),
        "listener must hear the returned source"
    );
    assert_eq!(backup_mount.listener_count(), 0);
    // Listeners of a mount with no fallback are closed when it ends.
    drop(backup);
    let (_, _, mut solo) = get(srv.addr, "/main", "").await;
    drop(main2);
    let rest = read_until_close(&mut solo, T).await;
    let _ = rest;
    wait_for("main gone", T, || {
        !srv.app.server.registry.contains("/main")
    })
    .await;
}

#[tokio::test]
async fn intro_plays_first_and_access_log_is_written() {
    let dir = std::env::temp_dir().join(format!("floecast-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let intro = dir.join("intro.mp3");
    std::fs::write(&intro, mp3_frame(false, 0x11).repeat(2)).unwrap();
    let log = dir.join("access.log");
    let _ = std::fs::remove_file(&log);
    let mut config = test_config();
    config.logging.access_log = Some(log.clone());
    config.mounts.push(MountConfig {
        name: "/intro.mp3".into(),
        intro: Some(intro),
        ..Default::default()
    });
    let srv = start(config).await;
    let mut src = source(srv.addr, "/intro.mp3", "audio/mpeg", "").await;
    src.write_all(&mp3_frame(false, 0x22).repeat(3))
        .await
        .unwrap();
    wait_for("queued", T, || {
        srv.app
            .server
            .registry
            .get("/intro.mp3")
            .is_some_and(|m| m.queued_bytes() > 0)
    })
    .await;
    let (_, mut body, mut l) = get(srv.addr, "/intro.mp3", "").await;
    body.extend(read_at_least(&mut l, 4 * 417 - body.len(), T).await);
    assert_eq!(body[10], 0x11, "intro first");
    assert_eq!(body[2 * 417 + 10], 0x22, "then the stream");
    drop(l);
    let mount = srv.app.server.registry.get("/intro.mp3").unwrap();
    wait_for("listener gone", T, || mount.listener_count() == 0).await;
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("\"GET /intro.mp3 HTTP/1.1\""))
        .expect("access line");
    // `IP - - [date] "GET /intro.mp3 HTTP/1.1" 200 BYTES "-" "test/1.0" SECONDS`
    let bytes_and_rest = line.split("\" 200 ").nth(1).unwrap_or("");
    let bytes: u64 = bytes_and_rest
        .split(' ')
        .next()
        .and_then(|b| b.parse().ok())
        .unwrap_or(0);
    let seconds = line.rsplit(' ').next().and_then(|s| s.parse::<u64>().ok());
    let re_ok = line.starts_with("127.0.0.1 - - [")
        && line.contains(" +")
        && line.contains("] \"GET /intro.mp3 HTTP/1.1\" 200 ")
        && bytes >= 4 * 417
        && line.contains(" \"-\" \"test/1.0\" ")
        && seconds.is_some();
    assert!(re_ok, "access line: {line}");
    let _ = std::fs::remove_dir_all(&dir);
}
