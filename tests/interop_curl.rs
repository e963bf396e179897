//! Interop with the real curl (spec §7 items 16, 26-28; wire-captures §2 "curl PUT", §4):
//! curl as a listener sees icecast's exact response head, and curl as a source uploads with
//! `Transfer-Encoding: chunked`, which the server must de-chunk so listeners get the original
//! bytes. Each test skips (with `SKIP: ...` on stderr) if a program is missing.

mod common;
mod interop_support;

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use interop_support::{Proc, TempDir, find, have_all, make_tone, raw_get, run, wait_live};
use tokio::io::AsyncWriteExt;

/// Feed synthetic MP3 frames to `/c.mp3` from an in-process SOURCE client until dropped.
async fn frame_feeder(addr: std::net::SocketAddr) -> tokio::task::JoinHandle<()> {
    let mut s = common::source(addr, "/c.mp3", "audio/mpeg", "ice-name: curl test\r\n").await;
    tokio::spawn(async move {
        // 128 kbit/s is 16 kB/s: 10 frames (~4.2 kB) every 250 ms keeps the mount fed.
        loop {
            if s.write_all(&common::mp3_frames(10)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
}

/// `curl -s -D - -o /dev/null --max-time 2 [extra] URL`; returns the dumped head.
async fn curl_head(url: &str, extra: &[&str]) -> String {
    let mut c = Command::new("curl");
    c.args(["-s", "-D", "-", "-o", "/dev/null", "--max-time", "2"])
        .args(extra)
        .arg(url);
    let out = run(c, Duration::from_secs(10)).await;
    // The stream never ends, so curl stops at --max-time (exit 28); anything else is wrong.
    assert_eq!(
        out.status.and_then(|s| s.code()),
        Some(28),
        "curl should run until --max-time: {}",
        out.describe()
    );
    out.stdout_text()
}

fn has_header(head: &str, name: &str) -> bool {
    interop_support::header(head, name).is_some()
}

/// curl as a listener: `HTTP/1.0 200 OK`, the source's Content-Type, no length or chunking,
/// `icy-metaint:16000` only when asked for, and `Range: bytes=0-` is answered with the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_listener_headers() {
    if !have_all("curl_listener_headers", &["curl"]) {
        return;
    }
    let srv = common::start(common::test_config()).await;
    let feeder = frame_feeder(srv.addr).await;
    common::wait_for("/c.mp3 live", Duration::from_secs(5), || {
        srv.app.server.registry.get("/c.mp3").is_some()
    })
    .await;
    let url = format!("http://{}/c.mp3", srv.addr);

    let head = curl_head(&url, &[]).await;
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "head: {head}");
    assert_eq!(
        interop_support::header(&head, "content-type"),
        Some("audio/mpeg"),
        "head: {head}"
    );
    assert!(!has_header(&head, "content-length"), "head: {head}");
    assert!(!has_header(&head, "transfer-encoding"), "head: {head}");
    assert!(!has_header(&head, "icy-metaint"), "head: {head}");
    assert!(head.contains("\r\nicy-name:curl test\r\n"), "head: {head}");

    let head = curl_head(&url, &["-H", "Icy-MetaData: 1"]).await;
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "head: {head}");
    assert!(head.contains("\r\nicy-metaint:16000\r\n"), "head: {head}");

    // ICY blocks through curl: set a title with curl, then read a metadata-enabled body.
    let mut set = Command::new("curl");
    set.args(["-s", "--max-time", "5"]).arg(format!(
        "http://source:hackme@{}/admin/metadata?mount=/c.mp3&mode=updinfo&song=Curl%20Title",
        srv.addr
    ));
    let reply = run(set, Duration::from_secs(10)).await;
    assert!(
        reply
            .stdout_text()
            .contains("<message>Metadata update successful</message>"),
        "metadata update: {}",
        reply.describe()
    );
    let mount = srv.app.server.registry.get("/c.mp3").expect("mount");
    common::wait_for("20 kB queued", Duration::from_secs(10), || {
        mount.queued_bytes() > 20_000
    })
    .await;
    let body_file = std::env::temp_dir().join(format!("floecast-curl-icy-{}", std::process::id()));
    let mut get = Command::new("curl");
    get.args(["-s", "--max-time", "2", "-H", "Icy-MetaData: 1", "-o"])
        .arg(&body_file)
        .arg(&url);
    let _ = run(get, Duration::from_secs(10)).await;
    let body = std::fs::read(&body_file).expect("curl body");
    let _ = std::fs::remove_file(&body_file);
    assert!(body.len() > 16_100, "curl got only {} bytes", body.len());
    // After exactly 16000 audio bytes: the length byte, then the padded title block.
    let len = body[16_000] as usize * 16;
    let block = &body[16_001..16_001 + len];
    assert!(
        block.starts_with(b"StreamTitle='Curl Title';") && block.ends_with(&[0]),
        "ICY block: {:?}",
        String::from_utf8_lossy(block)
    );

    // Range is ignored on a live mount: 200 (not 206/416) and the stream itself.
    let head = curl_head(&url, &["-r", "0-"]).await;
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "head: {head}");
    assert!(!has_header(&head, "content-range"), "head: {head}");

    feeder.abort();
}

/// curl as a source: `curl -T -` sends a chunked PUT with `Expect: 100-continue`. A listener
/// must receive the original MP3 bytes as one contiguous slice: no chunk-size lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_chunked_put_source() {
    if !have_all("curl_chunked_put_source", &["curl", "ffmpeg"]) {
        return;
    }
    let tmp = TempDir::new("curlput");
    let media = tmp.join("tone.mp3");
    make_tone(&media, 20, &["-c:a", "libmp3lame", "-b:a", "128k"]).await;
    let original = std::fs::read(&media).expect("read tone.mp3");
    assert!(
        original.len() > 200_000,
        "tone.mp3 is only {} bytes",
        original.len()
    );

    let srv = common::start(common::test_config()).await;
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "-T",
        "-",
        "-H",
        "Content-Type: audio/mpeg",
        "-H",
        "Ice-Name: curl put",
        &format!("http://source:hackme@{}/curl.mp3", srv.addr),
    ]);
    let mut curl = Proc::spawn_piped("curl source", cmd, tmp.join("curl.log"));
    let stdin = curl.take_stdin();

    // Write from a thread at ~10x real time (16 KiB every 100 ms), in uneven pieces so curl
    // makes chunks of many sizes; keep the pipe open until told to close it.
    let (close_tx, close_rx) = std::sync::mpsc::channel::<()>();
    let data = original.clone();
    let writer = std::thread::spawn(move || {
        let mut stdin = stdin;
        let mut at = 0;
        let mut k = 0usize;
        while at < data.len() {
            let n = [1000, 7000, 3333, 4771][k % 4].min(data.len() - at);
            if stdin.write_all(&data[at..at + n]).is_err() {
                return;
            }
            let _ = stdin.flush();
            at += n;
            k += 1;
            std::thread::sleep(Duration::from_millis(25));
        }
        // Wait (bounded) for the test to have read; then EOF ends the chunked upload.
        let _ = close_rx.recv_timeout(Duration::from_secs(30));
    });

    wait_live(
        &srv.app.server,
        "/curl.mp3",
        &mut curl,
        Duration::from_secs(10),
    )
    .await;
    let (head, body) = raw_get(
        srv.addr,
        "/curl.mp3",
        "",
        96 * 1024,
        Duration::from_secs(20),
    )
    .await;
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "head: {head}");
    assert!(head.contains("\r\nicy-name:curl put\r\n"), "head: {head}");
    assert!(
        body.len() >= 96 * 1024,
        "listener got only {} bytes",
        body.len()
    );

    // A 4 KiB window of the body appears verbatim in the file, and so does the whole body
    // from there on (chunk-size lines anywhere would break the match).
    let window = &body[..4096];
    let pos = find(&original, window).unwrap_or_else(|| {
        panic!(
            "the listener's first 4 KiB are not in the uploaded file (chunk framing leaked?): {:?}",
            String::from_utf8_lossy(&body[..64])
        )
    });
    let end = (pos + body.len()).min(original.len());
    let mismatch = body
        .iter()
        .zip(&original[pos..end])
        .position(|(a, b)| a != b);
    assert_eq!(
        mismatch,
        None,
        "listener body diverges from the uploaded file at body offset {:?} (file offset {pos}+): {:?}",
        mismatch,
        mismatch.map(|m| String::from_utf8_lossy(&body[m..(m + 16).min(body.len())]).into_owned())
    );

    // Closing curl's stdin ends the upload (0-size chunk): curl finishes and the mount goes,
    // at once (not after the 10 s source timeout).
    let _ = close_tx.send(());
    writer.join().expect("writer thread");
    let status = curl.wait_exit(Duration::from_secs(3)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "curl did not finish cleanly after EOF ({status:?}): {}",
        curl.log_text()
    );
    interop_support::wait_gone(&srv.app.server, "/curl.mp3", Duration::from_secs(2)).await;
}
