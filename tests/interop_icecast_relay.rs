//! Relays between floecast and a real icecast2 (Debian package), both ways:
//! - icecast2 → floecast: a `[[relay]]` and `[master]` relay-all of icecast2's mount; titles
//!   set on icecast2 with `/admin/metadata` reach floecast's ICY listeners; an on-demand
//!   relay connects to icecast2 only while it has listeners.
//! - floecast → icecast2: icecast2's `<relay>` and `<master-server>` pointing at floecast;
//!   titles set on floecast arrive at icecast2's ICY listeners.
//!
//! Sources are ffmpeg pushing a real-time MP3 tone. Skips (with a printed line) when icecast2
//! or ffmpeg is missing.

mod common;
mod interop_support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use floecast::config::{MasterConfig, RelayConfig, RelayTiming};
use interop_support::{
    Proc, TempDir, assert_decodes, assert_ogg_start, ffmpeg_source, have_all, raw_get_ogg,
    running_as_root, user_ids,
};
use tokio::io::AsyncWriteExt;

const MP3_ARGS: &[&str] = &[
    "-c:a",
    "libmp3lame",
    "-b:a",
    "128k",
    "-content_type",
    "audio/mpeg",
    "-f",
    "mp3",
];
const OGG_ARGS: &[&str] = &[
    "-c:a",
    "libvorbis",
    "-content_type",
    "application/ogg",
    "-page_duration",
    "100000",
    "-f",
    "ogg",
];
const ADMIN: &str = "Authorization: Basic YWRtaW46aGFja21l\r\n";
const T: Duration = Duration::from_secs(20);

/// A free loopback port (bound then released; icecast2 binds it a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A running icecast2 on `addr` with `extra` XML (relays, master) in its config.
struct Icecast2 {
    proc: Proc,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Icecast2 {
    async fn start(tag: &str, extra: &str) -> Icecast2 {
        Self::start_on(tag, extra, free_port()).await
    }

    async fn start_on(tag: &str, extra: &str, port: u16) -> Icecast2 {
        let dir = TempDir::new(tag);
        // icecast2 refuses to run as root unless it can change to its own user.
        let security = if running_as_root() {
            "<security><chroot>0</chroot><changeowner><user>icecast2</user><group>icecast</group></changeowner></security>"
        } else {
            "<security><chroot>0</chroot></security>"
        };
        let d = dir.path().display();
        let xml = format!(
            r#"<icecast>
  <location>Test</location><admin>test@localhost</admin><hostname>127.0.0.1</hostname>
  <limits><clients>100</clients><sources>10</sources><queue-size>524288</queue-size>
    <header-timeout>15</header-timeout><source-timeout>10</source-timeout>
    <burst-on-connect>1</burst-on-connect><burst-size>65535</burst-size></limits>
  <authentication><source-password>hackme</source-password><relay-user>relay</relay-user>
    <relay-password>hackme</relay-password><admin-user>admin</admin-user><admin-password>hackme</admin-password></authentication>
  <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  {extra}
  <paths><basedir>/usr/share/icecast2</basedir><logdir>{d}</logdir><webroot>/usr/share/icecast2/web</webroot>
    <adminroot>/usr/share/icecast2/admin</adminroot></paths>
  <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>4</loglevel></logging>
  {security}
</icecast>"#
        );
        let cfg = dir.join("icecast.xml");
        std::fs::write(&cfg, xml).expect("write icecast.xml");
        if running_as_root() {
            if let Some((uid, gid)) = user_ids("icecast2") {
                dir.chown_all(uid, gid);
            }
        }
        let mut cmd = Command::new("icecast2");
        cmd.arg("-c").arg(&cfg);
        let mut proc = Proc::spawn("icecast2", cmd, dir.join("stdout.log"));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            proc.assert_running();
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "icecast2 did not start listening; {}",
                error_log(dir.path())
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Icecast2 {
            proc,
            addr,
            _dir: dir,
        }
    }

    /// Wait until icecast2 reports `n` listeners on `mount`.
    async fn wait_listeners(&self, mount: &str, n: u64) {
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let got = self.listeners(mount).await;
            if got == Some(n) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "icecast2 reports {got:?} listeners on {mount}, want {n}; {}",
                self.error_log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn error_log(&self) -> String {
        error_log(self._dir.path())
    }

    /// Listeners icecast2 reports on `mount` (from its admin stats).
    async fn listeners(&self, mount: &str) -> Option<u64> {
        let r = exchange(
            self.addr,
            format!("GET /admin/stats HTTP/1.0\r\n{ADMIN}\r\n").as_bytes(),
            Duration::from_secs(5),
        )
        .await;
        let text = String::from_utf8_lossy(&r);
        let src = text.split(&format!("<source mount=\"{mount}\">")).nth(1)?;
        let src = src.split("</source>").next()?;
        src.split("<listeners>")
            .nth(1)?
            .split('<')
            .next()?
            .parse()
            .ok()
    }
}

fn error_log(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(40).collect();
    format!(
        "icecast2 error.log (last lines):\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    )
}

fn available(test: &str) -> bool {
    have_all(test, &["icecast2", "ffmpeg"])
}

async fn set_title(addr: SocketAddr, mount: &str, song: &str) {
    let r = exchange(
        addr,
        format!(
            "GET /admin/metadata?mount={mount}&mode=updinfo&song={song} HTTP/1.0\r\n{ADMIN}\r\n"
        )
        .as_bytes(),
        Duration::from_secs(5),
    )
    .await;
    let text = String::from_utf8_lossy(&r);
    assert!(text.contains("Metadata update successful"), "{text}");
}

/// Wait until `mount` on `addr` answers 200 to a listener (retrying while it 404s).
async fn wait_serving(addr: SocketAddr, mount: &str, timeout: Duration, what: impl Fn() -> String) {
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

/// Listen with `Icy-MetaData: 1` until a metadata block contains `needle`; returns the
/// blocks seen. Audio between blocks must be exactly `icy-metaint` bytes.
async fn icy_titles_until(
    addr: SocketAddr,
    mount: &str,
    needle: &str,
    timeout: Duration,
) -> Vec<String> {
    let mut s = connect(addr).await;
    s.write_all(format!("GET {mount} HTTP/1.0\r\nIcy-MetaData: 1\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let (head, mut data) = read_head(&mut s, timeout).await;
    assert!(head.starts_with("HTTP/1.0 200"), "{mount}: {head}");
    let metaint: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("icy-metaint:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no icy-metaint: {head}"));
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pos = 0;
    let mut seen = Vec::new();
    loop {
        // Walk whole (interval + block) units as they become complete.
        while data.len() > pos + metaint {
            let len = data[pos + metaint] as usize * 16;
            let end = pos + metaint + 1 + len;
            if data.len() < end {
                break;
            }
            if len > 0 {
                let text = String::from_utf8_lossy(&data[pos + metaint + 1..end])
                    .trim_end_matches('\0')
                    .to_string();
                assert!(text.starts_with("StreamTitle="), "bad ICY block {text:?}");
                let found = text.contains(needle);
                seen.push(text);
                if found {
                    return seen;
                }
            }
            pos = end;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("{mount}: no ICY title containing {needle:?}; blocks seen: {seen:?}");
        }
        let more = read_at_least(&mut s, 1, Duration::from_millis(500)).await;
        data.extend(more);
    }
}

fn relay_to(addr: SocketAddr, mount: &str, local: &str) -> RelayConfig {
    RelayConfig {
        server: "127.0.0.1".into(),
        port: addr.port(),
        mount: mount.into(),
        local_mount: local.into(),
        username: None,
        password: None,
        relay_metadata: true,
        on_demand: false,
        bind: None,
        timing: RelayTiming::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn icecast2_to_floecast_relay_master_and_on_demand() {
    if !available("icecast2_to_floecast_relay_master_and_on_demand") {
        return;
    }
    let ice = Icecast2::start("ice-up", "").await;
    let tmp = TempDir::new("ice-up-src");
    let mut ff = Proc::spawn(
        "ffmpeg",
        ffmpeg_source(ice.addr, "/live.mp3", MP3_ARGS),
        tmp.join("ffmpeg.log"),
    );
    wait_serving(ice.addr, "/live.mp3", T, || {
        format!("{}\n{}", ff.log_text(), ice.error_log())
    })
    .await;
    ff.assert_running();
    // An Ogg Vorbis mount too: master relay-all must carry its headers and pages.
    let mut ff_ogg = Proc::spawn(
        "ffmpeg",
        ffmpeg_source(ice.addr, "/live.ogg", OGG_ARGS),
        tmp.join("ffmpeg-ogg.log"),
    );
    wait_serving(ice.addr, "/live.ogg", T, || {
        format!("{}\n{}", ff_ogg.log_text(), ice.error_log())
    })
    .await;
    ff_ogg.assert_running();

    let mut c = test_config();
    c.relays
        .push(relay_to(ice.addr, "/live.mp3", "/relayed.mp3"));
    let mut od = relay_to(ice.addr, "/live.mp3", "/od.mp3");
    od.on_demand = true;
    od.timing.idle_timeout = Duration::from_secs(1);
    c.relays.push(od);
    c.master = Some(MasterConfig {
        server: "127.0.0.1".into(),
        port: ice.addr.port(),
        username: "relay".into(),
        password: "hackme".into(),
        update_interval: Duration::from_secs(2),
        on_demand: false,
        timing: RelayTiming::default(),
    });
    let fc = start(c).await;
    for m in ["/relayed.mp3", "/live.mp3", "/live.ogg"] {
        wait_for(&format!("{m} relayed from icecast2"), T, || {
            fc.app
                .server
                .relays
                .get(m)
                .is_some_and(|r| r.state().name() == "up")
        })
        .await;
    }
    // icecast2 sees only the two always-on relays as listeners (the probe that found the
    // mount leaves once icecast2 notices it closed).
    ice.wait_listeners("/live.mp3", 2).await;

    set_title(ice.addr, "/live.mp3", "From%20Icecast2%20%C3%A9").await;
    for m in ["/relayed.mp3", "/live.mp3"] {
        let seen = icy_titles_until(fc.addr, m, "From Icecast2 é", T).await;
        assert!(
            seen.iter().any(|t| t == "StreamTitle='From Icecast2 é';"),
            "{m}: {seen:?}"
        );
    }
    assert_decodes(&format!("http://{}/relayed.mp3", fc.addr), 2).await;
    let (head, body) = raw_get_ogg(fc.addr, "/live.ogg", 4, T).await;
    assert!(head.starts_with("HTTP/1.0 200 OK"), "{head}");
    assert_ogg_start(&body, b"\x01vorbis", b"\x03vorbis");
    assert_decodes(&format!("http://{}/live.ogg", fc.addr), 2).await;

    // On demand: a listener makes floecast connect to icecast2; leaving lets it go.
    assert!(
        fc.app
            .server
            .registry
            .get("/od.mp3")
            .is_some_and(|m| m.is_standby())
    );
    let mut l = connect(fc.addr).await;
    l.write_all(b"GET /od.mp3 HTTP/1.0\r\n\r\n")
        .await
        .expect("write");
    let (head, _) = read_head(&mut l, T).await;
    assert!(head.starts_with("HTTP/1.0 200 OK"), "{head}");
    assert!(read_at_least(&mut l, 20_000, T).await.len() >= 20_000);
    ice.wait_listeners("/live.mp3", 3).await;
    drop(l);
    ice.wait_listeners("/live.mp3", 2).await;
    assert!(
        fc.app
            .server
            .registry
            .get("/od.mp3")
            .is_some_and(|m| m.is_standby())
    );
    ff.assert_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floecast_to_icecast2_relay_and_master() {
    if !available("floecast_to_icecast2_relay_and_master") {
        return;
    }
    let fc = start(test_config()).await;
    let tmp = TempDir::new("fc-up-src");
    let mut ff = Proc::spawn(
        "ffmpeg",
        ffmpeg_source(fc.addr, "/live.mp3", MP3_ARGS),
        tmp.join("ffmpeg.log"),
    );
    interop_support::wait_live(&fc.app.server, "/live.mp3", &mut ff, T).await;
    set_title(fc.addr, "/live.mp3", "First%20Title").await;

    let port = fc.addr.port();
    let extra = format!(
        "<relay><server>127.0.0.1</server><port>{port}</port><mount>/live.mp3</mount>\
         <local-mount>/relayed.mp3</local-mount><relay-shoutcast-metadata>1</relay-shoutcast-metadata></relay>\
         <master-server>127.0.0.1</master-server><master-server-port>{port}</master-server-port>\
         <master-username>relay</master-username><master-password>hackme</master-password>\
         <master-update-interval>2</master-update-interval>"
    );
    let ice = Icecast2::start("ice-slave", &extra).await;
    for m in ["/relayed.mp3", "/live.mp3"] {
        wait_serving(ice.addr, m, T, || ice.error_log()).await;
    }
    let relay_stats = exchange(
        fc.addr,
        format!("GET /admin/stats HTTP/1.0\r\n{ADMIN}\r\n").as_bytes(),
        T,
    )
    .await;
    assert!(String::from_utf8_lossy(&relay_stats).contains("<listeners>2</listeners>"));

    set_title(fc.addr, "/live.mp3", "Floecast%20To%20Icecast2").await;
    for m in ["/relayed.mp3", "/live.mp3"] {
        let seen = icy_titles_until(ice.addr, m, "Floecast To Icecast2", T).await;
        assert!(
            seen.iter()
                .any(|t| t == "StreamTitle='Floecast To Icecast2';"),
            "{m}: {seen:?}"
        );
    }
    assert_decodes(&format!("http://{}/relayed.mp3", ice.addr), 2).await;
    ff.assert_running();
    let mut ice = ice;
    ice.proc.assert_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floecast_listeners_survive_an_icecast2_restart() {
    if !available("floecast_listeners_survive_an_icecast2_restart") {
        return;
    }
    let ice = Icecast2::start("ice-restart", "").await;
    let port = ice.addr.port();
    let tmp = TempDir::new("ice-restart-src");
    let ff = Proc::spawn(
        "ffmpeg",
        ffmpeg_source(ice.addr, "/live.mp3", MP3_ARGS),
        tmp.join("ffmpeg.log"),
    );
    wait_serving(ice.addr, "/live.mp3", T, || ice.error_log()).await;
    let mut c = test_config();
    c.relays.push(relay_to(ice.addr, "/live.mp3", "/live.mp3"));
    let fc = start(c).await;
    let status = loop {
        if let Some(r) = fc
            .app
            .server
            .relays
            .get("/live.mp3")
            .filter(|r| r.state().name() == "up")
        {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut l = connect(fc.addr).await;
    l.write_all(b"GET /live.mp3 HTTP/1.0\r\n\r\n")
        .await
        .expect("write");
    let (head, _) = read_head(&mut l, T).await;
    assert!(head.starts_with("HTTP/1.0 200 OK"), "{head}");
    assert!(read_at_least(&mut l, 20_000, T).await.len() >= 20_000);

    // icecast2 dies (its source with it) and comes back on the same port 2 s later.
    drop(ice);
    drop(ff);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_ne!(status.state().name(), "up");
    let _ = read_at_least(&mut l, 1 << 20, Duration::from_millis(300)).await;
    let ice = Icecast2::start_on("ice-restart2", "", port).await;
    let _ff = Proc::spawn(
        "ffmpeg",
        ffmpeg_source(ice.addr, "/live.mp3", MP3_ARGS),
        tmp.join("ffmpeg2.log"),
    );
    let after = read_at_least(&mut l, 40_000, Duration::from_secs(25)).await;
    assert!(
        after.len() >= 40_000,
        "listener got {} bytes after the restart; relay: {}; {}",
        after.len(),
        status.to_json(),
        ice.error_log()
    );
    assert_eq!(status.state().name(), "up");
    assert!(status.attempts.load(std::sync::atomic::Ordering::Relaxed) >= 2);
    // 0 dropped listeners: still one listener, and no disconnect counted.
    assert_eq!(
        fc.app
            .server
            .registry
            .get("/live.mp3")
            .map(|m| m.listener_count()),
        Some(1)
    );
    let metrics = exchange(fc.addr, b"GET /metrics HTTP/1.0\r\n\r\n", T).await;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        !metrics.lines().any(
            |l| l.starts_with("floecast_listener_disconnects_total") && l.contains("/live.mp3")
        ),
        "a listener was dropped: {metrics}"
    );
    // The stream after the restart still decodes.
    drop(l);
    assert_decodes(&format!("http://{}/live.mp3", fc.addr), 2).await;
}
