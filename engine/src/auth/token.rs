//! PocketBase auth tokens: HS256 JWTs whose key is the record's `tokenKey` followed by its
//! collection's `authToken.secret`. Changing either (a password change rotates `tokenKey`)
//! kills every token issued before.
//!
//! An unusable token is not an error: the request simply goes on as a guest, as in PocketBase.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use pocketbun_storage::collections::model::CollectionType;
use pocketbun_storage::collections::snapshot::Collections;
use pocketbun_storage::Reader;
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::HashMap;

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

/// The token in an `Authorization` header: bare or `Bearer <token>`.
fn bearer(authorization: Option<&str>) -> Option<&str> {
    let raw = authorization?.trim();
    Some(
        raw.strip_prefix("Bearer ")
            .or_else(|| raw.strip_prefix("bearer "))
            .unwrap_or(raw)
            .trim(),
    )
}

/// Resolves the `Authorization` header (a bare token or `Bearer <token>`) to its auth record.
pub fn authenticate(
    reader: &Reader,
    verified: &Verified,
    authorization: Option<&str>,
) -> Option<AuthRecord> {
    verify_typed(
        reader,
        verified,
        bearer(authorization)?,
        TYPE_AUTH,
        "authToken",
    )
}

/// As [`authenticate`], taking the collection's name and secret from the request's schema
/// snapshot (replaced before a schema change is answered) instead of parsing
/// `_collections.options` on every request.
pub fn authenticate_in(
    reader: &Reader,
    verified: &Verified,
    collections: &Collections,
    authorization: Option<&str>,
) -> Option<AuthRecord> {
    let token = bearer(authorization)?;
    if token.is_empty() {
        return None;
    }
    let claims = unverified_claims(token)?;
    if claims.kind != TYPE_AUTH {
        return None;
    }
    let Some(coll) = collections.by_id(&claims.collection_id) else {
        // not in this snapshot: let the database have the last word
        return verify_typed(reader, verified, token, TYPE_AUTH, "authToken");
    };
    if coll.kind != CollectionType::Auth {
        return None;
    }
    let name = coll.name.clone();
    let secret = coll.auth.auth_token.secret.clone();
    verify_signature(reader, verified, token, claims, name, Some(secret))
}

/// The record a valid, unexpired token of `kind` was issued for; `secret_option` names the
/// collection option whose secret signs that kind (`authToken`, `fileToken`, ...).
pub fn verify_typed(
    reader: &Reader,
    verified: &Verified,
    token: &str,
    kind: &str,
    secret_option: &'static str,
) -> Option<AuthRecord> {
    if token.is_empty() {
        return None;
    }
    let claims = unverified_claims(token)?;
    if claims.kind != kind {
        return None;
    }
    let (collection_name, secret) = reader
        .read(|conn| {
            Ok(crate::recstore::auth::collection_secret(
                conn,
                &claims.collection_id,
                secret_option,
            )?)
        })
        .ok()??;
    verify_signature(reader, verified, token, claims, collection_name, secret)
}

/// Checks `token` against its record's `tokenKey` and the collection's `secret`.
fn verify_signature(
    reader: &Reader,
    verified: &Verified,
    token: &str,
    claims: Claims,
    collection_name: String,
    secret: Option<String>,
) -> Option<AuthRecord> {
    let token_key: String = reader
        .read(|conn| {
            Ok(crate::recstore::auth::token_key(
                conn,
                &collection_name,
                &claims.id,
            )?)
        })
        .ok()??;
    let key = format!("{token_key}{}", secret.unwrap_or_default());
    if !verified.signature_ok(token, key) {
        return None;
    }
    Some(AuthRecord {
        id: claims.id,
        collection_id: claims.collection_id,
        collection_name,
    })
}

/// Most tokens a [`Verified`] remembers (it starts over when full).
const MAX_VERIFIED: usize = 4096;

/// Tokens verified so far: token → (key it was verified with, its `exp`). One per worker
/// (`records::db::Db` holds it; not `Sync`, no lock) and one per other thread that checks
/// tokens (the log writer).
#[derive(Default)]
pub struct Verified(RefCell<HashMap<String, (String, u64)>>);

impl Verified {
    /// Whether `token` is an HS256 JWT signed with `key` whose `exp` has not passed (and
    /// whose `nbf`, if any, has). A client sends the same token with every request: the HMAC
    /// and claim parsing are done once per worker, and repeated while the key (the record's
    /// current `tokenKey` + the collection's secret, read anew each time) is the same and
    /// `exp` is still ahead.
    fn signature_ok(&self, token: &str, key: String) -> bool {
        let now = unix_now().max(0) as u64;
        let known = (self.0.borrow())
            .get(token)
            .is_some_and(|(k, exp)| *k == key && now < *exp);
        if known {
            return true;
        }
        let Some(exp) = signature_exp(token, &key) else {
            return false;
        };
        if let Some(exp) = exp {
            let mut v = self.0.borrow_mut();
            if v.len() >= MAX_VERIFIED {
                v.clear();
            }
            v.insert(token.to_string(), (key, exp));
        }
        true
    }

    /// Tokens remembered (tests).
    #[cfg(test)]
    pub(crate) fn remembered(&self) -> usize {
        self.0.borrow().len()
    }
}

/// `Some(exp)` when `token` is valid for `key` (`exp`: its expiry, `None` when it has no
/// numeric one), `None` when it is not.
fn signature_exp(token: &str, key: &str) -> Option<Option<u64>> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims = ["exp".to_string()].into_iter().collect();
    // a token is not valid before its `nbf`, when it has one (PocketBase's JWT parser checks
    // it too); such a token is not cached, so it is checked again once it becomes valid
    validation.validate_nbf = true;
    validation.leeway = 0;
    let data = jsonwebtoken::decode::<serde_json::Value>(
        token,
        &DecodingKey::from_secret(key.as_bytes()),
        &validation,
    )
    .ok()?;
    Some(data.claims.get("exp").and_then(serde_json::Value::as_u64))
}

/// The token types PocketBase issues for auth records.
pub const TYPE_AUTH: &str = "auth";
pub const TYPE_FILE: &str = "file";
pub const TYPE_VERIFICATION: &str = "verification";
pub const TYPE_PASSWORD_RESET: &str = "passwordReset";
pub const TYPE_EMAIL_CHANGE: &str = "emailChange";

/// The token could not be made (PocketBase: an empty signing key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningError;

impl std::fmt::Display for SigningError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("missing or invalid signing key")
    }
}

impl std::error::Error for SigningError {}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A new HS256 token carrying `claims` plus `exp` = now + `duration` seconds, signed with
/// `key`. The header and the (key-sorted, Go-escaped) payload are written byte for byte as
/// PocketBase's JWT library writes them.
pub fn issue(
    claims: &serde_json::Map<String, serde_json::Value>,
    key: &str,
    duration: i64,
) -> Result<String, SigningError> {
    use base64::Engine as _;
    if key.is_empty() {
        return Err(SigningError);
    }
    let mut payload: std::collections::BTreeMap<&str, &serde_json::Value> =
        claims.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let exp = serde_json::Value::from(unix_now().saturating_add(duration));
    payload.entry("exp").or_insert(&exp);
    // no cause: a map of strings to JSON values always encodes
    let json = crate::error::to_go_json(&payload).map_err(|_| SigningError)?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    // {"alg":"HS256","typ":"JWT"}
    let mut out = String::from("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.");
    out.push_str(&b64.encode(json));
    let sig = jsonwebtoken::crypto::sign(
        out.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
        Algorithm::HS256,
    )
    // no cause: HMAC signing takes any key and never fails
    .map_err(|_| SigningError)?;
    out.push('.');
    out.push_str(&sig);
    Ok(out)
}

/// The claims of `token` if it is an HS256 token signed with `key` that has not expired
/// (`exp`, when present, is checked; so are `nbf` and `iat` when present).
pub fn verify(token: &str, key: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims = Default::default();
    validation.validate_nbf = true;
    validation.leeway = 0;
    let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
        token,
        &DecodingKey::from_secret(key.as_bytes()),
        &validation,
    )
    .ok()?;
    let claims = data.claims;
    if let Some(iat) = claims.get("iat").and_then(serde_json::Value::as_f64) {
        if iat > unix_now() as f64 {
            return None;
        }
    }
    Some(claims)
}

/// The payload of `token` without checking its signature (PocketBase's `ParseUnverifiedJWT`,
/// which still refuses tokens whose `exp` has passed).
pub fn unverified_payload(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let claims = raw_payload(token)?;
    if let Some(exp) = claims.get("exp").and_then(serde_json::Value::as_f64) {
        if exp < unix_now() as f64 {
            return None;
        }
    }
    Some(claims)
}

/// The payload of `token`, expired or not, signature unchecked.
pub fn raw_payload(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    use base64::Engine as _;
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The raw token of an `Authorization` header value (a bare token or `Bearer <token>`).
pub fn header_token(authorization: Option<&str>) -> &str {
    let raw = authorization.unwrap_or("").trim();
    raw.strip_prefix("Bearer ")
        .or_else(|| raw.strip_prefix("bearer "))
        .unwrap_or(raw)
        .trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_with_their_key_only() {
        let mut claims = serde_json::Map::new();
        claims.insert("id".into(), "abc".into());
        claims.insert("type".into(), TYPE_AUTH.into());
        let token = issue(&claims, "k1", 60).unwrap();
        assert!(token.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."));
        let back = verify(&token, "k1").unwrap();
        assert_eq!(back["id"], "abc");
        assert!(back["exp"].as_i64().unwrap() > unix_now());
        assert!(verify(&token, "k2").is_none());
        assert_eq!(issue(&claims, "", 60), Err(SigningError));
        let expired = issue(&claims, "k1", -10).unwrap();
        assert!(verify(&expired, "k1").is_none());
        assert!(unverified_payload(&expired).is_none());
        assert_eq!(unverified_payload(&token).unwrap()["type"], "auth");
    }

    #[test]
    fn a_cache_remembers_a_token_with_its_key() {
        let mut claims = serde_json::Map::new();
        claims.insert("id".into(), "abc".into());
        let token = issue(&claims, "k1", 60).unwrap();
        let verified = Verified::default();
        assert!(verified.signature_ok(&token, "k1".into()));
        assert!(verified.signature_ok(&token, "k1".into()));
        assert_eq!(verified.remembered(), 1);
        // a remembered token with another key is checked again, and refused
        assert!(!verified.signature_ok(&token, "k2".into()));
    }

    #[test]
    fn verifies_pocketbase_fixture_tokens() {
        // the fixture's users token (tokenKey + users authToken secret of the test data)
        let t = "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6IjRxMXhsY2xtZmxva3UzMyIsInR5cGUiOiJhdXRoIiwiY29sbGVjdGlvbklkIjoiX3BiX3VzZXJzX2F1dGhfIiwiZXhwIjoyNTI0NjA0NDYxLCJyZWZyZXNoYWJsZSI6dHJ1ZX0.ZT3F0Z3iM-xbGgSG3LEKiEzHrPHr8t8IuHLZGGNuxLo";
        assert_eq!(unverified_payload(t).unwrap()["refreshable"], true);
        let key = "tfYe7rCTX4D2KuWQY3pJjBifgsrMbecyXBatEPjrSfGEGS2jh6\
                   PjVU4hAV7CZIWbCByJHkDcMUlSEWCLI6M5aWSZOpEq0a3rYxKT";
        assert_eq!(verify(t, key).unwrap()["id"], "4q1xlclmfloku33");
        assert!(verify(t, &key[1..]).is_none());
        assert_eq!(header_token(Some(&format!("Bearer {t}"))), t);
    }
}
