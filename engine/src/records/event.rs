//! A committed record change, and who hears of it: PocketBase's "after success" hook point
//! of record creates, updates and deletes (`OnRecordAfterCreateSuccess` and its siblings).
//!
//! The write path does not know its listeners: realtime is one today, registered at start-up;
//! JS hooks and cross-node fan-out plug in the same way.

use super::SqlVal;
use pocketbun_storage::collections::Collection;
use pocketbun_storage::rusqlite;
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

/// The listeners of committed record changes, in the order they were added (at start-up).
#[derive(Default)]
pub struct RecordHooks {
    listeners: Vec<Arc<dyn RecordListener>>,
}

impl RecordHooks {
    pub fn add(&mut self, listener: Arc<dyn RecordListener>) {
        self.listeners.push(listener);
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
