//! Master relay-all: poll a master's `/admin/streamlist.txt` every update interval and keep
//! one pull relay per listed mount, starting relays for new lines and stopping those whose
//! lines disappeared. A failed poll keeps the running relays (icecast does the same). A
//! configured `[[relay]]` for the same local mount wins: the master's relay gives way at the
//! next poll. When the poller stops (the `[master]` section was removed or changed by a
//! reload), the relays it started stop with it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::client;
use super::head::{StreamRequest, UpstreamUrl};
use super::pull::{self, PullRelay};
use crate::config::MasterConfig;
use crate::server::Server;

/// Most mounts taken from one stream list.
pub const MAX_MOUNTS: usize = 1000;
/// Longest wait for a stream list body.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// The mounts a stream list names: `/m` is on the master itself, `http://h:p/m` elsewhere
/// (port 80 by default). The local mount is the path. Unusable lines are skipped; the
/// first line for a local mount wins.
pub fn parse_streamlist(
    body: &str,
    master_host: &str,
    master_port: u16,
) -> Vec<(String, UpstreamUrl)> {
    let mut out: Vec<(String, UpstreamUrl)> = Vec::new();
    for line in body.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let url = if line.starts_with('/') {
            UpstreamUrl::new(master_host, master_port, line)
        } else {
            UpstreamUrl::parse(line)
        };
        let Some(url) = url else {
            tracing::debug!("stream list line skipped: {line:?}");
            continue;
        };
        let local = url.path.split('?').next().unwrap_or("").to_string();
        if local.len() < 2 || out.iter().any(|(m, _)| *m == local) {
            continue;
        }
        out.push((local, url));
        if out.len() >= MAX_MOUNTS {
            break;
        }
    }
    out
}

struct Running {
    url: UpstreamUrl,
    /// Dropping the sender stops the relay.
    _stop: watch::Sender<bool>,
}

fn is_stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

/// Poll the master until shutdown or until `stop` turns true (or its sender is dropped).
/// The relays it started stop when it returns (their stop senders are dropped with it).
pub async fn run(server: Arc<Server>, cfg: MasterConfig, mut stop: watch::Receiver<bool>) {
    let mut running: HashMap<String, Running> = HashMap::new();
    let master = format!("{}:{}", cfg.server, cfg.port);
    tracing::info!(%master, "master relay poller starting");
    loop {
        if server.is_shutting_down() || is_stopped(&stop) {
            break;
        }
        let list = client::streamlist(
            &cfg.server,
            cfg.port,
            &cfg.username,
            &cfg.password,
            LIST_TIMEOUT,
        );
        let listed = tokio::select! {
            r = list => Some(r),
            r = stop.changed() => if r.is_err() || *stop.borrow() { None } else { continue },
        };
        let Some(listed) = listed else { break };
        match listed {
            Ok(body) => {
                let wanted = parse_streamlist(&body, &cfg.server, cfg.port);
                let config = server.config();
                // A configured [[relay]] for the same mount wins.
                let configured = |mount: &str| config.relays.iter().any(|r| r.local_mount == mount);
                running.retain(|mount, r| {
                    if configured(mount) {
                        tracing::info!(
                            mount,
                            "a configured relay feeds this mount; stopping the master's relay"
                        );
                        return false;
                    }
                    let keep = wanted.iter().any(|(m, u)| m == mount && *u == r.url);
                    if !keep {
                        tracing::info!(
                            mount,
                            "master no longer lists this mount; stopping its relay"
                        );
                    }
                    keep
                });
                let server_id = config.server_id.clone();
                for (mount, url) in wanted {
                    if running.contains_key(&mount) || configured(&mount) {
                        continue;
                    }
                    let relay = PullRelay {
                        local_mount: mount.clone(),
                        url: url.clone(),
                        // Relay-all stream requests carry no credentials (capture §5).
                        request: StreamRequest {
                            user_agent: server_id.clone(),
                            icy_metadata: true,
                            credentials: None,
                        },
                        on_demand: cfg.on_demand,
                        bind: None,
                        timing: cfg.timing,
                    };
                    let (tx, rx) = watch::channel(false);
                    tokio::spawn(pull::run(server.clone(), relay, rx));
                    running.insert(mount, Running { url, _stop: tx });
                }
            }
            Err(e) => tracing::warn!(%master, "cannot read the master's stream list: {e}"),
        }
        let shutdown = server.shutdown_notified();
        if server.is_shutting_down() || is_stopped(&stop) {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.update_interval) => {}
            _ = shutdown => break,
            r = stop.changed() => if r.is_err() || *stop.borrow() { break },
        }
    }
    if !running.is_empty() {
        tracing::info!(%master, relays = running.len(), "master relay poller stopped; stopping its relays");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamlist_lines() {
        let body = "/live.mp3\r\n/live.ogg\r\n\r\nhttp://other.example:9000/x.mp3\r\nhttp://third/y\n\
                    garbage line\n/bad path\n/live.mp3\n/\nhttps://z/q\n";
        let got = parse_streamlist(body, "master", 8000);
        let want: Vec<(String, UpstreamUrl)> = vec![
            (
                "/live.mp3".into(),
                UpstreamUrl::new("master", 8000, "/live.mp3").unwrap(),
            ),
            (
                "/live.ogg".into(),
                UpstreamUrl::new("master", 8000, "/live.ogg").unwrap(),
            ),
            (
                "/x.mp3".into(),
                UpstreamUrl::new("other.example", 9000, "/x.mp3").unwrap(),
            ),
            ("/y".into(), UpstreamUrl::new("third", 80, "/y").unwrap()),
        ];
        assert_eq!(got, want);
        assert!(parse_streamlist("", "m", 1).is_empty());
    }

    #[test]
    fn streamlist_is_capped() {
        let body: String = (0..3000).map(|i| format!("/m{i}\n")).collect();
        assert_eq!(parse_streamlist(&body, "m", 1).len(), MAX_MOUNTS);
    }

    proptest::proptest! {
        #[test]
        fn streamlist_never_panics(body in "\\PC{0,400}") {
            for (local, url) in parse_streamlist(&body, "m", 8000) {
                proptest::prop_assert!(local.starts_with('/'));
                proptest::prop_assert!(!url.path.contains(char::is_whitespace));
            }
        }
    }
}
