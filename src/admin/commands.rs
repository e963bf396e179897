//! The admin commands themselves, each answering as icecast2 2.4.4 does (`admin.c`). They
//! run after the dispatcher has authenticated the caller and found the live mount, and
//! steer mounts only through `Mount`'s API (moves, kicks, the kill signal, the fallback).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::Response;

use super::{Answer, param};
use crate::clock;
use crate::config::AuthBackend;
use crate::documents::icestats;
use crate::documents::xml::Element;
use crate::listener_auth::{self, Added};
use crate::mount::Mount;
use crate::reply::{IcecastReply, error};
use crate::server::Server;
use crate::snapshot::{self, capture};

/// `stats` / `stats.xml`: every stat, hidden mounts included (admin view).
/// With a mount, only that mount, followed by its listeners. Listen URLs are `https://` on
/// `tls_port` for a request that came over TLS.
pub fn stats(server: &Server, mount: Option<&Mount>, tls_port: Option<u16>) -> Answer {
    let only = mount.map(|m| m.name.as_str());
    let mut snap = capture(server, only);
    snap.identity.tls_port = tls_port;
    Answer::Doc(icestats::icestats(&snap, true, only))
}

/// `listmounts` and `streamlist`: the same document in icecast.
pub fn listmounts(server: &Server) -> Answer {
    Answer::Doc(icestats::sourcelist(&capture(server, None), None))
}

/// `streamlist.txt`: one non-hidden mount per line. icecast sends it with no
/// Content-Length; a streamed body keeps hyper from adding one (the connection closes).
pub fn streamlist_txt(server: &Server) -> Answer {
    let body: String = icestats::visible_mounts(&capture(server, None), false, None)
        .map(|m| format!("{}\r\n", m.name))
        .collect();
    let mut resp = Response::new(Body::new(Unsized(Some(bytes::Bytes::from(body)))));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Answer::Reply(resp)
}

/// A body that does not tell its length, so no Content-Length goes out.
struct Unsized(Option<bytes::Bytes>);

impl axum::body::HttpBody for Unsized {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Ready(self.0.take().map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

/// `listclients`: `<Listeners>` with a capital L, then one `<listener>` per client.
pub fn listclients(server: &Server, mount: &Mount) -> Answer {
    let m = snapshot::mount(&server.config(), mount, true);
    Answer::Doc(icestats::listclients(&clock::now(), &m))
}

/// `moveclients`: without `destination`, the list of other mounts to choose from.
pub fn moveclients(server: &Server, req: &Request, mount: &Arc<Mount>) -> Answer {
    let Some(dest_name) = param(req, "destination") else {
        return Answer::Doc(icestats::sourcelist(
            &capture(server, None),
            Some(&mount.name),
        ));
    };
    let Some(dest) = server.registry.get(&dest_name) else {
        return Answer::Reply(error(400, "No such destination"));
    };
    if dest.name == mount.name {
        return Answer::Reply(error(400, "supplied mountpoints are identical"));
    }
    // A standby (on-demand relay not connected) has no stream to move listeners onto.
    if dest.is_ended() || dest.is_standby() {
        return Answer::Reply(error(400, "Destination not running"));
    }
    // icecast logs and ignores a move between formats yet reports success; listeners
    // cannot follow such a move here either, so say so.
    if dest.family != mount.family {
        return Answer::ice(
            format!(
                "Clients not moved from {} to {}: the stream formats differ",
                mount.name, dest.name
            ),
            false,
        );
    }
    tracing::info!(from = %mount.name, to = %dest.name, "admin: moving listeners");
    mount.move_listeners_to(dest.clone());
    Answer::ice(
        format!("Clients moved from {} to {}", mount.name, dest_name),
        true,
    )
}

/// `killclient?id=N`.
pub fn killclient(req: &Request, mount: &Mount) -> Answer {
    let Some(raw) = param(req, "id") else {
        return Answer::Reply(error(400, "Missing parameter"));
    };
    let id = atoi(&raw);
    match mount.listeners().into_iter().find(|(i, _)| *i == id) {
        Some((_, entry)) => {
            tracing::info!(mount = %mount.name, id, "admin: client removed");
            entry.kick.kick();
            Answer::ice(format!("Client {id} removed"), true)
        }
        None => Answer::ice(format!("Client {id} not found"), false),
    }
}

/// C's `atoi`, which icecast uses for ids: leading digits, else 0.
fn atoi(s: &str) -> u64 {
    let digits: String = s
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().unwrap_or(0)
}

/// `killsource`: the source session ends; listeners move to the fallback as when a source
/// hangs up.
pub fn killsource(mount: &Mount) -> Answer {
    tracing::info!(mount = %mount.name, "admin: source killed");
    mount.kill_source();
    Answer::ice("Source Removed", true)
}

/// `fallbacks?fallback=/m`: change this live mount's fallback (empty clears it).
pub fn fallbacks(req: &Request, mount: &Mount) -> Answer {
    let Some(fallback) = param(req, "fallback") else {
        return Answer::Reply(error(400, "Missing parameter"));
    };
    tracing::info!(mount = %mount.name, fallback, "admin: fallback set");
    mount.set_fallback((!fallback.is_empty()).then_some(fallback));
    Answer::Html("Fallback configured".into())
}

/// `updatemetadata`: icecast's form page; the raw document names only the mount.
pub fn updatemetadata(mount: &Mount) -> Answer {
    Answer::Doc(
        Element::new("icestats").with(Element::new("source").attr("mount", mount.name.clone())),
    )
}

/// `buildm3u?mount=&username=&password=`: a playlist with the credentials in the URL.
/// icecast's header line is `Content-Disposition = attachment; filename=listen.m3u`, which
/// has no colon and so is no header at all; hyper cannot write such a line, and we send the
/// well-formed header icecast meant.
pub fn buildm3u(server: &Server, req: &Request, mount: &Mount) -> Answer {
    let (Some(user), Some(pass)) = (param(req, "username"), param(req, "password")) else {
        return Answer::Reply(error(400, "Missing parameter"));
    };
    // Over TLS, the playlist points at the TLS port the request came to.
    let tls_port = req
        .extensions()
        .get::<crate::web::Arrival>()
        .and_then(|a| a.tls_port);
    let (scheme, port) = match tls_port {
        Some(p) => ("https", p),
        None => ("http", server.port()),
    };
    let body = format!(
        "{scheme}://{user}:{pass}@{}:{port}{}\r\n",
        server.config().hostname,
        mount.name
    );
    let mut resp: Response = IcecastReply::new(200, "audio/x-mpegurl", body).into();
    resp.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=listen.m3u"),
    );
    Answer::Reply(resp)
}

/// `manageauth?mount=&action=list|add|delete&username=&password=`: the users of the mount's
/// htpasswd file, as icecast2 2.4.4 answers. add/delete rewrite the file (atomically) and
/// the document then also carries `<iceresponse><message>` (no `<return>`, as in icecast).
/// A mount without listener authentication, or a missing parameter, is icecast's 400
/// "missing parameter"; an unknown action just lists.
pub fn manageauth(server: &Server, req: &Request, mount: &Mount) -> Answer {
    let config = server.config();
    // Only htpasswd can list users; icecast answers the rest (url, none) like this too.
    let Some(AuthBackend::Htpasswd { filename: path }) =
        config.listener_auth(&mount.name).map(|a| &a.backend)
    else {
        return Answer::Reply(error(400, "missing parameter"));
    };
    let action = param(req, "action").unwrap_or_default();
    let username = param(req, "username").filter(|u| !u.is_empty());
    let password = param(req, "password").filter(|p| !p.is_empty());
    let files = listener_auth::htpasswd_files();
    let message = match action.as_str() {
        "add" => {
            let (Some(user), Some(pass)) = (username, password) else {
                return Answer::Reply(error(400, "missing parameter"));
            };
            if !listener_auth::valid_username(&user) {
                return Answer::Reply(error(400, "Invalid username"));
            }
            match files.add(path, &user, &pass) {
                Ok(Added::Added) => {
                    tracing::info!(mount = %mount.name, user, "admin: listener user added");
                    Some("User added")
                }
                Ok(Added::Exists) => Some("User already exists - not added"),
                Err(e) => return file_error(path, &e),
            }
        }
        "delete" => {
            let Some(user) = username else {
                return Answer::Reply(error(400, "missing parameter"));
            };
            // icecast says "User deleted" whether or not the user was there: either way
            // the user is not in the file afterwards.
            match files.delete(path, &user) {
                Ok(found) => {
                    if found {
                        tracing::info!(mount = %mount.name, user, "admin: listener user deleted");
                    }
                    Some("User deleted")
                }
                Err(e) => return file_error(path, &e),
            }
        }
        _ => None,
    };
    let users = match files.users(path, &config) {
        Ok(u) => u,
        Err(e) => return file_error(path, &e),
    };
    let mut src = Element::new("source")
        .attr("mount", mount.name.clone())
        .list("sources");
    for user in users.keys() {
        src.push(
            Element::new("User")
                .list("users")
                .with(Element::leaf("username", user.as_str())),
        );
    }
    let mut root = Element::new("icestats").with(src);
    if let Some(m) = message {
        root.push(Element::new("iceresponse").with(Element::leaf("message", m)));
    }
    Answer::Doc(root)
}

fn file_error(path: &std::path::Path, e: &std::io::Error) -> Answer {
    tracing::error!(path = %path.display(), "htpasswd file: {e}");
    Answer::Reply(error(500, "Could not access the authentication file"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atoi_is_cs() {
        assert_eq!(atoi("12"), 12);
        assert_eq!(atoi(" 7x"), 7);
        assert_eq!(atoi("x"), 0);
        assert_eq!(atoi(""), 0);
    }
}
