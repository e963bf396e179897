//! `[access]`: trusted proxies (whose `X-Forwarded-For` and PROXY headers are believed),
//! icecast's deny/allow files and the per-address connection limit.

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, Source};
use super::value::{optional_path, ranged};
use crate::config::Access;

/// Most `trusted-proxies` entries.
const MAX_PROXIES: usize = 256;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawAccess {
    trusted_proxies: Option<Spanned<Vec<Spanned<String>>>>,
    deny_ip_file: Option<Spanned<String>>,
    allow_ip_file: Option<Spanned<String>>,
    max_connections_per_ip: Option<Spanned<usize>>,
}

pub(super) fn apply(src: &Source<'_>, raw: RawAccess, a: &mut Access) -> Result<(), ConfigError> {
    if let Some(list) = raw.trusted_proxies {
        if list.get_ref().len() > MAX_PROXIES {
            return Err(src.invalid(
                list.span(),
                "access.trusted-proxies",
                format!("at most {MAX_PROXIES} entries"),
            ));
        }
        a.trusted_proxies = list
            .into_inner()
            .into_iter()
            .map(|p| {
                p.get_ref()
                    .parse()
                    .map_err(|e: crate::door::cidr::CidrError| {
                        src.invalid(p.span(), "access.trusted-proxies", e.to_string())
                    })
            })
            .collect::<Result<_, _>>()?;
    }
    a.deny_ip_file = optional_path(src, raw.deny_ip_file, "access.deny-ip-file")?;
    a.allow_ip_file = optional_path(src, raw.allow_ip_file, "access.allow-ip-file")?;
    if let Some(v) = raw.max_connections_per_ip {
        a.max_connections_per_ip =
            ranged(src, &v, "access.max-connections-per-ip", 0..=100_000, "")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::load::tests::{err, ok};

    #[test]
    fn access_section() {
        let cfg = ok("[access]\ntrusted-proxies = [\"10.0.0.0/8\", \"::1\"]\n\
             deny-ip-file = \"/etc/deny\"\nmax-connections-per-ip = 4\n\
             [[listen]]\nport = 8000\nproxy-protocol = true\n[[listen]]\nport = 8001\n");
        assert!(cfg.access.is_trusted_proxy("10.9.8.7".parse().unwrap()));
        assert!(cfg.access.is_trusted_proxy("::1".parse().unwrap()));
        assert!(!cfg.access.is_trusted_proxy("192.0.2.1".parse().unwrap()));
        assert_eq!(cfg.access.max_connections_per_ip, 4);
        assert_eq!(cfg.access.proxy_protocol_sockets, vec![0]);
        assert_eq!(
            cfg.access.deny_ip_file.as_deref(),
            Some(std::path::Path::new("/etc/deny"))
        );
        let e = err("[access]\ntrusted-proxies = [\"10.0.0.0/33\"]\n");
        assert_eq!(
            (e.key(), e.line()),
            (Some("access.trusted-proxies"), Some(2))
        );
        // PROXY headers are believed from trusted proxies only: there must be some.
        let e = err("[[listen]]\nport = 8000\nproxy-protocol = true\n");
        assert_eq!(
            (e.key(), e.line()),
            (Some("listen[0].proxy-protocol"), Some(3))
        );
    }
}
