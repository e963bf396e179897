//! Every status document the server answers with, rendered from a [`ServerSnapshot`]:
//! icecast's `<icestats>` tree (admin commands, raw XML or clean JSON), `/status-json.xsl`,
//! the XHTML status pages, floecast's `/api/status` (and its live events) and the STATS
//! method's event lines. Sans-IO: no server, no mount, no clock, no sockets; the snapshot
//! brings every value and every timestamp.

pub mod api;
pub mod icestats;
pub mod pages;
pub mod snapshot;
pub mod stats_events;
pub mod status_json;
pub mod xml;

pub use snapshot::{
    GlobalCounters, Identity, ListenerSnapshot, MountCounters, MountSnapshot, PushEntry, PushPhase,
    PushSnapshot, RelaySnapshot, RelayState, ServerSnapshot, StreamFacts, TeamState, Timestamp,
};

/// `Tue, 06 Jun 2023 09:33:57 +0000`, icecast's RFC 822 style in local time.
pub fn rfc822(t: &Timestamp) -> String {
    t.format("%a, %d %b %Y %H:%M:%S %z").to_string()
}

/// `2023-06-06T09:33:57+0000` (no colon in the offset, as icecast prints it).
pub fn iso8601(t: &Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%z").to_string()
}

/// An optional time as `iso8601` text (or `null`), for serde.
fn serialize_iso8601<S: serde::Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&iso8601(t)),
        None => s.serialize_none(),
    }
}

/// Whole seconds from `then` to `now` (0 if the clock went backwards).
pub fn seconds_between(then: &Timestamp, now: &Timestamp) -> u64 {
    u64::try_from((*now - *then).num_seconds()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_look_like_icecasts() {
        let t = chrono::DateTime::from_timestamp(1_686_044_037, 0)
            .unwrap()
            .fixed_offset();
        assert_eq!(rfc822(&t), "Tue, 06 Jun 2023 09:33:57 +0000");
        assert_eq!(iso8601(&t), "2023-06-06T09:33:57+0000");
        let east = t.with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap());
        assert_eq!(iso8601(&east), "2023-06-06T11:33:57+0200");
        let later = t + chrono::Duration::milliseconds(2_900);
        assert_eq!(seconds_between(&t, &later), 2);
        assert_eq!(seconds_between(&later, &t), 0);
    }
}
