//! Collections: the model PocketBase keeps in `_collections` (all field
//! types and options, auth/view options), its exact stored and API JSON,
//! an in-memory snapshot for workers, schema sync (DDL) and validation.
//!
//! Layout: [`model`] (collections, rows, API JSON), [`fields`] (field
//! types), [`json`]/[`gojson`] (Go-compatible decoding/encoding),
//! [`index`] (`CREATE INDEX` parsing), [`snapshot`] (shared cache).

pub mod errors;
pub mod fields;
pub mod gojson;
pub mod index;
pub mod json;
pub mod model;
pub mod snapshot;
pub mod sync;
pub mod validate;
pub mod view;

pub use errors::{ErrorNode, FieldError, ValidationErrors};
pub use fields::{Field, FieldKind, FIELD_TYPES};
pub use json::DecodeError;
pub use model::{
    AuthAlertConfig, AuthOptions, Collection, CollectionRow, CollectionType, EmailTemplate,
    MfaConfig, OAuth2Config, OAuth2MappedFields, OAuth2Provider, OtpConfig, PasswordAuthConfig,
    TokenConfig,
};
pub use snapshot::{Collections, SharedCollections};
pub use sync::{
    create_collection, create_collection_checked, delete_collection, update_collection,
    update_collection_checked, SaveError,
};
pub use validate::{validate_collection, RuleChecker};
