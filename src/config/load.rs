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

use super::{Config, HttpHeader, ListenSocket, MountConfig};

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

    /// Reads, parses and validates the TOML configuration file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            message: format!("cannot read: {e}"),
            origin: origin.clone(),
            line: None,
            column: None,
            key: None,
            io: Some(e),
        })?;
        Config::from_toml_str(&text, &origin)
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
    mount: Option<Vec<RawMount>>,
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
    name: Spanned<String>,
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
    intro: Option<Spanned<String>>,
    dump_file: Option<Spanned<String>>,
    on_connect: Option<Spanned<String>>,
    on_disconnect: Option<Spanned<String>>,
    http_header: Option<Vec<RawHeader>>,
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
                if !(1..=65535).contains(v.get_ref()) {
                    return Err(src.invalid(
                        v.span(),
                        "tuning.listen-backlog",
                        "must be between 1 and 65535",
                    ));
                }
                cfg.tuning.listen_backlog = v.into_inner();
            }
        }

        if let Some(headers) = self.http_header {
            cfg.http_headers = convert_headers(src, headers, "http-header")?;
        }

        if let Some(mounts) = self.mount {
            cfg.mounts = mounts
                .into_iter()
                .enumerate()
                .map(|(i, m)| convert_mount(src, m, &format!("mount[{i}]"), &cfg))
                .collect::<Result<_, _>>()?;
        }

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

fn timeout(src: &Source<'_>, v: Spanned<u64>, key: &str) -> Result<Duration, ConfigError> {
    if !TIMEOUT_RANGE.contains(v.get_ref()) {
        return Err(src.invalid(
            v.span(),
            key,
            format!(
                "must be between {} and {} seconds",
                TIMEOUT_RANGE.start(),
                TIMEOUT_RANGE.end()
            ),
        ));
    }
    Ok(Duration::from_secs(v.into_inner()))
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

fn convert_mount(
    src: &Source<'_>,
    m: RawMount,
    key: &str,
    cfg: &Config,
) -> Result<MountConfig, ConfigError> {
    let k = |field: &str| format!("{key}.{field}");
    let name = mount_name(src, m.name, &k("name"))?;
    let fallback_mount = m
        .fallback_mount
        .map(|f| mount_name(src, f, &k("fallback-mount")))
        .transpose()?;
    let source_timeout = m
        .source_timeout
        .map(|t| timeout(src, t, &k("source-timeout")))
        .transpose()?;

    let burst = m
        .burst_size
        .as_ref()
        .map_or(cfg.limits.burst_size, |v| *v.get_ref());
    let queue = m
        .queue_size
        .as_ref()
        .map_or(cfg.limits.queue_size, |v| *v.get_ref());
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

    Ok(MountConfig {
        name,
        username: m.username,
        password: m.password,
        max_listeners: optional_count(src, m.max_listeners, &k("max-listeners"))?,
        burst_size: m.burst_size.map(Spanned::into_inner),
        queue_size: m.queue_size.map(Spanned::into_inner),
        source_timeout,
        fallback_mount,
        fallback_override: m.fallback_override.unwrap_or(false),
        fallback_when_full: m.fallback_when_full.unwrap_or(false),
        hidden: m.hidden.unwrap_or(false),
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
        intro: optional_path(src, m.intro, &k("intro"))?,
        dump_file: optional_path(src, m.dump_file, &k("dump-file"))?,
        on_connect: optional_path(src, m.on_connect, &k("on-connect"))?,
        on_disconnect: optional_path(src, m.on_disconnect, &k("on-disconnect"))?,
        http_headers,
    })
}
