//! The live state of the push relays, written by their tasks and read by status and
//! metrics (through the supervisor's [`crate::supervisor::Supervised`]). Plain data behind
//! short locks: nothing here runs a push or touches a socket.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::push_proto::{Method, Target};
use crate::config::PushConfig;
use crate::documents::PushSnapshot;
use crate::sync::lock;

/// What a push is doing, as `/api/status` and `/metrics` show it.
pub use crate::documents::PushPhase;

#[derive(Debug)]
struct Inner {
    phase: PushPhase,
    last_error: Option<String>,
    connected_since: Option<SystemTime>,
    /// The method of the current or last successful login.
    method: Option<Method>,
}

/// One push's live state, shared between its task and the status readers.
#[derive(Debug)]
pub struct PushState {
    pub config: PushConfig,
    pub target: Target,
    inner: Mutex<Inner>,
    attempts: AtomicU64,
    bytes_sent: AtomicU64,
}

impl PushState {
    pub(crate) fn new(config: PushConfig) -> Self {
        let target = Target {
            host: config.server.clone(),
            port: config.port,
            mount: config.remote_mount.clone(),
            username: config.username.clone(),
            password: config.password.clone(),
            user_agent: format!("floecast/{}", env!("CARGO_PKG_VERSION")),
            tls: config.tls.clone(),
        };
        PushState {
            config,
            target,
            inner: Mutex::new(Inner {
                phase: PushPhase::Waiting,
                last_error: None,
                connected_since: None,
                method: None,
            }),
            attempts: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
        }
    }

    pub fn phase(&self) -> PushPhase {
        lock(&self.inner).phase
    }

    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }

    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }

    /// The push now, for status documents and metrics.
    pub fn status(&self) -> PushSnapshot {
        let inner = lock(&self.inner);
        PushSnapshot {
            mount: self.config.mount.clone(),
            remote: self.target.url(),
            protocol: self.config.protocol.name(),
            method: inner.method.map(Method::name),
            state: inner.phase,
            attempts: self.attempts(),
            last_error: inner.last_error.clone(),
            bytes_sent: self.bytes_sent(),
            connected_since: inner.connected_since.map(crate::clock::local),
        }
    }

    pub(super) fn set_phase(&self, phase: PushPhase) {
        let mut inner = lock(&self.inner);
        inner.phase = phase;
        if phase != PushPhase::Up {
            inner.connected_since = None;
        }
    }

    pub(super) fn set_up(&self, method: Method) {
        let mut inner = lock(&self.inner);
        inner.phase = PushPhase::Up;
        inner.method = Some(method);
        inner.connected_since = Some(SystemTime::now());
    }

    pub(super) fn set_error(&self, error: &str) {
        let mut inner = lock(&self.inner);
        inner.phase = PushPhase::Down;
        inner.connected_since = None;
        inner.last_error = Some(error.to_string());
    }

    pub(super) fn count_attempt(&self) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn count_sent(&self, bytes: u64) {
        self.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
    }

    /// `/live -> http://host:8000/live`, for logs.
    pub(crate) fn label(&self) -> String {
        format!("{} -> {}", self.config.mount, self.target.url())
    }
}

/// The running pushes' states, in config order, as the supervisor last started them.
#[derive(Debug, Default)]
pub struct Pushes {
    running: Mutex<Vec<Arc<PushState>>>,
}

impl Pushes {
    /// Replace the list (the supervisor, after each reconcile).
    pub(crate) fn publish(&self, states: Vec<Arc<PushState>>) {
        *lock(&self.running) = states;
    }

    pub fn list(&self) -> Vec<Arc<PushState>> {
        lock(&self.running).clone()
    }
}
