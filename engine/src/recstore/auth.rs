//! Statements on auth collections: their records' token keys and passwords, the state the
//! clean-ups after an auth-record update compare, the superusers' own rules (the installer
//! row, the last superuser), and the auth options of `_collections` the token checks read.

use pocketbun_storage::rusqlite::{self, params, Connection, OptionalExtension};
use pocketbun_storage::Ident;

/// The collection's name and the secret its `option` (`authToken`, `fileToken`, ...) signs
/// with, for the auth collection `collection_id` (`None`: no such auth collection).
pub fn collection_secret(
    conn: &Connection,
    collection_id: &str,
    option: &str,
) -> rusqlite::Result<Option<(String, Option<String>)>> {
    let sql = format!(
        "SELECT name, json_extract(options, '$.{option}.secret') \
         FROM _collections WHERE id = ?1 AND type = 'auth'"
    );
    conn.prepare_cached(&sql)?
        .query_row(params![collection_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })
        .optional()
}

/// The `tokenKey` of record `id` of the auth collection `table`.
pub fn token_key(conn: &Connection, table: &str, id: &str) -> rusqlite::Result<Option<String>> {
    let sql = format!("SELECT tokenKey FROM {} WHERE id = ?1", Ident(table));
    conn.prepare_cached(&sql)?
        .query_row(params![id], |r| r.get(0))
        .optional()
}

/// An auth record's `(verified, tokenKey, password hash)` as stored, `None` when there is no
/// such record.
pub type AuthState = (bool, String, String);

/// The [`AuthState`] of record `id` of `table`.
pub fn auth_state(conn: &Connection, table: &str, id: &str) -> rusqlite::Result<Option<AuthState>> {
    conn.prepare_cached(&format!(
        "SELECT `verified`, `tokenKey`, `password` FROM {} WHERE `id` = ?1",
        Ident(table)
    ))?
    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
    .optional()
}

/// Sets the `tokenKey` of record `id` of `table`.
pub fn set_token_key(
    conn: &Connection,
    table: &str,
    id: &str,
    key: &str,
) -> rusqlite::Result<usize> {
    conn.execute(
        &format!(
            "UPDATE {} SET `tokenKey` = ?2 WHERE `id` = ?1",
            Ident(table)
        ),
        params![id, key],
    )
}

/// The statement replacing record `?2`'s password hash `?3` by `?1` (a rehash at a new cost;
/// a password changed meanwhile is left alone), built before the writer job runs it.
pub fn rehash_password_sql(table: &str) -> String {
    format!(
        "UPDATE {} SET `password` = ?1 WHERE `id` = ?2 AND `password` = ?3",
        Ident(table)
    )
}

/// Runs [`rehash_password_sql`]'s statement.
pub fn rehash_password(
    conn: &Connection,
    sql: &str,
    new: String,
    id: String,
    old: String,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute([new, id, old])
}

/// Some stored password hash of `table` (its cost tells what a login should spend on an
/// unknown identity).
pub fn any_password_hash(conn: &Connection, table: &str) -> rusqlite::Result<Option<String>> {
    let sql = format!("SELECT `password` FROM {} LIMIT 1", Ident(table));
    conn.query_row(&sql, [], |r| r.get::<_, String>(0))
        .optional()
}

/// Deletes the superuser `email` of `table` (`_superusers`), if any: the installer's
/// temporary account.
pub fn delete_by_email(conn: &Connection, table: &str, email: &str) -> rusqlite::Result<usize> {
    conn.execute(
        &format!("DELETE FROM {} WHERE email = ?1", Ident(table)),
        [email],
    )
}

/// How many superusers there are.
pub fn count_superusers(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT COUNT(*) FROM `_superusers`", [], |r| r.get(0))
}

/// `(id, name, type, fields, options)` of the collection `name_or_id` (the name compared
/// case-insensitively): what the auth emails need of it.
pub type CollectionRow = (String, String, String, Option<String>, Option<String>);

/// The [`CollectionRow`] of `name_or_id`.
pub fn collection_row(
    conn: &Connection,
    name_or_id: &str,
) -> rusqlite::Result<Option<CollectionRow>> {
    conn.prepare_cached(
        "SELECT `id`, `name`, `type`, `fields`, `options` FROM `_collections` \
         WHERE `id` = ?1 OR LOWER(`name`) = LOWER(?1) LIMIT 1",
    )?
    .query_row([name_or_id], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .optional()
}
