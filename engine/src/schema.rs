//! The collections as the application sees them: the model snapshot shared by all workers,
//! and the query compiler's view of it, rebuilt only when the schema changes.

use crate::snapshot::Snapshot;
use pocketbun_query as query;
use pocketbun_storage::collections::model::{Collection, CollectionType};
use pocketbun_storage::collections::snapshot::Collections;
use std::sync::Arc;

/// The query compiler's schema for one collections snapshot.
pub fn query_schema(collections: &Collections) -> query::Schema {
    let list = collections.iter().map(|c| query_collection(c)).collect();
    query::Schema::new(collections.version(), list)
}

fn query_collection(c: &Collection) -> query::Collection {
    query::Collection {
        id: c.id.clone(),
        name: c.name.clone(),
        kind: match c.kind {
            CollectionType::Base => query::CollectionType::Base,
            CollectionType::Auth => query::CollectionType::Auth,
            CollectionType::View => query::CollectionType::View,
        },
        fields: c
            .fields
            .iter()
            .filter_map(|f| {
                let kind = query::FieldType::from_pb(f.type_name())?;
                let mut field = query::Field::new(&f.name, kind);
                field.multiple = f.is_multiple();
                field.collection_id = f.relation_target().map(str::to_string);
                field.hidden = f.hidden;
                Some(field)
            })
            .collect(),
        list_rule: c.list_rule.clone(),
        view_rule: c.view_rule.clone(),
        indexes: c.indexes.clone(),
    }
}

/// Both views of the current schema, swapped together when a collection changes.
pub struct SchemaState {
    current: Snapshot<SchemaPair>,
}

pub struct SchemaPair {
    pub collections: Arc<Collections>,
    pub query: Arc<query::Schema>,
    /// Some rule mentions `@request.headers` / `@request.query`: only then does every
    /// request pay for building those maps (see `Caller::new`).
    pub rules_read_headers: bool,
    pub rules_read_query: bool,
    /// Some rule reads a field of the caller's auth record beyond what its token names
    /// ([`reads_auth_fields`]): only then is that row loaded.
    pub rules_read_auth_fields: bool,
}

impl SchemaState {
    pub fn new(collections: Collections) -> Self {
        let version = collections.version();
        SchemaState {
            current: Snapshot::new(Self::pair(collections), version),
        }
    }

    fn pair(collections: Collections) -> SchemaPair {
        let query = Arc::new(query_schema(&collections));
        let any_rule = |test: &dyn Fn(&str) -> bool| {
            collections.iter().any(|c| {
                [
                    &c.list_rule,
                    &c.view_rule,
                    &c.create_rule,
                    &c.update_rule,
                    &c.delete_rule,
                    &c.auth.auth_rule,
                    &c.auth.manage_rule,
                ]
                .into_iter()
                .any(|r| r.as_deref().is_some_and(test))
            })
        };
        SchemaPair {
            rules_read_headers: any_rule(&|r| r.contains("@request.headers")),
            rules_read_query: any_rule(&|r| r.contains("@request.query")),
            rules_read_auth_fields: any_rule(&reads_auth_fields),
            collections: Arc::new(collections),
            query,
        }
    }

    /// The current snapshot (an `Arc` clone: cheap, lock-free, and stable for the whole
    /// request).
    pub fn get(&self) -> Arc<SchemaPair> {
        self.current.get()
    }

    /// Installs a newer snapshot (after a committed schema change). Older ones are ignored,
    /// so concurrent reloads cannot go back in time.
    pub fn replace(&self, next: Collections) {
        let version = next.version();
        self.current.install(Arc::new(Self::pair(next)), version);
    }
}

/// Whether the rule or filter `text` reads a field of the caller's auth record other than
/// `id`, `collectionId` and `collectionName` (which its token already names, and which
/// `@request.auth.*` answers without the row). Anything longer, or another name, counts.
pub fn reads_auth_fields(text: &str) -> bool {
    const PREFIX: &str = "@request.auth.";
    text.match_indices(PREFIX).any(|(i, _)| {
        let rest = &text[i + PREFIX.len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':')))
            .unwrap_or(rest.len());
        let name = rest[..end].split(':').next().unwrap_or("");
        !matches!(name, "id" | "collectionId" | "collectionName")
    })
}

#[cfg(test)]
mod tests {
    use super::reads_auth_fields;

    #[test]
    fn auth_fields_beyond_the_token() {
        for text in [
            "",
            "@request.auth.id != \"\"",
            "owner = @request.auth.id && @request.auth.collectionName = 'users'",
            "@request.auth.id:isset = true || @request.auth.collectionId ?= x",
        ] {
            assert!(!reads_auth_fields(text), "{text}");
        }
        for text in [
            "@request.auth.verified = true",
            "@request.auth.id != '' && email = @request.auth.email",
            "@request.auth.id.name = 'x'",
            "@request.auth.idx = 1",
            "@request.auth.emailVisibility:isset = true",
        ] {
            assert!(reads_auth_fields(text), "{text}");
        }
    }
}
