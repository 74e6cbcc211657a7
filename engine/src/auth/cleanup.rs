//! What follows any update or delete of an auth record, whichever path made it (an auth
//! flow, the records API, a batch, a cascade): PocketBase's record hooks for auth
//! collections, run in the same writer transaction as the write (as the write hook
//! `records::auth_hooks::AuthCleanup`).

use pocketbun_storage::collections::snapshot::Collections;
use pocketbun_storage::collections::{Collection, FieldKind};
use pocketbun_storage::random;
use pocketbun_storage::rusqlite::{params, OptionalExtension};
use pocketbun_storage::Ident;

/// What [`after_auth_update`] compares: an auth record's `(verified, tokenKey, password
/// hash)` as stored , `None` when there is no such record.
pub type AuthState = (bool, String, String);

pub fn auth_state(
    conn: &pocketbun_storage::rusqlite::Connection,
    table: Ident,
    id: &str,
) -> pocketbun_storage::rusqlite::Result<Option<AuthState>> {
    conn.prepare_cached(&format!(
        "SELECT `verified`, `tokenKey`, `password` FROM {table} WHERE `id` = ?1"
    ))?
    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
    .optional()
}

/// What PocketBase's record update hooks do after any update of an auth record (an auth
/// flow or a records-API/batch write), by what changed since `before`: a record that becomes
/// verified loses the provider links made while anyone could have claimed its email, and
/// with them its tokens (a key from `fresh_key`, made only then); a new tokenKey voids the record's pending OTPs; a new
/// password ends its MFA sessions and forgets its known login origins.
pub fn after_auth_update(
    conn: &pocketbun_storage::rusqlite::Connection,
    table: Ident,
    coll_id: &str,
    id: &str,
    before: AuthState,
    fresh_key: impl FnOnce() -> String,
) -> pocketbun_storage::rusqlite::Result<()> {
    let Some(after) = auth_state(conn, table, id)? else {
        return Ok(());
    };
    let (was_verified, old_key, old_hash) = before;
    let (verified, mut key, hash) = after;
    let by_record = "WHERE `collectionRef` = ?1 AND `recordRef` = ?2";
    if !was_verified && verified {
        let removed = conn.execute(
            &format!("DELETE FROM `_externalAuths` {by_record}"),
            params![coll_id, id],
        )?;
        if removed > 0 {
            key = fresh_key();
            conn.execute(
                &format!("UPDATE {table} SET `tokenKey` = ?2 WHERE `id` = ?1"),
                params![id, key],
            )?;
        }
    }
    if key != old_key {
        conn.execute(
            &format!("DELETE FROM `_otps` {by_record}"),
            params![coll_id, id],
        )?;
    }
    if hash != old_hash {
        for t in ["`_mfas`", "`_authOrigins`"] {
            conn.execute(
                &format!("DELETE FROM {t} {by_record}"),
                params![coll_id, id],
            )?;
        }
    }
    Ok(())
}

/// What PocketBase's record delete hooks remove with a deleted auth record: its provider
/// links, known login origins, MFA sessions and OTPs (each table only where `schema` has it).
pub fn after_auth_delete(
    conn: &pocketbun_storage::rusqlite::Connection,
    schema: &Collections,
    coll_id: &str,
    id: &str,
) -> pocketbun_storage::rusqlite::Result<()> {
    for table in ["_externalAuths", "_authOrigins", "_mfas", "_otps"] {
        if schema.by_name(table).is_some() {
            conn.execute(
                &format!(
                    "DELETE FROM {} WHERE `collectionRef` = ?1 AND `recordRef` = ?2",
                    Ident(table)
                ),
                [coll_id, id],
            )?;
        }
    }
    Ok(())
}

/// A fresh token key as the collection's `tokenKey` field generates them.
pub fn new_token_key(coll: &Collection) -> String {
    let pattern = coll
        .field("tokenKey")
        .and_then(|f| match &f.kind {
            FieldKind::Text {
                autogenerate_pattern,
                ..
            } => Some(autogenerate_pattern.clone()),
            _ => None,
        })
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "[a-zA-Z0-9]{50}".into());
    random::from_autogenerate_pattern(&pattern).unwrap_or_else(|_| random::random_string(50))
}
