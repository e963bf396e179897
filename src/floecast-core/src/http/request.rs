//! Request-head parsing, as liberal as icecast2's `httpp`: bare-LF lines, `\r\r\n` endings,
//! `ICE/1.0` and `HTTP/1.x` protocols, header names in any case. Paths are percent-decoded
//! and rejected when they try to climb (`/../`), as icecast's `verify_path` does.

use base64::Engine;

/// Largest request head we accept. icecast2 allows 4095 bytes; browsers with cookies need more.
pub const MAX_HEAD: usize = 8192;
/// Most header lines we accept (icecast2: 32).
pub const MAX_HEADERS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// Upper-cased method: GET, SOURCE, PUT ...
    pub method: String,
    /// The raw request target as sent.
    pub uri: String,
    /// Percent-decoded path without the query string.
    pub path: String,
    /// The raw query string (after `?`), not decoded.
    pub query: String,
    /// `HTTP` or `ICE`.
    pub protocol: String,
    /// e.g. "1.0".
    pub version: String,
    /// Header lines in arrival order, names as sent.
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("request head too large")]
    TooLarge,
    #[error("too many header lines")]
    TooManyHeaders,
    #[error("malformed request line")]
    BadRequestLine,
    #[error("malformed header line")]
    BadHeader,
    #[error("bad request path")]
    BadPath,
}

impl RequestHead {
    /// First header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Decoded query parameter (`+` is a space). Invalid UTF-8 is read as ISO-8859-1, the
    /// charset old encoders use for titles.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_pairs(&self.query)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The `User-Agent` header, or empty.
    pub fn user_agent(&self) -> &str {
        self.header("user-agent").unwrap_or("")
    }

    /// Request line as icecast logs it: `METHOD PATH PROTO/VER` (no query string).
    pub fn log_line(&self) -> String {
        format!(
            "{} {} {}/{}",
            self.method, self.path, self.protocol, self.version
        )
    }

    /// True when the client asked for in-band ICY metadata (`Icy-MetaData` parses as non-zero).
    pub fn wants_icy_metadata(&self) -> bool {
        self.header("icy-metadata")
            .map(|v| v.trim().parse::<i64>().map(|n| n != 0).unwrap_or(false))
            .unwrap_or(false)
    }
}

/// Decoded `key=value` pairs of a query string.
pub fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode_component(k), decode_component(v))
    })
}

fn decode_component(s: &str) -> String {
    let bytes = percent_decode(&s.replace('+', " "));
    bytes_to_string(bytes)
}

/// UTF-8 if it is, else ISO-8859-1.
pub fn bytes_to_string(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => e.into_bytes().iter().map(|&b| b as char).collect(),
    }
}

/// Percent-encode everything but RFC 3986 unreserved characters (UTF-8 bytes as `%XX`): safe
/// in a query value and in `application/x-www-form-urlencoded` bodies.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-decode to raw bytes; malformed escapes are kept literally.
pub fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Length of the request head in `buf` including its terminating blank line, once complete.
/// A line is blank when it holds nothing but `\r`s, so `\r\n\r\n`, `\n\n` and `\r\r\n\r\r\n`
/// all end a head.
pub fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    for (i, &c) in buf.iter().enumerate() {
        if c == b'\n' {
            let line = &buf[line_start..i];
            if line_start > 0 && line.iter().all(|&c| c == b'\r') {
                return Some(i + 1);
            }
            line_start = i + 1;
        }
    }
    None
}

/// Like [`find_head_end`], but a block may also be empty (a lone blank line), as in the
/// ICY source header block.
pub fn find_head_end_or_blank(buf: &[u8]) -> Option<usize> {
    let first_nl = buf.iter().position(|&c| c == b'\n')?;
    if buf[..first_nl].iter().all(|&c| c == b'\r') {
        return Some(first_nl + 1);
    }
    find_head_end(buf)
}

/// Parse a complete head (as delimited by [`find_head_end`]).
pub fn parse_head(head: &[u8]) -> Result<RequestHead, ParseError> {
    if head.len() > MAX_HEAD {
        return Err(ParseError::TooLarge);
    }
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let request_line = lines.next().ok_or(ParseError::BadRequestLine)?;
    let mut parts = request_line.split_ascii_whitespace();
    let (method, uri, proto) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(u), Some(p), None) => (m, u, p),
        _ => return Err(ParseError::BadRequestLine),
    };
    let (protocol, version) = proto.split_once('/').ok_or(ParseError::BadRequestLine)?;
    let protocol = protocol.to_ascii_uppercase();
    if protocol != "HTTP" && protocol != "ICE" {
        return Err(ParseError::BadRequestLine);
    }
    if !method.bytes().all(|c| c.is_ascii_alphabetic()) || method.len() > 16 {
        return Err(ParseError::BadRequestLine);
    }

    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if headers.len() >= MAX_HEADERS {
            return Err(ParseError::TooManyHeaders);
        }
        let (name, value) = line.split_once(':').ok_or(ParseError::BadHeader)?;
        let name = name.trim();
        if name.is_empty()
            || name
                .bytes()
                .any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
        {
            return Err(ParseError::BadHeader);
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }

    let (raw_path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let path = if raw_path == "*" {
        "*".to_string()
    } else {
        decode_path(raw_path)?
    };
    Ok(RequestHead {
        method: method.to_ascii_uppercase(),
        uri: uri.to_string(),
        path,
        query: query.to_string(),
        protocol,
        version: version.to_string(),
        headers,
    })
}

/// Percent-decode a path and refuse traversal and empty segments, like icecast's `verify_path`.
/// An absolute-form target (`http://host/x`) is reduced to its path.
fn decode_path(raw: &str) -> Result<String, ParseError> {
    let raw = match raw
        .strip_prefix("http://")
        .or_else(|| raw.strip_prefix("https://"))
    {
        Some(rest) => rest.find('/').map(|i| &rest[i..]).unwrap_or("/"),
        None => raw,
    };
    let decoded = bytes_to_string(percent_decode(raw));
    if !decoded.starts_with('/')
        || decoded.contains("//")
        || decoded.contains("/./")
        || decoded.contains("/../")
        || decoded.ends_with("/..")
        || decoded.ends_with("/.")
        || decoded.contains('\0')
    {
        return Err(ParseError::BadPath);
    }
    Ok(decoded)
}

/// Credentials from an `Authorization: Basic` header value.
pub fn basic_auth(value: &str) -> Option<(String, String)> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = bytes_to_string(raw);
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// Compare secrets without an early exit, so response timing does not leak a prefix.
pub fn secret_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= (*a.get(i).unwrap_or(&0) ^ *b.get(i).unwrap_or(&0)) as usize;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[u8]) -> RequestHead {
        let end = find_head_end(s).expect("complete head");
        parse_head(&s[..end]).expect("parses")
    }

    #[test]
    fn head_terminators() {
        assert_eq!(find_head_end(b"GET / HTTP/1.0\r\n\r\nxyz"), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.0\n\nxyz"), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.0\r\r\n\r\r\nx"), Some(20));
        assert_eq!(find_head_end(b"GET / HTTP/1.0\r\nHost: a\r\n"), None);
        assert_eq!(find_head_end(b"\r\n"), None);
    }

    #[test]
    fn darkice_lf_only_lines() {
        // DarkIce ends lines with a bare LF and the head with CRLF CRLF.
        let raw = b"SOURCE /live HTTP/1.0\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\nContent-type: audio/mpeg\nice-name: dark\r\n\r\n\xff\xfb";
        let end = find_head_end(raw).unwrap();
        assert_eq!(&raw[end..], b"\xff\xfb");
        let h = parse_head(&raw[..end]).unwrap();
        assert_eq!(h.method, "SOURCE");
        assert_eq!(h.header("content-type"), Some("audio/mpeg"));
        assert_eq!(h.header("ICE-NAME"), Some("dark"));
        assert_eq!(
            basic_auth(h.header("authorization").unwrap()),
            Some(("source".into(), "hackme".into()))
        );
    }

    #[test]
    fn ice_protocol_and_query() {
        let h = parse(b"SOURCE /q.mp3?x=1&song=A+%2d%20B ICE/1.0\r\nice-password: pw\r\n\r\n");
        assert_eq!(h.protocol, "ICE");
        assert_eq!(h.path, "/q.mp3");
        assert_eq!(h.query_param("song").as_deref(), Some("A - B"));
        assert_eq!(h.log_line(), "SOURCE /q.mp3 ICE/1.0");
    }

    #[test]
    fn latin1_query_values() {
        let h = parse(b"GET /admin/metadata?song=caf%e9 HTTP/1.0\r\n\r\n");
        assert_eq!(h.query_param("song").as_deref(), Some("caf\u{e9}"));
        let h = parse(b"GET /admin/metadata?song=caf%C3%A9 HTTP/1.0\r\n\r\n");
        assert_eq!(h.query_param("song").as_deref(), Some("caf\u{e9}"));
    }

    #[test]
    fn rejects_bad_lines_and_paths() {
        assert_eq!(
            parse_head(b"HELLO\r\n\r\n"),
            Err(ParseError::BadRequestLine)
        );
        assert_eq!(
            parse_head(b"GET / FTP/1.0\r\n\r\n"),
            Err(ParseError::BadRequestLine)
        );
        assert_eq!(
            parse_head(b"GET /a/../etc HTTP/1.0\r\n\r\n"),
            Err(ParseError::BadPath)
        );
        assert_eq!(
            parse_head(b"GET /a/%2e%2e/etc HTTP/1.0\r\n\r\n"),
            Err(ParseError::BadPath)
        );
        assert_eq!(
            parse_head(b"GET //x HTTP/1.0\r\n\r\n"),
            Err(ParseError::BadPath)
        );
        assert_eq!(
            parse_head(b"GET / HTTP/1.0\r\nno colon\r\n\r\n"),
            Err(ParseError::BadHeader)
        );
        let mut many = b"GET / HTTP/1.0\r\n".to_vec();
        for i in 0..100 {
            many.extend_from_slice(format!("h{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse_head(&many), Err(ParseError::TooManyHeaders));
    }

    #[test]
    fn options_star_and_absolute_uri() {
        assert_eq!(
            parse(b"OPTIONS * HTTP/1.1\r\nConnection: Upgrade\r\n\r\n").path,
            "*"
        );
        assert_eq!(
            parse(b"GET http://h:8000/live HTTP/1.1\r\n\r\n").path,
            "/live"
        );
    }

    #[test]
    fn icy_metadata_flag() {
        assert!(parse(b"GET / HTTP/1.0\r\nIcy-MetaData: 1\r\n\r\n").wants_icy_metadata());
        assert!(parse(b"GET / HTTP/1.0\r\nicy-metadata:1\r\n\r\n").wants_icy_metadata());
        assert!(!parse(b"GET / HTTP/1.0\r\nIcy-MetaData: 0\r\n\r\n").wants_icy_metadata());
        assert!(!parse(b"GET / HTTP/1.0\r\n\r\n").wants_icy_metadata());
    }

    #[test]
    fn basic_auth_forms() {
        assert_eq!(
            basic_auth("Basic c291cmNlOmhhY2ttZQ=="),
            Some(("source".into(), "hackme".into()))
        );
        assert_eq!(
            basic_auth("basic   c291cmNlOmhhY2ttZQ=="),
            Some(("source".into(), "hackme".into()))
        );
        assert_eq!(basic_auth("Bearer x"), None);
        assert_eq!(basic_auth("Basic !!!"), None);
        assert!(secret_eq("hackme", "hackme"));
        assert!(!secret_eq("hackme", "hackm"));
        assert!(!secret_eq("", "x"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            if let Some(end) = find_head_end(&data) {
                let _ = parse_head(&data[..end]);
            }
            let _ = parse_head(&data);
        }
    }
}
