//! The one HTTP/1 client's I/O, used by relays, the master poller, push relays, URL auth and
//! Gen C header fetches: connect (from a bind address if asked) under a timeout, send a
//! request, read the response head under its cap and a deadline, follow redirects, read
//! bodies under a cap. `https://` URLs get TLS, verified against the system's roots or the
//! target's own `ca-file` ([`crate::tls::client`]). Bytes and parsing are
//! [`crate::http::client`]'s; this only moves them.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use super::Conn;

use crate::http::client::{
    Body, BodyError, HeadError, RedirectError, RedirectPolicy, Request, ResponseHead,
    parse_response,
};
use crate::http::url::{Scheme, Url};

/// icecast's relay connect timeout; the default for every caller.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default longest wait for sending a request and reading its complete response head.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// How one exchange connects and waits.
#[derive(Debug, Clone)]
pub struct Options {
    /// For `https://`: trust only the CAs in this PEM file instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The local address to connect from; only remote addresses of its family are tried.
    pub bind: Option<IpAddr>,
    pub connect_timeout: Duration,
    /// For writing the request and reading the head, each hop.
    pub response_timeout: Duration,
    pub redirects: RedirectPolicy,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            ca_file: None,
            bind: None,
            connect_timeout: CONNECT_TIMEOUT,
            response_timeout: RESPONSE_TIMEOUT,
            redirects: RedirectPolicy::Answer,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("not a usable http:// or https:// URL: {0:?}")]
    Url(String),
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("cannot bind to {0}: {1}")]
    Bind(IpAddr, std::io::Error),
    #[error("connect to {0} timed out")]
    ConnectTimeout(String),
    #[error("connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("TLS to {0}: {1}")]
    Tls(String, String),
    #[error("sending the request: {0}")]
    Send(std::io::Error),
    #[error("timed out waiting for the response")]
    Timeout,
    #[error("reading the response: {0}")]
    Receive(std::io::Error),
    /// The connection ended before a complete head; what had arrived is kept.
    #[error("upstream closed before a complete response")]
    Closed(Bytes),
    #[error("bad response: {0}")]
    Head(#[from] HeadError),
    #[error("{0}")]
    Redirect(#[from] RedirectError),
    /// A status the caller does not take.
    #[error("upstream answered {0} {1}")]
    Status(u16, String),
    #[error("{0}")]
    Body(#[from] BodyError),
}

/// A response whose head has been read, with its connection.
#[derive(Debug)]
pub struct Response {
    /// The URL finally answered (after redirects).
    pub url: Url,
    pub head: ResponseHead,
    pub stream: Conn,
    pub peer: SocketAddr,
    /// Bytes that arrived after the head: the start of the body, or (after a `100
    /// Continue`) of the next head.
    pub initial: Bytes,
}

/// Send the request `build` makes for each URL asked (the first, then each redirect's) and
/// read the response head. A `100 Continue` is returned as it is: a caller that sent
/// `Expect: 100-continue` sends its body then. Other statuses are the caller's to judge.
pub async fn request(
    url: &Url,
    mut build: impl FnMut(&Url) -> Request,
    opts: &Options,
) -> Result<Response, ClientError> {
    let mut url = url.clone();
    let mut hops = 0;
    loop {
        let mut stream = connect(&url, opts).await?;
        let peer = stream.tcp().peer_addr().map_err(ClientError::Receive)?;
        let deadline = tokio::time::Instant::now() + opts.response_timeout;
        let bytes = build(&url).to_bytes();
        tokio::time::timeout_at(deadline, stream.write_all(&bytes))
            .await
            .map_err(|_| ClientError::Timeout)?
            .map_err(ClientError::Send)?;
        let (head, initial) = read_head(&mut stream, deadline).await?;
        match opts.redirects.next(&head, hops)? {
            Some(next) => {
                url = next;
                hops += 1;
            }
            None => {
                return Ok(Response {
                    url,
                    head,
                    stream,
                    peer,
                    initial,
                });
            }
        }
    }
}

/// Connect to `url`'s host, trying each address, and for `https://` complete the TLS
/// handshake (the server's certificate verified for the URL's host), all under the connect
/// timeout.
pub async fn connect(url: &Url, opts: &Options) -> Result<Conn, ClientError> {
    let authority = url.authority();
    let bind = opts.bind;
    let attempt = async {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&authority)
            .await
            .map_err(|_| ClientError::Resolve(url.host.clone()))?
            .filter(|a| bind.is_none_or(|b| b.is_ipv4() == a.is_ipv4()))
            .collect();
        let mut last = ClientError::Resolve(url.host.clone());
        for addr in addrs {
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()
            } else {
                TcpSocket::new_v6()
            }
            .map_err(|e| ClientError::Connect(authority.clone(), e))?;
            if let Some(ip) = bind {
                socket
                    .bind(SocketAddr::new(ip, 0))
                    .map_err(|e| ClientError::Bind(ip, e))?;
            }
            match socket.connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    return match url.scheme {
                        Scheme::Http => Ok(Conn::Plain(s)),
                        Scheme::Https => tls_connect(url, s, opts).await,
                    };
                }
                Err(e) => last = ClientError::Connect(authority.clone(), e),
            }
        }
        Err(last)
    };
    tokio::time::timeout(opts.connect_timeout, attempt)
        .await
        .map_err(|_| ClientError::ConnectTimeout(authority.clone()))?
}

/// The TLS handshake with `url`'s host over `tcp`.
async fn tls_connect(
    url: &Url,
    tcp: tokio::net::TcpStream,
    opts: &Options,
) -> Result<Conn, ClientError> {
    let fail = |e: String| ClientError::Tls(url.authority(), e);
    let config =
        crate::tls::client::config(opts.ca_file.as_deref()).map_err(|e| fail(e.to_string()))?;
    let name = rustls_pki_types::ServerName::try_from(url.host.clone())
        .map_err(|e| fail(e.to_string()))?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| fail(e.to_string()))?;
    Ok(Conn::Tls(Box::new(tokio_rustls::TlsStream::Client(tls))))
}

/// Read until a complete head; returns it and the bytes after it.
async fn read_head(
    stream: &mut Conn,
    deadline: tokio::time::Instant,
) -> Result<(ResponseHead, Bytes), ClientError> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if let Some((head, n)) = parse_response(&buf)? {
            let _ = buf.split_to(n);
            return Ok((head, buf.freeze()));
        }
        // parse_response refuses heads over the cap, so the buffer stays bounded.
        let n = tokio::time::timeout_at(deadline, stream.read_buf(&mut buf))
            .await
            .map_err(|_| ClientError::Timeout)?
            .map_err(ClientError::Receive)?;
        if n == 0 {
            return Err(ClientError::Closed(buf.freeze()));
        }
    }
}

impl Response {
    /// The whole body (chunked framing removed), at most `max` bytes as sent, within
    /// `timeout`. It ends at its length, its last chunk, or the server's close.
    pub async fn body(&mut self, max: usize, timeout: Duration) -> Result<Vec<u8>, ClientError> {
        let mut body = Body::new(&self.head, max);
        let deadline = tokio::time::Instant::now() + timeout;
        if body.push(&std::mem::take(&mut self.initial))? {
            return Ok(body.into_bytes());
        }
        let mut buf = BytesMut::with_capacity(4096);
        loop {
            buf.clear();
            let n = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut buf))
                .await
                .map_err(|_| ClientError::Timeout)?
                .map_err(ClientError::Receive)?;
            if n == 0 || body.push(&buf)? {
                return Ok(body.into_bytes());
            }
        }
    }

    /// The first `want` bytes of the body or more (whole reads), fewer if the server closes
    /// first; each read within `timeout`. The body is taken as sent (no de-chunking).
    pub async fn body_prefix(
        &mut self,
        want: usize,
        timeout: Duration,
    ) -> Result<Bytes, ClientError> {
        let mut body = BytesMut::from(&self.initial[..]);
        while body.len() < want {
            body.reserve(4096);
            let n = tokio::time::timeout(timeout, self.stream.read_buf(&mut body))
                .await
                .map_err(|_| ClientError::Timeout)?
                .map_err(ClientError::Receive)?;
            if n == 0 {
                break;
            }
        }
        self.initial = Bytes::new();
        Ok(body.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::client::{MAX_REDIRECTS, Version};
    use tokio::net::TcpListener;

    /// A server answering one request per connection with the next of `replies`, which are
    /// made knowing its address; returns it and the requests it read.
    async fn serve(
        replies: impl FnOnce(SocketAddr) -> Vec<Vec<u8>>,
    ) -> (SocketAddr, tokio::task::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let replies = replies(addr);
        let task = tokio::spawn(async move {
            let mut seen = Vec::new();
            for reply in replies {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap();
                seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                s.write_all(&reply).await.unwrap();
            }
            seen
        });
        (addr, task)
    }

    fn get(url: &Url) -> Request {
        Request::new("GET", &url.path, Version::Http10).header("Host", &url.host)
    }

    #[tokio::test]
    async fn follows_redirects_and_keeps_early_body_bytes() {
        let (addr, seen) = serve(|a| {
            vec![
                format!("HTTP/1.0 302 Found\r\nLocation: http://{a}/b\r\n\r\n").into_bytes(),
                b"HTTP/1.0 200 OK\r\nContent-Type: audio/ogg\r\n\r\nOggS".to_vec(),
            ]
        })
        .await;
        let opts = Options {
            redirects: RedirectPolicy::Follow(MAX_REDIRECTS),
            ..Options::default()
        };
        let url = Url::new("127.0.0.1", addr.port(), "/a").unwrap();
        let r = request(&url, get, &opts).await.unwrap();
        assert_eq!(r.url.path, "/b");
        assert_eq!(r.head.header("content-type"), Some("audio/ogg"));
        assert_eq!(&r.initial[..], b"OggS");
        assert_eq!(r.peer, addr);
        let seen = seen.await.unwrap();
        assert_eq!(seen[0], "GET /a HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
        assert_eq!(seen[1], "GET /b HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    }

    #[tokio::test]
    async fn redirect_loops_and_answers() {
        let (addr, _) = serve(|a| {
            let hop = format!("HTTP/1.0 302 Found\r\nLocation: http://{a}/x\r\n\r\n");
            vec![hop.into_bytes(); 3]
        })
        .await;
        let url = Url::new("127.0.0.1", addr.port(), "/x").unwrap();
        let opts = Options {
            redirects: RedirectPolicy::Follow(2),
            ..Options::default()
        };
        let e = request(&url, get, &opts).await.unwrap_err();
        assert_eq!(e.to_string(), "more than 2 redirects");
        // Without following, the 302 is the answer.
        let (addr, _) =
            serve(|_| vec![b"HTTP/1.0 302 Found\r\nLocation: /y\r\n\r\n".to_vec()]).await;
        let url = Url::new("127.0.0.1", addr.port(), "/x").unwrap();
        let r = request(&url, get, &Options::default()).await.unwrap();
        assert_eq!(r.head.status, 302);
    }

    #[tokio::test]
    async fn bodies_closes_and_garbage() {
        let (addr, _) = serve(|_| {
            vec![
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n/a\r\n\r\n0\r\n\r\n"
                    .to_vec(),
                b"HTTP/1.0 200 OK\r\n\r\n0123456789".to_vec(),
                b"HTTP/1.0 200 OK\r\nx: 1".to_vec(),
                b"SSH-2.0-OpenSSH_9.2p1\r\n".to_vec(),
                b"HTTP/1.0 200 OK\r\n\r\nabcdef".to_vec(),
            ]
        })
        .await;
        let url = Url::new("127.0.0.1", addr.port(), "/").unwrap();
        let opts = Options::default();
        let t = Duration::from_secs(5);
        let mut r = request(&url, get, &opts).await.unwrap();
        assert_eq!(r.body(100, t).await.unwrap(), b"/a\r\n");
        let mut r = request(&url, get, &opts).await.unwrap();
        assert_eq!(
            r.body(4, t).await.unwrap_err().to_string(),
            "response body larger than 4 bytes"
        );
        match request(&url, get, &opts).await {
            Err(ClientError::Closed(partial)) => {
                assert_eq!(&partial[..], b"HTTP/1.0 200 OK\r\nx: 1")
            }
            other => panic!("{other:?}"),
        }
        let e = request(&url, get, &opts).await.unwrap_err();
        assert_eq!(e.to_string(), "bad response: malformed status line");
        let mut r = request(&url, get, &opts).await.unwrap();
        let prefix = r.body_prefix(3, t).await.unwrap();
        assert!(prefix.starts_with(b"abc"));
    }

    #[tokio::test]
    async fn connect_errors_are_clear() {
        let opts = Options {
            bind: Some("127.0.0.1".parse().unwrap()),
            ..Options::default()
        };
        // An IPv6 upstream from an IPv4 bind address: no address to try.
        let url = Url::new("::1", 9, "/").unwrap();
        let e = connect(&url, &opts).await.unwrap_err();
        assert_eq!(e.to_string(), "cannot resolve ::1");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = Url::new("127.0.0.1", port, "/").unwrap();
        let e = connect(&url, &Options::default()).await.unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("connect to 127.0.0.1:{port}: ")),
            "{e}"
        );
    }
}
