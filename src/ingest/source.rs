//! SOURCE and PUT ingest, answering exactly as icecast2 2.4.4 does (spec §1): 401 with
//! `WWW-Authenticate` for libshout's unauthenticated challenge, 403 texts for busy mounts and
//! source limits, `HTTP/1.1 100 Continue` when asked, then the bare `HTTP/1.0 200 OK`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::net::Conn;
use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use super::{SourceSession, StartError};
use crate::config::Config;
use crate::http::mount_name::{self, Escaped, MountNameError};
use crate::http::{RequestHead, basic_auth, response};
use crate::log_throttle::LogThrottle;
use crate::mount::SourceRejected;
use crate::net::{self, Reply, RequestRecord};
use crate::server::Server;

/// Check source credentials: the mount's username (else `source`), password the mount's or
/// the global source password. `ice-password` (old `ICE/1.0` clients) counts as that user.
pub fn source_authorized(config: &Config, mount: &str, head: &RequestHead) -> Option<String> {
    let (user, pass) = match head.header("authorization").and_then(basic_auth) {
        Some(c) => c,
        // ICE/1.0 sends only a password: it stands for the mount's source user.
        None => (
            config.source_user_for(mount).to_string(),
            head.header("ice-password")?.to_string(),
        ),
    };
    config
        .source_credentials_ok(mount, &user, &pass)
        .then_some(user)
}

/// How long a new source waits for a mount whose source is ending (see
/// [`crate::mount::Registry::wait_until_free`]) before it is told "Mountpoint in use".
pub const RECONNECT_PATIENCE: Duration = Duration::from_millis(500);

/// Refused sources are logged at most this often: a client retrying in a loop (or an
/// attacker) must not fill the log.
static REFUSED_LOG: LogThrottle = LogThrottle::new(Duration::from_secs(10));

/// A refused source, at WARN as icecast2 logs it, with what a user needs to fix it.
pub fn warn_refused(config: &Config, mount: &str, peer: &SocketAddr, why: SourceRejected) {
    let Some(suppressed) = REFUSED_LOG.allow() else {
        return;
    };
    match why {
        SourceRejected::TooMany => tracing::warn!(
            mount,
            %peer,
            "source refused: {why} (the limit is sources = {}, relays included){suppressed}",
            config.limits.sources
        ),
        SourceRejected::InUse => tracing::warn!(mount, %peer, "source refused: {why}{suppressed}"),
    }
}

/// One SOURCE or PUT request, in phases: admission (credentials, content type, a free mount),
/// the reply head (`100 Continue` when asked, then `200 OK`), the body (the stream, until
/// the source leaves), and done: the request's record, dropped on the way out whatever
/// happened, writes its access-log line.
pub async fn run(
    server: Arc<Server>,
    mut stream: Conn,
    head: RequestHead,
    rest: Bytes,
    peer: SocketAddr,
) {
    let mut record = RequestRecord::for_head(&server, &head, &peer);
    let (session, mount_name) = match admit(&server, &head, &peer, &mut record).await {
        Ok(admitted) => admitted,
        Err(reply) => {
            record.status = reply.status;
            net::reply_and_close(&mut stream, &reply.bytes).await;
            return;
        }
    };

    let expects_continue = head
        .header("expect")
        .is_some_and(|e| e.to_ascii_lowercase().contains("100-continue"));
    let mut reply = Vec::with_capacity(64);
    if expects_continue {
        reply.extend_from_slice(response::CONTINUE);
    }
    reply.extend_from_slice(response::SOURCE_OK);
    if let Err(e) = stream.write_all(&reply).await {
        tracing::debug!(mount = %mount_name, "source went away before 200: {e}");
    }
    record.status = 200;
    drop(head);

    let (bytes, _, reason) = session.run(&mut stream, rest).await;
    tracing::debug!(mount = %mount_name, bytes, ?reason, "source session over");
    record.bytes = bytes;
}

/// Check the credentials and the content type, wait for a mount still held by a source that
/// is leaving, and start the session. Fills in the record's user; outcome metrics are
/// counted here. A refusal is icecast's reply, with the mount's configured headers.
async fn admit(
    server: &Arc<Server>,
    head: &RequestHead,
    peer: &SocketAddr,
    record: &mut RequestRecord,
) -> Result<(SourceSession, String), Reply> {
    let config = server.config();
    let mount_name = head.path.clone();
    let mount_cfg = config.mount(&mount_name);
    let mount_headers = mount_cfg
        .as_deref()
        .map(|m| m.http_headers.as_slice())
        .unwrap_or(&[]);
    let refuse = |code: u16, msg: &str| Reply::error(&config, mount_headers, code, msg);
    let protocol = if head.method == "PUT" {
        "put"
    } else {
        "source"
    };
    let count = |outcome: &str| {
        server
            .metrics
            .source_outcome(&mount_name, protocol, outcome)
    };

    // Before credentials, and uncounted: a name that can never be a mount creates no label.
    if let Err(why) = mount_name_allowed(&config, &mount_name).await {
        tracing::info!(mount = %Escaped(&mount_name), %peer, "source refused: {why}");
        return Err(match why {
            MountNameError::NoSlash => refuse(401, ""),
            MountNameError::Control => refuse(400, &why.to_string()),
            MountNameError::Reserved(_) => refuse(403, &why.to_string()),
        });
    }
    let user = source_authorized(&config, &mount_name, head);
    let Some(user) = user else {
        // libshout asks without credentials first and expects this 401 (spec §1.3): a
        // challenge, not a refused login.
        let challenge =
            head.header("authorization").is_none() && head.header("ice-password").is_none();
        count(if challenge {
            "challenged"
        } else {
            "rejected_auth"
        });
        return Err(refuse(401, ""));
    };
    record.set_user(Some(user));

    let content_type = match head.header("content-type") {
        Some(ct) if !ct.trim().is_empty() => ct.trim().to_string(),
        // icecast1-era SOURCE without a type is MP3; PUT must say what it sends.
        _ if head.method == "SOURCE" => "audio/mpeg".to_string(),
        _ => {
            count("rejected_type");
            return Err(refuse(403, "No Content-type given"));
        }
    };
    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));

    if server.registry.contains(&mount_name) {
        server
            .registry
            .wait_until_free(&mount_name, RECONNECT_PATIENCE)
            .await;
    }
    match SourceSession::start(
        server,
        &mount_name,
        &head.headers,
        &content_type,
        peer,
        chunked,
    )
    .await
    {
        Ok(session) => {
            count("accepted");
            Ok((session, mount_name))
        }
        Err(StartError::Rejected(why)) => {
            count(why.outcome());
            warn_refused(&config, &mount_name, peer, why);
            Err(refuse(403, &why.to_string()))
        }
    }
}

/// A name a source may mount: [`mount_name::check`], and no file of the web root (which the
/// mount would otherwise shadow).
async fn mount_name_allowed(config: &Config, name: &str) -> Result<(), MountNameError> {
    mount_name::check(name)?;
    if let Some(root) = &config.paths.webroot {
        let rel = name.trim_start_matches('/');
        if !rel.split('/').any(|seg| seg == "..")
            && tokio::fs::metadata(root.join(rel)).await.is_ok()
        {
            return Err(MountNameError::Reserved("a file of the web root"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MountConfig;

    fn head(raw: &str) -> RequestHead {
        crate::http::parse_head(raw.as_bytes()).unwrap()
    }

    #[test]
    fn source_credentials() {
        let mut config = Config::default();
        config.mounts.push(MountConfig {
            name: "/dj/*".into(),
            username: Some("dj".into()),
            password: Some("secret".into()),
            ..Default::default()
        });
        let ok = head("SOURCE /live HTTP/1.0\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\n\r\n");
        assert_eq!(
            source_authorized(&config, "/live", &ok).as_deref(),
            Some("source")
        );
        // Wrong user.
        let bad = head("SOURCE /live HTTP/1.0\r\nAuthorization: Basic YWRtaW46aGFja21l\r\n\r\n");
        assert_eq!(source_authorized(&config, "/live", &bad), None);
        // No auth at all: libshout's challenge.
        assert_eq!(
            source_authorized(
                &config,
                "/live",
                &head("SOURCE /live HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
            ),
            None
        );
        // Mount user and password (dj:secret).
        let dj = head("SOURCE /dj/a HTTP/1.0\r\nAuthorization: Basic ZGo6c2VjcmV0\r\n\r\n");
        assert_eq!(
            source_authorized(&config, "/dj/a", &dj).as_deref(),
            Some("dj")
        );
        // The global password does not open a mount with its own.
        let global =
            head("SOURCE /dj/a HTTP/1.0\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\n\r\n");
        assert_eq!(source_authorized(&config, "/dj/a", &global), None);
        // Nor does user `source` with the mount's password (icecast2: 401).
        let source_user =
            head("SOURCE /dj/a HTTP/1.0\r\nAuthorization: Basic c291cmNlOnNlY3JldA==\r\n\r\n");
        assert_eq!(source_authorized(&config, "/dj/a", &source_user), None);
        // ICE/1.0 sends the password alone: it is the mount's user's.
        let ice = head("SOURCE /dj/a ICE/1.0\r\nice-password: secret\r\n\r\n");
        assert_eq!(
            source_authorized(&config, "/dj/a", &ice).as_deref(),
            Some("dj")
        );
        // ICE/1.0 with ice-password.
        let ice = head("SOURCE /live ICE/1.0\r\nice-password: hackme\r\n\r\n");
        assert_eq!(
            source_authorized(&config, "/live", &ice).as_deref(),
            Some("source")
        );
    }
}
