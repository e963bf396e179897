//! Master relay-all: poll a master's `/admin/streamlist.txt` every update interval and keep
//! one pull relay per listed mount, starting relays for new lines and stopping those whose
//! lines stay away longer than the grace period (a restarting upstream source leaves the list
//! for a moment; its relay keeps its listeners through that gap, as a relay whose upstream
//! drops does). A failed poll keeps the running relays (icecast does the same). A
//! configured `[[relay]]` for the same local mount wins: the master's relay gives way at the
//! next poll. When the poller stops (the `[master]` section was removed or changed by a
//! reload, or shutdown), the relays it started stop with it, and it ends once they have.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::pull::{self, PullRelay};
use super::upstream::StreamRequest;
use crate::config::MasterConfig;
use crate::http::client::{Protocol, Request, Version};
use crate::http::url::Url;
use crate::net::client::{self, ClientError, Options};
use crate::server::Server;
use crate::supervisor::tasks::{Stop, TaskSet};

/// Most mounts taken from one stream list.
pub const MAX_MOUNTS: usize = 1000;
/// Longest wait for a stream list body.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest stream list body read from a master.
const MAX_STREAMLIST: usize = 1 << 20;

/// The exact bytes an icecast slave polls its master with (spec §4).
fn streamlist_request(user: &str, password: &str) -> Request {
    Request::new("GET", "/admin/streamlist.txt", Version::Http10).basic_auth(user, password)
}

/// Fetch the master's `/admin/streamlist.txt`. Only `HTTP/1.0 200` and `HTTP/1.1 200` count
/// as success, as in icecast.
async fn fetch_streamlist(cfg: &MasterConfig) -> Result<String, ClientError> {
    let port = cfg.tls.port.unwrap_or(cfg.port);
    let url = Url::new(&cfg.server, port, "/admin/streamlist.txt")
        .ok_or_else(|| ClientError::Resolve(cfg.server.clone()))?
        .with_tls(cfg.tls.port.is_some());
    let request = |_: &Url| streamlist_request(&cfg.username, &cfg.password);
    let opts = Options {
        ca_file: cfg.tls.ca_file.clone(),
        ..Options::default()
    };
    let mut list = client::request(&url, request, &opts).await?;
    if list.head.status != 200 || list.head.protocol == Protocol::Icy {
        return Err(ClientError::Status(list.head.status, list.head.reason));
    }
    let body = list.body(MAX_STREAMLIST, LIST_TIMEOUT).await?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The mounts a stream list names: `/m` is on the master itself, `http://h:p/m` elsewhere
/// (port 80 by default). The local mount is the path. Unusable lines are skipped; the
/// first line for a local mount wins.
pub fn parse_streamlist(body: &str, master_host: &str, master_port: u16) -> Vec<(String, Url)> {
    let mut out: Vec<(String, Url)> = Vec::new();
    for line in body.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let url = if line.starts_with('/') {
            Url::new(master_host, master_port, line)
        } else {
            Url::parse(line)
        };
        let Some(url) = url else {
            tracing::debug!("stream list line skipped: {line:?}");
            continue;
        };
        let local = url.path.split('?').next().unwrap_or("").to_string();
        // A master cannot shadow this server's own paths, nor log a broken line.
        if local.len() < 2
            || crate::http::mount_name::check(&local).is_err()
            || out.iter().any(|(m, _)| *m == local)
        {
            continue;
        }
        out.push((local, url));
        if out.len() >= MAX_MOUNTS {
            break;
        }
    }
    out
}

/// What the poller remembers of a relay it runs.
struct Listed {
    /// Since when the master's list has not named this mount. A restarting upstream source
    /// drops out of the list for a moment; its relay (and its listeners) stay until the
    /// mount has been missing for the grace period.
    missing_since: Option<Instant>,
}

/// What a poll decides for a running relay.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Keep,
    /// Listed again after a gap.
    Back,
    /// Not listed; kept within the grace period.
    Missing,
    /// Not listed for longer than the grace period.
    Expired,
    /// Listed at another upstream URL.
    Moved,
}

/// Judge one running relay (started from `url`) against the list just read (sans-IO: `now`
/// passed in).
fn judge(
    url: &Url,
    running: &mut Listed,
    listed: Option<&Url>,
    now: Instant,
    grace: Duration,
) -> Verdict {
    match listed {
        Some(l) if l == url => match running.missing_since.take() {
            Some(_) => Verdict::Back,
            None => Verdict::Keep,
        },
        Some(_) => Verdict::Moved,
        None => {
            let since = *running.missing_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= grace {
                Verdict::Expired
            } else {
                Verdict::Missing
            }
        }
    }
}

/// Poll the master until shutdown or until it is asked to stop. The relays it started stop
/// with it, and it returns once they have finished.
pub async fn run(server: Arc<Server>, cfg: MasterConfig, mut stop: Stop) {
    let mut running: TaskSet<String, Url, Listed> = TaskSet::default();
    let master = format!("{}:{}", cfg.server, cfg.port);
    tracing::info!(%master, "master relay poller starting");
    loop {
        let shutdown = server.shutdown_notified();
        if server.is_shutting_down() || stop.is_requested() {
            break;
        }
        let list = fetch_streamlist(&cfg);
        let listed = tokio::select! {
            r = list => Some(r),
            _ = stop.requested() => None,
            _ = shutdown => None,
        };
        let Some(listed) = listed else { break };
        match listed {
            Ok(body) => {
                let wanted = parse_streamlist(&body, &cfg.server, cfg.port);
                let config = server.config();
                // A configured [[relay]] for the same mount wins.
                let configured = |mount: &str| config.relays.iter().any(|r| r.local_mount == mount);
                let now = Instant::now();
                let grace = cfg.timing.grace_period;
                running.retain(|mount, url, r| {
                    if configured(mount) {
                        tracing::info!(
                            mount,
                            "a configured relay feeds this mount; stopping the master's relay"
                        );
                        return false;
                    }
                    let listed = wanted.iter().find(|(m, _)| m == mount).map(|(_, u)| u);
                    match judge(url, r, listed, now, grace) {
                        Verdict::Keep => true,
                        Verdict::Back => {
                            tracing::info!(mount, "master lists this mount again; its relay kept");
                            true
                        }
                        Verdict::Missing => {
                            if r.missing_since == Some(now) {
                                tracing::info!(
                                    mount,
                                    "master no longer lists this mount; keeping its relay and listeners for up to {grace:?}"
                                );
                            }
                            true
                        }
                        Verdict::Expired => {
                            tracing::info!(
                                mount,
                                "master has not listed this mount for {grace:?}; stopping its relay"
                            );
                            false
                        }
                        Verdict::Moved => {
                            tracing::info!(
                                mount,
                                "master lists this mount at another upstream; restarting its relay"
                            );
                            false
                        }
                    }
                });
                let server_id = config.server_id.clone();
                for (mount, url) in wanted {
                    if running.contains(&mount) || configured(&mount) {
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
                        ca_file: None,
                    };
                    let listed = Listed {
                        missing_since: None,
                    };
                    let server = server.clone();
                    running.start(mount, url, listed, |stop| pull::run(server, relay, stop));
                }
            }
            Err(e) => tracing::warn!(%master, "cannot read the master's stream list: {e}"),
        }
        let shutdown = server.shutdown_notified();
        if server.is_shutting_down() || stop.is_requested() {
            break;
        }
        // Poll again at the interval, or sooner when a missing mount's grace runs out, so
        // that it is stopped on a fresh list, neither early nor an interval late.
        let next = running
            .iter()
            .filter_map(|(_, _, r)| r.missing_since.map(|t| t + cfg.timing.grace_period))
            .chain(std::iter::once(Instant::now() + cfg.update_interval))
            .min()
            .unwrap_or_else(Instant::now);
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            _ = shutdown => break,
            _ = stop.requested() => break,
        }
    }
    if !running.is_empty() {
        tracing::info!(%master, relays = running.len(), "master relay poller stopped; stopping its relays");
    }
    running.stop_all();
    running.join_all().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamlist_request_is_icecasts() {
        assert_eq!(
            streamlist_request("relay", "hackme").to_bytes(),
            b"GET /admin/streamlist.txt HTTP/1.0\r\nAuthorization: Basic cmVsYXk6aGFja21l\r\n\r\n"
        );
    }

    #[test]
    fn streamlist_lines() {
        let body = "/live.mp3\r\n/live.ogg\r\n\r\nhttp://other.example:9000/x.mp3\r\nhttp://third/y\n\
                    garbage line\n/bad path\n/live.mp3\n/\nhttps://z/q\n";
        let got = parse_streamlist(body, "master", 8000);
        let want: Vec<(String, Url)> = vec![
            (
                "/live.mp3".into(),
                Url::new("master", 8000, "/live.mp3").unwrap(),
            ),
            (
                "/live.ogg".into(),
                Url::new("master", 8000, "/live.ogg").unwrap(),
            ),
            (
                "/x.mp3".into(),
                Url::new("other.example", 9000, "/x.mp3").unwrap(),
            ),
            ("/y".into(), Url::new("third", 80, "/y").unwrap()),
            // A master may list TLS upstreams.
            ("/q".into(), Url::parse("https://z/q").unwrap()),
        ];
        assert_eq!(got, want);
        assert!(parse_streamlist("", "m", 1).is_empty());
    }

    #[test]
    fn a_missing_mount_gets_the_grace_period() {
        let url = Url::new("m", 8000, "/a").unwrap();
        let mut r = Listed {
            missing_since: None,
        };
        let grace = Duration::from_secs(30);
        let t0 = Instant::now();
        assert_eq!(judge(&url, &mut r, Some(&url), t0, grace), Verdict::Keep);
        assert_eq!(judge(&url, &mut r, None, t0, grace), Verdict::Missing);
        assert_eq!(
            judge(&url, &mut r, None, t0 + Duration::from_secs(29), grace),
            Verdict::Missing
        );
        // Back in the list: the clock starts afresh next time.
        assert_eq!(
            judge(
                &url,
                &mut r,
                Some(&url),
                t0 + Duration::from_secs(29),
                grace
            ),
            Verdict::Back
        );
        let t1 = t0 + Duration::from_secs(40);
        assert_eq!(judge(&url, &mut r, None, t1, grace), Verdict::Missing);
        assert_eq!(
            judge(&url, &mut r, None, t1 + grace, grace),
            Verdict::Expired
        );
        let other = Url::new("m", 8000, "/b").unwrap();
        assert_eq!(judge(&url, &mut r, Some(&other), t1, grace), Verdict::Moved);
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
