//! An immutable, versioned set of collections that worker threads share
//! (behind an `Arc`) and that is swapped as a whole after a schema change.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use rusqlite::Connection;

use super::model::Collection;
use crate::error::Result;

/// The next snapshot's version. Process-wide on purpose: a version is a snapshot's identity
/// (caches only ask whether two differ), and one counter keeps any two snapshots of the
/// process apart, whichever store built them; it configures nothing.
static NEXT_VERSION: AtomicU64 = AtomicU64::new(1);

/// Every loaded collection, indexed by id and by lower-cased name.
#[derive(Debug)]
pub struct Collections {
    version: u64,
    list: Vec<Arc<Collection>>,
    by_id: HashMap<String, usize, FastState>,
    by_name: HashMap<String, usize, FastState>,
}

/// foldhash for the two maps every records request looks its collection up in (~40
/// instructions a lookup where SipHash took ~160); their keys are the schema's, not a client's.
type FastState = foldhash::fast::RandomState;

impl Collections {
    /// Builds a snapshot; each snapshot gets a process-wide, strictly
    /// increasing [`version`](Self::version).
    pub fn new(list: Vec<Collection>) -> Collections {
        let list: Vec<Arc<Collection>> = list.into_iter().map(Arc::new).collect();
        let mut by_id = HashMap::with_capacity_and_hasher(list.len(), FastState::default());
        let mut by_name = HashMap::with_capacity_and_hasher(list.len(), FastState::default());
        for (i, c) in list.iter().enumerate() {
            by_id.entry(c.id.clone()).or_insert(i);
            by_name.entry(c.name.to_lowercase()).or_insert(i);
        }
        Collections {
            version: NEXT_VERSION.fetch_add(1, Ordering::Relaxed),
            list,
            by_id,
            by_name,
        }
    }

    /// Loads all collections from `_collections`.
    pub fn load(conn: &Connection) -> Result<Collections> {
        Ok(Collections::new(Collection::load_all(conn)?))
    }

    /// Schema version: larger means newer; use it to key caches.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// By id, else by case-insensitive name (PocketBase's `nameOrId` lookup).
    pub fn get(&self, id_or_name: &str) -> Option<&Arc<Collection>> {
        self.by_id(id_or_name).or_else(|| self.by_name(id_or_name))
    }

    /// By exact id.
    pub fn by_id(&self, id: &str) -> Option<&Arc<Collection>> {
        self.by_id.get(id).map(|&i| &self.list[i])
    }

    /// By case-insensitive name.
    pub fn by_name(&self, name: &str) -> Option<&Arc<Collection>> {
        // a route names its collection as stored nearly always: an ASCII name without
        // capitals is its own lower case, so no lower-cased copy (an allocation, ~0.25k
        // instructions on every records request)
        let found = if name.is_ascii() && !name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.by_name.get(name)
        } else {
            self.by_name.get(&name.to_lowercase())
        };
        found.map(|&i| &self.list[i])
    }

    /// All collections in `_collections` rowid order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Collection>> {
        self.list.iter()
    }

    /// Number of collections.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// No collections at all.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Collections with a relation field pointing at `target_id`
    /// (with those fields).
    pub fn references_to<'a>(
        &'a self,
        target_id: &'a str,
    ) -> impl Iterator<Item = (&'a Arc<Collection>, Vec<&'a super::Field>)> + 'a {
        self.list.iter().filter_map(move |c| {
            let refs: Vec<_> = c.relations_to(target_id).collect();
            (!refs.is_empty()).then_some((c, refs))
        })
    }
}

/// The current [`Collections`] snapshot, swappable from any thread.
#[derive(Debug)]
pub struct SharedCollections {
    current: RwLock<Arc<Collections>>,
}

impl SharedCollections {
    /// Starts with `initial`.
    pub fn new(initial: Collections) -> SharedCollections {
        SharedCollections {
            current: RwLock::new(Arc::new(initial)),
        }
    }

    /// The current snapshot (cheap: an `Arc` clone).
    pub fn get(&self) -> Arc<Collections> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces the snapshot unless a newer one is already installed.
    pub fn replace(&self, next: Collections) {
        let mut cur = self.current.write().unwrap_or_else(|p| p.into_inner());
        if next.version() > cur.version() {
            *cur = Arc::new(next);
        }
    }

    /// Reloads from `conn` and installs the result.
    pub fn reload(&self, conn: &Connection) -> Result<Arc<Collections>> {
        self.replace(Collections::load(conn)?);
        Ok(self.get())
    }
}
