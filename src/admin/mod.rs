//! icecast2's admin API over axum: `/admin/<command>` with icecast's auth rules and raw XML
//! replies, plus clean JSON (`/admin/<command>.json` or `Accept: application/json`, as
//! Icecast 2.5 does). An unknown command is refused with 400 before auth, which libshout's
//! `GET /admin/!POKE` probe relies on. Commands steer mounts only through the registry and
//! `Mount`'s API, and answer with documents rendered from a snapshot
//! ([`crate::documents`]).

mod bans;
mod commands;
pub mod events;
mod metadata;

use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::extract::Request;
use axum::http::header;
use axum::response::Response;
use axum::routing::get;

use crate::config::Config;
use crate::documents::xml::{self, Element};
use crate::http::basic_auth;
use crate::http::request::secret_eq;
use crate::reply::{IcecastReply, error, json_reply};
use crate::server::Server;

pub fn routes() -> Router {
    Router::new()
        .route("/admin.cgi", get(metadata::admin_cgi))
        .route("/admin", get(unknown))
        .route("/admin/", get(admin))
        .route("/admin/{*command}", get(admin).post(unknown))
}

async fn unknown(_req: Request) -> Response {
    error(400, "Unrecognised command")
}

/// The commands icecast2 2.4.4 knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Stats,
    ListMounts,
    StreamList,
    StreamListTxt,
    ListClients,
    MoveClients,
    KillClient,
    KillSource,
    Fallbacks,
    Metadata,
    UpdateMetadata,
    BuildM3u,
    ManageAuth,
    /// floecast's own: `ban`, `unban`, `listbans` (admin only).
    Ban,
    Unban,
    ListBans,
}

impl Command {
    /// What `/admin/<name>` names. `<cmd>.xsl` (icecast's HTML pages) answers with the same
    /// document as `<cmd>`, since floecast ships no admin stylesheets; `/admin/` is stats.
    fn parse(name: &str) -> Option<Command> {
        use Command::*;
        let base = name.strip_suffix(".xsl").unwrap_or(name);
        let cmd = match base {
            "" | "stats" | "stats.xml" => Stats,
            "listmounts" => ListMounts,
            "streamlist" => StreamList,
            "listclients" => ListClients,
            "moveclients" => MoveClients,
            "killclient" => KillClient,
            "killsource" => KillSource,
            "fallbacks" => Fallbacks,
            "metadata" => Metadata,
            "updatemetadata" => UpdateMetadata,
            "manageauth" => ManageAuth,
            "ban" => Ban,
            "unban" => Unban,
            "listbans" => ListBans,
            "streamlist.txt" if base == name => StreamListTxt,
            "buildm3u" if base == name => BuildM3u,
            _ => return None,
        };
        Some(cmd)
    }

    /// Commands that act on one mount and need `mount=`.
    fn needs_mount(self) -> bool {
        use Command::*;
        matches!(
            self,
            ListClients
                | MoveClients
                | KillClient
                | KillSource
                | Fallbacks
                | Metadata
                | UpdateMetadata
                | BuildM3u
                | ManageAuth
        )
    }

    /// Commands whose answer is an XML document (and so has a JSON form).
    fn has_json(self) -> bool {
        !matches!(self, Command::StreamListTxt | Command::BuildM3u)
    }
}

/// How the caller wants the document. The JSON form of a document is its root's content
/// as an object: leaves become typed values (numbers stay numbers, `max_listeners`
/// "unlimited" becomes `null`), attributes become keys, and repeated elements become arrays
/// with readable names:
/// - `stats`: `{"admin":…, "listeners":1, …, "sources":[{"mount":"/m", "listeners":1, …}]}`
/// - `listmounts`/`streamlist`/`moveclients`: `{"sources":[{"mount", "fallback",
///   "listeners", "connected", "content_type"}], "current_source"?}`
/// - `listclients`: `{"sources":[{"mount", "listeners", "clients":[{"id", "ip",
///   "user_agent", "connected", "username"?}]}]}` (`username` for authenticated listeners)
/// - replies (`killclient`, `metadata`, `fallbacks`, …): `{"message":"…", "return":1}`
/// - `manageauth`: `{"sources":[{"mount", "users":[{"username"}]}], "iceresponse"?:
///   {"message"}}`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Xml,
    Json,
}

/// What a command produced, before it is rendered in the caller's format.
pub enum Answer {
    Doc(Element),
    /// icecast's bare HTML success page (`fallbacks`).
    Html(String),
    /// A finished reply: errors, plain text, playlists.
    Reply(Response),
}

impl Answer {
    fn ice(message: impl Into<String>, ok: bool) -> Answer {
        Answer::Doc(xml::iceresponse(&message.into(), ok))
    }

    fn render(self, format: Format) -> Response {
        match (self, format) {
            (Answer::Reply(r), _) => r,
            (Answer::Doc(doc), Format::Xml) => {
                IcecastReply::new(200, "text/xml; charset=utf-8", doc.to_document()).into()
            }
            (Answer::Doc(doc), Format::Json) => json_reply(&doc.to_json()),
            (Answer::Html(message), Format::Xml) => IcecastReply::new(
                200,
                "text/html; charset=utf-8",
                format!(
                    "<html><head><title>Admin request successful</title></head><body><p>{}</p></body></html>",
                    crate::http::response::html_escape(&message)
                ),
            )
            .into(),
            (Answer::Html(message), Format::Json) => {
                json_reply(&xml::iceresponse(&message, true).to_json())
            }
        }
    }
}

/// `/admin/<command>`: recognise, authenticate, find the mount, run.
async fn admin(Extension(server): Extension<Arc<Server>>, req: Request) -> Response {
    let name = req.uri().path().strip_prefix("/admin/").unwrap_or("");
    let (name, by_suffix) = match name.strip_suffix(".json") {
        Some(n) => (n, true),
        None => (name, false),
    };
    let Some(cmd) = Command::parse(name) else {
        return error(400, "Unrecognised command");
    };
    if by_suffix && !cmd.has_json() {
        return error(400, "Unrecognised command");
    }
    let format = if cmd.has_json() && (by_suffix || accepts_json(&req)) {
        Format::Json
    } else {
        Format::Xml
    };
    let config = server.config();
    let mount_name = param(&req, "mount");

    let authorized = match cmd {
        Command::BuildM3u => true,
        // Slave relays list the master's mounts with the relay credentials; admin
        // credentials are refused here, as in icecast.
        Command::StreamListTxt => relay_authorized(&config, &req),
        // Source credentials reach only commands about their own mount (and `stats` of
        // it); the mount lists stay admin-only, so hidden mounts stay hidden from sources.
        _ if cmd.needs_mount() || cmd == Command::Stats => {
            authorize(&config, &req, mount_name.as_deref()).is_some()
        }
        _ => authorize(&config, &req, None).is_some(),
    };
    if cmd.needs_mount() && mount_name.is_none() {
        // icecast handles it as a general request: admin auth, then refusal.
        return match authorize(&config, &req, None) {
            Some(_) => error(400, "Unknown admin request"),
            None => error(401, ""),
        };
    }
    if !authorized {
        return error(401, "");
    }
    let mount = match &mount_name {
        Some(name) if cmd != Command::StreamListTxt => {
            match server.registry.get(name).filter(|m| !m.is_ended()) {
                Some(m) => Some(m),
                None => return error(400, "Source does not exist"),
            }
        }
        _ => None,
    };
    let answer = match (cmd, mount) {
        (Command::Stats, m) => {
            let tls_port = req
                .extensions()
                .get::<crate::web::Arrival>()
                .and_then(|a| a.tls_port);
            commands::stats(&server, m.as_deref(), tls_port)
        }
        (Command::ListMounts | Command::StreamList, _) => commands::listmounts(&server),
        (Command::StreamListTxt, _) => commands::streamlist_txt(&server),
        (Command::ListClients, Some(m)) => commands::listclients(&server, &m),
        (Command::MoveClients, Some(m)) => commands::moveclients(&server, &req, &m),
        (Command::KillClient, Some(m)) => commands::killclient(&req, &m),
        (Command::KillSource, Some(m)) => commands::killsource(&m),
        (Command::Fallbacks, Some(m)) => commands::fallbacks(&req, &m),
        (Command::Metadata, Some(m)) => metadata::update(&server, &req, &m),
        (Command::UpdateMetadata, Some(m)) => commands::updatemetadata(&m),
        (Command::BuildM3u, Some(m)) => commands::buildm3u(&server, &req, &m),
        (Command::ManageAuth, Some(m)) => commands::manageauth(&server, &req, &m),
        (Command::Ban, _) => bans::ban(&server, &req),
        (Command::Unban, _) => bans::unban(&server, &req),
        (Command::ListBans, _) => bans::listbans(&server),
        // needs_mount() guarantees a mount for the rest.
        _ => Answer::Reply(error(400, "Unknown admin request")),
    };
    answer.render(format)
}

/// `Accept: application/json` (without `text/xml` preferred before it).
fn accepts_json(req: &Request) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            let json = a.find("application/json");
            let xml = a.find("xml");
            json.is_some_and(|j| xml.is_none_or(|x| j < x))
        })
}

fn credentials(req: &Request) -> Option<(String, String)> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(basic_auth)
}

fn relay_authorized(config: &Config, req: &Request) -> bool {
    credentials(req).is_some_and(|(user, pass)| {
        user == config.auth.relay_user
            && !config.auth.relay_password.is_empty()
            && secret_eq(&pass, &config.auth.relay_password)
    })
}

/// Who authenticated for an admin request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    /// The source credentials of the named mount.
    Source,
}

/// Admin credentials, or (for a command on `mount`) that mount's source credentials.
pub fn authorize(config: &Config, req: &Request, mount: Option<&str>) -> Option<Caller> {
    let (user, pass) = credentials(req)?;
    if config.admin_credentials_ok(&user, &pass) {
        return Some(Caller::Admin);
    }
    let mount = mount?;
    config
        .source_credentials_ok(mount, &user, &pass)
        .then_some(Caller::Source)
}

/// The raw query string of a request.
pub fn query(req: &Request) -> &str {
    req.uri().query().unwrap_or("")
}

/// A decoded query parameter, ISO-8859-1 when not UTF-8.
pub fn param(req: &Request, name: &str) -> Option<String> {
    crate::http::request::query_pairs(query(req))
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_names() {
        assert_eq!(Command::parse(""), Some(Command::Stats));
        assert_eq!(Command::parse("stats.xml"), Some(Command::Stats));
        assert_eq!(
            Command::parse("listclients.xsl"),
            Some(Command::ListClients)
        );
        assert_eq!(
            Command::parse("streamlist.txt"),
            Some(Command::StreamListTxt)
        );
        assert_eq!(Command::parse("streamlist.txt.xsl"), None);
        assert_eq!(Command::parse("!POKE"), None);
        assert_eq!(Command::parse("manageauth"), Some(Command::ManageAuth));
    }
}
