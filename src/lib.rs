//! floecast: an Icecast-compatible streaming server with a P2PSP backplane.
//!
//! The data path, in order: `net` (the front door) → `ingest` (sources) → `format` (framing)
//! → `mount` (queues, fan-out state) → `listen` (the listener hot path). Beside it, `web` and
//! `admin` serve everything else through axum, and `config` holds the settings.

pub mod access_log;
pub mod admin;
pub mod app;
pub mod backoff;
pub mod banner;
pub mod clock;
pub mod config;
pub mod documents;
pub mod format;
pub mod http;
pub mod ingest;
pub mod listen;
pub mod listener_auth;
pub mod metrics;
pub mod mount;
pub mod net;
pub mod p2psp;
pub mod random;
pub mod reconcile;
pub mod relay;
pub mod server;
pub mod sim;
pub mod snapshot;
pub mod status;
pub mod supervisor;
pub mod sync;
pub mod team;
pub mod web;
