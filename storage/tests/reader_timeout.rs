//! Reads have a deadline: a runaway query is interrupted with `Timeout`
//! and the connection stays usable.

mod common;

use std::time::{Duration, Instant};

use pocketbun_storage::{ErrorKind, Store, StoreOptions};

const RUNAWAY: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)
                       SELECT max(x) FROM c";

#[test]
fn runaway_read_is_interrupted() {
    let dir = common::temp_dir("read-timeout").join("pb_data");
    let opts = StoreOptions {
        read_timeout: Duration::from_millis(200),
        ..StoreOptions::default()
    };
    let store = Store::open(&dir, opts).unwrap();
    let reader = store.reader().unwrap();

    let started = Instant::now();
    let err = reader
        .read(|c| Ok(c.query_row(RUNAWAY, [], |r| r.get::<_, i64>(0))?))
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // the same connection keeps working, and a quick read is not affected
    let one: i64 = reader
        .read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(one, 1);

    // explicit per-call deadline
    let err = reader
        .read_with_timeout(Duration::from_millis(50), |c| {
            Ok(c.query_row(RUNAWAY, [], |r| r.get::<_, i64>(0))?)
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
}

#[test]
fn readers_cannot_write() {
    let dir = common::temp_dir("read-only").join("pb_data");
    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    let reader = store.reader().unwrap();
    let err = reader
        .read(|c| Ok(c.execute("DELETE FROM _params", [])?))
        .unwrap_err();
    assert!(err.message().contains("readonly"), "{err}");
    // and the reader is Send: it can be moved to its worker thread
    let n = std::thread::spawn(move || {
        reader
            .read(|c| Ok(c.query_row("SELECT count(*) FROM _params", [], |r| r.get::<_, i64>(0))?))
            .unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(n, 1);
}
