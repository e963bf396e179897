//! `/metrics` scraped while a source and listeners run: the values must match what happened.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::AsyncWriteExt;

const T: Duration = Duration::from_secs(3);

/// The value of the first sample line that starts with `series` (name plus labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn scrape(addr: std::net::SocketAddr) -> String {
    let r = exchange(addr, b"GET /metrics HTTP/1.0\r\n\r\n", T).await;
    let r = String::from_utf8_lossy(&r).into_owned();
    assert!(r.starts_with("HTTP/1.0 200 OK\r\n"), "{r}");
    assert!(r.contains("Content-Type: text/plain; version=0.0.4"), "{r}");
    r.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn metrics_follow_sources_listeners_and_requests() {
    let srv = start(test_config()).await;
    let mut src = source(srv.addr, "/m.mp3", "audio/mpeg", "").await;
    src.write_all(&mp3_frames(20)).await.unwrap();
    let mut l1 = connect(srv.addr).await;
    l1.write_all(b"GET /m.mp3 HTTP/1.0\r\n\r\n").await.unwrap();
    let mut l2 = connect(srv.addr).await;
    l2.write_all(b"GET /m.mp3 HTTP/1.0\r\n\r\n").await.unwrap();
    let got =
        read_at_least(&mut l1, 5000, T).await.len() + read_at_least(&mut l2, 5000, T).await.len();
    assert!(got >= 10_000);
    // A refused source and a 404 show up too.
    let _ = exchange(
        srv.addr,
        b"SOURCE /m.mp3 HTTP/1.0\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\n\r\n",
        T,
    )
    .await;
    let _ = exchange(srv.addr, b"GET /nothing HTTP/1.0\r\n\r\n", T).await;

    let m = scrape(srv.addr).await;
    assert_eq!(
        sample(&m, r#"floecast_listeners{mount="/m.mp3",transport="http"}"#),
        Some(2.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"floecast_source_connected{kind="push",mount="/m.mp3"}"#
        ),
        Some(1.0),
        "{m}"
    );
    let sent = sample(
        &m,
        r#"floecast_sent_bytes_total{mount="/m.mp3",transport="http"}"#,
    )
    .unwrap_or(0.0);
    assert!(sent >= 10_000.0, "sent {sent}");
    let received = sample(
        &m,
        r#"floecast_source_received_bytes_total{mount="/m.mp3"}"#,
    )
    .unwrap_or(0.0);
    assert!(received >= 19.0 * 417.0, "received {received}");
    assert_eq!(
        sample(
            &m,
            r#"floecast_listener_connections_total{mount="/m.mp3",outcome="accepted"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"floecast_source_connections_total{mount="/m.mp3",outcome="accepted",protocol="source"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"floecast_source_connections_total{mount="/m.mp3",outcome="rejected_busy",protocol="source"}"#
        ),
        Some(1.0)
    );
    assert!(
        m.contains(
            r#"floecast_mount_info{codec="MP3",content_type="audio/mpeg",mount="/m.mp3"} 1"#
        ),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"floecast_http_requests_total{code_class="4xx",method="GET",route="files"}"#
        ),
        Some(1.0),
        "{m}"
    );
    assert!(m.contains("floecast_build_info{git_sha="), "{m}");
    assert!(
        m.contains("process_cpu_seconds_total"),
        "process collector: {m}"
    );
    assert!(
        m.contains("# TYPE floecast_sent_bytes_total counter"),
        "{m}"
    );

    // A listener leaves: the gauge drops and the disconnect is counted with its reason.
    drop(l1);
    src.write_all(&mp3_frames(40)).await.unwrap();
    let mount = srv.app.server.registry.get("/m.mp3").unwrap();
    wait_for("listener gone", Duration::from_secs(5), || {
        mount.listener_count() == 1
    })
    .await;
    let m = scrape(srv.addr).await;
    assert_eq!(
        sample(&m, r#"floecast_listeners{mount="/m.mp3",transport="http"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"floecast_listener_disconnects_total{mount="/m.mp3",reason="client"}"#
        ),
        Some(1.0),
        "{m}"
    );
    // The source leaves: its series disappear.
    drop(src);
    wait_for("mount gone", T, || {
        !srv.app.server.registry.contains("/m.mp3")
    })
    .await;
    wait_for("last listener gone", T, || mount.listener_count() == 0).await;
    let m = scrape(srv.addr).await;
    assert_eq!(
        sample(&m, r#"floecast_listeners{mount="/m.mp3",transport="http"}"#),
        None
    );
    assert_eq!(
        sample(
            &m,
            r#"floecast_listener_disconnects_total{mount="/m.mp3",reason="source_gone"}"#
        ),
        Some(1.0),
        "{m}"
    );
}
