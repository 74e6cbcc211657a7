//! `/api/collections`: the collections API, superusers only.

use crate::apis::body::LOAD_FAILED;
use crate::apis::search::{write_page, ListParams};
use crate::ctx::{AppCtx, Routes};
use crate::error::{ApiError, ApiResult};
use crate::go::now_ms;
use crate::records::save::JobFail;
use pocketbun_http::{Method, Request, Response};
use pocketbun_query as query;
use pocketbun_storage::collections::model::{Collection, CollectionType};
use pocketbun_storage::collections::snapshot::Collections;
use pocketbun_storage::collections::sync::{self, SaveError};
use pocketbun_storage::rusqlite::Connection;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};

pub fn register(routes: &mut Routes) {
    routes.add(Method::Get, "/api/collections", |c, r| Box::pin(list(c, r)));
    routes.add(Method::Get, "/api/collections/{collection}", |c, r| {
        Box::pin(view(c, r))
    });
    routes.add(Method::Delete, "/api/collections/{collection}", |c, r| {
        Box::pin(delete(c, r))
    });
    routes.add(Method::Post, "/api/collections", |c, r| {
        Box::pin(create(c, r))
    });
    routes.add(Method::Patch, "/api/collections/{collection}", |c, r| {
        Box::pin(update(c, r))
    });
    routes.add(
        Method::Delete,
        "/api/collections/{collection}/truncate",
        |c, r| Box::pin(truncate(c, r)),
    );
    routes.add(
        Method::Post,
        "/api/collections/meta/dry-run-view",
        |c, r| Box::pin(dry_run_view(c, r)),
    );
    routes.add(
        Method::Get,
        "/api/collections/meta/oauth2-providers",
        |c, r| Box::pin(oauth2_providers(c, r)),
    );
    routes.add(Method::Put, "/api/collections/import", |c, r| {
        Box::pin(import(c, r))
    });
    routes.add(Method::Get, "/api/collections/meta/scaffolds", |c, r| {
        Box::pin(scaffolds(c, r))
    });
}

fn json_ok(body: String) -> Response {
    Response::with_body(200, "application/json", body.into_bytes())
}

/// The searchable columns of `_collections`, as the compiler's schema.
fn collections_schema() -> &'static query::Schema {
    static SCHEMA: OnceLock<query::Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let text = |n: &str| query::Field::new(n, query::FieldType::Text);
        query::Schema::new(
            0,
            vec![query::Collection {
                id: "_collections".into(),
                name: "_collections".into(),
                kind: query::CollectionType::Base,
                fields: vec![
                    text("id"),
                    text("name"),
                    text("type"),
                    text("created"),
                    text("updated"),
                    query::Field::new("system", query::FieldType::Bool),
                ],
                list_rule: None,
                view_rule: None,
                indexes: Vec::new(),
            }],
        )
    })
}

async fn list(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    let params = ListParams::parse(req.query())?;
    let info = query::RequestInfo {
        superuser: true,
        ..Default::default()
    };
    let compiled = query::compile_list(
        collections_schema(),
        "_collections",
        &params.filter,
        &params.sort,
        &info,
    )
    .map_err(|e| ApiError::new(e.status(), e.api_message()))?;
    let mut values = compiled.bind(&info, now_ms());
    let total = if params.skip_total {
        None
    } else {
        Some(
            ctx.reader
                .read(|conn| {
                    Ok(conn.query_row(
                        &compiled.count_sql,
                        crate::recstore::value::all(&values),
                        |r| r.get::<_, i64>(0),
                    )?)
                })
                .map_err(|e| ApiError::bad_request(None).caused_by(e))?,
        )
    };
    values.push(query::Value::Integer(params.per_page));
    values.push(query::Value::Integer(params.offset()));
    let sql = compiled.select_with("`_collections`.`id`")
        + " LIMIT ?"
        + &(values.len() - 1).to_string()
        + " OFFSET ?"
        + &values.len().to_string();
    let ids: Vec<String> = ctx
        .reader
        .read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(crate::recstore::value::all(&values), |r| {
                r.get::<_, String>(0)
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .map_err(|e| ApiError::bad_request(None).caused_by(e))?;
    let schema = ctx.shared.schema.get();
    let mut items = String::from("[");
    for (i, id) in ids.iter().enumerate() {
        if let Some(c) = schema.collections.by_id(id) {
            if i > 0 {
                items.push(',');
            }
            c.write_api_json(&mut items);
        }
    }
    items.push(']');
    let mut body = Vec::with_capacity(items.len() + 96);
    write_page(&mut body, items.as_bytes(), &params, total);
    Ok(Response::with_body(200, "application/json", body))
}

fn find(ctx: &AppCtx, req: &Request) -> Result<Arc<Collection>, ApiError> {
    use crate::apis::extract::{collection, CollectionOf};
    collection(&ctx.shared.schema.get(), req, CollectionOf::Model)
}

async fn view(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    let c = find(&ctx, &req)?;
    Ok(json_ok(c.to_api_json()))
}

async fn scaffolds(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    let mut out = String::from("{");
    for (i, kind) in [
        CollectionType::Auth,
        CollectionType::Base,
        CollectionType::View,
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(kind.as_str());
        out.push_str("\":");
        let mut blank = Collection::new(kind, "", None);
        blank.id.clear();
        blank.write_api_json(&mut out);
    }
    out.push('}');
    Ok(json_ok(out))
}

/// Runs a schema change as one writer job and, once committed, installs the new snapshot
/// before the caller answers (read-your-writes for schema). A refusal rolls the job back and
/// reaches the caller through the writer's typed reply with its details intact.
pub async fn change_schema<T, F>(ctx: &AppCtx, change: F) -> Result<T, SaveError>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, SaveError> + Send + 'static,
{
    let (value, collections) = ctx
        .shared
        .store
        .writer()
        .submit_with(move |conn| {
            let value = change(conn)?;
            Ok::<_, SaveError>((value, Collections::load(conn)?))
        })
        .await?;
    ctx.shared.schema.replace(collections);
    crate::cluster::schema_changed(ctx.shared.cluster.as_deref());
    Ok(value)
}

async fn delete(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    let c = find(&ctx, &req)?;
    let id = c.id.clone();
    match change_schema(&ctx, move |conn| sync::delete_collection(conn, &id)).await {
        Ok(deleted) => {
            // the files go only after the commit: a failed delete keeps them
            let dir = ctx.shared.store.dir().join("storage").join(&deleted.id);
            let _ = std::fs::remove_dir_all(dir);
            Ok(Response::new(204))
        }
        Err(SaveError::Refused(reason)) => {
            let message = match reason.split_once("existing relation references: ") {
                Some((_, names)) => format!(
                    "Failed to delete collection probably due to existing reference in {names}."
                ),
                None => "Failed to delete collection.".to_string(),
            };
            Err(ApiError::bad_request(Some(&message)))
        }
        Err(_) => Err(ApiError::bad_request(Some("Failed to delete collection."))),
    }
}

/// The request body as a JSON object; an empty body is an empty object.
fn body_object(req: &Request) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    match crate::apis::body::json(req) {
        Ok(None) => Ok(serde_json::Map::new()),
        Ok(Some(serde_json::Value::Object(map))) => Ok(map),
        Ok(Some(_)) => Err(bad_format()),
        Err(unbound) => Err(unbound.answer(Some(BAD_FORMAT))),
    }
}

/// The JSON object body of a form endpoint (import, dry-run view): one that cannot be read is
/// PocketBase's load failure.
fn form_object(req: &Request) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    body_object(req).map_err(|e| ApiError::bad_request(Some(LOAD_FAILED)).caused_by(e))
}

const BAD_FORMAT: &str = "Failed to load the collection type data due to invalid formatting.";

fn bad_format() -> ApiError {
    ApiError::bad_request(Some(BAD_FORMAT))
}

/// Checks a rule of `candidate` by compiling it against the schema it will live in.
fn rule_checker(others: Collections) -> impl Fn(&Collection, &str) -> Result<(), String> {
    move |candidate: &Collection, rule: &str| {
        let mut list: Vec<Collection> = others
            .iter()
            .filter(|c| c.id != candidate.id)
            .map(|c| (**c).clone())
            .collect();
        list.push(candidate.clone());
        let schema = crate::schema::query_schema(&Collections::new(list));
        let info = query::RequestInfo {
            superuser: true,
            ..Default::default()
        };
        query::compile_condition(&schema, &candidate.name, rule, &info, true)
            .map(|_| ())
            .map_err(|e| e.detail.clone())
    }
}

fn save_error(err: SaveError, failed: &str) -> ApiError {
    match err {
        SaveError::Validation(errors) => {
            let mut e = ApiError::bad_request(Some(failed));
            if let Ok(serde_json::Value::Object(data)) = serde_json::from_str(&errors.to_json()) {
                e.data = data;
            }
            e
        }
        SaveError::Refused(why) => ApiError::bad_request(Some(failed)).caused_by(why),
        SaveError::Storage(e) => ApiError::bad_request(Some(failed)).caused_by(e),
    }
}

async fn create(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    let payload = body_object(&req)?;
    let candidate =
        Collection::from_create_payload(&payload).map_err(|e| bad_format().caused_by(e))?;
    let saved = change_schema(&ctx, move |conn| {
        let checker = rule_checker(Collections::load(conn)?);
        sync::create_collection_checked(conn, candidate, &checker)
    })
    .await
    .map_err(|e| save_error(e, "Failed to create collection."))?;
    Ok(json_ok(saved.to_api_json()))
}

async fn update(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    let id = find(&ctx, &req)?.id.clone();
    let payload = body_object(&req)?;
    let saved = change_schema(&ctx, move |conn| {
        let current = Collections::load(conn)?;
        let mut c = match current.by_id(&id) {
            Some(c) => (**c).clone(),
            None => return Err(SaveError::Refused("missing collection".into())),
        };
        c.apply_json(&payload)
            .map_err(|e| SaveError::Refused(format!("bad format: {e}")))?;
        sync::update_collection_checked(conn, c, &rule_checker(current))
    })
    .await
    .map_err(|e| save_error(e, "Failed to update collection."))?;
    Ok(json_ok(saved.to_api_json()))
}

/// Validation errors as Go's `json.MarshalIndent` writes ozzo's errors: leaves are their raw
/// messages, nested by field.
fn indented_raw_errors(errors: &pocketbun_storage::collections::ValidationErrors) -> String {
    use pocketbun_storage::collections::ErrorNode;
    fn raw(errors: &pocketbun_storage::collections::ValidationErrors) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (k, node) in &errors.0 {
            let v = match node {
                ErrorNode::Leaf(e) => {
                    // stored sentence-cased; Go keeps the validator's raw lower-case text
                    let m = e.message.strip_suffix('.').unwrap_or(&e.message);
                    let mut c = m.chars();
                    let lowered: String = match c.next() {
                        Some(f) => f.to_lowercase().chain(c).collect(),
                        None => String::new(),
                    };
                    serde_json::Value::String(lowered)
                }
                ErrorNode::Nested(n) => raw(n),
            };
            map.insert(k.clone(), v);
        }
        serde_json::Value::Object(map)
    }
    serde_json::to_string_pretty(&raw(errors)).unwrap_or_default()
}

fn import_failure(message: String) -> ApiError {
    let mut e = ApiError::bad_request(Some("Failed to import collections."));
    let mut leaf = serde_json::Map::new();
    leaf.insert(
        "code".into(),
        "validation_collections_import_failure".into(),
    );
    leaf.insert(
        "message".into(),
        pocketbun_storage::collections::errors::sentenize(&message).into(),
    );
    e.data
        .insert("collections".into(), serde_json::Value::Object(leaf));
    e
}

/// `PUT /api/collections/import`: the whole configuration in one transaction. Every imported
/// collection is saved first and validated after, so they may refer to each other in any
/// order; `deleteMissing` drops the non-system collections (and fields) it does not list.
async fn import(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    let body = form_object(&req)?;
    let delete_missing = body
        .get("deleteMissing")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let to_import: Vec<serde_json::Map<String, serde_json::Value>> = match body.get("collections") {
        Some(serde_json::Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_object().cloned())
            .collect::<Option<_>>()
            // an item that is no object
            .ok_or_else(|| {
                ApiError::bad_request(Some("An error occurred while loading the submitted data."))
            })?,
        _ => {
            let mut errors = crate::error::FieldErrors::new();
            errors.add(
                "collections",
                crate::error::FieldError::new("validation_required", "cannot be blank"),
            );
            return Err(ApiError::validation(crate::error::VALIDATE_FAILED, &errors));
        }
    };
    let outcome = change_schema(&ctx, move |conn| import_in(conn, to_import, delete_missing)).await;
    match outcome {
        Ok(()) => Ok(Response::new(204)),
        Err(SaveError::Validation(errors)) => Err(import_failure(errors_message(&errors))),
        Err(SaveError::Refused(m)) => Err(import_failure(format!(
            "Failed to import the collections configuration. Raw error:\n{m}"
        ))),
        Err(SaveError::Storage(e)) => Err(import_failure(format!(
            "Failed to import the collections configuration. Raw error:\n{e}"
        ))),
    }
}

/// The message of a failed import validation travels inside a one-entry error map whose key
/// is the message itself (see [`import_in`]).
fn errors_message(errors: &pocketbun_storage::collections::ValidationErrors) -> String {
    errors.0.keys().next().cloned().unwrap_or_default()
}

fn import_in(
    conn: &Connection,
    to_import: Vec<serde_json::Map<String, serde_json::Value>>,
    delete_missing: bool,
) -> Result<(), SaveError> {
    let bad = |m: String| SaveError::Refused(m);
    let existing = Collection::load_all(conn)?;
    let mut imported: Vec<(Collection, bool)> = Vec::with_capacity(to_import.len());
    for mut data in to_import {
        let identifier = data
            .get("id")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .or_else(|| data.get("name").and_then(|v| v.as_str()))
            .unwrap_or("")
            .to_string();
        let found = existing
            .iter()
            .find(|c| c.id == identifier || c.name.eq_ignore_ascii_case(&identifier));
        match found {
            Some(old) => {
                if delete_missing && !data.contains_key("fields") {
                    data.insert("fields".into(), serde_json::Value::Array(Vec::new()));
                }
                let mut c = old.clone();
                c.apply_json(&data)
                    .map_err(|e| bad(e.message().to_string()))?;
                for f in &old.fields {
                    if !f.system && delete_missing {
                        continue;
                    }
                    if c.fields.iter().any(|x| x.id == f.id) {
                        continue;
                    }
                    // same name and type: keep the existing id so the column is not recreated
                    if let Some(same) = c
                        .fields
                        .iter_mut()
                        .find(|x| x.name == f.name && x.type_name() == f.type_name())
                    {
                        same.id = f.id.clone();
                    }
                    pocketbun_storage::collections::fields::add_field(&mut c.fields, f.clone());
                }
                imported.push((c, false));
            }
            None => {
                let c = Collection::from_create_payload(&data)
                    .map_err(|e| bad(e.message().to_string()))?;
                imported.push((c, true));
            }
        }
    }
    // views last: their queries may read the other collections
    imported.sort_by(|(a, _), (b, _)| {
        (a.is_view(), &a.created, &a.updated).cmp(&(b.is_view(), &b.created, &b.updated))
    });

    if delete_missing {
        for old in existing.iter().rev() {
            if old.system || imported.iter().any(|(c, _)| c.id == old.id) {
                continue;
            }
            sync::drop_unchecked(conn, old)?;
        }
    }
    let mut saved = Vec::with_capacity(imported.len());
    for (c, is_new) in imported {
        let name = c.name.clone();
        let c = sync::save_unvalidated(conn, c, is_new).map_err(|e| match e {
            SaveError::Storage(s) => bad(format!("failed to save collection {name:?}: {s}")),
            other => other,
        })?;
        saved.push(c);
    }
    let all = Collection::load_all(conn)?;
    let checker = rule_checker(Collections::new(all.clone()));
    for c in &saved {
        let original = existing.iter().find(|o| o.id == c.id).unwrap_or(c);
        let errors = pocketbun_storage::collections::validate_collection(
            conn,
            c,
            Some(original),
            &all,
            &checker,
        );
        if !errors.is_empty() {
            let message = format!(
                "Data validations failed for collection {:?} ({}):\n{}",
                c.name,
                c.id,
                indented_raw_errors(&errors)
            );
            let mut carrier = pocketbun_storage::collections::ValidationErrors::new();
            carrier.add(
                message,
                pocketbun_storage::collections::FieldError::new("import", "import"),
            );
            return Err(SaveError::Validation(carrier));
        }
    }
    Ok(())
}

/// `DELETE /api/collections/{c}/truncate`: every record deleted as a single delete would be
/// (cascades, files, realtime), all in one transaction.
async fn truncate(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    let coll = find(&ctx, &req)?;
    if coll.is_view() {
        return Err(ApiError::bad_request(Some(
            "View collections cannot be truncated since they don't store their own records.",
        )));
    }
    let collections = ctx.shared.schema.get().collections.clone();
    let hooks = ctx.hooks.clone();
    let events = crate::records::save::write_job(&ctx, move |conn| {
        let ids = crate::recstore::rows::all_ids(conn, &coll.name)?;
        let mut events = Vec::new();
        for id in ids {
            crate::records::save::delete_record(conn, &collections, &coll, &id, &hooks, &mut events)?;
        }
        Ok(events)
    })
    .await
    .map_err(|fail| {
        let err = ApiError::bad_request(Some(
            "Failed to truncate collection (most likely due to required cascade delete record references).",
        ));
        match fail {
            JobFail::Refused(why) => err.caused_by(format!("{why:?}")),
            JobFail::Storage(e) => err.caused_by(e),
        }
    })?;
    crate::records::save::publish_deletes(&ctx, events).await;
    Ok(Response::new(204))
}

/// `POST /api/collections/meta/dry-run-view`: the fields a view query would get and a sample
/// of up to 10 of its records. Runs as a writer job because inferring the fields creates (and
/// rolls back) a temporary view; nothing is left behind.
async fn dry_run_view(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    use pocketbun_storage::collections::view;
    ctx.require_superuser(&req)?;
    let body = form_object(&req)?;
    let query = body
        .get("query")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut errors = crate::error::FieldErrors::new();
    if query.is_empty() {
        errors.add(
            "query",
            crate::error::FieldError::new("validation_required", "cannot be blank"),
        );
    } else if query.chars().count() > 5000 {
        errors.add(
            "query",
            crate::error::FieldError::new(
                "validation_length_too_long",
                "the length must be no more than 5000",
            )
            .param("max", 5000)
            .param("min", 0),
        );
    }
    errors.checked()?;
    let outcome = ctx
        .shared
        .store
        .writer()
        .submit(move |conn| {
            let run = || -> Result<(Collection, Vec<Vec<crate::records::SqlVal>>), String> {
                let select = view::normalize_view_select_query(&query).map_err(|e| e.0)?;
                let all = Collection::load_all(conn).map_err(|e| e.to_string())?;
                let fields = view::create_view_fields(conn, &all, &select).map_err(|e| e.0)?;
                let name = format!("temp_view_{}", pocketbun_storage::random::random_string(5));
                let mut temp = Collection::new(CollectionType::View, &name, None);
                temp.fields = fields;
                let select = view::normalize_view_query_id(conn, &select)
                    .map_err(|e| format!("failed to normalize view query id: {}", e.0))?;
                let fetch =
                    || -> pocketbun_storage::rusqlite::Result<Vec<Vec<crate::records::SqlVal>>> {
                        let mut stmt = crate::recstore::rows::view_preview(conn, &select, &name)?;
                        let names: Vec<String> =
                            stmt.column_names().iter().map(|n| n.to_string()).collect();
                        let slots: Vec<Option<usize>> = temp
                            .fields
                            .iter()
                            .map(|f| names.iter().position(|n| *n == f.name))
                            .collect();
                        let mut rows = stmt.query([])?;
                        let mut out = Vec::new();
                        while let Some(row) = rows.next()? {
                            let mut values = Vec::with_capacity(slots.len());
                            for slot in &slots {
                                values.push(match slot {
                                    Some(i) => crate::records::SqlVal::from_ref(row.get_ref(*i)?),
                                    None => crate::records::SqlVal::Null,
                                });
                            }
                            out.push(values);
                        }
                        Ok(out)
                    };
                let rows = fetch().map_err(|e| format!("failed to retrieve query records: {e}"))?;
                Ok((temp, rows))
            };
            Ok(run())
        })
        .await
        .map_err(|e| {
            ApiError::bad_request(Some(&format!("Invalid view query. Raw error: \n{e}.")))
        })?;
    let (temp, rows) = outcome.map_err(|e| {
        ApiError::bad_request(Some(&pocketbun_storage::collections::errors::sentenize(
            &format!("Invalid view query. Raw error: \n{e}"),
        )))
    })?;
    let temp = Arc::new(temp);
    let mut arena = crate::records::Arena::default();
    let mut seen = std::collections::HashSet::new();
    for values in rows {
        let rec = crate::records::Rec {
            coll: temp.clone(),
            values,
            show_email: false,
            unhide: false,
            expand: None,
        };
        if rec.id().is_empty() {
            return Err(ApiError::bad_request(Some(
                "Invalid view query. Raw error: \nthe query could return records with empty or invalid ids.",
            )));
        }
        if !seen.insert(rec.id().to_string()) {
            return Err(ApiError::bad_request(Some(
                "Invalid view query. Raw error: \nthe query could return records with non-unique ids.",
            )));
        }
        arena.recs.push(rec);
    }
    let mut out = String::from("{\"fields\":");
    pocketbun_storage::collections::fields::write_fields_json(&mut out, &temp.fields);
    out.push_str(",\"sample\":[");
    let mut writer = crate::records::json::Writer::new();
    for i in 0..arena.recs.len() {
        if i > 0 {
            out.push(',');
        }
        writer.write(&mut out, &arena, i);
    }
    out.push_str("]}");
    Ok(json_ok(out))
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ProviderListItem {
    name: &'static str,
    display_name: &'static str,
    logo: String,
}

/// `GET /api/collections/meta/oauth2-providers`: every provider the dashboard can configure.
async fn oauth2_providers(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    let list: Vec<ProviderListItem> = crate::auth::oauth2::ALL_PROVIDERS
        .iter()
        .map(|&(name, display_name)| ProviderListItem {
            name,
            display_name,
            logo: crate::auth::oauth2::provider_logo(name, display_name),
        })
        .collect();
    Ok(crate::error::json_response(200, &list))
}
