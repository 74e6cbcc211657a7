//! The caller of a request as the domain sees it ([`Caller`]): the record its token names,
//! its method, headers and URL query, built once by the handler that needs it.

use crate::ctx::AppCtx;
use crate::error::ApiError;
use crate::records::access::Caller;
use crate::schema::SchemaPair;
use pocketbun_http::Request;

/// The caller of `req` (its `Authorization` token verified), with `query` its parsed URL query.
pub(crate) fn caller(
    ctx: &AppCtx,
    schema: &SchemaPair,
    req: &Request,
    query: &[(String, String)],
) -> Result<Caller, ApiError> {
    Caller::new(
        ctx,
        schema,
        ctx.auth(req),
        req.method().as_str(),
        req.head.headers.iter(),
        query,
    )
}
