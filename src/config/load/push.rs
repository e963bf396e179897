//! `[[push]]`: local mounts sent to remote servers as their source. Hosts, mounts and
//! credentials are checked here, so the push client never sends a malformed request.

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, Source};
use super::value::{ip_address, mount_name, ranged};
use crate::config::{PushConfig, PushProtocol};

/// `[[push]]`: send a local mount to a remote server as its source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawPush {
    mount: Spanned<String>,
    server: Spanned<String>,
    port: Option<Spanned<u16>>,
    remote_mount: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    password: Spanned<String>,
    protocol: Option<Spanned<String>>,
    bind: Option<Spanned<String>>,
    tls: Option<bool>,
    ca_file: Option<Spanned<String>>,
}

/// The remote port a push uses when `port` is left out (icecast's default).
const DEFAULT_PUSH_PORT: u16 = 8000;

fn convert(src: &Source<'_>, p: RawPush, key: &str) -> Result<PushConfig, ConfigError> {
    let k = |field: &str| format!("{key}.{field}");
    if p.mount.get_ref().contains(['*', '?', '[']) {
        return Err(src.invalid(
            p.mount.span(),
            &k("mount"),
            "a push needs an exact mount name, not a glob",
        ));
    }
    let mount = mount_name(src, p.mount, &k("mount"))?;
    let host = p.server.get_ref();
    // A host name or IP literal: no scheme, path, port or whitespace (those go elsewhere).
    if host.is_empty()
        || host.contains("://")
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '@' | '?' | '#'))
    {
        return Err(src.invalid(
            p.server.span(),
            &k("server"),
            format!("must be a host name or IP address (got {host:?})"),
        ));
    }
    let port = match p.port {
        Some(port) => ranged(src, &port, &k("port"), 1..=u16::MAX, "")?,
        None => DEFAULT_PUSH_PORT,
    };
    let remote_mount = match p.remote_mount {
        Some(r) => mount_name(src, r, &k("remote-mount"))?,
        None => mount.clone(),
    };
    let username = match p.username {
        Some(u) => {
            // Basic auth splits `user:password` at the first colon.
            let bad =
                u.get_ref().is_empty() || u.get_ref().chars().any(|c| c == ':' || c.is_control());
            if bad {
                return Err(src.invalid(
                    u.span(),
                    &k("username"),
                    "must be non-empty, without ':' or control characters",
                ));
            }
            u.into_inner()
        }
        None => "source".to_string(),
    };
    if p.password.get_ref().is_empty() || p.password.get_ref().chars().any(char::is_control) {
        return Err(src.invalid(
            p.password.span(),
            &k("password"),
            "must be non-empty, without control characters",
        ));
    }
    let protocol = match p.protocol.as_ref().map(|v| v.get_ref().as_str()) {
        None | Some("auto") => PushProtocol::Auto,
        Some("put") => PushProtocol::Put,
        Some("source") => PushProtocol::Source,
        Some(other) => {
            let span = p.protocol.as_ref().map(|v| v.span()).unwrap_or_default();
            return Err(src.invalid(
                span,
                &k("protocol"),
                format!("must be \"auto\", \"put\" or \"source\" (got {other:?})"),
            ));
        }
    };
    let bind = p.bind.map(|b| ip_address(src, b, &k("bind"))).transpose()?;
    Ok(PushConfig {
        mount,
        server: p.server.into_inner(),
        port,
        remote_mount,
        username,
        password: p.password.into_inner(),
        protocol,
        bind,
        tls: crate::config::ClientTls {
            enabled: p.tls.unwrap_or(false),
            ca_file: super::value::optional_path(src, p.ca_file, &k("ca-file"))?,
        },
    })
}

/// `[[push]]` tables in order; two pushes to the same remote mount would fight over it.
pub(super) fn convert_all(
    src: &Source<'_>,
    raw: Vec<RawPush>,
) -> Result<Vec<PushConfig>, ConfigError> {
    let mut out: Vec<PushConfig> = Vec::with_capacity(raw.len());
    for (i, p) in raw.into_iter().enumerate() {
        let key = format!("push[{i}]");
        let span = p.mount.span();
        let push = convert(src, p, &key)?;
        let twin = out.iter().position(|o| {
            o.server.eq_ignore_ascii_case(&push.server)
                && o.port == push.port
                && o.remote_mount == push.remote_mount
        });
        if let Some(j) = twin {
            return Err(src.invalid(
                span,
                &key,
                format!(
                    "push[{j}] already sends to {}:{}{}",
                    push.server, push.port, push.remote_mount
                ),
            ));
        }
        out.push(push);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::config::PushProtocol;
    use crate::config::load::tests::{err, ok};

    #[test]
    fn push_defaults_and_protocols() {
        let cfg = ok(
            "[[push]]\nmount = \"/a\"\nserver = \"10.0.0.2\"\npassword = \"pw\"\n\
                      [[push]]\nmount = \"/a\"\nserver = \"h\"\nport = 9000\nremote-mount = \"/b\"\n\
                      username = \"dj\"\npassword = \"pw\"\nprotocol = \"source\"\n",
        );
        assert_eq!(cfg.pushes.len(), 2);
        let a = &cfg.pushes[0];
        assert_eq!(
            (a.port, a.remote_mount.as_str(), a.username.as_str()),
            (8000, "/a", "source")
        );
        assert_eq!(a.protocol, PushProtocol::Auto);
        assert_eq!(a.bind, None);
        let b = &cfg.pushes[1];
        assert_eq!(
            (b.port, b.remote_mount.as_str(), b.username.as_str()),
            (9000, "/b", "dj")
        );
        assert_eq!(b.protocol, PushProtocol::Source);
    }

    #[test]
    fn push_validation_names_key_and_line() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "[[push]]\nmount = \"a\"\nserver = \"h\"\npassword = \"p\"\n",
                "push[0].mount",
                "must start with '/'",
            ),
            (
                "[[push]]\nmount = \"/l/*\"\nserver = \"h\"\npassword = \"p\"\n",
                "push[0].mount",
                "not a glob",
            ),
            (
                "[[push]]\nmount = \"/a\"\nserver = \"http://h\"\npassword = \"p\"\n",
                "push[0].server",
                "host name",
            ),
            (
                "[[push]]\nmount = \"/a\"\nserver = \"h\"\nport = 0\npassword = \"p\"\n",
                "push[0].port",
                "between 1",
            ),
            (
                "[[push]]\nmount = \"/a\"\nserver = \"h\"\nport = 70000\npassword = \"p\"\n",
                "push[0].port",
                "",
            ),
            (
                "[[push]]\nmount = \"/a\"\nserver = \"h\"\npassword = \"\"\n",
                "push[0].password",
                "non-empty",
            ),
            (
                "[[push]]\nmount = \"/a\"\nserver = \"h\"\nusername = \"a:b\"\npassword = \"p\"\n",
                "push[0].username",
                "':'",
            ),
            (
                "[[push]]\nmount = \"/a\"\nserver = \"h\"\npassword = \"p\"\nprotocol = \"icy\"\n",
                "push[0].protocol",
                "\"auto\"",
            ),
            (
                "[[push]]\nmount = \"/a\"\nserver = \"h\"\npassword = \"p\"\nbind = \"eth0\"\n",
                "push[0].bind",
                "IP address",
            ),
            (
                "[[push]]\nmount = \"/a\"\nserver = \"h\"\npassword = \"p\"\nremote-mount = \"x\"\n",
                "push[0].remote-mount",
                "must start with '/'",
            ),
            (
                "[[push]]\nmount = \"/a\"\nserver = \"h\"\npassword = \"p\"\nretry = 1\n",
                "push[0].retry",
                "unknown field",
            ),
            (
                "[[push]]\nmount = \"/a\"\nserver = \"h\"\npassword = \"p\"\n[[push]]\nmount = \"/b\"\nserver = \"H\"\nremote-mount = \"/a\"\npassword = \"p\"\n",
                "push[1]",
                "already sends to",
            ),
        ];
        for (text, key, msg) in cases {
            let e = err(text);
            assert_eq!(e.key(), Some(*key), "{text}: {e}");
            assert!(e.line().is_some(), "{text}: {e}");
            assert!(e.message().contains(msg), "{text}: {e}");
        }
        // A missing password is reported, not defaulted.
        let e = err("[[push]]\nmount = \"/a\"\nserver = \"h\"\n");
        assert!(e.to_string().contains("password"), "{e}");
    }
}
