//! floecast's own status document, `GET /api/status` (and each event of `/api/events`):
//! clean JSON with stable field names, numbers as numbers, absent values `null`, hidden
//! mounts (and their pushes) left out. Rendered from a snapshot only.

use serde::Serialize;
use serde_json::json;

use super::icestats::visible_mounts;
use super::snapshot::{PushSnapshot, RelaySnapshot, ServerSnapshot, TeamState};
use super::{iso8601, seconds_between};
use crate::p2psp::Role;

#[derive(Debug, Serialize)]
pub struct ApiStatus {
    pub server: ApiServer,
    /// Live mounts, sorted by name.
    pub mounts: Vec<ApiMount>,
    /// Push relays in config order (those of hidden mounts left out): `mount`, `remote` (URL without credentials), `protocol`,
    /// `method`, `state` ("up", "connecting", "waiting", "down"), `attempts`, `last_error`,
    /// `bytes_sent`, `connected_since`.
    pub pushes: Vec<PushSnapshot>,
}

#[derive(Debug, Serialize)]
pub struct ApiServer {
    /// The `Server:` header / `server_id`.
    pub id: String,
    /// Configured hostname, used in listen URLs.
    pub host: String,
    pub location: String,
    pub admin: String,
    /// Start time, ISO 8601 (`2023-06-06T09:33:57+0000`).
    pub started: String,
    pub uptime_seconds: u64,
    /// Listeners on all mounts (hidden ones included in the count).
    pub listeners: usize,
    /// Live mounts (hidden ones included in the count).
    pub sources: usize,
}

#[derive(Debug, Serialize)]
pub struct ApiMount {
    pub mount: String,
    pub listen_url: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub genre: Option<String>,
    pub url: Option<String>,
    pub content_type: String,
    /// "MP3", "AAC", "Vorbis", "Opus", … when the framer recognised it.
    pub codec: Option<String>,
    /// kbit/s: from the stream itself, else what the source declared.
    pub bitrate: Option<u64>,
    pub samplerate: Option<u32>,
    pub channels: Option<u32>,
    pub listeners: ApiListeners,
    /// Since the source connected.
    pub uptime_seconds: u64,
    pub started: String,
    /// Now playing: `artist - title`, or the title alone.
    pub title: Option<String>,
    pub artist: Option<String>,
    pub public: bool,
    pub source: ApiSource,
    pub bytes_read: u64,
    pub bytes_sent: u64,
    /// Relay details when the mount is fed by a relay: `state` ("up", "connecting", "down",
    /// or "idle" for an on-demand relay waiting for listeners), `upstream` URL, `on_demand`,
    /// `attempts`, `failures`, `last_error`, `bytes_in` and `connected_since` (ISO 8601).
    pub relay: Option<serde_json::Value>,
    /// P2PSP team details when the mount splits for a team or is a team's peer: `role`
    /// ("splitter" or "peer"); a splitter's `endpoint`, `peers` (id, endpoint (null unless the
    /// reader is the admin), monitor,
    /// chunks_sent, bytes_sent, losses, last_seen_ms, `nat` (behind a NAT; null until it
    /// says), `relayed` (no member reaches it: the splitter sends it the stream), `relays`
    /// (origins may make it a relay to its group)), chunk and byte totals, `expelled` counts,
    /// `joins_unconfirmed`, `relayed_peers`, `relayed_chunks`, `relay_rule` ("all", "reaching":
    /// not members behind NATs that hear few, "public": not members behind NATs);
    /// a peer's `splitter`, `joined`, chunk counters, `neighbours_heard`, `introductions` and
    /// `public_endpoint` (as the splitter sees it; null unless the reader is the admin). A mount that is both (an
    /// inner node of a hybrid tree) shows its served team with the joined one as `upstream`.
    pub p2psp: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct ApiListeners {
    pub current: usize,
    pub peak: usize,
    /// `max-listeners`, `null` when unlimited.
    pub max: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct ApiSource {
    /// How the stream arrives: "push" (SOURCE/PUT or the ICY port) or "relay".
    pub kind: &'static str,
    pub ip: String,
    pub user_agent: Option<String>,
    pub fallback: Option<String>,
}

/// Whose eyes the document is for: P2PSP peers' addresses are for the admin only; anyone
/// else sees their ids, roles and statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    Anonymous,
    Admin,
}

/// The document.
pub fn api_status(snap: &ServerSnapshot, reader: Reader) -> ApiStatus {
    let mounts = visible_mounts(snap, false, None)
        .map(|m| {
            let info = &m.stream;
            let codec = &m.codec;
            let relay = snap.relays.iter().find(|r| r.mount == m.name);
            let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
            ApiMount {
                listen_url: snap.identity.listen_url(&m.name),
                mount: m.name.clone(),
                name: non_empty(&info.name),
                description: non_empty(&info.description),
                genre: non_empty(&info.genre),
                url: non_empty(&info.url),
                content_type: info.content_type.clone(),
                codec: codec.codec.clone(),
                bitrate: codec
                    .bitrate
                    .map(u64::from)
                    .or_else(|| info.bitrate.as_deref().and_then(|b| b.trim().parse().ok())),
                samplerate: codec.samplerate,
                channels: codec.channels,
                listeners: ApiListeners {
                    current: m.listeners,
                    peak: m.counters.listener_peak,
                    max: m.max_listeners,
                },
                uptime_seconds: seconds_between(&m.started, &snap.now),
                started: iso8601(&m.started),
                title: (!m.now_playing.is_empty()).then(|| m.now_playing.clone()),
                artist: non_empty(&m.artist),
                public: info.public,
                source: ApiSource {
                    kind: if relay.is_some() { "relay" } else { "push" },
                    ip: info.source_ip.clone(),
                    user_agent: non_empty(&Some(info.user_agent.clone())),
                    fallback: m.fallback.clone(),
                },
                bytes_read: m.counters.total_bytes_read,
                bytes_sent: m.counters.total_bytes_sent,
                relay: relay.map(relay_json),
                p2psp: team_json(snap, &m.name, reader),
            }
        })
        .collect();
    let id = &snap.identity;
    ApiStatus {
        server: ApiServer {
            id: id.server_id.clone(),
            host: id.host.clone(),
            location: id.location.clone(),
            admin: id.admin.clone(),
            started: iso8601(&snap.started),
            uptime_seconds: seconds_between(&snap.started, &snap.now),
            listeners: snap.mounts.iter().map(|m| m.listeners).sum(),
            sources: snap.mounts.len(),
        },
        mounts,
        // Like hidden mounts themselves, pushes of hidden mounts stay off the public document.
        pushes: snap
            .pushes
            .iter()
            .filter(|p| !p.mount_hidden)
            .map(|p| p.push.clone())
            .collect(),
    }
}

/// The `relay` object of a mount.
pub fn relay_json(r: &RelaySnapshot) -> serde_json::Value {
    json!({
        "state": r.state.name(),
        "upstream": r.upstream,
        "on_demand": r.on_demand,
        "attempts": r.attempts,
        "failures": r.failures,
        "last_error": r.last_error,
        "bytes_in": r.bytes_in,
        "connected_since": r.connected_since.as_ref().map(iso8601),
    })
}

/// The `p2psp` object of a mount: the served team, with the joined one as `upstream` when
/// the mount is both (or the joined team alone).
pub fn team_json(snap: &ServerSnapshot, mount: &str, reader: Reader) -> Option<serde_json::Value> {
    let of_mount = || {
        snap.teams
            .iter()
            .filter(|(m, _)| m == mount)
            .map(|(_, t)| t)
    };
    let splitter = of_mount().find(|t| matches!(t, TeamState::Splitter { .. }));
    let peer = of_mount().find(|t| matches!(t, TeamState::Peer { .. }));
    let json = |t| team_state_json(t, snap, reader);
    match (splitter, peer) {
        (Some(s), Some(p)) => {
            let mut v = json(s);
            v["upstream"] = json(p);
            Some(v)
        }
        (Some(s), None) => Some(json(s)),
        (None, Some(p)) => Some(json(p)),
        (None, None) => None,
    }
}

/// One team as `/api/status` shows it (documented at [`ApiMount::p2psp`]).
fn team_state_json(team: &TeamState, snap: &ServerSnapshot, reader: Reader) -> serde_json::Value {
    match team {
        TeamState::Splitter { local, stats } => {
            let mut v = json!({ "role": "splitter", "endpoint": local.map(|a| a.to_string()) });
            if let Some(s) = stats {
                let now = snap.now_mono;
                v["chunks_pushed"] = json!(s.chunks_pushed);
                v["bytes_pushed"] = json!(s.bytes_pushed);
                v["bytes_sent"] = json!(s.bytes_sent);
                v["lrs_resends"] = json!(s.lrs_resends);
                v["joins"] = json!(s.joins);
                v["expelled"] = json!({
                    "goodbye": s.left_goodbye,
                    "timeout": s.expelled_timeout,
                    "losses": s.expelled_losses,
                    "polluter": s.expelled_polluters,
                });
                // Native teams: the key peers can pin, and what authentication turned away.
                v["public_key"] = json!(s.public_key);
                v["digests_signed"] = json!(s.digests_signed);
                v["datagrams_unauthenticated"] = json!(s.bad_mac + s.replays);
                v["complaints_unblamed"] = json!(s.unblamed_complaints);
                // Reach: joins never confirmed over UDP, members relayed by the splitter.
                v["joins_unconfirmed"] = json!(s.joins_unconfirmed);
                v["relayed_peers"] = json!(s.relayed_peers);
                v["relayed_chunks"] = json!(s.relayed_chunks);
                v["relay_rule"] = json!(s.relay_rule);
                v["peers"] = s
                    .peers
                    .iter()
                    .map(|p| {
                        json!({
                            "id": p.id.0,
                            // A listener's address: null unless the admin asks.
                            "endpoint": (reader == Reader::Admin).then(|| p.addr.to_string()),
                            "monitor": p.role == Role::Monitor,
                            "chunks_sent": p.chunks_sent,
                            "bytes_sent": p.bytes_sent,
                            "losses": p.losses_total,
                            "last_seen_ms": now.saturating_duration_since(p.last_seen).as_millis() as u64,
                            // The peer's own report: chunks played and lost, buffer
                            // fill, the largest debt a neighbour owes it.
                            "delivered": p.report.map(|r| r.delivered),
                            "lost": p.report.map(|r| r.lost),
                            "buffer_fill": p.report.map(|r| r.buffer_fill),
                            "debt": p.report.map(|r| r.max_debt),
                            "neighbours": p.report.map(|r| r.neighbours),
                            "verified": p.report.map(|r| r.verified),
                            "rejected": p.report.map(|r| r.rejected),
                            // Its pacer: the rate its relayed copies go at (bytes/s), the
                            // wait of the oldest one queued, and the share of the splitter's
                            // chunks its uplink allows (1 = a full share; 3 = one turn in 3).
                            "pace_rate": p.report.map(|r| r.pace_rate),
                            "pace_backlog_ms": p.report.map(|r| r.backlog_ms),
                            // What its uplink carries as its pacer measured it (0 = not
                            // yet): a share is sized by this.
                            "uplink_rate": p.report.map(|r| r.uplink_rate),
                            // Its uplink as its latest Train read it on arrival (bytes/s;
                            // null before one came): the share until the pacer measures.
                            "train_rate": p.train_rate,
                            "share_period": p.capacity_period,
                            // Whether it gets chunk turns now, and how long its Reports
                            // wait behind its uplink's queue (past a second, or twice the
                            // median member's, it gets none).
                            "takes_turns": p.takes_turns,
                            "report_queue_ms": p.report_queue.as_millis() as u64,
                            // Behind a NAT (the endpoint it is bound at is not the one we
                            // see; null until it says), and relayed the stream by us.
                            "nat": p.nat,
                            "relayed": p.relayed,
                            // Whether origins may make it a relay to its group now
                            // (`relay_rule`).
                            "relays": p.relays,
                        })
                    })
                    .collect();
            }
            v
        }
        TeamState::Peer {
            splitter,
            joined,
            stats,
        } => {
            let mut v = json!({ "role": "peer", "splitter": splitter, "joined": joined });
            if let Some(s) = stats {
                v["chunks_from_splitter"] = json!(s.from_splitter);
                v["chunks_from_peers"] = json!(s.from_peers);
                v["chunks_sent"] = json!(s.sent);
                v["chunks_delivered"] = json!(s.delivered);
                v["chunks_lost"] = json!(s.skipped);
                v["duplicates"] = json!(s.duplicates);
                v["chunks_verified"] = json!(s.verified);
                v["chunks_rejected"] = json!(s.rejected);
                v["datagrams_unauthenticated"] = json!(s.bad_mac + s.replays);
                v["buffer_fill"] = json!(s.buffer_fill);
                v["neighbours"] = json!(s.neighbours.len());
                v["neighbours_heard"] = json!(s.neighbours.iter().filter(|n| n.heard).count());
                v["introductions"] = json!(s.introductions);
                // Members the splitter says are too slow to relay: not our floods' relays.
                v["slow_members"] = json!(s.slow_members);
                // The pacer: its rate (bytes/s), the queueing delay receivers last saw on our
                // uplink, copies dropped unsent (too late, or overtaken by a resend's flood),
                // and how long holes are waited for.
                v["pace_rate"] = json!(s.pace_rate);
                v["uplink_queue_delay_ms"] = json!(s.queue_delay.as_millis() as u64);
                v["uplink_rate"] = json!(s.uplink_rate);
                v["copies_dropped"] = json!(s.copies_dropped);
                v["copies_overtaken"] = json!(s.copies_overtaken);
                v["lateness_ms"] = json!(s.lateness.as_millis() as u64);
                // How far behind the splitter our playout keeps (null until its clock is known).
                v["playout_delay_ms"] = json!(s.playout_delay.map(|d| d.as_millis() as u64));
                // Our endpoint as the splitter sees it: an address, for the admin only.
                v["public_endpoint"] = json!(
                    s.public_endpoint
                        .filter(|_| reader == Reader::Admin)
                        .map(|a| a.to_string())
                );
            }
            v
        }
    }
}
