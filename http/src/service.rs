use crate::error::{HttpError, HttpErrorKind};
use crate::request::{Request, RequestHead};
use crate::response::Response;
use std::future::Future;

/// What the server calls for each request. One instance lives on each worker thread (built by
/// the factory given to [`crate::Server::start`]), so it may hold `Rc`s and per-core state.
pub trait Service: 'static {
    /// What the service resolves from a request's head before its body is read (its route,
    /// say), handed back to [`Service::call`] with the request, so that a route is looked up
    /// once per request (axum's `MatchedPath` idea: the match travels with the request).
    type Route;

    /// Resolves the head: the route for [`Service::call`], and the body limit, decided before
    /// any body byte is read (routes may raise or lower the default).
    fn route(&self, head: &RequestHead) -> (Self::Route, usize);

    fn call(&self, route: Self::Route, req: Request) -> impl Future<Output = Response>;

    /// The response for a protocol-level error or a handler panic. The default mirrors Go's
    /// net/http plain-text answers.
    fn error_response(&self, err: &HttpError) -> Response {
        default_error_response(err)
    }
}

pub fn default_error_response(err: &HttpError) -> Response {
    let status = err.status();
    if err.kind == HttpErrorKind::ExpectationFailed {
        return Response::new(status);
    }
    let reason = crate::write::reason(status);
    let text = match err.kind {
        HttpErrorKind::MissingHost => format!("{status} {reason}: missing required Host header"),
        HttpErrorKind::VersionNotSupported => {
            format!("{status} {reason}: unsupported protocol version")
        }
        _ => format!("{status} {reason}"),
    };
    Response::with_body(status, "text/plain; charset=utf-8", text.into_bytes())
}
