//! Ingest: everything that feeds a mount from a source client. `source` answers SOURCE/PUT
//! exactly as icecast2 2.4.4 does, `shoutcast` runs the ICY v1 port, and `session` is what
//! both share once a source is accepted: mount creation, the read loop and the teardown.

pub mod session;
pub mod shoutcast;
pub mod source;

pub use session::{SourceSession, StartError};
