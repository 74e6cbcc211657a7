//! PocketBase auth tokens: HS256 JWTs whose key is the record's `tokenKey` followed by its
//! collection's `authToken.secret`. Changing either (a password change rotates `tokenKey`)
//! kills every token issued before.
//!
//! An unusable token is not an error: the request simply goes on as a guest, as in PocketBase.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use pocketbun_storage::rusqlite::{params, OptionalExtension};
use pocketbun_storage::Reader;
use serde::Deserialize;

pub const SUPERUSERS: &str = "_superusers";

/// The authenticated record behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRecord {
    pub id: String,
    pub collection_id: String,
    pub collection_name: String,
}

impl AuthRecord {
    pub fn is_superuser(&self) -> bool {
        self.collection_name == SUPERUSERS
    }
}

#[derive(Deserialize)]
struct Claims {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "collectionId")]
    collection_id: String,
}

/// The token's claims, read before its signature can be checked (the key depends on them).
fn unverified_claims(token: &str) -> Option<Claims> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Resolves the `Authorization` header (a bare token or `Bearer <token>`) to its auth record.
pub fn authenticate(reader: &Reader, authorization: Option<&str>) -> Option<AuthRecord> {
    let raw = authorization?.trim();
    let token = raw
        .strip_prefix("Bearer ")
        .or_else(|| raw.strip_prefix("bearer "))
        .unwrap_or(raw)
        .trim();
    if token.is_empty() {
        return None;
    }
    let claims = unverified_claims(token)?;
    if claims.kind != "auth" {
        return None;
    }
    let (collection_name, secret) = reader
        .read(|conn| {
            conn.query_row(
                "SELECT name, json_extract(options, '$.authToken.secret') FROM _collections \
                 WHERE id = ?1 AND type = 'auth'",
                params![claims.collection_id],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)),
            )
            .optional()
            .map_err(Into::into)
        })
        .ok()??;
    let token_key: String = reader
        .read(|conn| {
            let sql = format!(
                "SELECT tokenKey FROM {} WHERE id = ?1",
                quote_identifier(&collection_name)
            );
            conn.query_row(&sql, params![claims.id], |r| r.get(0))
                .optional()
                .map_err(Into::into)
        })
        .ok()??;
    let key = format!("{token_key}{}", secret.unwrap_or_default());
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims = ["exp".to_string()].into_iter().collect();
    validation.leeway = 0;
    jsonwebtoken::decode::<serde_json::Value>(
        token,
        &DecodingKey::from_secret(key.as_bytes()),
        &validation,
    )
    .ok()?;
    Some(AuthRecord {
        id: claims.id,
        collection_id: claims.collection_id,
        collection_name,
    })
}

/// `name` as a quoted SQLite identifier (collection names come from `_collections`, but a
/// name is still data, never SQL).
pub fn quote_identifier(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}
