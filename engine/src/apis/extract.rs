//! Extractors: the typed inputs the domain takes, read off an HTTP request here, in the API
//! layer, so no domain function sees a `pocketbun_http::Request` (`.ci/layers.py` checks it).
//!
//! - [`conditional`]: the method and conditional/range headers of a file download
//!   ([`crate::files::serve::Conditional`]);
//! - [`request_meta`]: what the request log records ([`crate::logs::RequestMeta`]);
//! - [`client_ip`]: PocketBase's `RealIP` of a request ([`crate::client_ip`]);
//! - [`collection`]: the collection of a `/api/collections/{collection}/…` route, or
//!   PocketBase's 404 envelope.
//!
//! Bodies have theirs in [`crate::apis::body`] (records, JSON, forms) and
//! [`crate::apis::multipart`] (the one multipart parser).

use crate::client_ip::TrustedProxyConfig;
use crate::error::ApiError;
use crate::files::serve::Conditional;
use crate::logs::RequestMeta;
use crate::schema::SchemaPair;
use pocketbun_http::{Method, Request};
use pocketbun_storage::collections::Collection;
use std::sync::Arc;

/// Which collections a route takes, and so PocketBase's 404 message when its `{collection}`
/// parameter names none of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CollectionOf {
    /// Any collection (records, explain): "Missing collection context."
    Any,
    /// Any collection, as the file routes word it: "Missing or invalid collection context."
    Files,
    /// An auth collection: "Missing or invalid auth collection context."
    Auth,
    /// The collections API's own routes: PocketBase's generic 404 text.
    Model,
}

impl CollectionOf {
    fn missing(self) -> Option<&'static str> {
        match self {
            CollectionOf::Any => Some("Missing collection context."),
            CollectionOf::Files => Some("Missing or invalid collection context."),
            CollectionOf::Auth => Some("Missing or invalid auth collection context."),
            CollectionOf::Model => None,
        }
    }
}

/// The collection the route's `{collection}` parameter names (a name or an id) in `schema`,
/// or PocketBase's 404 envelope. A handler resolves it once and passes the `Arc` on.
pub(crate) fn collection(
    schema: &SchemaPair,
    req: &Request,
    of: CollectionOf,
) -> Result<Arc<Collection>, ApiError> {
    schema
        .collections
        .get(req.param("collection").unwrap_or(""))
        .filter(|c| of != CollectionOf::Auth || c.is_auth())
        .cloned()
        .ok_or_else(|| ApiError::not_found(of.missing()))
}

/// What a download request asks of the file: its method and conditional/range headers.
pub(crate) fn conditional(req: &Request) -> Conditional<'_> {
    Conditional::new(req.method(), req.head.headers.iter())
}

/// The request log's view of `req`. The three headers it records are found in one pass over
/// the headers (first values, as `Header.Get`), where three lookups took three.
pub(crate) fn request_meta<'a>(
    req: &'a Request,
) -> RequestMeta<'a, impl Fn(&str) -> Option<&'a str> + 'a> {
    let (mut referer, mut user_agent, mut authorization) = (None, None, None);
    for (name, value) in req.head.headers.iter() {
        let slot = match name.len() {
            7 if name.eq_ignore_ascii_case("referer") => &mut referer,
            10 if name.eq_ignore_ascii_case("user-agent") => &mut user_agent,
            13 if name.eq_ignore_ascii_case("authorization") => &mut authorization,
            _ => continue,
        };
        slot.get_or_insert(value);
    }
    RequestMeta {
        method: req.head.method.as_str(),
        is_get: req.head.method == Method::Get,
        target: &req.head.target,
        referer,
        user_agent,
        authorization,
        remote_ip: req.peer.ip(),
        last_header: move |name: &str| req.head.headers.last(name),
    }
}

/// The client IP of `req` (PocketBase's `RealIP`): the trusted proxy headers' IP, else the peer.
pub(crate) fn client_ip(proxy: &TrustedProxyConfig, req: &Request) -> String {
    crate::client_ip::client_ip(proxy, req.peer.ip(), |name| req.head.headers.last(name))
}
