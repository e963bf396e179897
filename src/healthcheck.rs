//! `floecast healthcheck`: ask a running server for `/api/status` and exit 0 when it answers
//! 200, 1 otherwise. For container HEALTHCHECKs, where a slim image has no curl; it only
//! reads, needs no credentials, and gives up after a few seconds.

use std::time::Duration;

use crate::config::{Config, TlsMode};
use crate::http::client::{Request, Version};
use crate::http::url::Url;
use crate::net::client::{self, Options};

/// The whole check, connect included, takes at most this long.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The status document is read only this far.
const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("no listen socket in the config")]
    NoSocket,
    #[error(
        "every listen socket requires TLS: pass --url https://<certificate name>:<port>/api/status"
    )]
    OnlyTls,
    #[error("not a usable http:// or https:// URL: {0:?}")]
    Url(String),
    #[error("{0}")]
    Client(#[from] client::ClientError),
    #[error("answered {0}")]
    Status(String),
    #[error("no answer within {TIMEOUT:?}")]
    Timeout,
}

/// The URL checked: `url` if given, else `/api/status` on the config's first listen socket
/// that takes plain HTTP, through loopback unless the socket is bound to one address. (Over
/// loopback a certificate's name would not match, so TLS-only sockets need `--url`.)
pub fn target(config: &Config, url: Option<&str>) -> Result<Url, HealthError> {
    if let Some(u) = url {
        return Url::parse(u).ok_or_else(|| HealthError::Url(u.to_string()));
    }
    let socket = config
        .listen
        .iter()
        .find(|s| s.tls != TlsMode::Required)
        .ok_or(if config.listen.is_empty() {
            HealthError::NoSocket
        } else {
            HealthError::OnlyTls
        })?;
    let host = match socket.bind_address.as_deref() {
        None | Some("0.0.0.0") | Some("") => "127.0.0.1",
        Some("::") | Some("[::]") => "::1",
        Some(addr) => addr.trim_matches(|c| c == '[' || c == ']'),
    };
    Url::new(host, socket.port, "/api/status").ok_or_else(|| HealthError::Url(host.into()))
}

/// GET `url` and require a 200 with a complete body, within [`TIMEOUT`].
pub async fn check(url: &Url) -> Result<(), HealthError> {
    let opts = Options {
        connect_timeout: TIMEOUT,
        response_timeout: TIMEOUT,
        ..Options::default()
    };
    let exchange = async {
        let mut response = client::request(
            url,
            |u| {
                Request::new("GET", &u.path, Version::Http11)
                    .header("Host", &u.host_header())
                    .header(
                        "User-Agent",
                        concat!("floecast-healthcheck/", env!("CARGO_PKG_VERSION")),
                    )
                    .header("Connection", "close")
            },
            &opts,
        )
        .await?;
        if response.head.status != 200 {
            return Err(HealthError::Status(response.head.status_line()));
        }
        response.body(MAX_BODY, TIMEOUT).await?;
        Ok(())
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| HealthError::Timeout)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ListenSocket;

    fn socket(port: u16, tls: TlsMode) -> ListenSocket {
        ListenSocket {
            port,
            bind_address: None,
            shoutcast_mount: None,
            tls,
        }
    }

    #[test]
    fn checks_the_first_socket_that_takes_plain_http() {
        let mut c = Config {
            listen: vec![socket(8443, TlsMode::Required), socket(8000, TlsMode::Auto)],
            ..Config::default()
        };
        let url = target(&c, None).expect("a plain socket");
        assert_eq!((url.host.as_str(), url.port), ("127.0.0.1", 8000));
        c.listen = vec![socket(8443, TlsMode::Required)];
        assert!(matches!(target(&c, None), Err(HealthError::OnlyTls)));
        c.listen.clear();
        assert!(matches!(target(&c, None), Err(HealthError::NoSocket)));
    }
}
