//! Realtime: PocketBase's server-sent events API with rule-checked fan-out across cores.
//!
//! * A client (one `GET /api/realtime` stream) lives on the worker that accepted it: its
//!   subscriptions, auth and outgoing queue are that worker's plain data, never locked.
//! * The [`Hub`] (shared by all workers) knows which worker holds which client id, and has one
//!   inbox per worker. `POST /api/realtime` landing on another worker is forwarded there.
//! * The write path announces each committed record change to its listeners
//!   ([`crate::records::event::RecordHooks`]); the [`Hub`] is one, and [`Hub::publish`]s it. The event is
//!   queued (never awaited: the writer is not slowed) into the inbox of every worker that has
//!   clients; each worker checks the rules for its own clients only, grouping subscribers that
//!   share topic, options and auth identity class so that one rule check and one serialisation
//!   serve the whole group ([`broker`]).
//! * Each client has a bounded queue: a client that cannot keep up is disconnected (the SDK
//!   reconnects), it never holds up anyone else.

pub mod broker;
pub mod client;
pub mod topic;

#[cfg(test)]
mod tests;

use crate::records::event::{RecordEvent, RecordListener};
use futures_channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use crate::records::event::Action;
pub use broker::Worker;

/// PocketBase's realtime limits and timeouts.
#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    /// A client that was sent nothing for this long is disconnected (PocketBase: 5 minutes).
    pub idle_timeout: Duration,
    /// Every client is disconnected after this long (PocketBase: 30 minutes).
    pub max_lifetime: Duration,
    /// Messages a client may have waiting before it counts as too slow and is disconnected.
    pub max_queued_messages: usize,
    /// Bytes a client may have waiting before it counts as too slow.
    pub max_queued_bytes: usize,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        RealtimeConfig {
            idle_timeout: Duration::from_secs(5 * 60),
            max_lifetime: Duration::from_secs(30 * 60),
            max_queued_messages: 1024,
            max_queued_bytes: 8 << 20,
        }
    }
}

/// A message into a worker's inbox.
pub(crate) enum Inbox {
    Event(Arc<RecordEvent>),
    Subscribe(Box<broker::SubscribeCmd>),
    Direct(Box<broker::DirectCmd>),
    /// A subscription request another node received for a client of this one
    /// ([`crate::cluster`]): its auth is resolved here, from the caller's token.
    Remote(Box<broker::RemoteSubscribeCmd>),
}

struct Slot {
    tx: UnboundedSender<Inbox>,
    /// Taken by the worker when its first client connects (the worker's inbox task).
    rx: Mutex<Option<UnboundedReceiver<Inbox>>>,
    /// Clients on this worker; events go only to workers that have some.
    clients: AtomicUsize,
}

/// What realtime needs of the worker it runs on: the worker's records handle, the process's
/// hub and the worker's own realtime state. The API layer's per-worker context implements
/// it; a test can implement it over its own parts.
pub trait Host {
    fn db(&self) -> &crate::records::db::Db;
    fn hub(&self) -> &Arc<Hub>;
    fn worker(&self) -> &Worker;
}

impl<T: Host + ?Sized> Host for std::rc::Rc<T> {
    fn db(&self) -> &crate::records::db::Db {
        (**self).db()
    }

    fn hub(&self) -> &Arc<Hub> {
        (**self).hub()
    }

    fn worker(&self) -> &Worker {
        (**self).worker()
    }
}

/// The realtime state shared by all workers: their inboxes and the client directory.
pub struct Hub {
    pub config: RealtimeConfig,
    workers: Mutex<Vec<Arc<Slot>>>,
    /// Client id → the worker holding it.
    clients: Mutex<HashMap<String, usize>>,
    /// With `serve --nats`: this node's tag, the first characters of every client id it
    /// makes, so another node knows where to route the client's requests.
    node_tag: std::sync::OnceLock<String>,
}

/// Realtime hears of every committed record change.
impl RecordListener for Hub {
    fn committed(&self, event: &Arc<RecordEvent>) {
        self.publish(event);
    }
}

impl Hub {
    pub fn new(config: RealtimeConfig) -> Self {
        Hub {
            config,
            workers: Mutex::new(Vec::new()),
            clients: Mutex::new(HashMap::new()),
            node_tag: std::sync::OnceLock::new(),
        }
    }

    /// Makes every client id this node gives out start with `tag` (set once, before the
    /// server starts; see [`crate::cluster`]).
    pub fn set_node_tag(&self, tag: String) {
        let _ = self.node_tag.set(tag);
    }

    /// This node's tag, with `serve --nats`.
    pub fn node_tag(&self) -> Option<&str> {
        self.node_tag.get().map(String::as_str)
    }

    /// Whether client `id` is connected to this node.
    pub fn holds(&self, id: &str) -> bool {
        self.owner(id).is_some()
    }

    /// Hands a subscription request received from another node to the worker holding the
    /// client; `None` when no worker here holds it.
    pub fn remote_subscribe(
        &self,
        client_id: String,
        ip: String,
        authorization: Option<String>,
        subs: Vec<String>,
    ) -> Option<futures_channel::oneshot::Receiver<Result<(), crate::error::ApiError>>> {
        self.ask_owner(client_id, |client_id, reply| {
            Inbox::Remote(Box::new(broker::RemoteSubscribeCmd {
                client_id,
                ip,
                authorization,
                subs,
                reply,
            }))
        })
    }

    /// Hands a one-off message (the OAuth2 redirect) received from another node to the
    /// worker holding the client; `None` when no worker here holds it.
    pub fn remote_direct(
        &self,
        client_id: String,
        ip: String,
        subscription: String,
        data: String,
    ) -> Option<futures_channel::oneshot::Receiver<bool>> {
        self.ask_owner(client_id, |client_id, reply| {
            Inbox::Direct(Box::new(broker::DirectCmd {
                client_id,
                ip,
                subscription,
                data,
                reply,
            }))
        })
    }

    /// Sends `message(client_id, reply)` to the worker holding `client_id` and gives the
    /// receiver of its reply; `None` when no worker here holds the client.
    fn ask_owner<T>(
        &self,
        client_id: String,
        message: impl FnOnce(String, futures_channel::oneshot::Sender<T>) -> Inbox,
    ) -> Option<futures_channel::oneshot::Receiver<T>> {
        let slot = self.slot(self.owner(&client_id)?)?;
        let (reply, answer) = futures_channel::oneshot::channel();
        slot.tx.unbounded_send(message(client_id, reply)).ok()?;
        Some(answer)
    }

    /// Publishes a committed record change to every worker that has realtime clients. Never
    /// blocks: the write path calls it after each commit.
    pub fn publish(&self, event: &Arc<RecordEvent>) {
        let workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        for slot in workers.iter() {
            if slot.clients.load(Ordering::Acquire) > 0 {
                let _ = slot.tx.unbounded_send(Inbox::Event(event.clone()));
            }
        }
    }

    /// Connected clients, on all workers.
    pub fn client_count(&self) -> usize {
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// A new worker's inbox (called once per worker, when its service is built).
    fn attach(&self) -> (usize, Arc<Slot>) {
        let (tx, rx) = unbounded();
        let slot = Arc::new(Slot {
            tx,
            rx: Mutex::new(Some(rx)),
            clients: AtomicUsize::new(0),
        });
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        workers.push(slot.clone());
        (workers.len() - 1, slot)
    }

    fn register(&self, id: &str, worker: usize) {
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), worker);
        if let Some(slot) = self.slot(worker) {
            slot.clients.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn unregister(&self, id: &str, worker: usize) {
        let removed = self
            .clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
            .is_some();
        if removed {
            if let Some(slot) = self.slot(worker) {
                slot.clients.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    fn owner(&self, id: &str) -> Option<usize> {
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .copied()
    }

    fn slot(&self, worker: usize) -> Option<Arc<Slot>> {
        self.workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(worker)
            .cloned()
    }
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new(RealtimeConfig::default())
    }
}
