//! Relays over loopback, floecast to floecast: bytes arrive unchanged, titles set upstream
//! reach the relay's ICY listeners, listeners survive an upstream restart, on-demand relays
//! start and stop, 302s are followed, `ICY 200 OK` and chunked upstreams work, master
//! relay-all follows the master's stream list, and a reload (`App::reload`, what SIGHUP runs)
//! starts, restarts and stops `[[relay]]`s and the `[master]` poller while unchanged relays
//! keep their listeners.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use floecast::config::{Config, ListenSocket, MasterConfig, RelayConfig, RelayTiming};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ADMIN: &str = "Authorization: Basic YWRtaW46aGFja21l\r\n";
const T: Duration = Duration::from_secs(10);

fn relay(port: u16, mount: &str, local: &str) -> RelayConfig {
    RelayConfig {
        server: "127.0.0.1".into(),
        port,
        mount: mount.into(),
        local_mount: local.into(),
        username: None,
        password: None,
        relay_metadata: true,
        on_demand: false,
        bind: None,
        timing: RelayTiming {
            grace_period: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(1),
        },
        tls: Default::default(),
    }
}

/// A source on `addr` sending tagged MP3 frames, `per_tick` every 20 ms, until `stop`.
/// Returns everything it sent once stopped.
fn pace_source(
    mut s: TcpStream,
    first_tag: usize,
    per_tick: usize,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<u8>> {
    tokio::spawn(async move {
        let mut sent = Vec::new();
        let mut i = first_tag;
        while !stop.load(Ordering::Relaxed) {
            let mut chunk = Vec::new();
            for _ in 0..per_tick {
                chunk.extend(mp3_frame(i % 3 == 2, (i % 256) as u8));
                i += 1;
            }
            if s.write_all(&chunk).await.is_err() {
                break;
            }
            sent.extend(chunk);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sent
    })
}

/// Split an ICY stream (after the head) into audio and the metadata texts it carried.
fn icy_split(data: &[u8], metaint: usize) -> (Vec<u8>, Vec<String>) {
    let mut audio = Vec::new();
    let mut metas = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let n = metaint.min(data.len() - i);
        audio.extend_from_slice(&data[i..i + n]);
        i += n;
        if i >= data.len() {
            break;
        }
        let len = data[i] as usize * 16;
        i += 1;
        if len > 0 {
            let end = (i + len).min(data.len());
            metas.push(
                String::from_utf8_lossy(&data[i..end])
                    .trim_end_matches('\0')
                    .to_string(),
            );
            i = end;
        }
    }
    (audio, metas)
}

/// Is `part` (at least a few frames of it) a contiguous piece of `whole`?
fn is_piece_of(part: &[u8], whole: &[u8]) -> bool {
    if part.len() < 8 {
        return false;
    }
    let key = &part[..8];
    (0..whole.len().saturating_sub(part.len() - 1))
        .filter(|&o| &whole[o..o + 8] == key)
        .any(|o| &whole[o..o + part.len()] == part)
}

async fn listen(addr: SocketAddr, mount: &str, icy: bool) -> (TcpStream, String, Vec<u8>) {
    let mut s = connect(addr).await;
    let extra = if icy { "Icy-MetaData: 1\r\n" } else { "" };
    s.write_all(format!("GET {mount} HTTP/1.0\r\n{extra}\r\n").as_bytes())
        .await
        .expect("write");
    let (head, rest) = read_head(&mut s, Duration::from_secs(25)).await;
    (s, head, rest)
}

async fn set_title(addr: SocketAddr, mount: &str, song: &str) {
    let r = exchange(
        addr,
        format!(
            "GET /admin/metadata?mount={mount}&mode=updinfo&song={song} HTTP/1.0\r\n{ADMIN}\r\n"
        )
        .as_bytes(),
        T,
    )
    .await;
    assert!(String::from_utf8_lossy(&r).contains("Metadata update successful"));
}

async fn api_status(addr: SocketAddr) -> serde_json::Value {
    let r = exchange(addr, b"GET /api/status HTTP/1.0\r\n\r\n", T).await;
    let text = String::from_utf8_lossy(&r);
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    serde_json::from_str(body).expect("status json")
}

fn mount_json<'a>(status: &'a serde_json::Value, mount: &str) -> Option<&'a serde_json::Value> {
    status["mounts"]
        .as_array()?
        .iter()
        .find(|m| m["mount"] == mount)
}

#[tokio::test]
async fn relayed_bytes_are_identical_and_titles_pass_through() {
    let a = start(test_config()).await;
    let src = source(
        a.addr,
        "/live",
        "audio/mpeg",
        "ice-name: Upstream Radio\r\n",
    )
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let pacer = pace_source(src, 0, 5, stop.clone());

    let mut cb = test_config();
    cb.relays.push(relay(a.addr.port(), "/live", "/relayed"));
    let b = start(cb).await;
    wait_for("relay mount", T, || {
        b.app.server.registry.get("/relayed").is_some()
    })
    .await;

    let (mut l, head, rest) = listen(b.addr, "/relayed", true).await;
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: audio/mpeg"), "{head}");
    assert!(head.contains("icy-name:Upstream Radio"), "{head}");
    assert!(head.contains("icy-metaint:16000"), "{head}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    set_title(a.addr, "/live", "Artist%20-%20Relayed%20%C3%A9").await;
    let mut got = rest;
    got.extend(read_at_least(&mut l, 100_000, Duration::from_secs(15)).await);
    stop.store(true, Ordering::Relaxed);
    let sent = pacer.await.expect("pacer");

    let (audio, metas) = icy_split(&got, 16_000);
    assert!(
        metas
            .iter()
            .any(|m| m == "StreamTitle='Artist - Relayed é';"),
        "titles seen: {metas:?}"
    );
    let audio = confirmed(&audio);
    assert!(audio.len() > 60_000, "only {} audio bytes", audio.len());
    assert!(
        is_piece_of(audio, &sent),
        "relayed audio differs from what the source sent"
    );
    assert_eq!(
        b.app
            .server
            .registry
            .get("/relayed")
            .map(|m| m.metadata().display())
            .as_deref(),
        Some("Artist - Relayed é")
    );

    let st = api_status(b.addr).await;
    let m = mount_json(&st, "/relayed").expect("mount in status");
    assert_eq!(m["relay"]["state"], "up");
    assert_eq!(m["source"]["kind"], "relay");
    assert!(m["relay"]["bytes_in"].as_u64().unwrap_or(0) > 60_000);
    assert_eq!(
        m["relay"]["upstream"],
        format!("http://127.0.0.1:{}/live", a.addr.port())
    );
    let metrics = exchange(b.addr, b"GET /metrics HTTP/1.0\r\n\r\n", T).await;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("floecast_relay_up{mount=\"/relayed\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("floecast_relay_connect_attempts_total{mount=\"/relayed\"} 1"));
    assert!(metrics.contains("floecast_source_connected{kind=\"relay\",mount=\"/relayed\"} 1"));
    let stats = exchange(
        b.addr,
        format!("GET /admin/stats HTTP/1.0\r\n{ADMIN}\r\n").as_bytes(),
        T,
    )
    .await;
    assert!(
        String::from_utf8_lossy(&stats)
            .contains("<source_relay_connections>1</source_relay_connections>")
    );
}

#[tokio::test]
async fn listeners_survive_an_upstream_restart() {
    let mut ca = test_config();
    let a = start(ca.clone()).await;
    let a_addr = a.addr;
    let src = source(a_addr, "/live", "audio/mpeg", "").await;
    let stop = Arc::new(AtomicBool::new(false));
    let pacer = pace_source(src, 0, 5, stop.clone());

    let mut cb = test_config();
    cb.relays.push(relay(a_addr.port(), "/live", "/live"));
    let b = start(cb).await;
    wait_for("relay mount", T, || {
        b.app.server.registry.get("/live").is_some()
    })
    .await;
    let (mut l, head, _) = listen(b.addr, "/live", false).await;
    assert!(head.starts_with("HTTP/1.0 200 OK"), "{head}");
    let before = read_at_least(&mut l, 20_000, T).await;
    assert!(before.len() >= 20_000);

    // Kill the whole upstream server, wait, and bring it back on the same port.
    stop.store(true, Ordering::Relaxed);
    let _ = pacer.await;
    a.app.shutdown(Duration::from_secs(2)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let relay_status = b
        .app
        .server
        .tasks
        .relays
        .get("/live")
        .expect("relay status");
    assert_ne!(relay_status.state().name(), "up");
    // Drain what B still had queued; the listener must still be connected.
    let _ = read_at_least(&mut l, 1 << 20, Duration::from_millis(300)).await;

    ca.listen = vec![ListenSocket {
        port: a_addr.port(),
        bind_address: Some("127.0.0.1".into()),
        shoutcast_mount: None,
        tls: Default::default(),
    }];
    let a2 = start(ca).await;
    // New audio, tagged from 100 on, so it cannot be confused with the old.
    let src = source(a2.addr, "/live", "audio/mpeg", "").await;
    let stop2 = Arc::new(AtomicBool::new(false));
    let pacer2 = pace_source(src, 100, 5, stop2.clone());

    let after = read_at_least(&mut l, 30_000, Duration::from_secs(20)).await;
    stop2.store(true, Ordering::Relaxed);
    let sent2 = pacer2.await.expect("pacer");
    assert!(
        after.len() >= 30_000,
        "listener got only {} bytes after the restart",
        after.len()
    );
    // The tail of what arrived is the new source's audio.
    let tail = confirmed(&after[after.len() - 10_000..]);
    let start = tail
        .windows(4)
        .position(|w| w[0] == 0xFF && w[1] == 0xFB)
        .unwrap_or(0);
    assert!(
        is_piece_of(&tail[start..], &sent2),
        "audio after the restart is not the new source's"
    );
    let m = b.app.server.registry.get("/live").expect("mount kept");
    assert_eq!(m.listener_count(), 1);
    assert!(relay_status.attempts.load(Ordering::Relaxed) >= 2);
    assert!(relay_status.failures.load(Ordering::Relaxed) >= 1);
}

#[tokio::test]
async fn on_demand_relay_starts_with_a_listener_and_stops_after_the_last() {
    let a = start(test_config()).await;
    let src = source(a.addr, "/live", "audio/mpeg", "").await;
    let stop = Arc::new(AtomicBool::new(false));
    let pacer = pace_source(src, 0, 5, stop.clone());

    let mut cb = test_config();
    let mut r = relay(a.addr.port(), "/live", "/od");
    r.on_demand = true;
    cb.relays.push(r);
    let b = start(cb).await;
    wait_for("standby mount", T, || {
        b.app.server.registry.get("/od").is_some()
    })
    .await;
    let upstream = a.app.server.registry.get("/live").expect("upstream mount");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        upstream.listener_count(),
        0,
        "on-demand relay connected without listeners"
    );
    let standby = b.app.server.registry.get("/od").expect("standby");
    assert!(standby.is_standby() && standby.is_on_demand());
    let stats = exchange(
        b.addr,
        format!("GET /admin/stats HTTP/1.0\r\n{ADMIN}\r\n").as_bytes(),
        T,
    )
    .await;
    let stats = String::from_utf8_lossy(&stats);
    let od = stats
        .split("<source mount=\"/od\">")
        .nth(1)
        .expect("/od in stats");
    assert!(
        od.contains("<on_demand>1</on_demand>") && od.contains("<listeners>0</listeners>"),
        "{od}"
    );
    let st = api_status(b.addr).await;
    assert_eq!(
        mount_json(&st, "/od").expect("od")["relay"]["state"],
        "idle"
    );

    // Two listeners arrive at once: both wait for the connection, neither gets a 404.
    let (l1, l2) = tokio::join!(listen(b.addr, "/od", false), listen(b.addr, "/od", false));
    let (mut l1, h1, _) = l1;
    let (l2, h2, _) = l2;
    assert!(
        h1.starts_with("HTTP/1.0 200 OK") && h2.starts_with("HTTP/1.0 200 OK"),
        "{h1}\n{h2}"
    );
    assert!(read_at_least(&mut l1, 10_000, T).await.len() >= 10_000);
    assert_eq!(upstream.listener_count(), 1);
    drop(l2);
    drop(l1);
    // idle-timeout 1 s: the relay lets go of the upstream and the name goes back to standby.
    wait_for("relay disconnect", Duration::from_secs(10), || {
        upstream.listener_count() == 0
    })
    .await;
    wait_for("standby again", T, || {
        b.app
            .server
            .registry
            .get("/od")
            .is_some_and(|m| m.is_standby())
    })
    .await;
    // And a new listener brings it back.
    let (mut l3, h3, _) = listen(b.addr, "/od", false).await;
    assert!(h3.starts_with("HTTP/1.0 200 OK"), "{h3}");
    assert!(read_at_least(&mut l3, 10_000, T).await.len() >= 10_000);
    stop.store(true, Ordering::Relaxed);
    let _ = pacer.await;
}

/// A one-shot server that answers every connection with `reply` and records what it got.
async fn canned(
    reply: Vec<u8>,
    keep_open: bool,
) -> (SocketAddr, Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let reply = reply.clone();
            let seen = seen2.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut req = Vec::new();
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                seen.lock().unwrap().push(req);
                let _ = s.write_all(&reply).await;
                if keep_open {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn a_302_is_followed_with_icecast_request_bytes() {
    let a = start(test_config()).await;
    let src = source(a.addr, "/real", "audio/mpeg", "").await;
    let stop = Arc::new(AtomicBool::new(false));
    let pacer = pace_source(src, 0, 5, stop.clone());
    let redirect = format!(
        "HTTP/1.0 302 Found\r\nLocation: http://127.0.0.1:{}/real\r\n\r\n",
        a.addr.port()
    );
    let (r_addr, seen) = canned(redirect.into_bytes(), false).await;

    let mut cb = test_config();
    let mut r = relay(r_addr.port(), "/moved", "/here");
    r.username = Some("u".into());
    r.password = Some("p".into());
    cb.relays.push(r);
    let b = start(cb).await;
    let (mut l, head, _) = listen_when_up(&b, "/here").await;
    assert!(head.starts_with("HTTP/1.0 200 OK"), "{head}");
    assert!(read_at_least(&mut l, 10_000, T).await.len() >= 10_000);
    let req = seen.lock().unwrap()[0].clone();
    let want = format!(
        "GET /moved HTTP/1.0\r\nUser-Agent: {}\r\nHost: 127.0.0.1\r\nIcy-MetaData: 1\r\nAuthorization: Basic dTpw\r\n\r\n",
        Config::default().server_id
    );
    assert_eq!(String::from_utf8_lossy(&req), want);
    stop.store(true, Ordering::Relaxed);
    let _ = pacer.await;
}

async fn listen_when_up(b: &TestServer, mount: &str) -> (TcpStream, String, Vec<u8>) {
    wait_for("relay up", T, || {
        b.app
            .server
            .tasks
            .relays
            .get(mount)
            .is_some_and(|r| r.state().name() == "up")
    })
    .await;
    listen(b.addr, mount, true).await
}

#[tokio::test]
async fn icy_and_chunked_upstreams() {
    // SHOUTcast-style: `ICY 200 OK`, in-band metadata every 1000 bytes.
    let audio = mp3_frames(60);
    let mut body = Vec::new();
    let title = b"StreamTitle='From ICY';";
    let mut block = vec![title.len().div_ceil(16) as u8];
    block.extend_from_slice(title);
    block.resize(1 + block[0] as usize * 16, 0);
    for (i, c) in audio.chunks(1000).enumerate() {
        body.extend_from_slice(c);
        if c.len() == 1000 {
            body.extend_from_slice(if i == 0 { &block } else { &[0u8][..] });
        }
    }
    let mut icy =
        b"ICY 200 OK\r\nicy-name:Shout\r\nicy-metaint:1000\r\ncontent-type:audio/mpeg\r\n\r\n"
            .to_vec();
    icy.extend_from_slice(&body);
    let (icy_addr, _) = canned(icy, true).await;

    // Chunked HTTP/1.1.
    let mut chunked =
        b"HTTP/1.1 200 OK\r\nContent-Type: audio/mpeg\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for c in audio.chunks(777) {
        chunked.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        chunked.extend_from_slice(c);
        chunked.extend_from_slice(b"\r\n");
    }
    let (ch_addr, _) = canned(chunked, true).await;

    let mut cb = test_config();
    cb.relays.push(relay(icy_addr.port(), "/;", "/icy"));
    cb.relays.push(relay(ch_addr.port(), "/s", "/chunked"));
    let b = start(cb).await;

    for mount in ["/icy", "/chunked"] {
        let (mut l, head, rest) = listen_when_up(&b, mount).await;
        assert!(head.starts_with("HTTP/1.0 200 OK"), "{mount}: {head}");
        let mut got = rest;
        got.extend(read_at_least(&mut l, 10_000, Duration::from_secs(3)).await);
        let (got_audio, metas) = icy_split(&got, 16_000);
        let got_audio = confirmed(&got_audio);
        assert!(
            got_audio.len() > 10_000,
            "{mount}: {} bytes",
            got_audio.len()
        );
        assert!(
            is_piece_of(got_audio, &audio),
            "{mount}: audio changed on the way"
        );
        if mount == "/icy" {
            assert!(head.contains("icy-name:Shout"), "{head}");
            assert_eq!(
                metas.first().map(String::as_str),
                Some("StreamTitle='From ICY';")
            );
        }
    }
}

#[tokio::test]
async fn master_relay_all_follows_the_stream_list() {
    let mut ca = test_config();
    ca.auth.relay_password = "r3lay".into();
    let a = start(ca).await;
    let s1 = source(a.addr, "/one", "audio/mpeg", "").await;
    let stop = Arc::new(AtomicBool::new(false));
    let p1 = pace_source(s1, 0, 5, stop.clone());

    let mut cb = test_config();
    cb.master = Some(MasterConfig {
        server: "127.0.0.1".into(),
        port: a.addr.port(),
        username: "relay".into(),
        password: "r3lay".into(),
        update_interval: Duration::from_secs(1),
        on_demand: false,
        timing: RelayTiming {
            grace_period: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
        },
        tls: Default::default(),
    });
    let b = start(cb).await;
    let (mut l, head, _) = listen_when_up(&b, "/one").await;
    assert!(head.starts_with("HTTP/1.0 200 OK"), "{head}");
    assert!(read_at_least(&mut l, 10_000, T).await.len() >= 10_000);
    set_title(a.addr, "/one", "Master%20Title").await;
    wait_for("title on the slave", T, || {
        b.app
            .server
            .registry
            .get("/one")
            .is_some_and(|m| m.metadata().display() == "Master Title")
    })
    .await;

    // A second mount appears on the master, then the first goes away.
    let s2 = source(a.addr, "/two", "audio/mpeg", "").await;
    let stop2 = Arc::new(AtomicBool::new(false));
    let p2 = pace_source(s2, 0, 5, stop2.clone());
    wait_for("second relay", T, || {
        b.app.server.tasks.relays.get("/two").is_some()
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let _ = p1.await;
    wait_for("first relay stopped", Duration::from_secs(15), || {
        b.app.server.tasks.relays.get("/one").is_none()
            && b.app.server.registry.get("/one").is_none()
    })
    .await;
    assert!(b.app.server.tasks.relays.get("/two").is_some());
    stop2.store(true, Ordering::Relaxed);
    let _ = p2.await;
}

#[tokio::test]
async fn a_refusing_upstream_is_retried_and_reported() {
    let (addr, seen) = canned(b"HTTP/1.0 404 File Not Found\r\n\r\n".to_vec(), false).await;
    let mut cb = test_config();
    cb.relays.push(relay(addr.port(), "/nope", "/nope"));
    let b = start(cb).await;
    let connections = Arc::new(AtomicUsize::new(0));
    wait_for("two attempts", T, || {
        connections.store(seen.lock().unwrap().len(), Ordering::Relaxed);
        connections.load(Ordering::Relaxed) >= 2
    })
    .await;
    let st = api_status(b.addr).await;
    // No mount while the upstream refuses (not on demand), so status has no entry; the
    // relay state is still visible to metrics.
    assert!(mount_json(&st, "/nope").is_none());
    let r = b.app.server.tasks.relays.get("/nope").expect("relay");
    assert!(r.last_error().unwrap_or_default().contains("404"));
    let metrics = exchange(b.addr, b"GET /metrics HTTP/1.0\r\n\r\n", T).await;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("floecast_relay_up{mount=\"/nope\"} 0"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_shows_relay_state() {
    if !have("chromium") {
        eprintln!("SKIP: chromium not installed (status_page_shows_relay_state)");
        return;
    }
    // An on-demand relay reserves its mount without connecting: the page shows it idle.
    let mut cb = test_config();
    let mut r = relay(9, "/far", "/od.mp3");
    r.on_demand = true;
    cb.relays.push(r);
    let b = start(cb).await;
    wait_for("standby mount", T, || {
        b.app.server.registry.get("/od.mp3").is_some()
    })
    .await;
    let profile =
        std::env::temp_dir().join(format!("floecast-chromium-relay-{}", std::process::id()));
    let out = tokio::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=8000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("http://{}/?updates=2", b.addr))
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(40), out)
        .await
        .expect("chromium finished")
        .expect("chromium ran");
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("data-mount=\"/od.mp3\""), "{dom}");
    assert!(dom.contains("tag relay-idle"), "{dom}");
    assert!(dom.contains("relay idle (on demand)"), "{dom}");
    assert!(dom.contains("from http://127.0.0.1:9/far"), "{dom}");
}

#[tokio::test]
async fn lost_upstream_moves_listeners_to_the_fallback_and_override_brings_them_back() {
    let a = start(test_config()).await;
    let src = source(a.addr, "/live", "audio/mpeg", "").await;
    let stop = Arc::new(AtomicBool::new(false));
    let pacer = pace_source(src, 0, 5, stop.clone());

    let mut cb = test_config();
    cb.mounts.push(floecast::config::MountConfig {
        name: "/relayed".into(),
        fallback_mount: Some("/fb".into()),
        fallback_override: Some(true),
        ..Default::default()
    });
    cb.relays.push(relay(a.addr.port(), "/live", "/relayed"));
    let b = start(cb).await;
    let fb = source(b.addr, "/fb", "audio/mpeg", "").await;
    let fb_stop = Arc::new(AtomicBool::new(false));
    let fb_pacer = pace_source(fb, 0, 5, fb_stop.clone());
    let (mut l, head, _) = listen_when_up(&b, "/relayed").await;
    assert!(head.starts_with("HTTP/1.0 200 OK"), "{head}");
    assert!(read_at_least(&mut l, 10_000, T).await.len() >= 10_000);
    let count = |m: &str| {
        b.app
            .server
            .registry
            .get(m)
            .map_or(0, |m| m.listener_count())
    };

    // The upstream's source goes: the relay's listener moves to the live fallback at once.
    stop.store(true, Ordering::Relaxed);
    let _ = pacer.await;
    wait_for("listener on the fallback", T, || count("/fb") == 1).await;
    assert!(read_at_least(&mut l, 10_000, T).await.len() >= 10_000);

    // It comes back: fallback-override takes the listener back to the relayed mount.
    let src = source(a.addr, "/live", "audio/mpeg", "").await;
    let stop2 = Arc::new(AtomicBool::new(false));
    let pacer2 = pace_source(src, 0, 5, stop2.clone());
    wait_for(
        "listener back on the relay",
        Duration::from_secs(15),
        || count("/relayed") == 1 && count("/fb") == 0,
    )
    .await;
    assert!(read_at_least(&mut l, 10_000, T).await.len() >= 10_000);
    for s in [stop2, fb_stop] {
        s.store(true, Ordering::Relaxed);
    }
    let _ = (pacer2.await, fb_pacer.await);
}

#[tokio::test]
async fn a_relay_waits_while_a_pushed_source_holds_its_mount() {
    // The upstream has nothing yet, so the relay backs off while a source takes the mount.
    let a = start(test_config()).await;
    let mut cb = test_config();
    cb.relays.push(relay(a.addr.port(), "/live", "/taken"));
    let b = start(cb).await;
    let pushed = source(b.addr, "/taken", "audio/mpeg", "").await;
    let src = source(a.addr, "/live", "audio/mpeg", "").await;
    let stop = Arc::new(AtomicBool::new(false));
    let pacer = pace_source(src, 0, 5, stop.clone());
    let upstream = a.app.server.registry.get("/live").expect("upstream");
    wait_for("relay blocked", T, || {
        b.app.server.tasks.relays.get("/taken").is_some_and(|r| {
            r.last_error()
                .is_some_and(|e| e.contains("in use by another source"))
        })
    })
    .await;
    assert_eq!(
        upstream.listener_count(),
        0,
        "the relay fetched a stream it cannot serve"
    );
    // The pushed source leaves: the relay takes the mount.
    drop(pushed);
    wait_for("relay up", Duration::from_secs(15), || {
        b.app
            .server
            .tasks
            .relays
            .get("/taken")
            .is_some_and(|r| r.state().name() == "up")
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let _ = pacer.await;
}

#[tokio::test]
async fn on_demand_relay_starts_for_listeners_on_an_overriding_fallback() {
    let a = start(test_config()).await;
    let src = source(a.addr, "/live", "audio/mpeg", "").await;
    let stop = Arc::new(AtomicBool::new(false));
    let pacer = pace_source(src, 0, 5, stop.clone());
    let mut cb = test_config();
    cb.mounts.push(floecast::config::MountConfig {
        name: "/od".into(),
        fallback_mount: Some("/fb".into()),
        fallback_override: Some(true),
        ..Default::default()
    });
    let mut r = relay(a.addr.port(), "/live", "/od");
    r.on_demand = true;
    cb.relays.push(r);
    let b = start(cb).await;
    let fb = source(b.addr, "/fb", "audio/mpeg", "").await;
    let fb_stop = Arc::new(AtomicBool::new(false));
    let fb_pacer = pace_source(fb, 0, 5, fb_stop.clone());
    let upstream = a.app.server.registry.get("/live").expect("upstream");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(upstream.listener_count(), 0);
    // A listener on the fallback makes the relay connect, and the override takes it over.
    let (mut l, head, _) = listen(b.addr, "/fb", false).await;
    assert!(head.starts_with("HTTP/1.0 200 OK"), "{head}");
    wait_for("listener moved to the relay", T, || {
        b.app
            .server
            .registry
            .get("/od")
            .is_some_and(|m| !m.is_standby() && m.listener_count() == 1)
    })
    .await;
    assert_eq!(upstream.listener_count(), 1);
    assert!(read_at_least(&mut l, 10_000, T).await.len() >= 10_000);
    for s in [stop, fb_stop] {
        s.store(true, Ordering::Relaxed);
    }
    let _ = (pacer.await, fb_pacer.await);
}

/// A server started from a TOML file, so `App::reload` can re-read it. `body` is appended to
/// a base with a `[[listen]]` on a free loopback port.
struct Reloadable {
    srv: TestServer,
    path: std::path::PathBuf,
    base: String,
}

impl Reloadable {
    async fn start(name: &str, body: &str) -> Reloadable {
        let dir =
            std::env::temp_dir().join(format!("floecast-relay-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("floecast.toml");
        // A free port may be taken again before we bind it: retry on another.
        for _ in 0..20 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let base = format!(
                "[[listen]]\nport = {port}\nbind-address = \"127.0.0.1\"\n\
                 [limits]\nclients = 1000\nsources = 16\n\
                 [tuning]\nflush-interval-ms = 20\n"
            );
            std::fs::write(&path, format!("{base}{body}")).expect("write config");
            let config = Config::load(&path).expect("config loads");
            if let Ok(app) = floecast::app::App::start(config, Some(path.clone())) {
                let addr = app.http_addrs[0];
                return Reloadable {
                    srv: TestServer { app, addr },
                    path,
                    base,
                };
            }
        }
        panic!("could not bind a free port");
    }

    /// Rewrite the file with `body` and reload, as SIGHUP does.
    fn reload(&self, body: &str) {
        std::fs::write(&self.path, format!("{}{body}", self.base)).expect("write config");
        self.srv.app.reload().expect("reload");
    }
}

fn relay_toml(port: u16, mount: &str, local: &str) -> String {
    format!(
        "[[relay]]\nserver = \"127.0.0.1\"\nport = {port}\nmount = \"{mount}\"\n\
         local-mount = \"{local}\"\ngrace-period = 20\n"
    )
}

/// A live (not standby) mount called `name` on `srv`.
fn live(srv: &TestServer, name: &str) -> bool {
    srv.app
        .server
        .registry
        .get(name)
        .is_some_and(|m| !m.is_standby() && !m.is_ended())
}

fn relay_up(srv: &TestServer, name: &str, upstream_mount: &str) -> bool {
    srv.app.server.tasks.relays.get(name).is_some_and(|r| {
        r.state() == floecast::relay::State::Up && r.upstream.ends_with(upstream_mount)
    })
}

async fn metrics(addr: SocketAddr) -> String {
    let r = exchange(addr, b"GET /metrics HTTP/1.0\r\n\r\n", T).await;
    String::from_utf8_lossy(&r).into_owned()
}

#[tokio::test]
async fn reload_starts_restarts_and_stops_a_relay() {
    let a = start(test_config()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let s1 = source(a.addr, "/one", "audio/mpeg", "").await;
    let p1 = pace_source(s1, 0, 5, stop.clone());
    let s2 = source(a.addr, "/two", "audio/mpeg", "").await;
    let p2 = pace_source(s2, 100, 5, stop.clone());

    let b = Reloadable::start("restart", "").await;
    assert!(b.srv.app.server.tasks.relays.all().is_empty());
    let m = metrics(b.srv.addr).await;
    assert!(!m.contains("floecast_relay_up{"), "{m}");

    // Added: the mount goes live.
    b.reload(&relay_toml(a.addr.port(), "/one", "/r"));
    wait_for("the added relay up", T, || {
        relay_up(&b.srv, "/r", "/one") && live(&b.srv, "/r")
    })
    .await;
    let (mut l1, head, _) = listen(b.srv.addr, "/r", false).await;
    assert!(head.starts_with("HTTP/1.0 200 OK"), "{head}");
    assert!(read_at_least(&mut l1, 10_000, T).await.len() >= 10_000);
    let first = b
        .srv
        .app
        .server
        .tasks
        .relays
        .get("/r")
        .expect("relay state");
    let first_mount = b.srv.app.server.registry.get("/r").expect("mount");

    // Changed: the relay restarts against the other upstream mount. This mount has no
    // fallback, so its listener is let go, as on any relay stop.
    b.reload(&relay_toml(a.addr.port(), "/two", "/r"));
    wait_for("the changed relay up on /two", T, || {
        relay_up(&b.srv, "/r", "/two") && live(&b.srv, "/r")
    })
    .await;
    let second = b
        .srv
        .app
        .server
        .tasks
        .relays
        .get("/r")
        .expect("relay state");
    assert!(
        !Arc::ptr_eq(&first, &second),
        "a changed relay is a new relay"
    );
    assert_eq!(second.attempts.load(Ordering::Relaxed), 1);
    assert!(first_mount.is_ended(), "the old relay's mount ended");
    let _ = read_until_close(&mut l1, T).await;
    let (mut l2, head, _) = listen(b.srv.addr, "/r", false).await;
    assert!(head.starts_with("HTTP/1.0 200 OK"), "{head}");
    assert!(read_at_least(&mut l2, 10_000, T).await.len() >= 10_000);
    let m = metrics(b.srv.addr).await;
    assert!(m.contains("floecast_relay_up{mount=\"/r\"} 1"), "{m}");
    let st = api_status(b.srv.addr).await;
    let m = mount_json(&st, "/r").expect("mount in status");
    assert!(
        m["relay"]["upstream"]
            .as_str()
            .is_some_and(|u| u.ends_with("/two")),
        "{m}"
    );

    // Removed: the mount ends, its listener is let go, and status and metrics forget it.
    b.reload("");
    wait_for("the removed relay gone", T, || {
        b.srv.app.server.tasks.relays.get("/r").is_none()
            && b.srv.app.server.registry.get("/r").is_none()
    })
    .await;
    let _ = read_until_close(&mut l2, T).await;
    let st = api_status(b.srv.addr).await;
    assert!(mount_json(&st, "/r").is_none(), "{st}");
    // Listener counters keep their history; relay series go with the relay.
    let m = metrics(b.srv.addr).await;
    assert!(
        !m.lines()
            .any(|l| l.starts_with("floecast_relay_") && l.contains("mount=\"/r\"")),
        "{m}"
    );
    stop.store(true, Ordering::Relaxed);
    let _ = p1.await;
    let _ = p2.await;
}

#[tokio::test]
async fn an_unchanged_relay_keeps_its_listener_across_reloads() {
    let a = start(test_config()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let s1 = source(a.addr, "/one", "audio/mpeg", "").await;
    let pacer = pace_source(s1, 0, 5, stop.clone());

    let kept = relay_toml(a.addr.port(), "/one", "/kept");
    let b = Reloadable::start("unchanged", &kept).await;
    wait_for("the relay up", T, || {
        relay_up(&b.srv, "/kept", "/one") && live(&b.srv, "/kept")
    })
    .await;
    let (mut l, head, _) = listen(b.srv.addr, "/kept", false).await;
    assert!(head.starts_with("HTTP/1.0 200 OK"), "{head}");
    assert!(read_at_least(&mut l, 10_000, T).await.len() >= 10_000);
    let status = b
        .srv
        .app
        .server
        .tasks
        .relays
        .get("/kept")
        .expect("relay state");
    let mount = b.srv.app.server.registry.get("/kept").expect("mount");
    let attempts = status.attempts.load(Ordering::Relaxed);

    // Reload twice: once unchanged, once with another relay added next to it.
    b.reload(&kept);
    b.reload(&format!(
        "{kept}{}",
        relay_toml(a.addr.port(), "/one", "/other")
    ));
    wait_for("the added relay up", T, || {
        relay_up(&b.srv, "/other", "/one")
    })
    .await;
    assert!(read_at_least(&mut l, 30_000, T).await.len() >= 30_000);
    let now = b
        .srv
        .app
        .server
        .tasks
        .relays
        .get("/kept")
        .expect("relay state");
    assert!(Arc::ptr_eq(&status, &now), "the relay was restarted");
    assert_eq!(
        now.attempts.load(Ordering::Relaxed),
        attempts,
        "it reconnected"
    );
    assert_eq!(now.state(), floecast::relay::State::Up);
    assert!(Arc::ptr_eq(
        &mount,
        &b.srv.app.server.registry.get("/kept").expect("mount")
    ));
    assert_eq!(mount.listener_count(), 1);
    stop.store(true, Ordering::Relaxed);
    let _ = pacer.await;
}

#[tokio::test]
async fn reload_starts_changes_and_removes_the_master() {
    let mut ca = test_config();
    ca.auth.relay_password = "r3lay".into();
    let a = start(ca).await;
    let stop = Arc::new(AtomicBool::new(false));
    let s1 = source(a.addr, "/m1", "audio/mpeg", "").await;
    let pacer = pace_source(s1, 0, 5, stop.clone());
    let master = |interval: u64| {
        format!(
            "[master]\nserver = \"127.0.0.1\"\nport = {}\nusername = \"relay\"\n\
             password = \"r3lay\"\nupdate-interval = {interval}\ngrace-period = 1\n",
            a.addr.port()
        )
    };

    let b = Reloadable::start("master", "").await;
    b.reload(&master(1));
    wait_for("the master's relay up", T, || {
        relay_up(&b.srv, "/m1", "/m1") && live(&b.srv, "/m1")
    })
    .await;
    let first = b
        .srv
        .app
        .server
        .tasks
        .relays
        .get("/m1")
        .expect("relay state");

    // Unchanged: the master's relay keeps running.
    b.reload(&master(1));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let same = b
        .srv
        .app
        .server
        .tasks
        .relays
        .get("/m1")
        .expect("relay state");
    assert!(Arc::ptr_eq(&first, &same), "an unchanged master restarted");

    // Changed: the poller restarts, and with it the relays it started.
    b.reload(&master(2));
    wait_for("a fresh relay for the changed master", T, || {
        b.srv
            .app
            .server
            .tasks
            .relays
            .get("/m1")
            .is_some_and(|r| !Arc::ptr_eq(&r, &first) && r.state() == floecast::relay::State::Up)
    })
    .await;

    // Removed: the poller stops and its relays stop with it.
    b.reload("");
    wait_for("the master's relay gone", T, || {
        b.srv.app.server.tasks.relays.get("/m1").is_none()
            && b.srv.app.server.registry.get("/m1").is_none()
    })
    .await;
    assert!(!b.srv.app.supervisor.has_master());
    stop.store(true, Ordering::Relaxed);
    let _ = pacer.await;
}

#[tokio::test]
async fn a_relay_added_by_reload_takes_a_mount_over_from_the_master() {
    let mut ca = test_config();
    ca.auth.relay_password = "r3lay".into();
    let a = start(ca).await;
    let stop = Arc::new(AtomicBool::new(false));
    let s1 = source(a.addr, "/m1", "audio/mpeg", "").await;
    let p1 = pace_source(s1, 0, 5, stop.clone());
    let s2 = source(a.addr, "/m2", "audio/mpeg", "").await;
    let p2 = pace_source(s2, 100, 5, stop.clone());
    let master = format!(
        "[master]\nserver = \"127.0.0.1\"\nport = {}\nusername = \"relay\"\n\
         password = \"r3lay\"\nupdate-interval = 1\ngrace-period = 1\n",
        a.addr.port()
    );
    let b = Reloadable::start("takeover", &master).await;
    wait_for("the master's relay up", T, || {
        relay_up(&b.srv, "/m1", "/m1")
    })
    .await;

    // A configured relay for /m1 wins: the master's relay gives way at its next poll.
    b.reload(&format!(
        "{master}{}",
        relay_toml(a.addr.port(), "/m2", "/m1")
    ));
    wait_for("the configured relay on /m1", T, || {
        relay_up(&b.srv, "/m1", "/m2") && live(&b.srv, "/m1")
    })
    .await;
    assert!(
        relay_up(&b.srv, "/m2", "/m2"),
        "the master still relays /m2"
    );
    stop.store(true, Ordering::Relaxed);
    let _ = p1.await;
    let _ = p2.await;
}
