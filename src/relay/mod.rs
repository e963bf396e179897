//! Relays: floecast as a client of other Icecast-compatible servers. A pull relay
//! ([`pull`]) feeds a local mount from an upstream stream through an ordinary source session;
//! the master poller ([`master`]) starts and stops pull relays as a master's mounts come and
//! go; the [`crate::supervisor`] keeps both in step with the config across reloads.
//! [`upstream`] is what a relay asks its upstream for, over the one HTTP client
//! (`http::client`, `net::client`). A push relay ([`push`], with its sans-IO half
//! [`push_proto`]) sends a local mount to a remote server as its source.
//! Nothing here touches listeners: relays only read or feed mounts through the mount API.

pub mod master;
pub mod pull;
pub mod push;
pub mod push_proto;
pub mod push_state;
pub mod upstream;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::documents::RelaySnapshot;
use crate::sync::lock;

/// What a relay is doing now (`Idle`, `Connecting`, `Up`, `Down`).
pub use crate::documents::RelayState as State;

fn state_from_u8(v: u8) -> State {
    match v {
        0 => State::Idle,
        1 => State::Connecting,
        2 => State::Up,
        _ => State::Down,
    }
}

/// One relay's live state, written by its task, read by status and metrics.
#[derive(Debug)]
pub struct RelayStatus {
    /// The local mount the relay feeds.
    pub mount: String,
    pub upstream: String,
    pub on_demand: bool,
    state: AtomicU8,
    pub attempts: AtomicU64,
    pub failures: AtomicU64,
    /// Bytes received from upstream (ICY metadata and chunk framing included).
    pub bytes_in: Arc<AtomicU64>,
    last_error: Mutex<Option<String>>,
    connected_since: Mutex<Option<SystemTime>>,
}

impl RelayStatus {
    fn new(mount: String, upstream: String, on_demand: bool) -> Self {
        RelayStatus {
            mount,
            upstream,
            on_demand,
            state: AtomicU8::new(State::Connecting as u8),
            attempts: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            bytes_in: Arc::new(AtomicU64::new(0)),
            last_error: Mutex::new(None),
            connected_since: Mutex::new(None),
        }
    }

    pub fn state(&self) -> State {
        state_from_u8(self.state.load(Ordering::Acquire))
    }

    pub fn set_state(&self, s: State) {
        self.state.store(s as u8, Ordering::Release);
        let mut since = lock(&self.connected_since);
        match s {
            State::Up => {
                since.get_or_insert_with(SystemTime::now);
            }
            _ => *since = None,
        }
    }

    pub fn attempt(&self) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        self.set_state(State::Connecting);
    }

    pub fn failed(&self, error: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        *lock(&self.last_error) = Some(error);
        self.set_state(State::Down);
    }

    /// Cannot run for a local reason (the mount is taken): down, but no upstream failure.
    pub fn blocked(&self, why: String) {
        *lock(&self.last_error) = Some(why);
        self.set_state(State::Down);
    }

    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    pub fn connected_since(&self) -> Option<SystemTime> {
        *lock(&self.connected_since)
    }

    /// The relay now, for status documents and metrics.
    pub fn snapshot(&self) -> RelaySnapshot {
        RelaySnapshot {
            mount: self.mount.clone(),
            upstream: self.upstream.clone(),
            on_demand: self.on_demand,
            state: self.state(),
            attempts: self.attempts.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            last_error: self.last_error(),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            connected_since: self.connected_since().map(crate::clock::local),
        }
    }

    /// The relay as `/api/status` shows it, for logs.
    pub fn to_json(&self) -> serde_json::Value {
        crate::documents::api::relay_json(&self.snapshot())
    }
}

/// Relay state by local mount, written by the relay tasks, read by status and metrics.
#[derive(Debug, Default)]
pub struct Relays {
    by_mount: Mutex<HashMap<String, Arc<RelayStatus>>>,
}

impl Relays {
    /// Start tracking the relay feeding `mount`. Returns `None` if another relay already does.
    pub(in crate::relay) fn register(
        &self,
        mount: &str,
        upstream: String,
        on_demand: bool,
    ) -> Option<Arc<RelayStatus>> {
        let mut map = lock(&self.by_mount);
        if map.contains_key(mount) {
            return None;
        }
        let s = Arc::new(RelayStatus::new(mount.to_string(), upstream, on_demand));
        map.insert(mount.to_string(), s.clone());
        Some(s)
    }

    pub(in crate::relay) fn remove(&self, mount: &str, status: &Arc<RelayStatus>) {
        let mut map = lock(&self.by_mount);
        if map.get(mount).is_some_and(|s| Arc::ptr_eq(s, status)) {
            map.remove(mount);
        }
    }

    pub fn get(&self, mount: &str) -> Option<Arc<RelayStatus>> {
        lock(&self.by_mount).get(mount).cloned()
    }

    /// Every relay, sorted by local mount.
    pub fn all(&self) -> Vec<(String, Arc<RelayStatus>)> {
        let mut v: Vec<_> = lock(&self.by_mount)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Every relay now, sorted by local mount.
    pub fn snapshot(&self) -> Vec<RelaySnapshot> {
        self.all().iter().map(|(_, r)| r.snapshot()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_tracks_state() {
        let s = RelayStatus::new("/x".into(), "http://a:1/x".into(), false);
        s.attempt();
        assert_eq!(s.state(), State::Connecting);
        s.failed("refused".into());
        assert_eq!(s.state(), State::Down);
        s.set_state(State::Up);
        assert!(s.connected_since().is_some());
        let j = s.to_json();
        assert_eq!(j["state"], "up");
        assert_eq!(j["attempts"], 1);
        assert_eq!(j["failures"], 1);
        assert_eq!(j["last_error"], "refused");
    }
}
