//! Push relays: each `[[push]]` is a task that follows a local mount like an internal listener
//! (clean start, header first, shared `Bytes`) and writes it to a remote server as its source.
//! It never copies audio, never waits on a remote without a bound, never retries without backoff.

use std::io::IoSlice;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::net::Conn;
use bytes::{Buf, Bytes};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use super::push_proto::{self, Login, MetadataReply, Method, ReplyTracker, Target, Verdict};
pub use super::push_state::{PushPhase, PushState, Pushes};
use crate::backoff::{Backoff, Jitter};
use crate::config::PushProtocol;
use crate::format::{Block, Family};
use crate::mount::{Cursor, Mount, ReadOutcome, Seq};
use crate::net::client::{self, CONNECT_TIMEOUT, ClientError, Options};
use crate::random::random_u64;
use crate::server::Server;
use crate::supervisor::tasks::Stop;

/// The remote must answer a source request or a metadata update within this.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a blocked write checks whether the push fell out of the mount's queue.
const LAG_CHECK: Duration = Duration::from_secs(1);
/// A remote that accepts no bytes at all for this long is given up on.
const WRITE_STALL: Duration = Duration::from_secs(20);
/// While idle, title changes are looked for at least this often.
const IDLE_TICK: Duration = Duration::from_secs(1);
/// A connection that streamed this long counts as healthy: backoff starts over.
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// Reconnect backoff: from a second up to a minute, jittered to half or all of it.
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// After a refusal (401/403) the backoff starts higher and caps higher: retrying a wrong
/// password every second only fills the remote's log.
const REFUSED_BASE: Duration = Duration::from_secs(5);
const REFUSED_MAX: Duration = Duration::from_secs(300);
/// Most bytes gathered for one write.
const MAX_WRITE: usize = 256 * 1024;
/// At most this many buffers per `writev`.
const MAX_IOV: usize = 64;
/// Largest metadata reply we read.
const MAX_METADATA_REPLY: usize = 16 * 1024;
/// Pause before the first title update of a connection, so the remote has started the mount.
const TITLE_SETTLE: Duration = Duration::from_millis(300);

/// How a session ended without a failure.
enum End {
    /// The local mount's source left; wait for the next one.
    SourceGone,
    Shutdown,
}

/// Why a connection attempt or session failed.
#[derive(Debug)]
struct Failure {
    message: String,
    /// 401/403: back off longer.
    refused: bool,
    /// A PUT the remote did not understand: try SOURCE (auto mode only).
    method_unsupported: bool,
}

impl Failure {
    fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            refused: false,
            method_unsupported: false,
        }
    }
}

/// The live local mount called `name`, if any.
fn live_mount(server: &Server, name: &str) -> Option<Arc<Mount>> {
    server.registry.get(name).filter(|m| !m.is_ended())
}

/// One push, until shutdown or until it is asked to stop. Either closes its connection at
/// once, whatever it was waiting for.
pub(crate) async fn run(server: Arc<Server>, state: Arc<PushState>, mut stop: Stop) {
    let shutdown = server.shutdown_notified();
    if server.is_shutting_down() {
        return;
    }
    tokio::select! {
        _ = keep_pushing(&server, &state) => {}
        _ = stop.requested() => {}
        _ = shutdown => {}
    }
}

/// Push the local mount whenever it is live, reconnecting with backoff.
async fn keep_pushing(server: &Arc<Server>, state: &Arc<PushState>) {
    let label = state.label();
    let mut backoff = Backoff::new(BACKOFF_BASE, BACKOFF_MAX, Jitter::HalfToFull, random_u64())
        .with_refused(REFUSED_BASE, REFUSED_MAX);
    let mut mounts = server.registry.subscribe();
    // In auto mode, once the remote refused PUT, go straight to SOURCE.
    let mut method = match state.config.protocol {
        PushProtocol::Source => Method::Source,
        PushProtocol::Auto | PushProtocol::Put => Method::Put,
    };
    let bind: Option<IpAddr> = state.config.bind.as_deref().and_then(|b| b.parse().ok());
    loop {
        if server.is_shutting_down() {
            return;
        }
        // Seen now: a mount registered after this look wakes the wait below.
        mounts.borrow_and_update();
        let Some(mount) = live_mount(server, &state.config.mount) else {
            if state.phase() != PushPhase::Waiting {
                tracing::info!(push = %label, "local mount has no source; waiting");
                state.set_phase(PushPhase::Waiting);
            }
            let shutdown = server.shutdown_notified();
            tokio::select! {
                _ = mounts.changed() => {}
                _ = shutdown => return,
            }
            continue;
        };

        state.set_phase(PushPhase::Connecting);
        let started = Instant::now();
        let mut result = session(server, state, &mount, method, bind).await;
        if let Err(f) = &result {
            if f.method_unsupported && state.config.protocol == PushProtocol::Auto {
                tracing::info!(push = %label, "remote refused PUT ({}); falling back to SOURCE", f.message);
                method = Method::Source;
                result = session(server, state, &mount, method, bind).await;
            }
        }
        match result {
            Ok(End::Shutdown) => return,
            Ok(End::SourceGone) => {
                tracing::info!(push = %label, "local source ended; disconnected from the remote");
                backoff.reset();
                state.set_phase(PushPhase::Waiting);
            }
            Err(f) => {
                if started.elapsed() >= STABLE_AFTER {
                    backoff.reset();
                }
                let delay = if f.refused {
                    backoff.next_refused_delay()
                } else {
                    backoff.next_delay()
                };
                state.set_error(&f.message);
                if f.refused {
                    tracing::error!(
                        push = %label,
                        "remote refused the source login: {}; check the push's username, password and remote mount; retrying in {:.1} s",
                        f.message,
                        delay.as_secs_f64()
                    );
                } else {
                    tracing::warn!(push = %label, "push failed: {}; retrying in {:.1} s", f.message, delay.as_secs_f64());
                }
                let shutdown = server.shutdown_notified();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown => return,
                }
            }
        }
    }
}

/// Log in as the source of the remote mount. The body waits for the remote's first reply:
/// a `100 Continue` to PUT, or the final status.
async fn login(
    state: &PushState,
    mount: &Mount,
    method: Method,
    bind: Option<IpAddr>,
) -> Result<(Conn, ReplyTracker), Failure> {
    state.count_attempt();
    let target = &state.target;
    let url = target
        .endpoint()
        .ok_or_else(|| Failure::new(format!("not a usable remote: {}", target.url())))?;
    let request = push_proto::source_request(method, target, &mount.info().stream, &mount.codec());
    let opts = Options {
        bind,
        ca_file: target.tls.ca_file.clone(),
        response_timeout: REPLY_TIMEOUT,
        ..Options::default()
    };
    let reply = client::request(&url, |_| request.clone(), &opts)
        .await
        .map_err(|e| login_failure(method, e))?;
    let mut tracker = ReplyTracker::new();
    match tracker.first_head(reply.head, &reply.initial) {
        Err(e) => Err(Failure::new(format!("bad reply: {e}"))),
        Ok(Login::Pending | Login::Streaming) => Ok((reply.stream, tracker)),
        Ok(Login::Ended {
            head,
            verdict,
            message,
        }) => {
            let mut text = format!("{} {} {}", method.name(), head.status, head.reason);
            if !message.is_empty() {
                text.push_str(&format!(" ({message})"));
            }
            Err(Failure {
                message: text,
                refused: verdict == Verdict::Refused,
                method_unsupported: verdict == Verdict::MethodUnsupported && method == Method::Put,
            })
        }
    }
}

/// A login that got no decisive reply, in the push's words.
fn login_failure(method: Method, e: ClientError) -> Failure {
    match e {
        // icecast closes without a word on a method it does not know.
        ClientError::Closed(_) => Failure {
            message: format!(
                "remote closed the connection without replying to {}",
                method.name()
            ),
            refused: false,
            method_unsupported: method == Method::Put,
        },
        ClientError::Timeout => Failure::new(format!(
            "no reply to {} within {REPLY_TIMEOUT:?}",
            method.name()
        )),
        ClientError::Head(e) => Failure::new(format!("bad reply: {e}")),
        ClientError::Send(e) => Failure::new(format!("sending the source request: {e}")),
        ClientError::Receive(e) => Failure::new(format!("reading the reply: {e}")),
        e => Failure::new(e.to_string()),
    }
}

/// Connect, log in and stream until the source goes, the remote fails, or shutdown.
async fn session(
    server: &Server,
    state: &Arc<PushState>,
    mount: &Arc<Mount>,
    method: Method,
    bind: Option<IpAddr>,
) -> Result<End, Failure> {
    let shutdown = server.shutdown_notified();
    let (stream, tracker) = tokio::select! {
        r = login(state, mount, method, bind) => r?,
        _ = shutdown => return Ok(End::Shutdown),
    };
    tracing::info!(push = %state.label(), method = method.name(), "push relay connected");
    state.set_up(method);

    // Titles go out on their own connection so a slow admin reply never stalls the audio.
    let (titles, titles_rx) = watch::channel(None::<String>);
    let forwards_titles = mount.family != Family::Ogg;
    let forwarder = forwards_titles.then(|| {
        let task = tokio::spawn(forward_titles(state.clone(), bind, titles_rx));
        AbortOnDrop(task)
    });
    let mut follow = Follow {
        cursor: mount.burst_cursor(),
        meta_version: u64::MAX,
    };
    let result = stream_to(
        server,
        state,
        mount,
        stream,
        tracker,
        &mut follow,
        &titles,
        forwards_titles,
    )
    .await;
    drop(forwarder);
    result
}

/// Aborts a helper task when the session that owns it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The push's reading position in its mount (as a listener's).
struct Follow {
    cursor: Cursor,
    /// The mount's metadata version last looked at.
    meta_version: u64,
}

#[allow(clippy::too_many_arguments)]
async fn stream_to(
    server: &Server,
    state: &PushState,
    mount: &Arc<Mount>,
    mut stream: Conn,
    mut tracker: ReplyTracker,
    f: &mut Follow,
    titles: &watch::Sender<Option<String>>,
    forwards_titles: bool,
) -> Result<End, Failure> {
    let mut batch: Vec<Block> = Vec::new();
    let mut out: Vec<Bytes> = Vec::new();
    loop {
        if server.is_shutting_down() {
            return Ok(End::Shutdown);
        }
        let version = mount.meta_version();
        if version != f.meta_version {
            f.meta_version = version;
            let title = mount.metadata().display();
            if forwards_titles && !title.is_empty() {
                let _ = titles.send(Some(title));
            }
        }

        batch.clear();
        match mount.read(&mut f.cursor, MAX_WRITE, &mut batch) {
            ReadOutcome::Lagged => {
                // Fell a whole queue behind between writes: skip to the next clean start,
                // as a slow listener would; what was sent so far ended on a block boundary.
                tracing::warn!(push = %state.label(), "push fell a queue behind; skipping ahead");
                mount.rejoin(&mut f.cursor);
                continue;
            }
            ReadOutcome::Advanced(_) | ReadOutcome::Idle => {}
        }
        for block in batch.drain(..) {
            if let Some(h) = f.cursor.new_header(&block) {
                out.push(h.clone());
            }
            if !block.data.is_empty() {
                out.push(block.data);
            }
        }
        if !out.is_empty() {
            write_out(&mut stream, &mut out, mount, f.cursor.seq(), state).await?;
            continue;
        }

        // Idle: wait for blocks, the end of the source, a word from the remote, or shutdown.
        let notified = mount.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if mount.tail() > f.cursor.seq() {
            continue;
        }
        if mount.is_ended() {
            return Ok(End::SourceGone);
        }
        let shutdown = server.shutdown_notified();
        tokio::select! {
            _ = &mut notified => {}
            _ = shutdown => return Ok(End::Shutdown),
            _ = tokio::time::sleep(IDLE_TICK) => {}
            r = stream.readable() => {
                if r.is_ok() {
                    check_remote(&mut stream, &mut tracker)?;
                }
            }
        }
    }
}

/// Read what the remote sent while we stream: EOF or a late refusal ends the session, other
/// bytes (icecast's `200 OK` after the 100) are dropped.
fn check_remote(stream: &mut Conn, tracker: &mut ReplyTracker) -> Result<(), Failure> {
    let mut buf = [0u8; 1024];
    match stream.try_read(&mut buf) {
        Ok(0) => Err(Failure::new("remote closed the connection")),
        Ok(n) => match tracker.push(&buf[..n]) {
            Ok(Login::Ended { head, message, .. }) => Err(Failure::new(format!(
                "remote ended the stream: {} {} {message}",
                head.status, head.reason
            ))),
            Ok(_) => Ok(()),
            Err(e) => Err(Failure::new(format!("bad reply: {e}"))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(Failure::new(format!("connection error: {e}"))),
    }
}

/// Write every buffer in order with vectored writes. A partial write advances the shared
/// `Bytes` handles (no copy). While blocked, give up when the mount's queue has moved past
/// `cursor` (the remote is a queue behind) or nothing was accepted for WRITE_STALL.
async fn write_out(
    stream: &mut Conn,
    out: &mut Vec<Bytes>,
    mount: &Mount,
    cursor: Seq,
    state: &PushState,
) -> Result<(), Failure> {
    let mut first = 0;
    let mut stalled = Duration::ZERO;
    while first < out.len() {
        let written = {
            let slices: Vec<IoSlice<'_>> = out[first..]
                .iter()
                .take(MAX_IOV)
                .map(|b| IoSlice::new(b))
                .collect();
            tokio::time::timeout(LAG_CHECK, stream.write_vectored(&slices)).await
        };
        match written {
            Ok(Ok(0)) => return Err(Failure::new("remote closed the connection")),
            Ok(Ok(mut n)) => {
                stalled = Duration::ZERO;
                state.count_sent(n as u64);
                while n > 0 && first < out.len() {
                    let len = out[first].len();
                    if n >= len {
                        n -= len;
                        first += 1;
                    } else {
                        out[first].advance(n);
                        n = 0;
                    }
                }
            }
            Ok(Err(e)) => return Err(Failure::new(format!("write to the remote: {e}"))),
            Err(_) => {
                stalled += LAG_CHECK;
                if mount.is_lagged(cursor) {
                    return Err(Failure::new(
                        "remote too slow: the push fell a whole queue behind",
                    ));
                }
                if stalled >= WRITE_STALL {
                    return Err(Failure::new(format!(
                        "remote accepted no data for {} s",
                        WRITE_STALL.as_secs()
                    )));
                }
            }
        }
    }
    // Over TLS, records the socket did not take yet go out before the push waits for more.
    if stream.has_pending_output() {
        match tokio::time::timeout(WRITE_STALL, stream.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Failure::new(format!("write to the remote: {e}"))),
            Err(_) => return Err(Failure::new("remote accepted no data")),
        }
    }
    out.clear();
    Ok(())
}

/// Send each new title to the remote's `/admin/metadata`, latest first: titles that change
/// while one is in flight collapse into the newest.
async fn forward_titles(
    state: Arc<PushState>,
    bind: Option<IpAddr>,
    mut titles: watch::Receiver<Option<String>>,
) {
    tokio::time::sleep(TITLE_SETTLE).await;
    let label = state.label();
    loop {
        let title = titles.borrow_and_update().clone();
        if let Some(title) = title {
            for attempt in 0..3 {
                match send_title(&state.target, bind, &title).await {
                    Ok(MetadataReply::Accepted) => {
                        tracing::debug!(push = %label, ?title, "title forwarded");
                        break;
                    }
                    Ok(MetadataReply::NotYet(why)) if attempt < 2 => {
                        tracing::debug!(push = %label, "remote not ready for titles ({why}); retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        if titles.has_changed().unwrap_or(true) {
                            break;
                        }
                    }
                    Ok(MetadataReply::NotYet(why)) | Ok(MetadataReply::Refused(why)) => {
                        tracing::warn!(push = %label, ?title, "remote refused the title update: {why}");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(push = %label, ?title, "title update failed: {e}");
                        break;
                    }
                }
            }
        }
        if titles.changed().await.is_err() {
            return;
        }
    }
}

/// One `/admin/metadata` exchange, bounded in size and time.
async fn send_title(
    target: &Target,
    bind: Option<IpAddr>,
    title: &str,
) -> Result<MetadataReply, String> {
    let url = target
        .endpoint()
        .ok_or_else(|| format!("not a usable remote: {}", target.url()))?;
    let exchange = async {
        let opts = Options {
            bind,
            ca_file: target.tls.ca_file.clone(),
            response_timeout: REPLY_TIMEOUT,
            ..Options::default()
        };
        let request = |_: &_| push_proto::metadata_request(target, title);
        let mut reply = client::request(&url, request, &opts).await?;
        let body = reply.body(MAX_METADATA_REPLY, REPLY_TIMEOUT).await?;
        Ok::<_, ClientError>(push_proto::metadata_reply(&reply.head, &body))
    };
    tokio::time::timeout(REPLY_TIMEOUT + CONNECT_TIMEOUT, exchange)
        .await
        .map_err(|_| "the remote did not answer in time".to_string())?
        .map_err(|e| e.to_string())
}
