//! The single writer folds concurrent jobs into shared transactions, yet a
//! failing job never takes its neighbours down, and an answered success is
//! already committed.

mod common;

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use pocketbun_storage::rusqlite::{params, Connection, OpenFlags};
use pocketbun_storage::{ErrorKind, Reply, StorageError, Store, StoreOptions};

/// Minimal executor: parks the thread until the writer thread wakes it.
fn block_on<T>(mut fut: Reply<T>) -> pocketbun_storage::Result<T> {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = std::pin::Pin::new(&mut fut).poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}

fn independent_count(store: &Store, v: &str) -> i64 {
    let conn = Connection::open_with_flags(
        store.dir().join("data.db"),
        OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.query_row("SELECT count(*) FROM t WHERE v = ?1", [v], |r| r.get(0))
        .unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Ok,
    Unique,
    CustomErr,
    Panic,
}

fn plan(thread_no: usize, i: usize) -> Expect {
    if thread_no == 3 && i == 17 {
        Expect::Panic
    } else if i % 11 == 5 {
        Expect::Unique
    } else if i % 7 == 3 {
        Expect::CustomErr
    } else {
        Expect::Ok
    }
}

#[test]
fn concurrent_jobs_share_transactions_and_fail_alone() {
    let dir = common::temp_dir("group-commit").join("pb_data");
    let store = Arc::new(Store::open(&dir, StoreOptions::default()).unwrap());
    let writer = store.writer();
    writer
        .submit_blocking(|c| {
            c.execute_batch(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE NOT NULL);
                 INSERT INTO t (v) VALUES ('dup');",
            )?;
            Ok(())
        })
        .unwrap();
    let before = writer.stats();

    // hold the writer busy so that the submissions below queue up
    let gate = writer.submit(|_| {
        thread::sleep(Duration::from_millis(300));
        Ok(())
    });

    const THREADS: usize = 8;
    const PER_THREAD: usize = 60;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let writer = store.writer();
            let store = Arc::clone(&store);
            thread::spawn(move || {
                let replies: Vec<_> = (0..PER_THREAD)
                    .map(|i| {
                        let expect = plan(t, i);
                        let v = format!("{t}-{i}");
                        writer.submit(move |c: &Connection| {
                            match expect {
                                Expect::Unique => {
                                    c.execute("INSERT INTO t (v) VALUES ('dup')", [])?;
                                }
                                _ => {
                                    c.execute("INSERT INTO t (v) VALUES (?1)", params![v])?;
                                }
                            }
                            match expect {
                                Expect::CustomErr => {
                                    Err(StorageError::new(ErrorKind::Invalid, "changed my mind"))
                                }
                                Expect::Panic => panic!("job blew up"),
                                _ => Ok(c.last_insert_rowid()),
                            }
                        })
                    })
                    .collect();
                for (i, reply) in replies.into_iter().enumerate() {
                    // half awaited as futures, half waited on
                    let result = if i % 2 == 0 {
                        block_on(reply)
                    } else {
                        reply.wait()
                    };
                    let v = format!("{t}-{i}");
                    match plan(t, i) {
                        Expect::Ok => {
                            assert!(result.is_ok(), "{v}: {result:?}");
                            // committed before being answered
                            assert_eq!(independent_count(&store, &v), 1, "{v} not durable");
                        }
                        Expect::Unique => {
                            assert_eq!(result.unwrap_err().kind(), ErrorKind::Unique)
                        }
                        Expect::CustomErr => {
                            assert_eq!(result.unwrap_err().kind(), ErrorKind::Invalid);
                            assert_eq!(independent_count(&store, &v), 0, "{v} not rolled back");
                        }
                        Expect::Panic => {
                            assert_eq!(result.unwrap_err().kind(), ErrorKind::Internal);
                            assert_eq!(independent_count(&store, &v), 0);
                        }
                    }
                }
            })
        })
        .collect();
    gate.wait().unwrap();
    for h in handles {
        h.join().unwrap();
    }

    let expected_ok = (0..THREADS)
        .flat_map(|t| (0..PER_THREAD).map(move |i| plan(t, i)))
        .filter(|e| *e == Expect::Ok)
        .count() as i64;
    let total: i64 = store
        .reader()
        .unwrap()
        .read(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(total, expected_ok + 1);

    let after = writer.stats();
    let jobs = after.jobs - before.jobs;
    let transactions = after.transactions - before.transactions;
    assert_eq!(jobs, (THREADS * PER_THREAD + 1) as u64);
    assert!(
        transactions * 4 < jobs,
        "expected grouping: {transactions} transactions for {jobs} jobs"
    );

    // closing answers nothing more; reopening sees everything
    store.close();
    let err = writer.submit_blocking(|_| Ok(())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
    drop(store);
    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    let again: i64 = store
        .reader()
        .unwrap()
        .read(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(again, total);
}

/// A job's own error type: a refusal rolls the job back and arrives as itself, next to
/// neighbours in the same transaction that commit; writer failures arrive converted.
#[derive(Debug, PartialEq)]
enum Refusal {
    Rule(String),
    Storage(ErrorKind),
}

impl From<StorageError> for Refusal {
    fn from(e: StorageError) -> Self {
        Refusal::Storage(e.kind())
    }
}

#[test]
fn typed_job_errors_roll_back_and_reach_the_caller() {
    let dir = common::temp_dir("typed-job").join("pb_data");
    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    let writer = store.writer();
    writer
        .submit_blocking(|c| Ok(c.execute_batch("CREATE TABLE t (v TEXT UNIQUE NOT NULL)")?))
        .unwrap();
    // queue three jobs behind a busy one so they share one transaction
    let gate = writer.submit(|_| {
        thread::sleep(Duration::from_millis(200));
        Ok(())
    });
    let insert = |v: &'static str, refuse: bool| {
        writer.submit_with(move |c: &Connection| {
            c.execute("INSERT INTO t (v) VALUES (?1)", [v])
                .map_err(|e| Refusal::from(StorageError::from(e)))?;
            if refuse {
                return Err(Refusal::Rule(format!("{v} refused")));
            }
            Ok(v.len())
        })
    };
    let kept = insert("kept", false);
    let refused = insert("refused", true);
    let dup = insert("kept", false);
    gate.wait().unwrap();
    assert_eq!(kept.wait(), Ok(4));
    assert_eq!(refused.wait(), Err(Refusal::Rule("refused refused".into())));
    assert_eq!(dup.wait(), Err(Refusal::Storage(ErrorKind::Unique)));
    assert_eq!(independent_count(&store, "kept"), 1);
    assert_eq!(independent_count(&store, "refused"), 0);
    store.close();
    let closed = writer.submit_with(|_| Ok::<(), Refusal>(())).wait();
    assert_eq!(closed, Err(Refusal::Storage(ErrorKind::Closed)));
}

#[test]
fn close_flushes_queued_jobs() {
    let dir = common::temp_dir("close-flush").join("pb_data");
    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    let writer = store.writer();
    writer
        .submit_blocking(|c| Ok(c.execute_batch("CREATE TABLE q (n INTEGER)")?))
        .unwrap();
    let replies: Vec<_> = (0..200)
        .map(|n| {
            writer.submit(move |c: &Connection| {
                if n == 0 {
                    thread::sleep(Duration::from_millis(100));
                }
                Ok(c.execute("INSERT INTO q (n) VALUES (?1)", [n])?)
            })
        })
        .collect();
    store.close();
    for r in replies {
        assert_eq!(r.wait().unwrap(), 1);
    }
    drop(store);
    let conn = Connection::open(dir.join("data.db")).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM q", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 200);
    // the final checkpoint left nothing in the WAL
    let wal = std::fs::metadata(dir.join("data.db-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert_eq!(wal, 0);
}

#[test]
fn writer_autocheckpoints_only_as_a_backstop() {
    let autocheckpoint = |name: &str, opts: StoreOptions| -> i64 {
        let dir = common::temp_dir(name).join("pb_data");
        let store = Store::open(&dir, opts).unwrap();
        let value = store
            .writer()
            .submit_blocking(|c| Ok(c.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))?))
            .unwrap();
        store.close();
        value
    };
    // four times the checkpointer's 4 MiB, in 4 KiB frames
    assert_eq!(autocheckpoint("backstop", StoreOptions::default()), 4096);
    let external = StoreOptions {
        external_checkpoints: true,
        ..StoreOptions::default()
    };
    assert_eq!(autocheckpoint("backstop-external", external), 0);

    let dir = common::temp_dir("no-autockpt").join("pb_data");
    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    let (journal, sync, fk, busy): (String, i64, i64, i64) = store
        .writer()
        .submit_blocking(|c| {
            Ok((
                c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
                c.query_row("PRAGMA synchronous", [], |r| r.get(0))?,
                c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?,
                c.query_row("PRAGMA busy_timeout", [], |r| r.get(0))?,
            ))
        })
        .unwrap();
    assert_eq!((journal.as_str(), sync, fk, busy), ("wal", 1, 1, 10_000));
}

#[test]
fn background_checkpointer_moves_wal_into_the_database() {
    let dir = common::temp_dir("checkpointer").join("pb_data");
    let opts = StoreOptions {
        checkpoint_interval: Duration::from_millis(50),
        checkpoint_wal_bytes: u64::MAX, // only the periodic path
        ..StoreOptions::default()
    };
    let store = Store::open(&dir, opts).unwrap();
    let db_size = || std::fs::metadata(dir.join("data.db")).unwrap().len();
    let wal_size = || std::fs::metadata(dir.join("data.db-wal")).unwrap().len();
    let initial = db_size();
    store
        .writer()
        .submit_blocking(|c| {
            c.execute_batch("CREATE TABLE blobs (b BLOB)")?;
            for _ in 0..64 {
                c.execute("INSERT INTO blobs (b) VALUES (zeroblob(16384))", [])?;
            }
            Ok(())
        })
        .unwrap();
    // the writer never checkpoints itself: the pages sit in the WAL first
    assert!(wal_size() > 1024 * 1024);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while db_size() < initial + 1024 * 1024 {
        assert!(
            std::time::Instant::now() < deadline,
            "checkpointer did not copy the WAL into data.db"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// A steady stream of commits keeps the WAL short: a checkpoint on the checkpointer's own
/// connection cannot restart the log while the next commit is already under way, so before
/// the writer's backstop `data.db-wal` grew by every page written until the load paused.
#[test]
fn wal_stays_short_under_a_steady_write_stream() {
    let dir = common::temp_dir("wal-bounded").join("pb_data");
    let opts = StoreOptions {
        checkpoint_wal_bytes: 256 * 1024, // backstop at 256 frames (~1 MiB)
        ..StoreOptions::default()
    };
    let store = Store::open(&dir, opts).unwrap();
    let writer = store.writer();
    writer
        .submit_blocking(|c| Ok(c.execute_batch("CREATE TABLE blobs (b BLOB)")?))
        .unwrap();
    // ~16 MiB written in 4,000 commits of one 4 KiB row each
    for _ in 0..40 {
        let replies: Vec<_> = (0..100)
            .map(|_| {
                writer.submit(|c: &Connection| {
                    Ok(c.execute("INSERT INTO blobs (b) VALUES (zeroblob(4000))", [])?)
                })
            })
            .collect();
        for r in replies {
            assert_eq!(r.wait().unwrap(), 1);
        }
    }
    let wal = std::fs::metadata(dir.join("data.db-wal")).unwrap().len();
    assert!(
        wal < 4 * 1024 * 1024,
        "data.db-wal is {wal} bytes after ~16 MiB of commits"
    );
    store.close();
}

/// Jobs submitted as one write run without a savepoint: a failed statement (a duplicate) is
/// undone by SQLite alone and its neighbours commit; a job that wrote and then failed (its
/// own error, a trigger's `RAISE(FAIL)`, which keeps the statement's rows) or whose trigger
/// wrote before a `RAISE(ABORT)` (SQLite undoes it, but `total_changes` counted the
/// trigger's row) has its writes undone with the whole transaction, and whatever was
/// answered as stored is stored.
#[test]
fn one_write_jobs_fail_alone_or_take_their_write_back() {
    let dir = common::temp_dir("one-write").join("pb_data");
    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    let writer = store.writer();
    writer
        .submit_blocking(|c| {
            Ok(c.execute_batch(
                "CREATE TABLE t (v TEXT UNIQUE NOT NULL);
                 CREATE TABLE audit (v TEXT);
                 CREATE TRIGGER abort_bad AFTER INSERT ON t WHEN new.v LIKE 'bad%' BEGIN
                   INSERT INTO audit VALUES (new.v); SELECT RAISE(ABORT, 'bad value'); END;
                 CREATE TRIGGER fail_half AFTER INSERT ON t WHEN new.v LIKE 'half%' BEGIN
                   INSERT INTO audit VALUES (new.v); SELECT RAISE(FAIL, 'half done'); END;",
            )?)
        })
        .unwrap();
    let count = |table: &str, v: &str| -> i64 {
        let conn = Connection::open_with_flags(
            store.dir().join("data.db"),
            OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        conn.query_row(
            &format!("SELECT count(*) FROM {table} WHERE v = ?1"),
            [v],
            |r| r.get(0),
        )
        .unwrap()
    };
    // `then_fail`: the job returns an error after its INSERT succeeded
    let insert = |v: &'static str, then_fail: bool| {
        writer.submit_one_write(move |c: &Connection| {
            c.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
            if then_fail {
                return Err(StorageError::new(ErrorKind::Invalid, "changed my mind"));
            }
            Ok(())
        })
    };
    // queued behind a busy job, so each round shares one transaction
    let gate = || {
        writer.submit(|_| {
            thread::sleep(Duration::from_millis(200));
            Ok(())
        })
    };

    // failed statements: the neighbours commit
    let g = gate();
    let a = insert("a", false);
    let dup = insert("a", false);
    let d = insert("d", false);
    g.wait().unwrap();
    assert!(a.wait().is_ok());
    assert_eq!(dup.wait().unwrap_err().kind(), ErrorKind::Unique);
    assert!(d.wait().is_ok());
    assert_eq!((count("t", "a"), count("t", "d")), (1, 1));

    // a job that wrote and then failed: its write is gone, answers match what is stored
    for (what, v, then_fail, left, right) in [
        ("own error", "e", true, "b1", "c1"),
        ("RAISE(FAIL)", "half", false, "b2", "c2"),
        ("RAISE(ABORT)", "bad", false, "b3", "c3"),
    ] {
        let g = gate();
        let before = insert(left, false);
        let failed = insert(v, then_fail);
        let after = insert(right, false);
        // the gate shares the transaction too: it may be answered with the rollback
        let _ = g.wait();
        assert!(failed.wait().is_err(), "{what}");
        assert_eq!(
            (count("t", v), count("audit", v)),
            (0, 0),
            "{what}: write kept"
        );
        for (reply, n) in [(before, left), (after, right)] {
            // the answer first: a job after the rollback runs in a transaction of its own,
            // which may commit after a count taken before its answer
            let answer = reply.wait();
            let stored = count("t", n);
            match answer {
                Ok(()) => assert_eq!(stored, 1, "{what}: {n} answered but not stored"),
                Err(_) => assert_eq!(stored, 0, "{what}: {n} failed but stored"),
            }
        }
    }
    store.close();
}
