//! What the status documents and metrics are made from: plain data copied from the live
//! server at request time (see `crate::snapshot` for the capture). Nothing here refers to a
//! lock, a task or a clock; timestamps are values taken when the snapshot was.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use serde::Serialize;

use crate::format::{CodecInfo, Family};
use crate::p2psp::peer::PeerStats;
use crate::p2psp::splitter::SplitterStats;

/// A moment in the server's local time zone, as icecast prints its dates.
pub type Timestamp = chrono::DateTime<chrono::FixedOffset>;

/// The whole server at one moment.
#[derive(Debug, Clone)]
pub struct ServerSnapshot {
    /// When the snapshot was taken: ages and uptimes are measured to it.
    pub now: Timestamp,
    /// The same moment on the monotonic clock, for team peers' `last_seen`.
    pub now_mono: Instant,
    pub identity: Identity,
    pub started: Timestamp,
    pub counters: GlobalCounters,
    /// Every registered mount (ended, standby and hidden ones too), sorted by name.
    pub mounts: Vec<MountSnapshot>,
    /// Pull relays, sorted by local mount.
    pub relays: Vec<RelaySnapshot>,
    /// Team states by mount, sorted by mount; a mount that both serves a team and belongs
    /// to one appears twice.
    pub teams: Vec<(String, TeamState)>,
    /// Push relays in config order.
    pub pushes: Vec<PushEntry>,
}

/// Who runs this server, from the config.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// The `Server:` header.
    pub server_id: String,
    pub admin: String,
    /// The configured hostname, used in listen URLs.
    pub host: String,
    pub location: String,
    /// The first bound port, for listen URLs (icecast uses its first listen socket).
    pub port: u16,
    /// Set when the request being answered came over TLS: listen URLs are then `https://`
    /// on the port it came to.
    pub tls_port: Option<u16>,
}

impl Identity {
    /// `mount`'s listen URL as the reader reached us: icecast's `listenurl`, or its
    /// `https://` twin for a reader on TLS.
    pub fn listen_url(&self, mount: &str) -> String {
        match self.tls_port {
            Some(port) => format!("https://{}:{port}{mount}", self.host),
            None => super::icestats::listen_url(&self.host, self.port, mount),
        }
    }
}

/// Server-wide connection counters (icecast's global stats).
#[derive(Debug, Clone, Copy, Default)]
pub struct GlobalCounters {
    /// Clients connected right now (all kinds).
    pub clients: usize,
    pub connections: u64,
    pub client_connections: u64,
    pub source_total_connections: u64,
    pub source_client_connections: u64,
    pub source_relay_connections: u64,
    pub listener_connections: u64,
    pub file_connections: u64,
    pub stats_connections: u64,
    /// STATS-method clients connected right now.
    pub stats_clients: usize,
}

/// One mount at the moment of the snapshot.
#[derive(Debug, Clone)]
pub struct MountSnapshot {
    pub name: String,
    pub family: Family,
    /// The mount's source has ended (it is leaving the registry).
    pub ended: bool,
    /// A name reserved for an on-demand source that has not started.
    pub standby: bool,
    pub on_demand: bool,
    pub hidden: bool,
    pub max_listeners: Option<usize>,
    /// When the source connected.
    pub started: Timestamp,
    pub stream: StreamFacts,
    pub codec: CodecInfo,
    /// Now playing as players show it: `artist - title`, or the title alone.
    pub now_playing: String,
    pub title: Option<String>,
    pub artist: Option<String>,
    pub fallback: Option<String>,
    pub listeners: usize,
    pub counters: MountCounters,
    /// Bytes held in the mount's queue.
    pub queued_bytes: usize,
    /// The `subtype` the current config sets for this mount, which wins over the codec's.
    pub configured_subtype: Option<String>,
    /// The listener authenticator the current config names ("htpasswd", "url").
    pub authenticator: Option<&'static str>,
    /// The connected listeners, when the capture was asked for this mount's.
    pub clients: Option<Vec<ListenerSnapshot>>,
}

/// What a source said about its stream (its `ice-*`/`icy-*` headers and Content-Type,
/// merged with the mount's config overrides). The driver's `SourceInfo` holds one, and the
/// status documents show it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamFacts {
    pub content_type: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub url: Option<String>,
    pub genre: Option<String>,
    pub bitrate: Option<String>,
    pub public: bool,
    /// `ice-audio-info` split into url-decoded `key=value` pairs.
    pub audio_info: Vec<(String, String)>,
    /// The raw `ice-audio-info` value.
    pub audio_info_raw: Option<String>,
    pub source_ip: String,
    pub user_agent: String,
}

/// icecast's words for a stream name, description and genre the source left unsaid.
impl StreamFacts {
    pub fn display_name(&self) -> &str {
        self.name
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("Unspecified name")
    }

    pub fn display_description(&self) -> &str {
        self.description
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("Unspecified description")
    }

    pub fn display_genre(&self) -> &str {
        self.genre
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("various")
    }
}

/// A mount's counters (icecast's per-mount stats).
#[derive(Debug, Clone, Copy, Default)]
pub struct MountCounters {
    pub listener_peak: usize,
    pub slow_listeners: u64,
    pub listener_connections: u64,
    pub total_bytes_read: u64,
    pub total_bytes_sent: u64,
}

/// One connected listener, as `listclients` shows it.
#[derive(Debug, Clone)]
pub struct ListenerSnapshot {
    pub id: u64,
    pub ip: IpAddr,
    pub user_agent: String,
    pub connected: Timestamp,
    /// The user an authenticated listener logged in as.
    pub username: Option<String>,
}

/// What a pull relay is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RelayState {
    /// On-demand, waiting for a listener.
    Idle = 0,
    Connecting = 1,
    Up = 2,
    /// Upstream lost or refused; retrying after a backoff.
    Down = 3,
}

impl RelayState {
    pub fn name(self) -> &'static str {
        match self {
            RelayState::Idle => "idle",
            RelayState::Connecting => "connecting",
            RelayState::Up => "up",
            RelayState::Down => "down",
        }
    }
}

/// One pull relay.
#[derive(Debug, Clone)]
pub struct RelaySnapshot {
    /// The local mount it feeds.
    pub mount: String,
    pub upstream: String,
    pub on_demand: bool,
    pub state: RelayState,
    pub attempts: u64,
    pub failures: u64,
    pub last_error: Option<String>,
    /// Bytes received from upstream (ICY metadata and chunk framing included).
    pub bytes_in: u64,
    pub connected_since: Option<Timestamp>,
}

/// What a push relay is doing, as `/api/status` and `/metrics` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PushPhase {
    /// Streaming to the remote.
    Up,
    /// Connecting or logging in.
    Connecting,
    /// The local mount has no source.
    Waiting,
    /// The last attempt failed; waiting out the backoff.
    Down,
}

/// One push relay, which is also how `/api/status` lists it under `pushes`.
#[derive(Debug, Clone, Serialize)]
pub struct PushSnapshot {
    /// The local mount.
    pub mount: String,
    /// `http://host:port/mount` on the remote (no credentials).
    pub remote: String,
    /// The configured protocol: "auto", "put" or "source".
    pub protocol: &'static str,
    /// The method of the current or last login ("PUT" or "SOURCE"), `null` before any.
    pub method: Option<&'static str>,
    /// "up", "connecting", "waiting" (local mount has no source) or "down" (backing off).
    pub state: PushPhase,
    /// Connection attempts so far.
    pub attempts: u64,
    pub last_error: Option<String>,
    /// Stream bytes written to the remote.
    pub bytes_sent: u64,
    /// While up; ISO 8601 in documents.
    #[serde(serialize_with = "super::serialize_iso8601")]
    pub connected_since: Option<Timestamp>,
}

/// A push and whether the config hides its local mount (public documents then leave the
/// push out, as they leave out the mount).
#[derive(Debug, Clone)]
pub struct PushEntry {
    pub push: PushSnapshot,
    pub mount_hidden: bool,
}

/// What the status page and metrics can see of a mount's team.
#[derive(Debug, Clone)]
pub enum TeamState {
    Splitter {
        local: Option<SocketAddr>,
        stats: Option<SplitterStats>,
    },
    Peer {
        splitter: String,
        joined: bool,
        stats: Option<PeerStats>,
    },
}
