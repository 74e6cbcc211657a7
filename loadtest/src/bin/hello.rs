//! `loadtest-hello`: the ceiling reference. A bare monoio thread-per-core
//! HTTP/1.1 server (SO_REUSEPORT listener per thread) that answers every
//! request with the same small JSON 200. Pipelining-aware: all complete
//! requests in a read are answered with one write.

use clap::Parser;
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{TcpListener, TcpStream};
use pocketbun_loadtest::affinity::{self, CpuList};
use pocketbun_loadtest::rt::{self, UringMode};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;

/// Same body as PocketBase's `GET /api/health`.
const BODY: &str = r#"{"message":"API is healthy.","code":200,"data":{}}"#;
const MAX_HEAD: usize = 64 * 1024;

#[derive(Parser)]
#[command(
    name = "loadtest-hello",
    about = "Bare monoio hello-world HTTP server (ceiling reference)"
)]
struct Args {
    /// Listen address (loopback). Port 0 picks one.
    #[arg(long, default_value = "127.0.0.1:8091")]
    addr: SocketAddr,
    /// Server threads. Default: one per --cpus entry, else one per available CPU.
    #[arg(long)]
    threads: Option<usize>,
    /// Pin thread i to cpus[i % len], e.g. `0` or `0-1`.
    #[arg(long)]
    cpus: Option<CpuList>,
    /// io_uring setup flags (falls back to plain, then epoll).
    #[arg(long, value_enum, default_value_t = UringMode::Defer)]
    uring: UringMode,
}

fn listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nodelay(true)?;
    s.bind(&addr.into())?;
    s.listen(4096)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

fn main() {
    let args = Args::parse();
    let cpus: Option<Vec<usize>> = args.cpus.map(|c| c.0);
    let threads = args
        .threads
        .unwrap_or_else(|| match &cpus {
            Some(c) => c.len(),
            None => affinity::available_cpus(),
        })
        .max(1);
    let response: &'static [u8] = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    )
    .into_bytes()
    .leak();
    // Bind every listener up front (same port, SO_REUSEPORT) so that "listening"
    // really means ready, and port 0 resolves once for all threads.
    let first = listener(args.addr).unwrap_or_else(|e| {
        eprintln!("loadtest-hello: bind {}: {e}", args.addr);
        std::process::exit(1);
    });
    let addr = first.local_addr().expect("local addr");
    let mut listeners = vec![first];
    for _ in 1..threads {
        listeners.push(listener(addr).unwrap_or_else(|e| {
            eprintln!("loadtest-hello: bind {addr}: {e}");
            std::process::exit(1);
        }));
    }
    let uring = args.uring;
    let mut handles = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        let cpu = cpus.as_ref().map(|c| c[i % c.len()]);
        handles.push(std::thread::spawn(move || {
            if let Some(c) = cpu {
                if let Err(e) = affinity::pin_current_thread(&[c]) {
                    eprintln!("loadtest-hello: pin to cpu {c}: {e}");
                }
            }
            let (mut rt, driver) = rt::build(uring, 1024).expect("monoio runtime");
            if i == 0 {
                eprintln!("loadtest-hello: driver {driver}");
            }
            rt.block_on(accept_loop(l, response));
        }));
    }
    println!("loadtest-hello listening on http://{addr} with {threads} threads");
    for h in handles {
        let _ = h.join();
    }
}

async fn accept_loop(l: std::net::TcpListener, response: &'static [u8]) {
    let l = TcpListener::from_std(l).expect("monoio listener");
    loop {
        match l.accept().await {
            Ok((s, _)) => {
                let _ = s.set_nodelay(true);
                monoio::spawn(serve(s, response));
            }
            Err(_) => monoio::time::sleep(std::time::Duration::from_millis(5)).await,
        }
    }
}

fn content_length(req: &httparse::Request) -> Option<Result<usize, ()>> {
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            return Some(
                std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or(()),
            );
        }
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Some(Err(())); // chunked request bodies are not supported here
        }
    }
    None
}

fn wants_close(req: &httparse::Request) -> bool {
    let mut close = req.version == Some(0);
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") {
            for t in h.value.split(|&b| b == b',') {
                let t = t.trim_ascii();
                if t.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") {
                    close = false;
                }
            }
        }
    }
    close
}

async fn serve(mut stream: TcpStream, response: &'static [u8]) {
    let mut rbuf: Vec<u8> = Vec::with_capacity(8 * 1024);
    let mut wbuf: Vec<u8> = Vec::with_capacity(8 * 1024);
    let mut skip = 0usize; // request-body bytes still to discard
    loop {
        if rbuf.capacity() - rbuf.len() < 1024 {
            rbuf.reserve(8 * 1024);
        }
        let (len, cap) = (rbuf.len(), rbuf.capacity());
        let (res, slice) = stream.read(rbuf.slice_mut(len..cap)).await;
        rbuf = slice.into_inner();
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut pos = 0;
        let mut close = false;
        loop {
            if skip > 0 {
                let t = skip.min(rbuf.len() - pos);
                pos += t;
                skip -= t;
                if skip > 0 {
                    break;
                }
            }
            if pos == rbuf.len() {
                break;
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&rbuf[pos..]) {
                Ok(httparse::Status::Complete(n)) => {
                    pos += n;
                    match content_length(&req) {
                        None => {}
                        Some(Ok(cl)) => skip = cl,
                        Some(Err(())) => {
                            wbuf.extend_from_slice(
                                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                            );
                            close = true;
                            break;
                        }
                    }
                    wbuf.extend_from_slice(response);
                    if wants_close(&req) {
                        close = true;
                        break;
                    }
                }
                Ok(httparse::Status::Partial) => {
                    if rbuf.len() - pos > MAX_HEAD {
                        return;
                    }
                    break;
                }
                Err(_) => {
                    wbuf.extend_from_slice(
                        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    close = true;
                    break;
                }
            }
        }
        if pos == rbuf.len() {
            rbuf.clear();
        } else {
            rbuf.drain(..pos);
        }
        if !wbuf.is_empty() {
            let (res, b) = stream.write_all(wbuf).await;
            wbuf = b;
            wbuf.clear();
            if res.is_err() {
                return;
            }
        }
        if close {
            return;
        }
    }
}
