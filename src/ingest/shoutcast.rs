//! The SHOUTcast v1 (ICY) source port, icecast's `shoutcast-mount` on port+1: the client
//! sends its password on one line, gets `OK2\r\nicy-caps:11\r\n\r\n`, then sends `icy-*`
//! header lines, a blank line and audio. A wrong password (or libshout's `!POKE`) is closed
//! without a reply, exactly as icecast2 does.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::net::Conn;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::SourceSession;
use crate::http::request::secret_eq;
use crate::http::response::ICY_OK;
use crate::net::RequestRecord;
use crate::server::Server;

/// Cap on the password line plus the header block.
const MAX_ICY_HEAD: usize = 8192;

/// Read until `pred` finds an end in the buffer, under the cap and deadline.
async fn read_until(
    stream: &mut Conn,
    buf: &mut BytesMut,
    deadline: tokio::time::Instant,
    find: impl Fn(&[u8]) -> Option<usize>,
) -> Option<usize> {
    loop {
        if let Some(end) = find(buf) {
            return Some(end);
        }
        if buf.len() >= MAX_ICY_HEAD {
            return None;
        }
        buf.reserve(1024);
        match tokio::time::timeout_at(deadline, stream.read_buf(buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return None,
        }
    }
}

/// End of the first line (after its LF).
fn line_end(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n').map(|i| i + 1)
}

/// One ICY source connection, in phases: admission (the password line, then after `OK2` the
/// header block, then a free mount), the body (the stream) and done: once the header block
/// is in, the request has a record, and dropping it writes the access-log line. A wrong
/// password or an unfinished handshake is closed unlogged.
pub async fn run(server: Arc<Server>, mut stream: Conn, peer: SocketAddr, mount: String) {
    let config = server.config();
    let deadline = tokio::time::Instant::now() + config.limits.header_timeout;
    let mut buf = BytesMut::with_capacity(1024);
    let Some(end) = read_until(&mut stream, &mut buf, deadline, line_end).await else {
        return;
    };
    let line = buf.split_to(end);
    let line = String::from_utf8_lossy(&line);
    let line = line.trim_end_matches(['\r', '\n']);
    // liquidsoap sends `[user:]password[:#sid]`; the password is the part that matters.
    let password = password_from_line(line);
    let expected = config.source_password_for(&mount);
    if expected.is_empty() || !secret_eq(password, expected) {
        server
            .metrics
            .source_outcome(&mount, "icy", "rejected_auth");
        tracing::info!(%peer, mount, "ICY source refused: bad password");
        return;
    }
    if stream.write_all(ICY_OK).await.is_err() {
        return;
    }
    let Some(end) = read_until(
        &mut stream,
        &mut buf,
        deadline,
        crate::http::find_head_end_or_blank,
    )
    .await
    else {
        return;
    };
    let head = buf.split_to(end);
    let headers = parse_icy_headers(&head);
    let content_type = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "audio/mpeg".into());
    // From here the request is logged, when its record is dropped.
    let mut record = RequestRecord::new(&server, &peer, format!("SOURCE {mount} ICY/1.0"));
    record.set_user(Some("source"));
    record.user_agent = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("user-agent"))
        .map(|(_, v)| v.as_str().into());
    if server.registry.contains(&mount) {
        server
            .registry
            .wait_until_free(&mount, super::source::RECONNECT_PATIENCE)
            .await;
    }
    let session =
        match SourceSession::start(&server, &mount, &headers, &content_type, &peer, false).await {
            Ok(s) => s,
            Err(super::StartError::Rejected(why)) => {
                server.metrics.source_outcome(&mount, "icy", why.outcome());
                super::source::warn_refused(&config, &mount, &peer, why);
                // Refused without a reply, as icecast2 does.
                record.status = 403;
                return;
            }
        };
    server.metrics.source_outcome(&mount, "icy", "accepted");
    let initial: Bytes = buf.split().freeze();
    record.status = 200;
    let (bytes, _, reason) = session.run(&mut stream, initial).await;
    tracing::debug!(mount, bytes, ?reason, "ICY source over");
    record.bytes = bytes;
}

fn password_from_line(line: &str) -> &str {
    let line = line.split(":#").next().unwrap_or(line);
    match line.split_once(':') {
        Some((_, pass)) => pass,
        None => line,
    }
}

/// `name:value` lines up to the blank line; lines without a colon are skipped.
fn parse_icy_headers(head: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(head)
        .split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_forms() {
        assert_eq!(password_from_line("hackme"), "hackme");
        assert_eq!(password_from_line("source:hackme"), "hackme");
        assert_eq!(password_from_line("hackme:#1"), "hackme");
        assert_eq!(password_from_line("!POKE"), "!POKE");
    }

    #[test]
    fn icy_header_block() {
        let h = parse_icy_headers(
            b"icy-name:My Radio\r\nicy-br:128\nicy-pub:1\r\ncontent-type:audio/aacp\r\n\r\n",
        );
        assert_eq!(h.len(), 4);
        assert_eq!(h[0], ("icy-name".into(), "My Radio".into()));
        assert_eq!(h[3].1, "audio/aacp");
    }
}
