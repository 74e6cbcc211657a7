//! Workloads: what each connection sends.
//!
//! A [`Workload`] is a named, CLI-selectable kind. It is turned into a
//! [`Plan`] (shared by all generator threads, built once — later workloads
//! will seed data here), and the plan hands each connection its own
//! [`RequestGen`] (so per-connection state such as counters or RNGs needs no
//! synchronization).

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
}

impl Workload {
    /// Stable name (as on the command line).
    pub fn name(self) -> &'static str {
        match self {
            Workload::Get => "get",
            Workload::Health => "health",
        }
    }

    /// Builds the shared plan for `target`.
    pub fn plan(self, target: &Target) -> crate::Result<Arc<dyn Plan>> {
        Ok(match self {
            Workload::Get => Arc::new(StaticPlan::get(target, &target.path)),
            Workload::Health => Arc::new(StaticPlan::get(target, "/api/health")),
        })
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
        let plan = Workload::Health.plan(&t).unwrap();
        assert_eq!(plan.describe(), "GET /api/health");
        let mut g = plan.connection(0);
        let mut out = Vec::new();
        g.next_request(&mut out);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("GET /api/health HTTP/1.1\r\nHost: 127.0.0.1:8090\r\n"));
        assert!(s.ends_with("\r\n\r\n"));
        let plan = Workload::Get.plan(&t).unwrap();
        assert_eq!(plan.describe(), "GET /ignored");
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
