//! Collection validation compared with the real PocketBase: the same
//! create/update payloads go to its API and through our model + save on a
//! copy of the same pb_data; the error `data` must be byte-identical (and
//! successes must succeed on both sides).

mod common;
#[path = "collections_http.rs"]
mod http;

use pocketbun_storage::collections::{create_collection, update_collection, Collection, SaveError};
use pocketbun_storage::{Store, StoreOptions};
use serde_json::Value;

enum Op {
    Create(&'static str),
    Update(&'static str, &'static str),
}

const CASES: &[Op] = &[
    Op::Create(r#"{"name":"","type":"base"}"#),
    Op::Create(r#"{"name":"demo1"}"#),
    Op::Create(r#"{"name":"DEMO1"}"#),
    Op::Create(r#"{"name":"wsmn24bux7wo113"}"#),
    Op::Create(r#"{"name":"_collections"}"#),
    Op::Create(
        r#"{"name":"a b","fields":[{"name":"x","type":"text"},{"name":"X","type":"bool"}]}"#,
    ),
    Op::Create(r#"{"name":"x_via_y"}"#),
    Op::Create(r#"{"name":"zz","type":"nope"}"#),
    Op::Create(
        r#"{"name":"zz","fields":[{"name":"null","type":"text"},{"name":"","type":"bool"},{"name":"a-b","type":"bool"}]}"#,
    ),
    Op::Create(r#"{"name":"zz","indexes":["bad"]}"#),
    Op::Create(
        r#"{"name":"zz","indexes":["create index i1 on zz (id)","create index i1 on zz (created)"]}"#,
    ),
    Op::Create(
        r#"{"name":"zz","indexes":["create index i1 on zz (id)","create index i2 on zz (id)"]}"#,
    ),
    Op::Create(
        r#"{"name":"zz","indexes":["create index _wsmn24bux7wo113_created_idx on zz (id)"]}"#,
    ),
    Op::Create(r#"{"name":"zz","type":"auth","authToken":{"duration":1}}"#),
    Op::Create(
        r#"{"name":"zz","type":"auth","passwordAuth":{"enabled":true,"identityFields":["nick"]}}"#,
    ),
    Op::Create(
        r#"{"name":"zz","type":"auth","fields":[{"name":"nick","type":"text"}],"passwordAuth":{"enabled":true,"identityFields":["nick"]}}"#,
    ),
    Op::Create(r#"{"name":"zz","type":"auth","mfa":{"enabled":true}}"#),
    Op::Create(
        r#"{"name":"zz","type":"auth","otp":{"enabled":true,"length":2,"duration":5},"verificationTemplate":{"subject":""}}"#,
    ),
    Op::Create(
        r#"{"name":"zz","type":"auth","fields":[{"name":"passwordConfirm","type":"text"}]}"#,
    ),
    Op::Create(r#"{"name":"zz","type":"auth","manageRule":""}"#),
    Op::Create(
        r#"{"name":"zz","fields":[{"name":"s","type":"select"},{"name":"r","type":"relation","collectionId":"nope"}]}"#,
    ),
    Op::Create(
        r#"{"name":"zz","fields":[{"name":"r","type":"relation","collectionId":"v9gwnfh02gjq1q0"}]}"#,
    ),
    Op::Create(
        r#"{"name":"vv","type":"view","viewQuery":"select 1 as id","createRule":"","indexes":["create index x on vv (id)"]}"#,
    ),
    Op::Create(r#"{"name":"v_bad","type":"view","viewQuery":"select text from demo1"}"#),
    Op::Create(r#"{"name":"v_bad","type":"view"}"#),
    Op::Create(r#"{"name":"v_ok","type":"view","viewQuery":"select id, text from demo1"}"#),
    Op::Create(
        r#"{"name":"fine","fields":[{"name":"title","type":"text","min":3,"max":10}],"indexes":["CREATE UNIQUE INDEX idx_fine_title ON fine (title)"]}"#,
    ),
    Op::Create(r#"{"name":"fine"}"#),
    Op::Update("fine", r#"{"type":"auth"}"#),
    Op::Update("fine", r#"{"system":true}"#),
    Op::Update("fine", r#"{"fields":[{"name":"title","type":"bool"}]}"#),
    Op::Update("_superusers", r#"{"name":"admins"}"#),
    Op::Update("_superusers", r#"{"listRule":""}"#),
    Op::Update(
        "_superusers",
        r#"{"fields":[{"name":"id","type":"text","primaryKey":true}]}"#,
    ),
    Op::Update("users", r#"{"indexes":[]}"#),
    Op::Update(
        "fine",
        r#"{"name":"fine2","indexes":["CREATE UNIQUE INDEX idx_fine_title ON fine (title)"]}"#,
    ),
];

fn ours(store: &Store, op: &Op) -> Result<(), String> {
    let (payload, target) = match op {
        Op::Create(p) => (*p, None),
        Op::Update(name, p) => (*p, Some(*name)),
    };
    let v: Value = serde_json::from_str(payload).unwrap();
    let obj = v.as_object().unwrap().clone();
    let target = target.map(str::to_string);
    store
        .writer()
        .submit_blocking(move |conn| {
            let r = match target {
                None => {
                    let c = Collection::from_create_payload(&obj).unwrap();
                    create_collection(conn, c)
                }
                Some(name) => {
                    let mut c = Collection::load(conn, &name)?.unwrap();
                    c.apply_json(&obj).unwrap();
                    update_collection(conn, c)
                }
            };
            Ok(match r {
                Ok(_) => Ok(()),
                Err(SaveError::Validation(v)) => Err(v.to_json()),
                Err(other) => Err(format!("non-validation error: {other}")),
            })
        })
        .unwrap()
}

#[test]
fn validation_errors_match_real_pocketbase() {
    let Some(bin) = common::pocketbase_bin("validation_errors_match_real_pocketbase") else {
        return;
    };
    let base = common::temp_dir("collections-validate");
    let Some(pb_dir) = http::fixture_copy(base.join("pb"), "validation") else {
        return;
    };
    let ours_dir = base.join("ours").join("pb_data");
    assert!(http::copy_fixture(&ours_dir));
    let server = common::PbServer::start(&bin, &pb_dir);
    let store = Store::open(&ours_dir, StoreOptions::default()).unwrap();
    let mut failures = Vec::new();
    for (i, op) in CASES.iter().enumerate() {
        let (status, body) = match op {
            Op::Create(p) => http::call(server.port, "POST", "/api/collections", Some(p)),
            Op::Update(name, p) => http::call(
                server.port,
                "PATCH",
                &format!("/api/collections/{name}"),
                Some(p),
            ),
        };
        let theirs: Result<(), String> = if status == 200 {
            Ok(())
        } else {
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(status, 400, "case {i}: {body}");
            // re-serialise only to cut out "data" verbatim
            let start = body.find("\"data\":").unwrap() + 7;
            let end = body.rfind(",\"message\"").unwrap();
            let data = &body[start..end];
            assert_eq!(serde_json::from_str::<Value>(data).unwrap(), v["data"]);
            Err(data.to_string())
        };
        let mine = ours(&store, op);
        if mine != theirs {
            failures.push(format!(
                "case {i}:\n  ours:   {mine:?}\n  theirs: {theirs:?}"
            ));
        }
    }
    store.close();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
