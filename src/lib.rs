//! floecast: an Icecast-compatible streaming server with a P2PSP backplane.
//!
//! The data path, in order: `net` (front door) → `ingest` (sources) → `format` (framing) →
//! `mount` (queues, fan-out state) → `listen` (the listener hot path). Beside it, `admin` and
//! `web` serve everything else through axum, and `config` holds the settings.

pub mod config;
pub mod format;
