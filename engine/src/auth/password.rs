//! Password hashes as PocketBase stores them: bcrypt (`$2a$`/`$2b$`/`$2y$`), cost from the
//! collection's password field (Go's default 10 when unset).
//!
//! Hashing and checking are slow on purpose (~74 ms at cost 10): they run on the CPU pool
//! (`Shared::cpu`), never on a request worker. The comparison inside `bcrypt::verify` is
//! constant-time.

use crate::offload::CpuPool;
use pocketbun_storage::collections::{Collection, FieldKind};

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
    bcrypt::verify(plain.as_bytes(), hash).unwrap_or(false)
}

/// [`matches`] on the CPU pool.
pub async fn check(cpu: &CpuPool, plain: String, hash: String) -> bool {
    cpu.run(move || matches(&plain, &hash))
        .await
        .unwrap_or(false)
}

/// A new hash of `plain` on the CPU pool.
pub async fn hash(cpu: &CpuPool, plain: String, cost: u32) -> Result<String, String> {
    cpu.run(move || crate::superuser::hash_password(&plain, cost))
        .await
        .map_err(|_| "the password hashing pool is gone".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pocketbase_hashes_verify() {
        // "1234567890" of the fixture's superuser test4@example.com, hashed by PocketBase
        let stored = "$2a$10$0CUWH81tPWUhxKqksZnO/eDfJiWTTG/xg7v5Yg8RhcLIGWY3oeCHe";
        assert!(matches("1234567890", stored));
        assert!(!matches("1234567891", stored));
        let fresh = crate::superuser::hash_password("1234567890", 4).unwrap();
        assert!(fresh.starts_with("$2a$04$"));
        assert!(matches("1234567890", &fresh));
        assert!(!matches("123456789", &fresh));
        assert!(!matches("", ""));
        assert!(!matches("x", "not a hash"));
    }
}
