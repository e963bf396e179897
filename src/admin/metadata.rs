//! Title updates: `/admin/metadata?mode=updinfo` (libshout, ezstream, ices, butt, liquidsoap)
//! and the SHOUTcast-style `/admin.cgi?pass=…&mode=updinfo&song=…`. Every mount takes them
//! (icecast2 refuses Opus and FLAC); an update on an Ogg mount holds until the next chain
//! brings its own tags, and on a single-stream Vorbis mount the source session also writes it
//! into the stream as a new chain.

use std::sync::Arc;

use axum::Extension;
use axum::extract::Request;
use axum::response::Response;

use super::{Answer, Caller, authorize, param, query};
use crate::http::request::secret_eq;
use crate::mount::Mount;
use crate::reply::{IcecastReply, error};
use crate::server::Server;

/// Charsets whose titles arrive as single bytes per character.
fn is_latin1(charset: &str) -> bool {
    matches!(
        charset
            .to_ascii_lowercase()
            .replace(['-', '_'], "")
            .as_str(),
        "iso88591" | "latin1" | "l1" | "cp1252" | "windows1252" | "iso885915"
    )
}

/// A parameter decoded with the given charset: explicit Latin-1 bytes are read as Latin-1
/// even when they happen to form valid UTF-8.
fn param_in(req: &Request, name: &str, charset: Option<&str>) -> Option<String> {
    if charset.is_some_and(is_latin1) {
        let raw = query(req).split('&').find_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k == name).then(|| v.replace('+', " "))
        })?;
        return Some(
            crate::http::percent_decode(&raw)
                .iter()
                .map(|&b| b as char)
                .collect(),
        );
    }
    param(req, name)
}

/// `(title, artist)` from `song=`, or from `artist=` + `title=`. Without `charset=`, the
/// mount's `charset` setting says how to read the bytes.
fn title_of(req: &Request, mount_charset: Option<&str>) -> (Option<String>, Option<String>) {
    let charset = param(req, "charset");
    let charset = charset.as_deref().or(mount_charset);
    if let Some(song) = param_in(req, "song", charset) {
        return (Some(song), None);
    }
    (
        param_in(req, "title", charset),
        param_in(req, "artist", charset),
    )
}

/// `metadata?mode=updinfo`, once the dispatcher has authenticated the caller and found the
/// live mount.
pub fn update(server: &Server, req: &Request, mount: &Mount) -> Answer {
    if param(req, "mode").as_deref() != Some("updinfo") {
        return Answer::ice("No such action", false);
    }
    let (title, artist) = title_of(req, mount.settings.charset.as_deref());
    let url = param(req, "url");
    tracing::info!(mount = %mount.name, title = ?title, artist = ?artist, "metadata update");
    mount.set_metadata(title, artist, url);
    let label = server.metrics.mount_label(&mount.name);
    server
        .metrics
        .metadata_updates
        .with_label_values(&[&label, "admin"])
        .inc();
    Answer::ice("Metadata update successful", true)
}

/// SHOUTcast DNAS-style update: the password in `pass=`, the mount implied (the configured
/// shoutcast mount, else `/stream`) unless `mount=` names one.
pub async fn admin_cgi(Extension(server): Extension<Arc<Server>>, req: Request) -> Response {
    let config = server.config();
    let mount_name = param(&req, "mount").unwrap_or_else(|| {
        config
            .listen
            .iter()
            .find_map(|l| l.shoutcast_mount.clone())
            .unwrap_or_else(|| "/stream".into())
    });
    let by_pass = param(&req, "pass").is_some_and(|p| {
        let expected = config.source_password_for(&mount_name);
        !expected.is_empty() && secret_eq(&p, expected)
    });
    let caller = if by_pass {
        Some(Caller::Source)
    } else {
        authorize(&config, &req, Some(&mount_name))
    };
    if caller.is_none() {
        return error(401, "");
    }
    if param(&req, "mode").as_deref() != Some("updinfo") {
        return error(400, "illegal metadata call");
    }
    let Some(mount) = server.registry.get(&mount_name) else {
        return error(400, "Source does not exist");
    };
    let (title, artist) = title_of(&req, mount.settings.charset.as_deref());
    mount.set_metadata(title, artist, param(&req, "url"));
    let label = server.metrics.mount_label(&mount_name);
    server
        .metrics
        .metadata_updates
        .with_label_values(&[&label, "admin"])
        .inc();
    IcecastReply::new(
        200,
        "text/html; charset=utf-8",
        "<html><body>Metadata update successful</body></html>\r\n".into(),
    )
    .into()
}
