//! The record write endpoints: create, update and delete. Each handler turns its request
//! into the write path's typed input ([`WriteInput`], a lazily read body) and renders the
//! outcome; rules, validation and the writer job are [`crate::records::save`]'s.

use crate::apis::body::{body_error, record_body};
use crate::apis::extract::{collection, CollectionOf};
use crate::ctx::AppCtx;
use crate::error::{ApiError, ApiResult};
use crate::go::query_pairs;
use crate::records::input::{BodyInput, WriteInput};
use crate::records::save::{self, Outcome, Prepared};
use crate::schema::SchemaPair;
use pocketbun_http::{Request, Response};
use pocketbun_storage::collections::Collection;
use std::rc::Rc;
use std::sync::Arc;

const UNSUPPORTED: &str = "Unsupported collection type.";

/// The route's collection, which must not be a view.
fn writable_collection(schema: &SchemaPair, req: &Request) -> Result<Arc<Collection>, ApiError> {
    let coll = collection(schema, req, CollectionOf::Any)?;
    if coll.is_view() {
        return Err(ApiError::bad_request(Some(UNSUPPORTED)));
    }
    Ok(coll)
}

/// The write path's input for `req`: its caller, query, target id (`""` on a create) and
/// body size.
fn write_input(ctx: &AppCtx, schema: &SchemaPair, req: &Request) -> Result<WriteInput, ApiError> {
    let query = query_pairs(req.query());
    let caller = crate::apis::caller::caller(ctx, schema, req, &query)?;
    Ok(WriteInput {
        caller,
        query,
        id: req.param("id").unwrap_or("").to_string(),
        body_len: req.body.len(),
    })
}

/// The request's body, read only when the write path asks for it (a failed bind answers
/// PocketBase's 400 for the request's content type).
fn unread_body<'a>(ctx: &'a AppCtx, req: &'a Request) -> BodyInput<'a> {
    BodyInput::Unread(Box::pin(async move {
        record_body(ctx, req)
            .await
            .map_err(|unbound| unbound.behind(body_error(req)))
    }))
}

/// A committed operation's HTTP answer.
pub(crate) fn outcome_response(outcome: Outcome) -> Response {
    match outcome {
        Outcome::Record(json) => crate::apis::records::respond(json),
        Outcome::Deleted => Response::new(204),
    }
}

async fn run(ctx: &AppCtx, prepared: Prepared) -> ApiResult {
    save::run_single(ctx, prepared).await.map(outcome_response)
}

pub(crate) async fn create(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let schema = ctx.shared.schema.get();
    let coll = writable_collection(&schema, &req)?;
    let input = write_input(&ctx, &schema, &req)?;
    let body = unread_body(&ctx, &req);
    let prepared = save::prepare_upsert(&ctx, input, body, schema, coll, None, None).await?;
    run(&ctx, prepared).await
}

pub(crate) async fn update(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let schema = ctx.shared.schema.get();
    let coll = writable_collection(&schema, &req)?;
    if req.param("id").unwrap_or("").is_empty() {
        return Err(ApiError::not_found(None));
    }
    let input = write_input(&ctx, &schema, &req)?;
    let body = unread_body(&ctx, &req);
    // an empty row: load it after the body and access checks
    let existing = Some(Vec::new());
    let prepared = save::prepare_upsert(&ctx, input, body, schema, coll, existing, None).await?;
    run(&ctx, prepared).await
}

pub(crate) async fn delete(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let schema = ctx.shared.schema.get();
    let coll = writable_collection(&schema, &req)?;
    let input = write_input(&ctx, &schema, &req)?;
    let body = unread_body(&ctx, &req);
    let prepared = save::prepare_delete(&ctx, input, body, schema, coll, None).await?;
    run(&ctx, prepared).await
}
