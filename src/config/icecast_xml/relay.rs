//! `<master-server>` and friends as `[master]`, and `<relay>`s as `[[relay]]` tables.

use super::writer::{ROOT, Writer};
use super::xml::{Element, last};
use crate::config::toml_doc::Origin;
use crate::config::{ConfigError, Severity};

/// `<master-server>` and friends become `[master]` (relay-all from that server).
pub(super) fn master(w: &mut Writer<'_>, root: &Element) -> Result<(), ConfigError> {
    let keys = [
        ("master-server", "server"),
        ("master-server-port", "port"),
        ("master-username", "username"),
        ("master-password", "password"),
        ("master-update-interval", "update-interval"),
        // icecast-kh: the stream list comes over TLS from this port.
        ("master-ssl-port", "tls-port"),
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
            "port" | "update-interval" | "tls-port" => w.number(id, key, el, &el.name)?,
            _ => w.text(id, key, el, &el.name),
        }
    }
    Ok(())
}

/// `<relay>`s become `[[relay]]` tables.
pub(super) fn relays(w: &mut Writer<'_>, root: &Element) -> Result<(), ConfigError> {
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
