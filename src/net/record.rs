//! The done phase of every request. A request passes admission → reply head → body → done;
//! each path fills one small [`RequestRecord`] as it goes, and dropping the record, whatever
//! happened (reply sent, refusal, hang-up, error), writes the access-log line and counts the
//! request, exactly once. Nothing else writes the access log.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::access_log::AccessEntry;
use crate::http::RequestHead;
use crate::server::Server;

/// Who asked for what, and how it ended. Small on purpose: a listener keeps one for as long
/// as it listens (its user agent meanwhile lives in the mount's listener table).
#[derive(Debug)]
pub struct RequestRecord {
    server: Arc<Server>,
    started: Instant,
    peer: IpAddr,
    /// `METHOD PATH PROTO/VER`, as icecast logs it.
    request: Box<str>,
    pub user: Option<Box<str>>,
    pub referer: Option<Box<str>>,
    pub user_agent: Option<Box<str>>,
    /// The reply's status; 0 until one is decided.
    pub status: u16,
    /// Body bytes: sent to a listener or web client, received from a source.
    pub bytes: u64,
    /// The axum route template, which counts the request in `floecast_http_requests_total`.
    route: Option<Box<str>>,
}

impl RequestRecord {
    /// A request that starts now; status, user and bytes are filled in by its path.
    pub fn new(server: &Arc<Server>, peer: &SocketAddr, request: String) -> Self {
        RequestRecord {
            server: server.clone(),
            started: Instant::now(),
            peer: super::peer_addr(peer),
            request: request.into_boxed_str(),
            user: None,
            referer: None,
            user_agent: None,
            status: 0,
            bytes: 0,
            route: None,
        }
    }

    /// A request whose head the front door parsed. A missing User-Agent is logged as `""`.
    pub fn for_head(server: &Arc<Server>, head: &RequestHead, peer: &SocketAddr) -> Self {
        let mut record = Self::new(server, peer, head.log_line());
        record.user_agent = Some(head.user_agent().into());
        record.referer = head.header("referer").map(Into::into);
        record
    }

    /// Count the request under an axum route template when it is done.
    pub fn count_as_route(&mut self, route: String) {
        self.route = Some(route.into_boxed_str());
    }

    /// The client's address, IPv4-mapped IPv6 shown as IPv4.
    pub fn peer(&self) -> IpAddr {
        self.peer
    }

    /// How long the request has run.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn set_user(&mut self, user: Option<impl Into<Box<str>>>) {
        self.user = user.map(Into::into);
    }
}

impl Drop for RequestRecord {
    /// The done phase: one access-log line and the request's metrics. A request dropped
    /// before any reply was decided (cancelled at shutdown, or by the web deadline while its
    /// handler ran) has no status and leaves no line.
    fn drop(&mut self) {
        if self.status == 0 {
            return;
        }
        let server = &self.server;
        if let Some(route) = &self.route {
            let method = self.request.split(' ').next().unwrap_or("");
            server.metrics.http_request(route, method, self.status);
        }
        server.access_log.log(&AccessEntry {
            ip: self.peer,
            user: self.user.as_deref(),
            request: &self.request,
            status: self.status,
            bytes: self.bytes,
            referer: self.referer.as_deref(),
            user_agent: self.user_agent.as_deref(),
            seconds: self.started.elapsed().as_secs(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn dropping_the_record_logs_it_once() {
        let dir = std::env::temp_dir().join(format!("floecast-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("access.log");
        let _ = std::fs::remove_file(&log);
        let mut config = Config::default();
        config.logging.access_log = Some(log.clone());
        let server = Server::new(config, None);
        let head = crate::http::parse_head(
            b"GET /live HTTP/1.1\r\nUser-Agent: VLC\r\nReferer: http://r/\r\n\r\n",
        )
        .unwrap();
        let peer: SocketAddr = "[::ffff:192.0.2.7]:5000".parse().unwrap();
        // Never answered (cancelled): no line.
        drop(RequestRecord::for_head(&server, &head, &peer));
        let mut record = RequestRecord::for_head(&server, &head, &peer);
        record.status = 200;
        record.bytes = 1234;
        record.set_user(Some("u"));
        drop(record);
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.starts_with("192.0.2.7 - u ["), "{text}");
        assert!(
            text.ends_with("] \"GET /live HTTP/1.1\" 200 1234 \"http://r/\" \"VLC\" 0\n"),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
