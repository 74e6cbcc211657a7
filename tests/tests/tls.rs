//! `serve DOMAIN` / `--https`: certificates from a real ACME server (Pebble, the ACME test
//! server, Debian package `pebble`), served over real TLS handshakes that check the chain
//! against Pebble's issuing root: TLS-ALPN-01 and HTTP-01, the cache, the redirect listener,
//! an IDNA domain, and the RSA certificate autocert serves a client without ECDSA.
//!
//! Pebble resolves names through `pebble-challtestsrv` (its mock DNS answers 127.0.0.1 for
//! every name) and validates on the ports the test gives it, which are PocketBun's `--http`
//! and `--https` ports. PocketBun is pointed at Pebble with `POCKETBUN_ACME_DIRECTORY` and
//! `POCKETBUN_ACME_ROOT`.
//!
//! Without Pebble these tests print one line and pass, except under `CI=true`, where they fail
//! (`.ci/run` installs it).

use pocketbun_tests::pocketbun_bin;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DOMAIN: &str = "pocketbun.test";

fn tool(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Pebble and its DNS, or `None` (with the skip line printed) where they are not installed.
fn pebble_tools() -> Option<(PathBuf, PathBuf)> {
    match (tool("pebble"), tool("pebble-challtestsrv")) {
        (Some(p), Some(d)) => Some((p, d)),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "pebble is not installed (apt-get install -y pebble); CI must run these tests"
            );
            println!("skipped: pebble is not installed (apt-get install -y pebble)");
            None
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped; its output goes to `log`.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn start(cmd: &mut Command, log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Proc { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_listening(port: u16, what: &Proc) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on {port}:\n{}",
            what.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A Pebble instance whose validation connects to `http_port` (HTTP-01) and `tls_port`
/// (TLS-ALPN-01) on 127.0.0.1.
struct Pebble {
    _dns: Proc,
    server: Proc,
    /// The CA of Pebble's own HTTPS (generated here), PEM.
    api_ca: PathBuf,
    api_roots: rustls::RootCertStore,
    port: u16,
    mgmt_port: u16,
}

impl Pebble {
    fn start(dir: &Path, http_port: u16, tls_port: u16) -> Option<Pebble> {
        let (pebble, challtestsrv) = pebble_tools()?;
        // Pebble's API is HTTPS only: a CA and a localhost certificate for it
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pocketbun test ACME API CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        let api_ca = dir.join("api-ca.pem");
        std::fs::write(&api_ca, ca_cert.pem()).unwrap();
        std::fs::write(dir.join("api-cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("api-key.pem"), key.serialize_pem()).unwrap();
        let mut api_roots = rustls::RootCertStore::empty();
        api_roots.add(ca_cert.der().clone()).unwrap();

        let (port, mgmt_port, dns_port) = (free_port(), free_port(), free_port());
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{port}"),
                "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
                "certificate": dir.join("api-cert.pem"),
                "privateKey": dir.join("api-key.pem"),
                "httpPort": http_port,
                "tlsPort": tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false
            }
        });
        std::fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
        let dns = Proc::start(
            Command::new(challtestsrv).args([
                "-dns01",
                &format!("127.0.0.1:{dns_port}"),
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-management",
                &format!("127.0.0.1:{}", free_port()),
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6",
                "",
            ]),
            dir.join("dns.log"),
        );
        wait_listening(dns_port, &dns);
        let server = Proc::start(
            Command::new(pebble)
                .arg("-config")
                .arg(dir.join("pebble.json"))
                .arg("-dnsserver")
                .arg(format!("127.0.0.1:{dns_port}"))
                // validate at once, accept every nonce, never reuse an authorization: every
                // order goes through a real validation
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0")
                .env("PEBBLE_AUTHZREUSE", "0"),
            dir.join("pebble.log"),
        );
        wait_listening(port, &server);
        wait_listening(mgmt_port, &server);
        Some(Pebble {
            _dns: dns,
            server,
            api_ca,
            api_roots,
            port,
            mgmt_port,
        })
    }

    /// The root Pebble issues under, to verify served chains against.
    fn issuing_roots(&self) -> rustls::RootCertStore {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.mgmt_port));
        let (resp, _) = https_get(addr, "localhost", &self.api_roots, "/roots/0", "localhost")
            .expect("Pebble's root");
        let pem = String::from_utf8(body_of(&resp).to_vec()).unwrap();
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64_decode(&b64);
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(der)).unwrap();
        roots
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn client_config(roots: &rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth(),
    )
}

/// A client that cannot take an ECDSA certificate: it offers RSA signature schemes only (and
/// no ECDHE-ECDSA suite), as an old client might.
fn rsa_only_config(roots: &rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let mut provider = rustls::crypto::ring::default_provider();
    let is_ecdsa = |name: String| name.contains("ECDSA");
    provider
        .cipher_suites
        .retain(|s| !is_ecdsa(format!("{:?}", s.suite())));
    let algs = provider.signature_verification_algorithms;
    let mapping: Vec<_> = algs
        .mapping
        .iter()
        .filter(|(scheme, _)| !is_ecdsa(format!("{scheme:?}")))
        .copied()
        .collect();
    provider.signature_verification_algorithms = rustls::crypto::WebPkiSupportedAlgorithms {
        all: algs.all,
        mapping: Box::leak(mapping.into_boxed_slice()),
    };
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth(),
    )
}

/// One GET over a verified TLS connection with SNI `sni`: the raw response and the leaf
/// certificate the server presented.
fn https_get(
    addr: SocketAddr,
    sni: &str,
    roots: &rustls::RootCertStore,
    path: &str,
    host: &str,
) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    https_get_with(addr, sni, client_config(roots), path, host)
}

/// [`https_get`] with a given client configuration.
fn https_get_with(
    addr: SocketAddr,
    sni: &str,
    config: Arc<rustls::ClientConfig>,
    path: &str,
    host: &str,
) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(60)))?;
    let name = ServerName::try_from(sni.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = Vec::new();
    match tls.read_to_end(&mut resp) {
        Ok(_) => {}
        // Go's servers close without close_notify
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !resp.is_empty() => {}
        Err(e) => return Err(e),
    }
    let leaf = tls.conn.peer_certificates().unwrap()[0].to_vec();
    Ok((resp, leaf))
}

fn body_of(resp: &[u8]) -> &[u8] {
    let at = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    &resp[at..]
}

fn head_of(resp: &[u8]) -> String {
    let at = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    String::from_utf8_lossy(&resp[..at]).into_owned()
}

/// A plain HTTP/1.1 exchange (the redirect listener).
fn http_raw(port: u16, request: &str) -> String {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Where the server finds Pebble's directory, and the CA of its HTTPS.
struct AcmeEnv {
    directory: String,
    api_ca: PathBuf,
}

impl Pebble {
    fn env(&self) -> AcmeEnv {
        AcmeEnv {
            directory: format!("https://127.0.0.1:{}/dir", self.port),
            api_ca: self.api_ca.clone(),
        }
    }
}

fn pocketbun(dir: &Path, acme: &AcmeEnv, args: &[String], log: &str) -> Proc {
    Proc::start(
        Command::new(pocketbun_bin())
            .arg("serve")
            .args(args)
            .arg(format!("--dir={}", dir.join("pb_data").display()))
            .arg("--workers=2")
            .env("POCKETBUN_ACME_DIRECTORY", &acme.directory)
            .env("POCKETBUN_ACME_ROOT", &acme.api_ca),
        dir.join(log),
    )
}

#[test]
fn tls_alpn_certificate_is_issued_served_cached_and_reused_after_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let (http_port, https_port) = (free_port(), free_port());
    let Some(pebble) = Pebble::start(tmp.path(), http_port, https_port) else {
        return;
    };
    let roots = pebble.issuing_roots();
    let args = vec![
        DOMAIN.to_string(),
        format!("--http=127.0.0.1:{http_port}"),
        format!("--https=127.0.0.1:{https_port}"),
    ];
    let acme = pebble.env();
    let server = pocketbun(tmp.path(), &acme, &args, "pocketbun-1.log");
    wait_listening(https_port, &server);
    let addr = SocketAddr::from(([127, 0, 0, 1], https_port));

    // the first handshake waits for the order (TLS-ALPN-01 on this very port)
    let (resp, leaf) = https_get(addr, DOMAIN, &roots, "/api/health", DOMAIN).unwrap_or_else(|e| {
        panic!(
            "handshake: {e}\n--- pocketbun ---\n{}\n--- pebble ---\n{}",
            server.log(),
            pebble.server.log()
        )
    });
    assert!(
        head_of(&resp).starts_with("HTTP/1.1 200 OK"),
        "{}",
        head_of(&resp)
    );
    assert_eq!(
        body_of(&resp).trim_ascii_end(), // 0.39 ends JSON with a newline, 0.40 does not
        br#"{"message":"API is healthy.","code":200,"data":{}}"#
    );
    // validated over TLS-ALPN-01: Pebble never had to try HTTP-01
    let log = pebble.server.log();
    assert!(log.contains("set VALID by completed challenge"), "{log}");
    assert!(!log.contains("validate w/ HTTP"), "{log}");

    // the cache, in autocert's layout and modes
    let cache = tmp.path().join("pb_data/.autocert_cache");
    let cached = std::fs::read_to_string(cache.join(DOMAIN)).unwrap();
    assert!(
        cached.starts_with("-----BEGIN EC PRIVATE KEY-----\n"),
        "{cached}"
    );
    assert!(
        cached.matches("-----BEGIN CERTIFICATE-----").count() >= 2,
        "leaf and chain"
    );
    let account = std::fs::read_to_string(cache.join("acme_account+key")).unwrap();
    assert!(account.starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cache), 0o700);
    assert_eq!(mode(&cache.join(DOMAIN)), 0o600);

    // a second connection gets the same certificate without waiting
    let (_, again) = https_get(addr, DOMAIN, &roots, "/api/health", DOMAIN).unwrap();
    assert_eq!(again, leaf);

    // www. twin on the same connection: 307 to the bare domain, over https
    let (resp, _) = https_get(
        addr,
        DOMAIN,
        &roots,
        "/api/health?a=1",
        &format!("www.{DOMAIN}"),
    )
    .unwrap();
    let head = head_of(&resp);
    assert!(
        head.starts_with("HTTP/1.1 307 Temporary Redirect"),
        "{head}"
    );
    assert!(
        head.contains(&format!("\r\nLocation: https://{DOMAIN}/api/health?a=1")),
        "{head}"
    );

    // names outside the host policy, and no SNI at all, are refused
    assert!(https_get(addr, "other.test", &roots, "/", "other.test").is_err());

    // the HTTP listener: redirects, HTTP-01 answers (autocert's statuses and texts)
    let r = http_raw(
        http_port,
        &format!(
            "GET /api/health?x=1&y=%20 HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(r.starts_with("HTTP/1.1 302 Found\r\n"), "{r}");
    assert!(
        r.contains(&format!(
            "\r\nLocation: https://{DOMAIN}/api/health?x=1&y=%20\r\n"
        )),
        "{r}"
    );
    assert!(
        r.ends_with(&format!(
            "<a href=\"https://{DOMAIN}/api/health?x=1&amp;y=%20\">Found</a>.\n\n"
        )),
        "{r}"
    );
    let r = http_raw(
        http_port,
        &format!("GET /a HTTP/1.1\r\nHost: {DOMAIN}:{http_port}\r\nConnection: close\r\n\r\n"),
    );
    assert!(
        r.contains(&format!("\r\nLocation: https://{DOMAIN}:443/a\r\n")),
        "{r}"
    );
    let r = http_raw(http_port, &format!("POST /api/health HTTP/1.1\r\nHost: {DOMAIN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
    assert!(
        r.starts_with("HTTP/1.1 400 Bad Request\r\n") && r.ends_with("\r\n\r\nUse HTTPS\n"),
        "{r}"
    );
    let r = http_raw(http_port, &format!("GET /.well-known/acme-challenge/nope HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\n\r\n"));
    assert!(
        r.starts_with("HTTP/1.1 404 Not Found\r\n")
            && r.ends_with("acme/autocert: certificate cache miss\n"),
        "{r}"
    );
    let r = http_raw(http_port, "GET /.well-known/acme-challenge/nope HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{r}");
    assert!(
        r.ends_with("acme/autocert: host \"other.test\" not configured in HostWhitelist\n"),
        "{r}"
    );

    // restart with the ACME server gone: the cached certificate is served, no new order
    assert!(server.terminate().success());
    drop(pebble);
    let server = pocketbun(tmp.path(), &acme, &args, "pocketbun-2.log");
    wait_listening(https_port, &server);
    let (resp, after) = https_get(addr, DOMAIN, &roots, "/api/health", DOMAIN)
        .unwrap_or_else(|e| panic!("handshake after restart: {e}\n{}", server.log()));
    assert!(head_of(&resp).starts_with("HTTP/1.1 200 OK"));
    assert_eq!(after, leaf, "the certificate from the cache");
    assert!(server.terminate().success());
}

#[test]
fn http01_is_used_when_tls_alpn_cannot_be_validated() {
    let tmp = tempfile::tempdir().unwrap();
    let (http_port, https_port) = (free_port(), free_port());
    // Pebble's TLS-ALPN-01 validation goes to a port nobody listens on: that order fails,
    // and the next one must succeed over HTTP-01 on the redirect listener
    let Some(pebble) = Pebble::start(tmp.path(), http_port, free_port()) else {
        return;
    };
    let roots = pebble.issuing_roots();
    let args = vec![
        DOMAIN.to_string(),
        format!("--http=127.0.0.1:{http_port}"),
        format!("--https=127.0.0.1:{https_port}"),
    ];
    let server = pocketbun(tmp.path(), &pebble.env(), &args, "pocketbun.log");
    wait_listening(https_port, &server);
    let addr = SocketAddr::from(([127, 0, 0, 1], https_port));
    let (resp, _) = https_get(addr, DOMAIN, &roots, "/api/health", DOMAIN).unwrap_or_else(|e| {
        panic!(
            "handshake: {e}\n--- pocketbun ---\n{}\n--- pebble ---\n{}",
            server.log(),
            pebble.server.log()
        )
    });
    assert!(head_of(&resp).starts_with("HTTP/1.1 200 OK"));
    let log = pebble.server.log();
    assert!(
        log.contains("set INVALID"),
        "the TLS-ALPN-01 order failed:\n{log}"
    );
    assert!(log.contains("validate w/ HTTP"), "then HTTP-01:\n{log}");
    assert!(server.terminate().success());
}

/// Whether a DER certificate's key is `oid` (the SubjectPublicKeyInfo algorithm).
fn key_is(cert: &[u8], oid: &[u8]) -> bool {
    cert.windows(oid.len()).any(|w| w == oid)
}
/// rsaEncryption (1.2.840.113549.1.1.1) and id-ecPublicKey (1.2.840.10045.2.1), as DER.
const RSA_KEY: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];
const EC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// `serve bücher.test`: the name is ordered, cached and matched as its punycode A-label (as
/// autocert does); a client without ECDSA gets a second certificate, RSA, cached under
/// autocert's `<domain>+rsa` name, while other clients keep the ECDSA one.
#[test]
fn idna_domain_and_rsa_certificate_for_clients_without_ecdsa() {
    const ASCII: &str = "xn--bcher-kva.test";
    let tmp = tempfile::tempdir().unwrap();
    let (http_port, https_port) = (free_port(), free_port());
    let Some(pebble) = Pebble::start(tmp.path(), http_port, https_port) else {
        return;
    };
    let roots = pebble.issuing_roots();
    let args = vec![
        "bücher.test".to_string(),
        format!("--http=127.0.0.1:{http_port}"),
        format!("--https=127.0.0.1:{https_port}"),
    ];
    let server = pocketbun(tmp.path(), &pebble.env(), &args, "pocketbun.log");
    wait_listening(https_port, &server);
    let addr = SocketAddr::from(([127, 0, 0, 1], https_port));
    let fail = |what: &str, e: std::io::Error| -> ! {
        panic!(
            "{what}: {e}\n--- pocketbun ---\n{}\n--- pebble ---\n{}",
            server.log(),
            pebble.server.log()
        )
    };

    let (resp, ec_leaf) = https_get(addr, ASCII, &roots, "/api/health", ASCII)
        .unwrap_or_else(|e| fail("ECDSA handshake", e));
    assert!(head_of(&resp).starts_with("HTTP/1.1 200 OK"));
    assert!(key_is(&ec_leaf, EC_KEY) && !key_is(&ec_leaf, RSA_KEY));
    let cache = tmp.path().join("pb_data/.autocert_cache");
    let cached = std::fs::read_to_string(cache.join(ASCII)).unwrap();
    assert!(cached.starts_with("-----BEGIN EC PRIVATE KEY-----\n"));

    // a client that offers no ECDSA signature scheme: the RSA certificate, ordered now
    let (resp, rsa_leaf) =
        https_get_with(addr, ASCII, rsa_only_config(&roots), "/api/health", ASCII)
            .unwrap_or_else(|e| fail("RSA-only handshake", e));
    assert!(head_of(&resp).starts_with("HTTP/1.1 200 OK"));
    assert!(key_is(&rsa_leaf, RSA_KEY), "an RSA certificate");
    let cached = std::fs::read_to_string(cache.join(format!("{ASCII}+rsa"))).unwrap();
    assert!(
        cached.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"),
        "{cached}"
    );
    assert!(cached.contains("-----BEGIN CERTIFICATE-----"));

    // each kind of client keeps its own certificate
    let (_, again) = https_get(addr, ASCII, &roots, "/api/health", ASCII).unwrap();
    assert_eq!(again, ec_leaf);
    let (_, again) =
        https_get_with(addr, ASCII, rsa_only_config(&roots), "/api/health", ASCII).unwrap();
    assert_eq!(again, rsa_leaf);
    assert!(server.terminate().success());
}
