//! The application's state as handlers see it: [`Shared`] (one per process) and [`AppCtx`]
//! (one per worker, owned by its event loop), plus the route table handlers register into.
//!
//! Kept apart from `app` (the service that drives a request through the middleware) so that
//! handlers, the rate limiter and `app` all depend on this module and not on each other:
//! `app` -> `apis` -> `ctx` is the one direction.

use crate::auth::{authenticate_in, AuthRecord};
use crate::error::{ApiError, ApiResult};
use crate::state::Core;
use futures_util::future::LocalBoxFuture;
use pocketbun_http::router::Router;
use pocketbun_http::{Method, Request, RequestHead};
use pocketbun_query::QueryCache;
use pocketbun_storage::{Reader, StorageError};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

pub use crate::serve_options::Web;

/// State shared by all workers: the domain's [`Core`] plus what only the request path needs.
/// It dereferences to the `Core`, so `shared.store` and `shared.settings` read through.
pub struct Shared {
    pub core: Arc<Core>,
    /// Realtime clients of all workers and the inboxes events are published to.
    pub realtime: Arc<crate::realtime::Hub>,
    /// Who hears of committed record changes (the realtime hub, added at start-up).
    pub record_hooks: crate::records::event::RecordHooks,
    /// What `serve`'s flags add around the API: allowed origins, the static files directory.
    pub web: Web,
}

impl std::ops::Deref for Shared {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
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
    /// A worker's context: its own read connection, query cache and realtime registry.
    pub fn new(shared: Arc<Shared>) -> Result<Self, StorageError> {
        let reader = shared.store.reader()?;
        let realtime = crate::realtime::Worker::new(&shared.realtime);
        Ok(AppCtx {
            shared,
            reader,
            queries: RefCell::new(QueryCache::new(QUERY_CACHE_ENTRIES)),
            realtime,
        })
    }

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

/// A registered route: its handler and the body limit that applies before it runs.
pub struct Route {
    pub(crate) handler: Handler,
    pub(crate) body_limit: Option<usize>,
    pub(crate) dynamic_limit: Option<DynamicLimit>,
}

#[derive(Default)]
pub struct Routes {
    pub(crate) router: Router<Route>,
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
    path.split_once('?').map_or(path, |(p, _)| p)
}
