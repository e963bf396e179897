//! floecast: an Icecast-compatible streaming server with a P2PSP backplane.
//!
//! The data path, in order: `net` (the front door) → `ingest` (sources) → `format` (framing)
//! → `mount` (queues, fan-out state) → `listen` (the listener hot path). Beside it, `web` and
//! `admin` serve everything else through axum, and `config` holds the settings.

// The sans-IO core, under the names the driver has always used for it.
pub use floecast_core::{backoff, documents, format, http, p2psp, reconcile};

pub mod access_log;
pub mod admin;
pub mod app;
pub mod banner;
pub mod clock;
pub mod config;
pub mod door;
pub mod error_log;
pub mod healthcheck;
pub mod ingest;
pub mod listen;
pub mod listener_auth;
pub mod log_throttle;
pub mod metrics;
pub mod mount;
pub mod net;
pub mod random;
pub mod relay;
pub mod reply;
pub mod server;
pub mod snapshot;
pub mod status;
pub mod supervisor;
pub mod sync;
pub mod systemd;
pub mod team;
pub mod tls;
pub mod web;
