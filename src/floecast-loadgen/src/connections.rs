//! `--connections`: connection churn instead of held listeners. `--concurrency` workers each
//! loop for the duration: connect (with `--tls`, a full TLS handshake), send `HEAD` for a
//! mount, read the reply to its end, close. The report gives completed connections per
//! second and the server's CPU per connection, so a TLS run and a plain run of the same
//! server give the cost of a handshake as their ratio.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::{Instant, timeout_at};

use crate::listener::{self, ListenerConfig};
use crate::procfs;
use crate::report::Report;

/// What the workers counted.
#[derive(Default)]
struct Counts {
    completed: AtomicU64,
    failed: AtomicU64,
}

/// Runs the churn for `duration` and reports it.
pub async fn run(
    cfg: Arc<ListenerConfig>,
    workers: usize,
    duration: Duration,
    pid: Option<u32>,
    label: String,
) -> Report {
    let counts = Arc::new(Counts::default());
    let before = (procfs::sample(pid), procfs::sample(None));
    let start = Instant::now();
    let end = start + duration;
    let mut tasks = Vec::with_capacity(workers);
    for w in 0..workers {
        let (cfg, counts) = (cfg.clone(), counts.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while Instant::now() < end {
                match once(i, &cfg, end).await {
                    Some(()) => counts.completed.fetch_add(1, Ordering::Relaxed),
                    None => counts.failed.fetch_add(1, Ordering::Relaxed),
                };
                i += workers;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let after = (procfs::sample(pid), procfs::sample(None));
    let secs = start.elapsed().as_secs_f64();
    let completed = counts.completed.load(Ordering::Relaxed);
    let cpu = procfs::cpu_pct(before.0, after.0);
    Report::connections(
        label,
        cfg.tls.is_some(),
        workers,
        secs,
        completed,
        counts.failed.load(Ordering::Relaxed),
        cpu,
        procfs::cpu_pct(before.1, after.1),
    )
}

/// One connection: connect, `HEAD`, read to the end. `None` on any failure.
async fn once(i: usize, cfg: &ListenerConfig, end: Instant) -> Option<()> {
    let mut stream = listener::connect(i, cfg).await.ok()?;
    let mount = &cfg.mounts[i % cfg.mounts.len()];
    let req = format!(
        "HEAD {mount} HTTP/1.0\r\nHost: {}\r\nUser-Agent: floecast-loadgen\r\n\r\n",
        cfg.host_header
    );
    let deadline = (Instant::now() + cfg.head_timeout).max(end);
    timeout_at(deadline, stream.write_all(req.as_bytes()))
        .await
        .ok()?
        .ok()?;
    let mut buf = [0u8; 4096];
    let mut got = 0;
    loop {
        match timeout_at(deadline, stream.read(&mut buf)).await.ok()? {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    (got > 0 && buf.starts_with(b"HTTP/1.0 200")).then_some(())
}
