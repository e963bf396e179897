//! icecast2's URL authenticator, listener side: each new listener is POSTed to an HTTP
//! backend (`listener_add`), which accepts it with a reply header (`icecast-auth-user: 1`)
//! and may limit its listening time; `listener_remove` is told when it leaves. A small
//! HTTP/1.0 client of our own (plain http only), with a timeout and a capped reply head.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Login;
use crate::config::UrlAuth;
use crate::http::RequestHead;
use crate::http::request::percent_encode;
use crate::server::Server;

/// Largest reply head read from a backend.
const MAX_REPLY_HEAD: usize = 16 * 1024;

/// `http://host[:port]/path` → (host, port, Host header value, path).
fn split_url(url: &str) -> Option<(String, u16, String, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        let port = match after {
            "" => 80,
            p => p.strip_prefix(':')?.parse().ok()?,
        };
        (h, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (authority, 80),
        }
    };
    Some((
        host.to_string(),
        port,
        authority.to_string(),
        path.to_string(),
    ))
}

/// POST `body` to `url` and return the reply's status code and header lines.
pub async fn post(
    url: &str,
    credentials: Option<(&str, &str)>,
    body: &str,
    user_agent: &str,
    timeout: Duration,
) -> io::Result<(u16, Vec<(String, String)>)> {
    let (host, port, authority, path) = split_url(url)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an http:// URL"))?;
    let exchange = async {
        let mut stream = TcpStream::connect((host.as_str(), port)).await?;
        let mut req = format!(
            "POST {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: {user_agent}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some((u, p)) = credentials {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            req.push_str(&format!("Authorization: Basic {token}\r\n"));
        }
        req.push_str("Connection: close\r\n\r\n");
        req.push_str(body);
        stream.write_all(req.as_bytes()).await?;
        let mut buf = BytesMut::with_capacity(1024);
        loop {
            if let Some(end) = crate::http::find_head_end(&buf) {
                return parse_reply(&buf[..end]);
            }
            if buf.len() >= MAX_REPLY_HEAD {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "reply head too large",
                ));
            }
            if stream.read_buf(&mut buf).await? == 0 {
                // A reply cut short still counts for the headers that came.
                return parse_reply(&buf);
            }
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no reply in time"))?
}

fn parse_reply(head: &[u8]) -> io::Result<(u16, Vec<(String, String)>)> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.lines();
    let status = lines
        .next()
        .filter(|l| l.starts_with("HTTP/"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no HTTP status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok((status, headers))
}

/// A configured `name: value` header line as (lower-cased name, value).
fn header_spec(line: &str) -> (String, String) {
    match line.split_once(':') {
        Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().to_string()),
        None => (line.trim().to_ascii_lowercase(), String::new()),
    }
}

/// What `listener_remove` needs once the listener is gone.
#[derive(Debug)]
pub struct Removal {
    url: String,
    credentials: Option<(String, String)>,
    /// The form fields before `duration`, and after it.
    before: String,
    after: String,
    user_agent: String,
    timeout: Duration,
}

impl Removal {
    /// Tell the backend, in the background: a listener leaving never waits for it.
    pub fn send(self, duration: u64) {
        tokio::spawn(async move {
            let body = format!("{}&duration={duration}{}", self.before, self.after);
            let creds = self
                .credentials
                .as_ref()
                .map(|(u, p)| (u.as_str(), p.as_str()));
            if let Err(e) = post(&self.url, creds, &body, &self.user_agent, self.timeout).await {
                tracing::warn!(url = %self.url, "auth listener_remove failed: {e}");
            }
        });
    }
}

/// `listener_add`: accepted iff the reply carries the configured auth header.
pub async fn listener_add(
    server: &Server,
    auth: &UrlAuth,
    head: &RequestHead,
    peer: &SocketAddr,
    client_id: u64,
    creds: Option<(String, String)>,
) -> Option<Login> {
    let config = server.config();
    let (user, pass) = creds.clone().unwrap_or_default();
    let ip = crate::net::peer_ip(peer);
    let common = format!(
        "server={}&port={}&client={client_id}&mount={}&user={}&pass={}",
        percent_encode(&config.hostname),
        server.port(),
        percent_encode(&head.uri),
        percent_encode(&user),
        percent_encode(&pass),
    );
    let tail = format!(
        "&ip={}&agent={}",
        percent_encode(&ip),
        percent_encode(head.user_agent())
    );
    let mut body = format!("action=listener_add&{common}{tail}");
    for name in &auth.headers {
        if let Some(v) = head.header(&name.to_ascii_lowercase()) {
            body.push_str(&format!(
                "&{}={}",
                percent_encode(&format!("{}{name}", auth.header_prefix)),
                percent_encode(v)
            ));
        }
    }
    let backend_creds = auth
        .username
        .as_deref()
        .map(|u| (u, auth.password.as_deref().unwrap_or("")));
    let (status, headers) = match post(
        &auth.listener_add,
        backend_creds,
        &body,
        &config.server_id,
        auth.timeout,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(url = %auth.listener_add, "auth listener_add failed: {e}");
            return None;
        }
    };
    let (want_name, want_value) = header_spec(&auth.auth_header);
    let accepted = headers
        .iter()
        .any(|(k, v)| *k == want_name && *v == want_value);
    if !accepted {
        let message = headers
            .iter()
            .find(|(k, _)| k == "icecast-auth-message")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        tracing::info!(status, %ip, user, message, "auth backend refused listener");
        return None;
    }
    let (limit_name, _) = header_spec(&auth.timelimit_header);
    let timelimit = headers
        .iter()
        .find(|(k, _)| *k == limit_name)
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .map(Duration::from_secs);
    let on_leave = auth.listener_remove.as_ref().map(|url| {
        Box::new(Removal {
            url: url.clone(),
            credentials: backend_creds.map(|(u, p)| (u.to_string(), p.to_string())),
            before: format!("action=listener_remove&{common}"),
            after: tail,
            user_agent: config.server_id.clone(),
            timeout: auth.timeout,
        })
    });
    Some(Login {
        user: creds.map(|(u, _)| u).filter(|u| !u.is_empty()),
        timelimit,
        on_leave,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split() {
        assert_eq!(
            split_url("http://auth.example:8080/add?x=1"),
            Some((
                "auth.example".into(),
                8080,
                "auth.example:8080".into(),
                "/add?x=1".into()
            ))
        );
        assert_eq!(
            split_url("http://h"),
            Some(("h".into(), 80, "h".into(), "/".into()))
        );
        assert_eq!(
            split_url("http://[::1]:81/a"),
            Some(("::1".into(), 81, "[::1]:81".into(), "/a".into()))
        );
        assert_eq!(split_url("https://h/"), None);
        assert_eq!(split_url("http://u:p@h/"), None);
        assert_eq!(split_url("http://h:x/"), None);
    }

    #[test]
    fn form_values_are_escaped() {
        assert_eq!(
            percent_encode("/live.mp3?a=b c&d"),
            "%2Flive.mp3%3Fa%3Db%20c%26d"
        );
        assert_eq!(percent_encode("VLC/3.0"), "VLC%2F3.0");
    }

    #[test]
    fn reply_heads_parse() {
        let (status, h) = parse_reply(
            b"HTTP/1.1 200 OK\r\nIcecast-Auth-User: 1\r\nicecast-auth-timelimit: 30\r\n\r\n",
        )
        .unwrap();
        assert_eq!(status, 200);
        assert_eq!(h[0], ("icecast-auth-user".into(), "1".into()));
        assert_eq!(
            header_spec("icecast-auth-user: 1"),
            ("icecast-auth-user".into(), "1".into())
        );
        assert!(parse_reply(b"garbage\r\n\r\n").is_err());
    }
}
