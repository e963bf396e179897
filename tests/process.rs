//! The `floecast` binary as an operator runs it: exit code 2 and a key/line message for a bad
//! config, the loud default-password warning, SIGHUP reloading without dropping listeners,
//! SIGHUP starting and stopping a `[[relay]]`, and SIGTERM shutting down gracefully.

mod common;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use tokio::io::AsyncWriteExt;

const BIN: &str = env!("CARGO_BIN_EXE_floecast");

/// Kills the child on drop so a failing test leaves nothing running.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("floecast-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The address of a floecast process started on `port`, once it accepts connections.
async fn wait_listening(port: u16) -> std::net::SocketAddr {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "server on port {port} did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    addr
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn bad_config_exits_2_naming_key_and_line() {
    let dir = temp_dir("badcfg");
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[limits]\nclients = 10\nqueue-size = 100\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 3") && err.contains("queue-size"),
        "{err}"
    );
    std::fs::write(&path, "[limits]\nclinets = 10\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "serve must refuse a bad config too"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2") && err.contains("clinets"), "{err}");
    std::fs::write(&path, "[limits]\nclients = 10\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_listeners_and_sigterm_is_graceful() {
    let dir = temp_dir("reload");
    let port = free_port();
    let path = dir.join("floecast.toml");
    let base = format!(
        "[[listen]]\nport = {port}\nbind-address = \"127.0.0.1\"\n[tuning]\nflush-interval-ms = 20\n"
    );
    std::fs::write(&path, &base).unwrap();
    let child = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut proc = Proc(child);
    let addr = wait_listening(port).await;
    let mut src = source(addr, "/r.mp3", "audio/mpeg", "").await;
    src.write_all(&mp3_frames(20)).await.unwrap();
    let mut l = connect(addr).await;
    l.write_all(b"GET /r.mp3 HTTP/1.0\r\n\r\n").await.unwrap();
    let (head, _) = read_head(&mut l, Duration::from_secs(3)).await;
    assert!(
        head.starts_with("HTTP/1.0 200") && !head.contains("X-Reloaded"),
        "{head}"
    );

    // Change the config and send SIGHUP: new replies carry the new header...
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    writeln!(f, "[[http-header]]\nname = \"X-Reloaded\"\nvalue = \"yes\"").unwrap();
    drop(f);
    signal(proc.0.id(), "HUP");
    let mut seen = false;
    for _ in 0..50 {
        let r = exchange(
            addr,
            b"GET /nothing-here HTTP/1.0\r\n\r\n",
            Duration::from_secs(2),
        )
        .await;
        if String::from_utf8_lossy(&r).contains("X-Reloaded: yes") {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen, "reloaded header never appeared");
    // ...and the listener from before the reload still gets audio.
    src.write_all(&mp3_frames(10)).await.unwrap();
    let more = read_at_least(&mut l, 2000, Duration::from_secs(3)).await;
    assert!(
        more.len() >= 2000,
        "listener must survive a reload (got {} bytes)",
        more.len()
    );
    // A reload with a broken file keeps the running config.
    std::fs::write(&path, "this is not toml [").unwrap();
    signal(proc.0.id(), "HUP");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = exchange(
        addr,
        b"GET /nothing-here HTTP/1.0\r\n\r\n",
        Duration::from_secs(2),
    )
    .await;
    assert!(String::from_utf8_lossy(&r).contains("X-Reloaded: yes"));

    // SIGTERM: the process exits cleanly and the listener sees its stream end.
    signal(proc.0.id(), "TERM");
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    let status = loop {
        if let Some(s) = proc.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "server did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status:?}");
    let _ = read_until_close(&mut l, Duration::from_secs(2)).await;
    let mut stderr = String::new();
    if let Some(mut e) = proc.0.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(
        stderr.contains("DEFAULT PASSWORD IN USE"),
        "no loud warning in: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn import_icecast_prints_loadable_toml() {
    // The real file from Debian's icecast2 package when installed (CI installs it), else the
    // fixture with the same settings.
    let real = std::path::Path::new("/etc/icecast2/icecast.xml");
    let file = if std::fs::read(real).is_ok() {
        real.to_path_buf()
    } else {
        eprintln!("SKIP part: /etc/icecast2/icecast.xml not readable; using the fixture");
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/icecast-debian.xml")
    };
    let out = Command::new(BIN)
        .arg("import-icecast")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toml = String::from_utf8(out.stdout).unwrap();
    let config = floecast::config::Config::from_toml_str(&toml, "imported")
        .unwrap_or_else(|e| panic!("{e}\n{toml}"));
    assert_eq!(config.listen[0].port, 8000);
    assert_eq!(config.auth.admin_user, "admin");
    // Ignored options are named on stderr and as comments.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("<paths.adminroot> ignored"), "{err}");
    assert!(toml.contains("# line "), "{toml}");
    // A broken file exits 2.
    let dir = temp_dir("badxml");
    let bad = dir.join("icecast.xml");
    std::fs::write(
        &bad,
        "<icecast><limits><clients>lots</clients></limits></icecast>",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("import-icecast")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("limits.clients"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_directly_from_an_icecast_xml() {
    let dir = temp_dir("xmlrun");
    let port = free_port();
    let path = dir.join("icecast.xml");
    std::fs::write(
        &path,
        format!(
            "<icecast><hostname>localhost</hostname>\
             <authentication><source-password>xmlpw</source-password><admin-password>adm</admin-password></authentication>\
             <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>\
             <mount><mount-name>/x.mp3</mount-name><stream-name>From XML</stream-name></mount></icecast>"
        ),
    )
    .unwrap();
    let child = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _proc = Proc(child);
    let addr = wait_listening(port).await;
    // The XML's password and mount settings are in force: hackme is refused, xmlpw works.
    let r = exchange(
        addr,
        b"SOURCE /x.mp3 HTTP/1.0\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\n\r\n",
        Duration::from_secs(2),
    )
    .await;
    // (Once, in a loaded full run, this saw something else; say what, should it recur.)
    assert!(
        String::from_utf8_lossy(&r).starts_with("HTTP/1.0 401"),
        "{:?}",
        String::from_utf8_lossy(&r)
    );
    let mut s = connect(addr).await;
    // source:xmlpw
    s.write_all(b"SOURCE /x.mp3 HTTP/1.0\r\nAuthorization: Basic c291cmNlOnhtbHB3\r\nContent-Type: audio/mpeg\r\n\r\n").await.unwrap();
    let mut ok = [0u8; 19];
    tokio::io::AsyncReadExt::read_exact(&mut s, &mut ok)
        .await
        .unwrap();
    assert_eq!(&ok, b"HTTP/1.0 200 OK\r\n\r\n");
    s.write_all(&mp3_frames(5)).await.unwrap();
    let mut l = connect(addr).await;
    l.write_all(b"GET /x.mp3 HTTP/1.0\r\n\r\n").await.unwrap();
    let (head, _) = read_head(&mut l, Duration::from_secs(3)).await;
    assert!(head.contains("icy-name:From XML\r\n"), "{head}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_peer_serves_players() {
    let dir = temp_dir("peercli");
    let (http, team, player) = (free_port(), free_port(), free_port());
    let path = dir.join("a.toml");
    std::fs::write(
        &path,
        format!(
            "[[listen]]\nport = {http}\nbind-address = \"127.0.0.1\"\n[tuning]\nflush-interval-ms = 20\n\
             [[mount]]\nname = \"/team.mp3\"\np2psp = {{ role = \"splitter\", port = {team}, bind-address = \"127.0.0.1\" }}\n"
        ),
    )
    .unwrap();
    let _a = Proc(
        Command::new(BIN)
            .arg("--config")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr = wait_listening(http).await;
    let mut src = source(addr, "/team.mp3", "audio/mpeg", "ice-name: Peer CLI\r\n").await;
    src.write_all(&mp3_frames(40)).await.unwrap();
    let _peer = Proc(
        Command::new(BIN)
            .args([
                "peer",
                &format!("127.0.0.1:{team}"),
                "--listen",
                &player.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let paddr: std::net::SocketAddr = format!("127.0.0.1:{player}").parse().unwrap();
    // The player gets the team's stream once the peer has joined and received some.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let body = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the stand-alone peer never served the stream"
        );
        src.write_all(&mp3_frames(10)).await.unwrap();
        if let Ok(mut l) = tokio::net::TcpStream::connect(paddr).await {
            l.write_all(b"GET /stream HTTP/1.0\r\n\r\n").await.unwrap();
            let (head, mut body) = read_head(&mut l, Duration::from_secs(2)).await;
            if head.starts_with("HTTP/1.0 200 OK") {
                assert!(head.contains("icy-name:Peer CLI\r\n"), "{head}");
                body.extend(read_at_least(&mut l, 2000, Duration::from_secs(3)).await);
                break body;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        body.len() >= 2000 && body.windows(2).any(|w| w == [0xFF, 0xFB]),
        "got {} bytes",
        body.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `/api/status` JSON of the server at `addr`.
async fn api_status(addr: std::net::SocketAddr) -> serde_json::Value {
    let r = exchange(
        addr,
        b"GET /api/status HTTP/1.0\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    let text = String::from_utf8_lossy(&r);
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
}

/// The `relay` object of `mount` in `/api/status`, if the mount is listed.
async fn relay_of(addr: std::net::SocketAddr, mount: &str) -> Option<serde_json::Value> {
    let st = api_status(addr).await;
    st["mounts"]
        .as_array()?
        .iter()
        .find(|m| m["mount"] == mount)
        .map(|m| m["relay"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_starts_and_stops_a_relay() {
    // Upstream: an in-process server with a live source.
    let upstream = start(test_config()).await;
    let mut src = source(upstream.addr, "/up.mp3", "audio/mpeg", "").await;
    let feeding = tokio::spawn(async move {
        while src.write_all(&mp3_frames(5)).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });

    let dir = temp_dir("relay-hup");
    let port = free_port();
    let path = dir.join("floecast.toml");
    let base = format!(
        "[[listen]]\nport = {port}\nbind-address = \"127.0.0.1\"\n[tuning]\nflush-interval-ms = 20\n"
    );
    std::fs::write(&path, &base).unwrap();
    let child = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let proc = Proc(child);
    let addr = wait_listening(port).await;
    assert!(relay_of(addr, "/r.mp3").await.is_none());

    // SIGHUP with a [[relay]] added: the mount goes live.
    let relay = format!(
        "[[relay]]\nserver = \"127.0.0.1\"\nport = {}\nmount = \"/up.mp3\"\nlocal-mount = \"/r.mp3\"\n",
        upstream.addr.port()
    );
    std::fs::write(&path, format!("{base}{relay}")).unwrap();
    signal(proc.0.id(), "HUP");
    let mut up = false;
    for _ in 0..100 {
        if relay_of(addr, "/r.mp3")
            .await
            .is_some_and(|r| r["state"] == "up")
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the relay added by SIGHUP never came up");
    let mut l = connect(addr).await;
    l.write_all(b"GET /r.mp3 HTTP/1.0\r\n\r\n").await.unwrap();
    let (head, _) = read_head(&mut l, Duration::from_secs(5)).await;
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert!(
        read_at_least(&mut l, 5000, Duration::from_secs(5))
            .await
            .len()
            >= 5000
    );

    // SIGHUP with it removed: the mount ends and its listener is let go.
    std::fs::write(&path, &base).unwrap();
    signal(proc.0.id(), "HUP");
    let _ = read_until_close(&mut l, Duration::from_secs(10)).await;
    let mut gone = false;
    for _ in 0..100 {
        if relay_of(addr, "/r.mp3").await.is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the relay removed by SIGHUP still runs");
    feeding.abort();
    drop(proc);
    let _ = std::fs::remove_dir_all(&dir);
}
