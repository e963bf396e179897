//! TLS on floecast's own sockets, end to end: certificates made by the `openssl` command
//! for each test (a test CA and leaves for `a.test` and `b.test`), served on the same port as
//! plain HTTP, and used by real clients: curl (listener, admin, status, metrics, SNI, ALPN),
//! ffmpeg, libshout and liquidsoap sources, headless Chromium on an https:// page, and a
//! rustls client that watches the certificate change under a streaming listener.

mod common;
mod interop_support;
mod tls_support;

use std::process::Command;
use std::time::Duration;

use floecast::config::{CertificateFiles, Config, ListenSocket, TlsMode};
use interop_support::{Proc, have_all, run, wait_live};
use tls_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn curl_over_tls_and_plain_http_on_one_port() {
    if !have_all("curl_over_tls", &["curl", "openssl"]) {
        return;
    }
    let pki = Pki::new("tls-curl");
    let srv = common::start(tls_config(vec![pki.files("a"), pki.files("b")])).await;
    let port = srv.addr.port();
    let feeder = frame_feeder(srv.addr, "/live").await;

    // SNI picks the certificate: curl verifies the host name against the CA-signed leaf, so
    // each succeeds only with its own certificate. ALPN settles on http/1.1.
    for host in ["a.test", "b.test"] {
        let (code, out, err) = curl(&pki, host, port, &["-v"], "/status-json.xsl").await;
        assert_eq!(code, 0, "curl https://{host}: {err}");
        assert!(
            err.contains(&format!("CN={host}")),
            "{host} got another certificate: {err}"
        );
        assert!(err.contains("ALPN: server accepted http/1.1"), "{err}");
        assert!(
            out.contains(&format!("\"listenurl\":\"https://localhost:{port}/live\"")),
            "listen URL over TLS: {out}"
        );
    }
    // Plain HTTP on the same port still works, with http:// URLs.
    let (status, _, body) = common::split_reply(
        &common::exchange(
            srv.addr,
            b"GET /status-json.xsl HTTP/1.0\r\n\r\n",
            Duration::from_secs(5),
        )
        .await,
    );
    assert_eq!(status, 200);
    assert!(
        body.contains(&format!("\"listenurl\":\"http://localhost:{port}/live\"")),
        "{body}"
    );

    // A listener over TLS gets the stream: MP3 frames, after icecast's head.
    let (code, out, err) = curl(
        &pki,
        "a.test",
        port,
        &["-i", "--max-time", "2", "-o", "-"],
        "/live",
    )
    .await;
    assert_eq!(code, 28, "the stream runs until --max-time: {err}");
    assert!(
        out.starts_with("HTTP/1.0 200 OK\r\n"),
        "{}",
        &out[..out.len().min(200)]
    );
    // Admin, metrics, the playlist and /api/status, all over TLS.
    let (code, out, err) = curl(
        &pki,
        "a.test",
        port,
        &["-u", "admin:hackme"],
        "/admin/stats",
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "<listenurl>https://localhost:{port}/live</listenurl>"
        )),
        "{out}"
    );
    let (code, out, err) = curl(
        &pki,
        "a.test",
        port,
        &["-u", "admin:hackme"],
        "/admin/buildm3u?mount=/live&username=u&password=p",
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("https://u:p@localhost:{port}/live"));
    let (code, out, err) = curl(&pki, "a.test", port, &[], "/metrics").await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("floecast_"), "{out}");
    let (code, out, _) = curl(&pki, "a.test", port, &[], "/live.m3u").await;
    assert_eq!(
        (code, out.trim()),
        (0, &*format!("https://a.test:{port}/live"))
    );
    let (code, out, _) = curl(&pki, "b.test", port, &[], "/api/status").await;
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("https://localhost:{port}/live")),
        "{out}"
    );
    feeder.abort();
}

#[tokio::test]
async fn a_tls_only_socket_refuses_plain_http() {
    if !have_all("tls_required", &["curl", "openssl"]) {
        return;
    }
    let pki = Pki::new("tls-required");
    let mut config = tls_config(vec![pki.files("a")]);
    config.listen.push(ListenSocket {
        port: 0,
        bind_address: Some("127.0.0.1".into()),
        shoutcast_mount: None,
        tls: TlsMode::Required,
    });
    let srv = common::start(config).await;
    let tls_only = srv.app.http_addrs[1];
    let reply = common::exchange(
        tls_only,
        b"GET /status-json.xsl HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    let (status, _, body) = common::split_reply(&reply);
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&reply));
    assert!(body.contains("https://"), "{body}");
    let (code, out, err) = curl(&pki, "a.test", tls_only.port(), &[], "/status-json.xsl").await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("icestats"), "{out}");
}

#[tokio::test]
async fn a_certificate_swapped_on_disk_serves_new_connections_only() {
    if !have_all("tls_swap", &["openssl"]) {
        return;
    }
    let pki = Pki::new("tls-swap");
    // The server's files: copies that the test replaces.
    let live = CertificateFiles {
        certificate: pki.path("live.pem"),
        private_key: Some(pki.path("live.key")),
    };
    std::fs::copy(pki.path("a.pem"), pki.path("live.pem")).expect("copy");
    std::fs::copy(pki.path("a.key"), pki.path("live.key")).expect("copy");
    let srv = common::start(tls_config(vec![live])).await;
    let feeder = frame_feeder(srv.addr, "/live").await;

    let (mut listener, leaf) = tls_connect(&pki, srv.addr).await;
    assert_eq!(leaf, pki.der("a"));
    listener
        .write_all(b"GET /live HTTP/1.0\r\nUser-Agent: tls-test\r\n\r\n")
        .await
        .expect("request");
    assert!(read_for(&mut listener, Duration::from_millis(800)).await > 0);

    // A new certificate for the same name, written as a renewal does: key, then chain.
    pki.leaf("a.test", "renewed");
    std::fs::copy(pki.path("renewed.key"), pki.path("live.key")).expect("copy");
    std::fs::copy(pki.path("renewed.pem"), pki.path("live.pem")).expect("copy");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    loop {
        let (_, leaf) = tls_connect(&pki, srv.addr).await;
        if leaf == pki.der("renewed") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate was not picked up"
        );
        // The listener keeps streaming meanwhile.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let streamed = read_for(&mut listener, Duration::from_millis(1500)).await;
    assert!(
        streamed > 10_000,
        "the TLS listener stalled after the swap: {streamed} bytes"
    );

    // A broken file (a key that does not fit the chain) is refused: the renewed one stays.
    std::fs::copy(pki.path("b.key"), pki.path("live.key")).expect("copy");
    tokio::time::sleep(floecast::tls::WATCH_INTERVAL * 2).await;
    let (_, leaf) = tls_connect(&pki, srv.addr).await;
    assert_eq!(
        leaf,
        pki.der("renewed"),
        "a mismatched key must not replace the running certificate"
    );
    // Garbage in place of the chain, too.
    std::fs::write(pki.path("live.pem"), b"not a certificate\n").expect("write");
    tokio::time::sleep(floecast::tls::WATCH_INTERVAL * 2).await;
    let (_, leaf) = tls_connect(&pki, srv.addr).await;
    assert_eq!(leaf, pki.der("renewed"));
    assert!(read_for(&mut listener, Duration::from_millis(1000)).await > 5_000);
    feeder.abort();
}

#[tokio::test]
async fn reload_reads_certificates_again() {
    if !have_all("tls_reload", &["openssl"]) {
        return;
    }
    let pki = Pki::new("tls-reload");
    let port = common::free_port();
    let toml = |file: &str| {
        format!(
            "[[listen]]\nport = {port}\nbind-address = \"127.0.0.1\"\n[[tls]]\ncertificate = {:?}\nprivate-key = {:?}\n",
            pki.path(&format!("{file}.pem")),
            pki.path(&format!("{file}.key"))
        )
    };
    let config_path = pki.path("floecast.toml");
    std::fs::write(&config_path, toml("a")).expect("write config");
    let config = Config::load(&config_path).expect("config");
    let app = floecast::app::App::start(config, Some(config_path.clone())).expect("start");
    let addr = app.http_addrs[0];
    assert_eq!(tls_connect(&pki, addr).await.1, pki.der("a"));
    // The config now names b's files (valid for a.test? no: the client asks for a.test, and
    // the only certificate is the default, so it gets b's) after a reload (SIGHUP's path).
    std::fs::write(&config_path, toml("b")).expect("write config");
    app.reload().expect("reload");
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = rustls_pki_types::ServerName::try_from("b.test").expect("name");
    let s = client(&pki).connect(name, tcp).await.expect("handshake");
    assert_eq!(
        s.get_ref().1.peer_certificates().expect("certs")[0].to_vec(),
        pki.der("b")
    );
    // A reload naming a file that does not exist keeps the running certificate.
    std::fs::write(&config_path, toml("missing")).expect("write config");
    app.reload().expect("the config itself is fine");
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = rustls_pki_types::ServerName::try_from("b.test").expect("name");
    let s = client(&pki).connect(name, tcp).await.expect("handshake");
    assert_eq!(
        s.get_ref().1.peer_certificates().expect("certs")[0].to_vec(),
        pki.der("b")
    );
    app.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn ffmpeg_tls_source_decoded_by_a_tls_listener() {
    if !have_all("ffmpeg_tls", &["ffmpeg", "openssl"]) {
        return;
    }
    let pki = Pki::new("tls-ffmpeg");
    // TLS only on this socket, so the source and the listener cannot have come in plain.
    let mut config = tls_config(vec![pki.files("a")]);
    config.listen[0].tls = TlsMode::Required;
    let srv = common::start(config).await;
    let port = srv.addr.port();
    let codec: Vec<&str> = [interop_support::MP3_ARGS, &["-tls", "1"]].concat();
    let mut source = Proc::spawn(
        "ffmpeg TLS source",
        interop_support::ffmpeg_source(srv.addr, "/tls.mp3", &codec),
        pki.path("source.log"),
    );
    wait_live(
        &srv.app.server,
        "/tls.mp3",
        &mut source,
        Duration::from_secs(15),
    )
    .await;
    let ca = pki.path("ca.pem");
    let listen = format!("https://127.0.0.1:{port}/tls.mp3");
    let out = run(
        interop_support::ffmpeg(&[
            "-v",
            "error",
            "-ca_file",
            ca.to_str().expect("utf-8"),
            "-tls_verify",
            "1",
            "-i",
            &listen,
            "-t",
            "3",
            "-f",
            "null",
            "-",
        ]),
        Duration::from_secs(25),
    )
    .await;
    assert!(
        out.success() && out.stderr.is_empty(),
        "ffmpeg did not decode the TLS stream cleanly: {}",
        out.describe()
    );
    source.assert_running();
}

/// The page Chromium opens over https://: it plays the stream from the same server and
/// reports its state twice a second as requests to that server (in the path: the access log
/// leaves queries out), which land in its access log (a report to a plain http:// server
/// would be blocked as mixed content).
const HTTPS_PLAYER: &str = r#"<!doctype html><html><body>
<audio id="m" autoplay muted src="/live.mp3"></audio>
<script>
const m = document.getElementById('m');
const log = []; let start = null;
m.addEventListener('error', () => log.push('ERROR ' + (m.error ? m.error.code : '?')));
m.addEventListener('playing', () => { if (start === null) start = m.currentTime; log.push('playing'); });
m.play().catch(e => log.push('rejected'));
setInterval(() => {
  const played = start === null ? 0 : m.currentTime - start;
  const text = 'played=' + played.toFixed(2) + '_secure=' + window.isSecureContext + '_' + log.join('_');
  fetch('/report/' + encodeURIComponent(text)).catch(() => {});
}, 500);
</script></body></html>
"#;

#[tokio::test]
async fn chromium_plays_a_stream_from_an_https_page() {
    if !have_all("tls_chromium", &["chromium", "ffmpeg", "openssl"]) {
        return;
    }
    let pki = Pki::new("tls-chromium");
    let web = pki.path("web");
    std::fs::create_dir_all(&web).expect("webroot");
    std::fs::write(web.join("player.html"), HTTPS_PLAYER).expect("page");
    let mut config = tls_config(vec![pki.files("a")]);
    config.paths.webroot = Some(web);
    config.logging.access_log = Some(pki.path("access.log"));
    let srv = common::start(config).await;
    let _source = interop_support::ffmpeg_source_live(
        &srv,
        "/live.mp3",
        interop_support::MP3_ARGS,
        pki.path("source.log"),
    )
    .await;
    // Chromium trusts the test certificate by its key's hash, for this run only.
    let spki = {
        let out = Command::new("sh")
            .arg("-c")
            .arg(
                "openssl x509 -in a.pem -pubkey -noout | openssl pkey -pubin -outform der \
                 | openssl dgst -sha256 -binary | openssl base64 -A",
            )
            .current_dir(pki.dir.path())
            .output()
            .expect("spki hash");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let mut browser = tokio::process::Command::new("chromium");
    browser
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
        ])
        .args([
            "--autoplay-policy=no-user-gesture-required",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
        ])
        .arg(format!("--ignore-certificate-errors-spki-list={spki}"))
        .arg("--host-resolver-rules=MAP a.test 127.0.0.1")
        .arg(format!("--user-data-dir={}", pki.path("profile").display()))
        .arg(format!("https://a.test:{}/player.html", srv.addr.port()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = browser.spawn().expect("chromium starts");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    let played = |line: &str| -> f64 {
        line.split("played%3D")
            .nth(1)
            .and_then(|s| s.split('_').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0)
    };
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let log = std::fs::read_to_string(pki.path("access.log")).unwrap_or_default();
        if let Some(l) = log.lines().rev().find(|l| l.contains("GET /report/")) {
            last = l.to_string();
        }
        if last.contains("ERROR") || played(&last) >= 2.5 {
            break;
        }
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
    assert!(
        !last.is_empty(),
        "the https page never reported (certificate not trusted?); access log:\n{}\nchromium:\n{}",
        std::fs::read_to_string(pki.path("access.log")).unwrap_or_default(),
        std::fs::read_to_string(pki.path("chromium.log")).unwrap_or_default()
    );
    assert!(
        last.contains("secure%3Dtrue"),
        "not a secure context: {last}"
    );
    assert!(
        !last.contains("ERROR") && played(&last) >= 2.0,
        "<audio> over https: {last}"
    );
}

#[tokio::test]
async fn libshout_sends_over_tls() {
    if !have_all("tls_shout", &["shout", "ffmpeg", "openssl"]) {
        return;
    }
    let pki = Pki::new("tls-shout");
    let srv = tls_only_server(&pki).await;
    let media = pki.path("tone.ogg");
    interop_support::make_tone(&media, 20, &["-c:a", "libvorbis"]).await;
    let mut cmd = Command::new("shout");
    cmd.args(["--format", "ogg", "-H", "localhost", "-P"])
        .arg(srv.addr.port().to_string())
        .args([
            "--mount",
            "/shout.ogg",
            "--user",
            "source",
            "--pass",
            "hackme",
        ])
        // TLS from the first byte (HTTPS), verified against the test CA.
        .args(["--tls-mode", "rfc2818"])
        .env("SSL_CERT_FILE", pki.path("ca.pem"));
    let file = std::fs::File::open(&media).expect("open tone.ogg");
    let mut shout = Proc::spawn_with(
        "shout",
        cmd,
        pki.path("shout.log"),
        std::process::Stdio::from(file),
    );
    wait_live(
        &srv.app.server,
        "/shout.ogg",
        &mut shout,
        Duration::from_secs(15),
    )
    .await;
    let (mut s, _) = tls_connect(&pki, srv.addr).await;
    s.write_all(b"GET /shout.ogg HTTP/1.0\r\n\r\n")
        .await
        .expect("request");
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut buf = vec![0u8; 16384];
    while got.len() < 4096 {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let body = interop_support::find(&got, b"OggS")
        .map(|i| &got[i..])
        .unwrap_or(&[]);
    assert!(
        body.len() > 1000,
        "an Ogg stream from libshout over TLS: {} bytes",
        got.len()
    );
    shout.assert_running();
}

#[tokio::test]
async fn liquidsoap_sends_over_https() {
    let Some(mut cmd) = interop_support::unprivileged("tls_liquidsoap", "liquidsoap") else {
        return;
    };
    if !have_all("tls_liquidsoap", &["openssl"]) {
        return;
    }
    let pki = Pki::new("tls-liquidsoap");
    let srv = tls_only_server(&pki).await;
    let script = pki.path("source.liq");
    std::fs::write(
        &script,
        format!(
            "settings.log.stdout.set(true)\nsettings.log.file.set(false)\n\
             output.icecast(%mp3(bitrate=128), host=\"localhost\", port={}, password=\"hackme\", \
             mount=\"/liq.mp3\", protocol=\"https\", sine())\n",
            srv.addr.port()
        ),
    )
    .expect("script");
    cmd.arg(&script)
        .env("HOME", "/tmp")
        .env("SSL_CERT_FILE", pki.path("ca.pem"));
    let mut liq = Proc::spawn("liquidsoap", cmd, pki.path("liquidsoap.log"));
    wait_live(
        &srv.app.server,
        "/liq.mp3",
        &mut liq,
        Duration::from_secs(20),
    )
    .await;
    let (mut s, _) = tls_connect(&pki, srv.addr).await;
    s.write_all(b"GET /liq.mp3 HTTP/1.0\r\n\r\n")
        .await
        .expect("request");
    assert!(read_for(&mut s, Duration::from_millis(2000)).await > 8_000);
    liq.assert_running();
}

#[tokio::test]
async fn a_stalled_or_bogus_handshake_is_closed() {
    if !have_all("tls_slowloris", &["openssl"]) {
        return;
    }
    let pki = Pki::new("tls-slowloris");
    let mut config = tls_config(vec![pki.files("a")]);
    config.limits.header_timeout = Duration::from_secs(1);
    let srv = common::start(config).await;
    // The first bytes of a ClientHello record, then nothing: closed at the header timeout.
    let mut s = TcpStream::connect(srv.addr).await.expect("connect");
    s.write_all(&[0x16, 0x03, 0x01, 0x02]).await.expect("write");
    let started = tokio::time::Instant::now();
    let got = common::read_until_close(&mut s, Duration::from_secs(5)).await;
    let waited = started.elapsed();
    assert!(got.is_empty(), "no reply to half a handshake: {got:?}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "closed after {waited:?}, not at the 1 s header timeout"
    );
    // A record header announcing more than TLS allows: refused at once, never buffered.
    let mut s = TcpStream::connect(srv.addr).await.expect("connect");
    s.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff])
        .await
        .expect("write");
    let _ = s.write_all(&vec![0u8; 64 * 1024]).await;
    let started = tokio::time::Instant::now();
    let _ = common::read_until_close(&mut s, Duration::from_secs(5)).await;
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "an oversized record is refused at once"
    );
    // The server still serves.
    let (_, leaf) = tls_connect(&pki, srv.addr).await;
    assert_eq!(leaf, pki.der("a"));
}
