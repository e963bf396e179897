//! Public status documents over axum: icecast2's `/status-json.xsl` (byte-compatible JSON,
//! quirks included), `/status.xsl` and `/server_version.xsl` (small XHTML pages), and
//! floecast's own `/api/status` (clean JSON) with its live events. Each handler takes a
//! snapshot and renders it with [`crate::documents`]. Hidden mounts never appear; nothing
//! here changes state. Admin credentials only add P2PSP peers' addresses to `/api/…`.

use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::get;

use crate::admin::param;
use crate::documents::{ServerSnapshot, api, pages, status_json};
use crate::reply::IcecastReply;
use crate::reply::json_reply;
use crate::server::Server;
use crate::snapshot::{capture, identity};
use crate::web::Arrival;

pub fn routes() -> Router {
    Router::new()
        .route("/status-json.xsl", get(status_json))
        .route("/status.xsl", get(status_xsl))
        .route("/server_version.xsl", get(server_version))
        .route("/api/status", get(api_status))
        .route("/api/events", get(api_events))
}

/// `/status-json.xsl[?mount=/m]`.
async fn status_json(
    Extension(server): Extension<Arc<Server>>,
    Extension(arrival): Extension<Arrival>,
    req: Request,
) -> Response {
    let only = param(&req, "mount");
    let body = status_json::status_json(&seen(&server, arrival), only.as_deref());
    IcecastReply::new(200, "application/json; charset=UTF-8", body).into()
}

/// `/status.xsl`: the public overview as XHTML, sent as `text/xml` like icecast's.
async fn status_xsl(
    Extension(server): Extension<Arc<Server>>,
    Extension(arrival): Extension<Arrival>,
) -> Response {
    let body = pages::status_page(&seen(&server, arrival));
    IcecastReply::new(200, "text/xml; charset=UTF-8", body).into()
}

/// `/server_version.xsl`: who runs this server.
async fn server_version(Extension(server): Extension<Arc<Server>>) -> Response {
    let body = pages::server_version_page(&identity(&server, &server.config()));
    IcecastReply::new(200, "text/xml; charset=UTF-8", body).into()
}

/// The `/api/status` document as server-sent events, one a second, for the live page.
async fn api_events(
    Extension(server): Extension<Arc<Server>>,
    Extension(arrival): Extension<Arrival>,
    req: Request,
) -> Response {
    use axum::response::IntoResponse;
    use axum::response::sse::{Event, KeepAlive, Sse};
    let reader = reader(&server, &req);
    let stream = futures_util::stream::unfold((server, true), move |(server, first)| async move {
        if !first {
            tokio::time::sleep(EVENT_INTERVAL).await;
        }
        if server.is_shutting_down() {
            return None;
        }
        let status = api::api_status(&seen(&server, arrival), reader);
        let data = serde_json::to_string(&status).unwrap_or_else(|_| "{}".into());
        Some((
            Ok::<_, std::convert::Infallible>(Event::default().data(data)),
            (server, false),
        ))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The server now, as the reader sees it: listen URLs `https://` for a reader on TLS.
fn seen(server: &Server, arrival: Arrival) -> ServerSnapshot {
    let mut snap = capture(server, None);
    snap.identity.tls_port = arrival.tls_port;
    snap
}

/// How often the live page is updated.
const EVENT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// `GET /api/status`: stable field names, numbers as numbers, absent values `null` (schema
/// in [`crate::documents::api`]).
async fn api_status(
    Extension(server): Extension<Arc<Server>>,
    Extension(arrival): Extension<Arrival>,
    req: Request,
) -> Response {
    let reader = reader(&server, &req);
    match serde_json::to_value(api::api_status(&seen(&server, arrival), reader)) {
        Ok(v) => json_reply(&v),
        Err(e) => crate::reply::error(500, &format!("status encoding failed: {e}")),
    }
}

/// The admin (by its credentials) sees P2PSP peers' addresses; anyone else does not.
fn reader(server: &Server, req: &Request) -> api::Reader {
    match crate::admin::authorize(&server.config(), req, None) {
        Some(crate::admin::Caller::Admin) => api::Reader::Admin,
        _ => api::Reader::Anonymous,
    }
}
