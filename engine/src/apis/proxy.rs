//! On a read replica (`serve --replica-of`), the requests that must reach the primary and
//! their forwarding ([`crate::replicate::proxy`]): every write (any method but GET/HEAD:
//! records, batch, auth flows, settings, collections, backups, logs, crons, `/api/sql`), and
//! the reads of state only the primary holds (backups, logs, crons; files while they are on
//! local storage). The primary's answer goes back unchanged (status, headers with Go's
//! spelling, body), so an SDK cannot tell. Realtime goes to the primary as well (the SSE
//! stream is relayed chunk by chunk, its subscriptions and the OAuth2 redirect follow it):
//! the primary sees every write, so its events and rule checks are complete.
//! A read asking for data newer than the follower's copy goes there too
//! ([`read_too_new`], [`crate::replicate::ryw`]).
//!
//! A primary that cannot be reached gets 503 with PocketBase's error envelope.

use crate::ctx::AppCtx;
use crate::error::ApiError;
use crate::replicate::{proxy, ryw};
use pocketbun_http::{Body, Method, Request, Response};

/// Request headers not forwarded: hop-by-hop ones (RFC 9110 §7.6.1) and those the client
/// library sets itself (`Host`, `Content-Length`).
const DROP_REQUEST: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "upgrade",
    "host",
    "content-length",
    "expect",
];
/// Answer headers not copied: framing, which our writer sets for the body it sends.
const DROP_ANSWER: [&str; 4] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
];

/// Whether this request goes to the primary (always false on a primary).
pub fn wanted(ctx: &AppCtx, req: &Request) -> bool {
    if !ctx.shared.replication.follower.active() {
        return false;
    }
    let path = req.head.path.as_str();
    // with `--nats` the replica serves its own SSE clients and routes the rest by client id
    if ctx.shared.cluster.is_some() && (path == "/api/realtime" || path == "/api/oauth2-redirect") {
        return false;
    }
    let under = |prefix: &str| {
        path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    match req.head.method {
        Method::Get | Method::Head => {
            under("/api/backups")
                || under("/api/logs")
                || under("/api/crons")
                || (under("/api/files") && !ctx.shared.settings.get().s3.enabled)
                // realtime runs on the primary, which sees every write: the SSE stream, its
                // subscriptions and the OAuth2 redirect that reaches an SSE client
                || path == "/api/realtime"
                || path == "/api/oauth2-redirect"
        }
        _ => true,
    }
}

/// The caller of `req` for read-your-writes: its client IP and `Authorization` header.
fn caller(ctx: &AppCtx, req: &Request) -> u64 {
    let ip = crate::apis::extract::client_ip(&ctx.shared.settings.get().trusted_proxy, req);
    ryw::caller_key(&ip, req.header("authorization"))
}

/// On a replica, whether the GET/HEAD `req` wants data newer than the follower has applied
/// (its TXID header or cookie, or its caller's last forwarded write) and the follower did
/// not catch up within [`ryw::WAIT_BUDGET`]: then it goes to the primary.
pub async fn read_too_new(ctx: &AppCtx, req: &Request) -> bool {
    let rep = &ctx.shared.replication;
    if !rep.follower.active() || !matches!(req.head.method, Method::Get | Method::Head) {
        return false;
    }
    let asked = ryw::requested(req.header(ryw::TXID_HEADER), req.header("cookie"));
    // the caller (client IP, a hash) only while some caller is remembered
    let mine = (rep.ryw.remembers_any())
        .then(|| rep.ryw.remembered(caller(ctx, req)))
        .flatten();
    let want = asked.max(mine);
    match want {
        Some(txid) if txid > rep.follower.applied() => !rep.wait_for(txid).await,
        _ => false,
    }
}

/// Forwards `req` to the primary and answers with its answer, or 503. The TXID of a
/// forwarded write's answer is remembered for its caller ([`ryw::Ryw::remember`]).
pub async fn forward(ctx: &AppCtx, req: Request) -> Response {
    let rep = &ctx.shared.replication;
    let Some(base) = rep.follower.primary() else {
        return ApiError::new(503, "No primary to forward to.").into_response();
    };
    let writer =
        (!matches!(req.head.method, Method::Get | Method::Head)).then(|| caller(ctx, &req));
    let mut headers: Vec<(String, String)> = req
        .head
        .headers
        .iter()
        .filter(|(n, _)| !DROP_REQUEST.iter().any(|d| n.eq_ignore_ascii_case(d)))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    // the client's address, for the primary's log and rate limiter (it reads it when the
    // replica is among its trusted proxies)
    let peer = req.peer.ip().to_string();
    match headers
        .iter_mut()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-forwarded-for"))
    {
        Some((_, v)) => {
            v.push_str(", ");
            v.push_str(&peer);
        }
        None => headers.push(("X-Forwarded-For".into(), peer)),
    }
    let forward = proxy::Forward {
        base: base.to_string(),
        method: req.head.method.as_str().to_string(),
        target: req.head.target.clone(),
        headers,
        body: req.body,
    };
    if req.head.path == "/api/realtime" && matches!(req.head.method, Method::Get) {
        return match rep.proxy.forward_stream(forward).await {
            Ok(answer) => {
                let mut resp = Response::new(answer.status);
                copy_headers(&mut resp, answer.headers);
                resp.body = Body::Stream(Box::pin(answer.chunks));
                resp
            }
            Err(proxy::Unavailable(why)) => unavailable(&why),
        };
    }
    let sent = rep.proxy.forward(forward).await;
    match sent {
        Ok(answer) => {
            let txid = answer
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(ryw::TXID_HEADER))
                .and_then(|(_, v)| ryw::parse_txid(v));
            if let (Some(key), Some(txid)) = (writer, txid) {
                rep.ryw.remember(key, txid);
                rep.saw_primary(txid);
            }
            let mut resp = Response::new(answer.status);
            copy_headers(&mut resp, answer.headers);
            let head_only = matches!(req.head.method, Method::Head);
            if !answer.body.is_empty() && !head_only {
                resp.body = Body::Bytes(answer.body);
            }
            resp
        }
        Err(proxy::Unavailable(why)) => unavailable(&why),
    }
}

fn copy_headers(resp: &mut Response, headers: Vec<(String, String)>) {
    for (name, value) in headers {
        if !DROP_ANSWER.iter().any(|d| name.eq_ignore_ascii_case(d)) {
            resp.headers.push((go_name(&name).into(), value.into()));
        }
    }
}

/// 503 with PocketBase's envelope, and why on stderr.
fn unavailable(why: &str) -> Response {
    eprintln!("replica: {why}");
    let mut resp = ApiError::new(
        503,
        "The primary server is unavailable, please try again later.",
    )
    .into_response();
    crate::apis::answer::add_security_headers(&mut resp);
    resp
}

/// `name` as Go's `textproto.CanonicalMIMEHeaderKey` spells it (`content-type` ->
/// `Content-Type`), as the primary sent it before the client library lower-cased it.
fn go_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_names_as_go_writes_them() {
        assert_eq!(super::go_name("content-type"), "Content-Type");
        assert_eq!(
            super::go_name("x-content-type-options"),
            "X-Content-Type-Options"
        );
        assert_eq!(super::go_name("etag"), "Etag");
    }
}
