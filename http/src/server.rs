//! Workers and their listeners, start-up and graceful shutdown.

use crate::config::{Driver, ServerConfig};
use crate::conn::{self, WorkerCtx};
use crate::error::{HttpError, HttpErrorKind};
use crate::service::Service;
use crate::stall::{BusyMeter, Heartbeat, Watchdog};
use crate::write::{write_head, Framing};
use crate::Shutdown;
use monoio::io::AsyncWriteRentExt;
use monoio::net::TcpListener;
use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Server;

/// A running server: its address, its shutdown switch, its threads.
pub struct ServerHandle {
    addr: SocketAddr,
    shutdown: Shutdown,
    threads: Vec<JoinHandle<io::Result<()>>>,
    stalls: Arc<AtomicU64>,
    busy: BusyMeter,
    driver: &'static str,
    idle_releases: Arc<AtomicU64>,
}

/// Counters shared by all workers.
struct Shared {
    open_connections: AtomicUsize,
    max_connections: usize,
}

impl Server {
    /// Binds `config.addr` once per worker (SO_REUSEPORT, so the kernel spreads connections
    /// across cores) and starts the workers. `factory` builds each worker's service on the
    /// worker's own thread.
    pub fn start<S, F>(config: ServerConfig, factory: F) -> io::Result<ServerHandle>
    where
        S: Service,
        F: Fn(usize) -> S + Send + Sync + 'static,
    {
        let workers = config.workers.max(1);
        let listeners = bind_all(config.addr, workers)?;
        let addr = listeners[0].local_addr()?;
        let shutdown = Shutdown::new();
        let factory = Arc::new(factory);
        let shared = Arc::new(Shared {
            open_connections: AtomicUsize::new(0),
            max_connections: config.limits.max_connections,
        });
        let watchdog = Watchdog::new(workers, config.stall_threshold);
        let stalls = Arc::new(AtomicU64::new(0));
        watchdog.spawn(shutdown.clone(), stalls.clone());
        let use_uring = config.driver == Driver::Auto && monoio::utils::detect_uring();
        let idle_releases = Arc::new(AtomicU64::new(0));

        let mut threads = Vec::with_capacity(workers);
        for (id, listener) in listeners.into_iter().enumerate() {
            let config = config.clone();
            let factory = factory.clone();
            let shutdown = shutdown.clone();
            let shared = shared.clone();
            let heartbeat = watchdog.beats[id].clone();
            let idle_releases = idle_releases.clone();
            let thread = std::thread::Builder::new()
                .name(format!("pocketbun-worker-{id}"))
                .spawn(move || {
                    let work = worker(
                        id,
                        listener,
                        config,
                        factory,
                        shutdown,
                        (shared, idle_releases),
                        heartbeat,
                    );
                    if use_uring {
                        uring_runtime()?.block_on(work)
                    } else {
                        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                            .enable_timer()
                            .build()?
                            .block_on(work)
                    }
                })?;
            threads.push(thread);
        }
        Ok(ServerHandle {
            addr,
            shutdown,
            threads,
            stalls,
            busy: watchdog.meter(),
            driver: if use_uring { "io_uring" } else { "epoll" },
            idle_releases,
        })
    }
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The switch that stops the server; flip it from anywhere.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// "io_uring" or "epoll".
    pub fn driver(&self) -> &'static str {
        self.driver
    }

    /// How many worker stalls the watchdog has seen end.
    pub fn stalls(&self) -> u64 {
        self.stalls.load(Ordering::Relaxed)
    }

    /// How many times an idle keep-alive connection gave its buffers back
    /// ([`crate::Limits::idle_release`]).
    pub fn idle_releases(&self) -> u64 {
        self.idle_releases.load(Ordering::Relaxed)
    }

    /// The longest CPU-busy stretch of each worker (see [`BusyMeter`]); keep a clone to read
    /// it after [`ServerHandle::join`].
    pub fn busy_meter(&self) -> BusyMeter {
        self.busy.clone()
    }

    /// Triggers shutdown on the first SIGINT or SIGTERM.
    pub fn shutdown_on_signals(&self) -> io::Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
        let shutdown = self.shutdown.clone();
        std::thread::Builder::new()
            .name("pocketbun-signals".into())
            .spawn(move || {
                if signals.forever().next().is_some() {
                    shutdown.trigger();
                }
            })?;
        Ok(())
    }

    /// Waits for every worker to finish (after shutdown was triggered).
    pub fn join(self) -> io::Result<()> {
        let mut result = Ok(());
        for t in self.threads {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(_) => result = Err(io::Error::other("worker thread panicked")),
            }
        }
        result
    }
}

/// An io_uring runtime whose completions are processed only when the worker asks for them
/// (`DEFER_TASKRUN`, one issuing thread): without it every completion posted from the other
/// core interrupts this one, which costs a third of the throughput on loopback. Kernels
/// without those flags get a plain ring.
fn uring_runtime() -> io::Result<monoio::Runtime<monoio::time::TimeDriver<monoio::IoUringDriver>>> {
    let mut deferred = io_uring::IoUring::builder();
    deferred.setup_defer_taskrun().setup_single_issuer();
    monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .uring_builder(deferred)
        .enable_timer()
        .build()
        .or_else(|_| {
            monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                .enable_timer()
                .build()
        })
}

fn bind_all(addr: SocketAddr, workers: usize) -> io::Result<Vec<std::net::TcpListener>> {
    let mut listeners = Vec::with_capacity(workers);
    let mut addr = addr;
    for _ in 0..workers {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        let listener: std::net::TcpListener = socket.into();
        // with port 0 the first bind picks the port; the others must share it
        addr = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Decrements the open-connection counters when a connection ends, however it ends.
struct ConnGuard {
    shared: Arc<Shared>,
    local: Rc<Cell<usize>>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.shared.open_connections.fetch_sub(1, Ordering::Relaxed);
        self.local.set(self.local.get() - 1);
    }
}

async fn worker<S, F>(
    id: usize,
    listener: std::net::TcpListener,
    config: ServerConfig,
    factory: Arc<F>,
    shutdown: Shutdown,
    (shared, idle_releases): (Arc<Shared>, Arc<AtomicU64>),
    heartbeat: Heartbeat,
) -> io::Result<()>
where
    S: Service,
    F: Fn(usize) -> S + Send + Sync + 'static,
{
    let listener = TcpListener::from_std(listener)?;
    let svc = Rc::new(factory(id));
    let ctx = Rc::new(WorkerCtx {
        limits: config.limits.clone(),
        shutdown: crate::shutdown::WorkerShutdown::start(shutdown.clone()),
        gzip: config.gzip,
        idle_releases,
    });
    monoio::spawn(heartbeat.clone().run());
    let tls = config.tls.clone();
    let open_here = Rc::new(Cell::new(0usize));

    loop {
        let accepted = monoio::select! {
            r = listener.accept() => r,
            _ = shutdown.wait() => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning on the error
                eprintln!("pocketbun: worker {id}: accept failed: {e}");
                monoio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let open = shared.open_connections.fetch_add(1, Ordering::Relaxed) + 1;
        open_here.set(open_here.get() + 1);
        let guard = ConnGuard {
            shared: shared.clone(),
            local: open_here.clone(),
        };
        let _ = stream.set_nodelay(true);
        if open > shared.max_connections {
            if tls.is_some() {
                // a plain-text 503 means nothing to a TLS client: just close
                drop((stream, guard));
                continue;
            }
            let svc = svc.clone();
            monoio::spawn(async move {
                let _guard = guard;
                refuse(stream, &*svc).await;
            });
            continue;
        }
        let svc = svc.clone();
        let ctx = ctx.clone();
        match &tls {
            None => {
                monoio::spawn(async move {
                    let _guard = guard;
                    conn::serve(stream, peer, svc, ctx).await;
                });
            }
            Some(tls) => {
                let source = tls.0.clone();
                monoio::spawn(async move {
                    let _guard = guard;
                    // the handshake counts against the head's read timeout, as in Go's server
                    let handshake = monoio::time::timeout(
                        ctx.limits.header_read_timeout,
                        crate::tls::accept(stream, &*source),
                    );
                    let stream = monoio::select! {
                        r = handshake => match r {
                            Ok(Some(stream)) => stream,
                            _ => return,
                        },
                        _ = ctx.shutdown.wait() => return,
                    };
                    conn::serve(stream, peer, svc, ctx).await;
                });
            }
        }
    }

    // stop accepting, then let in-flight requests finish; idle connections close themselves
    drop(listener);
    let deadline = Instant::now() + config.shutdown_grace;
    while open_here.get() > 0 && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    // a last beat, so that the busy meter also counts work done since the previous one
    heartbeat.beat();
    Ok(())
}

async fn refuse<S: Service>(mut stream: monoio::net::TcpStream, svc: &S) {
    let resp = svc.error_response(&HttpError::new(
        HttpErrorKind::Overloaded,
        "too many connections",
    ));
    let mut out = Vec::new();
    let body = match &resp.body {
        crate::Body::Bytes(b) => b.clone(),
        _ => Vec::new(),
    };
    write_head(
        &mut out,
        crate::Version::Http11,
        &resp,
        Framing::Length(body.len() as u64),
        false,
    );
    out.extend_from_slice(&body);
    let _ = stream.write_all(out).await;
}
