//! Loading the configuration from TOML, with errors that name the key and the line.
//!
//! Loading is two-staged: the file is deserialized into a "raw" layer of serde structs that
//! mirror the file (kebab-case keys like `icecast.xml`, unknown keys rejected, validated values
//! wrapped in [`toml::Spanned`] to keep their position), then the raw layer is validated and
//! laid over [`Config::default`]: a file overrides only the keys it sets. Two lists are
//! replaced wholesale rather than merged: `[[listen]]` and the global `[[http-header]]`
//! (`http-header = []` removes the default `Access-Control-Allow-Origin: *`).
//!
//! One file per section of the file, each with its raw struct, its checks and its tests; the
//! checks several sections share (ranges, timeouts, paths, mount names) are in `value`, and
//! errors and their positions in `error`. Nothing here panics on any input; every failure is a
//! [`ConfigError`].

mod access;
mod error;
mod headers;
mod limits;
mod listen;
mod listener_auth;
mod logging;
mod mount;
mod p2psp;
mod paths;
mod push;
mod relay;
mod tls;
mod tuning;
mod value;

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::Config;
pub use error::ConfigError;
use error::Source;

impl Config {
    /// Parses and validates a TOML configuration, starting from [`Config::default`].
    ///
    /// `origin` names the text in error messages (usually the file name).
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let src = Source { text, origin };
        let raw: RawConfig = toml::from_str(text).map_err(|e| src.toml_error(&e))?;
        raw.into_config(&src)
    }

    /// Reads, parses and validates the configuration file at `path` (TOML, or icecast2's
    /// `icecast.xml`), logging its warnings with `tracing`. Used on reload, when logging runs;
    /// at start-up, before logging is set up, call [`Config::load_with_warnings`] instead.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let loaded = Config::load_with_warnings(path)?;
        for w in &loaded.warnings {
            match w.severity {
                super::Severity::Danger => tracing::error!("{}: {w}", loaded.origin),
                super::Severity::Notice => tracing::warn!("{}: {w}", loaded.origin),
            }
        }
        Ok(loaded.config)
    }

    /// Reads, parses and validates the configuration file at `path`, and returns what in it
    /// floecast accepts but does not carry out as written (icecast.xml options it ignores,
    /// mounts left open), for the caller to show: `serve` at start-up, `check-config`.
    pub fn load_with_warnings(path: &Path) -> Result<Loaded, ConfigError> {
        let origin = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError::unreadable(&origin, e))?;
        // icecast2's own config runs as it is: converted, then loaded like any TOML file.
        if super::icecast_xml::looks_like_xml(path, &text) {
            let converted = super::icecast_xml::to_toml(&text, &origin)?;
            let config = converted.load()?;
            return Ok(Loaded {
                config,
                warnings: converted.warnings,
                origin,
            });
        }
        Ok(Loaded {
            config: Config::from_toml_str(&text, &origin)?,
            warnings: Vec::new(),
            origin,
        })
    }
}

/// A loaded configuration and the warnings about it.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    /// Options accepted but not carried out as written, in file order.
    pub warnings: Vec<super::ConfigWarning>,
    /// The file name, to prefix the warnings with.
    pub origin: String,
}

// The raw layer: exactly what the file says; each section's struct is in its module.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    hostname: Option<Spanned<String>>,
    location: Option<String>,
    admin: Option<String>,
    server_id: Option<String>,
    listen: Option<Spanned<Vec<Spanned<listen::RawListen>>>>,
    limits: Option<limits::RawLimits>,
    access: Option<access::RawAccess>,
    authentication: Option<RawAuth>,
    paths: Option<paths::RawPaths>,
    logging: Option<logging::RawLogging>,
    tuning: Option<tuning::RawTuning>,
    http_header: Option<Vec<headers::RawHeader>>,
    mount: Option<Vec<Spanned<mount::RawMount>>>,
    mount_defaults: Option<Spanned<mount::RawMount>>,
    push: Option<Vec<push::RawPush>>,
    relays_on_demand: Option<bool>,
    relay: Option<Vec<relay::RawRelay>>,
    master: Option<relay::RawMaster>,
    tls: Option<Spanned<Vec<tls::RawTls>>>,
}

/// `[authentication]`: the source, relay and admin credentials (plain strings).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawAuth {
    source_password: Option<String>,
    relay_user: Option<String>,
    relay_password: Option<String>,
    admin_user: Option<String>,
    admin_password: Option<String>,
}

impl RawConfig {
    /// Validates the sections in a fixed order (the first error found is the one reported),
    /// each laid over the defaults.
    fn into_config(self, src: &Source<'_>) -> Result<Config, ConfigError> {
        let mut cfg = Config::default();

        if let Some(hostname) = self.hostname {
            if hostname.get_ref().trim().is_empty() {
                return Err(src.invalid(hostname.span(), "hostname", "must not be empty"));
            }
            cfg.hostname = hostname.into_inner();
        }
        set(&mut cfg.location, self.location);
        set(&mut cfg.admin, self.admin);
        set(&mut cfg.server_id, self.server_id);

        // Before the sockets: a PROXY protocol socket needs trusted proxies, and
        // tls = "required" needs a certificate.
        if let Some(a) = self.access {
            access::apply(src, a, &mut cfg.access)?;
        }
        if let Some(t) = self.tls {
            cfg.tls = tls::convert(src, t)?;
        }
        if let Some(l) = self.listen {
            let trusted = !cfg.access.trusted_proxies.is_empty();
            (cfg.listen, cfg.access.proxy_protocol_sockets) =
                listen::convert(src, l, trusted, !cfg.tls.is_empty())?;
        }
        if let Some(l) = self.limits {
            limits::apply(src, l, &mut cfg.limits)?;
        }
        if let Some(auth) = self.authentication {
            let a = &mut cfg.auth;
            set(&mut a.source_password, auth.source_password);
            set(&mut a.relay_user, auth.relay_user);
            set(&mut a.relay_password, auth.relay_password);
            set(&mut a.admin_user, auth.admin_user);
            set(&mut a.admin_password, auth.admin_password);
        }
        if let Some(p) = self.paths {
            paths::apply(src, p, &mut cfg.paths)?;
        }
        if let Some(l) = self.logging {
            logging::apply(src, l, &mut cfg.logging)?;
        }
        if let Some(t) = self.tuning {
            tuning::apply(src, t, &mut cfg.tuning)?;
        }
        if let Some(h) = self.http_header {
            cfg.http_headers = headers::convert(src, h, "http-header")?;
        }
        mount::apply(src, &mut cfg, self.mount_defaults, self.mount)?;
        if let Some(p) = self.push {
            cfg.pushes = push::convert_all(src, p)?;
        }
        relay::apply(
            src,
            &mut cfg,
            self.relays_on_demand,
            self.relay,
            self.master,
        )?;

        Ok(cfg)
    }
}

fn set(target: &mut String, value: Option<String>) {
    if let Some(v) = value {
        *target = v;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{HttpHeader, ListenSocket, PushConfig, PushProtocol, TlsMode};

    const EXAMPLE: &str = include_str!("../../../config/floecast.toml");

    pub(super) fn err(text: &str) -> ConfigError {
        match Config::from_toml_str(text, "floecast.toml") {
            Ok(cfg) => panic!("expected an error, got {cfg:?}"),
            Err(e) => e,
        }
    }

    pub(super) fn ok(text: &str) -> Config {
        match Config::from_toml_str(text, "floecast.toml") {
            Ok(cfg) => cfg,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    /// The example file with every optional example (`#key`, `#[table]`) enabled.
    fn example_uncommented() -> String {
        EXAMPLE
            .lines()
            .map(|line| match line.strip_prefix('#') {
                Some(rest) if rest.starts_with(|c: char| c == '[' || c.is_ascii_lowercase()) => {
                    rest
                }
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn empty_file_is_default() {
        assert_eq!(ok(""), Config::default());
        assert_eq!(ok("# only a comment\n\n"), Config::default());
    }

    #[test]
    fn example_file_as_shipped_equals_defaults() {
        assert_eq!(ok(EXAMPLE), Config::default());
    }

    #[test]
    fn example_file_with_all_examples_enabled() {
        let cfg = ok(&example_uncommented());
        assert_eq!(cfg.server_id, "Icecast 2.4.4");
        assert_eq!(
            cfg.listen,
            vec![
                ListenSocket {
                    port: 8000,
                    bind_address: Some("::".into()),
                    shoutcast_mount: None,
                    tls: TlsMode::Auto,
                },
                ListenSocket {
                    port: 8002,
                    bind_address: Some("127.0.0.1".into()),
                    shoutcast_mount: Some("/stream".into()),
                    tls: TlsMode::Auto,
                },
            ]
        );
        assert_eq!(cfg.access.proxy_protocol_sockets, [1]);
        assert_eq!(cfg.access.max_connections_per_ip, 0);
        assert_eq!(cfg.access.trusted_proxies.len(), 2);
        assert_eq!(cfg.tls.len(), 2);
        assert_eq!(cfg.tls[1].private_key, None);
        assert_eq!(
            cfg.paths.webroot.as_deref(),
            Some(Path::new("/usr/share/floecast/web"))
        );
        assert_eq!(
            cfg.paths.pidfile.as_deref(),
            Some(Path::new("/run/floecast/floecast.pid"))
        );
        assert_eq!(
            cfg.logging.access_log.as_deref(),
            Some(Path::new("/var/log/floecast/access.log"))
        );
        assert_eq!(cfg.logging.level.as_deref(), Some("info"));
        assert_eq!(cfg.http_headers[0].status, Some(200));
        assert_eq!(cfg.mounts.len(), 5);
        assert!(matches!(
            cfg.mount("/team.ogg").and_then(|m| m.p2psp.clone()),
            Some(super::super::P2pspConfig::Splitter(s)) if s.port == 8001
        ));
        assert!(matches!(
            cfg.mount("/from-a.ogg").and_then(|m| m.p2psp.clone()),
            Some(super::super::P2pspConfig::Peer {
                compat: false,
                serve: None,
                ..
            })
        ));

        let complex = &cfg.mounts[0];
        assert_eq!(complex.name, "/example-complex.ogg");
        assert_eq!(complex.username.as_deref(), Some("othersource"));
        assert_eq!(complex.password.as_deref(), Some("hackmemore"));
        assert_eq!(complex.max_listeners, Some(1));
        assert_eq!(
            complex.dump_file.as_deref(),
            Some(Path::new("/tmp/dump-example1.ogg"))
        );
        assert_eq!(complex.burst_size, Some(65536));
        assert_eq!(complex.queue_size, Some(524288));
        assert_eq!(complex.source_timeout, Some(Duration::from_secs(10)));
        assert_eq!(complex.fallback_mount.as_deref(), Some("/example2.ogg"));
        assert_eq!(
            (
                complex.fallback_override,
                complex.fallback_when_full,
                complex.hidden
            ),
            (Some(true), Some(true), Some(true))
        );
        assert_eq!(complex.fallback_after_silence, Some(Duration::from_secs(2)));
        assert_eq!(complex.icy_metadata_in_ogg, Some(true));
        assert_eq!(complex.public, Some(false));
        assert_eq!(
            complex.intro.as_deref(),
            Some(Path::new("/example_intro.ogg"))
        );
        assert_eq!(complex.stream_name.as_deref(), Some("My audio stream"));
        assert_eq!(
            complex.stream_description.as_deref(),
            Some("My audio description")
        );
        assert_eq!(complex.stream_url.as_deref(), Some("http://some.place.com"));
        assert_eq!(complex.genre.as_deref(), Some("classical"));
        assert_eq!(complex.bitrate.as_deref(), Some("64"));
        assert_eq!(complex.content_type.as_deref(), Some("application/ogg"));
        assert_eq!(complex.subtype.as_deref(), Some("vorbis"));
        assert_eq!(
            complex.on_connect.as_deref(),
            Some(Path::new("/home/icecast/bin/stream-start"))
        );
        assert_eq!(
            complex.on_disconnect.as_deref(),
            Some(Path::new("/home/icecast/bin/stream-stop"))
        );
        assert_eq!(
            complex.http_headers,
            vec![HttpHeader {
                name: "X-Example".into(),
                value: "bar".into(),
                status: None,
            }]
        );

        assert_eq!(
            complex.authentication,
            Some(crate::config::ListenerAuth::htpasswd(
                "/etc/floecast/example-complex.htpasswd",
                false
            ))
        );

        let live = cfg.mount("/live/studio").map(|m| m.name.clone());
        assert_eq!(live.as_deref(), Some("/live/*"));
        let live = &cfg.mounts[1];
        let mut url = crate::config::UrlAuth::new("http://127.0.0.1/auth/add");
        url.listener_remove = Some("http://127.0.0.1/auth/remove".into());
        url.username = Some("icecast".into());
        url.password = Some("secret".into());
        url.headers = vec!["Referer".into()];
        assert_eq!(
            live.authentication,
            Some(crate::config::ListenerAuth {
                backend: crate::config::AuthBackend::Url(url),
                allow_duplicate_users: false,
            })
        );
        assert_eq!(live.bitrate.as_deref(), Some("128"));
        assert_eq!(live.charset.as_deref(), Some("UTF-8"));
        assert_eq!(live.mp3_metadata_interval, Some(16000));
        assert_eq!(live.fallback_mount.as_deref(), Some("/fallback.mp3"));
        assert_eq!(
            cfg.mount("/fallback.mp3")
                .and_then(|m| m.stream_name.clone()),
            Some("Off air".to_string())
        );
        // Mounts no table names get [mount-defaults] alone.
        let defaults_only = |m: &str| cfg.mount(m).map(|c| (c.name.clone(), c.max_listeners));
        assert_eq!(defaults_only("/live"), Some((String::new(), Some(1000))));
        assert_eq!(
            defaults_only("/live/a/b"),
            Some((String::new(), Some(1000)))
        );
        assert_eq!(
            cfg.mount("/live/studio")
                .and_then(|m| m.genre.clone())
                .as_deref(),
            Some("various")
        );

        assert_eq!(
            cfg.pushes,
            vec![PushConfig {
                mount: "/live.mp3".into(),
                server: "backup.example.org".into(),
                port: 8000,
                remote_mount: "/live.mp3".into(),
                username: "source".into(),
                password: "remote-source-password".into(),
                protocol: PushProtocol::Auto,
                bind: Some("0.0.0.0".into()),
                tls: Default::default(),
            }]
        );
    }

    #[test]
    fn file_overrides_only_what_it_sets() {
        let cfg = ok("hostname = \"radio.example\"\n[limits]\nclients = 5000\n");
        let defaults = Config::default();
        let expected = Config {
            hostname: "radio.example".into(),
            limits: crate::config::Limits {
                clients: 5000,
                ..defaults.limits.clone()
            },
            ..defaults
        };
        assert_eq!(cfg, expected);
    }

    #[test]
    fn lists_replace_defaults() {
        let cfg = ok("http-header = []\n[[listen]]\nport = 9000\n");
        assert!(cfg.http_headers.is_empty());
        assert_eq!(cfg.listen.len(), 1);
        assert_eq!(cfg.listen[0].port, 9000);
        assert_eq!(cfg.listen[0].bind_address, None);

        let cfg = ok("[[http-header]]\nname = \"X-A\"\nvalue = \"1\"\nstatus = 404\n");
        assert_eq!(
            cfg.http_headers,
            vec![HttpHeader {
                name: "X-A".into(),
                value: "1".into(),
                status: Some(404),
            }]
        );
    }

    #[test]
    fn range_checks() {
        let cases: &[(&str, &str, usize)] = &[
            ("[[listen]]\nport = 0\n", "listen[0].port", 2),
            (
                "[[listen]]\nport = 8000\nbind-address = \"nowhere\"\n",
                "listen[0].bind-address",
                3,
            ),
            (
                "[[listen]]\nport = 65535\nshoutcast-mount = \"/s\"\n",
                "listen[0].shoutcast-mount",
                3,
            ),
            (
                "[[listen]]\nport = 8000\nshoutcast-mount = \"s\"\n",
                "listen[0].shoutcast-mount",
                3,
            ),
            ("listen = []\n", "listen", 1),
            ("[limits]\nheader-timeout = 0\n", "limits.header-timeout", 2),
            (
                "[limits]\nsource-timeout = 3601\n",
                "limits.source-timeout",
                2,
            ),
            ("[limits]\nclients = 0\n", "limits.clients", 2),
            ("[limits]\nsources = 0\n", "limits.sources", 2),
            (
                "[tuning]\nflush-interval-ms = 2001\n",
                "tuning.flush-interval-ms",
                2,
            ),
            ("[tuning]\nlisten-backlog = 0\n", "tuning.listen-backlog", 2),
            (
                "[tuning]\nlisten-backlog = 65536\n",
                "tuning.listen-backlog",
                2,
            ),
            ("[logging]\nlevel = \"=[\"\n", "logging.level", 2),
            ("[paths]\nwebroot = \"\"\n", "paths.webroot", 2),
            ("hostname = \"\"\n", "hostname", 1),
            (
                "[[http-header]]\nname = \"Bad Name\"\nvalue = \"x\"\n",
                "http-header[0].name",
                2,
            ),
            (
                "[[http-header]]\nname = \"X\"\nvalue = \"a\\r\\nSet-Cookie: x\"\n",
                "http-header[0].value",
                3,
            ),
            (
                "[[http-header]]\nname = \"X\"\nvalue = \"a\"\nstatus = 42\n",
                "http-header[0].status",
                4,
            ),
            ("[[mount]]\nname = \"live\"\n", "mount[0].name", 2),
            (
                "[[mount]]\nname = \"/a\"\nfallback-mount = \"b\"\n",
                "mount[0].fallback-mount",
                3,
            ),
            (
                "[[mount]]\nname = \"/a\"\nintro = \"\"\n",
                "mount[0].intro",
                3,
            ),
            (
                "[[mount]]\nname = \"/a\"\ndump-file = \"\"\n",
                "mount[0].dump-file",
                3,
            ),
            (
                "[[mount]]\nname = \"/a\"\nmax-listeners = -2\n",
                "mount[0].max-listeners",
                3,
            ),
            (
                "[[mount]]\nname = \"/a\"\nsource-timeout = 0\n",
                "mount[0].source-timeout",
                3,
            ),
            (
                "[[mount]]\nname = \"/a\"\n[[mount.http-header]]\nname = \"X:\"\nvalue = \"v\"\n",
                "mount[0].http-header[0].name",
                4,
            ),
        ];
        for &(text, key, line) in cases {
            let e = err(text);
            assert_eq!(
                (e.key(), e.line()),
                (Some(key), Some(line)),
                "{text:?}: {e}"
            );
        }
    }

    #[test]
    fn empty_admin_password_disables_admin_logins() {
        let cfg = ok("[authentication]\nadmin-password = \"\"\n");
        assert!(!cfg.admin_credentials_ok("admin", ""));
        assert!(Config::default().admin_credentials_ok("admin", "hackme"));
    }

    #[test]
    fn inline_tables_and_dotted_keys_work() {
        let cfg = ok("limits.clients = 7\nmount = [{ name = \"/a\", bitrate = 64 }]\n");
        assert_eq!(cfg.limits.clients, 7);
        assert_eq!(cfg.mounts[0].bitrate.as_deref(), Some("64"));
        let e = err("mount = [{ name = \"/a\" }, { name = \"/b\", nope = 1 }]\n");
        assert_eq!((e.key(), e.line()), (Some("mount[1].nope"), Some(1)));
    }

    #[test]
    fn load_reads_files_and_reports_io_errors() {
        let dir = std::env::temp_dir().join(format!("floecast-config-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("floecast.toml");
        std::fs::write(&file, "[limits]\nqueue-size = 10\n").expect("write temp config");
        let e = Config::load(&file).expect_err("queue-size < burst-size");
        assert_eq!(e.origin(), file.display().to_string());
        assert_eq!(e.line(), Some(2));
        std::fs::write(&file, EXAMPLE).expect("write temp config");
        assert_eq!(Config::load(&file).ok(), Some(Config::default()));
        let _ = std::fs::remove_dir_all(&dir);

        let e = Config::load(&dir.join("missing.toml")).expect_err("missing file");
        assert_eq!(e.line(), None);
        assert!(std::error::Error::source(&e).is_some());
        assert!(e.to_string().contains("missing.toml: cannot read"), "{e}");
    }
}
