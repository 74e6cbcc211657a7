//! Reads of record tables filtered by a compiled rule or filter: the `query` crate compiles
//! the condition (its `FROM`, joins and `WHERE`), this module wraps it in the statement each
//! caller runs. The rule's own parameters come first (`?1..?n`), the id (or the JSON list of
//! ids) is `?{n+1}`; the text is the same for every request with the same rule, so
//! `prepare_cached` keeps one statement per rule shape.

use super::value::{bound, SqlRef};
use pocketbun_query::{CompiledFilter, CompiledQuery, Value as QValue};
use pocketbun_storage::rusqlite::{self, params_from_iter, Connection, Statement};
use pocketbun_storage::Ident;
use std::fmt::Write;

fn distinct(cond: &CompiledFilter) -> &'static str {
    if cond.distinct {
        "DISTINCT "
    } else {
        ""
    }
}

/// A page of a compiled list (the records list endpoint): its statement, prepared once per
/// text, is handed to `rows` with its binds (`params`: the list's own, then the limit and
/// the offset), which reads the rows; then, when `total` is asked, the number of records
/// the list's filter and rule match.
pub fn list_page<T>(
    conn: &Connection,
    list: &CompiledQuery,
    params: &[QValue],
    total: bool,
    rows: impl FnOnce(&mut Statement<'_>, &[QValue]) -> rusqlite::Result<T>,
) -> rusqlite::Result<(T, Option<i64>)> {
    let mut stmt = conn.prepare_cached(&list.select_sql)?;
    let found = rows(&mut stmt, params)?;
    if !total {
        return Ok((found, None));
    }
    let mut count = conn.prepare_cached(&list.count_sql)?;
    // the list's own parameters, without the limit and the offset
    let own = &params[..params.len().saturating_sub(2)];
    let k = count.parameter_count();
    let total = count.query_row(bound(own, k), |r| r.get::<_, i64>(0))?;
    Ok((found, Some(total)))
}

/// The view endpoint's read: `sql` ([`super::rows::ViewSql`] without a rule, [`view_by_id`]
/// with one), prepared once per text, handed to `rows` with its binds (the rule's
/// parameters, then the id).
pub fn view<T>(
    conn: &Connection,
    sql: &str,
    params: &[QValue],
    rows: impl FnOnce(&mut Statement<'_>, &[QValue]) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let mut stmt = conn.prepare_cached(sql)?;
    rows(&mut stmt, params)
}

/// The full row of record `?{n}` of `table` if it passes `cond` (the view endpoint).
pub fn view_by_id(table: &str, cond: &CompiledFilter, n: usize) -> String {
    let table = Ident(table);
    format!(
        "SELECT {}{table}.* FROM {} WHERE {table}.`id` = ?{n} AND ({}) LIMIT 1",
        distinct(cond),
        cond.from_sql,
        cond.where_sql
    )
}

/// One row when record `?{n}` of `table` passes `cond` (rule checks: update, delete, auth
/// flows). No `DISTINCT`: existence is all that is asked.
pub fn check_by_id(table: &str, cond: &CompiledFilter, n: usize) -> String {
    let mut sql = String::new();
    push_check_by_id(&mut sql, table, cond, &cond.where_sql, n);
    sql
}

/// [`check_by_id`] appended to `sql` with `where_sql` in place of the rule's own (realtime
/// puts a deleted record's values in a `WITH` before it and turns an empty rule into `1`).
pub fn push_check_by_id(
    sql: &mut String,
    table: &str,
    cond: &CompiledFilter,
    where_sql: &str,
    n: usize,
) {
    let table = Ident(table);
    let _ = write!(
        sql,
        "SELECT 1 FROM {} WHERE {table}.`id` = ?{n} AND ({where_sql}) LIMIT 1",
        cond.from_sql
    );
}

/// Whether the check statement `sql` (built by [`check_by_id`], [`draft_check`] or after
/// [`push_values_as_table`]) finds a row, with `binds` bound in order, as many as it takes.
pub fn passes<'a>(
    conn: &Connection,
    sql: &str,
    binds: impl Iterator<Item = SqlRef<'a>>,
) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare_cached(sql)?;
    let k = stmt.parameter_count();
    stmt.exists(params_from_iter(binds.take(k)))
}

/// One row when a record not yet saved passes `cond`: a one-row `WITH` shadows `table`, its
/// `columns` bound from `?{first}` on, as PocketBase checks a create rule.
pub fn draft_check<'a>(
    table: &str,
    cond: &CompiledFilter,
    columns: impl Iterator<Item = &'a str>,
    first: usize,
) -> String {
    let selects: Vec<String> = columns
        .enumerate()
        .map(|(i, name)| format!("?{} AS {}", first + i, Ident(name)))
        .collect();
    format!(
        "WITH {} AS (SELECT {}) SELECT 1 FROM {} WHERE {} LIMIT 1",
        Ident(table),
        selects.join(","),
        cond.from_sql,
        cond.where_sql
    )
}

/// The rows of `table` whose id is in the JSON array `?{n}` and that pass `cond` (expand).
pub fn rows_in_ids(table: &str, cond: &CompiledFilter, n: usize) -> String {
    let table = Ident(table);
    format!(
        "SELECT {}{table}.* FROM {} WHERE {table}.`id` IN (SELECT value FROM json_each(?{n})) AND ({})",
        distinct(cond),
        cond.from_sql,
        cond.where_sql
    )
}

/// The ids of `table` in the JSON array `?{n}` that pass `cond` (the `manageRule` check of
/// email visibility).
pub fn ids_in_ids(table: &str, cond: &CompiledFilter, n: usize) -> String {
    let table = Ident(table);
    format!(
        "SELECT {}{table}.`id` FROM {} WHERE {table}.`id` IN (SELECT value FROM json_each(?{n})) AND ({})",
        distinct(cond),
        cond.from_sql,
        cond.where_sql
    )
}

/// A `WITH table(col, ...) AS (VALUES(?first, ...))` prefix that stands in for `table` with
/// one row of bound values (a deleted record, or another node's event, checked by realtime
/// against a rule). `columns` are the collection's fields in order.
pub fn push_values_as_table<'a>(
    sql: &mut String,
    table: &str,
    columns: impl Iterator<Item = &'a str>,
    first: usize,
    count: usize,
) {
    sql.push_str("WITH ");
    Ident(table).push_to(sql);
    sql.push('(');
    for (i, name) in columns.enumerate() {
        if i > 0 {
            sql.push(',');
        }
        Ident(name).push_to(sql);
    }
    sql.push_str(") AS (VALUES(");
    for i in 0..count {
        if i > 0 {
            sql.push(',');
        }
        let _ = write!(sql, "?{}", first + i);
    }
    sql.push_str(")) ");
}

#[cfg(test)]
mod tests {
    use super::*;
    use pocketbun_storage::rusqlite::Connection;

    fn cond(where_sql: &str, distinct: bool) -> CompiledFilter {
        CompiledFilter {
            table: "posts".into(),
            distinct,
            from_sql: "`posts`".into(),
            where_sql: where_sql.into(),
            params: Vec::new(),
            guards: Vec::new(),
            constant: None,
        }
    }

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE `posts` (`id` TEXT PRIMARY KEY, `n` INTEGER);
             INSERT INTO `posts` VALUES ('a', 1), ('b', 2), ('c', 3);",
        )
        .unwrap();
        conn
    }

    #[test]
    fn rule_statements_filter_by_id_and_rule() {
        let conn = db();
        let rule = cond("`posts`.`n` >= ?1", false);
        let found = |sql: &str, min: i64, id: &str| -> bool {
            conn.prepare(sql).unwrap().exists((min, id)).unwrap()
        };
        assert!(found(&check_by_id("posts", &rule, 2), 2, "b"));
        assert!(!found(&check_by_id("posts", &rule, 2), 3, "b"));
        assert!(found(
            &view_by_id("posts", &cond("`posts`.`n` >= ?1", true), 2),
            1,
            "a"
        ));
        let ids: Vec<String> = conn
            .prepare(&ids_in_ids("posts", &rule, 2))
            .unwrap()
            .query_map((2, r#"["a","b","c"]"#), |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(ids, ["b", "c"]);
        let n = conn
            .prepare(&rows_in_ids("posts", &rule, 2))
            .unwrap()
            .query_map((3, r#"["a","c"]"#), |r| r.get::<_, i64>(1))
            .unwrap()
            .count();
        assert_eq!(n, 1);
    }

    #[test]
    fn a_list_page_and_its_total() {
        let conn = db();
        let list = CompiledQuery {
            table: "posts".into(),
            distinct: false,
            from_sql: "`posts`".into(),
            where_sql: "`posts`.`n` >= ?1".into(),
            order_sql: "`posts`.`n`".into(),
            select_sql: "SELECT `posts`.* FROM `posts` WHERE `posts`.`n` >= ?1 \
                         ORDER BY `posts`.`n` LIMIT ?2 OFFSET ?3"
                .into(),
            count_sql: "SELECT count(*) FROM `posts` WHERE `posts`.`n` >= ?1".into(),
            params: Vec::new(),
            guards: Vec::new(),
            never: false,
        };
        let params = [QValue::Integer(2), QValue::Integer(1), QValue::Integer(1)];
        let ids = |stmt: &mut Statement<'_>, params: &[QValue]| -> rusqlite::Result<Vec<String>> {
            let k = stmt.parameter_count();
            stmt.query_map(bound(params, k), |r| r.get(0))?.collect()
        };
        let (page, total) = list_page(&conn, &list, &params, true, ids).unwrap();
        assert_eq!((page, total), (vec!["c".to_string()], Some(2)));
        let (page, total) = list_page(&conn, &list, &params, false, ids).unwrap();
        assert_eq!((page, total), (vec!["c".to_string()], None));
        let sql = view_by_id("posts", &cond("`posts`.`n` >= ?1", false), 2);
        let one = [QValue::Integer(2), QValue::Text("a".into())];
        assert!(view(&conn, &sql, &one, ids).unwrap().is_empty());
    }

    #[test]
    fn values_stand_in_for_the_table() {
        // a deleted record is checked against its values (realtime), a draft against a CTE
        let conn = db();
        let rule = cond("`posts`.`n` = 9", false);
        let mut sql = String::new();
        push_values_as_table(&mut sql, "posts", ["id", "n"].into_iter(), 2, 2);
        push_check_by_id(&mut sql, "posts", &rule, &rule.where_sql, 1);
        assert!(conn
            .prepare(&sql)
            .unwrap()
            .exists(("gone", "gone", 9))
            .unwrap());
        assert!(!conn
            .prepare(&sql)
            .unwrap()
            .exists(("gone", "gone", 8))
            .unwrap());
        let draft = draft_check("posts", &rule, ["id", "n"].into_iter(), 1);
        assert!(conn.prepare(&draft).unwrap().exists(("new", 9)).unwrap());
        assert!(!conn.prepare(&draft).unwrap().exists(("new", 1)).unwrap());
    }
}
