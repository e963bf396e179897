//! The `floecast` binary: parse the command line, load the config (or the embedded
//! icecast2-equivalent defaults), start the server and handle signals: SIGHUP reloads the
//! config without dropping anyone, SIGINT/SIGTERM shut down gracefully.

use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clap::{Parser, Subcommand};
use floecast::app::App;
use floecast::banner;
use floecast::config::Config;
use floecast::error_log::ErrorLog;
use floecast::p2psp::Codec;
use floecast::team::peer::TeamSocket;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

#[derive(Parser)]
#[command(
    name = "floecast",
    version,
    about = "Icecast-compatible streaming server with a P2PSP backplane"
)]
struct Cli {
    /// TOML config file. Without one, floecast runs on embedded defaults equal to
    /// icecast2's sample config (port 8000, passwords "hackme").
    #[arg(short, long, global = true)]
    config: Option<PathBuf>,
    /// Listen on this port instead of the config's (its first listen socket; for `peer`,
    /// the same as --listen). The SHOUTcast port, if configured, follows to port + 1.
    #[arg(short, long, global = true)]
    port: Option<u16>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Check the config file and exit: 0 if valid, 2 if not.
    CheckConfig,
    /// Join a P2PSP team and serve its stream to local players (any number of them), like the
    /// reference peer's port 9999: `floecast peer splitter.example.org:8001`.
    Peer {
        /// The splitter's `host:port`.
        splitter: String,
        /// Port players connect to.
        #[arg(long, default_value_t = 9999)]
        listen: u16,
        /// Address for both the players' port and the P2PSP sockets (default: all
        /// addresses; for players IPv4 and IPv6).
        #[arg(long)]
        bind: Option<String>,
        /// Local UDP port of the P2PSP sockets (the TCP join uses it too). Default: a fresh
        /// port for each join.
        #[arg(long)]
        udp_port: Option<u16>,
        /// Mount the stream is served on.
        #[arg(long, default_value = "/stream")]
        mount: String,
        /// Wire format of the team: `native` (floecast) or `gen-c` (the 2018 C++ reference).
        #[arg(long, default_value = "native", value_parser = ["native", "gen-c"])]
        codec: String,
        /// Pin the splitter's Ed25519 public key (64 hex digits or base64, as its log and
        /// /api/status show it): a join answered with another key fails (native teams).
        #[arg(long, value_parser = parse_splitter_key)]
        splitter_key: Option<[u8; 32]>,
        /// The team's secret, when its splitter requires one (native teams). Visible in the
        /// process list: prefer `team-secret` in a config file on shared machines.
        #[arg(long)]
        team_secret: Option<String>,
    },
    /// Print the floecast TOML equivalent of an icecast2 `icecast.xml`, with comments on
    /// every option that does not carry over.
    ImportIcecast {
        /// Path to icecast.xml.
        file: PathBuf,
    },
    /// Run the deterministic P2PSP network simulator (no sockets, virtual time).
    Simulate(floecast_sim::SimArgs),
    /// Exit 0 if the server of this config (or at --url) answers `/api/status` with 200 within
    /// 5 s, else 1: a container HEALTHCHECK without curl.
    Healthcheck {
        /// Check this URL instead of `/api/status` on the config's first listen socket.
        #[arg(long)]
        url: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::ImportIcecast { file }) = &cli.command {
        return import_icecast(file);
    }
    let checking = matches!(
        cli.command,
        Some(Command::CheckConfig | Command::Healthcheck { .. })
    );
    // Logging comes first, so that what loading the config reports (every icecast.xml
    // option that does not carry over) is seen, at start-up and by check-config.
    let log = Log::init(checking);
    let mut config = match &cli.config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("floecast: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    log.set_level(config.logging.level.as_deref());

    match cli.command.unwrap_or(Command::Serve) {
        Command::ImportIcecast { .. } => ExitCode::SUCCESS,
        Command::Peer {
            splitter,
            listen,
            bind,
            udp_port,
            mount,
            codec,
            splitter_key,
            team_secret,
        } => {
            let args = PeerArgs {
                auth: floecast::config::TeamAuth {
                    splitter_key,
                    team_secret,
                    ..Default::default()
                },
                splitter,
                listen: cli.port.unwrap_or(listen),
                bind,
                udp_port,
                mount,
                codec: if codec == "gen-c" {
                    Codec::CompatGenC
                } else {
                    Codec::Native
                },
            };
            let (config, team_socket) = match peer_config(config, &args) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("floecast: {e}");
                    return ExitCode::from(2);
                }
            };
            run(serve(
                config,
                Role::Peer(Box::new(args), team_socket),
                log.error_log.clone(),
            ))
        }
        Command::Simulate(args) => floecast_sim::run_cli(args),
        Command::Healthcheck { url } => {
            if let Some(port) = cli.port {
                set_port(&mut config, port);
            }
            healthcheck(&config, url.as_deref())
        }
        Command::CheckConfig => {
            if let Some(port) = cli.port {
                set_port(&mut config, port);
            }
            match log.warnings() {
                0 => println!("config OK"),
                1 => println!("config OK, with the warning above"),
                n => println!("config OK, with the {n} warnings above"),
            }
            ExitCode::SUCCESS
        }
        Command::Serve => {
            if let Some(port) = cli.port {
                set_port(&mut config, port);
            }
            run(serve(
                config,
                Role::Server(cli.config),
                log.error_log.clone(),
            ))
        }
    }
}

/// Run `fut` on a multi-threaded runtime.
fn run(fut: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r.block_on(fut),
        Err(e) => {
            eprintln!("floecast: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--port`: the first listen socket moves there (its SHOUTcast port, if any, follows to
/// port + 1); other sockets stay where the config puts them.
fn set_port(config: &mut Config, port: u16) {
    match config.listen.first_mut() {
        Some(l) => l.port = port,
        None => config.listen.push(floecast::config::ListenSocket {
            port,
            bind_address: None,
            shoutcast_mount: None,
            tls: Default::default(),
        }),
    }
}

/// The tracing log on stderr, set up before the config is read. The filter starts at
/// `RUST_LOG` (else info) and follows the config's `level` once it is known, unless
/// `RUST_LOG` is set. Colours only when stderr is a terminal and `NO_COLOR` is unset.
struct Log {
    filter: Option<reload::Handle<EnvFilter, Registry>>,
    warnings: Arc<AtomicUsize>,
    /// Standard error, or the config's `error-log` file once it is known.
    error_log: ErrorLog,
}

impl Log {
    fn init(checking: bool) -> Log {
        let from_env = EnvFilter::try_from_default_env().ok();
        let env_set = from_env.is_some();
        let (filter, handle) =
            reload::Layer::new(from_env.unwrap_or_else(|| EnvFilter::new("info")));
        let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let warnings = Arc::new(AtomicUsize::new(0));
        let error_log = ErrorLog::default();
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(error_log.clone())
            .with_ansi(ansi)
            .with_target(false);
        // check-config prints findings, not a running server's log: no timestamps.
        let fmt = if checking {
            fmt.without_time().boxed()
        } else {
            fmt.boxed()
        };
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(fmt)
            .with(WarnCounter(warnings.clone()))
            .try_init();
        Log {
            filter: (!env_set).then_some(handle),
            warnings,
            error_log,
        }
    }

    fn set_level(&self, level: Option<&str>) {
        let (Some(handle), Some(level)) = (&self.filter, level) else {
            return;
        };
        match EnvFilter::try_new(level) {
            Ok(f) => {
                let _ = handle.reload(f);
            }
            Err(e) => tracing::warn!("logging level {level:?} not understood ({e}); using info"),
        }
    }

    /// Warnings and errors logged so far.
    fn warnings(&self) -> usize {
        self.warnings.load(Ordering::Relaxed)
    }
}

/// Counts WARN and ERROR events (for check-config's verdict).
struct WarnCounter(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for WarnCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() <= tracing::Level::WARN {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What `serve` runs: the server, or a stand-alone peer (and its P2PSP socket).
enum Role {
    Server(Option<PathBuf>),
    Peer(Box<PeerArgs>, TeamSocket),
}

struct PeerArgs {
    splitter: String,
    listen: u16,
    bind: Option<String>,
    udp_port: Option<u16>,
    mount: String,
    codec: Codec,
    auth: floecast::config::TeamAuth,
}

fn parse_splitter_key(s: &str) -> Result<[u8; 32], String> {
    floecast::p2psp::auth::parse_public_key(s)
        .ok_or_else(|| "must be an Ed25519 public key: 64 hex digits or base64".to_string())
}

async fn serve(config: Config, role: Role, error_log: ErrorLog) -> ExitCode {
    // A running server logs to its error-log file (check-config and the like do not).
    error_log.set_path(config.logging.error_log.as_deref());
    let path = match &role {
        Role::Server(p) => p.clone(),
        Role::Peer(..) => None,
    };
    let app = match App::start(config, path) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("floecast: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        "floecast {} listening on {:?}",
        env!("CARGO_PKG_VERSION"),
        app.http_addrs
    );
    if !app.icy_addrs.is_empty() {
        tracing::info!("SHOUTcast v1 source port(s): {:?}", app.icy_addrs);
    }
    let secrets = if std::io::stdout().is_terminal() {
        banner::Secrets::Show
    } else {
        banner::Secrets::Hide
    };
    let config = app.server.config();
    match &role {
        Role::Server(_) => {
            println!("{}", banner::server(&config, &app.http_addrs, secrets));
            let defaults = config.default_passwords();
            if !defaults.is_empty() {
                let msg = format!(
                    "DEFAULT PASSWORD IN USE ({}): anyone can take over your streams. Set them in a config file (see config/floecast.toml).",
                    defaults.join(", ")
                );
                eprintln!("\n  !!! WARNING: {msg}\n");
                tracing::warn!("{msg}");
            }
        }
        Role::Peer(p, team_socket) => {
            app.supervisor.pin_peer(
                &p.mount,
                floecast::team::peer::PeerMount {
                    splitter: p.splitter.clone(),
                    codec: p.codec,
                    local: *team_socket,
                    auth: p.auth.clone(),
                },
            );
            println!(
                "{}",
                banner::peer(&banner::PeerBanner {
                    splitter: &p.splitter,
                    mount: &p.mount,
                    http: &app.http_addrs,
                    team_socket: *team_socket,
                    accepts_sources: !config.auth.source_password.is_empty()
                        || config.mounts.iter().any(|m| m.password.is_some()),
                    admin: !config.auth.admin_password.is_empty(),
                })
            );
        }
    }
    drop(config);
    let pidfile = app.server.config().paths.pidfile.clone();
    if let Some(p) = &pidfile {
        if let Err(e) = std::fs::write(p, format!("{}\n", std::process::id())) {
            tracing::warn!("cannot write pidfile {}: {e}", p.display());
        }
    }

    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("floecast: cannot install SIGHUP handler: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("floecast: cannot install SIGTERM handler: {e}");
            return ExitCode::FAILURE;
        }
    };
    floecast::systemd::ready();
    loop {
        tokio::select! {
            _ = hup.recv() => {
                floecast::systemd::reloading();
                match app.reload() {
                    Ok(()) => tracing::info!("config reloaded"),
                    Err(e) => tracing::error!("config reload failed, keeping the running config: {e}"),
                }
                // Reopened on every HUP, as the access log is, for logrotate.
                error_log.set_path(app.server.config().logging.error_log.as_deref());
                floecast::systemd::ready();
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    floecast::systemd::stopping();
    tracing::info!("shutting down");
    app.shutdown(Duration::from_secs(5)).await;
    if let Some(p) = &pidfile {
        let _ = std::fs::remove_file(p);
    }
    ExitCode::SUCCESS
}

/// The config of a stand-alone peer: one listen socket on top of the given config (so
/// `--config` can still set passwords, limits and logging), and where its P2PSP sockets bind.
/// A peer's stream comes from its team: passwords still at the sample default are switched
/// off, so it accepts no sources (nor admin or relay logins) unless a config file sets them.
fn peer_config(mut config: Config, args: &PeerArgs) -> Result<(Config, TeamSocket), String> {
    if !args.mount.starts_with('/') {
        return Err(format!(
            "--mount must start with '/' (got {:?})",
            args.mount
        ));
    }
    if args
        .splitter
        .rsplit_once(':')
        .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
    {
        return Err(format!(
            "the splitter must be host:port (got {:?})",
            args.splitter
        ));
    }
    let ip = match &args.bind {
        Some(b) => Some(
            b.trim_matches(|c| c == '[' || c == ']')
                .parse::<IpAddr>()
                .map_err(|_| format!("--bind must be an IP address (got {b:?})"))?,
        ),
        None => None,
    };
    let team = TeamSocket {
        ip,
        port: args.udp_port.unwrap_or(0),
    };
    // A pinned port is checked now, so that a clash stops the peer with the address named
    // instead of failing every join in the background.
    if let Some(port) = args.udp_port {
        let addr = SocketAddr::new(ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), port);
        std::net::UdpSocket::bind(addr)
            .map_err(|e| format!("cannot bind the P2PSP UDP socket {addr}: {e}"))?;
    }
    config.listen = vec![floecast::config::ListenSocket {
        port: args.listen,
        bind_address: args.bind.clone(),
        shoutcast_mount: None,
        tls: Default::default(),
    }];
    for password in [
        &mut config.auth.source_password,
        &mut config.auth.relay_password,
        &mut config.auth.admin_password,
    ] {
        if password == floecast::config::DEFAULT_PASSWORD {
            password.clear();
        }
    }
    Ok((config, team))
}

/// `floecast healthcheck`: 0 when the server answers, 1 (with the reason) when it does not.
fn healthcheck(config: &Config, url: Option<&str>) -> ExitCode {
    let target = match floecast::healthcheck::target(config, url) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("floecast healthcheck: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("floecast healthcheck: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shown = format!("http://{}{}", target.authority(), target.path);
    match runtime.block_on(floecast::healthcheck::check(&target)) {
        Ok(()) => {
            println!("healthy: {shown}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("floecast healthcheck: {shown}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `floecast import-icecast FILE`: the converted TOML on stdout, exit 2 if it cannot be read
/// or the result would not load.
fn import_icecast(file: &std::path::Path) -> ExitCode {
    let origin = file.display().to_string();
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("floecast: cannot read {origin}: {e}");
            return ExitCode::from(2);
        }
    };
    let converted = match floecast::config::icecast_xml::to_toml(&text, &origin) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("floecast: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = converted.load() {
        eprintln!("floecast: the converted config does not load: {e}");
        return ExitCode::from(2);
    }
    print!("{}", converted.toml);
    for w in &converted.warnings {
        eprintln!("floecast: {origin}: {w}");
    }
    ExitCode::SUCCESS
}
