//! In-process apps for unit tests: an [`App`] over a temporary `pb_data`, and one request at
//! a time run through its routing and middleware exactly as a worker runs it, without a
//! socket. Possible because every piece of state has an owner (`Core`, `Shared`, the
//! worker's `AppCtx`): two apps of one process share nothing.

use super::App;
use crate::ctx::Shared;
use crate::state::Core;
use pocketbun_http::{Body, Limits, Service};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A temporary `pb_data`, removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "pocketbun-{tag}-{}-{}",
            std::process::id(),
            pocketbun_storage::random::random_string(8)
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        TempDir(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) use crate::state::open_core;

/// An answer, its body as text.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    /// The body as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

impl App {
    /// A worker's app over `core`, with `serve`'s default options and a realtime hub of its
    /// own.
    pub(crate) fn for_test(core: Arc<Core>) -> App {
        let hub = Arc::new(crate::realtime::Hub::new(Default::default()));
        let mut hooks = crate::records::event::RecordHooks::default();
        hooks.add(hub.clone());
        let shared = Shared {
            core,
            realtime: hub,
            record_hooks: Arc::new(hooks),
            web: Default::default(),
            rate_windows: Default::default(),
            crons: None,
            cluster: None,
        };
        App::new(Arc::new(shared)).expect("a read connection")
    }

    /// Runs one request (`head`: the request line and header lines, without the final blank
    /// line) through routing, the body limit and the middleware chain, as a worker does.
    pub(crate) async fn request(&self, head: &str, body: &[u8]) -> Answer {
        let mut raw = head.replace('\n', "\r\n");
        raw.push_str(&format!(
            "\r\nhost: localhost\r\ncontent-length: {}\r\n\r\n",
            body.len()
        ));
        let (head, _) = pocketbun_http::parse::parse_head(raw.as_bytes(), &Limits::default())
            .expect("a valid request head")
            .expect("a complete request head");
        let (matched, limit) = self.route(&head);
        assert!(body.len() <= limit, "the body is over the route's limit");
        let req = pocketbun_http::Request {
            head,
            body: body.to_vec(),
            peer: "127.0.0.1:40000".parse().expect("an address"),
            params: Vec::new(),
        };
        let resp = self.call(matched, req).await;
        let body = match resp.body {
            Body::Empty => String::new(),
            Body::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
            Body::Stream(..) | Body::SizedStream(..) => "<stream>".into(),
        };
        Answer {
            status: resp.status,
            body,
        }
    }
}

/// Runs `f` on a single-threaded runtime, as a worker would.
pub(crate) fn run<F: std::future::Future>(f: F) -> F::Output {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .expect("a runtime")
        .block_on(f)
}
