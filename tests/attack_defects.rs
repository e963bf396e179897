//! The defects the attack run found (issue 11 §4), each attacked again on a real server:
//! metrics labels made by strangers, sources shadowing the server's own paths, control
//! characters in mount names and logs, playlists echoing the request, `source` logging in
//! to a mount with its own user, and P2PSP peers' addresses shown to anyone.

mod common;
mod interop_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use floecast::config::{Config, MountConfig, P2pspConfig, SplitterSettings};
use floecast::p2psp::Codec;
use floecast::team::peer::PeerLink;
use interop_support::{Icecast2, TempDir};
use tokio::io::AsyncWriteExt;

const T: Duration = Duration::from_secs(5);

async fn status_of(addr: std::net::SocketAddr, request: &str) -> (u16, String, String) {
    split_reply(&exchange(addr, request.as_bytes(), T).await)
}

fn source_request(method: &str, path: &str, auth: &str) -> String {
    format!(
        "{method} {path} HTTP/1.0\r\nAuthorization: Basic {auth}\r\nContent-Type: audio/mpeg\r\n\r\n"
    )
}

/// 600 SOURCE requests with a wrong password, each to a new name, used to fill the label
/// cap (500): a real mount was then reported as `mount="other"`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_create_no_metrics_labels() {
    let srv = start(test_config()).await;
    // `source:wrong`.
    let bad = "c291cmNlOndyb25n";
    for i in 0..600 {
        let (status, ..) =
            status_of(srv.addr, &source_request("SOURCE", &format!("/x{i}"), bad)).await;
        assert_eq!(status, 401);
    }
    let mut src = source(srv.addr, "/real.mp3", "audio/mpeg", "").await;
    src.write_all(&mp3_frames(20)).await.unwrap();
    let (_, mut listener) = listen(srv.addr, "/real.mp3", "", T).await;
    read_at_least(&mut listener, 4000, T).await;
    let (_, _, metrics) = status_of(srv.addr, "GET /metrics HTTP/1.0\r\n\r\n").await;
    for series in [
        r#"floecast_source_connections_total{mount="/real.mp3",outcome="accepted",protocol="source"} 1"#,
        r#"floecast_listener_connections_total{mount="/real.mp3",outcome="accepted"} 1"#,
        r#"floecast_source_connections_total{mount="other",outcome="rejected_auth",protocol="source"} 600"#,
    ] {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }
    assert!(!metrics.contains("mount=\"/x1\""), "{metrics}");
}

/// A source could mount `/status-json.xsl`, `/metrics`, `/api/status` or `/`, which then
/// served audio. Now each is refused with 403, for SOURCE and PUT, and keeps its own answer.
#[tokio::test]
async fn sources_cannot_shadow_the_servers_own_paths() {
    let web = TempDir::new("attack-webroot");
    std::fs::write(web.join("page.html"), "<p>static</p>").unwrap();
    let mut config = test_config();
    config.paths.webroot = Some(web.path().to_path_buf());
    let srv = start(config).await;
    for path in [
        "/status-json.xsl",
        "/status.xsl",
        "/metrics",
        "/api/status",
        "/admin/stats",
        "/admin.cgi",
        "/",
        "/page.html",
    ] {
        for method in ["SOURCE", "PUT"] {
            let (status, _, body) =
                status_of(srv.addr, &source_request(method, path, SOURCE_AUTH)).await;
            assert_eq!(status, 403, "{method} {path}: {body}");
            assert!(
                body.contains("one of the server's own paths") || body.contains("web root"),
                "{method} {path}: {body}"
            );
        }
    }
    assert!(srv.app.server.registry.is_empty());
    let (status, head, body) = status_of(srv.addr, "GET /status-json.xsl HTTP/1.0\r\n\r\n").await;
    assert_eq!(status, 200);
    assert!(
        head.contains("application/json") && body.starts_with("{\"icestats\""),
        "{head}{body}"
    );
    let (_, _, page) = status_of(srv.addr, "GET /page.html HTTP/1.0\r\n\r\n").await;
    assert_eq!(page, "<p>static</p>");
    // A name that merely starts like one is a mount like any other.
    let _ok = source(srv.addr, "/apiary.mp3", "audio/mpeg", "").await;
}

/// The config refuses the same names for local mounts, with the key and the reason.
#[test]
fn config_refuses_the_servers_own_paths_as_mounts() {
    for (toml, key) in [
        (
            "[[relay]]\nport = 9\nmount = \"/a\"\nlocal-mount = \"/metrics\"\n",
            "relay[0].local-mount",
        ),
        (
            "[[relay]]\nport = 9\nmount = \"/status-json.xsl\"\n",
            "relay[0].mount",
        ),
        ("[[mount]]\nname = \"/api/status\"\n", "mount[0].name"),
        // A relay of the upstream's `/` would mount `/` here.
        ("[[relay]]\nport = 9\n", "relay[0].mount"),
    ] {
        let err = Config::from_toml_str(toml, "test.toml")
            .expect_err(toml)
            .to_string();
        assert!(
            err.contains(key)
                && (err.contains("one of the server's own paths") || err.contains("status page")),
            "{toml}: {err}"
        );
    }
}

/// `SOURCE /a%0d%0aX-Inj:%201` was accepted and wrote a raw line break into the log; a title
/// could do the same. Now the name gets 400, and what is logged from the network is escaped.
#[tokio::test]
async fn control_characters_never_reach_the_log() {
    let dir = TempDir::new("attack-log");
    let port = free_port();
    let config = dir.join("floecast.toml");
    std::fs::write(
        &config,
        format!("[[listen]]\nport = {port}\nbind-address = \"127.0.0.1\"\n[logging]\nlevel = \"debug\"\n"),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("stderr.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_floecast"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = tokio::time::Instant::now() + T;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _, body) = status_of(
        addr,
        &source_request("SOURCE", "/a%0d%0aX-Inj:%201", SOURCE_AUTH),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let mut src = source(addr, "/t.mp3", "audio/mpeg", "").await;
    src.write_all(&mp3_frames(10)).await.unwrap();
    set_title(addr, "/t.mp3", "A%0d%0aX-Evil:%201", ADMIN, T).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(dir.join("stderr.log")).unwrap();
    assert!(text.contains("source refused"), "{text}");
    for line in text.lines() {
        assert!(
            !line.starts_with("X-Inj") && !line.starts_with("X-Evil"),
            "a line break from the network reached the log:\n{text}"
        );
    }
}

/// `.m3u` and `.xspf` echoed the decoded path (CR/LF included): the URL is now encoded, and
/// an unknown mount's XSPF is icecast2's empty playlist.
#[tokio::test]
async fn playlists_encode_the_mount_name() {
    let srv = start(test_config()).await;
    let (status, head, body) = status_of(
        srv.addr,
        "GET /a%20b%3Cc%0d%0aX-Inj:%201.m3u HTTP/1.0\r\nHost: h:8000\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
    assert!(head.contains("Content-Type: audio/x-mpegurl"), "{head}");
    assert_eq!(body, "http://h:8000/a%20b%3Cc%0D%0AX-Inj%3A%201\r\n");

    let (status, _, body) = status_of(srv.addr, "GET /none.xspf HTTP/1.0\r\n\r\n").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("<trackList/>") && !body.contains("<location>"),
        "{body}"
    );

    let _src = source(srv.addr, "/x%20y%26z.mp3", "audio/mpeg", "").await;
    let (_, _, body) = status_of(
        srv.addr,
        "GET /x%20y%26z.mp3.xspf HTTP/1.0\r\nHost: h:8000\r\n\r\n",
    )
    .await;
    assert!(
        body.contains("<location>http://h:8000/x%20y%26z.mp3</location>"),
        "{body}"
    );
}

fn dj_mount() -> MountConfig {
    MountConfig {
        name: "/dj".into(),
        username: Some("dj".into()),
        password: Some("secret".into()),
        ..Default::default()
    }
}

/// `source:<password>` on a mount with its own `username` was accepted; icecast2 answers
/// 401, and so does floecast now. Both servers get the same requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mounts_own_user_is_required_like_icecast2() {
    let mut config = test_config();
    config.mounts.push(dj_mount());
    let srv = start(config).await;
    let Some(ice) = Icecast2::start(
        "a_mounts_own_user_is_required_like_icecast2",
        "<mount><mount-name>/dj</mount-name><username>dj</username><password>secret</password></mount>",
    )
    .await
    else {
        return;
    };
    // source:secret, then dj:secret.
    for (auth, want) in [("c291cmNlOnNlY3JldA==", 401), ("ZGo6c2VjcmV0", 200)] {
        for (server, addr) in [("icecast2", ice.addr), ("floecast", srv.addr)] {
            let mut s = connect(addr).await;
            s.write_all(source_request("SOURCE", "/dj", auth).as_bytes())
                .await
                .unwrap();
            let (head, _) = read_head(&mut s, T).await;
            assert!(
                head.starts_with(&format!("HTTP/1.0 {want}")),
                "{server} with {auth}: {head}"
            );
        }
    }
    // And the unknown mount's playlists answer as icecast2's do.
    for path in ["/nowhere.xspf", "/nowhere.m3u"] {
        let req = format!("GET {path} HTTP/1.0\r\n\r\n");
        let (ice_status, _, ice_body) = status_of(ice.addr, &req).await;
        let (floe_status, _, floe_body) = status_of(srv.addr, &req).await;
        assert_eq!(ice_status, floe_status, "{path}");
        if path.ends_with(".xspf") {
            assert_eq!(ice_body, floe_body, "{path}");
        }
    }
}

/// `/api/status` showed every P2PSP peer's address to anyone: now ids and statistics only,
/// addresses for the admin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_addresses_are_for_the_admin() {
    let mut config = test_config();
    config.mounts.push(MountConfig {
        name: "/team.mp3".into(),
        p2psp: Some(P2pspConfig::Splitter(SplitterSettings {
            port: 0,
            bind_address: Some("127.0.0.1".into()),
            compat: false,
            ..Default::default()
        })),
        ..Default::default()
    });
    let srv = start(config).await;
    let splitter = splitter_addr(&srv, "/team.mp3").await.to_string();
    let mut src = source(srv.addr, "/team.mp3", "audio/mpeg", "").await;
    src.write_all(&mp3_frames(50)).await.unwrap();
    let link = PeerLink::join(&splitter, Codec::Native)
        .await
        .expect("join");
    let peers = |auth: &'static str| async move {
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let req = format!("GET /api/status HTTP/1.0\r\n{auth}\r\n");
            let (_, _, body) = status_of(srv.addr, &req).await;
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let peers = v["mounts"][0]["p2psp"]["peers"].clone();
            if peers.as_array().is_some_and(|p| !p.is_empty()) {
                return (peers, body);
            }
            assert!(tokio::time::Instant::now() < deadline, "no peers: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (anonymous, body) = peers("").await;
    assert!(anonymous[0]["endpoint"].is_null(), "{body}");
    assert!(anonymous[0]["id"].is_u64(), "{body}");
    let public = body;
    let (admin, body) = peers(ADMIN).await;
    let endpoint = admin[0]["endpoint"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(endpoint.starts_with("127.0.0.1:"), "{body}");
    assert!(
        !public.contains(&endpoint),
        "{endpoint} is public: {public}"
    );
    link.leave(Duration::from_secs(2)).await;
}
