//! What the request pipeline does to every routed answer: PocketBase's `fields=` picking
//! and its security headers.

use crate::ctx::AppCtx;
use crate::error::ApiResult;
use pocketbun_http::Response;

/// The first `fields` query value, percent-decoded, when present and not empty (Go's
/// `url.Values.Get`). One linear pass: most requests have no `fields`.
pub fn fields_param(query: &str) -> Option<String> {
    crate::go::query_first(query, "fields").filter(|v| !v.is_empty())
}

/// PocketBase applies `fields=` to every JSON answer of a handler (not to error
/// envelopes); a picker failure is a 400 since 0.40.
pub fn pick_fields(mut resp: Response, fields: &str) -> ApiResult {
    if let Some(body) = json_body(&mut resp) {
        let picked = crate::records::pick::apply_to_body(body, fields)?;
        resp.body = pocketbun_http::Body::Bytes(picked);
    }
    Ok(resp)
}

/// `fields` values longer than this are picked on the CPU pool whatever the answer's size:
/// picking costs about answer size x keys, and 1 MiB of keys (110,000) on a page of 30 small
/// records held the worker 492 ms of CPU (debug build); 4 KiB of keys is then ~2 ms.
const OFFLOAD_FIELDS_BYTES: usize = 4 << 10;

/// [`pick_fields`] for the request pipeline and each answer of a batch: an answer over
/// [`crate::apis::body::OFFLOAD_PARSE_BYTES`], or a `fields` over [`OFFLOAD_FIELDS_BYTES`], is
/// decoded, picked and re-encoded on the CPU pool: picking re-reads and re-writes the whole
/// answer. With it there, `?fields=` on a 48 MiB record costs the worker what the plain view
/// costs (1,356 vs 1,323 ms of CPU, debug build: writing the answer, still on the worker).
pub async fn pick_fields_offloaded(ctx: &AppCtx, mut resp: Response, fields: String) -> ApiResult {
    let Some(body) = json_body(&mut resp) else {
        return Ok(resp);
    };
    if body.len() <= crate::apis::body::OFFLOAD_PARSE_BYTES && fields.len() <= OFFLOAD_FIELDS_BYTES
    {
        return pick_fields(resp, &fields);
    }
    let body = std::mem::take(body);
    let picked = ctx
        .shared
        .cpu
        .run(move || crate::records::pick::apply_to_body(&body, &fields))
        .await??;
    resp.body = pocketbun_http::Body::Bytes(picked);
    Ok(resp)
}

/// The bytes of a JSON answer, the only kind `fields=` applies to.
fn json_body(resp: &mut Response) -> Option<&mut Vec<u8>> {
    let is_json = resp
        .headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("content-type") && v.starts_with("application/json"));
    match &mut resp.body {
        pocketbun_http::Body::Bytes(body) if is_json => Some(body),
        _ => None,
    }
}

/// Marks a response that may be embedded in frames (served files): PocketBase drops
/// `X-Frame-Options` for those. The mark is an empty `X-Frame-Options`, removed on the way out.
pub fn allow_framing(resp: &mut Response) {
    resp.headers.push(("X-Frame-Options".into(), "".into()));
}

/// The headers PocketBase's security middleware puts on every routed response (CORS
/// preflights are answered before it, so they get none: as in PocketBase 0.40).
pub fn add_security_headers(resp: &mut Response) {
    // 0.40: keeps a page opened with `target="_blank"` from reaching back (tab-nabbing)
    resp.headers
        .push(("Cross-Origin-Opener-Policy".into(), "same-origin".into()));
    resp.headers
        .push(("X-Content-Type-Options".into(), "nosniff".into()));
    let framing_allowed = resp
        .headers
        .iter()
        .position(|(n, v)| v.is_empty() && n.eq_ignore_ascii_case("X-Frame-Options"));
    match framing_allowed {
        Some(i) => {
            resp.headers.remove(i);
        }
        None => resp
            .headers
            .push(("X-Frame-Options".into(), "SAMEORIGIN".into())),
    }
    resp.headers
        .push(("X-Xss-Protection".into(), "1; mode=block".into()));
}
