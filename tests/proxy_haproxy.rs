//! floecast behind a real HAProxy (issue 11 §2), started by the test in the foreground: TCP
//! frontends that send PROXY v2 and v1, an HTTP frontend with `option forwardfor`, and an
//! untrusted one. Clients come from distinct loopback addresses, and floecast must see them,
//! not the proxy, in the access log, listclients, the deny file, the per-address limit and
//! admin bans. A listener through the proxy gets the source's bytes, and ffmpeg decodes them.

mod common;
mod interop_support;

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::*;
use floecast::config::ListenSocket;
use interop_support::{Proc, TempDir, assert_decodes, find, have_all, make_tone, run};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

const T: Duration = Duration::from_secs(5);

/// The address haproxy connects to floecast from: the one trusted proxy.
const PROXY: &str = "127.0.0.2";
/// The address of a second proxy, which floecast does not trust.
const STRANGER: &str = "127.0.0.3";

/// floecast (socket 0 plain, socket 1 expecting PROXY headers; `127.0.0.2` trusted) behind
/// one haproxy with four frontends (the v2 backend health-checked over PROXY v2 `LOCAL`).
struct Front {
    srv: TestServer,
    dir: TempDir,
    _haproxy: Proc,
    /// TCP mode, `send-proxy-v2` to socket 1, with two TLVs (a CRC32C and a unique id).
    v2: SocketAddr,
    /// TCP mode, `send-proxy` (v1) to socket 1.
    v1: SocketAddr,
    /// HTTP mode, `option forwardfor`, to socket 0.
    http: SocketAddr,
    /// TCP mode, `send-proxy-v2` to socket 1, but from the untrusted `127.0.0.3`.
    untrusted: SocketAddr,
    /// The v2 frontend on `[::1]` too (clients' IPv6 addresses in PROXY v2), where the host
    /// has IPv6 loopback.
    v6: Option<SocketAddr>,
}

impl Front {
    async fn start(
        tag: &str,
        adjust: impl FnOnce(&mut floecast::config::Config, &TempDir),
    ) -> Front {
        let dir = TempDir::new(tag);
        let mut config = test_config();
        config.listen.push(ListenSocket {
            port: 0,
            bind_address: Some("127.0.0.1".into()),
            shoutcast_mount: None,
            tls: Default::default(),
        });
        config.access.proxy_protocol_sockets = vec![1];
        config.access.trusted_proxies = vec![PROXY.parse().unwrap()];
        config.logging.access_log = Some(dir.join("access.log"));
        adjust(&mut config, &dir);
        let srv = start(config).await;
        let (plain, proxied) = (srv.app.http_addrs[0], srv.app.http_addrs[1]);
        // A port picked here may be taken before haproxy binds it: then try other ones.
        let mut attempt = 0;
        let (haproxy, ports, v6) = loop {
            attempt += 1;
            let ports: Vec<SocketAddr> = (0..4)
                .map(|_| SocketAddr::from(([127, 0, 0, 1], free_port())))
                .collect();
            let v6 = std::net::TcpListener::bind("[::1]:0")
                .and_then(|l| l.local_addr())
                .ok();
            let bind_v6 = v6.map(|a| format!("\n  bind {a}")).unwrap_or_default();
            let [v2, v1, http, untrusted] = [ports[0], ports[1], ports[2], ports[3]];
            let cfg = [
                "global\n  maxconn 200\n  nbthread 1".to_string(),
                "defaults\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s".into(),
                format!(
                    "frontend v2\n  mode tcp\n  bind {v2}{bind_v6}\n  \
                     unique-id-format %{{+X}}o%ci\n  default_backend v2"
                ),
                format!(
                    "backend v2\n  mode tcp\n  option httpchk GET /server_version.xsl\n  \
                     server f {proxied} source {PROXY} send-proxy-v2 \
                     proxy-v2-options crc32c,unique-id check inter 300"
                ),
                format!("frontend v1\n  mode tcp\n  bind {v1}\n  default_backend v1"),
                format!("backend v1\n  mode tcp\n  server f {proxied} source {PROXY} send-proxy"),
                format!(
                    "frontend http\n  mode http\n  option forwardfor\n  bind {http}\n  \
                     default_backend http"
                ),
                format!("backend http\n  mode http\n  server f {plain} source {PROXY}"),
                format!("frontend untrusted\n  mode tcp\n  bind {untrusted}\n  default_backend u"),
                format!(
                    "backend u\n  mode tcp\n  server f {proxied} source {STRANGER} send-proxy-v2"
                ),
            ]
            .join("\n")
                + "\n";
            let cfg_path = dir.join("haproxy.cfg");
            std::fs::write(&cfg_path, cfg).unwrap();
            let mut cmd = Command::new("haproxy");
            cmd.arg("-f").arg(&cfg_path).arg("-db");
            let mut haproxy = Proc::spawn("haproxy", cmd, dir.join("haproxy.log"));
            match wait_accepting(&mut haproxy, ports.iter().chain(&v6)).await {
                Ok(()) => break (haproxy, ports, v6),
                Err(log) if attempt < 3 => {
                    eprintln!("haproxy did not start (attempt {attempt}); other ports: {log}")
                }
                Err(log) => panic!("haproxy did not start: {log}"),
            }
        };
        Front {
            srv,
            dir,
            _haproxy: haproxy,
            v2: ports[0],
            v1: ports[1],
            http: ports[2],
            untrusted: ports[3],
            v6,
        }
    }

    /// A GET on the plain socket, straight from the test (127.0.0.1), with admin credentials.
    async fn admin(&self, path_and_query: &str) -> (u16, String) {
        let req = format!("GET {path_and_query} HTTP/1.0\r\n{ADMIN}\r\n");
        let (status, _, body) = split_reply(&exchange(self.srv.addr, req.as_bytes(), T).await);
        (status, body)
    }

    /// The `ip` column of `/admin/listclients` for `mount`, sorted.
    async fn listener_ips(&self, mount: &str) -> Vec<String> {
        let (status, body) = self
            .admin(&format!("/admin/listclients.json?mount={mount}"))
            .await;
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let mut ips: Vec<String> = v["sources"][0]["clients"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter_map(|c| c["ip"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        ips.sort();
        ips
    }

    fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }
}

/// Wait until haproxy accepts on every one of `ports`; its output if it exits first.
async fn wait_accepting(
    haproxy: &mut Proc,
    ports: impl Iterator<Item = &SocketAddr>,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + T;
    for port in ports {
        while TcpStream::connect(port).await.is_err() {
            if haproxy.exited().is_some() {
                return Err(haproxy.log_text());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "haproxy does not accept on {port}: {}",
                haproxy.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// A TCP connection to `to` from the loopback address `from`.
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse().unwrap(), 0))
        .unwrap();
    socket.connect(to).await.unwrap()
}

/// A listener on `mount` from `from` through `front` that has read its response head.
async fn listen_from(from: &str, front: SocketAddr, mount: &str) -> (String, TcpStream) {
    listen_with(from, front, mount, "").await
}

/// [`listen_from`] with extra header lines.
async fn listen_with(
    from: &str,
    front: SocketAddr,
    mount: &str,
    headers: &str,
) -> (String, TcpStream) {
    let mut s = connect_from(from, front).await;
    let request = format!("GET {mount} HTTP/1.0\r\nUser-Agent: test\r\n{headers}\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let (head, _) = read_head(&mut s, T).await;
    (head, s)
}

/// `curl` from `from` for `url`: its exit code and the HTTP status it printed.
async fn curl_from(from: &str, url: &str) -> (Option<i32>, String) {
    let mut c = Command::new("curl");
    c.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "3",
    ])
    .args(["--interface", from])
    .arg(url);
    let out = run(c, Duration::from_secs(5)).await;
    (out.status.and_then(|s| s.code()), out.stdout_text())
}

/// A live `/m.mp3` fed from the test straight to the plain socket, with a steady trickle of
/// synthetic frames until the handle is dropped.
async fn trickle_source(addr: SocketAddr) -> tokio::task::JoinHandle<()> {
    let mut src = source(addr, "/m.mp3", "audio/mpeg", "").await;
    tokio::spawn(async move {
        loop {
            if src.write_all(&mp3_frames(4)).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// The real client's address, through PROXY v2, PROXY v1 and `X-Forwarded-For`: curl PUT
/// sources from 127.0.0.6 (v1, HTTP mode), curl listeners from 127.0.0.5 (v2), .7 (v1) and .8 (HTTP
/// mode) in listclients and the access log, and `::1` through v2 over IPv6, never the
/// proxy's; a raw listener through v2 gets the uploaded file's bytes verbatim, and ffmpeg
/// decodes the stream through it. The untrusted haproxy's PROXY header is not believed:
/// floecast closes without a reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_names_the_real_client() {
    if !have_all(
        "haproxy_names_the_real_client",
        &["haproxy", "curl", "ffmpeg"],
    ) {
        return;
    }
    let front = Front::start("haproxy-names", |_, _| {}).await;
    let media = front.dir.join("tone.mp3");
    make_tone(&media, 30, &["-c:a", "libmp3lame", "-b:a", "128k"]).await;
    let original = std::fs::read(&media).unwrap();

    // The source: a chunked curl PUT from 127.0.0.6 through the v1 frontend, fed at about
    // twice real time (16 KiB every 500 ms), its stdin held open until the test ends.
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-T", "-", "--interface", "127.0.0.6"])
        .args(["-H", "Content-Type: audio/mpeg"])
        .arg(format!("http://source:hackme@{}/m.mp3", front.v1));
    let mut curl = Proc::spawn_piped("curl source", cmd, front.dir.join("curl.log"));
    let mut stdin = curl.take_stdin();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let data = original.clone();
    let writer = std::thread::spawn(move || {
        for piece in data.chunks(16 * 1024) {
            if stdin.write_all(piece).and_then(|()| stdin.flush()).is_err() {
                return;
            }
            if done_rx.recv_timeout(Duration::from_millis(500)).is_ok() {
                return;
            }
        }
        let _ = done_rx.recv_timeout(Duration::from_secs(30));
    });
    interop_support::wait_live(&front.srv.app.server, "/m.mp3", &mut curl, T).await;
    let (_, _, api) =
        split_reply(&exchange(front.srv.addr, b"GET /api/status HTTP/1.0\r\n\r\n", T).await);
    assert!(
        api.contains("\"ip\":\"127.0.0.6\""),
        "source address: {api}"
    );

    // A raw listener through v2 gets the uploaded bytes: a 4 KiB window of its body is in
    // the file, and so is all of the body from there on.
    let (head, mut raw) = listen_from("127.0.0.9", front.v2, "/m.mp3").await;
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    let body = read_at_least(&mut raw, 48 * 1024, T).await;
    assert!(body.len() >= 48 * 1024, "only {} bytes", body.len());
    let at = find(&original, &body[..4096]).expect("the listener's bytes are not the file's");
    let end = (at + body.len()).min(original.len());
    assert!(end - at > 40 * 1024, "the listener is past the file's end");
    assert_bytes(
        &body[..end - at],
        &original[at..end],
        "listener through haproxy v2",
    );
    drop(raw);

    // Listeners from three addresses, one per frontend kind; listclients shows each.
    let mut listeners = Vec::new();
    for (from, via) in [
        ("127.0.0.5", front.v2),
        ("127.0.0.7", front.v1),
        ("127.0.0.8", front.http),
    ] {
        let mut c = Command::new("curl");
        c.args([
            "-s",
            "-o",
            "/dev/null",
            "--max-time",
            "10",
            "--interface",
            from,
        ])
        .arg(format!("http://{via}/m.mp3"));
        listeners.push(Proc::spawn(
            "curl listener",
            c,
            front.dir.join(&format!("{from}.log")),
        ));
    }
    wait_listeners(&front.srv, "/m.mp3", 3, T).await;
    assert_eq!(
        front.listener_ips("/m.mp3").await,
        ["127.0.0.5", "127.0.0.7", "127.0.0.8"]
    );
    drop(listeners);

    // ffmpeg, through v2, decodes what it gets.
    assert_decodes(&format!("http://{}/m.mp3", front.v2), 2).await;

    // Finished requests are logged under the client's address, whichever frontend.
    for (from, via) in [
        ("127.0.0.5", front.v2),
        ("127.0.0.7", front.v1),
        ("127.0.0.8", front.http),
    ] {
        let (code, status) = curl_from(from, &format!("http://{via}/status-json.xsl")).await;
        assert_eq!((code, status.as_str()), (Some(0), "200"), "via {via}");
    }
    // An IPv6 client through PROXY v2 (haproxy's 36-byte TCP6 addresses).
    if let Some(v6) = front.v6 {
        let (code, status) = curl_from("::1", &format!("http://{v6}/status-json.xsl")).await;
        assert_eq!((code, status.as_str()), (Some(0), "200"), "via {v6}");
    } else {
        eprintln!("no IPv6 loopback: the IPv6 client is left out");
    }
    // The untrusted proxy's header is not believed: the connection is closed unanswered
    // (curl: 52, empty reply), and nothing is logged under the address it named.
    let (code, _) = curl_from(
        "127.0.0.5",
        &format!("http://{}/untrusted", front.untrusted),
    )
    .await;
    assert_eq!(code, Some(52));

    // A second source through HTTP mode: a chunked curl PUT from 127.0.0.6, which ends
    // (and curl with it) at its last chunk.
    let short = front.dir.join("short.mp3");
    std::fs::write(&short, &original[..64 * 1024]).unwrap();
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "5", "--interface", "127.0.0.6"])
        .args([
            "-H",
            "Content-Type: audio/mpeg",
            "-H",
            "Transfer-Encoding: chunked",
        ])
        .arg("-T")
        .arg(&short)
        .arg(format!("http://source:hackme@{}/put.mp3", front.http));
    let out = run(c, T).await;
    assert!(out.success(), "{}", out.describe());

    let _ = done_tx.send(());
    writer.join().unwrap();
    let exit = curl.wait_exit(T).await;
    assert!(
        exit.is_some_and(|s| s.success()),
        "curl source: {exit:?} {}",
        curl.log_text()
    );
    wait_for("the source's access-log line", T, || {
        front.access_log().contains("PUT /m.mp3")
    })
    .await;
    let log = front.access_log();
    for (from, what) in [
        ("127.0.0.5", "GET /status-json.xsl"),
        ("127.0.0.7", "GET /status-json.xsl"),
        ("127.0.0.8", "GET /status-json.xsl"),
        ("127.0.0.6", "PUT /m.mp3"),
        ("127.0.0.6", "PUT /put.mp3"),
        ("127.0.0.9", "GET /m.mp3"),
        ("::1", "GET /status-json.xsl"),
    ] {
        if from == "::1" && front.v6.is_none() {
            continue;
        }
        assert!(
            log.lines()
                .any(|l| l.starts_with(&format!("{from} ")) && l.contains(what)),
            "no {what} from {from}:\n{log}"
        );
    }
    // haproxy's health checks (v2 `LOCAL`) are the only requests logged under its address.
    let checks: Vec<&str> = log.lines().filter(|l| l.contains(PROXY)).collect();
    assert!(!checks.is_empty(), "no health check logged:\n{log}");
    assert!(
        checks
            .iter()
            .all(|l| l.starts_with(&format!("{PROXY} ")) && l.contains("GET /server_version.xsl")),
        "the proxy's own address is logged:\n{log}"
    );
    assert!(!log.contains("/untrusted"), "{log}");
}

/// The deny file, the per-address limit and an admin ban act on the client's address behind
/// haproxy, not on the proxy's: 127.0.0.5 is denied (closed through PROXY v2; a 502 from
/// haproxy in HTTP mode) while 127.0.0.7 plays; .7 may hold two connections, a third gets
/// the 403, while .9 still gets in; banning .7 ends its listeners and nobody else's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn door_rules_apply_to_the_client_behind_haproxy() {
    if !have_all(
        "door_rules_apply_to_the_client_behind_haproxy",
        &["haproxy", "curl"],
    ) {
        return;
    }
    let front = Front::start("haproxy-door", |config, dir| {
        let deny = dir.join("deny-ip");
        std::fs::write(&deny, "127.0.0.5\n").unwrap();
        config.access.deny_ip_file = Some(deny);
        config.access.max_connections_per_ip = 2;
    })
    .await;
    let _feeding = trickle_source(front.srv.addr).await;

    // Denied through each kind of frontend; the proxy itself is not.
    let (head, mut s) = listen_from("127.0.0.5", front.v2, "/m.mp3").await;
    assert_eq!(head, "", "denied through v2");
    assert!(read_until_close(&mut s, T).await.is_empty());
    let (code, _) = curl_from("127.0.0.5", &format!("http://{}/m.mp3", front.v1)).await;
    assert_eq!(code, Some(52), "denied through v1: closed, no reply");
    let (_, status) = curl_from(
        "127.0.0.5",
        &format!("http://{}/status-json.xsl", front.http),
    )
    .await;
    assert_eq!(status, "502", "denied through HTTP mode: haproxy's 502");
    // Nor can it pass for someone else with an X-Forwarded-For of its own: behind a PROXY
    // header it is not believed at all, and in HTTP mode haproxy's own line comes last.
    for via in [front.v2, front.http] {
        let (head, _) =
            listen_with("127.0.0.5", via, "/m.mp3", "X-Forwarded-For: 127.0.0.9\r\n").await;
        assert!(
            !head.contains(" 200 "),
            "denied via {via} despite its header: {head}"
        );
    }

    // 127.0.0.7 plays, twice, through v2 and HTTP mode; a third connection of its is refused.
    let (head, mut a) = listen_from("127.0.0.7", front.v2, "/m.mp3").await;
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    let (head, mut b) = listen_from("127.0.0.7", front.http, "/m.mp3").await;
    assert!(head.contains(" 200 "), "{head}");
    wait_listeners(&front.srv, "/m.mp3", 2, T).await;
    let (head, _) = listen_from("127.0.0.7", front.v1, "/m.mp3").await;
    assert!(head.starts_with("HTTP/1.0 403"), "{head}");
    let (_, status) = curl_from(
        "127.0.0.7",
        &format!("http://{}/status-json.xsl", front.http),
    )
    .await;
    assert_eq!(status, "403", "the limit through HTTP mode");
    // The proxy holds four connections; another client still gets in.
    let (head, mut c) = listen_from("127.0.0.9", front.v1, "/m.mp3").await;
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    wait_listeners(&front.srv, "/m.mp3", 3, T).await;
    assert_eq!(
        front.listener_ips("/m.mp3").await,
        ["127.0.0.7", "127.0.0.7", "127.0.0.9"]
    );
    assert!(
        front.access_log().contains("127.0.0.7 "),
        "{}",
        front.access_log()
    );

    // A ban of the client's address ends both of its listeners, and only those.
    let (status, body) = front.admin("/admin/ban?ip=127.0.0.7").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("2 connections ended"), "{body}");
    read_until_close(&mut a, T).await;
    read_until_close(&mut b, T).await;
    wait_listeners(&front.srv, "/m.mp3", 1, T).await;
    assert!(!read_at_least(&mut c, 1, T).await.is_empty());
    let (head, _) = listen_from("127.0.0.7", front.v2, "/m.mp3").await;
    assert_eq!(head, "", "banned through v2");
    assert_eq!(front.listener_ips("/m.mp3").await, ["127.0.0.9"]);
    // The deny file and the ban never touched the proxy: .9 connects again.
    let (head, _d) = listen_from("127.0.0.9", front.v2, "/m.mp3").await;
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
}
