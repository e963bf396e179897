//! Native admission and reach: a joiner becomes a member only when its first authenticated
//! datagram arrives (which is also where the splitter learns its UDP endpoint as its NAT maps
//! it), members are introduced to each other so that both sides greet at once (hole punching),
//! and a member no other member reaches is relayed the whole stream by the splitter.
//!
//! It must never admit a joiner on its TCP exchange alone, hold more unconfirmed joiners than
//! [`MAX_UNCONFIRMED`], or relay to more than `max_relayed` members.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{LeaveReason, Member, Splitter};
use crate::p2psp::auth;
use crate::p2psp::wire::{self, Message, PeerReport};
use crate::p2psp::{ChunkNo, PeerId};

/// A joiner that got its reply must confirm over UDP within this, or it is forgotten.
pub(crate) const CONFIRM_WITHIN: Duration = Duration::from_secs(5);
/// Most joiners held unconfirmed; the oldest gives way to a newer one.
pub(crate) const MAX_UNCONFIRMED: usize = 256;
/// A member whose reports say it has no neighbours, while the team has other members, for
/// this long is unreachable by them: the splitter relays the stream to it.
pub(crate) const RELAY_AFTER: Duration = Duration::from_secs(3);

impl Splitter {
    /// Keep a joiner aside until it confirms ([`Splitter::confirm_join`]).
    pub(super) fn hold_joiner(&mut self, member: Member) {
        if self.joining.len() >= MAX_UNCONFIRMED {
            self.joining.remove(0);
            self.stats.joins_unconfirmed += 1;
        }
        self.joining.push(member);
    }

    /// A datagram from an endpoint that is no member's: when it is sealed by an unconfirmed
    /// joiner under its own key and id, and comes from the address it joined from, that joiner
    /// becomes a member at this endpoint (its NAT's mapping toward us). Returns its index; the datagram itself is then processed
    /// as any member's (its sequence number is checked there).
    pub(super) fn confirm_join(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
    ) -> Option<usize> {
        if self.joining.is_empty() {
            return None;
        }
        let o = wire::open(data).ok()?;
        let j = self.joining.iter().position(|m| m.id == o.sender)?;
        // From the address it joined from (a NAT may change the port, not the address): a
        // joiner cannot point the team's traffic at someone else by spoofing its source.
        if from.ip() != self.joining[j].addr.ip() {
            self.stats.bad_mac += 1;
            return None;
        }
        if !o.verify(data, &self.joining[j].key, self.team) {
            return None;
        }
        let mut m = self.joining.remove(j);
        // The same endpoint in the team already: a peer that rejoined from it.
        if let Some(i) = self.members.iter().position(|x| x.addr == from) {
            self.remove(i, LeaveReason::Replaced);
        }
        let n = self.members.len();
        if n >= self.cfg.max_peers || n + 1 >= self.cfg.buffer_size as usize {
            self.stats.joins_refused += 1;
            return None;
        }
        m.addr = from;
        m.last_seen = now;
        m.last_tx = now;
        self.admissions += 1;
        m.admitted_no = self.admissions;
        let id = m.id;
        let i = self.insert_member(m);
        self.introduce(i, id);
        self.members.iter().position(|x| x.id == id)
    }

    /// Forget joiners that did not confirm in time.
    pub(super) fn expire_joiners(&mut self, now: Instant) {
        let before = self.joining.len();
        self.joining
            .retain(|m| now.saturating_duration_since(m.last_seen) < CONFIRM_WITHIN);
        self.stats.joins_unconfirmed += (before - self.joining.len()) as u64;
    }

    /// Member `i` (id `id`) was just admitted: tell it the endpoint we see it at; introduce
    /// it to the members admitted after its reply was built (it was not told of them, nor
    /// they of it) and them to it; to the members behind NATs, which must greet it at the
    /// same time as it greets them for their NATs to let its datagrams in; and to members of
    /// the other address family. Members that
    /// are not behind NATs take its Hello as they get it; if it says it is behind a NAT
    /// itself, it is introduced to them as well ([`Splitter::on_endpoint`]).
    fn introduce(&mut self, i: usize, id: PeerId) {
        let endpoint = self.members[i].addr;
        self.send(i, Message::Endpoint { endpoint });
        let listed_upto = self.members[i].listed_upto;
        for j in 0..self.members.len() {
            if self.members[j].id == id {
                continue;
            }
            if self.members[j].admitted_no > listed_upto {
                self.send_introduction(i, j);
                self.send_introduction(j, i);
            } else if self.members[j].nat == Some(true)
                || self.members[j].addr.is_ipv4() != endpoint.is_ipv4()
            {
                // Behind a NAT, or of the other address family (a dual-stack member can
                // reach an IPv4-only one, not the other way round): it greets first.
                self.send_introduction(i, j);
            }
        }
    }

    /// Member `i` says where it is bound (`local`): behind a NAT when that is not where we see
    /// it. A NATed member is introduced to the members not behind NATs that it was not yet
    /// introduced to (they greet it while it greets them), and told of those admitted after
    /// it (whose replies listed it, but who are unknown to it).
    pub(super) fn on_endpoint(&mut self, i: usize, local: SocketAddr) {
        let nat = local != self.members[i].addr;
        let could_relay = self.may_relay(i);
        let was = self.members[i].nat.replace(nat);
        self.note_relay_change(i, could_relay);
        if !nat || was == Some(true) {
            return;
        }
        let (id, admitted) = (self.members[i].id, self.members[i].admitted_no);
        for j in 0..self.members.len() {
            if self.members[j].id == id || self.members[j].nat == Some(true) {
                continue;
            }
            self.send_introduction(i, j);
            if self.members[j].admitted_no > admitted {
                self.send_introduction(j, i);
            }
        }
    }

    /// Tell member `to` about member `about`: its id, endpoint and their pair key, masked.
    fn send_introduction(&mut self, about: usize, to: usize) {
        let (a, b) = (&self.members[about], &self.members[to]);
        let pair = if a.id.0 < b.id.0 {
            auth::pair_key(&a.key, b.id)
        } else {
            auth::pair_key(&b.key, a.id)
        };
        let mut key = pair;
        auth::intro_mask(&b.key, self.team, a.id, &mut key);
        let msg = Message::Introduce {
            id: a.id,
            endpoint: a.addr,
            key,
        };
        self.send(to, msg);
    }

    /// What member `i` says of itself; a member without neighbours while the team has
    /// others starts to look unreachable, one with neighbours is reached.
    pub(super) fn on_report(&mut self, i: usize, r: PeerReport) {
        let others = self.members.len() > 1;
        let m = &mut self.members[i];
        m.report = Some(r);
        if r.neighbours == 0 && others {
            m.isolated_since.get_or_insert(self.now);
        } else {
            m.isolated_since = None;
            m.relayed = false;
        }
    }

    /// Relay the stream to members that have been unreachable for [`RELAY_AFTER`], up to
    /// `max_relayed` of them.
    pub(super) fn review_relays(&mut self, now: Instant) {
        let mut relayed = self.members.iter().filter(|m| m.relayed).count();
        for m in &mut self.members {
            if relayed >= self.cfg.max_relayed {
                return;
            }
            if !m.relayed && m.isolated_since.is_some_and(|t| now >= t + RELAY_AFTER) {
                m.relayed = true;
                relayed += 1;
            }
        }
    }

    /// Copies of chunk `no`, just sent to member `dest`, for the relayed members.
    pub(super) fn relay_copies(
        &mut self,
        dest: usize,
        no: ChunkNo,
        payload: &Bytes,
        hash: &[u8; 32],
    ) {
        let origin = self.members[dest].id;
        for j in 0..self.members.len() {
            if j != dest && self.members[j].relayed {
                self.stats.relayed_chunks += 1;
                let msg = Message::Chunk {
                    no,
                    origin,
                    relay: None,
                    payload: payload.clone(),
                };
                self.send_hashed(j, msg, Some(hash));
            }
        }
    }
}
