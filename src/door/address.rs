//! The client's real address: a PROXY protocol header (v1 or v2) read before anything else
//! on a socket configured for it, from a trusted proxy only; `X-Forwarded-For` from a
//! trusted proxy. The header is read exactly (never into the request after it), under the
//! header timeout and the protocol's size caps.

use std::net::SocketAddr;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::cidr::unmapped;
use crate::config::Config;
use crate::http::RequestHead;
use crate::http::proxy_protocol::{self, Parsed};
use crate::server::Server;

/// Who is connecting. On a socket with `proxy-protocol = true`, a connection from a trusted
/// proxy must start with a PROXY header, whose source address is then the client's (a
/// health check's `LOCAL` keeps the proxy's own). Anyone else's bytes are left alone: an
/// untrusted peer's PROXY line is just a bad request. `None`: close (no valid header in
/// time).
pub async fn arrival(
    server: &Server,
    stream: &mut TcpStream,
    peer: SocketAddr,
    proxy_protocol: bool,
) -> Option<SocketAddr> {
    if !proxy_protocol {
        return Some(peer);
    }
    // Boxed: every connection's task would otherwise carry this rare state's size.
    Box::pin(proxied(server, stream, peer)).await
}

async fn proxied(server: &Server, stream: &mut TcpStream, peer: SocketAddr) -> Option<SocketAddr> {
    let (trusted, timeout) = {
        let config = server.config();
        (
            config.access.is_trusted_proxy(peer.ip()),
            config.limits.header_timeout,
        )
    };
    if !trusted {
        return Some(peer);
    }
    match tokio::time::timeout(timeout, read_header(stream)).await {
        Ok(Ok(source)) => {
            Some(source.map_or(peer, |s| SocketAddr::new(unmapped(s.ip()), s.port())))
        }
        Ok(Err(e)) => {
            tracing::debug!(%peer, "closing: PROXY header: {e}");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "closing: no PROXY header in time");
            None
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum HeaderError {
    #[error(transparent)]
    Proxy(#[from] proxy_protocol::ProxyError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Read exactly the PROXY header's bytes.
async fn read_header(stream: &mut TcpStream) -> Result<Option<SocketAddr>, HeaderError> {
    let mut buf = Vec::with_capacity(proxy_protocol::V1_MAX);
    loop {
        match proxy_protocol::parse(&buf)? {
            Parsed::Complete(header) => return Ok(header.source),
            Parsed::Partial { need } => {
                let have = buf.len();
                buf.resize(need, 0);
                stream.read_exact(&mut buf[have..]).await?;
            }
        }
    }
}

/// Most `X-Forwarded-For` hops looked at.
const MAX_HOPS: usize = 32;

/// The client behind a trusted proxy: the right-most address of `X-Forwarded-For` (all
/// such headers, in order) that is not itself a trusted proxy. Only a trusted proxy's
/// header is believed; a malformed hop ends the walk at the last good one.
pub fn forwarded_for(config: &Config, peer: SocketAddr, head: &RequestHead) -> SocketAddr {
    let access = &config.access;
    if access.trusted_proxies.is_empty() || !access.is_trusted_proxy(peer.ip()) {
        return peer;
    }
    let hops: Vec<&str> = head
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("x-forwarded-for"))
        .flat_map(|(_, v)| v.split(','))
        .collect();
    let mut client = peer.ip();
    for hop in hops.iter().rev().take(MAX_HOPS) {
        let Ok(ip) = hop.trim().parse::<std::net::IpAddr>() else {
            break;
        };
        client = unmapped(ip);
        if !access.is_trusted_proxy(client) {
            break;
        }
    }
    SocketAddr::new(client, peer.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(trusted: &[&str]) -> Config {
        let mut c = Config::default();
        c.access.trusted_proxies = trusted.iter().map(|t| t.parse().unwrap()).collect();
        c
    }

    fn xff(c: &Config, peer: &str, headers: &str) -> String {
        let head =
            crate::http::parse_head(format!("GET / HTTP/1.0\r\n{headers}\r\n").as_bytes()).unwrap();
        forwarded_for(c, peer.parse().unwrap(), &head)
            .ip()
            .to_string()
    }

    #[test]
    fn forwarded_for_trusts_only_configured_proxies() {
        let c = config(&["10.0.0.0/8", "192.0.2.1"]);
        let h = "X-Forwarded-For: 203.0.113.5\r\n";
        // From a trusted proxy: the client it names.
        assert_eq!(xff(&c, "10.1.1.1:5000", h), "203.0.113.5");
        // From anyone else: ignored.
        assert_eq!(xff(&c, "198.51.100.7:5000", h), "198.51.100.7");
        // The right-most untrusted hop: a client cannot forge its way past our proxies.
        let chain = "X-Forwarded-For: 6.6.6.6, 203.0.113.5, 10.2.2.2\r\n";
        assert_eq!(xff(&c, "192.0.2.1:1", chain), "203.0.113.5");
        // Several headers are one list, in order.
        let two = "X-Forwarded-For: 6.6.6.6\r\nx-forwarded-for: 203.0.113.9\r\n";
        assert_eq!(xff(&c, "10.0.0.1:1", two), "203.0.113.9");
        // A malformed hop ends the walk.
        let bad = "X-Forwarded-For: 203.0.113.5, junk, 10.0.0.3\r\n";
        assert_eq!(xff(&c, "10.0.0.1:1", bad), "10.0.0.3");
        assert_eq!(xff(&c, "10.0.0.1:1", ""), "10.0.0.1");
        assert_eq!(xff(&config(&[]), "10.0.0.1:1", h), "10.0.0.1");
    }
}
