//! Server configuration: the model, icecast2's defaults, and loading from TOML.
//!
//! The embedded defaults equal icecast2's sample `icecast.xml` (port 8000, passwords `hackme`,
//! admin user `admin`) so every Icecast tutorial works unchanged. Loading never panics: a bad
//! file yields a `ConfigError` naming the key and line, and the binary exits with code 2.

mod glob;
pub mod icecast_xml;
mod load;
mod toml_doc;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use glob::{Specificity, glob_match, specificity};
pub use load::{ConfigError, Loaded};

/// The default password of the sample config. The server warns loudly while it is in use.
pub const DEFAULT_PASSWORD: &str = "hackme";

/// Something in a config file that floecast accepts but does not carry out as written: an
/// icecast.xml option it ignores, or one it handles differently from icecast2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    /// The option, named as in the file: `listen-socket.ssl`, `mount.authentication`.
    pub option: String,
    /// What floecast does instead, and what to do about it.
    pub message: String,
    pub severity: Severity,
}

/// How loudly a [`ConfigWarning`] must be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// An option without effect here; the server works as configured otherwise.
    Notice,
    /// Listeners or sources are affected in a way the file does not suggest: a mount open
    /// to everyone, a TLS port not served. Show it where it cannot be missed (log level
    /// ERROR, and on stderr).
    Danger,
}

impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        write!(f, "<{}> {}", self.option, self.message)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Used in listen URLs, playlists and stats (`<hostname>`).
    pub hostname: String,
    pub location: String,
    /// Contact address (`<admin>`).
    pub admin: String,
    /// The `Server:` header and the `server_id` stat.
    pub server_id: String,
    pub listen: Vec<ListenSocket>,
    pub limits: Limits,
    pub access: Access,
    pub auth: Auth,
    pub paths: Paths,
    pub logging: Logging,
    /// Extra headers on every response (`<http-headers>`).
    pub http_headers: Vec<HttpHeader>,
    /// Per-mount sections (`[[mount]]`). Every section whose name or glob matches a mount
    /// applies to it, merged key by key, the most specific first: see [`Config::mount`].
    pub mounts: Vec<MountConfig>,
    /// `[mount-defaults]`: keys every mount gets unless a matching `[[mount]]` sets them
    /// (icecast's `<mount type="default">`). Its `name` is unused.
    pub mount_defaults: Option<MountConfig>,
    pub tuning: Tuning,
    /// Push relays: local mounts sent to remote servers as a source (`[[push]]`).
    pub pushes: Vec<PushConfig>,
    /// Pull relays (`[[relay]]`), each feeding a local mount from an upstream server.
    pub relays: Vec<RelayConfig>,
    /// Relay every mount of a master server (`[master]`).
    pub master: Option<MasterConfig>,
    /// Default `on-demand` of relays (`relays-on-demand`).
    pub relays_on_demand: bool,
    /// Certificates for TLS (`[[tls]]`), the first the default; SNI picks among them by the
    /// names they carry. Empty: no TLS.
    pub tls: Vec<CertificateFiles>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListenSocket {
    pub port: u16,
    /// `None` = every address, IPv4 and IPv6.
    pub bind_address: Option<String>,
    /// When set, a SHOUTcast v1 source port is opened on `port + 1` feeding this mount.
    pub shoutcast_mount: Option<String>,
    /// Whether this socket speaks TLS (`tls`); the SHOUTcast port beside it never does.
    pub tls: TlsMode,
}

/// What a listen socket does with TLS (`tls` in `[[listen]]`; icecast.xml's `<ssl>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// TLS and plain HTTP on the same port, told apart by the first byte a client sends
    /// (TLS while certificates are configured; otherwise plain HTTP only).
    #[default]
    Auto,
    /// TLS only: a plain HTTP request gets a 400 that says so, then the connection closes.
    Required,
    /// Plain HTTP only, never a TLS handshake.
    Off,
}

/// One certificate the server presents (`[[tls]]`): a PEM chain and its private key, or one
/// combined PEM holding both (icecast2's `<ssl-certificate>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFiles {
    pub certificate: PathBuf,
    /// `None`: the key is in the certificate file.
    pub private_key: Option<PathBuf>,
}

/// `[access]`: who may connect, and whose word on the client's address is believed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Access {
    /// Proxies and load balancers whose `X-Forwarded-For` and PROXY headers are believed
    /// (`trusted-proxies`; icecast's `<x-forwarded-for>`).
    pub trusted_proxies: Vec<crate::door::Cidr>,
    /// Indices into [`Config::listen`] of the sockets that expect a PROXY protocol header
    /// from trusted proxies (`[[listen]] proxy-protocol = true`). Kept here so that a
    /// socket's description stays as it is for those that never use it.
    pub proxy_protocol_sockets: Vec<usize>,
    /// icecast's `<deny-ip>` file: connections from these addresses are closed.
    pub deny_ip_file: Option<PathBuf>,
    /// icecast's `<allow-ip>` file: when set, only these addresses may connect.
    pub allow_ip_file: Option<PathBuf>,
    /// Most concurrent connections from one address; 0: no limit.
    pub max_connections_per_ip: usize,
}

impl Access {
    /// Whether `ip` is one of the trusted proxies.
    pub fn is_trusted_proxy(&self, ip: std::net::IpAddr) -> bool {
        self.trusted_proxies.iter().any(|n| n.contains(ip))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// All concurrent clients: listeners, sources, admin requests.
    pub clients: usize,
    pub sources: usize,
    pub queue_size: usize,
    pub burst_size: usize,
    pub header_timeout: Duration,
    pub source_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Auth {
    pub source_password: String,
    pub relay_user: String,
    pub relay_password: String,
    pub admin_user: String,
    pub admin_password: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Paths {
    /// Static files served for paths that are not mounts (`<webroot>`).
    pub webroot: Option<PathBuf>,
    pub pidfile: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Logging {
    /// Icecast-format access log; `None` sends the lines to the tracing log (target `access`).
    pub access_log: Option<PathBuf>,
    /// The server's own log (icecast's error log); `None` keeps it on standard error.
    pub error_log: Option<PathBuf>,
    /// tracing filter, e.g. "info" or "floecast=debug".
    pub level: Option<String>,
}

/// A configured extra response header; defined with the reply heads that send it.
pub use crate::http::response::HttpHeader;

#[derive(Debug, Clone, PartialEq)]
pub struct Tuning {
    /// Longest a listener's data waits so that it can be sent in one larger write.
    /// Fewer, larger writes are what lets one core feed tens of thousands of listeners.
    pub flush_interval: Duration,
    /// TCP listen backlog (icecast2 uses 5, which overflows under connect bursts).
    pub listen_backlog: u32,
}

/// One `[[mount]]` section as written: `None` (or an empty list) means "not set here", so
/// that a less specific section matching the same mount can fill it in ([`Config::mount`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MountConfig {
    /// Mount name or fnmatch-style glob with FNM_PATHNAME semantics (`/live/*`).
    pub name: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub max_listeners: Option<usize>,
    /// Listeners are disconnected after this long (icecast's `max-listener-duration`).
    pub max_listener_duration: Option<Duration>,
    pub burst_size: Option<usize>,
    pub queue_size: Option<usize>,
    pub source_timeout: Option<Duration>,
    pub fallback_mount: Option<String>,
    pub fallback_override: Option<bool>,
    /// Move listeners to the fallback when the source has sent nothing for this long,
    /// while it stays connected (it has until `source_timeout` to speak again).
    pub fallback_after_silence: Option<Duration>,
    pub fallback_when_full: Option<bool>,
    pub hidden: Option<bool>,
    pub public: Option<bool>,
    pub stream_name: Option<String>,
    pub stream_description: Option<String>,
    pub stream_url: Option<String>,
    pub genre: Option<String>,
    pub bitrate: Option<String>,
    /// Overrides the source's Content-Type (`<type>`).
    pub content_type: Option<String>,
    pub subtype: Option<String>,
    /// Charset of metadata updates without `charset=` (icecast default ISO8859-1).
    pub charset: Option<String>,
    /// ICY metadata interval; `Some(0)` disables in-band metadata.
    pub mp3_metadata_interval: Option<usize>,
    /// Interleave ICY metadata into this Ogg mount for listeners that ask (as RSAS does).
    /// Off by default, as in icecast2: players such as mplayer that ask for ICY metadata
    /// then cannot find an Ogg stream in the bytes.
    pub icy_metadata_in_ogg: Option<bool>,
    /// File played to each new listener first: a path under `paths.webroot` (see
    /// [`Config::intro_path`]).
    pub intro: Option<PathBuf>,
    pub dump_file: Option<PathBuf>,
    pub on_connect: Option<PathBuf>,
    pub on_disconnect: Option<PathBuf>,
    /// Extra response headers. Headers of every matching section apply; where two set the
    /// same name, the more specific section's header is sent.
    pub http_headers: Vec<HttpHeader>,
    /// This mount's place in a P2PSP team, if any (exact mount names only).
    pub p2psp: Option<P2pspConfig>,
    /// Listener authentication (`authentication = { type = "htpasswd", … }`); `None` = open.
    pub authentication: Option<ListenerAuth>,
}

impl MountConfig {
    /// Fill every key this section leaves unset from `less_specific`, a section that also
    /// matches the mount (icecast2's `merge_mounts`, applied to any number of sections).
    ///
    /// The destructuring is exhaustive on purpose: a new key does not compile until it says
    /// how it merges.
    pub fn fill_from(&mut self, less_specific: &MountConfig) {
        fn fill<T: Clone>(own: &mut Option<T>, other: &Option<T>) {
            if own.is_none() {
                own.clone_from(other);
            }
        }
        let MountConfig {
            name: _,
            username,
            password,
            max_listeners,
            max_listener_duration,
            burst_size,
            queue_size,
            source_timeout,
            fallback_mount,
            fallback_override,
            fallback_after_silence,
            fallback_when_full,
            hidden,
            public,
            stream_name,
            stream_description,
            stream_url,
            genre,
            bitrate,
            content_type,
            subtype,
            charset,
            mp3_metadata_interval,
            icy_metadata_in_ogg,
            intro,
            dump_file,
            on_connect,
            on_disconnect,
            http_headers,
            p2psp,
            authentication,
        } = less_specific;
        fill(&mut self.username, username);
        fill(&mut self.password, password);
        fill(&mut self.max_listeners, max_listeners);
        fill(&mut self.max_listener_duration, max_listener_duration);
        fill(&mut self.burst_size, burst_size);
        fill(&mut self.queue_size, queue_size);
        fill(&mut self.source_timeout, source_timeout);
        fill(&mut self.fallback_mount, fallback_mount);
        fill(&mut self.fallback_override, fallback_override);
        fill(&mut self.fallback_after_silence, fallback_after_silence);
        fill(&mut self.fallback_when_full, fallback_when_full);
        fill(&mut self.hidden, hidden);
        fill(&mut self.public, public);
        fill(&mut self.stream_name, stream_name);
        fill(&mut self.stream_description, stream_description);
        fill(&mut self.stream_url, stream_url);
        fill(&mut self.genre, genre);
        fill(&mut self.bitrate, bitrate);
        fill(&mut self.content_type, content_type);
        fill(&mut self.subtype, subtype);
        fill(&mut self.charset, charset);
        fill(&mut self.mp3_metadata_interval, mp3_metadata_interval);
        fill(&mut self.icy_metadata_in_ogg, icy_metadata_in_ogg);
        fill(&mut self.intro, intro);
        fill(&mut self.dump_file, dump_file);
        fill(&mut self.on_connect, on_connect);
        fill(&mut self.on_disconnect, on_disconnect);
        // icecast2 appends the default mount's headers to the mount's own; a name the mount
        // already sets stays the mount's, so a header is never sent twice.
        for h in http_headers {
            if !self
                .http_headers
                .iter()
                .any(|own| own.name.eq_ignore_ascii_case(&h.name) && own.status == h.status)
            {
                self.http_headers.push(h.clone());
            }
        }
        fill(&mut self.p2psp, p2psp);
        fill(&mut self.authentication, authentication);
    }
}

/// How listeners of a mount authenticate (icecast2's mount `<authentication>`).
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerAuth {
    pub backend: AuthBackend,
    /// icecast's `allow_duplicate_users`: when false (the default), a user already
    /// listening on the mount is refused a second concurrent login with 401.
    pub allow_duplicate_users: bool,
}

// One per configured mount, read at admission, never per listener: the size difference of
// the variants costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum AuthBackend {
    /// icecast2's `htpasswd`: a file of `user:md5hex(password)` lines (icecast's format, not
    /// Apache's), re-read when it changes.
    Htpasswd { filename: PathBuf },
    /// icecast2's `url`: each listener is POSTed to an HTTP backend that accepts it with a
    /// reply header.
    Url(UrlAuth),
}

/// icecast2's URL authenticator, listener side (`listener_add` / `listener_remove`).
#[derive(Debug, Clone, PartialEq)]
pub struct UrlAuth {
    /// `http://` or `https://` URL POSTed `action=listener_add&server&port&client&mount&user&pass&ip&agent`.
    pub listener_add: String,
    /// Told `action=listener_remove&…&duration` when an accepted listener leaves.
    pub listener_remove: Option<String>,
    /// Basic credentials for the backend itself.
    pub username: Option<String>,
    pub password: Option<String>,
    /// The reply header line that accepts a listener (`icecast-auth-user: 1`).
    pub auth_header: String,
    /// The reply header giving a listening time limit in seconds (`icecast-auth-timelimit:`).
    pub timelimit_header: String,
    /// Listener request headers passed on as `<header_prefix><name>=<value>`.
    pub headers: Vec<String>,
    pub header_prefix: String,
    /// Longest wait for the backend; a listener it does not answer in time is refused.
    pub timeout: Duration,
    /// For an `https://` backend: trust only the CAs in this PEM file, not the system's roots.
    pub ca_file: Option<PathBuf>,
}

impl ListenerAuth {
    pub fn htpasswd(filename: impl Into<PathBuf>, allow_duplicate_users: bool) -> Self {
        ListenerAuth {
            backend: AuthBackend::Htpasswd {
                filename: filename.into(),
            },
            allow_duplicate_users,
        }
    }

    /// icecast's `authenticator` stat.
    pub fn type_name(&self) -> &'static str {
        match self.backend {
            AuthBackend::Htpasswd { .. } => "htpasswd",
            AuthBackend::Url(_) => "url",
        }
    }
}

impl UrlAuth {
    /// icecast's defaults for everything but the URL.
    pub fn new(listener_add: impl Into<String>) -> Self {
        UrlAuth {
            listener_add: listener_add.into(),
            listener_remove: None,
            username: None,
            password: None,
            auth_header: "icecast-auth-user: 1".into(),
            timelimit_header: "icecast-auth-timelimit:".into(),
            headers: Vec::new(),
            header_prefix: "ClientHeader.".into(),
            timeout: Duration::from_secs(5),
            ca_file: None,
        }
    }
}

/// A mount's role in a P2PSP team.
#[derive(Debug, Clone, PartialEq)]
pub enum P2pspConfig {
    /// Serve a team from this mount.
    Splitter(SplitterSettings),
    /// This mount's stream comes from a team: join the splitter at `host:port`. With
    /// `serve`, the mount also splits for a further team (a hybrid tree's inner node).
    Peer {
        splitter: String,
        serve: Option<SplitterSettings>,
        /// The joined team speaks the 2018 C++ reference's format (Gen C).
        compat: bool,
        /// The joined team's secret and the splitter key pinned (native teams).
        auth: TeamAuth,
    },
}

/// How a native team is secured (see `p2psp::auth`). Gen C teams are open and unsigned, as
/// the reference is: none of this applies to them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TeamAuth {
    /// `team-secret`: joins prove it (a challenge-response; it never crosses the network).
    /// A peer that also serves a team uses it for both.
    pub team_secret: Option<String>,
    /// `splitter-key` (peer): the splitter's Ed25519 public key, pinned.
    pub splitter_key: Option<[u8; 32]>,
    /// `splitter-key-file` (splitter): where its Ed25519 key lives (created when missing).
    pub splitter_key_file: Option<PathBuf>,
    /// `trusted-monitors` (splitter): joiners from these addresses are trusted monitors.
    pub trusted_monitors: Vec<std::net::IpAddr>,
    /// `blame-quorum` (splitter): distinct monitors whose loss reports blame a peer; `None`:
    /// only trusted monitors blame.
    pub blame_quorum: Option<usize>,
}

impl P2pspConfig {
    /// The team this mount serves, if it serves one.
    pub fn splitter(&self) -> Option<&SplitterSettings> {
        match self {
            P2pspConfig::Splitter(s) => Some(s),
            P2pspConfig::Peer { serve, .. } => serve.as_ref(),
        }
    }
}

/// How a mount serves a team: TCP joins and UDP chunks on `port`.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitterSettings {
    pub port: u16,
    pub bind_address: Option<String>,
    pub max_peers: usize,
    /// Playout buffer of the team, in chunks.
    pub buffer: u32,
    /// Largest chunk payload; bigger blocks are split. Gen C: the exact chunk size.
    pub max_chunk: usize,
    /// Speak the 2018 C++ reference's format (Gen C) instead of the native one.
    pub compat: bool,
    /// Peers granted the monitor role (their loss reports drive lost-chunk recovery).
    pub monitors: usize,
    /// A native peer silent this long is dropped from the team.
    pub peer_timeout: Duration,
    /// Team secret, splitter key, trusted monitors (native teams).
    pub auth: TeamAuth,
    /// `max-relayed` (native): most members no other member reaches (behind symmetric or
    /// filtering NATs) that the splitter sends the whole stream to.
    pub max_relayed: usize,
    /// `relay-from` (native): the team size from which members flood in two levels, through
    /// √N relays (0: never). The splitter tells every joiner, so the whole team agrees.
    pub relay_from: u32,
}

impl SplitterSettings {
    pub const DEFAULT_MONITORS: usize = 3;
    pub const DEFAULT_MAX_RELAYED: usize = 8;
    pub const DEFAULT_RELAY_FROM: u32 = crate::p2psp::peer::RELAY_FROM as u32;
    pub const DEFAULT_PEER_TIMEOUT: Duration = Duration::from_secs(3);
    /// Native chunk payload by default: with the native chunk header and IPv6+UDP headers a
    /// datagram stays near 1,264 bytes, under the ~1,400-byte path MTU of the internet (no IP
    /// fragments), with room left for per-chunk additions.
    pub const DEFAULT_MAX_CHUNK: usize = 1200;
    /// Gen C chunk size by default: the reference's own (1024 bytes, 1,054 on the wire).
    pub const DEFAULT_MAX_CHUNK_GEN_C: usize = 1024;
    /// Datagrams (IP and UDP headers included) above this may be fragmented off loopback.
    pub const PATH_MTU: usize = 1400;

    /// The default chunk size for a codec.
    pub fn default_max_chunk(compat: bool) -> usize {
        if compat {
            Self::DEFAULT_MAX_CHUNK_GEN_C
        } else {
            Self::DEFAULT_MAX_CHUNK
        }
    }
}

/// The config file's defaults, on port 0 (any free port).
impl Default for SplitterSettings {
    fn default() -> Self {
        SplitterSettings {
            port: 0,
            bind_address: None,
            max_peers: 100,
            buffer: 256,
            max_chunk: Self::DEFAULT_MAX_CHUNK,
            compat: false,
            monitors: Self::DEFAULT_MONITORS,
            peer_timeout: Self::DEFAULT_PEER_TIMEOUT,
            auth: TeamAuth::default(),
            max_relayed: Self::DEFAULT_MAX_RELAYED,
            relay_from: Self::DEFAULT_RELAY_FROM,
        }
    }
}

/// One push relay: send local `mount` to `server:port` as the source of `remote_mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushConfig {
    /// Local mount to send (any live mount: a source, a relay, a P2PSP peer mount).
    pub mount: String,
    /// Remote host name or IP address.
    pub server: String,
    pub port: u16,
    /// Mount on the remote server (defaults to `mount`).
    pub remote_mount: String,
    /// Source user on the remote (icecast: `source` or the mount's `<username>`).
    pub username: String,
    pub password: String,
    pub protocol: PushProtocol,
    /// Local IP address to connect from.
    pub bind: Option<String>,
    /// Connect over TLS (`https://`), and whom to trust.
    pub tls: ClientTls,
}

/// How a push relay logs in as a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PushProtocol {
    /// `PUT` with `Expect: 100-continue`, falling back to `SOURCE` when the remote refuses
    /// the method (as libshout does).
    #[default]
    Auto,
    /// `PUT` only (icecast2 >= 2.4).
    Put,
    /// The legacy `SOURCE` method only.
    Source,
}

impl PushProtocol {
    pub fn name(self) -> &'static str {
        match self {
            PushProtocol::Auto => "auto",
            PushProtocol::Put => "put",
            PushProtocol::Source => "source",
        }
    }
}

/// One pull relay: `GET mount` from `server:port` feeds `local_mount` (icecast `<relay>`).
#[derive(Debug, Clone, PartialEq)]
pub struct RelayConfig {
    pub server: String,
    pub port: u16,
    pub mount: String,
    pub local_mount: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Ask for in-band ICY metadata (`Icy-MetaData: 1`) and re-serve its titles.
    pub relay_metadata: bool,
    /// Reserve the mount and connect only while listeners want it.
    pub on_demand: bool,
    /// Local address to connect from.
    pub bind: Option<String>,
    pub timing: RelayTiming,
    /// Connect over TLS (`https://`), and whom to trust.
    pub tls: ClientTls,
}

/// TLS towards a server floecast connects to (`tls`, `ca-file` on a relay or a push).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientTls {
    pub enabled: bool,
    /// Trust only the CAs in this PEM file, instead of the system's roots.
    pub ca_file: Option<PathBuf>,
}

/// How a relay rides out a lost upstream and how long an idle on-demand relay lingers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RelayTiming {
    /// While the upstream is down, listeners wait this long on the mount (when it has no
    /// live fallback to go to) before the mount ends.
    pub grace_period: Duration,
    /// An on-demand relay disconnects after this long without listeners.
    pub idle_timeout: Duration,
}

impl Default for RelayTiming {
    fn default() -> Self {
        RelayTiming {
            grace_period: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(10),
        }
    }
}

/// Relay all mounts of a master server (icecast `<master-server>` and friends).
#[derive(Debug, Clone, PartialEq)]
pub struct MasterConfig {
    pub server: String,
    pub port: u16,
    pub username: String,
    pub password: String,
    /// How often `/admin/streamlist.txt` is polled.
    pub update_interval: Duration,
    pub on_demand: bool,
    pub timing: RelayTiming,
    /// Fetch the stream list over TLS (icecast-kh's `<master-ssl-port>`).
    pub tls: MasterTls,
}

/// `tls-port` and `ca-file` of `[master]`: the stream list comes over TLS from that port; the
/// relays it lists connect as the list says (`/m` lines plainly to `port`, as icecast-kh).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MasterTls {
    pub port: Option<u16>,
    /// Trust only the CAs in this PEM file, instead of the system's roots.
    pub ca_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hostname: "localhost".into(),
            location: "Earth".into(),
            admin: "icemaster@localhost".into(),
            server_id: format!("Icecast 2.4.4 (floecast {})", env!("CARGO_PKG_VERSION")),
            listen: vec![ListenSocket {
                port: 8000,
                bind_address: None,
                shoutcast_mount: None,
                tls: TlsMode::Auto,
            }],
            limits: Limits::default(),
            access: Access::default(),
            auth: Auth::default(),
            paths: Paths::default(),
            logging: Logging::default(),
            http_headers: vec![HttpHeader {
                name: "Access-Control-Allow-Origin".into(),
                value: "*".into(),
                status: None,
            }],
            mounts: Vec::new(),
            mount_defaults: None,
            tuning: Tuning::default(),
            pushes: Vec::new(),
            relays: Vec::new(),
            master: None,
            relays_on_demand: false,
            tls: Vec::new(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            clients: 100,
            sources: 2,
            queue_size: 524_288,
            burst_size: 65_535,
            header_timeout: Duration::from_secs(15),
            source_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            source_password: DEFAULT_PASSWORD.into(),
            relay_user: "relay".into(),
            relay_password: DEFAULT_PASSWORD.into(),
            admin_user: "admin".into(),
            admin_password: DEFAULT_PASSWORD.into(),
        }
    }
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            flush_interval: Duration::from_millis(1000),
            listen_backlog: 4096,
        }
    }
}

impl Config {
    /// The settings of `mount`: every `[[mount]]` section whose name or glob matches it,
    /// merged key by key, and `[mount-defaults]` under them. For each key the most specific
    /// section that sets it wins ([`specificity`]: the exact name first, then the glob with
    /// the longest literal start, then the one with the most literal characters, then file
    /// order); headers of all of them apply. `None` when nothing matches.
    pub fn mount(&self, mount: &str) -> Option<Cow<'_, MountConfig>> {
        let sections = self.mount_sections(mount);
        let (first, rest) = sections.split_first()?;
        if rest.is_empty() {
            return Some(Cow::Borrowed(*first));
        }
        let mut merged = (*first).clone();
        for s in rest {
            merged.fill_from(s);
        }
        Some(Cow::Owned(merged))
    }

    /// The sections that apply to `mount`, most specific first, `[mount-defaults]` last.
    pub fn mount_sections(&self, mount: &str) -> Vec<&MountConfig> {
        let mut hits: Vec<&MountConfig> = self
            .mounts
            .iter()
            .filter(|m| glob_match(&m.name, mount))
            .collect();
        if hits.len() > 1 {
            // Stable: equally specific sections keep their file order.
            hits.sort_by_key(|m| std::cmp::Reverse(specificity(&m.name)));
        }
        hits.extend(self.mount_defaults.as_ref());
        hits
    }

    /// The most specific value of one key for `mount`, borrowed from the section that sets it.
    fn mount_key<'a, T: ?Sized>(
        &'a self,
        mount: &str,
        key: impl Fn(&'a MountConfig) -> Option<&'a T>,
    ) -> Option<&'a T> {
        self.mount_sections(mount).into_iter().find_map(key)
    }

    /// The listener authentication guarding `mount`, from the live config, so a SIGHUP
    /// that adds, changes or removes it applies to the next listener (as in icecast). A
    /// config without any is answered without looking the mount up.
    pub fn listener_auth(&self, mount: &str) -> Option<&ListenerAuth> {
        let any = self
            .mounts
            .iter()
            .chain(&self.mount_defaults)
            .any(|m| m.authentication.is_some());
        if !any {
            return None;
        }
        self.mount_key(mount, |m| m.authentication.as_ref())
    }

    /// The password a source must give for `mount`: the mount's own, else the global one.
    pub fn source_password_for(&self, mount: &str) -> &str {
        self.mount_key(mount, |m| m.password.as_deref())
            .unwrap_or(&self.auth.source_password)
    }

    /// The source user of `mount`: its own `username`, else `source`.
    pub fn source_user_for(&self, mount: &str) -> &str {
        self.mount_key(mount, |m| m.username.as_deref())
            .unwrap_or("source")
    }

    /// icecast's source credentials for `mount`: the mount's username (else `source`; a mount
    /// with its own username refuses `source`, as icecast2 does), and the mount's password
    /// (else the global one). An empty password never matches.
    pub fn source_credentials_ok(&self, mount: &str, user: &str, pass: &str) -> bool {
        let user_ok = user == self.source_user_for(mount);
        let expected = self.source_password_for(mount);
        user_ok && !expected.is_empty() && crate::http::request::secret_eq(pass, expected)
    }

    /// The admin credentials. An empty admin password disables admin logins, as in icecast2
    /// (an icecast.xml may leave `<admin-password>` empty).
    pub fn admin_credentials_ok(&self, user: &str, pass: &str) -> bool {
        user == self.auth.admin_user
            && !self.auth.admin_password.is_empty()
            && crate::http::request::secret_eq(pass, &self.auth.admin_password)
    }

    /// Where the intro file `intro` of a mount is read from. As in icecast2, it is a path
    /// under the webroot, a leading `/` included (`/intro.mp3` is `<webroot>/intro.mp3`);
    /// without a webroot it is used as written.
    pub fn intro_path(&self, intro: &Path) -> PathBuf {
        match &self.paths.webroot {
            Some(root) => {
                let inside: PathBuf = intro
                    .components()
                    .filter(|c| !matches!(c, std::path::Component::RootDir))
                    .collect();
                root.join(inside)
            }
            None => intro.to_path_buf(),
        }
    }

    /// Names of the passwords still at the sample config's default, for the start-up warning.
    pub fn default_passwords(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.auth.source_password == DEFAULT_PASSWORD {
            out.push("source-password");
        }
        if self.auth.relay_password == DEFAULT_PASSWORD {
            out.push("relay-password");
        }
        if self.auth.admin_password == DEFAULT_PASSWORD {
            out.push("admin-password");
        }
        out
    }
}
