//! A checked builder for generated TOML (what `import-icecast` prints): keys are set, never
//! appended, so the output cannot repeat a key or a table; every value is written by the toml
//! crate, so it is always valid TOML. Each line remembers the place in the source file it came
//! from, so that an error found when loading the TOML can be reported there instead.

use std::fmt::Write as _;

/// Where a generated line came from: a line of the source file and the option's name there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub line: usize,
    pub option: String,
}

impl Origin {
    pub fn new(line: usize, option: impl Into<String>) -> Self {
        Origin {
            line,
            option: option.into(),
        }
    }
}

#[derive(Debug)]
enum Line {
    Comment(String),
    Entry {
        key: String,
        value: toml::Value,
        origin: Origin,
    },
}

#[derive(Debug, PartialEq, Eq)]
enum Header {
    /// `[name]`: one per name; asking again returns the same table.
    Table(String),
    /// `[[name]]`: a new element each time.
    ArrayItem(String),
}

/// One table of the document.
#[derive(Debug)]
pub struct Section {
    header: Option<(Header, Origin)>,
    lines: Vec<Line>,
}

impl Section {
    fn new(header: Option<(Header, Origin)>) -> Self {
        Section {
            header,
            lines: Vec::new(),
        }
    }

    /// Sets `key` (replacing an earlier value in place: the last one wins, as in icecast.xml).
    /// Returns where the replaced value came from.
    pub fn set(
        &mut self,
        key: &str,
        value: impl Into<toml::Value>,
        origin: Origin,
    ) -> Option<Origin> {
        let value = value.into();
        for line in &mut self.lines {
            if let Line::Entry {
                key: k,
                value: v,
                origin: o,
            } = line
            {
                if k == key {
                    *v = value;
                    return Some(std::mem::replace(o, origin));
                }
            }
        }
        self.lines.push(Line::Entry {
            key: key.to_string(),
            value,
            origin,
        });
        None
    }

    /// Removes `key`, returning where its value came from.
    pub fn remove(&mut self, key: &str) -> Option<Origin> {
        let at = self
            .lines
            .iter()
            .position(|l| matches!(l, Line::Entry { key: k, .. } if k == key))?;
        match self.lines.remove(at) {
            Line::Entry { origin, .. } => Some(origin),
            Line::Comment(_) => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&toml::Value> {
        self.lines.iter().find_map(|l| match l {
            Line::Entry { key: k, value, .. } if k == key => Some(value),
            _ => None,
        })
    }

    /// A comment line (or lines) at this point of the table.
    pub fn comment(&mut self, text: &str) {
        self.lines.push(Line::Comment(text.to_string()));
    }
}

/// A TOML document under construction: top-level keys, then tables in the order first asked
/// for. Tables can be asked for in any order; the output is always well-formed.
#[derive(Debug)]
pub struct TomlDoc {
    /// `sections[0]` is the top-level table.
    sections: Vec<Section>,
}

/// A table of a [`TomlDoc`], to add to later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionId(usize);

/// Generated text and, for each of its lines, the source place it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub text: String,
    /// `origins[n]` is the origin of line `n + 1`.
    pub origins: Vec<Option<Origin>>,
}

impl Default for TomlDoc {
    fn default() -> Self {
        TomlDoc {
            sections: vec![Section::new(None)],
        }
    }
}

impl TomlDoc {
    /// The top-level table (written before any `[table]`).
    pub const ROOT: SectionId = SectionId(0);

    pub fn section(&mut self, id: SectionId) -> &mut Section {
        &mut self.sections[id.0]
    }

    /// The table `[name]`, created on first use.
    pub fn table(&mut self, name: &str, origin: Origin) -> SectionId {
        let header = Header::Table(name.to_string());
        let found = self
            .sections
            .iter()
            .position(|s| s.header.as_ref().is_some_and(|(h, _)| *h == header));
        SectionId(found.unwrap_or_else(|| {
            self.sections.push(Section::new(Some((header, origin))));
            self.sections.len() - 1
        }))
    }

    /// A new element of the array of tables `[[name]]`.
    pub fn push(&mut self, name: &str, origin: Origin) -> SectionId {
        let header = Header::ArrayItem(name.to_string());
        self.sections.push(Section::new(Some((header, origin))));
        SectionId(self.sections.len() - 1)
    }

    pub fn render(&self) -> Rendered {
        let mut out = Rendered {
            text: String::new(),
            origins: Vec::new(),
        };
        for s in &self.sections {
            if let Some((header, origin)) = &s.header {
                push_line(&mut out, String::new(), None);
                let text = match header {
                    Header::Table(n) => format!("[{}]", key(n)),
                    Header::ArrayItem(n) => format!("[[{}]]", key(n)),
                };
                // Errors about a whole table point at its element.
                push_line(&mut out, text, Some(origin.clone()));
            }
            render_lines(&mut out, s);
        }
        out
    }
}

fn render_lines(out: &mut Rendered, s: &Section) {
    for line in &s.lines {
        match line {
            Line::Comment(c) => {
                for l in c.lines() {
                    for (i, part) in wrap(l, COMMENT_WIDTH).into_iter().enumerate() {
                        let indent = if i == 0 { "" } else { "  " };
                        push_line(
                            out,
                            format!("# {indent}{part}").trim_end().to_string(),
                            None,
                        );
                    }
                }
            }
            Line::Entry {
                key: k,
                value,
                origin,
            } => {
                push_line(out, format!("{} = {value}", key(k)), Some(origin.clone()));
            }
        }
    }
}

/// Comment text is wrapped to this many characters.
const COMMENT_WIDTH: usize = 94;

/// `text` cut at spaces into lines of at most `width` characters (longer words stay whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

fn push_line(out: &mut Rendered, text: String, origin: Option<Origin>) {
    let _ = writeln!(out.text, "{text}");
    out.origins.push(origin);
}

/// A key as TOML spells it: bare when it can be, quoted otherwise.
fn key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if bare {
        k.to_string()
    } else {
        toml::Value::String(k.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(line: usize) -> Origin {
        Origin::new(line, "x")
    }

    #[test]
    fn keys_are_set_once_and_tables_merge() {
        let mut doc = TomlDoc::default();
        let limits = doc.table("limits", o(1));
        doc.section(limits).set("clients", 5, o(2));
        let a = doc.push("mount", o(3));
        doc.section(a).set("name", "/a", o(3));
        doc.section(TomlDoc::ROOT).set("hostname", "h", o(4));
        let again = doc.table("limits", o(5));
        assert_eq!(again, limits);
        doc.section(again).set("clients", 7, o(6));
        let b = doc.push("mount", o(7));
        let m = doc.section(b);
        m.set("name", "/b", o(7));
        let old = m.set("name", "/c", o(8));
        assert_eq!(old, Some(o(7)));
        m.comment("two\nlines");
        m.set("odd key", "q\"uote", o(9));
        let r = doc.render();
        let parsed: toml::Table = r.text.parse().unwrap_or_else(|e| panic!("{e}\n{}", r.text));
        assert_eq!(parsed["hostname"].as_str(), Some("h"));
        assert_eq!(parsed["limits"]["clients"].as_integer(), Some(7));
        let mounts = parsed["mount"].as_array().expect("array");
        assert_eq!(mounts[1]["name"].as_str(), Some("/c"));
        assert_eq!(mounts[1]["odd key"].as_str(), Some("q\"uote"));
        assert!(r.text.contains("# two\n# lines\n"), "{}", r.text);
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrap("a-very-long-word x", 4), ["a-very-long-word", "x"]);
        // Every line has its origin slot; the root key came first.
        assert_eq!(r.origins.len(), r.text.lines().count());
        assert_eq!(r.origins[0], Some(o(4)));
        let clients = r.text.lines().position(|l| l == "clients = 7");
        assert_eq!(clients.and_then(|i| r.origins[i].clone()), Some(o(6)));
    }
}
