//! PocketBase file tokens: HS256 JWTs of type `file` whose key is the record's `tokenKey`
//! followed by its collection's `fileToken.secret` (the auth token scheme with another secret).

use crate::auth::token::quote_identifier;
use crate::auth::AuthRecord;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use pocketbun_storage::rusqlite::{params, OptionalExtension};
use pocketbun_storage::Reader;
use serde::Deserialize;

#[derive(Deserialize)]
struct Claims {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "collectionId")]
    collection_id: String,
}

fn unverified_claims(token: &str) -> Option<Claims> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The auth record a valid, unexpired file token was issued for.
pub fn verify_file_token(reader: &Reader, token: &str) -> Option<AuthRecord> {
    let token = token.trim();
    if token.is_empty() {
        return None;
    }
    let claims = unverified_claims(token)?;
    if claims.kind != "file" {
        return None;
    }
    let (collection_name, secret) = reader
        .read(|conn| {
            conn.query_row(
                "SELECT name, json_extract(options, '$.fileToken.secret') FROM _collections \
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
