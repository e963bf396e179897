//! Reading icecast2's `icecast.xml`: every option of spec §5 either maps onto floecast's
//! TOML or draws a warning that names it and says why it is ignored or handled differently.
//!
//! The XML becomes commented TOML (what `floecast import-icecast` prints), built with a
//! checked builder so it is always valid TOML, then loaded like any other file, so both paths
//! share one set of validation rules. Errors are reported against the XML element and its
//! line, never against the generated TOML. Nothing here panics on any input.

use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::Event;

use super::toml_doc::{Origin, SectionId, TomlDoc};
use super::{Config, ConfigError, ConfigWarning, Severity, glob_match};

/// Deepest element nesting accepted (icecast.xml needs 4).
const MAX_DEPTH: usize = 16;
/// Most elements accepted in one file.
const MAX_ELEMENTS: usize = 20_000;

/// The TOML equivalent of an icecast.xml, and what could not be carried over.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    pub toml: String,
    /// In file order; each is also a comment in `toml`.
    pub warnings: Vec<ConfigWarning>,
    /// The XML file's name.
    origin: String,
    /// For each line of `toml`, the XML element it came from.
    origins: Vec<Option<Origin>>,
}

impl Converted {
    /// Loads the converted TOML. An error is reported at the XML line and option it came
    /// from, not at a line of TOML the user never saw.
    pub fn load(&self) -> Result<Config, ConfigError> {
        Config::from_toml_str(&self.toml, &format!("{} (converted)", self.origin)).map_err(|e| {
            let at = e.line().and_then(|line| {
                self.origins[..line.min(self.origins.len())]
                    .iter()
                    .rev()
                    .flatten()
                    .next()
            });
            match at {
                Some(at) => e.relocate(&self.origin, at.line, &at.option),
                None => e,
            }
        })
    }
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

/// Builds the TOML document and the warnings about what does not carry over.
struct Writer<'a> {
    origin: &'a str,
    doc: TomlDoc,
    warnings: Vec<ConfigWarning>,
}

const ROOT: SectionId = TomlDoc::ROOT;

impl Writer<'_> {
    /// A warning, also written as a comment into the table `at`.
    fn note(
        &mut self,
        at: SectionId,
        line: usize,
        option: &str,
        severity: Severity,
        message: String,
    ) {
        let w = ConfigWarning {
            line: Some(line),
            option: option.to_string(),
            message,
            severity,
        };
        let comment = match severity {
            Severity::Danger => format!("WARNING: {w}"),
            Severity::Notice => w.to_string(),
        };
        self.doc.section(at).comment(&comment);
        self.warnings.push(w);
    }

    fn ignored(&mut self, at: SectionId, el: &Element, option: &str, why: &str) {
        self.note(
            at,
            el.line,
            option,
            Severity::Notice,
            format!("ignored: {why}"),
        );
    }

    fn danger(&mut self, at: SectionId, el: &Element, option: &str, message: String) {
        self.note(at, el.line, option, Severity::Danger, message);
    }

    /// Sets `key` from `el`. An option given twice keeps its last value, as in icecast2.
    fn set(
        &mut self,
        at: SectionId,
        key: &str,
        value: impl Into<toml::Value>,
        el: &Element,
        option: &str,
    ) {
        let earlier = self
            .doc
            .section(at)
            .set(key, value, Origin::new(el.line, option));
        if let Some(earlier) = earlier {
            self.note(
                at,
                el.line,
                option,
                Severity::Notice,
                format!(
                    "repeated (first at line {}); the last one applies, as in icecast2",
                    earlier.line
                ),
            );
        }
    }

    /// A text option. An empty element is "not set" in icecast2, so it is left out.
    fn text(&mut self, at: SectionId, key: &str, el: &Element, option: &str) {
        if el.value().is_empty() {
            self.ignored(at, el, option, "empty, which icecast2 reads as not set");
        } else {
            self.set(at, key, el.value(), el, option);
        }
    }

    fn int(&self, el: &Element, option: &str) -> Result<i64, ConfigError> {
        el.value().parse::<i64>().map_err(|_| {
            ConfigError::at(
                self.origin,
                Some(el.line),
                option,
                format!("expected a whole number, got {:?}", el.value()),
            )
        })
    }

    fn number(
        &mut self,
        at: SectionId,
        key: &str,
        el: &Element,
        option: &str,
    ) -> Result<(), ConfigError> {
        let n = self.int(el, option)?;
        self.set(at, key, n, el, option);
        Ok(())
    }

    fn flag(
        &mut self,
        at: SectionId,
        key: &str,
        el: &Element,
        option: &str,
    ) -> Result<(), ConfigError> {
        let b = self.int(el, option)? != 0;
        self.set(at, key, b, el, option);
        Ok(())
    }
}

/// Convert an icecast.xml document to floecast TOML. Options are read in file order and the
/// last of a repeated one wins, as in icecast2.
pub fn to_toml(text: &str, origin: &str) -> Result<Converted, ConfigError> {
    let root = parse(text, origin)?;
    let mut w = Writer {
        origin,
        doc: TomlDoc::default(),
        warnings: Vec::new(),
    };
    w.doc.section(ROOT).comment(&format!(
        "floecast configuration converted from {origin} (icecast2 format).\n\
         Comments starting with 'line N:' name icecast options that floecast does not carry\n\
         out as written, and why.\n"
    ));
    top_level(&mut w, &root)?;
    listen_sockets(&mut w, &root)?;
    limits(&mut w, &root)?;
    authentication(&mut w, &root);
    paths_and_logging(&mut w, &root)?;
    if let Some(list) = headers(&mut w, ROOT, root.children_named("http-headers"), "")? {
        let line = root.child("http-headers").map_or(1, |h| h.line);
        w.doc
            .section(ROOT)
            .set("http-header", list, Origin::new(line, "http-headers"));
    }
    mounts(&mut w, &root)?;
    master(&mut w, &root)?;
    relays(&mut w, &root)?;
    let rendered = w.doc.render();
    Ok(Converted {
        toml: rendered.text,
        warnings: w.warnings,
        origin: origin.to_string(),
        origins: rendered.origins,
    })
}

/// Top-level scalars, and the options that have no place in floecast.
fn top_level(w: &mut Writer<'_>, root: &Element) -> Result<(), ConfigError> {
    for el in &root.children {
        let name = el.name.as_str();
        match name {
            "location" | "admin" | "hostname" | "server-id" => w.text(ROOT, name, el, name),
            "relays-on-demand" => w.flag(ROOT, "relays-on-demand", el, name)?,
            "icelogin" => w.ignored(
                ROOT,
                el,
                name,
                "ice-password logins (ICE/1.0) are always accepted",
            ),
            "mime-types" => w.ignored(
                ROOT,
                el,
                name,
                "static files get their type from a built-in table",
            ),
            "master-ssl-port" => w.ignored(
                ROOT,
                el,
                name,
                "an icecast-kh option: the master is polled over plain HTTP on master-server-port",
            ),
            "master-bind" => w.ignored(
                ROOT,
                el,
                name,
                "an icecast-kh option: the master is polled from the default local address",
            ),
            "directory" => w.ignored(ROOT, el, name, "YP directory listings are not supported"),
            "security" => w.ignored(
                ROOT,
                el,
                name,
                "floecast neither chroots nor changes its user: start it as the user it should \
                 run as (systemd User=, docker --user)",
            ),
            // Read by the sections they belong to.
            "fileserve"
            | "port"
            | "bind-address"
            | "shoutcast-mount"
            | "source-password"
            | "master-server"
            | "master-server-port"
            | "master-username"
            | "master-password"
            | "master-update-interval"
            | "relay"
            | "limits"
            | "authentication"
            | "listen-socket"
            | "http-headers"
            | "mount"
            | "paths"
            | "logging" => {}
            other => w.ignored(
                ROOT,
                el,
                other,
                "unknown icecast option (icecast2 ignores it too)",
            ),
        }
    }
    Ok(())
}

/// The last `name` child of `el` (icecast2 reads repeated options in order, so the last wins).
fn last<'a>(el: &'a Element, name: &str) -> Option<&'a Element> {
    el.children.iter().rev().find(|c| c.name == name)
}

/// `<listen-socket>`s (or the legacy top-level `<port>`) become `[[listen]]` tables.
fn listen_sockets(w: &mut Writer<'_>, root: &Element) -> Result<(), ConfigError> {
    let global_used = write_sockets(w, root)?;
    if let Some(global) = last(root, "shoutcast-mount") {
        if !global_used {
            w.ignored(
                ROOT,
                global,
                "shoutcast-mount",
                "it only names the mount of a <listen-socket> with <shoutcast-compat>1 and no \
                 <shoutcast-mount> of its own, and there is none; give a [[listen]] socket a \
                 shoutcast-mount to accept SHOUTcast sources on its port + 1",
            );
        }
    }
    Ok(())
}

/// [`listen_sockets`]; says whether the top-level `<shoutcast-mount>` was used.
fn write_sockets(w: &mut Writer<'_>, root: &Element) -> Result<bool, ConfigError> {
    let mut global_used = false;
    let sockets: Vec<&Element> = root.children_named("listen-socket").collect();
    let legacy_port = last(root, "port");
    let legacy_bind = last(root, "bind-address");
    if sockets.is_empty() {
        if legacy_port.is_some() || legacy_bind.is_some() {
            let at_el = legacy_port.or(legacy_bind).unwrap_or(root);
            let id = w.doc.push("listen", Origin::new(at_el.line, "port"));
            match legacy_port {
                Some(p) => w.number(id, "port", p, "port")?,
                None => w.set(id, "port", 8000, at_el, "port"),
            }
            if let Some(b) = legacy_bind {
                w.text(id, "bind-address", b, "bind-address");
            }
        }
        return Ok(global_used);
    }
    for el in [legacy_port, legacy_bind].into_iter().flatten() {
        w.ignored(
            ROOT,
            el,
            &el.name,
            "<listen-socket> sections are present (icecast2 ignores it too)",
        );
    }

    let global_sc_mount = last(root, "shoutcast-mount")
        .map(|e| e.value().to_string())
        .filter(|m| !m.is_empty());
    let port_of = |w: &Writer<'_>, s: &Element| -> Result<Option<i64>, ConfigError> {
        match last(s, "port").filter(|p| !p.value().is_empty()) {
            Some(p) => Ok(Some(w.int(p, "listen-socket.port")?)),
            None => Ok(None),
        }
    };
    let is_set = |w: &Writer<'_>, s: &Element, name: &str| -> Result<bool, ConfigError> {
        match last(s, name) {
            Some(e) => Ok(w.int(e, &format!("listen-socket.{name}"))? != 0),
            None => Ok(false),
        }
    };
    // A socket with <shoutcast-compat>1 *is* an ICY port; floecast opens ICY ports as
    // port + 1 of an HTTP socket, so such a socket maps onto the socket one port below it.
    let mut compat_ports: Vec<(i64, Option<String>)> = Vec::new();
    let mut http_ports: Vec<i64> = Vec::new();
    for s in &sockets {
        let port = port_of(w, s)?.unwrap_or(8000);
        if is_set(w, s, "shoutcast-compat")? {
            let mount = last(s, "shoutcast-mount").map(|m| m.value().to_string());
            compat_ports.push((port, mount));
        } else if !is_set(w, s, "ssl")? {
            http_ports.push(port);
        }
    }

    let mut opened = 0;
    let mut first_tls: Option<&Element> = None;
    for s in &sockets {
        let port = match port_of(w, s)? {
            Some(p) => p,
            None => {
                w.note(
                    ROOT,
                    s.line,
                    "listen-socket",
                    Severity::Notice,
                    "has no <port>: port 8000, as in icecast2".into(),
                );
                8000
            }
        };
        if is_set(w, s, "ssl")? {
            let ssl = last(s, "ssl").unwrap_or(s);
            first_tls.get_or_insert(ssl);
            w.danger(
                ROOT,
                ssl,
                "listen-socket.ssl",
                format!(
                    "TLS is not supported yet, so port {port} is NOT opened (floecast would \
                     otherwise serve plain HTTP where clients expect TLS). Terminate TLS in a \
                     proxy (nginx, haproxy, stunnel) on port {port} that forwards to a plain \
                     <listen-socket>, or remove this socket."
                ),
            );
            continue;
        }
        if is_set(w, s, "shoutcast-compat")? {
            if !http_ports.contains(&(port - 1)) {
                w.ignored(
                    ROOT,
                    s,
                    "listen-socket",
                    &format!(
                        "a shoutcast-compat socket needs a plain HTTP socket on the port below \
                         it ({}); floecast opens SHOUTcast ports as port + 1 of one",
                        port - 1
                    ),
                );
            }
            for c in &s.children {
                if !matches!(
                    c.name.as_str(),
                    "port" | "shoutcast-compat" | "shoutcast-mount"
                ) {
                    w.ignored(
                        ROOT,
                        c,
                        &format!("listen-socket.{}", c.name),
                        "a shoutcast-compat socket shares the settings of the HTTP socket below it",
                    );
                }
            }
            continue;
        }
        let id = w.doc.push("listen", Origin::new(s.line, "listen-socket"));
        let port_el = last(s, "port").unwrap_or(s);
        w.set(id, "port", port, port_el, "listen-socket.port");
        for c in &s.children {
            let option = format!("listen-socket.{}", c.name);
            match c.name.as_str() {
                "port" | "ssl" | "shoutcast-compat" => {}
                "bind-address" => w.text(id, "bind-address", c, &option),
                "shoutcast-mount" => w.text(id, "shoutcast-mount", c, &option),
                "so-sndbuf" => w.ignored(id, c, &option, "the kernel's autotuning is used"),
                _ => w.ignored(id, c, &option, "unknown listen-socket option"),
            }
        }
        let has_mount = last(s, "shoutcast-mount").is_some_and(|m| !m.value().is_empty());
        if !has_mount {
            if let Some((_, m)) = compat_ports.iter().find(|(p, _)| *p == port + 1) {
                let own = m.clone().filter(|m| !m.is_empty());
                global_used |= own.is_none() && global_sc_mount.is_some();
                let mount = own
                    .or_else(|| global_sc_mount.clone())
                    .unwrap_or_else(|| "/stream".into());
                w.set(
                    id,
                    "shoutcast-mount",
                    mount,
                    s,
                    "listen-socket.shoutcast-compat",
                );
            }
        }
        opened += 1;
    }
    if opened == 0 {
        if let Some(tls) = first_tls {
            return Err(ConfigError::at(
                w.origin,
                Some(tls.line),
                "listen-socket.ssl",
                "every <listen-socket> is TLS-only (<ssl>1), and floecast cannot serve TLS yet: \
                 add a plain <listen-socket> (with a TLS proxy in front of it if needed)"
                    .into(),
            ));
        }
    }
    Ok(global_used)
}

/// `<limits>`, in file order: `<burst-on-connect>0` zeroes the burst size at its place, so a
/// `<burst-size>` after it wins, exactly as in icecast2.
fn limits(w: &mut Writer<'_>, root: &Element) -> Result<(), ConfigError> {
    let mut burst_off: Option<&Element> = None;
    for l in root.children_named("limits") {
        let id = w.doc.table("limits", Origin::new(l.line, "limits"));
        for c in &l.children {
            let option = format!("limits.{}", c.name);
            match c.name.as_str() {
                "clients" | "sources" | "queue-size" | "header-timeout" | "source-timeout" => {
                    w.number(id, &c.name, c, &option)?
                }
                "burst-on-connect" => {
                    if w.int(c, &option)? == 0 {
                        w.doc
                            .section(id)
                            .set("burst-size", 0, Origin::new(c.line, &option));
                        burst_off = Some(c);
                    }
                }
                "burst-size" => {
                    let n = w.int(c, &option)?;
                    w.doc
                        .section(id)
                        .set("burst-size", n, Origin::new(c.line, &option));
                    if let Some(off) = burst_off.take() {
                        w.note(
                            id,
                            off.line,
                            "limits.burst-on-connect",
                            Severity::Notice,
                            format!(
                                "0 is overridden by the <burst-size> at line {}, as in icecast2 \
                                 (which applies them in file order); write \
                                 <burst-size>0</burst-size> to turn the burst off",
                                c.line
                            ),
                        );
                    }
                }
                "client-timeout" => w.ignored(id, c, &option, "icecast2 itself never uses it"),
                "threadpool" => w.ignored(id, c, &option, "icecast2 2.4 does not use it either"),
                _ => w.ignored(id, c, &option, "unknown limit"),
            }
        }
    }
    Ok(())
}

/// `<authentication>` and the legacy top-level `<source-password>`, in file order.
fn authentication(w: &mut Writer<'_>, root: &Element) {
    for el in &root.children {
        match el.name.as_str() {
            "source-password" => {
                let id = w
                    .doc
                    .table("authentication", Origin::new(el.line, "source-password"));
                w.set(id, "source-password", el.value(), el, "source-password");
            }
            "authentication" => {
                let id = w
                    .doc
                    .table("authentication", Origin::new(el.line, "authentication"));
                for c in &el.children {
                    let option = format!("authentication.{}", c.name);
                    match c.name.as_str() {
                        "source-password" if c.attr("mount").is_some() => w.ignored(
                            id,
                            c,
                            &option,
                            "a mount's source password belongs in its <mount><password> \
                             (icecast2 ignores it too)",
                        ),
                        // An empty password is kept: floecast, like icecast2, then refuses
                        // every login with it (the TOML default would be "hackme").
                        "source-password" | "relay-user" | "relay-password" | "admin-user"
                        | "admin-password" => w.set(id, &c.name, c.value(), c, &option),
                        _ => w.ignored(id, c, &option, "unknown authentication option"),
                    }
                }
            }
            _ => {}
        }
    }
}

/// `<paths>` and `<logging>` (whose file names are relative to `<logdir>`).
fn paths_and_logging(w: &mut Writer<'_>, root: &Element) -> Result<(), ConfigError> {
    let fileserve = match last(root, "fileserve") {
        Some(f) => w.int(f, "fileserve")? != 0,
        None => true,
    };
    let mut logdir: Option<String> = None;
    for p in root.children_named("paths") {
        let id = w.doc.table("paths", Origin::new(p.line, "paths"));
        for c in &p.children {
            let option = format!("paths.{}", c.name);
            match c.name.as_str() {
                "webroot" if fileserve => w.text(id, "webroot", c, &option),
                "webroot" => w.ignored(id, c, &option, "<fileserve> is 0"),
                "pidfile" => w.text(id, "pidfile", c, &option),
                "logdir" if !c.value().is_empty() => logdir = Some(c.value().to_string()),
                "logdir" => w.ignored(id, c, &option, "empty"),
                "basedir" => w.ignored(id, c, &option, "only used by icecast for chroot"),
                "adminroot" => w.ignored(id, c, &option, "floecast's admin pages are built in"),
                "alias" => w.ignored(
                    id,
                    c,
                    &option,
                    "URL aliases are not supported; `/` is the status page",
                ),
                "deny-ip" | "allow-ip" => w.danger(
                    id,
                    c,
                    &option,
                    "ignored: IP filter files are not supported yet, so EVERY address may \
                     connect; filter in a firewall instead"
                        .into(),
                ),
                "ssl-certificate" | "ssl-allowed-ciphers" => w.ignored(
                    id,
                    c,
                    &option,
                    "TLS is not supported yet; terminate TLS in a proxy",
                ),
                _ => w.ignored(id, c, &option, "unknown path option"),
            }
        }
    }
    for l in root.children_named("logging") {
        let id = w.doc.table("logging", Origin::new(l.line, "logging"));
        for c in &l.children {
            let option = format!("logging.{}", c.name);
            match c.name.as_str() {
                "accesslog" if !c.value().is_empty() => {
                    let file = c.value();
                    let path = match &logdir {
                        Some(d) if !file.starts_with('/') => {
                            format!("{}/{file}", d.trim_end_matches('/'))
                        }
                        _ => file.to_string(),
                    };
                    w.set(id, "access-log", path.as_str(), c, &option);
                    w.note(
                        id,
                        c.line,
                        &option,
                        Severity::Notice,
                        format!(
                            "floecast appends to icecast2's own access log {path}. If icecast2 \
                             still runs, both write to it; icecast2's logrotate rule signals only \
                             icecast2, so floecast keeps writing to the rotated file; and floecast \
                             started as root creates files owned by root in icecast2's log \
                             directory. Unless floecast replaces icecast2 for good, set \
                             access-log to a file of floecast's own, e.g. \
                             /var/log/floecast/access.log."
                        ),
                    );
                }
                "accesslog" => w.ignored(id, c, &option, "empty"),
                "loglevel" => {
                    let level = match w.int(c, &option)? {
                        ..=1 => "error",
                        2 => "warn",
                        3 => "info",
                        _ => "debug",
                    };
                    w.set(id, "level", level, c, &option);
                }
                "errorlog" => w.ignored(
                    id,
                    c,
                    &option,
                    "the error log goes to standard error (journald, docker logs)",
                ),
                "playlistlog" => w.ignored(id, c, &option, "not supported yet"),
                "logsize" | "logarchive" => w.ignored(
                    id,
                    c,
                    &option,
                    "rotate with logrotate and SIGHUP, which reopens the log",
                ),
                _ => w.ignored(id, c, &option, "unknown logging option"),
            }
        }
    }
    Ok(())
}

/// The `<header>`s of some `<http-headers>` elements as a TOML array of inline tables, read as
/// icecast2 reads them: the list ends at the first element that is not a valid static
/// `<header name value>`. `None` when there is no `<http-headers>` at all.
fn headers<'a>(
    w: &mut Writer<'_>,
    at: SectionId,
    lists: impl Iterator<Item = &'a Element>,
    prefix: &str,
) -> Result<Option<toml::Value>, ConfigError> {
    let mut any = false;
    let mut out = Vec::new();
    for list in lists {
        any = true;
        for h in &list.children {
            let option = format!("{prefix}http-headers.{}", h.name);
            let bad = if h.name != "header" {
                Some("not a <header>".to_string())
            } else if h.attr("name").is_none() || h.attr("value").is_none() {
                Some("needs both name and value".to_string())
            } else {
                match h.attr("type") {
                    Some(t) if t != "static" => Some(format!("unknown type {t:?}")),
                    _ => None,
                }
            };
            if let Some(why) = bad {
                w.ignored(
                    at,
                    h,
                    &option,
                    &format!("{why}; icecast2 stops reading the list here, and so does floecast"),
                );
                break;
            }
            let mut t = toml::Table::new();
            t.insert("name".into(), h.attr("name").unwrap_or_default().into());
            t.insert("value".into(), h.attr("value").unwrap_or_default().into());
            if let Some(status) = h.attr("status") {
                let n: i64 = status.trim().parse().map_err(|_| {
                    ConfigError::at(
                        w.origin,
                        Some(h.line),
                        &format!("{option}.status"),
                        format!("expected a status code, got {status:?}"),
                    )
                })?;
                // 0 is icecast's "every status".
                if n != 0 {
                    t.insert("status".into(), n.into());
                }
            }
            out.push(toml::Value::Table(t));
        }
    }
    Ok(any.then_some(toml::Value::Array(out)))
}

/// `<mount>`s: the (first) default mount becomes `[mount-defaults]`, every normal mount a
/// `[[mount]]`. Where floecast's merge of overlapping mounts differs from icecast2's (which
/// takes the first matching normal mount and fills it from the default one), a warning says so.
fn mounts(w: &mut Writer<'_>, root: &Element) -> Result<(), ConfigError> {
    let mut default_line: Option<usize> = None;
    let mut normals: Vec<(String, usize, SectionId)> = Vec::new();
    for m in root.children_named("mount") {
        let kind = m.attr("type").unwrap_or("normal");
        let name_el = last(m, "mount-name").filter(|n| !n.value().is_empty());
        let id = match (kind, name_el) {
            ("normal", None) => {
                w.ignored(
                    ROOT,
                    m,
                    "mount",
                    "no <mount-name> (icecast2 ignores it too)",
                );
                continue;
            }
            ("normal", Some(n)) => {
                let id = w.doc.push("mount", Origin::new(m.line, "mount"));
                w.set(id, "name", n.value(), n, "mount.mount-name");
                normals.push((n.value().to_string(), m.line, id));
                id
            }
            ("default", None) => {
                if let Some(first) = default_line {
                    w.ignored(
                        ROOT,
                        m,
                        "mount type=\"default\"",
                        &format!(
                            "only the first default mount (line {first}) applies, as in icecast2"
                        ),
                    );
                    continue;
                }
                default_line = Some(m.line);
                let id = w.doc.table("mount-defaults", Origin::new(m.line, "mount"));
                w.doc.section(id).comment(&format!(
                    "icecast's <mount type=\"default\"> (line {}): every mount gets these keys \
                     unless its own [[mount]] sets them.",
                    m.line
                ));
                id
            }
            ("default", Some(n)) => {
                let id = w.doc.push("mount", Origin::new(m.line, "mount"));
                w.set(id, "name", n.value(), n, "mount.mount-name");
                w.note(
                    id,
                    m.line,
                    "mount type=\"default\"",
                    Severity::Notice,
                    format!(
                        "has a <mount-name>, which icecast2 calls unsupported; it becomes an \
                         ordinary [[mount]] for {:?}, merged under more specific mounts",
                        n.value()
                    ),
                );
                id
            }
            (other, _) => {
                w.ignored(
                    ROOT,
                    m,
                    "mount",
                    &format!("unknown type {other:?} (icecast2 ignores the mount too)"),
                );
                continue;
            }
        };
        mount_body(w, id, m)?;
    }
    overlap_warnings(w, &normals, default_line);
    Ok(())
}

/// Where floecast's merge of overlapping mounts differs from icecast2's, say so.
fn overlap_warnings(
    w: &mut Writer<'_>,
    normals: &[(String, usize, SectionId)],
    default_line: Option<usize>,
) {
    for (j, (later, later_line, later_id)) in normals.iter().enumerate() {
        for (earlier, earlier_line, _) in &normals[..j] {
            if glob_match(earlier, later) {
                w.note(
                    *later_id,
                    *later_line,
                    "mount",
                    Severity::Notice,
                    format!(
                        "icecast2 never applies this mount to {later:?}: the earlier <mount> \
                         {earlier:?} (line {earlier_line}) matches first. floecast applies \
                         it, the most specific mount winning key by key"
                    ),
                );
            } else if glob_match(later, earlier) {
                w.note(
                    *later_id,
                    *later_line,
                    "mount",
                    Severity::Notice,
                    format!(
                        "floecast fills the keys that {earlier:?} (line {earlier_line}) leaves \
                         unset from this mount; icecast2 takes only the first matching <mount> \
                         (and the default mount)"
                    ),
                );
            }
        }
    }
    // icecast2 2.4.4 leaves the default mount's authenticator out of its merge (a TODO in
    // cfgfile.c), so a mount with its own section is open there. floecast applies it.
    let Some(default_line) = default_line else {
        return;
    };
    let defaults = w
        .doc
        .table("mount-defaults", Origin::new(default_line, "mount"));
    if w.doc.section(defaults).get("authentication").is_none() {
        return;
    }
    for (name, line, id) in normals {
        if w.doc.section(*id).get("authentication").is_none() {
            w.note(
                *id,
                *line,
                "mount",
                Severity::Notice,
                format!(
                    "icecast2 2.4.4 does not apply the default mount's <authentication> \
                     (line {default_line}) to a mount with its own <mount>; floecast does, so \
                     listeners of {name:?} must log in"
                ),
            );
        }
    }
}

/// The options of one `<mount>`, as icecast2 reads them: for the values it merges with the
/// default mount, 0 (or -1, or empty) means "not set", so such values are left out here too.
fn mount_body(w: &mut Writer<'_>, id: SectionId, m: &Element) -> Result<(), ConfigError> {
    let auths: Vec<&Element> = m.children_named("authentication").collect();
    for c in &m.children {
        let option = format!("mount.{}", c.name);
        let key = c.name.as_str();
        match key {
            "mount-name" | "http-headers" => {}
            "username" | "password" | "dump-file" | "intro" | "fallback-mount" | "stream-name"
            | "stream-description" | "stream-url" | "genre" | "bitrate" | "type" | "subtype"
            | "charset" | "on-connect" | "on-disconnect" => w.text(id, key, c, &option),
            "fallback-override" | "fallback-when-full" | "hidden" => {
                if w.int(c, &option)? != 0 {
                    w.set(id, key, true, c, &option);
                } else {
                    w.doc.section(id).remove(key);
                }
            }
            // -1 (any negative value) is "not set".
            "max-listeners" | "mp3-metadata-interval" | "burst-size" => {
                let n = w.int(c, &option)?;
                if n >= 0 {
                    w.set(id, key, n, c, &option);
                } else {
                    w.doc.section(id).remove(key);
                }
            }
            "queue-size" | "source-timeout" => {
                let n = w.int(c, &option)?;
                if n > 0 {
                    w.set(id, key, n, c, &option);
                } else {
                    w.doc.section(id).remove(key);
                }
            }
            "public" => {
                let n = w.int(c, &option)?;
                if n >= 0 {
                    w.set(id, "public", n != 0, c, &option);
                } else {
                    w.doc.section(id).remove("public");
                }
            }
            // icecast2: <no-yp>1 is public 0, <no-yp>0 unsets public.
            "no-yp" => {
                if w.int(c, &option)? != 0 {
                    w.doc
                        .section(id)
                        .set("public", false, Origin::new(c.line, &option));
                } else {
                    w.doc.section(id).remove("public");
                }
            }
            "authentication" => {
                let is_last = auths.last().is_some_and(|a| std::ptr::eq(*a, c));
                if is_last {
                    listener_auth(w, id, c, &option)?;
                } else {
                    let last_line = auths.last().map_or(c.line, |a| a.line);
                    w.ignored(
                        id,
                        c,
                        &option,
                        &format!(
                            "a mount has one authenticator, and icecast2 uses the last \
                             <authentication> (line {last_line})"
                        ),
                    );
                }
            }
            "max-listener-duration" => w.ignored(
                id,
                c,
                &option,
                "listening time limits are not supported yet",
            ),
            "no-mount" => {
                if w.int(c, &option)? != 0 {
                    w.danger(
                        id,
                        c,
                        &option,
                        "ignored: not supported, so listeners CAN connect to this mount \
                         (icecast2 refuses them)"
                            .into(),
                    );
                }
            }
            "cluster-password" | "burst-on-connect" => {
                w.ignored(id, c, &option, "not an icecast 2.4 option floecast uses")
            }
            _ => w.ignored(
                id,
                c,
                &option,
                "unknown mount option (icecast2 ignores it too)",
            ),
        }
    }
    if let Some(list) = headers(w, id, m.children_named("http-headers"), "mount.")? {
        let line = m.child("http-headers").map_or(m.line, |h| h.line);
        w.doc
            .section(id)
            .set("http-header", list, Origin::new(line, "mount.http-headers"));
    }
    Ok(())
}

/// A mount's `<authentication>`: `type="htpasswd"` (options `filename`,
/// `allow_duplicate_users`) or `type="url"` (its listener options) as `authentication = {…}`.
/// What cannot carry over leaves the mount open, with a warning that says so.
fn listener_auth(
    w: &mut Writer<'_>,
    id: SectionId,
    a: &Element,
    option: &str,
) -> Result<(), ConfigError> {
    let open = "THE MOUNT IS OPEN to every listener";
    // A later block replaces an earlier one, even one that failed (as in icecast2).
    w.doc.section(id).remove("authentication");
    let kind = a.attr("type").unwrap_or("");
    if kind != "htpasswd" && kind != "url" {
        w.danger(
            id,
            a,
            option,
            format!("ignored: unknown type {kind:?}; {open}"),
        );
        return Ok(());
    }
    let opt_path = format!("{option}.option");
    let mut fields = toml::Table::new();
    fields.insert("type".into(), kind.into());
    let mut required = None;
    // Set when the authenticator cannot work; the other options are still reported.
    let mut unusable = false;
    for o in &a.children {
        if o.name != "option" {
            w.ignored(
                id,
                o,
                &format!("{option}.{}", o.name),
                "unknown auth setting (icecast2 ignores it too)",
            );
            continue;
        }
        let (Some(name), Some(value)) = (o.attr("name"), o.attr("value")) else {
            w.ignored(id, o, &opt_path, "needs both name and value");
            continue;
        };
        let named = format!("{opt_path} name={name:?}");
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
                fields.insert("allow-duplicate-users".into(), (n != 0).into());
                continue;
            }
            ("url", "headers") => {
                let list: Vec<toml::Value> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|h| !h.is_empty())
                    .map(toml::Value::from)
                    .collect();
                fields.insert("headers".into(), toml::Value::Array(list));
                continue;
            }
            ("url", "mount_add" | "mount_remove" | "stream_auth") => {
                w.ignored(
                    id,
                    o,
                    &named,
                    "source-side URL hooks are not supported (listener_add/listener_remove are)",
                );
                continue;
            }
            _ => {
                w.ignored(
                    id,
                    o,
                    &named,
                    &format!("not a {kind} option floecast knows"),
                );
                continue;
            }
        };
        if (key == "listener-add" || key == "listener-remove") && !value.starts_with("http://") {
            let why = "only http:// backends are supported (floecast has no TLS client)";
            if key == "listener-add" {
                w.danger(id, o, &named, format!("ignored: {why}; {open}"));
                unusable = true;
                continue;
            }
            w.ignored(id, o, &named, why);
            continue;
        }
        fields.insert(key, value.into());
    }
    if unusable {
        return Ok(());
    }
    if required.filter(|r| !r.is_empty()).is_none() {
        let what = if kind == "url" {
            "listener_add"
        } else {
            "filename"
        };
        w.danger(
            id,
            a,
            option,
            format!("ignored: {kind} without a {what} option; {open}"),
        );
        return Ok(());
    }
    w.set(id, "authentication", toml::Value::Table(fields), a, option);
    Ok(())
}

/// `<master-server>` and friends become `[master]` (relay-all from that server).
fn master(w: &mut Writer<'_>, root: &Element) -> Result<(), ConfigError> {
    let keys = [
        ("master-server", "server"),
        ("master-server-port", "port"),
        ("master-username", "username"),
        ("master-password", "password"),
        ("master-update-interval", "update-interval"),
    ];
    let present: Vec<&Element> = root
        .children
        .iter()
        .filter(|c| keys.iter().any(|(k, _)| *k == c.name))
        .collect();
    let Some(first) = present.first() else {
        return Ok(());
    };
    let value = |name: &str| last(root, name).map_or("", |e| e.value());
    if value("master-server").is_empty() || value("master-password").is_empty() {
        for el in &present {
            w.ignored(
                ROOT,
                el,
                &el.name,
                "master relaying needs both <master-server> and <master-password>",
            );
        }
        return Ok(());
    }
    let id = w
        .doc
        .table("master", Origin::new(first.line, "master-server"));
    w.doc.section(id).comment(&format!(
        "Relay every mount the master lists in /admin/streamlist.txt (line {}).",
        first.line
    ));
    for el in present {
        let Some((_, key)) = keys.iter().find(|(k, _)| *k == el.name) else {
            continue;
        };
        match *key {
            "port" | "update-interval" => w.number(id, key, el, &el.name)?,
            _ => w.text(id, key, el, &el.name),
        }
    }
    Ok(())
}

/// `<relay>`s become `[[relay]]` tables.
fn relays(w: &mut Writer<'_>, root: &Element) -> Result<(), ConfigError> {
    let mut local_mounts: Vec<(String, usize)> = Vec::new();
    for r in root.children_named("relay") {
        let value = |name: &str| last(r, name).map(|e| e.value()).filter(|v| !v.is_empty());
        let local = value("local-mount")
            .or(value("mount"))
            .unwrap_or("/")
            .to_string();
        if let Some((_, line)) = local_mounts.iter().find(|(m, _)| *m == local) {
            w.ignored(
                ROOT,
                r,
                "relay",
                &format!("the relay at line {line} already feeds {local}"),
            );
            continue;
        }
        local_mounts.push((local, r.line));
        let id = w.doc.push("relay", Origin::new(r.line, "relay"));
        if last(r, "port").is_none() {
            // icecast has no default here (it would dial port 0); the sample uses 8000.
            w.note(
                id,
                r.line,
                "relay",
                Severity::Notice,
                "has no <port> (icecast2 has no default for it): using 8000".into(),
            );
            w.set(id, "port", 8000, r, "relay");
        }
        for c in &r.children {
            let option = format!("relay.{}", c.name);
            match c.name.as_str() {
                "server" | "mount" | "local-mount" | "username" | "password" | "bind" => {
                    w.text(id, &c.name, c, &option)
                }
                "port" => w.number(id, "port", c, &option)?,
                "relay-shoutcast-metadata" => w.flag(id, "relay-metadata", c, &option)?,
                "on-demand" => w.flag(id, "on-demand", c, &option)?,
                _ => w.ignored(id, c, &option, "unknown relay option"),
            }
        }
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
        c.load().unwrap_or_else(|e| panic!("{e}\n{}", c.toml))
    }

    /// Does some warning contain `needle` (as displayed)?
    fn warned(c: &Converted, needle: &str) -> bool {
        c.warnings.iter().any(|w| w.to_string().contains(needle))
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
        assert!(warned(&c, "<logging.errorlog> ignored"), "{:?}", c.warnings);
        assert!(warned(&c, "<security> ignored"), "{:?}", c.warnings);
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
        assert_eq!(
            (live.fallback_override, live.fallback_when_full, live.hidden),
            (Some(true), Some(true), Some(true))
        );
        // <public>-1 leaves it unset, and the <no-yp>1 after it means "not public".
        assert_eq!(live.public, Some(false));
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
        assert!(!warned(&c, "<relay>") && !warned(&c, "<master-server>"));
        for ignored in [
            "listen-socket.ssl",
            "limits.client-timeout",
            "master-ssl-port",
            "mount.max-listener-duration",
            "mount.authentication",
            "paths.adminroot",
            "paths.alias",
            "logging.errorlog",
            "logging.logsize",
            "security",
        ] {
            assert!(
                warned(&c, &format!("<{ignored}")),
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
            "<relay> has no <port>",
            "<relay.bogus>",
        ] {
            assert!(warned(&c, w), "{w}: {:?}", c.warnings);
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
    fn unused_global_shoutcast_mount_is_reported() {
        let c = convert("<icecast><shoutcast-mount>/sc</shoutcast-mount></icecast>");
        assert!(warned(&c, "<shoutcast-mount> ignored"), "{:?}", c.warnings);
        let c = convert(
            "<icecast><shoutcast-mount>/sc</shoutcast-mount><listen-socket><port>8000</port></listen-socket>\
             <listen-socket><port>8001</port><shoutcast-compat>1</shoutcast-compat></listen-socket></icecast>",
        );
        assert!(!warned(&c, "<shoutcast-mount>"), "{:?}", c.warnings);
    }

    #[test]
    fn legacy_port_and_burst_off() {
        let config = load(
            "<icecast><port>8100</port><source-password>x</source-password>\
             <limits><burst-size>65535</burst-size><burst-on-connect>0</burst-on-connect></limits></icecast>",
        );
        assert_eq!(config.listen[0].port, 8100);
        assert_eq!(config.auth.source_password, "x");
        assert_eq!(config.limits.burst_size, 0);
        // icecast2 applies the two in file order: a <burst-size> after <burst-on-connect>0
        // sets the burst again (the sample config's order), which is worth a warning.
        let c = convert(
            "<icecast><limits><burst-on-connect>0</burst-on-connect>\
             <burst-size>65535</burst-size></limits></icecast>",
        );
        assert_eq!(c.load().map(|c| c.limits.burst_size).ok(), Some(65535));
        assert!(
            warned(&c, "<limits.burst-on-connect> 0 is overridden"),
            "{:?}",
            c.warnings
        );
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
        let warned = |needle: &str| warned(&c, needle);
        assert!(warned("name=\"mount_add\""), "{:?}", c.warnings);
        assert!(warned("no TLS client"), "{:?}", c.warnings);
        assert!(warned("THE MOUNT IS OPEN"), "{:?}", c.warnings);
        assert!(warned("without a filename"), "{:?}", c.warnings);
        assert!(warned("unknown type \"ldap\""), "{:?}", c.warnings);
        assert!(warned("name=\"bogus\""), "{:?}", c.warnings);
    }

    #[test]
    fn default_mount_fills_the_gaps_of_specific_mounts() {
        let xml = r#"<icecast>
  <mount type="default">
    <password>defaultpw</password><max-listeners>3</max-listeners>
    <stream-name>Default name</stream-name><hidden>1</hidden>
    <authentication type="htpasswd"><option name="filename" value="users"/></authentication>
    <http-headers><header name="X-Default" value="1"/></http-headers>
  </mount>
  <mount type="normal">
    <mount-name>/special.mp3</mount-name><password>specialpw</password>
    <max-listeners>1</max-listeners><stream-name>Special</stream-name><hidden>0</hidden>
    <http-headers><header name="X-Own" value="1"/></http-headers>
  </mount>
  <mount type="normal"><mount-name>/named.mp3</mount-name><stream-name>Named</stream-name></mount>
  <mount type="normal"><mount-name>/live/*</mount-name><genre>Live</genre></mount>
  <mount type="normal"><mount-name>/live/studio</mount-name><genre>Studio</genre></mount>
  <mount type="default"><max-listeners>99</max-listeners></mount>
  <mount type="odd"><mount-name>/odd</mount-name></mount>
  <mount><password>nameless</password></mount>
</icecast>"#;
        let c = convert(xml);
        let config = c.load().unwrap_or_else(|e| panic!("{e}\n{}", c.toml));
        let special = config.mount("/special.mp3").expect("special");
        assert_eq!(special.password.as_deref(), Some("specialpw"));
        assert_eq!(special.max_listeners, Some(1));
        assert_eq!(special.stream_name.as_deref(), Some("Special"));
        // icecast2 reads <hidden>0 as "not set", so the default's 1 fills it in.
        assert_eq!(special.hidden, Some(true));
        // The mount's own headers, then the default's (icecast2 appends them).
        let names: Vec<&str> = special
            .http_headers
            .iter()
            .map(|h| h.name.as_str())
            .collect();
        assert_eq!(names, ["X-Own", "X-Default"]);
        let named = config.mount("/named.mp3").expect("named");
        assert_eq!(
            (
                named.max_listeners,
                named.stream_name.as_deref(),
                named.password.as_deref()
            ),
            (Some(3), Some("Named"), Some("defaultpw"))
        );
        let other = config.mount("/other.mp3").expect("default");
        assert_eq!(
            (other.max_listeners, other.stream_name.as_deref()),
            (Some(3), Some("Default name"))
        );
        assert_eq!(
            config
                .mount("/live/studio")
                .and_then(|m| m.genre.clone())
                .as_deref(),
            Some("Studio")
        );
        assert!(config.mount("/odd").is_some_and(|m| m.name.is_empty()));
        assert_eq!(config.mounts.len(), 4);
        // Where floecast deliberately differs from icecast2, it says so.
        for needle in [
            "does not apply the default mount's <authentication>",
            "icecast2 never applies this mount to \"/live/studio\"",
            "only the first default mount",
            "unknown type \"odd\"",
            "<mount> ignored: no <mount-name>",
        ] {
            assert!(warned(&c, needle), "{needle}: {:#?}", c.warnings);
        }
    }

    #[test]
    fn repeated_options_keep_the_last_and_never_break_the_toml() {
        let xml = r#"<icecast>
  <hostname>first</hostname><hostname>second</hostname>
  <limits><clients>10</clients></limits><limits><clients>20</clients><sources>3</sources></limits>
  <authentication><admin-password>a1</admin-password></authentication>
  <source-password>legacy</source-password>
  <paths><webroot>/w1</webroot></paths><paths><pidfile>/run/x.pid</pidfile></paths>
  <mount type="normal"><mount-name>/m</mount-name>
    <stream-name>one</stream-name><stream-name>two</stream-name>
    <authentication type="htpasswd"><option name="filename" value="first"/></authentication>
    <authentication type="htpasswd"><option name="filename" value="second"/></authentication>
  </mount>
  <mount type="normal"><mount-name>/n</mount-name>
    <authentication type="htpasswd"><option name="filename" value="good"/></authentication>
    <authentication type="ldap"/>
  </mount>
</icecast>"#;
        let c = convert(xml);
        toml::from_str::<toml::Table>(&c.toml).unwrap_or_else(|e| panic!("{e}\n{}", c.toml));
        let config = c.load().unwrap_or_else(|e| panic!("{e}\n{}", c.toml));
        assert_eq!(config.hostname, "second");
        assert_eq!((config.limits.clients, config.limits.sources), (20, 3));
        assert_eq!(config.auth.source_password, "legacy");
        assert_eq!(config.auth.admin_password, "a1");
        assert_eq!(config.paths.webroot.as_deref(), Some(Path::new("/w1")));
        assert_eq!(
            config.paths.pidfile.as_deref(),
            Some(Path::new("/run/x.pid"))
        );
        let m = config.mount("/m").expect("/m");
        assert_eq!(m.stream_name.as_deref(), Some("two"));
        // icecast2 keeps the last <authentication> of a mount ...
        assert_eq!(
            m.authentication,
            Some(crate::config::ListenerAuth::htpasswd("second", false))
        );
        // ... even when it is unusable: then the mount is open there, and here.
        assert_eq!(
            config.mount("/n").and_then(|m| m.authentication.clone()),
            None
        );
        for needle in [
            "<hostname> repeated (first at line 2)",
            "<mount.stream-name> repeated (first at line 8)",
            "icecast2 uses the last <authentication> (line 10)",
            "icecast2 uses the last <authentication> (line 14)",
            "THE MOUNT IS OPEN",
        ] {
            assert!(warned(&c, needle), "{needle}: {:#?}", c.warnings);
        }
    }

    #[test]
    fn load_errors_point_at_the_xml() {
        let xml = "<icecast>\n<mount>\n<mount-name>/a</mount-name>\n<queue-size>1000</queue-size>\n</mount>\n</icecast>";
        let e = convert(xml)
            .load()
            .expect_err("queue smaller than the burst");
        assert_eq!(e.origin(), "icecast.xml");
        assert_eq!(e.line(), Some(4));
        assert!(
            e.key().is_some_and(|k| k.starts_with("mount.queue-size")),
            "{e}"
        );
        let e = convert("<icecast>\n<limits>\n<clients>-5</clients>\n</limits>\n</icecast>")
            .load()
            .expect_err("negative clients");
        assert_eq!((e.origin(), e.line()), ("icecast.xml", Some(3)), "{e}");
        let e = convert("<icecast>\n<mount>\n<mount-name>live</mount-name>\n</mount>\n</icecast>")
            .load()
            .expect_err("a mount name needs a slash");
        assert_eq!((e.origin(), e.line()), ("icecast.xml", Some(3)), "{e}");
    }

    #[test]
    fn tls_sockets_are_not_opened_and_said_so_loudly() {
        let c = convert(
            "<icecast><listen-socket><port>8000</port></listen-socket>\
             <listen-socket><port>8443</port><ssl>1</ssl></listen-socket></icecast>",
        );
        let config = c.load().expect("loads");
        assert_eq!(
            config.listen.iter().map(|l| l.port).collect::<Vec<_>>(),
            [8000]
        );
        let tls = c
            .warnings
            .iter()
            .find(|w| w.option == "listen-socket.ssl")
            .expect("a TLS warning");
        assert_eq!(tls.severity, Severity::Danger);
        assert!(tls.message.contains("8443 is NOT opened"), "{tls}");
        assert!(tls.message.contains("proxy"), "{tls}");
        assert!(
            c.toml.contains("# WARNING: line 1: <listen-socket.ssl>"),
            "{}",
            c.toml
        );
        // With no plain socket left, there is nothing to serve: an error, not port 8000.
        let e = to_toml(
            "<icecast>\n<listen-socket><port>8443</port>\n<ssl>1</ssl></listen-socket></icecast>",
            "icecast.xml",
        )
        .expect_err("TLS only");
        assert_eq!((e.line(), e.key()), (Some(3), Some("listen-socket.ssl")));
    }

    /// Any arrangement of icecast's own elements converts to TOML that parses, and loading
    /// it either works or reports an error in the XML file.
    fn arbitrary_icecast_xml() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just("hostname"),
            Just("port"),
            Just("source-password"),
            Just("mount-name"),
            Just("password"),
            Just("max-listeners"),
            Just("burst-size"),
            Just("queue-size"),
            Just("hidden"),
            Just("public"),
            Just("no-yp"),
            Just("stream-name"),
            Just("intro"),
            Just("ssl"),
            Just("shoutcast-compat"),
            Just("shoutcast-mount"),
            Just("clients"),
            Just("burst-on-connect"),
            Just("accesslog"),
            Just("logdir"),
            Just("server"),
            Just("bogus"),
        ];
        let value = prop_oneof![
            Just(""),
            Just("0"),
            Just("1"),
            Just("-1"),
            Just("8000"),
            Just("/a"),
            Just("/a/*"),
            Just("x\"y'z\\"),
        ];
        let child = (leaf, value).prop_map(|(n, v)| format!("<{n}>{v}</{n}>"));
        let auth = prop_oneof![
            Just(r#"<authentication type="htpasswd"><option name="filename" value="f"/></authentication>"#.to_string()),
            Just(r#"<authentication type="url"/>"#.to_string()),
            Just(r#"<http-headers><header name="X" value="1"/><bogus/></http-headers>"#.to_string()),
        ];
        let children = proptest::collection::vec(prop_oneof![child.clone(), auth], 0..6);
        let section = (
            prop_oneof![
                Just("mount"),
                Just("mount type=\"default\""),
                Just("listen-socket"),
                Just("limits"),
                Just("paths"),
                Just("logging"),
                Just("relay"),
                Just("authentication"),
            ],
            children,
        )
            .prop_map(|(tag, body)| {
                let end = tag.split(' ').next().unwrap_or(tag);
                format!("<{tag}>{}</{end}>", body.concat())
            });
        proptest::collection::vec(prop_oneof![section, child], 0..8)
            .prop_map(|parts| format!("<icecast>{}</icecast>", parts.concat()))
    }

    proptest::proptest! {
        #[test]
        fn converted_toml_always_parses(xml in arbitrary_icecast_xml()) {
            if let Ok(c) = to_toml(&xml, "icecast.xml") {
                let parsed = toml::from_str::<toml::Table>(&c.toml);
                proptest::prop_assert!(parsed.is_ok(), "{:?}\n{}", parsed.err(), c.toml);
                if let Err(e) = c.load() {
                    proptest::prop_assert_eq!(e.origin(), "icecast.xml", "{}\n{}", e, c.toml);
                }
            }
        }
    }
}
