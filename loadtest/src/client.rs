//! One keep-alive HTTP/1.1 connection loop (runs inside a monoio runtime).
//!
//! write request → read & parse the whole response → record → repeat; on any
//! failure the error is counted and the connection is re-opened.

use crate::http1::{ParseError, ResponseParser};
use crate::stats::Stats;
use crate::workload::RequestGen;
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Time frame of a run.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// When load starts (warm-up begins).
    pub start: Instant,
    /// Responses completing from here on are measured.
    pub measure_start: Instant,
    /// No request is started at or after this instant.
    pub end: Instant,
}

impl Schedule {
    #[inline]
    fn measuring(&self, t: Instant) -> bool {
        t >= self.measure_start && t < self.end
    }
}

/// Cache-line padded counter of completed responses (for live progress).
#[repr(align(64))]
#[derive(Default, Debug)]
pub struct LiveCounter(pub AtomicU64);

impl LiveCounter {
    /// Single-writer increment (only the owning generator thread writes).
    #[inline]
    fn bump(&self) {
        self.0
            .store(self.0.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
}

/// State shared by all connections of one generator thread.
pub struct ThreadCtx {
    pub addr: SocketAddr,
    pub schedule: Schedule,
    pub stop: Arc<AtomicBool>,
    pub stats: RefCell<Stats>,
    pub live: Arc<LiveCounter>,
    /// Per-request timeout (also bounds connects).
    pub timeout: Option<Duration>,
    /// Requests currently awaiting a response on this thread.
    pub in_flight: Cell<u64>,
}

impl ThreadCtx {
    #[inline]
    fn stopping(&self, now: Instant) -> bool {
        now >= self.schedule.end || self.stop.load(Ordering::Relaxed)
    }

    fn count(&self, now: Instant, f: impl FnOnce(&mut Stats)) {
        if self.schedule.measuring(now) {
            f(&mut self.stats.borrow_mut());
        }
    }
}

enum Failure {
    Io,
    Parse,
    Timeout,
}

impl From<ParseError> for Failure {
    fn from(e: ParseError) -> Self {
        match e {
            ParseError::UnexpectedEof => Failure::Io,
            _ => Failure::Parse,
        }
    }
}

/// Runs one connection until the schedule ends or the stop flag is raised.
pub async fn run_connection(ctx: Rc<ThreadCtx>, mut gen: Box<dyn RequestGen>) {
    let mut wbuf: Vec<u8> = Vec::with_capacity(1024);
    let mut rbuf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut parser = ResponseParser::new();
    'conn: loop {
        if ctx.stopping(Instant::now()) {
            break;
        }
        let mut stream = match connect(&ctx).await {
            Ok(s) => s,
            Err(_) => {
                ctx.count(Instant::now(), |s| s.connect_errors += 1);
                monoio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        ctx.count(Instant::now(), |s| s.connects += 1);
        rbuf.clear();
        loop {
            wbuf.clear();
            let meta = gen.next_request(&mut wbuf);
            let start = Instant::now();
            if ctx.stopping(start) {
                break 'conn;
            }
            ctx.in_flight.set(ctx.in_flight.get() + 1);
            let (res, b) = stream.write_all(wbuf).await;
            wbuf = b;
            if res.is_err() {
                ctx.in_flight.set(ctx.in_flight.get() - 1);
                ctx.count(Instant::now(), |s| s.io_errors += 1);
                continue 'conn;
            }
            parser.reset(meta.head);
            let outcome = match ctx.timeout {
                None => read_response(&mut stream, &mut rbuf, &mut parser).await,
                Some(t) => {
                    match monoio::time::timeout(
                        t,
                        read_response(&mut stream, &mut rbuf, &mut parser),
                    )
                    .await
                    {
                        Ok(r) => r,
                        Err(_) => Err(Failure::Timeout),
                    }
                }
            };
            ctx.in_flight.set(ctx.in_flight.get() - 1);
            let done = Instant::now();
            match outcome {
                Ok(()) => {
                    ctx.live.bump();
                    if ctx.schedule.measuring(done) {
                        ctx.stats.borrow_mut().record(done - start, parser.status());
                    }
                    if parser.close() {
                        continue 'conn;
                    }
                }
                Err(f) => {
                    ctx.count(done, |s| match f {
                        Failure::Io => s.io_errors += 1,
                        Failure::Parse => s.parse_errors += 1,
                        Failure::Timeout => s.timeouts += 1,
                    });
                    continue 'conn;
                }
            }
        }
    }
}

async fn connect(ctx: &ThreadCtx) -> std::io::Result<TcpStream> {
    let fut = TcpStream::connect_addr(ctx.addr);
    let stream = match ctx.timeout {
        None => fut.await?,
        Some(t) => monoio::time::timeout(t, fut)
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??,
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Reads until `parser` has one whole response. Bytes past it stay in `rbuf`.
async fn read_response(
    stream: &mut TcpStream,
    rbuf: &mut Vec<u8>,
    parser: &mut ResponseParser,
) -> Result<(), Failure> {
    loop {
        if !rbuf.is_empty() {
            let (n, done) = parser.feed(rbuf)?;
            if n == rbuf.len() {
                rbuf.clear();
            } else {
                rbuf.drain(..n);
            }
            if done {
                return Ok(());
            }
        }
        if rbuf.capacity() - rbuf.len() < 4096 {
            rbuf.reserve(16 * 1024);
        }
        let (len, cap) = (rbuf.len(), rbuf.capacity());
        let buf = std::mem::take(rbuf);
        let (res, slice) = stream.read(buf.slice_mut(len..cap)).await;
        *rbuf = slice.into_inner();
        match res {
            Ok(0) => {
                parser.eof()?;
                return Ok(());
            }
            Ok(_) => {}
            Err(_) => return Err(Failure::Io),
        }
    }
}
