//! What the config asks to run, by key: the pull relays (by local mount), the master poller,
//! the push relays (by remote), the splitters and the peer mounts (by mount). The supervisor
//! compares these with what runs. Pure functions of the config; nothing is started here.

use crate::config::{Config, MasterConfig, P2pspConfig, PushConfig, SplitterSettings};
use crate::p2psp::Codec;
use crate::relay::pull::PullRelay;
use crate::team::peer::{PeerMount, TeamSocket};

/// The relays `config` asks for, by local mount. Relays whose upstream cannot be used are
/// left out (and logged).
pub fn relays(config: &Config) -> Vec<(String, PullRelay)> {
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

/// The master poller `config` asks for, if any (under the one key `()`).
pub fn master(config: &Config) -> Vec<((), MasterWanted)> {
    config
        .master
        .iter()
        .map(|m| {
            let w = MasterWanted {
                config: m.clone(),
                server_id: config.server_id.clone(),
            };
            ((), w)
        })
        .collect()
}

/// The pushes `config` asks for, by remote (the config loader refuses two pushes to one
/// remote mount).
pub fn pushes(config: &Config) -> Vec<(String, PushConfig)> {
    config
        .pushes
        .iter()
        .map(|p| {
            let key = format!(
                "{}:{}{}",
                p.server.to_ascii_lowercase(),
                p.port,
                p.remote_mount
            );
            (key, p.clone())
        })
        .collect()
}

/// The teams `config` has mounts serve, by mount (with the mount's merged settings).
pub fn splitters(config: &Config) -> Vec<(String, SplitterSettings)> {
    config
        .mounts
        .iter()
        .filter(|m| m.p2psp.as_ref().is_some_and(|p| p.splitter().is_some()))
        .filter_map(|m| {
            let merged = config.mount(&m.name)?;
            let settings = merged.p2psp.as_ref()?.splitter()?.clone();
            Some((m.name.clone(), settings))
        })
        .collect()
}

/// The teams `config` has mounts join, by mount.
pub fn peers(config: &Config) -> Vec<(String, PeerMount)> {
    config
        .mounts
        .iter()
        .filter_map(|m| match m.p2psp.as_ref()? {
            P2pspConfig::Peer {
                splitter,
                compat,
                auth,
                ..
            } => {
                let team = PeerMount {
                    auth: auth.clone(),
                    splitter: splitter.clone(),
                    codec: if *compat {
                        Codec::CompatGenC
                    } else {
                        Codec::Native
                    },
                    local: TeamSocket::default(),
                };
                Some((m.name.clone(), team))
            }
            P2pspConfig::Splitter(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::plan;

    fn keys(items: &[&str]) -> Vec<String> {
        items.iter().map(|k| k.to_string()).collect()
    }

    fn refs<K: Clone, V>(items: &[(K, V)]) -> Vec<(K, &V)> {
        items.iter().map(|(k, v)| (k.clone(), v)).collect()
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
            tls: Default::default(),
        }
    }

    #[test]
    fn a_relay_changes_with_its_settings_and_the_server_id() {
        let mut a = Config::default();
        a.relays.push(relay_config(8000));
        let same = a.clone();
        assert_eq!(
            plan(&refs(&relays(&a)), &relays(&same)).keep,
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
            let p = plan(&refs(&relays(&a)), &relays(&b));
            assert_eq!(p.restart, keys(&["/here"]), "{what}");
        }
    }

    #[test]
    fn master_changes_with_its_section() {
        let mut a = Config::default();
        assert!(master(&a).is_empty());
        a.master = Some(MasterConfig {
            server: "m".into(),
            port: 8000,
            username: "relay".into(),
            password: "pw".into(),
            update_interval: std::time::Duration::from_secs(120),
            on_demand: false,
            timing: Default::default(),
            tls: Default::default(),
        });
        let b = a.clone();
        assert_eq!(master(&a), master(&b));
        let mut c = a.clone();
        if let Some(m) = c.master.as_mut() {
            m.update_interval = std::time::Duration::from_secs(5);
        }
        assert_ne!(master(&a), master(&c));
    }

    fn mount(name: &str, p2psp: Option<P2pspConfig>) -> crate::config::MountConfig {
        crate::config::MountConfig {
            name: name.into(),
            p2psp,
            ..Default::default()
        }
    }

    #[test]
    fn teams_by_mount_and_role() {
        let peer = |serve| P2pspConfig::Peer {
            splitter: "up:7000".into(),
            serve,
            compat: false,
            auth: Default::default(),
        };
        let a = Config {
            mounts: vec![
                mount("/plain", None),
                mount(
                    "/s",
                    Some(P2pspConfig::Splitter(SplitterSettings::default())),
                ),
                mount("/p", Some(peer(None))),
                mount("/inner", Some(peer(Some(SplitterSettings::default())))),
            ],
            ..Default::default()
        };
        let s: Vec<String> = splitters(&a).into_iter().map(|(k, _)| k).collect();
        assert_eq!(s, keys(&["/s", "/inner"]));
        let p: Vec<String> = peers(&a).into_iter().map(|(k, _)| k).collect();
        assert_eq!(p, keys(&["/p", "/inner"]));

        // An inner node that stops serving keeps its peer running.
        let mut b = a.clone();
        b.mounts[3] = mount("/inner", Some(peer(None)));
        let ps = plan(&refs(&splitters(&a)), &splitters(&b));
        assert_eq!(ps.stop, keys(&["/inner"]));
        let pp = plan(&refs(&peers(&a)), &peers(&b));
        assert_eq!(pp.keep, keys(&["/p", "/inner"]));
        // Another splitter address restarts the peer only.
        let mut c = a.clone();
        if let Some(P2pspConfig::Peer { splitter, .. }) = c.mounts[2].p2psp.as_mut() {
            *splitter = "elsewhere:7000".into();
        }
        assert_eq!(plan(&refs(&peers(&a)), &peers(&c)).restart, keys(&["/p"]));
        assert_eq!(
            plan(&refs(&splitters(&a)), &splitters(&c)).keep,
            keys(&["/s", "/inner"])
        );
    }

    #[test]
    fn pushes_by_remote() {
        let mut a = Config::default();
        let p = PushConfig {
            mount: "/a".into(),
            server: "Remote.Example".into(),
            port: 8000,
            remote_mount: "/r".into(),
            username: "source".into(),
            password: "pw".into(),
            protocol: Default::default(),
            bind: None,
            tls: Default::default(),
        };
        a.pushes = vec![p.clone()];
        assert_eq!(pushes(&a)[0].0, "remote.example:8000/r");
        let mut b = a.clone();
        b.pushes[0].mount = "/b".into();
        assert_eq!(
            plan(&refs(&pushes(&a)), &pushes(&b)).restart,
            keys(&["remote.example:8000/r"])
        );
    }
}
