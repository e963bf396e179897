//! What the supervised tasks publish for status and metrics: relay, push and team state.
//! `Server` carries it so any reader can take a snapshot; it knows nothing of the tasks or
//! the server, which keeps `server.rs` out of an import cycle with the tasks.

use crate::relay::Relays;
use crate::relay::push_state::Pushes;
use crate::team::Teams;

/// What the supervised tasks publish, for status and metrics: the one handle on the
/// supervised tasks that `Server` carries. Read-only outside the tasks that write it.
#[derive(Debug, Default)]
pub struct Supervised {
    /// Relay state by local mount (configured relays and the master's).
    pub relays: Relays,
    /// The running push relays, in config order.
    pub pushes: Pushes,
    /// P2PSP team state by mount.
    pub teams: Teams,
}
