//! Admin commands over axum, with icecast2's auth rules: admin credentials, or the mount's
//! source credentials for commands on that mount. An unknown command is refused with 400
//! before auth, which libshout's `GET /admin/!POKE` probe relies on. This part serves the
//! metadata updates sources send; the rest of icecast's admin API builds on it.

mod metadata;

use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::get;

use crate::config::Config;
use crate::http::basic_auth;
use crate::http::request::secret_eq;
use crate::web::{IcecastReply, error};

pub fn routes() -> Router {
    Router::new()
        .route("/admin/metadata", get(metadata::metadata))
        .route("/admin/metadata.xsl", get(metadata::metadata))
        .route("/admin.cgi", get(metadata::admin_cgi))
        .route("/admin", get(unknown))
        .route("/admin/", get(unknown))
        .route("/admin/{*command}", get(unknown).post(unknown))
}

async fn unknown(_req: Request) -> Response {
    error(400, "Unrecognised command")
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
    let (user, pass) = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(basic_auth)?;
    if user == config.auth.admin_user && secret_eq(&pass, &config.auth.admin_password) {
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

/// `<?xml version="1.0"?>\n<iceresponse>…` as icecast answers admin commands.
pub fn iceresponse(message: &str, ok: bool) -> Response {
    let body = format!(
        "<?xml version=\"1.0\"?>\n<iceresponse><message>{}</message><return>{}</return></iceresponse>\n",
        crate::http::response::html_escape(message),
        if ok { 1 } else { 0 }
    );
    IcecastReply::new(200, "text/xml; charset=utf-8", body).into()
}
