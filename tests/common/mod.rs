//! Shared helpers for the integration tests: start a real server on 127.0.0.1:0, speak raw
//! TCP to it like the real clients do, and synthesize media that needs no files.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use floecast::app::App;
use floecast::config::{Config, ListenSocket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Base64 of `source:hackme`.
pub const SOURCE_AUTH: &str = "c291cmNlOmhhY2ttZQ==";
/// Header lines for `admin:hackme` and `source:hackme`.
pub const ADMIN: &str = "Authorization: Basic YWRtaW46aGFja21l\r\n";
pub const SOURCE: &str = "Authorization: Basic c291cmNlOmhhY2ttZQ==\r\n";

/// A loopback TCP port nobody listens on right now (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A loopback port free for TCP and UDP (splitters use both with one number).
pub fn free_tcp_udp_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = tcp.local_addr().expect("local addr").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A UDP socket and a TCP socket on the same fresh loopback port, as a P2PSP member holds
/// them (the splitter takes the TCP join's source port as the member's UDP endpoint). A fresh
/// UDP port may be in use on the TCP side (CI flaked with "Address already in use"), so a few
/// are tried, as `bind_pair` in the peer runtime does. Call inside a Tokio runtime.
pub fn udp_tcp_pair() -> (tokio::net::UdpSocket, tokio::net::TcpSocket) {
    for _ in 0..16 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        let local = udp.local_addr().expect("local");
        let tcp = tokio::net::TcpSocket::new_v4().expect("tcp");
        tcp.set_reuseaddr(true).expect("reuseaddr");
        if tcp.bind(local).is_ok() {
            udp.set_nonblocking(true).expect("nonblocking");
            let udp = tokio::net::UdpSocket::from_std(udp).expect("tokio udp");
            return (udp, tcp);
        }
    }
    panic!("no loopback port free for both UDP and TCP in 16 tries");
}

/// A config listening on an ephemeral loopback port, with quick timeouts for tests.
pub fn test_config() -> Config {
    let mut c = Config {
        listen: vec![ListenSocket {
            port: 0,
            bind_address: Some("127.0.0.1".into()),
            shoutcast_mount: None,
            tls: Default::default(),
        }],
        ..Config::default()
    };
    c.limits.clients = 1000;
    c.limits.sources = 16;
    c.tuning.flush_interval = Duration::from_millis(20);
    c
}

pub struct TestServer {
    pub app: App,
    pub addr: SocketAddr,
}

pub async fn start(config: Config) -> TestServer {
    let app = App::start(config, None).expect("server starts");
    let addr = app.http_addrs[0];
    TestServer { app, addr }
}

/// Start a server that also binds the ICY port (port+1). With an ephemeral HTTP port,
/// port+1 may momentarily belong to some other test's outgoing connection, so retry on a
/// fresh port rather than fail.
pub async fn start_with_icy_port(config: Config) -> TestServer {
    for _ in 0..20 {
        if let Ok(app) = App::start(config.clone(), None) {
            let addr = app.http_addrs[0];
            return TestServer { app, addr };
        }
    }
    panic!("could not bind an HTTP port with a free port+1");
}

pub async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connect")
}

/// Send `request` and read until the server closes (or `timeout`).
pub async fn exchange(addr: SocketAddr, request: &[u8], timeout: Duration) -> Vec<u8> {
    let mut s = connect(addr).await;
    s.write_all(request).await.expect("write");
    read_until_close(&mut s, timeout).await
}

/// Split a whole response into (status, head, body); status 0 when there is none.
pub fn split_reply(raw: &[u8]) -> (u16, String, String) {
    let raw = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// A listener on `mount` (`User-Agent: test/1.0` plus `headers`) that has read its
/// response head; returns (head, stream).
pub async fn listen(
    addr: SocketAddr,
    mount: &str,
    headers: &str,
    timeout: Duration,
) -> (String, TcpStream) {
    let mut s = connect(addr).await;
    s.write_all(
        format!("GET {mount} HTTP/1.0\r\nUser-Agent: test/1.0\r\n{headers}\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let (head, _) = read_head(&mut s, timeout).await;
    (head, s)
}

pub async fn read_until_close(s: &mut TcpStream, timeout: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(timeout, s.read_to_end(&mut out)).await;
    out
}

/// Read at least `n` bytes (or until close/timeout).
pub async fn read_at_least(s: &mut TcpStream, n: usize, timeout: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = vec![0u8; 64 * 1024];
    while out.len() < n {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
            Ok(Ok(k)) => out.extend_from_slice(&buf[..k]),
        }
    }
    out
}

/// Read a response head (through the blank line); returns (head text, bytes after it).
pub async fn read_head(s: &mut TcpStream, timeout: Duration) -> (String, Vec<u8>) {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        if let Some(i) = out.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = out.split_off(i + 4);
            return (String::from_utf8_lossy(&out).into_owned(), rest);
        }
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => {
                return (String::from_utf8_lossy(&out).into_owned(), Vec::new());
            }
            Ok(Ok(k)) => out.extend_from_slice(&buf[..k]),
        }
    }
}

/// One MPEG-1 Layer III frame, 128 kbit/s, 44.1 kHz, stereo: 417 bytes (418 with padding).
/// The payload carries `tag` so tests can tell frames apart.
pub fn mp3_frame(padding: bool, tag: u8) -> Vec<u8> {
    let len = if padding { 418 } else { 417 };
    let mut f = vec![tag; len];
    f[0] = 0xFF;
    f[1] = 0xFB;
    f[2] = 0x90 | if padding { 0x02 } else { 0 };
    f[3] = 0x00;
    f
}

/// `n` frames, tagged 0, 1, 2, … (mod 256).
pub fn mp3_frames(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| mp3_frame(i % 3 == 2, (i % 256) as u8))
        .collect()
}

/// A source that connected with SOURCE and got `HTTP/1.0 200 OK`.
pub async fn source(addr: SocketAddr, mount: &str, content_type: &str, extra: &str) -> TcpStream {
    let mut s = connect(addr).await;
    let req = format!(
        "SOURCE {mount} HTTP/1.0\r\nAuthorization: Basic {SOURCE_AUTH}\r\nContent-Type: {content_type}\r\n{extra}\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut reply = [0u8; 19];
    s.read_exact(&mut reply).await.expect("source reply");
    assert_eq!(&reply, b"HTTP/1.0 200 OK\r\n\r\n");
    s
}

/// Wait until `cond` holds, polling; panics with `what` after `timeout`.
pub async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond() {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A reference (Gen C) peer's first steps against our splitter at `team`: UDP and TCP on one
/// local port, the role byte, the configuration block, and nothing after it.
pub async fn reference_join(
    team: SocketAddr,
    role: u8,
) -> (
    tokio::net::UdpSocket,
    TcpStream,
    floecast::p2psp::compat::CompatConfig,
) {
    let (udp, tcp) = udp_tcp_pair();
    let mut tcp = tcp.connect(team).await.unwrap();
    tcp.write_all(&[role]).await.unwrap();
    let mut buf = Vec::new();
    let cfg = loop {
        let mut b = [0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut b))
            .await
            .expect("the configuration")
            .unwrap();
        assert!(n > 0, "splitter closed before its configuration");
        buf.extend_from_slice(&b[..n]);
        if let Ok((c, used)) = floecast::p2psp::compat::decode_config(&buf) {
            assert_eq!(used, buf.len(), "nothing after the configuration");
            break c;
        }
    };
    (udp, tcp, cfg)
}

/// Wait until `mount` on `srv` is live with more than `bytes` queued; panics with `what` after
/// `timeout`.
pub async fn wait_queued(
    srv: &TestServer,
    mount: &str,
    bytes: usize,
    what: &str,
    timeout: Duration,
) {
    wait_for(what, timeout, || {
        srv.app
            .server
            .registry
            .get(mount)
            .is_some_and(|m| m.queued_bytes() > bytes)
    })
    .await;
}

/// Set the title of `mount` with `/admin/metadata` (`song` URL-encoded), authorized by the
/// header line `auth` (e.g. [`ADMIN`]), and assert that the server took it.
pub async fn set_title(addr: SocketAddr, mount: &str, song: &str, auth: &str, timeout: Duration) {
    let req = format!(
        "GET /admin/metadata?mount={mount}&mode=updinfo&song={song} HTTP/1.0\r\n{auth}\r\n"
    );
    let reply = exchange(addr, req.as_bytes(), timeout).await;
    let text = String::from_utf8_lossy(&reply);
    assert!(text.contains("Metadata update successful"), "{text}");
}

/// Wait until `mount` on `addr` answers 200 to a listener (retrying while it 404s).
pub async fn wait_serving(
    addr: SocketAddr,
    mount: &str,
    timeout: Duration,
    what: impl Fn() -> String,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let mut s = connect(addr).await;
        let _ = s
            .write_all(format!("GET {mount} HTTP/1.0\r\n\r\n").as_bytes())
            .await;
        let (head, _) = read_head(&mut s, Duration::from_secs(5)).await;
        if head.starts_with("HTTP/1.0 200") {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("{mount} on {addr} not served: {head}\n{}", what());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Wait until `mount` on `srv` has exactly `n` listeners.
pub async fn wait_listeners(srv: &TestServer, mount: &str, n: usize, timeout: Duration) {
    wait_for(&format!("{n} listeners on {mount}"), timeout, || {
        srv.app
            .server
            .registry
            .get(mount)
            .is_some_and(|m| m.listener_count() == n)
    })
    .await;
}

/// The environment variable that turns every "skip: program missing" into a failure. CI
/// (`.ci/run`) sets it, so a client that failed to install cannot pass as a skipped test.
pub const REQUIRE_CLIENTS_VAR: &str = "FLOECAST_REQUIRE_CLIENTS";

/// Whether missing programs must fail the test instead of skipping it (see
/// [`REQUIRE_CLIENTS_VAR`]).
pub fn clients_required() -> bool {
    std::env::var(REQUIRE_CLIENTS_VAR).is_ok_and(|v| v == "1")
}

/// Report a test (or part of one) that cannot run here: `SKIP: <reason>` on stderr, or a
/// panic when [`clients_required`] (in CI nothing may skip).
#[track_caller]
pub fn skip(reason: &str) {
    if clients_required() {
        panic!("{reason}, and {REQUIRE_CLIENTS_VAR}=1 forbids skipping: install it (see .ci/run)");
    }
    eprintln!("SKIP: {reason}");
}

/// Is an external program on PATH? Tests that need one print a skip reason otherwise. When
/// [`clients_required`], a missing program panics here instead.
#[track_caller]
pub fn have(program: &str) -> bool {
    let found = on_path(program);
    if !found && clients_required() {
        skip(&format!("{program} not installed"));
    }
    found
}

/// Is an external program on PATH (never panics)?
pub fn on_path(program: &str) -> bool {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Compare byte strings, reporting lengths and the first difference instead of dumping both.
#[track_caller]
pub fn assert_bytes(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got
            .iter()
            .zip(want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "{what}: got {} bytes, want {}; first difference at byte {first}",
            got.len(),
            want.len()
        );
    }
}

/// The part of a synthetic MP3 stream a listener can have received: the MPEG framer holds
/// the newest frame until the next frame header confirms it.
pub fn confirmed(audio: &[u8]) -> &[u8] {
    let last = audio
        .windows(4)
        .rposition(|w| w[0] == 0xFF && w[1] == 0xFB && (w[2] == 0x90 || w[2] == 0x92) && w[3] == 0)
        .unwrap_or(audio.len());
    &audio[..last]
}

/// The UDP/TCP endpoint of the P2PSP splitter serving `mount`, once it is bound.
pub async fn splitter_addr(srv: &TestServer, mount: &str) -> SocketAddr {
    let mut addr = None;
    wait_for("splitter bound", Duration::from_secs(5), || {
        addr = match srv.app.server.tasks.teams.get(mount) {
            Some(floecast::team::TeamState::Splitter { local: Some(a), .. }) => Some(a),
            _ => None,
        };
        addr.is_some()
    })
    .await;
    addr.expect("splitter address")
}

/// A Gen C team scripted with the 2018 reference's bytes, around one floecast peer mount: the
/// "Icecast" the splitter names as its source (serving `head` then the first `served` bytes of
/// the stream), one other listed member, and the splitter's TCP and UDP sockets on one port.
pub struct ScriptedGenCTeam {
    pub source_at: std::net::SocketAddrV4,
    pub other: tokio::net::UdpSocket,
    pub other_at: std::net::SocketAddrV4,
    pub splitter_tcp: tokio::net::TcpListener,
    pub splitter_udp: tokio::net::UdpSocket,
    /// The splitter's address, for the peer mount's `splitter`.
    pub team: SocketAddr,
}

impl ScriptedGenCTeam {
    pub async fn new(stream: &[u8], head: &'static [u8], served: usize) -> ScriptedGenCTeam {
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let SocketAddr::V4(source_at) = http.local_addr().unwrap() else {
            unreachable!()
        };
        let served = bytes::Bytes::copy_from_slice(&stream[..served]);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = http.accept().await {
                let served = served.clone();
                tokio::spawn(async move {
                    let mut req = [0u8; 1024];
                    let _ = s.read(&mut req).await;
                    let _ = s.write_all(head).await;
                    let _ = s.write_all(&served).await;
                });
            }
        });
        let other = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let SocketAddr::V4(other_at) = other.local_addr().unwrap() else {
            unreachable!()
        };
        let splitter_tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let team = splitter_tcp.local_addr().unwrap();
        let splitter_udp = tokio::net::UdpSocket::bind(team).await.unwrap();
        ScriptedGenCTeam {
            source_at,
            other,
            other_at,
            splitter_tcp,
            splitter_udp,
            team,
        }
    }

    /// A floecast Gen C peer mount `name` of this team.
    pub fn peer_mount(&self, name: &str) -> floecast::config::MountConfig {
        peer_mount_of(name, &self.team.to_string(), true)
    }

    /// Accept the peer mount's join and read its role byte: the join connection, the peer's
    /// address (its UDP endpoint too) and the role.
    pub async fn accept_join(&self) -> (TcpStream, SocketAddr, u8) {
        let (mut tcp, peer_at) =
            tokio::time::timeout(Duration::from_secs(10), self.splitter_tcp.accept())
                .await
                .expect("our peer connects")
                .unwrap();
        let mut role = [0u8; 1];
        tcp.read_exact(&mut role).await.unwrap();
        (tcp, peer_at, role[0])
    }

    /// Send the reference's configuration for `channel` (1024-byte header, `chunk_size`-byte
    /// chunks, 256 buffer, one monitor, the other member listed) and read the peer's ready
    /// byte, which comes after its header fetch.
    pub async fn configure(&self, tcp: &mut TcpStream, channel: &str, chunk_size: u16) -> u8 {
        use floecast::p2psp::compat::{self, CompatConfig};
        let cfg = CompatConfig {
            source: self.source_at,
            channel: channel.into(),
            header_size: 1024,
            chunk_size,
            buffer_size: 256,
            number_of_monitors: 1,
            peers: vec![self.other_at],
        };
        tcp.write_all(&compat::encode_config(&cfg).unwrap())
            .await
            .unwrap();
        let mut ready = [0u8; 1];
        tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut ready))
            .await
            .expect("R after the header fetch")
            .unwrap();
        ready[0]
    }
}

/// A peer mount `name` of the team at `splitter`, Gen C when `compat`, with default auth and
/// no splitter of its own.
pub fn peer_mount_of(name: &str, splitter: &str, compat: bool) -> floecast::config::MountConfig {
    floecast::config::MountConfig {
        name: name.into(),
        p2psp: Some(floecast::config::P2pspConfig::Peer {
            splitter: splitter.into(),
            serve: None,
            compat,
            auth: Default::default(),
        }),
        ..Default::default()
    }
}
