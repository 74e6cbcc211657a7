//! Single-row inserts: a raw rusqlite loop (one transaction per row, as a naive server
//! would commit) against the storage writer thread, alone and with 64 concurrent writers
//! whose jobs the writer folds into shared transactions (group commit).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pocketbun_storage::rusqlite::{params, Connection};
use pocketbun_storage::{Store, StoreOptions};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

const CREATE: &str =
    "CREATE TABLE IF NOT EXISTS bench_rows (id INTEGER PRIMARY KEY, title TEXT, views INTEGER)";

fn raw_rusqlite(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    // a store initialises the file with PocketBase's pragmas; close it and write directly
    Store::open(dir.path(), StoreOptions::default())
        .unwrap()
        .close();
    let conn = Connection::open(dir.path().join("data.db")).unwrap();
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
        .unwrap();
    conn.execute_batch(CREATE).unwrap();
    let mut g = c.benchmark_group("insert_one_row");
    g.throughput(Throughput::Elements(1));
    let mut n = 0i64;
    g.bench_function("raw_rusqlite_txn_per_row", |b| {
        b.iter(|| {
            n += 1;
            conn.execute(
                "INSERT INTO bench_rows (id, title, views) VALUES (?1, ?2, ?3)",
                params![n, "hello", n],
            )
            .unwrap();
        })
    });
    g.finish();
}

fn writer_alone(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let writer = store.writer();
    writer
        .submit_blocking(|conn| Ok(conn.execute_batch(CREATE)?))
        .unwrap();
    let next = Arc::new(AtomicI64::new(0));
    let mut g = c.benchmark_group("insert_one_row");
    g.throughput(Throughput::Elements(1));
    g.bench_function("writer_thread_1_writer", |b| {
        b.iter(|| {
            let id = next.fetch_add(1, Ordering::Relaxed);
            writer
                .submit_blocking(move |conn| {
                    conn.execute(
                        "INSERT INTO bench_rows (id, title, views) VALUES (?1, ?2, ?3)",
                        params![id, "hello", id],
                    )?;
                    Ok(())
                })
                .unwrap();
        })
    });
    g.finish();
    store.close();
}

fn writer_concurrent(c: &mut Criterion) {
    const WRITERS: u64 = 64;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let writer = store.writer();
    writer
        .submit_blocking(|conn| Ok(conn.execute_batch(CREATE)?))
        .unwrap();
    let next = Arc::new(AtomicI64::new(0));
    let mut g = c.benchmark_group("insert_one_row");
    // one iteration = one row from each of 64 concurrent writers
    g.throughput(Throughput::Elements(WRITERS));
    g.bench_function("writer_thread_64_writers", |b| {
        b.iter(|| {
            let replies: Vec<_> = (0..WRITERS)
                .map(|_| {
                    let id = next.fetch_add(1, Ordering::Relaxed);
                    writer.submit(move |conn| {
                        conn.execute(
                            "INSERT INTO bench_rows (id, title, views) VALUES (?1, ?2, ?3)",
                            params![id, "hello", id],
                        )?;
                        Ok(())
                    })
                })
                .collect();
            for r in replies {
                r.wait().unwrap();
            }
        })
    });
    g.finish();
    store.close();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = raw_rusqlite, writer_alone, writer_concurrent
}
criterion_main!(benches);
