//! icecast2's STATS method: an admin-authenticated, long-lived connection that gets
//! `HTTP/1.0 200 OK\r\n\r\n`, every current stat as `EVENT <global|mount> <name> <value>\n`,
//! then each change as it is seen (`EVENT <mount> <name> null` for a stat that went away,
//! `EVENT <mount> null null` for a mount that went away), until the client or server leaves.
//!
//! Changes are found by diffing snapshots of the same stats `/admin/stats` shows, taken
//! every `TICK`: nothing on the source or listener paths has to publish anything. The lines
//! themselves are written by [`crate::documents::stats_events`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::net::Conn;
use tokio::io::AsyncWriteExt;

use crate::documents::stats_events::{self, StatsTable};
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

/// Everything `/admin/stats` shows, as the STATS events compare it.
fn snapshot(server: &Server) -> StatsTable {
    stats_events::stats_table(&crate::snapshot::capture(server, None))
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
pub async fn run(server: Arc<Server>, mut stream: Conn, head: RequestHead, peer: SocketAddr) {
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
    let mut prev = StatsTable::new();
    loop {
        let shutdown = server.shutdown_notified();
        tokio::pin!(shutdown);
        shutdown.as_mut().enable();
        if server.is_shutting_down() {
            break;
        }
        let snap = snapshot(&server);
        let mut events = String::new();
        stats_events::diff(&prev, &snap, &mut events);
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
