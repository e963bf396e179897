//! icecast2's URL authenticator, listener side: each new listener is POSTed to an HTTP
//! backend (`listener_add`), which accepts it with a reply header (`icecast-auth-user: 1`)
//! and may limit its listening time; `listener_remove` is told when it leaves. The POSTs go
//! through the one HTTP client, within the configured timeout.

use std::net::SocketAddr;
use std::time::Duration;

use super::Login;
use crate::config::UrlAuth;
use crate::http::RequestHead;
use crate::http::client::{Request, ResponseHead, Version, parse_response_at_close};
use crate::http::request::percent_encode;
use crate::http::url::Url;
use crate::net::client::{self, ClientError, Options};
use crate::server::Server;

/// The form POST icecast's URL authenticator sends.
fn post_request(
    url: &Url,
    credentials: Option<(&str, &str)>,
    body: &str,
    user_agent: &str,
) -> Request {
    let req = Request::new("POST", &url.path, Version::Http10)
        .header("Host", &url.host_header())
        .header("User-Agent", user_agent)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Content-Length", &body.len().to_string());
    let req = match credentials {
        Some((u, p)) => req.basic_auth(u, p),
        None => req,
    };
    req.header("Connection", "close").body(body)
}

/// POST `body` to `url` and return the reply's head.
pub async fn post(
    url: &str,
    credentials: Option<(&str, &str)>,
    body: &str,
    user_agent: &str,
    timeout: Duration,
    ca_file: Option<std::path::PathBuf>,
) -> Result<ResponseHead, ClientError> {
    let url = Url::parse(url).ok_or_else(|| ClientError::Url(url.to_string()))?;
    let opts = Options {
        ca_file,
        connect_timeout: timeout,
        response_timeout: timeout,
        ..Options::default()
    };
    let exchange = async {
        let request = |u: &Url| post_request(u, credentials, body, user_agent);
        match client::request(&url, request, &opts).await {
            Ok(reply) => Ok(reply.head),
            // A reply cut short still counts for the headers that came.
            Err(ClientError::Closed(partial)) => {
                parse_response_at_close(&partial)?.ok_or(ClientError::Closed(partial))
            }
            Err(e) => Err(e),
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ClientError::Timeout)?
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
    ca_file: Option<std::path::PathBuf>,
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
            let sent = post(
                &self.url,
                creds,
                &body,
                &self.user_agent,
                self.timeout,
                self.ca_file,
            );
            if let Err(e) = sent.await {
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
    let reply = match post(
        &auth.listener_add,
        backend_creds,
        &body,
        &config.server_id,
        auth.timeout,
        auth.ca_file.clone(),
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
    let accepted = reply.header_values(&want_name).any(|v| v == want_value);
    if !accepted {
        let status = reply.status;
        let message = reply.header("icecast-auth-message").unwrap_or("");
        tracing::info!(status, %ip, user, backend_message = ?message, "auth backend refused listener");
        return None;
    }
    let (limit_name, _) = header_spec(&auth.timelimit_header);
    let timelimit = reply
        .header(&limit_name)
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs);
    let on_leave = auth.listener_remove.as_ref().map(|url| {
        Box::new(Removal {
            url: url.clone(),
            credentials: backend_creds.map(|(u, p)| (u.to_string(), p.to_string())),
            before: format!("action=listener_remove&{common}"),
            after: tail,
            user_agent: config.server_id.clone(),
            timeout: auth.timeout,
            ca_file: auth.ca_file.clone(),
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
    fn post_bytes_are_icecasts() {
        let url = Url::parse("http://auth.example/add?x=1").unwrap();
        let req = post_request(&url, Some(("icecast", "b4ck")), "a=1&b=2", "Icecast 2.4.4");
        assert_eq!(
            req.to_bytes(),
            b"POST /add?x=1 HTTP/1.0\r\nHost: auth.example\r\nUser-Agent: Icecast 2.4.4\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\
              Authorization: Basic aWNlY2FzdDpiNGNr\r\nConnection: close\r\n\r\na=1&b=2"
        );
        // The Host header is the URL's authority as written.
        for (written, host) in [
            ("http://auth.example:8080/add", "auth.example:8080"),
            ("http://h", "h"),
            ("http://h:80/", "h:80"),
            ("http://[::1]:81/a", "[::1]:81"),
        ] {
            let url = Url::parse(written).unwrap();
            let bytes = post_request(&url, None, "", "ua").to_bytes();
            let text = String::from_utf8(bytes).unwrap();
            assert!(text.contains(&format!("\r\nHost: {host}\r\n")), "{text}");
            assert!(!text.contains("Authorization"), "{text}");
        }
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
    fn header_specs() {
        assert_eq!(
            header_spec("icecast-auth-user: 1"),
            ("icecast-auth-user".into(), "1".into())
        );
        assert_eq!(header_spec(" X-Ok "), ("x-ok".into(), String::new()));
    }
}
