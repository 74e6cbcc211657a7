//! `/api/crons` end to end: PocketBase's system jobs, the auto-backup job following
//! `backups.cron`, and jobs started on demand doing their work (logs retention, backup
//! rotation with `cronMaxKeep`).
//!
//! needsGo scenarios of PocketBase's `apis/cron_test.go`: its `BeforeTestFunc` registers a
//! Go job (`test`) and its `AfterTestFunc` checks whether that job ran. Ported here with
//! PocketBase's own jobs in its place: "unauthorized" (401), "authorized as regular user"
//! (403), "authorized as superuser (missing job)" (404 envelope) and "(existing job)" (204,
//! and the job's effect: `__pbLogsCleanup__` deleting old logs, the auto-backup job making
//! and rotating backups) — `lists_and_runs_pocketbases_jobs` and the tests below it.
//! Not portable over HTTP: "authorized as superuser (empty list)" removes every registered
//! job from the Go app (`app.Cron().RemoveAll()`); no API can unregister PocketBase's jobs.

use pocketbun_tests::fixture::fixture_dir;
use pocketbun_tests::{Server, ServerSpec};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

const SUPERUSER: &str = pocketbun_tests::fixture::SUPERUSER_TOKEN;
const USER: &str = pocketbun_tests::fixture::USER_TOKEN;

fn start() -> Server {
    let fixture = fixture_dir();
    Server::start(&ServerSpec::from_env(), Some(&fixture)).unwrap_or_else(|e| panic!("{e}"))
}

fn wait_until(what: &str, server: &Server, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn lists_and_runs_pocketbases_jobs() {
    let server = start();
    for (method, path) in [
        ("GET", "/api/crons"),
        ("POST", "/api/crons/__pbLogsCleanup__"),
    ] {
        assert_eq!(server.call(method, path, None, "").0, 401);
        assert_eq!(server.call(method, path, Some(USER), "").0, 403);
    }
    let (status, body) = server.call("GET", "/api/crons", Some(SUPERUSER), "");
    assert_eq!(status, 200);
    assert_eq!(
        body,
        "[{\"id\":\"__pbDBOptimize__\",\"expression\":\"0 0 * * *\"},{\"id\":\"__pbMFACleanup__\",\"expression\":\"0 * * * *\"},{\"id\":\"__pbOTPCleanup__\",\"expression\":\"0 * * * *\"},{\"id\":\"__pbLogsCleanup__\",\"expression\":\"0 */6 * * *\"}]"
    );
    let (status, body) = server.call("POST", "/api/crons/missing", Some(SUPERUSER), "");
    assert_eq!(
        (status, body.as_str()),
        (
            404,
            "{\"data\":{},\"message\":\"Missing or invalid cron job\",\"status\":404}"
        )
    );
    for id in ["__pbDBOptimize__", "__pbMFACleanup__", "__pbOTPCleanup__"] {
        let (status, body) = server.call("POST", &format!("/api/crons/{id}"), Some(SUPERUSER), "");
        assert_eq!((status, body.as_str()), (204, ""), "{id}");
    }
    // the server keeps serving while jobs run
    assert_eq!(server.call("GET", "/api/health", None, "").0, 200);
}

#[test]
fn logs_cleanup_deletes_logs_older_than_max_days() {
    let server = start();
    let aux = server.data_dir().join("auxiliary.db");
    let insert = |id: &str, created: &str| {
        let conn = rusqlite::Connection::open(&aux).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn.execute(
            "INSERT INTO _logs (id, level, message, data, created, updated) VALUES (?1, 0, 'old', '{}', ?2, ?2)",
            [id, created],
        )
        .unwrap();
    };
    insert("old_log_entry_1", "2020-01-01 00:00:00.000Z");
    insert("new_log_entry_1", "2999-01-01 00:00:00.000Z");
    let count = |id: &str| -> i64 {
        let conn = rusqlite::Connection::open(&aux).unwrap();
        conn.query_row("SELECT COUNT(*) FROM _logs WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap()
    };
    assert_eq!(count("old_log_entry_1"), 1);
    let (status, _) = server.call("POST", "/api/crons/__pbLogsCleanup__", Some(SUPERUSER), "");
    assert_eq!(status, 204);
    wait_until("the old log to go", &server, || {
        count("old_log_entry_1") == 0
    });
    assert_eq!(count("new_log_entry_1"), 1);
}

fn auto_backups(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("backups"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with("@auto_pb_backup_") && n.ends_with(".zip"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn auto_backup_follows_the_settings_and_keeps_cron_max_keep() {
    let server = start();
    let (status, body) = server.call(
        "PATCH",
        "/api/settings",
        Some(SUPERUSER),
        r#"{"backups":{"cron":"0 3 * * *","cronMaxKeep":1}}"#,
    );
    assert_eq!(status, 200, "{body}");
    let (_, body) = server.call("GET", "/api/crons", Some(SUPERUSER), "");
    let jobs: Value = serde_json::from_str(&body).unwrap();
    assert!(
        jobs.as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == "__pbAutoBackup__" && j["expression"] == "0 3 * * *"),
        "{body}"
    );
    let dir = server.data_dir().to_path_buf();
    let (status, _) = server.call("POST", "/api/crons/__pbAutoBackup__", Some(SUPERUSER), "");
    assert_eq!(status, 204);
    wait_until("the first auto backup", &server, || {
        auto_backups(&dir).len() == 1
    });
    let first = auto_backups(&dir)[0].clone();
    assert!(first.starts_with("@auto_pb_backup_acme_test_"), "{first}");
    // names have a one second resolution
    std::thread::sleep(Duration::from_millis(1100));
    let (status, _) = server.call("POST", "/api/crons/__pbAutoBackup__", Some(SUPERUSER), "");
    assert_eq!(status, 204);
    wait_until("the rotation", &server, || {
        let now = auto_backups(&dir);
        now.len() == 1 && now[0] != first
    });

    // clearing backups.cron removes the job
    server.call(
        "PATCH",
        "/api/settings",
        Some(SUPERUSER),
        r#"{"backups":{"cron":""}}"#,
    );
    let (_, body) = server.call("GET", "/api/crons", Some(SUPERUSER), "");
    assert!(!body.contains("__pbAutoBackup__"), "{body}");
}
