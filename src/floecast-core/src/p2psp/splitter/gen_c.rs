//! The Gen C parts of the splitter: the configuration a joiner is offered before it is admitted
//! (it is admitted by `handle_join` only once its join completes), and how a dead member is
//! noticed in a codec without keepalives. Native teams never reach this code.

use std::net::{SocketAddr, SocketAddrV4};

use super::{JoinError, LeaveReason, MAX_PERIOD, Splitter};
use crate::p2psp::compat::{self, CompatConfig};
use crate::p2psp::wire::Message;
use crate::p2psp::{ChunkNo, PeerId, Role};

/// A member whose last this-many chunks (at most) were all reported lost is gone. Fewer in
/// large teams, where the ring holds fewer chunks of each member: see [`Splitter::dead_run`].
pub(super) const DEAD_RUN_MAX: u32 = 8;
/// Fewest consecutive losses that expel, however large the team.
pub(super) const DEAD_RUN_MIN: u32 = 3;

impl Splitter {
    /// Gen C: the configuration block a joiner at `observed` would get now, without admitting
    /// it. `source`/`channel`/`header_size` are Gen C's header-fetching fields. Refused as
    /// [`Splitter::handle_join`] would refuse it (team full, not IPv4).
    ///
    /// `joining` are the joiners offered a configuration whose joins have not completed yet:
    /// they are listed after the members. Gen C cannot tell a member of a later newcomer, so
    /// two peers joining at once meet only if the later one's list names the earlier one (it
    /// then says hello); one that never completes is dropped by its neighbours' debts.
    pub fn compat_offer(
        &self,
        observed: SocketAddr,
        joining: &[SocketAddr],
        source: SocketAddrV4,
        channel: &str,
        header_size: u16,
    ) -> Result<CompatConfig, JoinError> {
        compat::to_v4(observed).map_err(|_| JoinError::NotIpv4)?;
        // The same endpoint joining again replaces its old entry, as in the reference.
        let others = || self.members.iter().filter(|m| m.addr != observed);
        let n = others().count();
        if n >= self.cfg.max_peers || n + 1 >= self.cfg.buffer_size as usize {
            return Err(JoinError::Full);
        }
        let listed = |a: &SocketAddr| self.members.iter().any(|m| m.addr == *a);
        let pending = joining
            .iter()
            .filter(|a| **a != observed && !listed(a))
            .take(self.cfg.max_peers);
        let peers = others()
            .map(|m| m.addr)
            .chain(pending.copied())
            .map(compat::to_v4)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| JoinError::NotIpv4)?;
        let monitors = others().filter(|m| m.role == Role::Monitor).count();
        Ok(CompatConfig {
            source,
            channel: channel.to_owned(),
            header_size,
            chunk_size: self.cfg.max_chunk_payload.min(usize::from(u16::MAX)) as u16,
            buffer_size: self.cfg.buffer_size.min(u32::from(u16::MAX)) as u16,
            number_of_monitors: monitors as u16,
            peers,
        })
    }

    /// A monitor (`complainer`) reported chunk `no`, sent to `blamed`, lost. Gen C peers send
    /// the splitter nothing but goodbyes and complaints, so this is the only sign of a dead
    /// member: it is expelled when its halving loss counter passes the limit (the reference's
    /// rule, which a slow stream never reaches) or when its last [`Splitter::dead_run`] chunks
    /// were all lost. A monitor is blamed too, but never on its own word.
    pub(super) fn compat_blame(&mut self, complainer: usize, blamed: usize, no: ChunkNo) {
        if complainer == blamed {
            return;
        }
        let acs = self.cfg.acs;
        let m = &mut self.members[blamed];
        m.losses += 1;
        m.losses_total += 1;
        if acs {
            m.period = (m.period + 1).min(MAX_PERIOD);
        }
        let (id, losses) = (m.id, m.losses);
        if losses > self.cfg.max_chunk_loss || self.lost_run(id, no) >= self.dead_run() {
            self.send(blamed, Message::Goodbye { from: PeerId::NONE });
            self.remove(blamed, LeaveReason::Expelled);
        }
    }

    /// How many consecutive lost chunks expel: up to [`DEAD_RUN_MAX`], fewer when the ring
    /// holds fewer than twice that many chunks per member, never below [`DEAD_RUN_MIN`].
    pub(super) fn dead_run(&self) -> u32 {
        let per_member = self.cfg.buffer_size / (2 * self.members.len().max(1) as u32);
        per_member.clamp(DEAD_RUN_MIN, DEAD_RUN_MAX)
    }

    /// How many of the chunks sent to `id`, counting back from `no`, were reported lost in a
    /// row (as far as the ring remembers).
    fn lost_run(&self, id: PeerId, no: ChunkNo) -> u32 {
        let mut run = 0;
        for k in 0..self.cfg.buffer_size {
            let c = no.minus(k);
            let Some(s) = self.ring[self.slot_index(c)].as_ref().filter(|s| s.no == c) else {
                break;
            };
            if s.dest != Some(id) {
                continue;
            }
            if !s.blamed {
                break;
            }
            run += 1;
            if run >= DEAD_RUN_MAX {
                break;
            }
        }
        run
    }
}
