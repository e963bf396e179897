//! What a pull relay asks its upstream for: the exact request icecast's relay sends (spec §4),
//! sent through the one HTTP client with icecast's redirect rule (up to 10, credentials to
//! the first host only). It never reads the stream itself: `pull` does.

use std::net::IpAddr;

use crate::http::client::{MAX_REDIRECTS, RedirectPolicy, Request, Version};
use crate::http::url::Url;
use crate::net::client::{self, ClientError, Options, Response};

/// What to ask an upstream for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRequest {
    pub user_agent: String,
    /// Send `Icy-MetaData: 1`.
    pub icy_metadata: bool,
    pub credentials: Option<(String, String)>,
}

impl StreamRequest {
    /// The exact bytes icecast's relay sends (spec §4): `Host` without the port. The
    /// credentials go only to `first_host`, never to where a redirect leads elsewhere.
    pub fn to_request(&self, url: &Url, first_host: &str) -> Request {
        let mut req = Request::new("GET", &url.path, Version::Http10)
            .header("User-Agent", &self.user_agent)
            .header("Host", &url.host);
        if self.icy_metadata {
            req = req.header("Icy-MetaData", "1");
        }
        match &self.credentials {
            Some((u, p)) if url.host == first_host => req.basic_auth(u, p),
            _ => req,
        }
    }
}

/// Open `url` as a relay does, following redirects; any 2xx is the stream.
pub async fn open(
    url: &Url,
    req: &StreamRequest,
    bind: Option<IpAddr>,
    ca_file: Option<std::path::PathBuf>,
) -> Result<Response, ClientError> {
    let opts = Options {
        bind,
        ca_file,
        redirects: RedirectPolicy::Follow(MAX_REDIRECTS),
        ..Options::default()
    };
    let up = client::request(url, |u| req.to_request(u, &url.host), &opts).await?;
    match up.head.status {
        200..=299 => Ok(up),
        s => Err(ClientError::Status(s, up.head.reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes_are_icecasts() {
        let url = Url::new("127.0.0.1", 8000, "/live.ogg").unwrap();
        let req = StreamRequest {
            user_agent: "Icecast 2.4.4".into(),
            icy_metadata: true,
            credentials: Some(("source".into(), "hackme".into())),
        };
        assert_eq!(
            req.to_request(&url, "127.0.0.1").to_bytes(),
            b"GET /live.ogg HTTP/1.0\r\nUser-Agent: Icecast 2.4.4\r\nHost: 127.0.0.1\r\nIcy-MetaData: 1\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\n\r\n"
        );
        // A redirect to another host gets no credentials.
        assert_eq!(
            req.to_request(&url, "elsewhere").to_bytes(),
            b"GET /live.ogg HTTP/1.0\r\nUser-Agent: Icecast 2.4.4\r\nHost: 127.0.0.1\r\nIcy-MetaData: 1\r\n\r\n"
        );
        let plain = StreamRequest {
            user_agent: "x\r\nEvil: 1".into(),
            icy_metadata: false,
            credentials: None,
        };
        assert_eq!(
            plain.to_request(&url, "127.0.0.1").to_bytes(),
            b"GET /live.ogg HTTP/1.0\r\nUser-Agent: xEvil: 1\r\nHost: 127.0.0.1\r\n\r\n"
        );
    }
}
