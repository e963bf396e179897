//! Starting and stopping a server: bind the sockets, spawn the accept loops, and drain
//! connections on shutdown. `main` and the integration tests both start servers this way.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::config::Config;
use crate::net::{self, PortKind};
use crate::server::Server;

pub struct App {
    pub server: Arc<Server>,
    /// Bound HTTP addresses, in config order.
    pub http_addrs: Vec<SocketAddr>,
    /// Bound SHOUTcast source addresses.
    pub icy_addrs: Vec<SocketAddr>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl App {
    /// Bind every socket of `config` and start accepting.
    pub fn start(config: Config, config_path: Option<PathBuf>) -> std::io::Result<App> {
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
        let mut tasks: Vec<_> = sockets
            .into_iter()
            .map(|s| tokio::spawn(net::accept_loop(server.clone(), s)))
            .collect();
        tasks.extend(crate::team::spawn_all(&server));
        server.pushes.reconcile(&server);
        server.relay_set.reconcile(&server);
        Ok(App {
            server,
            http_addrs,
            icy_addrs,
            tasks,
        })
    }

    /// Stop `task` with the server (it is aborted at shutdown like the accept loops).
    pub fn track(&mut self, task: tokio::task::JoinHandle<()>) {
        self.tasks.push(task);
    }

    /// Re-read the config file (SIGHUP). Errors keep the running config.
    pub fn reload(&self) -> Result<(), String> {
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
        self.server.replace_config(config);
        self.server.pushes.reconcile(&self.server);
        self.server.relay_set.reconcile(&self.server);
        self.server.metrics.config_reloaded(true);
        Ok(())
    }

    /// Stop accepting, end every source and listener, and wait (bounded) for them to go.
    pub async fn shutdown(self, grace: Duration) {
        self.server.begin_shutdown();
        self.server.pushes.stop_all();
        self.server.relay_set.stop_all();
        for t in &self.tasks {
            t.abort();
        }
        let deadline = tokio::time::Instant::now() + grace;
        while self.server.stats.clients.load(Ordering::Acquire) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
