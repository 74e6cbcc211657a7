//! pb_data directories move between PocketBun and the real PocketBase:
//! PocketBun creates the directory and the superusers, PocketBase logs in;
//! PocketBase creates them, PocketBun reads (and updates) them. PocketBun's
//! `superuser` command runs as the real `pocketbun` binary, and is compared
//! with PocketBase's message for message.

mod common;

use std::path::Path;

use pocketbun_storage::{Store, StoreOptions};

/// `pocketbun superuser …` on `dir`: what it printed, without Go's log time prefix.
fn pocketbun_superuser(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["superuser"];
    all.extend_from_slice(args);
    let out = common::pb_cli(&pocketbun_tests::pocketbun_bin(), dir, &all);
    without_go_log_time(out.trim_end()).to_string()
}

fn login_ok(port: u16, email: &str, password: &str) -> bool {
    let (status, body) = common::superuser_login(port, email, password);
    if status == 200 {
        assert!(body.contains("\"token\""), "{body}");
        assert!(body.contains(email), "{body}");
    }
    status == 200
}

#[test]
fn pocketbun_dir_and_superusers_work_in_pocketbase() {
    let Some(bin) = common::pocketbase_bin("pocketbun_dir_and_superusers_work_in_pocketbase")
    else {
        return;
    };
    let dir = common::temp_dir("pbun-to-pb").join("pb_data");
    assert_eq!(
        pocketbun_superuser(&dir, &["create", "admin@example.com", "1234567890"]),
        "Successfully created new superuser \"admin@example.com\"!"
    );
    assert_eq!(
        pocketbun_superuser(&dir, &["upsert", "second@example.com", "abcdefghij"]),
        "Successfully saved superuser \"second@example.com\"!"
    );
    assert_eq!(
        pocketbun_superuser(&dir, &["update", "second@example.com", "new-password-1"]),
        "Successfully changed superuser \"second@example.com\" password!"
    );

    let server = common::PbServer::start(&bin, &dir);
    assert!(login_ok(server.port, "admin@example.com", "1234567890"));
    assert!(login_ok(
        server.port,
        "second@example.com",
        "new-password-1"
    ));
    assert!(!login_ok(server.port, "second@example.com", "abcdefghij"));
    assert!(!login_ok(
        server.port,
        "admin@example.com",
        "wrong-password"
    ));
}

#[test]
fn pocketbase_dir_and_superusers_open_in_pocketbun() {
    let Some(bin) = common::pocketbase_bin("pocketbase_dir_and_superusers_open_in_pocketbun")
    else {
        return;
    };
    let dir = common::temp_dir("pb-to-pbun").join("pb_data");
    let out = common::pb_cli(
        &bin,
        &dir,
        &["superuser", "upsert", "root@example.com", "pa55word!!"],
    );
    assert!(out.contains("Successfully saved superuser"), "{out}");

    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    let reader = store.reader().unwrap();
    let (email, hash, verified, token_key): (String, String, bool, String) = reader
        .read(|c| {
            Ok(c.query_row(
                "SELECT email, password, verified, tokenKey FROM _superusers",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?)
        })
        .unwrap();
    assert_eq!(email, "root@example.com");
    assert!(verified);
    assert_eq!(token_key.len(), 50);
    assert!(hash.starts_with("$2a$10$"), "{hash}");
    assert!(bcrypt::verify("pa55word!!", &hash).unwrap());
    let collections: i64 = reader
        .read(|c| Ok(c.query_row("SELECT count(*) FROM _collections", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(collections, 6);

    drop(reader);
    store.close();
    drop(store);
    // PocketBun changes the password, PocketBase accepts the new one
    assert_eq!(
        pocketbun_superuser(&dir, &["update", "root@example.com", "changed-by-pbun"]),
        "Successfully changed superuser \"root@example.com\" password!"
    );
    let server = common::PbServer::start(&bin, &dir);
    assert!(login_ok(server.port, "root@example.com", "changed-by-pbun"));
    assert!(!login_ok(server.port, "root@example.com", "pa55word!!"));
}

/// Runs the same superuser commands through the real binary and through
/// PocketBun on twin directories and compares every message.
#[test]
fn superuser_command_messages_match_pocketbase() {
    let Some(bin) = common::pocketbase_bin("superuser_command_messages_match_pocketbase") else {
        return;
    };
    let pb_dir = common::temp_dir("su-pb").join("pb_data");
    let our_dir = common::temp_dir("su-ours").join("pb_data");
    let long = "x".repeat(72);
    let max = "x".repeat(71);
    let cases: Vec<(&str, &str, Option<&str>)> = vec![
        ("create", "a@b.co", Some("1234567890")),
        ("create", "a@b.co", Some("1234567890")),
        ("create", "bad", Some("1234567890")),
        ("create", "x@b.co", None),
        ("create", "x@b.co", Some("short")),
        ("create", "x@b.co", Some("")),
        ("create", "", Some("1234567890")),
        ("create", "long@b.co", Some(&long)),
        ("create", "long@b.co", Some(&max)),
        ("create", "A@b.co", Some("1234567890")),
        ("create", "ä@b.co", Some("1234567890")),
        ("update", "a@b.co", Some("newpass1234")),
        ("update", "zz@b.co", Some("newpass1234")),
        ("update", "a@b.co", Some("short")),
        ("update", "A@B.CO", Some("1234567890xx")),
        ("update", "a@b.co", None),
        ("upsert", "a@b.co", None),
        ("upsert", "q@b.co", Some("1234567890")),
        ("upsert", "q@b.co", Some("0987654321")),
        ("upsert", "bad", Some("1234567890")),
        ("upsert", "n@b.co", Some("short")),
        ("delete", "zz@b.co", None),
        ("delete", "bad", None),
        ("delete", "", None),
        ("delete", "q@b.co", None),
        ("delete", "a@b.co", None),
        ("delete", "long@b.co", None),
        ("delete", "A@b.co", None),
        ("delete", "ä@b.co", None),
    ];
    for (action, email, password) in cases {
        let mut args = vec!["superuser", action];
        if !email.is_empty() || password.is_some() {
            args.push(email);
        }
        if let Some(p) = password {
            args.push(p);
        }
        let theirs = common::pb_cli(&bin, &pb_dir, &args);
        let theirs = without_go_log_time(theirs.trim_end());
        assert!(!theirs.is_empty(), "no output from pocketbase {args:?}");
        // a failure is printed after Go's log time prefix by both, as PocketBase 0.40 does
        let ours = pocketbun_superuser(&our_dir, &args[1..]);
        assert_eq!(ours, theirs, "superuser {action} {email:?} {password:?}");
    }
    // both directories end with the same superusers
    let emails = |dir: &Path| -> Vec<String> {
        let c = pocketbun_storage::rusqlite::Connection::open(dir.join("data.db")).unwrap();
        let mut st = c
            .prepare("SELECT email FROM _superusers ORDER BY email")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(emails(&our_dir), emails(&pb_dir));
}

#[test]
fn pocketbase_fixture_opens_unchanged() {
    let Some(fixture) = pocketbun_tests::need::fixture("pocketbase_fixture_opens_unchanged") else {
        return;
    };
    let dir = common::temp_dir("fixture").join("pb_data");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["data.db", "auxiliary.db"] {
        common::copy_dir_file(&fixture.join(f), &dir.join(f));
    }
    let before: Vec<Vec<u8>> = ["data.db", "auxiliary.db"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    let reader = store.reader().unwrap();
    let (collections, superusers): (i64, i64) = reader
        .read(|c| {
            Ok((
                c.query_row("SELECT count(*) FROM _collections", [], |r| r.get(0))?,
                c.query_row("SELECT count(*) FROM _superusers", [], |r| r.get(0))?,
            ))
        })
        .unwrap();
    assert_eq!((collections, superusers), (16, 4));
    drop(reader);
    store.close();
    drop(store);
    let after: Vec<Vec<u8>> = ["data.db", "auxiliary.db"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    assert!(before == after, "opening the fixture modified it");
}

/// `line` without Go's `log` prefix (`2006/01/02 15:04:05 `), which PocketBase 0.40 puts
/// before a failed command's message.
fn without_go_log_time(line: &str) -> &str {
    let b = line.as_bytes();
    let is_time = b.len() > 20
        && b[..19].iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'/',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
        && b[19] == b' ';
    if is_time {
        &line[20..]
    } else {
        line
    }
}
