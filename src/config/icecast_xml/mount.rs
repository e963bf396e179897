//! `<mount>`s as `[mount-defaults]` and `[[mount]]` tables, with a warning wherever floecast's
//! key-by-key merge of overlapping mounts differs from icecast2's.

use super::headers::headers;
use super::listener_auth::listener_auth;
use super::writer::{ROOT, Writer};
use super::xml::{Element, last};
use crate::config::toml_doc::{Origin, SectionId};
use crate::config::{ConfigError, Severity, glob_match};

/// `<mount>`s: the (first) default mount becomes `[mount-defaults]`, every normal mount a
/// `[[mount]]`. Where floecast's merge of overlapping mounts differs from icecast2's (which
/// takes the first matching normal mount and fills it from the default one), a warning says so.
pub(super) fn mounts(w: &mut Writer<'_>, root: &Element) -> Result<(), ConfigError> {
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
            "max-listener-duration" => {
                // 0 or less: no limit, as in icecast2.
                let seconds = w.int(c, &option)?;
                if seconds > 0 {
                    w.set(id, "max-listener-duration", seconds, c, &option);
                }
            }
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
