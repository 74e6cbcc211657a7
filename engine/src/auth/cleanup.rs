//! What follows any update or delete of an auth record, whichever path made it (an auth
//! flow, the records API, a batch, a cascade): PocketBase's record hooks for auth
//! collections, run in the same writer transaction as the write (as the write hook
//! `records::auth_hooks::AuthCleanup`).

use pocketbun_storage::collections::snapshot::Collections;
use pocketbun_storage::collections::{Collection, FieldKind};
use pocketbun_storage::random;

pub use crate::recstore::auth::{auth_state, AuthState};

/// What PocketBase's record update hooks do after any update of an auth record (an auth
/// flow or a records-API/batch write), by what changed since `before`: a record that becomes
/// verified loses the provider links made while anyone could have claimed its email, and
/// with them its tokens (a key from `fresh_key`, made only then); a new tokenKey voids the record's pending OTPs; a new
/// password ends its MFA sessions and forgets its known login origins.
pub fn after_auth_update(
    conn: &pocketbun_storage::rusqlite::Connection,
    table: &str,
    coll_id: &str,
    id: &str,
    before: AuthState,
    fresh_key: impl FnOnce() -> String,
) -> pocketbun_storage::rusqlite::Result<()> {
    use crate::recstore::{auth, authrows};
    let Some(after) = auth_state(conn, table, id)? else {
        return Ok(());
    };
    let (was_verified, old_key, old_hash) = before;
    let (verified, mut key, hash) = after;
    if !was_verified && verified {
        let removed = authrows::delete_external_auths(conn, coll_id, id)?;
        if removed > 0 {
            key = fresh_key();
            auth::set_token_key(conn, table, id, &key)?;
        }
    }
    if key != old_key {
        authrows::delete_otps(conn, coll_id, id)?;
    }
    if hash != old_hash {
        authrows::delete_mfas_and_origins(conn, coll_id, id)?;
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
    for table in crate::recstore::authrows::PER_RECORD {
        if schema.by_name(table).is_some() {
            crate::recstore::authrows::delete_of_record(conn, table, coll_id, id)?;
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
