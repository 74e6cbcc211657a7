//! Workloads: what each connection sends.
//!
//! A [`Workload`] is a named, CLI-selectable kind. It is turned into a
//! [`Plan`] (shared by all generator threads, built once — later workloads
//! will seed data here), and the plan hands each connection its own
//! [`RequestGen`] (so per-connection state such as counters or RNGs needs no
//! synchronization).

use crate::api::urlencode;
use crate::seed::{Seeded, PASSWORD, WRITES};
use crate::target::Target;
use std::sync::Arc;

/// Named workloads.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// `GET` of the URL exactly as given.
    Get,
    /// `GET /api/health` on the URL's origin.
    Health,
    /// `GET /api/collections/posts/records/{id}`, rotating over every seeded post.
    View,
    /// `GET /api/collections/posts/records?page=N&perPage=30` (with total), pages 1..=10.
    List,
    /// `published=true && views>K`, `sort=-views`, 30 per page, `skipTotal` (indexed).
    Filtered,
    /// Same shape on the unindexed `score` field (bound by SQLite's scan).
    FilteredUnindexed,
    /// A page of 30 posts with `expand=author`, `skipTotal`.
    Expand,
    /// `GET /api/collections/notes/records?perPage=30` as a user (rule `@request.auth.id != ""`).
    AuthList,
    /// `POST /api/collections/posts_w/records` (same schema as posts, public create rule).
    Create,
    /// `PATCH /api/collections/posts/records/{id}` (`views`), rotating ids.
    Update,
    /// `POST /api/collections/users/auth-with-password`, rotating users (bcrypt).
    AuthWithPassword,
    /// `POST /api/collections/users/auth-refresh`, rotating user tokens.
    AuthRefresh,
    /// `POST /api/batch` with 10 creates in `posts_w`.
    Batch,
    /// Realtime fan-out: N SSE clients, latency from create to delivery
    /// (`compare` only; not a closed-loop request workload).
    Realtime,
    /// `view`, measured while other connections log in without pause
    /// (`auth-with-password`): password hashing must not stall the reads
    /// (`compare` only).
    LoginStorm,
}

impl Workload {
    /// Stable name (as on the command line).
    pub fn name(self) -> &'static str {
        match self {
            Workload::Get => "get",
            Workload::Health => "health",
            Workload::View => "view",
            Workload::List => "list",
            Workload::Filtered => "filtered",
            Workload::FilteredUnindexed => "filtered-unindexed",
            Workload::Expand => "expand",
            Workload::AuthList => "auth-list",
            Workload::Create => "create",
            Workload::Update => "update",
            Workload::AuthWithPassword => "auth-with-password",
            Workload::AuthRefresh => "auth-refresh",
            Workload::Batch => "batch",
            Workload::Realtime => "realtime",
            Workload::LoginStorm => "login-storm",
        }
    }

    /// Every API workload, in the order `compare` runs them: reads first,
    /// then logins, then writes (which grow the tables).
    pub const COMPARE: [Workload; 14] = [
        Workload::Health,
        Workload::View,
        Workload::List,
        Workload::Filtered,
        Workload::FilteredUnindexed,
        Workload::Expand,
        Workload::AuthList,
        Workload::AuthWithPassword,
        Workload::AuthRefresh,
        Workload::LoginStorm,
        Workload::Create,
        Workload::Update,
        Workload::Batch,
        Workload::Realtime,
    ];

    /// Whether the workload needs seeded data.
    pub fn needs_seed(self) -> bool {
        !matches!(self, Workload::Get | Workload::Health)
    }

    /// Builds the shared plan for `target` (`seed` = what was seeded there).
    pub fn plan(self, target: &Target, seed: Option<&Seeded>) -> crate::Result<Arc<dyn Plan>> {
        if !self.needs_seed() {
            return Ok(match self {
                Workload::Get => Arc::new(StaticPlan::get(target, &target.path)),
                _ => Arc::new(StaticPlan::get(target, "/api/health")),
            });
        }
        let seed = seed.ok_or_else(|| {
            format!(
                "workload {} needs seeded data: use `loadtest compare`",
                self.name()
            )
        })?;
        let need = |v: &[String], what: &str| -> crate::Result<()> {
            if v.is_empty() {
                Err(format!("workload {}: nothing seeded ({what})", self.name()).into())
            } else {
                Ok(())
            }
        };
        const JSON: (&str, &str) = ("Content-Type", "application/json");
        let get = |path: String| build_request("GET", target, &path, &[], b"");
        let posts = "/api/collections/posts/records";
        let writes = format!("/api/collections/{WRITES}/records");
        let (describe, requests): (String, Vec<Vec<u8>>) = match self {
            Workload::Get | Workload::Health => unreachable!(),
            Workload::Realtime => {
                return Err("realtime is measured by `loadtest compare` (SSE fan-out)".into())
            }
            Workload::View | Workload::LoginStorm => {
                need(&seed.post_ids, "posts")?;
                (
                    format!("GET {posts}/{{id}}"),
                    seed.post_ids
                        .iter()
                        .map(|id| get(format!("{posts}/{id}")))
                        .collect(),
                )
            }
            Workload::List => (
                format!("GET {posts}?page=1..10&perPage=30"),
                (1..=10)
                    .map(|p| get(format!("{posts}?page={p}&perPage=30")))
                    .collect(),
            ),
            Workload::Filtered | Workload::FilteredUnindexed => {
                let f = if self == Workload::Filtered {
                    "views"
                } else {
                    "score"
                };
                (
                    format!("GET {posts}?filter=(published=true && {f}>K)&sort=-{f}&perPage=30&skipTotal=1"),
                    (0..10)
                        .map(|k| {
                            let filter = urlencode(&format!("(published=true && {f}>{})", k * 97));
                            get(format!(
                                "{posts}?filter={filter}&sort=-{f}&perPage=30&skipTotal=1"
                            ))
                        })
                        .collect(),
                )
            }
            Workload::Expand => (
                format!("GET {posts}?page=1..10&perPage=30&expand=author&skipTotal=1"),
                (1..=10)
                    .map(|p| {
                        get(format!(
                            "{posts}?page={p}&perPage=30&expand=author&skipTotal=1"
                        ))
                    })
                    .collect(),
            ),
            Workload::AuthList => {
                need(&seed.user_tokens, "user tokens")?;
                (
                    "GET /api/collections/notes/records?perPage=30 (user token)".to_string(),
                    seed.user_tokens
                        .iter()
                        .map(|t| {
                            build_request(
                                "GET",
                                target,
                                "/api/collections/notes/records?perPage=30",
                                &[("Authorization", t)],
                                b"",
                            )
                        })
                        .collect(),
                )
            }
            Workload::Create => {
                need(&seed.user_ids, "users")?;
                (
                    format!("POST {writes}"),
                    (0..64)
                        .map(|i| {
                            let body = create_body(i, &seed.user_ids);
                            build_request("POST", target, &writes, &[JSON], body.as_bytes())
                        })
                        .collect(),
                )
            }
            Workload::Update => {
                need(&seed.post_ids, "posts")?;
                (
                    format!("PATCH {posts}/{{id}} {{\"views\":N}}"),
                    seed.post_ids
                        .iter()
                        .enumerate()
                        .map(|(i, id)| {
                            let body = format!("{{\"views\":{}}}", (i * 31) % 1000);
                            build_request(
                                "PATCH",
                                target,
                                &format!("{posts}/{id}"),
                                &[JSON],
                                body.as_bytes(),
                            )
                        })
                        .collect(),
                )
            }
            Workload::AuthWithPassword => {
                need(&seed.user_emails, "users")?;
                (
                    "POST /api/collections/users/auth-with-password".to_string(),
                    seed.user_emails
                        .iter()
                        .map(|e| {
                            let body = serde_json::json!({"identity": e, "password": PASSWORD})
                                .to_string();
                            build_request(
                                "POST",
                                target,
                                "/api/collections/users/auth-with-password",
                                &[JSON],
                                body.as_bytes(),
                            )
                        })
                        .collect(),
                )
            }
            Workload::AuthRefresh => {
                need(&seed.user_tokens, "user tokens")?;
                (
                    "POST /api/collections/users/auth-refresh".to_string(),
                    seed.user_tokens
                        .iter()
                        .map(|t| {
                            build_request(
                                "POST",
                                target,
                                "/api/collections/users/auth-refresh",
                                &[("Authorization", t)],
                                b"",
                            )
                        })
                        .collect(),
                )
            }
            Workload::Batch => {
                need(&seed.user_ids, "users")?;
                (
                    "POST /api/batch (10 creates in posts_w)".to_string(),
                    (0..16)
                        .map(|b| {
                            let reqs: Vec<String> = (0..10)
                                .map(|k| {
                                    format!(
                                        "{{\"method\":\"POST\",\"url\":\"{writes}\",\"body\":{}}}",
                                        create_body(b * 10 + k, &seed.user_ids)
                                    )
                                })
                                .collect();
                            let body = format!("{{\"requests\":[{}]}}", reqs.join(","));
                            build_request("POST", target, "/api/batch", &[JSON], body.as_bytes())
                        })
                        .collect(),
                )
            }
        };
        Ok(Arc::new(RotatingPlan::new(describe, requests)))
    }
}

/// JSON body of a post created by the write workloads (server-generated id).
fn create_body(i: usize, users: &[String]) -> String {
    serde_json::json!({
        "title": format!("Loadtest post {i}"),
        "body": "Created by the loadtest create workload. Lorem ipsum dolor sit amet.",
        "views": (i * 13) % 1000,
        "score": (i * 17) % 1000,
        "published": i % 2 == 0,
        "author": users[i % users.len()],
        "tags": ["lt", format!("c{}", i % 5)],
    })
    .to_string()
}

/// A fixed list of requests; each connection walks it from its own offset.
pub struct RotatingPlan {
    describe: String,
    requests: Arc<Vec<Arc<[u8]>>>,
}

impl RotatingPlan {
    /// Plan over `requests` (must not be empty).
    pub fn new(describe: String, requests: Vec<Vec<u8>>) -> RotatingPlan {
        assert!(!requests.is_empty(), "rotating plan without requests");
        RotatingPlan {
            describe,
            requests: Arc::new(requests.into_iter().map(Into::into).collect()),
        }
    }
}

impl Plan for RotatingPlan {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn connection(&self, conn: usize) -> Box<dyn RequestGen> {
        let n = self.requests.len();
        // Spread starting points so connections do not walk in lock step.
        let next = (conn.wrapping_mul(7919)) % n;
        Box::new(RotatingGen {
            requests: self.requests.clone(),
            next,
        })
    }

    fn sample(&self) -> Vec<u8> {
        self.requests[0].to_vec()
    }
}

struct RotatingGen {
    requests: Arc<Vec<Arc<[u8]>>>,
    next: usize,
}

impl RequestGen for RotatingGen {
    #[inline]
    fn next_request(&mut self, out: &mut Vec<u8>) -> RequestMeta {
        out.extend_from_slice(&self.requests[self.next]);
        self.next += 1;
        if self.next == self.requests.len() {
            self.next = 0;
        }
        RequestMeta::default()
    }
}

/// Per-request facts the client needs to parse the response.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestMeta {
    /// The request was `HEAD` (the response carries no body).
    pub head: bool,
}

/// A workload prepared for one run; shared by all generator threads.
pub trait Plan: Send + Sync {
    /// What is being requested, for reports (`GET /api/health`).
    fn describe(&self) -> String;
    /// Request generator for connection number `conn` (0-based, global).
    fn connection(&self, conn: usize) -> Box<dyn RequestGen>;
    /// One representative request (for a pre-flight check before loading).
    fn sample(&self) -> Vec<u8>;
}

/// Produces the requests of one connection.
pub trait RequestGen {
    /// Appends the next request's bytes to `out` (which is empty).
    fn next_request(&mut self, out: &mut Vec<u8>) -> RequestMeta;
}

/// Serializes a request head (and body) with the harness's standard headers.
pub fn build_request(
    method: &str,
    target: &Target,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + body.len());
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(target.authority.as_bytes());
    out.extend_from_slice(b"\r\nUser-Agent: pocketbun-loadtest\r\nAccept: */*\r\n");
    for (k, v) in headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// The same bytes on every request.
pub struct StaticPlan {
    describe: String,
    bytes: Arc<[u8]>,
    meta: RequestMeta,
}

impl StaticPlan {
    /// `GET path` against `target`'s origin.
    pub fn get(target: &Target, path: &str) -> StaticPlan {
        StaticPlan {
            describe: format!("GET {path}"),
            bytes: build_request("GET", target, path, &[], b"").into(),
            meta: RequestMeta::default(),
        }
    }
}

impl Plan for StaticPlan {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn connection(&self, _conn: usize) -> Box<dyn RequestGen> {
        Box::new(StaticGen {
            bytes: self.bytes.clone(),
            meta: self.meta,
        })
    }

    fn sample(&self) -> Vec<u8> {
        self.bytes.to_vec()
    }
}

struct StaticGen {
    bytes: Arc<[u8]>,
    meta: RequestMeta,
}

impl RequestGen for StaticGen {
    #[inline]
    fn next_request(&mut self, out: &mut Vec<u8>) -> RequestMeta {
        out.extend_from_slice(&self.bytes);
        self.meta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_request_bytes() {
        let t = Target::parse("http://127.0.0.1:8090/ignored").unwrap();
        let plan = Workload::Health.plan(&t, None).unwrap();
        assert_eq!(plan.describe(), "GET /api/health");
        let mut g = plan.connection(0);
        let mut out = Vec::new();
        g.next_request(&mut out);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("GET /api/health HTTP/1.1\r\nHost: 127.0.0.1:8090\r\n"));
        assert!(s.ends_with("\r\n\r\n"));
        let plan = Workload::Get.plan(&t, None).unwrap();
        assert_eq!(plan.describe(), "GET /ignored");
    }

    fn seeded() -> Seeded {
        Seeded {
            post_ids: (0..5).map(crate::seed::post_id).collect(),
            user_ids: (0..3).map(crate::seed::user_id).collect(),
            user_emails: (0..3).map(crate::seed::user_email).collect(),
            user_tokens: vec!["tok0".into(), "tok1".into()],
            ..Seeded::default()
        }
    }

    fn requests(w: Workload, conn: usize, n: usize) -> Vec<String> {
        let t = Target::parse("http://127.0.0.1:8090/").unwrap();
        let plan = w.plan(&t, Some(&seeded())).unwrap();
        let mut g = plan.connection(conn);
        (0..n)
            .map(|_| {
                let mut out = Vec::new();
                g.next_request(&mut out);
                String::from_utf8(out).unwrap()
            })
            .collect()
    }

    #[test]
    fn seeded_workloads_rotate() {
        let v = requests(Workload::View, 0, 6);
        assert!(v[0].starts_with("GET /api/collections/posts/records/p00000000000000 HTTP/1.1\r\n"));
        assert!(v[1].contains("/p00000000000001 "));
        assert_eq!(v[0], v[5], "wraps around after every id");
        let f = requests(Workload::Filtered, 0, 2);
        assert!(f[1].starts_with(
            "GET /api/collections/posts/records?filter=%28published%3Dtrue%20%26%26%20views%3E97%29&sort=-views&perPage=30&skipTotal=1 "
        ));
        let a = requests(Workload::AuthList, 1, 1);
        assert!(a[0].contains("\r\nAuthorization: tok"));
        let b = requests(Workload::Batch, 0, 1);
        let body = b[0].split("\r\n\r\n").nth(1).unwrap();
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["requests"].as_array().unwrap().len(), 10);
        let p = requests(Workload::AuthWithPassword, 0, 1);
        assert!(p[0].contains("\"identity\":\"user0@example.com\""));
        let t = Target::parse("http://127.0.0.1:8090/").unwrap();
        assert!(Workload::View.plan(&t, None).is_err());
        assert!(Workload::Realtime.plan(&t, Some(&seeded())).is_err());
    }

    #[test]
    fn post_has_length() {
        let t = Target::parse("http://127.0.0.1:1/").unwrap();
        let r = build_request(
            "POST",
            &t,
            "/x",
            &[("Content-Type", "application/json")],
            b"{}",
        );
        let s = String::from_utf8(r).unwrap();
        assert!(s.contains("Content-Length: 2\r\n\r\n{}"));
    }
}
