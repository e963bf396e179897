//! The door (issue 11 §2) against real clients and adversaries: the real client address from
//! PROXY protocol headers (curl's, and v1/v2 written by hand with a forged source) and from
//! `X-Forwarded-For`, believed from trusted proxies only; icecast's deny/allow files re-read
//! when they change; the per-address limit; `max-listener-duration`; admin bans that end
//! current connections; and the accept-failure log bounded at fd exhaustion.

mod common;
mod interop_support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use floecast::config::{AuthBackend, Config, ListenerAuth, MountConfig, UrlAuth};
use interop_support::{TempDir, have_all, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(5);

fn trusting(proxies: &[&str]) -> Config {
    let mut c = test_config();
    c.access.trusted_proxies = proxies.iter().map(|p| p.parse().unwrap()).collect();
    c
}

/// The listener addresses `/admin/listclients` shows for `mount`.
async fn listener_ips(addr: SocketAddr, mount: &str) -> Vec<String> {
    let req = format!("GET /admin/listclients.json?mount={mount} HTTP/1.0\r\n{ADMIN}\r\n");
    let (status, _, body) = split_reply(&exchange(addr, req.as_bytes(), T).await);
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["sources"][0]["clients"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|c| c["ip"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// A live `/m.mp3` with a steady trickle of audio.
async fn live_mount(addr: SocketAddr) -> TcpStream {
    let mut src = source(addr, "/m.mp3", "audio/mpeg", "").await;
    src.write_all(&mp3_frames(40)).await.unwrap();
    src
}

/// A listener that connects with `prefix` (a PROXY header) and `headers`, and has its head.
async fn listener_via(addr: SocketAddr, prefix: &[u8], headers: &str) -> (String, TcpStream) {
    let mut s = connect(addr).await;
    let mut req = prefix.to_vec();
    req.extend_from_slice(format!("GET /m.mp3 HTTP/1.0\r\n{headers}\r\n").as_bytes());
    s.write_all(&req).await.unwrap();
    let (head, _) = read_head(&mut s, T).await;
    (head, s)
}

fn proxy_v2(src: [u8; 4], sport: u16) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&[127, 0, 0, 1]);
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&8000u16.to_be_bytes());
    h
}

/// PROXY v1 and v2 from a trusted balancer put the client's address into listclients and the
/// access log; curl's own `--haproxy-protocol` header is accepted; an untrusted peer's PROXY
/// line is not believed (it is a bad request, closed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_from_trusted_balancers_only() {
    if !have_all("proxy_protocol_from_trusted_balancers_only", &["curl"]) {
        return;
    }
    let dir = TempDir::new("door-proxy");
    let mut config = trusting(&["127.0.0.1", "127.0.0.5"]);
    config.access.proxy_protocol_sockets = vec![0];
    config.logging.access_log = Some(dir.join("access.log"));
    let srv = start(config).await;
    // The source comes through the balancer too.
    let mut src = connect(srv.addr).await;
    src.write_all(
        format!(
            "PROXY TCP4 192.0.2.50 127.0.0.1 1234 8000\r\nSOURCE /m.mp3 HTTP/1.0\r\n{SOURCE}Content-Type: audio/mpeg\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let (head, _) = read_head(&mut src, T).await;
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    src.write_all(&mp3_frames(40)).await.unwrap();
    let (_, _, status) = split_reply(
        &exchange(
            srv.addr,
            b"PROXY TCP4 127.0.0.1 127.0.0.1 1 2\r\nGET /api/status HTTP/1.0\r\n\r\n",
            T,
        )
        .await,
    );
    assert!(status.contains("\"ip\":\"192.0.2.50\""), "{status}");

    let (head, _l1) = listener_via(
        srv.addr,
        b"PROXY TCP4 203.0.113.9 127.0.0.1 40000 8000\r\n",
        "",
    )
    .await;
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    let (head, _l2) = listener_via(srv.addr, &proxy_v2([198, 51, 100, 20], 41000), "").await;
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    wait_listeners(&srv, "/m.mp3", 2, T).await;
    let mut ips = listener_ips_via_proxy(srv.addr).await;
    ips.sort();
    assert_eq!(ips, ["198.51.100.20", "203.0.113.9"]);

    // curl, as a balancer from 127.0.0.5, with the header it writes itself.
    let out = run(
        {
            let mut c = Command::new("curl");
            c.args(["-s", "--haproxy-protocol", "--interface", "127.0.0.5"])
                .arg(format!("http://{}/status-json.xsl", srv.addr));
            c
        },
        T,
    )
    .await;
    assert!(
        out.success() && out.stdout_text().contains("icestats"),
        "{}",
        out.describe()
    );

    // Without the header, a trusted balancer's connection is closed unanswered.
    let raw = exchange(srv.addr, b"GET /status-json.xsl HTTP/1.0\r\n\r\n", T).await;
    assert!(raw.is_empty(), "{}", String::from_utf8_lossy(&raw));
    // A finished request is logged under the address the header gave.
    let raw = exchange(
        srv.addr,
        b"PROXY TCP4 203.0.113.9 127.0.0.1 40001 8000\r\nGET /status.xsl HTTP/1.0\r\n\r\n",
        T,
    )
    .await;
    assert!(raw.starts_with(b"HTTP/1.0 200"));
    let log_path = dir.join("access.log");
    wait_for("the access-log lines", T, || {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        log.contains("127.0.0.5 ") && log.contains("GET /status.xsl")
    })
    .await;
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.lines()
            .any(|l| l.starts_with("203.0.113.9 ") && l.contains("GET /status.xsl")),
        "{log}"
    );
    assert!(log.lines().any(|l| l.starts_with("127.0.0.5 ")), "{log}");
}

/// listclients through the PROXY socket: the admin's own request needs a header too.
async fn listener_ips_via_proxy(addr: SocketAddr) -> Vec<String> {
    let mut s = connect(addr).await;
    let req = format!(
        "PROXY TCP4 127.0.0.1 127.0.0.1 1 2\r\nGET /admin/listclients.json?mount=/m.mp3 HTTP/1.0\r\n{ADMIN}\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let (_, _, body) = split_reply(&read_until_close(&mut s, T).await);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    v["sources"][0]["clients"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|c| c["ip"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// A PROXY header from a peer that is not a trusted proxy is never believed.
#[tokio::test]
async fn proxy_header_from_an_untrusted_peer_is_refused() {
    let mut config = trusting(&["10.0.0.0/8"]);
    config.access.proxy_protocol_sockets = vec![0];
    let srv = start(config).await;
    let _src = live_mount(srv.addr).await;
    let mut s = connect(srv.addr).await;
    s.write_all(b"PROXY TCP4 203.0.113.9 127.0.0.1 40000 8000\r\nGET /m.mp3 HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let raw = read_until_close(&mut s, T).await;
    assert!(raw.is_empty(), "{}", String::from_utf8_lossy(&raw));
    // Plain HTTP from it still works, under its own address.
    let (head, _l) = listener_via(srv.addr, b"", "").await;
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert_eq!(listener_ips(srv.addr, "/m.mp3").await, ["127.0.0.1"]);
}

/// curl through a "proxy" that says `X-Forwarded-For`: believed from trusted proxies (the
/// right-most untrusted hop), ignored from anyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_from_trusted_proxies_only() {
    if !have_all("forwarded_for_from_trusted_proxies_only", &["curl"]) {
        return;
    }
    let srv = start(trusting(&["127.0.0.1"])).await;
    let _src = live_mount(srv.addr).await;
    let url = format!("http://{}/m.mp3", srv.addr);
    let mut curl = Command::new("curl");
    curl.args(["-s", "-o", "/dev/null", "--max-time", "3"])
        .args(["-H", "X-Forwarded-For: 6.6.6.6, 198.51.100.4"])
        .arg(&url)
        .stdout(Stdio::null());
    let mut child = tokio::process::Command::from(curl).spawn().unwrap();
    wait_listeners(&srv, "/m.mp3", 1, T).await;
    assert_eq!(listener_ips(srv.addr, "/m.mp3").await, ["198.51.100.4"]);
    let _ = child.kill().await;

    // The same header from an address that is not trusted changes nothing.
    let srv2 = start(trusting(&["10.0.0.0/8"])).await;
    let _src2 = live_mount(srv2.addr).await;
    let (_, _l) = listener_via(srv2.addr, b"", "X-Forwarded-For: 198.51.100.4\r\n").await;
    assert_eq!(listener_ips(srv2.addr, "/m.mp3").await, ["127.0.0.1"]);
}

/// icecast's deny file closes a listed address without a reply, and is re-read when it
/// changes; an allow file admits only what it lists.
#[tokio::test]
async fn deny_and_allow_files_are_followed_and_reread() {
    let dir = TempDir::new("door-lists");
    let deny = dir.join("deny");
    std::fs::write(&deny, "# the attackers\n127.0.0.*\n").unwrap();
    let mut config = test_config();
    config.access.deny_ip_file = Some(deny.clone());
    let srv = start(config).await;
    let raw = exchange(srv.addr, b"GET /status-json.xsl HTTP/1.0\r\n\r\n", T).await;
    assert!(raw.is_empty(), "{}", String::from_utf8_lossy(&raw));
    std::fs::write(&deny, "192.0.2.1\n").unwrap();
    // A later mtime, as an edit a second later would have.
    std::fs::File::options()
        .write(true)
        .open(&deny)
        .unwrap()
        .set_modified(std::time::SystemTime::now() + Duration::from_secs(2))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(4);
    loop {
        let raw = exchange(srv.addr, b"GET /status-json.xsl HTTP/1.0\r\n\r\n", T).await;
        if raw.starts_with(b"HTTP/1.0 200") {
            break;
        }
        assert!(Instant::now() < deadline, "the deny file was not re-read");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let allow = dir.join("allow");
    std::fs::write(&allow, "10.0.0.1\n").unwrap();
    let mut config = test_config();
    config.access.allow_ip_file = Some(allow);
    let srv = start(config).await;
    let raw = exchange(srv.addr, b"GET /status-json.xsl HTTP/1.0\r\n\r\n", T).await;
    assert!(raw.is_empty(), "{}", String::from_utf8_lossy(&raw));
}

/// `max-connections-per-ip`: the next connection gets a clear 403 until one leaves.
#[tokio::test]
async fn connections_per_address_are_limited() {
    let mut config = test_config();
    config.access.max_connections_per_ip = 3;
    let srv = start(config).await;
    let _src = live_mount(srv.addr).await;
    let (_, l1) = listener_via(srv.addr, b"", "").await;
    let (_, _l2) = listener_via(srv.addr, b"", "").await;
    let (status, _, body) =
        split_reply(&exchange(srv.addr, b"GET /m.mp3 HTTP/1.0\r\n\r\n", T).await);
    assert_eq!(status, 403);
    assert!(
        body.contains("Too many connections from your address"),
        "{body}"
    );
    drop(l1);
    wait_listeners(&srv, "/m.mp3", 1, T).await;
    let (head, _l3) = listener_via(srv.addr, b"", "").await;
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
}

/// A client that never finishes its request head counts against its address too: a
/// slowloris from one address holds no more than its share.
#[tokio::test]
async fn idle_connections_count_against_the_address() {
    let mut config = test_config();
    config.access.max_connections_per_ip = 2;
    let srv = start(config).await;
    let _idle1 = connect(srv.addr).await;
    let _idle2 = connect(srv.addr).await;
    wait_for("two connections counted", T, || {
        srv.app.server.door.connections_of([127, 0, 0, 1].into()) == 2
    })
    .await;
    let (status, _, body) =
        split_reply(&exchange(srv.addr, b"GET /status-json.xsl HTTP/1.0\r\n\r\n", T).await);
    assert_eq!(status, 403, "{body}");
}

/// `max-listener-duration`: curl, listening, is disconnected after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_are_ended_after_max_listener_duration() {
    if !have_all("listeners_are_ended_after_max_listener_duration", &["curl"]) {
        return;
    }
    let mut config = test_config();
    config.mounts.push(MountConfig {
        name: "/m.mp3".into(),
        max_listener_duration: Some(Duration::from_secs(1)),
        ..Default::default()
    });
    let srv = start(config).await;
    let mut src = live_mount(srv.addr).await;
    let feeding = tokio::spawn(async move {
        loop {
            if src.write_all(&mp3_frames(4)).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let started = Instant::now();
    let out = run(
        {
            let mut c = Command::new("curl");
            c.args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{size_download}",
                "--max-time",
                "8",
            ])
            .arg(format!("http://{}/m.mp3", srv.addr));
            c
        },
        Duration::from_secs(10),
    )
    .await;
    let took = started.elapsed();
    feeding.abort();
    // curl exits 0 when the server ends the stream, 28 when its own --max-time hits.
    assert!(out.success(), "{}", out.describe());
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "ended after {took:?}"
    );
    let got: u64 = out.stdout_text().trim().parse().unwrap_or(0);
    assert!(got > 10_000, "{got} bytes");
}

/// `/admin/ban` ends the banned address's current listeners and refuses its new
/// connections; `listbans` shows it; `unban` lifts it. Two clients behind a trusted proxy
/// stand for two addresses.
#[tokio::test]
async fn admin_bans_end_current_connections() {
    let srv = start(trusting(&["127.0.0.1"])).await;
    let _src = live_mount(srv.addr).await;
    let xff = |ip: &str| format!("X-Forwarded-For: {ip}\r\n");
    let (_, mut bad) = listener_via(srv.addr, b"", &xff("198.51.100.66")).await;
    let (_, mut good) = listener_via(srv.addr, b"", &xff("198.51.100.7")).await;
    wait_listeners(&srv, "/m.mp3", 2, T).await;

    let admin = |path: &str| format!("GET {path} HTTP/1.0\r\n{ADMIN}\r\n");
    // Not for anyone but the admin.
    let (status, ..) = split_reply(
        &exchange(
            srv.addr,
            b"GET /admin/ban?ip=198.51.100.66 HTTP/1.0\r\n\r\n",
            T,
        )
        .await,
    );
    assert_eq!(status, 401);
    let (status, _, body) = split_reply(
        &exchange(
            srv.addr,
            admin("/admin/ban?ip=198.51.100.66&duration=600").as_bytes(),
            T,
        )
        .await,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("1 connections ended"), "{body}");
    // The banned listener's stream ends; the other keeps streaming.
    read_until_close(&mut bad, T).await;
    wait_listeners(&srv, "/m.mp3", 1, T).await;
    assert!(!read_at_least(&mut good, 1, T).await.is_empty());
    assert_eq!(listener_ips(srv.addr, "/m.mp3").await, ["198.51.100.7"]);
    let (head, _) = listener_via(srv.addr, b"", &xff("198.51.100.66")).await;
    assert!(head.is_empty(), "{head}");

    let (_, _, list) =
        split_reply(&exchange(srv.addr, admin("/admin/listbans.json").as_bytes(), T).await);
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(v["bans"][0]["ip"], "198.51.100.66/32", "{list}");
    assert!(
        v["bans"][0]["seconds_left"]
            .as_u64()
            .is_some_and(|s| s > 590),
        "{list}"
    );

    let (status, _, body) = split_reply(
        &exchange(
            srv.addr,
            admin("/admin/unban?ip=198.51.100.66").as_bytes(),
            T,
        )
        .await,
    );
    assert_eq!(status, 200, "{body}");
    let (head, _l) = listener_via(srv.addr, b"", &xff("198.51.100.66")).await;
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
}

/// At fd exhaustion accept fails at once, over and over: the log gets the first failure,
/// then nothing until accept works again, and then one line with the count suppressed
/// (it was one line every 50 ms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_failures_at_fd_exhaustion_are_bounded_in_the_log() {
    if !have_all(
        "accept_failures_at_fd_exhaustion_are_bounded_in_the_log",
        &["prlimit"],
    ) {
        return;
    }
    let dir = TempDir::new("door-fds");
    let port = free_port();
    let config = dir.join("floecast.toml");
    std::fs::write(
        &config,
        format!("[[listen]]\nport = {port}\nbind-address = \"127.0.0.1\"\n"),
    )
    .unwrap();
    let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
    let mut child = Command::new("prlimit")
        .arg("--nofile=64:64")
        .arg(env!("CARGO_BIN_EXE_floecast"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + T;
    while TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // More idle connections than the server has descriptors; held for 3 s.
    let mut held = Vec::new();
    for _ in 0..100 {
        if let Ok(s) = TcpStream::connect(addr).await {
            held.push(s);
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(held);
    // Accept works again once the idle ones time out or close: a request gets through.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let raw = exchange(addr, b"GET /status-json.xsl HTTP/1.0\r\n\r\n", T).await;
        if raw.starts_with(b"HTTP/1.0 200") {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap();
    let failures = log.lines().filter(|l| l.contains("accept failed")).count();
    assert!(
        (1..=2).contains(&failures),
        "{failures} accept-failure lines:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("accept works again") && l.contains("similar messages suppressed")),
        "{log}"
    );
}

/// A URL-auth backend that accepts everyone and hands over each request's body.
async fn accepting_backend() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let n = s.read(&mut chunk).await.unwrap_or(0);
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    if body.len() >= len || n == 0 {
                        break body.to_string();
                    }
                }
                if n == 0 {
                    break String::new();
                }
            };
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nicecast-auth-user: 1\r\nContent-Length: 0\r\n\r\n")
                .await;
            let _ = tx.send(body);
        }
    });
    (addr, rx)
}

/// Listener authentication gets the real address: a URL backend's `ip=` is the client that
/// the trusted proxy named, not the proxy.
#[tokio::test]
async fn url_auth_is_told_the_real_address() {
    let (backend, mut requests) = accepting_backend().await;
    let mut config = trusting(&["127.0.0.1"]);
    config.mounts.push(MountConfig {
        name: "/m.mp3".into(),
        authentication: Some(ListenerAuth {
            backend: AuthBackend::Url(UrlAuth::new(format!("http://{backend}/add"))),
            allow_duplicate_users: true,
        }),
        ..Default::default()
    });
    let srv = start(config).await;
    let _src = live_mount(srv.addr).await;
    let (head, _l) = listener_via(srv.addr, b"", "X-Forwarded-For: 198.51.100.4\r\n").await;
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    let body = tokio::time::timeout(T, requests.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(body.contains("&ip=198.51.100.4&"), "{body}");
}
