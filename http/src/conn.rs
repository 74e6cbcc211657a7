//! One connection's life: read heads, enforce limits, read bodies, call the service, write
//! responses; keep-alive and pipelining until either side is done.
//!
//! Buffers are owned and passed to the kernel by value (monoio's rent model). Responses to
//! pipelined requests already in the read buffer are batched into one write; pending output
//! is always flushed before we wait for more input, so a client never waits on us.

use crate::chunked::ChunkedDecoder;
use crate::error::{HttpError, HttpErrorKind};
use crate::parse::HeadReader;
use crate::request::{BodyFraming, Method, Request, RequestHead, Version};
use crate::response::{Body, Response};
use crate::service::Service;
use crate::shutdown::WorkerShutdown;
use crate::write::{chunk_in_place, status_allows_body, write_head, Framing, LAST_CHUNK};
use crate::Limits;
use futures_util::{FutureExt, StreamExt};
use monoio::buf::IoBufMut;
use monoio::io::{
    AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, CancelHandle, CancelableAsyncReadRent,
    Canceller, OwnedReadHalf, OwnedWriteHalf, Splitable,
};
use monoio::net::TcpStream;
use monoio::BufResult;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Per-worker context shared by its connections.
pub(crate) struct WorkerCtx {
    pub limits: Limits,
    pub shutdown: WorkerShutdown,
    pub gzip: bool,
    /// Idle connections that gave their buffers back, all workers ([`Limits::idle_release`]).
    pub idle_releases: Arc<AtomicU64>,
}

/// Output beyond this is written out even while pipelined requests remain.
const FLUSH_AT: usize = 256 * 1024;
const READ_CHUNK: usize = 16 * 1024;
/// After an error response we read and drop what the client still sends for this long, so
/// the kernel does not answer its unread bytes with a reset that destroys our response.
const LINGER: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 1 << 20;
/// Bytes a client may send while it is being streamed to before we stop reading from it.
const WATCH_MAX_BYTES: usize = 64 * 1024;
/// Read size while watching a streamed-to client (it normally sends nothing at all).
const WATCH_READ_BYTES: usize = 512;

enum Read {
    Data,
    Eof,
    TimedOut,
    ShuttingDown,
    Failed,
}

/// A byte stream a connection is served over: plain TCP, or TLS over TCP (`tls.rs`). The
/// connection code is generic over it, so the plain path compiles to exactly what it was.
pub(crate) trait Transport: AsyncReadRent + AsyncWriteRent + Sized + 'static {
    type Read: AsyncReadRent;
    type Write: AsyncWriteRent;
    /// Halves that can read and write concurrently (an SSE stream watches the read side).
    fn into_halves(self) -> (Self::Read, Self::Write);
    fn from_halves(rd: Self::Read, wr: Self::Write) -> Self;

    /// Whether an idle connection over this transport may give its buffers back
    /// ([`Limits::idle_release`]): it needs [`Transport::read_cancelable`] to hand back the
    /// bytes of a read that completed as it was cancelled, and [`Transport::readable`] to
    /// wait without a buffer. TLS keeps its buffers (rustls holds its own anyway).
    const RELEASES_IDLE: bool = false;

    /// A read that `cancel` can stop without losing what it already read (only called when
    /// [`Transport::RELEASES_IDLE`]).
    fn read_cancelable<B: IoBufMut>(
        &mut self,
        buf: B,
        cancel: CancelHandle,
    ) -> impl Future<Output = BufResult<usize, B>> {
        let _ = cancel;
        self.read(buf)
    }

    /// Completes once input (or the peer's close) is waiting; it may also complete early
    /// (only called when [`Transport::RELEASES_IDLE`]).
    fn readable(&self) -> impl Future<Output = std::io::Result<()>> {
        std::future::ready(Ok(()))
    }
}

impl Transport for TcpStream {
    type Read = OwnedReadHalf<TcpStream>;
    type Write = OwnedWriteHalf<TcpStream>;

    fn into_halves(self) -> (Self::Read, Self::Write) {
        self.into_split()
    }

    fn from_halves(rd: Self::Read, wr: Self::Write) -> Self {
        rd.reunite(wr)
            .unwrap_or_else(|_| unreachable!("both halves come from this stream"))
    }

    const RELEASES_IDLE: bool = true;

    fn read_cancelable<B: IoBufMut>(
        &mut self,
        buf: B,
        cancel: CancelHandle,
    ) -> impl Future<Output = BufResult<usize, B>> {
        self.cancelable_read(buf, cancel)
    }

    fn readable(&self) -> impl Future<Output = std::io::Result<()>> {
        // not relaxed: on epoll a stale readiness is checked with poll(2) (this wait is rare:
        // once per idle period), so a wake-up means input or a close is really waiting
        TcpStream::readable(self, false)
    }
}

struct Conn<T: Transport> {
    stream: T,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    /// Cancels the read of a connection gone idle ([`Conn::read_idle`]); made on the first
    /// idle wait and kept (its op set keeps its table between requests).
    canceller: Option<Canceller>,
}

impl<T: Transport> Conn<T> {
    /// Reads more bytes into `rbuf`. With `shutdown`, also returns when the server starts
    /// shutting down (used only between requests, when nothing is in flight).
    async fn read_more(&mut self, within: Duration, shutdown: Option<&WorkerShutdown>) -> Read {
        if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 2 {
            self.rbuf.reserve(READ_CHUNK.max(self.rbuf.len()));
        }
        // read into the spare capacity, after the bytes already buffered
        let buf = std::mem::take(&mut self.rbuf);
        let (filled, capacity) = (buf.len(), buf.capacity());
        let read = monoio::time::timeout(within, self.stream.read(buf.slice_mut(filled..capacity)));
        let result = match shutdown {
            Some(sd) => {
                monoio::select! {
                    r = read => r,
                    _ = sd.wait() => return Read::ShuttingDown,
                }
            }
            None => read.await,
        };
        match result {
            Err(_) => Read::TimedOut,
            Ok((res, buf)) => {
                self.rbuf = buf.into_inner();
                match res {
                    Ok(0) => Read::Eof,
                    Ok(_) => Read::Data,
                    Err(_) => Read::Failed,
                }
            }
        }
    }

    /// [`Conn::read_more`] for a keep-alive connection waiting for its next request with
    /// nothing buffered, on a transport that [releases idle buffers](Transport::RELEASES_IDLE).
    /// The read runs with its buffer for `release_after`; if nothing came by then it is
    /// cancelled (bytes it read meanwhile are kept, never lost), both buffers are freed, and
    /// the connection waits for input holding none until `within` is up. Input then starts a
    /// request: the read that takes it gets the head's read timeout. The first wait of each
    /// request costs the same timer as before; the cancel handle adds one hash-set insert and
    /// remove.
    async fn read_idle(
        &mut self,
        within: Duration,
        release_after: Duration,
        ctx: &WorkerCtx,
    ) -> Read {
        let shutdown = &ctx.shutdown;
        if self.rbuf.capacity() < READ_CHUNK / 2 {
            self.rbuf.reserve(READ_CHUNK);
        }
        let cancel = self.canceller.get_or_insert_with(Canceller::new).handle();
        let buf = std::mem::take(&mut self.rbuf);
        let capacity = buf.capacity();
        let (cancelled, (res, buf)) = {
            let mut read = std::pin::pin!(self
                .stream
                .read_cancelable(buf.slice_mut(0..capacity), cancel));
            let finished = monoio::select! {
                // a read that completed wins over the release timer that fired with it
                biased;
                r = &mut read => Some(r),
                _ = monoio::time::sleep(release_after) => None,
                _ = shutdown.wait() => return Read::ShuttingDown,
            };
            match finished {
                Some(done) => (false, done),
                None => {
                    if let Some(canceller) = self.canceller.take() {
                        self.canceller = Some(canceller.cancel());
                    }
                    // the cancelled read still answers: with ECANCELED, or with the bytes
                    // that arrived before the cancel took effect
                    (true, read.await)
                }
            }
        };
        self.rbuf = buf.into_inner();
        match res {
            Ok(0) => return Read::Eof,
            Ok(_) => return Read::Data,
            // nothing was read: a broken socket shows up again in the next read
            Err(_) if cancelled => {}
            Err(_) => return Read::Failed,
        }
        // boxed: the rest is rare (once per idle period), and inline it made this future,
        // which every keep-alive request waits in, ~1 KiB bigger to move
        Box::pin(self.read_released(within.saturating_sub(release_after), ctx)).await
    }

    /// The rest of [`Conn::read_idle`] once the buffers are given back: waits up to `left`
    /// for input holding none, then reads it as a request's first bytes.
    async fn read_released(&mut self, left: Duration, ctx: &WorkerCtx) -> Read {
        let shutdown = &ctx.shutdown;
        self.rbuf = Vec::new();
        self.wbuf = Vec::new();
        ctx.idle_releases.fetch_add(1, Ordering::Relaxed);
        let ready = monoio::select! {
            r = monoio::time::timeout(left, self.stream.readable()) => r,
            _ = shutdown.wait() => return Read::ShuttingDown,
        };
        match ready {
            Err(_) => return Read::TimedOut,
            Ok(Err(_)) => return Read::Failed,
            Ok(Ok(())) => {}
        }
        self.wbuf.reserve(READ_CHUNK);
        self.read_more(ctx.limits.header_read_timeout, Some(shutdown))
            .await
    }

    async fn flush(&mut self) -> bool {
        if self.wbuf.is_empty() {
            return true;
        }
        let buf = std::mem::take(&mut self.wbuf);
        let (res, mut buf) = self.stream.write_all(buf).await;
        buf.clear();
        self.wbuf = buf;
        res.is_ok()
    }

    async fn write_now(&mut self, bytes: Vec<u8>) -> bool {
        self.stream.write_all(bytes).await.0.is_ok()
    }

    /// Sends an error response and closes, lingering so the response survives.
    async fn fail<S: Service>(mut self, svc: &S, version: Version, err: &HttpError) {
        let resp = svc.error_response(err);
        if let Body::Bytes(body) = &resp.body {
            let framing = Framing::Length(body.len() as u64);
            write_head(&mut self.wbuf, version, &resp, framing, false);
            self.wbuf.extend_from_slice(body);
        } else {
            write_head(&mut self.wbuf, version, &resp, Framing::Length(0), false);
        }
        if self.flush().await {
            self.linger().await;
        }
    }

    async fn linger(mut self) {
        let _ = self.stream.shutdown().await;
        let started = Instant::now();
        let mut drained = 0;
        while drained < LINGER_BYTES {
            let Some(left) = LINGER.checked_sub(started.elapsed()) else {
                break;
            };
            self.rbuf.clear();
            match self.read_more(left, None).await {
                Read::Data => drained += self.rbuf.len(),
                _ => break,
            }
        }
    }
}

/// Why a connection stops: quietly (the peer left, a timeout, shutdown), or with an error
/// response first (a malformed head, a body over the limit).
enum Stop {
    Close,
    Fail(Version, HttpError),
}

impl<T: Transport> Conn<T> {
    /// Reads until a whole request head is buffered and takes it out of `rbuf`. Pending output
    /// is flushed before every wait, so pipelined answers never sit in `wbuf`.
    async fn read_head(&mut self, ctx: &WorkerCtx) -> Result<RequestHead, Stop> {
        let limits = &ctx.limits;
        let mut head_started = (!self.rbuf.is_empty()).then(Instant::now);
        let mut reader = HeadReader::new();
        loop {
            match reader.poll(&mut self.rbuf, limits) {
                Ok(Some((head, head_len))) => {
                    self.rbuf.drain(..head_len);
                    return Ok(head);
                }
                Ok(None) => {}
                Err(err) => return Err(Stop::Fail(Version::Http11, err)),
            }
            if !self.flush().await {
                return Err(Stop::Close);
            }
            let (within, shutdown) = match head_started {
                None => {
                    if ctx.shutdown.is_triggered() {
                        return Err(Stop::Close);
                    }
                    (limits.idle_timeout, Some(&ctx.shutdown))
                }
                Some(t) => match limits.header_read_timeout.checked_sub(t.elapsed()) {
                    Some(left) => (left, None),
                    None => return Err(Stop::Close),
                },
            };
            let read = match (head_started, limits.idle_release) {
                (None, Some(after))
                    if T::RELEASES_IDLE && self.rbuf.is_empty() && after < within =>
                {
                    self.read_idle(within, after, ctx).await
                }
                _ => self.read_more(within, shutdown).await,
            };
            match read {
                // the header timeout runs from the first byte, empty lines before the request
                // line included (they are dropped, but do not restart the clock)
                Read::Data => {
                    head_started.get_or_insert_with(Instant::now);
                }
                _ => return Err(Stop::Close),
            }
        }
    }

    /// Reads the body `head` announces, at most `limit` bytes (the route's), within the body
    /// read timeout; answers `Expect: 100-continue` first when nothing of the body is here yet.
    async fn read_body(
        &mut self,
        head: &RequestHead,
        limit: usize,
        limits: &Limits,
    ) -> Result<Vec<u8>, Stop> {
        let version = head.version;
        if let BodyFraming::Length(n) = head.framing {
            if n > limit as u64 {
                let err = HttpError::new(HttpErrorKind::BodyTooLarge, "body over the limit");
                return Err(Stop::Fail(version, err));
            }
        }
        if head.expect_continue && head.framing != BodyFraming::None && self.rbuf.is_empty() {
            self.wbuf
                .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            if !self.flush().await {
                return Err(Stop::Close);
            }
        }
        // a bodiless request (every GET) asks the clock nothing
        let deadline = || Instant::now() + limits.body_read_timeout;
        match head.framing {
            BodyFraming::None => Ok(Vec::new()),
            BodyFraming::Length(n) => {
                let deadline = deadline();
                let n = n as usize;
                while self.rbuf.len() < n {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let want = (n - self.rbuf.len()).min(1 << 20);
                    self.rbuf.reserve(want);
                    match self.read_more(left, None).await {
                        Read::Data => {}
                        _ => return Err(Stop::Close),
                    }
                }
                let rest = self.rbuf.split_off(n);
                Ok(std::mem::replace(&mut self.rbuf, rest))
            }
            BodyFraming::Chunked => {
                let deadline = deadline();
                let mut decoder = ChunkedDecoder::new(limit as u64);
                let mut body = Vec::new();
                loop {
                    match decoder.decode(&self.rbuf, &mut body) {
                        Ok(used) => {
                            self.rbuf.drain(..used);
                        }
                        Err(err) => return Err(Stop::Fail(version, err)),
                    }
                    if decoder.is_done() {
                        return Ok(body);
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    match self.read_more(left, None).await {
                        Read::Data => {}
                        _ => return Err(Stop::Close),
                    }
                }
            }
        }
    }

    /// Writes one response: small bodies join `wbuf` (pipelined answers go out in one write),
    /// streams are pumped until they end (in boxed futures: inline, the pumps made this
    /// future, moved once per request, ~2.5 KiB). Returns the connection if it may serve another
    /// request, `None` once it is closed or broken.
    async fn respond(
        mut self,
        mut resp: Response,
        exchange: Exchange,
        ctx: &WorkerCtx,
    ) -> Option<Self> {
        let Exchange {
            version,
            is_head,
            mut keep_alive,
        } = exchange;
        let stall = ctx.limits.write_stall_timeout;
        let body = std::mem::replace(&mut resp.body, Body::Empty);
        let allows_body = status_allows_body(resp.status);
        match body {
            Body::Empty | Body::Bytes(_) if !allows_body => {
                write_head(&mut self.wbuf, version, &resp, Framing::NoBody, keep_alive);
            }
            Body::Empty => {
                write_head(
                    &mut self.wbuf,
                    version,
                    &resp,
                    Framing::Length(0),
                    keep_alive,
                );
            }
            Body::Bytes(bytes) => {
                let framing = Framing::Length(bytes.len() as u64);
                write_head(&mut self.wbuf, version, &resp, framing, keep_alive);
                if !is_head {
                    if self.wbuf.len() + bytes.len() > FLUSH_AT {
                        if !self.flush().await || !self.write_now(bytes).await {
                            return None;
                        }
                    } else {
                        self.wbuf.extend_from_slice(&bytes);
                    }
                }
            }
            Body::SizedStream(stream, len) => {
                let framing = if allows_body {
                    Framing::Length(len)
                } else {
                    Framing::NoBody
                };
                write_head(&mut self.wbuf, version, &resp, framing, keep_alive);
                if !self.flush().await {
                    return None;
                }
                if !is_head && allows_body {
                    let never = std::pin::pin!(std::future::pending());
                    let sent = Box::pin(pump(
                        &mut self.stream,
                        stream,
                        false,
                        &ctx.shutdown,
                        stall,
                        never,
                    ))
                    .await;
                    if sent != Some(len) {
                        // the producer broke its promise: the framing is now wrong, so close
                        return None;
                    }
                }
            }
            Body::Stream(stream) => {
                let chunked = version == Version::Http11;
                if !is_head && allows_body && !chunked {
                    keep_alive = false;
                }
                let framing = match (is_head || !allows_body, chunked) {
                    (true, _) => Framing::NoBody,
                    (false, true) => Framing::Chunked,
                    (false, false) => Framing::UntilClose,
                };
                write_head(&mut self.wbuf, version, &resp, framing, keep_alive);
                if !self.flush().await {
                    return None;
                }
                if framing != Framing::NoBody {
                    let (back, sent) =
                        Box::pin(pump_watched(self, stream, chunked, &ctx.shutdown, stall)).await;
                    self = back;
                    // the client went away or stopped reading
                    sent?;
                    if chunked && !self.write_now(LAST_CHUNK.to_vec()).await {
                        return None;
                    }
                }
            }
        }
        if self.wbuf.len() >= FLUSH_AT && !self.flush().await {
            return None;
        }
        if !keep_alive {
            if self.flush().await {
                let _ = self.stream.shutdown().await;
            }
            return None;
        }
        Some(self)
    }

    /// Ends the connection as `stop` says.
    async fn stop<S: Service>(self, svc: &S, stop: Stop) {
        if let Stop::Fail(version, err) = stop {
            self.fail(svc, version, &err).await;
        }
    }
}

/// What the response writer needs to know of the request it answers.
struct Exchange {
    version: Version,
    is_head: bool,
    keep_alive: bool,
}

/// Runs the handler; a panic becomes the service's error response instead of a dropped
/// connection, and the answer is gzipped when the client asked and the server allows it.
async fn handle<S: Service>(
    svc: &S,
    route: S::Route,
    req: Request,
    accept_encoding: Option<String>,
) -> Response {
    // Polled in place under `catch_unwind`: wrapping the call's future (~2 KiB for the
    // engine's) in `AssertUnwindSafe` and `CatchUnwind` moved it twice more per request
    // (~450 instructions of memcpy)
    let call = std::pin::pin!(svc.call(route, req));
    let mut call = Some(call);
    let caught = std::future::poll_fn(|cx| {
        let Some(fut) = call.as_mut() else {
            return std::task::Poll::Ready(Err(()));
        };
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(resp)) => std::task::Poll::Ready(Ok(resp)),
            Err(_) => {
                // a future that panicked is never polled again
                call = None;
                std::task::Poll::Ready(Err(()))
            }
        }
    })
    .await;
    let mut resp = match caught {
        Ok(resp) => resp,
        Err(_) => {
            let err = HttpError::new(HttpErrorKind::HandlerPanic, "handler panicked");
            svc.error_response(&err)
        }
    };
    if let Some(ae) = accept_encoding.as_deref() {
        crate::gzip::maybe_compress(ae, &mut resp);
    }
    resp
}

/// Serves one connection: head, body, handler, response, again while the connection is kept
/// alive.
pub(crate) async fn serve<S: Service, T: Transport>(
    stream: T,
    peer: SocketAddr,
    svc: Rc<S>,
    ctx: Rc<WorkerCtx>,
) {
    let mut conn = Conn {
        stream,
        rbuf: Vec::with_capacity(READ_CHUNK),
        wbuf: Vec::with_capacity(READ_CHUNK),
        canceller: None,
    };
    loop {
        let head = match conn.read_head(&ctx).await {
            Ok(head) => head,
            Err(stop) => return conn.stop(&*svc, stop).await,
        };
        // the route is resolved once, here: it decides the body limit and goes to the handler
        let (route, limit) = svc.route(&head);
        let body = match conn.read_body(&head, limit, &ctx.limits).await {
            Ok(body) => body,
            Err(stop) => return conn.stop(&*svc, stop).await,
        };
        let accept_encoding = if ctx.gzip {
            head.headers.get("accept-encoding").map(str::to_string)
        } else {
            None
        };
        let mut exchange = Exchange {
            version: head.version,
            is_head: head.method == Method::Head,
            keep_alive: head.keep_alive,
        };
        let req = Request {
            head,
            body,
            peer,
            params: Vec::new(),
        };
        let resp = handle(&*svc, route, req, accept_encoding).await;
        exchange.keep_alive &= !ctx.shutdown.is_triggered();
        conn = match conn.respond(resp, exchange, &ctx).await {
            Some(conn) => conn,
            None => return,
        };
    }
}

/// Writes a streamed body chunk by chunk, each write finished before the next chunk is
/// pulled. Stops early when the server shuts down or `peer_gone` completes. Returns the bytes
/// written, or `None` when the client went away or stopped reading for `stall`.
async fn pump<W: AsyncWriteRent>(
    out: &mut W,
    mut stream: crate::BodyStream,
    chunked: bool,
    shutdown: &WorkerShutdown,
    stall: Duration,
    mut peer_gone: Pin<&mut impl Future<Output = ()>>,
) -> Option<u64> {
    let mut sent = 0u64;
    // one shutdown listener for the stream's whole life, not one per chunk
    let wait = std::pin::pin!(shutdown.wait());
    let mut stopping = Switch {
        shutdown,
        wait,
        armed: false,
    };
    // and one stall timer for all writes: a timer per write was put into the timer wheel and
    // taken out again for every chunk (an SSE fan-out writes one chunk per client per event);
    // it is polled only when it may have fired (`Deadline`)
    let mut stalled = crate::Deadline::new(monoio::time::Instant::now() + stall);
    loop {
        let next = monoio::select! {
            // a ready chunk is written before the peer is looked at: the watch, once armed,
            // stays armed across chunks (one read in flight for the stream's whole life)
            biased;
            chunk = stream.next() => chunk,
            _ = &mut peer_gone => return None,
            _ = &mut stopping => None,
        };
        let Some(chunk) = next else {
            return Some(sent);
        };
        if chunk.is_empty() {
            continue;
        }
        sent += chunk.len() as u64;
        let framed = if chunked {
            chunk_in_place(chunk)
        } else {
            chunk
        };
        let started = monoio::time::Instant::now();
        let mut write = std::pin::pin!(out.write_all(framed));
        let written = loop {
            let fired = std::future::poll_fn(|cx| stalled.poll_fired(cx));
            monoio::select! {
                biased;
                (res, _) = &mut write => break res.is_ok(),
                _ = fired => {
                    // the timer was set for an earlier write: this one's deadline is later.
                    // Moved only when it fires (resetting it before each write cost ~130
                    // instructions per SSE delivery)
                    let due = started + stall;
                    if due <= monoio::time::Instant::now() {
                        break false;
                    }
                    stalled.reset(due);
                }
            }
        };
        if !written {
            return None;
        }
    }
}

/// [`WorkerShutdown::wait`] for a loop that polls it on every turn: once its wait is filed, a
/// poll only reads the switch. Polling the wait again filed a clone of the waker each time
/// (and, when waits listened to the shared event, took its lock: ~150 instructions per SSE
/// delivery, one `pump` turn per chunk). The wait keeps the
/// waker of its first poll: `pump` runs inside its connection's task for its whole life, so
/// that is the waker of every later poll too (`Waker::will_wake` could not tell: monoio's
/// wakers compared unequal to their own clones).
struct Switch<'a, F> {
    shutdown: &'a WorkerShutdown,
    wait: Pin<&'a mut F>,
    /// The listener was polled and waits.
    armed: bool,
}

impl<F: Future<Output = ()>> Future for Switch<'_, F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        // `trigger` sets the flag before it wakes the listeners
        if self.shutdown.is_triggered() {
            return std::task::Poll::Ready(());
        }
        if self.armed {
            return std::task::Poll::Pending;
        }
        let this = &mut *self;
        let polled = this.wait.as_mut().poll(cx);
        this.armed = polled.is_pending();
        polled
    }
}

/// [`pump`] for an endless stream (SSE) that also watches the read side: a client that
/// closes its end is noticed at once, not at the next write (which for an idle subscriber
/// may be minutes away), so the stream and everything it holds is dropped promptly. Bytes
/// the client sends meanwhile are kept for the next request on the connection.
async fn pump_watched<T: Transport>(
    mut conn: Conn<T>,
    stream: crate::BodyStream,
    chunked: bool,
    shutdown: &WorkerShutdown,
    stall: Duration,
) -> (Conn<T>, Option<u64>) {
    // a stream may idle for many minutes, so it keeps no request-sized buffers meanwhile (the
    // write buffer was flushed before the stream; the next request grows both again)
    conn.wbuf = Vec::new();
    if conn.rbuf.is_empty() {
        conn.rbuf = Vec::new();
    }
    let spare = Vec::with_capacity(WATCH_READ_BYTES);
    let (mut rd, mut wr) = conn.stream.into_halves();
    let mut received = Vec::new();
    let sent = {
        let mut watch = std::pin::pin!(until_peer_closes(&mut rd, spare, &mut received));
        let sent = pump(&mut wr, stream, chunked, shutdown, stall, watch.as_mut()).await;
        // a read that completed but was not yet polled holds client bytes: take them
        if sent.is_some() {
            let _ = watch.as_mut().now_or_never();
        }
        sent
    };
    conn.stream = T::from_halves(rd, wr);
    conn.rbuf.extend_from_slice(&received);
    (conn, sent)
}

/// Completes when the peer closes its side or the connection fails. Data read meanwhile is
/// appended to `received` (up to a limit, then the watch stops reading).
async fn until_peer_closes<R: AsyncReadRent>(
    rd: &mut R,
    mut spare: Vec<u8>,
    received: &mut Vec<u8>,
) {
    loop {
        if received.len() >= WATCH_MAX_BYTES {
            return std::future::pending().await;
        }
        spare.clear();
        let (res, buf) = rd.read(spare).await;
        spare = buf;
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => received.extend_from_slice(&spare),
        }
    }
}
