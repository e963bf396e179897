//! P2PSP teams over real sockets: the tokio runtime around the sans-IO state machines of
//! [`crate::p2psp`] (as quinn is to quinn-proto).
//!
//! A mount configured with `p2psp = { role = "splitter", ... }` feeds its blocks, cut on
//! container boundaries, to a team ([`splitter`]). A mount with `role = "peer"` joins a remote
//! team and re-serves the reassembled stream as an ordinary mount ([`peer`]): listeners,
//! fallbacks, metadata and stats work as for any source, and it can be a splitter itself.
//! The [`crate::supervisor`] starts, restarts and stops both from the config.

pub mod gen_c;
pub mod peer;
pub mod splitter;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::p2psp::peer::PeerStats;
use crate::p2psp::splitter::SplitterStats;
use crate::p2psp::wire::{self, FrameDecoder, Packet};
use crate::sync::lock;

/// What the status page and metrics can see of a mount's team.
pub use crate::documents::TeamState;

/// A mount's teams: the one it serves and the one it belongs to (an inner node of a hybrid
/// tree has both).
#[derive(Debug, Default, Clone)]
struct MountTeams {
    splitter: Option<TeamState>,
    peer: Option<TeamState>,
}

/// Team state by mount name, published by the team tasks a few times a second, read by
/// status and metrics.
#[derive(Debug, Default)]
pub struct Teams {
    by_mount: Mutex<HashMap<String, MountTeams>>,
}

impl Teams {
    pub(in crate::team) fn set_splitter(&self, mount: &str, local: Option<std::net::SocketAddr>) {
        lock(&self.by_mount)
            .entry(mount.to_string())
            .or_default()
            .splitter = Some(TeamState::Splitter { local, stats: None });
    }

    pub(in crate::team) fn update_splitter(&self, mount: &str, new: SplitterStats) {
        if let Some(TeamState::Splitter { stats, .. }) = lock(&self.by_mount)
            .get_mut(mount)
            .and_then(|t| t.splitter.as_mut())
        {
            *stats = Some(new);
        }
    }

    pub(in crate::team) fn set_peer(
        &self,
        mount: &str,
        splitter: &str,
        joined: bool,
        stats: Option<PeerStats>,
    ) {
        lock(&self.by_mount)
            .entry(mount.to_string())
            .or_default()
            .peer = Some(TeamState::Peer {
            splitter: splitter.to_string(),
            joined,
            stats,
        });
    }

    pub(in crate::team) fn remove_splitter(&self, mount: &str) {
        self.remove_with(mount, |t| t.splitter = None);
    }

    pub(in crate::team) fn remove_peer(&self, mount: &str) {
        self.remove_with(mount, |t| t.peer = None);
    }

    fn remove_with(&self, mount: &str, f: impl FnOnce(&mut MountTeams)) {
        let mut map = lock(&self.by_mount);
        if let Some(t) = map.get_mut(mount) {
            f(t);
            if t.splitter.is_none() && t.peer.is_none() {
                map.remove(mount);
            }
        }
    }

    /// The team a mount serves, else the one it belongs to.
    pub fn get(&self, mount: &str) -> Option<TeamState> {
        lock(&self.by_mount)
            .get(mount)
            .and_then(|t| t.splitter.clone().or_else(|| t.peer.clone()))
    }

    /// The team a mount belongs to (as a peer), if any.
    pub fn get_peer(&self, mount: &str) -> Option<TeamState> {
        lock(&self.by_mount).get(mount).and_then(|t| t.peer.clone())
    }

    /// Every team state (a mount may appear twice, once per role), by mount name: the
    /// teams' snapshot for status documents and metrics.
    pub fn all(&self) -> Vec<(String, TeamState)> {
        let mut v: Vec<_> = lock(&self.by_mount)
            .iter()
            .flat_map(|(k, t)| {
                [t.splitter.clone(), t.peer.clone()]
                    .into_iter()
                    .flatten()
                    .map(move |s| (k.clone(), s))
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

/// `addr` with an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, as a dual-stack socket reports
/// an IPv4 peer) written as the IPv4 address it is: a team names each member one way, and
/// IPv4-only members can reach that form.
pub fn canonical(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    std::net::SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// How long a join exchange may take over TCP.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Read one length-prefixed frame under `max` bytes and the join timeout.
pub async fn read_frame(stream: &mut TcpStream, max: usize) -> std::io::Result<Packet> {
    let body = read_frame_body(stream, max, JOIN_TIMEOUT).await?;
    wire::decode(&body).map_err(invalid)
}

/// `n` random bytes from the kernel: keys and nonces of native teams.
pub fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    use std::io::Read as _;
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

/// Read one frame body (undecoded) under `max` bytes, within `deadline`.
pub async fn read_frame_body(
    stream: &mut TcpStream,
    max: usize,
    deadline: Duration,
) -> std::io::Result<Bytes> {
    let mut decoder = FrameDecoder::new(max);
    let mut buf = vec![0u8; 16 * 1024];
    let fut = async {
        loop {
            match decoder.pop_frame() {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(e) => return Err(invalid(e)),
            }
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            decoder.push(&buf[..n]).map_err(invalid)?;
        }
    };
    tokio::time::timeout(deadline, fut)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// Write one frame under the join timeout.
pub async fn write_frame(stream: &mut TcpStream, frame: &Bytes) -> std::io::Result<()> {
    tokio::time::timeout(JOIN_TIMEOUT, stream.write_all(frame))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

fn invalid(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}
