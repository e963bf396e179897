//! The checks values of several sections share: numbers in a range, timeouts, paths, mount
//! names, IP addresses, ports. Each returns the value or a [`ConfigError`] naming key and line.

use std::fmt;
use std::net::IpAddr;
use std::ops::{Bound, RangeBounds};
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::error::{ConfigError, Source};

/// Accepted range of `limits.header-timeout` and `source-timeout`, in seconds.
const TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 1..=3600;

/// The value of `v` when it lies in `range`, else an error at its line naming `key` and the
/// range: "must be between A and B", "must be at least A", "must be at most B" (`unit`
/// follows the numbers, e.g. " seconds"). Every numeric range check of the loader is this one.
pub(super) fn ranged<T, R>(
    src: &Source<'_>,
    v: &Spanned<T>,
    key: &str,
    range: R,
    unit: &str,
) -> Result<T, ConfigError>
where
    T: PartialOrd + Copy + fmt::Display,
    R: RangeBounds<T>,
{
    let value = *v.get_ref();
    if range.contains(&value) {
        return Ok(value);
    }
    let message = match (range.start_bound(), range.end_bound()) {
        (Bound::Included(a), Bound::Included(b)) => format!("must be between {a} and {b}{unit}"),
        (start, end) => {
            let low = match start {
                Bound::Included(a) => Some(format!("at least {a}{unit}")),
                Bound::Excluded(a) => Some(format!("greater than {a}{unit}")),
                Bound::Unbounded => None,
            };
            let high = match end {
                Bound::Included(b) => Some(format!("at most {b}{unit}")),
                Bound::Excluded(b) => Some(format!("less than {b}{unit}")),
                Bound::Unbounded => None,
            };
            let sides: Vec<String> = low.into_iter().chain(high).collect();
            format!("must be {}", sides.join(" and "))
        }
    };
    Err(src.invalid(v.span(), key, message))
}

/// A port number, which 0 is not.
pub(super) fn port(src: &Source<'_>, v: &Spanned<u16>, key: &str) -> Result<u16, ConfigError> {
    ranged(src, v, key, 1.., "").map_err(|e| e.reworded("must not be 0"))
}

/// `limits.header-timeout`, `source-timeout` and the like: whole seconds, 1 to 3600.
pub(super) fn timeout(
    src: &Source<'_>,
    v: Spanned<u64>,
    key: &str,
) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(ranged(
        src,
        &v,
        key,
        TIMEOUT_RANGE,
        " seconds",
    )?))
}

/// A file or directory name, which must not be empty.
pub(super) fn path(
    src: &Source<'_>,
    v: Spanned<String>,
    key: &str,
) -> Result<PathBuf, ConfigError> {
    if v.get_ref().is_empty() {
        return Err(src.invalid(v.span(), key, "must not be empty"));
    }
    Ok(PathBuf::from(v.into_inner()))
}

pub(super) fn optional_path(
    src: &Source<'_>,
    v: Option<Spanned<String>>,
    key: &str,
) -> Result<Option<PathBuf>, ConfigError> {
    v.map(|v| path(src, v, key)).transpose()
}

/// A mount name: a path starting with '/', without control characters, and none of the
/// server's own paths (`/admin/…`, `/api/…`, `/metrics`, the status documents, `/`).
pub(super) fn mount_name(
    src: &Source<'_>,
    v: Spanned<String>,
    key: &str,
) -> Result<String, ConfigError> {
    use crate::http::mount_name::{MountNameError, check};
    match check(v.get_ref()) {
        Ok(()) => Ok(v.into_inner()),
        Err(MountNameError::NoSlash) => Err(src.invalid(
            v.span(),
            key,
            format!("must start with '/' (got {:?})", v.get_ref()),
        )),
        Err(why) => Err(src.invalid(
            v.span(),
            key,
            format!("cannot be a mount: {why} (got {:?})", v.get_ref()),
        )),
    }
}

/// An IPv4 or IPv6 address to bind to.
pub(super) fn ip_address(
    src: &Source<'_>,
    v: Spanned<String>,
    key: &str,
) -> Result<String, ConfigError> {
    if v.get_ref().parse::<IpAddr>().is_err() {
        return Err(src.invalid(v.span(), key, "must be an IP address"));
    }
    Ok(v.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<R: RangeBounds<u32>>(value: u32, range: R) -> Result<u32, String> {
        let text = format!("v = {value}");
        let src = Source {
            text: &text,
            origin: "t.toml",
        };
        let v = Spanned::new(4..text.len(), value);
        ranged(&src, &v, "v", range, " s").map_err(|e| e.message().to_string())
    }

    #[test]
    fn ranged_names_the_range_in_every_shape() {
        assert_eq!(check(5, 1..=9), Ok(5));
        assert_eq!(check(0, 1..=9), Err("must be between 1 and 9 s".into()));
        assert_eq!(check(0, 1..), Err("must be at least 1 s".into()));
        assert_eq!(check(10, ..=9), Err("must be at most 9 s".into()));
        assert_eq!(check(9, ..9), Err("must be less than 9 s".into()));
        assert_eq!(
            check(9, 1..9),
            Err("must be at least 1 s and less than 9 s".into())
        );
    }
}
