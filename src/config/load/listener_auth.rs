//! A mount's `authentication = { type = "htpasswd" | "url", … }`: listener authentication,
//! each backend's options refused on the other.

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, Source};
use super::value::{path, timeout};
use crate::config::{AuthBackend, ListenerAuth, UrlAuth};

/// `authentication = { type = "htpasswd", filename = "…", allow-duplicate-users = false }` or
/// `{ type = "url", listener-add = "http://…", … }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawListenerAuth {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    filename: Option<Spanned<String>>,
    allow_duplicate_users: Option<bool>,
    listener_add: Option<Spanned<String>>,
    listener_remove: Option<Spanned<String>>,
    username: Option<String>,
    password: Option<String>,
    auth_header: Option<String>,
    timelimit_header: Option<String>,
    headers: Option<Vec<String>>,
    header_prefix: Option<String>,
    timeout: Option<Spanned<u64>>,
    ca_file: Option<Spanned<String>>,
}

/// The URL auth backend speaks HTTP, or HTTPS verified against the system's roots or
/// `ca-file`.
fn auth_url(src: &Source<'_>, v: Spanned<String>, key: &str) -> Result<String, ConfigError> {
    if !v.get_ref().starts_with("http://") && !v.get_ref().starts_with("https://") {
        return Err(src.invalid(
            v.span(),
            key,
            format!("must be an http:// or https:// URL (got {:?})", v.get_ref()),
        ));
    }
    Ok(v.into_inner())
}

pub(super) fn convert(
    src: &Source<'_>,
    raw: RawListenerAuth,
    key: &str,
) -> Result<ListenerAuth, ConfigError> {
    let k = |field: &str| format!("{key}.{field}");
    let kind_span = raw.kind.span();
    let only = |field: &str, set: bool, for_type: &str| {
        if set {
            Err(src.invalid(
                kind_span.clone(),
                &k(field),
                format!("{field} is an option of type \"{for_type}\""),
            ))
        } else {
            Ok(())
        }
    };
    let backend = match raw.kind.get_ref().as_str() {
        "htpasswd" => {
            only("listener-add", raw.listener_add.is_some(), "url")?;
            only("listener-remove", raw.listener_remove.is_some(), "url")?;
            let Some(filename) = raw.filename else {
                return Err(src.invalid(
                    kind_span,
                    &k("filename"),
                    "htpasswd authentication needs a filename",
                ));
            };
            AuthBackend::Htpasswd {
                filename: path(src, filename, &k("filename"))?,
            }
        }
        "url" => {
            only("filename", raw.filename.is_some(), "htpasswd")?;
            let Some(add) = raw.listener_add else {
                return Err(src.invalid(
                    kind_span,
                    &k("listener-add"),
                    "url authentication needs listener-add",
                ));
            };
            let mut u = UrlAuth::new(auth_url(src, add, &k("listener-add"))?);
            u.listener_remove = raw
                .listener_remove
                .map(|r| auth_url(src, r, &k("listener-remove")))
                .transpose()?;
            u.username = raw.username;
            u.password = raw.password;
            if let Some(h) = raw.auth_header {
                u.auth_header = h;
            }
            if let Some(h) = raw.timelimit_header {
                u.timelimit_header = h;
            }
            u.headers = raw.headers.unwrap_or_default();
            if let Some(p) = raw.header_prefix {
                u.header_prefix = p;
            }
            if let Some(t) = raw.timeout {
                u.timeout = timeout(src, t, &k("timeout"))?;
            }
            if let Some(f) = raw.ca_file {
                u.ca_file = Some(path(src, f, &k("ca-file"))?);
            }
            AuthBackend::Url(u)
        }
        other => {
            return Err(src.invalid(
                kind_span,
                &k("type"),
                format!("must be \"htpasswd\" or \"url\" (got {other:?})"),
            ));
        }
    };
    Ok(ListenerAuth {
        backend,
        allow_duplicate_users: raw.allow_duplicate_users.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::load::tests::{err, ok};

    #[test]
    fn listener_authentication() {
        let c = ok(
            "[[mount]]\nname = \"/m\"\nauthentication = { type = \"htpasswd\", filename = \"u\" }\n",
        );
        assert_eq!(
            c.mount("/m").and_then(|m| m.authentication.clone()),
            Some(crate::config::ListenerAuth::htpasswd("u", false))
        );
        let e = err(
            "[[mount]]\nname = \"/m\"\nauthentication = { type = \"ldap\", filename = \"u\" }\n",
        );
        assert_eq!(
            (e.line(), e.key()),
            (Some(3), Some("mount[0].authentication.type"))
        );
        let e = err(
            "[[mount]]\nname = \"/m\"\nauthentication = { type = \"url\", filename = \"u\" }\n",
        );
        assert_eq!(e.key(), Some("mount[0].authentication.filename"));
        let e = err(
            "[[mount]]\nname = \"/m\"\nauthentication = { type = \"url\", listener-add = \"ftp://a/b\" }\n",
        );
        assert_eq!(e.key(), Some("mount[0].authentication.listener-add"));
        let c = ok(
            "[[mount]]\nname = \"/m\"\nauthentication = { type = \"url\", listener-add = \"https://a/b\", ca-file = \"/ca.pem\" }\n",
        );
        let mut want = crate::config::UrlAuth::new("https://a/b");
        want.ca_file = Some("/ca.pem".into());
        assert_eq!(
            c.mount("/m").and_then(|m| m.authentication.clone()),
            Some(crate::config::ListenerAuth {
                backend: crate::config::AuthBackend::Url(want),
                allow_duplicate_users: false,
            })
        );
        let c = ok(
            "[[mount]]\nname = \"/m\"\nauthentication = { type = \"url\", listener-add = \"http://a/add\", \
                    listener-remove = \"http://a/rm\", headers = [\"referer\"], timeout = 2, allow-duplicate-users = true }\n",
        );
        let mut want = crate::config::UrlAuth::new("http://a/add");
        want.listener_remove = Some("http://a/rm".into());
        want.headers = vec!["referer".into()];
        want.timeout = Duration::from_secs(2);
        assert_eq!(
            c.mount("/m").and_then(|m| m.authentication.clone()),
            Some(crate::config::ListenerAuth {
                backend: crate::config::AuthBackend::Url(want),
                allow_duplicate_users: true,
            })
        );
        let e = err("[[mount]]\nname = \"/m\"\nauthentication = { type = \"htpasswd\" }\n");
        assert_eq!(e.key(), Some("mount[0].authentication.filename"));
        let e = err(
            "[[mount]]\nname = \"/m\"\nauthentication = { type = \"htpasswd\", filename = \"\" }\n",
        );
        assert_eq!(e.key(), Some("mount[0].authentication.filename"));
    }
}
