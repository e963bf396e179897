//! The HTTP client's URLs: `scheme://host[:port]/path?query`, checked fit for a request line.
//! The scheme is a field, so a new scheme is added here and nowhere else. Sans-IO: it never
//! resolves or connects.

/// The URL schemes the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    const ALL: [Scheme; 2] = [Scheme::Http, Scheme::Https];

    /// `http://` or `https://`, as written before the authority.
    pub fn prefix(self) -> &'static str {
        match self {
            Scheme::Http => "http://",
            Scheme::Https => "https://",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// `scheme://host[:port]/path?query`, checked fit for a request line.
#[derive(Debug, Clone)]
pub struct Url {
    pub scheme: Scheme,
    /// Without brackets for IPv6 literals.
    pub host: String,
    pub port: u16,
    /// Path and query as sent in the request line.
    pub path: String,
    /// The URL spelt its port out (`Host:` then names it).
    port_written: bool,
}

/// Two URLs are equal when they name the same resource, however the port was spelt.
impl PartialEq for Url {
    fn eq(&self, other: &Url) -> bool {
        (self.scheme, &self.host, self.port, &self.path)
            == (other.scheme, &other.host, other.port, &other.path)
    }
}

impl Eq for Url {}

impl Url {
    /// Parse an absolute URL (a config value, a 302 `Location`, a stream-list line). The
    /// scheme's default port when none is given, as icecast. Unknown schemes, user-info,
    /// spaces and controls are refused.
    pub fn parse(url: &str) -> Option<Url> {
        let url = url.trim();
        let (scheme, rest) = Scheme::ALL
            .into_iter()
            .find_map(|s| strip_prefix_ci(url, s.prefix()).map(|rest| (s, rest)))?;
        let (authority, path) = match rest.find(['/', '?']) {
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
        Some(Url {
            scheme,
            host,
            port: port.unwrap_or(scheme.default_port()),
            path,
            port_written: port.is_some(),
        })
    }

    /// `http://host:port` plus a path starting with `/` (config values, a stream-list line).
    pub fn new(host: &str, port: u16, path: &str) -> Option<Url> {
        if !host_safe(host) || !path.starts_with('/') || !request_safe(path) {
            return None;
        }
        Some(Url {
            scheme: Scheme::Http,
            host: host.to_string(),
            port,
            path: path.to_string(),
            port_written: true,
        })
    }

    /// The same URL over TLS (`https://`), or not, by `tls`.
    pub fn with_tls(mut self, tls: bool) -> Url {
        self.scheme = if tls { Scheme::Https } else { Scheme::Http };
        self
    }

    /// `host:port` for connecting (IPv6 literals bracketed).
    pub fn authority(&self) -> String {
        authority(&self.host, self.port)
    }

    /// The `Host:` value as the URL spells it: the port only when it names one.
    pub fn host_header(&self) -> String {
        if self.port_written {
            self.authority()
        } else {
            bracketed(&self.host)
        }
    }
}

/// `host:port`, IPv6 literals bracketed: for connecting, `Host:` headers and URLs in logs.
pub fn authority(host: &str, port: u16) -> String {
    format!("{}:{port}", bracketed(host))
}

fn bracketed(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.scheme.prefix(),
            self.authority(),
            self.path
        )
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// A host name or IP literal that can go into a `Host:` header and a request as it is: not
/// empty, at most 253 bytes of letters, digits and `.-_:[]`.
pub fn host_safe(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
        })
}

/// Fit for a request line: no spaces, no controls, no non-ASCII.
fn request_safe(path: &str) -> bool {
    !path.is_empty() && path.bytes().all(|b| b > b' ' && b < 0x7f)
}

/// `host[:port]` or `[v6][:port]`; the port when one is written.
fn split_host_port(authority: &str) -> Option<(String, Option<u16>)> {
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
        Some(p) => Some(p.parse::<u16>().ok().filter(|&p| p > 0)?),
        None => None,
    };
    host_safe(&host).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://example.org:8001/live.mp3?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("example.org", 8001, "/live.mp3?x=1")
        );
        assert_eq!(u.host_header(), "example.org:8001");
        let u = Url::parse("HTTP://example.org").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        assert_eq!(u.host_header(), "example.org");
        assert_eq!(u.to_string(), "http://example.org:80/");
        let u = Url::parse("http://h?x=1").unwrap();
        assert_eq!((u.host.as_str(), u.path.as_str()), ("h", "/?x=1"));
        let u = Url::parse("http://[::1]:8000/a").unwrap();
        assert_eq!(
            (u.host.as_str(), u.authority()),
            ("::1", "[::1]:8000".to_string())
        );
        assert_eq!(u.host_header(), "[::1]:8000");
        assert_eq!(Url::parse("http://[::1]/a").unwrap().host_header(), "[::1]");
        // However the port is spelt, the URL is the same.
        assert_eq!(Url::parse("http://third/y"), Url::new("third", 80, "/y"));
        assert_eq!(
            Url::new("::1", 8000, "/a").unwrap().host_header(),
            "[::1]:8000"
        );
        let u = Url::parse("HTTPS://radio.example/live").unwrap();
        assert_eq!((u.scheme, u.port), (Scheme::Https, 443));
        assert_eq!(u.to_string(), "https://radio.example:443/live");
        let u = Url::new("h", 8443, "/a").unwrap().with_tls(true);
        assert_eq!(u.to_string(), "https://h:8443/a");
        for bad in [
            "ftp://a/b",
            "http://u:p@a/b",
            "http://a:0/b",
            "http://a:x/b",
            "http://a:99999/b",
            "http:///b",
            "http://a/b c",
            "http://a/\r\nX: y",
            "/relative",
        ] {
            assert_eq!(Url::parse(bad), None, "{bad}");
        }
        assert_eq!(Url::new("", 80, "/"), None);
        assert_eq!(Url::new("h", 80, "x"), None);
        assert_eq!(Url::new("h", 80, "/a b"), None);
        assert_eq!(Url::new("h h", 80, "/"), None);
    }

    proptest::proptest! {
        #[test]
        fn url_parser_never_panics(s in "\\PC{0,80}") {
            if let Some(u) = Url::parse(&format!("http://{s}")) {
                proptest::prop_assert!(u.path.starts_with('/'));
                proptest::prop_assert!(!u.path.contains(' '));
            }
        }
    }
}
