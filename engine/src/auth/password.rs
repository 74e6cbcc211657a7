//! Password hashes as PocketBase stores them: bcrypt (`$2a$`/`$2b$`/`$2y$`), cost from the
//! collection's password field (Go's default 10 when unset). `serve --password-hash argon2id`
//! makes new hashes argon2id (PHC string) instead; both kinds always verify, and a login
//! replaces a hash that is not what is configured ([`needs_rehash`]).
//!
//! Hashing and checking are slow on purpose (~74 ms at cost 10): they run on the CPU pool
//! (`Shared::cpu`), never on a request worker. The comparison inside `bcrypt::verify` is
//! constant-time.

use crate::offload::CpuPool;
use pocketbun_storage::collections::{Collection, FieldKind};

/// How new password hashes are made (`serve --password-hash`; a field of `state::Core`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Scheme {
    /// PocketBase's own: the data stays usable by PocketBase.
    #[default]
    Bcrypt,
    /// argon2id with the argon2 crate's defaults (19 MiB, 2 passes, 1 lane).
    Argon2id,
}

fn is_argon2(hash: &str) -> bool {
    hash.starts_with("$argon2")
}

/// Whether a hash that just matched should be replaced: it is of the other scheme, or a
/// bcrypt hash cheaper than the collection's cost (new hashes are of `scheme`).
pub fn needs_rehash(scheme: Scheme, hash: &str, cost: u32) -> bool {
    match scheme {
        Scheme::Argon2id => !is_argon2(hash),
        Scheme::Bcrypt => is_argon2(hash) || bcrypt_cost(hash).is_some_and(|stored| stored < cost),
    }
}

/// The cost of a `$2?$NN$...` hash.
fn bcrypt_cost(hash: &str) -> Option<u32> {
    hash.split('$').nth(2)?.parse().ok()
}

/// Go's `bcrypt.DefaultCost`.
pub const DEFAULT_COST: u32 = 10;

/// The bcrypt cost the collection's `password` field asks for.
pub fn cost_of(coll: &Collection) -> u32 {
    match coll.field("password").map(|f| &f.kind) {
        Some(FieldKind::Password { cost, .. }) if *cost > 0 => *cost as u32,
        _ => DEFAULT_COST,
    }
}

/// Whether `plain` matches the stored `hash` (an empty or malformed hash never matches).
pub fn matches(plain: &str, hash: &str) -> bool {
    if hash.is_empty() {
        return false;
    }
    if is_argon2(hash) {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        return PasswordHash::new(hash).is_ok_and(|parsed| {
            argon2::Argon2::default()
                .verify_password(plain.as_bytes(), &parsed)
                .is_ok()
        });
    }
    bcrypt::verify(plain.as_bytes(), hash).unwrap_or(false)
}

/// A PocketBase-compatible bcrypt hash (`$2a$`, Go's 72 byte input limit). Slow by design:
/// call it off the request workers (`Shared::cpu`); the `superuser` command uses it as is.
pub fn bcrypt_hash(password: &str, cost: u32) -> Result<String, String> {
    // bcrypt only looks at the first 72 bytes, like Go's implementation
    let bytes = password.as_bytes();
    let bytes = &bytes[..bytes.len().min(72)];
    bcrypt::hash_with_result(bytes, cost)
        .map(|h| h.format_for_version(bcrypt::Version::TwoA))
        .map_err(|e| e.to_string())
}

/// A new hash of `plain` with `scheme` (slow: call it off the request workers).
pub fn make(scheme: Scheme, plain: &str, cost: u32) -> Result<String, String> {
    match scheme {
        Scheme::Bcrypt => bcrypt_hash(plain, cost),
        Scheme::Argon2id => {
            use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
            let salt = SaltString::generate(&mut OsRng);
            argon2::Argon2::default()
                .hash_password(plain.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| e.to_string())
        }
    }
}

/// [`matches`] on the CPU pool.
pub async fn check(cpu: &CpuPool, plain: String, hash: String) -> bool {
    cpu.run(move || matches(&plain, &hash))
        .await
        .unwrap_or(false)
}

/// A new hash of `plain` with `scheme` on the CPU pool.
pub async fn hash(
    cpu: &CpuPool,
    scheme: Scheme,
    plain: String,
    cost: u32,
) -> Result<String, String> {
    cpu.run(move || make(scheme, &plain, cost))
        .await
        // no cause: the CPU pool's `Canceled` only says the task never ran
        .map_err(|_| "the password hashing pool is gone".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_hashes_verify_and_schemes_are_told_apart() {
        use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
        let salt = SaltString::generate(&mut OsRng);
        let argon = argon2::Argon2::default()
            .hash_password(b"1234567890", &salt)
            .unwrap()
            .to_string();
        assert!(argon.starts_with("$argon2id$"));
        assert!(matches("1234567890", &argon));
        assert!(!matches("1234567891", &argon));
        assert!(!matches("1234567890", "$argon2id$broken"));
        assert_eq!(
            bcrypt_cost("$2a$10$0CUWH81tPWUhxKqksZnO/eDfJiWTTG/xg7v5Yg8RhcLIGWY3oeCHe"),
            Some(10)
        );
        // the default scheme is bcrypt: argon2 and cheaper bcrypt hashes are replaced
        let bcrypt = Scheme::default();
        assert!(needs_rehash(bcrypt, &argon, 10));
        assert!(needs_rehash(bcrypt, "$2a$04$abc", 10));
        assert!(!needs_rehash(bcrypt, "$2a$10$abc", 10));
        assert!(!needs_rehash(bcrypt, "$2a$12$abc", 10));
        // with argon2id, every bcrypt hash is replaced and argon2 ones stay
        assert!(needs_rehash(Scheme::Argon2id, "$2a$12$abc", 10));
        assert!(!needs_rehash(Scheme::Argon2id, &argon, 10));
        let made = make(Scheme::Argon2id, "1234567890", 4).unwrap();
        assert!(made.starts_with("$argon2id$") && matches("1234567890", &made));
    }

    #[test]
    fn pocketbase_hashes_verify() {
        // "1234567890" of the fixture's superuser test4@example.com, hashed by PocketBase
        let stored = "$2a$10$0CUWH81tPWUhxKqksZnO/eDfJiWTTG/xg7v5Yg8RhcLIGWY3oeCHe";
        assert!(matches("1234567890", stored));
        assert!(!matches("1234567891", stored));
        let fresh = bcrypt_hash("1234567890", 4).unwrap();
        assert!(fresh.starts_with("$2a$04$"));
        assert!(matches("1234567890", &fresh));
        assert!(!matches("123456789", &fresh));
        assert!(!matches("", ""));
        assert!(!matches("x", "not a hash"));
    }
}
