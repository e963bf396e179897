//! The relay client's I/O: connect (10 s), send the request, read the response head under a
//! size cap and a timeout, follow `302 Location: http://…` up to 10 times. The bytes and the
//! parsing are [`super::head`]'s; this only moves them.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::head::{self, HeadError, ResponseHead, StreamRequest, UpstreamUrl};

/// icecast's relay connect timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a complete response head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Redirects followed before giving up (icecast: 10).
pub const MAX_REDIRECTS: usize = 10;
/// Largest streamlist body read from a master.
pub const MAX_STREAMLIST: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("connect to {0} timed out")]
    ConnectTimeout(String),
    #[error("connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("timed out waiting for the response")]
    HeadTimeout,
    #[error("upstream closed before a complete response")]
    Closed,
    #[error("bad response: {0}")]
    Head(#[from] HeadError),
    #[error("upstream answered {0} {1}")]
    Status(u16, String),
    #[error("redirect without a usable http:// Location")]
    BadRedirect,
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("streamlist larger than {MAX_STREAMLIST} bytes")]
    ListTooLarge,
}

/// A connected upstream whose `200` head has been read.
#[derive(Debug)]
pub struct Upstream {
    /// The URL finally answered (after redirects).
    pub url: UpstreamUrl,
    pub head: ResponseHead,
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// Stream bytes that arrived with the head.
    pub initial: Bytes,
}

/// Open `url` as a relay does, following redirects. Credentials go only to the first host.
pub async fn open(
    url: &UpstreamUrl,
    req: &StreamRequest,
    bind: Option<IpAddr>,
) -> Result<Upstream, FetchError> {
    let mut url = url.clone();
    let first_host = url.host.clone();
    for _ in 0..=MAX_REDIRECTS {
        let mut this = req.clone();
        if url.host != first_host {
            this.credentials = None;
        }
        let mut stream = connect(&url, bind).await?;
        let peer = stream.peer_addr()?;
        write(&mut stream, &head::stream_request(&url, &this)).await?;
        let (head, initial) = read_head(&mut stream).await?;
        match head.status {
            200..=299 => {
                return Ok(Upstream {
                    url,
                    head,
                    stream,
                    peer,
                    initial,
                });
            }
            301 | 302 | 303 | 307 | 308 => {
                url = head
                    .header("location")
                    .and_then(UpstreamUrl::parse)
                    .ok_or(FetchError::BadRedirect)?;
            }
            s => return Err(FetchError::Status(s, head.reason)),
        }
    }
    Err(FetchError::TooManyRedirects)
}

/// Fetch a master's `/admin/streamlist.txt` with the exact bytes icecast sends. Only
/// `HTTP/1.0 200` and `HTTP/1.1 200` count as success, as in icecast.
pub async fn streamlist(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    timeout: Duration,
) -> Result<String, FetchError> {
    let url = UpstreamUrl::new(host, port, "/admin/streamlist.txt")
        .ok_or_else(|| FetchError::Resolve(host.to_string()))?;
    let mut stream = connect(&url, None).await?;
    write(&mut stream, &head::streamlist_request(user, password)).await?;
    let (head, initial) = read_head(&mut stream).await?;
    if head.status != 200 || head.protocol == "ICY" {
        return Err(FetchError::Status(head.status, head.reason));
    }
    let mut body = BytesMut::from(&initial[..]);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if body.len() > MAX_STREAMLIST {
            return Err(FetchError::ListTooLarge);
        }
        let n = tokio::time::timeout_at(deadline, stream.read_buf(&mut body))
            .await
            .map_err(|_| FetchError::HeadTimeout)??;
        if n == 0 {
            break;
        }
    }
    let body = if head.is_chunked() {
        let mut out = Vec::new();
        crate::http::Dechunker::new()
            .push(&body, &mut out)
            .map_err(|_| FetchError::Head(HeadError::BadHeader))?;
        out
    } else {
        body.to_vec()
    };
    Ok(String::from_utf8_lossy(&body).into_owned())
}

async fn connect(url: &UpstreamUrl, bind: Option<IpAddr>) -> Result<TcpStream, FetchError> {
    let authority = url.authority();
    let attempt = async {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&authority)
            .await
            .map_err(|_| FetchError::Resolve(url.host.clone()))?
            .filter(|a| bind.is_none_or(|b| b.is_ipv4() == a.is_ipv4()))
            .collect();
        let mut last = FetchError::Resolve(url.host.clone());
        for addr in addrs {
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()
            } else {
                TcpSocket::new_v6()
            }
            .map_err(|e| FetchError::Connect(authority.clone(), e))?;
            if let Some(ip) = bind {
                socket
                    .bind(SocketAddr::new(ip, 0))
                    .map_err(|e| FetchError::Connect(authority.clone(), e))?;
            }
            match socket.connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = FetchError::Connect(authority.clone(), e),
            }
        }
        Err(last)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| FetchError::ConnectTimeout(authority.clone()))?
}

async fn write(stream: &mut TcpStream, bytes: &[u8]) -> Result<(), FetchError> {
    tokio::time::timeout(HEAD_TIMEOUT, stream.write_all(bytes))
        .await
        .map_err(|_| FetchError::HeadTimeout)??;
    Ok(())
}

/// Read until a complete head; returns it and the bytes after it.
async fn read_head(stream: &mut TcpStream) -> Result<(ResponseHead, Bytes), FetchError> {
    let mut buf = BytesMut::with_capacity(1024);
    let deadline = tokio::time::Instant::now() + HEAD_TIMEOUT;
    loop {
        if let Some((head, n)) = head::parse_response(&buf)? {
            let _ = buf.split_to(n);
            return Ok((head, buf.freeze()));
        }
        // parse_response refuses heads over the cap, so the buffer stays bounded.
        let n = tokio::time::timeout_at(deadline, stream.read_buf(&mut buf))
            .await
            .map_err(|_| FetchError::HeadTimeout)??;
        if n == 0 {
            return Err(FetchError::Closed);
        }
    }
}
