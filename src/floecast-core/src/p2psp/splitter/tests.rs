//! Tests of the splitter state machine, driven by hand: datagrams and times in, transmits and
//! events out, with the clock read here as the driver would.

use super::*;
use std::collections::{HashMap, HashSet};

fn addr(n: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], 4000 + n))
}

fn decode_all(s: &mut Splitter) -> Vec<(SocketAddr, Message)> {
    std::iter::from_fn(|| s.poll_transmit())
        .map(|t| (t.to, wire::open(&t.data).unwrap().packet.msg))
        .collect()
}

/// A plain peer at `addr(n)` joins at `t` (and confirms, as its first datagram does).
fn join_peer(s: &mut Splitter, t: Instant, n: u16) -> Result<(PeerId, JoinReply), JoinError> {
    join_at(s, t, addr(n), Role::Peer)
}

/// A peer at `at` asks for `role` at `t`, and confirms with a Hello from there.
fn join_at(
    s: &mut Splitter,
    t: Instant,
    at: SocketAddr,
    role: Role,
) -> Result<(PeerId, JoinReply), JoinError> {
    let (id, reply) = s.handle_join(t, at, &JoinRequest::new(role))?;
    confirm(s, t, id, at);
    Ok((id, reply))
}

/// Joiner `id` sends its first datagram, a Hello, from `at`, then a Train (from an uplink too
/// fast to space it).
fn confirm(s: &mut Splitter, t: Instant, id: PeerId, at: SocketAddr) {
    confirm_without_train(s, t, id, at);
    send_train(s, t, at, &[Duration::ZERO; 2]);
    // What the splitter read from it is tested on its own.
    s.transmits.retain(|t| {
        !matches!(
            wire::open(&t.data).map(|o| o.packet.msg),
            Ok(Message::TrainRead { .. })
        )
    });
}

/// The same without the Train.
fn confirm_without_train(s: &mut Splitter, t: Instant, id: PeerId, at: SocketAddr) {
    if s.cfg.codec != Codec::Native {
        return; // Gen C joins are admitted when they complete
    }
    let key = s.key_of(id);
    let hello = Packet {
        team: s.team,
        msg: Message::Hello { from: id },
    };
    let d = wire::seal(&hello, id, next_seq(), &key, None).unwrap();
    s.handle_datagram(t, at, &d);
    // What admission sends (the observed endpoint, introductions) is tested on its own.
    s.transmits.retain(|t| {
        !matches!(
            wire::open(&t.data).map(|o| o.packet.msg),
            Ok(Message::Endpoint { .. } | Message::Introduce { .. })
        )
    });
}

/// The member at `at` sends a Train whose datagrams arrive `gaps` apart (`gaps.len() + 1` of
/// them, 1228 bytes each on the wire).
fn send_train(s: &mut Splitter, t: Instant, at: SocketAddr, gaps: &[Duration]) {
    let Some((id, key)) = s
        .members
        .iter()
        .find(|m| m.addr == at)
        .map(|m| (m.id, m.key))
    else {
        return; // not a member (yet)
    };
    let count = gaps.len() as u8 + 1;
    let mut now = t;
    for seq in 0..count {
        if seq > 0 {
            now += gaps[usize::from(seq) - 1];
        }
        let msg = Message::Train {
            seq,
            count,
            pad: 1200 - 4 - 2 - 24,
        };
        let d = wire::seal(&Packet { team: s.team, msg }, id, next_seq(), &key, None).unwrap();
        assert_eq!(d.len(), 1200);
        s.handle_datagram(now, at, &d);
    }
}

/// A splitter (team 7) with a monitor at `addr(1)` and plain peers at `addr(2..=size)`,
/// joined at `t`; what it sent them is discarded.
fn monitored_team(t: Instant, size: u16) -> Splitter {
    let mut s = Splitter::new(SplitterConfig::default(), 7, t);
    join_at(&mut s, t, addr(1), Role::Monitor).unwrap();
    team_joins(&mut s, t, 2..=size);
    s
}

/// The same with plain peers only, at `addr(1..=size)`.
fn plain_team(t: Instant, size: u16) -> Splitter {
    let mut s = Splitter::new(SplitterConfig::default(), 7, t);
    team_joins(&mut s, t, 1..=size);
    s
}

fn team_joins(s: &mut Splitter, t: Instant, peers: std::ops::RangeInclusive<u16>) {
    for n in peers {
        join_peer(s, t, n).unwrap();
    }
    while s.poll_transmit().is_some() {}
}

fn next_seq() -> u64 {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// `msg` as the member at `addr(n)` seals it (a stranger's key when there is none there).
fn enc(s: &Splitter, n: u16, team: u32, msg: Message) -> Bytes {
    let seq = next_seq();
    let (id, key) = s
        .members
        .iter()
        .find(|m| m.addr == addr(n))
        .map_or((PeerId(99), [0; 32]), |m| (m.id, m.key));
    wire::seal(&Packet { team, msg }, id, seq, &key, None).unwrap()
}

/// Member `addr(n)`'s Report (sealed as it would send it) at `now`, saying it hears
/// `neighbours` and measured its uplink at `uplink_rate` bytes/s (0 = not measured); its
/// clock agrees with the splitter's and nothing queues on its uplink.
fn report(
    s: &Splitter,
    now: Instant,
    n: u16,
    team: u32,
    neighbours: u32,
    uplink_rate: u32,
) -> Bytes {
    let sent_ms = now.saturating_duration_since(s.clock0).as_millis() as u32;
    report_sent(s, n, team, neighbours, uplink_rate, sent_ms)
}

/// The same, stamped `sent_ms` by its own clock.
fn report_sent(
    s: &Splitter,
    n: u16,
    team: u32,
    neighbours: u32,
    uplink_rate: u32,
    sent_ms: u32,
) -> Bytes {
    let id = s.members.iter().find(|m| m.addr == addr(n)).unwrap().id;
    let r = wire::PeerReport {
        from: id,
        delivered: 0,
        lost: 0,
        buffer_fill: 0,
        max_debt: 0,
        neighbours,
        verified: 0,
        rejected: 0,
        pace_rate: 0,
        backlog_ms: 0,
        uplink_rate,
        sent_ms,
    };
    enc(s, n, team, Message::Report(r))
}

/// Member `addr(n)`'s complaint that it misses chunk `no` and has no Digest for it either
/// (sealed as it would send it).
fn complaint(s: &Splitter, n: u16, no: ChunkNo) -> Bytes {
    enc(s, n, 7, Message::LostChunk { no, digest: true })
}

#[test]
fn round_robin_one_copy_and_monitors_first() {
    let t = Instant::now();
    let cfg = SplitterConfig {
        acs: false,
        ..Default::default()
    };
    let mut s = Splitter::new(cfg, 42, t);
    assert_eq!(s.push_chunk(t, Bytes::from_static(b"x")), Ok(ChunkNo(0)));
    assert!(s.poll_transmit().is_none()); // no peers: stored only
    let (p1, _) = join_peer(&mut s, t, 1).unwrap();
    let (m, r) = join_at(&mut s, t, addr(2), Role::Monitor).unwrap();
    assert_eq!(r.peers, vec![(p1, addr(1))]);
    assert_eq!(r.burst.len(), 1);
    assert_eq!(r.next_chunk, ChunkNo(1));
    let (_, r) = join_peer(&mut s, t, 3).unwrap();
    assert_eq!(r.number_of_monitors, 1);
    assert_eq!(r.peers[0], (m, addr(2)));
    for i in 0..6u8 {
        s.push_chunk(t, Bytes::from(vec![i])).unwrap();
    }
    let sent = decode_all(&mut s);
    assert_eq!(sent.len(), 6);
    let dests: Vec<_> = sent.iter().map(|(a, _)| a.port() - 4000).collect();
    // Each peer exactly twice, in a fixed rotation.
    for p in 1..=3 {
        assert_eq!(dests.iter().filter(|d| **d == p).count(), 2);
    }
    assert_eq!(dests[0..3], dests[3..6]);
}

/// A splitter (team 42) streams 10 chunks a second for 10 s to a team of 40, whose members
/// keep talking (Hellos) so that nobody times out: what it sent, when, and the end time.
fn forty_members_streamed_10_s(
    t: Instant,
) -> (Splitter, Vec<(Instant, SocketAddr, Message)>, Instant) {
    let mut s = Splitter::new(SplitterConfig::default(), 42, t);
    for n in 1..=40 {
        join_peer(&mut s, t, n).unwrap();
    }
    let mut sent = Vec::new();
    let mut now = t;
    for k in 1..=100u32 {
        now = t + Duration::from_millis(100 * u64::from(k));
        for n in 1..=40 {
            let hello = enc(&s, n, 42, Message::Hello { from: PeerId(1) });
            s.handle_datagram(now, addr(n), &hello);
        }
        s.push_chunk(now, Bytes::from(vec![k as u8])).unwrap();
        s.handle_timeout(now);
        sent.extend(decode_all(&mut s).into_iter().map(|(to, m)| (now, to, m)));
    }
    (s, sent, now)
}

#[test]
fn keepalives_only_while_the_stream_is_idle() {
    let t = Instant::now();
    // Each peer gets a chunk every 4 s, yet no keepalive goes out (the flooded chunk numbers
    // prove to the team that the splitter lives).
    let (mut s, sent, _) = forty_members_streamed_10_s(t);
    let count = |f: fn(&Message) -> bool| sent.iter().filter(|(_, _, m)| f(m)).count();
    let keepalives = count(|m| matches!(m, Message::KeepAlive { .. }));
    let chunks = count(|m| matches!(m, Message::Chunk { .. }));
    assert_eq!((chunks, keepalives), (100, 0));
    // The source stops: one keepalive interval later every peer hears from us.
    let idle = t + Duration::from_millis(10_000) + s.cfg.keepalive_interval;
    assert!(s.poll_timeout().unwrap() <= idle);
    for n in 1..=40 {
        s.handle_datagram(
            idle,
            addr(n),
            &enc(&s, n, 42, Message::KeepAlive { from: PeerId(1) }),
        );
    }
    s.handle_timeout(idle);
    // Each hears a keepalive, or the last batch's Digest (signed at the same moment).
    let to: HashSet<_> = decode_all(&mut s)
        .into_iter()
        .filter(|(_, m)| matches!(m, Message::KeepAlive { .. } | Message::Digest { .. }))
        .map(|(a, _)| a)
        .collect();
    assert_eq!(to.len(), 40);
}

/// While the stream flows a member that has heard nothing from us lately may ask whether we
/// are there (a KeepAlive; `Peer::ask_splitter`): it is answered, unless we sent it something
/// within a keepalive interval.
#[test]
fn a_member_that_asks_whether_we_are_there_is_answered() {
    let (mut s, sent, now) = forty_members_streamed_10_s(Instant::now());
    // When each member last heard from us.
    let heard: HashMap<SocketAddr, Instant> = sent.iter().map(|(at, to, _)| (*to, *at)).collect();
    let asked_at = now + Duration::from_millis(50);
    for n in 1..=40 {
        let ask = enc(&s, n, 42, Message::KeepAlive { from: PeerId(1) });
        s.handle_datagram(asked_at, addr(n), &ask);
    }
    let answered: HashSet<SocketAddr> = decode_all(&mut s)
        .into_iter()
        .filter(|(_, m)| matches!(m, Message::KeepAlive { .. }))
        .map(|(to, _)| to)
        .collect();
    let due: HashSet<SocketAddr> = (1..=40)
        .map(addr)
        .filter(|a| {
            heard
                .get(a)
                .is_none_or(|h| asked_at >= *h + s.cfg.keepalive_interval)
        })
        .collect();
    assert!(due.len() > 20 && due.len() < 40, "{} due", due.len());
    assert_eq!(answered, due);
}

#[test]
fn info_changes_go_signed_to_three_peers_in_turn() {
    let t = Instant::now();
    let mut s = Splitter::new(SplitterConfig::default(), 42, t);
    for n in 1..=5 {
        join_peer(&mut s, t, n).unwrap();
    }
    let info = StreamInfo {
        content_type: "audio/mpeg".into(),
        title: "A - B".into(),
        ..StreamInfo::default()
    };
    let public = s.cfg.key.public();
    let team = s.team;
    let infos = |s: &mut Splitter| -> Vec<SocketAddr> {
        decode_all(s)
            .into_iter()
            .filter_map(|(to, m)| match m {
                Message::Info {
                    epoch,
                    first_chunk,
                    info,
                    signature,
                    ..
                } => {
                    let parts = wire::info_parts(team, epoch, first_chunk, &info).unwrap();
                    assert!(auth::verify_signature(&public, &[&parts], &signature));
                    Some(to)
                }
                _ => None,
            })
            .collect()
    };
    s.set_stream_info(info.clone());
    let first = infos(&mut s);
    assert_eq!(first.len(), 3);
    // The same info again is no change; nothing is repeated later (the peers flood it).
    s.set_stream_info(info);
    assert!(infos(&mut s).is_empty());
    for k in 1..=5u64 {
        s.handle_timeout(t + Duration::from_secs(k));
        assert!(infos(&mut s).is_empty());
    }
    // The next change goes to the next three.
    s.set_stream_info(StreamInfo {
        title: "C - D".into(),
        ..StreamInfo::default()
    });
    let second = infos(&mut s);
    assert_eq!(second.len(), 3);
    assert!(
        second.iter().any(|a| !first.contains(a)),
        "{first:?} {second:?}"
    );
    let (_, reply) = join_peer(&mut s, t, 9).unwrap();
    assert_eq!((reply.info_epoch, reply.info.title.as_str()), (2, "C - D"));
}

#[test]
fn refuses_when_full_and_bad_version() {
    let t = Instant::now();
    let cfg = SplitterConfig {
        max_peers: 2,
        ..Default::default()
    };
    let mut s = Splitter::new(cfg, 1, t);
    join_peer(&mut s, t, 1).unwrap();
    join_peer(&mut s, t, 2).unwrap();
    assert_eq!(join_peer(&mut s, t, 3), Err(JoinError::Full));
    // A rejoin from a known endpoint replaces the old entry.
    assert!(join_peer(&mut s, t, 2).is_ok());
    let mut req = JoinRequest::new(Role::Peer);
    req.version = wire::VERSION + 1;
    assert_eq!(
        s.handle_join(t, addr(4), &req),
        Err(JoinError::BadVersion(wire::VERSION + 1))
    );
    // |T| ≤ B - 1.
    let cfg = SplitterConfig {
        buffer_size: 3,
        ..Default::default()
    };
    let mut s = Splitter::new(cfg, 1, t);
    join_peer(&mut s, t, 1).unwrap();
    join_peer(&mut s, t, 2).unwrap();
    assert!(join_peer(&mut s, t, 3).is_err());
}

#[test]
fn goodbye_timeout_cookie_and_garbage() {
    let t = Instant::now();
    let mut s = Splitter::new(SplitterConfig::default(), 7, t);
    let (a, _) = join_peer(&mut s, t, 1).unwrap();
    let (b, _) = join_peer(&mut s, t, 2).unwrap();
    while s.poll_event().is_some() {}
    // Another team's datagram (its tag covers the team id), garbage, unknown sender: all
    // ignored.
    s.handle_datagram(t, addr(1), &enc(&s, 1, 8, Message::Goodbye { from: a }));
    s.handle_datagram(t, addr(1), b"junk");
    s.handle_datagram(t, addr(9), &enc(&s, 9, 7, Message::Goodbye { from: a }));
    assert_eq!(s.peer_count(), 2);
    let st = s.stats();
    assert_eq!((st.bad_mac, st.garbage, st.unknown_sender), (1, 1, 1));
    s.handle_datagram(t, addr(1), &enc(&s, 1, 7, Message::Goodbye { from: a }));
    assert_eq!(s.peer_count(), 1);
    assert_eq!(
        s.poll_event(),
        Some(SplitterEvent::PeerLeft {
            id: a,
            addr: addr(1),
            reason: LeaveReason::Goodbye
        })
    );
    // b stays silent: keepalives go out, then it times out.
    let later = t + Duration::from_secs(10);
    assert!(s.poll_timeout().unwrap() <= later);
    s.handle_timeout(t + Duration::from_secs(5));
    assert!(
        decode_all(&mut s)
            .iter()
            .any(|(to, m)| *to == addr(2) && matches!(m, Message::KeepAlive { .. }))
    );
    s.handle_timeout(later);
    assert_eq!(s.peer_count(), 0);
    assert_eq!(
        s.poll_event(),
        Some(SplitterEvent::PeerLeft {
            id: b,
            addr: addr(2),
            reason: LeaveReason::Timeout
        })
    );
}

#[test]
fn lrs_resend_blame_acs_and_expulsion() {
    let t = Instant::now();
    let cfg = SplitterConfig {
        max_chunk_loss: 3,
        ..Default::default()
    };
    let mut s = Splitter::new(cfg, 7, t);
    join_at(&mut s, t, addr(1), Role::Monitor).unwrap();
    let (p, _) = join_peer(&mut s, t, 2).unwrap();
    for i in 0..10u8 {
        s.push_chunk(t, Bytes::from(vec![i])).unwrap();
    }
    let sent = decode_all(&mut s);
    let to_p: Vec<ChunkNo> = sent
        .iter()
        .filter_map(|(a, msg)| match msg {
            Message::Chunk { no, .. } if *a == addr(2) => Some(*no),
            _ => None,
        })
        .collect();
    // A non-monitor's complaint is ignored.
    s.handle_datagram(t, addr(2), &complaint(&s, 2, to_p[0]));
    assert!(s.poll_transmit().is_none());
    // The monitor's complaint: resend to the next peer in the round (the monitor, here) as
    // its own chunk, blame p.
    s.handle_datagram(t, addr(1), &complaint(&s, 1, to_p[0]));
    let r = decode_all(&mut s);
    assert_eq!(
        r,
        vec![(
            addr(1),
            // The splitter's chunks name no origin: it is their receiver.
            Message::Chunk {
                no: to_p[0],
                origin: PeerId::NONE,
                relay: None,
                payload: Bytes::from(vec![to_p[0].0 as u8])
            }
        )]
    );
    // A repeated complaint at once does not resend or blame again...
    s.handle_datagram(t, addr(1), &complaint(&s, 1, to_p[0]));
    assert!(s.poll_transmit().is_none());
    // ... a while later it resends (the first resend may have been lost), but blames no more.
    let later = t + Duration::from_millis(400);
    s.handle_datagram(later, addr(1), &complaint(&s, 1, to_p[0]));
    // (To the peer whose turn it is now: the resend's flood is shared out like the stream.)
    assert!(
        decode_all(&mut s)
            .iter()
            .any(|(_, m)| matches!(m, Message::Chunk { no, .. } if *no == to_p[0]))
    );
    let st = s.stats();
    assert_eq!(st.peers[1].losses, 1);
    assert_eq!(st.peers[1].acs_period, 2);
    for no in &to_p[1..4] {
        s.handle_datagram(t, addr(1), &complaint(&s, 1, *no));
    }
    assert_eq!(s.peer_count(), 1);
    let ev: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(ev.contains(&SplitterEvent::PeerLeft {
        id: p,
        addr: addr(2),
        reason: LeaveReason::Expelled
    }));
}

/// A resend is a chunk's last chance: it never goes to a member late with its Report, though
/// the round still counts that one as live. (Without the rule, half of these resends went to
/// the silent members.)
#[test]
fn resends_go_to_members_not_late_with_their_reports() {
    let t = Instant::now();
    let mut s = monitored_team(t, 11);
    // 1.3 s on, members 2..=6 have reported; 7..=11 vanished at `t` (silent for less than
    // the 1.5 keepalive intervals after which the round passes over them, but their Reports
    // are overdue).
    let now = t + Duration::from_millis(1300);
    for n in 2..=6 {
        s.handle_datagram(now, addr(n), &report(&s, now, n, 7, 10, 0));
    }
    let mut resent_to = Vec::new();
    for i in 0..10u8 {
        let no = s.push_chunk(now, Bytes::from(vec![i])).unwrap();
        while s.poll_transmit().is_some() {}
        s.handle_datagram(now, addr(1), &complaint(&s, 1, no));
        for (to, msg) in decode_all(&mut s) {
            if matches!(msg, Message::Chunk { no: c, .. } if c == no) {
                resent_to.push(to);
            }
        }
    }
    assert_eq!(resent_to.len(), 10, "one resend per complaint");
    let silent: Vec<_> = (7..=11).map(addr).collect();
    assert!(
        resent_to.iter().all(|a| !silent.contains(a)),
        "resends to silent members: {resent_to:?}"
    );
    // The round still goes on through the live ones, not all to one member.
    let distinct: std::collections::HashSet<_> = resent_to.iter().collect();
    assert!(distinct.len() >= 3, "{resent_to:?}");
}

/// A member whose Report is overdue gets no chunks to flood until it reports again: its
/// uplink's queue may hold its Reports back (a slow uplink in its first seconds), and a
/// chunk sent to it alone would reach the team late.
#[test]
fn chunks_go_to_members_not_late_with_their_reports() {
    let t = Instant::now();
    let mut s = plain_team(t, 4);
    // 1.3 s on, all but member 3 have reported: it is not silent for long enough to look
    // gone, but its Report is overdue.
    let now = t + Duration::from_millis(1300);
    for n in [1, 2, 4] {
        s.handle_datagram(now, addr(n), &report(&s, now, n, 7, 3, 0));
    }
    let to = |s: &mut Splitter, now: Instant| -> Vec<SocketAddr> {
        for k in 0..8u8 {
            s.push_chunk(now, Bytes::from(vec![k])).unwrap();
        }
        decode_all(s)
            .into_iter()
            .filter(|(_, m)| matches!(m, Message::Chunk { .. }))
            .map(|(a, _)| a)
            .collect()
    };
    let sent = to(&mut s, now);
    assert_eq!(sent.len(), 8);
    assert!(!sent.contains(&addr(3)), "{sent:?}");
    // Its Report comes: it takes turns again.
    s.handle_datagram(now, addr(3), &report(&s, now, 3, 7, 3, 0));
    assert_eq!(to(&mut s, now).iter().filter(|a| **a == addr(3)).count(), 2);
}

/// A member whose Reports come late by its own clock (they wait behind a queue on its uplink)
/// gets no chunk turns while the queue stands: a chunk given to it would flood seconds late.
/// Its Reports come as regularly as anyone's, so lateness of arrival alone does not tell.
#[test]
fn chunks_pass_over_members_whose_reports_wait_behind_a_queue() {
    let t = Instant::now();
    let mut s = plain_team(t, 4);
    // Each member's clock started at a different time; member 3's Reports sent from 2 s on
    // wait behind a queue that grows to 1.5 s.
    let stamped = |s: &Splitter, n: u16, sent_ms: u32| report_sent(s, n, 7, 3, 0, sent_ms);
    let turns = |s: &mut Splitter, now: Instant| {
        for k in 0..8u8 {
            s.push_chunk(now, Bytes::from(vec![k])).unwrap();
        }
        decode_all(s)
            .into_iter()
            .filter(|(a, m)| *a == addr(3) && matches!(m, Message::Chunk { .. }))
            .count()
    };
    for k in 1..=6u32 {
        let now = t + Duration::from_secs(u64::from(k));
        let queue = if k >= 2 { 500 * (k - 2).min(3) } else { 0 };
        for n in 1..=4u16 {
            let clock0 = 100_000 * u32::from(n);
            let sent = clock0 + 1000 * k - if n == 3 { queue } else { 0 };
            s.handle_datagram(now, addr(n), &stamped(&s, n, sent));
        }
        let got = turns(&mut s, now);
        // 0, 0.5 and 1 s of queue: its turns; 1.5 s: none.
        assert_eq!(
            got,
            if queue > 1000 { 0 } else { 2 },
            "at {k} s, queue {queue} ms"
        );
    }
    // The queue drains: it takes turns again.
    let now = t + Duration::from_secs(7);
    for n in 1..=4u16 {
        s.handle_datagram(now, addr(n), &stamped(&s, n, 100_000 * u32::from(n) + 7000));
    }
    assert_eq!(turns(&mut s, now), 2);
}

/// A Report's queue is its delay over the least one of the last one to two minutes, across
/// either clock's wrap (u32 milliseconds wrap every 49.7 days).
#[test]
fn report_delay_follows_the_least_delay_across_wraps() {
    let t = Instant::now();
    let mut d = ReportDelay::default();
    let at = |s: u64| t + Duration::from_secs(s);
    // Its clock is about to wrap; ours is young.
    let theirs = u32::MAX - 1500;
    d.on_report(at(0), 1000, theirs);
    assert_eq!(d.queued(), Duration::ZERO);
    d.on_report(at(1), 2300, theirs.wrapping_add(1000));
    assert_eq!(d.queued(), Duration::from_millis(300));
    d.on_report(at(2), 3000, theirs.wrapping_add(2000));
    assert_eq!(d.queued(), Duration::ZERO);
    // A path 200 ms faster from 61 s on: the old least delay is kept a window more, then
    // forgotten.
    d.on_report(at(61), 61_800, theirs.wrapping_add(61_000));
    assert_eq!(d.queued(), Duration::ZERO);
    d.on_report(at(122), 122_800, theirs.wrapping_add(122_000));
    d.on_report(at(123), 123_800, theirs.wrapping_add(123_000));
    assert_eq!(d.queued(), Duration::ZERO);
    d.on_report(at(124), 125_300, theirs.wrapping_add(124_000));
    assert_eq!(d.queued(), Duration::from_millis(500));
}

/// Members dropped for silence are named to the rest of the team, together at the next
/// tick (one datagram each, however many vanished in that second).
#[test]
fn members_dropped_for_silence_are_named_to_the_team() {
    let t = Instant::now();
    let mut s = plain_team(t, 4);
    let ids: Vec<PeerId> = s.stats().peers.iter().map(|p| p.id).collect();
    // Members 1 and 2 report every second; 3 and 4 vanished at `t`.
    let mut gone = Vec::new();
    let mut now = t;
    while now < t + Duration::from_secs(12) {
        now += Duration::from_millis(250);
        for n in [1, 2] {
            s.handle_datagram(now, addr(n), &report(&s, now, n, 7, 3, 0));
        }
        s.handle_timeout(now);
        for (to, m) in decode_all(&mut s) {
            if let Message::Gone { ids } = m {
                gone.push((now, to, ids));
            }
        }
    }
    assert_eq!(s.peer_count(), 2);
    assert_eq!(gone.len(), 2, "{gone:?}");
    for (at, to, named) in &gone {
        assert!(*at >= t + s.cfg.peer_timeout, "{at:?}");
        assert!([addr(1), addr(2)].contains(to));
        assert_eq!(named, &vec![ids[3], ids[2]]);
    }
}

/// A resend brings the chunk's Digest only when the complainer says it has none: a flood
/// of the Digest with every resend was half the Digest traffic of a lossy team.
#[test]
fn a_resend_brings_the_digest_only_to_those_without_it() {
    let t = Instant::now();
    let mut s = monitored_team(t, 2);
    // A whole batch, signed.
    for i in 0..auth::BATCH_CHUNKS as u8 {
        s.push_chunk(t, Bytes::from(vec![i])).unwrap();
    }
    assert!(s.stats().digests_signed >= 1);
    while s.poll_transmit().is_some() {}
    let resend = |s: &mut Splitter, no: u32, digest: bool| {
        let no = ChunkNo(no);
        s.handle_datagram(t, addr(1), &enc(s, 1, 7, Message::LostChunk { no, digest }));
        let sent = decode_all(s);
        let chunk = sent
            .iter()
            .any(|(_, m)| matches!(m, Message::Chunk { no: c, .. } if *c == no));
        let digest = sent
            .iter()
            .any(|(_, m)| matches!(m, Message::Digest { .. }));
        (chunk, digest)
    };
    assert_eq!(resend(&mut s, 3, false), (true, false));
    assert_eq!(resend(&mut s, 4, true), (true, true));
}

#[test]
fn acs_serves_lossy_peers_less() {
    let t = Instant::now();
    let mut s = Splitter::new(SplitterConfig::default(), 7, t);
    for i in 1..=3 {
        join_peer(&mut s, t, i).unwrap();
    }
    s.members[1].period = 3;
    s.members[2].period = 2;
    for _ in 0..60 {
        s.push_chunk(t, Bytes::from_static(b"z")).unwrap();
    }
    let st = s.stats();
    let c: Vec<u64> = st.peers.iter().map(|p| p.chunks_sent).collect();
    assert!(c[0] > c[2] && c[2] > c[1], "{c:?}");
    assert_eq!(c.iter().sum::<u64>(), 60);
}

#[test]
fn join_reply_carries_the_header_in_effect_at_the_joiners_first_chunk() {
    let t = Instant::now();
    let cfg = SplitterConfig {
        burst_chunks_on_join: 8,
        max_chunk_payload: 100,
        ..SplitterConfig::default()
    };
    let mut s = Splitter::new(cfg, 7, t);
    // The caller pushes a header's bytes as the next chunks, as src/team/splitter.rs does.
    let chain = |s: &mut Splitter, h: &Bytes| {
        s.set_header(h.clone()).unwrap();
        for piece in h.chunks(100) {
            s.push_chunk(t, Bytes::copy_from_slice(piece)).unwrap();
        }
    };
    let data = |s: &mut Splitter, n: usize| {
        for _ in 0..n {
            s.push_chunk(t, Bytes::from_static(b"data")).unwrap();
        }
    };
    let (h1, h2) = (Bytes::from(vec![1u8; 150]), Bytes::from(vec![2u8; 250]));
    let join = |s: &mut Splitter, n: u16| {
        let (_, r) = s
            .handle_join(t, addr(n), &JoinRequest::new(Role::Peer))
            .unwrap();
        let burst: Vec<Bytes> = r.burst.iter().map(|c| c.payload.clone()).collect();
        (r.header, burst)
    };
    chain(&mut s, &h1);
    data(&mut s, 20);
    // Its header chunks are behind the burst: the reply carries it.
    let (h, burst) = join(&mut s, 1);
    assert_eq!((h, burst.len()), (h1.clone(), 8));
    chain(&mut s, &h2);
    data(&mut s, 2);
    // The burst begins before the new header's 3 chunks: the joiner reads that one in the
    // stream and needs the old one from us.
    let (h, burst) = join(&mut s, 2);
    assert_eq!(h, h1);
    assert_eq!(burst.len(), 8);
    assert_eq!(burst[3..6].concat(), h2.to_vec());
    // The burst would begin inside the header's chunks: it starts after them instead.
    data(&mut s, 4);
    let (h, burst) = join(&mut s, 3);
    assert_eq!(h, h2);
    assert_eq!(burst.len(), 6);
    assert!(burst.iter().all(|b| &b[..] == b"data"));
    assert!(
        s.set_header(Bytes::from(vec![0u8; wire::MAX_HEADER + 1]))
            .is_err()
    );
}

#[test]
fn compat_mode_speaks_gen_c() {
    let t = Instant::now();
    let cfg = SplitterConfig {
        codec: Codec::CompatGenC,
        max_chunk_payload: 1024,
        ..Default::default()
    };
    let mut s = Splitter::new(cfg, 0, t);
    let (_, _) = join_at(&mut s, t, addr(1), Role::Monitor).unwrap();
    let (_, r) = join_peer(&mut s, t, 2).unwrap();
    let c = s
        .compat_config(&r, "127.0.0.1:8000".parse().unwrap(), "test.ogg", 8192)
        .unwrap();
    assert_eq!(c.peers, vec!["10.0.0.1:4001".parse().unwrap()]);
    assert_eq!(
        (c.chunk_size, c.buffer_size, c.number_of_monitors),
        (1024, 256, 1)
    );
    assert!(s.push_chunk(t, Bytes::from_static(b"short")).is_err());
    s.push_chunk(t, Bytes::from(vec![9u8; 1024])).unwrap();
    let tx = s.poll_transmit().unwrap();
    assert_eq!(tx.data.len(), 1026);
    assert_eq!(&tx.data[..2], &[0, 0]);
    // A 2-byte complaint from the monitor triggers a resend; no timeouts for Gen C peers.
    s.handle_datagram(t, addr(1), &[0, 0]);
    assert_eq!(s.poll_transmit().unwrap().data.len(), 1026);
    s.handle_timeout(t + Duration::from_secs(60));
    assert_eq!(s.peer_count(), 2);
    assert!(s.poll_transmit().is_none());
    s.handle_datagram(t, addr(2), b"G");
    assert_eq!(s.peer_count(), 1);
    assert_eq!(&s.poll_transmit().unwrap().data[..], b"G");
}

#[test]
fn a_departing_monitor_is_replaced_by_promotion() {
    let t = Instant::now();
    let mut s = Splitter::new(
        SplitterConfig {
            number_of_monitors: 1,
            ..SplitterConfig::default()
        },
        7,
        t,
    );
    join_at(&mut s, t, addr(1), Role::Monitor).unwrap();
    join_at(&mut s, t, addr(2), Role::Monitor).unwrap();
    join_peer(&mut s, t, 3).unwrap();
    while s.poll_transmit().is_some() {}
    // The monitor says goodbye: peer 2 (the oldest plain peer) is promoted and told so.
    s.handle_datagram(
        t,
        addr(1),
        &enc(&s, 1, 7, Message::Goodbye { from: PeerId(1) }),
    );
    let promotes: Vec<_> = std::iter::from_fn(|| s.poll_transmit())
        .filter(|tx| wire::open(&tx.data).is_ok_and(|o| o.packet.msg == Message::Promote))
        .map(|tx| tx.to)
        .collect();
    assert_eq!(promotes, vec![addr(2)]);
    let stats = s.stats();
    assert_eq!(
        stats.peers.first().map(|p| (p.addr, p.role)),
        Some((addr(2), Role::Monitor))
    );
    // Complaints from the new monitor now count (the resend goes to it).
    s.push_chunk(t, Bytes::from_static(b"abc")).unwrap();
    while s.poll_transmit().is_some() {}
    s.handle_datagram(t, addr(2), &complaint(&s, 2, ChunkNo(0)));
    assert_eq!(s.stats().lrs_resends, 1);
}

#[test]
fn a_silent_monitor_is_replaced_before_its_timeout() {
    let t = Instant::now();
    let mut s = Splitter::new(
        SplitterConfig {
            number_of_monitors: 1,
            peer_timeout: Duration::from_secs(10),
            ..SplitterConfig::default()
        },
        7,
        t,
    );
    for n in 1..=3 {
        join_at(&mut s, t, addr(n), Role::Monitor).unwrap();
    }
    while s.poll_transmit().is_some() {}
    // Peers 2 and 3 keep reporting; the monitor (1) vanishes without a word.
    let mut promoted = None;
    for ms in (250..=3000).step_by(250) {
        let now = t + Duration::from_millis(ms);
        for n in 2..=3 {
            s.handle_datagram(
                now,
                addr(n),
                &enc(&s, n, 7, Message::KeepAlive { from: PeerId(1) }),
            );
        }
        s.handle_timeout(now);
        if std::iter::from_fn(|| s.poll_transmit()).any(|tx| {
            tx.to == addr(2) && wire::open(&tx.data).is_ok_and(|o| o.packet.msg == Message::Promote)
        }) {
            promoted = Some(ms);
            break;
        }
    }
    // Within about two keepalive intervals, long before the 10 s timeout.
    assert!(promoted.is_some_and(|ms| ms <= 2500), "{promoted:?}");
    assert_eq!(s.peer_count(), 3, "the silent monitor is not removed yet");
    let roles: Vec<_> = s.stats().peers.iter().map(|p| (p.addr, p.role)).collect();
    assert_eq!(
        roles[..2],
        [(addr(1), Role::Monitor), (addr(2), Role::Monitor)]
    );
}

#[test]
fn untrusted_monitors_get_resends_but_only_a_trusted_one_blames() {
    let t = Instant::now();
    let cfg = SplitterConfig {
        blame_quorum: None,
        number_of_monitors: 2,
        max_chunk_loss: 2,
        // Trusted: someone else (every addr(n) shares one IP).
        trusted_monitors: vec!["192.0.2.9".parse().unwrap()],
        acs: false,
        ..Default::default()
    };
    let mut s = Splitter::new(cfg, 7, t);
    for n in 1..=2 {
        join_at(&mut s, t, addr(n), Role::Monitor).unwrap();
    }
    join_peer(&mut s, t, 3).unwrap();
    let mut to_p = vec![];
    for k in 0..30u8 {
        let no = s.push_chunk(t, Bytes::from(vec![k])).unwrap();
        if decode_all(&mut s)
            .iter()
            .any(|(a, m)| *a == addr(3) && matches!(m, Message::Chunk { .. }))
        {
            to_p.push(no);
        }
    }
    // Both untrusted monitors complain about everything sent to the peer: resends, no blame.
    for no in &to_p {
        for n in 1..=2 {
            s.handle_datagram(t, addr(n), &complaint(&s, n, *no));
        }
    }
    let st = s.stats();
    assert!(to_p.len() >= 5 && st.lrs_resends > 0);
    // Resends for untrusted complaints stay within one per two chunks pushed (and 8 to start).
    assert!(st.lrs_resends <= 8 + 15, "{}", st.lrs_resends);
    assert_eq!(st.unblamed_complaints as usize, 2 * to_p.len());
    assert_eq!(st.expelled_losses, 0);
    assert_eq!(s.peer_count(), 3);
    assert!(st.peers.iter().all(|p| p.losses_total == 0));
}

#[test]
fn a_trusted_monitor_blames_alone() {
    let t = Instant::now();
    let mut s = Splitter::new(
        SplitterConfig {
            blame_quorum: None,
            max_chunk_loss: 1,
            trusted_monitors: vec![addr(1).ip()],
            acs: false,
            ..Default::default()
        },
        7,
        t,
    );
    // A joiner from a trusted address is a monitor whatever it asked for.
    let (_, reply) = join_at(&mut s, t, addr(1), Role::Peer).unwrap();
    assert_eq!(reply.role, Role::Monitor);
    let plain = SocketAddr::from(([10, 0, 0, 3], 4003));
    join_at(&mut s, t, plain, Role::Peer).unwrap();
    let mut to_p = vec![];
    for k in 0..20u8 {
        let no = s.push_chunk(t, Bytes::from(vec![k])).unwrap();
        if decode_all(&mut s)
            .iter()
            .any(|(a, m)| *a == plain && matches!(m, Message::Chunk { .. }))
        {
            to_p.push(no);
        }
    }
    for no in &to_p {
        s.handle_datagram(t, addr(1), &complaint(&s, 1, *no));
    }
    assert_eq!(s.stats().expelled_losses, 1);
}

#[test]
fn a_team_secret_gates_joins_and_masks_the_keys() {
    let t = Instant::now();
    let secret = auth::secret_key("s3cret");
    let cfg = SplitterConfig {
        team_secret: Some(secret),
        ..Default::default()
    };
    let mut s = Splitter::new(cfg, 7, t);
    let req = JoinRequest {
        nonce: [4; 16],
        ..JoinRequest::new(Role::Peer)
    };
    assert_eq!(
        s.handle_join(t, addr(1), &req).err(),
        Some(JoinError::NotAdmitted)
    );
    let wrong = JoinProof {
        challenge: [1; 16],
        proof: auth::join_proof(&auth::secret_key("guess"), &[1; 16], &[4; 16]),
    };
    assert_eq!(
        s.handle_join_proved(t, addr(1), &req, Some(&wrong)).err(),
        Some(JoinError::NotAdmitted)
    );
    let right = JoinProof {
        challenge: [1; 16],
        proof: auth::join_proof(&secret, &[1; 16], &[4; 16]),
    };
    let (id, reply) = s
        .handle_join_proved(t, addr(1), &req, Some(&right))
        .unwrap();
    assert!(reply.keys_masked && reply.verify(7, &[4; 16]));
    let mut keys = [reply.peer_key];
    auth::mask_keys(&secret, &[1; 16], &[4; 16], &mut keys);
    assert_ne!(reply.peer_key, s.key_of(id), "not in clear");
    assert_eq!(keys[0], s.key_of(id), "unmasked with the secret");
}

#[test]
fn a_native_joiner_is_a_member_only_once_its_first_datagram_arrives() {
    let t = Instant::now();
    let mut s = Splitter::new(SplitterConfig::default(), 7, t);
    let (old, _) = join_peer(&mut s, t, 1).unwrap();
    // It took the reply over TCP from 10.0.0.1:4002, and says nothing over UDP.
    let (ghost, _) = s
        .handle_join(t, addr(2), &JoinRequest::new(Role::Peer))
        .unwrap();
    assert_eq!(s.peer_count(), 1, "not admitted on its TCP exchange");
    for k in 0..4u8 {
        s.push_chunk(t, Bytes::from(vec![k])).unwrap();
    }
    assert!(decode_all(&mut s).iter().all(|(a, _)| *a == addr(1)));
    // A stranger's datagram naming its id, or one under the wrong key, admits nobody.
    let forged = wire::seal(
        &Packet {
            team: 7,
            msg: Message::Hello { from: ghost },
        },
        ghost,
        1,
        &[9; 32],
        None,
    )
    .unwrap();
    s.handle_datagram(t, addr(2), &forged);
    assert_eq!(s.peer_count(), 1);
    // Past its deadline it is forgotten: a late Hello admits nothing.
    s.handle_timeout(t + admission::CONFIRM_WITHIN);
    assert_eq!(s.stats().joins_unconfirmed, 1);
    confirm(&mut s, t + admission::CONFIRM_WITHIN, ghost, addr(2));
    assert_eq!(s.peer_count(), 1);
    assert!(s.stats().peers.iter().all(|p| p.id == old));
}

#[test]
fn a_confirmed_joiner_is_listed_at_its_udp_source_and_introduced_when_natted() {
    let t = Instant::now();
    let mut s = Splitter::new(SplitterConfig::default(), 7, t);
    let (old, _) = join_peer(&mut s, t, 1).unwrap();
    let tcp = addr(2);
    // Its NAT maps its UDP socket to another port than its TCP join.
    let udp = SocketAddr::from(([10, 0, 0, 1], 61000));
    let (new, reply) = s
        .handle_join(t, tcp, &JoinRequest::new(Role::Peer))
        .unwrap();
    assert_eq!(reply.public_endpoint, tcp);
    let key = s.key_of(new);
    let hello = |seq| {
        let p = Packet {
            team: 7,
            msg: Message::Hello { from: new },
        };
        wire::seal(&p, new, seq, &key, None).unwrap()
    };
    // Sealed right, but from another address: a joiner cannot aim the team at a third party.
    s.handle_datagram(t, SocketAddr::from(([192, 0, 2, 66], 61000)), &hello(1));
    assert_eq!(s.peer_count(), 1);
    s.handle_datagram(t, udp, &hello(2));
    let listed: Vec<_> = s.stats().peers.iter().map(|p| (p.id, p.addr)).collect();
    assert_eq!(listed, vec![(old, addr(1)), (new, udp)]);
    // It learns its mapping; the old member (not behind a NAT) takes its Hello as it comes.
    let sent = decode_all(&mut s);
    assert_eq!(sent, vec![(udp, Message::Endpoint { endpoint: udp })]);
    // It says where it is bound: behind a NAT. Now the old member greets it too (hole
    // punching), with their pair key, masked so that only it can read it.
    let local = SocketAddr::from(([192, 168, 1, 5], 5000));
    let said = wire::seal(
        &Packet {
            team: 7,
            msg: Message::Endpoint { endpoint: local },
        },
        new,
        3,
        &key,
        None,
    )
    .unwrap();
    s.handle_datagram(t, udp, &said);
    let p = s.stats().peers.into_iter().find(|p| p.id == new).unwrap();
    assert_eq!(p.nat, Some(true));
    let sent = decode_all(&mut s);
    let [(to, Message::Introduce { id, endpoint, key })] = sent.as_slice() else {
        panic!("one introduction: {sent:?}");
    };
    let mut k = *key;
    auth::intro_mask(&s.key_of(old), 7, new, &mut k);
    assert_eq!((*to, *id, *endpoint), (addr(1), new, udp));
    assert_eq!(k, auth::pair_key(&s.key_of(old), new));
    // Chunks now go to its UDP endpoint (its Train came from there), never to the TCP one.
    send_train(&mut s, t, udp, &[Duration::ZERO]);
    for k in 0..4u8 {
        s.push_chunk(t, Bytes::from(vec![k])).unwrap();
    }
    let dests: Vec<_> = decode_all(&mut s).into_iter().map(|(a, _)| a).collect();
    assert!(dests.contains(&udp) && !dests.contains(&tcp), "{dests:?}");
}

#[test]
fn a_member_no_one_reaches_is_relayed_the_whole_stream() {
    let t = Instant::now();
    let cfg = SplitterConfig {
        acs: false,
        max_relayed: 1,
        ..SplitterConfig::default()
    };
    let mut s = Splitter::new(cfg, 7, t);
    for n in 1..=4 {
        join_peer(&mut s, t, n).unwrap();
    }
    // Peers 3 and 4 hear nobody, for longer than RELAY_AFTER; only one may be relayed.
    let mut now = t;
    while now <= t + admission::RELAY_AFTER + Duration::from_secs(1) {
        for (n, nb) in [(1, 1), (2, 1), (3, 0), (4, 0)] {
            let d = report(&s, now, n, 7, nb, 0);
            s.handle_datagram(now, addr(n), &d);
        }
        s.handle_timeout(now);
        now += Duration::from_millis(500);
    }
    let st = s.stats();
    assert_eq!(st.relayed_peers, 1);
    let relayed = st.peers.iter().find(|p| p.relayed).unwrap().addr;
    assert_eq!(relayed, addr(3));
    let _ = decode_all(&mut s);
    for k in 0..8u8 {
        s.push_chunk(now, Bytes::from(vec![k])).unwrap();
    }
    let chunks: Vec<_> = decode_all(&mut s)
        .into_iter()
        .filter(|(_, m)| matches!(m, Message::Chunk { .. }))
        .collect();
    // Every chunk goes to one member that floods it, plus a copy to the relayed one.
    let to_relayed = chunks.iter().filter(|(a, _)| *a == relayed).count();
    assert_eq!((chunks.len(), to_relayed), (16, 8));
    // Once it is heard by someone it is a member like any other.
    let d = report(&s, now, 3, 7, 1, 0);
    s.handle_datagram(now, addr(3), &d);
    assert_eq!(s.stats().relayed_peers, 0);
}

/// Digests, Infos and resends are floods that start at the splitter's pick; behind NATs a
/// member reaches only part of the team, and the rest asked for every chunk a Digest it
/// flooded vouches for (simulated 30% NATs, 10% symmetric, 1% loss: peer upload 1.19 → 1.14
/// over 8 seeds). So they start at public members while there are some.
#[test]
fn the_splitters_floods_start_at_public_members() {
    let t = Instant::now();
    let mut s = monitored_team(t, 10);
    // Who gets Digests, Infos and resent chunks over four batches, four title changes and
    // eight complaints.
    let floods = |s: &mut Splitter| {
        let _ = decode_all(s);
        let mut digests = Vec::new();
        let mut infos = Vec::new();
        let mut resends = Vec::new();
        for b in 0..4u8 {
            let mut last = ChunkNo(0);
            for i in 0..auth::BATCH_CHUNKS as u8 {
                last = s.push_chunk(t, Bytes::from(vec![b, i])).unwrap();
            }
            for (to, m) in decode_all(s) {
                if matches!(m, Message::Digest { .. }) {
                    digests.push(to);
                }
            }
            s.set_stream_info(StreamInfo {
                title: format!("title {b}"),
                ..StreamInfo::default()
            });
            for no in [last, last.minus(1)] {
                s.handle_datagram(t, addr(1), &complaint(s, 1, no));
            }
            for (to, m) in decode_all(s) {
                match m {
                    Message::Info { .. } => infos.push(to),
                    Message::Chunk { .. } => resends.push(to),
                    _ => {}
                }
            }
        }
        (digests, infos, resends)
    };
    // No member has said where it is bound: the floods take turns among all of them.
    let (digests, infos, resends) = floods(&mut s);
    let behind: Vec<SocketAddr> = (4..=10).map(addr).collect();
    assert_eq!((digests.len(), infos.len(), resends.len()), (4, 12, 8));
    assert!(infos.iter().any(|a| behind.contains(a)), "{infos:?}");
    // Members 1–3 are bound where the splitter sees them; 4–10 behind NATs.
    for n in 1..=10u16 {
        let local = if n <= 3 {
            addr(n)
        } else {
            SocketAddr::from(([192, 168, 1, 5], 5000 + n))
        };
        let d = enc(&s, n, 7, Message::Endpoint { endpoint: local });
        s.handle_datagram(t, addr(n), &d);
    }
    let (digests, infos, resends) = floods(&mut s);
    assert_eq!((digests.len(), infos.len(), resends.len()), (4, 12, 8));
    for (what, to) in [("Digest", &digests), ("Info", &infos), ("resend", &resends)] {
        assert!(
            to.iter().all(|a| !behind.contains(a)),
            "a {what} went to a member behind a NAT: {to:?}"
        );
    }
}

#[test]
fn joiners_that_overlapped_are_introduced_to_each_other() {
    let t = Instant::now();
    let mut s = Splitter::new(SplitterConfig::default(), 7, t);
    // A joins, then B joins before A has confirmed: neither reply lists the other.
    let (a, _) = s
        .handle_join(t, addr(1), &JoinRequest::new(Role::Peer))
        .unwrap();
    let (b, rb) = s
        .handle_join(t, addr(2), &JoinRequest::new(Role::Peer))
        .unwrap();
    assert!(rb.peers.is_empty());
    let hello = |s: &Splitter, id: PeerId| {
        let p = Packet {
            team: 7,
            msg: Message::Hello { from: id },
        };
        wire::seal(&p, id, 1, &s.key_of(id), None).unwrap()
    };
    let hb = hello(&s, b);
    s.handle_datagram(t, addr(2), &hb);
    let _ = decode_all(&mut s);
    let ha = hello(&s, a);
    s.handle_datagram(t, addr(1), &ha);
    let intros: Vec<_> = decode_all(&mut s)
        .into_iter()
        .filter_map(|(to, m)| match m {
            Message::Introduce { id, endpoint, key } => Some((to, id, endpoint, key)),
            _ => None,
        })
        .collect();
    assert_eq!(intros.len(), 2, "{intros:?}");
    // The older one (A) learns of B; B learns of A, with the key it cannot derive itself.
    let pair = auth::pair_key(&s.key_of(a), b);
    for (to, id, endpoint, key) in intros {
        let (me, them, at) = if to == addr(1) {
            (a, b, addr(2))
        } else {
            (b, a, addr(1))
        };
        let mut k = key;
        auth::intro_mask(&s.key_of(me), 7, them, &mut k);
        assert_eq!((id, endpoint, k), (them, at, pair));
    }
}

#[test]
fn an_uplink_too_slow_to_flood_in_time_gets_no_share_and_no_digests_to_flood() {
    let t = Instant::now();
    let mut s = Splitter::new(SplitterConfig::default(), 7, t);
    for n in 1..=4 {
        join_peer(&mut s, t, n).unwrap();
    }
    // 1000-byte chunks every 64 ms: the stream is 15,625 bytes/s.
    let clock = std::cell::Cell::new(t);
    let push = |s: &mut Splitter, k: usize| {
        for _ in 0..k {
            clock.set(clock.get() + Duration::from_millis(64));
            s.push_chunk(clock.get(), Bytes::from(vec![0u8; 1000]))
                .unwrap();
        }
        clock.get()
    };
    push(&mut s, 40);
    // Member 3 measured its uplink at `streams` times the stream (0 = not measured).
    let measured = |s: &mut Splitter, now: Instant, streams: f64| {
        let d = report(s, now, 3, 7, 3, (15_625.0 * streams) as u32);
        s.handle_datagram(now, addr(3), &d);
    };
    // Who gets the next 160 chunks, and who gets Digests to flood.
    let turns = |s: &mut Splitter| {
        let _ = decode_all(s);
        let mut sent = Vec::new();
        for _ in 0..16 {
            // Everyone keeps talking (a silent member gets no Digests to flood).
            for n in 1..=4 {
                let d = enc(
                    s,
                    n,
                    7,
                    Message::KeepAlive {
                        from: PeerId(n.into()),
                    },
                );
                s.handle_datagram(clock.get(), addr(n), &d);
            }
            push(s, 10);
            sent.extend(decode_all(s));
        }
        let to = |a: SocketAddr, digest: bool| {
            sent.iter()
                .filter(|(to, m)| {
                    *to == a
                        && if digest {
                            matches!(m, Message::Digest { .. })
                        } else {
                            matches!(m, Message::Chunk { .. })
                        }
                })
                .count()
        };
        (to(addr(3), false), to(addr(3), true), to(addr(1), false))
    };
    let now0 = push(&mut s, 0);
    measured(&mut s, now0, 0.0);
    let (chunks, digests, _) = turns(&mut s);
    assert!(
        chunks >= 36 && digests > 0,
        "unmeasured keeps its share: {chunks} {digests}"
    );
    // Half the stream: its flood of one chunk would take two rounds.
    let now1 = push(&mut s, 0);
    measured(&mut s, now1, 0.5);
    assert_eq!(s.stats().peers[2].capacity_period, NO_SHARE);
    let (chunks, digests, others) = turns(&mut s);
    assert_eq!((chunks, digests), (0, 0));
    assert!(others >= 50, "the others take its share: {others}");
    // Hysteresis: 0.8 of the stream is not enough to get a share back; 1.2 is.
    let now2 = push(&mut s, 0);
    measured(&mut s, now2, 0.8);
    assert_eq!(turns(&mut s).0, 0);
    let now3 = push(&mut s, 0);
    measured(&mut s, now3, 1.2);
    assert!(turns(&mut s).0 >= 36);
    // If no one can flood in time, chunks still go out.
    for m in &mut s.members {
        m.capacity_period = NO_SHARE;
    }
    let _ = decode_all(&mut s);
    push(&mut s, 8);
    let chunks = decode_all(&mut s)
        .into_iter()
        .filter(|(_, m)| matches!(m, Message::Chunk { .. }))
        .count();
    assert_eq!(chunks, 8);
}

/// A joiner's Train says how fast its uplink is before it is given anything: one at half the
/// stream gets no chunk turns from the start, one at three times gets its share, and one whose
/// Train never comes gets turns once [`train::TRAIN_WAIT`] has passed. The pacer's own
/// measurement, when one comes, outweighs the Train.
#[test]
fn a_joiners_train_sizes_its_first_share() {
    let t = Instant::now();
    let mut s = Splitter::new(SplitterConfig::default(), 7, t);
    for n in 1..=4 {
        join_peer(&mut s, t, n).unwrap();
    }
    // 1000-byte chunks every 64 ms: the stream is 15,625 bytes/s.
    let mut now = t;
    // Every member reports (member 5 its pacer's measurement `up5`, 0 = none yet).
    let mut push = |s: &mut Splitter, k: usize, members: u16, up5: u32| {
        let mut sent = Vec::new();
        for c in 0..k {
            now += Duration::from_millis(64);
            if c % 10 == 0 {
                for n in 1..=members {
                    let d = report(s, now, n, 7, 3, if n == 5 { up5 } else { 0 });
                    s.handle_datagram(now, addr(n), &d);
                }
            }
            s.push_chunk(now, Bytes::from(vec![0u8; 1000])).unwrap();
            sent.extend(
                decode_all(s)
                    .into_iter()
                    .filter(|(_, m)| matches!(m, Message::Chunk { .. }))
                    .map(|(to, _)| to),
            );
        }
        (now, sent)
    };
    let (t1, _) = push(&mut s, 40, 4, 0);
    let count = |sent: &[SocketAddr], n: u16| sent.iter().filter(|a| **a == addr(n)).count();
    // Member 5's 1228-byte datagrams come 157 ms apart: 7,822 bytes/s, half the stream.
    let (id5, _) = s
        .handle_join(t1, addr(5), &JoinRequest::new(Role::Peer))
        .unwrap();
    confirm_without_train(&mut s, t1, id5, addr(5));
    send_train(&mut s, t1, addr(5), &[Duration::from_millis(157); 4]);
    let p5 = s.stats().peers.into_iter().find(|p| p.id == id5).unwrap();
    assert!(
        p5.train_rate.is_some_and(|r| (7_700..7_900).contains(&r)),
        "{:?}",
        p5.train_rate
    );
    assert_eq!(p5.capacity_period, NO_SHARE);
    // Member 6's come 26 ms apart: three times the stream.
    let (id6, _) = s
        .handle_join(t1, addr(6), &JoinRequest::new(Role::Peer))
        .unwrap();
    confirm_without_train(&mut s, t1, id6, addr(6));
    send_train(&mut s, t1, addr(6), &[Duration::from_millis(26); 4]);
    // Member 7's Train is lost.
    let (id7, _) = s
        .handle_join(t1, addr(7), &JoinRequest::new(Role::Peer))
        .unwrap();
    confirm_without_train(&mut s, t1, id7, addr(7));
    // In its first 1.9 s member 7 gets nothing; member 6 its share.
    let (_, sent) = push(&mut s, 30, 7, 0);
    assert_eq!(count(&sent, 7), 0, "{sent:?}");
    assert!(count(&sent, 6) >= 4, "{sent:?}");
    let (_, sent) = push(&mut s, 120, 7, 0);
    assert_eq!(
        count(&sent, 5),
        0,
        "the slow joiner gets no turns: {sent:?}"
    );
    assert!(count(&sent, 6) >= 15, "{sent:?}");
    assert!(
        count(&sent, 7) >= 15,
        "no Train, turns after the wait: {sent:?}"
    );
    // Its pacer measures its uplink at 1.2 × the stream: that outweighs the Train.
    let (_, sent) = push(&mut s, 60, 7, 18_750);
    assert!(count(&sent, 5) >= 5, "{sent:?}");
}

/// A member whose Train reads too slow to relay is named to the whole team at the next tick
/// (Uplinks), and in later joiners' replies; once its pacer measures it fast enough again,
/// the team is told that too.
#[test]
fn the_team_is_told_whose_uplinks_are_too_slow_to_relay() {
    let t = Instant::now();
    let mut s = Splitter::new(SplitterConfig::default(), 7, t);
    for n in 1..=3 {
        join_peer(&mut s, t, n).unwrap();
    }
    let mut now = t;
    for _ in 0..40 {
        now += Duration::from_millis(64);
        s.push_chunk(now, Bytes::from(vec![0u8; 1000])).unwrap();
    }
    let _ = decode_all(&mut s);
    let (id4, _) = s
        .handle_join(now, addr(4), &JoinRequest::new(Role::Peer))
        .unwrap();
    confirm_without_train(&mut s, now, id4, addr(4));
    send_train(&mut s, now, addr(4), &[Duration::from_millis(157); 4]);
    now += Duration::from_secs(1);
    let said = uplinks_told(&mut s, now);
    let to: Vec<SocketAddr> = said.iter().map(|(a, _, _)| *a).collect();
    assert_eq!(to, (1..=4).map(addr).collect::<Vec<_>>(), "{said:?}");
    assert!(
        said.iter()
            .all(|(_, slow, able)| *slow == vec![id4] && able.is_empty())
    );
    // Said once: nothing new, nothing sent.
    now += Duration::from_secs(1);
    assert!(uplinks_told(&mut s, now).is_empty());
    let (_, reply) = join_peer(&mut s, now, 5).unwrap();
    assert_eq!(reply.slow, vec![id4]);
    // Its pacer measures 1.2 × the stream (15,625 bytes/s): it relays again.
    let d = report(&s, now, 4, 7, 3, 18_750);
    s.handle_datagram(now, addr(4), &d);
    now += Duration::from_secs(1);
    let said = uplinks_told(&mut s, now);
    assert_eq!(said.len(), 5, "{said:?}");
    assert!(
        said.iter()
            .all(|(_, slow, able)| slow.is_empty() && *able == vec![id4])
    );
}

/// A native team of `n` members (their Trains from uplinks too fast to space them) streaming
/// 15,625 bytes/s (1000 bytes every 64 ms), where the members `natted` picks say they are
/// bound behind a NAT and the others where we see them.
fn team_with_nats(n: u16, natted: impl Fn(u16) -> bool) -> (Splitter, Vec<PeerId>, Instant) {
    let t = Instant::now();
    let mut s = Splitter::new(SplitterConfig::default(), 7, t);
    let ids: Vec<PeerId> = (1..=n)
        .map(|k| join_peer(&mut s, t, k).unwrap().0)
        .collect();
    let mut now = t;
    for _ in 0..40 {
        now += Duration::from_millis(64);
        s.push_chunk(now, Bytes::from(vec![0u8; 1000])).unwrap();
    }
    for k in 1..=n {
        let id = ids[usize::from(k) - 1];
        let local = if natted(k) {
            SocketAddr::from(([192, 168, 1, k as u8], 5000))
        } else {
            addr(k)
        };
        let p = Packet {
            team: 7,
            msg: Message::Endpoint { endpoint: local },
        };
        let d = wire::seal(&p, id, next_seq(), &s.key_of(id), None).unwrap();
        s.handle_datagram(now, addr(k), &d);
    }
    let _ = decode_all(&mut s);
    (s, ids, now)
}

/// The `Uplinks` news the splitter sends at its tick at `at`: (to, slow, able), each list
/// sorted.
fn uplinks_told(s: &mut Splitter, at: Instant) -> Vec<(SocketAddr, Vec<PeerId>, Vec<PeerId>)> {
    s.handle_timeout(at);
    let mut said: Vec<_> = decode_all(s)
        .into_iter()
        .filter_map(|(to, m)| match m {
            Message::Uplinks { mut slow, mut able } => {
                slow.sort();
                able.sort();
                Some((to, slow, able))
            }
            _ => None,
        })
        .collect();
    said.sort();
    said
}

/// Members that say they are bound elsewhere than where we see them (behind NATs) are named to
/// the team as members that do not relay, as slow ones are, and in later joiners' replies,
/// while the public members' uplinks can carry the team's relays alone; once one of those
/// measures too slow for it, the team hears that the NATed members relay again. One bound
/// where we see it is never named.
#[test]
fn members_behind_nats_leave_relaying_to_public_members_that_can_carry_it() {
    let (mut s, ids, mut now) = team_with_nats(4, |k| k > 2);
    let natted = vec![ids[2], ids[3]];
    now += Duration::from_secs(1);
    let said = uplinks_told(&mut s, now);
    assert_eq!(said.len(), 4, "to every member: {said:?}");
    assert!(
        said.iter()
            .all(|(_, slow, able)| *slow == natted && able.is_empty()),
        "{said:?}"
    );
    // And shows it (`/api/status`).
    let st = s.stats();
    assert_eq!(st.relay_rule, "public");
    let relays: Vec<bool> = st.peers.iter().map(|p| p.relays).collect();
    assert_eq!(relays, [true, true, false, false]);
    // Member 1 measures 1.9 × the stream: a full share, but the two public members would
    // each relay for two members, 2.3 × the stream with its costs: the NATed relay again.
    let d = report(&s, now, 1, 7, 3, 30_000);
    s.handle_datagram(now, addr(1), &d);
    now += Duration::from_secs(1);
    let said = uplinks_told(&mut s, now);
    assert_eq!(said.len(), 4, "{said:?}");
    assert!(
        said.iter()
            .all(|(_, slow, able)| slow.is_empty() && *able == natted),
        "{said:?}"
    );
    // 6.4 × the stream: enough twice over.
    let d = report(&s, now, 1, 7, 3, 100_000);
    s.handle_datagram(now, addr(1), &d);
    now += Duration::from_secs(1);
    let said = uplinks_told(&mut s, now);
    assert!(
        said.len() == 4
            && said
                .iter()
                .all(|(_, slow, able)| *slow == natted && able.is_empty()),
        "{said:?}"
    );
    let (_, mut reply) = join_peer(&mut s, now, 5).unwrap();
    reply.slow.sort();
    assert_eq!(reply.slow, natted);
}

/// Where the public members cannot carry the team's relays alone, members behind NATs that
/// hear few of the team (behind symmetric NATs: only the public members) are the ones passed
/// over, while the others can carry their part; once such a member hears most of the team, it
/// relays again.
#[test]
fn members_behind_nats_that_hear_few_leave_relaying_to_the_rest() {
    let (mut s, ids, mut now) = team_with_nats(6, |k| k > 4);
    // Every uplink 2 × the stream: four public members would relay 1.5 streams each, 1.7
    // with its costs, too much; five 1.4, which they carry.
    let hear = |s: &mut Splitter, now: Instant, n: u16, heard: u32| {
        let d = report(s, now, n, 7, heard, 31_250);
        s.handle_datagram(now, addr(n), &d);
    };
    for n in 1..=4 {
        hear(&mut s, now, n, 5);
    }
    hear(&mut s, now, 5, 4);
    hear(&mut s, now, 6, 2);
    let _ = decode_all(&mut s);
    now += Duration::from_secs(1);
    let said = uplinks_told(&mut s, now);
    assert!(
        said.len() == 6
            && said
                .iter()
                .all(|(_, slow, able)| *slow == vec![ids[5]] && able.is_empty()),
        "only the member that hears two of five: {said:?}"
    );
    let (_, reply) = join_peer(&mut s, now, 7).unwrap();
    assert_eq!(reply.slow, vec![ids[5]]);
    // Now of a team of seven.
    hear(&mut s, now, 5, 6);
    hear(&mut s, now, 6, 6);
    now += Duration::from_secs(1);
    let said = uplinks_told(&mut s, now);
    assert!(
        !said.is_empty()
            && said
                .iter()
                .all(|(_, slow, able)| slow.is_empty() && *able == vec![ids[5]]),
        "{said:?}"
    );
}

#[test]
fn witnesses_that_miss_a_chunk_get_it_resent_but_never_blame() {
    use crate::p2psp::peer::relay;
    let t = Instant::now();
    let cfg = SplitterConfig {
        blame_quorum: None,
        number_of_monitors: 1,
        max_chunk_loss: 1,
        acs: false,
        ..Default::default()
    };
    let mut s = Splitter::new(cfg, 7, t);
    join_at(&mut s, t, addr(1), Role::Monitor).unwrap();
    let mut ids = vec![];
    // Witnesses start at 32 members (below, the team's own monitors are many enough).
    for n in 2..=40 {
        ids.push((join_peer(&mut s, t, n).unwrap().0, n));
    }
    let members = s.peer_count();
    let all: Vec<PeerId> = ids.iter().map(|(id, _)| *id).collect();
    let mut pushed = vec![];
    for k in 0..40u8 {
        pushed.push(s.push_chunk(t, Bytes::from(vec![k])).unwrap());
    }
    decode_all(&mut s);
    let witnesses_of = |no: ChunkNo, yes: bool| -> Vec<u16> {
        ids.iter()
            .filter(|(id, _)| relay::witnesses(*id, no.0, all.iter().copied()) == yes)
            .map(|(_, n)| *n)
            .collect()
    };
    // Exactly four witness each chunk.
    for no in &pushed {
        assert_eq!(witnesses_of(*no, true).len(), relay::WITNESSES);
    }
    let no = pushed[0];
    let (w, others) = (witnesses_of(no, true), witnesses_of(no, false));
    let lost = |s: &mut Splitter, n: u16| {
        s.handle_datagram(t, addr(n), &complaint(s, n, no));
    };
    let resent = |s: &mut Splitter| {
        decode_all(s)
            .iter()
            .filter(|(_, m)| matches!(m, Message::Chunk { no: c, .. } if *c == no))
            .count()
    };
    // Members that do not witness the chunk are not heard, however many.
    for n in &others {
        lost(&mut s, *n);
    }
    assert_eq!(resent(&mut s), 0);
    assert_eq!(s.stats().ignored_complaints as usize, others.len());
    // One witness, even twice, is no quorum; a second one is.
    lost(&mut s, w[0]);
    lost(&mut s, w[0]);
    assert_eq!(resent(&mut s), 0);
    lost(&mut s, w[1]);
    assert_eq!(resent(&mut s), 1);
    assert_eq!(s.stats().lrs_resends, 1);
    // Witnesses never blame: the chunk's origin is still there, charged with nothing.
    assert_eq!(s.stats().expelled_losses, 0);
    assert_eq!(s.peer_count(), members);
    assert!(s.stats().peers.iter().all(|p| p.losses_total == 0));

    // Witnesses complaining together about everything get at most their budget resent: a
    // few to start and one per twenty chunks pushed.
    let few = all[..relay::WITNESSES_FROM - 2].iter().copied();
    assert!(!relay::witnesses(all[0], no.0, few));
    let before = s.stats().lrs_resends;
    let t2 = t + Duration::from_secs(1);
    for no in &pushed {
        for (id, n) in &ids {
            if relay::witnesses(*id, no.0, all.iter().copied()) {
                s.handle_datagram(t2, addr(*n), &complaint(&s, *n, *no));
            }
        }
    }
    let spent = s.stats().lrs_resends - before;
    assert!(spent > 0 && spent as f64 <= WITNESS_BURST, "{spent}");
}
