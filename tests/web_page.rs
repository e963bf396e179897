//! The live status page: `/api/events` streams the status document, and in headless
//! Chromium the page shows a mount and its listener count that appear after it loaded,
//! without a reload.

mod common;
mod interop_support;

use std::time::Duration;

use common::*;
use tokio::io::AsyncWriteExt;

const T: Duration = Duration::from_secs(5);

#[tokio::test]
async fn events_stream_the_status_document() {
    let srv = start(test_config()).await;
    let _src = source(srv.addr, "/ev.mp3", "audio/mpeg", "ice-name: Events\r\n").await;
    let mut s = connect(srv.addr).await;
    s.write_all(b"GET /api/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .unwrap();
    let (head, mut body) = read_head(&mut s, T).await;
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{head}"
    );
    // The first event comes at once; a second one a second later.
    let deadline = tokio::time::Instant::now() + T;
    let text = loop {
        let t = String::from_utf8_lossy(&body).into_owned();
        if t.matches("\n\n").count() >= 2 || tokio::time::Instant::now() > deadline {
            break t;
        }
        body.extend(read_at_least(&mut s, 1, Duration::from_millis(500)).await);
    };
    let first = text.split("\n\n").find_map(|e| {
        e.strip_prefix("data: ")
            .or_else(|| e.split("\ndata: ").nth(1))
    });
    let json: serde_json::Value = serde_json::from_str(first.expect("a data line")).expect("JSON");
    assert!(
        json["server"]["id"]
            .as_str()
            .is_some_and(|s| s.contains("floecast")),
        "{json}"
    );
    assert_eq!(json["mounts"][0]["mount"], "/ev.mp3");
    assert_eq!(json["mounts"][0]["name"], "Events");
    assert!(
        text.matches("data: ").count() >= 2,
        "events keep coming: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_shows_a_new_mount_and_its_listeners_without_a_reload() {
    if !have("chromium") {
        eprintln!(
            "SKIP: chromium not installed (page_shows_a_new_mount_and_its_listeners_without_a_reload)"
        );
        return;
    }
    let srv = start(test_config()).await;
    let profile = std::env::temp_dir().join(format!("floecast-chromium-{}", std::process::id()));
    // The page stops listening after 6 updates (about 6 s) so headless Chromium can dump it.
    let url = format!("http://{}/?updates=6", srv.addr);
    let browser = interop_support::chromium_dump_dom(&profile, 15_000, &["--disable-quic"], &url)
        .spawn()
        .expect("chromium");
    // The page is open and shows no mount yet; now a source and two listeners arrive.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut src = source(
        srv.addr,
        "/live.mp3",
        "audio/mpeg",
        "ice-name: Browser Test\r\n",
    )
    .await;
    src.write_all(&mp3_frames(50)).await.unwrap();
    let mut l1 = connect(srv.addr).await;
    l1.write_all(b"GET /live.mp3 HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut l2 = connect(srv.addr).await;
    l2.write_all(b"GET /live.mp3 HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(40), browser.wait_with_output())
        .await
        .expect("chromium finished")
        .expect("chromium ran");
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("data-updates=\"6\""),
        "the page did not get its live updates: {dom}"
    );
    assert!(
        dom.contains("data-mount=\"/live.mp3\""),
        "the new mount never appeared: {dom}"
    );
    assert!(dom.contains("Browser Test"), "{dom}");
    assert!(
        dom.contains("class=\"listeners\">2<"),
        "listener count: {dom}"
    );
    assert!(dom.contains("<audio"), "play button: {dom}");
    drop((l1, l2));
}
