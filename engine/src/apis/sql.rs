//! `POST /api/sql`: superusers run SQL against `data.db` (PocketBase's dashboard SQL runner).
//!
//! Queries that look like writes run as one writer job (so they are serialised with every
//! other write and roll back as a whole); everything else runs on a fresh read-only
//! connection on the CPU pool, never on the request worker: an admin's slow query must not
//! stall the other connections of this core.

use crate::ctx::{AppCtx, Routes};
use crate::error::{json_response, ApiError, ApiResult, FieldError, FieldErrors};
use pocketbun_http::{Method, Request};
use pocketbun_storage::rusqlite::fallible_iterator::FallibleIterator;
use pocketbun_storage::rusqlite::types::ValueRef;
use pocketbun_storage::rusqlite::{self, Batch, Connection};
use pocketbun_storage::{ErrorKind, StorageError};
use serde::Serialize;
use std::rc::Rc;
use std::time::{Duration, Instant};

const MAX_ROWS: usize = 1000;
const MAX_QUERY_LENGTH: usize = 5000;
/// PocketBase gives a query three minutes.
const QUERY_TIMEOUT: Duration = Duration::from_secs(180);
const WRITE_PREFIXES: [&str; 8] = [
    "INSERT", "CREATE", "UPDATE", "DELETE", "DROP", "DETACH", "ALTER", "REPLACE",
];

pub fn register(routes: &mut Routes) {
    routes.add(Method::Post, "/api/sql", |ctx, req| Box::pin(run(ctx, req)));
}

#[derive(Serialize, Default)]
struct Column {
    name: String,
    #[serde(rename = "type")]
    decl_type: String,
    nullable: bool,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct SqlResult {
    exec_time: i64,
    affected_rows: i64,
    columns: Vec<Column>,
    rows: Vec<Vec<Option<String>>>,
}

async fn run(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    let query = match crate::apis::body::json(&req)? {
        Some(v) => v
            .get("query")
            .and_then(|q| q.as_str())
            .unwrap_or("")
            .to_string(),
        None if req.body.is_empty() => String::new(),
        // only whitespace: not JSON
        None => return Err(crate::apis::body::Unbound::default().into()),
    };
    validate(&query)?;
    let query = query.trim().to_string();
    if query.is_empty() {
        // passes "required" (not blank before trimming) yet there is nothing to run
        return Err(ApiError::bad_request(Some(
            "Failed to execute query. Raw error:\nempty query.",
        )));
    }
    let started = Instant::now();
    let upper = query.to_ascii_uppercase();
    let is_write =
        !upper.starts_with("SELECT") && WRITE_PREFIXES.iter().any(|p| upper.starts_with(p));
    let outcome = if is_write {
        ctx.shared
            .store
            .writer()
            .submit(move |conn| execute_write(conn, &query))
            .await
    } else {
        let store = ctx.shared.store.clone();
        ctx.shared
            .cpu
            .run(move || {
                let reader = store.reader()?;
                reader.read_with_timeout(QUERY_TIMEOUT, |conn| read_rows(conn, &query))
            })
            .await
            // no cause: the CPU pool's `Canceled` only says the task never ran
            .map_err(|_| StorageError::new(ErrorKind::Internal, "the query was cancelled"))
            .and_then(|r| r)
    };
    match outcome {
        Ok(mut result) => {
            result.exec_time = started.elapsed().as_millis() as i64;
            Ok(json_response(200, &result))
        }
        Err(e) => Err(ApiError::bad_request(Some(&format!(
            "Failed to execute query. Raw error:\n{}.",
            e.message()
        )))),
    }
}

fn validate(query: &str) -> Result<(), ApiError> {
    let mut errors = FieldErrors::new();
    if query.is_empty() {
        errors.add(
            "query",
            FieldError::new("validation_required", "cannot be blank"),
        );
    } else if query.chars().count() > MAX_QUERY_LENGTH {
        errors.add(
            "query",
            FieldError::new(
                "validation_length_too_long",
                format!("the length must be no more than {MAX_QUERY_LENGTH}"),
            )
            .param("max", MAX_QUERY_LENGTH)
            .param("min", 0),
        );
    }
    errors.checked()
}

fn execute_write(conn: &Connection, query: &str) -> pocketbun_storage::Result<SqlResult> {
    let before = conn.total_changes();
    conn.execute_batch(query).map_err(go_sqlite_error)?;
    Ok(SqlResult {
        affected_rows: (conn.total_changes() - before) as i64,
        ..SqlResult::default()
    })
}

/// Runs every statement; the rows (and columns) are those of the last one, as PocketBase's
/// driver returns them.
fn read_rows(conn: &Connection, query: &str) -> pocketbun_storage::Result<SqlResult> {
    let mut result = SqlResult::default();
    let mut batch = Batch::new(conn, query);
    while let Some(mut stmt) = batch.next().map_err(go_sqlite_error)? {
        result.columns = stmt
            .columns()
            .iter()
            .map(|c| Column {
                name: c.name().to_string(),
                // Go's driver reports declared types upper-cased
                decl_type: c.decl_type().unwrap_or("").to_ascii_uppercase(),
                nullable: true,
            })
            .collect();
        result.rows.clear();
        let width = result.columns.len();
        let mut rows = stmt.query([]).map_err(go_sqlite_error)?;
        while let Some(row) = rows.next().map_err(go_sqlite_error)? {
            if result.rows.len() >= MAX_ROWS {
                break;
            }
            let mut out = Vec::with_capacity(width);
            for i in 0..width {
                out.push(as_go_string(row.get_ref(i)?));
            }
            result.rows.push(out);
        }
    }
    Ok(result)
}

/// A column value as Go's `database/sql` scans it into a `*string`.
fn as_go_string(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(go_format_g(f)),
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
    }
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`: the shortest digits, in exponent form when
/// the exponent is below -4 or at least 6.
fn go_format_g(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        format!("{f}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// An SQLite error as Go's driver words it: `<error string of the primary code>: <message>
/// (<extended code>)`, e.g. `constraint failed: UNIQUE constraint failed: t.id (1555)`.
fn go_sqlite_error(e: rusqlite::Error) -> StorageError {
    let (code, msg) = match &e {
        rusqlite::Error::SqliteFailure(code, msg) => (*code, msg.clone()),
        rusqlite::Error::SqlInputError { error, msg, .. } => (*error, Some(msg.clone())),
        _ => return StorageError::from(e),
    };
    // SAFETY: sqlite3_errstr returns a pointer to a static, NUL-terminated English string
    let errstr = unsafe {
        std::ffi::CStr::from_ptr(rusqlite::ffi::sqlite3_errstr(code.extended_code & 0xff))
    }
    .to_string_lossy()
    .into_owned();
    let msg = msg.unwrap_or_else(|| errstr.clone());
    StorageError::new(
        ErrorKind::Sqlite,
        format!("{errstr}: {msg} ({})", code.extended_code),
    )
}

#[cfg(test)]
mod tests {
    use super::go_format_g;

    #[test]
    fn floats_like_go() {
        assert_eq!(go_format_g(1.5), "1.5");
        assert_eq!(go_format_g(0.0), "0");
        assert_eq!(go_format_g(2.0), "2");
        assert_eq!(go_format_g(1e20), "1e+20");
        assert_eq!(go_format_g(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(go_format_g(100000.0), "100000");
        assert_eq!(go_format_g(1234567.0), "1.234567e+06");
        assert_eq!(go_format_g(0.0001), "0.0001");
        assert_eq!(go_format_g(0.00001), "1e-05");
        assert_eq!(go_format_g(-2.5e-7), "-2.5e-07");
        assert_eq!(go_format_g(123456789.123), "1.23456789123e+08");
    }
}
