//! `--encryptionEnv`: the stored settings (`_params` row `settings`) encrypted as PocketBase
//! encrypts them, so one `pb_data` opens in either server with the same key.
//!
//! The format: AES-GCM with the key's bytes as the AES key (32 characters: AES-256; PocketBase
//! also takes 16), a random 12-byte nonce, the sealed JSON (ciphertext then 16-byte tag)
//! after the nonce, all in standard base64 with padding, stored as TEXT. Reading tries plain
//! JSON first and decrypts only when that fails, so turning encryption on leaves existing
//! plain settings readable until the next save encrypts them.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM, NONCE_LEN};

/// The settings key and the name of the variable it came from (for error messages). Read
/// once at start-up; the settings cell that loads and saves the settings owns it
/// (`crate::settings::SettingsCell`).
#[derive(Default)]
pub struct SettingsKey {
    env: String,
    key: Option<Vec<u8>>,
}

impl SettingsKey {
    /// Reads the key from the environment variable named by `--encryptionEnv` (unset or
    /// empty: settings stay plain).
    pub fn from_env(env: Option<&str>) -> Self {
        let env = env.unwrap_or("").to_string();
        let key = (!env.is_empty())
            .then(|| std::env::var_os(&env))
            .flatten()
            .map(|v| v.into_encoded_bytes())
            .filter(|v| !v.is_empty());
        SettingsKey { env, key }
    }

    /// A key given as is (tests; `env` names where it came from).
    pub fn new(env: &str, key: Option<Vec<u8>>) -> Self {
        SettingsKey {
            env: env.to_string(),
            key,
        }
    }
}

/// The error of a failed `ring` call: `ring::error::Unspecified` says nothing by design (no
/// cause to keep), so the step that failed is the whole message.
fn failed(step: &'static str) -> impl FnOnce(ring::error::Unspecified) -> String {
    move |ring::error::Unspecified| step.to_string()
}

fn cipher(key: &[u8]) -> Result<LessSafeKey, String> {
    let alg = match key.len() {
        16 => &AES_128_GCM,
        32 => &AES_256_GCM,
        n => return Err(format!("crypto/aes: invalid key size {n}")),
    };
    let unbound = UnboundKey::new(alg, key).map_err(failed("invalid key"))?;
    Ok(LessSafeKey::new(unbound))
}

/// Seals `plain` with `key`: base64(nonce || ciphertext || tag).
pub fn encrypt(plain: &[u8], key: &[u8]) -> Result<String, String> {
    use base64::Engine;
    let cipher = cipher(key)?;
    let mut nonce = [0u8; NONCE_LEN];
    use ring::rand::SecureRandom;
    ring::rand::SystemRandom::new()
        .fill(&mut nonce)
        .map_err(failed("no random bytes for the nonce"))?;
    let mut sealed = plain.to_vec();
    cipher
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::empty(),
            &mut sealed,
        )
        .map_err(failed("encryption failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(base64::engine::general_purpose::STANDARD.encode(out))
}

/// Opens what [`encrypt`] (or PocketBase) sealed with `key`.
pub fn decrypt(text: &[u8], key: &[u8]) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let cipher = cipher(key)?;
    let mut raw = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("illegal base64 data: {e}"))?;
    if raw.len() < NONCE_LEN {
        return Err("cipher: message authentication failed".into());
    }
    let mut sealed = raw.split_off(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(&raw).map_err(failed("bad nonce"))?;
    let plain = cipher
        .open_in_place(nonce, Aad::empty(), &mut sealed)
        .map_err(failed("cipher: message authentication failed"))?;
    Ok(plain.to_vec())
}

/// What to store for the settings JSON `json`: the JSON itself (as a BLOB, like PocketBase's
/// byte slice) or, with a key, the sealed text (a TEXT, like PocketBase's string).
pub enum Stored {
    Plain(Vec<u8>),
    Sealed(String),
}

/// The stored form of `json` under `key`.
pub fn seal_settings(key: &SettingsKey, json: Vec<u8>) -> Result<Stored, String> {
    match key.key.as_deref() {
        Some(key) => encrypt(&json, key).map(Stored::Sealed),
        None => Ok(Stored::Plain(json)),
    }
}

/// The settings JSON of a stored value that is not plain JSON (`raw` failed to parse): decrypted
/// with `key`, or PocketBase's error when there is none.
pub fn open_settings(key: &SettingsKey, raw: &[u8]) -> Result<Vec<u8>, String> {
    let env = key.env.as_str();
    match key.key.as_deref() {
        Some(key) => decrypt(raw, key),
        None => Err(format!(
            "invalid settings db data or missing encryption key {env:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_format() {
        let key = b"0123456789abcdef0123456789abcdef";
        let sealed = encrypt(br#"{"a":1}"#, key).unwrap();
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&sealed)
            .unwrap();
        // nonce + plaintext + tag
        assert_eq!(raw.len(), 12 + 7 + 16);
        assert_eq!(decrypt(sealed.as_bytes(), key).unwrap(), br#"{"a":1}"#);
        // another key, a tampered byte, a bad key size all fail
        assert!(decrypt(sealed.as_bytes(), b"0123456789abcdef0123456789abcdeX").is_err());
        let mut bad = raw.clone();
        bad[13] ^= 1;
        let bad = base64::engine::general_purpose::STANDARD.encode(bad);
        assert!(decrypt(bad.as_bytes(), key).is_err());
        assert!(encrypt(b"x", b"short").is_err());
        // AES-128 with a 16-byte key, as Go's aes.NewCipher allows
        let k16 = b"0123456789abcdef";
        let s = encrypt(b"x", k16).unwrap();
        assert_eq!(decrypt(s.as_bytes(), k16).unwrap(), b"x");
    }
}
