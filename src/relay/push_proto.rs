//! Sans-IO pieces of a push relay: the PUT (`Expect: 100-continue`) or SOURCE login request,
//! classifying the remote's replies and `/admin/metadata` title updates (the backoff is
//! [`crate::backoff`]). Bytes and heads are the HTTP client's (`http::client`). Nothing here
//! touches a socket or a clock.

use crate::documents::StreamFacts;
use crate::format::CodecInfo;
use crate::http::client::{
    HeadError, Request, ResponseHead, Version, basic_credentials, header_value, parse_response,
};
use crate::http::request::percent_encode;
use crate::http::url::{self, Url};

/// The method a source request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Put,
    Source,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Put => "PUT",
            Method::Source => "SOURCE",
        }
    }
}

/// Where a push logs in, and as whom.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub mount: String,
    pub username: String,
    pub password: String,
    pub user_agent: String,
    /// `https://`, and whom to trust.
    pub tls: crate::config::ClientTls,
}

impl Target {
    fn authorization(&self) -> String {
        basic_credentials(&self.username, &self.password)
    }

    /// `Host:` value: IPv6 literals in brackets.
    fn host_header(&self) -> String {
        url::authority(&self.host, self.port)
    }

    /// The remote stream's URL without credentials, for logs and status.
    pub fn url(&self) -> String {
        let scheme = if self.tls.enabled { "https" } else { "http" };
        format!("{scheme}://{}{}", self.host_header(), self.mount)
    }

    /// Where to connect: the remote mount as a request path. `None` when the host is not
    /// one a URL can name.
    pub fn endpoint(&self) -> Option<Url> {
        Url::new(&self.host, self.port, &encode_path(&self.mount))
            .map(|u| u.with_tls(self.tls.enabled))
    }
}

/// Header values come from other sources' headers: keep them on one line and bounded.
fn clean(value: &str) -> String {
    header_value(value).chars().take(1024).collect()
}

/// The request head that logs `target` in as the source of its mount. `PUT` is HTTP/1.1 with
/// `Expect: 100-continue` (what ffmpeg and libshout >= 2.4 send); `SOURCE` is HTTP/1.0 with
/// no Expect (libshout 2.2, every icecast). Stream facts become `ice-*` headers.
pub fn source_request(
    method: Method,
    target: &Target,
    info: &StreamFacts,
    codec: &CodecInfo,
) -> Request {
    let version = match method {
        Method::Put => Version::Http11,
        Method::Source => Version::Http10,
    };
    let content_type = if info.content_type.is_empty() {
        "audio/mpeg"
    } else {
        &info.content_type
    };
    let mut h = Request::new(method.name(), &encode_path(&target.mount), version)
        .header("Host", &target.host_header())
        .header("Authorization", &target.authorization())
        .header("User-Agent", &clean(&target.user_agent))
        .header("Content-Type", &clean(content_type));
    let audio_info = info
        .audio_info_raw
        .clone()
        .or_else(|| audio_info_from_codec(codec));
    let ice = [
        ("ice-name", info.name.as_deref()),
        ("ice-description", info.description.as_deref()),
        ("ice-url", info.url.as_deref()),
        ("ice-genre", info.genre.as_deref()),
        ("ice-bitrate", info.bitrate.as_deref()),
        ("ice-public", Some(if info.public { "1" } else { "0" })),
        ("ice-audio-info", audio_info.as_deref()),
    ];
    for (name, value) in ice {
        if let Some(v) = value.map(clean).filter(|v| !v.is_empty()) {
            h = h.header(name, &v);
        }
    }
    if method == Method::Put {
        h = h.header("Expect", "100-continue");
    }
    h
}

/// `samplerate=44100;channels=2;bitrate=128` from what the framer learnt, for mounts whose
/// source sent no `ice-audio-info` (relays, P2PSP peers).
fn audio_info_from_codec(codec: &CodecInfo) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(b) = codec.bitrate {
        parts.push(format!("bitrate={b}"));
    }
    if let Some(c) = codec.channels {
        parts.push(format!("channels={c}"));
    }
    if let Some(s) = codec.samplerate {
        parts.push(format!("samplerate={s}"));
    }
    (!parts.is_empty()).then(|| parts.join(";"))
}

/// `GET /admin/metadata?mount=…&mode=updinfo&song=…&charset=UTF-8` with the source's own
/// credentials, which icecast2 accepts for that mount (spec §3.1).
pub fn metadata_request(target: &Target, song: &str) -> Request {
    let path = format!(
        "/admin/metadata?mount={}&mode=updinfo&song={}&charset=UTF-8",
        percent_encode(&target.mount),
        percent_encode(song),
    );
    Request::new("GET", &path, Version::Http10)
        .header("Host", &target.host_header())
        .header("Authorization", &target.authorization())
        .header("User-Agent", &clean(&target.user_agent))
}

/// A mount name as a request path: `/` kept, anything unsafe encoded.
fn encode_path(mount: &str) -> String {
    mount
        .split('/')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("/")
}

/// What a status means to a source that wants to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `100 Continue`: send the body; a final status may still follow.
    Continue,
    /// 2xx: logged in.
    Accepted,
    /// 401/403: wrong credentials, mount in use, source limit. Retried, but slowly.
    Refused,
    /// The remote does not know the method (400/405/501): try SOURCE next, as libshout does.
    MethodUnsupported,
    /// Anything else.
    Failed,
}

pub fn classify(code: u16) -> Verdict {
    match code {
        100 => Verdict::Continue,
        200..=299 => Verdict::Accepted,
        401 | 403 => Verdict::Refused,
        400 | 405 | 501 => Verdict::MethodUnsupported,
        _ => Verdict::Failed,
    }
}

/// Follows a remote's replies to a source request: first `100 Continue` or a final status,
/// and after a 100 the final status that may come later (icecast2 2.4 sends `200 OK` right
/// after the 100; 2.5 sends nothing until the end). Bytes after the final head are dropped.
#[derive(Debug, Default)]
pub struct ReplyTracker {
    buf: Vec<u8>,
    continued: bool,
    done: bool,
}

/// Where a source login stands after the bytes seen so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// Nothing decisive yet.
    Pending,
    /// The body may be sent (a 100 or a 2xx arrived).
    Streaming,
    /// A status that ends the attempt, with the first line of any body that came with it.
    Ended {
        head: ResponseHead,
        verdict: Verdict,
        message: String,
    },
}

impl ReplyTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// The first reply head, as the client read it, and the bytes that came after it.
    /// Returns `Streaming` or `Ended`: a head always decides.
    pub fn first_head(&mut self, head: ResponseHead, after: &[u8]) -> Result<Login, HeadError> {
        self.buf.extend_from_slice(after);
        match self.on_head(head) {
            Some(login) => Ok(login),
            None => self.push(&[]),
        }
    }

    /// Feed bytes from the remote; returns the login's state.
    pub fn push(&mut self, data: &[u8]) -> Result<Login, HeadError> {
        if self.done {
            return Ok(Login::Streaming);
        }
        self.buf.extend_from_slice(data);
        loop {
            let Some((head, n)) = parse_response(&self.buf)? else {
                return Ok(if self.continued {
                    Login::Streaming
                } else {
                    Login::Pending
                });
            };
            self.buf.drain(..n);
            if let Some(login) = self.on_head(head) {
                return Ok(login);
            }
        }
    }

    /// What a complete head means; `None` after a 100 (more may follow).
    fn on_head(&mut self, head: ResponseHead) -> Option<Login> {
        match classify(head.status) {
            Verdict::Continue => {
                self.continued = true;
                None
            }
            Verdict::Accepted => {
                self.done = true;
                self.buf = Vec::new();
                Some(Login::Streaming)
            }
            verdict => {
                let message = first_line(&String::from_utf8_lossy(&self.buf));
                self.buf = Vec::new();
                self.done = true;
                Some(Login::Ended {
                    head,
                    verdict,
                    message,
                })
            }
        }
    }

    /// Whether a 100 Continue was seen.
    pub fn continued(&self) -> bool {
        self.continued
    }
}

/// The first non-blank line of an error body, as text.
fn first_line(body: &str) -> String {
    body.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(strip_tags)
        .unwrap_or_default()
}

/// `<b>400 - unknown request</b>` → `400 - unknown request` (icecast's HTML error bodies).
fn strip_tags(s: &str) -> String {
    // icecast puts the message in bold after a title that repeats the code.
    let s = match (s.find("<b>"), s.find("</b>")) {
        (Some(a), Some(b)) if a + 3 <= b => &s[a + 3..b],
        _ => s,
    };
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.trim().chars().take(200).collect()
}

/// How a remote answered a metadata update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataReply {
    Accepted,
    /// The mount is not (yet) running there: worth one more try shortly.
    NotYet(String),
    /// Refused for good (e.g. icecast2's "Mountpoint will not accept URL updates").
    Refused(String),
}

/// Classify a complete `/admin/metadata` reply.
pub fn metadata_reply(head: &ResponseHead, body: &[u8]) -> MetadataReply {
    let body = String::from_utf8_lossy(body);
    let message = match (body.find("<message>"), body.find("</message>")) {
        (Some(a), Some(b)) if a + 9 <= b => body[a + 9..b].trim().to_string(),
        _ => first_line(&body),
    };
    let what = if message.is_empty() {
        format!("{} {}", head.status, head.reason)
    } else {
        format!("{} {}: {message}", head.status, head.reason)
    };
    match head.status {
        200 if message.contains("successful") => MetadataReply::Accepted,
        400 if message.contains("Source does not exist")
            || message.contains("Source is not available") =>
        {
            MetadataReply::NotYet(what)
        }
        _ => MetadataReply::Refused(what),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            host: "radio.example".into(),
            port: 8000,
            mount: "/live.mp3".into(),
            username: "source".into(),
            password: "hackme".into(),
            user_agent: "floecast/0.1.0".into(),
            tls: Default::default(),
        }
    }

    fn info() -> StreamFacts {
        StreamFacts {
            content_type: "audio/mpeg".into(),
            name: Some("My Radio".into()),
            description: Some("line\r\nInjected: yes".into()),
            genre: Some("jazz".into()),
            bitrate: Some("128".into()),
            public: true,
            audio_info_raw: Some("bitrate=128;channels=2;samplerate=44100".into()),
            ..Default::default()
        }
    }

    #[test]
    fn put_request_is_what_icecast_expects() {
        let req = source_request(Method::Put, &target(), &info(), &CodecInfo::default());
        let text = String::from_utf8(req.to_bytes()).unwrap();
        assert_eq!(
            text,
            "PUT /live.mp3 HTTP/1.1\r\nHost: radio.example:8000\r\n\
             Authorization: Basic c291cmNlOmhhY2ttZQ==\r\nUser-Agent: floecast/0.1.0\r\n\
             Content-Type: audio/mpeg\r\nice-name: My Radio\r\n\
             ice-description: lineInjected: yes\r\nice-genre: jazz\r\nice-bitrate: 128\r\n\
             ice-public: 1\r\nice-audio-info: bitrate=128;channels=2;samplerate=44100\r\n\
             Expect: 100-continue\r\n\r\n"
        );
        // The request is one the server's own parser accepts, with the same headers.
        let head = crate::http::parse_head(text.as_bytes()).unwrap();
        assert_eq!(head.method, "PUT");
        assert_eq!(head.header("ice-description"), Some("lineInjected: yes"));
    }

    #[test]
    fn source_request_is_http10_without_expect() {
        let mut i = info();
        i.audio_info_raw = None;
        i.content_type = String::new();
        let codec = CodecInfo {
            samplerate: Some(44100),
            channels: Some(2),
            ..Default::default()
        };
        let text =
            String::from_utf8(source_request(Method::Source, &target(), &i, &codec).to_bytes())
                .unwrap();
        assert!(text.starts_with("SOURCE /live.mp3 HTTP/1.0\r\n"), "{text}");
        assert!(!text.contains("Expect"));
        assert!(text.contains("Content-Type: audio/mpeg\r\n"));
        assert!(text.contains("ice-audio-info: channels=2;samplerate=44100\r\n"));
    }

    #[test]
    fn metadata_url_is_encoded() {
        assert_eq!(percent_encode("/live.mp3"), "%2Flive.mp3");
        assert_eq!(
            percent_encode("A & B - Ünï=1?"),
            "A%20%26%20B%20-%20%C3%9Cn%C3%AF%3D1%3F"
        );
        let text = String::from_utf8(metadata_request(&target(), "Artist - Title & Co").to_bytes())
            .unwrap();
        assert_eq!(
            text,
            "GET /admin/metadata?mount=%2Flive.mp3&mode=updinfo&song=Artist%20-%20Title%20%26%20Co&charset=UTF-8 HTTP/1.0\r\n\
             Host: radio.example:8000\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\n\
             User-Agent: floecast/0.1.0\r\n\r\n"
        );
        // The server's own query decoding gives the title back.
        let head = crate::http::parse_head(text.as_bytes()).unwrap();
        assert_eq!(
            head.query_param("song").as_deref(),
            Some("Artist - Title & Co")
        );
        assert_eq!(head.query_param("mount").as_deref(), Some("/live.mp3"));
    }

    #[test]
    fn ipv6_host_header_has_brackets() {
        let mut t = target();
        t.host = "::1".into();
        assert_eq!(t.url(), "http://[::1]:8000/live.mp3");
        let url = t.endpoint().unwrap();
        assert_eq!(
            (url.authority(), url.path.as_str()),
            ("[::1]:8000".into(), "/live.mp3")
        );
        t.mount = "/a b/ü.mp3".into();
        assert_eq!(t.endpoint().unwrap().path, "/a%20b/%C3%BC.mp3");
        let head = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        let put = head(&source_request(Method::Put, &t, &info(), &CodecInfo::default()).to_bytes());
        assert!(
            put.starts_with("PUT /a%20b/%C3%BC.mp3 HTTP/1.1\r\nHost: [::1]:8000\r\n"),
            "{put}"
        );
    }

    #[test]
    fn continue_then_ok_in_one_read() {
        // icecast2 2.4.4 and floecast send both at once.
        let mut r = ReplyTracker::new();
        assert_eq!(
            r.push(b"HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\nHTTP/1.0 200 OK\r\n\r\n"),
            Ok(Login::Streaming)
        );
        assert!(r.continued());
        // Later bytes are ignored.
        assert_eq!(r.push(b"garbage"), Ok(Login::Streaming));
    }

    #[test]
    fn continue_alone_allows_streaming_and_a_later_refusal_ends_it() {
        let mut r = ReplyTracker::new();
        assert_eq!(r.push(b"HTTP/1.1 100 Cont"), Ok(Login::Pending));
        assert_eq!(r.push(b"inue\r\n\r\n"), Ok(Login::Streaming));
        assert_eq!(r.push(b"HTTP/1.0 403 Forbidden\r\n"), Ok(Login::Streaming));
        match r.push(b"Content-Type: text/plain\r\n\r\nMountpoint in use") {
            Ok(Login::Ended {
                head,
                verdict,
                message,
            }) => {
                assert_eq!(head.status, 403);
                assert_eq!(verdict, Verdict::Refused);
                assert_eq!(message, "Mountpoint in use");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn source_ok_and_errors() {
        let mut r = ReplyTracker::new();
        assert_eq!(r.push(b"HTTP/1.0 200 OK\r\n\r\n"), Ok(Login::Streaming));
        assert!(!r.continued());

        let mut r = ReplyTracker::new();
        let reply = b"HTTP/1.0 401 Authentication Required\r\nWWW-Authenticate: Basic realm=\"Icecast2 Server\"\r\n\r\nYou need to authenticate\r\n";
        match r.push(reply) {
            Ok(Login::Ended {
                verdict, message, ..
            }) => {
                assert_eq!(verdict, Verdict::Refused);
                assert_eq!(message, "You need to authenticate");
            }
            other => panic!("{other:?}"),
        }

        let mut r = ReplyTracker::new();
        let reply = b"HTTP/1.0 400 Bad Request\r\n\r\n<html><head><title>Error 400</title></head><body><b>400 - unknown request</b></body></html>\r\n";
        match r.push(reply) {
            Ok(Login::Ended {
                verdict, message, ..
            }) => {
                assert_eq!(verdict, Verdict::MethodUnsupported);
                assert_eq!(message, "400 - unknown request");
            }
            other => panic!("{other:?}"),
        }
        // ICY replies and LF-only heads parse too.
        let mut r = ReplyTracker::new();
        assert_eq!(r.push(b"ICY 200 OK\n\n"), Ok(Login::Streaming));
    }

    #[test]
    fn replies_are_bounded_and_checked() {
        let mut r = ReplyTracker::new();
        let mut long = b"HTTP/1.0 200 OK\r\nx: ".to_vec();
        long.resize(crate::http::client::MAX_RESPONSE_HEAD + 1, b'y');
        assert_eq!(r.push(&long), Err(HeadError::TooLarge));
        let mut r = ReplyTracker::new();
        assert_eq!(
            r.push(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(HeadError::BadStatusLine)
        );
    }

    #[test]
    fn first_head_from_the_client() {
        let head = |b: &[u8]| parse_response(b).unwrap().unwrap();
        // A 100 and the 200 right behind it.
        let buf = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\n";
        let (h, n) = head(buf);
        let mut r = ReplyTracker::new();
        assert_eq!(r.first_head(h, &buf[n..]), Ok(Login::Streaming));
        assert!(r.continued());
        // A 100 alone: stream; a refusal may still come.
        let (h, _) = head(b"HTTP/1.1 100 Continue\r\n\r\n");
        let mut r = ReplyTracker::new();
        assert_eq!(r.first_head(h, b"HTTP/1.0 40"), Ok(Login::Streaming));
        assert!(matches!(
            r.push(b"3 Forbidden\r\n\r\nMountpoint in use\r\n"),
            Ok(Login::Ended { verdict: Verdict::Refused, message, .. }) if message == "Mountpoint in use"
        ));
        // A refusal with its body in the same read.
        let buf = b"HTTP/1.0 405 Method Not Allowed\r\n\r\n<b>no PUT</b>";
        let (h, n) = head(buf);
        let mut r = ReplyTracker::new();
        assert!(matches!(
            r.first_head(h, &buf[n..]),
            Ok(Login::Ended { verdict: Verdict::MethodUnsupported, message, .. }) if message == "no PUT"
        ));
    }

    #[test]
    fn verdicts() {
        assert_eq!(classify(100), Verdict::Continue);
        assert_eq!(classify(200), Verdict::Accepted);
        assert_eq!(classify(401), Verdict::Refused);
        assert_eq!(classify(403), Verdict::Refused);
        assert_eq!(classify(405), Verdict::MethodUnsupported);
        assert_eq!(classify(501), Verdict::MethodUnsupported);
        assert_eq!(classify(400), Verdict::MethodUnsupported);
        assert_eq!(classify(404), Verdict::Failed);
        assert_eq!(classify(500), Verdict::Failed);
    }

    fn metadata_reply_of(reply: &[u8]) -> MetadataReply {
        let (head, n) = parse_response(reply).unwrap().unwrap();
        metadata_reply(&head, &reply[n..])
    }

    #[test]
    fn metadata_replies() {
        let ok = b"HTTP/1.0 200 OK\r\nContent-Type: text/xml\r\n\r\n<?xml version=\"1.0\"?>\n<iceresponse><message>Metadata update successful</message><return>1</return></iceresponse>\n";
        assert_eq!(metadata_reply_of(ok), MetadataReply::Accepted);
        let no = b"HTTP/1.0 200 OK\r\n\r\n<?xml version=\"1.0\"?>\n<iceresponse><message>Mountpoint will not accept URL updates</message><return>1</return></iceresponse>\n";
        assert_eq!(
            metadata_reply_of(no),
            MetadataReply::Refused("200 OK: Mountpoint will not accept URL updates".into())
        );
        let early = b"HTTP/1.0 400 Bad Request\r\n\r\n<html><body><b>400 - Source does not exist</b></body></html>\r\n";
        assert!(matches!(metadata_reply_of(early), MetadataReply::NotYet(_)));
        let auth = b"HTTP/1.0 401 Authentication Required\r\n\r\nYou need to authenticate\r\n";
        assert!(matches!(metadata_reply_of(auth), MetadataReply::Refused(m) if m.contains("401")));
        // An incomplete reply is the client's to refuse.
        assert_eq!(parse_response(b"HTTP/1.0 200 OK\r\n"), Ok(None));
    }
}
