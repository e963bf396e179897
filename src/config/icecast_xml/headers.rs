//! `<http-headers>`, global or per mount, as an array of `{ name, value, status }` tables.

use super::writer::Writer;
use super::xml::Element;
use crate::config::ConfigError;
use crate::config::toml_doc::SectionId;

/// The `<header>`s of some `<http-headers>` elements as a TOML array of inline tables, read as
/// icecast2 reads them: the list ends at the first element that is not a valid static
/// `<header name value>`. `None` when there is no `<http-headers>` at all.
pub(super) fn headers<'a>(
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
