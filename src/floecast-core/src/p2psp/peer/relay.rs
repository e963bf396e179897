//! Two-level floods for large teams: who relays a chunk (or a Digest) to whom.
//!
//! A one-level flood costs its origin a copy per member, so on an uplink of 1.25 × the stream
//! a chunk reaches the last of N members 0.8 of a round after the splitter sent it, and a
//! round is N chunk intervals: at N = 1000 and 128 kbit/s, 50 s. Peers would need buffers of
//! minutes. From [`PeerConfig::relay_from`](super::PeerConfig) members on, a team floods in
//! two levels instead: the team falls into `k = ⌈√N⌉` groups (a hash of the member id); the
//! origin sends to the members of its own group and to one member of each other group, and
//! that member copies it on to its own group. A chunk then waits behind about 3√N copies (2√N
//! at its origin, √N at the relay), not N, and every member still uploads about one stream.
//!
//! The hash is a consistent one ([`group`]): from `k` to `k + 1` groups only a `(k + 1)`th
//! of the members move, to the new group. Views of a forming team differ in size, so in group
//! count too (in a flash crowd of 1000 a tenth of the members knew 961 or fewer: 31 groups,
//! not 32); with `hash mod k` the two counts shared nothing, and each Digest was relayed by
//! 127 members instead of 31 (a Digest goes on from anyone "of another group"): 6.9% of every
//! member's upload.
//!
//! Each group's relays take turns: for chunk `no` it is the member `no mod size` of the group
//! in id order, so a member relays one chunk in every `size`, evenly spaced, a steady beat its
//! uplink can keep up with. Drawn at random for each chunk (as first built, over groups drawn
//! afresh for each chunk), a member's duties came in clumps, each a burst of √N copies, and at
//! about 90% load the clumps queued copies for tens of seconds: simulated on 1.25 × uplinks,
//! N = 1000 played 59 s behind the splitter after two minutes and still falling behind, N = 300
//! 22 s; in turns 17 s (level from the first minute) and 9 s (BENCHMARKS.md). Views of the
//! team differ a little while it forms, and then two origins may give a member turns close
//! together: a clump now and then, never a lost copy (the relay is named, below).
//!
//! Only members whose uplinks can carry it relay (the splitter names the others), and hashed
//! groups differ in how many of those they have: with half the uplinks at half the stream, a
//! group of 13 with 3 able members had each of them upload 2.86 × the stream (on uplinks of
//! 3 ×), and their copies queued for seconds. So a relay copies to its group's fair share of
//! the team's relay duty ([`share_of`]), and the origin to the rest of that group itself, a
//! few copies more a flood (both sides tell the parts apart by a hash of each member,
//! [`in_share`]). Simulated, mixed N = 1000 after two minutes: slow members played at most
//! 12.5 s behind the splitter (p50 8.0 s) instead of 36 s (14.3 s), with the same loss and
//! upload.
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

/// The group of member `id`, of `k`.
pub(super) fn group(id: PeerId, k: u32) -> u32 {
    // A fixed second argument: no chunk number, so the groups stay while `k` does.
    jump(mix(id, GROUP_SALT), k.max(1))
}

/// Jump consistent hashing (Lamping and Veach, 2014): bucket of `key` among `buckets`, such
/// that going from `k` to `k + 1` buckets moves only a `1 / (k + 1)` share of the keys.
fn jump(mut key: u64, buckets: u32) -> u32 {
    let (mut b, mut j) = (-1i64, 0i64);
    while j < i64::from(buckets) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as u32
}

/// `mix`'s second argument for groups ("grp"): any fixed value does.
const GROUP_SALT: u32 = 0x0067_7270;

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
    /// One member of each other group, which copies it on to the share of its group given
    /// with it (65536ths, [`Relay::WHOLE`](crate::p2psp::wire::Relay::WHOLE): all). They go
    /// first: each has a group waiting.
    pub relays: Vec<(usize, u16)>,
    /// The members of the origin's own group.
    pub own: Vec<usize>,
    /// Members of other groups the origin copies to itself: the part of a group beyond its
    /// relays' fair share ([`share_of`]).
    pub direct: Vec<usize>,
}

/// Whether member `id` is in the part of its group a relay of chunk `no` with `share` copies
/// to (the origin copies to the rest). A hash of the member alone, not a rank in the group:
/// origin and relay may know the group a little differently, and each member still falls on
/// the same side for both (ranked, such views lost copies: at N = 1000, 0.35% of chunks
/// instead of 0.15%).
pub(super) fn in_share(id: PeerId, no: u32, share: u16) -> bool {
    share == WHOLE || (mix(id, no ^ SHARE_SALT) >> 48) < u64::from(share)
}

const WHOLE: u16 = crate::p2psp::wire::Relay::WHOLE;

/// A group's relays take up to this much more than their fair share: the origin's copies to
/// the rest wait behind the rest of its flood. Simulated (mixed N = 1000, first minute), at
/// 1.0 × loss rose from 0.15% to 0.18% and peer upload to 1.21 × the stream; at 1.3 × 0.15%
/// and 1.195 ×, with lag p50 / max 5.2 / 12.9 s against whole groups' 6.4 / 20.2 s; at 1.6 ×
/// 6.7 / 14.8 s.
const SHARE_SLACK: f64 = 1.3;

/// `mix`'s second argument for shares ("shr"), apart from `GROUP_SALT` and chunk numbers.
const SHARE_SALT: u32 = 0x0073_6872;

/// The share (65536ths) of a group of `rest` members besides its relay that the relay copies
/// to: the group's fair share of the team's relay duty (its `group_able` members able to relay
/// times the team's `members` per `able` member, times [`SHARE_SLACK`]), or all of it when
/// that is more. Where groups differ in able members (hashed, at N = 1000 with half the
/// uplinks slow, 3 of 13 in one group and 11 of 13 in another), whole-group relaying loaded
/// some members' uplinks at 2.9 × the stream on 3 × uplinks, their copies queued, and the slow
/// half played 20–40 s behind.
pub(super) fn share_of(rest: usize, group_able: usize, members: usize, able: usize) -> u16 {
    if group_able == 0 || able == 0 {
        return WHOLE;
    }
    let fair = (members * group_able) as f64 / able as f64 * SHARE_SLACK;
    if rest as f64 <= fair {
        return WHOLE;
    }
    ((fair / rest as f64) * f64::from(WHOLE)).floor() as u16
}

/// An origin's two-level flood of `no` over `ids` (its neighbours, by index): each other
/// group's relay for `no` (its member `no mod size` in id order, among the members `able` to
/// relay when the group has any: a member whose uplink is under the stream cannot copy to a
/// group of √N in turn, and in a team where half the uplinks were, floods fell a minute
/// behind) with its share of the group ([`share_of`], when we are `able` ourselves: else the
/// whole group), the rest of each group, and the members of our own group.
pub(super) fn origin_targets(
    me: PeerId,
    no: u32,
    k: u32,
    ids: &[PeerId],
    able: impl Fn(usize) -> bool,
    me_able: bool,
) -> Targets {
    let mine = group(me, k) as usize;
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); k as usize];
    for (i, id) in ids.iter().enumerate() {
        groups[group(*id, k) as usize].push(i);
    }
    let own = std::mem::take(&mut groups[mine]);
    let members = ids.len() + 1;
    let able_all = (0..ids.len()).filter(|&i| able(i)).count() + usize::from(me_able);
    let mut direct = Vec::new();
    let relays = groups
        .into_iter()
        .filter(|g| !g.is_empty())
        .map(|mut g| {
            g.sort_unstable_by_key(|&i| ids[i]);
            let n_able = g.iter().filter(|&&i| able(i)).count();
            let relay = if n_able == 0 {
                g[no as usize % g.len()]
            } else {
                g.iter()
                    .copied()
                    .filter(|&i| able(i))
                    .nth(no as usize % n_able)
                    .unwrap_or(g[0])
            };
            let share = if me_able {
                share_of(g.len() - 1, n_able, members, able_all)
            } else {
                WHOLE
            };
            if share != WHOLE {
                direct.extend(
                    g.iter()
                        .copied()
                        .filter(|&i| i != relay && !in_share(ids[i], no, share)),
                );
            }
            (relay, share)
        })
        .collect();
    Targets {
        relays,
        own,
        direct,
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

/// Whether a member that got a copy from `sender` may copy it on to its own group: only a
/// copy from another group's member can be a relay's (copies within a group are its last
/// level).
pub(super) fn relays(me: PeerId, sender: PeerId, k: u32) -> bool {
    group(me, k) != group(sender, k)
}

/// The members (by index into `ids`) of our group, but `except`.
pub(super) fn own_group(me: PeerId, k: u32, ids: &[PeerId], except: Option<usize>) -> Vec<usize> {
    let mine = group(me, k);
    ids.iter()
        .enumerate()
        .filter(|(i, id)| Some(*i) != except && group(**id, k) == mine)
        .map(|(i, _)| i)
        .collect()
}

/// The members (by index into `ids`) a relay of chunk `no` copies to: its group but `except`
/// (the origin), within `share` ([`in_share`]).
pub(super) fn relay_share(
    me: PeerId,
    no: u32,
    k: u32,
    share: u16,
    ids: &[PeerId],
    except: Option<usize>,
) -> Vec<usize> {
    let mut g = own_group(me, k, ids, except);
    g.retain(|&i| in_share(ids[i], no, share));
    g
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
    fn groups_are_even() {
        let k = 32;
        let mut sizes = vec![0u32; k as usize];
        for id in 1..=1000u32 {
            sizes[group(PeerId(id), k) as usize] += 1;
        }
        // About 31 each; a fair hash stays well within 2×.
        assert!(sizes.iter().all(|&s| (10..=60).contains(&s)), "{sizes:?}");
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
            let t = origin_targets(origin, no, k, &others, |_| true, true);
            assert_eq!(t.relays.len(), k as usize - 1, "a relay per other group");
            assert!(t.direct.is_empty(), "every group relays all of itself");
            assert!(
                t.own.len() < k as usize + 20,
                "origin's group {}",
                t.own.len()
            );
            let named: Vec<usize> = t.relays.iter().map(|r| r.0).collect();
            for &i in named.iter().chain(&t.own) {
                let relay = others[i];
                got[relay.0 as usize] += 1;
                let named = named.contains(&i);
                assert_eq!(named, relays(relay, origin, k), "only relays are named");
                if named {
                    // The relay's neighbours: everyone but itself.
                    let theirs: Vec<PeerId> =
                        team.iter().copied().filter(|&m| m != relay).collect();
                    let from = theirs.iter().position(|&m| m == origin);
                    for j in own_group(relay, k, &theirs, from) {
                        let leaf = theirs[j];
                        got[leaf.0 as usize] += 1;
                        assert!(!relays(leaf, relay, k), "a leaf never relays");
                    }
                }
            }
            for m in &team {
                let want = u32::from(*m != origin);
                assert_eq!(got[m.0 as usize], want, "member {} for chunk {no}", m.0);
            }
        }
    }

    /// Members said to be too slow (every even id here) never relay while their group has
    /// another member; the others take their turns between them, evenly; a group of slow
    /// members alone still gets its copy through one of them.
    #[test]
    fn slow_members_are_passed_over_as_relays() {
        let team: Vec<PeerId> = (1..=400u32).map(PeerId).collect();
        let k = groups(team.len(), 256).unwrap_or(1);
        let origin = PeerId(1);
        let others: Vec<PeerId> = team.iter().copied().filter(|&m| m != origin).collect();
        let slow = |i: usize| others[i].0 % 2 == 0;
        let mut turns = vec![0u32; team.len() + 1];
        for no in 0..4000u32 {
            let t = origin_targets(origin, no, k, &others, |i| !slow(i), true);
            assert_eq!(t.relays.len() as u32, k - 1, "one relay per other group");
            for (i, _) in t.relays {
                assert!(!slow(i), "chunk {no}: slow member {:?} relays", others[i]);
                turns[others[i].0 as usize] += 1;
            }
        }
        // Each able member of another group relays about 4000 / (able members in its group).
        let mine = group(origin, k);
        for m in others
            .iter()
            .filter(|m| m.0 % 2 == 1 && group(**m, k) != mine)
        {
            let able = others
                .iter()
                .filter(|o| o.0 % 2 == 1 && group(**o, k) == group(*m, k))
                .count() as u32;
            let t = turns[m.0 as usize];
            assert!(t.abs_diff(4000 / able) <= 1, "{m:?}: {t} turns of {able}");
        }
        // All slow: the group still gets its relay.
        let t = origin_targets(origin, 7, k, &others, |_| false, true);
        assert_eq!(t.relays.len() as u32, k - 1);
        assert!(t.relays.iter().all(|r| r.1 == WHOLE) && t.direct.is_empty());
    }

    /// Where half the team is too slow to relay, a group's relays copy to its fair share of
    /// the team's relay duty and the origin to the rest: still exactly one copy for every
    /// member, also when the relay's view lacks members the origin knows (and so when a
    /// relay ranks the group differently: a member's side is its own hash), and no member
    /// able to relay carries more than its fair share. Relaying whole groups, the busiest
    /// carried 1.3 × its share at N = 1000 (2.56 copies a chunk where 1.97 is fair), more at
    /// N = 300: on uplinks of 3 × the stream, with its own floods and repairs on top, a
    /// saturated one.
    #[test]
    fn shares_reach_every_member_once_and_spread_relay_duty_by_capacity() {
        let team: Vec<PeerId> = (1..=300u32).map(PeerId).collect();
        let k = groups(team.len(), 256).unwrap_or(1);
        // Slow by a hash, so groups differ in how many of theirs can relay.
        let slow = |m: PeerId| mix(m, 77) % 2 == 0;
        let able_n = team.iter().filter(|m| !slow(**m)).count();
        let fair = team.len() as f64 / able_n as f64;
        let chunks = 1000u32;
        let (mut load, mut whole_load) = (vec![0u32; 301], vec![0u32; 301]);
        let fast: Vec<PeerId> = team.iter().copied().filter(|m| !slow(*m)).collect();
        let mut directs = 0usize;
        for no in 0..chunks {
            let origin = fast[no as usize % fast.len()];
            let others: Vec<PeerId> = team.iter().copied().filter(|&m| m != origin).collect();
            let able = |i: usize| !slow(others[i]);
            let t = origin_targets(origin, no, k, &others, able, true);
            let w = origin_targets(origin, no, k, &others, able, false);
            let mut got = vec![0u32; 301];
            for &i in t.own.iter().chain(&t.direct) {
                got[others[i].0 as usize] += 1;
            }
            directs += t.direct.len();
            for (&(i, share), &(wi, wshare)) in t.relays.iter().zip(&w.relays) {
                assert_eq!((i, wshare), (wi, WHOLE), "the same relays, whole when slow");
                let relay = others[i];
                got[relay.0 as usize] += 1;
                // The relay knows everyone but itself, less a few the origin knows.
                let theirs: Vec<PeerId> = team
                    .iter()
                    .copied()
                    .filter(|&m| m != relay && (m == origin || m.0 % 97 != 5))
                    .collect();
                let from = theirs.iter().position(|&m| m == origin);
                let copies = relay_share(relay, no, k, share, &theirs, from);
                load[relay.0 as usize] += copies.len() as u32;
                whole_load[relay.0 as usize] += own_group(relay, k, &theirs, from).len() as u32;
                for j in copies {
                    got[theirs[j].0 as usize] += 1;
                }
            }
            for m in &team {
                let unknown = m.0 % 97 == 5 && group(*m, k) != group(origin, k);
                let missed_by_relay = unknown && got[m.0 as usize] == 0;
                let want = u32::from(*m != origin && !missed_by_relay);
                assert_eq!(got[m.0 as usize], want, "member {} for chunk {no}", m.0);
            }
        }
        let per_chunk = |l: &[u32]| -> f64 {
            f64::from(fast.iter().map(|m| l[m.0 as usize]).max().unwrap_or(0)) / f64::from(chunks)
        };
        let (max, max_whole) = (per_chunk(&load), per_chunk(&whole_load));
        assert!(
            max <= fair * SHARE_SLACK * 1.05 && max_whole > fair * SHARE_SLACK * 1.2,
            "most relayed a chunk: {max:.2} in shares, {max_whole:.2} whole (fair {fair:.2})"
        );
        // The origins carry the difference: a few copies more a flood (here about 7 on top of
        // 2√N = 35), not a group each.
        let per_flood = directs as f64 / f64::from(chunks);
        assert!(
            per_flood > 2.0 && per_flood < 17.0,
            "{per_flood:.1} direct copies a flood"
        );
    }

    #[test]
    fn a_group_with_enough_able_members_relays_all_of_itself() {
        // 1000 members, 500 able: two copies a chunk each, with slack 2.6.
        assert_eq!(share_of(30, 16, 1000, 500), WHOLE);
        assert_eq!(share_of(31, 12, 1000, 500), WHOLE);
        assert_ne!(share_of(32, 12, 1000, 500), WHOLE);
        // 5 able of 31: 13 copies of 30.
        let part = share_of(30, 5, 1000, 500);
        assert!((28_350..=28_420).contains(&part), "{part}");
        assert_eq!(
            share_of(30, 0, 1000, 500),
            WHOLE,
            "none able: no fair share to take"
        );
        // A member falls inside a share about as often as the share says.
        let inside = (1..=10_000u32)
            .filter(|id| in_share(PeerId(*id), 9, part))
            .count();
        assert!((4_100..=4_570).contains(&inside), "{inside}");
        assert!((1..=100u32).all(|id| in_share(PeerId(id), 9, WHOLE)));
    }

    /// Groups keep their members as the count grows (views of a forming team differ in it).
    #[test]
    fn groups_stay_when_the_team_grows_past_a_square() {
        // 961 = 31²: members who know 961 of a team of 1000 group it in 31, the rest in 32.
        // Each group keeps its members but for about a 32nd, who start the new group (with
        // groups by `hash mod k`, 97% of the team would have changed group).
        let team: Vec<PeerId> = (1..=1000u32).map(PeerId).collect();
        let moved = team
            .iter()
            .filter(|id| group(**id, 31) != group(**id, 32))
            .count();
        assert!(moved > 10 && moved < 60, "{moved} of 1000 changed group");
        for id in &team {
            let (a, b) = (group(*id, 31), group(*id, 32));
            assert!(a == b || b == 31, "{id:?} moved from {a} to {b}");
        }
        // As even as a hash makes them.
        let mut sizes = [0usize; 32];
        for id in &team {
            sizes[group(*id, 32) as usize] += 1;
        }
        assert!(sizes.iter().all(|&n| (12..=55).contains(&n)), "{sizes:?}");
    }

    /// A member relays one chunk in its group's size, evenly spaced: chunk `no` when `no mod
    /// size` is its rank in the group, unless the origin is of its own group (and floods it
    /// itself). Drawn at random, as first built, turns came in clumps.
    #[test]
    fn relays_take_turns_a_group_apart() {
        let team: Vec<PeerId> = (1..=1000u32).map(PeerId).collect();
        let k = groups(team.len(), 256).unwrap_or(1);
        let group_of = |m: PeerId| -> Vec<PeerId> {
            let mut g: Vec<PeerId> = team
                .iter()
                .copied()
                .filter(|o| group(*o, k) == group(m, k))
                .collect();
            g.sort_unstable();
            g
        };
        let mut turns: Vec<Vec<u32>> = vec![Vec::new(); team.len() + 1];
        for no in 0..2000u32 {
            let origin = team[(no % 1000) as usize];
            let others: Vec<PeerId> = team.iter().copied().filter(|&m| m != origin).collect();
            for (i, _) in origin_targets(origin, no, k, &others, |_| true, true).relays {
                turns[others[i].0 as usize].push(no);
            }
        }
        for m in &team {
            let g = group_of(*m);
            let (size, rank) = (g.len() as u32, g.iter().position(|o| o == m));
            let want: Vec<u32> = (0..2000u32)
                .filter(|no| Some((no % size) as usize) == rank)
                .filter(|no| !g.contains(&team[(no % 1000) as usize]))
                .collect();
            assert_eq!(
                turns[m.0 as usize], want,
                "member {} of a group of {size}",
                m.0
            );
            assert!(want.len() as u32 >= 2000 / size * 8 / 10, "{want:?}");
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
