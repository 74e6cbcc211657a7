//! Replays the PocketBase conformance corpus (`<workspace>/../shared/conformance`)
//! against a real server process, one fresh copy of the fixture `pb_data`
//! and one server per scenario, with the request and comparison rules of
//! the corpus README (the same as its reference runner `replay.py`).
//!
//! Target: `pocketbun` (default), or the real PocketBase (`POCKETBASE_VERSION`, default 0.40.6) with
//! `CONFORMANCE_SERVER=pocketbase` (then every selected scenario must pass).
//!
//! Against pocketbun, `tests/conformance-expected.json` lists the scenario
//! ids that must pass: the test fails when a listed id fails (a regression)
//! and prints the ids that pass but are not listed yet; with
//! `CONFORMANCE_BLESS=1` it adds them to the file. Scenarios of areas not
//! built yet fail without failing the test.
//!
//! Env: `CONFORMANCE_FILTER=regex` (on id or name), `CONFORMANCE_DIR` (another
//! corpus directory), `CONFORMANCE_WORKERS=n`
//! (default: the CPU count, clamped to 2..=4), `CONFORMANCE_VERBOSE=1`
//! (print every failure's reason; also on with a filter or against
//! PocketBase), `CONFORMANCE_HOST_HEADER` (default `example.com`; empty =
//! `127.0.0.1:<port>`), `POCKETBUN_TEST_KEEP=1` (keep temp dirs).
//!
//! The summary is written straight to stdout (not captured by the test
//! harness), ending with a line `conformance total: N of M scenarios pass`; the results go to
//! `<target>/conformance/results-<server>.json` in `replay.py`'s format.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pocketbun_tests::conformance::{
    run_scenario, Corpus, Outcome, ReplayOptions, Scenario, DEFAULT_HOST,
};
use pocketbun_tests::{need, target_dir, ServerKind};
use serde_json::json;

/// Writes a line to the real stdout, past the test harness's capture.
macro_rules! say {
    ($($t:tt)*) => {{
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($t)*);
        let _ = out.flush();
    }};
}

/// After this many failed server starts without a single successful one,
/// the remaining scenarios are failed without starting more servers.
const GIVE_UP_AFTER: usize = 3;

/// Request timeout; after `SHORTEN_AFTER` timed-out requests the rest get
/// `SHORT_TIMEOUT`, so that a server that hangs on many requests fails the
/// run in minutes, not hours. (PocketBase answers every scenario within 2 s.)
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
const SHORTEN_AFTER: usize = 3;
const SHORT_TIMEOUT: Duration = Duration::from_secs(3);

fn expected_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("conformance-expected.json")
}

fn load_expected() -> BTreeSet<String> {
    let path = expected_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str::<Vec<String>>(&text)
        .unwrap_or_else(|e| panic!("{}: expected a JSON array of ids: {e}", path.display()))
        .into_iter()
        .collect()
}

fn save_expected(ids: &BTreeSet<String>) {
    let mut text = String::from("[\n");
    let n = ids.len();
    for (i, id) in ids.iter().enumerate() {
        text.push_str("  ");
        text.push_str(&serde_json::to_string(id).unwrap());
        text.push_str(if i + 1 < n { ",\n" } else { "\n" });
    }
    text.push_str("]\n");
    std::fs::write(expected_path(), text).expect("write conformance-expected.json");
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

fn workers() -> usize {
    if let Some(n) = std::env::var("CONFORMANCE_WORKERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        return n.max(1);
    }
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 4)
}

/// Runs `scenarios` on `workers` threads; returns outcomes in input order.
fn run_all(
    spec: &pocketbun_tests::ServerSpec,
    corpus: &Corpus,
    scenarios: &[&Scenario],
    workers: usize,
    host: Option<String>,
    verbose: bool,
) -> Vec<Outcome> {
    let fixture = corpus.fixture();
    let next = AtomicUsize::new(0);
    let started = AtomicUsize::new(0);
    let start_failures = AtomicUsize::new(0);
    let timeouts = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new(vec![None; scenarios.len()]);
    std::thread::scope(|s| {
        for _ in 0..workers.min(scenarios.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(sc) = scenarios.get(i) else { break };
                let outcome = if start_failures.load(Ordering::SeqCst) >= GIVE_UP_AFTER
                    && started.load(Ordering::SeqCst) == 0
                {
                    Outcome {
                        id: sc.id.clone(),
                        file: sc.file.clone(),
                        name: sc.name.clone(),
                        passed: false,
                        reason: Some(format!(
                            "not run: the server failed to start {GIVE_UP_AFTER} times and never started"
                        )),
                        status: None,
                        body_excerpt: None,
                        seconds: 0.0,
                        server_started: false,
                        timed_out: false,
                    }
                } else {
                    let opts = ReplayOptions {
                        host: host.clone(),
                        request_timeout: if timeouts.load(Ordering::SeqCst) >= SHORTEN_AFTER {
                            SHORT_TIMEOUT
                        } else {
                            REQUEST_TIMEOUT
                        },
                    };
                    let o = run_scenario(spec, &fixture, sc, &opts);
                    if o.timed_out {
                        timeouts.fetch_add(1, Ordering::SeqCst);
                    }
                    if o.server_started {
                        started.fetch_add(1, Ordering::SeqCst);
                    } else {
                        start_failures.fetch_add(1, Ordering::SeqCst);
                    }
                    o
                };
                if verbose && !outcome.passed {
                    say!(
                        "FAIL {} [{}]: {}",
                        outcome.id,
                        outcome.name,
                        outcome.reason.as_deref().unwrap_or("")
                    );
                }
                results.lock().unwrap()[i] = Some(outcome);
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|o| o.expect("every scenario ran"))
        .collect()
}

fn write_results(kind: ServerKind, outcomes: &[Outcome], seconds: f64, workers: usize) {
    let dir = target_dir().join("conformance");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("results-{}.json", kind.name()));
    let passed = outcomes.iter().filter(|o| o.passed).count();
    let doc = json!({
        "summary": {
            "passed": passed,
            "failed": outcomes.len() - passed,
            "seconds": (seconds * 10.0).round() / 10.0,
            "workers": workers,
            "server": kind.name(),
        },
        "results": outcomes.iter().map(|o| json!({
            "id": o.id,
            "file": o.file,
            "name": o.name,
            "result": if o.passed { "PASS" } else { "FAIL" },
            "reason": o.reason,
            "status": o.status,
            "bodyExcerpt": o.body_excerpt,
            "seconds": (o.seconds * 1000.0).round() / 1000.0,
        })).collect::<Vec<_>>(),
    });
    match std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap() + "\n") {
        Ok(()) => say!("# results: {}", path.display()),
        Err(e) => say!("# cannot write {}: {e}", path.display()),
    }
}

#[test]
fn conformance() {
    let Some(dir) = need::corpus("conformance") else {
        return;
    };
    let corpus = Corpus::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let kind = ServerKind::from_env();
    let filter = std::env::var("CONFORMANCE_FILTER")
        .ok()
        .filter(|f| !f.is_empty())
        .map(|f| regex::Regex::new(&f).unwrap_or_else(|e| panic!("CONFORMANCE_FILTER: {e}")));
    let host = match std::env::var("CONFORMANCE_HOST_HEADER") {
        Ok(h) => (!h.is_empty()).then_some(h),
        Err(_) => Some(DEFAULT_HOST.to_string()),
    };
    let verbose =
        env_flag("CONFORMANCE_VERBOSE") || filter.is_some() || kind == ServerKind::PocketBase;

    // the expected list must name replayable scenarios
    let expected = load_expected();
    let replayable: BTreeSet<&str> = corpus.replayable().map(|s| s.id.as_str()).collect();
    let unknown: Vec<&String> = expected
        .iter()
        .filter(|id| !replayable.contains(id.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "{} lists ids that are not replayable scenarios: {unknown:?}",
        expected_path().display()
    );

    let selected: Vec<&Scenario> = corpus
        .replayable()
        .filter(|s| {
            filter
                .as_ref()
                .is_none_or(|rx| rx.is_match(&s.id) || rx.is_match(&s.name))
        })
        .collect();
    let spec = kind.spec();
    let workers = workers();
    say!(
        "conformance: {} of {} replayable scenarios against {} ({}), {} workers",
        selected.len(),
        replayable.len(),
        kind.name(),
        spec.program.display(),
        workers
    );

    let t0 = Instant::now();
    let outcomes = run_all(&spec, &corpus, &selected, workers, host, verbose);
    let elapsed = t0.elapsed().as_secs_f64();

    // per source file: passed/replayable
    let mut per_file: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for s in corpus.replayable() {
        per_file.entry(s.file.as_str()).or_default().2 += 1;
    }
    for o in &outcomes {
        let e = per_file.get_mut(o.file.as_str()).expect("known file");
        e.1 += 1;
        if o.passed {
            e.0 += 1;
        }
    }
    for (file, (passed, run, total)) in &per_file {
        if *run == 0 {
            continue;
        }
        if run < total {
            say!("  {file}: {passed}/{total} ({run} run)");
        } else {
            say!("  {file}: {passed}/{total}");
        }
    }

    let passed: BTreeSet<&str> = outcomes
        .iter()
        .filter(|o| o.passed)
        .map(|o| o.id.as_str())
        .collect();
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.passed).collect();
    write_results(kind, &outcomes, elapsed, workers);

    let mut problems = Vec::new();
    match kind {
        ServerKind::PocketBase => {
            if !failed.is_empty() {
                problems.push(format!(
                    "{} scenarios failed against the real PocketBase: the runner disagrees with the corpus",
                    failed.len()
                ));
            }
        }
        ServerKind::PocketBun => {
            let regressions: Vec<&&Outcome> =
                failed.iter().filter(|o| expected.contains(&o.id)).collect();
            for o in &regressions {
                say!(
                    "REGRESSION {} [{}]: {}",
                    o.id,
                    o.name,
                    o.reason.as_deref().unwrap_or("")
                );
                if let Some(b) = &o.body_excerpt {
                    say!("  body: {b}");
                }
            }
            if !regressions.is_empty() {
                problems.push(format!(
                    "{} scenarios listed in tests/conformance-expected.json failed",
                    regressions.len()
                ));
            }
            let new: Vec<&str> = passed
                .iter()
                .copied()
                .filter(|id| !expected.contains(*id))
                .collect();
            if !new.is_empty() {
                if env_flag("CONFORMANCE_BLESS") {
                    let mut all = expected.clone();
                    all.extend(new.iter().map(|s| s.to_string()));
                    save_expected(&all);
                    say!(
                        "added {} newly passing ids to tests/conformance-expected.json",
                        new.len()
                    );
                } else {
                    say!(
                        "{} scenarios pass but are not in tests/conformance-expected.json \
                         (add them, or rerun with CONFORMANCE_BLESS=1):",
                        new.len()
                    );
                    for id in &new {
                        say!("  {id}");
                    }
                }
            }
            let unexplained = failed.len() - regressions.len();
            if unexplained > 0 && !verbose {
                say!(
                    "{unexplained} failing scenarios are not in the expected list \
                     (CONFORMANCE_VERBOSE=1 or CONFORMANCE_FILTER=... prints why)"
                );
            }
        }
    }
    if let Some(o) = failed.iter().find(|o| !o.server_started) {
        say!(
            "first server start failure ({}): {}",
            o.id,
            o.reason.as_deref().unwrap_or("")
        );
    }
    say!(
        "# {elapsed:.1}s, {workers} workers, {} scenarios",
        outcomes.len()
    );
    // not in the "N passed, N failed" shape: scenarios of unbuilt areas fail by design, and
    // that shape is what CI reads as a test runner's verdict
    say!(
        "conformance total: {} of {} scenarios pass ({} not yet)",
        passed.len(),
        outcomes.len(),
        failed.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("; "));
}
