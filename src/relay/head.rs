//! Sans-IO pieces of the relay client: upstream URLs, the exact request bytes of spec §4,
//! and a liberal response-head parser (`HTTP/1.0 200 OK`, `HTTP/1.1 200`, SHOUTcast's
//! `ICY 200 OK`, bare-LF lines) under a size cap. Nothing here touches a socket.

use base64::Engine;

/// Largest response head accepted from an upstream.
pub const MAX_RESPONSE_HEAD: usize = 8192;
/// Most header lines accepted in a response head.
pub const MAX_RESPONSE_HEADERS: usize = 64;

/// `http://host[:port]/path` of an upstream stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    pub host: String,
    pub port: u16,
    /// Path and query as sent in the request line.
    pub path: String,
}

impl UpstreamUrl {
    /// Parse an absolute `http://` URL (a 302 `Location`, a streamlist line). Port 80 by
    /// default, as icecast. `https`, user-info, spaces and controls are refused.
    pub fn parse(url: &str) -> Option<UpstreamUrl> {
        let rest = strip_prefix_ci(url.trim(), "http://")?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], &rest[i..]),
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        if authority.contains('@') || !request_safe(&path) {
            return None;
        }
        let (host, port) = split_host_port(authority)?;
        Some(UpstreamUrl { host, port, path })
    }

    pub fn new(host: &str, port: u16, path: &str) -> Option<UpstreamUrl> {
        if host.is_empty() || !host_safe(host) || !path.starts_with('/') || !request_safe(path) {
            return None;
        }
        Some(UpstreamUrl {
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }

    /// `host:port` for connecting (IPv6 literals bracketed).
    pub fn authority(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.authority(), self.path)
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn host_safe(host: &str) -> bool {
    host.len() <= 253
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
        })
}

/// Fit for a request line: no spaces, no controls, no non-ASCII.
fn request_safe(path: &str) -> bool {
    !path.is_empty() && path.bytes().all(|b| b > b' ' && b < 0x7f)
}

fn split_host_port(authority: &str) -> Option<(String, u16)> {
    if authority.is_empty() {
        return None;
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return None,
        };
        (h.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|&p| p > 0)?,
        None => 80,
    };
    (!host.is_empty() && host_safe(&host)).then_some((host, port))
}

/// What to ask an upstream for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRequest {
    pub user_agent: String,
    /// Send `Icy-MetaData: 1`.
    pub icy_metadata: bool,
    pub credentials: Option<(String, String)>,
}

/// The exact bytes icecast's relay sends (spec §4): `Host` without the port.
pub fn stream_request(url: &UpstreamUrl, req: &StreamRequest) -> Vec<u8> {
    let mut out = format!(
        "GET {} HTTP/1.0\r\nUser-Agent: {}\r\nHost: {}\r\n",
        url.path,
        one_line(&req.user_agent),
        url.host
    );
    if req.icy_metadata {
        out.push_str("Icy-MetaData: 1\r\n");
    }
    if let Some((u, p)) = &req.credentials {
        out.push_str(&format!("Authorization: Basic {}\r\n", basic(u, p)));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// The exact bytes an icecast slave polls its master with (spec §4).
pub fn streamlist_request(user: &str, password: &str) -> Vec<u8> {
    format!(
        "GET /admin/streamlist.txt HTTP/1.0\r\nAuthorization: Basic {}\r\n\r\n",
        basic(user, password)
    )
    .into_bytes()
}

fn basic(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// A header value from config must not be able to end its line.
fn one_line(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// A parsed response status line and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// `HTTP/1.0`, `HTTP/1.1` or `ICY`.
    pub protocol: String,
    pub status: u16,
    pub reason: String,
    /// Header lines in arrival order, names as sent.
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Transfer-Encoding: chunked`: the body must be de-chunked.
    pub fn is_chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    /// The stream's Content-Type; icecast assumes MP3 when an upstream sends none.
    pub fn content_type(&self) -> &str {
        self.header("content-type")
            .filter(|v| !v.is_empty())
            .unwrap_or("audio/mpeg")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("response head larger than {MAX_RESPONSE_HEAD} bytes")]
    TooLarge,
    #[error("malformed status line")]
    BadStatusLine,
    #[error("malformed header line")]
    BadHeader,
    #[error("too many header lines")]
    TooManyHeaders,
}

/// Look for a complete response head at the start of `buf`. `Ok(None)`: need more bytes.
/// `Ok(Some((head, n)))`: the head took `n` bytes; what follows is stream data.
pub fn parse_response(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, HeadError> {
    // A status line can be refused before the head is complete (garbage, a wrong service).
    if let Some(nl) = buf.iter().position(|&b| b == b'\n') {
        parse_status_line(&buf[..nl])?;
    } else if buf.len() >= 16 && !looks_like_status(buf) {
        return Err(HeadError::BadStatusLine);
    }
    let Some(end) = crate::http::find_head_end(buf) else {
        if buf.len() >= MAX_RESPONSE_HEAD {
            return Err(HeadError::TooLarge);
        }
        return Ok(None);
    };
    if end > MAX_RESPONSE_HEAD {
        return Err(HeadError::TooLarge);
    }
    let text = String::from_utf8_lossy(&buf[..end]);
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let (protocol, status, reason) = parse_status_line(lines.next().unwrap_or("").as_bytes())?;
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if headers.len() >= MAX_RESPONSE_HEADERS {
            return Err(HeadError::TooManyHeaders);
        }
        let (name, value) = line.split_once(':').ok_or(HeadError::BadHeader)?;
        let name = name.trim();
        if name.is_empty() || name.bytes().any(|c| c <= b' ' || c == 0x7f) {
            return Err(HeadError::BadHeader);
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    Ok(Some((
        ResponseHead {
            protocol,
            status,
            reason,
            headers,
        },
        end,
    )))
}

fn looks_like_status(buf: &[u8]) -> bool {
    let up = |p: &[u8]| buf.len() >= p.len() && buf[..p.len()].eq_ignore_ascii_case(p);
    up(b"HTTP/") || up(b"ICY ")
}

/// `HTTP/1.x NNN reason`, `ICY NNN reason`. icecast's parser wants a reason phrase; a
/// missing one is accepted here (parse liberally, spec §9) and reads as empty.
fn parse_status_line(line: &[u8]) -> Result<(String, u16, String), HeadError> {
    let line = String::from_utf8_lossy(line);
    let line = line.trim_end_matches('\r');
    let mut parts = line.splitn(3, ' ');
    let proto = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    let reason = parts.next().unwrap_or("").trim().to_string();
    let proto_up = proto.to_ascii_uppercase();
    let proto_ok = proto_up == "ICY"
        || proto_up
            .strip_prefix("HTTP/")
            .is_some_and(|v| v == "1.0" || v == "1.1");
    if !proto_ok || code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeadError::BadStatusLine);
    }
    let status = code.parse().map_err(|_| HeadError::BadStatusLine)?;
    Ok((proto_up, status, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(b: &[u8]) -> (ResponseHead, usize) {
        parse_response(b).expect("parses").expect("complete")
    }

    #[test]
    fn request_bytes_are_icecasts() {
        let url = UpstreamUrl::new("127.0.0.1", 8000, "/live.ogg").unwrap();
        let req = StreamRequest {
            user_agent: "Icecast 2.4.4".into(),
            icy_metadata: true,
            credentials: Some(("source".into(), "hackme".into())),
        };
        assert_eq!(
            stream_request(&url, &req),
            b"GET /live.ogg HTTP/1.0\r\nUser-Agent: Icecast 2.4.4\r\nHost: 127.0.0.1\r\nIcy-MetaData: 1\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\n\r\n"
        );
        let plain = StreamRequest {
            user_agent: "x\r\nEvil: 1".into(),
            icy_metadata: false,
            credentials: None,
        };
        assert_eq!(
            stream_request(&url, &plain),
            b"GET /live.ogg HTTP/1.0\r\nUser-Agent: xEvil: 1\r\nHost: 127.0.0.1\r\n\r\n"
        );
        assert_eq!(
            streamlist_request("relay", "hackme"),
            b"GET /admin/streamlist.txt HTTP/1.0\r\nAuthorization: Basic cmVsYXk6aGFja21l\r\n\r\n"
        );
    }

    #[test]
    fn status_lines() {
        let (h, n) = parse_all(
            b"HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\nicy-metaint:16000\r\n\r\nAUDIO",
        );
        assert_eq!((h.status, h.reason.as_str(), n), (200, "OK", 64));
        assert_eq!(h.header("ICY-METAINT"), Some("16000"));
        let (h, _) = parse_all(b"ICY 200 OK\r\nicy-name:x\r\n\r\n");
        assert_eq!((h.protocol.as_str(), h.status), ("ICY", 200));
        let (h, _) = parse_all(b"HTTP/1.1 200\nTransfer-Encoding: chunked\n\n");
        assert_eq!((h.status, h.reason.as_str()), (200, ""));
        assert!(h.is_chunked());
        assert_eq!(h.content_type(), "audio/mpeg");
        let (h, _) = parse_all(b"HTTP/1.0 302 Found\r\nLocation: http://b:9/x\r\n\r\n");
        assert_eq!(
            (h.status, h.header("location")),
            (302, Some("http://b:9/x"))
        );
    }

    #[test]
    fn incomplete_garbage_and_oversize() {
        assert_eq!(parse_response(b"HTTP/1.0 200 OK\r\nA: b\r\n"), Ok(None));
        assert_eq!(parse_response(b"HTT"), Ok(None));
        assert_eq!(
            parse_response(b"SSH-2.0-OpenSSH_9.2p1\r\n"),
            Err(HeadError::BadStatusLine)
        );
        assert_eq!(
            parse_response(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03abcdefgh"),
            Err(HeadError::BadStatusLine)
        );
        assert_eq!(
            parse_response(b"HTTP/2 200 OK\r\n\r\n"),
            Err(HeadError::BadStatusLine)
        );
        assert_eq!(
            parse_response(b"HTTP/1.0 20 OK\r\n\r\n"),
            Err(HeadError::BadStatusLine)
        );
        assert_eq!(
            parse_response(b"HTTP/1.0 200 OK\r\nno colon here\r\n\r\n"),
            Err(HeadError::BadHeader)
        );
        let mut big = b"HTTP/1.0 200 OK\r\n".to_vec();
        while big.len() < MAX_RESPONSE_HEAD {
            big.extend_from_slice(b"icy-x: yyyyyyyyyyyyyyyyyyyyyyyyyy\r\n");
        }
        assert!(matches!(
            parse_response(&big),
            Err(HeadError::TooLarge | HeadError::TooManyHeaders)
        ));
        let mut many = b"HTTP/1.0 200 OK\r\n".to_vec();
        for i in 0..100 {
            many.extend_from_slice(format!("h{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse_response(&many), Err(HeadError::TooManyHeaders));
    }

    #[test]
    fn urls() {
        let u = UpstreamUrl::parse("http://example.org:8001/live.mp3?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("example.org", 8001, "/live.mp3?x=1")
        );
        let u = UpstreamUrl::parse("HTTP://example.org").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        let u = UpstreamUrl::parse("http://[::1]:8000/a").unwrap();
        assert_eq!(
            (u.host.as_str(), u.authority()),
            ("::1", "[::1]:8000".to_string())
        );
        for bad in [
            "https://a/b",
            "http://u:p@a/b",
            "http://a:0/b",
            "http://a:99999/b",
            "http:///b",
            "http://a/b c",
            "http://a/\r\nX: y",
            "/relative",
        ] {
            assert_eq!(UpstreamUrl::parse(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = parse_response(&bytes);
        }

        #[test]
        fn parser_never_panics_on_status_like(tail in "[ -~\r\n:]{0,300}") {
            let _ = parse_response(format!("HTTP/1.0 200 OK\r\n{tail}").as_bytes());
            let _ = parse_response(format!("ICY {tail}").as_bytes());
        }

        #[test]
        fn url_parser_never_panics(s in "\\PC{0,80}") {
            if let Some(u) = UpstreamUrl::parse(&format!("http://{s}")) {
                proptest::prop_assert!(u.path.starts_with('/'));
                proptest::prop_assert!(!u.path.contains(' '));
            }
        }
    }
}
