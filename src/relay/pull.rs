//! A pull relay: fetch an upstream stream and feed a local mount through an ordinary source
//! session (so in-band ICY titles are stripped and re-served at each listener's interval),
//! reconnecting with backoff. A lost upstream does not drop listeners: they move to a live
//! fallback, or wait on the kept mount for the grace period while we reconnect. An
//! on-demand relay reserves its mount and connects only while listeners want it.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, ReadBuf};

use super::upstream::{self, StreamRequest};
use super::{RelayStatus, State};
use crate::backoff::{Backoff, Jitter};
use crate::config::{RelayConfig, RelayTiming};
use crate::format::Family;
use crate::http::url::Url;
use crate::ingest::SourceSession;
use crate::ingest::session::{EndReason, StartError, StartOptions};
use crate::mount::{Mount, MountSettings, SourceInfo, SourceRejected};
use crate::net::client::{ClientError, Response};
use crate::random::random_u64;
use crate::server::Server;
use crate::supervisor::tasks::Stop;

/// Reconnect backoff between connections (after a failure or a lost stream).
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Reconnect backoff while listeners wait on the kept mount: short, the grace period is.
const GRACE_BACKOFF_MIN: Duration = Duration::from_millis(500);
const GRACE_BACKOFF_MAX: Duration = Duration::from_secs(4);
/// How often an on-demand relay looks at its listener count.
const IDLE_CHECK: Duration = Duration::from_millis(500);
/// How often a relay waits for the relay it replaces to let go of the mount.
const REGISTER_RETRY: Duration = Duration::from_millis(100);

const STOP_REMOVED: &str = "relay removed";
const STOP_IDLE: &str = "no listeners";

/// One pull relay, resolved from config or from a master's stream list.
#[derive(Debug, Clone, PartialEq)]
pub struct PullRelay {
    pub local_mount: String,
    pub url: Url,
    pub request: StreamRequest,
    pub on_demand: bool,
    pub bind: Option<IpAddr>,
    pub timing: RelayTiming,
    /// For an `https://` upstream: trust only this CA file, not the system's roots.
    pub ca_file: Option<std::path::PathBuf>,
}

impl PullRelay {
    pub fn from_config(r: &RelayConfig, server_id: &str) -> Option<PullRelay> {
        // icecast sends credentials only when both are set.
        let credentials = match (&r.username, &r.password) {
            (Some(u), Some(p)) => Some((u.clone(), p.clone())),
            _ => None,
        };
        Some(PullRelay {
            local_mount: r.local_mount.clone(),
            url: Url::new(&r.server, r.port, &r.mount)?.with_tls(r.tls.enabled),
            ca_file: r.tls.ca_file.clone(),
            request: StreamRequest {
                user_agent: server_id.to_string(),
                icy_metadata: r.relay_metadata,
                credentials,
            },
            on_demand: r.on_demand,
            bind: r.bind.as_deref().and_then(|b| b.parse().ok()),
            timing: r.timing,
        })
    }
}

/// How one upstream connection (and its grace period) ended.
enum Outcome {
    /// Stop the relay (removed, or shutdown).
    Stop,
    /// The mount ended; reconnect after a backoff.
    Lost,
    /// On-demand relay back on standby: wait for the next listener.
    Idle(Arc<Mount>),
    /// The local mount refused the relay (`<sources>` reached, or the name is taken): try
    /// again after a growing backoff, keeping the standby if there is one.
    Refused(Option<Arc<Mount>>),
}

/// Run `relay` until shutdown or until it is asked to stop.
pub async fn run(server: Arc<Server>, relay: PullRelay, mut stop: Stop) {
    // A relay being replaced (a reload changed it, or a master relay gives way to a
    // configured one) still holds the name until it has ended its mount: wait for it.
    let mut waited = false;
    let status = loop {
        if let Some(s) =
            server
                .tasks
                .relays
                .register(&relay.local_mount, relay.url.to_string(), relay.on_demand)
        {
            break s;
        }
        if !waited {
            tracing::info!(mount = %relay.local_mount, "another relay still feeds this mount; waiting for it to stop");
            waited = true;
        }
        if !pause(&server, &mut stop, REGISTER_RETRY).await {
            return;
        }
    };
    tracing::info!(mount = %relay.local_mount, upstream = %relay.url, on_demand = relay.on_demand, "relay starting");
    let mut backoff = Backoff::new(
        BACKOFF_MIN,
        BACKOFF_MAX,
        Jitter::UpToQuarterMore,
        random_u64(),
    );
    let mut standby: Option<Arc<Mount>> = None;
    let mut last_info: Option<SourceInfo> = None;
    'relay: loop {
        if stopped(&server, &stop) {
            break;
        }
        if relay.on_demand {
            let s = match &standby {
                Some(s) => s.clone(),
                None => match reserve(&server, &relay, last_info.clone()) {
                    Some(s) => {
                        standby = Some(s.clone());
                        s
                    }
                    None => {
                        // Someone else (a pushed source) holds the name for now.
                        if !pause(&server, &mut stop, Duration::from_secs(1)).await {
                            break;
                        }
                        continue;
                    }
                },
            };
            status.set_state(State::Idle);
            while s.waiting() == 0 && !override_wanted(&server, &s) {
                let shutdown = server.shutdown_notified();
                if stopped(&server, &stop) {
                    break 'relay;
                }
                tokio::select! {
                    _ = s.demanded() => {}
                    _ = stop.requested() => {}
                    _ = tokio::time::sleep(IDLE_CHECK) => {}
                    _ = shutdown => break 'relay,
                }
            }
        }
        // A pushed source holds the name, or <sources> is reached: no point fetching a
        // stream we cannot serve.
        let limit = server.config().limits.sources;
        let blocked = if standby.is_none() && server.registry.contains(&relay.local_mount) {
            Some("local mount in use by another source".to_string())
        } else if !server.registry.has_room(limit) {
            Some(format!(
                "{} (sources = {limit}, relays included)",
                SourceRejected::TooMany
            ))
        } else {
            None
        };
        if let Some(why) = blocked {
            let delay = backoff.next_delay();
            tracing::warn!(mount = %relay.local_mount, "relay not started: {why}; retrying in {delay:?}");
            status.blocked(why);
            if !pause(&server, &mut stop, delay).await {
                break;
            }
            continue;
        }
        status.attempt();
        let Some(opened) = open_unless_stopped(&server, &relay, &mut stop).await else {
            break;
        };
        match opened {
            Ok(up) => {
                tracing::info!(mount = %relay.local_mount, upstream = %up.url, "relay connected");
                let outcome = serve(&server, &relay, &status, up, standby.take(), &mut stop).await;
                match outcome.0 {
                    Outcome::Stop => break,
                    Outcome::Idle(s) => {
                        backoff.reset();
                        standby = Some(s);
                        continue;
                    }
                    Outcome::Lost => {
                        backoff.reset();
                        last_info = outcome.1;
                    }
                    // The backoff keeps growing: the upstream is fine, we have no room.
                    Outcome::Refused(s) => standby = s,
                }
            }
            Err(e) => {
                tracing::warn!(mount = %relay.local_mount, upstream = %relay.url, "relay connect failed: {e}");
                status.failed(e.to_string());
            }
        }
        if !pause(&server, &mut stop, backoff.next_delay()).await {
            break;
        }
    }
    if let Some(s) = standby {
        server.registry.remove(&s);
        s.end(None);
    }
    server.tasks.relays.remove(&relay.local_mount, &status);
    tracing::info!(mount = %relay.local_mount, "relay stopped");
}

/// Feed the local mount from `up`, riding out upstream losses within the grace period.
/// Returns the outcome and the stream facts last seen (for a later standby).
async fn serve(
    server: &Arc<Server>,
    relay: &PullRelay,
    status: &RelayStatus,
    mut up: Response,
    standby: Option<Arc<Mount>>,
    stop: &mut Stop,
) -> (Outcome, Option<SourceInfo>) {
    let opts = StartOptions {
        replacing: standby.as_ref(),
        relay: true,
    };
    let mut session = match SourceSession::start_with(
        server,
        &relay.local_mount,
        &up.head.headers,
        up.head.content_type(),
        &up.peer,
        up.head.is_chunked(),
        opts,
    )
    .await
    {
        Ok(s) => s,
        Err(StartError::Rejected(why)) => {
            let limit = server.config().limits.sources;
            match why {
                SourceRejected::TooMany => tracing::warn!(
                    mount = %relay.local_mount,
                    "relay refused: {why} (sources = {limit}, relays included); retrying with backoff"
                ),
                SourceRejected::InUse => tracing::warn!(
                    mount = %relay.local_mount,
                    "relay refused: {why}; retrying with backoff"
                ),
            }
            status.failed(format!("local mount refused the relay: {why}"));
            return (Outcome::Refused(standby), None);
        }
    };
    session.mount.set_on_demand(relay.on_demand);
    // Our own handle, so waiting on the mount does not borrow the session.
    let mount = session.mount.clone();
    let mut seed = random_u64();
    loop {
        status.set_state(State::Up);
        status
            .bytes_in
            .fetch_add(up.initial.len() as u64, Ordering::Relaxed);
        let mut reader = Counted {
            inner: &mut up.stream,
            count: &status.bytes_in,
        };
        let until = stop_or_idle(&mount, relay, stop);
        let (_, reason) = session.pump(&mut reader, up.initial.clone(), until).await;
        let info = Some(session.mount.info());
        match reason {
            EndReason::Shutdown => {
                session.end(reason);
                return (Outcome::Stop, info);
            }
            EndReason::Stopped(STOP_IDLE) => {
                tracing::info!(mount = %relay.local_mount, "on-demand relay idle; disconnecting");
                let s = standby_of(server, &session.mount);
                session.end_into(reason, s.clone());
                return (Outcome::Idle(s), info);
            }
            EndReason::Stopped(_) => {
                session.end(reason);
                return (Outcome::Stop, info);
            }
            EndReason::Killed => {
                status.failed("source killed by admin".into());
                return end_lost(server, relay, session, reason, info);
            }
            EndReason::Eof | EndReason::Timeout | EndReason::Error(_) => {}
        }
        let what = match &reason {
            EndReason::Eof => "upstream closed the stream".to_string(),
            EndReason::Timeout => "upstream sent nothing within source-timeout".to_string(),
            EndReason::Error(e) => format!("upstream stream error: {e}"),
            _ => String::new(),
        };
        tracing::warn!(mount = %relay.local_mount, "{what}");
        status.failed(what);
        // Listeners go where icecast sends them: a live fallback. Without one they wait here.
        if has_live_fallback(server, &session.mount)
            || (relay.on_demand && session.mount.listener_count() == 0)
        {
            return end_lost(server, relay, session, reason, info);
        }
        let deadline = Instant::now() + relay.timing.grace_period;
        seed = seed.wrapping_add(1);
        let mut grace = Backoff::new(
            GRACE_BACKOFF_MIN,
            GRACE_BACKOFF_MAX,
            Jitter::UpToQuarterMore,
            seed,
        );
        let next = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break None;
            }
            let shutdown = server.shutdown_notified();
            if server.is_shutting_down() {
                session.end(EndReason::Shutdown);
                return (Outcome::Stop, info);
            }
            tokio::select! {
                _ = tokio::time::sleep(grace.next_delay().min(left)) => {}
                _ = shutdown => {
                    session.end(EndReason::Shutdown);
                    return (Outcome::Stop, info);
                }
                _ = mount.killed() => {
                    return end_lost(server, relay, session, EndReason::Killed, info);
                }
                _ = stop.requested() => {
                    session.end(EndReason::Stopped(STOP_REMOVED));
                    return (Outcome::Stop, info);
                }
            }
            if has_live_fallback(server, &session.mount) {
                break None;
            }
            status.attempt();
            match open_unless_stopped(server, relay, stop).await {
                Some(Ok(u)) => break Some(u),
                Some(Err(e)) => status.failed(e.to_string()),
                None if server.is_shutting_down() => {
                    session.end(EndReason::Shutdown);
                    return (Outcome::Stop, info);
                }
                None => {
                    session.end(EndReason::Stopped(STOP_REMOVED));
                    return (Outcome::Stop, info);
                }
            }
        };
        match next {
            Some(u) if Family::from_content_type(u.head.content_type()) == session.mount.family => {
                tracing::info!(mount = %relay.local_mount, upstream = %u.url, "relay reconnected; listeners kept");
                session.reset_upstream(&u.head.headers, u.head.content_type(), u.head.is_chunked());
                up = u;
            }
            // A different kind of stream needs a new mount: end this one, start afresh.
            Some(_) => return end_lost(server, relay, session, EndReason::Eof, info),
            None => {
                tracing::info!(mount = %relay.local_mount, "upstream still down after the grace period");
                return end_lost(server, relay, session, reason, info);
            }
        }
    }
}

/// End the session for good; an on-demand relay keeps its name reserved.
fn end_lost(
    server: &Arc<Server>,
    relay: &PullRelay,
    session: SourceSession,
    reason: EndReason,
    info: Option<SourceInfo>,
) -> (Outcome, Option<SourceInfo>) {
    if relay.on_demand {
        let s = standby_of(server, &session.mount);
        session.end_into(reason, s.clone());
        (Outcome::Idle(s), info)
    } else {
        session.end(reason);
        (Outcome::Lost, info)
    }
}

/// Completes when the relay is removed or, on demand, has had no listeners for the idle
/// timeout.
async fn stop_or_idle(mount: &Mount, relay: &PullRelay, stop: &mut Stop) -> EndReason {
    let mut idle_since: Option<Instant> = None;
    let mut tick = tokio::time::interval(IDLE_CHECK);
    loop {
        tokio::select! {
            _ = stop.requested() => return EndReason::Stopped(STOP_REMOVED),
            _ = tick.tick() => {
                if relay.on_demand && mount.listener_count() == 0 {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= relay.timing.idle_timeout {
                        return EndReason::Stopped(STOP_IDLE);
                    }
                } else {
                    idle_since = None;
                }
            }
        }
    }
}

/// Connect to the upstream; `None` when the relay is stopped (or the server shuts down)
/// first, so a removed relay does not sit out a connect timeout.
async fn open_unless_stopped(
    server: &Server,
    relay: &PullRelay,
    stop: &mut Stop,
) -> Option<Result<Response, ClientError>> {
    let shutdown = server.shutdown_notified();
    if stopped(server, stop) {
        return None;
    }
    tokio::select! {
        r = upstream::open(&relay.url, &relay.request, relay.bind, relay.ca_file.clone()) => Some(r),
        _ = shutdown => None,
        _ = stop.requested() => None,
    }
}

fn stopped(server: &Server, stop: &Stop) -> bool {
    server.is_shutting_down() || stop.is_requested()
}

/// Sleep `d`; false when the relay should stop instead.
async fn pause(server: &Server, stop: &mut Stop, d: Duration) -> bool {
    let shutdown = server.shutdown_notified();
    if stopped(server, stop) {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => !stopped(server, stop),
        _ = shutdown => false,
        _ = stop.requested() => false,
    }
}

/// Reserve the local mount for an on-demand relay. `None` when the name is taken.
fn reserve(server: &Server, relay: &PullRelay, info: Option<SourceInfo>) -> Option<Arc<Mount>> {
    let config = server.config();
    let info = info.unwrap_or_else(|| {
        let content_type = config
            .mount(&relay.local_mount)
            .and_then(|m| m.content_type.clone())
            .unwrap_or_else(|| "audio/mpeg".to_string());
        SourceInfo::from_headers(
            &[],
            &content_type,
            config.mount(&relay.local_mount).as_deref(),
        )
    });
    let settings = MountSettings::resolve(&config, &relay.local_mount);
    let s = Arc::new(Mount::standby(&relay.local_mount, info, settings));
    server.registry.insert(s.clone(), usize::MAX).ok()?;
    Some(s)
}

/// A standby to take the place of `mount` when its on-demand relay stops.
fn standby_of(server: &Server, mount: &Mount) -> Arc<Mount> {
    let settings = MountSettings::resolve(&server.config(), &mount.name);
    Arc::new(Mount::standby(&mount.name, mount.info(), settings))
}

/// icecast also starts an on-demand relay for listeners sitting on its mount's fallback when
/// fallback-override would bring them back.
fn override_wanted(server: &Server, standby: &Mount) -> bool {
    standby.settings.fallback_override
        && standby
            .fallback()
            .and_then(|f| server.registry.get(&f))
            // Another kind of stream could not take them back: do not connect in vain.
            .is_some_and(|f| {
                !f.is_standby() && f.family == standby.family && f.listener_count() > 0
            })
}

/// Is there a live mount of the same kind down `mount`'s fallback chain?
fn has_live_fallback(server: &Server, mount: &Mount) -> bool {
    let config = server.config();
    server
        .registry
        .resolve_fallback(
            mount.fallback(),
            |name| match server.registry.get(name) {
                Some(m) => m.fallback(),
                None => config.mount(name).and_then(|m| m.fallback_mount.clone()),
            },
            Some(mount.family),
        )
        .is_some()
}

/// Counts bytes read from the upstream socket for the relay's `bytes_in`.
struct Counted<'a, R> {
    inner: &'a mut R,
    count: &'a AtomicU64,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counted<'_, R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut *self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}
