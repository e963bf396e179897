//! The one supervisor of floecast's background tasks: pull relays, the master poller, push
//! relays and P2PSP teams (splitters and peer mounts). At start-up and on every reload it
//! compares what the config wants with what runs ([`crate::reconcile`]), the same way for
//! every kind: an unchanged task keeps running untouched (its connection and listeners
//! stay), a changed one is stopped and started afresh once the old one has finished, a
//! removed one is stopped, a new one is started. It owns their handles and stop signals;
//! status and metrics read what the tasks publish through [`Supervised`], never the tasks.

pub mod state;
pub mod tasks;
pub mod wanted;

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

pub use state::Supervised;
pub use tasks::{Stop, TaskSet};
use wanted::MasterWanted;

use crate::config::{PushConfig, SplitterSettings};
use crate::relay::pull::PullRelay;
use crate::relay::push::PushState;
use crate::relay::{master, pull, push};
use crate::server::Server;
use crate::sync::lock;
use crate::team::peer::PeerMount;
use crate::team::{peer, splitter};

/// The running tasks, by kind.
#[derive(Default)]
struct Groups {
    relays: TaskSet<String, PullRelay>,
    master: TaskSet<(), MasterWanted>,
    pushes: TaskSet<String, PushConfig, Arc<PushState>>,
    splitters: TaskSet<String, SplitterSettings>,
    peers: TaskSet<String, PeerMount>,
    /// Peer mounts started outside the config (`floecast peer`): wanted at every reload.
    pinned_peers: Vec<(String, PeerMount)>,
}

impl Groups {
    async fn join_all(&mut self) {
        self.relays.join_all().await;
        self.master.join_all().await;
        self.pushes.join_all().await;
        self.splitters.join_all().await;
        self.peers.join_all().await;
    }

    fn abort_all(&mut self) {
        self.relays.abort_all();
        self.master.abort_all();
        self.pushes.abort_all();
        self.splitters.abort_all();
        self.peers.abort_all();
    }
}

/// Starts, restarts and stops the background tasks of one server.
pub struct Supervisor {
    server: Arc<Server>,
    groups: Mutex<Groups>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Supervisor")
    }
}

impl Supervisor {
    /// A supervisor with nothing running yet: call [`Supervisor::reconcile`] to start.
    pub fn new(server: Arc<Server>) -> Self {
        Supervisor {
            server,
            groups: Mutex::default(),
        }
    }

    /// Make the running tasks match the server's current config.
    pub fn reconcile(&self) {
        let config = self.server.config();
        let server = &self.server;
        let mut g = lock(&self.groups);

        by_mount(
            &mut g.relays,
            wanted::relays(&config),
            Logs {
                removed: "relay removed from the config; stopping it",
                changed: "relay settings changed; restarting it",
            },
            |_, relay, stop| pull::run(server.clone(), relay.clone(), stop),
        );

        let wanted = wanted::master(&config);
        let plan = g.master.plan(&wanted);
        if let Some((_, w, _)) = g.master.iter().next() {
            if !plan.keep.contains(&()) {
                tracing::info!(
                    master = %format!("{}:{}", w.config.server, w.config.port),
                    "[master] removed or changed; stopping the poller and its relays"
                );
            }
        }
        g.master.apply(&plan, wanted, |_, w, stop| {
            ((), master::run(server.clone(), w.config.clone(), stop))
        });

        let wanted = wanted::pushes(&config);
        let plan = g.pushes.plan(&wanted);
        for key in plan.stop.iter().chain(&plan.restart) {
            if let Some((_, state)) = g.pushes.get(key) {
                tracing::info!(push = %state.label(), "push relay stopped (config changed)");
            }
        }
        g.pushes.apply(&plan, wanted, |_, cfg, stop| {
            let state = Arc::new(PushState::new(cfg.clone()));
            tracing::info!(push = %state.label(), "push relay starting");
            let task = push::run(server.clone(), state.clone(), stop);
            (state, task)
        });
        let states = g.pushes.iter().map(|(_, _, s)| s.clone()).collect();
        server.tasks.pushes.publish(states);

        by_mount(
            &mut g.splitters,
            wanted::splitters(&config),
            Logs {
                removed: "P2PSP splitter removed from the config; stopping it",
                changed: "P2PSP splitter settings changed; restarting it",
            },
            |mount, settings, stop| {
                splitter::run(server.clone(), mount.clone(), settings.clone(), stop)
            },
        );

        let mut wanted = g.pinned_peers.clone();
        wanted.extend(wanted::peers(&config));
        by_mount(
            &mut g.peers,
            wanted,
            Logs {
                removed: "P2PSP peer mount removed from the config; leaving its team",
                changed: "P2PSP peer settings changed; rejoining",
            },
            |mount, team, stop| peer::run_mount(server.clone(), mount.clone(), team.clone(), stop),
        );
    }

    /// Feed `mount` from a team that no config names (the stand-alone `floecast peer`): it
    /// runs from now on, across reloads, until shutdown.
    pub fn pin_peer(&self, mount: &str, team: PeerMount) {
        lock(&self.groups)
            .pinned_peers
            .push((mount.to_string(), team));
        self.reconcile();
    }

    /// Is a master poller running?
    pub fn has_master(&self) -> bool {
        !lock(&self.groups).master.is_empty()
    }

    /// Wait until every task has finished, at most until `deadline`, then abort the rest. The
    /// tasks end on the server's shutdown signal (begin the shutdown first): they end their
    /// mounts, say goodbye to their teams and close their connections themselves.
    pub async fn shutdown(&self, deadline: Instant) {
        let mut g = std::mem::take(&mut *lock(&self.groups));
        self.server.tasks.pushes.publish(Vec::new());
        if tokio::time::timeout_at(deadline, g.join_all())
            .await
            .is_err()
        {
            tracing::debug!(
                "background tasks still running after the shutdown grace; aborting them"
            );
            g.abort_all();
        }
    }
}

/// What a reconcile logs for a task stopped or restarted, by mount.
struct Logs {
    removed: &'static str,
    changed: &'static str,
}

/// Reconcile tasks keyed by mount that publish nothing through the set.
fn by_mount<W: PartialEq, F: Future<Output = ()> + Send + 'static>(
    set: &mut TaskSet<String, W>,
    wanted: Vec<(String, W)>,
    logs: Logs,
    mut start: impl FnMut(&String, &W, Stop) -> F,
) {
    let plan = set.plan(&wanted);
    for mount in &plan.stop {
        tracing::info!(mount = %mount, "{}", logs.removed);
    }
    for mount in &plan.restart {
        tracing::info!(mount = %mount, "{}", logs.changed);
    }
    set.apply(&plan, wanted, |mount, w, stop| ((), start(mount, w, stop)));
}
