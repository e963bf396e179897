//! Interop with the real icecast2 (Debian package) as the remote of a push relay: floecast
//! logs in as a source with PUT + `Expect: 100-continue` and with legacy SOURCE, ffmpeg
//! decodes what icecast2 then serves without an error, titles set on floecast show in
//! icecast2's `/status-json.xsl` and ICY stream, and a wrong password shows as a clear 401.
//! Skips (with `SKIP: ...` on stderr) when icecast2 or ffmpeg is missing.

mod common;
mod interop_support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::*;
use floecast::config::{PushConfig, PushProtocol};
use floecast::relay::push::{PushPhase, PushState};
use floecast::server::Server;
use interop_support::{
    Proc, TempDir, assert_decodes, assert_ogg_start, ffmpeg_source, have_all, header, raw_get,
    raw_get_ogg, running_as_root, user_ids, wait_live,
};

const T: Duration = Duration::from_secs(15);

/// A running icecast2 on a free loopback port, killed on drop.
struct Icecast {
    addr: SocketAddr,
    proc: Proc,
    _dir: TempDir,
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Icecast {
    /// Start icecast2 with source password `hackme`. As root it must drop to its own user
    /// (`<changeowner>`), so its directory is handed to that user. `None` (after a SKIP line)
    /// when that user does not exist.
    async fn start(test: &str) -> Option<Icecast> {
        let owner = if running_as_root() {
            match user_ids("icecast2") {
                Some(ids) => Some(ids),
                None => {
                    eprintln!(
                        "SKIP: running as root and no icecast2 user for <changeowner> ({test})"
                    );
                    return None;
                }
            }
        } else {
            None
        };
        let dir = TempDir::new("icecast");
        std::fs::create_dir_all(dir.join("log")).expect("log dir");
        let security = if owner.is_some() {
            "<security><chroot>0</chroot><changeowner><user>icecast2</user><group>icecast</group></changeowner></security>"
        } else {
            ""
        };
        // A port picked here may be taken by the time icecast binds it; try a few.
        for _ in 0..5 {
            let port = free_port();
            let xml = format!(
                "<icecast><location>test</location><admin>test@localhost</admin>\
                 <hostname>127.0.0.1</hostname>\
                 <limits><clients>100</clients><sources>10</sources><queue-size>524288</queue-size>\
                 <header-timeout>15</header-timeout><source-timeout>10</source-timeout>\
                 <burst-on-connect>1</burst-on-connect><burst-size>65535</burst-size></limits>\
                 <authentication><source-password>hackme</source-password>\
                 <relay-password>hackme</relay-password><admin-user>admin</admin-user>\
                 <admin-password>hackme</admin-password></authentication>\
                 <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>\
                 <fileserve>1</fileserve>\
                 <paths><basedir>/usr/share/icecast2</basedir><logdir>{log}</logdir>\
                 <webroot>/usr/share/icecast2/web</webroot><adminroot>/usr/share/icecast2/admin</adminroot></paths>\
                 <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>3</loglevel></logging>\
                 {security}</icecast>\n",
                log = dir.join("log").display(),
            );
            let conf = dir.join(&format!("icecast-{port}.xml"));
            std::fs::write(&conf, xml).expect("write icecast.xml");
            if let Some((uid, gid)) = owner {
                dir.chown_all(uid, gid);
            }
            let mut cmd = Command::new("icecast2");
            cmd.arg("-c").arg(&conf);
            let mut proc = Proc::spawn("icecast2", cmd, dir.join(&format!("icecast-{port}.out")));
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while tokio::time::Instant::now() < deadline {
                if proc.exited().is_some() {
                    break;
                }
                if tokio::net::TcpStream::connect(addr).await.is_ok() {
                    return Some(Icecast {
                        addr,
                        proc,
                        _dir: dir,
                    });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            eprintln!(
                "icecast2 did not come up on port {port}: {}\n{}",
                proc.log_text(),
                std::fs::read_to_string(dir.join("log/error.log")).unwrap_or_default()
            );
        }
        panic!("icecast2 would not start");
    }

    async fn status_json(&self) -> String {
        let req = format!(
            "GET /status-json.xsl HTTP/1.0\r\nHost: {}\r\n\r\n",
            self.addr
        );
        String::from_utf8_lossy(&exchange(self.addr, req.as_bytes(), T).await).into_owned()
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self._dir.join("log/error.log")).unwrap_or_default()
    }
}

fn push(ice: &Icecast, mount: &str, password: &str, protocol: PushProtocol) -> PushConfig {
    PushConfig {
        mount: mount.into(),
        server: "127.0.0.1".into(),
        port: ice.addr.port(),
        remote_mount: mount.into(),
        username: "source".into(),
        password: password.into(),
        protocol,
        bind: None,
    }
}

const MP3_ARGS: &[&str] = &[
    "-c:a",
    "libmp3lame",
    "-b:a",
    "128k",
    "-content_type",
    "audio/mpeg",
    "-ice_name",
    "pushed mp3",
    "-f",
    "mp3",
];
const OGG_ARGS: &[&str] = &[
    "-c:a",
    "libvorbis",
    "-content_type",
    "application/ogg",
    "-f",
    "ogg",
];

fn push_state(server: &Server, mount: &str) -> std::sync::Arc<PushState> {
    server
        .pushes
        .list()
        .into_iter()
        .find(|p| p.config.mount == mount)
        .expect("push configured")
}

async fn wait_up(server: &Server, mount: &str, ice: &mut Icecast) {
    let state = push_state(server, mount);
    let deadline = tokio::time::Instant::now() + T;
    while state.phase() != PushPhase::Up {
        ice.proc.assert_running();
        if tokio::time::Instant::now() > deadline {
            panic!(
                "push of {mount} not up: {:?}\nicecast2 error log:\n{}",
                state.status(),
                ice.error_log()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Set the title of `mount` on floecast, then wait for icecast2's status-json.xsl to show it.
async fn title_reaches_icecast(a: &TestServer, ice: &Icecast, mount: &str, title: &str) {
    let enc = title.replace(' ', "%20");
    let req = format!(
        "GET /admin/metadata?mount={mount}&mode=updinfo&song={enc} HTTP/1.0\r\nAuthorization: Basic {SOURCE_AUTH}\r\n\r\n"
    );
    let reply = String::from_utf8_lossy(&exchange(a.addr, req.as_bytes(), T).await).into_owned();
    assert!(reply.contains("Metadata update successful"), "{reply}");
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let status = ice.status_json().await;
        if status.contains(&format!("\"title\":\"{title}\"")) {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "title {title:?} never reached icecast2: {status}\nerror log:\n{}",
                ice.error_log()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// PUT (auto mode picks it: icecast2 2.4 knows PUT): MP3 from ffmpeg through floecast to
/// icecast2 decodes cleanly there; the title arrives in status-json and the ICY stream; a
/// wrong password is a clear 401 error and does not disturb the good push.
#[tokio::test]
async fn floecast_pushes_mp3_to_icecast2_with_put() {
    let test = "floecast_pushes_mp3_to_icecast2_with_put";
    if !have_all(test, &["icecast2", "ffmpeg"]) {
        return;
    }
    let Some(mut ice) = Icecast::start(test).await else {
        return;
    };
    let tmp = TempDir::new("icepush-put");
    let mut config = test_config();
    config.pushes = vec![
        push(&ice, "/put.mp3", "hackme", PushProtocol::Auto),
        push(&ice, "/bad.mp3", "not-the-password", PushProtocol::Put),
    ];
    let a = start(config).await;
    let mut src = Proc::spawn(
        "ffmpeg source",
        ffmpeg_source(a.addr, "/put.mp3", MP3_ARGS),
        tmp.join("src.log"),
    );
    let mut bad = Proc::spawn(
        "ffmpeg source",
        ffmpeg_source(a.addr, "/bad.mp3", MP3_ARGS),
        tmp.join("bad.log"),
    );
    wait_live(&a.app.server, "/put.mp3", &mut src, T).await;
    wait_live(&a.app.server, "/bad.mp3", &mut bad, T).await;
    wait_up(&a.app.server, "/put.mp3", &mut ice).await;
    assert_eq!(
        push_state(&a.app.server, "/put.mp3").status().method,
        Some("PUT")
    );

    let url = format!("http://{}/put.mp3", ice.addr);
    assert_decodes(&url, 3).await;
    let (head, _) = raw_get(ice.addr, "/put.mp3", "", 1000, T).await;
    assert_eq!(header(&head, "icy-name"), Some("pushed mp3"), "{head}");

    title_reaches_icecast(&a, &ice, "/put.mp3", "Push Interop Title").await;
    // icecast2 tags queued audio with the title of its time, so the burst (64 KiB) still
    // carries the old one: read past it.
    let (head, body) = raw_get(ice.addr, "/put.mp3", "Icy-MetaData: 1\r\n", 120_000, T).await;
    assert!(header(&head, "icy-metaint").is_some(), "{head}");
    assert!(
        interop_support::find(&body, b"StreamTitle='Push Interop Title';").is_some(),
        "no title in icecast2's ICY stream ({} bytes read)",
        body.len()
    );

    let bad = push_state(&a.app.server, "/bad.mp3");
    wait_for("the bad push to fail", T, || bad.phase() == PushPhase::Down).await;
    let err = bad.status().last_error.unwrap_or_default();
    assert!(err.contains("401"), "{err}");
    assert!(!ice.status_json().await.contains("/bad.mp3"));
}

/// Legacy SOURCE (forced): Ogg Vorbis and MP3 through floecast to icecast2. The Ogg listener
/// on icecast2 starts with the Vorbis header pages (floecast sent its header cache first)
/// and both decode cleanly; the MP3 title arrives.
#[tokio::test]
async fn floecast_pushes_ogg_and_mp3_to_icecast2_with_source() {
    let test = "floecast_pushes_ogg_and_mp3_to_icecast2_with_source";
    if !have_all(test, &["icecast2", "ffmpeg"]) {
        return;
    }
    let Some(mut ice) = Icecast::start(test).await else {
        return;
    };
    let tmp = TempDir::new("icepush-source");
    let mut config = test_config();
    config.pushes = vec![
        push(&ice, "/legacy.ogg", "hackme", PushProtocol::Source),
        push(&ice, "/legacy.mp3", "hackme", PushProtocol::Source),
    ];
    let a = start(config).await;
    let mut ogg = Proc::spawn(
        "ffmpeg ogg source",
        ffmpeg_source(a.addr, "/legacy.ogg", OGG_ARGS),
        tmp.join("ogg.log"),
    );
    let mut mp3 = Proc::spawn(
        "ffmpeg mp3 source",
        ffmpeg_source(a.addr, "/legacy.mp3", MP3_ARGS),
        tmp.join("mp3.log"),
    );
    wait_live(&a.app.server, "/legacy.ogg", &mut ogg, T).await;
    wait_live(&a.app.server, "/legacy.mp3", &mut mp3, T).await;
    wait_up(&a.app.server, "/legacy.ogg", &mut ice).await;
    wait_up(&a.app.server, "/legacy.mp3", &mut ice).await;
    assert_eq!(
        push_state(&a.app.server, "/legacy.ogg").status().method,
        Some("SOURCE")
    );

    let (head, body) = raw_get_ogg(ice.addr, "/legacy.ogg", 4, T).await;
    assert!(head.starts_with("HTTP/1.0 200 OK"), "{head}");
    assert_ogg_start(&body, b"\x01vorbis", b"\x03vorbis");
    assert_decodes(&format!("http://{}/legacy.ogg", ice.addr), 3).await;
    assert_decodes(&format!("http://{}/legacy.mp3", ice.addr), 3).await;
    title_reaches_icecast(&a, &ice, "/legacy.mp3", "Legacy Title").await;
}
