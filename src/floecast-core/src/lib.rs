//! floecast-core: everything of floecast that does no I/O. Bytes and events go in, bytes,
//! events and deadlines come out, and time is an argument — as quinn-proto is to quinn. The
//! `floecast` crate is the tokio driver around it; the simulator runs the same P2PSP code.
//!
//! This crate must never depend on an async runtime, open a socket or file, read the clock or
//! print: its Cargo.toml has no tokio, and its `clippy.toml` forbids clock reads and printing.

pub mod backoff;
pub mod documents;
pub mod format;
pub mod http;
pub mod p2psp;
pub mod queue;
pub mod reconcile;
