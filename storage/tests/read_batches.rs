//! One read transaction for many reads (`Reader::batch_reads`, issue 18): a batched reader
//! keeps its transaction across reads until `end_batch`, but begins a new one as soon as the
//! store's writer committed (read-your-writes), still interrupts a read at its deadline, and
//! sees another process's writes at its next transaction.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::time::Duration;

use pocketbun_storage::rusqlite::Connection;
use pocketbun_storage::{checkpoint, ErrorKind, Reader, Store, StoreOptions};

/// A closer that counts its wakes: one per transaction begun.
#[derive(Default)]
struct Wakes(AtomicUsize);

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

impl Wakes {
    fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

fn rows(reader: &Reader) -> i64 {
    reader
        .read(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
        .unwrap()
}

/// A store with an empty table `t`, and a connection of "another process" to its file.
fn store(name: &str, opts: StoreOptions) -> (Store, Connection) {
    let dir = common::temp_dir(name).join("pb_data");
    let store = Store::open(&dir, opts).unwrap();
    store
        .writer()
        .submit_blocking(|c| Ok(c.execute_batch("CREATE TABLE t (x INTEGER)")?))
        .unwrap();
    let other = Connection::open(dir.join("data.db")).unwrap();
    other.busy_timeout(Duration::from_secs(10)).unwrap();
    (store, other)
}

fn insert_by_writer(store: &Store) {
    store
        .writer()
        .submit_blocking(|c| Ok(c.execute("INSERT INTO t VALUES (1)", [])?))
        .unwrap();
}

#[test]
fn a_batch_keeps_one_transaction_until_the_writer_commits() {
    let (store, other) = store("batch-ryw", StoreOptions::default());
    let reader = store.reader().unwrap();
    let wakes = Arc::new(Wakes::default());
    reader.batch_reads(&Waker::from(Arc::clone(&wakes)));

    // the first read of a batch wakes the closer and runs on its own
    assert_eq!(rows(&reader), 0);
    assert_eq!(wakes.get(), 1);
    other.execute("INSERT INTO t VALUES (1)", []).unwrap();
    // the second begins the batch's transaction: it sees what was committed before it...
    assert_eq!(rows(&reader), 1);
    // ...and the reads after it share its snapshot: another process's write is not in it
    other.execute("INSERT INTO t VALUES (1)", []).unwrap();
    assert_eq!(rows(&reader), 1);
    assert_eq!(wakes.get(), 1, "one wake per batch");

    // a commit of the store's writer ends it: the next read, in the same batch, sees the
    // write (and the other process's, committed before it)
    insert_by_writer(&store);
    assert_eq!(rows(&reader), 3, "read-your-writes inside a batch");
    other.execute("INSERT INTO t VALUES (1)", []).unwrap();
    assert_eq!(rows(&reader), 3, "in the new transaction");

    // the end of the batch makes the other process's write visible
    reader.end_batch();
    assert_eq!(rows(&reader), 4);
    assert_eq!(wakes.get(), 2);
}

#[test]
fn an_unbatched_reader_runs_a_transaction_per_read() {
    let (store, other) = store("batch-off", StoreOptions::default());
    let reader = store.reader().unwrap();
    assert_eq!(rows(&reader), 0);
    other.execute("INSERT INTO t VALUES (1)", []).unwrap();
    assert_eq!(rows(&reader), 1);
}

#[test]
fn a_batched_read_is_still_interrupted_at_its_deadline() {
    const RUNAWAY: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)
                           SELECT max(x) FROM c";
    let opts = StoreOptions {
        read_timeout: Duration::from_millis(100),
        ..StoreOptions::default()
    };
    let (store, other) = store("batch-deadline", opts);
    let reader = store.reader().unwrap();
    let wakes = Arc::new(Wakes::default());
    reader.batch_reads(&Waker::from(Arc::clone(&wakes)));
    assert_eq!(rows(&reader), 0);
    assert_eq!(rows(&reader), 0);

    let err = reader
        .read(|c| Ok(c.query_row(RUNAWAY, [], |r| r.get::<_, i64>(0))?))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");

    // the failed read ended the transaction: the next one begins afresh and sees what
    // another process committed meanwhile
    other.execute("INSERT INTO t VALUES (1)", []).unwrap();
    assert_eq!(rows(&reader), 1);
    assert_eq!(wakes.get(), 2);
}

#[test]
fn a_read_inside_a_read_shares_its_transaction() {
    let (store, _other) = store("batch-nested", StoreOptions::default());
    let reader = store.reader().unwrap();
    let wakes = Arc::new(Wakes::default());
    reader.batch_reads(&Waker::from(Arc::clone(&wakes)));
    assert_eq!(rows(&reader), 0);
    let (outer, inner) = reader
        .read(|c| {
            let outer: i64 = c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
            insert_by_writer(&store);
            Ok((outer, rows(&reader)))
        })
        .unwrap();
    assert_eq!((outer, inner), (0, 0), "one snapshot for the outer read");
    reader.end_batch();
    assert_eq!(rows(&reader), 1);
}

/// An open batch pins the WAL frames committed after it began (a checkpoint cannot copy them
/// back, and the writer cannot restart the log): `end_batch` lets go of them. The engine ends
/// a batch every event-loop turn; this is what it ends.
#[test]
fn ending_a_batch_lets_a_checkpoint_copy_every_frame() {
    let (store, other) = store("batch-wal", StoreOptions::default());
    let reader = store.reader().unwrap();
    let wakes = Arc::new(Wakes::default());
    reader.batch_reads(&Waker::from(Arc::clone(&wakes)));
    insert_by_writer(&store);
    assert_eq!(rows(&reader), 1);
    assert_eq!(rows(&reader), 1);
    for _ in 0..3 {
        insert_by_writer(&store);
    }
    let pinned = checkpoint(&other, "PASSIVE").unwrap();
    assert!(
        pinned.checkpointed_frames < pinned.log_frames,
        "an open read transaction keeps later frames in the WAL: {pinned:?}"
    );
    reader.end_batch();
    let free = checkpoint(&other, "PASSIVE").unwrap();
    assert_eq!(free.busy, 0, "{free:?}");
    assert_eq!(free.checkpointed_frames, free.log_frames, "{free:?}");
    assert_eq!(wakes.get(), 1);
}
