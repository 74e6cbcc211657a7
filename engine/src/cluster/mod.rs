//! Realtime across nodes over NATS (issue 19, item 4): `serve --nats <url>` on the primary
//! and on every read replica.
//!
//! * **The primary publishes.** Every committed record create/update/delete (a
//!   [`RecordListener`], [`Publisher`]) and every collections/settings change
//!   ([`schema_changed`]) goes out on `<prefix>.events`, in commit order, tagged with the
//!   Litestream transaction (TXID) that holds it: one `POST /sync` on Litestream's control
//!   socket ([`crate::replicate::position`]) after the commit covers every event queued
//!   meanwhile.
//! * **Replicas deliver locally.** A replica holds each message until its follower copy has
//!   applied that TXID and reloaded its snapshots ([`follower::refreshed_txid`]), then hands
//!   the event to its own realtime [`Hub`]: its SSE clients are checked with its own rules,
//!   and `expand` reads its own copy, which by then holds the data the event describes. A
//!   schema message reloads the collections and settings snapshots.
//! * **Routing by client id.** Every client id a node makes starts with the node's
//!   [`TAG_LEN`]-character tag (same alphabet, same 40 characters in all). A
//!   `POST /api/realtime` or `/api/oauth2-redirect` for a client held by another node becomes
//!   a NATS request to `<prefix>.node.<tag>`, answered by the node that holds the SSE
//!   connection ([`elsewhere`], [`subscribe_there`], [`direct_there`]).
//! * **One thread.** The NATS client (async-nats, on tokio) runs on one thread of its own
//!   with a current-thread runtime; workers only queue commands into a bounded channel
//!   (`try_send`, never waiting), and a routed request's answer comes back on a oneshot the
//!   worker awaits.
//! * **NATS down.** Nodes keep serving. Realtime degrades to local-only events: the primary's
//!   own SSE clients still get every event, what cannot be published is dropped (counted,
//!   one log line per outage), replicas get nothing from the primary, and routed requests
//!   answer 404 like an unknown client. The client reconnects without end (every 0.1-2 s)
//!   and resubscribes; one log line when it is lost and one when it is back.

pub mod wire;

use crate::error::ApiError;
use crate::realtime::Hub;
use crate::records::event::{Action, RecordEvent, RecordListener};
use crate::state::Core;
use futures_channel::oneshot;
use futures_util::StreamExt;
use pocketbun_storage::collections::Collections;
use pocketbun_storage::Reader;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wire::{Broadcast, NodeReply, NodeRequest};

/// Characters of a client id that name its node: 62^8 ≈ 2·10^14 tags, so two nodes of one
/// cluster practically never share one; the other 32 stay random.
pub const TAG_LEN: usize = 8;
/// The subject prefix when `--nats-prefix` is not given.
pub const DEFAULT_PREFIX: &str = "pocketbun";
/// Commands the workers may have queued for the NATS thread; past it an event is dropped
/// (counted) rather than the writer waiting. At ~1 KB an event, at most ~64 MB queued.
const QUEUE: usize = 65_536;
/// How long a routed request waits for the node holding the client.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a replica holds an event for its copy to reach the event's TXID before it
/// delivers it anyway (a stuck follower must not hold realtime back for ever); the copy
/// normally gets there in ~1 s (Litestream's sync interval plus the 250 ms follow poll).
const CATCH_UP_LIMIT: Duration = Duration::from_secs(30);
/// How often a waiting event looks at the applied TXID (the watcher moves it every 100 ms).
const POLL: Duration = Duration::from_millis(10);
/// A message's text values are left out (read back from the replica's copy) when the whole
/// would pass NATS's `max_payload` (1 MiB by default): values above this size go.
const BIG_VALUE: usize = 64 * 1024;
/// The least time between two TXID requests for events, so a steady write load sends the
/// position thread one request per 50 ms, not one per event (that thread spaces the forced
/// syncs themselves by `replicate::position::MIN_GAP`, each one more object in the replica
/// store); events wait at most that much longer, small next to the ~1 s a replica takes to
/// get the data.
const SYNC_GAP: Duration = Duration::from_millis(50);
const MISSING_CLIENT: &str = "Missing or invalid client id.";

/// `serve --nats`.
#[derive(Debug, Clone)]
pub struct Options {
    pub url: String,
    /// Subject prefix: clusters sharing one NATS server need different ones.
    pub prefix: String,
}

impl Options {
    /// Checks the URL (as async-nats parses it) and the prefix (NATS subject tokens).
    pub fn check(&self) -> Result<(), String> {
        self.url
            .parse::<async_nats::ServerAddr>()
            .map_err(|e| format!("invalid NATS URL {:?}: {e}", self.url))?;
        let ok = !self.prefix.is_empty()
            && self.prefix.split('.').all(|t| {
                !t.is_empty()
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            });
        if ok {
            Ok(())
        } else {
            Err(format!(
                "invalid NATS subject prefix {:?}: dot-separated words of letters, digits, - and _",
                self.prefix
            ))
        }
    }
}

enum Cmd {
    Publish(Arc<RecordEvent>),
    Schema,
    Request {
        node: String,
        body: Vec<u8>,
        reply: oneshot::Sender<Result<NodeReply, String>>,
    },
}

/// This node's link to the cluster (`--nats`): what workers queue for the NATS thread. Held
/// by the API layer (`ctx::Shared::cluster`), the primary's [`Publisher`] and the NATS thread.
pub struct Link {
    tag: String,
    /// Whether this node publishes its commits (not a replica).
    publisher: bool,
    tx: tokio::sync::mpsc::Sender<Cmd>,
    /// Events not published (queue full or NATS down), since start.
    dropped: AtomicU64,
    /// One log line per outage: set when the first event of it is dropped.
    warned: AtomicBool,
}

/// A new node tag (the first [`TAG_LEN`] characters of this node's client ids).
pub fn new_tag() -> String {
    pocketbun_storage::random::random_string(TAG_LEN)
}

/// What the NATS thread works with: the process's state and its realtime hub.
pub struct Node {
    pub core: Arc<crate::state::Core>,
    pub hub: Arc<crate::realtime::Hub>,
}

/// Starts the NATS thread and answers the link to it. `tag` is the one given to the hub
/// ([`Hub::set_node_tag`]); `replica`: this node follows a primary (it subscribes to the
/// events and publishes none).
pub fn start(
    opts: Options,
    tag: String,
    shared: Arc<Node>,
    replica: bool,
) -> Result<Arc<Link>, String> {
    let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
    let link = Arc::new(Link {
        tag: tag.clone(),
        publisher: !replica,
        tx,
        dropped: AtomicU64::new(0),
        warned: AtomicBool::new(false),
    });
    let ours = link.clone();
    eprintln!(
        "cluster: NATS {} (subjects {}.*), node {tag}, {}",
        redacted(&opts.url),
        opts.prefix,
        if replica {
            "delivering the primary's events"
        } else {
            "publishing record and schema changes"
        }
    );
    std::thread::Builder::new()
        .name("pb-nats".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return eprintln!("cluster: cannot start the NATS runtime: {e}"),
            };
            rt.block_on(run(opts, tag, shared, replica, ours, rx));
        })
        .map(|_| link)
        .map_err(|e| format!("cannot start the NATS thread: {e}"))
}

/// The primary's listener of committed record changes: queues each for the NATS thread.
pub struct Publisher(pub Arc<Link>);

impl RecordListener for Publisher {
    fn committed(&self, event: &Arc<RecordEvent>) {
        queue(Some(&*self.0), Cmd::Publish(event.clone()));
    }
}

/// Collections or settings were changed (committed) on this node: every replica reloads
/// its snapshots once it has the change (`link`: the node's, without `--nats` none).
pub fn schema_changed(link: Option<&Link>) {
    queue(link, Cmd::Schema);
}

fn queue(link: Option<&Link>, cmd: Cmd) {
    let Some(link) = link.filter(|l| l.publisher) else {
        return;
    };
    if link.tx.try_send(cmd).is_err() {
        dropped(link, "the queue to NATS is full");
    }
}

fn dropped(link: &Link, why: &str) {
    let n = link.dropped.fetch_add(1, Ordering::Relaxed) + 1;
    if !link.warned.swap(true, Ordering::Relaxed) {
        eprintln!(
            "cluster: {why}: realtime events stay on this node (local only) until NATS is \
             back ({n} dropped so far)"
        );
    }
}

/// The tag of the node holding client `id`, when that is another node of the cluster (with
/// `--nats` only; `None` when this node holds it or it cannot be a cluster client id).
pub fn elsewhere(link: Option<&Link>, hub: &Hub, id: &str) -> Option<String> {
    let link = link?;
    let tag = id.get(..TAG_LEN)?;
    if tag == link.tag || !tag.bytes().all(|b| b.is_ascii_alphanumeric()) || hub.holds(id) {
        return None;
    }
    Some(tag.to_string())
}

/// `POST /api/realtime` for a client held by node `node`: sent there, its answer returned.
pub async fn subscribe_there(
    link: Option<&Link>,
    node: String,
    client_id: String,
    ip: String,
    authorization: Option<String>,
    subscriptions: Vec<String>,
) -> Result<(), ApiError> {
    let req = NodeRequest::Subscribe {
        client_id,
        ip,
        authorization,
        subscriptions,
    };
    match ask(link, node, &req).await {
        Ok(reply) => reply.into_result(),
        Err(why) => {
            eprintln!("cluster: {why}");
            Err(ApiError::not_found(Some(MISSING_CLIENT)))
        }
    }
}

/// An OAuth2 redirect's message for a client held by node `node`: whether it was handed over.
pub async fn direct_there(
    link: Option<&Link>,
    node: String,
    client_id: String,
    ip: String,
    subscription: String,
    data: String,
) -> bool {
    let req = NodeRequest::Direct {
        client_id,
        ip,
        subscription,
        data,
    };
    matches!(ask(link, node, &req).await, Ok(reply) if reply.status < 300)
}

async fn ask(link: Option<&Link>, node: String, req: &NodeRequest) -> Result<NodeReply, String> {
    let link = link.ok_or("no NATS link")?;
    let body = serde_json::to_vec(req).map_err(|e| e.to_string())?;
    let (reply, answer) = oneshot::channel();
    link.tx
        .try_send(Cmd::Request { node, body, reply })
        // no cause: a full queue hands the command back, nothing more
        .map_err(|_| "the queue to NATS is full".to_string())?;
    answer
        .await
        .unwrap_or_else(|_| Err("the NATS thread ended".into()))
}

/// Reloads the collections and settings snapshots from `reader` (a replica, after its copy
/// moved or on the primary's schema message).
pub fn reload_snapshots(core: &Core, reader: &Reader) -> Result<(), String> {
    let collections = reader
        .read(Collections::load)
        .map_err(|e| format!("cannot reload the collections: {e}"))?;
    core.schema.replace(collections);
    core.settings
        .reload(reader)
        .map_err(|e| format!("cannot reload the settings: {e}"))
}

async fn run(
    opts: Options,
    tag: String,
    shared: Arc<Node>,
    replica: bool,
    link: Arc<Link>,
    rx: tokio::sync::mpsc::Receiver<Cmd>,
) {
    let url = redacted(&opts.url);
    let connected = link.clone();
    let options = async_nats::ConnectOptions::new()
        .name(format!("pocketbun {tag}"))
        .retry_on_initial_connect()
        .request_timeout(Some(REQUEST_TIMEOUT))
        // quick retries: an outage costs realtime events, so come back soon
        .reconnect_delay_callback(|n| Duration::from_millis((100 * n as u64).clamp(100, 2000)))
        .event_callback(move |event| {
            let url = url.clone();
            let link = connected.clone();
            async move {
                match event {
                    async_nats::Event::Disconnected => eprintln!(
                        "cluster: lost NATS at {url}: realtime events stay on this node \
                         (local only) until it is back"
                    ),
                    async_nats::Event::Connected => {
                        link.warned.store(false, Ordering::Relaxed);
                        eprintln!(
                            "cluster: connected to NATS at {url}: realtime events flow between nodes"
                        )
                    }
                    async_nats::Event::SlowConsumer(_) => {}
                    other => eprintln!("cluster: NATS: {other}"),
                }
            }
        });
    let client = match options.connect(opts.url.as_str()).await {
        Ok(c) => c,
        Err(e) => return eprintln!("cluster: cannot use NATS at {}: {e}", redacted(&opts.url)),
    };
    let node_subject = format!("{}.node.{tag}", opts.prefix);
    let events_subject = format!("{}.events", opts.prefix);
    match client.subscribe(node_subject.clone()).await {
        Ok(sub) => {
            tokio::spawn(serve_requests(client.clone(), sub, shared.hub.clone()));
        }
        Err(e) => eprintln!("cluster: cannot subscribe to {node_subject}: {e}"),
    }
    if replica {
        match client.subscribe(events_subject.clone()).await {
            Ok(sub) => {
                tokio::spawn(follow(sub, shared.clone()));
            }
            Err(e) => eprintln!("cluster: cannot subscribe to {events_subject}: {e}"),
        }
    }
    let replication = shared.core.replication.clone();
    commands(client, rx, &link, &replication, opts.prefix, events_subject).await;
}

/// Publishes what the workers queued, in order: each batch's events share one TXID asked
/// for after they were all committed; requests go out as they come.
async fn commands(
    client: async_nats::Client,
    mut rx: tokio::sync::mpsc::Receiver<Cmd>,
    link: &Link,
    replication: &crate::replicate::Replication,
    prefix: String,
    events: String,
) {
    let mut last_sync: Option<Instant> = None;
    // one log line when Litestream cannot give a position
    let mut warned = false;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let publishes = batch
            .iter()
            .any(|c| matches!(c, Cmd::Publish(_) | Cmd::Schema));
        // whether NATS is up when the events are taken, not after the wait for their TXID:
        // an event committed during an outage stays local even if NATS is back meanwhile
        let up = client.connection_state() == async_nats::connection::State::Connected;
        if publishes {
            if let Some(wait) = last_sync.map(|t| SYNC_GAP.saturating_sub(t.elapsed())) {
                if !wait.is_zero() {
                    // what comes meanwhile shares the sync below
                    tokio::time::sleep(wait).await;
                    while let Ok(more) = rx.try_recv() {
                        batch.push(more);
                    }
                }
            }
            last_sync = Some(Instant::now());
        }
        let txid = if publishes {
            txid_now(replication, &mut warned).await
        } else {
            0
        };
        let limit = match client.server_info().max_payload {
            0 => 1 << 20,
            n => n,
        };
        for cmd in batch {
            let msg = match cmd {
                Cmd::Publish(ev) => {
                    let mut body = encode(&Broadcast::record(&ev, txid, None));
                    if body.len() + 512 > limit {
                        body = encode(&Broadcast::record(&ev, txid, Some(BIG_VALUE)));
                    }
                    body
                }
                Cmd::Schema => encode(&Broadcast::Schema { txid }),
                Cmd::Request { node, body, reply } => {
                    let client = client.clone();
                    let subject = format!("{prefix}.node.{node}");
                    tokio::spawn(async move {
                        let answer = match client.request(subject, body.into()).await {
                            Ok(msg) => serde_json::from_slice::<NodeReply>(&msg.payload)
                                .map_err(|e| format!("a node's answer is not ours: {e}")),
                            Err(e) => Err(format!("no answer from node {node}: {e}")),
                        };
                        let _ = reply.send(answer);
                    });
                    continue;
                }
            };
            if !up {
                dropped(link, "NATS is unreachable");
                continue;
            }
            if let Err(e) = client.publish(events.clone(), msg.into()).await {
                dropped(link, &format!("cannot publish: {e}"));
            }
        }
    }
}

/// `url` for the log: credentials (`nats://user:pass@host`) replaced by `***`.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority = rest.split('/').next().unwrap_or("");
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{}", &rest[authority.len()..]),
        None => url.to_string(),
    }
}

fn encode(msg: &Broadcast) -> Vec<u8> {
    serde_json::to_vec(msg).unwrap_or_default()
}

/// The Litestream TXID that holds every commit made so far (0 without `--replicate`: no
/// replica can follow then). If Litestream cannot answer, the next transaction after the
/// last known one: a replica then waits for the copy to move past what it last saw.
async fn txid_now(replication: &crate::replicate::Replication, warned: &mut bool) -> u64 {
    let positions = &replication.position;
    if !positions.active() {
        return 0;
    }
    match positions.sync(false).await {
        Ok(pos) => pos.txid,
        Err(e) => {
            if !std::mem::replace(warned, true) {
                eprintln!("cluster: no replication position for realtime events: {e}");
            }
            positions.last().map_or(0, |p| p.txid + 1)
        }
    }
}

/// Answers the requests other nodes route to this one (for clients it holds).
async fn serve_requests(
    client: async_nats::Client,
    mut sub: async_nats::Subscriber,
    hub: Arc<Hub>,
) {
    while let Some(msg) = sub.next().await {
        let Some(reply_to) = msg.reply.clone() else {
            continue;
        };
        let req = serde_json::from_slice::<NodeRequest>(&msg.payload);
        let (client, hub) = (client.clone(), hub.clone());
        tokio::spawn(async move {
            let missing = || NodeReply::error(ApiError::not_found(Some(MISSING_CLIENT)));
            let answer = match req {
                Ok(NodeRequest::Subscribe {
                    client_id,
                    ip,
                    authorization,
                    subscriptions,
                }) => match hub.remote_subscribe(client_id, ip, authorization, subscriptions) {
                    Some(rx) => match rx.await {
                        Ok(Ok(())) => NodeReply::ok(204),
                        Ok(Err(e)) => NodeReply::error(e),
                        Err(_) => missing(),
                    },
                    None => missing(),
                },
                Ok(NodeRequest::Direct {
                    client_id,
                    ip,
                    subscription,
                    data,
                }) => {
                    let handed = match hub.remote_direct(client_id, ip, subscription, data) {
                        Some(rx) => rx.await.unwrap_or(false),
                        None => false,
                    };
                    if handed {
                        NodeReply::ok(200)
                    } else {
                        missing()
                    }
                }
                Err(_) => NodeReply::error(ApiError::bad_request(None)),
            };
            let body = serde_json::to_vec(&answer).unwrap_or_default();
            let _ = client.publish(reply_to, body.into()).await;
        });
    }
}

/// A replica's delivery of the primary's broadcasts, one at a time in their order: each
/// waits for the follower copy to reach its TXID.
async fn follow(mut sub: async_nats::Subscriber, shared: Arc<Node>) {
    let reader = match shared.core.store.reader() {
        Ok(r) => r,
        Err(e) => return eprintln!("cluster: cannot open a reader for realtime events: {e}"),
    };
    while let Some(msg) = sub.next().await {
        let Ok(broadcast) = serde_json::from_slice::<Broadcast>(&msg.payload) else {
            eprintln!("cluster: a message on {} that is not ours", msg.subject);
            continue;
        };
        catch_up(&shared.core.replication.follower, broadcast.txid()).await;
        deliver(&shared, &reader, broadcast);
    }
}

/// Waits until the follower copy has applied `txid` and reloaded its snapshots.
async fn catch_up(follower: &crate::replicate::follower::Follower, txid: u64) {
    let start = Instant::now();
    while follower.refreshed_txid() < txid {
        if start.elapsed() > CATCH_UP_LIMIT {
            eprintln!(
                "cluster: the copy did not reach transaction {txid:016x} in {} s; \
                 delivering the event anyway",
                CATCH_UP_LIMIT.as_secs()
            );
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}

fn deliver(shared: &Node, reader: &Reader, broadcast: Broadcast) {
    let (action, collection, values, reload) = match broadcast {
        Broadcast::Schema { .. } => {
            if let Err(e) = reload_snapshots(&shared.core, reader) {
                eprintln!("cluster: {e}");
            }
            return;
        }
        Broadcast::Record {
            action,
            collection,
            values,
            reload,
            ..
        } => (action, collection, values, reload),
    };
    let Some(action) = wire::action_of(&action) else {
        return;
    };
    let find = || {
        shared
            .core
            .schema
            .get()
            .collections
            .by_id(&collection)
            .cloned()
    };
    let coll = match find() {
        Some(c) => c,
        None => {
            // a collection made just before: its snapshot may not be reloaded yet
            let _ = reload_snapshots(&shared.core, reader);
            match find() {
                Some(c) => c,
                None => return,
            }
        }
    };
    let stored = if reload.is_empty() || action == Action::Delete {
        None
    } else {
        let id = values.get("id").and_then(|v| v.as_str()).unwrap_or("");
        reader
            .read(|conn| Ok(RecordEvent::load(conn, action, coll.clone(), id)?))
            .ok()
            .flatten()
    };
    let event = wire::event_of(coll, action, &values, stored.as_ref());
    shared.hub.publish(&Arc::new(event));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_prefixes_are_checked() {
        let opts = |url: &str, prefix: &str| Options {
            url: url.into(),
            prefix: prefix.into(),
        };
        assert!(opts("nats://127.0.0.1:4222", "pocketbun").check().is_ok());
        assert!(opts("tls://u:p@nats.example.com", "app-1.eu_west")
            .check()
            .is_ok());
        assert!(opts("nats://127.0.0.1:4222", "a.*").check().is_err());
        assert!(opts("nats://127.0.0.1:4222", "a..b").check().is_err());
        assert!(opts("nats://127.0.0.1:4222", "").check().is_err());
        assert!(opts("http://[::1", "a").check().is_err());
    }

    #[test]
    fn logged_urls_hide_credentials() {
        assert_eq!(redacted("nats://u:secret@h:4222"), "nats://***@h:4222");
        assert_eq!(redacted("nats://h:4222"), "nats://h:4222");
    }
}
