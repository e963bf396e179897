//! Starting and stopping a server: bind the sockets, spawn the accept loops, start the
//! supervised tasks, and on shutdown wait (bounded) for all of them and every connection to
//! finish. `main` and the integration tests both start servers this way.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::net::{self, PortKind};
use crate::server::Server;
use crate::supervisor::Supervisor;
use crate::tls::Certificates;

pub struct App {
    pub server: Arc<Server>,
    /// Relays, pushes and teams, kept in step with the config.
    pub supervisor: Supervisor,
    /// Bound HTTP addresses, in config order.
    pub http_addrs: Vec<SocketAddr>,
    /// Bound SHOUTcast source addresses.
    pub icy_addrs: Vec<SocketAddr>,
    accept_loops: Vec<tokio::task::JoinHandle<()>>,
    /// The TLS certificates, swapped on reload and when their files change.
    certs: Arc<Certificates>,
}

impl App {
    /// Bind every socket of `config` and start accepting.
    pub fn start(config: Config, config_path: Option<PathBuf>) -> std::io::Result<App> {
        let certs = Certificates::start(&config.tls)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        let sockets = net::bind_all(&config)?;
        let server = Server::new(config, config_path);
        let mut http_addrs = Vec::new();
        let mut icy_addrs = Vec::new();
        for s in &sockets {
            let addr = s.listener.local_addr()?;
            match s.kind {
                PortKind::Http => http_addrs.push(addr),
                PortKind::Shoutcast { .. } => icy_addrs.push(addr),
            }
        }
        server.set_bound(http_addrs.clone());
        let mut accept_loops: Vec<_> = sockets
            .into_iter()
            .map(|s| tokio::spawn(net::accept_loop(server.clone(), s, certs.clone())))
            .collect();
        accept_loops.push(tokio::spawn(certs.clone().watch(server.clone())));
        let supervisor = Supervisor::new(server.clone());
        supervisor.reconcile();
        Ok(App {
            server,
            supervisor,
            http_addrs,
            icy_addrs,
            accept_loops,
            certs,
        })
    }

    /// Re-read the config file (SIGHUP). Errors keep the running config. The access log is
    /// reopened either way, so that logrotate's HUP always moves writing to the new file.
    pub fn reload(&self) -> Result<(), String> {
        let result = self.reload_config();
        if result.is_err() {
            let config = self.server.config();
            self.server
                .access_log
                .reopen(config.logging.access_log.as_deref());
        }
        result
    }

    /// The config part of [`App::reload`]; a new config reopens the access log as it is set in.
    fn reload_config(&self) -> Result<(), String> {
        let Some(path) = self.server.config_path() else {
            return Err("no config file to reload (running on the embedded defaults)".into());
        };
        let config = match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                self.server.metrics.config_reloaded(false);
                return Err(e.to_string());
            }
        };
        if config.listen != self.server.config().listen {
            tracing::warn!("listen sockets changed; they take effect at the next restart");
        }
        self.certs.reload(&config.tls);
        self.server.replace_config(config);
        self.supervisor.reconcile();
        self.server.metrics.config_reloaded(true);
        Ok(())
    }

    /// Stop accepting, end every source, listener and background task, and wait for them to
    /// finish, at most `grace`; what still runs then is aborted.
    pub async fn shutdown(self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        // Everything follows this signal: accept loops, sources, listeners (kicked), relays,
        // pushes and teams.
        self.server.begin_shutdown();
        for t in self.accept_loops {
            let abort = t.abort_handle();
            if tokio::time::timeout_at(deadline, t).await.is_err() {
                abort.abort();
            }
        }
        self.supervisor.shutdown(deadline).await;
        let _ = tokio::time::timeout_at(deadline, self.server.clients_gone()).await;
    }
}
