//! `[[http-header]]` (and a mount's `http-header`): extra response headers, checked so that
//! no name or value can break or inject into a response head.

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, Source};
use super::value::ranged;
use crate::config::HttpHeader;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawHeader {
    name: Spanned<String>,
    value: Spanned<String>,
    status: Option<Spanned<u16>>,
}

/// An HTTP token (RFC 9110 §5.6.2), as header names must be.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

pub(super) fn convert(
    src: &Source<'_>,
    headers: Vec<RawHeader>,
    prefix: &str,
) -> Result<Vec<HttpHeader>, ConfigError> {
    let mut out = Vec::with_capacity(headers.len());
    for (i, h) in headers.into_iter().enumerate() {
        let key = format!("{prefix}[{i}]");
        if !is_token(h.name.get_ref()) {
            return Err(src.invalid(
                h.name.span(),
                &format!("{key}.name"),
                format!("not a valid HTTP header name: {:?}", h.name.get_ref()),
            ));
        }
        // No CR/LF (header injection) nor other control characters except tab.
        if h.value
            .get_ref()
            .chars()
            .any(|c| c.is_control() && c != '\t')
        {
            return Err(src.invalid(
                h.value.span(),
                &format!("{key}.value"),
                "must not contain CR, LF or other control characters",
            ));
        }
        let status = match h.status {
            Some(s) => Some(
                ranged(src, &s, &format!("{key}.status"), 100..=599, "")
                    .map_err(|e| e.reworded("must be an HTTP status code (100..=599)"))?,
            ),
            None => None,
        };
        out.push(HttpHeader {
            name: h.name.into_inner(),
            value: h.value.into_inner(),
            status,
        });
    }
    Ok(out)
}
