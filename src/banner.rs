//! The start-up banner: where to send a stream and where to listen, printed as commands that
//! work when pasted (real mounts, real credentials, a reachable address). It never prints a
//! placeholder that looks like a command; a password it must hide is said to be hidden.

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use crate::config::{Config, P2pspConfig};
use crate::http::request::percent_encode;
use crate::team::peer::TeamSocket;

/// Most mounts given a line of their own; the rest are counted.
const MAX_MOUNT_LINES: usize = 6;

/// What the banner may show of the passwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// Print them (stdout is a terminal, read by whoever started the server).
    Show,
    /// Keep them out of the output (stdout goes to a file or a log collector, which more
    /// people read than the config file); default passwords are public and still shown.
    Hide,
}

/// The host part of a URL that reaches `addr` from this machine: `localhost` for a socket
/// on every address, the address itself for a socket bound to one.
pub fn local_host(addr: &SocketAddr) -> String {
    match addr.ip() {
        ip if ip.is_unspecified() => "localhost".to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
        ip => ip.to_string(),
    }
}

/// A mount name that is an icecast glob (`/dj/*`) rather than one mount.
fn is_pattern(name: &str) -> bool {
    name.contains(['*', '?', '['])
}

/// Quote a word for a POSIX shell when it needs it.
fn shell_word(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_./:@%=+,".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The ffmpeg arguments that push a file of the kind `mount` is named for, and that file.
fn ffmpeg_input(mount: &str) -> (&'static str, &'static str) {
    let ext = mount.rsplit_once('.').map_or("", |(_, e)| e);
    match ext.to_ascii_lowercase().as_str() {
        "ogg" | "oga" => ("song.ogg", "-content_type application/ogg -f ogg"),
        "opus" => ("song.opus", "-content_type audio/ogg -f ogg"),
        _ => ("song.mp3", "-content_type audio/mpeg -f mp3"),
    }
}

/// Mounts that get their stream from elsewhere (a relay or a P2PSP team): nothing to push.
fn fed_from_elsewhere(config: &Config, mount: &str) -> Option<String> {
    if let Some(r) = config.relays.iter().find(|r| r.local_mount == mount) {
        return Some(format!("relayed from {}:{}{}", r.server, r.port, r.mount));
    }
    config
        .mounts
        .iter()
        .find(|m| m.name == mount)
        .and_then(|m| match &m.p2psp {
            Some(P2pspConfig::Peer { splitter, .. }) => {
                Some(format!("from the P2PSP team of {splitter}"))
            }
            _ => None,
        })
}

/// The server's banner for the sockets bound at `http` (first one used for URLs).
pub fn server(config: &Config, http: &[SocketAddr], secrets: Secrets) -> String {
    let Some(first) = http.first() else {
        return "\n  floecast is up (no HTTP socket).\n".to_string();
    };
    let base = format!("http://{}:{}", local_host(first), first.port());
    let show =
        |password: &str| secrets == Secrets::Show || password == crate::config::DEFAULT_PASSWORD;
    let mut out = String::new();
    let _ = writeln!(out, "\n  floecast is up.");
    let _ = writeln!(out, "  Status page:  {base}/");

    // Mounts in config order, relays' local mounts included; globs name no mount of their own.
    let mut mounts: Vec<&str> = Vec::new();
    for name in config
        .mounts
        .iter()
        .map(|m| m.name.as_str())
        .chain(config.relays.iter().map(|r| r.local_mount.as_str()))
    {
        if !is_pattern(name) && name.starts_with('/') && !mounts.contains(&name) {
            mounts.push(name);
        }
    }
    let mut pushable: Vec<&str> = mounts
        .iter()
        .copied()
        .filter(|m| fed_from_elsewhere(config, m).is_none())
        .collect();
    if pushable.is_empty() {
        // Only globs, relays or nothing configured: any name works for a source.
        pushable.push("/live");
    }
    let mut hidden = false;
    let _ = writeln!(
        out,
        "  Send a stream (ffmpeg here; any icecast source client works):"
    );
    for mount in pushable.iter().take(MAX_MOUNT_LINES) {
        let password = config.source_password_for(mount);
        let (file, format) = ffmpeg_input(mount);
        let target = format!("{}:{}{mount}", local_host(first), first.port());
        if password.is_empty() {
            let _ = writeln!(
                out,
                "    {mount}: no source password is set for it, so sources are refused"
            );
        } else if show(password) {
            let url = format!("icecast://source:{}@{target}", percent_encode(password));
            let _ = writeln!(
                out,
                "    ffmpeg -re -i {file} -c copy {format} {}",
                shell_word(&url)
            );
        } else {
            hidden = true;
            let _ = writeln!(
                out,
                "    {mount}: user \"source\" and its source password, to icecast://{target}"
            );
        }
    }
    if pushable.len() > MAX_MOUNT_LINES {
        let _ = writeln!(
            out,
            "    … and {} more mounts",
            pushable.len() - MAX_MOUNT_LINES
        );
    }
    let _ = writeln!(out, "  Listen (ffplay, mpv, VLC, a browser):");
    let listen: Vec<&str> = if mounts.is_empty() {
        pushable.clone()
    } else {
        mounts.clone()
    };
    for mount in listen.iter().take(MAX_MOUNT_LINES) {
        match fed_from_elsewhere(config, mount) {
            Some(from) => {
                let _ = writeln!(out, "    {base}{mount}   ({from})");
            }
            None => {
                let _ = writeln!(out, "    {base}{mount}");
            }
        }
    }
    if listen.len() > MAX_MOUNT_LINES {
        let _ = writeln!(out, "    … and {} more", listen.len() - MAX_MOUNT_LINES);
    }
    if config.hostname != "localhost" {
        let _ = writeln!(
            out,
            "  Public URLs use hostname \"{}\": http://{}:{}{}",
            config.hostname,
            config.hostname,
            first.port(),
            listen.first().copied().unwrap_or("/live")
        );
    }
    let admin = &config.auth.admin_password;
    if admin.is_empty() {
        let _ = writeln!(out, "  Admin:        disabled (no admin password set)");
    } else if show(admin) {
        let _ = writeln!(
            out,
            "  Admin:        {base}/admin/stats  user \"{}\", password \"{admin}\"",
            config.auth.admin_user
        );
    } else {
        hidden = true;
        let _ = writeln!(
            out,
            "  Admin:        {base}/admin/stats  user \"{}\" and the admin password",
            config.auth.admin_user
        );
    }
    if hidden {
        let _ = writeln!(
            out,
            "  (Passwords set in the config file are not printed because this output is not a\n   terminal and may end up in a log; they are in the config file.)"
        );
    }
    out
}

/// What a stand-alone peer is and what it does not do.
#[derive(Debug, Clone)]
pub struct PeerBanner<'a> {
    pub splitter: &'a str,
    pub mount: &'a str,
    pub http: &'a [SocketAddr],
    /// Where the P2PSP sockets (UDP and the TCP join) bind.
    pub team_socket: TeamSocket,
    pub accepts_sources: bool,
    pub admin: bool,
}

/// The banner of `floecast peer`.
pub fn peer(b: &PeerBanner<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n  floecast peer is up.");
    let _ = writeln!(out, "  Team:    the P2PSP team of {}", b.splitter);
    for addr in b.http.iter().take(1) {
        let _ = writeln!(
            out,
            "  Listen:  http://{}:{}{}   (ffplay, mpv, VLC, a browser)",
            local_host(addr),
            addr.port(),
            b.mount
        );
    }
    let ip = b
        .team_socket
        .ip
        .map_or_else(|| "every address".to_string(), |ip| ip.to_string());
    let team = match b.team_socket.port {
        0 => format!("{ip}, a new port for each join (pin it with --udp-port)"),
        port => format!("{ip}, port {port}"),
    };
    let _ = writeln!(out, "  P2PSP:   UDP (and the TCP join) from {team}");
    if !b.accepts_sources {
        let _ = writeln!(
            out,
            "  Sources: none accepted (the stream comes from the team; set a source password\n           in a --config file to accept sources too)"
        );
    }
    if !b.admin {
        let _ = writeln!(
            out,
            "  Admin:   disabled (set an admin password in a --config file to enable it)"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MountConfig, RelayConfig};

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn defaults_give_a_pasteable_live_command() {
        let text = server(&Config::default(), &[addr("[::]:8000")], Secrets::Hide);
        assert!(
            text.contains(
                "ffmpeg -re -i song.mp3 -c copy -content_type audio/mpeg -f mp3 icecast://source:hackme@localhost:8000/live"
            ),
            "{text}"
        );
        assert!(text.contains("http://localhost:8000/live"), "{text}");
        assert!(!text.contains('…') || !text.contains("source:…"), "{text}");
        assert!(text.contains("password \"hackme\""), "{text}");
    }

    #[test]
    fn configured_mounts_with_their_own_passwords() {
        let mut c = Config::default();
        c.auth.source_password = "s3cret pw".into();
        c.auth.admin_password = "adm".into();
        c.mounts.push(MountConfig {
            name: "/radio.ogg".into(),
            password: Some("ogg'pw".into()),
            ..Default::default()
        });
        c.mounts.push(MountConfig {
            name: "/dj/*".into(),
            ..Default::default()
        });
        c.mounts.push(MountConfig {
            name: "/talk".into(),
            ..Default::default()
        });
        c.relays.push(RelayConfig {
            server: "up.example".into(),
            port: 8000,
            mount: "/x".into(),
            local_mount: "/relayed".into(),
            username: None,
            password: None,
            relay_metadata: true,
            on_demand: false,
            bind: None,
            timing: Default::default(),
            tls: Default::default(),
        });
        let text = server(&c, &[addr("127.0.0.1:8100")], Secrets::Show);
        assert!(
            text.contains("-content_type application/ogg -f ogg icecast://source:ogg%27pw@127.0.0.1:8100/radio.ogg"),
            "{text}"
        );
        assert!(
            text.contains("icecast://source:s3cret%20pw@127.0.0.1:8100/talk"),
            "{text}"
        );
        assert!(!text.contains("/dj/"), "{text}");
        assert!(!text.contains("/live"), "{text}");
        assert!(
            text.contains("http://127.0.0.1:8100/relayed   (relayed from up.example:8000/x)"),
            "{text}"
        );
        assert!(!text.contains("icecast://source:s3cret%20pw@127.0.0.1:8100/relayed"));
        // Not a terminal: custom passwords stay out, and the banner says so.
        let hidden = server(&c, &[addr("127.0.0.1:8100")], Secrets::Hide);
        assert!(!hidden.contains("s3cret") && !hidden.contains("ogg%27pw"));
        assert!(!hidden.contains("\"adm\""));
        assert!(hidden.contains("not printed because this output is not a"));
    }

    #[test]
    fn globs_only_give_the_generic_mount() {
        let mut c = Config::default();
        c.mounts.push(MountConfig {
            name: "/*".into(),
            ..Default::default()
        });
        let text = server(&c, &[addr("[::1]:8000")], Secrets::Show);
        assert!(
            text.contains("icecast://source:hackme@[::1]:8000/live"),
            "{text}"
        );
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_word("icecast://a:b@h:1/m"), "icecast://a:b@h:1/m");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("a'b"), r"'a'\''b'");
    }
}
