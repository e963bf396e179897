//! Shared by the TLS tests: a test CA and leaf certificates made by the `openssl` command,
//! configs with them, in-process MP3 sources (plain and over TLS), a rustls client that
//! trusts only the test CA, and curl pointed at it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use floecast::config::{CertificateFiles, Config, TlsMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common;
use crate::interop_support::{TempDir, run};

/// A test CA and the leaf certificates it signed, in a temp dir.
pub struct Pki {
    pub dir: TempDir,
}

impl Pki {
    /// A CA plus leaves for `a.test` and `b.test` (both also valid for localhost and
    /// 127.0.0.1).
    pub fn new(tag: &str) -> Pki {
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

    pub fn openssl(&self, args: &[&str]) {
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
    pub fn leaf(&self, name: &str, file: &str) {
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

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    pub fn files(&self, file: &str) -> CertificateFiles {
        CertificateFiles {
            certificate: self.path(&format!("{file}.pem")),
            private_key: Some(self.path(&format!("{file}.key"))),
        }
    }

    /// The DER of the first certificate in `<file>.pem`.
    pub fn der(&self, file: &str) -> Vec<u8> {
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
pub fn tls_config(certs: Vec<CertificateFiles>) -> Config {
    let mut c = common::test_config();
    c.tls = certs;
    c
}

/// Feed synthetic MP3 frames to `mount` from a plain in-process SOURCE client until dropped.
pub async fn frame_feeder(addr: SocketAddr, mount: &str) -> tokio::task::JoinHandle<()> {
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
pub async fn curl(
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

/// A rustls client trusting only the test CA.
pub fn client(pki: &Pki) -> tokio_rustls::TlsConnector {
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
pub async fn tls_connect(
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
pub async fn read_for(s: &mut (impl AsyncReadExt + Unpin), within: Duration) -> usize {
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

/// [`frame_feeder`] over TLS (for a TLS-only upstream).
pub async fn frame_feeder_tls(
    pki: &Pki,
    addr: SocketAddr,
    mount: &str,
) -> tokio::task::JoinHandle<()> {
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

/// A TLS-only server with the `a` certificate, for sources that must come over TLS.
pub async fn tls_only_server(pki: &Pki) -> common::TestServer {
    let mut config = tls_config(vec![pki.files("a")]);
    config.listen[0].tls = TlsMode::Required;
    common::start(config).await
}
