//! The collection model as PocketBase stores it in `_collections`, its
//! API JSON, and the defaults of a new collection.

use std::sync::OnceLock;

use rusqlite::{Connection, OptionalExtension, Row};
use serde_json::{Map, Value};

use super::fields::{self, Field, FieldKind};
use super::gojson::{self, Obj};
use super::json::{self as pj, DecodeError};
use crate::error::{ErrorKind, Result, StorageError};
use crate::random;

/// The three collection types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CollectionType {
    /// `base`: a records table.
    Base,
    /// `auth`: a records table with auth fields and options.
    Auth,
    /// `view`: a read-only SQL view.
    View,
}

impl CollectionType {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CollectionType::Base => "base",
            CollectionType::Auth => "auth",
            CollectionType::View => "view",
        }
    }

    /// Parses a stored name (`None` for anything else).
    pub fn parse(s: &str) -> Option<CollectionType> {
        match s {
            "base" => Some(CollectionType::Base),
            "auth" => Some(CollectionType::Auth),
            "view" => Some(CollectionType::View),
            _ => None,
        }
    }
}

/// An email template.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailTemplate {
    /// Subject line.
    pub subject: String,
    /// HTML body.
    pub body: String,
}

/// Alert on a login from a new location.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthAlertConfig {
    /// Whether alerts are sent.
    pub enabled: bool,
    /// The alert email.
    pub email_template: EmailTemplate,
}

/// One OAuth2 provider of an auth collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OAuth2Provider {
    /// PKCE override (`null`: provider default).
    pub pkce: Option<bool>,
    /// Provider name (`google`, `gitlab`...).
    pub name: String,
    /// Client id.
    pub client_id: String,
    /// Client secret (never in API output).
    pub client_secret: String,
    /// Custom auth URL.
    pub auth_url: String,
    /// Custom token URL.
    pub token_url: String,
    /// Custom user info URL.
    pub user_info_url: String,
    /// Display name override.
    pub display_name: String,
    /// Provider specific extras (`null` when unset).
    pub extra: Option<Map<String, Value>>,
}

/// Which record fields OAuth2 user data maps to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OAuth2MappedFields {
    /// Field receiving the provider user id.
    pub id: String,
    /// Field receiving the name.
    pub name: String,
    /// Field receiving the username.
    pub username: String,
    /// Field receiving the avatar URL.
    pub avatar_url: String,
}

/// OAuth2 options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OAuth2Config {
    /// Providers (`null` when never set).
    pub providers: Option<Vec<OAuth2Provider>>,
    /// Field mapping.
    pub mapped_fields: OAuth2MappedFields,
    /// Whether OAuth2 login is enabled.
    pub enabled: bool,
}

/// Password auth options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PasswordAuthConfig {
    /// Whether password login is enabled.
    pub enabled: bool,
    /// Fields usable as identity (`null` when never set).
    pub identity_fields: Option<Vec<String>>,
}

/// Multi-factor auth options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MfaConfig {
    /// Whether MFA is required.
    pub enabled: bool,
    /// Seconds an MFA session is valid.
    pub duration: i64,
    /// Optional rule restricting who needs MFA.
    pub rule: String,
}

/// One-time password options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtpConfig {
    /// Whether OTP login is enabled.
    pub enabled: bool,
    /// Seconds an OTP is valid.
    pub duration: i64,
    /// Generated password length.
    pub length: i64,
    /// The OTP email.
    pub email_template: EmailTemplate,
}

/// A token kind's signing secret and lifetime.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenConfig {
    /// Signing secret (never in API output).
    pub secret: String,
    /// Lifetime in seconds.
    pub duration: i64,
}

/// The options of an auth collection (`_collections.options`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthOptions {
    /// Extra constraint checked on authentication (`null`: no auth at all).
    pub auth_rule: Option<String>,
    /// Admin-like management rule.
    pub manage_rule: Option<String>,
    /// New-location alerts.
    pub auth_alert: AuthAlertConfig,
    /// OAuth2.
    pub oauth2: OAuth2Config,
    /// Password auth.
    pub password_auth: PasswordAuthConfig,
    /// MFA.
    pub mfa: MfaConfig,
    /// OTP.
    pub otp: OtpConfig,
    /// Auth token.
    pub auth_token: TokenConfig,
    /// Password reset token.
    pub password_reset_token: TokenConfig,
    /// Email change token.
    pub email_change_token: TokenConfig,
    /// Verification token.
    pub verification_token: TokenConfig,
    /// Protected file token.
    pub file_token: TokenConfig,
    /// Verification email.
    pub verification_template: EmailTemplate,
    /// Password reset email.
    pub reset_password_template: EmailTemplate,
    /// Email change confirmation email.
    pub confirm_email_change_template: EmailTemplate,
}

/// A collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Collection {
    /// Collection id (also the storage dir of its files).
    pub id: String,
    /// Name (also the table / view name).
    pub name: String,
    /// Type.
    pub kind: CollectionType,
    /// System collections cannot be renamed/deleted or have rules changed.
    pub system: bool,
    /// Fields, in order.
    pub fields: Vec<Field>,
    /// `CREATE INDEX` statements.
    pub indexes: Vec<String>,
    /// List rule (`None`: superusers only).
    pub list_rule: Option<String>,
    /// View rule.
    pub view_rule: Option<String>,
    /// Create rule.
    pub create_rule: Option<String>,
    /// Update rule.
    pub update_rule: Option<String>,
    /// Delete rule.
    pub delete_rule: Option<String>,
    /// View query (view collections).
    pub view_query: String,
    /// Auth options (meaningful for auth collections; zero otherwise).
    pub auth: AuthOptions,
    /// Creation time (`YYYY-MM-DD HH:MM:SS.mmmZ`).
    pub created: String,
    /// Last update time.
    pub updated: String,
    /// A payload `type` that is none of base/auth/view (validation rejects
    /// it with `validation_in_invalid`); never stored.
    pub invalid_type: Option<String>,
}

/// A `_collections` row exactly as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionRow {
    /// `id`.
    pub id: String,
    /// `system`.
    pub system: bool,
    /// `type`.
    pub kind: String,
    /// `name`.
    pub name: String,
    /// `fields` (JSON text).
    pub fields: String,
    /// `indexes` (JSON text).
    pub indexes: String,
    /// `listRule`.
    pub list_rule: Option<String>,
    /// `viewRule`.
    pub view_rule: Option<String>,
    /// `createRule`.
    pub create_rule: Option<String>,
    /// `updateRule`.
    pub update_rule: Option<String>,
    /// `deleteRule`.
    pub delete_rule: Option<String>,
    /// `options` (JSON text).
    pub options: String,
    /// `created`.
    pub created: String,
    /// `updated`.
    pub updated: String,
}

/// Columns of `_collections`, in the order [`CollectionRow::from_sql`] reads them.
pub const ROW_COLUMNS: &str = "`id`,`system`,`type`,`name`,`fields`,`indexes`,`listRule`,`viewRule`,`createRule`,`updateRule`,`deleteRule`,`options`,`created`,`updated`";

fn text_col(row: &Row<'_>, i: usize) -> rusqlite::Result<String> {
    use rusqlite::types::ValueRef;
    Ok(match row.get_ref(i)? {
        ValueRef::Null => String::new(),
        ValueRef::Integer(v) => v.to_string(),
        ValueRef::Real(v) => v.to_string(),
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
    })
}

fn opt_text_col(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<String>> {
    use rusqlite::types::ValueRef;
    Ok(match row.get_ref(i)? {
        ValueRef::Null => None,
        _ => Some(text_col(row, i)?),
    })
}

impl CollectionRow {
    /// Reads a row selected with [`ROW_COLUMNS`].
    pub fn from_sql(row: &Row<'_>) -> rusqlite::Result<CollectionRow> {
        use rusqlite::types::ValueRef;
        let system = match row.get_ref(1)? {
            ValueRef::Integer(v) => v != 0,
            ValueRef::Real(v) => v != 0.0,
            ValueRef::Text(t) => matches!(t, b"1" | b"true" | b"TRUE" | b"t"),
            _ => false,
        };
        Ok(CollectionRow {
            id: text_col(row, 0)?,
            system,
            kind: text_col(row, 2)?,
            name: text_col(row, 3)?,
            fields: text_col(row, 4)?,
            indexes: text_col(row, 5)?,
            list_rule: opt_text_col(row, 6)?,
            view_rule: opt_text_col(row, 7)?,
            create_rule: opt_text_col(row, 8)?,
            update_rule: opt_text_col(row, 9)?,
            delete_rule: opt_text_col(row, 10)?,
            options: text_col(row, 11)?,
            created: text_col(row, 12)?,
            updated: text_col(row, 13)?,
        })
    }

    /// Inserts this row (fails if the id or name exists).
    pub fn insert(&self, conn: &Connection) -> Result<()> {
        conn.execute(
            &format!(
                "INSERT INTO `_collections` ({ROW_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)"
            ),
            rusqlite::params![
                self.id,
                self.system,
                self.kind,
                self.name,
                self.fields,
                self.indexes,
                self.list_rule,
                self.view_rule,
                self.create_rule,
                self.update_rule,
                self.delete_rule,
                self.options,
                self.created,
                self.updated
            ],
        )?;
        Ok(())
    }

    /// Updates the row with this id (all columns).
    pub fn update(&self, conn: &Connection) -> Result<()> {
        let n = conn.execute(
            "UPDATE `_collections` SET `system`=?2,`type`=?3,`name`=?4,`fields`=?5,`indexes`=?6,`listRule`=?7,`viewRule`=?8,`createRule`=?9,`updateRule`=?10,`deleteRule`=?11,`options`=?12,`created`=?13,`updated`=?14 WHERE `id`=?1",
            rusqlite::params![
                self.id,
                self.system,
                self.kind,
                self.name,
                self.fields,
                self.indexes,
                self.list_rule,
                self.view_rule,
                self.create_rule,
                self.update_rule,
                self.delete_rule,
                self.options,
                self.created,
                self.updated
            ],
        )?;
        if n == 0 {
            return Err(StorageError::new(
                ErrorKind::NotFound,
                format!("collection {} not found", self.id),
            ));
        }
        Ok(())
    }
}

fn decode_err(e: DecodeError) -> StorageError {
    StorageError::new(ErrorKind::Invalid, e.message().to_string())
}

fn parse_json(text: &str, what: &str) -> std::result::Result<Value, DecodeError> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text).map_err(|e| DecodeError::new(format!("invalid {what} JSON: {e}")))
}

impl Collection {
    /// A collection of `kind` with nothing set (Go's zero struct): what a
    /// row is decoded onto.
    pub fn empty(kind: CollectionType) -> Collection {
        Collection {
            id: String::new(),
            name: String::new(),
            kind,
            system: false,
            fields: Vec::new(),
            indexes: Vec::new(),
            list_rule: None,
            view_rule: None,
            create_rule: None,
            update_rule: None,
            delete_rule: None,
            view_query: String::new(),
            auth: AuthOptions::default(),
            created: String::new(),
            updated: String::new(),
            invalid_type: None,
        }
    }

    /// A new collection with PocketBase's defaults for `kind`: the default
    /// id (`pbc_` + crc32(type+name)) unless `id` is given, system fields
    /// (and auth options with fresh secrets, for auth collections).
    pub fn new(kind: CollectionType, name: &str, id: Option<&str>) -> Collection {
        let mut c = Collection::empty(kind);
        c.name = name.to_string();
        c.id = match id {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => c.default_id(),
        };
        c.init_default_fields();
        if kind == CollectionType::Auth {
            c.auth = AuthOptions::defaults();
        }
        c
    }

    /// PocketBase's generated id for this type and name.
    pub fn default_id(&self) -> String {
        format!(
            "pbc_{}",
            fields::crc32_checksum(&format!("{}{}", self.kind.as_str(), self.name))
        )
    }

    /// Base collection?
    pub fn is_base(&self) -> bool {
        self.kind == CollectionType::Base
    }

    /// Auth collection?
    pub fn is_auth(&self) -> bool {
        self.kind == CollectionType::Auth
    }

    /// View collection?
    pub fn is_view(&self) -> bool {
        self.kind == CollectionType::View
    }

    /// The field named `name` (exact match, like PocketBase).
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Mutable field by name.
    pub fn field_mut(&mut self, name: &str) -> Option<&mut Field> {
        self.fields.iter_mut().find(|f| f.name == name)
    }

    /// The field with id `id`.
    pub fn field_by_id(&self, id: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.id == id)
    }

    /// The system fields.
    pub fn system_fields(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| f.system)
    }

    /// The non-hidden fields (what record responses include).
    pub fn visible_fields(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| !f.hidden)
    }

    /// The relation fields pointing at collection `target_id`.
    pub fn relations_to<'a>(&'a self, target_id: &'a str) -> impl Iterator<Item = &'a Field> {
        self.fields
            .iter()
            .filter(move |f| f.relation_target() == Some(target_id))
    }

    /// The rule of `name` (`listRule`, ..., `authRule`, `manageRule`).
    pub fn rule(&self, name: &str) -> Option<&Option<String>> {
        Some(match name {
            "listRule" => &self.list_rule,
            "viewRule" => &self.view_rule,
            "createRule" => &self.create_rule,
            "updateRule" => &self.update_rule,
            "deleteRule" => &self.delete_rule,
            "authRule" => &self.auth.auth_rule,
            "manageRule" => &self.auth.manage_rule,
            _ => return None,
        })
    }

    /// Decodes a stored `_collections` row.
    pub fn from_row(row: &CollectionRow) -> std::result::Result<Collection, DecodeError> {
        let kind = CollectionType::parse(&row.kind).unwrap_or(CollectionType::Base);
        let mut c = Collection::empty(kind);
        c.id = row.id.clone();
        c.system = row.system;
        c.name = row.name.clone();
        c.fields = fields::fields_from_json(&parse_json(&row.fields, "fields")?)?;
        c.indexes = match parse_json(&row.indexes, "indexes")? {
            Value::Null => Vec::new(),
            Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(DecodeError::new("indexes must be strings")),
                })
                .collect::<std::result::Result<_, _>>()?,
            _ => return Err(DecodeError::new("indexes must be an array")),
        };
        c.list_rule = row.list_rule.clone();
        c.view_rule = row.view_rule.clone();
        c.create_rule = row.create_rule.clone();
        c.update_rule = row.update_rule.clone();
        c.delete_rule = row.delete_rule.clone();
        c.created = row.created.clone();
        c.updated = row.updated.clone();
        if let Value::Object(opts) = parse_json(&row.options, "options")? {
            c.apply_options_json(&opts)?;
        }
        Ok(c)
    }

    /// Encodes to a `_collections` row exactly as PocketBase writes it.
    pub fn to_row(&self) -> CollectionRow {
        let mut f = String::new();
        fields::write_fields_json(&mut f, &self.fields);
        let mut idx = String::new();
        gojson::write_str_list(&mut idx, Some(&self.indexes));
        let options = match self.kind {
            CollectionType::Base => "{}".to_string(),
            CollectionType::View => {
                let mut s = String::new();
                let mut o = Obj::new(&mut s);
                o.str("viewQuery", &self.view_query);
                o.end();
                s
            }
            CollectionType::Auth => {
                let mut s = String::new();
                let mut o = Obj::new(&mut s);
                self.auth.write_fields(&mut o, true);
                o.end();
                s
            }
        };
        CollectionRow {
            id: self.id.clone(),
            system: self.system,
            kind: self.kind.as_str().to_string(),
            name: self.name.clone(),
            fields: f,
            indexes: idx,
            list_rule: self.list_rule.clone(),
            view_rule: self.view_rule.clone(),
            create_rule: self.create_rule.clone(),
            update_rule: self.update_rule.clone(),
            delete_rule: self.delete_rule.clone(),
            options,
            created: self.created.clone(),
            updated: self.updated.clone(),
        }
    }

    /// Appends the JSON PocketBase's API returns for this collection
    /// (secrets left out).
    pub fn write_api_json(&self, out: &mut String) {
        let mut o = Obj::new(out);
        o.str("id", &self.id);
        o.opt_str("listRule", self.list_rule.as_deref());
        o.opt_str("viewRule", self.view_rule.as_deref());
        o.opt_str("createRule", self.create_rule.as_deref());
        o.opt_str("updateRule", self.update_rule.as_deref());
        o.opt_str("deleteRule", self.delete_rule.as_deref());
        o.str("name", &self.name);
        o.str("type", self.kind.as_str());
        fields::write_fields_json(o.key("fields"), &self.fields);
        o.str_list("indexes", Some(&self.indexes));
        o.str("created", &self.created);
        o.str("updated", &self.updated);
        o.bool("system", self.system);
        match self.kind {
            CollectionType::Base => {}
            CollectionType::View => {
                o.str("viewQuery", &self.view_query);
            }
            CollectionType::Auth => self.auth.write_fields(&mut o, false),
        }
        o.end();
    }

    /// The API JSON as a string.
    pub fn to_api_json(&self) -> String {
        let mut s = String::with_capacity(4096);
        self.write_api_json(&mut s);
        s
    }

    /// A new collection from a create payload, like PocketBase: the
    /// defaults of its `type` (base when missing/unknown), `name` and
    /// optional `id`, then the payload on top.
    pub fn from_create_payload(
        obj: &Map<String, Value>,
    ) -> std::result::Result<Collection, DecodeError> {
        let t = pj::string(obj, "type")?.unwrap_or_default();
        let name = pj::string(obj, "name")?.unwrap_or_default();
        let id = pj::string(obj, "id")?.unwrap_or_default();
        let kind = CollectionType::parse(&t).unwrap_or(CollectionType::Base);
        let mut c = Collection::new(kind, &name, Some(&id));
        if id.is_empty() {
            // keep the default id only while it still matches type+name
            c.id = c.default_id();
        }
        c.apply_json(obj)?;
        Ok(c)
    }

    /// Overlays an API payload (create or update body) onto this
    /// collection, like Go's `json.Unmarshal` onto the model: present keys
    /// replace, missing keys keep their value, `fields` is replaced as a
    /// whole. `id`, `created`, `updated` are ignored here (the caller
    /// decides).
    pub fn apply_json(&mut self, obj: &Map<String, Value>) -> std::result::Result<(), DecodeError> {
        pj::set_string(obj, "name", &mut self.name)?;
        if let Some(t) = pj::string(obj, "type")? {
            match CollectionType::parse(&t) {
                Some(k) => {
                    self.kind = k;
                    self.invalid_type = None;
                }
                None => self.invalid_type = Some(t),
            }
        }
        pj::set_bool(obj, "system", &mut self.system)?;
        pj::set_opt_string(obj, "listRule", &mut self.list_rule)?;
        pj::set_opt_string(obj, "viewRule", &mut self.view_rule)?;
        pj::set_opt_string(obj, "createRule", &mut self.create_rule)?;
        pj::set_opt_string(obj, "updateRule", &mut self.update_rule)?;
        pj::set_opt_string(obj, "deleteRule", &mut self.delete_rule)?;
        if let Some(v) = pj::get(obj, "fields") {
            self.fields = fields::fields_from_json(v)?;
        }
        let mut idx = Some(std::mem::take(&mut self.indexes));
        pj::set_str_list(obj, "indexes", &mut idx)?;
        self.indexes = idx.unwrap_or_default();
        self.apply_options_json(obj)
    }

    fn apply_options_json(
        &mut self,
        obj: &Map<String, Value>,
    ) -> std::result::Result<(), DecodeError> {
        match self.kind {
            CollectionType::Base => Ok(()),
            CollectionType::View => pj::set_string(obj, "viewQuery", &mut self.view_query),
            CollectionType::Auth => self.auth.apply_json(obj),
        }
    }

    /// Adds the fields every collection of this type must have (`id`; the
    /// auth fields and their unique indexes) and enforces their system
    /// flags, like PocketBase does on save.
    pub fn init_default_fields(&mut self) {
        match self.kind {
            CollectionType::View => {}
            CollectionType::Base => self.init_id_field(),
            CollectionType::Auth => {
                self.init_id_field();
                self.init_auth_fields();
            }
        }
    }

    fn init_id_field(&mut self) {
        let is_text = matches!(
            self.field(fields::FIELD_ID).map(|f| &f.kind),
            Some(FieldKind::Text { .. })
        );
        if is_text {
            let f = self.field_mut(fields::FIELD_ID).expect("checked");
            f.system = true;
            f.required = true;
            f.hidden = false;
            if let FieldKind::Text {
                primary_key,
                pattern,
                ..
            } = &mut f.kind
            {
                *primary_key = true;
                if pattern.is_empty() {
                    *pattern = "^[a-z0-9]+$".to_string();
                }
            }
            return;
        }
        let mut f = Field::new(
            fields::FIELD_ID,
            FieldKind::Text {
                min: 15,
                max: 15,
                pattern: "^[a-z0-9]+$".to_string(),
                autogenerate_pattern: "[a-z0-9]{15}".to_string(),
                primary_key: true,
            },
        );
        f.system = true;
        f.required = true;
        let rest = std::mem::take(&mut self.fields);
        let mut list = Vec::with_capacity(rest.len() + 1);
        fields::add_field(&mut list, f);
        for field in rest {
            fields::add_field(&mut list, field);
        }
        self.fields = list;
    }

    fn ensure_field(
        &mut self,
        name: &str,
        is_kind: fn(&FieldKind) -> bool,
        make: impl FnOnce() -> Field,
        enforce: impl FnOnce(&mut Field),
    ) {
        match self.fields.iter_mut().find(|f| f.name == name) {
            Some(f) if is_kind(&f.kind) => enforce(f),
            _ => fields::add_field(&mut self.fields, make()),
        }
    }

    fn init_auth_fields(&mut self) {
        self.ensure_field(
            fields::FIELD_PASSWORD,
            |k| matches!(k, FieldKind::Password { .. }),
            || {
                let mut f = Field::new(
                    fields::FIELD_PASSWORD,
                    FieldKind::Password {
                        pattern: String::new(),
                        min: 8,
                        max: 0,
                        cost: 0,
                    },
                );
                f.system = true;
                f.hidden = true;
                f.required = true;
                f
            },
            |f| {
                f.system = true;
                f.hidden = true;
                f.required = true;
            },
        );
        self.ensure_field(
            fields::FIELD_TOKEN_KEY,
            |k| matches!(k, FieldKind::Text { .. }),
            || {
                let mut f = Field::new(
                    fields::FIELD_TOKEN_KEY,
                    FieldKind::Text {
                        min: 30,
                        max: 60,
                        pattern: String::new(),
                        autogenerate_pattern: "[a-zA-Z0-9]{50}".to_string(),
                        primary_key: false,
                    },
                );
                f.system = true;
                f.hidden = true;
                f.required = true;
                f
            },
            |f| {
                f.system = true;
                f.hidden = true;
                f.required = true;
            },
        );
        if find_single_column_unique_index(&self.indexes, fields::FIELD_TOKEN_KEY).is_none() {
            self.indexes.push(format!(
                "CREATE UNIQUE INDEX `{}` ON `{}` (`tokenKey`)",
                self.field_index_name(fields::FIELD_TOKEN_KEY),
                self.name
            ));
        }
        self.ensure_field(
            fields::FIELD_EMAIL,
            |k| matches!(k, FieldKind::Email { .. }),
            || {
                let mut f = Field::new(
                    fields::FIELD_EMAIL,
                    FieldKind::Email {
                        except_domains: None,
                        only_domains: None,
                    },
                );
                f.system = true;
                f.required = true;
                f
            },
            |f| {
                f.system = true;
                f.hidden = false;
            },
        );
        if find_single_column_unique_index(&self.indexes, fields::FIELD_EMAIL).is_none() {
            self.indexes.push(format!(
                "CREATE UNIQUE INDEX `{}` ON `{}` (`email`) WHERE `email` != ''",
                self.field_index_name(fields::FIELD_EMAIL),
                self.name
            ));
        }
        for name in [fields::FIELD_EMAIL_VISIBILITY, fields::FIELD_VERIFIED] {
            self.ensure_field(
                name,
                |k| matches!(k, FieldKind::Bool),
                || {
                    let mut f = Field::new(name, FieldKind::Bool);
                    f.system = true;
                    f
                },
                |f| f.system = true,
            );
        }
    }

    /// `idx_<field>_<collection id>` (cut to 64 chars).
    pub fn field_index_name(&self, field: &str) -> String {
        let mut name = format!("idx_{field}_");
        if !self.id.is_empty() {
            name.push_str(&self.id);
        } else if !self.name.is_empty() {
            name.push_str(&self.name);
        } else {
            name.push_str(&random::random_string_with_alphabet(
                10,
                random::ID_ALPHABET,
            ));
        }
        if name.len() > 64 {
            name.truncate(64);
        }
        name
    }

    /// Loads every collection from `_collections`, ordered like PocketBase's
    /// cache (by `rowid`).
    pub fn load_all(conn: &Connection) -> Result<Vec<Collection>> {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ROW_COLUMNS} FROM `_collections` ORDER BY `rowid` ASC"
        ))?;
        let rows = stmt.query_map([], CollectionRow::from_sql)?;
        let mut out = Vec::new();
        for row in rows {
            let row = row?;
            out.push(Collection::from_row(&row).map_err(|e| {
                StorageError::new(
                    ErrorKind::Invalid,
                    format!("collection {:?}: {}", row.name, e.message()),
                )
            })?);
        }
        Ok(out)
    }

    /// Loads one collection by exact id.
    pub fn load_by_id(conn: &Connection, id: &str) -> Result<Option<Collection>> {
        let row = conn
            .query_row(
                &format!("SELECT {ROW_COLUMNS} FROM `_collections` WHERE `id` = ?1"),
                [id],
                CollectionRow::from_sql,
            )
            .optional()?;
        row.map(|r| Collection::from_row(&r).map_err(decode_err))
            .transpose()
    }

    /// Loads one collection by id or (case-insensitive) name.
    pub fn load(conn: &Connection, id_or_name: &str) -> Result<Option<Collection>> {
        let row = conn
            .query_row(
                &format!(
                    "SELECT {ROW_COLUMNS} FROM `_collections` WHERE `id` = ?1 OR LOWER(`name`) = LOWER(?1) ORDER BY (`id` = ?1) DESC LIMIT 1"
                ),
                [id_or_name],
                CollectionRow::from_sql,
            )
            .optional()?;
        row.map(|r| Collection::from_row(&r).map_err(decode_err))
            .transpose()
    }
}

/// Finds a `CREATE UNIQUE INDEX` over exactly `column` (no other columns).
pub fn find_single_column_unique_index<'a>(indexes: &'a [String], column: &str) -> Option<&'a str> {
    indexes.iter().map(String::as_str).find(|raw| {
        let p = super::index::ParsedIndex::parse(raw);
        p.unique && p.columns.len() == 1 && p.columns[0].name.eq_ignore_ascii_case(column)
    })
}

impl AuthOptions {
    /// PocketBase's defaults for a new auth collection (fresh secrets).
    pub fn defaults() -> AuthOptions {
        let t = default_templates();
        let token = |duration| TokenConfig {
            secret: random::random_string(50),
            duration,
        };
        AuthOptions {
            auth_rule: Some(String::new()),
            manage_rule: None,
            auth_alert: AuthAlertConfig {
                enabled: true,
                email_template: t.auth_alert.clone(),
            },
            oauth2: OAuth2Config::default(),
            password_auth: PasswordAuthConfig {
                enabled: true,
                identity_fields: Some(vec![fields::FIELD_EMAIL.to_string()]),
            },
            mfa: MfaConfig {
                enabled: false,
                duration: 600,
                rule: String::new(),
            },
            otp: OtpConfig {
                enabled: false,
                duration: 180,
                length: 8,
                email_template: t.otp.clone(),
            },
            auth_token: token(432_000),
            password_reset_token: token(1800),
            email_change_token: token(1800),
            verification_token: token(86_400),
            file_token: token(180),
            verification_template: t.verification.clone(),
            reset_password_template: t.reset_password.clone(),
            confirm_email_change_template: t.confirm_email_change.clone(),
        }
    }

    /// Writes the options' keys into `o` in PocketBase's order; secrets
    /// only when `with_secrets` (storage), never for the API.
    fn write_fields(&self, o: &mut Obj<'_>, with_secrets: bool) {
        o.opt_str("authRule", self.auth_rule.as_deref());
        o.opt_str("manageRule", self.manage_rule.as_deref());
        {
            let out = o.key("authAlert");
            let mut a = Obj::new(out);
            a.bool("enabled", self.auth_alert.enabled);
            write_template(a.key("emailTemplate"), &self.auth_alert.email_template);
            a.end();
        }
        {
            let out = o.key("oauth2");
            let mut a = Obj::new(out);
            match &self.oauth2.providers {
                // PocketBase 0.40 (`encoding/json/v2`) writes a nil slice as `[]`, stored or
                // served alike (0.39 stored `null`)
                None => {
                    a.raw("providers", "[]");
                }
                Some(list) => {
                    let out = a.key("providers");
                    out.push('[');
                    for (i, p) in list.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let mut po = Obj::new(out);
                        match p.pkce {
                            Some(v) => po.bool("pkce", v),
                            None => po.raw("pkce", "null"),
                        };
                        po.str("name", &p.name);
                        po.str("clientId", &p.client_id);
                        if with_secrets && !p.client_secret.is_empty() {
                            po.str("clientSecret", &p.client_secret);
                        }
                        po.str("authURL", &p.auth_url);
                        po.str("tokenURL", &p.token_url);
                        po.str("userInfoURL", &p.user_info_url);
                        po.str("displayName", &p.display_name);
                        match &p.extra {
                            Some(m) => {
                                gojson::write_value(po.key("extra"), &Value::Object(m.clone()))
                            }
                            // a nil map: `{}` since 0.40 (0.39: `null`)
                            None => {
                                po.raw("extra", "{}");
                            }
                        }
                        po.end();
                    }
                    out.push(']');
                }
            }
            {
                let out = a.key("mappedFields");
                let mut m = Obj::new(out);
                let mf = &self.oauth2.mapped_fields;
                m.str("id", &mf.id);
                m.str("name", &mf.name);
                m.str("username", &mf.username);
                m.str("avatarURL", &mf.avatar_url);
                m.end();
            }
            a.bool("enabled", self.oauth2.enabled);
            a.end();
        }
        {
            let out = o.key("passwordAuth");
            let mut a = Obj::new(out);
            a.bool("enabled", self.password_auth.enabled);
            a.str_list(
                "identityFields",
                self.password_auth.identity_fields.as_deref(),
            );
            a.end();
        }
        {
            let out = o.key("mfa");
            let mut a = Obj::new(out);
            a.bool("enabled", self.mfa.enabled);
            a.int("duration", self.mfa.duration);
            a.str("rule", &self.mfa.rule);
            a.end();
        }
        {
            let out = o.key("otp");
            let mut a = Obj::new(out);
            a.bool("enabled", self.otp.enabled);
            a.int("duration", self.otp.duration);
            a.int("length", self.otp.length);
            write_template(a.key("emailTemplate"), &self.otp.email_template);
            a.end();
        }
        for (key, t) in [
            ("authToken", &self.auth_token),
            ("passwordResetToken", &self.password_reset_token),
            ("emailChangeToken", &self.email_change_token),
            ("verificationToken", &self.verification_token),
            ("fileToken", &self.file_token),
        ] {
            let out = o.key(key);
            let mut a = Obj::new(out);
            if with_secrets && !t.secret.is_empty() {
                a.str("secret", &t.secret);
            }
            a.int("duration", t.duration);
            a.end();
        }
        write_template(o.key("verificationTemplate"), &self.verification_template);
        write_template(
            o.key("resetPasswordTemplate"),
            &self.reset_password_template,
        );
        write_template(
            o.key("confirmEmailChangeTemplate"),
            &self.confirm_email_change_template,
        );
    }

    /// Overlays the auth option keys present in `obj`.
    pub fn apply_json(&mut self, obj: &Map<String, Value>) -> std::result::Result<(), DecodeError> {
        pj::set_opt_string(obj, "authRule", &mut self.auth_rule)?;
        pj::set_opt_string(obj, "manageRule", &mut self.manage_rule)?;
        if let Some(a) = pj::object(obj, "authAlert")? {
            pj::set_bool(a, "enabled", &mut self.auth_alert.enabled)?;
            apply_template(a, "emailTemplate", &mut self.auth_alert.email_template)?;
        }
        if let Some(a) = pj::object(obj, "oauth2")? {
            match pj::get(a, "providers") {
                None => {}
                Some(Value::Null) => self.oauth2.providers = None,
                Some(Value::Array(items)) => {
                    // Go decodes a slice element-wise onto the existing elements
                    let old = self.oauth2.providers.take().unwrap_or_default();
                    let mut list = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        let mut p = old.get(i).cloned().unwrap_or_default();
                        match item {
                            Value::Object(po) => p.apply_json(po)?,
                            Value::Null => {}
                            _ => return Err(DecodeError::new("oauth2 provider must be an object")),
                        }
                        list.push(p);
                    }
                    self.oauth2.providers = Some(list);
                }
                Some(_) => return Err(DecodeError::new("oauth2.providers must be an array")),
            }
            if let Some(m) = pj::object(a, "mappedFields")? {
                let mf = &mut self.oauth2.mapped_fields;
                pj::set_string(m, "id", &mut mf.id)?;
                pj::set_string(m, "name", &mut mf.name)?;
                pj::set_string(m, "username", &mut mf.username)?;
                pj::set_string(m, "avatarURL", &mut mf.avatar_url)?;
            }
            pj::set_bool(a, "enabled", &mut self.oauth2.enabled)?;
        }
        if let Some(a) = pj::object(obj, "passwordAuth")? {
            pj::set_bool(a, "enabled", &mut self.password_auth.enabled)?;
            pj::set_str_list(a, "identityFields", &mut self.password_auth.identity_fields)?;
        }
        if let Some(a) = pj::object(obj, "mfa")? {
            pj::set_bool(a, "enabled", &mut self.mfa.enabled)?;
            pj::set_int(a, "duration", &mut self.mfa.duration)?;
            pj::set_string(a, "rule", &mut self.mfa.rule)?;
        }
        if let Some(a) = pj::object(obj, "otp")? {
            pj::set_bool(a, "enabled", &mut self.otp.enabled)?;
            pj::set_int(a, "duration", &mut self.otp.duration)?;
            pj::set_int(a, "length", &mut self.otp.length)?;
            apply_template(a, "emailTemplate", &mut self.otp.email_template)?;
        }
        for (key, t) in [
            ("authToken", &mut self.auth_token),
            ("passwordResetToken", &mut self.password_reset_token),
            ("emailChangeToken", &mut self.email_change_token),
            ("verificationToken", &mut self.verification_token),
            ("fileToken", &mut self.file_token),
        ] {
            if let Some(a) = pj::object(obj, key)? {
                pj::set_string(a, "secret", &mut t.secret)?;
                pj::set_int(a, "duration", &mut t.duration)?;
            }
        }
        apply_template(obj, "verificationTemplate", &mut self.verification_template)?;
        apply_template(
            obj,
            "resetPasswordTemplate",
            &mut self.reset_password_template,
        )?;
        apply_template(
            obj,
            "confirmEmailChangeTemplate",
            &mut self.confirm_email_change_template,
        )?;
        Ok(())
    }
}

impl OAuth2Provider {
    fn apply_json(&mut self, o: &Map<String, Value>) -> std::result::Result<(), DecodeError> {
        match pj::get(o, "pkce") {
            None => {}
            Some(Value::Null) => self.pkce = None,
            Some(Value::Bool(b)) => self.pkce = Some(*b),
            Some(_) => return Err(DecodeError::new("pkce must be a bool")),
        }
        pj::set_string(o, "name", &mut self.name)?;
        pj::set_string(o, "clientId", &mut self.client_id)?;
        pj::set_string(o, "clientSecret", &mut self.client_secret)?;
        pj::set_string(o, "authURL", &mut self.auth_url)?;
        pj::set_string(o, "tokenURL", &mut self.token_url)?;
        pj::set_string(o, "userInfoURL", &mut self.user_info_url)?;
        pj::set_string(o, "displayName", &mut self.display_name)?;
        match pj::get(o, "extra") {
            None => {}
            Some(Value::Null) => self.extra = None,
            Some(Value::Object(m)) => {
                let mut merged = self.extra.take().unwrap_or_default();
                for (k, v) in m {
                    merged.insert(k.clone(), v.clone());
                }
                self.extra = Some(merged);
            }
            Some(_) => return Err(DecodeError::new("extra must be an object")),
        }
        Ok(())
    }
}

fn write_template(out: &mut String, t: &EmailTemplate) {
    let mut o = Obj::new(out);
    o.str("subject", &t.subject);
    o.str("body", &t.body);
    o.end();
}

fn apply_template(
    obj: &Map<String, Value>,
    key: &str,
    t: &mut EmailTemplate,
) -> std::result::Result<(), DecodeError> {
    if let Some(a) = pj::object(obj, key)? {
        pj::set_string(a, "subject", &mut t.subject)?;
        pj::set_string(a, "body", &mut t.body)?;
    }
    Ok(())
}

struct DefaultTemplates {
    auth_alert: EmailTemplate,
    otp: EmailTemplate,
    verification: EmailTemplate,
    reset_password: EmailTemplate,
    confirm_email_change: EmailTemplate,
}

/// The default email templates of a new auth collection, taken from the
/// `users` collection a fresh PocketBase creates (storage/schema).
fn default_templates() -> &'static DefaultTemplates {
    static T: OnceLock<DefaultTemplates> = OnceLock::new();
    T.get_or_init(|| {
        let sql = include_str!("../../schema/data_collections.sql");
        let line = sql
            .lines()
            .find(|l| l.contains("'_pb_users_auth_'"))
            .expect("users row in data_collections.sql")
            .replace("{{SECRET}}", "x")
            .replace("{{NOW}}", "");
        let conn = Connection::open_in_memory().expect("in-memory sqlite");
        conn.execute_batch(
            "CREATE TABLE `_collections` (`id` TEXT, `system` BOOLEAN, `type` TEXT, `name` TEXT, `fields` JSON, `indexes` JSON, `listRule` TEXT, `viewRule` TEXT, `createRule` TEXT, `updateRule` TEXT, `deleteRule` TEXT, `options` JSON, `created` TEXT, `updated` TEXT)",
        )
        .expect("scratch table");
        conn.execute_batch(&line).expect("users row");
        let options: String = conn
            .query_row("SELECT `options` FROM `_collections`", [], |r| r.get(0))
            .expect("users options");
        let mut a = AuthOptions::default();
        if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&options) {
            let _ = a.apply_json(&m);
        }
        DefaultTemplates {
            auth_alert: a.auth_alert.email_template,
            otp: a.otp.email_template,
            verification: a.verification_template,
            reset_password: a.reset_password_template,
            confirm_email_change: a.confirm_email_change_template,
        }
    })
}
