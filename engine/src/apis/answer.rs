//! What the request pipeline does to every routed answer: PocketBase's `fields=` picking
//! and its security headers.

use crate::ctx::AppCtx;
use crate::error::ApiResult;
use pocketbun_http::cors::Cors;
use pocketbun_http::{FixedHeaders, Response};

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

/// The headers [`add_security_headers`] adds, with the `Vary: Origin` of CORS, as one block of
/// lines in the order Go writes them (sorted by name).
const SECURITY_LINES: &str = "Cross-Origin-Opener-Policy: same-origin\r\n\
    Vary: Origin\r\n\
    X-Content-Type-Options: nosniff\r\n\
    X-Frame-Options: SAMEORIGIN\r\n\
    X-Xss-Protection: 1; mode=block\r\n";

/// The first name of [`SECURITY_LINES`]: handler headers sorting before it come first.
const SECURITY_FIRST: &str = "Cross-Origin-Opener-Policy";

/// What the request pipeline adds to every routed answer on its way out: CORS (`origin` is
/// the request's), the security headers, and Go's order of header keys (sorted; stable, so
/// repeated keys keep their order).
///
/// When every header the answer has sorts before the security block (a view's
/// `Content-Type`, a CORS `Access-Control-Allow-Origin`), the block goes out as
/// [`FixedHeaders`] lines after them: the same bytes as pushing, sorting and writing each
/// (~1.9k instructions a view less). Anything else (a `Location`, a `Set-Cookie`, the
/// `X-Frame-Options` mark of [`allow_framing`]) takes the general path.
pub fn finish_headers(cors: &Cors, origin: Option<&str>, resp: &mut Response) {
    let before_block = resp
        .headers
        .iter()
        .all(|(name, _)| name.as_ref() < SECURITY_FIRST);
    if !before_block || !resp.fixed.lines.is_empty() {
        cors.decorate(origin, resp);
        add_security_headers(resp);
        resp.headers.sort_by(|a, b| a.0.cmp(&b.0));
        return;
    }
    if let Some(allowed) = origin.filter(|o| !o.is_empty()).and_then(|o| cors.allow(o)) {
        resp.headers
            .push(("Access-Control-Allow-Origin".into(), allowed.into()));
    }
    resp.headers.sort_by(|a, b| a.0.cmp(&b.0));
    resp.fixed = FixedHeaders {
        lines: SECURITY_LINES,
        at: resp.headers.len(),
    };
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

#[cfg(test)]
mod tests {
    use super::{add_security_headers, allow_framing, finish_headers};
    use pocketbun_http::cors::Cors;
    use pocketbun_http::Response;

    /// The headers of `resp` in the order they go out, fixed lines unfolded.
    fn listed(mut resp: Response) -> Vec<(String, String)> {
        resp.unfix_headers();
        resp.headers
            .into_iter()
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect()
    }

    /// `finish_headers` as it was before the fixed block: decorate, add, sort.
    fn general(cors: &Cors, origin: Option<&str>, mut resp: Response) -> Vec<(String, String)> {
        cors.decorate(origin, &mut resp);
        add_security_headers(&mut resp);
        resp.headers.sort_by(|a, b| a.0.cmp(&b.0));
        listed(resp)
    }

    /// The block, or the general path, gives the headers of the general path in the same
    /// order, whatever the handler set and whichever origin asked.
    #[test]
    fn the_fixed_block_lists_what_the_general_path_lists() {
        let answers: Vec<fn() -> Response> = vec![
            || Response::new(204),
            || Response::with_body(200, "application/json", b"{}".to_vec()),
            || {
                Response::with_body(200, "application/json", b"{}".to_vec())
                    .header("Access-Control-Allow-Origin", "handler")
            },
            || Response::new(302).header("Location", "/x"),
            || Response::new(200).header("Cache-Control", "max-age=60"),
            || Response::new(200).header("Vary", "Accept-Encoding"),
            || Response::new(200).header("content-type", "text/plain"),
            || {
                let mut r = Response::with_body(200, "image/png", vec![1]);
                allow_framing(&mut r);
                r
            },
        ];
        let corses = [Cors::default(), Cors::new(vec!["https://a.example".into()])];
        for (i, answer) in answers.iter().enumerate() {
            for cors in &corses {
                for origin in [None, Some(""), Some("https://a.example"), Some("https://b")] {
                    let mut fast = answer();
                    finish_headers(cors, origin, &mut fast);
                    let want = general(cors, origin, answer());
                    assert_eq!(listed(fast), want, "answer {i}, {cors:?}, {origin:?}");
                }
            }
        }
        let mut view = Response::with_body(200, "application/json", b"{}".to_vec());
        finish_headers(&Cors::default(), None, &mut view);
        assert_eq!(
            view.headers.len(),
            1,
            "a view's security headers are one block"
        );
        assert_eq!(view.get_header("x-frame-options"), Some("SAMEORIGIN"));
        assert_eq!(view.get_header("content-type"), Some("application/json"));
    }
}
