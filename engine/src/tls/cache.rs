//! `pb_data/.autocert_cache`, in the format PocketBase's certificate manager (Go's autocert
//! `DirCache`) reads and writes, so a data directory moves between the two servers without a
//! new certificate being ordered:
//!
//! - `<domain>`: the ECDSA P-256 private key as `EC PRIVATE KEY` (SEC1, with the curve named),
//!   then the chain as `CERTIFICATE` blocks, leaf first;
//! - `<domain>+rsa`: the same for the RSA certificate served to clients without ECDSA, the
//!   key as `RSA PRIVATE KEY` (PKCS#1);
//! - `acme_account+key` (older autocert: `acme_account.key`): the ACME account key, same PEM;
//! - the folder is 0700 and files are 0600, written whole through a rename.
//!
//! Plus the few DER walks this needs: SEC1 <-> PKCS#8 for P-256 and a certificate's validity.

use base64::Engine as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const ACCOUNT_KEY: &str = "acme_account+key";
const LEGACY_ACCOUNT_KEY: &str = "acme_account.key";

/// The cache folder inside a data directory (PocketBase's name for it).
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join(".autocert_cache")
}

/// The cache name of a domain's certificate: `<domain>`, or `<domain>+rsa` for the RSA one.
pub fn cert_name(domain: &str, rsa: bool) -> String {
    if rsa {
        format!("{domain}{RSA_SUFFIX}")
    } else {
        domain.to_string()
    }
}

/// The suffix of an RSA certificate's cache name.
pub const RSA_SUFFIX: &str = "+rsa";

pub fn get(dir: &Path, name: &str) -> Option<Vec<u8>> {
    std::fs::read(dir.join(name)).ok()
}

pub fn get_account_key(dir: &Path) -> Option<Vec<u8>> {
    get(dir, ACCOUNT_KEY).or_else(|| get(dir, LEGACY_ACCOUNT_KEY))
}

/// Writes `name` whole: a reader sees the old file or the new one, never half of one.
pub fn put(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(data)?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))
}

/// One PEM block.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Every PEM block in `text`, as (label, DER). `None` when a block is malformed.
pub fn parse_pem(text: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let text = std::str::from_utf8(text).ok()?;
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(label) = line
            .trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut b64 = String::new();
        loop {
            let line = lines.next()?.trim();
            if line == end {
                break;
            }
            b64.push_str(line);
        }
        let der = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        blocks.push((label.to_string(), der));
    }
    Some(blocks)
}

/// A certificate's private key, in the encodings autocert writes.
#[derive(Clone, Debug, PartialEq)]
pub enum CertKey {
    /// ECDSA P-256, SEC1 DER (`EC PRIVATE KEY`).
    Ec(Vec<u8>),
    /// RSA, PKCS#1 DER (`RSA PRIVATE KEY`).
    Rsa(Vec<u8>),
}

/// A cached certificate: the key and the chain (DER, leaf first).
pub struct CachedCert {
    pub key: CertKey,
    pub chain: Vec<Vec<u8>>,
}

impl CachedCert {
    pub fn parse(data: &[u8]) -> Option<CachedCert> {
        let mut blocks = parse_pem(data)?.into_iter();
        let key = match blocks.next()? {
            (label, der) if label == "EC PRIVATE KEY" => CertKey::Ec(der),
            (label, der) if label == "RSA PRIVATE KEY" => CertKey::Rsa(der),
            _ => return None,
        };
        let chain: Vec<Vec<u8>> = blocks
            .filter(|(l, _)| l == "CERTIFICATE")
            .map(|(_, d)| d)
            .collect();
        (!chain.is_empty()).then_some(CachedCert { key, chain })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = match &self.key {
            CertKey::Ec(der) => pem("EC PRIVATE KEY", der),
            CertKey::Rsa(der) => pem("RSA PRIVATE KEY", der),
        };
        for cert in &self.chain {
            out.push_str(&pem("CERTIFICATE", cert));
        }
        out.into_bytes()
    }
}

// ---- DER ----

/// One TLV: (tag, value, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn der(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// id-ecPublicKey and prime256v1, as DER OIDs.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// PKCS#8 (as ring and rcgen write it) to SEC1 with the curve named, which is what Go's
/// `x509.ParseECPrivateKey` needs when PocketBase reads the cache.
pub fn pkcs8_to_sec1(pkcs8: &[u8]) -> Option<Vec<u8>> {
    let (_, info, _) = tlv(pkcs8)?; // PrivateKeyInfo
    let (_, _version, rest) = tlv(info)?;
    let (_, _alg, rest) = tlv(rest)?;
    let (_, ec_key, _) = tlv(rest)?; // OCTET STRING holding ECPrivateKey
    let (_, fields, _) = tlv(ec_key)?;
    let (_, _one, rest) = tlv(fields)?;
    let (_, secret, mut rest) = tlv(rest)?;
    let mut public = None;
    while !rest.is_empty() {
        let (tag, value, more) = tlv(rest)?;
        if tag == 0xa1 {
            public = Some(value);
        }
        rest = more;
    }
    Some(der(
        0x30,
        &[
            &[0x02, 0x01, 0x01],
            &der(0x04, &[secret]),
            &der(0xa0, &[OID_P256]),
            &der(0xa1, &[public?]),
        ],
    ))
}

/// SEC1 (P-256) wrapped as PKCS#8, the way rustls does it for ring.
pub fn sec1_to_pkcs8(sec1: &[u8]) -> Vec<u8> {
    der(
        0x30,
        &[
            &[0x02, 0x01, 0x00],
            &der(0x30, &[OID_EC_PUBLIC_KEY, OID_P256]),
            &der(0x04, &[sec1]),
        ],
    )
}

/// (notBefore, notAfter) of a DER certificate.
pub fn validity(cert: &[u8]) -> Option<(SystemTime, SystemTime)> {
    let (_, cert, _) = tlv(cert)?;
    let (_, tbs, _) = tlv(cert)?;
    let (tag, _, mut rest) = tlv(tbs)?;
    if tag == 0xa0 {
        rest = tlv(rest)?.2; // the version was explicit: skip the serial now
    }
    let (_, _sig_alg, rest) = tlv(rest)?;
    let (_, _issuer, rest) = tlv(rest)?;
    let (_, validity, _) = tlv(rest)?;
    let (t1, v1, rest) = tlv(validity)?;
    let (t2, v2, _) = tlv(rest)?;
    Some((der_time(t1, v1)?, der_time(t2, v2)?))
}

fn der_time(tag: u8, value: &[u8]) -> Option<SystemTime> {
    let s = std::str::from_utf8(value).ok()?;
    let s = s.strip_suffix('Z')?;
    let full = match (tag, s.len()) {
        // UTCTime: two-digit years 50..99 are 19xx (RFC 5280)
        (0x17, 12) => {
            let yy: u32 = s[..2].parse().ok()?;
            format!("{}{s}", if yy >= 50 { "19" } else { "20" })
        }
        (0x18, 14) => s.to_string(),
        _ => return None,
    };
    let t = chrono::NaiveDateTime::parse_from_str(&full, "%Y%m%d%H%M%S").ok()?;
    let secs = t.and_utc().timestamp();
    Some(if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_certificate_dates_parse() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let pkcs8 = key.serialize_der();
        let sec1 = pkcs8_to_sec1(&pkcs8).unwrap();
        // SEC1 with the curve named: version 1, 32-byte secret, [0] prime256v1, [1] point
        assert_eq!(sec1.len(), 121);
        assert!(sec1.windows(OID_P256.len()).any(|w| w == OID_P256));
        // and back: the key still signs, and is the same key
        let again = rcgen::KeyPair::try_from(sec1_to_pkcs8(&sec1).as_slice()).unwrap();
        assert_eq!(again.public_key_raw(), key.public_key_raw());

        let mut params = rcgen::CertificateParams::new(vec!["a.example".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2024, 1, 2);
        params.not_after = rcgen::date_time_ymd(2051, 3, 4);
        let cert = params.self_signed(&key).unwrap();
        let (from, to) = validity(cert.der()).unwrap();
        assert_eq!(
            from.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1704153600
        );
        // 2051 is written as GeneralizedTime
        assert_eq!(to.duration_since(UNIX_EPOCH).unwrap().as_secs(), 2561500800);

        let cached = CachedCert {
            key: CertKey::Ec(sec1.clone()),
            chain: vec![cert.der().to_vec()],
        };
        let parsed = CachedCert::parse(&cached.encode()).unwrap();
        assert_eq!(parsed.key, CertKey::Ec(sec1));
        assert_eq!(parsed.chain, vec![cert.der().to_vec()]);
        assert!(CachedCert::parse(b"garbage").is_none());
        assert!(CachedCert::parse(b"-----BEGIN EC PRIVATE KEY-----\n!!\n").is_none());
    }
}
