//! Reading the XML of an icecast.xml into a small element tree, with each element's line.
//! Bounded (depth, element count) and never panics; it knows nothing of icecast's options.

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::config::ConfigError;

/// Deepest element nesting accepted (icecast.xml needs 4).
const MAX_DEPTH: usize = 16;
/// Most elements accepted in one file.
const MAX_ELEMENTS: usize = 20_000;

/// One element of the document.
#[derive(Debug, Default)]
pub(super) struct Element {
    pub(super) name: String,
    attrs: Vec<(String, String)>,
    text: String,
    pub(super) children: Vec<Element>,
    pub(super) line: usize,
}

impl Element {
    pub(super) fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub(super) fn children_named<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    pub(super) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn value(&self) -> &str {
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

/// The `<icecast>` root element of `text`; errors name the line.
pub(super) fn parse(text: &str, origin: &str) -> Result<Element, ConfigError> {
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

/// The last `name` child of `el` (icecast2 reads repeated options in order, so the last wins).
pub(super) fn last<'a>(el: &'a Element, name: &str) -> Option<&'a Element> {
    el.children.iter().rev().find(|c| c.name == name)
}
