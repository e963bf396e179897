//! `[[tls]]`: the certificates TLS presents, each a PEM chain with its key (separate files,
//! as Let's Encrypt writes them, or one combined PEM). Only the names are checked here; the
//! files are read by `crate::tls` at start-up and on every reload, so a broken file on
//! reload keeps the running certificate instead of refusing the whole config.

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, Source};
use super::value::{optional_path, path};
use crate::config::CertificateFiles;

/// Most `[[tls]]` certificates a configuration may declare.
const MAX_CERTIFICATES: usize = 64;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawTls {
    certificate: Spanned<String>,
    private_key: Option<Spanned<String>>,
}

pub(super) fn convert(
    src: &Source<'_>,
    tls: Spanned<Vec<RawTls>>,
) -> Result<Vec<CertificateFiles>, ConfigError> {
    let span = tls.span();
    let tls = tls.into_inner();
    if tls.len() > MAX_CERTIFICATES {
        return Err(src.invalid(
            span,
            "tls",
            format!("at most {MAX_CERTIFICATES} certificates are allowed"),
        ));
    }
    tls.into_iter()
        .enumerate()
        .map(|(i, t)| {
            Ok(CertificateFiles {
                certificate: path(src, t.certificate, &format!("tls[{i}].certificate"))?,
                private_key: optional_path(src, t.private_key, &format!("tls[{i}].private-key"))?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::config::TlsMode;
    use crate::config::load::tests::{err, ok};

    #[test]
    fn certificates_and_socket_modes() {
        let cfg = ok(
            "[[tls]]\ncertificate = \"/c/full.pem\"\nprivate-key = \"/c/key.pem\"\n\
             [[tls]]\ncertificate = \"/c/both.pem\"\n\
             [[listen]]\nport = 8443\ntls = \"required\"\n[[listen]]\nport = 8000\n",
        );
        assert_eq!(cfg.tls.len(), 2);
        assert_eq!(cfg.tls[0].private_key, Some(PathBuf::from("/c/key.pem")));
        assert_eq!(cfg.tls[1].private_key, None);
        assert_eq!(cfg.listen[0].tls, TlsMode::Required);
        assert_eq!(cfg.listen[1].tls, TlsMode::Auto);
    }

    #[test]
    fn required_needs_a_certificate() {
        let e = err("[[listen]]\nport = 8443\ntls = \"required\"\n");
        assert_eq!(e.key(), Some("listen[0].tls"));
        assert_eq!(e.line(), Some(3));
        let e = err("[[listen]]\nport = 8443\ntls = \"yes\"\n");
        assert_eq!(e.key(), Some("listen[0].tls"));
        let e = err("[[tls]]\ncertificate = \"\"\n");
        assert_eq!(e.key(), Some("tls[0].certificate"));
    }
}
