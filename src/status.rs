//! Public status documents: icecast2's `/status-json.xsl` (byte-compatible JSON, quirks
//! included, for the exporters and widgets that parse it), `/status.xsl` and
//! `/server_version.xsl` (small XHTML pages), and floecast's own `/api/status` (clean JSON,
//! schema below). Hidden mounts never appear; nothing here needs credentials or changes
//! state.

use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::get;
use serde::Serialize;

use crate::admin::stats::{self, iso8601, seconds_since};
use crate::admin::xml::{Body, Element};
use crate::admin::{json_reply, param};
use crate::http::response::html_escape;
use crate::server::Server;
use crate::web::IcecastReply;

pub fn routes() -> Router {
    Router::new()
        .route("/status-json.xsl", get(status_json))
        .route("/status.xsl", get(status_xsl))
        .route("/server_version.xsl", get(server_version))
        .route("/api/status", get(api_status))
        .route("/api/events", get(api_events))
}

/// `/status-json.xsl[?mount=/m]`: the non-hidden stats document through icecast's
/// `xml2json.xslt` rules.
async fn status_json(Extension(server): Extension<Arc<Server>>, req: Request) -> Response {
    let mut doc = stats::icestats(&server, false, None);
    // `?mount=` keeps the global stats and only that mount. (icecast also lists that
    // mount's listeners, IPs included, in this public document; floecast does not.)
    if let (Some(only), Body::Children(children)) = (param(&req, "mount"), &mut doc.body) {
        children.retain(|c| c.name != "source" || c.attrs.iter().any(|(_, v)| *v == only));
    }
    IcecastReply::new(200, "application/json; charset=UTF-8", icecast_json(&doc)).into()
}

/// Stats `status-json.xsl` leaves out. A hidden element that is the last of its siblings
/// still prints `"dummy":null`, as icecast's stylesheet does.
fn is_hidden(parent: &str, name: &str) -> bool {
    if name.contains("connections") {
        return true;
    }
    match parent {
        "icestats" => matches!(name, "sources" | "clients" | "stats" | "listeners"),
        "source" => matches!(
            name,
            "max_listeners"
                | "public"
                | "source_ip"
                | "slow_listeners"
                | "total_bytes_read"
                | "total_bytes_sent"
                | "user_agent"
        ),
        _ => false,
    }
}

/// `{"icestats":{…}}` exactly as icecast 2.4.4 prints it: attributes dropped, numbers
/// and booleans unquoted, empty elements `null`, a repeated element (`source`, 2+ mounts)
/// an array at its first position, one mount an object, none absent.
pub fn icecast_json(root: &Element) -> String {
    let mut out = String::from("{");
    out.push_str(&json_string(&root.name));
    out.push(':');
    write_value(root, &mut out);
    out.push('}');
    out
}

fn write_value(el: &Element, out: &mut String) {
    match &el.body {
        Body::Children(c) if !c.is_empty() => write_object(el, out),
        Body::Leaf(v) => out.push_str(&scalar(&v.text())),
        _ => out.push_str("null"),
    }
}

fn write_object(el: &Element, out: &mut String) {
    let kids = el.children();
    let mut parts: Vec<String> = Vec::new();
    let mut grouped: Vec<&str> = Vec::new();
    for (i, c) in kids.iter().enumerate() {
        if is_hidden(&el.name, &c.name) {
            if i + 1 == kids.len() {
                parts.push("\"dummy\":null".into());
            }
            continue;
        }
        let same: Vec<&Element> = kids.iter().filter(|k| k.name == c.name).collect();
        let mut part = json_string(&c.name);
        part.push(':');
        if same.len() > 1 {
            if grouped.contains(&c.name.as_str()) {
                continue;
            }
            grouped.push(&c.name);
            part.push('[');
            for (j, s) in same.iter().enumerate() {
                if j > 0 {
                    part.push(',');
                }
                write_value(s, &mut part);
            }
            part.push(']');
        } else {
            write_value(c, &mut part);
        }
        parts.push(part);
    }
    out.push('{');
    out.push_str(&parts.join(","));
    out.push('}');
}

/// xml2json's typing of element text.
fn scalar(text: &str) -> String {
    if text.is_empty() {
        "null".into()
    } else if text == "true" || text == "false" || is_plain_number(text) {
        text.into()
    } else {
        json_string(text)
    }
}

/// A number xml2json prints bare: no leading zero (except `0`), no exponent. Anything
/// else (`007`, `1.`, `1e3`) stays a string, which also keeps the output valid JSON.
fn is_plain_number(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let int_ok = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && (int == "0" || !int.starts_with('0'));
    let frac_ok = frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    // "0.5" starts with 0 and is not "0": xml2json quotes it.
    int_ok && frac_ok && (int != "0" || frac.is_none()) && !s.starts_with("-0")
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// `/status.xsl`: the public overview as XHTML, sent as `text/xml` like icecast's.
async fn status_xsl(Extension(server): Extension<Arc<Server>>) -> Response {
    let config = server.config();
    let mut body = xhtml_head(&format!("{} Status", config.server_id));
    for m in stats::visible_mounts(&server, false, None) {
        let st = stats::mount_stats(&server, &m);
        body.push_str(&format!(
            "<div class=\"mount\"><h3>Mount Point {}</h3><table>\n",
            html_escape(&m.name)
        ));
        for (label, key) in [
            ("Stream Name", "server_name"),
            ("Stream Description", "server_description"),
            ("Content Type", "server_type"),
            ("Stream started", "stream_start"),
            ("Bitrate", "bitrate"),
            ("Listeners (current)", "listeners"),
            ("Listeners (peak)", "listener_peak"),
            ("Genre", "genre"),
            ("Stream URL", "server_url"),
        ] {
            if let Some(v) = st.get(key) {
                body.push_str(&format!(
                    "<tr><td>{label}:</td><td class=\"streamstats\">{}</td></tr>\n",
                    html_escape(&v.text())
                ));
            }
        }
        // icecast's status.xsl writes `artist - ` before the title when there is an artist.
        let playing = match (st.get("artist"), st.get("title")) {
            (Some(a), Some(t)) => format!("{} - {}", a.text(), t.text()),
            (Some(a), None) => format!("{} - ", a.text()),
            (None, t) => t.map(|t| t.text()).unwrap_or_default(),
        };
        body.push_str(&format!(
            "<tr><td>Currently playing:</td><td class=\"streamstats\">{}</td></tr>\n",
            html_escape(&playing)
        ));
        body.push_str(&format!(
            "</table><p><a href=\"{0}.m3u\">M3U</a> <a href=\"{0}.xspf\">XSPF</a></p></div>\n",
            html_escape(&m.name)
        ));
    }
    body.push_str("</body>\n</html>\n");
    IcecastReply::new(200, "text/xml; charset=UTF-8", body).into()
}

/// `/server_version.xsl`: who runs this server.
async fn server_version(Extension(server): Extension<Arc<Server>>) -> Response {
    let config = server.config();
    let mut body = xhtml_head(&format!("{} Server Information", config.server_id));
    body.push_str("<table>\n");
    for (label, value) in [
        ("Location", &config.location),
        ("Admin", &config.admin),
        ("Host", &config.hostname),
        ("Version", &config.server_id),
    ] {
        body.push_str(&format!(
            "<tr><td>{label}</td><td class=\"streamstats\">{}</td></tr>\n",
            html_escape(value)
        ));
    }
    body.push_str("</table>\n</body>\n</html>\n");
    IcecastReply::new(200, "text/xml; charset=UTF-8", body).into()
}

fn xhtml_head(title: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\" \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n<html xmlns=\"http://www.w3.org/1999/xhtml\">\n<head><title>{0}</title></head>\n<body>\n<h2>{0}</h2>\n",
        html_escape(title)
    )
}

/// `GET /api/status`: floecast's own status document. Stable field names; numbers are
/// numbers; absent values are `null`. Hidden mounts are left out.
#[derive(Debug, Serialize)]
pub struct ApiStatus {
    pub server: ApiServer,
    /// Live mounts, sorted by name.
    pub mounts: Vec<ApiMount>,
    /// Push relays in config order (those of hidden mounts left out): `mount`, `remote` (URL without credentials), `protocol`,
    /// `method`, `state` ("up", "connecting", "waiting", "down"), `attempts`, `last_error`,
    /// `bytes_sent`, `connected_since`.
    pub pushes: Vec<crate::relay::push::PushStatus>,
}

#[derive(Debug, Serialize)]
pub struct ApiServer {
    /// The `Server:` header / `server_id`.
    pub id: String,
    /// Configured hostname, used in listen URLs.
    pub host: String,
    pub location: String,
    pub admin: String,
    /// Start time, ISO 8601 (`2023-06-06T09:33:57+0000`).
    pub started: String,
    pub uptime_seconds: u64,
    /// Listeners on all mounts (hidden ones included in the count).
    pub listeners: usize,
    /// Live mounts (hidden ones included in the count).
    pub sources: usize,
}

#[derive(Debug, Serialize)]
pub struct ApiMount {
    pub mount: String,
    pub listen_url: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub genre: Option<String>,
    pub url: Option<String>,
    pub content_type: String,
    /// "MP3", "AAC", "Vorbis", "Opus", … when the framer recognised it.
    pub codec: Option<String>,
    /// kbit/s: from the stream itself, else what the source declared.
    pub bitrate: Option<u64>,
    pub samplerate: Option<u32>,
    pub channels: Option<u32>,
    pub listeners: ApiListeners,
    /// Since the source connected.
    pub uptime_seconds: u64,
    pub started: String,
    /// Now playing: `artist - title`, or the title alone.
    pub title: Option<String>,
    pub artist: Option<String>,
    pub public: bool,
    pub source: ApiSource,
    pub bytes_read: u64,
    pub bytes_sent: u64,
    /// Relay details when the mount is fed by a relay: `state` ("up", "connecting", "down",
    /// or "idle" for an on-demand relay waiting for listeners), `upstream` URL, `on_demand`,
    /// `attempts`, `failures`, `last_error`, `bytes_in` and `connected_since` (ISO 8601).
    pub relay: Option<serde_json::Value>,
    /// P2PSP team details when the mount splits for a team or is a team's peer: `role`
    /// ("splitter" or "peer"); a splitter's `endpoint`, `peers` (id, endpoint, monitor,
    /// chunks_sent, bytes_sent, losses, last_seen_ms), chunk and byte totals and `expelled`
    /// counts; a peer's `splitter`, `joined` and chunk counters. A mount that is both (an
    /// inner node of a hybrid tree) shows its served team with the joined one as `upstream`.
    pub p2psp: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct ApiListeners {
    pub current: usize,
    pub peak: usize,
    /// `max-listeners`, `null` when unlimited.
    pub max: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct ApiSource {
    /// How the stream arrives: "push" (SOURCE/PUT or the ICY port) or "relay".
    pub kind: &'static str,
    pub ip: String,
    pub user_agent: Option<String>,
    pub fallback: Option<String>,
}

pub fn api_status_of(server: &Server) -> ApiStatus {
    use std::sync::atomic::Ordering;
    let config = server.config();
    let all = server.registry.list();
    let mounts = stats::visible_mounts(server, false, None)
        .into_iter()
        .map(|m| {
            let info = m.info();
            let codec = m.codec();
            let meta = m.metadata();
            let title = meta.display();
            let relay = server.tasks.relays.get(&m.name);
            let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
            ApiMount {
                listen_url: server.listen_url(&m.name),
                mount: m.name.clone(),
                name: non_empty(info.name.clone()),
                description: non_empty(info.description.clone()),
                genre: non_empty(info.genre.clone()),
                url: non_empty(info.url.clone()),
                content_type: info.content_type.clone(),
                codec: codec.codec.clone(),
                bitrate: codec
                    .bitrate
                    .map(u64::from)
                    .or_else(|| info.bitrate.as_deref().and_then(|b| b.trim().parse().ok())),
                samplerate: codec.samplerate,
                channels: codec.channels,
                listeners: ApiListeners {
                    current: m.listener_count(),
                    peak: m.stats.listener_peak.load(Ordering::Relaxed),
                    max: m.settings.max_listeners,
                },
                uptime_seconds: seconds_since(m.started),
                started: iso8601(m.started),
                title: (!title.is_empty()).then_some(title),
                artist: non_empty(meta.artist),
                public: info.public,
                source: ApiSource {
                    kind: if relay.is_some() { "relay" } else { "push" },
                    ip: info.source_ip.clone(),
                    user_agent: non_empty(Some(info.user_agent.clone())),
                    fallback: m.fallback(),
                },
                bytes_read: m.stats.total_bytes_read.load(Ordering::Relaxed),
                bytes_sent: m.stats.total_bytes_sent.load(Ordering::Relaxed),
                relay: relay.map(|r| r.to_json()),
                p2psp: server.tasks.teams.json(&m.name),
            }
        })
        .collect();
    ApiStatus {
        server: ApiServer {
            id: config.server_id.clone(),
            host: config.hostname.clone(),
            location: config.location.clone(),
            admin: config.admin.clone(),
            started: iso8601(server.started),
            uptime_seconds: seconds_since(server.started),
            listeners: all.iter().map(|m| m.listener_count()).sum(),
            sources: all.len(),
        },
        mounts,
        // Like hidden mounts themselves, pushes of hidden mounts stay off the public document.
        pushes: server
            .tasks
            .pushes
            .status()
            .into_iter()
            .filter(|p| {
                config
                    .mount(&p.mount)
                    .is_none_or(|m| m.hidden != Some(true))
            })
            .collect(),
    }
}

/// The `/api/status` document as server-sent events, one a second, for the live page.
async fn api_events(Extension(server): Extension<Arc<Server>>) -> Response {
    use axum::response::IntoResponse;
    use axum::response::sse::{Event, KeepAlive, Sse};
    let stream = futures_util::stream::unfold((server, true), |(server, first)| async move {
        if !first {
            tokio::time::sleep(EVENT_INTERVAL).await;
        }
        if server.is_shutting_down() {
            return None;
        }
        let data = serde_json::to_string(&api_status_of(&server)).unwrap_or_else(|_| "{}".into());
        Some((
            Ok::<_, std::convert::Infallible>(Event::default().data(data)),
            (server, false),
        ))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// How often the live page is updated.
const EVENT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

async fn api_status(Extension(server): Extension<Arc<Server>>) -> Response {
    match serde_json::to_value(api_status_of(&server)) {
        Ok(v) => json_reply(&v),
        Err(e) => crate::web::error(500, &format!("status encoding failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::xml::Value;

    #[test]
    fn numbers_as_xml2json_types_them() {
        assert_eq!(scalar("128"), "128");
        assert_eq!(scalar("0"), "0");
        assert_eq!(scalar("-3"), "-3");
        assert_eq!(scalar("1.5"), "1.5");
        assert_eq!(scalar("007"), "\"007\"");
        assert_eq!(scalar("0.5"), "\"0.5\"");
        assert_eq!(scalar("1."), "\"1.\"");
        assert_eq!(scalar(""), "null");
        assert_eq!(scalar("true"), "true");
        assert_eq!(scalar("a\"b"), "\"a\\\"b\"");
    }

    fn source(mount: &str, title: &str) -> Element {
        Element::new("source")
            .attr("mount", mount)
            .with(Element::leaf("listeners", 1u64))
            .with(Element::leaf("title", title))
            .with(Element::leaf("user_agent", "x"))
    }

    fn globals() -> Element {
        Element::new("icestats")
            .with(Element::leaf("admin", "a"))
            .with(Element::leaf("host", "h"))
            .with(Element::leaf("sources", 0u64))
            .with(Element::leaf("stats_connections", Value::Int(0)))
    }

    #[test]
    fn source_is_absent_object_or_array() {
        assert_eq!(
            icecast_json(&globals()),
            r#"{"icestats":{"admin":"a","host":"h","dummy":null}}"#
        );
        let one = globals().with(source("/a", "T"));
        assert_eq!(
            icecast_json(&one),
            r#"{"icestats":{"admin":"a","host":"h","source":{"listeners":1,"title":"T","dummy":null}}}"#
        );
        let two = globals().with(source("/a", "T")).with(source("/b", ""));
        assert_eq!(
            icecast_json(&two),
            r#"{"icestats":{"admin":"a","host":"h","source":[{"listeners":1,"title":"T","dummy":null},{"listeners":1,"title":null,"dummy":null}]}}"#
        );
    }
}
