//! A read replica's way to the primary: one request forwarded over plain HTTP/1.1 (`ureq`)
//! and its answer returned as is. The blocking call runs on a thread of its own (one per
//! forwarded request, at most [`MAX_IN_FLIGHT`]); the request worker awaits a channel and
//! keeps serving its other connections meanwhile.
//!
//! Spawning a thread costs ~20-50 µs, small next to the forwarded write itself (a network
//! round trip and the primary's commit); a long upload or a slow primary holds only its own
//! thread.

use futures_channel::oneshot;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Forwarded requests in flight at once; past it a request gets 503 at once rather than a
/// thread (a stalled primary cannot make the replica spawn without bound).
pub const MAX_IN_FLIGHT: usize = 512;
/// Connecting to the primary: a primary that is down answers "connection refused" at once;
/// one that is unreachable gets this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The whole exchange (uploads and batches included).
const TOTAL_TIMEOUT: Duration = Duration::from_secs(300);
/// The largest answer body read back (file downloads of local storage go through here).
const MAX_ANSWER: u64 = 4 << 30;

/// A replica's forwarding (unused on a primary): a part of [`super::Replication`].
#[derive(Default)]
pub struct Proxy {
    /// Forwarded requests in flight ([`MAX_IN_FLIGHT`]); each helper thread holds it.
    in_flight: Arc<AtomicUsize>,
    /// The client of plain exchanges: the whole exchange within [`TOTAL_TIMEOUT`].
    agent: OnceLock<ureq::Agent>,
    /// The client of streams, which last as long as the client stays.
    stream_agent: OnceLock<ureq::Agent>,
}

/// A request to forward.
pub struct Forward {
    /// The primary's base URL (`http://host:port`).
    pub base: String,
    pub method: String,
    /// The request target as the client sent it (path and query).
    pub target: String,
    /// The client's headers, minus hop-by-hop ones (the caller drops them).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The primary's answer.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why there is no answer: the primary could not be reached, or too many requests wait.
#[derive(Debug)]
pub struct Unavailable(pub String);

fn new_agent(total: Option<Duration>) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(total)
        .http_status_as_error(false)
        .max_redirects(0)
        .allow_non_standard_methods(true)
        // the client's own User-Agent is forwarded, ureq adds none
        .user_agent(ureq::config::AutoHeaderValue::None)
        .build()
        .into()
}

impl Proxy {
    /// Sends `req` to the primary on a helper thread and awaits its answer.
    pub async fn forward(&self, req: Forward) -> Result<Answer, Unavailable> {
        let (done, answer) = oneshot::channel();
        let agent = (self.agent.get_or_init(|| new_agent(Some(TOTAL_TIMEOUT)))).clone();
        self.spawn_counted("pb-proxy", move || {
            let _ = done.send(exchange(&agent, req));
        })?;
        answer
            .await
            .unwrap_or_else(|_| Err(Unavailable("the proxy thread died".into())))
    }

    /// Forwards a request whose answer is a stream (`GET /api/realtime`); its helper thread
    /// lives as long as the stream and counts toward [`MAX_IN_FLIGHT`].
    pub async fn forward_stream(&self, req: Forward) -> Result<StreamAnswer, Unavailable> {
        let (head_tx, head_rx) = oneshot::channel();
        let agent = (self.stream_agent.get_or_init(|| new_agent(None))).clone();
        self.spawn_counted("pb-proxy-sse", move || {
            stream_exchange(&agent, req, head_tx)
        })?;
        head_rx
            .await
            .unwrap_or_else(|_| Err(Unavailable("the proxy thread died".into())))
    }

    /// Runs `work` on a helper thread of its own, counted in [`MAX_IN_FLIGHT`] until it ends.
    fn spawn_counted(
        &self,
        name: &str,
        work: impl FnOnce() + Send + 'static,
    ) -> Result<(), Unavailable> {
        let in_flight = self.in_flight.clone();
        if in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
            in_flight.fetch_sub(1, Ordering::SeqCst);
            return Err(Unavailable("too many requests wait for the primary".into()));
        }
        let counted = in_flight.clone();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                work();
                counted.fetch_sub(1, Ordering::SeqCst);
            })
            .map(drop)
            .map_err(|e| {
                in_flight.fetch_sub(1, Ordering::SeqCst);
                Unavailable(format!("cannot start a proxy thread: {e}"))
            })
    }
}

/// Sends `req` to the primary with `agent`: the answer's head, its body still to read.
fn send(
    agent: &ureq::Agent,
    req: Forward,
) -> Result<ureq::http::Response<ureq::Body>, Unavailable> {
    let url = format!("{}{}", req.base.trim_end_matches('/'), req.target);
    let mut builder = ureq::http::Request::builder()
        .method(req.method.as_str())
        .uri(&url);
    for (name, value) in &req.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let request = builder
        .body(req.body)
        .map_err(|e| Unavailable(format!("cannot forward to {url}: {e}")))?;
    agent
        .run(request)
        .map_err(|e| Unavailable(format!("the primary {} is unreachable: {e}", req.base)))
}

/// An answer's headers, those whose value is text.
fn headers_of(resp: &ureq::http::Response<ureq::Body>) -> Vec<(String, String)> {
    resp.headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect()
}

fn exchange(agent: &ureq::Agent, req: Forward) -> Result<Answer, Unavailable> {
    let mut resp = send(agent, req)?;
    let status = resp.status().as_u16();
    let headers = headers_of(&resp);
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_vec()
        .map_err(|e| Unavailable(format!("the primary's answer broke off: {e}")))?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// An answer whose body arrives over time (the realtime SSE stream): the head, and the body
/// chunks as the primary sends them. The channel holds a few chunks; when the client goes
/// away the receiver is dropped and the helper thread ends the primary's stream at its next
/// chunk.
pub struct StreamAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub chunks: futures_channel::mpsc::Receiver<Vec<u8>>,
}

type Head = Result<StreamAnswer, Unavailable>;

fn stream_exchange(agent: &ureq::Agent, req: Forward, head: oneshot::Sender<Head>) {
    use std::io::Read;
    let resp = match send(agent, req) {
        Ok(resp) => resp,
        Err(e) => {
            let _ = head.send(Err(e));
            return;
        }
    };
    let (tx, rx) = futures_channel::mpsc::channel(8);
    let answer = StreamAnswer {
        status: resp.status().as_u16(),
        headers: headers_of(&resp),
        chunks: rx,
    };
    if head.send(Ok(answer)).is_err() {
        return;
    }
    let mut body = resp.into_body().into_reader();
    let mut tx = tx;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match body.read(&mut buf) {
            // a signal interrupted the read (EINTR, seen in-process under load): not the end
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if futures_executor_send(&mut tx, buf[..n].to_vec()).is_err() {
                    return; // the client went away
                }
            }
        }
    }
}

/// Sends `chunk`, waiting (on this helper thread) while the channel is full: a slow client
/// slows only its own stream.
fn futures_executor_send(
    tx: &mut futures_channel::mpsc::Sender<Vec<u8>>,
    mut chunk: Vec<u8>,
) -> Result<(), ()> {
    loop {
        match tx.try_send(chunk) {
            Ok(()) => return Ok(()),
            Err(e) if e.is_full() => {
                chunk = e.into_inner();
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return Err(()),
        }
    }
}
