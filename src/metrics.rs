//! Prometheus metrics at `/metrics`, named by the rules in anchors.md §4: `floecast_` prefix,
//! base units, `_total` only on counters, no unbounded labels.
//!
//! Two kinds of metric: per-mount state (listeners, bytes, source) is read from the atomics
//! mounts already keep, at scrape time, so the hot path pays nothing; events that leave no
//! state behind (connections, disconnect reasons, HTTP requests, reloads) are counted when
//! they happen. Mount labels are capped so a flood of ad-hoc mount names cannot blow up the
//! series count.

use std::collections::HashSet;
use std::sync::{Mutex, Weak};
use std::time::UNIX_EPOCH;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, Gauge, GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::server::Server;
use crate::sync::lock;
use crate::team::TeamState;

/// Most distinct mount label values; later mounts are reported as "other".
const MAX_MOUNT_LABELS: usize = 500;

/// Event counters, incremented where things happen.
pub struct Metrics {
    registry: Registry,
    mount_labels: Mutex<HashSet<String>>,
    pub listener_connections: IntCounterVec,
    pub listener_disconnects: IntCounterVec,
    pub source_connections: IntCounterVec,
    pub metadata_updates: IntCounterVec,
    pub fallback_activations: IntCounterVec,
    pub http_requests: IntCounterVec,
    pub config_reloads: IntCounterVec,
    pub config_last_reload_success: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let vec = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    register(registry, vec.clone());
    vec
}

/// Registering fixed, distinct names cannot fail except by programming error; log rather
/// than take the server down if it ever does.
fn register<C: Collector + 'static>(registry: &Registry, c: C) {
    if let Err(e) = registry.register(Box::new(c)) {
        tracing::error!("metrics registration failed: {e}");
    }
}

impl Metrics {
    pub fn new(server: Weak<Server>) -> Metrics {
        let registry = Registry::new();
        let r = &registry;
        let metrics = Metrics {
            listener_connections: counter(
                r,
                "floecast_listener_connections_total",
                "Listener requests for a mount, by outcome.",
                &["mount", "outcome"],
            ),
            listener_disconnects: counter(
                r,
                "floecast_listener_disconnects_total",
                "Listeners that left, by reason.",
                &["mount", "reason"],
            ),
            source_connections: counter(
                r,
                "floecast_source_connections_total",
                "Source connection attempts, by protocol and outcome.",
                &["mount", "protocol", "outcome"],
            ),
            metadata_updates: counter(
                r,
                "floecast_source_metadata_updates_total",
                "Title updates, by how they arrived.",
                &["mount", "via"],
            ),
            fallback_activations: counter(
                r,
                "floecast_fallback_activations_total",
                "Times a mount's listeners were moved to its fallback.",
                &["mount", "target"],
            ),
            http_requests: counter(
                r,
                "floecast_http_requests_total",
                "HTTP requests, by route template, method and status class.",
                &["route", "method", "code_class"],
            ),
            config_reloads: counter(
                r,
                "floecast_config_reloads_total",
                "Config reloads, by outcome.",
                &["outcome"],
            ),
            config_last_reload_success: Gauge::new(
                "floecast_config_last_reload_success_timestamp_seconds",
                "When the config was last loaded successfully.",
            )
            .unwrap_or_else(|e| panic!("metric: {e}")),
            mount_labels: Mutex::new(HashSet::new()),
            registry,
        };
        register(
            &metrics.registry,
            metrics.config_last_reload_success.clone(),
        );
        metrics.config_last_reload_success.set(unix_now());
        let build = IntGaugeVec::new(
            Opts::new(
                "floecast_build_info",
                "Build information; the value is always 1.",
            ),
            &["version", "git_sha"],
        )
        .unwrap_or_else(|e| panic!("metric: {e}"));
        build
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                option_env!("FLOECAST_GIT_SHA").unwrap_or("unknown"),
            ])
            .set(1);
        register(&metrics.registry, build);
        register(&metrics.registry, ProcessCollector::for_self());
        register(
            &metrics.registry,
            crate::relay::push::PushCollector::new(server.clone()),
        );
        register(&metrics.registry, MountCollector::new(server.clone()));
        register(
            &metrics.registry,
            crate::relay::metrics::RelayCollector::new(server),
        );
        metrics
    }

    /// The mount as a label value, or "other" once too many distinct mounts were seen.
    pub fn mount_label(&self, mount: &str) -> String {
        let mut seen = lock(&self.mount_labels);
        if seen.contains(mount) {
            return mount.to_string();
        }
        if seen.len() < MAX_MOUNT_LABELS {
            seen.insert(mount.to_string());
            return mount.to_string();
        }
        "other".to_string()
    }

    /// Count a listener request's outcome.
    pub fn listener_outcome(&self, mount: &str, outcome: &str) {
        self.listener_connections
            .with_label_values(&[&self.mount_label(mount), outcome])
            .inc();
    }

    pub fn config_reloaded(&self, ok: bool) {
        self.config_reloads
            .with_label_values(&[if ok { "success" } else { "failure" }])
            .inc();
        if ok {
            self.config_last_reload_success.set(unix_now());
        }
    }

    /// Count one HTTP response.
    pub fn http_request(&self, route: &str, method: &str, status: u16) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.http_requests
            .with_label_values(&[route, method, class])
            .inc();
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> String {
        let families = self.registry.gather();
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&families, &mut buf) {
            tracing::error!("metrics encoding failed: {e}");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// prometheus's `process_*` collector with `process_cpu_seconds_total` to the clock tick.
/// Its own divides the tick count by `CLK_TCK` in integers, so the counter moves in whole
/// seconds and `rate()` over half a minute reads 0 on a server that is not busy.
struct ProcessCollector {
    inner: prometheus::process_collector::ProcessCollector,
}

impl ProcessCollector {
    fn for_self() -> Self {
        ProcessCollector {
            inner: prometheus::process_collector::ProcessCollector::for_self(),
        }
    }
}

const CPU_SECONDS: &str = "process_cpu_seconds_total";

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.inner.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut families = self.inner.collect();
        if let Some(seconds) = cpu_seconds() {
            for family in families.iter_mut().filter(|f| f.name() == CPU_SECONDS) {
                for metric in family.mut_metric() {
                    let mut counter = prometheus::proto::Counter::default();
                    counter.set_value(seconds);
                    metric.set_counter(counter);
                }
            }
        }
        families
    }
}

/// User plus system CPU time of this process, in seconds, to the clock tick (10 ms).
pub fn cpu_seconds() -> Option<f64> {
    let stat = procfs::process::Process::myself().ok()?.stat().ok()?;
    Some((stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Reads live mount state at scrape time.
struct MountCollector {
    server: Weak<Server>,
    descs: Vec<Desc>,
}

/// The per-mount families, built fresh for each scrape (so mounts that ended disappear).
struct MountFamilies {
    listeners: IntGaugeVec,
    sent: IntCounterVec,
    received: IntCounterVec,
    slow: IntCounterVec,
    connected: IntGaugeVec,
    started: GaugeVec,
    info: IntGaugeVec,
    queued: IntGaugeVec,
    team_peers: IntGaugeVec,
    chunks_sent: IntCounterVec,
    chunks_received: IntCounterVec,
    chunks_lost: IntCounterVec,
    expelled: IntCounterVec,
    buffer: IntGaugeVec,
}

impl MountFamilies {
    fn new() -> Option<MountFamilies> {
        Some(MountFamilies {
            listeners: IntGaugeVec::new(
                Opts::new("floecast_listeners", "Listeners connected now."),
                &["mount", "transport"],
            )
            .ok()?,
            sent: IntCounterVec::new(
                Opts::new(
                    "floecast_sent_bytes_total",
                    "Stream bytes sent to listeners of the mount's current source.",
                ),
                &["mount", "transport"],
            )
            .ok()?,
            received: IntCounterVec::new(
                Opts::new(
                    "floecast_source_received_bytes_total",
                    "Stream bytes received from the mount's current source.",
                ),
                &["mount"],
            )
            .ok()?,
            slow: IntCounterVec::new(
                Opts::new(
                    "floecast_slow_listeners_total",
                    "Listeners dropped for falling a queue behind.",
                ),
                &["mount"],
            )
            .ok()?,
            connected: IntGaugeVec::new(
                Opts::new(
                    "floecast_source_connected",
                    "1 while the mount has a source.",
                ),
                &["mount", "kind"],
            )
            .ok()?,
            started: GaugeVec::new(
                Opts::new(
                    "floecast_source_start_timestamp_seconds",
                    "When the mount's source connected.",
                ),
                &["mount"],
            )
            .ok()?,
            info: IntGaugeVec::new(
                Opts::new("floecast_mount_info", "Mount facts; the value is always 1."),
                &["mount", "content_type", "codec"],
            )
            .ok()?,
            queued: IntGaugeVec::new(
                Opts::new(
                    "floecast_mount_queued_bytes",
                    "Bytes held in the mount's queue.",
                ),
                &["mount"],
            )
            .ok()?,
            team_peers: IntGaugeVec::new(
                Opts::new(
                    "floecast_p2psp_team_peers",
                    "Peers in the mount's team (splitter) or neighbours (peer).",
                ),
                &["mount", "role"],
            )
            .ok()?,
            chunks_sent: IntCounterVec::new(
                Opts::new(
                    "floecast_p2psp_chunks_sent_total",
                    "P2PSP chunks sent by this server for the mount.",
                ),
                &["mount", "role"],
            )
            .ok()?,
            chunks_received: IntCounterVec::new(
                Opts::new(
                    "floecast_p2psp_chunks_received_total",
                    "P2PSP chunks received by a peer mount.",
                ),
                &["mount", "from"],
            )
            .ok()?,
            chunks_lost: IntCounterVec::new(
                Opts::new(
                    "floecast_p2psp_chunks_lost_total",
                    "P2PSP chunks a peer mount gave up on.",
                ),
                &["mount"],
            )
            .ok()?,
            expelled: IntCounterVec::new(
                Opts::new(
                    "floecast_p2psp_peers_expelled_total",
                    "Peers removed from the mount's team, by reason.",
                ),
                &["mount", "reason"],
            )
            .ok()?,
            buffer: IntGaugeVec::new(
                Opts::new(
                    "floecast_p2psp_buffer_chunks",
                    "Chunks held in a peer mount's playout buffer.",
                ),
                &["mount"],
            )
            .ok()?,
        })
    }

    fn collectors(&self) -> [&dyn Collector; 14] {
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
            &self.chunks_sent,
            &self.chunks_received,
            &self.chunks_lost,
            &self.expelled,
            &self.buffer,
        ]
    }
}

/// The descriptions of a set of metric families, which a scrape-time collector must
/// announce up front (the registry checks names and labels against them).
pub(crate) fn descs_of(collectors: &[&dyn Collector]) -> Vec<Desc> {
    collectors
        .iter()
        .flat_map(|c| c.desc().into_iter().cloned())
        .collect()
}

impl MountCollector {
    fn new(server: Weak<Server>) -> Self {
        let descs = MountFamilies::new()
            .map(|f| crate::metrics::descs_of(&f.collectors()))
            .unwrap_or_default();
        MountCollector { server, descs }
    }
}

impl Collector for MountCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        use std::sync::atomic::Ordering::Relaxed;
        let (Some(server), Some(f)) = (self.server.upgrade(), MountFamilies::new()) else {
            return Vec::new();
        };
        for m in server.registry.list() {
            let label = server.metrics.mount_label(&m.name);
            let l = label.as_str();
            f.listeners
                .with_label_values(&[l, "http"])
                .set(m.listener_count() as i64);
            f.sent
                .with_label_values(&[l, "http"])
                .inc_by(m.stats.total_bytes_sent.load(Relaxed));
            f.received
                .with_label_values(&[l])
                .inc_by(m.stats.total_bytes_read.load(Relaxed));
            f.slow
                .with_label_values(&[l])
                .inc_by(m.stats.slow_listeners.load(Relaxed));
            let kind = if server.relays.get(&m.name).is_some() {
                "relay"
            } else {
                "push"
            };
            f.connected
                .with_label_values(&[l, kind])
                .set(i64::from(!m.is_ended() && !m.is_standby()));
            let start = m
                .started
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            f.started.with_label_values(&[l]).set(start);
            let codec = m.codec().codec.unwrap_or_default();
            f.info
                .with_label_values(&[l, &m.info().content_type, &codec])
                .set(1);
            f.queued
                .with_label_values(&[l])
                .set(m.queued_bytes() as i64);
        }
        for (mount, team) in server.teams.all() {
            let label = server.metrics.mount_label(&mount);
            let l = label.as_str();
            match team {
                TeamState::Splitter { stats: Some(s), .. } => {
                    f.team_peers
                        .with_label_values(&[l, "splitter"])
                        .set(s.peers.len() as i64);
                    let sent: u64 =
                        s.peers.iter().map(|p| p.chunks_sent).sum::<u64>() + s.lrs_resends;
                    f.chunks_sent
                        .with_label_values(&[l, "splitter"])
                        .inc_by(sent);
                    f.expelled
                        .with_label_values(&[l, "goodbye"])
                        .inc_by(s.left_goodbye);
                    f.expelled
                        .with_label_values(&[l, "timeout"])
                        .inc_by(s.expelled_timeout);
                    f.expelled
                        .with_label_values(&[l, "freeriding"])
                        .inc_by(s.expelled_losses);
                }
                TeamState::Peer { stats: Some(s), .. } => {
                    f.team_peers
                        .with_label_values(&[l, "peer"])
                        .set(s.neighbours.len() as i64);
                    f.chunks_sent.with_label_values(&[l, "peer"]).inc_by(s.sent);
                    f.chunks_received
                        .with_label_values(&[l, "splitter"])
                        .inc_by(s.from_splitter);
                    f.chunks_received
                        .with_label_values(&[l, "peers"])
                        .inc_by(s.from_peers);
                    f.chunks_lost.with_label_values(&[l]).inc_by(s.skipped);
                    f.buffer
                        .with_label_values(&[l])
                        .set(i64::from(s.buffer_fill));
                }
                _ => {}
            }
        }
        f.collectors().iter().flat_map(|c| c.collect()).collect()
    }
}
