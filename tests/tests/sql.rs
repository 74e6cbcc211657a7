//! `POST /api/sql` differentially: the same queries to the real PocketBase and to PocketBun,
//! each on its own copy of the fixture, must give the same status and body (only `execTime`,
//! a duration, is masked).

use pocketbun_tests::http::Request;
use pocketbun_tests::{need, Server, ServerSpec};

const SUPERUSER: &str = pocketbun_tests::fixture::SUPERUSER_TOKEN;

/// Applied in order to each server: later queries see earlier writes.
const QUERIES: &[&str] = &[
    "select 1",
    "select 1;select 2",
    "select 1.5 as a, null as b, x'6869' as c, 1e20 as d, 0.1+0.2 as e, 2.0 as f, 1234567.0 as g",
    "select id, created, total, rel_many, select_many from demo5 order by id",
    "select * from demo1 where id = 'missing'",
    "invalid",
    "select nope from demo1",
    "",
    "   ",
    "create table zz(id int primary key, v text); insert into zz values(1, 'a'),(2, null)",
    "  update zz set v = 'b' where id = 2",
    "select * from zz order by id",
    "insert into zz values(1, 'dup')",
    "delete from zz",
    "select count(*) as n from zz",
    // SQLite's defensive mode (PocketBase 0.40): the journal stays WAL, the schema read-only
    "PRAGMA journal_mode=OFF",
    "PRAGMA writable_schema=ON",
    "PRAGMA writable_schema",
];

fn mask_exec_time(body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(mut v) => {
            if let Some(t) = v.get_mut("execTime") {
                *t = serde_json::Value::from(0);
            }
            v.to_string()
        }
        Err(_) => body.to_string(),
    }
}

fn answers(spec: &ServerSpec, fixture: &std::path::Path) -> Vec<(u16, String)> {
    let server = Server::start(spec, Some(fixture)).expect("server starts");
    QUERIES
        .iter()
        .map(|q| {
            let body = serde_json::json!({ "query": q }).to_string();
            let resp = Request::new("POST", "/api/sql")
                .header("Host", "127.0.0.1")
                .header("Content-Length", &body.len().to_string())
                .header("Connection", "close")
                .header("Content-Type", "application/json")
                .header("Authorization", SUPERUSER)
                .body(body)
                .send(server.port())
                .expect("response");
            (resp.status, mask_exec_time(&resp.text()))
        })
        .collect()
}

#[test]
fn sql_runner_answers_like_pocketbase() {
    let Some(fixture) = need::fixture("sql_runner_answers_like_pocketbase") else {
        return;
    };
    let Some(reference) = ServerSpec::reference("sql_runner_answers_like_pocketbase") else {
        return;
    };
    let ours = answers(&ServerSpec::pocketbun(), &fixture);
    let theirs = answers(&reference, &fixture);
    assert!(
        ours.iter().filter(|(s, _)| *s == 200).count() >= 8,
        "{ours:?}"
    );
    let last = &ours[ours.len() - 3..];
    assert!(last[0].1.contains(r#""rows":[["wal"]]"#), "{last:?}");
    assert!(last[2].1.contains(r#""rows":[["0"]]"#), "{last:?}");
    for ((q, a), b) in QUERIES.iter().zip(&ours).zip(&theirs) {
        assert_eq!(a, b, "query {q:?}");
    }
}
