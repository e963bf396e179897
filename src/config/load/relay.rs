//! The relay keys of the TOML file: `relays-on-demand`, `[[relay]]` and `[master]`, read
//! into [`RelayConfig`] and [`MasterConfig`]. Values that end up in request bytes (hosts,
//! mounts) are checked here so the relay client never sends a malformed request.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, Source};
use super::value::{ip_address, mount_name, optional_path, port, ranged};
use crate::config::{ClientTls, Config, MasterConfig, MasterTls, RelayConfig, RelayTiming};
use crate::http::url::host_safe;

/// Accepted `update-interval`, `grace-period` and `idle-timeout`, in seconds.
const SECONDS_RANGE: std::ops::RangeInclusive<u64> = 1..=86_400;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawRelay {
    server: Option<Spanned<String>>,
    port: Spanned<u16>,
    mount: Option<Spanned<String>>,
    local_mount: Option<Spanned<String>>,
    username: Option<String>,
    password: Option<String>,
    relay_metadata: Option<bool>,
    on_demand: Option<bool>,
    bind: Option<Spanned<String>>,
    grace_period: Option<Spanned<u64>>,
    idle_timeout: Option<Spanned<u64>>,
    tls: Option<bool>,
    ca_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawMaster {
    server: Spanned<String>,
    port: Option<Spanned<u16>>,
    username: Option<String>,
    password: Spanned<String>,
    update_interval: Option<Spanned<u64>>,
    on_demand: Option<bool>,
    grace_period: Option<Spanned<u64>>,
    idle_timeout: Option<Spanned<u64>>,
    tls_port: Option<Spanned<u16>>,
    ca_file: Option<Spanned<String>>,
}

pub(super) fn apply(
    src: &Source<'_>,
    cfg: &mut Config,
    relays_on_demand: Option<bool>,
    relays: Option<Vec<RawRelay>>,
    master: Option<RawMaster>,
) -> Result<(), ConfigError> {
    if let Some(v) = relays_on_demand {
        cfg.relays_on_demand = v;
    }
    let default_on_demand = cfg.relays_on_demand;
    for (i, r) in relays.into_iter().flatten().enumerate() {
        let relay = convert_relay(src, r, &format!("relay[{i}]"), default_on_demand)?;
        cfg.relays.push(relay);
    }
    // Two relays feeding one mount would fight over it forever.
    for (i, r) in cfg.relays.iter().enumerate() {
        if cfg.relays[..i]
            .iter()
            .any(|o| o.local_mount == r.local_mount)
        {
            return Err(ConfigError::at(
                src.origin,
                None,
                &format!("relay[{i}].local-mount"),
                format!("{} is already fed by another relay", r.local_mount),
            ));
        }
    }
    if let Some(m) = master {
        cfg.master = Some(convert_master(src, m, default_on_demand)?);
    }
    Ok(())
}

fn convert_relay(
    src: &Source<'_>,
    r: RawRelay,
    key: &str,
    default_on_demand: bool,
) -> Result<RelayConfig, ConfigError> {
    let k = |f: &str| format!("{key}.{f}");
    let server = match r.server {
        Some(s) => host(src, s, &k("server"))?,
        None => "127.0.0.1".to_string(),
    };
    let port = port(src, &r.port, &k("port"))?;
    // The upstream's path may be anything it serves; the local mount (by default the
    // same name) must be a name this server can mount.
    let local_mount = match (r.local_mount, r.mount.clone()) {
        (Some(m), _) => mount_name(
            src,
            request_path(src, m, &k("local-mount"))?,
            &k("local-mount"),
        )?,
        (None, Some(m)) => mount_name(src, request_path(src, m, &k("mount"))?, &k("mount"))?,
        // Checked last, so that the other keys' errors come first.
        (None, None) => String::new(),
    };
    let mount = match r.mount {
        Some(m) => request_path(src, m, &k("mount"))?.into_inner(),
        None => "/".to_string(),
    };
    let bind = r.bind.map(|b| ip_address(src, b, &k("bind"))).transpose()?;
    let timing = timing(src, key, r.grace_period, r.idle_timeout)?;
    if local_mount.is_empty() {
        return Err(src.invalid(
            r.port.span(),
            &k("mount"),
            "is required (or local-mount): the upstream's default `/` would shadow this \
             server's status page",
        ));
    }
    Ok(RelayConfig {
        server,
        port,
        mount,
        local_mount,
        username: r.username,
        password: r.password,
        relay_metadata: r.relay_metadata.unwrap_or(true),
        on_demand: r.on_demand.unwrap_or(default_on_demand),
        bind,
        timing,
        tls: ClientTls {
            enabled: r.tls.unwrap_or(false),
            ca_file: optional_path(src, r.ca_file, &k("ca-file"))?,
        },
    })
}

fn convert_master(
    src: &Source<'_>,
    m: RawMaster,
    default_on_demand: bool,
) -> Result<MasterConfig, ConfigError> {
    let server = host(src, m.server, "master.server")?;
    let port = match m.port {
        Some(p) => port(src, &p, "master.port")?,
        None => 8000,
    };
    if m.password.get_ref().is_empty() {
        return Err(src.invalid(
            m.password.span(),
            "master.password",
            "must not be empty (the master's relay-password)",
        ));
    }
    let update_interval = match m.update_interval {
        Some(v) => seconds(src, v, "master.update-interval")?,
        None => Duration::from_secs(120),
    };
    Ok(MasterConfig {
        server,
        port,
        username: m.username.unwrap_or_else(|| "relay".to_string()),
        password: m.password.into_inner(),
        update_interval,
        on_demand: m.on_demand.unwrap_or(default_on_demand),
        timing: timing(src, "master", m.grace_period, m.idle_timeout)?,
        tls: MasterTls {
            port: match m.tls_port {
                Some(p) => Some(super::value::port(src, &p, "master.tls-port")?),
                None => None,
            },
            ca_file: optional_path(src, m.ca_file, "master.ca-file")?,
        },
    })
}

fn timing(
    src: &Source<'_>,
    key: &str,
    grace: Option<Spanned<u64>>,
    idle: Option<Spanned<u64>>,
) -> Result<RelayTiming, ConfigError> {
    let mut t = RelayTiming::default();
    if let Some(g) = grace {
        t.grace_period = seconds(src, g, &format!("{key}.grace-period"))?;
    }
    if let Some(i) = idle {
        t.idle_timeout = seconds(src, i, &format!("{key}.idle-timeout"))?;
    }
    Ok(t)
}

fn seconds(src: &Source<'_>, v: Spanned<u64>, key: &str) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(ranged(
        src,
        &v,
        key,
        SECONDS_RANGE,
        " seconds",
    )?))
}

/// A host name or IP literal that can go into a `Host:` header as it is.
fn host(src: &Source<'_>, v: Spanned<String>, key: &str) -> Result<String, ConfigError> {
    let h = v.get_ref();
    if !host_safe(h) {
        return Err(src.invalid(
            v.span(),
            key,
            format!("must be a host name or IP address (got {h:?})"),
        ));
    }
    Ok(v.into_inner())
}

/// A mount path that can go into a request line: starts with '/', no spaces or controls.
fn request_path(
    src: &Source<'_>,
    v: Spanned<String>,
    key: &str,
) -> Result<Spanned<String>, ConfigError> {
    if v.get_ref().bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(src.invalid(
            v.span(),
            key,
            "must not contain spaces or control characters",
        ));
    }
    if !v.get_ref().starts_with('/') {
        return Err(src.invalid(
            v.span(),
            key,
            format!("must start with '/' (got {:?})", v.get_ref()),
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::time::Duration;

    #[test]
    fn relays_and_master_load_with_defaults() {
        let c = Config::from_toml_str(
            "relays-on-demand = true\n\
             [[relay]]\nserver = \"up.example.org\"\nport = 8000\nmount = \"/live\"\n\
             [[relay]]\nport = 9000\nmount = \"/a\"\nlocal-mount = \"/b\"\non-demand = false\n\
             relay-metadata = false\nusername = \"u\"\npassword = \"p\"\nbind = \"127.0.0.1\"\n\
             idle-timeout = 3\ngrace-period = 5\n\
             [master]\nserver = \"m.example.org\"\npassword = \"r\"\n",
            "t.toml",
        )
        .expect("valid");
        assert!(c.relays_on_demand);
        let a = &c.relays[0];
        assert_eq!(
            (
                a.server.as_str(),
                a.port,
                a.mount.as_str(),
                a.local_mount.as_str()
            ),
            ("up.example.org", 8000, "/live", "/live")
        );
        assert!(a.relay_metadata && a.on_demand);
        let b = &c.relays[1];
        assert_eq!(
            (b.server.as_str(), b.local_mount.as_str()),
            ("127.0.0.1", "/b")
        );
        assert!(!b.relay_metadata && !b.on_demand);
        assert_eq!(b.timing.idle_timeout, Duration::from_secs(3));
        assert_eq!(b.timing.grace_period, Duration::from_secs(5));
        let m = c.master.expect("master");
        assert_eq!((m.port, m.username.as_str()), (8000, "relay"));
        assert_eq!(m.update_interval, Duration::from_secs(120));
        assert!(m.on_demand);
    }

    #[test]
    fn bad_relay_values_name_key_and_line() {
        let cases = [
            ("[[relay]]\nport = 0\n", "relay[0].port", 2),
            (
                "[[relay]]\nport = 1\nmount = \"live\"\n",
                "relay[0].mount",
                3,
            ),
            (
                "[[relay]]\nport = 1\nmount = \"/a b\"\n",
                "relay[0].mount",
                3,
            ),
            (
                "[[relay]]\nport = 1\nserver = \"a b\"\n",
                "relay[0].server",
                3,
            ),
            ("[[relay]]\nport = 1\nbind = \"x\"\n", "relay[0].bind", 3),
            (
                "[[relay]]\nport = 1\nidle-timeout = 0\n",
                "relay[0].idle-timeout",
                3,
            ),
            (
                "[master]\nserver = \"m\"\npassword = \"\"\n",
                "master.password",
                3,
            ),
            (
                "[master]\nserver = \"m\"\npassword = \"p\"\nupdate-interval = 0\n",
                "master.update-interval",
                4,
            ),
        ];
        for (text, key, line) in cases {
            let e = Config::from_toml_str(text, "t.toml").expect_err(text);
            assert_eq!(e.key(), Some(key), "{text}: {e}");
            assert_eq!(e.line(), Some(line), "{text}: {e}");
        }
        let e = Config::from_toml_str(
            "[[relay]]\nport = 1\nmount = \"/a\"\n[[relay]]\nport = 2\nmount = \"/a\"\n",
            "t.toml",
        )
        .expect_err("duplicate");
        assert_eq!(e.key(), Some("relay[1].local-mount"));
        assert!(Config::from_toml_str("[[relay]]\nport = 1\nbogus = 1\n", "t").is_err());
    }
}
