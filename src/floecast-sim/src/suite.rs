//! The benchmark suite: the scenarios of BENCHMARKS.md's simulator table, and that table in
//! markdown. Builds strings only; the CLI runs the scenarios and prints.

use super::Report;

/// The suite's rows, up to teams of `max_peers`: a label and the exact `floecast simulate`
/// flags of each.
pub fn rows(max_peers: usize, seed: u64) -> Vec<(&'static str, String)> {
    let rows: Vec<(&'static str, usize, &'static str)> = vec![
        ("0% loss", 10, "--duration 60"),
        ("0% loss", 100, "--duration 60"),
        // Big teams run shorter: each peer's splitter round is N x 64 ms, and the flood is N²
        // datagrams per round.
        ("0% loss", 1000, "--duration 30"),
        ("0% loss", 2000, "--duration 30"),
        ("1% loss, LRS", 10, "--duration 60 --loss 1%"),
        (
            "1% loss, LRS, B=64",
            10,
            "--duration 60 --loss 1% --buffer 64",
        ),
        ("1% loss, LRS", 100, "--duration 60 --loss 1%"),
        ("1% loss, LRS", 1000, "--duration 30 --loss 1%"),
        (
            "1% loss, LRS, skip-after 6 s",
            100,
            "--duration 60 --loss 1% --skip-after-ms 6000 --tail 8",
        ),
        ("churn 30% abrupt @20 s", 10, "--duration 60 --churn 30%@20"),
        (
            "churn 30% abrupt @20 s",
            100,
            "--duration 60 --churn 30%@20",
        ),
        (
            "churn 30% abrupt @20 s, B=64",
            10,
            "--duration 60 --churn 30%@20 --buffer 64",
        ),
        (
            "8 KiB chunks, 1 Mbit/s",
            100,
            "--duration 60 --chunk-size 8192 --rate-kbps 1000",
        ),
        // Low rates, where Digests and control weigh most (issue 12 §2). The tail covers the
        // 4 s Digest delay at this rate (chunks from other peers play that much later).
        (
            "24 kbit/s speech, 1200 B chunks",
            10,
            "--duration 60 --rate-kbps 24 --chunk-size 1200 --tail 10",
        ),
        (
            "24 kbit/s speech, 1200 B chunks",
            100,
            "--duration 60 --rate-kbps 24 --chunk-size 1200 --tail 10",
        ),
        (
            "32 kbit/s speech, 1200 B chunks",
            100,
            "--duration 60 --rate-kbps 32 --chunk-size 1200 --tail 10",
        ),
        // Real uplinks (issue 12 §2): every peer's uplink at 3x and 1.25x the stream, with a
        // 64 KiB router queue.
        (
            "uplinks 3x stream, 64 KiB queues",
            10,
            "--duration 60 --bandwidth-kbps 384 --queue-kib 64",
        ),
        (
            "uplinks 3x stream, 64 KiB queues",
            100,
            "--duration 60 --bandwidth-kbps 384 --queue-kib 64",
        ),
        (
            "uplinks 1.25x stream, 64 KiB queues",
            10,
            "--duration 60 --bandwidth-kbps 160 --queue-kib 64",
        ),
        (
            "uplinks 1.25x stream, 64 KiB queues",
            100,
            "--duration 60 --bandwidth-kbps 160 --queue-kib 64",
        ),
        // Mixed capacities: half the peers at 0.5x the stream, half at 3x.
        (
            "half 0.5x, half 3x uplinks, 64 KiB queues",
            10,
            "--duration 60 --bandwidth-kbps 384 --slow-peers 50% --slow-bandwidth-kbps 64 \
             --queue-kib 64",
        ),
        (
            "half 0.5x, half 3x uplinks, 64 KiB queues",
            100,
            "--duration 60 --bandwidth-kbps 384 --slow-peers 50% --slow-bandwidth-kbps 64 \
             --queue-kib 64",
        ),
        // 2 Mbit/s video on uplinks at 1.25x.
        (
            "2 Mbit/s, uplinks 1.25x, 64 KiB queues",
            10,
            "--duration 60 --rate-kbps 2000 --bandwidth-kbps 2500 --queue-kib 64",
        ),
        (
            "2 Mbit/s, uplinks 1.25x, 64 KiB queues",
            100,
            "--duration 60 --rate-kbps 2000 --bandwidth-kbps 2500 --queue-kib 64",
        ),
    ];
    rows.into_iter()
        .filter(|r| r.1 <= max_peers)
        .map(|(l, n, f)| (l, format!("--peers {n} {f} --seed {seed}")))
        .collect()
}

/// The table's header and separator lines.
pub fn table_head() -> [&'static str; 2] {
    [
        "| scenario | N | B | sim s | window chunks | loss ratio | start-up p50 / p99 (ms) | \
         splitter egress ÷ stream | peer upload mean / max ÷ stream (chunks only) | \
         continuity | dup / chunk | LRS resends / requests | order err / corrupt | wall s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
}

/// The table line of one run.
pub fn table_row(label: &str, r: &Report) -> String {
    let m = &r.metrics;
    format!(
        "| {label} | {} | {} | {:.0} | {} | {:.3}% | {:.0} / {:.0} | {:.3} | {:.2} / {:.2} ({:.2}) | {} | {:.3} | {} / {} | {} / {} | {:.1} |",
        m.peers,
        r.config.effective_buffer(),
        r.config.duration.as_secs_f64(),
        m.window_chunks,
        m.loss_ratio * 100.0,
        m.startup_p50_ms,
        m.startup_p99_ms,
        m.splitter_egress_ratio,
        m.upload_mean,
        m.upload_max,
        m.upload_chunks_mean,
        m.continuity
            .map_or("–".to_string(), |c| format!("{:.2}%", c * 100.0)),
        m.duplicate_ratio,
        m.lrs_resends,
        m.requests,
        m.order_errors,
        m.corrupt,
        r.wall.as_secs_f64()
    )
}

/// The attack rows (issue 12 §3): polluters, sock-puppet monitors, a spoofer.
pub fn attack_rows(max_peers: usize, seed: u64) -> Vec<(&'static str, String)> {
    let rows: Vec<(&'static str, usize, &'static str)> = vec![
        ("1 polluter", 10, "--duration 60 --polluters 1"),
        ("10 polluters", 100, "--duration 60 --polluters 10"),
        (
            "3 sock-puppet monitors",
            10,
            "--duration 60 --monitors 3 --puppet-monitors",
        ),
        (
            "3 sock-puppet monitors",
            100,
            "--duration 60 --monitors 3 --puppet-monitors",
        ),
        ("spoofed goodbyes", 10, "--duration 60 --spoofer"),
        (
            "all three, 1% loss",
            100,
            "--duration 60 --loss 1% --monitors 3 --puppet-monitors --polluters 5 --spoofer",
        ),
    ];
    rows.into_iter()
        .filter(|r| r.1 <= max_peers)
        .map(|(l, n, f)| (l, format!("--peers {n} {f} --seed {seed}")))
        .collect()
}

/// The attack table's header and separator lines.
pub fn attack_table_head() -> [&'static str; 2] {
    [
        "| attack | N | forged chunks / false complaints / spoofed | rejected / unauthenticated | \
         polluters expelled | honest peers expelled | corrupt bytes delivered | loss ratio | \
         splitter egress ÷ stream |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
}

/// The attack table line of one run.
pub fn attack_table_row(label: &str, r: &Report) -> String {
    let m = &r.metrics;
    format!(
        "| {label} | {} | {} / {} / {} | {} / {} | {} | {} | {} | {:.3}% | {:.3} |",
        m.peers,
        m.forged_chunks,
        m.false_complaints,
        m.spoofed,
        m.rejected,
        m.unauthenticated,
        m.polluters_expelled,
        m.honest_expelled,
        m.corrupt_bytes,
        m.loss_ratio * 100.0,
        m.splitter_egress_ratio
    )
}

/// The NAT rows (issue 12 §4): peers behind filtering and symmetric NATs.
pub fn nat_rows(max_peers: usize, seed: u64) -> Vec<(&'static str, String)> {
    let rows: Vec<(&'static str, usize, &'static str)> = vec![
        ("30% behind NATs", 10, "--duration 60 --nat 30%"),
        ("30% behind NATs", 100, "--duration 60 --nat 30%"),
        (
            "30% NATs, 10% symmetric",
            100,
            "--duration 60 --nat 30% --symmetric-nat 10%",
        ),
        (
            "30% NATs, 10% symmetric, 1% loss",
            100,
            "--duration 60 --nat 30% --symmetric-nat 10% --loss 1%",
        ),
        ("50% symmetric", 10, "--duration 60 --symmetric-nat 50%"),
    ];
    rows.into_iter()
        .filter(|r| r.1 <= max_peers)
        .map(|(l, n, f)| (l, format!("--peers {n} {f} --seed {seed}")))
        .collect()
}

/// The NAT table's header and separator lines.
pub fn nat_table_head() -> [&'static str; 2] {
    [
        "| scenario | N | behind filtering / symmetric NATs | datagrams NATs dropped | \
         relayed by the splitter | loss ratio | splitter egress ÷ stream | \
         peer upload mean / max ÷ stream | requests |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
}

/// The NAT table line of one run.
pub fn nat_table_row(label: &str, r: &Report) -> String {
    let m = &r.metrics;
    format!(
        "| {label} | {} | {} / {} | {} | {} | {:.3}% | {:.3} | {:.2} / {:.2} | {} |",
        m.peers,
        m.natted,
        m.symmetric,
        m.nat_dropped,
        m.relayed,
        m.loss_ratio * 100.0,
        m.splitter_egress_ratio,
        m.upload_mean,
        m.upload_max,
        m.requests
    )
}

/// What follows the table: the command of every row, in row order.
pub fn commands(flags: &[String]) -> String {
    let mut s = String::from("\nCommands, in row order:\n\n```\n");
    for f in flags {
        s += &format!("floecast simulate {f}\n");
    }
    s += "```";
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_carry_the_seed_and_respect_the_size_cap() {
        let all = rows(2000, 1);
        assert_eq!(all.len(), 24);
        assert_eq!(all[0].1, "--peers 10 --duration 60 --seed 1");
        assert!(
            rows(10, 7)
                .iter()
                .all(|(_, f)| f.starts_with("--peers 10 ") && f.ends_with(" --seed 7"))
        );
        assert_eq!(
            commands(&["--peers 1".to_string()]),
            "\nCommands, in row order:\n\n```\nfloecast simulate --peers 1\n```"
        );
    }
}
