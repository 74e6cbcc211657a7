//! `loadtest soak`: a long mixed run against one PocketBun that checks it stays correct and
//! its memory stays flat, rather than measuring how fast it is.
//!
//! The server is started on a fresh data dir and seeded like `compare` does (smaller by
//! default), plus a `soak_files` collection for uploads. Then, for `--duration`:
//!
//! * `--threads` client threads, each on its own keep-alive connection, paced so that together
//!   they send about `--rate` requests/s (the machine is shared: a soak must not be a stress
//!   test), in a fixed mix: reads (view, list, filtered, expand, a rule-checked list with a
//!   user token) 70 %, creates 15 %, updates 5 %, uploads 4 % (each one later read back),
//!   logins 1 % (bcrypt is costly), file downloads 5 %;
//! * `--realtime-clients` SSE clients subscribed to every create, each noting which record ids
//!   it was told about (and reconnecting when its stream ends, as the SDKs do);
//! * the server's RSS sampled every 5 s.
//!
//! At the end: every non-2xx answer or transport failure is an error; every create and upload
//! that was acknowledged must be in the collection (lost writes); every create acknowledged
//! while a realtime client was subscribed (and at least 1 s inside that window) must have
//! reached it (missed events); RSS after `--warmup` is compared with RSS at the end, and may
//! have grown by at most [`RSS_GROWTH_LIMIT`].
//!
//! A realtime stream the server ends is a lost stream (an error) unless it is one of
//! PocketBase's two deliberate closes, which PocketBun copies: every SSE connection is closed
//! after 30 minutes, and one that was sent nothing for 5 minutes (PocketBase's
//! `apis/realtime.go`, `MaxTimeout` and `IdleTimeout`, since v0.38.2). The SDKs reconnect and
//! resubscribe; such closes are counted apart, and the creates within 1 s of a client's
//! reconnect are reported, not expected (no server delivers what happens between streams).

/// PocketBase closes every realtime connection this long after it opened.
const SERVER_MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// PocketBase closes a realtime connection that was sent nothing for this long.
const SERVER_IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Slack for the two timers above: the client's clock starts before the server's.
const CLOSE_SLACK: Duration = Duration::from_secs(2);
/// RSS at the end may exceed RSS at the reference point by this fraction. The 2026-12-07
/// run grew 4 % from minute 10 to minute 30 (65.2 to 67.9 MiB).
pub const RSS_GROWTH_LIMIT: f64 = 0.10;

use crate::api::{Api, ApiResponse};
use crate::seed::{self, SeedConfig, Seeded, PASSWORD, SU_EMAIL, WRITES};
use crate::server::{self, ServerProcess, ServerSpec};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How to soak.
#[derive(Clone, Debug)]
pub struct SoakConfig {
    pub duration: Duration,
    /// RSS is taken as the baseline once this much of the run is over.
    pub warmup: Duration,
    /// Requests per second, all client threads together.
    pub rate: f64,
    pub threads: usize,
    pub realtime_clients: usize,
    pub seed: SeedConfig,
    pub startup_timeout: Duration,
    /// Bytes of each uploaded file.
    pub upload_bytes: usize,
}

/// The outcome; [`SoakReport::passed`] is the verdict.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SoakReport {
    pub duration_s: f64,
    pub requests: u64,
    pub errors: u64,
    pub error_samples: Vec<String>,
    /// (operation, requests, errors) per operation kind.
    pub per_op: Vec<(String, u64, u64)>,
    pub creates_acknowledged: u64,
    pub creates_stored: u64,
    pub uploads_acknowledged: u64,
    pub uploads_stored: u64,
    pub lost_writes: u64,
    pub realtime_clients: usize,
    pub realtime_reconnects: u64,
    /// Streams the server ended at its 30-minute connection lifetime (as PocketBase does).
    pub realtime_lifetime_closes: u64,
    /// Streams the server ended after 5 minutes without a message (as PocketBase does).
    pub realtime_idle_closes: u64,
    /// Creates acknowledged while a client was between two streams or within 1 s of either
    /// end of the gap (not counted as expected).
    pub realtime_in_gaps: u64,
    pub realtime_events: u64,
    pub realtime_expected: u64,
    pub realtime_missed: u64,
    /// Seconds into the run of the RSS reference point (`--warmup`).
    pub rss_reference_s: u64,
    pub rss_after_warmup_kib: u64,
    pub rss_max_after_warmup_kib: u64,
    pub rss_end_kib: u64,
    /// `(seconds since start, RSS KiB)` every 5 s.
    pub rss_samples: Vec<(u64, u64)>,
    pub server_panics: bool,
}

impl SoakReport {
    pub fn passed(&self) -> bool {
        self.errors == 0
            && self.lost_writes == 0
            && self.realtime_missed == 0
            && self.rss_flat()
            && !self.server_panics
    }

    /// RSS at the end is within [`RSS_GROWTH_LIMIT`] of RSS at the reference point.
    pub fn rss_flat(&self) -> bool {
        self.rss_end_kib as f64 <= self.rss_after_warmup_kib as f64 * (1.0 + RSS_GROWTH_LIMIT)
    }

    pub fn text(&self) -> String {
        let mut s = String::new();
        let mib = |k: u64| k as f64 / 1024.0;
        s.push_str(&format!(
            "soak: {:.0} s, {} requests ({:.0}/s), {} errors\n",
            self.duration_s,
            self.requests,
            self.requests as f64 / self.duration_s.max(1.0),
            self.errors
        ));
        for (op, n, e) in &self.per_op {
            s.push_str(&format!("  {op:<10} {n:>9} requests {e:>5} errors\n"));
        }
        for e in &self.error_samples {
            s.push_str(&format!("  error: {e}\n"));
        }
        s.push_str(&format!(
            "writes: {} creates acknowledged, {} stored; {} uploads acknowledged, {} stored; {} lost\n",
            self.creates_acknowledged,
            self.creates_stored,
            self.uploads_acknowledged,
            self.uploads_stored,
            self.lost_writes
        ));
        s.push_str(&format!(
            "realtime: {} clients, {} events received, {} expected, {} missed, {} reconnects \
             ({} at the 30-minute lifetime, {} after 5 idle minutes, as PocketBase; the rest \
             are lost streams, counted as errors), {} creates within 1 s of a reconnect\n",
            self.realtime_clients,
            self.realtime_events,
            self.realtime_expected,
            self.realtime_missed,
            self.realtime_reconnects,
            self.realtime_lifetime_closes,
            self.realtime_idle_closes,
            self.realtime_in_gaps
        ));
        s.push_str(&format!(
            "RSS: {:.1} MiB at {} s (reference), {:.1} MiB max after it, {:.1} MiB at the end \
             ({:+.1} %, limit +{:.0} %)\n",
            mib(self.rss_after_warmup_kib),
            self.rss_reference_s,
            mib(self.rss_max_after_warmup_kib),
            mib(self.rss_end_kib),
            (self.rss_end_kib as f64 / self.rss_after_warmup_kib.max(1) as f64 - 1.0) * 100.0,
            RSS_GROWTH_LIMIT * 100.0
        ));
        if self.server_panics {
            s.push_str("server log shows a panic\n");
        }
        s.push_str(if self.passed() { "PASS\n" } else { "FAIL\n" });
        s
    }
}

const OP_LOGIN: usize = 8;
const OP_DOWNLOAD: usize = 9;
const OP_NAMES: [&str; 10] = [
    "view",
    "list",
    "filtered",
    "expand",
    "auth-list",
    "create",
    "update",
    "upload",
    "login",
    "download",
];

/// The mix over 100 slots: which operation each request index maps to.
fn op_for(n: u64) -> usize {
    match n % 100 {
        0..=24 => 0,
        25..=39 => 1,
        40..=51 => 2,
        52..=63 => 3,
        64..=69 => 4,
        70..=84 => 5,
        85..=89 => 6,
        90..=93 => 7,
        94 => OP_LOGIN,
        _ => OP_DOWNLOAD,
    }
}

#[derive(Default)]
struct Shared {
    requests: [AtomicU64; 10],
    errors: [AtomicU64; 10],
    samples: Mutex<Vec<String>>,
    /// (record id, acknowledged at)
    creates: Mutex<Vec<(String, Instant)>>,
    /// (record id, file name, content)
    uploads: Mutex<Vec<(String, String, Vec<u8>)>>,
}

impl Shared {
    fn error(&self, op: usize, what: String) {
        self.errors[op].fetch_add(1, Ordering::Relaxed);
        let mut s = self.samples.lock().unwrap();
        if s.len() < 20 {
            s.push(format!("{}: {what}", OP_NAMES[op]));
        }
    }
}

/// Runs the soak against `program` (a `pocketbun` binary).
pub fn run(program: &Path, cfg: &SoakConfig, stop: Arc<AtomicBool>) -> crate::Result<SoakReport> {
    let port = server::free_port()?;
    let dir = server::scratch_dir("soak")?;
    let data = dir.join("pb_data");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    seed::superuser_upsert(program, &data)?;
    let mut d = std::ffi::OsString::from("--dir=");
    d.push(&data);
    let spec = ServerSpec {
        name: "pocketbun".into(),
        program: program.to_path_buf(),
        args: vec!["serve".into(), format!("--http={addr}").into(), d],
        addr,
        cpus: None,
        dir: Some(dir),
    };
    let mut proc = ServerProcess::spawn(&spec)?;
    proc.wait_ready("/api/health", cfg.startup_timeout, &stop)?;
    let mut api = Api::new(addr)?;
    let mut seeded = Seeded::default();
    seed::seed(&mut api, &cfg.seed, &mut seeded, &mut |m| {
        eprintln!("soak seed: {m}")
    })?;
    let files = json!({
        "name": "soak_files",
        "type": "base",
        "listRule": "", "viewRule": "", "createRule": "",
        "fields": [
            {"name": "title", "type": "text"},
            {"name": "doc", "type": "file", "maxSelect": 1, "maxSize": 10_485_760},
        ],
    });
    api.call("POST", "/api/collections", None, Some(&files))?
        .check("create soak_files")?;
    let seeded = Arc::new(seeded);
    let shared = Arc::new(Shared::default());
    let started = Instant::now();
    let deadline = started + cfg.duration;
    let writers_done = Arc::new(AtomicBool::new(false));

    let mut rt = Vec::new();
    for i in 0..cfg.realtime_clients {
        let (stop, done) = (stop.clone(), writers_done.clone());
        rt.push(std::thread::spawn(move || {
            realtime_client(addr, i, &stop, &done)
        }));
    }
    let mut clients = Vec::new();
    for t in 0..cfg.threads.max(1) {
        let (shared, seeded, stop) = (shared.clone(), seeded.clone(), stop.clone());
        let interval = Duration::from_secs_f64(cfg.threads.max(1) as f64 / cfg.rate.max(0.1));
        let upload_bytes = cfg.upload_bytes;
        clients.push(std::thread::spawn(move || {
            client(
                addr,
                t,
                interval,
                deadline,
                upload_bytes,
                &seeded,
                &shared,
                &stop,
            )
        }));
    }

    // RSS every 5 s
    let mut rss_samples = Vec::new();
    let pid = proc.pid();
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        if let Some(kib) = server::proc_status_kib(pid, "VmRSS") {
            rss_samples.push((started.elapsed().as_secs(), kib));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        std::thread::sleep(left.min(Duration::from_secs(5)));
        let secs = started.elapsed().as_secs();
        if secs % 60 < 5 {
            eprintln!(
                "soak: {secs} s, {} requests, {} errors",
                shared
                    .requests
                    .iter()
                    .map(|a| a.load(Ordering::Relaxed))
                    .sum::<u64>(),
                shared
                    .errors
                    .iter()
                    .map(|a| a.load(Ordering::Relaxed))
                    .sum::<u64>()
            );
        }
    }
    for c in clients {
        let _ = c.join();
    }
    let rss_end = server::proc_status_kib(pid, "VmRSS").unwrap_or(0);
    rss_samples.push((started.elapsed().as_secs(), rss_end));
    // the last events are still on their way
    std::thread::sleep(Duration::from_secs(2));
    writers_done.store(true, Ordering::Relaxed);
    let rt: Vec<RtClient> = rt.into_iter().filter_map(|h| h.join().ok()).collect();

    let mut report = SoakReport {
        duration_s: started.elapsed().as_secs_f64(),
        realtime_clients: cfg.realtime_clients,
        ..SoakReport::default()
    };
    for (i, name) in OP_NAMES.iter().enumerate() {
        let n = shared.requests[i].load(Ordering::Relaxed);
        let e = shared.errors[i].load(Ordering::Relaxed);
        report.requests += n;
        report.errors += e;
        report.per_op.push((name.to_string(), n, e));
    }
    report.error_samples = shared.samples.lock().unwrap().clone();

    // lost writes: every acknowledged id must be stored
    api.token = Some(seeded.superuser_token.clone());
    let creates = shared.creates.lock().unwrap().clone();
    let stored = all_ids(&mut api, WRITES)?;
    report.creates_acknowledged = creates.len() as u64;
    report.creates_stored = stored.len() as u64;
    let mut lost = creates
        .iter()
        .filter(|(id, _)| !stored.contains(id))
        .count() as u64;
    let uploads = shared.uploads.lock().unwrap().clone();
    let stored_files = all_ids(&mut api, "soak_files")?;
    report.uploads_acknowledged = uploads.len() as u64;
    report.uploads_stored = stored_files.len() as u64;
    lost += uploads
        .iter()
        .filter(|(id, _, _)| !stored_files.contains(id))
        .count() as u64;
    report.lost_writes = lost;

    // realtime: every create acknowledged well inside a subscription window arrived
    let margin = Duration::from_secs(1);
    for c in &rt {
        report.realtime_reconnects += c.windows.len().saturating_sub(1) as u64;
        report.realtime_lifetime_closes += c.lifetime_closes;
        report.realtime_idle_closes += c.idle_closes;
        report.realtime_events += c.received.len() as u64;
        report.error_samples.extend(c.errors.iter().cloned());
        report.errors += c.errors.len() as u64;
        for (id, at) in &creates {
            let inside = c
                .windows
                .iter()
                .any(|(from, to)| *at > *from + margin && *at + margin < *to);
            if inside {
                report.realtime_expected += 1;
                if !c.received.contains(id) {
                    report.realtime_missed += 1;
                }
            } else if c.windows.iter().any(|(from, _)| from < at)
                && c.windows.iter().any(|(_, to)| at < to)
            {
                report.realtime_in_gaps += 1;
            }
        }
    }

    let warm_s = cfg.warmup.as_secs();
    report.rss_reference_s = warm_s;
    report.rss_after_warmup_kib = rss_samples
        .iter()
        .find(|(s, _)| *s >= warm_s)
        .map_or(rss_end, |(_, k)| *k);
    report.rss_max_after_warmup_kib = rss_samples
        .iter()
        .filter(|(s, _)| *s >= warm_s)
        .map(|(_, k)| *k)
        .max()
        .unwrap_or(rss_end);
    report.rss_end_kib = rss_end;
    report.rss_samples = rss_samples;
    proc.kill();
    report.server_panics = proc.log_tail(100_000).contains("panicked");
    Ok(report)
}

/// Every record id of `collection` (pages of 1000).
fn all_ids(api: &mut Api, collection: &str) -> crate::Result<HashSet<String>> {
    let mut ids = HashSet::new();
    for page in 1.. {
        let r = api
            .call(
                "GET",
                &format!(
                    "/api/collections/{collection}/records?page={page}&perPage=1000&fields=id&skipTotal=1&sort=id"
                ),
                None,
                None,
            )?
            .check(&format!("list {collection}"))?;
        let v = r.json();
        let items = v["items"].as_array().cloned().unwrap_or_default();
        let n = items.len();
        ids.extend(
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_string)),
        );
        if n < 1000 {
            break;
        }
    }
    Ok(ids)
}

#[allow(clippy::too_many_arguments)]
fn client(
    addr: SocketAddr,
    thread: usize,
    interval: Duration,
    deadline: Instant,
    upload_bytes: usize,
    seeded: &Seeded,
    shared: &Shared,
    stop: &AtomicBool,
) {
    let Ok(mut api) = Api::new(addr) else { return };
    let mut next = Instant::now();
    // each thread walks the mix from its own offset, so all kinds run from the start
    let mut n = thread as u64 * 37;
    let mut made = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > Duration::from_secs(1) {
            next = now; // fell behind (a slow answer): no burst to catch up
        }
        next += interval;
        let op = op_for(n);
        n += 1;
        shared.requests[op].fetch_add(1, Ordering::Relaxed);
        let posts = seeded.post_ids.len().max(1);
        let pick = |k: u64| seed::post_id((k as usize * 7919) % posts);
        let result = match op {
            0 => api.call(
                "GET",
                &format!("/api/collections/posts/records/{}", pick(n)),
                Some(""),
                None,
            ),
            1 => api.call(
                "GET",
                &format!(
                    "/api/collections/posts/records?page={}&perPage=30",
                    n % 10 + 1
                ),
                Some(""),
                None,
            ),
            2 => api.call(
                "GET",
                &format!(
                    "/api/collections/posts/records?filter={}&sort=-views&perPage=30&skipTotal=1",
                    crate::api::urlencode(&format!("(published=true && views>{})", n % 1000))
                ),
                Some(""),
                None,
            ),
            3 => api.call(
                "GET",
                &format!(
                    "/api/collections/posts/records?page={}&perPage=30&expand=author&skipTotal=1",
                    n % 10 + 1
                ),
                Some(""),
                None,
            ),
            4 => {
                let token = seeded
                    .user_tokens
                    .get(n as usize % seeded.user_tokens.len().max(1))
                    .cloned()
                    .unwrap_or_default();
                api.call(
                    "GET",
                    "/api/collections/notes/records?perPage=30",
                    Some(&token),
                    None,
                )
            }
            5 => {
                made += 1;
                let body = json!({
                    "title": format!("soak {thread} {made}"),
                    "views": made,
                    "published": made % 2 == 0,
                });
                let r = api.call(
                    "POST",
                    &format!("/api/collections/{WRITES}/records"),
                    Some(""),
                    Some(&body),
                );
                if let Ok(resp) = &r {
                    if let Some(id) = resp
                        .ok()
                        .then(|| resp.json()["id"].as_str().map(str::to_string))
                        .flatten()
                    {
                        shared.creates.lock().unwrap().push((id, Instant::now()));
                    }
                }
                r
            }
            6 => api.call(
                "PATCH",
                &format!("/api/collections/posts/records/{}", pick(n)),
                Some(""),
                Some(&json!({"views": n % 1000})),
            ),
            7 => {
                made += 1;
                let content: Vec<u8> = format!("soak file {thread} {made} ")
                    .into_bytes()
                    .into_iter()
                    .cycle()
                    .take(upload_bytes.max(16))
                    .collect();
                let r = upload(&mut api, addr, &content);
                if let Ok(resp) = &r {
                    let v = resp.json();
                    if let (true, Some(id), Some(name)) =
                        (resp.ok(), v["id"].as_str(), v["doc"].as_str())
                    {
                        shared.uploads.lock().unwrap().push((
                            id.to_string(),
                            name.to_string(),
                            content,
                        ));
                    }
                }
                r
            }
            OP_LOGIN => {
                let i = n as usize % seeded.user_emails.len().max(1);
                let email = seeded
                    .user_emails
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| SU_EMAIL.into());
                api.call(
                    "POST",
                    "/api/collections/users/auth-with-password",
                    Some(""),
                    Some(&json!({"identity": email, "password": PASSWORD})),
                )
            }
            _ => {
                // a file uploaded earlier, read back and compared
                let up = {
                    let ups = shared.uploads.lock().unwrap();
                    (!ups.is_empty()).then(|| ups[n as usize % ups.len()].clone())
                };
                match up {
                    None => api.call("GET", "/api/health", Some(""), None),
                    Some((id, name, content)) => {
                        let r = api.call(
                            "GET",
                            &format!("/api/files/soak_files/{id}/{name}"),
                            Some(""),
                            None,
                        );
                        match r {
                            Ok(resp) if resp.ok() && resp.body != content => {
                                shared.error(op, format!("file {id}/{name} came back different"));
                                continue;
                            }
                            other => other,
                        }
                    }
                }
            }
        };
        match result {
            Ok(r) if r.ok() => {}
            Ok(r) => shared.error(op, r.brief(200)),
            Err(e) => shared.error(op, e.to_string()),
        }
    }
}

fn upload(api: &mut Api, addr: SocketAddr, content: &[u8]) -> crate::Result<ApiResponse> {
    let boundary = "----pocketbunsoakboundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nsoak\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"soak.txt\"\r\n\
         Content-Type: text/plain\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut req = format!(
        "POST /api/collections/soak_files/records HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    api.raw(&req, false)
}

/// Every record change of the writes collection; also the name of its events.
const TOPIC: &str = "posts_w/*";

/// What one realtime client saw.
#[derive(Default)]
struct RtClient {
    /// (subscribed at, stream ended at) per connection.
    windows: Vec<(Instant, Instant)>,
    received: HashSet<String>,
    errors: Vec<String>,
    lifetime_closes: u64,
    idle_closes: u64,
}

/// Why the server ended a stream on purpose.
#[derive(Debug, PartialEq, Eq)]
enum ServerClose {
    Lifetime,
    Idle,
}

/// Which of PocketBase's deliberate closes explains a stream opened at `opened`, last sent a
/// message at `last_message` and ended at `now` (`None`: neither, a lost stream).
fn server_close(opened: Instant, last_message: Instant, now: Instant) -> Option<ServerClose> {
    if now >= opened + SERVER_MAX_LIFETIME - CLOSE_SLACK {
        Some(ServerClose::Lifetime)
    } else if now >= last_message + SERVER_IDLE_TIMEOUT - CLOSE_SLACK {
        Some(ServerClose::Idle)
    } else {
        None
    }
}

fn realtime_client(addr: SocketAddr, i: usize, stop: &AtomicBool, done: &AtomicBool) -> RtClient {
    let mut out = RtClient::default();
    while !done.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
        match stream_once(addr, &mut out, stop, done) {
            Ok(None) => {}
            Ok(Some(ServerClose::Lifetime)) => out.lifetime_closes += 1,
            Ok(Some(ServerClose::Idle)) => out.idle_closes += 1,
            Err(e) => {
                if out.errors.len() < 5 {
                    out.errors.push(format!("realtime client {i}: {e}"));
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
    out
}

/// One SSE connection: connect, subscribe to every create in the writes collection, collect
/// record ids until the run is over (`Ok(None)`), the server ends it on purpose
/// (`Ok(Some(why))`) or the stream breaks (`Err`).
fn stream_once(
    addr: SocketAddr,
    out: &mut RtClient,
    stop: &AtomicBool,
    done: &AtomicBool,
) -> crate::Result<Option<ServerClose>> {
    let opened = Instant::now();
    let mut last_message = opened;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_millis(500)))?;
    // HTTP/1.0: the stream is delimited by the connection's end, no chunked framing to undo
    s.write_all(
        format!("GET /api/realtime HTTP/1.0\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n")
            .as_bytes(),
    )?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut head_done = false;
    let mut subscribed: Option<Instant> = None;
    loop {
        if done.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed) {
            if let Some(t) = subscribed {
                out.windows.push((t, Instant::now()));
            }
            return Ok(None);
        }
        let n = match s.read(&mut chunk) {
            Ok(0) => {
                let now = Instant::now();
                if let Some(t) = subscribed {
                    out.windows.push((t, now));
                }
                if let Some(why) = server_close(opened, last_message, now) {
                    return Ok(Some(why));
                }
                return Err(format!(
                    "the stream ended after {:.0?} ({:.0?} after its last message)",
                    now - opened,
                    now - last_message
                )
                .into());
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => {
                if let Some(t) = subscribed {
                    out.windows.push((t, Instant::now()));
                }
                return Err(e.into());
            }
        };
        buf.extend_from_slice(&chunk[..n]);
        if !head_done {
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            if !head.contains(" 200 ") {
                return Err(
                    format!("realtime answered {}", head.lines().next().unwrap_or("")).into(),
                );
            }
            buf.drain(..end + 4);
            head_done = true;
        }
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let event = String::from_utf8_lossy(&buf[..end]).to_string();
            buf.drain(..end + 2);
            last_message = Instant::now();
            let mut name = "";
            let mut data = String::new();
            for line in event.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            let v: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
            if name == "PB_CONNECT" {
                let client_id = v["clientId"].as_str().unwrap_or_default().to_string();
                let mut api = Api::new(addr)?;
                api.call(
                    "POST",
                    "/api/realtime",
                    Some(""),
                    Some(&json!({"clientId": client_id, "subscriptions": [TOPIC]})),
                )?
                .check("subscribe")?;
                subscribed = Some(Instant::now());
            } else if name == TOPIC {
                if let Some(id) = v["record"]["id"].as_str() {
                    out.received.insert(id.to_string());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliberate_closes_are_told_from_lost_streams() {
        let t0 = Instant::now();
        let min = |m: u64| Duration::from_secs(60 * m);
        // busy for 30 minutes: the lifetime
        let end = t0 + min(30);
        assert_eq!(
            server_close(t0, end - Duration::from_millis(10), end),
            Some(ServerClose::Lifetime)
        );
        // quiet for 5 minutes: the idle timeout
        assert_eq!(
            server_close(t0, t0 + min(3), t0 + min(8)),
            Some(ServerClose::Idle)
        );
        // ended after 20 minutes, 1 second after its last message: lost
        assert_eq!(
            server_close(t0, t0 + min(20), t0 + min(20) + Duration::from_secs(1)),
            None
        );
    }

    #[test]
    fn rss_is_flat_within_the_limit() {
        let report = |reference: u64, end: u64| SoakReport {
            rss_after_warmup_kib: reference,
            rss_end_kib: end,
            ..SoakReport::default()
        };
        assert!(report(65_000, 67_900).rss_flat());
        assert!(report(65_000, 71_500).rss_flat());
        assert!(!report(65_000, 71_600).rss_flat());
        assert!(!report(65_000, 71_600).passed());
    }
}
