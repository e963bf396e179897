//! Tests of the peer state machine, driven by hand: datagrams and times in, transmits and
//! events out, with the clock read here as the driver would.

use super::*;
use crate::p2psp::StreamInfo;
use crate::p2psp::splitter::{LeaveReason, Splitter, SplitterConfig, SplitterEvent};
use crate::p2psp::wire::JoinRequest;
use std::collections::HashSet;

type DropFn = Box<dyn FnMut(SocketAddr, &Transmit) -> bool>;

/// A tiny deterministic network: zero latency, FIFO, optional drop filter.
struct Net {
    now: Instant,
    saddr: SocketAddr,
    splitter: Splitter,
    peers: Vec<(SocketAddr, Peer)>,
    delivered: Vec<Vec<(ChunkNo, Bytes)>>,
    skipped: Vec<Vec<ChunkNo>>,
    /// Titles seen, each with how many chunks had been delivered when it came.
    titles: Vec<Vec<(usize, String)>>,
    splitter_events: Vec<SplitterEvent>,
    dead: HashSet<SocketAddr>,
    splitter_egress: u64,
    drop: Option<DropFn>,
    /// The `skip_after` of the peers that join from now on.
    skip_after: Duration,
}

fn payload(n: u32) -> Bytes {
    let len = 200 + (n as usize * 37) % 1000;
    Bytes::from((0..len).map(|i| (n as usize + i) as u8).collect::<Vec<_>>())
}

impl Net {
    fn new(cfg: SplitterConfig) -> Net {
        let now = Instant::now();
        let saddr: SocketAddr = "192.0.2.1:8001".parse().unwrap();
        Net {
            now,
            saddr,
            splitter: Splitter::new(cfg, 0x5EED_CAFE, now),
            peers: vec![],
            delivered: vec![],
            skipped: vec![],
            titles: vec![],
            splitter_events: vec![],
            dead: HashSet::new(),
            splitter_egress: 0,
            drop: None,
            skip_after: PeerConfig::new(saddr).skip_after,
        }
    }

    fn join(&mut self, role: Role) -> usize {
        let k = self.peers.len();
        let addr: SocketAddr = format!("[2001:db8::{}]:{}", k + 1, 5000 + k)
            .parse()
            .unwrap();
        let (_, reply) = self
            .splitter
            .handle_join(self.now, addr, &JoinRequest::new(role))
            .unwrap();
        // Through the TCP codec, as the runtime would.
        let frame = wire::encode_frame(&Packet {
            team: reply.team_id,
            msg: Message::JoinReply(Box::new(reply)),
        })
        .unwrap();
        let mut fd = wire::FrameDecoder::new(wire::MAX_FRAME);
        fd.push(&frame).unwrap();
        let body = fd.pop_frame().unwrap().unwrap();
        let Message::JoinReply(reply) = wire::decode(&body).unwrap().msg else {
            panic!()
        };
        let mut cfg = PeerConfig::new(self.saddr);
        // Links here have no capacity limit and no delay: these tests are about the protocol,
        // the pacer has tests of its own.
        cfg.pace_start = 8.0;
        cfg.role = role;
        cfg.skip_after = self.skip_after;
        let p = Peer::new(cfg, *reply, k as u64 + 1, self.now);
        self.peers.push((addr, p));
        self.delivered.push(vec![]);
        self.skipped.push(vec![]);
        self.titles.push(vec![]);
        // Its Hello reaches the splitter, which admits it (and introduces it).
        self.pump();
        k
    }

    fn drain_events(&mut self) {
        while let Some(e) = self.splitter.poll_event() {
            self.splitter_events.push(e);
        }
        for (k, (_, p)) in self.peers.iter_mut().enumerate() {
            while let Some(e) = p.poll_event() {
                match e {
                    PeerEvent::Deliver { no, payload } => self.delivered[k].push((no, payload)),
                    PeerEvent::Skipped { no } => self.skipped[k].push(no),
                    PeerEvent::InfoChanged(i) => {
                        self.titles[k].push((self.delivered[k].len(), i.title))
                    }
                    _ => {}
                }
            }
        }
    }

    fn pump(&mut self) {
        for _ in 0..100_000 {
            let mut flight = vec![];
            while let Some(t) = self.splitter.poll_transmit() {
                self.splitter_egress += t.data.len() as u64;
                flight.push((self.saddr, t));
            }
            for (a, p) in &mut self.peers {
                while let Some(t) = p.poll_transmit() {
                    if !self.dead.contains(a) {
                        flight.push((*a, t));
                    }
                }
            }
            if flight.is_empty() {
                break;
            }
            for (from, t) in flight {
                if let Some(d) = &mut self.drop
                    && d(from, &t)
                {
                    continue;
                }
                if t.to == self.saddr {
                    self.splitter.handle_datagram(self.now, from, &t.data);
                } else if !self.dead.contains(&t.to)
                    && let Some((_, p)) = self.peers.iter_mut().find(|(a, _)| *a == t.to)
                {
                    p.handle_datagram(self.now, from, &t.data);
                }
            }
        }
        self.drain_events();
    }

    fn advance(&mut self, dt: Duration) {
        self.now += dt;
        if self.splitter.poll_timeout().is_some_and(|t| t <= self.now) {
            self.splitter.handle_timeout(self.now);
        }
        for (a, p) in &mut self.peers {
            if !self.dead.contains(a) && p.poll_timeout().is_some_and(|t| t <= self.now) {
                p.handle_timeout(self.now);
            }
        }
        self.pump();
    }

    /// Push `n` chunks, one every `dt`, numbering payloads from the splitter's counter.
    fn stream(&mut self, n: u32, dt: Duration) {
        for _ in 0..n {
            let no = self.splitter.next_chunk();
            self.splitter.push_chunk(self.now, payload(no.0)).unwrap();
            self.pump();
            self.advance(dt);
        }
    }

    /// A monitor and `n - 1` plain peers, joined one after another.
    fn join_team(&mut self, n: usize) {
        self.join(Role::Monitor);
        for _ in 1..n {
            self.join(Role::Peer);
        }
        self.pump();
    }

    /// Peer `k` played `n` chunks, consecutive and each as the splitter had it, and skipped
    /// nothing.
    fn assert_played_everything(&self, k: usize, n: usize) {
        assert_eq!(self.delivered[k].len(), n, "peer {k}");
        check_in_order(&self.delivered[k]);
        assert!(
            self.skipped[k].is_empty(),
            "peer {k} skipped {:?}",
            self.skipped[k]
        );
    }

    fn settle(&mut self) {
        for _ in 0..50 {
            self.advance(Duration::from_millis(20));
        }
    }
}

fn team_cfg() -> SplitterConfig {
    SplitterConfig {
        buffer_size: 64,
        max_chunk_payload: 1500,
        ..Default::default()
    }
}

fn check_in_order(d: &[(ChunkNo, Bytes)]) {
    for w in d.windows(2) {
        assert_eq!(w[1].0, w[0].0.plus(1), "out of order");
    }
    for (no, p) in d {
        assert_eq!(*p, payload(no.0), "payload of {no:?} differs");
    }
}

#[test]
fn ten_peers_500_chunks_in_order_with_one_copy_egress() {
    let mut net = Net::new(team_cfg());
    net.join(Role::Monitor);
    for _ in 0..9 {
        net.join(Role::Peer);
    }
    net.pump();
    net.splitter_egress = 0;
    net.stream(500, Duration::from_millis(10));
    net.settle();
    let pushed = net.splitter.stats().bytes_pushed;
    for k in 0..10 {
        net.assert_played_everything(k, 500);
        assert_eq!(net.delivered[k][0].0, ChunkNo(0));
    }
    let ratio = net.splitter_egress as f64 / pushed as f64;
    // One copy of the stream, plus the authentication: a 28-byte trailer per datagram and a
    // signed Digest (362 bytes) per 16 chunks, about 51 bytes on these ~700-byte chunks.
    assert!(ratio <= 1.12, "splitter egress {ratio}");
    // Everyone relays: each peer sent roughly (N-1)/N of the stream.
    for (_, p) in &net.peers {
        let s = p.stats();
        assert!(s.sent > 400 && s.sent < 500, "sent {}", s.sent);
        assert_eq!(s.neighbours.len(), 9);
    }
}

#[test]
fn goodbye_removes_at_once_and_the_rest_keep_playing() {
    let mut net = Net::new(team_cfg());
    net.join(Role::Monitor);
    for _ in 0..5 {
        net.join(Role::Peer);
    }
    net.stream(100, Duration::from_millis(10));
    net.peers[3].1.leave(net.now);
    net.pump();
    assert_eq!(net.splitter.peer_count(), 5);
    assert!(net.splitter_events.iter().any(|e| matches!(
        e,
        SplitterEvent::PeerLeft {
            reason: LeaveReason::Goodbye,
            ..
        }
    )));
    let left_addr = net.peers[3].0;
    // Neighbours dropped it too, and the leaver saw the splitter's acknowledgement.
    for (k, (_, p)) in net.peers.iter().enumerate() {
        if k != 3 {
            assert!(p.stats().neighbours.iter().all(|n| n.addr != left_addr));
        }
    }
    net.dead.insert(left_addr);
    net.stream(200, Duration::from_millis(10));
    net.settle();
    for k in [0, 1, 2, 4, 5] {
        assert_eq!(net.delivered[k].len(), 300, "peer {k}");
        check_in_order(&net.delivered[k]);
    }
}

#[test]
fn silent_peer_is_expelled_after_timeout_and_lrs_covers_its_chunks() {
    let mut net = Net::new(team_cfg());
    net.join(Role::Monitor);
    for _ in 0..9 {
        net.join(Role::Peer);
    }
    net.stream(50, Duration::from_millis(20));
    let gone = net.peers[4].0;
    net.dead.insert(gone);
    net.stream(750, Duration::from_millis(20)); // 15 s
    net.settle();
    let ev = net.splitter_events.iter().find_map(|e| match e {
        SplitterEvent::PeerLeft { addr, reason, .. } if *addr == gone => Some(*reason),
        _ => None,
    });
    assert_eq!(ev, Some(LeaveReason::Timeout));
    assert_eq!(net.splitter.peer_count(), 9);
    assert!(net.splitter.stats().lrs_resends > 0);
    for k in (0..10).filter(|k| *k != 4) {
        let got = net.delivered[k].len() as f64;
        assert!(got / 800.0 >= 0.99, "peer {k}: {got}");
        let d = &net.delivered[k];
        assert!(d.windows(2).all(|w| w[1].0.is_after(w[0].0)));
        // The dead neighbour was forgotten (debt or silence).
        assert!(
            net.peers[k]
                .1
                .stats()
                .neighbours
                .iter()
                .all(|n| n.addr != gone)
        );
    }
}

#[test]
fn dropped_splitter_datagram_is_recovered() {
    let mut net = Net::new(team_cfg());
    net.join(Role::Monitor);
    for _ in 0..4 {
        net.join(Role::Peer);
    }
    let saddr = net.saddr;
    let mut dropped = false;
    net.drop = Some(Box::new(move |from, t| {
        if from == saddr
            && !dropped
            && let Ok(p) = wire::decode(&t.data)
            && let Message::Chunk {
                no: ChunkNo(30), ..
            } = p.msg
        {
            dropped = true;
            return true;
        }
        false
    }));
    net.stream(200, Duration::from_millis(10));
    net.settle();
    for k in 0..5 {
        assert_eq!(net.delivered[k].len(), 200, "peer {k}");
        check_in_order(&net.delivered[k]);
    }
    assert_eq!(net.splitter.stats().lrs_resends, 1);
}

/// A lost Digest holds its whole batch unplayed at every peer; the monitor's complaints get
/// it resent with the chunks, again if a resend is lost too.
#[test]
fn a_lost_digest_is_resent_until_it_arrives() {
    let mut net = Net::new(team_cfg());
    net.join_team(5);
    let saddr = net.saddr;
    let mut dropped = 0;
    net.drop = Some(Box::new(move |from, t| {
        if from == saddr
            && dropped < 2
            && wire::peek_type(&t.data) == Some(wire::ty::DIGEST)
            && let Ok(o) = wire::open(&t.data)
            && let Message::Digest { first, hashes, .. } = o.packet.msg
            && first.0 <= 30
            && 30 < first.0 + hashes.len() as u32
        {
            dropped += 1;
            return true;
        }
        false
    }));
    // Resends come 400 ms apart: chunks 50 ms apart are played 1.6 s (32 chunks) late.
    net.stream(200, Duration::from_millis(50));
    net.settle();
    for k in 0..5 {
        net.assert_played_everything(k, 200);
    }
}

/// Four plain peers in a team whose splitter resends nothing: holes are the peers' to fill.
fn four_peers_without_lrs() -> Net {
    let mut net = Net::new(SplitterConfig {
        lrs: false,
        ..team_cfg()
    });
    for _ in 0..4 {
        net.join(Role::Peer);
    }
    net
}

#[test]
fn request_recovers_without_lrs() {
    // No LRS: a chunk one neighbour missed is fetched from another with Request.
    let mut net = four_peers_without_lrs();
    let victim = net.peers[2].0;
    let mut dropped = false;
    net.drop = Some(Box::new(move |_, t| {
        if t.to == victim
            && !dropped
            && let Ok(p) = wire::decode(&t.data)
            && let Message::Chunk {
                no: ChunkNo(41), ..
            } = p.msg
        {
            dropped = true;
            return true;
        }
        false
    }));
    net.stream(150, Duration::from_millis(10));
    net.settle();
    assert_eq!(net.delivered[2].len(), 150);
    check_in_order(&net.delivered[2]);
    assert!(net.peers[2].1.stats().requests_sent >= 1);
}

/// Only a chunk's origin holds it (its flood was lost everywhere): the others ask random
/// neighbours, who mostly lack it too, again and again, and each that gets it can answer the
/// next. (Asked three times, holes like these, of a flash crowd's chunks whose origins knew
/// few members yet, waited for the splitter's resend.)
#[test]
fn a_chunk_only_its_origin_holds_is_found_by_asking_again() {
    let mut net = Net::new(SplitterConfig {
        lrs: false,
        buffer_size: 1024,
        ..team_cfg()
    });
    // Holes wait long enough to be asked for nine times (as in a forming team, whose floods'
    // lateness lengthens the wait).
    net.skip_after = Duration::from_secs(8);
    for _ in 0..12 {
        net.join(Role::Peer);
    }
    let splitter = net.saddr;
    let mut flood = 0;
    net.drop = Some(Box::new(move |from, t| {
        let is_41 = wire::decode(&t.data).is_ok_and(|p| {
            matches!(
                p.msg,
                Message::Chunk {
                    no: ChunkNo(41),
                    ..
                }
            )
        });
        // The origin's flood: the first copies that are not the splitter's.
        if is_41 && from != splitter && flood < 11 {
            flood += 1;
            return true;
        }
        false
    }));
    net.stream(300, Duration::from_millis(20));
    // The last holes may wait their whole 8 s.
    for _ in 0..10 {
        net.settle();
    }
    for k in 0..12 {
        net.assert_played_everything(k, 300);
    }
}

/// A Request asks for the Digest too only when the asker lacks the one that vouches for the
/// chunk (answers used to carry one each, a few percent of every uplink under loss); then the
/// answer brings it, and the hole is filled.
#[test]
fn a_request_asks_for_the_digest_only_when_it_lacks_it() {
    for lose_digest in [false, true] {
        let mut net = four_peers_without_lrs();
        let victim = net.peers[2].0;
        let asked = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let seen = asked.clone();
        let (mut chunk_dropped, mut digest_dropped) = (false, !lose_digest);
        net.drop = Some(Box::new(move |from, t| {
            let Ok(o) = wire::open(&t.data) else {
                return false;
            };
            match o.packet.msg {
                Message::Request { no, digest, .. } if from == victim => {
                    seen.borrow_mut().push((no, digest));
                    false
                }
                Message::Chunk {
                    no: ChunkNo(41), ..
                } if t.to == victim && !chunk_dropped => {
                    chunk_dropped = true;
                    true
                }
                Message::Digest { first, hashes, .. }
                    if t.to == victim
                        && !digest_dropped
                        && first.0 <= 41
                        && 41 < first.0 + hashes.len() as u32 =>
                {
                    digest_dropped = true;
                    true
                }
                _ => false,
            }
        }));
        net.stream(150, Duration::from_millis(10));
        net.settle();
        net.assert_played_everything(2, 150);
        let asked = asked.borrow();
        assert!(
            !asked.is_empty() && asked.iter().all(|(no, d)| *d == lose_digest || no.0 != 41),
            "lost the Digest too: {lose_digest}; asked {asked:?}"
        );
    }
}

/// A member that holds the chunks a lost Digest vouches for asks for that Digest alone (a
/// Request for each held chunk brought the whole batch again), and plays them all once it
/// comes; the first answer that arrives releases the rest of the batch.
#[test]
fn a_lost_digest_of_chunks_we_hold_is_asked_for_alone() {
    let mut net = four_peers_without_lrs();
    let victim = net.peers[2].0;
    let lost = std::rc::Rc::new(std::cell::RefCell::new(None));
    let asked = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let (lost_w, seen) = (lost.clone(), asked.clone());
    net.drop = Some(Box::new(move |from, t| {
        let Ok(o) = wire::open(&t.data) else {
            return false;
        };
        match o.packet.msg {
            Message::Request { .. } | Message::DigestRequest { .. } if from == victim => {
                seen.borrow_mut().push(o.packet.msg);
                false
            }
            Message::Digest { first, hashes, .. }
                if t.to == victim && first.0 <= 41 && 41 < first.0 + hashes.len() as u32 =>
            {
                // The flood's copy and the first answer.
                let mut l = lost_w.borrow_mut();
                let (_, _, dropped) = l.get_or_insert((first, hashes.len() as u32, 0));
                *dropped += 1;
                *dropped <= 2
            }
            _ => false,
        }
    }));
    net.stream(150, Duration::from_millis(10));
    net.settle();
    net.assert_played_everything(2, 150);
    let (first, n, _) = lost.borrow().expect("the Digest was dropped");
    let covered = |no: ChunkNo| (0..i64::from(n)).contains(&no.diff(first));
    let asked = asked.borrow();
    let digest_requests: Vec<_> = (asked.iter())
        .filter_map(|m| match m {
            Message::DigestRequest { no } => Some(*no),
            _ => None,
        })
        .collect();
    assert!(
        (asked.iter()).all(|m| !matches!(m, Message::Request { no, .. } if covered(*no))),
        "no chunk of the batch asked for again: {asked:?}"
    );
    assert!(
        (2..n as usize).contains(&digest_requests.len()),
        "the Digest asked for again until it came, not for every chunk ({n}): {digest_requests:?}"
    );
}

#[test]
fn join_burst_plays_at_once() {
    let mut net = Net::new(team_cfg());
    for _ in 0..3 {
        net.join(Role::Peer);
    }
    net.stream(100, Duration::from_millis(10));
    let k = net.join(Role::Peer);
    // No datagram yet, no time passed: the burst alone is played.
    assert!(!net.delivered[k].is_empty());
    assert_eq!(net.delivered[k][0].0, ChunkNo(100 - 32));
    check_in_order(&net.delivered[k]);
    net.stream(100, Duration::from_millis(10));
    net.settle();
    assert_eq!(net.delivered[k].last().unwrap().0, ChunkNo(199));
    assert_eq!(net.delivered[k].len(), 132);
    check_in_order(&net.delivered[k]);
}

#[test]
fn header_change_travels_in_the_stream_at_one_copy() {
    let mut net = Net::new(team_cfg());
    for _ in 0..8 {
        net.join(Role::Peer);
    }
    net.stream(40, Duration::from_millis(10));
    let h = Bytes::from((0..6000u32).map(|i| (i * 7) as u8).collect::<Vec<_>>());
    let before = net.splitter_egress;
    net.splitter.set_header(h.clone()).unwrap();
    let first = net.splitter.next_chunk();
    for piece in h.chunks(1500) {
        let now = net.now;
        net.splitter
            .push_chunk(now, Bytes::copy_from_slice(piece))
            .unwrap();
        net.pump();
        net.advance(Duration::from_millis(10));
    }
    // One copy (plus datagram overhead), where a copy per peer would be 8 × 6000 bytes.
    let header_egress = net.splitter_egress - before;
    assert!(header_egress < h.len() as u64 * 11 / 10, "{header_egress}");
    net.stream(40, Duration::from_millis(10));
    net.settle();
    for k in 0..8 {
        let d = &net.delivered[k];
        assert_eq!(d.len(), 84, "peer {k}");
        let at = d.iter().position(|(no, _)| *no == first).unwrap();
        let got: Vec<u8> = d[at..at + 4].iter().flat_map(|(_, p)| p.to_vec()).collect();
        assert_eq!(got, h.to_vec(), "peer {k}");
        check_in_order(&d[..at]);
        check_in_order(&d[at + 4..]);
    }
}

#[test]
fn ignores_foreign_and_garbage_datagrams() {
    let now = Instant::now();
    let splitter: SocketAddr = "192.0.2.1:8001".parse().unwrap();
    let mut s = Splitter::new(team_cfg(), 99, now);
    let (_, reply) = s
        .handle_join(
            now,
            "192.0.2.9:9".parse().unwrap(),
            &JoinRequest::new(Role::Peer),
        )
        .unwrap();
    let mut p = Peer::new(PeerConfig::new(splitter), reply, 1, now);
    while p.poll_transmit().is_some() {}
    let forged = wire::seal(
        &Packet {
            team: 98,
            msg: Message::Chunk {
                no: ChunkNo(0),
                origin: PeerId(1),
                relay: None,
                payload: Bytes::from_static(b"evil"),
            },
        },
        PeerId::NONE,
        1,
        &[0; 32],
        None,
    )
    .unwrap();
    p.handle_datagram(now, splitter, &forged);
    p.handle_datagram(now, splitter, b"\xF1\x0E\x01");
    let st = p.stats();
    // Another team's (the tag covers the team id) and garbage.
    assert_eq!((st.bad_mac, st.garbage, st.from_splitter), (1, 1, 0));
    assert!(p.poll_event().is_none());
    // The splitter falls silent: reported once.
    p.handle_timeout(now + Duration::from_secs(11));
    let ev: Vec<_> = std::iter::from_fn(|| p.poll_event()).collect();
    assert_eq!(ev, vec![PeerEvent::SplitterGone]);
}

/// A member seals `msg` to `victim` under their genuine pair key (it is a member: it has it).
fn forge(net: &Net, member: usize, victim: usize, seq: u64, msg: Message) -> Bytes {
    let (m, v) = (&net.peers[member].1, &net.peers[victim].1);
    let key = m.trust.pair_key(m.id, v.id).expect("pair key");
    let p = Packet { team: m.team, msg };
    wire::seal(&p, m.id, seq, &key, None).unwrap()
}

#[test]
fn a_title_change_reaches_every_peer_once_through_the_team_and_forged_ones_do_not() {
    let mut net = Net::new(team_cfg());
    for _ in 0..8 {
        net.join(Role::Peer);
    }
    net.stream(8, Duration::from_millis(10));
    let before = net.splitter_egress;
    net.splitter.set_stream_info(StreamInfo {
        title: "Floe - One".into(),
        ..StreamInfo::default()
    });
    net.pump();
    // Three signed copies from the splitter; the peers flood them.
    let info_egress = net.splitter_egress - before;
    assert!(info_egress < 3 * 200, "{info_egress}");
    net.stream(8, Duration::from_millis(10));
    net.settle();
    // Each peer takes the title right before the first chunk pushed after it (chunk 8), not
    // when the Info came: its playout is behind the splitter.
    let one = || vec![(8, "Floe - One".to_string())];
    for k in 0..8 {
        assert_eq!(net.titles[k], one(), "peer {k}");
    }
    // A member's Info under its genuine pair key but without the splitter's signature.
    let (addr, epoch) = (net.peers[1].0, net.peers[0].1.info_epoch);
    let msg = Message::Info {
        epoch: epoch + 1,
        first_chunk: ChunkNo(0),
        info: StreamInfo {
            title: "Forged".into(),
            ..StreamInfo::default()
        },
        signature: [7; 64],
        relay: None,
    };
    let d = forge(&net, 1, 0, 1 << 30, msg);
    let now = net.now;
    net.peers[0].1.handle_datagram(now, addr, &d);
    net.settle();
    assert_eq!(net.titles[0], one());
    assert_eq!(net.peers[0].1.stats().bad_signatures, 1);
}

#[test]
fn a_member_cannot_pass_a_chunk_off_as_the_splitters() {
    let mut net = Net::new(team_cfg());
    for _ in 0..2 {
        net.join(Role::Peer);
    }
    net.stream(8, Duration::from_millis(10));
    let (addr, next) = (net.peers[1].0, net.splitter.next_chunk());
    // Under its genuine pair key, but in the splitter's format (no origin).
    let msg = Message::Chunk {
        no: next,
        origin: PeerId::NONE,
        relay: None,
        payload: Bytes::from(vec![0u8; 100]),
    };
    let d = forge(&net, 1, 0, 1 << 30, msg);
    let now = net.now;
    let before = net.peers[0].1.stats().garbage;
    net.peers[0].1.handle_datagram(now, addr, &d);
    assert_eq!(net.peers[0].1.stats().garbage, before + 1);
    net.stream(40, Duration::from_millis(10));
    net.settle();
    check_in_order(&net.delivered[0]);
}

#[test]
fn a_forging_member_is_proven_expelled_and_nothing_forged_plays() {
    let mut net = Net::new(team_cfg());
    net.join(Role::Monitor);
    for _ in 0..3 {
        net.join(Role::Peer);
    }
    net.stream(20, Duration::from_millis(10));
    // Peer 3 turns polluter: its own traffic stops, forged chunks numbered ahead go out.
    let (bad_addr, bad_id) = (net.peers[3].0, net.peers[3].1.id);
    net.dead.insert(bad_addr);
    let mut seq = 1 << 20;
    for round in 0..20u32 {
        let next = net.splitter.next_chunk();
        for v in 0..3 {
            for ahead in 0..4 {
                seq += 1;
                let msg = Message::Chunk {
                    no: next.plus(ahead),
                    origin: bad_id,
                    relay: None,
                    payload: Bytes::from(vec![0u8; 300]),
                };
                let d = forge(&net, 3, v, seq, msg);
                let now = net.now;
                net.peers[v].1.handle_datagram(now, bad_addr, &d);
            }
        }
        net.stream(4 + round % 3, Duration::from_millis(10));
    }
    net.stream(100, Duration::from_millis(10));
    net.settle();
    assert!(net.splitter_events.iter().any(|e| matches!(
        e,
        SplitterEvent::PeerLeft { id, reason: LeaveReason::Polluter, .. } if *id == bad_id
    )));
    for k in 0..3 {
        // Every played chunk is the splitter's (check_in_order compares payloads).
        check_in_order(&net.delivered[k]);
        assert!(net.delivered[k].len() >= 150, "peer {k}");
        let s = net.peers[k].1.stats();
        assert!(s.rejected > 0 && s.verified > 0, "peer {k}: {s:?}");
        assert!(s.neighbours.iter().all(|n| n.id != bad_id));
    }
    // Known bad now: what it sends is dropped unread.
    let d = forge(&net, 3, 0, seq + 1, Message::KeepAlive { from: bad_id });
    let now = net.now;
    let before = net.peers[0].1.stats().from_bad_members;
    net.peers[0].1.handle_datagram(now, bad_addr, &d);
    assert_eq!(net.peers[0].1.stats().from_bad_members, before + 1);
}

#[test]
fn spoofed_and_replayed_splitter_datagrams_are_ignored() {
    let mut net = Net::new(team_cfg());
    net.join(Role::Monitor);
    net.join(Role::Peer);
    net.stream(10, Duration::from_millis(10));
    let (saddr, team) = (net.saddr, net.splitter.team_id());
    let goodbye = |key: &Key, seq| {
        let p = Packet {
            team,
            msg: Message::Goodbye { from: PeerId::NONE },
        };
        wire::seal(&p, PeerId::NONE, seq, key, None).unwrap()
    };
    let now = net.now;
    let p = &mut net.peers[1].1;
    p.handle_datagram(now, saddr, &goodbye(&[1; 32], 1 << 30));
    // The genuine key but an old sequence number: a replay.
    let real = *p.trust.key();
    p.handle_datagram(now, saddr, &goodbye(&real, 1));
    let s = p.stats();
    assert_eq!((s.bad_mac, s.replays), (1, 1));
    assert!(std::iter::from_fn(|| p.poll_event()).all(|e| e != PeerEvent::SplitterGone));
    net.stream(50, Duration::from_millis(10));
    net.settle();
    assert_eq!(net.delivered[1].len(), 60);
}

/// A peer that joined a splitter alone (bound at `local`), and the splitter's side of their
/// channel: messages sealed as the splitter's, introductions of newer members.
struct Joined {
    p: Peer,
    me: PeerId,
    key: Key,
    seq: u64,
}

impl Joined {
    const SPLITTER: &str = "192.0.2.1:8001";

    fn new(cfg: SplitterConfig, seen: SocketAddr, local: SocketAddr, t0: Instant) -> Joined {
        Joined::new_with(cfg, seen, local, t0, |_| {})
    }

    /// As [`Joined::new`], with the peer's config changed by `peer_cfg`.
    fn new_with(
        cfg: SplitterConfig,
        seen: SocketAddr,
        local: SocketAddr,
        t0: Instant,
        peer_cfg: impl FnOnce(&mut PeerConfig),
    ) -> Joined {
        let splitter: SocketAddr = Self::SPLITTER.parse().unwrap();
        let mut s = Splitter::new(cfg, 77, t0);
        // It joined a second ago: its Train has left (the pacer holds the greetings for it).
        let joined = t0 - Duration::from_secs(1);
        let (me, reply) = s
            .handle_join(joined, seen, &JoinRequest::new(Role::Peer))
            .unwrap();
        let key = reply.peer_key;
        let mut cfg = PeerConfig::new(splitter);
        cfg.local = Some(local);
        peer_cfg(&mut cfg);
        let mut p = Peer::new(cfg, reply, 1, joined);
        while p.poll_transmit().is_some() {}
        Joined { p, me, key, seq: 0 }
    }

    fn splitter_says(&mut self, now: Instant, msg: Message) {
        self.seq += 1;
        let d = wire::seal(
            &Packet { team: 77, msg },
            PeerId::NONE,
            self.seq,
            &self.key,
            None,
        );
        let splitter: SocketAddr = Self::SPLITTER.parse().unwrap();
        self.p.handle_datagram(now, splitter, &d.unwrap());
    }

    /// A peer the splitter sees where it is bound (no NAT between them), with the test
    /// team's config.
    fn seen_where_bound(t0: Instant) -> Joined {
        let local: SocketAddr = "10.0.0.9:9".parse().unwrap();
        Joined::new(team_cfg(), local, local, t0)
    }

    /// A peer seen where it is bound, to which the splitter introduced `n` members.
    fn with_neighbours(t0: Instant, n: u32) -> Joined {
        let mut j = Joined::seen_where_bound(t0);
        j.introduce_members(t0, n);
        j
    }

    /// [`Joined::with_neighbours`] in a team that floods in two levels from `relay_from`
    /// members.
    fn two_level(t0: Instant, n: u32, relay_from: u32) -> Joined {
        let local: SocketAddr = "10.0.0.9:9".parse().unwrap();
        let cfg = SplitterConfig {
            relay_from,
            ..team_cfg()
        };
        let mut j = Joined::new(cfg, local, local, t0);
        j.introduce_members(t0, n);
        j
    }

    /// A peer with a public endpoint (the splitter said so) in a team that floods in two
    /// levels from four members; a neighbour silent for a minute is dropped.
    fn public_two_level(t0: Instant) -> Joined {
        let local: SocketAddr = "198.51.100.9:40000".parse().unwrap();
        let mut j = Joined::new_with(two_level_from_4(), local, local, t0, |c| {
            c.neighbour_timeout = Duration::from_secs(60)
        });
        j.splitter_says(t0, Message::Endpoint { endpoint: local });
        j.said();
        j
    }

    /// Ids after ours of our group (`ours`) or of another one, in a team of five to nine
    /// members flooding in two levels (three groups).
    fn newer_ids(&self, ours: bool) -> impl Iterator<Item = PeerId> + use<> {
        let me = self.me;
        let k = relay::groups(6, 4).unwrap();
        (1..)
            .map(move |x| PeerId(me.0 + x))
            .filter(move |id| (relay::group(*id, k) == relay::group(me, k)) == ours)
    }

    /// The splitter introduces members `ids`, each at an address of its own: their addresses
    /// and our pair keys with them.
    fn introduce_all(
        &mut self,
        now: Instant,
        ids: &[PeerId],
    ) -> HashMap<PeerId, (SocketAddr, Key)> {
        let mut at = HashMap::new();
        for (k, id) in ids.iter().enumerate() {
            let a: SocketAddr = format!("203.0.113.{}:50000", k + 1).parse().unwrap();
            at.insert(*id, (a, self.introduce(now, *id, a)));
        }
        at
    }

    /// What the peer sent since last asked: (to, message).
    fn said(&mut self) -> Vec<(SocketAddr, Message)> {
        std::iter::from_fn(|| self.p.poll_transmit())
            .map(|t| (t.to, wire::open(&t.data).unwrap().packet.msg))
            .collect()
    }

    /// Member `id`, introduced at `at` with pair key `key`, greets us with its datagram `seq`:
    /// how many answers (KeepAlives to it) we sent.
    fn answers_to_greeting(&mut self, id: PeerId, (at, key): (SocketAddr, Key), seq: u64) -> usize {
        let now = self.p.now;
        self.neighbour_says(now, id, at, &key, seq, hello(id));
        self.said()
            .iter()
            .filter(|(to, m)| *to == at && matches!(m, Message::KeepAlive { .. }))
            .count()
    }

    /// The splitter is alive at `now` and the peer's timers run: what the peer sent.
    fn tick(&mut self, now: Instant) -> Vec<(SocketAddr, Message)> {
        self.splitter_says(now, Message::KeepAlive { from: PeerId::NONE });
        self.timers(now)
    }

    /// The peer's timers due by `now` run: what the peer sent since last asked.
    fn timers(&mut self, now: Instant) -> Vec<(SocketAddr, Message)> {
        if self.p.poll_timeout().is_some_and(|d| d <= now) {
            self.p.handle_timeout(now);
        }
        self.said()
    }

    /// Member `id` at `at` sends `msg`, its datagram `seq` to us, sealed under our `pair` key.
    fn neighbour_says(
        &mut self,
        now: Instant,
        id: PeerId,
        at: SocketAddr,
        pair: &Key,
        seq: u64,
        msg: Message,
    ) {
        let d = wire::seal(&Packet { team: 77, msg }, id, seq, pair, None).unwrap();
        self.p.handle_datagram(now, at, &d);
    }

    /// The splitter introduces the `n` members after us, each at an address of its own.
    fn introduce_members(&mut self, now: Instant, n: u32) {
        let ids: Vec<PeerId> = (1..=n).map(|k| PeerId(self.me.0 + k)).collect();
        self.introduce_all(now, &ids);
    }

    /// The splitter introduces member `id` at `at`; returns our pair key with it.
    fn introduce(&mut self, now: Instant, id: PeerId, at: SocketAddr) -> Key {
        let pair = crate::p2psp::auth::pair_key(&self.key, id);
        let mut masked = pair;
        crate::p2psp::auth::intro_mask(&self.key, 77, id, &mut masked);
        let msg = Message::Introduce {
            id,
            endpoint: at,
            key: masked,
        };
        self.splitter_says(now, msg);
        pair
    }
}

/// The test team's config, flooding in two levels from four members.
fn two_level_from_4() -> SplitterConfig {
    SplitterConfig {
        relay_from: 4,
        ..team_cfg()
    }
}

/// A greeting from `from`.
fn hello(from: PeerId) -> Message {
    Message::Hello { from }
}

/// Splitter chunk `no`, as the splitter sends it.
fn splitter_chunk(no: u32) -> Message {
    Message::Chunk {
        no: ChunkNo(no),
        origin: PeerId::NONE,
        relay: None,
        payload: payload(no),
    }
}

/// The splitter says which members it dropped for silence: we drop them too, instead of
/// flooding to them for three of their keepalive gaps. Only the splitter is heard on it.
#[test]
fn members_the_splitter_dropped_for_silence_are_dropped() {
    let t0 = Instant::now();
    let mut j = Joined::seen_where_bound(t0);
    let (a, b) = (PeerId(j.me.0 + 1), PeerId(j.me.0 + 2));
    j.introduce(t0, a, "203.0.113.5:50000".parse().unwrap());
    j.introduce(t0, b, "203.0.113.6:50000".parse().unwrap());
    let ids = |p: &Peer| {
        p.stats()
            .neighbours
            .iter()
            .map(|n| n.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&j.p), vec![a, b]);
    j.splitter_says(
        t0,
        Message::Gone {
            ids: vec![a, PeerId(999)],
        },
    );
    assert_eq!(ids(&j.p), vec![b]);
    assert_eq!(j.p.stats().neighbours_dropped_silence, 1);
}

/// A member we dropped and took back may never have dropped us: our datagrams to it count on
/// from past every one we sent it before, or its replay window would refuse them all.
#[test]
fn a_member_taken_back_still_hears_us() {
    let t0 = Instant::now();
    let mut j = Joined::seen_where_bound(t0);
    let a = PeerId(j.me.0 + 1);
    let at: SocketAddr = "203.0.113.5:50000".parse().unwrap();
    let pair = j.introduce(t0, a, at);
    // The member's window of our datagrams, as it would keep it.
    let mut window = ReplayWindow::default();
    let mut heard = |p: &mut Peer, now: Instant| -> (usize, usize) {
        while p.poll_timeout().is_some_and(|d| d <= now) {
            p.handle_timeout(now);
        }
        let (mut ok, mut refused) = (0, 0);
        for t in std::iter::from_fn(|| p.poll_transmit()).filter(|t| t.to == at) {
            let o = wire::open(&t.data).unwrap();
            assert!(o.verify(&t.data, &pair, 77));
            if window.accept(o.seq) {
                ok += 1;
            } else {
                refused += 1;
            }
        }
        (ok, refused)
    };
    let mut now = t0;
    let mut greeted = 0;
    for _ in 0..300 {
        now += Duration::from_millis(10);
        greeted += heard(&mut j.p, now).0;
    }
    assert!(greeted >= 2, "{greeted}");
    // The splitter says it is gone; then it speaks again, and we take it back.
    j.splitter_says(now, Message::Gone { ids: vec![a] });
    assert!(j.p.stats().neighbours.is_empty());
    now += Duration::from_millis(500);
    let d = wire::seal(
        &Packet {
            team: 77,
            msg: Message::KeepAlive { from: a },
        },
        a,
        1,
        &pair,
        None,
    )
    .unwrap();
    j.p.handle_datagram(now, at, &d);
    assert_eq!(j.p.stats().neighbours.len(), 1);
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..2000 {
        now += Duration::from_millis(10);
        let (o, r) = heard(&mut j.p, now);
        ok += o;
        refused += r;
    }
    assert!(ok >= 1, "nothing sent to the member taken back");
    assert_eq!(refused, 0);
}

/// The splitter introduces a member that joined after us (hole punching): we greet it at once
/// and again every 0.4 s until it is heard from, 8 greetings at most; once heard, it is kept
/// alive at most 15 s apart (inside NAT timeouts) even while the stream is idle, and we tell
/// the splitter where we are bound when it tells us where it sees us.
#[test]
fn an_introduced_member_is_greeted_until_heard_and_kept_alive_while_idle() {
    let t0 = Instant::now();
    let local: SocketAddr = "10.0.0.9:9".parse().unwrap();
    let mut j = Joined::new(team_cfg(), "192.0.2.9:9".parse().unwrap(), local, t0);
    let seen: SocketAddr = "198.51.100.9:40000".parse().unwrap();
    j.splitter_says(t0, Message::Endpoint { endpoint: seen });
    assert_eq!(j.p.stats().public_endpoint, Some(seen));
    let said: Vec<Message> = std::iter::from_fn(|| j.p.poll_transmit())
        .map(|t| wire::open(&t.data).unwrap().packet.msg)
        .collect();
    assert_eq!(said, vec![Message::Endpoint { endpoint: local }]);

    let other = PeerId(j.me.0 + 1);
    let at: SocketAddr = "203.0.113.5:50000".parse().unwrap();
    let pair = j.introduce(t0, other, at);
    let hellos_to = |p: &mut Peer| {
        std::iter::from_fn(|| p.poll_transmit())
            .filter(|t| t.to == at)
            .filter(|t| {
                matches!(
                    wire::open(&t.data).unwrap().packet.msg,
                    Message::Hello { .. }
                )
            })
            .count()
    };
    let mut hellos = hellos_to(&mut j.p);
    assert_eq!(hellos, 1, "greeted at once");
    let mut now = t0;
    for _ in 0..36 {
        now += Duration::from_millis(100);
        j.splitter_says(now, Message::KeepAlive { from: PeerId::NONE });
        if j.p.poll_timeout().is_some_and(|d| d <= now) {
            j.p.handle_timeout(now);
        }
        hellos += hellos_to(&mut j.p);
    }
    assert_eq!(hellos, 8, "greeted until the retries ran out");
    assert!(!j.p.stats().neighbours[0].heard);
    // Never heard: given up (no chunks go into a closed NAT).
    now += Duration::from_millis(400);
    j.p.handle_timeout(now);
    assert!(j.p.stats().neighbours.is_empty());
    // It speaks at last (its datagram sealed under our pair key): taken back, heard, never
    // greeted again, and kept alive while nothing streams.
    let mut their_seq = 0u64;
    let mut last_to_it = now;
    let mut widest = Duration::ZERO;
    for k in 0..600 {
        now += Duration::from_millis(100);
        if k % 50 == 0 {
            their_seq += 1;
            let ka = Packet {
                team: 77,
                msg: Message::KeepAlive { from: other },
            };
            let d = wire::seal(&ka, other, their_seq, &pair, None).unwrap();
            j.p.handle_datagram(now, at, &d);
        }
        j.splitter_says(now, Message::KeepAlive { from: PeerId::NONE });
        if j.p.poll_timeout().is_some_and(|d| d <= now) {
            j.p.handle_timeout(now);
        }
        for t in std::iter::from_fn(|| j.p.poll_transmit()) {
            if t.to == at {
                let msg = wire::open(&t.data).unwrap().packet.msg;
                assert!(
                    !matches!(msg, Message::Hello { .. }),
                    "no greetings once heard"
                );
                widest = widest.max(now - last_to_it);
                last_to_it = now;
            }
        }
    }
    let st = j.p.stats();
    assert!(st.neighbours[0].heard && st.neighbours[0].id == other);
    assert!(
        widest <= MAX_MESH_KEEPALIVE,
        "{widest:?} between datagrams to it"
    );
    assert!(now - last_to_it <= MAX_MESH_KEEPALIVE);
    assert_eq!(st.introductions, 1);
}

/// A public member of a team that floods in two levels, introduced to newer members, leaves
/// the greeting to them (their replies list us): it answers the greeting of a member of its
/// group that comes, and greets only one whose greeting has not come by its next check of the
/// neighbours (a keepalive gap; the greeting may be lost). Both sides greeting each other
/// doubled a flash crowd's control: 1000 newcomers each sent and answered 2000 greetings,
/// seconds of their uplinks.
#[test]
fn a_public_member_leaves_the_greeting_to_a_newer_member() {
    let t0 = Instant::now();
    let mut j = Joined::public_two_level(t0);
    // `greeter` greets us; `silent` never does; both of our group. Three others before
    // them make the team large enough.
    let mates: Vec<PeerId> = j.newer_ids(true).take(2).collect();
    let (greeter, silent) = (mates[0], mates[1]);
    let others: Vec<PeerId> = j.newer_ids(false).take(3).collect();
    let at = j.introduce_all(t0, &[others, mates].concat());
    let greeter_at = at[&greeter].0;
    let silent_at = at[&silent].0;
    let is_hello = |m: &Message| matches!(m, Message::Hello { .. });
    assert!(
        !j.said()
            .iter()
            .any(|(to, m)| (*to == greeter_at || *to == silent_at) && is_hello(m)),
        "no greeting at once"
    );
    assert_eq!(
        j.answers_to_greeting(greeter, at[&greeter], 1),
        1,
        "the newcomer's greeting is answered"
    );
    let mut now = t0;
    let mut first_to_silent = None;
    for _ in 0..((MAX_MESH_KEEPALIVE.as_millis() / 100) as usize + 1) {
        now += Duration::from_millis(100);
        for (to, m) in j.tick(now) {
            assert!(!(to == greeter_at && is_hello(&m)), "the greeter is heard");
            if to == silent_at && is_hello(&m) {
                first_to_silent = first_to_silent.or(Some(now - t0));
            }
        }
        if first_to_silent.is_some() {
            break;
        }
    }
    let first = first_to_silent.expect("the silent newcomer is greeted");
    assert!(
        (HELLO_RETRY..=MAX_MESH_KEEPALIVE).contains(&first),
        "greeted after {first:?}"
    );
    let st = j.p.stats();
    assert!(st.neighbours.iter().any(|n| n.id == greeter && n.heard));
    assert!(st.neighbours.iter().any(|n| n.id == silent && !n.heard));
}

/// From a public endpoint, in a team that floods in two levels, greetings between members of
/// different groups go unanswered (in a flash crowd of 1000 the handshake held every copy back
/// for seconds): a stranger's first greeting is not answered, its second is (it waits for an
/// answer: it is behind a NAT, or its view is one level), a third is not; one of our group is
/// answered at once. A member of another group that never speaks is never greeted, nor given
/// up for not answering: it gets keepalives, and is dropped only once silent for the
/// neighbour timeout.
#[test]
fn greetings_between_groups_go_unanswered_from_a_public_endpoint() {
    let t0 = Instant::now();
    let mut j = Joined::public_two_level(t0);
    let mate = j.newer_ids(true).next().unwrap();
    let others: Vec<PeerId> = j.newer_ids(false).take(4).collect();
    let (stranger, silent) = (others[0], others[1]);
    let at = j.introduce_all(t0, &[vec![mate], others.clone()].concat());
    j.said();
    assert_eq!(
        j.answers_to_greeting(mate, at[&mate], 1),
        1,
        "our group is answered"
    );
    let got: Vec<usize> = (1..=3)
        .map(|seq| j.answers_to_greeting(stranger, at[&stranger], seq))
        .collect();
    assert_eq!(got, [0, 1, 0], "answers to a stranger's three greetings");

    let silent_at = at[&silent].0;
    let mut now = t0;
    let mut keepalives = 0;
    while now < t0 + Duration::from_secs(30) {
        now += Duration::from_millis(100);
        for (to, m) in j.tick(now) {
            assert!(
                !(to == silent_at && matches!(m, Message::Hello { .. })),
                "a silent member of another group is not greeted"
            );
            keepalives += usize::from(to == silent_at);
        }
    }
    // Greeted in vain, a member of our group would have been given up by now (about 19 s).
    let listed = |j: &Joined, id| j.p.stats().neighbours.iter().any(|n| n.id == id);
    assert!(listed(&j, silent), "not given up for not answering");
    assert!(keepalives > 0, "kept alive");
    // Silent for the neighbour timeout (the config's 60 s here): dropped as any.
    while now < t0 + j.p.cfg.neighbour_timeout + Duration::from_secs(1) {
        now += Duration::from_millis(100);
        j.tick(now);
    }
    assert!(!listed(&j, silent), "dropped once silent for the timeout");
}

/// Behind a NAT greetings go both ways whatever the groups: they punch the holes. A stranger's
/// first greeting is answered, and a member of another group that is not heard is greeted
/// every 0.4 s until the greetings run out.
#[test]
fn behind_a_nat_greetings_between_groups_are_answered_and_repeated() {
    let t0 = Instant::now();
    let local: SocketAddr = "10.0.0.9:9".parse().unwrap();
    let seen: SocketAddr = "198.51.100.9:40000".parse().unwrap();
    let mut j = Joined::new(two_level_from_4(), seen, local, t0);
    j.splitter_says(t0, Message::Endpoint { endpoint: seen });
    j.said();
    let others: Vec<PeerId> = j.newer_ids(false).take(5).collect();
    let at = j.introduce_all(t0, &others);
    j.said();
    let (stranger, silent) = (others[0], others[1]);
    assert_eq!(
        j.answers_to_greeting(stranger, at[&stranger], 1),
        1,
        "answered at once"
    );
    let silent_at = at[&silent].0;
    let mut greetings = 0;
    let mut now = t0;
    while now < t0 + UNHEARD_GIVE_UP {
        now += Duration::from_millis(100);
        greetings += j
            .tick(now)
            .iter()
            .filter(|(to, m)| *to == silent_at && matches!(m, Message::Hello { .. }))
            .count();
    }
    // The first went out with the introduction.
    assert_eq!(greetings + 1, usize::from(HELLO_TRIES), "greeted again");
    now += Duration::from_millis(500);
    j.tick(now);
    assert!(
        !j.p.stats().neighbours.iter().any(|n| n.id == silent),
        "given up"
    );
}

/// A joiner does not know at first whether it is behind a NAT, and greets as if it were. Once
/// the splitter says it is not, unheard members of other groups are greeted no more (and not
/// given up), those of its own group still are.
#[test]
fn a_joiner_that_learns_its_endpoint_is_public_stops_greeting_other_groups() {
    let t0 = Instant::now();
    let local: SocketAddr = "10.0.0.9:9".parse().unwrap();
    let mut j = Joined::new_with(two_level_from_4(), local, local, t0, |c| {
        c.neighbour_timeout = Duration::from_secs(60)
    });
    let mates: Vec<PeerId> = j.newer_ids(true).take(2).collect();
    let others: Vec<PeerId> = j.newer_ids(false).take(4).collect();
    let at = j.introduce_all(t0, &[mates.clone(), others.clone()].concat());
    let id_at: HashMap<SocketAddr, PeerId> = at.iter().map(|(id, (a, _))| (*a, *id)).collect();
    let greeted = |said: Vec<(SocketAddr, Message)>| -> HashSet<PeerId> {
        said.iter()
            .filter(|(_, m)| matches!(m, Message::Hello { .. }))
            .filter_map(|(to, _)| id_at.get(to).copied())
            .collect()
    };
    let all: HashSet<PeerId> = mates.iter().chain(&others).copied().collect();
    assert_eq!(greeted(j.said()), all, "all greeted at once");
    let mut now = t0 + Duration::from_millis(500);
    assert_eq!(greeted(j.tick(now)), all, "and again");
    j.splitter_says(now, Message::Endpoint { endpoint: local });
    let mut later = HashSet::new();
    while now < t0 + Duration::from_secs(30) {
        now += Duration::from_millis(100);
        later.extend(greeted(j.tick(now)));
    }
    assert_eq!(
        later,
        mates.iter().copied().collect(),
        "only our group again"
    );
    let listed: HashSet<PeerId> = j.p.stats().neighbours.iter().map(|n| n.id).collect();
    assert_eq!(
        listed,
        others.iter().copied().collect(),
        "other groups kept, our unheard group given up"
    );
}

/// A joiner's greetings to a large team wait in its pacer. A member that greets it first is
/// answered ahead of them, and the joiner's own greeting to that member, no longer needed,
/// never leaves: a flash crowd's slow members answered behind seconds of their own greetings,
/// and were greeted again and again meanwhile.
#[test]
fn a_greeting_is_answered_ahead_of_our_own_and_ours_to_the_greeter_is_dropped() {
    // On the slowest pacer 60 greetings take about two seconds to leave.
    let (mut p, members, mut now) = greeting_newcomer(60);
    let mut said: Vec<(PeerId, Message)> = vec![];
    now = drive_newcomer(&mut p, &members, now, 1, |_, id, msg| {
        said.push((id, msg));
        None
    });
    // A member late in the list greets us before our greeting to it has left.
    let (greeter, greeter_at, pair) = members[50];
    let last = members[59].0;
    assert!(
        !said.iter().any(|(id, _)| *id == greeter || *id == last),
        "the greetings wait in the pacer"
    );
    let hello = Packet {
        team: 77,
        msg: Message::Hello { from: greeter },
    };
    let d = wire::seal(&hello, greeter, 1, &pair, None).unwrap();
    p.handle_datagram(now, greeter_at, &d);
    drive_newcomer(&mut p, &members, now, 600, |_, id, msg| {
        said.push((id, msg));
        None
    });
    let is_hello = |m: &Message| matches!(m, Message::Hello { .. });
    let answer = said
        .iter()
        .position(|(id, m)| *id == greeter && matches!(m, Message::KeepAlive { .. }))
        .expect("the greeting is answered");
    let to_last = said
        .iter()
        .position(|(id, m)| *id == last && is_hello(m))
        .expect("the last listed member is greeted");
    assert!(answer < to_last, "answered ahead of our greetings");
    assert!(
        !said.iter().any(|(id, m)| *id == greeter && is_hello(m)),
        "no greeting to a member heard from"
    );
    let greeted: HashSet<PeerId> = said
        .iter()
        .filter(|(_, m)| is_hello(m))
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(greeted.len(), 59, "every other member is greeted");
}

/// From a public endpoint an unheard neighbour is greeted at doubling gaps (its answer waits
/// behind a slow uplink; there is no hole to punch), and given up only once they ran out.
#[test]
fn a_public_member_greets_an_unheard_neighbour_less_and_less_often() {
    let t0 = Instant::now();
    // A neighbour silent for a minute is dropped as silent; it is given up sooner.
    let local: SocketAddr = "10.0.0.9:9".parse().unwrap();
    let mut j = Joined::new_with(team_cfg(), local, local, t0, |c| {
        c.neighbour_timeout = Duration::from_secs(60)
    });
    j.splitter_says(t0, Message::Endpoint { endpoint: local });
    while j.p.poll_transmit().is_some() {}
    let other = PeerId(j.me.0 + 1);
    let at: SocketAddr = "203.0.113.5:50000".parse().unwrap();
    j.introduce(t0, other, at);
    let mut greetings = vec![];
    let mut now = t0;
    let mut gone_at = None;
    while now < t0 + Duration::from_secs(25) && gone_at.is_none() {
        for t in std::iter::from_fn(|| j.p.poll_transmit()) {
            if t.to == at
                && matches!(
                    wire::open(&t.data).unwrap().packet.msg,
                    Message::Hello { .. }
                )
            {
                greetings.push(now - t0);
            }
        }
        if j.p.stats().neighbours.is_empty() {
            gone_at = Some(now - t0);
        }
        now += Duration::from_millis(100);
        j.splitter_says(now, Message::KeepAlive { from: PeerId::NONE });
        if j.p.poll_timeout().is_some_and(|d| d <= now) {
            j.p.handle_timeout(now);
        }
    }
    let gaps: Vec<u128> = greetings
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    assert_eq!(
        gaps,
        [400, 800, 1600, 3200, 3200, 3200, 3200],
        "{greetings:?}"
    );
    let gone_at = gone_at.expect("given up");
    assert_eq!(
        gone_at,
        Duration::from_millis(18_800),
        "given up after the last gap"
    );
}

#[test]
fn a_neighbour_that_returns_no_chunks_but_talks_is_kept() {
    // The splitter gives an uplink too slow to flood no share: such a neighbour returns
    // nothing for what we send it (a debt far past DBS's 128), yet it is alive and must keep
    // getting our chunks. Here peer 2's copies to peer 0 are lost; peer 0 asks others.
    let mut net = Net::new(team_cfg());
    for _ in 0..3 {
        net.join(Role::Peer);
    }
    let (a0, a2) = (net.peers[0].0, net.peers[2].0);
    net.drop = Some(Box::new(move |from, t| {
        from == a2 && t.to == a0 && wire::peek_type(&t.data) == Some(wire::ty::CHUNK)
    }));
    net.stream(600, Duration::from_millis(10));
    for _ in 0..5 {
        net.settle();
    }
    let s = net.peers[0].1.stats();
    let n2 = s
        .neighbours
        .iter()
        .find(|n| n.addr == a2)
        .expect("still a neighbour");
    assert!(n2.debt > 150, "debt {}", n2.debt);
    // Past the first round trips of requests, nothing is lost.
    assert_eq!(net.delivered[0].len() + net.skipped[0].len(), 600);
    assert!(
        net.skipped[0].iter().all(|no| no.0 < 50),
        "skipped {:?}",
        net.skipped[0]
    );
}

/// A team from `relay_from` members on floods in two levels: everyone still plays every chunk
/// in order, everyone relays for its group, and an origin sends far fewer copies than N − 1.
#[test]
fn a_large_team_floods_in_two_levels_and_everyone_plays_everything() {
    // The splitter tells its joiners the team's setting.
    let mut net = Net::new(SplitterConfig {
        relay_from: 16,
        ..team_cfg()
    });
    net.join_team(20);
    net.stream(300, Duration::from_millis(10));
    net.settle();
    let mut requests = 0;
    for k in 0..20 {
        net.assert_played_everything(k, 300);
        let s = net.peers[k].1.stats();
        assert!(s.group_relays > 0, "peer {k} never relayed for its group");
        requests += s.requests_sent;
        // Each peer still carries about (N − 1)/N of the stream: 5 groups of about 4 (as
        // uneven as a hash makes them), an origin sends to its group and 4 relays, each
        // relay to the others of its group.
        assert!(s.sent > 150 && s.sent < 450, "peer {k} sent {}", s.sent);
    }
    // The groups agree (every member knows the whole team): nothing needs asking for.
    assert!(requests < 20, "{requests} requests");
    // A title goes through the groups as well (the splitter sends it to a few members).
    net.splitter.set_stream_info(StreamInfo {
        title: "Floe - Two".into(),
        ..StreamInfo::default()
    });
    net.pump();
    net.stream(8, Duration::from_millis(10));
    net.settle();
    for k in 0..20 {
        let titles: Vec<&str> = net.titles[k].iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(titles, ["Floe - Two"], "peer {k}");
    }
    // An origin's own flood: about 2√N copies, not N − 1. Count one chunk's copies from its
    // origin with a drop filter that only looks.
    let seen = std::rc::Rc::new(std::cell::RefCell::new(HashMap::<SocketAddr, u32>::new()));
    let log = seen.clone();
    let saddr = net.saddr;
    net.drop = Some(Box::new(move |from, t| {
        if from != saddr
            && let Ok(o) = wire::open(&t.data)
            && let Message::Chunk {
                no: ChunkNo(318),
                origin,
                ..
            } = o.packet.msg
            && origin == o.sender
        {
            *log.borrow_mut().entry(from).or_default() += 1;
        }
        false
    }));
    net.stream(20, Duration::from_millis(10));
    net.settle();
    let copies: Vec<u32> = seen.borrow().values().copied().collect();
    assert_eq!(copies.len(), 1, "one origin: {copies:?}");
    assert!(
        copies[0] < 12,
        "the origin sent {} copies of its chunk",
        copies[0]
    );
}

/// Holes wait as long as floods have lately come late. The chunk rate's samples retime them,
/// but those come with our own splitter chunks, a minute apart in a team of 1000: where they
/// are stale, the holes follow the floods' lateness as it moves. (While a large team formed on
/// tight uplinks and its floods grew late, holes kept the first minute's wait, and every
/// member asked for nearly every chunk.)
#[test]
fn hole_waits_follow_late_floods_when_the_rate_is_not_sampled() {
    // A lag of 512 chunks at 64 ms (holes wait at most 3/4 of it: 24 s).
    let mut net = Net::new(SplitterConfig {
        buffer_size: 1024,
        ..team_cfg()
    });
    net.join_team(3);
    net.stream(40, Duration::from_millis(64));
    net.settle();
    let p = &mut net.peers[1].1;
    let skip_after = p.cfg.skip_after;
    let (r, _) = p.own_ref.expect("a splitter chunk");
    let first = p.request.delay();
    assert!(first < Duration::from_secs(2));
    // A member's copy of a chunk the splitter sent 5 s ago, right after our own splitter
    // chunks retimed the holes: they keep their wait until the next sample.
    let soon = net.now + Duration::from_secs(4);
    p.note_lateness(soon, r);
    assert!(p.lateness >= Duration::from_secs(4));
    assert_eq!(p.request.delay(), first);
    // Half a minute without a splitter chunk: a late copy retimes the holes at once.
    let now = net.now + Duration::from_secs(30);
    p.note_lateness(now, r.plus(1));
    assert!(p.lateness >= Duration::from_secs(20));
    assert!(
        p.request.delay() >= REQUEST_AFTER + p.lateness,
        "{:?}",
        p.request.delay()
    );
    assert!(p.buffer.skip_after() >= skip_after + p.lateness);
    // Small changes leave them be; a flood on time a while later shortens them again.
    let set = p.request.delay();
    p.note_lateness(now + Duration::from_millis(50), r.plus(2));
    assert_eq!(p.request.delay(), set);
    let later = now + Duration::from_secs(120);
    p.own_ref = Some((r.plus(2000), later));
    p.note_lateness(later, r.plus(2000));
    assert!(p.request.delay() < set / 2, "{:?}", p.request.delay());
}

/// Only a copy its origin marked as a relay's makes a member copy it on to its group: a plain
/// copy from the origin (a repair it asked for, or a newcomer's flood to the part of the team
/// it knows) is the member's alone. Relaying every copy from another group's origin made each
/// of those a flood to a whole group (0.08 duplicates a chunk in a 1000-member flash crowd).
#[test]
fn only_the_copies_an_origin_marks_are_relayed() {
    let mut net = Net::new(SplitterConfig {
        relay_from: 16,
        ..team_cfg()
    });
    net.join_team(20);
    net.stream(40, Duration::from_millis(10));
    net.settle();
    let m = 5;
    let (m_addr, m_id) = (net.peers[m].0, net.peers[m].1.id);
    let k = net.peers[m].1.relay_groups().expect("two levels");
    let mut relayed = Vec::new();
    for mark in [None, Some(wire::Relay::whole(k as u16))] {
        // Chunks until one goes to an origin of another group than ours, none of whose copies
        // reach us: ours comes from the origin, by hand, marked or not. Our own copies of it
        // are counted.
        let ours = std::rc::Rc::new(std::cell::Cell::new(0u32));
        let mut found = None;
        for _ in 0..50 {
            let no = net.splitter.next_chunk();
            let count = ours.clone();
            net.drop = Some(Box::new(move |from, t| {
                let this = wire::open(&t.data)
                    .is_ok_and(|o| matches!(o.packet.msg, Message::Chunk { no: n, .. } if n == no));
                if this && from == m_addr {
                    count.set(count.get() + 1);
                }
                this && t.to == m_addr
            }));
            net.splitter.push_chunk(net.now, payload(no.0)).unwrap();
            net.pump();
            let origin = net
                .peers
                .iter()
                .position(|(_, p)| p.buffer.get(no).is_some_and(|s| s.origin == p.id));
            let ids = net.peers[m].1.neighbour_ids();
            let group = relay::own_group(m_id, k, &ids, None).len();
            if let Some(o) = origin.filter(|&o| relay::relays(m_id, net.peers[o].1.id, k))
                && group > 0
            {
                found = Some((no, o, group));
                break;
            }
            net.drop = None;
            net.settle();
        }
        let (no, o, group) = found.expect("a chunk of another group's origin");
        let served = net.peers[m].1.stats().requests_served;
        let msg = Message::Chunk {
            no,
            origin: net.peers[o].1.id,
            relay: mark,
            payload: payload(no.0),
        };
        let d = forge(&net, o, m, 1 << 30, msg);
        let (now, from) = (net.now, net.peers[o].0);
        net.peers[m].1.handle_datagram(now, from, &d);
        // The chunk waits for its Digest, which comes with the next chunks (other copies of
        // it still cannot reach us: what we hold is the one we were handed).
        net.stream(20, Duration::from_millis(10));
        net.settle();
        assert!(net.peers[m].1.buffer.get(no).is_some(), "{mark:?}: taken");
        // What we sent of it unasked (our group's relay may have been us: then it asks).
        let asked = net.peers[m].1.stats().requests_served - served;
        relayed.push((ours.get() - asked as u32, group));
        net.drop = None;
    }
    assert_eq!(relayed[0].0, 0, "a plain copy is kept");
    assert_eq!(
        relayed[1].0, relayed[1].1 as u32,
        "a marked one goes to all our group"
    );
}

/// The splitter's Digest `first` (one hash), signed as the test team's splitter signs, with
/// a flooder's relay mark `relay`.
fn signed_digest(first: u32, relay: Option<u16>) -> Message {
    let (first, hashes) = (ChunkNo(first), vec![[first as u8; 12]]);
    let signature = team_cfg()
        .key
        .sign(&[&auth::digest_parts(77, first, &hashes)]);
    Message::Digest {
        first,
        hashes,
        signature,
        relay,
    }
}

/// In a two-level team a Digest goes on to a group only from the member its flooder marked
/// as that group's relay: a copy from another group that is not marked (a repair, a flood in
/// one level, a flooder whose view groups the team otherwise) stays with us. And we mark our
/// own flood's copies to the other groups' relays, not those to our group.
#[test]
fn only_a_flooders_marked_copies_of_a_digest_are_relayed() {
    let t0 = Instant::now();
    let mut j = Joined::public_two_level(t0);
    let ours: Vec<PeerId> = j.newer_ids(true).take(2).collect();
    let others: Vec<PeerId> = j.newer_ids(false).take(4).collect();
    let at = j.introduce_all(t0, &[ours.clone(), others.clone()].concat());
    for (id, (a, key)) in &at {
        j.neighbour_says(t0, *id, *a, key, 1, hello(*id));
    }
    j.said();
    let k = j.p.relay_groups().expect("two levels");
    let group_of = |to: SocketAddr| {
        let id = at.iter().find(|(_, (a, _))| *a == to).map(|(id, _)| *id);
        relay::group(id.expect("a member"), k)
    };
    let digests_sent = |j: &mut Joined| -> Vec<(SocketAddr, Option<u16>)> {
        let now = j.p.now + Duration::from_millis(500);
        let mut d: Vec<_> = (j.tick(now).into_iter())
            .filter_map(|(to, m)| {
                matches!(m, Message::Digest { .. }).then(|| (to, m.signed_relay()))
            })
            .collect();
        d.sort();
        d
    };
    let ours_at = |relay: Option<u16>| {
        let mut v: Vec<_> = ours.iter().map(|id| (at[id].0, relay)).collect();
        v.sort();
        v
    };
    let (sender, (from, key)) = (others[0], at[&others[0]]);

    j.neighbour_says(j.p.now, sender, from, &key, 2, signed_digest(0, None));
    assert_eq!(digests_sent(&mut j), [], "an unmarked copy stays with us");

    let mark = Some(k as u16);
    j.neighbour_says(j.p.now, sender, from, &key, 3, signed_digest(1, mark));
    assert_eq!(
        digests_sent(&mut j),
        ours_at(None),
        "a marked one goes to our group"
    );
    assert_eq!(
        j.p.trust
            .digest_for(ChunkNo(1))
            .and_then(|d| d.signed_relay()),
        None,
        "kept unmarked"
    );

    j.splitter_says(j.p.now, signed_digest(2, None));
    let flood = digests_sent(&mut j);
    let (to_ours, to_others): (Vec<_>, Vec<_>) = flood
        .into_iter()
        .partition(|(to, _)| group_of(*to) == relay::group(j.me, k));
    assert_eq!(to_ours, ours_at(None), "our group, unmarked");
    let mut relays: Vec<_> = to_others
        .iter()
        .map(|(to, r)| (group_of(*to), *r))
        .collect();
    relays.sort();
    let other_groups: Vec<_> = (0..k)
        .filter(|g| *g != relay::group(j.me, k))
        .map(|g| (g, mark))
        .collect();
    assert_eq!(relays, other_groups, "one marked copy to each other group");
}

/// A relay that never passes chunks on (a free rider, or one whose uplink died): its group
/// asks others for what it withheld, and nobody skips anything.
#[test]
fn a_relay_that_withholds_costs_its_group_requests_not_chunks() {
    // A real buffer (B = 256 is 16 s at this rate): a hole is asked for a second or two after
    // its flood should have come, and the asked neighbour may lack it too.
    let mut net = Net::new(SplitterConfig {
        buffer_size: 256,
        relay_from: 16,
        ..team_cfg()
    });
    net.join_team(20);
    let rider = net.peers[7].0;
    net.drop = Some(Box::new(move |from, t| {
        from == rider
            && wire::open(&t.data).is_ok_and(|o| matches!(o.packet.msg, Message::Chunk { .. }))
    }));
    // 300 chunks, then a tail: a hole shows only once a later chunk arrives, and the rider
    // may have been given the very last one.
    net.stream(300 + 20, Duration::from_millis(64));
    for _ in 0..12 {
        net.settle();
    }
    let mut requests = 0;
    for k in 0..20 {
        let played = &net.delivered[k];
        assert!(played.len() >= 300, "peer {k}: {} played", played.len());
        check_in_order(played);
        assert_eq!(played[0].0, ChunkNo(0), "peer {k}");
        assert!(
            net.skipped[k].is_empty(),
            "peer {k} skipped {:?}",
            net.skipped[k]
        );
        requests += net.peers[k].1.stats().requests_sent;
    }
    assert!(
        requests > 20,
        "the rider's groups asked only {requests} times"
    );
}

type Member = (PeerId, SocketAddr, Key);

/// A peer that has just joined on the slowest pacer (its rate starts at a tenth of the stream)
/// and is introduced to `n` members, whom it greets.
fn greeting_newcomer(n: u32) -> (Peer, Vec<Member>, Instant) {
    let t0 = Instant::now();
    let splitter: SocketAddr = "192.0.2.1:8001".parse().unwrap();
    let mut s = Splitter::new(team_cfg(), 77, t0);
    // A stream the joiner learns the rate of (the pacer's rate follows it).
    let mut now = t0;
    for n in 0..20 {
        s.push_chunk(now, payload(n)).unwrap();
        now += Duration::from_millis(64);
    }
    let (me, reply) = s
        .handle_join(
            now,
            "192.0.2.9:9".parse().unwrap(),
            &JoinRequest::new(Role::Peer),
        )
        .unwrap();
    let my_key = reply.peer_key;
    let mut cfg = PeerConfig::new(splitter);
    cfg.pace_start = 0.0;
    let mut p = Peer::new(cfg, reply, 1, now);
    while p.poll_transmit().is_some() {}
    // The introductions come once its Train has left (about 3 s at this rate).
    for _ in 0..500 {
        now += Duration::from_millis(10);
        if p.poll_timeout().is_some_and(|d| d <= now) {
            p.handle_timeout(now);
        }
        while p.poll_transmit().is_some() {}
    }
    let mut seq = 0u64;
    let members: Vec<Member> = (0..n)
        .map(|j| {
            let id = PeerId(me.0 + 1 + j);
            let at: SocketAddr = format!("203.0.113.{}:{}", 1 + j % 200, 50_000 + j)
                .parse()
                .unwrap();
            (id, at, crate::p2psp::auth::pair_key(&my_key, id))
        })
        .collect();
    for (id, at, pair) in &members {
        let mut masked = *pair;
        crate::p2psp::auth::intro_mask(&my_key, 77, *id, &mut masked);
        seq += 1;
        let msg = Message::Introduce {
            id: *id,
            endpoint: *at,
            key: masked,
        };
        let d = wire::seal(&Packet { team: 77, msg }, PeerId::NONE, seq, &my_key, None).unwrap();
        p.handle_datagram(now, splitter, &d);
    }
    (p, members, now)
}

/// Drive `p` for `ticks` steps of 10 ms from `now`; each datagram it sends to one of
/// `members` goes to `answer` (when, who, what), and what that returns comes back to `p`
/// from that member. Returns the time at the end.
fn drive_newcomer(
    p: &mut Peer,
    members: &[Member],
    mut now: Instant,
    ticks: u32,
    mut answer: impl FnMut(Instant, PeerId, Message) -> Option<Message>,
) -> Instant {
    let mut seqs: HashMap<PeerId, u64> = HashMap::new();
    for _ in 0..ticks {
        now += Duration::from_millis(10);
        if p.poll_timeout().is_some_and(|d| d <= now) {
            p.handle_timeout(now);
        }
        let out: Vec<Transmit> = std::iter::from_fn(|| p.poll_transmit()).collect();
        for t in out {
            let Ok(o) = wire::open(&t.data) else { continue };
            let Some((id, at, pair)) = members.iter().find(|m| m.1 == t.to) else {
                continue;
            };
            if let Some(msg) = answer(now, *id, o.packet.msg) {
                let seq = seqs.entry(*id).or_insert(0);
                *seq += 1;
                let d = wire::seal(&Packet { team: 77, msg }, *id, *seq, pair, None).unwrap();
                p.handle_datagram(now, *at, &d);
            }
        }
    }
    now
}

/// A newcomer greets hundreds of members at once, more than its uplink sends in a retry
/// interval: each member is greeted again only once the first greetings have gone, so members
/// that answer at once are greeted once (a retry every 400 ms on top of Hellos still queued
/// greeted each of 1000 members eight times while the team joined on 1.25 × uplinks).
#[test]
fn many_greetings_on_a_slow_uplink_are_not_repeated_while_they_wait() {
    // The slowest pacer: 200 Hellos take seconds to leave.
    let (mut p, members, now) = greeting_newcomer(200);
    let mut hellos = 0;
    let mut answered = HashSet::new();
    // A minute: the greetings take about 15 s to leave at this rate, and any repeats queued
    // behind them go after.
    drive_newcomer(&mut p, &members, now, 6000, |_, id, msg| {
        let Message::Hello { .. } = msg else {
            return None;
        };
        hellos += 1;
        // The member answers at once (its first datagram to us).
        answered
            .insert(id)
            .then_some(Message::KeepAlive { from: id })
    });
    assert_eq!(answered.len(), 200, "every member was greeted");
    assert!(hellos < 220, "{hellos} Hellos for 200 members");
    assert!(p.stats().neighbours.iter().all(|n| n.heard));
}

/// A newcomer's greetings to a large team are seconds of control at its starting rate, and
/// the rate grows only on Probes' answers: Probes follow the greetings while a second's worth
/// waits, so on a fast uplink (answers find no queue) the rate grows and the greetings leave
/// in a fraction of the time the starting rate needs. (Probes followed only chunk copies, and
/// a 1000-member flash crowd passed its first seconds greeting at twice the stream: floods
/// stalled, and the first window's uploads were 1.22 × the stream.)
#[test]
fn probes_follow_a_crowd_of_greetings_and_the_rate_grows() {
    let (mut p, members, start) = greeting_newcomer(300);
    let (mut hellos, mut probes_among_hellos, mut last_hello) = (0, 0, start);
    let mut answered = HashSet::new();
    drive_newcomer(&mut p, &members, start, 3000, |now, id, msg| match msg {
        Message::Hello { .. } => {
            hellos += 1;
            last_hello = now;
            answered
                .insert(id)
                .then_some(Message::KeepAlive { from: id })
        }
        // A fast uplink: every Probe comes without queueing delay. (A buddy that answers
        // before our greeting to it left is heard: the greeting is dropped.)
        Message::Probe { sent_ms } => {
            probes_among_hellos += usize::from(hellos < 300);
            answered.insert(id);
            Some(Message::QueueDelay { sent_ms, ms: 0 })
        }
        _ => None,
    });
    assert_eq!(answered.len(), 300, "every member was greeted or heard");
    assert!(probes_among_hellos >= 3, "{probes_among_hellos} Probes");
    // 300 greetings at the starting rate (a tenth of a 128 kbit/s stream) take about 14 s.
    let took = last_hello.saturating_duration_since(start);
    assert!(took < Duration::from_secs(6), "the greetings took {took:?}");
}

/// An answer to a Probe leaves ahead of control already queued: the prober's rate grows only
/// on answers. (Behind a newcomer's greetings to a large team it left seconds late; in the
/// simulator's 1000-member flash crowd every pacer then sat at its starting rate for the first
/// seconds, and the floods' backlog was still draining when the measurement window opened.)
#[test]
fn a_probe_is_answered_ahead_of_queued_greetings() {
    // The slowest pacer: 300 greetings take about 14 s to leave.
    let (mut p, members, start) = greeting_newcomer(300);
    let (id, at, pair) = members[150];
    let probe = Packet {
        team: 77,
        msg: Message::Probe { sent_ms: 1234 },
    };
    let d = wire::seal(&probe, id, 1, &pair, None).unwrap();
    p.handle_datagram(start, at, &d);
    let (mut hellos_before, mut answered) = (0, None);
    drive_newcomer(&mut p, &members, start, 2000, |now, who, msg| {
        match msg {
            Message::Hello { .. } if answered.is_none() => hellos_before += 1,
            Message::QueueDelay { sent_ms: 1234, .. } if who == id => {
                answered = answered.or(Some(now));
            }
            _ => {}
        }
        None
    });
    let answered = answered.expect("the Probe was answered");
    assert!(
        answered.saturating_duration_since(start) <= Duration::from_millis(100),
        "answered after {:?}",
        answered.saturating_duration_since(start)
    );
    assert!(hellos_before < 150, "{hellos_before} greetings left first");
}

/// Keepalive gaps follow the round: at most 15 s apart from behind a NAT (its mappings expire),
/// at most a minute from a public endpoint (they only say we live), and a neighbour is given
/// up after three of the longer gaps, whichever kind it is.
#[test]
fn keepalives_are_sparser_from_a_public_endpoint() {
    let t0 = Instant::now();
    let bound: SocketAddr = "198.51.100.9:40000".parse().unwrap();
    let mut j = Joined::new(team_cfg(), bound, bound, t0);
    let p = &mut j.p;
    // A round of 40 s (one chunk every 40 s, and no neighbours yet).
    p.chunk_interval = Some(Duration::from_secs(40));
    assert!(p.behind_nat(), "until the splitter says where it sees us");
    assert_eq!(p.mesh_keepalive(), MAX_MESH_KEEPALIVE);
    j.splitter_says(t0, Message::Endpoint { endpoint: bound });
    let p = &mut j.p;
    assert!(!p.behind_nat());
    assert_eq!(p.mesh_keepalive(), Duration::from_secs(40));
    assert_eq!(p.neighbour_timeout(), Duration::from_secs(120));
    p.chunk_interval = Some(Duration::from_secs(100));
    assert_eq!(p.mesh_keepalive(), MAX_PUBLIC_KEEPALIVE);
    assert_eq!(p.neighbour_timeout(), MAX_PUBLIC_KEEPALIVE * 3);
}

/// A peer's probe buddies stay who they were while a crowd joins after it: each takes its
/// first Probe as the bare delay of our uplink, so a buddy replaced by a newcomer (list
/// positions that shifted as the list grew) would measure a later queue from a base already
/// behind one.
#[test]
fn probe_buddies_stay_the_same_while_a_crowd_joins() {
    let mut net = Net::new(team_cfg());
    net.join_team(4);
    let a1 = net.peers[1].0;
    let probed = std::rc::Rc::new(std::cell::RefCell::new(HashSet::new()));
    let seen = probed.clone();
    net.drop = Some(Box::new(move |from, t| {
        if from == a1 && wire::peek_type(&t.data) == Some(wire::ty::PROBE) {
            seen.borrow_mut().insert(t.to);
        }
        false
    }));
    net.stream(40, Duration::from_millis(20));
    let buddies = net.peers[1].1.probe_buddies.clone();
    assert_eq!(buddies.len(), PROBE_BUDDIES);
    // Twenty more members, one every few chunks, while peer 1 floods and probes.
    for _ in 0..20 {
        net.join(Role::Peer);
        net.stream(8, Duration::from_millis(20));
    }
    net.settle();
    assert_eq!(net.peers[1].1.probe_buddies, buddies);
    let probed = probed.borrow();
    assert!(
        probed.iter().all(|a| buddies.contains(a)),
        "Probes went to {} members, buddies {buddies:?}",
        probed.len()
    );
    assert!(net.peers[1].1.stats().neighbours.len() >= 22);
}

/// Probe buddies that never answer (gone quiet, or hostile) are replaced: without answers the
/// pacer could never see a queue on our uplink.
#[test]
fn probe_buddies_that_never_answer_are_replaced() {
    let mut net = Net::new(team_cfg());
    net.join_team(8);
    net.stream(40, Duration::from_millis(20));
    let a1 = net.peers[1].0;
    let mute = net.peers[1].1.probe_buddies.clone();
    let answers = std::rc::Rc::new(std::cell::Cell::new(0));
    let count = answers.clone();
    net.drop = Some(Box::new(move |from, t| {
        if t.to != a1 || wire::peek_type(&t.data) != Some(wire::ty::QUEUE_DELAY) {
            return false;
        }
        if mute.contains(&from) {
            return true;
        }
        count.set(count.get() + 1);
        false
    }));
    net.stream(400, Duration::from_millis(20));
    let buddies = &net.peers[1].1.probe_buddies;
    assert_eq!(buddies.len(), PROBE_BUDDIES);
    assert!(answers.get() >= 5, "{} answers", answers.get());
}

/// A member's chunk `no` of `origin`, sealed by member `sender` to us under our pair `key`.
fn member_chunk(sender: PeerId, seq: u64, key: &Key, no: u32, origin: PeerId) -> Bytes {
    let msg = Message::Chunk {
        no: ChunkNo(no),
        origin,
        relay: None,
        payload: payload(no),
    };
    wire::seal(&Packet { team: 77, msg }, sender, seq, key, None).unwrap()
}

/// Copies of chunks `nos` that `p` sends from `now` until `until` (its timers run every
/// 10 ms), per chunk.
fn copies_sent(p: &mut Peer, mut now: Instant, until: Instant, nos: &[u32]) -> Vec<usize> {
    let mut n = vec![0; nos.len()];
    loop {
        for t in std::iter::from_fn(|| p.poll_transmit()) {
            if let Ok(o) = wire::open(&t.data)
                && let Message::Chunk { no, .. } = o.packet.msg
                && let Some(k) = nos.iter().position(|c| ChunkNo(*c) == no)
            {
                n[k] += 1;
            }
        }
        if now >= until {
            return n;
        }
        now += Duration::from_millis(10);
        if p.poll_timeout().is_some_and(|d| d <= now) {
            p.handle_timeout(now);
        }
    }
}

/// The splitter resends a chunk it gave us (a monitor missed it while our flood of it was
/// queued) and the member it went to floods it: its copy reaching us says the whole team gets
/// it from there, and our copies still queued are dropped. A chunk nobody else floods still
/// goes to everyone.
#[test]
fn a_resend_flooded_by_another_member_overtakes_our_queued_copies() {
    let t0 = Instant::now();
    let mut j = Joined::seen_where_bound(t0);
    let mut members = Vec::new();
    for k in 1..=20u32 {
        let id = PeerId(j.me.0 + k);
        let at: SocketAddr = format!("203.0.113.{k}:50000").parse().unwrap();
        let key = j.introduce(t0, id, at);
        // It greets us: heard, kept.
        let hello = Packet {
            team: 77,
            msg: Message::KeepAlive { from: id },
        };
        j.p.handle_datagram(t0, at, &wire::seal(&hello, id, 1, &key, None).unwrap());
        members.push((id, at, key));
    }
    let chunk = |no: u32, origin: PeerId| Message::Chunk {
        no: ChunkNo(no),
        origin,
        relay: None,
        payload: Bytes::from(vec![no as u8; 1000]),
    };
    // Two chunks of ours 50 ms apart; the second is resent through member r at once.
    j.splitter_says(t0, chunk(5, PeerId::NONE));
    let t1 = t0 + Duration::from_millis(50);
    j.splitter_says(t1, chunk(6, PeerId::NONE));
    let (r, r_at, r_key) = members[7];
    let d = wire::seal(
        &Packet {
            team: 77,
            msg: chunk(6, r),
        },
        r,
        2,
        &r_key,
        None,
    )
    .unwrap();
    j.p.handle_datagram(t1, r_at, &d);
    let overtaken = j.p.stats().copies_overtaken as usize;
    let sent = copies_sent(&mut j.p, t1, t0 + Duration::from_secs(3), &[5, 6]);
    assert_eq!(
        sent[0], 20,
        "a chunk no one else floods goes to every neighbour"
    );
    assert!(overtaken > 10, "only {overtaken} copies dropped");
    assert_eq!(
        sent[1] + overtaken,
        20,
        "{sent:?} sent, {overtaken} dropped"
    );
    assert_eq!(j.p.stats().copies_overtaken as usize, overtaken);
}

/// Two copies of a member's chunk that both come before its Digest (a flood that runs late
/// and the route a Request set up) are duplicates like any: the route is pruned whichever
/// copy comes first.
#[test]
fn a_route_is_pruned_while_both_copies_wait_for_their_digest() {
    let t0 = Instant::now();
    let mut j = Joined::seen_where_bound(t0);
    let (a, b) = (PeerId(j.me.0 + 1), PeerId(j.me.0 + 2));
    let (a_at, b_at): (SocketAddr, SocketAddr) = (
        "203.0.113.5:50000".parse().unwrap(),
        "203.0.113.6:50000".parse().unwrap(),
    );
    let a_key = j.introduce(t0, a, a_at);
    let b_key = j.introduce(t0, b, b_at);
    j.splitter_says(
        t0,
        Message::Chunk {
            no: ChunkNo(8),
            origin: PeerId::NONE,
            relay: None,
            payload: payload(8),
        },
    );
    while j.p.poll_transmit().is_some() {}
    let prunes_to_a = |p: &mut Peer| {
        std::iter::from_fn(|| p.poll_transmit())
            .filter(|t| t.to == a_at)
            .filter(|t| {
                wire::open(&t.data).is_ok_and(|o| o.packet.msg == Message::Prune { origin: b })
            })
            .count()
    };
    // The route's copy first (held: no Digest yet), then the origin's own.
    j.p.handle_datagram(t0, a_at, &member_chunk(a, 1, &a_key, 9, b));
    assert_eq!(prunes_to_a(&mut j.p), 0);
    j.p.handle_datagram(t0, b_at, &member_chunk(b, 1, &b_key, 9, b));
    assert_eq!(prunes_to_a(&mut j.p), 1, "the origin's flood reaches us");
    // The origin's copy first, then the route's.
    j.p.handle_datagram(t0, b_at, &member_chunk(b, 2, &b_key, 10, b));
    j.p.handle_datagram(t0, a_at, &member_chunk(a, 2, &a_key, 10, b));
    assert_eq!(prunes_to_a(&mut j.p), 1, "the routed copy came second");
    assert_eq!(j.p.stats().duplicates, 2);
}

/// A joiner's first datagrams to the splitter are its Hello and its Train ([`TRAIN_LEN`] of
/// [`TRAIN_BYTES`]). Through a 64 kbit/s uplink the splitter reads half the stream from them,
/// gives the joiner no share and tells it what it read (its pacer goes under that); while no
/// chunk comes from the splitter the peer sends another Train every 30 s, and one that gets
/// chunks sends none.
#[test]
fn a_joiner_trains_its_uplink_to_the_splitter_and_again_while_it_gets_no_chunks() {
    let t0 = Instant::now();
    let splitter: SocketAddr = Joined::SPLITTER.parse().unwrap();
    let mut s = Splitter::new(team_cfg(), 77, t0);
    // 1000-byte chunks every 64 ms: the stream is 15,625 bytes/s.
    let mut t1 = t0;
    for _ in 0..20 {
        t1 += Duration::from_millis(64);
        s.push_chunk(t1, Bytes::from(vec![0u8; 1000])).unwrap();
    }
    let seen: SocketAddr = "10.0.0.9:9".parse().unwrap();
    let (id, reply) = s
        .handle_join(t1, seen, &JoinRequest::new(Role::Peer))
        .unwrap();
    let key = reply.peer_key;
    let mut p = Peer::new(PeerConfig::new(splitter), reply, 1, t1);
    let to_splitter: Vec<Bytes> = std::iter::from_fn(|| p.poll_transmit())
        .filter(|t| t.to == splitter)
        .map(|t| t.data)
        .collect();
    let kinds: Vec<Message> = to_splitter
        .iter()
        .map(|d| wire::open(d).unwrap().packet.msg)
        .collect();
    assert!(matches!(kinds[0], Message::Hello { .. }), "{kinds:?}");
    assert_eq!(kinds.len(), 1 + usize::from(TRAIN_LEN), "{kinds:?}");
    for (seq, m) in kinds[1..].iter().enumerate() {
        assert!(
            matches!(m, Message::Train { seq: s, count: TRAIN_LEN, .. } if usize::from(*s) == seq),
            "{kinds:?}"
        );
        assert_eq!(to_splitter[1 + seq].len(), TRAIN_BYTES);
    }
    // They leave one after the other through 64 kbit/s (8,000 bytes/s with IP and UDP).
    let mut at = t1;
    for d in &to_splitter {
        at += Duration::from_secs_f64((d.len() + 28) as f64 / 8_000.0);
        s.handle_datagram(at, seen, d);
    }
    let st = s.stats().peers.into_iter().find(|m| m.id == id).unwrap();
    assert!(
        st.train_rate.is_some_and(|r| (7_900..8_100).contains(&r)),
        "{:?}",
        st.train_rate
    );
    assert_eq!(st.capacity_period, crate::p2psp::splitter::NO_SHARE);
    // The splitter tells the joiner what it read, and its pacer goes under that at once.
    let read: Vec<Bytes> = std::iter::from_fn(|| s.poll_transmit())
        .filter(|t| t.to == seen)
        .map(|t| t.data)
        .filter(|d| {
            matches!(
                wire::open(d).map(|o| o.packet.msg),
                Ok(Message::TrainRead { bytes_per_sec }) if (7_900..8_100).contains(&bytes_per_sec)
            )
        })
        .collect();
    assert_eq!(read.len(), 1);
    assert!(p.stats().pace_rate > 8_000, "{}", p.stats().pace_rate);
    p.handle_datagram(at, splitter, &read[0]);
    assert!(p.stats().pace_rate <= 7_300, "{}", p.stats().pace_rate);

    // Then, once a second, the splitter's keepalive (and, for `fed`, a chunk).
    let trains_over_a_minute = |p: &mut Peer, k: &Key, fed: bool| {
        let mut seq = 1_000;
        let mut trains = Vec::new();
        for sec in 1..=65u32 {
            let now = t1 + Duration::from_secs(sec.into());
            seq += 1;
            let msg = if fed {
                Message::Chunk {
                    no: ChunkNo(100 + sec),
                    origin: PeerId::NONE,
                    relay: None,
                    payload: Bytes::from(vec![1u8; 1000]),
                }
            } else {
                Message::KeepAlive { from: PeerId::NONE }
            };
            let d = wire::seal(&Packet { team: 77, msg }, PeerId::NONE, seq, k, None).unwrap();
            p.handle_datagram(now, splitter, &d);
            while p.poll_timeout().is_some_and(|d| d <= now) {
                p.handle_timeout(now);
            }
            for t in std::iter::from_fn(|| p.poll_transmit()) {
                if let Ok(Message::Train { seq: 0, .. }) = wire::open(&t.data).map(|o| o.packet.msg)
                {
                    trains.push(now.saturating_duration_since(t1).as_secs());
                }
            }
        }
        trains
    };
    let again = trains_over_a_minute(&mut p, &key, false);
    assert_eq!(again, vec![30, 60], "a Train every 30 s without chunks");
    assert_eq!(p.stats().trains, 3);
    let mut j = Joined::seen_where_bound(t1);
    let k = j.key;
    assert_eq!(trains_over_a_minute(&mut j.p, &k, true), Vec::<u64>::new());
    assert!(j.p.stats().from_splitter >= 60);
    assert_eq!(j.p.stats().trains, 1);
}

/// In a large team at a low chunk rate a member's turn may simply not be due for 30 s: it
/// sends another Train only after three rounds without a splitter chunk.
#[test]
fn a_member_of_a_large_slow_round_trains_again_only_after_three_rounds() {
    let (p, _, _) = greeting_newcomer(300);
    // 64 ms chunks: a round of 301 members is 19.3 s.
    assert_eq!(p.chunk_interval, Some(Duration::from_millis(64)));
    let again = p.train_again().as_secs_f64();
    assert!((57.0..58.5).contains(&again), "{again}");
    let (p, _, _) = greeting_newcomer(10);
    assert_eq!(p.train_again(), TRAIN_AGAIN);
}

/// The splitter says which members' uplinks are too slow to relay: in our two-level floods
/// they are never a group's relay while the group has another member, and the splitter's word
/// that one is fast again (or gone) counts. Only the splitter is heard on it.
#[test]
fn members_the_splitter_says_are_slow_never_relay_our_floods() {
    let t0 = Instant::now();
    let local: SocketAddr = "10.0.0.9:9".parse().unwrap();
    let cfg = SplitterConfig {
        relay_from: 4,
        ..team_cfg()
    };
    let mut j = Joined::new(cfg, local, local, t0);
    let ids: Vec<PeerId> = (1..=15).map(|k| PeerId(j.me.0 + k)).collect();
    let at = |k: usize| -> SocketAddr { format!("203.0.113.{}:50000", k + 1).parse().unwrap() };
    let mut pairs = Vec::new();
    for (k, id) in ids.iter().enumerate() {
        pairs.push(j.introduce(t0, *id, at(k)));
    }
    // Every member speaks now and then (else it is dropped as silent).
    let mut their_seq = 0u64;
    let mut all_speak = |j: &mut Joined, now: Instant| {
        their_seq += 1;
        for (k, id) in ids.iter().enumerate() {
            let ka = Packet {
                team: 77,
                msg: Message::KeepAlive { from: *id },
            };
            let d = wire::seal(&ka, *id, their_seq, &pairs[k], None).unwrap();
            j.p.handle_datagram(now, at(k), &d);
        }
    };
    all_speak(&mut j, t0);
    // All but the first member of each group (by id) are slow: each group keeps one able.
    let k = super::relay::groups(ids.len() + 1, 4).expect("two levels");
    let first_of_group = |id: &PeerId| {
        let g = super::relay::group(*id, k);
        ids.iter()
            .filter(|o| super::relay::group(**o, k) == g)
            .min()
            == Some(id)
    };
    let slow: Vec<PeerId> = ids
        .iter()
        .copied()
        .filter(|id| !first_of_group(id))
        .collect();
    // A member's word is not the splitter's.
    let (other, pair) = (ids[0], pairs[0]);
    let forged = Packet {
        team: 77,
        msg: Message::Uplinks {
            slow: ids.clone(),
            able: vec![],
        },
    };
    let d = wire::seal(&forged, other, 1_000_000, &pair, None).unwrap();
    j.p.handle_datagram(t0, at(0), &d);
    assert_eq!(j.p.stats().slow_members, 0);
    j.splitter_says(
        t0,
        Message::Uplinks {
            slow: slow.clone(),
            able: vec![],
        },
    );
    assert_eq!(j.p.stats().slow_members, slow.len());
    // Our splitter chunks 0..40, flooded in two levels; after chunk 19 the splitter says the
    // slow are fast again. Who gets the relays' copies of each chunk (they leave paced).
    let addr_of: HashMap<SocketAddr, PeerId> =
        j.p.stats()
            .neighbours
            .iter()
            .map(|n| (n.addr, n.id))
            .collect();
    let mut relays: Vec<(u32, PeerId)> = Vec::new();
    let mut now = t0;
    for tick in 0..6000u32 {
        now += Duration::from_millis(10);
        if tick % 50 == 0 {
            all_speak(&mut j, now);
        }
        if tick % 6 == 0 && tick / 6 < 40 {
            let no = ChunkNo(tick / 6);
            j.splitter_says(
                now,
                Message::Chunk {
                    no,
                    origin: PeerId::NONE,
                    relay: None,
                    payload: payload(no.0),
                },
            );
            if no.0 == 19 {
                j.splitter_says(
                    now,
                    Message::Uplinks {
                        slow: vec![],
                        able: slow.clone(),
                    },
                );
                assert_eq!(j.p.stats().slow_members, 0);
            }
        }
        if j.p.poll_timeout().is_some_and(|d| d <= now) {
            j.p.handle_timeout(now);
        }
        for t in std::iter::from_fn(|| j.p.poll_transmit()) {
            if let Ok(Message::Chunk {
                relay: Some(_), no, ..
            }) = wire::open(&t.data).map(|o| o.packet.msg)
            {
                relays.push((no.0, addr_of[&t.to]));
            }
        }
    }
    let (before, after): (Vec<_>, Vec<_>) = relays.iter().partition(|(no, _)| *no < 20);
    // Three other groups: a relay each for every chunk (later ones may go stale in the
    // pacer's queue here: this pacer never learns the stream's rate).
    assert_eq!(before.len(), 60, "{relays:?}");
    assert!(
        before.iter().all(|(_, id)| !slow.contains(id)),
        "slow members relayed: {before:?}"
    );
    // Fast again: they take their turns too.
    assert!(after.iter().any(|(_, id)| slow.contains(id)), "{after:?}");
}

/// A joiner of a two-level team greets the members of its own group first: they relay chunks
/// to it, and only once they know it (its greetings to the rest take seconds on a slow pacer).
#[test]
fn a_joiner_greets_its_own_group_first() {
    let mut net = Net::new(SplitterConfig {
        relay_from: 16,
        ..team_cfg()
    });
    net.join_team(60);
    let t0 = net.now;
    let splitter = net.saddr;
    let (me, reply) = net
        .splitter
        .handle_join(
            t0,
            "192.0.2.9:9".parse().unwrap(),
            &JoinRequest::new(Role::Peer),
        )
        .unwrap();
    let listed: HashMap<SocketAddr, PeerId> = reply.peers.iter().map(|(id, a)| (*a, *id)).collect();
    let k = super::relay::groups(listed.len() + 1, 16)
        .unwrap_or_else(|| panic!("{} listed", listed.len()));
    let ours = super::relay::group(me, k);
    let mut cfg = PeerConfig::new(splitter);
    cfg.pace_start = 0.0;
    let mut p = Peer::new(cfg, reply, 1, t0);
    // The Hellos leave paced, in the order they were queued.
    let mut greeted = Vec::new();
    let mut now = t0;
    while greeted.len() < listed.len() && now < t0 + Duration::from_secs(120) {
        now += Duration::from_millis(10);
        if p.poll_timeout().is_some_and(|d| d <= now) {
            p.handle_timeout(now);
        }
        for t in std::iter::from_fn(|| p.poll_transmit()) {
            let hello =
                wire::open(&t.data).is_ok_and(|o| matches!(o.packet.msg, Message::Hello { .. }));
            if hello && let Some(id) = listed.get(&t.to) {
                greeted.push(*id);
            }
        }
    }
    assert_eq!(greeted.len(), listed.len(), "not everyone greeted");
    let own = greeted
        .iter()
        .filter(|id| super::relay::group(**id, k) == ours)
        .count();
    assert!(own >= 2, "only {own} of 60 in our group");
    assert!(
        greeted[..own]
            .iter()
            .all(|id| super::relay::group(*id, k) == ours),
        "own group not greeted first: {:?}",
        greeted
            .iter()
            .map(|id| super::relay::group(*id, k) == ours)
            .collect::<Vec<_>>()
    );
}

/// Splitter chunks that come together (read in one batch, at one instant) are no sample of
/// the stream's rate: an interval of 0 made every copy we queued stale at once, and our whole
/// flood of the next chunk was dropped unsent.
#[test]
fn chunks_that_come_together_do_not_stop_our_floods() {
    let t0 = Instant::now();
    // Enough neighbours that each flood queues in the pacer.
    let mut j = Joined::with_neighbours(t0, 30);
    j.splitter_says(t0, splitter_chunk(0));
    j.splitter_says(t0, splitter_chunk(16));
    let mut now = t0;
    let mut copies = 0;
    for _ in 0..1000 {
        now += Duration::from_millis(10);
        if j.p.poll_timeout().is_some_and(|d| d <= now) {
            j.p.handle_timeout(now);
        }
        if now == t0 + Duration::from_millis(500) {
            j.splitter_says(now, splitter_chunk(17));
        }
        for t in std::iter::from_fn(|| j.p.poll_transmit()) {
            copies += usize::from(
                wire::open(&t.data).is_ok_and(|o| matches!(o.packet.msg, Message::Chunk { .. })),
            );
        }
    }
    assert_eq!(j.p.stats().copies_dropped, 0);
    assert_eq!(
        copies, 90,
        "our copies of chunks 0, 16 and 17 to our 30 neighbours"
    );
}

/// A member catches each newcomer up on its own splitter chunks of the last round, but a
/// crowd's greetings come together: queued among the floods, a hundred newcomers' catch-ups
/// (800 copies) held our next flood back for seconds. Catch-ups are spare copies: they take
/// their turn only while our floods are on time ([`SERVE_BACKLOG`]).
#[test]
fn a_crowd_of_newcomers_is_caught_up_without_holding_our_floods_back() {
    let t0 = Instant::now();
    let mut j = Joined::with_neighbours(t0, 30);
    let mut now = t0;
    // Sends until `until`; returns when each copy left, and its chunk number, in order.
    let run = |j: &mut Joined, now: &mut Instant, until: Instant| {
        let mut sent = Vec::new();
        while *now < until {
            *now += Duration::from_millis(1);
            if j.p.poll_timeout().is_some_and(|d| d <= *now) {
                j.p.handle_timeout(*now);
            }
            for t in std::iter::from_fn(|| j.p.poll_transmit()) {
                if let Ok(o) = wire::open(&t.data)
                    && let Message::Chunk { no, .. } = o.packet.msg
                {
                    sent.push((*now, no.0));
                }
            }
        }
        sent
    };
    for no in 0..8 {
        j.splitter_says(now, splitter_chunk(no));
        let until = now + Duration::from_millis(64);
        run(&mut j, &mut now, until);
    }
    assert_eq!(j.p.own_recent.len(), OWN_RECENT);
    // A hundred newcomers greet us at once; the splitter's next chunk comes 10 ms later.
    for k in 0..100u32 {
        let id = PeerId(j.me.0 + 100 + k);
        let from: SocketAddr = format!("198.51.100.{}:{}", 1 + k, 40_000 + k)
            .parse()
            .unwrap();
        let pair = crate::p2psp::auth::pair_key(&j.key, id);
        let hello = Packet {
            team: 77,
            msg: Message::Hello { from: id },
        };
        let d = wire::seal(&hello, id, 1, &pair, None).unwrap();
        j.p.handle_datagram(now, from, &d);
    }
    assert_eq!(j.p.stats().neighbours.len(), 130);
    let until = now + Duration::from_millis(10);
    let mut sent = run(&mut j, &mut now, until);
    let t8 = now;
    j.splitter_says(now, splitter_chunk(8));
    let until = now + Duration::from_secs(30);
    sent.extend(run(&mut j, &mut now, until));
    let flood: Vec<Instant> = sent
        .iter()
        .filter(|(_, no)| *no == 8)
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(flood.len(), 130, "chunk 8 to each of our 130 neighbours");
    // Catch-ups queued first go first while the flood is on time, and none once it is late,
    // until it has left.
    let (late, done) = (t8 + SERVE_BACKLOG + Duration::from_millis(2), flood[129]);
    let in_the_way = sent
        .iter()
        .filter(|(at, no)| *no != 8 && *at > late && *at < done)
        .count();
    assert_eq!(in_the_way, 0, "catch-ups sent while the flood was late");
    assert!(
        done < late + Duration::from_secs(1),
        "the flood left {:?} after its chunk came",
        done - t8
    );
    let caught_up = sent.len() - flood.len();
    assert!(caught_up > 0, "newcomers are caught up");
    assert_eq!(
        caught_up as u64 + j.p.stats().copies_dropped,
        100 * OWN_RECENT as u64,
        "catch-ups sent or dropped stale"
    );
}

/// A Request says whether our playout waits on the chunk (`stalled`): only the hole at the
/// head of a blocked playout is, not the holes behind it.
#[test]
fn a_request_says_whether_our_playout_waits_on_the_chunk() {
    let t0 = Instant::now();
    let mut j = Joined::with_neighbours(t0, 3);
    let mut now = t0;
    // Requests for chunks, in order: (chunk, stalled).
    let mut asked: Vec<(u32, bool)> = Vec::new();
    for no in 0..120u32 {
        // 20 and 22 are lost; 20 comes at its second Request.
        if no != 20 && no != 22 {
            j.splitter_says(now, splitter_chunk(no));
        }
        for _ in 0..4 {
            now += Duration::from_millis(16);
            for (_, m) in j.timers(now) {
                if let Message::Request { no, stalled, .. } = m {
                    asked.push((no.0, stalled));
                    if asked.iter().filter(|a| a.0 == 20).count() == 2 && no.0 == 20 {
                        j.splitter_says(now, splitter_chunk(20));
                    }
                }
            }
        }
    }
    assert!(asked.iter().all(|(n, _)| *n == 20 || *n == 22), "{asked:?}");
    // 20 is the head that blocks from the start; 22 waits behind it until 20 came, and then
    // blocks in turn (until it is skipped).
    let came = asked.iter().enumerate().filter(|(_, a)| a.0 == 20).nth(1);
    let Some((came, _)) = came else {
        panic!("chunk 20 asked for twice: {asked:?}")
    };
    let stalled = |n: u32, range: std::ops::Range<usize>| -> Vec<bool> {
        asked[range]
            .iter()
            .filter(|a| a.0 == n)
            .map(|a| a.1)
            .collect()
    };
    assert_eq!(stalled(20, 0..asked.len()), [true, true], "{asked:?}");
    let (behind, head) = (stalled(22, 0..came), stalled(22, came..asked.len()));
    assert!(!behind.is_empty() && behind.iter().all(|s| !s), "{asked:?}");
    assert!(!head.is_empty() && head.iter().all(|s| *s), "{asked:?}");
    assert_eq!(j.p.stats().skipped, 1, "22 was skipped");
}

/// A member that hears nothing from the splitter, and gets no chunk new to it, asks the
/// splitter whether it is there after 70% of the splitter timeout, once a keepalive interval:
/// a live splitter's answer keeps it in the team; a gone one is given up as before.
#[test]
fn a_member_that_hears_nothing_asks_whether_the_splitter_is_there() {
    for answered in [false, true] {
        let t0 = Instant::now();
        let mut j = Joined::seen_where_bound(t0);
        let (silent_from, timeout) = (j.p.last_splitter, j.p.cfg.splitter_timeout);
        let splitter: SocketAddr = Joined::SPLITTER.parse().unwrap();
        let (mut asks, mut gone) = (Vec::new(), None);
        let mut now = t0;
        while now < silent_from + Duration::from_secs(60) {
            now += Duration::from_millis(10);
            let asked = j
                .timers(now)
                .iter()
                .any(|(to, m)| *to == splitter && matches!(m, Message::KeepAlive { .. }));
            if asked {
                asks.push(now - silent_from);
                if answered {
                    let msg = Message::KeepAlive { from: PeerId::NONE };
                    j.splitter_says(now + Duration::from_millis(40), msg);
                }
            }
            if std::iter::from_fn(|| j.p.poll_event()).any(|e| e == PeerEvent::SplitterGone) {
                gone = Some(now - silent_from);
            }
        }
        let secs: Vec<u64> = asks
            .iter()
            .map(|d| d.as_millis().div_ceil(1000) as u64)
            .collect();
        if answered {
            assert_eq!(gone, None);
            // Each answer restarts the wait: about every 7 s.
            assert!(secs.len() >= 8 && secs[0] == 7, "asked at {asks:?}");
        } else {
            assert_eq!(
                gone.map(|d| d.as_millis().div_ceil(1000)),
                Some(timeout.as_secs() as u128)
            );
            assert_eq!(secs, [7, 8, 9], "asked at {asks:?}");
        }
    }
}

/// While our floods are late we decline Requests ([`SERVE_BACKLOG`]), but not a stalled
/// member's (its playout waits on the chunk: in a flash crowd on 1.25 × uplinks, nine
/// members declined in turn and the asker stood still for 19 s). Those are served, a few a
/// second ([`STALLED_SERVES_PER_SEC`], [`STALLED_SERVE_BURST`]).
#[test]
fn a_stalled_member_is_served_while_our_floods_are_late() {
    let t0 = Instant::now();
    let mut j = Joined::with_neighbours(t0, 30);
    let (asker, at) = (PeerId(j.me.0 + 1), "203.0.113.1:50000".parse().unwrap());
    let pair = crate::p2psp::auth::pair_key(&j.key, asker);
    let mut now = t0;
    let mut no = 0;
    // Chunks sent to the asker (our floods' copies, and what it asked for).
    let mut to_asker: Vec<u32> = Vec::new();
    let run = |j: &mut Joined, now: Instant, to_asker: &mut Vec<u32>| {
        for (to, m) in j.timers(now) {
            if let (true, Message::Chunk { no, .. }) = (to == at, m) {
                to_asker.push(no.0);
            }
        }
    };
    // Chunks come every 64 ms, each flooded to our 30 neighbours, until our floods wait
    // longer than SERVE_BACKLOG.
    while no < 10 || !j.p.uplink_behind(now) {
        j.splitter_says(now, splitter_chunk(no));
        no += 1;
        now += Duration::from_millis(64);
        run(&mut j, now, &mut to_asker);
    }
    let mut seq = 0;
    // Whether the asker's Request for `no` is served (it is queued ahead of our copies).
    let mut ask = |j: &mut Joined, now: Instant, no: u32, stalled: bool| {
        let before = j.p.stats().requests_served;
        seq += 1;
        let msg = Message::Request {
            no: ChunkNo(no),
            digest: false,
            stalled,
        };
        j.neighbour_says(now, asker, at, &pair, seq, msg);
        j.p.stats().requests_served > before
    };
    assert!(
        !ask(&mut j, now, 4, false),
        "declined: the asker is not stalled"
    );
    // Stalled: served, three at once and then one a second.
    let served: Vec<bool> = (5..9).map(|n| ask(&mut j, now, n, true)).collect();
    assert_eq!(served, [true, true, true, false]);
    assert!(j.p.uplink_behind(now), "our floods are still late");
    assert!(!ask(&mut j, now + Duration::from_millis(500), 9, true));
    assert!(ask(&mut j, now + Duration::from_millis(1010), 9, true));
    assert_eq!(j.p.stats().stalled_served, 4);
    assert_eq!(j.p.stats().requests_declined, 3);
    // The asker gets the copies it asked for, besides our floods' (still queued).
    for ms in 1..=3000 {
        run(&mut j, now + Duration::from_millis(ms), &mut to_asker);
    }
    let copies: Vec<usize> = (4..10)
        .map(|n| to_asker.iter().filter(|c| **c == n).count())
        .collect();
    assert_eq!(
        copies,
        [1, 2, 2, 2, 1, 2],
        "copies of chunks 4 to 9 sent to the asker"
    );
}

/// In a two-level flood our copies to the other groups' relays are the root of the chunk's
/// tree: the whole team waits on them, where the rest (our own group's copies, relay duty for
/// others) holds back one group. So they go ahead of every copy queued before them: behind
/// the relay duty queued on a 1.25 x uplink (up to 16 s in a team of 1,000), each origin's
/// flood started that late and the team stood still on it.
#[test]
fn our_first_level_copies_go_ahead_of_the_rest() {
    let t0 = Instant::now();
    // 64 members, in 8 groups: 7 relays and our own group of 7 per flood.
    let mut j = Joined::two_level(t0, 63, 16);
    j.splitter_says(t0, splitter_chunk(0));
    j.splitter_says(t0, splitter_chunk(1));
    let mut now = t0;
    let mut sent = Vec::new();
    while now < t0 + Duration::from_secs(5) {
        now += Duration::from_millis(1);
        if j.p.poll_timeout().is_some_and(|d| d <= now) {
            j.p.handle_timeout(now);
        }
        for t in std::iter::from_fn(|| j.p.poll_transmit()) {
            if let Ok(o) = wire::open(&t.data)
                && let Message::Chunk { no, relay, .. } = o.packet.msg
            {
                sent.push((no.0, relay.is_some()));
            }
        }
    }
    let firsts = |no: u32| sent.iter().filter(|&&c| c == (no, true)).count();
    assert!(
        firsts(0) >= 3 && firsts(1) >= 3,
        "two-level floods: {sent:?}"
    );
    // Chunk 1's first level left before chunk 0's second level, but for the copies the
    // bucket let go at once (a few datagrams' worth) as chunk 0 came.
    let last_root_1 = sent.iter().rposition(|&c| c == (1, true)).unwrap();
    let rest_0_before = sent[..last_root_1]
        .iter()
        .filter(|&&c| c == (0, false))
        .count();
    assert!(
        rest_0_before <= 2,
        "chunk 1's roots waited on chunk 0's group: {sent:?}"
    );
    let flood = |no: u32| sent.iter().filter(|c| c.0 == no).count();
    assert_eq!(flood(0), flood(1), "both floods left whole: {sent:?}");
}
