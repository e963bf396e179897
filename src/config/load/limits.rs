//! `[limits]`: client and source counts, queue and burst sizes, header and source timeouts.
//! Also the queue/burst rule that `[[mount]]` sections are held to.

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, Source};
use super::value::{ranged, timeout};
use crate::config::Limits;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawLimits {
    clients: Option<Spanned<usize>>,
    sources: Option<Spanned<usize>>,
    queue_size: Option<Spanned<usize>>,
    burst_size: Option<Spanned<usize>>,
    header_timeout: Option<Spanned<u64>>,
    source_timeout: Option<Spanned<u64>>,
}

/// `[limits]` over the defaults in `l`; queue and burst sizes are checked together.
pub(super) fn apply(
    src: &Source<'_>,
    limits: RawLimits,
    l: &mut Limits,
) -> Result<(), ConfigError> {
    if let Some(v) = limits.clients {
        l.clients = ranged(src, &v, "limits.clients", 1.., "")?;
    }
    if let Some(v) = limits.sources {
        l.sources = ranged(src, &v, "limits.sources", 1.., "")?;
    }
    if let Some(v) = limits.header_timeout {
        l.header_timeout = timeout(src, v, "limits.header-timeout")?;
    }
    if let Some(v) = limits.source_timeout {
        l.source_timeout = timeout(src, v, "limits.source-timeout")?;
    }
    let burst = limits
        .burst_size
        .as_ref()
        .map_or(l.burst_size, |v| *v.get_ref());
    let queue = limits
        .queue_size
        .as_ref()
        .map_or(l.queue_size, |v| *v.get_ref());
    check_queue_burst(
        src,
        "limits",
        queue,
        burst,
        limits.queue_size.as_ref(),
        limits.burst_size.as_ref(),
    )?;
    l.queue_size = queue;
    l.burst_size = burst;
    Ok(())
}

/// `queue` and `burst` are the effective values (overrides resolved); the spans are those the
/// section itself sets. Blames queue-size when the section sets it, else burst-size.
pub(super) fn check_queue_burst(
    src: &Source<'_>,
    section: &str,
    queue: usize,
    burst: usize,
    queue_set: Option<&Spanned<usize>>,
    burst_set: Option<&Spanned<usize>>,
) -> Result<(), ConfigError> {
    if let Some(q) = queue_set {
        ranged(src, q, &format!("{section}.queue-size"), 1.., "")?;
    }
    if queue >= burst {
        return Ok(());
    }
    match (queue_set, burst_set) {
        (Some(q), _) => Err(src.invalid(
            q.span(),
            &format!("{section}.queue-size"),
            format!("must be at least burst-size ({burst})"),
        )),
        (None, Some(b)) => Err(src.invalid(
            b.span(),
            &format!("{section}.burst-size"),
            format!("must be at most queue-size ({queue})"),
        )),
        // Neither set here: the inherited values were validated where they were set.
        (None, None) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load::tests::{err, ok};

    #[test]
    fn queue_smaller_than_burst() {
        let e = err("[limits]\nclients = 100\nqueue-size = 1000\n");
        assert_eq!(e.line(), Some(3));
        assert_eq!(
            e.to_string(),
            "config error in floecast.toml line 3: limits.queue-size: \
             must be at least burst-size (65535)"
        );

        // Both set: queue-size is blamed.
        let e = err("[limits]\nburst-size = 2000\nqueue-size = 1000\n");
        assert_eq!((e.line(), e.key()), (Some(3), Some("limits.queue-size")));

        // Only burst-size set: burst-size is blamed.
        let e = err("[limits]\nburst-size = 600000\n");
        assert_eq!((e.line(), e.key()), (Some(2), Some("limits.burst-size")));

        // Per mount, resolved against the global values (from the file).
        let e =
            err("[limits]\nqueue-size = 100000\n[[mount]]\nname = \"/a\"\nburst-size = 200000\n");
        assert_eq!((e.line(), e.key()), (Some(5), Some("mount[0].burst-size")));
        let e = err("[[mount]]\nname = \"/a\"\nqueue-size = 1000\n");
        assert_eq!((e.line(), e.key()), (Some(3), Some("mount[0].queue-size")));
        assert!(e.message().contains("65535"), "{e}");

        // A mount may lower the burst below a global queue it doesn't change.
        let cfg = ok("[[mount]]\nname = \"/a\"\nqueue-size = 1000\nburst-size = 0\n");
        assert_eq!(cfg.mounts[0].queue_size, Some(1000));
        assert_eq!(cfg.mounts[0].burst_size, Some(0));

        let e = err("[limits]\nqueue-size = 0\nburst-size = 0\n");
        assert_eq!(e.key(), Some("limits.queue-size"));
    }
}
