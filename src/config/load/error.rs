//! [`ConfigError`], and the [`Source`] that turns byte spans of the loaded text into the line,
//! column and dotted key an error names. Reports only; it never decides what is valid.

use std::ops::Range;

use toml::Spanned;

/// A configuration that could not be read, parsed or validated.
///
/// Displays as `config error in <origin> line <n>: <key>: <message>`, e.g.
/// `config error in floecast.toml line 12: limits.queue-size: must be at least burst-size (65535)`.
/// The line (and key) are omitted when unknown, e.g. when the file cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    origin: String,
    line: Option<usize>,
    column: Option<usize>,
    key: Option<String>,
    message: String,
    #[source]
    io: Option<std::io::Error>,
}

impl ConfigError {
    /// The file `origin` could not be read.
    pub(super) fn unreadable(origin: &str, e: std::io::Error) -> Self {
        ConfigError {
            message: format!("cannot read: {e}"),
            origin: origin.to_string(),
            line: None,
            column: None,
            key: None,
            io: Some(e),
        }
    }

    /// The same error, at the same place, with other words for what is wrong.
    pub(super) fn reworded(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// An error at a known line and key of a file in another format (icecast.xml).
    pub(crate) fn at(origin: &str, line: Option<usize>, key: &str, message: String) -> Self {
        ConfigError {
            origin: origin.to_string(),
            line,
            column: None,
            key: Some(key.to_string()),
            message,
            io: None,
        }
    }

    /// The file name (or other origin) given to the loader.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// 1-based line of the offending key or value, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// 1-based column (in characters) of the offending key or value, when known.
    pub fn column(&self) -> Option<usize> {
        self.column
    }

    /// Dotted path of the offending key, e.g. `limits.queue-size` or `mount[1].fallback-mount`.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// What is wrong, without origin, line or key.
    pub fn message(&self) -> &str {
        &self.message
    }

    fn render(&self) -> String {
        let mut out = format!("config error in {}", self.origin);
        if let Some(line) = self.line {
            out.push_str(&format!(" line {line}"));
            // Syntax errors have no key; the column helps find them.
            if let (None, Some(column)) = (&self.key, self.column) {
                out.push_str(&format!(", column {column}"));
            }
        }
        out.push_str(": ");
        if let Some(key) = &self.key {
            out.push_str(key);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        out
    }
}

impl ConfigError {
    /// The same error reported at another place: `line` and `key` of the file the user wrote,
    /// for errors found in text generated from it (icecast.xml converted to TOML).
    pub(crate) fn relocate(mut self, origin: &str, line: usize, key: &str) -> Self {
        let generated_key = self.key.take();
        self.origin = origin.to_string();
        self.line = Some(line);
        self.column = None;
        self.key = Some(match generated_key {
            Some(k) if k != key => format!("{key} (TOML {k})"),
            _ => key.to_string(),
        });
        self
    }
}

/// The text being loaded, for turning byte spans into lines.
pub(super) struct Source<'a> {
    pub(super) text: &'a str,
    pub(super) origin: &'a str,
}

impl Source<'_> {
    /// 1-based (line, column) of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    fn error(
        &self,
        span: Option<Range<usize>>,
        key: Option<String>,
        message: String,
    ) -> ConfigError {
        let (line, column) = match span {
            Some(span) => {
                let (l, c) = self.position(span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigError {
            origin: self.origin.to_owned(),
            line,
            column,
            key,
            message,
            io: None,
        }
    }

    /// A validation error about the value at `span` under the dotted `key`.
    pub(super) fn invalid(
        &self,
        span: Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        self.error(Some(span), Some(key.to_owned()), message.into())
    }

    /// Converts a TOML syntax or deserialization error, finding the key it concerns.
    pub(super) fn toml_error(&self, err: &toml::de::Error) -> ConfigError {
        let span = err.span();
        let key = match (&span, toml::de::DeTable::parse(self.text)) {
            // Syntax errors have no key; type and unknown-key errors do.
            (Some(span), Ok(doc)) => key_path_at(doc.get_ref(), span.start),
            _ => None,
        };
        self.error(span, key, err.message().trim_end().to_owned())
    }
}

/// The dotted path of the deepest key or value whose span contains `offset`.
fn key_path_at(table: &toml::de::DeTable<'_>, offset: usize) -> Option<String> {
    let mut path = String::new();
    find_in_table(table, offset, &mut path).then_some(path)
}

fn find_in_table(table: &toml::de::DeTable<'_>, offset: usize, path: &mut String) -> bool {
    for (key, value) in table.iter() {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key.get_ref());
        if key.span().contains(&offset) || find_in_value(value, offset, path) {
            return true;
        }
        path.truncate(len);
    }
    false
}

fn find_in_value(value: &Spanned<toml::de::DeValue<'_>>, offset: usize, path: &mut String) -> bool {
    // Containers are searched even when their own span misses `offset`: the span of an
    // array of tables (`[[mount]]`) does not cover the tables' bodies.
    let found_inside = match value.get_ref() {
        toml::de::DeValue::Table(t) => find_in_table(t, offset, path),
        toml::de::DeValue::Array(a) => a.iter().enumerate().any(|(i, v)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = find_in_value(v, offset, path);
            if !found {
                path.truncate(len);
            }
            found
        }),
        _ => false,
    };
    found_inside || value.span().contains(&offset)
}
#[cfg(test)]
mod tests {
    use crate::config::load::tests::err;

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = err("hostname = \"x\"\n\n[limits]\nclients = 5\nclient-timeout = 30\n");
        assert_eq!(e.line(), Some(5));
        assert_eq!(e.key(), Some("limits.client-timeout"));
        let text = e.to_string();
        assert!(
            text.starts_with(
                "config error in floecast.toml line 5: limits.client-timeout: unknown field"
            ),
            "{text}"
        );

        let e = err("[[mount]]\nname = \"/a\"\n[[mount]]\nname = \"/b\"\nmount-name = \"/c\"\n");
        assert_eq!(e.line(), Some(5));
        assert_eq!(e.key(), Some("mount[1].mount-name"));

        let e = err("port = 8000\n");
        assert_eq!((e.line(), e.key()), (Some(1), Some("port")));
    }

    #[test]
    fn bad_type_names_line() {
        let e = err("[limits]\nclients = 100\nsources = \"two\"\n");
        assert_eq!(e.line(), Some(3));
        assert_eq!(e.key(), Some("limits.sources"));
        assert!(e.to_string().contains("line 3"), "{e}");

        let e = err("[[mount]]\nname = \"/a\"\nhidden = 1\n");
        assert_eq!((e.line(), e.key()), (Some(3), Some("mount[0].hidden")));

        let e = err("[[listen]]\nport = 70000\n");
        assert_eq!((e.line(), e.key()), (Some(2), Some("listen[0].port")));
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let e = err("hostname = \"x\"\n[limits\n");
        assert_eq!(e.line(), Some(2));
        assert!(e.column().is_some());
        assert_eq!(e.key(), None);
        assert!(e.to_string().contains("line 2, column"), "{e}");
    }

    #[test]
    fn non_ascii_text_positions() {
        let e = err("location = \"Zürich ☃\"\nbogus = 1\n");
        assert_eq!((e.line(), e.column()), (Some(2), Some(1)));
    }
}
