//! icecast2's STATS method: an admin-authenticated, long-lived connection that gets
//! `HTTP/1.0 200 OK\r\n\r\n`, every current stat as `EVENT <global|mount> <name> <value>\n`,
//! then each change as it is seen (`EVENT <mount> <name> null` for a stat that went away,
//! `EVENT <mount> null null` for a mount that went away), until the client or server leaves.
//!
//! Changes are found by diffing snapshots of the same stats `/admin/stats` shows, taken
//! every `TICK`: nothing on the source or listener paths has to publish anything.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::stats;
use crate::http::RequestHead;
use crate::http::request::basic_auth;
use crate::http::response::SOURCE_OK;
use crate::net::{Reply, RequestRecord};
use crate::server::Server;

/// How often stats are compared. icecast sends most changes at once; a quarter second is
/// as good for dashboards and keeps the cost to a few snapshots a second per client.
const TICK: Duration = Duration::from_millis(250);
/// A client that does not take its events for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Stats by scope (`global` or a mount name), then by name.
type Snapshot = BTreeMap<String, BTreeMap<String, String>>;

const GLOBAL: &str = "global";

/// Everything `/admin/stats` shows (hidden mounts included, as for any admin).
fn snapshot(server: &Server) -> Snapshot {
    let mut snap = Snapshot::new();
    let global = stats::global_stats(server)
        .into_iter()
        .map(|(k, v)| (k, v.text()))
        .collect();
    snap.insert(GLOBAL.to_string(), global);
    for m in stats::visible_mounts(server, true, None) {
        let values = stats::mount_stats(server, &m)
            .into_iter()
            .map(|(k, v)| (k, v.text()))
            .collect();
        snap.insert(m.name.clone(), values);
    }
    snap
}

/// One protocol line. Values are single-line by construction of the protocol; a title with
/// a line break must not inject events, so breaks become spaces.
fn push_event(out: &mut String, scope: &str, name: &str, value: &str) {
    out.push_str("EVENT ");
    out.push_str(scope);
    out.push(' ');
    out.push_str(name);
    out.push(' ');
    out.extend(
        value
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c }),
    );
    out.push('\n');
}

/// The events that turn `old` into `new`: global scope first, then mounts by name.
fn diff(old: &Snapshot, new: &Snapshot, out: &mut String) {
    let scopes = new
        .keys()
        .filter(|k| *k == GLOBAL)
        .chain(new.keys().filter(|k| *k != GLOBAL));
    for scope in scopes {
        let now = &new[scope];
        let before = old.get(scope);
        for (name, value) in now {
            if before.and_then(|b| b.get(name)) != Some(value) {
                push_event(out, scope, name, value);
            }
        }
        for name in before.into_iter().flat_map(|b| b.keys()) {
            if !now.contains_key(name) {
                push_event(out, scope, name, "null");
            }
        }
    }
    for scope in old.keys() {
        if !new.contains_key(scope) {
            push_event(out, scope, "null", "null");
        }
    }
}

/// Counts a connected STATS client in the `stats` stat while it lives.
struct Counted<'a>(&'a Server);

impl<'a> Counted<'a> {
    fn new(server: &'a Server) -> Self {
        server.stats.stats_clients.fetch_add(1, Ordering::AcqRel);
        server
            .stats
            .stats_connections
            .fetch_add(1, Ordering::Relaxed);
        Counted(server)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.stats.stats_clients.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serve one `STATS <any path>` request (icecast ignores the path). Admin credentials only;
/// anything else gets icecast's 401. The request's record logs it when it is done.
pub async fn run(server: Arc<Server>, mut stream: TcpStream, head: RequestHead, peer: SocketAddr) {
    let mut record = RequestRecord::for_head(&server, &head, &peer);
    let config = server.config();
    let admin = head
        .header("authorization")
        .and_then(basic_auth)
        .is_some_and(|(user, pass)| config.admin_credentials_ok(&user, &pass));
    if !admin {
        let reply = Reply::error(&config, &[], 401, "");
        record.status = reply.status;
        reply.send(&mut stream, WRITE_TIMEOUT).await;
        return;
    }
    record.set_user(Some(config.auth.admin_user.as_str()));
    record.status = 200;
    drop(config);
    drop(head);

    let _counted = Counted::new(&server);
    let mut sent = 0u64;
    let mut pending = SOURCE_OK.to_vec();
    let mut prev = Snapshot::new();
    loop {
        let shutdown = server.shutdown_notified();
        tokio::pin!(shutdown);
        shutdown.as_mut().enable();
        if server.is_shutting_down() {
            break;
        }
        let snap = snapshot(&server);
        let mut events = String::new();
        diff(&prev, &snap, &mut events);
        prev = snap;
        pending.extend_from_slice(events.as_bytes());
        if !pending.is_empty() {
            let written = tokio::select! {
                r = tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&pending)) => r,
                _ = &mut shutdown => break,
            };
            match written {
                Ok(Ok(())) => sent += pending.len() as u64,
                Ok(Err(_)) => break,
                Err(_) => {
                    tracing::info!(%peer, "STATS client stopped reading, dropping it");
                    break;
                }
            }
            pending.clear();
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            // The client sends nothing after its request: readable means it hung up.
            r = stream.readable() => {
                if r.is_err() || crate::listen::client_gone(&stream) {
                    break;
                }
            }
            _ = &mut shutdown => break,
        }
    }
    record.bytes = sent;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(entries: &[(&str, &[(&str, &str)])]) -> Snapshot {
        entries
            .iter()
            .map(|(scope, kv)| {
                (
                    scope.to_string(),
                    kv.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn first_diff_is_a_full_dump_global_first() {
        let new = snap(&[
            ("/a", &[("listeners", "1")]),
            ("global", &[("admin", "x"), ("clients", "2")]),
        ]);
        let mut out = String::new();
        diff(&Snapshot::new(), &new, &mut out);
        assert_eq!(
            out,
            "EVENT global admin x\nEVENT global clients 2\nEVENT /a listeners 1\n"
        );
    }

    #[test]
    fn changes_removals_and_gone_mounts() {
        let old = snap(&[
            ("global", &[("sources", "2")]),
            ("/a", &[("listeners", "1"), ("title", "Old")]),
            ("/b", &[("listeners", "0")]),
        ]);
        let new = snap(&[
            ("global", &[("sources", "1")]),
            ("/a", &[("listeners", "2")]),
        ]);
        let mut out = String::new();
        diff(&old, &new, &mut out);
        assert_eq!(
            out,
            "EVENT global sources 1\nEVENT /a listeners 2\nEVENT /a title null\nEVENT /b null null\n"
        );
        let mut none = String::new();
        diff(&new, &new, &mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn line_breaks_cannot_inject_events() {
        let mut out = String::new();
        push_event(&mut out, "/a", "title", "x\nEVENT global admin evil");
        assert_eq!(out, "EVENT /a title x EVENT global admin evil\n");
    }
}
