//! `serve --dev`: every SQL statement printed to the console with its run time, as PocketBase
//! prints them in dev mode (`[0.52ms] SELECT …`, bound values filled in).
//!
//! Off by default ([`crate::StoreOptions::sql_log`]) and then free: the tracer is only
//! registered on the connections of a store opened with it on, so the request path pays
//! nothing for it.

use rusqlite::trace::{TraceEvent, TraceEventCodes};
use rusqlite::Connection;

/// Registers the printer on `conn` when `sql_log` is on.
pub(crate) fn trace(conn: &Connection, sql_log: bool) {
    if sql_log {
        conn.trace_v2(TraceEventCodes::SQLITE_TRACE_PROFILE, Some(on_event));
    }
}

/// Registers the printer (when `sql_log` is on) and the report of each statement started
/// to [`crate::deps`] (a connection has one trace callback, so both share it).
pub(crate) fn trace_with_stmts(conn: &Connection, sql_log: bool) {
    let mut mask = TraceEventCodes::SQLITE_TRACE_STMT;
    if sql_log {
        mask |= TraceEventCodes::SQLITE_TRACE_PROFILE;
    }
    conn.trace_v2(mask, Some(on_event));
}

fn on_event(event: TraceEvent<'_>) {
    match event {
        TraceEvent::Stmt(_, sql) => crate::deps::on_stmt(sql),
        TraceEvent::Profile(stmt, took) => {
            let sql = stmt
                .expanded_sql()
                .unwrap_or_else(|| stmt.sql().into_owned());
            eprintln!("[{:.2}ms] {}", took.as_secs_f64() * 1000.0, sql.trim());
        }
        _ => {}
    }
}
