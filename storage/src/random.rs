//! Cryptographically random strings in the shapes PocketBase uses
//! (record ids, token keys, collection secrets).

use crate::error::{ErrorKind, Result, StorageError};

/// Alphabet of record ids: `[a-z0-9]`.
pub const ID_ALPHABET: &str = "abcdefghijklmnopqrstuvwxyz0123456789";
/// Alphabet of token keys and secrets: `[a-zA-Z0-9]`.
pub const ALNUM_ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Length of a default record id.
pub const ID_LENGTH: usize = 15;

/// `len` characters drawn uniformly from `alphabet` (ASCII, 1..=256 chars)
/// using the OS CSPRNG.
pub fn random_string_with_alphabet(len: usize, alphabet: &str) -> String {
    let chars = alphabet.as_bytes();
    assert!(
        !chars.is_empty() && chars.len() <= 256 && alphabet.is_ascii(),
        "alphabet must be 1..=256 ASCII chars"
    );
    let n = chars.len();
    // rejection sampling keeps the distribution uniform
    let limit = 256 - (256 % n);
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        fill(&mut buf);
        for &b in &buf {
            if (b as usize) < limit {
                out.push(chars[b as usize % n] as char);
                if out.len() == len {
                    break;
                }
            }
        }
    }
    out
}

/// `len` random `[a-zA-Z0-9]` characters (token keys, collection secrets).
pub fn random_string(len: usize) -> String {
    random_string_with_alphabet(len, ALNUM_ALPHABET)
}

/// A fresh 15 character `[a-z0-9]` record id.
pub fn new_record_id() -> String {
    random_string_with_alphabet(ID_LENGTH, ID_ALPHABET)
}

/// Generates a string from a PocketBase `autogeneratePattern` of the simple
/// form `[class]{n}` (class: literal chars and `a-z` style ranges), which is
/// what system fields use. Other patterns are rejected.
pub fn from_autogenerate_pattern(pattern: &str) -> Result<String> {
    let bad = || {
        StorageError::new(
            ErrorKind::Invalid,
            format!("unsupported autogenerate pattern {pattern:?}"),
        )
    };
    let rest = pattern.strip_prefix('[').ok_or_else(bad)?;
    let close = rest.find("]{").ok_or_else(bad)?;
    let class = &rest[..close];
    let count = rest[close + 2..].strip_suffix('}').ok_or_else(bad)?;
    let count: usize = count.parse().map_err(|_| bad())?;
    let mut alphabet = Vec::new();
    let bytes = class.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if i + 2 < bytes.len() && bytes[i + 1] == b'-' {
            let (lo, hi) = (bytes[i], bytes[i + 2]);
            if lo > hi {
                return Err(bad());
            }
            alphabet.extend(lo..=hi);
            i += 3;
        } else {
            alphabet.push(bytes[i]);
            i += 1;
        }
    }
    alphabet.sort_unstable();
    alphabet.dedup();
    if alphabet.is_empty() || alphabet.len() > 256 || !alphabet.is_ascii() {
        return Err(bad());
    }
    let alphabet = String::from_utf8(alphabet).map_err(|_| bad())?;
    Ok(random_string_with_alphabet(count, &alphabet))
}

/// A thread-local CSPRNG (ChaCha, seeded and periodically reseeded from the OS): ids are
/// drawn on every insert and request log, and a `getrandom` syscall each time showed up at
/// several percent of a request's CPU.
fn fill(buf: &mut [u8]) {
    use rand::RngCore;
    rand::thread_rng().fill_bytes(buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let id = new_record_id();
        assert_eq!(id.len(), 15);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        let s = random_string(50);
        assert_eq!(s.len(), 50);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(random_string(50), random_string(50));
        let p = from_autogenerate_pattern("[a-zA-Z0-9_]{50}").unwrap();
        assert_eq!(p.len(), 50);
        assert!(p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        assert!(from_autogenerate_pattern("abc").is_err());
    }
}
