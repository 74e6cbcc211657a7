//! The `superuser` command's statements on `_superusers` (it runs without the schema
//! snapshot, so it reads its collection's row from `_collections` itself): find, insert,
//! update and delete a superuser by email, and the installer's row and token key.

use super::value::SqlVal;
use pocketbun_storage::rusqlite::{self, params, Connection, OptionalExtension};
use pocketbun_storage::Ident;

/// `(id, name, fields, indexes)` of the collection `name_or_id` (name compared NOCASE).
pub fn collection_row(
    conn: &Connection,
    name_or_id: &str,
) -> rusqlite::Result<Option<(String, String, String, String)>> {
    conn.query_row(
        "SELECT id, name, fields, indexes FROM _collections
                 WHERE id = ?1 OR name = ?1 COLLATE NOCASE LIMIT 1",
        [name_or_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .optional()
}

/// The `options` JSON of collection `id`.
pub fn collection_options(conn: &Connection, id: &str) -> rusqlite::Result<String> {
    conn.query_row(
        "SELECT options FROM _collections WHERE id = ?1",
        [id],
        |r| r.get::<_, String>(0),
    )
}

/// `(id, email)` of the superuser `email` of `table` (`nocase`: the email index is NOCASE).
pub fn find_by_email(
    conn: &Connection,
    table: &str,
    email: &str,
    nocase: bool,
) -> rusqlite::Result<Option<(String, String)>> {
    let sql = format!(
        "SELECT id, email FROM {} WHERE email = ?1{} LIMIT 1",
        Ident(table),
        if nocase { " COLLATE NOCASE" } else { "" }
    );
    conn.query_row(&sql, [email], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

/// The id of the superuser `email` of `table`.
pub fn id_by_email(
    conn: &Connection,
    table: &str,
    email: &str,
) -> rusqlite::Result<Option<String>> {
    let sql = format!("SELECT id FROM {} WHERE email = ?1 LIMIT 1", Ident(table));
    conn.query_row(&sql, [email], |r| r.get(0)).optional()
}

/// `(id, tokenKey)` of the superuser `email` of `table`.
pub fn id_and_token_key(
    conn: &Connection,
    table: &str,
    email: &str,
) -> rusqlite::Result<(String, String)> {
    let sql = format!("SELECT id, tokenKey FROM {} WHERE email = ?1", Ident(table));
    conn.query_row(&sql, [email], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })
}

/// How many rows `table` has.
pub fn count(conn: &Connection, table: &str) -> rusqlite::Result<i64> {
    let sql = format!("SELECT count(*) FROM {}", Ident(table));
    conn.query_row(&sql, [], |r| r.get(0))
}

/// How many rows of `table` have another email than `email`.
pub fn count_other_than(conn: &Connection, table: &str, email: &str) -> rusqlite::Result<i64> {
    let sql = format!("SELECT count(*) FROM {} WHERE email != ?1", Ident(table));
    conn.query_row(&sql, [email], |r| r.get(0))
}

/// Inserts a row of `names` (`?1..?n`, comma-space separated) with `values`.
pub fn insert(
    conn: &Connection,
    table: &str,
    names: &[String],
    values: Vec<SqlVal>,
) -> rusqlite::Result<usize> {
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        Ident(table),
        names
            .iter()
            .map(|n| Ident(n).to_string())
            .collect::<Vec<_>>()
            .join(", "),
        (1..=names.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    conn.execute(&sql, rusqlite::params_from_iter(values))
}

/// Sets email `?2`, password hash `?3`, tokenKey `?4` and verified of superuser `?1`, and
/// each of the `on_update` autodates to `?5`.
#[allow(clippy::too_many_arguments)]
pub fn update<'a>(
    conn: &Connection,
    table: &str,
    on_update: impl Iterator<Item = &'a str>,
    id: &str,
    email: &str,
    hash: &str,
    token_key: &str,
    now: &str,
) -> rusqlite::Result<usize> {
    let mut sets = vec![
        "`email` = ?2".to_string(),
        "`password` = ?3".to_string(),
        "`tokenKey` = ?4".to_string(),
        "`verified` = TRUE".to_string(),
    ];
    for name in on_update {
        sets.push(format!("{} = ?5", Ident(name)));
    }
    let sql = format!(
        "UPDATE {} SET {} WHERE id = ?1",
        Ident(table),
        sets.join(", ")
    );
    conn.execute(&sql, params![id, email, hash, token_key, now])
}

/// Deletes superuser `id` of `table` (collection `collection_id`) and its rows in each of
/// `ref_tables` that exists.
pub fn delete(
    conn: &Connection,
    table: &str,
    collection_id: &str,
    id: &str,
    ref_tables: &[&str],
) -> rusqlite::Result<()> {
    for t in ref_tables {
        let exists: Option<i64> = conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [t],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            conn.execute(
                &format!(
                    "DELETE FROM {} WHERE collectionRef = ?1 AND recordRef = ?2",
                    Ident(t)
                ),
                params![collection_id, id],
            )?;
        }
    }
    conn.execute(&format!("DELETE FROM {} WHERE id = ?1", Ident(table)), [id])?;
    Ok(())
}
