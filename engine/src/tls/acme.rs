//! The `pocketbun-acme` thread: certificates from the cache or from the ACME server, and their
//! renewal. It runs its own single-threaded tokio runtime (the ACME client is built on hyper),
//! so nothing here ever runs on a request worker; workers reach it through `AutoCert`'s job
//! channel and are answered through one-shot channels.

use super::cache::{self, CachedCert, CertKey};
use super::{server_config, AutoCert, ACME_TLS_ALPN};
use instant_acme::{Account, ChallengeType, Identifier, Key, NewOrder, OrderStatus, RetryPolicy};
use pocketbun_http::tls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Let's Encrypt's production directory: where autocert orders by default.
const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Renew this long before expiry (autocert's default: 30 days).
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// After a failed renewal, try again this much later.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(3600);
/// How long one order may take, validation included (autocert allows 5 minutes per handshake).
const ORDER_TIMEOUT: Duration = Duration::from_secs(120);

pub(super) struct Settings {
    cache_dir: PathBuf,
    directory: String,
    /// A PEM root to trust for the directory's HTTPS instead of the system roots.
    root: Option<PathBuf>,
    /// HTTP-01 can be answered (the HTTP listener runs).
    http01: bool,
}

impl Settings {
    pub(super) fn from_env(cache_dir: PathBuf, http01: bool) -> Settings {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Settings {
            cache_dir,
            directory: var("POCKETBUN_ACME_DIRECTORY").unwrap_or_else(|| LETS_ENCRYPT.into()),
            root: var("POCKETBUN_ACME_ROOT").map(PathBuf::from),
            http01,
        }
    }
}

pub(super) fn spawn(
    certs: Arc<AutoCert>,
    settings: Settings,
    mut jobs: tokio::sync::mpsc::UnboundedReceiver<String>,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("pocketbun-acme".into())
        .spawn(move || {
            let settings = Arc::new(settings);
            let account = Arc::new(tokio::sync::OnceCell::new());
            // domains whose renewal loop runs
            let renewing = Arc::new(Mutex::new(HashSet::new()));
            runtime.block_on(async move {
                while let Some(domain) = jobs.recv().await {
                    let (certs, settings, account) =
                        (certs.clone(), settings.clone(), account.clone());
                    let renewing = renewing.clone();
                    tokio::spawn(async move {
                        match obtain(&certs, &settings, &account, &domain, false).await {
                            Ok(not_after) => {
                                let first = renewing
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .insert(domain.clone());
                                if first {
                                    tokio::spawn(renew_loop(
                                        certs, settings, account, domain, not_after,
                                    ));
                                }
                            }
                            Err(e) => {
                                eprintln!("pocketbun: no certificate for {domain}: {e}");
                                certs.failed(&domain);
                            }
                        }
                    });
                }
            });
        })?;
    Ok(())
}

type AccountCell = tokio::sync::OnceCell<Account>;

/// Renews `domain`'s certificate `RENEW_BEFORE` its expiry, for as long as the server runs.
async fn renew_loop(
    certs: Arc<AutoCert>,
    settings: Arc<Settings>,
    account: Arc<AccountCell>,
    domain: String,
    mut not_after: SystemTime,
) {
    loop {
        let due = not_after
            .checked_sub(RENEW_BEFORE)
            .and_then(|t| t.duration_since(SystemTime::now()).ok())
            .unwrap_or(Duration::ZERO);
        tokio::time::sleep(due).await;
        match obtain(&certs, &settings, &account, &domain, true).await {
            Ok(t) => not_after = t,
            Err(e) => {
                eprintln!("pocketbun: renewing the certificate of {domain} failed: {e}");
                tokio::time::sleep(RETRY_AFTER_FAILURE).await;
            }
        }
    }
}

/// Installs the certificate of cache name `name` (`<domain>`, or `<domain>+rsa` for the RSA
/// one), from the cache unless `renew`, else from a new order. Returns its expiry.
async fn obtain(
    certs: &AutoCert,
    settings: &Settings,
    account: &AccountCell,
    name: &str,
    renew: bool,
) -> Result<SystemTime, String> {
    let (domain, rsa) = match name.strip_suffix(cache::RSA_SUFFIX) {
        Some(domain) => (domain, true),
        None => (name, false),
    };
    if !renew {
        if let Some(cached) =
            cache::get(&settings.cache_dir, name).and_then(|d| CachedCert::parse(&d))
        {
            if let Some(not_after) = usable(&cached) {
                certs.install(name, config_of(&cached)?);
                return Ok(not_after);
            }
        }
    }
    let account = account.get_or_try_init(|| open_account(settings)).await?;
    let cert = tokio::time::timeout(ORDER_TIMEOUT, order(certs, settings, account, domain, rsa))
        .await
        // no cause: the timeout's `Elapsed` only says the time ran out
        .map_err(|_| "the order took too long".to_string())??;
    let not_after = usable(&cert).ok_or("the CA sent a certificate that is not valid now")?;
    cache::put(&settings.cache_dir, name, &cert.encode())
        .map_err(|e| format!("cannot write the certificate cache: {e}"))?;
    certs.install(name, config_of(&cert)?);
    Ok(not_after)
}

/// The expiry of a certificate that is valid now.
fn usable(cert: &CachedCert) -> Option<SystemTime> {
    let (not_before, not_after) = cache::validity(cert.chain.first()?)?;
    let now = SystemTime::now();
    (not_before <= now && now < not_after).then_some(not_after)
}

fn config_of(cert: &CachedCert) -> Result<Arc<pocketbun_http::tls::rustls::ServerConfig>, String> {
    let chain = cert
        .chain
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let key = match &cert.key {
        CertKey::Ec(der) => PrivateKeyDer::Sec1(der.clone().into()),
        CertKey::Rsa(der) => PrivateKeyDer::Pkcs1(der.clone().into()),
    };
    server_config(chain, key, b"http/1.1").map_err(|e| format!("unusable certificate: {e}"))
}

/// The ACME account of the cached account key (created on first use, as autocert does).
async fn open_account(settings: &Settings) -> Result<Account, String> {
    let sec1 = match cache::get_account_key(&settings.cache_dir)
        .and_then(|d| cache::parse_pem(&d))
        .and_then(|blocks| blocks.into_iter().next())
    {
        Some((label, der)) if label == "EC PRIVATE KEY" => der,
        Some(_) => return Err("the cached ACME account key is not an EC key".into()),
        None => {
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .map_err(|e| e.to_string())?;
            let sec1 = cache::pkcs8_to_sec1(&key.serialize_der()).ok_or("cannot encode a key")?;
            cache::put(
                &settings.cache_dir,
                cache::ACCOUNT_KEY,
                cache::pem("EC PRIVATE KEY", &sec1).as_bytes(),
            )
            .map_err(|e| format!("cannot write the certificate cache: {e}"))?;
            sec1
        }
    };
    let pkcs8 = PrivatePkcs8KeyDer::from(cache::sec1_to_pkcs8(&sec1));
    let key = Key::from_pkcs8_der(pkcs8.clone_key()).map_err(|e| e.to_string())?;
    let builder = match &settings.root {
        Some(root) => Account::builder_with_root(root),
        None => Account::builder(),
    }
    .map_err(|e| format!("ACME client: {e}"))?;
    let (account, _) = builder
        .create_from_key(
            (key, PrivateKeyDer::Pkcs8(pkcs8)),
            settings.directory.clone(),
        )
        .await
        .map_err(|e| format!("ACME account at {}: {e}", settings.directory))?;
    Ok(account)
}

/// One certificate for `domain` from the ACME server: TLS-ALPN-01 first, then HTTP-01 (when
/// the HTTP listener runs), each try a new order, as autocert does. Its key is ECDSA P-256,
/// or RSA 2048 when `rsa` (autocert's two kinds).
async fn order(
    certs: &AutoCert,
    settings: &Settings,
    account: &Account,
    domain: &str,
    rsa: bool,
) -> Result<CachedCert, String> {
    // an RSA key takes a while to find (tens of milliseconds in release, seconds in a debug
    // build): on the blocking pool, so the runtime keeps answering other orders meanwhile
    let key = if rsa {
        let (pkcs8, pkcs1) = tokio::task::spawn_blocking(rsa_key)
            .await
            .map_err(|e| e.to_string())??;
        let signer = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(pkcs8),
            &rcgen::PKCS_RSA_SHA256,
        )
        .map_err(|e| e.to_string())?;
        (signer, CertKey::Rsa(pkcs1))
    } else {
        let signer = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| e.to_string())?;
        let sec1 = cache::pkcs8_to_sec1(&signer.serialize_der()).ok_or("cannot encode a key")?;
        (signer, CertKey::Ec(sec1))
    };
    let mut types = vec![ChallengeType::TlsAlpn01];
    if settings.http01 {
        types.push(ChallengeType::Http01);
    }
    let mut next = 0;
    let identifiers = [Identifier::Dns(domain.to_string())];
    let retry = RetryPolicy::new().timeout(ORDER_TIMEOUT);
    let mut order = loop {
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(|e| format!("new order: {e}"))?;
        let mut cleanup = Cleanup {
            certs,
            alpn: None,
            token: None,
        };
        {
            let mut authorizations = order.authorizations();
            while let Some(authz) = authorizations.next().await {
                let mut authz = authz.map_err(|e| format!("authorization: {e}"))?;
                if authz.status == instant_acme::AuthorizationStatus::Valid {
                    continue;
                }
                let mut chosen = None;
                while chosen.is_none() && next < types.len() {
                    if authz.challenges.iter().any(|c| c.r#type == types[next]) {
                        chosen = Some(types[next].clone());
                    }
                    next += 1;
                }
                let Some(kind) = chosen else {
                    return Err(format!("no challenge type we can answer for {domain}"));
                };
                let mut challenge = authz.challenge(kind.clone()).ok_or("challenge vanished")?;
                let key_auth = challenge.key_authorization();
                match kind {
                    ChallengeType::TlsAlpn01 => {
                        certs.set_alpn_cert(
                            domain,
                            Some(alpn_cert(domain, key_auth.digest().as_ref())?),
                        );
                        cleanup.alpn = Some(domain.to_string());
                    }
                    _ => {
                        certs.set_http_token(&challenge.token, Some(key_auth.as_str().to_string()));
                        cleanup.token = Some(challenge.token.clone());
                    }
                }
                challenge
                    .set_ready()
                    .await
                    .map_err(|e| format!("challenge: {e}"))?;
            }
        }
        match order.poll_ready(&retry).await {
            Ok(OrderStatus::Ready) => break order,
            failed => {
                drop(cleanup);
                if next >= types.len() {
                    return Err(format!("validation failed: {failed:?}"));
                }
            }
        }
    };
    let (signer, key) = key;
    let mut params =
        rcgen::CertificateParams::new(vec![domain.to_string()]).map_err(|e| e.to_string())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params
        .serialize_request(&signer)
        .map_err(|e| e.to_string())?;
    order
        .finalize_csr(csr.der())
        .await
        .map_err(|e| format!("finalize: {e}"))?;
    let chain_pem = order
        .poll_certificate(&retry)
        .await
        .map_err(|e| format!("certificate: {e}"))?;
    let chain: Vec<Vec<u8>> = cache::parse_pem(chain_pem.as_bytes())
        .ok_or("the CA sent an unreadable chain")?
        .into_iter()
        .filter(|(label, _)| label == "CERTIFICATE")
        .map(|(_, der)| der)
        .collect();
    if chain.is_empty() {
        return Err("the CA sent no certificate".into());
    }
    Ok(CachedCert { key, chain })
}

/// A new RSA 2048 key (autocert's size), as PKCS#8 (for signing the CSR) and PKCS#1 DER
/// (the cache's `RSA PRIVATE KEY`). ring signs with RSA keys but cannot make them.
fn rsa_key() -> Result<(Vec<u8>, Vec<u8>), String> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::EncodePrivateKey;
    let key =
        rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(|e| e.to_string())?;
    let pkcs8 = key.to_pkcs8_der().map_err(|e| e.to_string())?;
    let pkcs1 = key.to_pkcs1_der().map_err(|e| e.to_string())?;
    Ok((pkcs8.as_bytes().to_vec(), pkcs1.as_bytes().to_vec()))
}

/// Closes the challenge a try opened, however the try ends.
struct Cleanup<'a> {
    certs: &'a AutoCert,
    alpn: Option<String>,
    token: Option<String>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if let Some(domain) = self.alpn.take() {
            self.certs.set_alpn_cert(&domain, None);
        }
        if let Some(token) = self.token.take() {
            self.certs.set_http_token(&token, None);
        }
    }
}

/// The self-signed certificate a TLS-ALPN-01 validator must see: the domain as its only name
/// and the key authorization's SHA-256 in the critical acmeIdentifier extension (RFC 8737).
fn alpn_cert(
    domain: &str,
    digest: &[u8],
) -> Result<Arc<pocketbun_http::tls::rustls::ServerConfig>, String> {
    let key =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
    let mut params =
        rcgen::CertificateParams::new(vec![domain.to_string()]).map_err(|e| e.to_string())?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    server_config(vec![cert.der().clone()], key, ACME_TLS_ALPN).map_err(|e| e.to_string())
}
