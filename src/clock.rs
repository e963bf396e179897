//! Wall-clock times as the status documents print them: in the server's local time zone.
//! The driver reads the clock and the zone here, so that `crate::documents` never does.

use std::time::SystemTime;

use crate::documents::Timestamp;

/// `t` in the local time zone (with the offset in force at `t`).
pub fn local(t: SystemTime) -> Timestamp {
    chrono::DateTime::<chrono::Local>::from(t).fixed_offset()
}

/// Now, in the local time zone.
pub fn now() -> Timestamp {
    local(SystemTime::now())
}
