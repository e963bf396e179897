//! floecast-loadgen: the listener/source load generator behind `benches/compare.sh`.
//!
//! It feeds M mounts (`/bench0.mp3` …) with a synthetic 128 kbit/s MP3 source, connects N
//! listeners round robin over the mounts (in one burst, or at `--connect-rate` per second),
//! waits until every listener has either streamed its first byte or failed, then holds for
//! `--duration` seconds and reports: connected / failed / dropped, time to first byte
//! percentiles, per-listener delivered bitrate over the hold, aggregate throughput, and the
//! server's CPU and RSS sampled from `/proc/<--pid>`. See BENCHMARKS.md for the methodology.
//!
//! Listeners bind 127.0.0.1 ..= 127.0.0.N (`--local-addrs`) before connecting so that tens of
//! thousands of connections do not exhaust one address's ephemeral ports. The process needs
//! one fd per listener: raise the limit first (`ulimit -n 20000`).
//!
//! `--tls` makes the listeners connect over TLS (sources stay plain: floecast takes both on
//! one port); `--connections SECONDS` measures connection churn (handshakes) instead.

mod connections;
mod listener;
mod mp3;
mod procfs;
mod report;
mod source;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Parser;
use tokio::time::{Instant, sleep, sleep_until};

use listener::{ListenerConfig, Shared};
use mp3::FrameCycle;
use report::{Report, Snapshot};
use source::{Pace, SourceSpec, SourceStats};

/// Drives N listeners across M mounts of an Icecast-compatible server and reports delivery,
/// failures, time to first byte and the server's CPU and RSS.
#[derive(Parser, Debug)]
#[command(name = "floecast-loadgen", version)]
struct Args {
    /// Server address, host:port.
    #[arg(long, default_value = "127.0.0.1:8000")]
    server: String,
    /// Number of mounts: /bench0.mp3 … /bench{M-1}.mp3.
    #[arg(long, default_value_t = 1)]
    mounts: usize,
    /// Listeners, spread round robin over the mounts.
    #[arg(long, default_value_t = 100)]
    listeners: usize,
    /// New listener connections per second; 0 = all in one burst.
    #[arg(long, default_value_t = 0.0)]
    connect_rate: f64,
    /// Seconds to hold (and measure) after every listener connected or failed.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Source user name.
    #[arg(long, default_value = "source")]
    source_user: String,
    /// Source password.
    #[arg(long, default_value = "hackme")]
    source_password: String,
    /// Source pacing: real time at --bitrate, or as fast as TCP allows. Unpaced sources run in
    /// real time until every listener has connected, then flat out for 1 s before the hold.
    #[arg(long, value_enum, default_value_t = Pace::Realtime)]
    pace: Pace,
    /// Source bitrate in kbit/s (an MPEG-1 Layer III bitrate).
    #[arg(long, default_value_t = 128)]
    bitrate: u32,
    /// Seconds of audio a real-time source sends at once on connect (fills the burst buffer).
    #[arg(long, default_value_t = 4.0)]
    preroll: f64,
    /// Seconds to wait after the sources connected before the first listener.
    #[arg(long, default_value_t = 1.0)]
    settle: f64,
    /// Server pid, for CPU (utime+stime) and RSS (VmRSS) from /proc.
    #[arg(long)]
    pid: Option<u32>,
    /// Print the report as one flat JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Do not start sources (the mounts are fed elsewhere).
    #[arg(long)]
    no_source: bool,
    /// Bind listeners to 127.0.0.1 ..= 127.0.0.N round robin; 0 = let the kernel choose.
    #[arg(long, default_value_t = 16)]
    local_addrs: u8,
    /// Read buffer per listener, bytes.
    #[arg(long, default_value_t = 16384)]
    read_buf: usize,
    /// Listener connect timeout, seconds.
    #[arg(long, default_value_t = 10.0)]
    connect_timeout: f64,
    /// Listener timeout for the response head and first body byte after connecting, seconds.
    #[arg(long, default_value_t = 15.0)]
    head_timeout: f64,
    /// Runtime worker threads; 1 = tokio current-thread runtime (best when pinned to a core).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Free-form label copied into the report.
    #[arg(long, default_value = "")]
    label: String,
    /// Listeners connect over TLS (any certificate accepted; handshake signatures checked).
    #[arg(long)]
    tls: bool,
    /// Server name sent in the TLS handshake (SNI).
    #[arg(long, default_value = "localhost")]
    tls_name: String,
    /// Measure connection churn for this many seconds instead of holding listeners: workers
    /// connect, send HEAD for a mount, read the reply, close, again (see --concurrency).
    #[arg(long)]
    connections: Option<f64>,
    /// Parallel workers of --connections.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

fn main() {
    let args = Args::parse();
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("floecast-loadgen: cannot start the runtime: {e}");
            std::process::exit(2);
        }
    };
    let code = match runtime.block_on(run(&args)) {
        Ok(report) => {
            if args.json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_text());
            }
            0
        }
        Err(e) => {
            eprintln!("floecast-loadgen: {e}");
            1
        }
    };
    // Skip tearing down tens of thousands of tasks one by one.
    std::process::exit(code);
}

/// Unpaced sources run this long before the hold is measured.
const UNPACED_WARMUP: Duration = Duration::from_secs(1);

fn secs(s: f64, name: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("--{name} {s}: not a valid duration"))
}

async fn run(args: &Args) -> Result<Report, String> {
    if args.mounts == 0 {
        return Err("--mounts must be at least 1".into());
    }
    let duration = secs(args.duration, "duration")?;
    let connect_timeout = secs(args.connect_timeout, "connect-timeout")?;
    let head_timeout = secs(args.head_timeout, "head-timeout")?;
    let settle = secs(args.settle, "settle")?;
    if !(args.connect_rate >= 0.0 && args.connect_rate.is_finite()) {
        return Err(format!(
            "--connect-rate {}: must be >= 0",
            args.connect_rate
        ));
    }
    let server: SocketAddr = tokio::net::lookup_host(&args.server)
        .await
        .map_err(|e| format!("--server {}: {e}", args.server))?
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| format!("--server {}: no IPv4 address", args.server))?;
    // Binding 127.0.0.x only makes sense when talking to loopback.
    let local_addrs = if server.ip().is_loopback() {
        args.local_addrs
    } else {
        0
    };
    let mounts: Vec<String> = (0..args.mounts).map(|k| format!("/bench{k}.mp3")).collect();
    let cycle = Arc::new(FrameCycle::new(args.bitrate)?);

    let idle = procfs::sample(args.pid);
    if args.pid.is_some() && idle.is_none() {
        return Err(format!("--pid {:?}: cannot read /proc", args.pid));
    }

    // Sources.
    let mut source_stats = Vec::new();
    let unleash = Arc::new(AtomicBool::new(false));
    if !args.no_source {
        for mount in &mounts {
            let spec = SourceSpec {
                server,
                host_header: args.server.clone(),
                mount: mount.clone(),
                user: args.source_user.clone(),
                password: args.source_password.clone(),
                bitrate_kbps: args.bitrate,
            };
            let stream = source::connect(&spec).await?;
            let stats = Arc::new(SourceStats::default());
            tokio::spawn(source::run(
                stream,
                cycle.clone(),
                args.pace,
                args.preroll,
                stats.clone(),
                unleash.clone(),
            ));
            source_stats.push(stats);
        }
        sleep(settle).await;
    }

    // Listeners.
    let n = args.listeners;
    let shared = Arc::new(Shared::new(n));
    let cfg = Arc::new(ListenerConfig {
        server,
        host_header: args.server.clone(),
        mounts,
        local_addrs,
        read_buf: args.read_buf,
        connect_timeout,
        head_timeout,
        tls: if args.tls {
            Some(tls::Client::new(&args.tls_name)?)
        } else {
            None
        },
    });
    if let Some(s) = args.connections {
        let hold = secs(s, "connections")?;
        let workers = args.concurrency.max(1);
        return Ok(connections::run(cfg, workers, hold, args.pid, args.label.clone()).await);
    }
    let before = Snapshot::take(args.pid, &shared, &source_stats);
    let start = Instant::now();
    let rate = args.connect_rate;
    {
        let (cfg, shared) = (cfg.clone(), shared.clone());
        tokio::spawn(async move {
            for i in 0..n {
                if rate > 0.0 {
                    sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
                } else if i % 512 == 511 {
                    // Let the first connects go out while the rest are spawned.
                    tokio::task::yield_now().await;
                }
                tokio::spawn(listener::run(i, cfg.clone(), shared.clone()));
            }
        });
    }
    // Every listener resolves within its own timeouts; this bound is only a safety net.
    let ramp = if rate > 0.0 { n as f64 / rate } else { 0.0 };
    let limit = start
        + Duration::from_secs_f64(ramp)
        + connect_timeout
        + head_timeout
        + Duration::from_secs(5);
    while shared.resolved.load(Ordering::Relaxed) < n && Instant::now() < limit {
        sleep(Duration::from_millis(50)).await;
    }
    if args.pace == Pace::Unpaced && !source_stats.is_empty() {
        // Let the sources run flat out for a moment before measuring the steady state.
        unleash.store(true, Ordering::Relaxed);
        sleep(UNPACED_WARMUP).await;
    }
    let hold_start = Snapshot::take(args.pid, &shared, &source_stats);
    sleep(duration).await;
    let hold_end = Snapshot::take(args.pid, &shared, &source_stats);

    let sources_failed = source_stats
        .iter()
        .filter(|s| s.failed.load(Ordering::Relaxed))
        .count();
    Ok(Report::build(
        report::RunInfo {
            label: args.label.clone(),
            server: args.server.clone(),
            mounts: args.mounts,
            listeners: n,
            connect_rate: rate,
            pace: args.pace,
            bitrate_kbps: args.bitrate,
            sources: source_stats.len(),
            sources_failed,
        },
        idle,
        &shared,
        &before,
        &hold_start,
        &hold_end,
    ))
}
