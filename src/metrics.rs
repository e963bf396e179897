//! Prometheus metrics at `/metrics`, named by the rules in anchors.md §4: `floecast_` prefix,
//! base units, `_total` only on counters, no unbounded labels.
//!
//! Two kinds of metric: per-mount state (listeners, bytes, source, relays, teams) is read
//! from a snapshot of the server at scrape time (`scrape`), so the hot path pays nothing;
//! events that leave no state behind (connections, disconnect reasons, HTTP requests,
//! reloads) are counted when they happen. Mount labels are capped so a flood of ad-hoc mount
//! names cannot blow up the series count. Never reaches into the server: the snapshot comes
//! through [`SnapshotSource`].

mod scrape;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::UNIX_EPOCH;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Encoder, Gauge, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::documents::ServerSnapshot;
use crate::sync::lock;

/// Most distinct mount label values; later mounts are reported as "other".
const MAX_MOUNT_LABELS: usize = 500;

/// Where the scrape-time metrics come from: the server, which takes a snapshot of itself
/// (see `crate::snapshot`).
pub trait SnapshotSource: Send + Sync {
    fn snapshot(&self) -> ServerSnapshot;
}

/// The mount label values handed out so far, capped at [`MAX_MOUNT_LABELS`].
#[derive(Default)]
struct MountLabels {
    seen: Mutex<HashSet<String>>,
}

impl MountLabels {
    /// The mount as a label value, or "other" once too many distinct mounts were seen.
    fn label(&self, mount: &str) -> String {
        let mut seen = lock(&self.seen);
        if seen.contains(mount) {
            return mount.to_string();
        }
        if seen.len() < MAX_MOUNT_LABELS {
            seen.insert(mount.to_string());
            return mount.to_string();
        }
        "other".to_string()
    }

    /// The mount as a label value only if it already is one: for requests that were not
    /// authenticated, which must never create label values.
    fn existing(&self, mount: &str) -> String {
        if lock(&self.seen).contains(mount) {
            mount.to_string()
        } else {
            "other".to_string()
        }
    }
}

/// The registry of every metric, and the event counters, incremented where things happen.
pub struct Metrics {
    registry: Registry,
    mount_labels: Arc<MountLabels>,
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
    /// Scrape-time metrics are read from `source` while it lives.
    pub fn new(source: Weak<dyn SnapshotSource>) -> Metrics {
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
            mount_labels: Arc::default(),
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
            scrape::SnapshotCollector::new(source, metrics.mount_labels.clone()),
        );
        metrics
    }

    /// The mount as a label value, or "other" once too many distinct mounts were seen.
    pub fn mount_label(&self, mount: &str) -> String {
        self.mount_labels.label(mount)
    }

    /// Count a listener request's outcome.
    pub fn listener_outcome(&self, mount: &str, outcome: &str) {
        self.listener_connections
            .with_label_values(&[&self.mount_label(mount), outcome])
            .inc();
    }

    /// Count a source connection's outcome (`protocol`: "source", "put" or "icy"). Refusals
    /// before authentication ("challenged", "rejected_auth") are labelled by the mount only
    /// if it already has a label, else "other": anyone can send them, to any name.
    pub fn source_outcome(&self, mount: &str, protocol: &str, outcome: &str) {
        let label = match outcome {
            "challenged" | "rejected_auth" => self.mount_labels.existing(mount),
            _ => self.mount_label(mount),
        };
        self.source_connections
            .with_label_values(&[&label, protocol, outcome])
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
