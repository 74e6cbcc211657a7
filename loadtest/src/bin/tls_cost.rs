//! `loadtest-tls-cost`: what TLS costs a server, per request and per new connection. The same
//! GET over plain HTTP and over HTTPS, on kept-alive connections or on a new connection per
//! request (a full handshake each, or a resumed one with `--resume`).
//!
//! ```text
//! loadtest-tls-cost --addr 127.0.0.1:8443 [--sni example.test] [--new-conn [--resume]]
//!                   [--threads 4] [--secs 10] [--path /api/health] [--pid SERVER_PID]
//! ```
//!
//! Blocking client threads (rustls on ring; the certificate chain is not verified, since it
//! is a test one, but the handshake signature is), each running requests back to back for
//! `--secs`. Prints requests/s, mean and p99 latency, how many handshakes were resumed, and
//! with `--pid` the server's CPU time per request (user + system, all threads, from
//! `/proc/PID/stat`): on a shared machine that figure is steadier than requests/s, and it is
//! what TLS costs the server whatever the client's own speed. Every response must be a 200.
//!
//! The client does the same TLS work for any server, so two servers measured with the same
//! flags (each pinned to its own core with `taskset`, the client on another) compare side by
//! side; `BENCHMARKS.md` ("TLS") has the method and the certificate setup.

use clap::Parser;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "loadtest-tls-cost",
    about = "Requests/s and server CPU per request over HTTP and HTTPS, kept-alive or a new connection each"
)]
struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:8090")]
    addr: SocketAddr,
    /// Speak TLS with this SNI name (also sent as Host). Without it: plain HTTP.
    #[arg(long)]
    sni: Option<String>,
    /// A new connection for every request (`Connection: close`): a TLS handshake each.
    #[arg(long)]
    new_conn: bool,
    /// With --new-conn over TLS: resume the session (TLS 1.3 tickets / session ids) instead of
    /// a full handshake each time.
    #[arg(long)]
    resume: bool,
    /// Client threads, each with one connection at a time.
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    secs: f64,
    /// Request path.
    #[arg(long, default_value = "/api/health")]
    path: String,
    /// The server's process id: report its CPU time per request.
    #[arg(long)]
    pid: Option<u32>,
}

/// Accepts any certificate chain (a self-signed test certificate), but still checks the
/// handshake signatures, so the client's work is that of a real one.
#[derive(Debug)]
struct AnyChain(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyChain {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    fn io(&mut self) -> &mut dyn ReadWrite {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => &mut **s,
        }
    }

    fn resumed(&self) -> bool {
        match self {
            Conn::Plain(_) => false,
            Conn::Tls(s) => matches!(
                s.conn.handshake_kind(),
                Some(rustls::HandshakeKind::Resumed)
            ),
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn connect(args: &Args, config: Option<&Arc<rustls::ClientConfig>>) -> std::io::Result<Conn> {
    let tcp = TcpStream::connect(args.addr)?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(match (config, &args.sni) {
        (Some(c), Some(sni)) => {
            let name = rustls::pki_types::ServerName::try_from(sni.clone())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            let mut conn = rustls::ClientConnection::new(c.clone(), name)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            let mut tcp = tcp;
            // the handshake now, so a resumed session is known before the request
            while conn.is_handshaking() {
                conn.complete_io(&mut tcp)?;
            }
            Conn::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
        }
        _ => Conn::Plain(tcp),
    })
}

/// Sends one GET and reads its response (Content-Length framing). `Ok(false)` when the
/// answer was not a 200.
fn one(conn: &mut dyn ReadWrite, req: &[u8], buf: &mut Vec<u8>) -> std::io::Result<bool> {
    conn.write_all(req)?;
    buf.clear();
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Ok(head.starts_with("http/1.1 200"));
            }
        }
        match conn.read(&mut chunk) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(e),
        }
    }
}

/// User + system CPU time of a process, all its threads (`/proc/PID/stat`).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the fields after the command name, which is in parentheses and may hold spaces
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime: fields 14 and 15 of the line, 12 and 13 after the name and state
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    Some(Duration::from_micros(ticks * 1_000_000 / hz))
}

fn main() {
    let args = Arc::new(Args::parse());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = args.sni.as_ref().map(|_| {
        let mut c = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports TLS 1.2 and 1.3")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyChain(provider.clone())))
            .with_no_client_auth();
        if !args.resume {
            // every new connection a full handshake: resumption would hide what it costs
            c.resumption = rustls::client::Resumption::disabled();
        }
        Arc::new(c)
    });
    let host = args.sni.clone().unwrap_or_else(|| args.addr.to_string());
    let close = if args.new_conn {
        "Connection: close\r\n"
    } else {
        ""
    };
    let req = format!("GET {} HTTP/1.1\r\nHost: {host}\r\n{close}\r\n", args.path).into_bytes();
    let resumed = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));

    let cpu_before = args.pid.and_then(cpu_time);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.secs);
    let workers: Vec<_> = (0..args.threads)
        .map(|_| {
            let (args, config, req) = (args.clone(), config.clone(), req.clone());
            let (resumed, failed) = (resumed.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut buf = Vec::new();
                let mut conn: Option<Conn> = None;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    if conn.is_none() {
                        match connect(&args, config.as_ref()) {
                            Ok(c) => {
                                if c.resumed() {
                                    resumed.fetch_add(1, Ordering::Relaxed);
                                }
                                conn = Some(c);
                            }
                            Err(_) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                std::thread::sleep(Duration::from_millis(10));
                                continue;
                            }
                        }
                    }
                    let c = conn.as_mut().expect("connected above");
                    match one(c.io(), &req, &mut buf) {
                        Ok(true) => lat.push(t.elapsed().as_micros() as u64),
                        Ok(false) | Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            conn = None;
                            continue;
                        }
                    }
                    if args.new_conn {
                        conn = None;
                    }
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<u64> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("a client thread panicked"))
        .collect();
    let secs = started.elapsed().as_secs_f64();
    let cpu_after = args.pid.and_then(cpu_time);

    lat.sort_unstable();
    let n = lat.len().max(1);
    let mean = lat.iter().sum::<u64>() as f64 / n as f64;
    let p99 = lat.get(n * 99 / 100).copied().unwrap_or(0);
    let mut line = format!(
        "{} {} {}: {:.0} req/s, mean {mean:.0} us, p99 {p99} us ({} ok, {} failed, {} threads, {secs:.1} s",
        args.addr,
        if args.sni.is_some() { "https" } else { "http" },
        match (args.new_conn, args.resume) {
            (false, _) => "keep-alive",
            (true, false) => "new connection per request",
            (true, true) => "new connection per request, resumed",
        },
        lat.len() as f64 / secs,
        lat.len(),
        failed.load(Ordering::Relaxed),
        args.threads,
    );
    if args.sni.is_some() && args.new_conn {
        line.push_str(&format!(
            ", {} handshakes resumed",
            resumed.load(Ordering::Relaxed)
        ));
    }
    line.push(')');
    if let (Some(a), Some(b)) = (cpu_before, cpu_after) {
        let per = (b.saturating_sub(a)).as_secs_f64() * 1e6 / lat.len().max(1) as f64;
        line.push_str(&format!(
            "; server CPU {per:.1} us/request ({:.2} s in all)",
            b.saturating_sub(a).as_secs_f64()
        ));
    }
    println!("{line}");
}
