//! The sans-IO half of floecast's one HTTP/1 client: request bytes, a liberal response-head
//! parser with one status-line rule, the redirect policy and body framing (URLs are
//! [`super::url`]'s). It never touches a socket or a clock.

use base64::Engine;

use super::chunked::Dechunker;
use super::url::Url;

/// Largest response head accepted; a longer one is an error, not a buffer to grow.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// Most header lines kept from one response head.
pub const MAX_RESPONSE_HEADERS: usize = 64;
/// Redirects a relay follows before giving up (icecast: 10).
pub const MAX_REDIRECTS: usize = 10;

/// The protocol version of a request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// A request as sent: the request line, header lines in the order added, then the body.
/// Nothing is added behind the caller's back, so each caller's bytes are exactly its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: String,
    target: String,
    version: Version,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    /// `target` is sent as given: a [`Url::path`], or a path the caller encoded.
    pub fn new(method: &str, target: &str, version: Version) -> Request {
        Request {
            method: method.to_string(),
            target: target.to_string(),
            version,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Add a header line. Control characters are dropped from the value, so a value from
    /// config or from another server can never end its line.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), header_value(value)));
        self
    }

    /// `Authorization: Basic …`.
    pub fn basic_auth(self, user: &str, password: &str) -> Request {
        let value = basic_credentials(user, password);
        self.header("Authorization", &value)
    }

    /// The body, sent right after the head (its `Content-Length` is the caller's header).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    pub fn method(&self) -> &str {
        &self.method
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "{} {} {}\r\n",
            self.method,
            self.target,
            self.version.as_str()
        );
        for (name, value) in &self.headers {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// A header value without control characters.
pub fn header_value(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// `Basic dXNlcjpwYXNz`, an `Authorization` value.
pub fn basic_credentials(user: &str, password: &str) -> String {
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// The protocol of a status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http10,
    Http11,
    /// SHOUTcast's `ICY 200 OK`.
    Icy,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http10 => "HTTP/1.0",
            Protocol::Http11 => "HTTP/1.1",
            Protocol::Icy => "ICY",
        }
    }
}

/// A parsed response status line and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub protocol: Protocol,
    pub status: u16,
    pub reason: String,
    /// Header lines in arrival order, names as sent.
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header called `name` (any case), in arrival order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
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

    /// `HTTP/1.0 404 Not Found`, for messages.
    pub fn status_line(&self) -> String {
        format!("{} {} {}", self.protocol.as_str(), self.status, self.reason)
            .trim_end()
            .to_string()
    }

    /// How the body after this head ends.
    pub fn framing(&self) -> Framing {
        if self.is_chunked() {
            Framing::Chunked
        } else if let Some(n) = self
            .header("content-length")
            .and_then(|v| v.parse::<u64>().ok())
        {
            Framing::Length(n)
        } else {
            Framing::UntilClose
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("response head larger than {MAX_RESPONSE_HEAD} bytes")]
    TooLarge,
    #[error("malformed status line")]
    BadStatusLine,
    #[error("too many header lines")]
    TooManyHeaders,
}

/// Look for a complete response head at the start of `buf`. `Ok(None)`: need more bytes.
/// `Ok(Some((head, n)))`: the head took `n` bytes; what follows is body (or the next head,
/// after a `100 Continue`). Lines may end in LF alone. A header line without a colon is
/// skipped, as icecast's own parser does.
pub fn parse_response(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, HeadError> {
    // A status line can be refused before the head is complete (garbage, a wrong service).
    if let Some(nl) = buf.iter().position(|&b| b == b'\n') {
        parse_status_line(&buf[..nl])?;
    } else if buf.len() >= 16 && !looks_like_status(buf) {
        return Err(HeadError::BadStatusLine);
    }
    let Some(end) = super::find_head_end(buf) else {
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
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.is_empty() || name.bytes().any(|c| c <= b' ' || c == 0x7f) {
            continue;
        }
        if headers.len() >= MAX_RESPONSE_HEADERS {
            return Err(HeadError::TooManyHeaders);
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

/// [`parse_response`] for a connection that closed before the blank line: the lines that
/// came are the head (a URL-auth backend may close right after its headers).
pub fn parse_response_at_close(buf: &[u8]) -> Result<Option<ResponseHead>, HeadError> {
    let mut closed = buf.to_vec();
    closed.extend_from_slice(b"\r\n\r\n");
    Ok(parse_response(&closed)?.map(|(head, _)| head))
}

fn looks_like_status(buf: &[u8]) -> bool {
    let up = |p: &[u8]| buf.len() >= p.len() && buf[..p.len()].eq_ignore_ascii_case(p);
    up(b"HTTP/") || up(b"ICY ")
}

/// The one status-line rule: `HTTP/1.0`, `HTTP/1.1` or `ICY` (any case), a space, three
/// digits from 100 to 599, then an optional reason. icecast's parser wants a reason phrase;
/// a missing one is accepted here (parse liberally, spec §9) and reads as empty.
fn parse_status_line(line: &[u8]) -> Result<(Protocol, u16, String), HeadError> {
    let line = String::from_utf8_lossy(line);
    let line = line.trim_end_matches('\r');
    let mut parts = line.splitn(3, ' ');
    let proto = parts.next().unwrap_or("").to_ascii_uppercase();
    let code = parts.next().unwrap_or("");
    let reason = parts.next().unwrap_or("").trim().to_string();
    let protocol = match proto.as_str() {
        "HTTP/1.0" => Protocol::Http10,
        "HTTP/1.1" => Protocol::Http11,
        "ICY" => Protocol::Icy,
        _ => return Err(HeadError::BadStatusLine),
    };
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeadError::BadStatusLine);
    }
    let status = code
        .parse()
        .ok()
        .filter(|s| (100..600).contains(s))
        .ok_or(HeadError::BadStatusLine)?;
    Ok((protocol, status, reason))
}

/// What a client does with a `3xx` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectPolicy {
    /// The redirect is the answer (auth backends, push remotes, a master's stream list).
    Answer,
    /// Follow `Location` up to this many times (a relay's upstream).
    Follow(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    #[error("redirect without a usable http:// Location")]
    BadLocation,
    #[error("more than {0} redirects")]
    TooMany(usize),
}

impl RedirectPolicy {
    /// The URL to ask next after `head`, which answered the request made after `hops`
    /// redirects; `Ok(None)` when `head` is the answer.
    pub fn next(self, head: &ResponseHead, hops: usize) -> Result<Option<Url>, RedirectError> {
        let RedirectPolicy::Follow(max) = self else {
            return Ok(None);
        };
        if !matches!(head.status, 301 | 302 | 303 | 307 | 308) {
            return Ok(None);
        }
        let url = head
            .header("location")
            .and_then(Url::parse)
            .ok_or(RedirectError::BadLocation)?;
        if hops >= max {
            return Err(RedirectError::TooMany(max));
        }
        Ok(Some(url))
    }
}

/// How a response body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Chunked,
    Length(u64),
    /// HTTP/1.0 style: the server closes the connection.
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("response body larger than {0} bytes")]
    TooLarge(usize),
    #[error("malformed chunked response body")]
    BadChunk,
}

/// Collects a response body under a size cap, decoding chunked framing.
#[derive(Debug)]
pub struct Body {
    framing: Framing,
    dechunker: Dechunker,
    /// Bytes received as sent (framing included), checked against `max`.
    received: usize,
    max: usize,
    data: Vec<u8>,
}

impl Body {
    pub fn new(head: &ResponseHead, max: usize) -> Body {
        Body {
            framing: head.framing(),
            dechunker: Dechunker::new(),
            received: 0,
            max,
            data: Vec::new(),
        }
    }

    /// Take bytes from the connection. `Ok(true)`: the body is complete.
    pub fn push(&mut self, input: &[u8]) -> Result<bool, BodyError> {
        self.received += input.len();
        if self.received > self.max {
            return Err(BodyError::TooLarge(self.max));
        }
        match self.framing {
            Framing::Chunked => {
                self.dechunker
                    .push(input, &mut self.data)
                    .map_err(|_| BodyError::BadChunk)?;
                Ok(self.dechunker.is_done())
            }
            Framing::Length(n) => {
                let room = usize::try_from(n)
                    .unwrap_or(usize::MAX)
                    .saturating_sub(self.data.len());
                self.data.extend_from_slice(&input[..input.len().min(room)]);
                Ok(self.data.len() as u64 >= n)
            }
            Framing::UntilClose => {
                self.data.extend_from_slice(input);
                Ok(false)
            }
        }
    }

    /// The body so far; what a closed connection leaves.
    pub fn into_bytes(self) -> Vec<u8> {
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(b: &[u8]) -> (ResponseHead, usize) {
        parse_response(b).expect("parses").expect("complete")
    }

    #[test]
    fn requests_are_byte_exact() {
        let req = Request::new("GET", "/live.ogg", Version::Http10)
            .header("User-Agent", "x\r\nEvil: 1")
            .header("Host", "127.0.0.1")
            .basic_auth("source", "hackme");
        assert_eq!(
            req.to_bytes(),
            b"GET /live.ogg HTTP/1.0\r\nUser-Agent: xEvil: 1\r\nHost: 127.0.0.1\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\n\r\n"
        );
        let post = Request::new("POST", "/add", Version::Http10)
            .header("Content-Length", "3")
            .body("a=b");
        assert_eq!(post.method(), "POST");
        assert_eq!(
            post.to_bytes(),
            b"POST /add HTTP/1.0\r\nContent-Length: 3\r\n\r\na=b"
        );
        assert_eq!(
            Request::new("GET", "/x", Version::Http11).to_bytes(),
            b"GET /x HTTP/1.1\r\n\r\n"
        );
    }

    #[test]
    fn status_lines() {
        let (h, n) = parse_all(
            b"HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\nicy-metaint:16000\r\n\r\nAUDIO",
        );
        assert_eq!((h.status, h.reason.as_str(), n), (200, "OK", 64));
        assert_eq!(h.header("ICY-METAINT"), Some("16000"));
        assert_eq!(h.framing(), Framing::UntilClose);
        let (h, _) = parse_all(b"ICY 200 OK\r\nicy-name:x\r\n\r\n");
        assert_eq!((h.protocol, h.status), (Protocol::Icy, 200));
        let (h, _) = parse_all(b"HTTP/1.1 200\nTransfer-Encoding: chunked\n\n");
        assert_eq!((h.status, h.reason.as_str()), (200, ""));
        assert_eq!(h.status_line(), "HTTP/1.1 200");
        assert!(h.is_chunked());
        assert_eq!(h.framing(), Framing::Chunked);
        assert_eq!(h.content_type(), "audio/mpeg");
        let (h, _) = parse_all(b"HTTP/1.0 302 Found\r\nLocation: http://b:9/x\r\n\r\n");
        assert_eq!(
            (h.status, h.header("location")),
            (302, Some("http://b:9/x"))
        );
        // Lower-case protocols, bare LF, repeated headers (URL-auth and Gen C sources).
        let (h, _) = parse_all(
            b"http/1.1 200 OK\nIcecast-Auth-User: 1\nx: 1\nx: 2\nicecast-auth-timelimit: 30\n\n",
        );
        assert_eq!(h.protocol, Protocol::Http11);
        assert_eq!(h.header("icecast-auth-user"), Some("1"));
        assert_eq!(h.header_values("X").collect::<Vec<_>>(), ["1", "2"]);
        let (h, _) = parse_all(b"HTTP/1.0 404 File Not Found\r\n\r\n");
        assert_eq!(h.status_line(), "HTTP/1.0 404 File Not Found");
        let (h, _) = parse_all(b"HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\n");
        assert_eq!(h.framing(), Framing::Length(12));
    }

    #[test]
    fn continue_then_final_head() {
        let buf = b"HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\nHTTP/1.0 200 OK\r\n\r\n";
        let (h, n) = parse_all(buf);
        assert_eq!(h.status, 100);
        let (h, m) = parse_all(&buf[n..]);
        assert_eq!((h.status, n + m), (200, buf.len()));
    }

    #[test]
    fn header_lines_without_a_colon_are_skipped() {
        let (h, _) = parse_all(b"HTTP/1.0 200 OK\r\nno colon here\r\nbad name: x\r\nA: b\r\n\r\n");
        assert_eq!(h.headers, [("A".to_string(), "b".to_string())]);
    }

    #[test]
    fn incomplete_garbage_and_oversize() {
        assert_eq!(parse_response(b"HTTP/1.0 200 OK\r\nA: b\r\n"), Ok(None));
        assert_eq!(parse_response(b"HTT"), Ok(None));
        for bad in [
            &b"SSH-2.0-OpenSSH_9.2p1\r\n"[..],
            b"SSH-2.0-OpenSSH\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03abcdefgh",
            b"HTTP/2 200 OK\r\n\r\n",
            b"HTTP/1.0 20 OK\r\n\r\n",
            b"HTTP/1.0 099 Low\r\n\r\n",
            b"HTTP/1.0 600 High\r\n\r\n",
            b"garbage\r\n\r\n",
            b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        ] {
            assert_eq!(
                parse_response(bad),
                Err(HeadError::BadStatusLine),
                "{bad:?}"
            );
        }
        let mut big = b"HTTP/1.0 200 OK\r\n".to_vec();
        while big.len() < MAX_RESPONSE_HEAD {
            big.extend_from_slice(b"icy-x: yyyyyyyyyyyyyyyyyyyyyyyyyy\r\n");
        }
        assert!(matches!(
            parse_response(&big),
            Err(HeadError::TooLarge | HeadError::TooManyHeaders)
        ));
        let mut long = b"HTTP/1.0 200 OK\r\nx: ".to_vec();
        long.resize(MAX_RESPONSE_HEAD + 1, b'y');
        assert_eq!(parse_response(&long), Err(HeadError::TooLarge));
        let mut many = b"HTTP/1.0 200 OK\r\n".to_vec();
        for i in 0..100 {
            many.extend_from_slice(format!("h{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse_response(&many), Err(HeadError::TooManyHeaders));
    }

    #[test]
    fn a_head_cut_short_by_close() {
        let h = parse_response_at_close(b"HTTP/1.0 200 OK\r\nicecast-auth-user: 1")
            .unwrap()
            .unwrap();
        assert_eq!(h.header("icecast-auth-user"), Some("1"));
        assert!(
            parse_response_at_close(b"HTTP/1.1 200 OK\r\n")
                .unwrap()
                .is_some()
        );
        assert_eq!(parse_response_at_close(b""), Err(HeadError::BadStatusLine));
        assert!(parse_response_at_close(b"garbage").is_err());
        assert!(parse_response_at_close(b"\xff\xfe garbage").is_err());
    }

    #[test]
    fn redirects() {
        let head = |s: &[u8]| parse_all(s).0;
        let found = head(b"HTTP/1.0 302 Found\r\nLocation: http://b:9/x\r\n\r\n");
        let follow = RedirectPolicy::Follow(MAX_REDIRECTS);
        assert_eq!(follow.next(&found, 0), Ok(Url::parse("http://b:9/x")));
        assert_eq!(RedirectPolicy::Answer.next(&found, 0), Ok(None));
        assert_eq!(
            follow.next(&found, MAX_REDIRECTS),
            Err(RedirectError::TooMany(MAX_REDIRECTS))
        );
        let moved = head(b"HTTP/1.0 301 Moved\r\nLocation: /relative\r\n\r\n");
        assert_eq!(follow.next(&moved, 0), Err(RedirectError::BadLocation));
        let ok = head(b"HTTP/1.0 200 OK\r\n\r\n");
        assert_eq!(follow.next(&ok, MAX_REDIRECTS), Ok(None));
    }

    #[test]
    fn bodies() {
        let head = |s: &[u8]| parse_all(s).0;
        let mut b = Body::new(
            &head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            100,
        );
        assert_eq!(b.push(b"3\r\nabc\r\n"), Ok(false));
        assert_eq!(b.push(b"0\r\n\r\n"), Ok(true));
        assert_eq!(b.into_bytes(), b"abc");
        let mut b = Body::new(&head(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n"), 100);
        assert_eq!(b.push(b"abc"), Ok(true));
        assert_eq!(b.into_bytes(), b"ab");
        let mut b = Body::new(&head(b"HTTP/1.0 200 OK\r\n\r\n"), 4);
        assert_eq!(b.push(b"abcd"), Ok(false));
        assert_eq!(b.push(b"e"), Err(BodyError::TooLarge(4)));
        let mut b = Body::new(
            &head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            100,
        );
        assert_eq!(b.push(b"zz\r\n"), Err(BodyError::BadChunk));
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = parse_response(&bytes);
            let _ = parse_response_at_close(&bytes);
        }

        #[test]
        fn parser_never_panics_on_status_like(tail in "[ -~\r\n:]{0,300}") {
            let _ = parse_response(format!("HTTP/1.0 200 OK\r\n{tail}").as_bytes());
            let _ = parse_response(format!("ICY {tail}").as_bytes());
        }

        #[test]
        fn bodies_never_panic(
            chunked in proptest::bool::ANY,
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        ) {
            let head = if chunked {
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".as_slice()
            } else {
                b"HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\n".as_slice()
            };
            let mut b = Body::new(&parse_all(head).0, 200);
            let _ = b.push(&bytes);
        }
    }
}
