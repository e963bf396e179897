//! Interop with the real icecast2 (Debian package) as the remote of a push relay: floecast
//! logs in as a source with PUT + `Expect: 100-continue` and with legacy SOURCE, ffmpeg
//! decodes what icecast2 then serves without an error, titles set on floecast show in
//! icecast2's `/status-json.xsl` and ICY stream, and a wrong password shows as a clear 401.
//! Skips (with `SKIP: ...` on stderr) when icecast2 or ffmpeg is missing.

mod common;
mod interop_support;

use std::time::Duration;

use common::*;
use floecast::config::{PushConfig, PushProtocol};
use floecast::relay::push::{PushPhase, PushState};
use floecast::server::Server;
use interop_support::{
    Icecast2, OGG_VORBIS_ARGS, Proc, TempDir, assert_decodes, assert_ogg_start, ffmpeg_source,
    header, mp3_args_named, raw_get, raw_get_ogg, wait_live,
};

const T: Duration = Duration::from_secs(15);

fn push(ice: &Icecast2, mount: &str, password: &str, protocol: PushProtocol) -> PushConfig {
    PushConfig {
        mount: mount.into(),
        server: "127.0.0.1".into(),
        port: ice.addr.port(),
        remote_mount: mount.into(),
        username: "source".into(),
        password: password.into(),
        protocol,
        bind: None,
        tls: Default::default(),
    }
}

fn push_state(server: &Server, mount: &str) -> std::sync::Arc<PushState> {
    server
        .tasks
        .pushes
        .list()
        .into_iter()
        .find(|p| p.config.mount == mount)
        .expect("push configured")
}

async fn wait_up(server: &Server, mount: &str, ice: &mut Icecast2) {
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
async fn title_reaches_icecast(a: &TestServer, ice: &Icecast2, mount: &str, title: &str) {
    let enc = title.replace(' ', "%20");
    set_title(a.addr, mount, &enc, SOURCE, T).await;
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let status = ice.status_json(T).await;
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
    let Some(mut ice) = Icecast2::start(test, "").await else {
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
        ffmpeg_source(a.addr, "/put.mp3", &mp3_args_named("pushed mp3")),
        tmp.join("src.log"),
    );
    let mut bad = Proc::spawn(
        "ffmpeg source",
        ffmpeg_source(a.addr, "/bad.mp3", &mp3_args_named("pushed mp3")),
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
    assert!(!ice.status_json(T).await.contains("/bad.mp3"));
}

/// Legacy SOURCE (forced): Ogg Vorbis and MP3 through floecast to icecast2. The Ogg listener
/// on icecast2 starts with the Vorbis header pages (floecast sent its header cache first)
/// and both decode cleanly; the MP3 title arrives.
#[tokio::test]
async fn floecast_pushes_ogg_and_mp3_to_icecast2_with_source() {
    let test = "floecast_pushes_ogg_and_mp3_to_icecast2_with_source";
    let Some(mut ice) = Icecast2::start(test, "").await else {
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
        ffmpeg_source(a.addr, "/legacy.ogg", OGG_VORBIS_ARGS),
        tmp.join("ogg.log"),
    );
    let mut mp3 = Proc::spawn(
        "ffmpeg mp3 source",
        ffmpeg_source(a.addr, "/legacy.mp3", &mp3_args_named("pushed mp3")),
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
