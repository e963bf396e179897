//! The metrics read at scrape time from one [`ServerSnapshot`]: per-mount state (listeners,
//! bytes, source), P2PSP teams, pull relays (`floecast_relay_*`) and push relays
//! (`floecast_push_*`). Built fresh for each scrape, so mounts that ended disappear; the hot
//! path pays nothing. Reads the snapshot only, never the server.

use std::sync::{Arc, Weak};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts};

use super::{MountLabels, SnapshotSource};
use crate::documents::{PushPhase, RelayState, ServerSnapshot, TeamState, Timestamp};

/// The scrape-time families, filled from a snapshot of the server.
pub(super) struct SnapshotCollector {
    source: Weak<dyn SnapshotSource>,
    labels: Arc<MountLabels>,
    descs: Vec<Desc>,
}

impl SnapshotCollector {
    pub(super) fn new(source: Weak<dyn SnapshotSource>, labels: Arc<MountLabels>) -> Self {
        let descs = Families::new()
            .map(|f| {
                f.collectors()
                    .iter()
                    .flat_map(|c| c.desc().into_iter().cloned())
                    .collect()
            })
            .unwrap_or_default();
        SnapshotCollector {
            source,
            labels,
            descs,
        }
    }
}

impl Collector for SnapshotCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let (Some(source), Some(f)) = (self.source.upgrade(), Families::new()) else {
            return Vec::new();
        };
        let snap = source.snapshot();
        f.fill_mounts(&snap, &self.labels);
        f.fill_teams(&snap, &self.labels);
        f.fill_relays(&snap, &self.labels);
        f.fill_pushes(&snap);
        f.collectors().iter().flat_map(|c| c.collect()).collect()
    }
}

struct Families {
    listeners: IntGaugeVec,
    sent: IntCounterVec,
    received: IntCounterVec,
    slow: IntCounterVec,
    connected: IntGaugeVec,
    started: GaugeVec,
    info: IntGaugeVec,
    queued: IntGaugeVec,
    team_peers: IntGaugeVec,
    relayed_peers: IntGaugeVec,
    chunks_sent: IntCounterVec,
    chunks_received: IntCounterVec,
    chunks_lost: IntCounterVec,
    chunks_checked: IntCounterVec,
    expelled: IntCounterVec,
    buffer: IntGaugeVec,
    pace_rate: IntGaugeVec,
    uplink_delay: IntGaugeVec,
    playout_delay: IntGaugeVec,
    relay_up: IntGaugeVec,
    relay_attempts: IntCounterVec,
    relay_failures: IntCounterVec,
    relay_received: IntCounterVec,
    push_up: IntGaugeVec,
    push_attempts: IntCounterVec,
    push_sent: IntCounterVec,
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> Option<IntGaugeVec> {
    IntGaugeVec::new(Opts::new(name, help), labels).ok()
}

fn counter(name: &str, help: &str, labels: &[&str]) -> Option<IntCounterVec> {
    IntCounterVec::new(Opts::new(name, help), labels).ok()
}

impl Families {
    fn new() -> Option<Families> {
        let push = &["mount", "remote"];
        Some(Families {
            listeners: gauge(
                "floecast_listeners",
                "Listeners connected now.",
                &["mount", "transport"],
            )?,
            sent: counter(
                "floecast_sent_bytes_total",
                "Stream bytes sent to listeners of the mount's current source.",
                &["mount", "transport"],
            )?,
            received: counter(
                "floecast_source_received_bytes_total",
                "Stream bytes received from the mount's current source.",
                &["mount"],
            )?,
            slow: counter(
                "floecast_slow_listeners_total",
                "Listeners dropped for falling a queue behind.",
                &["mount"],
            )?,
            connected: gauge(
                "floecast_source_connected",
                "1 while the mount has a source.",
                &["mount", "kind"],
            )?,
            started: GaugeVec::new(
                Opts::new(
                    "floecast_source_start_timestamp_seconds",
                    "When the mount's source connected.",
                ),
                &["mount"],
            )
            .ok()?,
            info: gauge(
                "floecast_mount_info",
                "Mount facts; the value is always 1.",
                &["mount", "content_type", "codec"],
            )?,
            queued: gauge(
                "floecast_mount_queued_bytes",
                "Bytes held in the mount's queue.",
                &["mount"],
            )?,
            team_peers: gauge(
                "floecast_p2psp_team_peers",
                "Peers in the mount's team (splitter) or neighbours (peer).",
                &["mount", "role"],
            )?,
            relayed_peers: gauge(
                "floecast_p2psp_relayed_peers",
                "Members of the mount's team that no other member reaches (behind symmetric \
                 or filtering NATs), to which the splitter sends the whole stream.",
                &["mount"],
            )?,
            chunks_sent: counter(
                "floecast_p2psp_chunks_sent_total",
                "P2PSP chunks sent by this server for the mount.",
                &["mount", "role"],
            )?,
            chunks_received: counter(
                "floecast_p2psp_chunks_received_total",
                "P2PSP chunks received by a peer mount.",
                &["mount", "from"],
            )?,
            chunks_checked: counter(
                "floecast_p2psp_chunks_checked_total",
                "Chunks from other team members a peer mount checked against the splitter's \
                 signed digests, by verdict (verified, rejected: forged and dropped).",
                &["mount", "verdict"],
            )?,
            chunks_lost: counter(
                "floecast_p2psp_chunks_lost_total",
                "P2PSP chunks a peer mount gave up on.",
                &["mount"],
            )?,
            expelled: counter(
                "floecast_p2psp_peers_expelled_total",
                "Peers removed from the mount's team, by reason.",
                &["mount", "reason"],
            )?,
            buffer: gauge(
                "floecast_p2psp_buffer_chunks",
                "Chunks held in a peer mount's playout buffer.",
                &["mount"],
            )?,
            pace_rate: gauge(
                "floecast_p2psp_pace_rate_bytes_per_second",
                "The rate a peer mount's pacer sends relayed chunks at (its uplink's share).",
                &["mount"],
            )?,
            uplink_delay: gauge(
                "floecast_p2psp_uplink_queue_delay_milliseconds",
                "The queueing delay on a peer mount's uplink, as its neighbours last measured it.",
                &["mount"],
            )?,
            playout_delay: gauge(
                "floecast_p2psp_playout_delay_milliseconds",
                "How long after the splitter sent a chunk a peer mount plays it (a steady delay \
                 that grows to cover late chunks and melts slowly).",
                &["mount"],
            )?,
            relay_up: gauge(
                "floecast_relay_up",
                "1 while the relay receives its upstream stream.",
                &["mount"],
            )?,
            relay_attempts: counter(
                "floecast_relay_connect_attempts_total",
                "Connections the relay tried to open upstream.",
                &["mount"],
            )?,
            relay_failures: counter(
                "floecast_relay_failures_total",
                "Failed upstream connections and lost upstream streams.",
                &["mount"],
            )?,
            relay_received: counter(
                "floecast_relay_received_bytes_total",
                "Bytes received from the relay's upstream, in-band metadata included.",
                &["mount"],
            )?,
            push_up: gauge(
                "floecast_push_up",
                "1 while the push relay streams to its remote.",
                push,
            )?,
            push_attempts: counter(
                "floecast_push_connect_attempts_total",
                "Connection attempts of the push relay.",
                push,
            )?,
            push_sent: counter(
                "floecast_push_sent_bytes_total",
                "Stream bytes the push relay wrote to its remote.",
                push,
            )?,
        })
    }

    fn collectors(&self) -> [&dyn Collector; 26] {
        [
            &self.listeners,
            &self.sent,
            &self.received,
            &self.slow,
            &self.connected,
            &self.started,
            &self.info,
            &self.queued,
            &self.team_peers,
            &self.relayed_peers,
            &self.chunks_sent,
            &self.chunks_received,
            &self.chunks_lost,
            &self.chunks_checked,
            &self.expelled,
            &self.buffer,
            &self.pace_rate,
            &self.uplink_delay,
            &self.playout_delay,
            &self.relay_up,
            &self.relay_attempts,
            &self.relay_failures,
            &self.relay_received,
            &self.push_up,
            &self.push_attempts,
            &self.push_sent,
        ]
    }

    fn fill_mounts(&self, snap: &ServerSnapshot, labels: &MountLabels) {
        for m in &snap.mounts {
            let label = labels.label(&m.name);
            let l = label.as_str();
            self.listeners
                .with_label_values(&[l, "http"])
                .set(m.listeners as i64);
            self.sent
                .with_label_values(&[l, "http"])
                .inc_by(m.counters.total_bytes_sent);
            self.received
                .with_label_values(&[l])
                .inc_by(m.counters.total_bytes_read);
            self.slow
                .with_label_values(&[l])
                .inc_by(m.counters.slow_listeners);
            let kind = if snap.relays.iter().any(|r| r.mount == m.name) {
                "relay"
            } else {
                "push"
            };
            self.connected
                .with_label_values(&[l, kind])
                .set(i64::from(!m.ended && !m.standby));
            self.started
                .with_label_values(&[l])
                .set(unix_seconds(&m.started));
            let codec = m.codec.codec.as_deref().unwrap_or_default();
            self.info
                .with_label_values(&[l, &m.stream.content_type, codec])
                .set(1);
            self.queued
                .with_label_values(&[l])
                .set(m.queued_bytes as i64);
        }
    }

    fn fill_teams(&self, snap: &ServerSnapshot, labels: &MountLabels) {
        for (mount, team) in &snap.teams {
            let label = labels.label(mount);
            let l = label.as_str();
            match team {
                TeamState::Splitter { stats: Some(s), .. } => {
                    self.team_peers
                        .with_label_values(&[l, "splitter"])
                        .set(s.peers.len() as i64);
                    self.relayed_peers
                        .with_label_values(&[l])
                        .set(s.relayed_peers as i64);
                    let sent: u64 =
                        s.peers.iter().map(|p| p.chunks_sent).sum::<u64>() + s.lrs_resends;
                    self.chunks_sent
                        .with_label_values(&[l, "splitter"])
                        .inc_by(sent);
                    self.expelled
                        .with_label_values(&[l, "goodbye"])
                        .inc_by(s.left_goodbye);
                    self.expelled
                        .with_label_values(&[l, "timeout"])
                        .inc_by(s.expelled_timeout);
                    self.expelled
                        .with_label_values(&[l, "freeriding"])
                        .inc_by(s.expelled_losses);
                    self.expelled
                        .with_label_values(&[l, "polluter"])
                        .inc_by(s.expelled_polluters);
                }
                TeamState::Peer { stats: Some(s), .. } => {
                    self.team_peers
                        .with_label_values(&[l, "peer"])
                        .set(s.neighbours.len() as i64);
                    self.chunks_sent
                        .with_label_values(&[l, "peer"])
                        .inc_by(s.sent);
                    self.chunks_received
                        .with_label_values(&[l, "splitter"])
                        .inc_by(s.from_splitter);
                    self.chunks_received
                        .with_label_values(&[l, "peers"])
                        .inc_by(s.from_peers);
                    self.chunks_lost.with_label_values(&[l]).inc_by(s.skipped);
                    self.chunks_checked
                        .with_label_values(&[l, "verified"])
                        .inc_by(s.verified);
                    self.chunks_checked
                        .with_label_values(&[l, "rejected"])
                        .inc_by(s.rejected);
                    self.buffer
                        .with_label_values(&[l])
                        .set(i64::from(s.buffer_fill));
                    self.pace_rate
                        .with_label_values(&[l])
                        .set(s.pace_rate.min(i64::MAX as u64) as i64);
                    self.uplink_delay
                        .with_label_values(&[l])
                        .set(s.queue_delay.as_millis().min(i64::MAX as u128) as i64);
                    if let Some(d) = s.playout_delay {
                        self.playout_delay
                            .with_label_values(&[l])
                            .set(d.as_millis().min(i64::MAX as u128) as i64);
                    }
                }
                _ => {}
            }
        }
    }

    /// One series per relay's local mount; mount labels share the server-wide cap.
    fn fill_relays(&self, snap: &ServerSnapshot, labels: &MountLabels) {
        for r in &snap.relays {
            let label = labels.label(&r.mount);
            let l = [label.as_str()];
            self.relay_up
                .with_label_values(&l)
                .set(i64::from(r.state == RelayState::Up));
            self.relay_attempts.with_label_values(&l).inc_by(r.attempts);
            self.relay_failures.with_label_values(&l).inc_by(r.failures);
            self.relay_received.with_label_values(&l).inc_by(r.bytes_in);
        }
    }

    /// Push labels come from the config, so they are bounded by it.
    fn fill_pushes(&self, snap: &ServerSnapshot) {
        for entry in &snap.pushes {
            let p = &entry.push;
            let labels = [p.mount.as_str(), p.remote.as_str()];
            self.push_up
                .with_label_values(&labels)
                .set(i64::from(p.state == PushPhase::Up));
            self.push_attempts
                .with_label_values(&labels)
                .inc_by(p.attempts);
            self.push_sent
                .with_label_values(&labels)
                .inc_by(p.bytes_sent);
        }
    }
}

/// Seconds since the Unix epoch, as `Duration::as_secs_f64` counts them.
fn unix_seconds(t: &Timestamp) -> f64 {
    if t.timestamp() < 0 {
        return 0.0;
    }
    t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9
}
