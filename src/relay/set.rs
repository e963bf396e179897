//! The running pull relays and master poller, kept in step with the config: at start-up and
//! on every reload (SIGHUP) [`RelaySet::reconcile`] compares the configured `[[relay]]`s
//! (by local mount) and the `[master]` section with what runs. An unchanged relay keeps
//! running, its connection and listeners untouched; a removed one is told to stop and ends
//! its mount the way any relay stop does (listeners to the fallback, if any); a changed one
//! stops and a fresh one starts with the new settings (it takes the mount once the old one
//! let go of it); a new one starts. The master poller follows the same rules as a whole,
//! and the relays it started stop with it. The diff itself is sans-IO ([`plan`]).

use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::master;
use super::pull::{self, PullRelay};
use crate::config::{Config, MasterConfig};
use crate::server::Server;
use crate::sync::lock;

/// What reconciling a running set with a wanted one does, by key. Each wanted key is in
/// exactly one of `keep`, `restart` and `start` (in wanted order); `stop` holds running keys
/// that are no longer wanted (in running order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<K> {
    /// Same key, same settings: leave running.
    pub keep: Vec<K>,
    /// Same key, other settings: stop the running one, start the wanted one.
    pub restart: Vec<K>,
    /// Running, no longer wanted.
    pub stop: Vec<K>,
    /// Wanted, not running.
    pub start: Vec<K>,
}

/// Diff `running` against `wanted`. Keys are unique within each side (the config loader
/// refuses two relays for one local mount); should one repeat, its first entry counts.
pub fn plan<K: PartialEq + Clone, V: PartialEq>(running: &[(K, V)], wanted: &[(K, V)]) -> Plan<K> {
    let mut p = Plan {
        keep: Vec::new(),
        restart: Vec::new(),
        stop: Vec::new(),
        start: Vec::new(),
    };
    let seen = |list: &[K], k: &K| list.iter().any(|x| x == k);
    for (k, v) in wanted {
        if seen(&p.keep, k) || seen(&p.restart, k) || seen(&p.start, k) {
            continue;
        }
        match running.iter().find(|(rk, _)| rk == k) {
            Some((_, rv)) if rv == v => p.keep.push(k.clone()),
            Some(_) => p.restart.push(k.clone()),
            None => p.start.push(k.clone()),
        }
    }
    for (k, _) in running {
        if !wanted.iter().any(|(wk, _)| wk == k) && !seen(&p.stop, k) {
            p.stop.push(k.clone());
        }
    }
    p
}

/// The relays `config` asks for, by local mount. Relays whose upstream cannot be used are
/// left out (and logged).
pub fn wanted_relays(config: &Config) -> Vec<(String, PullRelay)> {
    config
        .relays
        .iter()
        .filter_map(|r| match PullRelay::from_config(r, &config.server_id) {
            Some(relay) => Some((r.local_mount.clone(), relay)),
            None => {
                tracing::warn!(mount = %r.local_mount, "relay has an unusable upstream; not started");
                None
            }
        })
        .collect()
}

/// What the master poller depends on: its section and the server id its requests carry.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterWanted {
    pub config: MasterConfig,
    pub server_id: String,
}

/// The master poller `config` asks for, if any.
pub fn wanted_master(config: &Config) -> Option<MasterWanted> {
    config.master.as_ref().map(|m| MasterWanted {
        config: m.clone(),
        server_id: config.server_id.clone(),
    })
}

/// One running task and the means to stop it.
struct Running<V> {
    value: V,
    /// Sending `true` (or dropping it) stops the task; the task ends its mount itself.
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl<V> Running<V> {
    fn stop(self) {
        // The task may already have ended; then there is nobody to tell.
        let _ = self.stop.send(true);
    }
}

#[derive(Default)]
struct Inner {
    /// By local mount, in config order.
    relays: Vec<(String, Running<PullRelay>)>,
    master: Option<Running<MasterWanted>>,
}

/// The configured pull relays and the master poller that run now.
#[derive(Default)]
pub struct RelaySet {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for RelaySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RelaySet")
    }
}

impl RelaySet {
    /// Make the running relays and master poller match the current config.
    pub fn reconcile(&self, server: &Arc<Server>) {
        let config = server.config();
        let mut inner = lock(&self.inner);

        let wanted = wanted_relays(&config);
        let running: Vec<(String, PullRelay)> = inner
            .relays
            .iter()
            .map(|(k, r)| (k.clone(), r.value.clone()))
            .collect();
        let p = plan(&running, &wanted);
        let mut old: Vec<(String, Running<PullRelay>)> = std::mem::take(&mut inner.relays);
        let mut take = |mount: &str| {
            old.iter()
                .position(|(k, _)| k == mount)
                .map(|i| old.swap_remove(i).1)
        };
        for mount in &p.stop {
            if let Some(r) = take(mount) {
                tracing::info!(mount = %mount, "relay removed from the config; stopping it");
                r.stop();
            }
        }
        for mount in &p.restart {
            if let Some(r) = take(mount) {
                tracing::info!(mount = %mount, "relay settings changed; restarting it");
                r.stop();
            }
        }
        for (mount, relay) in wanted {
            let kept = if p.keep.contains(&mount) {
                take(&mount)
            } else {
                None
            };
            let r = match kept {
                Some(r) => r,
                None => {
                    let (stop, rx) = watch::channel(false);
                    let task = tokio::spawn(pull::run(server.clone(), relay.clone(), rx));
                    Running {
                        value: relay,
                        stop,
                        task,
                    }
                }
            };
            inner.relays.push((mount, r));
        }
        // Every running key was sorted above; anything left over is not wanted.
        for (_, r) in old {
            r.stop();
        }

        let wanted = wanted_master(&config);
        if inner.master.as_ref().map(|r| &r.value) != wanted.as_ref() {
            if let Some(r) = inner.master.take() {
                tracing::info!(
                    master = %format!("{}:{}", r.value.config.server, r.value.config.port),
                    "[master] removed or changed; stopping the poller and its relays"
                );
                r.stop();
            }
            inner.master = wanted.map(|w| {
                let (stop, rx) = watch::channel(false);
                let task = tokio::spawn(master::run(server.clone(), w.config.clone(), rx));
                Running {
                    value: w,
                    stop,
                    task,
                }
            });
        }
    }

    /// Is a master poller running?
    pub fn has_master(&self) -> bool {
        lock(&self.inner).master.is_some()
    }

    /// Stop everything at once (shutdown): the tasks are aborted, not asked.
    pub fn stop_all(&self) {
        let mut inner = lock(&self.inner);
        for (_, r) in inner.relays.drain(..) {
            r.task.abort();
        }
        if let Some(r) = inner.master.take() {
            r.task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(items: &[(&str, u32)]) -> Vec<(String, u32)> {
        items.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn keys(items: &[&str]) -> Vec<String> {
        items.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn plan_sorts_keys_into_keep_restart_stop_start() {
        let running = kv(&[("/a", 1), ("/b", 2), ("/c", 3)]);
        let wanted = kv(&[("/d", 4), ("/c", 3), ("/a", 9)]);
        let p = plan(&running, &wanted);
        assert_eq!(p.keep, keys(&["/c"]));
        assert_eq!(p.restart, keys(&["/a"]));
        assert_eq!(p.stop, keys(&["/b"]));
        assert_eq!(p.start, keys(&["/d"]));
    }

    #[test]
    fn plan_of_identical_sets_keeps_everything() {
        let set = kv(&[("/a", 1), ("/b", 2)]);
        let p = plan(&set, &set);
        assert_eq!(p.keep, keys(&["/a", "/b"]));
        assert!(p.restart.is_empty() && p.stop.is_empty() && p.start.is_empty());
    }

    #[test]
    fn plan_from_and_to_nothing() {
        let set = kv(&[("/a", 1), ("/b", 2)]);
        let p = plan(&[], &set);
        assert_eq!(p.start, keys(&["/a", "/b"]));
        let p = plan(&set, &[]);
        assert_eq!(p.stop, keys(&["/a", "/b"]));
        assert!(p.keep.is_empty() && p.start.is_empty());
    }

    #[test]
    fn plan_counts_a_repeated_key_once() {
        let p = plan(&kv(&[("/a", 1), ("/a", 1)]), &kv(&[("/a", 2), ("/a", 1)]));
        assert_eq!(p.restart, keys(&["/a"]));
        assert!(p.keep.is_empty() && p.stop.is_empty() && p.start.is_empty());
    }

    fn relay_config(port: u16) -> crate::config::RelayConfig {
        crate::config::RelayConfig {
            server: "127.0.0.1".into(),
            port,
            mount: "/up".into(),
            local_mount: "/here".into(),
            username: None,
            password: None,
            relay_metadata: true,
            on_demand: false,
            bind: None,
            timing: Default::default(),
        }
    }

    #[test]
    fn a_relay_changes_with_its_settings_and_the_server_id() {
        let mut a = Config::default();
        a.relays.push(relay_config(8000));
        let same = a.clone();
        assert_eq!(
            plan(&wanted_relays(&a), &wanted_relays(&same)).keep,
            keys(&["/here"])
        );

        let mut port = a.clone();
        port.relays[0].port = 8001;
        let mut creds = a.clone();
        creds.relays[0].password = Some("p".into());
        creds.relays[0].username = Some("u".into());
        let mut id = a.clone();
        id.server_id = "other/1.0".into();
        for (what, b) in [("port", port), ("credentials", creds), ("server id", id)] {
            let p = plan(&wanted_relays(&a), &wanted_relays(&b));
            assert_eq!(p.restart, keys(&["/here"]), "{what}");
        }
    }

    #[test]
    fn master_changes_with_its_section() {
        let mut a = Config::default();
        assert_eq!(wanted_master(&a), None);
        a.master = Some(MasterConfig {
            server: "m".into(),
            port: 8000,
            username: "relay".into(),
            password: "pw".into(),
            update_interval: std::time::Duration::from_secs(120),
            on_demand: false,
            timing: Default::default(),
        });
        let b = a.clone();
        assert_eq!(wanted_master(&a), wanted_master(&b));
        let mut c = a.clone();
        if let Some(m) = c.master.as_mut() {
            m.update_interval = std::time::Duration::from_secs(5);
        }
        assert_ne!(wanted_master(&a), wanted_master(&c));
    }
}
