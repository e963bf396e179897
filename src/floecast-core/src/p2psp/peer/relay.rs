//! Two-level floods for large teams: who relays a chunk (or a Digest) to whom.
//!
//! A one-level flood costs its origin a copy per member, so on an uplink of 1.25 × the stream
//! a chunk reaches the last of N members 0.8 of a round after the splitter sent it, and a
//! round is N chunk intervals: at N = 1000 and 128 kbit/s, 50 s. Peers would need buffers of
//! minutes. From [`PeerConfig::relay_from`](super::PeerConfig) members on, a team floods in
//! two levels instead: for each chunk the team falls into `k = ⌈√N⌉` groups (a hash of the
//! member id and the chunk number, so every chunk groups the team afresh and the relaying
//! spreads evenly); the origin sends to the members of its own group and to one member of each
//! other group, and a member that got a chunk straight from an origin of another group copies
//! it to its own group. A chunk then waits behind about 3√N copies (2√N at its origin, √N at
//! the relay), not N, and every member still uploads about one stream (it relays for √N
//! origins a round, to √N members each).
//!
//! The origin's copies to relays say so, with its group count (a RelayChunk), and only those
//! are relayed: a copy that is a repair, a routed one, or a one-level flood from a newcomer
//! that knows part of the team is never copied on again (relaying by "the sender is of
//! another group" made each of those a flood to a whole group, 0.08 duplicates a chunk in a
//! 1000-member flash crowd), and a relay groups the team with the origin's count whatever its
//! own view (views of a forming team differ in size, and groups of different counts share
//! nothing). A member whose view differs may still miss a copy, which it asks for like any
//! hole. The splitter's Digests and Infos spread by the same groups, relayed by a member that
//! got them straight from a member of another group (their signature is the splitter's, and
//! nothing of the sender's may be added to it).

use crate::p2psp::PeerId;

/// The number of groups a team of `members` (us included) floods in, or `None` below
/// `relay_from` (one level: everyone copies to everyone).
pub(super) fn groups(members: usize, relay_from: usize) -> Option<u32> {
    if members < relay_from.max(4) {
        return None;
    }
    let mut k = (members as f64).sqrt().ceil() as u32;
    // Float rounding: the smallest k with k² ≥ members.
    while k > 1 && u64::from(k - 1) * u64::from(k - 1) >= members as u64 {
        k -= 1;
    }
    Some(k.max(2))
}

/// The group of member `id` for the chunk (or Digest) numbered `no`, of `k`.
pub(super) fn group(id: PeerId, no: u32, k: u32) -> u32 {
    (mix(id, no) % u64::from(k.max(1))) as u32
}

/// A hash of member `id` and number `no`: splitmix64's finaliser (ids and chunk numbers are
/// small and sequential; groups and witnesses must not be).
fn mix(id: PeerId, no: u32) -> u64 {
    let mut z = (u64::from(id.0) << 32 | u64::from(no)).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// This many members of a team witness each chunk: missing it, they tell the splitter, which
/// resends it when two of them do (see the splitter's `on_witness`)...
pub(crate) const WITNESSES: usize = 4;
/// ... in teams of this many members or more. In smaller ones the monitors are a tenth of the
/// team or more, and witnesses (a third of a team of ten) made things worse where half the
/// uplinks are slow (simulated half 0.5x / half 3x at N = 10, 32 seeds: mean loss 0.28% ->
/// 0.76%; the extra resends are floods those uplinks have no room for).
pub(crate) const WITNESSES_FROM: usize = 32;

/// Whether member `id` witnesses chunk `no` in `team` (with or without `id`): it is among the
/// [`WITNESSES`] members whose hash with `no` is lowest. Exactly that many, not each member
/// with a chance of [`WITNESSES`] in N: with a chance, one chunk in eleven had fewer than the
/// two a resend needs (on real sockets, a 35-member team lost such chunks whole). Members and
/// splitter compute it alike from their views of the team (views may differ a little: a
/// complaint then goes unheard, and the chunk's other witnesses remain). O(N), for a hole or
/// a complaint.
pub(crate) fn witnesses(id: PeerId, no: u32, team: impl IntoIterator<Item = PeerId>) -> bool {
    let mine = (mix(id, no), id.0);
    let (mut others, mut lower) = (0, 0);
    for o in team.into_iter().filter(|o| *o != id) {
        others += 1;
        if (mix(o, no), o.0) < mine {
            lower += 1;
        }
    }
    others + 1 >= WITNESSES_FROM && lower < WITNESSES
}

/// Who an origin sends its two-level flood to, by index into its neighbours.
#[derive(Debug, Default)]
pub(super) struct Targets {
    /// One member of each other group, which copies it on to its group. They go first: each
    /// has a group waiting.
    pub relays: Vec<usize>,
    /// The members of the origin's own group.
    pub own: Vec<usize>,
}

/// An origin's two-level flood of `no` over `ids` (its neighbours, by index): the relays (one
/// per other group, drawn with `pick`, which gets the group's size and returns an index below
/// it) and the members of its own group.
pub(super) fn origin_targets(
    me: PeerId,
    no: u32,
    k: u32,
    ids: &[PeerId],
    mut pick: impl FnMut(usize) -> usize,
) -> Targets {
    let mine = group(me, no, k);
    let k = k as usize;
    // Reservoir sampling: one pass, a candidate and a count per group.
    let mut chosen: Vec<Option<usize>> = vec![None; k];
    let mut seen = vec![0usize; k];
    let mut own = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let g = group(*id, no, k as u32);
        if g == mine {
            own.push(i);
            continue;
        }
        let g = g as usize;
        seen[g] += 1;
        if pick(seen[g]) == 0 {
            chosen[g] = Some(i);
        }
    }
    Targets {
        relays: chosen.into_iter().flatten().collect(),
        own,
    }
}

/// An origin's group count `k`, as a relay that knows `members` members (itself included)
/// takes it: `None` when it is under 2, or so small that our group would be more than twice
/// as large as the largest group in any two-level team of our size (a member of the team
/// cannot make a relay flood a large part of it).
pub(super) fn plausible_groups(k: u16, members: usize) -> Option<u32> {
    let k = u32::from(k);
    // Groups of ⌈√N⌉ in teams of N: at most ≈ √members each, and twice that is allowed for
    // views that lag the origin's.
    (k >= 2
        && (members as u64).div_ceil(u64::from(k)) <= 2 * (members as f64).sqrt().ceil() as u64 + 2)
        .then_some(k)
}

/// Whether a member that got `no` from `sender` copies it on to its own group: only a copy
/// from another group's member can be a relay's (copies within a group are its last level).
pub(super) fn relays(me: PeerId, sender: PeerId, no: u32, k: u32) -> bool {
    group(me, no, k) != group(sender, no, k)
}

/// The members (by index into `ids`) of our group for `no`, but `except`.
pub(super) fn own_group(
    me: PeerId,
    no: u32,
    k: u32,
    ids: &[PeerId],
    except: Option<usize>,
) -> Vec<usize> {
    let mine = group(me, no, k);
    ids.iter()
        .enumerate()
        .filter(|(i, id)| Some(*i) != except && group(**id, no, k) == mine)
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_teams_flood_in_one_level() {
        assert_eq!(groups(100, 256), None);
        assert_eq!(groups(255, 256), None);
        assert_eq!(groups(256, 256), Some(16));
        assert_eq!(groups(257, 256), Some(17));
        assert_eq!(groups(1000, 256), Some(32));
        assert_eq!(groups(1024, 256), Some(32));
        assert_eq!(groups(1025, 256), Some(33));
        assert_eq!(
            groups(3, 0),
            None,
            "a team of three has no groups to speak of"
        );
    }

    #[test]
    fn groups_are_even_and_change_with_the_chunk() {
        let k = 32;
        let mut sizes = vec![0u32; k as usize];
        for id in 1..=1000u32 {
            sizes[group(PeerId(id), 7, k) as usize] += 1;
        }
        // About 31 each; a fair hash stays well within 2×.
        assert!(sizes.iter().all(|&s| (10..=60).contains(&s)), "{sizes:?}");
        let moved = (1..=1000u32)
            .filter(|&id| group(PeerId(id), 7, k) != group(PeerId(id), 8, k))
            .count();
        assert!(
            moved > 900,
            "the next chunk regroups the team: {moved} moved"
        );
    }

    /// Every member is reached exactly once: from the origin (its group, and one relay per
    /// other group) or from its group's relay, who copies to everyone else of its group.
    #[test]
    fn every_member_gets_exactly_one_copy_in_two_levels() {
        let team: Vec<PeerId> = (1..=1000u32).map(PeerId).collect();
        for no in [0u32, 1, 99, 4_000_000_000] {
            let origin = team[(no % 1000) as usize];
            let k = groups(team.len(), 256).unwrap_or(1);
            let others: Vec<PeerId> = team.iter().copied().filter(|&m| m != origin).collect();
            let mut got = vec![0u32; team.len() + 1];
            let mut seed = no as usize;
            let t = origin_targets(origin, no, k, &others, |n| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                (seed >> 33) % n
            });
            assert_eq!(t.relays.len(), k as usize - 1, "a relay per other group");
            assert!(
                t.own.len() < k as usize + 20,
                "origin's group {}",
                t.own.len()
            );
            for &i in t.relays.iter().chain(&t.own) {
                let relay = others[i];
                got[relay.0 as usize] += 1;
                let named = t.relays.contains(&i);
                assert_eq!(named, relays(relay, origin, no, k), "only relays are named");
                if named {
                    // The relay's neighbours: everyone but itself.
                    let theirs: Vec<PeerId> =
                        team.iter().copied().filter(|&m| m != relay).collect();
                    let from = theirs.iter().position(|&m| m == origin);
                    for j in own_group(relay, no, k, &theirs, from) {
                        let leaf = theirs[j];
                        got[leaf.0 as usize] += 1;
                        assert!(!relays(leaf, relay, no, k), "a leaf never relays");
                    }
                }
            }
            for m in &team {
                let want = u32::from(*m != origin);
                assert_eq!(got[m.0 as usize], want, "member {} for chunk {no}", m.0);
            }
        }
    }

    /// Past the neighbour cap (1024) a member knows part of the team. It still knows it is
    /// a witness whenever it is one: fewer than four of the whole team hash lower, so fewer
    /// of any part do. It may think itself one when it is not; the splitter, which knows the
    /// whole team, does not count those complaints. (Scaled down: 1500 members, views of 600.)
    #[test]
    fn a_partial_view_never_misses_a_witness() {
        let team: Vec<PeerId> = (1..=1500u32).map(PeerId).collect();
        let mut seed = 7u64;
        let mut extra = 0usize;
        for no in 0..20u32 {
            let mut order: Vec<(u64, u32)> = team.iter().map(|m| (mix(*m, no), m.0)).collect();
            order.sort_unstable();
            let truly: Vec<PeerId> = order[..WITNESSES]
                .iter()
                .map(|(_, id)| PeerId(*id))
                .collect();
            for m in &truly {
                assert!(
                    witnesses(*m, no, team.iter().copied()),
                    "the whole team agrees"
                );
            }
            for &m in &team {
                let view = team.iter().copied().filter(|&o| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    o != m && (seed >> 33) % 1500 < 600
                });
                let thinks = witnesses(m, no, view);
                let is = truly.contains(&m);
                assert!(thinks || !is, "member {} misses chunk {no}", m.0);
                extra += usize::from(thinks && !is);
            }
        }
        // About 4 × 1500 / 600 − 4 = 6 a chunk think they are witnesses and are not.
        assert!((20..20 * 12).contains(&extra), "{extra} false witnesses");
    }

    #[test]
    fn a_relay_takes_the_origins_group_count_within_bounds() {
        // A team of 1000 floods in 32 groups; a view of 600 or of 1500 takes it as it is.
        assert_eq!(plausible_groups(32, 1000), Some(32));
        assert_eq!(plausible_groups(32, 600), Some(32));
        assert_eq!(plausible_groups(32, 1500), Some(32));
        assert_eq!(
            plausible_groups(1000, 1000),
            Some(1000),
            "many small groups cost nothing"
        );
        // Few groups would make us flood a large part of the team.
        assert_eq!(plausible_groups(1, 1000), None);
        assert_eq!(plausible_groups(2, 1000), None);
        assert_eq!(plausible_groups(8, 1000), None);
        assert_eq!(plausible_groups(2, 4), Some(2));
    }
}
