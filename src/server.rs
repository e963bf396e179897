//! The shared state of one running server: the live config, the mount registry, global
//! counters and the shutdown signal, plus the three things every request path shares (the
//! access log, the metrics registry, the bound addresses). Every connection task holds an
//! `Arc<Server>`; nothing in here is held across an `.await`. Domain state (relays, pushes,
//! teams, the htpasswd cache) belongs to its owners, and status readers see it through
//! `crate::snapshot`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::SystemTime;

use tokio::sync::Notify;

use crate::access_log::AccessLog;
use crate::config::{Config, HttpHeader};
use crate::documents::GlobalCounters;
use crate::metrics::Metrics;
use crate::mount::Registry;
use crate::sync::{read, write};

#[derive(Debug, Default)]
pub struct GlobalStats {
    /// Clients connected right now (all kinds).
    pub clients: AtomicUsize,
    pub connections: AtomicU64,
    pub client_connections: AtomicU64,
    pub source_total_connections: AtomicU64,
    pub source_client_connections: AtomicU64,
    pub source_relay_connections: AtomicU64,
    pub listener_connections: AtomicU64,
    pub file_connections: AtomicU64,
    pub stats_connections: AtomicU64,
    /// STATS-method clients connected right now (icecast's `stats`).
    pub stats_clients: AtomicUsize,
}

impl GlobalStats {
    /// The counters now, for status documents.
    pub fn snapshot(&self) -> GlobalCounters {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        GlobalCounters {
            clients: self.clients.load(Ordering::Relaxed),
            connections: get(&self.connections),
            client_connections: get(&self.client_connections),
            source_total_connections: get(&self.source_total_connections),
            source_client_connections: get(&self.source_client_connections),
            source_relay_connections: get(&self.source_relay_connections),
            listener_connections: get(&self.listener_connections),
            file_connections: get(&self.file_connections),
            stats_connections: get(&self.stats_connections),
            stats_clients: self.stats_clients.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug)]
pub struct Server {
    /// The live config, swapped whole on reload.
    config: RwLock<Arc<Config>>,
    config_path: Option<PathBuf>,
    /// The live mounts.
    pub registry: Registry,
    /// icecast's global counters.
    pub stats: GlobalStats,
    /// Server-wide: one file, reopened on reload, written by every request path.
    pub access_log: AccessLog,
    started: SystemTime,
    /// Client ids, unique across mounts (admin `killclient` names them).
    next_id: AtomicU64,
    shutting_down: AtomicBool,
    shutdown: Notify,
    /// Addresses actually bound (port 0 in the config means "any"): server-wide, as listen
    /// URLs on every path name the first one.
    bound: RwLock<Vec<SocketAddr>>,
    /// Server-wide: one Prometheus registry, counted into by every request path; its
    /// scrape-time half reads snapshots of this server (see `crate::snapshot`).
    pub metrics: Metrics,
    /// What the supervised tasks (relays, pushes, teams) publish, for status and metrics.
    pub tasks: crate::supervisor::state::Supervised,
    /// Woken when the last client leaves.
    clients_gone: Notify,
    /// Bans, the deny/allow files as last read, connections per address.
    pub door: Arc<crate::door::Door>,
}

impl Server {
    pub fn new(config: Config, config_path: Option<PathBuf>) -> Arc<Self> {
        let access_log = AccessLog::open(config.logging.access_log.as_deref());
        Arc::new_cyclic(|weak: &Weak<Server>| Server {
            config: RwLock::new(Arc::new(config)),
            config_path,
            registry: Registry::new(),
            stats: GlobalStats::default(),
            access_log,
            started: SystemTime::now(),
            next_id: AtomicU64::new(1),
            shutting_down: AtomicBool::new(false),
            shutdown: Notify::new(),
            bound: RwLock::new(Vec::new()),
            metrics: Metrics::new(weak.clone()),
            tasks: Default::default(),
            clients_gone: Notify::new(),
            door: Default::default(),
        })
    }

    pub fn config(&self) -> Arc<Config> {
        read(&self.config).clone()
    }

    /// Swap in a new config. Live mounts keep the settings they started with; limits,
    /// passwords and headers apply to new connections at once.
    pub fn replace_config(&self, config: Config) {
        self.access_log.reopen(config.logging.access_log.as_deref());
        *write(&self.config) = Arc::new(config);
    }

    /// The config file, which SIGHUP re-reads (`None` on the embedded defaults).
    pub fn config_path(&self) -> Option<&Path> {
        self.config_path.as_deref()
    }

    /// Record the HTTP addresses actually bound, in config order.
    pub fn set_bound(&self, addrs: Vec<SocketAddr>) {
        *write(&self.bound) = addrs;
    }

    /// When this server started.
    pub fn started(&self) -> SystemTime {
        self.started
    }

    pub fn next_client_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Completes when shutdown begins. Create before checking `is_shutting_down`.
    pub fn shutdown_notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.shutdown.notified()
    }

    /// Stop: sources and accept loops wait on the shutdown signal; each listener is kicked.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
        self.shutdown.notify_waiters();
        for mount in self.registry.list() {
            mount.kick_all();
        }
    }

    /// Completes once no client is connected.
    pub async fn clients_gone(&self) {
        loop {
            let gone = self.clients_gone.notified();
            tokio::pin!(gone);
            gone.as_mut().enable();
            if self.stats.clients.load(Ordering::Acquire) == 0 {
                return;
            }
            gone.await;
        }
    }

    /// One client fewer; the last one wakes [`Server::clients_gone`].
    fn release_client(&self) {
        if self.stats.clients.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.clients_gone.notify_waiters();
        }
    }

    /// Global extra headers plus a mount's own, for a response.
    pub fn extra_headers<'a>(config: &'a Config, mount: &'a [HttpHeader]) -> Vec<&'a HttpHeader> {
        config.http_headers.iter().chain(mount.iter()).collect()
    }

    /// The first bound port, for listen URLs (icecast uses its first listen socket).
    pub fn port(&self) -> u16 {
        let bound = read(&self.bound);
        bound
            .first()
            .map(|a| a.port())
            .unwrap_or_else(|| self.config().listen.first().map_or(8000, |l| l.port))
    }

    /// `http://<hostname>:<port><mount>`, icecast's `listenurl`.
    pub fn listen_url(&self, mount: &str) -> String {
        crate::documents::icestats::listen_url(&self.config().hostname, self.port(), mount)
    }
}

/// Counts a connected client for `<clients>` and releases it on drop.
pub struct ClientGuard {
    server: Arc<Server>,
}

impl ClientGuard {
    /// Admit a client, or `None` when `<clients>` is reached.
    pub fn admit(server: &Arc<Server>, limit: usize) -> Option<ClientGuard> {
        let prev = server.stats.clients.fetch_add(1, Ordering::AcqRel);
        server.stats.connections.fetch_add(1, Ordering::Relaxed);
        if prev >= limit {
            server.release_client();
            return None;
        }
        Some(ClientGuard {
            server: server.clone(),
        })
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.server.release_client();
    }
}
