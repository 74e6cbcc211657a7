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

use pocketbun_storage::rusqlite::functions::FunctionFlags;
use pocketbun_storage::rusqlite::types::{Value, ValueRef};
use pocketbun_storage::rusqlite::{params_from_iter, Connection, Result};
use std::cell::RefCell;

/// The format of `idx_logs_created_hour`.
const HOUR_FORMAT: &[u8] = b"%Y-%m-%d %H:00:00";

/// Overrides `strftime` on `conn` (the log writer's connection) with the fast path above.
pub fn install(conn: &Connection) -> Result<()> {
    // SQLite's own function, for every call outside the fast path (opened on first use)
    let builtin: RefCell<Option<Connection>> = RefCell::new(None);
    conn.create_scalar_function(
        "strftime",
        -1,
        FunctionFlags::SQLITE_UTF8
            | FunctionFlags::SQLITE_DETERMINISTIC
            | FunctionFlags::SQLITE_INNOCUOUS,
        move |ctx| {
            if ctx.len() == 2 {
                if let (ValueRef::Text(format), ValueRef::Text(date)) =
                    (ctx.get_raw(0), ctx.get_raw(1))
                {
                    if format == HOUR_FORMAT {
                        if let Some(hour) = hour_of(date) {
                            return Ok(Value::Text(hour));
                        }
                    }
                }
            }
            let args: Vec<Value> = (0..ctx.len()).map(|i| ctx.get_raw(i).into()).collect();
            let mut slot = builtin.borrow_mut();
            let db = match slot.as_mut() {
                Some(db) => db,
                None => slot.insert(Connection::open_in_memory()?),
            };
            let sql = builtin_sql(args.len());
            let value: Value = db
                .prepare_cached(&sql)?
                .query_row(params_from_iter(args), |r| r.get(0))?;
            Ok(value)
        },
    )
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
fn hour_of(date: &[u8]) -> Option<String> {
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
    let mut out = String::with_capacity(19);
    // the bytes were checked to be ASCII digits and punctuation above
    out.push_str(std::str::from_utf8(&date[..13]).ok()?);
    out.push_str(":00:00");
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
