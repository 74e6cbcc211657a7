//! Memory handed back when idle: a reader's page cache after a quiet period, the writer's
//! after 2 s without jobs (both then call the allocator's trim hook on their own thread),
//! and the request log writer's smaller cache.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pocketbun_storage::rusqlite::{ffi, Connection};
use pocketbun_storage::{Store, StoreOptions};

/// Forced trim hook calls on `data.db`'s writer thread, and on any other thread.
static WRITER_TRIMS: AtomicUsize = AtomicUsize::new(0);
static OTHER_TRIMS: AtomicUsize = AtomicUsize::new(0);

fn count_trim(force: bool) {
    assert!(force, "storage trims only right after a release");
    let on_writer = std::thread::current().name() == Some("pb-writer-data");
    if on_writer {
        &WRITER_TRIMS
    } else {
        &OTHER_TRIMS
    }
    .fetch_add(1, Ordering::SeqCst);
}

/// Bytes of page cache `conn` holds (`SQLITE_DBSTATUS_CACHE_USED`).
fn cache_used(conn: &Connection) -> i64 {
    let (mut cur, mut high) = (0, 0);
    // SAFETY: the handle is live for the borrow of `conn`; the out-pointers are valid ints
    let rc = unsafe {
        ffi::sqlite3_db_status(
            conn.handle(),
            ffi::SQLITE_DBSTATUS_CACHE_USED,
            &mut cur,
            &mut high,
            0,
        )
    };
    assert_eq!(rc, ffi::SQLITE_OK);
    i64::from(cur)
}

fn store(name: &str) -> Store {
    pocketbun_storage::set_trim_hook(count_trim);
    let dir = common::temp_dir(name).join("pb_data");
    Store::open(&dir, StoreOptions::default()).unwrap()
}

#[test]
fn an_idle_reader_releases_its_cache_and_still_reads() {
    let store = store("reader-release");
    // ~4 MB of rows: far more than an empty cache holds
    store
        .writer()
        .submit_blocking(|c| {
            c.execute_batch(
                "CREATE TABLE t (v TEXT);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
                 INSERT INTO t SELECT printf('%0200d', i) FROM n;",
            )?;
            Ok(())
        })
        .unwrap();
    let reader = store.reader().unwrap();
    assert!(
        !reader.release_if_idle(),
        "a reader that never read released"
    );
    let sum = |c: &Connection| -> pocketbun_storage::Result<i64> {
        Ok(c.query_row("SELECT sum(length(v)) FROM t", [], |r| r.get(0))?)
    };
    let total = reader.read(sum).unwrap();
    assert_eq!(total, 20000 * 200);
    let full = reader.read(|c| Ok(cache_used(c))).unwrap();
    assert!(full > 3_000_000, "the scan cached only {full} bytes");

    // used since the last tick: kept; then a whole tick without reads: released
    assert!(!reader.release_if_idle());
    let trims = OTHER_TRIMS.load(Ordering::SeqCst);
    assert!(reader.release_if_idle(), "an idle reader kept its cache");
    assert!(
        OTHER_TRIMS.load(Ordering::SeqCst) > trims,
        "no trim after the release"
    );
    // (reading the figure is a read: it marks the cache used again)
    let after = reader.read(|c| Ok(cache_used(c))).unwrap();
    assert!(after < full / 20, "{after} bytes still cached of {full}");

    // the same connection answers as before, from a cold cache
    assert_eq!(reader.read(sum).unwrap(), total);
    assert!(reader.read(|c| Ok(cache_used(c))).unwrap() > 3_000_000);
    // a reader in use is never released
    for _ in 0..3 {
        reader.read(sum).unwrap();
        assert!(!reader.release_if_idle());
    }
}

#[test]
fn the_writers_release_when_idle_and_the_log_writer_caches_little() {
    let store = store("writer-release");
    let cache_size = |c: &Connection| -> pocketbun_storage::Result<i64> {
        Ok(c.query_row("PRAGMA cache_size", [], |r| r.get(0))?)
    };
    assert_eq!(store.writer().submit_blocking(cache_size).unwrap(), -32000);
    assert_eq!(
        store.aux_writer().submit_blocking(cache_size).unwrap(),
        -i64::from(StoreOptions::default().aux_writer_cache_kib)
    );
    assert_eq!(store.reader().unwrap().read(cache_size).unwrap(), -32000);

    // fill the data writer's cache, then leave it idle: after 2 s it releases and trims
    let filled = store
        .writer()
        .submit_blocking(|c| {
            c.execute_batch(
                "CREATE TABLE w (v TEXT);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
                 INSERT INTO w SELECT printf('%0200d', i) FROM n;",
            )?;
            Ok(cache_used(c))
        })
        .unwrap();
    assert!(filled > 1_000_000, "the writer cached only {filled} bytes");
    let trims = WRITER_TRIMS.load(Ordering::SeqCst);
    let started = Instant::now();
    while WRITER_TRIMS.load(Ordering::SeqCst) == trims {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "an idle writer never trimmed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = store
        .writer()
        .submit_blocking(|c| Ok(cache_used(c)))
        .unwrap();
    assert!(left < filled / 10, "{left} bytes still cached of {filled}");
}
