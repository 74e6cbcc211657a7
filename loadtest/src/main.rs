//! `loadtest` — PocketBun's HTTP load generator. See loadtest/README.md.

mod cluster;
mod compare;
mod growth;

use clap::{Args, Parser, Subcommand};
use pocketbun_loadtest::affinity::{self, fmt_cpu_list, CpuList};
use pocketbun_loadtest::report::{Meta, Report, Row};
use pocketbun_loadtest::rt::UringMode;
use pocketbun_loadtest::runner::{self, Phase, Progress, RunConfig, RunResult};
use pocketbun_loadtest::seed;
use pocketbun_loadtest::server::{self, ServerProcess, ServerSpec};
use pocketbun_loadtest::target::Target;
use pocketbun_loadtest::util::{self, fmt_rate, parse_duration};
use pocketbun_loadtest::workload::Workload;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "loadtest",
    version,
    about = "HTTP/1.1 load generator for PocketBun (loopback only)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one workload against an already running server.
    Run(RunArgs),
    /// Start loadtest-hello, pocketbun (and optionally PocketBase) one after
    /// the other, load `GET /api/health` on each, print one table.
    HealthVsHello(HvhArgs),
    /// Start PocketBun and PocketBase, seed both identically through the Web
    /// API, run every workload on both alternately, print one table with the
    /// ratio per workload. Pinned (servers cpu 0, generator cpu 1) by default.
    Compare(compare::CompareArgs),
    /// Start PocketBun, seed it, and run a long paced mix of reads, writes,
    /// uploads, logins and realtime clients; report errors, lost writes,
    /// missed realtime events and RSS over time. Exit 1 if anything failed.
    Soak(SoakArgs),
    /// Start a cluster on loopback with examples/cluster/run.py (moto, nats-server, a
    /// primary, N read replicas, the front), seed it, then measure read throughput on the
    /// primary and on 1..=N replicas (creates through the front meanwhile), replication lag
    /// under write load and realtime delivery across nodes; one table each.
    Cluster(cluster::ClusterArgs),
    /// How each server's cost grows: server CPU time per request for lists, counts, filters
    /// and expands at 10k/100k/1M rows, creates from 1/64/256 writers, realtime fan-out,
    /// RSS per idle keep-alive connection, and PocketBun's reads with 1 and 2 workers.
    Growth(growth::GrowthArgs),
}

#[derive(Args)]
struct SoakArgs {
    /// pocketbun binary. Default: next to this executable.
    #[arg(long)]
    pocketbun: Option<PathBuf>,
    /// How long to soak, e.g. 30m, 60s.
    #[arg(short, long, default_value = "30m", value_parser = parse_duration)]
    duration: Duration,
    /// RSS after this much of the run is the baseline the end is compared with. Default: a
    /// third of the run (SQLite's page caches fill with the growing log database for the first
    /// ~6 minutes at 150 requests/s; a baseline taken before that reads as growth).
    #[arg(long, value_parser = parse_duration)]
    warmup: Option<Duration>,
    /// Requests per second, all client threads together (a soak, not a stress test).
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Client threads, one keep-alive connection each.
    #[arg(short, long, default_value_t = 8)]
    threads: usize,
    /// SSE clients subscribed to every create.
    #[arg(long, default_value_t = 20)]
    realtime_clients: usize,
    /// Seeded users (each a bcrypt hash).
    #[arg(long, default_value_t = 20)]
    users: usize,
    /// Seeded posts.
    #[arg(long, default_value_t = 2_000)]
    posts: usize,
    /// Bytes of each uploaded file.
    #[arg(long, default_value_t = 16 * 1024)]
    upload_bytes: usize,
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    startup_timeout: Duration,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct LoadArgs {
    /// Concurrent keep-alive connections (one request in flight on each).
    #[arg(short, long, default_value_t = 64)]
    connections: usize,
    /// Measured duration (after warm-up), e.g. 10s, 500ms, 1m.
    #[arg(short, long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Warm-up before measuring (load is applied, nothing is recorded).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// Generator threads (each a monoio runtime). Default: one per --gen-cpus
    /// entry, else one per available CPU.
    #[arg(short, long)]
    threads: Option<usize>,
    /// Pin generator threads to these CPUs, e.g. `1` or `2-3`.
    #[arg(long)]
    gen_cpus: Option<CpuList>,
    /// Per-request timeout (counted as an error, connection re-opened); 0 = none.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// io_uring setup flags for generator threads (falls back to plain, then epoll).
    #[arg(long, value_enum, default_value_t = UringMode::Defer)]
    uring: UringMode,
    /// Before each measurement wait up to this long for the machine to be
    /// quiet (<10% CPU busy); other processes on 2 cores skew results badly.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    wait_idle: Duration,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    /// Target, e.g. http://127.0.0.1:8090/api/health (loopback only).
    #[arg(short, long)]
    url: String,
    /// Workload. `get` requests the URL as given; named workloads use the
    /// URL's origin and pick their own paths.
    #[arg(short, long, value_enum, default_value_t = Workload::Get)]
    workload: Workload,
    /// Server process id: report its peak RSS (VmHWM) after the run.
    #[arg(long)]
    pid: Option<u32>,
    /// Seed the running server first, as `compare` does (the workloads other than `get` and
    /// `health` need it). Its data dir needs the harness's superuser, made before `serve`:
    /// `pocketbun superuser upsert loadtest@example.com loadtest-pass-1 --dir DIR`.
    #[arg(long)]
    seed: bool,
    /// With `--seed`: posts to seed.
    #[arg(long, default_value_t = 1_000)]
    seed_posts: usize,
    /// With `--seed`: users to seed (each a bcrypt hash).
    #[arg(long, default_value_t = 20)]
    seed_users: usize,
    /// With `--seed`: turn request logs off (`logs.maxDays=0`).
    #[arg(long)]
    logs_off: bool,
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Args)]
struct HvhArgs {
    /// pocketbun binary (run as `serve --http=127.0.0.1:PORT --dir=TMP`).
    #[arg(long)]
    pocketbun: PathBuf,
    /// Real PocketBase binary, for comparison (e.g. target/pocketbase-venv-0.40.6/bin/pocketbase).
    #[arg(long)]
    pocketbase: Option<PathBuf>,
    /// loadtest-hello binary. Default: next to this executable.
    #[arg(long)]
    hello: Option<PathBuf>,
    /// Pin every spawned server to these CPUs, e.g. `0`.
    #[arg(long)]
    server_cpus: Option<CpuList>,
    /// Measure every server this many times (interleaved, fresh process each
    /// time) and report the median round; damps noise from other processes.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// How long to wait for each server to answer.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    startup_timeout: Duration,
    #[command(flatten)]
    load: LoadArgs,
}

fn main() {
    let cli = Cli::parse();
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second ctrl-c exits at once (children die via PDEATHSIG).
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone());
        let _ = signal_hook::flag::register(sig, stop.clone());
    }
    let res = match cli.cmd {
        Cmd::Run(a) => cmd_run(a, stop.clone()),
        Cmd::HealthVsHello(a) => cmd_hvh(a, stop.clone()),
        Cmd::Compare(a) => compare::cmd_compare(a, stop.clone()),
        Cmd::Soak(a) => cmd_soak(a, stop.clone()),
        Cmd::Cluster(a) => cluster::cmd_cluster(a, stop.clone()),
        Cmd::Growth(a) => growth::cmd_growth(a, stop.clone()),
    };
    match res {
        Ok(()) if stop.load(Ordering::Relaxed) => {
            eprintln!("interrupted");
            std::process::exit(130);
        }
        Ok(()) => {}
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(if stop.load(Ordering::Relaxed) { 130 } else { 1 });
        }
    }
}

fn run_config(
    load: &LoadArgs,
    target: Target,
    workload: Workload,
    stop: Arc<AtomicBool>,
) -> RunConfig {
    let threads = load.threads.unwrap_or_else(|| match &load.gen_cpus {
        Some(c) => c.0.len(),
        None => affinity::available_cpus(),
    });
    RunConfig {
        target,
        workload,
        connections: load.connections,
        threads: threads.max(1),
        warmup: load.warmup,
        duration: load.duration,
        gen_cpus: load.gen_cpus.clone().map(|c| c.0),
        timeout: (!load.timeout.is_zero()).then_some(load.timeout),
        uring: load.uring,
        stop,
        seed: None,
    }
}

/// Checks that nobody else is eating the CPUs; waits if asked to, warns if busy.
fn quiet_check(load: &LoadArgs, stop: &AtomicBool) {
    let busy = if load.wait_idle.is_zero() {
        util::machine_busy(Duration::from_millis(500))
    } else {
        util::wait_until_quiet(0.10, load.wait_idle, stop)
    };
    if let Some(b) = busy.filter(|b| *b >= 0.10) {
        eprintln!(
            "warning: machine is {:.0}% busy before the run (other processes); numbers will be noisy",
            b * 100.0
        );
    }
}

/// Prints progress to stderr: one updating line on a terminal, else a line per tick.
fn progress_printer(label: String) -> impl FnMut(&Progress) {
    let tty = std::io::stderr().is_terminal();
    move |p: &Progress| {
        let phase = match p.phase {
            Phase::Warmup => "warm-up",
            Phase::Measure => "measuring",
            Phase::Drain => "draining",
        };
        let msg = format!(
            "[{label}] {phase} {:.0}/{:.0}s  {} req/s",
            p.elapsed.as_secs_f64(),
            p.total.as_secs_f64(),
            fmt_rate(p.rps)
        );
        let mut e = std::io::stderr().lock();
        if tty {
            let _ = write!(e, "\r\x1b[K{msg}");
        } else {
            let _ = writeln!(e, "{msg}");
        }
        let _ = e.flush();
    }
}

fn finish_progress() {
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[K");
    }
}

fn one_liner(name: &str, r: &RunResult) -> String {
    let s = &r.summary;
    format!(
        "[{name}] {} req/s over {:.1}s, {} responses, {} errors, driver {}",
        fmt_rate(s.rps),
        s.seconds,
        s.responses,
        s.errors.total,
        r.drivers.first().copied().unwrap_or("?")
    )
}

fn meta(cfg: &RunConfig, server_cpus: Option<&[usize]>, drivers: Vec<String>) -> Meta {
    Meta {
        connections: cfg.connections,
        threads: cfg.threads.min(cfg.connections),
        warmup_s: cfg.warmup.as_secs_f64(),
        duration_s: cfg.duration.as_secs_f64(),
        gen_cpus: cfg.gen_cpus.as_deref().map(fmt_cpu_list),
        server_cpus: server_cpus.map(fmt_cpu_list),
        drivers,
    }
}

fn print_report(report: &Report, json: Option<&PathBuf>) -> pocketbun_loadtest::Result<()> {
    let m = &report.meta;
    println!(
        "{} connections, {} generator threads{}, {}s warm-up + {}s measured{}",
        m.connections,
        m.threads,
        m.gen_cpus
            .as_ref()
            .map(|c| format!(" on cpu {c}"))
            .unwrap_or_default(),
        m.warmup_s,
        m.duration_s,
        m.server_cpus
            .as_ref()
            .map(|c| format!(", servers on cpu {c}"))
            .unwrap_or_default(),
    );
    print!("{}", report.table());
    let rounds = report.rounds_notes();
    if !rounds.is_empty() {
        println!("rounds (median shown):\n{rounds}");
    }
    let notes = report.error_notes();
    if !notes.is_empty() {
        println!("errors:\n{notes}");
    }
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_string_pretty(report)?)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn cmd_run(a: RunArgs, stop: Arc<AtomicBool>) -> pocketbun_loadtest::Result<()> {
    let target = Target::parse(&a.url)?;
    let mut cfg = run_config(&a.load, target.clone(), a.workload, stop);
    if a.seed {
        let mut api = pocketbun_loadtest::api::Api::new(target.addr)?;
        let mut seeded = seed::Seeded::default();
        let seed_cfg = seed::SeedConfig {
            users: a.seed_users,
            posts: a.seed_posts,
            notes: 0,
            tokens: a.seed_users.min(20),
            no_logs: a.logs_off,
            ..seed::SeedConfig::default()
        };
        seed::seed(&mut api, &seed_cfg, &mut seeded, &mut |m| {
            eprintln!("[seed] {m}")
        })?;
        cfg.seed = Some(Arc::new(seeded));
    }
    let label = target.url();
    eprintln!(
        "{} {} with {} connections on {} threads",
        a.workload.name(),
        label,
        cfg.connections,
        cfg.threads
    );
    quiet_check(&a.load, &cfg.stop);
    let probe = util::NoiseProbe::start(a.pid.as_slice());
    let res = runner::run(&cfg, &mut progress_printer(a.workload.name().to_string()))?;
    let other_cpu = probe.and_then(|p| p.finish());
    finish_progress();
    let rss = a.pid.and_then(server::peak_rss_kib);
    if a.pid.is_some() && rss.is_none() {
        eprintln!("warning: cannot read /proc/{}/status", a.pid.unwrap_or(0));
    }
    let mut drivers: Vec<String> = res.drivers.iter().map(|d| d.to_string()).collect();
    drivers.dedup();
    let report = Report {
        meta: meta(&cfg, None, drivers),
        rows: vec![Row {
            name: label,
            request: res.describe.clone(),
            summary: res.summary.clone(),
            peak_rss_kib: rss,
            ratio: None,
            other_cpu,
            rounds_rps: vec![res.summary.rps],
        }],
    };
    print_report(&report, a.load.json.as_ref())
}

fn cmd_hvh(a: HvhArgs, stop: Arc<AtomicBool>) -> pocketbun_loadtest::Result<()> {
    let hello = match &a.hello {
        Some(p) => p.clone(),
        None => server::sibling_binary("loadtest-hello")
            .ok_or("loadtest-hello not found next to this executable; build it or pass --hello")?,
    };
    let mut entries: Vec<(&str, PathBuf, Vec<&str>)> = vec![
        ("hello", hello, vec![]),
        ("pocketbun", a.pocketbun.clone(), vec!["serve"]),
    ];
    if let Some(pb) = &a.pocketbase {
        entries.push((
            "pocketbase",
            pb.clone(),
            vec!["serve", "--automigrate=false"],
        ));
    }
    for (_, p, _) in entries.iter_mut() {
        server::check_executable(p)?;
        // Servers run inside their scratch dir: make relative paths absolute.
        *p = std::fs::canonicalize(&*p)?;
    }
    let mut runs: Vec<Vec<Row>> = vec![Vec::new(); entries.len()];
    let mut failures = Vec::new();
    let mut drivers = Vec::new();
    let mut last_cfg = None;
    'rounds: for round in 1..=a.rounds.max(1) {
        if a.rounds > 1 {
            eprintln!("--- round {round}/{}", a.rounds);
        }
        for (i, (name, program, extra)) in entries.iter().enumerate() {
            if stop.load(Ordering::Relaxed) {
                break 'rounds;
            }
            if failures.contains(name) {
                continue;
            }
            match measure_server(&a, name, program.clone(), extra, stop.clone()) {
                Ok((row, cfg, res)) => {
                    eprintln!("{}", one_liner(name, &res));
                    drivers.extend(res.drivers.iter().map(|d| d.to_string()));
                    runs[i].push(row);
                    last_cfg = Some(cfg);
                }
                Err(e) => {
                    finish_progress();
                    eprintln!("[{name}] FAILED: {e}");
                    failures.push(*name);
                }
            }
            // Let sockets in TIME_WAIT and the killed process settle.
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    // One row per server: its median round by req/s.
    let mut rows = Vec::new();
    for mut r in runs.into_iter().filter(|r| !r.is_empty()) {
        r.sort_by(|x, y| x.summary.rps.total_cmp(&y.summary.rps));
        let all: Vec<f64> = r.iter().map(|x| x.summary.rps).collect();
        let mut row = r.swap_remove(r.len() / 2);
        row.rounds_rps = all;
        rows.push(row);
    }
    drivers.sort();
    drivers.dedup();
    if let Some(cfg) = last_cfg {
        let mut report = Report {
            meta: meta(
                &cfg,
                a.server_cpus.as_ref().map(|c| c.0.as_slice()),
                drivers,
            ),
            rows,
        };
        report.set_ratios("hello");
        println!();
        print_report(&report, a.load.json.as_ref())?;
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("failed: {}", failures.join(", ")).into())
    }
}

fn measure_server(
    a: &HvhArgs,
    name: &str,
    program: PathBuf,
    extra: &[&str],
    stop: Arc<AtomicBool>,
) -> pocketbun_loadtest::Result<(Row, RunConfig, RunResult)> {
    let port = server::free_port()?;
    let dir = server::scratch_dir(name)?;
    let addr = format!("127.0.0.1:{port}");
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    if name == "hello" {
        args.push("--addr".into());
        args.push(addr.clone().into());
    } else {
        args.push(extra[0].into());
        args.push(format!("--http={addr}").into());
        let mut d = std::ffi::OsString::from("--dir=");
        d.push(dir.join("pb_data"));
        args.push(d);
        args.extend(extra[1..].iter().map(Into::into));
    }
    let spec = ServerSpec {
        name: name.to_string(),
        program: program.clone(),
        args,
        addr: addr.parse()?,
        cpus: a.server_cpus.clone().map(|c| c.0),
        dir: Some(dir),
    };
    eprintln!(
        "[{name}] starting {}{}",
        program.display(),
        a.server_cpus
            .as_ref()
            .map(|c| format!(" on cpu {}", fmt_cpu_list(&c.0)))
            .unwrap_or_default()
    );
    let mut proc = ServerProcess::spawn(&spec)?;
    let (code, took) = proc.wait_ready("/api/health", a.startup_timeout, &stop)?;
    eprintln!(
        "[{name}] pid {} answered GET /api/health with {code} after {:.0} ms",
        proc.pid(),
        took.as_secs_f64() * 1e3
    );
    let target = Target::parse(&format!("http://{addr}/api/health"))?;
    let cfg = run_config(&a.load, target, Workload::Health, stop);
    quiet_check(&a.load, &cfg.stop);
    let probe = util::NoiseProbe::start(&[proc.pid()]);
    let res = runner::run(&cfg, &mut progress_printer(name.to_string()))?;
    let other_cpu = probe.and_then(|p| p.finish());
    finish_progress();
    let rss = proc.peak_rss_kib();
    proc.kill();
    let row = Row {
        name: name.to_string(),
        request: res.describe.clone(),
        summary: res.summary.clone(),
        peak_rss_kib: rss,
        ratio: None,
        other_cpu,
        rounds_rps: vec![res.summary.rps],
    };
    Ok((row, cfg, res))
}

fn cmd_soak(a: SoakArgs, stop: Arc<AtomicBool>) -> pocketbun_loadtest::Result<()> {
    let program = match a.pocketbun {
        Some(p) => p,
        None => server::sibling_binary("pocketbun")
            .ok_or("pocketbun not found next to this executable; build it or pass --pocketbun")?,
    };
    server::check_executable(&program)?;
    let cfg = pocketbun_loadtest::soak::SoakConfig {
        duration: a.duration,
        warmup: a.warmup.unwrap_or(a.duration / 3).min(a.duration / 2),
        rate: a.rate,
        threads: a.threads,
        realtime_clients: a.realtime_clients,
        seed: pocketbun_loadtest::seed::SeedConfig {
            users: a.users,
            posts: a.posts,
            notes: 200,
            tokens: a.users.min(20),
            ..Default::default()
        },
        startup_timeout: a.startup_timeout,
        upload_bytes: a.upload_bytes,
    };
    let report = pocketbun_loadtest::soak::run(&std::fs::canonicalize(&program)?, &cfg, stop)?;
    print!("{}", report.text());
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    if !report.passed() {
        return Err("the soak failed".into());
    }
    Ok(())
}
