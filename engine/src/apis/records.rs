//! The records API read path: `GET /api/collections/{collection}/records` (list/search)
//! and `GET /api/collections/{collection}/records/{id}` (view); the write routes (create,
//! update, delete) are in [`crate::apis::record_write`].

use crate::apis::extract::{collection, CollectionOf};
use crate::apis::read_cache;
use crate::apis::record_write;
use crate::ctx::{AppCtx, Routes};
use crate::error::{ApiError, ApiResult};
use crate::go::{query_get, query_pairs};
use crate::records::access::{now_ms, query_error, Caller};
use crate::records::{encode_big_rows, write_records, write_rows, Arena, BigRows};
use crate::recstore::rules;
use crate::schema::SchemaPair;
use pocketbun_http::{Method, Request, Response};
use pocketbun_query::{
    check_superuser_only, compile_list_unindexed, CompiledQuery, Value as QValue, DEFAULT_PER_PAGE,
    MAX_PER_PAGE,
};
use pocketbun_storage::collections::gojson;
use pocketbun_storage::rusqlite::Connection;
use std::rc::Rc;

pub fn register(routes: &mut Routes) {
    routes
        .add(
            Method::Get,
            "/api/collections/{collection}/records",
            |ctx, req| read_cache::boxed(ctx.clone(), list(ctx, req)),
        )
        .collection_limit(&["list"]);
    routes
        .add(
            Method::Get,
            "/api/collections/{collection}/records/{id}",
            |ctx, req| read_cache::boxed(ctx.clone(), view(ctx, req)),
        )
        .collection_limit(&["view"]);
    routes
        .add_with_dynamic_limit(
            Method::Post,
            "/api/collections/{collection}/records",
            collection_body_limit,
            |ctx, req| Box::pin(record_write::create(ctx, req)),
        )
        .collection_write_limit(&["create"]);
    routes
        .add_with_dynamic_limit(
            Method::Patch,
            "/api/collections/{collection}/records/{id}",
            collection_body_limit,
            |ctx, req| Box::pin(record_write::update(ctx, req)),
        )
        .collection_write_limit(&["update"]);
    routes
        .add(
            Method::Delete,
            "/api/collections/{collection}/records/{id}",
            |ctx, req| Box::pin(record_write::delete(ctx, req)),
        )
        .collection_limit(&["delete"]);
}

/// PocketBase's per-collection body limit of record writes: the default limit plus what the
/// collection's file (maxSize x maxSelect), JSON and editor fields may hold at most.
fn collection_body_limit(ctx: &AppCtx, params: &[(String, String)]) -> usize {
    use pocketbun_storage::collections::FieldKind;
    let base = ctx.shared.body_limit;
    let schema = ctx.shared.schema.get();
    let Some(coll) = params
        .iter()
        .find(|(k, _)| k == "collection")
        .and_then(|(_, name)| schema.collections.get(name))
    else {
        return base;
    };
    if coll.is_view() {
        return base;
    }
    let or = |size: i64, default: i64| if size <= 0 { default } else { size };
    let extra: i64 = coll
        .fields
        .iter()
        .map(|f| match &f.kind {
            FieldKind::File {
                max_size,
                max_select,
                ..
            } => or(*max_size, 5 << 20).saturating_mul((*max_select).max(1)),
            FieldKind::Json { max_size, .. } => or(*max_size, 1 << 20),
            FieldKind::Editor { max_size, .. } => or(*max_size, 5 << 20),
            _ => 0,
        })
        .fold(0i64, |a, b| a.saturating_add(b));
    base.saturating_add(usize::try_from(extra).unwrap_or(usize::MAX))
}

const ONLY_SUPERUSERS: &str = "Only superusers can perform this action.";

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.Atoi` of a non-empty parameter (`Err`: PocketBase's 400).
fn parse_int(s: &str) -> Result<i64, ApiError> {
    s.parse::<i64>()
        .map_err(|e| ApiError::bad_request(None).caused_by(e))
}

/// A 200 JSON body: the encoded response (`fields=` is applied to it on the way out, as
/// to every JSON answer: `crate::apis::answer`).
pub(crate) fn respond(body: String) -> Response {
    Response::with_body(200, "application/json", body.into_bytes())
}

async fn list(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let schema = ctx.shared.schema.get();
    let coll = collection(&schema, &req, CollectionOf::Any)?;
    let query = query_pairs(req.query());
    let caller = crate::apis::caller::caller(&ctx, &schema, &req, &query)?;
    let superuser = caller.superuser();
    if coll.list_rule.is_none() && !superuser {
        return Err(ApiError::forbidden(Some(ONLY_SUPERUSERS)));
    }
    if let Some(hit) = read_cache::lookup(&ctx, &req, &caller, schema.collections.version()) {
        return Ok(hit);
    }
    let filter = query_get(&query, "filter");
    let sort = query_get(&query, "sort");
    if !superuser {
        check_superuser_only(filter, sort).map_err(|e| query_error(&e))?;
    }

    let mut skip_total = false;
    let raw = query_get(&query, "skipTotal");
    if !raw.is_empty() {
        skip_total = parse_bool(raw).ok_or_else(|| ApiError::bad_request(None))?;
    }
    let mut page = 1i64;
    let raw = query_get(&query, "page");
    if !raw.is_empty() {
        page = parse_int(raw)?;
    }
    let mut per_page = DEFAULT_PER_PAGE as i64;
    let raw = query_get(&query, "perPage");
    if !raw.is_empty() {
        per_page = parse_int(raw)?;
    }

    let compiled = ctx
        .queries
        .borrow_mut()
        .list(&schema.query, &coll.name, filter, sort, &caller.info)
        .map_err(|e| query_error(&e))?;
    if page <= 0 {
        page = 1;
    }
    if per_page <= 0 {
        per_page = DEFAULT_PER_PAGE as i64;
    } else if per_page > MAX_PER_PAGE as i64 {
        per_page = MAX_PER_PAGE as i64;
    }

    let mut params = compiled.bind(&caller.info, now_ms());
    params.push(QValue::Integer(per_page));
    params.push(QValue::Integer(per_page.saturating_mul(page - 1)));

    let plain = straight_from_row(&coll, &query);
    let mut out = String::with_capacity(256 + 256 * per_page.min(64) as usize);
    out.push_str("{\"items\":[");
    let mut arena = Arena::default();
    let mut big = BigRows::new();
    // a rule or filter folded to FALSE for this caller: PocketBase's query finds nothing,
    // so the page is empty without touching the table
    let (items, total) = if compiled.never {
        (Vec::new(), if skip_total { -1 } else { 0 })
    } else {
        ctx.reader
            .read(|conn| {
                let sql = list_sql(
                    &ctx, conn, &schema, &coll.name, filter, sort, &caller, &compiled, &params,
                )?;
                let (items, total) = rules::list_page(
                    conn,
                    sql.page.as_deref().unwrap_or(&compiled.select_sql),
                    sql.count.as_deref().unwrap_or(&compiled.count_sql),
                    &params,
                    !skip_total,
                    |stmt, params| {
                        if plain {
                            let plans = &ctx.plans;
                            write_rows(
                                &coll, stmt, params, superuser, &mut out, ",", &mut big, plans,
                            )?;
                            Ok(Vec::new())
                        } else {
                            arena.load(&coll, stmt, params)
                        }
                    },
                )?;
                Ok((items, total.unwrap_or(-1)))
            })
            .map_err(|e| ApiError::bad_request(None).caused_by(e))?
    };

    let cpu = &ctx.shared.cpu;
    let mut out = if plain {
        encode_big_rows(cpu, &coll, superuser, out, big).await
    } else {
        crate::records::expand::enrich(&ctx, &schema, &caller, &mut arena, &items, &query)?;
        write_records(&ctx, arena, items.to_vec(), ",", out).await
    }?;
    out.push_str("],\"page\":");
    gojson::write_i64(&mut out, page);
    out.push_str(",\"perPage\":");
    gojson::write_i64(&mut out, per_page);
    out.push_str(",\"totalItems\":");
    gojson::write_i64(&mut out, total);
    out.push_str(",\"totalPages\":");
    let pages = if total < 0 {
        -1
    } else {
        (total + per_page - 1) / per_page
    };
    gojson::write_i64(&mut out, pages);
    out.push('}');
    Ok(respond(out))
}

/// The statements the list of `compiled` runs: its own, or the ones that scan instead of
/// searching an index by a bool ([`rules::list_sql`], compiled by
/// `query::compile_list_unindexed` from the same filter and sort).
#[allow(clippy::too_many_arguments)]
pub(crate) fn list_sql(
    ctx: &AppCtx,
    conn: &Connection,
    schema: &SchemaPair,
    collection: &str,
    filter: &str,
    sort: &str,
    caller: &Caller,
    compiled: &CompiledQuery,
    params: &[QValue],
) -> pocketbun_storage::Result<rules::ListSql> {
    let mut plans = ctx.page_plans.borrow_mut();
    let version = schema.query.version();
    Ok(rules::list_sql(
        conn,
        &mut plans,
        version,
        compiled,
        params,
        |then_by| {
            let q = compile_list_unindexed(
                &schema.query,
                collection,
                filter,
                sort,
                &caller.info,
                then_by,
            )
            .ok()?;
            // only the text differs: the same parameters in the same places
            (q.params.len() == compiled.params.len()).then_some((q.select_sql, q.count_sql))
        },
    )?)
}

async fn view(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    // everything up to the answer's encoding runs in `view_read`, a plain function: this
    // future then keeps across its awaits only what they need, not the schema, caller,
    // query, statement and parameters. The router boxes it and moves it on the way: each
    // move cost ~150 instructions of `memcpy` with them inside, ~30 now (callgrind).
    match view_read(&ctx, req)? {
        Viewed::Hit(resp) => Ok(resp),
        Viewed::Rows {
            coll,
            superuser,
            out,
            big,
        } => {
            let out = encode_big_rows(&ctx.shared.cpu, &coll, superuser, out, big).await?;
            Ok(respond(out))
        }
        Viewed::Records(arena, found) => {
            // boxed: auth records and expands only; inline, its state would size this future
            let out = Box::pin(write_records(
                &ctx,
                arena,
                vec![found],
                "",
                String::with_capacity(512),
            ))
            .await?;
            Ok(respond(out))
        }
    }
}

/// What [`view_read`] leaves to encode.
enum Viewed {
    /// The fresh-read cache's answer.
    Hit(Response),
    /// The record written straight from its row ([`straight_from_row`]), and the rows too big
    /// to encode on the worker ([`encode_big_rows`]).
    Rows {
        coll: std::sync::Arc<pocketbun_storage::collections::Collection>,
        superuser: bool,
        out: String,
        big: BigRows,
    },
    /// The record loaded and enriched (auth fields, expand), at this index of the arena.
    Records(Arena, usize),
}

/// The view's checks and read ([`view`]).
fn view_read(ctx: &Rc<AppCtx>, req: Request) -> Result<Viewed, ApiError> {
    let schema = ctx.shared.schema.get();
    let coll = collection(&schema, &req, CollectionOf::Any)?;
    let id = req.param("id").unwrap_or("").to_string();
    if id.is_empty() {
        return Err(ApiError::not_found(None));
    }
    let query = query_pairs(req.query());
    let caller = crate::apis::caller::caller(ctx, &schema, &req, &query)?;
    let superuser = caller.superuser();
    if coll.view_rule.is_none() && !superuser {
        return Err(ApiError::forbidden(Some(ONLY_SUPERUSERS)));
    }
    if let Some(hit) = read_cache::lookup(ctx, &req, &caller, schema.collections.version()) {
        return Ok(Viewed::Hit(hit));
    }
    let rule = coll
        .view_rule
        .as_deref()
        .filter(|r| !r.is_empty() && !superuser);
    let (sql, mut params): (Rc<str>, _) = match rule {
        None => (ctx.view_sql.borrow_mut().get(&coll.name), Vec::new()),
        Some(rule) => {
            let cond = ctx
                .queries
                .borrow_mut()
                .condition(&schema.query, &coll.name, rule, &caller.info, true)
                .map_err(|e| ApiError::not_found(None).caused_by(e))?;
            match cond.constant {
                // the rule folded for this caller: FALSE finds no record (PocketBase's 404),
                // TRUE reads the record as without a rule
                Some(false) => return Err(ApiError::not_found(None)),
                Some(true) if !cond.distinct => {
                    (ctx.view_sql.borrow_mut().get(&coll.name), Vec::new())
                }
                _ => rule_view(&coll, &cond, &caller),
            }
        }
    };
    params.push(QValue::Text(id));
    if straight_from_row(&coll, &query) {
        let mut out = String::with_capacity(512);
        let mut big = BigRows::new();
        let found = ctx
            .reader
            .read(|conn| {
                Ok(rules::view(conn, &sql, &params, |stmt, params| {
                    write_rows(
                        &coll, stmt, params, superuser, &mut out, "", &mut big, &ctx.plans,
                    )
                })?)
            })
            .map_err(|e| ApiError::not_found(None).caused_by(e))?;
        if found == 0 {
            return Err(ApiError::not_found(None));
        }
        return Ok(Viewed::Rows {
            coll,
            superuser,
            out,
            big,
        });
    }
    let mut arena = Arena::default();
    let found = ctx
        .reader
        .read(|conn| {
            Ok(rules::view(conn, &sql, &params, |stmt, params| {
                arena.load(&coll, stmt, params)
            })?)
        })
        .map_err(|e| ApiError::not_found(None).caused_by(e))?;
    if found.is_empty() {
        return Err(ApiError::not_found(None));
    }
    crate::records::expand::enrich(ctx, &schema, &caller, &mut arena, &found, &query)?;
    Ok(Viewed::Records(arena, found[0]))
}

/// The view statement with a rule's condition, and its parameters before the id.
fn rule_view(
    coll: &pocketbun_storage::collections::Collection,
    cond: &pocketbun_query::CompiledFilter,
    caller: &Caller,
) -> (Rc<str>, Vec<QValue>) {
    let params = cond.bind(&caller.info, now_ms());
    (
        rules::view_by_id(&coll.name, cond, params.len() + 1).into(),
        params,
    )
}

/// Whether the records of this read need nothing resolved after loading (no auth fields to
/// hide per record, no expand), so they go from SQLite's row straight to JSON.
fn straight_from_row(
    coll: &pocketbun_storage::collections::Collection,
    query: &[(String, String)],
) -> bool {
    !coll.is_auth() && query_get(query, "expand").is_empty()
}
