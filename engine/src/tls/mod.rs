//! HTTPS for `serve`, as PocketBase does it: `serve example.com` (or `--https=ADDR`) serves TLS
//! with certificates obtained and renewed over ACME, cached in `pb_data/.autocert_cache`, and
//! the HTTP address answers ACME HTTP-01 challenges and redirects everything else to HTTPS.
//!
//! Who does what:
//! - the workers run the handshakes (`pocketbun_http::tls`); [`AutoCert`] picks the
//!   certificate from the SNI name (as its punycode A-label) and, like autocert, an RSA one
//!   for a client that cannot take ECDSA. A ready certificate is one map lookup; a missing
//!   one is asked of the ACME thread and awaited, so a worker never blocks on issuance;
//! - the `pocketbun-acme` thread (its own tokio runtime, `acme.rs`) reads the cache, orders
//!   certificates (TLS-ALPN-01 first, then HTTP-01, in autocert's order), writes the cache and
//!   renews each certificate 30 days before it expires;
//! - the HTTP listener ([`ChallengeOrRedirect`]) answers `/.well-known/acme-challenge/` and
//!   redirects the rest to `https://` (302, as autocert's handler does);
//! - [`WwwRedirect`] sends `www.<domain>` to `<domain>` (307), as PocketBase's router does.
//!
//! Tests point the ACME client elsewhere with two environment variables PocketBase does not
//! have: `POCKETBUN_ACME_DIRECTORY` (directory URL; default Let's Encrypt's production one) and
//! `POCKETBUN_ACME_ROOT` (a PEM file with the root to trust for that directory's HTTPS).

mod acme;
pub mod cache;

use futures_util::future::LocalBoxFuture;
use pocketbun_http::tls::{rustls, CertSource, ClientHello, TlsConfig};
use pocketbun_http::{
    HttpError, Method, Request, RequestHead, Response, Server, ServerConfig, ServerHandle, Service,
};
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

/// How long handshakes for a name are refused after getting its certificate failed.
const RETRY_FAILED: std::time::Duration = std::time::Duration::from_secs(60);

/// The ALPN protocol of TLS-ALPN-01 validation connections (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Where `serve` listens and what it serves there, from the domains and flags as PocketBase
/// reads them.
pub struct Listen {
    /// The main server: HTTPS when `tls`, else plain HTTP.
    pub main: SocketAddr,
    pub tls: Option<Arc<AutoCert>>,
    /// The plain-HTTP listener that redirects to HTTPS and answers HTTP-01 challenges.
    pub redirect: Option<SocketAddr>,
    /// `www.` hosts added for convenience, redirected to their bare domain.
    pub www_redirects: Arc<Vec<String>>,
    /// What the start banner prints.
    pub base_url: String,
}

/// PocketBase's defaults: with domains, HTTP on `0.0.0.0:80` and HTTPS on `0.0.0.0:443`;
/// without, HTTP on `127.0.0.1:8090` and no HTTPS unless `--https` is given.
pub fn plan(
    data_dir: &Path,
    domains: &[String],
    http: Option<&str>,
    https: Option<&str>,
) -> Result<Listen, String> {
    let http = http.filter(|s| !s.is_empty());
    let https = https.filter(|s| !s.is_empty());
    let (http, https) = if domains.is_empty() {
        (Some(http.unwrap_or("127.0.0.1:8090")), https)
    } else {
        (
            Some(http.unwrap_or("0.0.0.0:80")),
            Some(https.unwrap_or("0.0.0.0:443")),
        )
    };
    let Some(https) = https else {
        let http = http.unwrap_or("127.0.0.1:8090");
        return Ok(Listen {
            main: resolve(http, "--http")?,
            tls: None,
            redirect: None,
            www_redirects: Arc::new(Vec::new()),
            base_url: format!("http://{http}"),
        });
    };
    let main = resolve(https, "--https")?;
    let redirect = http.map(|a| resolve(a, "--http")).transpose()?;
    // the names a certificate may be issued for: the domains, or the HTTPS address's host,
    // each with its www. twin unless given explicitly
    let mut hosts: Vec<String> = if domains.is_empty() {
        vec![host_of(https)]
    } else {
        domains.iter().map(|d| normalize(d)).collect()
    };
    // a name that is no valid IDNA name can never match a handshake (autocert's whitelist
    // drops it, likewise)
    hosts.retain(|h| !h.is_empty());
    let mut www = Vec::new();
    for host in hosts.clone() {
        if host.starts_with("www.") {
            continue;
        }
        let twin = format!("www.{host}");
        if !hosts.contains(&twin) {
            hosts.push(twin.clone());
            www.push(twin);
        }
    }
    let base_url = match domains.first() {
        Some(d) => format!("https://{d}"),
        None => format!("https://{https}"),
    };
    let acme = acme::Settings::from_env(cache::dir(data_dir), redirect.is_some());
    Ok(Listen {
        main,
        tls: Some(AutoCert::start(hosts, acme).map_err(|e| format!("cannot start ACME: {e}"))?),
        redirect,
        www_redirects: Arc::new(www),
        base_url,
    })
}

fn resolve(addr: &str, flag: &str) -> Result<SocketAddr, String> {
    let with_host = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_string()
    };
    with_host
        .to_socket_addrs()
        .map_err(|e| format!("invalid {flag} address {addr:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("invalid {flag} address {addr:?}"))
}

fn host_of(addr: &str) -> String {
    let host = match addr.rfind(':') {
        Some(i) => &addr[..i],
        None => addr,
    };
    normalize(host.trim_start_matches('[').trim_end_matches(']'))
}

/// A host name as autocert compares and orders it: the IDNA A-label (UTS #46 with Go's
/// `idna.Lookup` profile: STD3 rules, hyphen checks), so `Bücher.example.` and
/// `xn--bcher-kva.example` are one name, and the ACME order, the cache file and the SNI match
/// all use the punycode form. Empty when the name is not a valid IDNA name.
fn normalize(name: &str) -> String {
    use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
    let name = name.trim_end_matches('.');
    match Uts46::new().to_ascii(
        name.as_bytes(),
        AsciiDenyList::STD3,
        Hyphens::Check,
        DnsLength::Ignore,
    ) {
        Ok(ascii) => ascii.into_owned(),
        Err(_) => String::new(),
    }
}

/// A certificate ready to serve.
struct Ready {
    config: Arc<rustls::ServerConfig>,
}

type Waiter = futures_channel::oneshot::Sender<Option<Arc<rustls::ServerConfig>>>;

/// The certificates of an HTTPS server with automatic certificates, shared by the workers
/// (handshakes), the HTTP listener (HTTP-01 tokens) and the ACME thread.
pub struct AutoCert {
    /// Names a certificate may be obtained for (the host policy).
    hosts: Vec<String>,
    /// Ready certificates by cache name (`<domain>`, or `<domain>+rsa` for clients without
    /// ECDSA); `waiting` and `failed` are keyed the same way.
    certs: RwLock<HashMap<String, Ready>>,
    /// TLS-ALPN-01 validation certificates by domain, while a challenge is open.
    alpn_certs: RwLock<HashMap<String, Arc<rustls::ServerConfig>>>,
    /// HTTP-01 key authorizations by token, while a challenge is open.
    http_tokens: RwLock<HashMap<String, String>>,
    /// Handshakes waiting for a domain's first certificate.
    waiting: Mutex<HashMap<String, Vec<Waiter>>>,
    /// When getting a domain's certificate last failed: handshakes are refused for
    /// `RETRY_FAILED` after it, so a stream of clients cannot turn into a stream of orders
    /// (Let's Encrypt allows 5 failed validations per name an hour).
    failed: Mutex<HashMap<String, std::time::Instant>>,
    jobs: tokio::sync::mpsc::UnboundedSender<String>,
}

impl AutoCert {
    /// The ready certificate of cache name `name`, if there is one.
    fn installed(&self, name: &str) -> Option<Arc<rustls::ServerConfig>> {
        let certs = self.certs.read().unwrap_or_else(|e| e.into_inner());
        certs.get(name).map(|r| r.config.clone())
    }

    fn start(hosts: Vec<String>, settings: acme::Settings) -> std::io::Result<Arc<AutoCert>> {
        let (jobs, rx) = tokio::sync::mpsc::unbounded_channel();
        let me = Arc::new(AutoCert {
            hosts,
            certs: RwLock::default(),
            alpn_certs: RwLock::default(),
            http_tokens: RwLock::default(),
            waiting: Mutex::default(),
            failed: Mutex::default(),
            jobs,
        });
        acme::spawn(me.clone(), settings, rx)?;
        Ok(me)
    }

    /// The TLS configuration for the HTTP server.
    pub fn tls_config(self: &Arc<Self>) -> TlsConfig {
        TlsConfig(self.clone())
    }

    fn allowed(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h == host)
    }

    /// Called by the ACME thread with a new (or renewed) certificate, by its cache name.
    fn install(&self, domain: &str, config: Arc<rustls::ServerConfig>) {
        self.certs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                domain.to_string(),
                Ready {
                    config: config.clone(),
                },
            );
        self.answer(domain, Some(config));
    }

    /// Called by the ACME thread when no certificate could be had.
    fn failed(&self, domain: &str) {
        self.failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(domain.to_string(), std::time::Instant::now());
        self.answer(domain, None);
    }

    /// Answers every handshake waiting for `domain`.
    fn answer(&self, domain: &str, config: Option<Arc<rustls::ServerConfig>>) {
        let waiters = self
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(domain)
            .unwrap_or_default();
        for w in waiters {
            let _ = w.send(config.clone());
        }
    }

    fn set_alpn_cert(&self, domain: &str, config: Option<Arc<rustls::ServerConfig>>) {
        let mut map = self.alpn_certs.write().unwrap_or_else(|e| e.into_inner());
        match config {
            Some(c) => map.insert(domain.to_string(), c),
            None => map.remove(domain),
        };
    }

    fn set_http_token(&self, token: &str, key_authorization: Option<String>) {
        let mut map = self.http_tokens.write().unwrap_or_else(|e| e.into_inner());
        match key_authorization {
            Some(k) => map.insert(token.to_string(), k),
            None => map.remove(token),
        };
    }

    fn http_token(&self, token: &str) -> Option<String> {
        self.http_tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned()
    }
}

impl CertSource for AutoCert {
    fn config_for(
        &self,
        hello: ClientHello,
    ) -> LocalBoxFuture<'static, Option<Arc<rustls::ServerConfig>>> {
        let ready = |c| -> LocalBoxFuture<'static, _> { Box::pin(std::future::ready(c)) };
        // no SNI, or a name without a dot: refused, as autocert does
        let Some(name) = hello.server_name.as_deref().map(normalize) else {
            return ready(None);
        };
        if name.is_empty() || !name.contains('.') {
            return ready(None);
        }
        // a TLS-ALPN-01 validation connection offers exactly that one protocol
        if hello.alpn.len() == 1 && hello.alpn[0] == ACME_TLS_ALPN {
            let cert = self
                .alpn_certs
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&name)
                .cloned();
            return ready(cert);
        }
        if !self.allowed(&name) {
            return ready(None);
        }
        // from here on, the certificate's cache name: a client that cannot take ECDSA gets
        // the domain's RSA certificate, `<domain>+rsa` (autocert's two certificates)
        let name = cache::cert_name(&name, !hello.ecdsa);
        if let Some(config) = self.installed(&name) {
            return ready(Some(config));
        }
        // the first handshake for this name: ask the ACME thread (cache or new order) and wait
        let recently_failed = self
            .failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name)
            .is_some_and(|t| t.elapsed() < RETRY_FAILED);
        if recently_failed {
            return ready(None);
        }
        let (tx, rx) = futures_channel::oneshot::channel();
        {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            // installed meanwhile?
            if let Some(config) = self.installed(&name) {
                return ready(Some(config));
            }
            let list = waiting.entry(name.clone()).or_default();
            let first = list.is_empty();
            list.push(tx);
            if first && self.jobs.send(name.clone()).is_err() {
                waiting.remove(&name);
                return ready(None);
            }
        }
        Box::pin(async move { rx.await.ok().flatten() })
    }
}

/// The server configuration for one certificate: HTTP/1.1 only, TLS 1.2 and 1.3 (PocketBase's
/// minimum is 1.2).
fn server_config(
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
    alpn: &[u8],
) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let signing_key = provider.key_provider.load_private_key(key)?;
    // not `with_single_cert`: it has webpki parse the leaf, which refuses the critical
    // acmeIdentifier extension every TLS-ALPN-01 certificate must carry
    let certified = Arc::new(rustls::sign::CertifiedKey::new(chain, signing_key));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(OneCert(certified)));
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(Arc::new(config))
}

/// Always the same certificate (the SNI name was checked before this config was chosen).
#[derive(Debug)]
struct OneCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for OneCert {
    fn resolve(
        &self,
        _: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

// ---- the HTTP listener next to HTTPS ----

/// Starts the HTTP listener next to HTTPS (one worker: it only redirects). As in PocketBase,
/// HTTPS goes on without it when its address cannot be bound; a warning says so.
pub fn start_redirect(listen: &Listen) -> Option<ServerHandle> {
    let (Some(acme), Some(addr)) = (&listen.tls, listen.redirect) else {
        return None;
    };
    let mut config = ServerConfig::new(addr);
    config.workers = 1;
    let acme = acme.clone();
    match Server::start(config, move |_| ChallengeOrRedirect { acme: acme.clone() }) {
        Ok(handle) => Some(handle),
        Err(e) => {
            eprintln!("Warning: cannot listen on {addr} for HTTP (redirects, HTTP-01): {e}");
            None
        }
    }
}

/// What the HTTP address serves when HTTPS is on: ACME HTTP-01 answers, and a redirect to
/// HTTPS for everything else, with the statuses and texts of autocert's handler.
pub struct ChallengeOrRedirect {
    pub acme: Arc<AutoCert>,
}

const CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

fn text(status: u16, body: String) -> Response {
    Response::with_body(
        status,
        "text/plain; charset=utf-8",
        format!("{body}\n").into_bytes(),
    )
    .header("X-Content-Type-Options", "nosniff")
}

impl Service for ChallengeOrRedirect {
    type Route = ();

    fn route(&self, _: &RequestHead) -> ((), usize) {
        // nothing here reads a body
        ((), 1 << 20)
    }

    async fn call(&self, (): (), req: Request) -> Response {
        let host = req.header("host").unwrap_or("");
        if let Some(token) = req.path().strip_prefix(CHALLENGE_PREFIX) {
            // the host policy, on the name without its port (a validator on a port other
            // than 80 sends one)
            let name = normalize(split_port(host).0);
            if !self.acme.allowed(&name) {
                return text(
                    403,
                    format!("acme/autocert: host {name:?} not configured in HostWhitelist"),
                );
            }
            return match self.acme.http_token(token) {
                Some(key_auth) => {
                    Response::with_body(200, "text/plain; charset=utf-8", key_auth.into_bytes())
                }
                None => text(404, "acme/autocert: certificate cache miss".into()),
            };
        }
        if !matches!(req.method(), Method::Get | Method::Head) {
            return text(400, "Use HTTPS".into());
        }
        // autocert names port 443 whenever the request named a port
        let target = match split_port(host) {
            (h, Some(_)) => format!("https://{h}:443{}", req.head.target),
            (h, None) => format!("https://{h}{}", req.head.target),
        };
        go_redirect(302, target, req.method())
    }

    fn error_response(&self, err: &HttpError) -> Response {
        pocketbun_http::default_error_response(err)
    }
}

/// A redirect as Go's `http.Redirect` writes it: a small HTML link for GET, the content type
/// for GET and HEAD, nothing more for other methods.
fn go_redirect(status: u16, target: String, method: &Method) -> Response {
    let reason = if status == 302 {
        "Found"
    } else {
        "Temporary Redirect"
    };
    let resp = match method {
        Method::Get => {
            let body = format!(
                "<a href=\"{}\">{reason}</a>.\n\n",
                pocketbun_http::router::html_escape(&target)
            );
            Response::with_body(status, "text/html; charset=utf-8", body.into_bytes())
        }
        Method::Head => Response::new(status).header("Content-Type", "text/html; charset=utf-8"),
        _ => Response::new(status),
    };
    resp.header("Location", target)
}

fn split_port(host: &str) -> (&str, Option<&str>) {
    match host.rfind(':') {
        Some(i) if !host[i..].contains(']') => (&host[..i], Some(&host[i + 1..])),
        _ => (host, None),
    }
}

// ---- www. to the bare domain ----

/// The app behind PocketBase's implicit `www.` redirect: a request whose Host is one of the
/// added `www.` names goes to the same URL on the bare name (307).
pub struct WwwRedirect<S> {
    pub inner: S,
    pub hosts: Arc<Vec<String>>,
    pub https: bool,
}

impl<S: Service> Service for WwwRedirect<S> {
    type Route = S::Route;

    fn route(&self, head: &RequestHead) -> (S::Route, usize) {
        self.inner.route(head)
    }

    async fn call(&self, route: S::Route, req: Request) -> Response {
        if !self.hosts.is_empty() {
            if let Some(host) = req.header("host") {
                if host.starts_with("www.") && self.hosts.iter().any(|h| h == host) {
                    let scheme = if self.https { "https://" } else { "http://" };
                    let target = format!("{scheme}{}{}", &host[4..], req.head.target);
                    return go_redirect(307, target, req.method());
                }
            }
        }
        self.inner.call(route, req).await
    }

    fn error_response(&self, err: &HttpError) -> Response {
        self.inner.error_response(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_idna_a_labels() {
        assert_eq!(normalize("bücher.example"), "xn--bcher-kva.example");
        assert_eq!(normalize("Bücher.EXAMPLE."), "xn--bcher-kva.example");
        assert_eq!(normalize("xn--bcher-kva.example"), "xn--bcher-kva.example");
        assert_eq!(normalize("Example.COM."), "example.com");
        assert_eq!(normalize("127.0.0.1"), "127.0.0.1");
        // not host names under Go's idna.Lookup profile (STD3 rules, hyphen checks)
        for bad in ["a_b.example", "-a.example", "ab--c.example", "a b.example"] {
            assert_eq!(normalize(bad), "", "{bad}");
        }
    }

    #[test]
    fn idna_domains_are_ordered_and_matched_as_punycode() {
        let dir = std::env::temp_dir().join("pocketbun-idna-plan-unused");
        let listen = plan(
            &dir,
            &["bücher.example".to_string()],
            Some("127.0.0.1:0"),
            Some("127.0.0.1:0"),
        )
        .unwrap();
        let acme = listen.tls.unwrap();
        assert_eq!(
            acme.hosts,
            ["xn--bcher-kva.example", "www.xn--bcher-kva.example"]
        );
        assert_eq!(*listen.www_redirects, ["www.xn--bcher-kva.example"]);
        // PocketBase prints the name as given
        assert_eq!(listen.base_url, "https://bücher.example");
        assert!(acme.allowed(&normalize("BÜCHER.example")));
        assert!(!acme.allowed("bücher.example"));
        assert!(!dir.exists(), "nothing is written before a handshake asks");
    }
}
