//! Icecast-exact response bytes for the paths the front door answers itself (ingest and the
//! listener path). Real clients key on these bytes: DarkIce greps `HTTP/1.0 200`, libshout
//! needs a reason phrase, butt looks for ` 401 ` and ` 403 `.

use std::fmt::Write;

use crate::config::HttpHeader;

/// The bare success reply every source client accepts (icecast2 2.4.4 sends exactly this).
pub const SOURCE_OK: &[u8] = b"HTTP/1.0 200 OK\r\n\r\n";
/// The interim reply to `Expect: 100-continue`, byte for byte as icecast2 sends it.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\n";
/// The SHOUTcast v1 source handshake reply.
pub const ICY_OK: &[u8] = b"OK2\r\nicy-caps:11\r\n\r\n";

/// Icecast's reason phrases (note "Authentication Required" and "File Not Found").
pub fn reason(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        302 => "Found",
        400 => "Bad Request",
        401 => "Authentication Required",
        403 => "Forbidden",
        404 => "File Not Found",
        405 => "Method Not Allowed",
        416 => "Request Range Not Satisfiable",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// The shape of an error body, which differs by status in icecast2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 401/403: `text/plain`, the message itself.
    Plain,
    /// 400/404: a tiny HTML page.
    Html,
}

/// The common header block: status line, Server, Connection, Date, Content-Type, the
/// no-cache trio and the configured extra headers. Ends *without* the blank line.
pub fn common_head(
    out: &mut String,
    code: u16,
    server_id: &str,
    content_type: &str,
    extra: &[&HttpHeader],
) {
    let _ = write!(
        out,
        "HTTP/1.0 {code} {}\r\nServer: {server_id}\r\nConnection: Close\r\nDate: {}\r\nContent-Type: {content_type}\r\n",
        reason(code),
        httpdate::fmt_http_date(std::time::SystemTime::now()),
    );
    if code == 401 {
        out.push_str("WWW-Authenticate: Basic realm=\"Icecast2 Server\"\r\n");
    }
    out.push_str(
        "Cache-Control: no-cache, no-store\r\nExpires: Mon, 26 Jul 1997 05:00:00 GMT\r\nPragma: no-cache\r\n",
    );
    push_extra_headers(out, code, extra);
}

/// Configured `<http-headers>` that apply to a response with this status.
pub fn push_extra_headers(out: &mut String, code: u16, extra: &[&HttpHeader]) {
    for h in extra {
        if h.status.is_none_or(|s| s == code) {
            let _ = write!(out, "{}: {}\r\n", h.name, h.value);
        }
    }
}

/// A complete icecast-style error response. The 401 message is always icecast's.
pub fn error_response(code: u16, message: &str, server_id: &str, extra: &[&HttpHeader]) -> Vec<u8> {
    let kind = if code == 401 || code == 403 {
        ErrorKind::Plain
    } else {
        ErrorKind::Html
    };
    let mut out = String::with_capacity(512);
    let content_type = match kind {
        ErrorKind::Plain => "text/plain; charset=utf-8",
        ErrorKind::Html => "text/html; charset=utf-8",
    };
    common_head(&mut out, code, server_id, content_type, extra);
    out.push_str("\r\n");
    match kind {
        ErrorKind::Plain if code == 401 => out.push_str("You need to authenticate\r\n"),
        ErrorKind::Plain => out.push_str(message),
        ErrorKind::Html => {
            let _ = write!(
                out,
                "<html><head><title>Error {code}</title></head><body><b>{code} - {}</b></body></html>\r\n",
                html_escape(message)
            );
        }
    }
    out.into_bytes()
}

/// Escape text for HTML and XML bodies. Control characters XML 1.0 cannot carry (a title
/// with `\x01` in it) are dropped: in an XHTML page sent as `text/xml` (`/status.xsl`) one
/// of them turns the whole page into a browser's XML parse error.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: Vec<u8>) -> String {
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn unauthorized_matches_icecast() {
        let acao = HttpHeader {
            name: "Access-Control-Allow-Origin".into(),
            value: "*".into(),
            status: None,
        };
        let r = text(error_response(401, "", "Icecast 2.4.4", &[&acao]));
        assert!(r.starts_with("HTTP/1.0 401 Authentication Required\r\nServer: Icecast 2.4.4\r\nConnection: Close\r\nDate: "));
        assert!(r.contains("\r\nContent-Type: text/plain; charset=utf-8\r\nWWW-Authenticate: Basic realm=\"Icecast2 Server\"\r\nCache-Control: no-cache, no-store\r\nExpires: Mon, 26 Jul 1997 05:00:00 GMT\r\nPragma: no-cache\r\nAccess-Control-Allow-Origin: *\r\n\r\nYou need to authenticate\r\n"));
        assert!(r.ends_with("\r\n\r\nYou need to authenticate\r\n"));
    }

    #[test]
    fn forbidden_and_html_bodies() {
        let r = text(error_response(403, "Mountpoint in use", "S", &[]));
        assert!(r.starts_with("HTTP/1.0 403 Forbidden\r\n"));
        assert!(r.ends_with("\r\n\r\nMountpoint in use"));
        let r = text(error_response(400, "Unrecognised command", "S", &[]));
        assert!(r.contains("Content-Type: text/html; charset=utf-8\r\n"));
        assert!(r.ends_with("\r\n\r\n<html><head><title>Error 400</title></head><body><b>400 - Unrecognised command</b></body></html>\r\n"));
        let r = text(error_response(
            404,
            "The file you requested could not be found",
            "S",
            &[],
        ));
        assert!(r.starts_with("HTTP/1.0 404 File Not Found\r\n"));
    }

    #[test]
    fn status_filtered_headers() {
        let only_200 = HttpHeader {
            name: "X-A".into(),
            value: "1".into(),
            status: Some(200),
        };
        let r = text(error_response(404, "x", "S", &[&only_200]));
        assert!(!r.contains("X-A"));
    }
}
