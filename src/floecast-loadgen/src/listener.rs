//! Bench listeners: connect, send a GET, time the first body byte, then count bytes.
//!
//! Every listener owns one slot in [`Shared`]: its state, its byte counter and its time to
//! first byte. The reporter reads the slots with relaxed atomics; nothing else is shared.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpSocket;
use tokio::time::{Instant, timeout, timeout_at};

use crate::tls::{Client, Stream};

/// Not started yet.
pub const PENDING: u8 = 0;
/// Connecting or waiting for the head / first byte.
pub const STARTING: u8 = 1;
/// Got `200` and at least one body byte; still reading.
pub const STREAMING: u8 = 2;
/// Never got to `STREAMING`.
pub const FAILED: u8 = 3;
/// Was `STREAMING`, then the server closed or reset the connection.
pub const DROPPED: u8 = 4;

/// Why a listener failed (index into [`Shared::fails`]).
#[derive(Debug, Clone, Copy)]
pub enum Fail {
    /// Binding the local address failed (port exhaustion).
    Bind = 0,
    ConnectTimeout = 1,
    /// Refused or reset while connecting.
    ConnectError = 2,
    /// No complete head plus first body byte within the head timeout.
    HeadTimeout = 3,
    /// The status was not 200, or the head was malformed.
    BadStatus = 4,
    /// Closed or reset before the first body byte.
    ClosedEarly = 5,
}

/// Report keys of the [`Fail`] variants, in index order.
pub const FAIL_NAMES: [&str; 6] = [
    "fail_bind",
    "fail_connect_timeout",
    "fail_connect_error",
    "fail_head_timeout",
    "fail_bad_status",
    "fail_closed_early",
];

/// Per-listener slots plus global counters.
pub struct Shared {
    pub state: Vec<AtomicU8>,
    /// Body bytes received.
    pub bytes: Vec<AtomicU64>,
    /// Time to first body byte in microseconds (0 = none yet).
    pub ttfb_us: Vec<AtomicU64>,
    /// Listeners that reached `STREAMING` or `FAILED`.
    pub resolved: AtomicUsize,
    pub fails: [AtomicU64; 6],
    /// Drops by EOF and by error (reset).
    pub drops_eof: AtomicU64,
    pub drops_err: AtomicU64,
}

impl Shared {
    pub fn new(n: usize) -> Self {
        Shared {
            state: (0..n).map(|_| AtomicU8::new(PENDING)).collect(),
            bytes: (0..n).map(|_| AtomicU64::new(0)).collect(),
            ttfb_us: (0..n).map(|_| AtomicU64::new(0)).collect(),
            resolved: AtomicUsize::new(0),
            fails: Default::default(),
            drops_eof: AtomicU64::new(0),
            drops_err: AtomicU64::new(0),
        }
    }
}

/// What every listener shares.
pub struct ListenerConfig {
    pub server: SocketAddr,
    pub host_header: String,
    pub mounts: Vec<String>,
    /// Local source addresses 127.0.0.1 ..= 127.0.0.N to bind, round robin (0 = don't bind).
    pub local_addrs: u8,
    pub read_buf: usize,
    pub connect_timeout: Duration,
    pub head_timeout: Duration,
    /// `--tls`: listeners connect over TLS (the handshake counts into the time to first byte).
    pub tls: Option<Client>,
}

/// Longest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// Runs listener `i` until its connection ends or the task is aborted.
pub async fn run(i: usize, cfg: Arc<ListenerConfig>, shared: Arc<Shared>) {
    shared.state[i].store(STARTING, Ordering::Relaxed);
    let t0 = Instant::now();
    let mut buf = vec![0u8; cfg.read_buf.max(MAX_HEAD)];
    let mut stream = match start(i, &cfg, &shared, t0, &mut buf).await {
        Ok(s) => s,
        Err(f) => {
            shared.fails[f as usize].fetch_add(1, Ordering::Relaxed);
            shared.state[i].store(FAILED, Ordering::Relaxed);
            shared.resolved.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    shared.state[i].store(STREAMING, Ordering::Relaxed);
    shared.resolved.fetch_add(1, Ordering::Relaxed);
    // Only the head needed the large buffer; keep per-listener memory at --read-buf.
    buf.truncate(cfg.read_buf.max(1));
    buf.shrink_to_fit();
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => {
                shared.drops_eof.fetch_add(1, Ordering::Relaxed);
                break;
            }
            Ok(n) => {
                shared.bytes[i].fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(_) => {
                shared.drops_err.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    }
    shared.state[i].store(DROPPED, Ordering::Relaxed);
}

/// Connects, requests the mount and waits for the head and the first body byte.
async fn start(
    i: usize,
    cfg: &ListenerConfig,
    shared: &Shared,
    t0: Instant,
    buf: &mut [u8],
) -> Result<Stream, Fail> {
    let mut stream = connect(i, cfg).await?;
    let deadline = Instant::now() + cfg.head_timeout;
    let mount = &cfg.mounts[i % cfg.mounts.len()];
    let req = format!(
        "GET {mount} HTTP/1.0\r\nHost: {}\r\nUser-Agent: floecast-loadgen\r\n\r\n",
        cfg.host_header
    );
    match timeout_at(deadline, stream.write_all(req.as_bytes())).await {
        Err(_) => return Err(Fail::HeadTimeout),
        Ok(Err(_)) => return Err(Fail::ClosedEarly),
        Ok(Ok(())) => {}
    }
    let mut filled = 0usize;
    let mut body_at: Option<usize> = None;
    loop {
        if filled == buf.len() {
            return Err(Fail::BadStatus);
        }
        let n = match timeout_at(deadline, stream.read(&mut buf[filled..])).await {
            Err(_) => return Err(Fail::HeadTimeout),
            Ok(Err(_)) | Ok(Ok(0)) => return Err(Fail::ClosedEarly),
            Ok(Ok(n)) => n,
        };
        filled += n;
        if body_at.is_none() {
            if let Some(end) = find_head_end(&buf[..filled]) {
                if !status_ok(&buf[..end]) {
                    return Err(Fail::BadStatus);
                }
                body_at = Some(end);
            } else if filled >= MAX_HEAD {
                return Err(Fail::BadStatus);
            }
        }
        if let Some(at) = body_at
            && filled > at
        {
            let us = t0.elapsed().as_micros().max(1) as u64;
            shared.ttfb_us[i].store(us, Ordering::Relaxed);
            shared.bytes[i].store((filled - at) as u64, Ordering::Relaxed);
            return Ok(stream);
        }
        if body_at.is_some() {
            // Head complete but no body yet: start over at the front of the buffer.
            filled = 0;
            body_at = Some(0);
        }
    }
}

/// Connects from the listener's local address (and handshakes, for `--tls`) within the
/// connect timeout.
pub async fn connect(i: usize, cfg: &ListenerConfig) -> Result<Stream, Fail> {
    let socket = TcpSocket::new_v4().map_err(|_| Fail::Bind)?;
    if cfg.local_addrs > 0 {
        let host = 1 + (i % usize::from(cfg.local_addrs)) as u8;
        let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)), 0);
        socket.bind(local).map_err(|_| Fail::Bind)?;
    }
    let open = async {
        let tcp = socket.connect(cfg.server).await?;
        match &cfg.tls {
            Some(client) => client.handshake(tcp).await,
            None => Ok(Stream::Plain(tcp)),
        }
    };
    match timeout(cfg.connect_timeout, open).await {
        Err(_) => Err(Fail::ConnectTimeout),
        Ok(Err(_)) => Err(Fail::ConnectError),
        Ok(Ok(s)) => Ok(s),
    }
}

/// Offset just past the blank line ending the head, if present.
fn find_head_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// `HTTP/1.x 200 …` or the SHOUTcast `ICY 200 …`.
fn status_ok(head: &[u8]) -> bool {
    let line_end = head.iter().position(|&c| c == b'\r').unwrap_or(head.len());
    let mut parts = head[..line_end].split(|&c| c == b' ');
    let proto = parts.next().unwrap_or(b"");
    let code = parts.next().unwrap_or(b"");
    (proto.starts_with(b"HTTP/1.") || proto == b"ICY") && code == b"200"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_parsing() {
        let h = b"HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\nxyz";
        let end = find_head_end(h).expect("complete head");
        assert_eq!(&h[end..], b"xyz");
        assert!(status_ok(&h[..end]));
        assert!(status_ok(b"ICY 200 OK\r\n\r\n"));
        assert!(!status_ok(b"HTTP/1.0 404 File Not Found\r\n\r\n"));
        assert!(!status_ok(b"garbage"));
        assert_eq!(find_head_end(b"HTTP/1.0 200 OK\r\n"), None);
    }
}
