//! The record write pipeline's hook points ([`super::event::RecordHooks`]) on a copy of the
//! conformance fixture, through the write path itself (`save::prepare_upsert` /
//! `prepare_delete` and a real writer job on real SQLite files): a before-hook refuses or
//! changes a write, write hooks run in the write's transaction (an `Err` rolls it back), and
//! the auth clean-up hook removes what belonged to a deleted auth record.

use super::access::Caller;
use super::db::Db;
use super::event::{
    Action, BeforeRequest, Memo, RecordHooks, RecordRequest, RowWrite, Subject, WriteHook,
};
use super::input::{BodyInput, RecordBody, WriteInput};
use super::save::{self, Outcome};
use super::write::Val;
use crate::auth::AuthRecord;
use crate::error::ApiError;
use pocketbun_storage::rusqlite::{self, Connection};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const SUPERUSER: (&str, &str, &str) = ("sywbhecnh46rhm0", "pbc_3142635823", "_superusers");
/// A user with two `_externalAuths` rows in the fixture.
const USER: &str = "4q1xlclmfloku33";

/// A worker's record handle over a private copy of the fixture, removed when dropped.
struct Env {
    db: Db,
    dir: PathBuf,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.db.core.store.close();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `None` (one printed line) when the fixture is missing; under `CI=true` that fails.
fn env(hooks: RecordHooks) -> Option<Env> {
    let dir = crate::state::fixture_copy("pocketbun-hooks")?;
    let core = crate::state::open_core(
        &dir,
        crate::encryption::SettingsKey::new("PB_UNSET_TEST_KEY", None),
        crate::auth::password::Scheme::Bcrypt,
    )
    .unwrap();
    let db = Db::new(core, Arc::new(hooks)).unwrap();
    Some(Env { db, dir })
}

fn run<F: std::future::Future<Output = ()>>(f: F) {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap()
        .block_on(f);
}

fn caller(db: &Db, superuser: bool, method: &str) -> Caller {
    let auth = superuser.then(|| AuthRecord {
        id: SUPERUSER.0.into(),
        collection_id: SUPERUSER.1.into(),
        collection_name: SUPERUSER.2.into(),
    });
    let schema = db.core.schema.get();
    Caller::new(db, &schema, auth, method, std::iter::empty(), &[]).unwrap()
}

/// A guest's create in `demo2` (create rule `""`), as the records API runs it.
async fn create(db: &Db, title: &str) -> Result<Outcome, ApiError> {
    let schema = db.core.schema.get();
    let coll = schema.collections.get("demo2").cloned().unwrap();
    let mut body = RecordBody::default();
    body.data.insert("title".into(), title.into());
    let input = WriteInput {
        caller: caller(db, false, "POST"),
        query: Vec::new(),
        id: String::new(),
        body_len: 0,
    };
    let body = BodyInput::Parsed(body);
    let prepared = save::prepare_upsert(db, input, body, schema, coll, None, None).await?;
    save::run_single(db, prepared).await
}

/// A superuser's delete of the record `id` of `collection`.
async fn delete(db: &Db, collection: &str, id: &str) -> Result<Outcome, ApiError> {
    let schema = db.core.schema.get();
    let coll = schema.collections.get(collection).cloned().unwrap();
    let input = WriteInput {
        caller: caller(db, true, "DELETE"),
        query: Vec::new(),
        id: id.into(),
        body_len: 0,
    };
    let body = BodyInput::Parsed(RecordBody::default());
    let prepared = save::prepare_delete(db, input, body, schema, coll, None).await?;
    save::run_single(db, prepared).await
}

fn count(db: &Db, sql: &str) -> i64 {
    db.reader
        .read(|conn| Ok(conn.query_row(sql, [], |r| r.get(0))?))
        .unwrap()
}

fn record_id(outcome: Outcome) -> String {
    let Outcome::Record(json) = outcome else {
        panic!("a create answers its record");
    };
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// Refuses every request of one action with a 400 of its own.
struct Refuse(Action);

impl BeforeRequest for Refuse {
    fn before(&self, request: &mut RecordRequest<'_>) -> Result<(), ApiError> {
        if request.action == self.0 {
            return Err(ApiError::bad_request(Some("Refused by a hook.")));
        }
        Ok(())
    }
}

#[test]
fn a_refusing_before_hook_answers_its_error_and_stores_nothing() {
    let mut hooks = RecordHooks::default();
    hooks.add_before(Arc::new(Refuse(Action::Create)));
    let Some(env) = env(hooks) else { return };
    let db = &env.db;
    run(async {
        let before = count(db, "SELECT COUNT(*) FROM demo2");
        let Err(err) = create(db, "refused").await else {
            panic!("the hook refuses creates");
        };
        let resp = err.into_response();
        assert_eq!(resp.status, 400);
        let pocketbun_http::Body::Bytes(body) = resp.body else {
            panic!("an envelope is a plain body");
        };
        assert_eq!(
            String::from_utf8(body.to_vec()).unwrap(),
            r#"{"data":{},"message":"Refused by a hook.","status":400}"#
        );
        assert_eq!(count(db, "SELECT COUNT(*) FROM demo2"), before);
        assert_eq!(
            count(db, "SELECT COUNT(*) FROM demo2 WHERE title = 'refused'"),
            0
        );
    });
}

/// Sets the title of every draft.
struct Retitle;

impl BeforeRequest for Retitle {
    fn before(&self, request: &mut RecordRequest<'_>) -> Result<(), ApiError> {
        if let Subject::Draft(draft) = &mut request.subject {
            draft.set("title", Val::Str("set by a hook".into()));
        }
        Ok(())
    }
}

#[test]
fn a_before_hook_changes_the_draft_that_is_saved() {
    let mut hooks = RecordHooks::default();
    hooks.add_before(Arc::new(Retitle));
    let Some(env) = env(hooks) else { return };
    let db = &env.db;
    run(async {
        let Outcome::Record(json) = create(db, "from the client").await.unwrap() else {
            panic!("a create answers its record");
        };
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["title"], "set by a hook");
        let id = v["id"].as_str().unwrap();
        assert_eq!(
            count(
                db,
                &format!(
                    "SELECT COUNT(*) FROM demo2 WHERE id = '{id}' AND title = 'set by a hook'"
                )
            ),
            1
        );
    });
}

#[test]
fn a_refusing_before_hook_keeps_the_record_of_a_delete() {
    let mut hooks = RecordHooks::default();
    hooks.add_before(Arc::new(Refuse(Action::Delete)));
    let Some(env) = env(hooks) else { return };
    let db = &env.db;
    run(async {
        let id = record_id(create(db, "kept").await.unwrap());
        let err = delete(db, "demo2", &id).await.err().unwrap();
        assert_eq!(
            (err.status, err.message.as_str()),
            (400, "Refused by a hook.")
        );
        let sql = format!("SELECT COUNT(*) FROM demo2 WHERE id = '{id}'");
        assert_eq!(count(db, &sql), 1);
    });
}

/// Records the rows the write hooks see; fails the write after the row of `fail_on`.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(Action, String, bool)>>,
    fail_on: Option<Action>,
}

impl WriteHook for Recorder {
    fn before(&self, _conn: &Connection, row: &RowWrite<'_>) -> rusqlite::Result<Option<Memo>> {
        Ok(Some(Box::new(row.id.to_string())))
    }

    fn after(
        &self,
        conn: &Connection,
        row: &RowWrite<'_>,
        memo: Option<Memo>,
    ) -> rusqlite::Result<()> {
        // the row's own statement ran on this connection, in this transaction
        let sql = format!(
            "SELECT COUNT(*) FROM `{}` WHERE id = ?1",
            row.collection.name
        );
        let stored: i64 = conn.query_row(&sql, [row.id], |r| r.get(0))?;
        let memo = memo.and_then(|m| m.downcast::<String>().ok());
        assert_eq!(memo.as_deref().map(String::as_str), Some(row.id));
        self.seen
            .lock()
            .unwrap()
            .push((row.action, row.id.to_string(), stored == 1));
        if self.fail_on == Some(row.action) {
            return Err(rusqlite::Error::InvalidQuery);
        }
        Ok(())
    }
}

#[test]
fn write_hooks_run_in_the_transaction_of_each_row() {
    let recorder = Arc::new(Recorder::default());
    let mut hooks = RecordHooks::default();
    hooks.add_write(recorder.clone());
    let Some(env) = env(hooks) else { return };
    let db = &env.db;
    run(async {
        let id = record_id(create(db, "seen").await.unwrap());
        delete(db, "demo2", &id).await.unwrap();
        let seen = recorder.seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            [
                (Action::Create, id.clone(), true),
                (Action::Delete, id, false)
            ]
        );
    });
}

#[test]
fn a_failing_write_hook_rolls_the_write_back() {
    let recorder = Arc::new(Recorder {
        fail_on: Some(Action::Create),
        ..Recorder::default()
    });
    let mut hooks = RecordHooks::default();
    hooks.add_write(recorder.clone());
    let Some(env) = env(hooks) else { return };
    let db = &env.db;
    run(async {
        let before = count(db, "SELECT COUNT(*) FROM demo2");
        let err = create(db, "rolled back").await.err().unwrap();
        assert_eq!(
            (err.status, err.message.as_str()),
            (400, "Failed to create record.")
        );
        assert_eq!(count(db, "SELECT COUNT(*) FROM demo2"), before);
        let seen = recorder.seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert!(seen[0].2, "the hook ran after the row was written");
    });
}

#[test]
fn deleting_an_auth_record_removes_its_provider_links() {
    let Some(env) = env(RecordHooks::default()) else {
        return;
    };
    let db = &env.db;
    let links = format!("SELECT COUNT(*) FROM _externalAuths WHERE recordRef = '{USER}'");
    run(async {
        assert_eq!(count(db, &links), 2);
        delete(db, "users", USER).await.unwrap();
        assert_eq!(count(db, &links), 0);
    });
}
