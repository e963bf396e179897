//! The one connection type: plain TCP, or TLS over TCP, accepted (clients of the front door)
//! or dialled (the HTTP client's upstreams). Everything after the handshake (listeners,
//! sources, admin, web, relays, pushes) reads and writes a [`Conn`]; what only a TCP socket can
//! do (readiness, a non-blocking look for a hang-up) goes to the socket underneath, so TLS
//! changes nothing but the bytes on the wire.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsStream;

/// A connection, either side. The TLS state is boxed so that the enum, which lives in
/// every listener's task, stays the size of a TCP stream.
#[derive(Debug)]
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    /// The TCP socket underneath, for readiness and for peeking at a hang-up.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.get_ref().0,
        }
    }

    /// Did the client come over TLS (so its URLs are `https://`)?
    pub fn is_tls(&self) -> bool {
        matches!(self, Conn::Tls(_))
    }

    /// Waits until the socket underneath has something to read (or has closed).
    pub async fn readable(&self) -> io::Result<()> {
        self.tcp().readable().await
    }

    /// A write that never waits: what the socket (for TLS, the socket and the TLS send
    /// buffer) takes now, or `WouldBlock`. For TLS, whatever was accepted but could not go
    /// to the socket yet stays in the send buffer, and [`Conn::has_pending_output`] says so.
    pub fn try_write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.try_write_vectored(bufs),
            Conn::Tls(s) => {
                let mut cx = Context::from_waker(std::task::Waker::noop());
                match Pin::new(s.as_mut()).poll_write_vectored(&mut cx, bufs) {
                    Poll::Ready(r) => r,
                    Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
                }
            }
        }
    }

    /// A read that never waits: plaintext now, `Ok(0)` at the end, or `WouldBlock`. For TLS,
    /// records that carry no data (a session ticket) are taken in and give `WouldBlock`.
    pub fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.try_read(buf),
            Conn::Tls(s) => {
                let mut cx = Context::from_waker(std::task::Waker::noop());
                let mut rb = ReadBuf::new(buf);
                match Pin::new(s.as_mut()).poll_read(&mut cx, &mut rb) {
                    Poll::Ready(Ok(())) => Ok(rb.filled().len()),
                    Poll::Ready(Err(e)) => Err(e),
                    Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
                }
            }
        }
    }

    /// TLS records encrypted but not yet taken by the socket (always false for plain TCP).
    /// A writer that pauses between writes flushes them first.
    pub fn has_pending_output(&self) -> bool {
        match self {
            Conn::Plain(_) => false,
            Conn::Tls(s) => s.get_ref().1.wants_write(),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The first byte of a TLS record carrying a handshake (the ClientHello); no HTTP method
/// starts with it.
const TLS_HANDSHAKE: u8 = 0x16;

/// The message of the 400 a plain HTTP request gets on a `tls = "required"` socket.
pub const PLAIN_REFUSED: &str = "This port only speaks TLS: use https://";

/// What a new connection turned out to be.
#[derive(Debug)]
pub enum Opened {
    Conn(Conn),
    /// Plain HTTP on a socket that requires TLS; the caller answers it.
    PlainRefused(TcpStream),
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("timed out before the TLS handshake completed")]
    Timeout,
    #[error("closed before sending anything")]
    Closed,
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("TLS handshake failed: {0}")]
    Handshake(io::Error),
}

/// Tell TLS from plain HTTP by the first byte the client sends (peeked, so plain HTTP reads
/// its request from the start), and complete a TLS handshake by `deadline`. rustls caps the
/// size of every handshake message, so a handshake is bounded in bytes as well as time.
pub async fn open(
    stream: TcpStream,
    mode: crate::config::TlsMode,
    certs: &crate::tls::Certificates,
    deadline: tokio::time::Instant,
) -> Result<Opened, OpenError> {
    use crate::config::TlsMode;
    let acceptor = match (mode, certs.acceptor()) {
        (TlsMode::Off, _) | (_, None) => return Ok(Opened::Conn(Conn::Plain(stream))),
        (_, Some(acceptor)) => acceptor,
    };
    let mut first = [0u8; 1];
    let n = tokio::time::timeout_at(deadline, stream.peek(&mut first))
        .await
        .map_err(|_| OpenError::Timeout)??;
    if n == 0 {
        return Err(OpenError::Closed);
    }
    if first[0] != TLS_HANDSHAKE {
        return Ok(match mode {
            TlsMode::Required => Opened::PlainRefused(stream),
            _ => Opened::Conn(Conn::Plain(stream)),
        });
    }
    let tls = tokio::time::timeout_at(deadline, acceptor.accept(stream))
        .await
        .map_err(|_| OpenError::Timeout)?
        .map_err(OpenError::Handshake)?;
    Ok(Opened::Conn(Conn::Tls(Box::new(TlsStream::Server(tls)))))
}
