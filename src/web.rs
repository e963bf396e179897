//! Everything the front door does not stream goes through axum: the status page at `/`,
//! playlists (`.m3u`, `.xspf`), static files from the webroot, admin commands and icecast's
//! 404. A middleware opens each request's record, gives every reply icecast's head (HTTP/1.0,
//! icecast's reason phrase, the lines of `http::IcecastHead`) and hands the record to the
//! reply body, whose end logs the request. hyper still parses and writes HTTP/1 here (see
//! `net::prefixed` for why).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::net::Conn;
use axum::Extension;
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Version, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::{Bytes, BytesMut};
use hyper::body::{Frame, SizeHint};
use tower::ServiceExt;

use crate::http::IcecastHead;
use crate::http::response::html_escape;
use crate::net::RequestRecord;
use crate::net::prefixed::PrefixedIo;
use crate::reply::{IcecastReply, error};
use crate::server::Server;

/// Admin and web requests are small; bound how long one may hold a connection.
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// Upper bound for long-lived web connections (the live page's events).
const LONG_LIVED: Duration = Duration::from_secs(24 * 3600);

/// The peer address, put into request extensions by the front door.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// How the request reached us, put into request extensions by the front door: over TLS,
/// the local port it came to, so the URLs we hand back are `https://` there.
#[derive(Debug, Clone, Copy, Default)]
pub struct Arrival {
    pub tls_port: Option<u16>,
}

/// The routes; the server itself arrives per request as an `Arc<Server>` extension, so one
/// router serves any number of server instances (tests run several in one process).
fn router() -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/metrics", get(metrics))
        .merge(crate::admin::routes())
        .merge(crate::status::routes())
        .fallback(get(files).post(|| async { error(400, "unknown request") }))
        .layer(middleware::from_fn(icecast_shape))
}

/// Serve one request over hyper on a connection whose head we already read.
pub async fn serve(
    server: Arc<Server>,
    stream: Conn,
    raw_head: Bytes,
    rest: Bytes,
    peer: SocketAddr,
) {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    let router = ROUTER.get_or_init(router).clone();
    let arrival = Arrival {
        tls_port: stream
            .is_tls()
            .then(|| stream.tcp().local_addr().ok().map(|a| a.port()))
            .flatten(),
    };
    let mut prefix = BytesMut::with_capacity(raw_head.len() + rest.len());
    prefix.extend_from_slice(&raw_head);
    prefix.extend_from_slice(&rest);
    let io = hyper_util::rt::TokioIo::new(PrefixedIo::new(prefix.freeze(), stream));
    let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
        let router = router.clone();
        req.extensions_mut().insert(Peer(peer));
        req.extensions_mut().insert(arrival);
        req.extensions_mut().insert(server.clone());
        async move {
            Ok::<_, Infallible>(
                router
                    .oneshot(req.map(Body::new))
                    .await
                    .unwrap_or_else(|e| match e {}),
            )
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .title_case_headers(true)
        .serve_connection(io, service);
    // The live page's event stream runs for as long as the page is open.
    let deadline = if raw_head.starts_with(b"GET /api/events") {
        LONG_LIVED
    } else {
        REQUEST_DEADLINE
    };
    match tokio::time::timeout(deadline, conn).await {
        Ok(Err(e)) => tracing::debug!(%peer, "http connection error: {e}"),
        Err(_) => tracing::debug!(%peer, "http request deadline passed"),
        Ok(Ok(())) => {}
    }
}

/// Every axum request, in phases: its record is opened from the request as hyper parsed it,
/// the handler answers, the reply head gets icecast's shape, and the record rides along with
/// the body: when hyper is done with it (sent, or the connection ended), the record's drop
/// logs and counts the request.
async fn icecast_shape(
    Extension(server): Extension<Arc<Server>>,
    Extension(Peer(peer)): Extension<Peer>,
    req: Request,
    next: Next,
) -> Response {
    let mut record = open_record(&server, peer, &req);
    let mut resp = next.run(req).await;
    let status = resp.status().as_u16();
    icecast_head(&server, &mut resp);
    // Only a name that passed authentication is logged: an attempted one may be a typo'd
    // password, and icecast2 logs a failed login as `-`.
    if status == 401 {
        record.user = None;
    }
    record.status = status;
    // A body of known length is logged at that length (also for HEAD); one that streams
    // (the live page's events) is counted as it goes.
    let known = axum::body::HttpBody::size_hint(resp.body()).exact();
    record.bytes = known.unwrap_or(0);
    resp.map(|body| {
        Body::new(RecordedBody {
            body,
            record,
            count: known.is_none(),
        })
    })
}

/// The record of an axum request, from the request as hyper parsed it: the raw path, and `-`
/// for a missing User-Agent.
fn open_record(server: &Arc<Server>, peer: SocketAddr, req: &Request) -> RequestRecord {
    let version = match req.version() {
        Version::HTTP_10 => "1.0",
        _ => "1.1",
    };
    let mut record = RequestRecord::new(
        server,
        &peer,
        format!("{} {} HTTP/{version}", req.method(), req.uri().path()),
    );
    let text = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    record.user_agent = text(header::USER_AGENT).map(Into::into);
    record.referer = text(header::REFERER).map(Into::into);
    record.set_user(
        text(header::AUTHORIZATION)
            .and_then(crate::http::basic_auth)
            .map(|(user, _)| user),
    );
    // The route template, never the raw path, keeps the label set bounded.
    record.count_as_route(
        req.extensions()
            .get::<axum::extract::MatchedPath>()
            .map(|p| p.as_str().to_string())
            // The fallback route (playlists, static files, 404) has no template of its own.
            .unwrap_or_else(|| "files".to_string()),
    );
    record
}

/// icecast's head on an axum reply: hyper writes the status line, `Content-Length` and
/// `Date`; the version, the reason phrase and icecast's lines are set here from the same
/// [`IcecastHead`] the front door writes as bytes. Handlers' own headers come first.
fn icecast_head(server: &Server, resp: &mut Response) {
    let config = server.config();
    let extra = Server::extra_headers(&config, &[]);
    let status = resp.status().as_u16();
    let head = IcecastHead {
        code: status,
        server_id: &config.server_id,
        date: None,
        content_type: None,
        extra: &extra,
    };
    *resp.version_mut() = Version::HTTP_10;
    resp.extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(
            crate::http::reason(status).as_bytes(),
        ));
    let h = resp.headers_mut();
    for line in head.lines().into_iter().chain(head.extra_lines()) {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(line.name.as_bytes()),
            HeaderValue::from_str(&line.value),
        ) else {
            continue;
        };
        if line.default {
            h.entry(name).or_insert(value);
        } else {
            h.insert(name, value);
        }
    }
}

/// An axum reply body on its way out, carrying its request's record. hyper drops it once it
/// has taken the last bytes or the connection ended: that drop is the request's done phase.
struct RecordedBody {
    body: Body,
    record: RequestRecord,
    /// Count the bytes as they go (a body of unknown length).
    count: bool,
}

impl axum::body::HttpBody for RecordedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        if let (true, Poll::Ready(Some(Ok(f)))) = (this.count, &frame) {
            if let Some(data) = f.data_ref() {
                this.record.bytes += data.len() as u64;
            }
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The Prometheus text format.
async fn metrics(Extension(server): Extension<Arc<Server>>) -> Response {
    let mut resp = Response::new(Body::from(server.metrics.render()));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// Playlists, static files and 404.
async fn files(Extension(server): Extension<Arc<Server>>, req: Request) -> Response {
    let path = match crate::http::request::bytes_to_string(crate::http::percent_decode(
        req.uri().path(),
    )) {
        p if p.contains("/../") || p.ends_with("/..") => {
            return error(404, "The file you requested could not be found");
        }
        p => p,
    };
    if let Some(mount) = path.strip_suffix(".m3u") {
        return m3u(&server, &req, mount);
    }
    if let Some(mount) = path.strip_suffix(".xspf") {
        return xspf(&server, &req, mount);
    }
    if let Some(resp) = static_file(&server, &path).await {
        return resp;
    }
    error(404, "The file you requested could not be found")
}

/// The stream URL for playlists: `http://<Host>/m` when Host carries a port, else
/// `http://<hostname>:<port>/m`, as icecast builds it; `https://` (on the port the request
/// came to) for a request that came over TLS.
fn stream_url(server: &Server, req: &Request, mount: &str) -> String {
    let tls_port = req.extensions().get::<Arrival>().and_then(|a| a.tls_port);
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            h.rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
                && !h.contains(['/', ' ', '"', '<', '>'])
        });
    // The decoded name goes back out encoded: a name with spaces, `<`, `%` or line breaks
    // must not break the playlist line or the XML around it.
    let mount = &encode_path(mount);
    match (host, tls_port) {
        (Some(h), None) => format!("http://{h}{mount}"),
        (Some(h), Some(_)) => format!("https://{h}{mount}"),
        (None, None) => server.listen_url(mount),
        (None, Some(port)) => format!("https://{}:{port}{mount}", server.config().hostname),
    }
}

/// Percent-encode each segment of a path, keeping its slashes.
fn encode_path(path: &str) -> String {
    path.split('/')
        .map(crate::http::request::percent_encode)
        .collect::<Vec<_>>()
        .join("/")
}

fn m3u(server: &Server, req: &Request, mount: &str) -> Response {
    IcecastReply::new(
        200,
        "audio/x-mpegurl",
        format!("{}\r\n", stream_url(server, req, mount)),
    )
    .into()
}

/// icecast2's XSPF for a mount that does not exist: an empty track list.
const EMPTY_XSPF: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<playlist xmlns=\"http://xspf.org/ns/0/\" version=\"1\">\n  <title/>\n  <creator/>\n  <trackList/>\n</playlist>\n";

fn xspf(server: &Server, req: &Request, mount: &str) -> Response {
    let Some(m) = server.registry.get(mount) else {
        return IcecastReply::new(200, "application/xspf+xml", EMPTY_XSPF.to_string()).into();
    };
    let url = stream_url(server, req, mount);
    let (name, desc, title) = {
        let info = m.info().stream;
        (
            info.display_name().to_string(),
            info.display_description().to_string(),
            m.metadata().display(),
        )
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<playlist xmlns=\"http://xspf.org/ns/0/\" version=\"1\">\n  <title>{}</title>\n  <trackList>\n    <track>\n      <location>{}</location>\n      <title>{}</title>\n      <annotation>{}</annotation>\n    </track>\n  </trackList>\n</playlist>\n",
        html_escape(&name),
        html_escape(&url),
        html_escape(&title),
        html_escape(&desc)
    );
    IcecastReply::new(200, "application/xspf+xml", body).into()
}

/// A file from the configured webroot, if any.
async fn static_file(server: &Server, path: &str) -> Option<Response> {
    let root = server.config().paths.webroot.clone()?;
    let rel = path.trim_start_matches('/');
    if rel
        .split('/')
        .any(|seg| seg == ".." || seg.starts_with('.'))
    {
        return None;
    }
    let mut file = root.join(rel);
    if tokio::fs::metadata(&file).await.ok()?.is_dir() {
        file = file.join("index.html");
    }
    let data = tokio::fs::read(&file).await.ok()?;
    let mut resp = Response::new(Body::from(data));
    let mime = mime_for(&file.to_string_lossy());
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    Some(resp)
}

fn mime_for(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css",
        "js" => "text/javascript",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "xml" | "xsl" => "text/xml",
        "mp3" => "audio/mpeg",
        "ogg" | "oga" => "audio/ogg",
        "opus" => "audio/ogg",
        _ => "application/octet-stream",
    }
}

/// The live status page, embedded so `cargo run` serves it with no files around. An
/// `index.html` in the configured webroot replaces it.
const LIVE_PAGE: &str = include_str!("../static/index.html");

async fn status_page(Extension(server): Extension<Arc<Server>>) -> Response {
    if let Some(resp) = static_file(&server, "/index.html").await {
        return resp;
    }
    IcecastReply::new(200, "text/html; charset=utf-8", LIVE_PAGE.to_string()).into()
}

impl IntoResponse for IcecastReply {
    fn into_response(self) -> Response {
        self.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn icecast_head_follows_the_handlers_headers() {
        let server = Server::new(Config::default(), None);
        let mut resp = error(401, "");
        icecast_head(&server, &mut resp);
        assert_eq!(resp.version(), Version::HTTP_10);
        assert_eq!(
            resp.extensions()
                .get::<hyper::ext::ReasonPhrase>()
                .map(|r| r.as_bytes()),
            Some(&b"Authentication Required"[..])
        );
        let names: Vec<&str> = resp.headers().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "content-type",
                "www-authenticate",
                "server",
                "connection",
                "cache-control",
                "expires",
                "pragma",
                "access-control-allow-origin"
            ]
        );
        assert_eq!(resp.headers()[header::CONNECTION], "Close");
    }
}
