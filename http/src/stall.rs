//! Stall detection: a request worker runs many connections on one thread, so one task that
//! blocks (a slow query, CPU-heavy hashing) freezes them all. Each worker bumps a heartbeat
//! from a timer task; a watchdog thread reports workers whose heartbeat stops.
//!
//! Each beat also reads the worker thread's own CPU clock: the CPU time spent between two
//! beats is the longest stretch the loop ran without coming round (plus at most one 20 ms
//! beat interval of ordinary work). Unlike the wall-clock gap it does not grow when the
//! machine is busy and the thread merely waits for a core, so tests can assert on it:
//! [`BusyMeter`] keeps the longest such stretch per worker (the server prints it when it
//! exits), and every stretch over the stall threshold is reported on stderr by the watchdog
//! thread as `pocketbun: worker N ran M ms of CPU without yielding ...`: the test hook of
//! issue 16's "no stalls" (`tests/tests/no_stalls.rs` reads both lines from the server log).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BEAT: Duration = Duration::from_millis(20);
/// `last_cpu_us` before the worker's first beat.
const NO_CPU_YET: u64 = u64::MAX;

#[derive(Clone)]
pub(crate) struct Heartbeat {
    epoch: Instant,
    last_ms: Arc<AtomicU64>,
    /// The worker thread's CPU time at its last beat (µs); written by the worker only.
    last_cpu_us: Arc<AtomicU64>,
    /// The most CPU time the worker spent between two beats (µs).
    longest_busy_us: Arc<AtomicU64>,
    /// Stretches over `threshold_us` not reported yet (the longest of them, µs; 0 = none):
    /// the worker only stores it, the watchdog thread prints it (no stderr write on a worker).
    over_us: Arc<AtomicU64>,
    threshold_us: u64,
}

impl Heartbeat {
    fn new(epoch: Instant, threshold: Duration) -> Self {
        Heartbeat {
            epoch,
            last_ms: Arc::new(AtomicU64::new(0)),
            last_cpu_us: Arc::new(AtomicU64::new(NO_CPU_YET)),
            longest_busy_us: Arc::new(AtomicU64::new(0)),
            over_us: Arc::new(AtomicU64::new(0)),
            threshold_us: threshold.as_micros() as u64,
        }
    }

    fn beat_wall(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// A beat on the worker thread: wall clock for the watchdog, CPU clock for the meter.
    pub(crate) fn beat(&self) {
        self.beat_wall();
        let Some(cpu) = thread_cpu_us() else {
            return;
        };
        let last = self.last_cpu_us.swap(cpu, Ordering::Relaxed);
        if last != NO_CPU_YET {
            let busy = cpu.saturating_sub(last);
            self.longest_busy_us.fetch_max(busy, Ordering::Relaxed);
            if busy > self.threshold_us {
                self.over_us.fetch_max(busy, Ordering::Relaxed);
            }
        }
    }

    /// Runs on the worker for as long as the worker lives.
    pub(crate) async fn run(self) {
        loop {
            self.beat();
            monoio::time::sleep(BEAT).await;
        }
    }
}

/// CPU time the calling thread has used, in µs (`CLOCK_THREAD_CPUTIME_ID`).
fn thread_cpu_us() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass, which lives on this stack.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000)
}

/// The longest CPU-busy stretch of each worker between two heartbeats (see the module doc).
#[derive(Clone)]
pub struct BusyMeter {
    longest_us: Vec<Arc<AtomicU64>>,
}

impl BusyMeter {
    /// The longest stretch any worker ran without its loop coming round.
    pub fn longest(&self) -> Duration {
        let us = self
            .longest_us
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        Duration::from_micros(us)
    }
}

/// One heartbeat per worker and a thread that watches them.
pub(crate) struct Watchdog {
    pub(crate) beats: Vec<Heartbeat>,
}

impl Watchdog {
    /// `threshold`: a worker whose loop does not come round for this long (wall clock), or
    /// that spends this much CPU time in one turn, is reported as stalled.
    pub(crate) fn new(workers: usize, threshold: Duration) -> Self {
        let epoch = Instant::now();
        let beats: Vec<Heartbeat> = (0..workers)
            .map(|_| Heartbeat::new(epoch, threshold))
            .collect();
        for b in &beats {
            b.beat_wall();
        }
        Watchdog { beats }
    }

    pub(crate) fn meter(&self) -> BusyMeter {
        BusyMeter {
            longest_us: self
                .beats
                .iter()
                .map(|b| b.longest_busy_us.clone())
                .collect(),
        }
    }

    /// Starts the watching thread; it ends when `done` flips. (Work a worker does after that,
    /// while it drains its connections, only shows in [`BusyMeter::longest`].)
    pub(crate) fn spawn(&self, done: crate::Shutdown, count: Arc<AtomicU64>) {
        let beats = self.beats.clone();
        let _ = std::thread::Builder::new()
            .name("pocketbun-watchdog".into())
            .spawn(move || {
                let mut stalled = vec![0u64; beats.len()];
                let report_busy = || {
                    for (i, b) in beats.iter().enumerate() {
                        let over = b.over_us.swap(0, Ordering::Relaxed);
                        if over > 0 {
                            eprintln!(
                                "pocketbun: worker {i} ran {} ms of CPU without yielding \
                                 (stall threshold {} ms)",
                                over / 1000,
                                b.threshold_us / 1000
                            );
                        }
                    }
                };
                while !done.is_triggered() {
                    std::thread::sleep(Duration::from_millis(50));
                    report_busy();
                    for (i, b) in beats.iter().enumerate() {
                        let threshold_ms = b.threshold_us / 1000;
                        let now = b.epoch.elapsed().as_millis() as u64;
                        let last = b.last_ms.load(Ordering::Relaxed);
                        let behind = now.saturating_sub(last);
                        if behind > threshold_ms {
                            stalled[i] = behind;
                        } else if stalled[i] > 0 {
                            eprintln!(
                                "pocketbun: worker {i} stalled for {} ms (a task blocked its core)",
                                stalled[i]
                            );
                            stalled[i] = 0;
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                report_busy();
            });
    }
}
