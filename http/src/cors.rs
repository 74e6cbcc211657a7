//! Cross-origin requests as PocketBase answers them by default: any origin, the usual methods,
//! requested headers echoed back in preflight. Kept byte-compatible with what the real server
//! sends, since browsers cache these answers.

use crate::request::{Method, RequestHead};
use crate::response::Response;

const ALLOW_METHODS: &str = "GET,HEAD,PUT,PATCH,POST,DELETE";

/// Whether `head` is answered by [`preflight`] instead of a route. PocketBase answers every
/// OPTIONS request itself, preflight or not.
pub fn is_preflight(head: &RequestHead) -> bool {
    head.method == Method::Options
}

/// The 204 answer to an OPTIONS request.
pub fn preflight(head: &RequestHead) -> Response {
    let mut resp = Response::new(204);
    let origin = head.headers.get("origin");
    if origin.is_some() {
        if let Some(requested) = head.headers.get("access-control-request-headers") {
            resp.headers.push((
                "Access-Control-Allow-Headers".into(),
                requested.to_string().into(),
            ));
        }
        resp.headers
            .push(("Access-Control-Allow-Methods".into(), ALLOW_METHODS.into()));
        resp.headers
            .push(("Access-Control-Allow-Origin".into(), "*".into()));
    }
    resp.headers.push(("Vary".into(), "Origin".into()));
    if origin.is_some() {
        resp.headers
            .push(("Vary".into(), "Access-Control-Request-Method".into()));
        resp.headers
            .push(("Vary".into(), "Access-Control-Request-Headers".into()));
    }
    resp
}

/// Adds the CORS headers of a simple (non-preflight) response to a request that did or did
/// not carry an `Origin`.
pub fn decorate(has_origin: bool, resp: &mut Response) {
    if has_origin {
        resp.headers
            .push(("Access-Control-Allow-Origin".into(), "*".into()));
    }
    resp.headers.push(("Vary".into(), "Origin".into()));
}
