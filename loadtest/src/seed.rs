//! Seeds a server through the PocketBase Web API, identically for every server.
//!
//! Before the server starts, a superuser is created on its data dir with
//! `<binary> superuser upsert EMAIL PASS --dir=DIR` (see [`superuser_upsert`]).
//! Then, over HTTP:
//!
//! 1. superuser login; `PATCH /api/settings` enables batch (and sets
//!    `logs.maxDays=0` when request logging is to be off);
//! 2. `users` (the default auth collection) gets a public `viewRule` so that
//!    `expand=author` resolves for anonymous readers;
//! 3. `posts` (title, body, views, score, published, author → users, tags json;
//!    index on `(published, views)`, `score` deliberately unindexed; public
//!    list/view/create/update rules), `posts_w` (the same, empty: the create
//!    and batch workloads write there so `posts` stays the same size on both
//!    servers) and `notes` (rule `@request.auth.id != ""`);
//! 4. users, then posts and notes, with fixed ids and deterministic content,
//!    through `POST /api/batch` (falling back to plain creates if batch is not
//!    available);
//! 5. logs in a few users for tokens.

use crate::api::{Api, ApiResponse};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Superuser the harness creates on every server.
pub const SU_EMAIL: &str = "loadtest@example.com";
/// Collection the create and batch workloads write to (same schema as `posts`).
pub const WRITES: &str = "posts_w";
/// Password of the superuser and of every seeded user.
pub const PASSWORD: &str = "loadtest-pass-1";

/// How much to seed.
#[derive(Clone, Debug)]
pub struct SeedConfig {
    pub users: usize,
    pub posts: usize,
    pub notes: usize,
    /// Creates per `POST /api/batch` while seeding.
    pub batch: usize,
    /// Users logged in for tokens (auth-list, auth-refresh).
    pub tokens: usize,
    /// Set `logs.maxDays=0` (request logging off).
    pub no_logs: bool,
}

impl Default for SeedConfig {
    fn default() -> Self {
        SeedConfig {
            users: 100,
            posts: 10_000,
            notes: 1_000,
            batch: 100,
            tokens: 20,
            no_logs: false,
        }
    }
}

/// What the workloads need to know about the seeded data.
#[derive(Clone, Debug, Default)]
pub struct Seeded {
    pub superuser_token: String,
    pub post_ids: Vec<String>,
    pub user_ids: Vec<String>,
    pub user_emails: Vec<String>,
    /// Tokens of the first [`SeedConfig::tokens`] users.
    pub user_tokens: Vec<String>,
    /// `POST /api/batch` worked while seeding.
    pub batch_ok: bool,
    /// Notable things that happened (fallbacks, partial seeds).
    pub notes: Vec<String>,
}

/// Fixed 15-char ids (`[a-z0-9]{15}`, PocketBase's default id pattern).
pub fn user_id(i: usize) -> String {
    format!("u{i:014}")
}
pub fn post_id(i: usize) -> String {
    format!("p{i:014}")
}
pub fn note_id(i: usize) -> String {
    format!("n{i:014}")
}
pub fn user_email(i: usize) -> String {
    format!("user{i}@example.com")
}

/// Deterministic post content.
pub fn post_body(i: usize, users: usize) -> Value {
    json!({
        "id": post_id(i),
        "title": format!("Post number {i}"),
        "body": format!(
            "Body of post {i}. Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do \
             eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam."
        ),
        "views": (i * 7919) % 1000,
        "score": (i * 104_729) % 1000,
        "published": i % 3 != 0,
        "author": user_id(i % users.max(1)),
        "tags": [format!("t{}", i % 10), format!("k{}", i % 7)],
    })
}

/// Runs `program superuser upsert EMAIL PASS --dir=DIR` (before the server starts).
pub fn superuser_upsert(program: &Path, dir: &Path) -> crate::Result<()> {
    let mut d = std::ffi::OsString::from("--dir=");
    d.push(dir);
    let out = Command::new(program)
        .args(["superuser", "upsert", SU_EMAIL, PASSWORD])
        .arg(d)
        .output()
        .map_err(|e| format!("running {} superuser upsert: {e}", program.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} superuser upsert failed ({}): {}{}",
            program.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

fn field(name: &str, ty: &str) -> Value {
    json!({"name": name, "type": ty})
}

/// Logs in `identity` on `collection`, returns the token.
pub fn login(api: &mut Api, collection: &str, identity: &str) -> crate::Result<String> {
    let r = api
        .call(
            "POST",
            &format!("/api/collections/{collection}/auth-with-password"),
            Some(""),
            Some(&json!({"identity": identity, "password": PASSWORD})),
        )?
        .check(&format!("login {identity} on {collection}"))?;
    r.json()["token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| "login response without token".into())
}

/// Seeds the server behind `api` into `out`. `log` receives progress lines.
/// On error `out` keeps what was seeded up to that point, so workloads that
/// need only part of the data can still run.
pub fn seed(
    api: &mut Api,
    cfg: &SeedConfig,
    out: &mut Seeded,
    log: &mut dyn FnMut(&str),
) -> crate::Result<()> {
    let t0 = Instant::now();
    let su = login(api, "_superusers", SU_EMAIL)?;
    api.token = Some(su.clone());
    out.superuser_token = su;

    let mut settings =
        json!({"batch": {"enabled": true, "maxRequests": cfg.batch.max(10), "timeout": 30}});
    if cfg.no_logs {
        settings["logs"] = json!({"maxDays": 0});
    }
    let r = api.call("PATCH", "/api/settings", None, Some(&settings))?;
    if !r.ok() {
        out.notes
            .push(format!("PATCH /api/settings failed: {}", r.brief(200)));
        if cfg.no_logs {
            return Err(format!("cannot turn request logs off: {}", r.brief(200)).into());
        }
    } else if cfg.no_logs {
        let s = api
            .call("GET", "/api/settings", None, None)?
            .check("GET settings")?;
        if s.json()["logs"]["maxDays"].as_i64() != Some(0) {
            return Err("settings did not keep logs.maxDays=0".into());
        }
    }

    api.call(
        "PATCH",
        "/api/collections/users",
        None,
        Some(&json!({"viewRule": ""})),
    )?
    .check("PATCH users viewRule")?;
    let users_id = api
        .call("GET", "/api/collections/users", None, None)?
        .check("GET users collection")?
        .json()["id"]
        .as_str()
        .unwrap_or("_pb_users_auth_")
        .to_string();

    let posts = json!({
        "name": "posts",
        "type": "base",
        "listRule": "", "viewRule": "", "createRule": "", "updateRule": "",
        "fields": [
            field("title", "text"),
            field("body", "text"),
            field("views", "number"),
            field("score", "number"),
            field("published", "bool"),
            {"name": "author", "type": "relation", "collectionId": users_id, "maxSelect": 1},
            field("tags", "json"),
        ],
        "indexes": ["CREATE INDEX idx_posts_published_views ON posts (published, views)"],
    });
    api.call("POST", "/api/collections", None, Some(&posts))?
        .check("create posts collection")?;
    // Same schema for the create/batch workloads, so writes never grow the
    // table the read workloads measure (write throughput differs per server).
    let mut posts_w = posts.clone();
    posts_w["name"] = json!(WRITES);
    posts_w["indexes"] = json!([format!(
        "CREATE INDEX idx_{WRITES}_published_views ON {WRITES} (published, views)"
    )]);
    api.call("POST", "/api/collections", None, Some(&posts_w))?
        .check("create posts_w collection")?;
    let rule = "@request.auth.id != \"\"";
    let notes = json!({
        "name": "notes",
        "type": "base",
        "listRule": rule, "viewRule": rule,
        "fields": [field("title", "text"), field("body", "text"), field("rank", "number")],
    });
    api.call("POST", "/api/collections", None, Some(&notes))?
        .check("create notes collection")?;
    log(&format!(
        "collections created ({:.1}s)",
        t0.elapsed().as_secs_f64()
    ));

    // Users: plain creates (each one is a bcrypt hash; a batch of many would
    // run into batch timeouts on slow hashing).
    for i in 0..cfg.users {
        let body = json!({
            "id": user_id(i),
            "email": user_email(i),
            "emailVisibility": false,
            "password": PASSWORD,
            "passwordConfirm": PASSWORD,
            "verified": true,
            "name": format!("User {i}"),
        });
        api.call("POST", "/api/collections/users/records", None, Some(&body))?
            .check(&format!("create user {i}"))?;
        out.user_ids.push(user_id(i));
        out.user_emails.push(user_email(i));
    }
    log(&format!(
        "{} users ({:.1}s)",
        cfg.users,
        t0.elapsed().as_secs_f64()
    ));

    let mut batch_ok = true;
    let mut created = 0usize;
    let mut first_err: Option<String> = None;
    {
        let mut create_all = |collection: &str,
                              n: usize,
                              body: &dyn Fn(usize) -> Value,
                              id: &dyn Fn(usize) -> String,
                              ids: &mut Vec<String>|
         -> crate::Result<()> {
            let url = format!("/api/collections/{collection}/records");
            let mut i = 0;
            while i < n {
                let end = (i + cfg.batch.max(1)).min(n);
                if batch_ok {
                    let reqs: Vec<Value> = (i..end)
                        .map(|k| json!({"method": "POST", "url": url, "body": body(k)}))
                        .collect();
                    let r =
                        api.call("POST", "/api/batch", None, Some(&json!({"requests": reqs})))?;
                    if r.ok() {
                        ids.extend((i..end).map(id));
                        created += end - i;
                        i = end;
                        continue;
                    }
                    batch_ok = false;
                    first_err.get_or_insert_with(|| format!("POST /api/batch: {}", r.brief(200)));
                }
                // Plain creates.
                for k in i..end {
                    let r: ApiResponse = api.call("POST", &url, None, Some(&body(k)))?;
                    if !r.ok() {
                        return Err(format!("create {collection} #{k}: {}", r.brief(300)).into());
                    }
                    ids.push(id(k));
                    created += 1;
                }
                i = end;
            }
            Ok(())
        };
        let users = cfg.users;
        create_all(
            "posts",
            cfg.posts,
            &|i| post_body(i, users),
            &post_id,
            &mut out.post_ids,
        )?;
        let mut note_ids = Vec::new();
        create_all(
            "notes",
            cfg.notes,
            &|i| json!({"id": note_id(i), "title": format!("Note {i}"), "body": "private note", "rank": i % 100}),
            &note_id,
            &mut note_ids,
        )?;
    }
    out.batch_ok = batch_ok;
    if let Some(e) = first_err {
        out.notes.push(format!(
            "batch unavailable, seeded with plain creates ({e})"
        ));
    }
    log(&format!(
        "{created} records ({} posts, {} notes) via {} ({:.1}s)",
        cfg.posts,
        cfg.notes,
        if batch_ok { "batch" } else { "plain creates" },
        t0.elapsed().as_secs_f64()
    ));

    for i in 0..cfg.tokens.min(cfg.users) {
        out.user_tokens.push(login(api, "users", &user_email(i))?);
    }
    log(&format!(
        "{} user tokens; seeded in {:.1}s",
        out.user_tokens.len(),
        t0.elapsed().as_secs_f64()
    ));
    Ok(())
}
