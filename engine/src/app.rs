//! The per-worker service: routing plus PocketBase's default middleware chain.

use crate::auth::{authenticate_in, AuthRecord};
use crate::error::{ApiError, ApiResult};
use crate::offload::CpuPool;
use crate::schema::SchemaState;
use futures_util::future::LocalBoxFuture;
use pocketbun_http::router::{Match, Router};
use pocketbun_http::{cors, HttpError, Method, Request, RequestHead, Response, Service};
use pocketbun_query::QueryCache;
use pocketbun_storage::{Reader, StorageError, Store};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// State shared by all workers.
pub struct Shared {
    /// Default request body limit (PocketBase: 32 MiB).
    pub body_limit: usize,
    pub store: Arc<Store>,
    /// Where password hashing and other CPU-heavy work runs, off the request workers.
    pub cpu: CpuPool,
    /// The collections and their compiled view for the query crate.
    pub schema: SchemaState,
    /// The application settings (`_params`), replaced as a whole when they change.
    pub settings: crate::settings::SettingsCell,
    /// Realtime clients of all workers and the inboxes events are published to.
    pub realtime: crate::realtime::Hub,
    /// What `serve`'s flags add around the API: allowed origins, the static files directory.
    pub web: Web,
}

/// The `serve` options the request path reads.
#[derive(Debug, Clone, Default)]
pub struct Web {
    /// `--origins`.
    pub cors: cors::Cors,
    /// `--publicDir` with `--indexFallback`; `None` serves no static files.
    pub public: Option<crate::public::PublicDir>,
}

/// What a handler gets besides the request: the worker's view of the application.
pub struct AppCtx {
    pub shared: Arc<Shared>,
    /// This worker's own read connection to `data.db`: reads never leave the worker.
    pub reader: Reader,
    /// This worker's compiled filters and sorts (no locks: one per worker).
    pub queries: RefCell<QueryCache>,
    /// This worker's realtime clients and their subscriptions.
    pub realtime: crate::realtime::Worker,
}

impl AppCtx {
    /// The auth record behind the request's `Authorization` header, if its token is valid.
    pub fn auth(&self, req: &Request) -> Option<AuthRecord> {
        let header = req.header("authorization")?;
        let schema = self.shared.schema.get();
        authenticate_in(&self.reader, &schema.collections, Some(header))
    }

    /// PocketBase's superuser-only guard: 401 for guests, 403 for other auth records.
    pub fn require_superuser(&self, req: &Request) -> Result<AuthRecord, ApiError> {
        match self.auth(req) {
            Some(auth) if auth.is_superuser() => Ok(auth),
            Some(_) => Err(ApiError::forbidden(Some(
                "The authorized record is not allowed to perform this action.",
            ))),
            None => Err(ApiError::unauthorized(Some(
                "The request requires valid record authorization token.",
            ))),
        }
    }
}

/// Compiled filters kept per worker; enough for every rule and the common client filters.
const QUERY_CACHE_ENTRIES: usize = 4096;

pub type Handler = Box<dyn Fn(Rc<AppCtx>, Request) -> LocalBoxFuture<'static, ApiResult>>;

/// A body limit that depends on the route's path parameters (a collection's own limit).
pub type DynamicLimit = fn(&AppCtx, &[(String, String)]) -> usize;

pub struct Route {
    handler: Handler,
    body_limit: Option<usize>,
    dynamic_limit: Option<DynamicLimit>,
}

#[derive(Default)]
pub struct Routes {
    router: Router<Route>,
}

impl Routes {
    pub fn add<F>(&mut self, method: Method, pattern: &str, handler: F)
    where
        F: Fn(Rc<AppCtx>, Request) -> LocalBoxFuture<'static, ApiResult> + 'static,
    {
        self.add_with_limit(method, pattern, None, handler);
    }

    /// A route whose body limit differs from the default (uploads, imports, backups).
    pub fn add_with_limit<F>(
        &mut self,
        method: Method,
        pattern: &str,
        limit: Option<usize>,
        handler: F,
    ) where
        F: Fn(Rc<AppCtx>, Request) -> LocalBoxFuture<'static, ApiResult> + 'static,
    {
        self.router.add(
            method,
            pattern,
            Route {
                handler: Box::new(handler),
                body_limit: limit,
                dynamic_limit: None,
            },
        );
    }

    /// A route whose body limit is computed per request from its path parameters.
    pub fn add_with_dynamic_limit<F>(
        &mut self,
        method: Method,
        pattern: &str,
        limit: DynamicLimit,
        handler: F,
    ) where
        F: Fn(Rc<AppCtx>, Request) -> LocalBoxFuture<'static, ApiResult> + 'static,
    {
        self.router.add(
            method,
            pattern,
            Route {
                handler: Box::new(handler),
                body_limit: None,
                dynamic_limit: Some(limit),
            },
        );
    }
}

pub struct App {
    ctx: Rc<AppCtx>,
    routes: Routes,
}

impl App {
    pub fn new(shared: Arc<Shared>) -> Result<Self, StorageError> {
        let mut routes = Routes::default();
        crate::apis::register(&mut routes);
        let reader = shared.store.reader()?;
        let realtime = crate::realtime::Worker::new(&shared.realtime);
        Ok(App {
            ctx: Rc::new(AppCtx {
                shared,
                reader,
                queries: RefCell::new(QueryCache::new(QUERY_CACHE_ENTRIES)),
                realtime,
            }),
            routes,
        })
    }

    pub(crate) fn raw_path(head: &RequestHead) -> &str {
        let target = head.target.as_str();
        // origin-form (`/path?query`) is what clients send; only absolute-form has a scheme
        let path = if target.starts_with('/') {
            target
        } else {
            match target.find("://") {
                Some(i) => target[i + 3..]
                    .find('/')
                    .map_or("/", |j| &target[i + 3 + j..]),
                None => target,
            }
        };
        path.split_once('?').map_or(path, |(p, _)| p)
    }

    /// The route's answer, and whether it came from the static files route (whose successful
    /// answers PocketBase leaves out of the request log).
    async fn dispatch(&self, mut req: Request) -> (ApiResult, bool) {
        let result = match self
            .routes
            .router
            .find(&req.head.method, Self::raw_path(&req.head))
        {
            Match::Found { value, params } => {
                req.params = params;
                (value.handler)(self.ctx.clone(), req).await
            }
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

/// The first `fields` query value, percent-decoded, when present and not empty (Go's
/// `url.Values.Get`). One linear pass: most requests have no `fields`.
pub(crate) fn fields_param(query: &str) -> Option<String> {
    query
        .split('&')
        .filter(|part| !part.contains(';'))
        .filter_map(|part| part.split_once('=').or(Some((part, ""))))
        .find(|(k, _)| crate::records::access::url_decode(k).as_deref() == Some("fields"))
        .and_then(|(_, v)| crate::records::access::url_decode(v))
        .filter(|v| !v.is_empty())
}

/// PocketBase applies `fields=` to every JSON answer of a handler (not to error
/// envelopes); a picker failure is a 400 since 0.40.
pub(crate) fn pick_fields(mut resp: Response, fields: &str) -> ApiResult {
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
pub(crate) async fn pick_fields_offloaded(
    ctx: &AppCtx,
    mut resp: Response,
    fields: String,
) -> ApiResult {
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
        .await
        .map_err(|_| ApiError::internal())??;
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
    let ip = crate::client_ip::client_ip(&settings, req);
    if crate::client_ip::ip_in_list(&settings.superuser_ips, &ip) {
        return Ok(());
    }
    Err(ApiError::forbidden(None))
}

/// Marks a response that may be embedded in frames (served files): PocketBase drops
/// `X-Frame-Options` for those. The mark is an empty `X-Frame-Options`, removed on the way out.
pub fn allow_framing(resp: &mut Response) {
    resp.headers.push(("X-Frame-Options".into(), "".into()));
}

/// The headers PocketBase's security middleware puts on every routed response (CORS
/// preflights are answered before it, so they get none: as in PocketBase 0.40).
fn add_security_headers(resp: &mut Response) {
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

impl Service for App {
    fn body_limit(&self, head: &RequestHead) -> usize {
        match self.routes.router.find(&head.method, Self::raw_path(head)) {
            Match::Found { value, params } => match value.dynamic_limit {
                Some(limit) => limit(&self.ctx, &params),
                None => value.body_limit.unwrap_or(self.ctx.shared.body_limit),
            },
            _ => self.ctx.shared.body_limit,
        }
    }

    async fn call(&self, req: Request) -> Response {
        // Go's ServeMux redirects an unclean path (`//`, `/./`, `/../`) before PocketBase's
        // middleware runs: no CORS or security headers, no request log
        let raw_path = Self::raw_path(&req.head);
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
        let origin = req.head.headers.get("origin").map(str::to_string);
        let fields = fields_param(&req.head.query);
        // the request log is queued, never awaited (crate::logs)
        let log = crate::logs::PendingRequest::begin(&self.ctx.shared, &req);
        let dev_line = crate::serve_options::dev()
            .then(|| format!("{} {}", req.head.method.as_str(), req.head.target));
        let (result, is_static) = match superuser_ip_check(&self.ctx, &req)
            .and_then(|()| crate::ratelimit::check(&self.ctx, &req))
        {
            Ok(()) => self.dispatch(req).await,
            Err(err) => (Err(err), false),
        };
        if let Some(line) = dev_line {
            crate::serve_options::print_request(&line, &result, is_static);
        }
        let result = match (result, fields) {
            (Ok(resp), Some(fields)) => pick_fields_offloaded(&self.ctx, resp, fields).await,
            (result, _) => result,
        };
        let mut resp = match result {
            Ok(resp) => {
                // successful static files stay out of the log, as in PocketBase
                if let Some(log) = log.filter(|_| !is_static) {
                    log.finish(resp.status, None);
                }
                resp
            }
            Err(err) => {
                if let Some(log) = log {
                    log.finish(err.status, Some(&err));
                }
                err.into_response()
            }
        };
        allowed.decorate(origin.as_deref(), &mut resp);
        add_security_headers(&mut resp);
        // Go's net/http writes the header keys sorted (stable: repeated keys keep their order)
        resp.headers.sort_by(|a, b| a.0.cmp(&b.0));
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
