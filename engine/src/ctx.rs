//! The application's state as handlers see it: [`Shared`] (one per process) and [`AppCtx`]
//! (one per worker, owned by its event loop), plus the route table handlers register into.
//!
//! Kept apart from `app` (the service that drives a request through the middleware) so that
//! handlers, the rate limiter and `app` all depend on this module and not on each other:
//! `app` -> `apis` -> `ctx` is the one direction.

use crate::auth::{authenticate_in, AuthRecord};
use crate::error::{ApiError, ApiResult};
use crate::fixed_windows::FixedWindows;
use crate::records::db::Db;
use crate::settings::Settings;
use crate::state::Core;
use futures_util::future::LocalBoxFuture;
use pocketbun_http::router::{Match, Router};
use pocketbun_http::{Method, Request, RequestHead};
use pocketbun_storage::{Reader, StorageError};
use std::rc::Rc;
use std::sync::Arc;

pub use crate::serve_options::Web;

pub mod read_cache;

/// State shared by all workers: the domain's [`Core`] plus what only the request path needs.
/// It dereferences to the `Core`, so `shared.store` and `shared.settings` read through.
pub struct Shared {
    pub core: Arc<Core>,
    /// Realtime clients of all workers and the inboxes events are published to.
    pub realtime: Arc<crate::realtime::Hub>,
    /// The link to the other nodes of a cluster (`serve --nats`).
    pub cluster: Option<Arc<crate::cluster::Link>>,
    /// Who hears of committed record changes (the realtime hub, added at start-up).
    pub record_hooks: Arc<crate::records::event::RecordHooks>,
    /// What `serve`'s flags add around the API: allowed origins, the static files directory.
    pub web: Web,
    /// The rate limiter's counters, shared by all workers ([`crate::ratelimit`]).
    pub rate_windows: FixedWindows<Settings>,
    /// The cron scheduler `/api/crons` lists and runs (none on a read replica).
    pub crons: Option<Arc<crate::crons::Scheduler>>,
}

impl std::ops::Deref for Shared {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}

/// What a handler gets besides the request: the worker's view of the application. It
/// dereferences to the worker's [`Db`] (its read connection and compiled queries), which is
/// what the domain takes.
pub struct AppCtx {
    pub shared: Arc<Shared>,
    pub db: Db,
    /// This worker's realtime clients and their subscriptions.
    pub realtime: crate::realtime::Worker,
    /// This worker's read connection to `auxiliary.db` (the logs API), opened on first use.
    pub aux: std::cell::OnceCell<Rc<Reader>>,
    /// This worker's fresh-read cache (`crate::apis::read_cache`).
    pub read_cache: read_cache::ReadCache,
}

impl std::ops::Deref for AppCtx {
    type Target = Db;

    fn deref(&self) -> &Db {
        &self.db
    }
}

impl crate::realtime::Host for AppCtx {
    fn db(&self) -> &Db {
        &self.db
    }

    fn hub(&self) -> &Arc<crate::realtime::Hub> {
        &self.shared.realtime
    }

    fn worker(&self) -> &crate::realtime::Worker {
        &self.realtime
    }
}

impl AppCtx {
    /// A worker's context: its own read connection, query cache and realtime registry.
    pub fn new(shared: Arc<Shared>) -> Result<Self, StorageError> {
        let db = Db::new(shared.core.clone(), shared.record_hooks.clone())?;
        let realtime = crate::realtime::Worker::new(&shared.realtime);
        Ok(AppCtx {
            shared,
            db,
            realtime,
            aux: Default::default(),
            read_cache: Default::default(),
        })
    }

    /// The auth record behind the request's `Authorization` header, if its token is valid.
    pub fn auth(&self, req: &Request) -> Option<AuthRecord> {
        let header = req.header("authorization")?;
        let schema = self.shared.schema.get();
        authenticate_in(
            &self.reader,
            &self.verified,
            &schema.collections,
            Some(header),
        )
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

pub type Handler = Box<dyn Fn(Rc<AppCtx>, Request) -> LocalBoxFuture<'static, ApiResult>>;

/// A body limit that depends on the route's path parameters (a collection's own limit).
pub type DynamicLimit = fn(&AppCtx, &[(String, String)]) -> usize;

/// The body limit of a route, known when it is registered.
#[derive(Clone, Copy)]
pub enum BodyLimit {
    /// [`Shared`]'s default (PocketBase: 32 MiB).
    Default,
    /// Its own limit (uploads, imports, backups).
    Fixed(usize),
    /// Computed per request from the path parameters (a collection's own limit).
    PerRequest(DynamicLimit),
}

/// A registered route: its handler and what is known of it before it runs. The route is
/// resolved once per request, from the head, and travels with it ([`Matched`]): the body
/// limit, the rate limiter and dispatch all read it from there.
pub struct Route {
    pub(crate) handler: Handler,
    pub(crate) body_limit: BodyLimit,
    /// `METHOD /pattern` as registered.
    pub(crate) name: String,
    /// Set on the routes PocketBase rate-limits per collection (records, auth, files).
    pub(crate) collection_limit: Option<CollectionLimit>,
}

/// How PocketBase rate-limits a collection route: by its tags (`users:create`, `*:create`,
/// then the method+path labels), in a limiter of its own per collection and route.
pub struct CollectionLimit {
    pub tags: &'static [&'static str],
    /// Create/update: not limited on view collections (the handler refuses those first).
    pub writes: bool,
}

impl Route {
    /// Marks the route as rate-limited per collection (its `{collection}` parameter) with
    /// PocketBase's `tags` for it, e.g. `["authWithPassword", "auth"]`.
    pub fn collection_limit(&mut self, tags: &'static [&'static str]) -> &mut Route {
        self.collection_limit = Some(CollectionLimit {
            tags,
            writes: false,
        });
        self
    }

    /// [`Route::collection_limit`] for a record create or update.
    pub fn collection_write_limit(&mut self, tags: &'static [&'static str]) -> &mut Route {
        self.collection_limit = Some(CollectionLimit { tags, writes: true });
        self
    }
}

/// A request's route, resolved from its head before the body is read; `route` is `None`
/// when no route takes the method and path.
pub struct Matched {
    pub route: Option<Rc<Route>>,
    pub params: Vec<(String, String)>,
}

#[derive(Default)]
pub struct Routes {
    pub(crate) router: Router<Rc<Route>>,
}

impl Routes {
    pub fn add<F>(&mut self, method: Method, pattern: &str, handler: F) -> &mut Route
    where
        F: Fn(Rc<AppCtx>, Request) -> LocalBoxFuture<'static, ApiResult> + 'static,
    {
        self.insert(method, pattern, BodyLimit::Default, handler)
    }

    /// A route whose body limit differs from the default (uploads, imports, backups).
    pub fn add_with_limit<F>(
        &mut self,
        method: Method,
        pattern: &str,
        limit: Option<usize>,
        handler: F,
    ) -> &mut Route
    where
        F: Fn(Rc<AppCtx>, Request) -> LocalBoxFuture<'static, ApiResult> + 'static,
    {
        let limit = limit.map_or(BodyLimit::Default, BodyLimit::Fixed);
        self.insert(method, pattern, limit, handler)
    }

    /// A route whose body limit is computed per request from its path parameters.
    pub fn add_with_dynamic_limit<F>(
        &mut self,
        method: Method,
        pattern: &str,
        limit: DynamicLimit,
        handler: F,
    ) -> &mut Route
    where
        F: Fn(Rc<AppCtx>, Request) -> LocalBoxFuture<'static, ApiResult> + 'static,
    {
        self.insert(method, pattern, BodyLimit::PerRequest(limit), handler)
    }

    fn insert<F>(
        &mut self,
        method: Method,
        pattern: &str,
        body_limit: BodyLimit,
        handler: F,
    ) -> &mut Route
    where
        F: Fn(Rc<AppCtx>, Request) -> LocalBoxFuture<'static, ApiResult> + 'static,
    {
        let route = Route {
            handler: Box::new(handler),
            body_limit,
            name: format!("{} {pattern}", method.as_str()),
            collection_limit: None,
        };
        let stored = self.router.add(method, pattern, Rc::new(route));
        Rc::get_mut(stored).expect("a route is not shared while routes are registered")
    }

    /// Resolves a request's route from its head (HEAD falls back to GET).
    pub fn resolve(&self, head: &RequestHead) -> Matched {
        match self.router.find(&head.method, raw_path(head)) {
            Match::Found { value, params } => Matched {
                route: Some(value.clone()),
                params,
            },
            _ => Matched {
                route: None,
                params: Vec::new(),
            },
        }
    }
}

/// The path of the request target, without its query: what routing and the rate limiter match.
pub fn raw_path(head: &RequestHead) -> &str {
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
    // The parser split the query off at the target's first `?`, so the path is what is left
    // once `?` + query is cut off the end: no search for the `?` (`split_once` cost ~180
    // instructions a call, a byte loop ~340 on a view's target; called twice a request).
    // A target that does not end in its query has no `?` at all.
    path.strip_suffix(head.query.as_str())
        .and_then(|p| p.strip_suffix('?'))
        .unwrap_or(path)
}
