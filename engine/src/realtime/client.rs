//! One realtime client: its subscriptions, its auth, its bounded outgoing queue, and the SSE
//! stream that drains the queue onto its connection.

use super::topic::Subscription;
use super::RealtimeConfig;
use crate::auth::AuthRecord;
use futures_util::Stream;
use pocketbun_http::Deadline;
use pocketbun_query::AuthInfo;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// One SSE message; shared by every client of a group (the `id:` line is added per client).
#[derive(Debug)]
pub struct Message {
    pub name: String,
    pub data: String,
}

impl Message {
    /// `id:<client>\nevent:<name>\ndata:<data>\n\n`, as PocketBase frames it.
    pub fn frame(&self, client_id: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.frame_len(client_id) + pocketbun_http::CHUNK_ROOM);
        self.frame_into(&mut out, client_id);
        out
    }

    /// Appends [`Message::frame`]'s bytes to `out`.
    pub fn frame_into(&self, out: &mut Vec<u8>, client_id: &str) {
        out.extend_from_slice(b"id:");
        out.extend_from_slice(client_id.as_bytes());
        out.extend_from_slice(b"\nevent:");
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(b"\ndata:");
        out.extend_from_slice(self.data.as_bytes());
        out.extend_from_slice(b"\n\n");
    }

    /// The length of [`Message::frame`]'s bytes.
    pub fn frame_len(&self, client_id: &str) -> usize {
        client_id.len() + self.name.len() + self.data.len() + 18
    }

    fn cost(&self) -> usize {
        self.name.len() + self.data.len() + 64
    }
}

/// The auth a client was bound to by its subscription request.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    pub record: AuthRecord,
    /// The auth record as rules see it (`@request.auth.*`).
    pub info: AuthInfo,
}

impl ClientAuth {
    pub fn same(a: Option<&AuthRecord>, b: Option<&AuthRecord>) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => a.id == b.id && a.collection_id == b.collection_id,
            _ => false,
        }
    }
}

/// A client's outgoing messages. The first one waits inline: in a fan-out each client has
/// one message at a time, and a `VecDeque`'s buffer was one more cold line per delivery,
/// written when the message is queued and read when it is written out.
#[derive(Default)]
struct Queue {
    /// The oldest message; `None` only when `rest` is empty too.
    first: Option<Rc<Message>>,
    rest: VecDeque<Rc<Message>>,
}

impl Queue {
    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    fn push(&mut self, msg: Rc<Message>) {
        if self.first.is_none() {
            self.first = Some(msg);
        } else {
            self.rest.push_back(msg);
        }
    }

    fn pop(&mut self) -> Option<Rc<Message>> {
        let msg = self.first.take();
        self.first = self.rest.pop_front();
        msg
    }

    fn clear(&mut self) {
        self.first = None;
        self.rest.clear();
    }

    fn iter(&self) -> impl Iterator<Item = &Rc<Message>> {
        self.first.iter().chain(self.rest.iter())
    }
}

/// The fields a delivery touches come first (`repr(C)` keeps the order), so that they share
/// cache lines instead of sitting around the auth record.
#[derive(Default)]
#[repr(C)]
pub struct ClientState {
    /// Disconnected (too slow): the stream ends.
    closed: bool,
    queued_bytes: usize,
    waker: Option<Waker>,
    queue: Queue,
    pub subs: Vec<Subscription>,
    pub auth: Option<ClientAuth>,
}

#[repr(C)]
pub struct Client {
    pub state: RefCell<ClientState>,
    pub id: Rc<str>,
    /// The IP the client connected from (subscription requests must come from it).
    pub ip: String,
}

impl Client {
    pub fn new(id: &str, ip: String) -> Client {
        Client {
            id: id.into(),
            ip,
            state: RefCell::new(ClientState::default()),
        }
    }

    /// Queues `msg`; a client whose queue is over the limits is disconnected instead. The
    /// byte limit bounds a backlog, not one message: an empty queue takes a message of any
    /// size (a 48 MiB record's event reaches its subscriber, as from PocketBase).
    /// Returns false when the client is (now) disconnected.
    pub fn send(&self, msg: Rc<Message>, config: &RealtimeConfig) -> bool {
        let mut st = self.state.borrow_mut();
        if st.closed {
            return false;
        }
        if st.queue.len() >= config.max_queued_messages
            || (!st.queue.is_empty() && st.queued_bytes + msg.cost() > config.max_queued_bytes)
        {
            st.closed = true;
            st.queue.clear();
            st.queued_bytes = 0;
        } else {
            st.queued_bytes += msg.cost();
            st.queue.push(msg);
        }
        if let Some(w) = st.waker.take() {
            w.wake();
        }
        !st.closed
    }

    /// Messages waiting to be written.
    pub fn queued(&self) -> usize {
        self.state.borrow().queue.len()
    }

    pub fn is_closed(&self) -> bool {
        self.state.borrow().closed
    }
}

/// Runs when the stream is dropped (connection gone, timeouts, shutdown).
pub trait OnClose {
    fn closed(&self, client: &Client);
}

/// The body of a `GET /api/realtime` response: `PB_CONNECT`, then the client's messages as
/// they are queued, until the client is idle or too old (or too slow).
pub struct SseStream {
    client: Rc<Client>,
    on_close: Option<Box<dyn OnClose>>,
    connect: Option<Vec<u8>>,
    idle_timeout: Duration,
    /// When the last message was handed out: the idle timer counts from it.
    last_sent: monoio::time::Instant,
    /// When the client is too old (the max lifetime).
    max_at: monoio::time::Instant,
    /// One timer for both limits, due at the earlier of the idle deadline it was last set
    /// for and `max_at`, polled only when it may have fired.
    timer: Deadline,
    done: bool,
}

impl SseStream {
    pub fn new(client: Rc<Client>, config: &RealtimeConfig, on_close: Box<dyn OnClose>) -> Self {
        let connect = Message {
            name: "PB_CONNECT".into(),
            data: format!("{{\"clientId\":\"{}\"}}", client.id),
        }
        .frame(&client.id);
        let now = monoio::time::Instant::now();
        let max_at = now + config.max_lifetime;
        let due = (now + config.idle_timeout).min(max_at);
        SseStream {
            client,
            on_close: Some(on_close),
            connect: Some(connect),
            idle_timeout: config.idle_timeout,
            last_sent: now,
            max_at,
            timer: Deadline::new(due),
            done: false,
        }
    }
}

impl SseStream {
    /// The client this stream delivers to.
    pub fn client(&self) -> &Rc<Client> {
        &self.client
    }
}

impl Stream for SseStream {
    type Item = Vec<u8>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Vec<u8>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(connect) = self.connect.take() {
            return Poll::Ready(Some(connect));
        }
        let next = {
            let mut st = self.client.state.borrow_mut();
            if st.queue.is_empty() {
                if st.closed {
                    drop(st);
                    self.done = true;
                    return Poll::Ready(None);
                }
                st.waker = Some(cx.waker().clone());
                None
            } else {
                Some(take_frames(&mut st, &self.client.id))
            }
        };
        if let Some(frames) = next {
            // PocketBase restarts the idle timer after each delivered message. The timer is
            // moved only when it fires (below): resetting it per message was ~130
            // instructions and a cold timer entry touched per client per event
            self.last_sent = monoio::time::Instant::now();
            return Poll::Ready(Some(frames));
        }
        // The timer is polled only when it may have fired (`Deadline`): polling it (and a
        // second one for the max lifetime) after every message read cold timer entries, ~4
        // of the ~54 L1 misses of a delivery (callgrind, 2,000 clients), most of a fan-out's
        // user time being misses.
        while self.timer.poll_fired(cx).is_ready() {
            let now = monoio::time::Instant::now();
            let idle_due = self.last_sent + self.idle_timeout;
            if idle_due <= now || self.max_at <= now {
                self.done = true;
                return Poll::Ready(None);
            }
            // a message went out since the timer was set: idle counts from that one
            let due = idle_due.min(self.max_at);
            self.timer.reset(due);
        }
        Poll::Pending
    }
}

/// Most bytes of queued messages framed into one chunk (one write). One message of any size
/// is always taken.
const BATCH_BYTES: usize = 64 * 1024;

/// The frames of the messages waiting in a (non-empty) queue, up to [`BATCH_BYTES`], in one
/// buffer with room for its chunk framing: a client that fell behind a fan-out (10,000
/// subscribers and an event every 100 ms: the last ones get the next event before the
/// previous one was written) catches up with one write instead of one per message. The
/// byte stream is the same as one write per message.
fn take_frames(st: &mut ClientState, client_id: &str) -> Vec<u8> {
    if st.queue.len() == 1 {
        // the usual case: one event, one message
        if let Some(msg) = st.queue.pop() {
            st.queued_bytes = st.queued_bytes.saturating_sub(msg.cost());
            return msg.frame(client_id);
        }
    }
    let mut len = 0;
    let mut count = 0;
    for msg in st.queue.iter() {
        let n = msg.frame_len(client_id);
        if count > 0 && len + n > BATCH_BYTES {
            break;
        }
        len += n;
        count += 1;
    }
    let mut out = Vec::with_capacity(len + pocketbun_http::CHUNK_ROOM);
    for _ in 0..count {
        let Some(msg) = st.queue.pop() else { break };
        st.queued_bytes = st.queued_bytes.saturating_sub(msg.cost());
        msg.frame_into(&mut out, client_id);
    }
    out
}

impl Drop for SseStream {
    fn drop(&mut self) {
        self.client.state.borrow_mut().closed = true;
        if let Some(on_close) = self.on_close.take() {
            on_close.closed(&self.client);
        }
    }
}
