//! A native P2PSP team across NATs, for real: network namespaces the test creates itself.
//! A "public" segment (a bridge) holds the origin floecast (splitter, fed by ffmpeg) and a
//! public peer floecast; two private hosts each sit behind their own NAT namespace (iptables
//! MASQUERADE, and a home router's firewall: nothing new comes in from outside), each running
//! a peer floecast. curl inside each namespace fetches every peer mount's stream and ffmpeg
//! decodes it without an error; the origin's /api/status shows who is behind a NAT, who hears
//! whom (the NATed peers punched holes to each other) and who is relayed. One test shapes a
//! private host's uplink with the kernel's token bucket (`tc`) to half the stream: the
//! splitter reads it from the joiner's Train and gives it nothing to flood.
//!
//! Needs root (CAP_NET_ADMIN), `ip` (iproute2), `iptables` and `tc`; without them the tests
//! say so loudly, and fail under FLOECAST_REQUIRE_CLIENTS=1.

mod common;
mod interop_support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use interop_support::{MP3_ARGS, Proc, TempDir, have_all, run};

const BIN: &str = env!("CARGO_BIN_EXE_floecast");
const ORIGIN: &str = "10.77.0.1";
const PUBLIC_PEER: &str = "10.77.0.4";
/// The NATs' public addresses, and the private hosts behind them.
const NAT: [&str; 2] = ["10.77.0.2", "10.77.0.3"];
const PRIVATE: [&str; 2] = ["192.168.1.2", "192.168.2.2"];
const TEAM_PORT: u16 = 8001;

/// The namespaces of one test, deleted (with their links) on drop.
struct NatLab {
    prefix: String,
}

impl NatLab {
    /// `pub` (bridge, origin), `pp` (public peer), `natA`/`natB` (routers), `privA`/`privB`.
    /// With `firewall_a`, NAT A also drops every UDP datagram between its private host and
    /// anyone but the origin: no peer can reach that host, nor it them.
    fn new(tag: &str, firewall_a: bool) -> Result<NatLab, String> {
        let prefix = format!("fc{}{tag}", std::process::id() % 100_000);
        let lab = NatLab { prefix };
        for n in ["pub", "pp", "natA", "natB", "privA", "privB"] {
            sh(&["ip", "netns", "add", &lab.ns(n)])?;
            lab.exec(n, &["ip", "link", "set", "lo", "up"])?;
        }
        lab.exec("pub", &["ip", "link", "add", "br0", "type", "bridge"])?;
        lab.exec("pub", &["ip", "link", "set", "br0", "up"])?;
        lab.exec(
            "pub",
            &["ip", "addr", "add", &format!("{ORIGIN}/24"), "dev", "br0"],
        )?;
        // The public segment: the public peer's host and the NATs' outside interfaces.
        for (n, addr, k) in [
            ("pp", PUBLIC_PEER, "4"),
            ("natA", NAT[0], "2"),
            ("natB", NAT[1], "3"),
        ] {
            let (outside, port) = (format!("{}w{k}", lab.prefix), format!("{}b{k}", lab.prefix));
            sh(&[
                "ip", "link", "add", &outside, "type", "veth", "peer", "name", &port,
            ])?;
            sh(&["ip", "link", "set", &outside, "netns", &lab.ns(n)])?;
            sh(&["ip", "link", "set", &port, "netns", &lab.ns("pub")])?;
            lab.exec("pub", &["ip", "link", "set", &port, "master", "br0", "up"])?;
            lab.exec(n, &["ip", "link", "set", &outside, "name", "wan"])?;
            lab.exec(
                n,
                &["ip", "addr", "add", &format!("{addr}/24"), "dev", "wan"],
            )?;
            lab.exec(n, &["ip", "link", "set", "wan", "up"])?;
        }
        for (side, net) in [("A", "1"), ("B", "2")] {
            let (nat, host) = (format!("nat{side}"), format!("priv{side}"));
            let (inside, eth) = (
                format!("{}l{side}", lab.prefix),
                format!("{}h{side}", lab.prefix),
            );
            sh(&[
                "ip", "link", "add", &inside, "type", "veth", "peer", "name", &eth,
            ])?;
            sh(&["ip", "link", "set", &inside, "netns", &lab.ns(&nat)])?;
            sh(&["ip", "link", "set", &eth, "netns", &lab.ns(&host)])?;
            lab.exec(&nat, &["ip", "link", "set", &inside, "name", "lan"])?;
            lab.exec(
                &nat,
                &[
                    "ip",
                    "addr",
                    "add",
                    &format!("192.168.{net}.1/24"),
                    "dev",
                    "lan",
                ],
            )?;
            lab.exec(&nat, &["ip", "link", "set", "lan", "up"])?;
            lab.exec(&host, &["ip", "link", "set", &eth, "name", "eth0"])?;
            let me = format!("192.168.{net}.2/24");
            lab.exec(&host, &["ip", "addr", "add", &me, "dev", "eth0"])?;
            lab.exec(&host, &["ip", "link", "set", "eth0", "up"])?;
            let gw = format!("192.168.{net}.1");
            lab.exec(&host, &["ip", "route", "add", "default", "via", &gw])?;
            lab.exec(&nat, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
            let masq = [
                "iptables",
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-o",
                "wan",
                "-j",
            ];
            lab.exec(&nat, &[&masq[..], &["MASQUERADE"]].concat())?;
            // A home router: nothing new comes in from outside (which also keeps an early
            // stranger's datagram from taking the port a later outgoing mapping needs).
            lab.exec(
                &nat,
                &[
                    "iptables",
                    "-A",
                    "INPUT",
                    "-i",
                    "wan",
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "NEW",
                    "-j",
                    "DROP",
                ],
            )?;
        }
        if firewall_a {
            for dir in [["-i", "lan", "!", "-d"], ["-o", "lan", "!", "-s"]] {
                let rule = [
                    &["iptables", "-I", "FORWARD", "-p", "udp"][..],
                    &dir[..],
                    &[ORIGIN, "-j", "DROP"],
                ];
                lab.exec("natA", &rule.concat())?;
            }
        }
        Ok(lab)
    }

    fn ns(&self, n: &str) -> String {
        format!("{}{n}", self.prefix)
    }

    fn exec(&self, n: &str, args: &[&str]) -> Result<(), String> {
        let ns = self.ns(n);
        sh(&[&["ip", "netns", "exec", ns.as_str()][..], args].concat())
    }

    /// `program args…` inside namespace `n`.
    fn command(&self, n: &str, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(n), program]).args(args);
        c
    }

    /// A floecast in namespace `n`, HTTP on `ip`:8000, with `mounts`.
    fn floecast(&self, dir: &TempDir, n: &str, ip: &str, mounts: &str) -> Proc {
        let path = dir.join(&format!("{n}.toml"));
        let config = format!(
            "[[listen]]\nport = 8000\nbind-address = \"{ip}\"\n\n\
             [limits]\nsource-timeout = 30\n\n[[mount]]\nname = \"/nat.mp3\"\n{mounts}\n"
        );
        std::fs::write(&path, config).expect("write config");
        let mut cmd = self.command(n, BIN, &["--config", &path.to_string_lossy()]);
        cmd.env("RUST_LOG", "info,floecast::team=debug");
        Proc::spawn(n, cmd, dir.join(&format!("{n}.log")))
    }

    /// What curl, inside namespace `n`, gets from `url` within `secs` (empty on failure).
    async fn curl(&self, n: &str, url: &str, secs: u32, admin: bool) -> Vec<u8> {
        let t = secs.to_string();
        let mut args = vec!["-s", "--max-time", &t];
        if admin {
            args.extend(["-u", "admin:hackme"]);
        }
        args.push(url);
        run(
            self.command(n, "curl", &args),
            Duration::from_secs(u64::from(secs) + 10),
        )
        .await
        .stdout
    }

    /// The origin's `/api/status` (admin view): its team's members.
    async fn members(&self) -> Vec<serde_json::Value> {
        let url = format!("http://{ORIGIN}:8000/api/status");
        let body = self.curl("pub", &url, 3, true).await;
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        v["mounts"]
            .as_array()
            .and_then(|ms| ms.iter().find(|m| m["mount"] == "/nat.mp3"))
            .and_then(|m| m["p2psp"]["peers"].as_array().cloned())
            .unwrap_or_default()
    }
}

impl Drop for NatLab {
    fn drop(&mut self) {
        for n in ["privA", "privB", "natA", "natB", "pp", "pub"] {
            let _ = sh(&["ip", "netns", "del", &self.ns(n)]);
        }
    }
}

fn sh(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The lab, or a loud skip (a failure under FLOECAST_REQUIRE_CLIENTS=1).
fn lab(test: &str, tag: &str, firewall_a: bool) -> Option<NatLab> {
    if !have_all(test, &["ip", "iptables", "curl", "ffmpeg"]) {
        return None;
    }
    match NatLab::new(tag, firewall_a) {
        Ok(l) => Some(l),
        Err(e) => {
            common::skip(&format!(
                "{test}: CANNOT CREATE NETWORK NAMESPACES (needs root with CAP_NET_ADMIN, \
                 nf_tables NAT): {e}"
            ));
            None
        }
    }
}

/// The member the origin lists at `ip` (its NAT's address for a private host).
fn member<'a>(members: &'a [serde_json::Value], ip: &str) -> Option<&'a serde_json::Value> {
    members.iter().find(|m| {
        m["endpoint"]
            .as_str()
            .is_some_and(|e| e.starts_with(&format!("{ip}:")))
    })
}

/// The team: origin fed by ffmpeg, then the public peer, private peer A and private peer B,
/// each admitted before the next starts. Returns the processes (kept alive by the caller).
async fn start_team(lab: &NatLab, dir: &TempDir) -> Vec<Proc> {
    let mut procs = vec![lab.floecast(
        dir,
        "pub",
        ORIGIN,
        &format!(
            "p2psp = {{ role = \"splitter\", port = {TEAM_PORT}, bind-address = \"{ORIGIN}\" }}"
        ),
    )];
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The shared source command (60 s of tone), run inside the public namespace.
    let origin = format!("{ORIGIN}:8000").parse().expect("origin address");
    let source = interop_support::ffmpeg_source_for(origin, "/nat.mp3", MP3_ARGS, 60);
    let args: Vec<&str> = source.get_args().filter_map(|a| a.to_str()).collect();
    procs.push(Proc::spawn(
        "ffmpeg",
        lab.command("pub", "ffmpeg", &args),
        dir.join("ffmpeg.log"),
    ));
    let peer = format!("p2psp = {{ role = \"peer\", splitter = \"{ORIGIN}:{TEAM_PORT}\" }}");
    for (k, (n, ip)) in [
        ("pp", PUBLIC_PEER),
        ("privA", PRIVATE[0]),
        ("privB", PRIVATE[1]),
    ]
    .into_iter()
    .enumerate()
    {
        procs.push(lab.floecast(dir, n, ip, &peer));
        let deadline = Instant::now() + Duration::from_secs(15);
        while lab.members().await.len() < k + 1 {
            for p in &mut procs {
                p.assert_running();
            }
            assert!(
                Instant::now() < deadline,
                "{n} was not admitted; logs:\n{}",
                logs(&procs)
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    procs
}

fn logs(procs: &[Proc]) -> String {
    procs
        .iter()
        .map(|p| p.log_text())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// Wait until the origin's members satisfy `ok`, or fail with their status and the logs.
async fn wait_members(
    lab: &NatLab,
    procs: &[Proc],
    what: &str,
    ok: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let m = lab.members().await;
        if ok(&m) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: members {m:#?}\nlogs:\n{}",
            logs(procs)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// curl in each peer's namespace gets 5 s of its peer mount; ffmpeg decodes it cleanly.
async fn every_peer_mount_decodes(lab: &NatLab, dir: &Path, procs: &[Proc]) {
    for (n, ip) in [
        ("pp", PUBLIC_PEER),
        ("privA", PRIVATE[0]),
        ("privB", PRIVATE[1]),
    ] {
        let body = lab
            .curl(n, &format!("http://{ip}:8000/nat.mp3"), 5, false)
            .await;
        assert!(
            body.len() >= 60_000,
            "{n}: only {} bytes from its peer mount; logs:\n{}",
            body.len(),
            logs(procs)
        );
        let file = dir.join(format!("{n}.mp3"));
        std::fs::write(&file, &body).expect("write capture");
        let f = file.to_string_lossy();
        let out = run(
            interop_support::ffmpeg(&["-v", "error", "-i", &f, "-f", "null", "-"]),
            Duration::from_secs(30),
        )
        .await;
        assert!(
            out.success() && out.stderr.is_empty(),
            "{n}: ffmpeg did not decode its peer mount cleanly: {}",
            out.describe()
        );
    }
}

/// Two peers behind two different NATs and one public peer: the NATed peers punch holes to
/// each other (the splitter introduces them, both greet at once), everyone hears everyone
/// directly, nobody is relayed, and every peer mount decodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_behind_two_nats_punch_holes_and_decode() {
    let test = "peers_behind_two_nats_punch_holes_and_decode";
    let Some(lab) = lab(test, "h", false) else {
        return;
    };
    let dir = TempDir::new("team-nat-punch");
    let procs = start_team(&lab, &dir).await;
    let members = wait_members(&lab, &procs, "every member hears the two others", |m| {
        m.len() == 3 && m.iter().all(|p| p["neighbours"] == 2)
    })
    .await;
    for (ip, natted) in [(PUBLIC_PEER, false), (NAT[0], true), (NAT[1], true)] {
        let m = member(&members, ip).unwrap_or_else(|| panic!("no member at {ip}: {members:#?}"));
        assert_eq!(m["nat"], natted, "{ip}: {members:#?}");
        assert_eq!(m["relayed"], false, "{ip}: {members:#?}");
    }
    // Private peer A's own view: two neighbours heard, its NAT's mapping learnt (its status
    // is published every half second).
    let deadline = Instant::now() + Duration::from_secs(10);
    let v = loop {
        let body = lab
            .curl(
                "privA",
                &format!("http://{}:8000/api/status", PRIVATE[0]),
                3,
                true,
            )
            .await;
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if v["mounts"][0]["p2psp"]["neighbours_heard"] == 2 {
            break v;
        }
        assert!(Instant::now() < deadline, "{v:#}\nlogs:\n{}", logs(&procs));
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let team = &v["mounts"][0]["p2psp"];
    assert!(
        team["public_endpoint"]
            .as_str()
            .is_some_and(|e| e.starts_with(&format!("{}:", NAT[0]))),
        "{v:#}"
    );
    every_peer_mount_decodes(&lab, dir.path(), &procs).await;
}

/// The same team, but NAT A lets no datagram through between its host and any peer (only the
/// origin): its peer hears no neighbour, so the splitter relays the stream to it, shows it as
/// relayed, and it decodes like the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_peer_is_relayed_and_decodes() {
    let test = "an_unreachable_peer_is_relayed_and_decodes";
    let Some(lab) = lab(test, "r", true) else {
        return;
    };
    let dir = TempDir::new("team-nat-relay");
    let procs = start_team(&lab, &dir).await;
    let members = wait_members(&lab, &procs, "peer A relayed", |m| {
        member(m, NAT[0]).is_some_and(|a| a["relayed"] == true)
    })
    .await;
    assert_eq!(
        member(&members, NAT[0]).map(|a| a["neighbours"].clone()),
        Some(0.into())
    );
    for ip in [PUBLIC_PEER, NAT[1]] {
        let m = member(&members, ip).unwrap_or_else(|| panic!("no member at {ip}: {members:#?}"));
        assert_eq!(m["relayed"], false, "{ip}: {members:#?}");
    }
    // ... and counted in the origin's /metrics.
    let metrics = lab
        .curl("pub", &format!("http://{ORIGIN}:8000/metrics"), 3, false)
        .await;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("floecast_p2psp_relayed_peers{mount=\"/nat.mp3\"} 1"),
        "{metrics}"
    );
    // What it missed before it was relayed has left the mounts' bursts by now.
    tokio::time::sleep(Duration::from_secs(5)).await;
    every_peer_mount_decodes(&lab, dir.path(), &procs).await;
}

/// Private host B's uplink is shaped to 64 kbit/s, half the 128 kbit/s stream, with a 64 KiB
/// queue (the kernel's token bucket filter, as a home router's): its peer's Train reads that
/// on arrival at the splitter, which gives it no share from its join on and sends it no chunk
/// to flood, and tells it what it read (its pacer holds under that), while the unshaped peers
/// read fast and take full shares; the splitter tells the other peers so (their floods in two
/// levels would not make it a relay). Its peer mount still decodes: it only receives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_uplink_is_read_from_the_joiners_train_and_given_no_share() {
    let test = "a_slow_uplink_is_read_from_the_joiners_train_and_given_no_share";
    if !have_all(test, &["tc"]) {
        return;
    }
    let Some(lab) = lab(test, "s", false) else {
        return;
    };
    let shaped = [
        "tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "64kbit", "burst", "1600",
        "limit", "65536",
    ];
    if let Err(e) = lab.exec("privB", &shaped) {
        common::skip(&format!("{test}: CANNOT SHAPE AN UPLINK WITH tc: {e}"));
        return;
    }
    let dir = TempDir::new("team-nat-slow");
    let procs = start_team(&lab, &dir).await;
    let members = wait_members(&lab, &procs, "every member's Train read", |m| {
        m.len() == 3 && m.iter().all(|p| p["train_rate"].is_u64())
    })
    .await;
    let slow = member(&members, NAT[1]).unwrap_or_else(|| panic!("no member B: {members:#?}"));
    // 1200-byte datagrams (1242 on the wire) at 8,000 bytes/s.
    assert!(
        slow["train_rate"]
            .as_u64()
            .is_some_and(|r| (6_000..=10_000).contains(&r)),
        "{members:#?}"
    );
    assert_eq!(slow["share_period"], 0, "{members:#?}");
    // The splitter told B what it read, and B's pacer holds under it from then on (before its
    // own measurement, it would send at twice the stream into a queue 8 s deep).
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let url = format!("http://{}:8000/api/status", PRIVATE[1]);
        let body = lab.curl("privB", &url, 3, true).await;
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let p = &v["mounts"][0]["p2psp"];
        if let (Some(up), Some(pace)) = (p["uplink_rate"].as_u64(), p["pace_rate"].as_u64()) {
            assert!((6_000..=10_000).contains(&up), "{p:#}");
            assert!(pace <= up, "{p:#}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B's pacer never learnt its uplink: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for ip in [PUBLIC_PEER, NAT[0]] {
        let m = member(&members, ip).unwrap_or_else(|| panic!("no member at {ip}: {members:#?}"));
        assert!(
            m["train_rate"].as_u64().is_some_and(|r| r > 100_000),
            "{ip}: {members:#?}"
        );
        assert_eq!(m["share_period"], 1, "{ip}: {members:#?}");
    }
    // The splitter told the team: the two other peers know the two members that do not relay,
    // B (too slow, and behind a NAT) and A (behind a NAT: a relay there reaches only the
    // members whose greetings opened it).
    for (n, ip) in [("pp", PUBLIC_PEER), ("privA", PRIVATE[0])] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = format!("http://{ip}:8000/api/status");
            let body = lab.curl(n, &url, 3, true).await;
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            if v["mounts"][0]["p2psp"]["slow_members"] == 2 {
                break;
            }
            assert!(Instant::now() < deadline, "{n}: {v:#}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    // The splitter shows it: only the public peer relays.
    let members = lab.members().await;
    for (ip, relays) in [(PUBLIC_PEER, true), (NAT[0], false), (NAT[1], false)] {
        let m = member(&members, ip).unwrap_or_else(|| panic!("no member at {ip}: {members:#?}"));
        assert_eq!(m["relays"], relays, "{ip}: {members:#?}");
    }
    let url = format!("http://{ORIGIN}:8000/api/status");
    let v: serde_json::Value =
        serde_json::from_slice(&lab.curl("pub", &url, 3, true).await).unwrap_or_default();
    assert!(
        v["mounts"]
            .as_array()
            .is_some_and(|ms| ms.iter().any(|m| m["p2psp"]["relay_rule"] == "public")),
        "{v:#}"
    );
    every_peer_mount_decodes(&lab, dir.path(), &procs).await;
    let members = lab.members().await;
    let slow = member(&members, NAT[1]).unwrap_or_else(|| panic!("no member B: {members:#?}"));
    assert_eq!(
        slow["chunks_sent"], 0,
        "the splitter gave the slow peer chunks to flood: {members:#?}"
    );
}
