//! The rows PocketBase keeps beside auth records, in its system collections: one-time
//! passwords (`_otps`), MFA sessions (`_mfas`), known login origins (`_authOrigins`) and
//! OAuth2 provider links (`_externalAuths`). Each is tied to a record by `collectionRef` and
//! `recordRef`.

use pocketbun_storage::rusqlite::{self, params, Connection, OptionalExtension};
use pocketbun_storage::Ident;

/// The system tables whose rows belong to one auth record, in the order a record's delete
/// removes them.
pub const PER_RECORD: [&str; 4] = ["_externalAuths", "_authOrigins", "_mfas", "_otps"];

/// Deletes the rows of `table` (one of [`PER_RECORD`]) that belong to record `record_id` of
/// the collection `collection_id`.
pub fn delete_of_record(
    conn: &Connection,
    table: &str,
    collection_id: &str,
    record_id: &str,
) -> rusqlite::Result<usize> {
    conn.execute(
        &format!(
            "DELETE FROM {} WHERE `collectionRef` = ?1 AND `recordRef` = ?2",
            Ident(table)
        ),
        [collection_id, record_id],
    )
}

/// The clean-ups after an auth-record update, each on its own table (see
/// `auth::cleanup::after_auth_update`).
pub fn delete_external_auths(
    conn: &Connection,
    coll_id: &str,
    id: &str,
) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM `_externalAuths` WHERE `collectionRef` = ?1 AND `recordRef` = ?2",
        params![coll_id, id],
    )
}

/// See [`delete_external_auths`].
pub fn delete_otps(conn: &Connection, coll_id: &str, id: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM `_otps` WHERE `collectionRef` = ?1 AND `recordRef` = ?2",
        params![coll_id, id],
    )
}

/// See [`delete_external_auths`]: a new password ends MFA sessions and forgets origins.
pub fn delete_mfas_and_origins(conn: &Connection, coll_id: &str, id: &str) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM `_mfas` WHERE `collectionRef` = ?1 AND `recordRef` = ?2",
        params![coll_id, id],
    )?;
    conn.execute(
        "DELETE FROM `_authOrigins` WHERE `collectionRef` = ?1 AND `recordRef` = ?2",
        params![coll_id, id],
    )?;
    Ok(())
}

/// Rows of `table` (`_mfas` or `_otps`) of the auth collection `collection_id` created
/// before `before`: deleted by the expiry cron.
pub fn delete_created_before(
    conn: &Connection,
    table: &str,
    collection_id: &str,
    before: &str,
) -> rusqlite::Result<usize> {
    conn.execute(
        &format!("DELETE FROM `{table}` WHERE collectionRef = ?1 AND created < ?2"),
        params![collection_id, before],
    )
}

/// Whether the system table `table` exists (an old database may lack `_mfas`/`_otps`).
pub fn table_exists(conn: &Connection, table: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1)",
        params![table],
        |r| r.get(0),
    )
}

/// `(collection id, option's duration in seconds)` of every auth collection: how long its
/// `option` (`mfa`, `otp`) rows live.
pub fn auth_durations(conn: &Connection, option: &str) -> rusqlite::Result<Vec<(String, i64)>> {
    let sql = format!(
        "SELECT id, COALESCE(json_extract(options, '$.{option}.duration'), 0) \
             FROM _collections WHERE type = 'auth'"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

// ---------------------------------------------------------------------------------------------
// _otps

/// `(id, created)` of the record's OTPs, newest first.
pub fn otps_of(
    conn: &Connection,
    coll_id: &str,
    record_id: &str,
) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT `id`, `created` FROM `_otps` WHERE `collectionRef` = ?1 \
         AND `recordRef` = ?2 ORDER BY `created` DESC",
    )?;
    let rows = stmt.query_map(params![coll_id, record_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Stores a new OTP (its hash; `sentTo` empty until the mail went out).
pub fn insert_otp(
    conn: &Connection,
    id: &str,
    coll_id: &str,
    record_id: &str,
    hash: &str,
    now: &str,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "INSERT INTO `_otps` (`id`, `collectionRef`, `recordRef`, `password`, `sentTo`, \
         `created`, `updated`) VALUES (?1, ?2, ?3, ?4, '', ?5, ?5)",
    )?
    .execute(params![id, coll_id, record_id, hash, now])
}

/// Remembers where OTP `id` was sent (once).
pub fn set_otp_sent_to(conn: &Connection, id: &str, to: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE `_otps` SET `sentTo` = ?2 WHERE `id` = ?1 AND `sentTo` = ''",
        params![id, to],
    )
}

/// Deletes OTP `id`.
pub fn delete_otp(conn: &Connection, id: &str) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM `_otps` WHERE `id` = ?1", [id])
}

/// One OTP row.
pub struct Otp {
    pub collection_ref: String,
    pub record_ref: String,
    pub hash: String,
    pub sent_to: String,
    pub created: String,
}

/// OTP `id`.
pub fn otp(conn: &Connection, id: &str) -> rusqlite::Result<Option<Otp>> {
    conn.prepare_cached(
        "SELECT `collectionRef`, `recordRef`, `password`, `sentTo`, `created` \
             FROM `_otps` WHERE `id` = ?1 LIMIT 1",
    )?
    .query_row([id], |r| {
        Ok(Otp {
            collection_ref: r.get(0)?,
            record_ref: r.get(1)?,
            hash: r.get(2)?,
            sent_to: r.get(3)?,
            created: r.get(4)?,
        })
    })
    .optional()
}

// ---------------------------------------------------------------------------------------------
// _mfas

/// Starts an MFA session `id` for the record after its first `method`.
pub fn insert_mfa(
    conn: &Connection,
    id: &str,
    coll_id: &str,
    record_id: &str,
    method: &str,
    now: &str,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "INSERT INTO `_mfas` (`id`, `collectionRef`, `recordRef`, `method`, \
         `created`, `updated`) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![id, coll_id, record_id, method, now])
}

/// `(collectionRef, recordRef, method, created)` of MFA session `id`.
pub fn mfa(
    conn: &Connection,
    id: &str,
) -> rusqlite::Result<Option<(String, String, String, String)>> {
    conn.prepare_cached(
        "SELECT `collectionRef`, `recordRef`, `method`, `created` FROM `_mfas` \
             WHERE `id` = ?1 LIMIT 1",
    )?
    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
    .optional()
}

/// Ends MFA session `id`.
pub fn delete_mfa(conn: &Connection, id: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM `_mfas` WHERE `id` = ?1")?
        .execute([id])
}

// ---------------------------------------------------------------------------------------------
// _authOrigins

/// `(id, fingerprint)` of the record's known login origins, newest first.
pub fn origins_of(
    conn: &Connection,
    coll_id: &str,
    record_id: &str,
) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT `id`, `fingerprint` FROM `_authOrigins` WHERE `collectionRef` = ?1 \
         AND `recordRef` = ?2 ORDER BY `created` DESC",
    )?;
    let rows = stmt.query_map(params![coll_id, record_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Forgets origin `id`.
pub fn delete_origin(conn: &Connection, id: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM `_authOrigins` WHERE `id` = ?1")?
        .execute([id])
}

/// Marks origin `id` as seen `now`.
pub fn touch_origin(conn: &Connection, id: &str, now: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached("UPDATE `_authOrigins` SET `updated` = ?2 WHERE `id` = ?1")?
        .execute(params![id, now])
}

/// Remembers a new origin of the record.
pub fn insert_origin(
    conn: &Connection,
    id: &str,
    coll_id: &str,
    record_id: &str,
    fingerprint: &str,
    now: &str,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "INSERT INTO `_authOrigins` (`id`, `collectionRef`, `recordRef`, \
         `fingerprint`, `created`, `updated`) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![id, coll_id, record_id, fingerprint, now])
}

// ---------------------------------------------------------------------------------------------
// _externalAuths

/// Links the provider's user `provider_id` to the record.
pub fn insert_external_auth(
    conn: &Connection,
    id: &str,
    coll_id: &str,
    record_id: &str,
    provider: &str,
    provider_id: &str,
    now: &str,
) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT INTO `_externalAuths` (`id`, `collectionRef`, `recordRef`, `provider`, \
         `providerId`, `created`, `updated`) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![id, coll_id, record_id, provider, provider_id, now],
    )
}

/// `(link id, record id)` of the link of the provider's user `provider_id` in the collection.
pub fn find_external_auth(
    conn: &Connection,
    coll_id: &str,
    provider: &str,
    provider_id: &str,
) -> rusqlite::Result<Option<(String, String)>> {
    conn.prepare_cached(
        "SELECT `id`, `recordRef` FROM `_externalAuths` WHERE `collectionRef` = ?1 \
         AND `provider` = ?2 AND `providerId` = ?3 LIMIT 1",
    )?
    .query_row(params![coll_id, provider, provider_id], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .optional()
}
