//! The record write path's hook points ([`RecordHooks`]), PocketBase's where it has them:
//!
//! 1. **before the write** ([`BeforeRequest`], PocketBase's `OnRecordCreateRequest`,
//!    `OnRecordUpdateRequest`, `OnRecordDeleteRequest`): after the request's rules passed and
//!    before validation and the writer job; a hook may change the draft or refuse the request
//!    with an [`ApiError`], which is answered as it is, and then nothing is written;
//! 2. **in the write's transaction** ([`WriteHook`], PocketBase's model hooks that share the
//!    save's transaction): around the row's own statement on the writer connection, on the
//!    paths that create, update or delete a record row (records API, batch, OAuth2 sign-up,
//!    the auth flows' updates, truncation and cascade deletes; not the relation clean-up a
//!    cascade makes in the records that pointed at a deleted one); an `Err` rolls the job
//!    back. The auth clean-ups are such hooks ([`super::auth_hooks`]), always present;
//! 3. **after success** ([`RecordListener`], `OnRecordAfterCreateSuccess` and its siblings):
//!    the committed change, on the task that made it.
//!
//! The write path does not know who listens: realtime and cross-node fan-out are listeners
//! added at start-up; JS hooks would plug in at the same three points. With no hook at a
//! point, passing it costs one length check.

use super::access::Caller;
use super::write::Draft;
use super::SqlVal;
use crate::error::ApiError;
use pocketbun_storage::collections::snapshot::Collections;
use pocketbun_storage::collections::Collection;
use pocketbun_storage::rusqlite::{self, Connection};
use std::any::Any;
use std::sync::Arc;

/// What happened to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// One committed record change, as the write path publishes it.
#[derive(Debug, Clone)]
pub struct RecordEvent {
    pub action: Action,
    /// The record's collection as it was when the change committed.
    pub collection: Arc<Collection>,
    /// The record's stored values, one per collection field in field order: after the change
    /// for create/update, as it was before the delete for delete.
    pub values: Vec<SqlVal>,
    /// Rules are checked against `values` rather than the stored row: an event another node
    /// committed ([`crate::cluster`]), whose local copy may already hold later changes of the
    /// record (a create and its delete applied in one go).
    pub from_values: bool,
}

impl RecordEvent {
    /// The event for the stored row `id` of `collection` (`None`: no such row). The write path
    /// calls it on its connection after a create/update and before a delete.
    pub fn load(
        conn: &rusqlite::Connection,
        action: Action,
        collection: Arc<Collection>,
        id: &str,
    ) -> rusqlite::Result<Option<RecordEvent>> {
        Ok(
            super::row_by_id(conn, &collection, id)?.map(|values| RecordEvent {
                action,
                collection,
                values,
                from_values: false,
            }),
        )
    }

    /// The record's id.
    pub fn record_id(&self) -> &str {
        self.collection
            .fields
            .iter()
            .position(|f| f.name == "id")
            .and_then(|i| match self.values.get(i) {
                Some(SqlVal::Text(s)) => Some(&**s),
                _ => None,
            })
            .unwrap_or("")
    }
}

/// Hears of every committed record change, after the commit, on the task that made it. It
/// must not block: the realtime hub only queues the event for each worker.
pub trait RecordListener: Send + Sync {
    fn committed(&self, event: &Arc<RecordEvent>);
}

/// The record of a write request, as the before-hooks see it.
pub enum Subject<'a> {
    /// A create or update: the draft about to be validated and saved, which a hook may change.
    Draft(&'a mut Draft),
    /// A delete: the stored record's id.
    Stored(&'a str),
}

/// A record create, update or delete request about to be written (PocketBase's
/// `RecordRequestEvent`): its rules passed, its body is bound.
pub struct RecordRequest<'a> {
    pub action: Action,
    pub collection: &'a Arc<Collection>,
    /// Who asks; `caller.info.context` tells a batch item (`batch`) or an OAuth2 sign-up
    /// (`oauth2`) from a plain request (`default`).
    pub caller: &'a Caller,
    pub subject: Subject<'a>,
}

/// Runs before a record create, update or delete request is written. `Err` refuses the
/// request: the error is its answer and nothing is written.
pub trait BeforeRequest: Send + Sync {
    fn before(&self, request: &mut RecordRequest<'_>) -> Result<(), ApiError>;
}

/// A record row written inside the writer's transaction.
pub struct RowWrite<'a> {
    pub action: Action,
    pub collection: &'a Arc<Collection>,
    /// The row's id (an update's as it was before the update).
    pub id: &'a str,
    /// The collections the write sees.
    pub schema: &'a Collections,
}

/// What a [`WriteHook`] carries from before a row's statement to after it.
pub type Memo = Box<dyn Any + Send>;

/// Runs inside the writer's transaction around a record row's own statement, on the writer
/// connection. An `Err` fails the job (it is rolled back).
pub trait WriteHook: Send + Sync {
    /// Before the statement; a `Some` is handed to [`WriteHook::after`].
    fn before(&self, _conn: &Connection, _row: &RowWrite<'_>) -> rusqlite::Result<Option<Memo>> {
        Ok(None)
    }

    /// After the statement wrote the row (an update or delete that found no row runs no
    /// `after`).
    fn after(
        &self,
        conn: &Connection,
        row: &RowWrite<'_>,
        memo: Option<Memo>,
    ) -> rusqlite::Result<()>;
}

/// What the write hooks remembered before a row's statement, for [`RecordHooks::after_write`].
/// Empty (no allocation) unless a hook remembered something.
#[derive(Default)]
pub struct Memos(Vec<(usize, Memo)>);

/// The hooks of record writes: before the write, in its transaction, after its commit, each
/// point's hooks run in the order they were added (at start-up). `Default` holds PocketBase's
/// own hooks: the auth clean-ups ([`super::auth_hooks::AuthCleanup`]).
pub struct RecordHooks {
    before: Vec<Arc<dyn BeforeRequest>>,
    writes: Vec<Arc<dyn WriteHook>>,
    listeners: Vec<Arc<dyn RecordListener>>,
}

impl Default for RecordHooks {
    fn default() -> Self {
        RecordHooks {
            before: Vec::new(),
            writes: vec![Arc::new(super::auth_hooks::AuthCleanup)],
            listeners: Vec::new(),
        }
    }
}

impl RecordHooks {
    /// Adds a listener of committed changes.
    pub fn add(&mut self, listener: Arc<dyn RecordListener>) {
        self.listeners.push(listener);
    }

    /// Adds a hook that runs before a record write request is written.
    pub fn add_before(&mut self, hook: Arc<dyn BeforeRequest>) {
        self.before.push(hook);
    }

    /// Adds a hook that runs in the transaction of every record row write.
    pub fn add_write(&mut self, hook: Arc<dyn WriteHook>) {
        self.writes.push(hook);
    }

    /// Whether any before-request hook was added.
    pub fn has_before(&self) -> bool {
        !self.before.is_empty()
    }

    /// Runs the before-hooks of a write request; the first `Err` refuses it.
    pub fn before_request(&self, request: &mut RecordRequest<'_>) -> Result<(), ApiError> {
        for hook in &self.before {
            hook.before(request)?;
        }
        Ok(())
    }

    /// Runs the write hooks' `before` for `row`, on the writer connection.
    pub fn before_write(&self, conn: &Connection, row: &RowWrite<'_>) -> rusqlite::Result<Memos> {
        let mut memos = Memos::default();
        for (i, hook) in self.writes.iter().enumerate() {
            if let Some(memo) = hook.before(conn, row)? {
                memos.0.push((i, memo));
            }
        }
        Ok(memos)
    }

    /// Runs the write hooks' `after` for `row`, once its statement wrote it.
    pub fn after_write(
        &self,
        conn: &Connection,
        row: &RowWrite<'_>,
        mut memos: Memos,
    ) -> rusqlite::Result<()> {
        for (i, hook) in self.writes.iter().enumerate() {
            let memo = memos
                .0
                .iter()
                .position(|(at, _)| *at == i)
                .map(|k| memos.0.swap_remove(k).1);
            hook.after(conn, row, memo)?;
        }
        Ok(())
    }

    /// Announces one committed change to every listener.
    pub fn committed(&self, event: RecordEvent) {
        if self.listeners.is_empty() {
            return;
        }
        let event = Arc::new(event);
        for listener in &self.listeners {
            listener.committed(&event);
        }
    }
}
