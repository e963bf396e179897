//! Reading icecast2's `icecast.xml`: every option of spec §5 either maps onto floecast's
//! TOML or draws a warning that names it and says why it is ignored or handled differently.
//!
//! The XML becomes commented TOML (what `floecast import-icecast` prints), built with a
//! checked builder so it is always valid TOML, then loaded like any other file, so both paths
//! share one set of validation rules. Errors are reported against the XML element and its
//! line, never against the generated TOML. Nothing here panics on any input.
//!
//! Files: `xml` reads the element tree, `writer` builds the TOML and the warnings, and one
//! file per group of icecast sections maps them (`global`, `listen`, `headers`, `mount`,
//! `listener_auth`, `relay`).

mod global;
mod headers;
mod listen;
mod listener_auth;
mod mount;
mod relay;
#[cfg(test)]
mod tests;
mod writer;
mod xml;

use std::path::Path;

use super::toml_doc::{Origin, TomlDoc};
use super::{Config, ConfigError, ConfigWarning};
use writer::{ROOT, Writer};

/// The TOML equivalent of an icecast.xml, and what could not be carried over.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    pub toml: String,
    /// In file order; each is also a comment in `toml`.
    pub warnings: Vec<ConfigWarning>,
    /// The XML file's name.
    origin: String,
    /// For each line of `toml`, the XML element it came from.
    origins: Vec<Option<Origin>>,
}

impl Converted {
    /// Loads the converted TOML. An error is reported at the XML line and option it came
    /// from, not at a line of TOML the user never saw.
    pub fn load(&self) -> Result<Config, ConfigError> {
        Config::from_toml_str(&self.toml, &format!("{} (converted)", self.origin)).map_err(|e| {
            let at = e.line().and_then(|line| {
                self.origins[..line.min(self.origins.len())]
                    .iter()
                    .rev()
                    .flatten()
                    .next()
            });
            match at {
                Some(at) => e.relocate(&self.origin, at.line, &at.option),
                None => e,
            }
        })
    }
}

/// Is this file an icecast.xml rather than TOML?
pub fn looks_like_xml(path: &Path, text: &str) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xml"))
        || text.trim_start().starts_with('<')
}

/// Convert an icecast.xml document to floecast TOML. Options are read in file order and the
/// last of a repeated one wins, as in icecast2.
pub fn to_toml(text: &str, origin: &str) -> Result<Converted, ConfigError> {
    let root = xml::parse(text, origin)?;
    let mut w = Writer {
        origin,
        doc: TomlDoc::default(),
        warnings: Vec::new(),
    };
    w.doc.section(ROOT).comment(&format!(
        "floecast configuration converted from {origin} (icecast2 format).\n\
         Comments starting with 'line N:' name icecast options that floecast does not carry\n\
         out as written, and why.\n"
    ));
    global::top_level(&mut w, &root)?;
    listen::listen_sockets(&mut w, &root)?;
    global::limits(&mut w, &root)?;
    global::authentication(&mut w, &root);
    global::paths_and_logging(&mut w, &root)?;
    if let Some(list) = headers::headers(&mut w, ROOT, root.children_named("http-headers"), "")? {
        let line = root.child("http-headers").map_or(1, |h| h.line);
        w.doc
            .section(ROOT)
            .set("http-header", list, Origin::new(line, "http-headers"));
    }
    mount::mounts(&mut w, &root)?;
    relay::master(&mut w, &root)?;
    relay::relays(&mut w, &root)?;
    let rendered = w.doc.render();
    Ok(Converted {
        toml: rendered.text,
        warnings: w.warnings,
        origin: origin.to_string(),
        origins: rendered.origins,
    })
}
