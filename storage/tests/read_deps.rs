//! Read tracking (issue 18): the writer stamps the generation of every table a commit
//! touched before the commit's jobs are answered, and a reader's recorded statements map to
//! the tables SQLite reads for them (views, joins, `COUNT(*)` included).

mod common;

use pocketbun_storage::deps::{self, slot_of};
use pocketbun_storage::{Reader, Store, StoreOptions};

fn open(name: &str) -> Store {
    let dir = common::temp_dir(name).join("pb_data");
    let opts = StoreOptions {
        read_tracking: true,
        ..StoreOptions::default()
    };
    let store = Store::open(&dir, opts).unwrap();
    store
        .writer()
        .submit_blocking(|c| {
            c.execute_batch(
                "CREATE TABLE people (id TEXT PRIMARY KEY, name TEXT);
                 CREATE TABLE notes (id TEXT PRIMARY KEY, title TEXT,
                     author TEXT REFERENCES people(id) ON DELETE CASCADE);
                 CREATE TABLE spare (id TEXT PRIMARY KEY);
                 CREATE VIEW feed AS SELECT notes.id, people.name FROM notes
                     JOIN people ON people.id = notes.author;
                 INSERT INTO people VALUES ('u1', 'ann'), ('u2', 'bob');
                 INSERT INTO notes VALUES ('p1', 'a', 'u1'), ('p2', 'b', 'u2');",
            )?;
            Ok(())
        })
        .unwrap();
    store
}

/// The SQL the reader ran inside `f`, and its dependencies.
fn record(reader: &Reader, f: impl FnOnce(&Reader)) -> Option<Vec<u16>> {
    let mut stmts = Vec::new();
    deps::recording(&mut stmts, || f(reader));
    reader.dependencies(&stmts)
}

fn count(reader: &Reader, sql: &str) -> i64 {
    reader
        .read(|c| Ok(c.prepare_cached(sql)?.query_row([], |r| r.get(0))?))
        .unwrap()
}

fn slots(names: &[&str]) -> Vec<u16> {
    let mut v: Vec<u16> = names.iter().map(|n| slot_of(n)).collect();
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn a_commit_stamps_its_tables_before_it_is_answered() {
    let store = open("deps-commit");
    let gens = store.generations().unwrap().clone();
    let epoch = gens.clock();
    let (notes, people, spare) = (slot_of("notes"), slot_of("people"), slot_of("spare"));
    store
        .writer()
        .submit_blocking(|c| {
            c.execute("UPDATE notes SET title = 'x' WHERE id = 'p1'", [])?;
            Ok(())
        })
        .unwrap();
    // submit_blocking returned: the stamp is already visible (read-your-writes)
    assert!(!gens.fresh(&[notes], epoch));
    if people != notes {
        assert!(gens.fresh(&[people], epoch), "people untouched");
    }
    assert!(gens.fresh(&[spare], epoch));

    // a cascade (a foreign-key action) stamps the child table too
    let epoch = gens.clock();
    store
        .writer()
        .submit_blocking(|c| {
            c.execute("DELETE FROM people WHERE id = 'u2'", [])?;
            Ok(())
        })
        .unwrap();
    assert!(!gens.fresh(&[people], epoch));
    assert!(!gens.fresh(&[notes], epoch));

    // `DELETE FROM t` without WHERE (SQLite's truncate optimization skips the update hook)
    store
        .writer()
        .submit_blocking(|c| {
            c.execute("INSERT INTO spare VALUES ('s1'), ('s2')", [])?;
            Ok(())
        })
        .unwrap();
    let epoch = gens.clock();
    let deleted = store
        .writer()
        .submit_blocking(|c| Ok(c.execute("DELETE FROM spare", [])?))
        .unwrap();
    assert_eq!(deleted, 2, "the rows are deleted (one by one)");
    assert!(!gens.fresh(&[spare], epoch));

    // a failed job changes nothing and, alone in its batch, stamps nothing it did not touch
    let epoch = gens.clock();
    let failed = store.writer().submit_blocking(|c| {
        c.execute("INSERT INTO people VALUES ('u1', 'dup')", [])?;
        Ok(())
    });
    assert!(failed.is_err());
    assert!(gens.fresh(&[notes, spare], epoch));

    // schema statements stale every read
    let epoch = gens.clock();
    store
        .writer()
        .submit_blocking(|c| {
            c.execute_batch("CREATE INDEX idx_title ON notes (title)")?;
            Ok(())
        })
        .unwrap();
    assert!(!gens.fresh(&[], epoch));
    // and they still do what they say (the authorizer lets SQLite edit its own schema):
    // a dropped index or table is gone, so it can be created again
    store
        .writer()
        .submit_blocking(|c| {
            c.execute_batch(
                "DROP INDEX idx_title; CREATE INDEX idx_title ON notes (title);
                 DROP VIEW feed; DROP TABLE spare; CREATE TABLE spare (id TEXT PRIMARY KEY);",
            )?;
            Ok(())
        })
        .unwrap();
}

#[test]
fn recorded_statements_map_to_the_tables_they_read() {
    let store = open("deps-read");
    let reader = store.reader().unwrap();
    let got = record(&reader, |r| {
        assert_eq!(count(r, "SELECT COUNT(*) FROM notes"), 2);
    });
    assert_eq!(got, Some(slots(&["notes"])));
    // the same cached statement again (no new prepare): still recorded
    let got = record(&reader, |r| {
        count(r, "SELECT COUNT(*) FROM notes");
    });
    assert_eq!(got, Some(slots(&["notes"])));
    // through a view: its underlying tables
    let got = record(&reader, |r| {
        count(r, "SELECT COUNT(*) FROM feed");
    });
    let got = got.unwrap();
    for t in ["notes", "people"] {
        assert!(got.contains(&slot_of(t)), "{t} missing from {got:?}");
    }
    // a subquery in WHERE
    let got = record(&reader, |r| {
        count(
            r,
            "SELECT COUNT(*) FROM notes WHERE author IN (SELECT id FROM people)",
        );
    })
    .unwrap();
    assert_eq!(got, slots(&["notes", "people"]));
    // volatile functions: no dependency set
    let got = record(&reader, |r| {
        count(r, "SELECT COUNT(*) FROM notes ORDER BY random()");
    });
    assert_eq!(got, None);
    let got = record(&reader, |r| {
        count(
            r,
            "SELECT COUNT(*) FROM notes WHERE title < datetime('now')",
        );
    });
    assert_eq!(got, None);
    // outside a recording nothing is kept
    count(&reader, "SELECT COUNT(*) FROM people");
    assert_eq!(record(&reader, |_| {}), Some(Vec::new()));
}
