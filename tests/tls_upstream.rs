//! floecast as a TLS client: relays, pushes, URL-auth backends and a master's stream list
//! over https://, verified against a test CA given as `ca-file` (and refused without it);
//! and icecast2, which serves TLS but cannot connect with it, in a chain with floecast.

mod common;
mod interop_support;
mod tls_support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use floecast::config::TlsMode;
use interop_support::have_all;
use tls_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
