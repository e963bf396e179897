//! The listener hot path, in phases: admission and the response head (`admit.rs`), then the
//! body: a loop that sends the mount's shared blocks with vectored writes (`writer.rs`).
//! The request's record logs it when it is done; nothing here writes the access log.
//!
//! Per listener there is only a cursor and a few counters; audio is never copied. Writes are
//! coalesced: once a listener has caught up, it waits up to `flush-interval` before the next
//! write, so thousands of listeners cost a few large writes a second each rather than one
//! small write per block. ICY metadata is interleaved by slicing the shared `Bytes`.

mod admit;
mod writer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::net::Conn;
use bytes::Bytes;

use crate::format::Block;
use crate::http::RequestHead;
use crate::mount::{Cursor, Kick, Mount, ReadOutcome, Redirect};
use crate::net::RequestRecord;
use crate::server::Server;
use admit::{Admission, Open, admit};
pub use admit::{listener_head_len, resolve};
use writer::{IcyState, write_all};

/// Most bytes gathered for one write (the burst goes out in a few of these).
const MAX_WRITE: usize = 256 * 1024;
/// How often a blocked write checks whether the listener fell out of the queue.
const LAG_CHECK: Duration = Duration::from_secs(1);

/// Why a listener left, for logs and stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    Client,
    Slow,
    SourceGone,
    Kicked,
    Shutdown,
}

/// The longest a client gets to take a reply that ends its request (a refusal, HEAD).
const REPLY_TIME: Duration = Duration::from_secs(5);

/// One listener request, in phases: admission (standby wait, OPTIONS and HEAD, listener
/// authentication, a listener slot), the reply head, the body (the stream), and done: the
/// request's record, dropped on the way out whatever happened, writes its access-log line.
pub async fn serve(
    server: Arc<Server>,
    mut stream: Conn,
    head: RequestHead,
    peer: SocketAddr,
    mount: Arc<Mount>,
) {
    let mut record = RequestRecord::for_head(&server, &head, &peer);
    // Admission, and the reply of a request answered without a stream, run in a future of
    // their own, boxed and freed once the listener is admitted: their locals (the request
    // head, the config, a login, the standby wait, a reply's write) would otherwise keep
    // their space in every listener's task for as long as it stays.
    let admitted = Box::pin(async {
        match admit(&server, &mut stream, head, peer, mount, &mut record).await {
            Admission::Listen(open) => {
                record.status = 200;
                Some(open)
            }
            Admission::Answered(reply) => {
                record.status = reply.status;
                reply.send(&mut stream, REPLY_TIME).await;
                None
            }
        }
    });
    let Some(Open {
        mut session,
        response,
        kick,
        id,
        limit_timer,
        on_leave,
    }) = admitted.await
    else {
        return;
    };

    // The reply head goes out with the first data.
    let exit = session.run(&server, &mut stream, response, &kick, id).await;
    if let Some(le) = session.mount.unregister_listener(id) {
        record.user_agent = Some(le.user_agent.into());
    }
    session.mount.remove_listener();
    if let Some(t) = limit_timer {
        t.abort();
    }
    if let Some(r) = on_leave {
        r.send(record.elapsed().as_secs());
    }
    let label = server.metrics.mount_label(&session.mount.name);
    server
        .metrics
        .listener_disconnects
        .with_label_values(&[&label, exit.label()])
        .inc();
    tracing::debug!(mount = %session.mount.name, ip = %record.peer(), ?exit, bytes = session.sent, "listener left");
    record.bytes = session.sent;
}

impl Exit {
    /// The `reason` label of `floecast_listener_disconnects_total`.
    fn label(self) -> &'static str {
        match self {
            Exit::Client => "client",
            Exit::Slow => "slow",
            Exit::SourceGone => "source_gone",
            Exit::Kicked => "kicked",
            Exit::Shutdown => "shutdown",
        }
    }
}

/// Bytes a coalesced write aims for: enough to make the syscall worth it, small next to
/// queue-size so a listener pausing for it never falls behind the queue.
const COALESCE_TARGET: usize = 64 * 1024;

/// How long to pause before the next write. Audio streams at radio bitrates gather far less
/// than the target in `flush_interval`, so they pause the full interval; a fast stream
/// (video, an unpaced source) gets a pause scaled down so each write stays near the target.
fn coalesce_pause(flush_interval: Duration, last_pause: Duration, last_batch: usize) -> Duration {
    if last_batch <= COALESCE_TARGET {
        return flush_interval;
    }
    let scaled = last_pause.mul_f64(COALESCE_TARGET as f64 / last_batch as f64);
    // Below a millisecond a timer costs more than it saves; just let others run.
    if scaled < Duration::from_millis(1) {
        Duration::ZERO
    } else {
        scaled.min(flush_interval)
    }
}

/// Has the client hung up? Players send nothing after their request, so readability means
/// EOF or an error; stray bytes are read and dropped. Over TLS this looks at the TCP socket
/// underneath: what a player sends there (a close_notify) is dropped the same way.
pub(crate) fn client_gone(stream: &Conn) -> bool {
    let mut buf = [0u8; 256];
    match stream.tcp().try_read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

/// One listener's position and state. Small on purpose: this exists once per listener.
struct Session {
    mount: Arc<Mount>,
    /// Where we read; it begins on a start point (new listener, or just moved).
    cursor: Cursor,
    /// The mount's redirect epoch when we joined it.
    epoch: u64,
    icy: IcyState,
    sent: u64,
    flush_interval: Duration,
    /// The pause before the last write, for sizing the next one.
    last_pause: Duration,
}

impl Session {
    async fn run(
        &mut self,
        server: &Server,
        stream: &mut Conn,
        response: Bytes,
        kick: &Kick,
        id: u64,
    ) -> Exit {
        // Shutdown reaches listeners through their kick, so no listener sits in a
        // server-wide waiter list.
        let kicked = || {
            if server.is_shutting_down() {
                Exit::Shutdown
            } else {
                Exit::Kicked
            }
        };
        // The head, then the intro, then the burst: all in the first write.
        let mut out: Vec<Bytes> = vec![response];
        if let Some(intro) = self.mount.intro.clone() {
            self.icy.push(&self.mount, intro, &mut out);
        }
        let mut head_pending = true;
        let mut batch: Vec<Block> = Vec::new();
        loop {
            if server.is_shutting_down() {
                return Exit::Shutdown;
            }
            if kick.is_kicked() {
                return Exit::Kicked;
            }
            // Moves (fallback, override, admin) come first: they change what we read.
            if self.mount.redirect_epoch() != self.epoch {
                self.epoch = self.mount.redirect_epoch();
                if let Some(to) = self.mount.redirect() {
                    if !Arc::ptr_eq(&to.target, &self.mount)
                        && to.target.family == self.mount.family
                        && !to.target.is_ended()
                    {
                        self.move_to(to, id, &mut batch, &mut out);
                        continue;
                    }
                }
            }

            batch.clear();
            match self.mount.read(&mut self.cursor, MAX_WRITE, &mut batch) {
                ReadOutcome::Lagged => {
                    self.mount
                        .stats
                        .slow_listeners
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(mount = %self.mount.name, id, "listener fell too far behind, removing");
                    return Exit::Slow;
                }
                ReadOutcome::Advanced(_) | ReadOutcome::Idle => {}
            }
            for block in batch.drain(..) {
                if let Some(h) = self.cursor.new_header(&block) {
                    self.icy.push(&self.mount, h.clone(), &mut out);
                }
                self.icy.push(&self.mount, block.data, &mut out);
            }
            // Keep no capacity between writes: it would be held by every idle listener.
            batch = Vec::new();

            if !out.is_empty() {
                // Biased: the kick's waker is only set up when the write has to wait.
                let written = tokio::select! {
                    biased;
                    r = write_all(stream, &out, &self.mount, self.cursor.seq(), LAG_CHECK) => r,
                    _ = kick.notified() => return kicked(),
                };
                let batch_bytes = match written {
                    Ok(n) => {
                        let body = if head_pending {
                            n.saturating_sub(out[0].len())
                        } else {
                            n
                        };
                        head_pending = false;
                        self.sent += body as u64;
                        self.mount
                            .stats
                            .total_bytes_sent
                            .fetch_add(body as u64, Ordering::Relaxed);
                        body
                    }
                    Err(writer::WriteError::Lagged) => {
                        self.mount
                            .stats
                            .slow_listeners
                            .fetch_add(1, Ordering::Relaxed);
                        return Exit::Slow;
                    }
                    Err(writer::WriteError::Io(e)) => {
                        tracing::trace!("listener write failed: {e}");
                        return Exit::Client;
                    }
                };
                out = Vec::new();
                // Caught up: give the source time to queue more, so the next write is a large
                // one. This sleep, not the mount's wake-ups, paces a listener while audio
                // flows. A listener still behind (high bitrate, recovering) goes on at once.
                if self.cursor.seq() >= self.mount.tail() {
                    let pause = coalesce_pause(self.flush_interval, self.last_pause, batch_bytes);
                    self.last_pause = pause;
                    // Kicks are seen at the top of the loop. A hang-up ends the pause at once:
                    // left to the next write, it would be logged up to two pauses late (the
                    // first write after it still succeeds), with a longer duration.
                    if pause.is_zero() {
                        tokio::task::yield_now().await;
                    } else {
                        tokio::select! {
                            _ = tokio::time::sleep(pause) => {}
                            _ = self.mount.surged() => {}
                            _ = stream.readable() => if client_gone(stream) {
                                return Exit::Client;
                            },
                        }
                    }
                }
                continue;
            }

            // Idle (boxed: a quiet source is the rare case, and its wakers would otherwise
            // enlarge every listener's task).
            if let Some(exit) = Box::pin(self.wait_for_source(stream, kick)).await {
                return if exit == Exit::Kicked { kicked() } else { exit };
            }
        }
    }

    /// Wait until the mount has something new for us, or a reason to leave.
    async fn wait_for_source(&self, stream: &Conn, kick: &Kick) -> Option<Exit> {
        // Register for the wake-up first, then look again, so a block pushed in between
        // is not missed.
        let notified = self.mount.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.mount.tail() > self.cursor.seq() || self.mount.redirect_epoch() != self.epoch {
            return None;
        }
        if self.mount.is_ended() {
            return Some(Exit::SourceGone);
        }
        tokio::select! {
            _ = &mut notified => None,
            _ = kick.notified() => Some(Exit::Kicked),
            // A quiet source must not keep a hung-up listener's slot forever.
            _ = stream.readable() => client_gone(stream).then_some(Exit::Client),
        }
    }

    /// Splice over to another mount: what this one queued before the move goes out first,
    /// then the other's blocks from the same moment on (see `Cursor::splice`).
    fn move_to(&mut self, to: Redirect, id: u64, batch: &mut Vec<Block>, out: &mut Vec<Bytes>) {
        let Redirect { target, until } = to;
        tracing::debug!(from = %self.mount.name, to = %target.name, "listener moved");
        batch.clear();
        let left = self.mount.depart(&mut self.cursor, until, batch);
        for block in batch.drain(..) {
            if let Some(h) = self.cursor.new_header(&block) {
                self.icy.push(&self.mount, h.clone(), out);
            }
            self.icy.push(&self.mount, block.data, out);
        }
        let entry = self.mount.unregister_listener(id);
        self.mount.remove_listener();
        target.add_moved_listener();
        if let Some(entry) = entry {
            target.register_listener(id, entry);
        }
        target.splice(&mut self.cursor, &left);
        self.icy.moved();
        self.epoch = target.redirect_epoch();
        self.mount = target;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalescing_pause_scales_with_stream_rate() {
        let fi = Duration::from_millis(500);
        // 128 kbit/s: 8 KB per 500 ms, well under the target: full interval.
        assert_eq!(coalesce_pause(fi, fi, 8_000), fi);
        // 4 MB gathered in 500 ms: aim for 64 KiB next time.
        let p = coalesce_pause(fi, fi, 4 * 1024 * 1024);
        assert!(
            p > Duration::from_millis(7) && p < Duration::from_millis(8),
            "{p:?}"
        );
        // Faster still: no timer at all.
        assert_eq!(
            coalesce_pause(fi, Duration::from_millis(1), 1 << 20),
            Duration::ZERO
        );
    }
}
