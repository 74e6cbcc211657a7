//! The per-worker service: routing plus PocketBase's default middleware chain.
//!
//! The state it drives requests with is in [`crate::ctx`]; what every answer gets on the way
//! out (`fields=`, security headers) is in [`crate::apis::answer`].

use crate::apis::answer::{
    add_security_headers, fields_param, finish_headers, pick_fields_offloaded,
};
use crate::ctx::{raw_path, AppCtx, BodyLimit, Matched, Route, Routes, Shared};
use crate::error::{ApiError, ApiResult};
use pocketbun_http::{cors, HttpError, Method, Request, RequestHead, Response, Service};
use pocketbun_storage::StorageError;
use std::rc::Rc;
use std::sync::Arc;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub struct App {
    ctx: Rc<AppCtx>,
    routes: Routes,
}

impl App {
    pub fn new(shared: Arc<Shared>) -> Result<Self, StorageError> {
        let mut routes = Routes::default();
        crate::apis::register(&mut routes);
        Ok(App {
            ctx: Rc::new(AppCtx::new(shared)?),
            routes,
        })
    }

    /// Starts this worker's idle housekeeping and the end of its read transactions
    /// ([`crate::idle`]); call it on the worker's runtime.
    pub fn start_idle_tick(&self) {
        crate::idle::start(&self.ctx);
        crate::idle::start_read_batches(&self.ctx);
    }

    /// The route's answer, and whether it came from the static files route (whose successful
    /// answers PocketBase leaves out of the request log).
    async fn dispatch(&self, route: Option<Rc<Route>>, req: Request) -> (ApiResult, bool) {
        let result = match route {
            Some(route) => (route.handler)(self.ctx.clone(), req).await,
            // PocketBase's catch-all static file route answers what no API route takes
            _ if matches!(req.head.method, Method::Get | Method::Head) => {
                return match &self.ctx.shared.web.public {
                    Some(public) => (public.serve(&req), true),
                    None => (Err(ApiError::not_found(Some("File not found."))), true),
                };
            }
            _ => Err(ApiError::not_found(None)),
        };
        (result, false)
    }
}

/// PocketBase's superuser IP allow-list, applied where the request's token is loaded: any
/// request carrying a valid superuser token from an IP outside `superuserIPs` is refused with
/// 403 before routing (and before the rate limiter, which runs after authentication), so a
/// token issued before the list was set, or from an allowed IP, is useless elsewhere. The
/// list is usually empty: then this costs one settings snapshot clone, and no token check.
fn superuser_ip_check(ctx: &AppCtx, req: &Request) -> Result<(), ApiError> {
    if req.header("authorization").is_none() {
        return Ok(());
    }
    let settings = ctx.shared.settings.get();
    if settings.superuser_ips.is_empty() {
        return Ok(());
    }
    if !ctx.auth(req).is_some_and(|a| a.is_superuser()) {
        return Ok(());
    }
    let ip = crate::apis::extract::client_ip(&settings.trusted_proxy, req);
    if crate::client_ip::ip_in_list(&settings.superuser_ips, &ip) {
        return Ok(());
    }
    Err(ApiError::forbidden(None))
}

/// The TXID holding a committed write, in the answer's header and cookie
/// ([`crate::replicate::ryw`]): [`Positions::covering`] (~2 ms through Litestream's control
/// socket, shared by concurrent writes; no sync when one ran in the last 10 ms), or an exact
/// sync that waits for the upload when the caller asked for durability. Without a position
/// (Litestream down or restarting) the answer goes without them.
///
/// [`Positions::covering`]: crate::replicate::position::Positions::covering
async fn add_txid(ctx: &AppCtx, resp: &mut Response, durable: bool) {
    use crate::replicate::{position, ryw};
    let positions = &ctx.shared.replication.position;
    let txid = if durable {
        positions.sync(true).await.map(|p| p.txid)
    } else {
        positions.covering().await
    };
    if let Ok(txid) = txid {
        resp.headers
            .push((ryw::TXID_HEADER.into(), position::hex(txid).into()));
        resp.headers
            .push(("Set-Cookie".into(), ryw::cookie(txid).into()));
    }
}

impl Service for App {
    type Route = Matched;

    fn route(&self, head: &RequestHead) -> (Matched, usize) {
        let matched = self.routes.resolve(head);
        let limit = match matched.route.as_deref().map(|r| r.body_limit) {
            Some(BodyLimit::Fixed(limit)) => limit,
            Some(BodyLimit::PerRequest(limit)) => limit(&self.ctx, &matched.params),
            Some(BodyLimit::Default) | None => self.ctx.shared.body_limit,
        };
        (matched, limit)
    }

    async fn call(&self, matched: Matched, mut req: Request) -> Response {
        // Go's ServeMux redirects an unclean path (`//`, `/./`, `/../`) before PocketBase's
        // middleware runs: no CORS or security headers, no request log
        let raw_path = raw_path(&req.head);
        if let Some(resp) = pocketbun_http::router::unclean_path_redirect(
            &req.head.method,
            raw_path,
            &req.head.query,
        ) {
            return resp;
        }
        let allowed = &self.ctx.shared.web.cors;
        if cors::is_preflight(&req.head) {
            return allowed.preflight(&req.head);
        }
        // The rare steps below (and the request log's, only there when logs are on) are boxed
        // futures: inline, each made this future (moved on its way to the connection's task)
        // as big as its own state.
        // A read replica hands writes to the primary, whose answer goes back as it is
        let replica = self.ctx.shared.replication.follower.active();
        if replica && crate::apis::proxy::wanted(&self.ctx, &req) {
            return Box::pin(crate::apis::proxy::forward(&self.ctx, req)).await;
        }
        // ... and a read that wants data newer than its copy, unless the copy catches up soon
        if replica && Box::pin(crate::apis::proxy::read_too_new(&self.ctx, &req)).await {
            return Box::pin(crate::apis::proxy::forward(&self.ctx, req)).await;
        }
        // a primary with replication tells a write's TXID (crate::replicate::ryw)
        let replication = &self.ctx.shared.replication;
        let txid_wanted =
            replication.position.active() && !matches!(req.head.method, Method::Get | Method::Head);
        let replica_read =
            replication.follower.active() && matches!(req.head.method, Method::Get | Method::Head);
        let durable = txid_wanted
            && crate::replicate::ryw::durable(req.header(crate::replicate::ryw::DURABLE_HEADER));
        let origin = req.head.headers.get("origin").map(str::to_string);
        let fields = fields_param(&req.head.query);
        // the request log is queued, never awaited (crate::logs)
        let log = crate::logs::PendingRequest::begin(
            &self.ctx.shared.logs,
            &self.ctx.shared.settings,
            || crate::apis::extract::request_meta(&req),
        );
        let dev_line = self
            .ctx
            .shared
            .web
            .dev
            .then(|| format!("{} {}", req.head.method.as_str(), req.head.target));
        req.params = matched.params;
        let (result, is_static) = match superuser_ip_check(&self.ctx, &req)
            .and_then(|()| crate::ratelimit::check(&self.ctx, &req, matched.route.as_deref()))
        {
            Ok(()) => self.dispatch(matched.route, req).await,
            Err(err) => (Err(err), false),
        };
        if let Some(line) = dev_line {
            crate::serve_options::print_request(&line, &result, is_static);
        }
        let result = match (result, fields) {
            (Ok(resp), Some(fields)) => {
                Box::pin(pick_fields_offloaded(&self.ctx, resp, fields)).await
            }
            (result, _) => result,
        };
        let mut resp = match result {
            Ok(resp) => {
                // successful static files stay out of the log, as in PocketBase
                if let Some(log) = log.filter(|_| !is_static) {
                    Box::pin(log.finish(&self.ctx.shared.logs, resp.status, None)).await;
                }
                resp
            }
            Err(err) => {
                if let Some(log) = log {
                    Box::pin(log.finish(&self.ctx.shared.logs, err.status, Some(&err))).await;
                }
                err.into_response()
            }
        };
        if txid_wanted && (200..300).contains(&resp.status) {
            Box::pin(add_txid(&self.ctx, &mut resp, durable)).await;
        }
        // a replica's own read from a copy known to trail the primary says so
        if replica_read {
            if let Some(behind) = replication.stale() {
                resp.headers.push((
                    crate::replicate::ryw::STALE_HEADER.into(),
                    behind.as_secs().to_string().into(),
                ));
            }
        }
        // Go's net/http writes the header keys sorted (stable: repeated keys keep their order)
        finish_headers(allowed, origin.as_deref(), &mut resp);
        resp
    }

    fn error_response(&self, err: &HttpError) -> Response {
        match err.kind {
            // errors PocketBase's middleware answers with its own envelope
            pocketbun_http::HttpErrorKind::BodyTooLarge
            | pocketbun_http::HttpErrorKind::HandlerPanic => {
                let mut resp = ApiError::from(err).into_response();
                resp.headers.push(("Vary".into(), "Origin".into()));
                add_security_headers(&mut resp);
                resp
            }
            // protocol errors are answered by Go's net/http before PocketBase sees them
            _ => pocketbun_http::default_error_response(err),
        }
    }
}
