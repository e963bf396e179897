//! The top-level options (`<hostname>`, `<location>`, …, and those with no place in floecast),
//! `<limits>`, `<authentication>`, `<paths>` and `<logging>`.

use super::writer::{ROOT, Writer};
use super::xml::{Element, last};
use crate::config::toml_doc::Origin;
use crate::config::{ConfigError, Severity};

/// Top-level scalars, and the options that have no place in floecast.
pub(super) fn top_level(w: &mut Writer<'_>, root: &Element) -> Result<(), ConfigError> {
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
            "master-bind" => w.ignored(
                ROOT,
                el,
                name,
                "an icecast-kh option: the master is polled from the default local address",
            ),
            "directory" => w.ignored(ROOT, el, name, "YP directory listings are not supported"),
            // icecast-kh: a proxy whose X-Forwarded-For is believed; each one adds to the list.
            "x-forwarded-for" => trusted_proxy(w, el),
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
            | "master-ssl-port"
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

/// One `<x-forwarded-for>` address (or network) added to `access.trusted-proxies`.
fn trusted_proxy(w: &mut Writer<'_>, el: &Element) {
    let value = el.value().trim();
    if value.parse::<crate::door::Cidr>().is_err() {
        w.ignored(
            ROOT,
            el,
            "x-forwarded-for",
            "not an IP address or network; list trusted proxies as addresses",
        );
        return;
    }
    let access = w.doc.table("access", Origin::new(el.line, "access"));
    let section = w.doc.section(access);
    let mut list = match section.get("trusted-proxies") {
        Some(toml::Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    list.push(value.into());
    section.set(
        "trusted-proxies",
        toml::Value::Array(list),
        Origin::new(el.line, "x-forwarded-for"),
    );
}

/// `<limits>`, in file order: `<burst-on-connect>0` zeroes the burst size at its place, so a
/// `<burst-size>` after it wins, exactly as in icecast2.
pub(super) fn limits(w: &mut Writer<'_>, root: &Element) -> Result<(), ConfigError> {
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
pub(super) fn authentication(w: &mut Writer<'_>, root: &Element) {
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
pub(super) fn paths_and_logging(w: &mut Writer<'_>, root: &Element) -> Result<(), ConfigError> {
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
                "deny-ip" | "allow-ip" if !c.value().is_empty() => {
                    let access = w.doc.table("access", Origin::new(c.line, "access"));
                    let key = format!("{}-file", c.name);
                    w.set(access, &key, c.value(), c, &option);
                }
                "deny-ip" | "allow-ip" => w.ignored(id, c, &option, "empty"),
                // Read below: one [[tls]] certificate from both.
                "ssl-certificate" | "ssl-private-key" => {}
                "ssl-allowed-ciphers" => w.ignored(
                    id,
                    c,
                    &option,
                    "rustls offers only its own modern cipher suites (TLS 1.2 and 1.3)",
                ),
                _ => w.ignored(id, c, &option, "unknown path option"),
            }
        }
    }
    // icecast2's <ssl-certificate> holds the chain and the key; icecast-kh's
    // <ssl-private-key> names a separate key file.
    let paths_last = |name: &str| {
        root.children_named("paths")
            .filter_map(|p| last(p, name))
            .last()
            .filter(|e| !e.value().is_empty())
    };
    match (paths_last("ssl-certificate"), paths_last("ssl-private-key")) {
        (Some(cert), key) => {
            let id = w
                .doc
                .push("tls", Origin::new(cert.line, "paths.ssl-certificate"));
            w.text(id, "certificate", cert, "paths.ssl-certificate");
            if let Some(key) = key {
                w.text(id, "private-key", key, "paths.ssl-private-key");
            }
        }
        (None, Some(key)) => w.ignored(
            ROOT,
            key,
            "paths.ssl-private-key",
            "there is no <ssl-certificate> for it",
        ),
        (None, None) => {}
    }
    for l in root.children_named("logging") {
        let id = w.doc.table("logging", Origin::new(l.line, "logging"));
        for c in &l.children {
            let option = format!("logging.{}", c.name);
            match c.name.as_str() {
                // icecast2's "-" is standard error, where floecast's log goes by default
                // (and its access lines too, without an access-log file).
                "accesslog" | "errorlog" if c.value() == "-" => w.note(
                    id,
                    c.line,
                    &option,
                    Severity::Notice,
                    "\"-\": standard error, floecast's default".into(),
                ),
                "accesslog" | "errorlog" if !c.value().is_empty() => {
                    let (key, what, ours) = match c.name.as_str() {
                        "accesslog" => ("access-log", "access log", "access.log"),
                        _ => ("error-log", "error log", "error.log"),
                    };
                    let file = c.value();
                    let path = match &logdir {
                        Some(d) if !file.starts_with('/') => {
                            format!("{}/{file}", d.trim_end_matches('/'))
                        }
                        _ => file.to_string(),
                    };
                    w.set(id, key, path.as_str(), c, &option);
                    let extra = if key == "error-log" {
                        " floecast's log lines then go there, in floecast's own format, and \
                         no longer to standard error (journald, docker logs)."
                    } else {
                        ""
                    };
                    w.note(
                        id,
                        c.line,
                        &option,
                        Severity::Notice,
                        format!(
                            "floecast appends to icecast2's own {what} {path}.{extra} If icecast2 \
                             still runs, both write to it; icecast2's logrotate rule signals only \
                             icecast2, so floecast keeps writing to the rotated file; and floecast \
                             started as root creates files owned by root in icecast2's log \
                             directory. Unless floecast replaces icecast2 for good, set \
                             {key} to a file of floecast's own, e.g. \
                             /var/log/floecast/{ours}."
                        ),
                    );
                }
                "accesslog" | "errorlog" => w.ignored(id, c, &option, "empty"),
                "loglevel" => {
                    let level = match w.int(c, &option)? {
                        ..=1 => "error",
                        2 => "warn",
                        3 => "info",
                        _ => "debug",
                    };
                    w.set(id, "level", level, c, &option);
                }
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
