//! `[tuning]`: the listener flush interval and the listen backlog.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, Source};
use super::value::ranged;
use crate::config::Tuning;

/// Longest `tuning.flush-interval-ms` accepted.
const MAX_FLUSH_INTERVAL_MS: u64 = 2000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawTuning {
    flush_interval_ms: Option<Spanned<u64>>,
    listen_backlog: Option<Spanned<u32>>,
}

pub(super) fn apply(
    src: &Source<'_>,
    tuning: RawTuning,
    out: &mut Tuning,
) -> Result<(), ConfigError> {
    if let Some(v) = tuning.flush_interval_ms {
        let ms = ranged(
            src,
            &v,
            "tuning.flush-interval-ms",
            ..=MAX_FLUSH_INTERVAL_MS,
            "",
        )?;
        out.flush_interval = Duration::from_millis(ms);
    }
    if let Some(v) = tuning.listen_backlog {
        out.listen_backlog = ranged(src, &v, "tuning.listen-backlog", 1..=65535, "")?;
    }
    Ok(())
}
