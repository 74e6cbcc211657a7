//! Stall detection: a request worker runs many connections on one thread, so one task that
//! blocks (a slow query, CPU-heavy hashing) freezes them all. Each worker bumps a heartbeat
//! from a timer task; a watchdog thread reports workers whose heartbeat stops.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BEAT: Duration = Duration::from_millis(20);

#[derive(Clone)]
pub(crate) struct Heartbeat {
    epoch: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Heartbeat {
    fn new(epoch: Instant) -> Self {
        Heartbeat {
            epoch,
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn beat(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Runs on the worker for as long as the worker lives.
    pub(crate) async fn run(self) {
        loop {
            self.beat();
            monoio::time::sleep(BEAT).await;
        }
    }
}

/// One heartbeat per worker and a thread that watches them.
pub(crate) struct Watchdog {
    pub(crate) beats: Vec<Heartbeat>,
}

impl Watchdog {
    pub(crate) fn new(workers: usize) -> Self {
        let epoch = Instant::now();
        let beats: Vec<Heartbeat> = (0..workers).map(|_| Heartbeat::new(epoch)).collect();
        for b in &beats {
            b.beat();
        }
        Watchdog { beats }
    }

    /// Starts the watching thread; it ends when `done` flips.
    pub(crate) fn spawn(&self, threshold: Duration, done: crate::Shutdown, count: Arc<AtomicU64>) {
        let beats = self.beats.clone();
        let threshold_ms = threshold.as_millis() as u64;
        let _ = std::thread::Builder::new()
            .name("pocketbun-watchdog".into())
            .spawn(move || {
                let mut stalled = vec![0u64; beats.len()];
                while !done.is_triggered() {
                    std::thread::sleep(Duration::from_millis(50));
                    for (i, b) in beats.iter().enumerate() {
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
            });
    }
}
