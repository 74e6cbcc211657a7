//! `external_checkpoints` (Litestream owns checkpointing, `serve --replicate`): the store
//! issues no checkpoint, so the TRUNCATE it otherwise runs at close leaves the WAL as it was.
//! Observed through the `-wal` file while another connection keeps the database open (SQLite
//! only checkpoints and deletes the WAL on close when the closing connection is the last one).

mod common;

use pocketbun_storage::rusqlite::Connection;
use pocketbun_storage::{Store, StoreOptions, DATA_DB};

/// Writes 200 rows through the store, closes it with a foreign connection open, and returns
/// the size of `data.db-wal` afterwards.
fn wal_after_close(name: &str, external: bool) -> u64 {
    let dir = common::temp_dir(name).join("pb_data");
    let opts = StoreOptions {
        external_checkpoints: external,
        ..StoreOptions::default()
    };
    let store = Store::open(&dir, opts).unwrap();
    store
        .writer()
        .submit_blocking(|c| Ok(c.execute_batch("CREATE TABLE t (x TEXT)")?))
        .unwrap();
    for i in 0..200 {
        store
            .writer()
            .submit_blocking(move |c| Ok(c.execute("INSERT INTO t VALUES (?1)", [i])?))
            .unwrap();
    }
    // the stand-in for Litestream's connection
    let other = Connection::open(dir.join(DATA_DB)).unwrap();
    let rows: i64 = other
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 200);
    store.close();
    let wal = std::fs::metadata(dir.join(format!("{DATA_DB}-wal")))
        .map(|m| m.len())
        .unwrap_or(0);
    drop(other);
    wal
}

#[test]
fn own_checkpoints_truncate_the_wal_at_close() {
    assert_eq!(wal_after_close("ckpt-own", false), 0);
}

#[test]
fn external_checkpoints_leave_the_wal_alone() {
    let wal = wal_after_close("ckpt-external", true);
    // 200 commits of one page each at least: far from empty
    assert!(wal > 200 * 4096, "WAL of {wal} bytes after close");
}
