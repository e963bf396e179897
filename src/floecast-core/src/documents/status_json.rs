//! icecast2's `/status-json.xsl`: the public `<icestats>` document through icecast's
//! `xml2json.xslt` rules, byte for byte, quirks included, for the exporters and widgets that
//! parse it. Rendered from a snapshot only.

use super::icestats;
use super::snapshot::ServerSnapshot;
use super::xml::{Body, Element};

/// `/status-json.xsl[?mount=/m]`: the non-hidden stats document. `only` keeps the global
/// stats and that mount. (icecast also lists that mount's listeners, IPs included, in this
/// public document; floecast does not.)
pub fn status_json(snap: &ServerSnapshot, only: Option<&str>) -> String {
    let mut doc = icestats::icestats(snap, false, None);
    if let (Some(only), Body::Children(children)) = (only, &mut doc.body) {
        children.retain(|c| c.name != "source" || c.attrs.iter().any(|(_, v)| v == only));
    }
    icecast_json(&doc)
}

/// Stats `status-json.xsl` leaves out. A hidden element that is the last of its siblings
/// still prints `"dummy":null`, as icecast's stylesheet does.
fn is_hidden(parent: &str, name: &str) -> bool {
    if name.contains("connections") {
        return true;
    }
    match parent {
        "icestats" => matches!(name, "sources" | "clients" | "stats" | "listeners"),
        "source" => matches!(
            name,
            "max_listeners"
                | "public"
                | "source_ip"
                | "slow_listeners"
                | "total_bytes_read"
                | "total_bytes_sent"
                | "user_agent"
        ),
        _ => false,
    }
}

/// `{"icestats":{…}}` exactly as icecast 2.4.4 prints it: attributes dropped, numbers
/// and booleans unquoted, empty elements `null`, a repeated element (`source`, 2+ mounts)
/// an array at its first position, one mount an object, none absent.
pub fn icecast_json(root: &Element) -> String {
    let mut out = String::from("{");
    out.push_str(&json_string(&root.name));
    out.push(':');
    write_value(root, &mut out);
    out.push('}');
    out
}

fn write_value(el: &Element, out: &mut String) {
    match &el.body {
        Body::Children(c) if !c.is_empty() => write_object(el, out),
        Body::Leaf(v) => out.push_str(&scalar(&v.text())),
        _ => out.push_str("null"),
    }
}

fn write_object(el: &Element, out: &mut String) {
    let kids = el.children();
    let mut parts: Vec<String> = Vec::new();
    let mut grouped: Vec<&str> = Vec::new();
    for (i, c) in kids.iter().enumerate() {
        if is_hidden(&el.name, &c.name) {
            if i + 1 == kids.len() {
                parts.push("\"dummy\":null".into());
            }
            continue;
        }
        let same: Vec<&Element> = kids.iter().filter(|k| k.name == c.name).collect();
        let mut part = json_string(&c.name);
        part.push(':');
        if same.len() > 1 {
            if grouped.contains(&c.name.as_str()) {
                continue;
            }
            grouped.push(&c.name);
            part.push('[');
            for (j, s) in same.iter().enumerate() {
                if j > 0 {
                    part.push(',');
                }
                write_value(s, &mut part);
            }
            part.push(']');
        } else {
            write_value(c, &mut part);
        }
        parts.push(part);
    }
    out.push('{');
    out.push_str(&parts.join(","));
    out.push('}');
}

/// xml2json's typing of element text.
fn scalar(text: &str) -> String {
    if text.is_empty() {
        "null".into()
    } else if text == "true" || text == "false" || is_plain_number(text) {
        text.into()
    } else {
        json_string(text)
    }
}

/// A number xml2json prints bare: no leading zero (except `0`), no exponent. Anything
/// else (`007`, `1.`, `1e3`) stays a string, which also keeps the output valid JSON.
fn is_plain_number(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let int_ok = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && (int == "0" || !int.starts_with('0'));
    let frac_ok = frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    // "0.5" starts with 0 and is not "0": xml2json quotes it.
    int_ok && frac_ok && (int != "0" || frac.is_none()) && !s.starts_with("-0")
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::xml::Value;

    #[test]
    fn numbers_as_xml2json_types_them() {
        assert_eq!(scalar("128"), "128");
        assert_eq!(scalar("0"), "0");
        assert_eq!(scalar("-3"), "-3");
        assert_eq!(scalar("1.5"), "1.5");
        assert_eq!(scalar("007"), "\"007\"");
        assert_eq!(scalar("0.5"), "\"0.5\"");
        assert_eq!(scalar("1."), "\"1.\"");
        assert_eq!(scalar(""), "null");
        assert_eq!(scalar("true"), "true");
        assert_eq!(scalar("a\"b"), "\"a\\\"b\"");
    }

    fn source(mount: &str, title: &str) -> Element {
        Element::new("source")
            .attr("mount", mount)
            .with(Element::leaf("listeners", 1u64))
            .with(Element::leaf("title", title))
            .with(Element::leaf("user_agent", "x"))
    }

    fn globals() -> Element {
        Element::new("icestats")
            .with(Element::leaf("admin", "a"))
            .with(Element::leaf("host", "h"))
            .with(Element::leaf("sources", 0u64))
            .with(Element::leaf("stats_connections", Value::Int(0)))
    }

    #[test]
    fn source_is_absent_object_or_array() {
        assert_eq!(
            icecast_json(&globals()),
            r#"{"icestats":{"admin":"a","host":"h","dummy":null}}"#
        );
        let one = globals().with(source("/a", "T"));
        assert_eq!(
            icecast_json(&one),
            r#"{"icestats":{"admin":"a","host":"h","source":{"listeners":1,"title":"T","dummy":null}}}"#
        );
        let two = globals().with(source("/a", "T")).with(source("/b", ""));
        assert_eq!(
            icecast_json(&two),
            r#"{"icestats":{"admin":"a","host":"h","source":[{"listeners":1,"title":"T","dummy":null},{"listeners":1,"title":null,"dummy":null}]}}"#
        );
    }
}
