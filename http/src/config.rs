use std::net::SocketAddr;
use std::time::Duration;

/// Which monoio driver the workers run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Driver {
    /// io_uring where the kernel allows it, epoll otherwise.
    #[default]
    Auto,
    /// Always epoll: the fallback path, forced so that it stays tested.
    Epoll,
}

/// Protocol limits. The defaults follow what PocketBase (Go's net/http plus its body-limit
/// middleware) accepts, so a request PocketBase serves is never refused here.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Request line plus headers; Go's `DefaultMaxHeaderBytes` is 1 MiB.
    pub max_header_bytes: usize,
    /// Request target length; beyond it 414.
    pub max_uri_bytes: usize,
    pub max_headers: usize,
    /// Default body limit when the service does not set one for a route (PocketBase: 32 MiB).
    pub default_body_bytes: usize,
    /// From the first byte of a request until its head is complete.
    pub header_read_timeout: Duration,
    /// Reading the whole body once the head is in.
    pub body_read_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// How long one write of a streamed body (SSE events, file downloads) may make no
    /// progress before the connection is dropped: a client that stops reading must not hold
    /// its connection and queued events forever.
    pub write_stall_timeout: Duration,
    /// Open connections across all workers; beyond it new ones get 503 and are closed.
    pub max_connections: usize,
    /// A keep-alive connection that has waited this long for its next request gives its read
    /// and write buffers back and waits for input without any (`conn::Conn::read_idle`); the
    /// next request allocates them again. `None`: connections keep their buffers.
    pub idle_release: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 1 << 20,
            max_uri_bytes: 1 << 20,
            max_headers: 256,
            default_body_bytes: 32 << 20,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(120),
            write_stall_timeout: Duration::from_secs(60),
            max_connections: 100_000,
            // a client that pauses longer than this between requests is not in a burst; the
            // cost of coming back (two allocations, one readiness wait) is paid at most once
            // a second per connection
            idle_release: Some(Duration::from_secs(1)),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    /// Worker threads, one runtime and one listener each.
    pub workers: usize,
    pub driver: Driver,
    pub limits: Limits,
    /// Compress responses for clients that accept gzip (PocketBase does not by default).
    pub gzip: bool,
    /// How long shutdown waits for in-flight requests before giving up on them.
    pub shutdown_grace: Duration,
    /// A worker whose loop does not come round for this long (wall clock), or that spends
    /// this much CPU time in one turn, is reported as stalled on stderr (`crate::stall`).
    pub stall_threshold: Duration,
    /// Serve TLS (every connection starts with a handshake) instead of plain HTTP.
    pub tls: Option<crate::tls::TlsConfig>,
}

impl ServerConfig {
    pub fn new(addr: SocketAddr) -> Self {
        ServerConfig {
            addr,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            driver: Driver::Auto,
            limits: Limits::default(),
            gzip: false,
            shutdown_grace: Duration::from_secs(30),
            stall_threshold: Duration::from_millis(200),
            tls: None,
        }
    }
}
