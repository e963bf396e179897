//! Relay metrics, read from the relays' live state at scrape time: `floecast_relay_up`,
//! `floecast_relay_connect_attempts_total`, `floecast_relay_failures_total` and
//! `floecast_relay_received_bytes_total`, one series per relay's local mount.

use std::sync::Weak;
use std::sync::atomic::Ordering::Relaxed;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, IntGaugeVec, Opts};

use super::State;
use crate::server::Server;

pub struct RelayCollector {
    server: Weak<Server>,
    descs: Vec<Desc>,
}

struct Families {
    up: IntGaugeVec,
    attempts: IntCounterVec,
    failures: IntCounterVec,
    received: IntCounterVec,
}

impl Families {
    fn new() -> Option<Families> {
        Some(Families {
            up: IntGaugeVec::new(
                Opts::new(
                    "floecast_relay_up",
                    "1 while the relay receives its upstream stream.",
                ),
                &["mount"],
            )
            .ok()?,
            attempts: IntCounterVec::new(
                Opts::new(
                    "floecast_relay_connect_attempts_total",
                    "Connections the relay tried to open upstream.",
                ),
                &["mount"],
            )
            .ok()?,
            failures: IntCounterVec::new(
                Opts::new(
                    "floecast_relay_failures_total",
                    "Failed upstream connections and lost upstream streams.",
                ),
                &["mount"],
            )
            .ok()?,
            received: IntCounterVec::new(
                Opts::new(
                    "floecast_relay_received_bytes_total",
                    "Bytes received from the relay's upstream, in-band metadata included.",
                ),
                &["mount"],
            )
            .ok()?,
        })
    }

    fn collectors(&self) -> [&dyn Collector; 4] {
        [&self.up, &self.attempts, &self.failures, &self.received]
    }
}

impl RelayCollector {
    pub fn new(server: Weak<Server>) -> Self {
        let descs = Families::new()
            .map(|f| crate::metrics::descs_of(&f.collectors()))
            .unwrap_or_default();
        RelayCollector { server, descs }
    }
}

impl Collector for RelayCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let (Some(server), Some(f)) = (self.server.upgrade(), Families::new()) else {
            return Vec::new();
        };
        for (mount, r) in server.tasks.relays.all() {
            // Mount labels share the server-wide cap (bounded cardinality).
            let label = server.metrics.mount_label(&mount);
            let l = [label.as_str()];
            f.up.with_label_values(&l)
                .set(i64::from(r.state() == State::Up));
            f.attempts
                .with_label_values(&l)
                .inc_by(r.attempts.load(Relaxed));
            f.failures
                .with_label_values(&l)
                .inc_by(r.failures.load(Relaxed));
            f.received
                .with_label_values(&l)
                .inc_by(r.bytes_in.load(Relaxed));
        }
        f.collectors().iter().flat_map(|c| c.collect()).collect()
    }
}
