//! Statements on record tables by id or by a field: the by-id load every write and event
//! uses, the view endpoint's plain statement (kept per worker in [`ViewSql`]), identity and
//! relation lookups, unique and existence checks, insert, update, delete, and the clean-ups
//! a delete cascades into. Rows that become records are read by the caller from the
//! statement returned here (`records::Arena::load`); scalar answers come back typed.

use super::value::{SqlRef, SqlVal};
use pocketbun_storage::rusqlite::{
    self, params_from_iter, CachedStatement, Connection, OptionalExtension, Statement, ToSql,
};
use pocketbun_storage::Ident;
use std::collections::HashMap;
use std::rc::Rc;

/// The one statement every by-id load uses (`SELECT *`, `?1` the id): the write path's
/// reads, its rebase inside a batch job and the realtime event of a write.
pub fn by_id<'c>(conn: &'c Connection, table: &str) -> rusqlite::Result<CachedStatement<'c>> {
    // pushed, not `format!`ed: this runs for every write's re-read (~0.4k instructions less)
    let mut sql = String::with_capacity(48 + table.len());
    sql.push_str("SELECT * FROM ");
    Ident(table).push_to(&mut sql);
    sql.push_str(" WHERE `id` = ?1 LIMIT 1");
    conn.prepare_cached(&sql)
}

/// The record of `table` whose `column` equals `?1` (`nocase`: compared with NOCASE): the
/// auth flows' lookups by id, email, username or another identity field.
pub fn by_field<'c>(
    conn: &'c Connection,
    table: &str,
    column: &str,
    nocase: bool,
) -> rusqlite::Result<CachedStatement<'c>> {
    conn.prepare_cached(&format!(
        "SELECT * FROM {} WHERE {} = ?1{} LIMIT 1",
        Ident(table),
        Ident(column),
        if nocase { " COLLATE NOCASE" } else { "" }
    ))
}

/// Most collection names whose plain view statement a worker keeps.
const MAX_VIEW_SQL: usize = 256;

/// The view endpoint's statement without a rule, per collection name: it depends on the name
/// only, so a worker builds it once (a field of the worker's `records::db::Db`).
#[derive(Default)]
pub struct ViewSql {
    /// foldhash: one lookup per view (SipHash cost ~160 instructions of it)
    by_name: HashMap<String, Rc<str>, foldhash::fast::RandomState>,
}

impl ViewSql {
    /// The statement for `table` (`?1` the id).
    pub fn get(&mut self, table: &str) -> Rc<str> {
        if let Some(sql) = self.by_name.get(table) {
            return sql.clone();
        }
        if self.by_name.len() >= MAX_VIEW_SQL {
            self.by_name.clear();
        }
        let t = Ident(table);
        let sql: Rc<str> = format!("SELECT {t}.* FROM {t} WHERE {t}.`id` = ?1 LIMIT 1").into();
        self.by_name.insert(table.to_string(), sql.clone());
        sql
    }
}

/// The statement for the rows of `table` whose id is in the JSON array `?1` (expand without
/// a rule; [`super::rules::rows_in_ids`] with one).
pub fn in_ids(table: &str) -> String {
    let t = Ident(table);
    format!("SELECT {t}.* FROM {t} WHERE {t}.`id` IN (SELECT value FROM json_each(?1))")
}

/// The columns `id` then `columns` of record `id` of `table`, handed to `read` (the caller's
/// auth record, as its rules read it).
pub fn columns_by_id<T>(
    conn: &Connection,
    table: &str,
    columns: impl Iterator<Item = impl AsRef<str>>,
    id: &str,
    read: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Option<T>> {
    let mut sql = String::from("SELECT `id`");
    for c in columns {
        sql.push_str(", ");
        Ident(c.as_ref()).push_to(&mut sql);
    }
    sql.push_str(" FROM ");
    Ident(table).push_to(&mut sql);
    sql.push_str(" WHERE `id` = ?1 LIMIT 1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(row) => read(row).map(Some),
        None => Ok(None),
    }
}

/// Whether `table` has a record `id` (`nocase`: ids compared with NOCASE, as a custom id
/// pattern's uniqueness check does).
pub fn exists(conn: &Connection, table: &str, id: &str, nocase: bool) -> rusqlite::Result<bool> {
    if nocase {
        let sql = format!(
            "SELECT 1 FROM {} WHERE `id` = ?1 COLLATE NOCASE LIMIT 1",
            Ident(table)
        );
        let found: Option<i64> = conn
            .prepare_cached(&sql)?
            .query_row([id], |r| r.get(0))
            .optional()?;
        Ok(found.is_some())
    } else {
        let sql = format!("SELECT 1 FROM {} WHERE `id` = ?1 LIMIT 1", Ident(table));
        Ok(conn.query_row(&sql, [id], |_| Ok(())).optional()?.is_some())
    }
}

/// How many records of `table` have the id `id` (0 or 1).
pub fn count_id(conn: &Connection, table: &str, id: &str) -> rusqlite::Result<i64> {
    let sql = format!("SELECT count(*) FROM {} WHERE `id` = ?1", Ident(table));
    conn.prepare_cached(&sql)
        .and_then(|mut st| st.query_row([id], |r| r.get(0)))
}

/// How many records of `table` have an id in the JSON array `ids`.
pub fn count_ids(conn: &Connection, table: &str, ids: &str) -> rusqlite::Result<i64> {
    let sql = format!(
        "SELECT count(*) FROM {} WHERE `id` IN (SELECT value FROM json_each(?1))",
        Ident(table)
    );
    conn.prepare_cached(&sql)
        .and_then(|mut st| st.query_row([ids], |r| r.get(0)))
}

/// Every id of `table` (truncating a collection deletes them one by one).
pub fn all_ids(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let sql = format!("SELECT `id` FROM {}", Ident(table));
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.collect()
}

/// Inserts one record: `cols` are `(column, value)` pairs.
pub fn insert<V: ToSql>(
    conn: &Connection,
    table: &str,
    cols: &[(String, V)],
) -> rusqlite::Result<usize> {
    // built by hand: the `format!`/`join` version cost ~12k instructions per insert
    let table = Ident(table);
    let mut sql = String::with_capacity(32 + table.0.len() + cols.len() * 24);
    sql.push_str("INSERT INTO ");
    table.push_to(&mut sql);
    sql.push_str(" (");
    for (i, (n, _)) in cols.iter().enumerate() {
        if i > 0 {
            sql.push(',');
        }
        Ident(n).push_to(&mut sql);
    }
    sql.push_str(") VALUES (");
    // `?` binds in order like `?1, ?2, …`; the numbered form cost a `write!` per column
    // (~2.1k instructions for 8 columns, callgrind under a create load)
    for i in 0..cols.len() {
        if i > 0 {
            sql.push(',');
        }
        sql.push('?');
    }
    sql.push(')');
    conn.prepare_cached(&sql)
        .and_then(|mut st| st.execute(params_from_iter(cols.iter().map(|(_, v)| v))))
}

/// Updates the columns of `cols` (`column=?i` in order) of record `id`
/// (`?{cols.len() + 1}`): the records API's update.
pub fn update<V: ToSql>(
    conn: &Connection,
    table: &str,
    cols: &[(String, V)],
    id: &V,
) -> rusqlite::Result<usize> {
    let sets: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, (n, _))| format!("{}=?{}", Ident(n), i + 1))
        .collect();
    let sql = format!(
        "UPDATE {} SET {} WHERE `id` = ?{}",
        Ident(table),
        sets.join(","),
        cols.len() + 1
    );
    let values = cols.iter().map(|(_, v)| v).chain(std::iter::once(id));
    conn.prepare_cached(&sql)
        .and_then(|mut st| st.execute(params_from_iter(values)))
}

/// The auth flows' update statement: `column = ?i` from `?2` on, the id `?1`, built before
/// the writer job runs it.
pub fn update_by_id_sql<'a>(table: &str, names: impl Iterator<Item = &'a str>) -> String {
    let assignments = names
        .enumerate()
        .map(|(i, name)| format!("{} = ?{}", Ident(name), i + 2))
        .collect::<Vec<_>>()
        .join(", ");
    format!("UPDATE {} SET {assignments} WHERE `id` = ?1", Ident(table))
}

/// Runs a statement [`update_by_id_sql`] built.
pub fn run_update(conn: &Connection, sql: &str, values: &[SqlVal]) -> rusqlite::Result<usize> {
    conn.execute(sql, params_from_iter(values))
}

/// Deletes record `id` of `table`.
pub fn delete(conn: &Connection, table: &str, id: &str) -> rusqlite::Result<usize> {
    conn.execute(
        &format!("DELETE FROM {} WHERE `id` = ?1", Ident(table)),
        [id],
    )
}

/// The statement finding the records of `table` whose relation `column` holds `?1`
/// (`multiple`: a JSON array of ids; `skip_self`: the id itself left out, for a collection
/// relating to itself). Not cached: a delete's cascade runs it once per referencing field.
pub fn referencing<'c>(
    conn: &'c Connection,
    table: &str,
    column: &str,
    multiple: bool,
    skip_self: bool,
) -> rusqlite::Result<Statement<'c>> {
    let table = Ident(table);
    let col = format!("{table}.{}", Ident(column));
    let mut sql = if multiple {
        format!("SELECT {table}.* FROM {table} WHERE EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid({col}) THEN {col} ELSE json_array({col}) END) AS __je__ WHERE __je__.value = ?1)")
    } else {
        format!("SELECT {table}.* FROM {table} WHERE {col} = ?1")
    };
    if skip_self {
        sql.push_str(&format!(" AND {table}.`id` != ?1"));
    }
    conn.prepare(&sql)
}

/// Sets relation `column` of record `id` to `value`, and each of `autodates` to `now` (a
/// delete's clean-up of the records pointing at it).
pub fn set_relation(
    conn: &Connection,
    table: &str,
    column: &str,
    value: &str,
    autodates: impl Iterator<Item = impl AsRef<str>>,
    now: &str,
    id: &str,
) -> rusqlite::Result<usize> {
    let table = Ident(table);
    let mut sets = format!("{}=?1", Ident(column));
    let mut params = vec![SqlRef::Text(value)];
    for name in autodates {
        params.push(SqlRef::Text(now));
        sets.push_str(&format!(",{}=?{}", Ident(name.as_ref()), params.len()));
    }
    params.push(SqlRef::Text(id));
    conn.execute(
        &format!("UPDATE {table} SET {sets} WHERE `id` = ?{}", params.len()),
        params_from_iter(params),
    )
}

/// The `id` of the record of `table` whose file `column` holds `filename` (`multiple`: a
/// JSON array of names), the protected-file check's lookup.
pub fn id_by_file(
    conn: &Connection,
    table: &str,
    column: &str,
    multiple: bool,
    filename: &str,
) -> rusqlite::Result<Option<String>> {
    let table = Ident(table);
    let col = Ident(column);
    let sql = if multiple {
        format!(
            "SELECT {table}.`id` FROM {table} INNER JOIN json_each(CASE WHEN json_valid({table}.{col}) \
             THEN {table}.{col} ELSE json_array({table}.{col}) END) AS `_je_file` \
             WHERE `_je_file`.`value` = ?1 LIMIT 1"
        )
    } else {
        format!("SELECT {table}.`id` FROM {table} WHERE {table}.{col} = ?1 LIMIT 1")
    };
    conn.query_row(&sql, [filename], |r| r.get(0)).optional()
}

/// `(record id, related id)` of each record of `table` whose relation `column` holds one of
/// the ids in the JSON array `?1` (`multiple`: the column is a JSON array): back-relation
/// expand, one statement for all parents.
pub fn back_relations(
    conn: &Connection,
    table: &str,
    column: &str,
    multiple: bool,
    ids: &str,
) -> rusqlite::Result<Vec<(String, String)>> {
    let table = Ident(table);
    let col = Ident(column);
    let sql = if multiple {
        format!(
            "SELECT {table}.`id`, je.value FROM {table}, json_each(CASE WHEN iif(json_valid({table}.{col}), json_type({table}.{col})='array', FALSE) THEN {table}.{col} ELSE json_array({table}.{col}) END) je WHERE je.value IN (SELECT value FROM json_each(?1))"
        )
    } else {
        format!(
            "SELECT {table}.`id`, {table}.{col} FROM {table} WHERE {table}.{col} IN (SELECT value FROM json_each(?1))"
        )
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([ids], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    rows.collect()
}

/// The first ten rows of a view collection's `select` under the temporary name `name` (the
/// collection form's preview), prepared.
pub fn view_preview<'c>(
    conn: &'c Connection,
    select: &str,
    name: &str,
) -> rusqlite::Result<Statement<'c>> {
    conn.prepare(&format!(
        "SELECT * FROM (SELECT * FROM ({select})) as {name} LIMIT 10"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE `posts` (`id` TEXT PRIMARY KEY, `title` TEXT, `tags` TEXT, `updated` TEXT);
             CREATE TABLE `my posts` (`id` TEXT PRIMARY KEY);",
        )
        .unwrap();
        conn
    }

    fn title(conn: &Connection, id: &str) -> Option<String> {
        let mut stmt = by_id(conn, "posts").unwrap();
        let mut rows = stmt.query([id]).unwrap();
        rows.next().unwrap().map(|r| r.get(1).unwrap())
    }

    #[test]
    fn insert_update_delete_round_trip() {
        let conn = db();
        let cols = vec![
            ("id".to_string(), SqlVal::Text("a".into())),
            ("title".to_string(), SqlVal::Text("one".into())),
        ];
        assert_eq!(insert(&conn, "posts", &cols).unwrap(), 1);
        assert_eq!(title(&conn, "a").as_deref(), Some("one"));
        let set = vec![("title".to_string(), SqlVal::Text("two".into()))];
        assert_eq!(
            update(&conn, "posts", &set, &SqlVal::Text("a".into())).unwrap(),
            1
        );
        assert_eq!(
            update(&conn, "posts", &set, &SqlVal::Text("zz".into())).unwrap(),
            0
        );
        assert_eq!(title(&conn, "a").as_deref(), Some("two"));
        assert!(exists(&conn, "posts", "a", false).unwrap());
        assert!(exists(&conn, "posts", "A", true).unwrap());
        assert!(!exists(&conn, "posts", "A", false).unwrap());
        assert_eq!(count_ids(&conn, "posts", r#"["a","b"]"#).unwrap(), 1);
        assert_eq!(delete(&conn, "posts", "a").unwrap(), 1);
        assert_eq!(title(&conn, "a"), None);
        assert_eq!(count_id(&conn, "posts", "a").unwrap(), 0);
    }

    #[test]
    fn names_are_quoted() {
        let conn = db();
        insert(
            &conn,
            "my posts",
            &[("id".to_string(), SqlVal::Text("x".into()))],
        )
        .unwrap();
        assert_eq!(all_ids(&conn, "my posts").unwrap(), vec!["x".to_string()]);
        assert!(exists(&conn, "my posts", "x", false).unwrap());
    }

    #[test]
    fn relation_lookups_and_clean_up() {
        let conn = db();
        for (id, tags) in [("p1", r#"["t1","t2"]"#), ("p2", "t1"), ("p3", r#"["t3"]"#)] {
            let cols = [
                ("id".to_string(), SqlVal::Text(id.into())),
                ("tags".to_string(), SqlVal::Text(tags.into())),
            ];
            insert(&conn, "posts", &cols).unwrap();
        }
        let ids = |multiple: bool| -> Vec<String> {
            let mut stmt = referencing(&conn, "posts", "tags", multiple, false).unwrap();
            let rows = stmt.query_map(["t1"], |r| r.get(0)).unwrap();
            rows.map(Result::unwrap).collect()
        };
        assert_eq!(ids(true), ["p1", "p2"]);
        assert_eq!(ids(false), ["p2"]);
        let mut back = back_relations(&conn, "posts", "tags", true, r#"["t1","t3"]"#).unwrap();
        back.sort();
        assert_eq!(back.len(), 3);
        assert_eq!(back[0], ("p1".to_string(), "t1".to_string()));
        set_relation(
            &conn,
            "posts",
            "tags",
            "[]",
            ["updated"].iter(),
            "now",
            "p1",
        )
        .unwrap();
        let (tags, updated): (String, String) = conn
            .query_row("SELECT tags, updated FROM posts WHERE id = 'p1'", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((tags.as_str(), updated.as_str()), ("[]", "now"));
        assert_eq!(
            id_by_file(&conn, "posts", "tags", true, "t3")
                .unwrap()
                .as_deref(),
            Some("p3")
        );
        assert_eq!(
            id_by_file(&conn, "posts", "tags", false, "t1")
                .unwrap()
                .as_deref(),
            Some("p2")
        );
    }

    #[test]
    fn view_statement_is_built_once_per_name() {
        let mut cache = ViewSql::default();
        let a = cache.get("posts");
        assert_eq!(
            &*a,
            "SELECT `posts`.* FROM `posts` WHERE `posts`.`id` = ?1 LIMIT 1"
        );
        assert!(Rc::ptr_eq(&a, &cache.get("posts")));
        for i in 0..MAX_VIEW_SQL {
            cache.get(&format!("t{i}"));
        }
        assert!(cache.by_name.len() <= MAX_VIEW_SQL);
    }
}
