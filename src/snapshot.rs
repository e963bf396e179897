//! Takes a [`ServerSnapshot`] of the live server at request time: the one place where the
//! status documents, admin commands and metrics read mounts, relays, teams and pushes. It
//! only copies: each lock is held just long enough to read, never across an `.await`.

use std::time::Instant;

use crate::clock::{self, local};
use crate::config::Config;
use crate::documents::{Identity, ListenerSnapshot, MountSnapshot, PushEntry, ServerSnapshot};
use crate::mount::Mount;
use crate::server::Server;

/// The server now. With `listeners_of`, that mount's snapshot also lists its listeners
/// (`listclients`, `stats?mount=`); other mounts never carry theirs.
pub fn capture(server: &Server, listeners_of: Option<&str>) -> ServerSnapshot {
    let config = server.config();
    let now_mono = Instant::now();
    let now = clock::now();
    let mounts = server
        .registry
        .list()
        .iter()
        .map(|m| mount(&config, m, listeners_of == Some(m.name.as_str())))
        .collect();
    ServerSnapshot {
        now,
        now_mono,
        identity: identity(server, &config),
        started: local(server.started()),
        counters: server.stats.snapshot(),
        mounts,
        relays: server.tasks.relays.snapshot(),
        teams: server.tasks.teams.all(),
        pushes: server
            .tasks
            .pushes
            .list()
            .iter()
            .map(|p| PushEntry {
                push: p.status(),
                mount_hidden: config
                    .mount(&p.config.mount)
                    .is_some_and(|m| m.hidden == Some(true)),
            })
            .collect(),
    }
}

/// Who runs this server (all `/server_version.xsl` needs).
pub fn identity(server: &Server, config: &Config) -> Identity {
    Identity {
        server_id: config.server_id.clone(),
        admin: config.admin.clone(),
        host: config.hostname.clone(),
        location: config.location.clone(),
        port: server.port(),
        tls_port: None,
    }
}

/// One mount now, with its listeners when asked.
pub fn mount(config: &Config, m: &Mount, with_listeners: bool) -> MountSnapshot {
    let meta = m.metadata();
    MountSnapshot {
        name: m.name.clone(),
        family: m.family,
        ended: m.is_ended(),
        standby: m.is_standby(),
        on_demand: m.is_on_demand(),
        hidden: m.settings.hidden,
        max_listeners: m.settings.max_listeners,
        started: local(m.started),
        stream: m.with_info(|i| i.stream.clone()),
        codec: m.codec(),
        now_playing: meta.display(),
        title: meta.title,
        artist: meta.artist,
        fallback: m.fallback(),
        listeners: m.listener_count(),
        counters: m.stats.snapshot(),
        queued_bytes: m.queued_bytes(),
        configured_subtype: config.mount(&m.name).and_then(|c| c.subtype.clone()),
        authenticator: config.listener_auth(&m.name).map(|a| a.type_name()),
        clients: with_listeners.then(|| {
            m.listeners()
                .into_iter()
                .map(|(id, l)| ListenerSnapshot {
                    id,
                    ip: l.ip,
                    user_agent: l.user_agent,
                    connected: local(l.connected),
                    username: l.username.map(String::from),
                })
                .collect()
        }),
    }
}

impl crate::metrics::SnapshotSource for Server {
    fn snapshot(&self) -> ServerSnapshot {
        capture(self, None)
    }
}
