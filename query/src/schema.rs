//! The schema the compiler resolves field paths against. The engine builds a [`Schema`]
//! from its collection model (and bumps `version` whenever any collection changes).

use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    Text,
    Number,
    Bool,
    Email,
    Url,
    Editor,
    Date,
    Autodate,
    Select,
    Json,
    File,
    Relation,
    Password,
    GeoPoint,
}

impl FieldType {
    /// From PocketBase's field `type` string.
    pub fn from_pb(s: &str) -> Option<FieldType> {
        Some(match s {
            "text" => FieldType::Text,
            "number" => FieldType::Number,
            "bool" => FieldType::Bool,
            "email" => FieldType::Email,
            "url" => FieldType::Url,
            "editor" => FieldType::Editor,
            "date" => FieldType::Date,
            "autodate" => FieldType::Autodate,
            "select" => FieldType::Select,
            "json" => FieldType::Json,
            "file" => FieldType::File,
            "relation" => FieldType::Relation,
            "password" => FieldType::Password,
            "geoPoint" => FieldType::GeoPoint,
            _ => return None,
        })
    }

    /// Select, file and relation fields support `:each`/`:length` (multi-valued when
    /// `maxSelect > 1`).
    pub fn is_multi_valuer(self) -> bool {
        matches!(
            self,
            FieldType::Select | FieldType::File | FieldType::Relation
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub kind: FieldType,
    /// `maxSelect > 1` for select/file/relation fields.
    pub multiple: bool,
    /// Target collection id of a relation field.
    pub collection_id: Option<String>,
    pub hidden: bool,
}

impl Field {
    pub fn new(name: &str, kind: FieldType) -> Self {
        Field {
            name: name.to_string(),
            kind,
            multiple: false,
            collection_id: None,
            hidden: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CollectionType {
    Base,
    Auth,
    View,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    pub id: String,
    pub name: String,
    pub kind: CollectionType,
    pub fields: Vec<Field>,
    /// `None` = superusers only; `Some("")` = everyone.
    pub list_rule: Option<String>,
    pub view_rule: Option<String>,
    /// The collection's index definitions (`CREATE [UNIQUE] INDEX ...`), used to tell
    /// whether a back-relation is unique.
    pub indexes: Vec<String>,
}

impl Collection {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn is_auth(&self) -> bool {
        self.kind == CollectionType::Auth
    }

    pub fn is_view(&self) -> bool {
        self.kind == CollectionType::View
    }

    /// Whether `column` has a single-column UNIQUE index (WHERE clauses ignored).
    pub fn has_single_column_unique_index(&self, column: &str) -> bool {
        self.indexes
            .iter()
            .any(|idx| unique_single_column(idx).is_some_and(|c| c.eq_ignore_ascii_case(column)))
    }
}

fn unique_single_column(idx: &str) -> Option<String> {
    let upper = idx.to_ascii_uppercase();
    let head = upper.split('(').next()?;
    if !head.contains("UNIQUE") {
        return None;
    }
    let open = idx.find('(')?;
    let close = open + idx[open..].find(')')?;
    let cols: Vec<&str> = idx[open + 1..close].split(',').collect();
    if cols.len() != 1 {
        return None;
    }
    let col = cols[0].split_whitespace().next()?;
    Some(
        col.trim_matches(|c| c == '`' || c == '"' || c == '[' || c == ']' || c == '\'')
            .to_string(),
    )
}

/// An immutable snapshot of all collections.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    version: u64,
    collections: Vec<Arc<Collection>>,
    by_id: HashMap<String, usize>,
    by_lower_name: HashMap<String, usize>,
}

impl Schema {
    /// `version` must change whenever any collection (fields, rules, indexes) changes;
    /// compiled queries of other versions are discarded.
    pub fn new(version: u64, collections: Vec<Collection>) -> Self {
        let collections: Vec<Arc<Collection>> = collections.into_iter().map(Arc::new).collect();
        let mut by_id = HashMap::new();
        let mut by_lower_name = HashMap::new();
        for (i, c) in collections.iter().enumerate() {
            by_id.insert(c.id.clone(), i);
            by_lower_name
                .entry(c.name.to_ascii_lowercase())
                .or_insert(i);
        }
        Schema {
            version,
            collections,
            by_id,
            by_lower_name,
        }
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn collections(&self) -> &[Arc<Collection>] {
        &self.collections
    }

    /// Looks a collection up as PocketBase does: name (case-insensitive) or id.
    pub fn collection(&self, name_or_id: &str) -> Option<&Arc<Collection>> {
        let i = self
            .by_lower_name
            .get(&name_or_id.to_ascii_lowercase())
            .or_else(|| self.by_id.get(name_or_id))?;
        self.collections.get(*i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_index_detection() {
        let mut c = Collection {
            id: "x".into(),
            name: "x".into(),
            kind: CollectionType::Base,
            fields: vec![],
            list_rule: None,
            view_rule: None,
            indexes: vec![
                "CREATE UNIQUE INDEX `i1` ON `x` (`a`) WHERE a != ''".into(),
                "CREATE INDEX `i2` ON `x` (`b`)".into(),
                "CREATE UNIQUE INDEX \"i3\" on \"x\" (\"c\", \"d\")".into(),
            ],
        };
        assert!(c.has_single_column_unique_index("a"));
        assert!(c.has_single_column_unique_index("A"));
        assert!(!c.has_single_column_unique_index("b"));
        assert!(!c.has_single_column_unique_index("c"));
        c.indexes.clear();
        assert!(!c.has_single_column_unique_index("a"));
    }
}
