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
use crate::http::client::{Request, ResponseHead, Version};
use crate::http::url::Url;
use crate::net::client::{self, ClientError, Options};
use crate::p2psp::compat::{self, CompatConfig, CompatError};
use crate::p2psp::{Role, StreamInfo};

/// Largest configuration block read (the peer list dominates: 6 bytes a member).
const MAX_CONFIG: usize = 16 + compat::MAX_CHANNEL + 6 * compat::MAX_PEERS;
/// Most header bytes taken from the source, whatever `header_size` says.
const MAX_STREAM_HEADER: usize = 1 << 20;
/// How long the splitter waits for a peer's `R` (it fetches the header first).
const READY_WAIT: Duration = Duration::from_secs(10);
/// After `R`, a DBS peer hangs up at once; one still connected this long later waits for
/// something more: an NTS peer waiting for its ID.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// How long a peer looks for bytes after the configuration (an NTS splitter's peer ID follows
/// it at once; a DBS splitter sends nothing more).
const NTS_PEEK: Duration = Duration::from_millis(200);
/// Length of an NTS peer ID (spec §4.5: 7 characters of [0-9A-Z]).
const NTS_ID_LEN: usize = 7;
/// What to tell the operator of a reference built with NTS rules.
const REBUILD: &str = "floecast speaks the DBS rule set: rebuild the reference \
                       (p2psp-console src/common.h) without __NTS__";

#[derive(Debug, thiserror::Error)]
pub enum GenCError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("bad configuration from the splitter: {0}")]
    Config(#[from] CompatError),
    #[error("the source answered {0:?}")]
    Source(String),
    #[error("fetching the stream header: {0}")]
    Fetch(#[from] ClientError),
    #[error("timed out")]
    Timeout,
    #[error("the joiner hung up before its ready byte 'R'")]
    HungUp,
    #[error("expected the ready byte 'R', got {0:#04x}")]
    NotReady(u8),
    #[error(
        "a reference peer built with the NTS rule set (still connected after 'R', waiting for a \
         peer ID); {REBUILD}"
    )]
    NtsPeer,
    #[error(
        "the splitter speaks the reference's NTS rule set (it sent the peer ID {0:?}); {REBUILD}"
    )]
    NtsSplitter(String),
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
    let (config, used) = loop {
        match compat::decode_config(&buf) {
            Ok(c) => break c,
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
    // By now an NTS splitter has sent our peer ID after the configuration.
    let mut extra = buf.split_off(used);
    if extra.len() < NTS_ID_LEN {
        let mut b = [0u8; 64];
        if let Ok(Ok(n)) = tokio::time::timeout(NTS_PEEK, tcp.read(&mut b)).await {
            extra.extend_from_slice(&b[..n]);
        }
    }
    if let Some(id) = nts_peer_id(&extra) {
        return Err(GenCError::NtsSplitter(id));
    }
    // The splitter may already have closed (it reads one byte): ignore a failed write.
    let _ = tcp.write_all(&[compat::READY]).await;
    Ok((config, info, header))
}

/// The request reference peers send for the header.
fn header_request(url: &Url) -> Request {
    let user_agent = format!("floecast/{} (P2PSP Gen C peer)", env!("CARGO_PKG_VERSION"));
    Request::new("GET", &url.path, Version::Http11).header("User-Agent", &user_agent)
}

/// `GET /<channel>` from the source: the response's stream facts and the first `header_size`
/// bytes of its body. A reference splitter counts the response head in `header_size`, so this
/// is that much more than the stream header (Gen C joins splice at an arbitrary point anyway);
/// never the whole first reads, which from a source with burst-on-connect are tens of KiB.
async fn fetch_header(
    source: SocketAddr,
    channel: &str,
    header_size: u16,
) -> Result<(StreamInfo, Bytes), GenCError> {
    let path = format!("/{}", channel.trim_start_matches('/'));
    let url = Url::new(&source.ip().to_string(), source.port(), &path)
        .ok_or_else(|| ClientError::Url(format!("http://{source}{path}")))?;
    let opts = Options {
        connect_timeout: JOIN_TIMEOUT,
        response_timeout: JOIN_TIMEOUT,
        ..Options::default()
    };
    let mut reply = client::request(&url, header_request, &opts).await?;
    let info = stream_info(&reply.head)?;
    let want = usize::from(header_size).min(MAX_STREAM_HEADER);
    let mut header = reply.body_prefix(want, JOIN_TIMEOUT).await?;
    header.truncate(want);
    Ok((info, header))
}

/// The stream facts of a source's `200` response head (Icecast, SHOUTcast or floecast).
fn stream_info(head: &ResponseHead) -> Result<StreamInfo, GenCError> {
    if head.status != 200 {
        return Err(GenCError::Source(
            head.status_line().chars().take(80).collect(),
        ));
    }
    let mut info = StreamInfo::default();
    for (name, value) in &head.headers {
        let value = value.clone();
        match name.to_ascii_lowercase().as_str() {
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

/// An NTS splitter's peer ID at the start of what followed the configuration, if that is
/// what it is.
fn nts_peer_id(extra: &[u8]) -> Option<String> {
    let id = extra.get(..NTS_ID_LEN)?;
    id.iter()
        .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        .then(|| String::from_utf8_lossy(id).into_owned())
}

/// Splitter side, step two: send the configuration and wait for the peer's `R` (it fetches
/// the header first), then for its close. Only then has the join completed: a joiner that
/// hangs up before `R`, or stays connected after it as an NTS peer does, is refused.
pub async fn finish_join(tcp: &mut TcpStream, config: &[u8]) -> Result<(), GenCError> {
    timed(tcp.write_all(config)).await?;
    let mut b = [0u8; 1];
    match tokio::time::timeout(READY_WAIT, tcp.read(&mut b)).await {
        Err(_) => return Err(GenCError::Timeout),
        Ok(Ok(0)) => return Err(GenCError::HungUp),
        Ok(Ok(_)) if b[0] == compat::READY => {}
        Ok(Ok(_)) => return Err(GenCError::NotReady(b[0])),
        Ok(Err(e)) => return Err(e.into()),
    }
    // Data after `R`, EOF or a reset all mean the peer is done with this connection.
    match tokio::time::timeout(CLOSE_WAIT, tcp.read(&mut b)).await {
        Err(_) => Err(GenCError::NtsPeer),
        Ok(_) => Ok(()),
    }
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

    fn info_of(reply: &[u8]) -> Result<StreamInfo, GenCError> {
        let (head, _) = crate::http::client::parse_response(reply)
            .expect("a head")
            .expect("complete");
        stream_info(&head)
    }

    #[test]
    fn source_heads() {
        let i = info_of(
            b"HTTP/1.0 200 OK\r\nContent-Type: audio/ogg\r\nicy-name: Radio\r\nicy-br: 128\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            (i.content_type.as_str(), i.name.as_str(), i.bitrate),
            ("audio/ogg", "Radio", Some(128))
        );
        assert!(info_of(b"ICY 200 OK\r\ncontent-type: audio/mpeg\r\n\r\n").is_ok());
        assert!(matches!(
            info_of(b"HTTP/1.0 404 File Not Found\r\n\r\n"),
            Err(GenCError::Source(s)) if s == "HTTP/1.0 404 File Not Found"
        ));
        // Garbage never reaches here: the client refuses it as a bad status line.
        assert!(crate::http::client::parse_response_at_close(b"\xff\xfe garbage").is_err());
    }

    #[test]
    fn nts_peer_ids() {
        assert_eq!(nts_peer_id(b"A1B2C3Z"), Some("A1B2C3Z".into()));
        assert_eq!(nts_peer_id(b"0000000 and more"), Some("0000000".into()));
        assert_eq!(nts_peer_id(b"A1B2C3"), None);
        assert_eq!(nts_peer_id(b"a1b2c3z"), None);
        assert_eq!(nts_peer_id(b""), None);
    }

    #[test]
    fn header_request_is_the_references() {
        let url = Url::new("10.0.0.1", 8000, "/BBB-134.ogg").unwrap();
        assert_eq!(
            header_request(&url).to_bytes(),
            format!(
                "GET /BBB-134.ogg HTTP/1.1\r\nUser-Agent: floecast/{} (P2PSP Gen C peer)\r\n\r\n",
                env!("CARGO_PKG_VERSION")
            )
            .into_bytes()
        );
    }
}
