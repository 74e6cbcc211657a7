//! `/api/logs`: the request/application logs of `auxiliary.db`, superusers only.
//!
//! Filters and sorts go through the query compiler against a synthetic `_logs` collection
//! whose `data` is a JSON field, so `data.status>200` or `sort=-data.execTime` work as in
//! PocketBase.

use crate::apis::search::{query_value, write_page, ListParams};
use crate::ctx::{AppCtx, Routes};
use crate::error::{json_response, ApiError, ApiResult};
use crate::go::now_ms;
use crate::recstore::value;
use pocketbun_http::{Method, Request, Response};
use pocketbun_query as query;
use pocketbun_storage::rusqlite::{self, OptionalExtension};
use pocketbun_storage::Reader;
use serde::Serialize;
use std::rc::Rc;
use std::sync::OnceLock;

pub fn register(routes: &mut Routes) {
    routes.add(Method::Get, "/api/logs", |c, r| Box::pin(list(c, r)));
    routes.add(Method::Delete, "/api/logs", |c, r| {
        Box::pin(delete_all(c, r))
    });
    routes.add(Method::Get, "/api/logs/stats", |c, r| Box::pin(stats(c, r)));
    routes.add(Method::Get, "/api/logs/{id}", |c, r| Box::pin(view(c, r)));
}

const TABLE: &str = "_logs";

/// The columns a log filter or sort may name.
fn logs_schema() -> &'static query::Schema {
    static SCHEMA: OnceLock<query::Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let field = query::Field::new;
        query::Schema::new(
            0,
            vec![query::Collection {
                id: TABLE.into(),
                name: TABLE.into(),
                kind: query::CollectionType::Base,
                fields: vec![
                    field("id", query::FieldType::Text),
                    field("created", query::FieldType::Text),
                    field("level", query::FieldType::Number),
                    field("message", query::FieldType::Text),
                    field("data", query::FieldType::Json),
                ],
                list_rule: None,
                view_rule: None,
                indexes: Vec::new(),
            }],
        )
    })
}

/// This worker's read connection to `auxiliary.db`, opened on first use.
fn aux_reader(ctx: &AppCtx) -> Result<Rc<Reader>, ApiError> {
    if let Some(r) = ctx.aux.get() {
        return Ok(r.clone());
    }
    let reader = Rc::new(ctx.shared.store.aux_reader()?);
    Ok(ctx.aux.get_or_init(|| reader).clone())
}

fn superuser_info() -> query::RequestInfo {
    query::RequestInfo {
        superuser: true,
        ..Default::default()
    }
}

/// A `_logs` row as PocketBase serialises a `core.Log`.
#[derive(Serialize)]
struct LogItem {
    id: String,
    created: String,
    data: serde_json::Value,
    message: String,
    level: i64,
}

const COLUMNS: &str = "`_logs`.`id`, `_logs`.`created`, `_logs`.`data`, `_logs`.`message`, \
                       `_logs`.`level`";

fn item(row: &rusqlite::Row<'_>) -> rusqlite::Result<LogItem> {
    let raw: Option<String> = row.get(2)?;
    let data = raw
        .and_then(|t| serde_json::from_str(&t).ok())
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::Value::Object(Default::default()));
    Ok(LogItem {
        id: row.get(0)?,
        created: row.get(1)?,
        data,
        message: row.get(3)?,
        level: row.get(4)?,
    })
}

/// `DELETE /api/logs` (PocketBase 0.40): removes every log, then VACUUMs `auxiliary.db` so
/// the space goes back to the file system. 204.
///
/// The delete is a job of the auxiliary writer; VACUUM cannot run inside its transaction,
/// so it runs on a connection of its own on the CPU pool (it rewrites the whole file: never
/// on a request worker). Log writes queued meanwhile wait on SQLite's busy timeout.
async fn delete_all(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    ctx.shared
        .store
        .aux_writer()
        .submit(|conn| Ok(conn.execute("DELETE FROM `_logs`", [])?))
        .await
        .map_err(|e| ApiError::bad_request(Some("Failed to delete the logs.")).caused_by(e))?;
    let path = ctx.shared.store.dir().join(pocketbun_storage::AUX_DB);
    ctx.shared
        .cpu
        .run(move || -> pocketbun_storage::Result<()> {
            let conn = rusqlite::Connection::open(&path)?;
            pocketbun_storage::defensive(&conn)?;
            // PocketBase's busy timeout; the log thread's next batch waits for the VACUUM
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            Ok(conn.execute_batch("VACUUM")?)
        })
        .await?
        .map_err(|e| ApiError::bad_request(Some("Failed to delete the logs.")).caused_by(e))?;
    Ok(Response::new(204))
}

async fn list(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    let params = ListParams::parse(req.query())?;
    let info = superuser_info();
    let compiled = query::compile_list(logs_schema(), TABLE, &params.filter, &params.sort, &info)
        .map_err(|e| ApiError::bad_request(None).caused_by(e))?;
    let mut values = compiled.bind(&info, now_ms());
    let reader = aux_reader(&ctx)?;
    let total = if params.skip_total {
        None
    } else {
        Some(
            reader
                .read(|conn| {
                    Ok(
                        conn.query_row(&compiled.count_sql, value::all(&values), |r| {
                            r.get::<_, i64>(0)
                        })?,
                    )
                })
                .map_err(|e| ApiError::bad_request(None).caused_by(e))?,
        )
    };
    values.push(query::Value::Integer(params.per_page));
    values.push(query::Value::Integer(params.offset()));
    let sql = format!(
        "{} LIMIT ?{} OFFSET ?{}",
        compiled.select_with(COLUMNS),
        values.len() - 1,
        values.len()
    );
    let items: Vec<LogItem> = reader
        .read(|conn| {
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(value::all(&values), item)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .map_err(|e| ApiError::bad_request(None).caused_by(e))?;
    let items_json = crate::error::to_go_json(&items)?;
    let mut body = Vec::with_capacity(items_json.len() + 96);
    write_page(&mut body, &items_json, &params, total);
    Ok(Response::with_body(200, "application/json", body))
}

async fn view(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    let id = req.param("id").unwrap_or_default().to_string();
    if id.is_empty() {
        return Err(ApiError::not_found(None));
    }
    let reader = aux_reader(&ctx)?;
    let found = reader
        .read(|conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {COLUMNS} FROM `_logs` WHERE `id` = ?1 LIMIT 1"),
                    [&id],
                    item,
                )
                .optional()?)
        })
        .map_err(|e| ApiError::not_found(None).caused_by(e))?;
    match found {
        Some(log) => Ok(json_response(200, &log)),
        None => Err(ApiError::not_found(None)),
    }
}

#[derive(Serialize)]
struct StatsItem {
    date: String,
    total: i64,
}

async fn stats(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    let filter = query_value(req.query(), "filter").unwrap_or_default();
    let info = superuser_info();
    let (where_sql, values) = if filter.is_empty() {
        (String::new(), Vec::new())
    } else {
        let compiled = query::compile_condition(logs_schema(), TABLE, &filter, &info, true)
            .map_err(|e| ApiError::bad_request(Some("Invalid filter format.")).caused_by(e))?;
        let values = compiled.bind(&info, now_ms());
        (format!(" WHERE {}", compiled.where_sql), values)
    };
    let sql = format!(
        "SELECT count(`_logs`.`id`) AS total, strftime('%Y-%m-%d %H:00:00', `_logs`.`created`) \
         AS date FROM `_logs`{where_sql} GROUP BY date"
    );
    let reader = aux_reader(&ctx)?;
    let items: Vec<StatsItem> = reader
        .read(|conn| {
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(value::all(&values), |r| {
                let date: Option<String> = r.get(1)?;
                Ok(StatsItem {
                    total: r.get(0)?,
                    date: date.map(|d| format!("{d}.000Z")).unwrap_or_default(),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .map_err(|e| ApiError::bad_request(Some("Failed to generate logs stats.")).caused_by(e))?;
    Ok(json_response(200, &items))
}
