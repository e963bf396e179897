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
use std::time::Duration;

use common::*;
use floecast::config::{MasterConfig, RelayConfig, RelayTiming};
use interop_support::{
    Icecast2, MP3_ARGS, OGG_VORBIS_SHORT_PAGE_ARGS, Proc, TempDir, assert_decodes,
    assert_ogg_start, ffmpeg_source, icecast2_available, raw_get_ogg,
};
use tokio::io::AsyncWriteExt;

const T: Duration = Duration::from_secs(20);
/// How long an admin request may take.
const T5: Duration = Duration::from_secs(5);

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
        tls: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn icecast2_to_floecast_relay_master_and_on_demand() {
    let Some(ice) = Icecast2::start("icecast2_to_floecast_relay_master_and_on_demand", "").await
    else {
        return;
    };
    let tmp = TempDir::new("ice-up-src");
    let mut ff = ice
        .feed("/live.mp3", MP3_ARGS, tmp.join("ffmpeg.log"), T)
        .await;
    // An Ogg Vorbis mount too: master relay-all must carry its headers and pages.
    let _ff_ogg = ice
        .feed(
            "/live.ogg",
            OGG_VORBIS_SHORT_PAGE_ARGS,
            tmp.join("ffmpeg-ogg.log"),
            T,
        )
        .await;

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
        tls: Default::default(),
    });
    let fc = start(c).await;
    for m in ["/relayed.mp3", "/live.mp3", "/live.ogg"] {
        wait_for(&format!("{m} relayed from icecast2"), T, || {
            fc.app
                .server
                .tasks
                .relays
                .get(m)
                .is_some_and(|r| r.state().name() == "up")
        })
        .await;
    }
    // icecast2 sees only the two always-on relays as listeners (the probe that found the
    // mount leaves once icecast2 notices it closed).
    ice.wait_listeners("/live.mp3", 2, T).await;

    set_title(ice.addr, "/live.mp3", "From%20Icecast2%20%C3%A9", ADMIN, T5).await;
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
    ice.wait_listeners("/live.mp3", 3, T).await;
    drop(l);
    ice.wait_listeners("/live.mp3", 2, T).await;
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
    if !icecast2_available("floecast_to_icecast2_relay_and_master") {
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
    set_title(fc.addr, "/live.mp3", "First%20Title", ADMIN, T5).await;

    let port = fc.addr.port();
    let extra = format!(
        "<relay><server>127.0.0.1</server><port>{port}</port><mount>/live.mp3</mount>\
         <local-mount>/relayed.mp3</local-mount><relay-shoutcast-metadata>1</relay-shoutcast-metadata></relay>\
         <master-server>127.0.0.1</master-server><master-server-port>{port}</master-server-port>\
         <master-username>relay</master-username><master-password>hackme</master-password>\
         <master-update-interval>2</master-update-interval>"
    );
    let Some(ice) = Icecast2::start("floecast_to_icecast2_relay_and_master", &extra).await else {
        return;
    };
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

    set_title(fc.addr, "/live.mp3", "Floecast%20To%20Icecast2", ADMIN, T5).await;
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
    let Some(ice) = Icecast2::start("floecast_listeners_survive_an_icecast2_restart", "").await
    else {
        return;
    };
    let port = ice.addr.port();
    let tmp = TempDir::new("ice-restart-src");
    let ff = ice
        .feed("/live.mp3", MP3_ARGS, tmp.join("ffmpeg.log"), T)
        .await;
    let mut c = test_config();
    c.relays.push(relay_to(ice.addr, "/live.mp3", "/live.mp3"));
    let fc = start(c).await;
    let status = loop {
        if let Some(r) = fc
            .app
            .server
            .tasks
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
    let ice = Icecast2::start_on("floecast_listeners_survive_an_icecast2_restart", "", port)
        .await
        .expect("icecast2 started here before");
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
