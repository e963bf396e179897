//! Reading icecast2's `icecast.xml`: every option of spec §5 either maps onto floecast's
//! TOML or draws a warning that names it and says why it is ignored.
//!
//! The XML becomes commented TOML (what `floecast import-icecast` prints), which is then
//! loaded like any other file, so both paths share one set of validation rules. Values of
//! the wrong type are reported against the XML element and its line, never against the
//! generated TOML. Nothing here panics on any input.

use std::fmt::Write as _;
use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::Event;

use super::ConfigError;

/// Deepest element nesting accepted (icecast.xml needs 4).
const MAX_DEPTH: usize = 16;
/// Most elements accepted in one file.
const MAX_ELEMENTS: usize = 20_000;

/// The TOML equivalent of an icecast.xml, and what could not be carried over.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    pub toml: String,
    pub warnings: Vec<String>,
}

/// Is this file an icecast.xml rather than TOML?
pub fn looks_like_xml(path: &Path, text: &str) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xml"))
        || text.trim_start().starts_with('<')
}

/// One element of the document.
#[derive(Debug, Default)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<Element>,
    line: usize,
}

impl Element {
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn value(&self) -> &str {
        self.text.trim()
    }
}

fn line_of(text: &str, pos: usize) -> usize {
    text.as_bytes()[..pos.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn parse(text: &str, origin: &str) -> Result<Element, ConfigError> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = vec![Element::default()];
    let mut count = 0usize;
    let err =
        |pos: usize, msg: String| ConfigError::at(origin, Some(line_of(text, pos)), "xml", msg);
    loop {
        let pos = reader.buffer_position() as usize;
        let event = reader
            .read_event()
            .map_err(|e| err(pos, format!("malformed XML: {e}")))?;
        match event {
            Event::Start(e) | Event::Empty(e) if stack.len() > MAX_DEPTH => {
                return Err(err(
                    pos,
                    format!(
                        "elements nested too deep at <{}>",
                        String::from_utf8_lossy(e.name().as_ref())
                    ),
                ));
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(err(pos, "too many elements".into()));
                }
                let mut el = Element {
                    name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                    line: line_of(text, pos),
                    ..Default::default()
                };
                for a in e.attributes().flatten() {
                    let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
                    let value = a
                        .unescape_value()
                        .map(|v| v.into_owned())
                        .unwrap_or_default();
                    el.attrs.push((key, value));
                }
                if matches!(event, Event::Empty(_)) {
                    if let Some(parent) = stack.last_mut() {
                        parent.children.push(el);
                    }
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                if stack.len() < 2 {
                    return Err(err(pos, "unbalanced closing tag".into()));
                }
                if let (Some(el), Some(parent)) = (stack.pop(), stack.last_mut()) {
                    parent.children.push(el);
                }
            }
            Event::Text(t) => {
                if let Some(el) = stack.last_mut() {
                    let s = t.decode().map_err(|e| err(pos, format!("bad text: {e}")))?;
                    el.text.push_str(&s);
                }
            }
            // quick-xml reports `&amp;` and friends as events of their own.
            Event::GeneralRef(r) => {
                if let Some(el) = stack.last_mut() {
                    let name = String::from_utf8_lossy(&r).into_owned();
                    let resolved = match name.as_str() {
                        "amp" => Some('&'),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        n => n
                            .strip_prefix("#x")
                            .map(|h| u32::from_str_radix(h, 16))
                            .or_else(|| n.strip_prefix('#').map(str::parse::<u32>))
                            .and_then(Result::ok)
                            .and_then(char::from_u32),
                    };
                    match resolved {
                        Some(c) => el.text.push(c),
                        None => return Err(err(pos, format!("unknown entity &{name};"))),
                    }
                }
            }
            Event::CData(t) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() != 1 {
        return Err(err(text.len(), "unclosed element at end of file".into()));
    }
    let doc = stack.pop().unwrap_or_default();
    doc.children
        .into_iter()
        .find(|c| c.name == "icecast")
        .ok_or_else(|| err(0, "no <icecast> root element".into()))
}

/// Builds the TOML text section by section, remembering what was dropped.
struct Writer<'a> {
    origin: &'a str,
    out: String,
    warnings: Vec<String>,
}

/// A TOML string literal (toml's own escaping).
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

impl Writer<'_> {
    fn warn(&mut self, el: &Element, path: &str, why: &str) {
        let w = format!("line {}: <{path}> ignored: {why}", el.line);
        let _ = writeln!(self.out, "# {w}");
        self.warnings.push(w);
    }

    fn int(&self, el: &Element, path: &str) -> Result<i64, ConfigError> {
        el.value().parse::<i64>().map_err(|_| {
            ConfigError::at(
                self.origin,
                Some(el.line),
                path,
                format!("expected a whole number, got {:?}", el.value()),
            )
        })
    }

    fn bool01(&self, el: &Element, path: &str) -> Result<bool, ConfigError> {
        Ok(self.int(el, path)? != 0)
    }

    fn string(&mut self, key: &str, el: &Element) {
        let _ = writeln!(self.out, "{key} = {}", q(el.value()));
    }

    fn number(&mut self, key: &str, el: &Element, path: &str) -> Result<(), ConfigError> {
        let n = self.int(el, path)?;
        let _ = writeln!(self.out, "{key} = {n}");
        Ok(())
    }

    fn flag(&mut self, key: &str, el: &Element, path: &str) -> Result<(), ConfigError> {
        let b = self.bool01(el, path)?;
        let _ = writeln!(self.out, "{key} = {b}");
        Ok(())
    }
}

/// Convert an icecast.xml document to floecast TOML.
pub fn to_toml(text: &str, origin: &str) -> Result<Converted, ConfigError> {
    let root = parse(text, origin)?;
    let mut w = Writer {
        origin,
        out: String::new(),
        warnings: Vec::new(),
    };
    let _ = writeln!(
        w.out,
        "# floecast configuration converted from {origin} (icecast2 format)."
    );
    let _ = writeln!(
        w.out,
        "# Lines starting with '# line N: <...> ignored' name icecast options floecast does not use.\n"
    );

    // Top level scalars.
    let mut legacy_port = None;
    let mut legacy_bind = None;
    let mut legacy_source_password = None;
    let mut fileserve = true;
    for el in &root.children {
        match el.name.as_str() {
            "location" | "admin" | "hostname" => w.string(&el.name.clone(), el),
            "server-id" => w.string("server-id", el),
            "port" => legacy_port = Some(w.int(el, "port")?),
            "bind-address" => legacy_bind = Some(el.value().to_string()),
            "source-password" => legacy_source_password = Some(el.value().to_string()),
            "fileserve" => fileserve = w.bool01(el, "fileserve")?,
            "icelogin" => w.warn(
                el,
                "icelogin",
                "ice-password logins (ICE/1.0) are always accepted",
            ),
            "mime-types" => w.warn(
                el,
                "mime-types",
                "static files get their type from a built-in table",
            ),
            "shoutcast-mount" => {} // used below with shoutcast-compat sockets
            "relays-on-demand" => w.flag("relays-on-demand", el, "relays-on-demand")?,
            // Written as [master] and [[relay]] tables after the mounts.
            "master-server"
            | "master-server-port"
            | "master-username"
            | "master-password"
            | "master-update-interval"
            | "relay" => {}
            "master-ssl-port" => w.warn(
                el,
                "master-ssl-port",
                "relays connect over plain HTTP only; the master is polled on master-server-port",
            ),
            "master-bind" => w.warn(
                el,
                "master-bind",
                "the master is polled from the default local address",
            ),
            "directory" => w.warn(el, "directory", "YP directory listings are not supported"),
            "security" => w.warn(
                el,
                "security",
                "start floecast as the intended user instead (chroot/changeowner are not needed)",
            ),
            "limits" | "authentication" | "listen-socket" | "http-headers" | "mount" | "paths"
            | "logging" => {}
            other => w.warn(el, other, "unknown icecast option"),
        }
    }
    let _ = writeln!(w.out);

    // Listen sockets.
    let global_sc_mount = root.child("shoutcast-mount").map(|e| e.value().to_string());
    let sockets: Vec<&Element> = root.children_named("listen-socket").collect();
    if sockets.is_empty() {
        if let Some(port) = legacy_port {
            let _ = writeln!(w.out, "[[listen]]\nport = {port}");
            if let Some(b) = &legacy_bind {
                let _ = writeln!(w.out, "bind-address = {}", q(b));
            }
            let _ = writeln!(w.out);
        }
    }
    // A socket with <shoutcast-compat>1 *is* an ICY port; floecast opens ICY ports as
    // port+1 of an HTTP socket, so such a socket maps onto the socket one port below it.
    let compat_ports: Vec<(i64, Option<String>)> = sockets
        .iter()
        .filter(|s| {
            s.child("shoutcast-compat")
                .is_some_and(|c| c.value() == "1")
        })
        .filter_map(|s| {
            let port = s.child("port")?.value().parse().ok()?;
            Some((
                port,
                s.child("shoutcast-mount").map(|m| m.value().to_string()),
            ))
        })
        .collect();
    for s in &sockets {
        let is_compat = s
            .child("shoutcast-compat")
            .is_some_and(|c| c.value() == "1");
        let Some(port_el) = s.child("port") else {
            w.warn(s, "listen-socket", "no <port>");
            continue;
        };
        let port = w.int(port_el, "listen-socket.port")?;
        // Plain HTTP on a port clients reach with TLS would only confuse them: skip it.
        if let Some(ssl) = s.child("ssl").filter(|c| c.value() == "1") {
            w.warn(
                ssl,
                "listen-socket.ssl",
                "TLS is not supported yet, so this socket is not opened; put a TLS proxy in front",
            );
            continue;
        }
        if is_compat {
            if !sockets.iter().any(|o| {
                o.child("port").and_then(|p| p.value().parse::<i64>().ok()) == Some(port - 1)
            }) {
                w.warn(
                    s,
                    "listen-socket",
                    "a shoutcast-compat socket needs an HTTP socket on the port below it",
                );
            }
            continue;
        }
        let _ = writeln!(w.out, "[[listen]]\nport = {port}");
        for c in &s.children {
            match c.name.as_str() {
                "port" | "shoutcast-compat" => {}
                "bind-address" => w.string("bind-address", c),
                "shoutcast-mount" => w.string("shoutcast-mount", c),
                "ssl" => {}
                "so-sndbuf" => w.warn(
                    c,
                    "listen-socket.so-sndbuf",
                    "the kernel's autotuning is used",
                ),
                other => w.warn(
                    c,
                    &format!("listen-socket.{other}"),
                    "unknown listen-socket option",
                ),
            }
        }
        if s.child("shoutcast-mount").is_none() {
            if let Some((_, m)) = compat_ports.iter().find(|(p, _)| *p == port + 1) {
                let mount = m
                    .clone()
                    .or_else(|| global_sc_mount.clone())
                    .unwrap_or_else(|| "/stream".into());
                let _ = writeln!(w.out, "shoutcast-mount = {}", q(&mount));
            }
        }
        let _ = writeln!(w.out);
    }

    // Limits.
    if let Some(limits) = root.child("limits") {
        let _ = writeln!(w.out, "[limits]");
        let burst_on = limits
            .child("burst-on-connect")
            .map(|e| w.bool01(e, "limits.burst-on-connect"))
            .transpose()?;
        for c in &limits.children {
            match c.name.as_str() {
                "clients" | "sources" | "queue-size" | "header-timeout" | "source-timeout" => {
                    w.number(&c.name.clone(), c, &format!("limits.{}", c.name))?;
                }
                "burst-size" if burst_on != Some(false) => {
                    w.number("burst-size", c, "limits.burst-size")?
                }
                "burst-size" | "burst-on-connect" => {}
                "client-timeout" => {
                    w.warn(c, "limits.client-timeout", "icecast2 itself never uses it")
                }
                other => w.warn(c, &format!("limits.{other}"), "unknown limit"),
            }
        }
        if burst_on == Some(false) {
            let _ = writeln!(w.out, "burst-size = 0");
        }
        let _ = writeln!(w.out);
    }

    // Authentication.
    let auth = root.child("authentication");
    if auth.is_some() || legacy_source_password.is_some() {
        let _ = writeln!(w.out, "[authentication]");
        if let Some(p) = &legacy_source_password {
            if auth.and_then(|a| a.child("source-password")).is_none() {
                let _ = writeln!(w.out, "source-password = {}", q(p));
            }
        }
        for c in auth.map(|a| a.children.as_slice()).unwrap_or(&[]) {
            match c.name.as_str() {
                "source-password" | "relay-user" | "relay-password" | "admin-user"
                | "admin-password" => {
                    w.string(&c.name.clone(), c);
                }
                other => w.warn(
                    c,
                    &format!("authentication.{other}"),
                    "unknown authentication option",
                ),
            }
        }
        let _ = writeln!(w.out);
    }

    // Paths and logging.
    let paths = root.child("paths");
    let logdir = paths
        .and_then(|p| p.child("logdir"))
        .map(|e| e.value().to_string());
    if let Some(paths) = paths {
        let _ = writeln!(w.out, "[paths]");
        for c in &paths.children {
            match c.name.as_str() {
                "webroot" if fileserve => w.string("webroot", c),
                "webroot" => w.warn(c, "paths.webroot", "<fileserve> is 0"),
                "pidfile" => w.string("pidfile", c),
                "logdir" => {}
                "basedir" => w.warn(c, "paths.basedir", "only used by icecast for chroot"),
                "adminroot" => w.warn(c, "paths.adminroot", "floecast's admin pages are built in"),
                "alias" => w.warn(
                    c,
                    "paths.alias",
                    "URL aliases are not supported; `/` is the status page",
                ),
                "deny-ip" | "allow-ip" => w.warn(
                    c,
                    &format!("paths.{}", c.name),
                    "IP filter files are not supported yet",
                ),
                "ssl-certificate" | "ssl-allowed-ciphers" => {
                    w.warn(c, &format!("paths.{}", c.name), "TLS is not supported yet")
                }
                other => w.warn(c, &format!("paths.{other}"), "unknown path option"),
            }
        }
        let _ = writeln!(w.out);
    }
    if let Some(logging) = root.child("logging") {
        let _ = writeln!(w.out, "[logging]");
        for c in &logging.children {
            match c.name.as_str() {
                "accesslog" => {
                    let file = c.value();
                    let path = match &logdir {
                        Some(d) if !file.starts_with('/') => {
                            format!("{}/{file}", d.trim_end_matches('/'))
                        }
                        _ => file.to_string(),
                    };
                    let _ = writeln!(w.out, "access-log = {}", q(&path));
                }
                "loglevel" => {
                    let level = match w.int(c, "logging.loglevel")? {
                        ..=1 => "error",
                        2 => "warn",
                        3 => "info",
                        _ => "debug",
                    };
                    let _ = writeln!(w.out, "level = {}", q(level));
                }
                "errorlog" => w.warn(
                    c,
                    "logging.errorlog",
                    "the error log goes to standard error (journald, docker logs)",
                ),
                "playlistlog" => w.warn(c, "logging.playlistlog", "not supported yet"),
                "logsize" | "logarchive" => w.warn(
                    c,
                    &format!("logging.{}", c.name),
                    "rotate with logrotate and SIGHUP, which reopens the log",
                ),
                other => w.warn(c, &format!("logging.{other}"), "unknown logging option"),
            }
        }
        let _ = writeln!(w.out);
    }

    // Global extra headers.
    let headers: Vec<&Element> = root
        .child("http-headers")
        .map(|h| h.children_named("header").collect())
        .unwrap_or_default();
    if root.child("http-headers").is_some() && headers.is_empty() {
        let _ = writeln!(w.out, "http-header = []\n");
    }
    for h in headers {
        write_header(&mut w, h, "http-header")?;
    }

    // Mounts.
    for m in root.children_named("mount") {
        write_mount(&mut w, m)?;
    }

    // Relays.
    write_master(&mut w, &root)?;
    for r in root.children_named("relay") {
        write_relay(&mut w, r)?;
    }
    Ok(Converted {
        toml: w.out,
        warnings: w.warnings,
    })
}

/// `<master-server>` and friends become `[master]` (relay-all from that server).
fn write_master(w: &mut Writer<'_>, root: &Element) -> Result<(), ConfigError> {
    let keys = [
        "master-server",
        "master-server-port",
        "master-username",
        "master-password",
        "master-update-interval",
    ];
    let present: Vec<&Element> = root
        .children
        .iter()
        .filter(|c| keys.contains(&c.name.as_str()))
        .collect();
    let Some(first) = present.first() else {
        return Ok(());
    };
    let server = root.child("master-server").map(|e| e.value()).unwrap_or("");
    let password = root
        .child("master-password")
        .map(|e| e.value())
        .unwrap_or("");
    if server.is_empty() || password.is_empty() {
        for el in &present {
            w.warn(
                el,
                &el.name,
                "master relaying needs both <master-server> and <master-password>",
            );
        }
        return Ok(());
    }
    let _ = writeln!(
        w.out,
        "# Relay every mount the master lists in /admin/streamlist.txt (line {}).\n[master]",
        first.line
    );
    w.string("server", root.child("master-server").unwrap_or(first));
    if let Some(p) = root.child("master-server-port") {
        w.number("port", p, "master-server-port")?;
    }
    if let Some(u) = root.child("master-username") {
        w.string("username", u);
    }
    w.string("password", root.child("master-password").unwrap_or(first));
    if let Some(i) = root.child("master-update-interval") {
        w.number("update-interval", i, "master-update-interval")?;
    }
    let _ = writeln!(w.out);
    Ok(())
}

/// `<relay>` becomes `[[relay]]`.
fn write_relay(w: &mut Writer<'_>, r: &Element) -> Result<(), ConfigError> {
    let _ = writeln!(w.out, "[[relay]]");
    if r.child("port").is_none() {
        // icecast has no default here (it would dial port 0); the sample uses 8000.
        w.warn(r, "relay", "no <port>; using 8000");
        let _ = writeln!(w.out, "port = 8000");
    }
    for c in &r.children {
        let path = format!("relay.{}", c.name);
        match c.name.as_str() {
            "server" | "mount" | "local-mount" | "username" | "password" | "bind" => {
                w.string(&c.name.clone(), c)
            }
            "port" => w.number("port", c, &path)?,
            "relay-shoutcast-metadata" => w.flag("relay-metadata", c, &path)?,
            "on-demand" => w.flag("on-demand", c, &path)?,
            other => w.warn(c, &format!("relay.{other}"), "unknown relay option"),
        }
    }
    let _ = writeln!(w.out);
    Ok(())
}

fn write_header(w: &mut Writer<'_>, h: &Element, table: &str) -> Result<(), ConfigError> {
    let (Some(name), Some(value)) = (h.attr("name"), h.attr("value")) else {
        w.warn(h, "header", "needs both name and value");
        return Ok(());
    };
    let _ = writeln!(
        w.out,
        "[[{table}]]\nname = {}\nvalue = {}",
        q(name),
        q(value)
    );
    if let Some(status) = h.attr("status") {
        let n: i64 = status.parse().map_err(|_| {
            ConfigError::at(
                w.origin,
                Some(h.line),
                "header.status",
                format!("expected a status code, got {status:?}"),
            )
        })?;
        if n != 0 {
            let _ = writeln!(w.out, "status = {n}");
        }
    }
    let _ = writeln!(w.out);
    Ok(())
}

/// A mount's `<authentication>`: `type="htpasswd"` (options `filename`,
/// `allow_duplicate_users`) or `type="url"` (its listener options) as `authentication = {…}`.
/// What cannot carry over leaves the mount open with a warning that says so.
fn write_listener_auth(w: &mut Writer<'_>, a: &Element, path: &str) -> Result<(), ConfigError> {
    let kind = a.attr("type").unwrap_or("");
    if kind != "htpasswd" && kind != "url" {
        let why = format!("unknown type {kind:?}; THE MOUNT IS OPEN to every listener");
        w.warn(a, path, &why);
        return Ok(());
    }
    let opt_path = format!("{path}.option");
    let mut fields: Vec<String> = vec![format!("type = {}", q(kind))];
    let mut required = None;
    for o in a.children_named("option") {
        let (Some(name), Some(value)) = (o.attr("name"), o.attr("value")) else {
            w.warn(o, &opt_path, "needs both name and value");
            continue;
        };
        let key = match (kind, name) {
            ("htpasswd", "filename") | ("url", "listener_add") => {
                required = Some(value.to_string());
                name.replace('_', "-")
            }
            (
                "url",
                "listener_remove" | "username" | "password" | "auth_header" | "timelimit_header"
                | "header_prefix",
            ) => name.replace('_', "-"),
            (_, "allow_duplicate_users") => {
                let n: i64 = value.trim().parse().map_err(|_| {
                    ConfigError::at(
                        w.origin,
                        Some(o.line),
                        &opt_path,
                        format!("allow_duplicate_users: expected 0 or 1, got {value:?}"),
                    )
                })?;
                fields.push(format!("allow-duplicate-users = {}", n != 0));
                continue;
            }
            ("url", "headers") => {
                let list: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|h| !h.is_empty())
                    .map(q)
                    .collect();
                fields.push(format!("headers = [{}]", list.join(", ")));
                continue;
            }
            ("url", "mount_add" | "mount_remove" | "stream_auth") => {
                w.warn(
                    o,
                    &format!("{opt_path} name={name:?}"),
                    "source-side URL hooks are not supported (listener_add/listener_remove are)",
                );
                continue;
            }
            _ => {
                w.warn(
                    o,
                    &format!("{opt_path} name={name:?}"),
                    &format!("not a {kind} option floecast knows"),
                );
                continue;
            }
        };
        if (key == "listener-add" || key == "listener-remove") && !value.starts_with("http://") {
            let why = format!(
                "only http:// backends are supported (floecast has no TLS client){}",
                if key == "listener-add" {
                    "; THE MOUNT IS OPEN to every listener"
                } else {
                    ""
                }
            );
            w.warn(o, &format!("{opt_path} name={name:?}"), &why);
            if key == "listener-add" {
                return Ok(());
            }
            continue;
        }
        fields.push(format!("{key} = {}", q(value)));
    }
    if required.filter(|r| !r.is_empty()).is_none() {
        let what = if kind == "url" {
            "listener_add"
        } else {
            "filename"
        };
        w.warn(
            a,
            path,
            &format!("{kind} without a {what} option; THE MOUNT IS OPEN to every listener"),
        );
        return Ok(());
    }
    let _ = writeln!(w.out, "authentication = {{ {} }}", fields.join(", "));
    Ok(())
}

fn write_mount(w: &mut Writer<'_>, m: &Element) -> Result<(), ConfigError> {
    let name = match (m.attr("type"), m.child("mount-name")) {
        // icecast's default mount applies to every mount without its own section; floecast's
        // globs cannot express "any depth", so it covers top-level mounts (`/*`).
        (Some("default"), _) => {
            w.warn(
                m,
                "mount type=\"default\"",
                "applied as the glob \"/*\" (top-level mounts only)",
            );
            "/*".to_string()
        }
        (_, Some(n)) => n.value().to_string(),
        (_, None) => {
            w.warn(m, "mount", "no <mount-name>");
            return Ok(());
        }
    };
    let _ = writeln!(w.out, "[[mount]]\nname = {}", q(&name));
    let mut headers = Vec::new();
    for c in &m.children {
        let path = format!("mount.{}", c.name);
        match c.name.as_str() {
            "mount-name" => {}
            "username" | "password" | "dump-file" | "intro" | "fallback-mount" | "stream-name"
            | "stream-description" | "stream-url" | "genre" | "bitrate" | "type" | "subtype"
            | "charset" | "on-connect" | "on-disconnect" => {
                w.string(&c.name.clone(), c);
            }
            "fallback-override" | "fallback-when-full" | "hidden" => {
                w.flag(&c.name.clone(), c, &path)?
            }
            // -1 means "not set" in icecast.
            "max-listeners" | "mp3-metadata-interval" | "public" => {
                let n = w.int(c, &path)?;
                if n >= 0 {
                    if c.name == "public" {
                        let _ = writeln!(w.out, "public = {}", n != 0);
                    } else {
                        let _ = writeln!(w.out, "{} = {n}", c.name);
                    }
                }
            }
            "burst-size" | "queue-size" | "source-timeout" => {
                w.number(&c.name.clone(), c, &path)?
            }
            "http-headers" => headers.extend(c.children_named("header")),
            "max-listener-duration" => {
                w.warn(c, &path, "listening time limits are not supported yet")
            }
            "no-mount" => w.warn(c, &path, "every mount can be listened to"),
            "no-yp" => w.warn(c, &path, "YP directory listings are not supported"),
            "authentication" => write_listener_auth(w, c, &path)?,
            "cluster-password" | "burst-on-connect" => {
                w.warn(c, &path, "not an icecast 2.4 option floecast uses")
            }
            other => w.warn(c, &format!("mount.{other}"), "unknown mount option"),
        }
    }
    let _ = writeln!(w.out);
    for h in headers {
        write_header(w, h, "mount.http-header")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn convert(xml: &str) -> Converted {
        to_toml(xml, "icecast.xml").unwrap_or_else(|e| panic!("{e}"))
    }

    fn load(xml: &str) -> Config {
        let c = convert(xml);
        Config::from_toml_str(&c.toml, "converted").unwrap_or_else(|e| panic!("{e}\n{}", c.toml))
    }

    #[test]
    fn debian_sample_config_equals_the_embedded_defaults() {
        // The shape of Debian's /etc/icecast2/icecast.xml (comments and all).
        let xml = include_str!("../../tests/data/icecast-debian.xml");
        let c = convert(xml);
        let config = Config::from_toml_str(&c.toml, "converted").unwrap();
        let d = Config::default();
        assert_eq!(config.limits, d.limits);
        assert_eq!(config.auth, d.auth);
        assert_eq!(config.listen.len(), 1);
        assert_eq!(config.listen[0].port, 8000);
        assert_eq!(config.http_headers, d.http_headers);
        assert_eq!(config.hostname, "localhost");
        // Its logging and paths sections are mapped or explained.
        assert!(
            config
                .logging
                .access_log
                .as_deref()
                .is_some_and(|p| p.ends_with("access.log"))
        );
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("<logging.errorlog> ignored")),
            "{:?}",
            c.warnings
        );
        assert!(
            c.warnings.iter().any(|w| w.contains("<security> ignored")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn rich_config_maps_every_option() {
        let xml = r#"<icecast>
  <location>Berlin</location><admin>ops@example.org</admin><hostname>radio.example.org</hostname>
  <server-id>My Icecast</server-id>
  <limits><clients>5000</clients><sources>10</sources><queue-size>1048576</queue-size>
    <client-timeout>30</client-timeout><header-timeout>20</header-timeout><source-timeout>5</source-timeout>
    <burst-on-connect>1</burst-on-connect><burst-size>131072</burst-size></limits>
  <authentication><source-password>s3cret</source-password><relay-user>slave</relay-user>
    <relay-password>r3lay</relay-password><admin-user>boss</admin-user><admin-password>adm1n</admin-password></authentication>
  <listen-socket><port>8000</port><shoutcast-mount>/live.mp3</shoutcast-mount></listen-socket>
  <listen-socket><port>8443</port><ssl>1</ssl></listen-socket>
  <listen-socket><port>9000</port><bind-address>::1</bind-address></listen-socket>
  <http-headers><header name="X-Station" value="Example"/><header name="X-Err" value="1" status="404"/></http-headers>
  <relay><server>up.example.org</server><port>8000</port><mount>/a</mount></relay>
  <relay><server>10.0.0.2</server><port>8001</port><mount>/b.ogg</mount><local-mount>/c.ogg</local-mount>
    <username>source</username><password>pw</password><relay-shoutcast-metadata>0</relay-shoutcast-metadata>
    <on-demand>1</on-demand><bind>127.0.0.1</bind></relay>
  <relays-on-demand>0</relays-on-demand>
  <master-server>master.example.org</master-server><master-server-port>8010</master-server-port>
  <master-username>slave</master-username><master-password>mpw</master-password>
  <master-update-interval>60</master-update-interval><master-ssl-port>8443</master-ssl-port>
  <mount type="normal">
    <mount-name>/live/*</mount-name><username>dj</username><password>djpw</password>
    <max-listeners>100</max-listeners><max-listener-duration>3600</max-listener-duration>
    <dump-file>/tmp/dump-%Y.mp3</dump-file><intro>/intro.mp3</intro>
    <fallback-mount>/fallback.mp3</fallback-mount><fallback-override>1</fallback-override>
    <fallback-when-full>1</fallback-when-full><hidden>1</hidden><public>-1</public><no-yp>1</no-yp>
    <stream-name>Live &amp; Loud</stream-name><stream-description>desc</stream-description>
    <stream-url>http://example.org</stream-url><genre>Rock</genre><bitrate>128</bitrate>
    <type>audio/mpeg</type><subtype>mp3</subtype><charset>UTF-8</charset>
    <mp3-metadata-interval>8192</mp3-metadata-interval><burst-size>32768</burst-size>
    <queue-size>262144</queue-size><source-timeout>30</source-timeout>
    <on-connect>/usr/local/bin/on</on-connect><on-disconnect>/usr/local/bin/off</on-disconnect>
    <http-headers><header name="X-Mount" value="live"/></http-headers>
    <authentication type="url"><option name="listener_add" value="https://auth.example/add"/></authentication>
  </mount>
  <mount type="default"><max-listeners>50</max-listeners></mount>
  <paths><basedir>/usr/share/icecast2</basedir><logdir>/var/log/icecast2</logdir>
    <webroot>/usr/share/icecast2/web</webroot><adminroot>/usr/share/icecast2/admin</adminroot>
    <pidfile>/run/icecast.pid</pidfile><alias source="/" destination="/status.xsl"/></paths>
  <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>4</loglevel>
    <logsize>10000</logsize></logging>
  <security><chroot>0</chroot></security>
</icecast>"#;
        let c = convert(xml);
        let config = Config::from_toml_str(&c.toml, "converted")
            .unwrap_or_else(|e| panic!("{e}\n{}", c.toml));
        assert_eq!(config.location, "Berlin");
        assert_eq!(config.hostname, "radio.example.org");
        assert_eq!(config.server_id, "My Icecast");
        assert_eq!(config.limits.clients, 5000);
        assert_eq!(config.limits.burst_size, 131_072);
        assert_eq!(config.limits.header_timeout.as_secs(), 20);
        assert_eq!(config.auth.admin_user, "boss");
        assert_eq!(config.auth.relay_user, "slave");
        // The TLS socket is dropped with a warning; the others map.
        assert_eq!(
            config.listen.iter().map(|l| l.port).collect::<Vec<_>>(),
            vec![8000, 9000]
        );
        assert_eq!(
            config.listen[0].shoutcast_mount.as_deref(),
            Some("/live.mp3")
        );
        assert_eq!(config.listen[1].bind_address.as_deref(), Some("::1"));
        assert_eq!(config.http_headers.len(), 2);
        assert_eq!(config.http_headers[1].status, Some(404));
        let live = config.mount("/live/a").expect("glob mount");
        assert_eq!(live.username.as_deref(), Some("dj"));
        assert_eq!(live.max_listeners, Some(100));
        assert_eq!(live.stream_name.as_deref(), Some("Live & Loud"));
        assert_eq!(live.content_type.as_deref(), Some("audio/mpeg"));
        assert_eq!(live.mp3_metadata_interval, Some(8192));
        assert!(live.fallback_override && live.fallback_when_full && live.hidden);
        assert_eq!(live.public, None);
        assert_eq!(live.http_headers.len(), 1);
        assert_eq!(
            config.mount("/other").and_then(|m| m.max_listeners),
            Some(50)
        );
        assert_eq!(
            config.logging.access_log.as_deref(),
            Some(Path::new("/var/log/icecast2/access.log"))
        );
        assert_eq!(config.logging.level.as_deref(), Some("debug"));
        assert_eq!(
            config.paths.webroot.as_deref(),
            Some(Path::new("/usr/share/icecast2/web"))
        );
        assert_eq!(config.relays.len(), 2);
        let a = &config.relays[0];
        assert_eq!(
            (
                a.server.as_str(),
                a.port,
                a.mount.as_str(),
                a.local_mount.as_str()
            ),
            ("up.example.org", 8000, "/a", "/a")
        );
        assert!(a.relay_metadata && !a.on_demand);
        let b = &config.relays[1];
        assert_eq!(
            (b.server.as_str(), b.port, b.local_mount.as_str()),
            ("10.0.0.2", 8001, "/c.ogg")
        );
        assert_eq!(
            (
                b.username.as_deref(),
                b.password.as_deref(),
                b.bind.as_deref()
            ),
            (Some("source"), Some("pw"), Some("127.0.0.1"))
        );
        assert!(!b.relay_metadata && b.on_demand);
        let m = config.master.as_ref().expect("master");
        assert_eq!(
            (
                m.server.as_str(),
                m.port,
                m.username.as_str(),
                m.password.as_str()
            ),
            ("master.example.org", 8010, "slave", "mpw")
        );
        assert_eq!(m.update_interval.as_secs(), 60);
        assert!(
            !c.warnings
                .iter()
                .any(|w| w.contains("<relay>") || w.contains("<master-server>"))
        );
        for ignored in [
            "listen-socket.ssl",
            "limits.client-timeout",
            "master-ssl-port",
            "mount.max-listener-duration",
            "mount.no-yp",
            "mount.authentication",
            "mount type=\"default\"",
            "paths.adminroot",
            "paths.alias",
            "logging.errorlog",
            "logging.logsize",
            "security",
        ] {
            assert!(
                c.warnings
                    .iter()
                    .any(|w| w.contains(&format!("<{ignored}"))),
                "no warning for {ignored}: {:?}",
                c.warnings
            );
        }
        // Every warning is also a comment in the TOML.
        assert!(c.toml.contains("# line "), "{}", c.toml);
    }

    #[test]
    fn relays_on_demand_and_incomplete_master() {
        let c = convert(
            "<icecast><relays-on-demand>1</relays-on-demand><master-server>m</master-server>\
             <relay><mount>/x</mount><bogus>1</bogus></relay></icecast>",
        );
        let config = Config::from_toml_str(&c.toml, "converted")
            .unwrap_or_else(|e| panic!("{e}\n{}", c.toml));
        assert!(config.relays_on_demand);
        assert!(config.master.is_none());
        // The relay inherits relays-on-demand and gets the sample's port with a warning.
        let r = &config.relays[0];
        assert!(r.on_demand);
        assert_eq!(
            (r.server.as_str(), r.port, r.mount.as_str()),
            ("127.0.0.1", 8000, "/x")
        );
        for w in [
            "<master-server> ignored",
            "<relay> ignored: no <port>",
            "<relay.bogus>",
        ] {
            assert!(
                c.warnings.iter().any(|x| x.contains(w)),
                "{w}: {:?}",
                c.warnings
            );
        }
    }

    #[test]
    fn shoutcast_compat_socket_maps_to_port_plus_one() {
        let config = load(
            "<icecast><shoutcast-mount>/sc</shoutcast-mount><listen-socket><port>8000</port></listen-socket>\
             <listen-socket><port>8001</port><shoutcast-compat>1</shoutcast-compat></listen-socket></icecast>",
        );
        assert_eq!(config.listen.len(), 1);
        assert_eq!(config.listen[0].shoutcast_mount.as_deref(), Some("/sc"));
    }

    #[test]
    fn legacy_port_and_burst_off() {
        let config = load(
            "<icecast><port>8100</port><source-password>x</source-password>\
             <limits><burst-on-connect>0</burst-on-connect><burst-size>65535</burst-size></limits></icecast>",
        );
        assert_eq!(config.listen[0].port, 8100);
        assert_eq!(config.auth.source_password, "x");
        assert_eq!(config.limits.burst_size, 0);
    }

    #[test]
    fn errors_name_element_and_line() {
        let e = to_toml(
            "<icecast>\n<limits>\n<clients>many</clients>\n</limits>\n</icecast>",
            "ice.xml",
        )
        .unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("line 3") && s.contains("limits.clients") && s.contains("many"),
            "{s}"
        );
        assert!(to_toml("<icecast><limits>", "x").is_err());
        assert!(to_toml("<notice/>", "x").is_err());
        assert!(to_toml("garbage", "x").is_err());
        let deep = "<icecast>".to_string() + &"<a>".repeat(40) + &"</a>".repeat(40) + "</icecast>";
        assert!(to_toml(&deep, "x").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,300}") {
            let _ = to_toml(&s, "x");
            let _ = to_toml(&format!("<icecast>{s}</icecast>"), "x");
        }
    }

    #[test]
    fn listener_authentication_maps() {
        let xml = r#"<icecast>
  <mount type="normal"><mount-name>/members.mp3</mount-name>
    <authentication type="htpasswd">
      <option name="filename" value="/etc/icecast2/members.htpasswd"/>
      <option name="allow_duplicate_users" value="1"/>
      <option name="bogus" value="x"/>
    </authentication>
    <http-headers><header name="X-M" value="1"/></http-headers>
  </mount>
  <mount type="normal"><mount-name>/plain.mp3</mount-name>
    <authentication type="htpasswd"><option name="filename" value="users"/></authentication>
  </mount>
  <mount type="normal"><mount-name>/url.mp3</mount-name>
    <authentication type="url">
      <option name="listener_add" value="http://auth.example/add.php"/>
      <option name="listener_remove" value="http://auth.example/remove.php"/>
      <option name="username" value="u"/><option name="password" value="p"/>
      <option name="auth_header" value="icecast-auth-user: 1"/>
      <option name="headers" value="x-forwarded-for, referer"/>
      <option name="mount_add" value="http://auth.example/mount_add.php"/>
    </authentication>
  </mount>
  <mount type="normal"><mount-name>/tls.mp3</mount-name>
    <authentication type="url"><option name="listener_add" value="https://a/b"/></authentication>
  </mount>
  <mount type="normal"><mount-name>/nofile.mp3</mount-name>
    <authentication type="htpasswd"/>
  </mount>
  <mount type="normal"><mount-name>/ldap.mp3</mount-name>
    <authentication type="ldap"/>
  </mount>
</icecast>"#;
        let c = convert(xml);
        let config = Config::from_toml_str(&c.toml, "converted")
            .unwrap_or_else(|e| panic!("{e}\n{}", c.toml));
        let auth = |m: &str| config.mount(m).and_then(|m| m.authentication.clone());
        assert_eq!(
            auth("/members.mp3"),
            Some(crate::config::ListenerAuth::htpasswd(
                "/etc/icecast2/members.htpasswd",
                true
            ))
        );
        // icecast's default: allow_duplicate_users = 0.
        assert_eq!(
            auth("/plain.mp3"),
            Some(crate::config::ListenerAuth::htpasswd("users", false))
        );
        assert_eq!(
            config.mount("/members.mp3").map(|m| m.http_headers.len()),
            Some(1)
        );
        let mut url = crate::config::UrlAuth::new("http://auth.example/add.php");
        url.listener_remove = Some("http://auth.example/remove.php".into());
        url.username = Some("u".into());
        url.password = Some("p".into());
        url.headers = vec!["x-forwarded-for".into(), "referer".into()];
        assert_eq!(
            auth("/url.mp3"),
            Some(crate::config::ListenerAuth {
                backend: crate::config::AuthBackend::Url(url),
                allow_duplicate_users: false,
            })
        );
        assert_eq!(auth("/tls.mp3"), None);
        assert_eq!(auth("/nofile.mp3"), None);
        assert_eq!(auth("/ldap.mp3"), None);
        let warned = |needle: &str| c.warnings.iter().any(|w| w.contains(needle));
        assert!(warned("name=\"mount_add\""), "{:?}", c.warnings);
        assert!(warned("no TLS client"), "{:?}", c.warnings);
        assert!(warned("THE MOUNT IS OPEN"), "{:?}", c.warnings);
        assert!(warned("without a filename"), "{:?}", c.warnings);
        assert!(warned("unknown type \"ldap\""), "{:?}", c.warnings);
        assert!(warned("name=\"bogus\""), "{:?}", c.warnings);
    }
}
