//! `POST /api/batch`: record creates, updates, upserts and deletes run all-or-nothing. Every
//! operation is prepared on the worker in order (body, rules, validation, password hashing
//! and file writes), then ONE writer job runs all their writes on one transaction; any
//! refusal rolls everything back and names the failing operation as PocketBase does.
//! Realtime events, replaced-file removal and the responses follow the commit.
//!
//! Later operations see what earlier ones did: while preparing, a row an earlier operation
//! creates, updates or deletes is taken as that operation leaves it, and once anything was
//! prepared the checks that read the database (update/delete/create rules, field checks such
//! as unique values and relation existence) run in the writer job on the batch's transaction.
//! Known differences from PocketBase, which runs each operation completely before the next:
//! - an auth collection's `manageRule` is evaluated on the state before the batch;
//! - a record changed by an earlier operation's cascade (a relation emptied by a delete) is
//!   prepared from its state before the batch; in the job an update takes the fields it does
//!   not set from the stored row, but its form checks (min/max select, required) and rules'
//!   `@request.body` saw the older values;
//! - when both fail, a rule failure found in the job is reported after a form validation
//!   error of the same operation (PocketBase reports the rule first);
//! - `expand` in a response is resolved after the commit, so it shows the batch's final
//!   state rather than the state right after that operation.

use crate::apis::body::{json_record_data, record_body, OFFLOAD_PARSE_BYTES};
use crate::apis::record_write::outcome_response;
use crate::ctx::{AppCtx, Routes};
use crate::error::{ApiError, ApiResult};
use crate::go::query_pairs;
use crate::records::access::Caller;
use crate::records::input::{BodyInput, RecordBody, Upload, WriteInput};
use crate::records::save::{
    batch_exists, prepare_delete, prepare_upsert, BatchState, Done, JobError, JobFail, Prepared,
};
use crate::schema::SchemaPair;
use pocketbun_http::{Body, Method, Request, Response};
use serde_json::{json, Map, Value};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The route's transport limit; the settings' `maxBodySize` is applied by the handler.
const DEFAULT_MAX_BODY: usize = 128 << 20;
const READ_FAILED: &str = "Failed to read the submitted batch data.";
const UNKNOWN: &str = "Something went wrong while processing your request.";
const TX_FAILED: &str = "Batch transaction failed.";
const TIMEOUT: &str = "batch transaction timeout";

pub fn register(routes: &mut Routes) {
    routes.add_with_limit(
        Method::Post,
        "/api/batch",
        Some(DEFAULT_MAX_BODY),
        |ctx, req| Box::pin(batch(ctx, req)),
    );
}

/// One sub-request as submitted.
pub(crate) struct Item {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Map<String, Value>,
    uploads: Vec<Upload>,
}

enum Action {
    Create(String),
    Update(String, String),
    Upsert(String),
    Delete(String, String),
}

/// The record action a sub-request names (`None`: not a batchable action).
fn action(method: &str, url: &str) -> Option<(Action, String)> {
    let rest = url.strip_prefix("/api/collections/")?;
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, q.to_string()),
        None => (rest, String::new()),
    };
    let (coll, tail) = path.split_once('/')?;
    if coll.is_empty() {
        return None;
    }
    let coll = coll.to_string();
    let id = match tail.strip_prefix("records") {
        Some("") => None,
        Some(t) => {
            let id = t.strip_prefix('/')?;
            if id.is_empty() || id.contains('/') {
                return None;
            }
            Some(id.to_string())
        }
        None => return None,
    };
    let act = match (method, id) {
        ("POST", None) => Action::Create(coll),
        ("PUT", None) => Action::Upsert(coll),
        ("PATCH", Some(id)) => Action::Update(coll, id),
        ("DELETE", Some(id)) => Action::Delete(coll, id),
        _ => return None,
    };
    Some((act, query))
}

pub(crate) fn read_items(body: RecordBody) -> Result<Vec<Item>, ApiError> {
    let bad = || ApiError::bad_request(Some(READ_FAILED));
    let mut items = Vec::new();
    match body.data.get("requests") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for v in list {
                let Value::Object(m) = v else {
                    return Err(bad());
                };
                let text = |k: &str| match m.get(k) {
                    None | Some(Value::Null) => Ok(String::new()),
                    Some(Value::String(s)) => Ok(s.clone()),
                    _ => Err(bad()),
                };
                let headers = match m.get("headers") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Object(h)) => h
                        .iter()
                        .map(|(k, v)| match v {
                            Value::String(s) => Ok((k.clone(), s.clone())),
                            _ => Err(bad()),
                        })
                        .collect::<Result<_, _>>()?,
                    _ => return Err(bad()),
                };
                let body = match m.get("body") {
                    None | Some(Value::Null) => Map::new(),
                    Some(Value::Object(b)) => b.clone(),
                    _ => return Err(bad()),
                };
                items.push(Item {
                    method: text("method")?,
                    url: text("url")?,
                    headers,
                    body,
                    uploads: Vec::new(),
                });
            }
        }
        Some(_) => return Err(bad()),
    }
    // files come as `requests.N.field` or `requests[N].field`
    for up in body.uploads {
        let Some(rest) = up.key.strip_prefix("requests") else {
            continue;
        };
        let parsed = if let Some(r) = rest.strip_prefix('.') {
            r.split_once('.')
        } else if let Some(r) = rest.strip_prefix('[') {
            r.split_once("].")
        } else {
            None
        };
        let Some((n, field)) = parsed else {
            continue;
        };
        let Some(i) = n.parse::<usize>().ok().filter(|i| i.to_string() == n) else {
            continue;
        };
        if let Some(item) = items.get_mut(i) {
            // PocketBase hands each file on under the name it stored it as, which the
            // record then suffixes again; the record reuses this sniff (a JSON file is
            // parsed whole to be sniffed, so twice would double that cost)
            let sniffed = crate::records::files::sniff(&up.data);
            item.uploads.push(Upload {
                key: field.to_string(),
                original_name: crate::records::files::stored_name(&up.original_name, sniffed.1),
                data: up.data,
                sniffed: Some(sniffed),
            });
        }
    }
    Ok(items)
}

pub(crate) fn validate(items: &[Item], max: usize) -> Result<(), ApiError> {
    let invalid = |data: Value| {
        let mut e = ApiError::bad_request(Some("Invalid batch request data."));
        if let Value::Object(m) = data {
            e.data = m;
        }
        e
    };
    if items.is_empty() {
        return Err(invalid(json!({"requests": {
            "code": "validation_required", "message": "Cannot be blank."}})));
    }
    if items.len() > max {
        return Err(invalid(json!({"requests": {
            "code": "validation_length_too_long",
            "message": format!("The length must be no more than {max}."),
            "params": {"max": max, "min": 0}}})));
    }
    let mut errs = Map::new();
    for (i, it) in items.iter().enumerate() {
        let mut e = Map::new();
        if it.method.is_empty() {
            e.insert(
                "method".into(),
                json!({"code": "validation_required", "message": "Cannot be blank."}),
            );
        } else if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&it.method.as_str()) {
            e.insert(
                "method".into(),
                json!({"code": "validation_in_invalid", "message": "Must be a valid value."}),
            );
        }
        if it.url.is_empty() {
            e.insert(
                "url".into(),
                json!({"code": "validation_required", "message": "Cannot be blank."}),
            );
        } else if it.url.chars().count() > 2000 {
            e.insert(
                "url".into(),
                json!({"code": "validation_length_too_long",
                    "message": "The length must be no more than 2000.",
                    "params": {"max": 2000, "min": 0}}),
            );
        }
        if !e.is_empty() {
            errs.insert(i.to_string(), Value::Object(e));
        }
    }
    if !errs.is_empty() {
        return Err(invalid(json!({ "requests": errs })));
    }
    Ok(())
}

/// The failure response naming operation `index`.
fn failed_at(index: usize, err: ApiError) -> ApiError {
    let response = json!({"data": err.data, "message": err.message, "status": err.status});
    let mut e = ApiError::bad_request(Some(TX_FAILED));
    e.data.insert(
        "requests".into(),
        json!({ index.to_string(): {
            "code": "batch_request_failed",
            "message": "Batch request failed.",
            "response": response,
        }}),
    );
    e
}

/// A sub-request's write input: the batch's caller (its token; an item's own
/// `Authorization` is ignored) with the item's method, the batch's headers with the item's on
/// top (`@request.headers.*`), the item's query and target id.
fn sub_input(
    ctx: &AppCtx,
    schema: &SchemaPair,
    base: &Request,
    item: &Item,
    query: &str,
    id: &str,
) -> Result<WriteInput, ApiError> {
    let mut headers: Vec<(&str, &str)> = Vec::new();
    for (k, v) in base.head.headers.iter() {
        let overridden = item
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(k) && !n.eq_ignore_ascii_case("authorization"));
        if !overridden && !k.eq_ignore_ascii_case("content-type") {
            headers.push((k, v));
        }
    }
    for (k, v) in &item.headers {
        if !k.eq_ignore_ascii_case("authorization") {
            headers.push((k.as_str(), v.as_str()));
        }
    }
    headers.push(("content-type", "multipart/form-data"));
    let query = query_pairs(query);
    let caller = Caller::new(
        ctx,
        schema,
        ctx.auth(base),
        &item.method,
        headers.into_iter(),
        &query,
    )?;
    Ok(WriteInput {
        caller,
        query,
        id: id.to_string(),
        body_len: 0,
    })
}

async fn prepare(
    ctx: &AppCtx,
    base: &Request,
    mut item: Item,
    state: &mut BatchState,
) -> Result<Prepared, ApiError> {
    let unknown = || ApiError::bad_request(Some(UNKNOWN));
    let (act, query) = action(&item.method, &item.url).ok_or_else(unknown)?;
    let schema = ctx.shared.schema.get();
    let find = |name: &str| {
        let coll = schema
            .collections
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(Some("Missing collection context.")))?;
        if coll.is_view() {
            return Err(ApiError::bad_request(Some("Unsupported collection type.")));
        }
        Ok(coll)
    };
    // taken, not copied: a batch value may be 128 MiB
    let body = RecordBody {
        data: std::mem::take(&mut item.body),
        uploads: std::mem::take(&mut item.uploads),
    };
    let body = BodyInput::Parsed(body);
    let input = |id: &str| sub_input(ctx, &schema, base, &item, &query, id);
    // a create, or an update of the record `existing` names (`id`)
    let (coll, id, existing) = match &act {
        Action::Create(c) => (find(c)?, String::new(), None),
        Action::Update(c, id) => (find(c)?, id.clone(), Some(Vec::new())),
        Action::Upsert(c) => {
            let id = match &body {
                BodyInput::Parsed(b) => match b.data.get("id") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(v) => v.to_string(),
                },
                BodyInput::Unread(_) => String::new(),
            };
            let coll = find(c)?;
            if !id.is_empty() && batch_exists(ctx, state, &coll, &id) {
                (coll, id, Some(Vec::new()))
            } else {
                (coll, String::new(), None)
            }
        }
        Action::Delete(c, id) => {
            let coll = find(c)?;
            return prepare_delete(ctx, input(id)?, body, schema.clone(), coll, Some(state)).await;
        }
    };
    let input = input(&id)?;
    prepare_upsert(
        ctx,
        input,
        body,
        schema.clone(),
        coll,
        existing,
        Some(state),
    )
    .await
}

async fn batch(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let settings = ctx.shared.settings.get().batch.clone();
    if !settings.enabled || settings.max_requests <= 0 {
        return Err(ApiError::forbidden(Some("Batch requests are not allowed.")));
    }
    let timeout = Duration::from_secs(if settings.timeout > 0 {
        settings.timeout as u64
    } else {
        3
    });
    let max_body = if settings.max_body_size > 0 {
        settings.max_body_size as usize
    } else {
        DEFAULT_MAX_BODY
    };
    // like PocketBase, the declared length is what is refused
    let declared = req
        .header("content-length")
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > max_body) {
        return Err(ApiError::too_large());
    }
    let max = settings.max_requests as usize;
    let json = req
        .header("content-type")
        .is_some_and(|ct| ct.starts_with("application/json"));
    let items = if json && req.body.len() > OFFLOAD_PARSE_BYTES {
        // a big JSON batch is parsed, read and checked on the CPU pool, where it is also
        // dropped when refused: 128 MiB of tiny requests took the worker 3.4 s (debug build)
        let body = req.body.clone();
        ctx.shared
            .cpu
            .run(move || {
                let data =
                    json_record_data(&body).map_err(|unbound| unbound.answer(Some(READ_FAILED)))?;
                let items = read_items(RecordBody {
                    data,
                    uploads: Vec::new(),
                })?;
                validate(&items, max)?;
                Ok::<_, ApiError>(items)
            })
            .await
            .map_err(|e| ApiError::bad_request(Some(READ_FAILED)).caused_by(e))??
    } else {
        let body = record_body(&ctx, &req)
            .await
            .map_err(|unbound| unbound.answer(Some(READ_FAILED)))?;
        let items = read_items(body)?;
        validate(&items, max)?;
        items
    };

    let started = Instant::now();
    let mut state = BatchState::default();
    state.big = req.body.len() > OFFLOAD_PARSE_BYTES;
    let mut writes = Vec::with_capacity(items.len());
    let mut afters = Vec::with_capacity(items.len());
    // each answer is picked by its own URL's `fields=`, as the request pipeline does
    let mut fields = Vec::with_capacity(items.len());
    let mut prepare_err = None;
    for (i, item) in items.into_iter().enumerate() {
        let unknown = action(&item.method, &item.url).is_none();
        fields.push(
            item.url
                .split_once('?')
                .and_then(|(_, q)| crate::apis::answer::fields_param(q)),
        );
        match prepare(&ctx, &req, item, &mut state).await {
            Ok(p) => {
                writes.push(p.write);
                afters.push(p.after);
                // out of time already (hashing, uploads): nothing is written
                if started.elapsed() > timeout {
                    for after in afters {
                        after.discard(&ctx).await;
                    }
                    return Err(ApiError::bad_request(Some(TX_FAILED)));
                }
            }
            Err(mut e) => {
                // an unknown action after the first reaches PocketBase through the previous
                // operation, which reports it as an internal error
                if i > 0 && unknown {
                    e.status = 500;
                }
                prepare_err = Some((i, e));
                break;
            }
        }
    }
    // the operations before a refused one still run (rolled back) so that an earlier
    // failure is the one reported, as when each runs before the next is read
    let failed_index = Arc::new(AtomicUsize::new(usize::MAX));
    let idx = failed_index.clone();
    let prepare_failed = prepare_err.is_some();
    let outcome = crate::records::save::write_job(&ctx, move |conn| {
        let mut done: Vec<Done> = Vec::with_capacity(writes.len());
        for (i, w) in writes.into_iter().enumerate() {
            if started.elapsed() > timeout {
                return Err(JobFail::Refused(JobError::Refused(TIMEOUT.into())));
            }
            match w(conn) {
                Ok(d) => done.push(d),
                Err(e) => {
                    idx.store(i, Ordering::SeqCst);
                    return Err(e);
                }
            }
        }
        if started.elapsed() > timeout {
            return Err(JobFail::Refused(JobError::Refused(TIMEOUT.into())));
        }
        if prepare_failed {
            return Err(JobFail::Refused(JobError::Refused(String::new())));
        }
        Ok(done)
    })
    .await;
    match outcome {
        Ok(done) => {
            let mut out = String::from("[");
            for (k, (after, d)) in afters.into_iter().zip(done).enumerate() {
                let finished = after.finish(&ctx, d).await.map(outcome_response);
                let picked = match (finished, &fields[k]) {
                    (Ok(r), Some(f)) => {
                        crate::apis::answer::pick_fields_offloaded(&ctx, r, f.clone()).await
                    }
                    (result, _) => result,
                };
                let resp = match picked {
                    Ok(r) => r,
                    Err(e) => e.into_response(),
                };
                if k > 0 {
                    out.push(',');
                }
                let body = match &resp.body {
                    Body::Bytes(b) if !b.is_empty() => {
                        String::from_utf8_lossy(b).trim_end().to_string()
                    }
                    _ => "null".to_string(),
                };
                out.push_str(&format!("{{\"body\":{body},\"status\":{}}}", resp.status));
            }
            out.push(']');
            Ok(Response::with_body(
                200,
                "application/json",
                out.into_bytes(),
            ))
        }
        Err(err) => {
            let at = failed_index.load(Ordering::SeqCst);
            let timed_out = matches!(&err, JobFail::Refused(JobError::Refused(m)) if m == TIMEOUT);
            let mut err = Some(err);
            let mut result = None;
            for (i, after) in afters.into_iter().enumerate() {
                match err.take_if(|_| i == at) {
                    Some(e) => result = Some(failed_at(i, after.failed(&ctx, e).await)),
                    None => after.discard(&ctx).await,
                }
            }
            if let Some(e) = result {
                return Err(e);
            }
            if timed_out {
                return Err(ApiError::bad_request(Some(TX_FAILED)));
            }
            match (prepare_err, err) {
                (Some((i, e)), _) => Err(failed_at(i, e)),
                (None, Some(JobFail::Storage(e))) => {
                    Err(ApiError::bad_request(Some(TX_FAILED)).caused_by(e))
                }
                (None, _) => Err(ApiError::bad_request(Some(TX_FAILED))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::files::SNIFFS;
    use crate::records::write::Draft;
    use pocketbun_storage::collections::Collection;

    fn png() -> Vec<u8> {
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0".to_vec()
    }

    fn upload(key: &str) -> Upload {
        Upload {
            key: key.into(),
            original_name: "photo".into(),
            data: png(),
            sniffed: None,
        }
    }

    /// Each upload is sniffed once on its way into a record, whether it came in a record
    /// request or inside a batch (which names the file after the sniff too).
    #[test]
    fn uploads_are_sniffed_once() {
        let payload = json!({"name": "docs", "type": "base", "fields": [
            {"name": "doc", "type": "file", "maxSelect": 1, "maxSize": 1000}
        ]});
        let coll = Arc::new(Collection::from_create_payload(payload.as_object().unwrap()).unwrap());

        // a record request
        SNIFFS.with(|n| n.set(0));
        let mut draft = Draft::new(coll.clone());
        draft.resolve(Map::new(), vec![upload("doc")]);
        assert_eq!(SNIFFS.with(|n| n.get()), 1);
        assert_eq!(draft.new_files.len(), 1);
        assert_eq!(draft.new_files[0].sniffed, ("image/png", "png"));
        assert!(draft.new_files[0].name.ends_with(".png"));

        // the same file in a batch request
        SNIFFS.with(|n| n.set(0));
        let body = RecordBody {
            data: json!({"requests": [{"method": "POST", "url": "/api/collections/docs/records"}]})
                .as_object()
                .unwrap()
                .clone(),
            uploads: vec![upload("requests.0.doc")],
        };
        let mut items = read_items(body).unwrap();
        let item = items.pop().unwrap();
        assert_eq!(item.uploads.len(), 1);
        // PocketBase names it once in the batch, then again in the record
        let batch_name = item.uploads[0].original_name.clone();
        assert!(batch_name.starts_with("photo_") && batch_name.ends_with(".png"));
        let mut draft = Draft::new(coll);
        draft.resolve(item.body, item.uploads);
        assert_eq!(
            SNIFFS.with(|n| n.get()),
            1,
            "sniffed once for the batch and the record"
        );
        assert_eq!(draft.new_files[0].sniffed, ("image/png", "png"));
        assert_eq!(draft.new_files[0].original_name, batch_name);
    }
}
