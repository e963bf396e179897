//! `floecast simulate`: its options (clap), one run printed as text or JSON, or the benchmark
//! suite printed as a markdown table. The only part of the simulator that reads the wall clock
//! or prints.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::{Arrivals, Churn, MAX_SIM_PEERS, Report, SimConfig, SimError, simulate, suite};

/// `floecast simulate` options.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Team size.
    #[arg(long, default_value_t = 10)]
    pub peers: usize,
    /// Datagram loss probability on every link: 0.01 or 1%.
    #[arg(long, default_value = "0", value_parser = parse_fraction)]
    pub loss: f64,
    /// One-way link latency.
    #[arg(long = "latency-ms", default_value_t = 20.0)]
    pub latency_ms: f64,
    /// Extra one-way latency, uniform in 0..=J.
    #[arg(long = "jitter-ms", default_value_t = 5.0)]
    pub jitter_ms: f64,
    /// Each peer's uplink (0 = unlimited).
    #[arg(long = "bandwidth-kbps", default_value_t = 0)]
    pub bandwidth_kbps: u64,
    /// The splitter's uplink (0 = unlimited).
    #[arg(long = "splitter-bandwidth-kbps", default_value_t = 0)]
    pub splitter_bandwidth_kbps: u64,
    /// Uplink queue cap in KiB, beyond which datagrams are dropped (0 = no cap).
    #[arg(long = "queue-kib", default_value_t = 0)]
    pub queue_kib: u64,
    /// Simulated seconds.
    #[arg(long, default_value_t = 60.0)]
    pub duration: f64,
    /// FRAC@T[:polite]: that fraction of the non-monitor peers leaves at T seconds,
    /// abruptly unless `:polite` (e.g. `30%@20`). Repeatable.
    #[arg(long, value_parser = parse_churn)]
    pub churn: Vec<Churn>,
    /// Chunk payload bytes.
    #[arg(long = "chunk-size", default_value_t = 1024)]
    pub chunk_size: usize,
    /// Stream rate.
    #[arg(long = "rate-kbps", default_value_t = 128)]
    pub rate_kbps: u64,
    /// Buffer in chunks (0 = max(256, next power of two ≥ 2N)).
    #[arg(long, default_value_t = 0)]
    pub buffer: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 1)]
    pub monitors: usize,
    #[arg(long = "no-lrs")]
    pub no_lrs: bool,
    #[arg(long = "no-acs")]
    pub no_acs: bool,
    /// Poisson arrivals at this many per second (default: a flash crowd).
    #[arg(long)]
    pub poisson: Option<f64>,
    /// Flash crowd: spread the arrivals over this many seconds.
    #[arg(long, default_value_t = 1.0)]
    pub spread: f64,
    /// Peers' skip_after (how long a missing head slot may block playout).
    #[arg(long = "skip-after-ms", default_value_t = 2000)]
    pub skip_after_ms: u64,
    /// Peers' first pacing rate, in streams (0 = the peers' default).
    #[arg(long = "pace-start", default_value_t = 0.0)]
    pub pace_start: f64,
    /// Seconds the source streams before the first arrival (fills the join burst).
    #[arg(long, default_value_t = 2.0)]
    pub preroll: f64,
    /// The measurement window starts this many seconds after the last arrival...
    #[arg(long, default_value_t = 3.0)]
    pub warmup: f64,
    /// ... and ends this many seconds before the end of the run.
    #[arg(long, default_value_t = 3.0)]
    pub tail: f64,
    /// Timer granularity: deadlines are rounded up to a multiple of this.
    #[arg(long = "timer-ms", default_value_t = 1.0)]
    pub timer_ms: f64,
    /// The peers' neighbour cap (0 = the PeerConfig default, 1024).
    #[arg(long = "max-neighbours", default_value_t = 0)]
    pub max_neighbours: usize,
    /// The team size from which peers flood in two levels, through √N relays (0 = the
    /// default, 256).
    #[arg(long = "relay-from", default_value_t = 0)]
    pub relay_from: usize,
    /// Attack model: the last N peers are polluters (relay, and forge chunks ahead).
    #[arg(long, default_value_t = 0)]
    pub polluters: usize,
    /// Attack model: the monitors are sock-puppets complaining about every chunk.
    #[arg(long = "puppet-monitors")]
    pub puppet_monitors: bool,
    /// Attack model: an outsider spoofs goodbyes from the splitter's and peers' addresses.
    #[arg(long)]
    pub spoofer: bool,
    /// NAT model: this fraction of the peers sits behind filtering NATs (home routers: a
    /// datagram gets in only from whom the peer sent to), e.g. 30%.
    #[arg(long, default_value = "0", value_parser = parse_fraction)]
    pub nat: f64,
    /// NAT model: this fraction sits behind symmetric NATs (a new port per destination).
    #[arg(long = "symmetric-nat", default_value = "0", value_parser = parse_fraction)]
    pub symmetric_nat: f64,
    /// Mixed uplinks: this fraction of the peers has `--slow-bandwidth-kbps` instead of
    /// `--bandwidth-kbps`, e.g. 50%.
    #[arg(long = "slow-peers", default_value = "0", value_parser = parse_fraction)]
    pub slow_peers: f64,
    #[arg(long = "slow-bandwidth-kbps", default_value_t = 0)]
    pub slow_bandwidth_kbps: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Run the benchmark suite and print a markdown table.
    #[arg(long)]
    pub suite: bool,
    /// With --suite: skip teams larger than this.
    #[arg(long = "suite-max-peers", default_value_t = 2000)]
    pub suite_max_peers: usize,
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    let (num, scale) = match s.strip_suffix('%') {
        Some(n) => (n, 0.01),
        None => (s, 1.0),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("not a number: {s}"))?;
    let v = v * scale;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s} is not in 0..=1 (or 0%..=100%)"))
    }
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("not a number: {s}"))?;
    if v.is_finite() && (0.0..=86_400.0).contains(&v) {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!("{s} is not a time in 0..=86400 s"))
    }
}

fn parse_churn(s: &str) -> Result<Churn, String> {
    let (spec, polite) = match s.split_once(':') {
        Some((a, "polite")) => (a, true),
        Some((a, "abrupt")) => (a, false),
        Some((_, k)) => return Err(format!("unknown churn kind {k:?} (polite or abrupt)")),
        None => (s, false),
    };
    let (f, t) = spec
        .split_once('@')
        .ok_or_else(|| format!("churn must be FRAC@T[:polite], got {s:?}"))?;
    Ok(Churn {
        at: parse_secs(t)?,
        fraction: parse_fraction(f)?,
        polite,
    })
}

impl SimArgs {
    /// The simulator config these options describe.
    pub fn to_config(&self) -> Result<SimConfig, String> {
        let ms = |v: f64, what: &str| -> Result<Duration, String> {
            if v.is_finite() && (0.0..=60_000.0).contains(&v) {
                Ok(Duration::from_secs_f64(v / 1000.0))
            } else {
                Err(format!("{what} must be 0..=60000 ms"))
            }
        };
        let arrivals = match self.poisson {
            Some(r) => Arrivals::Poisson { per_sec: r },
            None => Arrivals::FlashCrowd {
                spread: parse_secs(&self.spread.to_string())?,
            },
        };
        Ok(SimConfig {
            peers: self.peers,
            monitors: self.monitors,
            loss: self.loss,
            latency: ms(self.latency_ms, "latency")?,
            jitter: ms(self.jitter_ms, "jitter")?,
            peer_uplink_bps: self.bandwidth_kbps.saturating_mul(1000),
            splitter_uplink_bps: self.splitter_bandwidth_kbps.saturating_mul(1000),
            uplink_queue_bytes: self.queue_kib.saturating_mul(1024),
            duration: parse_secs(&self.duration.to_string())?,
            chunk_size: self.chunk_size,
            rate_bps: self.rate_kbps.saturating_mul(1000),
            buffer: self.buffer,
            lrs: !self.no_lrs,
            acs: !self.no_acs,
            skip_after: Duration::from_millis(self.skip_after_ms.min(3_600_000)),
            pace_start: self.pace_start,
            timer_granularity: ms(self.timer_ms, "timer granularity")?,
            preroll: parse_secs(&self.preroll.to_string())?,
            warmup: parse_secs(&self.warmup.to_string())?,
            tail: parse_secs(&self.tail.to_string())?,
            churn: self.churn.clone(),
            seed: self.seed,
            arrivals,
            max_neighbours: self.max_neighbours.min(MAX_SIM_PEERS),
            relay_from: self.relay_from,
            attack: crate::config::Attack {
                polluters: self.polluters,
                puppet_monitors: self.puppet_monitors,
                spoofer: self.spoofer,
            },
            nat: self.nat,
            symmetric_nat: self.symmetric_nat,
            slow_peers: self.slow_peers,
            slow_uplink_bps: self.slow_bandwidth_kbps * 1000,
        })
    }
}

/// `floecast simulate`: one run (text or JSON) or, with `--suite`, the benchmark table.
pub fn run_cli(args: SimArgs) -> ExitCode {
    if args.suite {
        return run_suite(args.suite_max_peers, args.seed);
    }
    let cfg = match args.to_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("floecast simulate: {e}");
            return ExitCode::from(2);
        }
    };
    let r = match timed(cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("floecast simulate: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !args.json {
        print!("{}", r.to_text());
        return ExitCode::SUCCESS;
    }
    match r.to_json() {
        Ok(j) => {
            println!("{j}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("floecast simulate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One run, with the wall time it took.
fn timed(cfg: SimConfig) -> Result<Report, SimError> {
    let started = Instant::now();
    let metrics = simulate(&cfg, started)?;
    Ok(Report {
        config: cfg,
        metrics,
        wall: started.elapsed(),
    })
}

/// The benchmark suite: every row run in turn and printed as it finishes, then the commands;
/// then the attack table (issue 12 §3) and the NAT table (§4) the same way.
fn run_suite(max_peers: usize, seed: u64) -> ExitCode {
    let a = run_table(
        &suite::table_head(),
        suite::rows(max_peers, seed),
        suite::table_row,
    );
    println!();
    let b = run_table(
        &suite::attack_table_head(),
        suite::attack_rows(max_peers, seed),
        suite::attack_table_row,
    );
    println!();
    let c = run_table(
        &suite::nat_table_head(),
        suite::nat_rows(max_peers, seed),
        suite::nat_table_row,
    );
    if a && b && c {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Run `rows` and print them as a table; false when one failed.
fn run_table(
    head: &[&str; 2],
    rows: Vec<(&'static str, String)>,
    row: fn(&str, &Report) -> String,
) -> bool {
    use clap::Parser;
    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        a: SimArgs,
    }
    for line in head {
        println!("{line}");
    }
    let mut cmds = Vec::new();
    let mut failed = false;
    for (label, flags) in rows {
        let argv = std::iter::once("simulate").chain(flags.split_whitespace());
        let cfg = match Wrap::try_parse_from(argv)
            .map_err(|e| e.to_string())
            .and_then(|w| w.a.to_config())
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("suite: {flags}: {e}");
                failed = true;
                continue;
            }
        };
        eprintln!("suite: running {label}: {flags}");
        let r = match timed(cfg) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("suite: {flags}: {e}");
                failed = true;
                continue;
            }
        };
        println!("{}", row(label, &r));
        cmds.push(flags);
    }
    println!("{}", suite::commands(&cmds));
    !failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(parse_fraction("1%"), Ok(0.01));
        assert_eq!(parse_fraction("0.25"), Ok(0.25));
        assert!(parse_fraction("150%").is_err() && parse_fraction("x").is_err());
        assert_eq!(
            parse_churn("30%@20:polite"),
            Ok(Churn {
                at: Duration::from_secs(20),
                fraction: 0.3,
                polite: true
            })
        );
        assert!(!parse_churn("0.3@1.5").unwrap().polite);
        for bad in ["30%", "30%@x", "30%@20:rude", "@", "1@-1", "1@nan"] {
            assert!(parse_churn(bad).is_err(), "{bad}");
        }
    }
}
