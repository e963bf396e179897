//! The documents admin commands answer with, as a small element tree that renders three ways:
//! icecast2's raw XML (`xmlDocDumpMemory` bytes), clean JSON for `.json` / `Accept:
//! application/json`, and icecast's `status-json.xsl` JSON (see [`super::status_json`]).
//! Pure data and text: no server state, no I/O.

use std::fmt::Write;

use serde_json::{Map, Value as Json};

/// A leaf value. Typed so the clean JSON keeps numbers as numbers; the XML text is what
/// icecast prints.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Int(u64),
    /// `max_listeners` without a limit: "unlimited" in XML, `null` in clean JSON.
    Unlimited,
}

impl Value {
    pub fn text(&self) -> String {
        match self {
            Value::Text(s) => s.clone(),
            Value::Int(n) => n.to_string(),
            Value::Unlimited => "unlimited".into(),
        }
    }

    /// A source-supplied value that is a plain integer (`ice-audio-info` keys) is a number.
    pub fn guess(s: &str) -> Value {
        match s.parse::<u64>() {
            Ok(n) if n.to_string() == s => Value::Int(n),
            _ => Value::Text(s.to_string()),
        }
    }

    fn json(&self) -> Json {
        match self {
            Value::Text(s) => Json::String(s.clone()),
            Value::Int(n) => Json::from(*n),
            Value::Unlimited => Json::Null,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}
impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Int(n)
    }
}
impl From<usize> for Value {
    fn from(n: usize) -> Self {
        Value::Int(n as u64)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// `<x/>`
    Empty,
    /// `<x>text</x>`; an empty text prints `<x></x>`, as libxml2 does for `xmlNewTextChild(…, "")`.
    Leaf(Value),
    Children(Vec<Element>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(&'static str, String)>,
    pub body: Body,
    /// Key in clean JSON when it differs from the XML name (`Connected` → `connected`).
    pub json_key: Option<&'static str>,
    /// When set, clean JSON gathers this element into an array under that key.
    pub json_list: Option<&'static str>,
}

impl Element {
    pub fn new(name: impl Into<String>) -> Self {
        Element {
            name: name.into(),
            attrs: Vec::new(),
            body: Body::Children(Vec::new()),
            json_key: None,
            json_list: None,
        }
    }

    pub fn leaf(name: impl Into<String>, value: impl Into<Value>) -> Self {
        Element {
            body: Body::Leaf(value.into()),
            ..Element::new(name)
        }
    }

    pub fn attr(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.attrs.push((name, value.into()));
        self
    }

    pub fn key(mut self, json_key: &'static str) -> Self {
        self.json_key = Some(json_key);
        self
    }

    pub fn list(mut self, json_list: &'static str) -> Self {
        self.json_list = Some(json_list);
        self
    }

    pub fn empty(mut self) -> Self {
        self.body = Body::Empty;
        self
    }

    pub fn push(&mut self, child: Element) {
        match &mut self.body {
            Body::Children(c) => c.push(child),
            _ => self.body = Body::Children(vec![child]),
        }
    }

    pub fn with(mut self, child: Element) -> Self {
        self.push(child);
        self
    }

    /// `with` for an element that is only sometimes there.
    pub fn with_opt(self, child: Option<Element>) -> Self {
        match child {
            Some(c) => self.with(c),
            None => self,
        }
    }

    pub fn children(&self) -> &[Element] {
        match &self.body {
            Body::Children(c) => c,
            _ => &[],
        }
    }

    /// The whole document as icecast sends it: declaration, newline, the tree on one line,
    /// newline.
    pub fn to_document(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\"?>\n");
        self.write_xml(&mut out);
        out.push('\n');
        out
    }

    fn write_xml(&self, out: &mut String) {
        let _ = write!(out, "<{}", self.name);
        for (k, v) in &self.attrs {
            let _ = write!(out, " {k}=\"{}\"", escape(v, true));
        }
        match &self.body {
            Body::Empty => out.push_str("/>"),
            Body::Children(c) if c.is_empty() => out.push_str("/>"),
            Body::Leaf(v) => {
                let _ = write!(out, ">{}</{}>", escape(&v.text(), false), self.name);
            }
            Body::Children(c) => {
                out.push('>');
                for child in c {
                    child.write_xml(out);
                }
                let _ = write!(out, "</{}>", self.name);
            }
        }
    }

    /// Clean JSON: the root's content as an object; attributes become keys; elements marked
    /// `list` gather into arrays.
    pub fn to_json(&self) -> Json {
        match &self.body {
            Body::Empty => Json::Null,
            Body::Leaf(v) => v.json(),
            Body::Children(children) => {
                let mut map = Map::new();
                for (k, v) in &self.attrs {
                    map.insert((*k).to_string(), Json::String(v.clone()));
                }
                for c in children {
                    let value = c.to_json();
                    if let Some(list) = c.json_list {
                        match map
                            .entry(list.to_string())
                            .or_insert_with(|| Json::Array(Vec::new()))
                        {
                            Json::Array(a) => a.push(value),
                            other => *other = Json::Array(vec![value]),
                        }
                    } else {
                        let key = c.json_key.map(str::to_string).unwrap_or(c.name.clone());
                        map.insert(key, value);
                    }
                }
                Json::Object(map)
            }
        }
    }
}

/// XML text escaping as libxml2 does it (`&`, `<`, `>`, and `"` in attributes). Control
/// characters XML 1.0 cannot carry are dropped rather than producing a broken document.
pub fn escape(s: &str, attr: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attr => out.push_str("&#10;"),
            '\t' if attr => out.push_str("&#9;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

/// `<iceresponse><message>…</message><return>1|0</return></iceresponse>`.
pub fn iceresponse(message: &str, ok: bool) -> Element {
    Element::new("iceresponse")
        .with(Element::leaf("message", message))
        .with(Element::leaf("return", if ok { 1u64 } else { 0 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_libxml2() {
        let doc = Element::new("icestats").with(
            Element::new("source")
                .attr("mount", "/a&b")
                .with(Element::leaf("fallback", ""))
                .with(Element::leaf("listeners", 3u64))
                .with(Element::leaf("title", "<x> & \"y\"")),
        );
        assert_eq!(
            doc.to_document(),
            "<?xml version=\"1.0\"?>\n<icestats><source mount=\"/a&amp;b\"><fallback></fallback><listeners>3</listeners><title>&lt;x&gt; &amp; \"y\"</title></source></icestats>\n"
        );
        assert_eq!(
            Element::new("icestats")
                .with(Element::new("source").attr("mount", "/m"))
                .to_document(),
            "<?xml version=\"1.0\"?>\n<icestats><source mount=\"/m\"/></icestats>\n"
        );
    }

    #[test]
    fn iceresponse_bytes() {
        assert_eq!(
            iceresponse("Metadata update successful", true).to_document(),
            "<?xml version=\"1.0\"?>\n<iceresponse><message>Metadata update successful</message><return>1</return></iceresponse>\n"
        );
    }

    #[test]
    fn clean_json_gathers_lists_and_keeps_numbers() {
        let doc = Element::new("icestats")
            .with(Element::leaf("admin", "a"))
            .with(
                Element::new("source")
                    .attr("mount", "/m")
                    .list("sources")
                    .with(Element::leaf("max_listeners", Value::Unlimited))
                    .with(Element::leaf("Connected", 5u64).key("connected")),
            );
        assert_eq!(
            doc.to_json().to_string(),
            r#"{"admin":"a","sources":[{"connected":5,"max_listeners":null,"mount":"/m"}]}"#
        );
    }
}
