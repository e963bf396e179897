//! A mount's P2PSP splitter over real sockets: TCP joins and UDP chunks on one port.
//!
//! The splitter reads the mount's queue like a listener does, but sends each block once:
//! to the next peer in its round, which floods it to the rest of the team. Blocks are cut on
//! container boundaries already (Ogg pages, MP3 frame runs, WebM clusters); larger ones are
//! split to the team's chunk size. The stream header travels in the join reply and, when the
//! chain changes, in the stream itself (as chunks ahead of the new chain's data). The task
//! outlives source sessions: when the mount's source comes back (the registry announces it),
//! the team carries on with the new stream.
//! It runs until shutdown or until the supervisor stops it.
//!
//! Native joins are bounded: a joiner has [`JOIN_DEADLINE`] to send its request (and answer the
//! team-secret challenge), and one address holds at most [`MAX_JOINING_PER_IP`] unfinished
//! joins, so a flood of idle connections cannot keep honest peers out.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};

use super::{canonical, gen_c, random_bytes, read_frame_body, write_frame};
use crate::config::{SplitterSettings, TeamAuth};
use crate::format::Block;
use crate::mount::{Cursor, Mount, ReadOutcome, SourceInfo};
use crate::p2psp::auth::{self, SplitterKey};
use crate::p2psp::splitter::{JoinProof, Splitter, SplitterConfig, SplitterEvent};
use crate::p2psp::wire::{self, JoinRequest, Message, Packet};
use crate::p2psp::{Codec, StreamInfo};
use crate::random::random_u64;
use crate::server::Server;
use crate::supervisor::tasks::Stop;

/// What the join acceptor asks of the splitter task.
enum ToTask {
    /// Answer a join request.
    Join(Join),
    /// A Gen C joiner's join ended: completed (it sent `R` and hung up), admit it now; or
    /// not, forget it.
    Joined {
        observed: SocketAddr,
        request: JoinRequest,
        completed: bool,
    },
}

/// Refused joins are logged at most this often.
static JOIN_REFUSED_LOG: crate::log_throttle::LogThrottle =
    crate::log_throttle::LogThrottle::new(std::time::Duration::from_secs(10));

/// A join request waiting for the splitter task's answer (the bytes to send back; empty
/// means refused). `local` is the address the peer reached us at.
struct Join {
    observed: SocketAddr,
    local: SocketAddr,
    request: JoinRequest,
    /// Joined with Gen C's role byte: answer with its configuration block.
    gen_c: bool,
    /// The answer to the team-secret challenge (native teams with a secret).
    proof: Option<JoinProof>,
    reply: oneshot::Sender<Bytes>,
}

/// Most join exchanges in progress at once.
const MAX_JOINING: usize = 256;
/// Most join requests waiting at once; more are refused by closing.
const JOIN_QUEUE: usize = 64;
/// Most unfinished joins from one address: a flood from one host is closed at once.
pub const MAX_JOINING_PER_IP: usize = 4;
/// A native joiner must have sent its request (and its proof) within this.
pub const JOIN_DEADLINE: Duration = Duration::from_secs(3);
/// How often team state is published for the status page and metrics.
pub(crate) const STATS_EVERY: Duration = Duration::from_millis(500);
/// Serve the team of `mount_name` with `settings`, until shutdown or until asked to stop.
pub async fn run(
    server: Arc<Server>,
    mount_name: String,
    settings: SplitterSettings,
    mut stop: Stop,
) {
    let SplitterSettings {
        port,
        bind_address,
        max_peers,
        buffer,
        max_chunk,
        compat,
        monitors,
        peer_timeout,
        auth,
        max_relayed,
        relay_from,
    } = settings;
    let ip: IpAddr = bind_address
        .and_then(|b| b.parse().ok())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let (tcp, udp) = match bind(SocketAddr::new(ip, port)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(mount = %mount_name, "P2PSP splitter cannot listen on port {port}: {e}");
            return;
        }
    };
    let local = udp.local_addr().ok();
    let (key, key_seed) = match team_keys(&auth) {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(mount = %mount_name, "P2PSP splitter key: {e}");
            return;
        }
    };
    let public = key.public();
    if compat {
        tracing::info!(mount = %mount_name, ?local, "P2PSP splitter listening (Gen C: open and unsigned, as the reference)");
    } else {
        tracing::info!(
            mount = %mount_name,
            ?local,
            splitter_key = %auth::hex(&public),
            secret = auth.team_secret.is_some(),
            "P2PSP splitter listening; peers can pin splitter-key"
        );
    }
    warn_above_mtu(&mount_name, max_chunk, compat);
    let config = SplitterConfig {
        max_peers,
        buffer_size: buffer,
        max_chunk_payload: max_chunk,
        codec: if compat {
            Codec::CompatGenC
        } else {
            Codec::Native
        },
        // Several monitors (3 by default), so lost-chunk recovery survives one leaving.
        number_of_monitors: monitors,
        // Three missed reports by default. A vanished peer is passed over after 1.5 and its
        // monitor role handed on, but it stays listed (and counted) until this timeout.
        peer_timeout,
        key,
        key_seed,
        team_secret: auth.team_secret.as_deref().map(auth::secret_key),
        trusted_monitors: auth.trusted_monitors.clone(),
        // Only trusted monitors (or the configured quorum) can get a peer expelled for losses.
        blame_quorum: auth.blame_quorum,
        max_relayed,
        relay_from,
        ..SplitterConfig::default()
    };
    let mut splitter = Splitter::new(config, random_u64() as u32, Instant::now());
    let teams = &server.tasks.teams;
    teams.set_splitter(&mount_name, local);

    let (join_tx, mut join_rx) = mpsc::channel::<ToTask>(JOIN_QUEUE);
    let codec = if compat {
        Codec::CompatGenC
    } else {
        Codec::Native
    };
    let secret = codec == Codec::Native && auth.team_secret.is_some();
    let acceptor = tokio::spawn(accept_joins(tcp, join_tx, codec, secret));
    let mut attached: Option<Attached> = None;
    let mut buf = vec![0u8; 65_536];
    let mut last_stats = Instant::now();
    let mut mounts = server.registry.subscribe();
    // Gen C joiners offered a configuration, until their joins end (at most MAX_JOINING).
    let mut joining: Vec<SocketAddr> = Vec::new();
    loop {
        if server.is_shutting_down() || stop.is_requested() {
            break;
        }
        // Seen now: a mount registered after this look wakes the wait below.
        mounts.borrow_and_update();
        follow_mount(&server, &mount_name, &mut attached, &mut splitter);
        let mount = attached.as_ref().map(|a| a.mount.clone());
        let notified = mount.as_ref().map(|m| m.notified());
        tokio::pin!(notified);
        if let Some(n) = notified.as_mut().as_pin_mut() {
            n.enable();
        }
        if let Some(a) = attached.as_mut() {
            a.feed(&mut splitter, max_chunk, codec);
        }
        flush(&mut splitter, &udp, &mount_name).await;
        if last_stats.elapsed() >= STATS_EVERY {
            last_stats = Instant::now();
            teams.update_splitter(&mount_name, splitter.stats());
            // Titles and source facts change while the stream runs: peers follow them.
            if let Some(a) = &attached {
                splitter.set_stream_info(stream_info(&a.mount));
            }
        }

        let deadline = splitter.poll_timeout().map(tokio::time::Instant::from_std);
        let shutdown = server.shutdown_notified();
        tokio::select! {
            r = udp.recv_from(&mut buf) => match r {
                Ok((n, from)) => splitter.handle_datagram(Instant::now(), canonical(from), &buf[..n]),
                Err(e) => tracing::debug!(mount = %mount_name, "P2PSP receive error: {e}"),
            },
            Some(step) = join_rx.recv() => match step {
                ToTask::Join(join) => {
                    // A newcomer must get the current stream's info and header.
                    follow_mount(&server, &mount_name, &mut attached, &mut splitter);
                    if let Some(a) = attached.as_mut() {
                        a.feed(&mut splitter, max_chunk, codec);
                    }
                    let answer = answer_join(
                        &server,
                        &mount_name,
                        &mut splitter,
                        &join,
                        attached.as_ref(),
                        &joining,
                    );
                    if join.gen_c && !answer.is_empty() && joining.len() < MAX_JOINING {
                        joining.push(join.observed);
                    }
                    let _ = join.reply.send(answer);
                }
                ToTask::Joined { observed, request, completed } => {
                    joining.retain(|a| *a != observed);
                    if completed
                        && let Err(e) = splitter.handle_join(Instant::now(), observed, &request)
                    {
                        if let Some(suppressed) = JOIN_REFUSED_LOG.allow() {
                            tracing::info!(mount = %mount_name, %observed, "P2PSP join refused: {e}{suppressed}");
                        }
                    }
                }
            },
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => splitter.handle_timeout(Instant::now()),
            _ = async {
                match notified.as_mut().as_pin_mut() {
                    Some(n) => n.await,
                    None => {
                        let _ = mounts.changed().await;
                    }
                }
            } => {}
            _ = shutdown => break,
            _ = stop.requested() => break,
        }
    }
    // Wait until the aborted acceptor has dropped the listener: a restarted splitter binds
    // the same port as soon as this task ends.
    acceptor.abort();
    let _ = acceptor.await;
    teams.remove_splitter(&mount_name);
}

/// Admit (or refuse) a peer and encode the answer in the team's format: a JoinReply frame,
/// or Gen C's configuration block (empty when refused: the reference just closes). A Gen C
/// joiner is only offered its configuration here; it is admitted once its join completes.
fn answer_join(
    server: &Server,
    mount: &str,
    splitter: &mut Splitter,
    join: &Join,
    attached: Option<&Attached>,
    joining: &[SocketAddr],
) -> Bytes {
    let observed = join.observed;
    if join.gen_c {
        return offer_gen_c(server, mount, splitter, join, attached, joining);
    }
    let reply = match splitter.handle_join_proved(
        Instant::now(),
        observed,
        &join.request,
        join.proof.as_ref(),
    ) {
        Ok((_, reply)) => reply,
        Err(e) => {
            // Anyone can knock: at most one line per interval.
            if let Some(suppressed) = JOIN_REFUSED_LOG.allow() {
                tracing::info!(mount, %observed, "P2PSP join refused: {e}{suppressed}");
            }
            let msg = e.refusal();
            return wire::encode_frame(&Packet {
                team: splitter.team_id(),
                msg,
            })
            .unwrap_or_default();
        }
    };
    let msg = Message::JoinReply(Box::new(reply));
    match wire::encode_frame(&Packet {
        team: splitter.team_id(),
        msg,
    }) {
        Ok(frame) => frame,
        Err(e) => {
            tracing::warn!(mount, "P2PSP join reply does not encode: {e}");
            Bytes::new()
        }
    }
}

/// The Gen C configuration block for a joiner, without admitting it. Reference peers fetch the
/// stream header from us over HTTP and count our response head in `header_size` (they copy
/// bytes to their player until that many have passed), so it announces what a plain `GET`
/// gets now ahead of the stream: the head, the mount's intro and the stream header (Ogg/WebM
/// header pages; none for MP3). That is the mount's, not the one the team last carried: a
/// joiner may come before the source's first data page, which is when the team gets it.
fn offer_gen_c(
    server: &Server,
    mount: &str,
    splitter: &Splitter,
    join: &Join,
    attached: Option<&Attached>,
    joining: &[SocketAddr],
) -> Bytes {
    let observed = join.observed;
    let header_size = attached.map_or(0, |a| {
        let intro = a.mount.intro.as_ref().map_or(0, |i| i.len());
        crate::listen::listener_head_len(&server.config(), &a.mount)
            + intro
            + a.mount.burst_header_len()
    });
    let header_size = header_size.clamp(1, usize::from(u16::MAX)) as u16;
    let source = gen_c::source_endpoint(join.local, server.port());
    let channel = mount.trim_start_matches('/');
    let offer = splitter.compat_offer(observed, joining, source, channel, header_size);
    match offer.map(|c| crate::p2psp::compat::encode_config(&c)) {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            tracing::warn!(mount, %observed, "P2PSP Gen C configuration does not encode: {e}");
            Bytes::new()
        }
        Err(e) => {
            if let Some(suppressed) = JOIN_REFUSED_LOG.allow() {
                tracing::info!(mount, %observed, "P2PSP join refused: {e}{suppressed}");
            }
            Bytes::new()
        }
    }
}

/// Say so when a chunk (headers included) will not fit the internet's path MTU: such
/// datagrams are IP-fragmented off loopback, and one lost fragment loses the chunk.
fn warn_above_mtu(mount: &str, max_chunk: usize, compat: bool) {
    // Gen C: 2-byte number, IPv4 only. Native: its chunk header, IPv6 at worst.
    let overhead = if compat { 2 + 28 } else { 16 + 48 };
    if max_chunk + overhead > SplitterSettings::PATH_MTU {
        tracing::warn!(
            mount,
            max_chunk,
            "P2PSP datagrams of up to {} bytes exceed the ~{}-byte path MTU of the internet and \
             will be fragmented off loopback; consider max-chunk = {}",
            max_chunk + overhead,
            SplitterSettings::PATH_MTU,
            SplitterSettings::default_max_chunk(compat)
        );
    }
}

/// Follow the mount: attach when a source is live, detach when it ends.
fn follow_mount(
    server: &Server,
    mount: &str,
    attached: &mut Option<Attached>,
    splitter: &mut Splitter,
) {
    if attached.as_ref().is_none_or(|a| a.mount.is_ended()) {
        *attached = server
            .registry
            .get(mount)
            .filter(|m| !m.is_ended())
            .map(|m| {
                splitter.set_stream_info(stream_info(&m));
                Attached {
                    cursor: m.join_cursor(),
                    carry: bytes::BytesMut::new(),
                    mount: m,
                }
            });
    }
}

/// Bind TCP and UDP on the same port (peers find the splitter's UDP endpoint that way).
async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, UdpSocket)> {
    let tcp = TcpListener::bind(addr).await?;
    let port = tcp.local_addr()?.port();
    let udp = UdpSocket::bind(SocketAddr::new(addr.ip(), port)).await?;
    Ok((tcp, udp))
}

/// Send what the splitter queued and note what happened.
async fn flush(splitter: &mut Splitter, udp: &UdpSocket, mount: &str) {
    while let Some(t) = splitter.poll_transmit() {
        if let Err(e) = udp.send_to(&t.data, t.to).await {
            tracing::debug!(mount, to = %t.to, "P2PSP send failed: {e}");
        }
    }
    while let Some(event) = splitter.poll_event() {
        match event {
            SplitterEvent::PeerJoined { id, addr, role } => {
                tracing::info!(mount, peer = id.0, %addr, ?role, "P2PSP peer joined")
            }
            SplitterEvent::PeerLeft { id, addr, reason } => {
                tracing::info!(mount, peer = id.0, %addr, ?reason, "P2PSP peer left")
            }
        }
    }
}

/// Accept TCP joins: read the request, hand it to the splitter task, write its answer. At
/// most MAX_JOINING_PER_IP unfinished joins from one address (more are closed at once) and
/// MAX_JOINING in all: when full, the oldest unfinished one is dropped for the newcomer, so
/// idle connections from many addresses cannot keep an honest join (done in milliseconds)
/// out either.
async fn accept_joins(tcp: TcpListener, joins: mpsc::Sender<ToTask>, codec: Codec, secret: bool) {
    let per_ip = Arc::new(Mutex::new(HashMap::<IpAddr, usize>::new()));
    let unfinished: Unfinished = Arc::default();
    let mut next_id = 0u64;
    loop {
        let Ok((mut stream, observed)) = tcp.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let observed = canonical(observed);
        let Some(slot) = JoinSlot::take(&per_ip, observed.ip()) else {
            tracing::debug!(%observed, "P2PSP join refused: too many unfinished joins from it");
            continue;
        };
        // Held until the new join is listed, so that it cannot unlist itself first.
        let mut u = crate::sync::lock(&unfinished);
        while u.len() >= MAX_JOINING {
            if let Some((_, oldest)) = u.pop_front() {
                oldest.abort();
            }
        }
        let joins = joins.clone();
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        next_id += 1;
        let id = next_id;
        let list = unfinished.clone();
        let task = tokio::spawn(async move {
            let listed = Unlist { list, id };
            let (request, proof) = match codec {
                Codec::Native => match native_request(&mut stream, secret).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::debug!(%observed, "P2PSP join read failed: {e}");
                        return;
                    }
                },
                Codec::CompatGenC => match gen_c::read_role(&mut stream).await {
                    Ok(role) => (JoinRequest::new(role), None),
                    Err(e) => {
                        tracing::debug!(%observed, "P2PSP Gen C join read failed: {e}");
                        return;
                    }
                },
            };
            // The request is in: the slot of this address is free for its next join, and this
            // join is no longer an unfinished one to evict.
            drop(slot);
            drop(listed);
            let (reply, rx) = oneshot::channel();
            let join = Join {
                observed,
                local,
                request,
                gen_c: codec == Codec::CompatGenC,
                proof,
                reply,
            };
            if joins.try_send(ToTask::Join(join)).is_err() {
                return;
            }
            let Ok(answer) = rx.await else { return };
            if answer.is_empty() {
                return;
            }
            let sent = match codec {
                Codec::Native => write_frame(&mut stream, &answer).await,
                Codec::CompatGenC => {
                    let done = gen_c::finish_join(&mut stream, &answer).await;
                    // Completed: only now is it a member.
                    let completed = done.is_ok();
                    let _ = joins
                        .send(ToTask::Joined {
                            observed,
                            request,
                            completed,
                        })
                        .await;
                    match done {
                        Ok(()) => Ok(()),
                        Err(e @ gen_c::GenCError::NtsPeer) => {
                            if let Some(suppressed) = JOIN_REFUSED_LOG.allow() {
                                tracing::warn!(%observed, "P2PSP Gen C join refused: {e}{suppressed}");
                            }
                            Ok(())
                        }
                        Err(e) => Err(std::io::Error::other(e.to_string())),
                    }
                }
            };
            if let Err(e) = sent {
                tracing::debug!(%observed, "P2PSP join not completed: {e}");
            }
        });
        u.push_back((id, task.abort_handle()));
    }
}

/// Unfinished joins, oldest first, that a newcomer may evict.
type Unfinished = Arc<Mutex<std::collections::VecDeque<(u64, tokio::task::AbortHandle)>>>;

/// Takes join `id` off the unfinished list when dropped (done reading, or failed).
struct Unlist {
    list: Unfinished,
    id: u64,
}

impl Drop for Unlist {
    fn drop(&mut self) {
        crate::sync::lock(&self.list).retain(|(i, _)| *i != self.id);
    }
}

/// One unfinished join counted against its address; the count drops with it.
struct JoinSlot {
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl JoinSlot {
    fn take(per_ip: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr) -> Option<JoinSlot> {
        let mut m = crate::sync::lock(per_ip);
        let n = m.entry(ip).or_insert(0);
        if *n >= MAX_JOINING_PER_IP {
            return None;
        }
        *n += 1;
        Some(JoinSlot {
            per_ip: per_ip.clone(),
            ip,
        })
    }
}

impl Drop for JoinSlot {
    fn drop(&mut self) {
        let mut m = crate::sync::lock(&self.per_ip);
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// The native join request, within [`JOIN_DEADLINE`]: a joiner of another wire version gets a
/// refusal it can read; with a team secret, the joiner answers a fresh challenge.
async fn native_request(
    stream: &mut TcpStream,
    secret: bool,
) -> std::io::Result<(JoinRequest, Option<JoinProof>)> {
    let started = tokio::time::Instant::now();
    let left = || JOIN_DEADLINE.saturating_sub(started.elapsed());
    let body = read_frame_body(stream, 4096, left()).await?;
    if let Some(v) = wire::peek_version(&body).filter(|v| *v != wire::VERSION) {
        let detail = format!(
            "this splitter speaks native P2PSP wire version {} (signed chunks, authenticated \
             datagrams); version {v} peers must be upgraded",
            wire::VERSION
        );
        if let Ok(f) = wire::encode_refusal(v, &detail) {
            let _ = write_frame(stream, &f).await;
        }
        return Err(std::io::Error::other(format!("wire version {v} refused")));
    }
    let request = match wire::decode(&body).map_err(std::io::Error::other)?.msg {
        Message::JoinRequest(r) => r,
        _ => return Err(std::io::Error::other("not a join request")),
    };
    if !secret {
        return Ok((request, None));
    }
    let challenge: [u8; 16] = random_bytes()?;
    let frame = wire::encode_frame(&Packet {
        team: 0,
        msg: Message::Challenge { nonce: challenge },
    })
    .map_err(std::io::Error::other)?;
    write_frame(stream, &frame).await?;
    let body = read_frame_body(stream, 4096, left()).await?;
    match wire::decode(&body).map_err(std::io::Error::other)?.msg {
        Message::JoinProof { proof } => Ok((request, Some(JoinProof { challenge, proof }))),
        _ => Err(std::io::Error::other("not a join proof")),
    }
}

/// The splitter's signing key (from `splitter-key-file`, created there when missing, or fresh
/// for this run) and the seed its peers' keys derive from (fresh for every run).
fn team_keys(auth: &TeamAuth) -> std::io::Result<(SplitterKey, [u8; 32])> {
    let seed = match &auth.splitter_key_file {
        Some(path) => load_or_create_key(path)?,
        None => random_bytes()?,
    };
    Ok((SplitterKey::from_seed(&seed), random_bytes()?))
}

/// A key file holds the 32-byte Ed25519 secret as 64 hex digits. A missing one is created
/// (readable by its owner only).
fn load_or_create_key(path: &Path) -> std::io::Result<[u8; 32]> {
    let bad = |why: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {why}", path.display()),
        )
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let t = text.trim();
            if t.len() != 64 || !t.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad("must hold 64 hex digits (an Ed25519 secret key)"));
            }
            let mut seed = [0u8; 32];
            for (i, b) in seed.iter_mut().enumerate() {
                *b = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|_| bad("not hex"))?;
            }
            Ok(seed)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            let seed: [u8; 32] = random_bytes()?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| bad(&e.to_string()))?;
            writeln!(f, "{}", auth::hex(&seed)).map_err(|e| bad(&e.to_string()))?;
            Ok(seed)
        }
        Err(e) => Err(bad(&e.to_string())),
    }
}

/// The splitter's reading position in its mount.
struct Attached {
    mount: Arc<Mount>,
    cursor: Cursor,
    /// Gen C: bytes waiting to fill the next fixed-size chunk.
    carry: bytes::BytesMut,
}

impl Attached {
    /// Push every block queued since the last call into the team.
    fn feed(&mut self, splitter: &mut Splitter, max_chunk: usize, codec: Codec) {
        let mut blocks: Vec<Block> = Vec::new();
        match self.mount.read(&mut self.cursor, 1 << 20, &mut blocks) {
            ReadOutcome::Advanced(_) => {}
            // Fell a whole queue behind (the team task was starved): start again at the tail.
            ReadOutcome::Lagged => {
                self.mount.rejoin(&mut self.cursor);
                return;
            }
            ReadOutcome::Idle => return,
        }
        let now = Instant::now();
        for block in blocks {
            // A new chain's header goes into the stream ahead of its data, as a listener gets
            // it: flooded and signed like any chunk, one copy from us whatever the team size.
            if let Some(h) = self.cursor.new_header(&block) {
                let h = h.clone();
                match splitter.set_header(h.clone()) {
                    Ok(()) => self.push(splitter, now, h, max_chunk, codec),
                    Err(e) => tracing::warn!(mount = %self.mount.name, "P2PSP header refused: {e}"),
                }
            }
            self.push(splitter, now, block.data, max_chunk, codec);
        }
    }

    /// Cut `data` into chunks and push them.
    fn push(
        &mut self,
        splitter: &mut Splitter,
        now: Instant,
        mut data: Bytes,
        max_chunk: usize,
        codec: Codec,
    ) {
        if codec == Codec::CompatGenC {
            // Gen C chunks are exactly chunk-size bytes, blind to the container (§3).
            self.carry.extend_from_slice(&data);
            while self.carry.len() >= max_chunk {
                let piece = self.carry.split_to(max_chunk).freeze();
                if let Err(e) = splitter.push_chunk(now, piece) {
                    tracing::warn!(mount = %self.mount.name, "P2PSP chunk refused: {e}");
                }
            }
            return;
        }
        while !data.is_empty() {
            let piece = data.split_to(data.len().min(max_chunk));
            if let Err(e) = splitter.push_chunk(now, piece) {
                tracing::warn!(mount = %self.mount.name, "P2PSP chunk refused: {e}");
            }
        }
    }
}

/// What peers need to re-serve the stream with the right headers.
fn stream_info(mount: &Mount) -> StreamInfo {
    mount.with_info(|SourceInfo { stream: i, .. }| StreamInfo {
        content_type: i.content_type.clone(),
        name: i.name.clone().unwrap_or_default(),
        description: i.description.clone().unwrap_or_default(),
        genre: i.genre.clone().unwrap_or_default(),
        url: i.url.clone().unwrap_or_default(),
        bitrate: i.bitrate.as_deref().and_then(|b| b.trim().parse().ok()),
        title: mount.metadata().display(),
    })
}
