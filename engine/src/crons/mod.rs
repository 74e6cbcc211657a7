//! The cron scheduler: PocketBase's jobs (and any added later) on standard 5-field cron
//! expressions or macros, checked once a minute in UTC as PocketBase does.
//!
//! The scheduler has its own thread; every run of a job gets a thread of its own, so a slow
//! job delays neither the others nor any request. A job never overlaps itself: a run that
//! comes due (or is asked for) while the previous one is still going is skipped.

mod builtin;

use crate::state::Core;
use chrono::{DateTime, Timelike, Utc};
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use builtin::AUTO_BACKUP_ID;

pub type JobFn = Arc<dyn Fn() + Send + Sync>;

struct Job {
    id: String,
    expression: String,
    schedule: Cron,
    run: JobFn,
    running: Arc<AtomicBool>,
}

/// A parsed schedule: PocketBase's macros or exactly 5 fields; a day must match both the
/// day-of-month and the day-of-week fields.
pub fn parse(expression: &str) -> Result<Cron, String> {
    let trimmed = expression.trim();
    let fields = trimmed.split_whitespace().count();
    let is_macro = matches!(
        trimmed,
        "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight" | "@hourly"
    );
    if !is_macro && fields != 5 {
        return Err(
            "invalid cron expression - must be a valid macro or to have exactly 5 space \
             separated segments"
                .into(),
        );
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .dom_and_dow(true)
        .build()
        .parse(trimmed)
        .map_err(|e| e.to_string())
}

/// The jobs and their runner.
pub struct Scheduler {
    jobs: Mutex<Vec<Job>>,
    /// Runs started so far (all jobs), for tests and diagnostics.
    started: AtomicU64,
    shared: Option<Arc<Core>>,
    /// The `backups.cron` expression `__pbAutoBackup__` is scheduled with (`None`: not yet
    /// synced), so a settings change reschedules it only when the expression changed.
    auto_backup: Mutex<Option<String>>,
}

/// One job as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobInfo {
    pub id: String,
    pub expression: String,
}

impl Scheduler {
    pub fn new(shared: Option<Arc<Core>>) -> Scheduler {
        Scheduler {
            jobs: Mutex::new(Vec::new()),
            started: AtomicU64::new(0),
            shared,
            auto_backup: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Job>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `id` (replacing a job of the same id) to run on `expression`.
    pub fn add(&self, id: &str, expression: &str, run: JobFn) -> Result<(), String> {
        let schedule = parse(expression)?;
        let mut jobs = self.lock();
        jobs.retain(|j| j.id != id);
        jobs.push(Job {
            id: id.to_string(),
            expression: expression.to_string(),
            schedule,
            run,
            running: Arc::new(AtomicBool::new(false)),
        });
        Ok(())
    }

    pub fn remove(&self, id: &str) {
        self.lock().retain(|j| j.id != id);
    }

    /// The jobs in PocketBase's listing order: custom jobs by id, then the system (`__pb*`)
    /// jobs in the order they were added.
    pub fn jobs(&self) -> Vec<JobInfo> {
        if let Some(shared) = &self.shared {
            builtin::sync_auto_backup(self, shared);
        }
        let jobs = self.lock();
        let info = |j: &Job| JobInfo {
            id: j.id.clone(),
            expression: j.expression.clone(),
        };
        let mut custom: Vec<JobInfo> = jobs
            .iter()
            .filter(|j| !j.id.starts_with("__pb"))
            .map(info)
            .collect();
        custom.sort_by(|a, b| a.id.cmp(&b.id));
        custom.extend(jobs.iter().filter(|j| j.id.starts_with("__pb")).map(info));
        custom
    }

    /// Starts `id` now (off the calling thread); `false` when there is no such job.
    pub fn run_now(&self, id: &str) -> bool {
        let jobs = self.lock();
        match jobs.iter().find(|j| j.id == id) {
            Some(job) => {
                self.spawn(job);
                true
            }
            None => false,
        }
    }

    /// Runs started so far.
    pub fn runs_started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    fn spawn(&self, job: &Job) {
        if job.running.swap(true, Ordering::AcqRel) {
            return; // the previous run is still going
        }
        self.started.fetch_add(1, Ordering::Relaxed);
        let run = job.run.clone();
        let running = job.running.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("pocketbun-cron-{}", job.id))
            .spawn(move || {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run()));
                running.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            job.running.store(false, Ordering::Release);
        }
    }

    /// Starts every job due at `moment` (a minute in UTC).
    pub fn tick(&self, moment: DateTime<Utc>) {
        if let Some(shared) = &self.shared {
            builtin::sync_auto_backup(self, shared);
        }
        let jobs = self.lock();
        for job in jobs.iter() {
            if job.schedule.is_time_matching(&moment).unwrap_or(false) {
                self.spawn(job);
            }
        }
    }
}

/// Registers PocketBase's system jobs and starts ticking. The scheduler is the API layer's
/// (`ctx::Shared::crons`, for `/api/crons`); its thread keeps its own handle.
pub fn start(shared: Arc<Core>) -> std::io::Result<Arc<Scheduler>> {
    let scheduler = Arc::new(Scheduler::new(Some(shared.clone())));
    builtin::register(&scheduler, &shared);
    let ticking = scheduler.clone();
    std::thread::Builder::new()
        .name("pocketbun-cron".into())
        .spawn(move || loop {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let into_minute = Duration::from_secs(now.as_secs() % 60)
                + Duration::from_nanos(u64::from(now.subsec_nanos()));
            std::thread::sleep(Duration::from_secs(60) - into_minute);
            let secs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            // the minute just begun (a late wake-up still counts for the minute it meant)
            let minute = (secs + 30) / 60 * 60;
            if let Some(moment) = DateTime::<Utc>::from_timestamp(minute as i64, 0) {
                ticking.tick(moment.with_second(0).unwrap_or(moment));
            }
        })?;
    Ok(scheduler)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn parses_like_pocketbase() {
        for ok in [
            "0 0 * * *",
            "*/5 * * * *",
            "@hourly",
            "@daily",
            "0 */6 * * *",
            "1-5 0 1,15 * 1-5",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "* * * *", "0 0 0 * * *", "@reboot", "61 * * * *", "bad"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        // day-of-month AND day-of-week, as PocketBase's schedule matches them
        let c = parse("0 0 13 * 5").unwrap();
        let fri_13 = Utc.with_ymd_and_hms(2026, 2, 13, 0, 0, 0).unwrap();
        let sat_14 = Utc.with_ymd_and_hms(2026, 2, 14, 0, 0, 0).unwrap();
        let fri_20 = Utc.with_ymd_and_hms(2026, 2, 20, 0, 0, 0).unwrap();
        assert!(c.is_time_matching(&fri_13).unwrap());
        assert!(!c.is_time_matching(&sat_14).unwrap());
        assert!(!c.is_time_matching(&fri_20).unwrap());
    }

    #[test]
    fn a_job_never_overlaps_itself() {
        let s = Scheduler::new(None);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(rx));
        let calls = Arc::new(AtomicU64::new(0));
        let c = calls.clone();
        s.add(
            "slow",
            "* * * * *",
            Arc::new(move || {
                c.fetch_add(1, Ordering::SeqCst);
                let _ = gate.lock().unwrap().recv();
            }),
        )
        .unwrap();
        assert!(s.run_now("slow"));
        std::thread::sleep(Duration::from_millis(50));
        assert!(s.run_now("slow")); // skipped: still running
        s.tick(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()); // skipped too
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(s.run_now("slow"));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        tx.send(()).unwrap();
        assert!(!s.run_now("missing"));
    }

    #[test]
    fn lists_custom_jobs_first_then_system_jobs() {
        let s = Scheduler::new(None);
        let f: JobFn = Arc::new(|| {});
        s.add("__pbB__", "0 0 * * *", f.clone()).unwrap();
        s.add("zz", "@hourly", f.clone()).unwrap();
        s.add("__pbA__", "0 * * * *", f.clone()).unwrap();
        s.add("aa", "* * * * *", f).unwrap();
        let ids: Vec<String> = s.jobs().into_iter().map(|j| j.id).collect();
        assert_eq!(ids, ["aa", "zz", "__pbB__", "__pbA__"]);
    }
}
