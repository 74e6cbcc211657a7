//! `loadtest growth`: how each server's cost grows with what it holds — rows in the table it
//! reads (10k, 100k, 1M), concurrent writers, realtime subscribers, idle keep-alive
//! connections — and how PocketBun's reads scale with its worker count.
//!
//! The primary figure is the **server's CPU time per answered request**: utime + stime of the
//! whole server process (`/proc/PID/stat`, every thread) over the measured window, divided by
//! the responses completed in it. On this shared 2-core machine other engineers' builds move
//! requests/s by tens of percent between rounds; the CPU a request costs moves far less, since
//! time the server spends waiting for a core is not counted. Requests/s and p99 are printed as
//! context, with the share of CPU other processes used meanwhile.
//!
//! Data: one `pb_data` per size, made once and copied to each server (both read the same
//! files, PocketBun as a drop-in): PocketBase creates the schema and users through the Web API
//! (`seed.rs`, no posts), then the posts go straight into its table with one SQL statement
//! (the same deterministic content `seed.rs` would send, 15-char ids, PocketBase's datetime
//! format). Every data dir lives under the system temp dir and is removed when done.

use crate::compare::{resolve_pocketbase, version_of};
use crate::{finish_progress, progress_printer, run_config, LoadArgs};
use clap::Args;
use pocketbun_loadtest::affinity::{fmt_cpu_list, CpuList};
use pocketbun_loadtest::api::Api;
use pocketbun_loadtest::http1::ResponseParser;
use pocketbun_loadtest::realtime::{raise_nofile_limit, run_fanout, FanoutConfig};
use pocketbun_loadtest::runner;
use pocketbun_loadtest::seed::{self, SeedConfig, Seeded};
use pocketbun_loadtest::server::{self, ServerProcess, ServerSpec};
use pocketbun_loadtest::target::Target;
use pocketbun_loadtest::util::{self, fmt_rate};
use pocketbun_loadtest::workload::{build_request, Plan, RotatingPlan, Workload};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `growth` can measure (`--parts`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Part {
    /// List with total, count, filtered (indexed and not), expand at each `--sizes`.
    Reads,
    /// Creates from each of `--writers` concurrent connections.
    Writes,
    /// Realtime fan-out to each of `--subscribers` SSE clients.
    Realtime,
    /// RSS per idle keep-alive connection at each of `--idle`.
    Idle,
    /// PocketBun `--workers 1` vs `--workers 2`, unpinned: view and list.
    Workers,
}

/// Which servers to measure (`--servers`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Which {
    Pocketbun,
    Pocketbase,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Pocketbun => "pocketbun",
            Which::Pocketbase => "pocketbase",
        }
    }
}

#[derive(Args)]
pub struct GrowthArgs {
    /// pocketbun binary. Default: `pocketbun` next to this executable.
    #[arg(long)]
    pocketbun: Option<PathBuf>,
    /// PocketBase binary (it also creates the schema of every data set). Default: as `compare`.
    #[arg(long)]
    pocketbase: Option<PathBuf>,
    /// Servers to measure.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Which::Pocketbun, Which::Pocketbase])]
    servers: Vec<Which>,
    /// What to measure.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Part::Reads, Part::Writes, Part::Realtime, Part::Idle, Part::Workers])]
    parts: Vec<Part>,
    /// Rows in `posts` for the reads part.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000usize, 100_000, 1_000_000])]
    sizes: Vec<usize>,
    /// Rows in `posts` for the writes, realtime, idle and workers parts.
    #[arg(long, default_value_t = 10_000)]
    base_rows: usize,
    /// Concurrent writer connections (writes part).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 64, 256])]
    writers: Vec<usize>,
    /// SSE clients (realtime part). Each holds a socket in this process and one in the
    /// server, so the open-file hard limit bounds it.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000usize, 10_000, 20_000])]
    subscribers: Vec<usize>,
    /// Realtime part: creates published, one at a time, 100 ms apart.
    #[arg(long, default_value_t = 20)]
    events: usize,
    /// Realtime part: pause between two clients' connects (200 µs is `compare`'s; at 20k
    /// clients that overflowed the servers' accept queues).
    #[arg(long, default_value = "1ms", value_parser = util::parse_duration)]
    stagger: Duration,
    /// Idle keep-alive connections (idle part); same limit as `--subscribers`.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000usize, 50_000])]
    idle: Vec<usize>,
    /// Worker counts of PocketBun for the workers part.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 2])]
    workers: Vec<usize>,
    /// Rounds of the workers part (worker counts alternate).
    #[arg(long, default_value_t = 2)]
    worker_rounds: usize,
    /// Users seeded (each a bcrypt hash; authors of the posts).
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// CPUs for the server (generator: `--gen-cpus`, default 1). Not for the workers part.
    #[arg(long, default_value = "0")]
    server_cpus: CpuList,
    /// Keep request logging on (both servers' default). Off by default here, so a row's cost
    /// is the request's own and not the log row's.
    #[arg(long)]
    logs: bool,
    /// Keep PocketBun's fresh-read cache on. Off by default here (`--no-cache`): repeated
    /// reads would be answered from memory, whatever the table's size.
    #[arg(long)]
    cache: bool,
    /// Longest measured window: a request that takes L (alone) gets a window of 40 L, at
    /// least `--duration`, at most this.
    #[arg(long, default_value = "30s", value_parser = util::parse_duration)]
    max_window: Duration,
    /// Make the data sets under this directory and keep them (for `EXPLAIN QUERY PLAN`
    /// afterwards; a 1M-row `pb_data` is ~0.4 GB). Default: temp dirs, removed when done.
    #[arg(long)]
    keep_data: Option<PathBuf>,
    /// How long to wait for each server to answer.
    #[arg(long, default_value = "120s", value_parser = util::parse_duration)]
    startup_timeout: Duration,
    #[command(flatten)]
    load: LoadArgs,
}

/// One measurement, as printed and as written to `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct Measure {
    pub server: String,
    pub part: Part,
    /// Workload or what was varied (`list`, `create`, `fan-out`, `idle`, `view`).
    pub what: String,
    /// The varied figure: rows, writers, subscribers, connections or workers.
    pub param: usize,
    pub request: String,
    pub connections: usize,
    pub window_s: f64,
    pub responses: u64,
    /// Server CPU time per answered request (per delivery for fan-out), µs.
    pub cpu_us_per_req: Option<f64>,
    /// The same split by thread name (digits kept), µs per request, largest first.
    pub threads_us: Vec<(String, f64)>,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    pub other_cpu: Option<f64>,
    /// Idle: RSS per connection; realtime: RSS per subscribed client (KiB).
    pub rss_per_conn_kib: Option<f64>,
    pub note: String,
}

/// Clock ticks per second of `/proc` CPU times.
fn hz() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).max(1) as f64
}

/// utime + stime (ticks) of every thread of `pid` by thread id, with the thread's name.
fn thread_ticks(pid: u32) -> BTreeMap<u32, (String, u64)> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(s) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (s.find('('), s.rfind(')')) else {
            continue;
        };
        let name = s[open + 1..close].to_string();
        let f: Vec<&str> = s[close + 1..].split_whitespace().collect();
        let ticks = f.get(11).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
        out.insert(tid, (name, ticks));
    }
    out
}

/// Server CPU over a window: the process total and the split by thread name.
struct CpuSpan {
    ticks: u64,
    by_thread: Vec<(String, u64)>,
}

/// Samples the server's CPU at `start + warmup` and at `start + warmup + duration` (the
/// runner's measured window, which starts within a few ms of `start`), on its own thread.
fn sample_window(
    pid: u32,
    start: Instant,
    warmup: Duration,
    duration: Duration,
) -> std::thread::JoinHandle<Option<CpuSpan>> {
    std::thread::spawn(move || {
        let sleep_until = |t: Instant| {
            let now = Instant::now();
            if t > now {
                std::thread::sleep(t - now);
            }
        };
        sleep_until(start + warmup);
        let a = util::process_cpu_ticks(pid)?;
        let ta = thread_ticks(pid);
        sleep_until(start + warmup + duration);
        let b = util::process_cpu_ticks(pid)?;
        let tb = thread_ticks(pid);
        let mut by_name: BTreeMap<String, u64> = BTreeMap::new();
        for (tid, (name, t1)) in tb {
            let t0 = ta.get(&tid).map(|x| x.1).unwrap_or(0);
            *by_name.entry(name).or_default() += t1.saturating_sub(t0);
        }
        let mut by_thread: Vec<(String, u64)> =
            by_name.into_iter().filter(|(_, t)| *t > 0).collect();
        by_thread.sort_by_key(|x| std::cmp::Reverse(x.1));
        Some(CpuSpan {
            ticks: b.saturating_sub(a),
            by_thread,
        })
    })
}

/// Copies a directory tree (regular files and directories only).
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let ty = e.file_type()?;
        let dest = to.join(e.file_name());
        if ty.is_dir() {
            copy_dir(&e.path(), &dest)?;
        } else if ty.is_file() {
            std::fs::copy(e.path(), &dest)?;
        }
    }
    Ok(())
}

/// A data dir, removed when dropped (data sets of up to ~0.4 GB each) unless kept.
struct Scratch(PathBuf, bool);

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.1 {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The schema every data set starts from: PocketBase's own `pb_data` after `seed.rs` made
/// the superuser, the users and the (empty) collections through its Web API.
fn make_master(
    pocketbase: &Path,
    users: usize,
    logs: bool,
    timeout: Duration,
    stop: &AtomicBool,
) -> pocketbun_loadtest::Result<Scratch> {
    let dir = Scratch(server::scratch_dir("growth-master")?, false);
    let data = dir.0.join("pb_data");
    seed::superuser_upsert(pocketbase, &data)?;
    let port = server::free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let mut d = std::ffi::OsString::from("--dir=");
    d.push(&data);
    let spec = ServerSpec {
        name: "pocketbase-seed".into(),
        program: pocketbase.to_path_buf(),
        args: vec![
            "serve".into(),
            format!("--http={addr}").into(),
            d,
            "--automigrate=false".into(),
        ],
        addr: addr.parse()?,
        cpus: None,
        // None: killing it must not remove the data dir.
        dir: None,
    };
    let mut proc = ServerProcess::spawn(&spec)?;
    proc.wait_ready("/api/health", timeout, stop)?;
    let mut api = Api::new(proc.addr)?;
    let cfg = SeedConfig {
        users,
        posts: 0,
        notes: 0,
        tokens: 0,
        no_logs: !logs,
        ..SeedConfig::default()
    };
    let mut seeded = Seeded::default();
    seed::seed(&mut api, &cfg, &mut seeded, &mut |m| {
        eprintln!("[growth] schema by PocketBase: {m}")
    })?;
    drop(api);
    proc.kill();
    Ok(dir)
}

/// A copy of the master with `rows` posts inserted by SQL.
fn make_dataset(
    master: &Path,
    rows: usize,
    users: usize,
    keep: Option<&Path>,
) -> pocketbun_loadtest::Result<Scratch> {
    let dir = match keep {
        Some(k) => {
            let d = k.join(format!("posts-{rows}"));
            if d.exists() {
                return Err(format!("{} exists already", d.display()).into());
            }
            Scratch(d, true)
        }
        None => Scratch(server::scratch_dir(&format!("growth-{rows}"))?, false),
    };
    copy_dir(&master.join("pb_data"), &dir.0.join("pb_data"))?;
    let t0 = Instant::now();
    let db = rusqlite::Connection::open(dir.0.join("pb_data").join("data.db"))?;
    // Only the columns the table has: `created`/`updated` exist when the collection has
    // PocketBase's autodate fields.
    let cols: Vec<String> = db
        .prepare("SELECT name FROM pragma_table_info('posts')")?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    // The same content as `seed::post_body` (which sends it through the API).
    let mut names = vec![
        "id",
        "title",
        "body",
        "views",
        "score",
        "published",
        "author",
        "tags",
    ];
    let mut values = vec![
        "printf('p%014d', i)".to_string(),
        "'Post number ' || i".to_string(),
        "'Body of post ' || i || '. Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam.'".to_string(),
        "(i * 7919) % 1000".to_string(),
        "(i * 104729) % 1000".to_string(),
        "i % 3 != 0".to_string(),
        "printf('u%014d', i % ?2)".to_string(),
        "json_array('t' || (i % 10), 'k' || (i % 7))".to_string(),
    ];
    for c in ["created", "updated"] {
        if cols.iter().any(|x| x == c) {
            names.push(c);
            // PocketBase's datetime format: `2006-01-02 15:04:05.000Z`.
            values.push("strftime('%Y-%m-%d %H:%M:%fZ', 'now')".to_string());
        }
    }
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1) \
         INSERT INTO posts ({}) SELECT {} FROM n",
        names.join(", "),
        values.join(", ")
    );
    db.execute_batch("BEGIN")?;
    let n = db.execute(&sql, rusqlite::params![rows as i64, users.max(1) as i64])?;
    db.execute_batch("COMMIT")?;
    db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    drop(db);
    eprintln!(
        "[growth] data set of {n} posts made in {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    Ok(dir)
}

/// A server started on a copy of `data` (the copy is removed when it stops).
fn start_server(
    which: Which,
    program: &Path,
    data: &Path,
    cpus: Option<Vec<usize>>,
    extra: &[String],
    timeout: Duration,
    stop: &AtomicBool,
) -> pocketbun_loadtest::Result<ServerProcess> {
    let name = which.name();
    let dir = server::scratch_dir(name)?;
    if let Err(e) = copy_dir(&data.join("pb_data"), &dir.join("pb_data")) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e.into());
    }
    let port = server::free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let mut d = std::ffi::OsString::from("--dir=");
    d.push(dir.join("pb_data"));
    let mut args: Vec<std::ffi::OsString> =
        vec!["serve".into(), format!("--http={addr}").into(), d];
    if which == Which::Pocketbase {
        args.push("--automigrate=false".into());
    }
    args.extend(extra.iter().map(Into::into));
    let spec = ServerSpec {
        name: name.to_string(),
        program: program.to_path_buf(),
        args,
        addr: addr.parse()?,
        cpus,
        dir: Some(dir),
    };
    let mut proc = ServerProcess::spawn(&spec)?;
    let (_, took) = proc.wait_ready("/api/health", timeout, stop)?;
    eprintln!(
        "[growth] {name} pid {} ready after {:.0} ms",
        proc.pid(),
        took.as_secs_f64() * 1e3
    );
    Ok(proc)
}

/// What the read workloads need to know about a data set of `rows` posts.
fn seeded(rows: usize, users: usize) -> Seeded {
    // Views rotate over up to 10,000 ids spread over the whole table (every connection's
    // requests are prebuilt, so not all 1M).
    let step = (rows / 10_000).max(1);
    Seeded {
        post_ids: (0..rows).step_by(step).map(seed::post_id).collect(),
        user_ids: (0..users).map(seed::user_id).collect(),
        user_emails: (0..users).map(seed::user_email).collect(),
        ..Seeded::default()
    }
}

/// A read workload of the reads part.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReadKind {
    List,
    Count,
    Filtered,
    FilteredUnindexed,
    Expand,
}

impl ReadKind {
    const ALL: [ReadKind; 5] = [
        ReadKind::List,
        ReadKind::Count,
        ReadKind::Filtered,
        ReadKind::FilteredUnindexed,
        ReadKind::Expand,
    ];

    fn name(self) -> &'static str {
        match self {
            ReadKind::List => "list",
            ReadKind::Count => "count",
            ReadKind::Filtered => "filtered",
            ReadKind::FilteredUnindexed => "filtered-unindexed",
            ReadKind::Expand => "expand",
        }
    }

    fn plan(self, target: &Target, seed: &Seeded) -> pocketbun_loadtest::Result<Arc<dyn Plan>> {
        let w = match self {
            ReadKind::List => Workload::List,
            ReadKind::Filtered => Workload::Filtered,
            ReadKind::FilteredUnindexed => Workload::FilteredUnindexed,
            ReadKind::Expand => Workload::Expand,
            ReadKind::Count => {
                // The total alone: one item per page, the total counted (no skipTotal).
                let path = "/api/collections/posts/records?perPage=1";
                return Ok(Arc::new(RotatingPlan::new(
                    format!("GET {path} (with total)"),
                    vec![build_request("GET", target, path, &[], b"")],
                )));
            }
        };
        w.plan(target, Some(seed))
    }
}

/// How long one request of `plan` takes alone (second of two tries), and that it answers 2xx.
fn single_latency(addr: SocketAddr, plan: &dyn Plan) -> Result<Duration, String> {
    let mut api = Api::new(addr).map_err(|e| e.to_string())?;
    let mut took = Duration::ZERO;
    for _ in 0..2 {
        let t0 = Instant::now();
        let r = api
            .raw(&plan.sample(), false)
            .map_err(|e| format!("pre-flight request failed: {e}"))?;
        took = t0.elapsed();
        if !r.ok() {
            return Err(format!(
                "pre-flight {} → HTTP {}",
                plan.describe(),
                r.brief(200)
            ));
        }
    }
    Ok(took)
}

/// Load settings of one measurement.
struct Shape {
    connections: usize,
    duration: Duration,
    timeout: Duration,
}

/// Fits connections and window to a request's cost: a closed loop of c connections makes
/// each request wait ~c × L, so slow requests (a 1M-row scan) get few connections and a long
/// window, keeping the requests that straddle the window's edges a small share of it.
fn shape_for(
    min_window: Duration,
    max_window: Duration,
    max_connections: usize,
    min_timeout: Duration,
    single: Duration,
) -> Shape {
    let l = single.as_secs_f64().max(1e-4);
    let lo = min_window.as_secs_f64();
    let duration = Duration::from_secs_f64((40.0 * l).clamp(lo, max_window.as_secs_f64().max(lo)));
    let connections =
        ((duration.as_secs_f64() / (10.0 * l)) as usize).clamp(2, max_connections.max(2));
    let timeout = min_timeout.max(Duration::from_secs_f64(5.0 * connections as f64 * l));
    Shape {
        connections,
        duration,
        timeout,
    }
}

struct Ctx<'a> {
    a: &'a GrowthArgs,
    stop: Arc<AtomicBool>,
    out: Vec<Measure>,
}

impl Ctx<'_> {
    /// Runs `plan` against `proc` and records one row.
    #[allow(clippy::too_many_arguments)]
    fn measure(
        &mut self,
        proc: &ServerProcess,
        which: Which,
        part: Part,
        what: &str,
        param: usize,
        plan: Arc<dyn Plan>,
        shape: Shape,
        gen_cpus: Option<Vec<usize>>,
    ) -> pocketbun_loadtest::Result<()> {
        let pid = proc.pid();
        if !util::wait_process_idle(pid, 0.05, Duration::from_secs(30), &self.stop) {
            eprintln!("warning: {} still busy after 30 s", which.name());
        }
        let target = Target::parse(&format!("http://{}/", proc.addr))?;
        let mut load = self.a.load.clone();
        load.gen_cpus = gen_cpus.map(CpuList);
        let mut cfg = run_config(&load, target, Workload::Get, self.stop.clone());
        cfg.connections = shape.connections;
        cfg.duration = shape.duration;
        cfg.timeout = Some(shape.timeout);
        let label = format!("{} {what} {param}", which.name());
        let probe = util::NoiseProbe::start(&[pid]);
        let start = Instant::now();
        let sampler = sample_window(pid, start, cfg.warmup, cfg.duration);
        let res = runner::run_plan(&cfg, plan, &mut progress_printer(label.clone()));
        finish_progress();
        let span = sampler.join().ok().flatten();
        let other_cpu = probe.and_then(|p| p.finish());
        let res = res?;
        let s = &res.summary;
        let per = |ticks: u64| ticks as f64 / hz() * 1e6 / s.responses.max(1) as f64;
        let m = Measure {
            server: which.name().to_string(),
            part,
            what: what.to_string(),
            param,
            request: res.describe.clone(),
            connections: cfg.connections,
            window_s: s.seconds,
            responses: s.responses,
            cpu_us_per_req: span
                .as_ref()
                .filter(|_| s.responses > 0)
                .map(|c| per(c.ticks)),
            threads_us: span
                .map(|c| {
                    c.by_thread
                        .iter()
                        .map(|(n, t)| (n.clone(), per(*t)))
                        .collect()
                })
                .unwrap_or_default(),
            rps: s.rps,
            p50_ms: s.latency_us.p50 / 1e3,
            p99_ms: s.latency_us.p99 / 1e3,
            errors: s.errors.total,
            other_cpu,
            rss_per_conn_kib: None,
            note: String::new(),
        };
        self.push(m);
        Ok(())
    }

    fn push(&mut self, m: Measure) {
        println!("{}", row_text(&m));
        let _ = std::io::stdout().flush();
        self.out.push(m);
    }
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "-".into())
}

/// One Markdown table row per measurement.
fn row_text(m: &Measure) -> String {
    let threads: Vec<String> = m
        .threads_us
        .iter()
        .take(4)
        .map(|(n, us)| format!("{} {us:.1}", n.trim_start_matches("pocketbun-")))
        .collect();
    format!(
        "| {} | {:?} | {} | {} | {} | {:.1} | {} | {} | {} | {:.2} | {:.2} | {} | {} | {} | {} | {} |",
        m.server,
        m.part,
        m.what,
        m.param,
        m.connections,
        m.window_s,
        m.responses,
        fmt_opt(m.cpu_us_per_req, 1),
        fmt_rate(m.rps),
        m.p50_ms,
        m.p99_ms,
        m.errors,
        fmt_opt(m.other_cpu.map(|o| o * 100.0), 0),
        fmt_opt(m.rss_per_conn_kib, 2),
        threads.join(", "),
        m.note
    )
}

const HEADER: &str = "| server | part | what | param | conns | window s | responses | CPU µs/req | req/s | p50 ms | p99 ms | errors | other CPU % | RSS KiB/conn | CPU by thread, µs/req | note |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|";

pub fn cmd_growth(mut a: GrowthArgs, stop: Arc<AtomicBool>) -> pocketbun_loadtest::Result<()> {
    let pocketbun = match &a.pocketbun {
        Some(p) => p.clone(),
        None => server::sibling_binary("pocketbun")
            .ok_or("pocketbun not found next to this executable; build it or pass --pocketbun")?,
    };
    let pocketbase = resolve_pocketbase(a.pocketbase.as_ref())?;
    // Before any server is spawned, so they inherit it (a socket per client).
    let nofile = raise_nofile_limit()?;
    let mut programs = BTreeMap::new();
    for (w, p) in [
        (Which::Pocketbun, pocketbun),
        (Which::Pocketbase, pocketbase),
    ] {
        server::check_executable(&p)?;
        let p = std::fs::canonicalize(&p)?;
        eprintln!("[growth] {}: {}", w.name(), version_of(&p));
        programs.insert(w.name(), p);
    }
    if a.load.gen_cpus.is_none() {
        a.load.gen_cpus = Some("1".parse()?);
    }
    let a = a;
    let pb_extra: Vec<String> = if a.cache {
        vec![]
    } else {
        vec!["--no-cache".into()]
    };
    let server_cpus = Some(a.server_cpus.0.clone());
    let gen_cpus = a.load.gen_cpus.clone().map(|c| c.0);
    eprintln!(
        "[growth] servers on cpu {}, generator on cpu {}; request logs {}; PocketBun cache {}; open-file limit {nofile}",
        fmt_cpu_list(&a.server_cpus.0),
        gen_cpus.as_deref().map(fmt_cpu_list).unwrap_or_default(),
        if a.logs { "on" } else { "off" },
        if a.cache { "on" } else { "off (--no-cache)" },
    );
    let mut ctx = Ctx {
        a: &a,
        stop: stop.clone(),
        out: Vec::new(),
    };
    println!("{HEADER}");
    let master = make_master(
        &programs["pocketbase"],
        a.users,
        a.logs,
        a.startup_timeout,
        &stop,
    )?;
    let extra = |w: Which, workers: Option<usize>| -> Vec<String> {
        let mut v = if w == Which::Pocketbun {
            pb_extra.clone()
        } else {
            vec![]
        };
        if let Some(n) = workers {
            v.push(format!("--workers={n}"));
        }
        v
    };

    if a.parts.contains(&Part::Reads) {
        for &rows in &a.sizes {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let data = make_dataset(&master.0, rows, a.users, a.keep_data.as_deref())?;
            let seed = seeded(rows, a.users);
            for &w in &a.servers {
                let proc = start_server(
                    w,
                    &programs[w.name()],
                    &data.0,
                    server_cpus.clone(),
                    &extra(w, None),
                    a.startup_timeout,
                    &stop,
                )?;
                let target = Target::parse(&format!("http://{}/", proc.addr))?;
                for r in ReadKind::ALL {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let plan = r.plan(&target, &seed)?;
                    let single = match single_latency(proc.addr, plan.as_ref()) {
                        Ok(l) => l,
                        Err(e) => {
                            eprintln!("[growth] {} {} {rows}: not run: {e}", w.name(), r.name());
                            continue;
                        }
                    };
                    let shape = shape_for(
                        a.load.duration,
                        a.max_window,
                        a.load.connections,
                        a.load.timeout,
                        single,
                    );
                    if let Err(e) = ctx.measure(
                        &proc,
                        w,
                        Part::Reads,
                        r.name(),
                        rows,
                        plan,
                        shape,
                        gen_cpus.clone(),
                    ) {
                        eprintln!("[growth] {} {} {rows}: {e}", w.name(), r.name());
                    }
                }
            }
        }
    }

    // Every other part runs on the base data set.
    let needs_base = a.parts.iter().any(|p| {
        matches!(
            p,
            Part::Writes | Part::Realtime | Part::Idle | Part::Workers
        )
    });
    let base = if needs_base {
        Some(make_dataset(&master.0, a.base_rows, a.users, None)?)
    } else {
        None
    };
    let seed = seeded(a.base_rows, a.users);

    if let (true, Some(base)) = (a.parts.contains(&Part::Writes), &base) {
        for &w in &a.servers {
            // A fresh server (and copy) per writer count: each starts from the same table.
            for &n in &a.writers {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let proc = start_server(
                    w,
                    &programs[w.name()],
                    &base.0,
                    server_cpus.clone(),
                    &extra(w, None),
                    a.startup_timeout,
                    &stop,
                )?;
                let target = Target::parse(&format!("http://{}/", proc.addr))?;
                let plan = Workload::Create.plan(&target, Some(&seed))?;
                let shape = Shape {
                    connections: n,
                    duration: a.load.duration,
                    timeout: a.load.timeout.max(Duration::from_secs(30)),
                };
                if let Err(e) = ctx.measure(
                    &proc,
                    w,
                    Part::Writes,
                    "create",
                    n,
                    plan,
                    shape,
                    gen_cpus.clone(),
                ) {
                    eprintln!("[growth] {} create x{n}: {e}", w.name());
                }
            }
        }
    }

    if let (true, Some(base)) = (a.parts.contains(&Part::Realtime), &base) {
        let mut run = 0u64;
        for &w in &a.servers {
            for &n in &a.subscribers {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                // Sockets: one per client here, one per client in the server, plus their
                // own files; both processes are bound by the same hard limit.
                let most = (nofile as usize).saturating_sub(300);
                let clients = n.min(most);
                let proc = start_server(
                    w,
                    &programs[w.name()],
                    &base.0,
                    server_cpus.clone(),
                    &extra(w, None),
                    a.startup_timeout,
                    &stop,
                )?;
                run += 1;
                let fc = FanoutConfig {
                    addr: proc.addr,
                    sse_addrs: Vec::new(),
                    clients,
                    events: a.events,
                    interval: Duration::from_millis(100),
                    threads: gen_cpus.as_ref().map(|c| c.len()).unwrap_or(1),
                    gen_cpus: gen_cpus.clone(),
                    uring: a.load.uring,
                    setup_timeout: Duration::from_secs(180),
                    first_seq: run * 1_000_000,
                    server_pid: Some(proc.pid()),
                    stagger: a.stagger,
                };
                let probe = util::NoiseProbe::start(&[proc.pid()]);
                match run_fanout(&fc, stop.clone()) {
                    Ok(f) => {
                        let s = &f.summary;
                        let note = format!(
                            "{} of {clients} clients subscribed{}, {}/{} delivered",
                            f.subscribed,
                            if clients < n {
                                format!(" (asked {n}; open-file limit {nofile})")
                            } else {
                                String::new()
                            },
                            f.delivered,
                            f.expected
                        );
                        ctx.push(Measure {
                            server: w.name().to_string(),
                            part: Part::Realtime,
                            what: "fan-out".into(),
                            param: clients,
                            request: format!(
                                "{} SSE clients on posts/*, {} creates 100 ms apart",
                                f.subscribed, a.events
                            ),
                            connections: f.subscribed,
                            window_s: s.seconds,
                            responses: f.delivered,
                            cpu_us_per_req: f
                                .server_cpu_ticks
                                .filter(|_| f.delivered > 0)
                                .map(|t| t as f64 / hz() * 1e6 / f.delivered as f64),
                            threads_us: vec![],
                            rps: s.rps,
                            p50_ms: s.latency_us.p50 / 1e3,
                            p99_ms: s.latency_us.p99 / 1e3,
                            errors: s.errors.total,
                            other_cpu: probe.and_then(|p| p.finish()),
                            rss_per_conn_kib: f.rss_per_client_kib(),
                            note,
                        });
                    }
                    Err(e) => eprintln!("[growth] {} fan-out {clients}: {e}", w.name()),
                }
            }
        }
    }

    if let (true, Some(base)) = (a.parts.contains(&Part::Idle), &base) {
        for &w in &a.servers {
            for &n in &a.idle {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let most = (nofile as usize).saturating_sub(300);
                let conns = n.min(most);
                let proc = start_server(
                    w,
                    &programs[w.name()],
                    &base.0,
                    server_cpus.clone(),
                    &extra(w, None),
                    a.startup_timeout,
                    &stop,
                )?;
                match idle_connections(&proc, conns, &stop) {
                    Ok(r) => {
                        let mut note = format!(
                            "RSS {} → {} KiB; {}/{} sampled connections still answered",
                            r.rss_before, r.rss_after, r.alive, r.sampled
                        );
                        if conns < n {
                            note.push_str(&format!(" (asked {n}; open-file limit {nofile})"));
                        }
                        ctx.push(Measure {
                            server: w.name().to_string(),
                            part: Part::Idle,
                            what: "idle keep-alive".into(),
                            param: r.opened,
                            request: "GET /api/health once per connection, then idle".into(),
                            connections: r.opened,
                            window_s: r.open_secs,
                            responses: r.opened as u64,
                            cpu_us_per_req: None,
                            threads_us: vec![],
                            rps: 0.0,
                            p50_ms: 0.0,
                            p99_ms: 0.0,
                            errors: (conns - r.opened) as u64,
                            other_cpu: None,
                            rss_per_conn_kib: (r.opened > 0).then(|| {
                                r.rss_after.saturating_sub(r.rss_before) as f64 / r.opened as f64
                            }),
                            note,
                        });
                    }
                    Err(e) => eprintln!("[growth] {} idle {conns}: {e}", w.name()),
                }
            }
        }
    }

    if let (true, Some(base)) = (a.parts.contains(&Part::Workers), &base) {
        // Unpinned: the server and the generator float over every core.
        for round in 0..a.worker_rounds.max(1) {
            let mut order = a.workers.clone();
            if round % 2 == 1 {
                order.reverse();
            }
            for n in order {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let proc = start_server(
                    Which::Pocketbun,
                    &programs["pocketbun"],
                    &base.0,
                    None,
                    &extra(Which::Pocketbun, Some(n)),
                    a.startup_timeout,
                    &stop,
                )?;
                let target = Target::parse(&format!("http://{}/", proc.addr))?;
                for w in [Workload::View, Workload::List] {
                    let plan = w.plan(&target, Some(&seed))?;
                    let shape = Shape {
                        connections: a.load.connections,
                        duration: a.load.duration,
                        timeout: a.load.timeout,
                    };
                    if let Err(e) = ctx.measure(
                        &proc,
                        Which::Pocketbun,
                        Part::Workers,
                        w.name(),
                        n,
                        plan,
                        shape,
                        None,
                    ) {
                        eprintln!("[growth] workers {n} {}: {e}", w.name());
                    }
                }
            }
        }
    }
    drop(base);
    drop(master);

    println!("\n{HEADER}");
    for m in &ctx.out {
        println!("{}", row_text(m));
    }
    if let Some(path) = &a.load.json {
        std::fs::write(path, serde_json::to_string_pretty(&ctx.out)?)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// What [`idle_connections`] saw.
struct IdleResult {
    opened: usize,
    open_secs: f64,
    rss_before: u64,
    rss_after: u64,
    sampled: usize,
    alive: usize,
}

/// Sends one request on `stream` and reads its whole answer; true on a 2xx.
fn one_request(stream: &mut TcpStream, req: &[u8]) -> std::io::Result<bool> {
    stream.write_all(req)?;
    let mut parser = ResponseParser::new();
    parser.reset(false);
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if !buf.is_empty() {
            let (n, done) = parser
                .feed(&buf)
                .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
            buf.drain(..n);
            if done {
                return Ok((200..300).contains(&parser.status()));
            }
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Opens `n` keep-alive connections to the server, each answering one `GET /api/health`, and
/// leaves them idle: the server's RSS before and after (VmRSS, 2 s after the last one).
/// Client source addresses rotate over 127.0.0.2–17, so ephemeral ports never run out.
fn idle_connections(
    proc: &ServerProcess,
    n: usize,
    stop: &AtomicBool,
) -> pocketbun_loadtest::Result<IdleResult> {
    let pid = proc.pid();
    let target = Target::parse(&format!("http://{}/api/health", proc.addr))?;
    let req = build_request("GET", &target, "/api/health", &[], b"");
    // Warm: the first requests grow buffers and pools any connection would.
    let mut api = Api::new(proc.addr)?;
    for _ in 0..50 {
        api.raw(&req, false)?;
    }
    drop(api);
    std::thread::sleep(Duration::from_secs(2));
    let rss_before = server::proc_status_kib(pid, "VmRSS").ok_or("cannot read the server's RSS")?;
    let t0 = Instant::now();
    let mut conns: Vec<TcpStream> = Vec::with_capacity(n);
    let mut first_err = None;
    for i in 0..n {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let src = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2 + (i % 16) as u8), 0);
        let r = (|| -> std::io::Result<TcpStream> {
            let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
            s.bind(&src.into())?;
            s.connect_timeout(&proc.addr.into(), Duration::from_secs(5))?;
            let mut s: TcpStream = s.into();
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            if !one_request(&mut s, &req)? {
                return Err(std::io::Error::other("non-2xx answer"));
            }
            Ok(s)
        })();
        match r {
            Ok(s) => conns.push(s),
            Err(e) => {
                first_err.get_or_insert_with(|| format!("connection {i}: {e}"));
                break;
            }
        }
    }
    let open_secs = t0.elapsed().as_secs_f64();
    if let Some(e) = first_err {
        eprintln!("[growth] stopped opening connections: {e}");
    }
    std::thread::sleep(Duration::from_secs(2));
    let rss_after = server::proc_status_kib(pid, "VmRSS").ok_or("cannot read the server's RSS")?;
    // Are they still served? A request on 20 of them, spread over the list.
    let step = (conns.len() / 20).max(1);
    let (mut sampled, mut alive) = (0, 0);
    for s in conns.iter_mut().step_by(step) {
        sampled += 1;
        if matches!(one_request(s, &req), Ok(true)) {
            alive += 1;
        }
    }
    Ok(IdleResult {
        opened: conns.len(),
        open_secs,
        rss_before,
        rss_after,
        sampled,
        alive,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_requests_get_few_connections_and_a_long_window() {
        let (d, max, t) = (
            Duration::from_secs(5),
            Duration::from_secs(30),
            Duration::from_secs(10),
        );
        // 1 ms: the window asked for, every connection
        let s = shape_for(d, max, 64, t, Duration::from_millis(1));
        assert_eq!((s.connections, s.duration, s.timeout), (64, d, t));
        // 150 ms: 6 s window, 4 connections (each request waits ~0.6 s)
        let s = shape_for(d, max, 64, t, Duration::from_millis(150));
        assert_eq!(s.connections, 4);
        assert!((s.duration.as_secs_f64() - 6.0).abs() < 1e-6);
        // 2 s: the longest window, the fewest connections, a timeout above 2 × 2 s
        let s = shape_for(d, max, 64, t, Duration::from_secs(2));
        assert_eq!((s.connections, s.duration), (2, max));
        assert_eq!(s.timeout, Duration::from_secs(20));
    }

    #[test]
    fn thread_ticks_name_this_process_threads() {
        let me = std::process::id();
        let h = std::thread::Builder::new()
            .name("growth-spin".into())
            .spawn(|| {
                // 150 ms of this thread's own CPU time (not wall time: the machine may be
                // busy), 15 ticks at the usual 100 Hz
                let cpu = || {
                    let mut t = libc::timespec {
                        tv_sec: 0,
                        tv_nsec: 0,
                    };
                    // SAFETY: clock_gettime writes into the timespec we own.
                    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
                    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
                };
                let mut x = 0u64;
                while cpu() < Duration::from_millis(150) {
                    for _ in 0..10_000 {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    }
                }
                std::hint::black_box(x);
                thread_ticks(std::process::id())
            })
            .unwrap();
        let seen = h.join().unwrap();
        let spin = seen.values().find(|(n, _)| n == "growth-spin").unwrap();
        assert!(spin.1 >= 5, "{spin:?}");
        assert!(!thread_ticks(me).is_empty());
    }

    /// The posts made by SQL are the ones `seed.rs` sends through the API.
    #[test]
    fn dataset_rows_match_the_api_seed() {
        let master = Scratch(server::scratch_dir("growth-test").unwrap(), false);
        std::fs::create_dir_all(master.0.join("pb_data")).unwrap();
        let db = rusqlite::Connection::open(master.0.join("pb_data/data.db")).unwrap();
        db.execute_batch(
            "CREATE TABLE posts (id TEXT PRIMARY KEY, title TEXT, body TEXT, views NUMERIC, \
             score NUMERIC, published BOOLEAN, author TEXT, tags JSON, created TEXT, updated TEXT)",
        )
        .unwrap();
        drop(db);
        let data = make_dataset(&master.0, 1000, 7, None).unwrap();
        let db = rusqlite::Connection::open(data.0.join("pb_data/data.db")).unwrap();
        let n: i64 = db
            .query_row("SELECT COUNT(*) FROM posts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1000);
        for i in [0usize, 1, 3, 999] {
            let want = seed::post_body(i, 7);
            let id = seed::post_id(i);
            let text = |col: &str| -> String {
                db.query_row(
                    &format!("SELECT {col} FROM posts WHERE id = ?1"),
                    [&id],
                    |r| r.get(0),
                )
                .unwrap()
            };
            let int = |col: &str| -> i64 {
                db.query_row(
                    &format!("SELECT {col} FROM posts WHERE id = ?1"),
                    [&id],
                    |r| r.get(0),
                )
                .unwrap()
            };
            assert_eq!(text("id"), want["id"]);
            assert_eq!(text("title"), want["title"]);
            assert_eq!(text("body"), want["body"]);
            assert_eq!(int("views"), want["views"]);
            assert_eq!(int("score"), want["score"]);
            assert_eq!(int("published") != 0, want["published"]);
            assert_eq!(text("author"), want["author"]);
            let (tags, created) = (text("tags"), text("created"));
            let tags: serde_json::Value = serde_json::from_str(&tags).unwrap();
            assert_eq!(tags, want["tags"]);
            // PocketBase's format: 2006-01-02 15:04:05.000Z
            let b = created.as_bytes();
            assert_eq!(b.len(), 24, "{created}");
            assert_eq!((b[10], b[19], b[23]), (b' ', b'.', b'Z'), "{created}");
        }
        let root = data.0.clone();
        drop(data);
        assert!(!root.exists(), "a data set is removed when dropped");
    }
}
