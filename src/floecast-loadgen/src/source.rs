//! The bench source: one `SOURCE` connection per mount feeding synthetic MP3 frames.
//!
//! Real-time pacing sends `--preroll` seconds of audio at once (so the server's burst buffer is
//! full before listeners arrive), then keeps the stream exactly on the wall clock in ~20 ms
//! ticks. Unpaced sending writes large frame-aligned blocks as fast as TCP allows.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, MissedTickBehavior, timeout};

use crate::mp3::FrameCycle;

/// How a source sends its audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Pace {
    /// 128 kbit/s (or `--bitrate`) on the wall clock, after a pre-roll.
    Realtime,
    /// As fast as the server reads.
    Unpaced,
}

/// Counters one source shares with the reporter.
#[derive(Default)]
pub struct SourceStats {
    /// Audio bytes written so far.
    pub bytes: AtomicU64,
    /// Set when the connection failed after the server accepted it.
    pub failed: AtomicBool,
}

/// Everything needed to open a source connection.
pub struct SourceSpec {
    pub server: SocketAddr,
    pub host_header: String,
    pub mount: String,
    pub user: String,
    pub password: String,
    pub bitrate_kbps: u32,
}

/// Longest the handshake (connect, request, reply) may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The server's reply to a SOURCE is a short head; anything longer is an error.
const MAX_REPLY: usize = 4096;

/// Connects and authenticates; returns the stream once the server answered `200`.
pub async fn connect(spec: &SourceSpec) -> Result<TcpStream, String> {
    let fut = async {
        let mut stream = TcpStream::connect(spec.server)
            .await
            .map_err(|e| format!("source {}: connect: {e}", spec.mount))?;
        let _ = stream.set_nodelay(true);
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", spec.user, spec.password));
        let req = format!(
            "SOURCE {} HTTP/1.0\r\nHost: {}\r\nAuthorization: Basic {auth}\r\n\
             Content-Type: audio/mpeg\r\nUser-Agent: floecast-loadgen\r\n\
             ice-name: floecast bench\r\nice-bitrate: {}\r\n\r\n",
            spec.mount, spec.host_header, spec.bitrate_kbps
        );
        stream
            .write_all(req.as_bytes())
            .await
            .map_err(|e| format!("source {}: send request: {e}", spec.mount))?;
        let mut reply = Vec::with_capacity(256);
        let mut chunk = [0u8; 512];
        while !reply.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| format!("source {}: read reply: {e}", spec.mount))?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&chunk[..n]);
            if reply.len() > MAX_REPLY {
                break;
            }
        }
        let status = String::from_utf8_lossy(&reply);
        let line = status.lines().next().unwrap_or("");
        let code = line.split_whitespace().nth(1).unwrap_or("");
        if line.starts_with("HTTP/1.") && code == "200" {
            Ok(stream)
        } else {
            Err(format!(
                "source {}: server answered {:?}",
                spec.mount,
                status.chars().take(120).collect::<String>()
            ))
        }
    };
    timeout(HANDSHAKE_TIMEOUT, fut)
        .await
        .map_err(|_| format!("source {}: handshake timed out", spec.mount))?
}

/// Feeds audio until the task is aborted or the connection fails.
///
/// An unpaced source also starts in real time (with the pre-roll), and only switches to
/// sending as fast as possible once `unleash` is set. Listeners that are still connecting would
/// otherwise fall behind the server's queue before they are counted.
pub async fn run(
    mut stream: TcpStream,
    cycle: Arc<FrameCycle>,
    pace: Pace,
    preroll_secs: f64,
    stats: Arc<SourceStats>,
    unleash: Arc<AtomicBool>,
) {
    let result: Result<(), std::io::Error> = async {
        let fps = FrameCycle::frames_per_second();
        let preroll = (preroll_secs.max(0.0) * fps).round() as u64;
        let start = Instant::now();
        let mut sent = 0u64;
        let mut buf = Vec::with_capacity(64 * 1024);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        while pace == Pace::Realtime || !unleash.load(Ordering::Relaxed) {
            tick.tick().await;
            let due = preroll + (start.elapsed().as_secs_f64() * fps) as u64;
            if due <= sent {
                continue;
            }
            buf.clear();
            cycle.append_frames(sent, due - sent, &mut buf);
            stream.write_all(&buf).await?;
            stats.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
            sent = due;
        }
        // Unpaced: whole 49-frame cycles, so every write stays frame-aligned.
        let block = cycle.block(256 * 1024);
        loop {
            stream.write_all(&block).await?;
            stats.bytes.fetch_add(block.len() as u64, Ordering::Relaxed);
        }
    }
    .await;
    if let Err(e) = result {
        stats.failed.store(true, Ordering::Relaxed);
        eprintln!("floecast-loadgen: source connection lost: {e}");
    }
}
