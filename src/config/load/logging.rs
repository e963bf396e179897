//! `[logging]`: the access and error log files and the log level (a `tracing` filter, checked
//! here).

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, Source};
use super::value::path;
use crate::config::Logging;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawLogging {
    access_log: Option<Spanned<String>>,
    error_log: Option<Spanned<String>>,
    level: Option<Spanned<String>>,
}

pub(super) fn apply(
    src: &Source<'_>,
    logging: RawLogging,
    out: &mut Logging,
) -> Result<(), ConfigError> {
    if let Some(p) = logging.access_log {
        out.access_log = Some(path(src, p, "logging.access-log")?);
    }
    if let Some(p) = logging.error_log {
        out.error_log = Some(path(src, p, "logging.error-log")?);
    }
    if let Some(level) = logging.level {
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(level.get_ref()) {
            return Err(src.invalid(
                level.span(),
                "logging.level",
                format!("not a valid tracing filter: {e}"),
            ));
        }
        out.level = Some(level.into_inner());
    }
    Ok(())
}
