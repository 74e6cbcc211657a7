//! The `litestream replicate` child of `serve --replicate`: started, watched and restarted by
//! one thread of its own (never a request worker), with its state kept in atomics and a small
//! mutex that `GET /api/health` only reads.
//!
//! * Restarts: after an exit it waits 1 s, doubling up to 30 s while it keeps exiting within a
//!   minute of its start; a run longer than a minute resets the wait to 1 s.
//! * Output: Litestream logs `time=… level=… msg=…` lines; `WARN`/`ERROR` lines and anything
//!   unstructured (its `Error: …` before exiting) go to our stderr prefixed `litestream: `
//!   (`INFO` lines too with `verbose`); the latest error line is kept for health.
//! * The child gets `PR_SET_PDEATHSIG(SIGKILL)`: if PocketBun dies (even `kill -9`) it does
//!   not outlive it, as a sidecar would; a clean stop sends SIGTERM and waits for it.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run at least this long counts as healthy: the next restart waits [`FIRST_BACKOFF`].
const STABLE_RUN: Duration = Duration::from_secs(60);
/// How long a clean stop waits for Litestream's final sync before killing it.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What `serve --replicate` (or `serve --replica`) starts.
pub struct Config {
    /// The litestream binary ([`super::locate`]).
    pub bin: PathBuf,
    /// The `pb_data` directory (made absolute for the config).
    pub dir: PathBuf,
    /// The replica URL; each database goes below it under its own name.
    pub url: String,
    /// Also forward Litestream's `INFO` lines (`--dev`).
    pub verbose: bool,
    /// What the child does.
    pub mode: Mode,
}

/// The Litestream command the supervisor keeps running.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `litestream replicate`: ship `data.db` and `auxiliary.db` to the replica (a primary).
    Replicate,
    /// `litestream restore -f`: keep `data.db` a follower copy of the replica (a read
    /// replica, [`super::follower`]).
    Follow,
}

/// The supervisor's shared state.
struct State {
    running: AtomicBool,
    pid: AtomicU32,
    restarts: AtomicU64,
    last_error: Mutex<String>,
    last_exit: Mutex<String>,
    stopping: Mutex<bool>,
    wake: Condvar,
}

/// The running supervisor: a part of [`super::Replication`], set by [`start`].
pub(crate) struct Supervisor {
    state: Arc<State>,
    /// The generated config file (`Mode::Replicate`), removed at [`stop`].
    config_path: Option<PathBuf>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Writes Litestream's config and starts the supervisor thread (once per `replication`).
/// Returns when the first `litestream replicate` has been spawned, or with why it could not
/// be.
pub fn start(replication: &super::Replication, config: Config) -> Result<(), String> {
    let dir = std::path::absolute(&config.dir)
        .map_err(|e| format!("cannot resolve {}: {e}", config.dir.display()))?;
    let (args, config_path) = match config.mode {
        Mode::Replicate => {
            let path = std::env::temp_dir()
                .join(format!("pocketbun-litestream-{}.yml", std::process::id()));
            std::fs::write(&path, super::config_yaml(&dir, &config.url, &socket_path()))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            let args: Vec<OsString> = vec![
                "replicate".into(),
                "-no-expand-env".into(),
                "-config".into(),
                path.clone().into(),
            ];
            (args, Some(path))
        }
        Mode::Follow => (super::follower::command(&dir, &config.url), None),
    };
    let args = Arc::new(args);
    let state = Arc::new(State {
        running: AtomicBool::new(false),
        pid: AtomicU32::new(0),
        restarts: AtomicU64::new(0),
        last_error: Mutex::new(String::new()),
        last_exit: Mutex::new(String::new()),
        stopping: Mutex::new(false),
        wake: Condvar::new(),
    });
    let first = spawn(&config.bin, &args, &state, config.verbose).map_err(|e| {
        if let Some(path) = &config_path {
            let _ = std::fs::remove_file(path);
        }
        format!("cannot start {}: {e}", config.bin.display())
    })?;
    let thread = {
        let (state, args, bin) = (state.clone(), args.clone(), config.bin.clone());
        std::thread::Builder::new()
            .name("pb-litestream".into())
            .spawn(move || supervise(first, &bin, &args, &state, config.verbose))
            .map_err(|e| format!("cannot start the litestream supervisor: {e}"))?
    };
    if config.mode == Mode::Replicate {
        let db = dir.join(pocketbun_storage::DATA_DB);
        (replication.position)
            .init(socket_path(), &db)
            .map_err(|e| format!("cannot start the replication position thread: {e}"))?;
    }
    (replication.supervisor)
        .set(Supervisor {
            state,
            config_path,
            thread: Mutex::new(Some(thread)),
        })
        // no cause: `OnceLock::set` hands back the value it refused
        .map_err(|_| "replication is already running".to_string())
}

/// Stops Litestream (SIGTERM, its final sync, SIGKILL after [`STOP_GRACE`]) and the
/// supervisor, and removes the config. A no-op without replication; idempotent.
pub fn stop(replication: &super::Replication) {
    let Some(sup) = replication.supervisor.get() else {
        return;
    };
    *lock(&sup.state.stopping) = true;
    sup.state.wake.notify_all();
    if let Some(t) = lock(&sup.thread).take() {
        let _ = t.join();
    }
    if let Some(path) = &sup.config_path {
        let _ = std::fs::remove_file(path);
        let _ = std::fs::remove_file(socket_path());
    }
}

/// Litestream's control socket ([`super::position`]): in the temp dir, named by our pid like
/// the config (a Unix socket path must stay under 108 bytes).
fn socket_path() -> PathBuf {
    std::env::temp_dir().join(format!("pocketbun-litestream-{}.sock", std::process::id()))
}

/// The `replication` object of a superuser's `GET /api/health`, or `None` without
/// `--replicate`: `running`, `pid` (0 while down), `restarts`, `lastError` (Litestream's latest
/// error line, or why it could not be started; "" if none), `lastExit` (how the latest run
/// ended, e.g. `signal: 9 (SIGKILL)`; "" if none) and `syncInterval` (seconds).
///
/// A primary adds its position ([`super::position::Positions::lag`], refreshed every
/// second): `txid` (the latest local transaction), `replicatedTxid` (the latest the replica
/// store has; both 16 hex digits) and `lagMs` (how long the store has lacked some
/// transaction; 0 while it has them all). With the store unreachable, writes go on and
/// `lagMs` grows.
pub fn health(replication: &super::Replication) -> Option<serde_json::Value> {
    let st = &replication.supervisor.get()?.state;
    let mut out = serde_json::json!({
        "running": st.running.load(Ordering::SeqCst),
        "pid": st.pid.load(Ordering::SeqCst),
        "restarts": st.restarts.load(Ordering::SeqCst),
        "lastError": lock(&st.last_error).clone(),
        "lastExit": lock(&st.last_exit).clone(),
        "syncInterval": super::SYNC_INTERVAL_SECS,
    });
    if let Some((pos, lag)) = replication.position.lag() {
        out["txid"] = super::position::hex(pos.txid).into();
        out["replicatedTxid"] = super::position::hex(pos.replicated).into();
        out["lagMs"] = (lag.as_millis() as u64).into();
    }
    Some(out)
}

/// Whether `serve --replicate` (or a replica's follower) runs for `replication`.
pub fn active(replication: &super::Replication) -> bool {
    replication.supervisor.get().is_some()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Spawns `litestream <args>` and the threads that read its output.
fn spawn(
    bin: &Path,
    args: &[OsString],
    state: &Arc<State>,
    verbose: bool,
) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: prctl is async-signal-safe and touches only the child's own attributes.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    state.pid.store(child.id(), Ordering::SeqCst);
    state.running.store(true, Ordering::SeqCst);
    let outputs: [Option<Box<dyn std::io::Read + Send>>; 2] = [
        child.stdout.take().map(|o| Box::new(o) as _),
        child.stderr.take().map(|e| Box::new(e) as _),
    ];
    for out in outputs.into_iter().flatten() {
        let state = state.clone();
        std::thread::Builder::new()
            .name("pb-litestream-log".into())
            .spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    on_line(&state, &line, verbose);
                }
            })?;
    }
    Ok(child)
}

/// One line of Litestream's output: forwarded (by level) and kept when it is an error.
fn on_line(state: &State, line: &str, verbose: bool) {
    let level = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("level="))
        .unwrap_or("");
    let error = level == "ERROR" || line.starts_with("Error:");
    if error {
        *lock(&state.last_error) = line.to_string();
    }
    if verbose || error || level == "WARN" || level.is_empty() {
        eprintln!("litestream: {line}");
    }
}

/// The supervisor loop: watches the child, records its exit, restarts it after the backoff
/// until [`stop`] (which it carries out on the child itself, so no pid is signalled after it
/// was reaped).
fn supervise(mut child: Child, bin: &Path, args: &[OsString], state: &Arc<State>, verbose: bool) {
    let mut backoff = FIRST_BACKOFF;
    let mut started = Instant::now();
    loop {
        let status = match watch(&mut child, state) {
            Some(status) => status,
            None => return,
        };
        state.pid.store(0, Ordering::SeqCst);
        state.running.store(false, Ordering::SeqCst);
        let exit = match status {
            Ok(s) => s.to_string(),
            Err(e) => format!("cannot be waited for: {e}"),
        };
        if started.elapsed() >= STABLE_RUN {
            backoff = FIRST_BACKOFF;
        }
        eprintln!(
            "litestream: litestream exited ({exit}); restarting in {} s",
            backoff.as_secs()
        );
        *lock(&state.last_exit) = exit;
        loop {
            if !sleep_unless_stopped(state, backoff) {
                return;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            started = Instant::now();
            match spawn(bin, args, state, verbose) {
                Ok(c) => {
                    state.restarts.fetch_add(1, Ordering::SeqCst);
                    child = c;
                    break;
                }
                Err(e) => {
                    let why = format!("cannot start litestream: {e}");
                    eprintln!("litestream: {why}; retrying in {} s", backoff.as_secs());
                    *lock(&state.last_error) = why;
                }
            }
        }
    }
}

/// Polls the child every 50 ms (a negligible cost on this thread) until it exits (its status)
/// or [`stop`] is called: then SIGTERM, up to [`STOP_GRACE`] for its final sync, SIGKILL, and
/// `None`.
fn watch(child: &mut Child, state: &State) -> Option<std::io::Result<std::process::ExitStatus>> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(Ok(status)),
            Ok(None) => {}
            Err(e) => return Some(Err(e)),
        }
        if *lock(&state.stopping) {
            // SAFETY: kill(2) on the pid of our own child, which try_wait has not reaped.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let deadline = Instant::now() + STOP_GRACE;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            state.pid.store(0, Ordering::SeqCst);
            state.running.store(false, Ordering::SeqCst);
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits `d`, or less when [`stop`] is called; false when stopping.
fn sleep_unless_stopped(state: &State, d: Duration) -> bool {
    let guard = lock(&state.stopping);
    let (guard, _) = state
        .wake
        .wait_timeout_while(guard, d, |stopping| !*stopping)
        .unwrap_or_else(|p| p.into_inner());
    !*guard
}
