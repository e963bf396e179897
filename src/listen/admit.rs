//! The listener's admission phase and its reply heads: find the live mount (waiting for an
//! on-demand one), answer OPTIONS and HEAD, authenticate, take a listener slot (or a
//! fallback's) and build the icecast response head. It never streams and never writes the
//! access log: it fills the request's record and says what to send.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use crate::net::Conn;
use bytes::Bytes;

use super::writer::IcyState;
use super::{Session, client_gone};
use crate::config::{Config, HttpHeader};
use crate::http::{IcecastHead, RequestHead};
use crate::mount::{Kick, ListenerEntry, Mount};
use crate::net::{Reply, RequestRecord};
use crate::server::Server;

/// Response headers that browsers may read from a cross-origin stream (for ICY parsing).
const EXPOSE_HEADERS: &str =
    "icy-metaint, icy-br, icy-name, icy-description, icy-genre, icy-url, icy-pub, ice-audio-info";

/// The live mount that serves `path`: the mount itself, or for a configured mount that is
/// not live, the first live mount down its fallback chain.
pub fn resolve(server: &Server, path: &str) -> Option<Arc<Mount>> {
    if let Some(m) = server.registry.get(path) {
        if !m.is_ended() {
            return Some(m);
        }
    }
    let config = server.config();
    let first = config.mount(path)?.fallback_mount.clone()?;
    server.registry.resolve_fallback(
        Some(first),
        |n| config.mount(n).and_then(|m| m.fallback_mount.clone()),
        None,
    )
}

/// Longest a listener waits for an on-demand source to start.
const STANDBY_WAIT: Duration = Duration::from_secs(20);

/// A standby mount (an on-demand relay not started yet) has no stream to describe: ask for
/// its source and wait, before any reply, until a live mount takes its place, as icecast's
/// pending listeners do. `None` when it does not start in time or the client hangs up.
async fn await_live(
    server: &Server,
    mut mount: Arc<Mount>,
    path: &str,
    stream: &mut Conn,
) -> Option<Arc<Mount>> {
    let deadline = tokio::time::Instant::now() + STANDBY_WAIT;
    while mount.is_standby() {
        {
            let notified = mount.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let _waiting = mount.wait_for_source();
            if !mount.is_ended() {
                tokio::select! {
                    _ = &mut notified => {}
                    _ = tokio::time::sleep_until(deadline) => return None,
                    _ = stream.readable() => {
                        if client_gone(stream) {
                            return None;
                        }
                    }
                }
            }
        }
        mount = resolve(server, path)?;
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
    }
    Some(mount)
}

/// What admission decided.
pub(super) enum Admission {
    /// A listener admitted and about to be streamed to.
    Listen(Open),
    /// Answered without a stream: a refusal, or the answer to HEAD or OPTIONS.
    Answered(Reply),
}

/// A listener admitted and about to be streamed to.
pub(super) struct Open {
    pub(super) session: Session,
    /// The response head, sent with the first data.
    pub(super) response: Bytes,
    pub(super) kick: Arc<Kick>,
    pub(super) id: u64,
    /// A url backend's time limit, and its leave hook.
    pub(super) limit_timer: Option<tokio::task::JoinHandle<()>>,
    pub(super) on_leave: Option<Box<crate::listener_auth::url::Removal>>,
}

const NOT_FOUND: &str = "The file you requested could not be found";

/// Wait for a standby mount, answer OPTIONS and HEAD, authenticate, take a listener slot and
/// register the listener. Fills in the record's user; outcome metrics are counted here.
pub(super) async fn admit(
    server: &Arc<Server>,
    stream: &mut Conn,
    head: RequestHead,
    peer: SocketAddr,
    mount: Arc<Mount>,
    record: &mut RequestRecord,
) -> Admission {
    let Some(mount) = await_live(server, mount, &head.path, stream).await else {
        return Admission::Answered(Reply::error(&server.config(), &[], 404, NOT_FOUND));
    };
    let config = server.config();

    if head.method == "OPTIONS" {
        return Admission::Answered(Reply {
            status: 204,
            bytes: preflight(&config, &mount.settings.http_headers).into_bytes(),
        });
    }

    // Listener authentication, at admit only. It guards the requested mount, also when the
    // listener is then served by a fallback. Without any in the config this costs a scan of
    // a few flags.
    let id = server.next_client_id();
    let mut login = match config.listener_auth(&head.path) {
        None => None,
        Some(auth) => {
            let allow_dup = auth.allow_duplicate_users;
            // Boxed: the backend exchange must not enlarge every listener's task.
            match Box::pin(crate::listener_auth::login(server, auth, &head, &peer, id)).await {
                // Checked here too (not only at registration) so that a refused duplicate
                // does not first take a slot and count in listener_peak.
                Some(l) if allow_dup || l.user.as_deref().is_none_or(|u| !mount.has_user(u)) => {
                    Some((l, allow_dup))
                }
                refused => {
                    left_early(refused);
                    server
                        .metrics
                        .listener_outcome(&mount.name, "rejected_auth");
                    return Admission::Answered(Reply::error(&config, &[], 401, ""));
                }
            }
        }
    };

    let metaint = mount.listener_metaint(head.wants_icy_metadata());
    // HEAD only asks what the stream is: it takes no listener slot and counts in no stats.
    if head.method == "HEAD" {
        left_early(login.take().map(|(l, _)| l));
        return Admission::Answered(Reply {
            status: 200,
            bytes: response_head(&config, &mount, metaint).into_bytes(),
        });
    }

    // Max-listeners, else fallback-when-full, else icecast's 403.
    let requested = mount.name.clone();
    let Ok(mount) = take_slot(server, mount) else {
        left_early(login.take().map(|(l, _)| l));
        server
            .metrics
            .listener_outcome(&requested, "rejected_limit");
        return Admission::Answered(Reply::error(&config, &[], 403, "max listeners reached"));
    };
    server.metrics.listener_outcome(&requested, "accepted");

    let kick = Arc::new(Kick::default());
    let (login, allow_dup) = match login {
        Some((l, allow_dup)) => (Some(l), allow_dup),
        None => (None, true),
    };
    let user = login.as_ref().and_then(|l| l.user.clone());
    // The mount's listener table holds the only copy of the user agent while the listener
    // runs (it exists by the thousand); the record takes it back at the end.
    let listener_entry = ListenerEntry {
        ip: crate::net::peer_addr(&peer),
        user_agent: record
            .user_agent
            .take()
            .map(String::from)
            .unwrap_or_default(),
        connected: SystemTime::now(),
        kick: kick.clone(),
        username: user.as_deref().map(Into::into),
    };
    record.set_user(user.as_deref());
    if user.is_some() && !allow_dup {
        if !mount.register_unique_user(id, listener_entry) {
            // icecast2 answers a second concurrent login of one user with 401.
            mount.remove_listener();
            left_early(login);
            tracing::info!(mount = %mount.name, user, "duplicate login refused");
            server.metrics.listener_outcome(&requested, "rejected_auth");
            return Admission::Answered(Reply::error(&config, &[], 401, ""));
        }
    } else {
        mount.register_listener(id, listener_entry);
    }
    // A url backend's time limit, or the mount's `max-listener-duration` (the shorter),
    // ends the listener through its kick, like killclient.
    let (timelimit, on_leave) = match login {
        Some(l) => (l.timelimit, l.on_leave),
        None => (None, None),
    };
    let most = config
        .mount(&requested)
        .and_then(|m| m.max_listener_duration);
    let timelimit = match (timelimit, most) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let limit_timer = timelimit.map(|t| {
        let kick = kick.clone();
        tokio::spawn(async move {
            tokio::time::sleep(t).await;
            kick.kick();
        })
    });

    let response = response_head(&config, &mount, metaint);
    drop(head);

    server
        .stats
        .listener_connections
        .fetch_add(1, Ordering::Relaxed);

    let session = Session {
        cursor: mount.burst_cursor(),
        epoch: mount.redirect_epoch(),
        mount,
        icy: IcyState::new(metaint),
        sent: 0,
        flush_interval: config.tuning.flush_interval,
        last_pause: config.tuning.flush_interval,
    };
    drop(config);
    Admission::Listen(Open {
        session,
        response: Bytes::from(response),
        kick,
        id,
        limit_timer,
        on_leave,
    })
}

/// A listener accepted by a url backend but not served after all: tell the backend it left.
fn left_early(login: Option<crate::listener_auth::Login>) {
    if let Some(r) = login.and_then(|l| l.on_leave) {
        r.send(0);
    }
}

/// Take a listener slot on `mount` or, when full and configured, on its fallbacks.
fn take_slot(server: &Server, mount: Arc<Mount>) -> Result<Arc<Mount>, ()> {
    let mut current = mount;
    for _ in 0..crate::mount::registry::MAX_FALLBACK_DEPTH {
        if current.try_add_listener() {
            return Ok(current);
        }
        if !current.settings.fallback_when_full {
            return Err(());
        }
        let next = current.fallback().ok_or(())?;
        current = server
            .registry
            .get(&next)
            .filter(|m| !m.is_ended())
            .ok_or(())?;
    }
    Err(())
}

/// The length of the head a listener asking without `Icy-MetaData` gets now (Gen C peers
/// count it in the header size they read from us).
pub fn listener_head_len(config: &Config, mount: &Mount) -> usize {
    response_head(config, mount, mount.listener_metaint(false)).len()
}

/// `HTTP/1.0 200 OK`, icecast's lines, the configured headers, the source-derived `icy-*`
/// lines and, when asked for, `icy-metaint`.
fn response_head(config: &Config, mount: &Mount, metaint: usize) -> String {
    let mut out = String::with_capacity(512);
    let extra = Server::extra_headers(config, &mount.settings.http_headers);
    mount.with_info(|info| {
        let head = IcecastHead {
            code: 200,
            server_id: &config.server_id,
            date: Some(SystemTime::now()),
            content_type: Some(&info.stream.content_type),
            extra: &extra,
        };
        head.write(&mut out);
        head.write_extra(&mut out);
        out.push_str("Access-Control-Expose-Headers: ");
        out.push_str(EXPOSE_HEADERS);
        out.push_str("\r\n");
        out.push_str(&info.listener_headers);
    });
    if metaint > 0 {
        out.push_str(&format!("icy-metaint:{metaint}\r\n"));
    }
    out.push_str("\r\n");
    out
}

/// The CORS preflight icecast2 lacks: web players may then send `Icy-MetaData` and `Range`.
fn preflight(config: &Config, mount_headers: &[HttpHeader]) -> String {
    let extra = Server::extra_headers(config, mount_headers);
    let head = IcecastHead {
        code: 204,
        server_id: &config.server_id,
        date: Some(SystemTime::now()),
        content_type: None,
        extra: &extra,
    };
    let mut out = String::with_capacity(512);
    head.write(&mut out);
    if !extra
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("access-control-allow-origin"))
    {
        out.push_str("Access-Control-Allow-Origin: *\r\n");
    }
    out.push_str("Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r\n");
    out.push_str("Access-Control-Allow-Headers: Icy-MetaData, Range\r\n");
    out.push_str(&format!(
        "Access-Control-Expose-Headers: {EXPOSE_HEADERS}\r\n"
    ));
    out.push_str("Access-Control-Max-Age: 86400\r\n");
    head.write_extra(&mut out);
    out.push_str("\r\n");
    out
}
