//! Sans-IO HTTP pieces the front door needs and hyper cannot provide: a liberal request-head
//! parser (LF-only lines, `ICE/1.0`, any header case), icecast-exact response bytes, Basic
//! auth and a chunked-body decoder; and the protocol half of the one HTTP/1 client
//! ([`client`], [`url`]). Nothing here touches a socket.

pub mod chunked;
pub mod client;
pub mod mount_name;
pub mod proxy_protocol;
pub mod request;
pub mod response;
pub mod url;

pub use chunked::Dechunker;
pub use request::{
    ParseError, RequestHead, basic_auth, find_head_end, find_head_end_or_blank, parse_head,
    percent_decode,
};
pub use response::{IcecastHead, error_response, reason};
