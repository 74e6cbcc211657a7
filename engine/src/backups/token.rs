//! PocketBase file tokens: HS256 JWTs of type `file` whose key is the record's `tokenKey`
//! followed by its collection's `fileToken.secret` (the auth token scheme with another secret).

use crate::auth::token::{verify_typed, Verified, TYPE_FILE};
use crate::auth::AuthRecord;
use pocketbun_storage::Reader;

/// The auth record a valid, unexpired file token was issued for.
pub fn verify_file_token(reader: &Reader, verified: &Verified, token: &str) -> Option<AuthRecord> {
    verify_typed(reader, verified, token.trim(), TYPE_FILE, "fileToken")
}
