//! Reads of record tables filtered by a compiled rule or filter: the `query` crate compiles
//! the condition (its `FROM`, joins and `WHERE`), this module wraps it in the statement each
//! caller runs. The rule's own parameters come first (`?1..?n`), the id (or the JSON list of
//! ids) is `?{n+1}`; the text is the same for every request with the same rule, so
//! `prepare_cached` keeps one statement per rule shape.

use super::value::{bound, SqlRef};
use pocketbun_query::{CompiledFilter, CompiledQuery, TieBreak, Value as QValue};
use pocketbun_storage::rusqlite::{self, params_from_iter, Connection, Statement};
use pocketbun_storage::Ident;
use std::collections::HashMap;
use std::fmt::Write;
use std::rc::Rc;

fn distinct(cond: &CompiledFilter) -> &'static str {
    if cond.distinct {
        "DISTINCT "
    } else {
        ""
    }
}

/// A page of a compiled list (the records list endpoint): its page statement `page` (the
/// list's own `select_sql`, or the one [`list_sql`] chose), prepared once per text, is
/// handed to `rows` with its binds (`params`: the list's own, then the limit and the
/// offset), which reads the rows; then, when `total` is asked, the number of records the
/// list's filter and rule match (`count`: its `count_sql`, or [`list_sql`]'s).
pub fn list_page<T>(
    conn: &Connection,
    page: &str,
    count: &str,
    params: &[QValue],
    total: bool,
    rows: impl FnOnce(&mut Statement<'_>, &[QValue]) -> rusqlite::Result<T>,
) -> rusqlite::Result<(T, Option<i64>)> {
    let mut stmt = conn.prepare_cached(page)?;
    let found = rows(&mut stmt, params)?;
    if !total {
        return Ok((found, None));
    }
    let mut count = conn.prepare_cached(count)?;
    // the list's own parameters, without the limit and the offset
    let own = &params[..params.len().saturating_sub(2)];
    let k = count.parameter_count();
    let total = count.query_row(bound(own, k), |r| r.get::<_, i64>(0))?;
    Ok((found, Some(total)))
}

/// Most page statements whose plan a worker keeps a choice for ([`PagePlans`]).
const MAX_PAGE_PLANS: usize = 256;

/// Runs a choice serves before it is made again: the rows of a table move on (a list first
/// asked of a nearly empty table keeps being asked while it fills up). Making it costs
/// about one run of the list at most (an `EXPLAIN QUERY PLAN` of tens of microseconds and
/// two counts through an index, fewer rows than the search itself reads), so 1/4096 of
/// that at most.
const RECHECK_AFTER: u32 = 4096;

/// The share of the table's rows a search by bool equalities must match, at least, before a
/// scan replaces it: 1 in [`SCAN_FROM`]. Measured (python sqlite3 3.40, 10,000 rows shaped
/// as the benchmark's posts, `flag = 1 AND score > 0` sorted by `-score`, 30 a page, median
/// of 30 runs; search / scan): 0.13 / 0.49 ms at 2% of rows, 0.30 / 0.54 at 10%, 0.60 /
/// 0.63 at 20%, 0.73 / 0.62 at 25%, 2.04 / 0.83 at 67%, 3.21 / 0.93 at 90%. The search
/// pays per row it matches (an index step, then the row fetched by rowid), the scan per row
/// of the table, so they cross at ~1 in 5; below it the search stays.
const SCAN_FROM: i64 = 4;

/// The statements chosen per list statement on one worker (a field of the worker's
/// `records::db::Db`), see [`list_sql`]. Cleared when the schema version changes (an index
/// added or dropped changes the plans), bounded, and each choice made again after
/// [`RECHECK_AFTER`] runs.
#[derive(Default)]
pub struct PagePlans {
    version: Option<u64>,
    by_sql: HashMap<String, Choice>,
}

struct Choice {
    sql: ListSql,
    /// Runs left before the choice is made again.
    left: u32,
}

/// The statements a list runs in place of its own `select_sql` and `count_sql` (`None`: its
/// own).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListSql {
    pub page: Option<Rc<str>>,
    pub count: Option<Rc<str>>,
}

/// The statements the records list runs for `list` (`params`: its binds, then the limit and
/// the offset).
///
/// SQLite plans `published = 1 AND score > ?` sorted by `-score` as an index search on
/// `(published, views)` by `published` alone, a fetch of every row it finds by rowid, then
/// a sort: when the bool matches most rows (2 in 3 in the benchmark) that is 3.5-4.5x
/// slower than scanning the table and sorting (python sqlite3, 10,000 posts: 4.9-6.4 ms
/// against 1.4 ms). An `ANALYZE` does not change its choice. So when the plan of the
/// list's own page statement is exactly such a search (an index that is not covering,
/// whose only constraints are equalities on bool fields the WHERE compares with one
/// value) followed by a sort of the whole result, and those equalities match at least 1 in
/// [`SCAN_FROM`] rows of the table, the page statement `unindexed` compiles
/// (`query::compile_list_unindexed`: the same WHERE with those comparisons written
/// `+col = 1`, which no index serves) runs instead. It is handed the order in which the
/// index fed rows to the sort (its remaining key columns, then the rowid) to append to the
/// ORDER BY: rows with equal sort keys then come out as they did, so the page is the same
/// rows in the same order. Every other page plan stays: a search that also constrains
/// another column (`published = 1 AND views > ?`), one whose index gives the order (no
/// sort), joins.
///
/// The count is chosen alike: its unindexed statement runs when its own plan is such a
/// search alone (it has no sort) through an index that does not cover it (`published = 1
/// AND score > ?` fetches every row for `score`); a count the index covers (`published =
/// 1` alone: index entries only, 0.2 ms against ~1 ms for a scan) keeps it.
///
/// The choice is kept per statement text for [`RECHECK_AFTER`] runs in `plans`; lists
/// without a bool comparison never look.
pub fn list_sql(
    conn: &Connection,
    plans: &mut PagePlans,
    version: u64,
    list: &CompiledQuery,
    params: &[QValue],
    unindexed: impl FnOnce(&[TieBreak]) -> Option<(String, String)>,
) -> rusqlite::Result<ListSql> {
    if list.bool_eqs.is_empty() || list.distinct || list.never {
        return Ok(ListSql::default());
    }
    if plans.version != Some(version) {
        plans.by_sql.clear();
        plans.version = Some(version);
    }
    if let Some(choice) = plans.by_sql.get_mut(list.select_sql.as_str()) {
        if choice.left > 0 {
            choice.left -= 1;
            return Ok(choice.sql.clone());
        }
    }
    let page = page_order(conn, list, params)?;
    let own = &params[..params.len().saturating_sub(2)];
    let count = count_scans(conn, list, own)?;
    let mut sql = ListSql::default();
    if page.is_some() || count {
        if let Some((select, counting)) = unindexed(page.as_deref().unwrap_or_default()) {
            sql.page = page.is_some().then(|| Rc::from(select));
            sql.count = count.then(|| Rc::from(counting));
        }
    }
    if plans.by_sql.len() >= MAX_PAGE_PLANS && !plans.by_sql.contains_key(&list.select_sql) {
        plans.by_sql.clear();
    }
    plans.by_sql.insert(
        list.select_sql.clone(),
        Choice {
            sql: sql.clone(),
            left: RECHECK_AFTER,
        },
    );
    Ok(sql)
}

/// `SEARCH <table> USING INDEX <index> (<constraints>)` (not a covering index): `(index,
/// constraints)`.
fn search<'a>(detail: &'a str, table: &str) -> Option<(&'a str, &'a str)> {
    let rest = detail
        .strip_prefix("SEARCH ")?
        .strip_prefix(table)?
        .strip_prefix(" USING INDEX ")?;
    let (index, constraints) = rest.split_once(" (")?;
    Some((index, constraints.strip_suffix(')')?))
}

/// The plan's search then `USE TEMP B-TREE FOR ORDER BY`, and nothing else.
fn search_then_sort<'a>(details: &'a [String], table: &str) -> Option<(&'a str, &'a str)> {
    let [a, b] = details else {
        return None;
    };
    match (a.as_str(), b.as_str()) {
        (s, "USE TEMP B-TREE FOR ORDER BY") | ("USE TEMP B-TREE FOR ORDER BY", s) => {
            search(s, table)
        }
        _ => None,
    }
}

/// SQLite's plan of `sql` with `params` bound: each step's detail.
fn plan(conn: &Connection, sql: &str, params: &[QValue]) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    let k = stmt.parameter_count();
    let details = stmt
        .query_map(bound(params, k), |r| r.get::<_, String>(3))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(details)
}

/// The columns and values of a search's `col=?` constraints when each is an equality on a
/// bool field the WHERE compares with one value only.
fn bool_constraints<'a>(
    list: &CompiledQuery,
    constraints: &'a str,
) -> Option<Vec<(&'a str, bool)>> {
    let mut eqs = Vec::new();
    for c in constraints.split(" AND ") {
        let column = c.strip_suffix("=?")?;
        let mut values = list.bool_eqs.iter().filter(|(f, _)| f == column);
        let &(_, value) = values.next()?;
        if values.any(|(_, v)| *v != value) {
            return None;
        }
        eqs.push((column, value));
    }
    Some(eqs)
}

/// Whether `eqs` match at least 1 in [`SCAN_FROM`] rows of `table` (two counts, through
/// an index).
fn common(conn: &Connection, table: &str, eqs: &[(&str, bool)]) -> rusqlite::Result<bool> {
    let table = Ident(table);
    let all: i64 = conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
    let mut sql = format!("SELECT COUNT(*) FROM {table} WHERE ");
    for (i, (column, value)) in eqs.iter().enumerate() {
        if i > 0 {
            sql.push_str(" AND ");
        }
        let _ = write!(sql, "{} = {}", Ident(column), i64::from(*value));
    }
    let matching: i64 = conn.query_row(&sql, [], |r| r.get(0))?;
    Ok(all > 0 && matching.saturating_mul(SCAN_FROM) >= all)
}

/// Whether [`list_sql`] should run the unindexed count for `list` (`own`: the list's binds).
fn count_scans(conn: &Connection, list: &CompiledQuery, own: &[QValue]) -> rusqlite::Result<bool> {
    let details = plan(conn, &list.count_sql, own)?;
    let [only] = details.as_slice() else {
        return Ok(false);
    };
    match search(only, &list.table).and_then(|(_, c)| bool_constraints(list, c)) {
        Some(eqs) => common(conn, &list.table, &eqs),
        None => Ok(false),
    }
}

/// When [`list_sql`] should run the unindexed page statement for `list`: the order the index
/// of its plan fed rows to the sort in, to break ties with. `None`: keep the list's own.
fn page_order(
    conn: &Connection,
    list: &CompiledQuery,
    params: &[QValue],
) -> rusqlite::Result<Option<Vec<TieBreak>>> {
    let details = plan(conn, &list.select_sql, params)?;
    let Some((index, constraints)) = search_then_sort(&details, &list.table) else {
        return Ok(None);
    };
    let Some(eqs) = bool_constraints(list, constraints) else {
        return Ok(None);
    };
    // the index's key columns: the constrained ones first, then the order it gives the rest
    let mut stmt = conn.prepare(
        "SELECT cid, name, \"desc\", coll FROM pragma_index_xinfo(?1) WHERE key = 1 ORDER BY seqno",
    )?;
    let keys = stmt
        .query_map([index], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if keys.len() < eqs.len()
        || eqs
            .iter()
            .zip(&keys)
            .any(|((c, _), (_, name, _, _))| name.as_deref() != Some(c))
    {
        return Ok(None);
    }
    let mut then_by = Vec::with_capacity(keys.len() - eqs.len() + 1);
    for (cid, name, desc, coll) in &keys[eqs.len()..] {
        match (cid, name) {
            // the rowid as a key column (cannot be, on a rowid table: kept for safety)
            (-1, _) => then_by.push(TieBreak {
                column: None,
                desc: *desc,
                collation: String::new(),
            }),
            (0.., Some(name)) => then_by.push(TieBreak {
                column: Some(name.clone()),
                desc: *desc,
                collation: coll.clone().unwrap_or_else(|| "BINARY".into()),
            }),
            // an expression: its order cannot be named by a column
            _ => return Ok(None),
        }
    }
    then_by.push(TieBreak {
        column: None,
        desc: false,
        collation: String::new(),
    });
    Ok(common(conn, &list.table, &eqs)?.then_some(then_by))
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
            bool_eqs: Vec::new(),
        };
        let params = [QValue::Integer(2), QValue::Integer(1), QValue::Integer(1)];
        let ids = |stmt: &mut Statement<'_>, params: &[QValue]| -> rusqlite::Result<Vec<String>> {
            let k = stmt.parameter_count();
            stmt.query_map(bound(params, k), |r| r.get(0))?.collect()
        };
        let own = list.select_sql.as_str();
        let count = list.count_sql.as_str();
        let (page, total) = list_page(&conn, own, count, &params, true, ids).unwrap();
        assert_eq!((page, total), (vec!["c".to_string()], Some(2)));
        let (page, total) = list_page(&conn, own, count, &params, false, ids).unwrap();
        assert_eq!((page, total), (vec!["c".to_string()], None));
        let sql = view_by_id("posts", &cond("`posts`.`n` >= ?1", false), 2);
        let one = [QValue::Integer(2), QValue::Text("a".into())];
        assert!(view(&conn, &sql, &one, ids).unwrap().is_empty());
    }

    /// A posts table as the benchmark's, `share` of its 400 rows published, and the list
    /// `wh` sorted by `-score`.
    fn flags(share_in_10: i64, wh: &str) -> (Connection, CompiledQuery) {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE `posts` (`id` TEXT PRIMARY KEY, `views` NUMERIC, `score` NUMERIC,
               `published` BOOLEAN DEFAULT FALSE NOT NULL);
             CREATE INDEX `idx_pv` ON `posts` (`published`, `views`);",
        )
        .unwrap();
        for i in 0..400i64 {
            conn.execute(
                "INSERT INTO `posts` VALUES (?1, ?2, ?3, ?4)",
                (format!("p{i}"), i % 7, i % 50, i % 10 < share_in_10),
            )
            .unwrap();
        }
        let list = CompiledQuery {
            table: "posts".into(),
            distinct: false,
            from_sql: "`posts`".into(),
            where_sql: wh.into(),
            order_sql: "`posts`.`score` DESC".into(),
            select_sql: format!(
                "SELECT `posts`.* FROM `posts` WHERE {wh} ORDER BY `posts`.`score` DESC \
                 LIMIT ?2 + 0 OFFSET ?3 + 0"
            ),
            count_sql: format!("SELECT COUNT(*) FROM `posts` WHERE {wh}"),
            params: Vec::new(),
            guards: Vec::new(),
            never: false,
            bool_eqs: vec![("published".into(), true)],
        };
        (conn, list)
    }

    #[test]
    fn a_bool_search_is_replaced_once_per_statement() {
        let wh = "(`posts`.`published` = 1 AND `posts`.`score` > ?1)";
        let params = [QValue::Integer(5), QValue::Integer(30), QValue::Integer(0)];
        let (conn, list) = flags(7, wh);
        let mut plans = PagePlans::default();
        let mut asked = Vec::new();
        let choose = |plans: &mut PagePlans, version: u64, asked: &mut Vec<Vec<TieBreak>>| {
            list_sql(&conn, plans, version, &list, &params, |then_by| {
                asked.push(then_by.to_vec());
                Some(("SELECT 'page'".into(), "SELECT 'count'".into()))
            })
            .unwrap()
        };
        // the page and the count (which fetches every row for `score`) both scan
        let both = ListSql {
            page: Some("SELECT 'page'".into()),
            count: Some("SELECT 'count'".into()),
        };
        assert_eq!(choose(&mut plans, 1, &mut asked), both);
        // the index's order: `views`, then the rowid
        let rowid = TieBreak {
            column: None,
            desc: false,
            collation: String::new(),
        };
        let views = TieBreak {
            column: Some("views".into()),
            desc: false,
            collation: "BINARY".into(),
        };
        assert_eq!(asked, [vec![views, rowid]]);
        // kept: not planned again until RECHECK_AFTER runs or a new schema version
        for _ in 0..10 {
            assert_eq!(choose(&mut plans, 1, &mut asked), both);
        }
        assert_eq!(asked.len(), 1);
        assert_eq!(choose(&mut plans, 2, &mut asked), both);
        assert_eq!(asked.len(), 2);
        plans.by_sql.get_mut(&list.select_sql).unwrap().left = 0;
        assert_eq!(choose(&mut plans, 2, &mut asked), both);
        assert_eq!(asked.len(), 3);

        // the bool alone: the covering index counts, only the page scans
        let (conn, list) = flags(7, "(`posts`.`published` = 1)");
        let sql = list_sql(&conn, &mut PagePlans::default(), 1, &list, &params, |_| {
            Some(("SELECT 'page'".into(), "SELECT 'count'".into()))
        });
        assert_eq!(sql.unwrap().count, None);

        // a bool 1 row in 10 matches: the search stays
        let (conn, list) = flags(1, wh);
        let mut plans = PagePlans::default();
        let sql = list_sql(&conn, &mut plans, 1, &list, &params, |_| {
            panic!("not asked")
        });
        assert_eq!(sql.unwrap(), ListSql::default());
        // no bool comparison: no plan asked
        let own = CompiledQuery {
            bool_eqs: Vec::new(),
            select_sql: "not even SQL".into(),
            ..list
        };
        let sql = list_sql(&conn, &mut plans, 1, &own, &params, |_| None).unwrap();
        assert_eq!(sql, ListSql::default());
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
