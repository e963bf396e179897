//! Joining and serving teams of the 2018 C++ reference (Gen C, spec §2), over real sockets.
//!
//! Peer side: send the role byte, read the configuration block, fetch the stream header from
//! the source endpoint it names (as reference peers do: `GET /<channel>`, the first
//! `header_size` bytes of the body), send `R`. Splitter side: read the role byte, answer with
//! the configuration, wait for `R`. Every read here has a size cap and the join timeout.

use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::JOIN_TIMEOUT;
use crate::http::request::find_head_end;
use crate::p2psp::compat::{self, CompatConfig, CompatError};
use crate::p2psp::{Role, StreamInfo};

/// Largest configuration block read (the peer list dominates: 6 bytes a member).
const MAX_CONFIG: usize = 16 + compat::MAX_CHANNEL + 6 * compat::MAX_PEERS;
/// Largest HTTP response head accepted from the source.
const MAX_HEAD: usize = 16 * 1024;
/// Most header bytes taken from the source, whatever `header_size` says.
const MAX_STREAM_HEADER: usize = 1 << 20;
/// How long the splitter waits for a peer's `R` (it fetches the header first).
const READY_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum GenCError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("bad configuration from the splitter: {0}")]
    Config(#[from] CompatError),
    #[error("the source answered {0:?}")]
    Source(String),
    #[error("timed out")]
    Timeout,
}

async fn timed<T>(
    f: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, GenCError> {
    match tokio::time::timeout(JOIN_TIMEOUT, f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(GenCError::Timeout),
    }
}

/// Peer side of the join, on a TCP connection to the splitter whose local port the peer's UDP
/// socket is already bound to. Returns the configuration, the stream facts and the header.
pub async fn join(
    tcp: &mut TcpStream,
    splitter: SocketAddr,
    role: Role,
) -> Result<(CompatConfig, StreamInfo, Bytes), GenCError> {
    timed(tcp.write_all(&[compat::encode_role(role)])).await?;
    let mut buf = Vec::new();
    let config = loop {
        match compat::decode_config(&buf) {
            Ok((c, _)) => break c,
            Err(CompatError::Truncated) if buf.len() < MAX_CONFIG => {}
            Err(e) => return Err(e.into()),
        }
        let mut chunk = [0u8; 4096];
        let n = timed(tcp.read(&mut chunk)).await?;
        if n == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    // The reference sends its source as it reaches it; 0.0.0.0 or loopback from a remote
    // splitter mean "the splitter's host".
    let source = match IpAddr::V4(*config.source.ip()) {
        ip if ip.is_unspecified() || (ip.is_loopback() && !splitter.ip().is_loopback()) => {
            SocketAddr::new(splitter.ip(), config.source.port())
        }
        _ => SocketAddr::V4(config.source),
    };
    let (info, header) = fetch_header(source, &config.channel, config.header_size).await?;
    // The splitter may already have closed (it reads one byte): ignore a failed write.
    let _ = tcp.write_all(&[compat::READY]).await;
    Ok((config, info, header))
}

/// `GET /<channel>` from the source: the response's stream facts and the first `header_size`
/// bytes of its body (whole reads, as the reference takes them).
async fn fetch_header(
    source: SocketAddr,
    channel: &str,
    header_size: u16,
) -> Result<(StreamInfo, Bytes), GenCError> {
    let mut s = timed(TcpStream::connect(source)).await?;
    let req = format!(
        "GET /{} HTTP/1.1\r\nUser-Agent: floecast/{} (P2PSP Gen C peer)\r\n\r\n",
        channel.trim_start_matches('/'),
        env!("CARGO_PKG_VERSION")
    );
    timed(s.write_all(req.as_bytes())).await?;
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(end) = find_head_end(&buf) {
            break end;
        }
        if buf.len() > MAX_HEAD {
            return Err(GenCError::Source("an oversized response head".into()));
        }
        let mut chunk = [0u8; 4096];
        let n = timed(s.read(&mut chunk)).await?;
        if n == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let info = parse_head(&buf[..head_end])?;
    let want = usize::from(header_size).min(MAX_STREAM_HEADER);
    let mut body = buf.split_off(head_end);
    while body.len() < want {
        let mut chunk = [0u8; 4096];
        let n = timed(s.read(&mut chunk)).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok((info, Bytes::from(body)))
}

/// The stream facts of a source's `200` response head (Icecast, SHOUTcast or floecast).
fn parse_head(head: &[u8]) -> Result<StreamInfo, GenCError> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.lines();
    let status = lines.next().unwrap_or_default();
    let code = status.split_whitespace().nth(1).unwrap_or_default();
    if code != "200" {
        return Err(GenCError::Source(status.chars().take(80).collect()));
    }
    let mut info = StreamInfo::default();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-type" => info.content_type = value,
            "icy-name" | "ice-name" => info.name = value,
            "icy-description" | "ice-description" => info.description = value,
            "icy-genre" | "ice-genre" => info.genre = value,
            "icy-url" | "ice-url" => info.url = value,
            "icy-br" | "ice-bitrate" => info.bitrate = value.parse().ok(),
            _ => {}
        }
    }
    Ok(info)
}

/// Splitter side, step one: the peer's role byte.
pub async fn read_role(tcp: &mut TcpStream) -> Result<Role, GenCError> {
    let mut b = [0u8; 1];
    timed(tcp.read_exact(&mut b)).await?;
    Ok(compat::decode_role(b[0])?)
}

/// Splitter side, step two: send the configuration and wait (a while) for `R` or a close.
pub async fn finish_join(tcp: &mut TcpStream, config: &[u8]) -> Result<(), GenCError> {
    timed(tcp.write_all(config)).await?;
    let mut b = [0u8; 1];
    let _ = tokio::time::timeout(READY_WAIT, tcp.read(&mut b)).await;
    Ok(())
}

/// The IPv4 address peers should fetch the header from: the one they reached the splitter at.
pub fn source_endpoint(local: SocketAddr, http_port: u16) -> SocketAddrV4 {
    let ip = match local.ip() {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(ip) => ip
            .to_ipv4_mapped()
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
    };
    SocketAddrV4::new(ip, http_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_heads() {
        let i = parse_head(
            b"HTTP/1.0 200 OK\r\nContent-Type: audio/ogg\r\nicy-name: Radio\r\nicy-br: 128\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            (i.content_type.as_str(), i.name.as_str(), i.bitrate),
            ("audio/ogg", "Radio", Some(128))
        );
        assert!(parse_head(b"ICY 200 OK\r\ncontent-type: audio/mpeg\r\n\r\n").is_ok());
        assert!(matches!(
            parse_head(b"HTTP/1.0 404 File Not Found\r\n\r\n"),
            Err(GenCError::Source(_))
        ));
        assert!(parse_head(b"\xff\xfe garbage").is_err());
    }
}
