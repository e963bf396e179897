//! TLS end to end: certificates made by the `openssl` command for each test (a test CA and
//! leaf certificates for `a.test` and `b.test`), served by floecast on the same port as
//! plain HTTP, and used by real clients: curl (listener, admin, status, metrics, SNI, ALPN),
//! ffmpeg (an `icecast://` source with `-tls 1`, and a TLS listener that decodes), and a
//! rustls client that watches the certificate change under a streaming listener.

mod common;
mod interop_support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use floecast::config::{CertificateFiles, Config, ListenSocket, TlsMode};
use interop_support::{Proc, TempDir, have_all, run, wait_live};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A test CA and the leaf certificates it signed, in a temp dir.
struct Pki {
    dir: TempDir,
}

impl Pki {
    /// A CA plus leaves for `a.test` and `b.test` (both also valid for localhost and
    /// 127.0.0.1).
    fn new(tag: &str) -> Pki {
        let pki = Pki {
            dir: TempDir::new(tag),
        };
        pki.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=floecast test CA",
        ]);
        pki.leaf("a.test", "a");
        pki.leaf("b.test", "b");
        pki
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `<file>.pem` and `<file>.key`: a fresh key and a certificate for `name` from the CA.
    fn leaf(&self, name: &str, file: &str) {
        let (key, csr, pem, ext) = (
            format!("{file}.key"),
            format!("{file}.csr"),
            format!("{file}.pem"),
            format!("{file}.ext"),
        );
        std::fs::write(
            self.dir.join(&ext),
            format!(
                "subjectAltName=DNS:{name},DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
            ),
        )
        .expect("write ext");
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &ext,
        ]);
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    fn files(&self, file: &str) -> CertificateFiles {
        CertificateFiles {
            certificate: self.path(&format!("{file}.pem")),
            private_key: Some(self.path(&format!("{file}.key"))),
        }
    }

    /// The DER of the first certificate in `<file>.pem`.
    fn der(&self, file: &str) -> Vec<u8> {
        let pem = std::fs::read_to_string(self.path(&format!("{file}.pem"))).expect("read pem");
        let body: String = pem
            .lines()
            .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("base64")
    }
}

/// The test config with `certs` as `[[tls]]` (first = default).
fn tls_config(certs: Vec<CertificateFiles>) -> Config {
    let mut c = common::test_config();
    c.tls = certs;
    c
}

/// Feed synthetic MP3 frames to `mount` from a plain in-process SOURCE client until dropped.
async fn frame_feeder(addr: SocketAddr, mount: &str) -> tokio::task::JoinHandle<()> {
    let mut s = common::source(addr, mount, "audio/mpeg", "").await;
    tokio::spawn(async move {
        loop {
            if s.write_all(&common::mp3_frames(10)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
}

/// `curl -sS --cacert ca.pem --resolve <host>:<port>:127.0.0.1` + `extra` + the URL; returns
/// (exit code, stdout, stderr).
async fn curl(
    pki: &Pki,
    host: &str,
    port: u16,
    extra: &[&str],
    path: &str,
) -> (i32, String, String) {
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "3", "--cacert"])
        .arg(pki.path("ca.pem"))
        .args(["--resolve", &format!("{host}:{port}:127.0.0.1")])
        .args(extra)
        .arg(format!("https://{host}:{port}{path}"));
    let out = run(c, Duration::from_secs(10)).await;
    (
        out.status.and_then(|s| s.code()).unwrap_or(-1),
        out.stdout_text(),
        out.stderr_text(),
    )
}

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
    assert!(out.contains("<icestats>"), "{out}");
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

/// A rustls client trusting only the test CA.
fn client(pki: &Pki) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(pki.der("ca")))
        .expect("add CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Connect over TLS as `a.test`; returns the stream and the server's leaf certificate.
async fn tls_connect(
    pki: &Pki,
    addr: SocketAddr,
) -> (tokio_rustls::client::TlsStream<TcpStream>, Vec<u8>) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = rustls_pki_types::ServerName::try_from("a.test").expect("name");
    let s = client(pki).connect(name, tcp).await.expect("TLS handshake");
    let leaf = s.get_ref().1.peer_certificates().expect("certs")[0].to_vec();
    (s, leaf)
}

/// Bytes that arrive on `s` within `within`.
async fn read_for(s: &mut (impl AsyncReadExt + Unpin), within: Duration) -> usize {
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    let deadline = tokio::time::Instant::now() + within;
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        got += n;
    }
    got
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
    let url = format!("icecast://source:hackme@127.0.0.1:{port}/tls.mp3");
    let mut args = vec![
        "-v",
        "warning",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100:duration=30",
        "-ac",
        "2",
    ];
    args.extend_from_slice(interop_support::MP3_ARGS);
    args.extend_from_slice(&["-tls", "1", &url]);
    let mut source = Proc::spawn(
        "ffmpeg TLS source",
        interop_support::ffmpeg(&args),
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

#[tokio::test]
async fn a_relay_pulls_from_a_tls_upstream_and_verifies_it() {
    if !have_all("tls_relay", &["openssl"]) {
        return;
    }
    let pki = Pki::new("tls-relay");
    let mut up_config = tls_config(vec![pki.files("a")]);
    up_config.listen[0].tls = TlsMode::Required;
    let up = common::start(up_config).await;
    let feeder = frame_feeder_tls(&pki, up.addr, "/live").await;
    let relay = |local: &str, ca_file: Option<PathBuf>| floecast::config::RelayConfig {
        server: "127.0.0.1".into(),
        port: up.addr.port(),
        mount: "/live".into(),
        local_mount: local.into(),
        username: None,
        password: None,
        relay_metadata: true,
        on_demand: false,
        bind: None,
        timing: Default::default(),
        tls: floecast::config::ClientTls {
            enabled: true,
            ca_file,
        },
    };
    let mut down_config = common::test_config();
    down_config.relays = vec![
        relay("/relayed", Some(pki.path("ca.pem"))),
        // The test CA is not among the system's roots: this one must refuse the upstream.
        relay("/untrusted", None),
    ];
    let down = common::start(down_config).await;
    common::wait_serving(down.addr, "/relayed", Duration::from_secs(10), String::new).await;
    let (head, mut s) = common::listen(down.addr, "/relayed", "", Duration::from_secs(5)).await;
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    let body = common::read_at_least(&mut s, 8_000, Duration::from_secs(5)).await;
    assert!(body.len() >= 8_000, "relayed {} bytes", body.len());
    assert!(
        body.windows(2).any(|w| w == [0xFF, 0xFB]),
        "MP3 frames relayed"
    );
    assert!(
        down.app
            .server
            .registry
            .get("/untrusted")
            .is_none_or(|m| m.is_ended()),
        "a relay must not accept a certificate the system roots do not vouch for"
    );
    feeder.abort();
}

/// [`frame_feeder`] over TLS (for a TLS-only upstream).
async fn frame_feeder_tls(pki: &Pki, addr: SocketAddr, mount: &str) -> tokio::task::JoinHandle<()> {
    let (mut s, _) = tls_connect(pki, addr).await;
    let req = format!(
        "SOURCE {mount} HTTP/1.0\r\nAuthorization: Basic {}\r\nContent-Type: audio/mpeg\r\n\r\n",
        common::SOURCE_AUTH
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut reply = [0u8; 19];
    s.read_exact(&mut reply).await.expect("source reply");
    assert_eq!(&reply, b"HTTP/1.0 200 OK\r\n\r\n");
    tokio::spawn(async move {
        loop {
            if s.write_all(&common::mp3_frames(10)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
}

#[tokio::test]
async fn a_push_logs_in_over_tls() {
    if !have_all("tls_push", &["openssl"]) {
        return;
    }
    let pki = Pki::new("tls-push");
    let mut remote_config = tls_config(vec![pki.files("a")]);
    remote_config.listen[0].tls = TlsMode::Required;
    let remote = common::start(remote_config).await;
    let mut local_config = common::test_config();
    local_config.pushes = vec![floecast::config::PushConfig {
        mount: "/live".into(),
        server: "127.0.0.1".into(),
        port: remote.addr.port(),
        remote_mount: "/pushed".into(),
        username: "source".into(),
        password: "hackme".into(),
        protocol: Default::default(),
        bind: None,
        tls: floecast::config::ClientTls {
            enabled: true,
            ca_file: Some(pki.path("ca.pem")),
        },
    }];
    let local = common::start(local_config).await;
    let feeder = frame_feeder(local.addr, "/live").await;
    common::wait_for(
        "the push to go live over TLS",
        Duration::from_secs(10),
        || {
            remote
                .app
                .server
                .registry
                .get("/pushed")
                .is_some_and(|m| !m.is_ended())
        },
    )
    .await;
    let (mut s, _) = tls_connect(&pki, remote.addr).await;
    s.write_all(b"GET /pushed HTTP/1.0\r\n\r\n")
        .await
        .expect("request");
    assert!(read_for(&mut s, Duration::from_millis(1500)).await > 5_000);
    feeder.abort();
}

/// A URL-auth backend over TLS (the `a.test` certificate) that accepts every listener;
/// returns its address and the number of requests it answered.
async fn tls_auth_backend(pki: &Pki) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use rustls_pki_types::pem::PemObject;
    let chain = rustls_pki_types::CertificateDer::pem_file_iter(pki.path("a.pem"))
        .expect("pem")
        .collect::<Result<Vec<_>, _>>()
        .expect("chain");
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(pki.path("a.key")).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = answered.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, count) = (acceptor.clone(), count.clone());
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                let reply = "HTTP/1.1 200 OK\r\nicecast-auth-user: 1\r\nContent-Length: 0\r\n\r\n";
                let _ = s.write_all(reply.as_bytes()).await;
                let _ = s.shutdown().await;
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            });
        }
    });
    (addr, answered)
}

#[tokio::test]
async fn url_auth_asks_an_https_backend() {
    if !have_all("tls_url_auth", &["openssl"]) {
        return;
    }
    let pki = Pki::new("tls-auth");
    let (backend, answered) = tls_auth_backend(&pki).await;
    let auth = |ca_file: Option<PathBuf>| {
        let mut url =
            floecast::config::UrlAuth::new(format!("https://127.0.0.1:{}/add", backend.port()));
        url.ca_file = ca_file;
        Some(floecast::config::ListenerAuth {
            backend: floecast::config::AuthBackend::Url(url),
            allow_duplicate_users: true,
        })
    };
    let mut config = common::test_config();
    for (name, ca) in [("/trusted", Some(pki.path("ca.pem"))), ("/untrusted", None)] {
        config.mounts.push(floecast::config::MountConfig {
            name: name.into(),
            authentication: auth(ca),
            ..Default::default()
        });
    }
    let srv = common::start(config).await;
    let feeders = [
        frame_feeder(srv.addr, "/trusted").await,
        frame_feeder(srv.addr, "/untrusted").await,
    ];
    let login = "Authorization: Basic YWxpY2U6c2VjcmV0\r\n";
    let (head, _s) = common::listen(srv.addr, "/trusted", login, Duration::from_secs(10)).await;
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    common::wait_for("the backend's answer", Duration::from_secs(5), || {
        answered.load(std::sync::atomic::Ordering::Relaxed) == 1
    })
    .await;
    // Without the CA the backend's certificate is not trusted: no answer, so 401.
    let (head, _) = common::listen(srv.addr, "/untrusted", login, Duration::from_secs(10)).await;
    assert!(head.starts_with("HTTP/1.0 401"), "{head}");
    assert_eq!(answered.load(std::sync::atomic::Ordering::Relaxed), 1);
    for f in feeders {
        f.abort();
    }
}

/// icecast2 2.4.4 (Debian, built with OpenSSL) serves TLS but has no TLS client: its
/// `<relay>` and `<master-server>` speak plain HTTP only (the binary links no
/// `SSL_connect`). So icecast2 relays floecast over plain HTTP from a socket that also takes
/// TLS (the sniffing must not disturb it), serves that relay on its own `<ssl>1` socket,
/// and floecast relays it from there over TLS: floecast → icecast2 → (TLS) → floecast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn icecast2_relays_floecast_and_serves_it_to_floecast_over_tls() {
    if !interop_support::icecast2_available("icecast2_tls")
        || !have_all("icecast2_tls", &["openssl"])
    {
        return;
    }
    let pki = Pki::new("tls-icecast2");
    // icecast2 wants one PEM with the chain and the key.
    let mut bundle = std::fs::read(pki.path("a.pem")).expect("cert");
    bundle.extend(std::fs::read(pki.path("a.key")).expect("key"));
    std::fs::write(pki.path("bundle.pem"), bundle).expect("bundle");
    {
        use std::os::unix::fs::PermissionsExt;
        let readable = std::fs::Permissions::from_mode(0o644);
        std::fs::set_permissions(pki.path("bundle.pem"), readable).expect("chmod");
    }
    let origin = common::start(tls_config(vec![pki.files("a")])).await;
    let feeder = frame_feeder(origin.addr, "/live").await;
    let tls_port = common::free_port();
    let extra = format!(
        "<listen-socket><port>{tls_port}</port><bind-address>127.0.0.1</bind-address><ssl>1</ssl></listen-socket>\
         <paths><ssl-certificate>{}</ssl-certificate></paths>\
         <relay><server>127.0.0.1</server><port>{}</port><mount>/live</mount>\
         <local-mount>/relayed</local-mount></relay>",
        pki.path("bundle.pem").display(),
        origin.addr.port()
    );
    let Some(ice) = interop_support::Icecast2::start("icecast2_tls", &extra).await else {
        return;
    };
    common::wait_serving(ice.addr, "/relayed", Duration::from_secs(15), || {
        ice.error_log()
    })
    .await;

    let mut edge_config = common::test_config();
    edge_config.relays = vec![floecast::config::RelayConfig {
        server: "127.0.0.1".into(),
        port: tls_port,
        mount: "/relayed".into(),
        local_mount: "/edge".into(),
        username: None,
        password: None,
        relay_metadata: true,
        on_demand: false,
        bind: None,
        timing: Default::default(),
        tls: floecast::config::ClientTls {
            enabled: true,
            ca_file: Some(pki.path("ca.pem")),
        },
    }];
    let edge = common::start(edge_config).await;
    common::wait_serving(edge.addr, "/edge", Duration::from_secs(15), || {
        ice.error_log()
    })
    .await;
    let (head, mut s) = common::listen(edge.addr, "/edge", "", Duration::from_secs(5)).await;
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    let body = common::read_at_least(&mut s, 8_000, Duration::from_secs(5)).await;
    assert!(
        body.len() >= 8_000,
        "{} bytes through icecast2's TLS",
        body.len()
    );
    feeder.abort();
    let mut ice = ice;
    ice.proc.assert_running();
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

/// A TLS-only server with the `a` certificate, for sources that must come over TLS.
async fn tls_only_server(pki: &Pki) -> common::TestServer {
    let mut config = tls_config(vec![pki.files("a")]);
    config.listen[0].tls = TlsMode::Required;
    common::start(config).await
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

#[tokio::test]
async fn a_master_stream_list_comes_over_tls() {
    if !have_all("tls_master", &["openssl"]) {
        return;
    }
    let pki = Pki::new("tls-master");
    // The master takes TLS and plain on one port: the list over TLS (tls-port, icecast-kh's
    // <master-ssl-port>), the listed "/m" relays plainly on port, as icecast-kh does.
    let master = common::start(tls_config(vec![pki.files("a")])).await;
    let feeder = frame_feeder(master.addr, "/one").await;
    let mut config = common::test_config();
    config.master = Some(floecast::config::MasterConfig {
        server: "127.0.0.1".into(),
        port: master.addr.port(),
        username: "relay".into(),
        password: "hackme".into(),
        update_interval: Duration::from_secs(1),
        on_demand: false,
        timing: Default::default(),
        tls: floecast::config::MasterTls {
            port: Some(master.addr.port()),
            ca_file: Some(pki.path("ca.pem")),
        },
    });
    let slave = common::start(config).await;
    common::wait_serving(slave.addr, "/one", Duration::from_secs(10), String::new).await;
    // Without the CA, the list is refused: nothing is relayed.
    let mut untrusting = common::test_config();
    untrusting.master = slave.app.server.config().master.clone().map(|mut m| {
        m.tls.ca_file = None;
        m
    });
    let refused = common::start(untrusting).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        refused.app.server.registry.get("/one").is_none(),
        "a stream list from an untrusted server must not start relays"
    );
    feeder.abort();
}
