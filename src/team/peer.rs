//! A P2PSP team peer over real sockets, and the peer mount that re-serves its stream.
//!
//! [`PeerLink`] joins a splitter (TCP, then UDP on the same local port, which is how the
//! splitter learns the peer's UDP endpoint) and drives the peer state machine, yielding the
//! reassembled stream. [`run_mount`] turns that stream into an ordinary mount through a source
//! session, so listeners, fallbacks, metadata and further teams work on it as on any mount;
//! when the splitter goes away it rejoins with backoff, until the supervisor stops it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use super::{
    JOIN_TIMEOUT, canonical, gen_c, random_bytes, read_frame, splitter::STATS_EVERY, write_frame,
};
use crate::backoff::{Backoff, Jitter};
use crate::config::TeamAuth;
use crate::ingest::SourceSession;
use crate::ingest::session::EndReason;
use crate::p2psp::auth;
use crate::p2psp::compat;
use crate::p2psp::compat_peer::{CompatPeer, CompatPeerConfig};
use crate::p2psp::peer::{Peer, PeerConfig, PeerEvent, PeerStats};
use crate::p2psp::wire::{self, JoinReply, JoinRequest, Message, Packet};
use crate::p2psp::{Codec, PeerMachine, Role, StreamInfo};
use crate::random::random_u64;
use crate::server::Server;
use crate::supervisor::tasks::Stop;

/// Largest join reply accepted (header plus burst).
const MAX_REPLY: usize = 8 << 20;
/// Rejoin backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Rejoin backoff after a refusal that only the splitter's operator or ours can lift (a team
/// secret, a rule set, a pinned key): each try costs the splitter a join (a reference NTS
/// splitter keeps every refused try as a stale member), and nothing changes by the next second.
const REFUSED_MIN: Duration = Duration::from_secs(30);
const REFUSED_MAX: Duration = Duration::from_secs(300);
/// Rejoin jitter: spreads the rejoins of many peers after a splitter restart.
const BACKOFF_JITTER: Duration = Duration::from_millis(500);
/// How long a leaving peer keeps saying goodbye: well inside the server's shutdown grace.
pub const LEAVE_WITHIN: Duration = Duration::from_secs(2);
/// Why a peer mount's source ends when the supervisor stops it.
const STOP_REMOVED: &str = "P2PSP team removed";

/// What a team gives its peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The next bytes of the stream, in order.
    Data(Bytes),
    /// A chunk was lost for good; the stream skips it.
    Skipped,
    /// The stream's facts or now-playing title changed at the splitter.
    Info(StreamInfo),
    /// The splitter is gone (or told us to go).
    Gone,
    /// Nothing by the time asked for ([`PeerLink::next_before`]).
    Idle,
}

/// The team a peer mount joins, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerMount {
    /// The splitter, `host:port`.
    pub splitter: String,
    pub codec: Codec,
    pub local: TeamSocket,
    /// The team secret and the pinned splitter key (native teams).
    pub auth: TeamAuth,
}

/// Where a peer's P2PSP sockets bind: the UDP socket, and the TCP join from the same port
/// (which is how the splitter learns the UDP endpoint).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TeamSocket {
    /// `None`: every address of the splitter's family.
    pub ip: Option<IpAddr>,
    /// 0: a fresh port for each join.
    pub port: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum JoinFailed {
    #[error("{0}")]
    Bind(String),
    #[error("cannot reach the splitter: {0}")]
    Io(#[from] std::io::Error),
    #[error("the splitter refused: {0:?}: {1}")]
    Refused(wire::RefuseReason, String),
    #[error("unexpected answer from the splitter")]
    Protocol,
    #[error("Gen C join: {0}")]
    GenC(#[from] gen_c::GenCError),
    #[error("the team needs a team secret (team-secret)")]
    NeedsSecret,
    #[error("the join reply is not signed by the key it names")]
    BadSignature,
    #[error("the splitter's key {found} is not the pinned splitter-key")]
    WrongSplitterKey { found: String },
}

impl JoinFailed {
    /// Whether trying again soon is pointless: the splitter refused us for what we are (no
    /// secret or a wrong one, another protocol version or rule set, a key we do not trust),
    /// not for a passing state (a full team, a network error).
    pub fn is_lasting(&self) -> bool {
        match self {
            JoinFailed::Refused(reason, _) => !matches!(reason, wire::RefuseReason::Full),
            JoinFailed::NeedsSecret
            | JoinFailed::BadSignature
            | JoinFailed::WrongSplitterKey { .. }
            | JoinFailed::GenC(gen_c::GenCError::NtsSplitter(_)) => true,
            JoinFailed::Bind(_)
            | JoinFailed::Io(_)
            | JoinFailed::Protocol
            | JoinFailed::GenC(_) => false,
        }
    }
}

/// What a join gives: the state machine of the team's wire format, the stream facts and the
/// stream header at join time.
type Joined = (Box<dyn PeerMachine + Send + Sync>, StreamInfo, Bytes);

/// The Gen C join over `tcp`, offering to monitor. Gen C members send the splitter nothing
/// while alive, so monitors' lost-chunk complaints are its only news of a dead member: we
/// complain whether or not the splitter granted the role (Gen C never says). A floecast
/// splitter believes its first few monitors; a reference splitter ignores the role byte and
/// counts every complaint.
async fn join_gen_c(tcp: &mut TcpStream, splitter: SocketAddr) -> Result<Joined, JoinFailed> {
    let (config, info, header) = gen_c::join(tcp, splitter, Role::Monitor).await?;
    let cfg = CompatPeerConfig {
        role: Role::Monitor,
        ..CompatPeerConfig::new(splitter)
    };
    let peer = CompatPeer::new(cfg, &config, Instant::now());
    Ok((Box::new(peer), info, header))
}

/// The native join over `tcp`, offering to monitor: the splitter grants it to the first few
/// peers, whose loss reports drive its lost-chunk recovery; the rest become plain peers. The
/// team secret answers the splitter's challenge; the reply must be signed over our nonce by
/// the key it names, and that key must be the pinned one when there is one.
async fn join_native(
    tcp: &mut TcpStream,
    splitter: SocketAddr,
    team_auth: &TeamAuth,
) -> Result<Joined, JoinFailed> {
    let nonce: [u8; 16] = random_bytes()?;
    let request = Packet {
        team: 0,
        msg: Message::JoinRequest(JoinRequest {
            nonce,
            ..JoinRequest::new(Role::Monitor)
        }),
    };
    let frame = wire::encode_frame(&request).map_err(|_| JoinFailed::Protocol)?;
    write_frame(tcp, &frame).await?;
    let secret = team_auth.team_secret.as_deref().map(auth::secret_key);
    let mut answer = read_frame(tcp, MAX_REPLY).await?;
    let mut challenge = None;
    if let Message::Challenge { nonce: c } = answer.msg {
        let secret = secret.as_ref().ok_or(JoinFailed::NeedsSecret)?;
        let proof = auth::join_proof(secret, &c, &nonce);
        let frame = wire::encode_frame(&Packet {
            team: 0,
            msg: Message::JoinProof { proof },
        })
        .map_err(|_| JoinFailed::Protocol)?;
        write_frame(tcp, &frame).await?;
        challenge = Some(c);
        answer = read_frame(tcp, MAX_REPLY).await?;
    }
    let mut reply: JoinReply = match answer.msg {
        Message::JoinReply(r) => *r,
        Message::JoinRefused { reason, detail } => {
            return Err(JoinFailed::Refused(reason, detail));
        }
        _ => return Err(JoinFailed::Protocol),
    };
    if !reply.verify(reply.team_id, &nonce) {
        return Err(JoinFailed::BadSignature);
    }
    if let Some(pinned) = team_auth.splitter_key
        && !auth::same(&pinned, &reply.splitter_key)
    {
        return Err(JoinFailed::WrongSplitterKey {
            found: auth::hex(&reply.splitter_key),
        });
    }
    if reply.keys_masked {
        let (Some(secret), Some(c)) = (secret, challenge) else {
            return Err(JoinFailed::Protocol);
        };
        let mut keys = Vec::with_capacity(reply.pair_keys.len() + 1);
        keys.push(reply.peer_key);
        keys.append(&mut reply.pair_keys);
        auth::mask_keys(&secret, &c, &nonce, &mut keys);
        reply.peer_key = keys[0];
        reply.pair_keys = keys.split_off(1);
    }
    tracing::debug!(splitter_key = %auth::hex(&reply.splitter_key), "P2PSP join reply verified");
    let info = reply.info.clone();
    let header = reply.header.clone();
    let config = PeerConfig {
        role: reply.role,
        // Where we are bound, as the splitter would see us without a NAT.
        local: tcp.local_addr().ok().map(canonical),
        ..PeerConfig::new(splitter)
    };
    let peer = Peer::new(config, reply, random_u64(), Instant::now());
    Ok((Box::new(peer), info, header))
}

/// A joined peer: its socket and state machine.
pub struct PeerLink {
    udp: UdpSocket,
    /// The state machine of the team's wire format (native or Gen C).
    peer: Box<dyn PeerMachine + Send + Sync>,
    /// Stream facts and the header at join time.
    pub info: StreamInfo,
    pub header: Bytes,
    pub splitter: SocketAddr,
    buf: Vec<u8>,
}

impl PeerLink {
    /// Join the team of the splitter at `addr` ("host:port") in the given wire format.
    pub async fn join(addr: &str, codec: Codec) -> Result<PeerLink, JoinFailed> {
        Self::join_from(addr, codec, TeamSocket::default(), &TeamAuth::default()).await
    }

    /// [`PeerLink::join`] with the P2PSP sockets bound at `local`, and the team secret and
    /// pinned splitter key of `auth`.
    pub async fn join_from(
        addr: &str,
        codec: Codec,
        local: TeamSocket,
        auth: &TeamAuth,
    ) -> Result<PeerLink, JoinFailed> {
        let mut found = tokio::net::lookup_host(addr).await?;
        // Gen C is IPv4 only (spec §1).
        let splitter = match codec {
            Codec::Native => found.next(),
            Codec::CompatGenC => found.find(SocketAddr::is_ipv4),
        }
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no usable address for {addr}"),
            )
        })?;
        let any: IpAddr = if splitter.is_ipv4() {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            Ipv6Addr::UNSPECIFIED.into()
        };
        let ip = local.ip.unwrap_or(any);
        let (udp, socket) = bind_pair(ip, splitter.is_ipv4(), local.port)?;
        let mut tcp = tokio::time::timeout(JOIN_TIMEOUT, socket.connect(splitter))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        if local.port != 0 {
            // The join connection's port is the pinned UDP port: close it with a reset, so
            // no TIME_WAIT keeps the next join (after a splitter restart) from using it.
            let _ = socket2::SockRef::from(&tcp).set_linger(Some(Duration::ZERO));
        }
        let joined = match codec {
            Codec::CompatGenC => join_gen_c(&mut tcp, splitter).await,
            Codec::Native => join_native(&mut tcp, splitter, auth).await,
        };
        if let Err(JoinFailed::GenC(gen_c::GenCError::NtsSplitter(_))) = &joined {
            // An NTS splitter takes an offer to monitor into its team at once: take our
            // entry back (it answers goodbyes at its next round; UDP may lose one).
            for _ in 0..3 {
                let _ = udp.send_to(&[compat::GOODBYE], splitter).await;
            }
        }
        let (mut peer, info, header) = joined?;
        // Our Hellos (to the splitter: the datagram that makes us a member, at the endpoint our
        // NAT maps us to; to the listed members: our side of the hole punch) go out now.
        while let Some(t) = peer.poll_transmit() {
            if let Err(e) = udp.send_to(&t.data, t.to).await {
                tracing::debug!(to = %t.to, "P2PSP send failed: {e}");
            }
        }
        Ok(PeerLink {
            udp,
            peer,
            info,
            header,
            splitter,
            buf: vec![0u8; 65_536],
        })
    }

    /// Drive the peer until it has something for us (never [`Output::Idle`]).
    pub async fn next(&mut self) -> Output {
        loop {
            let far = tokio::time::Instant::now() + Duration::from_secs(3600);
            match self.next_before(far).await {
                Output::Idle => continue,
                o => return o,
            }
        }
    }

    /// The next output, or [`Output::Idle`] once `due` has passed without one (the caller's
    /// own timer, without cancelling a send in flight here).
    pub async fn next_before(&mut self, due: tokio::time::Instant) -> Output {
        loop {
            while let Some(t) = self.peer.poll_transmit() {
                if let Err(e) = self.udp.send_to(&t.data, t.to).await {
                    tracing::debug!(to = %t.to, "P2PSP send failed: {e}");
                }
            }
            while let Some(event) = self.peer.poll_event() {
                match event {
                    PeerEvent::Deliver { payload, .. } => return Output::Data(payload),
                    PeerEvent::Skipped { .. } => return Output::Skipped,
                    PeerEvent::InfoChanged(i) => return Output::Info(i),
                    PeerEvent::SplitterGone | PeerEvent::Left => return Output::Gone,
                    PeerEvent::NeighbourAdded { .. } | PeerEvent::NeighbourRemoved { .. } => {}
                }
            }
            if tokio::time::Instant::now() >= due {
                return Output::Idle;
            }
            let deadline = self
                .peer
                .poll_timeout()
                .map(tokio::time::Instant::from_std)
                .map_or(due, |d| d.min(due));
            tokio::select! {
                r = self.udp.recv_from(&mut self.buf) => match r {
                    Ok((n, from)) => {
                        self.peer.handle_datagram(Instant::now(), canonical(from), &self.buf[..n])
                    }
                    Err(e) => tracing::debug!("P2PSP receive error: {e}"),
                },
                _ = tokio::time::sleep_until(deadline) => {
                    // Only the peer's own timers: `due` is the caller's.
                    let now = Instant::now();
                    if self.peer.poll_timeout().is_none_or(|d| d <= now) {
                        self.peer.handle_timeout(now);
                    }
                }
            }
        }
    }

    /// Leave the team politely: goodbye to the splitter, repeated until it answers, then
    /// goodbyes to the neighbours; within `within` at most (UDP may lose every one of them).
    /// Returns whether the farewell completed.
    pub async fn leave(mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        self.peer.leave(Instant::now());
        loop {
            while let Some(t) = self.peer.poll_transmit() {
                let _ = self.udp.send_to(&t.data, t.to).await;
            }
            while let Some(event) = self.peer.poll_event() {
                if event == PeerEvent::Left {
                    while let Some(t) = self.peer.poll_transmit() {
                        let _ = self.udp.send_to(&t.data, t.to).await;
                    }
                    return true;
                }
            }
            let next = self.peer.poll_timeout().map_or(deadline, |d| {
                tokio::time::Instant::from_std(d).min(deadline)
            });
            tokio::select! {
                r = self.udp.recv_from(&mut self.buf) => {
                    if let Ok((n, from)) = r {
                        self.peer.handle_datagram(Instant::now(), canonical(from), &self.buf[..n]);
                    }
                }
                _ = tokio::time::sleep_until(next) => {
                    if tokio::time::Instant::now() >= deadline {
                        return false;
                    }
                    self.peer.handle_timeout(Instant::now());
                }
            }
        }
    }

    pub fn stats(&self) -> PeerStats {
        self.peer.stats()
    }
}

/// A UDP socket and a TCP socket bound to the same local port (`port`, or a fresh one when
/// 0): the splitter takes the TCP join's source port as the peer's UDP endpoint. A fresh UDP
/// port may be taken on the TCP side, so a few are tried. Errors name the address.
fn bind_pair(ip: IpAddr, v4: bool, port: u16) -> Result<(UdpSocket, TcpSocket), JoinFailed> {
    let failed = |what: &str, addr: SocketAddr, e: std::io::Error| {
        JoinFailed::Bind(format!("cannot bind the P2PSP {what} socket {addr}: {e}"))
    };
    let mut last = None;
    for _ in 0..if port == 0 { 8 } else { 1 } {
        let addr = SocketAddr::new(ip, port);
        let std_udp = std::net::UdpSocket::bind(addr).map_err(|e| failed("UDP", addr, e))?;
        let addr = std_udp.local_addr().map_err(|e| failed("UDP", addr, e))?;
        let tcp = if v4 {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .and_then(|t| t.set_reuseaddr(true).map(|()| t))
        .map_err(|e| failed("TCP", addr, e))?;
        match tcp.bind(addr) {
            Ok(()) => {
                let udp = std_udp
                    .set_nonblocking(true)
                    .and_then(|()| UdpSocket::from_std(std_udp))
                    .map_err(|e| failed("UDP", addr, e))?;
                return Ok((udp, tcp));
            }
            Err(e) => last = Some(failed("TCP join", addr, e)),
        }
    }
    Err(last.unwrap_or_else(|| JoinFailed::Bind("no free P2PSP port".into())))
}

/// The mount `mount` is fed by `team`, rejoining whenever it is lost, until shutdown or until
/// it is asked to stop.
pub async fn run_mount(server: Arc<Server>, mount: String, team: PeerMount, mut stop: Stop) {
    let PeerMount {
        splitter,
        codec,
        local,
        auth,
    } = team;
    let mut backoff = Backoff::new(
        BACKOFF_MIN,
        BACKOFF_MAX,
        Jitter::UpTo(BACKOFF_JITTER),
        random_u64(),
    )
    .with_refused(REFUSED_MIN, REFUSED_MAX);
    let teams = &server.tasks.teams;
    teams.set_peer(&mount, &splitter, false, None);
    loop {
        let shutdown = server.shutdown_notified();
        if server.is_shutting_down() || stop.is_requested() {
            break;
        }
        let joined = tokio::select! {
            r = PeerLink::join_from(&splitter, codec, local, &auth) => r,
            _ = shutdown => break,
            _ = stop.requested() => break,
        };
        let delay = match joined {
            Ok(link) => {
                tracing::info!(mount, splitter, "joined the P2PSP team");
                backoff.reset();
                serve_team(&server, &mount, &splitter, link, &mut stop).await;
                teams.set_peer(&mount, &splitter, false, None);
                backoff.next_delay()
            }
            Err(e) if e.is_lasting() => {
                let delay = backoff.next_refused_delay();
                tracing::warn!(
                    mount,
                    splitter,
                    "P2PSP join refused: {e}; trying again in {} s",
                    delay.as_secs()
                );
                delay
            }
            Err(e) => {
                tracing::warn!(mount, splitter, "P2PSP join failed: {e}");
                backoff.next_delay()
            }
        };
        let shutdown = server.shutdown_notified();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown => break,
            _ = stop.requested() => break,
        }
    }
    teams.remove_peer(&mount);
}

/// Feed one team membership into the mount until the team is lost or we shut down. The
/// mount goes live once the team's stream has a content type (a splitter whose own source
/// has not connected yet has none), and starts afresh when the content type changes.
async fn serve_team(
    server: &Arc<Server>,
    mount: &str,
    splitter: &str,
    mut link: PeerLink,
    stop: &mut Stop,
) {
    let mut info = link.info.clone();
    let mut session = None;
    let mut reason = EndReason::Eof;
    if !info.content_type.is_empty() {
        session = start_session(server, mount, &link, &info).await;
        if session.is_none() {
            link.leave(LEAVE_WITHIN).await;
            return;
        }
        let header = link.header.clone();
        if let Some(s) = session.as_mut() {
            if let Err(e) = s.ingest(&header) {
                tracing::warn!(mount, "P2PSP stream header refused: {e}");
            }
            // Our first chunk is wherever the team's stream was when we joined.
            s.discontinuity();
        }
        set_title(session.as_ref(), &info.title);
    }
    let mut last_stats = Instant::now();
    loop {
        let shutdown = server.shutdown_notified();
        if server.is_shutting_down() {
            reason = EndReason::Shutdown;
            break;
        }
        // The status follows the link even while nothing plays (a member that hears no one
        // yet is what the status is there to show).
        let stats_due = tokio::time::Instant::from_std(last_stats + STATS_EVERY);
        let out = tokio::select! {
            o = link.next_before(stats_due) => o,
            _ = shutdown => { reason = EndReason::Shutdown; break; }
            _ = stop.requested() => { reason = EndReason::Stopped(STOP_REMOVED); break; }
        };
        let fed = match out {
            Output::Data(d) => match session.as_mut() {
                Some(s) => s.ingest(&d),
                // No stream yet: nothing to frame it as.
                None => Ok(()),
            },
            Output::Skipped => {
                if let Some(s) = session.as_mut() {
                    s.discontinuity();
                }
                Ok(())
            }
            Output::Idle => Ok(()),
            Output::Info(new) => {
                if new.content_type != info.content_type {
                    tracing::info!(mount, content_type = %new.content_type, "P2PSP stream changed");
                    if let Some(s) = session.take() {
                        s.end(EndReason::Eof);
                    }
                    if !new.content_type.is_empty() {
                        session = start_session(server, mount, &link, &new).await;
                        if session.is_none() {
                            break;
                        }
                    }
                }
                set_title(session.as_ref(), &new.title);
                info = new;
                Ok(())
            }
            Output::Gone => {
                tracing::warn!(mount, splitter, "P2PSP splitter gone");
                break;
            }
        };
        if let Err(e) = fed {
            reason = EndReason::Error(e);
            break;
        }
        if last_stats.elapsed() >= STATS_EVERY {
            last_stats = Instant::now();
            server
                .tasks
                .teams
                .set_peer(mount, splitter, true, Some(link.stats()));
        }
    }
    if let Some(s) = session {
        s.end(reason);
    }
    if !link.leave(LEAVE_WITHIN).await {
        tracing::info!(mount, splitter, "P2PSP farewell not answered in time");
    }
}

async fn start_session(
    server: &Arc<Server>,
    mount: &str,
    link: &PeerLink,
    info: &StreamInfo,
) -> Option<SourceSession> {
    let headers = source_headers(info);
    match SourceSession::start(
        server,
        mount,
        &headers,
        &info.content_type,
        &link.splitter,
        false,
    )
    .await
    {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(mount, "P2PSP peer mount cannot start: {e}");
            None
        }
    }
}

/// The splitter's now-playing title becomes ours (only when it differs, so listeners get a
/// new ICY block only for a real change). An empty one leaves in-stream titles alone.
fn set_title(session: Option<&SourceSession>, title: &str) {
    let Some(s) = session else { return };
    if !title.is_empty() && s.mount.metadata().display() != title {
        s.mount.set_metadata(Some(title.to_string()), None, None);
    }
}

/// The team's stream facts as the `ice-*` headers a push source would have sent.
fn source_headers(info: &StreamInfo) -> Vec<(String, String)> {
    let mut h = Vec::new();
    for (k, v) in [
        ("ice-name", &info.name),
        ("ice-description", &info.description),
        ("ice-genre", &info.genre),
        ("ice-url", &info.url),
    ] {
        if !v.is_empty() {
            h.push((k.to_string(), v.clone()));
        }
    }
    if let Some(b) = info.bitrate {
        h.push(("ice-bitrate".to_string(), b.to_string()));
    }
    h.push((
        "user-agent".to_string(),
        format!("floecast/{} P2PSP peer", env!("CARGO_PKG_VERSION")),
    ));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full team may have room at the next try; a team that refused us for what we are
    /// will refuse us again.
    #[test]
    fn only_refusals_for_what_we_are_last() {
        let refused = |r| JoinFailed::Refused(r, String::new());
        assert!(!refused(wire::RefuseReason::Full).is_lasting());
        assert!(refused(wire::RefuseReason::NotAdmitted).is_lasting());
        assert!(refused(wire::RefuseReason::BadVersion).is_lasting());
        assert!(JoinFailed::NeedsSecret.is_lasting());
        assert!(JoinFailed::GenC(gen_c::GenCError::NtsSplitter("Q7ZX0AB".into())).is_lasting());
        assert!(!JoinFailed::GenC(gen_c::GenCError::Timeout).is_lasting());
        assert!(!JoinFailed::Io(std::io::ErrorKind::ConnectionRefused.into()).is_lasting());
    }
}
