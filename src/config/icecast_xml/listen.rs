//! `<listen-socket>`s (and the legacy top-level `<port>` and `<shoutcast-mount>`) as
//! `[[listen]]` tables; a socket with `<ssl>1` becomes `tls = "required"`.

use super::writer::{ROOT, Writer};
use super::xml::{Element, last};
use crate::config::toml_doc::Origin;
use crate::config::{ConfigError, Severity};

/// `<listen-socket>`s (or the legacy top-level `<port>`) become `[[listen]]` tables.
pub(super) fn listen_sockets(w: &mut Writer<'_>, root: &Element) -> Result<(), ConfigError> {
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
        } else {
            http_ports.push(port);
        }
    }

    let have_certificate = root
        .children_named("paths")
        .any(|p| last(p, "ssl-certificate").is_some_and(|c| !c.value().is_empty()));
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
        let tls = is_set(w, s, "ssl")? && !is_set(w, s, "shoutcast-compat")?;
        if tls && !have_certificate {
            let ssl = last(s, "ssl").unwrap_or(s);
            return Err(ConfigError::at(
                w.origin,
                Some(ssl.line),
                "listen-socket.ssl",
                format!(
                    "port {port} is TLS-only (<ssl>1) but <paths> names no <ssl-certificate>: \
                     add one (a PEM file with the certificate chain and its key, or with \
                     <ssl-private-key> for a separate key)"
                ),
            ));
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
        if tls {
            let ssl = last(s, "ssl").unwrap_or(s);
            w.set(id, "tls", "required", ssl, "listen-socket.ssl");
        }
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
    }
    Ok(global_used)
}
