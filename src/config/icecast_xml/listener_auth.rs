//! A mount's `<authentication>` (htpasswd or url) as `authentication = {…}`; what cannot
//! carry over leaves the mount open, with a warning that says so.

use super::writer::Writer;
use super::xml::Element;
use crate::config::ConfigError;
use crate::config::toml_doc::SectionId;

/// A mount's `<authentication>`: `type="htpasswd"` (options `filename`,
/// `allow_duplicate_users`) or `type="url"` (its listener options) as `authentication = {…}`.
/// What cannot carry over leaves the mount open, with a warning that says so.
pub(super) fn listener_auth(
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
        if (key == "listener-add" || key == "listener-remove")
            && !value.starts_with("http://")
            && !value.starts_with("https://")
        {
            let why = "only http:// and https:// backends are supported";
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
