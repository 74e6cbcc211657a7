//! Spreads N connections over T generator threads (one monoio runtime each),
//! runs warm-up + measurement, reports live progress, merges the stats.

use crate::affinity;
use crate::client::{run_connection, LiveCounter, Schedule, ThreadCtx};
use crate::stats::{Stats, Summary};
use crate::target::Target;
use crate::workload::{Plan, Workload};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

/// Everything needed for one measurement.
#[derive(Clone)]
pub struct RunConfig {
    pub target: Target,
    pub workload: Workload,
    pub connections: usize,
    pub threads: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Pin generator thread `i` to `gen_cpus[i % len]`.
    pub gen_cpus: Option<Vec<usize>>,
    /// Per-request timeout; `None` = wait forever (until the run's grace period).
    pub timeout: Option<Duration>,
    /// io_uring setup flags for the generator threads.
    pub uring: crate::rt::UringMode,
    /// Raised by ctrl-c: stops the run early.
    pub stop: Arc<AtomicBool>,
    /// What was seeded on the target (needed by the API workloads).
    pub seed: Option<Arc<crate::seed::Seeded>>,
}

/// Which phase a progress tick belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Warmup,
    Measure,
    Drain,
}

/// A once-per-interval progress snapshot.
#[derive(Clone, Debug)]
pub struct Progress {
    pub phase: Phase,
    /// Seconds into the current phase / its length.
    pub elapsed: Duration,
    pub total: Duration,
    /// Responses per second over the last interval (all phases).
    pub rps: f64,
}

/// Result of [`run`].
pub struct RunResult {
    pub stats: Stats,
    pub summary: Summary,
    pub describe: String,
    /// I/O driver each generator thread got (`io_uring` or `epoll`).
    pub drivers: Vec<&'static str>,
    /// True when ctrl-c cut the run short.
    pub interrupted: bool,
}

/// How long after the end in-flight requests may still finish.
fn grace(cfg: &RunConfig) -> Duration {
    cfg.timeout
        .unwrap_or(Duration::from_secs(2))
        .min(Duration::from_secs(5))
}

/// Runs `cfg`, calling `progress` about once a second from the calling thread.
pub fn run(cfg: &RunConfig, progress: &mut dyn FnMut(&Progress)) -> crate::Result<RunResult> {
    let plan: Arc<dyn Plan> = cfg.workload.plan(&cfg.target, cfg.seed.as_deref())?;
    run_plan(cfg, plan, progress)
}

/// Like [`run`], with a plan built by the caller (`cfg.workload` is then ignored): requests
/// no named workload makes, e.g. `loadtest growth`'s count and sampled views.
pub fn run_plan(
    cfg: &RunConfig,
    plan: Arc<dyn Plan>,
    progress: &mut dyn FnMut(&Progress),
) -> crate::Result<RunResult> {
    if cfg.connections == 0 {
        return Err("need at least one connection".into());
    }
    let threads = cfg.threads.clamp(1, cfg.connections);
    let sync = Arc::new((Barrier::new(threads + 1), OnceLock::<Schedule>::new()));
    let mut handles = Vec::with_capacity(threads);
    let mut lives = Vec::with_capacity(threads);
    for t in 0..threads {
        let live = Arc::new(LiveCounter::default());
        lives.push(live.clone());
        let conns: Vec<usize> = (t..cfg.connections).step_by(threads).collect();
        let cpu = cfg.gen_cpus.as_ref().map(|c| c[t % c.len()]);
        let (sync, plan, cfg2) = (sync.clone(), plan.clone(), cfg.clone());
        let h = std::thread::Builder::new()
            .name(format!("gen-{t}"))
            .spawn(move || generator_thread(cfg2, plan, conns, cpu, live, sync))?;
        handles.push(h);
    }
    // All runtimes are built: fix the clock and release the threads.
    sync.0.wait();
    let start = Instant::now();
    let schedule = Schedule {
        start,
        measure_start: start + cfg.warmup,
        end: start + cfg.warmup + cfg.duration,
    };
    let _ = sync.1.set(schedule);
    sync.0.wait();

    let tick = Duration::from_secs(1);
    let mut last_t = start;
    let mut last_n = 0u64;
    let mut next_tick = start + tick;
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(20));
        let now = Instant::now();
        if now < next_tick {
            continue;
        }
        next_tick += tick;
        let n: u64 = lives.iter().map(|l| l.0.load(Ordering::Relaxed)).sum();
        let rps = (n - last_n) as f64 / (now - last_t).as_secs_f64();
        let last_tick_start = last_t;
        (last_t, last_n) = (now, n);
        // Label the interval by its midpoint, so the tick that lands right on
        // a phase boundary reads "warm-up 1/1s", not "measuring 0/10s".
        let mid = now - (now - last_tick_start) / 2;
        let (phase, elapsed, total) = if mid < schedule.measure_start {
            (Phase::Warmup, now - start, cfg.warmup)
        } else if mid < schedule.end {
            (
                Phase::Measure,
                now.saturating_duration_since(schedule.measure_start),
                cfg.duration,
            )
        } else {
            (
                Phase::Drain,
                now.saturating_duration_since(schedule.end),
                grace(cfg),
            )
        };
        let elapsed = elapsed.min(total);
        progress(&Progress {
            phase,
            elapsed,
            total,
            rps,
        });
    }
    let mut stats = Stats::new();
    let mut drivers = Vec::new();
    for h in handles {
        let (s, driver) = h.join().map_err(|_| "generator thread panicked")??;
        stats.merge(&s);
        drivers.push(driver);
    }
    let interrupted = cfg.stop.load(Ordering::Relaxed);
    // The window actually measured (shorter when interrupted).
    let window_end = Instant::now().min(schedule.end);
    let window = window_end.saturating_duration_since(schedule.measure_start);
    Ok(RunResult {
        summary: stats.summary(window),
        stats,
        describe: plan.describe(),
        drivers,
        interrupted,
    })
}

type Sync2 = Arc<(Barrier, OnceLock<Schedule>)>;

fn generator_thread(
    cfg: RunConfig,
    plan: Arc<dyn Plan>,
    conns: Vec<usize>,
    cpu: Option<usize>,
    live: Arc<LiveCounter>,
    sync: Sync2,
) -> crate::Result<(Stats, &'static str)> {
    let pinned = cpu.map(|c| affinity::pin_current_thread(&[c]));
    let rt = crate::rt::build(cfg.uring, 1024);
    // Always take part in both barriers, even on failure, so nobody deadlocks.
    sync.0.wait();
    sync.0.wait();
    if let Some(Err(e)) = pinned {
        return Err(format!("pinning generator thread to cpu {cpu:?}: {e}").into());
    }
    let (mut rt, driver) = rt.map_err(|e| format!("building monoio runtime: {e}"))?;
    let schedule = *sync.1.get().expect("schedule set before release");
    let grace = grace(&cfg);
    let ctx = Rc::new(ThreadCtx {
        addr: cfg.target.addr,
        schedule,
        stop: cfg.stop.clone(),
        stats: RefCell::new(Stats::new()),
        live,
        timeout: cfg.timeout,
        in_flight: Cell::new(0),
    });
    rt.block_on(async {
        let handles: Vec<_> = conns
            .iter()
            .map(|&c| monoio::spawn(run_connection(ctx.clone(), plan.connection(c))))
            .collect();
        let all = async {
            for h in handles {
                h.await;
            }
        };
        let limit = (schedule.end + grace).saturating_duration_since(Instant::now());
        // Also wake up early on ctrl-c: poll the stop flag while waiting.
        let stop_watch = async {
            while !cfg.stop.load(Ordering::Relaxed) {
                monoio::time::sleep(Duration::from_millis(50)).await;
            }
            // Give connections a moment to notice and finish.
            monoio::time::sleep(Duration::from_millis(200)).await;
        };
        monoio::select! {
            _ = monoio::time::timeout(limit, all) => {},
            _ = stop_watch => {},
        }
    });
    let mut stats = ctx.stats.borrow().clone();
    stats.unfinished += ctx.in_flight.get();
    Ok((stats, driver))
}
