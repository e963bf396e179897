//! Real clients against listener authentication and the STATS method: ffmpeg and curl as
//! authenticated listeners (`http://user:pass@…`, `curl -u`), refused with a wrong password,
//! and `curl -X STATS` reading the event stream. Skips (with `SKIP: ...`) if a program is
//! missing.

mod common;
mod interop_support;

use std::process::Command;
use std::time::Duration;

use floecast::config::{ListenerAuth, MountConfig};
use interop_support::{
    MP3_ARGS, TempDir, assert_decodes, ffmpeg_decode, ffmpeg_source_live, have_all, run,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_and_curl_as_authenticated_listeners() {
    if !have_all(
        "ffmpeg_and_curl_as_authenticated_listeners",
        &["ffmpeg", "curl"],
    ) {
        return;
    }
    let tmp = TempDir::new("auth");
    let users = tmp.join("users.htpasswd");
    // alice:secret, in icecast's md5hex format.
    std::fs::write(&users, "alice:5ebe2294ecd0e0f08eab7690d2a6ee69\n").unwrap();
    let mut config = common::test_config();
    config.mounts.push(MountConfig {
        name: "/auth.mp3".into(),
        authentication: Some(ListenerAuth::htpasswd(users.clone(), true)),
        ..Default::default()
    });
    let srv = common::start(config).await;
    let _source = ffmpeg_source_live(&srv, "/auth.mp3", MP3_ARGS, tmp.join("source.log")).await;

    // ffmpeg sends the URL's credentials as Basic auth.
    assert_decodes(&format!("http://alice:secret@{}/auth.mp3", srv.addr), 2).await;
    let bad = ffmpeg_decode(&format!("http://alice:nope@{}/auth.mp3", srv.addr), 1).await;
    assert!(
        !bad.success(),
        "a wrong password must fail: {}",
        bad.describe()
    );
    assert!(bad.stderr_text().contains("401"), "{}", bad.describe());

    let url = format!("http://{}/auth.mp3", srv.addr);
    let curl = |extra: &[&str]| {
        let mut c = Command::new("curl");
        c.args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_download}",
            "-m",
            "2",
        ])
        .args(extra)
        .arg(&url);
        c
    };
    let out = run(curl(&["-u", "alice:secret"]), Duration::from_secs(10)).await;
    let text = out.stdout_text();
    let (code, size) = text.split_once(' ').unwrap_or(("", "0"));
    assert_eq!(code, "200", "{}", out.describe());
    assert!(
        size.parse::<u64>().unwrap_or(0) > 10_000,
        "{}",
        out.describe()
    );
    let out = run(curl(&[]), Duration::from_secs(10)).await;
    assert!(out.stdout_text().starts_with("401 "), "{}", out.describe());

    // curl speaks the STATS method too; it gets the dump, then the stream stays open.
    let mut c = Command::new("curl");
    c.args(["-s", "-m", "2", "-X", "STATS", "-u", "admin:hackme"])
        .arg(format!("http://{}/admin/stats", srv.addr));
    let out = run(c, Duration::from_secs(10)).await;
    let events = out.stdout_text();
    assert!(
        events.starts_with("EVENT global admin icemaster@localhost\n"),
        "{}",
        out.describe()
    );
    assert!(
        events.contains("EVENT /auth.mp3 authenticator htpasswd\n"),
        "{events}"
    );
}
