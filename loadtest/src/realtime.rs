//! Realtime fan-out: N SSE clients subscribed to `posts/*`, a publisher
//! creating posts one at a time, latency from just before each create is sent
//! to its event arriving at each client.
//!
//! Each client opens `GET /api/realtime`, takes its `clientId` from the
//! `PB_CONNECT` event, subscribes over a second short-lived connection
//! (`POST /api/realtime`), then scans its stream for the ids of the published
//! records (`rt` + 13 digits; the raw bytes are scanned, so chunked framing
//! needs no decoding).
//!
//! Besides latency, a run reports the server's resident memory with no clients
//! and with all of them subscribed (VmRSS from /proc), for the cost per client.
//! Each client holds one socket and the server one per client, so the open-file
//! limit is raised to its hard limit ([`raise_nofile_limit`]; call it before the
//! servers are spawned so they inherit it).

use crate::affinity;
use crate::api::Api;
use crate::http1::ResponseParser;
use crate::stats::{Stats, Summary};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Prefix of published record ids: `rt` + 13 digits = 15 chars.
const ID_PREFIX: &[u8] = b"\"id\":\"rt";
const ID_DIGITS: usize = 13;

/// Fan-out parameters.
#[derive(Clone, Debug)]
pub struct FanoutConfig {
    /// Where the records are created (and, when `sse_addrs` is empty, where clients connect).
    pub addr: SocketAddr,
    /// Nodes the SSE clients connect and subscribe to, client `i` to `sse_addrs[i % len]`
    /// (`loadtest cluster`: the replicas, while creates go to the primary). Empty = `addr`.
    pub sse_addrs: Vec<SocketAddr>,
    pub clients: usize,
    /// Records created (events published), one at a time.
    pub events: usize,
    /// Pause between creates.
    pub interval: Duration,
    pub threads: usize,
    pub gen_cpus: Option<Vec<usize>>,
    pub uring: crate::rt::UringMode,
    /// Most time allowed for all clients to connect and subscribe.
    pub setup_timeout: Duration,
    /// First id number (so several runs on one server never collide).
    pub first_seq: u64,
    /// The server's pid, for its memory before and after the clients connect.
    pub server_pid: Option<u32>,
    /// Pause between two clients' connects on one generator thread. 200 µs suits 10k
    /// clients; 20k that fast overflowed the servers' accept queues (a connection the
    /// kernel completed but the server never accepted waits out the setup timeout).
    pub stagger: Duration,
}

/// What a fan-out run measured.
pub struct FanoutResult {
    /// Latency of every delivery (status 200 = delivered); timeouts = missed deliveries.
    pub summary: Summary,
    /// Clients that connected and subscribed.
    pub subscribed: usize,
    pub expected: u64,
    pub delivered: u64,
    /// Server RSS (KiB) before the clients connected.
    pub rss_before_kib: Option<u64>,
    /// Server RSS (KiB) with every client connected and subscribed.
    pub rss_subscribed_kib: Option<u64>,
    /// Server CPU time (utime + stime of all its threads, clock ticks) from the first create
    /// until every delivery arrived (or the wait for them ended): the creates and the fan-out.
    pub server_cpu_ticks: Option<u64>,
    /// This process's CPU time (clock ticks) over the same window: the SSE clients reading
    /// their deliveries, and the publisher. Near one core, the generator would be part of
    /// the latency it reports.
    pub generator_cpu_ticks: Option<u64>,
}

impl FanoutResult {
    /// Server memory per subscribed client, KiB (RSS growth over the clients).
    pub fn rss_per_client_kib(&self) -> Option<f64> {
        let (a, b) = (self.rss_before_kib?, self.rss_subscribed_kib?);
        (self.subscribed > 0).then(|| b.saturating_sub(a) as f64 / self.subscribed as f64)
    }

    /// CPU time per delivery, µs, of the server and of the generator (over the publish
    /// window: the creates and the fan-out).
    pub fn cpu_us_per_delivery(&self) -> (Option<f64>, Option<f64>) {
        // SAFETY: sysconf has no preconditions.
        let hz = (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).max(1) as f64;
        let per = |t: Option<u64>| {
            t.filter(|_| self.delivered > 0)
                .map(|t| t as f64 / hz * 1e6 / self.delivered as f64)
        };
        (per(self.server_cpu_ticks), per(self.generator_cpu_ticks))
    }
}

/// Raises this process's soft open-file limit to the hard limit (children
/// spawned afterwards inherit it). Returns the new soft limit.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}

fn rss_kib(pid: Option<u32>) -> Option<u64> {
    crate::server::proc_status_kib(pid?, "VmRSS")
}

struct Shared {
    /// Finds [`ID_PREFIX`] in a client's stream. A byte-by-byte window compare was ~20
    /// instructions per byte received, ~6k per delivery (300-byte events) on the generator's
    /// one core.
    ids: memchr::memmem::Finder<'static>,
    /// Where the SSE clients connect, in turn.
    sse_addrs: Vec<SocketAddr>,
    base: Instant,
    /// Send time of event `seq - first_seq` (ns since `base`; 0 = not sent yet).
    sent: Vec<AtomicU64>,
    first_seq: u64,
    subscribed: AtomicUsize,
    setup_failed: AtomicUsize,
    delivered: AtomicU64,
    done: AtomicBool,
    stop: Arc<AtomicBool>,
}

/// Runs one fan-out measurement against the server at `cfg.addr`.
pub fn run_fanout(cfg: &FanoutConfig, stop: Arc<AtomicBool>) -> crate::Result<FanoutResult> {
    let limit = raise_nofile_limit()?;
    if (limit as usize) < cfg.clients + 256 {
        return Err(format!(
            "{} clients need more open files than the limit allows ({limit}); raise `ulimit -Hn`",
            cfg.clients
        )
        .into());
    }
    let rss_before_kib = rss_kib(cfg.server_pid);
    let sse_addrs = if cfg.sse_addrs.is_empty() {
        vec![cfg.addr]
    } else {
        cfg.sse_addrs.clone()
    };
    let shared = Arc::new(Shared {
        ids: memchr::memmem::Finder::new(ID_PREFIX),
        sse_addrs,
        base: Instant::now(),
        sent: (0..cfg.events).map(|_| AtomicU64::new(0)).collect(),
        first_seq: cfg.first_seq,
        subscribed: AtomicUsize::new(0),
        setup_failed: AtomicUsize::new(0),
        delivered: AtomicU64::new(0),
        done: AtomicBool::new(false),
        stop,
    });
    let threads = cfg.threads.clamp(1, cfg.clients.max(1));
    let mut handles = Vec::new();
    for t in 0..threads {
        let n = (t..cfg.clients).step_by(threads).count();
        let cpu = cfg.gen_cpus.as_ref().map(|c| c[t % c.len()]);
        let (shared, uring, stagger) = (shared.clone(), cfg.uring, cfg.stagger);
        handles.push(std::thread::Builder::new().name(format!("sse-{t}")).spawn(
            move || -> crate::Result<Stats> {
                if let Some(c) = cpu {
                    affinity::pin_current_thread(&[c])?;
                }
                let (mut rt, driver) = crate::rt::build(uring, 4096)?;
                // epoll needs non-blocking sockets
                let legacy = driver == "epoll";
                let stats = Rc::new(RefCell::new(Stats::new()));
                let streams: Rc<RefCell<Vec<RawFd>>> = Rc::default();
                rt.block_on(async {
                    let mut tasks = Vec::with_capacity(n);
                    for i in 0..n {
                        let (shared, stats, streams) =
                            (shared.clone(), stats.clone(), streams.clone());
                        // client number t + i·threads, over the nodes in turn
                        let addr = shared.sse_addrs[(t + i * threads) % shared.sse_addrs.len()];
                        tasks.push(monoio::spawn(async move {
                            // Stagger connects so the listen backlog never overflows.
                            monoio::time::sleep(stagger * i as u32).await;
                            client(shared, stats, streams, legacy, addr).await
                        }));
                    }
                    // The clients block in reads without a timeout (10k re-armed
                    // reads a tick would load the generator).
                    while !shared.done.load(Ordering::Relaxed)
                        && !shared.stop.load(Ordering::Relaxed)
                    {
                        monoio::time::sleep(Duration::from_millis(20)).await;
                    }
                    // Dropping the runtime does not end a task parked on a read, so its
                    // socket would stay open for the life of the process (a second run
                    // in the same process then ran out of files): shut every stream
                    // down, so each read ends and each task drops its socket.
                    for &fd in streams.borrow().iter() {
                        // SAFETY: shutdown(2) on a socket the task still owns (it is
                        // closed only when the task ends, after this).
                        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
                    }
                    let all = async {
                        for t in tasks {
                            t.await;
                        }
                    };
                    let _ = monoio::time::timeout(Duration::from_secs(10), all).await;
                    // A dropped socket's close is an io_uring request: let the runtime
                    // submit those before it is dropped.
                    monoio::time::sleep(Duration::from_millis(50)).await;
                });
                let s = stats.borrow().clone();
                drop(rt);
                Ok(s)
            },
        )?);
    }
    // Wait for every client to subscribe (or fail, or time out).
    let t0 = Instant::now();
    loop {
        let ok = shared.subscribed.load(Ordering::Relaxed);
        let failed = shared.setup_failed.load(Ordering::Relaxed);
        if ok + failed >= cfg.clients
            || t0.elapsed() > cfg.setup_timeout
            || shared.stop.load(Ordering::Relaxed)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let subscribed = shared.subscribed.load(Ordering::Relaxed);
    // Let the server settle (the last subscriptions' buffers, a lazily grown table).
    std::thread::sleep(Duration::from_millis(500));
    let rss_subscribed_kib = rss_kib(cfg.server_pid);
    // Publish.
    let mut api = Api::new(cfg.addr)?;
    let cpu_before = cfg.server_pid.and_then(crate::util::process_cpu_ticks);
    let gen_before = crate::util::process_cpu_ticks(std::process::id());
    let publish_start = Instant::now();
    let mut publish_err = None;
    for k in 0..cfg.events {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let id = format!("rt{:013}", cfg.first_seq + k as u64);
        let body =
            serde_json::json!({"id": id, "title": "realtime", "views": k, "published": true});
        let now = shared.base.elapsed().as_nanos() as u64;
        shared.sent[k].store(now.max(1), Ordering::Release);
        match api.call(
            "POST",
            "/api/collections/posts/records",
            Some(""),
            Some(&body),
        ) {
            Ok(r) if r.ok() => {}
            Ok(r) => {
                publish_err = Some(format!("create {id}: {}", r.brief(200)));
                break;
            }
            Err(e) => {
                publish_err = Some(format!("create {id}: {e}"));
                break;
            }
        }
        std::thread::sleep(cfg.interval);
    }
    let expected = (subscribed * cfg.events) as u64;
    let deadline = Instant::now() + Duration::from_secs(10);
    while shared.delivered.load(Ordering::Relaxed) < expected
        && Instant::now() < deadline
        && !shared.stop.load(Ordering::Relaxed)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let window = publish_start.elapsed();
    let server_cpu_ticks = cfg
        .server_pid
        .and_then(crate::util::process_cpu_ticks)
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let generator_cpu_ticks = crate::util::process_cpu_ticks(std::process::id())
        .zip(gen_before)
        .map(|(after, before)| after.saturating_sub(before));
    shared.done.store(true, Ordering::Relaxed);
    let mut stats = Stats::new();
    for h in handles {
        stats.merge(&h.join().map_err(|_| "sse thread panicked")??);
    }
    if let Some(e) = publish_err {
        return Err(e.into());
    }
    let delivered = shared.delivered.load(Ordering::Relaxed);
    stats.timeouts += expected.saturating_sub(delivered);
    stats.connect_errors += shared.setup_failed.load(Ordering::Relaxed) as u64;
    Ok(FanoutResult {
        summary: stats.summary(window),
        subscribed,
        expected,
        delivered,
        rss_before_kib,
        rss_subscribed_kib,
        server_cpu_ticks,
        generator_cpu_ticks,
    })
}

/// Reads into `buf`'s spare capacity; `Ok(0)` = closed.
async fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(16 * 1024);
    }
    let (len, cap) = (buf.len(), buf.capacity());
    let b = std::mem::take(buf);
    let (res, slice) = s.read(b.slice_mut(len..cap)).await;
    *buf = slice.into_inner();
    res
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// Source addresses used in turn for connections to 127.0.0.1 (127.0.0.2–17).
const SOURCES: usize = 16;
static NEXT_SOURCE: AtomicUsize = AtomicUsize::new(0);

/// Connects to `addr`; to 127.0.0.1 from 127.0.0.`2 + k`. Each source address has its own
/// ephemeral ports: from one, 20,000 streams plus their subscribe connections (whose closed
/// pairs stay in TIME_WAIT for a minute) ran out of the ~28k ports and connects failed. Both
/// connections of one client use the same `k`: PocketBase and PocketBun answer 400 to a
/// subscription sent from another address than the stream's. A blocking connect: on
/// loopback the kernel completes it at once.
fn connect_spread(addr: SocketAddr, legacy: bool, k: usize) -> std::io::Result<TcpStream> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    if addr.ip() == std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST) {
        let src = std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(127, 0, 0, 2 + k as u8), 0);
        s.bind(&src.into())?;
    }
    s.connect(&addr.into())?;
    s.set_nodelay(true)?;
    s.set_nonblocking(legacy)?;
    TcpStream::from_std(s.into())
}

async fn setup(host: SocketAddr, legacy: bool) -> Result<TcpStream, ()> {
    let k = NEXT_SOURCE.fetch_add(1, Ordering::Relaxed) % SOURCES;
    let mut s = connect_spread(host, legacy, k).map_err(drop)?;
    let _ = s.set_nodelay(true);
    let req = format!(
        "GET /api/realtime HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\nUser-Agent: pocketbun-loadtest\r\n\r\n"
    );
    let (r, _) = s.write_all(req.into_bytes()).await;
    r.map_err(drop)?;
    let mut buf = Vec::with_capacity(4096);
    let marker = b"\"clientId\":\"";
    let client_id = loop {
        if let Some(i) = find(&buf, marker) {
            let rest = &buf[i + marker.len()..];
            if let Some(j) = rest.iter().position(|&b| b == b'"') {
                break String::from_utf8_lossy(&rest[..j]).into_owned();
            }
        }
        if buf.len() > 64 * 1024 || read_more(&mut s, &mut buf).await.map_err(drop)? == 0 {
            return Err(());
        }
    };
    // Subscribe over a second connection.
    let body = format!("{{\"clientId\":\"{client_id}\",\"subscriptions\":[\"posts/*\"]}}");
    let req = format!(
        "POST /api/realtime HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut c = connect_spread(host, legacy, k).map_err(drop)?;
    let (r, _) = c.write_all(req.into_bytes()).await;
    r.map_err(drop)?;
    let mut parser = ResponseParser::new();
    parser.reset(false);
    let mut rb = Vec::with_capacity(1024);
    loop {
        if !rb.is_empty() {
            let (n, done) = parser.feed(&rb).map_err(drop)?;
            rb.drain(..n);
            if done {
                break;
            }
        }
        if read_more(&mut c, &mut rb).await.map_err(drop)? == 0 {
            parser.eof().map_err(drop)?;
            break;
        }
    }
    if !(200..300).contains(&parser.status()) {
        return Err(());
    }
    Ok(s)
}

async fn client(
    shared: Arc<Shared>,
    stats: Rc<RefCell<Stats>>,
    streams: Rc<RefCell<Vec<RawFd>>>,
    legacy: bool,
    addr: SocketAddr,
) {
    let mut s = match monoio::time::timeout(Duration::from_secs(60), setup(addr, legacy)).await {
        Ok(Ok(s)) => s,
        _ => {
            shared.setup_failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    shared.subscribed.fetch_add(1, Ordering::Relaxed);
    streams.borrow_mut().push(s.as_raw_fd());
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let tail = ID_PREFIX.len() + ID_DIGITS;
    loop {
        let n = match read_more(&mut s, &mut buf).await {
            Ok(0) | Err(_) => {
                if !shared.done.load(Ordering::Relaxed) {
                    stats.borrow_mut().io_errors += 1;
                }
                return;
            }
            Ok(n) => n,
        };
        let now = Instant::now();
        let _ = n;
        // Scan for complete ids; keep an incomplete tail for the next read.
        let mut pos = 0;
        while let Some(i) = shared.ids.find(&buf[pos..]) {
            let start = pos + i + ID_PREFIX.len();
            if start + ID_DIGITS > buf.len() {
                break;
            }
            let digits = &buf[start..start + ID_DIGITS];
            pos = start;
            let Some(seq) = std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse::<u64>().ok())
            else {
                continue;
            };
            let k = seq.wrapping_sub(shared.first_seq) as usize;
            if let Some(sent) = shared.sent.get(k).map(|a| a.load(Ordering::Acquire)) {
                if sent > 0 {
                    let at = (now - shared.base).as_nanos() as u64;
                    stats
                        .borrow_mut()
                        .record(Duration::from_nanos(at.saturating_sub(sent)), 200);
                    shared.delivered.fetch_add(1, Ordering::Relaxed);
                }
            }
            pos = start + ID_DIGITS;
        }
        let keep_from = pos.max(buf.len().saturating_sub(tail));
        buf.drain(..keep_from);
    }
}
