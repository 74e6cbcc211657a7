//! `loadtest cluster`: a PocketBun cluster on loopback, seeded like `compare`, then four
//! measurements.
//!
//! The cluster is the one `examples/cluster/run.py` starts (moto as the S3 replica store,
//! nats-server, one primary with `--replicate` and `--nats`, `--replicas N` read replicas and
//! the round-robin `front.py`); this command runs that script, reads the nodes' addresses and
//! pids from the JSON line it prints when ready, and stops it (it stops its children in
//! order) at the end, on error and on ctrl-c. The data is seeded through the primary.
//!
//! 1. **Read throughput.** A read workload (`view`, `list`: `runner.rs`, the same request
//!    bytes as `compare`) on the primary alone, then spread over the first 1..=N replicas:
//!    one runner per replica with its share of the connections and generator threads, the
//!    stats merged (= connections dealt round-robin over the replicas). Meanwhile creates go
//!    through the front at a fixed, modest rate (`--write-rate`), with a user token so the
//!    replicas that forward them do not take the anonymous readers for the writer (their
//!    read-your-writes memory is keyed by client IP and `Authorization`).
//! 2. **The single writer.** Closed-loop creates (`create`, `-c` connections) on the primary:
//!    its create/s with Litestream and NATS attached, and the S3 PUTs that come with them.
//! 3. **Replication lag under write load.** Creates on the primary at fixed rates
//!    (`--lag-rates`); for about `--lag-samples` writes a second, the time from the create's
//!    2xx until a plain `GET` on a replica (no TXID header or cookie, so no read-your-writes)
//!    finds the record, polling every `--lag-poll` (5 ms). The S3 PUTs moto logged meanwhile
//!    give Litestream's upload rate.
//! 4. **Realtime across nodes.** SSE clients on the replicas (`realtime.rs`,
//!    `--realtime-clients` per replica), creates on the primary one at a time, latency from
//!    just before the create is sent to its event parsed at each client.
//!
//! Every process (the generator, moto, NATS, Litestream, the nodes, the Python front) shares
//! this machine's cores: the figures are what the cluster does on this box, not what N
//! machines would; BENCHMARKS.md derives the per-node model from them.

use crate::{run_config, LoadArgs};
use clap::{Args, ValueEnum};
use pocketbun_loadtest::api::Api;
use pocketbun_loadtest::realtime::{raise_nofile_limit, run_fanout, FanoutConfig};
use pocketbun_loadtest::report::render_table;
use pocketbun_loadtest::runner;
use pocketbun_loadtest::seed::{self, SeedConfig, Seeded, WRITES};
use pocketbun_loadtest::server::{self, ServerProcess, ServerSpec};
use pocketbun_loadtest::stats::{Stats, Summary};
use pocketbun_loadtest::target::Target;
use pocketbun_loadtest::util::{self, fmt_latency_ns, fmt_rate, parse_duration};
use pocketbun_loadtest::workload::Workload;
use pocketbun_loadtest::Result;
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `loadtest cluster` measures (`--phases`).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterPhase {
    Reads,
    Writer,
    Lag,
    Realtime,
}

#[derive(Args)]
pub struct ClusterArgs {
    /// pocketbun binary. Default: `pocketbun` next to this executable.
    #[arg(long)]
    pocketbun: Option<PathBuf>,
    /// The cluster script. Default: examples/cluster/run.py of this workspace.
    #[arg(long)]
    run_py: Option<PathBuf>,
    /// Python 3 that runs it.
    #[arg(long, default_value = "python3")]
    python: PathBuf,
    /// Read replicas (reads are measured on the primary, then on 1..=N replicas).
    #[arg(long, default_value_t = 2)]
    replicas: usize,
    /// What to measure (comma separated). Default: all.
    #[arg(long, value_enum, value_delimiter = ',')]
    phases: Vec<ClusterPhase>,
    /// Read workloads (comma separated).
    #[arg(short, long, value_enum, value_delimiter = ',', default_values = ["view", "list"])]
    workloads: Vec<Workload>,
    /// Creates per second sent through the front while reads are measured.
    #[arg(long, default_value_t = 20.0)]
    write_rate: f64,
    /// Create rates (per second, on the primary) the replication lag is measured at.
    #[arg(long, value_delimiter = ',', default_values_t = [50.0, 200.0])]
    lag_rates: Vec<f64>,
    /// How long each lag rate runs.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    lag_duration: Duration,
    /// Writes a second whose visibility on a replica is timed (spread over the replicas).
    #[arg(long, default_value_t = 10.0)]
    lag_samples: f64,
    /// How often a replica is polled for a sampled write.
    #[arg(long, default_value = "5ms", value_parser = parse_duration)]
    lag_poll: Duration,
    /// Realtime: SSE clients on each replica, subscribed to posts/*.
    #[arg(long, default_value_t = 500)]
    realtime_clients: usize,
    /// Realtime: posts created on the primary (events), one at a time.
    #[arg(long, default_value_t = 40)]
    realtime_events: usize,
    /// Realtime: pause between creates.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    realtime_interval: Duration,
    /// Seeded users (each a bcrypt hash).
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// Seeded posts.
    #[arg(long, default_value_t = 10_000)]
    posts: usize,
    /// Seeded private notes.
    #[arg(long, default_value_t = 1_000)]
    notes: usize,
    /// How long the idle cluster's S3 requests are counted (after seeding; 0 = skip).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    idle: Duration,
    /// How long the whole cluster may take to start (a replica's first restore included).
    #[arg(long, default_value = "180s", value_parser = parse_duration)]
    startup_timeout: Duration,
    #[command(flatten)]
    load: LoadArgs,
}

/// The cluster, as started by run.py. Dropping it stops everything.
struct Cluster {
    proc: ServerProcess,
    /// run.py's `--dir`: the nodes' data and logs.
    base: PathBuf,
    front: SocketAddr,
    primary: SocketAddr,
    replicas: Vec<SocketAddr>,
    /// Node name (`moto`, `nats`, `primary`, `replica1`, …, `front`) → pid.
    pids: HashMap<String, u32>,
}

impl Cluster {
    fn start(a: &ClusterArgs, pocketbun: &Path, run_py: &Path, stop: &AtomicBool) -> Result<Self> {
        let dir = server::scratch_dir("cluster")?;
        let base = dir.join("cluster");
        let port = server::free_port()?;
        let front: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let mut args: Vec<std::ffi::OsString> = vec![run_py.into()];
        for (k, v) in [
            ("--pocketbun", pocketbun.as_os_str()),
            ("--dir", base.as_os_str()),
        ] {
            let mut s = std::ffi::OsString::from(format!("{k}="));
            s.push(v);
            args.push(s);
        }
        args.push(format!("--port={port}").into());
        args.push(format!("--replicas={}", a.replicas).into());
        args.push(format!("--superuser={}:{}", seed::SU_EMAIL, seed::PASSWORD).into());
        let spec = ServerSpec {
            name: "cluster".into(),
            program: a.python.clone(),
            args,
            addr: front,
            cpus: None,
            dir: Some(dir),
        };
        eprintln!(
            "[cluster] {} {}: moto, nats-server, a primary, {} replica(s), the front",
            a.python.display(),
            run_py.display(),
            a.replicas
        );
        let mut proc = ServerProcess::spawn(&spec)?;
        // The front starts last, once every node answers: its health means all is up.
        let (_, took) = proc.wait_ready("/api/health", a.startup_timeout, stop)?;
        // ...and run.py prints its ready line right after that
        let t0 = Instant::now();
        let ready = loop {
            let log = std::fs::read_to_string(proc.log_path()).unwrap_or_default();
            let line = log
                .lines()
                .filter(|l| l.starts_with("{\"ready\""))
                .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok());
            if let Some(v) = line {
                break v;
            }
            if t0.elapsed() > Duration::from_secs(15) || stop.load(Ordering::Relaxed) {
                return Err(format!(
                    "run.py printed no ready line; its output:\n{}",
                    proc.log_tail(20)
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let nodes: Vec<SocketAddr> = ready["nodes"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter_map(|u| u.as_str()?.strip_prefix("http://")?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        if nodes.len() != a.replicas + 1 {
            return Err(format!("run.py's ready line lists {} nodes", nodes.len()).into());
        }
        let pids = ready["pids"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_u64()? as u32)))
                    .collect()
            })
            .unwrap_or_default();
        eprintln!(
            "[cluster] up after {:.1} s: front {front}, primary {}, replicas {}",
            took.as_secs_f64(),
            nodes[0],
            nodes[1..]
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(Cluster {
            proc,
            base,
            front,
            primary: nodes[0],
            replicas: nodes[1..].to_vec(),
            pids,
        })
    }

    /// run.py and every process under it (Litestream included): the test's own CPU.
    fn all_pids(&self) -> Vec<u32> {
        let mut out = vec![self.proc.pid()];
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // `pid (comm) state ppid …`: comm may hold spaces, so split after the last ')'
            let ppid = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().nth(1)?.parse().ok());
            if let Some(ppid) = ppid {
                children.entry(ppid).or_default().push(pid);
            }
        }
        let mut i = 0;
        while i < out.len() {
            if let Some(c) = children.get(&out[i]) {
                out.extend(c);
            }
            i += 1;
        }
        out
    }

    fn pid_of(&self, node: &str) -> Option<u32> {
        self.pids.get(node).copied()
    }

    /// The pids of the nodes at `addrs`.
    fn node_pids(&self, addrs: &[SocketAddr]) -> Vec<u32> {
        addrs
            .iter()
            .filter_map(|a| {
                if *a == self.primary {
                    self.pid_of("primary")
                } else {
                    let i = self.replicas.iter().position(|r| r == a)?;
                    self.pid_of(&format!("replica{}", i + 1))
                }
            })
            .collect()
    }

    /// S3 requests moto has answered so far, from its request log
    /// (`127.0.0.1 - - [date] "PUT /bucket/key HTTP/1.1" 200 -`).
    fn s3(&self) -> Option<S3Counts> {
        let log = std::fs::read_to_string(self.base.join("logs").join("moto.log")).ok()?;
        let mut c = S3Counts::default();
        for l in log.lines() {
            if l.contains("\"PUT /") {
                c.put += 1.0;
            } else if l.contains("\"GET /") && l.contains("list-type=") {
                c.list += 1.0;
            } else if l.contains("\"GET /") {
                c.get += 1.0;
            } else if l.contains("\"DELETE /") || l.contains("\"POST /") {
                // Litestream's retention deletes objects (one DeleteObjects POST per batch)
                c.delete += 1.0;
            }
        }
        (c.put > 0.0).then_some(c)
    }

    /// SIGTERM to run.py, which stops the front, the replicas, the primary, NATS and moto in
    /// turn; SIGKILL after 30 s (its children then get SIGTERM from PR_SET_PDEATHSIG).
    fn stop(mut self) {
        self.proc.stop_within(Duration::from_secs(30));
    }
}

/// S3 requests by kind (moto's log), or their rate per second.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct S3Counts {
    pub put: f64,
    /// ListObjectsV2 (a GET with `list-type=`): the replicas' followers poll with them.
    pub list: f64,
    pub get: f64,
    pub delete: f64,
}

impl S3Counts {
    /// Requests per second between two readings `secs` apart.
    fn rate(a: Option<S3Counts>, b: Option<S3Counts>, secs: f64) -> Option<S3Counts> {
        let (a, b) = (a?, b?);
        let r = |x: f64, y: f64| (y - x).max(0.0) / secs.max(1e-9);
        Some(S3Counts {
            put: r(a.put, b.put),
            list: r(a.list, b.list),
            get: r(a.get, b.get),
            delete: r(a.delete, b.delete),
        })
    }
}

/// Creates sent at a fixed rate (open loop: each is due at `k / rate` s whatever the
/// previous ones took), on a few blocking connections.
struct Writes {
    addr: SocketAddr,
    rate: f64,
    duration: Duration,
    /// Sent as `Authorization` (None = anonymous).
    token: Option<String>,
    /// First character of the record ids (`w` reads phase, `l` lag phase) + 14 digits.
    prefix: char,
    seq0: u64,
    /// Every `sample_every`-th write's (id, 2xx time) goes to `samples[i % len]`.
    sample_every: u64,
    samples: Vec<mpsc::Sender<(String, Instant)>>,
}

struct WriteLoad {
    handles: Vec<std::thread::JoinHandle<Stats>>,
    start: Instant,
}

impl Writes {
    fn start(self, stop: Arc<AtomicBool>) -> WriteLoad {
        // each connection at ≤ 5 creates/s: a 200 ms budget per create (through the Python
        // front on this loaded box a create's p99 was 150-260 ms; 1-20 ms on the primary)
        let threads = ((self.rate / 5.0).ceil() as usize).clamp(1, 32);
        let start = Instant::now();
        if !(self.rate.is_finite() && self.rate > 0.0) {
            // no writes asked for
            return WriteLoad {
                handles: Vec::new(),
                start,
            };
        }
        let end = start + self.duration;
        let me = Arc::new(self);
        let handles = (0..threads)
            .map(|j| {
                let (me, stop) = (me.clone(), stop.clone());
                std::thread::spawn(move || me.writer(j as u64, threads as u64, start, end, &stop))
            })
            .collect();
        WriteLoad { handles, start }
    }

    fn writer(
        &self,
        j: u64,
        threads: u64,
        start: Instant,
        end: Instant,
        stop: &AtomicBool,
    ) -> Stats {
        let mut stats = Stats::new();
        let Ok(mut api) = Api::new(self.addr) else {
            stats.connect_errors += 1;
            return stats;
        };
        let path = format!("/api/collections/{WRITES}/records");
        let auth = self.token.as_deref().unwrap_or("");
        let mut k = j;
        loop {
            let due = start + Duration::from_secs_f64(k as f64 / self.rate);
            if due >= end || stop.load(Ordering::Relaxed) {
                break;
            }
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            let id = format!("{}{:014}", self.prefix, self.seq0 + k);
            let body = serde_json::json!({
                "id": &id, "title": "cluster write", "views": k % 1000, "published": true,
            });
            let t0 = Instant::now();
            match api.call("POST", &path, Some(auth), Some(&body)) {
                Ok(r) => {
                    let acked = Instant::now();
                    stats.record(acked - t0, r.status);
                    if r.ok() && !self.samples.is_empty() && k % self.sample_every == 0 {
                        let n = (k / self.sample_every) as usize % self.samples.len();
                        let _ = self.samples[n].send((id, acked));
                    }
                }
                Err(_) => stats.io_errors += 1,
            }
            k += threads;
        }
        stats
    }
}

impl WriteLoad {
    /// Waits for the writers (they stop at the end of their duration); their merged stats.
    fn finish(self) -> Summary {
        let mut stats = Stats::new();
        for h in self.handles {
            match h.join() {
                Ok(s) => stats.merge(&s),
                Err(_) => stats.io_errors += 1,
            }
        }
        stats.summary(self.start.elapsed())
    }
}

/// Polls one replica for the sampled writes until each is visible; their lag in its stats
/// (a write still missing after `give_up` counts as a timeout), and each sample as
/// (2xx time, lag).
fn lag_poller(
    addr: SocketAddr,
    rx: mpsc::Receiver<(String, Instant)>,
    poll: Duration,
    give_up: Duration,
    stop: Arc<AtomicBool>,
) -> (Stats, Vec<(Instant, Duration)>) {
    let mut stats = Stats::new();
    let mut series = Vec::new();
    let Ok(mut api) = Api::new(addr) else {
        stats.connect_errors += 1;
        return (stats, series);
    };
    let mut pending: Vec<(String, Instant)> = Vec::new();
    let mut senders_done = false;
    loop {
        loop {
            match rx.try_recv() {
                Ok(x) => pending.push(x),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    senders_done = true;
                    break;
                }
            }
        }
        if (senders_done && pending.is_empty()) || stop.load(Ordering::Relaxed) {
            break;
        }
        let tick = Instant::now();
        pending.retain(|(id, acked)| {
            let path = format!("/api/collections/{WRITES}/records/{id}");
            // Lag = until this GET was sent: the record was not there one poll earlier.
            let sent = Instant::now();
            match api.call("GET", &path, Some(""), None) {
                Ok(r) if r.ok() => {
                    let lag = sent.saturating_duration_since(*acked);
                    stats.record(lag, 200);
                    series.push((*acked, lag));
                    false
                }
                Ok(r) if r.status == 404 && acked.elapsed() < give_up => true,
                Ok(r) if r.status == 404 => {
                    stats.timeouts += 1;
                    false
                }
                Ok(r) => {
                    stats.non_2xx += 1;
                    if let Some(c) = stats.status.get_mut(r.status as usize) {
                        *c += 1;
                    }
                    false
                }
                Err(_) => {
                    stats.io_errors += 1;
                    acked.elapsed() < give_up
                }
            }
        });
        std::thread::sleep(poll.saturating_sub(tick.elapsed()));
    }
    (stats, series)
}

/// Read throughput on one set of nodes.
#[derive(Clone, Debug, Serialize)]
pub struct ReadRow {
    pub workload: String,
    pub request: String,
    /// `primary`, `1 replica`, `2 replicas`, …
    pub nodes: String,
    pub summary: Summary,
    /// req/s ÷ the primary's req/s on the same workload.
    pub vs_primary: Option<f64>,
    /// The creates sent through the front meanwhile.
    pub writes: Summary,
    /// S3 requests per second during the run (moto's log).
    pub s3_per_s: Option<S3Counts>,
    /// Share of the machine's CPU other processes (not the cluster, not this) used.
    pub other_cpu: Option<f64>,
    /// Peak RSS (VmHWM, reset before the run) of the busiest node read, KiB.
    pub peak_rss_kib: Option<u64>,
}

/// The single writer at full speed: closed-loop creates on the primary.
#[derive(Clone, Debug, Serialize)]
pub struct WriterRow {
    pub request: String,
    pub summary: Summary,
    /// S3 requests per second during the run (moto's log).
    pub s3_per_s: Option<S3Counts>,
    pub other_cpu: Option<f64>,
    pub peak_rss_kib: Option<u64>,
}

/// Replication lag at one create rate.
#[derive(Clone, Debug, Serialize)]
pub struct LagRow {
    /// Creates per second asked for (on the primary).
    pub rate: f64,
    /// The creates: achieved rate (`rps`), latency, errors.
    pub writes: Summary,
    /// Lag of the sampled writes (2xx on the primary → visible on a replica); timeouts =
    /// never seen within 30 s.
    pub lag: Summary,
    /// S3 requests per second during the run (moto's log).
    pub s3_per_s: Option<S3Counts>,
    pub other_cpu: Option<f64>,
    /// Median lag (ms) of the samples written in the first and in the last quarter of the
    /// run: a replica that keeps up shows the same figure twice, one falling behind a
    /// growing one.
    pub lag_p50_first_quarter_ms: Option<f64>,
    pub lag_p50_last_quarter_ms: Option<f64>,
    /// Every sample: (seconds from the first write to its 2xx, lag in seconds).
    pub series: Vec<(f64, f64)>,
}

/// Realtime delivery across nodes.
#[derive(Clone, Debug, Serialize)]
pub struct RealtimeRow {
    pub clients_per_replica: usize,
    pub subscribed: usize,
    pub events: usize,
    pub expected: u64,
    pub delivered: u64,
    /// Delivery latency (create sent on the primary → event parsed at a replica's client).
    pub summary: Summary,
}

/// What `--json` writes.
#[derive(Clone, Debug, Serialize)]
pub struct ClusterReport {
    pub pocketbun: String,
    pub replicas: usize,
    pub cpus: usize,
    pub connections: usize,
    pub generator_threads: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub write_rate: f64,
    /// S3 requests per second of the idle cluster (Litestream on the primary, the replicas'
    /// followers polling).
    pub idle_s3_per_s: Option<S3Counts>,
    pub reads: Vec<ReadRow>,
    pub writer: Option<WriterRow>,
    pub lag: Vec<LagRow>,
    pub realtime: Option<RealtimeRow>,
    pub notes: Vec<String>,
}

fn run_py_default() -> Option<PathBuf> {
    // target/release/loadtest → the workspace; else where this crate was built from
    let exe = std::env::current_exe().ok()?;
    let from_exe = exe
        .parent()?
        .parent()?
        .parent()?
        .join("examples/cluster/run.py");
    let from_build = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/cluster/run.py");
    [from_exe, from_build].into_iter().find(|p| p.is_file())
}

pub fn cmd_cluster(a: ClusterArgs, stop: Arc<AtomicBool>) -> Result<()> {
    let pocketbun = match &a.pocketbun {
        Some(p) => p.clone(),
        None => server::sibling_binary("pocketbun")
            .ok_or("pocketbun not found next to this executable; build it or pass --pocketbun")?,
    };
    server::check_executable(&pocketbun)?;
    let pocketbun = std::fs::canonicalize(&pocketbun)?;
    let run_py = match &a.run_py {
        Some(p) => p.clone(),
        None => run_py_default().ok_or("examples/cluster/run.py not found; pass --run-py")?,
    };
    let run_py = std::fs::canonicalize(&run_py)?;
    if a.replicas == 0 {
        return Err("--replicas must be at least 1".into());
    }
    let phases: Vec<ClusterPhase> = if a.phases.is_empty() {
        vec![
            ClusterPhase::Reads,
            ClusterPhase::Writer,
            ClusterPhase::Lag,
            ClusterPhase::Realtime,
        ]
    } else {
        a.phases.clone()
    };
    // before the cluster is spawned, so its nodes inherit it (a socket per SSE client)
    raise_nofile_limit()?;
    let cluster = Cluster::start(&a, &pocketbun, &run_py, &stop)?;
    let res = measure(&a, &phases, &cluster, &pocketbun, &stop);
    eprintln!("[cluster] stopping");
    cluster.stop();
    let report = res?;
    print_report(&report);
    if let Some(path) = &a.load.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn measure(
    a: &ClusterArgs,
    phases: &[ClusterPhase],
    cluster: &Cluster,
    pocketbun: &Path,
    stop: &Arc<AtomicBool>,
) -> Result<ClusterReport> {
    let mut api = Api::new(cluster.primary)?;
    let mut seeded = Seeded::default();
    let cfg = SeedConfig {
        users: a.users,
        posts: a.posts,
        notes: a.notes,
        ..SeedConfig::default()
    };
    seed::seed(&mut api, &cfg, &mut seeded, &mut |m| {
        eprintln!("[cluster] seed (primary): {m}")
    })?;
    let seeded = Arc::new(seeded);
    wait_replicas(cluster, &seeded, stop)?;

    let threads = a.load.threads.unwrap_or_else(|| match &a.load.gen_cpus {
        Some(c) => c.0.len(),
        None => pocketbun_loadtest::affinity::available_cpus(),
    });
    let mut report = ClusterReport {
        pocketbun: version_of(pocketbun),
        replicas: cluster.replicas.len(),
        cpus: pocketbun_loadtest::affinity::available_cpus(),
        connections: a.load.connections,
        generator_threads: threads.max(1),
        warmup_s: a.load.warmup.as_secs_f64(),
        duration_s: a.load.duration.as_secs_f64(),
        write_rate: a.write_rate,
        idle_s3_per_s: None,
        reads: Vec::new(),
        writer: None,
        lag: Vec::new(),
        realtime: None,
        notes: seeded.notes.clone(),
    };
    if !a.idle.is_zero() {
        settle(cluster, stop);
        eprintln!(
            "[idle] counting S3 requests for {:.0} s",
            a.idle.as_secs_f64()
        );
        let (s3_0, t0) = (cluster.s3(), Instant::now());
        std::thread::sleep(a.idle);
        report.idle_s3_per_s = S3Counts::rate(s3_0, cluster.s3(), t0.elapsed().as_secs_f64());
    }
    let mut seq = 0u64;
    if phases.contains(&ClusterPhase::Reads) {
        for &w in &a.workloads {
            let mut base = None;
            for k in 0..=cluster.replicas.len() {
                if stop.load(Ordering::Relaxed) {
                    return Err("interrupted".into());
                }
                seq += 1;
                let mut row = measure_reads(a, cluster, &seeded, w, k, threads, seq, stop)?;
                if k == 0 {
                    base = Some(row.summary.rps).filter(|b| *b > 0.0);
                }
                row.vs_primary = base.map(|b| row.summary.rps / b);
                report.reads.push(row);
            }
        }
    }
    if phases.contains(&ClusterPhase::Writer) && !stop.load(Ordering::Relaxed) {
        report.writer = Some(measure_writer(a, cluster, &seeded, threads, stop)?);
    }
    if phases.contains(&ClusterPhase::Lag) {
        for &rate in &a.lag_rates {
            if stop.load(Ordering::Relaxed) {
                return Err("interrupted".into());
            }
            seq += 1;
            report.lag.push(measure_lag(a, cluster, rate, seq, stop)?);
        }
    }
    if phases.contains(&ClusterPhase::Realtime) && !stop.load(Ordering::Relaxed) {
        report.realtime = Some(measure_realtime(a, cluster, threads, stop)?);
    }
    Ok(report)
}

fn version_of(program: &Path) -> String {
    std::process::Command::new(program)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| program.display().to_string())
}

/// Waits until every replica serves the last seeded post (its copy caught up with seeding).
fn wait_replicas(cluster: &Cluster, seeded: &Seeded, stop: &AtomicBool) -> Result<()> {
    let Some(last) = seeded.post_ids.last() else {
        return Ok(());
    };
    let path = format!("/api/collections/posts/records/{last}");
    let t0 = Instant::now();
    for &r in &cluster.replicas {
        let mut api = Api::new(r)?;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Err("interrupted".into());
            }
            if api.call("GET", &path, Some(""), None).is_ok_and(|x| x.ok()) {
                break;
            }
            if t0.elapsed() > Duration::from_secs(120) {
                return Err(
                    format!("replica {r} has not caught up with seeding after 120 s").into(),
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    eprintln!(
        "[cluster] replicas caught up with seeding {:.1} s after it ended",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Lets the nodes finish what the previous run queued (a checkpoint, Litestream's uploads),
/// and until every replica has caught up with the primary: a marker record created on the
/// primary is readable on each (up to 5 minutes), so a phase never starts on a backlog.
fn settle(cluster: &Cluster, stop: &AtomicBool) {
    static MARKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    for pid in cluster.node_pids(&[vec![cluster.primary], cluster.replicas.clone()].concat()) {
        util::wait_process_idle(pid, 0.05, Duration::from_secs(15), stop);
    }
    let id = format!("m{:014}", MARKS.fetch_add(1, Ordering::Relaxed));
    let path = format!("/api/collections/{WRITES}/records");
    let body = serde_json::json!({"id": &id, "title": "catch-up marker"});
    let created = Api::new(cluster.primary)
        .and_then(|mut api| api.call("POST", &path, Some(""), Some(&body)))
        .is_ok_and(|r| r.ok());
    if !created {
        eprintln!("warning: cannot create the catch-up marker on the primary");
        return;
    }
    let t0 = Instant::now();
    for &r in &cluster.replicas {
        let Ok(mut api) = Api::new(r) else { continue };
        while !stop.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(300) {
            if api
                .call("GET", &format!("{path}/{id}"), Some(""), None)
                .is_ok_and(|x| x.ok())
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    eprintln!(
        "[settle] replicas caught up with the primary in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
}

fn nodes_label(k: usize) -> String {
    match k {
        0 => "primary".into(),
        1 => "1 replica".into(),
        n => format!("{n} replicas"),
    }
}

#[allow(clippy::too_many_arguments)]
fn measure_reads(
    a: &ClusterArgs,
    cluster: &Cluster,
    seeded: &Arc<Seeded>,
    w: Workload,
    k: usize,
    threads: usize,
    seq: u64,
    stop: &Arc<AtomicBool>,
) -> Result<ReadRow> {
    let targets: Vec<SocketAddr> = if k == 0 {
        vec![cluster.primary]
    } else {
        cluster.replicas[..k].to_vec()
    };
    let label = format!("{} · {}", w.name(), nodes_label(k));
    settle(cluster, stop);
    let pids = cluster.node_pids(&targets);
    for &p in &pids {
        let _ = server::reset_peak_rss(p);
    }
    eprintln!(
        "[{label}] {} connections over {} node(s), {} creates/s through the front",
        a.load.connections,
        targets.len(),
        a.write_rate
    );
    let probe = util::NoiseProbe::start(&cluster.all_pids());
    let s3_0 = cluster.s3();
    let t0 = Instant::now();
    let writes = Writes {
        addr: cluster.front,
        rate: a.write_rate,
        duration: a.load.warmup + a.load.duration,
        token: seeded.user_tokens.first().cloned(),
        prefix: 'w',
        seq0: seq * 10_000_000_000,
        sample_every: 1,
        samples: Vec::new(),
    }
    .start(stop.clone());
    // One runner per node, each with its share of connections and threads, in parallel.
    let n = targets.len();
    let mut handles = Vec::new();
    for (i, addr) in targets.iter().enumerate() {
        let target = Target::parse(&format!("http://{addr}/"))?;
        let mut cfg = run_config(&a.load, target, w, stop.clone());
        cfg.connections = ((a.load.connections + n - 1 - i) / n).max(1);
        cfg.threads = (threads / n).max(1);
        cfg.seed = Some(seeded.clone());
        handles.push(std::thread::spawn(move || runner::run(&cfg, &mut |_| {})));
    }
    let mut stats = Stats::new();
    let mut describe = String::new();
    let mut seconds: f64 = 0.0;
    let mut first_err = None;
    for h in handles {
        match h.join().map_err(|_| "runner panicked")? {
            Ok(r) => {
                stats.merge(&r.stats);
                seconds = seconds.max(r.summary.seconds);
                describe = r.describe;
            }
            Err(e) => first_err = first_err.or(Some(e)),
        }
    }
    let writes = writes.finish();
    let elapsed = t0.elapsed().as_secs_f64();
    let other_cpu = probe.and_then(|p| p.finish());
    if let Some(e) = first_err {
        return Err(e);
    }
    let summary = stats.summary(Duration::from_secs_f64(seconds));
    let s3_per_s = S3Counts::rate(s3_0, cluster.s3(), elapsed);
    eprintln!(
        "[{label}] {} req/s, p99 {}, {} errors; creates {:.0}/s, {} errors{}",
        fmt_rate(summary.rps),
        us(summary.latency_us.p99),
        summary.errors.total,
        writes.rps,
        writes.errors.total,
        other_cpu
            .map(|o| format!(", other CPU {:.0}%", o * 100.0))
            .unwrap_or_default()
    );
    Ok(ReadRow {
        workload: w.name().to_string(),
        request: describe,
        nodes: nodes_label(k),
        summary,
        vs_primary: None,
        writes,
        s3_per_s,
        other_cpu,
        peak_rss_kib: pids.iter().filter_map(|&p| server::peak_rss_kib(p)).max(),
    })
}

/// Closed-loop creates on the primary (`-c` connections): what the one writer does with
/// Litestream and NATS attached, and the S3 PUT rate that comes with it.
fn measure_writer(
    a: &ClusterArgs,
    cluster: &Cluster,
    seeded: &Arc<Seeded>,
    threads: usize,
    stop: &Arc<AtomicBool>,
) -> Result<WriterRow> {
    settle(cluster, stop);
    eprintln!(
        "[writer] create on the primary, {} connections (closed loop)",
        a.load.connections
    );
    let pid = cluster.pid_of("primary");
    if let Some(p) = pid {
        let _ = server::reset_peak_rss(p);
    }
    let probe = util::NoiseProbe::start(&cluster.all_pids());
    let s3_0 = cluster.s3();
    let t0 = Instant::now();
    let target = Target::parse(&format!("http://{}/", cluster.primary))?;
    let mut cfg = run_config(&a.load, target, Workload::Create, stop.clone());
    cfg.threads = threads.max(1);
    cfg.seed = Some(seeded.clone());
    let r = runner::run(&cfg, &mut |_| {})?;
    let elapsed = t0.elapsed().as_secs_f64();
    let other_cpu = probe.and_then(|p| p.finish());
    let s3_per_s = S3Counts::rate(s3_0, cluster.s3(), elapsed);
    eprintln!(
        "[writer] {} creates/s, p99 {}, {} errors",
        fmt_rate(r.summary.rps),
        us(r.summary.latency_us.p99),
        r.summary.errors.total
    );
    Ok(WriterRow {
        request: r.describe,
        summary: r.summary,
        s3_per_s,
        other_cpu,
        peak_rss_kib: pid.and_then(server::peak_rss_kib),
    })
}

fn measure_lag(
    a: &ClusterArgs,
    cluster: &Cluster,
    rate: f64,
    seq: u64,
    stop: &Arc<AtomicBool>,
) -> Result<LagRow> {
    if rate.is_nan() || rate <= 0.0 {
        return Err(format!("--lag-rates: {rate} is not a rate").into());
    }
    settle(cluster, stop);
    let sample_every = ((rate / a.lag_samples.max(0.001)).round() as u64).max(1);
    eprintln!(
        "[lag @ {rate}/s] creates on the primary for {:.0} s, every {sample_every}th timed on a replica",
        a.lag_duration.as_secs_f64()
    );
    let probe = util::NoiseProbe::start(&cluster.all_pids());
    let s3_0 = cluster.s3();
    let t0 = Instant::now();
    let mut senders = Vec::new();
    let mut pollers = Vec::new();
    for &r in &cluster.replicas {
        let (tx, rx) = mpsc::channel();
        senders.push(tx);
        let (poll, stop) = (a.lag_poll, stop.clone());
        pollers.push(std::thread::spawn(move || {
            lag_poller(r, rx, poll, Duration::from_secs(30), stop)
        }));
    }
    let writes = Writes {
        addr: cluster.primary,
        rate,
        duration: a.lag_duration,
        token: None,
        prefix: 'l',
        seq0: seq * 10_000_000_000,
        sample_every,
        samples: senders,
    }
    .start(stop.clone())
    .finish();
    let write_secs = t0.elapsed().as_secs_f64();
    let s3_1 = cluster.s3();
    let mut lag = Stats::new();
    let mut series = Vec::new();
    for p in pollers {
        let (st, se) = p.join().map_err(|_| "lag poller panicked")?;
        lag.merge(&st);
        series.extend(
            se.into_iter()
                .map(|(at, l)| (at.duration_since(t0).as_secs_f64(), l.as_secs_f64())),
        );
    }
    series.sort_by(|a, b| a.0.total_cmp(&b.0));
    let quarter = a.lag_duration.as_secs_f64() / 4.0;
    let median_ms = |keep: &dyn Fn(f64) -> bool| {
        let mut v: Vec<f64> = series.iter().filter(|x| keep(x.0)).map(|x| x.1).collect();
        v.sort_by(f64::total_cmp);
        (!v.is_empty()).then(|| v[v.len() / 2] * 1e3)
    };
    let lag_p50_first_quarter_ms = median_ms(&|t| t < quarter);
    let lag_p50_last_quarter_ms = median_ms(&|t| t >= 3.0 * quarter);
    let other_cpu = probe.and_then(|p| p.finish());
    let lag = lag.summary(Duration::from_secs_f64(write_secs));
    let s3_per_s = S3Counts::rate(s3_0, s3_1, write_secs);
    eprintln!(
        "[lag @ {rate}/s] {:.0} creates/s ({} errors); lag p50 {} p99 {} over {} samples, {} missed",
        writes.rps,
        writes.errors.total,
        us(lag.latency_us.p50),
        us(lag.latency_us.p99),
        lag.responses,
        lag.errors.total
    );
    Ok(LagRow {
        rate,
        writes,
        lag,
        s3_per_s,
        other_cpu,
        lag_p50_first_quarter_ms,
        lag_p50_last_quarter_ms,
        series,
    })
}

fn measure_realtime(
    a: &ClusterArgs,
    cluster: &Cluster,
    threads: usize,
    stop: &Arc<AtomicBool>,
) -> Result<RealtimeRow> {
    settle(cluster, stop);
    let clients = a.realtime_clients * cluster.replicas.len();
    eprintln!(
        "[realtime] {clients} SSE clients on {} replica(s), {} creates on the primary {} ms apart",
        cluster.replicas.len(),
        a.realtime_events,
        a.realtime_interval.as_millis()
    );
    let fc = FanoutConfig {
        addr: cluster.primary,
        sse_addrs: cluster.replicas.clone(),
        clients,
        events: a.realtime_events,
        interval: a.realtime_interval,
        threads,
        gen_cpus: a.load.gen_cpus.clone().map(|c| c.0),
        uring: a.load.uring,
        setup_timeout: Duration::from_secs(180),
        first_seq: 1_000_000,
        server_pid: cluster.pid_of("replica1"),
        stagger: Duration::from_micros(200),
    };
    let f = run_fanout(&fc, stop.clone())?;
    eprintln!(
        "[realtime] {}/{} delivered, p50 {} p99 {}",
        f.delivered,
        f.expected,
        us(f.summary.latency_us.p50),
        us(f.summary.latency_us.p99)
    );
    Ok(RealtimeRow {
        clients_per_replica: a.realtime_clients,
        subscribed: f.subscribed,
        events: a.realtime_events,
        expected: f.expected,
        delivered: f.delivered,
        summary: f.summary,
    })
}

fn us(v: f64) -> String {
    fmt_latency_ns((v * 1e3) as u64)
}

fn pct(x: Option<f64>) -> String {
    x.map(|x| format!("{:.0}%", x * 100.0))
        .unwrap_or_else(|| "-".into())
}

fn rate(x: Option<f64>) -> String {
    x.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into())
}

fn print_report(r: &ClusterReport) {
    println!();
    println!("pocketbun: {}", r.pocketbun);
    println!(
        "cluster on loopback: moto (S3), nats-server, a primary, {} replica(s), the Python front; \
         everything unpinned on {} CPU(s)",
        r.replicas, r.cpus
    );
    if let Some(c) = &r.idle_s3_per_s {
        println!(
            "\nidle cluster, S3 requests/s: PUT {:.2}, LIST {:.2}, GET {:.2}, DELETE {:.2}",
            c.put, c.list, c.get, c.delete
        );
    }
    if !r.reads.is_empty() {
        println!(
            "\nread throughput: {} connections, {} generator thread(s), {}s warm-up + {}s measured; \
             {} creates/s through the front meanwhile",
            r.connections, r.generator_threads, r.warmup_s, r.duration_s, r.write_rate
        );
        let header = [
            "workload",
            "nodes read",
            "req/s",
            "p50",
            "p99",
            "max",
            "errors",
            "vs primary",
            "creates/s",
            "create p99",
            "S3 PUT/s",
            "S3 LIST/s",
            "peak RSS",
            "other CPU",
        ];
        let mut rows = Vec::new();
        let mut last = None;
        for x in &r.reads {
            if last.is_some() && last != Some(&x.workload) {
                rows.push(None);
            }
            last = Some(&x.workload);
            let s = &x.summary;
            rows.push(Some(vec![
                x.workload.clone(),
                x.nodes.clone(),
                fmt_rate(s.rps),
                us(s.latency_us.p50),
                us(s.latency_us.p99),
                us(s.latency_us.max),
                s.errors.total.to_string(),
                x.vs_primary
                    .map(|v| format!("{v:.2}×"))
                    .unwrap_or_else(|| "-".into()),
                format!("{:.0}", x.writes.rps),
                us(x.writes.latency_us.p99),
                rate(x.s3_per_s.map(|c| c.put)),
                rate(x.s3_per_s.map(|c| c.list)),
                x.peak_rss_kib
                    .map(util::fmt_kib)
                    .unwrap_or_else(|| "-".into()),
                pct(x.other_cpu),
            ]));
        }
        print!("{}", render_table(&header, &rows, 2));
    }
    if let Some(x) = &r.writer {
        println!(
            "\nthe single writer: {} on the primary, {} connections, closed loop",
            x.request, r.connections
        );
        let header = [
            "creates/s",
            "p50",
            "p99",
            "max",
            "errors",
            "S3 PUT/s",
            "S3 LIST/s",
            "peak RSS",
            "other CPU",
        ];
        let s = &x.summary;
        let rows = vec![Some(vec![
            fmt_rate(s.rps),
            us(s.latency_us.p50),
            us(s.latency_us.p99),
            us(s.latency_us.max),
            s.errors.total.to_string(),
            rate(x.s3_per_s.map(|c| c.put)),
            rate(x.s3_per_s.map(|c| c.list)),
            x.peak_rss_kib
                .map(util::fmt_kib)
                .unwrap_or_else(|| "-".into()),
            pct(x.other_cpu),
        ])];
        print!("{}", render_table(&header, &rows, 0));
    }
    if !r.lag.is_empty() {
        println!(
            "\nreplication lag: creates on the primary at a fixed rate; sampled writes timed from \
             their 2xx until a plain GET on a replica finds them"
        );
        let header = [
            "creates/s",
            "achieved",
            "create p50",
            "create p99",
            "errors",
            "samples",
            "lag p50",
            "lag p90",
            "lag p99",
            "lag max",
            "p50 1st/4th qtr",
            "missed",
            "S3 PUT/s",
            "S3 LIST/s",
            "other CPU",
        ];
        let rows: Vec<Option<Vec<String>>> = r
            .lag
            .iter()
            .map(|x| {
                let (w, l) = (&x.writes, &x.lag);
                Some(vec![
                    format!("{}", x.rate),
                    format!("{:.1}", w.rps),
                    us(w.latency_us.p50),
                    us(w.latency_us.p99),
                    w.errors.total.to_string(),
                    l.responses.to_string(),
                    us(l.latency_us.p50),
                    us(l.latency_us.p90),
                    us(l.latency_us.p99),
                    us(l.latency_us.max),
                    match (x.lag_p50_first_quarter_ms, x.lag_p50_last_quarter_ms) {
                        (Some(f), Some(l)) => format!("{} / {}", us(f * 1e3), us(l * 1e3)),
                        _ => "-".into(),
                    },
                    l.errors.total.to_string(),
                    rate(x.s3_per_s.map(|c| c.put)),
                    rate(x.s3_per_s.map(|c| c.list)),
                    pct(x.other_cpu),
                ])
            })
            .collect();
        print!("{}", render_table(&header, &rows, 0));
    }
    if let Some(x) = &r.realtime {
        println!(
            "\nrealtime across nodes: SSE clients on the replicas, creates on the primary; latency \
             = create sent → event parsed"
        );
        let header = [
            "SSE clients",
            "events",
            "delivered",
            "p50",
            "p90",
            "p99",
            "max",
            "errors",
        ];
        let s = &x.summary;
        let rows = vec![Some(vec![
            format!("{} ({}/replica)", x.subscribed, x.clients_per_replica),
            x.events.to_string(),
            format!("{}/{}", x.delivered, x.expected),
            us(s.latency_us.p50),
            us(s.latency_us.p90),
            us(s.latency_us.p99),
            us(s.latency_us.max),
            s.errors.total.to_string(),
        ])];
        print!("{}", render_table(&header, &rows, 1));
    }
    if !r.notes.is_empty() {
        println!("notes:");
        for n in &r.notes {
            println!("  {n}");
        }
    }
}
