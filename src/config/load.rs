//! Loading the configuration from TOML, with errors that name the key and the line.
//!
//! Loading is two-staged: the file is deserialized into a "raw" layer of serde structs that
//! mirror the file (kebab-case keys like `icecast.xml`, unknown keys rejected, validated values
//! wrapped in [`toml::Spanned`] to keep their position), then the raw layer is validated and
//! laid over [`Config::default`]: a file overrides only the keys it sets. Two lists are
//! replaced wholesale rather than merged: `[[listen]]` and the global `[[http-header]]`
//! (`http-header = []` removes the default `Access-Control-Allow-Origin: *`).
//!
//! Nothing here panics on any input; every failure is a [`ConfigError`].

use std::fmt;
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;

use super::{Config, HttpHeader, ListenSocket, MountConfig, PushConfig, PushProtocol};

mod relay;

/// Most `[[listen]]` sockets a configuration may declare.
pub const MAX_LISTEN_SOCKETS: usize = 16;

/// Longest `tuning.flush-interval-ms` accepted.
pub const MAX_FLUSH_INTERVAL_MS: u64 = 2000;

/// Accepted range of `limits.header-timeout` and `source-timeout`, in seconds.
const TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 1..=3600;

/// A configuration that could not be read, parsed or validated.
///
/// Displays as `config error in <origin> line <n>: <key>: <message>`, e.g.
/// `config error in floecast.toml line 12: limits.queue-size: must be at least burst-size (65535)`.
/// The line (and key) are omitted when unknown, e.g. when the file cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    origin: String,
    line: Option<usize>,
    column: Option<usize>,
    key: Option<String>,
    message: String,
    #[source]
    io: Option<std::io::Error>,
}

impl ConfigError {
    /// An error at a known line and key of a file in another format (icecast.xml).
    pub(crate) fn at(origin: &str, line: Option<usize>, key: &str, message: String) -> Self {
        ConfigError {
            origin: origin.to_string(),
            line,
            column: None,
            key: Some(key.to_string()),
            message,
            io: None,
        }
    }

    /// The file name (or other origin) given to the loader.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// 1-based line of the offending key or value, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// 1-based column (in characters) of the offending key or value, when known.
    pub fn column(&self) -> Option<usize> {
        self.column
    }

    /// Dotted path of the offending key, e.g. `limits.queue-size` or `mount[1].fallback-mount`.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// What is wrong, without origin, line or key.
    pub fn message(&self) -> &str {
        &self.message
    }

    fn render(&self) -> String {
        let mut out = format!("config error in {}", self.origin);
        if let Some(line) = self.line {
            out.push_str(&format!(" line {line}"));
            // Syntax errors have no key; the column helps find them.
            if let (None, Some(column)) = (&self.key, self.column) {
                out.push_str(&format!(", column {column}"));
            }
        }
        out.push_str(": ");
        if let Some(key) = &self.key {
            out.push_str(key);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        out
    }
}

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
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            message: format!("cannot read: {e}"),
            origin: origin.clone(),
            line: None,
            column: None,
            key: None,
            io: Some(e),
        })?;
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

impl ConfigError {
    /// The same error reported at another place: `line` and `key` of the file the user wrote,
    /// for errors found in text generated from it (icecast.xml converted to TOML).
    pub(crate) fn relocate(mut self, origin: &str, line: usize, key: &str) -> Self {
        let generated_key = self.key.take();
        self.origin = origin.to_string();
        self.line = Some(line);
        self.column = None;
        self.key = Some(match generated_key {
            Some(k) if k != key => format!("{key} (TOML {k})"),
            _ => key.to_string(),
        });
        self
    }
}

/// The text being loaded, for turning byte spans into lines.
struct Source<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Source<'_> {
    /// 1-based (line, column) of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    fn error(
        &self,
        span: Option<Range<usize>>,
        key: Option<String>,
        message: String,
    ) -> ConfigError {
        let (line, column) = match span {
            Some(span) => {
                let (l, c) = self.position(span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigError {
            origin: self.origin.to_owned(),
            line,
            column,
            key,
            message,
            io: None,
        }
    }

    /// A validation error about the value at `span` under the dotted `key`.
    fn invalid(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        self.error(Some(span), Some(key.to_owned()), message.into())
    }

    /// Converts a TOML syntax or deserialization error, finding the key it concerns.
    fn toml_error(&self, err: &toml::de::Error) -> ConfigError {
        let span = err.span();
        let key = match (&span, toml::de::DeTable::parse(self.text)) {
            // Syntax errors have no key; type and unknown-key errors do.
            (Some(span), Ok(doc)) => key_path_at(doc.get_ref(), span.start),
            _ => None,
        };
        self.error(span, key, err.message().trim_end().to_owned())
    }
}

/// The dotted path of the deepest key or value whose span contains `offset`.
fn key_path_at(table: &toml::de::DeTable<'_>, offset: usize) -> Option<String> {
    let mut path = String::new();
    find_in_table(table, offset, &mut path).then_some(path)
}

fn find_in_table(table: &toml::de::DeTable<'_>, offset: usize, path: &mut String) -> bool {
    for (key, value) in table.iter() {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key.get_ref());
        if key.span().contains(&offset) || find_in_value(value, offset, path) {
            return true;
        }
        path.truncate(len);
    }
    false
}

fn find_in_value(value: &Spanned<toml::de::DeValue<'_>>, offset: usize, path: &mut String) -> bool {
    // Containers are searched even when their own span misses `offset`: the span of an
    // array of tables (`[[mount]]`) does not cover the tables' bodies.
    let found_inside = match value.get_ref() {
        toml::de::DeValue::Table(t) => find_in_table(t, offset, path),
        toml::de::DeValue::Array(a) => a.iter().enumerate().any(|(i, v)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = find_in_value(v, offset, path);
            if !found {
                path.truncate(len);
            }
            found
        }),
        _ => false,
    };
    found_inside || value.span().contains(&offset)
}

// ---------------------------------------------------------------------------------------------
// The raw layer: exactly what the file says.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    hostname: Option<Spanned<String>>,
    location: Option<String>,
    admin: Option<String>,
    server_id: Option<String>,
    listen: Option<Spanned<Vec<Spanned<RawListen>>>>,
    limits: Option<RawLimits>,
    authentication: Option<RawAuth>,
    paths: Option<RawPaths>,
    logging: Option<RawLogging>,
    tuning: Option<RawTuning>,
    http_header: Option<Vec<RawHeader>>,
    mount: Option<Vec<Spanned<RawMount>>>,
    mount_defaults: Option<Spanned<RawMount>>,
    push: Option<Vec<RawPush>>,
    relays_on_demand: Option<bool>,
    relay: Option<Vec<relay::RawRelay>>,
    master: Option<relay::RawMaster>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawListen {
    port: Spanned<u16>,
    bind_address: Option<Spanned<String>>,
    shoutcast_mount: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLimits {
    clients: Option<Spanned<usize>>,
    sources: Option<Spanned<usize>>,
    queue_size: Option<Spanned<usize>>,
    burst_size: Option<Spanned<usize>>,
    header_timeout: Option<Spanned<u64>>,
    source_timeout: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawAuth {
    source_password: Option<String>,
    relay_user: Option<String>,
    relay_password: Option<String>,
    admin_user: Option<String>,
    admin_password: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPaths {
    webroot: Option<Spanned<String>>,
    pidfile: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLogging {
    access_log: Option<Spanned<String>>,
    level: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTuning {
    flush_interval_ms: Option<Spanned<u64>>,
    listen_backlog: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawHeader {
    name: Spanned<String>,
    value: Spanned<String>,
    status: Option<Spanned<u16>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawMount {
    /// Required in `[[mount]]`, refused in `[mount-defaults]`.
    name: Option<Spanned<String>>,
    username: Option<String>,
    password: Option<String>,
    max_listeners: Option<Spanned<i64>>,
    burst_size: Option<Spanned<usize>>,
    queue_size: Option<Spanned<usize>>,
    source_timeout: Option<Spanned<u64>>,
    fallback_mount: Option<Spanned<String>>,
    fallback_override: Option<bool>,
    fallback_when_full: Option<bool>,
    hidden: Option<bool>,
    public: Option<bool>,
    stream_name: Option<String>,
    stream_description: Option<String>,
    stream_url: Option<String>,
    genre: Option<String>,
    bitrate: Option<Bitrate>,
    #[serde(rename = "type")]
    content_type: Option<String>,
    subtype: Option<String>,
    charset: Option<String>,
    mp3_metadata_interval: Option<Spanned<i64>>,
    icy_metadata_in_ogg: Option<bool>,
    intro: Option<Spanned<String>>,
    dump_file: Option<Spanned<String>>,
    on_connect: Option<Spanned<String>>,
    on_disconnect: Option<Spanned<String>>,
    http_header: Option<Vec<RawHeader>>,
    p2psp: Option<RawP2psp>,
    authentication: Option<RawListenerAuth>,
}

/// `authentication = { type = "htpasswd", filename = "…", allow-duplicate-users = false }` or
/// `{ type = "url", listener-add = "http://…", … }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawListenerAuth {
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
}

/// The URL auth backend is plain HTTP: floecast has no TLS client.
fn auth_url(src: &Source<'_>, v: Spanned<String>, key: &str) -> Result<String, ConfigError> {
    if !v.get_ref().starts_with("http://") {
        return Err(src.invalid(
            v.span(),
            key,
            format!(
                "must be an http:// URL (got {:?}; https backends are not supported)",
                v.get_ref()
            ),
        ));
    }
    Ok(v.into_inner())
}

fn listener_auth(
    src: &Source<'_>,
    raw: RawListenerAuth,
    key: &str,
) -> Result<super::ListenerAuth, ConfigError> {
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
            super::AuthBackend::Htpasswd {
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
            let mut u = super::UrlAuth::new(auth_url(src, add, &k("listener-add"))?);
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
            super::AuthBackend::Url(u)
        }
        other => {
            return Err(src.invalid(
                kind_span,
                &k("type"),
                format!("must be \"htpasswd\" or \"url\" (got {other:?})"),
            ));
        }
    };
    Ok(super::ListenerAuth {
        backend,
        allow_duplicate_users: raw.allow_duplicate_users.unwrap_or(false),
    })
}

/// `p2psp = { role = "splitter", port = 8001, ... }` or `{ role = "peer", splitter = "h:p" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawP2psp {
    role: Spanned<String>,
    port: Option<Spanned<u16>>,
    bind_address: Option<Spanned<String>>,
    max_peers: Option<Spanned<usize>>,
    buffer: Option<Spanned<u32>>,
    max_chunk: Option<Spanned<usize>>,
    monitors: Option<Spanned<usize>>,
    peer_timeout: Option<Spanned<u64>>,
    codec: Option<Spanned<String>>,
    /// A peer that also serves a team: that team's codec (`codec` is the joined team's).
    serve_codec: Option<Spanned<String>>,
    splitter: Option<Spanned<String>>,
}

fn p2psp_config(
    src: &Source<'_>,
    raw: RawP2psp,
    key: &str,
    mount: &str,
    mount_span: Range<usize>,
) -> Result<super::P2pspConfig, ConfigError> {
    let k = |field: &str| format!("{key}.{field}");
    if mount.contains(['*', '?', '[']) {
        let name_key = format!("{}.name", key.strip_suffix(".p2psp").unwrap_or(key));
        return Err(src.invalid(
            mount_span,
            &name_key,
            "a P2PSP mount needs an exact name, not a glob",
        ));
    }
    let codec = |c: &Option<Spanned<String>>, field: &str| -> Result<bool, ConfigError> {
        match c.as_ref().map(|c| c.get_ref().as_str()) {
            None | Some("native") => Ok(false),
            Some("gen-c") => Ok(true),
            Some(other) => {
                let span = c.as_ref().map(|c| c.span()).unwrap_or_default();
                Err(src.invalid(
                    span,
                    &k(field),
                    format!("must be \"native\" or \"gen-c\" (got {other:?})"),
                ))
            }
        }
    };
    let peer = raw.role.get_ref() == "peer";
    let serve = |raw: &RawP2psp,
                 required: bool|
     -> Result<Option<super::SplitterSettings>, ConfigError> {
        let Some(port) = &raw.port else {
            if required {
                return Err(src.invalid(raw.role.span(), &k("port"), "a splitter needs a port"));
            }
            return Ok(None);
        };
        let buffer = match &raw.buffer {
            Some(b) => ranged(src, b, &k("buffer"), 8..=65_536, " chunks")?,
            None => 256,
        };
        // DBS needs the team no larger than the buffer (spec §4.1).
        let max_peers = raw
            .max_peers
            .as_ref()
            .map_or((buffer as usize - 1).min(100), |m| *m.get_ref());
        if let Some(m) = &raw.max_peers {
            if *m.get_ref() == 0 || *m.get_ref() >= buffer as usize {
                return Err(src.invalid(
                    m.span(),
                    &k("max-peers"),
                    format!("must be 1 to buffer - 1 ({})", buffer - 1),
                ));
            }
        }
        let max_chunk = match &raw.max_chunk {
            Some(m) => ranged(src, m, &k("max-chunk"), 256..=60_000, " bytes")?,
            None => 16_384,
        };
        let monitors = match &raw.monitors {
            Some(m) => ranged(src, m, &k("monitors"), 1..=32, "")?,
            None => super::SplitterSettings::DEFAULT_MONITORS,
        };
        let peer_timeout = match &raw.peer_timeout {
            None => super::SplitterSettings::DEFAULT_PEER_TIMEOUT,
            // Peers report every second: below 2 s a single lost report would expel them.
            Some(t) => Duration::from_secs(ranged(src, t, &k("peer-timeout"), 2..=60, " seconds")?),
        };
        let compat = if peer {
            codec(&raw.serve_codec, "serve-codec")?
        } else {
            codec(&raw.codec, "codec")?
        };
        if let Some(b) = &raw.bind_address {
            if b.get_ref().parse::<IpAddr>().is_err() {
                return Err(src.invalid(b.span(), &k("bind-address"), "must be an IP address"));
            }
        }
        Ok(Some(super::SplitterSettings {
            port: *port.get_ref(),
            bind_address: raw.bind_address.as_ref().map(|b| b.get_ref().clone()),
            max_peers,
            buffer,
            max_chunk,
            compat,
            monitors,
            peer_timeout,
        }))
    };
    if !peer && let Some(c) = &raw.serve_codec {
        return Err(src.invalid(
            c.span(),
            &k("serve-codec"),
            "only a peer has a served team apart from its joined one; use codec",
        ));
    }
    match raw.role.get_ref().as_str() {
        "splitter" => match serve(&raw, true)? {
            Some(s) => Ok(super::P2pspConfig::Splitter(s)),
            None => Err(src.invalid(raw.role.span(), &k("port"), "a splitter needs a port")),
        },
        "peer" => {
            let serve = serve(&raw, false)?;
            let Some(splitter) = raw.splitter else {
                return Err(src.invalid(
                    raw.role.span(),
                    &k("splitter"),
                    "a peer needs splitter = \"host:port\"",
                ));
            };
            let ok = splitter
                .get_ref()
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                return Err(src.invalid(splitter.span(), &k("splitter"), "must be \"host:port\""));
            }
            Ok(super::P2pspConfig::Peer {
                splitter: splitter.into_inner(),
                serve,
                compat: codec(&raw.codec, "codec")?,
            })
        }
        other => Err(src.invalid(
            raw.role.span(),
            &k("role"),
            format!("must be \"splitter\" or \"peer\" (got {other:?})"),
        )),
    }
}

/// `[[push]]`: send a local mount to a remote server as its source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPush {
    mount: Spanned<String>,
    server: Spanned<String>,
    port: Option<Spanned<u16>>,
    remote_mount: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    password: Spanned<String>,
    protocol: Option<Spanned<String>>,
    bind: Option<Spanned<String>>,
}

/// The remote port a push uses when `port` is left out (icecast's default).
pub const DEFAULT_PUSH_PORT: u16 = 8000;

fn convert_push(src: &Source<'_>, p: RawPush, key: &str) -> Result<PushConfig, ConfigError> {
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
        Some(port) if *port.get_ref() == 0 => {
            return Err(src.invalid(port.span(), &k("port"), "must be between 1 and 65535"));
        }
        Some(port) => port.into_inner(),
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
    let bind = match p.bind {
        Some(b) if b.get_ref().parse::<IpAddr>().is_err() => {
            return Err(src.invalid(b.span(), &k("bind"), "must be an IP address"));
        }
        Some(b) => Some(b.into_inner()),
        None => None,
    };
    Ok(PushConfig {
        mount,
        server: p.server.into_inner(),
        port,
        remote_mount,
        username,
        password: p.password.into_inner(),
        protocol,
        bind,
    })
}

/// `[[push]]` tables in order; two pushes to the same remote mount would fight over it.
fn convert_pushes(src: &Source<'_>, raw: Vec<RawPush>) -> Result<Vec<PushConfig>, ConfigError> {
    let mut out: Vec<PushConfig> = Vec::with_capacity(raw.len());
    for (i, p) in raw.into_iter().enumerate() {
        let key = format!("push[{i}]");
        let span = p.mount.span();
        let push = convert_push(src, p, &key)?;
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

/// `bitrate = "128"` or `bitrate = 128`; kept as the string icecast would report.
#[derive(Debug)]
struct Bitrate(String);

impl<'de> Deserialize<'de> for Bitrate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BitrateVisitor;

        impl Visitor<'_> for BitrateVisitor {
            type Value = Bitrate;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a non-negative integer")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bitrate, E> {
                Ok(Bitrate(v.to_owned()))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bitrate, E> {
                Ok(Bitrate(v.to_string()))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bitrate, E> {
                match u64::try_from(v) {
                    Ok(v) => Ok(Bitrate(v.to_string())),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
        }

        deserializer.deserialize_any(BitrateVisitor)
    }
}

// ---------------------------------------------------------------------------------------------
// Validation and conversion to the model.

impl RawConfig {
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

        if let Some(listen) = self.listen {
            cfg.listen = convert_listen(src, listen)?;
        }

        if let Some(limits) = self.limits {
            let l = &mut cfg.limits;
            if let Some(v) = limits.clients {
                at_least_one(src, &v, "limits.clients")?;
                l.clients = v.into_inner();
            }
            if let Some(v) = limits.sources {
                at_least_one(src, &v, "limits.sources")?;
                l.sources = v.into_inner();
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
        }

        if let Some(auth) = self.authentication {
            let a = &mut cfg.auth;
            set(&mut a.source_password, auth.source_password);
            set(&mut a.relay_user, auth.relay_user);
            set(&mut a.relay_password, auth.relay_password);
            set(&mut a.admin_user, auth.admin_user);
            set(&mut a.admin_password, auth.admin_password);
        }

        if let Some(paths) = self.paths {
            if let Some(p) = paths.webroot {
                cfg.paths.webroot = Some(path(src, p, "paths.webroot")?);
            }
            if let Some(p) = paths.pidfile {
                cfg.paths.pidfile = Some(path(src, p, "paths.pidfile")?);
            }
        }

        if let Some(logging) = self.logging {
            if let Some(p) = logging.access_log {
                cfg.logging.access_log = Some(path(src, p, "logging.access-log")?);
            }
            if let Some(level) = logging.level {
                if let Err(e) = tracing_subscriber::EnvFilter::try_new(level.get_ref()) {
                    return Err(src.invalid(
                        level.span(),
                        "logging.level",
                        format!("not a valid tracing filter: {e}"),
                    ));
                }
                cfg.logging.level = Some(level.into_inner());
            }
        }

        if let Some(tuning) = self.tuning {
            if let Some(v) = tuning.flush_interval_ms {
                if *v.get_ref() > MAX_FLUSH_INTERVAL_MS {
                    return Err(src.invalid(
                        v.span(),
                        "tuning.flush-interval-ms",
                        format!("must be at most {MAX_FLUSH_INTERVAL_MS}"),
                    ));
                }
                cfg.tuning.flush_interval = Duration::from_millis(v.into_inner());
            }
            if let Some(v) = tuning.listen_backlog {
                cfg.tuning.listen_backlog =
                    ranged(src, &v, "tuning.listen-backlog", 1..=65535, "")?;
            }
        }

        if let Some(headers) = self.http_header {
            cfg.http_headers = convert_headers(src, headers, "http-header")?;
        }

        // The defaults first: mount sections are checked against the values they inherit.
        if let Some(d) = self.mount_defaults {
            let span = d.span();
            let d = d.into_inner();
            if let Some(name) = &d.name {
                return Err(src.invalid(
                    name.span(),
                    "mount-defaults.name",
                    "[mount-defaults] applies to every mount and has no name; use [[mount]] for one",
                ));
            }
            if d.p2psp.is_some() {
                return Err(src.invalid(
                    span,
                    "mount-defaults.p2psp",
                    "a P2PSP team needs a [[mount]] with an exact name",
                ));
            }
            cfg.mount_defaults = Some(convert_mount(src, d, "mount-defaults", ("", span), &cfg)?);
        }
        if let Some(mounts) = self.mount {
            let mut out = Vec::with_capacity(mounts.len());
            for (i, m) in mounts.into_iter().enumerate() {
                let key = format!("mount[{i}]");
                let span = m.span();
                let mut m = m.into_inner();
                let Some(name) = m.name.take() else {
                    return Err(src.invalid(span, &key, "missing field `name`"));
                };
                let name_span = name.span();
                let name = mount_name(src, name, &format!("{key}.name"))?;
                out.push(convert_mount(src, m, &key, (&name, name_span), &cfg)?);
            }
            cfg.mounts = out;
        }

        if let Some(pushes) = self.push {
            cfg.pushes = convert_pushes(src, pushes)?;
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

fn at_least_one(src: &Source<'_>, v: &Spanned<usize>, key: &str) -> Result<(), ConfigError> {
    if *v.get_ref() == 0 {
        return Err(src.invalid(v.span(), key, "must be at least 1"));
    }
    Ok(())
}

/// The value of `v` when it lies in `range`, else an error at its line naming `key` and the
/// range (`unit` follows the numbers, e.g. " seconds").
fn ranged<T>(
    src: &Source<'_>,
    v: &Spanned<T>,
    key: &str,
    range: std::ops::RangeInclusive<T>,
    unit: &str,
) -> Result<T, ConfigError>
where
    T: PartialOrd + Copy + fmt::Display,
{
    let value = *v.get_ref();
    if range.contains(&value) {
        return Ok(value);
    }
    Err(src.invalid(
        v.span(),
        key,
        format!(
            "must be between {} and {}{unit}",
            range.start(),
            range.end()
        ),
    ))
}

fn timeout(src: &Source<'_>, v: Spanned<u64>, key: &str) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(ranged(
        src,
        &v,
        key,
        TIMEOUT_RANGE,
        " seconds",
    )?))
}

fn path(src: &Source<'_>, v: Spanned<String>, key: &str) -> Result<PathBuf, ConfigError> {
    if v.get_ref().is_empty() {
        return Err(src.invalid(v.span(), key, "must not be empty"));
    }
    Ok(PathBuf::from(v.into_inner()))
}

fn mount_name(src: &Source<'_>, v: Spanned<String>, key: &str) -> Result<String, ConfigError> {
    if !v.get_ref().starts_with('/') {
        return Err(src.invalid(
            v.span(),
            key,
            format!("must start with '/' (got {:?})", v.get_ref()),
        ));
    }
    Ok(v.into_inner())
}

/// `queue` and `burst` are the effective values (overrides resolved); the spans are those the
/// section itself sets. Blames queue-size when the section sets it, else burst-size.
fn check_queue_burst(
    src: &Source<'_>,
    section: &str,
    queue: usize,
    burst: usize,
    queue_set: Option<&Spanned<usize>>,
    burst_set: Option<&Spanned<usize>>,
) -> Result<(), ConfigError> {
    if let Some(q) = queue_set {
        if queue == 0 {
            return Err(src.invalid(
                q.span(),
                &format!("{section}.queue-size"),
                "must be at least 1",
            ));
        }
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

fn convert_listen(
    src: &Source<'_>,
    listen: Spanned<Vec<Spanned<RawListen>>>,
) -> Result<Vec<ListenSocket>, ConfigError> {
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
    for (i, l) in listen.into_iter().enumerate() {
        let l = l.into_inner();
        let key = format!("listen[{i}]");
        let port = *l.port.get_ref();
        if port == 0 {
            return Err(src.invalid(l.port.span(), &format!("{key}.port"), "must not be 0"));
        }
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
        out.push(ListenSocket {
            port,
            bind_address,
            shoutcast_mount,
        });
    }
    Ok(out)
}

/// An HTTP token (RFC 9110 §5.6.2), as header names must be.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

fn convert_headers(
    src: &Source<'_>,
    headers: Vec<RawHeader>,
    prefix: &str,
) -> Result<Vec<HttpHeader>, ConfigError> {
    let mut out = Vec::with_capacity(headers.len());
    for (i, h) in headers.into_iter().enumerate() {
        let key = format!("{prefix}[{i}]");
        if !is_token(h.name.get_ref()) {
            return Err(src.invalid(
                h.name.span(),
                &format!("{key}.name"),
                format!("not a valid HTTP header name: {:?}", h.name.get_ref()),
            ));
        }
        // No CR/LF (header injection) nor other control characters except tab.
        if h.value
            .get_ref()
            .chars()
            .any(|c| c.is_control() && c != '\t')
        {
            return Err(src.invalid(
                h.value.span(),
                &format!("{key}.value"),
                "must not contain CR, LF or other control characters",
            ));
        }
        let status = match h.status {
            Some(s) => {
                if !(100..=599).contains(s.get_ref()) {
                    return Err(src.invalid(
                        s.span(),
                        &format!("{key}.status"),
                        "must be an HTTP status code (100..=599)",
                    ));
                }
                Some(s.into_inner())
            }
            None => None,
        };
        out.push(HttpHeader {
            name: h.name.into_inner(),
            value: h.value.into_inner(),
            status,
        });
    }
    Ok(out)
}

/// `-1` means "not set" (icecast's convention); other negative values are errors.
fn optional_count(
    src: &Source<'_>,
    v: Option<Spanned<i64>>,
    key: &str,
) -> Result<Option<usize>, ConfigError> {
    let Some(v) = v else { return Ok(None) };
    match *v.get_ref() {
        -1 => Ok(None),
        n => usize::try_from(n).map(Some).map_err(|_| {
            src.invalid(
                v.span(),
                key,
                "must be -1 (unset) or a non-negative number that fits in memory",
            )
        }),
    }
}

fn optional_path(
    src: &Source<'_>,
    v: Option<Spanned<String>>,
    key: &str,
) -> Result<Option<PathBuf>, ConfigError> {
    v.map(|v| path(src, v, key)).transpose()
}

/// One `[[mount]]` (with its checked `name` and the name's span) or `[mount-defaults]`
/// (name "") section.
fn convert_mount(
    src: &Source<'_>,
    m: RawMount,
    key: &str,
    (name, name_span): (&str, Range<usize>),
    cfg: &Config,
) -> Result<MountConfig, ConfigError> {
    let k = |field: &str| format!("{key}.{field}");
    let p2psp = m
        .p2psp
        .map(|p| p2psp_config(src, p, &k("p2psp"), name, name_span))
        .transpose()?;
    let fallback_mount = m
        .fallback_mount
        .map(|f| mount_name(src, f, &k("fallback-mount")))
        .transpose()?;
    let source_timeout = m
        .source_timeout
        .map(|t| timeout(src, t, &k("source-timeout")))
        .transpose()?;

    // What a mount inherits when this section leaves a size out: [mount-defaults], then
    // [limits]. (A glob section in between is not known here; MountSettings copes.)
    let defaults = cfg.mount_defaults.as_ref();
    let burst = m.burst_size.as_ref().map_or_else(
        || {
            defaults
                .and_then(|d| d.burst_size)
                .unwrap_or(cfg.limits.burst_size)
        },
        |v| *v.get_ref(),
    );
    let queue = m.queue_size.as_ref().map_or_else(
        || {
            defaults
                .and_then(|d| d.queue_size)
                .unwrap_or(cfg.limits.queue_size)
        },
        |v| *v.get_ref(),
    );
    check_queue_burst(
        src,
        key,
        queue,
        burst,
        m.queue_size.as_ref(),
        m.burst_size.as_ref(),
    )?;

    let http_headers = match m.http_header {
        Some(h) => convert_headers(src, h, &k("http-header"))?,
        None => Vec::new(),
    };
    let authentication = m
        .authentication
        .map(|a| listener_auth(src, a, &k("authentication")))
        .transpose()?;

    Ok(MountConfig {
        name: name.to_string(),
        username: m.username,
        password: m.password,
        max_listeners: optional_count(src, m.max_listeners, &k("max-listeners"))?,
        burst_size: m.burst_size.map(Spanned::into_inner),
        queue_size: m.queue_size.map(Spanned::into_inner),
        source_timeout,
        fallback_mount,
        fallback_override: m.fallback_override,
        fallback_when_full: m.fallback_when_full,
        hidden: m.hidden,
        public: m.public,
        stream_name: m.stream_name,
        stream_description: m.stream_description,
        stream_url: m.stream_url,
        genre: m.genre,
        bitrate: m.bitrate.map(|b| b.0),
        content_type: m.content_type,
        subtype: m.subtype,
        charset: m.charset,
        mp3_metadata_interval: optional_count(
            src,
            m.mp3_metadata_interval,
            &k("mp3-metadata-interval"),
        )?,
        icy_metadata_in_ogg: m.icy_metadata_in_ogg,
        intro: optional_path(src, m.intro, &k("intro"))?,
        dump_file: optional_path(src, m.dump_file, &k("dump-file"))?,
        on_connect: optional_path(src, m.on_connect, &k("on-connect"))?,
        on_disconnect: optional_path(src, m.on_disconnect, &k("on-disconnect"))?,
        http_headers,
        p2psp,
        authentication,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../config/floecast.toml");

    #[test]
    fn p2psp_roles() {
        let c = Config::from_toml_str(
            "[[mount]]\nname = \"/team.ogg\"\np2psp = { role = \"splitter\", port = 8001, buffer = 128 }\n\
             [[mount]]\nname = \"/relayed.ogg\"\np2psp = { role = \"peer\", splitter = \"a.example:8001\" }\n",
            "floecast.toml",
        )
        .unwrap();
        assert_eq!(
            c.mount("/team.ogg").and_then(|m| m.p2psp.clone()),
            Some(crate::config::P2pspConfig::Splitter(
                crate::config::SplitterSettings {
                    port: 8001,
                    bind_address: None,
                    max_peers: 100,
                    buffer: 128,
                    max_chunk: 16_384,
                    compat: false,
                    monitors: 3,
                    peer_timeout: Duration::from_secs(3)
                }
            ))
        );
        assert_eq!(
            c.mount("/relayed.ogg").and_then(|m| m.p2psp.clone()),
            Some(crate::config::P2pspConfig::Peer {
                splitter: "a.example:8001".into(),
                serve: None,
                compat: false,
            })
        );
        // A Gen C peer that serves a native team further down the tree.
        let c = ok(
            "[[mount]]\nname = \"/b\"\np2psp = { role = \"peer\", splitter = \"h:1\", \
                    codec = \"gen-c\", port = 9000 }\n",
        );
        let Some(crate::config::P2pspConfig::Peer { compat, serve, .. }) =
            c.mount("/b").and_then(|m| m.p2psp.clone())
        else {
            panic!("a peer")
        };
        assert!(compat);
        assert!(serve.is_some_and(|s| !s.compat));
        let e = err(
            "[[mount]]\nname = \"/t\"\np2psp = { role = \"splitter\", port = 9, \
                     serve-codec = \"gen-c\" }\n",
        );
        assert_eq!(e.key(), Some("mount[0].p2psp.serve-codec"));
        let e = err(
            "[[mount]]\nname = \"/t\"\np2psp = { role = \"peer\", splitter = \"h:1\", \
                     codec = \"gen-d\" }\n",
        );
        assert_eq!(e.key(), Some("mount[0].p2psp.codec"));
        let c = ok(
            "[[mount]]\nname = \"/m\"\np2psp = { role = \"splitter\", port = 9, \
                    monitors = 5, peer-timeout = 10 }\n",
        );
        let s = c
            .mount("/m")
            .and_then(|m| m.p2psp.as_ref()?.splitter().cloned())
            .expect("splitter");
        assert_eq!((s.monitors, s.peer_timeout), (5, Duration::from_secs(10)));
        let e = err(
            "[[mount]]\nname = \"/m\"\np2psp = { role = \"splitter\", port = 9, \
                     peer-timeout = 1 }\n",
        );
        assert_eq!(e.key(), Some("mount[0].p2psp.peer-timeout"));
        let e = err(
            "[[mount]]\nname = \"/m\"\np2psp = { role = \"splitter\", port = 9, \
                     monitors = 0 }\n",
        );
        assert_eq!(e.key(), Some("mount[0].p2psp.monitors"));
        let e = err("[[mount]]\nname = \"/t\"\np2psp = { role = \"peer\" }\n");
        assert_eq!(
            (e.line(), e.key()),
            (Some(3), Some("mount[0].p2psp.splitter"))
        );
        let e = err(
            "[[mount]]\nname = \"/t\"\np2psp = { role = \"splitter\", port = 9, buffer = 16, max-peers = 16 }\n",
        );
        assert_eq!(e.key(), Some("mount[0].p2psp.max-peers"));
        let e =
            err("[[mount]]\nname = \"/t/*\"\np2psp = { role = \"peer\", splitter = \"h:1\" }\n");
        assert_eq!(e.key(), Some("mount[0].name"));
        let e = err("[[mount]]\nname = \"/t\"\np2psp = { role = \"boss\" }\n");
        assert_eq!(e.key(), Some("mount[0].p2psp.role"));
    }

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
            "[[mount]]\nname = \"/m\"\nauthentication = { type = \"url\", listener-add = \"https://a/b\" }\n",
        );
        assert_eq!(e.key(), Some("mount[0].authentication.listener-add"));
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

    fn err(text: &str) -> ConfigError {
        match Config::from_toml_str(text, "floecast.toml") {
            Ok(cfg) => panic!("expected an error, got {cfg:?}"),
            Err(e) => e,
        }
    }

    fn ok(text: &str) -> Config {
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
                },
                ListenSocket {
                    port: 8002,
                    bind_address: Some("127.0.0.1".into()),
                    shoutcast_mount: Some("/stream".into()),
                },
            ]
        );
        assert_eq!(
            cfg.paths.webroot.as_deref(),
            Some(Path::new("/usr/share/floecast/web"))
        );
        assert_eq!(
            cfg.paths.pidfile.as_deref(),
            Some(Path::new("/run/floecast.pid"))
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
            }]
        );
    }

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
    fn unknown_key_names_key_and_line() {
        let e = err("hostname = \"x\"\n\n[limits]\nclients = 5\nclient-timeout = 30\n");
        assert_eq!(e.line(), Some(5));
        assert_eq!(e.key(), Some("limits.client-timeout"));
        let text = e.to_string();
        assert!(
            text.starts_with(
                "config error in floecast.toml line 5: limits.client-timeout: unknown field"
            ),
            "{text}"
        );

        let e = err("[[mount]]\nname = \"/a\"\n[[mount]]\nname = \"/b\"\nmount-name = \"/c\"\n");
        assert_eq!(e.line(), Some(5));
        assert_eq!(e.key(), Some("mount[1].mount-name"));

        let e = err("port = 8000\n");
        assert_eq!((e.line(), e.key()), (Some(1), Some("port")));
    }

    #[test]
    fn bad_type_names_line() {
        let e = err("[limits]\nclients = 100\nsources = \"two\"\n");
        assert_eq!(e.line(), Some(3));
        assert_eq!(e.key(), Some("limits.sources"));
        assert!(e.to_string().contains("line 3"), "{e}");

        let e = err("[[mount]]\nname = \"/a\"\nhidden = 1\n");
        assert_eq!((e.line(), e.key()), (Some(3), Some("mount[0].hidden")));

        let e = err("[[listen]]\nport = 70000\n");
        assert_eq!((e.line(), e.key()), (Some(2), Some("listen[0].port")));
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let e = err("hostname = \"x\"\n[limits\n");
        assert_eq!(e.line(), Some(2));
        assert!(e.column().is_some());
        assert_eq!(e.key(), None);
        assert!(e.to_string().contains("line 2, column"), "{e}");
    }

    #[test]
    fn missing_mount_name() {
        let e = err("[[mount]]\nname = \"/a\"\n\n[[mount]]\npassword = \"x\"\n");
        assert_eq!(e.key(), Some("mount[1]"));
        assert!(e.message().contains("name"), "{e}");
        assert_eq!(e.line(), Some(4));
    }

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

    #[test]
    fn bitrate_string_or_integer() {
        let cfg = ok(concat!(
            "[[mount]]\nname = \"/a\"\nbitrate = 128\n",
            "[[mount]]\nname = \"/b\"\nbitrate = \"96\"\n",
        ));
        assert_eq!(cfg.mounts[0].bitrate.as_deref(), Some("128"));
        assert_eq!(cfg.mounts[1].bitrate.as_deref(), Some("96"));
        let e = err("[[mount]]\nname = \"/a\"\nbitrate = 1.5\n");
        assert_eq!((e.key(), e.line()), (Some("mount[0].bitrate"), Some(3)));
        let e = err("[[mount]]\nname = \"/a\"\nbitrate = -1\n");
        assert_eq!(e.key(), Some("mount[0].bitrate"));
    }

    #[test]
    fn minus_one_means_unset() {
        let cfg = ok("[[mount]]\nname = \"/a\"\nmax-listeners = -1\nmp3-metadata-interval = -1\n");
        assert_eq!(cfg.mounts[0].max_listeners, None);
        assert_eq!(cfg.mounts[0].mp3_metadata_interval, None);
        let cfg = ok("[[mount]]\nname = \"/a\"\nmax-listeners = 0\nmp3-metadata-interval = 0\n");
        assert_eq!(cfg.mounts[0].max_listeners, Some(0));
        assert_eq!(cfg.mounts[0].mp3_metadata_interval, Some(0));
    }

    #[test]
    fn mount_lookup_most_specific_wins() {
        let cfg = ok(concat!(
            "[[mount]]\nname = \"/live/*\"\nmax-listeners = 2\n",
            "[[mount]]\nname = \"/live/special\"\nmax-listeners = 1\n",
            "[[mount]]\nname = \"/live/special\"\nmax-listeners = 3\n",
            "[[mount]]\nname = \"/radio[0-9].mp3\"\nmax-listeners = 4\n",
        ));
        let max = |m: &str| cfg.mount(m).and_then(|m| m.max_listeners);
        // The exact name wins even after a glob; between equals, file order.
        assert_eq!(max("/live/special"), Some(1));
        assert_eq!(max("/live/other"), Some(2));
        assert_eq!(max("/live/a/b"), None);
        assert_eq!(max("/live"), None);
        assert_eq!(max("/radio7.mp3"), Some(4));
        assert_eq!(max("/radiox.mp3"), None);
    }

    #[test]
    fn overlapping_mounts_merge_key_by_key() {
        let cfg = ok(concat!(
            "[mount-defaults]\nmax-listeners = 50\nstream-name = \"Default\"\n",
            "genre = \"various\"\nhidden = true\npassword = \"defpw\"\n",
            "http-header = [{ name = \"X-A\", value = \"default\" }, { name = \"X-D\", value = \"d\" }]\n",
            "[[mount]]\nname = \"/live/*\"\nstream-name = \"Live\"\nmax-listeners = 5\n",
            "username = \"dj\"\nhidden = false\n",
            "http-header = [{ name = \"x-a\", value = \"live\" }]\n",
            "[[mount]]\nname = \"/live/*.mp3\"\ngenre = \"Rock\"\n",
            "[[mount]]\nname = \"/live/special.mp3\"\npassword = \"special\"\nmax-listeners = 1\n",
        ));
        let special = cfg.mount("/live/special.mp3").expect("matches");
        assert_eq!(special.name, "/live/special.mp3");
        assert_eq!(special.max_listeners, Some(1));
        assert_eq!(special.password.as_deref(), Some("special"));
        assert_eq!(special.genre.as_deref(), Some("Rock"));
        assert_eq!(special.stream_name.as_deref(), Some("Live"));
        assert_eq!(special.username.as_deref(), Some("dj"));
        // An explicit false in a more specific section beats the defaults' true.
        assert_eq!(special.hidden, Some(false));
        let headers: Vec<(&str, &str)> = special
            .http_headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        assert_eq!(headers, [("x-a", "live"), ("X-D", "d")]);

        let ogg = cfg.mount("/live/show.ogg").expect("matches");
        assert_eq!(
            (
                ogg.max_listeners,
                ogg.genre.as_deref(),
                ogg.password.as_deref()
            ),
            (Some(5), Some("various"), Some("defpw"))
        );
        // A mount no section names still gets the defaults.
        let other = cfg.mount("/elsewhere").expect("defaults");
        assert_eq!(
            (
                other.max_listeners,
                other.stream_name.as_deref(),
                other.hidden
            ),
            (Some(50), Some("Default"), Some(true))
        );
        assert_eq!(cfg.source_password_for("/elsewhere"), "defpw");
        assert_eq!(cfg.source_password_for("/live/special.mp3"), "special");
        assert!(cfg.source_credentials_ok("/live/x.mp3", "dj", "defpw"));
        assert!(!cfg.source_credentials_ok("/live/x.mp3", "source", "hackme"));
        let settings = crate::mount::MountSettings::resolve(&cfg, "/live/special.mp3");
        assert_eq!((settings.max_listeners, settings.hidden), (Some(1), false));
    }

    #[test]
    fn mount_defaults_validation() {
        let e = err("[mount-defaults]\nname = \"/a\"\n");
        assert_eq!((e.key(), e.line()), (Some("mount-defaults.name"), Some(2)));
        let e = err("[mount-defaults]\np2psp = { role = \"splitter\", port = 9 }\n");
        assert_eq!(e.key(), Some("mount-defaults.p2psp"));
        let e = err("[mount-defaults]\nqueue-size = 1000\n");
        assert_eq!(
            (e.key(), e.line()),
            (Some("mount-defaults.queue-size"), Some(2))
        );
        // A mount is checked against the sizes it inherits from the defaults.
        let e = err(
            "[mount-defaults]\nqueue-size = 100000\n[[mount]]\nname = \"/a\"\nburst-size = 200000\n",
        );
        assert_eq!((e.key(), e.line()), (Some("mount[0].burst-size"), Some(5)));
        let cfg =
            ok("[mount-defaults]\nauthentication = { type = \"htpasswd\", filename = \"u\" }\n");
        assert!(cfg.listener_auth("/any").is_some());
        assert!(Config::default().mount("/any").is_none());
    }

    #[test]
    fn empty_admin_password_disables_admin_logins() {
        let cfg = ok("[authentication]\nadmin-password = \"\"\n");
        assert!(!cfg.admin_credentials_ok("admin", ""));
        assert!(Config::default().admin_credentials_ok("admin", "hackme"));
    }

    #[test]
    fn intro_is_under_the_webroot() {
        let cfg = ok("[paths]\nwebroot = \"/srv/web\"\n");
        assert_eq!(
            cfg.intro_path(Path::new("/intro.mp3")),
            Path::new("/srv/web/intro.mp3")
        );
        assert_eq!(
            cfg.intro_path(Path::new("intros/a.ogg")),
            Path::new("/srv/web/intros/a.ogg")
        );
        // Without a webroot the path is used as written.
        let cfg = Config::default();
        assert_eq!(
            cfg.intro_path(Path::new("/intro.mp3")),
            Path::new("/intro.mp3")
        );
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

    #[test]
    fn non_ascii_text_positions() {
        let e = err("location = \"Zürich ☃\"\nbogus = 1\n");
        assert_eq!((e.line(), e.column()), (Some(2), Some(1)));
    }
}
