//! Attacks on a native P2PSP team, run for real (issue 12 §3): `floecast` processes on
//! loopback (a splitter mount fed by a SOURCE client, peer mounts joined to it), and the test
//! as the adversary over raw TCP and UDP (a raw IP socket to spoof the splitter's address).
//! Every peer mount's HTTP listener must receive exactly the source's bytes (a contiguous run
//! of what the source sent, byte for byte), and no honest peer may be expelled.
//!
//! The adversaries that join the team run the library's own peer machine (so they relay like
//! any member and the team stays whole) behind a wrapper that seals what they send itself, so
//! that it can slip forged messages in under their genuine keys.

mod common;
mod interop_support;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{SOURCE_AUTH, free_tcp_udp_port, udp_tcp_pair};
use floecast::p2psp::auth::{self, Key};
use floecast::p2psp::peer::{Peer, PeerConfig};
use floecast::p2psp::wire::{self, FrameDecoder, JoinReply, JoinRequest, Message, Packet};
use floecast::p2psp::{ChunkNo, PeerId, PeerMachine, Role};
use interop_support::{Proc, TempDir, find};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

const BIN: &str = env!("CARGO_BIN_EXE_floecast");
/// How long each attack runs while the listeners capture.
const ATTACK: Duration = Duration::from_secs(8);

fn server(dir: &TempDir, name: &str, port: u16, mounts: &str) -> Proc {
    let path = dir.join(&format!("{name}.toml"));
    let config = format!(
        "[[listen]]\nport = {port}\nbind-address = \"127.0.0.1\"\n\n\
         [limits]\nsource-timeout = 30\n\n{mounts}"
    );
    std::fs::write(&path, config).expect("write config");
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(&path)
        .env("RUST_LOG", "info,floecast::team=debug");
    Proc::spawn(name, cmd, dir.join(&format!("{name}.log")))
}

/// One MP3 frame (128 kbit/s, 44.1 kHz, 417 bytes) whose payload spells `i` and never holds a
/// 0xFF byte, so every frame of the stream is unique and the sync word appears only in headers.
fn frame(i: u32) -> Vec<u8> {
    let mut f = vec![0u8; 417];
    f[..4].copy_from_slice(&[0xFF, 0xFB, 0x90, 0x00]);
    for (j, b) in f[4..].iter_mut().enumerate() {
        *b = if j < 4 {
            ((i >> (7 * j)) & 0x7F) as u8
        } else {
            ((j as u32 ^ i) & 0x7F) as u8
        };
    }
    f
}

/// The splitter process with a live source, and the peer mounts of its team.
struct Team {
    dir: TempDir,
    splitter: Proc,
    peers: Vec<Proc>,
    http: u16,
    peer_http: Vec<u16>,
    team_port: u16,
    /// Everything the source sent, in order.
    sent: Arc<Mutex<Vec<u8>>>,
    feeder: tokio::task::JoinHandle<()>,
}

impl Team {
    /// The splitter, fed in real time; peers join with [`Team::add_peer`].
    async fn start(tag: &str, extra: &str) -> Team {
        let dir = TempDir::new(tag);
        let (http, team_port) = (free_tcp_udp_port(), free_tcp_udp_port());
        let splitter = server(
            &dir,
            "S",
            http,
            &format!(
                "[[mount]]\nname = \"/team.mp3\"\n\
                 p2psp = {{ role = \"splitter\", port = {team_port}, bind-address = \"127.0.0.1\", \
                 max-chunk = 1400{extra} }}\n"
            ),
        );
        let addr: SocketAddr = format!("127.0.0.1:{http}").parse().expect("addr");
        let mut src = None;
        for _ in 0..100 {
            if let Ok(s) = TcpStream::connect(addr).await {
                src = Some(s);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut src = src.expect("splitter process listens");
        let req = format!(
            "SOURCE /team.mp3 HTTP/1.0\r\nAuthorization: Basic {SOURCE_AUTH}\r\n\
             Content-Type: audio/mpeg\r\n\r\n"
        );
        src.write_all(req.as_bytes()).await.expect("source request");
        let mut reply = [0u8; 19];
        src.read_exact(&mut reply).await.expect("source reply");
        assert_eq!(&reply, b"HTTP/1.0 200 OK\r\n\r\n");
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = sent.clone();
        // 128 kbit/s in real time: about 38 frames a second, four every 100 ms.
        let feeder = tokio::spawn(async move {
            let mut i = 0u32;
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                let mut batch = Vec::new();
                for _ in 0..4 {
                    batch.extend_from_slice(&frame(i));
                    i += 1;
                }
                log.lock().expect("log").extend_from_slice(&batch);
                if src.write_all(&batch).await.is_err() {
                    return;
                }
            }
        });
        Team {
            dir,
            splitter,
            peers: Vec::new(),
            http,
            peer_http: Vec::new(),
            team_port,
            sent,
            feeder,
        }
    }

    fn splitter_addr(&self) -> SocketAddr {
        format!("127.0.0.1:{}", self.team_port)
            .parse()
            .expect("addr")
    }

    /// A peer mount process joins; returns its index once its mount streams.
    async fn add_peer(&mut self, extra: &str) -> usize {
        let k = self.peers.len();
        let http = free_tcp_udp_port();
        let p = server(
            &self.dir,
            &format!("P{k}"),
            http,
            &format!(
                "[[mount]]\nname = \"/p.mp3\"\n\
                 p2psp = {{ role = \"peer\", splitter = \"127.0.0.1:{}\"{extra} }}\n",
                self.team_port
            ),
        );
        self.peers.push(p);
        self.peer_http.push(http);
        self.wait_streaming(k, Duration::from_secs(15)).await;
        k
    }

    async fn wait_streaming(&mut self, k: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            self.splitter.assert_running();
            self.peers[k].assert_running();
            let got = capture(self.peer_http[k], Duration::from_millis(600)).await;
            if got.len() > 2000 {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "peer {k} does not stream; logs:\n{}\n---\n{}",
                    self.splitter.log_text(),
                    self.peers[k].log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Listeners on every peer mount for `d`, all at once.
    async fn listen_all(&self, d: Duration) -> Vec<tokio::task::JoinHandle<Vec<u8>>> {
        self.peer_http
            .iter()
            .map(|port| tokio::spawn(capture(*port, d)))
            .collect()
    }

    /// What a listener got is a contiguous run of what the source sent, and long enough to
    /// have spanned the attack.
    fn assert_identical(&self, got: &[u8], what: &str, min: usize) {
        let sent = self.sent.lock().expect("log").clone();
        assert!(
            got.len() >= min,
            "{what}: only {} bytes reached the listener (want ≥ {min}); logs:\n{}",
            got.len(),
            self.peers
                .iter()
                .map(|p| p.log_text())
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        assert_eq!(&got[..2], &[0xFF, 0xFB], "{what}: starts on a frame");
        let at = find(&sent, &got[..417])
            .unwrap_or_else(|| panic!("{what}: the first frame is not the source's"));
        let want = &sent[at..(at + got.len()).min(sent.len())];
        common::assert_bytes(got, want, what);
    }

    /// The splitter's `/api/status` p2psp object of the team mount.
    async fn splitter_status(&self) -> serde_json::Value {
        status(self.http, "/team.mp3").await
    }

    async fn stop(mut self) {
        self.feeder.abort();
        self.splitter.assert_running();
        for p in &mut self.peers {
            p.assert_running();
        }
    }
}

/// The raw answer of the server on `port` to `request`.
async fn ask(port: u16, request: &[u8]) -> Vec<u8> {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    common::exchange(addr, request, Duration::from_secs(3)).await
}

/// `/api/status` of the server on `port`: the `p2psp` object of `mount`.
async fn status(port: u16, mount: &str) -> serde_json::Value {
    let raw = ask(
        port,
        b"GET /api/status HTTP/1.0\r\nAuthorization: Basic YWRtaW46aGFja21l\r\n\r\n",
    )
    .await;
    let body = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| &raw[p + 4..])
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    v["mounts"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["mount"] == mount))
        .map(|m| m["p2psp"].clone())
        .unwrap_or_default()
}

/// The body a listener of `/p.mp3` on `port` receives in `d` (empty when it cannot connect).
async fn capture(port: u16, d: Duration) -> Vec<u8> {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else {
        return Vec::new();
    };
    let _ = s.write_all(b"GET /p.mp3 HTTP/1.0\r\n\r\n").await;
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 16384];
    let _ = tokio::time::timeout(d, async {
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    match raw.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(p) if raw.starts_with(b"HTTP/1.0 200") => raw.split_off(p + 4),
        _ => Vec::new(),
    }
}

/// A team member driven by the test: the library's peer machine relays like any member, and
/// everything it sends is sealed here, under the member's genuine keys and one sequence per
/// receiver, so that forged messages can go out among its own.
struct Member {
    udp: UdpSocket,
    machine: Peer,
    id: PeerId,
    key: Key,
    team: u32,
    splitter: SocketAddr,
    /// Known members: their id and our pair key, by endpoint.
    keys: HashMap<SocketAddr, (PeerId, Key)>,
    older: HashMap<PeerId, Key>,
    seqs: HashMap<SocketAddr, u64>,
    /// The newest chunk number seen.
    newest: Option<ChunkNo>,
    /// Complaints to the splitter are not sent (a monitor that never reports a loss).
    mute_complaints: bool,
    /// The splitter's first copy of every chunk numbered a multiple of this is lost on the
    /// way to its member (0: none); the numbers lost so far, shared by the members that lose
    /// them (a resend to one of them gets through).
    lose_every: u32,
    lost: Arc<Mutex<std::collections::HashSet<u32>>>,
}

impl Member {
    /// Join the team at `splitter` over TCP (native v2), from a UDP port of our own.
    async fn join(splitter: SocketAddr, role: Role) -> Member {
        let (udp, tcp) = udp_tcp_pair();
        let mut tcp = tcp.connect(splitter).await.expect("connect");
        let nonce = [7u8; 16];
        let req = wire::encode_frame(&Packet {
            team: 0,
            msg: Message::JoinRequest(JoinRequest {
                nonce,
                ..JoinRequest::new(role)
            }),
        })
        .expect("encode");
        tcp.write_all(&req).await.expect("write");
        let (team, reply) = read_reply(&mut tcp).await;
        assert!(reply.verify(team, &nonce), "the reply is signed");
        let older: HashMap<PeerId, Key> = reply
            .peers
            .iter()
            .zip(&reply.pair_keys)
            .map(|((id, _), k)| (*id, *k))
            .collect();
        let keys = reply
            .peers
            .iter()
            .zip(&reply.pair_keys)
            .map(|((id, a), k)| (*a, (*id, *k)))
            .collect();
        let (id, key) = (reply.peer_id, reply.peer_key);
        let config = PeerConfig {
            role: reply.role,
            ..PeerConfig::new(splitter)
        };
        let machine = Peer::new(config, reply, 99, Instant::now());
        Member {
            udp,
            machine,
            id,
            key,
            team,
            splitter,
            keys,
            older,
            seqs: HashMap::new(),
            newest: None,
            mute_complaints: false,
            lose_every: 0,
            lost: Arc::default(),
        }
    }

    /// The members we know (endpoint, id).
    fn members(&self) -> Vec<(SocketAddr, PeerId)> {
        self.keys.iter().map(|(a, (id, _))| (*a, *id)).collect()
    }

    /// Seal `msg` for `to` under our genuine key for it.
    fn seal(&mut self, to: SocketAddr, msg: Message) -> Option<Bytes> {
        let key = if to == self.splitter {
            self.key
        } else {
            self.keys.get(&to)?.1
        };
        let seq = self.seqs.entry(to).or_insert(0);
        *seq += 1;
        wire::seal(
            &Packet {
                team: self.team,
                msg,
            },
            self.id,
            *seq,
            &key,
            None,
        )
        .ok()
    }

    async fn send(&mut self, to: SocketAddr, msg: Message) {
        if let Some(d) = self.seal(to, msg) {
            let _ = self.udp.send_to(&d, to).await;
        }
    }

    /// Run the machine for `d`: receive, time out, and send what it queues (resealed).
    async fn run_for(&mut self, d: Duration) {
        let end = tokio::time::Instant::now() + d;
        let mut buf = vec![0u8; 65536];
        loop {
            while let Some(t) = self.machine.poll_transmit() {
                if let Ok(o) = wire::open(&t.data) {
                    let complaint = matches!(o.packet.msg, Message::LostChunk { .. });
                    if !(complaint && self.mute_complaints && t.to == self.splitter) {
                        self.send(t.to, o.packet.msg).await;
                    }
                }
            }
            while self.machine.poll_event().is_some() {}
            let wake = self
                .machine
                .poll_timeout()
                .map_or(end, tokio::time::Instant::from_std)
                .min(end);
            tokio::select! {
                r = self.udp.recv_from(&mut buf) => if let Ok((n, from)) = r {
                    if self.loses(from, &buf[..n]) {
                        continue;
                    }
                    self.note(from, &buf[..n]);
                    self.machine.handle_datagram(Instant::now(), from, &buf[..n]);
                },
                _ = tokio::time::sleep_until(wake) => self.machine.handle_timeout(Instant::now()),
            }
            if tokio::time::Instant::now() >= end {
                return;
            }
        }
    }

    /// Whether this datagram is one [`Member::lose_every`] says is lost.
    fn loses(&mut self, from: SocketAddr, data: &[u8]) -> bool {
        if self.lose_every == 0 || from != self.splitter {
            return false;
        }
        match wire::open(data).map(|o| o.packet.msg) {
            Ok(Message::Chunk { no, .. }) => {
                no.0 % self.lose_every == 0 && self.lost.lock().expect("lost").insert(no.0)
            }
            _ => false,
        }
    }

    /// Learn a newer member's key from its first datagram, and the newest chunk number.
    fn note(&mut self, from: SocketAddr, data: &[u8]) {
        let Ok(o) = wire::open(data) else { return };
        if let Message::Chunk { no, .. } = &o.packet.msg
            && self.newest.is_none_or(|n| no.is_after(n))
        {
            self.newest = Some(*no);
        }
        if from == self.splitter || self.keys.contains_key(&from) {
            return;
        }
        let key = if o.sender.0 > self.id.0 {
            Some(auth::pair_key(&self.key, o.sender))
        } else {
            self.older.get(&o.sender).copied()
        };
        if let Some(k) = key {
            self.keys.insert(from, (o.sender, k));
        }
    }
}

async fn read_reply(tcp: &mut TcpStream) -> (u32, JoinReply) {
    let mut fd = FrameDecoder::new(wire::MAX_FRAME);
    let mut buf = vec![0u8; 65536];
    loop {
        if let Some(body) = fd.pop_frame().expect("frame") {
            let p = wire::decode(&body).expect("decode");
            match p.msg {
                // The team id is not in the frame header (wire v3): the reply names it.
                Message::JoinReply(r) => return (r.team_id, *r),
                other => panic!("not a reply: {other:?}"),
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
            .await
            .expect("reply in time")
            .expect("read");
        assert!(n > 0, "the splitter closed the join");
        fd.push(&buf[..n]).expect("push");
    }
}

/// The endpoints of the team's members, as the splitter's status lists them.
fn endpoints(status: &serde_json::Value) -> Vec<String> {
    status["peers"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["endpoint"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A polluter joins and floods forged chunks numbered ahead of the splitter (zeros, and
/// frames that look like MP3) to every member, and keeps on after it is expelled. It is
/// proven a polluter and expelled; the listeners get the source's bytes and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polluter_is_expelled_and_no_forged_byte_reaches_a_listener() {
    let mut team = Team::start("pollution", "").await;
    team.add_peer("").await;
    team.add_peer("").await;
    let honest = endpoints(&team.splitter_status().await);
    assert_eq!(honest.len(), 2, "two honest peers");
    let listeners = team.listen_all(ATTACK + Duration::from_secs(2)).await;
    let mut polluter = Member::join(team.splitter_addr(), Role::Peer).await;
    let targets = polluter.members();
    assert_eq!(targets.len(), 2);
    let attack_end = tokio::time::Instant::now() + ATTACK;
    let mut forged = 0u32;
    while tokio::time::Instant::now() < attack_end {
        polluter.run_for(Duration::from_millis(40)).await;
        let Some(newest) = polluter.newest else {
            continue;
        };
        for (to, _) in &targets {
            for ahead in 1..=6u32 {
                let no = newest.plus(ahead);
                let payload = if ahead % 2 == 0 {
                    Bytes::from(vec![0u8; 1400])
                } else {
                    Bytes::from(frame(0x0BAD_0000 + no.0).repeat(3))
                };
                forged += 1;
                polluter
                    .send(
                        *to,
                        Message::Chunk {
                            no,
                            origin: polluter.id,
                            relay: None,
                            payload,
                        },
                    )
                    .await;
            }
        }
    }
    assert!(forged > 100, "the polluter sent {forged} forged chunks");
    for (k, l) in listeners.into_iter().enumerate() {
        let got = l.await.expect("listener");
        team.assert_identical(&got, &format!("peer mount {k}"), 100_000);
    }
    let st = team.splitter_status().await;
    assert_eq!(st["expelled"]["polluter"], 1, "{st}");
    assert_eq!(endpoints(&st), honest, "the honest peers stay");
    for port in team.peer_http.clone() {
        let p = status(port, "/p.mp3").await;
        assert!(p["chunks_verified"].as_u64() > Some(0), "{p}");
        // The playout keeps a steady delay after the splitter: its clock is known, and the
        // delay is no longer than a hole is waited for.
        let delay = p["playout_delay_ms"].as_u64();
        assert!(delay.is_some_and(|d| d <= 10_000), "{p}");
        let metrics = ask(port, b"GET /metrics HTTP/1.0\r\n\r\n").await;
        assert!(
            String::from_utf8_lossy(&metrics)
                .contains("floecast_p2psp_playout_delay_milliseconds{mount=\"/p.mp3\"}"),
            "{}",
            String::from_utf8_lossy(&metrics)
        );
    }
    let rejected: u64 = st["peers"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["rejected"].as_u64()).sum())
        .unwrap_or(0);
    assert!(rejected > 0, "the peers reported forged chunks: {st}");
    team.stop().await;
}

/// Three sock-puppet monitors take every monitor slot before the honest peers join, relay
/// like members, and complain in bursts about every chunk. Untrusted complaints get chunks
/// resent, never a peer expelled: the honest peers stay and their listeners miss nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sock_puppet_monitors_cannot_get_honest_peers_expelled() {
    let mut team = Team::start("puppets", "").await;
    let mut puppets = Vec::new();
    for _ in 0..3 {
        let m = Member::join(team.splitter_addr(), Role::Monitor).await;
        puppets.push(m);
    }
    // The puppets keep up with the team while the honest peers join.
    let warm = tokio::spawn(async move {
        for _ in 0..60 {
            for m in &mut puppets {
                m.run_for(Duration::from_millis(50)).await;
            }
        }
        puppets
    });
    team.add_peer("").await;
    team.add_peer("").await;
    let mut puppets = warm.await.expect("puppets");
    let st = team.splitter_status().await;
    let monitors = st["peers"]
        .as_array()
        .map(|ps| ps.iter().filter(|p| p["monitor"] == true).count())
        .unwrap_or(0);
    assert_eq!(monitors, 3, "the puppets hold every monitor slot: {st}");
    let honest: Vec<String> = endpoints(&st).into_iter().skip(3).collect();
    assert_eq!(honest.len(), 2, "{st}");
    let listeners = team.listen_all(ATTACK + Duration::from_secs(2)).await;
    let attack_end = tokio::time::Instant::now() + ATTACK;
    let splitter = team.splitter_addr();
    while tokio::time::Instant::now() < attack_end {
        for m in &mut puppets {
            m.run_for(Duration::from_millis(30)).await;
            let Some(newest) = m.newest else { continue };
            // A burst of complaints about the last 40 chunks.
            for back in 0..40 {
                m.send(
                    splitter,
                    Message::LostChunk {
                        no: newest.minus(back),
                        digest: true,
                    },
                )
                .await;
            }
        }
    }
    for (k, l) in listeners.into_iter().enumerate() {
        let got = l.await.expect("listener");
        team.assert_identical(&got, &format!("peer mount {k}"), 100_000);
    }
    let st = team.splitter_status().await;
    assert_eq!(st["expelled"]["losses"], 0, "{st}");
    assert!(st["complaints_unblamed"].as_u64() > Some(100), "{st}");
    let now: Vec<String> = endpoints(&st);
    for h in &honest {
        assert!(
            now.contains(h),
            "honest peer {h} is still in the team: {st}"
        );
    }
    team.stop().await;
}

/// An IPv4/UDP datagram with a forged source, sent through a raw socket.
fn spoof(from: SocketAddrV4, to: SocketAddrV4, payload: &[u8]) {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP)).expect("raw socket (root)");
    s.set_header_included_v4(true).expect("IP_HDRINCL");
    let total = 20 + 8 + payload.len();
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0x40,
        0,
        64,
        17,
        0,
        0,
    ]);
    p.extend_from_slice(&from.ip().octets());
    p.extend_from_slice(&to.ip().octets());
    let mut sum = 0u32;
    for c in p.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    let ck = !(sum as u16);
    p[10..12].copy_from_slice(&ck.to_be_bytes());
    p.extend_from_slice(&from.port().to_be_bytes());
    p.extend_from_slice(&to.port().to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    s.send_to(&p, &SocketAddr::V4(to).into())
        .expect("send spoofed");
}

fn v4(s: &str) -> SocketAddrV4 {
    match s.parse::<SocketAddr>().expect("endpoint") {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => panic!("IPv4 expected"),
    }
}

/// Goodbyes forged from the splitter's address to a peer, and from a peer's address to the
/// splitter (the old 12-byte form, and the new form under a guessed key), change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_goodbyes_are_ignored_both_ways() {
    if !interop_support::running_as_root() {
        common::skip("spoofing needs a raw socket (root)");
        return;
    }
    let mut team = Team::start("spoof", "").await;
    team.add_peer("").await;
    team.add_peer("").await;
    let st = team.splitter_status().await;
    let peers = endpoints(&st);
    let ids: Vec<u32> = st["peers"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["id"].as_u64())
                .map(|i| i as u32)
                .collect()
        })
        .unwrap_or_default();
    // The attacker knows the team cookie (anyone who joins does).
    let insider = Member::join(team.splitter_addr(), Role::Peer).await;
    let cookie = insider.team;
    drop(insider);
    let listeners = team.listen_all(ATTACK).await;
    let splitter = v4(&team.splitter_addr().to_string());
    let forged = |sender: u32, v1: bool| -> Vec<u8> {
        if v1 {
            let mut g = vec![0xF1, 0x0E, 1, wire::ty::GOODBYE];
            g.extend_from_slice(&cookie.to_be_bytes());
            g.extend_from_slice(&sender.to_be_bytes());
            g
        } else {
            wire::seal(
                &Packet {
                    team: cookie,
                    msg: Message::Goodbye {
                        from: PeerId(sender),
                    },
                },
                PeerId(sender),
                1 << 40,
                &[0x66; 32],
                None,
            )
            .expect("seal")
            .to_vec()
        }
    };
    let end = Instant::now() + ATTACK - Duration::from_secs(2);
    while Instant::now() < end {
        for (p, id) in peers.iter().zip(&ids) {
            let peer = v4(p);
            for v1 in [true, false] {
                spoof(splitter, peer, &forged(0, v1));
                spoof(peer, splitter, &forged(*id, v1));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (k, l) in listeners.into_iter().enumerate() {
        let got = l.await.expect("listener");
        team.assert_identical(&got, &format!("peer mount {k}"), 80_000);
    }
    let st = team.splitter_status().await;
    assert_eq!(st["expelled"]["goodbye"], 0, "{st}");
    for p in &peers {
        assert!(endpoints(&st).contains(p), "{p} is still in the team: {st}");
    }
    assert!(st["datagrams_unauthenticated"].as_u64() > Some(0), "{st}");
    for port in team.peer_http.clone() {
        let s = status(port, "/p.mp3").await;
        assert!(s["datagrams_unauthenticated"].as_u64() > Some(0), "{s}");
    }
    team.stop().await;
}

/// Hundreds of idle TCP connections to the splitter's port, from one address and from many,
/// renewed as they are closed: an honest peer still joins within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_joins_succeed_during_an_idle_connection_flood() {
    let mut team = Team::start("flood", "").await;
    let target = team.splitter_addr();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood_stop = stop.clone();
    let flood = tokio::spawn(async move {
        let mut held: Vec<TcpStream> = Vec::new();
        let sources: Vec<Ipv4Addr> = std::iter::once(Ipv4Addr::new(127, 0, 0, 2))
            .chain((1..=75).map(|i| Ipv4Addr::new(127, 0, 1, i)))
            .collect();
        let mut opened = 0usize;
        while !flood_stop.load(std::sync::atomic::Ordering::Relaxed) {
            // Keep about 300 from 127.0.0.2 and 4 from each of 75 more addresses open.
            for (k, ip) in sources.iter().enumerate() {
                let want = if k == 0 { 300 } else { 4 };
                for _ in 0..want {
                    let s = TcpSocket::new_v4().expect("socket");
                    if s.bind(SocketAddr::new((*ip).into(), 0)).is_err() {
                        continue;
                    }
                    if let Ok(Ok(c)) =
                        tokio::time::timeout(Duration::from_millis(200), s.connect(target)).await
                    {
                        held.push(c);
                        opened += 1;
                    }
                }
            }
            // Drop the ones the splitter closed; the rest stay idle.
            let mut alive = Vec::new();
            for mut c in held.drain(..) {
                let mut b = [0u8; 1];
                match tokio::time::timeout(Duration::from_millis(1), c.read(&mut b)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => {}
                    _ => alive.push(c),
                }
            }
            held = alive;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        opened
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    team.add_peer("").await;
    let took = started.elapsed();
    let listeners = team.listen_all(Duration::from_secs(4)).await;
    for l in listeners {
        team.assert_identical(&l.await.expect("listener"), "peer mount", 30_000);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let opened = flood.await.expect("flood");
    assert!(opened >= 600, "the flood opened {opened} connections");
    assert!(took < Duration::from_secs(12), "the join took {took:?}");
    team.stop().await;
}

/// A peer of the old native format (version 1) gets a refusal it can decode, naming the
/// version it must speak, not garbage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_peer_is_refused_in_words_it_can_read() {
    let team = Team::start("v1", "").await;
    let mut tcp = TcpStream::connect(team.splitter_addr())
        .await
        .expect("connect");
    // A version-1 JoinRequest: header (magic, version 1, type, team 0), version, role, features.
    let mut body = vec![0xF1, 0x0E, 1, wire::ty::JOIN_REQUEST];
    body.extend_from_slice(&[0; 4]);
    body.extend_from_slice(&[1, 1, 0, 0, 0, 15]);
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    tcp.write_all(&frame).await.expect("write");
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut got)).await;
    assert!(got.len() > 12, "a refusal frame: {got:?}");
    let body = &got[4..];
    // Version 1's layout: magic, version 1, JOIN_REFUSED, team, reason, detail.
    assert_eq!(&body[..4], &[0xF1, 0x0E, 1, wire::ty::JOIN_REFUSED]);
    let text = String::from_utf8_lossy(body);
    assert!(
        text.contains(&format!("version {}", wire::VERSION)),
        "{text}"
    );
    team.stop().await;
}

/// A team with a secret and a peer that pins the splitter's key: the right secret and key
/// join and play the source's bytes; a wrong secret, or a wrong pinned key, never joins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_secret_and_a_pinned_key_gate_joins() {
    let mut team = Team::start("secret", ", team-secret = \"s3cret\"").await;
    let mut key = String::new();
    for _ in 0..50 {
        key = team.splitter_status().await["public_key"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !key.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(key.len(), 64, "the splitter shows its public key");
    assert!(team.splitter.log_text().contains(&key), "and logs it");
    team.add_peer(&format!(
        ", team-secret = \"s3cret\", splitter-key = \"{key}\""
    ))
    .await;
    // Another splitter's key: a host answering at the splitter's address with its own key.
    let other = floecast::p2psp::auth::hex(
        &floecast::p2psp::auth::SplitterKey::from_seed(&[9; 32]).public(),
    );
    let mut refused = Vec::new();
    for (name, extra) in [
        ("wrong-secret", ", team-secret = \"guess\"".to_string()),
        ("no-secret", String::new()),
        (
            "wrong-key",
            format!(", team-secret = \"s3cret\", splitter-key = \"{other}\""),
        ),
    ] {
        let http = free_tcp_udp_port();
        let p = server(
            &team.dir,
            name,
            http,
            &format!(
                "[[mount]]\nname = \"/p.mp3\"\n\
                 p2psp = {{ role = \"peer\", splitter = \"127.0.0.1:{}\"{extra} }}\n",
                team.team_port
            ),
        );
        refused.push((name, p, http));
    }
    let listeners = team.listen_all(Duration::from_secs(5)).await;
    for l in listeners {
        team.assert_identical(&l.await.expect("listener"), "the admitted peer", 40_000);
    }
    for (name, p, http) in &mut refused {
        p.assert_running();
        assert!(
            capture(*http, Duration::from_millis(500)).await.is_empty(),
            "{name} plays"
        );
        let log = p.log_text();
        let why = match *name {
            "wrong-key" => "is not the pinned splitter-key",
            "no-secret" => "needs a team secret",
            _ => "NotAdmitted",
        };
        assert!(log.contains(why), "{name}: {log}");
    }
    team.stop().await;
}

/// A joiner that takes the join reply and goes away (or a stranger replaying a join) is not a
/// member: it is never listed, never sent a chunk or anything else, and the splitter counts
/// it as an unconfirmed join. Only a member's first authenticated datagram admits it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joiner_that_never_confirms_gets_nothing_and_is_not_listed() {
    let mut team = Team::start("unconfirmed", "").await;
    team.add_peer("").await;
    let (udp, tcp) = udp_tcp_pair();
    let local = udp.local_addr().expect("local");
    let mut tcp = tcp.connect(team.splitter_addr()).await.expect("connect");
    let req = wire::encode_frame(&Packet {
        team: 0,
        msg: Message::JoinRequest(JoinRequest::new(Role::Peer)),
    })
    .expect("encode");
    tcp.write_all(&req).await.expect("write");
    let (_, reply) = read_reply(&mut tcp).await;
    assert_eq!(reply.peers.len(), 1, "the honest member is listed to it");
    drop(tcp);
    // Chunks flow to the team meanwhile (the honest member's listener gets them); the ghost
    // gets not one datagram, at its endpoint or anywhere the splitter could think it is.
    let listener = tokio::spawn(capture(team.peer_http[0], Duration::from_secs(6)));
    let mut buf = vec![0u8; 65536];
    let got = tokio::time::timeout(Duration::from_secs(6), udp.recv_from(&mut buf)).await;
    assert!(got.is_err(), "the unconfirmed joiner was sent {got:?}");
    team.assert_identical(&listener.await.expect("listener"), "peer mount", 20_000);
    let status = team.splitter_status().await;
    assert_eq!(
        endpoints(&status).len(),
        1,
        "only the honest member is listed: {status}"
    );
    assert!(!endpoints(&status).contains(&local.to_string()), "{status}");
    assert_eq!(status["joins_unconfirmed"], 1, "{status}");
    team.stop().await;
}

/// From 32 members on, the few members that witness a chunk complain of it when they miss it,
/// as a monitor would. Here the monitor slots are held by members that never complain, and
/// the splitter's copy of some chunks is lost on the way to the member it gave them to: the
/// whole team misses those chunks, and only the witnesses can get them resent. The listeners
/// of two peer mounts still get every byte of the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witnesses_get_resent_what_the_splitter_lost_on_the_way_to_an_origin() {
    let mut team = Team::start("witnesses", "").await;
    let splitter = team.splitter_addr();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spawn = |mut m: Member| {
        let stop = stop.clone();
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                m.run_for(Duration::from_millis(100)).await;
            }
            m
        })
    };
    let mut members = Vec::new();
    for _ in 0..3 {
        let mut m = Member::join(splitter, Role::Monitor).await;
        m.mute_complaints = true;
        members.push(spawn(m));
    }
    team.add_peer("").await;
    team.add_peer("").await;
    let lost = Arc::new(Mutex::new(std::collections::HashSet::new()));
    for _ in 0..30 {
        let mut m = Member::join(splitter, Role::Peer).await;
        m.lose_every = 20;
        m.lost = lost.clone();
        members.push(spawn(m));
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let st = loop {
        let st = team.splitter_status().await;
        if st["peers"].as_array().map(|p| p.len()) == Some(35) {
            break st;
        }
        assert!(Instant::now() < deadline, "35 members: {st}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let monitors = st["peers"]
        .as_array()
        .map(|ps| ps.iter().filter(|p| p["monitor"] == true).count())
        .unwrap_or(0);
    assert_eq!(
        monitors, 3,
        "the silent members hold every monitor slot: {st}"
    );
    // Settle: the newcomers' first chunks are behind us.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let resent_before = team.splitter_status().await["lrs_resends"]
        .as_u64()
        .unwrap_or(0);
    let listeners = team.listen_all(Duration::from_secs(12)).await;
    for (k, l) in listeners.into_iter().enumerate() {
        let got = l.await.expect("listener");
        team.assert_identical(&got, &format!("peer mount {k}"), 150_000);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for m in members {
        m.await.expect("member");
    }
    let lost = lost.lock().expect("lost").len();
    let st = team.splitter_status().await;
    let resent = st["lrs_resends"]
        .as_u64()
        .unwrap_or(0)
        .saturating_sub(resent_before);
    assert!(lost >= 5, "only {lost} splitter chunks were lost");
    assert!(resent >= 3, "{resent} resends for {lost} lost chunks: {st}");
    assert_eq!(st["expelled"]["losses"], 0, "{st}");
    team.stop().await;
}
