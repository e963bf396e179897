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

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests stand in for the driver: they read the clock
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::p2psp::Codec;
    use crate::p2psp::splitter::SplitterConfig;
    use crate::p2psp::wire::JoinRequest;

    fn a(n: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 4000 + n))
    }

    #[test]
    fn an_offer_lists_members_then_joiners_and_admits_nobody() {
        let t = Instant::now();
        let cfg = SplitterConfig {
            codec: Codec::CompatGenC,
            max_chunk_payload: 1024,
            max_peers: 3,
            ..SplitterConfig::default()
        };
        let mut s = Splitter::new(cfg, 0, t);
        let src: SocketAddrV4 = "127.0.0.1:8000".parse().unwrap();
        // The reference's first-join shape is what a first joiner gets, less the phantom.
        let c = s.compat_offer(a(1), &[], src, "x.ogg", 4000).unwrap();
        assert_eq!((c.number_of_monitors, c.peers.len()), (0, 0));
        assert_eq!((c.chunk_size, c.header_size), (1024, 4000));
        s.handle_join(t, a(1), &JoinRequest::new(Role::Monitor))
            .unwrap();
        // Joiners in progress come after the members; the joiner itself is never listed.
        let c = s
            .compat_offer(a(3), &[a(2), a(3), a(1)], src, "x.ogg", 4000)
            .unwrap();
        let listed: Vec<SocketAddr> = c.peers.iter().map(|p| SocketAddr::V4(*p)).collect();
        assert_eq!(listed, vec![a(1), a(2)]);
        assert_eq!(c.number_of_monitors, 1);
        assert_eq!(s.peer_count(), 1, "an offer admits nobody");
        let v6: SocketAddr = "[2001:db8::1]:4000".parse().unwrap();
        assert_eq!(
            s.compat_offer(v6, &[], src, "x.ogg", 1),
            Err(JoinError::NotIpv4)
        );
        s.handle_join(t, a(2), &JoinRequest::new(Role::Peer))
            .unwrap();
        s.handle_join(t, a(3), &JoinRequest::new(Role::Peer))
            .unwrap();
        assert_eq!(
            s.compat_offer(a(4), &[], src, "x.ogg", 1),
            Err(JoinError::Full)
        );
        // The same endpoint again replaces its entry: not full.
        assert!(s.compat_offer(a(3), &[], src, "x.ogg", 1).is_ok());
    }

    #[test]
    fn the_dead_run_shrinks_with_the_team() {
        let t = Instant::now();
        let cfg = SplitterConfig {
            codec: Codec::CompatGenC,
            buffer_size: 256,
            ..SplitterConfig::default()
        };
        let mut s = Splitter::new(cfg, 0, t);
        assert_eq!(s.dead_run(), DEAD_RUN_MAX);
        for n in 0..40 {
            s.handle_join(t, a(n), &JoinRequest::new(Role::Peer))
                .unwrap();
        }
        assert_eq!(s.dead_run(), DEAD_RUN_MIN);
    }
}
