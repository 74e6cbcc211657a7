//! A worker's realtime broker: the clients it accepted, their subscriptions indexed by topic,
//! and the fan-out of published record events to them.
//!
//! Fan-out groups the subscribers of an event by (subscription string, topic kind, auth
//! identity class): every member of a group would get the very same message, so the rule
//! check, expand and serialisation run once per group. The identity class is the auth record
//! only where it can matter (the rule or the options mention `@request.auth`, an `expand`
//! runs further rule checks, or the record is an auth record whose email visibility depends on
//! the caller); otherwise all non-superusers share one class and all superusers another.

use super::client::{Client, ClientAuth, Message, OnClose, SseStream};
use super::topic::Subscription;
use super::Host;
use super::{Action, Hub, Inbox, RecordEvent, Slot};
use crate::error::ApiError;
use crate::records::access::{auth_info_data_of, now_ms, resolve_flags};
use crate::records::expand::Expander;
use crate::records::json::Writer;
use crate::records::{pick, Arena, Rec, SqlRef, SqlVal, OFFLOAD_ENCODE_BYTES};
use crate::recstore::rules;
use crate::schema::SchemaPair;
use futures_channel::oneshot;
use futures_util::{FutureExt, StreamExt};
use pocketbun_query::{check_superuser_only, RequestInfo, Value as QValue};
use pocketbun_storage::collections::gojson;
use pocketbun_storage::collections::FieldKind;
use serde_json::Value as Json;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

/// `@request.context` of realtime rule checks.
pub const CONTEXT_REALTIME: &str = "realtime";
/// Length of a client id.
pub const CLIENT_ID_LENGTH: usize = 40;

const MISSING_CLIENT: &str = "Missing or invalid client id.";

/// A subscription request forwarded to the worker holding the client.
pub struct SubscribeCmd {
    pub client_id: String,
    pub ip: String,
    pub auth: Option<ClientAuth>,
    pub subs: Vec<String>,
    pub reply: oneshot::Sender<Result<(), ApiError>>,
}

/// A subscription request from another node ([`crate::cluster`]), for the worker holding
/// the client: the caller's `Authorization` header is resolved against this node's data.
pub struct RemoteSubscribeCmd {
    pub client_id: String,
    pub ip: String,
    pub authorization: Option<String>,
    pub subs: Vec<String>,
    pub reply: oneshot::Sender<Result<(), ApiError>>,
}

/// A one-off message for one client, forwarded to the worker holding it.
pub struct DirectCmd {
    pub client_id: String,
    pub ip: String,
    pub subscription: String,
    pub data: String,
    pub reply: oneshot::Sender<bool>,
}

#[derive(Default)]
struct Local {
    clients: HashMap<Rc<str>, Rc<Client>>,
    /// Topic → the clients with at least one subscription to it.
    topics: HashMap<String, HashMap<Rc<str>, Rc<Client>>>,
}

impl Local {
    fn unindex(&mut self, client: &Client) {
        for sub in &client.state.borrow().subs {
            if let Some(set) = self.topics.get_mut(&sub.topic) {
                set.remove(&client.id);
                if set.is_empty() {
                    self.topics.remove(&sub.topic);
                }
            }
        }
    }
}

/// One worker's realtime state (lives in its `AppCtx`).
pub struct Worker {
    index: usize,
    slot: Arc<Slot>,
    local: Rc<RefCell<Local>>,
    started: Cell<bool>,
    /// Rule checks + serialisations run (one per subscriber group per event).
    evaluations: Cell<u64>,
}

impl Worker {
    pub fn new(hub: &Hub) -> Worker {
        let (index, slot) = hub.attach();
        Worker {
            index,
            slot,
            local: Rc::new(RefCell::new(Local::default())),
            started: Cell::new(false),
            evaluations: Cell::new(0),
        }
    }

    /// How many subscriber groups events were evaluated for, since start.
    pub fn evaluations(&self) -> u64 {
        self.evaluations.get()
    }

    /// Clients connected to this worker.
    pub fn client_count(&self) -> usize {
        self.local.borrow().clients.len()
    }

    /// Starts this worker's inbox task (once, on its first client).
    fn ensure_started<H: Host + 'static>(&self, ctx: &Rc<H>) {
        if self.started.replace(true) {
            return;
        }
        let Some(mut rx) = self
            .slot
            .rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            return;
        };
        let ctx = ctx.clone();
        monoio::spawn(async move {
            while let Some(msg) = rx.next().await {
                match msg {
                    // a big record's messages are written on the CPU pool; awaiting them here
                    // holds back what follows in this inbox, so each client keeps the order
                    Inbox::Event(ev) if is_big(&ev) => {
                        let run = std::panic::AssertUnwindSafe(deliver_big(&ctx, &ev));
                        if run.catch_unwind().await.is_err() {
                            eprintln!("pocketbun: realtime: event delivery panicked");
                        }
                    }
                    Inbox::Event(ev) => {
                        let run = std::panic::AssertUnwindSafe(|| deliver(&ctx, &ev));
                        if std::panic::catch_unwind(run).is_err() {
                            eprintln!("pocketbun: realtime: event delivery panicked");
                        }
                    }
                    Inbox::Subscribe(cmd) => {
                        let r = ctx.worker().apply_subscribe(
                            &cmd.client_id,
                            &cmd.ip,
                            cmd.auth,
                            &cmd.subs,
                        );
                        let _ = cmd.reply.send(r);
                    }
                    Inbox::Direct(cmd) => {
                        let r = ctx.worker().apply_direct(&ctx, &cmd);
                        let _ = cmd.reply.send(r);
                    }
                    Inbox::Remote(cmd) => {
                        let cmd = *cmd;
                        let r = ctx.worker().apply_remote(&ctx, &cmd);
                        let _ = cmd.reply.send(r);
                    }
                }
            }
        });
    }

    /// Registers a new client on this worker and returns its SSE stream.
    pub fn connect<H: Host + 'static>(&self, ctx: &Rc<H>, ip: String) -> SseStream {
        self.ensure_started(ctx);
        // with `serve --nats` the id starts with the node's tag (same alphabet and length)
        let tag = ctx.hub().node_tag().unwrap_or("");
        let id = format!(
            "{tag}{}",
            pocketbun_storage::random::random_string(CLIENT_ID_LENGTH - tag.len())
        );
        let client = Rc::new(Client::new(&id, ip));
        self.local
            .borrow_mut()
            .clients
            .insert(client.id.clone(), client.clone());
        ctx.hub().register(&id, self.index);
        SseStream::new(
            client,
            &ctx.hub().config,
            Box::new(Unregister {
                hub: ctx.hub().clone(),
                index: self.index,
                local: self.local.clone(),
            }),
        )
    }

    /// Sets the subscriptions of client `client_id`, wherever it lives.
    pub async fn subscribe(
        &self,
        hub: &Hub,
        client_id: String,
        ip: String,
        auth: Option<ClientAuth>,
        subs: Vec<String>,
    ) -> Result<(), ApiError> {
        let Some(owner) = hub.owner(&client_id) else {
            return Err(ApiError::not_found(Some(MISSING_CLIENT)));
        };
        if owner == self.index {
            return self.apply_subscribe(&client_id, &ip, auth, &subs);
        }
        let slot = hub
            .slot(owner)
            .ok_or_else(|| ApiError::not_found(Some(MISSING_CLIENT)))?;
        let (reply, answer) = oneshot::channel();
        let cmd = Box::new(SubscribeCmd {
            client_id,
            ip,
            auth,
            subs,
            reply,
        });
        if slot.tx.unbounded_send(Inbox::Subscribe(cmd)).is_err() {
            return Err(ApiError::not_found(Some(MISSING_CLIENT)));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(ApiError::not_found(Some(MISSING_CLIENT))))
    }

    /// A subscription request from another node: the caller's auth is resolved from its
    /// token against this node's data, then applied as a local one.
    fn apply_remote(&self, ctx: &impl Host, cmd: &RemoteSubscribeCmd) -> Result<(), ApiError> {
        let schema = ctx.db().core.schema.get();
        let record = crate::auth::authenticate_in(
            &ctx.db().reader,
            &ctx.db().verified,
            &schema.collections,
            cmd.authorization.as_deref(),
        );
        let auth = match record {
            Some(record) => {
                let info = crate::records::access::load_auth_info(ctx.db(), &schema, &record)?;
                Some(ClientAuth { record, info })
            }
            None => None,
        };
        self.apply_subscribe(&cmd.client_id, &cmd.ip, auth, &cmd.subs)
    }

    fn apply_subscribe(
        &self,
        client_id: &str,
        ip: &str,
        auth: Option<ClientAuth>,
        subs: &[String],
    ) -> Result<(), ApiError> {
        let mut local = self.local.borrow_mut();
        let client = local
            .clients
            .get(client_id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(Some(MISSING_CLIENT)))?;
        if !client.ip.is_empty() && client.ip != ip {
            return Err(ApiError::bad_request(Some("Invalid realtime client.")));
        }
        {
            let st = client.state.borrow();
            if let Some(current) = &st.auth {
                if !ClientAuth::same(Some(&current.record), auth.as_ref().map(|a| &a.record)) {
                    return Err(ApiError::forbidden(Some(
                        "The current and the previous request authorization don't match.",
                    )));
                }
            }
        }
        local.unindex(&client);
        let mut parsed: Vec<Subscription> = Vec::with_capacity(subs.len());
        for raw in subs.iter().filter(|s| !s.is_empty()) {
            let sub = Subscription::parse(raw);
            match parsed.iter_mut().find(|s| s.name == sub.name) {
                Some(same) => *same = sub,
                None => parsed.push(sub),
            }
        }
        for sub in &parsed {
            local
                .topics
                .entry(sub.topic.clone())
                .or_default()
                .insert(client.id.clone(), client.clone());
        }
        let mut st = client.state.borrow_mut();
        st.auth = auth;
        st.subs = parsed;
        Ok(())
    }

    /// Sends one message named `subscription` with `data` to client `client_id` (wherever it
    /// lives) if that client is connected and subscribed to exactly `subscription`, and
    /// removes that subscription (a one-shot channel such as `@oauth2`). A client that
    /// connected from an IP other than `ip` keeps nothing and gets nothing: the request
    /// completing the flow must come from where the flow started. Returns whether the
    /// message was queued.
    pub async fn send_to_client(
        &self,
        ctx: &impl Host,
        client_id: String,
        ip: String,
        subscription: String,
        data: String,
    ) -> bool {
        let hub = &ctx.hub();
        let Some(owner) = hub.owner(&client_id) else {
            return false;
        };
        let (reply, answer) = oneshot::channel();
        let cmd = Box::new(DirectCmd {
            client_id,
            ip,
            subscription,
            data,
            reply,
        });
        if owner == self.index {
            return self.apply_direct(ctx, &cmd);
        }
        let Some(slot) = hub.slot(owner) else {
            return false;
        };
        if slot.tx.unbounded_send(Inbox::Direct(cmd)).is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }

    fn apply_direct(&self, ctx: &impl Host, cmd: &DirectCmd) -> bool {
        let mut local = self.local.borrow_mut();
        let Some(client) = local.clients.get(cmd.client_id.as_str()).cloned() else {
            return false;
        };
        if client.is_closed() {
            return false;
        }
        let had = {
            let mut st = client.state.borrow_mut();
            let before = st.subs.len();
            st.subs.retain(|s| s.name != cmd.subscription);
            st.subs.len() != before
        };
        if !had {
            return false;
        }
        let topic = Subscription::parse(&cmd.subscription).topic;
        let still_on_topic = client.state.borrow().subs.iter().any(|s| s.topic == topic);
        if !still_on_topic {
            if let Some(set) = local.topics.get_mut(&topic) {
                set.remove(&client.id);
                if set.is_empty() {
                    local.topics.remove(&topic);
                }
            }
        }
        drop(local);
        if !client.ip.is_empty() && client.ip != cmd.ip {
            return false;
        }
        let msg = Rc::new(Message {
            name: cmd.subscription.clone(),
            data: cmd.data.clone(),
        });
        client.send(msg, &ctx.hub().config)
    }

    /// The subscriptions of a client on this worker (tests, diagnostics).
    pub fn subscriptions(&self, client_id: &str) -> Option<Vec<String>> {
        let local = self.local.borrow();
        let client = local.clients.get(client_id)?;
        let names = client
            .state
            .borrow()
            .subs
            .iter()
            .map(|s| s.name.clone())
            .collect();
        Some(names)
    }
}

struct Unregister {
    hub: Arc<Hub>,
    index: usize,
    local: Rc<RefCell<Local>>,
}

impl OnClose for Unregister {
    fn closed(&self, client: &Client) {
        if let Ok(mut local) = self.local.try_borrow_mut() {
            local.unindex(client);
            local.clients.remove(&client.id);
        }
        self.hub.unregister(&client.id, self.index);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum AuthClass {
    /// Non-superusers whose identity cannot change the message.
    Anyone,
    Guest,
    Superuser,
    Record(String, String),
}

struct Group {
    /// The collection's view rule (one-record topics) or list rule.
    rule: Option<String>,
    sub: Subscription,
    auth: Option<ClientAuth>,
    members: Vec<Rc<Client>>,
}

/// Delivers one published event to this worker's subscribers: each group's message is made
/// when its first member is met, and each member is sent its message as it is met. Grouping
/// all 10,000 subscribers first and sending afterwards touched every client twice, the
/// second time after the first pass had pushed it out of the cache.
pub fn deliver(ctx: &impl Host, ev: &RecordEvent) {
    let mut schema = None;
    let config = &ctx.hub().config;
    // by group index: its message, or `None` when its members may not see the record
    let mut messages: Vec<Option<Rc<Message>>> = Vec::new();
    visit_subscribers(ctx, ev, |groups, gi, client| {
        while messages.len() < groups.len() {
            let done = &ctx.worker().evaluations;
            done.set(done.get() + 1);
            let schema = schema.get_or_insert_with(|| ctx.db().core.schema.get());
            let group = &groups[messages.len()];
            messages.push(group_message(ctx, schema, ev, group).map(Rc::new));
        }
        if let Some(msg) = &messages[gi] {
            client.send(msg.clone(), config);
        }
    });
    after_delivery(ctx, ev);
}

/// Whether the event's record holds more than [`OFFLOAD_ENCODE_BYTES`] (text length; 8 for
/// anything else): its messages are then written on the CPU pool ([`deliver_big`]).
pub fn is_big(ev: &RecordEvent) -> bool {
    let mut bytes = 0;
    ev.values.iter().any(|v| {
        bytes += match v {
            SqlVal::Text(t) => t.len(),
            _ => 8,
        };
        bytes > OFFLOAD_ENCODE_BYTES
    })
}

/// [`deliver`] for a big record: rule checks and expand run here, as for any event; the
/// messages (the record's JSON, `fields` picked) are written on the CPU pool, all groups in
/// one task, and queued in group order when it is done. All on the worker, a 48 MiB record's
/// message held it ~1 s of CPU per group (debug build).
pub async fn deliver_big(ctx: &impl Host, ev: &Arc<RecordEvent>) {
    let groups = groups_of(ctx, ev);
    if !groups.is_empty() {
        let schema = ctx.db().core.schema.get();
        let mut drafts = Vec::new();
        let mut members = Vec::new();
        for group in groups {
            let done = &ctx.worker().evaluations;
            done.set(done.get() + 1);
            if let Some(draft) = group_draft(ctx, &schema, ev, &group, light_values(ev)) {
                drafts.push(draft);
                members.push(group.members);
            }
        }
        if !drafts.is_empty() {
            let full = ev.clone();
            let messages = ctx
                .db()
                .core
                .cpu
                .run(move || {
                    // one set of key orders for the batch (it runs on the CPU pool)
                    let mut writer = Writer::new();
                    (drafts.into_iter())
                        .map(|mut d| {
                            fill_values(&mut d.arena.recs[0].values, &full);
                            render(&mut writer, d)
                        })
                        .collect::<Vec<Message>>()
                })
                .await;
            // a pool that went away (shutting down) delivers nothing
            let config = &ctx.hub().config;
            for (msg, members) in messages.unwrap_or_default().into_iter().zip(members) {
                let msg = Rc::new(msg);
                for client in &members {
                    client.send(msg.clone(), config);
                }
            }
        }
    }
    after_delivery(ctx, ev);
}

/// Whether field `i` of the event's record is a big value [`light_values`] leaves out: text
/// over [`OFFLOAD_ENCODE_BYTES`] of a field other than a relation (expand reads those).
fn left_out(ev: &RecordEvent, i: usize) -> bool {
    matches!(&ev.values[i], SqlVal::Text(t) if t.len() > OFFLOAD_ENCODE_BYTES)
        && !ev
            .collection
            .fields
            .get(i)
            .is_some_and(|f| matches!(f.kind, FieldKind::Relation { .. }))
}

/// The event's values without its big ones (NULL in their place), for the checks that run on
/// the worker: they read the id and relations only. [`fill_values`] puts them back.
fn light_values(ev: &RecordEvent) -> Vec<SqlVal> {
    (0..ev.values.len())
        .map(|i| {
            if left_out(ev, i) {
                SqlVal::Null
            } else {
                ev.values[i].clone()
            }
        })
        .collect()
}

/// Puts back the values [`light_values`] left out (on the CPU pool: a copy of up to 48 MiB).
fn fill_values(values: &mut [SqlVal], ev: &RecordEvent) {
    for (i, v) in values.iter_mut().enumerate() {
        if left_out(ev, i) {
            *v = ev.values[i].clone();
        }
    }
}

/// What follows the messages of an event: a deleted auth record's clients become guests.
fn after_delivery(ctx: &impl Host, ev: &RecordEvent) {
    let coll = &ev.collection;
    if coll.is_auth() && ev.action == Action::Delete {
        unset_auth(ctx, &coll.id, ev.record_id());
    }
}

/// The subscribers of an event on this worker, grouped by the message they would get (and,
/// for an auth record's update, the clients bound to it refreshed first).
fn groups_of(ctx: &impl Host, ev: &RecordEvent) -> Vec<Group> {
    visit_subscribers(ctx, ev, |groups, gi, client| {
        groups[gi].members.push(client.clone())
    })
}

/// Groups the subscribers of an event on this worker by the message they would get (for an
/// auth record's update, the clients bound to it refreshed first): `member(groups, gi,
/// client)` for each subscription of a client to the event, in the order met, `gi` its
/// group's index in `groups` (a group is added when its first member is met). Returns the
/// groups; their `members` are what `member` put there.
fn visit_subscribers(
    ctx: &impl Host,
    ev: &RecordEvent,
    mut member: impl FnMut(&mut Vec<Group>, usize, &Rc<Client>),
) -> Vec<Group> {
    let coll = ev.collection.clone();
    if coll.is_auth() {
        match ev.action {
            Action::Update => refresh_auth(ctx, ev),
            Action::Delete => {}
            Action::Create => {}
        }
    }
    let id = ev.record_id().to_string();
    let mut topics: Vec<(String, bool)> = vec![
        (format!("{}/{}", coll.name, id), true),
        (format!("{}/{}", coll.id, id), true),
        (format!("{}/*", coll.name), false),
        (format!("{}/*", coll.id), false),
        (coll.name.clone(), false),
        (coll.id.clone(), false),
    ];
    let mut seen = std::collections::HashSet::new();
    topics.retain(|(t, _)| seen.insert(t.clone()));

    // group the subscribers (the broker's state is not borrowed past this block); neighbours
    // usually share a group, so the last one is tried before hashing an owned key
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<(bool, String, AuthClass), usize> = HashMap::new();
    let mut last: Option<(bool, String, AuthClass, usize)> = None;
    // one client's groups (its state is borrowed while they are found, not while it is sent to)
    let mut hits: Vec<usize> = Vec::new();
    {
        let local = ctx.worker().local.borrow();
        for (topic, one) in &topics {
            let Some(clients) = local.topics.get(topic) else {
                continue;
            };
            let rule = if *one {
                coll.view_rule.clone()
            } else {
                coll.list_rule.clone()
            };
            // once per topic, not per subscriber (a substring search per client per event)
            let rule_uses_auth = rule_uses_auth(rule.as_deref());
            let auth_collection = coll.is_auth();
            for client in clients.values() {
                let st = client.state.borrow();
                hits.clear();
                for sub in st.subs.iter().filter(|s| &s.topic == topic) {
                    let class = auth_class(st.auth.as_ref(), rule_uses_auth, sub, auth_collection);
                    let gi = match &last {
                        Some((o, name, c, gi)) if o == one && *name == sub.name && *c == class => {
                            *gi
                        }
                        _ => {
                            let key = (*one, sub.name.clone(), class);
                            let gi = *index.entry(key.clone()).or_insert_with(|| {
                                groups.push(Group {
                                    rule: rule.clone(),
                                    sub: sub.clone(),
                                    auth: st.auth.clone(),
                                    members: Vec::new(),
                                });
                                groups.len() - 1
                            });
                            last = Some((key.0, key.1, key.2, gi));
                            gi
                        }
                    };
                    hits.push(gi);
                }
                drop(st);
                for &gi in &hits {
                    member(&mut groups, gi, client);
                }
            }
        }
    }
    groups
}

/// Whether a collection rule reads the caller's auth record.
fn rule_uses_auth(rule: Option<&str>) -> bool {
    rule.is_some_and(|r| r.contains("@request.auth"))
}

fn auth_class(
    auth: Option<&ClientAuth>,
    rule_uses_auth: bool,
    sub: &Subscription,
    auth_collection: bool,
) -> AuthClass {
    let record = || match auth {
        Some(a) => AuthClass::Record(a.record.collection_id.clone(), a.record.id.clone()),
        None => AuthClass::Guest,
    };
    let uses_auth = sub.uses_auth;
    if auth.is_some_and(|a| a.record.is_superuser()) {
        return if uses_auth {
            record()
        } else {
            AuthClass::Superuser
        };
    }
    let identity_matters = uses_auth || auth_collection || sub.expands || rule_uses_auth;
    if identity_matters {
        record()
    } else {
        AuthClass::Anyone
    }
}

fn request_info(sub: &Subscription, auth: Option<&ClientAuth>) -> RequestInfo {
    let mut info = RequestInfo {
        context: CONTEXT_REALTIME.into(),
        method: "GET".into(),
        superuser: auth.is_some_and(|a| a.record.is_superuser()),
        auth: auth.map(|a| a.info.clone()),
        ..Default::default()
    };
    for (k, v) in &sub.options.query {
        info.query.insert(k.clone(), Json::String(v.clone()));
    }
    for (k, v) in &sub.options.headers {
        info.headers.insert(k.clone(), Json::String(v.clone()));
    }
    info
}

/// The message of one group, or `None` when its members may not see the record.
fn group_message(
    ctx: &impl Host,
    schema: &SchemaPair,
    ev: &RecordEvent,
    group: &Group,
) -> Option<Message> {
    let draft = group_draft(ctx, schema, ev, group, ev.values.clone())?;
    Some(render(&mut Writer::with(&ctx.db().plans), draft))
}

/// A group's message before it is written: the record (rec 0, with what it expands), the
/// subscription's `fields` option, its name and the action.
struct Draft {
    arena: Arena,
    fields: String,
    name: String,
    action: Action,
}

/// Writes a group's message: the record's JSON, `fields` picked, in `{"record","action"}`.
fn render(writer: &mut Writer, draft: Draft) -> Message {
    let mut record = String::with_capacity(512);
    writer.write(&mut record, &draft.arena, 0);
    if !draft.fields.is_empty() {
        if let Some(picked) =
            pick::parse(&draft.fields).and_then(|p| pick::apply(&record, &p, false))
        {
            record = picked;
        }
    }
    let mut data = String::with_capacity(record.len() + 32);
    data.push_str("{\"record\":");
    data.push_str(&record);
    data.push_str(",\"action\":");
    gojson::write_str(&mut data, draft.action.as_str());
    data.push('}');
    Message {
        name: draft.name,
        data,
    }
}

/// The checks of one group (rule, `filter` option, visibility flags, expand) on the record
/// with `values`: its [`Draft`], or `None` when its members may not see the record.
fn group_draft(
    ctx: &impl Host,
    schema: &SchemaPair,
    ev: &RecordEvent,
    group: &Group,
    values: Vec<SqlVal>,
) -> Option<Draft> {
    // the identity does not matter for `Anyone`: check as a guest
    let auth = group.auth.as_ref().filter(|a| {
        a.record.is_superuser()
            || auth_class(
                Some(a),
                rule_uses_auth(group.rule.as_deref()),
                &group.sub,
                ev.collection.is_auth(),
            ) != AuthClass::Anyone
    });
    let info = request_info(&group.sub, auth);
    if !can_access(ctx, schema, ev, group.rule.as_deref(), &info, &group.sub) {
        return None;
    }
    let mut arena = Arena::default();
    arena.recs.push(Rec {
        coll: ev.collection.clone(),
        values,
        show_email: false,
        unhide: false,
        expand: None,
    });
    if resolve_flags(ctx.db(), schema, &info, &mut arena, &[0]).is_err() {
        return None;
    }
    let expand = group.sub.options.query("expand");
    if !expand.is_empty() {
        // failed paths are skipped, as by PocketBase
        let _ = Expander::new(ctx.db(), schema, &info).expand_all(&mut arena, &[0], expand);
    }
    Some(Draft {
        arena,
        fields: group.sub.options.query("fields").to_string(),
        name: group.sub.name.clone(),
        action: ev.action,
    })
}

/// PocketBase's realtime access check: the collection rule, then the subscription's own
/// `filter` option.
fn can_access(
    ctx: &impl Host,
    schema: &SchemaPair,
    ev: &RecordEvent,
    rule: Option<&str>,
    info: &RequestInfo,
    sub: &Subscription,
) -> bool {
    if !info.superuser {
        match rule {
            None => return false,
            Some("") => {}
            Some(rule) => {
                if !matches(ctx, schema, ev, rule, info, true) {
                    return false;
                }
            }
        }
    }
    let filter = sub.options.query("filter");
    if filter.is_empty() {
        return true;
    }
    if !info.superuser && check_superuser_only(filter, "").is_err() {
        return false;
    }
    matches(ctx, schema, ev, filter, info, false)
}

/// Whether the event's record satisfies `text` (a rule or filter) for `info`. Created and
/// updated records are checked in the database (the change is committed); a deleted record
/// (or another node's event, see [`RecordEvent::from_values`]) is checked against its
/// values, which stand in for its table in the statement.
fn matches(
    ctx: &impl Host,
    schema: &SchemaPair,
    ev: &RecordEvent,
    text: &str,
    info: &RequestInfo,
    allow_hidden: bool,
) -> bool {
    let cond = match ctx.db().queries.borrow_mut().condition(
        &schema.query,
        &ev.collection.name,
        text,
        info,
        allow_hidden,
    ) {
        Ok(c) => c,
        Err(_) => return false,
    };
    let mut params = cond.bind(info, now_ms());
    let n = params.len();
    let wh = if cond.where_sql.is_empty() {
        "1"
    } else {
        cond.where_sql.as_str()
    };
    let mut sql = String::with_capacity(128 + cond.from_sql.len() + wh.len());
    params.push(QValue::Text(ev.record_id().to_string()));
    // a deleted record's values are bound after the id (borrowed, no copy)
    let mut values: &[SqlVal] = &[];
    if ev.action == Action::Delete || ev.from_values {
        let columns = ev.collection.fields.iter().map(|f| f.name.as_str());
        rules::push_values_as_table(&mut sql, &cond.table, columns, n + 2, ev.values.len());
        values = &ev.values;
    }
    rules::push_check_by_id(&mut sql, &cond.table, &cond, wh, n + 1);
    let binds = params.iter().map(SqlRef::from);
    let binds = binds.chain(values.iter().map(SqlVal::borrow));
    ctx.db()
        .reader
        .read(|conn| Ok(rules::passes(conn, &sql, binds)?))
        .unwrap_or(false)
}

/// An auth record changed: the clients bound to it see its new data in their rules.
fn refresh_auth(ctx: &impl Host, ev: &RecordEvent) {
    let id = ev.record_id();
    let local = ctx.worker().local.borrow();
    let bound_here: Vec<Rc<Client>> =
        local
            .clients
            .values()
            .filter(|c| {
                c.state.borrow().auth.as_ref().is_some_and(|a| {
                    a.record.id == id && a.record.collection_id == ev.collection.id
                })
            })
            .cloned()
            .collect();
    drop(local);
    if bound_here.is_empty() {
        return;
    }
    // what rules read of it (not the whole record: it may be 48 MiB)
    let data = auth_info_data_of(&ev.collection, &ev.values);
    for client in bound_here {
        if let Some(auth) = client.state.borrow_mut().auth.as_mut() {
            auth.info.data = data.clone();
        }
    }
}

/// An auth record was deleted: its clients stay connected as guests.
fn unset_auth(ctx: &impl Host, collection_id: &str, id: &str) {
    let local = ctx.worker().local.borrow();
    for client in local.clients.values() {
        let mut st = client.state.borrow_mut();
        if st
            .auth
            .as_ref()
            .is_some_and(|a| a.record.id == id && a.record.collection_id == collection_id)
        {
            st.auth = None;
        }
    }
}
