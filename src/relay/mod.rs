//! Relays between servers: streams that leave or enter floecast through another server.
//! A relay only reads or feeds mounts through the mount API; it never reaches into the
//! ingest or listener internals.

pub mod push;
pub mod push_proto;
