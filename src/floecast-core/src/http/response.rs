//! icecast's reply heads, in one place: the exact bytes for the paths the front door answers
//! itself (ingest, listeners, STATS) and the same header lines for axum's replies. Real
//! clients key on these bytes: DarkIce greps `HTTP/1.0 200`, libshout needs a reason phrase,
//! butt looks for ` 401 ` and ` 403 `. Sans-IO: the date comes in as an argument.

use std::borrow::Cow;
use std::fmt::Write;
use std::time::SystemTime;

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

/// An extra header from the config (icecast's `<http-headers>`), global or a mount's.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpHeader {
    pub name: String,
    pub value: String,
    /// Only on responses with this status; `None` = every response, errors included.
    pub status: Option<u16>,
}

/// The icecast header rules, in one place: which lines a reply carries and in what order.
/// The front door writes them as bytes ([`IcecastHead::write`]); the axum side applies the
/// same lines to hyper's header map (`web.rs`). Time comes in as `date`: this module reads
/// no clock.
#[derive(Debug, Clone, Copy)]
pub struct IcecastHead<'a> {
    pub code: u16,
    pub server_id: &'a str,
    /// When the reply is made; `None` where the HTTP layer writes its own `Date` (hyper).
    pub date: Option<SystemTime>,
    /// `None` for a reply without a body, or where the handler sets it (axum).
    pub content_type: Option<&'a str>,
    /// The configured `<http-headers>`, global then the mount's; each may be limited to one
    /// status.
    pub extra: &'a [&'a HttpHeader],
}

/// One header line of an icecast reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadLine<'a> {
    pub name: &'a str,
    pub value: Cow<'a, str>,
    /// A default that a handler's own header of this name wins over (the 401 challenge, the
    /// no-cache trio); otherwise the line replaces what a handler set.
    pub default: bool,
}

impl<'a> HeadLine<'a> {
    fn set(name: &'a str, value: impl Into<Cow<'a, str>>) -> Self {
        HeadLine {
            name,
            value: value.into(),
            default: false,
        }
    }

    fn default(name: &'a str, value: &'a str) -> Self {
        HeadLine {
            name,
            value: Cow::Borrowed(value),
            default: true,
        }
    }
}

/// icecast's 401 challenge.
pub const CHALLENGE: (&str, &str) = ("WWW-Authenticate", "Basic realm=\"Icecast2 Server\"");

impl<'a> IcecastHead<'a> {
    /// `HTTP/1.0 <code> <icecast's reason>`, without the line end.
    pub fn status_line(&self) -> String {
        format!("HTTP/1.0 {} {}", self.code, reason(self.code))
    }

    /// icecast's own lines: `Server`, `Connection: Close`, `Date`, `Content-Type`, the 401
    /// challenge and, for a reply with a body (every status but 204), the no-cache trio.
    pub fn lines(&self) -> Vec<HeadLine<'a>> {
        let mut lines = Vec::with_capacity(8);
        lines.push(HeadLine::set("Server", self.server_id));
        lines.push(HeadLine::set("Connection", "Close"));
        if let Some(date) = self.date {
            lines.push(HeadLine::set("Date", httpdate::fmt_http_date(date)));
        }
        if let Some(ct) = self.content_type {
            lines.push(HeadLine::set("Content-Type", ct));
        }
        if self.code == 401 {
            lines.push(HeadLine::default(CHALLENGE.0, CHALLENGE.1));
        }
        if self.code != 204 {
            lines.push(HeadLine::default("Cache-Control", "no-cache, no-store"));
            lines.push(HeadLine::default(
                "Expires",
                "Mon, 26 Jul 1997 05:00:00 GMT",
            ));
            lines.push(HeadLine::default("Pragma", "no-cache"));
        }
        lines
    }

    /// The configured headers that apply to this status, in config order. icecast puts them
    /// after its own lines; a reply with lines of its own chooses where they go.
    pub fn extra_lines(&self) -> impl Iterator<Item = HeadLine<'a>> + 'a {
        let code = self.code;
        self.extra
            .iter()
            .filter(move |h| h.status.is_none_or(|s| s == code))
            .map(|h| HeadLine::set(&h.name, h.value.as_str()))
    }

    /// The status line and icecast's own lines, each ending in CRLF (no configured headers,
    /// no blank line).
    pub fn write(&self, out: &mut String) {
        out.push_str(&self.status_line());
        out.push_str("\r\n");
        push_lines(out, self.lines());
    }

    /// The configured headers, each ending in CRLF.
    pub fn write_extra(&self, out: &mut String) {
        push_lines(out, self.extra_lines());
    }
}

fn push_lines<'a>(out: &mut String, lines: impl IntoIterator<Item = HeadLine<'a>>) {
    for l in lines {
        let _ = write!(out, "{}: {}\r\n", l.name, l.value);
    }
}

/// icecast's error page for `code`: its content type and body, which differ by status in
/// icecast2. 401 and 403 are plain text (401 always icecast's own message), anything else is
/// a tiny HTML page.
pub fn error_page(code: u16, message: &str) -> (&'static str, String) {
    const PLAIN: &str = "text/plain; charset=utf-8";
    match code {
        401 => (PLAIN, "You need to authenticate\r\n".to_string()),
        403 => (PLAIN, message.to_string()),
        _ => (
            "text/html; charset=utf-8",
            format!(
                "<html><head><title>Error {code}</title></head><body><b>{code} - {}</b></body></html>\r\n",
                html_escape(message)
            ),
        ),
    }
}

/// A complete icecast-style error response, made at `date`.
pub fn error_response(
    code: u16,
    message: &str,
    server_id: &str,
    extra: &[&HttpHeader],
    date: SystemTime,
) -> Vec<u8> {
    let (content_type, body) = error_page(code, message);
    let head = IcecastHead {
        code,
        server_id,
        date: Some(date),
        content_type: Some(content_type),
        extra,
    };
    let mut out = String::with_capacity(512);
    head.write(&mut out);
    head.write_extra(&mut out);
    out.push_str("\r\n");
    out.push_str(&body);
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

    const DATE: &str = "Tue, 06 Jun 2023 09:40:00 GMT";

    fn date() -> SystemTime {
        httpdate::parse_http_date(DATE).unwrap()
    }

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
        let r = text(error_response(401, "", "Icecast 2.4.4", &[&acao], date()));
        assert_eq!(
            r,
            format!(
                "HTTP/1.0 401 Authentication Required\r\nServer: Icecast 2.4.4\r\nConnection: Close\r\nDate: {DATE}\r\nContent-Type: text/plain; charset=utf-8\r\nWWW-Authenticate: Basic realm=\"Icecast2 Server\"\r\nCache-Control: no-cache, no-store\r\nExpires: Mon, 26 Jul 1997 05:00:00 GMT\r\nPragma: no-cache\r\nAccess-Control-Allow-Origin: *\r\n\r\nYou need to authenticate\r\n"
            )
        );
    }

    #[test]
    fn forbidden_and_html_bodies() {
        let r = text(error_response(403, "Mountpoint in use", "S", &[], date()));
        assert!(r.starts_with("HTTP/1.0 403 Forbidden\r\n"));
        assert!(r.ends_with("\r\n\r\nMountpoint in use"));
        let r = text(error_response(
            400,
            "Unrecognised command",
            "S",
            &[],
            date(),
        ));
        assert!(r.contains("Content-Type: text/html; charset=utf-8\r\n"));
        assert!(r.ends_with("\r\n\r\n<html><head><title>Error 400</title></head><body><b>400 - Unrecognised command</b></body></html>\r\n"));
        let r = text(error_response(
            404,
            "The file you requested could not be found",
            "S",
            &[],
            date(),
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
        let r = text(error_response(404, "x", "S", &[&only_200], date()));
        assert!(!r.contains("X-A"));
        let head = IcecastHead {
            code: 200,
            server_id: "S",
            date: None,
            content_type: None,
            extra: &[&only_200],
        };
        assert_eq!(head.extra_lines().count(), 1);
    }

    #[test]
    fn no_body_no_cache_lines() {
        let head = IcecastHead {
            code: 204,
            server_id: "S",
            date: Some(date()),
            content_type: None,
            extra: &[],
        };
        let mut out = String::new();
        head.write(&mut out);
        assert_eq!(
            out,
            format!(
                "HTTP/1.0 204 No Content\r\nServer: S\r\nConnection: Close\r\nDate: {DATE}\r\n"
            )
        );
    }
}
