//! The broker on a real copy of the conformance fixture: events loaded from real SQLite rows
//! are delivered to the subscribers the collection rules and subscription options allow, with
//! PocketBase's framing, one evaluation per subscriber group, and slow clients cut off.

use super::broker::deliver;
use super::client::{ClientAuth, SseStream};
use super::{Action, Hub, RealtimeConfig, RecordEvent};
use super::{Host, Worker};
use crate::auth::AuthRecord;
use crate::offload::CpuPool;
use crate::records::access::load_auth_info;
use crate::records::db::Db;
use crate::schema::SchemaState;
use futures_util::StreamExt;
use pocketbun_storage::collections::Collections;
use pocketbun_storage::{Store, StoreOptions};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

const IP: &str = "127.0.0.1";

/// The realtime host of these tests: a worker's parts without the API layer.
struct TestHost {
    db: Db,
    hub: Arc<Hub>,
    worker: Worker,
}

impl Host for TestHost {
    fn db(&self) -> &Db {
        &self.db
    }

    fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    fn worker(&self) -> &Worker {
        &self.worker
    }
}

struct Env {
    ctx: Rc<TestHost>,
    dir: PathBuf,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.ctx.db.core.store.close();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn env(config: RealtimeConfig) -> Option<Env> {
    let dir = crate::state::fixture_copy("pocketbun-realtime")?;
    let store = Arc::new(Store::open(&dir, StoreOptions::default()).unwrap());
    let collections = store.reader().unwrap().read(Collections::load).unwrap();
    let core = Arc::new(crate::state::Core {
        body_limit: 1 << 20,
        replication: Default::default(),
        store: store.clone(),
        cpu: CpuPool::new(1).unwrap(),
        schema: SchemaState::new(collections),
        settings: crate::settings::SettingsCell::load(&store, Default::default()).unwrap(),
        app_store: Default::default(),
        backup_slot: Default::default(),
        password_scheme: Default::default(),
        logs: Default::default(),
        files: Default::default(),
    });
    let hub = Arc::new(Hub::new(config));
    let ctx = Rc::new(TestHost {
        db: Db::new(core, Default::default()).unwrap(),
        worker: Worker::new(&hub),
        hub,
    });
    Some(Env { ctx, dir })
}

fn run<F: std::future::Future<Output = ()>>(f: F) {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap()
        .block_on(f);
}

const SUPERUSER: (&str, &str, &str) = ("sywbhecnh46rhm0", "pbc_3142635823", "_superusers");
const USER: (&str, &str, &str) = ("4q1xlclmfloku33", "_pb_users_auth_", "users");
const USER2: (&str, &str, &str) = ("oap640cot4yru2s", "_pb_users_auth_", "users");
const CLIENT: (&str, &str, &str) = ("gk390qegs4y47wn", "v851q4r790rhknl", "clients");

fn auth(ctx: &TestHost, who: (&str, &str, &str)) -> ClientAuth {
    let record = AuthRecord {
        id: who.0.into(),
        collection_id: who.1.into(),
        collection_name: who.2.into(),
    };
    let info = load_auth_info(&ctx.db, &ctx.db.core.schema.get(), &record).unwrap();
    ClientAuth { record, info }
}

/// A connected client (its `PB_CONNECT` read) subscribed to `subs`.
async fn client(ctx: &Rc<TestHost>, who: Option<(&str, &str, &str)>, subs: &[&str]) -> SseStream {
    let mut stream = ctx.worker.connect(ctx, IP.into());
    let first = String::from_utf8(stream.next().await.unwrap()).unwrap();
    let id = stream.client().id.to_string();
    assert_eq!(
        first,
        format!("id:{id}\nevent:PB_CONNECT\ndata:{{\"clientId\":\"{id}\"}}\n\n")
    );
    let auth = who.map(|w| auth(ctx, w));
    ctx.worker
        .subscribe(
            &ctx.hub,
            id,
            IP.into(),
            auth,
            subs.iter().map(|s| s.to_string()).collect(),
        )
        .await
        .unwrap();
    stream
}

/// The messages waiting for `stream`: (event name, data).
/// The messages queued for `stream`'s client, split out of the chunks the stream gives (one
/// chunk holds every message that was waiting).
async fn drain(stream: &mut SseStream) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    while stream.client().queued() > 0 {
        let chunk = String::from_utf8(stream.next().await.unwrap()).unwrap();
        let id = stream.client().id.to_string();
        for frame in chunk.split_inclusive("\n\n") {
            let rest = frame.strip_prefix(&format!("id:{id}\nevent:")).unwrap();
            let (name, data) = rest.split_once("\ndata:").unwrap();
            let data = data.strip_suffix("\n\n").unwrap();
            out.push((name.to_string(), serde_json::from_str(data).unwrap()));
        }
    }
    out
}

fn event(ctx: &TestHost, action: Action, collection: &str, id: &str) -> RecordEvent {
    let coll = ctx
        .db
        .core
        .schema
        .get()
        .collections
        .get(collection)
        .cloned()
        .unwrap();
    ctx.db
        .reader
        .read(|conn| Ok(RecordEvent::load(conn, action, coll, id)?))
        .unwrap()
        .unwrap()
}

#[test]
fn list_rules_decide_who_gets_events() {
    let Some(env) = env(RealtimeConfig::default()) else {
        return;
    };
    let ctx = env.ctx.clone();
    run(async move {
        // demo2: list rule "" (everyone); demo1: no rule (superusers only); demo3: only auth
        // records of other collections than users
        let mut guest = client(&ctx, None, &["demo2/*", "demo1/*", "demo3/*"]).await;
        let mut user = client(&ctx, Some(USER), &["demo2/*", "demo1/*", "demo3/*"]).await;
        let mut other = client(&ctx, Some(CLIENT), &["demo2/*", "demo1/*", "demo3/*"]).await;
        let mut su = client(&ctx, Some(SUPERUSER), &["demo2/*", "demo1/*", "demo3/*"]).await;

        let ev = event(&ctx, Action::Create, "demo2", "achvryl401bhse3");
        deliver(&ctx, &ev);
        for s in [&mut guest, &mut user, &mut other, &mut su] {
            let got = drain(s).await;
            assert_eq!(got.len(), 1, "{got:?}");
            assert_eq!(got[0].0, "demo2/*");
            assert_eq!(got[0].1["action"], "create");
            assert_eq!(got[0].1["record"]["id"], "achvryl401bhse3");
            assert_eq!(got[0].1["record"]["collectionName"], "demo2");
        }

        deliver(
            &ctx,
            &event(&ctx, Action::Update, "demo1", "84nmscqy84lsi1t"),
        );
        assert!(drain(&mut guest).await.is_empty());
        assert!(drain(&mut user).await.is_empty());
        assert!(drain(&mut other).await.is_empty());
        let got = drain(&mut su).await;
        assert_eq!(
            (got.len(), got[0].1["action"].as_str()),
            (1, Some("update"))
        );

        deliver(
            &ctx,
            &event(&ctx, Action::Update, "demo3", "1tmknxy2868d869"),
        );
        assert!(drain(&mut guest).await.is_empty());
        assert!(drain(&mut user).await.is_empty());
        assert_eq!(drain(&mut other).await.len(), 1);
        assert_eq!(drain(&mut su).await.len(), 1);
    });
}

#[test]
fn view_rule_owner_email_and_delete() {
    let Some(env) = env(RealtimeConfig::default()) else {
        return;
    };
    let ctx = env.ctx.clone();
    run(async move {
        // users: view rule `id = @request.auth.id`, list rule superusers only
        let topic = format!("users/{}", USER.0);
        let mut owner = client(&ctx, Some(USER), &[&topic, "users/*"]).await;
        let mut stranger = client(&ctx, Some(USER2), &[&topic]).await;
        let mut guest = client(&ctx, None, &[&topic]).await;
        let mut su = client(&ctx, Some(SUPERUSER), &[&topic]).await;

        let ev = event(&ctx, Action::Update, "users", USER.0);
        deliver(&ctx, &ev);
        let got = drain(&mut owner).await;
        assert_eq!(got.len(), 1, "the list topic needs a superuser: {got:?}");
        assert_eq!(got[0].0, topic);
        // emailVisibility is off, but the owner sees its own email; never the password hash
        assert_eq!(got[0].1["record"]["email"], "test@example.com");
        assert!(got[0].1["record"].get("password").is_none());
        assert!(got[0].1["record"].get("tokenKey").is_none());
        assert!(drain(&mut stranger).await.is_empty());
        assert!(drain(&mut guest).await.is_empty());
        assert_eq!(
            drain(&mut su).await[0].1["record"]["email"],
            "test@example.com"
        );

        // delete: the row is gone when the event is delivered; the rule sees its last values
        let del = event(&ctx, Action::Delete, "users", USER.0);
        let sql = format!("DELETE FROM users WHERE id = '{}'", USER.0);
        ctx.db
            .core
            .store
            .writer()
            .submit(move |conn| Ok(conn.execute_batch(&sql)?))
            .await
            .unwrap();
        deliver(&ctx, &del);
        let got = drain(&mut owner).await;
        assert_eq!(
            (got.len(), got[0].1["action"].as_str()),
            (1, Some("delete"))
        );
        assert!(drain(&mut stranger).await.is_empty());
        assert!(drain(&mut guest).await.is_empty());
        assert_eq!(drain(&mut su).await.len(), 1);
        // the deleted auth record's client is a guest now
        assert!(owner.client().state.borrow().auth.is_none());
    });
}

#[test]
fn options_filter_fields_and_headers() {
    let Some(env) = env(RealtimeConfig::default()) else {
        return;
    };
    let ctx = env.ctx.clone();
    run(async move {
        let active = r#"demo2/*?options={"query":{"filter":"active = true"}}"#;
        let fields = r#"demo2/*?options={"query":{"fields":"id,title"}}"#;
        let header = r#"demo2/*?options={"headers":{"X-Token":"abc"},"query":{"filter":"@request.headers.x_token = 'abc'"}}"#;
        let mut guest = client(&ctx, None, &[active, fields, header]).await;
        let mut su = client(&ctx, Some(SUPERUSER), &[header]).await;

        deliver(
            &ctx,
            &event(&ctx, Action::Update, "demo2", "llvuca81nly1qls"),
        );
        let mut got = drain(&mut guest).await;
        got.sort_by(|a, b| a.0.cmp(&b.0));
        // inactive record: the filter drops it; the fields picker keeps only id and title;
        // a non-superuser may not filter by @request.*
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, fields);
        assert_eq!(
            got[0].1,
            serde_json::json!({"record": {"id": "llvuca81nly1qls", "title": "test1"}, "action": "update"})
        );
        let got = drain(&mut su).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, header);

        deliver(
            &ctx,
            &event(&ctx, Action::Update, "demo2", "achvryl401bhse3"),
        );
        let names: Vec<String> = drain(&mut guest).await.into_iter().map(|m| m.0).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.contains(&active.to_string()));
    });
}

#[test]
fn one_evaluation_per_group_and_raw_record_json() {
    let Some(env) = env(RealtimeConfig::default()) else {
        return;
    };
    let ctx = env.ctx.clone();
    run(async move {
        let mut crowd = Vec::new();
        for i in 0..40 {
            let who = match i % 3 {
                0 => None,
                1 => Some(USER),
                _ => Some(USER2),
            };
            crowd.push(client(&ctx, who, &["demo2/*"]).await);
        }
        let mut su = client(&ctx, Some(SUPERUSER), &["demo2/*"]).await;
        let before = ctx.worker.evaluations();
        deliver(
            &ctx,
            &event(&ctx, Action::Create, "demo2", "0yxhwia2amd8gec"),
        );
        // guests and users share one group (the rule does not look at the auth record);
        // superusers are the other one
        assert_eq!(ctx.worker.evaluations() - before, 2);
        let mut frames = std::collections::HashSet::new();
        for s in &mut crowd {
            let frame = String::from_utf8(s.next().await.unwrap()).unwrap();
            let id = s.client().id.to_string();
            frames.insert(frame.replace(&id, "ID"));
        }
        assert_eq!(frames.len(), 1);
        let frame = frames.into_iter().next().unwrap();
        assert!(frame.starts_with("id:ID\nevent:demo2/*\ndata:{\"record\":{\"active\":true,\"collectionId\":\"sz5l5z67tg7gku0\",\"collectionName\":\"demo2\",\"created\":"), "{frame}");
        assert!(frame.ends_with("\"id\":\"0yxhwia2amd8gec\",\"title\":\"test3\",\"updated\":\"2022-10-14 10:52:49.596Z\"},\"action\":\"create\"}\n\n"), "{frame}");
        assert_eq!(drain(&mut su).await.len(), 1);
    });
}

/// Messages that queued up while the client's last write was under way leave in one chunk:
/// the bytes of their frames one after another, in order, as separate chunks would carry.
#[test]
fn a_backlog_leaves_in_one_chunk() {
    let Some(env) = env(RealtimeConfig::default()) else {
        return;
    };
    let ctx = env.ctx.clone();
    run(async move {
        let mut c = client(&ctx, None, &["demo2/*"]).await;
        let update = event(&ctx, Action::Update, "demo2", "achvryl401bhse3");
        let create = event(&ctx, Action::Create, "demo2", "0yxhwia2amd8gec");
        deliver(&ctx, &update);
        let one = String::from_utf8(c.next().await.unwrap()).unwrap();
        deliver(&ctx, &create);
        let two = String::from_utf8(c.next().await.unwrap()).unwrap();
        deliver(&ctx, &update);
        deliver(&ctx, &create);
        deliver(&ctx, &update);
        assert_eq!(c.client().queued(), 3);
        let batch = String::from_utf8(c.next().await.unwrap()).unwrap();
        assert_eq!(batch, format!("{one}{two}{one}"));
        assert_eq!(c.client().queued(), 0);
    });
}

#[test]
fn slow_clients_are_cut_off_alone() {
    let config = RealtimeConfig {
        max_queued_messages: 3,
        ..Default::default()
    };
    let Some(env) = env(config) else { return };
    let ctx = env.ctx.clone();
    run(async move {
        let mut slow = client(&ctx, None, &["demo2/*"]).await;
        let mut fast = client(&ctx, None, &["demo2/*"]).await;
        assert_eq!(ctx.hub.client_count(), 2);
        let ev = event(&ctx, Action::Update, "demo2", "achvryl401bhse3");
        for _ in 0..5 {
            deliver(&ctx, &ev);
            assert_eq!(drain(&mut fast).await.len(), 1);
        }
        // the slow one's queue overflowed: its stream ends, which unregisters it
        assert!(slow.client().is_closed());
        assert!(slow.next().await.is_none());
        drop(slow);
        assert_eq!(ctx.hub.client_count(), 1);
        assert_eq!(ctx.worker.client_count(), 1);
        deliver(&ctx, &ev);
        assert_eq!(drain(&mut fast).await.len(), 1);
    });
}

/// The byte limit bounds a backlog: one message bigger than it reaches a client whose queue
/// is empty; a second one queued behind it cuts the client off.
#[test]
fn one_message_over_the_byte_limit_is_delivered() {
    let config = RealtimeConfig {
        max_queued_bytes: 64,
        ..Default::default()
    };
    let Some(env) = env(config) else { return };
    let ctx = env.ctx.clone();
    run(async move {
        let mut c = client(&ctx, None, &["demo2/*"]).await;
        let ev = event(&ctx, Action::Update, "demo2", "achvryl401bhse3");
        deliver(&ctx, &ev);
        assert_eq!(drain(&mut c).await.len(), 1);
        deliver(&ctx, &ev);
        assert!(!c.client().is_closed());
        deliver(&ctx, &ev);
        assert!(c.client().is_closed());
    });
}

#[test]
fn subscribe_checks_client_ip_and_auth() {
    let Some(env) = env(RealtimeConfig::default()) else {
        return;
    };
    let ctx = env.ctx.clone();
    run(async move {
        let hub = &ctx.hub;
        let stream = client(&ctx, Some(USER), &["demo2/*"]).await;
        let id = stream.client().id.to_string();
        let sub = |ip: &str, who: Option<(&str, &str, &str)>| {
            let auth = who.map(|w| auth(&ctx, w));
            ctx.worker.subscribe(
                hub,
                id.clone(),
                ip.into(),
                auth,
                vec!["a".into(), "b".into(), "a".into()],
            )
        };
        assert_eq!(sub("10.0.0.1", Some(USER)).await.unwrap_err().status, 400);
        let err = sub(IP, Some(USER2)).await.unwrap_err();
        assert_eq!(
            (err.status, err.message.as_str()),
            (
                403,
                "The current and the previous request authorization don't match."
            )
        );
        assert_eq!(sub(IP, None).await.unwrap_err().status, 403);
        sub(IP, Some(USER)).await.unwrap();
        assert_eq!(ctx.worker.subscriptions(&id).unwrap(), vec!["a", "b"]);
        let err = ctx
            .worker
            .subscribe(hub, "missing".into(), IP.into(), None, vec![])
            .await
            .unwrap_err();
        assert_eq!(
            (err.status, err.message.as_str()),
            (404, "Missing or invalid client id.")
        );
        drop(stream);
        assert_eq!(hub.client_count(), 0);
    });
}

/// A record over 64 KiB takes the CPU-pool path (`deliver_big`): its messages are byte for
/// byte what the worker's path writes (rule, `fields`, `expand`, big text and JSON values put
/// back), in the same order, and later events follow them.
#[test]
fn big_events_are_written_on_the_pool_as_on_the_worker() {
    use super::broker::{deliver_big, is_big};
    use crate::records::SqlVal;
    let Some(env) = env(RealtimeConfig::default()) else {
        return;
    };
    let ctx = env.ctx.clone();
    run(async move {
        let subs = [
            "demo1/*",
            r#"demo1/*?options={"query":{"fields":"id,text:excerpt(20),json,expand","expand":"rel_one"}}"#,
        ];
        let mut su = client(&ctx, Some(SUPERUSER), &subs).await;
        let mut ev = event(&ctx, Action::Update, "demo1", "al1h9ijdeojtsjy");
        let field = |name: &str| ev.collection.fields.iter().position(|f| f.name == name);
        let (text, json) = (field("text").unwrap(), field("json").unwrap());
        ev.values[text] = SqlVal::Text("t\"\\".repeat(40_000).into());
        let array: Vec<String> = (0..30_000).map(|i| i.to_string()).collect();
        ev.values[json] = SqlVal::Text(format!("[{}]", array.join(",")).into());
        assert!(is_big(&ev));

        deliver(&ctx, &ev);
        let on_worker = drain(&mut su).await;
        let ev = Arc::new(ev);
        deliver_big(&ctx, &ev).await;
        deliver(
            &ctx,
            &event(&ctx, Action::Update, "demo1", "al1h9ijdeojtsjy"),
        );
        let on_pool = drain(&mut su).await;
        assert_eq!(on_worker.len(), 2, "{on_worker:?}");
        assert_eq!(on_pool.len(), 4);
        assert_eq!(on_pool[..2], on_worker[..]);
        assert_eq!(
            on_pool[0].1["record"]["text"].as_str().unwrap().len(),
            120_000
        );
        assert_eq!(on_pool[1].1["record"]["text"].as_str().unwrap().len(), 20);
        let expanded = &on_pool[1].1["record"]["expand"]["rel_one"]["id"];
        assert_eq!(expanded, "84nmscqy84lsi1t");
        // the small event after it comes last
        assert_ne!(
            on_pool[2].1["record"]["text"],
            on_pool[0].1["record"]["text"]
        );
    });
}

/// A stream ends by itself: after the idle timeout counted from its last message, and at the
/// max lifetime even while messages keep it from idling (one timer serves both limits).
#[test]
fn streams_end_when_idle_or_too_old() {
    use super::client::Message;
    use std::time::Duration;
    let msg = || {
        Rc::new(Message {
            name: "x".into(),
            data: "{}".into(),
        })
    };
    run(async {
        let Some(env) = env(RealtimeConfig {
            idle_timeout: Duration::from_millis(100),
            max_lifetime: Duration::from_secs(3600),
            ..Default::default()
        }) else {
            return;
        };
        let ctx = &env.ctx;
        let mut stream = client(ctx, None, &[]).await;
        assert!(stream.client().send(msg(), &ctx.hub.config));
        assert!(stream.next().await.is_some());
        let end = monoio::time::timeout(Duration::from_secs(60), stream.next()).await;
        assert!(matches!(end, Ok(None)), "idle stream still open");
    });
    run(async {
        let Some(env) = env(RealtimeConfig {
            idle_timeout: Duration::from_secs(3600),
            max_lifetime: Duration::from_millis(200),
            ..Default::default()
        }) else {
            return;
        };
        let ctx = &env.ctx;
        let mut stream = client(ctx, None, &[]).await;
        // a message every 20 ms (at most 3,000: a minute), each taken, then a wait for more
        for _ in 0..3000 {
            assert!(stream.client().send(msg(), &ctx.hub.config));
            assert!(stream.next().await.is_some());
            match monoio::time::timeout(Duration::from_millis(20), stream.next()).await {
                Ok(None) => return,
                Ok(Some(chunk)) => panic!("unexpected chunk {chunk:?}"),
                Err(_) => {}
            }
        }
        panic!("stream outlived its max lifetime");
    });
}
