//! A small pool of threads for CPU-heavy work that must never run on a request worker:
//! password hashing (bcrypt ~74 ms, argon2id ~18 ms), image resizing, big sorts. A worker
//! thread runs many connections at once, so one hash on it would stall all of them.
//!
//! The worker hands a closure over and awaits the answer; the pool thread wakes it when done.

use crossbeam_channel::{Receiver, Sender};
use futures_channel::oneshot;
use std::panic::AssertUnwindSafe;

type Task = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct CpuPool {
    tx: Sender<Task>,
}

/// The pool went away (process shutting down) or the task panicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Canceled;

impl std::fmt::Display for Canceled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the CPU pool did not run the task to its end")
    }
}

impl std::error::Error for Canceled {}

impl CpuPool {
    pub fn new(threads: usize) -> std::io::Result<CpuPool> {
        let (tx, rx) = crossbeam_channel::unbounded::<Task>();
        for i in 0..threads.max(1) {
            let rx: Receiver<Task> = rx.clone();
            std::thread::Builder::new()
                .name(format!("pocketbun-cpu-{i}"))
                .spawn(move || {
                    lower_priority(POOL_NICE);
                    for task in rx.iter() {
                        task();
                    }
                })?;
        }
        Ok(CpuPool { tx })
    }

    /// Runs `f` on the pool; await the result from any thread without blocking it.
    pub async fn run<T, F>(&self, f: F) -> Result<T, Canceled>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (done, answer) = oneshot::channel();
        let task: Task = Box::new(move || {
            if let Ok(value) = std::panic::catch_unwind(AssertUnwindSafe(f)) {
                let _ = done.send(value);
            }
        });
        // no cause: a failed send only hands the task back (the pool is gone)
        self.tx.send(task).map_err(|_| Canceled)?;
        // no cause: a dropped answer only says the task never answered
        answer.await.map_err(|_| Canceled)
    }
}

/// A value that is dropped on the pool when it is big: freeing a tree of millions of small
/// allocations (a 64 MiB JSON body of 5 million keys) costs the worker about what building it
/// did, ~300 ms of CPU in a debug build. Derefs to the value; small ones drop in place.
pub struct DropOnPool<T: Send + 'static> {
    value: Option<T>,
    pool: Option<CpuPool>,
}

impl<T: Send + 'static> DropOnPool<T> {
    /// `value`, dropped on `pool` if `big`, else where it is.
    pub fn new(value: T, pool: &CpuPool, big: bool) -> Self {
        DropOnPool {
            value: Some(value),
            pool: big.then(|| pool.clone()),
        }
    }
}

impl<T: Send + 'static> std::ops::Deref for DropOnPool<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value.as_ref().expect("present until dropped")
    }
}

impl<T: Send + 'static> std::ops::DerefMut for DropOnPool<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value.as_mut().expect("present until dropped")
    }
}

impl<T: Send + 'static> Drop for DropOnPool<T> {
    fn drop(&mut self) {
        if let (Some(value), Some(pool)) = (self.value.take(), self.pool.take()) {
            // queued without waiting; if the pool is gone the task (and value) drops here
            let _ = pool.tx.send(Box::new(move || drop(value)));
        }
    }
}

/// Nice value the pool threads add to the process's: CFS then gives a request worker sharing
/// the core ~10x the pool thread's share. Measured with `loadtest compare -w login-storm`
/// (server pinned to one core, 16 connections logging in): view p99 14.5 ms at nice 0 vs
/// 8.9 ms at 10 (8.7 ms with no storm), logins 4/s vs 1/s; at 19 logins starved completely.
const POOL_NICE: i32 = 10;

/// Nice value the request log's threads add to the process's (`crate::logs`, `auxiliary.db`'s
/// writer and checkpointer): between the workers' 0 and the pool's 10, so a worker still wins
/// a core from a batch of log rows (weight 1024 against 335), and the log writer wins it from
/// a login's bcrypt (335 against 110). At the pool's nice the log writer got no more of what
/// the worker left during a login storm than the hashing thread did, and requests that
/// outran it waited for backlog room (`crate::logs`, `BACKLOG_ROWS`) behind the hashing: in
/// one sitting of 5 login-storm rounds, 5,225 waits, 155 s in all, at nice 10 against 192
/// and 7.8 s at nice 5. On a quiet machine, login storm view p99 9.9 against 12.0 ms
/// (median of 5 rounds), logged view p99 6.3 against 6.9 ms at the same req/s; logins
/// 2–3/s against 4–6/s (`BENCHMARKS.md` section `storm`).
const LOG_NICE: i32 = 5;

/// Lowers this thread's scheduling weight so a request worker sharing its core wins it:
/// the request log's threads run here first (`crate::logs`, `auxiliary.db`'s writer and
/// checkpointer through `StoreOptions::aux_thread_start`): their work waits for the requests,
/// never the other way round, and it goes before the CPU pool's hashing.
pub(crate) fn yield_to_request_workers() {
    lower_priority(LOG_NICE);
}

/// Adds `by` to the calling thread's nice value. Relative, not absolute: in a process started
/// with `nice -n 15` an absolute 10 would have raised these threads above the workers (or,
/// unprivileged, failed).
fn lower_priority(by: i32) {
    // SAFETY: plain syscalls on the calling thread; on Linux the nice value is per thread.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        // -1 is also a valid nice value; errno says whether it was an error
        *libc::__errno_location() = 0;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        if now == -1 && *libc::__errno_location() != 0 {
            return;
        }
        libc::setpriority(libc::PRIO_PROCESS, tid, (now + by).min(19));
    }
}

/// Bodies larger than this are parsed on the CPU pool (`crate::offload`), not on the worker:
/// 32 MiB of small JSON values take ~150 ms to parse (release build), a stall for every
/// connection of the worker; below it a parse costs well under a millisecond.
pub const OFFLOAD_PARSE_BYTES: usize = 64 << 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_off_thread_and_survives_panics() {
        let pool = CpuPool::new(2).unwrap();
        let caller = std::thread::current().id();
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(async {
            let other = pool.run(|| std::thread::current().id()).await.unwrap();
            assert_ne!(other, caller);
            let failed = pool.run(|| -> u8 { panic!("task panic on purpose") }).await;
            assert_eq!(failed, Err(Canceled));
            assert_eq!(pool.run(|| 7).await, Ok(7));
        });
    }

    /// The nice value is added to the thread's own (a server started under `nice` keeps its
    /// threads' order), and stops at 19. Raising a nice value needs no privilege.
    #[test]
    fn lowering_priority_adds_to_the_threads_nice_value() {
        let nice = || unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::getpriority(libc::PRIO_PROCESS, tid)
        };
        std::thread::spawn(move || {
            let start = nice();
            lower_priority(2);
            assert_eq!(nice(), (start + 2).min(19));
            lower_priority(LOG_NICE);
            assert_eq!(nice(), (start + 2 + LOG_NICE).min(19));
            lower_priority(POOL_NICE);
            assert_eq!(nice(), (start + 2 + LOG_NICE + POOL_NICE).min(19));
            // past 19 it stops there, whatever the thread started at
            lower_priority(19);
            assert_eq!(nice(), 19);
        })
        .join()
        .unwrap();
    }
}
