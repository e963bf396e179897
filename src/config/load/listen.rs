//! `[[listen]]`: the sockets the server listens on, each optionally with a SHOUTcast v1 source
//! port at port + 1 and a TLS mode. The list replaces the default socket as a whole.

use std::net::IpAddr;

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, Source};
use super::value::{mount_name, port};
use crate::config::{ListenSocket, TlsMode};

/// Most `[[listen]]` sockets a configuration may declare.
const MAX_LISTEN_SOCKETS: usize = 16;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawListen {
    port: Spanned<u16>,
    bind_address: Option<Spanned<String>>,
    shoutcast_mount: Option<Spanned<String>>,
    /// Expect a PROXY protocol header (v1 or v2) from `access.trusted-proxies`.
    proxy_protocol: Option<Spanned<bool>>,
    tls: Option<Spanned<String>>,
}

/// The sockets, and the indices of those with `proxy-protocol = true` (which needs
/// `trusted`: some `access.trusted-proxies`).
pub(super) fn convert(
    src: &Source<'_>,
    listen: Spanned<Vec<Spanned<RawListen>>>,
    trusted: bool,
    have_certificates: bool,
) -> Result<(Vec<ListenSocket>, Vec<usize>), ConfigError> {
    let span = listen.span();
    let listen = listen.into_inner();
    if listen.is_empty() {
        return Err(src.invalid(span, "listen", "at least one listen socket is required"));
    }
    if let Some(extra) = listen.get(MAX_LISTEN_SOCKETS) {
        return Err(src.invalid(
            extra.get_ref().port.span(),
            &format!("listen[{MAX_LISTEN_SOCKETS}]"),
            format!("at most {MAX_LISTEN_SOCKETS} listen sockets are allowed"),
        ));
    }
    let mut out = Vec::with_capacity(listen.len());
    let mut proxied = Vec::new();
    for (i, l) in listen.into_iter().enumerate() {
        let l = l.into_inner();
        let key = format!("listen[{i}]");
        let port = port(src, &l.port, &format!("{key}.port"))?;
        let bind_address = match l.bind_address {
            Some(addr) => {
                if addr.get_ref().parse::<IpAddr>().is_err() {
                    return Err(src.invalid(
                        addr.span(),
                        &format!("{key}.bind-address"),
                        format!("not an IPv4 or IPv6 address: {:?}", addr.get_ref()),
                    ));
                }
                Some(addr.into_inner())
            }
            None => None,
        };
        let shoutcast_mount = match l.shoutcast_mount {
            Some(m) => {
                if port == u16::MAX {
                    return Err(src.invalid(
                        m.span(),
                        &format!("{key}.shoutcast-mount"),
                        "needs port + 1 for the SHOUTcast source port, but port is 65535",
                    ));
                }
                Some(mount_name(src, m, &format!("{key}.shoutcast-mount"))?)
            }
            None => None,
        };
        if let Some(p) = l.proxy_protocol {
            if *p.get_ref() {
                if !trusted {
                    return Err(src.invalid(
                        p.span(),
                        &format!("{key}.proxy-protocol"),
                        "needs access.trusted-proxies: PROXY headers are believed from those only",
                    ));
                }
                proxied.push(i);
            }
        }
        let tls = match l.tls {
            Some(t) => tls_mode(src, t, &format!("{key}.tls"), have_certificates)?,
            None => TlsMode::Auto,
        };
        out.push(ListenSocket {
            port,
            bind_address,
            shoutcast_mount,
            tls,
        });
    }
    Ok((out, proxied))
}

/// `tls = "auto" | "required" | "off"`; "required" needs a `[[tls]]` certificate.
fn tls_mode(
    src: &Source<'_>,
    v: Spanned<String>,
    key: &str,
    have_certificates: bool,
) -> Result<TlsMode, ConfigError> {
    match v.get_ref().as_str() {
        "auto" => Ok(TlsMode::Auto),
        "off" => Ok(TlsMode::Off),
        "required" if have_certificates => Ok(TlsMode::Required),
        "required" => Err(src.invalid(
            v.span(),
            key,
            "\"required\" needs a certificate: add a [[tls]] table with certificate (and private-key)",
        )),
        other => Err(src.invalid(
            v.span(),
            key,
            format!("must be \"auto\", \"required\" or \"off\", not {other:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load::tests::{err, ok};

    #[test]
    fn too_many_listen_sockets() {
        let mut text = String::new();
        for port in 8000..8017 {
            text.push_str(&format!("[[listen]]\nport = {port}\n"));
        }
        let e = err(&text);
        assert_eq!(e.key(), Some("listen[16]"));
        assert_eq!(e.line(), Some(34));
        text.truncate(text.rfind("[[listen]]").unwrap_or(0));
        assert_eq!(ok(&text).listen.len(), 16);
    }
}
