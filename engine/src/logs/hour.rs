//! A cheaper `strftime` for the log writer's connection to `auxiliary.db`.
//!
//! PocketBase's `_logs` has the expression index `idx_logs_created_hour` on
//! `strftime('%Y-%m-%d %H:00:00', created)`, so SQLite evaluates that call for every log row
//! inserted (and every row a retention `DELETE` removes). SQLite's own `strftime` parses the
//! date, converts it to a Julian day and back, and formats each field through its printf:
//! ~3.8k instructions per row, 18% of the writer's whole cost of a log row (callgrind,
//! `GET /api/health` with logs on, 2026-12-07).
//!
//! [`install`] overrides `strftime` on that one connection. A log's `created` is always
//! PocketBase's canonical `YYYY-MM-DD HH:MM:SS.mmmZ` (UTC), whose hour is its first 13 bytes:
//! for exactly that format string and a canonical, valid date the answer is those bytes plus
//! `:00:00`. Every other call (other formats, modifiers, `now`, numbers, NULL, anything not
//! canonical) is answered by SQLite's own `strftime` on a private in-memory connection, so
//! the index holds exactly what SQLite's function gives: PocketBase reads it unchanged, and
//! `PRAGMA integrity_check` (which recomputes every index entry with the built-in) passes.
//!
//! The function is registered through SQLite's C API, not rusqlite's closures: rusqlite's
//! call wrapper (a `Context`, `ValueRef` conversions of both arguments, an owned `String`
//! answer copied once more by SQLite) cost ~1k instructions per log row around the ~0.35k of
//! actual work; the raw function reads both arguments in place and answers from a stack
//! buffer (callgrind, `GET /api/health` with logs on, 2026-12-07).

use pocketbun_storage::rusqlite::ffi;
use pocketbun_storage::rusqlite::{Connection, Error, Result};
use std::cell::RefCell;
use std::os::raw::{c_char, c_int, c_void};

/// The format of `idx_logs_created_hour`.
const HOUR_FORMAT: &[u8] = b"%Y-%m-%d %H:00:00";

/// SQLite's own `strftime`, for every call outside the fast path: a private in-memory
/// connection, opened on first use (the function's user data, freed with the function).
type Builtin = RefCell<Option<Connection>>;

/// Overrides `strftime` on `conn` (the log writer's connection) with the fast path above.
pub fn install(conn: &Connection) -> Result<()> {
    let builtin: *mut Builtin = Box::into_raw(Box::new(RefCell::new(None)));
    let flags = ffi::SQLITE_UTF8 | ffi::SQLITE_DETERMINISTIC | ffi::SQLITE_INNOCUOUS;
    // SAFETY: `conn.handle()` is a live connection used on this thread only; SQLite owns
    // `builtin` from here on and hands it to `drop_builtin` exactly once (also when the
    // registration fails), and `strftime_fn`/`drop_builtin` match SQLite's signatures.
    let rc = unsafe {
        ffi::sqlite3_create_function_v2(
            conn.handle(),
            c"strftime".as_ptr(),
            -1,
            flags,
            builtin.cast::<c_void>(),
            Some(strftime_fn),
            None,
            None,
            Some(drop_builtin),
        )
    };
    if rc != ffi::SQLITE_OK {
        return Err(Error::SqliteFailure(
            ffi::Error::new(rc),
            Some("cannot override strftime".into()),
        ));
    }
    Ok(())
}

unsafe extern "C" fn drop_builtin(p: *mut c_void) {
    // SAFETY: `p` is the `Box<Builtin>` leaked in `install`, dropped only here.
    drop(unsafe { Box::from_raw(p.cast::<Builtin>()) });
}

/// The text of a TEXT argument, in place (valid until the argument changes).
///
/// # Safety
/// `v` is an argument of the running call.
unsafe fn text_arg<'a>(v: *mut ffi::sqlite3_value) -> Option<&'a [u8]> {
    // SAFETY: the caller passes a live argument; for a TEXT value SQLite returns a buffer of
    // `sqlite3_value_bytes` bytes (asked after the text, as SQLite's documentation orders).
    unsafe {
        if ffi::sqlite3_value_type(v) != ffi::SQLITE_TEXT {
            return None;
        }
        let p = ffi::sqlite3_value_text(v);
        if p.is_null() {
            return None;
        }
        let n = usize::try_from(ffi::sqlite3_value_bytes(v)).ok()?;
        Some(std::slice::from_raw_parts(p, n))
    }
}

unsafe extern "C" fn strftime_fn(
    ctx: *mut ffi::sqlite3_context,
    argc: c_int,
    argv: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: SQLite calls this with `argc` live arguments in `argv` for the running call.
    unsafe {
        if argc == 2 {
            if let (Some(format), Some(date)) = (text_arg(*argv), text_arg(*argv.add(1))) {
                if format == HOUR_FORMAT {
                    if let Some(hour) = hour_of(date) {
                        ffi::sqlite3_result_text(
                            ctx,
                            hour.as_ptr().cast::<c_char>(),
                            hour.len() as c_int,
                            ffi::SQLITE_TRANSIENT(),
                        );
                        return;
                    }
                }
            }
        }
        let builtin = &*ffi::sqlite3_user_data(ctx).cast::<Builtin>();
        let args = std::slice::from_raw_parts(argv, usize::try_from(argc).unwrap_or(0));
        if let Err(e) = call_builtin(builtin, ctx, args) {
            let msg = e.to_string();
            ffi::sqlite3_result_error(ctx, msg.as_ptr().cast::<c_char>(), msg.len() as c_int);
        }
    }
}

/// Answers the call with SQLite's own `strftime` of the same arguments (bound as they came,
/// so no value changes type or bytes on the way).
///
/// # Safety
/// `ctx` and `args` are the running call's.
unsafe fn call_builtin(
    builtin: &Builtin,
    ctx: *mut ffi::sqlite3_context,
    args: &[*mut ffi::sqlite3_value],
) -> Result<()> {
    let mut slot = builtin.borrow_mut();
    let db = match slot.as_mut() {
        Some(db) => db,
        None => slot.insert(Connection::open_in_memory()?),
    };
    // SAFETY: the statement is prepared on `db` and finalized before it is left; SQLite
    // copies each bound value and the answer (`sqlite3_result_value`), so nothing outlives
    // its owner. A miss is rare (the index only ever asks the fast path's question), so the
    // statement is prepared per call.
    unsafe {
        let raw = db.handle();
        let mut st: *mut ffi::sqlite3_stmt = std::ptr::null_mut();
        let sql = builtin_sql(args.len());
        let rc = ffi::sqlite3_prepare_v2(
            raw,
            sql.as_ptr().cast::<c_char>(),
            sql.len() as c_int,
            &mut st,
            std::ptr::null_mut(),
        );
        if rc != ffi::SQLITE_OK {
            return Err(Error::SqliteFailure(ffi::Error::new(rc), None));
        }
        let mut rc = ffi::SQLITE_OK;
        for (i, &v) in args.iter().enumerate() {
            rc = ffi::sqlite3_bind_value(st, i as c_int + 1, v);
            if rc != ffi::SQLITE_OK {
                break;
            }
        }
        if rc == ffi::SQLITE_OK {
            rc = ffi::sqlite3_step(st);
            if rc == ffi::SQLITE_ROW {
                ffi::sqlite3_result_value(ctx, ffi::sqlite3_column_value(st, 0));
                rc = ffi::SQLITE_OK;
            }
        }
        ffi::sqlite3_finalize(st);
        if rc != ffi::SQLITE_OK {
            return Err(Error::SqliteFailure(ffi::Error::new(rc), None));
        }
    }
    Ok(())
}

/// `SELECT strftime(?1, …, ?n)`.
fn builtin_sql(n: usize) -> String {
    let mut sql = String::from("SELECT strftime(");
    for i in 1..=n {
        if i > 1 {
            sql.push_str(", ");
        }
        sql.push('?');
        sql.push_str(&i.to_string());
    }
    sql.push(')');
    sql
}

/// `YYYY-MM-DD HH:00:00` of a canonical `YYYY-MM-DD HH:MM:SS.mmmZ` holding a real date and
/// time (year 1000-9999, each field in range, the day within its month), else `None`.
fn hour_of(date: &[u8]) -> Option<[u8; 19]> {
    if date.len() != 24 {
        return None;
    }
    let num = |at: usize, len: usize| -> Option<u32> {
        date[at..at + len].iter().try_fold(0u32, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
        })
    };
    let punctuation = [
        (4, b'-'),
        (7, b'-'),
        (10, b' '),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
    ];
    if punctuation.iter().any(|&(at, b)| date[at] != b) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    num(20, 3)?;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    let valid = (1000..=9999).contains(&year)
        && (1..=days).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return None;
    }
    let mut out = *b"0000-00-00 00:00:00";
    out[..13].copy_from_slice(&date[..13]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The override answers what SQLite's own `strftime` answers, on the fast path and off it.
    #[test]
    fn same_answers_as_sqlites_strftime() {
        let ours = Connection::open_in_memory().unwrap();
        install(&ours).unwrap();
        let theirs = Connection::open_in_memory().unwrap();
        let dates = [
            "2026-12-07 09:15:42.123Z",
            "2024-02-29 23:59:59.999Z",
            "2023-02-29 10:00:00.000Z", // not a date: SQLite normalises it
            "2023-04-31 10:00:00.000Z",
            "2023-01-01 24:00:00.000Z",
            "2023-01-01 10:60:00.000Z",
            "0999-01-01 10:00:00.000Z",
            "2023-01-01T10:00:00.000Z",
            "2023-01-01 10:00:00.000+02:00",
            "2023-01-01 10:00:00Z",
            "2023-01-01 10:00:00.000",
            "2023-13-01 10:00:00.000Z",
            "garbage",
            "",
            "now",
        ];
        let formats = ["%Y-%m-%d %H:00:00", "%Y-%m-%d", "%s", "%H:00:00"];
        for date in dates {
            for format in formats {
                let sql = "SELECT strftime(?1, ?2)";
                let a: Option<String> = ours.query_row(sql, [format, date], |r| r.get(0)).unwrap();
                let b: Option<String> =
                    theirs.query_row(sql, [format, date], |r| r.get(0)).unwrap();
                if date != "now" || format != "%s" {
                    assert_eq!(a, b, "strftime({format:?}, {date:?})");
                }
            }
        }
        // other argument counts and types go to the built-in too
        let sql = "SELECT strftime('%Y-%m-%d %H:00:00', '2023-01-01 10:20:00.000Z', '+1 hour'), \
                   strftime('%Y-%m-%d %H:00:00', 2460000.5), strftime('%Y', NULL), strftime('%Y')";
        let row = |c: &Connection| -> Vec<Option<String>> {
            c.query_row(sql, [], |r| (0..4).map(|i| r.get(i)).collect())
                .unwrap()
        };
        assert_eq!(row(&ours), row(&theirs));
        assert_eq!(
            ours.query_row(
                "SELECT strftime('%Y-%m-%d %H:00:00', '2026-12-07 09:15:42.123Z')",
                [],
                |r| r.get::<_, String>(0)
            )
            .unwrap(),
            "2026-12-07 09:00:00"
        );
    }

    /// The hourly index of PocketBase's `_logs`, written through the override, is what SQLite
    /// itself computes for every row: `integrity_check` on a second, plain connection
    /// recomputes each entry with the built-in.
    #[test]
    fn the_hourly_index_stays_consistent() {
        let dir = std::env::temp_dir().join(format!("pocketbun-hour-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("auxiliary.db");
        let _ = std::fs::remove_file(&path);
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../../../storage/schema/aux_schema.sql"))
            .unwrap();
        install(&conn).unwrap();
        for (i, created) in [
            "2026-12-07 09:15:42.123Z",
            "2026-12-07 10:00:00.000Z",
            "2023-02-29 10:00:00.000Z",
            "2022-05-01 10:00:00.123",
        ]
        .iter()
        .enumerate()
        {
            conn.execute(
                "INSERT INTO _logs (id, level, message, data, created) VALUES (?1, 0, 'm', '{}', ?2)",
                (format!("id{i}"), created),
            )
            .unwrap();
        }
        conn.execute("DELETE FROM _logs WHERE id = 'id1'", [])
            .unwrap();
        drop(conn);
        let plain = Connection::open(&path).unwrap();
        let check: String = plain
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let hours: Vec<String> = plain
            .prepare(
                "SELECT strftime('%Y-%m-%d %H:00:00', created) FROM _logs \
                 INDEXED BY idx_logs_created_hour ORDER BY 1",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        drop(plain);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            hours,
            [
                "2022-05-01 10:00:00",
                "2023-03-01 10:00:00",
                "2026-12-07 09:00:00"
            ]
        );
    }
}
