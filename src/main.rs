//! The `floecast` binary: parse the command line, load the config (or the embedded
//! icecast2-equivalent defaults), start the server and handle signals: SIGHUP reloads the
//! config without dropping anyone, SIGINT/SIGTERM shut down gracefully.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use floecast::app::App;
use floecast::config::Config;
use tracing_subscriber::EnvFilter;

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
        /// Address to listen on (default: all, IPv4 and IPv6).
        #[arg(long)]
        bind: Option<String>,
        /// Mount the stream is served on.
        #[arg(long, default_value = "/stream")]
        mount: String,
        /// Wire format of the team: `native` (floecast) or `gen-c` (the 2018 C++ reference).
        #[arg(long, default_value = "native", value_parser = ["native", "gen-c"])]
        codec: String,
    },
    /// Print the floecast TOML equivalent of an icecast2 `icecast.xml`, with comments on
    /// every option that does not carry over.
    ImportIcecast {
        /// Path to icecast.xml.
        file: PathBuf,
    },
    /// Run the deterministic P2PSP network simulator (no sockets, virtual time).
    Simulate(floecast::p2psp::sim::SimArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::ImportIcecast { file }) = &cli.command {
        return import_icecast(file);
    }
    let config = match &cli.config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("floecast: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(config.logging.level.as_deref().unwrap_or("info")))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();

    match cli.command.unwrap_or(Command::Serve) {
        Command::ImportIcecast { .. } => ExitCode::SUCCESS,
        Command::Peer {
            splitter,
            listen,
            bind,
            mount,
            codec,
        } => {
            let compat = codec == "gen-c";
            let config = match peer_config(config, &splitter, listen, bind, &mount, compat) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("floecast: {e}");
                    return ExitCode::from(2);
                }
            };
            println!("  Serving the team of {splitter} at http://localhost:{listen}{mount}");
            match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r.block_on(serve(config, None)),
                Err(e) => {
                    eprintln!("floecast: cannot start the runtime: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Simulate(args) => floecast::p2psp::sim::run_cli(args),
        Command::CheckConfig => {
            println!("config OK");
            ExitCode::SUCCESS
        }
        Command::Serve => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("floecast: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(serve(config, cli.config))
        }
    }
}

async fn serve(config: Config, path: Option<PathBuf>) -> ExitCode {
    let app = match App::start(config, path) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("floecast: cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    banner(&app);
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
    loop {
        tokio::select! {
            _ = hup.recv() => match app.reload() {
                Ok(()) => tracing::info!("config reloaded"),
                Err(e) => tracing::error!("config reload failed, keeping the running config: {e}"),
            },
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!("shutting down");
    app.shutdown(Duration::from_secs(5)).await;
    if let Some(p) = &pidfile {
        let _ = std::fs::remove_file(p);
    }
    ExitCode::SUCCESS
}

/// The config of a stand-alone peer: one listen socket and one peer mount, on top of the
/// given config (so `--config` can still set passwords, limits and logging).
fn peer_config(
    mut config: Config,
    splitter: &str,
    listen: u16,
    bind: Option<String>,
    mount: &str,
    compat: bool,
) -> Result<Config, String> {
    if !mount.starts_with('/') {
        return Err(format!("--mount must start with '/' (got {mount:?})"));
    }
    if splitter
        .rsplit_once(':')
        .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
    {
        return Err(format!("the splitter must be host:port (got {splitter:?})"));
    }
    config.listen = vec![floecast::config::ListenSocket {
        port: listen,
        bind_address: bind,
        shoutcast_mount: None,
    }];
    config.mounts.insert(
        0,
        floecast::config::MountConfig {
            name: mount.to_string(),
            p2psp: Some(floecast::config::P2pspConfig::Peer {
                splitter: splitter.to_string(),
                serve: None,
                compat,
            }),
            ..Default::default()
        },
    );
    Ok(config)
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

fn banner(app: &App) {
    let config = app.server.config();
    let port = app.server.port();
    let host = if config.hostname == "localhost" {
        "localhost".to_string()
    } else {
        config.hostname.clone()
    };
    tracing::info!(
        "floecast {} listening on {:?}",
        env!("CARGO_PKG_VERSION"),
        app.http_addrs
    );
    if !app.icy_addrs.is_empty() {
        tracing::info!("SHOUTcast v1 source port(s): {:?}", app.icy_addrs);
    }
    println!();
    println!("  floecast is up.");
    println!("  Status page:  http://{host}:{port}/");
    println!(
        "  Source URL:   icecast://source:{}@{host}:{port}/live",
        config.auth.source_password
    );
    println!(
        "                (e.g. ffmpeg -re -i in.mp3 -c copy -content_type audio/mpeg -f mp3 icecast://source:…@{host}:{port}/live)"
    );
    println!("  Listen URL:   http://{host}:{port}/live");
    println!(
        "  Admin:        user \"{}\", password \"{}\"",
        config.auth.admin_user, config.auth.admin_password
    );
    println!();
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
