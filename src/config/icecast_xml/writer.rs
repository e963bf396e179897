//! The [`Writer`]: builds the TOML document from icecast options, and the warnings (also
//! written as TOML comments) about what does not carry over as written.

use super::xml::Element;
use crate::config::toml_doc::{Origin, SectionId, TomlDoc};
use crate::config::{ConfigError, ConfigWarning, Severity};

/// Builds the TOML document and the warnings about what does not carry over.
pub(super) struct Writer<'a> {
    pub(super) origin: &'a str,
    pub(super) doc: TomlDoc,
    pub(super) warnings: Vec<ConfigWarning>,
}

/// The document's top level, before any `[table]`.
pub(super) const ROOT: SectionId = TomlDoc::ROOT;

impl Writer<'_> {
    /// A warning, also written as a comment into the table `at`.
    pub(super) fn note(
        &mut self,
        at: SectionId,
        line: usize,
        option: &str,
        severity: Severity,
        message: String,
    ) {
        let w = ConfigWarning {
            line: Some(line),
            option: option.to_string(),
            message,
            severity,
        };
        let comment = match severity {
            Severity::Danger => format!("WARNING: {w}"),
            Severity::Notice => w.to_string(),
        };
        self.doc.section(at).comment(&comment);
        self.warnings.push(w);
    }

    pub(super) fn ignored(&mut self, at: SectionId, el: &Element, option: &str, why: &str) {
        self.note(
            at,
            el.line,
            option,
            Severity::Notice,
            format!("ignored: {why}"),
        );
    }

    pub(super) fn danger(&mut self, at: SectionId, el: &Element, option: &str, message: String) {
        self.note(at, el.line, option, Severity::Danger, message);
    }

    /// Sets `key` from `el`. An option given twice keeps its last value, as in icecast2.
    pub(super) fn set(
        &mut self,
        at: SectionId,
        key: &str,
        value: impl Into<toml::Value>,
        el: &Element,
        option: &str,
    ) {
        let earlier = self
            .doc
            .section(at)
            .set(key, value, Origin::new(el.line, option));
        if let Some(earlier) = earlier {
            self.note(
                at,
                el.line,
                option,
                Severity::Notice,
                format!(
                    "repeated (first at line {}); the last one applies, as in icecast2",
                    earlier.line
                ),
            );
        }
    }

    /// A text option. An empty element is "not set" in icecast2, so it is left out.
    pub(super) fn text(&mut self, at: SectionId, key: &str, el: &Element, option: &str) {
        if el.value().is_empty() {
            self.ignored(at, el, option, "empty, which icecast2 reads as not set");
        } else {
            self.set(at, key, el.value(), el, option);
        }
    }

    pub(super) fn int(&self, el: &Element, option: &str) -> Result<i64, ConfigError> {
        el.value().parse::<i64>().map_err(|_| {
            ConfigError::at(
                self.origin,
                Some(el.line),
                option,
                format!("expected a whole number, got {:?}", el.value()),
            )
        })
    }

    pub(super) fn number(
        &mut self,
        at: SectionId,
        key: &str,
        el: &Element,
        option: &str,
    ) -> Result<(), ConfigError> {
        let n = self.int(el, option)?;
        self.set(at, key, n, el, option);
        Ok(())
    }

    pub(super) fn flag(
        &mut self,
        at: SectionId,
        key: &str,
        el: &Element,
        option: &str,
    ) -> Result<(), ConfigError> {
        let b = self.int(el, option)? != 0;
        self.set(at, key, b, el, option);
        Ok(())
    }
}
