//! The mount registry: which mounts are live, and the rules for reserving one for a source
//! (one source per mount, at most `<sources>` sources). Mounts leave the registry when their
//! source ends; listeners keep their `Arc<Mount>` until they move or close. Tasks waiting for
//! a mount to appear (push relays, splitters) subscribe to its changes instead of polling.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::Mount;
use crate::format::Family;
use crate::sync::lock;

/// Why a source may not have a mount; the texts are icecast2's 403 bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SourceRejected {
    #[error("Mountpoint in use")]
    InUse,
    #[error("too many sources connected")]
    TooMany,
}

impl SourceRejected {
    /// The `outcome` label of `floecast_source_connections_total`.
    pub fn outcome(self) -> &'static str {
        match self {
            SourceRejected::InUse => "rejected_busy",
            SourceRejected::TooMany => "rejected_limit",
        }
    }
}

/// How deep fallback chains may go (icecast: 10).
pub const MAX_FALLBACK_DEPTH: usize = 10;

#[derive(Debug)]
pub struct Registry {
    mounts: Mutex<HashMap<String, Arc<Mount>>>,
    /// Marked changed whenever a mount is added, replaced or removed.
    changes: watch::Sender<()>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            mounts: Mutex::default(),
            changes: watch::Sender::new(()),
        }
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// A receiver that sees every later change of the registry (a mount added, replaced or
    /// removed). To wait for a mount: mark the receiver seen (`borrow_and_update`), look
    /// for the mount, and if it is not there, wait for `changed()` and look again.
    pub fn subscribe(&self) -> watch::Receiver<()> {
        self.changes.subscribe()
    }

    fn announce(&self) {
        self.changes.send_modify(|_| {});
    }

    /// Register a new mount, or refuse as icecast does: one source per mount, and at most
    /// `max_sources` live ones. Every live source counts, pushed or relayed (icecast2 puts
    /// relays through the same `connection_complete_source` check); a standby reservation
    /// (an on-demand relay waiting for a listener) is not a source yet and does not.
    pub fn insert(&self, mount: Arc<Mount>, max_sources: usize) -> Result<(), SourceRejected> {
        let mut map = lock(&self.mounts);
        if map.contains_key(&mount.name) {
            return Err(SourceRejected::InUse);
        }
        if !mount.is_standby() && live_sources(&map) >= max_sources {
            return Err(SourceRejected::TooMany);
        }
        map.insert(mount.name.clone(), mount);
        drop(map);
        self.announce();
        Ok(())
    }

    /// Put `new` in the place of `old` (a standby reservation and the live mount that takes
    /// it over, either way round). Refused when another mount holds the name, or when a
    /// standby would become a live source beyond `max_sources`.
    pub fn replace(
        &self,
        old: &Arc<Mount>,
        new: Arc<Mount>,
        max_sources: usize,
    ) -> Result<(), SourceRejected> {
        let mut map = lock(&self.mounts);
        match map.get(&new.name) {
            Some(m) if !Arc::ptr_eq(m, old) => Err(SourceRejected::InUse),
            Some(m) if m.is_standby() && !new.is_standby() && live_sources(&map) >= max_sources => {
                Err(SourceRejected::TooMany)
            }
            _ => {
                map.insert(new.name.clone(), new);
                drop(map);
                self.announce();
                Ok(())
            }
        }
    }

    /// Whether one more live source fits under `max_sources`.
    pub fn has_room(&self, max_sources: usize) -> bool {
        live_sources(&lock(&self.mounts)) < max_sources
    }

    /// Wait, at most `patience`, for the source of `name` to let go of it. A source that has
    /// hit EOF or an error is torn down within moments, and a client reconnecting at once
    /// (VLC `--loop`) can log in again before that: it gets the mount instead of a 403. A
    /// live source keeps its mount; the wait then ends at `patience` (icecast2 never takes
    /// over a connected source either). True when the name is free.
    pub async fn wait_until_free(&self, name: &str, patience: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let Some(current) = self.get(name) else {
                return true;
            };
            // A standby reservation or a relay riding out an upstream loss stays: waiting
            // for them is pointless.
            if current.is_standby() {
                return false;
            }
            let changed = current.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if !self.get(name).is_some_and(|m| Arc::ptr_eq(&m, &current)) {
                continue;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return !self.contains(name);
            }
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        lock(&self.mounts).contains_key(name)
    }

    /// Remove `mount` if it is still the one registered under its name.
    pub fn remove(&self, mount: &Arc<Mount>) {
        let mut map = lock(&self.mounts);
        if map.get(&mount.name).is_some_and(|m| Arc::ptr_eq(m, mount)) {
            map.remove(&mount.name);
            drop(map);
            self.announce();
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<Mount>> {
        lock(&self.mounts).get(name).cloned()
    }

    /// All live mounts, sorted by name.
    pub fn list(&self) -> Vec<Arc<Mount>> {
        let mut v: Vec<_> = lock(&self.mounts).values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub fn len(&self) -> usize {
        lock(&self.mounts).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Follow a fallback chain from `start` (whose settings name the first hop) to the first
    /// live mount, at most [`MAX_FALLBACK_DEPTH`] hops, optionally of the given family only.
    pub fn resolve_fallback(
        &self,
        mut next: Option<String>,
        fallback_of: impl Fn(&str) -> Option<String>,
        family: Option<Family>,
    ) -> Option<Arc<Mount>> {
        for _ in 0..MAX_FALLBACK_DEPTH {
            let name = next?;
            if let Some(m) = self.get(&name) {
                // A standby mount has no stream yet: nothing to fall back on.
                if !m.is_ended() && !m.is_standby() && family.is_none_or(|f| f == m.family) {
                    return Some(m);
                }
            }
            next = fallback_of(&name);
        }
        None
    }
}

/// Live sources among the registered mounts (standby reservations are not sources).
fn live_sources(map: &HashMap<String, Arc<Mount>>) -> usize {
    map.values().filter(|m| !m.is_standby()).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::mount::{MountSettings, SourceInfo};

    fn mount(name: &str) -> Arc<Mount> {
        let settings = MountSettings::resolve(&Config::default(), name);
        let info = SourceInfo::from_headers(&[], "audio/mpeg", None);
        Arc::new(Mount::new(name, info, settings, None))
    }

    #[test]
    fn subscribers_see_mounts_come_and_go() {
        let r = Registry::new();
        let mut events = r.subscribe();
        assert!(!events.has_changed().unwrap_or(true));
        let a = mount("/a");
        r.insert(a.clone(), 10).unwrap();
        assert!(events.has_changed().unwrap_or(false));
        events.borrow_and_update();
        // A refused insert changes nothing.
        assert!(r.insert(mount("/a"), 10).is_err());
        assert!(!events.has_changed().unwrap_or(true));
        let b = mount("/a");
        r.replace(&a, b.clone(), 10).unwrap();
        assert!(events.has_changed().unwrap_or(false));
        events.borrow_and_update();
        // Removing a mount no longer registered changes nothing; removing the live one does.
        r.remove(&a);
        assert!(!events.has_changed().unwrap_or(true));
        r.remove(&b);
        assert!(events.has_changed().unwrap_or(false));
    }
}
