//! A worker's handle on the records: the process-wide [`Core`] (store, schema, settings, CPU
//! pool), who hears of committed changes, and the worker's own read connection and compiled
//! queries. Everything in [`crate::records`] takes a `&Db`; the API layer's per-worker
//! context holds one and dereferences to it, so the domain never names the API layer.

use super::event::RecordHooks;
use crate::state::Core;
use pocketbun_query::QueryCache;
use pocketbun_storage::{Reader, StorageError};
use std::cell::RefCell;
use std::sync::Arc;

/// Compiled filters kept per worker; enough for every rule and the common client filters.
const QUERY_CACHE_ENTRIES: usize = 4096;

/// One worker's access to the records (not `Send`: it stays on its worker).
pub struct Db {
    pub core: Arc<Core>,
    /// Who hears of committed record changes (the realtime hub, added at start-up).
    pub hooks: Arc<RecordHooks>,
    /// This worker's own read connection to `data.db`: reads never leave the worker.
    pub reader: Reader,
    /// This worker's compiled filters and sorts (no locks: one per worker).
    pub queries: RefCell<QueryCache>,
    /// Auth tokens this worker has verified (the HMAC is checked once per token and key).
    pub verified: crate::auth::token::Verified,
    /// Output key orders of record JSON, per collection value ([`super::json::Writer`]).
    pub plans: super::json::Plans,
    /// Field patterns compiled so far ([`super::validate::fields`]).
    pub patterns: super::validate::Patterns,
    /// This worker's plain view statements, one per collection name.
    pub view_sql: RefCell<crate::recstore::rows::ViewSql>,
    /// This worker's choice of page and count statements per list statement (an index
    /// search by a bool, or a scan: [`crate::recstore::rules::list_sql`]).
    pub page_plans: RefCell<crate::recstore::rules::PagePlans>,
}

impl Db {
    /// A worker's handle: its own read connection and query cache.
    pub fn new(core: Arc<Core>, hooks: Arc<RecordHooks>) -> Result<Self, StorageError> {
        Ok(Db {
            reader: core.store.reader()?,
            core,
            hooks,
            queries: RefCell::new(QueryCache::new(QUERY_CACHE_ENTRIES)),
            verified: Default::default(),
            plans: Default::default(),
            patterns: Default::default(),
            view_sql: RefCell::default(),
            page_plans: RefCell::default(),
        })
    }
}
