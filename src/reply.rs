//! The replies axum's handlers (web, admin, status) build: a body with icecast's content type,
//! icecast's error pages and JSON. The middleware in `web` gives each one icecast's head.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::http::response::{CHALLENGE, error_page};

/// A reply with an icecast-style body and content type.
pub struct IcecastReply {
    status: u16,
    content_type: &'static str,
    body: String,
}

impl IcecastReply {
    pub fn new(status: u16, content_type: &'static str, body: String) -> Self {
        IcecastReply {
            status,
            content_type,
            body,
        }
    }
}

impl From<IcecastReply> for Response {
    fn from(r: IcecastReply) -> Response {
        let mut resp = Response::new(Body::from(r.body));
        *resp.status_mut() =
            StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(r.content_type),
        );
        resp
    }
}

/// icecast's error page (the front door's, from [`error_page`]).
pub fn error(code: u16, message: &str) -> Response {
    let (content_type, body) = error_page(code, message);
    let mut resp: Response = IcecastReply::new(code, content_type, body).into();
    if code == 401 {
        // Set here, not left to `icecast_head`, so that it follows Content-Type.
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(CHALLENGE.1),
        );
    }
    resp
}

pub fn json_reply(value: &serde_json::Value) -> Response {
    IcecastReply::new(200, "application/json; charset=utf-8", value.to_string()).into()
}
