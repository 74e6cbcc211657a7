//! `kill -9` in the middle of a stream of writes loses no acknowledged write and corrupts
//! nothing. The writing process is this test binary itself, re-run in child mode, so the
//! kill hits the real writer thread mid-commit.

mod common;

use pocketbun_storage::rusqlite::{params, Connection};
use pocketbun_storage::{Store, StoreOptions};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "POCKETBUN_CRASH_CHILD_DIR";
const WRITER_THREADS: usize = 8;

/// Child mode: writes rows as fast as it can from several threads and prints the id of each
/// write once the writer has acknowledged it. Never returns on its own.
#[test]
#[ignore = "runs only as the child of kill9_loses_no_acknowledged_write"]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Store::open(&PathBuf::from(dir), StoreOptions::default()).unwrap();
    store
        .writer()
        .submit_blocking(|conn| {
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS crash_t (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)",
            )?;
            Ok(())
        })
        .unwrap();
    println!("ready");
    let threads: Vec<_> = (0..WRITER_THREADS)
        .map(|t| {
            let writer = store.writer();
            std::thread::spawn(move || {
                let mut stdout = std::io::stdout();
                for i in 0.. {
                    let id = (i * WRITER_THREADS + t) as i64;
                    let payload = format!("row {id} {}", "x".repeat(200));
                    writer
                        .submit_blocking(move |conn| {
                            conn.execute(
                                "INSERT INTO crash_t (id, payload) VALUES (?1, ?2)",
                                params![id, payload],
                            )?;
                            Ok(())
                        })
                        .unwrap();
                    let _ = writeln!(stdout, "{id}");
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

#[test]
fn kill9_loses_no_acknowledged_write() {
    for round in 0..3 {
        let dir = common::temp_dir(&format!("crash-{round}"));
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child_writer",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut acked = BTreeSet::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let started = Instant::now();
        // each round kills at a different depth into the stream
        let kill_after = 500 + round * 1500;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Ok(id) = line.trim().parse::<i64>() {
                acked.insert(id);
            }
            if acked.len() >= kill_after || started.elapsed() > Duration::from_secs(60) {
                break;
            }
        }
        // SIGKILL: no destructor, no final checkpoint, the WAL is left as it is
        unsafe {
            libc::kill(child.id() as i32, libc::SIGKILL);
        }
        // acknowledgements already in the pipe count too
        for line in lines {
            if let Ok(id) = line.unwrap_or_default().trim().parse::<i64>() {
                acked.insert(id);
            }
        }
        let _ = child.wait();
        assert!(
            acked.len() >= kill_after,
            "child acknowledged only {} writes",
            acked.len()
        );

        let conn = Connection::open(dir.join("data.db")).unwrap();
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok", "round {round}: database corrupted");
        let mut stmt = conn.prepare("SELECT id FROM crash_t").unwrap();
        let stored: BTreeSet<i64> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let lost: Vec<_> = acked.difference(&stored).take(10).collect();
        assert!(
            lost.is_empty(),
            "round {round}: acknowledged writes lost: {lost:?}"
        );
        // PocketBase's own tables survived too
        let collections: i64 = conn
            .query_row("SELECT count(*) FROM _collections", [], |r| r.get(0))
            .unwrap();
        assert!(collections >= 6);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
