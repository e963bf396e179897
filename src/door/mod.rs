//! The door: who is really connecting, and whether they may come in. It decides the client's
//! address once per connection (a trusted balancer's PROXY header, a trusted proxy's
//! `X-Forwarded-For`), and every later step (access log, listclients, listener auth, limits,
//! bans) takes the address it returns. Then bans, icecast's deny/allow files and the
//! per-address connection limit. It never reads a request body nor writes a reply itself.

pub mod access_list;
pub mod address;
pub mod bans;
pub mod cidr;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use address::{arrival, forwarded_for};
pub use bans::Bans;
pub use cidr::Cidr;

use crate::config::Config;
use crate::http::RequestHead;
use crate::log_throttle::LogThrottle;
use crate::net::{Reply, RequestRecord};
use crate::server::Server;
use crate::sync::lock;

/// The door's state: the ban list, the two list files as last read, and how many
/// connections each address holds (kept only while a per-address limit is configured).
#[derive(Default)]
pub struct Door {
    pub bans: Bans,
    deny: access_list::AccessList,
    allow: access_list::AccessList,
    connections: Mutex<HashMap<IpAddr, u32>>,
}

impl std::fmt::Debug for Door {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Door")
    }
}

/// Why an address may not come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Banned,
    Denied,
    NotAllowed,
    TooMany(usize),
}

/// A connection let in: its real address, and its place in the per-address count, given
/// back on drop.
/// Boxed, and only under a limit: it lives in every connection's task.
#[derive(Debug)]
pub struct Slot {
    door: Option<Box<(Arc<Door>, IpAddr)>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((door, ip)) = self.door.take().map(|b| *b) {
            let mut counts = lock(&door.connections);
            if let Some(n) = counts.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&ip);
                }
            }
        }
    }
}

/// Refusals for too many connections from one address are logged at most this often.
static TOO_MANY_LOG: LogThrottle = LogThrottle::new(Duration::from_secs(10));

impl Door {
    /// Check `ip` against the bans, the deny and allow files and the per-address limit.
    pub fn check(self: &Arc<Self>, config: &Config, ip: IpAddr) -> Result<Slot, Refusal> {
        let ip = cidr::unmapped(ip);
        let access = &config.access;
        if self.bans.contains(ip) {
            return Err(Refusal::Banned);
        }
        if self.deny.matches(access.deny_ip_file.as_deref(), ip) == Some(true) {
            return Err(Refusal::Denied);
        }
        if self.allow.matches(access.allow_ip_file.as_deref(), ip) == Some(false) {
            return Err(Refusal::NotAllowed);
        }
        let max = access.max_connections_per_ip;
        // A trusted proxy carries many clients: its own address is not limited.
        if max == 0 || access.is_trusted_proxy(ip) {
            return Ok(Slot { door: None });
        }
        let mut counts = lock(&self.connections);
        let n = counts.entry(ip).or_insert(0);
        if *n as usize >= max {
            return Err(Refusal::TooMany(max));
        }
        *n += 1;
        Ok(Slot {
            door: Some(Box::new((self.clone(), ip))),
        })
    }

    /// How many connections `ip` holds (counted only while a limit is configured).
    pub fn connections_of(&self, ip: IpAddr) -> u32 {
        lock(&self.connections).get(&ip).copied().unwrap_or(0)
    }
}

/// Whether `peer` is a trusted proxy, whose requests name their client (so the door is
/// passed again with the request head).
pub fn speaks_for_others(server: &Server, peer: &SocketAddr) -> bool {
    server.config().access.is_trusted_proxy(peer.ip())
}

/// The door for one connection: without a head, as it arrives (a trusted proxy is let
/// through, to be checked with its client's address); with the request head, the real
/// address (`X-Forwarded-For` from a trusted proxy) is found, then [`Door::check`]. Admitted:
/// the slot and the client's address. A refusal comes back as the reply to send, or `None`
/// to close without one (bans and the deny/allow files, as icecast2 closes those); the
/// too-many refusal is logged, throttled, and written to the access log.
///
/// The address goes in and comes back by value: a local whose address is taken stays in
/// the connection task's state for its whole life, and that task exists once per listener.
pub fn admit(
    server: &Arc<Server>,
    peer: SocketAddr,
    head: Option<&RequestHead>,
) -> Result<(Slot, SocketAddr), Option<Reply>> {
    let config = server.config();
    let peer = match head {
        Some(head) => forwarded_for(&config, peer, head),
        None if config.access.is_trusted_proxy(peer.ip()) => {
            return Ok((Slot { door: None }, peer));
        }
        None => peer,
    };
    match server.door.check(&config, peer.ip()) {
        Ok(slot) => Ok((slot, peer)),
        Err(Refusal::TooMany(max)) => {
            if let Some(suppressed) = TOO_MANY_LOG.allow() {
                tracing::warn!(
                    ip = %cidr::unmapped(peer.ip()),
                    "connection refused: more than max-connections-per-ip = {max} from one address{suppressed}"
                );
            }
            let reply = Reply::error(&config, &[], 403, "Too many connections from your address");
            if let Some(head) = head {
                let mut record = RequestRecord::for_head(server, head, &peer);
                record.status = reply.status;
            }
            Err(Some(reply))
        }
        Err(why) => {
            tracing::debug!(ip = %cidr::unmapped(peer.ip()), ?why, "connection closed at the door");
            Err(None)
        }
    }
}
