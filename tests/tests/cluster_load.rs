//! `loadtest cluster` (issue 19, item 6) runs end to end on a tiny scale: it starts the
//! cluster example (`examples/cluster/run.py`: moto, nats-server, a primary, one replica, the
//! front) with this workspace's `pocketbun`, seeds it, and its JSON report shows reads
//! answered by the primary and by the replica without errors while creates went through the
//! front, sampled creates seen on the replica (replication lag) and every realtime event
//! delivered to SSE clients of the replica. Afterwards no process it started is left.
//!
//! Speed is not asserted (that is what the command is for, see BENCHMARKS.md); durations are
//! cut to about a second each. Missing Litestream, nats-server or moto fails under `CI=true`,
//! else skips with one line.

use pocketbun_tests::{need, target_dir, workspace_root};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

/// `loadtest` of this workspace, built like `pocketbun_bin` builds `pocketbun` (debug).
fn loadtest_bin() -> PathBuf {
    let out = Command::new(env!("CARGO"))
        .current_dir(workspace_root())
        .args([
            "build",
            "--quiet",
            "-p",
            "pocketbun-loadtest",
            "--bin",
            "loadtest",
        ])
        .arg("--target-dir")
        .arg(target_dir())
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo build -p pocketbun-loadtest failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target_dir().join("debug").join("loadtest")
}

/// Pids of processes whose command line or working directory mentions `needle` (run.py
/// starts moto, nats-server, the nodes and the front in its `--dir`).
fn processes_with(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cwd = std::fs::read_link(e.path().join("cwd")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(needle) || cwd.to_string_lossy().contains(needle)
        {
            out.push(pid);
        }
    }
    out
}

#[test]
fn loadtest_cluster_measures_a_small_cluster_end_to_end() {
    const TEST: &str = "loadtest_cluster_measures_a_small_cluster_end_to_end";
    let Some(litestream) = need::litestream(TEST) else {
        return;
    };
    let Some(nats) = need::nats_server(TEST) else {
        return;
    };
    if pocketbun_tests::s3::moto_python().is_none() {
        return need::unavailable(TEST, "moto[server] cannot be installed here");
    }
    let pocketbun = pocketbun_tests::pocketbun_bin();
    let loadtest = loadtest_bin();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("cluster.json");
    let started = Instant::now();
    let out = Command::new(&loadtest)
        .args([
            "cluster",
            "--replicas",
            "1",
            "--users",
            "2",
            "--posts",
            "200",
        ])
        .args(["--notes", "0", "-w", "view", "-c", "4", "-t", "1"])
        .args(["-d", "1s", "--warmup", "200ms", "--write-rate", "5"])
        .args([
            "--lag-rates",
            "20",
            "--lag-duration",
            "2s",
            "--lag-samples",
            "5",
        ])
        .args([
            "--realtime-clients",
            "5",
            "--realtime-events",
            "3",
            "--idle",
            "1s",
        ])
        .arg(format!("--pocketbun={}", pocketbun.display()))
        .arg(format!(
            "--run-py={}",
            workspace_root().join("examples/cluster/run.py").display()
        ))
        .arg(format!("--json={}", json.display()))
        .env("LITESTREAM_BIN", &litestream)
        .env("NATS_SERVER_BIN", &nats)
        // where the tests installed moto (`target/moto-venv`), for run.py's lookup
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("MOTO_SERVER_BIN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("loadtest runs");
    // its scratch dir, where run.py and everything it starts run
    let scratch = format!("pocketbun-loadtest-{}-cluster", out.id());
    let out = out.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "loadtest cluster failed:\n{stdout}\n{stderr}"
    );
    eprintln!("loadtest cluster took {:?}", started.elapsed());
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).expect("JSON report");

    // the idle cluster's S3 requests, from moto's log: the replica's follower polls with LISTs
    assert!(
        r["idle_s3_per_s"]["list"].as_f64().unwrap() > 0.0,
        "{}",
        r["idle_s3_per_s"]
    );

    // reads: the primary alone, then the replica; both answered, no errors
    let reads = r["reads"].as_array().unwrap();
    let nodes: Vec<&str> = reads.iter().map(|x| x["nodes"].as_str().unwrap()).collect();
    assert_eq!(nodes, ["primary", "1 replica"], "{stdout}");
    for x in reads {
        let s = &x["summary"];
        assert!(s["responses"].as_u64().unwrap() > 0, "{x}");
        assert_eq!(s["errors"]["total"], 0, "{x}");
        // creates went through the front meanwhile, all answered 2xx
        assert!(x["writes"]["responses"].as_u64().unwrap() > 0, "{x}");
        assert_eq!(x["writes"]["errors"]["total"], 0, "{x}");
    }
    assert!(stdout.contains("1 replica"), "{stdout}");

    // the writer at full speed (closed loop on the primary): creates answered, no errors
    let w = &r["writer"]["summary"];
    assert!(w["responses"].as_u64().unwrap() > 0, "{w}");
    assert_eq!(w["errors"]["total"], 0, "{w}");

    // lag: sampled creates were all seen on the replica, after some time but well within 30 s
    let lag = &r["lag"][0];
    assert_eq!(lag["writes"]["errors"]["total"], 0, "{lag}");
    assert!(lag["lag"]["responses"].as_u64().unwrap() >= 3, "{lag}");
    assert_eq!(lag["lag"]["errors"]["total"], 0, "{lag}");
    let p50 = lag["lag"]["latency_us"]["p50"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 < 30e6, "{lag}");

    // realtime: every event reached every SSE client of the replica
    let rt = &r["realtime"];
    assert_eq!(rt["subscribed"], 5, "{rt}");
    assert_eq!(rt["expected"], 15, "{rt}");
    assert_eq!(rt["delivered"], 15, "{rt}");

    // run.py and everything under it are gone (their data dir was under the run's scratch dir)
    let leftovers = processes_with(&scratch);
    assert!(leftovers.is_empty(), "still running: {leftovers:?}");
}
