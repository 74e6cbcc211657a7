//! A pb_data initialised by PocketBun must match one freshly created by the
//! real PocketBase v0.39.11: same schema objects, statistics, system
//! collections, migrations and settings; only per-install secrets and
//! timestamps differ.

mod common;

use std::path::Path;

use pocketbun_storage::rusqlite::{Connection, OpenFlags};
use pocketbun_storage::{Store, StoreOptions};

fn open_ro(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

fn master(conn: &Connection) -> Vec<(String, String, String, Option<String>)> {
    let mut st = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn strings(conn: &Connection, sql: &str) -> Vec<String> {
    let mut st = conn.prepare(sql).unwrap();
    st.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// `_collections` rows with secrets masked and timestamps dropped.
fn collections(conn: &Connection) -> Vec<Vec<Option<String>>> {
    let mut st = conn
        .prepare(
            "SELECT id, CAST(system AS TEXT), type, name, fields, indexes, listRule, viewRule,
                    createRule, updateRule, deleteRule, options
             FROM _collections ORDER BY rowid",
        )
        .unwrap();
    st.query_map([], |r| {
        (0..12)
            .map(|i| r.get::<_, Option<String>>(i))
            .collect::<Result<Vec<_>, _>>()
    })
    .unwrap()
    .map(|row| {
        let mut row = row.unwrap();
        row[11] = row[11].as_deref().map(mask_secrets);
        row
    })
    .collect()
}

fn secrets(options: &str) -> Vec<String> {
    options
        .split("\"secret\":\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect()
}

fn mask_secrets(options: &str) -> String {
    let mut out = options.to_string();
    for s in secrets(options) {
        out = out.replace(&s, "<secret>");
    }
    out
}

fn pragma(conn: &Connection, name: &str) -> String {
    conn.query_row(&format!("PRAGMA {name}"), [], |r| {
        r.get::<_, pocketbun_storage::rusqlite::types::Value>(0)
    })
    .map(|v| format!("{v:?}"))
    .unwrap()
}

#[test]
fn fresh_init_matches_pocketbase() {
    let Some(bin) = common::pocketbase_bin("fresh_init_matches_pocketbase") else {
        return;
    };
    let ref_dir = common::temp_dir("ref").join("pb_data");
    // `migrate` initialises the directory without starting a server
    // (`migrate up` with nothing else to apply)
    let out = common::pb_cli(&bin, &ref_dir, &["migrate", "up"]);
    assert!(
        ref_dir.join("data.db").exists(),
        "pocketbase migrate failed: {out}"
    );

    let our_dir = common::temp_dir("ours").join("pb_data");
    let store = Store::open(&our_dir, StoreOptions::default()).unwrap();
    store.close();
    drop(store);

    let (theirs, ours) = (
        open_ro(&ref_dir.join("data.db")),
        open_ro(&our_dir.join("data.db")),
    );
    assert_eq!(
        master(&ours),
        master(&theirs),
        "data.db sqlite_master differs"
    );
    assert_eq!(
        strings(
            &ours,
            "SELECT tbl || '|' || idx || '|' || stat FROM sqlite_stat1 ORDER BY rowid"
        ),
        strings(
            &theirs,
            "SELECT tbl || '|' || idx || '|' || stat FROM sqlite_stat1 ORDER BY rowid"
        ),
    );
    let stat4 = "SELECT CAST(count(*) AS TEXT) FROM sqlite_stat4";
    assert_eq!(strings(&ours, stat4), strings(&theirs, stat4));

    assert_eq!(
        collections(&ours),
        collections(&theirs),
        "_collections differ"
    );
    // every auth collection has 5 fresh 50-char secrets, none shared with the reference
    let all = |c: &Connection| {
        strings(c, "SELECT options FROM _collections ORDER BY rowid")
            .iter()
            .flat_map(|o| secrets(o))
            .collect::<Vec<_>>()
    };
    let (our_secrets, their_secrets) = (all(&ours), all(&theirs));
    assert_eq!(our_secrets.len(), 10);
    assert_eq!(their_secrets.len(), 10);
    for s in &our_secrets {
        assert_eq!(s.len(), 50);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(!their_secrets.contains(s));
    }
    let mut dedup = our_secrets.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), our_secrets.len(), "secrets must be distinct");

    // timestamps are PocketBase datetimes
    for ts in strings(
        &ours,
        "SELECT created FROM _collections UNION ALL SELECT updated FROM _collections",
    ) {
        assert_eq!(ts.len(), 24, "{ts}");
        assert!(ts.ends_with('Z') && &ts[10..11] == " ", "{ts}");
    }

    let migrations = "SELECT file FROM _migrations ORDER BY rowid";
    assert_eq!(strings(&ours, migrations), strings(&theirs, migrations));
    let applied: Vec<i64> = {
        let mut st = ours
            .prepare("SELECT applied FROM _migrations ORDER BY rowid")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert!(
        applied.windows(2).all(|w| w[0] < w[1]),
        "applied must increase"
    );
    let now_us = pocketbun_storage::time::unix_micros();
    assert!(applied
        .iter()
        .all(|&a| a <= now_us && a > now_us - 600_000_000));

    let params = "SELECT id || '|' || typeof(value) || '|' || CAST(value AS TEXT) FROM _params ORDER BY rowid";
    assert_eq!(strings(&ours, params), strings(&theirs, params));

    for p in [
        "journal_mode",
        "page_size",
        "auto_vacuum",
        "user_version",
        "application_id",
        "encoding",
    ] {
        assert_eq!(pragma(&ours, p), pragma(&theirs, p), "PRAGMA {p}");
    }

    let (theirs_aux, ours_aux) = (
        open_ro(&ref_dir.join("auxiliary.db")),
        open_ro(&our_dir.join("auxiliary.db")),
    );
    assert_eq!(
        master(&ours_aux),
        master(&theirs_aux),
        "auxiliary.db sqlite_master differs"
    );
    for p in ["journal_mode", "page_size", "auto_vacuum"] {
        assert_eq!(
            pragma(&ours_aux, p),
            pragma(&theirs_aux, p),
            "aux PRAGMA {p}"
        );
    }
}

#[test]
fn reopening_an_initialised_dir_changes_nothing() {
    let dir = common::temp_dir("reopen").join("pb_data");
    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    store.close();
    drop(store);
    let before = std::fs::read(dir.join("data.db")).unwrap();
    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    let n: i64 = store
        .reader()
        .unwrap()
        .read(|c| Ok(c.query_row("SELECT count(*) FROM _collections", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(n, 6);
    store.close();
    assert_eq!(std::fs::read(dir.join("data.db")).unwrap(), before);
}
