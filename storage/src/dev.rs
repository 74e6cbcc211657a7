//! `serve --dev`: every SQL statement printed to the console with its run time, as PocketBase
//! prints them in dev mode (`[0.52ms] SELECT …`, bound values filled in).
//!
//! Off by default and then free: the tracer is only registered on connections opened while the
//! switch is on, so the request path pays nothing for it.

use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::trace::{TraceEvent, TraceEventCodes};
use rusqlite::Connection;

static SQL_LOG: AtomicBool = AtomicBool::new(false);

/// Prints the SQL of every connection opened from now on (`--dev`).
pub fn set_sql_log(on: bool) {
    SQL_LOG.store(on, Ordering::Relaxed);
}

/// Registers the printer on `conn` when the switch is on.
pub(crate) fn trace(conn: &Connection) {
    if SQL_LOG.load(Ordering::Relaxed) {
        conn.trace_v2(TraceEventCodes::SQLITE_TRACE_PROFILE, Some(print));
    }
}

fn print(event: TraceEvent<'_>) {
    if let TraceEvent::Profile(stmt, took) = event {
        let sql = stmt
            .expanded_sql()
            .unwrap_or_else(|| stmt.sql().into_owned());
        eprintln!("[{:.2}ms] {}", took.as_secs_f64() * 1000.0, sql.trim());
    }
}
