//! The HTTP layer over TLS: a real server on a loopback port with a self-signed certificate,
//! a rustls client that verifies it, on both drivers (io_uring where available, and epoll).

use pocketbun_http::tls::{rustls, FixedCert, TlsConfig};
use pocketbun_http::{Body, Driver, Request, RequestHead, Response, Server, ServerConfig, Service};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

struct TestService;

impl Service for TestService {
    type Route = ();

    fn route(&self, _: &RequestHead) -> ((), usize) {
        ((), 8 << 20)
    }

    async fn call(&self, (): (), req: Request) -> Response {
        match req.path() {
            "/big" => Response::with_body(200, "text/plain", big(3 << 20)),
            "/stream" => {
                let chunks = futures_util::stream::iter(
                    ["data: one\n\n", "data: two\n\n"].map(|s| s.as_bytes().to_vec()),
                );
                let mut resp = Response::new(200).header("Content-Type", "text/event-stream");
                resp.body = Body::Stream(Box::pin(chunks));
                resp
            }
            _ => {
                let sum: u64 = req.body.iter().map(|&b| b as u64).sum();
                let text = format!(
                    "{} {} len={} sum={sum}",
                    req.method().as_str(),
                    req.path(),
                    req.body.len()
                );
                Response::with_body(200, "text/plain", text.into_bytes())
            }
        }
    }
}

fn big(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

struct Pki {
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

fn pki() -> Pki {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let mut server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key)
        .unwrap();
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).unwrap();
    let client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Pki {
        server: Arc::new(server),
        client: Arc::new(client),
    }
}

fn start(driver: Driver, pki: &Pki) -> (SocketAddr, pocketbun_http::ServerHandle) {
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap());
    config.workers = 2;
    config.driver = driver;
    config.shutdown_grace = Duration::from_secs(5);
    config.tls = Some(TlsConfig(Arc::new(FixedCert(pki.server.clone()))));
    let handle = Server::start(config, |_| TestService).expect("server starts");
    (handle.local_addr(), handle)
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn connect(addr: SocketAddr, pki: &Pki) -> Tls {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(pki.client.clone(), name).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// Reads one response (Content-Length or chunked framing) from `s`, keeping extra bytes.
fn response(s: &mut impl Read, pending: &mut Vec<u8>) -> (String, Vec<u8>) {
    let mut buf = [0u8; 65536];
    let head_end = loop {
        if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "connection closed before a full head");
        pending.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8(pending[..head_end].to_vec()).unwrap();
    pending.drain(..head_end);
    let lower = head.to_ascii_lowercase();
    let mut fill = |pending: &mut Vec<u8>, want: usize| {
        while pending.len() < want {
            let n = s.read(&mut buf).expect("read");
            assert!(n > 0, "connection closed inside a body");
            pending.extend_from_slice(&buf[..n]);
        }
    };
    if let Some(len) = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
    {
        let len: usize = len.trim().parse().unwrap();
        fill(pending, len);
        let body = pending.drain(..len).collect();
        return (head, body);
    }
    assert!(lower.contains("transfer-encoding: chunked"), "{head}");
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(i) = pending.windows(2).position(|w| w == b"\r\n") {
                break i;
            }
            let have = pending.len() + 1;
            fill(pending, have);
        };
        let size =
            usize::from_str_radix(std::str::from_utf8(&pending[..line_end]).unwrap(), 16).unwrap();
        fill(pending, line_end + 2 + size + 2);
        body.extend_from_slice(&pending[line_end + 2..line_end + 2 + size]);
        pending.drain(..line_end + 2 + size + 2);
        if size == 0 {
            return (head, body);
        }
    }
}

#[test]
fn requests_over_tls_keep_alive_pipelined_large_and_streamed() {
    let pki = pki();
    for driver in [Driver::Auto, Driver::Epoll] {
        let (addr, handle) = start(driver, &pki);
        let mut tls = connect(addr, &pki);
        let mut pending = Vec::new();

        // keep-alive: several requests on one connection
        for i in 0..3 {
            write!(tls, "GET /n{i} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
            let (head, body) = response(&mut tls, &mut pending);
            assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
            assert_eq!(body, format!("GET /n{i} len=0 sum=0").as_bytes());
        }
        assert_eq!(tls.conn.alpn_protocol(), None, "the client offered no ALPN");

        // pipelined: two requests in one TLS write, answered in order
        tls.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert_eq!(response(&mut tls, &mut pending).1, b"GET /a len=0 sum=0");
        assert_eq!(response(&mut tls, &mut pending).1, b"GET /b len=0 sum=0");

        // a body over many TLS records, and a response over many records
        let upload = big(1 << 20);
        let sum: u64 = upload.iter().map(|&b| b as u64).sum();
        write!(
            tls,
            "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            upload.len()
        )
        .unwrap();
        tls.write_all(&upload).unwrap();
        let (_, body) = response(&mut tls, &mut pending);
        assert_eq!(
            body,
            format!("POST /up len={} sum={sum}", upload.len()).as_bytes()
        );
        tls.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert_eq!(response(&mut tls, &mut pending).1, big(3 << 20));

        // a chunked stream (the read side is watched meanwhile), then the connection goes on
        tls.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert_eq!(
            response(&mut tls, &mut pending).1,
            b"data: one\n\ndata: two\n\n"
        );
        tls.write_all(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert_eq!(
            response(&mut tls, &mut pending).1,
            b"GET /after len=0 sum=0"
        );

        // Connection: close ends with the server's close_notify: a clean EOF for the client
        tls.write_all(b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let (head, _) = response(&mut tls, &mut pending);
        assert!(head.contains("Connection: close"), "{head}");
        let mut rest = Vec::new();
        tls.read_to_end(&mut rest).expect("clean TLS close");
        assert!(rest.is_empty() && pending.is_empty());

        handle.shutdown().trigger();
        handle.join().unwrap();
    }
}

#[test]
fn non_tls_and_broken_clients_are_closed_and_the_server_goes_on() {
    let pki = pki();
    let (addr, handle) = start(Driver::Auto, &pki);

    // plain HTTP on the TLS port: rustls refuses the "ClientHello", we close
    let mut plain = TcpStream::connect(addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(
        !got.starts_with(b"HTTP/"),
        "no plain-text answer on a TLS port"
    );

    // a client that does not trust the certificate aborts the handshake
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(other.cert.der().clone()).unwrap();
    let distrusting = Pki {
        server: pki.server.clone(),
        client: Arc::new(
            rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        ),
    };
    let mut tls = connect(addr, &distrusting);
    let err = tls
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .and_then(|_| tls.flush());
    let err = err.and_then(|_| tls.read(&mut [0u8; 16]).map(|_| ()));
    assert!(err.is_err(), "an untrusted certificate fails the handshake");

    // a client that connects and closes at once
    drop(TcpStream::connect(addr).unwrap());

    // the server still serves
    let mut tls = connect(addr, &pki);
    tls.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut pending = Vec::new();
    assert_eq!(response(&mut tls, &mut pending).1, b"GET /ok len=0 sum=0");

    handle.shutdown().trigger();
    handle.join().unwrap();
}
