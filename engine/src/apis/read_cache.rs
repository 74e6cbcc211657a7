//! The fresh-read cache (issue 18): a worker answers a repeated records list or view from
//! memory, exactly as it would compute it again.
//!
//! * **Key**: method, path, the raw query string (so every parameter a filter, sort,
//!   `fields`, `expand`, page or `@request.query.*` reads is in it) and the caller: the auth
//!   record's collection and id as its token resolved *for this request* (a token is still
//!   verified on every hit, so an expired or revoked token never reaches an entry).
//! * **Validity**: while the handler runs, every statement it starts on the worker's
//!   connection is recorded (`pocketbun_storage::deps::recording`), the auth record's read
//!   included;
//!   the entry keeps the tables those statements read and the clock read before the first
//!   of them. A lookup serves the entry only while no commit stamped one of those tables (or
//!   the schema) since, and while the collections snapshot is the one it was computed with
//!   (the snapshot is replaced just after a schema change's commit). The writer stamps a
//!   commit's tables before answering its jobs, so a client that saw its write succeed never
//!   reads the older answer.
//! * **Never kept**: answers other than 200, answers over 1 MiB, and any computed with a
//!   value the key does not hold: a datetime macro, `@request.headers.*`,
//!   `@request.context` or `@request.body.*` (the caller's request info notes such a read:
//!   `pocketbun_query::Volatile`), or SQL whose value is not a function of the data
//!   (`random()`, SQLite's clock).
//! * **Memory**: per worker (`ctx::AppCtx::read_cache`: no lock, no shared cache line), least
//!   recently used first out, bounded by entries and bytes (`ctx/read_cache.rs`).
//!
//! The request log, the rate limiter, CORS, `fields=` and the security headers run around
//! the handler as before: a hit only replaces what the handler computes.

use crate::ctx::read_cache::{Entry, Want};
use crate::ctx::AppCtx;
use crate::error::ApiResult;
use crate::records::access::Caller;
use futures_util::future::LocalBoxFuture;
use pocketbun_http::{Body, Request, Response};
use pocketbun_storage::deps;
use std::future::Future;
use std::rc::Rc;

/// Larger answers are not kept (one entry must not push out hundreds).
const MAX_ENTRY_BYTES: usize = 1 << 20;

/// A cacheable handler's future, boxed for the router: inside [`tracked`] when the cache is
/// on, on its own when it is off. Boxing [`tracked`]'s future there too moved the handler's
/// future twice more per request (into `tracked`'s state, then pinned in it) for nothing:
/// ~300 instructions of `memcpy` a view while that future held the whole handler's state.
pub fn boxed<F>(ctx: Rc<AppCtx>, fut: F) -> LocalBoxFuture<'static, ApiResult>
where
    F: Future<Output = ApiResult> + 'static,
{
    match ctx.reader.generations() {
        None => Box::pin(fut),
        Some(_) => Box::pin(tracked(ctx, fut)),
    }
}

/// Runs a cacheable handler (`fut`), recording what it reads, and keeps its answer when it
/// asked to ([`lookup`] missed) and may be kept. Without read tracking (`--no-cache`) it
/// only awaits `fut`.
pub async fn tracked<F: Future<Output = ApiResult>>(ctx: Rc<AppCtx>, fut: F) -> ApiResult {
    let Some(gens) = ctx.reader.generations() else {
        return fut.await;
    };
    // read before the handler's first statement: a commit after this makes the answer stale
    let epoch = gens.clock();
    let mut stmts: Vec<String> = Vec::new();
    let mut want: Option<Want> = None;
    let mut fut = std::pin::pin!(fut);
    let out = std::future::poll_fn(|cx| {
        // scoped to this poll: other requests of the worker run between polls
        deps::recording(&mut stmts, || {
            let outer_want = ctx.read_cache.want.replace(want.take());
            let poll = fut.as_mut().poll(cx);
            want = ctx.read_cache.want.replace(outer_want);
            poll
        })
    })
    .await;
    if let (Ok(resp), Some(want)) = (&out, want) {
        if !want.volatile.read() {
            keep(&ctx, resp, want, epoch, &stmts);
        }
    }
    out
}

fn keep(ctx: &AppCtx, resp: &Response, want: Want, epoch: u64, stmts: &[String]) {
    let Body::Bytes(body) = &resp.body else {
        return;
    };
    let plain_json = matches!(resp.headers.as_slice(), [(name, value)]
        if name.eq_ignore_ascii_case("content-type") && value == "application/json");
    if resp.status != 200 || !plain_json || body.len() > MAX_ENTRY_BYTES {
        return;
    }
    let Some(deps) = ctx.reader.dependencies(stmts) else {
        return;
    };
    let entry = Entry {
        body: Rc::from(body.as_slice()),
        deps: deps.into_boxed_slice(),
        epoch,
        schema: want.schema,
    };
    ctx.read_cache.cache.borrow_mut().insert(want.key, entry);
}

/// The kept answer to `req` from `caller`, if it is still exact; on a miss, asks the
/// surrounding [`tracked`] to keep what the handler computes. `schema`: the version of the
/// collections snapshot the handler uses.
pub fn lookup(ctx: &AppCtx, req: &Request, caller: &Caller, schema: u64) -> Option<Response> {
    let gens = ctx.reader.generations()?;
    let key = key(req, caller);
    let hit = {
        let mut c = ctx.read_cache.cache.borrow_mut();
        let fresh = c
            .map
            .get(&key)
            .map(|e| e.schema == schema && gens.fresh(&e.deps, e.epoch));
        match fresh {
            Some(true) => {
                c.stats.hits += 1;
                c.map.peek(&key).map(|e| e.body.clone())
            }
            Some(false) => {
                c.remove(&key);
                c.stats.misses += 1;
                None
            }
            None => {
                c.stats.misses += 1;
                None
            }
        }
    };
    match hit {
        Some(body) => Some(Response::with_body(200, "application/json", body.to_vec())),
        None => {
            *ctx.read_cache.want.borrow_mut() = Some(Want {
                key,
                schema,
                volatile: caller.info.volatile.clone(),
            });
            None
        }
    }
}

fn key(req: &Request, caller: &Caller) -> String {
    let (coll, id) = caller
        .auth
        .as_ref()
        .map_or(("", ""), |a| (a.collection_id.as_str(), a.id.as_str()));
    let method = req.method().as_str();
    let mut k = String::with_capacity(
        method.len() + req.path().len() + req.query().len() + coll.len() + id.len() + 4,
    );
    for part in [method, req.path(), req.query(), coll, id] {
        k.push_str(part);
        k.push('\0');
    }
    k
}
